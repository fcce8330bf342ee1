//! One shell above the engine: how outside inputs reach one contact, the
//! same for the simulator (`nudge test`, [`crate::sim`]) and the daemon
//! (`nudge run`, `daemon/apply_jobs.rs`), so the two cannot disagree on it.
//!
//! * **create** ([`new_state`], then [`created`]): fields checked and
//!   defaults filled, unique keys checked against the other contacts,
//!   schedules armed, then `contact_created` applied.
//! * **held postbacks** ([`release_held`]): a postback held because no
//!   contact had its key is applied when one gets it (before its time to
//!   keep runs out), and journaled `held postback from `S` applied`; one
//!   that no longer maps (the source changed, an event is refused) is
//!   journaled as not applied, never dropped silently.
//! * **due timers** ([`fire_due`]): `Timer` inputs at one instant until
//!   nothing is due at that instant, at most [`MAX_TIMER_ROUNDS`]; a
//!   contact still due after that is journaled, and fires again at its
//!   next wake (the daemon also counts it, `nudge_timer_rounds_exhausted_total`,
//!   and logs it at `warn` with the contact id once its commit returned).
//!
//! A host gives access to one of its contacts through [`Target`]: where
//! the state is, and what becomes of the engine's output (captured by the
//! simulator, outbox rows and journal lines in the daemon's commit).

use crate::engine::{ContactState, Engine, EngineInput, JournalLine};
use crate::intake::{self, MappedPostback};
use crate::vm::EventValue;
use nudge_compiler::bundle::Bundle;
use nudge_compiler::value::Value;
use std::collections::BTreeMap;

/// `Timer` inputs applied to one contact at one instant, at most.
pub const MAX_TIMER_ROUNDS: usize = 16;

/// One contact of a host (the simulator's memory, the daemon's batch).
pub trait Target {
    /// The engine that applies the inputs.
    fn engine(&self) -> &Engine<'_>;
    /// The contact's state as it stands now.
    fn state(&self) -> Option<&ContactState>;
    /// Apply one input through the engine and take what it produced.
    fn apply(&mut self, input: EngineInput);
    /// Apply a mapped postback's event (the daemon also records the event).
    fn postback(&mut self, source: &str, mapped: MappedPostback);
    /// A journal line of the shell's own.
    fn journal(&mut self, line: JournalLine);
}

/// Why a contact cannot be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    /// A field is missing, unknown or of the wrong type.
    #[error("{0}")]
    Invalid(String),
    /// Another contact has the value of this unique field.
    #[error("another contact already has this `{0}`")]
    Taken(String),
}

/// A new contact's state, with its unique keys: defaults filled, required
/// fields checked, schedules armed. `taken` says whether another contact
/// already has a key. Nothing has run yet: add it, then call [`created`].
pub fn new_state(
    engine: &Engine<'_>,
    env: &BTreeMap<String, String>,
    id: String,
    set: Vec<(String, Value)>,
    now: i64,
    taken: impl Fn(&(String, String)) -> bool,
) -> Result<(ContactState, Vec<(String, String)>), CreateError> {
    let bundle = engine.bundle;
    let contact = intake::new_contact(bundle, id, set, now).map_err(CreateError::Invalid)?;
    let keys = intake::unique_keys(bundle, &contact);
    if let Some((field, _)) = keys.iter().find(|k| taken(k)) {
        return Err(CreateError::Taken(field.clone()));
    }
    let mut st = ContactState::new(contact);
    engine.arm(&mut st, now, env);
    Ok((st, keys))
}

/// Apply `contact_created` to a contact just added by [`new_state`].
pub fn created(t: &mut impl Target, now: i64) {
    t.apply(EngineInput::Event(EventValue {
        name: "contact_created".into(),
        fields: BTreeMap::new(),
        at: now,
        nth: 0,
    }));
}

/// A postback held until a contact has its key.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldInput {
    pub source: String,
    pub params: BTreeMap<String, String>,
    /// Kept until this instant, then dropped unapplied.
    pub until: i64,
}

/// What became of one held postback given to [`release_held`].
#[derive(Debug, Clone, PartialEq)]
pub enum Released {
    Applied,
    /// Its time to keep ran out before a contact had its key.
    Expired,
    /// It no longer maps to an event (journaled with the reason).
    Refused(String),
}

/// Apply held postbacks whose key this contact now has, in order.
pub fn release_held(
    bundle: &Bundle,
    env: &BTreeMap<String, String>,
    t: &mut impl Target,
    held: &[HeldInput],
    now: i64,
) -> Vec<Released> {
    held.iter()
        .map(|h| release_one(bundle, env, t, h, now))
        .collect()
}

fn release_one(
    bundle: &Bundle,
    env: &BTreeMap<String, String>,
    t: &mut impl Target,
    h: &HeldInput,
    now: i64,
) -> Released {
    if h.until < now {
        return Released::Expired;
    }
    let line = |what: String| JournalLine {
        at: now,
        flow: String::new(),
        step: String::new(),
        what,
    };
    match intake::map_postback(bundle, env, &h.source, &h.params) {
        Ok(mapped) => {
            t.postback(&h.source, mapped);
            t.journal(line(format!("held postback from `{}` applied", h.source)));
            Released::Applied
        }
        Err(e) => {
            let why = e.to_string();
            t.journal(line(format!(
                "held postback from `{}` not applied: {why}",
                h.source
            )));
            Released::Refused(why)
        }
    }
}

/// What [`fire_due`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fired {
    /// Nothing is due at `now` any more, after this many `Timer` inputs.
    Quiet(usize),
    /// Still due after [`MAX_TIMER_ROUNDS`] inputs (journaled).
    StillDue,
}

/// Fire what is due for the contact at `now`: each `Timer` input fires
/// every due wait, time trigger and schedule once, and a firing may make
/// more due at the same instant.
pub fn fire_due(t: &mut impl Target, now: i64) -> Fired {
    for round in 1..=MAX_TIMER_ROUNDS {
        t.apply(EngineInput::Timer);
        let due = t
            .state()
            .and_then(|s| t.engine().next_wake(s))
            .is_some_and(|w| w <= now);
        if !due {
            return Fired::Quiet(round);
        }
    }
    t.journal(JournalLine {
        at: now,
        flow: String::new(),
        step: String::new(),
        what: format!(
            "timers still due after {MAX_TIMER_ROUNDS} firings at one instant; the rest fire at the next wake"
        ),
    });
    Fired::StillDue
}
