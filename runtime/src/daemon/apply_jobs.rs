//! The jobs themselves: how each kind of input changes the contacts of a
//! batch in memory (create, change, event, postback, timer, call response,
//! manual move, refresh, format conversion) and what it adds to the
//! batch's commit (event records, outbox rows with stable idempotency
//! keys, journal lines, held and released postbacks, postback `dedupe`
//! values). Creating a contact, releasing held postbacks and firing due
//! timers go through [`crate::shell`], as in the simulator. Part of
//! [`Applier`]; nothing here writes to the store.

use super::apply::{Applier, ApplyError, Batch, ContactRef, Done, Job, Outcome, Slot, derived_id};
use crate::engine::{Applied, ContactState, Engine, EngineInput, JournalLine};
use crate::intake::{self, MappedPostback};
use crate::shell::{self, CreateError, Fired, HeldInput, Released, Target};
use crate::store::{
    EventRecord, HeldPostback, JsonText, NewOutbox, OutboxKind, PostbackKey, StoreError,
};
use crate::vm::EventValue;
use nudge_compiler::value::Value;
use sha2::{Digest, Sha256};

impl Applier {
    /// The slot of a contact, creating it when `create` gives fields.
    fn slot_id(b: &Batch, r: &ContactRef) -> Option<String> {
        match r {
            ContactRef::Id(id) => Some(id.clone()),
            ContactRef::Key { field, value } => {
                b.keys.get(&(field.clone(), value.clone())).cloned()
            }
        }
    }

    /// Create a contact in the batch (runs `contact_created`; the shell's
    /// rules, as in the simulator).
    fn create(
        &self,
        engine: &Engine<'_>,
        b: &mut Batch,
        id: String,
        set: Vec<(String, Value)>,
        now: i64,
    ) -> Result<(), ApplyError> {
        let taken = |k: &(String, String)| b.keys.get(k).is_some_and(|owner| *owner != id);
        let (st, keys) = shell::new_state(engine, &self.env, id.clone(), set, now, taken).map_err(
            |e| match e {
                CreateError::Invalid(why) => ApplyError::Invalid(why),
                CreateError::Taken(_) => ApplyError::Conflict(e.to_string()),
            },
        )?;
        for k in keys {
            b.keys.insert(k, id.clone());
        }
        b.slots.insert(
            id.clone(),
            Slot {
                st,
                version: None,
                dirty: true,
                inputs: 0,
                loaded: None,
                stored_wake: None,
            },
        );
        shell::created(&mut self.target(engine, b, &id, now), now);
        Ok(())
    }

