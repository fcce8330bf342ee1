//! Deploys: a contact stays on the version it entered with; a new contact
//! enters the new version; both versions are stored by hash.

#![allow(clippy::unwrap_used)]

mod daemon_kit;
mod vm_support;

use daemon_kit::Engine;
use nudge_testkit::on_both_engines;

use nudge_runtime::compiler::bundle::Bundle;
use nudge_runtime::daemon::{Clock, ManualClock};
use nudge_runtime::daemon::{Project, ReloadError};
use nudge_runtime::vm::Message;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

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
    assert_eq!(
        texts(&store).await,
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
    a_redeploy_keeps_waiting_contacts_on_their_version,
    migrate_moves_waiting_contacts_by_step_name_and_lists_removed_steps,
    a_compile_error_keeps_the_running_version_and_formatting_keeps_it_too,
    a_version_another_daemon_deployed_later_is_picked_up,
);

// ---- redeploys while running (issue 12, part 4)

/// A project whose sources the test edits: `reload` compiles them.
fn project(src: &Arc<Mutex<String>>) -> Project {
    let src = src.clone();
    Project {
        reload: Arc::new(move || {
            let text = src.lock().unwrap().clone();
            let mut set = nudge_runtime::compiler::files::SourceSet::new();
            set.add("main.nudge", "main.nudge", text);
            let fs = nudge_runtime::compiler::files::MemoryFs::new();
            let (checked, bundle) = nudge_runtime::compiler::compile(&set, &fs);
            match bundle {
                Some(b) if !checked.diagnostics.has_errors() => Ok(b),
                _ => Err(ReloadError::Diagnostics(checked.diagnostics.records(&set))),
            }
        }),
        env: Arc::new(|_| None),
    }
}

fn source(text: &str, extra: &str) -> String {
    format!(
        r#"
contact {{ email: email? unique }}
event go {{}}
channel mail: smtp {{ host = "127.0.0.1" port = 1 security = "none" from = "a@b.example" }}
template t: email {{ subject = "s" text = "{text}" }}
flow f {{
  when go
  step one {{ wait 1 day  send mail t }}
}}
{extra}
"#
    )
}

async fn deploy(addr: std::net::SocketAddr, query: &str) -> (u16, serde_json::Value) {
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/v1/deploy{query}"))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// `/metrics` has each of these lines.
fn metrics_show(running: &nudge_runtime::daemon::Running, lines: &[&str]) {
    let metrics = running.metrics.render(&[]);
    for l in lines {
        assert!(metrics.contains(l), "{l}:\n{metrics}");
    }
}

async fn texts(store: &Arc<dyn nudge_runtime::store::Store>) -> Vec<(String, String)> {
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
    texts
}

async fn start_project(
    dir: &daemon_kit::Scratch,
    clock: &ManualClock,
    src: &Arc<Mutex<String>>,
) -> (
    nudge_runtime::daemon::Running,
    Arc<dyn nudge_runtime::store::Store>,
) {
    let first = vm_support::bundle(&src.lock().unwrap());
    let p = project(src);
    daemon_kit::start_with(&dir.db_url(), first, clock, move |c| c.project = Some(p)).await
}

async fn a_redeploy_keeps_waiting_contacts_on_their_version(engine: Engine) {
    let dir = daemon_kit::Scratch::on(engine, "redeploy");
    let clock = ManualClock::new(1_767_225_600);
    let src = Arc::new(Mutex::new(source("from v1", "")));
    let (running, store) = start_project(&dir, &clock, &src).await;
    let v1 = running.shared.deployed().version.clone();
    go(running.addr, "old").await;
    *src.lock().unwrap() = source("from v2", "");
    let (status, report) = deploy(running.addr, "").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["changed"], true);
    let v2 = report["version"].as_str().unwrap().to_string();
    assert_ne!(v1, v2);
    assert_eq!(running.shared.deployed().version, v2);
    go(running.addr, "new").await;

    let flows: serde_json::Value = reqwest::get(format!("http://{}/v1/flows", running.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let versions = &flows["flows"][0]["versions"];
    let active = |h: &str| {
        versions
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["hash"] == h)
            .map(|v| v["active"].as_i64().unwrap())
    };
    assert_eq!((active(&v1), active(&v2)), (Some(1), Some(1)), "{versions}");
    assert!(versions[0]["deployed_at"].is_i64());

    daemon_kit::advance(&store, &clock, clock.now() + 86_400).await;
    assert_eq!(
        texts(&store).await,
        [
            ("new@x.example".to_string(), "from v2".to_string()),
            ("old@x.example".to_string(), "from v1".to_string()),
        ]
    );
    metrics_show(&running, &["nudge_deploys_total{outcome=\"deployed\"} 2"]);
    running.shutdown().await;
}

async fn migrate_moves_waiting_contacts_by_step_name_and_lists_removed_steps(engine: Engine) {
    let dir = daemon_kit::Scratch::on(engine, "redeploy-migrate");
    let clock = ManualClock::new(1_767_225_600);
    let old_h = "flow h {\n  when go\n  step gone { wait 1 day  log \"x\" }\n}";
    let new_h = "flow h {\n  when go\n  step fresh { wait 1 day  log \"y\" }\n}";
    let src = Arc::new(Mutex::new(source("from v1", old_h)));
    let (running, store) = start_project(&dir, &clock, &src).await;
    let v1 = running.shared.deployed().version.clone();
    go(running.addr, "old").await;
    clock.set(clock.now() + 3600);
    *src.lock().unwrap() = source("from v2", new_h);
    let (status, report) = deploy(running.addr, "?migrate=true").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["migrated"], 1, "{report}");
    assert_eq!(
        report["unmapped"],
        serde_json::json!([{"flow": "h", "step": "gone", "version": v1, "count": 1}])
    );
    let v2 = report["version"].as_str().unwrap().to_string();
    let st = store.load_contacts(&["old".to_string()]).await.unwrap();
    let on: Vec<(&str, &str)> = st[0]
        .state
        .enrollments
        .iter()
        .map(|e| (e.flow.as_str(), e.version.as_str()))
        .collect();
    assert_eq!(on, [("f", v2.as_str()), ("h", v1.as_str())]);
    // the wait was armed again from the step: a day after the migration
    daemon_kit::advance(&store, &clock, 1_767_225_600 + 86_400).await;
    assert!(
        texts(&store).await.is_empty(),
        "the old instant does not fire"
    );
    daemon_kit::advance(&store, &clock, 1_767_225_600 + 3600 + 86_400).await;
    assert_eq!(
        texts(&store).await,
        [("old@x.example".to_string(), "from v2".to_string())]
    );
    metrics_show(
        &running,
        &[
            "nudge_migrations_unmapped_total 1",
            "nudge_migrations_moved_total 1",
        ],
    );
    running.shutdown().await;
}

