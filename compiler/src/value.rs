//! Run-time values, shared by compiled constants and the VM.
//!
//! Instants are `i64` seconds since the Unix epoch (UTC), dates are days since
//! 1970-01-01, durations are seconds (durations are exact: a day is 24 h).
//! Decimals are `f64`, printed in shortest form and compared numerically with
//! ints (LANGUAGE.md §10). `Null` is an unset optional.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Decimal(f64),
    Text(String),
    Time(i64),
    Date(i32),
    Duration(i64),
    List(Vec<Value>),
    /// Sorted, without duplicates.
    Set(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn text(s: impl Into<String>) -> Value {
        Value::Text(s.into())
    }

    /// Truthiness for conditions: only `true` is true (unset reads false).
    pub fn truthy(&self) -> bool {
        matches!(self, Value::Bool(true))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Decimal(d) => Some(*d),
            _ => None,
        }
    }

    /// A set from any values: sorted, deduplicated.
    pub fn set_of(mut items: Vec<Value>) -> Value {
        items.sort_by(Value::total_cmp);
        items.dedup();
        Value::Set(items)
    }

    /// A total order for sorting sets (numbers numerically, then by kind).
    pub fn total_cmp(a: &Value, b: &Value) -> Ordering {
        if let Some(o) = a.compare(b) {
            return o;
        }
        a.rank().cmp(&b.rank())
    }

    fn rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) | Value::Decimal(_) => 2,
            Value::Text(_) => 3,
            Value::Time(_) => 4,
            Value::Date(_) => 5,
            Value::Duration(_) => 6,
            Value::List(_) => 7,
            Value::Set(_) => 8,
            Value::Map(_) => 9,
        }
    }

    /// Order between two values of comparable kinds; `None` if either is
    /// unset or they do not compare.
    pub fn compare(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Null, _) | (_, Value::Null) => None,
            (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
            (a, b) if a.as_f64().is_some() && b.as_f64().is_some() => {
                a.as_f64()?.partial_cmp(&b.as_f64()?)
            }
            (Value::Text(a), Value::Text(b)) => Some(a.cmp(b)),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (Value::Time(a), Value::Time(b)) => Some(a.cmp(b)),
            (Value::Date(a), Value::Date(b)) => Some(a.cmp(b)),
            (Value::Duration(a), Value::Duration(b)) => Some(a.cmp(b)),
            (Value::List(a) | Value::Set(a), Value::List(b) | Value::Set(b)) => {
                for (x, y) in a.iter().zip(b) {
                    match x.compare(y)? {
                        Ordering::Equal => {}
                        o => return Some(o),
                    }
                }
                Some(a.len().cmp(&b.len()))
            }
            (Value::Map(a), Value::Map(b)) => (a == b).then_some(Ordering::Equal),
            _ => None,
        }
    }

    /// Equality of two values (numbers numerically); an unset value equals
    /// nothing here. The VM's `==` adds that unset equals unset (A1).
    pub fn equals(&self, other: &Value) -> bool {
        self.compare(other) == Some(Ordering::Equal)
    }

    /// The value as JSON (instants as RFC 3339 strings are the runtime's
    /// job; here they are numbers of seconds).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Decimal(d) => decimal_json(*d),
            Value::Text(s) => J::String(s.clone()),
            Value::Time(t) => J::from(*t),
            Value::Date(d) => J::from(*d),
            Value::Duration(d) => J::from(*d),
            Value::List(v) | Value::Set(v) => J::Array(v.iter().map(Value::to_json).collect()),
            Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }

    /// JSON into a value (numbers: ints when whole and in range).
    pub fn from_json(j: &serde_json::Value) -> Value {
        use serde_json::Value as J;
        match j {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Decimal(n.as_f64().unwrap_or(0.0)),
            },
            J::String(s) => Value::Text(s.clone()),
            J::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            J::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }
}

/// A decimal as a JSON number: whole values as integers (`120`, not `120.0`).
pub fn decimal_json(d: f64) -> serde_json::Value {
    if d.fract() == 0.0 && d.abs() < 9.0e15 {
        serde_json::Value::from(d as i64)
    } else {
        serde_json::Number::from_f64(d).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

/// Shortest printing of a decimal: `4.5`, `120`.
pub fn format_decimal(d: f64) -> String {
    if d.fract() == 0.0 && d.abs() < 9.0e15 {
        format!("{}", d as i64)
    } else {
        format!("{d}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_across_kinds() {
        assert!(Value::Int(120).equals(&Value::Decimal(120.0)));
        assert!(!Value::Null.equals(&Value::Null));
        assert_eq!(format_decimal(4.5), "4.5");
        assert_eq!(format_decimal(120.0), "120");
        assert_eq!(
            Value::set_of(vec![Value::text("b"), Value::text("a"), Value::text("b")]),
            Value::Set(vec![Value::text("a"), Value::text("b")])
        );
    }
}

/// `2026-12-24T09:00:00Z` (or with an offset) → seconds since the epoch.
pub fn parse_time(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// Seconds since the epoch → `2026-12-24T09:00:00Z`.
pub fn format_time(t: i64) -> String {
    jiff::Timestamp::from_second(t).map_or_else(|_| format!("@{t}"), |ts| ts.to_string())
}

/// `2026-12-24` → days since 1970-01-01.
pub fn parse_date(s: &str) -> Option<i32> {
    let d = s.parse::<jiff::civil::Date>().ok()?;
    let epoch = jiff::civil::date(1970, 1, 1);
    Some(epoch.until(d).ok()?.get_days())
}

/// Days since 1970-01-01 → `2026-12-24`.
pub fn format_date(days: i32) -> String {
    jiff::civil::date(1970, 1, 1)
        .checked_add(jiff::Span::new().days(days))
        .map_or_else(|_| format!("date#{days}"), |d| d.to_string())
}

/// The earliest instant a `time` can hold, -009999-01-02T01:59:59Z: jiff's
/// `Timestamp` range (kept so that every instant has a civil date in every
/// zone), which the formats, the store and zone arithmetic share.
pub const MIN_INSTANT: i64 = -377_705_023_201;
/// The latest instant a `time` can hold, 9999-12-30T22:00:00Z.
pub const MAX_INSTANT: i64 = 253_402_207_200;
/// The range of instants, as messages name it.
pub const INSTANT_RANGE: &str = "-009999-01-02T01:59:59Z..=9999-12-30T22:00:00Z";
/// The longest duration, in seconds, that can be added to any instant of
/// the range without leaving it: from the first to the last instant.
pub const MAX_DURATION: i64 = MAX_INSTANT - MIN_INSTANT;

#[cfg(test)]
mod time_tests {
    use super::*;

    #[test]
    fn the_instant_range_is_jiffs() {
        assert_eq!(MIN_INSTANT, jiff::Timestamp::MIN.as_second());
        assert_eq!(MAX_INSTANT, jiff::Timestamp::MAX.as_second());
        assert_eq!(
            INSTANT_RANGE,
            format!(
                "{}..={}",
                format_time(MIN_INSTANT),
                format_time(MAX_INSTANT)
            )
        );
    }

    #[test]
    fn round_trips() {
        let t = parse_time("2026-01-01T00:00:00Z").expect("time");
        assert_eq!(t, 1_767_225_600);
        assert_eq!(format_time(t), "2026-01-01T00:00:00Z");
        let d = parse_date("2026-12-24").expect("date");
        assert_eq!(format_date(d), "2026-12-24");
    }
}
