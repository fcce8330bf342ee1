//! Collecting diagnostics from every stage, and turning them into plain data
//! for the edges (JSON, GitHub annotations).
//!
//! Each stage has its own error enum deriving `miette::Diagnostic` with a
//! stable code `nudge::<stage>::<name>`; this module only stores them with the
//! file they belong to, and with [`Related`] places in other files (a miette
//! label cannot point into another file: where a duplicate was first
//! declared, for one). Records carry both, so every output shows both places. The library never renders graphically: that is the
//! CLI's job (miette's `fancy` is on only in the binary).

use crate::files::SourceSet;
use miette::{Diagnostic, SourceSpan};
use nudge_grammar::span::{FileId, Span};
use serde::Serialize;

/// A span as miette wants it.
pub fn ss(span: Span) -> SourceSpan {
    SourceSpan::new((span.start as usize).into(), span.len())
}

/// One diagnostic and the file its labels point into.
pub struct Diag {
    pub file: FileId,
    /// Primary span (also the first label).
    pub span: Span,
    pub inner: Box<dyn Diagnostic + Send + Sync + 'static>,
    /// Places in other files this diagnostic refers to.
    pub related: Vec<Related>,
}

/// Another place a diagnostic refers to, in any file (e.g. "first declared
/// here" for a duplicate declared in another file).
#[derive(Debug, Clone, PartialEq)]
pub struct Related {
    pub span: Span,
    /// What is at that place, lowercase (`first declared here`).
    pub message: String,
}

impl std::fmt::Debug for Diag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.inner)
    }
}

impl Diag {
    pub fn code(&self) -> String {
        self.inner.code().map(|c| c.to_string()).unwrap_or_default()
    }

    pub fn is_warning(&self) -> bool {
        matches!(self.inner.severity(), Some(miette::Severity::Warning))
    }

    pub fn message(&self) -> String {
        self.inner.to_string()
    }

    pub fn help(&self) -> Option<String> {
        self.inner.help().map(|h| h.to_string())
    }
}

/// Everything found in one run, in the order found.
#[derive(Debug, Default)]
pub struct Diagnostics {
    pub items: Vec<Diag>,
}

impl Diagnostics {
    pub fn new() -> Diagnostics {
        Diagnostics::default()
    }

    /// Record a diagnostic whose primary span is `span`.
    pub fn push(&mut self, span: Span, d: impl Diagnostic + Send + Sync + 'static) {
        self.push_related(span, d, Vec::new());
    }

    /// Record a diagnostic that also refers to places in other files.
    pub fn push_related(
        &mut self,
        span: Span,
        d: impl Diagnostic + Send + Sync + 'static,
        related: Vec<Related>,
    ) {
        self.items.push(Diag {
            file: span.file,
            span,
            inner: Box::new(d),
            related,
        });
    }

    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| !d.is_warning()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_warning()).count()
    }

    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }

    /// Sort by file and position (stable: same-place diagnostics keep their
    /// order), and drop repeats of the same diagnostic at the same place (a
    /// template used by several `send`s is checked at each of them).
    pub fn sort(&mut self) {
        self.items
            .sort_by_key(|d| (d.file, d.span.start, d.span.end));
        let mut seen = std::collections::HashSet::new();
        self.items
            .retain(|d| seen.insert((d.file, d.span.start, d.span.end, d.code(), d.message())));
    }

    /// Plain data for `--format json` and `--format github`.
    pub fn records(&self, files: &SourceSet) -> Vec<Record> {
        self.items
            .iter()
            .map(|d| {
                let at = Place::of(files, d.span, String::new());
                Record {
                    severity: if d.is_warning() { "warning" } else { "error" },
                    code: d.code(),
                    message: d.message(),
                    file: at.file,
                    line: at.line,
                    column: at.column,
                    end_line: at.end_line,
                    end_column: at.end_column,
                    help: d.help(),
                    related: d
                        .related
                        .iter()
                        .map(|r| Place::of(files, r.span, r.message.clone()))
                        .collect(),
                }
            })
            .collect()
    }
}

/// A place in a file as plain data, positions 1-based: a [`Related`] place
/// of a [`Record`].
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Place {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub message: String,
}

impl Place {
    fn of(files: &SourceSet, span: Span, message: String) -> Place {
        let (file, (line, column), (end_line, end_column)) = match files.get(span.file) {
            Some(f) => (
                f.name.clone(),
                f.lines.line_col(&f.text, span.start as usize),
                f.lines.line_col(&f.text, span.end as usize),
            ),
            None => (String::new(), (1, 1), (1, 1)),
        };
        Place {
            file,
            line,
            column,
            end_line,
            end_column,
            message,
        }
    }
}

/// A diagnostic as plain data, positions 1-based.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Record {
    pub severity: &'static str,
    pub code: String,
    pub message: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Places in other files the diagnostic refers to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<Place>,
}

/// "did you mean `x`?" for the closest candidate, if one is close enough.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (edit_distance(&name.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, c.to_string()))
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

/// Levenshtein distance over characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("frist_name", ["first_name", "email"]).as_deref(),
            Some("did you mean `first_name`?")
        );
        assert_eq!(did_you_mean("zzz", ["first_name", "email"]), None);
    }
}
