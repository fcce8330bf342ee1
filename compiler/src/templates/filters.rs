//! Nudge's own template filters (LANGUAGE.md A6), defined once for the
//! checker and the runtime: [`environment`] is MiniJinja's default
//! environment (built-in filters, tests and functions, `tojson` from its
//! `json` feature) with `datetime` and `number` added. The checker asks it
//! which names exist; the runtime renders with it. So the two can never
//! disagree about what a template may use.
//!
//! * `datetime(pattern, locale=…, tz=…)`: a `time` (RFC 3339 text, as the
//!   runtime hands instants to templates) in the contact's zone
//!   (`contact.timezone`, else UTC) or in `tz`; a `date` as it is. The
//!   pattern is strftime-style (chrono); month and day names in the locale.
//! * `number(decimals, locale=…)`: rounded to `decimals` places, with the
//!   locale's grouping and decimal separator from the GNU C library's data
//!   (`pure-rust-locales`): `ru` groups with U+202F (narrow no-break space).
//!
//! Locales are `en`, `ru`, `it`, `de`, `fr`, `es`, `pt` (see [`LOCALES`]) or
//! any glibc name (`pt_BR`, `en-GB`). Without `locale=`, `en`.

use super::uses::{Use, UseKind};
use chrono::format::{Item, StrftimeItems};
use chrono::{Locale, TimeZone};
use minijinja::value::Kwargs;
use minijinja::{Environment, Error, ErrorKind, State, Value};
use std::fmt::Write;

/// Nudge's filters, beside MiniJinja's built-ins.
pub const NUDGE_FILTERS: &[&str] = &["datetime", "number"];

/// Short locale names and the glibc locale each one means.
pub const LOCALES: &[(&str, Locale)] = &[
    ("en", Locale::en_US),
    ("ru", Locale::ru_RU),
    ("it", Locale::it_IT),
    ("de", Locale::de_DE),
    ("fr", Locale::fr_FR),
    ("es", Locale::es_ES),
    ("pt", Locale::pt_PT),
];

/// The most decimals `number(…)` prints.
pub const MAX_DECIMALS: i64 = 12;

/// MiniJinja's default environment with Nudge's filters registered.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.add_filter("datetime", datetime);
    env.add_filter("number", number);
    env
}

/// One [`environment`] for the checker's questions.
pub fn shared() -> &'static Environment<'static> {
    static ENV: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();
    ENV.get_or_init(environment)
}

/// Whether the environment has a filter, test or function of that name
/// (asked of the environment itself, as the `is filter` test does).
pub fn exists(kind: UseKind, name: &str) -> bool {
    let env = shared();
    match kind {
        UseKind::Filter => minijinja::tests::is_filter(&env.empty_state(), name),
        UseKind::Test => minijinja::tests::is_test(&env.empty_state(), name),
        UseKind::Function => env.globals().any(|(n, _)| n == name),
    }
}

/// The names the environment has, for "did you mean".
#[derive(Debug, Clone, Default)]
pub struct Known {
    pub filters: Vec<String>,
    pub tests: Vec<String>,
    pub functions: Vec<String>,
}

/// The environment's names. MiniJinja lists filters and tests only in its
/// `Debug` output (`Environment { …, tests: [..], filters: [..], … }`): read
/// them there, keeping only names [`exists`] confirms.
pub fn known() -> &'static Known {
    static KNOWN: std::sync::OnceLock<Known> = std::sync::OnceLock::new();
    KNOWN.get_or_init(|| {
        let env = shared();
        let debug = format!("{env:?}");
        let list = |field: &str, kind: UseKind| -> Vec<String> {
            debug_list(&debug, field)
                .into_iter()
                .filter(|n| exists(kind, n))
                .collect()
        };
        Known {
            filters: list("filters", UseKind::Filter),
            tests: list("tests", UseKind::Test),
            functions: env.globals().map(|(n, _)| n.to_string()).collect(),
        }
    })
}

/// The quoted names of `field: [..]` in a `Debug` text.
fn debug_list(debug: &str, field: &str) -> Vec<String> {
    let Some(start) = debug.find(&format!("{field}: [")) else {
        return Vec::new();
    };
    let rest = &debug[start + field.len() + 3..];
    let end = rest.find(']').unwrap_or(rest.len());
    rest[..end]
        .split(", ")
        .filter_map(|n| n.trim().strip_prefix('"')?.strip_suffix('"'))
        .map(str::to_string)
        .collect()
}

