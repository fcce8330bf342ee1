//! One test (or a few) per instruction: send, call, set/unset, add/remove,
//! tag/untag, if/else, goto, start/stop, emit, exit, log, complete, split,
//! manual moves and the step budget.

use crate::program;
use crate::vm_support::*;
use nudge_runtime::compiler::bundle::Instr;
use nudge_runtime::compiler::value::Value;
use nudge_runtime::vm::*;
use std::collections::BTreeMap;

fn email(a: &str) -> (&'static str, Value) {
    ("email", Value::text(a))
}

#[test]
fn send_template_renders_subject_and_text_to_the_contact_email() {
    let b = program("flow f { step a { send mail hello } }");
    let c = contact(
        &b,
        "c1",
        &[email("ann@example.com"), ("score", Value::Int(7))],
    );
    let r = Run::new(&b, "f", c).start(T0, None);
    let m = r.messages();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].channel, "mail");
    assert_eq!((m[0].flow.as_str(), m[0].step.as_str()), ("f", "a"));
    assert_eq!(m[0].template.as_deref(), Some("hello"));
    assert_eq!(m[0].to.as_deref(), Some("ann@example.com"));
    assert_eq!(m[0].subject.as_deref(), Some("Hi c1"));
    assert_eq!(m[0].text.as_deref(), Some("Score 7"));
    assert_eq!(
        (m[0].at, m[0].force, m[0].request.is_none()),
        (T0, false, true)
    );
    assert_eq!(r.status(), Status::Completed);
    assert_eq!(
        r.journal(),
        ["entered step `a`", "sent to `mail`", "completed the flow"]
    );
}

#[test]
fn send_to_overrides_the_recipient_and_an_unset_one_skips() {
    let b = program(
        r#"flow f { step a {
            send mail { subject = "S", text = "T" } to "boss@example.com"
            send mail hello
            tag "went on"
        } }"#,
    );
    let r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    let m = r.messages();
    assert_eq!(m.len(), 1, "the second send has no recipient");
    assert_eq!(m[0].to.as_deref(), Some("boss@example.com"));
    assert_eq!(m[0].template, None);
    assert_eq!(m[0].subject.as_deref(), Some("S"));
    assert!(
        r.journal()
            .contains(&"send to `mail` skipped: the recipient is not set".to_string())
    );
    assert_eq!(r.tags(), ["went on"]);
}

#[test]
fn send_on_an_http_channel_carries_its_request() {
    let b = program(r#"flow f { step a { send bot "hey {{ contact.id }}" } }"#);
    let r = Run::new(&b, "f", contact(&b, "c9", &[])).start(T0, None);
    let m = r.messages();
    assert_eq!(m[0].text.as_deref(), Some("hey c9"));
    assert_eq!(m[0].to, None);
    let req = m[0].request.as_ref().unwrap();
    assert_eq!(
        (req.method.as_str(), req.url.as_str()),
        ("POST", "https://bot.example/send")
    );
    let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(body, serde_json::json!({"id": "c9", "text": "hey c9"}));
}

#[test]
fn cap_skips_sends_over_the_limit_and_force_ignores_it() {
    let b = program(
        "flow f { step a { send mail hello  send mail hello  send mail hello  send mail hello force } }",
    );
    let r = Run::new(&b, "f", contact(&b, "c1", &[email("a@example.com")])).start(T0, None);
    let m = r.messages();
    assert_eq!(m.len(), 3);
    assert_eq!(
        m.iter().map(|m| m.force).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert!(
        r.journal()
            .contains(&"send to `mail` skipped: the cap of 2 per 86400s is reached".to_string())
    );
}

#[test]
fn cap_counts_earlier_sends_in_the_rolling_window_only() {
    let b = program("flow f { step a { send mail hello } }");
    let c = contact(&b, "c1", &[email("a@example.com")]);
    // two sends inside (now - 1 day, now]: capped
    let mut r = Run::new(&b, "f", c.clone());
    r.sent.insert("mail".into(), vec![T0 - DAY + 1, T0 - HOUR]);
    let r = r.start(T0, None);
    assert!(r.messages().is_empty());
    // one of them exactly one day old: outside the window, so it goes
    let mut r = Run::new(&b, "f", c);
    r.sent.insert("mail".into(), vec![T0 - DAY, T0 - HOUR]);
    let r = r.start(T0, None);
    assert_eq!(r.messages().len(), 1);
}

#[test]
fn a_flow_window_holds_the_message_until_it_opens() {
    let b = program(
        r#"flow f { window 09:00..21:00
            step a { send bot "x" } }"#,
    );
    let r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    assert_eq!(r.messages()[0].at, T0 + 9 * HOUR);
    assert!(
        r.journal()
            .contains(&"send to `bot` held until the window opens".to_string())
    );
    // inside the window it goes at once; at 21:00 (end excluded) it waits
    let r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0 + 12 * HOUR, None);
    assert_eq!(r.messages()[0].at, T0 + 12 * HOUR);
    let r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0 + 21 * HOUR, None);
    assert_eq!(r.messages()[0].at, T0 + DAY + 9 * HOUR);
}

