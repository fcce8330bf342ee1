//! The group commit of [`SqliteStore`](super::SqliteStore). Takes a
//! [`Commit`] and a connection inside a `BEGIN IMMEDIATE` transaction; writes
//! the whole group or returns an error, and the caller rolls back.
//!
//! Guarantees: every check (contact versions, unique keys, event keys) runs
//! before the first row is written, so a refused commit touched nothing even
//! inside its transaction; rows go in as multi-row statements of a few fixed
//! sizes (see [`chunk_sizes`]) so the prepared-statement cache holds them;
//! enrollment rows and unique keys are rewritten only where they changed.

use super::{db, json_text};
use crate::engine::ContactState;
use crate::store::{Commit, ContactWrite, OutboxKind, Result, StoreError};
use sqlx::query::Query;
use sqlx::sqlite::{Sqlite, SqliteArguments, SqliteConnection};
use sqlx::{AssertSqlSafe, Row};
use std::collections::{HashMap, HashSet};

type SqliteQuery = Query<'static, Sqlite, SqliteArguments>;

/// Rows per multi-row statement (at most 8 columns: 1 024 parameters).
const CHUNK: usize = 128;

/// Apply one commit; `now` stamps the bookkeeping columns (`created_at`,
/// `updated_at`).
pub(super) async fn apply(conn: &mut SqliteConnection, c: Commit, now: i64) -> Result<()> {
    let writes = check_versions(conn, &c.contacts).await?;
    check_event_keys(conn, &c).await?;
    write_keys(conn, &writes).await?;
    write_contacts(conn, &writes, now).await?;
    write_enrollments(conn, &writes).await?;
    insert_rows(
        conn,
        "INSERT INTO events (key, contact, name, payload, received_at) VALUES ",
        "(?, ?, ?, ?, ?)",
        "",
        &c.events,
        |q, e| {
            q.bind(e.key.as_deref())
                .bind(e.contact.as_str())
                .bind(e.name.as_str())
                .bind(e.payload.to_string())
                .bind(e.received_at)
        },
    )
    .await?;
    insert_rows(
        conn,
        "INSERT INTO outbox (contact, flow, step, kind, payload, idem_key, status, attempts, \
         next_attempt_at, created_at) VALUES ",
        "(?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
        " ON CONFLICT (idem_key) DO NOTHING",
        &c.outbox,
        |q, o| {
            q.bind(o.contact.as_str())
                .bind(o.flow.as_str())
                .bind(o.step.as_str())
                .bind(kind_name(o.kind))
                .bind(o.payload.to_string())
                .bind(o.idem_key.as_str())
                .bind(o.not_before)
                .bind(now)
        },
    )
    .await?;
    insert_rows(
        conn,
        "INSERT INTO journal (contact, at, flow, step, what) VALUES ",
        "(?, ?, ?, ?, ?)",
        "",
        &c.journal,
        |q, (contact, line)| {
            q.bind(contact.as_str())
                .bind(line.at)
                .bind(line.flow.as_str())
                .bind(line.step.as_str())
                .bind(line.what.as_str())
        },
    )
    .await?;
    write_postbacks(conn, &c).await
}

/// The stored name of an outbox kind.
pub(super) fn kind_name(kind: OutboxKind) -> &'static str {
    match kind {
        OutboxKind::Message => "message",
        OutboxKind::Call => "call",
    }
}

/// The last write of each contact, with the version it gets.
struct Write<'c> {
    w: &'c ContactWrite,
    version: i64,
    existed: bool,
}

/// Checks every write against the stored versions (a contact may appear
/// more than once: each write must expect the version the previous one
/// left); returns the last write of each contact, in first-seen order.
async fn check_versions<'c>(
    conn: &mut SqliteConnection,
    contacts: &'c [ContactWrite],
) -> Result<Vec<Write<'c>>> {
    if contacts.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = contacts
        .iter()
        .map(|w| w.state.contact.id.as_str())
        .collect();
    let stored: Vec<(String, i64)> = sqlx::query_as(
        "SELECT c.id, c.version FROM json_each(?) j JOIN contacts c ON c.id = j.value",
    )
    .bind(json_text(&ids)?)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let stored: HashMap<String, i64> = stored.into_iter().collect();
    let mut current: HashMap<&str, usize> = HashMap::new();
    let mut out: Vec<Write<'c>> = Vec::new();
    for w in contacts {
        let id = w.state.contact.id.as_str();
        let (version, existed) = match current.get(id) {
            Some(&i) => (Some(out[i].version), out[i].existed),
            None => (stored.get(id).copied(), stored.contains_key(id)),
        };
        let next = match (w.expected_version, version) {
            (None, None) => 1,
            (Some(e), Some(v)) if e == v => v + 1,
            (None, Some(_)) => {
                return Err(StoreError::Conflict(format!(
                    "contact `{id}` already exists"
                )));
            }
            (Some(_), None) => {
                return Err(StoreError::Conflict(format!(
                    "contact `{id}` does not exist"
                )));
            }
            (Some(e), Some(v)) => {
                return Err(StoreError::Conflict(format!(
                    "contact `{id}` changed since it was read (version {e}, now {v})"
                )));
            }
        };
        let write = Write {
            w,
            version: next,
            existed,
        };
        match current.get(id) {
            Some(&i) => out[i] = write,
            None => {
                current.insert(id, out.len());
                out.push(write);
            }
        }
    }
    Ok(out)
}

