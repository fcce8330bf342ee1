//! End-to-end tests of the daemon: the real `nudge run` binary as a child
//! process on a free loopback port, fed over its HTTP API, delivering to
//! real SMTP and HTTP sinks (`nudge-testkit`) on loopback.
//!
//! Each test writes a small project into a scratch directory with the sinks'
//! ports in it, starts the daemon on a fresh database, and checks what the
//! sinks receive and what the API shows. The tests that exercise storage run
//! on SQLite and on Postgres (`NAME::sqlite`, `NAME::postgres`); the HTTP
//! edge and start-up checks run once. Waits poll with short sleeps; the
//! longest single wait is the retry test's backoff (a few seconds).

#![allow(clippy::unwrap_used)]

mod daemon_support;

use daemon_support::projects::{
    REDIRECT, RETRY, SSRF, in_flow, local, main_project, main_project_on, signup, wait_enrollments,
};
use daemon_support::{
    Daemon, Engine, Options, Scratch, encode, fill, free_port, nudge, nudge_cmd, request,
    wait_until,
};
use nudge_testkit::{HttpSink, SmtpSink, on_both_engines};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn an_event_sends_mail_and_a_webhook_and_the_wait_fires(engine: Engine) {
    let (smtp, http) = (SmtpSink::start_blocking(), HttpSink::start_blocking());
    let s = main_project_on(engine, &smtp, &http);
    let d = Daemon::start(&s, &local());

    let mut ev = signup("c-1", "ann@example.com", "Ann");
    ev["data"] = json!({"source": "ads"});
    ev["id"] = json!("evt-1");
    let r = d.post_json("/v1/events", &ev);
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.json(), json!({"accepted": 1, "duplicates": 0}));

    let mails = smtp.wait_for_blocking(1, secs(5));
    let first_at = Instant::now();
    assert_eq!(mails.len(), 1, "{}", d.log());
    let m = &mails[0];
    assert_eq!(m.from, "hello@test.example");
    assert_eq!(m.to, vec!["ann@example.com".to_string()]);
    assert_eq!(m.header("Subject").as_deref(), Some("Welcome, Ann!"));
    assert!(m.header("From").unwrap().contains("hello@test.example"));
    assert!(m.header("To").unwrap().contains("ann@example.com"));
    let first_id = m.header("Message-ID").unwrap();
    assert!(first_id.contains('@'), "{first_id}");
    assert!(
        m.data.contains("Hi Ann, thanks for signing up."),
        "{}",
        m.data
    );

    let reqs = http.wait_for_blocking(1, secs(5));
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/crm/tasks");
    assert_eq!(
        reqs[0].json(),
        Some(json!({"contact": "c-1", "email": "ann@example.com", "note": "new signup Ann"}))
    );
    assert!(!reqs[0].header("Idempotency-Key").unwrap_or("").is_empty());

    // `wait 2 seconds`, then the follow-up
    let mails = smtp.wait_for_blocking(2, secs(6));
    assert_eq!(mails.len(), 2, "the wait never fired:\n{}", d.log());
    assert!(first_at.elapsed() >= Duration::from_millis(900));
    let m = &mails[1];
    assert_eq!(m.header("Subject").as_deref(), Some("Still there, Ann?"));
    assert_eq!(m.to, vec!["ann@example.com".to_string()]);
    assert_ne!(m.header("Message-ID").unwrap(), first_id);

    let c = wait_enrollments(&d, "c-1", |e| in_flow(e, "onboarding", "completed"));
    assert_eq!(c["id"], "c-1");
    assert_eq!(c["fields"]["first_name"], "Ann");
    let journey = c["journey"].as_array().unwrap();
    assert!(!journey.is_empty());
    assert!(
        journey
            .iter()
            .any(|j| j["flow"] == "onboarding" && j["step"] == "follow_up"),
        "{journey:?}"
    );
    let f = d.flow("onboarding");
    assert_eq!(
        (f["enrolled"].as_i64(), f["completed"].as_i64()),
        (Some(1), Some(1)),
        "{f}"
    );
    assert_eq!(f["active"], 0);
    assert_eq!(http.requests().len(), 1);
}

