//! The daemon's HTTP edges, against the real `nudge run` binary: one JSON
//! error shape for every status (408 included), JSON-only `/v1/*` bodies,
//! cross-origin browser requests refused, SIGHUP a redeploy that never
//! ends the process (during startup too), connection limits that half-sent requests cannot exhaust, and the
//! logs an operator reads (access lines, JSON-only stderr, no wire traces).

#![allow(clippy::unwrap_used)]

mod daemon_support;

use daemon_support::projects::{local, main_project, signup};
use daemon_support::{Daemon, Options, Reply, wait_until};
use nudge_testkit::{HttpSink, SmtpSink};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn started(opts: &Options) -> (SmtpSink, HttpSink, daemon_support::Scratch, Daemon) {
    let (smtp, http) = (SmtpSink::start_blocking(), HttpSink::start_blocking());
    let s = main_project(&smtp, &http);
    let d = Daemon::start(&s, opts);
    (smtp, http, s, d)
}

/// A raw connection that has sent `bytes` and nothing more.
fn half_sent(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(bytes).unwrap();
    c
}

/// Read until the peer closes (or `timeout`); `None` when still open then.
fn read_until_closed(c: &mut TcpStream, timeout: Duration) -> Option<Vec<u8>> {
    c.set_read_timeout(Some(timeout)).unwrap();
    let mut got = Vec::new();
    match c.read_to_end(&mut got) {
        Ok(_) => Some(got),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Some(got),
        Err(_) => None,
    }
}

/// The stderr lines, each parsed as JSON (panics on a line that is not).
fn json_lines(d: &Daemon) -> Vec<Value> {
    d.log()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}")))
        .collect()
}

fn access_lines(d: &Daemon) -> Vec<Value> {
    json_lines(d)
        .into_iter()
        .filter(|l| l["target"] == "nudge::access")
        .collect()
}

fn is_json_error(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.expect_error(status)["code"], code, "{r:?}");
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "{r:?}"
    );
}

#[test]
fn a_timed_out_request_gets_the_json_error_shape() {
    let (_smtp, _http, _s, d) = started(&local().arg("--request-timeout").arg("1"));
    // the head promises 100 bytes, 10 arrive: the handler waits for the rest
    let mut c = half_sent(
        d.addr,
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"event\":",
    );
    let raw = read_until_closed(&mut c, secs(10)).expect("no answer to a stalled body");
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{text}"
    );
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(v["error"]["code"], "timeout", "{text}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );

    let mut big = signup("x-5", "big@example.com", "Big");
    big["contact"]["first_name"] = json!("A".repeat(4 * 1024 * 1024 + 10));
    is_json_error(&d.post_json("/v1/events", &big), 413, "too_large");
    is_json_error(&d.get("/nope"), 404, "no_route");
    is_json_error(
        &d.call("PATCH", "/healthz", &[], None),
        405,
        "method_not_allowed",
    );
}

#[test]
fn v1_takes_only_json_bodies_and_postbacks_keep_their_forms() {
    let (_smtp, _http, _s, d) = started(&local());
    let ev = serde_json::to_vec(&signup("j-1", "j@example.com", "Jo")).unwrap();
    let post = |ct: Option<&str>| {
        let headers: Vec<(&str, &str)> = ct.iter().map(|c| ("Content-Type", *c)).collect();
        d.call("POST", "/v1/events", &headers, Some(&ev))
    };
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonp"),
        None,
    ] {
        is_json_error(&post(ct), 415, "unsupported_media_type");
    }
    assert_eq!(
        d.contact("j-1").status,
        404,
        "a refused body applied nothing"
    );
    let r = d.call(
        "PUT",
        "/v1/contacts/j-2",
        &[("Content-Type", "text/plain")],
        Some(b"{\"fields\": {}}"),
    );
    is_json_error(&r, 415, "unsupported_media_type");
    assert_eq!(post(Some("application/json; charset=utf-8")).status, 202);
    assert_eq!(d.contact("j-1").status, 200);
    // no body, no content type needed
    let r = d.call("POST", "/v1/outbox/99/retry", &[], None);
    assert_eq!(r.expect_error(404)["code"], "unknown_outbox_row");

    // postbacks take a form body (or none) as before
    let r = d.call(
        "POST",
        "/postback/partner",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(b"clickid=ck-9&status=reg&token=pt"),
    );
    assert_eq!((r.status, r.json()), (202, json!({"status": "held"})));
    let r = d.call(
        "POST",
        "/postback/partner?clickid=ck-8&status=reg&token=pt",
        &[("Content-Type", "text/plain")],
        Some(b""),
    );
    assert_eq!(r.status, 202, "{r:?}");
}

