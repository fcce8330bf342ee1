//! How fast the SQLite store takes group commits, against the raw limit.
//!
//! Run with `cargo bench -p nudge-runtime --bench store_sqlite` (release
//! profile). It commits N synthetic inputs (`NUDGE_BENCH_N`, default
//! 100 000) in batches of 500, each input one contact write with a stored
//! state of about 1 KB (two enrollments, one with a timer; `store::doc`), a
//! unique key, one keyed event, one journal line and, for every other input,
//! an outbox row. Two passes: N new contacts, then N updates of them (the
//! daemon's usual case, each write carrying what was read, as the applier
//! sends it). The raw limit is plain sqlx writing the same rows (same state
//! bytes, same batch size, same multi-row statements and pragmas) into bare
//! tables with no checks and no secondary indexes. It prints inputs/s for
//! each and the ratio. The target is ≥ 20 000 inputs/s.
//!
//! Then the real shape (`keyed.rs`): contacts with two unique keys (`email`,
//! `clickid`) and events with data, written as the applier does: N new
//! contacts (their `email` looked up first, as an event naming a contact
//! by `email` does), then N events for those contacts found by `email` (the
//! lookup, the load and the update), once with one query per key and once
//! with one [`Store::find_contacts`] per batch; beside the raw sqlx limit of
//! the same reads and rows.

#![allow(clippy::unwrap_used)]

#[path = "store_sqlite/keyed.rs"]
mod keyed;

use nudge_runtime::compiler::value::Value;
use nudge_runtime::engine::{ContactState, JournalLine};
use nudge_runtime::store::doc;
use nudge_runtime::store::sqlite::SqliteStore;
use nudge_runtime::store::*;
use nudge_runtime::vm::{Contact, Enrollment, PendingWait, Status};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Sqlite};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

const BATCH: usize = 500;

fn main() {
    let n: usize = std::env::var("NUDGE_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run(n));
}

async fn run(n: usize) {
    let states: Vec<ContactState> = (0..n).map(synthetic).collect();
    let sizes: Vec<usize> = states
        .iter()
        .map(|s| doc::encode(s).map(|b| b.len()).unwrap_or(0))
        .collect();
    println!(
        "{n} inputs in batches of {BATCH}; stored state {}–{} bytes (mean {})",
        sizes.iter().min().unwrap_or(&0),
        sizes.iter().max().unwrap_or(&0),
        sizes.iter().sum::<usize>() / n.max(1)
    );

    let path = temp("store");
    let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let created = time_store(&store, &states, 0).await;
    let updated = time_store(&store, &states, 1).await;
    let totals = store.totals(0).await.unwrap();
    assert_eq!(totals.contacts, n as i64);
    assert_eq!(totals.events, 2 * n as i64);
    store.close().await;
    remove(&path);

    let path = temp("raw");
    let raw = time_raw(&path, &states).await;
    remove(&path);

    let keyed = keyed::run(&states).await;

    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "store, new contacts:  {:>9.0} inputs/s ({:.2} s)",
        rate(created),
        created.as_secs_f64()
    );
    println!(
        "store, updates:       {:>9.0} inputs/s ({:.2} s)",
        rate(updated),
        updated.as_secs_f64()
    );
    println!(
        "raw sqlx inserts:     {:>9.0} inputs/s ({:.2} s)",
        rate(raw),
        raw.as_secs_f64()
    );
    println!(
        "store / raw: {:.2} (new), {:.2} (updates)",
        rate(created) / rate(raw),
        rate(updated) / rate(raw)
    );
    keyed.print(n);
}

/// A contact state of 1–3 KB of JSON.
fn synthetic(i: usize) -> ContactState {
    let id = format!("contact-{i:07}");
    let mut fields = BTreeMap::new();
    fields.insert(
        "email".to_string(),
        Value::text(format!("{id}@example.test")),
    );
    fields.insert("first_name".to_string(), Value::text("Ada"));
    fields.insert("score".to_string(), Value::Int(i as i64 % 100));
    fields.insert("created_at".to_string(), Value::Time(1_700_000_000));
    fields.insert(
        "tags".to_string(),
        Value::Set(vec![Value::text("lead"), Value::text("newsletter")]),
    );
    fields.insert(
        "note".to_string(),
        Value::text("x".repeat(600 + (i * 7919) % 1400)),
    );
    let enrollment = |flow: &str, status, wake: Option<i64>| Enrollment {
        flow: flow.into(),
        version: "3f9a1c2e8b7d6a5f".into(),
        pc: 12,
        status,
        step: "wait_a_day".into(),
        entered_at: 1_700_000_000,
        event: None,
        locals: BTreeMap::new(),
        wait: wake.map(|at| PendingWait {
            pc: 12,
            timers: vec![(at, 14)],
            call: None,
        }),
        holdout: false,
        failure: None,
    };
    let mut st = ContactState::new(Contact { id, fields });
    st.enrollments = vec![
        enrollment("onboarding", Status::Completed, None),
        enrollment("welcome", Status::Active, Some(1_700_086_400 + i as i64)),
    ];
    st.event_counts.insert("signup".into(), 1);
    st.sent.insert("email".into(), vec![1_700_000_000]);
    st
}

