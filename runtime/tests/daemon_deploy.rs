//! Deploys: a contact stays on the version it entered with; a new contact
//! enters the new version; both versions are stored by hash.

#![allow(clippy::unwrap_used)]

mod daemon_kit;
mod vm_support;

use daemon_kit::Engine;
use nudge_testkit::on_both_engines;

use nudge_runtime::compiler::bundle::Bundle;
use nudge_runtime::daemon::{Clock, ManualClock};
use nudge_runtime::vm::Message;
use std::collections::BTreeMap;

fn version(text: &str) -> Bundle {
    vm_support::bundle(&format!(
        r#"
contact {{ email: email? unique }}
event go {{}}
channel mail: smtp {{ host = "127.0.0.1" port = 1 security = "none" from = "a@b.example" }}
template t: email {{ subject = "s" text = "{text}" }}
flow f {{
  when go
  step one {{ wait 1 day  send mail t }}
}}
"#
    ))
}

async fn go(addr: std::net::SocketAddr, id: &str) {
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/v1/events"))
        .json(&serde_json::json!({"event": "go", "contact": {"id": id, "email": format!("{id}@x.example")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 202);
}

async fn contacts_stay_on_the_version_they_entered_with(engine: Engine) {
    let dir = daemon_kit::Scratch::on(engine, "deploy");
    let clock = ManualClock::new(1_767_225_600);
    let (v1, v2) = (version("from v1"), version("from v2"));
    assert_ne!(v1.hash().unwrap(), v2.hash().unwrap());
    let (running, _) = daemon_kit::start(&dir.db_url(), v1.clone(), &clock, BTreeMap::new()).await;
    go(running.addr, "old").await;
    running.shutdown().await;

    let (running, store) =
        daemon_kit::start(&dir.db_url(), v2.clone(), &clock, BTreeMap::new()).await;
    go(running.addr, "new").await;
    daemon_kit::advance(&store, &clock, clock.now() + 86_400).await;
    let mut texts: Vec<(String, String)> = store
        .outbox_list(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let m: Message = serde_json::from_value(r.payload).unwrap();
            (m.to.unwrap_or_default(), m.text.unwrap_or_default())
        })
        .collect();
    texts.sort();
    assert_eq!(
        texts,
        [
            ("new@x.example".to_string(), "from v2".to_string()),
            ("old@x.example".to_string(), "from v1".to_string()),
        ]
    );
    assert!(
        store
            .get_bundle(&v1.hash().unwrap())
            .await
            .unwrap()
            .is_some()
    );
    let (latest, _) = store.latest_bundle().await.unwrap().unwrap();
    assert_eq!(latest, v2.hash().unwrap());
    running.shutdown().await;
}

async fn a_deploy_that_adds_a_schedule_plans_it_for_existing_contacts(engine: Engine) {
    let dir = daemon_kit::Scratch::on(engine, "deploy-schedule");
    let clock = ManualClock::new(1_767_225_600); // 2026-01-01T00:00:00Z
    let (running, _) =
        daemon_kit::start(&dir.db_url(), version("v1"), &clock, BTreeMap::new()).await;
    go(running.addr, "old").await;
    running.shutdown().await;

    let v2 = vm_support::bundle(
        r#"
contact { email: email? unique }
event go {}
flow digest {
  when every day at 09:00
  step s { log "digest" }
}
"#,
    );
    let (running, store) = daemon_kit::start(&dir.db_url(), v2, &clock, BTreeMap::new()).await;
    let mut planned = None;
    for _ in 0..200 {
        planned = store.next_wake().await.unwrap();
        if planned == Some(1_767_225_600 + 9 * 3600) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        planned,
        Some(1_767_225_600 + 9 * 3600),
        "the schedule is planned"
    );
    daemon_kit::advance(&store, &clock, 1_767_225_600 + 10 * 3600).await;
    let st = store.load_contacts(&["old".to_string()]).await.unwrap();
    let flows: Vec<&str> = st[0]
        .state
        .enrollments
        .iter()
        .map(|e| e.flow.as_str())
        .collect();
    assert_eq!(flows, ["f", "digest"]);
    running.shutdown().await;
}

on_both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async contacts_stay_on_the_version_they_entered_with,
    a_deploy_that_adds_a_schedule_plans_it_for_existing_contacts,
);
