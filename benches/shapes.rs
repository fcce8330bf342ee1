//! How fast the daemon works on a project shaped like the real ones, each
//! figure beside the raw SQLite limit measured in the same run writing the
//! same rows (issue 11; `benches/daemon.rs` is the minimal shape).
//!
//! Run with `cargo bench --bench shapes` (release profile, mimalloc). The
//! project: contacts with `email: email? unique`, `clickid: text? unique`, a
//! `plan` union and the built-in `timezone`; events `signup { source: text?,
//! fire_at: time, amount: decimal? }`; one flow that sets a field, waits
//! until `event.fire_at`, then sends a templated e-mail on an `smtp` channel
//! (the testkit `SmtpSink`) and a `call` to the testkit `HttpSink`. The real
//! daemon runs in-process (`nudge_runtime::daemon::start`, a `ManualClock`,
//! HTTP over loopback). Phases (`NUDGE_BENCH_PHASES`, comma-separated; all
//! by default):
//!
//! * `ingest`: N `signup` events for new contacts, batches of 500 from 8
//!   keep-alive connections;
//! * `existing`: N more `signup` events for those contacts, named by
//!   `email` only (the unique-key lookup on the path);
//! * `one`: N events for new contacts from one connection in batches of
//!   1 000, back to back: events/s and p50/p99 per batch;
//! * `timers`: the N contacts of `ingest` wait on one instant; the clock
//!   moves past it with the outbox worker delivering alongside (the clock
//!   then ticks a second per second, as the worker defers rows a second),
//!   then past the instant of the N of `one` with deliveries held (the
//!   applier alone); each timed until none is due;
//! * `growth` (and `memory`): for each size of `NUDGE_BENCH_STORED`
//!   (default `10000,100000`), a fresh database with that many contacts
//!   stored (posted untimed through the daemon), then ingest and timers of
//!   N, and the process's VmRSS/VmHWM;
//! * `alone` (`shapes/alone.rs`): the memory of the daemon alone, the real
//!   `nudge run` as a child process filled over HTTP with the last size of
//!   `NUDGE_BENCH_STORED` stored and N waiting, before and after the N
//!   timers fired on the wall clock.
//!
//! `NUDGE_BENCH_N` sets N (default 100 000). The contacts `timers` fires are
//! posted whatever the selection (untimed where `ingest`/`one` are off).
//! The raw limits (plain sqlx into the engine's schema, one `BEGIN
//! IMMEDIATE` per batch, WAL, `synchronous=NORMAL`) are in `raw.rs`. Each
//! phase's start is written to stderr (`phase: NAME`), so a profiler can be
//! attached for it alone.

#![allow(clippy::unwrap_used)]

#[path = "support/mod.rs"]
mod support;

#[path = "shapes/raw.rs"]
mod raw;

#[path = "shapes/alone.rs"]
mod alone;

#[path = "shapes/load.rs"]
mod load;

use load::{project, requests, token};
use nudge_runtime::daemon::{Clock, ManualClock};
use nudge_testkit::{HttpSink, SmtpSink};
use raw::{Lookup, Shape};
use std::net::SocketAddr;
use std::time::Duration;
use support::{T0, fire_timers, temp};

const BATCH: usize = 500;
const CLIENTS: usize = 8;
/// The one client's batch.
const ONE_BATCH: usize = 1_000;
/// Untimed events before the timed ones.
const WARM_UP: usize = 8_000;
const DAY: i64 = 86_400;
/// `fire_at` of the `ingest` contacts: T0 + 1 day (T0 is 2027-01-15T08:00Z).
const FIRE_1: (i64, &str) = (T0 + DAY, "2027-01-16T08:00:00Z");
/// `fire_at` of the `one` contacts: T0 + 2 days.
const FIRE_2: (i64, &str) = (T0 + 2 * DAY, "2027-01-17T08:00:00Z");
/// Seconds added to the `alone` phase's estimate of its ingest time for
/// the wall-clock instant its waits end.
const FIRE_SLACK: i64 = 10;

struct Options {
    n: usize,
    phases: Vec<String>,
    stored: Vec<usize>,
}

impl Options {
    fn read() -> Options {
        let n = support::env_n(100_000).max(ONE_BATCH) / ONE_BATCH * ONE_BATCH;
        let phases = std::env::var("NUDGE_BENCH_PHASES")
            .unwrap_or_else(|_| "ingest,existing,one,timers,growth,memory,alone".into())
            .split(',')
            .map(|p| p.trim().to_string())
            .collect();
        let stored = std::env::var("NUDGE_BENCH_STORED")
            .unwrap_or_else(|_| "10000,100000".into())
            .split(',')
            .map(|s| s.trim().parse().expect("NUDGE_BENCH_STORED: sizes"))
            .collect();
        Options { n, phases, stored }
    }

