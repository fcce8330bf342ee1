//! The outbox worker: a pool of at most [`BATCH`] deliveries in flight,
//! fed continuously: it claims due rows under a lease whenever slots free
//! up, delivers each through [`Channels`] as its own task, and records the
//! results in one transaction per batch of finished deliveries: delivered;
//! retried later with exponential backoff and jitter (a rescheduled row,
//! never a sleep); or dead-lettered on a permanent failure or when attempts
//! run out. Every failed attempt, retry and dead letter is logged at warn
//! with its channel, outbox id and reason (never a URL, header or body).
//!
//! Fair: a channel's `rate` is applied when its rows are claimed
//! ([`Channels::admit`]): a row whose slot is later is deferred (pending
//! again from that instant, no attempt counted) instead of sleeping in its
//! delivery; and one channel holds at most [`SHARE`] slots of the pool: a
//! channel with more than `SHARE - CLAIM` deliveries in flight is left out
//! of the claims, so no claim (at most [`CLAIM`] rows) can take it past its
//! share and no claimed row waits for a slot of its channel. A slow or
//! throttled channel never holds back another, and a fast one is never
//! slowed by its own share (its rows are not deferred: once a quarter of
//! its deliveries ended it is claimed from again). A claim that leaves a
//! channel out walks the due rows past that channel's backlog (each row's
//! channel is in its JSON payload: 38 ms with 100 000 due), holding the
//! writer; so once such a claim found all it could, the next one that
//! would leave channels out waits for the poll tick (`Config::tick`, 1 s)
//! instead of running on every commit's wake-up: while one channel is at
//! its share, another channel's new rows may wait up to a tick.
//!
//! Fenced: each claim stamps its rows with a token; every ack carries it
//! and changes nothing once another claim took the row over (its lease
//! expired). The worker renews the lease of the rows in flight every third
//! of the lease, so a long delivery keeps its rows.
//!
//! The response of a `call … as NAME` goes back to its enrollment as a job
//! whose commit also settles the call's row (fenced), so a crash between
//! the two cannot lose the response: either both are written, or the row
//! goes out again when its lease ends. The enrollment's wait has a deadline
//! too ([`call_limits`]). A response that cannot be applied (its contact is
//! gone) is logged and its row recorded alone.
//!
//! Delivery is at least once: a crash after sending but before recording
//! sends the row again when its lease expires, with the same idempotency
//! key (`Idempotency-Key` header, e-mail `Message-ID`); at most [`BATCH`]
//! rows are claimed and unrecorded at any time.

use super::apply::{ApplyError, Job};
use super::{Config, Shared};
use crate::deliver::{Admission, Channels, Delivered};
use crate::store::{Ack, Attempt, Lease, OutboxKind, OutboxRow};
use crate::vm::CallLimits;
use nudge_compiler::value::Value;
use rand::Rng;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::{Id, JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

/// Deliveries in flight at most: rows claimed and not yet recorded (what a
/// crash can send twice).
pub const BATCH: usize = 256;

/// One channel's deliveries in flight at most: the other channels always
/// have a quarter of the pool.
pub const SHARE: usize = BATCH * 3 / 4;

/// Rows per claim at most. A channel with more than `SHARE - CLAIM`
/// deliveries in flight is left out of the claims, so a claim never takes
/// it past [`SHARE`].
const CLAIM: usize = BATCH / 4;

/// A channel with more deliveries in flight than this is left out of the
/// next claim.
const CLAIM_BELOW: usize = SHARE - CLAIM;

/// While deliveries are in flight, claim again only once this many slots
/// are free (fewer, larger claims).
const CLAIM_AT: usize = BATCH / 8;

/// A settle waits for at least this many finished deliveries (or
/// [`SETTLE_WAIT`], or the last one in flight) before recording them: one
/// transaction for many rows, not one per row as they finish one by one.
const SETTLE_AT: usize = BATCH / 8;

/// How long a settle waits for more finished deliveries.
const SETTLE_WAIT: Duration = Duration::from_millis(2);

/// How long a `call … as NAME` waits for its response: the call's timeout
/// plus the outbox lease (after which a crashed worker's claim goes out
/// again).
pub fn call_limits(config: &Config) -> CallLimits {
    CallLimits {
        default_timeout: secs(config.retry.timeout),
        grace: secs(config.outbox_lease),
    }
}

/// A wait in whole seconds, rounded up, at least one (a deferred row that
/// comes back before its slot is deferred again; the slot stays its own).
fn whole_seconds(d: Duration) -> i64 {
    let up = i64::from(d.subsec_nanos() > 0);
    i64::try_from(d.as_secs())
        .unwrap_or(i64::MAX)
        .saturating_add(up)
        .max(1)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX).max(1)
}

