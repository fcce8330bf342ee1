//! `advance`: one input applied to one enrollment.
//!
//! Order for an event (LANGUAGE.md §5.5): `exit when`, then `goal`, then the
//! flow's handlers (first match), then the branches of the wait it is in. A
//! handler that does not move returns the contact to its wait, whose timers
//! keep running. A run of instructions longer than [`STEP_BUDGET`] without
//! reaching a wait fails the enrollment.
//!
//! A runtime error (amendment A4: an [`EvalError`] of an expression, a
//! template or a request, or the budget) fails the enrollment: the journey
//! records the error and the source line of the instruction, the failing
//! statement changes no field and emits nothing (every value is computed
//! before anything is applied), and [`Outcome::failure`] carries it typed.
//! What earlier statements of the same run did stays.

use super::eval::{Eval, EvalError, Scope, coerce, eval, hash_share};
use super::render::{RenderKind, render};
use super::request::{build, roots};
use super::state::*;
use crate::clock;
use nudge_compiler::bundle::*;
use nudge_compiler::value::Value;
use std::collections::BTreeMap;
use std::fmt;

/// Instructions one input may run before the enrollment is failed.
pub const STEP_BUDGET: u32 = 10_000;

/// Why `advance` failed an enrollment.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error("ran {STEP_BUDGET} instructions without reaching a wait (a loop through `goto`?)")]
    Budget,
    #[error("no instruction at {0}")]
    NoInstruction(u32),
}

impl RunError {
    /// A short class for metrics (see [`EvalError::reason`]), `budget`, or
    /// `program`.
    pub fn reason(&self) -> &'static str {
        match self {
            RunError::Eval(e) => e.reason(),
            RunError::Budget => "budget",
            RunError::NoInstruction(_) => "program",
        }
    }
}

/// Where a failure happened: an instruction's source line, or a condition
/// of the flow that has no instruction (`exit when`, `goal`, a handler's
/// `where`, a trigger).
#[derive(Debug, Clone, PartialEq)]
pub enum FailedAt {
    Line(u32),
    Condition(&'static str),
}

/// A failed enrollment: the error and where it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub error: RunError,
    pub at: FailedAt,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            FailedAt::Line(l) => write!(f, "{} (line {l})", self.error),
            FailedAt::Condition(c) => write!(f, "{} (in {c})", self.error),
        }
    }
}

/// What one instruction asks of the loop.
enum Next {
    /// The next instruction.
    On,
    Jump(u32),
    /// Waiting, ended or back to the wait.
    Stop,
}

/// Apply one input to one enrollment. Pure.
pub fn advance(
    bundle: &Bundle,
    program: &Program,
    enrollment: &Enrollment,
    contact: &Contact,
    input: &Input,
    now: i64,
    world: &World<'_>,
) -> Outcome {
    let mut m = Machine {
        bundle,
        program,
        world,
        now,
        enr: enrollment.clone(),
        contact: contact.clone(),
        changes: Vec::new(),
        effects: Vec::new(),
        budget: 0,
        handler_wait: None,
        sent_now: BTreeMap::new(),
        failure: None,
    };
    if m.enr.status == Status::Active {
        m.input(input);
    }
    Outcome {
        enrollment: m.enr,
        contact: m.contact,
        changes: m.changes,
        effects: m.effects,
        failure: m.failure,
    }
}

struct Machine<'m> {
    bundle: &'m Bundle,
    program: &'m Program,
    world: &'m World<'m>,
    now: i64,
    enr: Enrollment,
    contact: Contact,
    changes: Vec<Change>,
    effects: Vec<Effect>,
    budget: u32,
    /// The wait to return to when a handler body ends.
    handler_wait: Option<PendingWait>,
    sent_now: BTreeMap<String, Vec<i64>>,
    failure: Option<Failure>,
}