    /// Contact `id` of the batch as the shell drives it.
    fn target<'a>(
        &'a self,
        engine: &'a Engine<'a>,
        b: &'a mut Batch,
        id: &'a str,
        now: i64,
    ) -> BatchContact<'a> {
        BatchContact {
            applier: self,
            engine,
            b,
            id,
            now,
        }
    }

    /// Set fields from outside on a contact: one `Changed` input if any
    /// moved. Gives whether a unique key changed (held postbacks may apply).
    fn change(
        &self,
        engine: &Engine<'_>,
        b: &mut Batch,
        id: &str,
        set: Vec<(String, Value)>,
        now: i64,
    ) -> bool {
        let Some(slot) = b.slots.get_mut(id) else {
            return false;
        };
        let changed = intake::set_fields(&mut slot.st.contact, set);
        if changed.is_empty() {
            return false;
        }
        let unique = changed.iter().any(|f| {
            self.bundle
                .field(f)
                .is_some_and(|d| d.unique && d.name != "id")
        });
        for k in intake::unique_keys(&self.bundle, &slot.st.contact) {
            b.keys.insert(k, id.to_string());
        }
        self.run(engine, b, id, EngineInput::Changed(changed), now);
        unique
    }

    /// Run one engine input on a contact of the batch and collect its output.
    fn run(&self, engine: &Engine<'_>, b: &mut Batch, id: &str, input: EngineInput, now: i64) {
        let Some(slot) = b.slots.get_mut(id) else {
            return;
        };
        slot.dirty = true;
        slot.inputs += 1;
        let applied = engine.apply(&mut slot.st, input, now, &self.env);
        b.missed
            .extend(applied.missed.into_iter().map(|m| (id.to_string(), m)));
        // The stored version (None before the first commit) and the input's
        // rank in this batch make the key unique: the version check lets
        // this effect commit once. The instant in front keeps the keys of a
        // commit together at the end of the outbox's unique index, instead
        // of one random page of it per row.
        let base = format!("{id}\u{0}{:?}\u{0}{}", slot.version, slot.inputs);
        let idem = |kind: &str, n: usize| idem_key(now, &format!("{base}\u{0}{kind}{n}"));
        for (n, m) in applied.messages.into_iter().enumerate() {
            b.commit.outbox.push(NewOutbox {
                contact: id.to_string(),
                flow: m.flow.clone(),
                step: m.step.clone(),
                kind: OutboxKind::Message,
                idem_key: idem("m", n),
                not_before: m.at,
                payload: match JsonText::of(&m) {
                    Ok(p) => p,
                    Err(e) => {
                        b.payload_error.get_or_insert((id.to_string(), e));
                        continue;
                    }
                },
            });
        }
        for (n, c) in applied.calls.into_iter().enumerate() {
            b.commit.outbox.push(NewOutbox {
                contact: id.to_string(),
                flow: c.flow.clone(),
                step: c.step.clone(),
                kind: OutboxKind::Call,
                idem_key: idem("c", n),
                not_before: now,
                payload: match JsonText::of(&c) {
                    Ok(p) => p,
                    Err(e) => {
                        b.payload_error.get_or_insert((id.to_string(), e));
                        continue;
                    }
                },
            });
        }
        b.commit
            .journal
            .extend(applied.journal.into_iter().map(|j| (id.to_string(), j)));
        b.failures
            .extend(applied.failures.into_iter().map(|f| (id.to_string(), f)));
    }

    pub(super) async fn job(
        &self,
        engine: &Engine<'_>,
        b: &mut Batch,
        job: Job,
        now: i64,
    ) -> Result<Outcome, StoreError> {
        Ok(match job {
            Job::Event {
                contact,
                set,
                name,
                fields,
                key,
            } => {
                if let Some(k) = &key
                    && !b.seen.insert(k.clone())
                {
                    return Ok(Ok(Done::Duplicate));
                }
                let (id, created, new_keys) = match Self::slot_id(b, &contact) {
                    Some(id) if b.slots.contains_key(&id) => {
                        let new_keys = self.change(engine, b, &id, set, now);
                        (id, false, new_keys)
                    }
                    other => {
                        let id = other.unwrap_or_else(|| match &contact {
                            ContactRef::Key { field, value } => derived_id(field, value),
                            ContactRef::Id(id) => id.clone(),
                        });
                        let mut set = set;
                        if let ContactRef::Key { field, value } = &contact
                            && !set.iter().any(|(k, _)| k == field)
                        {
                            set.push((field.clone(), Value::text(value.clone())));
                        }
                        if let Err(e) = self.create(engine, b, id.clone(), set, now) {
                            if let Some(k) = &key {
                                b.seen.remove(k);
                            }
                            return Ok(Err(e));
                        }
                        (id, true, true)
                    }
                };
                if new_keys {
                    self.release_held(engine, b, &id, now).await?;
                }
                let payload = serde_json::Value::Object(
                    fields
                        .iter()
                        .map(|(k, v)| (k.clone(), v.to_json()))
                        .collect(),
                );
                b.commit.events.push(EventRecord {
                    key,
                    contact: id.clone(),
                    name: name.clone(),
                    payload,
                    received_at: now,
                });
                let ev = EventValue {
                    name,
                    fields,
                    at: now,
                    nth: 0,
                };
                self.run(engine, b, &id, EngineInput::Event(ev), now);
                Ok(Done::Applied {
                    contact: id,
                    created,
                })
            }
            Job::Upsert { id, set } => {
                let created = !b.slots.contains_key(&id);
                let new_keys = if created {
                    if let Err(e) = self.create(engine, b, id.clone(), set, now) {
                        return Ok(Err(e));
                    }
                    true
                } else {
                    self.change(engine, b, &id, set, now)
                };
                if new_keys {
                    self.release_held(engine, b, &id, now).await?;
                }
                Ok(Done::Applied {
                    contact: id,
                    created,
                })
            }
            Job::Postback {
                source,
                mapped,
                params,
            } => {
                if let Some(k) = &mapped.dedupe {
                    if !b.seen_postbacks.insert((source.clone(), k.clone())) {
                        return Ok(Ok(Done::DuplicatePostback));
                    }
                    b.commit.postback_keys.push(PostbackKey {
                        source: source.clone(),
                        key: k.clone(),
                        received_at: now,
                        until: intake::dedupe_until(&self.bundle, &source, now),
                    });
                }
                let key = (mapped.key_field.clone(), mapped.key_value.clone());
                match b.keys.get(&key).cloned() {
                    Some(id) if b.slots.contains_key(&id) => {
                        self.postback_event(engine, b, &id, &source, mapped, now);
                        Ok(Done::Applied {
                            contact: id,
                            created: false,
                        })
                    }
                    _ => {
                        let hold = self.bundle.source(&source).map_or(0, |s| s.hold_seconds);
                        b.commit.held.push(HeldPostback {
                            id: 0,
                            source,
                            key_field: key.0,
                            key_value: key.1,
                            params,
                            received_at: now,
                            until: now + hold,
                        });
                        Ok(Done::Held)
                    }
                }
            }
            Job::Timer { contact, .. } => {
                let Some(slot) = b.slots.get_mut(&contact) else {
                    return Ok(Ok(Done::Skipped));
                };
                if engine.next_wake(&slot.st).is_none_or(|w| w > now) {
                    // a stale wake time (a flow paused since): write it again
                    slot.dirty = true;
                    return Ok(Ok(Done::Skipped));
                }
                // several flows may be due; each firing may make more due
                if shell::fire_due(&mut self.target(engine, b, &contact, now), now)
                    == Fired::StillDue
                {
                    b.exhausted.push(contact.clone());
                }
                Ok(Done::Applied {
                    contact,
                    created: false,
                })
            }
            Job::CallResponse {
                contact,
                flow,
                name,
                status,
                json,
                ack,
            } => {
                if !b.slots.contains_key(&contact) {
                    return Ok(Err(ApplyError::NotFound(contact)));
                }
                b.commit.acks.push(ack);
                let input = EngineInput::CallResponse {
                    flow,
                    name,
                    status,
                    json,
                };
                self.run(engine, b, &contact, input, now);
                Ok(Done::Applied {
                    contact,
                    created: false,
                })
            }
            Job::Manual { contact, input } => {
                let Some(slot) = b.slots.get(&contact) else {
                    return Ok(Err(ApplyError::NotFound(contact)));
                };
                // checked on the state this batch holds: `reenter never`
                // keeps a manual entry out too
                if let Some(why) = engine.manual_refused(&slot.st, &input) {
                    return Ok(Err(ApplyError::Conflict(why.to_string())));
                }
                self.run(engine, b, &contact, input, now);
                Ok(Done::Applied {
                    contact,
                    created: false,
                })
            }
            Job::Refresh { contact } => {
                // time triggers and schedules of the deployed version,
                // planned on a copy first: written (and a trigger due now
                // fired, a missed one journaled) only if they or the wake
                // time moved
                let moved = b.slots.get(&contact).is_some_and(|slot| {
                    let mut probe = slot.st.clone();
                    let applied = engine.apply(&mut probe, EngineInput::Replan, now, &self.env);
                    probe != slot.st
                        || applied != Applied::default()
                        || engine.next_wake(&probe) != slot.stored_wake
                });
                if moved {
                    self.run(engine, b, &contact, EngineInput::Replan, now);
                }
                Ok(Done::Skipped)
            }
            Job::Convert { contact, version } => {
                // no input: the state is compacted and written as it is
                match b.slots.get_mut(&contact) {
                    Some(slot) if slot.version == Some(version) => {
                        engine.compact(&mut slot.st, now);
                        slot.dirty = true;
                        Ok(Done::Converted)
                    }
                    _ => Ok(Done::Skipped),
                }
            }
            Job::Migrate { contact } => self.migrate(engine, b, &contact, now),
        })
    }

    /// [`Job::Migrate`]: each active enrollment on an older version whose
    /// flow and step the deployed version has moves (one engine input each).
    fn migrate(&self, engine: &Engine<'_>, b: &mut Batch, id: &str, now: i64) -> Outcome {
        let Some(slot) = b.slots.get(id) else {
            return Ok(Done::Skipped);
        };
        let flows: Vec<String> = slot
            .st
            .enrollments
            .iter()
            .filter(|e| e.is_active() && e.version != engine.version)
            .filter(|e| {
                engine
                    .bundle
                    .flow(&e.flow)
                    .is_some_and(|p| p.step(&e.step).is_some())
            })
            .map(|e| e.flow.clone())
            .collect();
        if flows.is_empty() {
            return Ok(Done::Skipped);
        }
        let moved = flows.len();
        for flow in flows {
            self.run(engine, b, id, EngineInput::Migrate { flow }, now);
        }
        Ok(Done::Migrated { moved })
    }

    fn postback_event(
        &self,
        engine: &Engine<'_>,
        b: &mut Batch,
        id: &str,
        source: &str,
        mapped: MappedPostback,
        now: i64,
    ) {
        b.commit.events.push(EventRecord {
            key: None,
            contact: id.to_string(),
            name: mapped.event.clone(),
            payload: serde_json::json!({ "source": source }),
            received_at: now,
        });
        let ev = EventValue {
            name: mapped.event,
            fields: mapped.fields,
            at: now,
            nth: 0,
        };
        self.run(engine, b, id, EngineInput::Event(ev), now);
    }

    /// Apply postbacks held for any of the contact's keys (the shell's
    /// rules, as in the simulator).
    async fn release_held(
        &self,
        engine: &Engine<'_>,
        b: &mut Batch,
        id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let Some(slot) = b.slots.get(id) else {
            return Ok(());
        };
        let mut held: Vec<HeldPostback> = Vec::new();
        for key in intake::unique_keys(&self.bundle, &slot.st.contact) {
            b.commit
                .release_checked
                .push((key.0.clone(), key.1.clone(), now));
            let waiting = match b.held.get(&key) {
                Some(read) => read.clone(),
                None => self.store.held_for(&key.0, &key.1).await?,
            };
            for h in waiting {
                if h.until >= now && !b.commit.released.contains(&h.id) {
                    held.push(h);
                }
            }
        }
        let inputs: Vec<HeldInput> = held
            .iter()
            .map(|h| HeldInput {
                source: h.source.clone(),
                params: h.params.clone(),
                until: h.until,
            })
            .collect();
        b.commit.released.extend(held.iter().map(|h| h.id));
        let done = shell::release_held(
            &self.bundle,
            &self.env,
            &mut self.target(engine, b, id, now),
            &inputs,
            now,
        );
        for (h, r) in held.iter().zip(done) {
            if let Released::Refused(why) = r {
                tracing::warn!(contact = %id, held = h.id, source = %h.source, reason = %why, "a held postback no longer maps; not applied");
            }
        }
        Ok(())
    }
}