#[test]
fn a_step_window_is_local_to_the_contact_and_overrides_the_flow() {
    let b = program(
        r#"flow f { window 00:00..23:59
            step a { window 10:00..12:00 local
              send bot "x" } }"#,
    );
    let c = contact(&b, "c1", &[("timezone", Value::text("Europe/Rome"))]);
    let r = Run::new(&b, "f", c).start(T0, None);
    // 01:00 in Rome (CET, UTC+1) → 10:00 Rome = 09:00Z
    assert_eq!(r.messages()[0].at, t("2026-01-01T09:00:00Z"));
}

#[test]
fn call_as_name_suspends_until_the_response() {
    let b = program(
        r#"flow f { step a {
            call crm with { who = contact.id } as r
            set contact.score = r.status
            set contact.note = r.json.id
        } }"#,
    );
    let mut r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    let calls = r.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].channel.as_deref(), Some("crm"));
    assert_eq!(calls[0].url, "https://crm.example/tasks");
    assert_eq!(calls[0].json, Some(serde_json::json!({"who": "c1"})));
    assert_eq!(calls[0].result.as_deref(), Some("r"));
    assert_eq!(r.status(), Status::Active);
    let w = r.enr.wait.clone().unwrap();
    assert_eq!(w.call.as_deref(), Some("r"));
    assert_eq!(
        w.timers.iter().map(|t| t.0).collect::<Vec<_>>(),
        [T0 + 10 + 300],
        "the wait's deadline: the default timeout plus the lease"
    );
    // a response for another name is ignored
    r.input(
        Input::CallResponse {
            name: "other".into(),
            status: 500,
            json: Value::Null,
        },
        T0,
    );
    assert_eq!(r.field("score"), Value::Int(0));
    assert_eq!(r.status(), Status::Active);
    let json = Value::from_json(&serde_json::json!({"id": "T-17"}));
    r.input(
        Input::CallResponse {
            name: "r".into(),
            status: 201,
            json,
        },
        T0 + 5,
    );
    assert_eq!(r.field("score"), Value::Int(201));
    assert_eq!(r.field("note"), Value::text("T-17"));
    assert_eq!(r.status(), Status::Completed);
    assert_eq!(r.journal()[0], "call `r` answered with status 201");
}

/// LANGUAGE.md §10: a response that never comes resumes the wait at its
/// deadline (the call's timeout plus the lease) with status 0 and JSON
/// `null`; a response after that changes nothing.
#[test]
fn call_as_name_resumes_with_status_0_at_its_deadline() {
    let b = program(
        r#"flow f { step a {
            call crm with { who = contact.id } as r
            set contact.score = r.status + 1
            set contact.note = "after"
        } }"#,
    );
    let mut r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    let deadline = r.enr.wait.as_ref().unwrap().timers[0].0;
    r.input(Input::Timer, deadline - 1);
    assert_eq!(r.status(), Status::Active, "not before the deadline");
    r.input(Input::Timer, deadline);
    assert_eq!(r.field("score"), Value::Int(1));
    assert_eq!(r.field("note"), Value::text("after"));
    assert_eq!(r.status(), Status::Completed);
    assert_eq!(r.journal()[0], "call `r` got no answer in time: status 0");
    r.input(
        Input::CallResponse {
            name: "r".into(),
            status: 201,
            json: Value::Null,
        },
        deadline + 5,
    );
    assert_eq!(
        r.field("score"),
        Value::Int(1),
        "a late response is ignored"
    );
}

