//! `nudge fmt`: every `.nudge` file through
//! `nudge_compiler::fmt::format_source`, written in place (or, with
//! `--check`, only listed).
//!
//! Takes [`FmtArgs`]; gives the list of changed files (stdout, `--check`
//! only), the diagnostics and a summary (stderr), and the exit code.
//! Guarantees: a file that does not parse, or is not UTF-8, is never written.

use super::Outcome;
use super::args::FmtArgs;
use super::error::CliError;
use super::human::{self, plural};
use super::project::{self, Decoded};
use nudge_compiler::fmt::format_source;
use nudge_compiler::syntax::SyntaxDiagnostic;
use std::collections::BTreeSet;
use std::fs;
use std::io::IsTerminal;

pub fn run(args: &FmtArgs) -> Result<Outcome, CliError> {
    let project = project::load(&args.path)?;
    let Decoded {
        sources,
        valid,
        mut diagnostics,
    } = project::decode(project);
    let mut changed = Vec::new();
    for id in valid {
        let Some(file) = sources.get(id) else {
            continue;
        };
        match format_source(id, &file.text) {
            Ok(formatted) if formatted == file.text => {}
            Ok(formatted) => {
                if !args.check {
                    fs::write(&file.path, formatted).map_err(|source| CliError::Write {
                        path: file.path.clone(),
                        source,
                    })?;
                }
                changed.push(file.name.clone());
            }
            Err(e) => diagnostics.push(e.span, SyntaxDiagnostic::from(e)),
        }
    }
    diagnostics.sort();

    let broken = diagnostics
        .items
        .iter()
        .filter(|d| !d.is_warning())
        .map(|d| d.file)
        .collect::<BTreeSet<_>>()
        .len();
    let unchanged = sources.files.len() - broken - changed.len();
    let failed = broken > 0 || (args.check && !changed.is_empty());
    let mut summary = summary(args.check, changed.len(), unchanged, broken);
    if failed {
        summary = format!("error: {summary}");
    }

    let mut stderr = human::render(
        &sources,
        &diagnostics,
        human::Style::detect(std::io::stderr().is_terminal()),
    );
    stderr.push_str(&summary);
    stderr.push('\n');
    let stdout = if args.check {
        changed.iter().map(|n| format!("{n}\n")).collect()
    } else {
        String::new()
    };
    Ok(Outcome {
        stdout,
        stderr,
        failed,
    })
}

/// `2 files would be reformatted, 3 already formatted`, and the like.
fn summary(check: bool, changed: usize, unchanged: usize, broken: usize) -> String {
    let mut parts: Vec<String> = Vec::new();
    let count = |parts: &Vec<String>, n: usize| {
        if parts.is_empty() {
            plural(n, "file")
        } else {
            n.to_string()
        }
    };
    if changed > 0 {
        let n = count(&parts, changed);
        parts.push(if check {
            format!("{n} would be reformatted")
        } else {
            format!("formatted {n}")
        });
    }
    if unchanged > 0 {
        let n = count(&parts, unchanged);
        parts.push(format!("{n} already formatted"));
    }
    if broken > 0 {
        let n = count(&parts, broken);
        parts.push(format!("{n} left untouched because of errors"));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn summaries_read_well() {
        assert_eq!(
            summary(true, 1, 4, 0),
            "1 file would be reformatted, 4 already formatted"
        );
        assert_eq!(
            summary(false, 2, 0, 1),
            "formatted 2 files, 1 left untouched because of errors"
        );
        assert_eq!(summary(false, 0, 3, 0), "3 files already formatted");
        assert_eq!(
            summary(true, 0, 0, 1),
            "1 file left untouched because of errors"
        );
    }
}