/// Ask MiniJinja whether a filter or test call has the wrong number of
/// arguments: it is called on small values of each kind with its literal
/// arguments; `Some(detail)` when no call succeeds and MiniJinja reports
/// too many or missing arguments. Calls with arguments that are not all
/// literals (or splats) and function calls are not probed.
pub fn probe_arguments(u: &Use) -> Option<String> {
    let small = |v: &Option<Value>| v.as_ref().is_some_and(small_literal);
    if u.splat
        || u.kind == UseKind::Function
        || !u.positional.iter().all(small)
        || !u.kwargs.iter().all(|(_, v)| small(v))
    {
        return None;
    }
    let mut args: Vec<Value> = u.positional.iter().flatten().cloned().collect();
    if !u.kwargs.is_empty() {
        let kw: Kwargs = u
            .kwargs
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect();
        args.push(Value::from(kw));
    }
    let probes = [
        Value::from("2026-01-05T15:00:00Z"),
        Value::from(1),
        Value::from(1.5),
        Value::from(vec![Value::from(1)]),
        Value::from_iter([("a", Value::from(1))]),
        Value::from(()),
    ];
    let env = shared();
    let mut arity = None;
    for p in probes {
        let mut all = vec![p];
        all.extend(args.iter().cloned());
        let mut state = env.empty_state();
        let r = match u.kind {
            UseKind::Filter => state.apply_filter(&u.name, &all).map(|_| ()),
            _ => state.perform_test(&u.name, &all).map(|_| ()),
        };
        match r {
            Ok(()) => return None,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::TooManyArguments | ErrorKind::MissingArgument
                ) =>
            {
                arity = Some(
                    e.detail()
                        .map_or_else(|| e.kind().to_string(), str::to_string),
                );
            }
            Err(_) => {}
        }
    }
    arity
}

/// A literal small enough to call a filter with at compile time (a count
/// of `10000000000` would make `slice` or `indent` work for minutes).
fn small_literal(v: &Value) -> bool {
    match v.kind() {
        minijinja::value::ValueKind::Number => v.as_i64().is_none_or(|n| n.abs() <= 1000),
        minijinja::value::ValueKind::String => v.as_str().is_some_and(|s| s.len() <= 1000),
        minijinja::value::ValueKind::Seq | minijinja::value::ValueKind::Map => {
            v.len().is_some_and(|n| n <= 100)
                && v.try_iter()
                    .is_ok_and(|mut items| items.all(|i| small_literal(&i)))
        }
        _ => true,
    }
}

/// A locale by short (`ru`) or glibc name (`ru_RU`, `pt-BR`).
pub fn locale(name: &str) -> Option<Locale> {
    if let Some((_, l)) = LOCALES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
        return Some(*l);
    }
    Locale::try_from(name.replace('-', "_").as_str()).ok()
}

/// Why a locale name is refused, for errors.
pub fn locale_help() -> String {
    let names: Vec<String> = LOCALES.iter().map(|(n, _)| format!("`{n}`")).collect();
    format!(
        "write one of {}, or a full name such as `pt_BR`",
        names.join(", ")
    )
}

/// Check a strftime pattern: `Err` with what is wrong.
pub fn check_pattern(pattern: &str) -> Result<Vec<Item<'static>>, String> {
    StrftimeItems::new_with_locale(pattern, Locale::en_US)
        .parse_to_owned()
        .map_err(|_| format!("`{pattern}` is not a valid date pattern"))
}

/// Check a time zone name.
pub fn check_zone(tz: &str) -> Result<jiff::tz::TimeZone, String> {
    jiff::tz::TimeZone::get(tz).map_err(|_| format!("`{tz}` is not a known time zone"))
}

/// A literal argument of a Nudge filter that can never work, found at
/// compile time: which argument (position or keyword) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadArgument {
    /// `Ok(i)`: the i-th positional argument; `Err(name)`: a keyword.
    pub at: Result<usize, String>,
    pub reason: String,
    pub help: String,
}

