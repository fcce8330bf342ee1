//! Bounded per-contact state (issue 10, item 6): a contact that went
//! through 10 000 sends and enrollments keeps a state of the same size as
//! after its first hundred, while caps and `reenter` decide exactly as with
//! the whole history; the daemon's flow counts still count every
//! enrollment ever; and a state an earlier build stored (tag `0x01`) reads
//! as it was and is written compacted, as `0x02`, by its next input.

#![allow(clippy::unwrap_used)]

mod daemon_kit;
mod vm_support;

use nudge_runtime::compiler::bundle::Bundle;
use nudge_runtime::compiler::value::{Value, parse_time};
use nudge_runtime::daemon::{Clock, ManualClock};
use nudge_runtime::engine::ContactState;
use nudge_runtime::sim::Sim;
use nudge_runtime::store::doc::encode;
use nudge_runtime::vm::Status;
use std::collections::BTreeMap;

const SRC: &str = r#"
contact { email: email? }
event ping {}
channel mail: smtp { host = "127.0.0.1" from = "a@b.example" cap = 3 per 1 day }
channel bot: http { method = "POST" url = "https://bot.example/send" body = json { text: message } }
template t: email { subject = "hi" text = "x" }
flow again { when ping  step s { send mail t  send bot "again" } }
flow once { reenter never  when ping  step s { send bot "once" } }
"#;

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
const PINGS: usize = 10_000;

fn bundle() -> Bundle {
    vm_support::bundle(SRC)
}

/// The mail sends a cap of 3 per day allows for a ping every hour, counted
/// over the whole history (what the state kept before it was bounded).
fn capped_with_full_history(pings: usize, start: i64) -> Vec<i64> {
    let mut sent: Vec<i64> = Vec::new();
    for k in 0..pings {
        let now = start + k as i64 * HOUR;
        let in_window = sent
            .iter()
            .filter(|t| **t > now - DAY && **t <= now)
            .count();
        if in_window < 3 {
            sent.push(now);
        }
    }
    sent
}

