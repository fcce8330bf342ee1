//! Intake: what comes in from outside (API JSON, postback parameters, test
//! statements) checked against the bundle's schema and turned into values the
//! engine takes. Pure; shared by the daemon and the simulator so both accept
//! and refuse exactly the same inputs.
//!
//! Every error is a sentence for the sender (lowercase, names in backticks).

use crate::vm::{Contact, coerce};
use nudge_compiler::bundle::{Bundle, FieldType, ParamValue};
use nudge_compiler::types::literals;
use nudge_compiler::value::Value;
use std::collections::BTreeMap;

/// Whether a text value has the format its type demands (`email`, `phone`,
/// `url`, `timezone`); other types always pass.
pub fn well_formed(v: &Value, ty: &FieldType) -> bool {
    match (ty, v) {
        (FieldType::Email, Value::Text(s)) => literals::valid_email(s),
        (FieldType::Phone, Value::Text(s)) => literals::valid_phone(s),
        (FieldType::Url, Value::Text(s)) => literals::valid_url(s),
        (FieldType::Timezone, Value::Text(s)) => literals::valid_timezone(s),
        (FieldType::Set(e) | FieldType::List(e), Value::Set(items) | Value::List(items)) => {
            items.iter().all(|i| well_formed(i, e))
        }
        _ => true,
    }
}

/// A type's name as users write it.
pub fn type_name(ty: &FieldType) -> String {
    match ty {
        FieldType::Text => "text".into(),
        FieldType::Int => "int".into(),
        FieldType::Decimal => "decimal".into(),
        FieldType::Bool => "bool".into(),
        FieldType::Time => "time".into(),
        FieldType::Date => "date".into(),
        FieldType::Duration => "duration".into(),
        FieldType::Email => "email".into(),
        FieldType::Phone => "phone".into(),
        FieldType::Url => "url".into(),
        FieldType::Timezone => "timezone".into(),
        FieldType::Set(e) => format!("set<{}>", type_name(e)),
        FieldType::List(e) => format!("list<{}>", type_name(e)),
        FieldType::Union(m) => m
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(" | "),
        FieldType::Json => "json".into(),
    }
}

/// Convert a given value to a field's type and check its format.
pub fn typed(field: &str, v: Value, ty: &FieldType) -> Result<Value, String> {
    let shown = v.to_json().to_string();
    let v = coerce(v, ty)
        .ok_or_else(|| format!("`{field}` must be {}, not `{shown}`", type_name(ty)))?;
    if !well_formed(&v, ty) {
        return Err(format!(
            "`{shown}` is not a valid {} for `{field}`",
            type_name(ty)
        ));
    }
    Ok(v)
}

/// Whether a JSON value has the JSON kind a field's type takes: the API is
/// strict (a number is not a `text`, `"5"` is not an `int`), unlike
/// postback parameters, which are all text and converted.
pub fn json_kind(field: &str, v: &serde_json::Value, ty: &FieldType) -> Result<(), String> {
    use serde_json::Value as J;
    let ok = match (ty, v) {
        (_, J::Null) | (FieldType::Json, _) => true,
        (
            FieldType::Text
            | FieldType::Email
            | FieldType::Phone
            | FieldType::Url
            | FieldType::Timezone
            | FieldType::Union(_)
            | FieldType::Time
            | FieldType::Date,
            J::String(_),
        ) => true,
        (FieldType::Int | FieldType::Duration, J::Number(n)) => n.is_i64(),
        (FieldType::Decimal, J::Number(_)) => true,
        (FieldType::Bool, J::Bool(_)) => true,
        (FieldType::Set(e) | FieldType::List(e), J::Array(items)) => {
            return items.iter().try_for_each(|i| json_kind(field, i, e));
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("`{field}` must be {}, not `{v}`", type_name(ty)))
    }
}

