//! Pure time calculations for the runtime: when a wait, a schedule or a send
//! window fires.
//!
//! Takes instants as **`i64` seconds since the Unix epoch (UTC)** and IANA
//! zone names (`"UTC"`, `"Europe/Rome"`); gives instants in the same form.
//! Nothing here reads the system clock or does IO: `now` is always an
//! argument, so the VM's `advance`, the virtual clock of `nudge test` and a
//! replay compute the same instants (LANGUAGE.md §9).
//!
//! **Why whole seconds in an `i64`.** It is what the store keeps, what timers
//! are ordered by and what the virtual clock advances; it is `Copy`, totally
//! ordered and has no zone attached, so two instants compare without
//! conversion. The language has no sub-second times (`HH:MM[:SS]`, cron
//! minutes), so nothing is lost.
//!
//! **Why jiff.** The hard part is zone arithmetic, not parsing: "the next
//! 09:00 in Europe/Rome" must land on the right instant on the days the
//! clocks change, a local time inside a DST gap must move forward, and one
//! inside a fold must take the earlier instant (LANGUAGE.md §10 "Time").
//! jiff 1.0 reports gaps and folds explicitly (`AmbiguousOffset`), finds zone
//! transitions (`TimeZone::following`) and carries the tz database inside the
//! binary (`tzdb-bundle-always`), so results do not depend on the host's
//! `/usr/share/zoneinfo`. The compiler already validates zones and instants
//! with it. croner is not used: it depends on jiff 0.2 and its DST rules are
//! not ours. The one cron parser is the compiler's (`bundle::CronSpec`, so
//! the checker refuses exactly what the runtime could not run); [`cron`]
//! finds the next instant from the parsed bit sets.
//!
//! Modules: [`zone`] (zone lookup, gap and fold resolution), [`local`]
//! (`until HH:MM local`, weekday forms, send windows), [`cron`] (schedules),
//! [`civil`] (RFC 3339 and dates for the language functions).

pub mod civil;
pub mod cron;
pub mod local;
pub mod zone;

pub use civil::{CivilParts, civil_parts, format_date, format_instant, parse_date, parse_instant};
pub use cron::next_cron;
pub use local::{next_local_time, window_release};
pub use nudge_compiler::bundle::Weekday;

pub use nudge_compiler::value::{INSTANT_RANGE as RANGE_TEXT, MAX_INSTANT, MIN_INSTANT};

/// Whether `t` is an instant the clock can represent.
pub fn in_range(t: i64) -> bool {
    (MIN_INSTANT..=MAX_INSTANT).contains(&t)
}

/// A length of time for a journey line: `30 days`, `1 second`,
/// `2 days 3 hours 1 second` (exact units, largest first).
pub fn format_age(seconds: i64) -> String {
    let mut rest = seconds.unsigned_abs();
    let mut parts = Vec::new();
    for (unit, len) in [
        ("day", 86_400),
        ("hour", 3_600),
        ("minute", 60),
        ("second", 1),
    ] {
        let n = rest / len;
        rest %= len;
        if n > 0 {
            parts.push(format!("{n} {unit}{}", if n == 1 { "" } else { "s" }));
        }
    }
    if parts.is_empty() {
        return "0 seconds".into();
    }
    parts.join(" ")
}

/// What can go wrong in a time calculation. Messages are lowercase, with the
/// user's input in backticks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// A zone name the bundled tz database does not know: `Europe/Atlantis`.
    #[error("unknown time zone `{0}`")]
    UnknownZone(String),
    /// A cron schedule with no matching instant in the years ahead (only a
    /// hand-made bundle: the checker refuses `0 0 31 2 *`).
    #[error("invalid cron schedule `{expr}`: {reason}")]
    BadCron { expr: String, reason: String },
    /// A time of day that is not on the clock: `24:00`, `09:60`.
    #[error("`{hour:02}:{minute:02}:{second:02}` is not a time of day")]
    BadTimeOfDay { hour: u8, minute: u8, second: u8 },
    /// A string that is not an RFC 3339 instant: `2026-12-24 09:00`.
    #[error("`{0}` is not an instant (expected RFC 3339, like `2026-12-24T09:00:00Z`)")]
    BadInstant(String),
    /// A string that is not a calendar date: `2026-02-30`.
    #[error("`{0}` is not a date (expected `YYYY-MM-DD`)")]
    BadDate(String),
    /// An instant or date outside the years -9999..=9999.
    #[error("instant out of range (the clock covers {RANGE_TEXT})")]
    OutOfRange,
}
