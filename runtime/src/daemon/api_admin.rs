//! Contacts, flows and the outbox over HTTP: upsert and read a contact
//! (fields, enrollments with their pending waits, journey), enter / move /
//! remove by hand, per-flow counts with pause and resume, dead letters and
//! their retry, refused postbacks.
//!
//! Outbox rows are shown without their payload: a built request carries
//! secrets (webhook URLs, authorization headers) that the API never shows.

use super::Shared;
use super::api::{ApiError, ApiResult, body_bytes, json, parse_body};
use super::apply::{Done, Job};
use crate::engine::{ContactState, EngineInput};
use crate::intake;
use crate::store::{OutboxRow, OutboxStatus, Quarantine, Requeue, StoreError};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use nudge_compiler::value::{Value, format_time};
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::sync::Arc;

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        e.to_string(),
    )
}

/// A store failure as an answer: a quarantined contact is 409.
fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Quarantined { .. } => ApiError::from_apply(&e.into(), ""),
        e => unavailable(e),
    }
}

async fn load(shared: &Shared, id: &str) -> Result<ContactState, ApiError> {
    shared
        .store
        .load_contacts(&[id.to_string()])
        .await
        .map_err(store_error)?
        .pop()
        .map(|v| v.state)
        .ok_or_else(|| ApiError::not_found("unknown_contact", format!("no contact `{id}`")))
}

/// A value as the API shows it: instants in RFC 3339, dates as
/// `YYYY-MM-DD`, durations in seconds.
pub fn value_json(v: &Value) -> Json {
    match v {
        Value::Time(t) => Json::String(format_time(*t)),
        Value::Date(d) => Json::String(nudge_compiler::value::format_date(*d)),
        Value::List(items) | Value::Set(items) => {
            Json::Array(items.iter().map(value_json).collect())
        }
        Value::Map(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), value_json(v))).collect()),
        other => other.to_json(),
    }
}

/// A contact as the API shows it.
pub fn contact_json(st: &ContactState, journey: &[crate::engine::JournalLine]) -> Json {
    let mut fields: serde_json::Map<String, Json> = st
        .contact
        .fields
        .iter()
        .filter(|(k, _)| k.as_str() != "tags")
        .map(|(k, v)| (k.clone(), value_json(v)))
        .collect();
    fields.remove("id");
    let tags = match st.contact.get("tags") {
        Value::Null => json!([]),
        t => value_json(&t),
    };
    let enrollments: Vec<Json> = st
        .enrollments
        .iter()
        .map(|e| {
            json!({
                "flow": e.flow,
                "step": e.step,
                "status": e.status.name(),
                "version": e.version,
                "entered_at": format_time(e.entered_at),
                "wake_at": e.wait.as_ref().and_then(|w| w.wake_at()).map(format_time),
                "awaiting_call": e.wait.as_ref().and_then(|w| w.call.clone()),
                "holdout": e.holdout,
                "failure": e.failure,
            })
        })
        .collect();
    let journey: Vec<Json> = journey
        .iter()
        .map(|j| json!({"at": format_time(j.at), "flow": j.flow, "step": j.step, "what": j.what}))
        .collect();
    json!({
        "id": st.contact.id,
        "fields": fields,
        "tags": tags,
        "enrollments": enrollments,
        "journey": journey,
    })
}

/// `GET /v1/contacts/{id}`
/// A quarantined contact is shown with the reason and its journey, with
/// no fields (its state cannot be read).
pub async fn get_contact(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    let loaded = load(&shared, &id).await;
    let journey = shared.store.journal(&id, 500).await.map_err(unavailable)?;
    match loaded {
        Ok(st) => Ok(json(StatusCode::OK, contact_json(&st, &journey))),
        Err(e) if e.code == "quarantined" => {
            let q = shared.store.quarantine_of(&id).await.map_err(unavailable)?;
            Ok(json(
                StatusCode::OK,
                quarantined_json(&id, q.as_ref(), &e.message, &journey),
            ))
        }
        Err(e) => Err(e),
    }
}

