//! Evaluating stack code, and converting values to field types.
//!
//! Reading an unset optional gives `Null`. `==` and `!=` are each other's
//! negation (LANGUAGE.md amendment A1): unset equals unset and nothing else.
//! Every other comparison that reads `Null` (`< <= > >=`, `in`, `contains`,
//! `starts_with`, `ends_with`, `matches`) is false; arithmetic with `Null`
//! gives `Null` (the checker makes sure only `time ± duration` can see one).
//!
//! A runtime error is an [`EvalError`], never a quiet `Null` (amendment A4):
//! division or remainder by zero, `int` overflow (all `int`, `time` and
//! `duration` arithmetic is checked, `abs`, `round` and negation included), a
//! `decimal` result that is not finite, and an invalid `matches` pattern. The
//! caller fails the enrollment with it. Nothing here panics.

use super::render::{RenderError, RenderKind, render};
use super::request::scope_roots;
use crate::clock;
use nudge_compiler::bundle::{BinaryOp, Code, FieldType, Func, Op, Root, Tpl};
use nudge_compiler::value::{Value, format_decimal, format_time};
use std::collections::BTreeMap;

/// Why an expression, a template or a request could not be evaluated
/// (LANGUAGE.md amendment A4): the enrollment that needed it fails.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// `x / 0`, `x % 0` (also `0.0`, and `duration / 0`).
    #[error("division by zero in `{0}`")]
    DivisionByZero(&'static str),
    /// An `int`, `time` or `duration` result outside 64 bits.
    #[error("integer overflow in `{0}`")]
    Overflow(&'static str),
    /// A `decimal` result that is infinite or not a number.
    #[error("the `decimal` result of `{0}` is not finite")]
    NotFinite(&'static str),
    /// A `matches` pattern (computed at run time) that is not a regular expression.
    #[error("invalid pattern `{pattern}` for `matches`: {reason}")]
    InvalidPattern { pattern: String, reason: String },
    /// A template that cannot be rendered (the message says where).
    #[error("{0}")]
    Template(String),
    /// A request that cannot be built from the channel's settings.
    #[error("{0}")]
    Request(String),
    /// A wait's timer past the instants the clock covers: never a wait
    /// with no timer.
    #[error(
        "this wait's timer is outside the instants the clock covers ({})",
        clock::RANGE_TEXT
    )]
    TimerOutOfRange,
}

impl EvalError {
    /// A short class for metrics: `division_by_zero`, `overflow`,
    /// `not_finite`, `invalid_pattern`, `template`, `request`.
    pub fn reason(&self) -> &'static str {
        match self {
            EvalError::DivisionByZero(_) => "division_by_zero",
            EvalError::Overflow(_) | EvalError::TimerOutOfRange => "overflow",
            EvalError::NotFinite(_) => "not_finite",
            EvalError::InvalidPattern { .. } => "invalid_pattern",
            EvalError::Template(_) => "template",
            EvalError::Request(_) => "request",
        }
    }
}

/// A result of evaluation.
pub type Eval<T = Value> = Result<T, EvalError>;

impl From<RenderError> for EvalError {
    fn from(e: RenderError) -> EvalError {
        EvalError::Template(e.to_string())
    }
}

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

/// Evaluate compiled code.
pub fn eval(code: &Code, s: &Scope<'_>) -> Eval {
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
                st.push(negate(v)?);
            }
            Op::Bin(op) => {
                let r = st.pop().unwrap_or_default();
                let l = st.pop().unwrap_or_default();
                st.push(binary(*op, l, r)?);
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
                st.push(call(*f, args, s.tz())?);
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
fn render_in(t: &Tpl, defines: &[(String, Code)], s: &Scope<'_>) -> Eval<String> {
    let mut roots = scope_roots(s);
    for (name, code) in defines {
        roots.insert(name.clone(), eval(code, s)?);
    }
    Ok(render(&t.0, &roots, RenderKind::Text)?)
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

fn negate(v: Value) -> Eval {
    Ok(match v {
        Value::Int(i) => Value::Int(i.checked_neg().ok_or(EvalError::Overflow("-"))?),
        Value::Decimal(d) => Value::Decimal(-d),
        Value::Duration(d) => Value::Duration(d.checked_neg().ok_or(EvalError::Overflow("-"))?),
        _ => Value::Null,
    })
}

/// `==` (amendment A1): unset equals unset and nothing else.
fn same(l: &Value, r: &Value) -> bool {
    match (l.is_null(), r.is_null()) {
        (true, true) => true,
        (false, false) => l.equals(r),
        _ => false,
    }
}

fn binary(op: BinaryOp, l: Value, r: Value) -> Eval {
    use BinaryOp::*;
    Ok(match op {
        Or => Value::Bool(l.truthy() || r.truthy()),
        And => Value::Bool(l.truthy() && r.truthy()),
        Coalesce => {
            if l.is_null() {
                r
            } else {
                l
            }
        }
        Eq => Value::Bool(same(&l, &r)),
        Ne => Value::Bool(!same(&l, &r)),
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
            (Value::Text(a), Value::Text(p)) => pattern(p)?.is_match(a),
            _ => false,
        }),
        Add | Sub | Mul | Div | Rem => arith(op, &l, &r)?,
    })
}

