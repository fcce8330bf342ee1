//! The scheduler: wakes due contacts in batches, straight from the store's
//! index on wake times (one indexed query per look, never a scan of every
//! contact), and hands them to the applier as `Timer` jobs. It sleeps until
//! the earliest wake time, at most one tick, or until a commit signals
//! something earlier. It also drops held postbacks past their hold time and
//! postback `dedupe` values past their keeping time.
//!
//! Paused flows are left out of a contact's wake time by the applier, so
//! their due timers wait here for the resume.

use super::Shared;
use super::apply::{Done, Job};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Contacts woken per batch.
const BATCH: usize = 1000;

/// Batches in the applier's queue at once.
const IN_FLIGHT: usize = 3;

pub async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut last_expiry: Option<i64> = None;
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let now = shared.clock.now();
        if last_expiry.is_none_or(|t| now.saturating_sub(t) >= 60) {
            last_expiry = Some(now);
            if let Err(e) = shared.store.expire_held(now).await {
                tracing::warn!(error = %e, "cannot expire held postbacks");
            }
            if let Err(e) = shared.store.expire_postback_keys(now).await {
                tracing::warn!(error = %e, "cannot expire postback `dedupe` values");
            }
        }
        match fire_due(&shared, now).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read due contacts"),
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
        let jobs = page
            .into_iter()
            .map(|(_, v)| Job::Timer {
                contact: v.state.contact.id.clone(),
                read: Some(Arc::new(v)),
            })
            .collect();
        let s = shared.clone();
        inflight.push_back(tokio::spawn(async move {
            let fired = s
                .queue
                .submit(jobs)
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
