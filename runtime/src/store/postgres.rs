//! The PostgreSQL engine behind [`Store`]: takes a `postgres://…` or
//! `postgresql://…` URL (every parameter sqlx reads still works:
//! `sslmode`, `sslrootcert`, `application_name`, …), gives a [`PgStore`].
//! Several daemons may share one database.
//!
//! Guarantees: every write is one transaction (READ COMMITTED) on a pool of
//! [`PgOptions::max_connections`] connections; a commit checks by writing
//! (see `postgres/commit.rs`), so two stores racing on one contact end with
//! one commit applied and the other refused whole with
//! [`StoreError::Conflict`]. Unique violations (SQLSTATE 23505),
//! serialization failures (40001) and deadlocks (40P01) are conflicts;
//! anything else the database says, and every connection failure, is
//! [`StoreError::Db`] (retryable). The outbox is claimed with `FOR UPDATE
//! SKIP LOCKED` (`postgres/outbox.rs`), so two stores never claim one row.
//!
//! Types: times are `BIGINT` Unix seconds; a contact's state is `BYTEA` in
//! the encoding of `store/doc.rs`; payloads, held postback parameters and
//! journal lines are `TEXT` holding JSON: the applier serialises them once
//! ([`JsonText`]) and they are written and read back byte for byte,
//! never queried inside (`JSONB` would parse and re-serialise every row
//! for nothing; the one field a query needs, an outbox row's channel, is a
//! column of its own). Bookkeeping columns (`created_at`, `updated_at`)
//! use the wall clock; every other time comes from the caller. Migrations
//! are embedded from `runtime/migrations/postgres/`; sqlx's migrator holds
//! an advisory lock, so daemons starting together migrate once. TLS is
//! sqlx's rustls, chosen by `sslmode` in the URL.
//!
//! No error or log line carries the URL's password ([`redacted`]).

mod commit;
mod outbox;
mod quarantine;

pub(super) use commit::channel_of;

use super::health::Health;
use super::quarantine::{HeldRow, StateRow, decode_held, decode_states};
use super::rows::limit;
use super::*;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// A page of [`Store::old_format_contacts`]: the condition is the one of
/// the `contacts_old_format` partial index, so the query reads that index
/// only (an empty one once every row is converted).
const OLD_FORMAT_PAGE: &str = "SELECT c.id, c.version FROM contacts c \
     WHERE substring(c.state FROM 1 FOR 1) <> '\\x02'::bytea AND c.id > $1 \
     AND NOT EXISTS (SELECT 1 FROM contacts_quarantined q WHERE q.contact = c.id) \
     ORDER BY c.id LIMIT $2";

/// How a [`PgStore`] connects. [`PgOptions::default`] is what
/// [`super::open`] uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// Connections in the pool (default 16): the commits, claims and reads
    /// in flight at once.
    pub max_connections: u32,
    /// How long an operation waits for a connection, a new one's connect
    /// included (default 5 s); past it the operation fails with
    /// [`StoreError::Db`].
    pub connect_timeout: Duration,
    /// Seconds a scheduler's claim of a page of due timers holds
    /// (default 60): other daemons leave those contacts alone meanwhile,
    /// and take them over once it passed (a daemon that died). The claim
    /// is not the fence: a commit applies only at the version read, so a
    /// timer fired twice applies once.
    pub timer_lease: i64,
}

impl Default for PgOptions {
    fn default() -> PgOptions {
        PgOptions {
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
            timer_lease: 60,
        }
    }
}

/// A store in one PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Write failures, for readiness and `/metrics`.
    health: Arc<Health>,
    /// [`PgOptions::timer_lease`].
    timer_lease: i64,
    /// The counter rows this store adds to (`flow_counts`, `totals`):
    /// drawn at open, so that daemons sharing the database rarely share one.
    shard: i16,
}

/// How many counter shards there are (see [`PgStore`]'s `shard`).
const COUNTER_SHARDS: i16 = 16;

/// A counter shard drawn at random.
fn draw_shard() -> i16 {
    use rand::Rng;
    rand::rng().random_range(0..COUNTER_SHARDS)
}

