//! The daemon's HTTP edges below and beside the router, against the real
//! `nudge run` binary over raw TCP: what hyper answers by itself (a
//! malformed or oversized request head) has the JSON error shape, is logged
//! without the bytes and closes the connection, on the 1st request of a
//! connection as on the 2nd; and CORS works for the allowed browser
//! origins (preflights without the token, headers on the answers) while
//! every other origin is refused.

#![allow(clippy::unwrap_used)]

mod daemon_support;

use daemon_support::projects::{local, main_project};
use daemon_support::{Daemon, Options, Reply, parse_response};
use nudge_testkit::{HttpSink, SmtpSink};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);

fn started(opts: &Options) -> (SmtpSink, HttpSink, daemon_support::Scratch, Daemon) {
    let (smtp, http) = (SmtpSink::start_blocking(), HttpSink::start_blocking());
    let s = main_project(&smtp, &http);
    let d = Daemon::start(&s, opts);
    (smtp, http, s, d)
}

fn connect(d: &Daemon) -> TcpStream {
    let c = TcpStream::connect(d.addr).unwrap();
    c.set_read_timeout(Some(TIMEOUT)).unwrap();
    c
}

/// Everything the daemon sends until it closes the connection; panics
/// when it is still open after the timeout.
fn until_closed(c: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    match c.read_to_end(&mut got) {
        Ok(_) => got,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => got,
        Err(e) => panic!("the connection was not closed ({e}); got {got:?}"),
    }
}

/// Send `bytes` on a fresh connection; the answer, read until the close.
fn raw(d: &Daemon, bytes: &[u8]) -> Reply {
    let mut c = connect(d);
    c.write_all(bytes).unwrap();
    parse_response(&until_closed(&mut c)).unwrap()
}

/// A refusal by the HTTP parser: status, JSON body with `code`, a
/// `content-length` that is the body's, the connection closed.
fn refused(r: &Reply, status: u16, code: &str) -> Value {
    let e = r.expect_error(status);
    assert_eq!(e["code"], code, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
    let length = r.body.len().to_string();
    assert_eq!(r.header("content-length"), Some(length.as_str()), "{r:?}");
    assert_eq!(r.header("connection"), Some("close"), "{r:?}");
    e
}

/// The value of a metric line.
fn metric(d: &Daemon, name: &str) -> u64 {
    let m = d.get("/metrics").body;
    m.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{m}"))
}

#[test]
fn malformed_and_oversized_heads_get_the_json_error_shape() {
    let (_smtp, _http, _s, d) = started(&local().arg("--max-head-size").arg("4096"));
    let r = raw(&d, b"GARBAGE-LINE-SEEN-ONLY-HERE\r\n\r\n");
    let e = refused(&r, 400, "bad_request");
    assert!(e["message"].as_str().unwrap().contains("malformed"), "{e}");
    let r = raw(
        &d,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nnot a header line\r\n\r\n",
    );
    refused(&r, 400, "bad_request");

    // the head-size setting decides: 3 000 bytes pass, 5 000 do not
    let head = |n: usize| {
        format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: {}\r\n\r\n",
            "p".repeat(n)
        )
    };
    assert_eq!(raw(&d, head(3000).as_bytes()).status, 200);
    let e = refused(&raw(&d, head(5000).as_bytes()), 431, "headers_too_large");
    assert!(e["message"].as_str().unwrap().contains("4096"), "{e}");
    let many: String = (0..101).map(|i| format!("X-H{i}: 1\r\n")).collect();
    let r = raw(
        &d,
        format!("GET /healthz HTTP/1.1\r\n{many}\r\n").as_bytes(),
    );
    refused(&r, 431, "headers_too_large");

    // logged with the peer, never the bytes; counted
    let log = d.log();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| l.contains("request refused before routing"))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{log}");
    assert!(
        lines[0]["fields"]["peer"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(lines[2]["fields"]["status"], 431);
    assert_eq!(lines[2]["fields"]["code"], "headers_too_large");
    assert!(
        !log.contains("GARBAGE-LINE") && !log.contains("ppp"),
        "{log}"
    );
    assert_eq!(metric(&d, "nudge_http_malformed_requests_total"), 4);
}

#[test]
fn a_malformed_second_request_on_a_keep_alive_connection_gets_json_too() {
    let (_smtp, _http, _s, d) = started(&local());
    let mut c = connect(&d);
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: ka-1\r\n\r\n")
        .unwrap();
    // the first answer, in full, before the second request goes
    let mut first = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&first).ends_with("{\"status\":\"ok\"}") {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "closed after the first answer: {first:?}");
        first.extend_from_slice(&buf[..n]);
    }
    let (r, rest) = split_first(&first);
    assert!(rest.is_empty(), "{first:?}");
    assert_eq!((r.status, r.header("x-request-id")), (200, Some("ka-1")));
    assert_eq!(r.header("connection"), None, "kept alive: {r:?}");
    c.write_all(b"GET /healthz HTTP/9.9 nonsense\r\n\r\n")
        .unwrap();
    refused(
        &parse_response(&until_closed(&mut c)).unwrap(),
        400,
        "bad_request",
    );
    // pipelined in one write, the same
    let mut c = connect(&d);
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nbroken\r\n\r\n")
        .unwrap();
    let all = until_closed(&mut c);
    let (first, rest) = split_first(&all);
    assert_eq!(
        (first.status, first.body.as_str()),
        (200, "{\"status\":\"ok\"}")
    );
    refused(&parse_response(rest).unwrap(), 400, "bad_request");
}

