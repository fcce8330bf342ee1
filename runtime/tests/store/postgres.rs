//! The suite on PostgreSQL: each test on a fresh database of its own
//! (`nudge_testkit::pg`, dropped afterwards), plus what only a shared
//! server can show: two stores on one database racing on one contact (one
//! commit wins, the other is refused whole), claiming the outbox at once
//! (never the same row), migrating at once; URLs in errors without their
//! password; poison rows set aside; due pages claimed under a lease; held
//! postbacks and new owners of their keys never committing blind.

use crate::store_suite::{self, *};
use nudge_runtime::store::postgres::PgStore;
use nudge_runtime::store::{Commit, Store, StoreError};
use nudge_testkit::pg::PgDatabase;
use std::collections::HashSet;

async fn fresh(db: &PgDatabase) -> PgStore {
    let s = PgStore::open(db.url()).await.unwrap();
    s.migrate().await.unwrap();
    s
}

macro_rules! on_postgres {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let db = PgDatabase::create(stringify!($name)).await;
                let s = fresh(&db).await;
                store_suite::$name(&s).await;
                s.close().await;
            }
        )*
    };
}

suite_list!(on_postgres);

/// A raw connection pool on the test database, to damage rows.
async fn raw(db: &PgDatabase) -> sqlx::PgPool {
    sqlx::PgPool::connect(db.url()).await.unwrap()
}

/// Two stores commit the same contact at the same version at once, round
/// after round: exactly one wins each round, the other gets a conflict
/// and leaves nothing behind (its journal line is not written).
#[tokio::test]
async fn two_stores_racing_on_one_contact_one_wins() {
    let db = PgDatabase::create("race_contact").await;
    let (a, b) = (fresh(&db).await, PgStore::open(db.url()).await.unwrap());
    put(&a, vec![new_contact("ann")]).await;
    let rounds = 25;
    for round in 0..rounds {
        let v = version_of(&a, "ann").await.unwrap();
        let write = |who: &str| Commit {
            contacts: vec![update(state("ann", Vec::new()), v)],
            journal: vec![("ann".into(), line(round, who))],
            ..Commit::default()
        };
        let (ca, cb) = (write("a"), write("b"));
        let (ra, rb) = tokio::join!(a.commit(&ca), b.commit(&cb));
        let won = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "round {round}: {ra:?} / {rb:?}");
        for r in [ra, rb] {
            match r {
                Ok(()) => {}
                Err(StoreError::Conflict(why)) => assert!(why.contains("`ann`"), "{why}"),
                Err(e) => panic!("round {round}: not a conflict: {e:?}"),
            }
        }
    }
    assert_eq!(version_of(&a, "ann").await, Some(1 + rounds));
    let journey = a.journal("ann", 100).await.unwrap();
    assert_eq!(journey.len(), usize::try_from(rounds).unwrap());
    a.close().await;
    b.close().await;
}

/// Two stores claim the outbox at once, in small claims, until it is
/// empty: every row is claimed exactly once.
#[tokio::test]
async fn two_stores_claiming_at_once_never_share_a_row() {
    let db = PgDatabase::create("race_claim").await;
    let (a, b) = (fresh(&db).await, PgStore::open(db.url()).await.unwrap());
    let rows = 300;
    commit(
        &a,
        Commit {
            outbox: (0..rows)
                .map(|i| outbox("ann", &format!("m{i}"), 5))
                .collect(),
            ..Commit::default()
        },
    )
    .await;
    async fn drain(s: &PgStore) -> Vec<i64> {
        let mut got = Vec::new();
        loop {
            let claimed = s.claim_outbox(10, 1_000, 7).await.unwrap();
            if claimed.is_empty() {
                return got;
            }
            got.extend(claimed.iter().map(|r| r.id));
        }
    }
    let (ga, gb) = tokio::join!(drain(&a), drain(&b));
    let all: Vec<i64> = ga.iter().chain(&gb).copied().collect();
    let distinct: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), distinct.len(), "a row was claimed twice");
    assert_eq!(distinct.len(), rows);
    assert!(
        !ga.is_empty() && !gb.is_empty(),
        "{} / {}",
        ga.len(),
        gb.len()
    );
    a.close().await;
    b.close().await;
}

/// Daemons starting together migrate once (sqlx's advisory lock).
#[tokio::test]
async fn stores_migrating_at_once_both_succeed() {
    let db = PgDatabase::create("migrate_race").await;
    let (a, b) = (
        PgStore::open(db.url()).await.unwrap(),
        PgStore::open(db.url()).await.unwrap(),
    );
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.unwrap();
    rb.unwrap();
    store_suite::commit_round_trips_a_contact(&b).await;
    a.close().await;
    b.close().await;
}