fn a_replayed_batch_is_counted_as_duplicates_and_sent_once(engine: Engine) {
    let (smtp, http) = (SmtpSink::start_blocking(), HttpSink::start_blocking());
    let s = main_project_on(engine, &smtp, &http);
    let d = Daemon::start(&s, &local());
    let ping = |i: i64| json!({"event": "ping", "contact": {"id": format!("b-{i}")}, "data": {"n": i}, "id": format!("e-{i}")});
    let batch = json!({"events": [ping(1), ping(2), ping(3)]});

    let r = d.post_json("/v1/events", &batch);
    assert_eq!(
        (r.status, r.json()),
        (202, json!({"accepted": 3, "duplicates": 0}))
    );
    assert_eq!(http.wait_for_blocking(3, secs(5)).len(), 3);

    let r = d.post_json("/v1/events", &batch);
    assert_eq!(
        (r.status, r.json()),
        (202, json!({"accepted": 0, "duplicates": 3}))
    );
    let r = d.post_json("/v1/events", &json!({"events": [ping(3), ping(4)]}));
    assert_eq!(
        (r.status, r.json()),
        (202, json!({"accepted": 1, "duplicates": 1}))
    );

    d.wait_outbox("delivered", 4, secs(5));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(d.outbox(None).len(), 4, "a duplicate made a message");
    let reqs = http.requests();
    let notes: Vec<String> = reqs
        .iter()
        .map(|r| r.json().unwrap()["note"].as_str().unwrap().to_string())
        .collect();
    let unique: BTreeSet<&String> = notes.iter().collect();
    assert_eq!(notes.len(), 4, "{notes:?}");
    assert_eq!(unique.len(), 4, "{notes:?}");
    let keys: BTreeSet<&str> = reqs
        .iter()
        .map(|r| r.header("Idempotency-Key").unwrap())
        .collect();
    assert_eq!(keys.len(), 4);
    assert_eq!(d.flow("pings")["enrolled"], 4);
    assert!(smtp.messages().is_empty());
}

fn postbacks_are_held_authorised_and_refused(engine: Engine) {
    let (smtp, http) = (SmtpSink::start_blocking(), HttpSink::start_blocking());
    let s = main_project_on(engine, &smtp, &http);
    let d = Daemon::start(&s, &local());

    // no contact has clickid ck-1 yet: held, then applied by the upsert
    let r = d.get("/postback/partner?clickid=ck-1&status=reg&token=pt");
    assert_eq!((r.status, r.json()), (202, json!({"status": "held"})));
    assert_eq!(d.contact("c-pb").status, 404);
    let r = d.send_json(
        "PUT",
        "/v1/contacts/c-pb",
        &json!({"fields": {"clickid": "ck-1"}}),
    );
    assert_eq!(
        (r.status, r.json()),
        (201, json!({"id": "c-pb", "created": true}))
    );
    wait_enrollments(&d, "c-pb", |e| in_flow(e, "registered", "active"));

    // a wrong or missing token applies nothing
    let r = d.send_json(
        "PUT",
        "/v1/contacts/c-2",
        &json!({"fields": {"clickid": "ck-2"}}),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let r = d.get("/postback/partner?clickid=ck-2&status=reg&token=wrong");
    assert_eq!(r.expect_error(401)["code"], "unauthorized");
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"nudge\""));
    let r = d.get("/postback/partner?clickid=ck-2&status=reg");
    r.expect_error(401);
    let r = d.call(
        "GET",
        "/postback/partner?clickid=ck-2&status=reg",
        &[("X-Nudge-Token", "wrong")],
        None,
    );
    r.expect_error(401);
    std::thread::sleep(Duration::from_millis(200));
    let c = d.contact("c-2").json();
    assert_eq!(c["enrollments"], json!([]), "{c}");
    assert_eq!(d.flow("registered")["enrolled"], 1);

    // the right token in the header
    let r = d.call(
        "GET",
        "/postback/partner?clickid=ck-2&status=reg",
        &[("X-Nudge-Token", "pt")],
        None,
    );
    assert_eq!((r.status, r.json()), (200, json!({"status": "applied"})));
    wait_enrollments(&d, "c-2", |e| in_flow(e, "registered", "active"));

    // an undeclared event is refused and kept for inspection
    let r = d.get(&format!(
        "/postback/partner?clickid=ck-2&status=bogus&token={}",
        encode("pt")
    ));
    assert_eq!(r.expect_error(422)["code"], "undeclared_event");
    let r = d.get("/v1/postbacks/rejected");
    assert_eq!(r.status, 200, "{r:?}");
    let rejected = r.json()["rejected"].as_array().unwrap().clone();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0]["source"], "partner");
    assert_eq!(rejected[0]["params"]["status"], "bogus");
    assert_eq!(rejected[0]["params"]["clickid"], "ck-2");
    assert!(
        rejected[0]["params"].get("token").is_none(),
        "the token was stored"
    );
    assert!(rejected[0]["reason"].as_str().unwrap().contains("bogus"));
    assert_eq!(d.flow("registered")["enrolled"], 2);
}

