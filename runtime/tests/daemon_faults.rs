//! The daemon under storage faults, on a real SQLite file: a contact whose
//! stored state cannot be read is quarantined and never stops another
//! contact's timers or a group's other inputs; a full disk makes writes and
//! `/readyz` answer 503 with the reason, and both recover by themselves
//! once there is space again; `/metrics` never shows a gauge it could not
//! read as 0.

#![allow(clippy::unwrap_used)]

mod daemon_kit;
mod vm_support;

use nudge_runtime::compiler::value::Value;
use nudge_runtime::daemon::api::RETRY_AFTER_SECS;
use nudge_runtime::daemon::{self, Applier, ApplyError, Config, ContactRef, Done, Job};
use nudge_runtime::daemon::{Clock, ManualClock, metrics::Metrics};
use nudge_runtime::store::sqlite::SqliteStore;
use nudge_runtime::store::{self, Store};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const PROJECT: &str = r#"
contact { email: email? unique  n: int = 0  notes: text? }
event go {}
flow later {
  when go
  step one { wait 1 hour }
  step two { set contact.n = contact.n + 10 }
}
"#;

fn go(id: &str) -> Job {
    Job::Event {
        contact: ContactRef::Id(id.into()),
        set: Vec::new(),
        name: "go".into(),
        fields: Default::default(),
        key: None,
    }
}

