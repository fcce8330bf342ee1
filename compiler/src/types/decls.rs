//! Typing declarations: schema defaults, channel, template and source
//! settings, and the template strings they hold.

use super::scope::{Ctx, EventCtx, Place, TplScope};
use super::{Checker, TypeError};
use crate::diagnostics::{Diagnostics, ss};
use crate::model::Type;
use crate::resolve::resolve_type;
use crate::templates::{self, TemplateError, TemplateSource};
use nudge_grammar::ast::*;
use std::collections::BTreeSet;

static EMPTY: BTreeSet<String> = BTreeSet::new();

fn decl_ctx(place: Place) -> Ctx<'static> {
    Ctx {
        event: if place == Place::Channel {
            EventCtx::Any
        } else {
            EventCtx::Absent
        },
        calls: &EMPTY,
        place,
        contacts: &EMPTY,
    }
}

impl Checker<'_, '_> {
    fn field_defaults(&mut self, fields: &[FieldDecl], d: &mut Diagnostics) {
        let cx = decl_ctx(Place::Define);
        for f in fields {
            if let Some(def) = &f.default {
                let mut scratch = Diagnostics::new();
                let ty = resolve_type(&f.ty, &mut scratch);
                self.expect_ty(def, &ty, &cx, d);
            }
        }
    }

    pub fn contact_decl(&mut self, c: &ContactDecl, d: &mut Diagnostics) {
        self.field_defaults(&c.fields, d);
    }

    pub fn event_decl(&mut self, e: &EventDecl, d: &mut Diagnostics) {
        self.field_defaults(&e.fields, d);
    }

    /// A template string at a place: parse it and check its variables.
    pub fn template_str(&mut self, lit: &StrLit, cx: &Ctx<'_>, d: &mut Diagnostics) {
        let src = TemplateSource::Literal(lit);
        let parsed = match self.template_cache.get(&lit.value) {
            Some(p) => p.clone(),
            None => {
                let p = templates::parse(&lit.value, &src, d);
                self.template_cache.insert(lit.value.clone(), p.clone());
                p
            }
        };
        if let Some(p) = parsed {
            let scope = TplScope {
                env: self.env,
                ctx: cx,
            };
            templates::check_variables(&lit.value, &p, &src, &scope, d);
        }
    }

    /// The strings of a value that are templates (A2: `call … with` values,
    /// `emit` text fields): string literals, also inside list and map literals.
    pub fn template_literals(&mut self, e: &Expr, cx: &Ctx<'_>, d: &mut Diagnostics) {
        match &e.kind {
            ExprKind::Str(lit) => self.template_str(lit, cx, d),
            ExprKind::Paren(inner) => self.template_literals(inner, cx, d),
            ExprKind::List(items) => items.iter().for_each(|i| self.template_literals(i, cx, d)),
            ExprKind::Map(entries) => entries
                .iter()
                .for_each(|en| self.template_literals(&en.value, cx, d)),
            _ => {}
        }
    }

    /// A template value: a string, `file(...)`, or another text expression.
    pub fn template_value(&mut self, e: &Expr, cx: &Ctx<'_>, d: &mut Diagnostics) {
        match &e.kind {
            ExprKind::Str(lit) => self.template_str(lit, cx, d),
            ExprKind::Call { func, args } if func.name == "file" => {
                let Some(Expr {
                    kind: ExprKind::Str(path),
                    ..
                }) = args.first()
                else {
                    self.ty(e, cx, d);
                    return;
                };
                let Some(text) = self.read_file(path, e, d) else {
                    return;
                };
                let src = TemplateSource::File {
                    span: e.span,
                    name: &path.value,
                };
                if let Some(p) = templates::parse(&text, &src, d) {
                    let scope = TplScope {
                        env: self.env,
                        ctx: cx,
                    };
                    templates::check_variables(&text, &p, &src, &scope, d);
                }
            }
            _ => {
                let t = self.ty(e, cx, d);
                if !t.is_textual() && !t.is_dynamic() {
                    d.push(
                        e.span,
                        TypeError::Mismatch {
                            expected: "a text".into(),
                            found: format!("`{t}`"),
                            span: ss(e.span),
                            help: Some("write a string, or `file(\"…\")` for a long body".into()),
                        },
                    );
                }
            }
        }
    }

