//! The behaviour suite of a [`Store`] engine: plain async functions taking
//! a fresh, migrated `&dyn Store`, so every engine (SQLite and Postgres,
//! `store.rs`) runs the same checks. Each function asserts what the daemon relies
//! on: atomic group commits, version and key conflicts, idempotent events
//! and outbox rows, the scheduler index, outbox leases and dead letters,
//! journals, bundles, pause flags, flow counts, postbacks (held, refused,
//! deduplicated) and totals.

#![allow(dead_code)]

use nudge_runtime::compiler::value::Value;
use nudge_runtime::engine::{ContactState, JournalLine, TimeTrigger};
use nudge_runtime::store::*;
use nudge_runtime::vm::{Contact, Enrollment, EventValue, PendingWait, Status};
use std::collections::{BTreeMap, BTreeSet};

mod contacts;
mod dedupe;
mod outbox;
mod records;

pub use contacts::*;
pub use dedupe::*;
pub use outbox::*;
pub use records::*;

// ---- builders

/// A SQLite database file in its own temporary directory, removed on drop.
pub struct TempDb(std::path::PathBuf);

impl TempDb {
    pub fn new(name: &str) -> TempDb {
        let dir = std::env::temp_dir().join(format!("nudge-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDb(dir)
    }

    pub fn url(&self) -> String {
        format!("sqlite://{}", self.0.join("nudge.db").display())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn enrollment(flow: &str, step: &str, status: Status, wake: Option<i64>) -> Enrollment {
    Enrollment {
        flow: flow.into(),
        version: "v1".into(),
        pc: 3,
        status,
        step: step.into(),
        entered_at: 1_000,
        event: None,
        locals: BTreeMap::new(),
        wait: wake.map(|at| PendingWait {
            pc: 4,
            timers: vec![(at, 5)],
            call: None,
        }),
        holdout: false,
        failure: None,
    }
}

pub fn state(id: &str, enrollments: Vec<Enrollment>) -> ContactState {
    let mut st = ContactState::new(Contact {
        id: id.into(),
        fields: BTreeMap::from([("email".to_string(), Value::text(format!("{id}@x.test")))]),
    });
    st.enrollments = enrollments;
    st
}

pub fn new_contact(id: &str) -> ContactWrite {
    ContactWrite {
        state: state(id, Vec::new()),
        expected_version: None,
        keys: Vec::new(),
        next_wake: None,
        loaded: None,
    }
}

pub fn new_contact_with(st: ContactState) -> ContactWrite {
    ContactWrite {
        state: st,
        ..new_contact("")
    }
}

pub fn update(st: ContactState, version: i64) -> ContactWrite {
    ContactWrite {
        state: st,
        expected_version: Some(version),
        keys: Vec::new(),
        next_wake: None,
        loaded: None,
    }
}

pub fn keyed(mut w: ContactWrite, keys: &[(&str, &str)]) -> ContactWrite {
    w.keys = keys
        .iter()
        .map(|(f, v)| (f.to_string(), v.to_string()))
        .collect();
    w
}

pub fn waking(mut w: ContactWrite, at: i64) -> ContactWrite {
    w.next_wake = Some(at);
    w
}

/// A new contact with one active enrollment waiting until `at`.
pub fn due(id: &str, at: i64) -> ContactWrite {
    let st = state(
        id,
        vec![enrollment("welcome", "wait", Status::Active, Some(at))],
    );
    waking(
        ContactWrite {
            state: st,
            ..new_contact(id)
        },
        at,
    )
}

pub fn event(key: Option<&str>, contact: &str, at: i64) -> EventRecord {
    EventRecord {
        key: key.map(String::from),
        contact: contact.into(),
        name: "signup".into(),
        payload: serde_json::json!({"plan": "pro", "n": at}),
        received_at: at,
    }
}

pub fn outbox(contact: &str, idem: &str, not_before: i64) -> NewOutbox {
    NewOutbox {
        contact: contact.into(),
        flow: "welcome".into(),
        step: "hello".into(),
        kind: OutboxKind::Message,
        payload: JsonText::of(
            &serde_json::json!({"to": format!("{contact}@x.test"), "idem": idem}),
        )
        .unwrap(),
        idem_key: idem.into(),
        not_before,
    }
}

pub fn line(at: i64, what: &str) -> JournalLine {
    JournalLine {
        at,
        flow: "welcome".into(),
        step: "start".into(),
        what: what.into(),
    }
}

pub fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub async fn commit(s: &dyn Store, c: Commit) {
    s.commit(&c).await.expect("commit");
}

/// Commits contact writes alone.
pub async fn put(s: &dyn Store, contacts: Vec<ContactWrite>) {
    commit(
        s,
        Commit {
            contacts,
            ..Commit::default()
        },
    )
    .await;
}

pub async fn version_of(s: &dyn Store, id: &str) -> Option<i64> {
    let v = s.load_contacts(&[id.to_string()]).await.expect("load");
    v.first().map(|v| v.version)
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn is_conflict<T: std::fmt::Debug>(r: Result<T>) -> bool {
    matches!(r, Err(StoreError::Conflict(_)))
}
