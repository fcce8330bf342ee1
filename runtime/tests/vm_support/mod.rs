//! Helpers for the VM tests: compile a one-file project from memory, start an
//! enrollment the way the engine does, feed it inputs, and read the effects.
//!
//! Takes `.nudge` source text; gives a [`Bundle`] and a small [`Run`] driver
//! around the pure `advance`. Panics (test code) when the source does not
//! compile, printing the diagnostics.

#![allow(dead_code, clippy::unwrap_used)]

use nudge_runtime::compiler::bundle::{Bundle, Program};
use nudge_runtime::compiler::compile;
use nudge_runtime::compiler::files::{MemoryFs, SourceSet};
use nudge_runtime::compiler::value::{Value, parse_time};
use nudge_runtime::vm::*;
use std::collections::BTreeMap;

/// Compile `src` (one file, `main.nudge`) to a bundle; panics with the diagnostics.
pub fn bundle(src: &str) -> Bundle {
    bundle_with(src, &MemoryFs::new())
}

/// Like [`bundle`], with files for `file(…)`.
pub fn bundle_with(src: &str, fs: &MemoryFs) -> Bundle {
    let mut set = SourceSet::new();
    set.add("main.nudge", "main.nudge", src);
    let (checked, bundle) = compile(&set, fs);
    let errors: Vec<_> = checked
        .diagnostics
        .items
        .iter()
        .map(|d| (d.code(), src.get(d.span.range()).unwrap_or("").to_string()))
        .collect();
    assert!(bundle.is_some(), "does not compile: {errors:?}");
    bundle.unwrap()
}

/// An RFC 3339 instant as Unix seconds.
pub fn t(s: &str) -> i64 {
    parse_time(s).unwrap_or_else(|| panic!("bad test instant `{s}`"))
}

/// Time triggers (LANGUAGE.md A3) without and with `late`, for the
/// simulator's and the daemon's tests of the same rules.
pub const DEALS: &str = r#"
contact { email: email? unique  deal_created_at: time? }
flow nurture {
  when contact.deal_created_at + 7 days
  step s { log "nurture" }
}
flow grace {
  when contact.deal_created_at + 7 days late 2 days
  step s { log "grace" }
}
"#;

/// 2026-01-01T00:00:00Z, the simulator's epoch.
pub const T0: i64 = 1_767_225_600;
pub const HOUR: i64 = 3_600;
pub const DAY: i64 = 86_400;

/// A contact with the schema's defaults (sets and lists start empty), then `fields`.
pub fn contact(b: &Bundle, id: &str, fields: &[(&str, Value)]) -> Contact {
    let mut m = BTreeMap::new();
    for f in &b.schema {
        if let Some(d) = &f.default {
            m.insert(f.name.clone(), d.clone());
        }
    }
    m.insert("tags".to_string(), Value::Set(Vec::new()));
    m.insert("created_at".to_string(), Value::Time(T0));
    for (k, v) in fields {
        m.insert((*k).to_string(), v.clone());
    }
    Contact {
        id: id.to_string(),
        fields: m,
    }
}

/// An event value (its `nth` given).
pub fn ev(name: &str, nth: i64, fields: &[(&str, Value)], at: i64) -> EventValue {
    EventValue {
        name: name.to_string(),
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect(),
        at,
        nth,
    }
}

/// One enrollment being driven through `advance`, with everything it produced.
pub struct Run<'b> {
    pub bundle: &'b Bundle,
    pub program: &'b Program,
    pub enr: Enrollment,
    pub contact: Contact,
    pub env: BTreeMap<String, String>,
    /// Sends per channel so far (fed back as the world's `sent`).
    pub sent: BTreeMap<String, Vec<i64>>,
    /// Effects of the last input only.
    pub last: Vec<Effect>,
    pub changes: Vec<Change>,
    /// Every effect so far.
    pub all: Vec<Effect>,
}