impl<'m> Machine<'m> {
    fn scope(&self) -> Scope<'_> {
        Scope {
            contact: Some(&self.contact),
            event: self.enr.event.as_ref(),
            flow: Some((&self.program.name, &self.enr.step, self.enr.entered_at)),
            locals: Some(&self.enr.locals),
            named: None,
            env: Some(self.world.env),
            now: self.now,
        }
    }

    fn journal(&mut self, what: impl Into<String>) {
        self.effects.push(Effect::Journal {
            step: self.enr.step.clone(),
            what: what.into(),
        });
    }

    fn eval(&self, c: &Code) -> Eval {
        eval(c, &self.scope())
    }

    fn matches(&self, m: &EventMatch, ev: &EventValue) -> Eval<bool> {
        if m.event != ev.name || m.nth.is_some_and(|n| i64::from(n) != ev.nth) {
            return Ok(false);
        }
        match &m.cond {
            None => Ok(true),
            Some(c) => {
                let mut s = self.scope();
                s.event = Some(ev);
                Ok(eval(c, &s)?.truthy())
            }
        }
    }

    /// The first of `ms` that matches `ev`; an error names `what` was read.
    fn first_match<'a, T>(
        &self,
        ms: &'a [T],
        m: impl Fn(&T) -> &EventMatch,
        ev: &EventValue,
        what: &'static str,
    ) -> Result<Option<&'a T>, Failure> {
        for x in ms {
            match self.matches(m(x), ev) {
                Ok(true) => return Ok(Some(x)),
                Ok(false) => {}
                Err(e) => {
                    return Err(Failure {
                        error: e.into(),
                        at: FailedAt::Condition(what),
                    });
                }
            }
        }
        Ok(None)
    }

    /// The source line of an instruction.
    fn at(&self, pc: u32) -> FailedAt {
        FailedAt::Line(self.program.lines.get(pc as usize).copied().unwrap_or(0))
    }

    fn input(&mut self, input: &Input) {
        match input {
            Input::Start => self.run(self.enr.pc),
            Input::Move { step } => {
                if let Some(s) = self.program.step(step) {
                    let pc = s.pc;
                    self.enr.wait = None;
                    self.journal(format!("moved to step `{step}`"));
                    self.run(pc);
                }
            }
            Input::Timer => {
                let due = self.enr.wait.as_ref().and_then(|w| {
                    w.timers
                        .iter()
                        .filter(|(t, _)| *t <= self.now)
                        .min_by_key(|(t, _)| *t)
                        .map(|(_, pc)| *pc)
                });
                if let Some(pc) = due {
                    if let Some(name) = self.enr.wait.take().and_then(|w| w.call) {
                        // the response's deadline passed (LANGUAGE.md §10)
                        self.enr
                            .locals
                            .insert(name.clone(), call_result(0, Value::Null));
                        self.journal(format!("call `{name}` got no answer in time: status 0"));
                    }
                    self.run(pc);
                }
            }
            Input::DataChange => match self.data_match() {
                Ok(Some(pc)) => {
                    self.enr.wait = None;
                    self.run(pc);
                }
                Ok(None) => {}
                Err(f) => self.fail(f),
            },
            Input::CallResponse { name, status, json } => {
                let Some(w) = self.enr.wait.clone() else {
                    return;
                };
                if w.call.as_deref() != Some(name.as_str()) {
                    return;
                }
                self.enr
                    .locals
                    .insert(name.clone(), call_result(*status, json.clone()));
                self.journal(format!("call `{name}` answered with status {status}"));
                self.enr.wait = None;
                self.run(w.pc + 1);
            }
            Input::Event(ev) => {
                if let Err(f) = self.event(ev) {
                    self.fail(f);
                }
            }
        }
    }

    /// The first data condition of the pending wait that now holds.
    fn data_match(&self) -> Result<Option<u32>, Failure> {
        let Some(w) = self.enr.wait.as_ref() else {
            return Ok(None);
        };
        let Some(Instr::Wait(def)) = self.program.code.get(w.pc as usize) else {
            return Ok(None);
        };
        for (c, pc) in &def.data {
            match self.eval(c) {
                Ok(v) if v.truthy() => return Ok(Some(*pc)),
                Ok(_) => {}
                Err(e) => {
                    return Err(Failure {
                        error: e.into(),
                        at: self.at(w.pc),
                    });
                }
            }
        }
        Ok(None)
    }

    fn event(&mut self, ev: &EventValue) -> Result<(), Failure> {
        let p = self.program;
        if self
            .first_match(&p.exit_when, |m| m, ev, "`exit when`")?
            .is_some()
        {
            self.enr.event = Some(ev.clone());
            self.finish(Status::Exited, format!("exited on `{}`", ev.name));
            return Ok(());
        }
        if self.first_match(&p.goals, |m| m, ev, "`goal`")?.is_some() {
            self.enr.event = Some(ev.clone());
            self.finish(Status::Converted, format!("converted on `{}`", ev.name));
            return Ok(());
        }
        if let Some(h) = self.first_match(&p.handlers, |h| &h.on, ev, "a handler's `where`")? {
            self.handler_wait = self.enr.wait.take();
            self.enr.event = Some(ev.clone());
            self.journal(format!("handler on `{}`", ev.name));
            self.run(h.pc);
            return Ok(());
        }
        let Some(w) = &self.enr.wait else {
            return Ok(());
        };
        let wait_pc = w.pc;
        let Some(Instr::Wait(def)) = p.code.get(wait_pc as usize) else {
            return Ok(());
        };
        let found = self
            .first_match(&def.events, |(m, _)| m, ev, "a wait branch")
            .map_err(|f| Failure {
                at: self.at(wait_pc),
                ..f
            })?;
        if let Some((_, pc)) = found {
            let pc = *pc;
            self.enr.event = Some(ev.clone());
            self.enr.wait = None;
            self.run(pc);
        }
        Ok(())
    }

    fn finish(&mut self, status: Status, why: String) {
        self.enr.status = status;
        self.enr.wait = None;
        self.journal(why);
    }

    /// Fail the enrollment: the journey and `failure` say why and where.
    fn fail(&mut self, f: Failure) {
        let why = f.to_string();
        self.enr.failure = Some(why.clone());
        self.finish(Status::Failed, format!("failed: {why}"));
        self.failure = Some(f);
    }

    fn run(&mut self, mut pc: u32) {
        loop {
            self.budget += 1;
            let next = if self.budget > STEP_BUDGET {
                Err(RunError::Budget)
            } else {
                self.enr.pc = pc;
                self.exec(pc)
            };
            match next {
                Ok(Next::On) => pc += 1,
                Ok(Next::Jump(to)) => pc = to,
                Ok(Next::Stop) => return,
                Err(error) => {
                    let at = self.at(pc);
                    self.fail(Failure { error, at });
                    return;
                }
            }
        }
    }

    /// Execute the instruction at `pc`.
    fn exec(&mut self, pc: u32) -> Result<Next, RunError> {
        let Some(ins) = self.program.code.get(pc as usize) else {
            return Err(RunError::NoInstruction(pc));
        };
        match ins {
            Instr::Step(i) => {
                if let Some(s) = self.program.steps.get(*i as usize) {
                    self.enr.step = s.name.clone();
                    self.journal(format!("entered step `{}`", s.name));
                }
            }
            Instr::Send {
                channel,
                message,
                to,
                force,
            } => self.send(channel, message, to.as_ref(), *force)?,
            Instr::Call {
                target,
                with,
                result,
            } => {
                if self.call(target, with, result.as_deref(), pc)? {
                    return Ok(Next::Stop);
                }
            }
            Instr::Set { field, value } => {
                let v = self.eval(value)?;
                self.set_field(field, v);
            }
            Instr::Unset { field } => self.set_field(field, Value::Null),
            Instr::Add { field, value } => {
                let v = self.eval(value)?;
                self.add_remove(field, v, true);
            }
            Instr::Remove { field, value } => {
                let v = self.eval(value)?;
                self.add_remove(field, v, false);
            }
            Instr::Tag(v) => {
                let v = self.eval(v)?;
                self.add_remove("tags", v, true);
            }
            Instr::Untag(v) => {
                let v = self.eval(v)?;
                self.add_remove("tags", v, false);
            }
            Instr::Jump(to) => return Ok(Next::Jump(*to)),
            Instr::JumpUnless { cond, to } => {
                if !self.eval(cond)?.truthy() {
                    return Ok(Next::Jump(*to));
                }
            }
            Instr::Split { id, arms } => {
                let share = hash_share(&[&self.contact.id, &self.program.name, &id.to_string()]);
                let mut acc = 0.0;
                let chosen = arms
                    .iter()
                    .find(|a| {
                        acc += a.share;
                        share < acc
                    })
                    .or(arms.last());
                if let Some(a) = chosen {
                    return Ok(Next::Jump(a.pc));
                }
            }
            Instr::Wait(def) => {
                return Ok(match self.enter_wait(pc, def)? {
                    Some(next) => Next::Jump(next),
                    None => Next::Stop,
                });
            }
            Instr::GotoFlow { flow, step } => {
                self.effects.push(Effect::Goto {
                    flow: flow.clone(),
                    step: step.clone(),
                    event: self.enr.event.clone(),
                });
                self.finish(Status::Exited, format!("left for flow `{flow}`"));
                return Ok(Next::Stop);
            }
            Instr::Start(flow) => self.effects.push(Effect::Start {
                flow: flow.clone(),
                event: self.enr.event.clone(),
            }),
            Instr::Stop(flow) => self.effects.push(Effect::Stop { flow: flow.clone() }),
            Instr::Exit => {
                self.finish(Status::Exited, "exited".into());
                return Ok(Next::Stop);
            }
            Instr::Complete => {
                self.finish(Status::Completed, "completed the flow".into());
                return Ok(Next::Stop);
            }
            Instr::Emit { event, fields } => self.emit(event, fields)?,
            Instr::Log(text) => self.journal(text.clone()),
            Instr::Return => {
                self.enr.wait = self.handler_wait.take();
                if let Some(w) = &self.enr.wait {
                    self.enr.pc = w.pc;
                }
                return Ok(Next::Stop);
            }
        }
        Ok(Next::On)
    }

    /// `emit EVENT { … }`: every value is computed before the event is raised.
    fn emit(&mut self, event: &str, fields: &[(String, Code)]) -> Eval<()> {
        let def = self.bundle.event(event);
        let mut values = BTreeMap::new();
        for (name, code) in fields {
            let v = self.eval(code)?;
            let v = match def.and_then(|d| d.fields.iter().find(|f| &f.name == name)) {
                Some(f) => coerce(v, &f.ty).unwrap_or_default(),
                None => v,
            };
            if !v.is_null() {
                values.insert(name.clone(), v);
            }
        }
        self.effects.push(Effect::Emit(EventValue {
            name: event.to_string(),
            fields: values,
            at: self.now,
            nth: 0,
        }));
        Ok(())
    }

    /// Enter a wait: `Some(pc)` to continue at once (a data condition holds,
    /// or an instant is already past), `None` when the enrollment now waits.
    fn enter_wait(&mut self, pc: u32, def: &WaitDef) -> Eval<Option<u32>> {
        for (c, to) in &def.data {
            if self.eval(c)?.truthy() {
                return Ok(Some(*to));
            }
        }
        let mut timers = Vec::new();
        for (t, to) in &def.timers {
            let at = match t {
                TimerDef::After(d) => match self.eval(d)? {
                    Value::Duration(s) => Some(
                        self.now
                            .checked_add(s.max(0))
                            .ok_or(EvalError::Overflow("after"))?,
                    ),
                    _ => None,
                },
                TimerDef::At(c) => match self.eval(c)? {
                    Value::Time(t) => Some(t),
                    _ => None,
                },
                TimerDef::Clock {
                    day,
                    hour,
                    minute,
                    second,
                    local,
                } => {
                    let tz = if *local {
                        self.contact.timezone().to_string()
                    } else {
                        "UTC".into()
                    };
                    match clock::next_local_time(self.now, &tz, *hour, *minute, *second, *day) {
                        Ok(t) => Some(t),
                        Err(e) => {
                            self.journal(format!("timer not set: {e}"));
                            None
                        }
                    }
                }
            };
            if let Some(at) = at {
                if !clock::in_range(at) {
                    // never a wait with no timer: the enrollment fails
                    return Err(EvalError::TimerOutOfRange);
                }
                if at <= self.now {
                    return Ok(Some(*to));
                }
                timers.push((at, *to));
            }
        }
        self.enr.wait = Some(PendingWait {
            pc,
            timers,
            call: None,
        });
        Ok(None)
    }

    fn set_field(&mut self, field: &str, v: Value) {
        let Some(def) = self.bundle.field(field) else {
            return;
        };
        match coerce(v, &def.ty) {
            Some(Value::Null) => {
                self.contact.fields.remove(field);
                self.changes.push(Change::Unset(field.to_string()));
            }
            Some(v) => {
                self.contact.fields.insert(field.to_string(), v.clone());
                self.changes.push(Change::Set(field.to_string(), v));
            }
            None => self.journal(format!(
                "`{field}` not set: the value does not convert to its type"
            )),
        }
    }

    fn add_remove(&mut self, field: &str, v: Value, add: bool) {
        let Some(def) = self.bundle.field(field) else {
            return;
        };
        let elem_ty = match &def.ty {
            FieldType::Set(e) | FieldType::List(e) => e.as_ref().clone(),
            _ => return,
        };
        let Some(v) = coerce(v, &elem_ty).filter(|v| !v.is_null()) else {
            return;
        };
        let mut items = match self.contact.get(field) {
            Value::Set(i) | Value::List(i) => i,
            _ => Vec::new(),
        };
        if add {
            items.push(v);
        } else {
            items.retain(|i| !i.equals(&v));
        }
        let value = match def.ty {
            FieldType::Set(_) => Value::set_of(items),
            _ => Value::List(items),
        };
        self.set_field(field, value);
    }

    /// A template of a message; one that cannot be rendered is an error.
    fn render(&self, t: &Option<Tpl>, kind: RenderKind) -> Eval<Option<String>> {
        let Some(t) = t else { return Ok(None) };
        if !t.0.contains("{{") && !t.0.contains("{%") && !t.0.contains("{#") {
            // a plain text: no roots to build
            return Ok(Some(t.0.clone()));
        }
        let r = roots(&self.scope(), self.bundle, &t.0)?;
        Ok(Some(render(&t.0, &r, kind)?))
    }

    /// Why a send to `channel` is over its cap now, if it is.
    fn cap_reached(&self, channel: &str, cap: Option<Rate>, force: bool) -> Option<String> {
        let cap = cap.filter(|_| !force)?;
        let from = self.now - cap.per_seconds;
        let count = self
            .world
            .sent
            .get(channel)
            .into_iter()
            .chain(self.sent_now.get(channel))
            .flatten()
            .filter(|t| **t > from && **t <= self.now)
            .count();
        (count >= cap.count as usize).then(|| {
            format!(
                "the cap of {} per {}s is reached",
                cap.count, cap.per_seconds
            )
        })
    }

    /// `send`: skipped (and journaled) for holdout, no recipient or a cap;
    /// a template or request that fails is an error, and nothing is sent.
    fn send(
        &mut self,
        channel: &str,
        message: &MessageDef,
        to: Option<&Code>,
        force: bool,
    ) -> Eval<()> {
        let Some(ch) = self.bundle.channel(channel) else {
            return Ok(());
        };
        // a held-out contact's sends are skipped as holdout (§10), whatever else
        if self.enr.holdout {
            self.journal(format!("send to `{channel}` skipped: holdout"));
            return Ok(());
        }
        let smtp = matches!(ch.kind, ChannelKind::Smtp { .. });
        let recipient = match to {
            Some(c) => self.eval(c)?,
            None if smtp => self.contact.get("email"),
            None => Value::Null,
        };
        let recipient = match recipient {
            Value::Text(t) => Some(t),
            _ => None,
        };
        if smtp && recipient.is_none() {
            self.journal(format!(
                "send to `{channel}` skipped: the recipient is not set"
            ));
            return Ok(());
        }
        if let Some(why) = self.cap_reached(channel, ch.cap, force) {
            self.journal(format!("send to `{channel}` skipped: {why}"));
            return Ok(());
        }
        // skips for a reason (holdout, recipient, cap) come first; a
        // template that cannot be rendered fails the enrollment
        let subject = self.render(&message.subject, RenderKind::Text)?;
        let text = self.render(&message.text, RenderKind::Text)?;
        let html = self.render(&message.html, RenderKind::Html)?;
        let window = self
            .program
            .steps
            .iter()
            .find(|s| s.name == self.enr.step)
            .and_then(|s| s.window)
            .or(self.program.window);
        let at = match window {
            Some(w) => {
                let tz = if w.local {
                    self.contact.timezone().to_string()
                } else {
                    "UTC".into()
                };
                match clock::window_release(self.now, &tz, w.from, w.to) {
                    Ok(Some(t)) => {
                        self.journal(format!("send to `{channel}` held until the window opens"));
                        t
                    }
                    _ => self.now,
                }
            }
            None => self.now,
        };
        let request = if smtp {
            None
        } else {
            let scope = self.scope();
            let target = CallTarget::Channel(channel.to_string());
            let b = build(self.bundle, &target, &scope, text.as_deref(), None)?;
            Some(HttpRequest {
                method: b.method,
                url: b.url,
                headers: b.headers,
                body: b.body,
                secrets: b.secrets,
            })
        };
        self.sent_now
            .entry(channel.to_string())
            .or_default()
            .push(at);
        self.journal(format!("sent to `{channel}`"));
        self.effects.push(Effect::Send(Message {
            flow: self.program.name.clone(),
            step: self.enr.step.clone(),
            channel: channel.to_string(),
            template: message.template.clone(),
            to: recipient,
            subject,
            text,
            html,
            at,
            force,
            request,
        }));
        Ok(())
    }

    /// Returns true when the enrollment now waits for the response. A
    /// request that cannot be built is an error, and nothing is called.
    fn call(
        &mut self,
        target: &CallTarget,
        with: &[(String, Code)],
        result: Option<&str>,
        pc: u32,
    ) -> Eval<bool> {
        if self.enr.holdout {
            self.journal("call skipped: holdout");
            if let Some(name) = result {
                self.enr
                    .locals
                    .insert(name.to_string(), call_result(0, Value::Null));
            }
            return Ok(false);
        }
        let data = Value::Map(
            with.iter()
                .map(|(k, c)| Ok((k.clone(), self.eval(c)?)))
                .collect::<Eval<_>>()?,
        );
        let data_ref = data.clone();
        let named = move |r: &Root| match r {
            Root::Data => data_ref.clone(),
            _ => Value::Null,
        };
        let mut scope = self.scope();
        scope.named = Some(&named);
        let b = build(self.bundle, target, &scope, None, Some(&data))?;
        self.journal(b.journal.clone());
        self.effects.push(Effect::Call(Request {
            flow: self.program.name.clone(),
            step: self.enr.step.clone(),
            channel: match target {
                CallTarget::Channel(c) => Some(c.clone()),
                CallTarget::Url(_) => None,
            },
            method: b.method,
            url: b.url,
            headers: b.headers,
            json: b.json,
            body: b.body,
            result: result.map(str::to_string),
            secrets: b.secrets,
        }));
        Ok(match result {
            Some(name) => {
                let deadline = self.now.saturating_add(self.call_wait(target));
                self.enr.wait = Some(PendingWait {
                    pc,
                    timers: vec![(deadline, pc + 1)],
                    call: Some(name.to_string()),
                });
                true
            }
            None => false,
        })
    }
}

