//! The clock across daylight-saving changes, in the zones of the conformance
//! projects. 2026 transitions:
//!
//! * Europe/Rome: 29 March 02:00 CET → 03:00 CEST (01:00Z);
//!   25 October 03:00 CEST → 02:00 CET (01:00Z), 02:00–02:59 happens twice.
//! * America/New_York: 8 March 02:00 EST → 03:00 EDT (07:00Z);
//!   1 November 02:00 EDT → 01:00 EST (06:00Z), 01:00–01:59 happens twice.

use nudge_compiler::bundle::CronSpec;
use nudge_runtime::clock::{
    ClockError, Weekday, civil_parts, format_instant, next_cron, next_local_time, parse_instant,
    window_release,
};

const ROME: &str = "Europe/Rome";
const NEW_YORK: &str = "America/New_York";

fn t(s: &str) -> i64 {
    parse_instant(s).expect("test instant")
}

/// `until HH:MM local` from `now`, as RFC 3339 for readable failures.
fn until(now: &str, tz: &str, hour: u8, minute: u8) -> String {
    format_instant(next_local_time(t(now), tz, hour, minute, 0, None).expect("next local time"))
}

fn cron(now: &str, expr: &str, tz: &str) -> String {
    let spec = CronSpec::parse(expr).expect("a valid cron");
    format_instant(next_cron(t(now), &spec, tz).expect("next cron"))
}

fn window(now: &str, tz: &str, from: (u8, u8), to: (u8, u8)) -> Option<String> {
    window_release(t(now), tz, from, to)
        .expect("window")
        .map(format_instant)
}

// ---- until 09:00 local ----

#[test]
fn rome_nine_across_spring_forward() {
    // Saturday 13:00 CET → Sunday 09:00 CEST, an hour earlier in UTC.
    assert_eq!(
        until("2026-03-28T12:00:00Z", ROME, 9, 0),
        "2026-03-29T07:00:00Z"
    );
    // From Saturday's 09:00 exactly: the next day's, only 23 hours later.
    assert_eq!(
        until("2026-03-28T08:00:00Z", ROME, 9, 0),
        "2026-03-29T07:00:00Z"
    );
}

#[test]
fn rome_nine_across_fall_back() {
    // Saturday 09:00 CEST exactly → Sunday 09:00 CET, 25 hours later.
    assert_eq!(
        until("2026-10-24T07:00:00Z", ROME, 9, 0),
        "2026-10-25T08:00:00Z"
    );
    assert_eq!(
        until("2026-10-25T00:30:00Z", ROME, 9, 0),
        "2026-10-25T08:00:00Z"
    );
}

#[test]
fn new_york_nine_across_both_changes() {
    assert_eq!(
        until("2026-03-07T15:00:00Z", NEW_YORK, 9, 0),
        "2026-03-08T13:00:00Z"
    );
    assert_eq!(
        until("2026-03-07T14:00:00Z", NEW_YORK, 9, 0),
        "2026-03-08T13:00:00Z"
    );
    assert_eq!(
        until("2026-10-31T13:00:00Z", NEW_YORK, 9, 0),
        "2026-11-01T14:00:00Z"
    );
    assert_eq!(
        until("2026-11-01T06:30:00Z", NEW_YORK, 9, 0),
        "2026-11-01T14:00:00Z"
    );
}

#[test]
fn strictly_after_now_at_exactly_nine_local() {
    assert_eq!(
        until("2026-06-10T07:00:00Z", ROME, 9, 0),
        "2026-06-11T07:00:00Z"
    );
    assert_eq!(
        until("2026-06-10T13:00:00Z", NEW_YORK, 9, 0),
        "2026-06-11T13:00:00Z"
    );
    assert_eq!(
        until("2026-06-10T06:59:59Z", ROME, 9, 0),
        "2026-06-10T07:00:00Z"
    );
}

