//! One flow to a [`Program`]: handlers first (each ends with `Return`), then
//! the steps in order, then `Complete`. Jumps to steps are patched once every
//! step's offset is known.

use super::enums::{reenter as reenter_mode, weekday};
use super::expr::{Names, code};
use crate::bundle::*;
use crate::files::SourceFile;
use crate::model::{Env, FlowInfo};
use crate::types::TypeInfo;
use nudge_grammar::ast::{self, FlowItem, FlowOption, StmtKind, WaitBranchKind, WaitKind};
use std::collections::BTreeSet;

pub(super) struct FlowLowering<'l, 'e, 'a> {
    pub env: &'l Env<'a>,
    pub info: &'l TypeInfo,
    pub flow: &'l FlowInfo<'e>,
    pub file: &'l SourceFile,
    calls: BTreeSet<String>,
    code: Vec<Instr>,
    line_of: Vec<u32>,
    /// (instruction, step name) jumps to patch.
    patches: Vec<(usize, String)>,
    splits: u32,
}

static NO_CONTACTS: BTreeSet<String> = BTreeSet::new();

impl<'l, 'e, 'a> FlowLowering<'l, 'e, 'a> {
    pub fn new(
        env: &'l Env<'a>,
        info: &'l TypeInfo,
        flow: &'l FlowInfo<'e>,
        file: &'l SourceFile,
    ) -> Self {
        let mut calls = BTreeSet::new();
        crate::walk::each_flow_stmt(flow.decl, &mut |s| {
            if let StmtKind::Call {
                as_name: Some(n), ..
            } = &s.kind
            {
                calls.insert(n.name.clone());
            }
        });
        FlowLowering {
            env,
            info,
            flow,
            file,
            calls,
            code: Vec::new(),
            line_of: Vec::new(),
            patches: Vec::new(),
            splits: 0,
        }
    }

