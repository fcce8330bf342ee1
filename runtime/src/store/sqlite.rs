//! The SQLite engine behind [`Store`]: takes a `sqlite://path.db` (created
//! if missing) or `sqlite::memory:` URL, gives a [`SqliteStore`].
//!
//! Guarantees: the file runs in WAL mode with `synchronous=NORMAL` (a commit
//! survives a process crash; the last commits may be lost on power loss,
//! never corrupted); every write goes through ONE writer connection in
//! `BEGIN IMMEDIATE` transactions, so writers of this process never meet
//! `SQLITE_BUSY` and another process waits up to `busy_timeout`; reads use a
//! small pool of their own connections and see every returned commit. A
//! contact is one document (`ContactState`, encoded by `store/doc.rs`) with
//! its `version` and `next_wake`; per-flow counters move with each commit (see
//! `sqlite/commit.rs`). Reads of many rows on the ingest and scheduler
//! paths (contacts by id, by unique key, the due page, held postbacks by
//! key) answer as ONE row of JSON: sqlx hands each row over from its
//! worker thread on its own. Migrations are embedded from
//! `runtime/migrations/sqlite/`. Bookkeeping columns (`created_at`,
//! `updated_at` of contacts, `created_at` of outbox rows) use the wall
//! clock; every other time comes from the caller.

mod commit;
mod health;
mod memory;
mod outbox;
mod quarantine;
mod recount;

use super::rows::{from_json, json_text, limit, wall_now};
use super::*;
use sqlx::AssertSqlSafe;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Reader connections of a file database.
const READERS: u32 = 4;

/// WAL pages after which the writer checkpoints on its own (64 MiB of 4 KiB
/// pages): only when the background checkpointer falls behind or is gone.
const WRITER_CHECKPOINT_PAGES: &str = "16384";

/// How often the background checkpointer copies the WAL into the file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// A page of [`Store::old_format_contacts`]: the condition is the one of
/// the `contacts_old_format` partial index (migration 0008), so the query
/// reads that index only (an empty one once every row is converted).
const OLD_FORMAT_PAGE: &str = "SELECT c.id, c.version FROM contacts c \
     WHERE substr(CAST(c.state AS BLOB), 1, 1) IS NOT X'02' AND c.id > ? \
     AND NOT EXISTS (SELECT 1 FROM contacts_quarantined q WHERE q.contact = c.id) \
     ORDER BY c.id LIMIT ?";

/// A store in one SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// One connection: all writes, serialised.
    writer: SqlitePool,
    /// Reads; the writer itself for an in-memory database.
    reader: SqlitePool,
    /// Stops the background checkpointer when the last clone goes.
    checkpointer: Option<Arc<Checkpointer>>,
    /// An in-memory database (its one connection cannot be replaced).
    memory: bool,
    /// Write failures, for readiness and `/metrics`.
    health: Arc<crate::store::health::Health>,
}

/// The background checkpointer of a file database: copies the WAL into the
/// database file on its own connection, so the writer's commits do not
/// stop for it (`wal_autocheckpoint` is raised to
/// [`WRITER_CHECKPOINT_PAGES`] as a safety net). PASSIVE: it never waits
/// for, or blocks, readers and the writer.
#[derive(Debug)]
struct Checkpointer(tokio_util::sync::CancellationToken);

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl Checkpointer {
    fn start(options: SqliteConnectOptions) -> Checkpointer {
        let stop = tokio_util::sync::CancellationToken::new();
        let done = stop.clone();
        tokio::spawn(async move {
            use sqlx::Connection;
            let mut conn: Option<sqlx::SqliteConnection> = None;
            // logged once per streak of failed connects
            let mut unconnected = false;
            loop {
                tokio::select! {
                    () = done.cancelled() => break,
                    () = tokio::time::sleep(CHECKPOINT_EVERY) => {}
                }
                if conn.is_none() {
                    conn = match sqlx::SqliteConnection::connect_with(&options).await {
                        Ok(c) => {
                            unconnected = false;
                            Some(c)
                        }
                        Err(e) => {
                            if !unconnected {
                                tracing::warn!(error = %e, "the background checkpointer cannot connect");
                            }
                            unconnected = true;
                            None
                        }
                    };
                }
                let Some(c) = conn.as_mut() else { continue };
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&mut *c)
                    .await
                {
                    tracing::warn!(error = %e, "background checkpoint failed");
                    conn = None;
                }
            }
            if let Some(c) = conn {
                let _ = c.close().await;
            }
        });
        Checkpointer(stop)
    }
}