#[test]
fn time_in_the_gap_moves_to_the_end_of_the_gap() {
    // 02:30 does not exist on these days: the first valid instant after it
    // is 03:00 local (the transition), not 03:30.
    assert_eq!(
        until("2026-03-28T12:00:00Z", ROME, 2, 30),
        "2026-03-29T01:00:00Z"
    );
    assert_eq!(
        until("2026-03-08T05:00:00Z", NEW_YORK, 2, 30),
        "2026-03-08T07:00:00Z"
    );
    let parts = civil_parts(t("2026-03-08T07:00:00Z"), NEW_YORK).expect("parts");
    assert_eq!((parts.hour, parts.minute), (3, 0));
    // At the transition itself, 02:30 is tomorrow's.
    assert_eq!(
        until("2026-03-08T07:00:00Z", NEW_YORK, 2, 30),
        "2026-03-09T06:30:00Z"
    );
}

#[test]
fn time_in_the_fold_takes_the_earlier_and_fires_once() {
    // 01:30 on 1 November in New York: 05:30Z (EDT) and 06:30Z (EST).
    assert_eq!(
        until("2026-11-01T04:00:00Z", NEW_YORK, 1, 30),
        "2026-11-01T05:30:00Z"
    );
    // Once the earlier one has passed, the next 01:30 is tomorrow's, both
    // inside the repeated hour and after it.
    assert_eq!(
        until("2026-11-01T05:30:00Z", NEW_YORK, 1, 30),
        "2026-11-02T06:30:00Z"
    );
    assert_eq!(
        until("2026-11-01T06:10:00Z", NEW_YORK, 1, 30),
        "2026-11-02T06:30:00Z"
    );
    // Rome's repeated hour: 02:30 is 00:30Z (CEST), not 01:30Z (CET).
    assert_eq!(
        until("2026-10-24T12:00:00Z", ROME, 2, 30),
        "2026-10-25T00:30:00Z"
    );
}

#[test]
fn every_day_at_nine_local_for_a_year() {
    // `when every day at 09:00 local`: 365 consecutive days at 09:00 on the
    // wall clock, 23 or 25 hours apart on the two change days.
    for tz in [ROME, NEW_YORK] {
        let mut now = t("2026-01-01T00:00:00Z");
        let mut gaps = Vec::new();
        for _ in 0..365 {
            let next = next_local_time(now, tz, 9, 0, 0, None).expect("next");
            let parts = civil_parts(next, tz).expect("parts");
            assert_eq!(
                (parts.hour, parts.minute),
                (9, 0),
                "{tz} {}",
                format_instant(next)
            );
            if now != t("2026-01-01T00:00:00Z") && next - now != 86_400 {
                gaps.push(next - now);
            }
            now = next;
        }
        assert_eq!(gaps, [23 * 3600, 25 * 3600], "{tz}");
    }
}

// ---- weekday and UTC forms ----

#[test]
fn monday_ten_local_across_spring_forward() {
    // Friday 27 March (CET) → Monday 30 March 10:00 CEST.
    let next = next_local_time(
        t("2026-03-27T12:00:00Z"),
        ROME,
        10,
        0,
        0,
        Some(Weekday::Monday),
    );
    assert_eq!(next, Ok(t("2026-03-30T08:00:00Z")));
    // The previous Monday was still CET.
    let next = next_local_time(
        t("2026-03-20T12:00:00Z"),
        ROME,
        10,
        0,
        0,
        Some(Weekday::Monday),
    );
    assert_eq!(next, Ok(t("2026-03-23T09:00:00Z")));
}

#[test]
fn utc_forms_ignore_daylight_saving() {
    assert_eq!(
        until("2026-03-28T12:00:00Z", "UTC", 9, 0),
        "2026-03-29T09:00:00Z"
    );
    assert_eq!(
        until("2026-03-29T09:00:00Z", "UTC", 9, 0),
        "2026-03-30T09:00:00Z"
    );
    let next = next_local_time(
        t("2026-10-24T12:00:00Z"),
        "UTC",
        10,
        0,
        0,
        Some(Weekday::Monday),
    );
    assert_eq!(next, Ok(t("2026-10-26T10:00:00Z")));
}

