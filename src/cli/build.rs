//! Compiling a project for the commands that need a bundle (`compile`,
//! `test`): on errors the human diagnostic report is the command's output.

use super::error::CliError;
use super::human;
use super::project::{self, DiskFs};
use nudge_compiler::bundle::Bundle;
use std::io::IsTerminal;
use std::path::Path;

/// The bundle, or the rendered diagnostics that prevented it.
pub fn bundle(path: &Path) -> Result<Result<Bundle, String>, CliError> {
    let decoded = project::decode(project::load(path)?);
    let all_valid = decoded.valid.len() == decoded.sources.files.len();
    let (sources, diagnostics, bundle) = if all_valid {
        let (checked, bundle) = nudge_compiler::compile(&decoded.sources, &DiskFs);
        (decoded.sources, checked.diagnostics, bundle)
    } else {
        let (sources, diagnostics) = super::check::diagnose(decoded);
        (sources, diagnostics, None)
    };
    match bundle {
        Some(b) if !diagnostics.has_errors() => Ok(Ok(b)),
        _ => {
            let style = human::Style::detect(std::io::stderr().is_terminal());
            let mut text = human::render(&sources, &diagnostics, style);
            text.push_str(&human::summary(
                diagnostics.error_count(),
                diagnostics.warning_count(),
                sources.files.len(),
                false,
            ));
            text.push('\n');
            Ok(Err(text))
        }
    }
}
