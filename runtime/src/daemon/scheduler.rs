//! The scheduler: wakes due contacts in batches, straight from the store's
//! index on wake times (one indexed query per look, never a scan of every
//! contact), and hands them to the applier as `Timer` jobs. It sleeps until
//! the earliest wake time, at most one tick, or until a commit signals
//! something earlier. It also drops held postbacks past their hold time and
//! postback `dedupe` values past their keeping time. When the store fails
//! (the database is away), it logs, counts (`nudge_store_errors_total`) and
//! looks again after a pause growing from a tick to 5 s; nothing is lost, a
//! due contact stays due.
//!
//! Paused flows are left out of a contact's wake time by the applier, so
//! their due timers wait here for the resume. On a store shared by several
//! daemons (Postgres) each page is a claim (`Store::due_after`), renewed
//! while the page waits in the applier's queue (`Store::renew_due`).

use super::Shared;
use super::apply::{Done, Job};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Contacts woken per batch.
const BATCH: usize = 1000;

/// Batches in the applier's queue at once.
const IN_FLIGHT: usize = 3;

/// The longest pause after failed looks in a row (the database is away).
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The pause after `failing` failed looks in a row: a tick, doubled per
/// failure up to [`MAX_BACKOFF`] (never below a tick).
fn pause(tick: Duration, failing: u32) -> Duration {
    let grown = tick.saturating_mul(1u32 << failing.min(10));
    grown.min(MAX_BACKOFF.max(tick))
}

pub async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut last_expiry: Option<i64> = None;
    let mut failing = 0u32;
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let now = shared.clock.now();
        if last_expiry.is_none_or(|t| now.saturating_sub(t) >= 60) {
            last_expiry = Some(now);
            if let Err(e) = shared.store.expire_held(now).await {
                shared.metrics.store_error("scheduler");
                tracing::warn!(error = %e, "cannot expire held postbacks");
            }
            if let Err(e) = shared.store.expire_postback_keys(now).await {
                shared.metrics.store_error("scheduler");
                tracing::warn!(error = %e, "cannot expire postback `dedupe` values");
            }
        }
        match fire_due(&shared, now).await {
            Ok(n) if n > 0 => {
                failing = 0;
                continue;
            }
            Ok(_) => failing = 0,
            Err(e) => {
                shared.metrics.store_error("scheduler");
                let wait = pause(shared.config.tick, failing);
                failing = failing.saturating_add(1);
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64,
                    "cannot read due contacts; looking again after a pause");
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(wait) => {}
                }
                continue;
            }
        }
        let wait = match shared.store.next_wake().await {
            Ok(Some(w)) if w > now => Duration::from_secs((w - now) as u64).min(shared.config.tick),
            _ => shared.config.tick,
        };
        tokio::select! {
            () = cancel.cancelled() => break,
            () = shared.metrics.signals.wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Fire due contacts: one pass over the due set, a page at a time in
/// (wake time, id) order, keeping up to [`IN_FLIGHT`] pages in the
/// applier's queue so that one prepares while another commits and the next
/// is already waiting; how many were fired. A contact that became due
/// behind the pass is fired by the next one.
pub async fn fire_due(shared: &Arc<Shared>, now: i64) -> Result<usize, crate::store::StoreError> {
    let earliest = shared.store.next_wake().await?;
    if let Some(w) = earliest.filter(|w| *w <= now) {
        shared
            .metrics
            .timer_lag_seconds
            .store((now - w).max(0), Ordering::Relaxed);
    }
    let mut inflight: std::collections::VecDeque<tokio::task::JoinHandle<usize>> =
        std::collections::VecDeque::new();
    let mut after: Option<(i64, String)> = None;
    let mut total = 0;
    loop {
        let page = shared
            .store
            .due_after(now, after.as_ref().map(|(w, id)| (*w, id.as_str())), BATCH)
            .await?;
        let Some(last) = page.last().map(|(w, v)| (*w, v.state.contact.id.clone())) else {
            while let Some(h) = inflight.pop_front() {
                total += fired(h).await;
            }
            return Ok(total);
        };
        after = Some(last);
        let ids: Vec<String> = page
            .iter()
            .map(|(_, v)| v.state.contact.id.clone())
            .collect();
        let jobs = page
            .into_iter()
            .map(|(_, v)| Job::Timer {
                contact: v.state.contact.id.clone(),
                read: Some(Arc::new(v)),
            })
            .collect();
        let s = shared.clone();
        inflight.push_back(tokio::spawn(async move {
            let fired = renewing(&s, ids, s.queue.submit(jobs))
                .await
                .iter()
                .filter(|o| matches!(o, Ok(Done::Applied { .. })))
                .count();
            s.metrics
                .timers_fired
                .fetch_add(fired as u64, Ordering::Relaxed);
            fired
        }));
        if inflight.len() >= IN_FLIGHT
            && let Some(h) = inflight.pop_front()
        {
            total += fired(h).await;
        }
    }
}

/// Runs `work` (a claimed page in the applier's queue) while renewing the
/// page's claims every third of the store's lease, so that a slow applier
/// keeps its timers instead of another daemon firing them too (which the
/// version check would make harmless, but wasted). Nothing for a store
/// that does not claim.
async fn renewing<T>(shared: &Shared, ids: Vec<String>, work: impl Future<Output = T>) -> T {
    let Some(lease) = shared.store.due_lease() else {
        return work.await;
    };
    let every = Duration::from_secs(u64::try_from(lease / 3).unwrap_or(0).max(1));
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return done,
            () = tokio::time::sleep(every) => {
                let until = shared.clock.now().saturating_add(lease);
                if let Err(e) = shared.store.renew_due(&ids, until).await {
                    tracing::warn!(error = %e, "cannot renew the claims of due contacts");
                }
            }
        }
    }
}

/// How many a page's task fired; a task that died (a panic, a bug) is
/// logged and counts none.
async fn fired(h: tokio::task::JoinHandle<usize>) -> usize {
    match h.await {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "a scheduler page task failed");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_grows_from_a_tick_to_its_cap() {
        let tick = Duration::from_millis(100);
        assert_eq!(pause(tick, 0), tick);
        assert_eq!(pause(tick, 2), Duration::from_millis(400));
        assert_eq!(pause(tick, 30), MAX_BACKOFF);
        let slow = Duration::from_secs(9);
        assert_eq!(pause(slow, 3), slow);
    }
}
