//! The applier: takes a group of inputs (events, changes, postbacks, timers,
//! call responses, manual moves), runs the pure [`Engine`] on the contacts
//! they touch, and writes everything they produced in ONE store commit
//! (group commit). The daemon feeds it from a queue; the CLI calls it
//! directly on the same database.
//!
//! INVARIANT: a result is returned only after the commit holding its effect
//! returned. An event's idempotency key is recorded in that same commit, so
//! its state effect applies exactly once. A conflicting commit (a unique key
//! taken, a concurrent writer) is retried input by input, so one bad input
//! never sinks the others.

use super::clock::Clock;
use super::metrics::Metrics;
use crate::engine::{ContactState, Engine, EngineInput};
use crate::intake::{self, MappedPostback};
use crate::store::{Commit, ContactWrite, Store, StoreError};
use nudge_compiler::bundle::Bundle;
use nudge_compiler::value::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// How an input names its contact.
#[derive(Debug, Clone, PartialEq)]
pub enum ContactRef {
    Id(String),
    /// A `unique` field's value.
    Key {
        field: String,
        value: String,
    },
}

/// One input, already validated against the schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    /// An event; `set` are contact fields given with it (set first).
    Event {
        contact: ContactRef,
        set: Vec<(String, Value)>,
        name: String,
        fields: BTreeMap<String, Value>,
        key: Option<String>,
    },
    /// `PUT /v1/contacts/{id}`: create or change a contact.
    Upsert {
        id: String,
        set: Vec<(String, Value)>,
    },
    /// A mapped postback; held when no contact has its key.
    Postback {
        source: String,
        mapped: MappedPostback,
        params: BTreeMap<String, String>,
    },
    /// Fire what is due for a contact.
    Timer { contact: String },
    CallResponse {
        contact: String,
        flow: String,
        name: String,
        status: i64,
        json: Value,
    },
    /// Enter, move or remove by hand.
    Manual { contact: String, input: EngineInput },
    /// Recompute the contact's wake time (after a pause or resume).
    Refresh { contact: String },
}

/// What became of one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    Applied {
        contact: String,
        created: bool,
    },
    Duplicate,
    Held,
    /// Nothing to do (a timer not due any more, a refresh).
    Skipped,
}

/// Why one input was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("{0}")]
    Invalid(String),
    #[error("no contact `{0}`")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("storage failed: {0}")]
    Store(String),
    /// Another input of the same unit (batch) failed.
    #[error("not applied: another input of the same batch was refused")]
    Aborted,
}

pub type Outcome = Result<Done, ApplyError>;

pub(super) struct Slot {
    pub(super) st: ContactState,
    /// The stored version; `None` for a contact created in this batch.
    pub(super) version: Option<i64>,
    pub(super) dirty: bool,
    /// Inputs applied to it in this batch (for idempotency keys).
    pub(super) inputs: u32,
}

/// Applies groups of jobs to a store with one bundle.
pub struct Applier {
    pub store: Arc<dyn Store>,
    pub bundle: Arc<Bundle>,
    pub version: String,
    pub env: BTreeMap<String, String>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// Earlier deployed bundles by version, loaded on first use.
    pub older: std::sync::Mutex<HashMap<String, Arc<Bundle>>>,
}

/// A group of jobs run in memory, ready to commit.
struct Prepared {
    commit: Commit,
    outcomes: Vec<Outcome>,
    /// The earliest wake time written.
    wake: Option<i64>,
}

/// A unit's outcomes when it was left out: its failures stay, the rest say
/// they were not applied.
fn aborted(part: Vec<Outcome>) -> Vec<Outcome> {
    part.into_iter()
        .map(|o| match o {
            Ok(_) => Err(ApplyError::Aborted),
            e => e,
        })
        .collect()
}

pub(super) struct Batch {
    pub(super) slots: HashMap<String, Slot>,
    /// Keys of contacts in this batch → contact id.
    pub(super) keys: HashMap<(String, String), String>,
    pub(super) commit: Commit,
    pub(super) seen: HashSet<String>,
}

/// A contact id derived from a unique key, for contacts first named by it.
pub(super) fn derived_id(field: &str, value: &str) -> String {
    let h = Sha256::digest(format!("{field}\u{0}{value}").as_bytes());
    let hex: String = h.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("c-{hex}")
}

