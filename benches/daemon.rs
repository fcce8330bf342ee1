//! How fast the daemon works end to end on this machine, against the raw
//! SQLite limit.
//!
//! Run with `cargo bench --bench daemon` (release profile); `NUDGE_BENCH_N`
//! sets the number of contacts (default 100 000). It starts the real daemon
//! (`nudge_runtime::daemon::start`) on a SQLite file in a temp directory
//! with a [`ManualClock`], an HTTP sink on loopback (`nudge-testkit`) as the
//! one channel, and one flow: `when signup`, then two steps of `wait 1 day`
//! and `send`. After an untimed warm-up (8 000 `ping` events that no flow
//! listens to):
//!
//! 1. **events/s**: N `signup` events for N new contacts through
//!    `POST /v1/events` in batches of 500 from 8 keep-alive client
//!    connections, timed from the first request to the last 202;
//! 2. **timers/s**: the clock moves past the first day's wait, with
//!    deliveries held (the applier alone); timed until `due_contacts` is
//!    empty (every timer fired and committed). Then the second day's wait
//!    fires with the outbox worker delivering the sends alongside, as in
//!    production ("with deliveries");
//! 3. **deliveries/s**: once that outbox drained, N more outbox rows (the
//!    same payload) are committed at once; timed until all are delivered to
//!    the sink and recorded;
//! 4. **raw limit rows/s**: plain sqlx writing, per event, the rows the
//!    events phase wrote (the contact with the same state bytes, the event
//!    row, the same journal row) with the same batch size, one `BEGIN
//!    IMMEDIATE` transaction per batch, WAL and `synchronous=NORMAL`: into
//!    the engine's own schema (the limit), and into bare tables with primary
//!    keys only (printed beside it).
//!
//! Targets (2 cores): ≥ 20 000 events/s, ≥ 50 000 timers/s, ≥ 5 000
//! deliveries/s, events/s ≥ 50 % of the raw limit.

#![allow(clippy::unwrap_used)]

#[path = "support/mod.rs"]
mod support;

use nudge_runtime::daemon::{Clock, ManualClock};
use nudge_runtime::store::{Commit, JsonText, NewOutbox, OutboxKind, OutboxStatus};
use nudge_testkit::HttpSink;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use support::{T0, fire_timers, insert, replace_bytes, temp, wait_delivered};

const BATCH: usize = 500;
const CLIENTS: usize = 8;
/// Untimed events before the timed ones.
const WARM_UP: usize = 8_000;

fn main() {
    let n = support::env_n(100_000);
    support::runtime().block_on(run(n.max(BATCH) / BATCH * BATCH));
}

fn project(sink: &str) -> String {
    format!(
        r#"contact {{
  first_name: text?
  plan: "free" | "pro" = "free"
}}

event signup {{ source: text? }}
event ping {{}}

channel hook: http {{
  method = "POST"
  url = "{sink}/hook"
  body = json {{ contact: contact.id, plan: contact.plan, note: message }}
}}

flow nurture "Nurture" {{
  when signup

  step later "Later" {{
    wait 1 day
    send hook "Hello {{{{ contact.first_name | default('there') }}}}, still on {{{{ contact.plan }}}}?"
  }}

  step again "Again" {{
    wait 1 day
    send hook "Still there, {{{{ contact.first_name | default('there') }}}}?"
  }}
}}
"#
    )
}

