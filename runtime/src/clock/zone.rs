//! Zones and local times: the one place that turns a civil (wall-clock)
//! datetime into an instant.
//!
//! Takes zone names and civil datetimes; gives epoch seconds. Two
//! resolutions, because the language wants two different things on the days
//! the clocks change:
//!
//! * [`first_valid`] for `until HH:MM local` and window openings: a time in
//!   a DST gap moves forward to the first instant after the gap (the
//!   transition itself, 03:00 local when 02:00 jumps to 03:00); a time in a
//!   fold takes the earlier of its two instants.
//! * [`existing`] for cron schedules: a time in a gap does not exist (it does
//!   not fire); a time in a fold takes the earlier instant (it fires once).
//!
//! INVARIANT (both): for a fixed zone, the instant grows with the civil
//! datetime (strictly for [`existing`], never decreasing for
//! [`first_valid`]). The searches in `local` and `cron` rely on it to start at
//! the local date and time of `now` and stop at the first hit.

use jiff::Timestamp;
use jiff::civil::{self, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};

use super::{ClockError, Weekday};

/// The zone called `name` in the bundled tz database.
pub fn zone(name: &str) -> Result<TimeZone, ClockError> {
    TimeZone::get(name).map_err(|_| ClockError::UnknownZone(name.to_string()))
}

/// Epoch seconds as a jiff timestamp.
pub fn timestamp(t: i64) -> Result<Timestamp, ClockError> {
    Timestamp::from_second(t).map_err(|_| ClockError::OutOfRange)
}

/// The wall-clock datetime of instant `t` in `zone`.
pub fn local(t: i64, zone: &TimeZone) -> Result<DateTime, ClockError> {
    Ok(zone.to_datetime(timestamp(t)?))
}

/// A civil datetime `dt` in `zone` as an instant: a gap moves forward to the
/// first instant after it, a fold takes the earlier instant.
pub fn first_valid(zone: &TimeZone, dt: DateTime) -> Result<i64, ClockError> {
    let ambiguous = zone.to_ambiguous_timestamp(dt);
    let ts = match ambiguous.offset() {
        AmbiguousOffset::Gap { after, .. } => {
            // With the offset in force after the transition, `dt` reads as an
            // instant just before the transition; the next transition is the
            // first instant whose wall clock shows the end of the gap.
            let before_gap = after.to_timestamp(dt).map_err(|_| ClockError::OutOfRange)?;
            match zone.following(before_gap).next() {
                Some(transition) => transition.timestamp(),
                // A gap always ends in a transition; keep jiff's answer if not.
                None => ambiguous.compatible().map_err(|_| ClockError::OutOfRange)?,
            }
        }
        AmbiguousOffset::Unambiguous { .. } | AmbiguousOffset::Fold { .. } => {
            ambiguous.earlier().map_err(|_| ClockError::OutOfRange)?
        }
    };
    Ok(ts.as_second())
}

/// A civil datetime `dt` in `zone` as an instant, or `None` if the wall clock
/// skips it (a DST gap); a fold takes the earlier instant.
pub fn existing(zone: &TimeZone, dt: DateTime) -> Result<Option<i64>, ClockError> {
    let ambiguous = zone.to_ambiguous_timestamp(dt);
    match ambiguous.offset() {
        AmbiguousOffset::Gap { .. } => Ok(None),
        AmbiguousOffset::Unambiguous { .. } | AmbiguousOffset::Fold { .. } => ambiguous
            .earlier()
            .map(|ts| Some(ts.as_second()))
            .map_err(|_| ClockError::OutOfRange),
    }
}

/// Check `HH:MM:SS` and convert it for jiff.
pub fn time_of_day(hour: u8, minute: u8, second: u8) -> Result<civil::Time, ClockError> {
    let bad = ClockError::BadTimeOfDay {
        hour,
        minute,
        second,
    };
    if hour > 23 || minute > 59 || second > 59 {
        return Err(bad);
    }
    // The checks above keep every field within i8 and jiff's ranges.
    civil::Time::new(hour as i8, minute as i8, second as i8, 0).map_err(|_| bad)
}

/// The language's weekday for jiff's.
pub fn weekday_from_jiff(day: civil::Weekday) -> Weekday {
    match day {
        civil::Weekday::Monday => Weekday::Monday,
        civil::Weekday::Tuesday => Weekday::Tuesday,
        civil::Weekday::Wednesday => Weekday::Wednesday,
        civil::Weekday::Thursday => Weekday::Thursday,
        civil::Weekday::Friday => Weekday::Friday,
        civil::Weekday::Saturday => Weekday::Saturday,
        civil::Weekday::Sunday => Weekday::Sunday,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn utc(s: &str) -> i64 {
        s.parse::<Timestamp>().expect("test instant").as_second()
    }

    #[test]
    fn unknown_zone_is_an_error() {
        assert_eq!(
            zone("Europe/Atlantis").err(),
            Some(ClockError::UnknownZone("Europe/Atlantis".into()))
        );
        assert!(zone("UTC").is_ok());
        assert!(zone("Europe/Rome").is_ok());
    }

    #[test]
    fn gap_moves_to_the_transition_not_by_the_gap_length() {
        let ny = zone("America/New_York").expect("zone");
        // 2026-03-08 02:00 EST jumps to 03:00 EDT (07:00Z).
        let dt = date(2026, 3, 8).at(2, 30, 0, 0);
        assert_eq!(first_valid(&ny, dt), Ok(utc("2026-03-08T07:00:00Z")));
        assert_eq!(existing(&ny, dt), Ok(None));
    }

    #[test]
    fn fold_takes_the_earlier_instant() {
        let ny = zone("America/New_York").expect("zone");
        // 2026-11-01 01:30 happens at 05:30Z (EDT) and 06:30Z (EST).
        let dt = date(2026, 11, 1).at(1, 30, 0, 0);
        assert_eq!(first_valid(&ny, dt), Ok(utc("2026-11-01T05:30:00Z")));
        assert_eq!(existing(&ny, dt), Ok(Some(utc("2026-11-01T05:30:00Z"))));
    }

    #[test]
    fn times_of_day_are_checked() {
        assert!(time_of_day(23, 59, 59).is_ok());
        assert!(time_of_day(24, 0, 0).is_err());
        assert!(time_of_day(9, 60, 0).is_err());
        assert!(time_of_day(9, 0, 60).is_err());
    }

    #[test]
    fn out_of_range_instants_are_errors() {
        assert_eq!(timestamp(i64::MAX).err(), Some(ClockError::OutOfRange));
    }
}
