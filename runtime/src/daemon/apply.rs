//! The applier: takes a group of inputs (events, changes, postbacks, timers,
//! call responses, manual moves), runs the pure [`Engine`] on the contacts
//! they touch (`prepare`, with the jobs themselves in `apply_jobs.rs`), and
//! writes everything they produced in ONE store commit (`group.rs`). The
//! daemon and the CLI's database commands both feed it through the queue
//! (`queue.rs`).
//!
//! Speed: `prepare` reads the store a few times per group, never per input:
//! the contacts named by a unique key in one `find_contacts` per field
//! (keys the commit in flight writes come from its overlay), then every
//! contact in one `load_contacts`.
//!
//! INVARIANT: a result is returned only after the commit holding its effect
//! returned. An event's idempotency key is recorded in that same commit, so
//! its state effect applies exactly once; a postback's `dedupe` value too
//! (also when it is held). A conflicting commit (a unique key
//! taken, a concurrent writer) is retried unit by unit, so one bad request
//! never sinks the others.

use super::clock::Clock;
use super::group::Overlay;
use super::metrics::Metrics;
use crate::engine::{ContactState, Engine, EngineInput, FailedEnrollment};
use crate::intake::{self, MappedPostback};
use crate::store::{Commit, ContactWrite, HeldPostback, Loaded, Store, StoreError, Versioned};
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
    /// Fire what is due for a contact. `read` is its state as the scheduler
    /// read it with the due page, so it need not be loaded again: a newer
    /// state in flight wins over it, and a stale one is refused by the
    /// commit's version check, after which the unit is applied again
    /// without it.
    Timer {
        contact: String,
        read: Option<Arc<Versioned>>,
    },
    /// The response to a `call … as NAME`; its commit also settles the
    /// call's outbox row (`ack`, fenced by the claim's lease), so the
    /// response cannot be lost between two transactions.
    CallResponse {
        contact: String,
        flow: String,
        name: String,
        status: i64,
        json: Value,
        ack: crate::store::Ack,
    },
    /// Enter, move or remove by hand.
    Manual { contact: String, input: EngineInput },
    /// Recompute the contact's wake time (after a pause or resume).
    Refresh { contact: String },
    /// Write the contact again, compacted, in the current state format
    /// (`convert.rs`), if it is still at `version` (the version its older
    /// format was found at; a later write already converted it).
    Convert { contact: String, version: i64 },
    /// Move the contact's active enrollments on older versions to the
    /// deployed one at the step of the same name (`migrate.rs`); those
    /// whose step the deployed version lacks stay.
    Migrate { contact: String },
}

/// What became of one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    Applied {
        contact: String,
        created: bool,
    },
    Duplicate,
    /// A postback whose `dedupe` value was seen before: nothing changed.
    DuplicatePostback,
    Held,
    /// Nothing to do (a timer not due any more, a refresh).
    Skipped,
    /// A stored state rewritten in the current format ([`Job::Convert`]).
    Converted,
    /// Enrollments moved to the deployed version ([`Job::Migrate`]).
    Migrated {
        moved: usize,
    },
}

/// Why one input was not applied. Store failures keep their cause
/// (shared: one failure answers every input it sank).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApplyError {
    #[error("{0}")]
    Invalid(String),
    #[error("no contact `{0}`")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("storage failed: {0}")]
    Store(#[source] Arc<StoreError>),
    /// The contact's stored state cannot be read (see `store::Store::load_contacts`).
    #[error("contact `{contact}` is quarantined: its stored state cannot be read ({reason})")]
    Quarantined { contact: String, reason: String },
    /// A message or call of the input could not be serialised for the
    /// outbox: the input is not applied.
    #[error("an outbox payload for contact `{contact}` cannot be serialised: {source}")]
    Payload {
        contact: String,
        #[source]
        source: Arc<serde_json::Error>,
    },
    #[error("the daemon is shutting down")]
    ShuttingDown,
    /// The task writing the commit ended without an answer.
    #[error("not applied: the commit task failed")]
    CommitLost,
    /// Another input of the same unit (batch) failed.
    #[error("not applied: another input of the same batch was refused")]
    Aborted,
}