async fn run(n: usize) {
    let sink = HttpSink::start_blocking();
    let dir = temp("daemon");
    let db = dir.join("nudge.db");
    let clock = ManualClock::new(T0);
    let running = support::start(&db, &project(&sink.url()), &clock).await;
    let store = running.store.clone();
    println!("{n} contacts; batches of {BATCH} over {CLIENTS} connections; SQLite in {dir:?}");

    // 0. warm-up, untimed: `ping` events (no flow listens) for other
    // contacts, so the first timed second is not the process's first
    let warm = post_all(running.addr, WARM_UP, "ping", "w").await;
    eprintln!("warm-up: {WARM_UP} events in {:.2} s", warm.as_secs_f64());

    // 1. events through the API
    let events = post_all(running.addr, n, "signup", "c").await;
    let totals = store.totals(T0).await.unwrap();
    assert_eq!(
        totals.contacts,
        (n + WARM_UP) as i64,
        "every contact stored"
    );
    assert_eq!(totals.events, (n + WARM_UP) as i64, "every event stored");

    // what the engine wrote per event, for the raw limit
    let shape = Shape::read(&db).await;

    // 2. due timers: the first wait with deliveries held (the applier
    // alone), the second with the outbox worker delivering alongside
    running.hold_deliveries(true);
    let timers = fire_timers(&running, &clock, 86_400 + 1, n as u64).await;
    running.hold_deliveries(false);
    // time passes while deliveries run (a deferred row comes back after a
    // second of the clock): fast while only a drain is awaited, a second
    // per second while a figure is timed
    let ticker = support::tick(&clock, support::FAST);
    wait_delivered(&store, clock.now(), n as i64).await;
    ticker.abort();
    let ticker = support::tick(&clock, support::REAL_TIME);
    let timers_busy = fire_timers(&running, &clock, 86_400 + 1, 2 * n as u64).await;
    ticker.abort();
    let ticker = support::tick(&clock, support::FAST);
    wait_delivered(&store, clock.now(), 2 * n as i64).await;
    ticker.abort();

    // 3. deliveries of N more rows, alone
    let sample = store
        .outbox_list(Some(OutboxStatus::Delivered), 1)
        .await
        .unwrap()
        .pop()
        .unwrap();
    let rows: Vec<NewOutbox> = (0..n)
        .map(|i| NewOutbox {
            contact: format!("c{i:07}"),
            flow: sample.flow.clone(),
            step: sample.step.clone(),
            kind: OutboxKind::Message,
            payload: JsonText::of(&sample.payload).unwrap(),
            idem_key: format!("bench-{i}"),
            not_before: clock.now(),
        })
        .collect();
    for chunk in rows.chunks(5_000) {
        let commit = Commit {
            outbox: chunk.to_vec(),
            ..Commit::default()
        };
        store.commit(&commit).await.unwrap();
    }
    let ticker = support::tick(&clock, support::REAL_TIME);
    let started = Instant::now();
    running.metrics.outbox_hint();
    wait_delivered(&store, clock.now(), 3 * n as i64).await;
    let deliveries = started.elapsed();
    ticker.abort();
    let received = sink.requests().len();
    assert!(received >= 3 * n, "the sink got {received} of {}", 3 * n);
    running.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);

    // 4. the raw limit
    let dir = temp("raw");
    let raw = raw_limit(&dir.join("raw.db"), &shape, n, false).await;
    let raw_schema = raw_limit(&dir.join("schema.db"), &shape, n, true).await;
    let _ = std::fs::remove_dir_all(&dir);

    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let (ev, tm, dl, lim) = (rate(events), rate(timers), rate(deliveries), rate(raw));
    let lim_schema = rate(raw_schema);
    let busy = rate(timers_busy);
    println!(
        "per event the engine wrote: state {} B, {} journal row(s), {} enrollment(s)",
        shape.state.len(),
        shape.journal.len(),
        shape.enrollments
    );
    println!(
        "events/s           {ev:>9.0}  ({:.2} s)  target ≥ 20 000",
        events.as_secs_f64()
    );
    println!(
        "timers/s           {tm:>9.0}  ({:.2} s)  target ≥ 50 000",
        timers.as_secs_f64()
    );
    println!(
        "  with deliveries  {busy:>9.0}  ({:.2} s)  the outbox worker delivering alongside",
        timers_busy.as_secs_f64()
    );
    println!(
        "deliveries/s       {dl:>9.0}  ({:.2} s)  target ≥ 5 000",
        deliveries.as_secs_f64()
    );
    println!(
        "raw limit rows/s   {lim_schema:>9.0}  ({:.2} s; the events' rows, no engine, the engine's schema)",
        raw_schema.as_secs_f64()
    );
    println!(
        "ratio events/raw   {:>8.0} %  target ≥ 50 %",
        100.0 * ev / lim_schema
    );
    println!(
        "  bare tables      {lim:>9.0}  ({:.2} s; primary keys only: {:.0} %)",
        raw.as_secs_f64(),
        100.0 * ev / lim
    );
}

/// Post `n` events named `event` for contacts `{prefix}0000000…` from
/// [`CLIENTS`] connections; the time from the first request to the last
/// `202`. The requests are written beforehand: the load generator shares
/// the two cores, and its JSON is not the daemon's work.
async fn post_all(addr: SocketAddr, n: usize, event: &str, prefix: &str) -> Duration {
    let clients = support::deal(n / BATCH, CLIENTS)
        .into_iter()
        .map(|batches| event_requests(addr, batches, event, prefix))
        .collect();
    support::post_all(addr, clients, BATCH).await.0
}

