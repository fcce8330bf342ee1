//! Dispatch: one input for one contact, applied across all its flows
//! (LANGUAGE.md §5.5, §10). The daemon and the simulator both call
//! [`Engine::apply`]; it calls the pure [`advance`] for each enrollment and
//! handles what crosses flows: restarts, enrolment by triggers, `start`,
//! `goto` another flow, `stop`, emitted events, data-match re-checks, time
//! triggers and schedules. Pure as well: the caller owns the clock and IO.
//!
//! A failed enrollment (a runtime error, LANGUAGE.md amendment A4) ends like
//! any other: its flow's other enrollments and the contact's other flows
//! carry on, `reenter` treats it as left (`never` does not enrol again,
//! `after_exit` and `restart` do on the next trigger), and
//! [`Applied::failures`] lists it for the daemon's counters and log. A
//! trigger condition that fails to evaluate enrols the contact as failed, so
//! the error is seen.
//!
//! Time triggers (LANGUAGE.md A3) are planned at the end of every input,
//! so when the contact is created (its `contact_created`), when a field
//! changes and on a re-plan after a deploy ([`EngineInput::Replan`]). A
//! newly planned instant at or after now fires at that instant; one in the
//! past by no more than the trigger's `late` fires at once, in the same
//! input; an older one is journaled as missed ([`Applied::missed`]). A
//! trigger planned before and due meanwhile fires whatever `late` says.
//!
//! Each input ends by bounding the state ([`crate::compact`]): sends outside
//! the largest cap window are dropped, earlier finished enrollments of a
//! flow are folded into counts.

use crate::clock;
use crate::compact::{self, Folded};
use crate::vm::*;
use nudge_compiler::bundle::*;
use nudge_compiler::value::Value;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Inputs applied in one call before the rest is dropped (a runaway of
/// emitted events).
const MAX_INPUTS: usize = 1_000;

/// A time trigger's state for one contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeTrigger {
    pub at: i64,
    pub fired: bool,
}

/// Everything the engine keeps about one contact.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ContactState {
    pub contact: Contact,
    /// Enrollments, oldest first; the last one of a flow is its current.
    /// After each input only that one is kept per flow (earlier ones are
    /// `folded`, [`crate::compact`]).
    pub enrollments: Vec<Enrollment>,
    pub event_counts: BTreeMap<String, i64>,
    /// Instants of sends per channel (per-contact caps), within the
    /// largest cap window after each input.
    pub sent: BTreeMap<String, Vec<i64>>,
    /// `flow#index` → time trigger state.
    pub time_triggers: BTreeMap<String, TimeTrigger>,
    /// `flow#index` → next instant of a schedule.
    pub schedules: BTreeMap<String, i64>,
    /// Earlier finished enrollments, counted ([`crate::compact`]).
    pub folded: Vec<Folded>,
}

impl ContactState {
    pub fn new(contact: Contact) -> ContactState {
        ContactState {
            contact,
            ..ContactState::default()
        }
    }

    /// The current enrollment of a flow, active or not.
    pub fn latest(&self, flow: &str) -> Option<&Enrollment> {
        self.enrollments.iter().rev().find(|e| e.flow == flow)
    }

    pub fn active(&self, flow: &str) -> Option<&Enrollment> {
        self.latest(flow).filter(|e| e.is_active())
    }

    fn active_index(&self, flow: &str) -> Option<usize> {
        self.enrollments
            .iter()
            .rposition(|e| e.flow == flow)
            .filter(|i| self.enrollments[*i].is_active())
    }

    /// The earliest instant at which something is due for this contact.
    pub fn next_wake(&self) -> Option<i64> {
        let waits = self
            .enrollments
            .iter()
            .filter(|e| e.is_active())
            .filter_map(|e| e.wait.as_ref().and_then(|w| w.wake_at()));
        let triggers = self
            .time_triggers
            .values()
            .filter(|t| !t.fired)
            .map(|t| t.at);
        waits
            .chain(triggers)
            .chain(self.schedules.values().copied())
            .min()
    }
}