/// A `matches` pattern, compiled; an invalid one is an error.
fn pattern(p: &str) -> Eval<regex::Regex> {
    regex::Regex::new(p).map_err(|e| EvalError::InvalidPattern {
        pattern: p.chars().take(100).collect(),
        // the syntax error's last line says what is wrong (the lines
        // before repeat the pattern)
        reason: e
            .to_string()
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .trim_start_matches("error: ")
            .to_string(),
    })
}

fn contains(hay: &Value, needle: &Value) -> bool {
    match (hay, needle) {
        (Value::List(items) | Value::Set(items), n) => items.iter().any(|i| i.equals(n)),
        (Value::Text(h), Value::Text(n)) => h.contains(n.as_str()),
        _ => false,
    }
}

/// Checked 64-bit arithmetic: `None` on overflow (the operator names it).
fn checked(op: BinaryOp, a: i64, b: i64) -> Eval<i64> {
    use BinaryOp::*;
    let v = match op {
        Add => a.checked_add(b),
        Sub => a.checked_sub(b),
        Mul => a.checked_mul(b),
        Div | Rem if b == 0 => return Err(EvalError::DivisionByZero(op.symbol())),
        Div => a.checked_div(b),
        Rem => a.checked_rem(b),
        _ => None,
    };
    v.ok_or(EvalError::Overflow(op.symbol()))
}

fn arith(op: BinaryOp, l: &Value, r: &Value) -> Eval {
    use BinaryOp::*;
    use Value::{Duration as Dur, Int, Time};
    Ok(match (op, l, r) {
        (_, Value::Null, _) | (_, _, Value::Null) => Value::Null,
        (Add | Sub | Mul | Rem, Int(a), Int(b)) => Int(checked(op, *a, *b)?),
        (Add, Time(t), Dur(d)) | (Add, Dur(d), Time(t)) => Time(checked(Add, *t, *d)?),
        (Sub, Time(t), Dur(d)) => Time(checked(Sub, *t, *d)?),
        (Sub, Time(a), Time(b)) => Dur(checked(Sub, *a, *b)?),
        (Add | Sub, Dur(a), Dur(b)) => Dur(checked(op, *a, *b)?),
        (Mul, Dur(d), Int(k)) | (Mul, Int(k), Dur(d)) => Dur(checked(Mul, *d, *k)?),
        (Div, Dur(d), Int(k)) => Dur(checked(Div, *d, *k)?),
        (Add, Value::Text(a), Value::Text(b)) => Value::Text(format!("{a}{b}")),
        _ => match (l.as_f64(), r.as_f64()) {
            (Some(a), Some(b)) => Value::Decimal(decimal(op, a, b)?),
            _ => Value::Null,
        },
    })
}

/// `decimal` arithmetic (an `int` operand widened): a zero divisor and a
/// result that is not finite are errors.
fn decimal(op: BinaryOp, a: f64, b: f64) -> Eval<f64> {
    use BinaryOp::*;
    let v = match op {
        Add => a + b,
        Sub => a - b,
        Mul => a * b,
        Div | Rem if b == 0.0 => return Err(EvalError::DivisionByZero(op.symbol())),
        Div => a / b,
        Rem => a % b,
        _ => return Err(EvalError::NotFinite(op.symbol())),
    };
    finite(v, op.symbol())
}

fn finite(v: f64, what: &'static str) -> Eval<f64> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(EvalError::NotFinite(what))
    }
}

/// A whole `f64` as an `int`, if it fits in 64 bits.
fn whole_to_int(x: f64) -> Option<i64> {
    // 2^63 is exact as an f64; i64::MIN is -2^63
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (-LIMIT..LIMIT).contains(&x).then_some(x as i64)
}

