//! Postback `dedupe` values (LANGUAGE.md A5): unique per source, written in
//! the same commit as the postback's effect or its holding, forgotten after
//! their `until`.

use super::*;

pub fn pkey(source: &str, key: &str, until: i64) -> PostbackKey {
    PostbackKey {
        source: source.into(),
        key: key.into(),
        received_at: 10,
        until,
    }
}

fn pair(source: &str, key: &str) -> (String, String) {
    (source.to_string(), key.to_string())
}

/// A value recorded before refuses the whole commit holding it again: the
/// contact, the event and the key are all left as they were.
pub async fn postback_keys_are_unique_per_source(s: &dyn Store) {
    commit(
        s,
        Commit {
            contacts: vec![new_contact("ann")],
            events: vec![event(None, "ann", 1)],
            postback_keys: vec![pkey("partner", "t-1", 100)],
            ..Commit::default()
        },
    )
    .await;
    let asked = [
        pair("partner", "t-1"),
        pair("partner", "t-2"),
        pair("ads", "t-1"),
    ];
    assert_eq!(
        s.seen_postbacks(&asked).await.unwrap(),
        BTreeSet::from([pair("partner", "t-1")])
    );

    let retry = Commit {
        contacts: vec![update(state("ann", vec![]), 1)],
        events: vec![event(None, "ann", 2)],
        postback_keys: vec![pkey("partner", "t-1", 200)],
        ..Commit::default()
    };
    assert!(is_conflict(s.commit(&retry).await));
    assert_eq!(version_of(s, "ann").await, Some(1));
    assert_eq!(s.totals(0).await.unwrap().events, 1);

    // the same value twice in one commit (two copies in one group)
    let twice = Commit {
        postback_keys: vec![pkey("partner", "t-3", 100), pkey("partner", "t-3", 100)],
        ..Commit::default()
    };
    assert!(is_conflict(s.commit(&twice).await));
    assert!(
        s.seen_postbacks(&[pair("partner", "t-3")])
            .await
            .unwrap()
            .is_empty()
    );

    // another source may use the same value
    commit(
        s,
        Commit {
            postback_keys: vec![pkey("ads", "t-1", 100)],
            ..Commit::default()
        },
    )
    .await;
    assert_eq!(s.seen_postbacks(&asked).await.unwrap().len(), 2);
}

/// A held postback's value counts: holding its retry is refused, so only
/// one copy waits for the contact.
pub async fn postback_keys_count_while_held(s: &dyn Store) {
    let held = HeldPostback {
        id: 0,
        source: "partner".into(),
        key_field: "clickid".into(),
        key_value: "ck-9".into(),
        params: params(&[("txid", "t-9")]),
        received_at: 10,
        until: 1_000,
    };
    let hold = Commit {
        held: vec![held],
        postback_keys: vec![pkey("partner", "t-9", 5_000)],
        ..Commit::default()
    };
    commit(s, hold.clone()).await;
    assert!(is_conflict(s.commit(&hold).await));
    assert_eq!(s.held_for("clickid", "ck-9").await.unwrap().len(), 1);
}

/// Values are kept up to their `until`, then forgotten: the same value is
/// taken again.
pub async fn postback_keys_expire_after_until(s: &dyn Store) {
    commit(
        s,
        Commit {
            postback_keys: vec![pkey("partner", "old", 100), pkey("partner", "new", 900)],
            ..Commit::default()
        },
    )
    .await;
    assert_eq!(
        s.expire_postback_keys(100).await.unwrap(),
        0,
        "kept at `until`"
    );
    assert_eq!(s.expire_postback_keys(101).await.unwrap(), 1);
    let asked = [pair("partner", "old"), pair("partner", "new")];
    assert_eq!(
        s.seen_postbacks(&asked).await.unwrap(),
        BTreeSet::from([pair("partner", "new")])
    );
    commit(
        s,
        Commit {
            postback_keys: vec![pkey("partner", "old", 2_000)],
            ..Commit::default()
        },
    )
    .await;
    assert_eq!(s.seen_postbacks(&asked).await.unwrap().len(), 2);
}
