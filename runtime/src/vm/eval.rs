//! Evaluating stack code, and converting values to field types.
//!
//! Reading an unset optional gives `Null`; every comparison that reads
//! `Null` is false; arithmetic with `Null` gives `Null` (the checker makes
//! sure only `time ± duration` can see one). Nothing here panics.

use super::render::{RenderError, RenderKind, render};
use super::request::scope_roots;
use crate::clock;
use nudge_compiler::bundle::{Code, FieldType, Func, Op, Root, Tpl};
use nudge_compiler::value::{Value, format_decimal, format_time};
use nudge_grammar::ast::BinaryOp;
use std::collections::BTreeMap;

/// What the roots of an expression read.
#[derive(Clone, Copy)]
pub struct Scope<'s> {
    pub contact: Option<&'s crate::vm::Contact>,
    pub event: Option<&'s crate::vm::EventValue>,
    /// (flow name, step, entered_at)
    pub flow: Option<(&'s str, &'s str, i64)>,
    pub locals: Option<&'s BTreeMap<String, Value>>,
    /// Named contacts (tests), `message`, `request`, `data`.
    pub named: Option<&'s dyn Fn(&Root) -> Value>,
    pub env: Option<&'s BTreeMap<String, String>>,
    pub now: i64,
}

impl<'s> Scope<'s> {
    pub fn new(now: i64) -> Scope<'s> {
        Scope {
            contact: None,
            event: None,
            flow: None,
            locals: None,
            named: None,
            env: None,
            now,
        }
    }

    fn load(&self, r: &Root) -> Value {
        match r {
            Root::Contact => self.contact.map_or(Value::Null, |c| c.as_value()),
            Root::Event => self.event.map_or(Value::Null, |e| e.as_value()),
            Root::Flow => match self.flow {
                Some((name, step, entered)) => Value::Map(BTreeMap::from([
                    ("name".to_string(), Value::text(name)),
                    ("step".to_string(), Value::text(step)),
                    ("entered_at".to_string(), Value::Time(entered)),
                ])),
                None => Value::Null,
            },
            Root::Local(n) => self
                .locals
                .and_then(|l| l.get(n).cloned())
                .unwrap_or(Value::Null),
            other => self.named.map_or(Value::Null, |f| f(other)),
        }
    }

    /// `ROOT.field` for the contact and the event, read in place; `None`
    /// for other roots (read through [`Scope::load`]).
    fn field(&self, r: &Root, f: &str) -> Option<Value> {
        match r {
            Root::Contact => self.contact.map(|c| c.get(f)),
            Root::Event => self.event.map(|e| match f {
                "name" => Value::text(e.name.as_str()),
                "at" => Value::Time(e.at),
                "nth" => Value::Int(e.nth),
                _ => e.fields.get(f).cloned().unwrap_or_default(),
            }),
            _ => None,
        }
    }

    fn tz(&self) -> &str {
        self.contact.map_or("UTC", |c| c.timezone())
    }
}

/// Evaluate compiled code. A template that fails to render (only `call …
/// with` and `emit` values hold templates, and they use [`try_eval`]) reads
/// as unset here.
pub fn eval(code: &Code, s: &Scope<'_>) -> Value {
    try_eval(code, s).unwrap_or_default()
}

