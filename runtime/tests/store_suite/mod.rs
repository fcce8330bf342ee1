//! The behaviour suite of a [`Store`] engine: plain async functions taking
//! a fresh, migrated `&dyn Store`, so every engine (SQLite today, Postgres
//! next) runs the same checks. Each function asserts what the daemon relies
//! on: atomic group commits, version and key conflicts, idempotent events
//! and outbox rows, the scheduler index, outbox leases and dead letters,
//! journals, bundles, pause flags, flow counts, postbacks and totals.

#![allow(dead_code)]

use nudge_runtime::compiler::value::Value;
use nudge_runtime::engine::{ContactState, JournalLine, TimeTrigger};
use nudge_runtime::store::*;
use nudge_runtime::vm::{Contact, Enrollment, EventValue, PendingWait, Status};
use std::collections::{BTreeMap, BTreeSet};

// ---- builders

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
    }
}

pub fn update(st: ContactState, version: i64) -> ContactWrite {
    ContactWrite {
        state: st,
        expected_version: Some(version),
        keys: Vec::new(),
        next_wake: None,
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
        payload: serde_json::json!({"to": format!("{contact}@x.test"), "idem": idem}),
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
    s.commit(c).await.expect("commit");
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

// ---- the suite

pub async fn migrate_twice(s: &dyn Store) {
    s.migrate().await.expect("second migration");
    s.migrate().await.expect("third migration");
    commit(
        s,
        Commit {
            contacts: vec![new_contact("a")],
            ..Commit::default()
        },
    )
    .await;
    assert_eq!(version_of(s, "a").await, Some(1));
}

pub async fn commit_round_trips_a_contact(s: &dyn Store) {
    let mut st = state(
        "ann",
        vec![
            enrollment("welcome", "done", Status::Completed, None),
            enrollment("welcome", "wait_day", Status::Active, Some(5_000)),
        ],
    );
    st.contact.fields.insert("score".into(), Value::Int(7));
    st.contact
        .fields
        .insert("rate".into(), Value::Decimal(0.25));
    st.contact
        .fields
        .insert("seen".into(), Value::Time(1_700_000_000));
    st.contact.fields.insert(
        "tags".into(),
        Value::Set(vec![Value::text("a"), Value::text("b")]),
    );
    st.enrollments[1].event = Some(EventValue {
        name: "signup".into(),
        fields: BTreeMap::from([("plan".to_string(), Value::text("pro"))]),
        at: 900,
        nth: 2,
    });
    st.enrollments[1]
        .locals
        .insert("crm".into(), Value::Map(BTreeMap::new()));
    st.event_counts.insert("signup".into(), 2);
    st.sent.insert("email".into(), vec![950, 990]);
    st.time_triggers.insert(
        "welcome#0".into(),
        TimeTrigger {
            at: 7_000,
            fired: false,
        },
    );
    st.schedules.insert("digest#1".into(), 8_000);
    let w = waking(
        keyed(
            ContactWrite {
                state: st.clone(),
                ..new_contact("ann")
            },
            &[("email", "ann@x.test")],
        ),
        5_000,
    );
    commit(
        s,
        Commit {
            contacts: vec![w],
            ..Commit::default()
        },
    )
    .await;

    let got = s.load_contacts(&ids(&["ann", "nobody"])).await.unwrap();
    assert_eq!(
        got,
        vec![Versioned {
            state: st.clone(),
            version: 1
        }]
    );
    assert_eq!(
        s.find_contact("email", "ann@x.test").await.unwrap(),
        Some("ann".into())
    );
    assert_eq!(s.find_contact("email", "bob@x.test").await.unwrap(), None);
    assert_eq!(s.next_wake().await.unwrap(), Some(5_000));

    st.contact.fields.insert("score".into(), Value::Int(8));
    commit(
        s,
        Commit {
            contacts: vec![update(st.clone(), 1)],
            ..Commit::default()
        },
    )
    .await;
    let got = s.load_contacts(&ids(&["ann"])).await.unwrap();
    assert_eq!(
        got,
        vec![Versioned {
            state: st,
            version: 2
        }]
    );
    // next_wake None clears the wake time; keys omitted are dropped.
    assert_eq!(s.next_wake().await.unwrap(), None);
    assert_eq!(s.find_contact("email", "ann@x.test").await.unwrap(), None);
}

pub async fn version_conflict_changes_nothing(s: &dyn Store) {
    let first = state(
        "ann",
        vec![enrollment("welcome", "a", Status::Active, None)],
    );
    let w = ContactWrite {
        state: first.clone(),
        ..new_contact("ann")
    };
    commit(
        s,
        Commit {
            contacts: vec![w],
            ..Commit::default()
        },
    )
    .await;

    let mut changed = first.clone();
    changed
        .contact
        .fields
        .insert("score".into(), Value::Int(99));
    changed.enrollments[0].status = Status::Completed;
    let bad = Commit {
        contacts: vec![new_contact("bob"), update(changed.clone(), 7)],
        events: vec![event(Some("k1"), "ann", 10)],
        outbox: vec![outbox("ann", "idem-1", 10)],
        journal: vec![("ann".into(), line(10, "moved"))],
        rejected: vec![("ads".into(), params(&[("a", "1")]), "no key".into(), 10)],
        ..Commit::default()
    };
    assert!(is_conflict(s.commit(bad.clone()).await));

    let got = s.load_contacts(&ids(&["ann", "bob"])).await.unwrap();
    assert_eq!(
        got,
        vec![Versioned {
            state: first.clone(),
            version: 1
        }]
    );
    assert!(s.seen_events(&ids(&["k1"])).await.unwrap().is_empty());
    assert!(s.outbox_list(None, 10).await.unwrap().is_empty());
    assert!(s.journal("ann", 10).await.unwrap().is_empty());
    assert!(s.rejected_postbacks(10).await.unwrap().is_empty());
    let fc = s.flow_counts().await.unwrap();
    assert_eq!(fc[0].active, 1, "enrollment rows untouched");
    let t = s.totals(0).await.unwrap();
    assert_eq!((t.contacts, t.events, t.outbox_pending), (1, 0, 0));

    // A new contact that exists, an update of one that does not.
    assert!(is_conflict(
        s.commit(Commit {
            contacts: vec![new_contact("ann")],
            ..Commit::default()
        })
        .await
    ));
    assert!(is_conflict(
        s.commit(Commit {
            contacts: vec![update(state("zed", vec![]), 1)],
            ..Commit::default()
        })
        .await
    ));

    // The same commit with the right version goes through.
    let mut good = bad;
    good.contacts[1].expected_version = Some(1);
    commit(s, good).await;
    assert_eq!(version_of(s, "ann").await, Some(2));
    assert_eq!(version_of(s, "bob").await, Some(1));
    assert_eq!(s.outbox_list(None, 10).await.unwrap().len(), 1);
}

pub async fn concurrent_writers_conflict(s: &dyn Store) {
    commit(
        s,
        Commit {
            contacts: vec![new_contact("ann")],
            ..Commit::default()
        },
    )
    .await;
    let a = s.commit(Commit {
        contacts: vec![update(state("ann", vec![]), 1)],
        events: vec![event(Some("a"), "ann", 1)],
        ..Commit::default()
    });
    let b = s.commit(Commit {
        contacts: vec![update(state("ann", vec![]), 1)],
        events: vec![event(Some("b"), "ann", 1)],
        ..Commit::default()
    });
    let (ra, rb) = tokio::join!(a, b);
    assert!(ra.is_ok() != rb.is_ok(), "exactly one wins: {ra:?} {rb:?}");
    assert!(is_conflict(if ra.is_ok() { rb } else { ra }));
    assert_eq!(version_of(s, "ann").await, Some(2));
    assert_eq!(s.seen_events(&ids(&["a", "b"])).await.unwrap().len(), 1);
}

pub async fn unique_key_owned_by_another_contact(s: &dyn Store) {
    let ann = keyed(
        new_contact("ann"),
        &[("email", "x@x.test"), ("phone", "+1")],
    );
    commit(
        s,
        Commit {
            contacts: vec![ann],
            ..Commit::default()
        },
    )
    .await;
    let bob = keyed(new_contact("bob"), &[("email", "x@x.test")]);
    assert!(is_conflict(
        s.commit(Commit {
            contacts: vec![bob.clone()],
            ..Commit::default()
        })
        .await
    ));
    assert_eq!(version_of(s, "bob").await, None);
    assert_eq!(
        s.find_contact("email", "x@x.test").await.unwrap(),
        Some("ann".into())
    );

    // Two contacts of one commit claiming one key.
    let cat = keyed(new_contact("cat"), &[("email", "y@x.test")]);
    let dan = keyed(new_contact("dan"), &[("email", "y@x.test")]);
    assert!(is_conflict(
        s.commit(Commit {
            contacts: vec![cat, dan],
            ..Commit::default()
        })
        .await
    ));
    assert_eq!(s.find_contact("email", "y@x.test").await.unwrap(), None);

    // Ann gives the address up and Bob takes it, in one commit.
    let ann = keyed(
        update(state("ann", vec![]), 1),
        &[("email", "z@x.test"), ("phone", "+1")],
    );
    commit(
        s,
        Commit {
            contacts: vec![ann, bob],
            ..Commit::default()
        },
    )
    .await;
    assert_eq!(
        s.find_contact("email", "x@x.test").await.unwrap(),
        Some("bob".into())
    );
    assert_eq!(
        s.find_contact("email", "z@x.test").await.unwrap(),
        Some("ann".into())
    );
    assert_eq!(
        s.find_contact("phone", "+1").await.unwrap(),
        Some("ann".into())
    );
    // A field and value pair is unique; another field may hold the same value.
    let eve = keyed(new_contact("eve"), &[("phone", "x@x.test")]);
    commit(
        s,
        Commit {
            contacts: vec![eve],
            ..Commit::default()
        },
    )
    .await;
    assert_eq!(
        s.find_contact("phone", "x@x.test").await.unwrap(),
        Some("eve".into())
    );
}

pub async fn duplicate_event_key_conflicts(s: &dyn Store) {
    commit(
        s,
        Commit {
            contacts: vec![new_contact("ann")],
            events: vec![
                event(Some("k1"), "ann", 1),
                event(None, "ann", 2),
                event(None, "ann", 2),
            ],
            ..Commit::default()
        },
    )
    .await;
    let seen = s.seen_events(&ids(&["k1", "k2"])).await.unwrap();
    assert_eq!(seen, BTreeSet::from(["k1".to_string()]));

    let again = Commit {
        contacts: vec![update(state("ann", vec![]), 1)],
        events: vec![event(Some("k2"), "ann", 3), event(Some("k1"), "ann", 3)],
        ..Commit::default()
    };
    assert!(is_conflict(s.commit(again).await));
    assert_eq!(version_of(s, "ann").await, Some(1));
    assert!(s.seen_events(&ids(&["k2"])).await.unwrap().is_empty());
    // The same key twice in one commit.
    let twice = Commit {
        events: vec![event(Some("k3"), "ann", 4), event(Some("k3"), "ann", 4)],
        ..Commit::default()
    };
    assert!(is_conflict(s.commit(twice).await));
    assert_eq!(s.totals(0).await.unwrap().events, 3);
}

pub async fn outbox_idem_key_dedupes(s: &dyn Store) {
    commit(
        s,
        Commit {
            outbox: vec![outbox("ann", "m1", 10), outbox("ann", "m1", 10)],
            ..Commit::default()
        },
    )
    .await;
    commit(
        s,
        Commit {
            outbox: vec![outbox("ann", "m1", 20), outbox("ann", "m2", 20)],
            ..Commit::default()
        },
    )
    .await;
    let rows = s.outbox_list(None, 10).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].idem_key.as_str(), rows[0].next_attempt_at),
        ("m1", 10)
    );
    assert_eq!(rows[0].payload, outbox("ann", "m1", 10).payload);
    assert_eq!(
        (rows[0].status, rows[0].attempts, rows[0].kind),
        (OutboxStatus::Pending, 0, OutboxKind::Message)
    );
    assert_eq!(rows[1].idem_key, "m2");
}

