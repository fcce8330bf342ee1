//! Postback deduplication in the simulator (LANGUAGE.md A5), as in the
//! daemon: a repeated `dedupe` value is a duplicate that changes nothing,
//! also while the first copy is held; values are kept 30 days.

#![allow(clippy::unwrap_used)]

mod vm_support;

use nudge_runtime::compiler::value::Value;
use nudge_runtime::intake;
use nudge_runtime::sim::{PostbackDone, Sim};
use std::collections::BTreeMap;

const SRC: &str = r#"
contact { clickid: text? unique, deposits: int = 0 }
event sale {}
source partner: postback {
  contact = clickid
  event = param("status")
  token = "pt"
  dedupe = param("network") + ":" + param("txid")
}
flow deposits {
  when sale
  reenter after_exit
  step count { set contact.deposits = contact.deposits + 1 }
}
"#;

fn pb(clickid: &str, network: &str, txid: &str) -> BTreeMap<String, String> {
    [
        ("clickid", clickid),
        ("status", "sale"),
        ("network", network),
        ("txid", txid),
        ("token", "pt"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn deposits(sim: &Sim<'_>) -> Value {
    sim.contacts[0].contact.get("deposits")
}

fn ck(clickid: &str) -> Vec<(String, Value)> {
    vec![("clickid".into(), Value::text(clickid))]
}

#[test]
fn a_repeated_value_changes_nothing() {
    let bundle = vm_support::bundle(SRC);
    let mut sim = Sim::new(&bundle).unwrap();
    sim.create_contact(None, ck("ck-1")).unwrap();
    assert_eq!(
        sim.postback("partner", pb("ck-1", "a", "1")),
        Ok(PostbackDone::Applied)
    );
    let journal = sim.journal.len();
    assert_eq!(
        sim.postback("partner", pb("ck-1", "a", "1")),
        Ok(PostbackDone::Duplicate)
    );
    assert_eq!(deposits(&sim), Value::Int(1));
    assert_eq!(sim.journal.len(), journal, "no journey line");
    // every piece counts: another network's `1` is another postback
    assert_eq!(
        sim.postback("partner", pb("ck-1", "b", "1")),
        Ok(PostbackDone::Applied)
    );
    assert_eq!(deposits(&sim), Value::Int(2));
}

#[test]
fn a_retry_of_a_held_postback_is_a_duplicate_and_it_applies_once() {
    let bundle = vm_support::bundle(SRC);
    let mut sim = Sim::new(&bundle).unwrap();
    assert_eq!(
        sim.postback("partner", pb("ck-9", "a", "9")),
        Ok(PostbackDone::Held)
    );
    assert_eq!(
        sim.postback("partner", pb("ck-9", "a", "9")),
        Ok(PostbackDone::Duplicate)
    );
    assert_eq!(sim.held.len(), 1);
    sim.create_contact(None, ck("ck-9")).unwrap();
    assert_eq!(deposits(&sim), Value::Int(1));
    assert!(sim.held.is_empty());
    assert_eq!(
        sim.postback("partner", pb("ck-9", "a", "9")),
        Ok(PostbackDone::Duplicate)
    );
    assert_eq!(deposits(&sim), Value::Int(1));
}

#[test]
fn a_missing_piece_refuses_the_postback() {
    let bundle = vm_support::bundle(SRC);
    let mut sim = Sim::new(&bundle).unwrap();
    sim.create_contact(None, ck("ck-1")).unwrap();
    let mut params = pb("ck-1", "a", "1");
    params.remove("network");
    assert_eq!(
        sim.postback("partner", params),
        Err("postback refused: the postback has no `network` to deduplicate it by".into())
    );
    assert_eq!(deposits(&sim), Value::Int(0));
}

#[test]
fn values_are_kept_for_thirty_days() {
    let bundle = vm_support::bundle(SRC);
    let mut sim = Sim::new(&bundle).unwrap();
    sim.create_contact(None, ck("ck-1")).unwrap();
    sim.postback("partner", pb("ck-1", "a", "1")).unwrap();
    let start = sim.now;
    sim.advance_to(start + intake::DEDUPE_KEEP_SECONDS).unwrap();
    assert_eq!(
        sim.postback("partner", pb("ck-1", "a", "1")),
        Ok(PostbackDone::Duplicate)
    );
    sim.advance_to(start + intake::DEDUPE_KEEP_SECONDS + 1)
        .unwrap();
    assert_eq!(
        sim.postback("partner", pb("ck-1", "a", "1")),
        Ok(PostbackDone::Applied)
    );
    assert_eq!(deposits(&sim), Value::Int(2));
}
