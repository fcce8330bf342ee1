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
    /// Draw each flow as a Mermaid or Graphviz dot diagram
    #[command(after_help = GRAPH_AFTER_HELP)]
    Graph(GraphArgs),
    /// Run the project's `test` blocks on a virtual clock
    Test(TestArgs),
    /// Run the daemon: HTTP API and postbacks in, the outbox out
    #[command(after_help = RUN_AFTER_HELP)]
    Run(RunArgs),
    /// Totals of the database: contacts, events, outbox, flows
    Stats(DbArgs),
    /// Show, move or remove a contact
    #[command(subcommand)]
    Contact(ContactCommand),
    /// Pause or resume a flow
    #[command(subcommand)]
    Flow(FlowCommand),
    /// List the outbox or retry a dead letter
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Apply an event to a contact, as `POST /v1/events` would
    SendEvent(SendEventArgs),
    /// Copy a whole store from SQLite to PostgreSQL (resumable, verified)
    #[command(after_help = MIGRATE_DB_AFTER_HELP)]
    MigrateDb(MigrateDbArgs),
}

const MIGRATE_DB_AFTER_HELP: &str = "\
Stop the daemon writing the source first (or copy again once it is stopped:
an interrupted or repeated copy resumes and converges). Both databases are
migrated to their latest schema; at the end every table's rows are counted
on both sides. Summary per table on stdout, progress on stderr.";

