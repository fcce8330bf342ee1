//! Flow statements, `wait` in all its forms included.
//!
//! Takes a [`Stmt`] and a [`Printer`] positioned where the statement starts
//! (after the indentation of its line, or after `->` / `else`); writes it.
//! A simple statement is one line, so short handler, wait-branch, split and
//! `else` bodies stay on the line that introduces them; blocks (`{ … }`,
//! `if`, `split`, `wait { … }`) open on that line and continue one statement
//! per line, `}` at the introducing line's indentation.

use super::decl::{clock, event_ref, settings, where_clause};
use super::expr::expr;
use super::lit;
use super::printer::{Printer, Slot};
use nudge_grammar::ast::*;

pub(super) fn stmt(p: &mut Printer, s: &Stmt) {
    let w = p.width();
    match &s.kind {
        StmtKind::Send {
            channel,
            content,
            to,
            force,
        } => {
            p.write(&format!("send {} ", channel.name));
            match content {
                Content::Template(t) => p.write(&t.name),
                Content::Inline(text) => p.write(&lit::string(text, w)),
                Content::Fields(fields, span) => {
                    let (start, close) = (span.start as usize, p.close_of(*span));
                    settings(p, fields, start, close);
                }
            }
            if let Some(to) = to {
                let to = expr(to, p.width());
                p.write(&format!(" to {to}"));
            }
            if *force {
                p.write(" force");
            }
        }
        StmtKind::Call {
            target,
            with,
            with_span,
            as_name,
        } => {
            p.write(&format!("call {}", call_target(target, w)));
            if let Some(with) = with {
                p.write(" with ");
                let span = with_span.unwrap_or(s.span);
                let (start, close) = (span.start as usize, p.close_of(span));
                settings(p, with, start, close);
            }
            if let Some(name) = as_name {
                p.write(&format!(" as {}", name.name));
            }
        }
        StmtKind::Set { target, value } => {
            p.write(&format!("set {} = {}", expr(target, w), expr(value, w)));
        }
        StmtKind::Unset { target } => p.write(&format!("unset {}", expr(target, w))),
        StmtKind::Add { value, target } => {
            p.write(&format!("add {} to {}", expr(value, w), expr(target, w)));
        }
        StmtKind::Remove { value, target } => {
            p.write(&format!(
                "remove {} from {}",
                expr(value, w),
                expr(target, w)
            ));
        }
        StmtKind::Tag { value } => p.write(&format!("tag {}", expr(value, w))),
        StmtKind::Untag { value } => p.write(&format!("untag {}", expr(value, w))),
        StmtKind::If {
            branches,
            otherwise,
        } => {
            for (i, (cond, body)) in branches.iter().enumerate() {
                let keyword = if i == 0 { "if" } else { " else if" };
                p.write(&format!("{keyword} {} {{", expr(cond, w)));
                let end = body.last().map_or(cond.span.end, |b| b.span.end);
                let close = p.close_after(end as usize);
                stmts(p, body, close);
            }
            if let Some(body) = otherwise {
                p.write(" else {");
                stmts(p, body, p.close_of(s.span));
            }
        }
        StmtKind::Split { arms } => {
            p.write("split {");
            p.block(
                arms,
                p.close_of(s.span),
                |a| Slot::plain(a.span),
                |p, a| {
                    p.write(&format!("{} -> ", lit::percent(&a.share)));
                    stmt(p, &a.body);
                },
            );
        }
        StmtKind::Wait(wait) => {
            p.write("wait ");
            wait_kind(p, &wait.kind, s);
            if let Some(within) = &wait.within {
                let d = expr(&within.duration, p.width());
                p.write(&format!(" within {d}"));
                if let Some(other) = &within.otherwise {
                    p.write(" else ");
                    stmt(p, other);
                }
            }
        }
        StmtKind::Goto { target } => {
            p.write(&format!("goto {}", target.first.name));
            if let Some(second) = &target.second {
                p.write(&format!(".{}", second.name));
            }
        }
        StmtKind::Start { flow } => p.write(&format!("start {}", flow.name)),
        StmtKind::Stop { flow } => p.write(&format!("stop {}", flow.name)),
        StmtKind::Exit => p.write("exit"),
        StmtKind::Emit { event, fields } => {
            p.write(&format!("emit {}", event.name));
            if let Some(fields) = fields {
                p.write(" ");
                let (start, close) = (event.span.end as usize, p.close_of(s.span));
                settings(p, fields, start, close);
            }
        }
        StmtKind::Log { text } => p.write(&format!("log {}", lit::string(text, w))),
        StmtKind::Block(body) => {
            p.write("{");
            stmts(p, body, p.close_of(s.span));
        }
    }
}

/// The rest of a statement block whose `{` was just written.
fn stmts(p: &mut Printer, body: &[Stmt], close: usize) {
    p.block(body, close, |s| Slot::plain(s.span), stmt);
}

/// A `call`, `reply` or `expect called` target: a channel or a URL string.
pub(super) fn call_target(t: &CallTarget, indent: usize) -> String {
    match t {
        CallTarget::Channel(c) => c.name.clone(),
        CallTarget::Url(u) => lit::string(u, indent),
    }
}

fn wait_kind(p: &mut Printer, kind: &WaitKind, s: &Stmt) {
    let w = p.width();
    match kind {
        WaitKind::Duration(d) => p.write(&expr(d, w)),
        WaitKind::Until(e) => p.write(&format!("until {}", expr(e, w))),
        WaitKind::Clock { day, time, local } => {
            p.write(&format!("until {}", clock(*day, time, *local)));
        }
        WaitKind::For { event, cond } => {
            let cond = where_clause(cond.as_ref(), w);
            p.write(&format!("for {}{cond}", event_ref(event)));
        }
        WaitKind::Block(branches) => {
            p.write("{");
            // The block's `}` is not the statement's last character when a
            // `within` follows: find it after the last branch.
            let end = branches
                .last()
                .map_or(s.span.start as usize + "wait".len(), |b| {
                    b.span.end as usize
                });
            let close = p.close_after(end);
            p.block(branches, close, |b| Slot::plain(b.span), branch);
        }
    }
}

fn branch(p: &mut Printer, b: &WaitBranch) {
    let w = p.width();
    let head = match &b.kind {
        WaitBranchKind::On { event, cond } => {
            format!("on {}{}", event_ref(event), where_clause(cond.as_ref(), w))
        }
        WaitBranchKind::Until(e) => format!("until {}", expr(e, w)),
        WaitBranchKind::After(e) => format!("after {}", expr(e, w)),
    };
    p.write(&head);
    p.write(" -> ");
    stmt(p, &b.body);
}
