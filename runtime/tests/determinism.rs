//! Determinism: the same sources give the same bundle bytes and hash, a
//! bundle round-trips through its bytes, and the same journey run twice (or
//! on the round-tripped bundle) gives identical messages, calls, journal
//! and contact states. Uses the conformance projects read from disk.

#![allow(clippy::unwrap_used)]

use nudge_runtime::compiler::bundle::{Bundle, FORMAT_VERSION};
use nudge_runtime::compiler::compile;
use nudge_runtime::compiler::files::{FileSystem, SourceSet};
use nudge_runtime::compiler::value::Value;
use nudge_runtime::engine::ContactState;
use nudge_runtime::engine::JournalLine;
use nudge_runtime::sim::Sim;
use nudge_runtime::sim::runner::run_all;
use nudge_runtime::vm::{Input, Message, Request, Status, World, advance};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const PROJECTS: [&str; 5] = [
    "chatbot_keywords",
    "crm_autofunnel",
    "newsletter_triggers",
    "postback_funnel",
    "visit_scenarios",
];

struct Disk;

impl FileSystem for Disk {
    fn read_to_string(&self, path: &Path) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }
}

fn files(name: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/conformance")
        .join(name);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "nudge"))
        .collect();
    paths.sort();
    paths
}

fn compile_paths(paths: &[PathBuf]) -> Bundle {
    let mut set = SourceSet::new();
    for p in paths {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        set.add(p.clone(), name, std::fs::read_to_string(p).unwrap());
    }
    let (checked, bundle) = compile(&set, &Disk);
    assert!(checked.is_ok(), "{:?}", checked.diagnostics);
    bundle.unwrap()
}

fn bundle(name: &str) -> Bundle {
    compile_paths(&files(name))
}

#[test]
fn the_same_sources_give_the_same_bytes_and_hash() {
    for name in PROJECTS {
        let a = bundle(name);
        let b = bundle(name);
        assert_eq!(a.format, FORMAT_VERSION);
        assert_eq!(a.to_bytes().unwrap(), b.to_bytes().unwrap(), "{name}");
        assert_eq!(a.hash().unwrap(), b.hash().unwrap(), "{name}");
        let want: String = Sha256::digest(a.without_positions().to_bytes().unwrap())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            a.hash().unwrap(),
            want,
            "{name}: the hash is SHA-256 of the bytes without source positions"
        );
        // the order files are given in does not matter: bundle order is by path
        let mut reversed = files(name);
        reversed.reverse();
        assert_eq!(
            compile_paths(&reversed).to_bytes().unwrap(),
            a.to_bytes().unwrap(),
            "{name}"
        );
    }
}

#[test]
fn different_projects_have_different_hashes() {
    let hashes: std::collections::BTreeSet<String> =
        PROJECTS.iter().map(|n| bundle(n).hash().unwrap()).collect();
    assert_eq!(hashes.len(), PROJECTS.len());
}

#[test]
fn a_bundle_round_trips_through_its_bytes() {
    for name in PROJECTS {
        let a = bundle(name);
        let back = Bundle::from_bytes(&a.to_bytes().unwrap()).unwrap();
        assert_eq!(back, a, "{name}");
        assert_eq!(back.to_bytes().unwrap(), a.to_bytes().unwrap(), "{name}");
        assert_eq!(back.hash().unwrap(), a.hash().unwrap(), "{name}");
    }
}

#[test]
fn the_conformance_tests_give_the_same_outcomes_twice() {
    for name in PROJECTS {
        let b = bundle(name);
        let first = run_all(&b, None).unwrap();
        let second = run_all(&Bundle::from_bytes(&b.to_bytes().unwrap()).unwrap(), None).unwrap();
        assert!(!first.is_empty(), "{name}");
        assert_eq!(first.len(), second.len());
        for (x, y) in first.iter().zip(&second) {
            assert_eq!(x.name, y.name);
            assert_eq!(x.failure, y.failure, "{name}: {}", x.name);
            assert_eq!(x.trace, y.trace, "{name}: {}", x.name);
        }
    }
}

