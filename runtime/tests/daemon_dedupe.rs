//! Postback deduplication in the daemon (LANGUAGE.md A5), on a real SQLite
//! file and over HTTP on loopback: a postback whose `dedupe` value was seen
//! before is answered `200 {"status": "duplicate"}` and changes nothing,
//! also while the first copy is held; copies racing in one group commit, or
//! in two appliers on the same file, count once.

#![allow(clippy::unwrap_used)]

mod daemon_kit;
mod vm_support;

use daemon_kit::Engine;
use nudge_testkit::on_both_engines;

use nudge_runtime::compiler::bundle::Bundle;
use nudge_runtime::compiler::value::Value;
use nudge_runtime::daemon::{self, Applier, Done, Job, ManualClock};
use nudge_runtime::intake;
use nudge_runtime::store::Store;
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::sync::Arc;

const SRC: &str = r#"
contact { clickid: text? unique, deposits: int = 0, resales: int = 0 }
event sale {}
event resale {}
source partner: postback {
  contact = clickid
  event = param("status")
  token = env("PT")
  dedupe = param("txid")
  rename { "dep" = sale, "redep" = resale }
}
flow deposits {
  when sale
  when resale
  reenter after_exit
  step count { set contact.deposits = contact.deposits + 1 }
}
flow resales {
  when resale
  reenter after_exit
  step count { set contact.resales = contact.resales + 1 }
}
"#;

fn env() -> BTreeMap<String, String> {
    BTreeMap::from([("PT".to_string(), "pt".to_string())])
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn get(&self, path: &str) -> (u16, Json) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Json::Null))
    }

    async fn text(&self, path: &str) -> String {
        let res = self.http.get(format!("{}{path}", self.base));
        res.send().await.unwrap().text().await.unwrap()
    }

    async fn put_contact(&self, id: &str, clickid: &str) {
        let res = self
            .http
            .put(format!("{}/v1/contacts/{id}", self.base))
            .json(&json!({"fields": {"clickid": clickid}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 201);
    }
}

fn postback(clickid: &str, status: &str, txid: &str) -> String {
    format!("/postback/partner?clickid={clickid}&status={status}&txid={txid}&token=pt")
}

async fn field(store: &Arc<dyn Store>, clickid: &str, name: &str) -> Value {
    let id = store
        .find_contact("clickid", clickid)
        .await
        .unwrap()
        .unwrap();
    let v = store.load_contacts(&[id]).await.unwrap();
    v[0].state.contact.get(name)
}

async fn start(
    dir: &daemon_kit::Scratch,
    clock: &ManualClock,
) -> (daemon::Running, Arc<dyn Store>, Api) {
    let (running, store) =
        daemon_kit::start(&dir.db_url(), vm_support::bundle(SRC), clock, env()).await;
    let api = Api {
        base: format!("http://{}", running.addr),
        http: reqwest::Client::new(),
    };
    (running, store, api)
}

/// The reproduction: `sale`, `resale`, then the same `resale` URL again
/// (the network's retry) count one sale and one resale.
async fn a_retried_postback_is_a_duplicate_and_changes_nothing(engine: Engine) {
    let dir = daemon_kit::Scratch::on(engine, "dedupe-retry");
    let clock = ManualClock::new(1_767_225_600);
    let (running, store, api) = start(&dir, &clock).await;
    api.put_contact("c1", "ck-1").await;

    let applied = (200, json!({"status": "applied"}));
    assert_eq!(api.get(&postback("ck-1", "dep", "t-1")).await, applied);
    assert_eq!(api.get(&postback("ck-1", "redep", "t-2")).await, applied);
    let journal = store.journal("c1", 100).await.unwrap();
    assert_eq!(
        api.get(&postback("ck-1", "redep", "t-2")).await,
        (200, json!({"status": "duplicate"}))
    );
    assert_eq!(field(&store, "ck-1", "deposits").await, Value::Int(2));
    assert_eq!(field(&store, "ck-1", "resales").await, Value::Int(1));
    assert_eq!(
        store.totals(0).await.unwrap().events,
        2,
        "one event per postback applied"
    );
    assert_eq!(store.journal("c1", 100).await.unwrap(), journal);
    let metrics = api.text("/metrics").await;
    assert!(
        metrics.contains("nudge_postbacks_duplicate_total 1"),
        "{metrics}"
    );

    // the same value under a new status is still the same postback
    let (status, body) = api.get(&postback("ck-1", "dep", "t-2")).await;
    assert_eq!((status, body["status"].clone()), (200, json!("duplicate")));
    assert_eq!(field(&store, "ck-1", "deposits").await, Value::Int(2));
    running.shutdown().await;
}

/// Without the parameter `dedupe` reads, a postback cannot be told apart
/// from its retries: refused (422) and kept for inspection.
async fn a_postback_without_its_dedupe_parameter_is_refused_and_kept(engine: Engine) {
    let dir = daemon_kit::Scratch::on(engine, "dedupe-missing");
    let clock = ManualClock::new(1_767_225_600);
    let (running, store, api) = start(&dir, &clock).await;
    api.put_contact("c1", "ck-1").await;
    for path in [
        "/postback/partner?clickid=ck-1&status=dep&token=pt",
        "/postback/partner?clickid=ck-1&status=dep&txid=&token=pt",
    ] {
        let (status, body) = api.get(path).await;
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (422, json!("invalid_postback")),
            "{body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("no `txid` to deduplicate it by"),
            "{body}"
        );
    }
    let long = "x".repeat(intake::MAX_DEDUPE + 1);
    let (status, _) = api.get(&postback("ck-1", "dep", &long)).await;
    assert_eq!(status, 422);
    let (_, rejected) = api.get("/v1/postbacks/rejected").await;
    assert_eq!(
        rejected["rejected"].as_array().unwrap().len(),
        3,
        "{rejected}"
    );
    assert_eq!(field(&store, "ck-1", "deposits").await, Value::Int(0));
    running.shutdown().await;
}

