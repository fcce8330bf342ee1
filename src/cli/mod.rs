//! The CLI: argument parsing ([`args`]), finding and reading the project
//! ([`project`]), the commands ([`check`], [`fmt`], [`graph`], …) and the report formats
//! ([`human`], [`machine`]).
//!
//! Commands are functions from their arguments to an [`Outcome`] (the text
//! for stdout and stderr and whether it failed) or a [`CliError`]; only
//! [`run`] touches the process's streams and exit code.
//!
//! INVARIANT: no input makes the binary panic; a closed stdout (`| head`)
//! ends the command quietly.

mod args;
mod build;
mod check;
mod compile;
mod error;
mod fmt;
mod graph;
mod human;
mod io_diag;
mod logs;
mod machine;
mod migrate_db;
mod ops;
mod project;
mod redeploy;
mod run;
mod test;

use args::{Cli, Command};
use clap::Parser;
use error::CliError;
use std::io::{self, Write};
use std::process::ExitCode;

/// The exit code for a command that found problems.
const PROBLEMS: u8 = 1;
/// The exit code for usage and I/O problems (clap uses it for usage errors).
const USAGE_OR_IO: u8 = 2;

/// What a command has to say, and whether it found problems.
#[derive(Debug, Default)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub failed: bool,
}

/// Parse the arguments, run the command, print, and give the exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Check(a) => check::run(a),
        Command::Fmt(a) => fmt::run(a),
        Command::Compile(a) => compile::run(a),
        Command::Graph(a) => graph::run(a),
        Command::Test(a) => test::run(a),
        Command::Run(a) => run::run(a),
        Command::Stats(a) => ops::stats(a),
        Command::Contact(c) => ops::contact(c),
        Command::Flow(c) => ops::flow(c),
        Command::Outbox(c) => ops::outbox(c),
        Command::SendEvent(a) => ops::send_event(a),
        Command::MigrateDb(a) => migrate_db::run(a),
    };
    match result.and_then(print) {
        Ok(true) => ExitCode::from(PROBLEMS),
        Ok(false) => ExitCode::SUCCESS,
        Err(e) => {
            // If stderr is gone too there is nobody left to tell.
            let _ = writeln!(io::stderr(), "error: {e}");
            ExitCode::from(USAGE_OR_IO)
        }
    }
}

/// Write an outcome to the streams; gives whether it failed.
fn print(outcome: Outcome) -> Result<bool, CliError> {
    write_all(&mut io::stdout().lock(), &outcome.stdout)?;
    write_all(&mut io::stderr().lock(), &outcome.stderr)?;
    Ok(outcome.failed)
}

fn write_all(stream: &mut impl Write, text: &str) -> Result<(), CliError> {
    if text.is_empty() {
        return Ok(());
    }
    match stream
        .write_all(text.as_bytes())
        .and_then(|()| stream.flush())
    {
        Ok(()) => Ok(()),
        // The reader has seen enough (`nudge check | head`): not a problem.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::Output(e)),
    }
}