impl SqliteStore {
    /// The reader pool, for the copy to Postgres (`store/copy.rs`).
    pub(super) fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// Opens (creating the file if missing) the database at `url`:
    /// `sqlite://path.db` or `sqlite::memory:`. Does not migrate: call
    /// [`Store::migrate`].
    pub async fn open(url: &str) -> Result<SqliteStore> {
        let sizes = memory::Memory::from_env()?;
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|source| StoreError::Open {
                url: url.to_string(),
                source,
            })?
            .create_if_missing(true)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(false)
            .statement_cache_capacity(256)
            // readers map the file instead of copying pages through read():
            // each commit empties their page caches
            .pragma("mmap_size", sizes.mmap_pragma())
            .pragma("temp_store", "memory");
        // SQL text only at trace (slow statements stay warn); docs/operations.md "Logs"
        let options = sqlx::ConnectOptions::log_statements(options, log::LevelFilter::Trace);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = if in_memory {
            options
        } else {
            options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)
                // a WAL that grew under load shrinks back once checkpointed
                .pragma("journal_size_limit", "67108864")
        };
        let pool = |max: u32| {
            SqlitePoolOptions::new()
                .max_connections(max)
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(30))
        };
        // An in-memory database lives as long as its one connection.
        let writer = if in_memory {
            pool(1)
        } else {
            pool(1).after_release(health::writer_released)
        };
        let writer = writer
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone().pragma(
                "cache_size",
                memory::Memory::cache_pragma(sizes.writer_cache),
            ))
            .await
            .map_err(|source| StoreError::Open {
                url: url.to_string(),
                source,
            })?;
        let options = options.pragma(
            "cache_size",
            memory::Memory::cache_pragma(sizes.reader_cache),
        );
        let (reader, checkpointer) = if in_memory {
            (writer.clone(), None)
        } else {
            (
                pool(READERS).connect_lazy_with(options.clone()),
                Some(Arc::new(Checkpointer::start(options))),
            )
        };
        Ok(SqliteStore {
            writer,
            reader,
            checkpointer,
            memory: in_memory,
            health: Arc::default(),
        })
    }

    /// Closes every connection (waits for the ones in use).
    pub async fn close(&self) {
        if let Some(c) = &self.checkpointer {
            c.0.cancel();
        }
        self.reader.close().await;
        self.writer.close().await;
    }

    /// Caps the database file at `pages` pages on the writer connection
    /// (SQLite's `max_page_count`, never below the current size; `None`
    /// lifts the cap), so that writes
    /// fail as on a full disk (`SQLITE_FULL`): a fault-injection hook for
    /// tests and drills. Returns the file's current page count. The cap
    /// holds for the connection it is set on only.
    pub async fn limit_pages(&self, pages: Option<u64>) -> Result<u64> {
        let cap = pages.unwrap_or(4_294_967_294).max(1);
        sqlx::query(AssertSqlSafe(format!("PRAGMA max_page_count = {cap}")))
            .execute(&self.writer)
            .await
            .map_err(db)?;
        let (n,): (i64,) = sqlx::query_as("PRAGMA page_count")
            .fetch_one(&self.writer)
            .await
            .map_err(db)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The rows of a page of the due set: (wake time, id, state in hex,
    /// version). The page comes back as ONE row (a JSON array): sqlx hands
    /// each row over from its worker thread on its own, and at a thousand
    /// rows a page those thread hops cost more than the query.
    async fn due_rows(
        &self,
        now: i64,
        after: Option<(i64, &str)>,
        limit_: usize,
    ) -> Result<Vec<(i64, String, String, i64)>> {
        let page = match after {
            None => "WHERE next_wake <= ?",
            Some(_) => "WHERE next_wake <= ? AND (next_wake, id) > (?, ?)",
        };
        let q = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT json_group_array(json_array(next_wake, id, hex(state), version)) \
             FROM (SELECT next_wake, id, state, version FROM contacts {page} \
             ORDER BY next_wake, id LIMIT ?)"
        )))
        .bind(now);
        let q = match after {
            None => q,
            Some((wake, id)) => q.bind(wake).bind(id.to_string()),
        };
        let (text,): (String,) = q
            .bind(limit(limit_))
            .fetch_one(&self.reader)
            .await
            .map_err(db)?;
        from_json("due contacts", &text)
    }

    /// Held postbacks as read; one whose parameters cannot be decoded is
    /// quarantined and left out.
    async fn held_rows(&self, rows: Vec<HeldRow>) -> Result<Vec<HeldPostback>> {
        let (out, bad) = super::quarantine::decode_held(rows);
        for (id, source, reason) in bad {
            self.quarantine_held(id, &source, &reason).await?;
        }
        Ok(out)
    }

    /// A write transaction on the writer connection. A connection left
    /// inside a failed transaction is settled (see `sqlite/health.rs`) and
    /// the transaction tried once more.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        let begun = match self.writer.begin_with("BEGIN IMMEDIATE").await {
            Err(sqlx::Error::InvalidSavePointStatement) => {
                self.settle_writer().await;
                self.writer.begin_with("BEGIN IMMEDIATE").await
            }
            begun => begun,
        };
        begun.map_err(|e| {
            let e = db(e);
            self.health.failed(&e);
            e
        })
    }

    /// Commits `tx` if `done` went through, rolls it back otherwise. A
    /// failure (not a conflict) is recorded, and the writer connection
    /// settled if the rollback failed or the database failed.
    async fn finish<T>(
        &self,
        tx: sqlx::Transaction<'static, sqlx::Sqlite>,
        done: Result<T>,
    ) -> Result<T> {
        let (done, rolled_back) = match done {
            Ok(v) => match tx.commit().await {
                Ok(()) => return Ok(v),
                Err(e) => (Err(db(e)), false),
            },
            Err(e) => (Err(e), tx.rollback().await.is_ok()),
        };
        if let Err(e) = &done {
            self.health.failed(e);
            if !rolled_back || !matches!(e, StoreError::Conflict(_)) {
                self.settle_writer().await;
            }
        }
        done
    }
}

