//! The `advance` benchmark (`cargo bench -p nudge-runtime --bench advance`).
//!
//! Takes the postback funnel conformance project; gives two lines on stdout:
//! `advance: N calls/s` (one core, the pure VM on a realistic journey: an
//! event enrolling, a wait, a timer firing, sends through an `http` channel
//! with a template, a handler moving the contact to another flow, its timer)
//! and `journeys: N tests/s` (the `nudge test` runner over the project's
//! tests). A second `advance` line measures `first_deposit` of
//! `examples/affiliate_funnel` (a send window, a `define`, an e-mail template
//! rendered with MiniJinja). Each measure runs for about a second; without
//! `--bench` (under `cargo test --benches`) for a few milliseconds.

use nudge_runtime::compiler::bundle::Bundle;
use nudge_runtime::compiler::compile;
use nudge_runtime::compiler::files::{FileSystem, SourceSet};
use nudge_runtime::compiler::value::Value;
use nudge_runtime::sim::runner::run_all;
use nudge_runtime::vm::{Contact, Effect, Enrollment, EventValue, Input, Status, World, advance};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Disk;

impl FileSystem for Disk {
    fn read_to_string(&self, path: &Path) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }
}

/// Compile the project in `dir` (relative to this crate).
fn load(dir: &str) -> Result<Bundle, String> {
    let name = dir;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "nudge"))
        .collect();
    paths.sort();
    let mut set = SourceSet::new();
    for p in paths {
        let text = std::fs::read_to_string(&p).map_err(|e| e.to_string())?;
        let name = p.file_name().map(|n| n.to_string_lossy().to_string());
        set.add(p, name.unwrap_or_default(), text);
    }
    let (checked, bundle) = compile(&set, &Disk);
    match bundle {
        Some(b) if checked.is_ok() => Ok(b),
        _ => Err(format!("`{name}` does not compile")),
    }
}

fn event(name: &str, at: i64) -> EventValue {
    EventValue {
        name: name.to_string(),
        fields: BTreeMap::from([("amount".to_string(), Value::Decimal(50.0))]),
        at,
        nth: 1,
    }
}

fn enrollment(bundle: &Bundle, flow: &str, now: i64, ev: EventValue) -> Option<Enrollment> {
    let first = bundle.flow(flow)?.steps.first()?;
    Some(Enrollment {
        flow: flow.to_string(),
        version: "bench".to_string(),
        pc: first.pc,
        status: Status::Active,
        step: first.name.clone(),
        entered_at: now,
        event: Some(ev),
        locals: BTreeMap::new(),
        wait: None,
        holdout: false,
        failure: None,
    })
}

/// One journey through `fd` and `rd`: five `advance` calls. Returns the
/// number of calls made, or why the journey did not go as expected.
fn journey(bundle: &Bundle, contact: &Contact, world: &World<'_>) -> Result<u64, String> {
    let t0 = 1_767_225_600;
    let fd = bundle.flow("fd").ok_or("no flow `fd`")?;
    let rd = bundle.flow("rd").ok_or("no flow `rd`")?;
    let mut calls = 0;
    let mut step = |p, enr: &Enrollment, c: &Contact, input: Input, now: i64| {
        calls += 1;
        black_box(advance(bundle, p, enr, c, &input, now, world))
    };
    // registration enrolls: set, send, wait 1 day
    let enr = enrollment(bundle, "fd", t0, event("registration", t0)).ok_or("no step")?;
    let out = step(fd, &enr, contact, Input::Start, t0);
    let due = out
        .enrollment
        .wait
        .as_ref()
        .and_then(|w| w.wake_at())
        .ok_or("no timer after registration")?;
    // the timer fires: the reminder, then wait for a sale
    let out = step(fd, &out.enrollment, &out.contact, Input::Timer, due);
    // the sale: the handler leaves for `rd`
    let sale = event("sale", due + 3_600);
    let out = step(
        fd,
        &out.enrollment,
        &out.contact,
        Input::Event(sale.clone()),
        due + 3_600,
    );
    if !out.effects.iter().any(|e| matches!(e, Effect::Goto { .. })) {
        return Err("the sale did not leave for `rd`".into());
    }
    // `rd` starts: two sets, a send, wait 30 days; then its timer: exit
    let enr = enrollment(bundle, "rd", due + 3_600, sale).ok_or("no step")?;
    let out = step(rd, &enr, &out.contact, Input::Start, due + 3_600);
    let due = out
        .enrollment
        .wait
        .as_ref()
        .and_then(|w| w.wake_at())
        .ok_or("no timer")?;
    let out = step(rd, &out.enrollment, &out.contact, Input::Timer, due);
    if out.enrollment.status != Status::Exited {
        return Err(format!("`rd` ended {}", out.enrollment.status.name()));
    }
    Ok(calls)
}

