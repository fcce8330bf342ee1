//! Support for `daemon_crash.rs`: takes nothing but the `nudge` binary and a
//! temp directory; gives a tiny blocking HTTP/1.1 client over `TcpStream`
//! ([`request`]), a free loopback port ([`free_port`]), a daemon process
//! handle ([`Daemon`]) that starts `nudge run` and waits until it answers,
//! a [`Gate`]: a TCP proxy in front of a sink that, until opened, keeps
//! every delivery in flight so that a kill always finds some, and a plain
//! proxy ([`forward`]); and the checks of what reached the sink
//! (`messages.rs`).
//!
//! Guarantees: every request has a connect and read timeout, so a killed
//! daemon shows up as an `Err`, never a hang; a [`Daemon`] is killed when
//! dropped, so a failing test leaves no process behind.
#![allow(clippy::unwrap_used, dead_code)]

mod messages;
#[allow(unused_imports)] // not every test binary checks the sink
pub use messages::{both_messages, redelivered, wait_for_messages};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// An HTTP answer: status and body text.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    /// The body parsed as JSON (panics with the body when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// One request on a fresh connection (`Connection: close`); the error is
/// any IO failure, e.g. the daemon died mid-request.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<Answer> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.set_write_timeout(Some(Duration::from_secs(20)))?;
    s.set_nodelay(true)?;
    let body = body.unwrap_or("");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse(&raw)
}

fn bad(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

/// A whole response: status line, headers, then a body by length, chunks
/// or end of stream.
fn parse(raw: &[u8]) -> std::io::Result<Answer> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let mut length = None;
    let mut chunked = false;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if k == "content-length" {
            length = v.parse::<usize>().ok();
        } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
    }
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else {
        let n = length.unwrap_or(rest.len());
        if rest.len() < n {
            return Err(bad("body cut short"));
        }
        rest[..n].to_vec()
    };
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut rest: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| bad("chunk size cut short"))?;
        let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..eol]).trim(), 16)
            .map_err(|_| bad("bad chunk size"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size + 2 {
            return Err(bad("chunk cut short"));
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// A `nudge run` process.
pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Daemon {
    /// Start `nudge run PROJECT --db DB --listen 127.0.0.1:PORT` (`DB` a
    /// database URL) with `extra` flags; waits (≤ 20 s) until `/healthz`
    /// answers.
    pub fn start(project: &Path, db: &str, port: u16, extra: &[&str], log: &Path) -> Daemon {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_nudge"))
            .arg("run")
            .arg(project)
            .arg("--db")
            .arg(db)
            .arg("--listen")
            .arg(addr.to_string())
            .args(extra)
            .env("NUDGE_LOG", "warn")
            .env_remove("NUDGE_API_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let mut d = Daemon { child, addr };
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            // the stand-in answering while the database is away says so
            if let Ok(a) = request(addr, "GET", "/healthz", None)
                && a.status == 200
                && !a.body.contains("waiting")
            {
                return d;
            }
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("the daemon exited at start: {status}");
            }
            assert!(Instant::now() < until, "the daemon did not answer in 20 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, and reap the process.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy in front of `upstream`. While closed, it never answers: the
/// request of every even connection is forwarded (the sink has it, the
/// sender never hears back: "sent, not recorded"), that of every odd one is
/// swallowed ("claimed, never sent"). Once [`Gate::open`], new connections
/// pass through both ways. Held connections end when their client dies.
pub struct Gate {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    /// Connections accepted while closed: (forwarded, swallowed).
    held: Arc<[AtomicUsize; 2]>,
}

impl Gate {
    pub fn start(upstream: SocketAddr) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(false));
        let held = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let (o, h) = (open.clone(), held.clone());
        std::thread::spawn(move || {
            for (n, client) in listener.incoming().enumerate() {
                let Ok(client) = client else { continue };
                let mode = if o.load(Ordering::SeqCst) {
                    None
                } else {
                    h[n % 2].fetch_add(1, Ordering::SeqCst);
                    Some(n % 2 == 0)
                };
                spawn(move || serve(client, upstream, mode));
            }
        });
        Gate { addr, open, held }
    }

    /// Pass new connections through from now on.
    pub fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    /// Connections held while closed: (forwarded, swallowed).
    pub fn held(&self) -> (usize, usize) {
        (
            self.held[0].load(Ordering::SeqCst),
            self.held[1].load(Ordering::SeqCst),
        )
    }
}

/// Forwards every connection `listener` takes to `upstream`, both ways, on
/// threads of its own (a plain TCP proxy).
pub fn forward(listener: TcpListener, upstream: SocketAddr) {
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            spawn(move || serve(client, upstream, None));
        }
    });
}

fn spawn(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(f)
        .unwrap();
}

/// One proxied connection; `mode` is `None` open, `Some(forward)` closed.
fn serve(mut client: TcpStream, upstream: SocketAddr, mode: Option<bool>) {
    match mode {
        Some(false) => {
            let _ = std::io::copy(&mut client, &mut std::io::sink());
        }
        Some(true) => {
            if let Ok(mut up) = TcpStream::connect(upstream) {
                let _ = std::io::copy(&mut client, &mut up);
            }
        }
        None => {
            let Ok(mut up) = TcpStream::connect(upstream) else {
                return;
            };
            let (Ok(mut c2), Ok(mut u2)) = (client.try_clone(), up.try_clone()) else {
                return;
            };
            spawn(move || {
                let _ = std::io::copy(&mut u2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
            let _ = std::io::copy(&mut client, &mut up);
            let _ = up.shutdown(std::net::Shutdown::Write);
        }
    }
}
