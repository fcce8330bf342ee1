//! Compiling a project for the commands that need a bundle (`compile`,
//! `test`): on errors the human diagnostic report is the command's output.
//! `nudge run` compiles again on a redeploy ([`reload`]): its errors are
//! plain records, for the log and the API.

use super::error::CliError;
use super::human;
use super::project::{self, DiskFs};
use nudge_compiler::bundle::Bundle;
use nudge_compiler::diagnostics::Diagnostics;
use nudge_compiler::files::SourceSet;
use nudge_runtime::daemon::ReloadError;
use std::io::IsTerminal;
use std::path::Path;

/// The bundle, or the diagnostics that prevented it as plain records.
pub fn reload(path: &Path) -> Result<Bundle, ReloadError> {
    let loaded = project::load(path).map_err(|e| ReloadError::Unreadable(e.to_string()))?;
    let (sources, diagnostics, bundle) = compiled(project::decode(loaded));
    match bundle {
        Some(b) if !diagnostics.has_errors() => Ok(b),
        _ => Err(ReloadError::Diagnostics(diagnostics.records(&sources))),
    }
}

/// The bundle, or the rendered diagnostics that prevented it.
pub fn bundle(path: &Path) -> Result<Result<Bundle, String>, CliError> {
    let (sources, diagnostics, bundle) = compiled(project::decode(project::load(path)?));
    match bundle {
        Some(b) if !diagnostics.has_errors() => Ok(Ok(b)),
        _ => Ok(Err(report(&sources, &diagnostics))),
    }
}

/// The human diagnostic report with its summary line, for stderr.
pub fn report(sources: &SourceSet, diagnostics: &Diagnostics) -> String {
    let style = human::Style::detect(std::io::stderr().is_terminal());
    let mut text = human::render(sources, diagnostics, style);
    text.push_str(&human::summary(
        diagnostics.error_count(),
        diagnostics.warning_count(),
        sources.files.len(),
        false,
    ));
    text.push('\n');
    text
}

/// Check and compile decoded sources (a bundle only if every file is text).
fn compiled(decoded: project::Decoded) -> (SourceSet, Diagnostics, Option<Bundle>) {
    let all_valid = decoded.valid.len() == decoded.sources.files.len();
    if all_valid {
        let (checked, bundle) = nudge_compiler::compile(&decoded.sources, &DiskFs);
        (decoded.sources, checked.diagnostics, bundle)
    } else {
        let (sources, diagnostics) = super::check::diagnose(decoded);
        (sources, diagnostics, None)
    }
}
