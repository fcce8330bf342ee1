//! Typing flows, with `event` known at each point (LANGUAGE.md §5.5): at a
//! flow's first step from its triggers; after `wait for E` it is `E`; after
//! a multi-branch wait any of the branches' events (only common fields can be
//! read); a handler body sees the handler's event; `goto`/`start` carry the
//! current event to their target. Step entries are found by iterating to a
//! fixpoint over every `goto`, `start` and fall-through, across flows.

use super::Checker;
use super::scope::{Ctx, EvSet, EventCtx, Place};
use super::{TypeError, literals};
use crate::diagnostics::{Diagnostics, ss};
use crate::model::{ChannelKind, FlowInfo, Type};
use crate::resolve::ResolveError;
use nudge_grammar::ast::*;
use std::collections::{BTreeSet, HashMap};

type StepKey = (String, String);

/// Walks one flow; records where control goes and with which events.
struct Walk<'w> {
    flow: &'w FlowInfo<'w>,
    calls: BTreeSet<String>,
    /// Report diagnostics (the final pass) or only follow events.
    report: bool,
    jumps: Vec<(StepKey, EvSet)>,
}

pub(super) fn check_flows(ck: &mut Checker<'_, '_>, d: &mut Diagnostics) {
    let flows = ck.env.flows_in_order();
    let mut entries: HashMap<StepKey, EvSet> = HashMap::new();
    for f in &flows {
        if let Some(first) = f.steps.first() {
            entries.insert(
                (f.decl.name.name.clone(), first.name.clone()),
                trigger_events(f.decl),
            );
        }
    }
    // Fixpoint: event sets only grow, and are bounded by the declared events.
    for _round in 0..16 {
        let mut changed = false;
        for f in &flows {
            let mut scratch = Diagnostics::new();
            let jumps = walk_flow(ck, f, &entries, false, &mut scratch);
            for (key, ev) in jumps {
                let cur = entries.entry(key).or_default();
                let next = cur.union(&ev);
                if next != *cur {
                    *cur = next;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    for f in &flows {
        check_flow_header(ck, f, d);
        walk_flow(ck, f, &entries, true, d);
    }
}

/// The events that can be current at a flow's first step, from its triggers.
fn trigger_events(flow: &FlowDecl) -> EvSet {
    let mut ev = EvSet::default();
    for item in &flow.body {
        if let FlowItem::Trigger(t) = item {
            match &t.kind {
                TriggerKind::Event(e) => {
                    ev.names.insert(e.name.name.clone());
                }
                TriggerKind::Keyword(_) => {
                    ev.names.insert("message_received".into());
                }
                TriggerKind::Time(_) | TriggerKind::Schedule(_) => ev.none = true,
            }
        }
    }
    ev
}

fn calls_of(flow: &FlowDecl) -> BTreeSet<String> {
    let mut calls = BTreeSet::new();
    crate::walk::each_flow_stmt(flow, &mut |s| {
        if let StmtKind::Call {
            as_name: Some(n), ..
        } = &s.kind
        {
            calls.insert(n.name.clone());
        }
    });
    calls
}

fn ctx<'c>(ev: &EvSet, calls: &'c BTreeSet<String>, contacts: &'c BTreeSet<String>) -> Ctx<'c> {
    Ctx {
        event: EventCtx::Set(ev.clone()),
        calls,
        place: Place::Flow,
        contacts,
    }
}

static EMPTY: BTreeSet<String> = BTreeSet::new();

/// A cron string, parsed by the one parser the bundle stores: an error
/// points at the field at fault.
fn check_cron(expr: &nudge_grammar::ast::StrLit, d: &mut Diagnostics) {
    let Err(e) = crate::bundle::CronSpec::parse(&expr.value) else {
        return;
    };
    let span = if e.range.is_empty() {
        expr.span
    } else {
        expr.sub_span(e.range.start, e.range.end)
    };
    d.push(
        span,
        TypeError::InvalidCron {
            span: ss(span),
            detail: e.message,
            help: Some(
                "five fields: minute hour day-of-month month day-of-week, like `\"0 9 * * 1\"` (09:00 every Monday); a range goes low to high (`1-5`), a list wraps (`22,23,0,1`)".into(),
            ),
        },
    );
}

/// Triggers and options: their conditions see the trigger's event.
fn check_flow_header(ck: &mut Checker<'_, '_>, f: &FlowInfo<'_>, d: &mut Diagnostics) {
    let calls = BTreeSet::new();
    for item in &f.decl.body {
        match item {
            FlowItem::Trigger(t) => {
                let ev = match &t.kind {
                    TriggerKind::Event(e) => EvSet::one(&e.name.name),
                    TriggerKind::Keyword(k) => {
                        if k.value.trim().is_empty() {
                            d.push(
                                k.span,
                                TypeError::OutOfRange {
                                    message: "a keyword cannot be empty".into(),
                                    span: ss(k.span),
                                    help: Some(
                                        "write the word that starts the flow: `keyword \"PROMO\"`"
                                            .into(),
                                    ),
                                },
                            );
                        }
                        EvSet::one("message_received")
                    }
                    TriggerKind::Time(e) => {
                        let cx = ctx(&EvSet::nothing(), &calls, &EMPTY);
                        ck.expect_ty(e, &Type::Time.optional(), &cx, d);
                        if let Some(late) = &t.late {
                            super::time::check_duration(late, d);
                        }
                        EvSet::nothing()
                    }
                    TriggerKind::Schedule(Schedule::Cron { expr, .. }) => {
                        check_cron(expr, d);
                        EvSet::nothing()
                    }
                    TriggerKind::Schedule(_) => EvSet::nothing(),
                };
                if let Some(c) = &t.cond {
                    ck.cond(c, &ctx(&ev, &calls, &EMPTY), d);
                }
            }
            FlowItem::Option(
                FlowOption::ExitWhen { event, cond, .. } | FlowOption::Goal { event, cond, .. },
            ) => {
                if let Some(c) = cond {
                    ck.cond(c, &ctx(&EvSet::one(&event.name.name), &calls, &EMPTY), d);
                }
            }
            FlowItem::Option(FlowOption::Holdout { percent, .. })
                if !(0.0..100.0).contains(&percent.value) =>
            {
                d.push(
                    percent.span,
                    TypeError::OutOfRange {
                        message: format!(
                            "a holdout of {}% leaves no one in the flow",
                            percent.text
                        ),
                        span: ss(percent.span),
                        help: Some("a holdout is a share below 100%, like `holdout 10%`".into()),
                    },
                );
            }
            _ => {}
        }
    }
}

fn walk_flow(
    ck: &mut Checker<'_, '_>,
    f: &FlowInfo<'_>,
    entries: &HashMap<StepKey, EvSet>,
    report: bool,
    d: &mut Diagnostics,
) -> Vec<(StepKey, EvSet)> {
    let mut w = Walk {
        flow: f,
        calls: calls_of(f.decl),
        report,
        jumps: Vec::new(),
    };
    let fname = f.decl.name.name.clone();
    // handlers: body sees the handler's event
    for item in &f.decl.body {
        if let FlowItem::Handler(h) = item {
            let ev = EvSet::one(&h.event.name.name);
            if let (true, Some(c)) = (report, &h.cond) {
                ck.cond(c, &ctx(&ev, &w.calls, &EMPTY), d);
            }
            w.stmt(ck, &h.body, ev, d);
        }
    }
    let mut fall: Option<EvSet> = None;
    for step in &f.steps {
        let key = (fname.clone(), step.name.clone());
        let mut ev = entries.get(&key).cloned().unwrap_or_default();
        if let Some(prev) = &fall {
            ev = ev.union(prev);
        }
        if ev.is_empty() {
            // entered only by hand: no event
            ev = EvSet::nothing();
        }
        fall = w.stmts(ck, step.stmts(), ev, d);
    }
    w.jumps
}

impl Walk<'_> {
    fn stmts<'s>(
        &mut self,
        ck: &mut Checker<'_, '_>,
        stmts: impl IntoIterator<Item = &'s Stmt>,
        ev: EvSet,
        d: &mut Diagnostics,
    ) -> Option<EvSet> {
        let mut last = ev.clone();
        let mut cur = Some(ev);
        for s in stmts {
            // statements after one that never falls through are still typed
            let ev = cur.clone().unwrap_or_else(|| last.clone());
            last = ev.clone();
            let out = self.stmt(ck, s, ev, d);
            cur = match cur {
                Some(_) => out,
                None => None,
            };
        }
        cur
    }

    fn cx<'c>(&'c self, ev: &EvSet) -> Ctx<'c> {
        ctx(ev, &self.calls, &EMPTY)
    }

    fn jump_to_flow(&mut self, ck: &Checker<'_, '_>, flow: &str, ev: &EvSet) {
        if let Some(first) = ck.env.flows.get(flow).and_then(|f| f.steps.first()) {
            self.jumps
                .push(((flow.to_string(), first.name.clone()), ev.clone()));
        }
    }

    fn stmt(
        &mut self,
        ck: &mut Checker<'_, '_>,
        s: &Stmt,
        ev: EvSet,
        d: &mut Diagnostics,
    ) -> Option<EvSet> {
        match &s.kind {
            StmtKind::Goto { target } => {
                let this = self.flow.decl.name.name.clone();
                match &target.second {
                    Some(step) => self
                        .jumps
                        .push(((target.first.name.clone(), step.name.clone()), ev)),
                    None if self.flow.step(&target.first.name).is_some() => {
                        self.jumps.push(((this, target.first.name.clone()), ev))
                    }
                    None => self.jump_to_flow(ck, &target.first.name, &ev),
                }
                None
            }
            StmtKind::Exit => None,
            StmtKind::Start { flow } => {
                self.jump_to_flow(ck, &flow.name, &ev);
                Some(ev)
            }
            StmtKind::Stop { .. } => Some(ev),
            StmtKind::Block(b) => self.stmts(ck, b, ev, d),
            StmtKind::If {
                branches,
                otherwise,
            } => {
                let mut out: Option<EvSet> = None;
                for (c, body) in branches {
                    if self.report {
                        ck.cond(c, &self.cx(&ev), d);
                    }
                    out = merge(out, self.stmts(ck, body, ev.clone(), d));
                }
                match otherwise {
                    Some(b) => merge(out, self.stmts(ck, b, ev, d)),
                    None => merge(out, Some(ev)),
                }
            }
            StmtKind::Split { arms } => {
                let mut out = None;
                for a in arms {
                    if self.report && (a.share.value <= 0.0 || a.share.value > 100.0) {
                        d.push(
                            a.share.span,
                            TypeError::OutOfRange {
                                message: format!("a share of {}% is out of range", a.share.text),
                                span: ss(a.share.span),
                                help: Some("each share is above 0% and at most 100%".into()),
                            },
                        );
                    }
                    out = merge(out, self.stmt(ck, &a.body, ev.clone(), d));
                }
                out
            }
            StmtKind::Wait(w) => self.wait(ck, w, ev, d),
            _ => {
                if self.report {
                    self.simple(ck, s, &ev, d);
                }
                Some(ev)
            }
        }
    }

    fn wait(
        &mut self,
        ck: &mut Checker<'_, '_>,
        w: &Wait,
        ev: EvSet,
        d: &mut Diagnostics,
    ) -> Option<EvSet> {
        let report = self.report;
        let mut out = match &w.kind {
            WaitKind::Duration(e) => {
                if report {
                    ck.expect_ty(e, &Type::Duration, &self.cx(&ev), d);
                }
                Some(ev.clone())
            }
            WaitKind::Until(e) => {
                if report {
                    let t = ck.ty(e, &self.cx(&ev), d);
                    if matches!(t.base(), Type::Bool) {
                        ck.info.data_waits.insert(e.span);
                        super::time::check_data_match(ck, e, d);
                    }
                    if !matches!(t.base(), Type::Time | Type::Bool) && !t.is_dynamic() {
                        d.push(
                            e.span,
                            TypeError::Mismatch {
                                expected: "a `time` or a condition".into(),
                                found: format!("`{t}`"),
                                span: ss(e.span),
                                help: Some("`wait until` takes an instant (`contact.paid_at + 7 days`) or a condition (`contact.score > 50`)".into()),
                            },
                        );
                    }
                }
                Some(ev.clone())
            }
            WaitKind::Clock { .. } => Some(ev.clone()),
            WaitKind::For { event, cond } => {
                let e = EvSet::one(&event.name.name);
                if let (true, Some(c)) = (report, cond) {
                    ck.cond(c, &self.cx(&e), d);
                }
                Some(e)
            }
            WaitKind::Block(branches) => {
                let mut out = None;
                for b in branches {
                    let bev = match &b.kind {
                        WaitBranchKind::On { event, cond } => {
                            let e = EvSet::one(&event.name.name);
                            if let (true, Some(c)) = (report, cond) {
                                ck.cond(c, &self.cx(&e), d);
                            }
                            e
                        }
                        WaitBranchKind::Until(c) => {
                            if report {
                                ck.cond(c, &self.cx(&ev), d);
                                super::time::check_data_match(ck, c, d);
                            }
                            ev.clone()
                        }
                        WaitBranchKind::After(e) => {
                            if report {
                                ck.expect_ty(e, &Type::Duration, &self.cx(&ev), d);
                            }
                            ev.clone()
                        }
                    };
                    out = merge(out, self.stmt(ck, &b.body, bev, d));
                }
                out
            }
        };
        if let Some(within) = &w.within {
            if report {
                ck.expect_ty(&within.duration, &Type::Duration, &self.cx(&ev), d);
            }
            let timeout = match &within.otherwise {
                Some(s) => self.stmt(ck, s, ev.clone(), d),
                None => Some(ev),
            };
            out = merge(out, timeout);
        }
        out
    }

    /// Statements that neither branch nor move.
    fn simple(&mut self, ck: &mut Checker<'_, '_>, s: &Stmt, ev: &EvSet, d: &mut Diagnostics) {
        let cx = self.cx(ev);
        match &s.kind {
            StmtKind::Send {
                channel,
                content,
                to,
                ..
            } => {
                let kind = ck.env.channels.get(&channel.name).and_then(|c| c.1);
                match content {
                    Content::Inline(lit) => ck.template_str(lit, &cx, d),
                    Content::Fields(settings, _) => {
                        for st in settings {
                            match st.name.name.as_str() {
                                "subject" | "text" | "html" => ck.template_value(&st.value, &cx, d),
                                other => d.push(
                                    st.name.span,
                                    ResolveError::UnknownSetting {
                                        name: other.into(),
                                        of: "a message".into(),
                                        span: ss(st.name.span),
                                        help: Some(
                                            "a message has `subject`, `text` and `html`".into(),
                                        ),
                                    },
                                ),
                            }
                        }
                    }
                    Content::Template(t) => {
                        if let Some((decl, _)) = ck.env.templates.get(&t.name).copied() {
                            for st in &decl.settings {
                                if let ExprKind::Str(lit) = &st.value.kind {
                                    ck.template_str(lit, &cx, d);
                                } else {
                                    ck.template_value(
                                        &st.value,
                                        &Ctx {
                                            place: Place::Decl,
                                            ..cx.clone()
                                        },
                                        d,
                                    );
                                }
                            }
                        }
                    }
                }
                if let Some(to) = to {
                    let want = if kind == Some(ChannelKind::Smtp) {
                        Type::Email
                    } else {
                        Type::Text
                    };
                    ck.expect_ty(to, &want.optional(), &cx, d);
                }
            }
            StmtKind::Call { target, with, .. } => {
                if let CallTarget::Url(u) = target {
                    if let Err(help) = literals::check_text(&u.value, &Type::Url) {
                        d.push(
                            u.span,
                            TypeError::InvalidFormat {
                                value: u.value.clone(),
                                what: "URL".into(),
                                span: ss(u.span),
                                help: Some(help),
                            },
                        );
                    }
                    ck.template_str(u, &cx, d);
                }
                for st in with.iter().flatten() {
                    ck.ty(&st.value, &cx, d);
                    ck.template_literals(&st.value, &cx, d);
                }
            }
            StmtKind::Set { target, value } => {
                if let Some(t) = self.contact_target(ck, target, "set", d) {
                    ck.expect_ty(value, &t, &cx, d);
                }
            }
            StmtKind::Unset { target } => {
                if let Some(t) = self.contact_target(ck, target, "unset", d)
                    && !t.is_optional()
                    && !matches!(t, Type::Set(_) | Type::List(_))
                {
                    d.push(
                            target.span,
                            TypeError::NotAssignable {
                                message: format!("`{}` is not optional and cannot be unset", show_path(target)),
                                span: ss(target.span),
                                help: Some("only optional fields (`T?`) can be unset; `set` it to another value".into()),
                            },
                        );
                }
            }
            StmtKind::Add { value, target } | StmtKind::Remove { value, target } => {
                if let Some(t) = self.contact_target(ck, target, "change", d) {
                    match t.base() {
                        Type::Set(elem) | Type::List(elem) => ck.expect_ty(value, elem, &cx, d),
                        other => d.push(
                            target.span,
                            TypeError::Mismatch {
                                expected: "a set or list field".into(),
                                found: format!("`{other}`"),
                                span: ss(target.span),
                                help: Some("`add … to` and `remove … from` change `set<T>` and `list<T>` fields".into()),
                            },
                        ),
                    }
                }
            }
            StmtKind::Tag { value } | StmtKind::Untag { value } => {
                ck.expect_ty(value, &Type::Text, &cx, d);
            }
            StmtKind::Emit { event, fields } => {
                ck.event_payload(event, fields.as_deref().unwrap_or(&[]), s.span, &cx, d);
                let info = ck.env.events.get(&event.name).cloned();
                for st in fields.iter().flatten() {
                    let text = info
                        .as_ref()
                        .and_then(|i| i.field(&st.name.name))
                        .is_some_and(|f| matches!(f.ty.base(), Type::Text));
                    if text && let ExprKind::Str(lit) = &st.value.kind {
                        ck.template_str(lit, &cx, d);
                    }
                }
            }
            _ => {}
        }
    }

    /// The type of `contact.F` as a target of `set`/`unset`/`add`/`remove`.
    fn contact_target(
        &self,
        ck: &Checker<'_, '_>,
        target: &Expr,
        verb: &str,
        d: &mut Diagnostics,
    ) -> Option<Type> {
        contact_field_target(ck, target, verb, &EMPTY, d)
    }
}

