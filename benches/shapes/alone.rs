//! The `alone` phase of the shapes bench: the resident memory of the
//! daemon alone. The real `nudge run` binary runs as a child process on a
//! SQLite file, with the bench's project and sinks; the bench fills it
//! through the HTTP API (`stored` contacts, then `n` `signup` events whose
//! wait ends a little later on the wall clock) and reads the child's
//! `/proc/PID/status` after the fill and after every timer fired (counted
//! by `/metrics`). The load generator and the sinks are not in the figure.

use super::{FIRE_SLACK, post, project};
use nudge_testkit::{HttpSink, SmtpSink};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `nudge run` child, killed on drop.
struct Daemon {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn start(dir: &std::path::Path, text: &str) -> Daemon {
        let project = dir.join("bench.nudge");
        std::fs::write(&project, text).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_nudge"))
            .arg("run")
            .arg(&project)
            .arg("--db")
            .arg(format!("sqlite://{}", dir.join("nudge.db").display()))
            .args(["--listen", &addr.to_string(), "--allow-host", "127.0.0.1"])
            .env("NUDGE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let d = Daemon { child, addr };
        let until = Instant::now() + Duration::from_secs(30);
        while get(addr, "/healthz").is_none() {
            assert!(Instant::now() < until, "the daemon did not answer in 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    /// VmRSS, RssAnon, RssFile and VmHWM of the child, in MiB.
    fn memory(&self) -> String {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        ["VmRSS", "RssAnon", "RssFile", "VmHWM"]
            .iter()
            .map(|name| {
                let kb = status
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}:")))
                    .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                    .unwrap_or(f64::NAN);
                format!("{name} {:.0} MiB", kb / 1024.0)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `nudge_timers_fired_total` from `/metrics`.
    fn timers_fired(&self) -> u64 {
        get(self.addr, "/metrics")
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("nudge_timers_fired_total "))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0)
    }
}

/// The body of `GET path` (`Connection: close`), or `None` if it failed.
fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut conn = TcpStream::connect(addr).ok()?;
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// Fill a `nudge run` child with `stored` contacts and `n` waiting, print
/// its memory then and once the `n` timers fired.
pub async fn alone(n: usize, stored: usize) {
    let (smtp, http) = (SmtpSink::start_blocking(), HttpSink::start_blocking());
    let dir = super::support::temp("alone");
    let daemon = Daemon::start(&dir, &project(smtp.port(), &http.url()));
    let stored = stored.max(super::BATCH) / super::BATCH * super::BATCH;
    let filled = post(daemon.addr, ("visit", "s", ""), 0..stored).await;
    let rate = stored as f64 / filled.as_secs_f64().max(0.001);
    // the waits end once the `n` are in: three times their expected time
    let slack = (3.0 * n as f64 / rate).ceil() as i64 + FIRE_SLACK;
    let fire = now() + slack;
    let fire_at = nudge_runtime::clock::format_instant(fire);
    let ingest = post(daemon.addr, ("new", "n", &fire_at), 0..n).await;
    let fill = daemon.memory();
    println!(
        "daemon alone: {stored} stored (filled in {:.0} s), {n} waiting (posted in {:.1} s): {fill}",
        filled.as_secs_f64(),
        ingest.as_secs_f64()
    );
    assert!(
        now() < fire,
        "the waits ended before the fill: raise FIRE_SLACK"
    );
    let until = Instant::now() + Duration::from_secs(slack as u64 + 600);
    while daemon.timers_fired() < n as u64 {
        assert!(Instant::now() < until, "the timers did not fire");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "  after the {n} timers fired: {}  target ≤ 150 MB at 1M",
        daemon.memory()
    );
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The wall clock, in epoch seconds (the child runs on it).
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
