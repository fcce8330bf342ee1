//! Contacts named by a unique key, through the real daemon: the applier
//! looks a group's keys up in one read per field (`Store::find_contacts`)
//! and resolves the rest from the group itself, so two events for the same
//! new e-mail make one contact, a key stored by an earlier batch is found,
//! ids and keys of one contact meet in one slot, and a key changed in the
//! group names its contact for the inputs after it.

#![allow(clippy::unwrap_used)]

mod daemon_kit;
mod vm_support;

use daemon_kit::Engine;
use nudge_testkit::on_both_engines;

use nudge_runtime::compiler::value::Value;
use nudge_runtime::daemon::Running;
use nudge_runtime::store::Store;
use serde_json::{Value as Json, json};
use std::sync::Arc;

const SRC: &str = r#"
contact { email: email? unique  clickid: text? unique  n: int = 0 }
event bump { source: text? }
flow count {
  when bump
  reenter after_exit
  step s { set contact.n = contact.n + 1 }
}
"#;

async fn daemon(engine: Engine, name: &str) -> (daemon_kit::Scratch, Running, Arc<dyn Store>) {
    daemon_kit::start_fresh(engine, name, vm_support::bundle(SRC)).await
}

/// Posts one batch and checks every event of it was accepted.
async fn all_accepted(running: &Running, contacts: &[Json]) {
    let (status, body) = bumps(running, contacts).await;
    let want = i64::try_from(contacts.len()).unwrap();
    assert_eq!(
        (status, body["accepted"].as_i64()),
        (202, Some(want)),
        "{body}"
    );
}

/// Creates contact `id` with `email` by one event.
async fn seed(running: &Running, id: &str, email: &str) {
    let (status, body) = bumps(running, &[json!({"id": id, "email": email})]).await;
    assert_eq!(status, 202, "{body}");
}

/// POSTs one batch of `bump` events (one unit, one group) naming contacts
/// as given; gives the status and the answer.
async fn bumps(running: &Running, contacts: &[Json]) -> (u16, Json) {
    let events: Vec<Json> = contacts
        .iter()
        .map(|c| json!({"event": "bump", "contact": c, "data": {"source": "ads"}}))
        .collect();
    let res = reqwest::Client::new()
        .post(format!("http://{}/v1/events", running.addr))
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

/// The contact owning `email` and its count of `bump` events.
async fn count_of(store: &Arc<dyn Store>, email: &str) -> (String, Value) {
    let id = store.find_contact("email", email).await.unwrap().unwrap();
    let got = store
        .load_contacts(std::slice::from_ref(&id))
        .await
        .unwrap();
    (id, got[0].state.contact.get("n"))
}

async fn two_events_for_one_new_email_in_a_batch_make_one_contact(engine: Engine) {
    let (_dir, running, store) = daemon(engine, "keys-new").await;
    let ann = json!({"email": "ann@x.test"});
    all_accepted(
        &running,
        &[ann.clone(), json!({"email": "bob@x.test"}), ann],
    )
    .await;
    assert_eq!(store.totals(0).await.unwrap().contacts, 2);
    let counts = [
        count_of(&store, "ann@x.test").await.1,
        count_of(&store, "bob@x.test").await.1,
    ];
    assert_eq!(counts, [Value::Int(2), Value::Int(1)]);
    running.shutdown().await;
}

async fn a_key_stored_by_an_earlier_batch_is_found_with_ids_beside_it(engine: Engine) {
    let (_dir, running, store) = daemon(engine, "keys-stored").await;
    let first = [
        json!({"id": "a", "email": "a@x.test", "clickid": "ca"}),
        json!({"email": "b@x.test", "clickid": "cb"}),
    ];
    all_accepted(&running, &first).await;
    // one batch naming both stored contacts by id, e-mail and click id, and
    // a new one: every key is found in the one lookup per field
    let second = [
        json!({"email": "a@x.test"}),
        json!({"id": "a"}),
        json!({"clickid": "ca"}),
        json!({"clickid": "cb"}),
        json!({"email": "b@x.test"}),
        json!({"email": "new@x.test"}),
    ];
    all_accepted(&running, &second).await;
    assert_eq!(store.totals(0).await.unwrap().contacts, 3);
    assert_eq!(
        count_of(&store, "a@x.test").await,
        ("a".into(), Value::Int(4))
    );
    assert_eq!(count_of(&store, "b@x.test").await.1, Value::Int(3));
    assert_eq!(count_of(&store, "new@x.test").await.1, Value::Int(1));
    running.shutdown().await;
}

async fn a_key_changed_in_the_group_names_its_contact_after_the_change(engine: Engine) {
    let (_dir, running, store) = daemon(engine, "keys-moved").await;
    seed(&running, "a", "old@x.test").await;
    let moved = [
        json!({"id": "a", "email": "new@x.test"}),
        json!({"email": "new@x.test"}),
    ];
    all_accepted(&running, &moved).await;
    assert_eq!(
        count_of(&store, "new@x.test").await,
        ("a".into(), Value::Int(3))
    );
    // the old e-mail is free: it names a new contact now
    assert_eq!(
        store.find_contact("email", "old@x.test").await.unwrap(),
        None
    );
    assert_eq!(
        bumps(&running, &[json!({"email": "old@x.test"})]).await.0,
        202
    );
    let (other, n) = count_of(&store, "old@x.test").await;
    assert_ne!(other, "a");
    assert_eq!(n, Value::Int(1));
    assert_eq!(store.totals(0).await.unwrap().contacts, 2);
    running.shutdown().await;
}

async fn an_email_owned_by_a_stored_contact_is_refused_for_another(engine: Engine) {
    let (_dir, running, store) = daemon(engine, "keys-taken").await;
    seed(&running, "a", "a@x.test").await;
    let (status, body) = bumps(&running, &[json!({"id": "b", "email": "a@x.test"})]).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict", "{body}");
    let why = body["error"]["message"].as_str().unwrap();
    assert!(why.contains("belongs to contact `a`"), "{why}");
    assert_eq!(store.totals(0).await.unwrap().contacts, 1);
    assert_eq!(
        count_of(&store, "a@x.test").await,
        ("a".into(), Value::Int(1))
    );
    running.shutdown().await;
}

on_both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async two_events_for_one_new_email_in_a_batch_make_one_contact,
    a_key_stored_by_an_earlier_batch_is_found_with_ids_beside_it,
    a_key_changed_in_the_group_names_its_contact_after_the_change,
    an_email_owned_by_a_stored_contact_is_refused_for_another,
);
