//! Contacts, versions, unique keys, events and the scheduler index.

use super::*;

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
            version: 1,
            next_wake: Some(5_000),
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
            version: 2,
            next_wake: None,
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
    assert!(is_conflict(s.commit(&bad).await));

    let got = s.load_contacts(&ids(&["ann", "bob"])).await.unwrap();
    assert_eq!(
        got,
        vec![Versioned {
            state: first.clone(),
            version: 1,
            next_wake: None,
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
        s.commit(&Commit {
            contacts: vec![new_contact("ann")],
            ..Commit::default()
        })
        .await
    ));
    assert!(is_conflict(
        s.commit(&Commit {
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
    let (ca, cb) = (
        Commit {
            contacts: vec![update(state("ann", vec![]), 1)],
            events: vec![event(Some("a"), "ann", 1)],
            ..Commit::default()
        },
        Commit {
            contacts: vec![update(state("ann", vec![]), 1)],
            events: vec![event(Some("b"), "ann", 1)],
            ..Commit::default()
        },
    );
    let a = s.commit(&ca);
    let b = s.commit(&cb);
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
        s.commit(&Commit {
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
        s.commit(&Commit {
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
    assert!(is_conflict(s.commit(&again).await));
    assert_eq!(version_of(s, "ann").await, Some(1));
    assert!(s.seen_events(&ids(&["k2"])).await.unwrap().is_empty());
    // The same key twice in one commit.
    let twice = Commit {
        events: vec![event(Some("k3"), "ann", 4), event(Some("k3"), "ann", 4)],
        ..Commit::default()
    };
    assert!(is_conflict(s.commit(&twice).await));
    assert_eq!(s.totals(0).await.unwrap().events, 3);
}

/// `contact_ids` pages through every contact in id order.
pub async fn contact_ids_page_in_order(s: &dyn Store) {
    let contacts = ["b", "a", "d", "c", "e"]
        .iter()
        .map(|id| new_contact(id))
        .collect();
    commit(
        s,
        Commit {
            contacts,
            ..Commit::default()
        },
    )
    .await;
    assert_eq!(s.contact_ids(None, 2).await.unwrap(), ["a", "b"]);
    assert_eq!(s.contact_ids(Some("b"), 2).await.unwrap(), ["c", "d"]);
    assert_eq!(s.contact_ids(Some("d"), 2).await.unwrap(), ["e"]);
    assert!(s.contact_ids(Some("e"), 2).await.unwrap().is_empty());
}

/// `find_contacts` gives the owners of many values of one field in one
/// read: values no contact owns, values of another field, a value given
/// twice and a key moved by a later commit are all answered as
/// `find_contact` would answer them one by one.
pub async fn find_contacts_by_many_values(s: &dyn Store) {
    let values = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(s.find_contacts("email", &[]).await.unwrap().is_empty());
    let ann = keyed(
        new_contact("ann"),
        &[("email", "ann@x.test"), ("phone", "+1")],
    );
    let bob = keyed(new_contact("bob"), &[("email", "bob@x.test")]);
    // a value of another field only
    let cat = keyed(new_contact("cat"), &[("phone", "cat@x.test")]);
    put(s, vec![ann, bob, cat]).await;
    let asked = values(&[
        "bob@x.test",
        "nobody@x.test",
        "ann@x.test",
        "cat@x.test",
        "bob@x.test",
        "+1",
    ]);
    let got = s.find_contacts("email", &asked).await.unwrap();
    let want: std::collections::HashMap<String, String> = [
        ("ann@x.test".to_string(), "ann".to_string()),
        ("bob@x.test".to_string(), "bob".to_string()),
    ]
    .into();
    assert_eq!(got, want);
    for v in &asked {
        assert_eq!(
            got.get(v).cloned(),
            s.find_contact("email", v).await.unwrap()
        );
    }
    let got = s.find_contacts("phone", &asked).await.unwrap();
    assert_eq!(got.get("+1").map(String::as_str), Some("ann"));
    assert_eq!(got.get("cat@x.test").map(String::as_str), Some("cat"));
    assert_eq!(got.len(), 2);

    // Ann's address moves to a new value: the old one is owned by nobody.
    let ann = keyed(
        update(state("ann", vec![]), 1),
        &[("email", "ann@y.test"), ("phone", "+1")],
    );
    put(s, vec![ann]).await;
    let got = s
        .find_contacts("email", &values(&["ann@x.test", "ann@y.test"]))
        .await
        .unwrap();
    assert_eq!(got, [("ann@y.test".to_string(), "ann".to_string())].into());

    // a page far larger than one statement's parameters
    let many: Vec<ContactWrite> = (0..1_500)
        .map(|i| {
            let mut w = new_contact(&format!("m{i}"));
            w.keys = vec![("email".into(), format!("m{i}@x.test"))];
            w
        })
        .collect();
    put(s, many).await;
    let asked: Vec<String> = (0..2_000).map(|i| format!("m{i}@x.test")).collect();
    let got = s.find_contacts("email", &asked).await.unwrap();
    assert_eq!(got.len(), 1_500);
    assert_eq!(got.get("m1499@x.test").map(String::as_str), Some("m1499"));
    assert!(!got.contains_key("m1500@x.test"));
}

/// A commit of many new contacts of which one claims a key stored for
/// another is refused whole, and the refusal names the owner (not a
/// contact of the commit), wherever in the commit the claimant stands.
pub async fn a_taken_key_in_a_large_commit_names_its_owner(s: &dyn Store) {
    let ann = keyed(new_contact("ann"), &[("email", "ann@x.test")]);
    put(s, vec![ann]).await;
    let many: Vec<ContactWrite> = (0..300)
        .map(|i| {
            let email = if i == 250 {
                "ann@x.test".to_string()
            } else {
                format!("n{i}@x.test")
            };
            keyed(new_contact(&format!("n{i}")), &[("email", &email)])
        })
        .collect();
    let refused = s
        .commit(&Commit {
            contacts: many,
            ..Commit::default()
        })
        .await;
    match refused {
        Err(StoreError::Conflict(why)) => assert!(why.contains("`ann`"), "{why}"),
        other => panic!("not a conflict: {other:?}"),
    }
    assert_eq!(version_of(s, "n0").await, None);
    assert_eq!(s.find_contact("email", "n0@x.test").await.unwrap(), None);
    assert_eq!(
        s.find_contact("email", "ann@x.test").await.unwrap(),
        Some("ann".into())
    );
}

/// Three due contacts; the state of `bad` is to be damaged (the engine's
/// own SQL) before [`an_unreadable_state_is_set_aside`].
pub async fn poisoned_contacts(s: &dyn Store) {
    commit(
        s,
        Commit {
            contacts: vec![due("bad", 5), due("ann", 10), due("bob", 20)],
            ..Commit::default()
        },
    )
    .await;
}

/// The state of `bad` cannot be decoded (tag `0x07`): it is left out of
/// the due pages without holding up the others, marked with the reason
/// and the wake time it had, counted, and named when loaded.
pub async fn an_unreadable_state_is_set_aside(s: &dyn Store) {
    // the first page (of one) skips it and still holds a contact
    let page = s.due_after(30, None, 1).await.unwrap();
    let ids: Vec<&str> = page
        .iter()
        .map(|(_, v)| v.state.contact.id.as_str())
        .collect();
    assert_eq!(ids, ["ann"]);
    // the next page goes on after it (a claiming engine has leased `ann`)
    let page = s.due_after(30, Some((10, "ann")), 10).await.unwrap();
    let ids: Vec<&str> = page
        .iter()
        .map(|(_, v)| v.state.contact.id.as_str())
        .collect();
    assert_eq!(ids, ["bob"]);
    assert_eq!(s.due_contacts(30, 10).await.unwrap(), ["ann", "bob"]);
    assert_eq!(s.next_wake().await.unwrap(), Some(10));

    // marked with the reason and the wake time it had
    let q = s.quarantined(10).await.unwrap();
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!((q[0].contact.as_str(), q[0].next_wake), ("bad", Some(5)));
    assert!(q[0].reason.contains("unknown state format 0x07"), "{q:?}");
    assert_eq!(s.quarantine_of("bad").await.unwrap(), Some(q[0].clone()));
    assert_eq!(s.quarantine_of("ann").await.unwrap(), None);
    let t = s.totals(30).await.unwrap();
    assert_eq!((t.quarantined_contacts, t.due), (1, 2));

    // loading it names it; the others load
    match s
        .load_contacts(&["ann".to_string(), "bad".to_string()])
        .await
    {
        Err(StoreError::Quarantined { contact, reason }) => {
            assert_eq!(contact, "bad");
            assert!(reason.contains("0x07"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.load_contacts(&["ann".to_string()]).await.unwrap().len(),
        1
    );
}
