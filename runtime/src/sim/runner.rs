//! Running `test` blocks (LANGUAGE.md §8): each statement in order against a
//! fresh [`Sim`]; the first failing expectation stops the test and is
//! reported with its line and what was found instead (the contact's flows,
//! steps, pending waits and unconsumed messages). An expectation about a
//! flow whose enrollment failed (a runtime error) says the error and its
//! line; the trace shows the journey's `failed: …` line where it happened.

use super::Sim;
use crate::vm::{Message, Request, Scope, Status, eval};
use nudge_compiler::bundle::{Bundle, BundleError, CallTarget, Code, Root, TestDef, TestOp};
use nudge_compiler::value::{Value, format_time};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Why a test failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub line: u32,
    /// The statement as written.
    pub text: String,
    pub message: String,
    /// The state found instead.
    pub found: String,
}

#[derive(Debug, Clone)]
pub struct TestOutcome {
    pub name: String,
    pub file: String,
    pub line: u32,
    pub failure: Option<Failure>,
    /// The journey, step by step (for `--trace`).
    pub trace: Vec<String>,
}

/// Run every test whose name contains `filter`.
pub fn run_all(bundle: &Bundle, filter: Option<&str>) -> Result<Vec<TestOutcome>, BundleError> {
    // the version (a hash of the whole bundle) is computed once
    let version = bundle.hash()?;
    Ok(bundle
        .tests
        .iter()
        .filter(|t| filter.is_none_or(|f| t.name.contains(f)))
        .map(|t| run_test_on(bundle, &version, t))
        .collect())
}

/// Run one test in a fresh world.
pub fn run_test(bundle: &Bundle, test: &TestDef) -> Result<TestOutcome, BundleError> {
    Ok(run_test_on(bundle, &bundle.hash()?, test))
}

