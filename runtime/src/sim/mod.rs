//! The simulator behind `nudge test`: contacts in memory, a virtual clock
//! starting at 2026-01-01T00:00:00Z, and every message and call captured,
//! never sent. It drives the same [`Engine`] (and so the same `advance`) as
//! the daemon, and takes postbacks as the daemon does (held when no contact
//! has their key, duplicates by their source's `dedupe` value ignored).
//! Creating a contact, applying its held postbacks and firing its due
//! timers go through [`crate::shell`], the code the daemon runs for them.
//! `runner.rs` executes `test` blocks against it.

pub mod runner;

use crate::engine::{ContactState, Engine, EngineInput, JournalLine};
use crate::intake;
use crate::shell::{self, Released, Target};
use crate::vm::*;
use nudge_compiler::bundle::{Bundle, BundleError};
use nudge_compiler::value::{Value, format_time};
use std::collections::{BTreeMap, VecDeque};

/// 2026-01-01T00:00:00Z, where every test starts.
pub const EPOCH: i64 = 1_767_225_600;

/// Contacts woken in one clock move before the simulator gives up (each
/// wake fires at most `shell::MAX_TIMER_ROUNDS` timer inputs).
const MAX_FIRINGS: usize = 100_000;

/// A captured message or call, and whether an `expect` consumed it.
#[derive(Debug, Clone)]
pub struct Captured<T> {
    pub item: T,
    pub consumed: bool,
}

/// A postback whose contact does not exist yet.
pub use crate::shell::HeldInput as Held;

/// What became of a postback in the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostbackDone {
    Applied,
    /// No contact has its key yet.
    Held,
    /// Its `dedupe` value was seen before: nothing changed.
    Duplicate,
}

/// One simulated world.
pub struct Sim<'b> {
    pub bundle: &'b Bundle,
    pub engine: Engine<'b>,
    pub now: i64,
    pub env: BTreeMap<String, String>,
    pub contacts: Vec<ContactState>,
    /// Named contacts → index in `contacts`.
    pub names: BTreeMap<String, usize>,
    pub messages: Vec<Captured<Message>>,
    pub calls: Vec<Captured<Request>>,
    /// Queued responses per channel name or URL.
    pub replies: BTreeMap<String, VecDeque<(i64, Value)>>,
    pub journal: Vec<(usize, JournalLine)>,
    pub held: Vec<Held>,
    /// Postback `dedupe` values seen (source, value) → kept until.
    pub postback_keys: BTreeMap<(String, String), i64>,
    next_id: usize,
    /// Per contact: when its next timer was set (a counter), so that timers
    /// due at the same instant fire in creation order (LANGUAGE.md §10).
    armed: Vec<u64>,
    arm_seq: u64,
}