/// `store::open` takes both URL schemes and migrates; a server that does
/// not answer is an open error naming the URL without its password.
#[tokio::test]
async fn open_takes_postgres_urls_and_hides_passwords() {
    let db = PgDatabase::create("open_urls").await;
    let s = nudge_runtime::store::open(db.url()).await.unwrap();
    assert_eq!(s.totals(0).await.unwrap().contacts, 0);
    let other = db.url().replacen("postgres://", "postgresql://", 1);
    let s2 = nudge_runtime::store::open(&other).await.unwrap();
    put(s2.as_ref(), vec![new_contact("ann")]).await;
    assert_eq!(s.totals(0).await.unwrap().contacts, 1);

    let o = nudge_runtime::store::postgres::PgOptions {
        connect_timeout: std::time::Duration::from_secs(2),
        ..Default::default()
    };
    let err = PgStore::open_with("postgres://nudge:s3cret@127.0.0.1:1/x", &o)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains("nudge:***@127.0.0.1:1/x"), "{text}");
}

/// A state that cannot be decoded is quarantined: left out of the due
/// pages, named when loaded, counted, and released once repaired.
#[tokio::test]
async fn an_unreadable_state_is_quarantined_and_blocks_no_one() {
    let db = PgDatabase::create("poison").await;
    let s = fresh(&db).await;
    poisoned_contacts(&s).await;
    let pool = raw(&db).await;
    let (good,): (Vec<u8>,) = sqlx::query_as("SELECT state FROM contacts WHERE id = 'bad'")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE contacts SET state = '\\x07ff'::bytea WHERE id = 'bad'")
        .execute(&pool)
        .await
        .unwrap();
    an_unreadable_state_is_set_aside(&s).await;
    assert!(matches!(
        s.release_quarantine("bad").await.unwrap(),
        nudge_runtime::store::Release::Unreadable(_)
    ));

    sqlx::query("UPDATE contacts SET state = $1 WHERE id = 'bad'")
        .bind(good)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        s.release_quarantine("bad").await.unwrap(),
        nudge_runtime::store::Release::Released
    );
    assert_eq!(s.due_contacts(30, 10).await.unwrap(), ["bad", "ann", "bob"]);
    pool.close().await;
    s.close().await;
}

/// An outbox row whose stored payload is damaged (not JSON) does not block
/// the claims.
#[tokio::test]
async fn a_damaged_outbox_payload_is_dead_lettered_not_a_blocked_outbox() {
    let db = PgDatabase::create("damaged").await;
    let s = fresh(&db).await;
    damaged_outbox_rows(&s).await;
    let pool = raw(&db).await;
    sqlx::query(DAMAGE_OUTBOX).execute(&pool).await.unwrap();
    pool.close().await;
    a_damaged_outbox_payload_is_dead_lettered(&s).await;
    s.close().await;
}

