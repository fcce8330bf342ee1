//! The shapes bench on PostgreSQL (issue 12): the realistic project of
//! `benches/shapes.rs` (contacts with two unique keys, events with data, a
//! wait and templated sends), run by one daemon and by two daemons sharing
//! one database, beside the raw limit: the same rows written into the same
//! schema with plain sqlx from one process (`postgres/raw.rs`).
//!
//! Run with `scripts/bench-postgres` (it starts a throw-away cluster with
//! the server's default durability, exports `NUDGE_TEST_POSTGRES_URL` and
//! runs `cargo bench --bench postgres`). Each figure is measured on a
//! fresh database. Phases, in order:
//!
//! * `ingest, 1 daemon`: N `signup` events for new contacts, batches of 500
//!   from 8 keep-alive connections;
//! * `ingest, 2 daemons`: the same on a fresh database, 4 connections to
//!   each of two daemons (both in this process, sharing its two cores);
//! * `timers`: the N contacts of each run wait on one instant; the clock
//!   moves past it with deliveries held, until none is due (1 and 2
//!   daemons);
//! * `raw limit`: per event exactly the rows the 1-daemon ingest wrote
//!   (the contact with the same state bytes, its two key rows, the event
//!   row, the journal row, the counters), batches of 500, one transaction
//!   per batch, one `UNNEST` statement per table, 8 connections at once.
//!
//! `NUDGE_BENCH_N` sets N (default 50 000).

#![allow(clippy::unwrap_used)]

#[path = "support/mod.rs"]
mod support;

#[path = "shapes/load.rs"]
mod load;

#[path = "postgres/raw.rs"]
mod raw;

use load::{project, requests, token};
use nudge_runtime::daemon::{Clock, ManualClock, Running};
use nudge_testkit::pg::PgDatabase;
use nudge_testkit::{HttpSink, SmtpSink};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use support::T0;

const BATCH: usize = 500;
const CLIENTS: usize = 8;
const DAY: i64 = 86_400;
/// Untimed events before the timed ones.
const WARM_UP: usize = 4_000;
const FIRE_AT: &str = "2027-01-16T08:00:00Z";

fn main() {
    let n = support::env_n(50_000).max(BATCH) / BATCH * BATCH;
    let rt = support::runtime();
    rt.block_on(async {
        println!("{n} events per phase, PostgreSQL at {}", shown());
        let (one, one_timers, shape_db) = run(n, 1).await;
        let (two, two_timers, _db) = run(n, 2).await;
        let shape = raw::Shape::read(shape_db.url(), &token("n", 0)).await;
        println!("  {}", shape.describe());
        let raw_db = PgDatabase::create("bench_raw").await;
        let limit = raw::write_all(&raw_db, &shape, n, BATCH, CLIENTS).await;
        let rate = |d: Duration| n as f64 / d.as_secs_f64();
        println!(
            "ingest, 1 daemon:   {:>8.0} events/s ({:.0} % of raw)",
            rate(one),
            100.0 * rate(one) / rate(limit)
        );
        println!(
            "ingest, 2 daemons:  {:>8.0} events/s ({:.2}x one daemon)",
            rate(two),
            rate(two) / rate(one)
        );
        println!("timers, 1 daemon:   {:>8.0} timers/s", rate(one_timers));
        println!(
            "timers, 2 daemons:  {:>8.0} timers/s ({:.2}x one daemon)",
            rate(two_timers),
            rate(two_timers) / rate(one_timers)
        );
        println!(
            "raw limit:          {:>8.0} rows/s (events with their rows)",
            rate(limit)
        );
    });
}

/// The server, without credentials.
fn shown() -> String {
    nudge_runtime::store::reach::shown_url(&nudge_testkit::pg::server_url())
}

/// Ingest and timers of `n` new contacts on a fresh database with
/// `daemons` daemons: the time each took, and the database.
async fn run(n: usize, daemons: usize) -> (Duration, Duration, PgDatabase) {
    let db = PgDatabase::create(&format!("bench_{daemons}")).await;
    let smtp = SmtpSink::start_blocking();
    let http = HttpSink::start_blocking();
    let clock = ManualClock::new(T0);
    let text = project(smtp.port(), &http.url());
    let mut running = Vec::new();
    for _ in 0..daemons {
        let r = support::start_on(db.url(), &text, &clock).await;
        r.hold_deliveries(true);
        running.push(r);
    }
    post(&running, ("visit", "w", ""), 0..WARM_UP).await;
    let ingest = post(&running, ("new", "n", FIRE_AT), 0..n).await;
    let timers = fire(&running, &clock, n as u64).await;
    for r in running {
        r.shutdown().await;
    }
    drop((smtp, http));
    (ingest, timers, db)
}

/// Posts events `range` over [`CLIENTS`] connections dealt evenly over the
/// daemons; the time from the first request to the last answer.
async fn post(
    running: &[Running],
    what: (&str, &str, &str),
    range: std::ops::Range<usize>,
) -> Duration {
    let per = CLIENTS / running.len();
    let share = range.len() / running.len();
    let started = Instant::now();
    let tasks: Vec<_> = running
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let from = range.start + i * share;
            let clients = requests(r.addr, what, from..from + share, BATCH, per);
            let addr = r.addr;
            tokio::spawn(async move { support::post_all(addr, clients, BATCH).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed()
}

/// Moves the clock past the contacts' wait and waits until every timer
/// fired and committed, across the daemons.
async fn fire(running: &[Running], clock: &ManualClock, total: u64) -> Duration {
    let fired = || -> u64 {
        running
            .iter()
            .map(|r| r.metrics.timers_fired.load(Ordering::Relaxed))
            .sum()
    };
    let before = fired();
    clock.advance(DAY + 1);
    let started = Instant::now();
    for r in running {
        r.metrics.wake_hint(clock.now());
    }
    let until = Instant::now() + Duration::from_secs(600);
    while fired() - before < total && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let took = started.elapsed();
    assert_eq!(fired() - before, total, "every timer fired");
    assert!(
        running[0]
            .store
            .due_contacts(clock.now(), 1)
            .await
            .unwrap()
            .is_empty(),
        "none is due"
    );
    took
}
