//! What makes `nudge run` deploy again without a restart: SIGHUP (handled
//! from before the project is first compiled, so it never ends the
//! process) and, with `--watch`, a change to a file under the project
//! (debounced 300 ms; the database files and hidden files are left out).
//! Each compiles the project from disk through the daemon's `Project` and
//! deploys it (`nudge_runtime::daemon::deploy`): a compile error is logged
//! with every diagnostic and the running version stays.

use notify_debouncer_mini::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{DebounceEventResult, new_debouncer};
use nudge_runtime::daemon::deploy::redeploy;
use nudge_runtime::daemon::{Project, Shared};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The project behind the daemon: compiled again from `path`.
pub fn project(path: &Path) -> Project {
    let path = path.to_path_buf();
    Project {
        reload: Arc::new(move || super::build::reload(&path)),
        env: Arc::new(|n| std::env::var(n).ok()),
    }
}

/// A wake-up per SIGHUP, listened to from now on.
pub fn hangups() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(1);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => {
                tracing::debug!("SIGHUP handled: it compiles and deploys the project again");
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        tracing::info!("SIGHUP: compiling the project to deploy it again");
                        // one pending is enough: a deploy reads the disk anew
                        let _ = tx.try_send(());
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot handle SIGHUP; it will stop the daemon"),
        }
    }
    rx
}

/// A wake-up per settled change under `path` (`--watch`); the watcher
/// lives as long as the task that reads it.
pub fn changes(path: &Path) -> Result<(mpsc::Receiver<()>, Watching), String> {
    let (tx, rx) = mpsc::channel(1);
    let mut debouncer =
        new_debouncer(
            Duration::from_millis(300),
            move |r: DebounceEventResult| match r {
                Ok(events) if events.iter().any(|e| counts(&e.path)) => {
                    let _ = tx.try_send(());
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "--watch: a file event could not be read"),
            },
        )
        .map_err(|e| format!("--watch: cannot watch files: {e}"))?;
    debouncer
        .watcher()
        .watch(path, RecursiveMode::Recursive)
        .map_err(|e| format!("--watch: cannot watch `{}`: {e}", path.display()))?;
    Ok((rx, debouncer))
}

/// The file watcher: watching until dropped.
pub type Watching = notify_debouncer_mini::Debouncer<RecommendedWatcher>;

/// Whether a changed file is one of the project's: not a database file,
/// not hidden.
fn counts(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let database = [".db", "-wal", "-shm", "-journal"]
        .iter()
        .any(|s| name.ends_with(s));
    !database && !name.starts_with('.')
}

/// Deploy again on every wake-up from `rx` until the daemon stops.
pub async fn serve(shared: Arc<Shared>, mut rx: mpsc::Receiver<()>, source: &'static str) {
    let cancel = shared.cancel.clone();
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            got = rx.recv() => {
                if got.is_none() {
                    break;
                }
                // the result is logged and counted by the deploy itself
                let _ = redeploy(&shared, source, shared.config.migrate).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::counts;
    use std::path::PathBuf;

    #[test]
    fn database_and_hidden_files_do_not_count() {
        assert!(counts(&PathBuf::from("/p/flows/welcome.nudge")));
        assert!(counts(&PathBuf::from("/p/templates/a.html")));
        for f in [
            "nudge.db",
            "nudge.db-wal",
            "nudge.db-shm",
            "x.db-journal",
            ".swp",
        ] {
            assert!(!counts(&PathBuf::from(format!("/p/{f}"))), "{f}");
        }
    }
}