/// JSON members for contact fields, each of the JSON kind its field takes.
pub fn contact_json_kinds(
    bundle: &Bundle,
    m: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), String> {
    for (k, v) in m {
        if let Some(def) = bundle.field(k).filter(|_| k != "id") {
            json_kind(k, v, &def.ty)?;
        }
    }
    Ok(())
}

/// JSON members for an event's fields, each of the JSON kind its field takes.
pub fn event_json_kinds(
    bundle: &Bundle,
    name: &str,
    m: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), String> {
    let Some(def) = bundle.event(name) else {
        return Ok(());
    };
    for (k, v) in m {
        if let Some(f) = def.fields.iter().find(|f| f.name == *k) {
            json_kind(k, v, &f.ty)?;
        }
    }
    Ok(())
}

/// Contact fields given from outside, typed; `id` is left out (it names the
/// contact), built-ins `created_at` cannot be set.
pub fn contact_fields(
    bundle: &Bundle,
    given: Vec<(String, Value)>,
) -> Result<Vec<(String, Value)>, String> {
    let mut out = Vec::new();
    for (k, v) in given {
        if k == "id" {
            continue;
        }
        if k == "created_at" {
            return Err("`created_at` is set by nudge and cannot be given".into());
        }
        let def = bundle
            .field(&k)
            .ok_or_else(|| format!("the contact has no field `{k}`"))?;
        out.push((k.clone(), typed(&k, v, &def.ty)?));
    }
    Ok(out)
}

/// Set typed fields on a contact; returns the names whose value changed.
pub fn set_fields(contact: &mut Contact, fields: Vec<(String, Value)>) -> Vec<String> {
    let mut changed = Vec::new();
    for (k, v) in fields {
        let before = contact.fields.get(&k).cloned().unwrap_or(Value::Null);
        if before == v {
            continue;
        }
        if v.is_null() {
            contact.fields.remove(&k);
        } else {
            contact.fields.insert(k.clone(), v);
        }
        changed.push(k);
    }
    changed
}

/// A new contact: defaults filled, `created_at` and `timezone` set, then the
/// given (already typed) fields; every required field must be present.
pub fn new_contact(
    bundle: &Bundle,
    id: String,
    given: Vec<(String, Value)>,
    now: i64,
) -> Result<Contact, String> {
    let mut fields = BTreeMap::new();
    for f in &bundle.schema {
        match (&f.default, &f.ty) {
            (Some(d), _) => {
                fields.insert(f.name.clone(), d.clone());
            }
            (None, FieldType::Set(_)) => {
                fields.insert(f.name.clone(), Value::Set(Vec::new()));
            }
            (None, FieldType::List(_)) => {
                fields.insert(f.name.clone(), Value::List(Vec::new()));
            }
            _ => {}
        }
    }
    fields.insert("created_at".into(), Value::Time(now));
    fields.insert("timezone".into(), Value::text("UTC"));
    let mut contact = Contact { id, fields };
    set_fields(&mut contact, given);
    if let Some(f) = bundle
        .schema
        .iter()
        .find(|f| !f.optional && f.name != "id" && !contact.fields.contains_key(&f.name))
    {
        return Err(format!("a new contact needs `{}`", f.name));
    }
    Ok(contact)
}

/// The contact's `unique` field values (`id` excluded): its lookup keys.
pub fn unique_keys(bundle: &Bundle, contact: &Contact) -> Vec<(String, String)> {
    bundle
        .schema
        .iter()
        .filter(|f| f.unique && f.name != "id")
        .filter_map(|f| match contact.fields.get(&f.name) {
            Some(Value::Text(v)) => Some((f.name.clone(), v.clone())),
            Some(Value::Int(i)) => Some((f.name.clone(), i.to_string())),
            _ => None,
        })
        .collect()
}

/// The events Nudge raises itself (LANGUAGE.md §4.2: a contact created, its
/// fields changed from outside). No outside input raises them: not the
/// events API, not a postback, not a test's `event` statement.
pub const RESERVED_EVENTS: [&str; 2] = ["contact_created", "contact_updated"];

