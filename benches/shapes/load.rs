//! The load of the shapes benches (`benches/shapes.rs` on SQLite,
//! `benches/postgres.rs` on PostgreSQL): the project shaped like the real
//! ones, and the events posted to it, pre-written as keep-alive requests.

use crate::support;
use std::net::SocketAddr;

/// The project: contacts with two unique keys and a union, an event with
/// data, a flow that sets a field, waits until the event's `fire_at`, then
/// sends a templated e-mail to the SMTP sink on `smtp_port` and calls the
/// HTTP sink at `http`.
pub fn project(smtp_port: u16, http: &str) -> String {
    format!(
        r#"contact {{
  email: email? unique
  clickid: text? unique
  first_name: text?
  source: text?
  plan: "free" | "pro" = "free"
}}

event signup {{ source: text?, fire_at: time, amount: decimal? }}
event visit {{}}

channel mail: smtp {{
  host = "127.0.0.1"
  port = {smtp_port}
  security = "none"
  from = "Shop <news@shop.example>"
}}

template welcome: email {{
  subject = "Welcome, {{{{ contact.first_name | default('there') }}}}"
  text = "Hi {{{{ contact.first_name | default('there') }}}}, you are on {{{{ contact.plan }}}} (from {{{{ contact.source | default('nowhere') }}}})."
}}

flow onboard "Onboard" {{
  when signup

  step greet "Greet" {{
    set contact.source = event.source
    wait until event.fire_at
    send mail welcome
    call "{http}/hit?email={{{{ contact.email }}}}&plan={{{{ contact.plan }}}}"
  }}
}}
"#
    )
}

/// The token naming contact `i` of a prefix: its id, and part of its
/// e-mail, click id and event keys (so the raw limit can rewrite the
/// engine's rows for another contact by replacing it).
pub fn token(prefix: &str, i: usize) -> String {
    format!("{prefix}{i:07}")
}

/// One event's JSON. `kind`: `new` (a new contact, by id, with every
/// field), `existing` (by e-mail only, the plan changed) or `visit` (a new
/// contact no flow listens to).
pub fn event_json(kind: &str, prefix: &str, i: usize, fire_at: &str) -> String {
    let t = token(prefix, i);
    match kind {
        "new" => format!(
            r#"{{"event":"signup","id":"{t}-signup","contact":{{"id":"{t}","email":"{t}@bench.example","clickid":"k{t}","first_name":"Ada","plan":"free","timezone":"Europe/Rome"}},"data":{{"source":"ads","fire_at":"{fire_at}","amount":12.5}}}}"#
        ),
        "existing" => format!(
            r#"{{"event":"signup","id":"{t}-again","contact":{{"email":"{t}@bench.example","plan":"pro"}},"data":{{"source":"newsletter","fire_at":"{fire_at}","amount":3}}}}"#
        ),
        _ => format!(
            r#"{{"event":"visit","id":"{t}-visit","contact":{{"id":"{t}","email":"{t}@bench.example","clickid":"k{t}"}}}}"#
        ),
    }
}

/// The requests for events `range` (of `kind`, contacts `prefix`), `batch`
/// per request, dealt over `clients` connections.
pub fn requests(
    addr: SocketAddr,
    (kind, prefix, fire_at): (&str, &str, &str),
    range: std::ops::Range<usize>,
    batch: usize,
    clients: usize,
) -> Vec<Vec<Vec<u8>>> {
    let first = range.start;
    support::deal(range.len() / batch, clients)
        .into_iter()
        .map(|batches| {
            batches
                .map(|b| {
                    let from = first + b * batch;
                    let events: Vec<String> = (from..from + batch)
                        .map(|i| event_json(kind, prefix, i, fire_at))
                        .collect();
                    support::events_request(
                        addr,
                        &format!(r#"{{"events":[{}]}}"#, events.join(",")),
                    )
                })
                .collect()
        })
        .collect()
}
