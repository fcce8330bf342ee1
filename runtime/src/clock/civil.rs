//! Instants and dates as text, and the calendar parts of an instant: the
//! edges where the VM meets `2026-12-24T09:00:00Z` literals, JSON and the
//! language functions `date`, `hour`, `minute`, `weekday`.
//!
//! Takes epoch seconds or days since 1970-01-01; gives RFC 3339 text, dates
//! and wall-clock parts. Formatting is total: it never fails, also outside
//! the years jiff can represent (the calendar arithmetic is done here, and a
//! year outside 0000..=9999 is written with a sign and six digits, as RFC
//! 9557 / ISO 8601 expanded years are). Parsing goes through jiff.

use jiff::Timestamp;
use jiff::civil::Date;

use super::zone::{local, weekday_from_jiff, zone};
use super::{ClockError, Weekday};

const SECONDS_PER_DAY: i64 = 86_400;

/// The wall-clock parts of an instant in a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CivilParts {
    /// `YYYY-MM-DD`
    pub date: String,
    pub hour: u8,
    pub minute: u8,
    pub weekday: Weekday,
}

/// Parse an RFC 3339 instant (`2026-12-24T09:00:00Z`, `…+01:00`) to epoch
/// seconds. Fractions of a second are dropped towards the past.
pub fn parse_instant(s: &str) -> Result<i64, ClockError> {
    let ts: Timestamp = s
        .parse()
        .map_err(|_| ClockError::BadInstant(s.to_string()))?;
    let seconds = ts.as_second();
    // jiff truncates towards zero; an instant before 1970 with a fraction
    // belongs to the second before.
    Ok(if ts.subsec_nanosecond() < 0 {
        seconds - 1
    } else {
        seconds
    })
}

