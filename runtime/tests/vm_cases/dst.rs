//! `wait until HH:MM local` through the VM for contacts in Europe/Rome and
//! America/New_York across both 2026 daylight-saving changes (LANGUAGE.md
//! §10: the first such local time strictly after now; a time in a gap moves
//! to the first valid instant; a time in a fold takes the earlier instant).
//!
//! Rome: 29 March 02:00 CET → 03:00 CEST (01:00Z); 25 October 03:00 CEST →
//! 02:00 CET (01:00Z). New York: 8 March 02:00 EST → 03:00 EDT (07:00Z);
//! 1 November 02:00 EDT → 01:00 EST (06:00Z).

use crate::program;
use crate::vm_support::*;
use nudge_runtime::compiler::bundle::Bundle;
use nudge_runtime::compiler::value::Value;
use nudge_runtime::vm::*;

const ROME: &str = "Europe/Rome";
const NEW_YORK: &str = "America/New_York";

/// A flow that waits for `hh:mm local` every day, forever.
fn daily(hhmm: &str) -> Bundle {
    program(&format!(
        r#"flow f {{ step a {{ wait until {hhmm} local  log "fired"  goto a }} }}"#
    ))
}

/// Start in `tz` at `now` and return the first `n` firing instants.
fn firings(b: &Bundle, tz: &str, now: &str, n: usize) -> Vec<String> {
    let c = contact(b, "c1", &[("timezone", Value::text(tz))]);
    let mut r = Run::new(b, "f", c).start(t(now), None);
    (0..n)
        .map(|_| {
            let at = r.fire();
            assert_eq!(r.status(), Status::Active);
            assert_eq!(r.journal().first().map(String::as_str), Some("fired"));
            nudge_runtime::compiler::value::format_time(at)
        })
        .collect()
}

#[test]
fn nine_local_in_rome_across_spring_forward() {
    assert_eq!(
        firings(&daily("09:00"), ROME, "2026-03-27T12:00:00Z", 3),
        [
            "2026-03-28T08:00:00Z",
            "2026-03-29T07:00:00Z",
            "2026-03-30T07:00:00Z"
        ]
    );
}

#[test]
fn nine_local_in_rome_across_fall_back() {
    assert_eq!(
        firings(&daily("09:00"), ROME, "2026-10-23T12:00:00Z", 3),
        [
            "2026-10-24T07:00:00Z",
            "2026-10-25T08:00:00Z",
            "2026-10-26T08:00:00Z"
        ]
    );
}

#[test]
fn nine_local_in_new_york_across_both_changes() {
    let b = daily("09:00");
    assert_eq!(
        firings(&b, NEW_YORK, "2026-03-06T18:00:00Z", 3),
        [
            "2026-03-07T14:00:00Z",
            "2026-03-08T13:00:00Z",
            "2026-03-09T13:00:00Z"
        ]
    );
    assert_eq!(
        firings(&b, NEW_YORK, "2026-10-30T18:00:00Z", 3),
        [
            "2026-10-31T13:00:00Z",
            "2026-11-01T14:00:00Z",
            "2026-11-02T14:00:00Z"
        ]
    );
}

#[test]
fn a_time_in_the_spring_gap_moves_to_the_first_valid_instant() {
    let b = daily("02:30");
    // Rome: 02:30 does not exist on 29 March → 03:00 CEST = 01:00Z
    assert_eq!(
        firings(&b, ROME, "2026-03-28T12:00:00Z", 2),
        ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]
    );
    // New York: 02:30 does not exist on 8 March → 03:00 EDT = 07:00Z
    assert_eq!(
        firings(&b, NEW_YORK, "2026-03-07T12:00:00Z", 2),
        ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]
    );
}

#[test]
fn a_time_in_the_autumn_fold_takes_the_earlier_instant_once() {
    // Rome: 02:30 happens at 00:30Z (CEST) and 01:30Z (CET) on 25 October
    assert_eq!(
        firings(&daily("02:30"), ROME, "2026-10-24T12:00:00Z", 2),
        ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
    );
    // New York: 01:30 happens at 05:30Z (EDT) and 06:30Z (EST) on 1 November
    assert_eq!(
        firings(&daily("01:30"), NEW_YORK, "2026-10-31T12:00:00Z", 2),
        ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
    );
}

#[test]
fn a_weekday_time_across_spring_forward() {
    let b = program(r#"flow f { step a { wait until monday 10:00 local  tag "monday" } }"#);
    let c = contact(&b, "c1", &[("timezone", Value::text(ROME))]);
    // Friday 27 March (CET) → Monday 30 March 10:00 CEST
    let r = Run::new(&b, "f", c).start(t("2026-03-27T12:00:00Z"), None);
    assert_eq!(r.timers(), [t("2026-03-30T08:00:00Z")]);
    let c = contact(&b, "c1", &[("timezone", Value::text(NEW_YORK))]);
    // Friday 6 March (EST) → Monday 9 March 10:00 EDT
    let r = Run::new(&b, "f", c).start(t("2026-03-06T12:00:00Z"), None);
    assert_eq!(r.timers(), [t("2026-03-09T14:00:00Z")]);
}

#[test]
fn exactly_at_the_time_waits_for_tomorrow() {
    let b = daily("09:00");
    assert_eq!(
        firings(&b, ROME, "2026-06-10T07:00:00Z", 1),
        ["2026-06-11T07:00:00Z"]
    );
}
