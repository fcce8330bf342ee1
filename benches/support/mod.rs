//! What the daemon benchmarks share (`benches/daemon.rs`, the minimal shape,
//! and `benches/shapes.rs`, the real ones): the product's allocator, the
//! project compiler, the in-process daemon on a temp SQLite file, posting
//! pre-written requests over keep-alive connections, moving the clock and
//! waiting for the due set to drain, and the raw sqlx writer of the limit.
//!
//! Included by each bench with `#[path = "support/mod.rs"] mod support;`;
//! not every bench uses every item.

#![allow(dead_code, clippy::unwrap_used)]

use nudge_compiler::files::{MemoryFs, SourceSet};
use nudge_runtime::daemon::{self, Clock, Config, ManualClock};
use nudge_runtime::store::Store;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Sqlite, SqlitePool};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The allocator of the `nudge` binary (`src/main.rs`), so the figures are
/// the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The manual clock's start (2027-01-15).
pub const T0: i64 = 1_800_000_000;
/// Rows per multi-row statement in the raw limit (as the store does).
pub const CHUNK: usize = 128;

/// `NUDGE_BENCH_N`, or `default`.
pub fn env_n(default: usize) -> usize {
    std::env::var("NUDGE_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The bundle of a one-file project; panics with its diagnostics if it has
/// errors.
pub fn bundle(text: &str) -> nudge_compiler::bundle::Bundle {
    let mut sources = SourceSet::new();
    sources.add("bench/bench.nudge", "bench.nudge", text);
    let (checked, bundle) = nudge_compiler::compile(&sources, &MemoryFs::new());
    match bundle {
        Some(b) if !checked.diagnostics.has_errors() => b,
        _ => {
            for r in checked.diagnostics.records(&sources) {
                eprintln!("{}:{}: {}: {}", r.line, r.column, r.code, r.message);
            }
            panic!("the bench project does not compile");
        }
    }
}

/// A fresh temp directory for one run.
pub fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nudge-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A started daemon on `db` with the project `text`, a manual clock at
/// [`T0`], loopback allowed as a destination and a 100 ms tick.
pub async fn start(db: &Path, text: &str, clock: &ManualClock) -> daemon::Running {
    start_on(&format!("sqlite://{}", db.display()), text, clock).await
}

/// [`start`] on the database at `url` (any engine).
pub async fn start_on(url: &str, text: &str, clock: &ManualClock) -> daemon::Running {
    let store = nudge_runtime::store::open(url).await.unwrap();
    let mut config = Config::new("127.0.0.1:0".parse().unwrap());
    config.allow_hosts = vec!["127.0.0.1".into()];
    config.tick = Duration::from_millis(100);
    daemon::start(store, bundle(text), Arc::new(clock.clone()), config)
        .await
        .unwrap()
}

/// `POST /v1/events` with `body`, as the bytes a keep-alive client writes.
pub fn events_request(addr: SocketAddr, body: &str) -> Vec<u8> {
    let mut request = format!(
        "POST /v1/events HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body.as_bytes());
    request
}

/// The batch numbers `0..batches` dealt over `clients` connections: each
/// gets a contiguous run, the first ones one batch more where it does not
/// divide evenly.
pub fn deal(batches: usize, clients: usize) -> Vec<std::ops::Range<usize>> {
    let per = batches / clients;
    let extra = batches % clients;
    let mut first = 0;
    (0..clients)
        .map(|c| {
            let n = per + usize::from(c < extra);
            first += n;
            first - n..first
        })
        .collect()
}

/// Send each client's pre-written requests over its own keep-alive
/// connection, all clients at once; each answer must be `202` accepting
/// `accepted` events. The time from the first request to the last answer,
/// and every request's latency.
pub async fn post_all(
    addr: SocketAddr,
    clients: Vec<Vec<Vec<u8>>>,
    accepted: usize,
) -> (Duration, Vec<Duration>) {
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|r| tokio::spawn(post_events(addr, r, accepted)))
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    (started.elapsed(), latencies)
}

/// One client connection sending `requests`, one after the other; the
/// latency of each.
async fn post_events(addr: SocketAddr, requests: Vec<Vec<u8>>, accepted: usize) -> Vec<Duration> {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.set_nodelay(true).unwrap();
    let mut buf = Vec::with_capacity(4096);
    let want = format!("\"accepted\":{accepted}");
    let mut latencies = Vec::with_capacity(requests.len());
    for request in requests {
        let sent = Instant::now();
        conn.write_all(&request).await.unwrap();
        let (status, answer) = read_response(&mut conn, &mut buf).await;
        latencies.push(sent.elapsed());
        assert_eq!(status, 202, "{answer}");
        assert!(answer.contains(&want), "{answer}");
    }
    latencies
}

/// One keep-alive response (with `Content-Length`): status and body.
async fn read_response(conn: &mut TcpStream, buf: &mut Vec<u8>) -> (u16, String) {
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status = head[9..12].parse().unwrap();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            while buf.len() < end + 4 + length {
                let got = conn.read(&mut chunk).await.unwrap();
                assert!(got > 0, "connection closed");
                buf.extend_from_slice(&chunk[..got]);
            }
            let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).into_owned();
            return (status, body);
        }
        let got = conn.read(&mut chunk).await.unwrap();
        assert!(got > 0, "connection closed");
        buf.extend_from_slice(&chunk[..got]);
    }
}

