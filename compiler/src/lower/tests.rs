//! `test` blocks to [`TestDef`]s: each statement keeps its line and source
//! text so a failing expectation can be reported where it was written.

use super::expr::{Names, code};
use crate::bundle::*;
use crate::files::SourceFile;
use crate::model::Env;
use nudge_grammar::ast::{self, Expect, ExprKind, TestStmtKind};
use std::collections::BTreeSet;

pub(super) fn lower_test(env: &Env<'_>, t: &ast::TestDecl, file: &SourceFile) -> TestDef {
    let line = |off: u32| file.lines.line_col(&file.text, off as usize).0 as u32;
    let calls = BTreeSet::new();
    let mut contacts: BTreeSet<String> = BTreeSet::new();
    let mut steps = Vec::new();
    for s in &t.body {
        let names = Names {
            calls: &calls,
            contacts: &contacts,
        };
        let c = |e: &ast::Expr| code(env, &names, e);
        let fields = |f: &[ast::Setting]| -> Vec<(String, Code)> {
            f.iter()
                .map(|s| (s.name.name.clone(), c(&s.value)))
                .collect()
        };
        let target = |t: &ast::CallTarget| match t {
            ast::CallTarget::Channel(c) => CallTarget::Channel(c.name.clone()),
            ast::CallTarget::Url(u) => CallTarget::Url(Tpl(u.value.clone())),
        };
        let mut new_contact = None;
        let op = match &s.kind {
            TestStmtKind::Env { name, value } => TestOp::Env {
                name: name.name.clone(),
                value: value.value.clone(),
            },
            TestStmtKind::Contact { id, fields: f } => {
                new_contact = id.as_ref().map(|i| i.name.clone());
                TestOp::Contact {
                    id: id.as_ref().map(|i| i.name.clone()),
                    fields: fields(f),
                }
            }
            TestStmtKind::Event {
                name,
                fields: f,
                contact,
            } => TestOp::Event {
                name: name.name.clone(),
                fields: f.as_deref().map(fields).unwrap_or_default(),
                contact: contact.as_ref().map(|c| c.name.clone()),
            },
            TestStmtKind::Postback { source, params } => TestOp::Postback {
                source: source.name.clone(),
                params: params
                    .iter()
                    .map(|p| {
                        let v = match &p.value.kind {
                            ExprKind::Str(s) => s.value.clone(),
                            ExprKind::Int(i) => i.to_string(),
                            ExprKind::Decimal(d) => d.clone(),
                            _ => String::new(),
                        };
                        (p.name.name.clone(), v)
                    })
                    .collect(),
            },
            TestStmtKind::Set { target: t, value } => {
                let (contact, field) = match &t.kind {
                    ExprKind::Field(base, f) => match &base.kind {
                        ExprKind::Name(n) if n.name != "contact" => {
                            (Some(n.name.clone()), f.name.clone())
                        }
                        _ => (None, f.name.clone()),
                    },
                    _ => (None, String::new()),
                };
                TestOp::Set {
                    contact,
                    field,
                    value: c(value),
                }
            }
            TestStmtKind::After(e) => TestOp::After(c(e)),
            TestStmtKind::At(e) => TestOp::At(c(e)),
            TestStmtKind::Reply {
                target: t,
                status,
                json,
            } => TestOp::Reply {
                target: target(t),
                status: *status,
                json: json.as_ref().map(c),
            },
            TestStmtKind::Expect(e) => match e {
                Expect::In { flow, step } => TestOp::ExpectIn {
                    flow: flow.name.clone(),
                    step: step.name.clone(),
                },
                Expect::Enrolled { flow, negated } => TestOp::ExpectEnrolled {
                    flow: flow.name.clone(),
                    negated: *negated,
                },
                Expect::Completed { flow } => TestOp::ExpectCompleted {
                    flow: flow.name.clone(),
                },
                Expect::Exited { flow } => TestOp::ExpectExited {
                    flow: flow.name.clone(),
                },
                Expect::Converted { flow } => TestOp::ExpectConverted {
                    flow: flow.name.clone(),
                },
                Expect::Sent {
                    channel,
                    template,
                    cond,
                    negated,
                } => TestOp::ExpectSent {
                    channel: channel.name.clone(),
                    template: template.as_ref().map(|t| t.name.clone()),
                    cond: cond.as_ref().map(c),
                    negated: *negated,
                },
                Expect::NothingSent => TestOp::ExpectNothingSent,
                Expect::Called { target: t, cond } => TestOp::ExpectCalled {
                    target: target(t),
                    cond: cond.as_ref().map(c),
                },
                Expect::Cond(e) => TestOp::Expect(c(e)),
            },
        };
        steps.push(TestStep {
            op,
            line: line(s.span.start),
            text: file.text.get(s.span.range()).unwrap_or("").to_string(),
        });
        if let Some(id) = new_contact {
            contacts.insert(id);
        }
    }
    TestDef {
        name: t.name.value.clone(),
        file: file.name.clone(),
        line: line(t.span.start),
        steps,
    }
}
