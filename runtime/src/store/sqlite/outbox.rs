//! The outbox half of [`SqliteStore`]: claiming rows under a lease, and
//! recording what delivery did (delivered, retry, dead, defer, requeue).
//! Takes row ids, lease tokens and instants; gives [`OutboxRow`]s.
//! Guarantees: a claim selects, moves the lease and stamps a new random
//! token (the `lease` column) in one `BEGIN IMMEDIATE` transaction, so two
//! workers never claim the same row before its lease ends; every ack and
//! renewal is fenced by that token and applies to pending rows only
//! (requeue to dead ones only), so the late report of a worker whose lease
//! was taken over, or of a settled row, changes nothing. A row whose stored
//! payload is not JSON is dead-lettered by the claim that meets it, never
//! handed out, so it cannot block the rows behind it.

use super::{SqliteStore, db, from_json, json_text, limit};
use crate::store::{Ack, Attempt, Lease, OutboxRow, OutboxStatus, Requeue, Result};
use rand::Rng;
use sqlx::AssertSqlSafe;
use sqlx::sqlite::SqliteConnection;

/// An outbox row as selected with [`OUTBOX_COLUMNS`].
type OutboxTuple = crate::store::rows::OutboxTuple<String>;

/// A claimed row as the claim's JSON array gives it (the payload parsed).
type ClaimedTuple = crate::store::rows::OutboxTuple<serde_json::Value>;

/// The columns of [`OutboxTuple`], in order.
const OUTBOX_COLUMNS: &str = "id, contact, flow, step, kind, payload, idem_key, status, attempts, \
                              next_attempt_at, last_error, created_at, lease";

/// Decodes a selected row (a damaged payload listed as its text).
fn outbox_row(t: OutboxTuple) -> Result<OutboxRow> {
    crate::store::rows::listed_outbox_row(t)
}

/// Decodes a row whose payload is parsed already.
fn claimed_row(t: ClaimedTuple) -> Result<OutboxRow> {
    crate::store::rows::outbox_row(t, |p| p)
}

/// Extends the leases of `[id, token]` pairs still held (fenced).
const RENEW: &str = "UPDATE outbox SET next_attempt_at = ? WHERE +status = 'pending' \
    AND (id, lease) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?)) RETURNING id";

/// Marks delivered the rows of `[id, token]` pairs still held (fenced).
const DELIVERED: &str = "UPDATE outbox SET status = 'delivered', attempts = attempts + 1 \
    WHERE +status = 'pending' \
    AND (id, lease) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?)) RETURNING id";

