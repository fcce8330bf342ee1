//! Journals, bundles, pause flags, flow counts, postbacks and totals.

use super::*;

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
    assert_eq!(s.latest_bundle().await.unwrap(), None);
    s.put_bundle("h1", b"\x00bundle one\xff", 10).await.unwrap();
    assert_eq!(
        s.get_bundle("h1").await.unwrap().as_deref(),
        Some(&b"\x00bundle one\xff"[..])
    );
    s.put_bundle("h1", b"other bytes", 20).await.unwrap();
    s.put_bundle("h2", b"bundle two", 30).await.unwrap();
    assert_eq!(
        s.get_bundle("h1").await.unwrap().as_deref(),
        Some(&b"other bytes"[..])
    );
    assert_eq!(
        s.get_bundle("h2").await.unwrap().as_deref(),
        Some(&b"bundle two"[..])
    );
    assert_eq!(s.get_bundle("h3").await.unwrap(), None);
    let latest = s.latest_bundle().await.unwrap();
    assert_eq!(latest, Some(("h2".to_string(), b"bundle two".to_vec())));
    // Going back to an earlier bundle makes it the latest; a known hash
    // takes the bytes given (the same version, its lines may differ).
    s.put_bundle("h1", b"lines moved", 40).await.unwrap();
    let latest = s.latest_bundle().await.unwrap();
    assert_eq!(latest, Some(("h1".to_string(), b"lines moved".to_vec())));
    assert_eq!(
        s.bundles().await.unwrap(),
        [("h1".to_string(), 40), ("h2".to_string(), 30)]
    );
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
        versions: BTreeMap::from([(
            "v1".to_string(),
            BTreeMap::from([("wait_day".to_string(), 2), ("hello".to_string(), 1)]),
        )]),
        ..FlowCounts::default()
    };
    assert_eq!(fc, vec![onboard.clone(), welcome]);

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
        versions: BTreeMap::from([(
            "v1".to_string(),
            BTreeMap::from([("nudge".to_string(), 1), ("hello".to_string(), 1)]),
        )]),
        ..FlowCounts::default()
    };
    assert_eq!(fc, vec![onboard, welcome]);
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
    // many keys in one read: what `held_for` gives for each, oldest first
    let key = |f: &str, v: &str| (f.to_string(), v.to_string());
    let many = s
        .held_for_keys(&[
            key("email", "y@x.test"),
            key("phone", "x@x.test"),
            key("email", "x@x.test"),
            key("email", "nobody@x.test"),
            key("email", "y@x.test"),
        ])
        .await
        .unwrap();
    let mut one_by_one = got.clone();
    one_by_one.extend(s.held_for("email", "y@x.test").await.unwrap());
    assert_eq!(many, one_by_one);
    assert!(s.held_for_keys(&[]).await.unwrap().is_empty());

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
        s.held_for_keys(&[key("email", "x@x.test")]).await.unwrap(),
        left
    );
    assert_eq!(
        left.iter().map(|h| h.source.as_str()).collect::<Vec<_>>(),
        ["shop"]
    );

    assert_eq!(
        s.expire_held(500).await.unwrap(),
        0,
        "still held at `until`"
    );
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
    assert!(s.outbox_dead(rows[0].fence(), "gone").await.unwrap());
    assert!(s.outbox_delivered(rows[1].fence()).await.unwrap());
    let t = s.totals(15).await.unwrap();
    assert_eq!(
        t,
        Totals {
            contacts: 3,
            events: 2,
            outbox_pending: 1,
            outbox_dead: 1,
            outbox_delivered: 1,
            due: 1,
            quarantined_contacts: 0,
            quarantined_postbacks: 0,
        }
    );
    assert_eq!(s.totals(20).await.unwrap().due, 2);
}

/// Writes that carry what the caller read ([`Loaded`], as the daemon's
/// applier sends them) move the counters and unique keys by the difference
/// alone: a step moved, a key changed, a key passed from one contact to
/// another in one commit.
pub async fn writes_move_what_the_caller_read(s: &dyn Store) {
    use Status::*;
    let ann = state("ann", vec![enrollment("welcome", "s1", Active, Some(50))]);
    let bob = state("bob", vec![enrollment("welcome", "s1", Active, None)]);
    let ann_keys = [("email", "ann@x.test")];
    commit(
        s,
        Commit {
            contacts: vec![
                keyed(new_contact_with(ann.clone()), &ann_keys),
                new_contact_with(bob.clone()),
            ],
            ..Commit::default()
        },
    )
    .await;
    let read = |st: &ContactState, keys: &[(&str, &str)]| {
        Some(Loaded::of(
            st,
            keys.iter()
                .map(|(f, v)| (f.to_string(), v.to_string()))
                .collect(),
        ))
    };
    // Ann moves on and hands her address to Bob; Bob completes.
    let mut ann2 = ann.clone();
    ann2.enrollments[0].step = "s2".into();
    let mut bob2 = bob.clone();
    bob2.enrollments[0].status = Completed;
    commit(
        s,
        Commit {
            contacts: vec![
                ContactWrite {
                    loaded: read(&ann, &ann_keys),
                    ..keyed(update(ann2.clone(), 1), &[("email", "ann@y.test")])
                },
                ContactWrite {
                    loaded: read(&bob, &[]),
                    ..keyed(update(bob2, 1), &ann_keys)
                },
            ],
            ..Commit::default()
        },
    )
    .await;
    assert_eq!(
        s.find_contact("email", "ann@x.test").await.unwrap(),
        Some("bob".into())
    );
    assert_eq!(
        s.find_contact("email", "ann@y.test").await.unwrap(),
        Some("ann".into())
    );
    let welcome = FlowCounts {
        flow: "welcome".into(),
        enrolled: 2,
        active: 1,
        completed: 1,
        steps: BTreeMap::from([("s2".to_string(), 1)]),
        versions: BTreeMap::from([("v1".to_string(), BTreeMap::from([("s2".to_string(), 1)]))]),
        ..FlowCounts::default()
    };
    assert_eq!(s.flow_counts().await.unwrap(), vec![welcome.clone()]);
    // A write whose version moved since is refused and moves nothing.
    let mut ann3 = ann2.clone();
    ann3.enrollments[0].status = Exited;
    let stale = Commit {
        contacts: vec![ContactWrite {
            loaded: read(&ann, &ann_keys),
            ..update(ann3, 1)
        }],
        ..Commit::default()
    };
    assert!(matches!(
        s.commit(&stale).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.flow_counts().await.unwrap(), vec![welcome]);
    assert_eq!(
        s.find_contact("email", "ann@y.test").await.unwrap(),
        Some("ann".into())
    );
}
