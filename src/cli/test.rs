//! `nudge test`: compile, run every `test` block on a virtual clock, print
//! one line per test and `N passed, M failed`; exit 1 if any failed.

use super::Outcome;
use super::args::TestArgs;
use super::build;
use super::error::CliError;
use nudge_runtime::sim::runner;

pub fn run(args: &TestArgs) -> Result<Outcome, CliError> {
    let bundle = match build::bundle(&args.path)? {
        Ok(b) => b,
        Err(report) => {
            return Ok(Outcome {
                stdout: String::new(),
                stderr: report,
                failed: true,
            });
        }
    };
    let outcomes = runner::run_all(&bundle, args.filter.as_deref())?;
    let (text, ok) = runner::report(&outcomes, args.trace);
    Ok(Outcome {
        stdout: text,
        stderr: String::new(),
        failed: !ok,
    })
}