    fn read_file(&mut self, path: &StrLit, e: &Expr, d: &mut Diagnostics) -> Option<String> {
        let base = self
            .sources
            .get(e.span.file)
            .and_then(|f| f.path.parent().map(|p| p.to_path_buf()))
            .unwrap_or_default();
        let full = crate::files::normalize(&base.join(&path.value));
        let result = match self.file_cache.get(&full) {
            Some(r) => r.clone(),
            None => {
                let r = self.fs.read_to_string(&full);
                self.file_cache.insert(full.clone(), r.clone());
                r
            }
        };
        match result {
            Ok(t) => Some(t),
            Err(reason) => {
                d.push(
                    e.span,
                    TemplateError::MissingFile {
                        path: path.value.clone(),
                        reason,
                        span: ss(e.span),
                    },
                );
                None
            }
        }
    }

    fn rate(&mut self, s: &Setting, d: &mut Diagnostics) {
        match &s.value.kind {
            ExprKind::Rate { count, per } => {
                if matches!(count.kind, ExprKind::Int(0)) || per.seconds() == 0 {
                    d.push(
                        s.value.span,
                        TypeError::OutOfRange {
                            message: format!("`{}` must allow at least one message", s.name.name),
                            span: ss(s.value.span),
                            help: Some("write a positive count and duration: `3 per 1 day`".into()),
                        },
                    );
                }
            }
            _ => {
                d.push(
                    s.value.span,
                    TypeError::Mismatch {
                        expected: "a rate `N per DURATION`".into(),
                        found: "another value".into(),
                        span: ss(s.value.span),
                        help: Some(format!(
                            "write `{} = 50 per second` or `{} = 3 per 1 day`",
                            s.name.name, s.name.name
                        )),
                    },
                );
            }
        }
    }

    fn union_setting(&mut self, s: &Setting, values: &[&str], cx: &Ctx<'_>, d: &mut Diagnostics) {
        let t = Type::Union(values.iter().map(|v| v.to_string()).collect());
        self.expect_ty(&s.value, &t, cx, d);
    }

    pub fn channel_decl(&mut self, c: &ChannelDecl, d: &mut Diagnostics) {
        let cx = decl_ctx(Place::Channel);
        for s in &c.settings {
            match s.name.name.as_str() {
                "rate" | "cap" => self.rate(s, d),
                "port" => self.expect_ty(&s.value, &Type::Int, &cx, d),
                "timeout" => self.expect_ty(&s.value, &Type::Duration, &cx, d),
                "security" => self.union_setting(s, &["starttls", "tls", "none"], &cx, d),
                "method" => {
                    self.union_setting(s, &["GET", "POST", "PUT", "PATCH", "DELETE"], &cx, d)
                }
                "from" | "reply_to" | "host" | "username" | "password" => {
                    self.expect_ty(&s.value, &Type::Text, &cx, d)
                }
                "url" | "webhook" => {
                    if let ExprKind::Str(lit) = &s.value.kind
                        && let Err(help) = super::literals::check_text(&lit.value, &Type::Url)
                    {
                        d.push(
                            s.value.span,
                            TypeError::InvalidFormat {
                                value: lit.value.clone(),
                                what: "URL".into(),
                                span: ss(s.value.span),
                                help: Some(help),
                            },
                        );
                    }
                    self.template_value(&s.value, &cx, d);
                }
                "headers" => match &s.value.kind {
                    ExprKind::Map(entries) => {
                        for en in entries {
                            self.template_value(&en.value, &cx, d);
                        }
                    }
                    _ => self.expect_map(s, d),
                },
                "body" => self.body(&s.value, &cx, d),
                _ => {
                    self.ty(&s.value, &cx, d);
                }
            }
        }
    }

