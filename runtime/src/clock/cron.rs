//! Five-field cron schedules: `when every "0 9 * * 1" [local]`.
//!
//! Takes a parsed schedule (`nudge_compiler::bundle::CronSpec`: the checker
//! parsed the text and the bundle stores the bit sets, so the runtime never
//! reads cron text), `now` and a zone; gives the next matching instant
//! strictly after `now`. Field syntax, the day-of-month/day-of-week OR rule
//! and the refusal of schedules that never match are the parser's
//! (`compiler/src/bundle/cron.rs`).
//!
//! The times are wall-clock times in the zone (`UTC` without `local`). A time
//! the clock skips (a DST gap) does not fire that day; a time that happens
//! twice (a fold) fires once, at the earlier instant.
//!
//! Cost: the search walks months and days, and within a matching day only the
//! hours and minutes in the schedule (bit sets), so it never steps minute by
//! minute through a year. It is bounded by [`MAX_STEPS`].

use jiff::civil::Date;
use jiff::tz::TimeZone;
use nudge_compiler::bundle::CronSpec;

use super::ClockError;
use super::zone::{existing, local, zone};

/// Upper bound on the months skipped plus days examined by one search: about
/// 27 years of days. The rarest schedule that can match, 29 February, needs
/// at most 8 years (2096 → 2104), so reaching the bound means no match.
pub const MAX_STEPS: u32 = 10_000;

/// Next instant strictly after `now` matching `cron`, read on the wall clock
/// of `zone`; `None` when nothing matches within [`MAX_STEPS`].
pub fn next_after(cron: &CronSpec, now: i64, zone: &TimeZone) -> Result<Option<i64>, ClockError> {
    let start = local(now, zone)?;
    let mut date: Date = start.date();
    // On the first day, wall-clock times before the current minute give
    // instants before `now` (the invariant of `zone`): start from it.
    let mut from = Some((start.hour() as u32, start.minute() as u32));
    for _ in 0..MAX_STEPS {
        if !cron.month_matches(date.month() as u32) {
            date = date
                .last_of_month()
                .tomorrow()
                .map_err(|_| ClockError::OutOfRange)?;
            from = None;
            continue;
        }
        let weekday = date.weekday().to_sunday_zero_offset() as u32;
        if cron.day_matches(date.day() as u32, date.month() as u32, weekday)
            && let Some(at) = first_in_day(cron, date, from, now, zone)?
        {
            return Ok(Some(at));
        }
        date = date.tomorrow().map_err(|_| ClockError::OutOfRange)?;
        from = None;
    }
    Ok(None)
}

/// The earliest matching instant after `now` on `date` (whose month and day
/// match), searching from wall-clock `from` (hour, minute) if given.
fn first_in_day(
    cron: &CronSpec,
    date: Date,
    from: Option<(u32, u32)>,
    now: i64,
    zone: &TimeZone,
) -> Result<Option<i64>, ClockError> {
    let (from_hour, from_minute) = from.unwrap_or((0, 0));
    let mut hour = cron.next_hour(from_hour);
    while let Some(h) = hour {
        let first_minute = if h == from_hour { from_minute } else { 0 };
        let mut minute = cron.next_minute(first_minute);
        while let Some(m) = minute {
            // Both fit in i8: hours < 24, minutes < 60 by construction.
            let dt = date.at(h as i8, m as i8, 0, 0);
            if let Some(at) = existing(zone, dt)?
                && at > now
            {
                return Ok(Some(at));
            }
            minute = cron.next_minute(m + 1);
        }
        hour = cron.next_hour(h + 1);
    }
    Ok(None)
}

/// Next instant strictly after `now` matching `cron`, read in zone `tz`
/// (`"UTC"` for a schedule without `local`).
///
/// Skipped local times in a DST gap do not fire; a repeated hour fires once
/// (the earlier). A schedule that matches nothing in the years ahead is an
/// error (the checker refuses those, so only a hand-made bundle gets here).
pub fn next_cron(now: i64, cron: &CronSpec, tz: &str) -> Result<i64, ClockError> {
    let zone = zone(tz)?;
    next_after(cron, now, &zone)?.ok_or_else(|| ClockError::BadCron {
        expr: cron.text.clone(),
        reason: "it does not match any time in the years ahead".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>()
            .expect("test instant")
            .as_second()
    }

    fn spec(cron: &str) -> CronSpec {
        CronSpec::parse(cron).expect("a valid cron")
    }

    fn next(now: &str, cron: &str, tz: &str) -> String {
        super::super::format_instant(next_cron(utc(now), &spec(cron), tz).expect("a next instant"))
    }

    #[test]
    fn unknown_zone_and_empty_schedule_are_errors() {
        assert!(next_cron(0, &spec("0 9 * * 1"), "Nowhere/City").is_err());
        let err = next_cron(0, &CronSpec::never("0 0 31 2 *"), "UTC").expect_err("never");
        assert!(err.to_string().contains("years ahead"), "{err}");
    }

    #[test]
    fn rare_days_are_found() {
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
            let at = next_cron(now, &spec("* * * * *"), "Europe/Rome").expect("next minute");
            assert_eq!(at, now + 60);
            now = at;
        }
    }
}
