//! Building what goes out, from channel settings: the HTTP request of a
//! `call` or of a `send` to an `http` or `slack` channel. JSON bodies are built
//! structurally (a value can never break the JSON); URL templates
//! percent-encode their values. Pure: the daemon and the simulator share it.
//! A template that cannot be rendered or an expression that fails is an
//! [`EvalError`]: the caller fails the enrollment (LANGUAGE.md amendment A4).
//! The request comes out sealed (`seal.rs`): `env` values are references.

use super::eval::{Eval, EvalError, Scope, eval};
use super::render::{RenderKind, render};
use super::seal::{self, SecretRef, Texts};
use nudge_compiler::bundle::{Body, Bundle, CallTarget, ChannelKind};
use nudge_compiler::value::{Value, decimal_json, format_date, format_time};
use std::collections::BTreeMap;

/// A value as JSON for the outside world: instants as RFC 3339 strings.
pub fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Decimal(d) => decimal_json(*d),
        Value::Text(s) => J::String(s.clone()),
        Value::Time(t) => J::String(format_time(*t)),
        Value::Date(d) => J::String(format_date(*d)),
        Value::Duration(s) => J::from(*s),
        Value::List(items) | Value::Set(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

/// The template roots of a place: `contact`, `event`, `flow`, `now`, call
/// results, and whatever the caller adds (`message`, `data`). A define the
/// template reads that fails to evaluate is an error.
pub fn roots(s: &Scope<'_>, bundle: &Bundle, tpl_hint: &str) -> Eval<BTreeMap<String, Value>> {
    let mut r = scope_roots(s);
    for (name, code) in &bundle.defines {
        if tpl_hint.contains(name.as_str()) {
            r.insert(name.clone(), eval(code, s)?);
        }
    }
    Ok(r)
}

/// The roots a scope has: `contact`, `event`, `flow`, `now` and call results.
pub fn scope_roots(s: &Scope<'_>) -> BTreeMap<String, Value> {
    let mut r = BTreeMap::new();
    if let Some(c) = s.contact {
        r.insert("contact".into(), c.as_value());
    }
    if let Some(e) = s.event {
        r.insert("event".into(), e.as_value());
    }
    if let Some((name, step, entered)) = s.flow {
        r.insert(
            "flow".into(),
            Value::Map(BTreeMap::from([
                ("name".to_string(), Value::text(name)),
                ("step".to_string(), Value::text(step)),
                ("entered_at".to_string(), Value::Time(entered)),
            ])),
        );
    }
    r.insert("now".into(), Value::Time(s.now));
    if let Some(l) = s.locals {
        for (k, v) in l {
            r.insert(k.clone(), v.clone());
        }
    }
    r
}

/// A built request.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub json: Option<serde_json::Value>,
    pub body: String,
    /// Where `env` values were left out.
    pub secrets: Vec<SecretRef>,
    /// The journey's line for it as a call (`redact.rs`), made before
    /// sealing: the host stays readable when the whole URL is a secret.
    pub journal: String,
}

fn body_json(b: &Body, s: &Scope<'_>, roots: &BTreeMap<String, Value>) -> Eval<serde_json::Value> {
    Ok(match b {
        Body::Tpl(t) => serde_json::Value::String(render(&t.0, roots, RenderKind::Text)?),
        Body::Expr(c) => to_json(&eval(c, s)?),
        Body::Object(entries) => serde_json::Value::Object(
            entries
                .iter()
                .map(|(k, v)| Ok((k.clone(), body_json(v, s, roots)?)))
                .collect::<Eval<_>>()?,
        ),
        Body::Array(items) => serde_json::Value::Array(
            items
                .iter()
                .map(|i| body_json(i, s, roots))
                .collect::<Result<_, _>>()?,
        ),
    })
}

fn body_text(
    b: &Body,
    s: &Scope<'_>,
    roots: &BTreeMap<String, Value>,
    kind: RenderKind,
) -> Eval<String> {
    match b {
        Body::Tpl(t) => Ok(render(&t.0, roots, kind)?),
        Body::Expr(c) => Ok(match eval(c, s)? {
            Value::Text(t) => t,
            Value::Null => String::new(),
            other => to_json(&other).to_string(),
        }),
        other => Ok(body_json(other, s, roots)?.to_string()),
    }
}

