//! The delivery log of the real `nudge run` binary (JSON lines on stderr,
//! `NUDGE_LOG=info`): every failed attempt, retry schedule (when, attempt n
//! of m) and dead letter is a warn line naming the channel, the outbox id
//! and the reason, and no line carries the URL, its query, a header value
//! or the body of a request.

#![allow(clippy::unwrap_used)]

mod daemon_support;

use daemon_support::{Daemon, Options, Scratch, fill, free_port};
use nudge_testkit::HttpSink;
use serde_json::{Value, json};
use std::time::Duration;

const PROJECT: &str = r#"
event retry_me {}
event fail_me {}
event down_me {}

channel crm: http {
  method = "POST"
  url = "http://127.0.0.1:@A@/crm?key=q-s3cret"
  headers = { "Authorization": "Bearer " + env("CRM_TOKEN") }
  body = json { note: message }
}

channel hook: http {
  method = "POST"
  url = "http://127.0.0.1:@B@/hook"
  body = json { note: message }
}

channel down: http {
  method = "POST"
  url = "http://127.0.0.1:@C@/down"
  body = json { note: message }
}

flow retrying {
  when retry_me
  step s { send crm "body-marker one" }
}

flow failing {
  when fail_me
  step s { send hook "body-marker two" }
}

flow downing {
  when down_me
  step s { send down "body-marker three" }
}
"#;

/// A field of a JSON log line (tracing puts them under `fields`).
fn field<'a>(line: &'a Value, name: &str) -> &'a Value {
    line.get("fields")
        .and_then(|f| f.get(name))
        .or_else(|| line.get(name))
        .unwrap_or(&Value::Null)
}

/// The warn lines with this message.
fn warns<'a>(lines: &'a [Value], message: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["level"] == "WARN" && field(l, "message") == message)
        .collect()
}

/// The outbox id of the one row on `channel`.
fn row_id(rows: &[Value], channel: &str) -> i64 {
    rows.iter()
        .find(|r| r["channel"] == channel)
        .and_then(|r| r["id"].as_i64())
        .unwrap()
}

#[test]
fn failed_attempts_retries_and_dead_letters_are_logged_without_secrets() {
    let (crm, hook) = (HttpSink::start_blocking(), HttpSink::start_blocking());
    let closed = free_port();
    let s = Scratch::new("delivery-log");
    let ports = [
        ("A", crm.port().to_string()),
        ("B", hook.port().to_string()),
        ("C", closed.to_string()),
    ];
    s.write("main.nudge", &fill(PROJECT, &ports));
    crm.respond(500, "{}");
    hook.respond(404, "{}");
    let opts = Options::default()
        .arg("--allow-host")
        .arg("127.0.0.1")
        .arg("--retry-base")
        .arg("1")
        .arg("--max-attempts")
        .arg("2")
        .env("CRM_TOKEN", "tok-S3CRET");
    let d = Daemon::start(&s, &opts);
    for (name, id) in [("retry_me", "r-1"), ("fail_me", "f-1"), ("down_me", "d-1")] {
        let ev = json!({"event": name, "contact": {"id": id}});
        assert_eq!(d.post_json("/v1/events", &ev).status, 202);
    }
    let dead = d.wait_outbox("dead", 2, Duration::from_secs(10));
    assert_eq!(dead.len(), 2, "{dead:?}\n{}", d.log());
    let delivered = d.wait_outbox("delivered", 1, Duration::from_secs(10));
    assert_eq!(delivered.len(), 1, "{delivered:?}\n{}", d.log());
    let (crm_id, hook_id, down_id) = (
        row_id(&delivered, "crm"),
        row_id(&dead, "hook"),
        row_id(&dead, "down"),
    );

    let log = d.log();
    // (a plain `nudge: listening …` line may precede the JSON ones)
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let retries = warns(&lines, "delivery failed; retrying");
    let of = |channel: &str| -> Vec<&Value> {
        retries
            .iter()
            .copied()
            .filter(|l| field(l, "channel") == channel)
            .collect()
    };
    let crm_retry = of("crm");
    assert_eq!(crm_retry.len(), 1, "{log}");
    let l = crm_retry[0];
    assert_eq!(field(l, "outbox_id"), crm_id);
    assert_eq!(
        (field(l, "attempt"), field(l, "max_attempts")),
        (&json!(1), &json!(2))
    );
    assert!(
        field(l, "retry_at")
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{l}"
    );
    assert!(field(l, "reason").as_str().unwrap().contains("500"), "{l}");
    let down_retry = of("down");
    assert_eq!(down_retry.len(), 1, "{log}");
    assert_eq!(field(down_retry[0], "outbox_id"), down_id);
    let used_up = warns(&lines, "delivery failed; attempts used up, dead letter");
    assert_eq!(used_up.len(), 1, "{log}");
    assert_eq!(
        (field(used_up[0], "channel"), field(used_up[0], "outbox_id")),
        (&json!("down"), &json!(down_id))
    );
    assert_eq!(field(used_up[0], "attempt"), 2);
    assert!(
        field(used_up[0], "reason")
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    let refused = warns(&lines, "delivery refused; dead letter");
    assert_eq!(refused.len(), 1, "{log}");
    let l = refused[0];
    assert_eq!(
        (field(l, "channel"), field(l, "outbox_id")),
        (&json!("hook"), &json!(hook_id))
    );
    assert_eq!(field(l, "status"), 404);
    assert!(field(l, "reason").as_str().unwrap().contains("404"), "{l}");

    for secret in [
        "q-s3cret".to_string(),
        "tok-S3CRET".to_string(),
        "body-marker".to_string(),
        "/crm".to_string(),
        format!("127.0.0.1:{}", crm.port()),
        format!("127.0.0.1:{}", hook.port()),
        format!("127.0.0.1:{closed}"),
    ] {
        assert!(!log.contains(&secret), "the log holds `{secret}`:\n{log}");
    }
}