/// A retry of a held postback is a duplicate; when the contact appears the
/// held one applies once, and a later retry is still a duplicate.
async fn a_held_postback_counts_once(engine: Engine) {
    let dir = daemon_kit::Scratch::on(engine, "dedupe-held");
    let clock = ManualClock::new(1_767_225_600);
    let (running, store, api) = start(&dir, &clock).await;
    let url = postback("ck-9", "dep", "t-9");
    assert_eq!(api.get(&url).await, (202, json!({"status": "held"})));
    assert_eq!(api.get(&url).await, (200, json!({"status": "duplicate"})));
    assert_eq!(store.held_for("clickid", "ck-9").await.unwrap().len(), 1);

    api.put_contact("c9", "ck-9").await;
    assert_eq!(field(&store, "ck-9", "deposits").await, Value::Int(1));
    assert!(store.held_for("clickid", "ck-9").await.unwrap().is_empty());
    assert_eq!(api.get(&url).await, (200, json!({"status": "duplicate"})));
    assert_eq!(field(&store, "ck-9", "deposits").await, Value::Int(1));
    let metrics = api.text("/metrics").await;
    assert!(
        metrics.contains("nudge_postbacks_duplicate_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("nudge_postbacks_held_total 1"),
        "{metrics}"
    );
    running.shutdown().await;
}

/// Many copies at once over HTTP: exactly one applies, whatever groups
/// the applier makes of them; other values beside them all apply.
async fn concurrent_copies_apply_once(engine: Engine) {
    let dir = daemon_kit::Scratch::on(engine, "dedupe-race");
    let clock = ManualClock::new(1_767_225_600);
    let (running, store, api) = start(&dir, &clock).await;
    api.put_contact("c1", "ck-1").await;
    let api = Arc::new(api);
    let mut tasks = Vec::new();
    for i in 0..60 {
        let api = api.clone();
        // 40 copies of t-same, 20 distinct values
        let txid = if i % 3 == 2 {
            format!("t-{i}")
        } else {
            "t-same".into()
        };
        tasks.push(tokio::spawn(async move {
            api.get(&postback("ck-1", "redep", &txid)).await
        }));
    }
    let mut answers = BTreeMap::<String, usize>::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
        *answers
            .entry(body["status"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(
        answers,
        BTreeMap::from([("applied".to_string(), 21), ("duplicate".to_string(), 39)])
    );
    assert_eq!(field(&store, "ck-1", "resales").await, Value::Int(21));
    running.shutdown().await;
}

fn job(bundle: &Bundle, clickid: &str, txid: &str) -> Job {
    let params: BTreeMap<String, String> =
        [("clickid", clickid), ("status", "redep"), ("txid", txid)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let mapped = intake::map_postback(bundle, &env(), "partner", &params).unwrap();
    Job::Postback {
        source: "partner".into(),
        mapped,
        params,
    }
}

fn applier(store: &Arc<dyn Store>, bundle: &Arc<Bundle>, clock: &ManualClock) -> Applier {
    Applier {
        store: store.clone(),
        bundle: bundle.clone(),
        version: bundle.hash().unwrap(),
        env: env(),
        clock: Arc::new(clock.clone()),
        metrics: Default::default(),
        older: Default::default(),
        calls: Default::default(),
    }
}

/// Two copies as two units of ONE group commit: the first applies, the
/// second is a duplicate, and the commit holds the value once.
async fn two_copies_in_one_group_commit_apply_once(engine: Engine) {
    let dir = daemon_kit::Scratch::on(engine, "dedupe-group");
    let store = nudge_runtime::store::open(&dir.db_url()).await.unwrap();
    let clock = ManualClock::new(1_767_225_600);
    let bundle = Arc::new(vm_support::bundle(SRC));
    let a = applier(&store, &bundle, &clock);
    let upsert = Job::Upsert {
        id: "c1".into(),
        set: vec![("clickid".into(), Value::text("ck-1"))],
    };
    a.apply(vec![upsert]).await;
    let out = a
        .apply_units(vec![
            vec![job(&bundle, "ck-1", "t-1")],
            vec![job(&bundle, "ck-1", "t-1")],
        ])
        .await;
    assert!(matches!(out[0][..], [Ok(Done::Applied { .. })]), "{out:?}");
    assert_eq!(out[1], vec![Ok(Done::DuplicatePostback)]);
    assert_eq!(field(&store, "ck-1", "resales").await, Value::Int(1));
}

/// Two appliers on the same file (two processes) prepare the same copy
/// from the same store: the second commit is refused by the unique index,
/// prepared again, and answered duplicate.
async fn the_commit_refuses_a_value_another_writer_recorded(engine: Engine) {
    let dir = daemon_kit::Scratch::on(engine, "dedupe-writers");
    let store = nudge_runtime::store::open(&dir.db_url()).await.unwrap();
    let clock = ManualClock::new(1_767_225_600);
    let bundle = Arc::new(vm_support::bundle(SRC));
    let (a, b) = (
        applier(&store, &bundle, &clock),
        applier(&store, &bundle, &clock),
    );
    let upsert = Job::Upsert {
        id: "c1".into(),
        set: vec![("clickid".into(), Value::text("ck-1"))],
    };
    a.apply(vec![upsert]).await;
    let mut ga = a
        .prepare_group(vec![vec![job(&bundle, "ck-1", "t-1")]], None)
        .await;
    let mut gb = b
        .prepare_group(vec![vec![job(&bundle, "ck-1", "t-1")]], None)
        .await;
    let ca = a.commit_group(&mut ga).await;
    let cb = b.commit_group(&mut gb).await;
    assert!(ca.is_ok());
    assert!(cb.is_err(), "the second writer is refused");
    let oa = a.finish_group(ga, ca).await;
    let ob = b.finish_group(gb, cb).await;
    assert!(matches!(oa[0][..], [Ok(Done::Applied { .. })]), "{oa:?}");
    assert_eq!(ob[0], vec![Ok(Done::DuplicatePostback)]);
    assert_eq!(field(&store, "ck-1", "resales").await, Value::Int(1));
}

/// Kept for 30 days (or the hold time if longer): after that the scheduler
/// forgets the value and the same postback counts again.
async fn values_are_forgotten_after_their_keeping_time(engine: Engine) {
    let dir = daemon_kit::Scratch::on(engine, "dedupe-expiry");
    let clock = ManualClock::new(1_767_225_600);
    let (running, store, api) = start(&dir, &clock).await;
    api.put_contact("c1", "ck-1").await;
    let url = postback("ck-1", "redep", "t-1");
    assert_eq!(api.get(&url).await.1["status"], "applied");
    let key = [("partner".to_string(), "t-1".to_string())];
    assert_eq!(store.seen_postbacks(&key).await.unwrap().len(), 1);
    clock.advance(intake::DEDUPE_KEEP_SECONDS + 61);
    for _ in 0..500 {
        if store.seen_postbacks(&key).await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(store.seen_postbacks(&key).await.unwrap().is_empty());
    assert_eq!(api.get(&url).await.1["status"], "applied");
    assert_eq!(field(&store, "ck-1", "resales").await, Value::Int(2));
    running.shutdown().await;
}

/// Contacts created by one batch of events, named by their key or given it
/// beside an id, get the postbacks held for their keys (read for the whole
/// group at once): each held one applies once, beside the event.
async fn a_batch_of_events_creating_contacts_releases_what_is_held_for_them(engine: Engine) {
    let dir = daemon_kit::Scratch::on(engine, "dedupe-batch-held");
    let clock = ManualClock::new(1_767_225_600);
    let (running, store, api) = start(&dir, &clock).await;
    for (click, tx) in [("ck-a", "t-a"), ("ck-b", "t-b")] {
        let held = api.get(&postback(click, "dep", tx)).await;
        assert_eq!(held, (202, json!({"status": "held"})));
    }
    let batch = json!({"events": [
        {"event": "sale", "contact": {"clickid": "ck-a"}},
        {"event": "sale", "contact": {"id": "b", "clickid": "ck-b"}},
        {"event": "sale", "contact": {"clickid": "ck-c"}},
    ]});
    assert_eq!(
        daemon_kit::post(running.addr, "/v1/events", batch).await,
        202
    );
    assert_eq!(field(&store, "ck-a", "deposits").await, Value::Int(2));
    assert_eq!(field(&store, "ck-b", "deposits").await, Value::Int(2));
    assert_eq!(field(&store, "ck-c", "deposits").await, Value::Int(1));
    for click in ["ck-a", "ck-b"] {
        assert!(store.held_for("clickid", click).await.unwrap().is_empty());
    }
    running.shutdown().await;
}

on_both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async a_retried_postback_is_a_duplicate_and_changes_nothing,
    a_postback_without_its_dedupe_parameter_is_refused_and_kept,
    a_held_postback_counts_once,
    two_copies_in_one_group_commit_apply_once,
    the_commit_refuses_a_value_another_writer_recorded,
    values_are_forgotten_after_their_keeping_time,
    a_batch_of_events_creating_contacts_releases_what_is_held_for_them,
);

on_both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async concurrent_copies_apply_once,
);
