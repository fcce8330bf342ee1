//! The Nudge runtime: the VM, the simulator behind `nudge test`, storage, the
//! scheduler, the outbox and the HTTP API. It takes compiled bundles from
//! `nudge-compiler` and never parses text. (Grows with issues 4 and 5.)

pub use nudge_compiler as compiler;

pub mod clock;
