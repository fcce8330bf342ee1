//! `POST /v1/events` and `GET|POST /postback/{source}`: parse and validate
//! against the schema, then hand the jobs to the applier and answer only
//! after the commit that stored them.
//!
//! A batch is validated whole: one bad event rejects it with 422 naming its
//! index, and nothing is applied. Refused postbacks (undeclared event, a
//! parameter that does not convert, a missing `dedupe` parameter) are kept
//! for inspection. A postback whose `dedupe` value was seen before (applied
//! or held) is answered `200 {"status": "duplicate"}` and changes nothing.

use super::Shared;
use super::api::{ApiError, ApiResult, body_bytes, json, parse_body};
use super::apply::{ContactRef, Done, Job};
use crate::intake::{self, PostbackError};
use crate::store::Commit;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use nudge_compiler::value::Value;
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Events per batch at most.
pub const MAX_BATCH: usize = 10_000;

/// Events only nudge itself raises.
const INTERNAL: [&str; 2] = intake::RESERVED_EVENTS;

fn object<'a>(v: &'a Json, what: &str) -> Result<&'a Map<String, Json>, String> {
    v.as_object()
        .ok_or_else(|| format!("{what} must be a JSON object"))
}

/// JSON members as typed-later values.
fn members(m: &Map<String, Json>) -> Vec<(String, Value)> {
    m.iter()
        .map(|(k, v)| (k.clone(), Value::from_json(v)))
        .collect()
}

/// Validate one event object into a job.
pub fn parse_event(shared: &Shared, v: &Json) -> Result<Job, String> {
    let dep = shared.deployed();
    let bundle = &dep.bundle;
    let o = object(v, "an event")?;
    if let Some(k) = o
        .keys()
        .find(|k| !["event", "contact", "data", "id"].contains(&k.as_str()))
    {
        return Err(format!(
            "unknown member `{k}` (an event has `event`, `contact`, `data` and `id`)"
        ));
    }
    let name = o
        .get("event")
        .and_then(Json::as_str)
        .ok_or("`event` must name the event, as a string")?;
    if bundle.event(name).is_none() {
        return Err(format!("unknown event `{name}`"));
    }
    if INTERNAL.contains(&name) {
        return Err(format!(
            "`{name}` is raised by nudge itself and cannot be sent"
        ));
    }
    let key = match o.get("id") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) if !s.is_empty() && s.len() <= 256 => Some(s.clone()),
        Some(_) => return Err("`id` must be a non-empty string of at most 256 bytes".into()),
    };
    let contact = object(o.get("contact").unwrap_or(&Json::Null), "`contact`")?;
    intake::contact_json_kinds(bundle, contact)?;
    let set = intake::contact_fields(bundle, members(contact))?;
    let cref = match contact.get("id") {
        Some(Json::String(id)) if !id.is_empty() && id.len() <= 256 => ContactRef::Id(id.clone()),
        Some(_) => {
            return Err("`contact.id` must be a non-empty string of at most 256 bytes".into());
        }
        None => {
            let unique = bundle.schema.iter().filter(|f| f.unique && f.name != "id");
            let mut found = None;
            for f in unique {
                if let Some((_, v)) = set.iter().find(|(k, _)| *k == f.name)
                    && let Some(s) = v.as_str()
                {
                    found = Some(ContactRef::Key {
                        field: f.name.clone(),
                        value: s.to_string(),
                    });
                    break;
                }
            }
            found.ok_or_else(|| {
                let keys: Vec<String> = bundle
                    .schema
                    .iter()
                    .filter(|f| f.unique)
                    .map(|f| format!("`{}`", f.name))
                    .collect();
                format!(
                    "`contact` must name the contact by `id` or a unique field ({})",
                    keys.join(", ")
                )
            })?
        }
    };
    let data = match o.get("data") {
        None | Some(Json::Null) => Map::new(),
        Some(d) => object(d, "`data`")?.clone(),
    };
    intake::event_json_kinds(bundle, name, &data)?;
    let fields = intake::event_fields(bundle, name, members(&data))?;
    Ok(Job::Event {
        contact: cref,
        set,
        name: name.to_string(),
        fields,
        key,
    })
}