impl<'b> Sim<'b> {
    /// A world whose new enrollments carry the bundle's hash.
    pub fn new(bundle: &'b Bundle) -> Result<Sim<'b>, BundleError> {
        Ok(Sim::with_version(bundle, bundle.hash()?))
    }

    /// A world whose new enrollments carry `version` (the bundle's hash,
    /// computed once by a caller running many tests).
    pub fn with_version(bundle: &'b Bundle, version: String) -> Sim<'b> {
        let mut engine = Engine::new_unhashed(bundle);
        engine.version = version;
        Sim {
            bundle,
            engine,
            now: EPOCH,
            env: BTreeMap::new(),
            contacts: Vec::new(),
            names: BTreeMap::new(),
            messages: Vec::new(),
            calls: Vec::new(),
            replies: BTreeMap::new(),
            journal: Vec::new(),
            held: Vec::new(),
            postback_keys: BTreeMap::new(),
            next_id: 1,
            armed: Vec::new(),
            arm_seq: 0,
        }
    }

    /// Create a contact from given fields (defaults filled, required checked).
    pub fn create_contact(
        &mut self,
        name: Option<&str>,
        given: Vec<(String, Value)>,
    ) -> Result<usize, String> {
        let mut id = match name {
            Some(n) => n.to_string(),
            None => format!("contact-{}", self.next_id),
        };
        self.next_id += 1;
        if let Some((_, Value::Text(t))) = given.iter().find(|(k, _)| k == "id") {
            id = t.clone();
        }
        let fields = intake::contact_fields(self.bundle, given)?;
        let contacts = &self.contacts;
        let bundle = self.bundle;
        let taken = |k: &(String, String)| {
            contacts
                .iter()
                .any(|c| intake::unique_keys(bundle, &c.contact).contains(k))
        };
        let (st, _) = shell::new_state(&self.engine, &self.env, id, fields, self.now, taken)
            .map_err(|e| e.to_string())?;
        self.contacts.push(st);
        self.arm_seq += 1;
        self.armed.push(self.arm_seq);
        let i = self.contacts.len() - 1;
        if let Some(n) = name {
            self.names.insert(n.to_string(), i);
        }
        let now = self.now;
        shell::created(&mut self.target(i), now);
        self.release_held(i)?;
        Ok(i)
    }

    /// Contact `i` as the shell drives it.
    fn target(&mut self, i: usize) -> SimContact<'_, 'b> {
        SimContact { sim: self, i }
    }

    fn event_value(&self, name: &str, fields: BTreeMap<String, Value>) -> EventValue {
        EventValue {
            name: name.to_string(),
            fields,
            at: self.now,
            nth: 0,
        }
    }

    /// Typed event fields from given values.
    pub fn event_fields(
        &self,
        name: &str,
        given: Vec<(String, Value)>,
    ) -> Result<BTreeMap<String, Value>, String> {
        intake::event_fields(self.bundle, name, given)
    }

    /// Send an event to contact `i`.
    pub fn event(&mut self, i: usize, name: &str, fields: BTreeMap<String, Value>) {
        let ev = self.event_value(name, fields);
        self.deliver(i, EngineInput::Event(ev));
    }

    /// A change from outside.
    pub fn set(&mut self, i: usize, field: &str, value: Value) -> Result<(), String> {
        let typed = intake::contact_fields(self.bundle, vec![(field.to_string(), value)])?;
        let Some(st) = self.contacts.get_mut(i) else {
            return Err("no such contact".into());
        };
        intake::set_fields(&mut st.contact, typed);
        self.deliver(i, EngineInput::Changed(vec![field.to_string()]));
        self.release_held(i)
    }

    /// Apply an input to contact `i`, then answer its calls at the same instant.
    pub fn deliver(&mut self, i: usize, input: EngineInput) {
        let mut pending = VecDeque::from([input]);
        while let Some(input) = pending.pop_front() {
            let Some(st) = self.contacts.get_mut(i) else {
                return;
            };
            let before = st.next_wake();
            let applied = self.engine.apply(st, input, self.now, &self.env);
            if st.next_wake() != before
                && let Some(a) = self.armed.get_mut(i)
            {
                self.arm_seq += 1;
                *a = self.arm_seq;
            }
            for j in applied.journal {
                self.journal.push((i, j));
            }
            for mut m in applied.messages {
                // sealed with this same environment just now: joins cleanly
                if let Some(r) = m.request.as_mut() {
                    let _joined = r.unseal(&self.env);
                }
                self.messages.push(Captured {
                    item: m,
                    consumed: false,
                });
            }
            for mut c in applied.calls {
                // tests see the request as it would be sent (`vm/seal.rs`)
                let _joined = c.unseal(&self.env);
                if let Some(name) = &c.result {
                    let key_channel = c.channel.clone().unwrap_or_default();
                    let (status, json) = self
                        .replies
                        .get_mut(&key_channel)
                        .and_then(VecDeque::pop_front)
                        .or_else(|| self.replies.get_mut(&c.url).and_then(VecDeque::pop_front))
                        .unwrap_or((200, Value::Null));
                    pending.push_back(EngineInput::CallResponse {
                        flow: c.flow.clone(),
                        name: name.clone(),
                        status,
                        json,
                    });
                }
                self.calls.push(Captured {
                    item: c,
                    consumed: false,
                });
            }
        }
    }

    /// Move the clock to `target`, firing every due timer in order (by due
    /// instant, then creation), each with `now` at its own instant.
    pub fn advance_to(&mut self, target: i64) -> Result<(), String> {
        for _ in 0..MAX_FIRINGS {
            let next = self
                .contacts
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    c.next_wake()
                        .map(|t| (t, self.armed.get(i).copied().unwrap_or(0), i))
                })
                .filter(|(t, _, _)| *t <= target)
                .min();
            let Some((t, _, i)) = next else {
                self.now = self.now.max(target);
                return Ok(());
            };
            self.now = self.now.max(t);
            let before = self.contacts[i].next_wake();
            let now = self.now;
            shell::fire_due(&mut self.target(i), now);
            if self.contacts[i].next_wake() == before && before.is_some_and(|b| b <= self.now) {
                return Err(format!(
                    "a timer due at {} for contact `{}` does not fire",
                    format_time(t),
                    self.contacts[i].contact.id
                ));
            }
        }
        Err(format!(
            "more than {MAX_FIRINGS} timers fired in one clock move"
        ))
    }

