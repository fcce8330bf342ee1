//! Reserved events stay reserved: `contact_created` and `contact_updated`
//! are raised by Nudge only. A postback naming one (directly or through
//! `rename`) is refused and kept for inspection like an undeclared event;
//! `POST /v1/events` refuses them; a test that sends one fails saying why.
#![allow(clippy::unwrap_used)]

mod daemon_support;

use daemon_support::{Daemon, Options, Scratch, nudge_cmd, wait_until};
use serde_json::json;
use std::time::Duration;

const PROJECT: &str = r#"
contact { clickid: text? unique }

event registration {}

source partner: postback {
  contact = clickid
  event = param("status")
  token = env("PARTNER_TOKEN")
  rename { "reg" = registration, "new" = contact_created }
}

channel crm: http {
  method = "POST"
  url = "http://127.0.0.1:9/welcome"
  body = json { id: contact.id }
}

flow welcome {
  when contact_created
  reenter restart
  send crm "welcome"
}
"#;

const TESTS: &str = r#"
test "an event" {
  env PARTNER_TOKEN = "pt"
  contact { clickid = "ck-1" }
  event contact_created
}

test "a postback" {
  env PARTNER_TOKEN = "pt"
  contact { clickid = "ck-1" }
  postback partner { clickid = "ck-1", status = "contact_updated", token = "pt" }
}

test "a renamed postback" {
  env PARTNER_TOKEN = "pt"
  contact { clickid = "ck-1" }
  postback partner { clickid = "ck-1", status = "new", token = "pt" }
}
"#;

fn project() -> Scratch {
    let s = Scratch::new("reserved");
    s.write("main.nudge", PROJECT);
    s
}

#[test]
fn a_test_that_sends_a_reserved_event_fails_saying_why() {
    let s = project();
    s.write("tests.nudge", TESTS);
    let out = nudge_cmd(&["test", s.project().to_str().unwrap()], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("0 passed, 3 failed"), "{stdout}");
    assert!(
        stdout.contains("`contact_created` is raised by nudge itself and cannot be sent"),
        "{stdout}"
    );
    for name in ["contact_updated", "contact_created"] {
        assert!(
            stdout.contains(&format!(
                "postback refused: event `{name}` is raised by nudge itself"
            )),
            "{name}: {stdout}"
        );
    }
}

#[test]
fn the_daemon_refuses_reserved_events_from_postbacks_and_the_events_api() {
    let s = project();
    let d = Daemon::start(&s, &Options::default().env("PARTNER_TOKEN", "pt"));
    let r = d.send_json(
        "PUT",
        "/v1/contacts/c-1",
        &json!({"fields": {"clickid": "ck-1"}}),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let one = wait_until(Duration::from_secs(5), || {
        let rows = d.outbox(None);
        (rows.len() == 1).then_some(rows)
    });
    assert!(one.is_some(), "no welcome row: {:?}", d.outbox(None));

    for status in ["contact_created", "contact_updated", "new"] {
        let r = d.get(&format!(
            "/postback/partner?clickid=ck-1&status={status}&token=pt"
        ));
        let e = r.expect_error(422);
        assert_eq!(e["code"], "reserved_event", "{status}: {r:?}");
    }
    let rejected = d.get("/v1/postbacks/rejected").json()["rejected"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(rejected.len(), 3, "{rejected:?}");
    for row in &rejected {
        let reason = row["reason"].as_str().unwrap();
        assert!(reason.contains("raised by nudge itself"), "{row}");
        assert!(row["params"].get("token").is_none(), "{row}");
    }

    for name in ["contact_created", "contact_updated"] {
        let ev = json!({"event": name, "contact": {"id": "c-1"}});
        let r = d.post_json("/v1/events", &ev);
        let e = r.expect_error(422);
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("raised by nudge itself"),
            "{r:?}"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(d.outbox(None).len(), 1, "a reserved event was applied");
}
