//! The raw SQLite limits of the shapes bench: what the engine wrote for one
//! contact in a phase, read back from its database ([`Shape`]), written
//! again for every contact of the phase with plain sqlx into the engine's
//! own schema: the same batch size, one `BEGIN IMMEDIATE` transaction per
//! batch, multi-row statements of 128 rows, WAL, `synchronous=NORMAL`.
//! Where the engine must find its contacts first, the raw writer reads them
//! too, one statement per 128 ([`Lookup`]): by `email` through the
//! unique-key table, or the due page by wake time.

use crate::support::{Q, T0, insert, multi_row, reader, replace_bytes};
use sqlx::{AssertSqlSafe, SqlitePool};
use std::path::Path;
use std::time::{Duration, Instant};

/// Where a phase's rows begin: the last event and journal `seq` and outbox
/// `id` before it.
pub struct Mark {
    event: i64,
    journal: i64,
    outbox: i64,
}

impl Mark {
    pub async fn read(db: &Path) -> Mark {
        let pool = reader(db).await;
        let max = |table: &str, col: &str| format!("SELECT coalesce(max({col}), 0) FROM {table}");
        let mut last = Vec::new();
        for (table, col) in [("events", "seq"), ("journal", "seq"), ("outbox", "id")] {
            let n: i64 = sqlx::query_scalar(AssertSqlSafe(max(table, col)))
                .fetch_one(&pool)
                .await
                .unwrap();
            last.push(n);
        }
        pool.close().await;
        Mark {
            event: last[0],
            journal: last[1],
            outbox: last[2],
        }
    }
}

