//! Storage faults on a real SQLite file: a full disk (simulated with
//! SQLite's `max_page_count` on the writer connection, which fails writes
//! with `SQLITE_FULL` as a full filesystem does) fails writes while it
//! lasts and never after; the writer connection is rolled back or replaced
//! by itself.

#![allow(clippy::unwrap_used)]

#[allow(unused_imports)]
mod store_suite;

use nudge_runtime::compiler::value::Value;
use nudge_runtime::store::sqlite::SqliteStore;
use nudge_runtime::store::{Commit, ContactWrite, HeldPostback, Store, StoreError};
use store_suite::*;

async fn fresh(db: &TempDb) -> SqliteStore {
    let s = SqliteStore::open(&db.url()).await.unwrap();
    s.migrate().await.unwrap();
    s
}

/// A new contact whose state takes about 64 KiB.
fn big(id: &str) -> Commit {
    let mut st = state(id, Vec::new());
    st.contact
        .fields
        .insert("notes".into(), Value::text("x".repeat(64 * 1024)));
    Commit {
        contacts: vec![ContactWrite {
            state: st,
            ..new_contact(id)
        }],
        journal: vec![(id.to_string(), line(1, "created"))],
        ..Commit::default()
    }
}

/// Commits big contacts until the capped file is full; gives the error.
async fn fill(s: &SqliteStore) -> String {
    s.limit_pages(Some(0)).await.unwrap();
    for i in 0..64 {
        if let Err(e) = s.commit(&big(&format!("filler-{i}"))).await {
            return e.to_string();
        }
    }
    panic!("64 commits of 64 KiB fitted in a capped file");
}

#[tokio::test]
async fn a_full_disk_fails_writes_only_while_it_is_full() {
    let db = TempDb::new("faults-full");
    let s = fresh(&db).await;
    commit(&s, big("before")).await;

    let first = fill(&s).await;
    assert!(first.contains("full"), "{first}");
    // still full: the next write fails as full again, not on a
    // transaction left open by the failed one
    let again = fill(&s).await;
    assert!(again.contains("full"), "{again}");
    assert!(!again.contains("transaction depth"), "{again}");
    // not ready while writes fail, with the reason; counted
    let health = s.write_health();
    assert!(health.failures >= 2, "{health:?}");
    assert!(
        health
            .failing
            .as_deref()
            .is_some_and(|r| r.contains("full")),
        "{health:?}"
    );
    match s.ready(1).await {
        Err(StoreError::Unwritable(r)) => assert!(r.contains("full"), "{r}"),
        other => panic!("ready while writes fail: {other:?}"),
    }

    // space again: the next write succeeds, no restart
    s.limit_pages(None).await.unwrap();
    s.commit(&big("after")).await.unwrap();
    assert_eq!(s.write_health().failing, None);
    s.ready(1).await.unwrap();
    let got = s
        .load_contacts(&["before".to_string(), "after".to_string()])
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    // the failed commits left nothing behind
    let fillers: Vec<String> = (0..64).map(|i| format!("filler-{i}")).collect();
    let stored = s.load_contacts(&fillers).await.unwrap();
    assert!(stored.len() < 64, "every filler stored: the cap never held");
    s.close().await;
}

/// After a failed write, readiness probes with a write of its own once the
/// failure is a few seconds old: with nothing else writing, the store
/// becomes ready again by itself.
#[tokio::test]
async fn readiness_probes_writes_after_a_failure() {
    let db = TempDb::new("faults-probe");
    let s = fresh(&db).await;
    fill(&s).await;
    assert!(matches!(s.ready(1).await, Err(StoreError::Unwritable(_))));
    s.limit_pages(None).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    s.ready(2).await.unwrap();
    assert_eq!(s.write_health().failing, None);
    s.close().await;
}

/// A raw connection to the file, beside the store, to damage rows as a
/// disk fault or a bad manual edit would.
async fn raw(db: &TempDb) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&db.url()).await.unwrap()
}

#[tokio::test]
async fn an_unreadable_state_is_quarantined_and_blocks_no_one() {
    let db = TempDb::new("faults-poison");
    let s = fresh(&db).await;
    poisoned_contacts(&s).await;
    let pool = raw(&db).await;
    sqlx::query("UPDATE contacts SET state = X'07FF' WHERE id = 'bad'")
        .execute(&pool)
        .await
        .unwrap();
    an_unreadable_state_is_set_aside(&s).await;
    s.close().await;
}

#[tokio::test]
async fn an_unreadable_held_postback_is_quarantined_and_kept() {
    let db = TempDb::new("faults-held");
    let s = fresh(&db).await;
    let held = |n: &str| HeldPostback {
        id: 0,
        source: "net".into(),
        key_field: "email".into(),
        key_value: "ann@x.test".into(),
        params: params(&[("n", n)]),
        received_at: 1,
        until: 100,
    };
    commit(
        &s,
        Commit {
            held: vec![held("1"), held("2")],
            ..Commit::default()
        },
    )
    .await;
    let pool = raw(&db).await;
    sqlx::query("UPDATE postbacks_held SET params = 'not json' WHERE params LIKE '%\"1\"%'")
        .execute(&pool)
        .await
        .unwrap();

    let got = s.held_for("email", "ann@x.test").await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].params, params(&[("n", "2")]));
    assert_eq!(s.totals(1).await.unwrap().quarantined_postbacks, 1);
    // never expired: kept for inspection
    assert_eq!(s.expire_held(1_000).await.unwrap(), 1);
    let (left,): (i64,) = sqlx::query_as("SELECT count(*) FROM postbacks_held")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 1);
    s.close().await;
}
