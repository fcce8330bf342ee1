//! The real shape of the store bench: contacts with two unique keys
//! (`email`, `clickid`), events with data (`source`, `fire_at`, `amount`),
//! each input found by its `email` the way `Applier::prepare` finds it.
//! Timed: the key lookup, the load of the contacts found, and the commit
//! (building the [`Commit`] in memory is not timed: it is the engine's
//! work, not the store's). Three store passes and their raw limit:
//!
//! * **new**: the batch's e-mails looked up (none found), then N new
//!   contacts, each with its 2 key rows, an event, a journal row and an
//!   outbox row;
//! * **existing, one query per key**: N events for the stored contacts,
//!   each e-mail looked up with its own `find_contact` (the path before
//!   `find_contacts`), the contacts loaded, their updates committed;
//! * **existing, one lookup per batch**: the same with one
//!   `find_contacts` per batch.
//!
//! The raw limit is plain sqlx into bare tables (primary keys only): one
//! lookup statement per batch, the same rows, the same batch size and
//! multi-row statements.

use super::{BATCH, insert, insert_events, insert_outbox, raw_pool, remove, temp};
use nudge_runtime::compiler::value::Value;
use nudge_runtime::engine::{ContactState, JournalLine};
use nudge_runtime::store::sqlite::SqliteStore;
use nudge_runtime::store::*;
use sqlx::Sqlite;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// The times of the keyed passes.
pub struct Figures {
    new: Duration,
    existing_each: Duration,
    existing_batched: Duration,
    raw_new: Duration,
    raw_existing: Duration,
}

impl Figures {
    pub fn print(&self, n: usize) {
        let rate = |d: Duration| n as f64 / d.as_secs_f64();
        println!("keyed (2 unique keys, event data, found by `email`):");
        let line = |what: &str, d: Duration, raw: Duration| {
            println!(
                "  {what:<34} {:>9.0} inputs/s ({:.2} s), {:.2} of raw",
                rate(d),
                d.as_secs_f64(),
                rate(d) / rate(raw)
            );
        };
        line("store, new contacts:", self.new, self.raw_new);
        line(
            "store, existing, a query per key:",
            self.existing_each,
            self.raw_existing,
        );
        line(
            "store, existing, a lookup a batch:",
            self.existing_batched,
            self.raw_existing,
        );
        for (what, d) in [
            ("raw, new:", self.raw_new),
            ("raw, existing:", self.raw_existing),
        ] {
            println!(
                "  {what:<34} {:>9.0} inputs/s ({:.2} s)",
                rate(d),
                d.as_secs_f64()
            );
        }
    }
}

pub async fn run(base: &[ContactState]) -> Figures {
    let states: Vec<ContactState> = base.iter().cloned().map(with_clickid).collect();
    let path = temp("keyed");
    let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let new = time_new(&store, &states).await;
    let existing_each = time_existing(&store, &states, 1, false).await;
    let existing_batched = time_existing(&store, &states, 2, true).await;
    let totals = store.totals(0).await.unwrap();
    assert_eq!(totals.contacts, states.len() as i64);
    assert_eq!(totals.events, 3 * states.len() as i64);
    store.close().await;
    remove(&path);

    let path = temp("keyed-raw");
    let (raw_new, raw_existing) = time_raw(&path, &states).await;
    remove(&path);
    Figures {
        new,
        existing_each,
        existing_batched,
        raw_new,
        raw_existing,
    }
}

fn with_clickid(mut st: ContactState) -> ContactState {
    let click = format!("click-{}", st.contact.id);
    st.contact
        .fields
        .insert("clickid".into(), Value::text(click));
    st
}

fn email(st: &ContactState) -> String {
    format!("{}@example.test", st.contact.id)
}

fn keys(st: &ContactState) -> Vec<(String, String)> {
    vec![
        ("clickid".to_string(), format!("click-{}", st.contact.id)),
        ("email".to_string(), email(st)),
    ]
}