/// One contact of a batch, for the shell: its input's output goes into
/// the batch's commit.
struct BatchContact<'a> {
    applier: &'a Applier,
    engine: &'a Engine<'a>,
    b: &'a mut Batch,
    id: &'a str,
    now: i64,
}

impl Target for BatchContact<'_> {
    fn engine(&self) -> &Engine<'_> {
        self.engine
    }

    fn state(&self) -> Option<&ContactState> {
        self.b.slots.get(self.id).map(|s| &s.st)
    }

    fn apply(&mut self, input: EngineInput) {
        self.applier
            .run(self.engine, self.b, self.id, input, self.now);
    }

    fn postback(&mut self, source: &str, mapped: MappedPostback) {
        self.applier
            .postback_event(self.engine, self.b, self.id, source, mapped, self.now);
    }

    fn journal(&mut self, line: JournalLine) {
        self.b.commit.journal.push((self.id.to_string(), line));
    }
}

/// An outbox idempotency key: the instant (12 hex digits) and a sequence
/// number of this process (8), so the keys sort in the order they are made
/// and go in at the end of the outbox's unique index; then a dash and 64
/// bits of the SHA-256 of `what`, which make the key unique across daemons
/// and restarts.
fn idem_key(now: i64, what: &str) -> String {
    use std::fmt::Write;
    use std::sync::atomic::{AtomicU32, Ordering};
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let h = Sha256::digest(what.as_bytes());
    let mut key = String::with_capacity(37);
    let _ = write!(key, "{:012x}{seq:08x}-", now.max(0));
    for b in h.iter().take(8) {
        let _ = write!(key, "{b:02x}");
    }
    key
}

#[cfg(test)]
mod tests {
    use super::idem_key;

    #[test]
    fn idempotency_keys_sort_by_time_and_differ_by_effect() {
        let what = "c1\u{0}Some(3)\u{0}1\u{0}m0";
        let a = idem_key(1_800_000_000, what);
        assert_eq!(a.len(), 37);
        assert!(a.starts_with("00006b49d200"), "{a}");
        let b = idem_key(1_800_000_000, what);
        assert!(b > a, "made later, sorts later: {a} {b}");
        assert_eq!(a[21..], b[21..], "the same effect, the same hash");
        assert_ne!(
            a[21..],
            idem_key(1_800_000_000, "c1\u{0}Some(3)\u{0}1\u{0}m1")[21..]
        );
        assert!(idem_key(1_800_000_001, "a") > idem_key(1_800_000_000, "z"));
    }
}