/// The type of `contact.F` (or `ID.F` for a test contact) as something to change.
pub(super) fn contact_field_target(
    ck: &Checker<'_, '_>,
    target: &Expr,
    verb: &str,
    contacts: &BTreeSet<String>,
    d: &mut Diagnostics,
) -> Option<Type> {
    let ExprKind::Field(base, field) = &target.kind else {
        return None;
    };
    let ExprKind::Name(root) = &base.kind else {
        not_contact(target, verb, d);
        return None;
    };
    if root.name != "contact" && !contacts.contains(&root.name) {
        not_contact(target, verb, d);
        return None;
    }
    match ck.env.contact_field(&field.name) {
        Some(f) if matches!(f.name.as_str(), "id" | "created_at") => {
            d.push(
                target.span,
                TypeError::NotAssignable {
                    message: format!(
                        "`{}` is set by Nudge and cannot be changed",
                        show_path(target)
                    ),
                    span: ss(target.span),
                    help: None,
                },
            );
            None
        }
        Some(f) => Some(f.ty.clone()),
        None => {
            d.push(
                field.span,
                ResolveError::UnknownField {
                    name: field.name.clone(),
                    of: "the contact".into(),
                    span: ss(field.span),
                    help: crate::diagnostics::did_you_mean(
                        &field.name,
                        ck.env.contact.iter().map(|c| c.name.as_str()),
                    ),
                },
            );
            None
        }
    }
}

fn not_contact(target: &Expr, verb: &str, d: &mut Diagnostics) {
    d.push(
        target.span,
        TypeError::NotAssignable {
            message: format!("only contact fields can be {verb}"),
            span: ss(target.span),
            help: Some("write `contact.FIELD`".into()),
        },
    );
}

fn show_path(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Name(n) => n.name.clone(),
        ExprKind::Field(b, f) => format!("{}.{}", show_path(b), f.name),
        _ => "…".into(),
    }
}

fn merge(a: Option<EvSet>, b: Option<EvSet>) -> Option<EvSet> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.union(&b)),
        (a, None) => a,
        (None, b) => b,
    }
}
