//! Whether a store takes writes, for every engine: takes the outcome of
//! each write transaction; gives [`WriteHealth`] for `/metrics` and the
//! readiness check. The first failure after a success logs one `warn` line
//! with the reason; the first success after a failure one `info` line.
//! Conflicts are answers, not failures: they are not counted.

use super::{StoreError, WriteHealth};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How old the last write failure must be before the readiness check
/// tries a probe write (until then it answers with the failure).
pub(crate) const PROBE_AFTER: Duration = Duration::from_secs(2);

/// Write failures: how many, and the last one while it lasts.
#[derive(Debug, Default)]
pub(crate) struct Health {
    failures: AtomicU64,
    failing: Mutex<Option<(String, Instant)>>,
}

impl Health {
    /// A write failed (conflicts are answers, not failures).
    pub(crate) fn failed(&self, e: &StoreError) {
        if matches!(e, StoreError::Conflict(_)) {
            return;
        }
        self.failures.fetch_add(1, Ordering::Relaxed);
        let reason = e.to_string();
        let Ok(mut failing) = self.failing.lock() else {
            return;
        };
        if failing.is_none() {
            tracing::warn!(
                error = %reason,
                "database writes fail: inputs are answered 503 and /readyz is 503 until a write goes through"
            );
        }
        *failing = Some((reason, Instant::now()));
    }

    /// A write went through.
    pub(crate) fn ok(&self) {
        let Ok(mut failing) = self.failing.lock() else {
            return;
        };
        if let Some((reason, since)) = failing.take() {
            tracing::info!(
                failed_for_seconds = since.elapsed().as_secs(),
                last_error = %reason,
                "database writes go through again"
            );
        }
    }

    /// The last failure's reason and age, while writes fail.
    pub(crate) fn failing(&self) -> Option<(String, Duration)> {
        let failing = self.failing.lock().ok()?;
        failing.as_ref().map(|(r, at)| (r.clone(), at.elapsed()))
    }

    pub(crate) fn snapshot(&self) -> WriteHealth {
        WriteHealth {
            failing: self.failing().map(|(r, _)| r),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }
}

impl Health {
    /// The readiness answer on writes: ready while writes go through;
    /// the last failure while it is younger than [`PROBE_AFTER`]; after
    /// that, whether `probe` (a write) goes through now.
    pub(crate) async fn check<F>(&self, probe: impl FnOnce() -> F) -> Result<(), StoreError>
    where
        F: std::future::Future<Output = Result<(), StoreError>>,
    {
        match self.failing() {
            None => Ok(()),
            Some((reason, age)) if age < PROBE_AFTER => Err(StoreError::Unwritable(reason)),
            Some(_) => probe()
                .await
                .map_err(|e| StoreError::Unwritable(e.to_string())),
        }
    }
}
