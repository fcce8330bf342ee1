//! Local times of day: `wait until 09:00 local`, `wait until monday 10:00
//! local`, `when every day at 09:00` and send windows (`window 09:00..21:00`).
//!
//! Takes `now` (epoch seconds), a zone name and a wall-clock time; gives the
//! next instant (epoch seconds). Guarantees (LANGUAGE.md §10 "Time"):
//! the result is strictly after `now`; a time in a DST gap moves forward to
//! the first valid instant; a time in a fold takes the earlier instant, so it
//! fires once that day.

use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::zone::{first_valid, local, time_of_day, weekday_from_jiff, zone};
use super::{ClockError, Weekday};

/// Next instant strictly after `now` at local time `hour:minute:second` in
/// zone `tz`, on `day` if given.
///
/// A time in a DST gap moves forward to the first valid instant (02:30 on the
/// day 02:00 jumps to 03:00 gives 03:00); a time in a fold takes the earlier
/// of its two instants. At exactly 09:00 local, "next 09:00" is tomorrow's.
pub fn next_local_time(
    now: i64,
    tz: &str,
    hour: u8,
    minute: u8,
    second: u8,
    day: Option<Weekday>,
) -> Result<i64, ClockError> {
    let zone = zone(tz)?;
    next_in_zone(now, &zone, hour, minute, second, day)
}

fn next_in_zone(
    now: i64,
    zone: &TimeZone,
    hour: u8,
    minute: u8,
    second: u8,
    day: Option<Weekday>,
) -> Result<i64, ClockError> {
    let time = time_of_day(hour, minute, second)?;
    // By the invariant of `zone`, a day before the local date of `now` can
    // only give instants before `now`, so the search starts on that date.
    // Eight days cover "later today" plus a full week for a weekday.
    let mut date: Date = local(now, zone)?.date();
    for _ in 0..=8 {
        if day.is_none_or(|d| weekday_from_jiff(date.weekday()) == d) {
            let at = first_valid(zone, date.to_datetime(time))?;
            if at > now {
                return Ok(at);
            }
        }
        date = date.tomorrow().map_err(|_| ClockError::OutOfRange)?;
    }
    // Unreachable for real zones: every day has a first valid instant at or
    // after any wall-clock time, and one of eight days has the weekday.
    Err(ClockError::OutOfRange)
}