/// The HTTP requests posting the batches numbered `batches`.
fn event_requests(
    addr: SocketAddr,
    batches: std::ops::Range<usize>,
    event: &str,
    prefix: &str,
) -> Vec<Vec<u8>> {
    batches
        .map(|b| {
            let events: Vec<serde_json::Value> = (b * BATCH..(b + 1) * BATCH)
                .map(|i| {
                    let mut e = serde_json::json!({
                        "event": event,
                        "id": format!("{prefix}e{i:07}"),
                        "contact": {"id": format!("{prefix}{i:07}"), "first_name": "Ada"},
                    });
                    if event == "signup" {
                        e["data"] = serde_json::json!({"source": "bench"});
                    }
                    e
                })
                .collect();
            let body = serde_json::json!({ "events": events }).to_string();
            support::events_request(addr, &body)
        })
        .collect()
}

/// The rows the engine wrote for one event, read back from its database.
struct Shape {
    state: Vec<u8>,
    event_payload: String,
    /// The `lines` of each journal row.
    journal: Vec<String>,
    enrollments: usize,
}

impl Shape {
    async fn read(db: &Path) -> Shape {
        let pool = support::reader(db).await;
        let id = "c0000000";
        let (state,): (Vec<u8>,) =
            sqlx::query_as("SELECT CAST(state AS BLOB) FROM contacts WHERE id = ?")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap();
        let (event_payload,): (String,) =
            sqlx::query_as("SELECT payload FROM events WHERE contact = ?")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap();
        let journal: Vec<String> =
            sqlx::query_scalar("SELECT lines FROM journal WHERE contact = ? ORDER BY seq")
                .bind(id)
                .fetch_all(&pool)
                .await
                .unwrap();
        let enrollments = nudge_runtime::store::doc::decode(id, &state)
            .unwrap()
            .enrollments
            .len();
        pool.close().await;
        Shape {
            state,
            event_payload,
            journal,
            enrollments,
        }
    }
}

/// Plain sqlx: per event the contact row, the event row and the journal
/// rows, in the same tables without secondary indexes, one transaction per
/// batch.
/// With `schema`, the tables are the engine's own (its migrations, so its
/// secondary indexes too): the limit SQLite sets for these rows as stored.
async fn raw_limit(path: &Path, shape: &Shape, n: usize, schema: bool) -> Duration {
    let pool = support::raw_pool(path, schema).await;
    for ddl in [
        "CREATE TABLE contacts (id TEXT PRIMARY KEY NOT NULL, state BLOB NOT NULL, \
         version INTEGER NOT NULL, next_wake INTEGER, created_at INTEGER NOT NULL, \
         updated_at INTEGER NOT NULL) WITHOUT ROWID",
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, key TEXT, contact TEXT NOT NULL, \
         name TEXT NOT NULL, payload TEXT NOT NULL, received_at INTEGER NOT NULL)",
        "CREATE TABLE journal (seq INTEGER PRIMARY KEY, contact TEXT NOT NULL, \
         lines TEXT NOT NULL)",
    ] {
        if !schema {
            sqlx::query(ddl).execute(&pool).await.unwrap();
        }
    }
    let template_id = "c0000000";
    let started = Instant::now();
    for b in 0..n / BATCH {
        let ids: Vec<String> = (b * BATCH..(b + 1) * BATCH)
            .map(|i| format!("c{i:07}"))
            .collect();
        let states: Vec<Vec<u8>> = ids
            .iter()
            .map(|id| replace_bytes(&shape.state, template_id.as_bytes(), id.as_bytes()))
            .collect();
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        insert(
            &mut tx,
            BATCH,
            ("INSERT INTO contacts VALUES ", "(?, ?, 1, ?, ?, ?)", ""),
            |q, i| {
                q.bind(&ids[i])
                    .bind(&states[i])
                    .bind(T0 + 86_400)
                    .bind(T0)
                    .bind(T0)
            },
        )
        .await;
        insert(
            &mut tx,
            BATCH,
            (
                "INSERT INTO events (key, contact, name, payload, received_at) VALUES ",
                "(?, ?, 'signup', ?, ?)",
                "",
            ),
            |q, i| {
                q.bind(format!("ce{:07}", b * BATCH + i))
                    .bind(&ids[i])
                    .bind(&shape.event_payload)
                    .bind(T0)
            },
        )
        .await;
        for lines in &shape.journal {
            insert(
                &mut tx,
                BATCH,
                ("INSERT INTO journal (contact, lines) VALUES ", "(?, ?)", ""),
                |q, i| q.bind(&ids[i]).bind(lines),
            )
            .await;
        }
        tx.commit().await.unwrap();
    }
    let took = started.elapsed();
    pool.close().await;
    took
}
