//! The VM: advancing one contact through one flow.
//!
//! [`advance`] is pure: no IO, no clock, no randomness, no async. It takes the
//! bundle, the enrollment, the contact, one [`Input`] and `now`, and gives back
//! the new enrollment, the contact's changes and the [`Effect`]s (messages,
//! calls, emitted events, flows to start or stop, journal lines). The
//! simulator behind `nudge test` and the daemon run this same function.

mod eval;
pub mod redact;
mod render;
pub mod request;
mod run;
pub mod seal;
mod state;

pub use eval::{Eval, EvalError, Scope, coerce, eval, hash_share};
pub use render::{RenderKind, render};
pub use run::{CallLimits, FailedAt, Failure, RunError, STEP_BUDGET, advance, call_result};
pub use state::*;