async fn a_compile_error_keeps_the_running_version_and_formatting_keeps_it_too(engine: Engine) {
    let dir = daemon_kit::Scratch::on(engine, "redeploy-errors");
    let clock = ManualClock::new(1_767_225_600);
    let src = Arc::new(Mutex::new(source("v1", "")));
    let (running, _store) = start_project(&dir, &clock, &src).await;
    let v1 = running.shared.deployed().version.clone();
    *src.lock().unwrap() = source("v1", "flow broken { when nothing_declared }");
    let (status, body) = deploy(running.addr, "").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "compile_error");
    let ds = body["error"]["diagnostics"].as_array().unwrap().clone();
    assert!(
        ds.iter().any(|d| d["severity"] == "error"
            && d["file"] == "main.nudge"
            && d["line"] == 10
            && d["code"].as_str().unwrap().starts_with("nudge::")
            && d["column"].is_u64()),
        "{body}"
    );
    assert_eq!(running.shared.deployed().version, v1, "nothing changed");

    *src.lock().unwrap() = format!(
        "// a comment\n\n{}",
        source("v1", "").replace("  step", "\n  step")
    );
    let (status, report) = deploy(running.addr, "").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["changed"], false);
    assert_eq!(report["version"], v1.as_str());
    metrics_show(
        &running,
        &[
            "nudge_deploys_total{outcome=\"rejected\"} 1",
            "nudge_deploys_total{outcome=\"unchanged\"} 1",
        ],
    );
    running.shutdown().await;
}

async fn a_version_another_daemon_deployed_later_is_picked_up(engine: Engine) {
    let dir = daemon_kit::Scratch::on(engine, "redeploy-poll");
    let clock = ManualClock::new(1_767_225_600);
    let (running, store) =
        daemon_kit::start(&dir.db_url(), version("v1"), &clock, BTreeMap::new()).await;
    let v1 = running.shared.deployed().version.clone();
    let older = version("older");
    let at = clock.now();
    // deployed no later than ours: not taken
    store
        .put_bundle(&older.hash().unwrap(), &older.to_bytes().unwrap(), at - 60)
        .await
        .unwrap();
    assert!(
        !nudge_runtime::daemon::poll::poll_once(&running.shared)
            .await
            .unwrap()
    );
    assert_eq!(running.shared.deployed().version, v1);
    // another daemon deploys v2 later
    let v2 = version("v2");
    clock.set(at + 10);
    store
        .put_bundle(&v2.hash().unwrap(), &v2.to_bytes().unwrap(), at + 10)
        .await
        .unwrap();
    assert!(
        nudge_runtime::daemon::poll::poll_once(&running.shared)
            .await
            .unwrap()
    );
    assert_eq!(running.shared.deployed().version, v2.hash().unwrap());
    assert!(
        !nudge_runtime::daemon::poll::poll_once(&running.shared)
            .await
            .unwrap()
    );
    go(running.addr, "new").await;
    let st = store.load_contacts(&["new".to_string()]).await.unwrap();
    assert_eq!(st[0].state.enrollments[0].version, v2.hash().unwrap());
    running.shutdown().await;
}