pub async fn due_contacts_in_wake_order(s: &dyn Store) {
    let contacts = vec![
        waking(new_contact("c"), 300),
        waking(new_contact("b"), 100),
        waking(new_contact("d"), 200),
        new_contact("e"),
        waking(new_contact("a"), 100),
    ];
    commit(
        s,
        Commit {
            contacts,
            ..Commit::default()
        },
    )
    .await;
    assert_eq!(
        s.due_contacts(250, 10).await.unwrap(),
        ids(&["a", "b", "d"])
    );
    assert_eq!(s.due_contacts(250, 2).await.unwrap(), ids(&["a", "b"]));
    assert_eq!(s.due_contacts(99, 10).await.unwrap(), Vec::<String>::new());
    assert_eq!(s.next_wake().await.unwrap(), Some(100));
    assert_eq!(s.totals(200).await.unwrap().due, 3);
    // Moving a wake time reorders.
    commit(
        s,
        Commit {
            contacts: vec![waking(update(state("a", vec![]), 1), 400)],
            ..Commit::default()
        },
    )
    .await;
    assert_eq!(
        s.due_contacts(1_000, 10).await.unwrap(),
        ids(&["b", "d", "c", "a"])
    );
}

pub async fn claim_outbox_leases_rows(s: &dyn Store) {
    let rows = vec![
        outbox("a", "m3", 30),
        outbox("a", "m1", 10),
        outbox("a", "m2", 20),
        outbox("a", "m4", 100),
    ];
    commit(
        s,
        Commit {
            outbox: rows,
            ..Commit::default()
        },
    )
    .await;
    let got = s.claim_outbox(25, 85, 10).await.unwrap();
    let keys: Vec<&str> = got.iter().map(|r| r.idem_key.as_str()).collect();
    assert_eq!(keys, ["m1", "m2"]);
    assert!(got.iter().all(|r| r.next_attempt_at == 85));
    // Claimed rows stay away until the lease ends; the limit holds.
    let got = s.claim_outbox(84, 200, 1).await.unwrap();
    assert_eq!(
        got.iter().map(|r| r.idem_key.as_str()).collect::<Vec<_>>(),
        ["m3"]
    );
    assert!(s.claim_outbox(84, 200, 10).await.unwrap().is_empty());
    let got = s.claim_outbox(85, 300, 10).await.unwrap();
    assert_eq!(
        got.iter().map(|r| r.idem_key.as_str()).collect::<Vec<_>>(),
        ["m1", "m2"]
    );
    // Delivered rows are never claimed again.
    for r in &got {
        s.outbox_delivered(r.id).await.unwrap();
    }
    assert_eq!(
        s.claim_outbox(10_000, 20_000, 10)
            .await
            .unwrap()
            .iter()
            .map(|r| r.idem_key.as_str())
            .collect::<Vec<_>>(),
        ["m4", "m3"]
    );
    assert_eq!(s.totals(0).await.unwrap().outbox_delivered, 2);
}