fn commit_for(states: &[ContactState], pass: i64) -> Commit {
    let mut c = Commit::default();
    for (j, st) in states.iter().enumerate() {
        let before = st.clone();
        let mut st = st.clone();
        if pass > 0 {
            st.enrollments[1].step = "second_mail".into();
        }
        let id = st.contact.id.clone();
        let wake = st.next_wake();
        let keys = vec![("email".to_string(), format!("{id}@example.test"))];
        // what the daemon read: the state the previous pass wrote
        let mut read = before;
        if pass > 1 {
            read.enrollments[1].step = "second_mail".into();
        }
        c.contacts.push(ContactWrite {
            loaded: (pass > 0).then(|| Loaded::of(&read, keys.clone())),
            keys,
            state: st,
            expected_version: (pass > 0).then_some(pass),
            next_wake: wake,
        });
        c.events.push(EventRecord {
            key: Some(format!("{id}-{pass}")),
            contact: id.clone(),
            name: "signup".into(),
            payload: serde_json::json!({"plan": "pro", "source": "ads"}),
            received_at: 1_700_000_000 + pass,
        });
        c.journal.push((
            id.clone(),
            JournalLine {
                at: 1_700_000_000,
                flow: "welcome".into(),
                step: "start".into(),
                what: "entered welcome".into(),
            },
        ));
        if j % 2 == 0 {
            c.outbox.push(NewOutbox {
                contact: id.clone(),
                flow: "welcome".into(),
                step: "hello".into(),
                kind: OutboxKind::Message,
                payload: JsonText::of(
                    &serde_json::json!({"to": format!("{id}@example.test"), "subject": "Welcome"}),
                )
                .unwrap(),
                idem_key: format!("{id}-{pass}-hello"),
                not_before: 1_700_000_000,
            });
        }
    }
    c
}

async fn time_store(store: &SqliteStore, states: &[ContactState], pass: i64) -> Duration {
    let mut spent = Duration::ZERO;
    for chunk in states.chunks(BATCH) {
        let c = commit_for(chunk, pass);
        let t = Instant::now();
        store.commit(&c).await.expect("commit");
        spent += t.elapsed();
    }
    spent
}

/// A connection to a new raw database (the store's pragmas) with `tables`.
async fn raw_pool(path: &Path, tables: &[&'static str]) -> sqlx::SqlitePool {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .unwrap()
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .statement_cache_capacity(256);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    for ddl in tables {
        sqlx::query(*ddl).execute(&pool).await.unwrap();
    }
    pool
}

/// The same rows with plain multi-row inserts into bare tables.
async fn time_raw(path: &Path, states: &[ContactState]) -> Duration {
    let pool = raw_pool(
        path,
        &[
            "CREATE TABLE c (id TEXT PRIMARY KEY, state TEXT, version INTEGER, next_wake INTEGER)",
            "CREATE TABLE e (key TEXT, contact TEXT, name TEXT, payload TEXT, at INTEGER)",
            "CREATE TABLE j (contact TEXT, at INTEGER, flow TEXT, step TEXT, what TEXT)",
            "CREATE TABLE o (contact TEXT, idem TEXT, payload TEXT, at INTEGER)",
        ],
    )
    .await;
    let mut spent = Duration::ZERO;
    for chunk in states.chunks(BATCH) {
        let c = commit_for(chunk, 0);
        let t = Instant::now();
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        let rows: Vec<(String, Vec<u8>, Option<i64>)> = c
            .contacts
            .iter()
            .map(|w| {
                let stored = nudge_runtime::store::doc::encode(&w.state).unwrap();
                (w.state.contact.id.clone(), stored, w.next_wake)
            })
            .collect();
        insert(
            &mut tx,
            "INSERT INTO c VALUES ",
            "(?, ?, 1, ?)",
            &rows,
            |q, r| q.bind(r.0.clone()).bind(r.1.clone()).bind(r.2),
        )
        .await;
        insert_events(&mut tx, &c.events).await;
        insert(
            &mut tx,
            "INSERT INTO j VALUES ",
            "(?, ?, ?, ?, ?)",
            &c.journal,
            |q, (id, l)| {
                q.bind(id.clone())
                    .bind(l.at)
                    .bind(l.flow.clone())
                    .bind(l.step.clone())
                    .bind(l.what.clone())
            },
        )
        .await;
        insert_outbox(&mut tx, &c.outbox).await;
        tx.commit().await.unwrap();
        spent += t.elapsed();
    }
    pool.close().await;
    spent
}

/// Event rows into the raw table `e`.
async fn insert_events(tx: &mut sqlx::Transaction<'static, Sqlite>, events: &[EventRecord]) {
    insert(
        tx,
        "INSERT INTO e VALUES ",
        "(?, ?, ?, ?, ?)",
        events,
        |q, e| {
            q.bind(e.key.clone())
                .bind(e.contact.clone())
                .bind(e.name.clone())
                .bind(e.payload.to_string())
                .bind(e.received_at)
        },
    )
    .await;
}

/// Outbox rows into the raw table `o`.
async fn insert_outbox(tx: &mut sqlx::Transaction<'static, Sqlite>, outbox: &[NewOutbox]) {
    insert(
        tx,
        "INSERT INTO o VALUES ",
        "(?, ?, ?, ?)",
        outbox,
        |q, o| {
            q.bind(o.contact.clone())
                .bind(o.idem_key.clone())
                .bind(o.payload.as_str().to_string())
                .bind(o.not_before)
        },
    )
    .await;
}

type Q = sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments>;

/// Multi-row inserts of 128 rows (the rest in one statement).
async fn insert<T>(
    tx: &mut sqlx::Transaction<'static, Sqlite>,
    head: &str,
    row: &str,
    items: &[T],
    bind: impl Fn(Q, &T) -> Q,
) {
    for chunk in items.chunks(128) {
        let values = vec![row; chunk.len()].join(", ");
        let mut q: Q = sqlx::query(AssertSqlSafe(format!("{head}{values}")));
        for item in chunk {
            q = bind(q, item);
        }
        q.execute(&mut **tx).await.unwrap();
    }
}

fn temp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("nudge-bench-{}-{name}.db", std::process::id()));
    remove(&p);
    p
}

fn remove(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}
