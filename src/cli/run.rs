//! `nudge run`: compile the project, read the `env(…)` values it needs,
//! open the database, deploy the bundle and serve until SIGTERM or Ctrl-C.
//! Logs are JSON lines on stderr (`NUDGE_LOG` filters them).

use super::Outcome;
use super::args::RunArgs;
use super::build;
use super::error::CliError;
use nudge_runtime::daemon::{self, Config, RetryPolicy, SystemClock};
use std::sync::Arc;
use std::time::Duration;

pub fn run(args: &RunArgs) -> Result<Outcome, CliError> {
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
    let mut config = Config::new(args.listen);
    config.env = env;
    config.api_token = std::env::var("NUDGE_API_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    config.allow_hosts = args
        .allow_host
        .iter()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .collect();
    config.outbox_lease = Duration::from_secs(args.outbox_lease.max(1));
    config.retry = RetryPolicy {
        base: Duration::from_secs(args.retry_base.max(1)),
        max_attempts: args.max_attempts.max(1),
        ..RetryPolicy::default()
    };
    init_logs();
    let rt = super::ops::runtime()?;
    rt.block_on(async {
        let store = nudge_runtime::store::open(&args.db.db)
            .await
            .map_err(|e| CliError::Runtime(format!("cannot open `{}`: {e}", args.db.db)))?;
        let running = daemon::start(store, bundle, Arc::new(SystemClock), config)
            .await
            .map_err(CliError::Runtime)?;
        eprintln!(
            "nudge: listening on http://{} (database {})",
            running.addr, args.db.db
        );
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

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NUDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
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