impl PartialEq for ApplyError {
    /// Same kind, same message (a store error's cause is not comparable).
    fn eq(&self, other: &ApplyError) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.to_string() == other.to_string()
    }
}

impl Eq for ApplyError {}

impl From<StoreError> for ApplyError {
    fn from(e: StoreError) -> ApplyError {
        match e {
            StoreError::Quarantined { contact, reason } => {
                ApplyError::Quarantined { contact, reason }
            }
            StoreError::Conflict(c) => ApplyError::Conflict(c),
            e => ApplyError::Store(Arc::new(e)),
        }
    }
}

impl ApplyError {
    /// Whether the failing job may have changed the batch before it
    /// failed, so its unit must be left out and the rest prepared again.
    pub(super) fn left_effects(&self) -> bool {
        matches!(self, ApplyError::Payload { .. })
    }
}

pub type Outcome = Result<Done, ApplyError>;

pub(super) struct Slot {
    pub(super) st: ContactState,
    /// The stored version; `None` for a contact created in this batch.
    pub(super) version: Option<i64>,
    pub(super) dirty: bool,
    /// Inputs applied to it in this batch (for idempotency keys).
    pub(super) inputs: u32,
    /// Its unique keys and places when loaded (`None` for a new contact):
    /// the store writes only what moved from them.
    pub(super) loaded: Option<Loaded>,
    /// Its stored wake time (`None` for a new contact too).
    pub(super) stored_wake: Option<i64>,
}

impl Slot {
    /// A stored contact, as read.
    pub(super) fn loaded(
        st: ContactState,
        version: i64,
        stored_wake: Option<i64>,
        bundle: &Bundle,
    ) -> Slot {
        Slot {
            loaded: Some(Loaded::of(&st, intake::unique_keys(bundle, &st.contact))),
            stored_wake,
            st,
            version: Some(version),
            dirty: false,
            inputs: 0,
        }
    }
}

/// Applies groups of jobs to a store with one bundle.
pub struct Applier {
    pub store: Arc<dyn Store>,
    pub bundle: Arc<Bundle>,
    pub version: String,
    pub env: BTreeMap<String, String>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// Earlier deployed bundles by version, loaded on first use (shared by
    /// the appliers of later deployments, [`Applier::on`]).
    pub older: Arc<std::sync::Mutex<HashMap<String, Arc<Bundle>>>>,
    /// How long a `call … as NAME` waits (the call timeout plus the lease).
    pub calls: crate::vm::CallLimits,
}

/// A group of jobs run in memory, ready to commit.
pub(super) struct Prepared {
    /// Shared with the overlay the next group is prepared on.
    pub(super) commit: Arc<Commit>,
    pub(super) outcomes: Vec<Outcome>,
    /// The earliest wake time written.
    pub(super) wake: Option<i64>,
    /// A stored contact's unique keys changed.
    pub(super) keys_moved: bool,
    /// Enrollments failed by these inputs (contact id, failure): counted
    /// and logged once the commit holding them returned.
    pub(super) failures: Vec<(String, FailedEnrollment)>,
    /// Time triggers missed, per contact (see [`Batch::missed`]).
    pub(super) missed: Vec<(String, crate::engine::MissedTrigger)>,
    /// Contacts still due after the last timer round (see [`Batch::exhausted`]).
    pub(super) exhausted: Vec<String>,
}

