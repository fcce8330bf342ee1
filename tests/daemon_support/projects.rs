//! The projects the end-to-end tests run, and the helpers built on them.
//!
//! Takes the sinks' ports; gives `.nudge` sources (with `@NAME@` holes for
//! the ports, filled by [`super::fill`]) that `nudge check` accepts, a
//! scratch directory holding the main project, and small readers of
//! `GET /v1/contacts/{id}`. Guarantees: every source here is a valid project
//! once its holes are filled.

#![allow(clippy::unwrap_used, dead_code)]

use super::{Daemon, Engine, Options, Scratch, fill, wait_until};
use nudge_testkit::{HttpSink, SmtpSink};
use serde_json::{Value, json};
use std::time::Duration;

/// The main project: sign-ups get an e-mail and a CRM webhook, then a
/// follow-up after `wait 2 seconds`; pings go to the CRM; partner postbacks
/// enroll in `registered`.
pub const MAIN: &str = r#"
contact {
  email: email? unique
  phone: phone?
  clickid: text? unique
  first_name: text?
}

event signup { source: text? }
event registration {}
event ping { n: int? }

source partner: postback {
  contact = clickid
  event = param("status")
  token = env("PARTNER_TOKEN")
  rename { "reg" = registration }
}

channel email: smtp {
  host = "127.0.0.1"
  port = @SMTP@
  security = "none"
  from = "Nudge Test <hello@test.example>"
}

channel crm: http {
  method = "POST"
  url = "http://127.0.0.1:@HTTP@/crm/tasks"
  body = json { contact: contact.id, email: contact.email, note: message }
}

template welcome: email {
  subject = "Welcome, {{ contact.first_name }}!"
  text = "Hi {{ contact.first_name }}, thanks for signing up."
}

flow onboarding {
  when signup
  reenter never

  step welcome {
    send email welcome
    send crm "new signup {{ contact.first_name }}"
    wait 2 seconds
  }

  step follow_up {
    send email { subject = "Still there, {{ contact.first_name }}?", text = "Just checking in." }
  }
}

flow pings {
  when ping
  reenter after_exit
  step notify {
    send crm "ping {{ event.n }}"
  }
}

flow registered {
  when registration
  step hello {
    wait 1 day
  }
}
"#;

/// A scratch directory holding [`MAIN`] aimed at these sinks, on SQLite.
pub fn main_project(smtp: &SmtpSink, http: &HttpSink) -> Scratch {
    main_project_on(Engine::Sqlite, smtp, http)
}

/// [`main_project`] on `engine`.
pub fn main_project_on(engine: Engine, smtp: &SmtpSink, http: &HttpSink) -> Scratch {
    let s = Scratch::on(engine, "main");
    s.write(
        "main.nudge",
        &fill(
            MAIN,
            &[
                ("SMTP", smtp.port().to_string()),
                ("HTTP", http.port().to_string()),
            ],
        ),
    );
    s
}

/// Loopback allowed, the partner token set.
pub fn local() -> Options {
    Options::default()
        .arg("--allow-host")
        .arg("127.0.0.1")
        .env("PARTNER_TOKEN", "pt")
}

pub fn signup(id: &str, email: &str, first_name: &str) -> Value {
    json!({"event": "signup", "contact": {"id": id, "email": email, "first_name": first_name}})
}

/// The enrollments of a contact once `pred` holds for them.
pub fn wait_enrollments(d: &Daemon, id: &str, pred: impl Fn(&[Value]) -> bool) -> Value {
    wait_until(Duration::from_secs(5), || {
        let r = d.contact(id);
        (r.status == 200 && pred(r.json()["enrollments"].as_array().unwrap())).then(|| r.json())
    })
    .unwrap_or_else(|| panic!("contact `{id}` never matched: {:?}", d.contact(id)))
}

pub fn in_flow(enrollments: &[Value], flow: &str, status: &str) -> bool {
    enrollments
        .iter()
        .any(|e| e["flow"] == flow && e["status"] == status)
}

/// Outgoing requests to loopback, directly and through every URL form.
pub const SSRF: &str = r#"
event go {}

channel hook: http {
  method = "POST"
  url = "http://127.0.0.1:@PORT@/hook"
  body = json { contact: contact.id, text: message }
}

channel team: slack { webhook = "http://127.0.0.1:@PORT@/slack" }

flow outbound {
  when go
  step out {
    send hook "hello {{ contact.id }}"
    send team "to slack"
    call "http://127.0.0.1:@PORT@/call" with { who = contact.id }
    call "http://[::1]:@PORT@/v6"
    call "http://[::ffff:127.0.0.1]:@PORT@/mapped"
    call "http://2130706433:@PORT@/decimal"
  }
}
"#;

/// A redirect from an allowed host to one that is not.
pub const REDIRECT: &str = r#"
event go {}

channel hook: http {
  method = "POST"
  url = "http://127.0.0.1:@PORT@/start"
  body = json { contact: contact.id, text: message }
}

flow outbound {
  when go
  step out {
    send hook "hello"
  }
}
"#;

/// Two channels on two sinks: one that fails, one that is retried.
pub const RETRY: &str = r#"
event retry_me {}
event fail_me {}

channel crm: http {
  method = "POST"
  url = "http://127.0.0.1:@A@/crm"
  body = json { contact: contact.id, note: message }
}

channel hook: http {
  method = "POST"
  url = "http://127.0.0.1:@B@/hook"
  body = json { contact: contact.id, note: message }
}

flow retrying {
  when retry_me
  step s {
    send crm "retry {{ contact.id }}"
  }
}

flow failing {
  when fail_me
  step s {
    send hook "fail {{ contact.id }}"
  }
}
"#;