/// Makes a contact's stored state unreadable, as a disk fault or a bad
/// manual edit would, through a connection of its own.
async fn damage(url: &str, id: &str) {
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    sqlx::query("UPDATE contacts SET state = X'07FF' WHERE id = ?")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

async fn n_of(store: &Arc<dyn Store>, id: &str) -> Value {
    let got = store.load_contacts(&[id.to_string()]).await.unwrap();
    got[0].state.contact.get("n")
}

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let res = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_contact_is_quarantined_and_the_others_timers_fire() {
    let dir = daemon_kit::Scratch::new("faults-poison");
    let clock = ManualClock::new(1_767_225_600);
    let bundle = vm_support::bundle(PROJECT);
    let (running, store) =
        daemon_kit::start(&dir.db_url(), bundle, &clock, Default::default()).await;
    let client = reqwest::Client::new();
    let event = |id: &str| json!({"event": "go", "contact": {"id": id}});
    for id in ["ann", "bad", "bob"] {
        let r = client
            .post(format!("http://{}/v1/events", running.addr))
            .json(&event(id))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
    }
    damage(&dir.db_url(), "bad").await;

    clock.advance(3_601);
    let mut fired = false;
    for _ in 0..400 {
        if n_of(&store, "ann").await == Value::Int(10)
            && n_of(&store, "bob").await == Value::Int(10)
        {
            fired = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(fired, "the other contacts' timers did not fire");

    // set aside, counted, shown with the reason
    let (_, metrics) = get(running.addr, "/metrics").await;
    assert!(
        metrics.contains("nudge_quarantined_contacts 1"),
        "{metrics}"
    );
    let (status, body) = get(running.addr, "/v1/contacts/bad").await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let reason = v["quarantined"]["reason"].as_str().unwrap();
    assert!(reason.contains("unknown state format 0x07"), "{v}");
    assert_eq!(v["fields"], json!(null));
    // an input for it is refused, clearly
    let r = client
        .post(format!("http://{}/v1/events", running.addr))
        .json(&event("bad"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    let err: serde_json::Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], "quarantined", "{err}");
    // the others still take input
    let r = client
        .post(format!("http://{}/v1/events", running.addr))
        .json(&event("ann"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    running.shutdown().await;
}

/// An applier of [`PROJECT`] on a fresh file in `dir`, with a manual clock.
async fn applier_on(dir: &daemon_kit::Scratch) -> (Arc<dyn Store>, Arc<ManualClock>, Applier) {
    let store = store::open(&dir.db_url()).await.unwrap();
    let clock = Arc::new(ManualClock::new(1_767_225_600));
    let bundle = Arc::new(vm_support::bundle(PROJECT));
    let applier = Applier {
        store: store.clone(),
        version: bundle.hash().unwrap(),
        bundle,
        env: Default::default(),
        clock: clock.clone(),
        metrics: Arc::new(Metrics::default()),
        older: Default::default(),
        calls: Default::default(),
    };
    (store, clock, applier)
}

/// One unit naming a quarantined contact is left out of the group; the
/// other units of the same group apply. A page of timers skips it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_error_preparing_a_group_leaves_out_only_its_unit() {
    let dir = daemon_kit::Scratch::new("faults-group");
    let (store, clock, applier) = applier_on(&dir).await;
    let first = applier.apply(vec![go("bad")]).await;
    assert!(matches!(first[0], Ok(Done::Applied { .. })), "{first:?}");
    damage(&dir.db_url(), "bad").await;

    let got = applier
        .apply_units(vec![vec![go("ann")], vec![go("bad")], vec![go("bob")]])
        .await;
    assert!(matches!(got[0][0], Ok(Done::Applied { .. })), "{got:?}");
    assert!(
        matches!(&got[1][0], Err(ApplyError::Quarantined { contact, .. }) if contact == "bad"),
        "{got:?}"
    );
    assert!(matches!(got[2][0], Ok(Done::Applied { .. })), "{got:?}");
    let stored = store
        .load_contacts(&["ann".to_string(), "bob".to_string()])
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);

    // a page of timers (read from the store) naming it: it is skipped,
    // the others fire
    clock.advance(3_601);
    let timer = |id: &str| Job::Timer {
        contact: id.into(),
        read: None,
    };
    let page = applier
        .apply(vec![timer("ann"), timer("bad"), timer("bob")])
        .await;
    assert!(matches!(page[0], Ok(Done::Applied { .. })), "{page:?}");
    assert_eq!(page[1], Ok(Done::Skipped), "{page:?}");
    assert!(matches!(page[2], Ok(Done::Applied { .. })), "{page:?}");
    assert_eq!(n_of(&store, "bob").await, Value::Int(10));
}

/// A group moves a timer's scheduler read into its first preparation
/// (no copy of the state). When another unit of the group is left out and
/// the rest prepared again, the timer has no read any more: it is loaded
/// from the store and still fires, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_prepared_again_after_a_unit_is_left_out_fires_from_the_store() {
    use nudge_runtime::engine::EngineInput;
    let dir = daemon_kit::Scratch::new("faults-reprepare");
    let (store, clock, applier) = applier_on(&dir).await;
    let first = applier.apply(vec![go("ann")]).await;
    assert!(matches!(first[0], Ok(Done::Applied { .. })), "{first:?}");
    clock.advance(3_601);
    let page = store.due_after(clock.now(), None, 10).await.unwrap();
    assert_eq!(page.len(), 1);
    let read = Arc::new(page.into_iter().next().unwrap().1);
    let nobody = Job::Manual {
        contact: "nobody".into(),
        input: EngineInput::Remove {
            flow: "later".into(),
        },
    };
    let timer = Job::Timer {
        contact: "ann".into(),
        read: Some(read),
    };
    let got = applier
        .apply_units(vec![vec![go("xavier"), nobody], vec![timer]])
        .await;
    assert_eq!(got[0][0], Err(ApplyError::Aborted), "{got:?}");
    assert!(
        matches!(&got[0][1], Err(ApplyError::NotFound(c)) if c == "nobody"),
        "{got:?}"
    );
    assert!(matches!(got[1][0], Ok(Done::Applied { .. })), "{got:?}");
    assert_eq!(n_of(&store, "ann").await, Value::Int(10));
    let left_out = store.load_contacts(&["xavier".to_string()]).await.unwrap();
    assert!(left_out.is_empty(), "the left-out unit wrote nothing");
    assert!(
        store
            .due_after(clock.now(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Commits big contacts over the API until one is refused; its status (a
/// 503 must say when to try again).
async fn put_until_refused(addr: std::net::SocketAddr, from: usize) -> (u16, String) {
    let client = reqwest::Client::new();
    for i in from..from + 64 {
        let r = client
            .put(format!("http://{addr}/v1/contacts/c-{i}"))
            .json(&json!({"fields": {"notes": "x".repeat(64 * 1024)}}))
            .send()
            .await
            .unwrap();
        if !r.status().is_success() {
            if r.status().as_u16() == 503 {
                let after = r.headers().get("retry-after").map(|v| v.as_bytes());
                assert_eq!(after, Some(RETRY_AFTER_SECS.as_bytes()), "{r:?}");
            }
            return (r.status().as_u16(), r.text().await.unwrap());
        }
    }
    panic!("64 contacts of 64 KiB fitted in a capped file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_not_ready_and_recovers_without_a_restart() {
    let dir = daemon_kit::Scratch::new("faults-full");
    let sqlite = Arc::new(SqliteStore::open(&dir.db_url()).await.unwrap());
    sqlite.migrate().await.unwrap();
    let store: Arc<dyn Store> = sqlite.clone();
    let clock = ManualClock::new(1_767_225_600);
    let mut config = Config::new("127.0.0.1:0".parse().unwrap());
    config.tick = Duration::from_millis(10);
    let running = daemon::start(
        store.clone(),
        vm_support::bundle(PROJECT),
        Arc::new(clock.clone()),
        config,
    )
    .await
    .unwrap();
    let addr = running.addr;
    assert_eq!(get(addr, "/readyz").await.0, 200);

    sqlite.limit_pages(Some(1)).await.unwrap();
    let (status, body) = put_until_refused(addr, 0).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("full"), "{body}");
    // while full: not ready, with the reason; the metrics say so
    let (status, body) = get(addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "not_ready", "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("full"),
        "{v}"
    );
    let (_, metrics) = get(addr, "/metrics").await;
    assert!(metrics.contains("nudge_store_writable 0"), "{metrics}");
    assert!(
        !metrics.contains("nudge_store_write_failures_total 0"),
        "{metrics}"
    );

    // still full on the replaced connection: refused again, as full
    sqlite.limit_pages(Some(1)).await.unwrap();
    let (status, body) = put_until_refused(addr, 100).await;
    assert_eq!(status, 503, "{body}");
    assert!(!body.contains("transaction depth"), "{body}");

    // space again: the next write succeeds, readiness follows
    sqlite.limit_pages(None).await.unwrap();
    let r = reqwest::Client::new()
        .put(format!("http://{addr}/v1/contacts/after"))
        .json(&json!({"fields": {"notes": "back"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
    assert_eq!(get(addr, "/readyz").await.0, 200);
    let (_, metrics) = get(addr, "/metrics").await;
    assert!(metrics.contains("nudge_store_writable 1"), "{metrics}");
    running.shutdown().await;
}

/// A gauge read from the database is never shown as 0 when the read
/// fails: it is left out, and `nudge_store_up` says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_leave_out_gauges_the_database_cannot_give() {
    let dir = daemon_kit::Scratch::new("faults-metrics");
    let clock = ManualClock::new(1_767_225_600);
    let bundle = vm_support::bundle(PROJECT);
    let (running, _store) =
        daemon_kit::start(&dir.db_url(), bundle, &clock, Default::default()).await;
    let (_, before) = get(running.addr, "/metrics").await;
    assert!(before.contains("nudge_store_up 1"), "{before}");
    assert!(before.contains("\nnudge_contacts 0"), "{before}");

    let pool = sqlx::SqlitePool::connect(&dir.db_url()).await.unwrap();
    sqlx::query("DROP TABLE totals")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (status, after) = get(running.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(after.contains("nudge_store_up 0"), "{after}");
    assert!(!after.contains("\nnudge_contacts "), "{after}");
    assert!(!after.contains("\nnudge_outbox_pending "), "{after}");
    running.shutdown().await;
}