pub async fn outbox_retry_dead_requeue(s: &dyn Store) {
    commit(
        s,
        Commit {
            outbox: vec![
                outbox("a", "m1", 10),
                outbox("a", "m2", 10),
                outbox("a", "m3", 10),
            ],
            ..Commit::default()
        },
    )
    .await;
    let rows = s.outbox_list(None, 10).await.unwrap();
    let (m1, m2, m3) = (rows[0].id, rows[1].id, rows[2].id);

    s.outbox_retry(m1, 70, "smtp 451").await.unwrap();
    let r = &s
        .outbox_list(Some(OutboxStatus::Pending), 10)
        .await
        .unwrap()[0];
    assert_eq!(
        (r.id, r.attempts, r.next_attempt_at, r.last_error.as_deref()),
        (m1, 1, 70, Some("smtp 451"))
    );
    assert!(
        s.claim_outbox(69, 100, 10)
            .await
            .unwrap()
            .iter()
            .all(|r| r.id != m1)
    );

    s.outbox_retry(m2, 20, "timeout").await.unwrap();
    s.outbox_dead(m2, "smtp 550").await.unwrap();
    s.outbox_delivered(m3).await.unwrap();
    let dead = s.outbox_list(Some(OutboxStatus::Dead), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].id, dead[0].attempts, dead[0].last_error.as_deref()),
        (m2, 2, Some("smtp 550"))
    );
    assert_eq!(
        s.outbox_list(Some(OutboxStatus::Delivered), 10)
            .await
            .unwrap()[0]
            .id,
        m3
    );
    assert_eq!(s.outbox_list(None, 2).await.unwrap().len(), 2);
    let t = s.totals(0).await.unwrap();
    assert_eq!(
        (t.outbox_pending, t.outbox_dead, t.outbox_delivered),
        (1, 1, 1)
    );

    assert!(
        !s.outbox_requeue(m1, 500).await.unwrap(),
        "a pending row is not requeued"
    );
    assert!(s.outbox_requeue(m2, 500).await.unwrap());
    assert!(!s.outbox_requeue(m2, 500).await.unwrap());
    let r = s
        .outbox_list(Some(OutboxStatus::Pending), 10)
        .await
        .unwrap();
    let back = r.iter().find(|r| r.id == m2).unwrap();
    assert_eq!((back.attempts, back.next_attempt_at), (0, 500));
    let claimed = s.claim_outbox(500, 600, 10).await.unwrap();
    assert_eq!(claimed.iter().map(|r| r.id).collect::<Vec<_>>(), [m1, m2]);
}