/// Evaluate compiled code; the error of a template that cannot be rendered.
pub fn try_eval(code: &Code, s: &Scope<'_>) -> Result<Value, RenderError> {
    let mut st: Vec<Value> = Vec::with_capacity(8);
    let mut ops = code.0.iter().peekable();
    while let Some(op) = ops.next() {
        match op {
            Op::Push(v) => st.push(v.clone()),
            Op::Load(r) => {
                // `contact.F` / `event.F`: read the one field instead of
                // copying the whole record into a map first (same result)
                if let Some(Op::Get(f)) = ops.peek()
                    && let Some(v) = s.field(r, f)
                {
                    ops.next();
                    st.push(v);
                } else {
                    st.push(s.load(r));
                }
            }
            Op::Get(f) => {
                let base = st.pop().unwrap_or_default();
                st.push(get(base, f));
            }
            Op::Now => st.push(Value::Time(s.now)),
            Op::Env(n) => st.push(
                s.env
                    .and_then(|e| e.get(n).cloned())
                    .map_or(Value::Null, Value::Text),
            ),
            Op::Not => {
                let v = st.pop().unwrap_or_default();
                st.push(Value::Bool(!v.truthy()));
            }
            Op::Neg => {
                let v = st.pop().unwrap_or_default();
                st.push(match v {
                    Value::Int(i) => Value::Int(i.saturating_neg()),
                    Value::Decimal(d) => Value::Decimal(-d),
                    Value::Duration(d) => Value::Duration(-d),
                    _ => Value::Null,
                });
            }
            Op::Bin(op) => {
                let r = st.pop().unwrap_or_default();
                let l = st.pop().unwrap_or_default();
                st.push(binary(*op, l, r));
            }
            Op::IsSet => {
                let v = st.pop().unwrap_or_default();
                st.push(Value::Bool(!v.is_null()));
            }
            Op::IsNotSet => {
                let v = st.pop().unwrap_or_default();
                st.push(Value::Bool(v.is_null()));
            }
            Op::Call(f, n) => {
                let at = st.len().saturating_sub(*n as usize);
                let args = st.split_off(at);
                st.push(call(*f, args, s.tz()));
            }
            Op::List(n) => {
                let at = st.len().saturating_sub(*n as usize);
                let items = st.split_off(at);
                st.push(Value::List(items));
            }
            Op::Map(keys) => {
                let at = st.len().saturating_sub(keys.len());
                let vals = st.split_off(at);
                st.push(Value::Map(keys.iter().cloned().zip(vals).collect()));
            }
            Op::Render(t, defines) => st.push(Value::Text(render_in(t, defines, s)?)),
        }
    }
    Ok(st.pop().unwrap_or_default())
}

/// A template of `call … with` or `emit`, with the roots of the flow.
fn render_in(t: &Tpl, defines: &[(String, Code)], s: &Scope<'_>) -> Result<String, RenderError> {
    let mut roots = scope_roots(s);
    for (name, code) in defines {
        roots.insert(name.clone(), try_eval(code, s)?);
    }
    render(&t.0, &roots, RenderKind::Text)
}

