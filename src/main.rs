//! The `nudge` command line: parses the arguments and hands over to
//! [`cli::run`], which returns the process exit code.
//!
//! Exit codes: 0 success, 1 problems found (diagnostics, or files that
//! `fmt --check` would change), 2 usage or I/O problems.

mod cli;

/// mimalloc instead of the system allocator: the daemon allocates and frees
/// per input on several threads at once, where glibc's malloc took a fifth
/// of the time (see `docs/benchmarks.md`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::run()
}
