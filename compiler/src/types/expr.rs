//! Typing one expression (LANGUAGE.md §3, §5.6): operands, operators,
//! functions, and the checks of literals against the type they must have.

use super::constant;
use super::literals;
use super::scope::{Ctx, EventCtx, Place, record_field};
use super::{Checker, TypeError};
use crate::diagnostics::{Diagnostics, did_you_mean, ss};
use crate::model::Type;
use crate::resolve::ResolveError;
use nudge_grammar::ast::{BinaryOp, Expr, ExprKind, Ident, UnaryOp};
use nudge_grammar::span::Span;

const FUNCTIONS: [&str; 14] = [
    "lower", "upper", "trim", "len", "round", "abs", "date", "hour", "weekday", "coalesce", "env",
    "file", "param", "minute",
];

fn show(t: &Type) -> String {
    format!("`{t}`")
}

impl Checker<'_, '_> {
    /// Check that a condition is `bool`.
    pub fn cond(&mut self, e: &Expr, cx: &Ctx<'_>, d: &mut Diagnostics) {
        let t = self.ty(e, cx, d);
        if !matches!(t.base(), Type::Bool) && !t.is_dynamic() {
            let help = match t.base() {
                Type::Int | Type::Decimal => Some("compare it: `… > 0`".to_string()),
                t if t.is_textual() => {
                    Some("compare it: `… == \"value\"`, or test `… is set`".to_string())
                }
                _ => None,
            };
            d.push(
                e.span,
                TypeError::ConditionNotBool {
                    found: show(&t),
                    span: ss(e.span),
                    help,
                },
            );
        }
    }

    /// Check that `e` can be stored where `want` is expected; string literals
    /// are checked against formatted types and unions.
    pub fn expect_ty(&mut self, e: &Expr, want: &Type, cx: &Ctx<'_>, d: &mut Diagnostics) {
        if let ExprKind::Str(s) = &e.kind {
            if let Err(help) = literals::check_text(&s.value, want) {
                self.bad_literal(&s.value, want, e.span, help, d);
                return;
            }
            if want.is_textual() || want.is_dynamic() {
                return;
            }
        }
        if let (ExprKind::List(items), Type::Set(elem) | Type::List(elem)) = (&e.kind, want.base())
        {
            for i in items {
                self.expect_ty(i, elem, cx, d);
            }
            return;
        }
        let t = self.ty(e, cx, d);
        if !t.assignable_to(want) {
            let help = if t.is_optional() && t.base().assignable_to(want) {
                Some("this may be unset: give a default with `?? …`".to_string())
            } else if matches!(t.base(), Type::Text) && want.is_textual() {
                Some(format!(
                    "only a literal can be checked as {} here",
                    show(want)
                ))
            } else {
                None
            };
            d.push(
                e.span,
                TypeError::Mismatch {
                    expected: show(want),
                    found: show(&t),
                    span: ss(e.span),
                    help,
                },
            );
        }
    }

    fn bad_literal(
        &mut self,
        value: &str,
        want: &Type,
        span: Span,
        help: String,
        d: &mut Diagnostics,
    ) {
        match want.base() {
            Type::Union(_) => d.push(
                span,
                TypeError::NotInUnion {
                    value: value.into(),
                    ty: show(want.base()),
                    span: ss(span),
                    help: Some(help),
                },
            ),
            base => d.push(
                span,
                TypeError::InvalidFormat {
                    value: value.into(),
                    what: match base {
                        Type::Email => "e-mail address".into(),
                        Type::Phone => "phone number".into(),
                        Type::Url => "URL".into(),
                        Type::Timezone => "time zone".into(),
                        other => other.to_string(),
                    },
                    span: ss(span),
                    help: Some(help),
                },
            ),
        }
    }

