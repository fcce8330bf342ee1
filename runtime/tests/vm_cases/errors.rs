//! Runtime errors fail the enrollment (LANGUAGE.md amendment A4): division
//! or remainder by zero, `int` overflow, a `decimal` that is not finite, an
//! invalid `matches` pattern, a template or request that cannot be built.
//! The journey says the error and its source line, the failing statement
//! changes nothing and emits nothing, and the contact's other flows carry
//! on. Also `!=` as the negation of `==` (amendment A1).

use crate::vm_support::*;
use nudge_runtime::compiler::bundle::Bundle;
use nudge_runtime::compiler::value::Value;
use nudge_runtime::engine::{ContactState, Engine, EngineInput};
use nudge_runtime::vm::*;
use std::collections::BTreeMap;

const SCHEMA: &str = r#"
contact {
  email: email?
  orders: int = 0
  avg: decimal = 0
  big: int = 0
  note: text?
  pattern: text?
  deal_status: "won" | "lost"?
}
event go {}
event ping { n: int? }
event report { total: int? }
channel mail: smtp { host = "smtp.example" from = "shop@example.com" }
channel hook: http { method = "POST" url = "https://hooks.example/in" body = json { text: message } }
channel capped: http { method = "POST" url = "https://hooks.example/c" body = json { text: message } cap = 1 per 1 day }
"#;

fn compile(flows: &str) -> Bundle {
    bundle(&format!("{SCHEMA}\n{flows}"))
}

/// The line of `needle` in the compiled source (1-based).
fn line_of(flows: &str, needle: &str) -> u32 {
    let src = format!("{SCHEMA}\n{flows}");
    let i = src.find(needle).expect("needle in the source");
    src[..i].matches('\n').count() as u32 + 1
}

fn failed_with(r: &Run<'_>, error: &str, line: u32) {
    assert_eq!(r.status(), Status::Failed, "{:?}", r.all_journal());
    let why = format!("{error} (line {line})");
    assert_eq!(r.enr.failure.as_deref(), Some(why.as_str()));
    assert_eq!(
        r.all_journal().last().map(String::as_str),
        Some(format!("failed: {why}").as_str())
    );
    assert!(r.enr.wait.is_none());
}

#[test]
fn division_by_zero_fails_and_leaves_the_field_alone() {
    let flows = r#"flow f { step a {
        set contact.avg = 100 / contact.orders
        if contact.avg > 0 { tag "positive" } else { tag "else ran" }
    } }"#;
    let b = compile(flows);
    let r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    failed_with(
        &r,
        "division by zero in `/`",
        line_of(flows, "set contact.avg"),
    );
    assert!(r.field("avg").equals(&Value::Int(0)), "avg keeps its value");
    assert!(r.changes.is_empty(), "{:?}", r.changes);
    assert!(
        r.tags().is_empty(),
        "nothing after the failing statement ran"
    );
}

#[test]
fn remainder_by_zero_fails() {
    let flows = r#"flow f { step a { set contact.big = 7 % contact.orders } }"#;
    let b = compile(flows);
    let r = Run::new(&b, "f", contact(&b, "c1", &[("big", Value::Int(5))])).start(T0, None);
    failed_with(
        &r,
        "division by zero in `%`",
        line_of(flows, "set contact.big"),
    );
    assert_eq!(r.field("big"), Value::Int(5));
}

#[test]
fn integer_overflow_fails_instead_of_saturating() {
    let flows = r#"flow f { step a {
        tag "before"
        set contact.big = contact.big + 100
    } }"#;
    let b = compile(flows);
    let start = Value::Int(9_223_372_036_854_775_800);
    let r = Run::new(&b, "f", contact(&b, "c1", &[("big", start.clone())])).start(T0, None);
    failed_with(
        &r,
        "integer overflow in `+`",
        line_of(flows, "set contact.big"),
    );
    assert_eq!(r.field("big"), start);
    assert_eq!(r.tags(), ["before"], "earlier statements stay done");
}

#[test]
fn time_plus_a_huge_duration_fails() {
    let flows = r#"flow f { step a { if now + contact.big * 1 second > now { tag "later" } } }"#;
    let b = compile(flows);
    let r = Run::new(&b, "f", contact(&b, "c1", &[("big", Value::Int(i64::MAX))])).start(T0, None);
    failed_with(&r, "integer overflow in `+`", line_of(flows, "if now"));
}

#[test]
fn a_decimal_that_overflows_to_infinity_fails() {
    let flows = r#"flow f { when go  step a { set contact.avg = contact.avg + contact.avg } }"#;
    let b = compile(flows);
    let r = Run::new(
        &b,
        "f",
        contact(&b, "c1", &[("avg", Value::Decimal(1.7e308))]),
    )
    .start(T0, None);
    failed_with(
        &r,
        "the `decimal` result of `+` is not finite",
        line_of(flows, "set contact.avg"),
    );
    assert_eq!(
        r.field("avg"),
        Value::Decimal(1.7e308),
        "avg does not vanish"
    );
}

