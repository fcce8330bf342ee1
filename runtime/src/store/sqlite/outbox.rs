//! The outbox half of [`SqliteStore`]: claiming rows under a lease, and
//! recording what delivery did (delivered, retry, dead, requeue). Takes row
//! ids and instants; gives [`OutboxRow`]s. Guarantees: a claim selects and
//! moves the lease in one `BEGIN IMMEDIATE` transaction, so two workers
//! never claim the same row before its lease ends; outcome updates apply to
//! pending rows only (requeue to dead ones only), so a late report cannot
//! resurrect or overwrite a settled row. A row whose stored payload is not
//! JSON is dead-lettered by the claim that meets it, never handed out, so
//! it cannot block the rows behind it.

use super::{SqliteStore, db, from_json, json_text, limit};
use crate::store::{Attempt, OutboxKind, OutboxRow, OutboxStatus, Requeue, Result, StoreError};
use sqlx::AssertSqlSafe;

/// An outbox row's columns, in [`OUTBOX_COLUMNS`] order, its payload as `P`.
type Tuple<P> = (
    i64,
    String,
    String,
    String,
    String,
    P,
    String,
    String,
    i64,
    i64,
    Option<String>,
    i64,
);

/// An outbox row as selected with [`OUTBOX_COLUMNS`].
type OutboxTuple = Tuple<String>;

/// A claimed row as the claim's JSON array gives it (the payload parsed).
type ClaimedTuple = Tuple<serde_json::Value>;

/// The columns of [`OutboxTuple`], in order.
const OUTBOX_COLUMNS: &str = "id, contact, flow, step, kind, payload, idem_key, status, attempts, \
                              next_attempt_at, last_error, created_at";

/// Decodes a selected row.
fn outbox_row(t: OutboxTuple) -> Result<OutboxRow> {
    let (id, contact, flow, step, kind, payload, idem_key, status, attempts, next, error, created) =
        t;
    // a damaged payload (never written so by Nudge) is listed as its text;
    // claims dead-letter it instead of delivering it
    let payload = serde_json::from_str(&payload).unwrap_or(serde_json::Value::String(payload));
    claimed_row((
        id, contact, flow, step, kind, payload, idem_key, status, attempts, next, error, created,
    ))
}

/// Decodes a row whose payload is parsed already.
fn claimed_row(t: ClaimedTuple) -> Result<OutboxRow> {
    let (id, contact, flow, step, kind, payload, idem_key, status, attempts, next, error, created) =
        t;
    let kind = match kind.as_str() {
        "message" => OutboxKind::Message,
        "call" => OutboxKind::Call,
        _ => {
            return Err(StoreError::Corrupt(format!(
                "outbox row {id}: kind `{kind}`"
            )));
        }
    };
    let status = OutboxStatus::from_name(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("outbox row {id}: status `{status}`")))?;
    Ok(OutboxRow {
        id,
        contact,
        flow,
        step,
        kind,
        payload,
        idem_key,
        status,
        attempts,
        next_attempt_at: next,
        last_error: error,
        created_at: created,
    })
}

impl SqliteStore {
    /// See [`crate::store::Store::claim_outbox`]: select, then move the lease, in one
    /// write transaction.
    pub(super) async fn claim(
        &self,
        now: i64,
        lease_until: i64,
        limit_: usize,
    ) -> Result<Vec<OutboxRow>> {
        let mut tx = self.begin_write().await?;
        // one row for the whole claim (a JSON array): sqlx hands rows over
        // from its worker thread one at a time, and this holds the writer
        let (text,): (String,) = sqlx::query_as(
            "SELECT json_group_array(json_array(id, contact, flow, step, kind, \
             iif(json_valid(payload), json(payload), NULL), \
             idem_key, status, attempts, next_attempt_at, last_error, created_at)) FROM \
             (SELECT * FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? \
             ORDER BY next_attempt_at, id LIMIT ?)",
        )
        .bind(now)
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
        sqlx::query(
            "UPDATE outbox SET next_attempt_at = ? WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(lease_until)
        .bind(json_text(&ids)?)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        rows.into_iter()
            .map(|mut t| {
                t.9 = lease_until;
                claimed_row(t)
            })
            .collect()
    }

    pub(super) async fn delivered(&self, id: i64) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET status = 'delivered', attempts = attempts + 1 \
             WHERE id = ? AND status = 'pending'",
        )
        .bind(id)
        .execute(&self.writer)
        .await
        .map_err(db)?;
        Ok(())
    }

    pub(super) async fn retry(&self, id: i64, at: i64, error: &str) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? \
             WHERE id = ? AND status = 'pending'",
        )
        .bind(at)
        .bind(error)
        .bind(id)
        .execute(&self.writer)
        .await
        .map_err(db)?;
        Ok(())
    }

    pub(super) async fn dead(&self, id: i64, error: &str) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET status = 'dead', attempts = attempts + 1, last_error = ? \
             WHERE id = ? AND status = 'pending'",
        )
        .bind(error)
        .bind(id)
        .execute(&self.writer)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// See [`crate::store::Store::outbox_record`]: delivered rows in one
    /// statement, retries and dead letters one by one, all in one write
    /// transaction.
    pub(super) async fn record(&self, attempts: &[(i64, Attempt)]) -> Result<()> {
        if attempts.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        let delivered: Vec<i64> = attempts
            .iter()
            .filter(|(_, a)| *a == Attempt::Delivered)
            .map(|(id, _)| *id)
            .collect();
        if !delivered.is_empty() {
            sqlx::query(
                "UPDATE outbox SET status = 'delivered', attempts = attempts + 1 \
                 WHERE id IN (SELECT value FROM json_each(?)) AND status = 'pending'",
            )
            .bind(json_text(&delivered)?)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        for (id, a) in attempts {
            let q = match a {
                Attempt::Delivered => continue,
                Attempt::Retry { at, error } => sqlx::query(
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, \
                     last_error = ? WHERE id = ? AND status = 'pending'",
                )
                .bind(*at)
                .bind(error.as_str()),
                Attempt::Dead { error } => sqlx::query(
                    "UPDATE outbox SET status = 'dead', attempts = attempts + 1, \
                     last_error = ? WHERE id = ? AND status = 'pending'",
                )
                .bind(error.as_str()),
            };
            q.bind(*id).execute(&mut *tx).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
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
