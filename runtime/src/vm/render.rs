//! Templates at run time (LANGUAGE.md §7, §10): MiniJinja with the lenient
//! default, so an unset optional is undefined — falsy in `{% if %}`, replaced
//! by `default(…)`, printed empty. Values are HTML-escaped in `html` bodies
//! and percent-encoded (RFC 3986 unreserved kept) inside URLs; subjects and
//! texts are not escaped. Fuel bounds the work of any one template. The
//! filters are the checker's ([`nudge_compiler::templates::filters`]), so a
//! template that passed `nudge check` finds every filter it names; the
//! contact's zone reaches `datetime` through the `contact` root. A template
//! that still fails (fuel, a value of the wrong kind) is a [`RenderError`].

use minijinja::{AutoEscape, Environment, Value as J};
use nudge_compiler::value::{Value, format_date, format_time};
use std::collections::BTreeMap;

/// Where a rendered text goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderKind {
    /// Subjects, texts, chat messages: no escaping.
    Text,
    /// HTML bodies: values HTML-escaped.
    Html,
    /// URLs: values percent-encoded as URI components.
    Url,
}

const FUEL: u64 = 50_000;

fn env(kind: RenderKind) -> Environment<'static> {
    let mut env = nudge_compiler::templates::filters::environment();
    env.set_fuel(Some(FUEL));
    match kind {
        RenderKind::Text => env.set_auto_escape_callback(|_| AutoEscape::None),
        RenderKind::Html => env.set_auto_escape_callback(|_| AutoEscape::Html),
        RenderKind::Url => {
            env.set_auto_escape_callback(|_| AutoEscape::None);
            env.set_formatter(|out, _state, value| {
                if value.is_undefined() || value.is_none() {
                    return Ok(());
                }
                let s = match value.as_str() {
                    Some(s) => s.to_string(),
                    None => value.to_string(),
                };
                out.write_str(&percent_encode(&s)).map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())
                })
            });
        }
    }
    env
}

/// Templates compiled at most once per thread and kind (`render_str`
/// would parse on every call): one environment per kind holds them, named by
/// their own text. Past [`CACHE_LIMIT`] templates it starts afresh.
const CACHE_LIMIT: usize = 4096;

struct Cache {
    env: Environment<'static>,
    kind: RenderKind,
    len: usize,
}

thread_local! {
    static CACHES: std::cell::RefCell<Vec<Cache>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A template that could not be rendered; keeps MiniJinja's error.
#[derive(Debug, thiserror::Error)]
#[error("template error: {detail}")]
pub struct RenderError {
    /// What went wrong, in MiniJinja's words.
    pub detail: String,
    #[source]
    pub source: minijinja::Error,
}

impl RenderError {
    fn new(e: minijinja::Error) -> RenderError {
        let detail = e
            .detail()
            .map(str::to_string)
            .unwrap_or_else(|| e.kind().to_string());
        RenderError { detail, source: e }
    }

    /// The fuel ran out: the template does too much work.
    pub fn out_of_fuel(&self) -> bool {
        self.source.kind() == minijinja::ErrorKind::OutOfFuel
    }
}

/// Render a template with named roots (`contact`, `event`, `flow`, …).
pub fn render(
    source: &str,
    roots: &BTreeMap<String, Value>,
    kind: RenderKind,
) -> Result<String, RenderError> {
    if !source.contains("{{") && !source.contains("{%") && !source.contains("{#") {
        return Ok(source.to_string());
    }
    let ctx: BTreeMap<String, J> = roots
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), to_jinja(v)))
        .collect();
    CACHES.with(|caches| {
        let mut caches = caches.borrow_mut();
        let i = match caches.iter().position(|c| c.kind == kind) {
            Some(i) => i,
            None => {
                caches.push(Cache {
                    env: env(kind),
                    kind,
                    len: 0,
                });
                caches.len() - 1
            }
        };
        let cache = &mut caches[i];
        if cache.env.get_template(source).is_err() {
            if cache.len >= CACHE_LIMIT {
                cache.env = env(kind);
                cache.len = 0;
            }
            cache
                .env
                .add_template_owned(source.to_string(), source.to_string())
                .map_err(RenderError::new)?;
            cache.len += 1;
        }
        cache
            .env
            .get_template(source)
            .and_then(|t| t.render(ctx))
            .map_err(RenderError::new)
    })
}

