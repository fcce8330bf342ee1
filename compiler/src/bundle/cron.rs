//! The one cron parser: `when every "0 9 * * 1" [local]`.
//!
//! The checker parses each cron string here and reports what is wrong with
//! the field at fault; the lowering stores the parsed [`CronSpec`] in the
//! bundle, so the runtime never reads cron text (it computes the next
//! instant from the bit sets in `runtime/src/clock/cron.rs`).
//!
//! Five fields: minute hour day-of-month month day-of-week. Each accepts
//! `*`, numbers, lists `a,b`, ranges `a-b` (low to high), steps `*/n`,
//! `a-b/n` and `a/n` (from `a` to the field's end). Day of week 0 and 7 are
//! Sunday. Names (`mon`, `jan`) are not accepted. Day matching follows Vixie
//! cron: when both day fields are restricted a day matches either (`0 0 1 * 1`:
//! the 1st and every Monday); a field that starts with `*` (also `*/2`) is
//! unrestricted and the other one decides. A schedule that can never match a
//! calendar day (`0 0 31 2 *`, `0 0 30 2 *`) is refused.

use serde::{Deserialize, Serialize};
use std::ops::Range;

/// A parsed five-field cron schedule. Each field is a bit set: bit `n` set
/// means value `n` matches (day of week 0 = Sunday … 6 = Saturday, 7 folded
/// into 0). Bundles of format 1 stored the text alone: it is parsed when
/// such a bundle is read ([`StoredCron`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredCron")]
pub struct CronSpec {
    /// The schedule as written, for the disassembly and messages.
    pub text: String,
    pub minutes: u64,
    pub hours: u64,
    pub days_of_month: u64,
    pub months: u64,
    pub days_of_week: u64,
    /// The day-of-month field starts with `*` (unrestricted for the OR rule).
    pub dom_star: bool,
    /// The day-of-week field starts with `*`.
    pub dow_star: bool,
}

/// A cron schedule as a bundle stores it: parsed (format 2 on), or the text
/// (format 1).
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredCron {
    Parsed {
        text: String,
        minutes: u64,
        hours: u64,
        days_of_month: u64,
        months: u64,
        days_of_week: u64,
        dom_star: bool,
        dow_star: bool,
    },
    Text(String),
}

impl TryFrom<StoredCron> for CronSpec {
    type Error = String;

    fn try_from(s: StoredCron) -> Result<CronSpec, String> {
        match s {
            StoredCron::Parsed {
                text,
                minutes,
                hours,
                days_of_month,
                months,
                days_of_week,
                dom_star,
                dow_star,
            } => Ok(CronSpec {
                text,
                minutes,
                hours,
                days_of_month,
                months,
                days_of_week,
                dom_star,
                dow_star,
            }),
            StoredCron::Text(text) => {
                CronSpec::parse(&text).map_err(|e| format!("cron schedule `{text}`: {}", e.message))
            }
        }
    }
}

/// Why a cron string was refused, with the byte range (in the string's
/// value) of the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError {
    pub message: String,
    pub range: Range<usize>,
}

/// The fields in order: name, lowest and highest value.
const FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

/// The longest each month can be (February in a leap year).
const MAX_DAYS: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl CronSpec {
    /// Parse a five-field cron string, refusing one that can never match.
    pub fn parse(text: &str) -> Result<CronSpec, CronError> {
        let fields = split_fields(text);
        let Ok(fields) = <[(&str, Range<usize>); 5]>::try_from(fields) else {
            return Err(CronError {
                message: format!(
                    "a cron schedule has five fields (minute hour day-of-month month day-of-week), this one has {}",
                    split_fields(text).len()
                ),
                range: 0..text.len(),
            });
        };
        let mut sets = [0u64; 5];
        for (i, (part, range)) in fields.iter().enumerate() {
            let (name, lo, hi) = FIELDS[i];
            sets[i] = field(part, name, lo, hi).map_err(|message| CronError {
                message,
                range: range.clone(),
            })?;
        }
        if sets[4] & (1 << 7) != 0 {
            sets[4] = (sets[4] & !(1 << 7)) | 1;
        }
        let [_, _, (dom, dom_range), (_, month_range), (dow, _)] = fields;
        let spec = CronSpec {
            text: text.to_string(),
            minutes: sets[0],
            hours: sets[1],
            days_of_month: sets[2],
            months: sets[3],
            days_of_week: sets[4],
            dom_star: dom.starts_with('*'),
            dow_star: dow.starts_with('*'),
        };
        spec.check_calendar().map_err(|message| CronError {
            message,
            range: dom_range.start..month_range.end,
        })?;
        Ok(spec)
    }

    /// A schedule that matches nothing (what the lowering stores for a
    /// string the checker refused; never reached after a clean check).
    pub fn never(text: &str) -> CronSpec {
        CronSpec {
            text: text.to_string(),
            minutes: 0,
            hours: 0,
            days_of_month: 0,
            months: 0,
            days_of_week: 0,
            dom_star: true,
            dow_star: true,
        }
    }

    /// Whether a calendar day matches: `day` of the month (1–31), `month`
    /// (1–12), `weekday` with Sunday 0.
    pub fn day_matches(&self, day: u32, month: u32, weekday: u32) -> bool {
        if !has(self.months, month) {
            return false;
        }
        let dom = has(self.days_of_month, day);
        let dow = has(self.days_of_week, weekday);
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// Whether `month` (1–12) is in the schedule.
    pub fn month_matches(&self, month: u32) -> bool {
        has(self.months, month)
    }

    /// The first hour `>= from` in the schedule.
    pub fn next_hour(&self, from: u32) -> Option<u32> {
        next_bit(self.hours, from)
    }

    /// The first minute `>= from` in the schedule.
    pub fn next_minute(&self, from: u32) -> Option<u32> {
        next_bit(self.minutes, from)
    }

    /// Some calendar day must match: only a restricted day of month with an
    /// unrestricted day of week can rule out every day (`31 2`, `30 2`).
    fn check_calendar(&self) -> Result<(), String> {
        if !self.dow_star {
            return Ok(());
        }
        let Some(first_day) = next_bit(self.days_of_month, 1) else {
            return Ok(());
        };
        let possible =
            (1..=12u32).any(|m| has(self.months, m) && first_day <= MAX_DAYS[m as usize - 1]);
        if possible {
            return Ok(());
        }
        let months: Vec<&str> = (1..=12u32)
            .filter(|m| has(self.months, *m))
            .map(|m| MONTHS[m as usize - 1])
            .collect();
        Err(format!(
            "this never matches: {} has no day {first_day}",
            join_or(&months)
        ))
    }
}

/// The whitespace-separated fields with their byte ranges.
fn split_fields(text: &str) -> Vec<(&str, Range<usize>)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((&text[s..i], s..i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    out
}

fn join_or(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// One field as a bit set of the values in `lo..=hi`.
fn field(text: &str, name: &str, lo: u32, hi: u32) -> Result<u64, String> {
    let mut set = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => match step.parse::<u32>() {
                Ok(n) if n > 0 => (range, Some(n)),
                _ => {
                    return Err(format!(
                        "`{part}`: the step of the {name} field must be a positive number"
                    ));
                }
            },
            None => (part, None),
        };
        let number = |s: &str| match s.parse::<u32>() {
            Ok(n) if (lo..=hi).contains(&n) => Ok(n),
            Ok(_) => Err(format!(
                "`{s}` is out of range for the {name} field ({lo}–{hi})"
            )),
            Err(_) => Err(format!(
                "`{s}` is not a number: the {name} field takes {lo}–{hi}"
            )),
        };
        let (first, last) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (number(a)?, number(b)?);
            if a > b {
                return Err(format!(
                    "`{part}`: a range in the {name} field goes from low to high (write `{b}-{a}`, or a list for a range that wraps)"
                ));
            }
            (a, b)
        } else {
            let a = number(range)?;
            (a, if step.is_some() { hi } else { a })
        };
        let step = step.unwrap_or(1);
        let mut value = first;
        while value <= last {
            set |= 1 << value;
            value += step;
        }
    }
    Ok(set)
}