/// Everything a journey leaves behind.
type Journey = (
    Vec<Message>,
    Vec<Request>,
    Vec<(usize, JournalLine)>,
    Vec<ContactState>,
);

/// A postback funnel journey with two contacts: registration, the reminder
/// a day later, a sale, repeat deposits and a withdrawal, over 40 days.
fn journey(b: &Bundle) -> Journey {
    let mut sim = Sim::new(b).unwrap();
    sim.env.insert("PARTNER_TOKEN".into(), "s3cret".into());
    sim.env.insert("BOT_TOKEN".into(), "b0t".into());
    let pb = |clickid: &str, event: &str| {
        BTreeMap::from([
            ("clickid".to_string(), clickid.to_string()),
            ("event".to_string(), event.to_string()),
            ("sum".to_string(), "50".to_string()),
            ("token".to_string(), "s3cret".to_string()),
        ])
    };
    for (id, chat) in [("ck-1", "41"), ("ck-2", "42")] {
        sim.create_contact(
            None,
            vec![
                ("clickid".into(), Value::text(id)),
                ("chat_id".into(), Value::text(chat)),
            ],
        )
        .unwrap();
    }
    sim.postback("partner", pb("ck-1", "registration")).unwrap();
    sim.postback("partner", pb("ck-2", "registration")).unwrap();
    sim.advance_to(sim.now + 86_400 + 3_600).unwrap();
    sim.postback("partner", pb("ck-1", "sale")).unwrap();
    sim.postback("partner", pb("ck-1", "resale")).unwrap();
    sim.postback("partner", pb("ck-1", "resale")).unwrap();
    sim.postback("partner", pb("ck-1", "withdrawal")).unwrap();
    sim.advance_to(sim.now + 40 * 86_400).unwrap();
    (
        sim.messages.iter().map(|m| m.item.clone()).collect(),
        sim.calls.iter().map(|c| c.item.clone()).collect(),
        sim.journal.clone(),
        sim.contacts.clone(),
    )
}

#[test]
fn the_same_journey_twice_gives_the_same_messages_journal_and_states() {
    let b = bundle("postback_funnel");
    let first = journey(&b);
    let again = journey(&b);
    let back = Bundle::from_bytes(&b.to_bytes().unwrap()).unwrap();
    let from_bytes = journey(&back);
    assert_eq!(first, again);
    assert_eq!(first, from_bytes);
    // and the journey did happen
    let (messages, _, journal, contacts) = first;
    assert!(messages.len() >= 6, "{} messages", messages.len());
    assert!(journal.len() > 20);
    assert_eq!(contacts[0].contact.get("deposits"), Value::Int(3));
    let rd = contacts[0].latest("rd").unwrap();
    assert_eq!((rd.step.as_str(), rd.status), ("withdrawn", Status::Exited));
    assert_eq!(contacts[1].latest("fd").unwrap().status, Status::Exited);
}

#[test]
fn advance_is_pure_the_same_input_gives_the_same_outcome() {
    let b = bundle("postback_funnel");
    let mut sim = Sim::new(&b).unwrap();
    sim.env.insert("BOT_TOKEN".into(), "b0t".into());
    let i = sim
        .create_contact(None, vec![("chat_id".into(), Value::text("7"))])
        .unwrap();
    sim.event(i, "registration", BTreeMap::new());
    let st = sim.contacts[i].clone();
    let enr = st.active("fd").unwrap().clone();
    let p = b.flow("fd").unwrap();
    let world = World {
        env: &sim.env,
        sent: &st.sent,
        version: "v",
        calls: Default::default(),
    };
    let due = enr.wait.as_ref().unwrap().wake_at().unwrap();
    let one = advance(&b, p, &enr, &st.contact, &Input::Timer, due, &world);
    let two = advance(&b, p, &enr, &st.contact, &Input::Timer, due, &world);
    assert_eq!(one, two);
    assert_eq!(
        one.effects
            .iter()
            .filter(|e| matches!(e, nudge_runtime::vm::Effect::Send(_)))
            .count(),
        1
    );
}
