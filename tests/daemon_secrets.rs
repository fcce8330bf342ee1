//! The all-routes secret test: a project whose every secret channel setting
//! comes from `env` (`tests/fixtures/secrets/main.nudge`: SMTP host, user,
//! password and sender, a Slack webhook, an HTTP URL with a token in its
//! query, bearer and key headers, a call URL with credentials) runs through
//! the simulator (`nudge test --trace`, a passing and a failing test) and the
//! real daemon (`NUDGE_LOG=debug`, `RUST_LOG=debug`) against loopback sinks,
//! with deliveries that succeed, are retried, and die. Every route is read:
//! events, postbacks (applied, unauthorised, undeclared), the contact and its
//! journey, the outbox and its dead letters, a retry, rejected postbacks,
//! flows, metrics, health, and after the stop `nudge stats`, `nudge contact
//! show` and `nudge outbox list` on the same database. The test fails if any `env` value (or the base64
//! forms SMTP AUTH and HTTP basic auth write) appears in stdout, stderr, an
//! API answer or the database (SQLite: the files `nudge.db`, `-wal`,
//! `-shm`; Postgres: every table's rows, `bytea` decoded), read while the
//! daemon runs and after it stopped; on both engines. The sinks must still receive the
//! real values: the secrets are joined only when a request is sent.
//! The SMTP guard is checked on the same project: without `--allow-host`
//! the loopback SMTP host is refused, naming the channel and `env("SMTP_HOST")`.
#![allow(clippy::unwrap_used)]

mod daemon_support;

use daemon_support::{Engine, Reply, Scratch, fill, free_port, nudge, try_request, wait_until};
use nudge_testkit::{HttpSink, SmtpSink, on_both_engines};
use serde_json::{Value, json};
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PROJECT: &str = include_str!("fixtures/secrets/main.nudge");
const WAIT: Duration = Duration::from_secs(15);

const PARTNER_TOKEN: &str = "pt-Kv7wQ2";
const SMTP_USER: &str = "mailer-Jd83";
const SMTP_PASSWORD: &str = "smtp-pw-Lq4Z9";
const SMS_TOKEN: &str = "sms-bearer-Hh31";
const SMS_KEY: &str = "sms-key-Pp02";
const CRM_TOKEN: &str = "crm-token-Ww58";
/// Secrets inside URL values, each also checked on its own.
const URL_PARTS: [&str; 4] = ["slackSECRET5v", "smsQUERY8k", "crmPASS77", "crmKEY44"];

struct Sinks {
    smtp: SmtpSink,
    slack: HttpSink,
    sms: HttpSink,
    crm: HttpSink,
    closed: u16,
}

