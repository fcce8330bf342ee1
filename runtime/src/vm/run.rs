//! `advance`: one input applied to one enrollment.
//!
//! Order for an event (LANGUAGE.md §5.5): `exit when`, then `goal`, then the
//! flow's handlers (first match), then the branches of the wait it is in. A
//! handler that does not move returns the contact to its wait, whose timers
//! keep running. A run of instructions longer than [`STEP_BUDGET`] without
//! reaching a wait fails the enrollment.

use super::eval::{Scope, coerce, eval, hash_share, try_eval};
use super::render::{RenderError, RenderKind, render};
use super::request::{build, roots};
use super::state::*;
use crate::clock;
use nudge_compiler::bundle::*;
use nudge_compiler::value::Value;
use std::collections::BTreeMap;

/// Instructions one input may run before the enrollment is failed.
pub const STEP_BUDGET: u32 = 10_000;

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
    };
    if m.enr.status == Status::Active {
        m.input(input);
    }
    Outcome {
        enrollment: m.enr,
        contact: m.contact,
        changes: m.changes,
        effects: m.effects,
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

    fn eval(&self, c: &Code) -> Value {
        eval(c, &self.scope())
    }

    fn matches(&self, m: &EventMatch, ev: &EventValue) -> bool {
        if m.event != ev.name || m.nth.is_some_and(|n| i64::from(n) != ev.nth) {
            return false;
        }
        match &m.cond {
            None => true,
            Some(c) => {
                let mut s = self.scope();
                s.event = Some(ev);
                eval(c, &s).truthy()
            }
        }
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
                    self.enr.wait = None;
                    self.run(pc);
                }
            }
            Input::DataChange => {
                if let Some(pc) = self.data_match() {
                    self.enr.wait = None;
                    self.run(pc);
                }
            }
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
            Input::Event(ev) => self.event(ev),
        }
    }

    /// The first data condition of the pending wait that now holds.
    fn data_match(&self) -> Option<u32> {
        let w = self.enr.wait.as_ref()?;
        let Some(Instr::Wait(def)) = self.program.code.get(w.pc as usize) else {
            return None;
        };
        def.data
            .iter()
            .find(|(c, _)| self.eval(c).truthy())
            .map(|(_, pc)| *pc)
    }

    fn event(&mut self, ev: &EventValue) {
        let p = self.program;
        if p.exit_when.iter().any(|m| self.matches(m, ev)) {
            self.enr.event = Some(ev.clone());
            self.finish(Status::Exited, format!("exited on `{}`", ev.name));
            return;
        }
        if p.goals.iter().any(|m| self.matches(m, ev)) {
            self.enr.event = Some(ev.clone());
            self.finish(Status::Converted, format!("converted on `{}`", ev.name));
            return;
        }
        if let Some(h) = p.handlers.iter().find(|h| self.matches(&h.on, ev)) {
            self.handler_wait = self.enr.wait.take();
            self.enr.event = Some(ev.clone());
            self.journal(format!("handler on `{}`", ev.name));
            self.run(h.pc);
            return;
        }
        let Some(w) = &self.enr.wait else { return };
        let Some(Instr::Wait(def)) = p.code.get(w.pc as usize) else {
            return;
        };
        if let Some((_, pc)) = def.events.iter().find(|(m, _)| self.matches(m, ev)) {
            let pc = *pc;
            self.enr.event = Some(ev.clone());
            self.enr.wait = None;
            self.run(pc);
        }
    }

    fn finish(&mut self, status: Status, why: String) {
        self.enr.status = status;
        self.enr.wait = None;
        self.journal(why);
    }

    fn fail(&mut self, why: String) {
        self.enr.failure = Some(why.clone());
        self.finish(Status::Failed, format!("failed: {why}"));
    }

    fn run(&mut self, mut pc: u32) {
        loop {
            self.budget += 1;
            if self.budget > STEP_BUDGET {
                self.fail(format!(
                    "ran {STEP_BUDGET} instructions without reaching a wait (a loop through `goto`?)"
                ));
                return;
            }
            self.enr.pc = pc;
            let Some(ins) = self.program.code.get(pc as usize) else {
                self.fail(format!("no instruction at {pc}"));
                return;
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
                } => self.send(channel, message, to.as_ref(), *force),
                Instr::Call {
                    target,
                    with,
                    result,
                } => {
                    if self.call(target, with, result.as_deref(), pc) {
                        return;
                    }
                }
                Instr::Set { field, value } => {
                    let v = self.eval(value);
                    self.set_field(field, v);
                }
                Instr::Unset { field } => self.set_field(field, Value::Null),
                Instr::Add { field, value } => {
                    let v = self.eval(value);
                    self.add_remove(field, v, true);
                }
                Instr::Remove { field, value } => {
                    let v = self.eval(value);
                    self.add_remove(field, v, false);
                }
                Instr::Tag(v) => {
                    let v = self.eval(v);
                    self.add_remove("tags", v, true);
                }
                Instr::Untag(v) => {
                    let v = self.eval(v);
                    self.add_remove("tags", v, false);
                }
                Instr::Jump(to) => {
                    pc = *to;
                    continue;
                }
                Instr::JumpUnless { cond, to } => {
                    if !self.eval(cond).truthy() {
                        pc = *to;
                        continue;
                    }
                }
                Instr::Split { id, arms } => {
                    let share =
                        hash_share(&[&self.contact.id, &self.program.name, &id.to_string()]);
                    let mut acc = 0.0;
                    let chosen = arms
                        .iter()
                        .find(|a| {
                            acc += a.share;
                            share < acc
                        })
                        .or(arms.last());
                    if let Some(a) = chosen {
                        pc = a.pc;
                        continue;
                    }
                }
                Instr::Wait(def) => match self.enter_wait(pc, def) {
                    Some(next) => {
                        pc = next;
                        continue;
                    }
                    None => return,
                },
                Instr::GotoFlow { flow, step } => {
                    self.effects.push(Effect::Goto {
                        flow: flow.clone(),
                        step: step.clone(),
                        event: self.enr.event.clone(),
                    });
                    self.finish(Status::Exited, format!("left for flow `{flow}`"));
                    return;
                }
                Instr::Start(flow) => self.effects.push(Effect::Start {
                    flow: flow.clone(),
                    event: self.enr.event.clone(),
                }),
                Instr::Stop(flow) => self.effects.push(Effect::Stop { flow: flow.clone() }),
                Instr::Exit => {
                    self.finish(Status::Exited, "exited".into());
                    return;
                }
                Instr::Complete => {
                    self.finish(Status::Completed, "completed the flow".into());
                    return;
                }
                Instr::Emit { event, fields } => {
                    let def = self.bundle.event(event);
                    let mut values = BTreeMap::new();
                    let mut failed = None;
                    for (name, code) in fields {
                        let v = match try_eval(code, &self.scope()) {
                            Ok(v) => v,
                            Err(e) => {
                                failed = Some(e);
                                break;
                            }
                        };
                        let v = match def.and_then(|d| d.fields.iter().find(|f| &f.name == name)) {
                            Some(f) => coerce(v, &f.ty).unwrap_or_default(),
                            None => v,
                        };
                        if !v.is_null() {
                            values.insert(name.clone(), v);
                        }
                    }
                    if let Some(e) = failed {
                        self.journal(format!("emit `{event}` skipped: {e}"));
                    } else {
                        self.effects.push(Effect::Emit(EventValue {
                            name: event.clone(),
                            fields: values,
                            at: self.now,
                            nth: 0,
                        }));
                    }
                }
                Instr::Log(text) => self.journal(text.clone()),
                Instr::Return => {
                    self.enr.wait = self.handler_wait.take();
                    if let Some(w) = &self.enr.wait {
                        self.enr.pc = w.pc;
                    }
                    return;
                }
            }
            pc += 1;
        }
    }

    /// Enter a wait: `Some(pc)` to continue at once (a data condition holds,
    /// or an instant is already past), `None` when the enrollment now waits.
    fn enter_wait(&mut self, pc: u32, def: &WaitDef) -> Option<u32> {
        if let Some((_, to)) = def.data.iter().find(|(c, _)| self.eval(c).truthy()) {
            return Some(*to);
        }
        let mut timers = Vec::new();
        for (t, to) in &def.timers {
            let at = match t {
                TimerDef::After(d) => match self.eval(d) {
                    Value::Duration(s) => Some(self.now.saturating_add(s.max(0))),
                    _ => None,
                },
                TimerDef::At(c) => match self.eval(c) {
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
                if at <= self.now {
                    return Some(*to);
                }
                timers.push((at, *to));
            }
        }
        self.enr.wait = Some(PendingWait {
            pc,
            timers,
            call: None,
        });
        None
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

    fn render(&mut self, t: &Option<Tpl>, kind: RenderKind) -> Result<Option<String>, String> {
        let Some(t) = t else { return Ok(None) };
        if !t.0.contains("{{") && !t.0.contains("{%") && !t.0.contains("{#") {
            // a plain text: no roots to build
            return Ok(Some(t.0.clone()));
        }
        let r = roots(&self.scope(), self.bundle, &t.0);
        Ok(Some(render(&t.0, &r, kind)?))
    }

    fn send(&mut self, channel: &str, message: &MessageDef, to: Option<&Code>, force: bool) {
        let Some(ch) = self.bundle.channel(channel) else {
            return;
        };
        // a held-out contact's sends are skipped as holdout (§10), whatever else
        if self.enr.holdout {
            self.journal(format!("send to `{channel}` skipped: holdout"));
            return;
        }
        let smtp = matches!(ch.kind, ChannelKind::Smtp { .. });
        let recipient = match to {
            Some(c) => self.eval(c),
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
            return;
        }
        let rendered = (|| -> Result<_, String> {
            Ok((
                self.render(&message.subject, RenderKind::Text)?,
                self.render(&message.text, RenderKind::Text)?,
                self.render(&message.html, RenderKind::Html)?,
            ))
        })();
        let (subject, text, html) = match rendered {
            Ok(r) => r,
            Err(e) => {
                self.journal(format!("send to `{channel}` skipped: {e}"));
                return;
            }
        };
        if let (Some(cap), false) = (ch.cap, force) {
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
            if count >= cap.count as usize {
                self.journal(format!(
                    "send to `{channel}` skipped: the cap of {} per {}s is reached",
                    cap.count, cap.per_seconds
                ));
                return;
            }
        }
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
            match build(self.bundle, &target, &scope, text.as_deref(), None) {
                Ok(b) => Some(HttpRequest {
                    method: b.method,
                    url: b.url,
                    headers: b.headers,
                    body: b.body,
                }),
                Err(e) => {
                    self.journal(format!("send to `{channel}` skipped: {e}"));
                    return;
                }
            }
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
    }

    /// Returns true when the enrollment now waits for the response.
    fn call(
        &mut self,
        target: &CallTarget,
        with: &[(String, Code)],
        result: Option<&str>,
        pc: u32,
    ) -> bool {
        if self.enr.holdout {
            self.journal("call skipped: holdout");
            if let Some(name) = result {
                self.enr
                    .locals
                    .insert(name.to_string(), call_result(0, Value::Null));
            }
            return false;
        }
        let data = with
            .iter()
            .map(|(k, c)| Ok((k.clone(), try_eval(c, &self.scope())?)))
            .collect::<Result<_, RenderError>>()
            .map(Value::Map);
        let data = match data {
            Ok(d) => d,
            Err(e) => {
                self.journal(format!("call skipped: {e}"));
                if let Some(name) = result {
                    let r = call_result(0, Value::Null);
                    self.enr.locals.insert(name.to_string(), r);
                }
                return false;
            }
        };
        let data_ref = data.clone();
        let named = move |r: &Root| match r {
            Root::Data => data_ref.clone(),
            _ => Value::Null,
        };
        let mut scope = self.scope();
        scope.named = Some(&named);
        let built = build(self.bundle, target, &scope, None, Some(&data));
        match built {
            Ok(b) => {
                self.journal(format!("call {} {}", b.method, b.url));
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
                }));
            }
            Err(e) => {
                self.journal(format!("call skipped: {e}"));
                if let Some(name) = result {
                    self.enr
                        .locals
                        .insert(name.to_string(), call_result(0, Value::Null));
                }
                return false;
            }
        }
        match result {
            Some(name) => {
                self.enr.wait = Some(PendingWait {
                    pc,
                    timers: Vec::new(),
                    call: Some(name.to_string()),
                });
                true
            }
            None => false,
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