/// The event, journal and outbox rows of one input of pass `pass`.
fn rows_of(c: &mut Commit, id: &str, pass: i64) {
    c.events.push(EventRecord {
        key: Some(format!("{id}-k{pass}")),
        contact: id.to_string(),
        name: "signup".into(),
        payload: serde_json::json!({
            "source": "ads", "fire_at": 1_700_086_400 + pass, "amount": "12.50"
        }),
        received_at: 1_700_000_000 + pass,
    });
    c.journal.push((
        id.to_string(),
        JournalLine {
            at: 1_700_000_000,
            flow: "welcome".into(),
            step: "start".into(),
            what: "entered welcome".into(),
        },
    ));
    c.outbox.push(NewOutbox {
        contact: id.to_string(),
        flow: "welcome".into(),
        step: "hello".into(),
        kind: OutboxKind::Message,
        payload: JsonText::of(
            &serde_json::json!({"to": format!("{id}@example.test"), "subject": "Welcome"}),
        )
        .expect("a JSON value serialises"),
        idem_key: format!("{id}-k{pass}-hello"),
        not_before: 1_700_000_000,
    });
}

async fn time_new(store: &SqliteStore, states: &[ContactState]) -> Duration {
    let mut spent = Duration::ZERO;
    for chunk in states.chunks(BATCH) {
        let mut c = Commit::default();
        for st in chunk {
            c.contacts.push(ContactWrite {
                keys: keys(st),
                state: st.clone(),
                expected_version: None,
                next_wake: st.next_wake(),
                loaded: None,
            });
            rows_of(&mut c, &st.contact.id, 0);
        }
        let emails: Vec<String> = chunk.iter().map(email).collect();
        let t = Instant::now();
        let found = store.find_contacts("email", &emails).await.unwrap();
        assert!(found.is_empty());
        store.commit(&c).await.expect("commit");
        spent += t.elapsed();
    }
    spent
}

/// The batch's contacts found by `email`: one query per key, or one for all.
async fn find(store: &SqliteStore, emails: &[String], batched: bool) -> Vec<String> {
    if batched {
        let found = store.find_contacts("email", emails).await.unwrap();
        return emails
            .iter()
            .filter_map(|e| found.get(e).cloned())
            .collect();
    }
    let mut ids = Vec::with_capacity(emails.len());
    for e in emails {
        ids.extend(store.find_contact("email", e).await.unwrap());
    }
    ids
}

async fn time_existing(
    store: &SqliteStore,
    states: &[ContactState],
    pass: i64,
    batched: bool,
) -> Duration {
    let mut spent = Duration::ZERO;
    for chunk in states.chunks(BATCH) {
        let emails: Vec<String> = chunk.iter().map(email).collect();
        let t = Instant::now();
        let ids = find(store, &emails, batched).await;
        assert_eq!(ids.len(), chunk.len());
        let read = store.load_contacts(&ids).await.unwrap();
        let looked = t.elapsed();
        let mut c = Commit::default();
        for v in read {
            let loaded = Loaded::of(&v.state, keys(&v.state));
            let mut st = v.state;
            st.contact
                .fields
                .insert("source".into(), Value::text(format!("ads-{pass}")));
            let id = st.contact.id.clone();
            c.contacts.push(ContactWrite {
                keys: keys(&st),
                next_wake: st.next_wake(),
                state: st,
                expected_version: Some(v.version),
                loaded: Some(loaded),
            });
            rows_of(&mut c, &id, pass);
        }
        let t = Instant::now();
        store.commit(&c).await.expect("commit");
        spent += looked + t.elapsed();
    }
    spent
}