/// `name` is an event only Nudge raises.
pub fn is_reserved(name: &str) -> bool {
    RESERVED_EVENTS.contains(&name)
}

/// Typed event fields from outside; every required field must be given,
/// and a reserved event is refused.
pub fn event_fields(
    bundle: &Bundle,
    name: &str,
    given: Vec<(String, Value)>,
) -> Result<BTreeMap<String, Value>, String> {
    if is_reserved(name) {
        return Err(format!(
            "`{name}` is raised by nudge itself and cannot be sent"
        ));
    }
    let def = bundle
        .event(name)
        .ok_or_else(|| format!("unknown event `{name}`"))?;
    let mut out = BTreeMap::new();
    for (k, v) in given {
        let f = def
            .fields
            .iter()
            .find(|f| f.name == k)
            .ok_or_else(|| format!("event `{name}` has no field `{k}`"))?;
        let v = typed(&k, v, &f.ty)?;
        if !v.is_null() {
            out.insert(k, v);
        }
    }
    if let Some(f) = def
        .fields
        .iter()
        .find(|f| !f.optional && !out.contains_key(&f.name))
    {
        return Err(format!("event `{name}` needs `{}`", f.name));
    }
    Ok(out)
}

/// A postback mapped through its source: the event and the contact key.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedPostback {
    pub event: String,
    pub fields: BTreeMap<String, Value>,
    pub key_field: String,
    pub key_value: String,
    /// The source's `dedupe` value (LANGUAGE.md A5); `None` without `dedupe`.
    pub dedupe: Option<String>,
}

/// How long a postback's `dedupe` value is kept at least: 30 days (or the
/// source's hold time, if longer) from the postback's arrival.
pub const DEDUPE_KEEP_SECONDS: i64 = 30 * 86_400;

/// Until when a `dedupe` value of `source` received at `now` is kept.
pub fn dedupe_until(bundle: &Bundle, source: &str, now: i64) -> i64 {
    let hold = bundle.source(source).map_or(0, |s| s.hold_seconds);
    now.saturating_add(hold.max(DEDUPE_KEEP_SECONDS))
}

/// The longest `dedupe` value taken, in bytes (as an event `id`).
pub const MAX_DEDUPE: usize = 256;

/// A postback's `dedupe` value: the source's pieces joined. A parameter it
/// reads that is missing or empty rejects the postback (it could not be
/// told apart from a retry), as does a value over [`MAX_DEDUPE`] bytes.
fn dedupe_value(
    parts: &[ParamValue],
    params: &BTreeMap<String, String>,
) -> Result<Option<String>, PostbackError> {
    if parts.is_empty() {
        return Ok(None);
    }
    let mut out = String::new();
    for p in parts {
        match p {
            ParamValue::Param(name) => match params.get(name).filter(|v| !v.is_empty()) {
                Some(v) => out.push_str(v),
                None => {
                    return Err(PostbackError::Invalid(format!(
                        "the postback has no `{name}` to deduplicate it by"
                    )));
                }
            },
            ParamValue::Literal(l) => out.push_str(l),
            // the checker allows no `env(…)` here: a secret is never a key
            ParamValue::Env(_) => {}
        }
    }
    if out.len() > MAX_DEDUPE {
        return Err(PostbackError::Invalid(format!(
            "the postback's `dedupe` value is longer than {MAX_DEDUPE} bytes"
        )));
    }
    Ok(Some(out))
}

/// Why a postback was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostbackError {
    #[error("unknown source `{0}`")]
    UnknownSource(String),
    #[error("wrong or missing token")]
    Unauthorized,
    #[error("event `{0}` is not declared")]
    Undeclared(String),
    #[error("event `{0}` is raised by nudge itself and cannot come from a postback")]
    Reserved(String),
    #[error("{0}")]
    Invalid(String),
}

