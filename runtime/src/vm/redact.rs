//! What the journey may say of a request: never a secret.
//!
//! A call's URL can carry secrets: an `env(…)` value (a whole channel URL,
//! a token in a path or a query), credentials before the host, or a query
//! string of tokens. The journey, which `nudge test --trace`, `nudge contact
//! show` and `GET /v1/contacts/{id}` all print, names the channel and the
//! host only, as the SSRF guard does ([`call_for_journal`]). A failed
//! `expect called` in a test shows a little more ([`url_for_journal`]): the
//! URL without its query, fragment and credentials. Both replace every `env`
//! value the bundle reads by `[secret]` (values of at least
//! [`MIN_SECRET_LEN`] bytes).

use std::collections::BTreeMap;

/// What replaces a secret.
pub const SECRET: &str = "[secret]";

/// `env` values shorter than this are not taken for secrets (a `t`, a
/// `v2`): replacing them would mangle every text they occur in.
pub const MIN_SECRET_LEN: usize = 4;

/// The journey's line for a call: ``call POST `crm` at crm.example``, or
/// `call GET at hooks.example` for a bare URL.
pub fn call_for_journal(
    method: &str,
    channel: Option<&str>,
    url: &str,
    env: &BTreeMap<String, String>,
) -> String {
    let shown = url_for_journal(url, env);
    let after_scheme = shown.find("://").map_or(0, |i| i + 3);
    let rest = &shown[after_scheme..];
    let host = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let host = if host.is_empty() { "no host" } else { host };
    match channel {
        Some(c) => format!("call {method} `{c}` at {host}"),
        None => format!("call {method} at {host}"),
    }
}

/// `url` without its query, fragment and credentials, and no `env` value.
pub fn url_for_journal(url: &str, env: &BTreeMap<String, String>) -> String {
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    let mut out = url[..cut].to_string();
    if cut < url.len() {
        out.push_str("?…");
    }
    if let Some(scheme_end) = out.find("://") {
        let host_start = scheme_end + 3;
        let authority_end = out[host_start..]
            .find('/')
            .map_or(out.len(), |i| host_start + i);
        if let Some(at) = out[host_start..authority_end].rfind('@') {
            out.replace_range(host_start..=host_start + at, "");
        }
    }
    let mut secrets: Vec<&str> = env
        .values()
        .map(String::as_str)
        .filter(|v| v.len() >= MIN_SECRET_LEN)
        .collect();
    // longest first, so that a value inside another is not half replaced
    secrets.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for s in secrets {
        out = out.replace(s, SECRET);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn query_credentials_and_env_values_never_show() {
        let e = env(&[("CRM_TOKEN", "SECRET123"), ("EMPTY", ""), ("SHORT", "t")]);
        assert_eq!(
            url_for_journal("https://crm.example/api?token=SECRET123", &e),
            "https://crm.example/api?…"
        );
        assert_eq!(
            url_for_journal("https://bot:pw@crm.example/v1/SECRET123/leads#x", &e),
            "https://crm.example/v1/[secret]/leads?…"
        );
        assert_eq!(
            url_for_journal("https://crm.example/api/leads", &e),
            "https://crm.example/api/leads"
        );
    }

    #[test]
    fn the_journey_names_the_channel_and_the_host_only() {
        let e = env(&[("CRM_TOKEN", "SECRET123"), ("HOST", "crm.internal.example")]);
        let line = |ch, url| call_for_journal("POST", ch, url, &e);
        assert_eq!(
            line(
                Some("crm"),
                "https://u:pw@crm.example:8443/v1/SECRET123?k=1"
            ),
            "call POST `crm` at crm.example:8443"
        );
        assert_eq!(
            line(None, "https://hooks.example?token=x"),
            "call POST at hooks.example"
        );
        assert_eq!(
            line(Some("crm"), "https://crm.internal.example/x"),
            "call POST `crm` at [secret]"
        );
        assert_eq!(line(None, "not a url"), "call POST at not a url");
    }

    #[test]
    fn a_whole_url_from_env_is_a_secret() {
        let e = env(&[
            ("CRM_URL", "https://crm.example/hook/abc"),
            ("PART", "hook"),
        ]);
        assert_eq!(url_for_journal("https://crm.example/hook/abc", &e), SECRET);
    }
}
