//! Waits, one kind per test: durations, instants, clock times, events (with
//! `#N` and `where`), `within … else`, the block form, data matches; then
//! handlers, `exit when` and `goal`, and the order in which an event meets
//! them (exit when → goal → handlers → wait branches).

use crate::program;
use crate::vm_support::*;
use nudge_runtime::compiler::value::Value;
use nudge_runtime::vm::*;

fn amount(a: i64) -> (&'static str, Value) {
    ("amount", Value::Int(a))
}

#[test]
fn wait_duration_sets_one_timer_and_fires_only_when_due() {
    let b = program(r#"flow f { step a { wait 2 days  tag "done" } }"#);
    let mut r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    assert_eq!(r.status(), Status::Active);
    assert_eq!(r.timers(), [T0 + 2 * DAY]);
    let waiting = r.enr.clone();
    r.input(Input::Timer, T0 + 2 * DAY - 1);
    assert_eq!(r.enr, waiting, "not due yet");
    assert_eq!(r.fire(), T0 + 2 * DAY);
    assert_eq!(r.tags(), ["done"]);
    assert_eq!(r.status(), Status::Completed);
}

#[test]
fn wait_until_an_instant_and_one_already_past() {
    let b = program(r#"flow f { step a { wait until 2026-03-01T10:00:00Z  tag "done" } }"#);
    let r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    assert_eq!(r.timers(), [t("2026-03-01T10:00:00Z")]);
    let r = Run::new(&b, "f", contact(&b, "c1", &[])).start(t("2026-03-01T10:00:00Z"), None);
    assert_eq!(
        (r.status(), r.tags()),
        (Status::Completed, vec!["done".into()])
    );
}

#[test]
fn wait_until_a_computed_instant_and_an_unset_one() {
    let b = program(r#"flow f { step a { wait until contact.deal_at + 1 day  tag "done" } }"#);
    let c = contact(&b, "c1", &[("deal_at", Value::Time(T0 + HOUR))]);
    let r = Run::new(&b, "f", c).start(T0, None);
    assert_eq!(r.timers(), [T0 + HOUR + DAY]);
    // unset: the wait never fires
    let r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    assert_eq!(r.status(), Status::Active);
    assert!(r.timers().is_empty() && r.enr.wait.is_some());
}

#[test]
fn wait_until_a_clock_time_utc_local_and_weekday() {
    let b = program(
        r#"flow f { step a {
            wait until 09:00
            wait until 09:00 local
            wait until monday 10:00 local
            tag "done"
        } }"#,
    );
    let c = contact(&b, "c1", &[("timezone", Value::text("Europe/Rome"))]);
    let mut r = Run::new(&b, "f", c).start(T0, None);
    assert_eq!(
        r.timers(),
        [t("2026-01-01T09:00:00Z")],
        "UTC, whatever the zone"
    );
    r.fire();
    // 10:00 in Rome now: the next 09:00 Rome is tomorrow's, 08:00Z
    assert_eq!(r.timers(), [t("2026-01-02T08:00:00Z")]);
    r.fire();
    // Friday 2 January → Monday 5 January 10:00 CET
    assert_eq!(r.timers(), [t("2026-01-05T09:00:00Z")]);
    assert_eq!(r.fire(), t("2026-01-05T09:00:00Z"));
    assert_eq!(r.tags(), ["done"]);
}

#[test]
fn wait_for_an_event_ignores_others_and_takes_it() {
    let b = program(r#"flow f { step a { wait for sale  set contact.note = event.name } }"#);
    let mut r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, Some(ev("ping", 1, &[], T0)));
    assert!(r.timers().is_empty());
    let waiting = r.enr.clone();
    r.event(ev("other", 1, &[], T0 + 1));
    assert_eq!(r.enr, waiting);
    assert!(r.last.is_empty());
    let sale = ev("sale", 1, &[amount(5)], T0 + 2);
    r.event(sale.clone());
    assert_eq!(r.field("note"), Value::text("sale"));
    assert_eq!(r.enr.event, Some(sale));
    assert_eq!(r.status(), Status::Completed);
}

#[test]
fn wait_for_the_nth_event_and_with_a_condition() {
    let b = program(r#"flow f { step a { wait for sale #2  tag "second" } }"#);
    let mut r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    r.event(ev("sale", 1, &[], T0 + 1));
    assert_eq!(r.status(), Status::Active);
    r.event(ev("sale", 2, &[], T0 + 2));
    assert_eq!(r.tags(), ["second"]);

    let b = program(r#"flow f { step a { wait for sale where event.amount >= 100  tag "big" } }"#);
    let mut r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    r.event(ev("sale", 1, &[amount(50)], T0 + 1));
    r.event(ev("sale", 2, &[], T0 + 2));
    assert_eq!(
        r.status(),
        Status::Active,
        "small and unset amounts wait on"
    );
    r.event(ev("sale", 3, &[amount(100)], T0 + 3));
    assert_eq!(r.tags(), ["big"]);
}

#[test]
fn within_else_takes_the_else_when_the_time_is_up() {
    let b = program(
        r#"flow f {
            step a { wait for sale within 3 days else goto cold  tag "bought" }
            step cold { tag "cold" }
        }"#,
    );
    let mut r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    assert_eq!(r.timers(), [T0 + 3 * DAY]);
    assert_eq!(r.fire(), T0 + 3 * DAY);
    assert_eq!((r.step(), r.tags()), ("cold", vec!["cold".to_string()]));
    // the event in time: goes on after the wait, to the next step
    let mut r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    r.event(ev("sale", 1, &[], T0 + 3 * DAY - 1));
    assert_eq!(r.tags(), ["bought", "cold"]);

    let b = program(r#"flow f { step a { wait for sale within 1 hour else exit  tag "x" } }"#);
    let mut r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    r.fire();
    assert_eq!(r.status(), Status::Exited);
    assert!(r.tags().is_empty());
}

#[test]
fn block_wait_first_branch_wins_then_goes_on_unless_moved() {
    let b = program(
        r#"flow f {
            step a {
              wait {
                on sale -> tag "sale"
                on ping -> goto p
                until contact.score > 50 -> tag "data"
                after 1 day -> tag "late"
                after 2 hours -> tag "early"
              }
              tag "after"
            }
            step p { tag "p"  wait 1 day }
        }"#,
    );
    let start = || Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    let mut r = start();
    assert_eq!(r.timers(), [T0 + DAY, T0 + 2 * HOUR]);
    r.event(ev("sale", 1, &[], T0 + 1));
    assert_eq!(r.tags(), ["after", "p", "sale"], "goes on after the wait");
    let mut r = start();
    r.event(ev("ping", 1, &[], T0 + 1));
    assert_eq!((r.step(), r.tags()), ("p", vec!["p".to_string()]));
    let mut r = start();
    assert_eq!(r.fire(), T0 + 2 * HOUR, "the earliest timer");
    assert_eq!(r.tags(), ["after", "early", "p"]);
    let mut r = start();
    r.contact.fields.insert("score".into(), Value::Int(51));
    r.input(Input::DataChange, T0 + 5);
    assert_eq!(r.tags(), ["after", "data", "p"]);
    assert_eq!(r.timers(), [T0 + 5 + DAY]);
}

#[test]
fn data_match_waits_are_checked_at_once_and_on_each_change() {
    let b = program(
        r#"flow f {
            step a { wait until contact.score > 50 within 7 days else goto cold  tag "hot" }
            step cold { tag "cold" }
        }"#,
    );
    let c = |s: i64| contact(&b, "c1", &[("score", Value::Int(s))]);
    let r = Run::new(&b, "f", c(60)).start(T0, None);
    assert_eq!(r.tags(), ["cold", "hot"], "already true: goes on at once");
    let mut r = Run::new(&b, "f", c(10)).start(T0, None);
    assert_eq!(r.timers(), [T0 + 7 * DAY]);
    r.contact.fields.insert("score".into(), Value::Int(50));
    let waiting = r.enr.clone();
    r.input(Input::DataChange, T0 + HOUR);
    assert_eq!(r.enr, waiting, "50 is not > 50");
    r.contact.fields.insert("score".into(), Value::Int(51));
    r.input(Input::DataChange, T0 + 2 * HOUR);
    assert_eq!(r.tags(), ["cold", "hot"]);
    // a data change does not fire a timer that is due
    let mut r = Run::new(&b, "f", c(10)).start(T0, None);
    r.input(Input::DataChange, T0 + 8 * DAY);
    assert_eq!(r.status(), Status::Active);
}

#[test]
fn a_handler_runs_while_waiting_and_returns_to_the_wait() {
    let b = program(
        r#"flow f {
            on ping -> tag "pinged"
            on sale -> goto b
            step a { wait 2 days  tag "done" }
            step b { tag "b"  wait 1 hour }
        }"#,
    );
    let mut r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    let wait = r.enr.wait.clone();
    let ping = ev("ping", 1, &[], T0 + HOUR);
    r.event(ping.clone());
    assert_eq!(r.tags(), ["pinged"]);
    assert_eq!(r.enr.wait, wait, "same wait, same timer");
    assert_eq!(r.enr.event, Some(ping));
    assert_eq!(r.journal(), ["handler on `ping`"]);
    assert_eq!(r.fire(), T0 + 2 * DAY);
    // after the wait, the step ends and the next one begins
    assert_eq!(r.tags(), ["b", "done", "pinged"]);
    assert_eq!(r.step(), "b");
    // a handler that moves leaves the wait
    let mut r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    r.event(ev("sale", 1, &[], T0 + HOUR));
    assert_eq!(r.step(), "b");
    assert_eq!(r.timers(), [T0 + 2 * HOUR]);
}