impl Applier {
    fn engine<'a>(
        &'a self,
        paused: BTreeSet<String>,
        older: &'a [(String, Arc<Bundle>)],
    ) -> Engine<'a> {
        Engine {
            bundle: &self.bundle,
            version: self.version.clone(),
            paused,
            versions: older.iter().map(|(v, b)| (v.clone(), &**b)).collect(),
        }
    }

    /// The earlier deployed bundles these contacts' enrollments run on,
    /// read from the store once and kept.
    async fn older_versions(
        &self,
        slots: &HashMap<String, Slot>,
    ) -> Result<Vec<(String, Arc<Bundle>)>, StoreError> {
        let wanted: BTreeSet<&str> = slots
            .values()
            .flat_map(|s| s.st.enrollments.iter())
            .filter(|e| e.is_active() && e.version != self.version)
            .map(|e| e.version.as_str())
            .collect();
        let mut out = Vec::new();
        for v in wanted {
            let cached = self.older.lock().ok().and_then(|c| c.get(v).cloned());
            let bundle = match cached {
                Some(b) => b,
                None => {
                    let Some(bytes) = self.store.get_bundle(v).await? else {
                        continue;
                    };
                    let b = Arc::new(Bundle::from_bytes(&bytes).map_err(|e| {
                        StoreError::Corrupt(format!("bundle `{v}` cannot be read: {e}"))
                    })?);
                    if let Ok(mut c) = self.older.lock() {
                        c.insert(v.to_string(), b.clone());
                    }
                    b
                }
            };
            out.push((v.to_string(), bundle));
        }
        Ok(out)
    }

    /// Apply a group of jobs: one commit, one outcome per job in order. The
    /// group is one unit: if a job of it fails, none of it applies.
    pub async fn apply(&self, jobs: Vec<Job>) -> Vec<Outcome> {
        self.apply_units(vec![jobs])
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Apply several units (each all or nothing) in one commit; outcomes per
    /// unit, per job in order. A failing unit is left out and the rest is
    /// prepared again; a store conflict is retried unit by unit.
    pub async fn apply_units(&self, units: Vec<Vec<Job>>) -> Vec<Vec<Outcome>> {
        let started = std::time::Instant::now();
        let inputs: usize = units.iter().map(Vec::len).sum();
        let mut results: Vec<Option<Vec<Outcome>>> = vec![None; units.len()];
        let mut active: Vec<usize> = (0..units.len()).collect();
        let mut tries = 0;
        while !active.is_empty() {
            tries += 1;
            let jobs: Vec<Job> = active
                .iter()
                .flat_map(|&u| units[u].iter().cloned())
                .collect();
            let prepared = match self.prepare(jobs).await {
                Ok(p) => p,
                Err(e) => {
                    self.fail_all(&mut results, &active, &units, &e);
                    break;
                }
            };
            // split the outcomes back per unit; leave out units with a failure
            let mut it = prepared.outcomes.iter().cloned();
            let mut failed = Vec::new();
            let mut split = Vec::new();
            for &u in &active {
                let part: Vec<Outcome> = it.by_ref().take(units[u].len()).collect();
                let oks = part.iter().filter(|o| o.is_ok()).count();
                if part.iter().any(Result::is_err) && oks > 0 {
                    failed.push(u);
                    results[u] = Some(aborted(part));
                } else {
                    split.push((u, part));
                }
            }
            if !failed.is_empty() && tries < 4 {
                active.retain(|u| !failed.contains(u));
                continue;
            }
            match self.commit(prepared).await {
                Ok(()) => {
                    for (u, part) in split {
                        results[u] = Some(part);
                    }
                    break;
                }
                Err(StoreError::Conflict(_)) if active.len() > 1 => {
                    for &u in &active {
                        results[u] = Some(Box::pin(self.apply_alone(&units[u])).await);
                    }
                    break;
                }
                Err(e) => {
                    self.fail_all(&mut results, &active, &units, &e);
                    break;
                }
            }
        }
        self.metrics.commit(started.elapsed(), inputs);
        let out: Vec<Vec<Outcome>> = results
            .into_iter()
            .zip(&units)
            .map(|(r, u)| {
                r.unwrap_or_else(|| {
                    u.iter()
                        .map(|_| Err(ApplyError::Store("not applied".into())))
                        .collect()
                })
            })
            .collect();
        for part in &out {
            self.metrics.after_commit(part);
        }
        out
    }

    fn fail_all(
        &self,
        results: &mut [Option<Vec<Outcome>>],
        active: &[usize],
        units: &[Vec<Job>],
        e: &StoreError,
    ) {
        for &u in active {
            results[u] = Some(
                units[u]
                    .iter()
                    .map(|_| Err(ApplyError::Store(e.to_string())))
                    .collect(),
            );
        }
    }

    /// One unit in its own commit; a conflict is read again once.
    async fn apply_alone(&self, jobs: &[Job]) -> Vec<Outcome> {
        let mut last = String::new();
        for _ in 0..2 {
            let prepared = match self.prepare(jobs.to_vec()).await {
                Ok(p) => p,
                Err(e) => {
                    return jobs
                        .iter()
                        .map(|_| Err(ApplyError::Store(e.to_string())))
                        .collect();
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
                    return jobs
                        .iter()
                        .map(|_| Err(ApplyError::Store(e.to_string())))
                        .collect();
                }
            }
        }
        jobs.iter()
            .map(|_| Err(ApplyError::Conflict(last.clone())))
            .collect()
    }

    async fn commit(&self, p: Prepared) -> Result<(), StoreError> {
        let outbox = !p.commit.outbox.is_empty();
        self.store.commit(p.commit).await?;
        if let Some(w) = p.wake {
            self.metrics.wake_hint(w);
        }
        if outbox {
            self.metrics.outbox_hint();
        }
        Ok(())
    }

    /// Run the jobs in memory: the commit to write and one outcome per job.
    async fn prepare(&self, jobs: Vec<Job>) -> Result<Prepared, StoreError> {
        let now = self.clock.now();
        let paused = self.store.paused().await?;
        let keys: Vec<String> = jobs
            .iter()
            .filter_map(|j| match j {
                Job::Event { key: Some(k), .. } => Some(k.clone()),
                _ => None,
            })
            .collect();
        let seen = if keys.is_empty() {
            BTreeSet::new()
        } else {
            self.store.seen_events(&keys).await?
        };
        // resolve contacts named by key, then load everyone in one query
        let mut ids: Vec<String> = Vec::new();
        let mut by_key: HashMap<(String, String), String> = HashMap::new();
        for j in &jobs {
            let key = match j {
                Job::Event {
                    contact: ContactRef::Key { field, value },
                    ..
                } => (field.clone(), value.clone()),
                Job::Postback { mapped, .. } => {
                    (mapped.key_field.clone(), mapped.key_value.clone())
                }
                Job::Event {
                    contact: ContactRef::Id(id),
                    ..
                }
                | Job::Upsert { id, .. }
                | Job::Timer { contact: id }
                | Job::CallResponse { contact: id, .. }
                | Job::Manual { contact: id, .. }
                | Job::Refresh { contact: id } => {
                    ids.push(id.clone());
                    continue;
                }
            };
            if let std::collections::hash_map::Entry::Vacant(e) = by_key.entry(key) {
                let (f, v) = e.key();
                if let Some(id) = self.store.find_contact(f, v).await? {
                    ids.push(id.clone());
                    e.insert(id);
                }
            }
        }
        ids.sort();
        ids.dedup();
        let loaded = self.store.load_contacts(&ids).await?;
        let mut b = Batch {
            slots: loaded
                .into_iter()
                .map(|v| {
                    (
                        v.state.contact.id.clone(),
                        Slot {
                            st: v.state,
                            version: Some(v.version),
                            dirty: false,
                            inputs: 0,
                        },
                    )
                })
                .collect(),
            keys: by_key,
            commit: Commit::default(),
            seen: seen.into_iter().collect(),
        };
        let older = self.older_versions(&b.slots).await?;
        let engine = self.engine(paused, &older);
        let mut outcomes = Vec::with_capacity(jobs.len());
        for j in jobs {
            outcomes.push(self.job(&engine, &mut b, j, now).await?);
        }
        let mut wake = None::<i64>;
        for slot in b.slots.into_values() {
            if !slot.dirty {
                continue;
            }
            let next_wake = engine.next_wake(&slot.st);
            wake = match (wake, next_wake) {
                (Some(a), Some(c)) => Some(a.min(c)),
                (a, c) => a.or(c),
            };
            b.commit.contacts.push(ContactWrite {
                keys: intake::unique_keys(&self.bundle, &slot.st.contact),
                state: slot.st,
                expected_version: slot.version,
                next_wake,
            });
        }
        Ok(Prepared {
            commit: b.commit,
            outcomes,
            wake,
        })
    }
}
