//! The Nudge grammar: text to a syntax tree with spans.
//!
//! ```
//! use nudge_grammar::{parse, span::FileId, ast::Item};
//! let module = parse(FileId(0), "event signup { plan: text? }").expect("parses");
//! assert!(matches!(module.items[0], Item::Event(_)));
//! ```
//!
//! [`parse`] runs a lexical pre-pass ([`lex`]: comments, unterminated strings,
//! nesting and size limits), then the pest grammar in `nudge.pest`, then builds
//! the [`ast`]. Nothing from pest leaves this crate.

pub mod ast;
mod hints;
pub mod lex;
pub mod parser;
pub mod span;

pub use parser::{SyntaxError, SyntaxErrorKind, parse, parse_expr};
