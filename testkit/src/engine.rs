//! One test, both storage engines: [`Engine`] names one, [`TestDb`] owns a
//! fresh database on it (a file in the caller's scratch directory, or a
//! [`PgDatabase`] of its own on the test server) and gives the `--db` URL,
//! and [`on_both_engines!`](crate::on_both_engines) turns one test function
//! taking an `Engine` into `NAME::sqlite` and `NAME::postgres` tests.
//!
//! The Postgres half panics loudly when `NUDGE_TEST_POSTGRES_URL` is not
//! set (see [`crate::pg`]): run the tests with `scripts/test`.

use crate::pg::PgDatabase;
use std::path::Path;

/// A storage engine the daemon runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// `sqlite` or `postgres` (for labels and messages).
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

/// A fresh, empty database on one engine; a Postgres one is dropped on
/// drop, a SQLite file goes with the caller's scratch directory.
#[derive(Debug)]
pub enum TestDb {
    Sqlite { url: String },
    Postgres(PgDatabase),
}

impl TestDb {
    /// A new database: `DIR/nudge.db` on SQLite, a database named after
    /// `label` on the Postgres test server.
    pub fn new(engine: Engine, dir: &Path, label: &str) -> TestDb {
        match engine {
            Engine::Sqlite => TestDb::Sqlite {
                url: format!("sqlite://{}", dir.join("nudge.db").display()),
            },
            Engine::Postgres => TestDb::Postgres(PgDatabase::create_blocking(label)),
        }
    }

    pub fn engine(&self) -> Engine {
        match self {
            TestDb::Sqlite { .. } => Engine::Sqlite,
            TestDb::Postgres(_) => Engine::Postgres,
        }
    }

    /// The URL `--db` takes.
    pub fn url(&self) -> String {
        match self {
            TestDb::Sqlite { url } => url.clone(),
            TestDb::Postgres(db) => db.url().to_string(),
        }
    }

    /// Runs one SQL statement on a connection of its own (what an operator
    /// did to the database); panics with the error.
    pub async fn exec(&self, statement: &str) {
        use sqlx::Connection;
        let sql = sqlx::AssertSqlSafe(statement.to_string());
        let done = match self {
            TestDb::Sqlite { url } => {
                let mut conn = sqlx::SqliteConnection::connect(url)
                    .await
                    .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
                sqlx::raw_sql(sql).execute(&mut conn).await.map(drop)
            }
            TestDb::Postgres(db) => {
                let mut conn = sqlx::PgConnection::connect(db.url())
                    .await
                    .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", db.name()));
                sqlx::raw_sql(sql).execute(&mut conn).await.map(drop)
            }
        };
        done.unwrap_or_else(|e| panic!("`{statement}` failed: {e}"));
    }
}

impl TestDb {
    /// Everything the database holds, as bytes a test can search for what
    /// must never be stored: the SQLite files (`nudge.db`, `-wal`, `-shm`)
    /// as they are; on Postgres every table's rows as text, each `bytea`
    /// value (shown as `\x` and hex) also decoded.
    pub fn contents(&self) -> Vec<(String, Vec<u8>)> {
        match self {
            TestDb::Sqlite { url } => {
                let file = url.trim_start_matches("sqlite://").to_string();
                ["", "-wal", "-shm"]
                    .iter()
                    .filter_map(|end| {
                        let name = format!("{file}{end}");
                        Some((name.clone(), std::fs::read(&name).ok()?))
                    })
                    .collect()
            }
            TestDb::Postgres(db) => {
                let url = db.url().to_string();
                crate::pg::on_own_runtime(move || async move { tables(&url).await })
            }
        }
    }
}

/// Each table of the database at `url`: its rows as text, then the bytes
/// of every hex `bytea` in them.
async fn tables(url: &str) -> Vec<(String, Vec<u8>)> {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("cannot list the tables: {e}"));
    let mut out = Vec::new();
    for name in names {
        let sql = format!("SELECT coalesce(string_agg(t::text, E'\\n'), '') FROM \"{name}\" t");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot read table {name}: {e}"));
        let text: String = row.get(0);
        let mut bytes = text.clone().into_bytes();
        bytes.extend(unhex_runs(&text));
        out.push((format!("table {name}"), bytes));
    }
    out
}

/// The bytes of every `\x` followed by hex digits in `text`, one run after
/// another (a newline between runs).
fn unhex_runs(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for run in text.split("\\x").skip(1) {
        let hex: Vec<u8> = run
            .bytes()
            .take_while(u8::is_ascii_hexdigit)
            .collect::<Vec<u8>>();
        for pair in hex.chunks_exact(2) {
            let digits = std::str::from_utf8(pair).unwrap_or("00");
            out.push(u8::from_str_radix(digits, 16).unwrap_or(0));
        }
        out.push(b'\n');
    }
    out
}

/// Turns each named test function, `fn NAME(engine: Engine)` (or an `async
/// fn` with the test attribute given first), into two tests,
/// `NAME::sqlite` and `NAME::postgres`:
///
/// ```ignore
/// on_both_engines!(delivery_works, waits_fire);                  // #[test]
/// on_both_engines!(#[tokio::test] async dedupe, keys);           // async
/// ```
#[macro_export]
macro_rules! on_both_engines {
    (#[$attr:meta] async $($name:ident),+ $(,)?) => {$(
        mod $name {
            #[$attr]
            async fn sqlite() {
                super::$name($crate::engine::Engine::Sqlite).await
            }
            #[$attr]
            async fn postgres() {
                super::$name($crate::engine::Engine::Postgres).await
            }
        }
    )+};
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name($crate::engine::Engine::Sqlite)
            }
            #[test]
            fn postgres() {
                super::$name($crate::engine::Engine::Postgres)
            }
        }
    )+};
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_runs_are_decoded() {
        let text = r#"(1,"\\x6869",\x4142)"#;
        assert_eq!(super::unhex_runs(text), b"hi\nAB\n");
    }
}