fn bad_input_gets_a_4xx_json_error_and_changes_nothing(engine: Engine) {
    let (smtp, http) = (SmtpSink::start_blocking(), HttpSink::start_blocking());
    let s = main_project_on(engine, &smtp, &http);
    let d = Daemon::start(&s, &local());
    let post = |body: &[u8]| {
        d.call(
            "POST",
            "/v1/events",
            &[("Content-Type", "application/json")],
            Some(body),
        )
    };
    let event = |v: Value| d.post_json("/v1/events", &v);

    assert_eq!(
        post(b"{\"event\": \"signup\",").expect_error(400)["code"],
        "malformed_json"
    );
    assert_eq!(post(b"").expect_error(400)["code"], "malformed_json");
    let e = event(json!({"event": "nope", "contact": {"id": "x-1"}})).expect_error(422);
    assert!(e["message"].as_str().unwrap().contains("`nope`"), "{e}");
    event(json!({"event": "contact_created", "contact": {"id": "x-1"}})).expect_error(422);
    // wrong field types (a text where an int is due, a number where a text is
    // due, objects, lists, booleans)
    for bad in [
        json!({"event": "ping", "contact": {"id": "x-1"}, "data": {"n": "many"}}),
        json!({"event": "ping", "contact": {"id": "x-1"}, "data": {"n": true}}),
        json!({"event": "ping", "contact": {"id": "x-1"}, "data": {"n": 1.5}}),
        // the JSON API is strict about kinds: no silent conversion
        json!({"event": "ping", "contact": {"id": "x-1"}, "data": {"n": "5"}}),
        json!({"event": "signup", "contact": {"id": "x-1"}, "data": {"source": 5}}),
        json!({"event": "signup", "contact": {"id": "x-1", "first_name": 5}}),
        json!({"event": "signup", "contact": {"id": "x-1"}, "data": {"source": {"a": 1}}}),
        json!({"event": "signup", "contact": {"id": "x-1", "first_name": ["Ann"]}}),
        json!({"event": "signup", "contact": {"id": "x-1"}, "data": "ads"}),
        json!({"event": "signup", "contact": {"id": 7}}),
        json!({"event": 7, "contact": {"id": "x-1"}}),
    ] {
        let e = event(bad.clone()).expect_error(422);
        assert_eq!(e["code"], "invalid", "{bad}");
    }
    event(json!({"event": "signup", "contact": {"id": "x-1"}, "data": {"nope": "a"}}))
        .expect_error(422);
    event(json!({"event": "signup", "contact": "x-1"})).expect_error(422);
    let e = event(signup("x-2", "not-an-email", "Bo")).expect_error(422);
    assert!(e["message"].as_str().unwrap().contains("email"), "{e}");
    event(json!({"event": "signup", "contact": {"id": "x-3", "phone": "call me maybe"}}))
        .expect_error(422);
    event(json!({"event": "signup", "contact": {"first_name": "Nobody"}})).expect_error(422);
    let e = d
        .send_json(
            "PUT",
            "/v1/contacts/x-4",
            &json!({"fields": {"email": "nope"}}),
        )
        .expect_error(422);
    assert!(e["message"].as_str().unwrap().contains("email"), "{e}");
    d.send_json("PUT", "/v1/contacts/x-4", &json!(["fields"]))
        .expect_error(422);

    let mut big = signup("x-5", "big@example.com", "Big");
    big["contact"]["first_name"] = json!("A".repeat(4 * 1024 * 1024 + 10));
    let r = d.post_json("/v1/events", &big);
    assert_eq!(r.expect_error(413)["code"], "too_large");

    let r = d.get("/postback/nope?clickid=a&status=reg&token=pt");
    assert_eq!(r.expect_error(404)["code"], "unknown_source");

    let batch = json!({"events": [
        signup("x-6", "six@example.com", "Six"),
        {"event": "signup", "contact": {"id": "x-7", "email": "bad"}},
        signup("x-8", "eight@example.com", "Eight"),
    ]});
    let e = d.post_json("/v1/events", &batch).expect_error(422);
    assert!(e["message"].as_str().unwrap().contains("event 1"), "{e}");
    event(json!({"events": []})).expect_error(422);
    event(json!({"events": {}})).expect_error(422);

    assert_eq!(d.get("/v1/nope").expect_error(404)["code"], "no_route");
    d.get("/nope").expect_error(404);
    let r = d.call("DELETE", "/v1/events", &[], None);
    assert_eq!(r.expect_error(405)["code"], "method_not_allowed");
    d.get("/v1/events").expect_error(405);
    d.get("/v1/outbox?status=lost").expect_error(422);
    d.call("POST", "/v1/outbox/abc/retry", &[], None)
        .expect_error(422);
    d.post_json("/v1/flows/nope/pause", &json!({}))
        .expect_error(404);

    // nothing was applied, nothing was sent
    for id in ["x-1", "x-2", "x-3", "x-4", "x-5", "x-6", "x-7", "x-8"] {
        assert_eq!(
            d.contact(id).expect_error(404)["code"],
            "unknown_contact",
            "{id}"
        );
    }
    for f in ["onboarding", "pings", "registered"] {
        assert_eq!(d.flow(f)["enrolled"], 0, "{f}");
    }
    assert!(d.outbox(None).is_empty());
    assert!(d.get("/v1/postbacks/rejected").json()["rejected"] == json!([]));
    assert!(smtp.messages().is_empty() && http.requests().is_empty());
    assert_eq!(d.get("/healthz").status, 200);
}

