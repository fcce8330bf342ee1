//! The daemon's scheduler and outbox with time under test control: schedules
//! in each contact's zone, time triggers re-planned when their field
//! changes, paused flows whose timers wait for the resume, send windows
//! holding messages, and call responses going back into their enrollment;
//! time triggers already past when planned (LANGUAGE.md A3): missed and
//! counted beyond `late`, fired within it, and a trigger due while the
//! daemon was down fired when it is back; a contact still due after the
//! last timer round at one instant is counted on `/metrics`.

#![allow(clippy::unwrap_used)]

mod daemon_kit;
use daemon_kit::post;
mod vm_support;

use daemon_kit::Engine;
use nudge_testkit::on_both_engines;

use nudge_runtime::compiler::value::{Value, format_time, parse_time};
use nudge_runtime::daemon::ManualClock;
use nudge_runtime::store::Store;
use serde_json::json;
use std::sync::Arc;

async fn put(addr: std::net::SocketAddr, id: &str, fields: serde_json::Value) {
    let res = reqwest::Client::new()
        .put(format!("http://{addr}/v1/contacts/{id}"))
        .json(&json!({ "fields": fields }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
}

/// (flow, step, status, entered_at) of a contact's enrollments.
async fn enrollments(store: &Arc<dyn Store>, id: &str) -> Vec<(String, String, String, String)> {
    store
        .load_contacts(&[id.to_string()])
        .await
        .unwrap()
        .iter()
        .flat_map(|v| v.state.enrollments.clone())
        .map(|e| {
            (
                e.flow,
                e.step,
                e.status.name().to_string(),
                format_time(e.entered_at),
            )
        })
        .collect()
}

/// When the journey says the contact entered a flow (earlier enrollments
/// are folded out of the state, `compact.rs`; the journey keeps them).
async fn entries(store: &Arc<dyn Store>, id: &str) -> Vec<String> {
    store
        .journal(id, 1000)
        .await
        .unwrap()
        .iter()
        .filter(|j| j.what == "entered the flow")
        .map(|j| format_time(j.at))
        .collect()
}

fn t(s: &str) -> i64 {
    parse_time(s).unwrap()
}

async fn a_daily_schedule_enrolls_each_contact_at_its_local_time(engine: Engine) {
    let bundle = vm_support::bundle(
        r#"
contact { email: email? unique }
flow digest {
  when every day at 09:00 local
  reenter after_exit
  step s { log "digest" }
}
"#,
    );
    let dir = daemon_kit::Scratch::on(engine, "schedule");
    let clock = ManualClock::new(t("2026-03-01T00:00:00Z"));
    let (running, store) =
        daemon_kit::start(&dir.db_url(), bundle, &clock, Default::default()).await;
    put(running.addr, "rome", json!({"timezone": "Europe/Rome"})).await;
    put(running.addr, "ny", json!({"timezone": "America/New_York"})).await;
    daemon_kit::advance(&store, &clock, t("2026-03-02T23:00:00Z")).await;
    assert_eq!(
        entries(&store, "rome").await,
        ["2026-03-01T08:00:00Z", "2026-03-02T08:00:00Z"]
    );
    assert_eq!(
        entries(&store, "ny").await,
        ["2026-03-01T14:00:00Z", "2026-03-02T14:00:00Z"]
    );
    running.shutdown().await;
}

async fn a_time_trigger_follows_its_field_when_it_changes(engine: Engine) {
    let bundle = vm_support::bundle(
        r#"
contact { email: email? unique  paid_at: time? }
flow renew {
  when contact.paid_at + 30 days
  step s { log "renewal due" }
}
"#,
    );
    let dir = daemon_kit::Scratch::on(engine, "trigger");
    let clock = ManualClock::new(t("2026-01-01T00:00:00Z"));
    let (running, store) =
        daemon_kit::start(&dir.db_url(), bundle, &clock, Default::default()).await;
    put(
        running.addr,
        "c",
        json!({"paid_at": "2026-01-02T00:00:00Z"}),
    )
    .await;
    daemon_kit::advance(&store, &clock, t("2026-01-20T00:00:00Z")).await;
    // paid again before the trigger: it moves to the new date
    put(
        running.addr,
        "c",
        json!({"paid_at": "2026-01-20T00:00:00Z"}),
    )
    .await;
    daemon_kit::advance(&store, &clock, t("2026-02-10T00:00:00Z")).await;
    assert!(
        enrollments(&store, "c").await.is_empty(),
        "not at the old date"
    );
    daemon_kit::advance(&store, &clock, t("2026-02-20T00:00:00Z")).await;
    let e = enrollments(&store, "c").await;
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].3, "2026-02-19T00:00:00Z");
    running.shutdown().await;
}