/// Run one test with the bundle's version already computed.
fn run_test_on(bundle: &Bundle, version: &str, test: &TestDef) -> TestOutcome {
    let mut sim = Sim::with_version(bundle, version.to_string());
    let mut trace = Vec::new();
    let mut failure = None;
    let mut seen_journal = 0;
    let set: Vec<&str> = test
        .steps
        .iter()
        .filter_map(|s| match &s.op {
            TestOp::Env { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let missing: Vec<String> = bundle
        .env
        .iter()
        .filter(|n| !set.contains(&n.as_str()))
        .map(|n| format!("`{n}`"))
        .collect();
    if !missing.is_empty() {
        failure = Some(Failure {
            line: test.line,
            text: format!("test \"{}\"", test.name),
            message: format!(
                "the project reads env {} but this test does not set {} (add `env NAME = \"…\"`; `nudge run` refuses to start without them)",
                missing.join(", "),
                if missing.len() > 1 { "them" } else { "it" }
            ),
            found: String::new(),
        });
    }
    for step in test.steps.iter().take_while(|_| failure.is_none()) {
        trace.push(format!("{:>4} | {}", step.line, first_line(&step.text)));
        let result = op(&mut sim, &step.op);
        for (i, j) in &sim.journal[seen_journal..] {
            let who = sim.contacts.get(*i).map_or("?", |c| c.contact.id.as_str());
            let place = if j.step.is_empty() {
                j.flow.clone()
            } else {
                format!("{}.{}", j.flow, j.step)
            };
            trace.push(format!(
                "     | {} {who} {place}: {}",
                format_time(j.at),
                j.what
            ));
        }
        seen_journal = sim.journal.len();
        if let Err(message) = result {
            failure = Some(Failure {
                line: step.line,
                text: step.text.clone(),
                message,
                found: state(&sim),
            });
            break;
        }
    }
    TestOutcome {
        name: test.name.clone(),
        file: test.file.clone(),
        line: test.line,
        failure,
        trace,
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn message_value(m: &Message) -> Value {
    let mut map = BTreeMap::new();
    map.insert("channel".to_string(), Value::text(&m.channel));
    for (k, v) in [
        ("template", &m.template),
        ("to", &m.to),
        ("subject", &m.subject),
        ("text", &m.text),
        ("html", &m.html),
    ] {
        if let Some(v) = v {
            map.insert(k.to_string(), Value::text(v));
        }
    }
    map.insert("at".to_string(), Value::Time(m.at));
    Value::Map(map)
}

fn request_value(r: &Request) -> Value {
    Value::Map(BTreeMap::from([
        ("method".to_string(), Value::text(&r.method)),
        ("url".to_string(), Value::text(&r.url)),
        (
            "headers".to_string(),
            Value::Map(
                r.headers
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::text(v)))
                    .collect(),
            ),
        ),
        (
            "json".to_string(),
            r.json.as_ref().map_or(Value::Null, Value::from_json),
        ),
        ("body".to_string(), Value::text(&r.body)),
    ]))
}

/// A test's expression; a runtime error fails the test with it.
fn eval_in(
    sim: &Sim<'_>,
    code: &Code,
    message: Option<&Value>,
    request: Option<&Value>,
) -> Result<Value, String> {
    let named = |r: &Root| match r {
        Root::NamedContact(n) => sim
            .names
            .get(n)
            .and_then(|i| sim.contacts.get(*i))
            .map_or(Value::Null, |c| c.contact.as_value()),
        Root::Message => message.cloned().unwrap_or_default(),
        Root::Request => request.cloned().unwrap_or_default(),
        _ => Value::Null,
    };
    let mut s = Scope::new(sim.now);
    s.contact = sim.contacts.first().map(|c| &c.contact);
    s.named = Some(&named);
    s.env = Some(&sim.env);
    eval(code, &s).map_err(|e| format!("the test's expression cannot be evaluated: {e}"))
}

/// Whether a captured item matches an optional `where`; the first error
/// found is kept in `err`.
fn holds(r: Result<Value, String>, err: &mut Option<String>) -> bool {
    match r {
        Ok(v) => v.truthy(),
        Err(e) => {
            err.get_or_insert(e);
            false
        }
    }
}

fn contact_index(sim: &Sim<'_>, name: &Option<String>) -> Result<usize, String> {
    match name {
        Some(n) => sim
            .names
            .get(n)
            .copied()
            .ok_or_else(|| format!("no contact `{n}` in this test")),
        None if sim.contacts.is_empty() => {
            Err("no contact yet: create one with `contact { … }`".into())
        }
        None => Ok(0),
    }
}

fn fields(sim: &Sim<'_>, given: &[(String, Code)]) -> Result<Vec<(String, Value)>, String> {
    given
        .iter()
        .map(|(k, c)| Ok((k.clone(), eval_in(sim, c, None, None)?)))
        .collect()
}

fn op(sim: &mut Sim<'_>, op: &TestOp) -> Result<(), String> {
    match op {
        TestOp::Env { name, value } => {
            sim.env.insert(name.clone(), value.clone());
        }
        TestOp::Contact { id, fields: f } => {
            let given = fields(sim, f)?;
            sim.create_contact(id.as_deref(), given)?;
        }
        TestOp::Event {
            name,
            fields: f,
            contact,
        } => {
            let i = contact_index(sim, contact)?;
            let given = fields(sim, f)?;
            let values = sim.event_fields(name, given)?;
            sim.event(i, name, values);
        }
        TestOp::Postback { source, params } => {
            sim.postback(source, params.iter().cloned().collect())?;
        }
        TestOp::Set {
            contact,
            field,
            value,
        } => {
            let i = contact_index(sim, contact)?;
            let v = eval_in(sim, value, None, None)?;
            sim.set(i, field, v)?;
        }
        TestOp::After(d) => match eval_in(sim, d, None, None)? {
            Value::Duration(s) => sim.advance_to(sim.now.saturating_add(s))?,
            _ => return Err("`after` needs a duration".into()),
        },
        TestOp::At(t) => match eval_in(sim, t, None, None)? {
            Value::Time(t) if t >= sim.now => sim.advance_to(t)?,
            Value::Time(t) => {
                return Err(format!(
                    "the clock cannot go back from {} to {}",
                    format_time(sim.now),
                    format_time(t)
                ));
            }
            _ => return Err("`at` needs an instant".into()),
        },
        TestOp::Reply {
            target,
            status,
            json,
        } => {
            let key = match target {
                CallTarget::Channel(c) => c.clone(),
                CallTarget::Url(u) => u.0.clone(),
            };
            let j = match json {
                Some(c) => eval_in(sim, c, None, None)?,
                None => Value::Null,
            };
            sim.replies
                .entry(key)
                .or_default()
                .push_back((i64::from(*status), j));
        }
        TestOp::ExpectIn { flow, step } => {
            let st = sim.contacts.first().ok_or("no contact yet")?;
            match st.active(flow) {
                Some(e) if &e.step == step => {}
                Some(e) => {
                    return Err(format!(
                        "expected the contact in `{flow}.{step}`, but it is at step `{}`",
                        e.step
                    ));
                }
                None => {
                    return Err(format!(
                        "expected the contact in `{flow}.{step}`, but it is not in flow `{flow}`{}",
                        failed_note(st, flow)
                    ));
                }
            }
        }
        TestOp::ExpectEnrolled { flow, negated } => {
            let st = sim.contacts.first().ok_or("no contact yet")?;
            let enrolled = st.active(flow).is_some();
            if enrolled == *negated {
                return Err(if *negated {
                    format!("expected the contact not to be in flow `{flow}`, but it is")
                } else {
                    format!(
                        "expected the contact in flow `{flow}`, but it is not{}",
                        failed_note(st, flow)
                    )
                });
            }
        }
        TestOp::ExpectCompleted { flow } => status(sim, flow, Status::Completed)?,
        TestOp::ExpectExited { flow } => status(sim, flow, Status::Exited)?,
        TestOp::ExpectConverted { flow } => status(sim, flow, Status::Converted)?,
        TestOp::ExpectSent {
            channel,
            template,
            cond,
            negated,
        } => {
            let now = sim.now;
            let mut err = None;
            let found = (0..sim.messages.len()).find(|i| {
                let m = &sim.messages[*i];
                !m.consumed
                    && m.item.at <= now
                    && &m.item.channel == channel
                    && template
                        .as_ref()
                        .is_none_or(|t| m.item.template.as_ref() == Some(t))
                    && cond.as_ref().is_none_or(|c| {
                        holds(
                            eval_in(sim, c, Some(&message_value(&m.item)), None),
                            &mut err,
                        )
                    })
            });
            if let Some(e) = err {
                return Err(e);
            }
            match (found, negated) {
                (Some(i), false) => sim.messages[i].consumed = true,
                (None, false) => {
                    return Err(format!(
                        "expected a message sent to `{channel}`{}{}, found none",
                        template
                            .as_ref()
                            .map(|t| format!(" with template `{t}`"))
                            .unwrap_or_default(),
                        if cond.is_some() {
                            " matching the condition"
                        } else {
                            ""
                        }
                    ));
                }
                (Some(i), true) => {
                    return Err(format!(
                        "expected no such message to `{channel}`, but one was sent: {}",
                        describe(&sim.messages[i].item)
                    ));
                }
                (None, true) => {}
            }
        }
        TestOp::ExpectNothingSent => {
            let left: Vec<String> = sim
                .messages
                .iter()
                .filter(|m| !m.consumed && m.item.at <= sim.now)
                .map(|m| describe(&m.item))
                .collect();
            if !left.is_empty() {
                return Err(format!(
                    "expected nothing sent, but found {}: {}",
                    left.len(),
                    left.join("; ")
                ));
            }
        }
        TestOp::ExpectCalled { target, cond } => {
            let mut err = None;
            let found = (0..sim.calls.len()).find(|i| {
                let c = &sim.calls[*i];
                let target_ok = match target {
                    CallTarget::Channel(ch) => c.item.channel.as_ref() == Some(ch),
                    CallTarget::Url(u) => c.item.url == u.0,
                };
                !c.consumed
                    && target_ok
                    && cond.as_ref().is_none_or(|k| {
                        holds(
                            eval_in(sim, k, None, Some(&request_value(&c.item))),
                            &mut err,
                        )
                    })
            });
            if let Some(e) = err {
                return Err(e);
            }
            match found {
                Some(i) => sim.calls[i].consumed = true,
                None => {
                    let made: Vec<String> = sim
                        .calls
                        .iter()
                        .filter(|c| !c.consumed)
                        .map(|c| {
                            let url = crate::vm::redact::url_for_journal(&c.item.url, &sim.env);
                            format!("{} {url}", c.item.method)
                        })
                        .collect();
                    let what = match target {
                        CallTarget::Channel(c) => format!("`{c}`"),
                        CallTarget::Url(u) => format!("`{}`", u.0),
                    };
                    return Err(format!(
                        "expected a call to {what}{}, found {}",
                        if cond.is_some() {
                            " matching the condition"
                        } else {
                            ""
                        },
                        if made.is_empty() {
                            "no calls".to_string()
                        } else {
                            made.join("; ")
                        }
                    ));
                }
            }
        }
        TestOp::Expect(c) => {
            if !eval_in(sim, c, None, None)?.truthy() {
                return Err("expected the condition to hold, but it does not".into());
            }
        }
    }
    Ok(())
}

/// `: it failed at step `s`: …` when the contact's last enrollment of
/// `flow` failed, else nothing.
fn failed_note(st: &crate::engine::ContactState, flow: &str) -> String {
    match st.latest(flow) {
        Some(e) if e.status == Status::Failed => format!(
            " (it failed at step `{}`: {})",
            e.step,
            e.failure.as_deref().unwrap_or("unknown error")
        ),
        _ => String::new(),
    }
}

fn status(sim: &Sim<'_>, flow: &str, want: Status) -> Result<(), String> {
    let st = sim.contacts.first().ok_or("no contact yet")?;
    match st.latest(flow) {
        Some(e) if e.status == want => Ok(()),
        Some(e) if e.status == Status::Failed => Err(format!(
            "expected the contact to have {} flow `{flow}`, but it failed at step `{}`: {}",
            want.name(),
            e.step,
            e.failure.as_deref().unwrap_or("unknown error")
        )),
        Some(e) => Err(format!(
            "expected the contact to have {} flow `{flow}`, but it is {}",
            want.name(),
            if e.is_active() {
                format!("still in it, at step `{}`", e.step)
            } else {
                e.status.name().to_string()
            }
        )),
        None => Err(format!(
            "expected the contact to have {} flow `{flow}`, but it never entered it",
            want.name()
        )),
    }
}

fn describe(m: &Message) -> String {
    let body = m
        .subject
        .as_ref()
        .or(m.text.as_ref())
        .or(m.html.as_ref())
        .cloned()
        .unwrap_or_default();
    let mut s = format!("{} {:?}", m.channel, body);
    if let Some(t) = &m.template {
        let _ = write!(s, " (template {t})");
    }
    if let Some(to) = &m.to {
        let _ = write!(s, " to {to}");
    }
    s
}

/// What the test's contacts look like now.
fn state(sim: &Sim<'_>) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "at {}", format_time(sim.now));
    for st in &sim.contacts {
        let _ = writeln!(o, "contact `{}`:", st.contact.id);
        let fields: Vec<String> = st
            .contact
            .fields
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "created_at" | "timezone"))
            .map(|(k, v)| format!("{k} = {}", v.to_json()))
            .collect();
        if !fields.is_empty() {
            let _ = writeln!(o, "  fields: {}", fields.join(", "));
        }
        let mut flows: Vec<&str> = st.enrollments.iter().map(|e| e.flow.as_str()).collect();
        flows.dedup();
        if flows.is_empty() {
            let _ = writeln!(o, "  in no flow");
        }
        let mut shown = std::collections::BTreeSet::new();
        for f in flows {
            if !shown.insert(f) {
                continue;
            }
            let Some(e) = st.latest(f) else { continue };
            if e.is_active() {
                let waiting = match &e.wait {
                    Some(w) if w.call.is_some() => " (waiting for a call response)".to_string(),
                    Some(w) => match w.wake_at() {
                        Some(t) => format!(" (waiting; next timer at {})", format_time(t)),
                        None => " (waiting for an event or a data change)".to_string(),
                    },
                    None => String::new(),
                };
                let _ = writeln!(o, "  in `{f}` at step `{}`{waiting}", e.step);
            } else {
                let why = e
                    .failure
                    .as_ref()
                    .map(|f| format!(": {f}"))
                    .unwrap_or_default();
                let _ = writeln!(o, "  {} `{f}` at step `{}`{why}", e.status.name(), e.step);
            }
        }
    }
    let left: Vec<String> = sim
        .messages
        .iter()
        .filter(|m| !m.consumed)
        .map(|m| {
            let held = if m.item.at > sim.now {
                format!(" (held until {})", format_time(m.item.at))
            } else {
                String::new()
            };
            format!("  {}{held}", describe(&m.item))
        })
        .collect();
    if left.is_empty() {
        let _ = writeln!(o, "no unconsumed messages");
    } else {
        let _ = writeln!(o, "unconsumed messages:\n{}", left.join("\n"));
    }
    o
}

/// The lines `nudge test` prints, and whether every test passed.
pub fn report(outcomes: &[TestOutcome], trace: bool) -> (String, bool) {
    let mut o = String::new();
    let mut failed = 0;
    for t in outcomes {
        match &t.failure {
            None => {
                let _ = writeln!(o, "ok   {} ({}:{})", t.name, t.file, t.line);
            }
            Some(f) => {
                failed += 1;
                let _ = writeln!(o, "FAIL {} ({}:{})", t.name, t.file, t.line);
                let _ = writeln!(o, "  --> {}:{}", t.file, f.line);
                let _ = writeln!(o, "   | {}", first_line(&f.text));
                let _ = writeln!(o, "   = {}", f.message);
                for line in f.found.lines() {
                    let _ = writeln!(o, "     {line}");
                }
            }
        }
        if trace {
            for line in &t.trace {
                let _ = writeln!(o, "    {line}");
            }
        }
    }
    let passed = outcomes.len() - failed;
    let _ = writeln!(o, "{passed} passed, {failed} failed");
    (o, failed == 0)
}
