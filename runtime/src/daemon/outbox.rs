//! The outbox worker: claims due rows (a lease, so a crashed worker's rows
//! come back), delivers them concurrently through [`Channels`], and records
//! the result: delivered; retried later with exponential backoff and jitter
//! (a rescheduled row, never a sleep); or dead-lettered on a permanent
//! failure or when attempts run out. The response of a `call … as NAME`
//! goes back to its enrollment as a job (status 0 when it never came).
//!
//! Delivery is at least once: a crash after sending but before recording
//! sends the row again when its lease expires, with the same idempotency
//! key (`Idempotency-Key` header, e-mail `Message-ID`).

use super::Shared;
use super::apply::Job;
use crate::deliver::{Channels, Delivered};
use crate::store::{Attempt, OutboxKind, OutboxRow};
use nudge_compiler::value::Value;
use rand::Rng;
use std::sync::Arc;
use std::time::Instant;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Rows claimed per look.
pub const BATCH: usize = 256;

pub async fn run(shared: Arc<Shared>, channels: Arc<Channels>, cancel: CancellationToken) {
    let lease = i64::try_from(shared.config.outbox_lease.as_secs())
        .unwrap_or(i64::MAX)
        .max(1);
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let held = shared
            .metrics
            .signals
            .deliveries_held
            .load(std::sync::atomic::Ordering::Relaxed);
        let now = shared.clock.now();
        let lease_until = now.saturating_add(lease);
        let claimed = if held {
            Ok(Vec::new())
        } else {
            shared.store.claim_outbox(now, lease_until, BATCH).await
        };
        let rows = match claimed {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim outbox rows");
                Vec::new()
            }
        };
        if rows.is_empty() {
            tokio::select! {
                () = cancel.cancelled() => break,
                () = shared.metrics.signals.outbox.notified() => {}
                () = tokio::time::sleep(shared.config.tick) => {}
            }
            continue;
        }
        // a batch in flight finishes even when shutdown begins
        let mut set = JoinSet::new();
        for row in rows {
            let (shared, channels) = (shared.clone(), channels.clone());
            set.spawn(async move { deliver_one(&shared, &channels, row).await });
        }
        let mut attempts = Vec::new();
        let mut responses = Vec::new();
        while let Some(done) = set.join_next().await {
            if let Ok((id, attempt, response)) = done {
                attempts.push((id, attempt));
                responses.extend(response);
            }
        }
        // one transaction for the whole claim, then the call responses
        if let Err(e) = shared.store.outbox_record(&attempts).await {
            tracing::warn!(error = %e, rows = attempts.len(), "cannot record deliveries");
        }
        for outcome in shared.queue.submit_each(responses).await {
            if let Err(e) = outcome {
                tracing::warn!(error = %e, "cannot apply a call response");
            }
        }
    }
}

/// The channel a row goes out through (for metrics).
fn channel_of(row: &OutboxRow) -> String {
    let key = if row.payload.get("channel").is_some_and(|c| !c.is_null()) {
        "channel"
    } else {
        "url"
    };
    match row.payload.get(key) {
        Some(serde_json::Value::String(s)) if key == "channel" => s.clone(),
        Some(_) => "url".into(),
        None => "unknown".into(),
    }
}

/// The delay before attempt `attempts + 1`: base · 2^attempts, capped, with
/// jitter in [50 %, 100 %].
pub fn backoff(policy: &super::RetryPolicy, attempts: i64) -> i64 {
    let exp = (policy.base.as_secs_f64() * 2f64.powi(attempts.clamp(0, 30) as i32))
        .min(policy.max_delay.as_secs_f64());
    let jitter: f64 = rand::rng().random_range(0.5..=1.0);
    (exp * jitter).ceil().max(1.0) as i64
}

/// Deliver one row: what to record, and the call response to apply.
async fn deliver_one(
    shared: &Shared,
    channels: &Channels,
    row: OutboxRow,
) -> (i64, Attempt, Option<Job>) {
    let kind = match row.kind {
        OutboxKind::Message => "message",
        OutboxKind::Call => "call",
    };
    let started = Instant::now();
    let result = channels.deliver(kind, &row.payload, &row.idem_key).await;
    let took = started.elapsed();
    let channel = channel_of(&row);
    let now = shared.clock.now();
    let (attempt, response, outcome) = match result {
        Delivered::Ok { status, json } => (
            Attempt::Delivered,
            Some((status, Value::from_json(&json))),
            "delivered",
        ),
        Delivered::Transient(error) if row.attempts + 1 < shared.config.retry.max_attempts => {
            let at = now + backoff(&shared.config.retry, row.attempts);
            (Attempt::Retry { at, error }, None, "retry")
        }
        Delivered::Transient(error) => (
            Attempt::Dead {
                error: format!("gave up after {} attempts: {error}", row.attempts + 1),
            },
            Some((0, Value::Null)),
            "dead",
        ),
        Delivered::Permanent { status, error } => {
            (Attempt::Dead { error }, Some((status, Value::Null)), "dead")
        }
    };
    shared.metrics.delivery(&channel, outcome, took);
    let result_name = row
        .payload
        .get("result")
        .and_then(|r| r.as_str())
        .map(str::to_string);
    let job = match (row.kind, result_name, response) {
        (OutboxKind::Call, Some(name), Some((status, json))) => Some(Job::CallResponse {
            contact: row.contact.clone(),
            flow: row.flow.clone(),
            name,
            status,
            json,
        }),
        _ => None,
    };
    (row.id, attempt, job)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = super::super::RetryPolicy::default();
        for attempts in 0..20 {
            let d = backoff(&p, attempts);
            let full = (10.0 * 2f64.powi(attempts as i32)).min(3600.0);
            assert!(
                d as f64 >= (full * 0.5).floor() && d as f64 <= full.ceil(),
                "{attempts}: {d}"
            );
        }
    }
}