#[test]
fn a_handler_runs_while_a_call_is_pending() {
    let b = program(
        r#"flow f {
            on ping -> tag "pinged"
            step a { call crm with { who = "x" } as r  set contact.score = r.status }
        }"#,
    );
    let mut r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    r.event(ev("ping", 1, &[], T0 + 1));
    assert_eq!(r.tags(), ["pinged"]);
    r.input(
        Input::CallResponse {
            name: "r".into(),
            status: 204,
            json: Value::Null,
        },
        T0 + 2,
    );
    assert_eq!(r.field("score"), Value::Int(204));
}

#[test]
fn exit_when_exits_and_goal_converts() {
    let b = program(
        r#"flow f {
            exit when stop_all
            goal bought
            step a { wait 1 day }
        }"#,
    );
    let mut r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    r.event(ev("stop_all", 1, &[], T0 + 1));
    assert_eq!(r.status(), Status::Exited);
    assert_eq!(r.journal(), ["exited on `stop_all`"]);
    assert!(r.enr.wait.is_none());
    let mut r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    r.event(ev("bought", 1, &[], T0 + 1));
    assert_eq!(r.status(), Status::Converted);
    assert_eq!(r.journal(), ["converted on `bought`"]);
}

#[test]
fn an_event_meets_exit_when_then_goal_then_handlers_then_the_wait() {
    let b = program(
        r#"flow f {
            exit when sale where event.amount > 100
            goal sale where event.amount > 10
            on sale where event.amount > 1 -> tag "handler"
            step a {
              wait { on sale -> tag "branch" }
              wait 1 day
            }
        }"#,
    );
    let run = |a: i64| {
        let mut r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
        r.event(ev("sale", 1, &[amount(a)], T0 + 1));
        (r.status(), r.tags())
    };
    assert_eq!(run(200), (Status::Exited, vec![]));
    assert_eq!(run(50), (Status::Converted, vec![]));
    assert_eq!(run(5), (Status::Active, vec!["handler".to_string()]));
    assert_eq!(run(1), (Status::Active, vec!["branch".to_string()]));
}

#[test]
fn handlers_match_in_source_order_with_nth() {
    let b = program(
        r#"flow f {
            on sale #2 -> tag "second"
            on sale -> tag "any"
            step a { wait 30 days }
        }"#,
    );
    let mut r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    r.event(ev("sale", 1, &[], T0 + 1));
    assert_eq!(r.tags(), ["any"]);
    r.event(ev("sale", 2, &[], T0 + 2));
    assert_eq!(r.tags(), ["any", "second"]);
    r.contact.fields.insert("tags".into(), Value::Set(vec![]));
    r.event(ev("sale", 3, &[], T0 + 3));
    assert_eq!(r.tags(), ["any"]);
}

#[test]
fn a_timer_keeps_the_last_event() {
    let b = program(
        r#"flow f { step a { wait for sale  wait 1 hour  set contact.note = event.name } }"#,
    );
    let mut r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, Some(ev("ping", 1, &[], T0)));
    r.event(ev("sale", 1, &[], T0 + 1));
    r.fire();
    assert_eq!(r.field("note"), Value::text("sale"));
}