impl PgStore {
    /// Connects to the database at `url` with the default [`PgOptions`].
    /// Does not migrate: call [`Store::migrate`].
    pub async fn open(url: &str) -> Result<PgStore> {
        PgStore::open_with(url, &PgOptions::default()).await
    }

    /// Connects to the database at `url` (one connection opened at once, to
    /// fail early on a wrong URL).
    pub async fn open_with(url: &str, o: &PgOptions) -> Result<PgStore> {
        let open_error = |source| StoreError::Open {
            url: redacted(url),
            source,
        };
        let options = PgConnectOptions::from_str(url).map_err(open_error)?;
        // SQL text only at trace (slow statements stay warn); docs/operations.md "Logs"
        let options = sqlx::ConnectOptions::log_statements(options, log::LevelFilter::Trace);
        let pool = PgPoolOptions::new()
            .max_connections(o.max_connections.max(1))
            .acquire_timeout(o.connect_timeout)
            .connect_with(options)
            .await
            .map_err(open_error)?;
        Ok(PgStore {
            pool,
            health: Arc::default(),
            timer_lease: o.timer_lease.max(1),
            shard: draw_shard(),
        })
    }

    /// The pool, for the copy from SQLite (`store/copy.rs`).
    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection (waits for the ones in use).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction; a failure to begin is a write failure.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.pool.begin().await.map_err(|e| self.failed(db(e)))
    }

    /// Commits `tx` if `done` went through, rolls it back otherwise; a
    /// failure (not a conflict) is recorded, a success too.
    async fn finish<T>(
        &self,
        tx: sqlx::Transaction<'static, sqlx::Postgres>,
        done: Result<T>,
    ) -> Result<T> {
        let done = match done {
            Ok(v) => tx.commit().await.map(|()| v).map_err(db),
            Err(e) => {
                // a rollback that fails leaves the connection to the pool,
                // which closes it
                if let Err(r) = tx.rollback().await {
                    tracing::debug!(error = %r, "rollback after a refused write failed");
                }
                Err(e)
            }
        };
        match done {
            Ok(v) => {
                self.health.ok();
                Ok(v)
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    fn failed(&self, e: StoreError) -> StoreError {
        self.health.failed(&e);
        e
    }

    /// Runs one write statement on its own (autocommit), recorded in the
    /// write health.
    async fn write<'q>(&self, q: PgQuery<'q>) -> Result<u64> {
        match q.execute(&self.pool).await {
            Ok(done) => {
                self.health.ok();
                Ok(done.rows_affected())
            }
            Err(e) => Err(self.failed(db(e))),
        }
    }

    /// Decoded contact rows; the unreadable ones are quarantined, and
    /// named by the error of the first.
    async fn states(&self, rows: Vec<StateRow>) -> Result<Vec<Versioned>> {
        let (out, bad) = decode_states(rows);
        let Some((contact, reason)) = bad.first().cloned() else {
            return Ok(out);
        };
        if let Err(e) = self.quarantine(&bad).await {
            tracing::warn!(contact = %contact, error = %e, "cannot mark a contact quarantined");
        }
        Err(StoreError::Quarantined { contact, reason })
    }

    /// Held postbacks as read; one whose parameters cannot be decoded is
    /// quarantined and left out.
    async fn held_rows(&self, rows: Vec<HeldRow>) -> Result<Vec<HeldPostback>> {
        let (out, bad) = decode_held(rows);
        for (id, source, reason) in bad {
            self.quarantine_held(id, &source, &reason).await?;
        }
        Ok(out)
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// A database error as a [`StoreError`]: unique violations, serialization
/// failures and deadlocks are conflicts (the commit was refused whole).
fn db(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e
        && matches!(d.code().as_deref(), Some("23505" | "40001" | "40P01"))
    {
        return StoreError::Conflict(d.message().to_string());
    }
    StoreError::Db(e)
}

/// `url` with its password (in the authority or a `password=` query
/// parameter) replaced by `***`.
pub fn redacted(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = redacted_authority(base);
    if let Some(q) = query {
        let params: Vec<&str> = q
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => "password=***",
                _ => p,
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

/// `scheme://user:***@host/db` of a URL without its query.
fn redacted_authority(base: &str) -> String {
    let Some(start) = base.find("://").map(|i| i + 3) else {
        return base.to_string();
    };
    let rest = &base[start..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return base.to_string();
    };
    let Some(colon) = rest[..at].find(':') else {
        return base.to_string();
    };
    format!("{}{}:***{}", &base[..start], &rest[..colon], &rest[at..])
}

#[async_trait]
impl Store for PgStore {
    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await.map_err(StoreError::Migrate)
    }

    async fn load_contacts(&self, ids: &[String]) -> Result<Vec<Versioned>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<StateRow> = sqlx::query_as(
            "SELECT c.id, c.state, c.version, c.next_wake \
             FROM UNNEST($1::text[]) WITH ORDINALITY AS j(id, n) \
             JOIN contacts c ON c.id = j.id ORDER BY j.n",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        self.states(rows).await
    }

    async fn find_contact(&self, field: &str, value: &str) -> Result<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT contact FROM contact_keys WHERE field = $1 AND value = $2")
                .bind(field)
                .bind(value)
                .fetch_optional(&self.pool)
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
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT value, contact FROM contact_keys WHERE field = $1 AND value = ANY($2)",
        )
        .bind(field)
        .bind(values)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().collect())
    }

    async fn held_for_keys(&self, keys: &[(String, String)]) -> Result<Vec<HeldPostback>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let (fields, values): (Vec<&str>, Vec<&str>) =
            keys.iter().map(|(f, v)| (f.as_str(), v.as_str())).unzip();
        let rows: Vec<HeldRow> = sqlx::query_as(
            "SELECT id, source, key_field, key_value, params, received_at, until \
             FROM postbacks_held WHERE (key_field, key_value) IN \
             (SELECT * FROM UNNEST($1::text[], $2::text[])) AND quarantined IS NULL ORDER BY id",
        )
        .bind(fields)
        .bind(values)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        self.held_rows(rows).await
    }

    async fn seen_events(&self, keys: &[String]) -> Result<BTreeSet<String>> {
        if keys.is_empty() {
            return Ok(BTreeSet::new());
        }
        let rows: Vec<(String,)> = sqlx::query_as("SELECT key FROM events WHERE key = ANY($1)")
            .bind(keys)
            .fetch_all(&self.pool)
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
        let (sources, values): (Vec<&str>, Vec<&str>) =
            keys.iter().map(|(s, k)| (s.as_str(), k.as_str())).unzip();
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT source, key FROM postback_keys WHERE (source, key) IN \
             (SELECT * FROM UNNEST($1::text[], $2::text[]))",
        )
        .bind(sources)
        .bind(values)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().collect())
    }

    async fn commit(&self, c: &Commit) -> Result<()> {
        let mut tx = self.begin().await?;
        let done = commit::apply(&mut tx, c, rows::wall_now(), self.shard).await;
        self.finish(tx, done).await
    }

    async fn due_contacts(&self, now: i64, limit_: usize) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM contacts WHERE next_wake <= $1 ORDER BY next_wake, id LIMIT $2",
        )
        .bind(now)
        .bind(limit(limit_))
        .fetch_all(&self.pool)
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
        // a claimed page is not read again (its rows are leased): the
        // unreadable states are set aside and the rest fired; a page of
        // nothing but unreadable ones is followed by another
        for _ in 0..4 {
            let (page, bad) = self.due_page(now, after, limit_).await?;
            if bad.is_empty() {
                return Ok(page);
            }
            self.quarantine(&bad).await?;
            if !page.is_empty() {
                return Ok(page);
            }
        }
        Ok(self.due_page(now, after, limit_).await?.0)
    }

    fn due_lease(&self) -> Option<i64> {
        Some(self.timer_lease)
    }

    async fn renew_due(&self, ids: &[String], lease_until: i64) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        // a written contact has no claim (0) and is left so
        let q = sqlx::query(
            "UPDATE contacts SET wake_lease = $2 WHERE id = ANY($1) AND wake_lease > 0",
        )
        .bind(ids)
        .bind(lease_until);
        self.write(q).await.map(drop)
    }

    async fn next_wake(&self) -> Result<Option<i64>> {
        let (at,): (Option<i64>,) =
            sqlx::query_as("SELECT min(next_wake) FROM contacts WHERE next_wake IS NOT NULL")
                .fetch_one(&self.pool)
                .await
                .map_err(db)?;
        Ok(at)
    }

    async fn contact_ids(&self, after: Option<&str>, limit_: usize) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM contacts WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after.unwrap_or(""))
                .bind(limit(limit_))
                .fetch_all(&self.pool)
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
            .fetch_all(&self.pool)
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

    async fn outbox_record(&self, acks: &[Ack]) -> Result<Vec<Lease>> {
        self.record(acks).await
    }

    async fn outbox_renew(&self, leases: &[Lease], lease_until: i64) -> Result<Vec<Lease>> {
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
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT lines FROM journal WHERE contact = $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(contact)
        .bind(limit(limit_))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        super::rows::journal_tail(contact, &rows, limit_)
    }

    async fn put_bundle(&self, hash: &str, bytes: &[u8], now: i64) -> Result<()> {
        let q = sqlx::query(
            "INSERT INTO bundles (hash, bytes, deployed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (hash) DO UPDATE SET bytes = excluded.bytes, \
             deployed_at = excluded.deployed_at",
        )
        .bind(hash)
        .bind(bytes)
        .bind(now);
        self.write(q).await.map(drop)
    }

    async fn get_bundle(&self, hash: &str) -> Result<Option<Vec<u8>>> {
        let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT bytes FROM bundles WHERE hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(row.map(|(b,)| b))
    }

    async fn latest_bundle(&self) -> Result<Option<(String, Vec<u8>)>> {
        sqlx::query_as(
            "SELECT hash, bytes FROM bundles ORDER BY deployed_at DESC, seq DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(db)
    }

    async fn bundles(&self) -> Result<Vec<(String, i64)>> {
        sqlx::query_as("SELECT hash, deployed_at FROM bundles ORDER BY deployed_at DESC, seq DESC")
            .fetch_all(&self.pool)
            .await
            .map_err(db)
    }

    async fn set_paused(&self, flow: &str, paused: bool) -> Result<()> {
        let q = sqlx::query(
            "INSERT INTO flows (name, paused) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET paused = excluded.paused",
        )
        .bind(flow)
        .bind(paused);
        self.write(q).await.map(drop)
    }

    async fn paused(&self) -> Result<BTreeSet<String>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT name FROM flows WHERE paused")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        Ok(rows.into_iter().map(|(n,)| n).collect())
    }

    async fn flow_counts(&self) -> Result<Vec<FlowCounts>> {
        let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
            "SELECT flow, version, status, step, sum(n)::bigint FROM flow_counts \
             GROUP BY flow, version, status, step HAVING sum(n) <> 0 ORDER BY flow",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        super::rows::flow_counts(rows)
    }

    async fn held_for(&self, key_field: &str, key_value: &str) -> Result<Vec<HeldPostback>> {
        self.held_for_keys(&[(key_field.to_string(), key_value.to_string())])
            .await
    }

    async fn expire_held(&self, now: i64) -> Result<u64> {
        let q = sqlx::query("DELETE FROM postbacks_held WHERE until < $1 AND quarantined IS NULL")
            .bind(now);
        self.write(q).await
    }

    async fn expire_postback_keys(&self, now: i64) -> Result<u64> {
        self.write(sqlx::query("DELETE FROM postback_keys WHERE until < $1").bind(now))
            .await
    }

    async fn rejected_postbacks(
        &self,
        limit_: usize,
    ) -> Result<Vec<(String, BTreeMap<String, String>, String, i64)>> {
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT source, params, reason, at FROM (SELECT id, source, params, reason, at \
             FROM postbacks_rejected ORDER BY id DESC LIMIT $1) r ORDER BY id",
        )
        .bind(limit(limit_))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.into_iter()
            .map(|(source, params, reason, at)| {
                let params = rows::from_json("rejected postback", &params)?;
                Ok((source, params, reason, at))
            })
            .collect()
    }

    async fn totals(&self, now: i64) -> Result<Totals> {
        type Row = (i64, i64, i64, i64, i64, i64, i64, i64);
        let (contacts, events, outbox_pending, outbox_dead, outbox_delivered, due, qc, qp): Row =
            sqlx::query_as(
                "SELECT (SELECT coalesce(sum(n), 0)::bigint FROM totals WHERE name = 'contacts'), \
                 (SELECT coalesce(sum(n), 0)::bigint FROM totals WHERE name = 'events'), \
                 (SELECT count(*) FROM outbox WHERE status = 'pending'), \
                 (SELECT count(*) FROM outbox WHERE status = 'dead'), \
                 (SELECT count(*) FROM outbox WHERE status = 'delivered'), \
                 (SELECT count(*) FROM contacts WHERE next_wake <= $1), \
                 (SELECT count(*) FROM contacts_quarantined), \
                 (SELECT count(*) FROM postbacks_held WHERE quarantined IS NOT NULL)",
            )
            .bind(now)
            .fetch_one(&self.pool)
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
            .execute(&self.pool)
            .await
            .map_err(db)?;
        self.health.check(|| self.probe(now)).await
    }

    fn write_health(&self) -> WriteHealth {
        self.health.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_leave_urls() {
        assert_eq!(
            redacted("postgres://u:secret@h:5432/db?sslmode=require"),
            "postgres://u:***@h:5432/db?sslmode=require"
        );
        assert_eq!(redacted("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redacted("postgres://h/db?x=a:b@c"),
            "postgres://h/db?x=a:b@c"
        );
        assert_eq!(
            redacted("postgresql://u:p@ss@h/db"),
            "postgresql://u:***@h/db"
        );
    }
}

/// The plans of the hot queries, on a real server.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod plans {
    use super::*;
    use sqlx::postgres::PgArguments;

    type Explain = sqlx::query::QueryAs<'static, sqlx::Postgres, (String,), PgArguments>;

    fn explain(sql: &str) -> Explain {
        sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
    }

    /// Every hot query reads its index: sequential scans are turned off,
    /// so an empty table does not hide a query that would scan one.
    #[tokio::test]
    async fn hot_queries_read_their_indexes() {
        let db = nudge_testkit::pg::PgDatabase::create("plans").await;
        let s = PgStore::open(db.url()).await.unwrap();
        s.migrate().await.unwrap();
        let mut conn = s.pool.acquire().await.unwrap();
        sqlx::query("SET enable_seqscan = off")
            .execute(&mut *conn)
            .await
            .unwrap();
        let none: Vec<String> = Vec::new();
        let cases: Vec<(&str, Explain, &str)> = vec![
            (
                "due page",
                explain(quarantine::DUE_FIRST)
                    .bind(5_i64)
                    .bind(10_i64)
                    .bind(65_i64),
                "contacts_next_wake",
            ),
            (
                "due page after",
                explain(quarantine::DUE_AFTER)
                    .bind(5_i64)
                    .bind(10_i64)
                    .bind(65_i64)
                    .bind(1_i64)
                    .bind("a"),
                "contacts_next_wake",
            ),
            (
                "old format page",
                explain(OLD_FORMAT_PAGE).bind("").bind(10_i64),
                "contacts_old_format",
            ),
            (
                "claim",
                explain(&outbox::claim_sql())
                    .bind(5_i64)
                    .bind(10_i64)
                    .bind(10_i64)
                    .bind(none),
                "outbox_due",
            ),
            (
                "acks",
                explain(outbox::ACKS)
                    .bind(vec![1_i64])
                    .bind(vec![1_i64])
                    .bind(vec!["delivered"])
                    .bind(vec![1_i64])
                    .bind(vec![None::<i64>])
                    .bind(vec![None::<&str>]),
                "outbox_pkey",
            ),
            (
                "renewals",
                explain(outbox::RENEW)
                    .bind(10_i64)
                    .bind(vec![1_i64])
                    .bind(vec![1_i64]),
                "outbox_pkey",
            ),
        ];
        for (what, q, index) in cases {
            let plan: Vec<(String,)> = q.fetch_all(&mut *conn).await.unwrap();
            let plan: Vec<String> = plan.into_iter().map(|(l,)| l).collect();
            let text = plan.join("\n");
            assert!(
                text.contains(index),
                "{what} does not read {index}:\n{text}"
            );
        }
    }
}
