//! `nudge migrate-db`: copies a whole store from SQLite to PostgreSQL. The
//! one place that knows both schemas (`runtime/migrations/sqlite/` after
//! its last migration, `runtime/migrations/postgres/0001_init.sql`).
//!
//! Both databases are migrated first. Each table is read from SQLite in
//! pages by primary key (rowid for the bundles); each page is ONE Postgres
//! transaction of one multi-row insert (`UNNEST` arrays) with `ON CONFLICT
//! DO NOTHING`, so an interrupted copy run again resumes: rows already
//! there are skipped (and counted as such), none is written twice. Ids of
//! identity columns are kept (`OVERRIDING SYSTEM VALUE`) and each sequence
//! moved past them. Postgres-only columns: `contacts.wake_lease` and
//! `outbox.lease` take their default 0, `outbox.channel` the payload's
//! `channel` (`channel_of`), counters their shard 0. The counters
//! (`flow_counts`, `totals`) are copied last and replaced whole in one
//! transaction, so a rerun never doubles them.
//!
//! At the end every table's rows are counted on both sides, and the
//! target's counters summed over shards compared with the source's; a
//! difference is [`CopyError::Mismatch`] naming the tables. The source must
//! not be written meanwhile (stop the daemon, or copy again after stopping
//! it: the copy converges).

use super::postgres::{PgStore, channel_of, redacted};
use super::sqlite::SqliteStore;
use super::{Store, StoreError};
use sqlx::postgres::PgPool;
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{AssertSqlSafe, Row};
use std::collections::BTreeMap;
use std::time::Instant;

/// Why a copy stopped; each keeps its cause, none carries a password.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// Not from `sqlite:` to `postgres:`.
    #[error("migrate-db copies from a SQLite store to a PostgreSQL one; {0}")]
    Direction(String),
    /// The source names no existing file (opening it would create one).
    #[error("the source `{0}` is not an existing SQLite file")]
    NoSource(String),
    #[error("cannot open the source: {0}")]
    Source(#[source] StoreError),
    #[error("cannot open the target: {0}")]
    Target(#[source] StoreError),
    #[error("cannot read `{table}` from the source: {source}")]
    Read {
        table: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot write `{table}` to the target: {source}")]
    Write {
        table: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The counts of these tables differ between source and target.
    #[error("the copy does not match the source: {}", .0.join("; "))]
    Mismatch(Vec<String>),
}

pub type Result<T> = std::result::Result<T, CopyError>;

/// How a copy runs.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Rows per page (and per target transaction).
    pub page: usize,
    /// Stop after this many pages in all (an interrupted copy, for tests);
    /// `None`: copy everything and verify.
    pub max_pages: Option<usize>,
}

impl Default for CopyOptions {
    fn default() -> CopyOptions {
        CopyOptions {
            page: 5000,
            max_pages: None,
        }
    }
}

/// What the copy did to one table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableReport {
    pub table: &'static str,
    /// Rows written to the target.
    pub copied: u64,
    /// Rows read but already in the target (a resumed copy).
    pub skipped: u64,
    pub seconds: f64,
}

/// What a copy did.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyReport {
    pub tables: Vec<TableReport>,
    /// Every table copied and verified (false: stopped at `max_pages`).
    pub complete: bool,
}

/// How a column's values are read from SQLite and bound for Postgres.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ty {
    Text,
    OptText,
    Int,
    OptInt,
    Bytes,
    Bool,
    /// Text holding an outbox payload, written as its channel.
    Channel,
}

impl Ty {
    fn pg_array(self) -> &'static str {
        match self {
            Ty::Text | Ty::OptText | Ty::Channel => "text[]",
            Ty::Int | Ty::OptInt => "bigint[]",
            Ty::Bytes => "bytea[]",
            Ty::Bool => "boolean[]",
        }
    }
}

/// One column: its Postgres name, the SQLite expression giving it, its type.
struct Col(&'static str, &'static str, Ty);

/// A table to copy. The first `key` columns are its primary key, by which
/// pages are read.
struct Table {
    name: &'static str,
    cols: &'static [Col],
    key: usize,
    /// The identity column whose sequence moves past the copied ids.
    identity: Option<&'static str>,
}

use Ty::*;

