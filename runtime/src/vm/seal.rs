//! Secret references in built requests: the outbox holds no `env` value.
//!
//! A request to an `http` or `slack` channel is built with its `env(…)`
//! values in it (a token in a URL, an `Authorization` header, a webhook). Before
//! the request leaves the VM it is **sealed**: every occurrence of the value
//! of an `env` name the request channels read ([`request_env_names`]) in the
//! URL, a header value or the body is replaced by [`SECRET`], and a
//! [`SecretRef`] records where (part, byte offset), which variable, and how
//! the value was written there ([`Enc`]: as is, or escaped inside a JSON
//! string). The journal, the outbox row and `GET /v1/outbox` see only the
//! sealed form. Delivery (`deliver/`) and the simulator's captured calls
//! **unseal** it with the environment they have: the values are joined only
//! when the request is sent, so a rotated token is used by rows queued before
//! the rotation.
//!
//! Values shorter than [`super::redact::MIN_SECRET_LEN`] are not secrets
//! and stay as they are. What is found is what survives into the text
//! unchanged: `env` values joined with `+`, used whole, or placed in a JSON
//! body. A value changed by a
//! function (`upper(env("T"))`) is a different text and is kept as
//! computed (docs/language.md, "`file(…)` and `env(…)`"). Only recorded
//! places are replaced when unsealing, so request content (contact data)
//! can never be read as a reference. A row written before sealing has no
//! references and is sent as it is.

use nudge_compiler::bundle::{Body, Bundle, ChannelKind, Code, Op};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What stands in a sealed text where a secret was.
pub const SECRET: &str = "[secret]";

/// Which text of a request a reference is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Url,
    /// The value of the header at this index.
    Header(usize),
    Body,
}

/// How the value was written at its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Enc {
    /// The value itself.
    #[default]
    Raw,
    /// The value escaped as the inside of a JSON string.
    Json,
}

/// One secret left out of a sealed request: [`SECRET`] stands at `start` in
/// `part`, for the value of `env`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRef {
    pub part: Part,
    pub start: usize,
    pub env: String,
    #[serde(default)]
    pub enc: Enc,
}

/// Why a sealed request cannot be unsealed. Names a variable, never a value.
#[derive(Debug, thiserror::Error)]
pub enum UnsealError {
    #[error("the request needs `env(\"{0}\")`, which is not set")]
    Missing(String),
    #[error("the sealed request is damaged: no secret placeholder in its {0}")]
    Damaged(&'static str),
    #[error("the unsealed body is not JSON")]
    Body(#[source] serde_json::Error),
}

/// The texts of a request, by part.
pub struct Texts<'a> {
    pub url: &'a mut String,
    pub headers: &'a mut [(String, String)],
    pub body: &'a mut String,
}

impl<'a> Texts<'a> {
    pub fn of(
        url: &'a mut String,
        headers: &'a mut [(String, String)],
        body: &'a mut String,
    ) -> Texts<'a> {
        Texts { url, headers, body }
    }
}

/// The `env` names read by `http` and `slack` channels and by defines: the
/// values that can reach a built request.
pub fn request_env_names(bundle: &Bundle) -> BTreeSet<&str> {
    let mut names = BTreeSet::new();
    for ch in &bundle.channels {
        match &ch.kind {
            ChannelKind::Http {
                url, headers, body, ..
            } => {
                body_names(url, &mut names);
                for (_, v) in headers {
                    body_names(v, &mut names);
                }
                if let Some(b) = body {
                    body_names(b, &mut names);
                }
            }
            ChannelKind::Slack { webhook } => code_names(webhook, &mut names),
            ChannelKind::Smtp { .. } => {}
        }
    }
    for (_, code) in &bundle.defines {
        code_names(code, &mut names);
    }
    names
}

fn body_names<'b>(b: &'b Body, out: &mut BTreeSet<&'b str>) {
    match b {
        Body::Tpl(_) => {}
        Body::Expr(c) => code_names(c, out),
        Body::Object(entries) => entries.iter().for_each(|(_, v)| body_names(v, out)),
        Body::Array(items) => items.iter().for_each(|v| body_names(v, out)),
    }
}

fn code_names<'b>(c: &'b Code, out: &mut BTreeSet<&'b str>) {
    for op in &c.0 {
        match op {
            Op::Env(n) => {
                out.insert(n.as_str());
            }
            Op::Render(_, defines) => defines.iter().for_each(|(_, d)| code_names(d, out)),
            _ => {}
        }
    }
}

/// What to look for: (variable, encoding, text as written), longest first.
fn needles<'e>(bundle: &Bundle, env: &'e BTreeMap<String, String>) -> Vec<(&'e str, Enc, String)> {
    let names = request_env_names(bundle);
    let mut out = Vec::new();
    for (name, value) in env.iter().filter(|(n, _)| names.contains(n.as_str())) {
        if value.len() < super::redact::MIN_SECRET_LEN {
            continue;
        }
        out.push((name.as_str(), Enc::Raw, value.clone()));
        let escaped = json_inside(value);
        if escaped != *value {
            out.push((name.as_str(), Enc::Json, escaped));
        }
    }
    // longest first, so that a value inside another is not half replaced
    out.sort_by_key(|(_, _, v)| std::cmp::Reverse(v.len()));
    out
}

