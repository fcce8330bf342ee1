//! The simulator and the daemon agree: one journey through the starter
//! project, once in `Sim` (what `nudge test` runs) and once through the
//! daemon's HTTP API on a real SQLite file with time moved by a
//! `ManualClock`, gives the same messages (channel, template, recipient,
//! subject, text, release instant), the same final enrollments and the
//! same journey lines. A retried postback is a duplicate in both; a
//! postback that came before its contact is held, and applied (and
//! journaled) when the contact is created, in both. A second journey puts
//! a burst of timers due at one instant on one contact (both drive
//! `shell::fire_due`).

#![allow(clippy::unwrap_used)]

mod daemon_kit;
mod vm_support;

use daemon_kit::Engine;
use nudge_testkit::on_both_engines;

use nudge_runtime::compiler::bundle::Bundle;
use nudge_runtime::compiler::files::MemoryFs;
use nudge_runtime::compiler::value::{Value, parse_time};
use nudge_runtime::daemon::{Clock, ManualClock};
use nudge_runtime::engine::JournalLine;
use nudge_runtime::sim::Sim;
use nudge_runtime::vm::Message;
use std::collections::BTreeMap;

const START: &str = "2026-01-05T10:00:00Z";

fn bundle() -> Bundle {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/affiliate_funnel");
    let src = std::fs::read_to_string(format!("{dir}/funnel.nudge")).unwrap();
    let html = std::fs::read_to_string(format!("{dir}/templates/bonus.html")).unwrap();
    vm_support::bundle_with(&src, &MemoryFs::new().with("templates/bonus.html", html))
}

