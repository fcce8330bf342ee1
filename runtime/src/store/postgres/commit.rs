//! The group commit of [`PgStore`](super::PgStore). Takes a [`Commit`] and
//! a connection inside a transaction; writes the whole group or returns an
//! error, and the caller rolls back, so a refused commit leaves nothing
//! behind.
//!
//! Each table is written by ONE statement over arrays (`UNNEST($1::text[],
//! …)`), whatever the size of the group. The checks are folded into the
//! writes and never abort the transaction: a stored contact is written by
//! an `UPDATE … WHERE version = expected … RETURNING id` (a row another
//! writer moved, or holds locked until it commits, comes back missing);
//! new contacts, unique keys, event keys and postback `dedupe` values by
//! `INSERT … ON CONFLICT DO NOTHING RETURNING`, so a row short names its
//! culprit in a read of the same transaction (the owner of a taken key,
//! the contact that moved). What moved is worked out by `store/rows.rs`
//! from what the caller read ([`Loaded`]), as for SQLite.

use super::db;
use crate::store::rows::{
    self, KeyMoves, Write, chain, count_deltas, event_keys, journal_rows, key_moves, kind_name,
};
use crate::store::{Commit, Loaded, Result, StoreError, doc};
use sqlx::PgConnection;
use std::collections::{HashMap, HashSet};

/// Apply one commit; `now` stamps the bookkeeping columns, `shard` is the
/// store's own counter rows.
pub(super) async fn apply(conn: &mut PgConnection, c: &Commit, now: i64, shard: i16) -> Result<()> {
    let writes = chain(&c.contacts)?;
    event_keys(c)?;
    let read = read_loaded(conn, &writes).await?;
    let olds: Vec<Option<&Loaded>> = writes
        .iter()
        .map(|w| w.loaded.or_else(|| read.get(w.id())))
        .collect();
    let moves = key_moves(&writes, &olds)?;
    guard_held(conn, c, &moves).await?;
    write_contacts(conn, &writes, now).await?;
    write_keys(conn, moves).await?;
    write_counts(conn, &writes, &olds, shard).await?;
    write_events(conn, c).await?;
    write_outbox(conn, c, now).await?;
    write_journal(conn, c).await?;
    write_postbacks(conn, c).await?;
    write_postback_keys(conn, c).await?;
    write_acks(conn, c).await?;
    write_totals(conn, &writes, c, shard).await
}

/// Held postbacks and unique keys meet under a lock: two daemons, one
/// holding a postback for a key while the other gives a contact that key,
/// must not both commit blind to each other (the postback would stay held
/// for a contact that exists). Each commit first takes a transaction
/// advisory lock per key it holds a postback for, adds, or released the
/// held postbacks of (in one order, so they never deadlock), then, under
/// the locks: a postback to hold whose key has an owner now, or a held
/// postback of a released key that the commit did not release (held after
/// it read them), refuses the commit with a conflict; it is prepared again
/// from the store and finds the other's row.
async fn guard_held(conn: &mut PgConnection, c: &Commit, moves: &KeyMoves<'_>) -> Result<()> {
    let mut keys: Vec<(&str, &str)> = c
        .held
        .iter()
        .map(|h| (h.key_field.as_str(), h.key_value.as_str()))
        .chain(moves.added.iter().map(|[f, v, _]| (*f, *v)))
        .chain(
            c.release_checked
                .iter()
                .map(|(f, v, _)| (f.as_str(), v.as_str())),
        )
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    keys.sort_unstable();
    keys.dedup();
    let (fields, values): (Vec<&str>, Vec<&str>) = keys.into_iter().unzip();
    sqlx::query(
        "SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT \
         hashtextextended(length(f) || ':' || f || v, 7) AS h FROM UNNEST($1::text[], $2::text[]) \
         AS u(f, v) ORDER BY h) AS k",
    )
    .bind(&fields)
    .bind(&values)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    if !c.held.is_empty() {
        held_without_owner(conn, c, moves).await?;
    }
    if !c.release_checked.is_empty() {
        released_all(conn, c).await?;
    }
    Ok(())
}