/// The first of several answers (by its `content-length`), and the rest.
fn split_first(all: &[u8]) -> (Reply, &[u8]) {
    let end = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = parse_response(&all[..end]).unwrap();
    let length: usize = head.header("content-length").unwrap().parse().unwrap();
    let (one, rest) = all.split_at(end + length);
    (parse_response(one).unwrap(), rest)
}

#[test]
fn normal_answers_are_unchanged_and_carry_no_cors_headers() {
    let (_smtp, _http, _s, d) =
        started(&local().arg("--allow-origin").arg("https://admin.example"));
    let r = raw(
        &d,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Request-Id: same-1\r\n\r\n",
    );
    let mut head: Vec<_> = r
        .headers
        .iter()
        .filter(|(k, _)| k != "date")
        .cloned()
        .collect();
    head.sort();
    let want = [
        ("connection", "close"),
        ("content-length", "15"),
        ("content-type", "application/json"),
        ("x-request-id", "same-1"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    assert_eq!((r.status, r.body.as_str()), (200, "{\"status\":\"ok\"}"));
    assert_eq!(head, want);
    // a /v1 answer without Origin: the same body, no CORS grant
    let r = d.get("/v1/flows");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["flows"][0]["name"], "onboarding", "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), None, "{r:?}");
    // an OPTIONS that is no preflight: 405 as before
    let r = d.call("OPTIONS", "/v1/events", &[], None);
    assert_eq!(r.expect_error(405)["code"], "method_not_allowed");
}

fn preflight(d: &Daemon, path: &str, origin: &str) -> Reply {
    d.call(
        "OPTIONS",
        path,
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "authorization, content-type",
            ),
        ],
        None,
    )
}

#[test]
fn allowed_origins_get_cors_answers_and_others_are_refused() {
    let opts = local()
        .arg("--allow-origin")
        .arg("https://admin.example")
        .env("NUDGE_API_TOKEN", "tok");
    let (_smtp, _http, _s, d) = started(&opts);
    const ADMIN: &str = "https://admin.example";
    // a preflight carries no token and is answered before any handler
    let r = preflight(&d, "/v1/flows/onboarding/pause", ADMIN);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some(ADMIN),
        "{r:?}"
    );
    assert!(
        r.header("vary").is_some_and(|v| v.contains("origin")),
        "{r:?}"
    );
    let methods = r.header("access-control-allow-methods").unwrap();
    for m in ["GET", "POST", "PUT"] {
        assert!(methods.contains(m), "{r:?}");
    }
    let allowed = r.header("access-control-allow-headers").unwrap();
    for h in ["authorization", "content-type", "x-request-id"] {
        assert!(allowed.contains(h), "{r:?}");
    }
    assert_eq!(r.header("access-control-max-age"), Some("600"), "{r:?}");
    assert_eq!(r.body, "");
    let flows = d.call("GET", "/v1/flows", &[("Authorization", "Bearer tok")], None);
    assert_eq!(flows.json()["flows"][0]["status"], "active", "{flows:?}");

    // the request itself: the grant and the exposed request id
    let auth = ("Authorization", "Bearer tok");
    let r = d.call(
        "POST",
        "/v1/flows/onboarding/pause",
        &[("Origin", ADMIN), auth],
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), Some(ADMIN));
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("x-request-id")
    );
    // without the token, the refusal is readable by the page
    let r = d.call("GET", "/v1/flows", &[("Origin", ADMIN)], None);
    assert_eq!(r.expect_error(401)["code"], "unauthorized");
    assert_eq!(r.header("access-control-allow-origin"), Some(ADMIN));

    // any other origin: 403 JSON, preflight or not, and no grant
    for r in [
        preflight(&d, "/v1/events", "https://evil.example"),
        d.call(
            "GET",
            "/v1/flows",
            &[("Origin", "https://evil.example"), auth],
            None,
        ),
    ] {
        assert_eq!(r.expect_error(403)["code"], "forbidden_origin", "{r:?}");
        assert_eq!(r.header("access-control-allow-origin"), None, "{r:?}");
    }
    // health and postbacks keep their behaviour: no CORS grant
    let r = d.call("GET", "/healthz", &[("Origin", ADMIN)], None);
    assert_eq!(
        (r.status, r.header("access-control-allow-origin")),
        (200, None)
    );
    let r = preflight(&d, "/postback/partner", ADMIN);
    assert_eq!(r.expect_error(405)["code"], "method_not_allowed");
    assert_eq!(r.header("access-control-allow-origin"), None, "{r:?}");
}