use super::quarantine::HeldRow;

/// A database error as a [`StoreError`]: unique violations are conflicts.
fn db(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e
        && d.is_unique_violation()
    {
        return StoreError::Conflict(d.message().to_string());
    }
    StoreError::Db(e)
}

/// Bytes from SQLite's `hex()` (upper-case digits).
fn from_hex(text: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'A'..=b'F' => Some(c - b'A' + 10),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let text = text.as_bytes();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks_exact(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<()> {
        let recount = recount::pending(&self.writer).await?;
        MIGRATOR
            .run(&self.writer)
            .await
            .map_err(StoreError::Migrate)?;
        if recount {
            recount::active_counts(&self.writer).await?;
        }
        Ok(())
    }

    async fn load_contacts(&self, ids: &[String]) -> Result<Vec<Versioned>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // one row for all, states in hex (see `due_rows`)
        let (text,): (String,) = sqlx::query_as(
            "SELECT json_group_array(json_array(j.key, c.id, hex(c.state), c.version, \
             c.next_wake)) FROM json_each(?) j JOIN contacts c ON c.id = j.value",
        )
        .bind(json_text(ids)?)
        .fetch_one(&self.reader)
        .await
        .map_err(db)?;
        let mut rows: Vec<(i64, String, String, i64, Option<i64>)> = from_json("contacts", &text)?;
        // an aggregate keeps no order by contract: the order of `ids`
        rows.sort_unstable_by_key(|r| r.0);
        let mut out = Vec::with_capacity(rows.len());
        let mut bad = Vec::new();
        for (_, id, state, version, next_wake) in rows {
            let decoded = match from_hex(&state) {
                Some(bytes) => doc::decode(&id, &bytes),
                None => Err(StoreError::Corrupt(format!("contact `{id}`: bad hex"))),
            };
            match decoded {
                Ok(state) => out.push(Versioned {
                    state,
                    version,
                    next_wake,
                }),
                Err(e) => bad.push((id, e.to_string())),
            }
        }
        let Some((contact, reason)) = bad.first().cloned() else {
            return Ok(out);
        };
        if let Err(e) = self.quarantine(&bad).await {
            tracing::warn!(contact = %contact, error = %e, "cannot mark a contact quarantined");
        }
        Err(StoreError::Quarantined { contact, reason })
    }

    async fn find_contact(&self, field: &str, value: &str) -> Result<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT contact FROM contact_keys WHERE field = ? AND value = ?")
                .bind(field)
                .bind(value)
                .fetch_optional(&self.reader)
                .await
                .map_err(db)?;
        Ok(row.map(|(c,)| c))
    }

    async fn find_contacts(
        &self,
        field: &str,
        values: &[String],
    ) -> Result<std::collections::HashMap<String, String>> {
        if values.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        // one row for all (see `due_rows`): each row is a thread hop. CROSS
        // JOIN keeps the values outside: one primary-key search each, where
        // the planner would otherwise walk every key of the field
        let (text,): (String,) = sqlx::query_as(
            "SELECT json_group_object(k.value, k.contact) FROM json_each(?) j \
             CROSS JOIN contact_keys k ON k.field = ? AND k.value = j.value",
        )
        .bind(json_text(values)?)
        .bind(field)
        .fetch_one(&self.reader)
        .await
        .map_err(db)?;
        from_json("contact keys", &text)
    }

    async fn seen_events(&self, keys: &[String]) -> Result<BTreeSet<String>> {
        if keys.is_empty() {
            return Ok(BTreeSet::new());
        }
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT e.key FROM json_each(?) j JOIN events e ON e.key = j.value")
                .bind(json_text(keys)?)
                .fetch_all(&self.reader)
                .await
                .map_err(db)?;
        Ok(rows.into_iter().map(|(k,)| k).collect())
    }

    async fn seen_postbacks(
        &self,
        keys: &[(String, String)],
    ) -> Result<BTreeSet<(String, String)>> {
        if keys.is_empty() {
            return Ok(BTreeSet::new());
        }
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT p.source, p.key FROM json_each(?) j JOIN postback_keys p \
             ON p.source = j.value ->> 0 AND p.key = j.value ->> 1",
        )
        .bind(json_text(keys)?)
        .fetch_all(&self.reader)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().collect())
    }

    async fn commit(&self, c: &Commit) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = commit::apply(&mut tx, c, wall_now()).await;
        self.finish(tx, done).await?;
        self.health.ok();
        Ok(())
    }

    async fn due_contacts(&self, now: i64, limit_: usize) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM contacts WHERE next_wake <= ? ORDER BY next_wake, id LIMIT ?",
        )
        .bind(now)
        .bind(limit(limit_))
        .fetch_all(&self.reader)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn due_after(
        &self,
        now: i64,
        after: Option<(i64, &str)>,
        limit_: usize,
    ) -> Result<Vec<(i64, Versioned)>> {
        super::quarantine::readable_due_page(
            || Box::pin(self.due_page(now, after, limit_)),
            |bad| Box::pin(async move { self.quarantine(&bad).await }),
        )
        .await
    }

    async fn next_wake(&self) -> Result<Option<i64>> {
        let (at,): (Option<i64>,) =
            sqlx::query_as("SELECT min(next_wake) FROM contacts WHERE next_wake IS NOT NULL")
                .fetch_one(&self.reader)
                .await
                .map_err(db)?;
        Ok(at)
    }

    async fn contact_ids(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM contacts WHERE id > ? ORDER BY id LIMIT ?")
                .bind(after.unwrap_or(""))
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.reader)
                .await
                .map_err(db)?;
        Ok(rows.into_iter().map(|(c,)| c).collect())
    }

    async fn old_format_contacts(
        &self,
        after: Option<&str>,
        limit_: usize,
    ) -> Result<Vec<(String, i64)>> {
        sqlx::query_as(OLD_FORMAT_PAGE)
            .bind(after.unwrap_or(""))
            .bind(limit(limit_))
            .fetch_all(&self.reader)
            .await
            .map_err(db)
    }

    async fn claim_outbox_except(
        &self,
        now: i64,
        lease_until: i64,
        limit: usize,
        skip: &[String],
    ) -> Result<Vec<OutboxRow>> {
        self.claim(now, lease_until, limit, skip).await
    }

    async fn outbox_record(&self, acks: &[crate::store::Ack]) -> Result<Vec<crate::store::Lease>> {
        self.record(acks).await
    }

    async fn outbox_renew(
        &self,
        leases: &[crate::store::Lease],
        lease_until: i64,
    ) -> Result<Vec<crate::store::Lease>> {
        self.renew(leases, lease_until).await
    }

    async fn outbox_list(
        &self,
        status: Option<OutboxStatus>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>> {
        self.list(status, limit).await
    }

    async fn outbox_requeue(&self, id: i64, now: i64) -> Result<Requeue> {
        self.requeue(id, now).await
    }

    async fn journal(&self, contact: &str, limit_: usize) -> Result<Vec<JournalLine>> {
        // a row holds at least one line: `limit` rows are enough
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT lines FROM journal WHERE contact = ? ORDER BY seq DESC LIMIT ?")
                .bind(contact)
                .bind(limit(limit_))
                .fetch_all(&self.reader)
                .await
                .map_err(db)?;
        super::rows::journal_tail(contact, &rows, limit_)
    }

    async fn put_bundle(&self, hash: &str, bytes: &[u8], now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO bundles (hash, bytes, deployed_at) VALUES (?, ?, ?) \
             ON CONFLICT (hash) DO UPDATE SET bytes = excluded.bytes, \
             deployed_at = excluded.deployed_at",
        )
        .bind(hash)
        .bind(bytes)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn get_bundle(&self, hash: &str) -> Result<Option<Vec<u8>>> {
        let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT bytes FROM bundles WHERE hash = ?")
            .bind(hash)
            .fetch_optional(&self.reader)
            .await
            .map_err(db)?;
        Ok(row.map(|(b,)| b))
    }

    async fn latest_bundle(&self) -> Result<Option<(String, Vec<u8>)>> {
        let row: Option<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT hash, bytes FROM bundles ORDER BY deployed_at DESC, rowid DESC LIMIT 1",
        )
        .fetch_optional(&self.reader)
        .await
        .map_err(db)?;
        Ok(row)
    }

    async fn bundles(&self) -> Result<Vec<(String, i64)>> {
        sqlx::query_as(
            "SELECT hash, deployed_at FROM bundles ORDER BY deployed_at DESC, rowid DESC",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(db)
    }

    async fn set_paused(&self, flow: &str, paused: bool) -> Result<()> {
        sqlx::query(
            "INSERT INTO flows (name, paused) VALUES (?, ?) \
             ON CONFLICT (name) DO UPDATE SET paused = excluded.paused",
        )
        .bind(flow)
        .bind(paused)
        .execute(&self.writer)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn paused(&self) -> Result<BTreeSet<String>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT name FROM flows WHERE paused")
            .fetch_all(&self.reader)
            .await
            .map_err(db)?;
        Ok(rows.into_iter().map(|(n,)| n).collect())
    }

    async fn flow_counts(&self) -> Result<Vec<FlowCounts>> {
        let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
            "SELECT flow, version, status, step, n FROM flow_counts WHERE n != 0 ORDER BY flow",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(db)?;
        super::rows::flow_counts(rows)
    }

    async fn held_for(&self, key_field: &str, key_value: &str) -> Result<Vec<HeldPostback>> {
        let rows: Vec<HeldRow> = sqlx::query_as(
            "SELECT id, source, key_field, key_value, params, received_at, until \
             FROM postbacks_held WHERE key_field = ? AND key_value = ? AND quarantined IS NULL \
             ORDER BY id",
        )
        .bind(key_field)
        .bind(key_value)
        .fetch_all(&self.reader)
        .await
        .map_err(db)?;
        self.held_rows(rows).await
    }

    async fn held_for_keys(&self, keys: &[(String, String)]) -> Result<Vec<HeldPostback>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut keys: Vec<&(String, String)> = keys.iter().collect();
        keys.sort_unstable();
        keys.dedup();
        // one row for all (see `due_rows`); the keys outside the join
        let (text,): (String,) = sqlx::query_as(
            "SELECT json_group_array(json_array(h.id, h.source, h.key_field, h.key_value, \
             h.params, h.received_at, h.until)) FROM json_each(?) j \
             CROSS JOIN postbacks_held h ON h.key_field = j.value ->> 0 \
             AND h.key_value = j.value ->> 1 WHERE h.quarantined IS NULL",
        )
        .bind(json_text(&keys)?)
        .fetch_one(&self.reader)
        .await
        .map_err(db)?;
        let mut rows: Vec<HeldRow> = from_json("held postbacks", &text)?;
        rows.sort_unstable_by_key(|r| r.0);
        self.held_rows(rows).await
    }

    async fn expire_held(&self, now: i64) -> Result<u64> {
        let done =
            sqlx::query("DELETE FROM postbacks_held WHERE until < ? AND quarantined IS NULL")
                .bind(now)
                .execute(&self.writer)
                .await
                .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn expire_postback_keys(&self, now: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM postback_keys WHERE until < ?")
            .bind(now)
            .execute(&self.writer)
            .await
            .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn rejected_postbacks(
        &self,
        limit_: usize,
    ) -> Result<Vec<(String, BTreeMap<String, String>, String, i64)>> {
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT source, params, reason, at FROM (SELECT id, source, params, reason, at \
             FROM postbacks_rejected ORDER BY id DESC LIMIT ?) ORDER BY id",
        )
        .bind(limit(limit_))
        .fetch_all(&self.reader)
        .await
        .map_err(db)?;
        rows.into_iter()
            .map(|(source, params, reason, at)| {
                Ok((source, from_json("rejected postback", &params)?, reason, at))
            })
            .collect()
    }

    async fn totals(&self, now: i64) -> Result<Totals> {
        type Row = (i64, i64, i64, i64, i64, i64, i64, i64);
        let (contacts, events, outbox_pending, outbox_dead, outbox_delivered, due, qc, qp): Row =
            sqlx::query_as(
                "SELECT (SELECT n FROM totals WHERE name = 'contacts'), \
                 (SELECT n FROM totals WHERE name = 'events'), \
                 (SELECT count(*) FROM outbox WHERE status = 'pending'), \
                 (SELECT count(*) FROM outbox WHERE status = 'dead'), \
                 (SELECT count(*) FROM outbox WHERE status = 'delivered'), \
                 (SELECT count(*) FROM contacts WHERE next_wake <= ?), \
                 (SELECT count(*) FROM contacts_quarantined), \
                 (SELECT count(*) FROM postbacks_held WHERE quarantined IS NOT NULL)",
            )
            .bind(now)
            .fetch_one(&self.reader)
            .await
            .map_err(db)?;
        Ok(Totals {
            contacts,
            events,
            outbox_pending,
            outbox_dead,
            outbox_delivered,
            due,
            quarantined_contacts: qc,
            quarantined_postbacks: qp,
        })
    }

    async fn quarantined(&self, limit: usize) -> Result<Vec<Quarantine>> {
        self.quarantine_list(None, limit).await
    }

    async fn quarantine_of(&self, contact: &str) -> Result<Option<Quarantine>> {
        Ok(self.quarantine_list(Some(contact), 1).await?.pop())
    }

    async fn release_quarantine(&self, contact: &str) -> Result<Release> {
        self.release(contact).await
    }

    async fn ready(&self, now: i64) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(db)?;
        self.health.check(|| self.probe(now)).await
    }

    fn write_health(&self) -> WriteHealth {
        self.health.snapshot()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The tag the index looks for is the one written, and the page query
    /// reads the partial index, not the table.
    #[tokio::test]
    async fn the_old_format_page_reads_only_its_index() {
        let st = ContactState::new(crate::vm::Contact::default());
        assert_eq!(doc::encode(&st).unwrap()[0], 0x02, "migration 0008's tag");
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {OLD_FORMAT_PAGE}"
        )))
        .bind("")
        .bind(1000)
        .fetch_all(&store.reader)
        .await
        .unwrap();
        let main = plan.iter().find(|r| r.1 == 0).map(|r| r.3.as_str());
        assert_eq!(
            main,
            Some("SEARCH c USING INDEX contacts_old_format (id>?)"),
            "{plan:?}"
        );
    }
}
