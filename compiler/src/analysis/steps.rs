//! The step graph of the whole bundle: `goto` loops that never wait
//! (`loop_without_wait`), steps never entered (`unreachable_step`), and the
//! statements [`control`](super::control) finds dead (`unreachable_code`).
//!
//! Nodes are steps `(flow, step)`. From a step's entry there is an edge to
//! each `goto` target reached without passing a `wait`, and to the next step
//! when the step's end is so reached (fall-through). Flow-level handlers run
//! only while the contact waits, so their `goto`s give no edge. Every cycle
//! of this graph is a loop that can run without waiting; as fall-through
//! only goes forward, every cycle has a `goto` in it. Each strongly
//! connected part with a cycle is reported once, at one `goto`.

use super::control::{Reach, Scan};
use super::diag::{AnalysisError, AnalysisWarning};
use super::head;
use super::{Bundle, StepId};
use crate::diagnostics::{Diagnostics, ss};
use crate::walk::each_flow_stmt;
use nudge_grammar::ast::{FlowItem, GotoTarget, StmtKind};
use nudge_grammar::span::Span;
use std::collections::{BTreeMap, HashSet, VecDeque};

/// An edge of the step graph; `goto` is `None` for a fall-through.
struct Edge<'a> {
    to: usize,
    goto: Option<(Span, &'a GotoTarget)>,
}

/// Scan every step and handler, report dead statements, loops and
/// unreachable steps.
pub fn check(b: &Bundle<'_, '_>, diags: &mut Diagnostics) {
    let mut ids: Vec<StepId> = Vec::new();
    let mut first: Vec<usize> = Vec::new();
    for (f, flow) in b.flows.iter().enumerate() {
        first.push(ids.len());
        ids.extend((0..flow.steps.len()).map(|s| (f, s)));
    }
    let node = |(f, s): StepId| first[f] + s;

    let mut edges: Vec<Vec<Edge<'_>>> = (0..ids.len()).map(|_| Vec::new()).collect();
    let mut ends: Vec<Reach> = vec![Reach::NONE; ids.len()];
    for (f, flow) in b.flows.iter().enumerate() {
        for (s, step) in flow.steps.iter().enumerate() {
            let mut scan = Scan::default();
            let end = scan.block(step.stmts(), Reach::FRESH);
            report_dead(&scan, diags);
            let from = node((f, s));
            for g in scan.gotos.iter().filter(|g| g.reach.fresh) {
                if let Some(to) = b.goto_target(f, g.target) {
                    edges[from].push(Edge {
                        to: node(to),
                        goto: Some((g.span, g.target)),
                    });
                }
            }
            if end.fresh && s + 1 < flow.steps.len() {
                edges[from].push(Edge {
                    to: from + 1,
                    goto: None,
                });
            }
            ends[from] = end;
        }
        let mut after_steps = false;
        for item in &flow.decl.body {
            match item {
                FlowItem::Handler(h) => {
                    let mut scan = Scan::default();
                    scan.stmt(&h.body, Reach::WAITED);
                    report_dead(&scan, diags);
                }
                FlowItem::Step(_) => after_steps = true,
                FlowItem::Stmt(st) if after_steps => {
                    let span = head(st);
                    diags.push(
                        span,
                        AnalysisWarning::UnreachableCode {
                            span: ss(span),
                            cause: None,
                            help: "statements after the first `step` belong to no step; move it into a step".into(),
                        },
                    );
                    break;
                }
                _ => {}
            }
        }
    }

    loops(b, &ids, &edges, diags);
    unreachable_steps(b, &first, &ends, diags);
}

fn report_dead(scan: &Scan<'_>, diags: &mut Diagnostics) {
    for d in &scan.dead {
        diags.push(
            d.span,
            AnalysisWarning::UnreachableCode {
                span: ss(d.span),
                cause: d.cause.map(ss),
                help: "every path before it leaves with `goto` or `exit`; remove it, or move it before the statement that leaves".into(),
            },
        );
    }
}

