//! The `nudge` command line: parses the arguments and hands over to
//! [`cli::run`], which returns the process exit code.
//!
//! Exit codes: 0 success, 1 problems found (diagnostics, or files that
//! `fmt --check` would change), 2 usage or I/O problems.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
