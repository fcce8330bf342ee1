//! The outbox worker in a running daemon against loopback HTTP sinks: a
//! throttled channel holds back no other channel and still keeps its rate;
//! a channel whose endpoint hangs takes its share of the pool and no more;
//! a busy channel defers none of its own rows;
//! a delivery longer than the lease renews it;
//! a `call … as NAME` whose response never comes resumes at its deadline
//! with status 0; and a call claimed by a worker that crashed before its
//! response committed goes out again once the lease ends, its response
//! landing in the enrollment (the row settled in the same commit).

#![allow(clippy::unwrap_used)]

mod daemon_kit;
use daemon_kit::post;
mod vm_support;

use daemon_kit::Engine;
use nudge_testkit::on_both_engines;

use nudge_runtime::compiler::value::{Value, parse_time};
use nudge_runtime::daemon::{self, Config, ManualClock, SystemClock};
use nudge_runtime::store::{self, OutboxStatus, Store};
use nudge_testkit::HttpSink;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn t(s: &str) -> i64 {
    parse_time(s).unwrap()
}

/// The contact's state, once `done` holds for it (5 s at most).
async fn until(
    store: &Arc<dyn Store>,
    id: &str,
    done: impl Fn(&nudge_runtime::engine::ContactState) -> bool,
) -> nudge_runtime::engine::ContactState {
    for _ in 0..250 {
        let st = store.load_contacts(&[id.to_string()]).await.unwrap();
        if let Some(v) = st.first()
            && done(&v.state)
        {
            return v.state.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("contact `{id}` never reached the expected state");
}

/// A daemon on a fresh database in `name`: a tick of 20 ms, loopback
/// allowed, then `tune` on its config.
async fn start(
    engine: Engine,
    name: &str,
    bundle: nudge_runtime::compiler::bundle::Bundle,
    clock: Arc<dyn daemon::Clock>,
    tune: impl FnOnce(&mut Config),
) -> (daemon_kit::Scratch, Arc<dyn Store>, daemon::Running) {
    let dir = daemon_kit::Scratch::on(engine, name);
    let store = store::open(&dir.db_url()).await.unwrap();
    let mut config = Config::new("127.0.0.1:0".parse().unwrap());
    config.tick = Duration::from_millis(20);
    config.allow_hosts = vec!["127.0.0.1".into()];
    tune(&mut config);
    let running = daemon::start(store.clone(), bundle, clock, config)
        .await
        .unwrap();
    (dir, store, running)
}

/// The unthrottled `fast` http channel posting to `url`/fast.
fn fast_channel(url: &str) -> String {
    format!(
        "channel fast: http {{\n  method = \"POST\"\n  url = \"{url}/fast\"\n  \
         body = json {{ text: message }}\n}}"
    )
}

/// When each request reached the sink, from `start`, until `n` came.
async fn arrivals(sink: &HttpSink, n: usize, start: Instant, limit: Duration) -> Vec<Duration> {
    let mut at = Vec::new();
    while at.len() < n && start.elapsed() < limit {
        let seen = sink.requests().len();
        while at.len() < seen {
            at.push(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    at
}

/// Six rows of a `rate = 1 per second` channel are due first; the rows of
/// an unthrottled channel that come after them are all delivered at once,
/// and the throttled ones go one a second.
async fn a_throttled_channel_holds_back_no_other(engine: Engine) {
    let (slow, fast) = (HttpSink::start().await, HttpSink::start().await);
    let bundle = vm_support::bundle(&format!(
        r#"
contact {{ email: email? unique }}
event a {{}}
event b {{}}
channel slow: http {{
  method = "POST"
  url = "{}/slow"
  body = json {{ text: message }}
  rate = 1 per second
}}
{fast}
flow fa {{
  when a
  step s {{ send slow "throttled" }}
}}
flow fb {{
  when b
  step s {{ send fast "free" }}
}}
"#,
        slow.url(),
        fast = fast_channel(&fast.url())
    ));
    let (_dir, store, running) =
        start(engine, "outbox-fair", bundle, Arc::new(SystemClock), |_| {}).await;
    let start = Instant::now();
    for i in 0..6 {
        let ev = json!({"event": "a", "contact": {"id": format!("s{i}")}});
        assert_eq!(post(running.addr, "/v1/events", ev).await, 202);
    }
    slow.wait_for(1, Duration::from_secs(5)).await;
    let fast_start = Instant::now();
    for i in 0..8 {
        let ev = json!({"event": "b", "contact": {"id": format!("f{i}")}});
        assert_eq!(post(running.addr, "/v1/events", ev).await, 202);
    }
    let got = fast.wait_for(8, Duration::from_secs(5)).await;
    let took = fast_start.elapsed();
    assert_eq!(got.len(), 8);
    assert!(
        took < Duration::from_millis(1500),
        "the unthrottled channel waited {took:?} behind the throttled one"
    );
    assert!(
        slow.requests().len() < 6,
        "the throttled rows were not all sent by then"
    );
    let at = arrivals(&slow, 6, start, Duration::from_secs(12)).await;
    assert_eq!(at.len(), 6, "every throttled row goes out: {at:?}");
    // the first delivery also opens the connection: its arrival may lag
    // its slot, so the rate is read from the second arrival on
    assert!(
        at[5] - at[1] >= Duration::from_millis(3800),
        "rows at 1 per second arrive a second apart: {at:?}"
    );
    let metrics = daemon_kit::metrics(running.addr).await;
    assert!(
        metrics.contains("nudge_deliveries_total{channel=\"slow\",outcome=\"deferred\"}"),
        "deferrals are counted:\n{metrics}"
    );
    let rows = store.outbox_list(Some(OutboxStatus::Delivered), 100).await;
    let rows = rows.unwrap();
    assert_eq!(rows.len(), 14);
    assert!(
        rows.iter().all(|r| r.attempts == 1),
        "a deferred row counts no attempt: {rows:?}"
    );
    running.shutdown().await;
}

/// A loopback server that accepts connections and never answers: every
/// delivery to it lasts its channel's timeout. Gives its port and the
/// number of connections accepted so far.
async fn hanging_server() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(sock);
        }
    });
    (port, accepted)
}

/// More rows of a channel whose endpoint hangs than the worker has slots:
/// the channel takes its share of the pool and no more, and the rows of
/// another channel committed after them go out at once, long before the
/// hanging deliveries time out.
async fn a_slow_channel_takes_its_share_of_the_pool_and_no_more(engine: Engine) {
    let (port, accepted) = hanging_server().await;
    let fast = HttpSink::start().await;
    let bundle = vm_support::bundle(&format!(
        r#"
event a {{}}
event b {{}}
channel slow: http {{
  method = "POST"
  url = "http://127.0.0.1:{port}/slow"
  body = json {{ text: message }}
  timeout = 4 seconds
}}
{fast}
flow fa {{
  when a
  step s {{ send slow "hangs" }}
}}
flow fb {{
  when b
  step s {{ send fast "free" }}
}}
"#,
        fast = fast_channel(&fast.url())
    ));
    let (_dir, _store, running) = start(
        engine,
        "outbox-share",
        bundle,
        Arc::new(SystemClock),
        |_| {},
    )
    .await;
    let events: Vec<serde_json::Value> = (0..300)
        .map(|i| json!({"event": "a", "contact": {"id": format!("s{i}")}}))
        .collect();
    assert_eq!(
        post(running.addr, "/v1/events", json!({"events": events})).await,
        202
    );
    let share = daemon::outbox::SHARE;
    let start = Instant::now();
    while accepted.load(std::sync::atomic::Ordering::SeqCst) < share
        && start.elapsed() < Duration::from_secs(3)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        share,
        "the hanging channel fills its share"
    );
    let fast_start = Instant::now();
    for i in 0..5 {
        let ev = json!({"event": "b", "contact": {"id": format!("f{i}")}});
        assert_eq!(post(running.addr, "/v1/events", ev).await, 202);
    }
    let got = fast.wait_for(5, Duration::from_secs(5)).await;
    let took = fast_start.elapsed();
    assert_eq!(got.len(), 5);
    assert!(
        took < Duration::from_millis(1500),
        "the other channel waited {took:?} behind the hanging one"
    );
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        share,
        "no more than its share while its deliveries hang"
    );
    running.shutdown().await;
}