#[test]
fn cross_origin_browser_requests_are_refused_unless_allowed() {
    let (_smtp, _http, _s, d) = started(&local());
    // the attack of issue 10: a page posting text/plain to pause a flow
    let r = d.call(
        "POST",
        "/v1/flows/onboarding/pause",
        &[
            ("Origin", "https://evil.example"),
            ("Content-Type", "text/plain"),
        ],
        Some(b"{}"),
    );
    is_json_error(&r, 403, "forbidden_origin");
    let r = d.call(
        "POST",
        "/v1/flows/onboarding/pause",
        &[("Origin", "https://evil.example")],
        None,
    );
    is_json_error(&r, 403, "forbidden_origin");
    let r = d.call(
        "GET",
        "/v1/flows",
        &[("Sec-Fetch-Site", "cross-site")],
        None,
    );
    is_json_error(&r, 403, "forbidden_origin");
    d.call("GET", "/v1/flows", &[("Origin", "null")], None)
        .expect_error(403);
    assert_eq!(d.flow("onboarding")["status"], "active");
    // a non-browser client sends no Origin and gets through
    let r = d.call("POST", "/v1/flows/onboarding/pause", &[], None);
    assert_eq!(r.status, 200, "{r:?}");
    // health and postbacks are not browser-guarded
    let r = d.call(
        "GET",
        "/healthz",
        &[("Origin", "https://evil.example")],
        None,
    );
    assert_eq!(r.status, 200);

    let warned = |d: &Daemon| {
        json_lines(d)
            .iter()
            .filter(|l| {
                l["level"] == "WARN"
                    && l["fields"]["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("NUDGE_API_TOKEN is not set"))
            })
            .count()
    };
    assert_eq!(warned(&d), 1, "{}", d.log());

    let (_smtp2, _http2, _s2, d2) = started(
        &local()
            .arg("--allow-origin")
            .arg("https://admin.example, https://ops.example/")
            .env("NUDGE_API_TOKEN", "tok")
            .bearer("tok"),
    );
    for origin in ["https://admin.example", "https://OPS.example"] {
        let r = d2.call("GET", "/v1/flows", &[("Origin", origin)], None);
        assert_eq!(r.status, 200, "{origin}: {r:?}");
    }
    let r = d2.call(
        "GET",
        "/v1/flows",
        &[("Origin", "https://admin.example.evil")],
        None,
    );
    is_json_error(&r, 403, "forbidden_origin");
    assert_eq!(warned(&d2), 0, "{}", d2.log());
}

#[test]
fn sighup_redeploys_and_keeps_serving() {
    let (_smtp, _http, _s, mut d) = started(&local());
    for _ in 0..2 {
        let sent = Command::new("kill")
            .args(["-HUP", &d.pid().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(d.get("/healthz").status, 200, "{}", d.log());
    let r = d.post_json("/v1/events", &signup("h-1", "h@example.com", "Hal"));
    assert_eq!(r.status, 202, "{r:?}");
    let noted = wait_until(secs(5), || {
        let n = d.log().matches("SIGHUP: compiling").count();
        (n == 2).then_some(n)
    });
    assert_eq!(noted, Some(2), "{}", d.log());
    let status = d.terminate(secs(15));
    assert!(status.success(), "{status}");
}

/// SIGHUP while the daemon starts (compiling the project, opening the
/// database) does not end it either: the handler is installed first, so
/// from its debug line on, SIGHUPs sent until the daemon listens never end
/// it (one is kept, and deploys once the daemon runs).
#[test]
fn sighup_during_startup_does_not_end_the_daemon() {
    let (smtp, http) = (SmtpSink::start_blocking(), HttpSink::start_blocking());
    let s = main_project(&smtp, &http);
    let mut d = Daemon::spawn(&s, &local().env("NUDGE_LOG", "debug"));
    let t0 = Instant::now();
    while !d.log().contains("SIGHUP handled") {
        assert!(t0.elapsed() < secs(15), "no handler line:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut before_up = 0;
    while !d.log().contains("nudge: listening on") {
        assert!(t0.elapsed() < secs(15), "never listened:\n{}", d.log());
        if let Some(status) = d.exited() {
            panic!("the daemon exited ({status}) on SIGHUP:\n{}", d.log());
        }
        let sent = Command::new("kill")
            .args(["-HUP", &d.pid().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        before_up += 1;
    }
    assert!(before_up > 0, "no SIGHUP landed before the daemon was up");
    d.wait_healthy();
    let noted = wait_until(secs(5), || {
        d.log().contains("SIGHUP: compiling").then_some(())
    });
    assert!(noted.is_some(), "{}", d.log());
    let status = d.terminate(secs(15));
    assert_eq!(status.code(), Some(0), "{status}\n{}", d.log());
}

#[test]
fn half_sent_headers_cannot_take_healthz_down() {
    let opts = local()
        .arg("--max-connections")
        .arg("8")
        .arg("--header-timeout")
        .arg("3");
    let (_smtp, _http, _s, d) = started(&opts);
    let mut held: Vec<TcpStream> = (0..24)
        .map(|_| half_sent(d.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "))
        .collect();
    // three times the cap: health answers at once, before any header
    // timeout, because a new connection takes the longest idle one's place
    let t0 = Instant::now();
    let r = daemon_support::try_request(d.addr, "GET", "/healthz", &[], None)
        .unwrap_or_else(|e| panic!("healthz failed: {e}\n{}", d.log()));
    assert_eq!(r.status, 200);
    assert!(t0.elapsed() < secs(2), "healthz took {:?}", t0.elapsed());
    // every half-sent one is closed: evicted, or by the header timeout
    for c in &mut held {
        let closed = read_until_closed(c, secs(10));
        assert!(closed.is_some(), "a half-sent connection was never closed");
    }
    assert!(t0.elapsed() < secs(8), "closing took {:?}", t0.elapsed());
    // an idle keep-alive connection closes after the header timeout
    let mut keep = half_sent(d.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let t1 = Instant::now();
    let raw = read_until_closed(&mut keep, secs(10)).expect("keep-alive never closed");
    assert!(String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 200"));
    assert!(
        t1.elapsed() >= Duration::from_millis(2800),
        "{:?}",
        t1.elapsed()
    );

    let warnings = d.log().matches("connection limit reached").count();
    assert_eq!(warnings, 1, "one rate-limited warning:\n{}", d.log());
    let m = d.get("/metrics").body;
    let value = |name: &str| -> u64 {
        m.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{m}"))
    };
    assert!(value("nudge_http_connections_evicted_total") >= 17, "{m}");
    assert!(value("nudge_http_connections_timed_out_total") >= 2, "{m}");
    assert!(
        value("nudge_http_connection_limit_reached_total") >= 17,
        "{m}"
    );
    assert_eq!(value("nudge_http_connections_open"), 1, "{m}");
}

#[test]
fn half_open_connections_beyond_the_fd_limit_leave_the_daemon_serving() {
    let opts = local().arg("--max-connections").arg("128");
    let (smtp, _http, _s, d) = started(&opts);
    // the setup scaled down: 400 half-open connections against a
    // daemon allowed 256 file descriptors
    let pid = d.pid().to_string();
    let limited = Command::new("prlimit")
        .args(["--pid", &pid, "--nofile=256:256"])
        .status()
        .expect("prlimit (util-linux) runs");
    assert!(limited.success());
    let _held: Vec<TcpStream> = (0..400)
        .map(|_| half_sent(d.addr, b"POST /v1/events HTTP/1.1\r\nHost: x\r\n"))
        .collect();
    for i in 0..10 {
        let t = Instant::now();
        let r = daemon_support::try_request(d.addr, "GET", "/healthz", &[], None)
            .unwrap_or_else(|e| panic!("healthz sample {i} failed: {e}\n{}", d.log()));
        assert_eq!(r.status, 200);
        assert!(t.elapsed() < secs(2), "sample {i} took {:?}", t.elapsed());
    }
    // deliveries still get the descriptors they need
    let r = d.post_json("/v1/events", &signup("f-1", "f@example.com", "Fay"));
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(smtp.wait_for_blocking(1, secs(10)).len(), 1, "{}", d.log());
    assert!(!d.log().contains("cannot accept"), "{}", d.log());
}

#[test]
fn a_connection_that_moves_nothing_is_closed_by_the_idle_timeout() {
    let opts = local()
        .arg("--header-timeout")
        .arg("30")
        .arg("--idle-timeout")
        .arg("1");
    let (_smtp, _http, _s, d) = started(&opts);
    let t0 = Instant::now();
    let mut c = half_sent(d.addr, b"GET /healthz HTTP/1.1\r\n");
    assert!(
        read_until_closed(&mut c, secs(10)).is_some(),
        "never closed"
    );
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < secs(5),
        "{took:?}"
    );
    // the daemon serves on
    let r = d.post_json("/v1/events", &signup("i-1", "i@example.com", "Ida"));
    assert_eq!(r.status, 202);
}

#[test]
fn access_lines_name_the_route_and_stderr_holds_only_json() {
    let (_smtp, _http, _s, mut d) = started(&local());
    let r = d.call(
        "GET",
        "/postback/partner?clickid=ck-1&status=reg&token=pt-in-query",
        &[("X-Request-Id", "trace-me-1")],
        None,
    );
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.header("x-request-id"), Some("trace-me-1"));
    let r = d.post_json("/v1/events", &signup("a-1", "a@example.com", "Al"));
    assert_eq!(r.status, 202);
    let fresh = r.header("x-request-id").unwrap().to_string();
    assert_eq!(d.get("/nope?secret=zzz").status, 404);
    let lines = wait_until(secs(5), || {
        let a = access_lines(&d);
        (a.len() >= 4).then_some(a)
    })
    .unwrap_or_else(|| panic!("no access lines:\n{}", d.log()));
    let find = |id: &str| {
        lines
            .iter()
            .find(|l| l["fields"]["request_id"] == id)
            .unwrap_or_else(|| panic!("no access line for {id}:\n{}", d.log()))
            .clone()
    };
    let pb = find("trace-me-1");
    assert_eq!(pb["level"], "INFO");
    assert_eq!(pb["fields"]["method"], "GET");
    assert_eq!(pb["fields"]["route"], "/postback/{source}");
    assert_eq!(pb["fields"]["status"], 401);
    assert!(pb["fields"]["latency_ms"].is_u64(), "{pb}");
    let ev = find(&fresh);
    assert_eq!(
        (&ev["fields"]["route"], &ev["fields"]["status"]),
        (&json!("/v1/events"), &json!(202))
    );
    let log = d.log();
    assert!(
        !log.contains("pt-in-query") && !log.contains("zzz"),
        "{log}"
    );
    assert!(log.contains("nudge: listening on http://"), "{log}");
    assert_eq!(d.terminate(secs(15)).code(), Some(0));
    json_lines(&d);
}

/// The targets of the lines a daemon logged at `NUDGE_LOG=filter` while
/// taking events and delivering mail.
fn targets_at(filter: &str) -> Vec<(String, String)> {
    let (smtp, _http, _s, mut d) = started(&local().env("NUDGE_LOG", filter));
    let r = d.post_json("/v1/events", &signup("w-1", "w@example.com", "Wes"));
    assert_eq!(r.status, 202);
    smtp.wait_for_blocking(1, secs(10));
    d.terminate(secs(15));
    json_lines(&d)
        .iter()
        .map(|l| {
            (
                l["target"].as_str().unwrap_or("").to_string(),
                l["level"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn wire_traces_stay_off_unless_named_and_sql_is_trace_only() {
    const WIRE: [&str; 6] = ["lettre", "reqwest", "hyper", "rustls", "sqlx", "h2"];
    let wire = |t: &str| {
        WIRE.iter()
            .any(|w| t == *w || t.starts_with(&format!("{w}::")))
    };
    let all = targets_at("trace");
    assert!(all.iter().any(|(t, _)| t.starts_with("nudge")), "{all:?}");
    let leaked: Vec<_> = all
        .iter()
        .filter(|(t, l)| wire(t) && !matches!(l.as_str(), "WARN" | "ERROR"))
        .collect();
    assert!(
        leaked.is_empty(),
        "wire traces at NUDGE_LOG=trace: {leaked:?}"
    );
    // named, sqlx speaks — its statements at trace, not at debug
    let sql = |v: &[(String, String)]| v.iter().filter(|(t, _)| t == "sqlx::query").count();
    assert_eq!(sql(&targets_at("info,sqlx=debug")), 0);
    assert!(sql(&targets_at("info,sqlx=trace")) > 0);
    // and lettre has a wire trace to hide: named, it shows
    let named = targets_at("info,lettre=trace");
    assert!(
        named.iter().any(|(t, _)| t.starts_with("lettre")),
        "{named:?}"
    );
}

#[test]
fn nudge_log_off_leaves_stderr_empty() {
    let (_smtp, _http, _s, mut d) = started(&local().env("NUDGE_LOG", "off"));
    assert_eq!(d.get("/nope").status, 404);
    let status = d.terminate(secs(15));
    assert!(status.success());
    assert_eq!(d.log(), "");
}
