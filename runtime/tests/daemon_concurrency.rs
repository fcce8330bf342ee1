//! Concurrent inputs for the same contacts: the applier prepares the next
//! group while the previous one commits (reading what is in flight from an
//! overlay), and no update may be lost or applied twice.

#![allow(clippy::unwrap_used)]

mod daemon_kit;
mod vm_support;

use daemon_kit::Engine;
use nudge_testkit::on_both_engines;

use nudge_runtime::compiler::value::Value;
use nudge_runtime::daemon::ManualClock;
use serde_json::json;

const SRC: &str = r#"
contact { email: email? unique  n: int = 0 }
event bump {}
flow count {
  when bump
  reenter after_exit
  step s { set contact.n = contact.n + 1 }
}
"#;

async fn concurrent_events_for_the_same_contacts_all_count_once(engine: Engine) {
    let (_dir, running, store) =
        daemon_kit::start_fresh(engine, "concurrency", vm_support::bundle(SRC)).await;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    // 100 requests at once, each a batch touching the same three contacts,
    // one of them named by its unique key; every event has an id, and each
    // request is sent twice
    for i in 0..100 {
        let (http, base) = (http.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let batch = json!({"events": [
                {"event": "bump", "contact": {"id": "a"}, "id": format!("a-{i}")},
                {"event": "bump", "contact": {"id": "b"}, "id": format!("b-{i}")},
                {"event": "bump", "contact": {"email": "c@x.example"}, "id": format!("c-{i}")},
            ]});
            let mut got = Vec::new();
            for _ in 0..2 {
                let res = http
                    .post(format!("{base}/v1/events"))
                    .json(&batch)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status().as_u16(), 202);
                let v: serde_json::Value = res.json().await.unwrap();
                got.push((
                    v["accepted"].as_i64().unwrap(),
                    v["duplicates"].as_i64().unwrap(),
                ));
            }
            got
        }));
    }
    let mut accepted = 0;
    let mut duplicates = 0;
    for t in tasks {
        for (a, d) in t.await.unwrap() {
            accepted += a;
            duplicates += d;
        }
    }
    assert_eq!((accepted, duplicates), (300, 300));
    let ids = ["a".to_string(), "b".to_string()];
    for v in store.load_contacts(&ids).await.unwrap() {
        assert_eq!(
            v.state.contact.get("n"),
            Value::Int(100),
            "{}",
            v.state.contact.id
        );
    }
    let c = store
        .find_contact("email", "c@x.example")
        .await
        .unwrap()
        .unwrap();
    let st = store.load_contacts(&[c]).await.unwrap();
    assert_eq!(st[0].state.contact.get("n"), Value::Int(100));
    assert_eq!(store.totals(0).await.unwrap().contacts, 3);
    running.shutdown().await;
}

/// The scheduler hands each timer the state it read with its due page. If
/// the contact moved on before the page is applied, the commit refuses the
/// stale state and the page is applied again from the store: the timer
/// fires and the other change is kept.
async fn a_timer_with_a_stale_state_is_applied_from_the_store(engine: Engine) {
    use nudge_runtime::daemon::{self, ApplyError, Clock, Config, ContactRef, Done, Job};
    use std::sync::Arc;
    let src = r#"
contact { n: int = 0 }
event go {}
event bump {}
flow later {
  when go
  step one { wait 1 hour }
  step two { set contact.n = contact.n + 10 }
}
flow count {
  when bump
  reenter after_exit
  step s { set contact.n = contact.n + 1 }
}
"#;
    let dir = daemon_kit::Scratch::on(engine, "stale");
    let store = nudge_runtime::store::open(&dir.db_url()).await.unwrap();
    store.migrate().await.unwrap();
    let clock = ManualClock::new(1_767_225_600);
    let config = Config::new("127.0.0.1:0".parse().unwrap());
    let (shared, _applier) = daemon::attach(
        store.clone(),
        Arc::new(vm_support::bundle(src)),
        Arc::new(clock.clone()),
        config,
    )
    .unwrap();
    let event = |name: &str| Job::Event {
        contact: ContactRef::Id("a".into()),
        set: Vec::new(),
        name: name.into(),
        fields: Default::default(),
        key: None,
    };
    let applied = |o: &Result<Done, ApplyError>| matches!(o, Ok(Done::Applied { .. }));
    assert!(applied(&shared.queue.submit(vec![event("go")]).await[0]));
    clock.advance(3_601);
    let page = store.due_after(clock.now(), None, 10).await.unwrap();
    assert_eq!(page.len(), 1);
    let stale = Arc::new(page.into_iter().next().unwrap().1);
    assert!(applied(&shared.queue.submit(vec![event("bump")]).await[0]));
    let fired = shared
        .queue
        .submit(vec![Job::Timer {
            contact: "a".into(),
            read: Some(stale),
        }])
        .await;
    assert!(applied(&fired[0]), "{fired:?}");
    let now = store.load_contacts(&["a".to_string()]).await.unwrap();
    assert_eq!(
        now[0].state.contact.get("n"),
        Value::Int(11),
        "both changes kept"
    );
    assert!(
        store
            .due_after(clock.now(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

on_both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async concurrent_events_for_the_same_contacts_all_count_once,
);

on_both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async a_timer_with_a_stale_state_is_applied_from_the_store,
);