pub async fn journal_in_order(s: &dyn Store) {
    commit(
        s,
        Commit {
            journal: vec![
                ("ann".into(), line(1, "one")),
                ("bob".into(), line(1, "other")),
                ("ann".into(), line(2, "two")),
            ],
            ..Commit::default()
        },
    )
    .await;
    commit(
        s,
        Commit {
            journal: vec![("ann".into(), line(2, "three"))],
            ..Commit::default()
        },
    )
    .await;
    let all: Vec<String> = s
        .journal("ann", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.what)
        .collect();
    assert_eq!(all, ["one", "two", "three"]);
    let last = s.journal("ann", 2).await.unwrap();
    assert_eq!(last, vec![line(2, "two"), line(2, "three")]);
    assert_eq!(s.journal("bob", 10).await.unwrap(), vec![line(1, "other")]);
    assert!(s.journal("cat", 10).await.unwrap().is_empty());
}

pub async fn bundles_by_hash(s: &dyn Store) {
    s.put_bundle("h1", b"\x00bundle one\xff", 10).await.unwrap();
    s.put_bundle("h1", b"other bytes", 20).await.unwrap();
    s.put_bundle("h2", b"bundle two", 30).await.unwrap();
    assert_eq!(
        s.get_bundle("h1").await.unwrap().as_deref(),
        Some(&b"\x00bundle one\xff"[..])
    );
    assert_eq!(
        s.get_bundle("h2").await.unwrap().as_deref(),
        Some(&b"bundle two"[..])
    );
    assert_eq!(s.get_bundle("h3").await.unwrap(), None);
}

