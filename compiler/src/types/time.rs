//! Checks on time: durations and instants the clock can represent, and
//! data-match waits whose truth can change only with time.
//!
//! * An instant literal must lie in the range a `time` holds
//!   ([`crate::value::INSTANT_RANGE`], jiff's), and a duration literal may be
//!   at most the length of that range ([`crate::value::MAX_DURATION`]):
//!   anything longer overflows every instant it is added to.
//! * A data match (`wait until COND`, a wait branch `until COND`) is checked
//!   when the wait starts and re-checked only when the contact's data
//!   changes. `now` is not data, so a condition that reads it (directly or
//!   through a `define`) would never be re-checked as time passes: it is an
//!   error, with the timer form as help (`wait until contact.created_at + 3
//!   days`). That holds also when the condition reads data besides `now`:
//!   its time part would only be re-evaluated when the data changes.

use super::{Checker, TypeError};
use crate::diagnostics::{Diagnostics, ss};
use crate::value::{INSTANT_RANGE, MAX_DURATION};
use nudge_grammar::ast::{BinaryOp, DurationLit, Expr, ExprKind};
use nudge_grammar::span::Span;
use std::collections::BTreeSet;

/// What is wrong with an instant literal.
pub(crate) enum TimeLitError {
    /// Not an RFC 3339 instant, or not a calendar date.
    Invalid(String),
    /// A valid date and time outside the range a `time` holds.
    OutOfRange(String),
}

/// `2026-12-24T09:00:00Z`: valid and inside [`INSTANT_RANGE`].
pub(crate) fn time_literal(s: &str) -> Result<(), TimeLitError> {
    if s.parse::<jiff::Timestamp>().is_ok() {
        return Ok(());
    }
    if jiff::fmt::temporal::Pieces::parse(s).is_ok() {
        return Err(TimeLitError::OutOfRange(format!(
            "`{s}` is outside the instants a `time` can hold ({INSTANT_RANGE})"
        )));
    }
    Err(TimeLitError::Invalid(format!(
        "`{s}` is not a valid instant"
    )))
}

/// A duration literal no longer than [`MAX_DURATION`].
pub(crate) fn check_duration(lit: &DurationLit, d: &mut Diagnostics) {
    let total = lit.parts.iter().try_fold(0i64, |acc, (n, u)| {
        let n = i64::try_from(*n).ok()?;
        let unit = i64::try_from(u.seconds()).ok()?;
        acc.checked_add(n.checked_mul(unit)?)
    });
    if total.is_some_and(|t| t <= MAX_DURATION) {
        return;
    }
    d.push(
        lit.span,
        TypeError::OutOfRange {
            message: format!(
                "this duration is longer than the longest one, {MAX_DURATION} seconds (about {} days, the whole range of instants {INSTANT_RANGE})",
                MAX_DURATION / 86_400
            ),
            span: ss(lit.span),
            help: Some("a wait or trigger that long never comes due: write a shorter duration, like `365 days`".into()),
        },
    );
}

/// A data-match condition that reads `now` is refused (see the module
/// header): `span` is the condition's.
pub(crate) fn check_data_match(ck: &Checker<'_, '_>, cond: &Expr, d: &mut Diagnostics) {
    let mut seen = BTreeSet::new();
    let Some(name) = now_read(ck, cond, &mut seen) else {
        return;
    };
    let via = if name == "now" {
        String::new()
    } else {
        format!(" through `{name}`")
    };
    let help = match timer_form(ck, cond) {
        Some(form) => format!(
            "`now` is not data: wait for the instant instead, `wait until {form}`"
        ),
        None => "`now` is not data: wait for the instant instead, like `wait until contact.created_at + 3 days`, then test the rest with `if`".into(),
    };
    d.push(
        cond.span,
        TypeError::TimeOnlyCondition {
            span: ss(cond.span),
            via,
            help: Some(help),
        },
    );
}

/// Whether `e` reads `now`: `now` itself, or the first define that reads it.
fn now_read(ck: &Checker<'_, '_>, e: &Expr, seen: &mut BTreeSet<String>) -> Option<String> {
    let mut found = None;
    crate::analysis::reads::each_expr(e, &mut |x| {
        if found.is_some() {
            return;
        }
        let ExprKind::Name(id) = &x.kind else {
            return;
        };
        if id.name == "now" {
            found = Some(id.name.clone());
        } else if let Some(def) = ck.env.defines.get(&id.name)
            && seen.insert(id.name.clone())
            && now_read(ck, &def.value, seen).is_some()
        {
            found = Some(id.name.clone());
        }
    });
    found
}

/// `now - A > D` (or `>=`) → `A + D`, from the source text.
fn timer_form(ck: &Checker<'_, '_>, cond: &Expr) -> Option<String> {
    let ExprKind::Binary(BinaryOp::Gt | BinaryOp::Ge, lhs, dur) = &cond.kind else {
        return None;
    };
    let ExprKind::Binary(BinaryOp::Sub, now, since) = &strip(lhs).kind else {
        return None;
    };
    if !matches!(&strip(now).kind, ExprKind::Name(id) if id.name == "now") {
        return None;
    }
    Some(format!(
        "{} + {}",
        text(ck, since.span)?,
        text(ck, dur.span)?
    ))
}

fn strip(e: &Expr) -> &Expr {
    match &e.kind {
        ExprKind::Paren(x) => strip(x),
        _ => e,
    }
}

fn text(ck: &Checker<'_, '_>, span: Span) -> Option<String> {
    let file = ck.sources.get(span.file)?;
    file.text.get(span.range()).map(str::to_string)
}