/// Slack's escaping of `&`, `<`, `>` in message text.
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Build the request for a channel or URL, sealed. `message` is the rendered
/// text of a `send`; `data` the object of `call … with` (both readable by the
/// channel's expressions and templates).
pub fn build(
    bundle: &Bundle,
    target: &CallTarget,
    s: &Scope<'_>,
    message: Option<&str>,
    data: Option<&Value>,
) -> Eval<Built> {
    let mut b = build_open(bundle, target, s, message, data)?;
    let no_env = BTreeMap::new();
    let channel = match target {
        CallTarget::Channel(c) => Some(c.as_str()),
        CallTarget::Url(_) => None,
    };
    let env = s.env.unwrap_or(&no_env);
    b.journal = super::redact::call_for_journal(&b.method, channel, &b.url, env);
    let texts = Texts {
        url: &mut b.url,
        headers: &mut b.headers,
        body: &mut b.body,
    };
    b.secrets = seal::seal(bundle, s.env, texts, b.json.as_mut());
    Ok(b)
}

/// The request with its `env` values in it.
fn build_open(
    bundle: &Bundle,
    target: &CallTarget,
    s: &Scope<'_>,
    message: Option<&str>,
    data: Option<&Value>,
) -> Eval<Built> {
    let message_value = message.map_or(Value::Null, Value::text);
    let data_value = data.cloned().unwrap_or_default();
    let outer = s.named;
    let named = |r: &nudge_compiler::bundle::Root| match r {
        nudge_compiler::bundle::Root::Message => message_value.clone(),
        nudge_compiler::bundle::Root::Data => data_value.clone(),
        other => outer.map_or(Value::Null, |f| f(other)),
    };
    let mut inner = *s;
    inner.named = Some(&named);
    let s = &inner;
    // the text whose templates may read defines: the URL, or this channel's
    // settings (only when there are defines: serialising is costly)
    let hint = match target {
        _ if bundle.defines.is_empty() => String::new(),
        CallTarget::Url(u) => u.0.clone(),
        CallTarget::Channel(name) => match bundle.channel(name) {
            Some(c) => serde_json::to_string(c).map_err(|e| {
                EvalError::Request(format!(
                    "the settings of channel `{name}` cannot be read: {e}"
                ))
            })?,
            None => String::new(),
        },
    };
    let mut r = roots(s, bundle, &hint)?;
    if let Some(m) = message {
        r.insert("message".into(), Value::text(m));
    }
    if let Some(d) = data {
        r.insert("data".into(), d.clone());
    }
    match target {
        CallTarget::Url(u) => {
            let url = render(&u.0, &r, RenderKind::Url)?;
            match data {
                Some(Value::Map(m)) if !m.is_empty() => {
                    let json = to_json(&Value::Map(m.clone()));
                    Ok(Built {
                        method: "POST".into(),
                        url,
                        headers: vec![("Content-Type".into(), "application/json".into())],
                        body: json.to_string(),
                        json: Some(json),
                        secrets: Vec::new(),
                        journal: String::new(),
                    })
                }
                _ => Ok(Built {
                    method: "GET".into(),
                    url,
                    headers: Vec::new(),
                    json: None,
                    body: String::new(),
                    secrets: Vec::new(),
                    journal: String::new(),
                }),
            }
        }
        CallTarget::Channel(name) => {
            let ch = bundle
                .channel(name)
                .ok_or_else(|| EvalError::Request(format!("unknown channel `{name}`")))?;
            match &ch.kind {
                ChannelKind::Http {
                    method,
                    url,
                    headers,
                    body,
                } => {
                    let url = body_text(url, s, &r, RenderKind::Url)?;
                    let mut hs = Vec::new();
                    for (k, v) in headers {
                        hs.push((k.clone(), body_text(v, s, &r, RenderKind::Text)?));
                    }
                    let (json, text) = match body {
                        Some(b @ (Body::Object(_) | Body::Array(_))) => {
                            let j = body_json(b, s, &r)?;
                            hs.push(("Content-Type".into(), "application/json".into()));
                            let t = j.to_string();
                            (Some(j), t)
                        }
                        Some(b) => (None, body_text(b, s, &r, RenderKind::Text)?),
                        None => (None, String::new()),
                    };
                    Ok(Built {
                        method: method.clone(),
                        url,
                        headers: hs,
                        json,
                        body: text,
                        secrets: Vec::new(),
                        journal: String::new(),
                    })
                }
                ChannelKind::Slack { webhook } => {
                    let url = match eval(webhook, s)? {
                        Value::Text(t) => t,
                        _ => String::new(),
                    };
                    let json = serde_json::json!({ "text": slack_escape(message.unwrap_or("")) });
                    Ok(Built {
                        method: "POST".into(),
                        url,
                        headers: vec![("Content-Type".into(), "application/json".into())],
                        body: json.to_string(),
                        json: Some(json),
                        secrets: Vec::new(),
                        journal: String::new(),
                    })
                }
                ChannelKind::Smtp { .. } => Err(EvalError::Request(format!(
                    "channel `{name}` sends e-mail; it cannot be called"
                ))),
            }
        }
    }
}
