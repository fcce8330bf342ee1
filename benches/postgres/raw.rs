//! The raw PostgreSQL limit of the postgres bench: what the engine wrote for
//! one contact in the ingest phase, read back from its database
//! ([`Shape`]), written again for N contacts with plain sqlx into a fresh
//! database of the same schema (the engine's migrations): one transaction
//! per batch, one `UNNEST` statement per table, the counters moved once per
//! batch, several connections at once.

use crate::support::replace_bytes;
use nudge_testkit::pg::PgDatabase;
use sqlx::PgPool;
use std::time::{Duration, Instant};

/// What the engine wrote for one contact (named `token` in its rows).
#[derive(Clone)]
pub struct Shape {
    token: String,
    state: Vec<u8>,
    next_wake: Option<i64>,
    keys: Vec<(String, String)>,
    events: Vec<(Option<String>, String, String)>,
    journal: Vec<String>,
}

impl Shape {
    pub async fn read(url: &str, token: &str) -> Shape {
        let pool = PgPool::connect(url).await.unwrap();
        let (state, next_wake): (Vec<u8>, Option<i64>) =
            sqlx::query_as("SELECT state, next_wake FROM contacts WHERE id = $1")
                .bind(token)
                .fetch_one(&pool)
                .await
                .unwrap();
        let keys = sqlx::query_as("SELECT field, value FROM contact_keys WHERE contact = $1")
            .bind(token)
            .fetch_all(&pool)
            .await
            .unwrap();
        let events = sqlx::query_as("SELECT key, name, payload FROM events WHERE contact = $1")
            .bind(token)
            .fetch_all(&pool)
            .await
            .unwrap();
        let journal: Vec<(String,)> =
            sqlx::query_as("SELECT lines FROM journal WHERE contact = $1")
                .bind(token)
                .fetch_all(&pool)
                .await
                .unwrap();
        pool.close().await;
        Shape {
            token: token.into(),
            state,
            next_wake,
            keys,
            events,
            journal: journal.into_iter().map(|(l,)| l).collect(),
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "raw limit per event: contact (state {} B), {} key rows, {} event row(s), {} journal row(s), counters",
            self.state.len(),
            self.keys.len(),
            self.events.len(),
            self.journal.len()
        )
    }

    fn text(&self, text: &str, id: &str) -> String {
        crate::support::replace_text(text, &self.token, id)
    }
}

/// Writes `shape`'s rows for `n` contacts (`r0000000…`) into `db` (migrated
/// first) in batches of `batch` over `conns` connections; the time taken.
pub async fn write_all(
    db: &PgDatabase,
    shape: &Shape,
    n: usize,
    batch: usize,
    conns: usize,
) -> Duration {
    nudge_runtime::store::open(db.url()).await.unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(u32::try_from(conns).unwrap())
        .connect(db.url())
        .await
        .unwrap();
    let batches: Vec<Vec<String>> = (0..n / batch)
        .map(|b| {
            (b * batch..(b + 1) * batch)
                .map(|i| crate::token("r", i))
                .collect()
        })
        .collect();
    let shape = std::sync::Arc::new(shape.clone());
    let started = Instant::now();
    let mut lanes: Vec<Vec<Vec<String>>> = (0..conns).map(|_| Vec::new()).collect();
    for (i, b) in batches.into_iter().enumerate() {
        lanes[i % conns].push(b);
    }
    let tasks: Vec<_> = lanes
        .into_iter()
        .map(|lane| {
            let (pool, shape) = (pool.clone(), shape.clone());
            tokio::spawn(async move {
                for ids in lane {
                    write_batch(&pool, &shape, &ids).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let took = started.elapsed();
    pool.close().await;
    took
}

async fn write_batch(pool: &PgPool, shape: &Shape, ids: &[String]) {
    let mut tx = pool.begin().await.unwrap();
    let states: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| replace_bytes(&shape.state, shape.token.as_bytes(), id.as_bytes()))
        .collect();
    let wakes: Vec<Option<i64>> = ids.iter().map(|_| shape.next_wake).collect();
    sqlx::query(
        "INSERT INTO contacts (id, state, version, next_wake, created_at, updated_at) \
         SELECT id, state, 1, next_wake, 0, 0 FROM UNNEST($1::text[], $2::bytea[], $3::bigint[]) \
         AS u(id, state, next_wake)",
    )
    .bind(ids)
    .bind(&states)
    .bind(&wakes)
    .execute(&mut *tx)
    .await
    .unwrap();
    let (mut fields, mut values, mut owners) = (Vec::new(), Vec::new(), Vec::new());
    for id in ids {
        for (f, v) in &shape.keys {
            fields.push(f.clone());
            values.push(shape.text(v, id));
            owners.push(id.clone());
        }
    }
    sqlx::query(
        "INSERT INTO contact_keys (field, value, contact) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[])",
    )
    .bind(&fields)
    .bind(&values)
    .bind(&owners)
    .execute(&mut *tx)
    .await
    .unwrap();
    let (mut keys, mut contacts, mut names, mut payloads) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for id in ids {
        for (k, name, payload) in &shape.events {
            keys.push(k.as_ref().map(|k| shape.text(k, id)));
            contacts.push(id.clone());
            names.push(name.clone());
            payloads.push(shape.text(payload, id));
        }
    }
    sqlx::query(
        "INSERT INTO events (key, contact, name, payload, received_at) \
         SELECT k, c, n, p, 0 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) AS u(k, c, n, p)",
    )
    .bind(&keys)
    .bind(&contacts)
    .bind(&names)
    .bind(&payloads)
    .execute(&mut *tx)
    .await
    .unwrap();
    let (mut jc, mut lines) = (Vec::new(), Vec::new());
    for id in ids {
        for l in &shape.journal {
            jc.push(id.clone());
            lines.push(shape.text(l, id));
        }
    }
    sqlx::query(
        "INSERT INTO journal (contact, lines) SELECT * FROM UNNEST($1::text[], $2::text[])",
    )
    .bind(&jc)
    .bind(&lines)
    .execute(&mut *tx)
    .await
    .unwrap();
    let n = i64::try_from(ids.len()).unwrap();
    sqlx::query(
        "INSERT INTO flow_counts (flow, version, status, step, shard, n) VALUES ('onboard', 'v', 'active', 'greet', 0, $1) \
         ON CONFLICT (flow, version, status, step, shard) DO UPDATE SET n = flow_counts.n + excluded.n",
    )
    .bind(n)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO totals (name, shard, n) VALUES ('contacts', 0, $1), ('events', 0, $1) \
         ON CONFLICT (name, shard) DO UPDATE SET n = totals.n + excluded.n",
    )
    .bind(n)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}