/// Move the clock `by` seconds on and time the firing of the timers then
/// due, until none is due; then wait until the timer counter (counted after
/// each commit) reaches `total`.
pub async fn fire_timers(
    running: &daemon::Running,
    clock: &ManualClock,
    by: i64,
    total: u64,
) -> Duration {
    let store = running.store.clone();
    clock.advance(by);
    let started = Instant::now();
    running.metrics.wake_hint(clock.now());
    while !store.due_contacts(clock.now(), 1).await.unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let took = started.elapsed();
    let fired = || running.metrics.timers_fired.load(Ordering::Relaxed);
    let until = Instant::now() + Duration::from_secs(10);
    while fired() < total && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(fired(), total, "every timer fired");
    took
}

/// Move `clock` a second on every `every` of real time until the task is
/// aborted: the outbox worker defers a row a second when a channel is at
/// its share of the pool (`daemon/outbox.rs`), and under a manual clock
/// that second would never come, stranding the row. [`REAL_TIME`] where a
/// delivery figure is timed; faster where the bench only waits for a drain.
pub fn tick(clock: &ManualClock, every: Duration) -> tokio::task::JoinHandle<()> {
    let clock = clock.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            clock.advance(1);
        }
    })
}

/// A second of the manual clock per second.
pub const REAL_TIME: Duration = Duration::from_secs(1);
/// The clock's pace while an untimed drain of the outbox is awaited.
pub const FAST: Duration = Duration::from_millis(10);

/// Wait until `want` outbox rows are delivered.
pub async fn wait_delivered(store: &Arc<dyn Store>, now: i64, want: i64) {
    let until = Instant::now() + Duration::from_secs(600);
    loop {
        let t = store.totals(now).await.unwrap();
        if t.outbox_delivered >= want {
            return;
        }
        assert_eq!(t.outbox_dead, 0, "deliveries failed");
        assert!(Instant::now() < until, "deliveries stalled at {t:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `bytes` with every `from` replaced by `to` (of the same length).
/// `text` with every `from` replaced by `to`.
pub fn replace_text(text: &str, from: &str, to: &str) -> String {
    String::from_utf8(replace_bytes(
        text.as_bytes(),
        from.as_bytes(),
        to.as_bytes(),
    ))
    .unwrap()
}

pub fn replace_bytes(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
    out
}

/// A one-connection pool on an existing SQLite file (to read what the
/// engine wrote).
pub async fn reader(db: &Path) -> SqlitePool {
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::from_str(&format!("sqlite://{}", db.display())).unwrap(),
        )
        .await
        .unwrap()
}

/// The raw limit's connection: one connection, WAL, `synchronous=NORMAL`.
/// With `schema`, the file first gets the engine's schema (its migrations,
/// so its secondary indexes too).
pub async fn raw_pool(path: &Path, schema: bool) -> SqlitePool {
    if schema {
        let store = nudge_runtime::store::sqlite::SqliteStore::open(&format!(
            "sqlite://{}",
            path.display()
        ))
        .await
        .unwrap();
        nudge_runtime::store::Store::migrate(&store).await.unwrap();
        store.close().await;
    }
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .unwrap()
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .pragma("cache_size", "-32768")
        .pragma("temp_store", "memory");
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap()
}

pub type Q<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>;

/// `head` followed by `rows` copies of `row`, comma-separated, then `tail`.
pub fn multi_row(head: &str, row: &str, rows: usize, tail: &str) -> String {
    format!("{head}{}{tail}", vec![row; rows].join(", "))
}

/// Insert `n` rows with multi-row statements of [`CHUNK`] rows; `bind`
/// binds row `i`'s values. `tail` follows the values (e.g. `ON CONFLICT`).
pub async fn insert<'a>(
    tx: &mut sqlx::Transaction<'static, Sqlite>,
    n: usize,
    (head, row, tail): (&str, &str, &str),
    bind: impl Fn(Q<'a>, usize) -> Q<'a>,
) {
    let mut start = 0;
    while start < n {
        let rows = CHUNK.min(n - start);
        let mut q: Q<'a> = sqlx::query(AssertSqlSafe(multi_row(head, row, rows, tail)));
        for i in start..start + rows {
            q = bind(q, i);
        }
        q.execute(&mut **tx).await.unwrap();
        start += rows;
    }
}

/// This process's resident memory now and at its peak (VmRSS, VmHWM from
/// `/proc/self/status`), or why they are not known.
pub fn memory() -> String {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return "memory unknown (no /proc/self/status)".into();
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or_else(|| "?".into(), |kb| format!("{:.0} MiB", kb / 1024.0))
    };
    format!("VmRSS {}, VmHWM {}", field("VmRSS:"), field("VmHWM:"))
}