impl Machine<'_> {
    /// Seconds a `call … as NAME` on `target` waits for its response: the
    /// channel's timeout (or the default) plus the grace.
    fn call_wait(&self, target: &CallTarget) -> i64 {
        let limits = self.world.calls;
        let timeout = match target {
            CallTarget::Channel(c) => self
                .bundle
                .channel(c)
                .and_then(|d| d.timeout_seconds)
                .filter(|s| *s > 0),
            CallTarget::Url(_) => None,
        };
        timeout
            .unwrap_or(limits.default_timeout)
            .saturating_add(limits.grace)
    }
}

/// How long a `call … as NAME` waits for its response before it resumes
/// with status 0 (LANGUAGE.md §10): the channel's `timeout` (or
/// `default_timeout` for a bare URL or a channel without one) plus `grace`,
/// the daemon's outbox lease, after which a crashed worker's claim has
/// gone out again. In `nudge test` the response comes at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    pub default_timeout: i64,
    pub grace: i64,
}

impl Default for CallLimits {
    /// The daemon's defaults: a 10 s timeout, a 300 s lease.
    fn default() -> CallLimits {
        CallLimits {
            default_timeout: 10,
            grace: 300,
        }
    }
}

/// `NAME.status` and `NAME.json` of a call result.
pub fn call_result(status: i64, json: Value) -> Value {
    Value::Map(BTreeMap::from([
        ("status".to_string(), Value::Int(status)),
        ("json".to_string(), json),
    ]))
}