const RUN_AFTER_HELP: &str = "\
Environment:
  NUDGE_DB           the database (as --db)
  NUDGE_LISTEN       the address of the API (as --listen)
  NUDGE_API_TOKEN    when set, /v1/* needs `Authorization: Bearer <token>`
  NUDGE_ALLOW_HOSTS  comma-separated hosts outgoing requests may reach although
                     they are private or loopback (as --allow-host)
  NUDGE_ALLOW_ORIGINS  comma-separated browser origins /v1/* accepts (as
                     --allow-origin); any other `Origin` is refused 403
  NUDGE_MAX_CONNECTIONS  HTTP connections open at once (as --max-connections)
  NUDGE_MAX_HEAD_SIZE  bytes a request head may take (as --max-head-size)
  NUDGE_MAX_GROUP    inputs per commit at most (as --max-group)
  NUDGE_DB_POOL_SIZE, NUDGE_DB_CONNECT_TIMEOUT, NUDGE_TIMER_LEASE  Postgres
                     settings (as --db-pool-size, --db-connect-timeout,
                     --timer-lease)
  NUDGE_LOG          log filter (default `info`); logs are JSON lines on stderr
  and every variable the project reads with env(\"…\"): a missing one stops
  the start with an error naming it.

Stops cleanly on SIGTERM or Ctrl-C: intake stops, in-flight work finishes.
SIGHUP is logged and ignored (no reload yet).";

/// The database the operating commands work on.
#[derive(Debug, Args)]
pub struct DbArgs {
    /// The database URL
    #[arg(long, env = "NUDGE_DB", default_value = "sqlite://nudge.db")]
    pub db: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A project directory (every `*.nudge` file below it) or one file
    #[arg(default_value = ".")]
    pub path: PathBuf,
    #[command(flatten)]
    pub db: DbArgs,
    /// The address the HTTP API listens on
    #[arg(long, env = "NUDGE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// A host outgoing requests may reach although private or loopback
    /// (repeatable; `host` or `host:port`)
    #[arg(long = "allow-host", env = "NUDGE_ALLOW_HOSTS", value_delimiter = ',')]
    pub allow_host: Vec<String>,
    /// Seconds before the first retry of a failed delivery (doubles each time)
    #[arg(long, default_value_t = 10)]
    pub retry_base: u64,
    /// Delivery attempts before a row becomes a dead letter
    #[arg(long, default_value_t = 8)]
    pub max_attempts: i64,
    /// Seconds an outbox claim holds its rows: after a crash, the rows the
    /// dead process had claimed go out again once this passes (a running
    /// daemon renews the lease of its deliveries in flight)
    #[arg(long = "outbox-lease", default_value_t = 300)]
    pub outbox_lease: u64,
    /// A browser origin `/v1/*` accepts (`https://admin.example.com`;
    /// repeatable or comma-separated; `*` for any). Requests carrying any
    /// other `Origin` are refused 403
    #[arg(
        long = "allow-origin",
        env = "NUDGE_ALLOW_ORIGINS",
        value_delimiter = ','
    )]
    pub allow_origin: Vec<String>,
    /// HTTP connections open at once at most (keep it well below the
    /// file-descriptor limit); more wait until one closes
    #[arg(long, env = "NUDGE_MAX_CONNECTIONS", default_value_t = 512)]
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers (also how long an
    /// idle keep-alive connection stays open)
    #[arg(long, default_value_t = 10)]
    pub header_timeout: u64,
    /// Seconds a connection may move no byte, with no request being
    /// handled, before it is closed
    #[arg(long, default_value_t = 60)]
    pub idle_timeout: u64,
    /// Seconds a request may take, body included, before it is answered 408
    #[arg(long, default_value_t = 30)]
    pub request_timeout: u64,
    /// Bytes a request head (request line and headers) may take at most
    /// (at least 1024); a larger one is answered 431 `headers_too_large`
    #[arg(long, env = "NUDGE_MAX_HEAD_SIZE", default_value_t = 16384)]
    pub max_head_size: usize,
    /// Compile and deploy again when a file under the project changes
    /// (debounced 300 ms); SIGHUP and `POST /v1/deploy` always do
    #[arg(long)]
    pub watch: bool,
    /// At start and on every deploy, move contacts on older versions of a
    /// flow to the deployed one at the step of the same name
    #[arg(long)]
    pub migrate: bool,
    /// Seconds between looks for a version another daemon on the same
    /// database deployed
    #[arg(long, env = "NUDGE_BUNDLE_POLL", default_value_t = 5)]
    pub bundle_poll: u64,
    /// Inputs (events, postbacks, timers) written in one commit at most
    #[arg(long, env = "NUDGE_MAX_GROUP", default_value_t = 1000)]
    pub max_group: usize,
    /// Postgres only: connections in the daemon's pool (commits, claims
    /// and reads in flight at once)
    #[arg(long, env = "NUDGE_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,
    /// Postgres only: seconds an operation waits for a connection (a new
    /// one's connect included) before it fails and the API answers 503
    #[arg(long, env = "NUDGE_DB_CONNECT_TIMEOUT", default_value_t = 5)]
    pub db_connect_timeout: u64,
    /// Postgres only: seconds a daemon's claim of a page of due timers
    /// holds; the timers a daemon that died had claimed fire on another
    /// once this passes
    #[arg(long, env = "NUDGE_TIMER_LEASE", default_value_t = 60)]
    pub timer_lease: u64,
}

#[derive(Debug, Subcommand)]
pub enum ContactCommand {
    /// Fields, enrollments, pending waits and journey, as JSON
    Show {
        id: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Enter a flow (at its start or a step) or move to a step of it
    Move {
        id: String,
        flow: String,
        /// The step (omitted: enter the flow at its start)
        step: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Take a contact out of a flow
    Remove {
        id: String,
        flow: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Take a repaired contact out of quarantine (its state must read)
    Release {
        id: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum FlowCommand {
    /// Stop enrolling and advancing; due timers wait for the resume
    Pause {
        flow: String,
        #[command(flatten)]
        db: DbArgs,
    },
    Resume {
        flow: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Outbox rows, newest first
    List {
        /// pending, delivered or dead
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Put a dead letter back in line
    Retry {
        id: i64,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Args)]
pub struct MigrateDbArgs {
    /// The SQLite store to copy (`sqlite://FILE`)
    #[arg(long)]
    pub from: String,
    /// The PostgreSQL store to fill (`postgres://…`; the database must exist)
    #[arg(long)]
    pub to: String,
}

#[derive(Debug, Args)]
pub struct SendEventArgs {
    /// The event's name
    pub event: String,
    /// The contact, as a JSON object (`{"id": "c-1"}` or a unique field)
    #[arg(long)]
    pub contact: String,
    /// The event's fields, as a JSON object
    #[arg(long)]
    pub data: Option<String>,
    /// An idempotency key
    #[arg(long)]
    pub id: Option<String>,
    #[command(flatten)]
    pub db: DbArgs,
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

const GRAPH_AFTER_HELP: &str = "\
Examples:
  nudge graph examples/quickstart > flows.mmd
  nudge graph . --flow onboarding --format dot | dot -Tsvg > onboarding.svg

Output:
  The diagram on stdout: Mermaid `flowchart TD` (renders on GitHub in a
  ```mermaid block) or a Graphviz `digraph`, one subgraph per flow. A project
  with errors prints its diagnostics to stderr instead.

Exit status:
  0  the diagram was printed
  1  the project has errors
  2  usage or I/O problems (an unknown --flow lists the flows)";

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// A project directory (every `*.nudge` file below it) or one file
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Draw only this flow (every flow when absent)
    #[arg(long)]
    pub flow: Option<String>,
    /// The diagram language
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    pub format: GraphFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Mermaid `flowchart TD`
    Mermaid,
    /// Graphviz `digraph`
    Dot,
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