async fn a_paused_flow_keeps_its_timers_until_it_resumes(engine: Engine) {
    let bundle = vm_support::bundle(
        r#"
contact { email: email? unique }
event go {}
flow f {
  when go
  step one { wait 1 hour }
  step two { log "done" }
}
"#,
    );
    let dir = daemon_kit::Scratch::on(engine, "pause");
    let clock = ManualClock::new(t("2026-01-01T00:00:00Z"));
    let (running, store) =
        daemon_kit::start(&dir.db_url(), bundle, &clock, Default::default()).await;
    let go = json!({"event": "go", "contact": {"id": "c"}});
    assert_eq!(post(running.addr, "/v1/events", go.clone()).await, 202);
    assert_eq!(
        post(running.addr, "/v1/flows/f/pause", json!({})).await,
        200
    );
    daemon_kit::advance(&store, &clock, t("2026-01-01T05:00:00Z")).await;
    assert_eq!(enrollments(&store, "c").await[0].1, "one");
    assert_eq!(
        store.next_wake().await.unwrap(),
        None,
        "woken for a paused flow's timer, the contact waits without a wake time"
    );
    // a paused flow enrolls no one
    assert_eq!(
        post(
            running.addr,
            "/v1/events",
            json!({"event": "go", "contact": {"id": "d"}})
        )
        .await,
        202
    );
    assert!(enrollments(&store, "d").await.is_empty());
    let version = |id: &'static str| {
        let store = store.clone();
        async move { store.load_contacts(&[id.to_string()]).await.unwrap()[0].version }
    };
    let d_before = version("d").await;
    assert_eq!(
        post(running.addr, "/v1/flows/f/resume", json!({})).await,
        200
    );
    assert_eq!(
        version("d").await,
        d_before,
        "the resume re-plans only the contacts whose wake time moves"
    );
    daemon_kit::advance(&store, &clock, t("2026-01-01T05:00:01Z")).await;
    let e = enrollments(&store, "c").await;
    assert_eq!(
        (e[0].1.as_str(), e[0].2.as_str()),
        ("two", "completed"),
        "{e:?}"
    );
    running.shutdown().await;
}