fn round(args: &[Value]) -> Eval {
    let Some(x) = args.first().and_then(Value::as_f64) else {
        return Ok(Value::Null);
    };
    Ok(match args.get(1) {
        Some(Value::Int(places)) => {
            let k = 10f64.powi((*places).clamp(0, 12) as i32);
            let scaled = finite(x * k, "round")?;
            Value::Decimal(finite(scaled.round() / k, "round")?)
        }
        _ => Value::Int(whole_to_int(x.round()).ok_or(EvalError::Overflow("round"))?),
    })
}

fn call(f: Func, args: Vec<Value>, tz: &str) -> Eval {
    let a0 = args.first().cloned().unwrap_or_default();
    let text = |g: fn(&str) -> String| match &a0 {
        Value::Text(s) => Value::Text(g(s)),
        _ => Value::Null,
    };
    Ok(match f {
        Func::Lower => text(|s| s.to_lowercase()),
        Func::Upper => text(|s| s.to_uppercase()),
        Func::Trim => text(|s| s.trim().to_string()),
        Func::Len => match &a0 {
            Value::Text(s) => Value::Int(s.chars().count() as i64),
            Value::List(v) | Value::Set(v) => Value::Int(v.len() as i64),
            Value::Map(m) => Value::Int(m.len() as i64),
            _ => Value::Null,
        },
        Func::Round => round(&args)?,
        Func::Abs => match a0 {
            Value::Int(i) => Value::Int(i.checked_abs().ok_or(EvalError::Overflow("abs"))?),
            Value::Decimal(d) => Value::Decimal(d.abs()),
            Value::Duration(d) => {
                Value::Duration(d.checked_abs().ok_or(EvalError::Overflow("abs"))?)
            }
            _ => Value::Null,
        },
        Func::Date | Func::Hour | Func::Minute | Func::Weekday => civil(f, &a0, tz),
        Func::Coalesce => args.into_iter().find(|v| !v.is_null()).unwrap_or_default(),
    })
}

