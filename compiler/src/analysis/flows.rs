//! Checks on single flows and statements: `wait` in a handler or a wait
//! branch (`wait_in_handler`), `start`/`stop` of the flow itself
//! (`start_self`, `stop_self`), split shares (`split_shares`), keywords used
//! twice (`duplicate_keyword`), and flows nothing enters (`no_trigger`).

use super::Bundle;
use super::diag::{AnalysisError, AnalysisWarning};
use super::head;
use crate::diagnostics::{Diagnostics, ss};
use crate::model::FlowInfo;
use crate::walk::{children, each_flow_stmt};
use nudge_grammar::ast::{FlowItem, Stmt, StmtKind, TriggerKind, WaitKind};
use nudge_grammar::span::Span;
use std::collections::{HashMap, HashSet};

/// Shares are compared with 100% with this tolerance (in percent), so that
/// `33.33% 33.33% 33.34%` adds up.
const SHARE_TOLERANCE: f64 = 1e-6;

pub fn check(b: &Bundle<'_, '_>, diags: &mut Diagnostics) {
    for flow in &b.flows {
        waits_in_handlers(flow, diags);
        each_flow_stmt(flow.decl, &mut |s| stmt(flow, s, diags));
    }
    keywords(b, diags);
    no_trigger(b, diags);
}

/// Where a `wait` is not allowed.
#[derive(Clone, Copy)]
enum Place {
    Handler,
    WaitBranch,
}

fn waits_in_handlers(flow: &FlowInfo<'_>, diags: &mut Diagnostics) {
    for item in &flow.decl.body {
        match item {
            FlowItem::Handler(h) => waits_in(&h.body, Some(Place::Handler), diags),
            FlowItem::Step(step) => {
                for s in &step.body {
                    waits_in(s, None, diags);
                }
            }
            FlowItem::Stmt(s) => waits_in(s, None, diags),
            FlowItem::Trigger(_) | FlowItem::Option(_) => {}
        }
    }
}

/// Report each `wait` inside a handler or a wait branch once, naming the
/// innermost of the two it is in.
fn waits_in(s: &Stmt, place: Option<Place>, diags: &mut Diagnostics) {
    if let StmtKind::Wait(w) = &s.kind {
        if let Some(place) = place {
            let (place, help) = match place {
                Place::Handler => (
                    "a handler",
                    "a handler runs while the contact waits and returns it to that wait; move the statements that wait into a step and `goto` it",
                ),
                Place::WaitBranch => (
                    "a wait branch",
                    "a wait branch runs as its wait ends; put the `wait` after this `wait { … }`, or in a step reached with `goto`",
                ),
            };
            diags.push(
                head(s),
                AnalysisError::WaitInHandler {
                    place,
                    span: ss(head(s)),
                    help: help.into(),
                },
            );
        }
        if let WaitKind::Block(branches) = &w.kind {
            for br in branches {
                waits_in(&br.body, Some(Place::WaitBranch), diags);
            }
        }
        if let Some(body) = w.within.as_ref().and_then(|w| w.otherwise.as_deref()) {
            waits_in(body, place, diags);
        }
        return;
    }
    for child in children(s) {
        waits_in(child, place, diags);
    }
}

fn stmt(flow: &FlowInfo<'_>, s: &Stmt, diags: &mut Diagnostics) {
    let name = &flow.decl.name.name;
    match &s.kind {
        StmtKind::Start { flow: f } if &f.name == name => diags.push(
            head(s),
            AnalysisError::StartSelf {
                flow: name.clone(),
                span: ss(head(s)),
            },
        ),
        StmtKind::Stop { flow: f } if &f.name == name => diags.push(
            head(s),
            AnalysisError::StopSelf {
                flow: name.clone(),
                span: ss(head(s)),
            },
        ),
        StmtKind::Split { arms } => {
            let sum: f64 = arms.iter().map(|a| a.share.value).sum();
            if (sum - 100.0).abs() > SHARE_TOLERANCE {
                let shown = format_percent(sum);
                let diff = format_percent((100.0 - sum).abs());
                let help = if sum < 100.0 {
                    format!(
                        "the shares add up to {shown}%; add {diff}% to them, so that every contact takes an arm"
                    )
                } else {
                    format!("the shares add up to {shown}%; take {diff}% off them")
                };
                diags.push(
                    s.span,
                    AnalysisError::SplitShares {
                        span: ss(s.span),
                        sum: shown,
                        help,
                    },
                );
            }
        }
        _ => {}
    }
}

/// A percentage in its shortest form: `90`, `99.9`.
fn format_percent(v: f64) -> String {
    let rounded = (v * 1e6).round() / 1e6;
    format!("{rounded}")
}

/// The same keyword (after trimming and lowercasing, as matching does) in
/// two triggers; the later one in bundle order is reported.
fn keywords(b: &Bundle<'_, '_>, diags: &mut Diagnostics) {
    let mut first: HashMap<String, (String, Span)> = HashMap::new();
    for flow in &b.flows {
        for item in &flow.decl.body {
            let FlowItem::Trigger(t) = item else {
                continue;
            };
            let TriggerKind::Keyword(k) = &t.kind else {
                continue;
            };
            let folded = k.value.trim().to_lowercase();
            match first.get(&folded) {
                Some((first_flow, first_span)) => diags.push(
                    k.span,
                    AnalysisError::DuplicateKeyword {
                        keyword: k.value.trim().to_string(),
                        first_flow: first_flow.clone(),
                        span: ss(k.span),
                        first: (first_span.file == k.span.file).then(|| ss(*first_span)),
                    },
                ),
                None => {
                    first.insert(folded, (flow.decl.name.name.clone(), k.span));
                }
            }
        }
    }
}

/// A flow without triggers that no other flow `start`s or `goto`s.
fn no_trigger(b: &Bundle<'_, '_>, diags: &mut Diagnostics) {
    let mut entered: HashSet<usize> = HashSet::new();
    for (f, flow) in b.flows.iter().enumerate() {
        each_flow_stmt(flow.decl, &mut |s| {
            let other = match &s.kind {
                StmtKind::Start { flow } => b.flow_number(&flow.name),
                StmtKind::Goto { target } => match b.goto_target(f, target) {
                    Some((g, _)) => Some(g),
                    None => b.flow_number(&target.first.name),
                },
                _ => None,
            };
            entered.extend(other.filter(|&g| g != f));
        });
    }
    for (f, flow) in b.flows.iter().enumerate() {
        let has_trigger = flow
            .decl
            .body
            .iter()
            .any(|i| matches!(i, FlowItem::Trigger(_)));
        if !has_trigger && !entered.contains(&f) {
            let name = &flow.decl.name;
            diags.push(
                name.span,
                AnalysisWarning::NoTrigger {
                    flow: name.name.clone(),
                    span: ss(name.span),
                },
            );
        }
    }
}