fn env() -> BTreeMap<String, String> {
    [
        ("PARTNER_TOKEN", "s3cret"),
        ("BOT_TOKEN", "b0t"),
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_USER", "u"),
        ("SMTP_PASSWORD", "p"),
        ("SLACK_WEBHOOK", "http://127.0.0.1:1/hook"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// One step of the journey.
enum Step {
    Contact(&'static str, &'static str),
    /// clickid, payout, txid (the source's `dedupe`)
    Postback(&'static str, Option<&'static str>, &'static str),
    After(i64),
}

const JOURNEY: &[Step] = &[
    Step::Contact("c-1", "ck-1"),
    Step::Contact("c-2", "ck-2"),
    Step::Postback("ck-1", None, "t-1"),
    Step::Postback("ck-2", None, "t-2"),
    Step::After(3 * 3600),
    Step::Postback("ck-2", Some("50"), "t-3"),
    Step::After(86_400),
    Step::Postback("ck-2", Some("20"), "t-4"),
    // the network's retry: a duplicate in both
    Step::Postback("ck-2", Some("20"), "t-4"),
    Step::Postback("ck-2", Some("30"), "t-5"),
    // before its contact: held, then applied when c-3 is created
    Step::Postback("ck-3", None, "t-6"),
    Step::After(3600),
    Step::Contact("c-3", "ck-3"),
    Step::After(3 * 86_400),
];

/// A project where one postback puts a contact in many flows whose timers
/// all fall due at the same instant, one of them raising an event that
/// enrols it in more.
fn burst_bundle() -> Bundle {
    let mut src = String::from(
        r#"
contact { email: email? unique  clickid: text? unique  chat_id: text? unique }
event registration {}
event sale { amount: decimal? }
event ping {}
source partner: postback {
  contact = clickid
  event = param("status")
  token = env("PARTNER_TOKEN")
  dedupe = param("txid")
  rename { "reg" = registration, "dep" = sale }
  fields { amount = param("payout") }
}
channel bot: http { method = "POST" url = "https://bot.example/send" body = json { chat: contact.chat_id, text: message } }
flow chain { when registration  step s { wait 1 day  emit ping } }
flow pinged { when ping  step s { send bot "pinged"  wait 1 day  send bot "pinged again" } }
"#,
    );
    for k in 0..12 {
        src.push_str(&format!(
            "flow w{k} {{ when registration  step s {{ wait 1 day  send bot \"w{k}\"  wait 2 hours  tag \"w{k}\" }} }}\n"
        ));
    }
    vm_support::bundle(&src)
}

const BURST: &[Step] = &[
    Step::Postback("ck-9", None, "b-1"),
    Step::Contact("c-9", "ck-9"),
    Step::Contact("c-8", "ck-8"),
    Step::Postback("ck-8", None, "b-2"),
    Step::After(3 * 86_400),
];

/// What is compared: messages, final enrollments, journey lines.
type Seen = (Vec<String>, Vec<String>, Vec<String>);

/// A journey line as compared: contact, instant, flow, step, what.
fn line(id: &str, j: &JournalLine) -> String {
    format!("{id} {} {} {} {}", j.at, j.flow, j.step, j.what)
}

fn describe(m: &Message) -> String {
    format!(
        "{} {:?} to={:?} subject={:?} text={:?} at={}",
        m.channel, m.template, m.to, m.subject, m.text, m.at
    )
}

fn params(clickid: &str, payout: Option<&str>, txid: &str) -> BTreeMap<String, String> {
    let mut p = BTreeMap::from([
        ("clickid".to_string(), clickid.to_string()),
        (
            "status".to_string(),
            if payout.is_some() { "dep" } else { "reg" }.to_string(),
        ),
        ("token".to_string(), "s3cret".to_string()),
        ("txid".to_string(), txid.to_string()),
    ]);
    if let Some(v) = payout {
        p.insert("payout".into(), v.into());
    }
    p
}

fn run_sim(bundle: &Bundle, journey: &[Step]) -> Seen {
    let mut sim = Sim::new(bundle).unwrap();
    sim.env = env();
    sim.now = parse_time(START).unwrap();
    for step in journey {
        match step {
            Step::Contact(id, clickid) => {
                let given = vec![
                    ("id".to_string(), Value::text(*id)),
                    ("clickid".to_string(), Value::text(*clickid)),
                    ("chat_id".to_string(), Value::text(format!("chat-{id}"))),
                    (
                        "email".to_string(),
                        Value::text(format!("{id}@example.com")),
                    ),
                ];
                sim.create_contact(None, given).unwrap();
            }
            Step::Postback(clickid, payout, txid) => {
                sim.postback("partner", params(clickid, *payout, txid))
                    .unwrap();
            }
            Step::After(s) => sim.advance_to(sim.now + s).unwrap(),
        }
    }
    let messages = sim.messages.iter().map(|m| describe(&m.item)).collect();
    let mut enrollments: Vec<String> = sim
        .contacts
        .iter()
        .flat_map(|c| {
            c.enrollments
                .iter()
                .map(|e| format!("{} {} {} {}", c.contact.id, e.flow, e.step, e.status.name()))
        })
        .collect();
    enrollments.sort();
    let mut journal: Vec<String> = sim
        .journal
        .iter()
        .map(|(i, j)| line(&sim.contacts[*i].contact.id, j))
        .collect();
    journal.sort();
    (messages, enrollments, journal)
}

async fn run_daemon(engine: Engine, bundle: Bundle, journey: &[Step], name: &str) -> Seen {
    let dir = daemon_kit::Scratch::on(engine, name);
    let clock = ManualClock::new(parse_time(START).unwrap());
    let (running, store) = daemon_kit::start(&dir.db_url(), bundle, &clock, env()).await;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let mut ids: Vec<String> = Vec::new();
    for step in journey {
        match step {
            Step::Contact(id, clickid) => {
                ids.push(id.to_string());
                let body = serde_json::json!({"fields": {
                    "clickid": clickid, "chat_id": format!("chat-{id}"), "email": format!("{id}@example.com")
                }});
                let res = http
                    .put(format!("{base}/v1/contacts/{id}"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status().as_u16(), 201);
            }
            Step::Postback(clickid, payout, txid) => {
                let query: String = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(params(clickid, *payout, txid))
                    .finish();
                let res = http
                    .get(format!("{base}/postback/partner?{query}"))
                    .send()
                    .await
                    .unwrap();
                // 200 applied (or duplicate), 202 held
                let status = res.status().as_u16();
                assert!(
                    status == 200 || status == 202,
                    "{status} {}",
                    res.text().await.unwrap()
                );
            }
            Step::After(s) => daemon_kit::advance(&store, &clock, clock.now() + s).await,
        }
    }
    let rows = store.outbox_list(None, 10_000).await.unwrap();
    let mut rows: Vec<_> = rows
        .into_iter()
        .filter(|r| r.payload.get("channel").is_some())
        .collect();
    rows.sort_by_key(|r| r.id);
    let messages = rows
        .iter()
        .filter_map(|r| serde_json::from_value::<Message>(r.payload.clone()).ok())
        .map(|m| describe(&m))
        .collect();
    let mut enrollments: Vec<String> = store
        .load_contacts(&ids)
        .await
        .unwrap()
        .iter()
        .flat_map(|v| {
            v.state.enrollments.iter().map(|e| {
                format!(
                    "{} {} {} {}",
                    v.state.contact.id,
                    e.flow,
                    e.step,
                    e.status.name()
                )
            })
        })
        .collect();
    enrollments.sort();
    let mut journal: Vec<String> = Vec::new();
    for id in &ids {
        let lines = store.journal(id, 10_000).await.unwrap();
        journal.extend(lines.iter().map(|j| line(id, j)));
    }
    journal.sort();
    running.shutdown().await;
    (messages, enrollments, journal)
}

/// Runs a journey in both and compares what they did.
async fn agree(engine: Engine, bundle: Bundle, journey: &[Step], name: &str) -> Seen {
    let sim = run_sim(&bundle, journey);
    let daemon = run_daemon(engine, bundle, journey, name).await;
    assert_eq!(daemon.1, sim.1, "enrollments differ");
    assert_eq!(daemon.0, sim.0, "messages differ");
    assert_eq!(daemon.2, sim.2, "journeys differ");
    sim
}

async fn a_journey_gives_the_same_steps_and_messages_in_both(engine: Engine) {
    let sim = agree(engine, bundle(), JOURNEY, "agree").await;
    assert!(sim.0.len() >= 5, "the journey sends messages: {:?}", sim.0);
    assert!(sim.1.iter().any(|e| e.contains("converted")), "{:?}", sim.1);
    let held: Vec<&String> = sim
        .2
        .iter()
        .filter(|l| l.contains("held postback from `partner` applied"))
        .collect();
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(held[0].starts_with("c-3 "), "{held:?}");
    assert!(
        sim.1.iter().any(|e| e.starts_with("c-3 first_deposit")),
        "the held registration enrolled c-3: {:?}",
        sim.1
    );
}

async fn a_burst_of_timers_due_at_once_fires_the_same_in_both(engine: Engine) {
    let sim = agree(engine, burst_bundle(), BURST, "agree-burst").await;
    // two contacts, each: 12 flows due at once, and the flow their event enrolled
    assert_eq!(sim.0.len(), 2 * (12 + 2), "{:?}", sim.0);
    assert!(
        sim.2
            .iter()
            .any(|l| l.starts_with("c-9 ") && l.contains("held postback")),
        "{:?}",
        sim.2
    );
}

on_both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async a_journey_gives_the_same_steps_and_messages_in_both,
    a_burst_of_timers_due_at_once_fires_the_same_in_both,
);
