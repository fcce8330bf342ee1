//! The human report: each diagnostic rendered by miette's
//! `GraphicalReportHandler` with the source around it, then a summary line.
//!
//! Takes the sources and diagnostics; gives text. A place a diagnostic
//! refers to in another file (`Diag::related`) is drawn after it as a note
//! with that file's snippet. Colour only when asked
//! for (see [`Style::detect`]); a diagnostic whose spans do not fit its file
//! is still printed (without the snippet), never dropped and never a panic.

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, Severity,
    SourceCode,
};
use nudge_compiler::diagnostics::{Diagnostics, Related, ss};
use nudge_compiler::files::SourceSet;
use nudge_grammar::span::FileId;
use std::fmt;
use std::sync::Arc;

/// Width used when neither `COLUMNS` nor a terminal says otherwise.
const DEFAULT_WIDTH: usize = 100;

/// How to draw: colour or not, and how wide.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
    pub width: usize,
}

impl Style {
    /// Colour when the report goes to a terminal (`tty`) and `NO_COLOR` is
    /// unset or empty; width from `COLUMNS`, else the terminal, else 100.
    pub fn detect(tty: bool) -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .filter(|w| *w >= 20)
            .or_else(|| {
                tty.then(|| terminal_size::terminal_size().map(|(w, _)| usize::from(w.0)))
                    .flatten()
            })
            .unwrap_or(DEFAULT_WIDTH);
        Style {
            color: tty && !no_color,
            width,
        }
    }

    fn handler(self) -> GraphicalReportHandler {
        let theme = if self.color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        GraphicalReportHandler::new_themed(theme)
            .with_width(self.width)
            .with_links(false)
            .without_syntax_highlighting()
    }
}

/// Render every diagnostic, one report each, in order.
pub fn render(sources: &SourceSet, diagnostics: &Diagnostics, style: Style) -> String {
    let handler = style.handler();
    // One copy of a file's text, made only for files with diagnostics.
    let mut named: Vec<Option<NamedSource<Arc<str>>>> = vec![None; sources.files.len()];
    let mut out = String::new();
    for d in &diagnostics.items {
        load(&mut named, sources, d.file);
        for r in &d.related {
            load(&mut named, sources, r.span.file);
        }
        let source_of = |file: FileId| named.get(file.0 as usize).and_then(Option::as_ref);
        let notes: Vec<Note<'_>> = d
            .related
            .iter()
            .map(|r| Note::new(r, source_of(r.span.file)))
            .collect();
        out.push_str(&render_one(&handler, &*d.inner, source_of(d.file), &notes));
        out.push('\n');
    }
    out
}

/// The file's text as miette wants it, made once per file.
fn load(named: &mut [Option<NamedSource<Arc<str>>>], sources: &SourceSet, file: FileId) {
    if let (Some(slot @ None), Some(f)) = (named.get_mut(file.0 as usize), sources.get(file)) {
        *slot = Some(NamedSource::new(&f.name, Arc::<str>::from(f.text.as_str())));
    }
}

fn render_one(
    handler: &GraphicalReportHandler,
    diag: &dyn Diagnostic,
    source: Option<&NamedSource<Arc<str>>>,
    notes: &[Note<'_>],
) -> String {
    let mut text = String::new();
    let with_source = WithSource { diag, source };
    if handler.render_report(&mut text, &with_source).is_ok() {
        for note in notes {
            let mut more = String::from("\n");
            if handler.render_report(&mut more, note).is_err() {
                more = format!("\n  ☞ {}\n", note.message);
            }
            text.push_str(&more);
        }
        return text;
    }
    // A span outside its file makes miette give up on the snippet: print
    // the rest of the report without it.
    text.clear();
    let bare = WithSource { diag, source: None };
    if handler.render_report(&mut text, &bare).is_ok() {
        return text;
    }
    let code = diag.code().map(|c| format!("{c}: ")).unwrap_or_default();
    format!("{code}{diag}\n")
}

/// The summary line after a human report.
pub fn summary(errors: usize, warnings: usize, files: usize, deny_warnings: bool) -> String {
    let e = plural(errors, "error");
    let w = plural(warnings, "warning");
    match (errors, warnings) {
        (0, 0) => format!("no problems found in {}", plural(files, "file")),
        (0, _) if deny_warnings => format!("error: {w} (denied by `--deny-warnings`)"),
        (0, _) => format!("warning: {w}, no errors in {}", plural(files, "file")),
        (_, 0) => format!("error: {e}"),
        _ => format!("error: {e}, {w}"),
    }
}

pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// A diagnostic with its file's text attached, for the graphical handler.
struct WithSource<'a> {
    diag: &'a dyn Diagnostic,
    source: Option<&'a NamedSource<Arc<str>>>,
}

/// A related place in another file, with that file's text: drawn after
/// the diagnostic as a report of its own (miette's `related` would title it
/// `Advice:`).
#[derive(Debug)]
struct Note<'a> {
    message: &'a str,
    span: miette::SourceSpan,
    source: Option<&'a NamedSource<Arc<str>>>,
}

impl<'a> Note<'a> {
    fn new(related: &'a Related, source: Option<&'a NamedSource<Arc<str>>>) -> Note<'a> {
        Note {
            message: &related.message,
            span: ss(related.span),
            source,
        }
    }
}

impl fmt::Display for Note<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl std::error::Error for Note<'_> {}

impl Diagnostic for Note<'_> {
    fn severity(&self) -> Option<Severity> {
        Some(Severity::Advice)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let label = LabeledSpan::new_with_span(None, self.span);
        self.source
            .map(|_| Box::new(std::iter::once(label)) as Box<dyn Iterator<Item = _>>)
    }
}

impl fmt::Debug for WithSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.diag, f)
    }
}

impl fmt::Display for WithSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.diag, f)
    }
}

impl std::error::Error for WithSource<'_> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.diag.source()
    }
}

impl Diagnostic for WithSource<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diag.code()
    }

    fn severity(&self) -> Option<Severity> {
        self.diag.severity()
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diag.help()
    }

    fn url<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diag.url()
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        match self.source {
            Some(s) => self.diag.source_code().or(Some(s as &dyn SourceCode)),
            None => None,
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.diag.labels()
    }

    fn related<'b>(&'b self) -> Option<Box<dyn Iterator<Item = &'b dyn Diagnostic> + 'b>> {
        self.diag.related()
    }

    fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
        self.diag.diagnostic_source()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_read_well() {
        assert_eq!(summary(0, 0, 3, false), "no problems found in 3 files");
        assert_eq!(summary(0, 0, 1, false), "no problems found in 1 file");
        assert_eq!(summary(2, 1, 3, false), "error: 2 errors, 1 warning");
        assert_eq!(summary(1, 0, 3, false), "error: 1 error");
        assert_eq!(
            summary(0, 2, 3, false),
            "warning: 2 warnings, no errors in 3 files"
        );
        assert_eq!(
            summary(0, 1, 3, true),
            "error: 1 warning (denied by `--deny-warnings`)"
        );
    }
}