#[test]
fn the_api_token_guards_v1_but_not_health() {
    let (smtp, http) = (SmtpSink::start_blocking(), HttpSink::start_blocking());
    let s = main_project(&smtp, &http);
    let d = Daemon::start(&s, &local().env("NUDGE_API_TOKEN", "t").bearer("t"));
    let anon = |method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>| {
        request(d.addr, method, path, headers, body)
    };
    let ev = serde_json::to_vec(&signup("t-1", "t@example.com", "Tess")).unwrap();

    let r = anon("POST", "/v1/events", &[], Some(&ev));
    assert_eq!(r.expect_error(401)["code"], "unauthorized");
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"nudge\""));
    anon("GET", "/v1/flows", &[], None).expect_error(401);
    anon(
        "GET",
        "/v1/flows",
        &[("Authorization", "Bearer wrong")],
        None,
    )
    .expect_error(401);
    anon("GET", "/v1/flows", &[("Authorization", "t")], None).expect_error(401);
    anon(
        "POST",
        "/v1/events",
        &[("Authorization", "Bearer tt")],
        Some(&ev),
    )
    .expect_error(401);
    assert_eq!(anon("GET", "/healthz", &[], None).status, 200);

    assert_eq!(
        d.contact("t-1").expect_error(404)["code"],
        "unknown_contact"
    );
    let r = anon(
        "POST",
        "/v1/events",
        &[
            ("Authorization", "Bearer t"),
            ("Content-Type", "application/json"),
        ],
        Some(&ev),
    );
    assert_eq!(
        (r.status, r.json()),
        (202, json!({"accepted": 1, "duplicates": 0}))
    );
    assert_eq!(d.contact("t-1").status, 200);
    assert_eq!(d.get("/v1/flows").status, 200);
    assert_eq!(smtp.wait_for_blocking(1, secs(5)).len(), 1);
}