pub async fn run(shared: Arc<Shared>, channels: Arc<Channels>, cancel: CancellationToken) {
    let mut w = Worker::new(shared.clone(), channels);
    let every = (shared.config.outbox_lease / 3).max(Duration::from_secs(1));
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // an interval, not a sleep made anew each turn: another branch (a
    // renewal every second with a short lease) must not keep postponing the
    // look that brings deferred and retried rows back
    let mut poll = tokio::time::interval(shared.config.tick);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut look = true;
    loop {
        // deliveries in flight finish (and are recorded) even when
        // shutdown begins; nothing new is claimed
        let stopping = cancel.is_cancelled();
        if look && !stopping {
            w.claim().await;
        }
        if stopping && w.tasks.is_empty() {
            break;
        }
        look = false;
        tokio::select! {
            Some(done) = w.tasks.join_next_with_id(), if !w.tasks.is_empty() => {
                w.settle(done).await;
                look = w.more || w.unblocked();
            }
            _ = renew.tick() => w.renew().await,
            () = cancel.cancelled(), if !stopping => {}
            () = shared.metrics.signals.outbox.notified() => look = true,
            _ = poll.tick() => {
                w.dry = false;
                look = true;
            }
        }
    }
}

/// A row in flight: its fence and its channel.
struct Flight {
    fence: Lease,
    channel: String,
}

/// What a delivery task hands back: its row, and the attempt to record
/// (`None` when the call response's commit settled the row).
struct Settled {
    id: i64,
    attempt: Option<Attempt>,
}

struct Worker {
    shared: Arc<Shared>,
    channels: Arc<Channels>,
    lease: i64,
    tasks: JoinSet<Settled>,
    /// The row of each task (to free its slot if the task panics).
    rows: HashMap<Id, i64>,
    inflight: HashMap<i64, Flight>,
    /// Deliveries in flight per channel.
    busy: HashMap<String, usize>,
    /// The last claim was full: more rows may be due.
    more: bool,
    /// The channels the last claim left out (near their share).
    skipped: Vec<String>,
    /// A claim that left channels out found every due row it could take:
    /// until the next poll tick, no claim leaves them out again.
    dry: bool,
}

impl Worker {
    fn new(shared: Arc<Shared>, channels: Arc<Channels>) -> Worker {
        Worker {
            lease: secs(shared.config.outbox_lease),
            shared,
            channels,
            tasks: JoinSet::new(),
            rows: HashMap::new(),
            inflight: HashMap::new(),
            busy: HashMap::new(),
            more: false,
            skipped: Vec::new(),
            dry: false,
        }
    }

