//! Typing `test` blocks (LANGUAGE.md §8) and event payloads: contacts and
//! events get every required field with the right type, expectations are
//! conditions over the test's contacts, `message.*` and `request.*`.

use super::scope::{Ctx, EventCtx, Place};
use super::{Checker, TypeError};
use crate::diagnostics::{Diagnostics, did_you_mean, ss};
use crate::model::{FieldInfo, Type};
use crate::resolve::ResolveError;
use nudge_grammar::ast::*;
use nudge_grammar::span::Span;
use std::collections::BTreeSet;

static EMPTY: BTreeSet<String> = BTreeSet::new();

impl Checker<'_, '_> {
    /// Fields given for a record (contact or event): known, well typed, and
    /// every required one present.
    fn record_fields(
        &mut self,
        what: &str,
        schema: &[FieldInfo],
        given: &[Setting],
        at: Span,
        cx: &Ctx<'_>,
        d: &mut Diagnostics,
    ) {
        for s in given {
            match schema.iter().find(|f| f.name == s.name.name) {
                Some(f) => self.expect_ty(&s.value, &f.ty, cx, d),
                None => d.push(
                    s.name.span,
                    ResolveError::UnknownField {
                        name: s.name.name.clone(),
                        of: what.to_string(),
                        span: ss(s.name.span),
                        help: did_you_mean(&s.name.name, schema.iter().map(|f| f.name.as_str())),
                    },
                ),
            }
        }
        for f in schema.iter().filter(|f| f.required()) {
            if !given.iter().any(|s| s.name.name == f.name) {
                d.push(
                    at,
                    TypeError::MissingField {
                        what: what.to_string(),
                        field: f.name.clone(),
                        span: ss(at),
                        help: Some(format!("`{}` is required: add `{} = …`", f.name, f.name)),
                    },
                );
            }
        }
    }

    /// The fields of an event raised by `emit` or a test `event`.
    pub fn event_payload(
        &mut self,
        event: &Ident,
        given: &[Setting],
        at: Span,
        cx: &Ctx<'_>,
        d: &mut Diagnostics,
    ) {
        let Some(info) = self.env.events.get(&event.name).cloned() else {
            return;
        };
        let what = format!("event `{}`", event.name);
        self.record_fields(&what, &info.fields, given, at, cx, d);
    }

    pub fn test_decl(&mut self, t: &TestDecl, d: &mut Diagnostics) {
        let mut contacts: BTreeSet<String> = BTreeSet::new();
        let contact_schema = self.env.contact.clone();
        for s in &t.body {
            let cx = Ctx {
                event: EventCtx::Absent,
                calls: &EMPTY,
                place: Place::Test {
                    message: false,
                    request: false,
                },
                contacts: &contacts,
            };
            match &s.kind {
                TestStmtKind::Env { .. } => {}
                TestStmtKind::Contact { id, fields } => {
                    self.record_fields("the contact", &contact_schema, fields, s.span, &cx, d);
                    if let Some(id) = id {
                        contacts.insert(id.name.clone());
                    }
                }
                TestStmtKind::Event { name, fields, .. } => {
                    let cx = Ctx {
                        event: EventCtx::Absent,
                        ..cx
                    };
                    self.event_payload(name, fields.as_deref().unwrap_or(&[]), s.span, &cx, d);
                }
                TestStmtKind::Postback { params, .. } => {
                    for p in params {
                        if !matches!(
                            p.value.kind,
                            ExprKind::Str(_) | ExprKind::Int(_) | ExprKind::Decimal(_)
                        ) {
                            d.push(
                                p.value.span,
                                TypeError::Mismatch {
                                    expected: "a string".into(),
                                    found: "an expression".into(),
                                    span: ss(p.value.span),
                                    help: Some(
                                        "postback parameters are query parameters: `sum = \"50\"`"
                                            .into(),
                                    ),
                                },
                            );
                        }
                    }
                }
                TestStmtKind::Set { target, value } => {
                    if let Some(ty) =
                        super::flow::contact_field_target(self, target, "set", &contacts, d)
                    {
                        self.expect_ty(value, &ty, &cx, d);
                    }
                }
                TestStmtKind::After(e) => self.expect_ty(e, &Type::Duration, &cx, d),
                TestStmtKind::At(e) => self.expect_ty(e, &Type::Time, &cx, d),
                TestStmtKind::Reply {
                    target,
                    status,
                    json,
                } => {
                    if !(100..=599).contains(status) && *status != 0 {
                        d.push(
                            s.span,
                            TypeError::OutOfRange {
                                message: format!("`{status}` is not an HTTP status"),
                                span: ss(s.span),
                                help: Some(
                                    "use a status from 100 to 599, or 0 for a timeout".into(),
                                ),
                            },
                        );
                    }
                    if let CallTarget::Url(u) = target {
                        self.template_str(u, &cx, d);
                    }
                    if let Some(j) = json {
                        self.ty(j, &cx, d);
                    }
                }
                TestStmtKind::Expect(e) => match e {
                    Expect::Cond(c) => self.cond(c, &cx, d),
                    Expect::Sent { cond: Some(c), .. } => {
                        let cx = Ctx {
                            place: Place::Test {
                                message: true,
                                request: false,
                            },
                            ..cx
                        };
                        self.cond(c, &cx, d);
                    }
                    Expect::Called { cond, target } => {
                        if let CallTarget::Url(u) = target {
                            self.template_str(u, &cx, d);
                        }
                        if let Some(c) = cond {
                            let cx = Ctx {
                                place: Place::Test {
                                    message: false,
                                    request: true,
                                },
                                ..cx
                            };
                            self.cond(c, &cx, d);
                        }
                    }
                    _ => {}
                },
            }
        }
    }
}
