//! Secrets at rest and the SMTP guard, against real loopback servers: a
//! request built with `env` values is stored sealed (no value in the
//! payload) and arrives with the values joined in; an SMTP host on a
//! loopback address is refused unless allowed, and the refusal names the
//! channel and the host (by its `env` name when it is a secret).
#![allow(clippy::unwrap_used)]

mod vm_support;
use nudge_compiler::bundle::{
    BinaryOp, Body, Bundle, CallTarget, ChannelDef, ChannelKind, Code, Op,
};
use nudge_compiler::value::Value;
use nudge_runtime::deliver::{Channels, DeliverOptions, Delivered};
use nudge_runtime::vm::request::build;
use nudge_runtime::vm::{Message, Request, Scope};
use nudge_testkit::{HttpSink, SmtpSink};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use vm_support::with_channels as bundle;

const TOKEN: &str = "tok-Zq81\"x\\y";
const KEY: &str = "key-77Hh1";

fn lit(s: &str) -> Code {
    Code(vec![Op::Push(Value::text(s))])
}

fn env_code(name: &str) -> Code {
    Code(vec![Op::Env(name.into())])
}

/// `"PREFIX" + env(NAME)`
fn joined(prefix: &str, name: &str) -> Code {
    Code(vec![
        Op::Push(Value::text(prefix)),
        Op::Env(name.into()),
        Op::Bin(BinaryOp::Add),
    ])
}

fn crm(url: &str) -> ChannelDef {
    ChannelDef {
        name: "crm".into(),
        kind: ChannelKind::Http {
            method: "POST".into(),
            url: Body::Expr(joined(&format!("{url}/leads?key="), "CRM_KEY")),
            headers: vec![(
                "Authorization".into(),
                Body::Expr(joined("Bearer ", "CRM_TOKEN")),
            )],
            body: Some(Body::Object(vec![
                ("token".into(), Body::Expr(env_code("CRM_TOKEN"))),
                ("name".into(), Body::Expr(lit("Ann [secret]"))),
            ])),
        },
        rate: None,
        cap: None,
        timeout_seconds: Some(5),
    }
}

fn smtp(host: Code, port: u16) -> ChannelDef {
    ChannelDef {
        name: "email".into(),
        kind: ChannelKind::Smtp {
            host,
            port,
            security: "none".into(),
            username: None,
            password: None,
            from: lit("news@shop.example"),
            reply_to: None,
        },
        rate: None,
        cap: None,
        timeout_seconds: Some(5),
    }
}

fn env() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("CRM_TOKEN".to_string(), TOKEN.to_string()),
        ("CRM_KEY".to_string(), KEY.to_string()),
        ("SMTP_HOST".to_string(), "127.0.0.1".to_string()),
    ])
}

fn channels(b: &Bundle, allow: Vec<String>) -> Channels {
    let opts = DeliverOptions {
        allow_hosts: allow,
        default_timeout: Duration::from_secs(2),
    };
    Channels::new(b, &env(), opts).unwrap()
}

/// The call's payload as the outbox stores it.
fn stored_call(b: &Bundle) -> serde_json::Value {
    let env = env();
    let mut scope = Scope::new(0);
    scope.env = Some(&env);
    let built = build(b, &CallTarget::Channel("crm".into()), &scope, None, None).unwrap();
    serde_json::to_value(Request {
        flow: "f".into(),
        step: "s".into(),
        channel: Some("crm".into()),
        method: built.method,
        url: built.url,
        headers: built.headers,
        json: built.json,
        body: built.body,
        result: None,
        secrets: built.secrets,
    })
    .unwrap()
}

fn email() -> serde_json::Value {
    serde_json::to_value(Message {
        flow: "f".into(),
        step: "s".into(),
        channel: "email".into(),
        template: None,
        to: Some("ann@example.com".into()),
        subject: Some("Hi".into()),
        text: Some("Hello".into()),
        html: None,
        at: 0,
        force: false,
        request: None,
    })
    .unwrap()
}

