//! Stage 4, analysis: what a program does, beyond its names and types
//! (LANGUAGE.md §6 and §10). Runs only on programs that resolved and
//! type-checked without errors, so every name it meets is known.
//!
//! Takes the [`Env`] and the syntax trees, gives [`AnalysisError`]s and
//! [`AnalysisWarning`]s. The checks, by module:
//!
//! * `control`: one step's statements in order — where control can be,
//!   before or after a `wait`; statements that never run.
//! * `steps`: the graph of steps across flows — `goto` loops that never
//!   wait, steps that are never entered.
//! * `flows`: checks on one flow or statement — `wait` in handlers,
//!   `start`/`stop` of the flow itself, split shares, keywords, flows
//!   nothing enters.
//! * `shadow`: handlers and wait branches that can never fire.
//! * `channels`: what a `send` or `call` gives against what its channel
//!   takes and reads.
//! * `usage`: declarations never used.
//! * `sources`: postback sources without `dedupe`.
//! * `reads`: the expressions and template texts a declaration reads.
//! * this module: the flows of the bundle, numbered (`Bundle`), where a
//!   `goto` leads, and tight spans for labels.
//!
//! INVARIANT: the analysis never stops early; every check runs and reports
//! everything it finds, in no particular order (the pipeline sorts).

mod channels;
mod control;
mod diag;
mod flows;
pub(crate) mod reads;
mod shadow;
mod sources;
mod steps;
mod usage;

pub use diag::{AnalysisError, AnalysisWarning};

use crate::diagnostics::Diagnostics;
use crate::model::{Env, FlowInfo};
use nudge_grammar::ast::{
    CallTarget, Content, EventRef, GotoTarget, Module, Stmt, StmtKind, WaitKind,
};
use nudge_grammar::span::{FileId, Span};
use std::collections::HashMap;

/// Flow analysis: loops, reachability, unused declarations, and the rest of
/// LANGUAGE.md §6.
pub fn analyse(env: &Env<'_>, _modules: &[(FileId, Module)], diags: &mut Diagnostics) {
    let bundle = Bundle::new(env);
    steps::check(&bundle, diags);
    flows::check(&bundle, diags);
    shadow::check(&bundle, diags);
    channels::check(&bundle, diags);
    usage::check(&bundle, diags);
    sources::check(&bundle, diags);
}

/// The environment with its flows in bundle order, numbered: a step of the
/// bundle is `(flow number, step number)`.
pub(crate) struct Bundle<'e, 'a> {
    pub env: &'e Env<'a>,
    pub flows: Vec<&'e FlowInfo<'a>>,
    number: HashMap<&'e str, usize>,
}

/// A step of the bundle: `(flow number, step number)` in [`Bundle::flows`].
pub(crate) type StepId = (usize, usize);

impl<'e, 'a> Bundle<'e, 'a> {
    fn new(env: &'e Env<'a>) -> Bundle<'e, 'a> {
        let flows = env.flows_in_order();
        let number = flows
            .iter()
            .enumerate()
            .map(|(i, f)| (f.decl.name.name.as_str(), i))
            .collect();
        Bundle { env, flows, number }
    }

    /// The number of a flow by name.
    pub fn flow_number(&self, name: &str) -> Option<usize> {
        self.number.get(name).copied()
    }

    /// The step a `goto` in flow number `from` moves to: a step of this flow,
    /// another flow's first step, or a step of another flow. `None` for a
    /// flow without steps (resolve reported every other case).
    pub fn goto_target(&self, from: usize, target: &GotoTarget) -> Option<StepId> {
        let flow = self.flows.get(from)?;
        match &target.second {
            Some(step) => {
                let f = self.flow_number(&target.first.name)?;
                let s = self.flows[f]
                    .steps
                    .iter()
                    .position(|s| s.name == step.name)?;
                Some((f, s))
            }
            None => match flow.steps.iter().position(|s| s.name == target.first.name) {
                Some(s) => Some((from, s)),
                None => {
                    let f = self.flow_number(&target.first.name)?;
                    (!self.flows[f].steps.is_empty()).then_some((f, 0))
                }
            },
        }
    }

    /// A step's name as the user writes it from flow number `from`: `step`
    /// within that flow, `flow.step` otherwise.
    pub fn step_name(&self, from: usize, (f, s): StepId) -> String {
        let flow = self.flows[f];
        let step = flow.steps.get(s).map(|s| s.name.as_str()).unwrap_or("?");
        if f == from {
            step.to_string()
        } else {
            format!("{}.{}", flow.decl.name.name, step)
        }
    }
}

// ---- tight spans for labels -------------------------------------------------
//
// The parser gives a statement (and an event reference, a flow option) the
// span of its grammar rule, which for rules ending in an optional part also
// covers the whitespace and comments after it (`goto a  // back\n`). Names,
// strings and expressions are tight. Labels are built from those: a
// statement's *head* runs from its keyword to the end of its first operands
// (`send sms "hi"`, `wait 1 day`, `goto a`).

/// `start..end` in the file of `from`.
fn upto(from: Span, end: u32) -> Span {
    Span {
        end: end.clamp(from.start, from.end),
        ..from
    }
}

/// The first `len` bytes of a span (a keyword).
fn keyword(s: Span, len: u32) -> Span {
    upto(s, s.start + len)
}

/// The end of an event reference without what follows it: `sale`, `resale #2`.
pub(crate) fn event_end(e: &EventRef) -> u32 {
    e.nth.map(|(_, s)| s.end).unwrap_or(e.name.span.end)
}

/// From `start` of `outer` to the end of event reference `e`: `on sale`,
/// `goal sale`, `wait for resale #2`.
pub(crate) fn through_event(outer: Span, e: &EventRef) -> Span {
    upto(outer, event_end(e))
}

/// A statement from its keyword to the end of its first operands.
pub(crate) fn head(s: &Stmt) -> Span {
    let sp = s.span;
    let end = match &s.kind {
        StmtKind::Send { content, .. } => match content {
            Content::Template(t) => t.span.end,
            Content::Inline(lit) => lit.span.end,
            Content::Fields(_, span) => span.end,
        },
        StmtKind::Call { target, .. } => match target {
            CallTarget::Channel(c) => c.span.end,
            CallTarget::Url(lit) => lit.span.end,
        },
        StmtKind::Set { value, .. } => value.span.end,
        StmtKind::Unset { target }
        | StmtKind::Add { target, .. }
        | StmtKind::Remove { target, .. } => target.span.end,
        StmtKind::Tag { value } | StmtKind::Untag { value } => value.span.end,
        StmtKind::If { branches, .. } => match branches.first() {
            Some((cond, _)) => cond.span.end,
            None => return keyword(sp, 2),
        },
        StmtKind::Wait(w) => match &w.kind {
            WaitKind::Duration(e) | WaitKind::Until(e) => e.span.end,
            WaitKind::Clock { time, .. } => time.span.end,
            WaitKind::For { event, cond } => match cond {
                Some(c) => c.span.end,
                None => event_end(event),
            },
            WaitKind::Block(_) => return keyword(sp, 4),
        },
        StmtKind::Goto { target } => target.second.as_ref().unwrap_or(&target.first).span.end,
        StmtKind::Start { flow } | StmtKind::Stop { flow } => flow.span.end,
        StmtKind::Emit { event, .. } => event.span.end,
        StmtKind::Log { text } => text.span.end,
        StmtKind::Exit => return keyword(sp, 4),
        StmtKind::Split { .. } | StmtKind::Block(_) => return sp,
    };
    upto(sp, end)
}
