//! Group commit: several units (one API request, one scheduler batch …)
//! prepared in memory and written in one store commit, each unit all or
//! nothing. A unit with a failing job is left out and the rest prepared
//! again; a store error while preparing leaves out only the units that
//! fail to prepare on their own (a quarantined contact, a bundle that
//! cannot be read), found by halves; a store conflict (a concurrent writer)
//! is retried unit by unit.
//!
//! The queue overlaps the preparation of the next group with the commit of
//! the current one. The next group then reads what the commit in flight
//! writes from an [`Overlay`] instead of the store. If that commit fails,
//! the group prepared on it is prepared again from the store; and the
//! overlay is only used when the commit in flight touches nothing the
//! overlay does not cover (postbacks held or released, a stored contact's
//! unique keys changing).

use super::apply::{Applier, ApplyError, Job, Outcome, Prepared, aborted};
use crate::engine::ContactState;
use crate::store::{Commit, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a unit refused by a conflict is prepared again from the store
/// and committed on its own before its callers get the conflict: with
/// several daemons on one database, a busy contact may move under a unit
/// more than once.
const ALONE_ATTEMPTS: u32 = 6;

/// The pause before attempt `n` (1-based) of a unit alone: 1, 2, 4, 8, 16 ms
/// and up to as much again at random, so that two daemons retrying on the
/// same contact fall apart.
fn conflict_pause(n: u32) -> Duration {
    use rand::Rng;
    let base = 1000u64 << n.saturating_sub(1).min(4);
    Duration::from_micros(base + rand::rng().random_range(0..base))
}

/// What a commit in flight writes, as the next group must see it: the
/// commit itself (shared, not copied) and indexes into it.
#[derive(Debug, Default)]
pub struct Overlay {
    commit: Arc<Commit>,
    /// Contact id → its write in the commit.
    contacts: HashMap<String, usize>,
    /// Unique keys → contact id.
    pub keys: HashMap<(String, String), String>,
    /// Event idempotency keys.
    pub events: HashSet<String>,
    /// Postback `dedupe` values (source, value).
    pub postbacks: HashSet<(String, String)>,
    /// Whether a group may be prepared on it (see the module header).
    pub usable: bool,
}

impl Overlay {
    fn of(p: &Prepared) -> Overlay {
        let c = &p.commit;
        let mut o = Overlay {
            commit: c.clone(),
            usable: !p.keys_moved
                && c.held.is_empty()
                && c.released.is_empty()
                && c.rejected.is_empty(),
            ..Overlay::default()
        };
        for (i, w) in c.contacts.iter().enumerate() {
            let id = &w.state.contact.id;
            for k in &w.keys {
                o.keys.insert(k.clone(), id.clone());
            }
            // the last write of a contact wins
            o.contacts.insert(id.clone(), i);
        }
        o.events
            .extend(c.events.iter().filter_map(|e| e.key.clone()));
        o.postbacks.extend(
            c.postback_keys
                .iter()
                .map(|k| (k.source.clone(), k.key.clone())),
        );
        o
    }

    /// A contact the commit writes: its state, the version it gets and its
    /// wake time.
    pub fn contact(&self, id: &str) -> Option<(&ContactState, i64, Option<i64>)> {
        let w = &self.commit.contacts[*self.contacts.get(id)?];
        Some((
            &w.state,
            w.expected_version.map_or(1, |v| v + 1),
            w.next_wake,
        ))
    }
}

/// A copy of `job` to prepare. A timer's state as the scheduler read it
/// moves into the copy (the unit keeps `read: None`), so the preparation
/// takes it without copying the state; should the unit be prepared again
/// (a unit left out, a failed commit in flight, a conflict), the contact is
/// loaded from the store, as for any timer without a read.
fn take_read(job: &mut Job) -> Job {
    match job {
        Job::Timer { contact, read } => Job::Timer {
            contact: contact.clone(),
            read: read.take(),
        },
        j => j.clone(),
    }
}

/// A group on its way: prepared, maybe committing, then settled.
pub struct Group {
    units: Vec<Vec<Job>>,
    /// Units already settled (left out, or failed before the commit).
    results: Vec<Option<Vec<Outcome>>>,
    /// Units that apply if the commit succeeds, with their outcomes.
    split: Vec<(usize, Vec<Outcome>)>,
    prepared: Option<Prepared>,
    /// Whether it was prepared on an overlay.
    on_overlay: bool,
    started: Instant,
}

impl Group {
    /// The overlay of its commit, for the next group.
    pub fn overlay(&self) -> Overlay {
        self.prepared.as_ref().map(Overlay::of).unwrap_or_default()
    }

    pub fn on_overlay(&self) -> bool {
        self.on_overlay
    }

    /// Its units, to prepare again.
    pub fn into_units(self) -> Vec<Vec<Job>> {
        self.units
    }
}

impl Applier {
    /// Apply several units in one commit (no overlap); outcomes per unit.
    pub async fn apply_units(&self, units: Vec<Vec<Job>>) -> Vec<Vec<Outcome>> {
        let mut group = self.prepare_group(units, None).await;
        let committed = self.commit_group(&mut group).await;
        self.finish_group(group, committed).await
    }

    /// Prepare units, leaving out those with a failing job until the rest
    /// prepares clean.
    pub async fn prepare_group(&self, units: Vec<Vec<Job>>, overlay: Option<&Overlay>) -> Group {
        let mut g = Group {
            results: vec![None; units.len()],
            split: Vec::new(),
            prepared: None,
            on_overlay: overlay.is_some(),
            started: Instant::now(),
            units,
        };
        let mut active: Vec<usize> = (0..g.units.len()).collect();
        let mut retried = false;
        // each round leaves out at least one unit, so this ends (a store
        // error that no unit causes alone fails them all)
        while !active.is_empty() {
            let mut jobs: Vec<Job> = Vec::new();
            for &u in &active {
                jobs.extend(g.units[u].iter_mut().map(take_read));
            }
            let prepared = match self.prepare(jobs, overlay).await {
                Ok(p) => p,
                Err(e) if active.len() == 1 => {
                    fail(&mut g.results, &active, &g.units, &e.into());
                    return g;
                }
                Err(e) if retried => {
                    // it failed together, then every unit prepared alone
                    fail(&mut g.results, &active, &g.units, &e.into());
                    return g;
                }
                Err(_) => {
                    // leave out only the units that fail on their own
                    let culprits = self.culprits(&g.units, &active, overlay).await;
                    retried = culprits.is_empty();
                    for (u, e) in &culprits {
                        fail(&mut g.results, &[*u], &g.units, e);
                    }
                    active.retain(|u| !culprits.iter().any(|(c, _)| c == u));
                    continue;
                }
            };
            let mut it = prepared.outcomes.iter().cloned();
            let mut failed = Vec::new();
            let mut split = Vec::new();
            for &u in &active {
                let part: Vec<Outcome> = it.by_ref().take(g.units[u].len()).collect();
                let oks = part.iter().filter(|o| o.is_ok()).count();
                let effects = part
                    .iter()
                    .any(|o| o.as_ref().is_err_and(ApplyError::left_effects));
                if part.iter().any(Result::is_err) && (oks > 0 || effects) {
                    failed.push(u);
                    g.results[u] = Some(aborted(part));
                } else {
                    split.push((u, part));
                }
            }
            if failed.is_empty() {
                g.split = split;
                g.prepared = Some(prepared);
                return g;
            }
            active.retain(|u| !failed.contains(u));
        }
        g
    }

    /// After a store error preparing the units `among` together: the units
    /// that fail to prepare, found by halves (each failing half is split
    /// again), with their errors. If none fails alone, the error was not
    /// theirs: every unit fails with it.
    async fn culprits(
        &self,
        units: &[Vec<Job>],
        among: &[usize],
        overlay: Option<&Overlay>,
    ) -> Vec<(usize, ApplyError)> {
        let mut out = Vec::new();
        let mut todo: Vec<Vec<usize>> = vec![among.to_vec()];
        let mut last = None;
        while let Some(set) = todo.pop() {
            let jobs: Vec<Job> = set.iter().flat_map(|&u| units[u].iter().cloned()).collect();
            let Err(e) = self.prepare(jobs, overlay).await else {
                continue;
            };
            let e = ApplyError::from(e);
            if set.len() == 1 {
                out.push((set[0], e));
                continue;
            }
            let (a, b) = set.split_at(set.len() / 2);
            todo.push(b.to_vec());
            todo.push(a.to_vec());
            last = Some(e);
        }
        if out.is_empty()
            && let Some(e) = last
        {
            tracing::warn!(error = %e, "a group failed to prepare, and no unit of it alone");
            return among.iter().map(|&u| (u, e.clone())).collect();
        }
        out
    }

    /// Write the group's commit (nothing to write is a success).
    pub async fn commit_group(&self, g: &mut Group) -> Result<(), StoreError> {
        match g.prepared.take() {
            Some(p) => self.commit(p).await,
            None => Ok(()),
        }
    }

    /// Settle every unit after the commit: its outcomes, or after a
    /// conflict each unit alone, or the store's error.
    pub async fn finish_group(
        &self,
        mut g: Group,
        committed: Result<(), StoreError>,
    ) -> Vec<Vec<Outcome>> {
        let inputs: usize = g.units.iter().map(Vec::len).sum();
        match committed {
            Ok(()) => {
                for (u, part) in std::mem::take(&mut g.split) {
                    g.results[u] = Some(part);
                }
            }
            Err(StoreError::Conflict(_)) => {
                // a concurrent writer, or a stale overlay: each unit alone,
                // read again from the store
                for (u, _) in std::mem::take(&mut g.split) {
                    g.results[u] = Some(self.apply_alone(&g.units[u]).await);
                }
            }
            Err(e) => {
                let active: Vec<usize> = g.split.iter().map(|(u, _)| *u).collect();
                fail(&mut g.results, &active, &g.units, &e.into());
            }
        }
        self.metrics.commit(g.started.elapsed(), inputs);
        let out: Vec<Vec<Outcome>> = g
            .results
            .into_iter()
            .zip(&g.units)
            .map(|(r, u)| {
                // every unit is settled above; this is the safety net
                r.unwrap_or_else(|| u.iter().map(|_| Err(ApplyError::CommitLost)).collect())
            })
            .collect();
        for part in &out {
            self.metrics.after_commit(part);
        }
        out
    }

    /// One unit in its own commit; a conflict (another daemon wrote one of
    /// its contacts, or took one of its keys, in between) is read again
    /// from the store and tried again, up to [`ALONE_ATTEMPTS`] times.
    async fn apply_alone(&self, jobs: &[Job]) -> Vec<Outcome> {
        let mut last = String::new();
        // read again from the store: the scheduler's reads may be stale
        let jobs: Vec<Job> = jobs
            .iter()
            .cloned()
            .map(|j| match j {
                Job::Timer { contact, .. } => Job::Timer {
                    contact,
                    read: None,
                },
                j => j,
            })
            .collect();
        let jobs = &jobs[..];
        for attempt in 0..ALONE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(conflict_pause(attempt)).await;
            }
            let prepared = match self.prepare(jobs.to_vec(), None).await {
                Ok(p) => p,
                Err(e) => {
                    let e = ApplyError::from(e);
                    return jobs.iter().map(|_| Err(e.clone())).collect();
                }
            };
            if prepared.outcomes.iter().any(Result::is_err) {
                return aborted(prepared.outcomes);
            }
            let outcomes = prepared.outcomes.clone();
            match self.commit(prepared).await {
                Ok(()) => return outcomes,
                Err(StoreError::Conflict(c)) => last = c,
                Err(e) => {
                    let e = ApplyError::from(e);
                    return jobs.iter().map(|_| Err(e.clone())).collect();
                }
            }
        }
        jobs.iter()
            .map(|_| Err(ApplyError::Conflict(last.clone())))
            .collect()
    }

    async fn commit(&self, p: Prepared) -> Result<(), StoreError> {
        let outbox = !p.commit.outbox.is_empty();
        self.store.commit(&p.commit).await?;
        self.metrics.enrollments_failed(&p.failures);
        for (contact, m) in &p.missed {
            self.metrics
                .triggers_missed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(
                contact = %contact,
                flow = %m.flow,
                instant = %crate::clock::format_instant(m.at),
                age_seconds = m.age,
                "missed time trigger: its instant was already past by more than `late`"
            );
        }
        for contact in &p.exhausted {
            self.metrics
                .timer_rounds_exhausted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(
                contact = %contact,
                rounds = crate::shell::MAX_TIMER_ROUNDS,
                "timers still due after the last firing at one instant; they fire at the next wake"
            );
        }
        if let Some(w) = p.wake {
            self.metrics.wake_hint(w);
        }
        if outbox {
            self.metrics.outbox_hint();
        }
        Ok(())
    }
}

fn fail(
    results: &mut [Option<Vec<Outcome>>],
    active: &[usize],
    units: &[Vec<Job>],
    e: &ApplyError,
) {
    for &u in active {
        results[u] = Some(units[u].iter().map(|_| Err(e.clone())).collect());
    }
}