/// Refuses event keys given twice in the commit or recorded before.
async fn check_event_keys(conn: &mut SqliteConnection, c: &Commit) -> Result<()> {
    let mut keys = HashSet::new();
    for key in c.events.iter().filter_map(|e| e.key.as_deref()) {
        if !keys.insert(key) {
            return Err(StoreError::Conflict(format!(
                "event key `{key}` given twice in one commit"
            )));
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = keys.into_iter().collect();
    let seen: Option<(String,)> =
        sqlx::query_as("SELECT e.key FROM json_each(?) j JOIN events e ON e.key = j.value LIMIT 1")
            .bind(json_text(&keys)?)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
    match seen {
        Some((key,)) => Err(StoreError::Conflict(format!(
            "event key `{key}` was recorded before"
        ))),
        None => Ok(()),
    }
}

/// Replaces the unique keys of the written contacts: only the keys that
/// changed are deleted or inserted; a key owned by a contact outside the
/// commit, or claimed by two contacts of it, is a conflict.
async fn write_keys(conn: &mut SqliteConnection, writes: &[Write<'_>]) -> Result<()> {
    let mut wanted: HashMap<(&str, &str), &str> = HashMap::new();
    for w in writes {
        let id = w.w.state.contact.id.as_str();
        for (field, value) in &w.w.keys {
            if let Some(other) = wanted.insert((field, value), id)
                && other != id
            {
                return Err(StoreError::Conflict(format!(
                    "`{field}` `{value}` claimed by contacts `{other}` and `{id}`"
                )));
            }
        }
    }
    let existing: Vec<&str> = writes
        .iter()
        .filter(|w| w.existed)
        .map(|w| w.w.state.contact.id.as_str())
        .collect();
    let mut old: HashSet<(String, String, String)> = HashSet::new();
    if !existing.is_empty() {
        let rows = sqlx::query(
            "SELECT k.field, k.value, k.contact FROM json_each(?) j \
             JOIN contact_keys k ON k.contact = j.value",
        )
        .bind(json_text(&existing)?)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        for r in rows {
            old.insert((
                r.try_get(0).map_err(db)?,
                r.try_get(1).map_err(db)?,
                r.try_get(2).map_err(db)?,
            ));
        }
    }
    let gone: Vec<[&str; 2]> = old
        .iter()
        .filter(|(f, v, c)| wanted.get(&(f.as_str(), v.as_str())) != Some(&c.as_str()))
        .map(|(f, v, _)| [f.as_str(), v.as_str()])
        .collect();
    let added: Vec<[&str; 3]> = wanted
        .iter()
        .filter(|((f, v), c)| !old.contains(&(f.to_string(), v.to_string(), c.to_string())))
        .map(|((f, v), c)| [*f, *v, *c])
        .collect();
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
    if added.is_empty() {
        return Ok(());
    }
    let taken: Option<(String, String, String)> = sqlx::query_as(
        "SELECT k.field, k.value, k.contact FROM json_each(?) j \
         JOIN contact_keys k ON k.field = j.value ->> 0 AND k.value = j.value ->> 1 LIMIT 1",
    )
    .bind(json_text(&added)?)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    if let Some((field, value, owner)) = taken {
        return Err(StoreError::Conflict(format!(
            "`{field}` `{value}` belongs to contact `{owner}`"
        )));
    }
    insert_rows(
        conn,
        "INSERT INTO contact_keys (field, value, contact) VALUES ",
        "(?, ?, ?)",
        "",
        &added,
        |q, [f, v, c]| q.bind(*f).bind(*v).bind(*c),
    )
    .await
}

async fn write_contacts(conn: &mut SqliteConnection, writes: &[Write<'_>], now: i64) -> Result<()> {
    let rows = writes
        .iter()
        .map(|w| Ok((w, state_json(&w.w.state)?)))
        .collect::<Result<Vec<_>>>()?;
    insert_rows(
        conn,
        "INSERT INTO contacts (id, state, version, next_wake, created_at, updated_at) VALUES ",
        "(?, ?, ?, ?, ?, ?)",
        " ON CONFLICT (id) DO UPDATE SET state = excluded.state, version = excluded.version, \
         next_wake = excluded.next_wake, updated_at = excluded.updated_at",
        &rows,
        |q, (w, json)| {
            q.bind(w.w.state.contact.id.as_str())
                .bind(json.clone())
                .bind(w.version)
                .bind(w.w.next_wake)
                .bind(now)
                .bind(now)
        },
    )
    .await
}

fn state_json(state: &ContactState) -> Result<String> {
    serde_json::to_string(state).map_err(|e| {
        StoreError::Corrupt(format!(
            "state of contact `{}` cannot be stored: {e}",
            state.contact.id
        ))
    })
}

/// Upserts one row per enrollment (rows that did not change are left
/// alone) and drops rows past the end of a contact's list.
async fn write_enrollments(conn: &mut SqliteConnection, writes: &[Write<'_>]) -> Result<()> {
    let rows: Vec<(&str, i64, &crate::vm::Enrollment)> = writes
        .iter()
        .flat_map(|w| {
            let id = w.w.state.contact.id.as_str();
            w.w.state
                .enrollments
                .iter()
                .zip(0_i64..)
                .map(move |(e, seq)| (id, seq, e))
        })
        .collect();
    insert_rows(
        conn,
        "INSERT INTO enrollments (contact, seq, flow, status, step, version, entered_at, wake_at) \
         VALUES ",
        "(?, ?, ?, ?, ?, ?, ?, ?)",
        " ON CONFLICT (contact, seq) DO UPDATE SET flow = excluded.flow, \
         status = excluded.status, step = excluded.step, version = excluded.version, \
         entered_at = excluded.entered_at, wake_at = excluded.wake_at \
         WHERE flow IS NOT excluded.flow OR status IS NOT excluded.status \
         OR step IS NOT excluded.step OR version IS NOT excluded.version \
         OR entered_at IS NOT excluded.entered_at OR wake_at IS NOT excluded.wake_at",
        &rows,
        |q, (id, seq, e)| {
            let wake = e
                .is_active()
                .then(|| e.wait.as_ref().and_then(|w| w.wake_at()))
                .flatten();
            q.bind(*id)
                .bind(*seq)
                .bind(e.flow.as_str())
                .bind(e.status.name())
                .bind(e.step.as_str())
                .bind(e.version.as_str())
                .bind(e.entered_at)
                .bind(wake)
        },
    )
    .await?;
    let lengths: HashMap<&str, usize> = writes
        .iter()
        .filter(|w| w.existed)
        .map(|w| (w.w.state.contact.id.as_str(), w.w.state.enrollments.len()))
        .collect();
    if lengths.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "DELETE FROM enrollments WHERE (contact, seq) IN (SELECT e.contact, e.seq \
         FROM json_each(?) j JOIN enrollments e ON e.contact = j.key AND e.seq >= j.value)",
    )
    .bind(json_text(&lengths)?)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
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
        &held,
        |q, (h, params)| {
            q.bind(h.source.as_str())
                .bind(h.key_field.as_str())
                .bind(h.key_value.as_str())
                .bind(params.clone())
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
        &rejected,
        |q, ((source, _, reason, at), params)| {
            q.bind(source.as_str())
                .bind(params.clone())
                .bind(reason.as_str())
                .bind(*at)
        },
    )
    .await
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

/// Inserts `items` with multi-row `head (row), (row) … tail` statements.
async fn insert_rows<T>(
    conn: &mut SqliteConnection,
    head: &str,
    row: &str,
    tail: &str,
    items: &[T],
    bind: impl Fn(SqliteQuery, &T) -> SqliteQuery,
) -> Result<()> {
    let mut rest = items;
    for n in chunk_sizes(items.len()) {
        let (chunk, after) = rest.split_at(n);
        rest = after;
        let mut sql = String::with_capacity(head.len() + (row.len() + 2) * n + tail.len());
        sql.push_str(head);
        for i in 0..n {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(row);
        }
        sql.push_str(tail);
        let mut q: SqliteQuery = sqlx::query(AssertSqlSafe(sql));
        for item in chunk {
            q = bind(q, item);
        }
        q.execute(&mut *conn).await.map_err(db)?;
    }
    Ok(())
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