fn get(base: Value, field: &str) -> Value {
    match base {
        Value::Map(mut m) => m.remove(field).unwrap_or_default(),
        _ => Value::Null,
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Text(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Decimal(d) => Some(format_decimal(*d)),
        Value::Time(t) => Some(format_time(*t)),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn binary(op: BinaryOp, l: Value, r: Value) -> Value {
    use BinaryOp::*;
    match op {
        Or => Value::Bool(l.truthy() || r.truthy()),
        And => Value::Bool(l.truthy() && r.truthy()),
        Coalesce => {
            if l.is_null() {
                r
            } else {
                l
            }
        }
        Eq => Value::Bool(l.equals(&r)),
        Ne => Value::Bool(!l.is_null() && !r.is_null() && !l.equals(&r)),
        Lt | Le | Gt | Ge => Value::Bool(match l.compare(&r) {
            Some(o) => match op {
                Lt => o.is_lt(),
                Le => o.is_le(),
                Gt => o.is_gt(),
                _ => o.is_ge(),
            },
            None => false,
        }),
        In => Value::Bool(contains(&r, &l)),
        Contains => Value::Bool(contains(&l, &r)),
        StartsWith | EndsWith => Value::Bool(match (&l, &r) {
            (Value::Text(a), Value::Text(b)) => {
                if op == StartsWith {
                    a.starts_with(b.as_str())
                } else {
                    a.ends_with(b.as_str())
                }
            }
            _ => false,
        }),
        Matches => Value::Bool(match (&l, &r) {
            (Value::Text(a), Value::Text(p)) => regex::Regex::new(p).is_ok_and(|re| re.is_match(a)),
            _ => false,
        }),
        Add | Sub | Mul | Div | Rem => arith(op, l, r),
    }
}

fn contains(hay: &Value, needle: &Value) -> bool {
    match (hay, needle) {
        (Value::List(items) | Value::Set(items), n) => items.iter().any(|i| i.equals(n)),
        (Value::Text(h), Value::Text(n)) => h.contains(n.as_str()),
        _ => false,
    }
}

fn arith(op: BinaryOp, l: Value, r: Value) -> Value {
    use BinaryOp::*;
    match (op, &l, &r) {
        (_, Value::Null, _) | (_, _, Value::Null) => Value::Null,
        (Add, Value::Int(a), Value::Int(b)) => a
            .checked_add(*b)
            .map_or(Value::Decimal(*a as f64 + *b as f64), Value::Int),
        (Sub, Value::Int(a), Value::Int(b)) => a
            .checked_sub(*b)
            .map_or(Value::Decimal(*a as f64 - *b as f64), Value::Int),
        (Mul, Value::Int(a), Value::Int(b)) => a
            .checked_mul(*b)
            .map_or(Value::Decimal(*a as f64 * *b as f64), Value::Int),
        (Rem, Value::Int(a), Value::Int(b)) => a.checked_rem(*b).map_or(Value::Null, Value::Int),
        (Add, Value::Time(t), Value::Duration(d)) | (Add, Value::Duration(d), Value::Time(t)) => {
            Value::Time(t.saturating_add(*d))
        }
        (Sub, Value::Time(t), Value::Duration(d)) => Value::Time(t.saturating_sub(*d)),
        (Sub, Value::Time(a), Value::Time(b)) => Value::Duration(a.saturating_sub(*b)),
        (Add, Value::Duration(a), Value::Duration(b)) => Value::Duration(a.saturating_add(*b)),
        (Sub, Value::Duration(a), Value::Duration(b)) => Value::Duration(a.saturating_sub(*b)),
        (Mul, Value::Duration(d), Value::Int(k)) | (Mul, Value::Int(k), Value::Duration(d)) => {
            Value::Duration(d.saturating_mul(*k))
        }
        (Div, Value::Duration(d), Value::Int(k)) if *k != 0 => Value::Duration(d / k),
        (Add, Value::Text(a), Value::Text(b)) => Value::Text(format!("{a}{b}")),
        _ => match (l.as_f64(), r.as_f64()) {
            (Some(a), Some(b)) => {
                let v = match op {
                    Add => a + b,
                    Sub => a - b,
                    Mul => a * b,
                    Div if b != 0.0 => a / b,
                    Rem if b != 0.0 => a % b,
                    _ => return Value::Null,
                };
                if v.is_finite() {
                    Value::Decimal(v)
                } else {
                    Value::Null
                }
            }
            _ => Value::Null,
        },
    }
}

fn call(f: Func, args: Vec<Value>, tz: &str) -> Value {
    let a0 = args.first().cloned().unwrap_or_default();
    let text = |g: fn(&str) -> String| match &a0 {
        Value::Text(s) => Value::Text(g(s)),
        _ => Value::Null,
    };
    match f {
        Func::Lower => text(|s| s.to_lowercase()),
        Func::Upper => text(|s| s.to_uppercase()),
        Func::Trim => text(|s| s.trim().to_string()),
        Func::Len => match &a0 {
            Value::Text(s) => Value::Int(s.chars().count() as i64),
            Value::List(v) | Value::Set(v) => Value::Int(v.len() as i64),
            Value::Map(m) => Value::Int(m.len() as i64),
            _ => Value::Null,
        },
        Func::Round => {
            let Some(x) = a0.as_f64() else {
                return Value::Null;
            };
            match args.get(1) {
                Some(Value::Int(places)) => {
                    let k = 10f64.powi((*places).clamp(0, 12) as i32);
                    Value::Decimal((x * k).round() / k)
                }
                _ => Value::Int(x.round() as i64),
            }
        }
        Func::Abs => match a0 {
            Value::Int(i) => Value::Int(i.saturating_abs()),
            Value::Decimal(d) => Value::Decimal(d.abs()),
            Value::Duration(d) => Value::Duration(d.saturating_abs()),
            _ => Value::Null,
        },
        Func::Date | Func::Hour | Func::Minute | Func::Weekday => {
            let Value::Time(t) = a0 else {
                return Value::Null;
            };
            let Ok(parts) = clock::civil_parts(t, tz) else {
                return Value::Null;
            };
            match f {
                Func::Date => {
                    nudge_compiler::value::parse_date(&parts.date).map_or(Value::Null, Value::Date)
                }
                Func::Hour => Value::Int(i64::from(parts.hour)),
                Func::Minute => Value::Int(i64::from(parts.minute)),
                _ => Value::text(parts.weekday.name()),
            }
        }
        Func::Coalesce => args.into_iter().find(|v| !v.is_null()).unwrap_or_default(),
    }
}

/// Convert a value to a field's type; `None` if it does not convert (a
/// dynamically typed JSON value of the wrong shape reads as unset).
pub fn coerce(v: Value, ty: &FieldType) -> Option<Value> {
    if v.is_null() {
        return Some(Value::Null);
    }
    Some(match (ty, v) {
        (FieldType::Json, v) => v,
        (
            FieldType::Text
            | FieldType::Email
            | FieldType::Phone
            | FieldType::Url
            | FieldType::Timezone,
            v,
        ) => Value::Text(text_of(&v)?),
        (FieldType::Union(members), v) => {
            let s = text_of(&v)?;
            if !members.contains(&s) {
                return None;
            }
            Value::Text(s)
        }
        (FieldType::Int, Value::Int(i)) => Value::Int(i),
        (FieldType::Int, Value::Decimal(d)) if d.fract() == 0.0 => Value::Int(d as i64),
        (FieldType::Int, Value::Text(s)) => Value::Int(s.trim().parse().ok()?),
        (FieldType::Decimal, Value::Int(i)) => Value::Decimal(i as f64),
        (FieldType::Decimal, Value::Decimal(d)) => Value::Decimal(d),
        (FieldType::Decimal, Value::Text(s)) => {
            Value::Decimal(s.trim().parse().ok().filter(|d: &f64| d.is_finite())?)
        }
        (FieldType::Bool, Value::Bool(b)) => Value::Bool(b),
        (FieldType::Bool, Value::Text(s)) => Value::Bool(match s.as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => return None,
        }),
        (FieldType::Time, Value::Time(t)) => Value::Time(t),
        (FieldType::Time, Value::Text(s)) => Value::Time(nudge_compiler::value::parse_time(&s)?),
        (FieldType::Time, Value::Int(i)) => Value::Time(i),
        (FieldType::Date, Value::Date(d)) => Value::Date(d),
        (FieldType::Date, Value::Text(s)) => Value::Date(nudge_compiler::value::parse_date(&s)?),
        (FieldType::Duration, Value::Duration(d)) => Value::Duration(d),
        (FieldType::Duration, Value::Int(i)) => Value::Duration(i),
        (FieldType::Set(e), Value::List(items) | Value::Set(items)) => Value::set_of(
            items
                .into_iter()
                .map(|i| coerce(i, e))
                .collect::<Option<Vec<_>>>()?,
        ),
        (FieldType::List(e), Value::List(items) | Value::Set(items)) => Value::List(
            items
                .into_iter()
                .map(|i| coerce(i, e))
                .collect::<Option<Vec<_>>>()?,
        ),
        _ => return None,
    })
}

/// A stable share in [0, 100) for a key (FNV-1a): splits and holdouts.
pub fn hash_share(parts: &[&str]) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    (h % 1_000_000) as f64 / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use nudge_compiler::bundle::Op;

    fn run(ops: Vec<Op>) -> Value {
        eval(&Code(ops), &Scope::new(0))
    }

    #[test]
    fn unset_comparisons_are_false() {
        let v = run(vec![
            Op::Push(Value::Null),
            Op::Push(Value::Int(1)),
            Op::Bin(BinaryOp::Ne),
        ]);
        assert_eq!(v, Value::Bool(false));
        let v = run(vec![
            Op::Push(Value::Null),
            Op::Push(Value::Int(1)),
            Op::Bin(BinaryOp::Lt),
        ]);
        assert_eq!(v, Value::Bool(false));
    }

    #[test]
    fn arithmetic() {
        let v = run(vec![
            Op::Push(Value::Int(1)),
            Op::Push(Value::Decimal(0.5)),
            Op::Bin(BinaryOp::Add),
        ]);
        assert_eq!(v, Value::Decimal(1.5));
        let v = run(vec![
            Op::Push(Value::Time(100)),
            Op::Push(Value::Duration(50)),
            Op::Bin(BinaryOp::Sub),
        ]);
        assert_eq!(v, Value::Time(50));
        let v = run(vec![
            Op::Push(Value::Int(1)),
            Op::Push(Value::Int(0)),
            Op::Bin(BinaryOp::Div),
        ]);
        assert_eq!(v, Value::Null);
    }

    #[test]
    fn coercions() {
        assert_eq!(
            coerce(Value::text("50"), &FieldType::Decimal),
            Some(Value::Decimal(50.0))
        );
        assert_eq!(coerce(Value::text("x"), &FieldType::Int), None);
        assert_eq!(
            coerce(Value::Int(7), &FieldType::Text),
            Some(Value::text("7"))
        );
        assert_eq!(
            coerce(Value::text("gold"), &FieldType::Union(vec!["free".into()])),
            None
        );
    }

    #[test]
    fn shares_are_stable_and_spread() {
        assert_eq!(hash_share(&["c1", "f", "0"]), hash_share(&["c1", "f", "0"]));
        let below: usize = (0..1000)
            .filter(|i| hash_share(&[&i.to_string(), "f"]) < 50.0)
            .count();
        assert!((400..600).contains(&below), "{below}");
    }
}
