//! Helpers for the end-to-end tests of `nudge run`: a scratch project
//! directory, the real binary as a child process on a free loopback port,
//! and a tiny blocking HTTP/1.1 client.
//!
//! Takes `.nudge` sources, command-line flags and the storage [`Engine`]
//! (a [`Scratch`] owns a fresh database on it: a SQLite file in the
//! directory or a Postgres database of its own; `on_both_engines!` runs
//! one test on each); gives a [`Daemon`] that
//! answers `/healthz` before the test goes on, and [`Reply`]s with the
//! status, headers and body of each request. Guarantees: a daemon is killed
//! (and reaped) when its guard drops, a scratch directory is removed when
//! its guard drops, and no test waits longer than the timeout it names.

#![allow(clippy::unwrap_used, dead_code)]

pub mod projects;

pub use nudge_testkit::engine::{Engine, TestDb};

use serde_json::Value;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a daemon may take to answer `/healthz`.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one API request may take.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How often polling helpers look again.
pub const POLL: Duration = Duration::from_millis(50);

/// A scratch directory (project files, logs, a SQLite database) and the
/// database; both removed on drop.
pub struct Scratch {
    pub dir: PathBuf,
    pub database: TestDb,
}

impl Scratch {
    /// A new empty directory under the system temp dir, on SQLite.
    pub fn new(tag: &str) -> Scratch {
        Scratch::on(Engine::Sqlite, tag)
    }

    /// A new empty directory and a fresh database on `engine`.
    pub fn on(engine: Engine, tag: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "nudge-e2e-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(dir.join("project")).unwrap();
        let database = TestDb::new(engine, &dir, tag);
        Scratch { dir, database }
    }

    /// The project directory (`*.nudge` files go here).
    pub fn project(&self) -> PathBuf {
        self.dir.join("project")
    }