/// A postback the commit holds whose key has an owner by now (one the
/// commit itself does not take away) is a conflict.
async fn held_without_owner(
    conn: &mut PgConnection,
    c: &Commit,
    moves: &KeyMoves<'_>,
) -> Result<()> {
    let owned: Option<(String, String)> = sqlx::query_as(
        "SELECT k.field, k.value FROM UNNEST($1::text[], $2::text[]) AS h(f, v) \
         JOIN contact_keys k ON k.field = h.f AND k.value = h.v \
         WHERE (k.field, k.value) NOT IN (SELECT * FROM UNNEST($3::text[], $4::text[])) LIMIT 1",
    )
    .bind(
        c.held
            .iter()
            .map(|h| h.key_field.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        c.held
            .iter()
            .map(|h| h.key_value.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(moves.gone.iter().map(|[f, _]| *f).collect::<Vec<_>>())
    .bind(moves.gone.iter().map(|[_, v]| *v).collect::<Vec<_>>())
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    match owned {
        None => Ok(()),
        Some((field, _)) => Err(StoreError::Conflict(format!(
            "a postback to hold for `{field}` found its contact meanwhile"
        ))),
    }
}

/// A postback held (and still holding) for a key whose held postbacks the
/// commit released, that the commit did not release, is a conflict.
async fn released_all(conn: &mut PgConnection, c: &Commit) -> Result<()> {
    let r = &c.release_checked;
    let missed: Option<(i64, String)> = sqlx::query_as(
        "SELECT p.id, p.key_field FROM UNNEST($1::text[], $2::text[], $3::bigint[]) AS r(f, v, at) \
         JOIN postbacks_held p ON p.key_field = r.f AND p.key_value = r.v \
         WHERE p.until >= r.at AND p.quarantined IS NULL AND NOT (p.id = ANY($4)) LIMIT 1",
    )
    .bind(r.iter().map(|(f, _, _)| f.as_str()).collect::<Vec<_>>())
    .bind(r.iter().map(|(_, v, _)| v.as_str()).collect::<Vec<_>>())
    .bind(r.iter().map(|(_, _, at)| *at).collect::<Vec<_>>())
    .bind(&c.released)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    match missed {
        None => Ok(()),
        Some((id, field)) => Err(StoreError::Conflict(format!(
            "held postback {id} for `{field}` was held after the commit read them"
        ))),
    }
}

/// For stored contacts written without [`Loaded`]: their stored keys and
/// enrollment places, read from the database.
async fn read_loaded(
    conn: &mut PgConnection,
    writes: &[Write<'_>],
) -> Result<HashMap<String, Loaded>> {
    let ids: Vec<&str> = writes
        .iter()
        .filter(|w| w.expected.is_some() && w.loaded.is_none())
        .map(Write::id)
        .collect();
    let mut out: HashMap<String, Loaded> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let states: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT id, state FROM contacts WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
    for (id, state) in states {
        let st = doc::decode(&id, &state)?;
        out.insert(id, Loaded::of(&st, Vec::new()));
    }
    let keys: Vec<(String, String, String)> =
        sqlx::query_as("SELECT contact, field, value FROM contact_keys WHERE contact = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
    for (id, field, value) in keys {
        if let Some(l) = out.get_mut(&id) {
            l.keys.push((field, value));
        }
    }
    Ok(out)
}

/// The columns of contact rows, as arrays.
#[derive(Default)]
struct ContactRows<'c> {
    ids: Vec<&'c str>,
    states: Vec<Vec<u8>>,
    versions: Vec<i64>,
    wakes: Vec<Option<i64>>,
    expected: Vec<i64>,
}

impl<'c> ContactRows<'c> {
    fn push(&mut self, w: &Write<'c>) -> Result<()> {
        self.ids.push(w.w.state.contact.id.as_str());
        self.states.push(doc::encode(&w.w.state)?);
        self.versions.push(w.version);
        self.wakes.push(w.w.next_wake);
        self.expected.push(w.expected.unwrap_or(0));
        Ok(())
    }
}

/// Inserts the new contacts and updates the stored ones where their version
/// is still the expected one; any other case is a conflict, named.
async fn write_contacts(conn: &mut PgConnection, writes: &[Write<'_>], now: i64) -> Result<()> {
    let (mut fresh, mut stored) = (ContactRows::default(), ContactRows::default());
    // in id order: two commits updating the same contacts lock them in one
    // order, so they wait for each other instead of deadlocking
    let mut sorted: Vec<&Write<'_>> = writes.iter().collect();
    sorted.sort_unstable_by(|a, b| a.id().cmp(b.id()));
    for w in sorted {
        match w.expected {
            None => fresh.push(w)?,
            Some(_) => stored.push(w)?,
        }
    }
    if !fresh.ids.is_empty() {
        let done: Vec<(String,)> = sqlx::query_as(
            "INSERT INTO contacts (id, state, version, next_wake, created_at, updated_at) \
             SELECT id, state, version, next_wake, $5, $5 \
             FROM UNNEST($1::text[], $2::bytea[], $3::bigint[], $4::bigint[]) \
             AS u(id, state, version, next_wake) \
             ON CONFLICT (id) DO NOTHING RETURNING id",
        )
        .bind(&fresh.ids)
        .bind(&fresh.states)
        .bind(&fresh.versions)
        .bind(&fresh.wakes)
        .bind(now)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        if let Some(id) = first_missing(&fresh.ids, &done) {
            return Err(StoreError::Conflict(format!(
                "contact `{id}` already exists"
            )));
        }
    }
    if stored.ids.is_empty() {
        return Ok(());
    }
    let done: Vec<(String,)> = sqlx::query_as(
        "UPDATE contacts c SET state = u.state, version = u.version, \
         next_wake = u.next_wake, wake_lease = 0, updated_at = $6 \
         FROM UNNEST($1::text[], $2::bytea[], $3::bigint[], $4::bigint[], $5::bigint[]) \
         AS u(id, state, version, next_wake, expected) \
         WHERE c.id = u.id AND c.version = u.expected RETURNING c.id",
    )
    .bind(&stored.ids)
    .bind(&stored.states)
    .bind(&stored.versions)
    .bind(&stored.wakes)
    .bind(&stored.expected)
    .bind(now)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    match first_missing(&stored.ids, &done) {
        None => Ok(()),
        Some(id) => Err(moved(conn, writes, id).await),
    }
}

/// The first of `wanted` that a statement's `RETURNING` left out.
fn first_missing<'a>(wanted: &[&'a str], done: &[(String,)]) -> Option<&'a str> {
    if done.len() == wanted.len() {
        return None;
    }
    let done: HashSet<&str> = done.iter().map(|(id,)| id.as_str()).collect();
    wanted.iter().find(|id| !done.contains(**id)).copied()
}

/// After a stored contact's update found no row at its expected version:
/// whether it is gone or moved (and to which version), or why that cannot
/// be read.
async fn moved(conn: &mut PgConnection, writes: &[Write<'_>], id: &str) -> StoreError {
    let expected = writes
        .iter()
        .find(|w| w.id() == id)
        .and_then(|w| w.expected)
        .unwrap_or(0);
    let now: std::result::Result<Option<(i64,)>, _> =
        sqlx::query_as("SELECT version FROM contacts WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await;
    match now {
        Ok(None) => StoreError::Conflict(format!("contact `{id}` does not exist")),
        Ok(Some((v,))) => StoreError::Conflict(format!(
            "contact `{id}` changed since it was read (version {expected}, now {v})"
        )),
        Err(e) => db(e),
    }
}

/// Moves the unique keys that changed: a key owned by a contact outside
/// the commit is a conflict naming its owner.
async fn write_keys(conn: &mut PgConnection, moves: KeyMoves<'_>) -> Result<()> {
    // deleted first: a key may move between two contacts of the commit
    if !moves.gone.is_empty() {
        let (fields, values): (Vec<&str>, Vec<&str>) =
            moves.gone.iter().map(|[f, v]| (*f, *v)).unzip();
        sqlx::query(
            "DELETE FROM contact_keys WHERE (field, value) IN \
             (SELECT * FROM UNNEST($1::text[], $2::text[]))",
        )
        .bind(fields)
        .bind(values)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    if moves.added.is_empty() {
        return Ok(());
    }
    let [mut fields, mut values, mut owners] = [Vec::new(), Vec::new(), Vec::new()];
    for [f, v, c] in &moves.added {
        fields.push(*f);
        values.push(*v);
        owners.push(*c);
    }
    let done = sqlx::query(
        "INSERT INTO contact_keys (field, value, contact) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[]) \
         ON CONFLICT (field, value) DO NOTHING",
    )
    .bind(&fields)
    .bind(&values)
    .bind(&owners)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    if done.rows_affected() == moves.added.len() as u64 {
        return Ok(());
    }
    Err(key_owner(conn, &fields, &values, &owners).await)
}

/// After a key insert came back short: the contact owning one of the keys
/// (other than its claimant), or why that cannot be read.
async fn key_owner(
    conn: &mut PgConnection,
    fields: &[&str],
    values: &[&str],
    owners: &[&str],
) -> StoreError {
    let taken: std::result::Result<Option<(String, String, String)>, _> = sqlx::query_as(
        "SELECT k.field, k.value, k.contact \
         FROM UNNEST($1::text[], $2::text[], $3::text[]) AS a(field, value, contact) \
         JOIN contact_keys k ON k.field = a.field AND k.value = a.value \
         WHERE k.contact <> a.contact LIMIT 1",
    )
    .bind(fields)
    .bind(values)
    .bind(owners)
    .fetch_optional(&mut *conn)
    .await;
    taken.map_or_else(db, rows::key_taken)
}

/// Adds what the commit moved to the flow counters (the store's shard).
async fn write_counts(
    conn: &mut PgConnection,
    writes: &[Write<'_>],
    olds: &[Option<&Loaded>],
    shard: i16,
) -> Result<()> {
    let rows = count_deltas(writes, olds);
    if rows.is_empty() {
        return Ok(());
    }
    let [mut flows, mut versions, mut statuses, mut steps] =
        [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    let mut ns = Vec::with_capacity(rows.len());
    for (k, n) in rows {
        flows.push(k.flow);
        versions.push(k.version);
        statuses.push(k.status);
        steps.push(k.step);
        ns.push(n);
    }
    sqlx::query(
        "INSERT INTO flow_counts (flow, version, status, step, shard, n) \
         SELECT f, v, st, sp, $6, n \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[]) \
         AS u(f, v, st, sp, n) \
         ON CONFLICT (flow, version, status, step, shard) \
         DO UPDATE SET n = flow_counts.n + excluded.n",
    )
    .bind(flows)
    .bind(versions)
    .bind(statuses)
    .bind(steps)
    .bind(ns)
    .bind(shard)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// The events; a key recorded before refuses the commit, named.
async fn write_events(conn: &mut PgConnection, c: &Commit) -> Result<()> {
    if c.events.is_empty() {
        return Ok(());
    }
    let keys: Vec<Option<&str>> = c.events.iter().map(|e| e.key.as_deref()).collect();
    let contacts: Vec<&str> = c.events.iter().map(|e| e.contact.as_str()).collect();
    let names: Vec<&str> = c.events.iter().map(|e| e.name.as_str()).collect();
    let payloads: Vec<String> = c.events.iter().map(|e| e.payload.to_string()).collect();
    let at: Vec<i64> = c.events.iter().map(|e| e.received_at).collect();
    let done: Vec<(Option<String>,)> = sqlx::query_as(
        "INSERT INTO events (key, contact, name, payload, received_at) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[]) \
         ON CONFLICT (key) DO NOTHING RETURNING key",
    )
    .bind(&keys)
    .bind(contacts)
    .bind(names)
    .bind(payloads)
    .bind(at)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    if done.len() == c.events.len() {
        return Ok(());
    }
    let written: HashSet<&str> = done.iter().filter_map(|(k,)| k.as_deref()).collect();
    Err(StoreError::Conflict(
        match keys.iter().flatten().find(|k| !written.contains(**k)) {
            Some(key) => format!("event key `{key}` was recorded before"),
            None => "an event key was recorded before".into(),
        },
    ))
}

/// The channel a claim tells an outbox row apart by: the payload's
/// `channel`, `url` for none (a call to a bare URL).
pub(in crate::store) fn channel_of(payload: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Channel {
        channel: Option<serde_json::Value>,
    }
    match serde_json::from_str::<Channel>(payload).map(|c| c.channel) {
        Ok(Some(serde_json::Value::String(s))) => s,
        Ok(Some(other)) => other.to_string(),
        _ => "url".into(),
    }
}

/// New outbox rows; a second row with a known idempotency key is ignored.
async fn write_outbox(conn: &mut PgConnection, c: &Commit, now: i64) -> Result<()> {
    if c.outbox.is_empty() {
        return Ok(());
    }
    let o = &c.outbox;
    let col = |f: fn(&crate::store::NewOutbox) -> &str| o.iter().map(f).collect::<Vec<&str>>();
    sqlx::query(
        "INSERT INTO outbox (contact, flow, step, kind, channel, payload, idem_key, status, \
         attempts, next_attempt_at, created_at) \
         SELECT contact, flow, step, kind, channel, payload, idem_key, 'pending', 0, at, $9 \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
         $7::text[], $8::bigint[]) AS u(contact, flow, step, kind, channel, payload, idem_key, at) \
         ON CONFLICT (idem_key) DO NOTHING",
    )
    .bind(col(|r| &r.contact))
    .bind(col(|r| &r.flow))
    .bind(col(|r| &r.step))
    .bind(o.iter().map(|r| kind_name(r.kind)).collect::<Vec<_>>())
    .bind(
        o.iter()
            .map(|r| channel_of(r.payload.as_str()))
            .collect::<Vec<_>>(),
    )
    .bind(col(|r| r.payload.as_str()))
    .bind(col(|r| &r.idem_key))
    .bind(o.iter().map(|r| r.not_before).collect::<Vec<_>>())
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// One journal row per contact of the commit.
async fn write_journal(conn: &mut PgConnection, c: &Commit) -> Result<()> {
    let rows = journal_rows(c)?;
    if rows.is_empty() {
        return Ok(());
    }
    let (contacts, lines): (Vec<&str>, Vec<String>) = rows.into_iter().unzip();
    sqlx::query(
        "INSERT INTO journal (contact, lines) SELECT contact, lines FROM UNNEST($1::text[], $2::text[]) \
         WITH ORDINALITY AS u(contact, lines, n) ORDER BY n",
    )
    .bind(contacts)
    .bind(lines)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Held postbacks released (deleted) and new ones; refused ones kept.
async fn write_postbacks(conn: &mut PgConnection, c: &Commit) -> Result<()> {
    if !c.released.is_empty() {
        let done = sqlx::query("DELETE FROM postbacks_held WHERE id = ANY($1)")
            .bind(&c.released)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        // another daemon applied one of them meanwhile: applying it here
        // too would apply it twice
        if done.rows_affected() != c.released.len() as u64 {
            return Err(StoreError::Conflict(
                "a held postback was released meanwhile".into(),
            ));
        }
    }
    if !c.held.is_empty() {
        let h = &c.held;
        let params = h
            .iter()
            .map(|h| rows::json_text(&h.params))
            .collect::<Result<Vec<_>>>()?;
        sqlx::query(
            "INSERT INTO postbacks_held (source, key_field, key_value, params, received_at, until) \
             SELECT a, b, c, d, e, f FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], \
             $5::bigint[], $6::bigint[]) WITH ORDINALITY AS u(a, b, c, d, e, f, n) ORDER BY n",
        )
        .bind(h.iter().map(|h| h.source.as_str()).collect::<Vec<_>>())
        .bind(h.iter().map(|h| h.key_field.as_str()).collect::<Vec<_>>())
        .bind(h.iter().map(|h| h.key_value.as_str()).collect::<Vec<_>>())
        .bind(params)
        .bind(h.iter().map(|h| h.received_at).collect::<Vec<_>>())
        .bind(h.iter().map(|h| h.until).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    write_rejected(conn, c).await
}

async fn write_rejected(conn: &mut PgConnection, c: &Commit) -> Result<()> {
    if c.rejected.is_empty() {
        return Ok(());
    }
    let r = &c.rejected;
    let params = r
        .iter()
        .map(|r| rows::json_text(&r.1))
        .collect::<Result<Vec<_>>>()?;
    sqlx::query(
        "INSERT INTO postbacks_rejected (source, params, reason, at) \
         SELECT a, b, c, d FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[]) \
         WITH ORDINALITY AS u(a, b, c, d, n) ORDER BY n",
    )
    .bind(r.iter().map(|r| r.0.as_str()).collect::<Vec<_>>())
    .bind(params)
    .bind(r.iter().map(|r| r.2.as_str()).collect::<Vec<_>>())
    .bind(r.iter().map(|r| r.3).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// The postbacks' `dedupe` values: one recorded before (or twice in this
/// commit) refuses the commit.
async fn write_postback_keys(conn: &mut PgConnection, c: &Commit) -> Result<()> {
    let k = &c.postback_keys;
    if k.is_empty() {
        return Ok(());
    }
    let done = sqlx::query(
        "INSERT INTO postback_keys (source, key, received_at, until) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[]) \
         ON CONFLICT (source, key) DO NOTHING",
    )
    .bind(k.iter().map(|k| k.source.as_str()).collect::<Vec<_>>())
    .bind(k.iter().map(|k| k.key.as_str()).collect::<Vec<_>>())
    .bind(k.iter().map(|k| k.received_at).collect::<Vec<_>>())
    .bind(k.iter().map(|k| k.until).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    if done.rows_affected() == k.len() as u64 {
        return Ok(());
    }
    Err(StoreError::Conflict(
        "a postback's `dedupe` value was recorded before".into(),
    ))
}

/// The outbox acks settled with the commit, fenced: a lost lease refuses
/// the commit.
async fn write_acks(conn: &mut PgConnection, c: &Commit) -> Result<()> {
    if c.acks.is_empty() {
        return Ok(());
    }
    let lost = super::outbox::apply_acks(conn, &c.acks).await?;
    crate::store::rows::leases_kept(&lost)
}

/// Moves the running totals by the contacts and events the commit adds.
async fn write_totals(
    conn: &mut PgConnection,
    writes: &[Write<'_>],
    c: &Commit,
    shard: i16,
) -> Result<()> {
    let contacts = rows::new_contacts(writes);
    if contacts == 0 && c.events.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO totals (name, shard, n) VALUES ('contacts', $3, $1), ('events', $3, $2) \
         ON CONFLICT (name, shard) DO UPDATE SET n = totals.n + excluded.n",
    )
    .bind(contacts)
    .bind(i64::try_from(c.events.len()).unwrap_or(i64::MAX))
    .bind(shard)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_channel_is_the_payloads_or_url() {
        assert_eq!(channel_of(r#"{"channel":"mail","to":"a"}"#), "mail");
        assert_eq!(channel_of(r#"{"url":"https://x.test"}"#), "url");
        assert_eq!(channel_of("{not json"), "url");
    }
}
