//! `nudge fmt`: the canonical layout. (Being written; this placeholder keeps
//! the text unchanged after checking that it parses.)

use nudge_grammar::SyntaxError;
use nudge_grammar::span::FileId;

/// Format one file's text.
pub fn format_source(file: FileId, text: &str) -> Result<String, SyntaxError> {
    nudge_grammar::parse(file, text)?;
    Ok(text.to_string())
}
