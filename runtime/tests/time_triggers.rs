//! Time triggers whose instant is already past when they are planned
//! (LANGUAGE.md A3), on the simulator: at or after now fires at that
//! instant, in the past by no more than `late` fires at once, older does
//! not fire and the journey says so; and a wait whose timer the clock cannot
//! represent fails its enrollment instead of waiting without a timer.

#![allow(clippy::unwrap_used)]

mod vm_support;

use nudge_runtime::compiler::value::Value;
use nudge_runtime::sim::{EPOCH, Sim};
use nudge_runtime::vm::Status;

fn deal(created: i64) -> Vec<(String, Value)> {
    vec![("deal_created_at".to_string(), Value::Time(created))]
}

/// Journey lines of contact `i`, as `flow: what`.
fn journey(sim: &Sim<'_>, i: usize) -> Vec<String> {
    sim.journal
        .iter()
        .filter(|(c, _)| *c == i)
        .map(|(_, j)| format!("{}: {}", j.flow, j.what))
        .collect()
}

fn entered(sim: &Sim<'_>, i: usize, flow: &str) -> Option<i64> {
    sim.contacts[i].latest(flow).map(|e| e.entered_at)
}

#[test]
fn an_instant_already_past_is_journaled_as_missed() {
    let bundle = vm_support::bundle(vm_support::DEALS);
    let mut sim = Sim::new(&bundle).unwrap();
    // synced 30 days after the deal was created: the instant is 23 days old
    let c = sim
        .create_contact(Some("c"), deal(EPOCH - 30 * 86_400))
        .unwrap();
    sim.advance_to(EPOCH + 10 * 86_400).unwrap();
    assert_eq!(entered(&sim, c, "nurture"), None);
    assert_eq!(entered(&sim, c, "grace"), None, "23 days is more than 2");
    let lines = journey(&sim, c);
    for want in [
        "nurture: missed nurture trigger: 2025-12-09T00:00:00Z is 23 days in the past",
        "grace: missed grace trigger: 2025-12-09T00:00:00Z is 23 days in the past",
    ] {
        assert!(lines.iter().any(|l| l == want), "{want} in {lines:?}");
    }
}

#[test]
fn one_second_in_the_past_is_missed_without_late_and_fires_with_it() {
    let bundle = vm_support::bundle(vm_support::DEALS);
    let mut sim = Sim::new(&bundle).unwrap();
    let c = sim
        .create_contact(Some("c"), deal(EPOCH - 7 * 86_400 - 1))
        .unwrap();
    assert_eq!(entered(&sim, c, "nurture"), None);
    assert_eq!(entered(&sim, c, "grace"), Some(EPOCH), "fired at once");
    let lines = journey(&sim, c);
    assert!(
        lines
            .iter()
            .any(|l| l
                .ends_with("missed nurture trigger: 2025-12-31T23:59:59Z is 1 second in the past")),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("missed grace")),
        "{lines:?}"
    );
}

#[test]
fn an_instant_of_now_fires_now_and_a_later_one_at_its_instant() {
    let bundle = vm_support::bundle(vm_support::DEALS);
    let mut sim = Sim::new(&bundle).unwrap();
    let now = sim
        .create_contact(Some("now"), deal(EPOCH - 7 * 86_400))
        .unwrap();
    assert_eq!(entered(&sim, now, "nurture"), Some(EPOCH));
    let later = sim
        .create_contact(Some("later"), deal(EPOCH + 86_400))
        .unwrap();
    sim.advance_to(EPOCH + 8 * 86_400 - 1).unwrap();
    assert_eq!(entered(&sim, later, "nurture"), None);
    sim.advance_to(EPOCH + 9 * 86_400).unwrap();
    assert_eq!(entered(&sim, later, "nurture"), Some(EPOCH + 8 * 86_400));
    assert!(!journey(&sim, later).iter().any(|l| l.contains("missed")));
}

