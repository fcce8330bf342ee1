//! The virtual clock fires timers due at the same instant in creation order
//! (LANGUAGE.md §10), across contacts too.

#![allow(clippy::unwrap_used)]

mod vm_support;

use nudge_runtime::compiler::value::Value;
use nudge_runtime::sim::{EPOCH, Sim};
use std::collections::BTreeMap;

const SRC: &str = r#"
contact { email: email? unique }
event long {}
event short {}
channel mail: smtp { host = "127.0.0.1" from = "a@b.example" }
template t: email { subject = "for {{ contact.id }}" text = "x" }
flow f_long { when long  step s { wait 2 days  send mail t } }
flow f_short { when short  step s { wait 1 day  send mail t } }
"#;

#[test]
fn same_instant_timers_fire_in_creation_order_across_contacts() {
    let bundle = vm_support::bundle(SRC);
    let mut sim = Sim::new(&bundle).unwrap();
    let email = |s: &str| vec![("email".to_string(), Value::text(s))];
    let a = sim.create_contact(Some("a"), email("a@x.example")).unwrap();
    let b = sim.create_contact(Some("b"), email("b@x.example")).unwrap();
    // b's timer (day 2) is created first, at day 0; a's (also day 2) at day 1
    sim.event(b, "long", BTreeMap::new());
    sim.advance_to(EPOCH + 86_400).unwrap();
    sim.event(a, "short", BTreeMap::new());
    sim.advance_to(EPOCH + 2 * 86_400).unwrap();
    let order: Vec<String> = sim
        .messages
        .iter()
        .map(|m| m.item.subject.clone().unwrap_or_default())
        .collect();
    assert_eq!(order, ["for b", "for a"]);
}