/// Check the literal arguments of a use of one of [`NUDGE_FILTERS`]
/// (`None` for an argument that is not a literal).
pub fn check_literals(
    filter: &str,
    positional: &[Option<Value>],
    kwargs: &[(String, Option<Value>)],
) -> Option<BadArgument> {
    let text = |v: &Option<Value>| v.as_ref().and_then(|v| v.as_str().map(str::to_string));
    for (name, v) in kwargs {
        let Some(s) = text(v) else { continue };
        let bad = match name.as_str() {
            "locale" if locale(&s).is_none() => {
                (format!("`{s}` is not a known locale"), locale_help())
            }
            "tz" if filter == "datetime" && check_zone(&s).is_err() => (
                format!("`{s}` is not a known time zone"),
                "write an IANA zone name such as `Europe/Moscow` or `UTC`".to_string(),
            ),
            _ => continue,
        };
        return Some(BadArgument {
            at: Err(name.clone()),
            reason: bad.0,
            help: bad.1,
        });
    }
    let first = positional.first().cloned().flatten();
    match (filter, first) {
        ("datetime", Some(p)) => {
            let reason = match p.as_str() {
                Some(s) => check_pattern(s).err()?,
                None => format!("the pattern must be a text, not `{p}`"),
            };
            Some(BadArgument {
                at: Ok(0),
                reason,
                help: "write a strftime pattern such as `%-d %B %H:%M` (`%%` for a `%`)".into(),
            })
        }
        ("number", Some(d)) => match d.as_i64() {
            Some(n) if (0..=MAX_DECIMALS).contains(&n) => None,
            _ => Some(BadArgument {
                at: Ok(0),
                reason: format!("`{d}` is not a number of decimals"),
                help: format!("write a whole number from 0 to {MAX_DECIMALS}"),
            }),
        },
        _ => None,
    }
}

fn invalid(msg: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg)
}

fn locale_kwarg(kwargs: &Kwargs) -> Result<Locale, Error> {
    match kwargs.get::<Option<String>>("locale")? {
        None => Ok(Locale::en_US),
        Some(name) => locale(&name).ok_or_else(|| invalid(format!("unknown locale `{name}`"))),
    }
}

/// The zone `datetime` formats in: `tz=…`, else the contact's, else UTC.
fn zone(state: &State, kwargs: &Kwargs) -> Result<jiff::tz::TimeZone, Error> {
    if let Some(tz) = kwargs.get::<Option<String>>("tz")? {
        return check_zone(&tz).map_err(invalid);
    }
    let contact_tz = state
        .lookup("contact")
        .and_then(|c| c.get_attr("timezone").ok())
        .and_then(|z| z.as_str().map(str::to_string));
    match contact_tz {
        Some(tz) if !tz.is_empty() => check_zone(&tz).map_err(invalid),
        _ => Ok(jiff::tz::TimeZone::UTC),
    }
}

/// Civil date and time with its UTC offset, as chrono wants it.
fn to_chrono(
    value: &str,
    tz: &jiff::tz::TimeZone,
) -> Result<chrono::DateTime<chrono::FixedOffset>, Error> {
    let civil_offset = if let Ok(ts) = value.parse::<jiff::Timestamp>() {
        let offset = tz.to_offset(ts);
        (offset.to_datetime(ts), offset.seconds())
    } else if let Ok(d) = value.parse::<jiff::civil::Date>() {
        (d.to_datetime(jiff::civil::Time::midnight()), 0)
    } else {
        return Err(invalid(format!(
            "datetime: `{value}` is not a time or a date"
        )));
    };
    let (dt, offset) = civil_offset;
    let fixed = chrono::FixedOffset::east_opt(offset)
        .ok_or_else(|| invalid(format!("datetime: offset {offset}s out of range")))?;
    fixed
        .with_ymd_and_hms(
            i32::from(dt.year()),
            u32::try_from(dt.month()).unwrap_or(1),
            u32::try_from(dt.day()).unwrap_or(1),
            u32::try_from(dt.hour()).unwrap_or(0),
            u32::try_from(dt.minute()).unwrap_or(0),
            u32::try_from(dt.second()).unwrap_or(0),
        )
        .single()
        .ok_or_else(|| invalid(format!("datetime: `{value}` cannot be shown")))
}

/// `{{ event.starts_at | datetime("%-d %B %H:%M", locale="ru") }}`
fn datetime(
    state: &State,
    value: &Value,
    pattern: String,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let loc = locale_kwarg(&kwargs)?;
    let tz = zone(state, &kwargs)?;
    kwargs.assert_all_used()?;
    if value.is_undefined() || value.is_none() {
        return Ok(String::new());
    }
    let items = check_pattern(&pattern).map_err(invalid)?;
    let text = match value.as_str() {
        Some(s) => s.to_string(),
        None => value.to_string(),
    };
    let dt = to_chrono(&text, &tz)?;
    let mut out = String::new();
    write!(out, "{}", dt.format_localized_with_items(items.iter(), loc))
        .map_err(|_| invalid(format!("datetime: `{pattern}` cannot format `{text}`")))?;
    Ok(out)
}

