//! Database faults on Postgres, with the real `nudge run` binary. ONE test
//! function runs the cases in sequence: `nudge_testkit::pg::restart_server`
//! restarts the shared test server, so nothing else may run beside it in
//! this binary (cargo runs test binaries one at a time).
//!
//! 0. A URL that can never work (a database that does not exist) fails
//!    the start at once, with the reason and without the password.
//! 1. A daemon started while its database cannot be reached (a closed
//!    port) keeps running and says so: a `warn` line per attempt naming the
//!    host, never the password; `/healthz` 200; `/readyz` and the API 503
//!    with the JSON error and `Retry-After`. Once a proxy on that port leads
//!    to the server, it opens the database and takes events.
//! 2. Under steady load from several clients the server is restarted
//!    (`pg_ctl restart -m fast`). Every answer is 202 or 503 (never 500,
//!    never a connection cut or a hang past the client's timeout), a 503
//!    carries `Retry-After`, and a client retries it with the same
//!    idempotency key. The same daemon process recovers by itself: every
//!    acknowledged event is applied exactly once, the waits fire, and every
//!    message is delivered.

#![allow(clippy::unwrap_used)]

mod crash_support;
mod daemon_support;

use daemon_support::projects::local;
use daemon_support::{Daemon, Engine, Reply, Scratch, fill, free_port, try_request, wait_until};
use nudge_testkit::HttpSink;
use nudge_testkit::pg::{PgDatabase, restart_server};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SRC: &str = r#"
contact { n: int = 0  later: bool = false }
event ping {}

channel hook: http {
  method = "POST"
  url = "@HOOK@/hook"
  body = json { contact: contact.id, n: contact.n }
}

flow count "Count" {
  when ping
  step s {
    set contact.n = contact.n + 1
    send hook "counted"
  }
}

flow later "Later" {
  when ping
  reenter never
  step s {
    wait 2 seconds
    set contact.later = true
  }
}
"#;

/// A password in the URL of case 1: it must never reach the log (the test
/// server trusts loopback, so it is not checked).
const PASSWORD: &str = "pw-Faults-93kQ";
/// Client threads of case 2, and the contacts each one feeds.
const CLIENTS: usize = 3;
const CONTACTS: usize = 4;
/// Events acknowledged before the restart, and after it.
const BEFORE: usize = 150;
const AFTER: usize = 150;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn the_daemon_waits_for_postgres_and_rides_out_a_restart() {
    let sink = HttpSink::start_blocking();
    a_database_that_does_not_exist_fails_at_once(&sink);
    a_daemon_started_before_its_database_waits_for_it(&sink);
    a_restart_under_load_loses_nothing_acknowledged(&sink);
}

fn project(sink: &HttpSink, tag: &str, engine: Engine) -> Scratch {
    let s = Scratch::on(engine, tag);
    s.write("main.nudge", &fill(SRC, &[("HOOK", sink.url())]));
    s
}

fn ping(contact: &str, key: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"event": "ping", "contact": {"id": contact}, "id": key})).unwrap()
}

fn post(addr: SocketAddr, body: &[u8]) -> std::io::Result<Reply> {
    let headers = [("Content-Type", "application/json")];
    try_request(addr, "POST", "/v1/events", &headers, Some(body))
}

/// A 503 with the JSON error and a `Retry-After` in whole seconds.
fn assert_unavailable(r: &Reply) {
    r.expect_error(503);
    let after = r
        .header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After: {r:?}"));
    assert!(after.parse::<u64>().is_ok(), "Retry-After {after:?}");
}

/// `url` (the test server's) with its host and port replaced by
/// 127.0.0.1:`port` and a password added where it has none; and the
/// server's own address.
fn through_port(url: &str, port: u16) -> (String, SocketAddr) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (user, rest) = rest.split_once('@').unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let upstream = std::net::ToSocketAddrs::to_socket_addrs(host)
        .unwrap()
        .next()
        .unwrap();
    let user = if user.contains(':') {
        user.to_string()
    } else {
        format!("{user}:{PASSWORD}")
    };
    (
        format!("{scheme}://{user}@127.0.0.1:{port}/{path}"),
        upstream,
    )
}

