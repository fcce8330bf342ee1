//! Declarations never used (`unused`): user-declared events, channels,
//! templates and named conditions.
//!
//! Uses that count: an event named by a flow (trigger, `exit when`, `goal`,
//! handler, `wait for`, wait branch, `emit`) or by a source's `rename`; a
//! channel named by `send` or `call`; a template named by `send`; a named
//! condition read by a flow (conditions, expressions, template strings), a
//! template, a channel, a source, or a named condition that is itself used.
//! Tests do not count: they exercise flows, they are not what makes a
//! declaration useful. Contact fields and sources are never reported.

use super::Bundle;
use super::diag::AnalysisWarning;
use super::reads::{each_name, stmt_parts, template_names};
use crate::diagnostics::{Diagnostics, ss};
use crate::walk::each_flow_stmt;
use nudge_grammar::ast::{
    CallTarget, Content, Expr, FlowItem, FlowOption, SourceEntry, StmtKind, TriggerKind,
    WaitBranchKind, WaitKind,
};
use nudge_grammar::span::Span;
use std::collections::{BTreeSet, HashSet};

#[derive(Default)]
struct Used<'e> {
    events: HashSet<&'e str>,
    channels: HashSet<&'e str>,
    templates: HashSet<&'e str>,
    /// Names read by expressions and template strings outside defines.
    names: HashSet<String>,
}

pub fn check(b: &Bundle<'_, '_>, diags: &mut Diagnostics) {
    let used = collect(b);
    let env = b.env;
    for (name, ev) in &env.events {
        if let Some(span) = ev.span
            && !used.events.contains(name.as_str())
        {
            report(
                "event",
                name,
                span,
                format!(
                    "remove it, or use it in a flow: `when {name}`, `wait for {name}`, `on {name} -> …`"
                ),
                diags,
            );
        }
    }
    for (name, (decl, _)) in &env.channels {
        if !used.channels.contains(name.as_str()) {
            report(
                "channel",
                name,
                decl.name.span,
                format!("remove it, or use it in a flow: `send {name} …` or `call {name}`"),
                diags,
            );
        }
    }
    for (name, (decl, _)) in &env.templates {
        if !used.templates.contains(name.as_str()) {
            report(
                "template",
                name,
                decl.name.span,
                format!("remove it, or send it from a flow: `send CHANNEL {name}`"),
                diags,
            );
        }
    }
    let defines = used_defines(b, &used.names);
    for (name, decl) in &env.defines {
        if !defines.contains(name.as_str()) {
            report(
                "named condition",
                name,
                decl.name.span,
                format!("remove it, or use it in a condition: `if {name} {{ … }}`"),
                diags,
            );
        }
    }
}

/// Every use outside tests.
fn collect<'e>(b: &Bundle<'e, '_>) -> Used<'e> {
    let mut used = Used::default();
    let read = |e: &Expr, names: &mut HashSet<String>| {
        each_name(e, &mut |n| {
            names.insert(n.to_string());
        })
    };
    for flow in &b.flows {
        for item in &flow.decl.body {
            match item {
                FlowItem::Trigger(t) => {
                    match &t.kind {
                        TriggerKind::Event(e) => {
                            used.events.insert(&e.name.name);
                        }
                        TriggerKind::Time(e) => read(e, &mut used.names),
                        TriggerKind::Schedule(_) | TriggerKind::Keyword(_) => {}
                    }
                    t.cond.iter().for_each(|c| read(c, &mut used.names));
                }
                FlowItem::Option(
                    FlowOption::ExitWhen { event, cond, .. } | FlowOption::Goal { event, cond, .. },
                ) => {
                    used.events.insert(&event.name.name);
                    cond.iter().for_each(|c| read(c, &mut used.names));
                }
                FlowItem::Handler(h) => {
                    used.events.insert(&h.event.name.name);
                    h.cond.iter().for_each(|c| read(c, &mut used.names));
                }
                _ => {}
            }
        }
        each_flow_stmt(flow.decl, &mut |s| {
            match &s.kind {
                StmtKind::Send {
                    channel, content, ..
                } => {
                    used.channels.insert(&channel.name);
                    if let Content::Template(t) = content {
                        used.templates.insert(&t.name);
                    }
                }
                StmtKind::Call {
                    target: CallTarget::Channel(c),
                    ..
                } => {
                    used.channels.insert(&c.name);
                }
                StmtKind::Wait(w) => match &w.kind {
                    WaitKind::For { event, .. } => {
                        used.events.insert(&event.name.name);
                    }
                    WaitKind::Block(branches) => {
                        for br in branches {
                            if let WaitBranchKind::On { event, .. } = &br.kind {
                                used.events.insert(&event.name.name);
                            }
                        }
                    }
                    _ => {}
                },
                StmtKind::Emit { event, .. } => {
                    used.events.insert(&event.name);
                }
                _ => {}
            }
            let (exprs, strs) = stmt_parts(s);
            exprs.into_iter().for_each(|e| read(e, &mut used.names));
            for lit in strs {
                used.names
                    .extend(template_names(&lit.value).into_iter().map(|n| n.root));
            }
        });
    }
    let env = b.env;
    for (decl, _) in env.templates.values() {
        decl.settings
            .iter()
            .for_each(|s| read(&s.value, &mut used.names));
    }
    for (decl, _) in env.channels.values() {
        decl.settings
            .iter()
            .for_each(|s| read(&s.value, &mut used.names));
    }
    for src in env.sources.values() {
        for entry in &src.entries {
            match entry {
                SourceEntry::Setting(s) => read(&s.value, &mut used.names),
                SourceEntry::Fields { settings, .. } => {
                    settings
                        .iter()
                        .for_each(|s| read(&s.value, &mut used.names));
                }
                SourceEntry::Rename { pairs, .. } => {
                    used.events
                        .extend(pairs.iter().map(|(_, e)| e.name.as_str()));
                }
            }
        }
    }
    used
}

/// The named conditions read from outside defines, and those they read, and
/// so on.
fn used_defines<'e>(b: &Bundle<'e, '_>, roots: &HashSet<String>) -> BTreeSet<&'e str> {
    let defines = &b.env.defines;
    let mut used: BTreeSet<&'e str> = defines
        .keys()
        .filter(|k| roots.contains(k.as_str()))
        .map(String::as_str)
        .collect();
    let mut todo: Vec<&'e str> = used.iter().copied().collect();
    while let Some(d) = todo.pop() {
        let Some(decl) = defines.get(d) else {
            continue;
        };
        each_name(&decl.value, &mut |n| {
            if let Some((k, _)) = defines.get_key_value(n)
                && used.insert(k.as_str())
            {
                todo.push(k.as_str());
            }
        });
    }
    used
}

fn report(what: &'static str, name: &str, span: Span, help: String, diags: &mut Diagnostics) {
    diags.push(
        span,
        AnalysisWarning::Unused {
            what,
            name: name.to_string(),
            span: ss(span),
            help,
        },
    );
}