/// `value` as the inside of a JSON string literal.
fn json_inside(value: &str) -> String {
    let quoted = serde_json::Value::String(value.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

/// Replace every needle in `text`; the references found, in `part`.
fn seal_text(text: &mut String, part: Part, needles: &[(&str, Enc, String)]) -> Vec<SecretRef> {
    let mut refs = Vec::new();
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    loop {
        // the earliest match; among those at one place, the longest (first)
        let next = needles
            .iter()
            .filter_map(|n| text[pos..].find(n.2.as_str()).map(|i| (pos + i, n)))
            .min_by_key(|(i, _)| *i);
        let Some((at, (name, enc, needle))) = next else {
            break;
        };
        out.push_str(&text[pos..at]);
        refs.push(SecretRef {
            part,
            start: out.len(),
            env: (*name).to_string(),
            enc: *enc,
        });
        out.push_str(SECRET);
        pos = at + needle.len();
    }
    if refs.is_empty() {
        return refs;
    }
    out.push_str(&text[pos..]);
    *text = out;
    refs
}

/// Seal a request's texts against the bundle's request `env` values; `json`
/// (the structured body, shown by tests and kept for display) gets
/// [`SECRET`] for the values in its strings.
pub fn seal(
    bundle: &Bundle,
    env: Option<&BTreeMap<String, String>>,
    t: Texts<'_>,
    json: Option<&mut serde_json::Value>,
) -> Vec<SecretRef> {
    let Some(env) = env else {
        return Vec::new();
    };
    let needles = needles(bundle, env);
    if needles.is_empty() {
        return Vec::new();
    }
    let mut refs = seal_text(t.url, Part::Url, &needles);
    for (i, (_, v)) in t.headers.iter_mut().enumerate() {
        refs.extend(seal_text(v, Part::Header(i), &needles));
    }
    refs.extend(seal_text(t.body, Part::Body, &needles));
    if let Some(j) = json {
        let raw: Vec<_> = needles
            .iter()
            .filter(|n| n.1 == Enc::Raw)
            .cloned()
            .collect();
        seal_json(j, &raw);
    }
    refs
}

fn seal_json(j: &mut serde_json::Value, needles: &[(&str, Enc, String)]) {
    match j {
        serde_json::Value::String(s) => {
            seal_text(s, Part::Body, needles);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|i| seal_json(i, needles)),
        serde_json::Value::Object(m) => m.values_mut().for_each(|v| seal_json(v, needles)),
        _ => {}
    }
}

/// Put the values back at the recorded places. Leaves the texts as they
/// were when it fails.
pub fn unseal(
    refs: &[SecretRef],
    env: &BTreeMap<String, String>,
    t: Texts<'_>,
) -> Result<(), UnsealError> {
    let mut url = t.url.clone();
    let mut headers = t.headers.to_vec();
    let mut body = t.body.clone();
    // from the end of each text, so earlier offsets stay valid
    let mut sorted: Vec<&SecretRef> = refs.iter().collect();
    sorted.sort_by_key(|r| std::cmp::Reverse((r.part, r.start)));
    for r in sorted {
        let value = env
            .get(&r.env)
            .ok_or_else(|| UnsealError::Missing(r.env.clone()))?;
        let (text, what) = match r.part {
            Part::Url => (&mut url, "url"),
            Part::Body => (&mut body, "body"),
            Part::Header(i) => match headers.get_mut(i) {
                Some((_, v)) => (v, "headers"),
                None => return Err(UnsealError::Damaged("headers")),
            },
        };
        let end = r.start + SECRET.len();
        if text.get(r.start..end) != Some(SECRET) {
            return Err(UnsealError::Damaged(what));
        }
        let written = match r.enc {
            Enc::Raw => value.clone(),
            Enc::Json => json_inside(value),
        };
        text.replace_range(r.start..end, &written);
    }
    *t.url = url;
    t.headers.clone_from_slice(&headers);
    *t.body = body;
    Ok(())
}

/// Join the `env` values into a request's texts (the same fields in an
/// `HttpRequest` and a `Request`), then forget its references; gives
/// whether there was anything to join.
fn unseal_fields(
    secrets: &mut Vec<SecretRef>,
    texts: Texts<'_>,
    env: &BTreeMap<String, String>,
) -> Result<bool, UnsealError> {
    if secrets.is_empty() {
        return Ok(false);
    }
    unseal(secrets, env, texts)?;
    secrets.clear();
    Ok(true)
}

impl super::HttpRequest {
    /// The request as it is sent: its `env` values joined in.
    pub fn unseal(&mut self, env: &BTreeMap<String, String>) -> Result<(), UnsealError> {
        let texts = Texts::of(&mut self.url, &mut self.headers, &mut self.body);
        unseal_fields(&mut self.secrets, texts, env).map(|_| ())
    }
}

impl super::Request {
    /// The request as it is sent: its `env` values joined in, and `json`
    /// read again from the joined body.
    pub fn unseal(&mut self, env: &BTreeMap<String, String>) -> Result<(), UnsealError> {
        let texts = Texts::of(&mut self.url, &mut self.headers, &mut self.body);
        if unseal_fields(&mut self.secrets, texts, env)? && self.json.is_some() {
            let json = serde_json::from_str(&self.body).map_err(UnsealError::Body)?;
            self.json = Some(json);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn needles_of(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, Enc, String)> {
        let mut out = Vec::new();
        for (n, v) in pairs {
            out.push((*n, Enc::Raw, v.to_string()));
            if json_inside(v) != *v {
                out.push((*n, Enc::Json, json_inside(v)));
            }
        }
        out.sort_by_key(|(_, _, v)| std::cmp::Reverse(v.len()));
        out
    }

    fn round_trip(pairs: &[(&'static str, &str)], url: &str, body: &str) -> (String, String) {
        let needles = needles_of(pairs);
        let env: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (mut u, mut b) = (url.to_string(), body.to_string());
        let mut headers = vec![(
            "Authorization".to_string(),
            format!("Bearer {}", pairs[0].1),
        )];
        let mut refs = seal_text(&mut u, Part::Url, &needles);
        refs.extend(seal_text(&mut headers[0].1, Part::Header(0), &needles));
        refs.extend(seal_text(&mut b, Part::Body, &needles));
        let sealed = (u.clone(), b.clone());
        for (_, v) in pairs {
            assert!(!u.contains(v) && !b.contains(v) && !headers[0].1.contains(v));
        }
        let texts = Texts {
            url: &mut u,
            headers: &mut headers,
            body: &mut b,
        };
        unseal(&refs, &env, texts).unwrap();
        assert_eq!((u.as_str(), b.as_str()), (url, body));
        assert_eq!(headers[0].1, format!("Bearer {}", pairs[0].1));
        sealed
    }

    #[test]
    fn values_become_references_and_come_back() {
        let (url, body) = round_trip(
            &[
                ("TOKEN", "tok-123"),
                ("HOOK", "https://h.example/tok-123/x"),
            ],
            "https://h.example/tok-123/x?t=tok-123",
            "{\"k\":\"tok-123\"}",
        );
        assert_eq!(url, "[secret]?t=[secret]");
        assert_eq!(body, "{\"k\":\"[secret]\"}");
    }

    #[test]
    fn json_escaped_values_are_found_in_json_bodies() {
        let (_, body) = round_trip(
            &[("PW", "a\"b\\c")],
            "https://x.example/",
            &serde_json::json!({ "pw": "a\"b\\c" }).to_string(),
        );
        assert_eq!(body, "{\"pw\":\"[secret]\"}");
    }

    #[test]
    fn contact_data_that_looks_like_a_placeholder_stays_text() {
        let needles = needles_of(&[("T", "s3cr3t")]);
        let mut body = "[secret] and s3cr3t".to_string();
        let refs = seal_text(&mut body, Part::Body, &needles);
        assert_eq!(refs.len(), 1);
        let env = BTreeMap::from([("T".to_string(), "s3cr3t".to_string())]);
        let (mut url, mut headers) = (String::new(), Vec::new());
        let texts = Texts {
            url: &mut url,
            headers: &mut headers,
            body: &mut body,
        };
        unseal(&refs, &env, texts).unwrap();
        assert_eq!(body, "[secret] and s3cr3t");
    }

    #[test]
    fn a_missing_variable_or_a_damaged_row_is_an_error_naming_no_value() {
        let refs = vec![SecretRef {
            part: Part::Url,
            start: 0,
            env: "TOKEN".into(),
            enc: Enc::Raw,
        }];
        let (mut url, mut headers, mut body) = ("[secret]".to_string(), Vec::new(), String::new());
        fn texts<'a>(
            url: &'a mut String,
            headers: &'a mut Vec<(String, String)>,
            body: &'a mut String,
        ) -> Texts<'a> {
            Texts { url, headers, body }
        }
        let e = unseal(
            &refs,
            &BTreeMap::new(),
            texts(&mut url, &mut headers, &mut body),
        );
        assert!(matches!(e, Err(UnsealError::Missing(n)) if n == "TOKEN"));
        let env = BTreeMap::from([("TOKEN".to_string(), "v".to_string())]);
        let mut moved = "x[secret]".to_string();
        let e = unseal(&refs, &env, texts(&mut moved, &mut headers, &mut body));
        assert!(matches!(e, Err(UnsealError::Damaged("url"))));
        assert_eq!(moved, "x[secret]");
    }
}