fn a_database_that_does_not_exist_fails_at_once(sink: &HttpSink) {
    let server = nudge_testkit::pg::server_url();
    let port: u16 = server
        .rsplit_once(':')
        .and_then(|(_, p)| p.split('/').next()?.parse().ok())
        .unwrap();
    let (url, _) = through_port(&server, port);
    let url = format!("{}/nudge_no_such_database", url.rsplit_once('/').unwrap().0);
    let s = project(sink, "pg-missing", Engine::Sqlite);
    let mut d = Daemon::spawn(&s, &local().db(&url));
    let status = wait_until(secs(15), || d.exited())
        .unwrap_or_else(|| panic!("still running on a missing database:\n{}", d.log()));
    let log = d.log();
    assert!(!status.success(), "{log}");
    assert!(log.contains("nudge_no_such_database"), "{log}");
    assert!(!log.contains("cannot be reached yet"), "it waited:\n{log}");
    assert!(
        !log.contains(PASSWORD),
        "the password is in the log:\n{log}"
    );
}

fn a_daemon_started_before_its_database_waits_for_it(sink: &HttpSink) {
    let db = PgDatabase::create_blocking("faults_wait");
    let port = free_port();
    let (url, upstream) = through_port(db.url(), port);
    let s = project(sink, "pg-wait", Engine::Sqlite);
    let mut d = Daemon::spawn(&s, &local().db(&url));
    let up = wait_until(secs(15), || {
        let r = try_request(d.addr, "GET", "/healthz", &[], None).ok()?;
        (r.status == 200).then_some(r.json())
    });
    assert_eq!(
        up,
        Some(json!({"status": "ok", "database": "waiting"})),
        "{}",
        d.log()
    );
    // an attempt lasts up to the pool's connect timeout (10 s by default)
    let tried = wait_until(secs(30), || {
        let log = d.log();
        log.contains("cannot be reached yet").then_some(log)
    })
    .unwrap_or_else(|| panic!("no retry lines:\n{}", d.log()));
    assert!(tried.contains(&format!("127.0.0.1:{port}")), "{tried}");
    assert!(
        !tried.contains(PASSWORD),
        "the password is in the log:\n{tried}"
    );
    assert_eq!(d.exited(), None, "the daemon gave up:\n{}", d.log());
    assert_unavailable(&d.get("/readyz"));
    assert_unavailable(&post(d.addr, &ping("w-1", "w-k1")).unwrap());

    // the server becomes reachable on that port
    crash_support::forward(TcpListener::bind(("127.0.0.1", port)).unwrap(), upstream);
    // (the stand-in hands the address over: refused for a moment)
    let ready = wait_until(secs(30), || {
        let r = try_request(d.addr, "GET", "/readyz", &[], None).ok()?;
        (r.status == 200).then_some(())
    });
    assert!(ready.is_some(), "not ready once reachable:\n{}", d.log());
    let r = post(d.addr, &ping("w-1", "w-k1")).unwrap();
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(d.contact("w-1").json()["fields"]["n"], 1);
    assert!(!d.log().contains(PASSWORD), "the password is in the log");
}

/// What the clients of case 2 saw.
#[derive(Default)]
struct Seen {
    /// Acknowledged keys per contact.
    acked: Mutex<BTreeMap<String, BTreeSet<String>>>,
    count: AtomicUsize,
    unavailable: AtomicUsize,
    /// Answers other than 202 and 503, and transport errors.
    wrong: Mutex<Vec<String>>,
}

/// One client: posts a ping per key until `stop`, each retried after a 503
/// with the same key until it is acknowledged.
fn client(addr: SocketAddr, t: usize, seen: Arc<Seen>, stop: Arc<AtomicBool>) {
    for i in 0.. {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let (contact, key) = (format!("c-{t}-{}", i % CONTACTS), format!("k-{t}-{i}"));
        let body = ping(&contact, &key);
        let until = Instant::now() + secs(60);
        loop {
            match post(addr, &body) {
                Ok(r) if r.status == 202 => break,
                Ok(r) if r.status == 503 => {
                    assert_unavailable(&r);
                    seen.unavailable.fetch_add(1, Ordering::SeqCst);
                }
                Ok(r) => seen.wrong.lock().unwrap().push(format!("{r:?}")),
                Err(e) => seen.wrong.lock().unwrap().push(format!("{key}: {e}")),
            }
            assert!(Instant::now() < until, "`{key}` never acknowledged");
            std::thread::sleep(Duration::from_millis(50));
        }
        seen.acked
            .lock()
            .unwrap()
            .entry(contact)
            .or_default()
            .insert(key);
        seen.count.fetch_add(1, Ordering::SeqCst);
    }
}

