//! Delivery against real loopback servers (`nudge-testkit`): e-mail through
//! an SMTP sink, HTTP through an HTTP sink, the SSRF guard, error texts
//! without secrets, and per-channel rate limits.
#![allow(clippy::unwrap_used)]

mod vm_support;
use nudge_compiler::bundle::{Body, ChannelDef, ChannelKind, Code, Op, Rate, Tpl};
use nudge_compiler::value::Value;
use nudge_runtime::deliver::{Admission, Channels, DeliverOptions, Delivered, TINY_WAIT};
use nudge_runtime::vm::{HttpRequest, Message, Request};
use nudge_testkit::{HttpSink, SmtpSink};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use vm_support::with_channels as bundle;

const WAIT: Duration = Duration::from_secs(5);
const SECRET: &str = "s3cr3t-T0KEN";

fn lit(s: &str) -> Code {
    Code(vec![Op::Push(Value::text(s))])
}

fn env_code(name: &str) -> Code {
    Code(vec![Op::Env(name.into())])
}

fn smtp_channel(name: &str, port: u16, from: Code) -> ChannelDef {
    ChannelDef {
        name: name.into(),
        kind: ChannelKind::Smtp {
            host: lit("127.0.0.1"),
            port,
            security: "none".into(),
            username: Some(lit("mailer")),
            password: Some(env_code("SMTP_PASSWORD")),
            from,
            reply_to: Some(lit("help@shop.example")),
        },
        rate: None,
        cap: None,
        timeout_seconds: Some(5),
    }
}

fn web_channel(name: &str, rate: Option<Rate>) -> ChannelDef {
    ChannelDef {
        name: name.into(),
        kind: ChannelKind::Slack {
            webhook: lit("unused: the message carries its request"),
        },
        rate,
        cap: None,
        timeout_seconds: None,
    }
}

fn http_channel(name: &str) -> ChannelDef {
    ChannelDef {
        name: name.into(),
        kind: ChannelKind::Http {
            method: "POST".into(),
            url: Body::Tpl(Tpl("unused".into())),
            headers: vec![],
            body: None,
        },
        rate: None,
        cap: None,
        timeout_seconds: Some(5),
    }
}

fn env() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("SMTP_PASSWORD".to_string(), "pw".to_string()),
        ("FROM".to_string(), "Shop <news@shop.example>".to_string()),
    ])
}

fn channels(defs: Vec<ChannelDef>, allow: &[String]) -> Channels {
    let opts = DeliverOptions {
        allow_hosts: allow.to_vec(),
        default_timeout: Duration::from_millis(300),
    };
    Channels::new(&bundle(defs), &env(), opts).unwrap()
}

fn email(to: &str) -> serde_json::Value {
    serde_json::to_value(Message {
        flow: "welcome".into(),
        step: "start".into(),
        channel: "email".into(),
        template: None,
        to: Some(to.into()),
        subject: Some("Welcome aboard".into()),
        text: Some("Hello in plain text".into()),
        html: Some("<p>Hello in html</p>".into()),
        at: 0,
        force: false,
        request: None,
    })
    .unwrap()
}

fn web_message(channel: &str, url: &str) -> serde_json::Value {
    serde_json::to_value(Message {
        flow: "welcome".into(),
        step: "start".into(),
        channel: channel.into(),
        template: None,
        to: None,
        subject: None,
        text: Some("hi team".into()),
        html: None,
        at: 0,
        force: false,
        request: Some(HttpRequest {
            method: "POST".into(),
            url: url.into(),
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("Authorization".into(), format!("Bearer {SECRET}")),
            ],
            body: json!({"text": "hi team"}).to_string(),
            secrets: vec![],
        }),
    })
    .unwrap()
}

fn call(channel: Option<&str>, url: &str) -> serde_json::Value {
    let body = json!({"contact": "c-1", "score": 3});
    serde_json::to_value(Request {
        flow: "crm".into(),
        step: "sync".into(),
        channel: channel.map(str::to_string),
        method: "PUT".into(),
        url: url.into(),
        headers: vec![("X-Api-Key".into(), SECRET.into())],
        json: Some(body.clone()),
        body: body.to_string(),
        result: Some("crm".into()),
        secrets: vec![],
    })
    .unwrap()
}

