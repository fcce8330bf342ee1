//! What crosses flows, through [`Engine::apply`]: `goto` another flow and
//! `start` carry the event, `stop` exits the other flow, `emit` enrolls,
//! a `set` in one flow re-checks another's data-match wait, and holdouts.

use crate::program;
use crate::vm_support::*;
use nudge_runtime::compiler::value::Value;
use nudge_runtime::engine::{ContactState, Engine, EngineInput};
use nudge_runtime::vm::*;
use std::collections::BTreeMap;

fn state(b: &nudge_runtime::compiler::bundle::Bundle, id: &str) -> ContactState {
    ContactState::new(contact(b, id, &[]))
}

fn ping(at: i64) -> EngineInput {
    EngineInput::Event(ev("ping", 0, &[], at))
}

#[test]
fn goto_another_flow_carries_the_event_to_its_step() {
    let b = program(
        r#"flow f { when ping  step a { goto g.x } }
           flow g { step w { tag "w" } step x { set contact.note = event.name  wait 1 day } }"#,
    );
    let e = Engine::new(&b).unwrap();
    let mut st = state(&b, "c1");
    e.apply(&mut st, ping(T0), T0, &BTreeMap::new());
    assert_eq!(st.latest("f").unwrap().status, Status::Exited);
    let g = st.active("g").unwrap();
    assert_eq!(g.step, "x");
    assert_eq!(g.event.as_ref().map(|e| e.name.as_str()), Some("ping"));
    assert_eq!(st.contact.get("note"), Value::text("ping"));
    assert_eq!(st.contact.get("tags"), Value::Set(vec![]));
}

#[test]
fn start_runs_in_parallel_and_stop_exits_the_other_flow() {
    let b = program(
        r#"flow f { when ping  step a { start g  wait 1 day  stop g } }
           flow g { step x { wait 7 days } }"#,
    );
    let e = Engine::new(&b).unwrap();
    let env = BTreeMap::new();
    let mut st = state(&b, "c1");
    e.apply(&mut st, ping(T0), T0, &env);
    assert!(st.active("f").is_some() && st.active("g").is_some());
    assert_eq!(st.active("g").unwrap().event.as_ref().unwrap().name, "ping");
    assert_eq!(st.next_wake(), Some(T0 + DAY));
    let out = e.apply(&mut st, EngineInput::Timer, T0 + DAY, &env);
    assert_eq!(st.latest("f").unwrap().status, Status::Completed);
    assert_eq!(st.latest("g").unwrap().status, Status::Exited);
    assert!(
        out.journal
            .iter()
            .any(|j| j.flow == "g" && j.what == "stopped by flow `f`")
    );
}

#[test]
fn an_emitted_event_enrolls_another_flow_at_the_same_instant() {
    let b = program(
        r#"flow f { when ping  step a { emit other { n = 3 }  wait 1 day } }
           flow h { when other where event.n == 3  step x { set contact.score = event.n ?? 0 } }"#,
    );
    let e = Engine::new(&b).unwrap();
    let mut st = state(&b, "c1");
    e.apply(&mut st, ping(T0 + 9), T0 + 9, &BTreeMap::new());
    let h = st.latest("h").unwrap();
    assert_eq!((h.status, h.entered_at), (Status::Completed, T0 + 9));
    assert_eq!(st.contact.get("score"), Value::Int(3));
    assert_eq!(st.event_counts.get("other"), Some(&1));
}

#[test]
fn a_set_in_one_flow_rechecks_another_flows_data_wait() {
    let b = program(
        r#"flow f { when sale  step a { wait until contact.score > 50  tag "hot" } }
           flow g { when ping  step x { set contact.score = 60 } }"#,
    );
    let e = Engine::new(&b).unwrap();
    let env = BTreeMap::new();
    let mut st = state(&b, "c1");
    e.apply(
        &mut st,
        EngineInput::Event(ev("sale", 0, &[], T0)),
        T0,
        &env,
    );
    assert!(st.active("f").is_some());
    e.apply(&mut st, ping(T0 + 1), T0 + 1, &env);
    assert_eq!(st.latest("f").unwrap().status, Status::Completed);
    assert_eq!(st.contact.get("tags"), Value::Set(vec![Value::text("hot")]));
}