/// A quarantined contact as the API shows it: `quarantined` holds the
/// reason and since when (`fields` and `tags` are null).
pub fn quarantined_json(
    id: &str,
    q: Option<&Quarantine>,
    message: &str,
    journey: &[crate::engine::JournalLine],
) -> Json {
    let journey: Vec<Json> = journey
        .iter()
        .map(|j| json!({"at": format_time(j.at), "flow": j.flow, "step": j.step, "what": j.what}))
        .collect();
    json!({
        "id": id,
        "quarantined": {
            "reason": q.map_or(message, |q| q.reason.as_str()),
            "since": q.map(|q| format_time(q.at)),
            "wake_at": q.and_then(|q| q.next_wake).map(format_time),
        },
        "fields": null,
        "tags": null,
        "enrollments": [],
        "journey": journey,
    })
}

/// `PUT /v1/contacts/{id}` `{"fields": {…}}`
pub async fn put_contact(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    if id.is_empty() || id.len() > 256 {
        return Err(ApiError::invalid("a contact id has 1 to 256 bytes"));
    }
    let v = parse_body(&body_bytes(body)?)?;
    let o = v
        .as_object()
        .ok_or_else(|| ApiError::invalid("the body must be a JSON object"))?;
    if let Some(k) = o.keys().find(|k| k.as_str() != "fields") {
        return Err(ApiError::invalid(format!(
            "unknown member `{k}` (the body has `fields`)"
        )));
    }
    let fields = match o.get("fields") {
        Some(Json::Object(f)) => f,
        None => return Err(ApiError::invalid("`fields` is missing")),
        Some(_) => return Err(ApiError::invalid("`fields` must be a JSON object")),
    };
    if fields
        .get("id")
        .is_some_and(|f| f.as_str() != Some(id.as_str()))
    {
        return Err(ApiError::invalid(
            "`fields.id` differs from the id in the path",
        ));
    }
    let given = fields
        .iter()
        .map(|(k, v)| (k.clone(), Value::from_json(v)))
        .collect();
    let set =
        intake::contact_fields(&shared.deployed().bundle, given).map_err(ApiError::invalid)?;
    let job = Job::Upsert {
        id: id.clone(),
        set,
    };
    match shared.queue.submit(vec![job]).await.pop() {
        Some(Ok(Done::Applied { created, .. })) => Ok(json(
            if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            json!({"id": id, "created": created}),
        )),
        Some(Ok(_)) => Ok(json(StatusCode::OK, json!({"id": id, "created": false}))),
        Some(Err(e)) => Err(ApiError::from_apply(&e, "")),
        None => Err(unavailable("not applied")),
    }
}

/// `POST /v1/contacts/{id}/flows/{flow}` `{"action": "enter"|"move"|"remove", "step": …}`
pub async fn contact_flow(
    State(shared): State<Arc<Shared>>,
    Path((id, flow)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let v = parse_body(&body_bytes(body)?)?;
    let action = v.get("action").and_then(Json::as_str).unwrap_or("");
    let step = match v.get("step") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(_) => return Err(ApiError::invalid("`step` must be a string")),
    };
    let input = manual_input(&shared, &flow, action, step)?;
    let st = load(&shared, &id).await?;
    // the applier checks again on the state it applies to
    let dep = shared.deployed();
    let engine = crate::engine::Engine::new_unhashed(&dep.bundle);
    if let Some(why) = engine.manual_refused(&st, &input) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            why.code(),
            why.to_string(),
        ));
    }
    let job = Job::Manual {
        contact: id.clone(),
        input,
    };
    if let Some(Err(e)) = shared.queue.submit(vec![job]).await.pop() {
        return Err(ApiError::from_apply(&e, ""));
    }
    let st = load(&shared, &id).await?;
    let e = st.latest(&flow);
    Ok(json(
        StatusCode::OK,
        json!({"flow": flow, "status": e.map(|e| e.status.name()), "step": e.map(|e| e.step.clone())}),
    ))
}