fn has(set: u64, value: u32) -> bool {
    value < 64 && set & (1 << value) != 0
}

/// The smallest value `>= from` in `set`.
fn next_bit(set: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let rest = set & (u64::MAX << from);
    (rest != 0).then(|| rest.trailing_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> CronError {
        CronSpec::parse(text).expect_err(text)
    }

    #[test]
    fn fields_parse_to_sets() {
        assert_eq!(
            field("*/15", "minute", 0, 59),
            Ok(1 | 1 << 15 | 1 << 30 | 1 << 45)
        );
        assert_eq!(field("1-5/2", "hour", 0, 23), Ok(1 << 1 | 1 << 3 | 1 << 5));
        assert_eq!(field("1,3,5", "hour", 0, 23), Ok(1 << 1 | 1 << 3 | 1 << 5));
        assert_eq!(field("50/5", "minute", 0, 59), Ok(1 << 50 | 1 << 55));
        assert!(field("5-1", "hour", 0, 23).is_err());
        assert!(field("*/0", "hour", 0, 23).is_err());
        assert!(field("24", "hour", 0, 23).is_err());
        assert!(field("1,,2", "hour", 0, 23).is_err());
        assert!(field("mon", "day of week", 0, 7).is_err());
        assert!(field("1-2-3", "hour", 0, 23).is_err());
    }

    #[test]
    fn errors_point_at_the_field() {
        let e = err("0 5-1 * * *");
        assert_eq!(e.range, 2..5);
        assert!(e.message.contains("low to high"), "{}", e.message);
        assert_eq!(err("0  25 * * *").range, 3..5);
        assert_eq!(err("0 0 * * 8").range, 8..9);
        assert_eq!(err("0 9 * *").range, 0..7);
        assert_eq!(err("").range, 0..0);
    }

    #[test]
    fn never_matching_is_refused_on_the_day_fields() {
        let e = err("0 0 31 2 *");
        assert_eq!(e.range, 4..8);
        assert_eq!(e.message, "this never matches: February has no day 31");
        assert!(err("0 0 30 2 *").message.contains("no day 30"));
        assert!(
            err("0 0 31 4,6,9,11 *")
                .message
                .contains("April, June, September or November")
        );
        // 29 February happens; a weekday rescues the day by the OR rule.
        assert!(CronSpec::parse("0 0 29 2 *").is_ok());
        assert!(CronSpec::parse("0 0 31 2 1").is_ok());
        // `*/1` starts with `*`: unrestricted, so the day of month decides.
        assert!(CronSpec::parse("0 0 31 2 */1").is_err());
    }

    #[test]
    fn sunday_is_zero_and_seven() {
        let s = CronSpec::parse("0 10 * * 7").expect("parses");
        assert!(s.day_matches(14, 6, 0));
        assert!(!s.day_matches(15, 6, 1));
    }

    #[test]
    fn or_rule_for_restricted_days() {
        let s = CronSpec::parse("0 0 13 * 1").expect("parses");
        assert!(s.day_matches(13, 6, 6));
        assert!(s.day_matches(15, 6, 1));
        assert!(!s.day_matches(14, 6, 0));
        let s = CronSpec::parse("0 0 13 * */1").expect("parses");
        assert!(!s.day_matches(15, 6, 1));
    }
}
