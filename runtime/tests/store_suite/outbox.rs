//! The outbox: idempotent rows, leases, retries, dead letters.

use super::*;

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
    let sent: serde_json::Value =
        serde_json::from_str(outbox("ann", "m1", 10).payload.as_str()).unwrap();
    assert_eq!(rows[0].payload, sent);
    assert_eq!(
        (rows[0].status, rows[0].attempts, rows[0].kind),
        (OutboxStatus::Pending, 0, OutboxKind::Message)
    );
    assert_eq!(rows[1].idem_key, "m2");
}

/// A commit with more outbox rows (8 parameters each) than one multi-row
/// statement takes: every row stored once, a repeated idempotency key in a
/// later chunk left out.
pub async fn a_large_outbox_commit_spans_statements(s: &dyn Store) {
    let mut rows: Vec<NewOutbox> = (0..2_500)
        .map(|i| outbox(&format!("c{i}"), &format!("m{i}"), 10))
        .collect();
    rows.push(outbox("c0", "m0", 20));
    commit(
        s,
        Commit {
            outbox: rows,
            ..Commit::default()
        },
    )
    .await;
    let listed = s.outbox_list(None, 3_000).await.unwrap();
    assert_eq!(listed.len(), 2_500);
    let last = listed.iter().find(|r| r.idem_key == "m2499").unwrap();
    assert_eq!(last.next_attempt_at, 10);
    let first = listed.iter().find(|r| r.idem_key == "m0").unwrap();
    assert_eq!(
        first.next_attempt_at, 10,
        "the repeated key kept its first row"
    );
}

/// The scheduler's walk: pages in (wake, id) order after a cursor, each
/// contact with its stored state and version.
pub async fn due_pages_walk_the_due_set(s: &dyn Store) {
    let mut ann = state("a", vec![]);
    ann.event_counts.insert("signup".into(), 2);
    let contacts = vec![
        waking(new_contact("c"), 300),
        waking(new_contact("b"), 100),
        waking(new_contact("d"), 200),
        new_contact("e"),
        waking(new_contact_with(ann.clone()), 100),
    ];
    commit(
        s,
        Commit {
            contacts,
            ..Commit::default()
        },
    )
    .await;
    let page = |p: Vec<(i64, Versioned)>| -> Vec<(i64, String, i64)> {
        p.into_iter()
            .map(|(w, v)| (w, v.state.contact.id, v.version))
            .collect()
    };
    let first = s.due_after(250, None, 2).await.unwrap();
    assert_eq!(first[0].1.state, ann, "the stored state comes with it");
    assert_eq!(
        page(first),
        vec![(100, "a".into(), 1), (100, "b".into(), 1)]
    );
    let next = s.due_after(250, Some((100, "b")), 2).await.unwrap();
    assert_eq!(page(next), vec![(200, "d".into(), 1)]);
    assert!(
        s.due_after(250, Some((200, "d")), 2)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.due_after(99, None, 10).await.unwrap().is_empty());
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
        assert!(s.outbox_delivered(r.fence()).await.unwrap());
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
    let (f1, f2) = (rows[0].fence(), rows[1].fence());

    assert!(s.outbox_retry(f1, 70, "smtp 451").await.unwrap());
    let r = &s
        .outbox_list(Some(OutboxStatus::Pending), 10)
        .await
        .unwrap()[0];
    assert_eq!(
        (r.id, r.attempts, r.next_attempt_at, r.last_error.as_deref()),
        (m1, 1, 70, Some("smtp 451"))
    );
    let claimed = s.claim_outbox(69, 100, 10).await.unwrap();
    assert!(claimed.iter().all(|r| r.id != m1));
    assert!(
        !s.outbox_retry(f2, 20, "timeout").await.unwrap(),
        "the claim took m2 over: the old token is fenced out"
    );
    let (f2, f3) = (claimed[0].fence(), claimed[1].fence());
    assert!(s.outbox_retry(f2, 20, "timeout").await.unwrap());
    assert!(s.outbox_dead(f2, "smtp 550").await.unwrap());
    assert!(s.outbox_delivered(f3).await.unwrap());
    assert!(
        !s.outbox_delivered(f2).await.unwrap(),
        "a settled row takes no ack"
    );
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

    assert_eq!(
        s.outbox_requeue(m1, 500).await.unwrap(),
        Requeue::NotDead,
        "a pending row is not requeued"
    );
    assert_eq!(s.outbox_requeue(m2, 500).await.unwrap(), Requeue::Pending);
    assert_eq!(s.outbox_requeue(m2, 500).await.unwrap(), Requeue::NotDead);
    assert_eq!(
        s.outbox_requeue(m1 + m2 + 1_000, 500).await.unwrap(),
        Requeue::Missing
    );
    let r = s
        .outbox_list(Some(OutboxStatus::Pending), 10)
        .await
        .unwrap();
    let back = r.iter().find(|r| r.id == m2).unwrap();
    assert_eq!((back.attempts, back.next_attempt_at), (0, 500));
    let claimed = s.claim_outbox(500, 600, 10).await.unwrap();
    assert_eq!(claimed.iter().map(|r| r.id).collect::<Vec<_>>(), [m1, m2]);
}