/// `date`, `hour`, `minute`, `weekday` of a `time` in the contact's zone.
fn civil(f: Func, t: &Value, tz: &str) -> Value {
    let Value::Time(t) = t else {
        return Value::Null;
    };
    let Ok(parts) = clock::civil_parts(*t, tz) else {
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
        (FieldType::Int, Value::Decimal(d)) if d.fract() == 0.0 => Value::Int(whole_to_int(d)?),
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

    fn run(ops: Vec<Op>) -> Eval {
        eval(&Code(ops), &Scope::new(0))
    }

    fn bin(l: Value, op: BinaryOp, r: Value) -> Eval {
        run(vec![Op::Push(l), Op::Push(r), Op::Bin(op)])
    }

    #[test]
    fn ne_is_the_negation_of_eq() {
        let cases = [
            (Value::Null, Value::Int(1)),
            (Value::Int(1), Value::Null),
            (Value::Null, Value::Null),
            (Value::Int(1), Value::Int(1)),
            (Value::Int(1), Value::Decimal(2.0)),
            (Value::text("won"), Value::Null),
        ];
        for (l, r) in cases {
            let eq = bin(l.clone(), BinaryOp::Eq, r.clone()).expect("==");
            let ne = bin(l.clone(), BinaryOp::Ne, r.clone()).expect("!=");
            assert_eq!(eq, Value::Bool(!ne.truthy()), "{l:?} vs {r:?}");
        }
        assert_eq!(
            bin(Value::Null, BinaryOp::Eq, Value::Null),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            bin(Value::Null, BinaryOp::Ne, Value::Int(1)),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            bin(Value::Null, BinaryOp::Eq, Value::Int(1)),
            Ok(Value::Bool(false))
        );
    }

    #[test]
    fn other_comparisons_with_unset_stay_false() {
        let t = Value::text("a");
        for (l, op, r) in [
            (Value::Null, BinaryOp::Lt, Value::Int(1)),
            (Value::Null, BinaryOp::Ge, Value::Int(1)),
            (Value::Null, BinaryOp::In, Value::List(vec![t.clone()])),
            (
                Value::List(vec![t.clone()]),
                BinaryOp::Contains,
                Value::Null,
            ),
            (Value::Null, BinaryOp::StartsWith, t.clone()),
            (Value::Null, BinaryOp::EndsWith, t.clone()),
            (Value::Null, BinaryOp::Matches, Value::text("(")),
        ] {
            assert_eq!(bin(l, op, r), Ok(Value::Bool(false)), "{op:?}");
        }
    }

    #[test]
    fn arithmetic() {
        assert_eq!(
            bin(Value::Int(1), BinaryOp::Add, Value::Decimal(0.5)),
            Ok(Value::Decimal(1.5))
        );
        assert_eq!(
            bin(Value::Time(100), BinaryOp::Sub, Value::Duration(50)),
            Ok(Value::Time(50))
        );
        assert_eq!(
            bin(Value::Int(7), BinaryOp::Div, Value::Int(2)),
            Ok(Value::Decimal(3.5))
        );
        assert_eq!(
            bin(Value::Null, BinaryOp::Add, Value::Int(1)),
            Ok(Value::Null)
        );
    }

    #[test]
    fn division_by_zero_is_an_error() {
        for (l, op, r) in [
            (Value::Int(1), BinaryOp::Div, Value::Int(0)),
            (Value::Int(7), BinaryOp::Rem, Value::Int(0)),
            (Value::Decimal(1.5), BinaryOp::Div, Value::Decimal(0.0)),
            (Value::Decimal(1.5), BinaryOp::Rem, Value::Int(0)),
            (Value::Duration(60), BinaryOp::Div, Value::Int(0)),
        ] {
            assert_eq!(
                bin(l, op, r),
                Err(EvalError::DivisionByZero(op.symbol())),
                "{op:?}"
            );
        }
    }

    #[test]
    fn overflow_is_an_error() {
        let max = Value::Int(i64::MAX);
        let min = Value::Int(i64::MIN);
        let over = |r: Eval, op: &'static str| assert_eq!(r, Err(EvalError::Overflow(op)));
        over(
            bin(
                Value::Int(9_223_372_036_854_775_800),
                BinaryOp::Add,
                Value::Int(100),
            ),
            "+",
        );
        over(bin(min.clone(), BinaryOp::Sub, Value::Int(1)), "-");
        over(bin(max.clone(), BinaryOp::Mul, Value::Int(2)), "*");
        over(bin(min.clone(), BinaryOp::Rem, Value::Int(-1)), "%");
        over(run(vec![Op::Push(min.clone()), Op::Neg]), "-");
        over(
            run(vec![Op::Push(min.clone()), Op::Call(Func::Abs, 1)]),
            "abs",
        );
        over(
            run(vec![
                Op::Push(Value::Decimal(1e19)),
                Op::Call(Func::Round, 1),
            ]),
            "round",
        );
        over(
            bin(Value::Time(i64::MAX), BinaryOp::Add, Value::Duration(1)),
            "+",
        );
        over(
            bin(Value::Time(i64::MIN), BinaryOp::Sub, Value::Duration(1)),
            "-",
        );
        over(
            bin(Value::Time(i64::MIN), BinaryOp::Sub, Value::Time(1)),
            "-",
        );
        over(
            bin(Value::Duration(i64::MAX), BinaryOp::Add, Value::Duration(1)),
            "+",
        );
        over(
            bin(Value::Duration(i64::MAX), BinaryOp::Mul, Value::Int(2)),
            "*",
        );
        assert_eq!(
            run(vec![
                Op::Push(Value::Decimal(2.5)),
                Op::Call(Func::Round, 1)
            ]),
            Ok(Value::Int(3))
        );
    }

    #[test]
    fn a_decimal_that_is_not_finite_is_an_error() {
        assert_eq!(
            bin(
                Value::Decimal(1.7e308),
                BinaryOp::Add,
                Value::Decimal(1.7e308)
            ),
            Err(EvalError::NotFinite("+"))
        );
        assert_eq!(
            bin(
                Value::Decimal(1e300),
                BinaryOp::Mul,
                Value::Int(1_000_000_000)
            ),
            Err(EvalError::NotFinite("*"))
        );
    }

    #[test]
    fn an_invalid_pattern_is_an_error() {
        let e = bin(Value::text("abc"), BinaryOp::Matches, Value::text("a(")).expect_err("invalid");
        assert_eq!(e.reason(), "invalid_pattern");
        assert!(
            e.to_string()
                .starts_with("invalid pattern `a(` for `matches`: "),
            "{e}"
        );
        assert!(!e.to_string().contains('\n'), "{e}");
        assert_eq!(
            bin(Value::text("abc"), BinaryOp::Matches, Value::text("^a")),
            Ok(Value::Bool(true))
        );
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
        assert_eq!(coerce(Value::Decimal(1e19), &FieldType::Int), None);
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