fn outgoing_requests_to_loopback_are_refused_unless_allowed(engine: Engine) {
    let (target, allowed) = (HttpSink::start_blocking(), HttpSink::start_blocking());
    let direct = Scratch::on(engine, "ssrf");
    direct.write(
        "main.nudge",
        &fill(SSRF, &[("PORT", target.port().to_string())]),
    );
    let via = Scratch::on(engine, "redirect");
    via.write(
        "main.nudge",
        &fill(REDIRECT, &[("PORT", allowed.port().to_string())]),
    );
    allowed.redirect(format!("{}/landed", target.url()));

    let d1 = Daemon::start(&direct, &Options::default());
    let only = format!("127.0.0.1:{}", allowed.port());
    let d2 = Daemon::start(&via, &Options::default().arg("--allow-host").arg(only));
    let go = json!({"event": "go", "contact": {"id": "s-1"}});
    assert_eq!(d1.post_json("/v1/events", &go).status, 202);
    assert_eq!(d2.post_json("/v1/events", &go).status, 202);

    let dead = d1.wait_outbox("dead", 6, secs(5));
    for row in &dead {
        let err = row["last_error"].as_str().unwrap_or("");
        assert!(err.starts_with("refused"), "not a refusal: {row}");
        assert!(
            err.contains("loopback"),
            "the refusal does not say why: {row}"
        );
        assert!(
            !err.contains("/v6") && !err.contains("/hook"),
            "a URL leaked: {err}"
        );
        assert_eq!(row["attempts"], 1, "a refusal is retried: {row}");
    }
    let dead = d2.wait_outbox("dead", 1, secs(5));
    let err = dead[0]["last_error"].as_str().unwrap_or("");
    assert!(err.contains("refused"), "{}", dead[0]);
    let hops = allowed.requests();
    assert_eq!(hops.len(), 1, "the allowed host was not asked");
    assert_eq!(hops[0].path, "/start");
    assert!(
        target.requests().is_empty(),
        "the loopback sink was reached: {:?}",
        target.requests()
    );
}