    /// Write one project file (replacing it if it exists).
    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.project().join(name), text).unwrap();
    }

    /// The database URL, `sqlite://…/nudge.db` or `postgres://…`.
    pub fn db(&self) -> String {
        self.database.url()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The `nudge` binary with a clean environment for the daemon settings.
pub fn nudge() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nudge"));
    for var in [
        "NUDGE_API_TOKEN",
        "NUDGE_DB",
        "NUDGE_LISTEN",
        "NUDGE_ALLOW_HOSTS",
        "PARTNER_TOKEN",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1").env("NUDGE_LOG", "info");
    cmd
}

/// Run an operating command (`stats`, `contact show`, …) to the end.
pub fn nudge_cmd(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = nudge();
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// How to start a daemon.
#[derive(Default, Clone)]
pub struct Options {
    /// Extra flags after the database and the address.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub envs: Vec<(String, String)>,
    /// The bearer token the client sends on every request.
    pub bearer: Option<String>,
    /// `--db` instead of the scratch database.
    pub db: Option<String>,
}

impl Options {
    pub fn arg(mut self, a: impl Into<String>) -> Options {
        self.args.push(a.into());
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Options {
        self.envs.push((k.into(), v.into()));
        self
    }

    pub fn bearer(mut self, token: &str) -> Options {
        self.bearer = Some(token.into());
        self
    }

    pub fn db(mut self, url: &str) -> Options {
        self.db = Some(url.into());
        self
    }
}

/// A running `nudge run`; killed on drop.
pub struct Daemon {
    child: Child,
    pub addr: SocketAddr,
    pub db: String,
    log: PathBuf,
    bearer: Option<String>,
}

impl Daemon {
    /// Start the daemon on the scratch project and database and wait until
    /// `/healthz` answers 200.
    pub fn start(scratch: &Scratch, opts: &Options) -> Daemon {
        let mut d = Daemon::spawn(scratch, opts);
        d.wait_healthy();
        d
    }

    /// Start the daemon without waiting for it (see [`Daemon::wait_healthy`]).
    pub fn spawn(scratch: &Scratch, opts: &Options) -> Daemon {
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let log = scratch.dir.join(format!("daemon-{}.log", addr.port()));
        let db = opts.db.clone().unwrap_or_else(|| scratch.db());
        let mut cmd = nudge();
        cmd.arg("run")
            .arg(scratch.project())
            .args(["--db", &db, "--listen", &addr.to_string()])
            .args(&opts.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap());
        for (k, v) in &opts.envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        Daemon {
            child,
            addr,
            db,
            log,
            bearer: opts.bearer.clone(),
        }
    }

    /// Wait until `/healthz` answers 200 from the daemon itself (not from
    /// the stand-in that answers while it waits for its database); panics
    /// if the daemon exits first.
    pub fn wait_healthy(&mut self) {
        let until = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.exited() {
                panic!("the daemon exited ({status}):\n{}", self.log());
            }
            if let Ok(r) = try_request(self.addr, "GET", "/healthz", &[], None)
                && serving(&r)
            {
                return;
            }
            assert!(
                Instant::now() < until,
                "the daemon did not become healthy:\n{}",
                self.log()
            );
            std::thread::sleep(POLL);
        }
    }

    /// What the daemon wrote on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its exit status, once it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send SIGTERM and wait for the exit (at most `timeout`).
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid} failed");
        let until = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < until,
                "the daemon did not stop within {timeout:?} after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(POLL);
        }
    }

    fn auth(&self) -> Vec<(String, String)> {
        self.bearer
            .iter()
            .map(|t| ("Authorization".to_string(), format!("Bearer {t}")))
            .collect()
    }

    /// A request with the daemon's bearer token (if any) and these headers.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        let auth = self.auth();
        let mut all: Vec<(&str, &str)> =
            auth.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        all.extend_from_slice(headers);
        request(self.addr, method, path, &all, body)
    }

    pub fn get(&self, path: &str) -> Reply {
        self.call("GET", path, &[], None)
    }

    /// A request with a JSON body.
    pub fn send_json(&self, method: &str, path: &str, body: &Value) -> Reply {
        let bytes = serde_json::to_vec(body).unwrap();
        self.call(
            method,
            path,
            &[("Content-Type", "application/json")],
            Some(&bytes),
        )
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.send_json("POST", path, body)
    }

    /// `GET /v1/contacts/{id}`.
    pub fn contact(&self, id: &str) -> Reply {
        self.get(&format!("/v1/contacts/{id}"))
    }

    /// One flow of `GET /v1/flows`.
    pub fn flow(&self, name: &str) -> Value {
        let r = self.get("/v1/flows");
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["flows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no flow `{name}` in {}", r.body))
    }

    /// The rows of `GET /v1/outbox[?status=…]`.
    pub fn outbox(&self, status: Option<&str>) -> Vec<Value> {
        let path = match status {
            Some(s) => format!("/v1/outbox?status={s}"),
            None => "/v1/outbox".to_string(),
        };
        let r = self.get(&path);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["outbox"].as_array().unwrap().clone()
    }

    /// Poll `GET /v1/outbox?status=…` until it holds `n` rows.
    pub fn wait_outbox(&self, status: &str, n: usize, timeout: Duration) -> Vec<Value> {
        wait_until(timeout, || {
            let rows = self.outbox(Some(status));
            (rows.len() >= n).then_some(rows)
        })
        .unwrap_or_else(|| {
            panic!(
                "no {n} `{status}` outbox rows within {timeout:?}: {:?}\n{}",
                self.outbox(None),
                self.log()
            )
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Whether a `/healthz` answer comes from the daemon itself, not from the
/// stand-in that answers while it waits for its database.
pub fn serving(healthz: &Reply) -> bool {
    healthz.status == 200 && !healthz.body.contains("waiting")
}

/// Call `f` until it gives `Some` or `timeout` passed.
pub fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let until = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// The body as JSON (panics with the body when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Assert the status and the `{"error": {"code", "message"}}` shape;
    /// gives the error object.
    pub fn expect_error(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "wanted {status}, got {self:?}");
        let v = self.json();
        let e = &v["error"];
        assert!(e["code"].is_string(), "no error code: {}", self.body);
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "no error message: {}",
            self.body
        );
        e.clone()
    }
}

/// One request over a fresh connection (`Connection: close`); panics on
/// a transport error.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    try_request(addr, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// One request over a fresh connection. The body is written on a thread of
/// its own while the answer is read, so a server that answers early (413)
/// and closes is still heard.
pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or_default().to_vec();
    if !body.is_empty() || matches!(method, "POST" | "PUT") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    let mut writer = stream.try_clone()?;
    let sender = std::thread::spawn(move || {
        // An early answer closes the connection: a failed write is expected then.
        let _ = writer.write_all(&body);
    });
    let mut raw = Vec::new();
    let read = stream.read_to_end(&mut raw);
    let _ = sender.join();
    if raw.is_empty() {
        read?;
    }
    parse_response(&raw)
}

/// One raw answer (head and body) as a [`Reply`].
pub fn parse_response(raw: &[u8]) -> std::io::Result<Reply> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let rest = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest).ok_or_else(|| bad("bad chunked body"))?
    } else {
        rest.to_vec()
    };
    Ok(Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).to_string(),
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&data[..eol]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Percent-encode a query value (RFC 3986 unreserved characters kept).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A project source with `@NAME@` placeholders (ports, URLs) replaced.
pub fn fill(template: &str, vars: &[(&str, String)]) -> String {
    vars.iter().fold(template.to_string(), |t, (k, v)| {
        t.replace(&format!("@{k}@"), v)
    })
}