    /// The type of an expression, reporting what is wrong inside it.
    pub fn ty(&mut self, e: &Expr, cx: &Ctx<'_>, d: &mut Diagnostics) -> Type {
        match &e.kind {
            ExprKind::Str(_) => Type::Text,
            ExprKind::Int(_) => Type::Int,
            ExprKind::Decimal(_) => Type::Decimal,
            ExprKind::Bool(_) => Type::Bool,
            ExprKind::Percent(_) => Type::Percent,
            ExprKind::Duration(lit) => {
                super::time::check_duration(lit, d);
                Type::Duration
            }
            ExprKind::TimeOfDay(_) => Type::TimeOfDay,
            ExprKind::Date(s) => {
                if let Err(message) = literals::valid_date(s) {
                    d.push(
                        e.span,
                        TypeError::InvalidDate {
                            message,
                            span: ss(e.span),
                            help: None,
                        },
                    );
                }
                Type::Date
            }
            ExprKind::Time(s) => {
                match super::time::time_literal(s) {
                    Ok(()) => {}
                    Err(super::time::TimeLitError::Invalid(message)) => d.push(
                        e.span,
                        TypeError::InvalidDate {
                            message,
                            span: ss(e.span),
                            help: Some("write an instant like `2026-12-24T09:00:00Z` or with an offset `+01:00`".into()),
                        },
                    ),
                    Err(super::time::TimeLitError::OutOfRange(message)) => d.push(
                        e.span,
                        TypeError::OutOfRange {
                            message,
                            span: ss(e.span),
                            help: Some("write an instant no later than `9999-12-30T22:00:00Z`".into()),
                        },
                    ),
                }
                Type::Time
            }
            ExprKind::List(items) => {
                let mut elem = Type::Unknown;
                for i in items {
                    let t = self.ty(i, cx, d);
                    if elem == Type::Unknown {
                        elem = t;
                    } else if !t.assignable_to(&elem) {
                        if elem.assignable_to(&t) {
                            elem = t;
                        } else {
                            d.push(
                                i.span,
                                TypeError::Mismatch {
                                    expected: show(&elem),
                                    found: show(&t),
                                    span: ss(i.span),
                                    help: Some("all items of a list have one type".into()),
                                },
                            );
                        }
                    }
                }
                Type::List(Box::new(elem))
            }
            ExprKind::Map(entries) => {
                for en in entries {
                    self.ty(&en.value, cx, d);
                }
                Type::Map
            }
            ExprKind::Json(inner) => {
                self.ty(inner, cx, d);
                Type::Json
            }
            ExprKind::Rate { .. } => {
                d.push(
                    e.span,
                    TypeError::NotAllowedHere {
                        what: "a rate `N per DURATION`".into(),
                        span: ss(e.span),
                        help: Some("rates are channel settings: `rate = 50 per second`, `cap = 3 per 1 day`".into()),
                    },
                );
                Type::Unknown
            }
            ExprKind::Paren(inner) => self.ty(inner, cx, d),
            ExprKind::Name(id) => self.name(id, cx, d),
            ExprKind::Field(base, field) => self.field(base, field, cx, d),
            ExprKind::Call { func, args } => self.call(func, args, e.span, cx, d),
            ExprKind::Unary(UnaryOp::Not, inner) => {
                self.cond(inner, cx, d);
                Type::Bool
            }
            ExprKind::Unary(UnaryOp::Neg, inner) => {
                let t = self.ty(inner, cx, d);
                if !(t.is_numeric() || matches!(t.base(), Type::Duration) || t.is_dynamic()) {
                    self.operands("-", &Type::Int, &t, e.span, None, d);
                }
                t
            }
            ExprKind::IsSet { value, .. } => {
                self.ty(value, cx, d);
                Type::Bool
            }
            ExprKind::Binary(op, l, r) => self.binary(*op, l, r, e.span, cx, d),
        }
    }