/// A value for MiniJinja: unset map entries are left out (undefined).
fn to_jinja(v: &Value) -> J {
    match v {
        Value::Null => J::from(()),
        Value::Bool(b) => J::from(*b),
        Value::Int(i) => J::from(*i),
        Value::Decimal(d) => {
            if d.fract() == 0.0 && d.abs() < 9.0e15 {
                J::from(*d as i64)
            } else {
                J::from(*d)
            }
        }
        Value::Text(s) => J::from(s.clone()),
        Value::Time(t) => J::from(format_time(*t)),
        Value::Date(d) => J::from(format_date(*d)),
        Value::Duration(s) => J::from(*s),
        Value::List(items) | Value::Set(items) => {
            J::from(items.iter().map(to_jinja).collect::<Vec<_>>())
        }
        Value::Map(m) => J::from(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), to_jinja(v)))
                .collect::<BTreeMap<String, J>>(),
        ),
    }
}

/// Percent-encode as a URI component: only RFC 3986 unreserved characters stay.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
        let contact: BTreeMap<String, Value> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        BTreeMap::from([("contact".to_string(), Value::Map(contact))])
    }

    #[test]
    fn unset_is_undefined() {
        let r = roots(&[("first_name", Value::Null)]);
        let out = render(
            "Hi {{ contact.first_name | default('friend') }}{% if contact.first_name %}!{% endif %}",
            &r,
            RenderKind::Text,
        );
        assert_eq!(out.ok().as_deref(), Some("Hi friend"));
        assert_eq!(
            render("[{{ contact.first_name }}]", &r, RenderKind::Text)
                .ok()
                .as_deref(),
            Some("[]")
        );
    }

    #[test]
    fn escaping_by_context() {
        let r = roots(&[("name", Value::text("Ann <b>&"))]);
        assert_eq!(
            render("{{ contact.name }}", &r, RenderKind::Text)
                .ok()
                .as_deref(),
            Some("Ann <b>&")
        );
        assert_eq!(
            render("{{ contact.name }}", &r, RenderKind::Html)
                .ok()
                .as_deref(),
            Some("Ann &lt;b&gt;&amp;")
        );
        assert_eq!(
            render(
                "https://x.example/?q={{ contact.name }}",
                &r,
                RenderKind::Url
            )
            .ok()
            .as_deref(),
            Some("https://x.example/?q=Ann%20%3Cb%3E%26")
        );
    }

    #[test]
    fn decimals_print_shortest() {
        let r = roots(&[("a", Value::Decimal(4.5)), ("b", Value::Decimal(120.0))]);
        assert_eq!(
            render("{{ contact.a }} {{ contact.b }}", &r, RenderKind::Text)
                .ok()
                .as_deref(),
            Some("4.5 120")
        );
    }

    #[test]
    fn runaway_templates_stop() {
        let r = roots(&[]);
        let out = render(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            &r,
            RenderKind::Text,
        );
        assert!(out.is_err_and(|e| e.out_of_fuel()));
    }

    #[test]
    fn nudge_filters_render_in_the_contacts_zone() {
        let r = roots(&[
            ("timezone", Value::text("Europe/Moscow")),
            ("starts", Value::Time(1_767_625_200)),
            ("price", Value::Decimal(1234.5)),
            ("tags", Value::List(vec![Value::text("<a>")])),
        ]);
        let out = render(
            "{{ contact.starts | datetime('%-d %B %H:%M', locale='ru') }}|{{ contact.price | number(2, locale='ru') }} ₽|{{ contact.tags | tojson }}",
            &r,
            RenderKind::Html,
        );
        assert_eq!(
            out.ok().as_deref(),
            Some("5 января 18:00|1\u{202f}234,50 ₽|[\"\\u003ca\\u003e\"]")
        );
    }
}