/// One fast channel with many rows due at once goes at the pool's pace:
/// its share never defers one of its own rows. The clock stands still, so
/// a row deferred even a second would never come back.
async fn a_busy_channel_defers_none_of_its_own_rows(engine: Engine) {
    let sink = HttpSink::start().await;
    let bundle = vm_support::bundle(&format!(
        r#"
event a {{}}
{fast}
flow fa {{
  when a
  step s {{ send fast "hello" }}
}}
"#,
        fast = fast_channel(&sink.url())
    ));
    let clock = Arc::new(ManualClock::new(t("2027-01-15T09:00:00Z")));
    let (_dir, store, running) = start(engine, "outbox-busy", bundle, clock, |_| {}).await;
    let n = 3 * daemon::outbox::BATCH;
    let events: Vec<serde_json::Value> = (0..n)
        .map(|i| json!({"event": "a", "contact": {"id": format!("c{i}")}}))
        .collect();
    assert_eq!(
        post(running.addr, "/v1/events", json!({"events": events})).await,
        202
    );
    let got = sink.wait_for(n, Duration::from_secs(20)).await;
    assert_eq!(got.len(), n, "every row goes out while the clock stands");
    let start = Instant::now();
    loop {
        let t = store.totals(0).await.unwrap();
        if t.outbox_delivered == n as i64 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{} of {n} recorded as delivered",
            t.outbox_delivered
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pending = store
        .outbox_list(Some(OutboxStatus::Pending), n)
        .await
        .unwrap();
    assert!(pending.is_empty(), "{} rows still pending", pending.len());
    running.shutdown().await;
}

/// A delivery that outlasts the lease keeps its row: the worker renews the
/// lease of the rows in flight, so no other daemon claims (and sends) it.
async fn a_long_delivery_renews_its_lease(engine: Engine) {
    let (port, accepted) = hanging_server().await;
    let bundle = vm_support::bundle(&format!(
        r#"
event a {{}}
channel slow: http {{
  method = "POST"
  url = "http://127.0.0.1:{port}/slow"
  body = json {{ text: message }}
  timeout = 7 seconds
}}
flow fa {{
  when a
  step s {{ send slow "hangs" }}
}}
"#
    ));
    let (_dir, store, running) =
        start(engine, "outbox-renew", bundle, Arc::new(SystemClock), |c| {
            c.outbox_lease = Duration::from_secs(3);
        })
        .await;
    let ev = json!({"event": "a", "contact": {"id": "s"}});
    assert_eq!(post(running.addr, "/v1/events", ev).await, 202);
    let start = Instant::now();
    while accepted.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(start.elapsed() < Duration::from_secs(3), "never sent");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // this worker claims nothing more (so only the renewal can move the
    // lease), and another daemon on the same database looks for due rows
    // all along (twice the lease): the row in flight is never due for it
    running.hold_deliveries(true);
    while start.elapsed() < Duration::from_secs(6) {
        let now = SystemClock.now_secs();
        let taken = store.claim_outbox(now, now + 100, 10).await.unwrap();
        assert!(
            taken.is_empty(),
            "the lease ran out under the delivery: {taken:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the row was sent again while its delivery ran"
    );
    running.shutdown().await;
}

const CALL_PROJECT: &str = r#"
contact { email: email? unique  crm_id: text?  score: int = 0 }
event go {}
channel crm: http {
  method = "POST"
  url = "URL/leads"
  body = json { email: contact.email }
  timeout = 5 seconds
}
flow f {
  when go
  step s {
    call crm as lead
    set contact.score = lead.status + 1
    if lead.status == 201 {
      set contact.crm_id = lead.json.id
    }
  }
}
"#;

fn call_bundle(sink: &HttpSink) -> nudge_runtime::compiler::bundle::Bundle {
    vm_support::bundle(&CALL_PROJECT.replace("URL", &sink.url()))
}

/// LANGUAGE.md §10: a response that never comes (the endpoint keeps
/// failing and the row is retried) resumes the wait at the channel's
/// timeout plus the lease, with status 0; the response that comes later
/// changes nothing.
async fn a_call_wait_resumes_with_status_0_at_its_deadline(engine: Engine) {
    let sink = HttpSink::start().await;
    sink.set_default(503, "busy");
    let dir = daemon_kit::Scratch::on(engine, "outbox-deadline");
    let t0 = t("2026-01-01T00:00:00Z");
    let clock = ManualClock::new(t0);
    let (running, store) = daemon_kit::start_with(&dir.db_url(), call_bundle(&sink), &clock, |c| {
        c.allow_hosts = vec!["127.0.0.1".into()];
        c.outbox_lease = Duration::from_secs(60);
        c.retry.max_attempts = 100;
    })
    .await;
    let ev = json!({"event": "go", "contact": {"id": "c", "email": "c@x.example"}});
    assert_eq!(post(running.addr, "/v1/events", ev).await, 202);
    sink.wait_for(1, Duration::from_secs(5)).await;
    let st = until(&store, "c", |s| s.enrollments.len() == 1).await;
    let wait = st.enrollments[0].wait.clone().unwrap();
    assert_eq!(wait.call.as_deref(), Some("lead"));
    assert_eq!(
        wait.timers.iter().map(|x| x.0).collect::<Vec<_>>(),
        [t0 + 5 + 60],
        "the deadline: the channel's timeout plus the lease"
    );
    daemon_kit::advance(&store, &clock, t0 + 64).await;
    assert_eq!(
        store.load_contacts(&["c".into()]).await.unwrap()[0]
            .state
            .enrollments[0]
            .status
            .name(),
        "active",
        "still waiting before the deadline"
    );
    daemon_kit::advance(&store, &clock, t0 + 65).await;
    let st = until(&store, "c", |s| {
        s.enrollments[0].status.name() == "completed"
    })
    .await;
    assert_eq!(st.contact.get("score"), Value::Int(1), "status 0, plus one");
    let journey: Vec<String> = store
        .journal("c", 100)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.what)
        .collect();
    assert!(
        journey.contains(&"call `lead` got no answer in time: status 0".to_string()),
        "{journey:?}"
    );
    // the endpoint recovers; the retried row is delivered, and its late
    // response finds no wait
    sink.set_default(201, r#"{"id": "L-9"}"#);
    clock.set(t0 + 10_000);
    for _ in 0..250 {
        let rows = store.outbox_list(Some(OutboxStatus::Delivered), 10).await;
        if rows.unwrap().len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rows = store.outbox_list(Some(OutboxStatus::Delivered), 10).await;
    assert_eq!(rows.unwrap().len(), 1, "the call row is delivered at last");
    let st = &store.load_contacts(&["c".into()]).await.unwrap()[0].state;
    assert_eq!(st.contact.get("score"), Value::Int(1));
    assert_eq!(st.contact.get("crm_id"), Value::Null);
    running.shutdown().await;
}

/// A worker claimed the call row, sent it and crashed before the response
/// committed (the row stays pending under its lease, nothing recorded).
/// The next daemon leaves the row alone until the lease ends, then sends it
/// again with the same idempotency key; the response lands in the
/// enrollment and settles the row in the same commit. The crashed
/// worker's late ack changes nothing.
async fn a_call_response_lost_in_a_crash_comes_back_after_the_lease(engine: Engine) {
    let sink = HttpSink::start().await;
    sink.set_default(201, r#"{"id": "L-7"}"#);
    let dir = daemon_kit::Scratch::on(engine, "outbox-crash-call");
    let t0 = t("2026-01-01T00:00:00Z");
    let clock = ManualClock::new(t0);
    let set = |c: &mut Config| {
        c.allow_hosts = vec!["127.0.0.1".into()];
        c.outbox_lease = Duration::from_secs(60);
    };
    let (first, store) =
        daemon_kit::start_with(&dir.db_url(), call_bundle(&sink), &clock, set).await;
    first.hold_deliveries(true);
    let ev = json!({"event": "go", "contact": {"id": "c", "email": "c@x.example"}});
    assert_eq!(post(first.addr, "/v1/events", ev).await, 202);
    first.shutdown().await;
    // the crashed worker's claim: sent, never recorded
    let claimed = store.claim_outbox(t0, t0 + 60, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let crashed = claimed[0].fence();
    drop(store);

    let (second, store) =
        daemon_kit::start_with(&dir.db_url(), call_bundle(&sink), &clock, set).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sink.requests().is_empty(), "the lease still holds the row");
    clock.set(t0 + 60);
    let got = sink.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].header("idempotency-key"),
        Some(claimed[0].idem_key.as_str())
    );
    let st = until(&store, "c", |s| {
        s.enrollments[0].status.name() == "completed"
    })
    .await;
    assert_eq!(st.contact.get("crm_id"), Value::text("L-7"));
    assert_eq!(st.contact.get("score"), Value::Int(202));
    let rows = store.outbox_list(None, 10).await.unwrap();
    assert_eq!(
        (rows[0].status, rows[0].attempts),
        (OutboxStatus::Delivered, 1)
    );
    assert!(
        !store.outbox_delivered(crashed).await.unwrap(),
        "the crashed worker's ack is fenced out"
    );
    second.shutdown().await;
}

on_both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async a_throttled_channel_holds_back_no_other,
    a_slow_channel_takes_its_share_of_the_pool_and_no_more,
    a_busy_channel_defers_none_of_its_own_rows,
    a_long_delivery_renews_its_lease,
    a_call_wait_resumes_with_status_0_at_its_deadline,
    a_call_response_lost_in_a_crash_comes_back_after_the_lease,
);
