//! `store::copy` (`nudge migrate-db`): a SQLite store filled through the
//! `Store` trait with every kind of row is copied to a fresh Postgres
//! database, which then reads the same through the trait; a second copy
//! writes nothing and still verifies; a copy stopped after a few pages and
//! run again converges; new rows on the copy take new ids; the wrong
//! direction is refused. Needs `NUDGE_TEST_POSTGRES_URL`: run with
//! `scripts/test -p nudge-runtime --test store_copy`.

#![allow(clippy::unwrap_used)]

// the builders only: the suite functions are `store.rs`'s
#[allow(unused_imports)]
mod store_suite;

use nudge_runtime::store::copy::{self, CopyError, CopyOptions, CopyReport};
use nudge_runtime::store::postgres::PgStore;
use nudge_runtime::store::sqlite::SqliteStore;
use nudge_runtime::store::*;
use nudge_runtime::vm::Status;
use nudge_testkit::pg::PgDatabase;
use store_suite::*;

const CONTACTS: usize = 23;

fn id(i: usize) -> String {
    format!("c{i:02}")
}

/// Contacts with keys (odd ones waiting on a timer), their events and
/// journal lines, outbox rows (one dead, one delivered), two bundles, a
/// paused flow, held and refused postbacks, dedupe keys, a quarantined
/// contact.
async fn fill(url: &str) {
    let s = SqliteStore::open(url).await.unwrap();
    s.migrate().await.unwrap();
    for i in 0..CONTACTS {
        let (c, email) = (id(i), format!("{}@x.test", id(i)));
        let mut w = if i % 2 == 1 {
            due(&c, 1_000 + i as i64)
        } else {
            let ended = enrollment("welcome", "done", Status::Completed, None);
            new_contact_with(state(&c, vec![ended]))
        };
        w = keyed(w, &[("email", &email)]);
        let commit_ = Commit {
            contacts: vec![w],
            events: vec![event(Some(&format!("k-{c}")), &c, 10 + i as i64)],
            outbox: if i < 5 {
                vec![outbox(&c, &format!("o-{c}"), 50)]
            } else {
                vec![]
            },
            journal: vec![
                (c.clone(), line(10, "entered")),
                (c.clone(), line(11, "waited")),
            ],
            ..Commit::default()
        };
        commit(&s, commit_).await;
    }
    settle_outbox(&s).await;
    s.put_bundle("h-one", b"bundle one", 100).await.unwrap();
    s.put_bundle("h-two", b"bundle two", 200).await.unwrap();
    s.set_paused("winback", true).await.unwrap();
    s.set_paused("welcome", false).await.unwrap();
    postbacks(&s).await;
    quarantine(&s, url, &id(4)).await;
}

/// One outbox row delivered, one dead (claimed first).
async fn settle_outbox(s: &dyn Store) {
    let rows = s.claim_outbox(60, 120, 2).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert!(s.outbox_delivered(rows[0].fence()).await.unwrap());
    assert!(
        s.outbox_dead(rows[1].fence(), "550 no such user")
            .await
            .unwrap()
    );
}

async fn postbacks(s: &dyn Store) {
    let held = |key: &str| HeldPostback {
        id: 0,
        source: "ads".into(),
        key_field: "email".into(),
        key_value: key.into(),
        params: params(&[("click_id", key)]),
        received_at: 100,
        until: 5_000,
    };
    let rejected = (
        "ads".to_string(),
        params(&[("x", "1")]),
        "no key".to_string(),
        7,
    );
    let c = Commit {
        held: vec![held("later@x.test"), held("other@x.test")],
        rejected: vec![rejected.clone(), rejected],
        postback_keys: vec![pkey("ads", "t-1", 900), pkey("shop", "t-1", 900)],
        ..Commit::default()
    };
    commit(s, c).await;
}

/// Damages a contact's state, and reads it so the store sets it aside.
async fn quarantine(s: &dyn Store, url: &str, c: &str) {
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    sqlx::query("UPDATE contacts SET state = X'07FF' WHERE id = ?")
        .bind(c)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let got = s.load_contacts(&[c.to_string()]).await;
    assert!(
        matches!(got, Err(StoreError::Quarantined { .. })),
        "{got:?}"
    );
}

/// Everything the trait reads of a filled store, as text to compare.
async fn reads(s: &dyn Store) -> Vec<String> {
    let good: Vec<String> = (0..CONTACTS).filter(|&i| i != 4).map(id).collect();
    let mut outbox = s.outbox_list(None, 100).await.unwrap();
    for r in &mut outbox {
        r.lease = 0; // copied as "never claimed"
    }
    let mut out = vec![
        format!("{:?}", s.load_contacts(&good).await.unwrap()),
        format!("{:?}", s.find_contact("email", "c07@x.test").await.unwrap()),
        format!("{:?}", s.due_contacts(i64::MAX, 100).await.unwrap()),
        format!("{:?}", s.next_wake().await.unwrap()),
        format!("{outbox:?}"),
        format!("{:?}", s.bundles().await.unwrap()),
        format!("{:?}", s.latest_bundle().await.unwrap()),
        format!("{:?}", s.get_bundle("h-one").await.unwrap()),
        format!("{:?}", s.paused().await.unwrap()),
        format!("{:?}", s.flow_counts().await.unwrap()),
        format!("{:?}", s.totals(1_010).await.unwrap()),
        format!("{:?}", s.held_for("email", "later@x.test").await.unwrap()),
        format!("{:?}", s.rejected_postbacks(10).await.unwrap()),
        format!(
            "{:?}",
            s.seen_postbacks(&[("ads".into(), "t-1".into()), ("shop".into(), "t-1".into())])
                .await
                .unwrap()
        ),
        format!(
            "{:?}",
            s.seen_events(&["k-c03".into(), "k-c22".into()])
                .await
                .unwrap()
        ),
        format!("{:?}", s.quarantined(10).await.unwrap()),
    ];
    for i in [0, 7, 22] {
        out.push(format!("{:?}", s.journal(&id(i), 10).await.unwrap()));
    }
    out
}