async fn a_send_window_holds_the_message_until_it_opens(engine: Engine) {
    let bundle = vm_support::bundle(
        r#"
contact { email: email? unique }
event go {}
channel mail: smtp { host = "127.0.0.1" port = 1 security = "none" from = "a@b.example" }
template hi: email { subject = "hi" text = "hello" }
flow f {
  when go
  window 09:00..18:00 local
  step s { send mail hi }
}
"#,
    );
    let dir = daemon_kit::Scratch::on(engine, "window");
    let clock = ManualClock::new(t("2026-01-05T20:00:00Z"));
    let (running, store) =
        daemon_kit::start(&dir.db_url(), bundle, &clock, Default::default()).await;
    let ev = json!({"event": "go", "contact": {"id": "c", "email": "c@x.example", "timezone": "Europe/Rome"}});
    assert_eq!(post(running.addr, "/v1/events", ev).await, 202);
    let rows = store.outbox_list(None, 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    // 20:00Z is 21:00 in Rome: held until 09:00 Rome, 08:00Z the next day
    assert_eq!(format_time(rows[0].next_attempt_at), "2026-01-06T08:00:00Z");
    assert_eq!(rows[0].attempts, 0);
    running.shutdown().await;
}

async fn a_call_response_goes_back_into_its_enrollment(engine: Engine) {
    let sink = nudge_testkit::HttpSink::start().await;
    sink.respond(201, r#"{"id": "L-7"}"#);
    let bundle = vm_support::bundle(&format!(
        r#"
contact {{ email: email? unique  crm_id: text? }}
event go {{}}
channel crm: http {{
  method = "POST"
  url = "{}/leads"
  body = json {{ email: contact.email, source: data.source }}
}}
flow f {{
  when go
  step s {{
    call crm with {{ source = "web" }} as lead
    if lead.status == 201 {{
      set contact.crm_id = lead.json.id
      tag "in_crm"
    }}
  }}
}}
"#,
        sink.url()
    ));
    let dir = daemon_kit::Scratch::on(engine, "call");
    let clock = ManualClock::new(t("2026-01-01T00:00:00Z"));
    let (running, store) = daemon_kit::start_with(&dir.db_url(), bundle, &clock, |c| {
        c.allow_hosts = vec!["127.0.0.1".into()];
    })
    .await;
    let ev = json!({"event": "go", "contact": {"id": "c", "email": "c@x.example"}});
    assert_eq!(post(running.addr, "/v1/events", ev).await, 202);
    let reqs = sink.wait_for(1, std::time::Duration::from_secs(5)).await;
    assert_eq!(
        reqs[0].json().unwrap(),
        json!({"email": "c@x.example", "source": "web"})
    );
    let mut done = false;
    for _ in 0..200 {
        let st = store.load_contacts(&["c".to_string()]).await.unwrap();
        let c = &st[0].state;
        if c.contact.get("crm_id") == Value::text("L-7") {
            assert!(
                matches!(c.contact.get("tags"), Value::Set(t) if t.contains(&Value::text("in_crm")))
            );
            assert_eq!(c.enrollments[0].status.name(), "completed");
            done = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(done, "the response never reached the enrollment");
    running.shutdown().await;
}

/// Journey lines of a contact, as `flow: what`.
async fn journey(store: &Arc<dyn Store>, id: &str) -> Vec<String> {
    store
        .journal(id, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|j| format!("{}: {}", j.flow, j.what))
        .collect()
}

/// The daemon on the SQLite file in `dir`, running `src`.
async fn start_on(
    dir: &daemon_kit::Scratch,
    src: &str,
    clock: &ManualClock,
) -> (nudge_runtime::daemon::Running, Arc<dyn Store>) {
    daemon_kit::start(
        &dir.db_url(),
        vm_support::bundle(src),
        clock,
        Default::default(),
    )
    .await
}

async fn a_time_trigger_already_past_is_missed_journaled_and_counted(engine: Engine) {
    let dir = daemon_kit::Scratch::on(engine, "missed");
    let clock = ManualClock::new(t("2026-01-31T00:00:00Z"));
    let (running, store) = start_on(&dir, vm_support::DEALS, &clock).await;
    // synced 30 days after the deal: 23 days past, beyond both `late`s
    put(
        running.addr,
        "old",
        json!({"deal_created_at": "2026-01-01T00:00:00Z"}),
    )
    .await;
    // 1 day past: missed without `late`, fires at once with `late 2 days`
    put(
        running.addr,
        "recent",
        json!({"deal_created_at": "2026-01-23T00:00:00Z"}),
    )
    .await;
    daemon_kit::advance(&store, &clock, t("2026-02-10T00:00:00Z")).await;
    assert!(enrollments(&store, "old").await.is_empty());
    let lines = journey(&store, "old").await;
    assert!(
        lines.contains(
            &"nurture: missed nurture trigger: 2026-01-08T00:00:00Z is 23 days in the past".into()
        ),
        "{lines:?}"
    );
    let e = enrollments(&store, "recent").await;
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(
        (e[0].0.as_str(), e[0].3.as_str()),
        ("grace", "2026-01-31T00:00:00Z")
    );
    let metrics = daemon_kit::metrics(running.addr).await;
    assert!(
        metrics.contains("\nnudge_time_triggers_missed_total 3\n"),
        "{metrics}"
    );
    running.shutdown().await;
}

async fn a_trigger_due_while_the_daemon_is_down_fires_when_it_is_back(engine: Engine) {
    let dir = daemon_kit::Scratch::on(engine, "down");
    let clock = ManualClock::new(t("2026-01-01T00:00:00Z"));
    let (running, store) = start_on(&dir, vm_support::DEALS, &clock).await;
    put(
        running.addr,
        "c",
        json!({"deal_created_at": "2026-01-01T00:00:00Z"}),
    )
    .await;
    running.shutdown().await;
    drop(store);
    // down for a month: the trigger planned for 8 January is 24 days old
    clock.set(t("2026-02-01T00:00:00Z"));
    let (running, store) = start_on(&dir, vm_support::DEALS, &clock).await;
    daemon_kit::advance(&store, &clock, t("2026-02-01T00:00:01Z")).await;
    let mut flows: Vec<(String, String)> = enrollments(&store, "c")
        .await
        .into_iter()
        .map(|e| (e.0, e.3))
        .collect();
    flows.sort();
    assert_eq!(
        flows,
        [
            ("grace".to_string(), "2026-02-01T00:00:00Z".to_string()),
            ("nurture".to_string(), "2026-02-01T00:00:00Z".to_string())
        ]
    );
    assert!(
        !journey(&store, "c")
            .await
            .iter()
            .any(|l| l.contains("missed"))
    );
    running.shutdown().await;
}

async fn a_deploy_that_adds_a_time_trigger_plans_it_with_late(engine: Engine) {
    let dir = daemon_kit::Scratch::on(engine, "deploy-late");
    let clock = ManualClock::new(t("2026-01-10T00:00:00Z"));
    let before = r#"
contact { email: email? unique  deal_created_at: time? }
flow other { step s { log "x" } }
"#;
    let (running, store) = start_on(&dir, before, &clock).await;
    // 7 days after the deal is 2026-01-09: a day before the deploy
    put(
        running.addr,
        "c",
        json!({"deal_created_at": "2026-01-02T00:00:00Z"}),
    )
    .await;
    running.shutdown().await;
    drop(store);
    let (running, store) = start_on(&dir, vm_support::DEALS, &clock).await;
    for _ in 0..200 {
        if !enrollments(&store, "c").await.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let e = enrollments(&store, "c").await;
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(
        (e[0].0.as_str(), e[0].3.as_str()),
        ("grace", "2026-01-10T00:00:00Z")
    );
    let lines = journey(&store, "c").await;
    assert!(
        lines.contains(
            &"nurture: missed nurture trigger: 2026-01-09T00:00:00Z is 1 day in the past".into()
        ),
        "{lines:?}"
    );
    running.shutdown().await;
}

/// The bound on timer firings at one instant (`shell::MAX_TIMER_ROUNDS`)
/// is counted on `/metrics` (and logged) by the daemon, and journaled: a
/// contact waiting in a flow that no deployed bundle has any more (the
/// bundle row of its version is gone) stays due after every firing.
async fn timers_still_due_after_the_last_round_are_counted(engine: Engine) {
    let dir = daemon_kit::Scratch::on(engine, "rounds");
    let clock = ManualClock::new(t("2026-01-01T00:00:00Z"));
    let gone = "event ping {}\nflow gone { when ping  step s { wait 1 hour  log \"late\" } }\n";
    let (running, _) = start_on(&dir, gone, &clock).await;
    let ping = json!({"event": "ping", "contact": {"id": "c"}});
    assert_eq!(post(running.addr, "/v1/events", ping).await, 202);
    running.shutdown().await;
    daemon_kit::sql(&dir, "DELETE FROM bundles").await;

    let kept = "event ping {}\nflow kept { when ping  step s { log \"x\" } }\n";
    let (running, store) = start_on(&dir, kept, &clock).await;
    clock.set(t("2026-01-01T02:00:00Z"));
    let counted = "\nnudge_timer_rounds_exhausted_total ";
    daemon_kit::metrics_until(running.addr, |m| {
        m.contains(counted) && !m.contains(&format!("{counted}0\n"))
    })
    .await;
    let lines = journey(&store, "c").await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains("timers still due after 16 firings at one instant")),
        "{lines:?}"
    );
    running.shutdown().await;
}

on_both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async a_daily_schedule_enrolls_each_contact_at_its_local_time,
    a_time_trigger_follows_its_field_when_it_changes,
    a_paused_flow_keeps_its_timers_until_it_resumes,
    a_send_window_holds_the_message_until_it_opens,
    a_call_response_goes_back_into_its_enrollment,
    a_time_trigger_already_past_is_missed_journaled_and_counted,
    a_trigger_due_while_the_daemon_is_down_fires_when_it_is_back,
    a_deploy_that_adds_a_time_trigger_plans_it_with_late,
    timers_still_due_after_the_last_round_are_counted,
);
