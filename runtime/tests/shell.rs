//! The shell's one bound on timer firings (`shell::fire_due`): a contact
//! whose timers fire goes quiet after one round; one that stays due stops
//! after `MAX_TIMER_ROUNDS` inputs, journaled, instead of looping.

#![allow(clippy::unwrap_used)]

mod vm_support;

use nudge_runtime::engine::{ContactState, Engine, EngineInput, JournalLine};
use nudge_runtime::intake::MappedPostback;
use nudge_runtime::shell::{self, Fired, MAX_TIMER_ROUNDS, Target};
use nudge_runtime::vm::{Contact, EventValue};
use std::collections::BTreeMap;

const SRC: &str = r#"
event go {}
flow a { when go  step s { wait 1 hour  log "a" } }
flow b { when go  step s { wait 1 hour  log "b" } }
"#;

/// A contact held in memory; `lose` drops every input (a stuck contact).
struct Host<'e> {
    engine: &'e Engine<'e>,
    st: ContactState,
    now: i64,
    inputs: usize,
    lose: bool,
    journal: Vec<String>,
}

impl Target for Host<'_> {
    fn engine(&self) -> &Engine<'_> {
        self.engine
    }
    fn state(&self) -> Option<&ContactState> {
        Some(&self.st)
    }
    fn apply(&mut self, input: EngineInput) {
        self.inputs += 1;
        if !self.lose {
            let out = self
                .engine
                .apply(&mut self.st, input, self.now, &BTreeMap::new());
            self.journal.extend(out.journal.into_iter().map(|j| j.what));
        }
    }
    fn postback(&mut self, _source: &str, _mapped: MappedPostback) {}
    fn journal(&mut self, line: JournalLine) {
        self.journal.push(line.what);
    }
}

fn host<'e>(engine: &'e Engine<'e>, lose: bool) -> Host<'e> {
    let mut h = Host {
        engine,
        st: ContactState::new(Contact {
            id: "c".into(),
            fields: BTreeMap::new(),
        }),
        now: 0,
        inputs: 0,
        lose: false,
        journal: Vec::new(),
    };
    let go = EventValue {
        name: "go".into(),
        fields: BTreeMap::new(),
        at: 0,
        nth: 0,
    };
    h.apply(EngineInput::Event(go));
    h.now = 3600;
    h.inputs = 0;
    h.lose = lose;
    h
}

#[test]
fn due_timers_of_every_flow_fire_in_one_round() {
    let bundle = vm_support::bundle(SRC);
    let engine = Engine::new(&bundle).unwrap();
    let mut h = host(&engine, false);
    assert_eq!(shell::fire_due(&mut h, 3600), Fired::Quiet(1));
    assert!(h.journal.contains(&"a".to_string()), "{:?}", h.journal);
    assert!(h.journal.contains(&"b".to_string()), "{:?}", h.journal);
}

#[test]
fn a_contact_that_stays_due_stops_after_the_bound_and_is_journaled() {
    let bundle = vm_support::bundle(SRC);
    let engine = Engine::new(&bundle).unwrap();
    let mut h = host(&engine, true);
    assert_eq!(shell::fire_due(&mut h, 3600), Fired::StillDue);
    assert_eq!(h.inputs, MAX_TIMER_ROUNDS);
    let last = h.journal.last().unwrap();
    assert!(
        last.starts_with("timers still due after 16 firings"),
        "{last}"
    );
}