#[test]
fn unknown_zone_is_an_error_not_a_panic() {
    assert_eq!(
        next_local_time(0, "Europe/Atlantis", 9, 0, 0, None),
        Err(ClockError::UnknownZone("Europe/Atlantis".into()))
    );
    let monday = CronSpec::parse("0 9 * * 1").expect("a valid cron");
    assert!(next_cron(0, &monday, "Europe/Atlantis").is_err());
    assert!(window_release(0, "Europe/Atlantis", (9, 0), (21, 0)).is_err());
    assert!(civil_parts(0, "Europe/Atlantis").is_err());
    assert_eq!(
        ClockError::UnknownZone("Europe/Atlantis".into()).to_string(),
        "unknown time zone `Europe/Atlantis`"
    );
}

// ---- cron ----

#[test]
fn cron_monday_nine_utc_and_local_across_spring_forward() {
    assert_eq!(
        cron("2026-03-27T00:00:00Z", "0 9 * * 1", "UTC"),
        "2026-03-30T09:00:00Z"
    );
    // Local: 09:00 CET then 09:00 CEST, 167 hours apart.
    assert_eq!(
        cron("2026-03-20T00:00:00Z", "0 9 * * 1", ROME),
        "2026-03-23T08:00:00Z"
    );
    assert_eq!(
        cron("2026-03-23T08:00:00Z", "0 9 * * 1", ROME),
        "2026-03-30T07:00:00Z"
    );
    assert_eq!(
        cron("2026-03-30T07:00:00Z", "0 9 * * 1", ROME),
        "2026-04-06T07:00:00Z"
    );
}

#[test]
fn cron_monday_nine_local_across_fall_back() {
    assert_eq!(
        cron("2026-10-26T13:00:00Z", "0 9 * * 1", NEW_YORK),
        "2026-11-02T14:00:00Z"
    );
    assert_eq!(
        cron("2026-10-19T00:00:00Z", "0 9 * * 1", NEW_YORK),
        "2026-10-19T13:00:00Z"
    );
}

#[test]
fn cron_skips_a_time_in_the_gap() {
    // 02:30 does not happen on 8 March in New York: no fire that day.
    assert_eq!(
        cron("2026-03-07T08:00:00Z", "30 2 * * *", NEW_YORK),
        "2026-03-09T06:30:00Z"
    );
    // Every half hour: 01:30 EST, then 03:00 EDT.
    assert_eq!(
        cron("2026-03-08T06:30:00Z", "*/30 * * * *", NEW_YORK),
        "2026-03-08T07:00:00Z"
    );
}

#[test]
fn cron_fires_once_in_the_repeated_hour() {
    assert_eq!(
        cron("2026-11-01T04:00:00Z", "30 1 * * *", NEW_YORK),
        "2026-11-01T05:30:00Z"
    );
    assert_eq!(
        cron("2026-11-01T05:30:00Z", "30 1 * * *", NEW_YORK),
        "2026-11-02T06:30:00Z"
    );
    // Every quarter hour: after 01:45 EDT comes 02:00 EST, an hour and a
    // quarter later; the repeated 01:xx do not fire again.
    assert_eq!(
        cron("2026-11-01T05:45:00Z", "*/15 * * * *", NEW_YORK),
        "2026-11-01T07:00:00Z"
    );
    // In UTC nothing is repeated.
    assert_eq!(
        cron("2026-11-01T05:45:00Z", "*/15 * * * *", "UTC"),
        "2026-11-01T06:00:00Z"
    );
}