/// The contact row as the engine left it.
#[derive(sqlx::FromRow)]
struct ContactRow {
    state: Vec<u8>,
    version: i64,
    next_wake: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

/// An outbox row the phase wrote.
#[derive(sqlx::FromRow)]
pub struct OutboxRow {
    flow: String,
    step: String,
    kind: String,
    payload: String,
    idem_key: String,
    status: String,
    next_attempt_at: i64,
}

/// What the engine wrote for one contact (named `token` in its rows) in one
/// phase.
pub struct Shape {
    token: String,
    contact: ContactRow,
    /// (field, value) of its unique keys, where the phase created them.
    keys: Vec<(String, String)>,
    /// (key, name, payload) of its events.
    events: Vec<(String, String, String)>,
    /// The `lines` of its journal rows.
    journal: Vec<(String,)>,
    pub outbox: Vec<OutboxRow>,
}

/// The rows `sql` selects for `contact` after `after` (its second
/// parameter).
async fn rows<T>(pool: &SqlitePool, sql: &'static str, contact: &str, after: i64) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
{
    sqlx::query_as(sql)
        .bind(contact)
        .bind(after)
        .fetch_all(pool)
        .await
        .unwrap()
}

impl Shape {
    /// The rows of contact `token` after `mark`; its key rows with `keys`.
    pub async fn read(db: &Path, token: &str, mark: &Mark, keys: bool) -> Shape {
        let pool = reader(db).await;
        let contact = sqlx::query_as(
            "SELECT CAST(state AS BLOB) AS state, version, next_wake, created_at, updated_at \
             FROM contacts WHERE id = ?",
        )
        .bind(token)
        .fetch_one(&pool)
        .await
        .unwrap();
        let keys = if keys {
            sqlx::query_as("SELECT field, value FROM contact_keys WHERE contact = ?")
                .bind(token)
                .fetch_all(&pool)
                .await
                .unwrap()
        } else {
            Vec::new()
        };
        let events =
            "SELECT key, name, payload FROM events WHERE contact = ? AND seq > ? ORDER BY seq";
        let journal = "SELECT lines FROM journal WHERE contact = ? AND seq > ? ORDER BY seq";
        let outbox = "SELECT flow, step, kind, payload, idem_key, status, next_attempt_at \
                      FROM outbox WHERE contact = ? AND id > ? ORDER BY id";
        let shape = Shape {
            token: token.into(),
            contact,
            keys,
            events: rows(&pool, events, token, mark.event).await,
            journal: rows(&pool, journal, token, mark.journal).await,
            outbox: rows(&pool, outbox, token, mark.outbox).await,
        };
        pool.close().await;
        shape
    }

    pub fn next_wake(&self) -> Option<i64> {
        self.contact.next_wake
    }

    /// One line saying what the raw limit writes per contact.
    pub fn describe(&self, what: &str) -> String {
        format!(
            "{what}: contact upsert (state {} B), {} key row(s) {:?}, {} event row(s), \
             {} journal row(s), {} outbox row(s)",
            self.contact.state.len(),
            self.keys.len(),
            self.keys.iter().map(|k| &k.0).collect::<Vec<_>>(),
            self.events.len(),
            self.journal.len(),
            self.outbox.len()
        )
    }

    /// `text` with the sample's token replaced by `id`'s.
    fn text(&self, text: &str, id: &str) -> String {
        crate::support::replace_text(text, &self.token, id)
    }
}

/// How the raw writer finds the contacts of a batch.
#[derive(Clone, Copy)]
pub enum Lookup {
    /// New contacts: their ids are known.
    None,
    /// By `email` through `contact_keys`, reading their states.
    Email,
    /// The next page of contacts due at this instant, with their states.
    Due(i64),
}

/// Write `shape`'s rows for contacts `{prefix}0000000…` (`n` of them) in
/// batches of `batch`; the total time and each batch's.
pub async fn write_all(
    pool: &SqlitePool,
    shape: &Shape,
    prefix: &str,
    n: usize,
    batch: usize,
    lookup: Lookup,
) -> (Duration, Vec<Duration>) {
    if let Lookup::Due(at) = lookup {
        assert!(
            shape.next_wake().is_none_or(|w| w > at),
            "a timer re-arms as due"
        );
    }
    let mut latencies = Vec::with_capacity(n / batch);
    let started = Instant::now();
    for b in 0..n / batch {
        let began = Instant::now();
        let tokens: Vec<String> = (b * batch..(b + 1) * batch)
            .map(|i| crate::token(prefix, i))
            .collect();
        let ids = find(pool, lookup, tokens, batch).await;
        write_batch(pool, shape, &ids).await;
        latencies.push(began.elapsed());
    }
    (started.elapsed(), latencies)
}

/// The ids of the batch's contacts, read as `lookup` says.
async fn find(pool: &SqlitePool, lookup: Lookup, tokens: Vec<String>, batch: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(batch);
    match lookup {
        Lookup::None => return tokens,
        Lookup::Email => {
            for chunk in tokens.chunks(crate::support::CHUNK) {
                let sql = multi_row(
                    "SELECT c.id, CAST(c.state AS BLOB) FROM contact_keys k JOIN contacts c \
                     ON c.id = k.contact WHERE k.field = 'email' AND k.value IN (",
                    "?",
                    chunk.len(),
                    ")",
                );
                let mut q = sqlx::query_as::<_, (String, Vec<u8>)>(AssertSqlSafe(sql));
                for t in chunk {
                    q = q.bind(format!("{t}@bench.example"));
                }
                ids.extend(q.fetch_all(pool).await.unwrap().into_iter().map(|r| r.0));
            }
        }
        Lookup::Due(at) => {
            let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
                "SELECT id, CAST(state AS BLOB) FROM contacts \
                 WHERE next_wake IS NOT NULL AND next_wake <= ? ORDER BY next_wake, id LIMIT ?",
            )
            .bind(at)
            .bind(batch as i64)
            .fetch_all(pool)
            .await
            .unwrap();
            ids.extend(rows.into_iter().map(|r| r.0));
        }
    }
    assert_eq!(ids.len(), batch, "the raw lookup found every contact");
    ids
}

type Sql = (&'static str, &'static str, &'static str);

const UPSERT: Sql = (
    "INSERT INTO contacts (id, state, version, next_wake, created_at, updated_at) VALUES ",
    "(?, ?, ?, ?, ?, ?)",
    " ON CONFLICT (id) DO UPDATE SET state = excluded.state, version = excluded.version, \
     next_wake = excluded.next_wake, updated_at = excluded.updated_at",
);
const KEY: Sql = (
    "INSERT INTO contact_keys (field, value, contact) VALUES ",
    "(?, ?, ?)",
    "",
);
const EVENT: Sql = (
    "INSERT INTO events (key, contact, name, payload, received_at) VALUES ",
    "(?, ?, ?, ?, ?)",
    "",
);
const JOURNAL: Sql = ("INSERT INTO journal (contact, lines) VALUES ", "(?, ?)", "");
const OUTBOX: Sql = (
    "INSERT INTO outbox (contact, flow, step, kind, payload, idem_key, status, \
     next_attempt_at, created_at) VALUES ",
    "(?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "",
);

/// One transaction writing `shape`'s rows for each of `ids`.
async fn write_batch(pool: &SqlitePool, shape: &Shape, ids: &[String]) {
    let n = ids.len();
    let c = &shape.contact;
    let states: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| replace_bytes(&c.state, shape.token.as_bytes(), id.as_bytes()))
        .collect();
    let each = |text: &str| -> Vec<String> { ids.iter().map(|id| shape.text(text, id)).collect() };
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
    insert(&mut tx, n, UPSERT, |q: Q<'_>, i| {
        let q = q.bind(&ids[i]).bind(&states[i]).bind(c.version);
        q.bind(c.next_wake).bind(c.created_at).bind(c.updated_at)
    })
    .await;
    for (field, value) in &shape.keys {
        let values = each(value);
        insert(&mut tx, n, KEY, |q, i| {
            q.bind(field).bind(&values[i]).bind(&ids[i])
        })
        .await;
    }
    for (key, name, payload) in &shape.events {
        let (keys, payloads) = (each(key), each(payload));
        insert(&mut tx, n, EVENT, |q, i| {
            let q = q.bind(&keys[i]).bind(&ids[i]).bind(name);
            q.bind(&payloads[i]).bind(T0)
        })
        .await;
    }
    for (lines,) in &shape.journal {
        let lines = each(lines);
        insert(&mut tx, n, JOURNAL, |q, i| q.bind(&ids[i]).bind(&lines[i])).await;
    }
    for o in &shape.outbox {
        let payloads = each(&o.payload);
        let keys: Vec<String> = ids
            .iter()
            .map(|id| format!("{}-{id}", o.idem_key))
            .collect();
        insert(&mut tx, n, OUTBOX, |q, i| {
            let q = q.bind(&ids[i]).bind(&o.flow).bind(&o.step).bind(&o.kind);
            let q = q.bind(&payloads[i]).bind(&keys[i]).bind(&o.status);
            q.bind(o.next_attempt_at).bind(c.updated_at)
        })
        .await;
    }
    tx.commit().await.unwrap();
}