/// Polls `/readyz` until `stop`; gives the statuses seen, in order, each
/// once per run.
fn readiness(addr: SocketAddr, stop: Arc<AtomicBool>) -> Vec<u16> {
    let mut seen: Vec<u16> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let status = try_request(addr, "GET", "/readyz", &[], None).map_or(0, |r| r.status);
        if seen.last() != Some(&status) {
            seen.push(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    seen
}

fn a_restart_under_load_loses_nothing_acknowledged(sink: &HttpSink) {
    let s = project(sink, "pg-restart", Engine::Postgres);
    let mut d = Daemon::start(&s, &local());
    let pid = d.pid();
    let (seen, stop) = (Arc::new(Seen::default()), Arc::new(AtomicBool::new(false)));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let (seen, stop, addr) = (seen.clone(), stop.clone(), d.addr);
            std::thread::spawn(move || client(addr, t, seen, stop))
        })
        .collect();
    let probe = {
        let (stop, addr) = (stop.clone(), d.addr);
        std::thread::spawn(move || readiness(addr, stop))
    };
    let reached = |n: usize| {
        wait_until(secs(30), || {
            (seen.count.load(Ordering::SeqCst) >= n).then_some(())
        })
    };
    assert!(
        reached(BEFORE).is_some(),
        "no load before the restart:\n{}",
        d.log()
    );
    restart_server();
    let restarted_at = seen.count.load(Ordering::SeqCst);
    let recovered = reached(restarted_at + AFTER);
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let ready = probe.join().unwrap();
    assert!(
        recovered.is_some(),
        "no recovery after the restart:\n{}",
        d.log()
    );
    let wrong = seen.wrong.lock().unwrap().clone();
    assert!(
        wrong.is_empty(),
        "answers other than 202/503: {wrong:?}\n{}",
        d.log()
    );
    assert!(
        ready.iter().all(|s| [200, 503].contains(s)),
        "/readyz gave {ready:?}"
    );
    assert_eq!(
        (d.exited(), d.pid()),
        (None, pid),
        "the daemon did not stay up"
    );
    let acked = std::mem::take(&mut *seen.acked.lock().unwrap());
    applied_exactly_once(&d, &acked);
    delivered_all(&d, sink, &acked);
    eprintln!(
        "{} events acknowledged ({restarted_at} before the restart), {} answers 503; /readyz went {ready:?}",
        seen.count.load(Ordering::SeqCst),
        seen.unavailable.load(Ordering::SeqCst),
    );
}

/// Each contact counted each of its acknowledged events once, and its wait
/// fired.
fn applied_exactly_once(d: &Daemon, acked: &BTreeMap<String, BTreeSet<String>>) {
    assert!(wait_until(secs(15), || (d.get("/readyz").status == 200).then_some(())).is_some());
    for (contact, keys) in acked {
        let fields = wait_until(secs(15), || {
            let f = d.contact(contact).json()["fields"].clone();
            (f["later"] == true).then_some(f)
        })
        .unwrap_or_else(|| panic!("the wait of `{contact}` never fired:\n{}", d.log()));
        assert_eq!(
            fields["n"],
            keys.len(),
            "`{contact}` counted wrong: {fields}"
        );
    }
}

/// Every count of every contact reached the sink (at least once).
fn delivered_all(d: &Daemon, sink: &HttpSink, acked: &BTreeMap<String, BTreeSet<String>>) {
    let want: BTreeSet<(String, i64)> = acked
        .iter()
        .flat_map(|(c, keys)| (1..=keys.len() as i64).map(move |n| (c.clone(), n)))
        .collect();
    let got = wait_until(secs(30), || {
        let got: BTreeSet<(String, i64)> = sink
            .requests()
            .iter()
            .filter_map(|r| {
                let v = r.json()?;
                Some((v["contact"].as_str()?.to_string(), v["n"].as_i64()?))
            })
            .collect();
        want.is_subset(&got).then_some(got)
    });
    assert!(
        got.is_some(),
        "messages missing after the restart: {:?}\n{}",
        d.outbox(Some("pending")).len(),
        d.log()
    );
}
