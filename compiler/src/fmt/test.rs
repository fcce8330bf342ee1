//! Statements of `test` declarations (`env`, `contact`, `event`, `postback`,
//! `set`, `after`, `at`, `reply`, `expect …`).
//!
//! Takes a [`TestStmt`] and a [`Printer`] positioned after the line's
//! indentation; writes the statement on that line (its `{ … }` list may go one
//! entry per line, see [`super::decl::braces`]).

use super::decl::{settings, where_clause};
use super::expr::expr;
use super::lit;
use super::printer::Printer;
use super::stmt::call_target;
use nudge_grammar::ast::*;

pub(super) fn test_stmt(p: &mut Printer, s: &TestStmt) {
    let w = p.width();
    match &s.kind {
        TestStmtKind::Env { name, value } => {
            p.write(&format!("env {} = {}", name.name, lit::string(value, w)));
        }
        TestStmtKind::Contact { id, fields } => {
            p.write("contact ");
            if let Some(id) = id {
                p.write(&format!("{} ", id.name));
            }
            let (start, close) = (s.span.start as usize, p.close_of(s.span));
            settings(p, fields, start, close);
        }
        TestStmtKind::Event {
            name,
            fields,
            contact,
        } => {
            p.write(&format!("event {}", name.name));
            if let Some(fields) = fields {
                p.write(" ");
                // `for ID` may follow the list: find its `}` after the last
                // setting.
                let end = fields.last().map_or(name.span.end, |f| f.span.end);
                let close = p.close_after(end as usize);
                settings(p, fields, name.span.end as usize, close);
            }
            if let Some(contact) = contact {
                p.write(&format!(" for {}", contact.name));
            }
        }
        TestStmtKind::Postback { source, params } => {
            p.write(&format!("postback {} ", source.name));
            let (start, close) = (source.span.end as usize, p.close_of(s.span));
            settings(p, params, start, close);
        }
        TestStmtKind::Set { target, value } => {
            p.write(&format!("set {} = {}", expr(target, w), expr(value, w)));
        }
        TestStmtKind::After(d) => p.write(&format!("after {}", expr(d, w))),
        TestStmtKind::At(t) => p.write(&format!("at {}", expr(t, w))),
        TestStmtKind::Reply {
            target,
            status,
            json,
        } => {
            p.write(&format!("reply {} status {status}", call_target(target, w)));
            if let Some(json) = json {
                p.write(&format!(" json {}", expr(json, w)));
            }
        }
        TestStmtKind::Expect(e) => {
            p.write("expect ");
            p.write(&expect(e, w));
        }
    }
}

fn expect(e: &Expect, w: usize) -> String {
    match e {
        Expect::In { flow, step } => format!("in {}.{}", flow.name, step.name),
        Expect::Enrolled { flow, negated } => {
            format!("{}enrolled {}", not(*negated), flow.name)
        }
        Expect::Completed { flow } => format!("completed {}", flow.name),
        Expect::Exited { flow } => format!("exited {}", flow.name),
        Expect::Converted { flow } => format!("converted {}", flow.name),
        Expect::Sent {
            channel,
            template,
            cond,
            negated,
        } => {
            let template = template
                .as_ref()
                .map_or_else(String::new, |t| format!(" {}", t.name));
            format!(
                "{}sent {}{template}{}",
                not(*negated),
                channel.name,
                where_clause(cond.as_ref(), w)
            )
        }
        Expect::NothingSent => "nothing sent".to_string(),
        Expect::Called { target, cond } => format!(
            "called {}{}",
            call_target(target, w),
            where_clause(cond.as_ref(), w)
        ),
        Expect::Cond(c) => expr(c, w),
    }
}

fn not(negated: bool) -> &'static str {
    if negated { "not " } else { "" }
}