async fn run(
    from: &str,
    to: &str,
    page: usize,
    max_pages: Option<usize>,
) -> copy::Result<CopyReport> {
    copy::copy(from, to, &CopyOptions { page, max_pages }, &|_| {}).await
}

fn copied(r: &CopyReport, table: &str) -> (u64, u64) {
    let t = r.tables.iter().find(|t| t.table == table).unwrap();
    (t.copied, t.skipped)
}

#[tokio::test]
async fn a_copy_reads_the_same_and_a_second_one_writes_nothing() {
    let (file, db) = (
        TempDb::new("copy-same"),
        PgDatabase::create("copy_same").await,
    );
    fill(&file.url()).await;
    let first = run(&file.url(), db.url(), 7, None).await.unwrap();
    assert!(first.complete);
    assert_eq!(copied(&first, "contacts"), (CONTACTS as u64, 0));
    assert_eq!(copied(&first, "journal"), (CONTACTS as u64, 0));
    assert_eq!(copied(&first, "bundles"), (2, 0));
    let again = run(&file.url(), db.url(), 7, None).await.unwrap();
    assert!(again.complete);
    assert_eq!(copied(&again, "contacts"), (0, CONTACTS as u64));
    assert_eq!(copied(&again, "outbox"), (0, 5));

    let src = SqliteStore::open(&file.url()).await.unwrap();
    let dst = PgStore::open(db.url()).await.unwrap();
    let expected = reads(&src).await;
    assert_eq!(reads(&dst).await, expected);
    assert_eq!(dst.totals(0).await.unwrap().contacts, CONTACTS as i64);
    new_ids_follow_the_copied_ones(&dst).await;
    dst.close().await;
}

/// The daemon's next rows on the copy take ids past the copied ones.
async fn new_ids_follow_the_copied_ones(dst: &dyn Store) {
    let c = Commit {
        contacts: vec![new_contact("fresh")],
        events: vec![event(Some("k-fresh"), "fresh", 5)],
        outbox: vec![outbox("fresh", "o-fresh", 1)],
        journal: vec![("fresh".into(), line(5, "entered"))],
        rejected: vec![("ads".into(), params(&[]), "late".into(), 8)],
        ..Commit::default()
    };
    commit(dst, c).await;
    let rows = dst.outbox_list(None, 100).await.unwrap();
    assert_eq!(rows.last().unwrap().idem_key, "o-fresh");
    assert_eq!(rows.last().unwrap().id, rows[rows.len() - 2].id + 1);
    dst.put_bundle("h-three", b"three", 300).await.unwrap();
    assert_eq!(dst.latest_bundle().await.unwrap().unwrap().0, "h-three");
    assert_eq!(dst.totals(0).await.unwrap().events, CONTACTS as i64 + 1);
}

#[tokio::test]
async fn an_interrupted_copy_run_again_converges() {
    let (file, db) = (
        TempDb::new("copy-resume"),
        PgDatabase::create("copy_resume").await,
    );
    fill(&file.url()).await;
    // 3 pages of 5: contacts 0..15 only, nothing else, no counters
    let part = run(&file.url(), db.url(), 5, Some(3)).await.unwrap();
    assert!(!part.complete);
    assert_eq!(copied(&part, "contacts"), (15, 0));
    assert_eq!(part.tables.len(), 1);
    let rest = run(&file.url(), db.url(), 5, None).await.unwrap();
    assert!(rest.complete);
    assert_eq!(copied(&rest, "contacts"), (CONTACTS as u64 - 15, 15));
    assert_eq!(copied(&rest, "events"), (CONTACTS as u64, 0));

    let src = SqliteStore::open(&file.url()).await.unwrap();
    let dst = PgStore::open(db.url()).await.unwrap();
    assert_eq!(reads(&dst).await, reads(&src).await);
    dst.close().await;
}

#[tokio::test]
async fn a_target_holding_other_rows_is_a_mismatch_naming_the_table() {
    let (file, db) = (
        TempDb::new("copy-mismatch"),
        PgDatabase::create("copy_mismatch").await,
    );
    fill(&file.url()).await;
    let dst = PgStore::open(db.url()).await.unwrap();
    dst.migrate().await.unwrap();
    dst.set_paused("elsewhere", true).await.unwrap();
    let err = run(&file.url(), db.url(), 100, None).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, CopyError::Mismatch(_)), "{text}");
    assert!(
        text.contains("`flows`: 2 rows in the source, 3 in the target"),
        "{text}"
    );
    dst.close().await;
}

#[tokio::test]
async fn only_sqlite_to_postgres_and_no_password_shown() {
    let db = PgDatabase::create("copy_direction").await;
    let err = run(db.url(), "sqlite://x.db", 10, None).await.unwrap_err();
    assert!(matches!(err, CopyError::Direction(_)), "{err}");
    let to = "postgres://u:hunter2@127.0.0.1:1/none";
    let file = TempDb::new("copy-direction");
    let err = run(&file.url(), db.url(), 10, None).await.unwrap_err();
    assert!(matches!(err, CopyError::NoSource(_)), "{err}");
    fill(&file.url()).await;
    let err = run(&file.url(), to, 10, None).await.unwrap_err();
    assert!(matches!(err, CopyError::Target(_)), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let err = run(&file.url(), "mysql://u:hunter2@h/db", 10, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CopyError::Direction(_)) && !err.to_string().contains("hunter2"),
        "{err}"
    );
}
