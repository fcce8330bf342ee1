//! Five-field cron schedules: `when every "0 9 * * 1" [local]`.
//!
//! Takes a cron string (minute hour day-of-month month day-of-week), `now`
//! and a zone; gives the next matching instant strictly after `now`.
//!
//! Fields accept `*`, numbers, lists `a,b`, ranges `a-b`, steps `*/n`,
//! `a-b/n` and `a/n` (from `a` to the field's end). Day of week 0 and 7 are
//! Sunday. Names (`mon`, `jan`) are not accepted, like the compiler's check.
//! Day matching follows Vixie cron: when both day fields are restricted a day
//! matches either (`0 0 1 * 1`: the 1st and every Monday); a field that
//! starts with `*` (also `*/2`) is unrestricted and the other one decides.
//!
//! The times are wall-clock times in the zone (`UTC` without `local`). A time
//! the clock skips (a DST gap) does not fire that day; a time that happens
//! twice (a fold) fires once, at the earlier instant.
//!
//! Cost: the search walks months and days, and within a matching day only the
//! hours and minutes in the schedule (bit sets), so it never steps minute by
//! minute through a year. It is bounded by [`MAX_STEPS`]; a schedule that can
//! never match (`0 0 31 2 *`) is rejected when parsed.

use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::ClockError;
use super::zone::{existing, local, zone};

/// Upper bound on the months skipped plus days examined by one search: about
/// 27 years of days. The rarest schedule that can match, 29 February, needs
/// at most 8 years (2096 → 2104), so reaching the bound means no match.
pub const MAX_STEPS: u32 = 10_000;

/// A parsed cron schedule. Each field is a bit set: bit `n` set means value
/// `n` matches (day of week 0 = Sunday … 6 = Saturday, 7 folded into 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    days_of_week: u64,
    /// The day-of-month field starts with `*` (unrestricted for the OR rule).
    dom_star: bool,
    /// The day-of-week field starts with `*`.
    dow_star: bool,
}

impl Cron {
    /// Parse a five-field cron string, rejecting one that can never match.
    pub fn parse(expr: &str) -> Result<Cron, ClockError> {
        let bad = |reason: String| ClockError::BadCron {
            expr: expr.to_string(),
            reason,
        };
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields[..] else {
            return Err(bad(format!(
                "a cron schedule has five fields (minute hour day-of-month month day-of-week), this one has {}",
                fields.len()
            )));
        };
        let mut days_of_week = field(dow, "day of week", 0, 7).map_err(bad)?;
        if days_of_week & (1 << 7) != 0 {
            days_of_week = (days_of_week & !(1 << 7)) | 1;
        }
        let cron = Cron {
            minutes: field(minute, "minute", 0, 59).map_err(bad)?,
            hours: field(hour, "hour", 0, 23).map_err(bad)?,
            days_of_month: field(dom, "day of month", 1, 31).map_err(bad)?,
            months: field(month, "month", 1, 12).map_err(bad)?,
            days_of_week,
            dom_star: dom.starts_with('*'),
            dow_star: dow.starts_with('*'),
        };
        if !cron.can_match() {
            return Err(bad("it never matches a day on the calendar".to_string()));
        }
        Ok(cron)
    }

    /// Next instant strictly after `now` matching this schedule, read on the
    /// wall clock of `zone`.
    pub fn next_after(&self, now: i64, zone: &TimeZone) -> Result<Option<i64>, ClockError> {
        let start = local(now, zone)?;
        let mut date: Date = start.date();
        // On the first day, wall-clock times before the current minute give
        // instants before `now` (the invariant of `zone`): start from it.
        let mut from = Some((start.hour() as u32, start.minute() as u32));
        for _ in 0..MAX_STEPS {
            if !has(self.months, date.month() as u32) {
                date = date
                    .last_of_month()
                    .tomorrow()
                    .map_err(|_| ClockError::OutOfRange)?;
                from = None;
                continue;
            }
            if self.day_matches(date)
                && let Some(at) = self.first_in_day(date, from, now, zone)?
            {
                return Ok(Some(at));
            }
            date = date.tomorrow().map_err(|_| ClockError::OutOfRange)?;
            from = None;
        }
        Ok(None)
    }

