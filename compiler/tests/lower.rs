//! Lowering: every conformance project compiles to a bundle; the same
//! sources give the same bytes; the bytes read back; the disassembly is stable.

mod support;

use nudge_compiler::bundle::{Bundle, disasm};
use nudge_compiler::compile;
use nudge_compiler::files::SourceSet;
use std::path::{Path, PathBuf};
use support::{Disk, project};

fn conformance(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/conformance")
        .join(name)
}

fn bundle_of(dir: &Path) -> Bundle {
    let (checked, bundle) = compile(&project(dir), &Disk);
    assert!(checked.is_ok(), "{:?}", checked.diagnostics);
    bundle.expect("a bundle")
}

#[test]
fn every_conformance_project_compiles_deterministically() {
    for name in [
        "chatbot_keywords",
        "crm_autofunnel",
        "newsletter_triggers",
        "postback_funnel",
        "visit_scenarios",
    ] {
        let a = bundle_of(&conformance(name));
        let b = bundle_of(&conformance(name));
        assert_eq!(
            a.to_bytes().expect("the bundle serialises"),
            b.to_bytes().expect("the bundle serialises"),
            "{name}: same sources, same bytes"
        );
        assert_eq!(
            a.hash().expect("the bundle serialises"),
            b.hash().expect("the bundle serialises")
        );
        let back =
            Bundle::from_bytes(&a.to_bytes().expect("the bundle serialises")).expect("reads back");
        assert_eq!(back, a);
        assert!(!a.flows.is_empty());
        assert!(!a.tests.is_empty());
    }
}

#[test]
fn a_different_format_version_is_refused() {
    let b = bundle_of(&conformance("postback_funnel"));
    let current = format!("\"format\":{}", nudge_compiler::bundle::FORMAT_VERSION);
    let bytes = String::from_utf8(b.to_bytes().expect("the bundle serialises")).expect("utf-8");
    assert!(bytes.contains(&current), "the bytes start with the format");
    let text = bytes.replacen(&current, "\"format\":99", 1);
    let err = Bundle::from_bytes(text.as_bytes()).expect_err("format 99 is refused");
    assert!(err.to_string().contains("bundle format 99"), "{err}");
}

#[test]
fn disassembly_of_the_postback_funnel() {
    let b = bundle_of(&conformance("postback_funnel"));
    let text: String = b
        .flows
        .iter()
        .map(disasm::disasm)
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("postback_funnel_disasm", text);
}

#[test]
fn disassembly_of_the_crm_autofunnel() {
    let b = bundle_of(&conformance("crm_autofunnel"));
    let text: String = b
        .flows
        .iter()
        .map(disasm::disasm)
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("crm_autofunnel_disasm", text);
}

#[test]
fn a_cron_is_stored_parsed_and_a_time_trigger_with_its_late() {
    use nudge_compiler::bundle::{CronSpec, Schedule, Trigger};
    let mut set = SourceSet::new();
    set.add(
        "main.nudge",
        "main.nudge",
        "contact { paid_at: time? }\nflow f {\n  when every \"0 22,23,0,1 * * 1-5\"\n  when contact.paid_at + 7 days late 2 hours\n  log \"x\"\n}\n",
    );
    let (checked, bundle) = compile(&set, &nudge_compiler::files::MemoryFs::new());
    let bundle = bundle.unwrap_or_else(|| panic!("{:?}", checked.diagnostics.items.len()));
    let triggers = &bundle.flow("f").expect("flow f").triggers;
    let Trigger::Schedule {
        schedule: Schedule::Cron(spec),
        ..
    } = &triggers[0]
    else {
        panic!("{triggers:?}")
    };
    assert_eq!(
        spec,
        &CronSpec::parse("0 22,23,0,1 * * 1-5").expect("valid")
    );
    assert_eq!(spec.hours, 1 << 22 | 1 << 23 | 1 | 1 << 1);
    assert!(matches!(&triggers[1], Trigger::Time { late: 7200, .. }));
    // the bundle carries the bit sets, not only the text
    let json = String::from_utf8(bundle.to_bytes().expect("the bundle serialises")).expect("utf-8");
    assert!(json.contains("\"hours\":12582915"), "{json}");
    let dis = disasm::disasm(bundle.flow("f").expect("flow f"));
    assert!(dis.contains("late 7200s"), "{dis}");
}

fn bundle_of_text(src: &str) -> Bundle {
    let mut sources = SourceSet::new();
    sources.add("main.nudge", "main.nudge", src);
    let (checked, bundle) = compile(&sources, &nudge_compiler::files::MemoryFs::new());
    assert!(checked.is_ok(), "{:?}", checked.diagnostics);
    bundle.expect("a bundle")
}

const FLOW: &str = "event go {}\nflow f {\n  when go\n  step one { wait 1 day  log \"a\" }\n}\n\
                    test \"t\" {\n  contact {}\n  event go\n  expect in f.one\n}\n";

#[test]
fn comments_and_formatting_keep_the_version_but_not_the_lines() {
    let a = bundle_of_text(FLOW);
    let reformatted = format!(
        "// a comment\n\n{}",
        FLOW.replace(
            "{ wait 1 day  log",
            "{\n    // why\n    wait 1 day\n\n    log"
        )
        .replace("expect in f.one", "expect   in   f.one")
    );
    let b = bundle_of_text(&reformatted);
    assert_ne!(a.flows[0].lines, b.flows[0].lines, "the lines moved");
    assert_ne!(a.to_bytes().expect("bytes"), b.to_bytes().expect("bytes"));
    assert_eq!(
        a.hash().expect("hash"),
        b.hash().expect("hash"),
        "same version"
    );
    let changed = bundle_of_text(&FLOW.replace("1 day", "2 days"));
    assert_ne!(a.hash().expect("hash"), changed.hash().expect("hash"));
}
