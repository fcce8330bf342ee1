//! Unit tests of the VM: one group per instruction (`vm_cases/instrs.rs`),
//! per wait kind and event order (`vm_cases/waits.rs`), across flows through
//! the engine (`vm_cases/flows.rs`), runtime errors (`vm_cases/errors.rs`)
//! and across daylight-saving changes
//! (`vm_cases/dst.rs`). Every program is compiled from `.nudge` source in
//! memory and driven through the real `advance`; the tests assert exact
//! instants, steps, statuses and effects.

#![allow(clippy::unwrap_used)]

mod vm_support;

#[path = "vm_cases/dst.rs"]
mod dst;
#[path = "vm_cases/errors.rs"]
mod errors;
#[path = "vm_cases/flows.rs"]
mod flows;
#[path = "vm_cases/instrs.rs"]
mod instrs;
#[path = "vm_cases/waits.rs"]
mod waits;

/// Declarations shared by the test programs.
pub const PRELUDE: &str = r#"
contact {
  email: email?
  score: int = 0
  note: text?
  deal_at: time?
  items: list<text>
}
event sale { amount: decimal? }
event ping {}
event stop_all {}
event bought {}
event other { n: int? }
channel mail: smtp { host = "smtp.example" from = "shop@example.com" cap = 2 per 1 day }
channel bot: http {
  method = "POST"
  url = "https://bot.example/send"
  body = json { id: contact.id, text: message }
}
channel crm: http {
  method = "POST"
  url = "https://crm.example/tasks"
  body = json { who: data.who }
}
template hello: email {
  subject = "Hi {{ contact.id }}"
  text = "Score {{ contact.score }}"
}
"#;

/// The prelude followed by `flows`, compiled.
pub fn program(flows: &str) -> nudge_runtime::compiler::bundle::Bundle {
    vm_support::bundle(&format!("{PRELUDE}\n{flows}"))
}
