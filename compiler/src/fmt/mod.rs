//! `nudge fmt`: one canonical layout for a Nudge file.
//!
//! Takes a file's text; parses it and prints the tree back:
//! * two-space indentation, `{` on the line that opens it, one statement,
//!   setting or field per line (`;`-separated statements split), a blank line
//!   between declarations, at most one blank line kept where the text had
//!   some, no trailing whitespace, one final newline;
//! * durations in long units, strings re-escaped, `"""` strings as an
//!   indented block, the fewest parentheses the grammar needs plus every one
//!   that was written (`fmt/expr.rs`);
//! * short handler, wait-branch, split and `else` bodies on one line; blocks
//!   one statement per line; short `{ … }` lists in statements and `event`
//!   declarations on one line (`fmt/decl.rs`);
//! * every comment kept, in order, before the node it precedes, at the end of
//!   the line it trails, or at the end of its block or file (`fmt/printer.rs`).
//!
//! Guarantees (tested in `tests/fmt_roundtrip.rs`): the output parses to the
//! same tree as the input (spans and the way strings were written aside),
//! with the same comments in the same order; formatting it again changes
//! nothing.

mod decl;
mod expr;
mod lit;
mod printer;
mod stmt;
mod test;

use nudge_grammar::SyntaxError;
use nudge_grammar::ast::Module;
use nudge_grammar::span::FileId;

/// Format one file's text; a file that does not parse is returned as its
/// syntax error.
pub fn format_source(file: FileId, text: &str) -> Result<String, SyntaxError> {
    let module = nudge_grammar::parse(file, text)?;
    Ok(format_module(&module, text))
}

/// Print a parsed file in the canonical layout; `text` is the source it was
/// parsed from (read for comments, blank lines and brace positions).
pub fn format_module(module: &Module, text: &str) -> String {
    printer::Printer::new(text, &module.comments).module(&module.items, decl::item_slot, decl::item)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(text: &str) -> String {
        format_source(FileId(0), text).expect("formats")
    }

    #[test]
    fn statements_split_and_durations_long() {
        assert_eq!(
            fmt("flow a{when x;wait 3d;send bot \"hi\"}"),
            "flow a {\n  when x\n  wait 3 days\n  send bot \"hi\"\n}\n"
        );
    }

    #[test]
    fn empty_file_stays_empty() {
        assert_eq!(fmt(""), "");
        assert_eq!(fmt("\n\n"), "");
    }
}