/// Report one `goto` of each strongly connected part of the graph that has a
/// cycle (Kosaraju's algorithm, iterative).
fn loops(b: &Bundle<'_, '_>, ids: &[StepId], edges: &[Vec<Edge<'_>>], diags: &mut Diagnostics) {
    let n = ids.len();
    let mut order = Vec::with_capacity(n);
    let mut seen = vec![false; n];
    for root in 0..n {
        if seen[root] {
            continue;
        }
        seen[root] = true;
        let mut stack = vec![(root, 0usize)];
        while let Some(top) = stack.last_mut() {
            let v = top.0;
            match edges[v].get(top.1) {
                Some(e) => {
                    top.1 += 1;
                    if !seen[e.to] {
                        seen[e.to] = true;
                        stack.push((e.to, 0));
                    }
                }
                None => {
                    order.push(v);
                    stack.pop();
                }
            }
        }
    }
    let mut back: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (v, es) in edges.iter().enumerate() {
        for e in es {
            back[e.to].push(v);
        }
    }
    let mut part = vec![usize::MAX; n];
    let mut parts = 0;
    for &root in order.iter().rev() {
        if part[root] != usize::MAX {
            continue;
        }
        part[root] = parts;
        let mut stack = vec![root];
        while let Some(v) = stack.pop() {
            for &w in &back[v] {
                if part[w] == usize::MAX {
                    part[w] = parts;
                    stack.push(w);
                }
            }
        }
        parts += 1;
    }

    // One `goto` per part: a backward one (to this step or an earlier step of
    // its flow) if there is one, else the first in source order.
    let mut chosen: BTreeMap<usize, (bool, Span, usize, usize, &GotoTarget)> = BTreeMap::new();
    for (v, es) in edges.iter().enumerate() {
        for e in es {
            let Some((span, target)) = e.goto else {
                continue;
            };
            if part[v] != part[e.to] {
                continue;
            }
            let backward = ids[v].0 == ids[e.to].0 && ids[e.to].1 <= ids[v].1;
            let cand = (!backward, span, v, e.to, target);
            let better = chosen
                .get(&part[v])
                .is_none_or(|c| (cand.0, cand.1) < (c.0, c.1));
            if better {
                chosen.insert(part[v], cand);
            }
        }
    }
    for (_, (_, span, from, to, target)) in chosen {
        let cycle = path(edges, &part, to, from);
        let single = cycle.iter().all(|&v| ids[v].0 == ids[from].0);
        let viewer = if single { ids[from].0 } else { usize::MAX };
        let mut names: Vec<String> = cycle
            .iter()
            .map(|&v| format!("`{}`", b.step_name(viewer, ids[v])))
            .collect();
        names.push(format!("`{}`", b.step_name(viewer, ids[to])));
        let written = match &target.second {
            Some(s) => format!("{}.{}", target.first.name, s.name),
            None => target.first.name.clone(),
        };
        diags.push(
            span,
            AnalysisError::LoopWithoutWait {
                target: written,
                span: ss(span),
                help: format!(
                    "the loop {} runs without passing a `wait`; add a `wait` on its way, or leave it with `exit`",
                    names.join(" → ")
                ),
            },
        );
    }
}

/// The nodes of a shortest path from `from` to `to` inside one part, both
/// ends included (`[from]` when they are the same).
fn path(edges: &[Vec<Edge<'_>>], part: &[usize], from: usize, to: usize) -> Vec<usize> {
    let mut prev: Vec<Option<usize>> = vec![None; edges.len()];
    let mut queue = VecDeque::from([from]);
    let mut seen = HashSet::from([from]);
    while let Some(v) = queue.pop_front() {
        if v == to {
            break;
        }
        for e in &edges[v] {
            if part[e.to] == part[from] && seen.insert(e.to) {
                prev[e.to] = Some(v);
                queue.push_back(e.to);
            }
        }
    }
    let mut out = vec![to];
    let mut v = to;
    while let Some(p) = prev[v] {
        out.push(p);
        v = p;
    }
    out.reverse();
    out
}

/// A step that is not first, whose previous step never ends, and that no
/// `goto` anywhere names.
fn unreachable_steps(b: &Bundle<'_, '_>, first: &[usize], ends: &[Reach], diags: &mut Diagnostics) {
    let mut targets: HashSet<StepId> = HashSet::new();
    for (f, flow) in b.flows.iter().enumerate() {
        each_flow_stmt(flow.decl, &mut |s| {
            if let StmtKind::Goto { target } = &s.kind {
                targets.extend(b.goto_target(f, target));
            }
        });
    }
    for (f, flow) in b.flows.iter().enumerate() {
        for (s, step) in flow.steps.iter().enumerate().skip(1) {
            if !ends[first[f] + s - 1].any() && !targets.contains(&(f, s)) {
                diags.push(
                    step.span,
                    AnalysisWarning::UnreachableStep {
                        name: step.name.clone(),
                        span: ss(step.span),
                    },
                );
            }
        }
    }
}