    fn has(&self, phase: &str) -> bool {
        self.phases.iter().any(|p| p == phase)
    }
}

fn main() {
    let options = Options::read();
    let rt = support::runtime();
    if ["ingest", "existing", "one", "timers"]
        .iter()
        .any(|p| options.has(p))
    {
        rt.block_on(shapes(&options));
    }
    if options.has("growth") || options.has("memory") {
        let mut first = None;
        for &stored in &options.stored {
            let (ingest, timers) = rt.block_on(growth(options.n, stored));
            let (i0, t0) = *first.get_or_insert((ingest, timers));
            println!(
                "  against {} stored: ingest {:+.0} %, timers {:+.0} %",
                options.stored[0],
                100.0 * (ingest / i0 - 1.0),
                100.0 * (timers / t0 - 1.0)
            );
        }
    }
    if options.has("alone") {
        let stored = options.stored.last().copied().unwrap_or(0);
        rt.block_on(alone::alone(options.n, stored));
    }
}

/// A daemon on a fresh database in a temp directory, with its sinks.
struct Bench {
    smtp: SmtpSink,
    http: HttpSink,
    dir: std::path::PathBuf,
    db: std::path::PathBuf,
    clock: ManualClock,
    running: nudge_runtime::daemon::Running,
}

impl Bench {
    async fn start(name: &str) -> Bench {
        let smtp = SmtpSink::start_blocking();
        let http = HttpSink::start_blocking();
        let dir = temp(name);
        let db = dir.join("nudge.db");
        let clock = ManualClock::new(T0);
        let running = support::start(&db, &project(smtp.port(), &http.url()), &clock).await;
        Bench {
            smtp,
            http,
            dir,
            db,
            clock,
            running,
        }
    }
}

/// Post events `range` of `what` from [`CLIENTS`] connections in batches
/// of [`BATCH`], in slices of at most 50 000 (so the pre-written requests
/// stay small); the time they took.
async fn post(
    addr: SocketAddr,
    what: (&str, &str, &str),
    range: std::ops::Range<usize>,
) -> Duration {
    let mut took = Duration::ZERO;
    let mut from = range.start;
    while from < range.end {
        let to = range.end.min(from + 50_000);
        let clients = requests(addr, what, from..to, BATCH, CLIENTS);
        took += support::post_all(addr, clients, BATCH).await.0;
        from = to;
    }
    took
}

