//! The group commit of [`SqliteStore`](super::SqliteStore). Takes a
//! [`Commit`] and a connection inside a `BEGIN IMMEDIATE` transaction; writes
//! the whole group or returns an error, and the caller rolls back, so a
//! refused commit leaves nothing behind.
//!
//! Speed: the checks are folded into the writes instead of read first. A
//! stored contact is written by an `UPDATE … WHERE version = expected` whose
//! changed-row count proves every version; a new one by an `INSERT` that the
//! primary key refuses if it exists; an event key by the `UNIQUE` index, a
//! postback's `dedupe` value by the primary key of `postback_keys`, a
//! unique key owned by another contact by the primary key of
//! `contact_keys`.
//! Only a refused commit reads again, to name the culprit. Unique keys and
//! the flow counters are written as differences from what the caller read
//! ([`Loaded`]), so a timer that moves one enrollment writes its contact row,
//! its journal and outbox rows, and a few counter rows per group. Rows go
//! in as multi-row statements of a few fixed sizes (see [`chunk_sizes`]) so
//! the prepared-statement cache holds them.

use super::{db, json_text};
use crate::store::doc;
use crate::store::rows::{
    Write, chain, count_deltas, event_keys, journal_rows, key_moves, kind_name,
};
use crate::store::{Commit, Loaded, Result, StoreError};
use sqlx::query::Query;
use sqlx::sqlite::{Sqlite, SqliteArguments, SqliteConnection};
use sqlx::{AssertSqlSafe, Row};
use std::collections::HashMap;

type SqliteQuery = Query<'static, Sqlite, SqliteArguments>;

/// Rows per multi-row statement (at most 8 columns: 1 024 parameters).
const CHUNK: usize = 128;

/// Apply one commit; `now` stamps the bookkeeping columns (`created_at`,
/// `updated_at`).
pub(super) async fn apply(conn: &mut SqliteConnection, c: &Commit, now: i64) -> Result<()> {
    let writes = chain(&c.contacts)?;
    let event_keys = event_keys(c)?;
    let read = read_loaded(conn, &writes).await?;
    let olds: Vec<Option<&Loaded>> = writes
        .iter()
        .map(|w| w.loaded.or_else(|| read.get(w.w.state.contact.id.as_str())))
        .collect();
    write_contacts(conn, &writes, now).await?;
    write_keys(conn, &writes, &olds).await?;
    write_counts(conn, &writes, &olds).await?;
    if let Err(e) = insert_rows(
        conn,
        "INSERT INTO events (key, contact, name, payload, received_at) VALUES ",
        "(?, ?, ?, ?, ?)",
        "",
        c.events.iter().collect(),
        |q, e| {
            q.bind(e.key.clone())
                .bind(e.contact.clone())
                .bind(e.name.clone())
                .bind(e.payload.to_string())
                .bind(e.received_at)
        },
    )
    .await
    {
        return Err(match e {
            StoreError::Conflict(_) => seen_key(conn, &event_keys).await,
            e => e,
        });
    }
    insert_rows(
        conn,
        "INSERT INTO outbox (contact, flow, step, kind, payload, idem_key, status, attempts, \
         next_attempt_at, created_at) VALUES ",
        "(?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
        " ON CONFLICT (idem_key) DO NOTHING",
        c.outbox.iter().collect(),
        |q, o| {
            q.bind(o.contact.clone())
                .bind(o.flow.clone())
                .bind(o.step.clone())
                .bind(kind_name(o.kind))
                .bind(o.payload.as_str().to_string())
                .bind(o.idem_key.clone())
                .bind(o.not_before)
                .bind(now)
        },
    )
    .await?;
    insert_rows(
        conn,
        "INSERT INTO journal (contact, lines) VALUES ",
        "(?, ?)",
        "",
        journal_rows(c)?,
        |q, (contact, lines)| q.bind(contact.to_string()).bind(lines),
    )
    .await?;
    write_postbacks(conn, c).await?;
    write_postback_keys(conn, c).await?;
    write_acks(conn, c).await?;
    write_totals(conn, &writes, c).await
}

/// The outbox acks settled with the commit (call rows with their
/// responses), fenced: a lost lease refuses the commit.
async fn write_acks(conn: &mut SqliteConnection, c: &Commit) -> Result<()> {
    if c.acks.is_empty() {
        return Ok(());
    }
    let lost = super::outbox::apply_acks(conn, &c.acks).await?;
    crate::store::rows::leases_kept(&lost)
}

