//! Fresh PostgreSQL databases for tests, on the server that `scripts/test`
//! starts: `NUDGE_TEST_POSTGRES_URL` names it (a URL to its `postgres`
//! database). Each [`PgDatabase`] is a new, empty database with a unique
//! name, dropped again when the value goes.
//!
//! A test that needs Postgres fails loudly when the variable is not set: it
//! never skips. Run the tests with `scripts/test`, which installs
//! PostgreSQL where it is missing, starts a throw-away cluster on loopback
//! and exports the variable.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The variable naming the test server.
pub const URL_VAR: &str = "NUDGE_TEST_POSTGRES_URL";

/// The variable naming a script that restarts the test server
/// (`pg_ctl restart -m fast`), for fault tests.
pub const RESTART_VAR: &str = "NUDGE_TEST_POSTGRES_RESTART";

/// A database of its own on the test server; dropped on drop.
#[derive(Debug)]
pub struct PgDatabase {
    admin: String,
    name: String,
    url: String,
}

/// The URL of the test server's `postgres` database, or a panic that says
/// how to get one.
pub fn server_url() -> String {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{URL_VAR} is not set: this test runs on PostgreSQL. Run the tests with \
             `scripts/test`, which starts a throw-away cluster on loopback and sets it \
             (or point {URL_VAR} at a server where this user may create databases)"
        ),
    }
}

/// Restarts the test server (fast shutdown, then start) and waits until it
/// takes connections again.
pub fn restart_server() {
    let script = std::env::var(RESTART_VAR)
        .unwrap_or_else(|_| panic!("{RESTART_VAR} is not set: run the tests with `scripts/test`"));
    let status = std::process::Command::new(&script)
        .status()
        .unwrap_or_else(|e| panic!("cannot run `{script}`: {e}"));
    assert!(status.success(), "`{script}` failed: {status}");
}

impl PgDatabase {
    /// A new, empty database; `label` goes into its name (for a reader of
    /// the server's log).
    pub async fn create(label: &str) -> PgDatabase {
        let admin = server_url();
        let name = unique_name(label);
        let mut conn = connect(&admin).await;
        let sql = format!("CREATE DATABASE \"{name}\"");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        let url = with_database(&admin, &name);
        PgDatabase { admin, name, url }
    }

    /// [`PgDatabase::create`] from synchronous code (a runtime of its own
    /// on another thread).
    pub fn create_blocking(label: &str) -> PgDatabase {
        let label = label.to_string();
        on_own_runtime(move || async move { PgDatabase::create(&label).await })
    }

    /// Its URL (`postgres://…/NAME`).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        // best effort: the cluster is thrown away after the run anyway
        on_own_runtime(move || async move {
            use sqlx::Connection;
            if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
            }
        });
    }
}

async fn connect(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url).await.unwrap_or_else(|e| {
        panic!("cannot connect to the test PostgreSQL at {URL_VAR}: {e} (is `scripts/test` running it?)")
    })
}

/// `nudge_t_<pid>_<n>_<label>`, lower case, at most 63 bytes.
fn unique_name(label: &str) -> String {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let clean: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let mut name = format!("nudge_t_{}_{n}_{clean}", std::process::id());
    name.truncate(63);
    name
}

/// The server URL with its database replaced by `name` (query kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|j| start + j))
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Runs `f`'s future to its end on a new thread with its own runtime, so
/// that it works from synchronous code and from inside another runtime.
pub(crate) fn on_own_runtime<F, Fut, T>(f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
    T: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the PostgreSQL helper")
            .block_on(f())
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_replaces_the_path_and_keeps_the_query() {
        assert_eq!(
            with_database("postgres://u@127.0.0.1:5433/postgres?sslmode=disable", "x"),
            "postgres://u@127.0.0.1:5433/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
    }

    #[test]
    fn names_are_unique_and_short() {
        let a = unique_name("A very long label that goes on and on and on and on and on");
        let b = unique_name("A very long label that goes on and on and on and on and on");
        assert_ne!(a, b);
        assert!(a.len() <= 63 && a.starts_with("nudge_t_"));
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        );
    }
}
