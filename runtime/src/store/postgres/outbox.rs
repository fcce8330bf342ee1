//! The outbox half of [`PgStore`]: claiming rows under a lease, and
//! recording what delivery did (delivered, retry, dead, defer, requeue).
//! Takes row ids, lease tokens and instants; gives [`OutboxRow`]s.
//!
//! Guarantees: a claim is ONE statement, `UPDATE … WHERE id IN (SELECT …
//! FOR UPDATE SKIP LOCKED) RETURNING …`, stamping a new token from the
//! `outbox_lease` sequence, so claims of several stores at once never take
//! the same row and never wait for each other. Every ack and renewal is
//! fenced by that token and applies to pending rows only (requeue to dead
//! ones only), so the late report of a worker whose lease was taken over,
//! or of a settled row, changes nothing; a batch of acks is one statement.
//! A row whose stored payload is not JSON is dead-lettered by the claim
//! that meets it, never handed out.

use super::{PgStore, db};
use crate::store::rows::{limit, listed_outbox_row, outbox_row};
use crate::store::{Ack, Attempt, Lease, OutboxRow, OutboxStatus, Requeue, Result};
use sqlx::{AssertSqlSafe, PgConnection};

/// An outbox row as selected with [`COLUMNS`].
type Tuple = crate::store::rows::OutboxTuple<String>;

/// The columns of [`Tuple`], in order, of the table `o`.
const COLUMNS: &str = "o.id, o.contact, o.flow, o.step, o.kind, o.payload, o.idem_key, o.status, \
                       o.attempts, o.next_attempt_at, o.last_error, o.created_at, o.lease";

/// The claim: due rows not locked by another claim, leased with one new
/// token; `$4` the channels left out. Gives the rows as leased, in the
/// order they were due.
const CLAIM: &str = "WITH token AS (SELECT nextval('outbox_lease') AS t), \
     due AS (SELECT id, next_attempt_at AS at FROM outbox \
       WHERE status = 'pending' AND next_attempt_at <= $1 AND NOT (channel = ANY($4)) \
       ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED), \
     o AS (UPDATE outbox o SET next_attempt_at = $2, lease = token.t FROM token, due \
       WHERE o.id = due.id RETURNING o.*, due.at) \
     SELECT";

/// The whole claim statement, its rows in due order.
pub(super) fn claim_sql() -> String {
    format!("{CLAIM} {COLUMNS} FROM o ORDER BY o.at, o.id")
}

/// One statement for a batch of acks (`$1` ids, `$2` tokens): each row's
/// new status, attempts added, due time and error (`NULL`: kept). The
/// fenced statements ([`ACKS`], [`RENEW`]) test `status || ''` so that
/// the planner finds each row by its id: on the `outbox_due` index it
/// would walk every pending row (the whole backlog) to test each against
/// the list.
pub(super) const ACKS: &str = "UPDATE outbox o SET status = a.status, attempts = o.attempts + a.counted, \
     next_attempt_at = coalesce(a.at, o.next_attempt_at), \
     last_error = coalesce(a.error, o.last_error) \
     FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[], \
     $6::text[]) AS a(id, lease, status, counted, at, error) \
     WHERE o.id = a.id AND o.lease = a.lease AND o.status || '' = 'pending' RETURNING o.id";

/// Extends the leases of (`$2` ids, `$3` tokens) still held to `$1`.
pub(super) const RENEW: &str = "UPDATE outbox o SET next_attempt_at = $1 \
     FROM UNNEST($2::bigint[], $3::bigint[]) AS l(id, lease) \
     WHERE o.id = l.id AND o.lease = l.lease AND o.status || '' = 'pending' RETURNING o.id";