/// The conversion pass's page: the rows whose state is not in the current
/// format (tag `0x02`), in id order, quarantined ones left out.
#[tokio::test]
async fn old_format_rows_are_found_by_their_tag() {
    let db = PgDatabase::create("old_format").await;
    let s = fresh(&db).await;
    put(&s, vec![new_contact("now"), new_contact("zed")]).await;
    let pool = raw(&db).await;
    for (id, state) in [
        ("b_old", "\\x01aa"),
        ("a_json", "\\x7b7d"),
        ("q_old", "\\x01bb"),
    ] {
        sqlx::query(
            "INSERT INTO contacts (id, state, version, next_wake, created_at, updated_at) \
             VALUES ($1, $2::bytea, 3, NULL, 1, 1)",
        )
        .bind(id)
        .bind(state)
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query("UPDATE contacts SET state = '\\x01cc'::bytea WHERE id = 'zed'")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO contacts_quarantined (contact, reason, at, next_wake) \
         VALUES ('q_old', 'bad', 1, NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let all = s.old_format_contacts(None, 10).await.unwrap();
    assert_eq!(
        all,
        [
            ("a_json".to_string(), 3),
            ("b_old".into(), 3),
            ("zed".into(), 1)
        ]
    );
    let after = s.old_format_contacts(Some("a_json"), 1).await.unwrap();
    assert_eq!(after, [("b_old".to_string(), 3)]);
    s.close().await;
}

/// Turns the database read-only (or back) for every new session, and ends
/// the sessions open on it, so the store's pool reconnects under the new
/// setting.
async fn set_read_only(db: &PgDatabase, on: bool) {
    let admin = sqlx::PgPool::connect(&nudge_testkit::pg::server_url())
        .await
        .unwrap();
    let set = if on {
        "SET default_transaction_read_only = on"
    } else {
        "RESET default_transaction_read_only"
    };
    let sql = format!("ALTER DATABASE \"{}\" {set}", db.name());
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(db.name())
    .execute(&admin)
    .await
    .unwrap();
    admin.close().await;
}

/// Writes that the server refuses are database errors, not conflicts:
/// counted, readiness answers with the reason while they last, and once
/// the server takes writes again the readiness probe proves it and writes
/// go through.
#[tokio::test]
async fn refused_writes_fail_readiness_until_a_write_goes_through() {
    let db = PgDatabase::create("read_only").await;
    let s = fresh(&db).await;
    put(&s, vec![new_contact("ann")]).await;
    s.ready(1).await.unwrap();
    set_read_only(&db, true).await;
    let mut refused = None;
    // the first use of a connection ended under it may fail on its own
    for _ in 0..3 {
        match s
            .commit(&Commit {
                contacts: vec![new_contact("bob")],
                ..Commit::default()
            })
            .await
        {
            Err(StoreError::Db(e)) if e.to_string().contains("read-only") => {
                refused = Some(e);
                break;
            }
            Err(StoreError::Db(_)) => {}
            other => panic!("not a database error: {other:?}"),
        }
    }
    assert!(refused.is_some(), "the read-only database took the write");
    let health = s.write_health();
    assert!(health.failures >= 1, "{health:?}");
    assert!(
        health
            .failing
            .as_deref()
            .unwrap_or("")
            .contains("read-only")
    );
    assert!(matches!(s.ready(1).await, Err(StoreError::Unwritable(_))));

    set_read_only(&db, false).await;
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let mut ready = s.ready(2).await;
    if ready.is_err() {
        // a connection ended by the switch back fails once
        ready = s.ready(3).await;
    }
    ready.unwrap();
    assert_eq!(s.write_health().failing, None);
    put(&s, vec![new_contact("bob")]).await;
    assert_eq!(s.totals(0).await.unwrap().contacts, 2);
    s.close().await;
}

/// Two stores committing different contacts at once both go through, and
/// the flow counters and totals they share add up: the counter rows move
/// under row locks, never lost.
#[tokio::test]
async fn stores_committing_apart_share_counters_exactly() {
    let db = PgDatabase::create("shared_counters").await;
    let (a, b) = (fresh(&db).await, PgStore::open(db.url()).await.unwrap());
    async fn many(s: &PgStore, who: &str) {
        for round in 0..20 {
            let contacts = (0..25)
                .map(|i| due(&format!("{who}{round:02}_{i:02}"), 50))
                .collect();
            commit(
                s,
                Commit {
                    contacts,
                    events: vec![event(Some(&format!("{who}{round}")), who, 1)],
                    ..Commit::default()
                },
            )
            .await;
        }
    }
    tokio::join!(many(&a, "a"), many(&b, "b"));
    let counts = a.flow_counts().await.unwrap();
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_eq!((counts[0].active, counts[0].steps["wait"]), (1_000, 1_000));
    let t = b.totals(50).await.unwrap();
    assert_eq!((t.contacts, t.events, t.due), (1_000, 40, 1_000));
    a.close().await;
    b.close().await;
}

/// The ids of a due page.
fn page_ids(page: Vec<(i64, nudge_runtime::store::Versioned)>) -> Vec<String> {
    page.into_iter().map(|(_, v)| v.state.contact.id).collect()
}

/// Two daemons' schedulers share the due set: pages claimed at once hold
/// every due contact exactly once; a claimed contact is left out of every
/// page until it is written (then it is due again at once if its wake time
/// says so) or the lease (`PgOptions::timer_lease`) ends, when another
/// store takes it over.
#[tokio::test]
async fn due_pages_are_claimed_under_a_lease() {
    use nudge_runtime::store::postgres::PgOptions;
    let db = PgDatabase::create("due_claims").await;
    let a = fresh(&db).await;
    let lease = PgOptions {
        timer_lease: 60,
        ..PgOptions::default()
    };
    let b = PgStore::open_with(db.url(), &lease).await.unwrap();
    let every: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
    put(&a, every.iter().map(|id| due(id, 5)).collect()).await;

    let (pa, pb) = tokio::join!(a.due_after(30, None, 6), b.due_after(30, None, 6));
    let mut all: Vec<String> = page_ids(pa.unwrap());
    all.extend(page_ids(pb.unwrap()));
    all.sort();
    assert_eq!(all, every, "each due contact claimed once");
    assert!(a.due_after(30, None, 10).await.unwrap().is_empty());
    assert!(b.due_after(89, None, 10).await.unwrap().is_empty());

    // a write clears the claim: still due, it is claimable again at once
    let v = version_of(&a, "c3").await.unwrap();
    let st = a.load_contacts(&["c3".to_string()]).await.unwrap()[0]
        .state
        .clone();
    put(&a, vec![waking(update(st, v), 5)]).await;
    assert_eq!(page_ids(b.due_after(31, None, 10).await.unwrap()), ["c3"]);

    // once the leases end (30 + 60), the rest is taken over
    let mut rest = page_ids(b.due_after(90, None, 10).await.unwrap());
    rest.sort();
    let expected: Vec<String> = every.into_iter().filter(|id| id != "c3").collect();
    assert_eq!(rest, expected);
}

fn held_for_key(value: &str, until: i64) -> nudge_runtime::store::HeldPostback {
    nudge_runtime::store::HeldPostback {
        id: 0,
        source: "partner".into(),
        key_field: "clickid".into(),
        key_value: value.into(),
        params: [("status".to_string(), "dep".to_string())].into(),
        received_at: 10,
        until,
    }
}

/// Two daemons, one holding a postback for a key while the other gives a
/// contact that key, never both commit blind: whichever commits second is
/// refused (and prepared again from the store, where it finds the other's
/// row), so no postback stays held for a contact that exists.
#[tokio::test]
async fn a_hold_and_a_new_owner_of_its_key_never_both_commit() {
    let db = PgDatabase::create("held_race").await;
    let (a, b) = (fresh(&db).await, PgStore::open(db.url()).await.unwrap());

    // the contact first: the hold (read before it) is refused
    put(&a, vec![keyed(new_contact("ann"), &[("clickid", "k1")])]).await;
    let hold = Commit {
        held: vec![held_for_key("k1", 100)],
        ..Commit::default()
    };
    match b.commit(&hold).await {
        Err(StoreError::Conflict(why)) => assert!(why.contains("clickid"), "{why}"),
        other => panic!("a hold for an owned key went through: {other:?}"),
    }
    assert!(a.held_for("clickid", "k1").await.unwrap().is_empty());

    // the hold first: the new owner that read no held postback is refused,
    // and goes through once it releases it
    b.commit(&Commit {
        held: vec![held_for_key("k2", 100)],
        ..Commit::default()
    })
    .await
    .unwrap();
    let bob = |released: Vec<i64>| Commit {
        contacts: vec![keyed(new_contact("bob"), &[("clickid", "k2")])],
        release_checked: vec![("clickid".into(), "k2".into(), 20)],
        released,
        ..Commit::default()
    };
    match a.commit(&bob(Vec::new())).await {
        Err(StoreError::Conflict(why)) => assert!(why.contains("held postback"), "{why}"),
        other => panic!("a held postback was left behind: {other:?}"),
    }
    assert_eq!(version_of(&a, "bob").await, None, "nothing of it written");
    let id = a.held_for("clickid", "k2").await.unwrap()[0].id;
    a.commit(&bob(vec![id])).await.unwrap();
    assert!(a.held_for("clickid", "k2").await.unwrap().is_empty());

    // a held postback released twice (by two daemons) applies once
    b.commit(&Commit {
        held: vec![held_for_key("k3", 100)],
        ..Commit::default()
    })
    .await
    .unwrap();
    let id = a.held_for("clickid", "k3").await.unwrap()[0].id;
    let release = Commit {
        released: vec![id],
        ..Commit::default()
    };
    a.commit(&release).await.unwrap();
    assert!(matches!(
        b.commit(&release).await,
        Err(StoreError::Conflict(_))
    ));
}

/// A claim renewed while its page waits holds past its first end; a
/// contact written since has no claim, and a renewal gives it none.
#[tokio::test]
async fn due_claims_renew_until_written() {
    let db = PgDatabase::create("due_renew").await;
    let (a, b) = (fresh(&db).await, fresh(&db).await);
    assert_eq!(a.due_lease(), Some(60));
    put(&a, vec![due("ann", 5), due("bob", 5)]).await;
    let mut claimed = page_ids(a.due_after(30, None, 10).await.unwrap());
    claimed.sort();
    assert_eq!(claimed, ["ann", "bob"]);
    a.renew_due(&claimed, 150).await.unwrap();
    assert!(
        b.due_after(100, None, 10).await.unwrap().is_empty(),
        "renewed past the first lease (90)"
    );
    // Bob is written: his claim is gone, and renewing does not bring it back
    let v = version_of(&a, "bob").await.unwrap();
    let st = a.load_contacts(&["bob".to_string()]).await.unwrap()[0]
        .state
        .clone();
    put(&a, vec![waking(update(st, v), 5)]).await;
    a.renew_due(&claimed, 200).await.unwrap();
    // Bob is claimable at once (now by `b`, until 160); Ann is held to 200
    assert_eq!(page_ids(b.due_after(100, None, 10).await.unwrap()), ["bob"]);
    assert!(b.due_after(150, None, 10).await.unwrap().is_empty());
    let mut later = page_ids(b.due_after(200, None, 10).await.unwrap());
    later.sort();
    assert_eq!(later, ["ann", "bob"]);
}
