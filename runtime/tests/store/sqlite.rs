//! The suite on SQLite: each test on a fresh, migrated database in a
//! temporary file (removed afterwards), plus what only a file can show:
//! data survives closing and reopening it, the in-memory URL works, older
//! schemas migrate, the WAL is checkpointed, damaged rows are set aside.

use crate::store_suite::{self, *};
use nudge_runtime::store::sqlite::SqliteStore;
use nudge_runtime::store::{Commit, Store};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A database file under the temp dir, removed (with its WAL files) on drop.
struct TempDb {
    path: PathBuf,
}

impl TempDb {
    fn new(name: &str) -> TempDb {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let file = format!("nudge-store-{}-{n}-{name}.db", std::process::id());
        let db = TempDb {
            path: std::env::temp_dir().join(file),
        };
        db.remove();
        db
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}

async fn fresh(db: &TempDb) -> SqliteStore {
    let s = SqliteStore::open(&db.url()).await.unwrap();
    s.migrate().await.unwrap();
    s
}

macro_rules! on_sqlite {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let db = TempDb::new(stringify!($name));
                let s = fresh(&db).await;
                store_suite::$name(&s).await;
                s.close().await;
            }
        )*
    };
}

suite_list!(on_sqlite);

#[tokio::test]
async fn data_survives_reopening_the_file() {
    let db = TempDb::new("reopen");
    let s = fresh(&db).await;
    let st = state(
        "ann",
        vec![enrollment(
            "welcome",
            "wait",
            nudge_runtime::vm::Status::Active,
            Some(40),
        )],
    );
    let w = waking(keyed(update(st.clone(), 0), &[("email", "ann@x.test")]), 40);
    let w = nudge_runtime::store::ContactWrite {
        expected_version: None,
        ..w
    };
    commit(
        &s,
        Commit {
            contacts: vec![w],
            events: vec![event(Some("k1"), "ann", 5)],
            outbox: vec![outbox("ann", "m1", 5)],
            journal: vec![("ann".into(), line(5, "entered"))],
            ..Commit::default()
        },
    )
    .await;
    s.put_bundle("h1", b"bytes", 5).await.unwrap();
    s.set_paused("welcome", true).await.unwrap();
    s.close().await;
    assert!(db.path.exists());

    let s = SqliteStore::open(&db.url()).await.unwrap();
    s.migrate().await.unwrap();
    let got = s.load_contacts(&["ann".to_string()]).await.unwrap();
    assert_eq!((got[0].state.clone(), got[0].version), (st, 1));
    assert_eq!(
        s.find_contact("email", "ann@x.test").await.unwrap(),
        Some("ann".into())
    );
    assert_eq!(s.seen_events(&["k1".to_string()]).await.unwrap().len(), 1);
    assert_eq!(s.due_contacts(40, 10).await.unwrap(), ["ann"]);
    assert_eq!(s.outbox_list(None, 10).await.unwrap()[0].idem_key, "m1");
    assert_eq!(
        s.journal("ann", 10).await.unwrap(),
        vec![line(5, "entered")]
    );
    assert_eq!(s.get_bundle("h1").await.unwrap(), Some(b"bytes".to_vec()));
    assert!(s.paused().await.unwrap().contains("welcome"));
    assert_eq!(s.flow_counts().await.unwrap()[0].active, 1);
    s.close().await;
}

#[tokio::test]
async fn in_memory_database_keeps_data_across_calls() {
    let s = SqliteStore::open("sqlite::memory:").await.unwrap();
    s.migrate().await.unwrap();
    store_suite::commit_round_trips_a_contact(&s).await;
    store_suite::claim_outbox_leases_rows(&s).await;
}

#[tokio::test]
async fn a_bad_url_is_an_error() {
    let err = SqliteStore::open("postgres://nowhere/db")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("postgres://nowhere/db"), "{err}");
}

/// A pool on `db` migrated to its first `n` migrations only, as an older
/// release left it.
async fn at_migration(db: &TempDb, n: usize) -> sqlx::SqlitePool {
    let mut first = sqlx::migrate!("./migrations/sqlite");
    first.migrations = std::borrow::Cow::Owned(first.migrations[..n].to_vec());
    let pool = sqlx::SqlitePool::connect(&db.url()).await.unwrap();
    first.run(&pool).await.unwrap();
    pool
}

