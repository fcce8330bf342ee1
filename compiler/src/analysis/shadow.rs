//! Handlers that can never fire (`shadowed_handler`).
//!
//! An event for an enrolled contact goes, in this order, to the flow's
//! `exit when`s, its `goal`s, its handlers (source order, first match wins)
//! and the branches of the wait the contact is in (LANGUAGE.md §5.5). An
//! entry on event `E` without `where`, and with no `#N` or the same `#N` as
//! a later one, takes every event the later one would: the later one never
//! fires. Reported:
//!
//! * a `goal` after such an `exit when`;
//! * a handler after such an `exit when`, `goal` or handler;
//! * a branch `on E` of a `wait { … }` after such an entry, or after such a
//!   branch of the same wait (its body never runs);
//! * `wait for E` after such a handler whose body may return the contact to
//!   the wait (the wait then never ends by `E`). Not reported when the first
//!   entry that takes `E` always leaves (`exit when`, `goal`, a handler that
//!   always `goto`s or `exit`s): the wait still ends when `E` comes, through
//!   that entry, which is the idiom `on sale -> goto …` with
//!   `wait for sale within 3 days else exit`.

use super::Bundle;
use super::control::always_leaves;
use super::diag::AnalysisWarning;
use super::through_event;
use crate::diagnostics::{Diagnostics, ss};
use crate::model::FlowInfo;
use crate::walk::each_stmt;
use nudge_grammar::ast::{
    EventRef, FlowItem, FlowOption, Stmt, StmtKind, WaitBranchKind, WaitKind,
};
use nudge_grammar::span::Span;

/// An entry that may take an event, in dispatch order.
struct Taker<'a> {
    /// As written: `goal sale`, `on resale #2`.
    written: String,
    event: &'a EventRef,
    /// Has a `where`: takes only some events.
    narrowed: bool,
    /// Leaves the wait for sure when it takes the event.
    leaves: bool,
    kind: TakerKind,
    span: Span,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TakerKind {
    ExitWhen,
    Goal,
    Handler,
}

pub fn check(b: &Bundle<'_, '_>, diags: &mut Diagnostics) {
    for flow in &b.flows {
        let takers = takers(flow);
        for (i, t) in takers.iter().enumerate() {
            if t.kind == TakerKind::ExitWhen {
                continue;
            }
            if let Some(by) = first_taker(&takers[..i], t.event) {
                let what = match t.kind {
                    TakerKind::Goal => format!("`{}`", t.written),
                    _ => format!("handler `{}`", t.written),
                };
                report(what, t.span, by, diags);
            }
        }
        for step in &flow.steps {
            each_stmt(step.stmts(), &mut |s| wait(&takers, s, diags));
        }
    }
}

/// The flow's `exit when`s, `goal`s and handlers, in dispatch order.
fn takers<'a>(flow: &FlowInfo<'a>) -> Vec<Taker<'a>> {
    let mut exits = Vec::new();
    let mut goals = Vec::new();
    let mut handlers = Vec::new();
    for item in &flow.decl.body {
        match item {
            FlowItem::Option(FlowOption::ExitWhen { event, cond, span }) => exits.push(Taker {
                written: format!("exit when {}", event_text(event)),
                event,
                narrowed: cond.is_some(),
                leaves: true,
                kind: TakerKind::ExitWhen,
                span: through_event(*span, event),
            }),
            FlowItem::Option(FlowOption::Goal { event, cond, span }) => goals.push(Taker {
                written: format!("goal {}", event_text(event)),
                event,
                narrowed: cond.is_some(),
                leaves: true,
                kind: TakerKind::Goal,
                span: through_event(*span, event),
            }),
            FlowItem::Handler(h) => handlers.push(Taker {
                written: format!("on {}", event_text(&h.event)),
                event: &h.event,
                narrowed: h.cond.is_some(),
                leaves: always_leaves(&h.body),
                kind: TakerKind::Handler,
                span: through_event(h.span, &h.event),
            }),
            _ => {}
        }
    }
    exits.into_iter().chain(goals).chain(handlers).collect()
}

/// `sale`, `resale #2`.
fn event_text(e: &EventRef) -> String {
    match e.nth {
        Some((n, _)) => format!("{} #{n}", e.name.name),
        None => e.name.name.clone(),
    }
}

/// Does an entry on `by` without `where` take every event `later` names?
fn covers(by: &EventRef, later: &EventRef) -> bool {
    by.name.name == later.name.name
        && match (by.nth, later.nth) {
            (None, _) => true,
            (Some((a, _)), Some((b, _))) => a == b,
            (Some(_), None) => false,
        }
}

/// The first of `takers` that takes every `event`.
fn first_taker<'t, 'a>(takers: &'t [Taker<'a>], event: &EventRef) -> Option<&'t Taker<'a>> {
    takers
        .iter()
        .find(|t| !t.narrowed && covers(t.event, event))
}

fn wait(takers: &[Taker<'_>], s: &Stmt, diags: &mut Diagnostics) {
    let StmtKind::Wait(w) = &s.kind else {
        return;
    };
    match &w.kind {
        WaitKind::For { event, .. } => {
            if let Some(by) = first_taker(takers, event)
                && !by.leaves
            {
                let what = format!("`wait for {}`", event_text(event));
                let span = through_event(s.span, event);
                report(what, span, by, diags);
            }
        }
        WaitKind::Block(branches) => {
            let mut earlier: Vec<(&EventRef, bool, Span)> = Vec::new();
            for br in branches {
                let WaitBranchKind::On { event, cond } = &br.kind else {
                    continue;
                };
                let what = format!("wait branch `on {}`", event_text(event));
                let span = through_event(br.span, event);
                if let Some(by) = first_taker(takers, event) {
                    report(what, span, by, diags);
                } else if let Some((by, _, by_span)) = earlier
                    .iter()
                    .find(|(e, narrowed, _)| !narrowed && covers(e, event))
                {
                    let written = format!("on {}", event_text(by));
                    diags.push(
                        span,
                        AnalysisWarning::ShadowedHandler {
                            what,
                            span: ss(span),
                            by_span: Some(ss(*by_span)),
                            help: format!(
                                "the earlier branch `{written}` of this wait takes every `{}` first; remove this branch, or narrow the earlier one with `where`",
                                event.name.name
                            ),
                        },
                    );
                }
                earlier.push((event, cond.is_some(), span));
            }
        }
        _ => {}
    }
}

fn report(what: String, span: Span, by: &Taker<'_>, diags: &mut Diagnostics) {
    let help = format!(
        "`{}` takes every `{}` first (events go to `exit when`, then `goal`, then handlers in source order, then the branches of the current wait); remove this one, or narrow `{}` with `where`",
        by.written, by.event.name.name, by.written
    );
    diags.push(
        span,
        AnalysisWarning::ShadowedHandler {
            what,
            span: ss(span),
            by_span: (by.span.file == span.file).then(|| ss(by.span)),
            help,
        },
    );
}
