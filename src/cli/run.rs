//! `nudge run`: compile the project, read the `env(…)` values it needs,
//! open the database, deploy the bundle and serve until SIGTERM or Ctrl-C.
//! A database server that cannot be reached yet is waited for (a `warn`
//! line per attempt, `store::reach`), the API address answering 503
//! meanwhile (`daemon::waiting`); a URL that can never work fails at once.
//! Logs are JSON lines on stderr (`NUDGE_LOG` filters them, `logs.rs`):
//! once the daemon starts, nothing else is written there. SIGHUP, `--watch`
//! and `POST /v1/deploy` compile the project again and deploy it
//! (`redeploy.rs`); SIGHUP is handled from before the first compile.
//! Without `NUDGE_API_TOKEN`, one `warn` line at start says `/v1/*` is open.

use super::Outcome;
use super::args::RunArgs;
use super::build;
use super::error::CliError;
use super::logs;
use super::redeploy;
use nudge_runtime::daemon::serve::Limits;
use nudge_runtime::daemon::{self, Config, RetryPolicy, SystemClock};
use nudge_runtime::store::Store;
use nudge_runtime::store::postgres::PgOptions;
use nudge_runtime::store::reach::{self, shown_url};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub fn run(args: &RunArgs) -> Result<Outcome, CliError> {
    // logging and the SIGHUP handler first: a SIGHUP while the project
    // compiles or the database opens must not end the process either
    logs::init(std::env::var("NUDGE_LOG").ok().as_deref());
    let rt = super::ops::runtime()?;
    let hangups = {
        let _in_runtime = rt.enter();
        redeploy::hangups()
    };
    let bundle = match build::bundle(&args.path)? {
        Ok(b) => b,
        Err(report) => {
            return Ok(Outcome {
                stderr: report,
                failed: true,
                ..Outcome::default()
            });
        }
    };
    let env = daemon::read_env(&bundle, |n| std::env::var(n).ok()).map_err(CliError::Runtime)?;
    let config = config(args, env);
    rt.block_on(async {
        let Some(store) = open_db(&args.db.db, &pg_options(args), config.listen).await? else {
            tracing::info!("stopped before the database could be reached");
            return Ok(Outcome::default());
        };
        tracing::info!(database = %shown_url(&args.db.db), "database opened");
        let open_api = config.api_token.is_none();
        let running = daemon::start(store, bundle, Arc::new(SystemClock), config)
            .await
            .map_err(CliError::Runtime)?;
        tokio::spawn(redeploy::serve(running.shared.clone(), hangups, "sighup"));
        if args.watch {
            let (changes, watcher) = redeploy::changes(&args.path).map_err(CliError::Runtime)?;
            let shared = running.shared.clone();
            tokio::spawn(async move {
                let _watching = watcher;
                redeploy::serve(shared, changes, "watch").await;
            });
        }
        if open_api {
            tracing::warn!(
                addr = %running.addr,
                "NUDGE_API_TOKEN is not set: /v1/* answers anyone who can reach this address"
            );
        }
        let cancel = running.cancel_token();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down: intake stopped, finishing in-flight work");
            cancel.cancel();
        });
        running.wait().await;
        tracing::info!("stopped");
        Ok(Outcome::default())
    })
}

/// Opens the database; a server not reachable yet is waited for, with the
/// API address answering 503 meanwhile (a SQLite file is opened at once). `None` when a stop signal came
/// first.
async fn open_db(
    url: &str,
    pg: &PgOptions,
    listen: SocketAddr,
) -> Result<Option<Arc<dyn Store>>, CliError> {
    let failed = |e: nudge_runtime::store::StoreError| {
        CliError::Runtime(format!(
            "cannot open `{}`: {}",
            shown_url(url),
            reach::cause(&e)
        ))
    };
    if url.starts_with("sqlite:") {
        return nudge_runtime::store::open(url)
            .await
            .map(Some)
            .map_err(failed);
    }
    let open = async {
        let attempts = async {
            match reach::open_once(url, pg).await? {
                reach::Opened::Ready(store) => Ok(store),
                reach::Opened::Later(first) => reach::open_waiting(url, pg, first).await,
            }
        };
        tokio::select! {
            r = attempts => Some(r),
            () = shutdown_signal() => None,
        }
    };
    match daemon::waiting::not_ready_until(listen, open).await {
        Err(e) => Err(CliError::Runtime(e)),
        Ok(None) => Ok(None),
        Ok(Some(r)) => r.map(Some).map_err(failed),
    }
}

/// The Postgres store's settings from the flags and the environment.
fn pg_options(args: &RunArgs) -> PgOptions {
    PgOptions {
        max_connections: args.db_pool_size.max(1),
        connect_timeout: Duration::from_secs(args.db_connect_timeout.max(1)),
        timer_lease: i64::try_from(args.timer_lease.max(1)).unwrap_or(i64::MAX),
    }
}

/// The smallest `--max-head-size` taken: a plain request fits well within.
const MIN_HEAD_SIZE: usize = 1024;

/// The daemon's settings from the flags and the environment.
fn config(args: &RunArgs, env: std::collections::BTreeMap<String, String>) -> Config {
    let mut config = Config::new(args.listen);
    config.env = env;
    config.project = Some(redeploy::project(&args.path));
    config.migrate = args.migrate;
    config.bundle_poll = Duration::from_secs(args.bundle_poll.max(1));
    config.api_token = std::env::var("NUDGE_API_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    config.allow_hosts = trimmed(&args.allow_host);
    config.outbox_lease = Duration::from_secs(args.outbox_lease.max(1));
    config.max_group = args.max_group.max(1);
    config.retry = RetryPolicy {
        base: Duration::from_secs(args.retry_base.max(1)),
        max_attempts: args.max_attempts.max(1),
        ..RetryPolicy::default()
    };
    config.allow_origins = trimmed(&args.allow_origin);
    config.http = Limits {
        max_connections: args.max_connections.max(1),
        header_timeout: Duration::from_secs(args.header_timeout.max(1)),
        idle_timeout: Duration::from_secs(args.idle_timeout.max(1)),
        request_timeout: Duration::from_secs(args.request_timeout.max(1)),
        max_head_size: args.max_head_size.max(MIN_HEAD_SIZE),
    };
    config
}

fn trimmed(list: &[String]) -> Vec<String> {
    list.iter()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .collect()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