/// A unit's outcomes when it was left out: its failures stay, the rest say
/// they were not applied.
pub(super) fn aborted(part: Vec<Outcome>) -> Vec<Outcome> {
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
    /// Enrollments failed so far (contact id, failure).
    pub(super) failures: Vec<(String, FailedEnrollment)>,
    /// Postback `dedupe` values (source, value) recorded or in this batch.
    pub(super) seen_postbacks: HashSet<(String, String)>,
    /// Time triggers missed by this batch's inputs, per contact: logged
    /// and counted once the commit is written.
    pub(super) missed: Vec<(String, crate::engine::MissedTrigger)>,
    /// Contacts whose timers were still due after
    /// [`crate::shell::MAX_TIMER_ROUNDS`] firings at one instant: logged
    /// and counted once the commit is written.
    pub(super) exhausted: Vec<String>,
    /// An outbox payload that could not be serialised by the job being
    /// run (contact, error): that job fails.
    pub(super) payload_error: Option<(String, serde_json::Error)>,
    /// Held postbacks by the key they wait for, read with the group for
    /// every key its inputs may give a contact (an empty list: none held);
    /// a key not here is read when a contact gets it.
    pub(super) held: HashMap<(String, String), Vec<HeldPostback>>,
}

/// Whether a job other than a timer or a refresh names this contact (by
/// id, or by a unique key that resolved to it).
fn named_by_input(jobs: &[Job], by_key: &HashMap<(String, String), String>, id: &str) -> bool {
    by_key.values().any(|c| c == id)
        || jobs.iter().any(|j| match j {
            Job::Timer { .. } | Job::Refresh { .. } | Job::Convert { .. } | Job::Migrate { .. } => {
                false
            }
            Job::Event {
                contact: ContactRef::Id(c),
                ..
            }
            | Job::Upsert { id: c, .. }
            | Job::CallResponse { contact: c, .. }
            | Job::Manual { contact: c, .. } => c == id,
            Job::Event { .. } | Job::Postback { .. } => false,
        })
}

/// A contact id derived from a unique key, for contacts first named by it.
pub(super) fn derived_id(field: &str, value: &str) -> String {
    let h = Sha256::digest(format!("{field}\u{0}{value}").as_bytes());
    let hex: String = h.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("c-{hex}")
}