/// Check a manual action against the bundle.
pub fn manual_input(
    shared: &Shared,
    flow: &str,
    action: &str,
    step: Option<String>,
) -> Result<EngineInput, ApiError> {
    let dep = shared.deployed();
    let p = dep
        .bundle
        .flow(flow)
        .ok_or_else(|| ApiError::not_found("unknown_flow", format!("no flow `{flow}`")))?;
    if let Some(s) = &step
        && p.step(s).is_none()
    {
        let steps: Vec<String> = p.steps.iter().map(|s| format!("`{}`", s.name)).collect();
        return Err(ApiError::invalid(format!(
            "flow `{flow}` has no step `{s}` (steps: {})",
            steps.join(", ")
        )));
    }
    let flow = flow.to_string();
    match (action, step) {
        ("enter", step) => Ok(EngineInput::Enter { flow, step }),
        ("move", Some(step)) => Ok(EngineInput::Move { flow, step }),
        ("move", None) => Err(ApiError::invalid("`move` needs a `step`")),
        ("remove", _) => Ok(EngineInput::Remove { flow }),
        _ => Err(ApiError::invalid(
            "`action` must be `enter`, `move` or `remove`",
        )),
    }
}

/// `GET /v1/flows`
pub async fn flows(State(shared): State<Arc<Shared>>) -> ApiResult {
    let counts = shared.store.flow_counts().await.map_err(unavailable)?;
    let paused = shared.store.paused().await.map_err(unavailable)?;
    let deployed_at: BTreeMap<String, i64> = shared
        .store
        .bundles()
        .await
        .map_err(unavailable)?
        .into_iter()
        .collect();
    let by_name: BTreeMap<&str, &crate::store::FlowCounts> =
        counts.iter().map(|c| (c.flow.as_str(), c)).collect();
    let dep = shared.deployed();
    let flows: Vec<Json> = dep
        .bundle
        .flows
        .iter()
        .map(|p| {
            let c = by_name
                .get(p.name.as_str())
                .copied()
                .cloned()
                .unwrap_or_default();
            let steps: BTreeMap<String, i64> = p
                .steps
                .iter()
                .map(|s| (s.name.clone(), c.steps.get(&s.name).copied().unwrap_or(0)))
                .collect();
            json!({
                "name": p.name,
                "status": if paused.contains(&p.name) { "paused" } else { "active" },
                "version": dep.version,
                "versions": versions(&c, &dep.version, &deployed_at),
                "enrolled": c.enrolled,
                "active": c.active,
                "completed": c.completed,
                "exited": c.exited,
                "converted": c.converted,
                "failed": c.failed,
                "steps": steps,
            })
        })
        .collect();
    Ok(json(StatusCode::OK, json!({"flows": flows})))
}

/// A flow's versions: the deployed one and every one contacts are active
/// on, the latest deployed first.
fn versions(c: &crate::store::FlowCounts, current: &str, at: &BTreeMap<String, i64>) -> Vec<Json> {
    let mut hashes: Vec<&str> = c.versions.keys().map(String::as_str).collect();
    if !hashes.contains(&current) {
        hashes.push(current);
    }
    let mut out: Vec<(i64, Json)> = hashes
        .into_iter()
        .map(|h| {
            let steps = c.versions.get(h);
            let active: i64 = steps.map_or(0, |s| s.values().sum());
            let deployed_at = at.get(h).copied();
            let row = json!({"hash": h, "deployed_at": deployed_at, "active": active,
                "steps": steps.cloned().unwrap_or_default()});
            (deployed_at.unwrap_or(i64::MIN), row)
        })
        .collect();
    out.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    out.into_iter().map(|(_, j)| j).collect()
}

/// Pause or resume a flow. A pause takes effect at once: the engine leaves
/// the flow alone, and a contact woken for one of its timers only has its
/// wake time written again without it. A resume re-plans every contact's
/// wake time (see [`super::replan`]), so what came due meanwhile fires;
/// that pass runs on its own task, so a caller that goes away does not
/// stop it half way. Gives how many contacts were re-planned.
pub async fn set_paused(shared: &Arc<Shared>, flow: &str, paused: bool) -> Result<usize, ApiError> {
    if shared.deployed().bundle.flow(flow).is_none() {
        return Err(ApiError::not_found(
            "unknown_flow",
            format!("no flow `{flow}`"),
        ));
    }
    shared
        .store
        .set_paused(flow, paused)
        .await
        .map_err(unavailable)?;
    if paused {
        return Ok(0);
    }
    let pass = tokio::spawn(super::replan(
        shared.clone(),
        tokio_util::sync::CancellationToken::new(),
    ));
    Ok(pass.await.unwrap_or(0))
}