#[test]
fn a_field_changed_into_the_past_is_planned_again_with_late() {
    let bundle = vm_support::bundle(vm_support::DEALS);
    let mut sim = Sim::new(&bundle).unwrap();
    let c = sim.create_contact(Some("c"), vec![]).unwrap();
    sim.advance_to(EPOCH + 20 * 86_400).unwrap();
    // now day 20: the instant (day 8) is 12 days old
    sim.set(c, "deal_created_at", Value::Time(EPOCH + 86_400))
        .unwrap();
    assert_eq!(entered(&sim, c, "nurture"), None);
    assert!(
        journey(&sim, c)
            .iter()
            .any(|l| l
                .ends_with("missed nurture trigger: 2026-01-09T00:00:00Z is 12 days in the past")),
        "{:?}",
        journey(&sim, c)
    );
    // within `late`: day 19 is 1 day old at day 20
    sim.set(c, "deal_created_at", Value::Time(EPOCH + 12 * 86_400))
        .unwrap();
    assert_eq!(entered(&sim, c, "grace"), Some(EPOCH + 20 * 86_400));
}

#[test]
fn a_timer_beyond_the_clock_fails_the_enrollment() {
    let bundle = vm_support::bundle(
        r#"
contact { email: email? unique  until: time? }
event go {}
flow f {
  when go
  step s { wait until contact.until + 1 day  log "after" }
}
"#,
    );
    let mut sim = Sim::new(&bundle).unwrap();
    let last = nudge_runtime::compiler::value::MAX_INSTANT;
    let c = sim
        .create_contact(Some("c"), vec![("until".into(), Value::Time(last))])
        .unwrap();
    sim.event(c, "go", Default::default());
    let e = sim.contacts[c].latest("f").unwrap();
    assert_eq!(e.status, Status::Failed, "{e:?}");
    assert!(e.wait.is_none());
    let lines = journey(&sim, c);
    assert!(
        lines.iter().any(|l| l.contains(
            "this wait's timer is outside the instants the clock covers (-009999-01-02T01:59:59Z..=9999-12-30T22:00:00Z)"
        )),
        "{lines:?}"
    );
}

#[test]
fn a_trigger_instant_beyond_the_clock_is_not_planned_and_says_so() {
    let bundle = vm_support::bundle(vm_support::DEALS);
    let mut sim = Sim::new(&bundle).unwrap();
    let last = nudge_runtime::compiler::value::MAX_INSTANT;
    let c = sim.create_contact(Some("c"), deal(last)).unwrap();
    sim.advance_to(EPOCH + 86_400).unwrap();
    assert_eq!(entered(&sim, c, "nurture"), None);
    assert_eq!(
        sim.contacts[c].next_wake(),
        None,
        "no timer at an unrepresentable instant"
    );
    let lines = journey(&sim, c);
    assert!(
        lines.iter().any(|l| l
            == "nurture: nurture trigger not planned: its instant is outside -009999-01-02T01:59:59Z..=9999-12-30T22:00:00Z"),
        "{lines:?}"
    );
}

#[test]
fn a_trigger_instant_that_cannot_be_computed_is_journaled_once() {
    let src = r#"
contact { email: email? unique  deal_created_at: time?  trial: duration? }
event ping {}
flow trial_end {
  when contact.deal_created_at + contact.trial
  step s { log "trial over" }
}
"#;
    let bundle = vm_support::bundle(src);
    let mut sim = Sim::new(&bundle).unwrap();
    let mut given = deal(EPOCH);
    given.push(("trial".to_string(), Value::Duration(i64::MAX)));
    let c = sim.create_contact(Some("c"), given).unwrap();
    // later inputs plan the trigger again: the error is not repeated
    sim.event(c, "ping", Default::default());
    sim.advance_to(EPOCH + 86_400).unwrap();
    sim.event(c, "ping", Default::default());
    assert_eq!(entered(&sim, c, "trial_end"), None);
    let lines = journey(&sim, c);
    let errors: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("trial_end: trial_end trigger not planned: integer overflow"))
        .collect();
    assert_eq!(errors.len(), 1, "{lines:?}");
    // a value that computes again plans the trigger as usual
    sim.set(c, "trial", Value::Duration(86_400)).unwrap();
    sim.advance_to(EPOCH + 3 * 86_400).unwrap();
    assert_eq!(entered(&sim, c, "trial_end"), Some(EPOCH + 86_400));
}