impl Applier {
    /// An applier for another deployed bundle, sharing this one's store,
    /// clock, metrics and cache of older bundles.
    pub fn on(
        &self,
        bundle: Arc<Bundle>,
        version: String,
        env: BTreeMap<String, String>,
    ) -> Applier {
        Applier {
            store: self.store.clone(),
            bundle,
            version,
            env,
            clock: self.clock.clone(),
            metrics: self.metrics.clone(),
            older: self.older.clone(),
            calls: self.calls,
        }
    }

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
            calls: self.calls,
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
                    let b =
                        Arc::new(Bundle::from_bytes(&bytes).map_err(|e| StoreError::Decode {
                            what: format!("bundle `{v}`"),
                            source: Box::new(e),
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

    /// The `dedupe` values of these postbacks recorded before: in the store
    /// or in the commit in flight.
    async fn seen_postbacks(
        &self,
        jobs: &[Job],
        overlay: Option<&Overlay>,
    ) -> Result<HashSet<(String, String)>, StoreError> {
        let keys: Vec<(String, String)> = jobs
            .iter()
            .filter_map(|j| match j {
                Job::Postback { source, mapped, .. } => {
                    mapped.dedupe.clone().map(|k| (source.clone(), k))
                }
                _ => None,
            })
            .collect();
        if keys.is_empty() {
            return Ok(HashSet::new());
        }
        let mut seen: HashSet<_> = self
            .store
            .seen_postbacks(&keys)
            .await?
            .into_iter()
            .collect();
        if let Some(o) = overlay {
            seen.extend(keys.into_iter().filter(|k| o.postbacks.contains(k)));
        }
        Ok(seen)
    }

    /// The contacts owning these unique keys: from the commit in flight
    /// where it holds the key, the rest from the store in one read per
    /// field. A key no contact owns is left out.
    async fn find_keys(
        &self,
        named: Vec<(String, String)>,
        overlay: Option<&Overlay>,
    ) -> Result<HashMap<(String, String), String>, StoreError> {
        let mut found = HashMap::with_capacity(named.len());
        let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for key in named {
            if found.contains_key(&key) {
                continue;
            }
            match overlay.and_then(|o| o.keys.get(&key)) {
                Some(id) => {
                    found.insert(key, id.clone());
                }
                None => wanted.entry(key.0).or_default().push(key.1),
            }
        }
        for (field, mut values) in wanted {
            values.sort_unstable();
            values.dedup();
            for (value, id) in self.store.find_contacts(&field, &values).await? {
                found.insert((field.clone(), value), id);
            }
        }
        Ok(found)
    }

    /// The held postbacks waiting for the unique keys these inputs name or
    /// set, in one read (see [`Batch::held`]).
    async fn held_for_inputs(
        &self,
        jobs: &[Job],
    ) -> Result<HashMap<(String, String), Vec<HeldPostback>>, StoreError> {
        let unique = |name: &str| {
            self.bundle
                .schema
                .iter()
                .any(|f| f.unique && f.name != "id" && f.name == name)
        };
        let mut keys: Vec<(String, String)> = Vec::new();
        for j in jobs {
            let (named, set) = match j {
                Job::Event { contact, set, .. } => (Some(contact), set),
                Job::Upsert { set, .. } => (None, set),
                _ => continue,
            };
            if let Some(ContactRef::Key { field, value }) = named {
                keys.push((field.clone(), value.clone()));
            }
            keys.extend(
                set.iter()
                    .filter(|(k, _)| unique(k))
                    .filter_map(|(k, v)| match v {
                        Value::Text(t) => Some((k.clone(), t.clone())),
                        Value::Int(i) => Some((k.clone(), i.to_string())),
                        _ => None,
                    }),
            );
        }
        let mut held: HashMap<(String, String), Vec<HeldPostback>> = HashMap::new();
        for h in self.store.held_for_keys(&keys).await? {
            held.entry((h.key_field.clone(), h.key_value.clone()))
                .or_default()
                .push(h);
        }
        for k in keys {
            held.entry(k).or_default();
        }
        Ok(held)
    }

    /// The stored contacts among `ids`. A quarantined one that only
    /// timers and refreshes name is left out (they skip it), so one
    /// damaged contact does not sink a scheduler or re-plan page; one that
    /// an input names fails the preparation, naming it.
    async fn load(
        &self,
        jobs: &[Job],
        by_key: &HashMap<(String, String), String>,
        mut ids: Vec<String>,
    ) -> Result<Vec<Versioned>, StoreError> {
        loop {
            match self.store.load_contacts(&ids).await {
                Err(StoreError::Quarantined { contact, reason })
                    if !named_by_input(jobs, by_key, &contact) =>
                {
                    tracing::debug!(contact = %contact, reason = %reason, "quarantined contact skipped");
                    ids.retain(|id| *id != contact);
                }
                done => return done,
            }
        }
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

    /// Run the jobs in memory: the commit to write and one outcome per job.
    /// With an `overlay` (what the commit still in flight writes), contacts,
    /// keys and event ids it holds are read from it, not from the store.
    pub(super) async fn prepare(
        &self,
        jobs: Vec<Job>,
        overlay: Option<&Overlay>,
    ) -> Result<Prepared, StoreError> {
        let now = self.clock.now();
        let paused = self.store.paused().await?;
        let keys: Vec<String> = jobs
            .iter()
            .filter_map(|j| match j {
                Job::Event { key: Some(k), .. } => Some(k.clone()),
                _ => None,
            })
            .collect();
        let mut seen = if keys.is_empty() {
            BTreeSet::new()
        } else {
            self.store.seen_events(&keys).await?
        };
        if let Some(o) = overlay {
            seen.extend(keys.iter().filter(|k| o.events.contains(*k)).cloned());
        }
        let seen_postbacks = self.seen_postbacks(&jobs, overlay).await?;
        // resolve contacts named by key, then load everyone in one query
        let mut ids: Vec<String> = Vec::new();
        let mut read: Vec<Arc<Versioned>> = Vec::new();
        let mut named: Vec<(String, String)> = Vec::new();
        for j in &jobs {
            let key = match j {
                Job::Timer {
                    read: Some(v),
                    contact,
                } => {
                    if overlay.is_some_and(|o| o.contact(contact).is_some()) {
                        ids.push(contact.clone());
                    } else {
                        read.push(v.clone());
                    }
                    continue;
                }
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
                | Job::Timer {
                    contact: id,
                    read: None,
                }
                | Job::CallResponse { contact: id, .. }
                | Job::Manual { contact: id, .. }
                | Job::Refresh { contact: id }
                | Job::Convert { contact: id, .. }
                | Job::Migrate { contact: id } => {
                    ids.push(id.clone());
                    continue;
                }
            };
            named.push(key);
        }
        let by_key = self.find_keys(named, overlay).await?;
        ids.extend(by_key.values().cloned());
        ids.sort();
        ids.dedup();
        let mut slots = HashMap::with_capacity(ids.len());
        if let Some(o) = overlay {
            ids.retain(|id| match o.contact(id) {
                Some((st, version, wake)) => {
                    let slot = Slot::loaded(st.clone(), version, wake, &self.bundle);
                    slots.insert(id.clone(), slot);
                    false
                }
                None => true,
            });
        }
        for v in read {
            let id = v.state.contact.id.clone();
            if !slots.contains_key(&id) && ids.binary_search(&id).is_err() {
                // the group moved the read into these jobs (`group.rs`): no copy
                let v = Arc::try_unwrap(v).unwrap_or_else(|shared| (*shared).clone());
                let slot = Slot::loaded(v.state, v.version, v.next_wake, &self.bundle);
                slots.insert(id, slot);
            }
        }
        for v in self.load(&jobs, &by_key, ids).await? {
            let id = v.state.contact.id.clone();
            let slot = Slot::loaded(v.state, v.version, v.next_wake, &self.bundle);
            slots.insert(id, slot);
        }
        let mut b = Batch {
            slots,
            keys: by_key,
            commit: Commit::default(),
            seen: seen.into_iter().collect(),
            failures: Vec::new(),
            seen_postbacks,
            missed: Vec::new(),
            exhausted: Vec::new(),
            payload_error: None,
            held: self.held_for_inputs(&jobs).await?,
        };
        let older = self.older_versions(&b.slots).await?;
        let engine = self.engine(paused, &older);
        let mut outcomes = Vec::with_capacity(jobs.len());
        for j in jobs {
            let outcome = self.job(&engine, &mut b, j, now).await?;
            outcomes.push(match b.payload_error.take() {
                Some((contact, e)) => Err(ApplyError::Payload {
                    contact,
                    source: Arc::new(e),
                }),
                None => outcome,
            });
        }
        let mut wake = None::<i64>;
        let mut keys_moved = false;
        for slot in b.slots.into_values() {
            if !slot.dirty {
                continue;
            }
            let next_wake = engine.next_wake(&slot.st);
            wake = match (wake, next_wake) {
                (Some(a), Some(c)) => Some(a.min(c)),
                (a, c) => a.or(c),
            };
            let keys = intake::unique_keys(&self.bundle, &slot.st.contact);
            keys_moved |= slot.loaded.as_ref().is_some_and(|l| l.keys != keys);
            b.commit.contacts.push(ContactWrite {
                keys,
                state: slot.st,
                expected_version: slot.version,
                next_wake,
                loaded: slot.loaded,
            });
        }
        Ok(Prepared {
            commit: Arc::new(b.commit),
            outcomes,
            wake,
            keys_moved,
            failures: b.failures,
            missed: b.missed,
            exhausted: b.exhausted,
        })
    }
}
