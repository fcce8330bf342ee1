//! Stage 1, parse: every file through the grammar, syntax errors as
//! diagnostics (`nudge::syntax::*`).

use crate::diagnostics::{Diagnostics, ss};
use crate::files::SourceSet;
use miette::{Diagnostic, SourceSpan};
use nudge_grammar::ast::Module;
use nudge_grammar::span::FileId;
use nudge_grammar::{SyntaxError, SyntaxErrorKind, parse};
use thiserror::Error;

/// Syntax errors. Examples of input that triggers each are in
/// `tests/cases/syntax_*`.
#[derive(Debug, Error, Diagnostic)]
pub enum SyntaxDiagnostic {
    /// `flow x { sned email welcome }`
    #[error("{message}")]
    #[diagnostic(code(nudge::syntax::unexpected))]
    Unexpected {
        message: String,
        #[label("{label}")]
        span: SourceSpan,
        label: String,
        #[help]
        help: Option<String>,
    },
    /// `log "abc` at the end of a line
    #[error("{message}")]
    #[diagnostic(code(nudge::syntax::unterminated_string))]
    UnterminatedString {
        message: String,
        #[label("{label}")]
        span: SourceSpan,
        label: String,
        #[help]
        help: Option<String>,
    },
    /// `/* never closed`
    #[error("{message}")]
    #[diagnostic(code(nudge::syntax::unterminated_comment))]
    UnterminatedComment {
        message: String,
        #[label("{label}")]
        span: SourceSpan,
        label: String,
        #[help]
        help: Option<String>,
    },
    /// `"\q"`
    #[error("{message}")]
    #[diagnostic(code(nudge::syntax::invalid_escape))]
    InvalidEscape {
        message: String,
        #[label("{label}")]
        span: SourceSpan,
        label: String,
        #[help]
        help: Option<String>,
    },
    /// `window 25:00..26:00`, `99999999999999999999`
    #[error("{message}")]
    #[diagnostic(code(nudge::syntax::invalid_number))]
    InvalidNumber {
        message: String,
        #[label("{label}")]
        span: SourceSpan,
        label: String,
        #[help]
        help: Option<String>,
    },
    /// 10 000 nested parentheses
    #[error("{message}")]
    #[diagnostic(code(nudge::syntax::too_deep))]
    TooDeep {
        message: String,
        #[label("{label}")]
        span: SourceSpan,
        label: String,
        #[help]
        help: Option<String>,
    },
    /// `when sale or resale`
    #[error("{message}")]
    #[diagnostic(code(nudge::syntax::trigger_or))]
    TriggerOr {
        message: String,
        #[label("{label}")]
        span: SourceSpan,
        label: String,
        #[help]
        help: Option<String>,
    },
    /// `set contact.score += 1`
    #[error("{message}")]
    #[diagnostic(code(nudge::syntax::compound_assignment))]
    CompoundAssignment {
        message: String,
        #[label("{label}")]
        span: SourceSpan,
        label: String,
        #[help]
        help: Option<String>,
    },
    /// `on sale goto done` in a `wait { … }` block
    #[error("{message}")]
    #[diagnostic(code(nudge::syntax::missing_arrow))]
    MissingArrow {
        message: String,
        #[label("{label}")]
        span: SourceSpan,
        label: String,
        #[help]
        help: Option<String>,
    },
    /// `expect in welcome` in a test
    #[error("{message}")]
    #[diagnostic(code(nudge::syntax::expect_in_step))]
    ExpectInStep {
        message: String,
        #[label("{label}")]
        span: SourceSpan,
        label: String,
        #[help]
        help: Option<String>,
    },
    /// a file over the size limit
    #[error("{message}")]
    #[diagnostic(code(nudge::syntax::file_too_large))]
    FileTooLarge {
        message: String,
        #[label("{label}")]
        span: SourceSpan,
        label: String,
        #[help]
        help: Option<String>,
    },
}

impl From<SyntaxError> for SyntaxDiagnostic {
    fn from(e: SyntaxError) -> Self {
        let (message, span, label, help) = (e.message, ss(e.span), e.label, e.help);
        match e.kind {
            SyntaxErrorKind::Unexpected => SyntaxDiagnostic::Unexpected {
                message,
                span,
                label,
                help,
            },
            SyntaxErrorKind::UnterminatedString => SyntaxDiagnostic::UnterminatedString {
                message,
                span,
                label,
                help,
            },
            SyntaxErrorKind::UnterminatedComment => SyntaxDiagnostic::UnterminatedComment {
                message,
                span,
                label,
                help,
            },
            SyntaxErrorKind::InvalidEscape => SyntaxDiagnostic::InvalidEscape {
                message,
                span,
                label,
                help,
            },
            SyntaxErrorKind::InvalidNumber => SyntaxDiagnostic::InvalidNumber {
                message,
                span,
                label,
                help,
            },
            SyntaxErrorKind::TooDeep => SyntaxDiagnostic::TooDeep {
                message,
                span,
                label,
                help,
            },
            SyntaxErrorKind::TriggerOr => SyntaxDiagnostic::TriggerOr {
                message,
                span,
                label,
                help,
            },
            SyntaxErrorKind::CompoundAssignment => SyntaxDiagnostic::CompoundAssignment {
                message,
                span,
                label,
                help,
            },
            SyntaxErrorKind::MissingArrow => SyntaxDiagnostic::MissingArrow {
                message,
                span,
                label,
                help,
            },
            SyntaxErrorKind::ExpectInStep => SyntaxDiagnostic::ExpectInStep {
                message,
                span,
                label,
                help,
            },
            SyntaxErrorKind::FileTooLarge => SyntaxDiagnostic::FileTooLarge {
                message,
                span,
                label,
                help,
            },
        }
    }
}

/// Parse every file; a file with a syntax error is left out of the result.
pub fn parse_all(sources: &SourceSet, diags: &mut Diagnostics) -> Vec<(FileId, Module)> {
    let mut out = Vec::new();
    for id in sources.ids() {
        let Some(f) = sources.get(id) else { continue };
        match parse(id, &f.text) {
            Ok(m) => out.push((id, m)),
            Err(e) => {
                let span = e.span;
                diags.push(span, SyntaxDiagnostic::from(e));
            }
        }
    }
    out
}
