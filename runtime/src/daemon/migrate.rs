//! `--migrate` (RUNTIME.md §5): active enrollments on an older version of a
//! flow that the deployed version still has move to the deployed version
//! at the step of the same name. The step runs again from its start (its
//! `Step` instruction): statements before its first wait run again, and a
//! wait in progress is dropped and armed anew from that step, its timers
//! counted from the migration instant. Enrollments whose step (or flow) the
//! new version lacks are listed, not dropped: they stay on their version,
//! and the deploy answer, the log and `nudge_migrations_unmapped_total`
//! count them per flow, step and version.
//!
//! What stands where comes from the per-version flow counters (no state is
//! read); the contacts are then walked a page at a time as
//! [`Job::Migrate`]s, committed in groups by the applier like any input.

use super::deploy::{Deployment, Unmapped};
use super::{Done, Job, Shared};
use crate::store::StoreError;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Contacts listed per page of the walk.
const PAGE: usize = 1000;

/// Move what can move to `dep`; gives how many enrollments moved and what
/// stays behind.
pub(super) async fn run(
    shared: &Arc<Shared>,
    dep: &Deployment,
) -> Result<(usize, Vec<Unmapped>), StoreError> {
    let (movable, unmapped) = plan(shared, dep).await?;
    for u in &unmapped {
        tracing::warn!(flow = %u.flow, step = %u.step, version = %u.version, count = u.count,
            "--migrate: the new version has no step of this name; these enrollments stay on their version");
    }
    let left: i64 = unmapped.iter().map(|u| u.count).sum();
    shared
        .metrics
        .migrations_unmapped
        .fetch_add(u64::try_from(left).unwrap_or(0), Ordering::Relaxed);
    let moved = if movable > 0 { walk(shared).await? } else { 0 };
    shared
        .metrics
        .migrations_moved
        .fetch_add(moved as u64, Ordering::Relaxed);
    tracing::info!(version = %dep.version, moved, unmapped = left, "--migrate: enrollments moved to the deployed version");
    Ok((moved, unmapped))
}

/// From the counters: how many active enrollments on older versions can
/// move, and the ones that cannot.
async fn plan(shared: &Shared, dep: &Deployment) -> Result<(i64, Vec<Unmapped>), StoreError> {
    let mut movable = 0;
    let mut unmapped = Vec::new();
    for c in shared.store.flow_counts().await? {
        let program = dep.bundle.flow(&c.flow);
        for (version, steps) in c.versions {
            if version == dep.version || version.is_empty() {
                continue;
            }
            for (step, count) in steps {
                if program.is_some_and(|p| p.step(&step).is_some()) {
                    movable += count;
                } else {
                    unmapped.push(Unmapped {
                        flow: c.flow.clone(),
                        step,
                        version: version.clone(),
                        count,
                    });
                }
            }
        }
    }
    Ok((movable, unmapped))
}

/// Every contact, a page at a time, as migrate jobs; gives the
/// enrollments moved.
async fn walk(shared: &Shared) -> Result<usize, StoreError> {
    let mut after: Option<String> = None;
    let mut moved = 0;
    loop {
        let ids = shared.store.contact_ids(after.as_deref(), PAGE).await?;
        let Some(last) = ids.last().cloned() else {
            break;
        };
        let jobs = ids
            .into_iter()
            .map(|contact| Job::Migrate { contact })
            .collect();
        let mut failed = Vec::new();
        for outcome in shared.queue.submit_each(jobs).await {
            match outcome {
                Ok(Done::Migrated { moved: n }) => moved += n,
                Ok(_) => {}
                Err(e) => failed.push(e),
            }
        }
        if let Some(first) = failed.first() {
            tracing::warn!(failed = failed.len(), error = %first, "--migrate: contacts not moved; they stay on their version until the next deploy with --migrate");
        }
        after = Some(last);
    }
    Ok(moved)
}