#[test]
fn a_change_from_outside_rechecks_then_raises_contact_updated() {
    let b = program(
        r#"flow f { when sale  step a { wait until contact.score > 50  tag "hot" } }
           flow u { when contact_updated where "score" in event.changed  step x { tag "updated" } }"#,
    );
    let e = Engine::new(&b).unwrap();
    let env = BTreeMap::new();
    let mut st = state(&b, "c1");
    e.apply(
        &mut st,
        EngineInput::Event(ev("sale", 0, &[], T0)),
        T0,
        &env,
    );
    st.contact.fields.insert("score".into(), Value::Int(99));
    e.apply(
        &mut st,
        EngineInput::Changed(vec!["score".into()]),
        T0 + 1,
        &env,
    );
    assert_eq!(
        st.contact.get("tags"),
        Value::Set(vec![Value::text("hot"), Value::text("updated")])
    );
}

#[test]
fn holdout_runs_the_flow_without_sends_or_calls() {
    let b = program(
        r#"flow f {
            when ping
            holdout 50%
            step a {
              send bot "x"
              send mail hello force
              call crm with { who = "x" } as r
              set contact.score = r.status
              tag "ran"
            }
        }"#,
    );
    let held = (0..100)
        .map(|i| format!("c{i}"))
        .find(|id| hash_share(&[id, "f", "holdout"]) < 50.0)
        .unwrap();
    let kept = (0..100)
        .map(|i| format!("c{i}"))
        .find(|id| hash_share(&[id, "f", "holdout"]) >= 50.0)
        .unwrap();
    let e = Engine::new(&b).unwrap();
    let env = BTreeMap::new();

    let mut st = ContactState::new(contact(
        &b,
        &held,
        &[("email", Value::text("a@example.com"))],
    ));
    let out = e.apply(&mut st, ping(T0), T0, &env);
    assert!(out.messages.is_empty() && out.calls.is_empty());
    let f = st.latest("f").unwrap();
    assert!(f.holdout);
    assert_eq!(f.status, Status::Completed);
    assert_eq!(
        st.contact.get("score"),
        Value::Int(0),
        "status 0 for a held-out call"
    );
    assert_eq!(st.contact.get("tags"), Value::Set(vec![Value::text("ran")]));
    let lines: Vec<&str> = out.journal.iter().map(|j| j.what.as_str()).collect();
    assert!(lines.contains(&"entered the flow (holdout)"));
    assert!(lines.contains(&"send to `bot` skipped: holdout"));
    assert!(lines.contains(&"send to `mail` skipped: holdout"));
    assert!(lines.contains(&"call skipped: holdout"));

    // without an e-mail address, a held-out send is still skipped as holdout
    let mut st = ContactState::new(contact(&b, &held, &[]));
    let out = e.apply(&mut st, ping(T0), T0, &env);
    let lines: Vec<&str> = out.journal.iter().map(|j| j.what.as_str()).collect();
    assert!(
        lines.contains(&"send to `mail` skipped: holdout"),
        "{lines:?}"
    );

    let mut st = ContactState::new(contact(
        &b,
        &kept,
        &[("email", Value::text("a@example.com"))],
    ));
    let out = e.apply(&mut st, ping(T0), T0, &env);
    assert_eq!((out.messages.len(), out.calls.len()), (2, 1));
    assert!(!st.latest("f").unwrap().holdout);
    assert_eq!(
        st.latest("f").unwrap().status,
        Status::Active,
        "waits for the call"
    );
}

#[test]
fn a_set_in_a_handler_rechecks_the_data_wait_it_returns_to() {
    let b = program(
        r#"flow f {
            when sale
            on ping -> set contact.score = 60
            step a { wait until contact.score > 50 within 3 days else exit  tag "hot" }
        }"#,
    );
    let e = Engine::new(&b).unwrap();
    let env = BTreeMap::new();
    let mut st = state(&b, "c1");
    e.apply(
        &mut st,
        EngineInput::Event(ev("sale", 0, &[], T0)),
        T0,
        &env,
    );
    assert_eq!(st.next_wake(), Some(T0 + 3 * DAY));
    e.apply(&mut st, ping(T0 + 1), T0 + 1, &env);
    assert_eq!(st.latest("f").unwrap().status, Status::Completed);
    assert_eq!(st.contact.get("tags"), Value::Set(vec![Value::text("hot")]));
}