/// `outbox_record` settles a whole claim at once, pending rows only;
/// `Defer` reschedules without counting an attempt.
pub async fn outbox_record_settles_a_claim(s: &dyn Store) {
    let rows: Vec<_> = (0..5).map(|i| outbox("a", &format!("r{i}"), 10)).collect();
    commit(
        s,
        Commit {
            outbox: rows,
            ..Commit::default()
        },
    )
    .await;
    let claimed = s.claim_outbox(10, 50, 10).await.unwrap();
    let f: Vec<Lease> = claimed.iter().map(OutboxRow::fence).collect();
    let ack = |lease: Lease, attempt: Attempt| Ack { lease, attempt };
    let acks = vec![
        ack(f[0], Attempt::Delivered),
        ack(f[1], Attempt::Delivered),
        ack(
            f[2],
            Attempt::Retry {
                at: 99,
                error: "timeout".into(),
            },
        ),
        ack(
            f[3],
            Attempt::Dead {
                error: "http 404".into(),
            },
        ),
        ack(f[4], Attempt::Defer { at: 77 }),
    ];
    assert_eq!(s.outbox_record(&acks).await.unwrap(), Vec::<Lease>::new());
    // a late second report changes nothing on settled rows
    assert_eq!(
        s.outbox_record(&[ack(f[3], Attempt::Delivered)])
            .await
            .unwrap(),
        vec![f[3]]
    );
    let rows = s.outbox_list(None, 10).await.unwrap();
    let seen: Vec<(OutboxStatus, i64, i64, Option<&str>)> = rows
        .iter()
        .map(|r| {
            (
                r.status,
                r.attempts,
                r.next_attempt_at,
                r.last_error.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (OutboxStatus::Delivered, 1, 50, None),
            (OutboxStatus::Delivered, 1, 50, None),
            (OutboxStatus::Pending, 1, 99, Some("timeout")),
            (OutboxStatus::Dead, 1, 50, Some("http 404")),
            (OutboxStatus::Pending, 0, 77, None),
        ]
    );
    assert!(s.outbox_record(&[]).await.unwrap().is_empty());
}

/// Each claim stamps a new token; once a lease expired and another claim
/// took the row over, the first holder's acks (of every kind) change
/// nothing, and the new holder's do.
pub async fn outbox_acks_are_fenced_by_the_claim(s: &dyn Store) {
    commit(
        s,
        Commit {
            outbox: vec![outbox("a", "m1", 10), outbox("a", "m2", 10)],
            ..Commit::default()
        },
    )
    .await;
    let first = s.claim_outbox(10, 20, 10).await.unwrap();
    assert_eq!(first.len(), 2);
    assert_ne!(first[0].lease, 0, "a claim stamps a token");
    // the lease ends; a second claim takes both rows over
    let second = s.claim_outbox(20, 30, 10).await.unwrap();
    assert_eq!(second.len(), 2);
    assert_ne!(second[0].lease, first[0].lease, "a new claim, a new token");
    let (old1, old2) = (first[0].fence(), first[1].fence());
    assert!(!s.outbox_delivered(old1).await.unwrap());
    assert!(!s.outbox_dead(old2, "late").await.unwrap());
    assert!(!s.outbox_retry(old2, 500, "late").await.unwrap());
    let stale = [
        Ack {
            lease: old1,
            attempt: Attempt::Defer { at: 900 },
        },
        Ack {
            lease: old2,
            attempt: Attempt::Delivered,
        },
    ];
    // lost leases come in no order of contract
    let lost: std::collections::HashSet<Lease> =
        s.outbox_record(&stale).await.unwrap().into_iter().collect();
    assert_eq!(lost, [old1, old2].into());
    let rows = s.outbox_list(None, 10).await.unwrap();
    assert!(
        rows.iter().all(|r| r.status == OutboxStatus::Pending
            && r.attempts == 0
            && r.next_attempt_at == 30),
        "stale acks changed nothing: {rows:?}"
    );
    // a commit carrying a stale ack is refused whole
    let refused = s
        .commit(&Commit {
            outbox: vec![outbox("a", "m3", 10)],
            acks: vec![Ack {
                lease: old1,
                attempt: Attempt::Delivered,
            }],
            ..Commit::default()
        })
        .await;
    assert!(is_conflict(refused), "a lost lease refuses the commit");
    assert_eq!(s.outbox_list(None, 10).await.unwrap().len(), 2);
    // the holder's acks apply, in a commit too
    assert!(s.outbox_delivered(second[0].fence()).await.unwrap());
    commit(
        s,
        Commit {
            acks: vec![Ack {
                lease: second[1].fence(),
                attempt: Attempt::Delivered,
            }],
            ..Commit::default()
        },
    )
    .await;
    assert_eq!(s.totals(0).await.unwrap().outbox_delivered, 2);
}

/// Renewing moves the lease of rows still held, so no other claim takes
/// them; a row taken over (or settled) is reported lost and not moved.
pub async fn outbox_leases_renew(s: &dyn Store) {
    commit(
        s,
        Commit {
            outbox: vec![outbox("a", "m1", 10), outbox("a", "m2", 10)],
            ..Commit::default()
        },
    )
    .await;
    let held = s.claim_outbox(10, 20, 1).await.unwrap();
    let (m1, m2) = (
        held[0].fence(),
        s.claim_outbox(10, 20, 1).await.unwrap()[0].fence(),
    );
    // m2's lease ends and another claim takes it over
    let taken = s.claim_outbox(20, 40, 1).await.unwrap();
    assert_eq!(
        taken[0].id, m1.id,
        "m1 is due again first (same instant, lower id)"
    );
    let m1_new = taken[0].fence();
    let m2_now = s.claim_outbox(20, 40, 1).await.unwrap()[0].fence();
    assert_eq!(
        s.outbox_renew(&[m1, m2], 1_000).await.unwrap(),
        vec![m1, m2],
        "both were taken over"
    );
    assert_eq!(
        s.outbox_renew(&[m1_new, m2_now], 1_000).await.unwrap(),
        Vec::<Lease>::new()
    );
    assert!(
        s.claim_outbox(999, 2_000, 10).await.unwrap().is_empty(),
        "renewed rows stay away until the new lease ends"
    );
    assert!(s.outbox_delivered(m2_now).await.unwrap());
    assert_eq!(
        s.outbox_renew(&[m1_new, m2_now], 3_000).await.unwrap(),
        vec![m2_now],
        "a settled row is not renewed"
    );
    let claimed = s.claim_outbox(1_000, 2_000, 10).await.unwrap();
    assert!(claimed.is_empty(), "m1 renewed to 3000: {claimed:?}");
    let back = s.claim_outbox(3_000, 4_000, 10).await.unwrap();
    assert_eq!(
        back.iter().map(|r| r.id).collect::<Vec<_>>(),
        [m1.id],
        "once the renewed lease ends"
    );
}

/// A claim can leave out the rows of channels at their share (by the
/// payload's `channel`, `url` for none), taking the rows behind them.
pub async fn claim_outbox_except_leaves_channels_out(s: &dyn Store) {
    let on = |channel: &str, idem: &str| {
        let mut o = outbox("a", idem, 10);
        o.payload = JsonText::of(&serde_json::json!({"channel": channel, "text": "x"})).unwrap();
        o
    };
    commit(
        s,
        Commit {
            outbox: vec![
                on("slow", "s1"),
                on("slow", "s2"),
                outbox("a", "u1", 10),
                on("fast", "f1"),
            ],
            ..Commit::default()
        },
    )
    .await;
    let keys =
        |rows: Vec<OutboxRow>| -> Vec<String> { rows.into_iter().map(|r| r.idem_key).collect() };
    let skip = vec!["slow".to_string(), "url".to_string()];
    let got = s.claim_outbox_except(10, 50, 10, &skip).await.unwrap();
    assert_eq!(keys(got), ["f1"]);
    let got = s
        .claim_outbox_except(10, 50, 1, &["fast".into()])
        .await
        .unwrap();
    assert_eq!(keys(got), ["s1"]);
    let got = s.claim_outbox_except(10, 50, 10, &[]).await.unwrap();
    assert_eq!(keys(got), ["s2", "u1"]);
}

/// What damages the stored payload of row `m1` (not JSON any more), on
/// either engine, between [`damaged_outbox_rows`] and
/// [`a_damaged_outbox_payload_is_dead_lettered`].
pub const DAMAGE_OUTBOX: &str = "UPDATE outbox SET payload = '{\"to\": ' WHERE idem_key = 'm1'";

/// Two outbox rows, `m1` to be damaged with [`DAMAGE_OUTBOX`].
pub async fn damaged_outbox_rows(s: &dyn Store) {
    commit(
        s,
        Commit {
            outbox: vec![outbox("ann", "m1", 10), outbox("bob", "m2", 10)],
            ..Commit::default()
        },
    )
    .await;
}

/// A row whose stored payload is damaged does not block the claims: it
/// is dead-lettered with its reason, and the others go out.
pub async fn a_damaged_outbox_payload_is_dead_lettered(s: &dyn Store) {
    let claimed = s.claim_outbox(10, 100, 10).await.unwrap();
    let keys: Vec<&str> = claimed.iter().map(|r| r.idem_key.as_str()).collect();
    assert_eq!(keys, ["m2"]);
    let dead = s.outbox_list(Some(OutboxStatus::Dead), 10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].idem_key, "m1");
    let error = dead[0].last_error.as_deref().unwrap_or("");
    assert!(error.contains("not valid JSON"), "{error}");
}