    /// A postback through a source's mapping, as the daemon takes it: a
    /// `dedupe` value seen before makes it a duplicate that changes nothing.
    pub fn postback(
        &mut self,
        source: &str,
        params: BTreeMap<String, String>,
    ) -> Result<PostbackDone, String> {
        let mapped = intake::check_token(self.bundle, &self.env, source, &params, None)
            .and_then(|()| intake::map_postback(self.bundle, &self.env, source, &params))
            .map_err(|e| match e {
                intake::PostbackError::UnknownSource(_) => e.to_string(),
                other => format!("postback refused: {other}"),
            })?;
        if let Some(k) = &mapped.dedupe {
            let now = self.now;
            self.postback_keys.retain(|_, until| *until >= now);
            match self.postback_keys.entry((source.to_string(), k.clone())) {
                // a duplicate leaves the first one's keeping time as it is
                std::collections::btree_map::Entry::Occupied(_) => {
                    return Ok(PostbackDone::Duplicate);
                }
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(intake::dedupe_until(self.bundle, source, now));
                }
            }
        }
        Ok(self.apply_postback(source, mapped, params))
    }

    /// Apply a mapped postback to its contact, or hold it.
    fn apply_postback(
        &mut self,
        source: &str,
        mapped: intake::MappedPostback,
        params: BTreeMap<String, String>,
    ) -> PostbackDone {
        let key = (mapped.key_field.clone(), mapped.key_value.clone());
        let found = self
            .contacts
            .iter()
            .position(|c| intake::unique_keys(self.bundle, &c.contact).contains(&key));
        match found {
            Some(i) => {
                self.event(i, &mapped.event, mapped.fields);
                PostbackDone::Applied
            }
            None => {
                let hold = self.bundle.source(source).map_or(0, |s| s.hold_seconds);
                self.held.push(Held {
                    source: source.to_string(),
                    params,
                    until: self.now + hold,
                });
                PostbackDone::Held
            }
        }
    }

    /// Apply the held postbacks whose key contact `i` has (the shell's
    /// rules, as in the daemon); expired ones are dropped.
    fn release_held(&mut self, i: usize) -> Result<(), String> {
        let now = self.now;
        self.held.retain(|h| h.until >= now);
        let Some(st) = self.contacts.get(i) else {
            return Ok(());
        };
        let keys = intake::unique_keys(self.bundle, &st.contact);
        let bundle = self.bundle;
        let (mine, others): (Vec<Held>, Vec<Held>) =
            std::mem::take(&mut self.held).into_iter().partition(|h| {
                bundle.source(&h.source).is_some_and(|src| {
                    let value = h.params.get(&src.contact_key).cloned().unwrap_or_default();
                    keys.contains(&(src.contact_key.clone(), value))
                })
            });
        self.held = others;
        let env = self.env.clone();
        // their `dedupe` values were recorded when they were held
        let done = shell::release_held(bundle, &env, &mut self.target(i), &mine, now);
        match done.into_iter().find_map(|r| match r {
            Released::Refused(why) => Some(why),
            _ => None,
        }) {
            Some(why) => Err(format!("postback refused: {why}")),
            None => Ok(()),
        }
    }
}

/// One contact of the simulator, for the shell.
struct SimContact<'s, 'b> {
    sim: &'s mut Sim<'b>,
    i: usize,
}

impl Target for SimContact<'_, '_> {
    fn engine(&self) -> &Engine<'_> {
        &self.sim.engine
    }

    fn state(&self) -> Option<&ContactState> {
        self.sim.contacts.get(self.i)
    }

    fn apply(&mut self, input: EngineInput) {
        self.sim.deliver(self.i, input);
    }

    fn postback(&mut self, _source: &str, mapped: intake::MappedPostback) {
        self.sim.event(self.i, &mapped.event, mapped.fields);
    }

    fn journal(&mut self, line: JournalLine) {
        self.sim.journal.push((self.i, line));
    }
}