/// One input for a contact.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineInput {
    /// An event (its `nth` is computed here).
    Event(EventValue),
    /// Fields changed from outside: re-check data waits, then `contact_updated`.
    Changed(Vec<String>),
    /// Fire everything due at `now`.
    Timer,
    CallResponse {
        flow: String,
        name: String,
        status: i64,
        json: Value,
    },
    /// Manual entry (API, CLI), at a step or the start.
    Enter { flow: String, step: Option<String> },
    /// Manual move to a step of a flow the contact is in.
    Move { flow: String, step: String },
    /// Manual removal.
    Remove { flow: String },
    /// A deploy with `--migrate`: the active enrollment of the flow moves
    /// to this engine's version at the step of the same name, which runs
    /// again from its start (a pending wait is dropped and armed anew).
    /// Nothing happens if the version has no such step.
    Migrate { flow: String },
    /// Nothing happened but the bundle may have changed (deploy, resume):
    /// plan time triggers and schedules again.
    Replan,
}

/// A journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalLine {
    pub at: i64,
    pub flow: String,
    pub step: String,
    pub what: String,
}

/// What an input produced for the world outside.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Applied {
    pub messages: Vec<Message>,
    pub calls: Vec<Request>,
    pub journal: Vec<JournalLine>,
    /// Enrollments this input failed.
    pub failures: Vec<FailedEnrollment>,
    /// Time triggers planned too far in the past to fire (also journaled).
    pub missed: Vec<MissedTrigger>,
}

/// An enrollment that failed (for metrics and logs; the journey says it too).
#[derive(Debug, Clone, PartialEq)]
pub struct FailedEnrollment {
    pub flow: String,
    /// The error's class ([`RunError::reason`]).
    pub reason: &'static str,
    /// The error and where it happened, as the journey says it.
    pub error: String,
}

impl FailedEnrollment {
    fn of(flow: &str, f: &Failure) -> FailedEnrollment {
        FailedEnrollment {
            flow: flow.to_string(),
            reason: f.error.reason(),
            error: f.to_string(),
        }
    }
}

/// A time trigger whose instant was more than its `late` in the past when
/// it was planned (LANGUAGE.md A3).
#[derive(Debug, Clone, PartialEq)]
pub struct MissedTrigger {
    pub flow: String,
    pub at: i64,
    /// Seconds between the instant and the planning.
    pub age: i64,
}

/// Applies inputs with a bundle and the settings (`env`) it reads.
pub struct Engine<'b> {
    pub bundle: &'b Bundle,
    pub version: String,
    /// Paused flows (daemon): they neither enrol nor advance, and their
    /// timers wait until they resume.
    pub paused: BTreeSet<String>,
    /// Bundles deployed before, by version: an enrollment runs on the
    /// version it entered with (new enrollments take `bundle`).
    pub versions: BTreeMap<String, &'b Bundle>,
    /// How long a `call … as NAME` waits for its response.
    pub calls: crate::vm::CallLimits,
}

/// Why a manual input (API, CLI) cannot apply to a contact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManualRefused {
    #[error("`{contact}` is already in flow `{flow}`")]
    AlreadyIn { contact: String, flow: String },
    #[error("`{contact}` is not in flow `{flow}`")]
    NotIn { contact: String, flow: String },
    /// `reenter never` holds for manual entries too (LANGUAGE.md §5.2).
    #[error(
        "`{contact}` has been in flow `{flow}` ({status}) and the flow has `reenter never`: it is not entered again"
    )]
    ReenterNever {
        contact: String,
        flow: String,
        status: &'static str,
    },
}

impl ManualRefused {
    /// The API's error code.
    pub fn code(&self) -> &'static str {
        match self {
            ManualRefused::AlreadyIn { .. } => "already_enrolled",
            ManualRefused::NotIn { .. } => "not_enrolled",
            ManualRefused::ReenterNever { .. } => "reenter_never",
        }
    }
}

/// Keyword folding: case and surrounding spaces ignored.
pub fn fold_keyword(s: &str) -> String {
    s.trim().to_lowercase()
}