/// Constant-time equality of two secrets (length may leak, content not).
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn param_value(
    pv: &ParamValue,
    params: &BTreeMap<String, String>,
    env: &BTreeMap<String, String>,
) -> Option<String> {
    match pv {
        ParamValue::Param(p) => params.get(p).cloned(),
        ParamValue::Literal(l) => Some(l.clone()),
        ParamValue::Env(e) => env.get(e).cloned(),
    }
}

/// Check a postback's token: `params["token"]`, or `header_token` (the
/// `X-Nudge-Token` header) when given; compared in constant time.
pub fn check_token(
    bundle: &Bundle,
    env: &BTreeMap<String, String>,
    source: &str,
    params: &BTreeMap<String, String>,
    header_token: Option<&str>,
) -> Result<(), PostbackError> {
    let src = bundle
        .source(source)
        .ok_or_else(|| PostbackError::UnknownSource(source.to_string()))?;
    let expected = param_value(&src.token, &BTreeMap::new(), env);
    let given = header_token.or(params.get("token").map(String::as_str));
    match (expected, given) {
        (Some(e), Some(g)) if !e.is_empty() && same_secret(&e, g) => Ok(()),
        _ => Err(PostbackError::Unauthorized),
    }
}

/// Map a postback's parameters through its source (LANGUAGE.md §4.5): the
/// event name with `rename`, `fields` converted to the event's types, the
/// contact key and the `dedupe` value. The token is checked apart ([`check_token`]).
pub fn map_postback(
    bundle: &Bundle,
    env: &BTreeMap<String, String>,
    source: &str,
    params: &BTreeMap<String, String>,
) -> Result<MappedPostback, PostbackError> {
    let src = bundle
        .source(source)
        .ok_or_else(|| PostbackError::UnknownSource(source.to_string()))?;
    let raw = param_value(&src.event, params, env)
        .ok_or_else(|| PostbackError::Invalid("the postback names no event".into()))?;
    let name = src
        .rename
        .iter()
        .find(|(k, _)| *k == raw)
        .map_or(raw.clone(), |(_, v)| v.clone());
    if is_reserved(&name) {
        return Err(PostbackError::Reserved(name));
    }
    let def = bundle
        .event(&name)
        .ok_or_else(|| PostbackError::Undeclared(name.clone()))?;
    let mut fields = BTreeMap::new();
    for (f, pv) in &src.fields {
        let Some(fd) = def.fields.iter().find(|d| &d.name == f) else {
            continue;
        };
        if let Some(v) = param_value(pv, params, env) {
            let v = typed(f, Value::Text(v), &fd.ty).map_err(PostbackError::Invalid)?;
            fields.insert(f.clone(), v);
        }
    }
    if let Some(f) = def
        .fields
        .iter()
        .find(|f| !f.optional && !fields.contains_key(&f.name))
    {
        return Err(PostbackError::Invalid(format!(
            "event `{name}` needs `{}`",
            f.name
        )));
    }
    let key_value = params
        .get(&src.contact_key)
        .filter(|v| !v.is_empty())
        .cloned()
        .ok_or_else(|| {
            PostbackError::Invalid(format!(
                "the postback has no `{}` to find its contact by",
                src.contact_key
            ))
        })?;
    Ok(MappedPostback {
        event: name,
        fields,
        key_field: src.contact_key.clone(),
        key_value,
        dedupe: dedupe_value(&src.dedupe, params)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_by_content() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }

    #[test]
    fn formats_are_checked() {
        let bad = typed("email", Value::text("nope"), &FieldType::Email);
        assert_eq!(
            bad,
            Err("`\"nope\"` is not a valid email for `email`".to_string())
        );
        assert!(typed("email", Value::text("a@b.example"), &FieldType::Email).is_ok());
        let wrong = typed("n", Value::text("x"), &FieldType::Int);
        assert_eq!(wrong, Err("`n` must be int, not `\"x\"`".to_string()));
    }
}
