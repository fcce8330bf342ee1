//! Manual entries keep `reenter never` (issue 10, item 8): a contact that
//! completed a `reenter never` flow is not entered again by hand, neither
//! through `POST /v1/contacts/{id}/flows/{flow}` (409, code
//! `reenter_never`) nor by `nudge contact move` (an error naming the rule,
//! a non-zero exit); nothing is sent again. A flow with the default
//! `reenter after_exit` is entered again by hand as before.

#![allow(clippy::unwrap_used)]

mod daemon_support;

use daemon_support::projects::{in_flow, local, wait_enrollments};
use daemon_support::{Daemon, Scratch, fill, nudge_cmd};
use nudge_testkit::HttpSink;
use serde_json::json;
use std::time::Duration;

const PROJECT: &str = r#"
contact { email: email? }
event signup {}
channel hook: http {
  method = "POST"
  url = "http://127.0.0.1:@HTTP@/hook"
  body = json { who: contact.id, text: message }
}
flow welcome {
  reenter never
  when signup
  step hello { send hook "welcome" }
}
flow again {
  when signup
  step hi { send hook "again" }
}
"#;

/// How many times the journey says `c` entered `flow`.
fn entries(contact: &serde_json::Value, flow: &str) -> usize {
    contact["journey"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["flow"] == flow && j["what"] == "entered the flow")
        .count()
}

#[test]
fn a_manual_entry_keeps_reenter_never_in_the_api_and_the_cli() {
    let http = HttpSink::start_blocking();
    let s = Scratch::new("manual");
    s.write(
        "main.nudge",
        &fill(PROJECT, &[("HTTP", http.port().to_string())]),
    );
    let mut d = Daemon::start(&s, &local());
    let r = d.post_json(
        "/v1/events",
        &json!({"event": "signup", "contact": {"id": "c"}}),
    );
    assert_eq!(r.status, 202, "{r:?}");
    wait_enrollments(&d, "c", |e| {
        in_flow(e, "welcome", "completed") && in_flow(e, "again", "completed")
    });

    // the API: refused with 409 and the rule, at the start or at a step
    for body in [
        json!({"action": "enter"}),
        json!({"action": "enter", "step": "hello"}),
    ] {
        let r = d.post_json("/v1/contacts/c/flows/welcome", &body);
        let e = r.expect_error(409);
        assert_eq!(e["code"], "reenter_never", "{e}");
        let msg = e["message"].as_str().unwrap();
        assert!(
            msg.contains("reenter never") && msg.contains("completed"),
            "{msg}"
        );
    }
    // `after_exit`: entered again
    let r = d.post_json("/v1/contacts/c/flows/again", &json!({"action": "enter"}));
    assert_eq!(r.status, 200, "{r:?}");
    let got = http.wait_for_blocking(3, Duration::from_secs(5));
    assert_eq!(got.len(), 3, "welcome, again, again: {got:?}");
    let status = d.terminate(Duration::from_secs(5));
    assert!(status.success(), "{}", d.log());

    // the CLI: `contact move` on the completed contact is an error
    let db = s.db();
    for args in [vec!["welcome"], vec!["welcome", "hello"]] {
        let mut all = vec!["contact", "move", "c"];
        all.extend(args);
        all.extend(["--db", db.as_str()]);
        let out = nudge_cmd(&all, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{all:?} succeeded: {stderr}");
        assert!(stderr.contains("reenter never"), "{stderr}");
    }
    let out = nudge_cmd(&["contact", "show", "c", "--db", &db], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(entries(&c, "welcome"), 1, "{c:#}");
    assert_eq!(entries(&c, "again"), 2, "{c:#}");
}