/// `POST /v1/flows/{flow}/pause` and `…/resume`
pub async fn flow_action(
    State(shared): State<Arc<Shared>>,
    Path((flow, action)): Path<(String, String)>,
) -> ApiResult {
    let paused = match action.as_str() {
        "pause" => true,
        "resume" => false,
        _ => {
            return Err(ApiError::not_found(
                "no_route",
                "no such endpoint (use `pause` or `resume`)",
            ));
        }
    };
    let replanned = set_paused(&shared, &flow, paused).await?;
    Ok(json(
        StatusCode::OK,
        json!({
            "flow": flow,
            "status": if paused { "paused" } else { "active" },
            "replanned": replanned,
        }),
    ))
}

/// An outbox row as the API shows it (no payload: it may hold secrets).
pub fn outbox_json(r: &OutboxRow) -> Json {
    let channel = r.payload.get("channel").cloned().unwrap_or(Json::Null);
    json!({
        "id": r.id,
        "contact": r.contact,
        "flow": r.flow,
        "step": r.step,
        "kind": match r.kind { crate::store::OutboxKind::Message => "message", crate::store::OutboxKind::Call => "call" },
        "channel": channel,
        "status": r.status.name(),
        "attempts": r.attempts,
        "next_attempt_at": format_time(r.next_attempt_at),
        "last_error": r.last_error,
        "created_at": format_time(r.created_at),
        "idempotency_key": r.idem_key,
    })
}

fn query_map(q: Option<String>) -> BTreeMap<String, String> {
    q.map(|q| {
        form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
    .unwrap_or_default()
}

fn limit_of(q: &BTreeMap<String, String>) -> Result<usize, ApiError> {
    match q.get("limit") {
        None => Ok(100),
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| ApiError::invalid("`limit` must be a number from 1 to 10000")),
    }
}

/// `GET /v1/outbox?status=pending|delivered|dead&limit=N`
pub async fn outbox_list(State(shared): State<Arc<Shared>>, RawQuery(q): RawQuery) -> ApiResult {
    let q = query_map(q);
    let status = match q.get("status") {
        None => None,
        Some(s) => Some(OutboxStatus::from_name(s).ok_or_else(|| {
            ApiError::invalid("`status` must be `pending`, `delivered` or `dead`")
        })?),
    };
    let rows = shared
        .store
        .outbox_list(status, limit_of(&q)?)
        .await
        .map_err(unavailable)?;
    let rows: Vec<Json> = rows.iter().map(outbox_json).collect();
    Ok(json(StatusCode::OK, json!({"outbox": rows})))
}

/// `POST /v1/outbox/{id}/retry`
pub async fn outbox_retry(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::invalid(format!("`{id}` is not an outbox row id")))?;
    let done = shared
        .store
        .outbox_requeue(id, shared.clock.now())
        .await
        .map_err(unavailable)?;
    match done {
        Requeue::Pending => {}
        Requeue::NotDead => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "not_dead",
                format!("outbox row {id} is not a dead letter"),
            ));
        }
        Requeue::Missing => {
            return Err(ApiError::not_found(
                "unknown_outbox_row",
                format!("no outbox row {id}"),
            ));
        }
    }
    shared.metrics.outbox_hint();
    Ok(json(StatusCode::OK, json!({"id": id, "status": "pending"})))
}

/// `GET /v1/postbacks/rejected?limit=N`
pub async fn rejected_postbacks(
    State(shared): State<Arc<Shared>>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q = query_map(q);
    let rows = shared
        .store
        .rejected_postbacks(limit_of(&q)?)
        .await
        .map_err(unavailable)?;
    let rows: Vec<Json> = rows
        .into_iter()
        .map(|(source, params, reason, at)| json!({"source": source, "params": params, "reason": reason, "at": format_time(at)}))
        .collect();
    Ok(json(StatusCode::OK, json!({"rejected": rows})))
}