struct Run<'r> {
    st: &'r mut ContactState,
    env: &'r BTreeMap<String, String>,
    now: i64,
    out: Applied,
    queue: VecDeque<EngineInput>,
    /// Flows this input moved the contact into or through.
    moved: BTreeSet<String>,
}

impl<'b> Engine<'b> {
    /// An engine whose new enrollments carry the bundle's hash.
    pub fn new(bundle: &'b Bundle) -> Result<Engine<'b>, BundleError> {
        let mut e = Engine::new_unhashed(bundle);
        e.version = bundle.hash()?;
        Ok(e)
    }

    /// An engine whose `version` the caller sets (hashing a bundle costs a
    /// serialisation of it).
    pub fn new_unhashed(bundle: &'b Bundle) -> Engine<'b> {
        Engine {
            bundle,
            version: String::new(),
            paused: BTreeSet::new(),
            versions: BTreeMap::new(),
            calls: crate::vm::CallLimits::default(),
        }
    }

    /// Whether a manual input may apply to this contact: an entry needs a
    /// flow the contact is not in and that `reenter` lets it enter again; a
    /// move or removal one it is in. Other inputs always apply.
    pub fn manual_refused(&self, st: &ContactState, input: &EngineInput) -> Option<ManualRefused> {
        match input {
            EngineInput::Enter { flow, .. } => self.enter_refused(st, flow),
            EngineInput::Move { flow, .. } | EngineInput::Remove { flow }
                if st.active(flow).is_none() =>
            {
                Some(ManualRefused::NotIn {
                    contact: st.contact.id.clone(),
                    flow: flow.clone(),
                })
            }
            _ => None,
        }
    }

    fn enter_refused(&self, st: &ContactState, flow: &str) -> Option<ManualRefused> {
        let (contact, flow_name) = (st.contact.id.clone(), flow.to_string());
        let latest = st.latest(flow)?;
        if latest.is_active() {
            return Some(ManualRefused::AlreadyIn {
                contact,
                flow: flow_name,
            });
        }
        let never = self
            .bundle
            .flow(flow)
            .is_some_and(|p| p.reenter == Reenter::Never);
        never.then(|| ManualRefused::ReenterNever {
            contact,
            flow: flow_name,
            status: latest.status.name(),
        })
    }

    /// Apply one input (and everything it raises) to a contact.
    pub fn apply(
        &self,
        st: &mut ContactState,
        input: EngineInput,
        now: i64,
        env: &BTreeMap<String, String>,
    ) -> Applied {
        let mut run = Run {
            st,
            env,
            now,
            out: Applied::default(),
            queue: VecDeque::from([input]),
            moved: BTreeSet::new(),
        };
        let mut n = 0;
        loop {
            while let Some(input) = run.queue.pop_front() {
                n += 1;
                if n > MAX_INPUTS {
                    run.out.journal.push(JournalLine {
                        at: now,
                        flow: String::new(),
                        step: String::new(),
                        what: format!(
                            "stopped after {MAX_INPUTS} inputs in one instant (emitted events loop?)"
                        ),
                    });
                    run.queue.clear();
                    break;
                }
                run.moved.clear();
                self.one(&mut run, input);
            }
            // plan time triggers and schedules; a trigger due now fires in
            // this same input (each fires once, so this ends)
            self.schedule(&mut run);
            let due = self.due_triggers(&run);
            if due.is_empty() || n > MAX_INPUTS {
                break;
            }
            for k in due {
                self.fire_time_trigger(&mut run, &k);
            }
        }
        compact::compact(run.st, now, self.cap_window());
        run.out
    }

    /// Bound a state as the end of an input does, without an input: for a
    /// stored state rewritten in the current format (`daemon/convert.rs`).
    pub fn compact(&self, st: &mut ContactState, now: i64) {
        compact::compact(st, now, self.cap_window());
    }

    /// The largest cap window of the bundles this engine runs.
    fn cap_window(&self) -> Option<i64> {
        compact::largest_cap_window(
            std::iter::once(self.bundle).chain(self.versions.values().copied()),
        )
    }

    fn one(&self, run: &mut Run<'_>, input: EngineInput) {
        match input {
            EngineInput::Event(ev) => self.event(run, ev),
            EngineInput::Changed(fields) => {
                self.recheck(run);
                let changed = Value::set_of(fields.into_iter().map(Value::Text).collect());
                let ev = EventValue {
                    name: "contact_updated".into(),
                    fields: BTreeMap::from([("changed".to_string(), changed)]),
                    at: run.now,
                    nth: 0,
                };
                self.event(run, ev);
            }
            EngineInput::Timer => self.timers(run),
            EngineInput::Replan => {}
            EngineInput::CallResponse {
                flow,
                name,
                status,
                json,
            } => {
                if let Some(i) = run.st.active_index(&flow) {
                    self.step(run, i, &Input::CallResponse { name, status, json });
                }
            }
            EngineInput::Enter { flow, step } => {
                if self.enter_refused(run.st, &flow).is_none() {
                    self.enroll(run, &flow, None, step.as_deref());
                }
            }
            EngineInput::Move { flow, step } => {
                if let Some(i) = run.st.active_index(&flow) {
                    self.step(run, i, &Input::Move { step });
                }
            }
            EngineInput::Migrate { flow } => self.migrate(run, &flow),
            EngineInput::Remove { flow } => {
                if let Some(i) = run.st.active_index(&flow) {
                    self.end(run, i, Status::Exited, "removed by hand");
                }
            }
        }
    }

    fn trigger_matches(&self, run: &Run<'_>, p: &Program, ev: &EventValue) -> Eval<bool> {
        for t in &p.triggers {
            let hit = match t {
                Trigger::Event(m) => {
                    m.event == ev.name
                        && m.nth.is_none_or(|n| i64::from(n) == ev.nth)
                        && match &m.cond {
                            None => true,
                            Some(c) => {
                                let mut s = Scope::new(run.now);
                                s.contact = Some(&run.st.contact);
                                s.event = Some(ev);
                                s.env = Some(run.env);
                                eval(c, &s)?.truthy()
                            }
                        }
                }
                Trigger::Keyword(k) => {
                    ev.name == "message_received"
                        && matches!(ev.fields.get("text"), Some(Value::Text(t)) if &fold_keyword(t) == k)
                }
                _ => false,
            };
            if hit {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// A trigger condition failed: the enrollment fails (a new one for a
    /// flow the contact is not in).
    fn trigger_failed(
        &self,
        run: &mut Run<'_>,
        flow: &str,
        event: Option<EventValue>,
        e: EvalError,
    ) {
        let i = match run.st.active_index(flow) {
            Some(i) => i,
            None => match self.push_enrollment(run, flow, event, None) {
                Some(i) => i,
                None => return,
            },
        };
        let f = Failure {
            error: e.into(),
            at: FailedAt::Condition("the trigger's `where`"),
        };
        self.fail(run, i, &f);
    }

    /// Fail enrollment `i` from outside `advance` (a trigger condition).
    fn fail(&self, run: &mut Run<'_>, i: usize, f: &Failure) {
        let why = f.to_string();
        if let Some(e) = run.st.enrollments.get_mut(i) {
            e.failure = Some(why.clone());
        }
        self.end(run, i, Status::Failed, &format!("failed: {why}"));
        if let Some(e) = run.st.enrollments.get(i) {
            run.out.failures.push(FailedEnrollment::of(&e.flow, f));
        }
    }

    fn event(&self, run: &mut Run<'_>, mut ev: EventValue) {
        let count = run.st.event_counts.entry(ev.name.clone()).or_insert(0);
        *count += 1;
        ev.nth = *count;
        let enrolled: BTreeSet<String> = run
            .st
            .enrollments
            .iter()
            .filter(|e| e.is_active())
            .map(|e| e.flow.clone())
            .collect();
        // round 1: flows the contact is in
        for name in self.flow_order(run.st) {
            if !enrolled.contains(&name) || run.moved.contains(&name) || self.paused.contains(&name)
            {
                continue;
            }
            let Some(i) = run.st.active_index(&name) else {
                continue;
            };
            let Some(p) = self.program(&run.st.enrollments[i]) else {
                continue;
            };
            let restart = match p.reenter {
                Reenter::Restart => self.trigger_matches(run, p, &ev),
                _ => Ok(false),
            };
            match restart {
                Ok(true) => {
                    self.end(run, i, Status::Exited, "restarted by its trigger");
                    self.enroll(run, &p.name, Some(ev.clone()), None);
                }
                Ok(false) => self.step(run, i, &Input::Event(ev.clone())),
                Err(e) => self.trigger_failed(run, &p.name, Some(ev.clone()), e),
            }
        }
        // round 2: every other flow whose trigger matches
        for p in &self.bundle.flows {
            if enrolled.contains(&p.name)
                || run.moved.contains(&p.name)
                || run.st.active(&p.name).is_some()
            {
                continue;
            }
            if p.reenter == Reenter::Never && run.st.latest(&p.name).is_some() {
                continue;
            }
            match self.trigger_matches(run, p, &ev) {
                Ok(true) => self.enroll(run, &p.name, Some(ev.clone()), None),
                Ok(false) => {}
                Err(e) => self.trigger_failed(run, &p.name, Some(ev.clone()), e),
            }
        }
    }

    /// Enroll the contact in a flow and run it to its first wait.
    fn enroll(&self, run: &mut Run<'_>, flow: &str, event: Option<EventValue>, step: Option<&str>) {
        if let Some(i) = self.push_enrollment(run, flow, event, step) {
            self.step(run, i, &Input::Start);
        }
    }

    /// A new enrollment at its first step (or `step`), journaled, not yet
    /// run; `None` for an unknown or paused flow.
    fn push_enrollment(
        &self,
        run: &mut Run<'_>,
        flow: &str,
        event: Option<EventValue>,
        step: Option<&str>,
    ) -> Option<usize> {
        let p = self.bundle.flow(flow)?;
        if self.paused.contains(flow) {
            return None;
        }
        let start = match step {
            Some(s) => p.step(s),
            None => p.steps.first(),
        };
        let (pc, step_name) = match start {
            Some(s) => (s.pc, s.name.clone()),
            None => (p.code.len().saturating_sub(1) as u32, String::new()),
        };
        let holdout = p
            .holdout
            .is_some_and(|h| hash_share(&[&run.st.contact.id, flow, "holdout"]) < h);
        run.moved.insert(flow.to_string());
        run.st.enrollments.push(Enrollment {
            flow: flow.to_string(),
            version: self.version.clone(),
            pc,
            status: Status::Active,
            step: step_name,
            entered_at: run.now,
            event,
            locals: BTreeMap::new(),
            wait: None,
            holdout,
            failure: None,
        });
        let i = run.st.enrollments.len() - 1;
        self.journal(
            run,
            flow,
            "",
            if holdout {
                "entered the flow (holdout)"
            } else {
                "entered the flow"
            },
        );
        Some(i)
    }

    fn journal(&self, run: &mut Run<'_>, flow: &str, step: &str, what: &str) {
        run.out.journal.push(JournalLine {
            at: run.now,
            flow: flow.to_string(),
            step: step.to_string(),
            what: what.to_string(),
        });
    }

    fn end(&self, run: &mut Run<'_>, i: usize, status: Status, why: &str) {
        let Some(e) = run.st.enrollments.get_mut(i) else {
            return;
        };
        e.status = status;
        e.wait = None;
        let (flow, step) = (e.flow.clone(), e.step.clone());
        self.journal(run, &flow, &step, why);
    }

    /// Advance enrollment `i` with an input and apply the outcome.
    /// [`EngineInput::Migrate`].
    fn migrate(&self, run: &mut Run<'_>, flow: &str) {
        let Some(i) = run.st.active_index(flow) else {
            return;
        };
        let step = run.st.enrollments[i].step.clone();
        let has_step = self
            .bundle
            .flow(flow)
            .is_some_and(|p| p.step(&step).is_some());
        if !has_step || run.st.enrollments[i].version == self.version {
            return;
        }
        run.st.enrollments[i].version = self.version.clone();
        self.step(run, i, &Input::Move { step });
    }

    fn step(&self, run: &mut Run<'_>, i: usize, input: &Input) {
        let Some(enr) = run.st.enrollments.get(i).cloned() else {
            return;
        };
        let bundle = self.bundle_of(&enr.version);
        let Some(p) = bundle.flow(&enr.flow) else {
            return;
        };
        let world = World {
            env: run.env,
            sent: &run.st.sent,
            version: &self.version,
            calls: self.calls,
        };
        let outcome = advance(bundle, p, &enr, &run.st.contact, input, run.now, &world);
        if let Some(f) = &outcome.failure {
            run.out.failures.push(FailedEnrollment::of(&enr.flow, f));
        }
        let changed = !outcome.changes.is_empty();
        run.st.contact = outcome.contact;
        run.st.enrollments[i] = outcome.enrollment;
        for eff in outcome.effects {
            match eff {
                Effect::Send(m) => {
                    run.st.sent.entry(m.channel.clone()).or_default().push(m.at);
                    run.out.messages.push(m);
                }
                Effect::Call(r) => run.out.calls.push(r),
                Effect::Emit(mut ev) => {
                    ev.at = run.now;
                    run.queue.push_back(EngineInput::Event(ev));
                }
                Effect::Start { flow, event } => {
                    if run.st.active(&flow).is_none() {
                        self.enroll(run, &flow, event, None);
                    }
                }
                Effect::Goto { flow, step, event } => match run.st.active_index(&flow) {
                    Some(j) => {
                        run.moved.insert(flow.clone());
                        if let Some(s) = step {
                            self.step(run, j, &Input::Move { step: s });
                        }
                    }
                    None => self.enroll(run, &flow, event, step.as_deref()),
                },
                Effect::Stop { flow } => {
                    if let Some(j) = run.st.active_index(&flow) {
                        self.end(
                            run,
                            j,
                            Status::Exited,
                            &format!("stopped by flow `{}`", p.name),
                        );
                    }
                }
                Effect::Journal { step, what } => self.journal(run, &p.name, &step, &what),
            }
        }
        if changed {
            self.recheck(run);
        }
    }

    /// Re-check every data-match wait, flows in bundle order, until quiet.
    fn recheck(&self, run: &mut Run<'_>) {
        for _ in 0..16 {
            let mut any = false;
            for name in self.flow_order(run.st) {
                if self.paused.contains(&name) {
                    continue;
                }
                let Some(i) = run.st.active_index(&name) else {
                    continue;
                };
                let e = &run.st.enrollments[i];
                let Some(p) = self.program(e) else {
                    continue;
                };
                let has_data = e.wait.as_ref().is_some_and(|w| {
                    matches!(p.code.get(w.pc as usize), Some(Instr::Wait(d)) if !d.data.is_empty())
                });
                if !has_data {
                    continue;
                }
                let before = run.st.enrollments[i].clone();
                self.step(run, i, &Input::DataChange);
                if run.st.enrollments.get(i) != Some(&before) {
                    any = true;
                }
            }
            if !any {
                break;
            }
        }
    }

    fn timers(&self, run: &mut Run<'_>) {
        let now = run.now;
        for name in self.flow_order(run.st) {
            if self.paused.contains(&name) {
                continue;
            }
            if let Some(i) = run.st.active_index(&name) {
                let due = run.st.enrollments[i]
                    .wait
                    .as_ref()
                    .and_then(|w| w.wake_at())
                    .is_some_and(|t| t <= now);
                if due {
                    self.step(run, i, &Input::Timer);
                }
            }
        }
        // time triggers (due ones fire whatever their `late`) and schedules
        for k in self.due_triggers(run) {
            self.fire_time_trigger(run, &k);
        }
        let due: Vec<String> = run
            .st
            .schedules
            .iter()
            .filter(|(k, at)| **at <= now && !self.paused_key(k))
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            run.st.schedules.remove(&k);
            self.fire_trigger(run, &k);
        }
    }

    /// The bundle an enrollment of `version` runs on.
    fn bundle_of(&self, version: &str) -> &'b Bundle {
        if version == self.version {
            return self.bundle;
        }
        self.versions.get(version).copied().unwrap_or(self.bundle)
    }

    /// The program an enrollment runs: its flow in the version it entered with.
    fn program(&self, e: &Enrollment) -> Option<&'b Program> {
        self.bundle_of(&e.version).flow(&e.flow)
    }

    /// Flows in bundle order, then flows only older versions still run.
    fn flow_order(&self, st: &ContactState) -> Vec<String> {
        let mut names: Vec<String> = self.bundle.flows.iter().map(|p| p.name.clone()).collect();
        for e in st.enrollments.iter().filter(|e| e.is_active()) {
            if !names.contains(&e.flow) {
                names.push(e.flow.clone());
            }
        }
        names
    }

    /// Whether a `flow#index` trigger key belongs to a paused flow.
    fn paused_key(&self, key: &str) -> bool {
        key.rsplit_once('#')
            .is_some_and(|(flow, _)| self.paused.contains(flow))
    }

    /// The earliest instant something is due for a contact, paused flows
    /// left out (their timers wait for the resume).
    pub fn next_wake(&self, st: &ContactState) -> Option<i64> {
        if self.paused.is_empty() {
            return st.next_wake();
        }
        let waits = st
            .enrollments
            .iter()
            .filter(|e| e.is_active() && !self.paused.contains(&e.flow))
            .filter_map(|e| e.wait.as_ref().and_then(|w| w.wake_at()));
        let triggers = st
            .time_triggers
            .iter()
            .filter(|(k, t)| !t.fired && !self.paused_key(k))
            .map(|(_, t)| t.at);
        let schedules = st
            .schedules
            .iter()
            .filter(|(k, _)| !self.paused_key(k))
            .map(|(_, at)| *at);
        waits.chain(triggers).chain(schedules).min()
    }

    /// A time trigger or schedule `flow#index` fired: enroll if it may.
    fn fire_trigger(&self, run: &mut Run<'_>, key: &str) {
        let Some((flow, idx)) = key.rsplit_once('#') else {
            return;
        };
        let Some(p) = self.bundle.flow(flow) else {
            return;
        };
        let Some(t) = idx.parse::<usize>().ok().and_then(|i| p.triggers.get(i)) else {
            return;
        };
        let cond = match t {
            Trigger::Time { cond, .. } | Trigger::Schedule { cond, .. } => cond,
            _ => return,
        };
        let allowed = run.st.active(flow).is_none()
            && !(p.reenter == Reenter::Never && run.st.latest(flow).is_some());
        if !allowed {
            return;
        }
        let ok = match cond {
            None => Ok(true),
            Some(c) => {
                let mut s = Scope::new(run.now);
                s.contact = Some(&run.st.contact);
                s.env = Some(run.env);
                eval(c, &s).map(|v| v.truthy())
            }
        };
        match ok {
            Ok(true) => {
                run.moved.clear();
                self.enroll(run, flow, None, None);
            }
            Ok(false) => {}
            Err(e) => {
                run.moved.clear();
                self.trigger_failed(run, flow, None, e);
            }
        }
    }

    /// Time triggers not fired yet whose instant has come (paused flows
    /// left out: their triggers wait for the resume).
    fn due_triggers(&self, run: &Run<'_>) -> Vec<String> {
        run.st
            .time_triggers
            .iter()
            .filter(|(k, t)| !t.fired && t.at <= run.now && !self.paused_key(k))
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn fire_time_trigger(&self, run: &mut Run<'_>, key: &str) {
        if let Some(t) = run.st.time_triggers.get_mut(key) {
            t.fired = true;
        }
        self.fire_trigger(run, key);
    }

    /// Recompute time triggers from contact data and the next schedule
    /// instants; journal a time trigger planned too far in the past.
    fn schedule(&self, run: &mut Run<'_>) {
        for p in &self.bundle.flows {
            for (i, t) in p.triggers.iter().enumerate() {
                let key = format!("{}#{i}", p.name);
                match t {
                    Trigger::Time { at, late, .. } => self.plan_time(run, p, key, at, *late),
                    Trigger::Schedule {
                        schedule, local, ..
                    } => plan_schedule(run.st, run.now, key, schedule, *local),
                    _ => {}
                }
            }
        }
    }

    /// Plan one time trigger (LANGUAGE.md A3). An instant that moved is
    /// planned again: due now or within `late` in the past, it is left due
    /// (the caller fires it); older, it is marked fired and journaled as
    /// missed. An instant the clock cannot represent is never planned.
    fn plan_time(&self, run: &mut Run<'_>, p: &Program, key: String, at: &Code, late: i64) {
        let mut s = Scope::new(run.now);
        s.contact = Some(&run.st.contact);
        s.env = Some(run.env);
        let at = match eval(at, &s) {
            Ok(Value::Time(at)) => at,
            Ok(_) => {
                run.st.time_triggers.remove(&key);
                return;
            }
            Err(e) => {
                // journaled once, until the instant can be computed again
                if run
                    .st
                    .time_triggers
                    .get(&key)
                    .is_none_or(|t| t.at != i64::MIN)
                {
                    self.journal(
                        run,
                        &p.name,
                        "",
                        &format!("{} trigger not planned: {e}", p.name),
                    );
                }
                run.st.time_triggers.insert(
                    key,
                    TimeTrigger {
                        at: i64::MIN,
                        fired: true,
                    },
                );
                return;
            }
        };
        if run.st.time_triggers.get(&key).is_some_and(|t| t.at == at) {
            return;
        }
        let age = run.now.saturating_sub(at);
        let what = if !clock::in_range(at) {
            Some(format!(
                "{} trigger not planned: its instant is outside {}",
                p.name,
                clock::RANGE_TEXT
            ))
        } else if age > late.max(0) {
            run.out.missed.push(MissedTrigger {
                flow: p.name.clone(),
                at,
                age,
            });
            Some(format!(
                "missed {} trigger: {} is {} in the past",
                p.name,
                clock::format_instant(at),
                clock::format_age(age)
            ))
        } else {
            None
        };
        let fired = what.is_some();
        if let Some(what) = what {
            self.journal(run, &p.name, "", &what);
        }
        run.st.time_triggers.insert(key, TimeTrigger { at, fired });
    }

    /// Prepare a new contact's schedules (call once after creating it).
    /// Its time triggers are planned by the input that follows, its
    /// `contact_created`, so that one already due fires and one missed is
    /// journaled (LANGUAGE.md A3).
    pub fn arm(&self, st: &mut ContactState, now: i64, _env: &BTreeMap<String, String>) {
        for p in &self.bundle.flows {
            for (i, t) in p.triggers.iter().enumerate() {
                if let Trigger::Schedule {
                    schedule, local, ..
                } = t
                {
                    plan_schedule(st, now, format!("{}#{i}", p.name), schedule, *local);
                }
            }
        }
    }
}

/// The next instant of a schedule, if it has none planned.
fn plan_schedule(st: &mut ContactState, now: i64, key: String, schedule: &Schedule, local: bool) {
    if st.schedules.contains_key(&key) {
        return;
    }
    let tz = if local {
        st.contact.timezone().to_string()
    } else {
        "UTC".into()
    };
    let next = match schedule {
        Schedule::Daily { hour, minute } => {
            clock::next_local_time(now, &tz, *hour, *minute, 0, None)
        }
        Schedule::Weekly { day, hour, minute } => {
            clock::next_local_time(now, &tz, *hour, *minute, 0, Some(*day))
        }
        Schedule::Cron(c) => clock::next_cron(now, c, &tz),
    };
    if let Ok(at) = next {
        st.schedules.insert(key, at);
    }
}