/// The postbacks' `dedupe` values, by the primary key: one recorded before
/// (or twice in this commit) refuses the commit.
async fn write_postback_keys(conn: &mut SqliteConnection, c: &Commit) -> Result<()> {
    let done = insert_rows(
        conn,
        "INSERT INTO postback_keys (source, key, received_at, until) VALUES ",
        "(?, ?, ?, ?)",
        "",
        c.postback_keys.iter().collect(),
        |q, k| {
            q.bind(k.source.clone())
                .bind(k.key.clone())
                .bind(k.received_at)
                .bind(k.until)
        },
    )
    .await;
    match done {
        Ok(_) => Ok(()),
        Err(StoreError::Conflict(_)) => Err(StoreError::Conflict(
            "a postback's `dedupe` value was recorded before".into(),
        )),
        Err(e) => Err(e),
    }
}

/// Moves the running totals by the contacts and events the commit adds.
async fn write_totals(conn: &mut SqliteConnection, writes: &[Write<'_>], c: &Commit) -> Result<()> {
    let contacts = crate::store::rows::new_contacts(writes);
    if contacts == 0 && c.events.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE totals SET n = n + CASE name WHEN 'contacts' THEN ? ELSE ? END \
         WHERE name IN ('contacts', 'events')",
    )
    .bind(contacts)
    .bind(i64::try_from(c.events.len()).unwrap_or(i64::MAX))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// After the `UNIQUE` index refused an event: which key was recorded before
/// (or why that cannot be read).
async fn seen_key(conn: &mut SqliteConnection, keys: &[&str]) -> StoreError {
    let keys = match json_text(keys) {
        Ok(k) => k,
        Err(e) => return e,
    };
    let seen: std::result::Result<Option<(String,)>, _> =
        sqlx::query_as("SELECT e.key FROM json_each(?) j JOIN events e ON e.key = j.value LIMIT 1")
            .bind(keys)
            .fetch_optional(&mut *conn)
            .await;
    match seen {
        Ok(Some((key,))) => StoreError::Conflict(format!("event key `{key}` was recorded before")),
        Ok(None) => StoreError::Conflict("an event key was recorded before".into()),
        Err(e) => db(e),
    }
}

/// For stored contacts written without [`Loaded`]: their stored keys and
/// enrollment places, read from the database.
async fn read_loaded(
    conn: &mut SqliteConnection,
    writes: &[Write<'_>],
) -> Result<HashMap<String, Loaded>> {
    let ids: Vec<&str> = writes
        .iter()
        .filter(|w| w.expected.is_some() && w.loaded.is_none())
        .map(|w| w.w.state.contact.id.as_str())
        .collect();
    let mut out: HashMap<String, Loaded> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let ids = json_text(&ids)?;
    let states: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT c.id, CAST(c.state AS BLOB) FROM json_each(?) j \
         JOIN contacts c ON c.id = j.value",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    for (id, state) in states {
        let st = doc::decode(&id, &state)?;
        out.insert(id, Loaded::of(&st, Vec::new()));
    }
    let keys = sqlx::query(
        "SELECT k.contact, k.field, k.value FROM json_each(?) j \
         JOIN contact_keys k ON k.contact = j.value",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    for r in keys {
        let id: String = r.try_get(0).map_err(db)?;
        if let Some(l) = out.get_mut(&id) {
            l.keys
                .push((r.try_get(1).map_err(db)?, r.try_get(2).map_err(db)?));
        }
    }
    Ok(out)
}

/// Inserts the new contacts and updates the stored ones where their version
/// is still the expected one; any other case is a conflict, named.
async fn write_contacts(conn: &mut SqliteConnection, writes: &[Write<'_>], now: i64) -> Result<()> {
    let mut fresh = Vec::new();
    let mut stored = Vec::new();
    for w in writes {
        let row = (w, doc::encode(&w.w.state)?);
        match w.expected {
            None => fresh.push(row),
            Some(_) => stored.push(row),
        }
    }
    let inserted = put_contacts(conn, fresh, "", now, |_| now).await;
    if let Err(StoreError::Conflict(_)) = inserted {
        return Err(name_conflict(conn, writes, true).await);
    }
    inserted?;
    // Stored contacts: an upsert whose update applies only at the expected
    // version, which rides in `created_at` as `-1 - expected` (a real
    // `created_at` is never negative). A row whose version moved is left
    // alone, so the count of rows changed falls short; a contact that is
    // gone is inserted with that negative `created_at`, which the
    // `contacts_gone` index finds.
    let want = stored.len() as u64;
    let applied = put_contacts(
        conn,
        stored,
        " ON CONFLICT (id) DO UPDATE SET state = excluded.state, \
         version = excluded.version, next_wake = excluded.next_wake, \
         updated_at = excluded.updated_at \
         WHERE contacts.version = -1 - excluded.created_at",
        now,
        // only stored contacts are here: each has an expected version
        |w| w.expected.map_or(0, |e| -1 - e),
    )
    .await?;
    if want > 0 {
        let gone: Option<(String,)> =
            sqlx::query_as("SELECT id FROM contacts WHERE created_at < 0 LIMIT 1")
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?;
        if let Some((id,)) = gone {
            return Err(StoreError::Conflict(format!(
                "contact `{id}` does not exist"
            )));
        }
    }
    if applied != want {
        return Err(name_conflict(conn, writes, false).await);
    }
    Ok(())
}

/// Inserts contact rows (`tail` may turn them into upserts); `created_at`
/// gives the column's value for a write.
async fn put_contacts(
    conn: &mut SqliteConnection,
    rows: Vec<(&Write<'_>, Vec<u8>)>,
    tail: &str,
    now: i64,
    created_at: impl Fn(&Write<'_>) -> i64,
) -> Result<u64> {
    insert_rows(
        conn,
        "INSERT INTO contacts (id, state, version, next_wake, created_at, updated_at) VALUES ",
        "(?, ?, ?, ?, ?, ?)",
        tail,
        rows,
        |q, (w, state)| {
            q.bind(w.w.state.contact.id.clone())
                .bind(state)
                .bind(w.version)
                .bind(w.w.next_wake)
                .bind(created_at(w))
                .bind(now)
        },
    )
    .await
}

/// After a refused contact write: the first contact whose stored version is
/// not what its write expected (`fresh`: among the new contacts), or why
/// the stored versions cannot be read.
async fn name_conflict(
    conn: &mut SqliteConnection,
    writes: &[Write<'_>],
    fresh: bool,
) -> StoreError {
    let ids: Vec<&str> = writes
        .iter()
        .filter(|w| w.expected.is_none() == fresh)
        .map(|w| w.w.state.contact.id.as_str())
        .collect();
    let ids = match json_text(&ids) {
        Ok(ids) => ids,
        Err(e) => return e,
    };
    let stored: std::result::Result<Vec<(String, i64)>, _> = sqlx::query_as(
        "SELECT c.id, c.version FROM json_each(?) j JOIN contacts c ON c.id = j.value",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await;
    let stored: HashMap<String, i64> = match stored {
        Ok(rows) => rows.into_iter().collect(),
        Err(e) => return db(e),
    };
    for w in writes.iter().filter(|w| w.expected.is_none() == fresh) {
        let id = w.w.state.contact.id.as_str();
        let now = stored.get(id).copied();
        match (w.expected, now) {
            (None, Some(_)) => {
                return StoreError::Conflict(format!("contact `{id}` already exists"));
            }
            (Some(_), None) => {
                return StoreError::Conflict(format!("contact `{id}` does not exist"));
            }
            // updated rows show the version written
            (Some(e), Some(v)) if v != w.version => {
                return StoreError::Conflict(format!(
                    "contact `{id}` changed since it was read (version {e}, now {v})"
                ));
            }
            _ => {}
        }
    }
    StoreError::Conflict("a contact changed since it was read".into())
}

/// Moves the unique keys that changed: a key owned by a contact outside
/// the commit, or claimed by two contacts of it, is a conflict.
async fn write_keys(
    conn: &mut SqliteConnection,
    writes: &[Write<'_>],
    olds: &[Option<&Loaded>],
) -> Result<()> {
    let moves = key_moves(writes, olds)?;
    let (gone, added) = (moves.gone, moves.added);
    // deleted first: a key may move between two contacts of the commit
    if !gone.is_empty() {
        sqlx::query(
            "DELETE FROM contact_keys WHERE (field, value) IN \
             (SELECT j.value ->> 0, j.value ->> 1 FROM json_each(?) j)",
        )
        .bind(json_text(&gone)?)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    let inserted = insert_rows(
        conn,
        "INSERT INTO contact_keys (field, value, contact) VALUES ",
        "(?, ?, ?)",
        "",
        added.clone(),
        |q, [f, v, c]| {
            q.bind(f.to_string())
                .bind(v.to_string())
                .bind(c.to_string())
        },
    )
    .await;
    match inserted {
        Err(StoreError::Conflict(_)) => Err(key_owner(conn, &added).await),
        done => done.map(drop),
    }
}

/// After the primary key of `contact_keys` refused a key: the contact
/// owning it before (the rows this commit inserted before the refused
/// statement are the claimant's own), or why that cannot be read.
async fn key_owner(conn: &mut SqliteConnection, added: &[[&str; 3]]) -> StoreError {
    let added = match json_text(added) {
        Ok(a) => a,
        Err(e) => return e,
    };
    let taken: std::result::Result<Option<(String, String, String)>, _> = sqlx::query_as(
        "SELECT k.field, k.value, k.contact FROM json_each(?) j \
         JOIN contact_keys k ON k.field = j.value ->> 0 AND k.value = j.value ->> 1 \
         WHERE k.contact <> j.value ->> 2 LIMIT 1",
    )
    .bind(added)
    .fetch_optional(&mut *conn)
    .await;
    taken.map_or_else(db, crate::store::rows::key_taken)
}

/// Adds what the commit moved to the flow counters: each stored
/// enrollment's old place −1, each written one +1.
async fn write_counts(
    conn: &mut SqliteConnection,
    writes: &[Write<'_>],
    olds: &[Option<&Loaded>],
) -> Result<()> {
    let rows = count_deltas(writes, olds);
    insert_rows(
        conn,
        "INSERT INTO flow_counts (flow, version, status, step, n) VALUES ",
        "(?, ?, ?, ?, ?)",
        " ON CONFLICT (flow, version, status, step) DO UPDATE SET n = n + excluded.n",
        rows,
        |q, (k, n)| {
            q.bind(k.flow.to_string())
                .bind(k.version.to_string())
                .bind(k.status)
                .bind(k.step.to_string())
                .bind(n)
        },
    )
    .await
    .map(drop)
}

async fn write_postbacks(conn: &mut SqliteConnection, c: &Commit) -> Result<()> {
    if !c.released.is_empty() {
        sqlx::query("DELETE FROM postbacks_held WHERE id IN (SELECT value FROM json_each(?))")
            .bind(json_text(&c.released)?)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    let held = c
        .held
        .iter()
        .map(|h| Ok((h, json_text(&h.params)?)))
        .collect::<Result<Vec<_>>>()?;
    insert_rows(
        conn,
        "INSERT INTO postbacks_held (source, key_field, key_value, params, received_at, until) \
         VALUES ",
        "(?, ?, ?, ?, ?, ?)",
        "",
        held,
        |q, (h, params)| {
            q.bind(h.source.clone())
                .bind(h.key_field.clone())
                .bind(h.key_value.clone())
                .bind(params)
                .bind(h.received_at)
                .bind(h.until)
        },
    )
    .await?;
    let rejected = c
        .rejected
        .iter()
        .map(|r| Ok((r, json_text(&r.1)?)))
        .collect::<Result<Vec<_>>>()?;
    insert_rows(
        conn,
        "INSERT INTO postbacks_rejected (source, params, reason, at) VALUES ",
        "(?, ?, ?, ?)",
        "",
        rejected,
        |q, ((source, _, reason, at), params)| {
            q.bind(source.clone())
                .bind(params)
                .bind(reason.clone())
                .bind(*at)
        },
    )
    .await
    .map(drop)
}

/// How a batch of `n` rows is split: full chunks of [`CHUNK`], then the
/// rest in falling powers of two, so that at most 8 statement shapes exist
/// per table.
pub(super) fn chunk_sizes(n: usize) -> Vec<usize> {
    let mut out = vec![CHUNK; n / CHUNK];
    let mut rest = n % CHUNK;
    let mut size = CHUNK / 2;
    while rest > 0 {
        if rest >= size {
            out.push(size);
            rest -= size;
        }
        size /= 2;
    }
    out
}

/// `head (row), (row) … tail` with `n` rows.
fn statement(head: &str, row: &str, tail: &str, n: usize) -> String {
    let mut sql = String::with_capacity(head.len() + (row.len() + 2) * n + tail.len());
    sql.push_str(head);
    for i in 0..n {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(row);
    }
    sql.push_str(tail);
    sql
}

/// Runs `head (row), (row) … tail` statements over `items`, a chunk at a
/// time; returns the rows changed.
async fn insert_rows<T>(
    conn: &mut SqliteConnection,
    head: &str,
    row: &str,
    tail: &str,
    items: Vec<T>,
    bind: impl Fn(SqliteQuery, T) -> SqliteQuery,
) -> Result<u64> {
    let mut items = items.into_iter();
    let mut changed = 0;
    for n in chunk_sizes(items.len()) {
        let mut q: SqliteQuery = sqlx::query(AssertSqlSafe(statement(head, row, tail, n)));
        for item in items.by_ref().take(n) {
            q = bind(q, item);
        }
        changed += q.execute(&mut *conn).await.map_err(db)?.rows_affected();
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_batch_with_few_shapes() {
        for n in 0..700 {
            let sizes = chunk_sizes(n);
            assert_eq!(sizes.iter().sum::<usize>(), n);
            assert!(sizes.iter().all(|s| s.is_power_of_two() && *s <= CHUNK));
        }
        assert_eq!(chunk_sizes(500), vec![128, 128, 128, 64, 32, 16, 4]);
    }
}