/// The raw limit: new contacts, then updates of them found by `email`.
async fn time_raw(path: &Path, states: &[ContactState]) -> (Duration, Duration) {
    let pool = raw_pool(
        path,
        &[
            "CREATE TABLE c (id TEXT PRIMARY KEY, state BLOB, version INTEGER, next_wake INTEGER)",
            "CREATE TABLE k (field TEXT, value TEXT, contact TEXT, PRIMARY KEY (field, value)) \
             WITHOUT ROWID",
            "CREATE TABLE e (key TEXT, contact TEXT, name TEXT, payload TEXT, at INTEGER)",
            "CREATE TABLE j (contact TEXT, lines TEXT)",
            "CREATE TABLE o (contact TEXT, idem TEXT, payload TEXT, at INTEGER)",
        ],
    )
    .await;
    let mut new = Duration::ZERO;
    let mut existing = Duration::ZERO;
    for chunk in states.chunks(BATCH) {
        let t = Instant::now();
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        let found = raw_lookup(&mut tx, chunk).await;
        assert!(found.is_empty());
        let rows: Vec<(String, Vec<u8>)> = chunk
            .iter()
            .map(|st| (st.contact.id.clone(), doc::encode(st).unwrap()))
            .collect();
        insert(
            &mut tx,
            "INSERT INTO c VALUES ",
            "(?, ?, 1, NULL)",
            &rows,
            |q, r| q.bind(r.0.clone()).bind(r.1.clone()),
        )
        .await;
        let keys: Vec<(String, String, String)> = chunk
            .iter()
            .flat_map(|st| {
                keys(st)
                    .into_iter()
                    .map(|(f, v)| (f, v, st.contact.id.clone()))
            })
            .collect();
        insert(
            &mut tx,
            "INSERT INTO k VALUES ",
            "(?, ?, ?)",
            &keys,
            |q, k| q.bind(k.0.clone()).bind(k.1.clone()).bind(k.2.clone()),
        )
        .await;
        raw_rows(&mut tx, chunk, 0).await;
        tx.commit().await.unwrap();
        new += t.elapsed();
    }
    for chunk in states.chunks(BATCH) {
        let t = Instant::now();
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        let found = raw_lookup(&mut tx, chunk).await;
        let ids: Vec<&String> = found.values().collect();
        let read: Vec<(String, Vec<u8>, i64)> = sqlx::query_as(
            "SELECT c.id, c.state, c.version FROM json_each(?) j JOIN c ON c.id = j.value",
        )
        .bind(serde_json::to_string(&ids).unwrap())
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        assert_eq!(read.len(), chunk.len());
        let rows: Vec<(String, Vec<u8>, i64)> = chunk
            .iter()
            .zip(&read)
            .map(|(st, r)| (r.0.clone(), doc::encode(st).unwrap(), r.2 + 1))
            .collect();
        insert(
            &mut tx,
            "INSERT OR REPLACE INTO c (id, state, version) VALUES ",
            "(?, ?, ?)",
            &rows,
            |q, r| q.bind(r.0.clone()).bind(r.1.clone()).bind(r.2),
        )
        .await;
        raw_rows(&mut tx, chunk, 1).await;
        tx.commit().await.unwrap();
        existing += t.elapsed();
    }
    pool.close().await;
    (new, existing)
}

/// One statement finding the batch's e-mails.
async fn raw_lookup(
    tx: &mut sqlx::Transaction<'static, Sqlite>,
    chunk: &[ContactState],
) -> HashMap<String, String> {
    let emails: Vec<String> = chunk.iter().map(email).collect();
    let (text,): (String,) = sqlx::query_as(
        "SELECT json_group_object(k.value, k.contact) FROM json_each(?) j \
         CROSS JOIN k ON k.field = 'email' AND k.value = j.value",
    )
    .bind(serde_json::to_string(&emails).unwrap())
    .fetch_one(&mut **tx)
    .await
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The event, journal and outbox rows of a batch.
async fn raw_rows(tx: &mut sqlx::Transaction<'static, Sqlite>, chunk: &[ContactState], pass: i64) {
    let mut c = Commit::default();
    for st in chunk {
        rows_of(&mut c, &st.contact.id, pass);
    }
    insert_events(tx, &c.events).await;
    let journal: Vec<(String, String)> = c
        .journal
        .iter()
        .map(|(id, l)| {
            let lines = serde_json::json!([[l.at, l.flow, l.step, l.what]]);
            (id.clone(), lines.to_string())
        })
        .collect();
    insert(tx, "INSERT INTO j VALUES ", "(?, ?)", &journal, |q, r| {
        q.bind(r.0.clone()).bind(r.1.clone())
    })
    .await;
    insert_outbox(tx, &c.outbox).await;
}
