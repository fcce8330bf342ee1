//! Diagnostics the CLI adds before the compiler runs (`nudge::io::*`): the
//! compiler takes text, so bytes that are not text are reported here, at the
//! edge, like any other problem in a source file.

use miette::{Diagnostic, SourceSpan};
use thiserror::Error;

/// Problems with the bytes of a source file. Examples of input that
/// triggers each are in `tests/cases/io_*`.
#[derive(Debug, Error, Diagnostic)]
pub enum IoDiagnostic {
    /// A `.nudge` file holding the byte `0xFF`.
    #[error(
        "`{file}` is not valid UTF-8: byte `{byte}` at line {line}, column {column} (byte offset {offset})"
    )]
    #[diagnostic(
        code(nudge::io::invalid_utf8),
        help(
            "Nudge files are UTF-8 text; save the file as UTF-8 (shown here with `\u{FFFD}` in place of the bad bytes)"
        )
    )]
    InvalidUtf8 {
        file: String,
        /// The first bad byte, as `0xFF`.
        byte: String,
        line: usize,
        column: usize,
        offset: usize,
        #[label("not UTF-8")]
        span: SourceSpan,
    },
}