    fn name(&mut self, id: &Ident, cx: &Ctx<'_>, d: &mut Diagnostics) -> Type {
        let n = id.name.as_str();
        match n {
            "now" => return Type::Time,
            "message" if cx.place == Place::Channel => return Type::Text,
            "contact" | "event" | "flow" | "data" | "message" | "request" => {
                d.push(
                    id.span,
                    TypeError::NotAValue {
                        name: n.into(),
                        span: ss(id.span),
                        help: Some(format!("read a field: `{n}.…`")),
                    },
                );
                return Type::Unknown;
            }
            _ => {}
        }
        if self.env.defines.contains_key(n) {
            return self.define_type(n, id.span, d);
        }
        if cx.contacts.contains(n) || cx.calls.contains(n) {
            d.push(
                id.span,
                TypeError::NotAValue {
                    name: n.into(),
                    span: ss(id.span),
                    help: Some(format!("read a field: `{n}.…`")),
                },
            );
            return Type::Unknown;
        }
        let mut candidates: Vec<&str> = self.env.defines.keys().map(String::as_str).collect();
        candidates.extend(["now", "contact", "event", "flow"]);
        candidates.extend(cx.contacts.iter().map(String::as_str));
        d.push(
            id.span,
            ResolveError::UnknownName {
                name: n.into(),
                span: ss(id.span),
                help: record_root(cx, n)
                    .map(|root| format!("`{n}` is a field of `{root}`: write `{root}.{n}`"))
                    .or_else(|| did_you_mean(n, candidates))
                    .or_else(|| Some(format!("to name a condition, declare it: `define {n} = …`"))),
            },
        );
        Type::Unknown
    }

    /// The type of a named condition, checked once (cycles reported).
    pub fn define_type(&mut self, name: &str, span: Span, d: &mut Diagnostics) -> Type {
        if let Some(t) = self.define_types.get(name) {
            return t.clone();
        }
        if self.define_stack.iter().any(|n| n == name) {
            d.push(
                span,
                TypeError::RecursiveDefine {
                    name: name.into(),
                    span: ss(span),
                },
            );
            return Type::Unknown;
        }
        let Some(def) = self.env.defines.get(name).copied() else {
            return Type::Unknown;
        };
        self.define_stack.push(name.into());
        let none = Default::default();
        let cx = Ctx {
            event: EventCtx::Absent,
            calls: &none,
            place: Place::Define,
            contacts: &none,
        };
        let t = self.ty(&def.value, &cx, d);
        self.define_stack.pop();
        self.define_types.insert(name.into(), t.clone());
        t
    }

    fn field(&mut self, base: &Expr, field: &Ident, cx: &Ctx<'_>, d: &mut Diagnostics) -> Type {
        let f = field.name.as_str();
        if let ExprKind::Name(root) = &base.kind {
            let r = root.name.as_str();
            let is_test_contact = cx.contacts.contains(r);
            match r {
                _ if r == "contact" || is_test_contact => {
                    return match self.env.contact_field(f) {
                        Some(info) => info.ty.clone(),
                        None => {
                            d.push(
                                field.span,
                                ResolveError::UnknownField {
                                    name: f.into(),
                                    of: "the contact".into(),
                                    span: ss(field.span),
                                    help: did_you_mean(
                                        f,
                                        self.env.contact.iter().map(|c| c.name.as_str()),
                                    ),
                                },
                            );
                            Type::Unknown
                        }
                    };
                }
                "event" => return self.event_field(field, base.span, cx, d),
                "flow" if matches!(cx.place, Place::Flow | Place::Channel) => {
                    return self.record(r, "`flow`", field, "`name`, `step` and `entered_at`", d);
                }
                "message" if matches!(cx.place, Place::Test { message: true, .. }) => {
                    return self.record(
                        r,
                        "`message`",
                        field,
                        "`to`, `subject`, `text`, `html` and `at`",
                        d,
                    );
                }
                "request" if matches!(cx.place, Place::Test { request: true, .. }) => {
                    return self.record(
                        r,
                        "`request`",
                        field,
                        "`method`, `url`, `headers`, `json` and `body`",
                        d,
                    );
                }
                "data" if cx.place == Place::Channel => return Type::Json,
                _ if cx.calls.contains(r) => {
                    return self.record(
                        "call",
                        &format!("the call result `{r}`"),
                        field,
                        "`status` and `json`",
                        d,
                    );
                }
                _ if !self.env.defines.contains_key(r) => {
                    let t = self.name(root, cx, d);
                    return match t.base() {
                        Type::Unknown => Type::Unknown,
                        Type::Json | Type::Map => Type::Json,
                        // e.g. `message.to` in a channel, where `message` is text
                        other => {
                            let help = (r == "message").then(|| {
                                "in a channel, `message` is the rendered text of the `send`; \
                                 read the recipient from `contact`"
                                    .to_string()
                            });
                            d.push(
                                field.span,
                                TypeError::Mismatch {
                                    expected: "a value with fields".into(),
                                    found: show(other),
                                    span: ss(field.span),
                                    help,
                                },
                            );
                            Type::Unknown
                        }
                    };
                }
                _ => {}
            }
        }
        let t = self.ty(base, cx, d);
        match t.base() {
            Type::Json | Type::Map | Type::Unknown => Type::Json,
            other => {
                d.push(
                    field.span,
                    TypeError::Mismatch {
                        expected: "a value with fields".into(),
                        found: show(other),
                        span: ss(field.span),
                        help: None,
                    },
                );
                Type::Unknown
            }
        }
    }