/// `{{ order.price | number(2, locale="ru") }}` → `1 234,50`
fn number(value: &Value, decimals: Option<i64>, kwargs: Kwargs) -> Result<String, Error> {
    let loc = locale_kwarg(&kwargs)?;
    kwargs.assert_all_used()?;
    if value.is_undefined() || value.is_none() {
        return Ok(String::new());
    }
    let decimals = decimals.unwrap_or(0);
    if !(0..=MAX_DECIMALS).contains(&decimals) {
        return Err(invalid(format!(
            "number: {decimals} decimals (0 to {MAX_DECIMALS})"
        )));
    }
    let n = match value.as_i64() {
        Some(i) => i as f64,
        None => f64::try_from(value.clone())
            .ok()
            .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
            .ok_or_else(|| invalid(format!("number: `{value}` is not a number")))?,
    };
    if !n.is_finite() {
        return Err(invalid(format!("number: `{value}` is not finite")));
    }
    Ok(format_number(n, decimals as usize, loc))
}

/// `n` with `decimals` places in the locale's notation.
pub fn format_number(n: f64, decimals: usize, loc: Locale) -> String {
    let sep = pure_rust_locales::locale_match!(loc => LC_NUMERIC::THOUSANDS_SEP);
    let point = pure_rust_locales::locale_match!(loc => LC_NUMERIC::DECIMAL_POINT);
    let grouping = pure_rust_locales::locale_match!(loc => LC_NUMERIC::GROUPING);
    // half away from zero, as people round money (`format!` rounds to even)
    let scale = 10f64.powi(i32::try_from(decimals).unwrap_or(0));
    let rounded = (n.abs() * scale).round() / scale;
    let plain = format!(
        "{:.*}",
        decimals,
        if rounded.is_finite() {
            rounded
        } else {
            n.abs()
        }
    );
    let (int, frac) = plain.split_once('.').unwrap_or((&plain, ""));
    let mut out = String::new();
    let negative = n < 0.0 && plain.bytes().any(|b| b.is_ascii_digit() && b != b'0');
    if negative {
        out.push('-');
    }
    out.push_str(&group(int, sep, grouping));
    if !frac.is_empty() {
        out.push_str(point);
        out.push_str(frac);
    }
    out
}