impl Sinks {
    fn start() -> Sinks {
        Sinks {
            smtp: SmtpSink::start_blocking(),
            slack: HttpSink::start_blocking(),
            sms: HttpSink::start_blocking(),
            crm: HttpSink::start_blocking(),
            closed: free_port(),
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        let p = |s: &HttpSink| s.port();
        vec![
            ("PARTNER_TOKEN", PARTNER_TOKEN.into()),
            ("SMTP_HOST", "localhost".into()),
            ("SMTP_USER", SMTP_USER.into()),
            ("SMTP_PASSWORD", SMTP_PASSWORD.into()),
            ("SMTP_FROM", "Shop <news-R2d7@shop.example>".into()),
            (
                "SLACK_WEBHOOK",
                format!(
                    "http://127.0.0.1:{}/services/T0/B0/slackSECRET5v",
                    p(&self.slack)
                ),
            ),
            (
                "SMS_URL",
                format!("http://127.0.0.1:{}/send?token=smsQUERY8k", p(&self.sms)),
            ),
            ("SMS_TOKEN", SMS_TOKEN.into()),
            ("SMS_KEY", SMS_KEY.into()),
            (
                "CRM_URL",
                format!(
                    "http://crmuser:crmPASS77@127.0.0.1:{}/leads?api_key=crmKEY44",
                    p(&self.crm)
                ),
            ),
            ("CRM_TOKEN", CRM_TOKEN.into()),
        ]
    }

    fn project(&self) -> String {
        let ports = [
            ("SMTP_PORT", self.smtp.port().to_string()),
            ("CLOSED_PORT", self.closed.to_string()),
        ];
        fill(PROJECT, &ports)
    }
}

/// Every text that must never be seen: the values, their secret parts,
/// and the base64 forms of SMTP AUTH PLAIN / LOGIN and HTTP basic auth.
fn forbidden(env: &[(&str, String)]) -> Vec<String> {
    let mut out: Vec<String> = env.iter().map(|(_, v)| v.clone()).collect();
    out.extend(URL_PARTS.iter().map(|s| s.to_string()));
    for raw in [
        format!("\0{SMTP_USER}\0{SMTP_PASSWORD}"),
        SMTP_USER.to_string(),
        SMTP_PASSWORD.to_string(),
        "crmuser:crmPASS77".to_string(),
    ] {
        out.push(base64(raw.as_bytes()));
    }
    out
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    // a prefix that does not depend on what follows the value
    out.truncate(out.len().saturating_sub(4));
    out
}

fn assert_clean(what: &str, text: &[u8], forbidden: &[String]) {
    for f in forbidden {
        let found = text.windows(f.len()).position(|w| w == f.as_bytes());
        if let Some(at) = found {
            let from = at.saturating_sub(120);
            let around = String::from_utf8_lossy(&text[from..(at + f.len() + 60).min(text.len())]);
            panic!("{what} holds the secret {f:?}: …{around}…");
        }
    }
}

/// `nudge run` with stdout and stderr in files; killed on drop.
struct Run {
    child: Child,
    addr: SocketAddr,
    out: PathBuf,
    err: PathBuf,
}

impl Run {
    fn start(s: &Scratch, env: &[(&str, String)], allow: &[String]) -> Run {
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let (out, err) = (s.dir.join("stdout.txt"), s.dir.join("stderr.txt"));
        let mut cmd = nudge();
        cmd.arg("run")
            .arg(s.project())
            .args(["--db", &s.db(), "--listen", &addr.to_string()])
            .args(["--retry-base", "1", "--max-attempts", "2"])
            .env("NUDGE_LOG", "debug")
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap());
        for a in allow {
            cmd.args(["--allow-host", a]);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut run = Run {
            child: cmd.spawn().unwrap(),
            addr,
            out,
            err,
        };
        let up = wait_until(WAIT, || {
            if let Some(status) = run.child.try_wait().unwrap() {
                panic!("the daemon exited ({status}): {}", run.output());
            }
            try_request(addr, "GET", "/healthz", &[], None)
                .ok()
                .filter(daemon_support::serving)
        });
        assert!(up.is_some(), "the daemon did not start: {}", run.output());
        run
    }

    fn output(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!("{}{}", read(&self.out), read(&self.err))
    }

    fn get(&self, path: &str) -> Reply {
        try_request(self.addr, "GET", path, &[], None).unwrap()
    }

    fn post(&self, path: &str, body: &Value) -> Reply {
        let body = body.to_string();
        let headers = [("Content-Type", "application/json")];
        try_request(self.addr, "POST", path, &headers, Some(body.as_bytes())).unwrap()
    }

    fn outbox(&self, status: &str) -> Vec<Value> {
        let r = self.get(&format!("/v1/outbox?status={status}"));
        assert_eq!(r.status, 200, "{r:?}");
        r.json()["outbox"].as_array().unwrap().clone()
    }

    fn wait_outbox(&self, status: &str, n: usize) -> Vec<Value> {
        wait_until(WAIT, || {
            let rows = self.outbox(status);
            (rows.len() >= n).then_some(rows)
        })
        .unwrap_or_else(|| panic!("no {n} {status} rows: {}", self.output()))
    }

    fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let stopped = wait_until(WAIT, || self.child.try_wait().unwrap());
        assert!(stopped.is_some(), "the daemon did not stop");
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the database holds (its files, or its tables), each with its name.
fn database_files(s: &Scratch) -> Vec<(String, Vec<u8>)> {
    let all = s.database.contents();
    // the search is not vacuous: the stored contact is in what was read
    let holds = |b: &[u8]| b.windows(3).any(|w| w == b"c-1");
    assert!(
        all.iter().any(|(_, b)| holds(b)),
        "the database read holds no contact"
    );
    all
}

/// Drive every route; gives each API answer as (route, body).
fn drive(run: &Run, sinks: &Sinks) -> Vec<(String, String)> {
    let mut answers = Vec::new();
    let mut keep = |route: &str, r: Reply| answers.push((route.to_string(), r.body));
    let signup = json!({"event": "signup", "contact": {
        "id": "c-1", "email": "ann@example.com", "first_name": "Ann", "clickid": "ck-1"}});
    let r = run.post("/v1/events", &signup);
    assert_eq!(r.status, 202, "{r:?}");
    keep("POST /v1/events", r);
    let bad = run.post(
        "/v1/events",
        &json!({"event": "contact_created", "contact": {"id": "c-1"}}),
    );
    keep("POST /v1/events (reserved)", bad);
    for (route, path) in [
        (
            "postback",
            format!("/postback/partner?clickid=ck-1&status=reg&token={PARTNER_TOKEN}"),
        ),
        (
            "postback (wrong token)",
            "/postback/partner?clickid=ck-1&status=reg&token=nope".into(),
        ),
        (
            "postback (undeclared)",
            format!("/postback/partner?clickid=ck-1&status=bogus&token={PARTNER_TOKEN}"),
        ),
        (
            "postback (held)",
            format!("/postback/partner?clickid=ck-9&status=reg&token={PARTNER_TOKEN}"),
        ),
    ] {
        keep(route, run.get(&path));
    }
    assert!(
        !sinks.smtp.wait_for_blocking(1, WAIT).is_empty(),
        "no e-mail"
    );
    sinks.slack.wait_for_blocking(2, WAIT);
    sinks.sms.wait_for_blocking(2, WAIT);
    let dead = run.wait_outbox("dead", 2);
    let retried = run.post(&format!("/v1/outbox/{}/retry", dead[0]["id"]), &json!({}));
    keep("POST /v1/outbox/{id}/retry", retried);
    run.wait_outbox("dead", 2);
    for path in [
        "/v1/contacts/c-1",
        "/v1/outbox",
        "/v1/outbox?status=dead",
        "/v1/outbox?status=sent",
        "/v1/postbacks/rejected",
        "/v1/flows",
        "/metrics",
        "/healthz",
        "/readyz",
    ] {
        keep(path, run.get(path));
    }
    answers
}

/// The sinks got the real values: they were joined at delivery.
fn assert_delivered_with_secrets(sinks: &Sinks) {
    let sms = sinks.sms.requests();
    let last = sms.last().unwrap();
    assert_eq!(last.path, "/send?token=smsQUERY8k");
    assert_eq!(
        last.header("authorization"),
        Some(format!("Bearer {SMS_TOKEN}").as_str())
    );
    assert_eq!(last.header("x-api-key"), Some(SMS_KEY));
    assert_eq!(last.json().unwrap()["key"], SMS_KEY);
    assert_eq!(
        sinks.slack.requests()[0].path,
        "/services/T0/B0/slackSECRET5v"
    );
    let crm = &sinks.crm.requests()[0];
    assert_eq!(crm.path, "/leads?api_key=crmKEY44");
    assert_eq!(
        crm.header("authorization"),
        Some(format!("Token {CRM_TOKEN}").as_str())
    );
    assert_eq!(crm.json().unwrap()["token"], CRM_TOKEN);
    assert_eq!(sinks.smtp.messages()[0].from, "news-R2d7@shop.example");
}

fn no_env_value_leaves_the_daemon_by_any_route(engine: Engine) {
    let sinks = Sinks::start();
    sinks.sms.respond(500, "{}");
    sinks.crm.set_default(404, "{}");
    let env = sinks.env();
    let forbidden = forbidden(&env);
    let s = Scratch::on(engine, "secrets");
    s.write("main.nudge", &sinks.project());
    let allow = [
        "127.0.0.1".to_string(),
        format!("localhost:{}", sinks.smtp.port()),
        format!("localhost:{}", sinks.closed),
    ];
    let mut run = Run::start(&s, &env, &allow);
    let answers = drive(&run, &sinks);
    assert_delivered_with_secrets(&sinks);
    for (route, body) in &answers {
        assert_clean(route, body.as_bytes(), &forbidden);
    }
    for (name, bytes) in database_files(&s) {
        assert_clean(&format!("{name} (running)"), &bytes, &forbidden);
    }
    run.stop();
    for (name, bytes) in database_files(&s) {
        assert_clean(&name, &bytes, &forbidden);
    }
    assert_clean("stdout", &std::fs::read(&run.out).unwrap(), &forbidden);
    assert_clean("stderr", &std::fs::read(&run.err).unwrap(), &forbidden);
    for args in [
        &["stats"][..],
        &["contact", "show", "c-1"],
        &["outbox", "list"],
        &["outbox", "list", "--status", "dead"],
    ] {
        let out = nudge().args(args).args(["--db", &s.db()]).output().unwrap();
        assert!(out.status.success(), "nudge {args:?}: {out:?}");
        assert_clean(&format!("nudge {args:?}"), &out.stdout, &forbidden);
        assert_clean(&format!("nudge {args:?} (stderr)"), &out.stderr, &forbidden);
    }
    for (name, bytes) in database_files(&s) {
        assert_clean(&format!("{name} (after the commands)"), &bytes, &forbidden);
    }
}

#[test]
fn the_smtp_host_from_env_is_refused_on_loopback_unless_allowed() {
    let sinks = Sinks::start();
    let env = sinks.env();
    let s = Scratch::new("secrets-guard");
    s.write("main.nudge", &sinks.project());
    let run = Run::start(&s, &env, &["127.0.0.1".to_string()]);
    let signup = json!({"event": "signup", "contact": {"id": "c-1", "email": "ann@example.com"}});
    assert_eq!(run.post("/v1/events", &signup).status, 202);
    let dead = wait_until(WAIT, || {
        let rows = run.outbox("dead");
        let mail: Vec<Value> = rows
            .into_iter()
            .filter(|r| r["channel"] == "email" || r["channel"] == "bounce")
            .collect();
        (mail.len() == 2).then_some(mail)
    })
    .unwrap_or_else(|| panic!("the e-mails were not refused: {}", run.output()));
    for row in &dead {
        let err = row["last_error"].as_str().unwrap();
        let channel = row["channel"].as_str().unwrap();
        assert_eq!(
            err,
            format!(
                "channel `{channel}`: refused: `env(\"SMTP_HOST\")` resolves to a loopback address"
            ),
            "{row}"
        );
        assert_eq!(row["attempts"], 1, "a refusal is not retried: {row}");
    }
    assert!(
        sinks.smtp.messages().is_empty(),
        "the loopback sink was reached"
    );
}

/// The simulator: the same project and values; journeys and failures show
/// no value (the test's own statements are echoed as written, and skipped).
#[test]
fn nudge_test_shows_no_env_value_but_tests_see_the_real_request() {
    let sinks = Sinks::start();
    let env = sinks.env();
    let forbidden = forbidden(&env);
    let set: String = env
        .iter()
        .map(|(k, v)| format!("  env {k} = {}\n", serde_json::to_string(v).unwrap()))
        .collect();
    let tests = format!(
        "test \"every route\" {{\n{set}  contact {{ email = \"ann@example.com\", clickid = \"ck-1\" }}\n  \
         event signup\n  expect sent email\n  expect sent bounce\n  expect sent team\n  expect sent sms\n  \
         expect called crm where request.json.token == \"{CRM_TOKEN}\" and request.headers.Authorization == \"Token {CRM_TOKEN}\"\n  \
         postback partner {{ clickid = \"ck-1\", status = \"reg\", token = \"{PARTNER_TOKEN}\" }}\n  expect sent team\n}}\n\n\
         test \"a wrong expectation\" {{\n{set}  contact {{ email = \"ann@example.com\" }}\n  event signup\n  \
         expect called crm where request.json.id == \"nobody\"\n}}\n"
    );
    let s = Scratch::new("secrets-sim");
    s.write("main.nudge", &sinks.project());
    s.write("tests.nudge", &tests);
    let mut cmd = nudge();
    let out = cmd
        .args(["test", "--trace"])
        .arg(s.project())
        .env("NUDGE_LOG", "debug")
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("1 passed, 1 failed"), "{stdout}");
    assert!(
        stdout.contains("expected a call to `crm` matching the condition"),
        "{stdout}"
    );
    let source: Vec<&str> = tests
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let shown: String = stdout
        .lines()
        .filter(|l| {
            !l.split_once(" | ")
                .is_some_and(|(_, t)| source.contains(&t.trim()))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(shown.contains("call POST"), "{stdout}");
    assert_clean("nudge test stdout", shown.as_bytes(), &forbidden);
    assert_clean("nudge test stderr", &out.stderr, &forbidden);
}

on_both_engines!(no_env_value_leaves_the_daemon_by_any_route);