fn loopback(port: u16) -> Vec<String> {
    vec![format!("127.0.0.1:{port}")]
}

fn assert_permanent_refusal(d: &Delivered, needle: &str) {
    match d {
        Delivered::Permanent { status: 0, error } => {
            assert!(
                error.contains(needle),
                "{error:?} should mention {needle:?}"
            );
            assert!(!error.contains(SECRET), "{error:?} leaks the secret");
            assert!(!error.contains("http://"), "{error:?} shows a URL");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn an_email_arrives_with_its_parts_and_a_stable_message_id() {
    let sink = SmtpSink::start().await;
    let ch = channels(
        vec![smtp_channel("email", sink.port(), env_code("FROM"))],
        &loopback(sink.port()),
    );
    for key in ["send:c-1:welcome:7", "send:c-1:welcome:7", "other key"] {
        let d = ch.deliver("message", &email("ann@example.com"), key).await;
        assert_eq!(
            d,
            Delivered::Ok {
                status: 250,
                json: serde_json::Value::Null
            }
        );
    }
    let mails = sink.wait_for(3, WAIT).await;
    assert_eq!(mails.len(), 3);
    let m = &mails[0];
    assert_eq!(m.from, "news@shop.example");
    assert_eq!(m.to, vec!["ann@example.com".to_string()]);
    assert_eq!(m.header("Subject").as_deref(), Some("Welcome aboard"));
    assert!(m.header("From").unwrap().contains("news@shop.example"));
    assert!(m.header("To").unwrap().contains("ann@example.com"));
    assert!(m.header("Reply-To").unwrap().contains("help@shop.example"));
    assert!(
        m.header("Content-Type")
            .unwrap()
            .starts_with("multipart/alternative")
    );
    assert!(m.data.contains("Hello in plain text"), "{}", m.data);
    assert!(m.data.contains("<p>Hello in html</p>"), "{}", m.data);
    let id = |i: usize| mails[i].header("Message-ID").unwrap();
    assert_eq!(id(0), id(1), "retries keep the Message-ID");
    assert_ne!(id(0), id(2));
    assert!(id(0).ends_with("@nudge.local>"));
}

#[tokio::test]
async fn smtp_faults_are_classified() {
    let sink = SmtpSink::start().await;
    let ch = channels(
        vec![smtp_channel("email", sink.port(), lit("news@shop.example"))],
        &loopback(sink.port()),
    );
    sink.fail_rcpt(Some(550));
    match ch
        .deliver("message", &email("gone@example.com"), "k1")
        .await
    {
        Delivered::Permanent { status: 550, error } => {
            assert!(error.starts_with("smtp 550"), "{error}")
        }
        other => panic!("550 should be permanent: {other:?}"),
    }
    sink.fail_rcpt(Some(451));
    match ch
        .deliver("message", &email("later@example.com"), "k2")
        .await
    {
        Delivered::Transient(error) => assert!(error.starts_with("smtp 451"), "{error}"),
        other => panic!("451 should be transient: {other:?}"),
    }
    sink.fail_rcpt(None);
    let bad = ch.deliver("message", &email("not an address"), "k3").await;
    assert!(
        matches!(bad, Delivered::Permanent { status: 0, ref error } if error.contains("bad address")),
        "{bad:?}"
    );
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn a_closed_smtp_port_is_transient() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let ch = channels(
        vec![smtp_channel("email", port, lit("news@shop.example"))],
        &loopback(port),
    );
    match ch.deliver("message", &email("ann@example.com"), "k").await {
        Delivered::Transient(e) => assert!(e.contains("connection refused"), "{e}"),
        other => panic!("expected transient, got {other:?}"),
    }
}

#[test]
fn a_missing_smtp_setting_names_the_channel() {
    let b = bundle(vec![smtp_channel("news", 25, env_code("NO_SUCH_VAR"))]);
    let err = Channels::new(&b, &env(), DeliverOptions::default())
        .err()
        .unwrap();
    assert_eq!(err, "channel `news`: `from` is not set");
}

#[tokio::test]
async fn a_slack_message_goes_as_its_request_with_an_idempotency_key() {
    let sink = HttpSink::start().await;
    sink.respond(200, r#"{"ok": true}"#);
    let ch = channels(vec![web_channel("team", None)], &loopback(sink.port()));
    let url = format!("{}/hook?token={SECRET}", sink.url());
    let d = ch
        .deliver("message", &web_message("team", &url), "send:c-1:9")
        .await;
    assert_eq!(
        d,
        Delivered::Ok {
            status: 200,
            json: json!({"ok": true})
        }
    );
    let reqs = sink.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, format!("/hook?token={SECRET}"));
    assert_eq!(r.header("idempotency-key"), Some("send:c-1:9"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json(), Some(json!({"text": "hi team"})));
}

#[tokio::test]
async fn a_call_sends_its_json_and_gets_the_parsed_answer() {
    let sink = HttpSink::start().await;
    sink.respond(201, r#"{"id": 7, "tags": ["a"]}"#);
    let ch = channels(vec![http_channel("crm")], &["127.0.0.1".to_string()]);
    let d = ch
        .deliver(
            "call",
            &call(Some("crm"), &format!("{}/contacts", sink.url())),
            "call:1",
        )
        .await;
    assert_eq!(
        d,
        Delivered::Ok {
            status: 201,
            json: json!({"id": 7, "tags": ["a"]})
        }
    );
    let r = &sink.requests()[0];
    assert_eq!(r.method, "PUT");
    assert_eq!(r.header("x-api-key"), Some(SECRET));
    assert_eq!(r.header("idempotency-key"), Some("call:1"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json(), Some(json!({"contact": "c-1", "score": 3})));
}

#[tokio::test]
async fn http_statuses_are_classified_without_leaking_the_url() {
    let sink = HttpSink::start().await;
    let ch = channels(vec![web_channel("team", None)], &["127.0.0.1".to_string()]);
    let url = format!("{}/hook?token={SECRET}", sink.url());
    for (status, transient) in [
        (500, true),
        (503, true),
        (429, true),
        (408, true),
        (404, false),
        (400, false),
    ] {
        sink.respond(status, "{}");
        let d = ch.deliver("message", &web_message("team", &url), "k").await;
        match (&d, transient) {
            (Delivered::Transient(e), true) => assert_eq!(e, &format!("http status {status}")),
            (Delivered::Permanent { status: s, error }, false) => {
                assert_eq!(*s, i64::from(status));
                assert!(!error.contains(SECRET));
            }
            _ => panic!("status {status} gave {d:?}"),
        }
    }
    // A 2xx without a JSON body gives Null.
    sink.respond(204, "");
    let d = ch.deliver("message", &web_message("team", &url), "k").await;
    assert_eq!(
        d,
        Delivered::Ok {
            status: 204,
            json: serde_json::Value::Null
        }
    );
}

#[tokio::test]
async fn transport_errors_are_transient_and_secret_free() {
    // Nobody listens: connection refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let ch = channels(vec![], &["127.0.0.1".to_string()]);
    let url = format!("http://127.0.0.1:{port}/x?token={SECRET}");
    match ch.deliver("call", &call(None, &url), "k").await {
        Delivered::Transient(e) => {
            assert!(e.contains("connection refused"), "{e}");
            assert!(!e.contains(SECRET) && !e.contains("http://"), "{e}");
        }
        other => panic!("expected transient, got {other:?}"),
    }
    // Accepts but never answers: the default timeout (300 ms) ends it.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/x?token={SECRET}", silent.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let started = Instant::now();
    let d = ch.deliver("call", &call(None, &url), "k").await;
    assert_eq!(d, Delivered::Transient("timed out after 300ms".into()));
    assert!(started.elapsed() < Duration::from_secs(2));
    hold.abort();
}

#[tokio::test]
async fn the_guard_refuses_internal_hosts_unless_allowed() {
    let sink = HttpSink::start().await;
    let none = channels(vec![web_channel("team", None)], &[]);
    let literal = format!("http://127.0.0.1:{}/hook?token={SECRET}", sink.port());
    let by_name = format!("http://localhost:{}/hook?token={SECRET}", sink.port());

    let d = none
        .deliver("message", &web_message("team", &literal), "k")
        .await;
    assert_permanent_refusal(&d, "refused: `127.0.0.1` is a loopback address");
    let d = none.deliver("call", &call(None, &by_name), "k").await;
    assert_permanent_refusal(&d, "`localhost` resolves to");
    let d = none
        .deliver(
            "call",
            &call(None, "http://169.254.169.254/latest/meta-data"),
            "k",
        )
        .await;
    assert_permanent_refusal(&d, "link-local");
    let d = none
        .deliver("call", &call(None, "http://[::ffff:10.0.0.1]/"), "k")
        .await;
    assert_permanent_refusal(&d, "private");
    assert!(sink.requests().is_empty(), "nothing reached the listener");

    // Allowed by IP and port, or by name: it goes through.
    let by_port = channels(vec![web_channel("team", None)], &loopback(sink.port()));
    let d = by_port
        .deliver("message", &web_message("team", &literal), "k")
        .await;
    assert!(matches!(d, Delivered::Ok { status: 200, .. }), "{d:?}");
    let by_host = channels(vec![], &["LOCALHOST".to_string()]);
    let d = by_host.deliver("call", &call(None, &by_name), "k").await;
    assert!(matches!(d, Delivered::Ok { status: 200, .. }), "{d:?}");
    assert_eq!(sink.requests().len(), 2);

    // Allowed on another port only: refused.
    let other_port = channels(vec![], &loopback(sink.port().wrapping_add(1)));
    let d = other_port.deliver("call", &call(None, &literal), "k").await;
    assert_permanent_refusal(&d, "loopback");
    assert_eq!(sink.requests().len(), 2);
}

#[tokio::test]
async fn a_redirect_to_an_internal_host_is_refused() {
    let allowed = HttpSink::start().await;
    let target = HttpSink::start().await;
    allowed.redirect(format!("{}/inside?token={SECRET}", target.url()));
    let ch = channels(vec![], &loopback(allowed.port()));
    let d = ch
        .deliver(
            "call",
            &call(None, &format!("{}/start", allowed.url())),
            "k",
        )
        .await;
    assert_permanent_refusal(&d, "loopback");
    assert_eq!(allowed.requests().len(), 1);
    assert!(
        target.requests().is_empty(),
        "the redirect target got nothing"
    );

    // Redirects within the allowed host are followed, at most five.
    allowed.redirect(format!("{}/second", allowed.url()));
    let d = ch
        .deliver(
            "call",
            &call(None, &format!("{}/first", allowed.url())),
            "k",
        )
        .await;
    assert!(matches!(d, Delivered::Ok { status: 200, .. }), "{d:?}");
    for _ in 0..7 {
        allowed.redirect(format!("{}/again", allowed.url()));
    }
    let d = ch
        .deliver("call", &call(None, &format!("{}/loop", allowed.url())), "k")
        .await;
    assert_eq!(
        d,
        Delivered::Permanent {
            status: 0,
            error: "more than 5 redirects".into()
        }
    );
}

/// A channel's rate is a slot per row taken when the row is claimed: the
/// burst goes at once, the next row is told how long until its slot (to be
/// rescheduled, never slept on), keeps that slot when it comes back, and a
/// delivery itself never waits for the rate.
#[tokio::test]
async fn a_channel_rate_gives_the_third_row_a_later_slot() {
    let sink = HttpSink::start().await;
    let rate = Rate {
        count: 2,
        per_seconds: 1,
    };
    let ch = channels(
        vec![web_channel("team", Some(rate)), web_channel("free", None)],
        &["127.0.0.1".to_string()],
    );
    assert_eq!(ch.admit("team", 1), Admission::Go(Duration::ZERO));
    assert_eq!(ch.admit("team", 2), Admission::Go(Duration::ZERO));
    let Admission::Later(wait) = ch.admit("team", 3) else {
        panic!("the third row waits its turn");
    };
    assert!(
        wait > Duration::from_millis(300) && wait <= Duration::from_millis(500),
        "{wait:?}"
    );
    let Admission::Later(again) = ch.admit("team", 3) else {
        panic!("an early return keeps waiting for the same slot");
    };
    assert!(again <= wait, "{again:?} {wait:?}");
    let Admission::Later(fourth) = ch.admit("team", 4) else {
        panic!("the fourth row gets the slot after the third's");
    };
    assert!(fourth > wait, "{fourth:?} {wait:?}");
    assert_eq!(ch.admit("free", 5), Admission::Go(Duration::ZERO));
    assert_eq!(ch.admit("ghost", 6), Admission::Go(Duration::ZERO));
    tokio::time::sleep(wait).await;
    assert!(
        matches!(ch.admit("team", 3), Admission::Go(w) if w <= TINY_WAIT),
        "at its slot the row goes"
    );
    // deliveries themselves are never throttled
    let url = format!("{}/hook", sink.url());
    let started = Instant::now();
    for i in 0..4 {
        let d = ch
            .deliver("message", &web_message("team", &url), &format!("k{i}"))
            .await;
        assert!(matches!(d, Delivered::Ok { .. }), "{d:?}");
    }
    assert!(started.elapsed() < Duration::from_millis(400));
}

#[tokio::test]
async fn unreadable_payloads_and_unknown_channels_are_permanent() {
    let ch = channels(vec![], &[]);
    let d = ch.deliver("message", &json!({"nope": SECRET}), "k").await;
    assert_eq!(
        d,
        Delivered::Permanent {
            status: 0,
            error: "unreadable message payload".into()
        }
    );
    let d = ch
        .deliver("message", &web_message("ghost", "http://example.com/"), "k")
        .await;
    assert_eq!(
        d,
        Delivered::Permanent {
            status: 0,
            error: "unknown channel `ghost`".into()
        }
    );
    let d = ch.deliver("teleport", &json!({}), "k").await;
    assert_eq!(
        d,
        Delivered::Permanent {
            status: 0,
            error: "unknown delivery kind `teleport`".into()
        }
    );
}

/// The blocking sinks serve synchronous tests (the binary's end-to-end tests).
#[test]
fn blocking_sinks_work_from_synchronous_code() {
    let smtp = SmtpSink::start_blocking();
    let http = HttpSink::start_blocking();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ch = rt.block_on(async {
        let ch = channels(
            vec![
                smtp_channel("email", smtp.port(), lit("news@shop.example")),
                web_channel("team", None),
            ],
            &[loopback(http.port()), loopback(smtp.port())].concat(),
        );
        ch.deliver("message", &email("bob@example.com"), "k").await;
        ch.deliver(
            "message",
            &web_message("team", &format!("{}/h", http.url())),
            "k",
        )
        .await;
        ch
    });
    assert_eq!(
        smtp.wait_for_blocking(1, WAIT)[0].to,
        vec!["bob@example.com".to_string()]
    );
    assert_eq!(http.wait_for_blocking(1, WAIT)[0].path, "/h");
    drop(ch);
}

#[test]
fn tls_settings_are_checked_at_start() {
    let with = |security: &str| {
        let mut def = smtp_channel("email", 587, lit("news@shop.example"));
        if let ChannelKind::Smtp {
            security: s, host, ..
        } = &mut def.kind
        {
            *s = security.into();
            *host = lit("smtp.example.com");
        }
        Channels::new(&bundle(vec![def]), &env(), DeliverOptions::default())
    };
    assert!(with("starttls").is_ok());
    assert!(with("tls").is_ok());
    let err = with("ssl").err().unwrap();
    assert!(
        err.starts_with("channel `email`: unknown security `ssl`"),
        "{err}"
    );
}

#[test]
fn channels_and_their_deliveries_can_move_between_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let ch = channels(vec![], &[]);
    send_sync(&ch);
    let payload = json!({});
    let attempt = ch.deliver("call", &payload, "k");
    send(&attempt);
}
