//! Crash safety of `nudge run` under load: the real binary on a fresh
//! database (SQLite and Postgres, `on_both_engines!`) is killed with SIGKILL while several clients post event batches,
//! then restarted on the same database and port. What was acknowledged must
//! be there (contacts, enrollments), replays must be duplicates, waits
//! pending at the crash must still fire, and every message must reach the
//! loopback HTTP sink at least once, with the redelivered ones bounded by
//! one outbox claim. A [`Gate`] in front of the sink holds every delivery of
//! the first daemon in flight, so the kill always leaves claimed rows both
//! sent-but-not-recorded and never-sent.
#![allow(clippy::unwrap_used)]

mod crash_support;

use crash_support::{
    Daemon, Gate, both_messages, free_port, redelivered, request, wait_for_messages,
};
use nudge_testkit::HttpSink;
use nudge_testkit::engine::{Engine, TestDb};
use nudge_testkit::on_both_engines;
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Client threads posting at once.
const THREADS: usize = 4;
/// Events per batch.
const BATCH: usize = 40;
/// Acknowledged events before the kill.
const KILL_AFTER: usize = 1000;
/// The outbox worker's pool: rows claimed and not yet recorded at any time
/// (`BATCH` in `runtime/src/daemon/outbox.rs`), what a crash can re-send.
const CLAIM: usize = 256;
/// Outbox lease given to both daemons, so the killed one's claims come back
/// within the test.
const LEASE: &str = "2";

fn project(url: &str) -> String {
    format!(
        r#"event signup {{}}

channel hook: http {{
  method = "POST"
  url = "{url}/hook"
  body = json {{ contact: contact.id, note: message }}
}}

flow welcome "Welcome" {{
  when signup

  step hello "Hello" {{
    send hook "first"
    wait 3 seconds
    send hook "second"
  }}
}}
"#
    )
}

fn temp_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("nudge-crash-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An acknowledged batch: its body and its contact ids.
struct Acked {
    body: String,
    contacts: Vec<String>,
}

fn batch_body(thread: usize, n: usize) -> (String, Vec<String>) {
    let contacts: Vec<String> = (0..BATCH).map(|i| format!("c-{thread}-{n}-{i}")).collect();
    let events: Vec<serde_json::Value> = contacts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({"event": "signup", "id": format!("e-{thread}-{n}-{i}"), "contact": {"id": c}})
        })
        .collect();
    (json!({ "events": events }).to_string(), contacts)
}

/// Post batches until the daemon stops answering; every batch answered 202
/// is recorded.
fn load(
    addr: std::net::SocketAddr,
    thread: usize,
    acked: Arc<Mutex<Vec<Acked>>>,
    count: Arc<AtomicUsize>,
) {
    for n in 0.. {
        let (body, contacts) = batch_body(thread, n);
        match request(addr, "POST", "/v1/events", Some(&body)) {
            Ok(a) if a.status == 202 => {
                let v = a.json();
                assert_eq!(v["accepted"], BATCH, "{}", a.body);
                acked.lock().unwrap().push(Acked { body, contacts });
                count.fetch_add(BATCH, Ordering::SeqCst);
            }
            Ok(a) => panic!("batch refused with {}: {}", a.status, a.body),
            Err(_) => return,
        }
    }
}

fn kill_9_under_load_loses_nothing_acknowledged(engine: Engine) {
    let started = Instant::now();
    let sink = HttpSink::start_blocking();
    let gate = Gate::start(sink.addr());
    let dir = temp_dir();
    let url = format!("http://{}", gate.addr);
    std::fs::write(dir.join("crash.nudge"), project(&url)).unwrap();
    let database = TestDb::new(engine, &dir, "crash");
    let db = database.url();
    let log = dir.join("daemon.log");
    let port = free_port();
    let flags = ["--allow-host", "127.0.0.1", "--outbox-lease", LEASE];
    let mut daemon = Daemon::start(&dir, &db, port, &flags, &log);
    let addr = daemon.addr;

    // load, and SIGKILL in the middle of it
    let acked = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..THREADS)
        .map(|t| {
            let (acked, count) = (acked.clone(), count.clone());
            std::thread::spawn(move || load(addr, t, acked, count))
        })
        .collect();
    let until = Instant::now() + Duration::from_secs(10);
    while count.load(Ordering::SeqCst) < KILL_AFTER && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    daemon.kill9();
    for c in clients {
        c.join().unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let contacts: Vec<&String> = acked.iter().flat_map(|a| &a.contacts).collect();
    assert!(
        contacts.len() >= KILL_AFTER,
        "only {} events acknowledged before the kill",
        contacts.len()
    );
    let killed_at = started.elapsed();
    let (sent, swallowed) = gate.held();
    assert!(
        sent > 0 && swallowed > 0,
        "the kill found no delivery in flight ({sent} sent, {swallowed} never sent)"
    );
    gate.open();

    let daemon = Daemon::start(&dir, &db, port, &flags, &log);

    // (a) every acknowledged event was applied: its contact and enrollment
    let flows = request(addr, "GET", "/v1/flows", None).unwrap().json();
    let welcome = flows["flows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "welcome")
        .unwrap_or_else(|| panic!("no flow `welcome` in {flows}"));
    let enrolled = welcome["enrolled"].as_u64().unwrap();
    assert!(
        enrolled >= contacts.len() as u64,
        "{enrolled} enrolled, {} acknowledged",
        contacts.len()
    );
    // a sample spread over every batch (the first and last contact of each)
    for a in &acked {
        for id in [&a.contacts[0], &a.contacts[BATCH - 1]] {
            let c = request(addr, "GET", &format!("/v1/contacts/{id}"), None).unwrap();
            assert_eq!(c.status, 200, "contact `{id}`: {}", c.body);
            let enrollments = c.json()["enrollments"].clone();
            assert!(
                enrollments
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["flow"] == "welcome"),
                "contact `{id}` lost its enrollment: {enrollments}"
            );
        }
    }

    // (b) replaying what was acknowledged gives only duplicates
    for a in &acked {
        let r = request(addr, "POST", "/v1/events", Some(&a.body)).unwrap();
        assert_eq!(r.status, 202, "{}", r.body);
        assert_eq!(
            r.json(),
            json!({"accepted": 0, "duplicates": BATCH}),
            "a replay applied again"
        );
    }

    // (c) waits pending at the crash fire: both messages reach every contact
    let want = both_messages(contacts.iter().copied());
    let (requests, missing) = wait_for_messages(&sink, &want, Duration::from_secs(20));
    assert_eq!(
        missing,
        0,
        "{missing} of {} messages of acknowledged contacts never arrived (log: {})",
        want.len(),
        log.display()
    );

    // (d) duplicates: one key per message, redeliveries at most one claim
    let again = redelivered(&requests);
    assert!(
        again >= 1,
        "{sent} deliveries reached the sink unrecorded, none went out again"
    );
    assert!(
        again <= CLAIM,
        "{again} messages delivered more than once (at most one claim of {CLAIM} may be)"
    );
    eprintln!(
        "acknowledged {} events in {} batches, killed at {killed_at:?} with {sent} deliveries \
         sent and {swallowed} never sent; {} deliveries, {again} redelivered; total {:?}",
        contacts.len(),
        acked.len(),
        requests.len(),
        started.elapsed()
    );
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

on_both_engines!(kill_9_under_load_loses_nothing_acknowledged);