#[test]
fn ten_thousand_sends_and_enrollments_keep_a_bounded_state() {
    let bundle = bundle();
    let mut sim = Sim::new(&bundle).unwrap();
    let email = vec![("email".to_string(), Value::text("c@x.example"))];
    let c = sim.create_contact(Some("c"), email).unwrap();
    let start = sim.now;
    let mut size_at_100 = 0;
    let mut largest = 0;
    for k in 0..PINGS {
        sim.advance_to(start + k as i64 * HOUR).unwrap();
        sim.event(c, "ping", BTreeMap::new());
        let size = encode(&sim.contacts[c]).unwrap().len();
        if k == 99 {
            size_at_100 = size;
        }
        largest = largest.max(size);
    }
    let st = &sim.contacts[c];
    // a few bytes for counters whose varints grew (10 000 needs 2 bytes)
    assert!(
        largest <= size_at_100 + 8,
        "the state grew from {size_at_100} to {largest} bytes"
    );
    assert_eq!(st.enrollments.len(), 2, "{:?}", st.enrollments);
    let folded: Vec<_> = st.folded.iter().map(|f| (f.flow.as_str(), f.n)).collect();
    assert_eq!(folded, [("again", PINGS as i64 - 1)]);
    assert!(st.sent.values().flatten().all(|t| *t > sim.now - DAY));

    // caps decide as they did with the whole history
    let mail: Vec<i64> = sim
        .messages
        .iter()
        .filter(|m| m.item.channel == "mail")
        .map(|m| m.item.at)
        .collect();
    assert_eq!(mail, capped_with_full_history(PINGS, start));
    // `reenter never` still remembers the one enrollment
    let once = sim
        .messages
        .iter()
        .filter(|m| m.item.text.as_deref() == Some("once"))
        .count();
    assert_eq!(once, 1);
    assert_eq!(st.latest("once").map(|e| e.status), Some(Status::Completed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_counts_count_every_enrollment_after_folding() {
    let dir = daemon_kit::Scratch::new("state-bound");
    let clock = ManualClock::new(parse_time("2026-01-05T10:00:00Z").unwrap());
    let (running, store) =
        daemon_kit::start(&dir.db_url(), bundle(), &clock, BTreeMap::new()).await;
    let http = reqwest::Client::new();
    let n = 40;
    for _ in 0..n {
        let res = http
            .post(format!("http://{}/v1/events", running.addr))
            .json(&serde_json::json!({"event": "ping", "contact": {"id": "c"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 202);
    }
    let counts = store.flow_counts().await.unwrap();
    let again = counts.iter().find(|c| c.flow == "again").unwrap();
    assert_eq!((again.enrolled, again.completed), (n, n), "{again:?}");
    let once = counts.iter().find(|c| c.flow == "once").unwrap();
    assert_eq!((once.enrolled, once.completed), (1, 1), "{once:?}");
    let st = store.load_contacts(&["c".to_string()]).await.unwrap();
    assert_eq!(st[0].state.enrollments.len(), 2);
    running.shutdown().await;
}

/// The bytes an earlier build stored for `st` (tag `0x01`): format 2 is
/// format 1 followed by `folded`, and postcard is positional, so a state
/// with nothing folded is format 1 plus one zero byte (an empty list).
fn format_1(st: &ContactState) -> Vec<u8> {
    assert!(st.folded.is_empty());
    let v2 = encode(st).unwrap();
    assert_eq!((v2[0], v2[v2.len() - 1]), (0x02, 0x00));
    let mut v1 = v2[..v2.len() - 1].to_vec();
    v1[0] = 0x01;
    v1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_format_1_state_is_compacted_by_its_next_input() {
    let dir = daemon_kit::Scratch::new("state-convert");
    let clock = ManualClock::new(parse_time("2026-01-05T10:00:00Z").unwrap());
    let ping = serde_json::json!({"event": "ping", "contact": {"id": "c"}});
    let post = |addr: std::net::SocketAddr| {
        let ping = ping.clone();
        async move {
            let res = reqwest::Client::new()
                .post(format!("http://{addr}/v1/events"))
                .json(&ping)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status().as_u16(), 202);
        }
    };
    let (running, store) =
        daemon_kit::start(&dir.db_url(), bundle(), &clock, BTreeMap::new()).await;
    post(running.addr).await;
    running.shutdown().await;

    // what an earlier build left: 30 finished `again` enrollments and a
    // year of sends, as tag 0x01, with the counters that went with them
    let mut st = store.load_contacts(&["c".to_string()]).await.unwrap()[0]
        .state
        .clone();
    let done = st.latest("again").unwrap().clone();
    st.enrollments.extend(std::iter::repeat_n(done, 29));
    let now = clock.now();
    let year: Vec<i64> = (1..=365).map(|d| now - d * DAY).collect();
    st.sent.insert("mail".into(), year);
    let pool = sqlx::SqlitePool::connect(&dir.db_url()).await.unwrap();
    sqlx::query("UPDATE contacts SET state = ? WHERE id = 'c'")
        .bind(format_1(&st))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE flow_counts SET n = 30 WHERE flow = 'again' AND status = 'completed'")
        .execute(&pool)
        .await
        .unwrap();
    let old = store.load_contacts(&["c".to_string()]).await.unwrap();
    assert_eq!(old[0].state, st, "a tag 0x01 row reads as it was written");

    let (running, store) =
        daemon_kit::start(&dir.db_url(), bundle(), &clock, BTreeMap::new()).await;
    post(running.addr).await;
    let (raw,): (Vec<u8>,) =
        sqlx::query_as("SELECT CAST(state AS BLOB) FROM contacts WHERE id = 'c'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(raw[0], 0x02, "written in the current format");
    let new = &store.load_contacts(&["c".to_string()]).await.unwrap()[0].state;
    assert_eq!(new.enrollments.len(), 2, "{:?}", new.enrollments);
    assert_eq!(new.folded.iter().map(|f| f.n).sum::<i64>(), 30);
    assert!(
        new.sent.values().flatten().all(|t| *t > now - DAY),
        "{:?}",
        new.sent
    );
    let counts = store.flow_counts().await.unwrap();
    let again = counts.iter().find(|c| c.flow == "again").unwrap();
    assert_eq!((again.enrolled, again.completed), (31, 31), "{again:?}");
    running.shutdown().await;
    pool.close().await;
}
