//! Templates end to end, through the real binary (LANGUAGE.md A2, A6): the
//! strings of `call … with` and `emit` are rendered; `datetime`, `number`
//! and `tojson` render in `nudge test`; a filter the runtime does not have
//! is refused by `nudge check`; a template that fails at run time is in the
//! journey, not silently dropped.

#![allow(clippy::unwrap_used)]

mod cli_support;

use cli_support::*;

const SCHEMA: &str = "contact {\n  name: text?\n  client_name: text?\n}\n\
event visit { starts_at: time, price: decimal }\n\
event note { text: text, count: int? }\n\
channel team: slack { webhook = \"https://hooks.example/x\" }\n";

fn project(test: &str, body: &str) -> std::path::PathBuf {
    let dir = scratch("cli_templates", test);
    std::fs::write(dir.join("a.nudge"), format!("{SCHEMA}{body}")).unwrap();
    dir
}

#[test]
fn call_with_and_emit_strings_are_templates_and_filters_render() {
    let dir = project(
        "rendered",
        r#"
flow booked {
  when visit
  send team "Your visit: {{ event.starts_at | datetime('%-d %B %H:%M', locale='ru') }}, {{ event.price | number(2, locale='ru') }} ₽"
  call "https://crm.example/api/tasks" with { text = "Call {{ contact.name }}", tags = ["{{ contact.name | upper }}", "static"], raw = "{{ contact.name | tojson }}" }
  emit note { text = "Booked by {{ contact.name }} for {{ event.price | number(0, locale='en') }}" }
}

flow noted {
  when note
  send team "{{ event.text }}"
}

test "templates everywhere" {
  contact { name = "Ann", timezone = "Europe/Moscow" }
  event visit { starts_at = 2026-01-05T15:00:00Z, price = 1234.5 }
  expect sent team where message.text == "Your visit: 5 января 18:00, 1\u{202f}234,50 ₽"
  expect called "https://crm.example/api/tasks" where request.json.text == "Call Ann" and request.json.tags == ["ANN", "static"] and request.json.raw == "\"Ann\""
  expect sent team where message.text == "Booked by Ann for 1,235"
}

test "a value is never rendered as a template" {
  contact { name = "{{ 7 * 7 }}", timezone = "UTC" }
  event visit { starts_at = 2026-01-05T15:00:00Z, price = 5 }
  expect called "https://crm.example/api/tasks" where request.json.text == "Call {{ 7 * 7 }}"
  expect sent team where message.text == "Booked by {{ 7 * 7 }} for 5"
}

test "the zone is the contact's" {
  contact { name = "Bo", timezone = "America/New_York" }
  event visit { starts_at = 2026-01-05T15:00:00Z, price = 5 }
  expect sent team where message.text == "Your visit: 5 января 10:00, 5,00 ₽"
}
"#,
    );
    let run = nudge(&["test", s(&dir)]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        run.stdout.lines().last(),
        Some("3 passed, 0 failed"),
        "{}",
        run.stdout
    );
}

#[test]
fn check_refuses_what_the_runtime_cannot_render() {
    let dir = project(
        "refused",
        r#"
flow booked {
  when visit
  send team "Your visit: {{ event.starts_at | datetimeformat }}"
  send team "{{ event.price | numbr(2) }} {% if event.price is evn %}!{% endif %} {{ lenght(contact.name) }}"
  send team "{{ event.starts_at | datetime('%Q') }} {{ event.price | number(2, locale='klingon') }} {{ contact.name | upper(2) }}"
  call "https://crm.example/api/tasks" with { text = "Call {{ contact.nmae }}" }
  emit note { text = "{{ event.price | tojsn }}" }
  send team "Hi {client_name}, {\"a\": 1} {} {{ contact.name }}"
}
"#,
    );
    let run = nudge(&["check", s(&dir)]);
    assert_eq!(run.code, 1, "{}", run.all());
    let err = &run.all();
    for want in [
        "nudge::templates::unknown_filter",
        "unknown template filter `datetimeformat`",
        "did you mean `number`?",
        "nudge::templates::unknown_test",
        "did you mean `even`?",
        "nudge::templates::unknown_function",
        "unknown template function `lenght`",
        "the template functions are `debug`, `dict`, `namespace`, `range`",
        "nudge::templates::invalid_filter_argument",
        "`%Q` is not a valid date pattern",
        "`klingon` is not a known locale",
        "nudge::templates::wrong_arguments",
        "wrong arguments for filter `upper`",
        "unknown template variable `contact.nmae`",
        "did you mean `tojson`?",
        "nudge::templates::single_brace",
        "write {{ contact.client_name }}",
    ] {
        assert!(err.contains(want), "missing {want:?} in\n{err}");
    }
    assert_eq!(
        err.matches("nudge::templates::single_brace").count(),
        1,
        "{err}"
    );
}

#[test]
fn a_template_that_fails_at_run_time_fails_the_enrollment() {
    let dir = project(
        "runaway",
        r#"
flow booked {
  when visit
  call "https://crm.example/api/tasks" with { text = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}" }
}

test "runaway" {
  contact { name = "Ann" }
  event visit { starts_at = 2026-01-05T15:00:00Z, price = 1 }
  expect completed booked
}
"#,
    );
    let run = nudge(&["test", "--trace", s(&dir)]);
    // never a silent skip (amendment A4): the enrollment fails, with the line
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stdout.contains(
            "but it failed at step `start`: template error: engine ran out of fuel (line 11)"
        ),
        "{}",
        run.all()
    );
    assert!(!run.stdout.contains("call skipped"), "{}", run.all());
}