/// The tables of rows, in copy order.
const TABLES: &[Table] = &[
    Table {
        name: "contacts",
        cols: &[
            Col("id", "id", Text),
            Col("state", "CAST(state AS BLOB)", Bytes),
            Col("version", "version", Int),
            Col("next_wake", "next_wake", OptInt),
            Col("created_at", "created_at", Int),
            Col("updated_at", "updated_at", Int),
        ],
        key: 1,
        identity: None,
    },
    Table {
        name: "contact_keys",
        cols: &[
            Col("field", "field", Text),
            Col("value", "value", Text),
            Col("contact", "contact", Text),
        ],
        key: 2,
        identity: None,
    },
    Table {
        name: "events",
        cols: &[
            Col("seq", "seq", Int),
            Col("key", "key", OptText),
            Col("contact", "contact", Text),
            Col("name", "name", Text),
            Col("payload", "payload", Text),
            Col("received_at", "received_at", Int),
        ],
        key: 1,
        identity: Some("seq"),
    },
    Table {
        name: "outbox",
        cols: &[
            Col("id", "id", Int),
            Col("contact", "contact", Text),
            Col("flow", "flow", Text),
            Col("step", "step", Text),
            Col("kind", "kind", Text),
            Col("channel", "payload", Channel),
            Col("payload", "payload", Text),
            Col("idem_key", "idem_key", Text),
            Col("status", "status", Text),
            Col("attempts", "attempts", Int),
            Col("next_attempt_at", "next_attempt_at", Int),
            Col("last_error", "last_error", OptText),
            Col("created_at", "created_at", Int),
        ],
        key: 1,
        identity: Some("id"),
    },
    Table {
        name: "journal",
        cols: &[
            Col("seq", "seq", Int),
            Col("contact", "contact", Text),
            Col("lines", "lines", Text),
        ],
        key: 1,
        identity: Some("seq"),
    },
    Table {
        name: "bundles",
        cols: &[
            Col("seq", "rowid", Int),
            Col("hash", "hash", Text),
            Col("bytes", "bytes", Bytes),
            Col("deployed_at", "deployed_at", Int),
        ],
        key: 1,
        identity: Some("seq"),
    },
    Table {
        name: "flows",
        cols: &[Col("name", "name", Text), Col("paused", "paused", Bool)],
        key: 1,
        identity: None,
    },
    Table {
        name: "postbacks_held",
        cols: &[
            Col("id", "id", Int),
            Col("source", "source", Text),
            Col("key_field", "key_field", Text),
            Col("key_value", "key_value", Text),
            Col("params", "params", Text),
            Col("received_at", "received_at", Int),
            Col("until", "until", Int),
            Col("quarantined", "quarantined", OptText),
        ],
        key: 1,
        identity: Some("id"),
    },
    Table {
        name: "postbacks_rejected",
        cols: &[
            Col("id", "id", Int),
            Col("source", "source", Text),
            Col("params", "params", Text),
            Col("reason", "reason", Text),
            Col("at", "at", Int),
        ],
        key: 1,
        identity: Some("id"),
    },
    Table {
        name: "postback_keys",
        cols: &[
            Col("source", "source", Text),
            Col("key", "key", Text),
            Col("received_at", "received_at", Int),
            Col("until", "until", Int),
        ],
        key: 2,
        identity: None,
    },
    Table {
        name: "contacts_quarantined",
        cols: &[
            Col("contact", "contact", Text),
            Col("reason", "reason", Text),
            Col("at", "at", Int),
            Col("next_wake", "next_wake", OptInt),
        ],
        key: 1,
        identity: None,
    },
];

/// The counter tables, copied last: their key columns, then `n`; written
/// to shard 0.
const COUNTERS: &[(&str, &[&str])] = &[
    ("flow_counts", &["flow", "version", "status", "step"]),
    ("totals", &["name"]),
];