pub async fn pause_flags(s: &dyn Store) {
    assert!(s.paused().await.unwrap().is_empty());
    s.set_paused("welcome", true).await.unwrap();
    s.set_paused("winback", true).await.unwrap();
    s.set_paused("winback", true).await.unwrap();
    s.set_paused("onboarding", false).await.unwrap();
    assert_eq!(
        s.paused().await.unwrap(),
        BTreeSet::from(["welcome".to_string(), "winback".to_string()])
    );
    s.set_paused("welcome", false).await.unwrap();
    assert_eq!(
        s.paused().await.unwrap(),
        BTreeSet::from(["winback".to_string()])
    );
}

pub async fn flow_counts_from_states(s: &dyn Store) {
    use Status::*;
    let ann = state(
        "ann",
        vec![
            enrollment("welcome", "done", Completed, None),
            enrollment("onboard", "s1", Converted, None),
            enrollment("welcome", "wait_day", Active, Some(50)),
        ],
    );
    let bob = state(
        "bob",
        vec![
            enrollment("welcome", "wait_day", Active, None),
            enrollment("onboard", "s2", Exited, None),
            enrollment("onboard", "s3", Failed, None),
        ],
    );
    let cat = state("cat", vec![enrollment("welcome", "hello", Active, None)]);
    let mk = |st: ContactState| ContactWrite {
        state: st,
        ..new_contact("")
    };
    commit(
        s,
        Commit {
            contacts: vec![mk(ann.clone()), mk(bob.clone()), mk(cat)],
            ..Commit::default()
        },
    )
    .await;
    let fc = s.flow_counts().await.unwrap();
    let onboard = FlowCounts {
        flow: "onboard".into(),
        enrolled: 3,
        converted: 1,
        exited: 1,
        failed: 1,
        ..FlowCounts::default()
    };
    let welcome = FlowCounts {
        flow: "welcome".into(),
        enrolled: 4,
        active: 3,
        completed: 1,
        steps: BTreeMap::from([("wait_day".to_string(), 2), ("hello".to_string(), 1)]),
        ..FlowCounts::default()
    };
    assert_eq!(fc, vec![onboard.clone(), welcome]);
    assert_eq!(
        s.contacts_in_flow("welcome").await.unwrap(),
        ids(&["ann", "bob", "cat"])
    );
    assert!(s.contacts_in_flow("onboard").await.unwrap().is_empty());

    // Ann completes welcome; Bob's list shrinks to one enrollment.
    let mut ann2 = ann;
    ann2.enrollments[2].status = Completed;
    ann2.enrollments[2].step = "end".into();
    let mut bob2 = bob;
    bob2.enrollments.truncate(1);
    bob2.enrollments[0].step = "nudge".into();
    commit(
        s,
        Commit {
            contacts: vec![update(ann2, 1), update(bob2, 1)],
            ..Commit::default()
        },
    )
    .await;
    let fc = s.flow_counts().await.unwrap();
    let onboard = FlowCounts {
        enrolled: 1,
        exited: 0,
        failed: 0,
        ..onboard
    };
    let welcome = FlowCounts {
        flow: "welcome".into(),
        enrolled: 4,
        active: 2,
        completed: 2,
        steps: BTreeMap::from([("nudge".to_string(), 1), ("hello".to_string(), 1)]),
        ..FlowCounts::default()
    };
    assert_eq!(fc, vec![onboard, welcome]);
    assert_eq!(
        s.contacts_in_flow("welcome").await.unwrap(),
        ids(&["bob", "cat"])
    );
}