/// A database made before the flow counters (migration 0001, one row per
/// enrollment) keeps its counts when migrated.
#[tokio::test]
async fn enrollment_rows_become_flow_counters() {
    let db = TempDb::new("counters");
    let s = SqliteStore::open(&db.url()).await.unwrap();
    let pool = at_migration(&db, 1).await;
    for (contact, seq, status, step) in [
        ("ann", 0, "active", "wait"),
        ("ann", 1, "completed", "end"),
        ("bob", 0, "active", "wait"),
    ] {
        sqlx::query(
            "INSERT INTO enrollments (contact, seq, flow, status, step, version, entered_at) \
             VALUES (?, ?, 'welcome', ?, ?, 'v1', 1)",
        )
        .bind(contact)
        .bind(seq)
        .bind(status)
        .bind(step)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
    let pool = at_migration(&db, 8).await;
    let rows: Vec<(String, String, String, i64)> =
        sqlx::query_as("SELECT flow, status, step, n FROM flow_counts ORDER BY status")
            .fetch_all(&pool)
            .await
            .unwrap();
    let row = |status: &str, step: &str, n| ("welcome".into(), status.into(), step.into(), n);
    assert_eq!(rows, [row("active", "wait", 2), row("completed", "end", 1)]);
    pool.close().await;
    s.close().await;
}

/// Migration 0009 keys the counters by version: the active ones are
/// rebuilt from the stored states (each enrollment's own version), the
/// ended ones copied under `''`.
#[tokio::test]
async fn active_counters_get_their_versions_from_the_states() {
    use nudge_runtime::vm::Status;
    use std::collections::BTreeMap;
    let db = TempDb::new("versions");
    let s = SqliteStore::open(&db.url()).await.unwrap();
    let pool = at_migration(&db, 8).await;
    let mut old = enrollment("welcome", "wait", Status::Active, Some(5));
    old.version = "v0".into();
    let states = [
        state(
            "ann",
            vec![enrollment("welcome", "wait", Status::Active, Some(5))],
        ),
        state("bob", vec![old]),
        state(
            "cat",
            vec![enrollment("welcome", "end", Status::Completed, None)],
        ),
    ];
    for st in &states {
        sqlx::query(
            "INSERT INTO contacts (id, state, version, next_wake, created_at, updated_at) \
             VALUES (?, ?, 1, NULL, 1, 1)",
        )
        .bind(&st.contact.id)
        .bind(nudge_runtime::store::doc::encode(st).unwrap())
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO flow_counts (flow, status, step, n) VALUES \
         ('welcome', 'active', 'wait', 2), ('welcome', 'completed', 'end', 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO bundles (hash, bytes, deployed_at) VALUES ('v1', x'00', 1)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    s.migrate().await.unwrap();
    let on = |v: &str| (v.to_string(), BTreeMap::from([("wait".to_string(), 1)]));
    assert_eq!(
        s.flow_counts().await.unwrap(),
        vec![nudge_runtime::store::FlowCounts {
            flow: "welcome".into(),
            enrolled: 3,
            active: 2,
            completed: 1,
            steps: [("wait".to_string(), 2)].into(),
            versions: BTreeMap::from([on("v0"), on("v1")]),
            ..Default::default()
        }]
    );
    // a commit moves Bob from his version's row, not the latest's
    let mut bob = states[1].clone();
    bob.enrollments[0].status = Status::Exited;
    let write = nudge_runtime::store::ContactWrite {
        keys: Vec::new(),
        state: bob,
        expected_version: Some(1),
        next_wake: None,
        loaded: None,
    };
    s.commit(&Commit {
        contacts: vec![write],
        ..Commit::default()
    })
    .await
    .unwrap();
    let fc = s.flow_counts().await.unwrap();
    assert_eq!(fc[0].versions, BTreeMap::from([on("v1")]));
    assert_eq!((fc[0].active, fc[0].exited), (1, 1));
    s.close().await;
}

/// The WAL is copied into the database file in the background, long before
/// the writer's own threshold (64 MiB of WAL) would do it.
#[tokio::test]
async fn the_wal_is_checkpointed_in_the_background() {
    let db = TempDb::new("checkpoint");
    let s = fresh(&db).await;
    let size = || std::fs::metadata(&db.path).map_or(0, |m| m.len());
    let before = size();
    let contacts = (0..300)
        .map(|i| new_contact_with(state(&format!("c{i:04}"), Vec::new())))
        .collect();
    commit(
        &s,
        Commit {
            contacts,
            ..Commit::default()
        },
    )
    .await;
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while size() <= before && std::time::Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        size() > before,
        "the database file did not grow from {before} bytes: nothing checkpointed"
    );
    s.close().await;
}

/// A database from before the lean rows (migrations 0001–0002: contacts with
/// JSON states in a rowid table, one journal row per line) reads the same
/// once migrated, its running totals count what it held, and its contacts
/// can be written again.
#[tokio::test]
async fn json_states_and_line_journals_survive_the_lean_rows() {
    let db = TempDb::new("lean");
    let s = SqliteStore::open(&db.url()).await.unwrap();
    let pool = at_migration(&db, 2).await;
    let st = state("ann", Vec::new());
    sqlx::query(
        "INSERT INTO contacts (id, state, version, next_wake, created_at, updated_at) \
         VALUES ('ann', ?, 3, 40, 1, 1)",
    )
    .bind(serde_json::to_string(&st).unwrap())
    .execute(&pool)
    .await
    .unwrap();
    for (at, what) in [(5, "entered"), (6, "waited")] {
        sqlx::query(
            "INSERT INTO journal (contact, at, flow, step, what) VALUES ('ann', ?, 'f', 's', ?)",
        )
        .bind(at)
        .bind(what)
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO events (key, contact, name, payload, received_at) \
         VALUES ('k1', 'ann', 'signup', '{}', 5)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    s.migrate().await.unwrap();
    let t = s.totals(0).await.unwrap();
    assert_eq!(
        (t.contacts, t.events),
        (1, 1),
        "the running totals start right"
    );
    let got = s.load_contacts(&["ann".to_string()]).await.unwrap();
    assert_eq!((got[0].state.clone(), got[0].version), (st.clone(), 3));
    assert_eq!(s.due_contacts(40, 10).await.unwrap(), ["ann"]);
    let journey = s.journal("ann", 10).await.unwrap();
    assert_eq!(
        journey.iter().map(|l| l.what.as_str()).collect::<Vec<_>>(),
        ["entered", "waited"]
    );
    assert_eq!(journey[0].at, 5);
    commit(
        &s,
        Commit {
            contacts: vec![update(st, 3)],
            journal: vec![("ann".into(), line(7, "moved"))],
            ..Commit::default()
        },
    )
    .await;
    assert_eq!(
        s.journal("ann", 2)
            .await
            .unwrap()
            .iter()
            .map(|l| l.what.as_str())
            .collect::<Vec<_>>(),
        ["waited", "moved"]
    );
    s.close().await;
}

/// An outbox row whose stored payload is damaged (not JSON) does not block
/// the claims.
#[tokio::test]
async fn a_damaged_outbox_payload_is_dead_lettered_not_a_blocked_outbox() {
    let db = TempDb::new("damaged");
    let s = fresh(&db).await;
    damaged_outbox_rows(&s).await;
    let pool = sqlx::SqlitePool::connect(&db.url()).await.unwrap();
    sqlx::query(DAMAGE_OUTBOX).execute(&pool).await.unwrap();
    pool.close().await;
    a_damaged_outbox_payload_is_dead_lettered(&s).await;
    s.close().await;
}

/// One daemon per file: due pages are read, not claimed.
#[tokio::test]
async fn due_pages_are_not_claimed() {
    let db = TempDb::new("no-claims");
    let s = fresh(&db).await;
    assert_eq!(s.due_lease(), None);
    put(&s, vec![due("ann", 5)]).await;
    for _ in 0..2 {
        assert_eq!(s.due_after(30, None, 10).await.unwrap().len(), 1);
    }
    s.close().await;
}