    /// The earliest matching instant after `now` on `date` (whose month and
    /// day match), searching from wall-clock `from` (hour, minute) if given.
    fn first_in_day(
        &self,
        date: Date,
        from: Option<(u32, u32)>,
        now: i64,
        zone: &TimeZone,
    ) -> Result<Option<i64>, ClockError> {
        let (from_hour, from_minute) = from.unwrap_or((0, 0));
        let mut hour = next_bit(self.hours, from_hour);
        while let Some(h) = hour {
            let first_minute = if h == from_hour { from_minute } else { 0 };
            let mut minute = next_bit(self.minutes, first_minute);
            while let Some(m) = minute {
                // Both fit in i8: hours < 24, minutes < 60 by construction.
                let dt = date.at(h as i8, m as i8, 0, 0);
                if let Some(at) = existing(zone, dt)?
                    && at > now
                {
                    return Ok(Some(at));
                }
                minute = next_bit(self.minutes, m + 1);
            }
            hour = next_bit(self.hours, h + 1);
        }
        Ok(None)
    }

    fn day_matches(&self, date: Date) -> bool {
        let dom = has(self.days_of_month, date.day() as u32);
        let dow = has(
            self.days_of_week,
            date.weekday().to_sunday_zero_offset() as u32,
        );
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// Whether some calendar day matches: only a restricted day of month with
    /// an unrestricted day of week can rule out every day (`31 2`, `30 2`).
    fn can_match(&self) -> bool {
        if !self.dow_star {
            return true;
        }
        const MAX_DAYS: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        (1..=12u32).any(|month| {
            has(self.months, month)
                && next_bit(self.days_of_month, 1)
                    .is_some_and(|d| d <= MAX_DAYS[month as usize - 1])
        })
    }
}

/// Next instant strictly after `now` matching the five-field cron `cron`,
/// read in zone `tz` (`"UTC"` for a schedule without `local`).
///
/// Skipped local times in a DST gap do not fire; a repeated hour fires once
/// (the earlier). An expression that never matches is an error.
pub fn next_cron(now: i64, cron: &str, tz: &str) -> Result<i64, ClockError> {
    let zone = zone(tz)?;
    Cron::parse(cron)?
        .next_after(now, &zone)?
        .ok_or_else(|| ClockError::BadCron {
            expr: cron.to_string(),
            reason: "it does not match any time in the years ahead".to_string(),
        })
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
            _ => Err(format!(
                "`{s}` is out of range for the {name} field ({lo}–{hi})"
            )),
        };
        let (first, last) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (number(a)?, number(b)?);
            if a > b {
                return Err(format!(
                    "`{part}`: a range in the {name} field goes from low to high"
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

    fn utc(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>()
            .expect("test instant")
            .as_second()
    }

    fn next(now: &str, cron: &str, tz: &str) -> String {
        super::super::format_instant(next_cron(utc(now), cron, tz).expect("a next instant"))
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
    }

    #[test]
    fn bad_expressions_are_errors() {
        for bad in [
            "0 9 * *",
            "0 9 * * * *",
            "0 25 * * *",
            "60 * * * *",
            "0 0 0 * *",
            "0 0 * 13 *",
            "0 0 * * 8",
            "",
        ] {
            assert!(
                matches!(Cron::parse(bad), Err(ClockError::BadCron { .. })),
                "{bad:?} should not parse"
            );
        }
        assert!(next_cron(0, "0 9 * * 1", "Nowhere/City").is_err());
    }

    #[test]
    fn impossible_expressions_are_errors() {
        for never in ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *"] {
            let err = next_cron(0, never, "UTC").expect_err(never);
            assert!(err.to_string().contains("never matches"), "{err}");
        }
        // 29 February does happen, even across a century's skipped leap year.
        assert_eq!(
            next("2096-03-01T00:00:00Z", "0 0 29 2 *", "UTC"),
            "2104-02-29T00:00:00Z"
        );
        // A weekday rescues the day of month through the OR rule: the first
        // Monday of February.
        assert_eq!(
            next("2026-01-01T00:00:00Z", "0 0 31 2 1", "UTC"),
            "2026-02-02T00:00:00Z"
        );
    }

    #[test]
    fn monday_nine_utc() {
        // 2026-06-10 is a Wednesday.
        assert_eq!(
            next("2026-06-10T12:00:00Z", "0 9 * * 1", "UTC"),
            "2026-06-15T09:00:00Z"
        );
        // Strictly after: at Monday 09:00 exactly, the next Monday.
        assert_eq!(
            next("2026-06-15T09:00:00Z", "0 9 * * 1", "UTC"),
            "2026-06-22T09:00:00Z"
        );
        assert_eq!(
            next("2026-06-15T08:59:59Z", "0 9 * * 1", "UTC"),
            "2026-06-15T09:00:00Z"
        );
    }

    #[test]
    fn every_fifteen_minutes() {
        assert_eq!(
            next("2026-06-10T12:00:00Z", "*/15 * * * *", "UTC"),
            "2026-06-10T12:15:00Z"
        );
        assert_eq!(
            next("2026-06-10T12:14:59Z", "*/15 * * * *", "UTC"),
            "2026-06-10T12:15:00Z"
        );
        assert_eq!(
            next("2026-06-10T23:50:00Z", "*/15 * * * *", "UTC"),
            "2026-06-11T00:00:00Z"
        );
        assert_eq!(
            next("2026-12-31T23:45:00Z", "*/15 * * * *", "UTC"),
            "2027-01-01T00:00:00Z"
        );
    }

    #[test]
    fn sunday_is_zero_and_seven() {
        // 2026-06-14 is a Sunday.
        for cron in ["0 10 * * 0", "0 10 * * 7", "0 10 * * 6-7", "0 10 * * 7,3"] {
            assert_eq!(
                next("2026-06-13T12:00:00Z", cron, "UTC"),
                "2026-06-14T10:00:00Z",
                "{cron}"
            );
        }
        assert_eq!(
            next("2026-06-13T09:00:00Z", "0 10 * * 6-7", "UTC"),
            "2026-06-13T10:00:00Z"
        );
    }

    #[test]
    fn dom_and_dow_or_rule() {
        // 2026-06-10 is a Wednesday; the next Monday is the 15th, the next
        // 13th is Saturday 2026-06-13.
        assert_eq!(
            next("2026-06-10T12:00:00Z", "0 0 13 * 1", "UTC"),
            "2026-06-13T00:00:00Z"
        );
        assert_eq!(
            next("2026-06-13T12:00:00Z", "0 0 13 * 1", "UTC"),
            "2026-06-15T00:00:00Z"
        );
        // An unrestricted day of week (`*`) leaves the day of month alone.
        assert_eq!(
            next("2026-06-13T12:00:00Z", "0 0 13 * *", "UTC"),
            "2026-07-13T00:00:00Z"
        );
        // `*/1` in the day of week starts with `*`: AND rule, only the 13th.
        assert_eq!(
            next("2026-06-13T12:00:00Z", "0 0 13 * */1", "UTC"),
            "2026-07-13T00:00:00Z"
        );
        // `*/1` in the day of month likewise: only Mondays.
        assert_eq!(
            next("2026-06-10T12:00:00Z", "0 0 */1 * 1", "UTC"),
            "2026-06-15T00:00:00Z"
        );
    }

    #[test]
    fn months_are_skipped_whole() {
        assert_eq!(
            next("2026-06-10T12:00:00Z", "30 6 1 1,7 *", "UTC"),
            "2026-07-01T06:30:00Z"
        );
        assert_eq!(
            next("2026-07-01T06:30:00Z", "30 6 1 1,7 *", "UTC"),
            "2027-01-01T06:30:00Z"
        );
    }

    #[test]
    fn every_minute_is_fast_and_exact() {
        let mut now = utc("2026-06-10T00:00:00Z");
        for _ in 0..(24 * 60) {
            let at = next_cron(now, "* * * * *", "Europe/Rome").expect("next minute");
            assert_eq!(at, now + 60);
            now = at;
        }
    }
}
