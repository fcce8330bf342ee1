//! `nudge check`: load the project, run the compiler, print the report.
//!
//! Takes [`CheckArgs`]; gives the report text and the exit code (0 no
//! errors, 1 errors, or warnings with `--deny-warnings`). I/O problems come
//! back as a [`CliError`] (exit 2).

use super::args::{CheckArgs, Format};
use super::error::CliError;
use super::project::{self, Decoded, DiskFs};
use super::{Outcome, human, machine};
use nudge_compiler::diagnostics::Diagnostics;
use nudge_compiler::files::SourceSet;
use nudge_compiler::{check, syntax};
use std::io::IsTerminal;

pub fn run(args: &CheckArgs) -> Result<Outcome, CliError> {
    let project = project::load(&args.path)?;
    let root = project.root.clone();
    let (sources, diagnostics) = diagnose(project::decode(project));
    let errors = diagnostics.error_count();
    let warnings = diagnostics.warning_count();
    let failed = errors > 0 || (args.deny_warnings && warnings > 0);
    let report = match args.format {
        Format::Human => {
            let mut text = human::render(
                &sources,
                &diagnostics,
                human::Style::detect(std::io::stdout().is_terminal()),
            );
            text.push_str(&human::summary(
                errors,
                warnings,
                sources.files.len(),
                args.deny_warnings,
            ));
            text.push('\n');
            text
        }
        Format::Json => machine::json(&diagnostics.records(&sources), errors, warnings),
        Format::Github => machine::github(&diagnostics.records(&sources), &root),
    };
    Ok(Outcome {
        stdout: report,
        stderr: String::new(),
        failed,
    })
}

/// Every diagnostic of the project, sorted, with the sources they point into.
///
/// When some files are not UTF-8 the others are only parsed: like after a
/// syntax error, the later passes would report names declared in the
/// unreadable files as unknown.
pub fn diagnose(decoded: Decoded) -> (SourceSet, Diagnostics) {
    let Decoded {
        sources,
        valid,
        mut diagnostics,
    } = decoded;
    if valid.len() == sources.files.len() {
        let checked = check(&sources, &DiskFs);
        return (sources, checked.diagnostics);
    }
    let mut subset = SourceSet::new();
    for id in &valid {
        if let Some(f) = sources.get(*id) {
            subset.add(f.path.clone(), f.name.clone(), f.text.clone());
        }
    }
    let mut found = Diagnostics::new();
    syntax::parse_all(&subset, &mut found);
    for mut d in found.items {
        // The subset's ids are positions in `valid`.
        if let Some(id) = valid.get(d.file.0 as usize) {
            d.file = *id;
            d.span.file = *id;
        }
        diagnostics.items.push(d);
    }
    diagnostics.sort();
    (sources, diagnostics)
}