fn failed_deliveries_are_retried_and_dead_letters_can_be_requeued(engine: Engine) {
    let (flaky, broken) = (HttpSink::start_blocking(), HttpSink::start_blocking());
    let s = Scratch::on(engine, "retry");
    let ports = [
        ("A", flaky.port().to_string()),
        ("B", broken.port().to_string()),
    ];
    s.write("main.nudge", &fill(RETRY, &ports));
    flaky.respond(500, "{}");
    flaky.respond(500, "{}");
    broken.respond(404, "{}");
    let opts = Options::default()
        .arg("--allow-host")
        .arg("127.0.0.1")
        .arg("--retry-base")
        .arg("1");
    let d = Daemon::start(&s, &opts);
    let ev = |name: &str, id: &str| json!({"event": name, "contact": {"id": id}});
    assert_eq!(
        d.post_json("/v1/events", &ev("retry_me", "r-1")).status,
        202
    );
    assert_eq!(d.post_json("/v1/events", &ev("fail_me", "f-1")).status, 202);

    // 404: a dead letter at once, retried by hand
    let dead = d.wait_outbox("dead", 1, secs(5));
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["attempts"], 1);
    assert!(
        dead[0]["last_error"].as_str().unwrap().contains("404"),
        "{}",
        dead[0]
    );
    assert_eq!(broken.requests().len(), 1);
    let id = dead[0]["id"].as_i64().unwrap();
    let r = d.call("POST", &format!("/v1/outbox/{id}/retry"), &[], None);
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"id": id, "status": "pending"}))
    );
    let again = broken.wait_for_blocking(2, secs(5));
    assert_eq!(again.len(), 2, "the requeued row was not sent");
    assert_eq!(
        again[0].header("Idempotency-Key"),
        again[1].header("Idempotency-Key")
    );
    wait_until(secs(5), || {
        let rows = d.outbox(Some("delivered"));
        rows.iter().any(|r| r["id"] == id).then_some(())
    })
    .expect("the requeued row is not recorded as delivered");
    let r = d.call("POST", &format!("/v1/outbox/{id}/retry"), &[], None);
    assert_eq!(r.expect_error(409)["code"], "not_dead");
    let r = d.call("POST", "/v1/outbox/999999/retry", &[], None);
    assert_eq!(r.expect_error(404)["code"], "unknown_outbox_row");

    // 500, 500, 200: delivered on the third attempt with one key
    let tries = flaky.wait_for_blocking(3, secs(12));
    assert_eq!(tries.len(), 3, "not retried:\n{}", d.log());
    let key = tries[0].header("Idempotency-Key").unwrap();
    assert!(!key.is_empty());
    for t in &tries {
        assert_eq!(t.header("Idempotency-Key"), Some(key));
        assert_eq!(t.body, tries[0].body);
    }
    let done = d.wait_outbox("delivered", 2, secs(5));
    let row = done.iter().find(|r| r["channel"] == "crm").unwrap();
    assert_eq!(row["attempts"], 3, "{row}");
    assert_eq!(row["idempotency_key"], key);
    assert!(done.iter().any(|r| r["channel"] == "hook" && r["id"] == id));
    assert!(d.outbox(Some("dead")).is_empty());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(flaky.requests().len(), 3);
    assert_eq!(broken.requests().len(), 2);
}

#[test]
fn a_missing_env_variable_stops_the_start_naming_it() {
    let (smtp, http) = (SmtpSink::start_blocking(), HttpSink::start_blocking());
    let s = main_project(&smtp, &http);
    let port = free_port();
    let mut child = nudge()
        .arg("run")
        .arg(s.project())
        .args(["--db", &s.db(), "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_until(secs(10), || child.try_wait().unwrap());
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("`nudge run` kept running without PARTNER_TOKEN");
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("PARTNER_TOKEN"), "{stderr}");
    assert!(request_fails(port), "it listened anyway");
}

fn request_fails(port: u16) -> bool {
    daemon_support::try_request(([127, 0, 0, 1], port).into(), "GET", "/healthz", &[], None)
        .is_err()
}

fn the_operating_commands_share_the_database_with_the_daemon(engine: Engine) {
    let (smtp, http) = (SmtpSink::start_blocking(), HttpSink::start_blocking());
    http.set_default(404, "{}");
    let s = main_project_on(engine, &smtp, &http);
    let d = Daemon::start(&s, &local());
    let db = s.db();
    let env = [("PARTNER_TOKEN", "pt")];
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--db", &db]);
        let out = nudge_cmd(&all, &env);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{args:?} failed: {err}");
        text
    };
    assert_eq!(
        d.post_json("/v1/events", &signup("c-1", "one@example.com", "One"))
            .status,
        202
    );
    assert_eq!(smtp.wait_for_blocking(1, secs(5)).len(), 1);
    d.wait_outbox("dead", 1, secs(5));

    let stats = run(&["stats"]);
    assert!(stats.contains("contacts  1"), "{stats}");
    assert!(stats.contains("1 dead"), "{stats}");
    assert!(stats.contains("flow onboarding"), "{stats}");

    let shown: Value = serde_json::from_str(&run(&["contact", "show", "c-1"])).unwrap();
    assert_eq!(shown["id"], "c-1");
    assert_eq!(shown["fields"]["email"], "one@example.com");
    assert_eq!(shown["enrollments"][0]["flow"], "onboarding");

    let dead = run(&["outbox", "list", "--status", "dead"]);
    let rows: Vec<Value> = dead
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{dead}");
    assert_eq!(
        (rows[0]["status"].as_str(), rows[0]["channel"].as_str()),
        (Some("dead"), Some("crm"))
    );

    // an event from the command line is delivered by the running daemon
    let sent = run(&[
        "send-event",
        "signup",
        "--contact",
        r#"{"id": "c-cli", "email": "cli@example.com", "first_name": "Cli"}"#,
    ]);
    assert!(sent.contains("applied to `c-cli`"), "{sent}");
    let mails = smtp.wait_for_blocking(2, secs(5));
    assert!(
        mails.iter().any(|m| m.to == ["cli@example.com"]),
        "the daemon did not deliver the command's message:\n{}",
        d.log()
    );
    assert_eq!(d.contact("c-cli").status, 200);

    assert_eq!(d.flow("onboarding")["status"], "active");
    let paused = run(&["flow", "pause", "onboarding"]);
    assert!(paused.contains("paused"), "{paused}");
    assert_eq!(d.flow("onboarding")["status"], "paused");
    assert_eq!(d.flow("pings")["status"], "active");
}

