//! The Nudge runtime: the pure VM ([`vm::advance`]), the dispatch of inputs
//! across a contact's flows ([`engine`]), the simulator behind `nudge test`
//! ([`sim`]), and the time calculations they share ([`clock`]). It takes
//! compiled bundles from `nudge-compiler` and never parses text.

pub use nudge_compiler as compiler;

pub mod clock;
pub mod compact;
pub mod daemon;
pub mod deliver;
pub mod engine;
pub mod intake;
pub mod shell;
pub mod sim;
pub mod store;
pub mod vm;