#[test]
fn an_invalid_pattern_at_run_time_fails() {
    let flows = r#"flow f { step a {
        if contact.note matches (contact.pattern ?? "") { tag "m" }
    } }"#;
    let b = compile(flows);
    let c = contact(
        &b,
        "c1",
        &[
            ("note", Value::text("abc")),
            ("pattern", Value::text("a(b")),
        ],
    );
    let r = Run::new(&b, "f", c).start(T0, None);
    assert_eq!(r.status(), Status::Failed);
    let why = r.enr.failure.clone().unwrap();
    assert!(
        why.starts_with("invalid pattern `a(b` for `matches`: ")
            && why.ends_with(&format!("(line {})", line_of(flows, "if contact.note"))),
        "{why}"
    );
}

#[test]
fn a_template_that_cannot_render_fails_the_send() {
    let flows = r#"flow f { step a {
        send hook "{{ contact.orders + 'x' }}"
        tag "after"
    } }"#;
    let b = compile(flows);
    let r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    assert_eq!(r.status(), Status::Failed);
    assert!(r.all_messages().is_empty(), "nothing is sent");
    let why = r.enr.failure.clone().unwrap();
    assert!(
        why.starts_with("template error: ")
            && why.ends_with(&format!("(line {})", line_of(flows, "send hook"))),
        "{why}"
    );
    assert!(!r.all_journal().iter().any(|j| j.contains("skipped")));
    assert!(r.tags().is_empty());
}

#[test]
fn a_send_skipped_for_its_cap_stays_a_skip_even_with_a_bad_template() {
    let flows = r#"flow f { step a {
        send capped "first"
        send capped "{{ contact.orders + 'x' }}"
        tag "after"
    } }"#;
    let b = compile(flows);
    let r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    assert_eq!(r.status(), Status::Completed, "{:?}", r.all_journal());
    assert_eq!(r.all_messages().len(), 1);
    assert!(
        r.all_journal()
            .contains(&"send to `capped` skipped: the cap of 1 per 86400s is reached".to_string())
    );
    assert_eq!(r.tags(), ["after"]);
}

#[test]
fn a_call_url_that_cannot_render_fails_and_calls_nothing() {
    let flows = r#"flow f { step a {
        call "https://api.example/{{ contact.orders + 'x' }}"
    } }"#;
    let b = compile(flows);
    let r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    assert_eq!(r.status(), Status::Failed);
    assert!(r.calls().is_empty());
    assert!(
        r.enr
            .failure
            .clone()
            .unwrap()
            .starts_with("template error: ")
    );
}

#[test]
fn a_failing_emit_raises_nothing() {
    let flows = r#"flow f { step a {
        emit report { total = 1 }
        emit report { total = contact.big * contact.big }
    } }"#;
    let b = compile(flows);
    let r = Run::new(&b, "f", contact(&b, "c1", &[("big", Value::Int(i64::MAX))])).start(T0, None);
    assert_eq!(r.status(), Status::Failed);
    let emitted: Vec<_> = r
        .all
        .iter()
        .filter_map(|e| match e {
            Effect::Emit(ev) => Some(ev.fields.get("total").cloned()),
            _ => None,
        })
        .collect();
    assert_eq!(
        emitted,
        [Some(Value::Int(1))],
        "only the first emit went out"
    );
}

#[test]
fn the_step_budget_names_the_line_it_ran_out_on() {
    let flows = r#"flow f { step a { wait until contact.orders >= 0  goto a } }"#;
    let b = compile(flows);
    let r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    assert_eq!(r.status(), Status::Failed);
    let why = r.enr.failure.clone().unwrap();
    assert!(
        why.starts_with(&format!("ran {STEP_BUDGET} instructions"))
            && why.ends_with(&format!("(line {})", line_of(flows, "flow f"))),
        "{why}"
    );
}

#[test]
fn an_error_in_an_exit_when_condition_fails_the_enrollment() {
    let flows = r#"flow f {
        exit when ping where 10 / (event.n ?? 0) > 1
        step a { wait 1 day }
    }"#;
    let b = compile(flows);
    let mut r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    assert_eq!(r.status(), Status::Active);
    r.event(ev("ping", 1, &[], T0 + HOUR));
    assert_eq!(r.status(), Status::Failed);
    assert_eq!(
        r.enr.failure.as_deref(),
        Some("division by zero in `/` (in `exit when`)")
    );
}

