//! `nudge graph`: load and check the project like `nudge check`, then print
//! a diagram of its flows (all, or the one `--flow` names) in Mermaid or dot
//! (the model and renderers are `nudge_compiler::graph`).
//!
//! Takes [`GraphArgs`]; gives the diagram on stdout, or the diagnostic
//! report on stderr and exit 1 when the project has errors. An unknown
//! `--flow` is a [`CliError::UnknownFlow`] naming the flows (exit 2).

use super::args::{GraphArgs, GraphFormat};
use super::error::CliError;
use super::project::{self, DiskFs};
use super::{Outcome, build, check};
use nudge_compiler::graph::{self, FlowGraph, dot, mermaid};

pub fn run(args: &GraphArgs) -> Result<Outcome, CliError> {
    let decoded = project::decode(project::load(&args.path)?);
    if decoded.valid.len() != decoded.sources.files.len() {
        let (sources, diagnostics) = check::diagnose(decoded);
        return Ok(failed(build::report(&sources, &diagnostics)));
    }
    let checked = nudge_compiler::check(&decoded.sources, &DiskFs);
    if checked.diagnostics.has_errors() {
        return Ok(failed(build::report(
            &decoded.sources,
            &checked.diagnostics,
        )));
    }
    let flows = selected(graph::flows(&decoded.sources, &checked.modules), args)?;
    let stdout = match args.format {
        GraphFormat::Mermaid => mermaid::render(&flows),
        GraphFormat::Dot => dot::render(&flows),
    };
    Ok(Outcome {
        stdout,
        stderr: String::new(),
        failed: false,
    })
}

fn failed(report: String) -> Outcome {
    Outcome {
        stdout: String::new(),
        stderr: report,
        failed: true,
    }
}

/// Every flow, or only the one `--flow` names.
fn selected(flows: Vec<FlowGraph>, args: &GraphArgs) -> Result<Vec<FlowGraph>, CliError> {
    let Some(name) = &args.flow else {
        return Ok(flows);
    };
    if flows.iter().any(|f| &f.name == name) {
        return Ok(flows.into_iter().filter(|f| &f.name == name).collect());
    }
    let known: Vec<&str> = flows.iter().map(|f| f.name.as_str()).collect();
    Err(CliError::UnknownFlow {
        name: name.clone(),
        known: if known.is_empty() {
            "(none)".to_string()
        } else {
            known.join(", ")
        },
    })
}