pub async fn held_postbacks(s: &dyn Store) {
    let held = |source: &str, key: &str, until: i64| HeldPostback {
        id: 0,
        source: source.into(),
        key_field: "email".into(),
        key_value: key.into(),
        params: params(&[("click_id", source), ("amount", "12.5")]),
        received_at: 100,
        until,
    };
    commit(
        s,
        Commit {
            held: vec![
                held("ads", "x@x.test", 1_000),
                held("shop", "x@x.test", 2_000),
                held("ads", "y@x.test", 500),
            ],
            ..Commit::default()
        },
    )
    .await;
    let got = s.held_for("email", "x@x.test").await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0],
        HeldPostback {
            id: got[0].id,
            ..held("ads", "x@x.test", 1_000)
        }
    );
    assert_eq!(got[1].source, "shop");
    assert!(s.held_for("phone", "x@x.test").await.unwrap().is_empty());

    commit(
        s,
        Commit {
            released: vec![got[0].id],
            ..Commit::default()
        },
    )
    .await;
    let left = s.held_for("email", "x@x.test").await.unwrap();
    assert_eq!(
        left.iter().map(|h| h.source.as_str()).collect::<Vec<_>>(),
        ["shop"]
    );

    assert_eq!(s.expire_held(499).await.unwrap(), 0);
    assert_eq!(s.expire_held(1_500).await.unwrap(), 1);
    assert!(s.held_for("email", "y@x.test").await.unwrap().is_empty());
    assert_eq!(s.held_for("email", "x@x.test").await.unwrap().len(), 1);
}

pub async fn rejected_postbacks_kept(s: &dyn Store) {
    let r = |n: i64| {
        (
            "ads".to_string(),
            params(&[("n", &n.to_string())]),
            format!("reason {n}"),
            n,
        )
    };
    commit(
        s,
        Commit {
            rejected: vec![r(1), r(2)],
            ..Commit::default()
        },
    )
    .await;
    commit(
        s,
        Commit {
            rejected: vec![r(3)],
            ..Commit::default()
        },
    )
    .await;
    assert_eq!(
        s.rejected_postbacks(10).await.unwrap(),
        vec![r(1), r(2), r(3)]
    );
    assert_eq!(s.rejected_postbacks(2).await.unwrap(), vec![r(2), r(3)]);
}

pub async fn totals_count_everything(s: &dyn Store) {
    assert_eq!(s.totals(0).await.unwrap(), Totals::default());
    commit(
        s,
        Commit {
            contacts: vec![
                waking(new_contact("a"), 10),
                waking(new_contact("b"), 20),
                new_contact("c"),
            ],
            events: vec![event(Some("e1"), "a", 1), event(None, "b", 1)],
            outbox: vec![
                outbox("a", "m1", 1),
                outbox("b", "m2", 1),
                outbox("c", "m3", 1),
            ],
            ..Commit::default()
        },
    )
    .await;
    let rows = s.outbox_list(None, 10).await.unwrap();
    s.outbox_dead(rows[0].id, "gone").await.unwrap();
    s.outbox_delivered(rows[1].id).await.unwrap();
    let t = s.totals(15).await.unwrap();
    assert_eq!(
        t,
        Totals {
            contacts: 3,
            events: 2,
            outbox_pending: 1,
            outbox_dead: 1,
            outbox_delivered: 1,
            due: 1
        }
    );
    assert_eq!(s.totals(20).await.unwrap().due, 2);
}