    fn names(&self) -> Names<'_> {
        Names {
            calls: &self.calls,
            contacts: &NO_CONTACTS,
        }
    }

    fn c(&self, e: &ast::Expr) -> Code {
        code(self.env, &self.names(), e)
    }

    /// A value whose strings are templates (A2).
    fn t(&self, e: &ast::Expr) -> Code {
        super::expr::template_code(self.env, &self.names(), e)
    }

    fn matcher(&self, ev: &ast::EventRef, cond: &Option<ast::Expr>) -> EventMatch {
        EventMatch {
            event: ev.name.name.clone(),
            nth: ev.nth.map(|(n, _)| n),
            cond: cond.as_ref().map(|c| self.c(c)),
        }
    }

    fn push(&mut self, i: Instr, span: nudge_grammar::span::Span) -> usize {
        self.code.push(i);
        self.line_of.push(
            self.file
                .lines
                .line_col(&self.file.text, span.start as usize)
                .0 as u32,
        );
        self.code.len() - 1
    }

    fn here(&self) -> u32 {
        self.code.len() as u32
    }

    fn set_target(&mut self, at: usize, to: u32) {
        match self.code.get_mut(at) {
            Some(Instr::Jump(t)) => *t = to,
            Some(Instr::JumpUnless { to: t, .. }) => *t = to,
            _ => {}
        }
    }

    pub fn lower(mut self) -> Program {
        let decl = self.flow.decl;
        let mut triggers = Vec::new();
        let mut reenter = Reenter::AfterExit;
        let mut exit_when = Vec::new();
        let mut goals = Vec::new();
        let mut holdout = None;
        let mut window = None;
        for item in &decl.body {
            match item {
                FlowItem::Trigger(t) => triggers.push(match &t.kind {
                    ast::TriggerKind::Event(e) => Trigger::Event(self.matcher(e, &t.cond)),
                    ast::TriggerKind::Time(e) => Trigger::Time {
                        at: self.c(e),
                        late: t
                            .late
                            .as_ref()
                            .map_or(0, |l| i64::try_from(l.seconds()).unwrap_or(i64::MAX)),
                        cond: t.cond.as_ref().map(|c| self.c(c)),
                    },
                    ast::TriggerKind::Schedule(s) => {
                        let (schedule, local) = match s {
                            ast::Schedule::At {
                                day, time, local, ..
                            } => (
                                match day {
                                    Some(d) => Schedule::Weekly {
                                        day: weekday(*d),
                                        hour: time.hour,
                                        minute: time.minute,
                                    },
                                    None => Schedule::Daily {
                                        hour: time.hour,
                                        minute: time.minute,
                                    },
                                },
                                *local,
                            ),
                            ast::Schedule::Cron { expr, local, .. } => (
                                Schedule::Cron(
                                    CronSpec::parse(&expr.value)
                                        .unwrap_or_else(|_| CronSpec::never(&expr.value)),
                                ),
                                *local,
                            ),
                        };
                        Trigger::Schedule {
                            schedule,
                            local,
                            cond: t.cond.as_ref().map(|c| self.c(c)),
                        }
                    }
                    ast::TriggerKind::Keyword(k) => Trigger::Keyword(k.value.trim().to_lowercase()),
                }),
                FlowItem::Option(o) => match o {
                    FlowOption::Reenter { mode, .. } => reenter = reenter_mode(*mode),
                    FlowOption::ExitWhen { event, cond, .. } => {
                        exit_when.push(self.matcher(event, cond))
                    }
                    FlowOption::Goal { event, cond, .. } => goals.push(self.matcher(event, cond)),
                    FlowOption::Holdout { percent, .. } => holdout = Some(percent.value),
                    FlowOption::Window(w) => window = Some(window_def(w)),
                },
                _ => {}
            }
        }
        let mut handlers = Vec::new();
        for item in &decl.body {
            if let FlowItem::Handler(h) = item {
                let pc = self.here();
                self.stmt(&h.body);
                self.push(Instr::Return, h.span);
                handlers.push(HandlerDef {
                    on: self.matcher(&h.event, &h.cond),
                    pc,
                });
            }
        }
        let mut steps = Vec::new();
        for (i, step) in self.flow.steps.iter().enumerate() {
            let pc = self.here();
            self.push(Instr::Step(i as u32), step.span);
            steps.push(StepDef {
                name: step.name.clone(),
                title: step
                    .explicit
                    .and_then(|s| s.title.as_ref())
                    .map(|t| t.value.clone()),
                pc,
                window: step
                    .explicit
                    .and_then(|s| s.window.as_ref())
                    .map(window_def),
            });
            for s in step.stmts() {
                self.stmt(s);
            }
        }
        self.push(Instr::Complete, decl.span);
        for (at, step) in std::mem::take(&mut self.patches) {
            if let Some(s) = steps.iter().find(|s| s.name == step) {
                self.set_target(at, s.pc);
            }
        }
        Program {
            name: decl.name.name.clone(),
            title: decl.title.as_ref().map(|t| t.value.clone()),
            doc: decl.doc.clone(),
            triggers,
            reenter,
            exit_when,
            goals,
            handlers,
            holdout,
            window,
            steps,
            code: self.code,
            lines: self.line_of,
            file: self.file.name.clone(),
        }
    }

    fn stmts(&mut self, stmts: &[ast::Stmt]) {
        for s in stmts {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &ast::Stmt) {
        let span = s.span;
        match &s.kind {
            StmtKind::Send {
                channel,
                content,
                to,
                force,
            } => {
                let message = match content {
                    ast::Content::Template(t) => {
                        super::template_message(self.env, &t.name, self.info)
                    }
                    ast::Content::Inline(lit) => MessageDef {
                        template: None,
                        subject: None,
                        text: Some(Tpl(lit.value.clone())),
                        html: None,
                    },
                    ast::Content::Fields(settings, _) => {
                        let get = |n: &str| {
                            settings
                                .iter()
                                .find(|s| s.name.name == n)
                                .and_then(|s| super::tpl_of(&s.value, None, self.info))
                        };
                        MessageDef {
                            template: None,
                            subject: get("subject"),
                            text: get("text"),
                            html: get("html"),
                        }
                    }
                };
                let to = to.as_ref().map(|t| self.c(t));
                self.push(
                    Instr::Send {
                        channel: channel.name.clone(),
                        message,
                        to,
                        force: *force,
                    },
                    span,
                );
            }
            StmtKind::Call {
                target,
                with,
                as_name,
                ..
            } => {
                let target = match target {
                    ast::CallTarget::Channel(c) => CallTarget::Channel(c.name.clone()),
                    ast::CallTarget::Url(u) => CallTarget::Url(Tpl(u.value.clone())),
                };
                let with = with
                    .iter()
                    .flatten()
                    .map(|s| (s.name.name.clone(), self.t(&s.value)))
                    .collect();
                self.push(
                    Instr::Call {
                        target,
                        with,
                        result: as_name.as_ref().map(|n| n.name.clone()),
                    },
                    span,
                );
            }
            StmtKind::Set { target, value } => {
                let i = Instr::Set {
                    field: field_of(target),
                    value: self.c(value),
                };
                self.push(i, span);
            }
            StmtKind::Unset { target } => {
                self.push(
                    Instr::Unset {
                        field: field_of(target),
                    },
                    span,
                );
            }
            StmtKind::Add { value, target } => {
                let i = Instr::Add {
                    field: field_of(target),
                    value: self.c(value),
                };
                self.push(i, span);
            }
            StmtKind::Remove { value, target } => {
                let i = Instr::Remove {
                    field: field_of(target),
                    value: self.c(value),
                };
                self.push(i, span);
            }
            StmtKind::Tag { value } => {
                let i = Instr::Tag(self.c(value));
                self.push(i, span);
            }
            StmtKind::Untag { value } => {
                let i = Instr::Untag(self.c(value));
                self.push(i, span);
            }
            StmtKind::If {
                branches,
                otherwise,
            } => {
                let mut to_end = Vec::new();
                for (cond, body) in branches {
                    let c = self.c(cond);
                    let skip = self.push(Instr::JumpUnless { cond: c, to: 0 }, cond.span);
                    self.stmts(body);
                    to_end.push(self.push(Instr::Jump(0), span));
                    let here = self.here();
                    self.set_target(skip, here);
                }
                if let Some(b) = otherwise {
                    self.stmts(b);
                }
                let end = self.here();
                for j in to_end {
                    self.set_target(j, end);
                }
            }
            StmtKind::Split { arms } => {
                let id = self.splits;
                self.splits += 1;
                let at = self.push(
                    Instr::Split {
                        id,
                        arms: Vec::new(),
                    },
                    span,
                );
                let mut out = Vec::new();
                let mut to_end = Vec::new();
                for a in arms {
                    out.push(SplitArm {
                        share: a.share.value,
                        pc: self.here(),
                    });
                    self.stmt(&a.body);
                    to_end.push(self.push(Instr::Jump(0), a.span));
                }
                let end = self.here();
                for j in to_end {
                    self.set_target(j, end);
                }
                if let Some(Instr::Split { arms, .. }) = self.code.get_mut(at) {
                    *arms = out;
                }
            }
            StmtKind::Wait(w) => self.wait(w, span),
            StmtKind::Goto { target } => {
                let this = &self.flow.decl.name.name;
                let step = match &target.second {
                    Some(step) if &target.first.name == this => Some(step.name.clone()),
                    Some(_) => None,
                    None if self.flow.step(&target.first.name).is_some() => {
                        Some(target.first.name.clone())
                    }
                    None => None,
                };
                match step {
                    Some(step) => {
                        let at = self.push(Instr::Jump(0), span);
                        self.patches.push((at, step));
                    }
                    None => {
                        let (flow, step) = match &target.second {
                            Some(s) => (target.first.name.clone(), Some(s.name.clone())),
                            None => (target.first.name.clone(), None),
                        };
                        self.push(Instr::GotoFlow { flow, step }, span);
                    }
                }
            }
            StmtKind::Start { flow } => {
                self.push(Instr::Start(flow.name.clone()), span);
            }
            StmtKind::Stop { flow } => {
                self.push(Instr::Stop(flow.name.clone()), span);
            }
            StmtKind::Exit => {
                self.push(Instr::Exit, span);
            }
            StmtKind::Emit { event, fields } => {
                let info = self.env.events.get(&event.name);
                let text = |f: &str| {
                    info.and_then(|i| i.field(f))
                        .is_some_and(|f| matches!(f.ty.base(), crate::model::Type::Text))
                };
                let fields = fields
                    .iter()
                    .flatten()
                    .map(|s| {
                        let code = if text(&s.name.name) {
                            self.t(&s.value)
                        } else {
                            self.c(&s.value)
                        };
                        (s.name.name.clone(), code)
                    })
                    .collect();
                self.push(
                    Instr::Emit {
                        event: event.name.clone(),
                        fields,
                    },
                    span,
                );
            }
            StmtKind::Log { text } => {
                self.push(Instr::Log(text.value.clone()), span);
            }
            StmtKind::Block(b) => self.stmts(b),
        }
    }

    fn wait(&mut self, w: &ast::Wait, span: nudge_grammar::span::Span) {
        let at = self.push(
            Instr::Wait(WaitDef {
                timers: Vec::new(),
                events: Vec::new(),
                data: Vec::new(),
            }),
            span,
        );
        let mut def = WaitDef {
            timers: Vec::new(),
            events: Vec::new(),
            data: Vec::new(),
        };
        // branch bodies follow the wait; each ends with a jump to the end
        let mut to_end = Vec::new();
        // a pc of u32::MAX means "the end", patched below
        const END: u32 = u32::MAX;
        match &w.kind {
            WaitKind::Duration(e) => def.timers.push((TimerDef::After(self.c(e)), END)),
            WaitKind::Until(e) => {
                if self.info.data_waits.contains(&e.span) {
                    def.data.push((self.c(e), END));
                } else {
                    def.timers.push((TimerDef::At(self.c(e)), END));
                }
            }
            WaitKind::Clock { day, time, local } => def.timers.push((
                TimerDef::Clock {
                    day: day.map(weekday),
                    hour: time.hour,
                    minute: time.minute,
                    second: time.second,
                    local: *local,
                },
                END,
            )),
            WaitKind::For { event, cond } => def.events.push((self.matcher(event, cond), END)),
            WaitKind::Block(branches) => {
                for b in branches {
                    let pc = self.here();
                    match &b.kind {
                        WaitBranchKind::On { event, cond } => {
                            def.events.push((self.matcher(event, cond), pc))
                        }
                        WaitBranchKind::Until(c) => def.data.push((self.c(c), pc)),
                        WaitBranchKind::After(d) => {
                            def.timers.push((TimerDef::After(self.c(d)), pc))
                        }
                    }
                    self.stmt(&b.body);
                    to_end.push(self.push(Instr::Jump(0), b.span));
                }
            }
        }
        if let Some(within) = &w.within {
            let d = self.c(&within.duration);
            match &within.otherwise {
                Some(s) => {
                    let pc = self.here();
                    def.timers.push((TimerDef::After(d), pc));
                    self.stmt(s);
                    to_end.push(self.push(Instr::Jump(0), within.span));
                }
                None => def.timers.push((TimerDef::After(d), END)),
            }
        }
        let end = self.here();
        for j in to_end {
            self.set_target(j, end);
        }
        for (_, pc) in def.timers.iter_mut() {
            if *pc == END {
                *pc = end;
            }
        }
        for (_, pc) in def.events.iter_mut() {
            if *pc == END {
                *pc = end;
            }
        }
        for (_, pc) in def.data.iter_mut() {
            if *pc == END {
                *pc = end;
            }
        }
        if let Some(slot) = self.code.get_mut(at) {
            *slot = Instr::Wait(def);
        }
    }
}

fn window_def(w: &ast::Window) -> WindowDef {
    WindowDef {
        from: (w.from.hour, w.from.minute),
        to: (w.to.hour, w.to.minute),
        local: w.local,
    }
}

/// `contact.F` → `F`.
fn field_of(target: &ast::Expr) -> String {
    match &target.kind {
        ast::ExprKind::Field(_, f) => f.name.clone(),
        _ => String::new(),
    }
}