#[test]
fn ne_is_true_when_exactly_one_side_is_unset() {
    let flows = r#"flow f { step a {
        if contact.deal_status != "won" { tag "not won" }
        if contact.deal_status == "won" { tag "won" }
        if contact.note == contact.pattern { tag "both unset" }
        if contact.note != contact.pattern { tag "differ" }
        if contact.note < "m" or contact.note starts_with "a" { tag "ordered" }
    } }"#;
    let b = compile(flows);
    let r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    assert_eq!(r.status(), Status::Completed);
    assert_eq!(r.tags(), ["both unset", "not won"]);
    let won = contact(
        &b,
        "c2",
        &[
            ("deal_status", Value::text("won")),
            ("note", Value::text("a")),
        ],
    );
    let r = Run::new(&b, "f", won).start(T0, None);
    assert_eq!(r.tags(), ["differ", "ordered", "won"]);
}

fn go(at: i64) -> EngineInput {
    EngineInput::Event(ev("go", 0, &[], at))
}

#[test]
fn a_failed_enrollment_leaves_other_flows_running_and_is_listed() {
    let b = compile(
        r#"flow bad { when go  step a { set contact.avg = 1 / contact.orders } }
           flow good { when go  step a { tag "good ran"  wait 1 day  tag "good later" } }"#,
    );
    let e = Engine::new(&b).unwrap();
    let env = BTreeMap::new();
    let mut st = ContactState::new(contact(&b, "c1", &[]));
    let out = e.apply(&mut st, go(T0), T0, &env);
    assert_eq!(st.latest("bad").unwrap().status, Status::Failed);
    assert_eq!(out.failures.len(), 1);
    assert_eq!(
        (out.failures[0].flow.as_str(), out.failures[0].reason),
        ("bad", "division_by_zero")
    );
    assert!(
        out.failures[0]
            .error
            .starts_with("division by zero in `/` (line ")
    );
    assert!(st.active("good").is_some());
    e.apply(&mut st, EngineInput::Timer, T0 + DAY, &env);
    assert_eq!(st.latest("good").unwrap().status, Status::Completed);
    assert_eq!(
        st.contact.get("tags"),
        Value::set_of(vec![Value::text("good ran"), Value::text("good later")])
    );
}

#[test]
fn a_failed_enrollment_reenters_after_exit_but_not_with_never() {
    let b = compile(
        r#"flow again { when go  step a { set contact.avg = 1 / contact.orders } }
           flow once { reenter never  when go  step a { set contact.big = 1 % contact.orders } }"#,
    );
    let e = Engine::new(&b).unwrap();
    let env = BTreeMap::new();
    let mut st = ContactState::new(contact(&b, "c1", &[]));
    e.apply(&mut st, go(T0), T0, &env);
    let out = e.apply(&mut st, go(T0 + HOUR), T0 + HOUR, &env);
    // earlier enrollments are folded into counts (compact.rs)
    let count = |f: &str| {
        let kept = st.enrollments.iter().filter(|x| x.flow == f).count() as i64;
        kept + st
            .folded
            .iter()
            .filter(|x| x.flow == f)
            .map(|x| x.n)
            .sum::<i64>()
    };
    assert_eq!((count("again"), count("once")), (2, 1));
    assert_eq!(out.failures.len(), 1);
    st.contact.fields.insert("orders".into(), Value::Int(4));
    e.apply(&mut st, go(T0 + DAY), T0 + DAY, &env);
    assert_eq!(st.latest("again").unwrap().status, Status::Completed);
    assert_eq!(st.contact.get("avg"), Value::Decimal(0.25));
}

#[test]
fn a_trigger_condition_that_fails_enrolls_as_failed() {
    let b = compile(r#"flow f { when ping where 5 % (event.n ?? 0) == 1  step a { tag "in" } }"#);
    let e = Engine::new(&b).unwrap();
    let mut st = ContactState::new(contact(&b, "c1", &[]));
    let out = e.apply(
        &mut st,
        EngineInput::Event(ev("ping", 0, &[], T0)),
        T0,
        &BTreeMap::new(),
    );
    let f = st.latest("f").unwrap();
    assert_eq!(f.status, Status::Failed);
    assert_eq!(
        f.failure.as_deref(),
        Some("division by zero in `%` (in the trigger's `where`)")
    );
    assert_eq!(out.failures.len(), 1);
    assert!(st.contact.get("tags") == Value::Set(vec![]));
}

#[test]
fn a_where_with_ne_enrolls_a_contact_without_the_field() {
    let b =
        compile(r#"flow f { when go where contact.deal_status != "won"  step a { tag "in" } }"#);
    let e = Engine::new(&b).unwrap();
    let mut st = ContactState::new(contact(&b, "c1", &[]));
    e.apply(&mut st, go(T0), T0, &BTreeMap::new());
    assert_eq!(st.latest("f").map(|x| x.status), Some(Status::Completed));
}