/// Digits grouped from the right as glibc's `GROUPING` says: each entry is
/// a group size, the last one repeats; 0 or a negative size ends grouping.
fn group(int: &str, sep: &str, grouping: &[i64]) -> String {
    if sep.is_empty() {
        return int.to_string();
    }
    let digits: Vec<char> = int.chars().collect();
    let mut groups: Vec<String> = Vec::new();
    let mut end = digits.len();
    let mut sizes = grouping.iter().copied();
    let mut size = sizes.next().unwrap_or(0);
    while end > 0 {
        let take = match usize::try_from(size) {
            Ok(s) if s > 0 && s < end => s,
            _ => end,
        };
        groups.push(digits[end - take..end].iter().collect());
        end -= take;
        size = sizes.next().unwrap_or(size);
    }
    groups.reverse();
    groups.join(sep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    fn render(src: &str, ctx: Value) -> Result<String, Error> {
        environment().render_str(src, ctx)
    }

    #[test]
    fn datetime_in_the_contacts_zone_and_locale() {
        let ctx = context! {
            contact => context! { timezone => "Europe/Moscow" },
            t => "2026-01-05T15:00:00Z",
        };
        let out = render(
            "{{ t | datetime('%-d %B %H:%M', locale='ru') }}",
            ctx.clone(),
        );
        assert_eq!(out.as_deref().ok(), Some("5 января 18:00"));
        let out = render("{{ t | datetime('%A %H:%M', locale='de', tz='UTC') }}", ctx);
        assert_eq!(out.as_deref().ok(), Some("Montag 15:00"));
    }

    #[test]
    fn datetime_without_a_zone_is_utc_and_dates_stay() {
        let ctx = context! { t => "2026-07-01T23:30:00Z", d => "2026-03-08" };
        let out = render(
            "{{ t | datetime('%d/%m %H:%M') }} {{ d | datetime('%-d %B', locale='fr') }}",
            ctx,
        );
        assert_eq!(out.as_deref().ok(), Some("01/07 23:30 8 mars"));
    }

    #[test]
    fn datetime_of_unset_is_empty_and_of_text_an_error() {
        assert_eq!(
            render("[{{ nope | datetime('%H') }}]", context! {})
                .ok()
                .as_deref(),
            Some("[]")
        );
        let err = render("{{ 'soon' | datetime('%H') }}", context! {});
        assert!(err.is_err_and(|e| e.to_string().contains("is not a time")));
    }

    #[test]
    fn number_groups_as_the_locale_says() {
        let ctx = context! { p => 1234.5, big => 1234567, neg => -9876543.25 };
        let out = render("{{ p | number(2, locale='ru') }} ₽", ctx.clone());
        assert_eq!(out.as_deref().ok(), Some("1\u{202f}234,50 ₽"));
        let out = render(
            "{{ p | number(2, locale='en') }}|{{ big | number }}|{{ big | number(0, locale='de') }}",
            ctx.clone(),
        );
        assert_eq!(out.as_deref().ok(), Some("1,234.50|1,234,567|1.234.567"));
        let out = render(
            "{{ neg | number(1, locale='pt') }}|{{ neg | number(1, locale='pt_BR') }}",
            ctx,
        );
        assert_eq!(out.as_deref().ok(), Some("-9876543,3|-9.876.543,3"));
        let out = render(
            "{{ p | number(0, locale='en') }}|{{ -0.001 | number(2) }}",
            context! { p => 1234.5 },
        );
        assert_eq!(out.as_deref().ok(), Some("1,235|0.00"));
    }

    #[test]
    fn tojson_is_safe_in_html() {
        let out = render("{{ v | tojson }}", context! { v => "</script>&" });
        assert_eq!(
            out.as_deref().ok(),
            Some("\"\\u003c/script\\u003e\\u0026\"")
        );
    }

    #[test]
    fn the_environment_lists_its_names() {
        let k = known();
        for f in ["upper", "default", "tojson", "datetime", "number"] {
            assert!(k.filters.iter().any(|n| n == f), "{f} in {:?}", k.filters);
        }
        assert!(k.tests.iter().any(|n| n == "odd"));
        assert!(k.functions.iter().any(|n| n == "range"));
        assert!(!exists(UseKind::Filter, "datetimeformat"));
    }

    fn probe(
        kind: UseKind,
        name: &str,
        positional: Vec<Value>,
        kwargs: &[(&str, Value)],
    ) -> Option<String> {
        probe_arguments(&Use {
            kind,
            name: name.into(),
            at: 0,
            positional: positional.into_iter().map(Some).collect(),
            kwargs: kwargs
                .iter()
                .map(|(k, v)| (k.to_string(), Some(v.clone())))
                .collect(),
            arg_spans: Vec::new(),
            splat: false,
        })
    }

    #[test]
    fn minijinja_says_when_arguments_are_wrong() {
        assert!(probe(UseKind::Filter, "upper", vec![], &[]).is_none());
        assert!(probe(UseKind::Filter, "upper", vec![Value::from(2)], &[]).is_some());
        assert!(probe(UseKind::Filter, "replace", vec![Value::from("a")], &[]).is_some());
        assert!(probe(UseKind::Filter, "datetime", vec![Value::from("%d")], &[]).is_none());
        assert!(probe(UseKind::Filter, "datetime", vec![], &[]).is_some());
        let bad = probe(
            UseKind::Filter,
            "number",
            vec![Value::from(2)],
            &[("lang", Value::from("ru"))],
        );
        assert!(bad.is_some_and(|d| d.contains("lang")));
        assert!(probe(UseKind::Test, "odd", vec![Value::from(1)], &[]).is_some());
        assert!(probe(UseKind::Test, "divisibleby", vec![Value::from(3)], &[]).is_none());
        // too big to call at compile time: not probed (and not refused)
        let huge = Value::from(10_000_000_000i64);
        assert!(probe(UseKind::Filter, "slice", vec![huge.clone()], &[]).is_none());
        assert!(probe(UseKind::Filter, "upper", vec![huge], &[]).is_none());
    }

    #[test]
    fn literal_arguments_are_checked() {
        let text = |s: &str| Some(Value::from(s));
        assert!(check_literals("datetime", &[text("%-d %B")], &[]).is_none());
        let bad = check_literals("datetime", &[text("%Q")], &[]);
        assert_eq!(bad.map(|b| b.at), Some(Ok(0)));
        let bad = check_literals(
            "number",
            &[Some(Value::from(2))],
            &[("locale".into(), text("klingon"))],
        );
        assert_eq!(bad.map(|b| b.at), Some(Err("locale".into())));
        let bad = check_literals("datetime", &[None], &[("tz".into(), text("Mars/Base"))]);
        assert!(bad.is_some_and(|b| b.reason.contains("Mars/Base")));
        assert!(check_literals("number", &[Some(Value::from(40))], &[]).is_some());
    }
}