impl SqliteStore {
    /// See [`crate::store::Store::claim_outbox`]: select, then move the lease, in one
    /// write transaction.
    pub(super) async fn claim(
        &self,
        now: i64,
        lease_until: i64,
        limit_: usize,
        skip: &[String],
    ) -> Result<Vec<OutboxRow>> {
        let mut tx = self.begin_write().await?;
        // one row for the whole claim (a JSON array): sqlx hands rows over
        // from its worker thread one at a time, and this holds the writer
        let except = if skip.is_empty() {
            ""
        } else {
            "AND coalesce(iif(json_valid(payload), payload ->> '$.channel', NULL), 'url') \
             NOT IN (SELECT value FROM json_each(?)) "
        };
        let sql = format!(
            "SELECT json_group_array(json_array(id, contact, flow, step, kind, \
             iif(json_valid(payload), json(payload), NULL), \
             idem_key, status, attempts, next_attempt_at, last_error, created_at, lease)) FROM \
             (SELECT * FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? {except}\
             ORDER BY next_attempt_at, id LIMIT ?)"
        );
        let mut q = sqlx::query_as(AssertSqlSafe(sql)).bind(now);
        if !skip.is_empty() {
            q = q.bind(json_text(skip)?);
        }
        let (text,): (String,) = q
            .bind(limit(limit_))
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        let mut rows: Vec<ClaimedTuple> = from_json("claimed outbox rows", &text)?;
        // due order, as selected (an aggregate keeps none by contract)
        rows.sort_by_key(|t| (t.9, t.0));
        // a payload that is not JSON (never written so by Nudge) cannot be
        // delivered: dead-lettered, kept for inspection, out of the claim
        let (damaged, rows): (Vec<ClaimedTuple>, Vec<ClaimedTuple>) =
            rows.into_iter().partition(|t| t.5.is_null());
        if !damaged.is_empty() {
            let ids: Vec<i64> = damaged.iter().map(|r| r.0).collect();
            tracing::warn!(rows = ?ids, "outbox rows with a damaged payload dead-lettered");
            sqlx::query(
                "UPDATE outbox SET status = 'dead', \
                 last_error = 'the stored payload is not valid JSON' \
                 WHERE id IN (SELECT value FROM json_each(?))",
            )
            .bind(json_text(&ids)?)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        if rows.is_empty() {
            tx.commit().await.map_err(db)?;
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let token: i64 = rand::rng().random_range(1..i64::MAX);
        sqlx::query(
            "UPDATE outbox SET next_attempt_at = ?, lease = ? \
             WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(lease_until)
        .bind(token)
        .bind(json_text(&ids)?)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        rows.into_iter()
            .map(|mut t| {
                t.9 = lease_until;
                t.12 = token;
                claimed_row(t)
            })
            .collect()
    }

    /// See [`crate::store::Store::outbox_record`]: all in one write
    /// transaction.
    pub(super) async fn record(&self, acks: &[Ack]) -> Result<Vec<Lease>> {
        if acks.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        let lost = apply_acks(&mut tx, acks).await?;
        tx.commit().await.map_err(db)?;
        Ok(lost)
    }

    /// See [`crate::store::Store::outbox_renew`]: one statement.
    pub(super) async fn renew(&self, leases: &[Lease], lease_until: i64) -> Result<Vec<Lease>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        let kept: Vec<(i64,)> = sqlx::query_as(RENEW)
            .bind(lease_until)
            .bind(pairs(leases)?)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(not_in(leases, &kept))
    }

    pub(super) async fn list(
        &self,
        status: Option<OutboxStatus>,
        limit_: usize,
    ) -> Result<Vec<OutboxRow>> {
        let rows: Vec<OutboxTuple> = match status {
            Some(s) => sqlx::query_as(AssertSqlSafe(format!(
                "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = ? ORDER BY id LIMIT ?"
            )))
            .bind(s.name())
            .bind(limit(limit_))
            .fetch_all(&self.reader)
            .await
            .map_err(db)?,
            None => sqlx::query_as(AssertSqlSafe(format!(
                "SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY id LIMIT ?"
            )))
            .bind(limit(limit_))
            .fetch_all(&self.reader)
            .await
            .map_err(db)?,
        };
        rows.into_iter().map(outbox_row).collect()
    }

    pub(super) async fn requeue(&self, id: i64, now: i64) -> Result<Requeue> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ? \
             WHERE id = ? AND status = 'dead'",
        )
        .bind(now)
        .bind(id)
        .execute(&self.writer)
        .await
        .map_err(db)?;
        if done.rows_affected() == 1 {
            return Ok(Requeue::Pending);
        }
        let found: Option<(i64,)> = sqlx::query_as("SELECT id FROM outbox WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.writer)
            .await
            .map_err(db)?;
        Ok(if found.is_some() {
            Requeue::NotDead
        } else {
            Requeue::Missing
        })
    }
}

/// Leases as a JSON array of `[id, token]` pairs (for `json_each`). The
/// statements that take them ([`RENEW`], [`DELIVERED`]) write `+status` so
/// that SQLite finds each row by its id: on `status` it would walk every
/// pending row (the whole backlog: 9 ms per batch of acks with 100 000 rows
/// pending) to test each against the list.
fn pairs(leases: &[Lease]) -> Result<String> {
    let v: Vec<[i64; 2]> = leases.iter().map(|l| [l.id, l.token]).collect();
    json_text(&v)
}

/// The leases whose id is not among the rows a statement changed.
fn not_in(leases: &[Lease], changed: &[(i64,)]) -> Vec<Lease> {
    let changed: std::collections::HashSet<i64> = changed.iter().map(|(id,)| *id).collect();
    leases
        .iter()
        .filter(|l| !changed.contains(&l.id))
        .copied()
        .collect()
}

/// Apply fenced acks inside the caller's write transaction (a claim's
/// record, or a group commit settling call rows): delivered rows in one
/// statement, the others one by one. Gives the leases that were lost.
pub(super) async fn apply_acks(conn: &mut SqliteConnection, acks: &[Ack]) -> Result<Vec<Lease>> {
    let delivered: Vec<Lease> = acks
        .iter()
        .filter(|a| a.attempt == Attempt::Delivered)
        .map(|a| a.lease)
        .collect();
    let mut lost = Vec::new();
    if !delivered.is_empty() {
        let done: Vec<(i64,)> = sqlx::query_as(DELIVERED)
            .bind(pairs(&delivered)?)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
        lost = not_in(&delivered, &done);
    }
    for a in acks {
        let q = match &a.attempt {
            Attempt::Delivered => continue,
            Attempt::Retry { at, error } => sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, \
                 last_error = ? WHERE id = ? AND lease = ? AND status = 'pending'",
            )
            .bind(*at)
            .bind(error.as_str()),
            Attempt::Dead { error } => sqlx::query(
                "UPDATE outbox SET status = 'dead', attempts = attempts + 1, \
                 last_error = ? WHERE id = ? AND lease = ? AND status = 'pending'",
            )
            .bind(error.as_str()),
            Attempt::Defer { at } => sqlx::query(
                "UPDATE outbox SET next_attempt_at = ? \
                 WHERE id = ? AND lease = ? AND status = 'pending'",
            )
            .bind(*at),
        };
        let done = q
            .bind(a.lease.id)
            .bind(a.lease.token)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            lost.push(a.lease);
        }
    }
    Ok(lost)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// The fenced acks and renewals find each row by its id, whatever the
    /// backlog of pending rows.
    #[tokio::test]
    async fn fenced_updates_find_rows_by_id() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        for (sql, binds) in [(RENEW, 2), (DELIVERED, 1)] {
            let explain = format!("EXPLAIN QUERY PLAN {sql}");
            let mut q = sqlx::query_as(AssertSqlSafe(explain));
            if binds == 2 {
                q = q.bind(0_i64);
            }
            let plan: Vec<(i64, i64, i64, String)> =
                q.bind("[]").fetch_all(&store.reader).await.unwrap();
            let main = plan.iter().find(|r| r.1 == 0).map(|r| r.3.as_str());
            assert_eq!(
                main,
                Some("SEARCH outbox USING INTEGER PRIMARY KEY (rowid=?)"),
                "{sql}: {plan:?}"
            );
        }
    }
}