impl PgStore {
    /// See [`crate::store::Store::claim_outbox_except`].
    pub(super) async fn claim(
        &self,
        now: i64,
        lease_until: i64,
        limit_: usize,
        skip: &[String],
    ) -> Result<Vec<OutboxRow>> {
        let rows: Vec<Tuple> = sqlx::query_as(AssertSqlSafe(claim_sql()))
            .bind(now)
            .bind(lease_until)
            .bind(limit(limit_))
            .bind(skip)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.failed(db(e)))?;
        let mut out = Vec::with_capacity(rows.len());
        let mut damaged = Vec::new();
        for t in rows {
            match serde_json::from_str(&t.5) {
                Ok(payload) => out.push(outbox_row(t, |_| payload)?),
                Err(_) => damaged.push(t.0),
            }
        }
        if !damaged.is_empty() {
            self.dead_letter_damaged(&damaged).await?;
        }
        self.health.ok();
        Ok(out)
    }

    /// Rows whose payload is not JSON (never written so by Nudge): dead,
    /// kept for inspection, out of the claim.
    async fn dead_letter_damaged(&self, ids: &[i64]) -> Result<()> {
        tracing::warn!(rows = ?ids, "outbox rows with a damaged payload dead-lettered");
        let q = sqlx::query(
            "UPDATE outbox SET status = 'dead', \
             last_error = 'the stored payload is not valid JSON' WHERE id = ANY($1)",
        )
        .bind(ids);
        self.write(q).await.map(drop)
    }

    /// See [`crate::store::Store::outbox_record`]: one statement.
    pub(super) async fn record(&self, acks: &[Ack]) -> Result<Vec<Lease>> {
        if acks.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.acquire().await.map_err(|e| self.failed(db(e)))?;
        let lost = apply_acks(&mut conn, acks)
            .await
            .map_err(|e| self.failed(e))?;
        self.health.ok();
        Ok(lost)
    }

    /// See [`crate::store::Store::outbox_renew`]: one statement.
    pub(super) async fn renew(&self, leases: &[Lease], lease_until: i64) -> Result<Vec<Lease>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, tokens): (Vec<i64>, Vec<i64>) = leases.iter().map(|l| (l.id, l.token)).unzip();
        let kept: Vec<(i64,)> = sqlx::query_as(RENEW)
            .bind(lease_until)
            .bind(ids)
            .bind(tokens)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.failed(db(e)))?;
        Ok(not_in(leases, &kept))
    }

    pub(super) async fn list(
        &self,
        status: Option<OutboxStatus>,
        limit_: usize,
    ) -> Result<Vec<OutboxRow>> {
        let rows: Vec<Tuple> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM outbox o WHERE $1::text IS NULL OR o.status = $1 \
             ORDER BY o.id LIMIT $2"
        )))
        .bind(status.map(OutboxStatus::name))
        .bind(limit(limit_))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.into_iter().map(listed_outbox_row).collect()
    }

    pub(super) async fn requeue(&self, id: i64, now: i64) -> Result<Requeue> {
        let q = sqlx::query(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $1 \
             WHERE id = $2 AND status = 'dead'",
        )
        .bind(now)
        .bind(id);
        if self.write(q).await? == 1 {
            return Ok(Requeue::Pending);
        }
        let found: Option<(i64,)> = sqlx::query_as("SELECT id FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(if found.is_some() {
            Requeue::NotDead
        } else {
            Requeue::Missing
        })
    }
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

/// Apply fenced acks on `conn` (inside the caller's transaction for a
/// commit settling call rows), all in one statement. Gives the leases that
/// were lost.
pub(super) async fn apply_acks(conn: &mut PgConnection, acks: &[Ack]) -> Result<Vec<Lease>> {
    let n = acks.len();
    let (mut ids, mut tokens, mut statuses) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut counted, mut ats, mut errors) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for a in acks {
        let (status, count, at, error) = match &a.attempt {
            Attempt::Delivered => ("delivered", 1_i64, None, None),
            Attempt::Retry { at, error } => ("pending", 1, Some(*at), Some(error.as_str())),
            Attempt::Dead { error } => ("dead", 1, None, Some(error.as_str())),
            Attempt::Defer { at } => ("pending", 0, Some(*at), None),
        };
        ids.push(a.lease.id);
        tokens.push(a.lease.token);
        statuses.push(status);
        counted.push(count);
        ats.push(at);
        errors.push(error);
    }
    let done: Vec<(i64,)> = sqlx::query_as(ACKS)
        .bind(ids)
        .bind(tokens)
        .bind(statuses)
        .bind(counted)
        .bind(ats)
        .bind(errors)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    let leases: Vec<Lease> = acks.iter().map(|a| a.lease).collect();
    Ok(not_in(&leases, &done))
}
