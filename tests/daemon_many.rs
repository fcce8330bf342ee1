//! Three `nudge run` processes on one PostgreSQL database under steady load
//! from several clients, one of them killed with SIGKILL mid-load. Each
//! client posts to every daemon in turn: new contacts (`signup`, which
//! sends a message, waits two seconds and sends another) and `ping`s to a
//! few shared contacts, so that the daemons race on the same contacts all
//! the time. Then:
//!
//! * every event — acknowledged, or sent to the killed daemon and never
//!   answered — is posted again to a survivor: acknowledged ones are
//!   duplicates, and every shared contact's `hits` equals the number of
//!   distinct pings exactly: each applied once, none lost to a race;
//! * every wait fires, also those the dead daemon had claimed (its timer
//!   claims end after `--timer-lease`), and every message reaches the sink;
//! * each message goes out under one idempotency key, and the ones
//!   delivered twice stay within the dead daemon's claimed outbox rows.
#![allow(clippy::unwrap_used)]

mod crash_support;

use crash_support::{Daemon, both_messages, free_port, redelivered, request, wait_for_messages};
use nudge_testkit::HttpSink;
use nudge_testkit::engine::{Engine, TestDb};
use serde_json::json;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Daemons sharing the database.
const DAEMONS: usize = 3;
/// Client threads.
const CLIENTS: usize = 3;
/// Contacts every client pings (shared by all clients and daemons).
const SHARED: usize = 4;
/// New contacts per batch.
const NEW: usize = 20;
/// Pings per batch.
const PINGS: usize = 10;
/// Acknowledged batches before the kill.
const KILL_AFTER: usize = 30;
/// The outbox worker's pool: what a crash can leave claimed (`BATCH` in
/// `runtime/src/daemon/outbox.rs`).
const CLAIM: usize = 256;

const PROJECT: &str = r#"contact { hits: int = 0 }

event signup {}
event ping {}

channel hook: http {
  method = "POST"
  url = "URL/hook"
  body = json { contact: contact.id, note: message }
}

flow welcome "Welcome" {
  when signup
  step hello {
    send hook "first"
    wait 2 seconds
    send hook "second"
  }
}

flow count "Count" {
  when ping
  reenter after_exit
  step one {
    set contact.hits = contact.hits + 1
  }
}
"#;

/// One batch a client sent: its body, its new contacts, its ping ids.
#[derive(Clone)]
struct Sent {
    body: String,
    contacts: Vec<String>,
    pings: Vec<String>,
    acked: bool,
}

fn batch(client: usize, n: usize) -> Sent {
    let contacts: Vec<String> = (0..NEW).map(|i| format!("n-{client}-{n}-{i}")).collect();
    let pings: Vec<String> = (0..PINGS).map(|i| format!("p-{client}-{n}-{i}")).collect();
    let mut events: Vec<serde_json::Value> = contacts
        .iter()
        .map(|c| json!({"event": "signup", "id": format!("e-{c}"), "contact": {"id": c}}))
        .collect();
    events.extend(pings.iter().enumerate().map(|(i, p)| {
        json!({"event": "ping", "id": p, "contact": {"id": format!("shared-{}", (n + i) % SHARED)}})
    }));
    Sent {
        body: json!({ "events": events }).to_string(),
        contacts,
        pings,
        acked: false,
    }
}

/// Posts batches to the daemons in turn until `stop`; every batch is
/// recorded, answered or not. A daemon that stopped answering is left out
/// from then on.
fn client(
    id: usize,
    addrs: Vec<std::net::SocketAddr>,
    sent: Arc<Mutex<Vec<Sent>>>,
    acked: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    let mut dead: HashSet<usize> = HashSet::new();
    for n in 0.. {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Some(d) = (0..DAEMONS)
            .map(|k| (n + id + k) % DAEMONS)
            .find(|d| !dead.contains(d))
        else {
            return;
        };
        let mut b = batch(id, n);
        match request(addrs[d], "POST", "/v1/events", Some(&b.body)) {
            Ok(a) if a.status == 202 => {
                b.acked = true;
                acked.fetch_add(1, Ordering::SeqCst);
            }
            Ok(a) => panic!("daemon {d} refused a batch with {}: {}", a.status, a.body),
            Err(_) => {
                dead.insert(d);
            }
        }
        sent.lock().unwrap().push(b);
    }
}