/// Format epoch seconds as RFC 3339 in UTC: `2026-12-24T09:00:00Z`.
pub fn format_instant(t: i64) -> String {
    let days = t.div_euclid(SECONDS_PER_DAY);
    let secs = t.rem_euclid(SECONDS_PER_DAY);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        date_text(days),
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// The date, hour, minute and weekday of instant `t` on the wall clock of
/// zone `tz`.
pub fn civil_parts(t: i64, tz: &str) -> Result<CivilParts, ClockError> {
    let dt = local(t, &zone(tz)?)?;
    Ok(CivilParts {
        date: dt.date().to_string(),
        // Both are in 0..60 on jiff's clock.
        hour: dt.hour().unsigned_abs(),
        minute: dt.minute().unsigned_abs(),
        weekday: weekday_from_jiff(dt.weekday()),
    })
}

/// Parse `YYYY-MM-DD` to days since 1970-01-01 (negative before it).
pub fn parse_date(s: &str) -> Result<i32, ClockError> {
    let date: Date = s.parse().map_err(|_| ClockError::BadDate(s.to_string()))?;
    let seconds = date.duration_since(Date::constant(1970, 1, 1)).as_secs();
    // Dates jiff accepts are within ±10,000 years: a few million days.
    i32::try_from(seconds.div_euclid(SECONDS_PER_DAY)).map_err(|_| ClockError::OutOfRange)
}

/// Format days since 1970-01-01 as `YYYY-MM-DD`.
pub fn format_date(days: i32) -> String {
    date_text(i64::from(days))
}

fn date_text(days: i64) -> String {
    let (year, month, day) = civil_from_days(days);
    if (0..=9999).contains(&year) {
        format!("{year:04}-{month:02}-{day:02}")
    } else {
        format!("{year:+07}-{month:02}-{day:02}")
    }
}

/// Proleptic Gregorian (year, month, day) of a day count from 1970-01-01:
/// Howard Hinnant's `civil_from_days`, exact for every `i64` input this
/// module produces (`i64` seconds / 86 400).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so leap days end each 400-year era.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146_096
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365, from 1 March
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip() {
        for s in [
            "2026-12-24T09:00:00Z",
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "2000-02-29T12:34:56Z",
            "9999-12-30T12:00:00Z",
            "0001-01-01T00:00:00Z",
        ] {
            let t = parse_instant(s).expect(s);
            assert_eq!(format_instant(t), s);
        }
        assert_eq!(parse_instant("2026-12-24T09:00:00Z"), Ok(1_798_102_800));
        assert_eq!(parse_instant("1970-01-01T00:00:00Z"), Ok(0));
    }

    #[test]
    fn offsets_are_read() {
        assert_eq!(
            parse_instant("2026-12-24T10:00:00+01:00"),
            parse_instant("2026-12-24T09:00:00Z")
        );
        assert_eq!(
            parse_instant("2026-12-24T04:00:00-05:00"),
            parse_instant("2026-12-24T09:00:00Z")
        );
    }

    #[test]
    fn fractions_go_to_the_earlier_second() {
        assert_eq!(parse_instant("1970-01-01T00:00:01.9Z"), Ok(1));
        assert_eq!(parse_instant("1969-12-31T23:59:59.5Z"), Ok(-1));
    }

    #[test]
    fn bad_instants_are_errors() {
        for s in [
            "",
            "2026-12-24",
            "2026-12-24T09:00:00",
            "tomorrow",
            "2026-13-01T00:00:00Z",
        ] {
            assert_eq!(parse_instant(s), Err(ClockError::BadInstant(s.to_string())));
        }
    }

    #[test]
    fn formatting_matches_jiff_wherever_jiff_reaches() {
        let mut t = Timestamp::MIN.as_second();
        while t <= Timestamp::MAX.as_second() {
            let ts = Timestamp::from_second(t).expect("in range");
            assert_eq!(format_instant(t), ts.to_string(), "{t}");
            t += 7_777_777; // about 90 days, varying times of day
        }
        // Outside jiff's range formatting still works.
        assert_eq!(format_instant(253_402_300_800), "+010000-01-01T00:00:00Z");
        assert!(format_instant(i64::MAX).starts_with('+'));
        assert!(format_instant(i64::MIN).starts_with('-'));
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(parse_date("1970-01-01"), Ok(0));
        assert_eq!(parse_date("1969-12-31"), Ok(-1));
        assert_eq!(parse_date("2026-12-24"), Ok(20_811));
        for s in [
            "2026-12-24",
            "2000-02-29",
            "1900-03-01",
            "0001-01-01",
            "9999-12-31",
        ] {
            let d = parse_date(s).expect(s);
            assert_eq!(format_date(d), s);
        }
        // jiff parses years -9999..=9999.
        for days in (-4_000_000..2_900_000).step_by(997) {
            assert_eq!(parse_date(&format_date(days)), Ok(days), "{days}");
        }
        assert!(parse_date("2026-02-30").is_err());
        assert!(parse_date("24/12/2026").is_err());
        assert_eq!(format_date(i32::MAX), "+5881580-07-11");
    }

    #[test]
    fn civil_parts_in_zones() {
        let t = parse_instant("2026-12-24T23:30:00Z").expect("instant");
        let utc = civil_parts(t, "UTC").expect("utc");
        assert_eq!(
            utc,
            CivilParts {
                date: "2026-12-24".into(),
                hour: 23,
                minute: 30,
                weekday: Weekday::Thursday
            }
        );
        let rome = civil_parts(t, "Europe/Rome").expect("rome");
        assert_eq!(
            rome,
            CivilParts {
                date: "2026-12-25".into(),
                hour: 0,
                minute: 30,
                weekday: Weekday::Friday
            }
        );
        let ny = civil_parts(t, "America/New_York").expect("new york");
        assert_eq!((ny.date.as_str(), ny.hour), ("2026-12-24", 18));
        assert!(civil_parts(t, "Europe/Atlantis").is_err());
    }
}