/// The `ingest`, `existing`, `one` and `timers` phases on one daemon, then
/// their raw limits.
async fn shapes(options: &Options) {
    let n = options.n;
    let bench = Bench::start("shapes").await;
    let (db, dir, clock) = (&bench.db, &bench.dir, &bench.clock);
    let running = bench.running;
    let addr = running.addr;
    println!("{n} contacts per phase; SQLite in {dir:?}");
    post(addr, ("visit", "w", ""), 0..WARM_UP).await;

    let mark = raw::Mark::read(db).await;
    eprintln!("phase: ingest");
    let ingest = post(addr, ("new", "n", FIRE_1.1), 0..n).await;
    let ingest_shape = Shape::read(db, &token("n", 0), &mark, true).await;
    assert_eq!(ingest_shape.next_wake(), Some(FIRE_1.0), "the wait armed");

    let mark = raw::Mark::read(db).await;
    let existing = if options.has("existing") {
        eprintln!("phase: existing");
        Some(post(addr, ("existing", "n", FIRE_1.1), 0..n).await)
    } else {
        None
    };
    let existing_shape = Shape::read(db, &token("n", 0), &mark, false).await;

    let mark = raw::Mark::read(db).await;
    let clients = requests(addr, ("new", "o", FIRE_2.1), 0..n, ONE_BATCH, 1);
    eprintln!("phase: one");
    let (one, latencies) = support::post_all(addr, clients, ONE_BATCH).await;
    let one_shape = Shape::read(db, &token("o", 0), &mark, true).await;

    // timers: the `n` contacts with the outbox worker delivering alongside
    // (as in production: real time passes, so a row it defers a second
    // comes back), then the `o` contacts with deliveries held (the applier
    // alone; the first phase's sends wait)
    eprintln!("phase: timers busy");
    let ticker = support::tick(clock, support::REAL_TIME);
    let busy = fire_timers(&running, clock, DAY + 1, n as u64).await;
    ticker.abort();
    running.hold_deliveries(true);
    let mark = raw::Mark::read(db).await;
    eprintln!("phase: timers");
    let timers = fire_timers(&running, clock, DAY, 2 * n as u64).await;
    eprintln!("phase: timers done");
    let timer_shape = Shape::read(db, &token("o", 0), &mark, false).await;
    let totals = running.store.totals(clock.now()).await.unwrap();
    assert_eq!(totals.outbox_dead, 0, "no delivery failed");
    assert!(
        totals.outbox_delivered > 0,
        "the worker delivered alongside"
    );
    assert!(
        !bench.smtp.messages().is_empty(),
        "e-mails reached the sink"
    );
    assert!(!bench.http.requests().is_empty(), "calls reached the sink");
    running.shutdown().await;
    drop((bench.smtp, bench.http));
    let _ = std::fs::remove_dir_all(dir);

    let dir = temp("shapes-raw");
    let pool = support::raw_pool(&dir.join("raw.db"), true).await;
    let raw_ingest = raw::write_all(&pool, &ingest_shape, "n", n, BATCH, Lookup::None).await;
    let raw_existing = raw::write_all(&pool, &existing_shape, "n", n, BATCH, Lookup::Email).await;
    let raw_one = raw::write_all(&pool, &one_shape, "o", n, ONE_BATCH, Lookup::None).await;
    let due = Lookup::Due(FIRE_1.0);
    let raw_timers = raw::write_all(&pool, &timer_shape, "n", n, 1_000, due).await;
    pool.close().await;
    let _ = std::fs::remove_dir_all(&dir);

    println!("{}", ingest_shape.describe("per new contact"));
    println!("{}", existing_shape.describe("per existing contact"));
    println!("{}", timer_shape.describe("per timer"));
    let show = |name: &str, took: Duration, raw: Duration, targets: &str| {
        let (rate, limit) = (n as f64 / took.as_secs_f64(), n as f64 / raw.as_secs_f64());
        println!(
            "{name:<34} {rate:>8.0}/s ({:.2} s)  raw {limit:>8.0}/s ({:.2} s)  {:>3.0} %  {targets}",
            took.as_secs_f64(),
            raw.as_secs_f64(),
            100.0 * rate / limit
        );
    };
    if options.has("ingest") {
        show(
            "ingest, new contacts, 8 clients",
            ingest,
            raw_ingest.0,
            "target ≥ 40 000/s, ≥ 50 %",
        );
    }
    if let Some(existing) = existing {
        show(
            "ingest, existing by email, 8 cl.",
            existing,
            raw_existing.0,
            "target ≥ 50 %",
        );
    }
    if options.has("one") {
        show(
            "one client, batches of 1 000",
            one,
            raw_one.0,
            "target ≥ 20 000/s",
        );
        println!(
            "  per batch p50 {:.1} ms, p99 {:.1} ms (raw p50 {:.1} ms, p99 {:.1} ms)  target p50 ≤ 50 ms",
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99)),
            ms(percentile(&raw_one.1, 0.5)),
            ms(percentile(&raw_one.1, 0.99)),
        );
    }
    if options.has("timers") {
        show(
            "timers, deliveries held",
            timers,
            raw_timers.0,
            "target ≥ 80 000/s, ≥ 50 %",
        );
        show(
            "timers, deliveries alongside",
            busy,
            raw_timers.0,
            "(raw: the same, no delivering)",
        );
    }
}

/// Ingest and timers of `n` with `stored` contacts already in the
/// database, and the resident memory then; the two rates.
async fn growth(n: usize, stored: usize) -> (f64, f64) {
    let Bench {
        dir,
        clock,
        running,
        ..
    } = Bench::start("growth").await;
    let addr = running.addr;
    let filled = post(
        addr,
        ("visit", "s", ""),
        0..stored.max(BATCH) / BATCH * BATCH,
    )
    .await;
    let ingest = post(addr, ("new", "n", FIRE_1.1), 0..n).await;
    let memory = support::memory();
    running.hold_deliveries(true);
    let timers = fire_timers(&running, &clock, DAY + 1, n as u64).await;
    running.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "growth, {stored:>8} stored (filled in {:.0} s): ingest {:>8.0}/s, timers {:>8.0}/s  \
         target ≤ 30 % loss 10k→1M\n  memory with {stored} stored and {n} waiting: {memory}  \
         target ≤ 150 MB at 1M",
        filled.as_secs_f64(),
        rate(ingest),
        rate(timers)
    );
    (rate(ingest), rate(timers))
}

fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted
        .get(((sorted.len().saturating_sub(1)) as f64 * p).round() as usize)
        .copied()
        .unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
