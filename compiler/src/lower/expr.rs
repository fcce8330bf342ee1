//! Expressions to stack code. Named conditions are inlined; names are
//! classified by where they read from ([`Root`]).

use crate::bundle::{Code, Func, Op, Root, Tpl};
use crate::model::Env;
use crate::value::{Value, parse_date, parse_time};
use nudge_grammar::ast::{Expr, ExprKind, UnaryOp};
use std::collections::BTreeSet;

/// What the names of an expression can be at its place.
pub struct Names<'n> {
    pub calls: &'n BTreeSet<String>,
    pub contacts: &'n BTreeSet<String>,
}

/// Compile an expression.
pub fn code(env: &Env<'_>, names: &Names<'_>, e: &Expr) -> Code {
    let mut ops = Vec::new();
    emit(env, names, e, &mut ops, 0);
    Code(ops)
}

/// Compile a value whose strings are templates (LANGUAGE.md A2: `call …
/// with` values, `emit` text fields): a string literal with template syntax,
/// also inside list and map literals, is rendered when the value is built.
pub fn template_code(env: &Env<'_>, names: &Names<'_>, e: &Expr) -> Code {
    let mut ops = Vec::new();
    emit_tpl(env, names, e, &mut ops);
    Code(ops)
}

fn emit_tpl(env: &Env<'_>, names: &Names<'_>, e: &Expr, ops: &mut Vec<Op>) {
    match &e.kind {
        ExprKind::Str(lit) if crate::templates::is_template(&lit.value) => {
            let defines = env
                .defines
                .iter()
                .filter(|(n, _)| lit.value.contains(n.as_str()))
                .map(|(n, d)| (n.to_string(), code(env, names, &d.value)))
                .collect();
            ops.push(Op::Render(Tpl(lit.value.clone()), defines));
        }
        ExprKind::Paren(inner) => emit_tpl(env, names, inner, ops),
        ExprKind::List(items) => {
            for i in items {
                emit_tpl(env, names, i, ops);
            }
            ops.push(Op::List(items.len() as u32));
        }
        ExprKind::Map(entries) => {
            for en in entries {
                emit_tpl(env, names, &en.value, ops);
            }
            ops.push(Op::Map(
                entries.iter().map(|en| en.key.text().to_string()).collect(),
            ));
        }
        _ => emit(env, names, e, ops, 0),
    }
}

/// A literal's value (schema defaults); `None` if not a constant.
pub fn const_value(e: &Expr) -> Option<Value> {
    Some(match &e.kind {
        ExprKind::Str(s) => Value::Text(s.value.clone()),
        ExprKind::Int(i) => Value::Int(*i),
        ExprKind::Decimal(d) => Value::Decimal(d.parse().ok()?),
        ExprKind::Bool(b) => Value::Bool(*b),
        ExprKind::Duration(d) => Value::Duration(i64::try_from(d.seconds()).ok()?),
        ExprKind::Time(t) => Value::Time(parse_time(t)?),
        ExprKind::Date(d) => Value::Date(parse_date(d)?),
        ExprKind::List(items) => Value::List(items.iter().map(const_value).collect::<Option<_>>()?),
        ExprKind::Paren(inner) => const_value(inner)?,
        ExprKind::Unary(UnaryOp::Neg, inner) => match const_value(inner)? {
            Value::Int(i) => Value::Int(-i),
            Value::Decimal(d) => Value::Decimal(-d),
            _ => return None,
        },
        _ => return None,
    })
}

fn root(names: &Names<'_>, name: &str) -> Option<Root> {
    Some(match name {
        "contact" => Root::Contact,
        "event" => Root::Event,
        "flow" => Root::Flow,
        "message" => Root::Message,
        "request" => Root::Request,
        "data" => Root::Data,
        n if names.calls.contains(n) => Root::Local(n.to_string()),
        n if names.contacts.contains(n) => Root::NamedContact(n.to_string()),
        _ => return None,
    })
}

fn emit(env: &Env<'_>, names: &Names<'_>, e: &Expr, ops: &mut Vec<Op>, depth: usize) {
    match &e.kind {
        ExprKind::Paren(inner) | ExprKind::Json(inner) => emit(env, names, inner, ops, depth),
        ExprKind::Name(id) => match id.name.as_str() {
            "now" => ops.push(Op::Now),
            // `message` alone in a channel body: the rendered text
            "message" => ops.push(Op::Load(Root::Message)),
            n => match env.defines.get(n) {
                // INVARIANT: the checker rejected recursive defines; depth guards anyway.
                Some(d) if depth < 64 => emit(env, names, &d.value, ops, depth + 1),
                _ => match root(names, n) {
                    Some(r) => ops.push(Op::Load(r)),
                    None => ops.push(Op::Push(Value::Null)),
                },
            },
        },
        ExprKind::Field(base, field) => {
            emit(env, names, base, ops, depth);
            ops.push(Op::Get(field.name.clone()));
        }
        ExprKind::Call { func, args } => {
            if func.name == "env"
                && let Some(ExprKind::Str(s)) = args.first().map(|a| &a.kind)
            {
                ops.push(Op::Env(s.value.clone()));
                return;
            }
            for a in args {
                emit(env, names, a, ops, depth);
            }
            match Func::from_name(&func.name) {
                Some(f) => ops.push(Op::Call(f, u8::try_from(args.len()).unwrap_or(u8::MAX))),
                None => ops.push(Op::Push(Value::Null)),
            }
        }
        ExprKind::Unary(UnaryOp::Not, inner) => {
            emit(env, names, inner, ops, depth);
            ops.push(Op::Not);
        }
        ExprKind::Unary(UnaryOp::Neg, inner) => {
            emit(env, names, inner, ops, depth);
            ops.push(Op::Neg);
        }
        ExprKind::Binary(op, l, r) => {
            emit(env, names, l, ops, depth);
            emit(env, names, r, ops, depth);
            ops.push(Op::Bin(super::enums::binary_op(*op)));
        }
        ExprKind::IsSet { value, negated } => {
            emit(env, names, value, ops, depth);
            ops.push(if *negated { Op::IsNotSet } else { Op::IsSet });
        }
        ExprKind::List(items) => {
            for i in items {
                emit(env, names, i, ops, depth);
            }
            ops.push(Op::List(items.len() as u32));
        }
        ExprKind::Map(entries) => {
            for en in entries {
                emit(env, names, &en.value, ops, depth);
            }
            ops.push(Op::Map(
                entries.iter().map(|en| en.key.text().to_string()).collect(),
            ));
        }
        ExprKind::Percent(p) => ops.push(Op::Push(Value::Decimal(p.value))),
        ExprKind::TimeOfDay(t) => ops.push(Op::Push(Value::Text(format!(
            "{:02}:{:02}",
            t.hour, t.minute
        )))),
        ExprKind::Rate { .. } => ops.push(Op::Push(Value::Null)),
        _ => ops.push(Op::Push(const_value(e).unwrap_or(Value::Null))),
    }
}