/// `hits` of a contact, read through a daemon.
fn hits(addr: std::net::SocketAddr, id: &str) -> i64 {
    let c = request(addr, "GET", &format!("/v1/contacts/{id}"), None).unwrap();
    assert_eq!(c.status, 200, "{id}: {}", c.body);
    c.json()["fields"]["hits"].as_i64().unwrap_or(0)
}

#[test]
fn three_daemons_on_one_postgres_one_killed_lose_nothing() {
    let started = Instant::now();
    let sink = HttpSink::start_blocking();
    let dir = std::env::temp_dir().join(format!("nudge-many-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let project = PROJECT.replace("URL", &format!("http://{}", sink.addr()));
    std::fs::write(dir.join("many.nudge"), project).unwrap();
    let database = TestDb::new(Engine::Postgres, &dir, "many");
    let flags = [
        "--allow-host",
        "127.0.0.1",
        "--outbox-lease",
        "2",
        "--timer-lease",
        "2",
    ];
    let mut daemons: Vec<Daemon> = (0..DAEMONS)
        .map(|i| {
            let log = dir.join(format!("daemon-{i}.log"));
            Daemon::start(&dir, &database.url(), free_port(), &flags, &log)
        })
        .collect();
    let addrs: Vec<_> = daemons.iter().map(|d| d.addr).collect();

    let sent = Arc::new(Mutex::new(Vec::new()));
    let acked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (addrs, sent, acked, stop) =
                (addrs.clone(), sent.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || client(c, addrs, sent, acked, stop))
        })
        .collect();
    let until = Instant::now() + Duration::from_secs(30);
    while acked.load(Ordering::SeqCst) < KILL_AFTER && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    daemons[0].kill9();
    // the survivors go on taking load for a while
    let after = acked.load(Ordering::SeqCst);
    while acked.load(Ordering::SeqCst) < after + KILL_AFTER && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let sent = std::mem::take(&mut *sent.lock().unwrap());
    let n_acked = sent.iter().filter(|b| b.acked).count();
    assert!(
        n_acked >= 2 * KILL_AFTER,
        "only {n_acked} batches acknowledged"
    );
    let survivor = addrs[1];

    // every batch again: acknowledged ones are duplicates through and through
    for b in &sent {
        let r = request(survivor, "POST", "/v1/events", Some(&b.body)).unwrap();
        assert_eq!(r.status, 202, "{}", r.body);
        if b.acked {
            assert_eq!(
                r.json(),
                json!({"accepted": 0, "duplicates": NEW + PINGS}),
                "an acknowledged batch applied again"
            );
        }
    }
    // each distinct ping applied exactly once, across daemons and the kill
    let pings: usize = sent.iter().map(|b| b.pings.len()).sum();
    let total: i64 = (0..SHARED)
        .map(|i| hits(survivor, &format!("shared-{i}")))
        .sum();
    assert_eq!(
        total,
        i64::try_from(pings).unwrap(),
        "pings counted on the shared contacts vs pings sent"
    );

    // every wait fires, the killed daemon's claims included
    let contacts: Vec<&String> = sent.iter().flat_map(|b| &b.contacts).collect();
    let want = both_messages(contacts.iter().copied());
    let (requests, missing) = wait_for_messages(&sink, &want, Duration::from_secs(30));
    assert_eq!(
        missing,
        0,
        "{missing} of {} messages never arrived (logs in {})",
        want.len(),
        dir.display()
    );

    // one key per message; redeliveries within one claim of the dead daemon
    let again = redelivered(&requests);
    assert!(
        again <= CLAIM,
        "{again} messages delivered more than once (at most one claim of {CLAIM})"
    );
    eprintln!(
        "{} batches ({n_acked} acknowledged), {pings} pings, {} messages, {again} redelivered; {:?}",
        sent.len(),
        requests.len(),
        started.elapsed()
    );
    drop(daemons);
    let _ = std::fs::remove_dir_all(&dir);
}