/// `POST /v1/events`
pub async fn events(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let mut v = parse_body(&body_bytes(body)?)?;
    let alone = v.as_object().is_some_and(|o| o.len() == 1);
    // taken out of the body, not copied: a batch is thousands of values
    let (items, batch) = match v.get_mut("events").map(Json::take) {
        Some(Json::Array(items)) if alone => (items, true),
        Some(_) => {
            return Err(ApiError::invalid(
                "`events` must be an array of events, alone in the body",
            ));
        }
        None => (vec![v], false),
    };
    if items.is_empty() {
        return Err(ApiError::invalid("the batch is empty"));
    }
    if items.len() > MAX_BATCH {
        return Err(ApiError::invalid(format!(
            "a batch takes at most {MAX_BATCH} events"
        )));
    }
    let mut jobs = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match parse_event(&shared, item) {
            Ok(j) => jobs.push(j),
            Err(e) if batch => {
                let mut err = ApiError::invalid(format!("event {i}: {e}"));
                err.code = "invalid_event";
                return Err(err);
            }
            Err(e) => return Err(ApiError::invalid(e)),
        }
    }
    let outcomes = shared.queue.submit(jobs).await;
    let (mut accepted, mut duplicates) = (0, 0);
    for (i, o) in outcomes.iter().enumerate() {
        match o {
            Ok(Done::Duplicate) => duplicates += 1,
            Ok(_) => accepted += 1,
            Err(e) => {
                let prefix = if batch {
                    format!("event {i}: ")
                } else {
                    String::new()
                };
                // the first real failure, not the "aborted" of its neighbours
                let first = outcomes
                    .iter()
                    .enumerate()
                    .find(|(_, o)| matches!(o, Err(e) if *e != super::ApplyError::Aborted));
                return Err(match first {
                    Some((j, Err(e))) => {
                        let p = if batch {
                            format!("event {j}: ")
                        } else {
                            String::new()
                        };
                        ApiError::from_apply(e, &p)
                    }
                    _ => ApiError::from_apply(e, &prefix),
                });
            }
        }
    }
    shared
        .metrics
        .events_accepted
        .fetch_add(accepted, std::sync::atomic::Ordering::Relaxed);
    Ok(json(
        StatusCode::ACCEPTED,
        serde_json::json!({"accepted": accepted, "duplicates": duplicates}),
    ))
}

fn parse_params(text: &str, out: &mut BTreeMap<String, String>) {
    for (k, v) in form_urlencoded::parse(text.as_bytes()) {
        out.insert(k.into_owned(), v.into_owned());
    }
}

/// `GET|POST /postback/{source}`: parameters from the query and, for a
/// form or JSON body, from the body.
pub async fn postback(
    State(shared): State<Arc<Shared>>,
    Path(source): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let body = body_bytes(body)?;
    let mut params = BTreeMap::new();
    if let Some(q) = &query {
        parse_params(q, &mut params);
    }
    if !body.is_empty() {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if ct.starts_with("application/json") {
            let v = parse_body(&body)?;
            let o = object(&v, "the body").map_err(ApiError::invalid)?;
            for (k, v) in o {
                let text = match v {
                    Json::String(s) => s.clone(),
                    Json::Null => continue,
                    other => other.to_string(),
                };
                params.insert(k.clone(), text);
            }
        } else {
            parse_params(&String::from_utf8_lossy(&body), &mut params);
        }
    }
    let header_token = headers.get("x-nudge-token").and_then(|v| v.to_str().ok());
    let dep = shared.deployed();
    let bundle = &dep.bundle;
    let env = &dep.applier.env;
    match intake::check_token(bundle, env, &source, &params, header_token) {
        Ok(()) => {}
        Err(PostbackError::UnknownSource(s)) => {
            return Err(ApiError::not_found(
                "unknown_source",
                format!("unknown source `{s}`"),
            ));
        }
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                e.to_string(),
            ));
        }
    }
    // the token is a secret: never stored with the parameters
    params.remove("token");
    let mapped = match intake::map_postback(bundle, env, &source, &params) {
        Ok(m) => m,
        Err(e) => {
            let (code, reason) = match &e {
                PostbackError::Undeclared(_) => ("undeclared_event", e.to_string()),
                PostbackError::Reserved(_) => ("reserved_event", e.to_string()),
                other => ("invalid_postback", other.to_string()),
            };
            let commit = Commit {
                rejected: vec![(source.clone(), params, reason.clone(), shared.clock.now())],
                ..Commit::default()
            };
            shared.store.commit(&commit).await.map_err(|e| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    e.to_string(),
                )
            })?;
            shared
                .metrics
                .postbacks_rejected
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut err = ApiError::invalid(format!(
                "postback refused: {reason}; it was kept for inspection"
            ));
            err.code = code;
            return Err(err);
        }
    };
    let dedupe = mapped.dedupe.clone();
    let job = Job::Postback {
        source: source.clone(),
        mapped,
        params,
    };
    match shared.queue.submit(vec![job]).await.pop() {
        Some(Ok(Done::DuplicatePostback)) => {
            tracing::info!(
                source = %source,
                dedupe = dedupe.as_deref().unwrap_or_default(),
                "postback ignored: its `dedupe` value was seen before"
            );
            Ok(json(
                StatusCode::OK,
                serde_json::json!({"status": "duplicate"}),
            ))
        }
        Some(Ok(Done::Held)) => Ok(json(
            StatusCode::ACCEPTED,
            serde_json::json!({"status": "held"}),
        )),
        Some(Ok(_)) => Ok(json(
            StatusCode::OK,
            serde_json::json!({"status": "applied"}),
        )),
        Some(Err(e)) => Err(ApiError::from_apply(&e, "")),
        None => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "not applied",
        )),
    }
}