    fn record(
        &mut self,
        root: &str,
        what: &str,
        field: &Ident,
        fields: &str,
        d: &mut Diagnostics,
    ) -> Type {
        match record_field(root, &field.name) {
            Some(t) => t,
            None => {
                d.push(
                    field.span,
                    ResolveError::UnknownField {
                        name: field.name.clone(),
                        of: what.to_string(),
                        span: ss(field.span),
                        help: Some(format!("{what} has {fields}")),
                    },
                );
                Type::Unknown
            }
        }
    }

    fn event_field(&mut self, field: &Ident, at: Span, cx: &Ctx<'_>, d: &mut Diagnostics) -> Type {
        let f = field.name.as_str();
        let ev = match &cx.event {
            EventCtx::Any => return Type::Unknown,
            EventCtx::Absent => {
                d.push(
                    at,
                    TypeError::NoEvent {
                        span: ss(at),
                        help: Some(match cx.place {
                            Place::Define => "a named condition reads `contact` and `now`; compare `event` fields in the flow".into(),
                            _ => "`event` exists in flows, triggers and handlers".into(),
                        }),
                    },
                );
                return Type::Unknown;
            }
            EventCtx::Set(ev) => ev,
        };
        if ev.names.is_empty() {
            d.push(
                at,
                TypeError::NoEvent {
                    span: ss(at),
                    help: Some(
                        "this point is reached by a time or schedule trigger, not by an event"
                            .into(),
                    ),
                },
            );
            return Type::Unknown;
        }
        let base = match f {
            "name" => Some(Type::Text),
            "at" => Some(Type::Time),
            "nth" => Some(Type::Int),
            _ => None,
        };
        if let Some(t) = base {
            return t;
        }
        let mut found: Option<Type> = None;
        let mut missing = Vec::new();
        for n in &ev.names {
            match self.env.events.get(n).and_then(|e| e.field(f)) {
                Some(info) => {
                    if found.is_none() {
                        found = Some(info.ty.clone());
                    }
                }
                None => missing.push(format!("`{n}`")),
            }
        }
        match (found, missing.is_empty()) {
            (Some(t), true) => {
                if ev.none {
                    t.optional()
                } else {
                    t
                }
            }
            (Some(_), false) => {
                d.push(
                    field.span,
                    TypeError::NotCommonField {
                        field: f.into(),
                        span: ss(field.span),
                        missing: missing.join(", "),
                        help: Some(format!(
                            "here `event` can be {}; only fields common to all of them can be read",
                            ev.names
                                .iter()
                                .map(|m| format!("`{m}`"))
                                .collect::<Vec<_>>()
                                .join(" or ")
                        )),
                    },
                );
                Type::Unknown
            }
            (None, _) => {
                let candidates: Vec<String> = ev
                    .names
                    .iter()
                    .filter_map(|n| self.env.events.get(n))
                    .flat_map(|e| e.fields.iter().map(|f| f.name.clone()))
                    .chain(["name", "at", "nth"].map(String::from))
                    .collect();
                let of = if ev.names.len() == 1 {
                    format!(
                        "event `{}`",
                        ev.names.iter().next().map_or("", |s| s.as_str())
                    )
                } else {
                    format!(
                        "the events {}",
                        ev.names
                            .iter()
                            .map(|m| format!("`{m}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                d.push(
                    field.span,
                    ResolveError::UnknownField {
                        name: f.into(),
                        of,
                        span: ss(field.span),
                        help: did_you_mean(f, candidates.iter().map(String::as_str)),
                    },
                );
                Type::Unknown
            }
        }
    }

    fn call(
        &mut self,
        func: &Ident,
        args: &[Expr],
        span: Span,
        cx: &Ctx<'_>,
        d: &mut Diagnostics,
    ) -> Type {
        let name = func.name.as_str();
        let arity = |d: &mut Diagnostics, n: &str| {
            d.push(
                span,
                TypeError::WrongArguments {
                    message: format!("`{name}` takes {n}"),
                    span: ss(span),
                    help: None,
                },
            );
        };
        let literal_arg = |d: &mut Diagnostics, what: &str| -> bool {
            match args {
                [
                    Expr {
                        kind: ExprKind::Str(_),
                        ..
                    },
                ] => true,
                _ => {
                    d.push(
                        span,
                        TypeError::WrongArguments {
                            message: format!("`{name}` takes one string: {what}"),
                            span: ss(span),
                            help: None,
                        },
                    );
                    false
                }
            }
        };
        match name {
            "env" => {
                if !matches!(cx.place, Place::Channel | Place::Decl) {
                    self.not_here(
                        "`env(…)`",
                        span,
                        "`env(\"NAME\")` is read at start, in channel and source settings",
                        d,
                    );
                }
                literal_arg(d, "the variable's name");
                return Type::Text;
            }
            "param" => {
                if cx.place != Place::Decl {
                    self.not_here(
                        "`param(…)`",
                        span,
                        "`param(\"NAME\")` reads a postback parameter in a `source`",
                        d,
                    );
                }
                literal_arg(d, "the parameter's name");
                return Type::Text;
            }
            "file" => {
                if cx.place != Place::Decl {
                    self.not_here(
                        "`file(…)`",
                        span,
                        "`file(\"path\")` is a template body: `html = file(\"welcome.html\")`",
                        d,
                    );
                }
                literal_arg(d, "a path relative to this file");
                return Type::Text;
            }
            _ => {}
        }
        let types: Vec<Type> = args.iter().map(|a| self.ty(a, cx, d)).collect();
        let want = |d: &mut Diagnostics, i: usize, ok: bool, what: &str| {
            if !ok && let (Some(a), Some(t)) = (args.get(i), types.get(i)) {
                d.push(
                    a.span,
                    TypeError::Mismatch {
                        expected: what.into(),
                        found: show(t),
                        span: ss(a.span),
                        help: Some(format!("`{name}` takes {what}")),
                    },
                );
            }
        };
        let one = types.len() == 1;
        let t0 = types.first().cloned().unwrap_or(Type::Unknown);
        match name {
            "lower" | "upper" | "trim" => {
                if !one {
                    arity(d, "one text");
                }
                want(d, 0, t0.is_textual() || t0.is_dynamic(), "`text`");
                if t0.is_optional() {
                    Type::Text.optional()
                } else {
                    Type::Text
                }
            }
            "len" => {
                if !one {
                    arity(d, "one text, set or list");
                }
                let ok = t0.is_textual()
                    || t0.is_dynamic()
                    || matches!(t0.base(), Type::Set(_) | Type::List(_));
                want(d, 0, ok, "a text, set or list");
                Type::Int
            }
            "round" => {
                if types.is_empty() || types.len() > 2 {
                    arity(d, "a number and optionally the decimals to keep");
                }
                want(d, 0, t0.is_numeric() || t0.is_dynamic(), "a number");
                if types.len() == 2 {
                    want(d, 1, matches!(types[1].base(), Type::Int), "`int`");
                    Type::Decimal
                } else {
                    Type::Int
                }
            }
            "abs" => {
                if !one {
                    arity(d, "one number or duration");
                }
                want(
                    d,
                    0,
                    t0.is_numeric() || t0.is_dynamic() || t0.base() == &Type::Duration,
                    "a number",
                );
                t0
            }
            "date" | "hour" | "minute" | "weekday" => {
                if !one {
                    arity(d, "one time");
                }
                want(
                    d,
                    0,
                    matches!(t0.base(), Type::Time) || t0.is_dynamic(),
                    "`time`",
                );
                let out = match name {
                    "date" => Type::Date,
                    "weekday" => Type::Union(
                        [
                            "monday",
                            "tuesday",
                            "wednesday",
                            "thursday",
                            "friday",
                            "saturday",
                            "sunday",
                        ]
                        .map(String::from)
                        .to_vec(),
                    ),
                    _ => Type::Int,
                };
                if t0.is_optional() {
                    out.optional()
                } else {
                    out
                }
            }
            "coalesce" => {
                if types.len() < 2 {
                    arity(d, "two or more values");
                }
                let last = types.last().cloned().unwrap_or(Type::Unknown);
                let base = t0.base().clone();
                for (i, t) in types.iter().enumerate().skip(1) {
                    let ok = t.base().assignable_to(&base) || base.assignable_to(t.base());
                    want(d, i, ok, &show(&base));
                }
                if last.is_optional() {
                    base.optional()
                } else {
                    base
                }
            }
            _ => {
                d.push(
                    func.span,
                    ResolveError::UnknownFunction {
                        name: name.into(),
                        span: ss(func.span),
                        help: did_you_mean(name, FUNCTIONS).or_else(|| {
                            Some("the functions are `lower`, `upper`, `trim`, `len`, `round`, `abs`, `date`, `hour`, `minute`, `weekday`, `coalesce`".into())
                        }),
                    },
                );
                Type::Unknown
            }
        }
    }

    pub(super) fn not_here(&mut self, what: &str, span: Span, help: &str, d: &mut Diagnostics) {
        d.push(
            span,
            TypeError::NotAllowedHere {
                what: what.into(),
                span: ss(span),
                help: Some(help.into()),
            },
        );
    }

    fn operands(
        &mut self,
        op: &str,
        l: &Type,
        r: &Type,
        span: Span,
        help: Option<String>,
        d: &mut Diagnostics,
    ) {
        d.push(
            span,
            TypeError::InvalidOperands {
                op: op.into(),
                left: show(l),
                right: show(r),
                span: ss(span),
                help,
            },
        );
    }

    fn binary(
        &mut self,
        op: BinaryOp,
        l: &Expr,
        r: &Expr,
        span: Span,
        cx: &Ctx<'_>,
        d: &mut Diagnostics,
    ) -> Type {
        use BinaryOp::*;
        match op {
            Or | And => {
                self.cond(l, cx, d);
                self.cond(r, cx, d);
                return Type::Bool;
            }
            Coalesce => return self.coalesce(l, r, span, cx, d),
            _ => {}
        }
        // A string literal compared with a formatted text or a union is checked against it.
        let lt = self.ty(l, cx, d);
        let rt = match (&r.kind, op) {
            (ExprKind::Str(_), Eq | Ne) if !lt.is_dynamic() && lt.is_textual() => {
                self.expect_ty(r, &lt.base().clone(), cx, d);
                lt.base().clone()
            }
            _ => self.ty(r, cx, d),
        };
        if lt.is_dynamic() || rt.is_dynamic() {
            return match op {
                Add | Sub | Mul | Div | Rem => Type::Json,
                _ => Type::Bool,
            };
        }
        let (lb, rb) = (lt.base(), rt.base());
        let sym = op.symbol();
        match op {
            Eq | Ne => {
                let ok = lb.assignable_to(rb)
                    || rb.assignable_to(lb)
                    || (lt.is_numeric() && rt.is_numeric())
                    || (lt.is_textual() && rt.is_textual());
                if !ok {
                    self.operands(
                        sym,
                        lb,
                        rb,
                        span,
                        Some("compare values of the same type".into()),
                        d,
                    );
                }
                Type::Bool
            }
            Lt | Le | Gt | Ge => {
                let ok = (lt.is_numeric() && rt.is_numeric())
                    || (lb == rb
                        && matches!(lb, Type::Time | Type::Date | Type::Duration | Type::Text));
                if !ok {
                    self.operands(
                        sym,
                        lb,
                        rb,
                        span,
                        Some("order compares numbers, times, dates, durations or texts".into()),
                        d,
                    );
                }
                Type::Bool
            }
            In => {
                let ok = match rb {
                    Type::Set(e) | Type::List(e) => {
                        lb.assignable_to(e) || (lt.is_textual() && e.is_textual())
                    }
                    t if t.is_textual() => lt.is_textual(),
                    _ => false,
                };
                if !ok {
                    self.operands(
                        sym,
                        lb,
                        rb,
                        span,
                        Some(
                            "`x in s` looks for a value in a set or list, or a text in a text"
                                .into(),
                        ),
                        d,
                    );
                }
                Type::Bool
            }
            Contains => {
                let ok = match lb {
                    Type::Set(e) | Type::List(e) => {
                        rb.assignable_to(e) || (rt.is_textual() && e.is_textual())
                    }
                    t if t.is_textual() => rt.is_textual(),
                    _ => false,
                };
                if !ok {
                    self.operands(
                        sym,
                        lb,
                        rb,
                        span,
                        Some("`s contains x` looks in a text, set or list".into()),
                        d,
                    );
                }
                Type::Bool
            }
            StartsWith | EndsWith | Matches => {
                if !(lt.is_textual() && rt.is_textual()) {
                    self.operands(
                        sym,
                        lb,
                        rb,
                        span,
                        Some(format!("`{sym}` compares texts")),
                        d,
                    );
                }
                if op == Matches
                    && let ExprKind::Str(s) = &r.kind
                    && let Err(e) = regex::Regex::new(&s.value)
                {
                    let detail = e
                        .to_string()
                        .lines()
                        .last()
                        .unwrap_or("")
                        .trim()
                        .to_string();
                    d.push(
                        r.span,
                        TypeError::InvalidRegex {
                            detail: detail.trim_start_matches("error: ").to_string(),
                            span: ss(r.span),
                            help: Some(
                                "`matches` takes a regular expression like `\"^[0-9]+$\"`".into(),
                            ),
                        },
                    );
                }
                Type::Bool
            }
            Add | Sub | Mul | Div | Rem => {
                let t = self.arith(op, l, &lt, &rt, span, d);
                if t != Type::Unknown {
                    constant_arith(op, l, r, span, d);
                }
                t
            }
            Or | And | Coalesce => Type::Bool,
        }
    }

    fn arith(
        &mut self,
        op: BinaryOp,
        l: &Expr,
        lt: &Type,
        rt: &Type,
        span: Span,
        d: &mut Diagnostics,
    ) -> Type {
        use BinaryOp::*;
        let (lb, rb) = (lt.base(), rt.base());
        // time ± duration works on an optional time: the result is unset when it is
        let time_arith = matches!(
            (op, lb, rb),
            (Add | Sub, Type::Time, Type::Duration) | (Add, Type::Duration, Type::Time)
        );
        if !time_arith && (lt.is_optional() || rt.is_optional()) {
            let which = if lt.is_optional() { l.span } else { span };
            d.push(
                which,
                TypeError::OptionalArithmetic {
                    span: ss(which),
                    help: Some("give a default with `??`: `contact.bonus ?? 0`".into()),
                },
            );
            return Type::Unknown;
        }
        let out = match (op, lb, rb) {
            (Add | Sub | Mul | Rem, Type::Int, Type::Int) => Some(Type::Int),
            (Div, Type::Int, Type::Int) => Some(Type::Decimal),
            (_, a, b) if a.is_numeric() && b.is_numeric() => Some(Type::Decimal),
            (Add | Sub, Type::Time, Type::Duration) | (Add, Type::Duration, Type::Time) => {
                Some(Type::Time)
            }
            (Sub, Type::Time, Type::Time) => Some(Type::Duration),
            (Add | Sub, Type::Duration, Type::Duration) => Some(Type::Duration),
            (Mul, Type::Duration, Type::Int) | (Mul, Type::Int, Type::Duration) => {
                Some(Type::Duration)
            }
            (Div, Type::Duration, Type::Int) => Some(Type::Duration),
            (Add, a, b)
                if lt.is_textual()
                    && rt.is_textual()
                    && matches!(a, Type::Text) | matches!(b, Type::Text) =>
            {
                Some(Type::Text)
            }
            (Add, _, _) if lt.is_textual() && rt.is_textual() => Some(Type::Text),
            _ => None,
        };
        match out {
            Some(t) => {
                if time_arith && (lt.is_optional() || rt.is_optional()) {
                    t.optional()
                } else {
                    t
                }
            }
            None => {
                let help = match (lb, rb) {
                    (a, b) if a.is_textual() || b.is_textual() => {
                        Some("`+` joins two texts; numbers and texts do not mix".into())
                    }
                    (Type::Date, _) | (_, Type::Date) => {
                        Some("date arithmetic is not supported; use a `time`".into())
                    }
                    _ => None,
                };
                self.operands(op.symbol(), lb, rb, span, help, d);
                Type::Unknown
            }
        }
    }

    fn coalesce(
        &mut self,
        l: &Expr,
        r: &Expr,
        span: Span,
        cx: &Ctx<'_>,
        d: &mut Diagnostics,
    ) -> Type {
        let lt = self.ty(l, cx, d);
        let rt = self.ty(r, cx, d);
        if lt.is_dynamic() {
            return rt;
        }
        let base = lt.base().clone();
        if let ExprKind::Str(s) = &r.kind
            && literals::check_text(&s.value, &base).is_ok()
        {
            return base;
        }
        if rt.assignable_to(&base) {
            return if rt.is_optional() {
                base.optional()
            } else {
                base
            };
        }
        if lt.is_textual() && rt.is_textual() {
            return Type::Text;
        }
        if lt.is_numeric() && rt.is_numeric() {
            return Type::Decimal;
        }
        self.operands(
            "??",
            &lt,
            &rt,
            span,
            Some("the default must have the type of the value".into()),
            d,
        );
        Type::Unknown
    }
}

/// In `expect sent … where` and `expect called … where`, the record whose
/// field `name` is (`subject` → `message`, `url` → `request`).
fn record_root(cx: &Ctx<'_>, name: &str) -> Option<&'static str> {
    let Place::Test { message, request } = cx.place else {
        return None;
    };
    [("message", message), ("request", request)]
        .into_iter()
        .find(|(root, readable)| *readable && record_field(root, name).is_some())
        .map(|(root, _)| root)
}

/// Arithmetic whose constant operands fail for sure at run time (amendment
/// A4): a literal zero divisor, or constant `int`s that overflow.
fn constant_arith(op: BinaryOp, l: &Expr, r: &Expr, span: Span, d: &mut Diagnostics) {
    if matches!(op, BinaryOp::Div | BinaryOp::Rem) && constant::is_zero(r) {
        d.push(
            r.span,
            TypeError::DivisionByZero {
                op: op.symbol().to_string(),
                span: ss(r.span),
                help: Some(
                    "dividing by zero fails the enrollment at run time; divide by a value that \
                     cannot be zero, or test it first: `if contact.orders > 0 { … }`"
                        .into(),
                ),
            },
        );
        return;
    }
    if let (Some(a), Some(b)) = (constant::int(l), constant::int(r))
        && op != BinaryOp::Div
        && constant::fold(op, a, b).is_none()
    {
        d.push(
            span,
            TypeError::Overflow {
                expr: format!("{a} {} {b}", op.symbol()),
                span: ss(span),
                help: Some(
                    "`int` is 64-bit (-9223372036854775808 to 9223372036854775807) and its \
                     arithmetic is checked: this would fail the enrollment at run time"
                        .into(),
                ),
            },
        );
    }
}