#[test]
fn call_without_as_goes_on_at_once() {
    let b = program(
        r#"flow f { step a {
            call "https://hook.example/x/{{ contact.id }}"
            call "https://hook.example/y" with { who = contact.id }
            tag "after"
        } }"#,
    );
    let r = Run::new(&b, "f", contact(&b, "a b", &[])).start(T0, None);
    let calls = r.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].method, "GET");
    assert_eq!(calls[0].url, "https://hook.example/x/a%20b");
    assert_eq!(
        (calls[0].result.as_ref(), calls[0].channel.as_ref()),
        (None, None)
    );
    assert_eq!(calls[1].method, "POST");
    assert_eq!(calls[1].json, Some(serde_json::json!({"who": "a b"})));
    assert_eq!(r.tags(), ["after"]);
    assert_eq!(r.status(), Status::Completed);
}

#[test]
fn set_and_unset_change_the_contact_and_report_changes() {
    let b = program(
        r#"flow f { step a {
            set contact.note = "n-" + contact.id
            set contact.score = contact.score + 5
            unset contact.deal_at
        } }"#,
    );
    let c = contact(&b, "c1", &[("deal_at", Value::Time(T0))]);
    let r = Run::new(&b, "f", c).start(T0, None);
    assert_eq!(r.field("note"), Value::text("n-c1"));
    assert_eq!(r.field("score"), Value::Int(5));
    assert_eq!(r.field("deal_at"), Value::Null);
    assert!(!r.contact.fields.contains_key("deal_at"));
    assert_eq!(
        r.changes,
        [
            Change::Set("note".into(), Value::text("n-c1")),
            Change::Set("score".into(), Value::Int(5)),
            Change::Unset("deal_at".into()),
        ]
    );
}

#[test]
fn add_remove_tag_and_untag_edit_collections() {
    let b = program(
        r#"flow f { step a {
            add "a" to contact.items
            add "b" to contact.items
            remove "a" from contact.items
            tag "x"  tag "y"  tag "x"
            untag "y"
            tag "w-" + contact.id
        } }"#,
    );
    let r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    assert_eq!(r.field("items"), Value::List(vec![Value::text("b")]));
    assert_eq!(r.tags(), ["w-c1", "x"]);
}

#[test]
fn if_else_if_else_jumps_to_the_matching_branch() {
    let b = program(
        r#"flow f { step a {
            if contact.score > 10 { tag "hi" } else if contact.score > 5 { tag "mid" } else { tag "lo" }
            tag "end"
        } }"#,
    );
    for (score, tag) in [(11, "hi"), (6, "mid"), (5, "lo")] {
        let c = contact(&b, "c1", &[("score", Value::Int(score))]);
        let r = Run::new(&b, "f", c).start(T0, None);
        let mut want = vec![tag, "end"];
        want.sort_unstable();
        assert_eq!(r.tags(), want, "score {score}");
    }
}

#[test]
fn goto_step_jumps_and_journals_the_step() {
    let b = program(
        r#"flow f {
            step a { goto c }
            step b { tag "b" }
            step c { tag "c" }
        }"#,
    );
    let r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    assert_eq!(r.tags(), ["c"]);
    assert_eq!(r.step(), "c");
    assert_eq!(
        r.journal(),
        ["entered step `a`", "entered step `c`", "completed the flow"]
    );
}

#[test]
fn goto_start_stop_and_emit_become_effects() {
    let b = program(
        r#"flow f {
            step a {
              start g
              stop h
              emit other { n = 3 }
              goto g.x
            }
        }
        flow g { step y { wait 1 day } step x { wait 1 day } }
        flow h { step z { wait 1 day } }"#,
    );
    let trigger = ev("ping", 1, &[], T0);
    let r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0 + 7, Some(trigger.clone()));
    let others: Vec<Effect> = r.others().into_iter().cloned().collect();
    assert_eq!(
        others,
        [
            Effect::Start {
                flow: "g".into(),
                event: Some(trigger.clone())
            },
            Effect::Stop { flow: "h".into() },
            Effect::Emit(EventValue {
                name: "other".into(),
                fields: BTreeMap::from([("n".to_string(), Value::Int(3))]),
                at: T0 + 7,
                nth: 0,
            }),
            Effect::Goto {
                flow: "g".into(),
                step: Some("x".into()),
                event: Some(trigger),
            },
        ]
    );
    assert_eq!(r.status(), Status::Exited);
    assert_eq!(r.journal().last().unwrap(), "left for flow `g`");
}