/// Send window `[from, to)` (hours, minutes) in zone `tz`, read on the wall
/// clock; it may wrap midnight (`21:00..09:00`). `None` if `now` is inside
/// the window, else `Some` of the next opening instant (the next `from`,
/// moved forward out of a DST gap like [`next_local_time`]).
///
/// `from == to` is read as a window open all day: a daily window cannot be
/// empty, and `00:00..00:00` is how "all day" is written.
pub fn window_release(
    now: i64,
    tz: &str,
    from: (u8, u8),
    to: (u8, u8),
) -> Result<Option<i64>, ClockError> {
    let zone = zone(tz)?;
    let open = time_of_day(from.0, from.1, 0)?;
    let close = time_of_day(to.0, to.1, 0)?;
    let wall = local(now, &zone)?.time();
    let inside = match open.cmp(&close) {
        std::cmp::Ordering::Equal => true,
        std::cmp::Ordering::Less => open <= wall && wall < close,
        std::cmp::Ordering::Greater => wall >= open || wall < close,
    };
    if inside {
        return Ok(None);
    }
    next_in_zone(now, &zone, from.0, from.1, 0, None).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>()
            .expect("test instant")
            .as_second()
    }

    #[test]
    fn utc_next_time_today_or_tomorrow() {
        let now = utc("2026-06-10T08:00:00Z");
        assert_eq!(
            next_local_time(now, "UTC", 9, 0, 0, None),
            Ok(utc("2026-06-10T09:00:00Z"))
        );
        assert_eq!(
            next_local_time(now, "UTC", 7, 59, 59, None),
            Ok(utc("2026-06-11T07:59:59Z"))
        );
    }

    #[test]
    fn strictly_after_now() {
        let now = utc("2026-06-10T09:00:00Z");
        assert_eq!(
            next_local_time(now, "UTC", 9, 0, 0, None),
            Ok(utc("2026-06-11T09:00:00Z"))
        );
        assert_eq!(next_local_time(now - 1, "UTC", 9, 0, 0, None), Ok(now));
    }

    #[test]
    fn weekday_forms() {
        // 2026-06-10 is a Wednesday.
        let now = utc("2026-06-10T12:00:00Z");
        assert_eq!(
            next_local_time(now, "UTC", 10, 0, 0, Some(Weekday::Monday)),
            Ok(utc("2026-06-15T10:00:00Z"))
        );
        // Today's weekday, later today.
        assert_eq!(
            next_local_time(now, "UTC", 13, 0, 0, Some(Weekday::Wednesday)),
            Ok(utc("2026-06-10T13:00:00Z"))
        );
        // Today's weekday, already past: a full week on.
        assert_eq!(
            next_local_time(now, "UTC", 12, 0, 0, Some(Weekday::Wednesday)),
            Ok(utc("2026-06-17T12:00:00Z"))
        );
        // In Rome (UTC+2 in June) Monday 10:00 is 08:00Z.
        assert_eq!(
            next_local_time(now, "Europe/Rome", 10, 0, 0, Some(Weekday::Monday)),
            Ok(utc("2026-06-15T08:00:00Z"))
        );
    }

    #[test]
    fn the_local_date_decides_the_weekday() {
        // 2026-06-14T23:30Z is Sunday in UTC but Monday 01:30 in Rome.
        let now = utc("2026-06-14T23:30:00Z");
        assert_eq!(
            next_local_time(now, "Europe/Rome", 10, 0, 0, Some(Weekday::Monday)),
            Ok(utc("2026-06-15T08:00:00Z"))
        );
        assert_eq!(
            next_local_time(now, "Asia/Tokyo", 10, 0, 0, Some(Weekday::Monday)),
            Ok(utc("2026-06-15T01:00:00Z"))
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert_eq!(
            next_local_time(0, "Mars/Olympus", 9, 0, 0, None),
            Err(ClockError::UnknownZone("Mars/Olympus".into()))
        );
        assert!(matches!(
            next_local_time(0, "UTC", 24, 0, 0, None),
            Err(ClockError::BadTimeOfDay { .. })
        ));
        assert!(window_release(0, "UTC", (9, 0), (21, 60)).is_err());
        assert_eq!(
            next_local_time(i64::MAX, "UTC", 9, 0, 0, None),
            Err(ClockError::OutOfRange)
        );
    }

    #[test]
    fn window_inside_before_after() {
        let w = |now: &str| window_release(utc(now), "UTC", (9, 0), (21, 0));
        assert_eq!(w("2026-06-10T12:00:00Z"), Ok(None));
        assert_eq!(w("2026-06-10T09:00:00Z"), Ok(None), "opening is inside");
        assert_eq!(
            w("2026-06-10T21:00:00Z"),
            Ok(Some(utc("2026-06-11T09:00:00Z"))),
            "closing is outside"
        );
        assert_eq!(
            w("2026-06-10T08:59:59Z"),
            Ok(Some(utc("2026-06-10T09:00:00Z")))
        );
        assert_eq!(
            w("2026-06-10T23:00:00Z"),
            Ok(Some(utc("2026-06-11T09:00:00Z")))
        );
    }

    #[test]
    fn window_wrapping_midnight() {
        let w = |now: &str| window_release(utc(now), "UTC", (21, 0), (9, 0));
        assert_eq!(w("2026-06-10T22:00:00Z"), Ok(None));
        assert_eq!(w("2026-06-10T03:00:00Z"), Ok(None));
        assert_eq!(w("2026-06-10T21:00:00Z"), Ok(None));
        assert_eq!(
            w("2026-06-10T09:00:00Z"),
            Ok(Some(utc("2026-06-10T21:00:00Z")))
        );
        assert_eq!(
            w("2026-06-10T15:00:00Z"),
            Ok(Some(utc("2026-06-10T21:00:00Z")))
        );
    }

    #[test]
    fn window_in_the_contacts_zone() {
        // 07:30Z is 09:30 in Rome (inside) and 03:30 in New York (outside).
        let now = utc("2026-06-10T07:30:00Z");
        assert_eq!(
            window_release(now, "Europe/Rome", (9, 0), (21, 0)),
            Ok(None)
        );
        assert_eq!(
            window_release(now, "America/New_York", (9, 0), (21, 0)),
            Ok(Some(utc("2026-06-10T13:00:00Z")))
        );
    }

    #[test]
    fn equal_ends_mean_all_day() {
        assert_eq!(
            window_release(utc("2026-06-10T03:00:00Z"), "UTC", (0, 0), (0, 0)),
            Ok(None)
        );
    }
}