/// Copies the store at `from` (`sqlite:`) into the one at `to`
/// (`postgres:`), telling `progress` what it does.
pub async fn copy(
    from: &str,
    to: &str,
    o: &CopyOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<CopyReport> {
    let (src, dst) = open_both(from, to).await?;
    let mut pages_left = o.max_pages;
    let mut tables = Vec::new();
    for t in TABLES {
        let report = copy_table(
            src.reader(),
            dst.pool(),
            t,
            o.page,
            &mut pages_left,
            progress,
        )
        .await?;
        tables.push(report);
        if pages_left == Some(0) {
            progress("page limit reached: the copy stopped (run it again to resume)");
            return Ok(CopyReport {
                tables,
                complete: false,
            });
        }
    }
    for (name, keys) in COUNTERS {
        tables.push(copy_counters(src.reader(), dst.pool(), name, keys).await?);
        progress(&format!("{name}: replaced"));
    }
    verify(src.reader(), dst.pool()).await?;
    progress("verified: every table holds as many rows as the source");
    Ok(CopyReport {
        tables,
        complete: true,
    })
}

/// Both stores, migrated; anything but SQLite → Postgres refused.
async fn open_both(from: &str, to: &str) -> Result<(SqliteStore, PgStore)> {
    if !from.starts_with("sqlite:") {
        return Err(CopyError::Direction(format!(
            "the source `{}` is not a `sqlite://FILE` URL",
            redacted(from)
        )));
    }
    if !(to.starts_with("postgres:") || to.starts_with("postgresql:")) {
        return Err(CopyError::Direction(format!(
            "the target `{}` is not a `postgres://…` URL",
            redacted(to)
        )));
    }
    if !source_exists(from) {
        return Err(CopyError::NoSource(redacted(from)));
    }
    let src = SqliteStore::open(from).await.map_err(CopyError::Source)?;
    src.migrate().await.map_err(CopyError::Source)?;
    let dst = PgStore::open(to).await.map_err(CopyError::Target)?;
    dst.migrate().await.map_err(CopyError::Target)?;
    Ok((src, dst))
}

/// Whether a `sqlite:` URL names a file that exists (`:memory:` does not).
fn source_exists(url: &str) -> bool {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"));
    let path = path.and_then(|p| p.split('?').next()).unwrap_or("");
    !path.is_empty() && path != ":memory:" && std::path::Path::new(path).is_file()
}

/// One table, page by page; `pages_left` counts down to an interruption.
async fn copy_table(
    src: &SqlitePool,
    dst: &PgPool,
    t: &'static Table,
    page: usize,
    pages_left: &mut Option<usize>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<TableReport> {
    let started = Instant::now();
    let mut r = TableReport {
        table: t.name,
        copied: 0,
        skipped: 0,
        seconds: 0.0,
    };
    let mut after: Option<Vec<Key>> = None;
    while *pages_left != Some(0) {
        let rows = read_page(src, t, after.as_deref(), page).await?;
        if rows.is_empty() {
            break;
        }
        let cols = columns(t, &rows)?;
        let written = write_page(dst, t, cols).await?;
        let read = rows.len() as u64;
        r.copied += written;
        r.skipped += read.saturating_sub(written);
        after = Some(last_key(t, &rows)?);
        *pages_left = pages_left.map(|n| n.saturating_sub(1));
        progress(&format!(
            "{}: {} rows copied, {} already there",
            t.name, r.copied, r.skipped
        ));
        if rows.len() < page {
            break;
        }
    }
    move_sequence(dst, t).await?;
    r.seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        table = t.name,
        copied = r.copied,
        skipped = r.skipped,
        "table copied"
    );
    Ok(r)
}

/// A primary key value of the last row read.
#[derive(Debug, Clone)]
enum Key {
    Int(i64),
    Text(String),
}

fn read_error(table: &'static str) -> impl Fn(sqlx::Error) -> CopyError {
    move |source| CopyError::Read { table, source }
}

fn write_error(table: &'static str) -> impl Fn(sqlx::Error) -> CopyError {
    move |source| CopyError::Write { table, source }
}

/// The next page of `t` after the key `after`, in key order.
async fn read_page(
    src: &SqlitePool,
    t: &'static Table,
    after: Option<&[Key]>,
    page: usize,
) -> Result<Vec<SqliteRow>> {
    let select: Vec<&str> = t.cols.iter().map(|c| c.1).collect();
    let keys: Vec<&str> = t.cols.iter().take(t.key).map(|c| c.1).collect();
    let keys = keys.join(", ");
    let filter = match after {
        Some(k) => format!("WHERE ({keys}) > ({})", vec!["?"; k.len()].join(", ")),
        None => String::new(),
    };
    // every name comes from TABLES, never from input
    let sql = format!(
        "SELECT {} FROM {} {filter} ORDER BY {keys} LIMIT ?",
        select.join(", "),
        t.name
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for k in after.unwrap_or_default() {
        q = match k {
            Key::Int(v) => q.bind(*v),
            Key::Text(v) => q.bind(v.clone()),
        };
    }
    let limit = i64::try_from(page).unwrap_or(i64::MAX);
    q.bind(limit)
        .fetch_all(src)
        .await
        .map_err(read_error(t.name))
}

/// The key of the last row of a page.
fn last_key(t: &'static Table, rows: &[SqliteRow]) -> Result<Vec<Key>> {
    let Some(row) = rows.last() else {
        return Ok(Vec::new());
    };
    let get = |i: usize| -> std::result::Result<Key, sqlx::Error> {
        Ok(match t.cols.get(i).map(|c| c.2) {
            Some(Int) => Key::Int(row.try_get(i)?),
            _ => Key::Text(row.try_get(i)?),
        })
    };
    (0..t.key)
        .map(get)
        .collect::<std::result::Result<_, _>>()
        .map_err(read_error(t.name))
}

/// A page's values, column by column, for `UNNEST`.
enum Values {
    Text(Vec<String>),
    OptText(Vec<Option<String>>),
    Int(Vec<i64>),
    OptInt(Vec<Option<i64>>),
    Bytes(Vec<Vec<u8>>),
    Bool(Vec<bool>),
}

fn columns(t: &'static Table, rows: &[SqliteRow]) -> Result<Vec<Values>> {
    let column = |(i, c): (usize, &Col)| -> std::result::Result<Values, sqlx::Error> {
        fn all<T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>>(
            rows: &[SqliteRow],
            i: usize,
        ) -> std::result::Result<Vec<T>, sqlx::Error> {
            rows.iter().map(|r| r.try_get(i)).collect()
        }
        Ok(match c.2 {
            Text => Values::Text(all(rows, i)?),
            OptText => Values::OptText(all(rows, i)?),
            Int => Values::Int(all(rows, i)?),
            OptInt => Values::OptInt(all(rows, i)?),
            Bytes => Values::Bytes(all(rows, i)?),
            Bool => Values::Bool(all(rows, i)?),
            Channel => Values::Text(
                all::<String>(rows, i)?
                    .iter()
                    .map(|p| channel_of(p))
                    .collect(),
            ),
        })
    };
    t.cols
        .iter()
        .enumerate()
        .map(column)
        .collect::<std::result::Result<_, _>>()
        .map_err(read_error(t.name))
}

/// One page into the target, in one transaction; gives the rows written.
async fn write_page(dst: &PgPool, t: &'static Table, cols: Vec<Values>) -> Result<u64> {
    let names: Vec<&str> = t.cols.iter().map(|c| c.0).collect();
    let arrays: Vec<String> = t
        .cols
        .iter()
        .enumerate()
        .map(|(i, c)| format!("${}::{}", i + 1, c.2.pg_array()))
        .collect();
    let overriding = if t.identity.is_some() {
        "OVERRIDING SYSTEM VALUE"
    } else {
        ""
    };
    // every name comes from TABLES, never from input
    let sql = format!(
        "INSERT INTO {} ({}) {overriding} SELECT * FROM UNNEST({}) ON CONFLICT DO NOTHING",
        t.name,
        names.join(", "),
        arrays.join(", ")
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for v in cols {
        q = match v {
            Values::Text(v) => q.bind(v),
            Values::OptText(v) => q.bind(v),
            Values::Int(v) => q.bind(v),
            Values::OptInt(v) => q.bind(v),
            Values::Bytes(v) => q.bind(v),
            Values::Bool(v) => q.bind(v),
        };
    }
    let mut tx = dst.begin().await.map_err(write_error(t.name))?;
    let done = q.execute(&mut *tx).await.map_err(write_error(t.name))?;
    tx.commit().await.map_err(write_error(t.name))?;
    Ok(done.rows_affected())
}

/// Moves the identity sequence of `t` past its largest id, so the
/// daemon's next row takes a new one.
async fn move_sequence(dst: &PgPool, t: &'static Table) -> Result<()> {
    let Some(col) = t.identity else { return Ok(()) };
    let sql = format!(
        "SELECT setval(pg_get_serial_sequence('{0}', '{col}'), \
         COALESCE((SELECT max({col}) FROM {0}), 0) + 1, false)",
        t.name
    );
    sqlx::query(AssertSqlSafe(sql))
        .execute(dst)
        .await
        .map_err(write_error(t.name))?;
    Ok(())
}

/// A counter table read whole: its key columns → `n` (summed over shards).
type Counts = BTreeMap<Vec<String>, i64>;

fn counts_sql(name: &str, keys: &[&str]) -> String {
    let keys = keys.join(", ");
    format!("SELECT {keys}, CAST(sum(n) AS BIGINT) FROM {name} GROUP BY {keys}")
}

fn to_counts<R: Row>(rows: &[R], keys: usize) -> std::result::Result<Counts, sqlx::Error>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    let mut out = Counts::new();
    for r in rows {
        let key = (0..keys)
            .map(|i| r.try_get(i))
            .collect::<std::result::Result<Vec<String>, _>>()?;
        out.insert(key, r.try_get(keys)?);
    }
    Ok(out)
}

async fn source_counts(src: &SqlitePool, name: &'static str, keys: &[&str]) -> Result<Counts> {
    let rows = sqlx::query(AssertSqlSafe(counts_sql(name, keys)))
        .fetch_all(src)
        .await
        .map_err(read_error(name))?;
    to_counts(&rows, keys.len()).map_err(read_error(name))
}

async fn target_counts(dst: &PgPool, name: &'static str, keys: &[&str]) -> Result<Counts> {
    let rows = sqlx::query(AssertSqlSafe(counts_sql(name, keys)))
        .fetch_all(dst)
        .await
        .map_err(write_error(name))?;
    to_counts(&rows, keys.len()).map_err(write_error(name))
}

/// A counter table replaced whole (delete + insert in one transaction),
/// every row in shard 0.
async fn copy_counters(
    src: &SqlitePool,
    dst: &PgPool,
    name: &'static str,
    keys: &[&str],
) -> Result<TableReport> {
    let started = Instant::now();
    let counts = source_counts(src, name, keys).await?;
    let arrays: Vec<String> = (1..=keys.len() + 1)
        .map(|i| {
            format!(
                "${i}::{}",
                if i > keys.len() { "bigint[]" } else { "text[]" }
            )
        })
        .collect();
    // names come from COUNTERS, never from input
    let insert = format!(
        "INSERT INTO {name} ({}, n, shard) SELECT *, 0 FROM UNNEST({})",
        keys.join(", "),
        arrays.join(", ")
    );
    let mut q = sqlx::query(AssertSqlSafe(insert));
    for i in 0..keys.len() {
        q = q.bind(
            counts
                .keys()
                .map(|k| k.get(i).cloned().unwrap_or_default())
                .collect::<Vec<_>>(),
        );
    }
    q = q.bind(counts.values().copied().collect::<Vec<i64>>());
    let mut tx = dst.begin().await.map_err(write_error(name))?;
    let delete = format!("DELETE FROM {name}");
    sqlx::query(AssertSqlSafe(delete))
        .execute(&mut *tx)
        .await
        .map_err(write_error(name))?;
    let done = q.execute(&mut *tx).await.map_err(write_error(name))?;
    tx.commit().await.map_err(write_error(name))?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(TableReport {
        table: name,
        copied: done.rows_affected(),
        skipped: 0,
        seconds,
    })
}

/// Rows per table and counters on both sides; every difference named.
async fn verify(src: &SqlitePool, dst: &PgPool) -> Result<()> {
    let mut wrong = Vec::new();
    for t in TABLES {
        let sql = format!("SELECT count(*) FROM {}", t.name);
        let s: i64 = sqlx::query_scalar(AssertSqlSafe(sql.clone()))
            .fetch_one(src)
            .await
            .map_err(read_error(t.name))?;
        let d: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_one(dst)
            .await
            .map_err(write_error(t.name))?;
        if s != d {
            wrong.push(format!(
                "`{}`: {s} rows in the source, {d} in the target",
                t.name
            ));
        }
    }
    for (name, keys) in COUNTERS {
        let s = source_counts(src, name, keys).await?;
        let d = target_counts(dst, name, keys).await?;
        if s != d {
            let (ss, ds): (i64, i64) = (s.values().sum(), d.values().sum());
            wrong.push(format!(
                "`{name}`: counters sum to {ss} in the source, {ds} in the target"
            ));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(CopyError::Mismatch(wrong))
    }
}