#[test]
fn exit_ends_the_flow_and_log_writes_the_journal() {
    let b = program(
        r#"flow f {
            step a { log "about to leave"  exit }
            step b { tag "b" }
        }"#,
    );
    let r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    assert_eq!(r.status(), Status::Exited);
    assert!(r.tags().is_empty());
    assert_eq!(
        r.journal(),
        ["entered step `a`", "about to leave", "exited"]
    );
    assert!(r.enr.wait.is_none());
}

#[test]
fn running_past_the_last_step_completes() {
    let b = program(r#"flow f { step a { tag "a" } step b { tag "b" } }"#);
    let r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    assert_eq!(r.status(), Status::Completed);
    assert_eq!(r.tags(), ["a", "b"]);
    assert_eq!(r.step(), "b");
}

#[test]
fn a_finished_enrollment_ignores_inputs() {
    let b = program(r#"flow f { on ping -> tag "p"  step a { exit } }"#);
    let mut r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    let before = r.enr.clone();
    r.event(ev("ping", 1, &[], T0 + 1));
    assert_eq!(r.enr, before);
    assert!(r.last.is_empty() && r.tags().is_empty());
}

#[test]
fn split_is_deterministic_by_contact_id_and_respects_shares() {
    let b = program(r#"flow f { step a { split { 30% -> tag "A"  70% -> tag "B" } } }"#);
    let arm = |id: &str| {
        Run::new(&b, "f", contact(&b, id, &[]))
            .start(T0, None)
            .tags()
    };
    let mut a = 0;
    for i in 0..1000 {
        let id = format!("contact-{i}");
        let got = arm(&id);
        assert_eq!(got, arm(&id), "same id, same arm");
        // the arm is the one the hash of (id, flow, split place) picks
        let want = if hash_share(&[&id, "f", "0"]) < 30.0 {
            "A"
        } else {
            "B"
        };
        assert_eq!(got, [want], "{id}");
        if want == "A" {
            a += 1;
        }
    }
    assert!((250..=350).contains(&a), "30% of 1000 ids, got {a}");
}

#[test]
fn a_manual_move_runs_the_target_step() {
    let b = program(r#"flow f { step a { wait 3 days } step b { tag "b"  wait 1 day } }"#);
    let mut r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    r.input(Input::Move { step: "b".into() }, T0 + HOUR);
    assert_eq!(r.step(), "b");
    assert_eq!(r.tags(), ["b"]);
    assert_eq!(r.timers(), [T0 + HOUR + DAY], "the old wait is dropped");
    assert_eq!(r.journal()[0], "moved to step `b`");
}

#[test]
fn a_runaway_enrollment_fails_after_the_step_budget() {
    // the data condition already holds, so the wait never suspends
    let b = program(r#"flow f { step a { wait until contact.score >= 0  goto a } }"#);
    let r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    assert_eq!(r.status(), Status::Failed);
    let why = r.enr.failure.clone().unwrap();
    assert!(
        why.contains(&format!("ran {STEP_BUDGET} instructions")),
        "{why}"
    );
    assert_eq!(r.journal().last().unwrap(), &format!("failed: {why}"));
    assert!(r.enr.wait.is_none());
}

#[test]
fn a_jump_to_itself_is_stopped_by_the_budget() {
    let mut b = program(r#"flow f { step a { tag "x"  wait 1 day } }"#);
    let f = b.flows.iter_mut().find(|p| p.name == "f").unwrap();
    let at = f
        .code
        .iter()
        .position(|i| matches!(i, Instr::Tag(_)))
        .unwrap();
    f.code[at] = Instr::Jump(at as u32);
    let r = Run::new(&b, "f", contact(&b, "c1", &[])).start(T0, None);
    assert_eq!(r.status(), Status::Failed);
    assert_eq!(r.enr.pc, at as u32);
}