    fn expect_map(&mut self, s: &Setting, d: &mut Diagnostics) {
        d.push(
            s.value.span,
            TypeError::Mismatch {
                expected: "a map `{ \"Name\": value }`".into(),
                found: "another value".into(),
                span: ss(s.value.span),
                help: Some(format!(
                    "write `{} = {{ \"X-Api-Key\": env(\"KEY\") }}`",
                    s.name.name
                )),
            },
        );
    }

    /// A channel body: `json { … }` (strings inside are templates) or a template string.
    fn body(&mut self, e: &Expr, cx: &Ctx<'_>, d: &mut Diagnostics) {
        match &e.kind {
            ExprKind::Json(inner) => self.json_value(inner, cx, d),
            _ => self.template_value(e, cx, d),
        }
    }

    fn json_value(&mut self, e: &Expr, cx: &Ctx<'_>, d: &mut Diagnostics) {
        match &e.kind {
            ExprKind::Map(entries) => {
                for en in entries {
                    self.json_value(&en.value, cx, d);
                }
            }
            ExprKind::List(items) => {
                for i in items {
                    self.json_value(i, cx, d);
                }
            }
            ExprKind::Str(lit) => self.template_str(lit, cx, d),
            _ => {
                self.ty(e, cx, d);
            }
        }
    }

    pub fn template_decl(&mut self, t: &TemplateDecl, d: &mut Diagnostics) {
        // Variables are checked where the template is sent (they depend on
        // `event` there); here: syntax, files, and contact fields.
        let cx = Ctx {
            event: EventCtx::Any,
            calls: &EMPTY,
            place: Place::Decl,
            contacts: &EMPTY,
        };
        for s in &t.settings {
            self.template_value(&s.value, &cx, d);
        }
    }

    pub fn source_decl(&mut self, s: &SourceDecl, d: &mut Diagnostics) {
        let cx = decl_ctx(Place::Decl);
        for e in &s.entries {
            match e {
                SourceEntry::Setting(set) => match set.name.name.as_str() {
                    "contact" => {}
                    "hold" => self.expect_ty(&set.value, &Type::Duration, &cx, d),
                    "dedupe" => self.dedupe(&set.value, &cx, d),
                    _ => self.expect_ty(&set.value, &Type::Text, &cx, d),
                },
                SourceEntry::Fields { settings, .. } => {
                    for f in settings {
                        self.ty(&f.value, &cx, d);
                    }
                }
                SourceEntry::Rename { .. } => {}
            }
        }
    }

    /// `dedupe = …` (LANGUAGE.md A5): text made of postback parameters and
    /// string literals joined with `+`, reading at least one parameter (a
    /// constant would make every postback after the first a duplicate).
    fn dedupe(&mut self, e: &Expr, cx: &Ctx<'_>, d: &mut Diagnostics) {
        let mut parts = Vec::new();
        if let Err(bad) = dedupe_parts(e, &mut parts) {
            self.not_here(
                "this part of `dedupe`",
                bad.span,
                "`dedupe` is text made of postback parameters: `param(\"txid\")`, or several joined with `+`: `param(\"network\") + \":\" + param(\"txid\")`",
                d,
            );
        } else if !parts
            .iter()
            .any(|p| matches!(&p.kind, ExprKind::Call { .. }))
        {
            self.not_here(
                "a `dedupe` without `param(…)`",
                e.span,
                "a constant makes every postback after the first a duplicate; name the parameter that identifies one postback: `dedupe = param(\"txid\")`",
                d,
            );
        } else {
            self.expect_ty(e, &Type::Text, cx, d);
        }
    }
}

/// The pieces of a `dedupe` expression, in order: `param(…)` calls and
/// string literals joined with `+` (parentheses allowed); the first other
/// expression is the error.
pub(crate) fn dedupe_parts<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) -> Result<(), &'e Expr> {
    match &e.kind {
        ExprKind::Paren(inner) => dedupe_parts(inner, out),
        ExprKind::Binary(BinaryOp::Add, l, r) => {
            dedupe_parts(l, out)?;
            dedupe_parts(r, out)
        }
        ExprKind::Str(_) => {
            out.push(e);
            Ok(())
        }
        ExprKind::Call { func, .. } if func.name == "param" => {
            out.push(e);
            Ok(())
        }
        _ => Err(e),
    }
}
