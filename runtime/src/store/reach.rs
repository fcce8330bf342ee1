//! Opening a database server that may not be up yet: [`open_once`] tries
//! [`super::open`] once and tells a failure that waiting can mend from one
//! it cannot; [`open_waiting`] then retries with backoff while the failure is one that time
//! can mend (the server is down, starting, restarting, out of
//! connections), logs one line per attempt naming the database without its
//! credentials ([`shown_url`]), and fails at once on what never mends (a
//! URL that does not parse, an unknown scheme, refused credentials, a
//! database that does not exist). A SQLite file is opened once: a file is
//! there or not.

use super::postgres::PgOptions;
use super::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// The first pause between attempts; doubled each time up to [`MAX_PAUSE`].
pub const FIRST_PAUSE: Duration = Duration::from_millis(250);
/// The longest pause between attempts.
pub const MAX_PAUSE: Duration = Duration::from_secs(4);

/// What one attempt gave.
pub enum Opened {
    Ready(Arc<dyn Store>),
    /// A failure that waiting can mend: the server is away or busy.
    Later(StoreError),
}

/// One attempt at opening (and migrating) the database at `url` with the
/// Postgres settings `pg`; an error is a failure that waiting cannot mend.
pub async fn open_once(url: &str, pg: &PgOptions) -> super::Result<Opened> {
    match super::open_with(url, pg).await {
        Ok(store) => Ok(Opened::Ready(store)),
        Err(e) if !url.starts_with("sqlite:") && is_transient(&e) => Ok(Opened::Later(e)),
        Err(e) => Err(e),
    }
}

/// After `first` failed: waits and tries again as long as it takes while
/// the server cannot be reached; every failed attempt (`first` too) is a
/// `warn` line with the attempt number, the next pause and the cause.
pub async fn open_waiting(
    url: &str,
    pg: &PgOptions,
    first: StoreError,
) -> super::Result<Arc<dyn Store>> {
    let mut pause = FIRST_PAUSE;
    let (mut attempt, mut failed) = (1u32, first);
    loop {
        tracing::warn!(
            database = %shown_url(url),
            attempt,
            retry_in_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
            cause = %cause(&failed),
            "the database cannot be reached yet; trying again"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
        attempt += 1;
        failed = match open_once(url, pg).await? {
            Opened::Ready(store) => return Ok(store),
            Opened::Later(e) => e,
        };
    }
}

/// Whether waiting can mend `e`: the server is away or busy, not the URL
/// or the credentials wrong.
pub fn is_transient(e: &StoreError) -> bool {
    match e {
        StoreError::Open { source, .. } | StoreError::Db(source) => transient_sqlx(source),
        StoreError::Migrate(sqlx::migrate::MigrateError::Execute(source)) => transient_sqlx(source),
        _ => false,
    }
}

fn transient_sqlx(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| transient_code(&c)),
        _ => false,
    }
}

/// SQLSTATEs of a server that is away for a while: connection exceptions
/// (class 08), too many connections, and the shutdown and start-up codes
/// (`57P01` admin shutdown, `57P02` crash shutdown, `57P03` cannot connect
/// now). Class 28 (credentials) and `3D000` (no such database) are not.
fn transient_code(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "53300" | "57P01" | "57P02" | "57P03")
}

/// What went wrong, without the URL an [`StoreError::Open`] names (it may
/// hold a password).
pub fn cause(e: &StoreError) -> String {
    match e {
        StoreError::Open { source, .. } => source.to_string(),
        e => e.to_string(),
    }
}

/// A database URL fit for a log line: scheme, host, port and database; no
/// user, password or query.
pub fn shown_url(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or("");
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            format!("{scheme}://{host}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: std::io::ErrorKind) -> StoreError {
        StoreError::Open {
            url: "postgres://u:secret@h/db".into(),
            source: sqlx::Error::Io(std::io::Error::from(kind)),
        }
    }

    #[test]
    fn a_server_away_is_waited_for_and_a_bad_url_is_not() {
        assert!(is_transient(&io(std::io::ErrorKind::ConnectionRefused)));
        assert!(is_transient(&StoreError::Db(sqlx::Error::PoolTimedOut)));
        assert!(!is_transient(&StoreError::Unsupported("ftp://x".into())));
        assert!(!is_transient(&StoreError::Open {
            url: "postgres://".into(),
            source: sqlx::Error::Configuration("bad".into()),
        }));
        assert!(transient_code("57P03") && transient_code("08006"));
        assert!(!transient_code("28P01") && !transient_code("3D000"));
    }

    #[test]
    fn the_cause_and_the_shown_url_carry_no_password() {
        let e = io(std::io::ErrorKind::ConnectionRefused);
        assert!(!cause(&e).contains("secret"), "{}", cause(&e));
        assert_eq!(
            shown_url("postgres://nudge:s3cret@db.internal:5432/nudge?password=x"),
            "postgres://db.internal:5432/nudge"
        );
        assert_eq!(
            shown_url("sqlite:///var/nudge.db?mode=rwc"),
            "sqlite:///var/nudge.db"
        );
        assert_eq!(shown_url("nudge.db"), "nudge.db");
    }

    #[tokio::test]
    async fn a_url_that_can_never_work_fails_at_once() {
        let e = open_once("mysql://u:pw@h/db", &PgOptions::default())
            .await
            .err();
        assert!(matches!(e, Some(StoreError::Unsupported(_))), "{e:?}");
        let dir = std::env::temp_dir().join("nudge-reach-no-such-dir/x/nudge.db");
        let e = open_once(
            &format!("sqlite://{}", dir.display()),
            &PgOptions::default(),
        )
        .await
        .err();
        assert!(
            e.is_some(),
            "a SQLite file in a missing directory is not waited for"
        );
    }
}