#[test]
fn cron_sunday_and_or_rule_in_a_zone() {
    // Sunday 29 March, 10:00 CEST.
    for expr in ["0 10 * * 0", "0 10 * * 7"] {
        assert_eq!(
            cron("2026-03-27T00:00:00Z", expr, ROME),
            "2026-03-29T08:00:00Z"
        );
    }
    // The 1st of the month or a Friday: Friday 27 March comes first, then
    // Wednesday 1 April.
    assert_eq!(
        cron("2026-03-26T00:00:00Z", "0 8 1 * 5", ROME),
        "2026-03-27T07:00:00Z"
    );
    assert_eq!(
        cron("2026-03-27T07:00:00Z", "0 8 1 * 5", ROME),
        "2026-04-01T06:00:00Z"
    );
}

#[test]
fn cron_impossible_expression_is_an_error() {
    // The checker refuses it; the runtime never gets a schedule to search.
    let refused = CronSpec::parse("0 0 31 2 *").expect_err("never matches");
    assert_eq!(
        refused.message,
        "this never matches: February has no day 31"
    );
    // A hand-made bundle with an empty schedule gets an error, not a hang.
    let err = next_cron(0, &CronSpec::never("0 0 31 2 *"), ROME).expect_err("never matches");
    assert!(matches!(err, ClockError::BadCron { .. }));
    assert_eq!(
        err.to_string(),
        "invalid cron schedule `0 0 31 2 *`: it does not match any time in the years ahead"
    );
}

// ---- send windows ----

#[test]
fn window_inside_before_after_in_a_zone() {
    // 09:00..21:00 Rome in June (UTC+2).
    assert_eq!(window("2026-06-10T10:00:00Z", ROME, (9, 0), (21, 0)), None);
    assert_eq!(
        window("2026-06-10T06:00:00Z", ROME, (9, 0), (21, 0)),
        Some("2026-06-10T07:00:00Z".into())
    );
    assert_eq!(
        window("2026-06-10T19:00:00Z", ROME, (9, 0), (21, 0)),
        Some("2026-06-11T07:00:00Z".into())
    );
}

#[test]
fn window_wrapping_midnight_in_a_zone() {
    // 21:00..09:00 New York, across the fall-back night: inside during both
    // passes of 01:30, outside at 09:00 EST, opening at 21:00 EST.
    let w = |now| window(now, NEW_YORK, (21, 0), (9, 0));
    assert_eq!(w("2026-11-01T05:30:00Z"), None);
    assert_eq!(w("2026-11-01T06:30:00Z"), None);
    assert_eq!(w("2026-11-01T13:59:59Z"), None);
    assert_eq!(
        w("2026-11-01T14:00:00Z"),
        Some("2026-11-02T02:00:00Z".into())
    );
}

#[test]
fn window_opening_across_daylight_saving_changes() {
    // Saturday 22:00 CET → Sunday 09:00 CEST.
    assert_eq!(
        window("2026-03-28T21:00:00Z", ROME, (9, 0), (21, 0)),
        Some("2026-03-29T07:00:00Z".into())
    );
    // Saturday 22:00 CEST → Sunday 09:00 CET.
    assert_eq!(
        window("2026-10-24T20:00:00Z", ROME, (9, 0), (21, 0)),
        Some("2026-10-25T08:00:00Z".into())
    );
    // An opening inside the gap opens at the end of the gap, which is inside.
    assert_eq!(
        window("2026-03-08T06:00:00Z", NEW_YORK, (2, 30), (5, 0)),
        Some("2026-03-08T07:00:00Z".into())
    );
    assert_eq!(
        window("2026-03-08T07:00:00Z", NEW_YORK, (2, 30), (5, 0)),
        None
    );
}

// ---- text ----

#[test]
fn parse_and_format_round_trip() {
    let s = "2026-12-24T09:00:00Z";
    assert_eq!(format_instant(t(s)), s);
    assert_eq!(t("2026-12-24T10:00:00+01:00"), t(s));
    assert_eq!(
        format_instant(t("2026-10-25T02:30:00+02:00")),
        "2026-10-25T00:30:00Z"
    );
}