    /// Claim as many rows as slots are free; start the ones that may go,
    /// defer the others.
    async fn claim(&mut self) {
        // a deploy builds the channels of its bundle: claims go through them
        if let Some(c) = self.shared.deployed().channels.clone()
            && !Arc::ptr_eq(&c, &self.channels)
        {
            self.channels = c;
        }
        let free = BATCH.saturating_sub(self.inflight.len()).min(CLAIM);
        let held = self
            .shared
            .metrics
            .signals
            .deliveries_held
            .load(std::sync::atomic::Ordering::Relaxed);
        if held || free == 0 || (free < CLAIM_AT && !self.inflight.is_empty()) {
            return;
        }
        let now = self.shared.clock.now();
        let full: Vec<String> = self
            .busy
            .iter()
            .filter(|(_, n)| **n > CLAIM_BELOW)
            .map(|(c, _)| c.clone())
            .collect();
        if !full.is_empty() && self.dry {
            return;
        }
        self.skipped.clone_from(&full);
        let rows = match self
            .shared
            .store
            .claim_outbox_except(now, now.saturating_add(self.lease), free, &full)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                self.shared.metrics.store_error("outbox");
                tracing::warn!(error = %e, "cannot claim outbox rows; looking again at the next tick");
                self.more = false;
                return;
            }
        };
        self.more = rows.len() == free;
        self.dry = !full.is_empty() && !self.more;
        let deferred = self.place(rows, now);
        self.record(&deferred).await;
    }

    /// Start the claimed rows that may go; give the others' deferrals.
    fn place(&mut self, rows: Vec<OutboxRow>, now: i64) -> Vec<(Ack, String)> {
        let mut deferred = Vec::new();
        for row in rows {
            if let Some(f) = self.inflight.get_mut(&row.id) {
                // its lease ran out under a delivery of ours (the clock
                // jumped, or a renewal failed): that delivery goes on and
                // is recorded under this claim's token
                f.fence = row.fence();
                continue;
            }
            let channel = channel_of(&row);
            match self.admit(&row, &channel, now) {
                Ok(wait) => self.spawn(row, channel, wait),
                Err(at) => {
                    self.shared
                        .metrics
                        .delivery(&channel, "deferred", Duration::ZERO);
                    let attempt = Attempt::Defer { at };
                    let lease = row.fence();
                    deferred.push((Ack { lease, attempt }, channel));
                }
            }
        }
        deferred
    }

    /// A channel the last claim left out has room again: claim anew.
    fn unblocked(&self) -> bool {
        self.skipped
            .iter()
            .any(|c| self.busy.get(c).copied().unwrap_or(0) <= CLAIM_BELOW)
    }

    /// `Ok(wait)` when the row may go (after `wait`), `Err(instant)` when
    /// it must wait for its channel's rate (or, should a claim ever bring
    /// its channel past the share, a second) until then.
    fn admit(&self, row: &OutboxRow, channel: &str, now: i64) -> Result<Duration, i64> {
        if self.busy.get(channel).copied().unwrap_or(0) >= SHARE {
            return Err(now.saturating_add(1));
        }
        let Some(name) = row.payload.get("channel").and_then(|c| c.as_str()) else {
            return Ok(Duration::ZERO);
        };
        match self.channels.admit(name, row.id) {
            Admission::Go(wait) => Ok(wait),
            Admission::Later(d) => Err(now.saturating_add(whole_seconds(d))),
        }
    }

    fn spawn(&mut self, row: OutboxRow, channel: String, wait: Duration) {
        *self.busy.entry(channel.clone()).or_default() += 1;
        let id = row.id;
        self.inflight.insert(
            id,
            Flight {
                fence: row.fence(),
                channel,
            },
        );
        let (shared, channels) = (self.shared.clone(), self.channels.clone());
        let task = self.tasks.spawn(async move {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            deliver_one(&shared, &channels, row).await
        });
        self.rows.insert(task.id(), id);
    }

    /// Free the slot of a finished row; gives its flight.
    fn finish(&mut self, id: i64) -> Option<Flight> {
        let f = self.inflight.remove(&id)?;
        if let Some(n) = self.busy.get_mut(&f.channel) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.busy.remove(&f.channel);
            }
        }
        Some(f)
    }

    /// Settle a finished delivery with the others that finish by the time
    /// [`SETTLE_AT`] have (or within [`SETTLE_WAIT`]), in one transaction.
    async fn settle(&mut self, first: Result<(Id, Settled), JoinError>) {
        let mut acks = Vec::new();
        let (mut n, until) = (0, tokio::time::Instant::now() + SETTLE_WAIT);
        let mut next = Some(first);
        loop {
            while let Some(done) = next {
                self.take(done, &mut acks);
                n += 1;
                next = self.tasks.try_join_next_with_id();
            }
            if n >= SETTLE_AT || self.tasks.is_empty() {
                break;
            }
            match tokio::time::timeout_at(until, self.tasks.join_next_with_id()).await {
                Ok(Some(done)) => next = Some(done),
                Ok(None) | Err(_) => break,
            }
        }
        self.record(&acks).await;
    }

    /// Free a finished task's slot; its ack (with its channel) to record.
    fn take(&mut self, done: Result<(Id, Settled), JoinError>, acks: &mut Vec<(Ack, String)>) {
        match done {
            Ok((task, s)) => {
                self.rows.remove(&task);
                if let (Some(f), Some(attempt)) = (self.finish(s.id), s.attempt) {
                    let lease = f.fence;
                    acks.push((Ack { lease, attempt }, f.channel));
                }
            }
            Err(e) => {
                if let Some(id) = self.rows.remove(&e.id()) {
                    self.finish(id);
                    tracing::error!(outbox_id = id, error = %e,
                        "a delivery task failed; its row goes out again when its lease ends");
                }
            }
        }
    }

    /// Record acks (each with its row's channel) in one transaction.
    async fn record(&self, acks: &[(Ack, String)]) {
        if acks.is_empty() {
            return;
        }
        let only: Vec<Ack> = acks.iter().map(|(a, _)| a.clone()).collect();
        match self.shared.store.outbox_record(&only).await {
            Ok(lost) => {
                for l in lost {
                    let channel = acks.iter().find(|(a, _)| a.lease == l).map(|(_, c)| c);
                    self.lease_lost(l, channel, "its ack changed nothing");
                }
            }
            Err(e) => {
                self.shared.metrics.store_error("outbox");
                tracing::warn!(error = %e, rows = acks.len(),
                    "cannot record deliveries; the rows go out again when their lease ends");
            }
        }
    }

    /// Logged and counted (outcome `lease_lost`).
    fn lease_lost(&self, l: Lease, channel: Option<&String>, what: &str) {
        let channel = channel.map_or("unknown", String::as_str);
        self.shared
            .metrics
            .delivery(channel, "lease_lost", Duration::ZERO);
        tracing::warn!(channel = %channel, outbox_id = l.id,
            "outbox row's lease was taken over by another claim: {what}");
    }

    /// Extend the lease of every row in flight.
    async fn renew(&self) {
        let leases: Vec<Lease> = self.inflight.values().map(|f| f.fence).collect();
        if leases.is_empty() {
            return;
        }
        let until = self.shared.clock.now().saturating_add(self.lease);
        match self.shared.store.outbox_renew(&leases, until).await {
            Ok(lost) => {
                for l in lost {
                    let channel = self.inflight.get(&l.id).map(|f| &f.channel);
                    self.lease_lost(l, channel, "it may be delivered twice");
                }
            }
            Err(e) => {
                self.shared.metrics.store_error("outbox");
                tracing::warn!(error = %e, rows = leases.len(), "cannot renew outbox leases");
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

/// Deliver one row; log a failure; apply a call's response with its ack.
async fn deliver_one(shared: &Shared, channels: &Channels, row: OutboxRow) -> Settled {
    let kind = match row.kind {
        OutboxKind::Message => "message",
        OutboxKind::Call => "call",
    };
    let started = Instant::now();
    let result = channels.deliver(kind, &row.payload, &row.idem_key).await;
    let took = started.elapsed();
    let channel = channel_of(&row);
    let (attempt, response, outcome) = judge(shared, &row, &channel, result);
    shared.metrics.delivery(&channel, outcome, took);
    let result_name = row.payload.get("result").and_then(|r| r.as_str());
    if let (OutboxKind::Call, Some(name), Some((status, json))) = (row.kind, result_name, response)
    {
        let job = Job::CallResponse {
            contact: row.contact.clone(),
            flow: row.flow.clone(),
            name: name.to_string(),
            status,
            json,
            ack: Ack {
                lease: row.fence(),
                attempt: attempt.clone(),
            },
        };
        match shared.queue.submit(vec![job]).await.pop() {
            Some(Ok(_)) => {
                return Settled {
                    id: row.id,
                    attempt: None,
                };
            }
            Some(Err(ApplyError::NotFound(_))) => {
                tracing::warn!(channel = %channel, outbox_id = row.id,
                    "a call response's contact is gone; its row is recorded without it");
            }
            Some(Err(e)) => return unapplied(&channel, row.id, &e.to_string()),
            None => return unapplied(&channel, row.id, "the applier gave no answer"),
        }
    }
    Settled {
        id: row.id,
        attempt: Some(attempt),
    }
}

/// A call response not committed (storage, shutdown, a lost lease): the
/// row stays leased and goes out again, so the response is not lost.
fn unapplied(channel: &str, id: i64, error: &str) -> Settled {
    tracing::warn!(channel = %channel, outbox_id = id, error = %error,
        "cannot apply a call response; its row goes out again when its lease ends");
    Settled { id, attempt: None }
}

/// What an attempt comes to: the ack, the response for a waiting call, and
/// the outcome's metric label. Failures are logged here.
fn judge(
    shared: &Shared,
    row: &OutboxRow,
    channel: &str,
    result: Delivered,
) -> (Attempt, Option<(i64, Value)>, &'static str) {
    let attempt = row.attempts + 1;
    let max = shared.config.retry.max_attempts;
    match result {
        Delivered::Ok { status, json } => (
            Attempt::Delivered,
            Some((status, Value::from_json(&json))),
            "delivered",
        ),
        Delivered::Transient(error) if attempt < max => {
            let at = shared.clock.now() + backoff(&shared.config.retry, row.attempts);
            tracing::warn!(channel = %channel, outbox_id = row.id, attempt, max_attempts = max,
                retry_at = %crate::clock::format_instant(at), reason = %error,
                "delivery failed; retrying");
            (Attempt::Retry { at, error }, None, "retry")
        }
        Delivered::Transient(error) => {
            tracing::warn!(channel = %channel, outbox_id = row.id, attempt, max_attempts = max,
                reason = %error, "delivery failed; attempts used up, dead letter");
            let error = format!("gave up after {attempt} attempts: {error}");
            (Attempt::Dead { error }, Some((0, Value::Null)), "dead")
        }
        Delivered::Permanent { status, error } => {
            tracing::warn!(channel = %channel, outbox_id = row.id, attempt, status,
                reason = %error, "delivery refused; dead letter");
            (Attempt::Dead { error }, Some((status, Value::Null)), "dead")
        }
    }
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
