//! The machine-readable reports of `nudge check`: `--format json` (RUNTIME.md
//! §8) and `--format github` (GitHub Actions workflow commands).
//!
//! Takes the plain records of `Diagnostics::records` (1-based positions);
//! gives text. The JSON keys always appear, in the documented order (`help`
//! is `null` when there is none), except `related`: the places in other
//! files a diagnostic refers to, present only when there is one. In GitHub
//! output such a place is a line of the message and a `::notice` of its own.

use super::project::Root;
use nudge_compiler::diagnostics::{Place, Record};
use serde::Serialize;

#[derive(Serialize)]
struct JsonReport<'a> {
    diagnostics: Vec<JsonDiagnostic<'a>>,
    errors: usize,
    warnings: usize,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    severity: &'a str,
    code: &'a str,
    message: &'a str,
    file: &'a str,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    help: Option<&'a str>,
    #[serde(skip_serializing_if = "<[Place]>::is_empty")]
    related: &'a [Place],
}

/// One JSON object, on one line.
pub fn json(records: &[Record], errors: usize, warnings: usize) -> String {
    let report = JsonReport {
        diagnostics: records
            .iter()
            .map(|r| JsonDiagnostic {
                severity: r.severity,
                code: &r.code,
                message: &r.message,
                file: &r.file,
                line: r.line,
                column: r.column,
                end_line: r.end_line,
                end_column: r.end_column,
                help: r.help.as_deref(),
                related: &r.related,
            })
            .collect(),
        errors,
        warnings,
    };
    // Serializing plain strings and numbers cannot fail; keep a fallback
    // rather than a panic all the same.
    let mut text = serde_json::to_string(&report).unwrap_or_else(|_| {
        format!("{{\"diagnostics\":[],\"errors\":{errors},\"warnings\":{warnings}}}")
    });
    text.push('\n');
    text
}

/// One `::error …::…` or `::warning …::…` line per diagnostic. The help, if
/// any, follows the message on a second line of the annotation.
pub fn github(records: &[Record], root: &Root) -> String {
    let mut out = String::new();
    for r in records {
        let command = if r.severity == "warning" {
            "warning"
        } else {
            "error"
        };
        let mut message = r.message.clone();
        for p in &r.related {
            let file = root.shown_path(&p.file);
            message.push_str(&format!("\n{}: {file}:{}:{}", p.message, p.line, p.column));
        }
        if let Some(help) = &r.help {
            message.push_str("\nhelp: ");
            message.push_str(help);
        }
        let at = (r.line, r.column, r.end_line, r.end_column);
        let file = root.shown_path(&r.file);
        out.push_str(&annotation(command, &file, at, &r.code, &message));
        for p in &r.related {
            let note = format!("{} ({})", p.message, r.message);
            let at = (p.line, p.column, p.end_line, p.end_column);
            let file = root.shown_path(&p.file);
            out.push_str(&annotation("notice", &file, at, &r.code, &note));
        }
    }
    out
}

/// One workflow command at `(line, col, end_line, end_col)` of a file.
fn annotation(
    command: &str,
    file: &str,
    (line, col, end_line, end_col): (usize, usize, usize, usize),
    title: &str,
    message: &str,
) -> String {
    format!(
        "::{command} file={},line={line},col={col},endLine={end_line},endColumn={end_col},title={}::{}\n",
        escape_property(file),
        escape_property(title),
        escape_data(message),
    )
}

/// Escaping for a workflow command's message.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escaping for a workflow command's property values.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn record(severity: &'static str, message: &str, help: Option<&str>) -> Record {
        Record {
            severity,
            code: "nudge::syntax::unexpected".into(),
            message: message.into(),
            file: "a,b.nudge".into(),
            line: 2,
            column: 3,
            end_line: 2,
            end_column: 7,
            help: help.map(str::to_string),
            related: Vec::new(),
        }
    }

    #[test]
    fn workflow_commands_are_escaped() {
        let root = Root {
            path: PathBuf::from("."),
            single_file: false,
        };
        let text = github(&[record("error", "50% off\r\nnow", Some("try `x`"))], &root);
        assert_eq!(
            text,
            "::error file=a%2Cb.nudge,line=2,col=3,endLine=2,endColumn=7,\
             title=nudge%3A%3Asyntax%3A%3Aunexpected::50%25 off%0D%0Anow%0Ahelp: try `x`\n"
        );
        let text = github(&[record("warning", "w", None)], &root);
        assert!(text.starts_with("::warning file="));
        assert!(text.ends_with("::w\n"));
    }

    #[test]
    fn json_keeps_every_key_in_order() {
        let text = json(&[record("error", "m", None)], 1, 0);
        assert_eq!(
            text,
            "{\"diagnostics\":[{\"severity\":\"error\",\"code\":\"nudge::syntax::unexpected\",\
             \"message\":\"m\",\"file\":\"a,b.nudge\",\"line\":2,\"column\":3,\"end_line\":2,\
             \"end_column\":7,\"help\":null}],\"errors\":1,\"warnings\":0}\n"
        );
    }
}