impl<'b> Run<'b> {
    /// A new enrollment of `contact` at the flow's first step, not yet started.
    pub fn new(bundle: &'b Bundle, flow: &str, contact: Contact) -> Run<'b> {
        let program = bundle
            .flow(flow)
            .unwrap_or_else(|| panic!("no flow `{flow}`"));
        let first = program.steps.first().expect("a step");
        let holdout = program
            .holdout
            .is_some_and(|h| hash_share(&[&contact.id, flow, "holdout"]) < h);
        Run {
            bundle,
            program,
            enr: Enrollment {
                flow: flow.to_string(),
                version: "test".to_string(),
                pc: first.pc,
                status: Status::Active,
                step: first.name.clone(),
                entered_at: T0,
                event: None,
                locals: BTreeMap::new(),
                wait: None,
                holdout,
                failure: None,
            },
            contact,
            env: BTreeMap::new(),
            sent: BTreeMap::new(),
            last: Vec::new(),
            changes: Vec::new(),
            all: Vec::new(),
        }
    }

    /// Start the enrollment at `now` (optionally with a trigger event).
    pub fn start(mut self, now: i64, event: Option<EventValue>) -> Run<'b> {
        self.enr.entered_at = now;
        self.enr.event = event;
        self.input(Input::Start, now);
        self
    }

    /// Apply one input at `now`.
    pub fn input(&mut self, input: Input, now: i64) -> &mut Run<'b> {
        let world = World {
            env: &self.env,
            sent: &self.sent,
            version: "test",
            calls: Default::default(),
        };
        let out = advance(
            self.bundle,
            self.program,
            &self.enr,
            &self.contact,
            &input,
            now,
            &world,
        );
        for e in &out.effects {
            if let Effect::Send(m) = e {
                self.sent.entry(m.channel.clone()).or_default().push(m.at);
            }
        }
        self.enr = out.enrollment;
        self.contact = out.contact;
        self.changes.extend(out.changes);
        self.all.extend(out.effects.iter().cloned());
        self.last = out.effects;
        self
    }

    pub fn event(&mut self, e: EventValue) -> &mut Run<'b> {
        let at = e.at;
        self.input(Input::Event(e), at)
    }

    /// Fire the timer due first, at its own instant; returns that instant.
    pub fn fire(&mut self) -> i64 {
        let at = self
            .enr
            .wait
            .as_ref()
            .and_then(PendingWait::wake_at)
            .expect("a pending timer");
        self.input(Input::Timer, at);
        at
    }

    /// The pending timers' instants.
    pub fn timers(&self) -> Vec<i64> {
        self.enr
            .wait
            .as_ref()
            .map(|w| w.timers.iter().map(|(t, _)| *t).collect())
            .unwrap_or_default()
    }

    pub fn wake(&self) -> Option<i64> {
        self.enr.wait.as_ref().and_then(PendingWait::wake_at)
    }

    pub fn status(&self) -> Status {
        self.enr.status
    }

    pub fn step(&self) -> &str {
        &self.enr.step
    }

    pub fn field(&self, f: &str) -> Value {
        self.contact.get(f)
    }

    pub fn tags(&self) -> Vec<String> {
        match self.contact.get("tags") {
            Value::Set(v) => v
                .iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Messages of the last input.
    pub fn messages(&self) -> Vec<&Message> {
        sends(&self.last)
    }

    /// Every message so far.
    pub fn all_messages(&self) -> Vec<&Message> {
        sends(&self.all)
    }

    /// Calls of the last input.
    pub fn calls(&self) -> Vec<&Request> {
        self.last
            .iter()
            .filter_map(|e| match e {
                Effect::Call(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    /// Journal lines of the last input.
    pub fn journal(&self) -> Vec<String> {
        journal(&self.last)
    }

    /// Every journal line so far.
    pub fn all_journal(&self) -> Vec<String> {
        journal(&self.all)
    }

    /// Effects of the last input other than journal lines and sends.
    pub fn others(&self) -> Vec<&Effect> {
        self.last
            .iter()
            .filter(|e| !matches!(e, Effect::Journal { .. } | Effect::Send(_)))
            .collect()
    }
}

pub fn sends(effects: &[Effect]) -> Vec<&Message> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(m) => Some(m),
            _ => None,
        })
        .collect()
}

pub fn journal(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Journal { what, .. } => Some(what.clone()),
            _ => None,
        })
        .collect()
}

/// A bundle holding only `channels` (delivery tests build channels by hand).
pub fn with_channels(channels: Vec<nudge_runtime::compiler::bundle::ChannelDef>) -> Bundle {
    Bundle {
        format: nudge_runtime::compiler::bundle::FORMAT_VERSION,
        schema: vec![],
        events: vec![],
        channels,
        templates: vec![],
        sources: vec![],
        flows: vec![],
        tests: vec![],
        defines: vec![],
        env: vec![],
    }
}
