//! Runtime errors under `nudge run` (LANGUAGE.md amendment A4), end to end:
//! the real binary on a fresh SQLite file, delivering to a loopback HTTP
//! sink. A division by zero and a template that cannot be rendered fail
//! their enrollments: the contact's fields stay, nothing goes out for them,
//! the journey says the error and line, `GET /v1/flows` counts them per
//! flow, `/metrics` by flow and reason, and the log has a `warn` line per
//! failure, with no secret in any of it. The contact's other flow delivers.

#![allow(clippy::unwrap_used)]

mod daemon_support;

use daemon_support::projects::{in_flow, local, wait_enrollments};
use daemon_support::{Daemon, Engine, Scratch, fill, wait_until};
use nudge_testkit::{HttpSink, on_both_engines};
use serde_json::json;
use std::time::Duration;

const PROJECT: &str = r#"
contact {
  email: email? unique
  orders: int = 0
  avg: decimal = 0
}

event order {}

channel hook: http {
  method = "POST"
  url = "http://127.0.0.1:@HTTP@/hook"
  headers = { "Authorization": "Bearer " + env("HOOK_TOKEN") }
  body = json { who: contact.id, text: message }
}

flow average {
  when order
  set contact.avg = 100 / contact.orders
  send hook "average {{ contact.avg }}"
}

flow badge {
  when order
  send hook "{{ contact.orders + 'x' }}"
}

flow thanks {
  when order
  send hook "thanks {{ contact.id }}"
}
"#;

const TOKEN: &str = "s3cret-hook-token";

fn order(id: &str) -> serde_json::Value {
    json!({"event": "order", "contact": {"id": id, "orders": 0}})
}

fn failed_enrollments_are_journaled_counted_and_logged(engine: Engine) {
    let http = HttpSink::start_blocking();
    let s = Scratch::on(engine, "errors");
    s.write(
        "main.nudge",
        &fill(PROJECT, &[("HTTP", http.port().to_string())]),
    );
    let d = Daemon::start(&s, &local().env("HOOK_TOKEN", TOKEN));
    for id in ["e-1", "e-2"] {
        let r = d.post_json("/v1/events", &order(id));
        assert_eq!(r.status, 202, "{r:?}");
    }

    // the contact's journey: the error and its line; the field unchanged
    let c = wait_enrollments(&d, "e-2", |e| {
        in_flow(e, "average", "failed") && in_flow(e, "badge", "failed")
    });
    assert_eq!(c["fields"]["avg"], json!(0), "{c}");
    let journey: Vec<String> = c["journey"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            format!(
                "{}: {}",
                j["flow"].as_str().unwrap(),
                j["what"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        journey.contains(&"average: failed: division by zero in `/` (line 19)".to_string()),
        "{journey:#?}"
    );
    let badge = journey
        .iter()
        .find(|j| j.starts_with("badge: failed: template error: "))
        .unwrap_or_else(|| panic!("{journey:#?}"));
    assert!(badge.ends_with("(line 25)"), "{badge}");
    assert!(
        !journey.iter().any(|j| j.contains("skipped")),
        "{journey:#?}"
    );
    assert!(in_flow(
        c["enrollments"].as_array().unwrap(),
        "thanks",
        "completed"
    ));

    // only `thanks` delivered, once per contact (a third request would
    // arrive within the wait)
    let got = http.wait_for_blocking(3, Duration::from_secs(2));
    let mut texts: Vec<String> = got
        .iter()
        .map(|r| serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["text"].to_string())
        .collect();
    texts.sort();
    assert_eq!(texts, ["\"thanks e-1\"", "\"thanks e-2\""]);

    // counted per flow from the store's running counters
    let average = d.flow("average");
    assert_eq!(
        (
            average["enrolled"].clone(),
            average["failed"].clone(),
            average["completed"].clone()
        ),
        (json!(2), json!(2), json!(0)),
        "{average}"
    );
    assert_eq!(d.flow("badge")["failed"], json!(2));
    assert_eq!(d.flow("thanks")["failed"], json!(0));

    // and by flow and reason in /metrics
    let metrics = d.get("/metrics").body;
    for line in [
        "nudge_enrollments_failed_total{flow=\"average\",reason=\"division_by_zero\"} 2",
        "nudge_enrollments_failed_total{flow=\"badge\",reason=\"template\"} 2",
    ] {
        assert!(metrics.contains(line), "`{line}` in:\n{metrics}");
    }

    // one warn line per failure, naming contact, flow and error
    let log = wait_until(Duration::from_secs(5), || {
        let log = d.log();
        (log.matches("enrollment failed").count() >= 4).then_some(log)
    })
    .unwrap_or_else(|| panic!("no warn lines:\n{}", d.log()));
    let line = log
        .lines()
        .find(|l| l.contains("enrollment failed") && l.contains("e-1") && l.contains("average"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("division by zero"), "{line}");

    // the secret is nowhere
    let contact = d.contact("e-1").body;
    for (what, text) in [("log", &log), ("contact", &contact), ("metrics", &metrics)] {
        assert!(
            !text.contains(TOKEN),
            "the token leaks into the {what}:\n{text}"
        );
    }
}

on_both_engines!(failed_enrollments_are_journaled_counted_and_logged,);
