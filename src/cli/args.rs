//! The command-line grammar (clap derive). Takes nothing, gives the parsed
//! [`Cli`]; clap itself prints `--help` and exits 2 on a usage error.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const CHECK_AFTER_HELP: &str = "\
Output:
  The report (every diagnostic, then a summary line) goes to stdout in the
  chosen format. Usage and I/O errors (a missing path, a directory without
  `.nudge` files, an unreadable file) go to stderr as one `error: …` line.

  `--format json` prints one object:
    {\"diagnostics\": [{\"severity\", \"code\", \"message\", \"file\", \"line\",
      \"column\", \"end_line\", \"end_column\", \"help\"}], \"errors\": N, \"warnings\": M}
  with 1-based lines and columns, `file` relative to PATH and `help` null
  when there is none. `--format github` prints one workflow command per
  diagnostic (`::error file=…,line=…::message`), naming files relative to the
  current directory as GitHub expects.

  Colours are used only when stdout is a terminal and NO_COLOR is not set;
  COLUMNS sets the width of the human report.

Exit status:
  0  no errors (warnings allowed)
  1  errors found (with --deny-warnings, warnings too)
  2  usage or I/O problems";

const FMT_AFTER_HELP: &str = "\
Output:
  `--check` prints the name of every file that would change on stdout, one
  per line, relative to PATH. Everything else goes to stderr: diagnostics for
  files that do not parse or are not UTF-8 (never written), the summary line,
  and usage or I/O errors.

Exit status:
  0  every file formatted (or, with --check, already formatted)
  1  --check found files that would change, or a file does not parse
  2  usage or I/O problems";

/// Marketing automation as a language: check, test, compile and run flows.
#[derive(Debug, Parser)]
#[command(
    name = "nudge",
    version,
    propagate_version = true,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Report every problem in a project: syntax, names, types, flows
    #[command(after_help = CHECK_AFTER_HELP)]
    Check(CheckArgs),
    /// Rewrite `.nudge` files in the canonical layout
    #[command(after_help = FMT_AFTER_HELP)]
    Fmt(FmtArgs),
    /// Compile a project to its bundle (or show the bytecode)
    Compile(CompileArgs),
    /// Run the project's `test` blocks on a virtual clock
    Test(TestArgs),
}

#[derive(Debug, Args)]
pub struct CompileArgs {
    /// A project directory (every `*.nudge` file below it) or one file
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Write to this file instead of stdout
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// What to write
    #[arg(long, value_enum, default_value_t = Emit::Bundle)]
    pub emit: Emit,
}

/// What `nudge compile` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    /// The versioned bundle bytes the runtime loads
    Bundle,
    /// A readable listing: offsets, step labels, source lines
    Disasm,
    /// The bundle as indented JSON
    Json,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// A project directory (every `*.nudge` file below it) or one file
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Run only the tests whose name contains this text
    #[arg(long)]
    pub filter: Option<String>,
    /// Print each test's journey step by step
    #[arg(long)]
    pub trace: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A project directory (every `*.nudge` file below it) or one file
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// How to print the diagnostics
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Treat warnings as errors (exit 1 if there are any)
    #[arg(long)]
    pub deny_warnings: bool,
}

#[derive(Debug, Args)]
pub struct FmtArgs {
    /// A project directory (every `*.nudge` file below it) or one file
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Write nothing; list the files that would change and exit 1 if any
    #[arg(long)]
    pub check: bool,
}

/// Report formats of `nudge check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Rendered like rustc, with the source around each problem
    Human,
    /// One JSON object with every diagnostic
    Json,
    /// GitHub Actions workflow commands (annotations)
    Github,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