fn sigterm_stops_cleanly_and_keeps_every_acknowledged_event(engine: Engine) {
    let (smtp, http) = (SmtpSink::start_blocking(), HttpSink::start_blocking());
    let s = main_project_on(engine, &smtp, &http);
    let mut d = Daemon::start(&s, &local());
    let addr = d.addr;

    // a client keeps sending until the daemon goes away
    let client = std::thread::spawn(move || {
        let mut acked = Vec::new();
        for i in 0..2000 {
            let id = format!("g-{i}");
            let body = serde_json::to_vec(
                &json!({"event": "ping", "contact": {"id": id}, "data": {"n": i}, "id": format!("k-{i}")}),
            )
            .unwrap();
            let r = daemon_support::try_request(
                addr,
                "POST",
                "/v1/events",
                &[("Content-Type", "application/json")],
                Some(&body),
            );
            match r {
                Ok(r) if r.status == 202 => acked.push(id),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        acked
    });
    let before = wait_until(secs(5), || {
        let n = d.flow("pings")["enrolled"].as_i64().unwrap_or(0);
        (n >= 5).then_some(n)
    });
    assert!(before.is_some(), "no events went in:\n{}", d.log());
    let status = d.terminate(secs(5));
    assert!(status.success(), "exit {status}:\n{}", d.log());
    let acked = client.join().unwrap();
    assert!(acked.len() >= 5, "{}", acked.len());

    let d = Daemon::start(&s, &local());
    for id in &acked {
        let r = d.contact(id);
        assert_eq!(r.status, 200, "acknowledged `{id}` was lost");
        assert!(
            in_flow(
                r.json()["enrollments"].as_array().unwrap(),
                "pings",
                "completed"
            ),
            "{id}"
        );
    }
    let enrolled = d.flow("pings")["enrolled"].as_i64().unwrap();
    assert!(
        enrolled >= acked.len() as i64,
        "{enrolled} < {}",
        acked.len()
    );
    // the idempotency keys survived too
    let again = json!({"event": "ping", "contact": {"id": "g-0"}, "data": {"n": 0}, "id": "k-0"});
    let r = d.post_json("/v1/events", &again);
    assert_eq!(
        (r.status, r.json()),
        (202, json!({"accepted": 0, "duplicates": 1}))
    );
}

on_both_engines!(
    an_event_sends_mail_and_a_webhook_and_the_wait_fires,
    a_replayed_batch_is_counted_as_duplicates_and_sent_once,
    postbacks_are_held_authorised_and_refused,
    bad_input_gets_a_4xx_json_error_and_changes_nothing,
    outgoing_requests_to_loopback_are_refused_unless_allowed,
    failed_deliveries_are_retried_and_dead_letters_can_be_requeued,
    the_operating_commands_share_the_database_with_the_daemon,
    sigterm_stops_cleanly_and_keeps_every_acknowledged_event,
);