#[tokio::test]
async fn a_stored_request_holds_references_and_is_sent_with_the_values() {
    let sink = HttpSink::start().await;
    sink.respond(200, "{}");
    let b = bundle(vec![crm(&sink.url())]);
    let payload = stored_call(&b);
    let text = payload.to_string();
    let escaped = serde_json::Value::String(TOKEN.into()).to_string();
    for v in [TOKEN, KEY, &escaped[1..escaped.len() - 1]] {
        assert!(!text.contains(v), "the stored payload holds {v:?}: {text}");
    }
    assert!(text.contains("\"env\":\"CRM_TOKEN\""), "{text}");
    let ch = channels(&b, vec![format!("127.0.0.1:{}", sink.port())]);
    let d = ch.deliver("call", &payload, "call:1").await;
    assert!(matches!(d, Delivered::Ok { status: 200, .. }), "{d:?}");
    let r = &sink.requests()[0];
    assert_eq!(r.path, format!("/leads?key={KEY}"));
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    // contact data that looks like a placeholder is left as it was
    assert_eq!(
        r.json(),
        Some(json!({"token": TOKEN, "name": "Ann [secret]"}))
    );
}

#[tokio::test]
async fn a_request_whose_variable_is_gone_is_refused_naming_only_the_variable() {
    let b = bundle(vec![crm("http://127.0.0.1:9")]);
    let payload = stored_call(&b);
    let opts = DeliverOptions::default();
    let ch = Channels::new(&b, &BTreeMap::new(), opts).unwrap();
    match ch.deliver("call", &payload, "k").await {
        Delivered::Permanent { status: 0, error } => {
            assert!(error.contains("env(\"CRM_"), "{error}");
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[tokio::test]
async fn an_smtp_host_on_loopback_is_refused_unless_allowed() {
    let sink = SmtpSink::start().await;
    let b = bundle(vec![smtp(lit("127.0.0.1"), sink.port())]);
    let d = channels(&b, vec![]).deliver("message", &email(), "k").await;
    assert_eq!(
        d,
        Delivered::Permanent {
            status: 0,
            error: "channel `email`: refused: `127.0.0.1` is a loopback address".into()
        }
    );
    let d = channels(&b, vec!["127.0.0.1:1".into()])
        .deliver("message", &email(), "k")
        .await;
    assert!(
        matches!(d, Delivered::Permanent { status: 0, .. }),
        "other port: {d:?}"
    );
    assert!(sink.messages().is_empty());
    let allowed = channels(&b, vec![format!("127.0.0.1:{}", sink.port())]);
    let d = allowed.deliver("message", &email(), "k").await;
    assert!(matches!(d, Delivered::Ok { status: 250, .. }), "{d:?}");
    assert_eq!(sink.wait_for(1, Duration::from_secs(5)).await.len(), 1);
}

#[tokio::test]
async fn a_refused_smtp_host_from_env_is_named_by_its_variable() {
    let b = bundle(vec![smtp(env_code("SMTP_HOST"), 25)]);
    let d = channels(&b, vec![]).deliver("message", &email(), "k").await;
    assert_eq!(
        d,
        Delivered::Permanent {
            status: 0,
            error: "channel `email`: refused: `env(\"SMTP_HOST\")` is a loopback address".into()
        }
    );
    let b = bundle(vec![smtp(lit("localhost"), 25)]);
    match channels(&b, vec![]).deliver("message", &email(), "k").await {
        Delivered::Permanent { status: 0, error } => assert!(
            error.starts_with("channel `email`: refused: `localhost` resolves to `"),
            "{error}"
        ),
        other => panic!("localhost must be refused: {other:?}"),
    }
    let b = bundle(vec![smtp(lit("169.254.169.254"), 25)]);
    let d = channels(&b, vec![]).deliver("message", &email(), "k").await;
    assert_eq!(
        d,
        Delivered::Permanent {
            status: 0,
            error: "channel `email`: refused: `169.254.169.254` is a link-local address".into()
        }
    );
}

#[tokio::test]
async fn a_row_written_before_sealing_is_sent_as_it_is() {
    let sink = HttpSink::start().await;
    sink.respond(200, "{}");
    let b = bundle(vec![crm(&sink.url())]);
    // the payload shape of earlier versions: values in it, no `secrets`
    let old = json!({
        "flow": "f", "step": "s", "channel": "crm", "method": "POST",
        "url": format!("{}/leads?key=old", sink.url()),
        "headers": [["Authorization", "Bearer old-token"]],
        "json": {"id": "c-1"}, "body": "{\"id\":\"c-1\"}", "result": null
    });
    let ch = channels(&b, vec![format!("127.0.0.1:{}", sink.port())]);
    let d = ch.deliver("call", &old, "call:old").await;
    assert!(matches!(d, Delivered::Ok { status: 200, .. }), "{d:?}");
    let r = &sink.requests()[0];
    assert_eq!(r.path, "/leads?key=old");
    assert_eq!(r.header("authorization"), Some("Bearer old-token"));
    assert_eq!(r.json(), Some(json!({"id": "c-1"})));
}