/// One lead through `first_deposit` of `examples/affiliate_funnel`: the
/// welcome (a send held by the flow's window, wait 1 day), the timer (a
/// `define`, the `bonus_reminder` e-mail template rendered: subject, text
/// and html, wait 2 days), the last timer (a send, completed): three calls.
fn templated(bundle: &Bundle, contact: &Contact, world: &World<'_>) -> Result<u64, String> {
    let t0 = 1_767_225_600;
    let p = bundle
        .flow("first_deposit")
        .ok_or("no flow `first_deposit`")?;
    let enr =
        enrollment(bundle, "first_deposit", t0, event("registration", t0)).ok_or("no step")?;
    let mut out = black_box(advance(bundle, p, &enr, contact, &Input::Start, t0, world));
    let mut mails = 0;
    for _ in 0..2 {
        let due = out
            .enrollment
            .wait
            .as_ref()
            .and_then(|w| w.wake_at())
            .ok_or("no timer")?;
        out = black_box(advance(
            bundle,
            p,
            &out.enrollment,
            &out.contact,
            &Input::Timer,
            due,
            world,
        ));
        mails += out
            .effects
            .iter()
            .filter(|e| matches!(e, Effect::Send(m) if m.html.is_some()))
            .count();
    }
    if out.enrollment.status != Status::Completed || mails != 1 {
        return Err(format!(
            "`first_deposit` ended {} with {mails} e-mails",
            out.enrollment.status.name()
        ));
    }
    Ok(3)
}

/// Run `f` repeatedly for about `for_how_long`; gives units per second.
fn rate(for_how_long: Duration, mut f: impl FnMut() -> Result<u64, String>) -> Result<f64, String> {
    let start = Instant::now();
    let mut units = 0;
    while start.elapsed() < for_how_long {
        units += f()?;
    }
    Ok(units as f64 / start.elapsed().as_secs_f64())
}

fn main() -> Result<(), String> {
    // `cargo bench` passes `--bench`; under `cargo test --benches` (no
    // `--bench`) this is a quick smoke run
    let quick = !std::env::args().any(|a| a == "--bench");
    let span = if quick {
        Duration::from_millis(20)
    } else {
        Duration::from_secs(1)
    };
    let bundle = load("../tests/conformance/postback_funnel")?;
    let env = BTreeMap::from([
        ("BOT_TOKEN".to_string(), "b0t".to_string()),
        ("PARTNER_TOKEN".to_string(), "s3cret".to_string()),
    ]);
    let sent = BTreeMap::new();
    let world = World {
        env: &env,
        sent: &sent,
        version: "bench",
        calls: Default::default(),
    };
    let contact = Contact {
        id: "contact-1".to_string(),
        fields: BTreeMap::from([
            ("clickid".to_string(), Value::text("ck-1")),
            ("chat_id".to_string(), Value::text("42")),
            ("deposits".to_string(), Value::Int(0)),
            ("dialog_status".to_string(), Value::text("manual")),
            ("created_at".to_string(), Value::Time(1_767_225_600)),
            ("timezone".to_string(), Value::text("UTC")),
            ("tags".to_string(), Value::Set(Vec::new())),
        ]),
    };
    rate(span / 5, || journey(&bundle, &contact, &world))?;
    let calls = rate(span, || journey(&bundle, &contact, &world))?;
    println!("advance: {calls:.0} calls/s (postback_funnel: fd → rd)");

    let affiliate = load("../examples/affiliate_funnel")?;
    let mut lead = contact.clone();
    lead.fields
        .insert("email".to_string(), Value::text("ann@example.com"));
    lead.fields
        .insert("first_name".to_string(), Value::text("Ann"));
    lead.fields
        .insert("total_paid".to_string(), Value::Decimal(0.0));
    lead.fields.insert("stage".to_string(), Value::text("lead"));
    let calls = rate(span, || templated(&affiliate, &lead, &world))?;
    println!("advance: {calls:.0} calls/s (affiliate_funnel: first_deposit, e-mail template)");

    let tests = bundle.tests.len() as u64;
    let journeys = rate(span, || {
        let out = run_all(black_box(&bundle), None).map_err(|e| e.to_string())?;
        match out.iter().find(|o| o.failure.is_some()) {
            Some(o) => Err(format!("test `{}` failed", o.name)),
            None => Ok(tests),
        }
    })?;
    println!(
        "journeys: {journeys:.0} tests/s (nudge test runner, {tests} tests of postback_funnel)"
    );
    Ok(())
}
