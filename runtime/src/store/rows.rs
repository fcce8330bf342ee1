//! What a [`Commit`] writes, worked out the same way by every engine: the
//! last write of each contact with the version it must find
//! ([`chain`]), duplicate event keys refused ([`event_keys`]), the unique
//! keys that moved ([`key_moves`]), what the flow counters move by
//! ([`count_deltas`]) and one journal row per contact ([`journal_rows`]).
//! Takes the commit and what the caller read ([`Loaded`]); gives plain rows
//! for the engine to write. Pure: no database here.
//!
//! Also the small helpers both engines use for stored values: JSON text in
//! and out, outbox kind names, row limits and the wall clock of
//! bookkeeping columns.

use super::{
    Commit, ContactWrite, FlowCounts, Loaded, OutboxKind, OutboxRow, OutboxStatus, PlaceKey,
    Result, StoreError, place_keys,
};
use crate::engine::JournalLine;
use std::collections::{HashMap, HashSet};

/// The last write of each contact in the commit.
pub(crate) struct Write<'c> {
    pub(crate) w: &'c ContactWrite,
    /// The version the first write expected: what must be stored now.
    pub(crate) expected: Option<i64>,
    /// The version written.
    pub(crate) version: i64,
    /// What the first write's caller read.
    pub(crate) loaded: Option<&'c Loaded>,
}

impl Write<'_> {
    pub(crate) fn id(&self) -> &str {
        self.w.state.contact.id.as_str()
    }
}

/// Chains the writes of each contact (each must expect the version the one
/// before it left) and keeps the last, in first-seen order.
pub(crate) fn chain(contacts: &[ContactWrite]) -> Result<Vec<Write<'_>>> {
    let mut at: HashMap<&str, usize> = HashMap::with_capacity(contacts.len());
    let mut out: Vec<Write<'_>> = Vec::with_capacity(contacts.len());
    for w in contacts {
        let id = w.state.contact.id.as_str();
        let Some(&i) = at.get(id) else {
            at.insert(id, out.len());
            out.push(Write {
                w,
                expected: w.expected_version,
                version: w.expected_version.map_or(1, |v| v + 1),
                loaded: w.expected_version.and(w.loaded.as_ref()),
            });
            continue;
        };
        let before = out[i].version;
        if w.expected_version != Some(before) {
            return Err(StoreError::Conflict(match w.expected_version {
                None => format!("contact `{id}` already exists"),
                Some(e) => {
                    format!("contact `{id}` changed since it was read (version {e}, now {before})")
                }
            }));
        }
        out[i].w = w;
        out[i].version = before + 1;
    }
    Ok(out)
}

/// The event keys of the commit; one given twice is refused.
pub(crate) fn event_keys(c: &Commit) -> Result<Vec<&str>> {
    let mut keys = HashSet::new();
    for key in c.events.iter().filter_map(|e| e.key.as_deref()) {
        if !keys.insert(key) {
            return Err(StoreError::Conflict(format!(
                "event key `{key}` given twice in one commit"
            )));
        }
    }
    Ok(keys.into_iter().collect())
}

/// The unique keys a commit moves: `gone` (`[field, value]`, to delete
/// first: a key may move between two contacts of the commit) and `added`
/// (`[field, value, contact]`). A key claimed by two contacts of the commit
/// is a conflict.
pub(crate) struct KeyMoves<'c> {
    pub(crate) gone: Vec<[&'c str; 2]>,
    pub(crate) added: Vec<[&'c str; 3]>,
}

/// See [`KeyMoves`]; `olds` is what each write's stored version held.
pub(crate) fn key_moves<'c>(
    writes: &[Write<'c>],
    olds: &[Option<&'c Loaded>],
) -> Result<KeyMoves<'c>> {
    let mut wanted: HashMap<(&str, &str), &str> = HashMap::new();
    let mut moves = KeyMoves {
        gone: Vec::new(),
        added: Vec::new(),
    };
    for (w, loaded) in writes.iter().zip(olds) {
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
        let old: &[(String, String)] = loaded.map_or(&[], |l| &l.keys);
        if old == w.w.keys.as_slice() {
            continue;
        }
        moves.gone.extend(
            old.iter()
                .filter(|k| !w.w.keys.contains(k))
                .map(|(f, v)| [f.as_str(), v.as_str()]),
        );
        moves.added.extend(
            w.w.keys
                .iter()
                .filter(|k| !old.contains(k))
                .map(|(f, v)| [f.as_str(), v.as_str(), id]),
        );
    }
    Ok(moves)
}

/// What the commit moves the flow counters by: each stored enrollment's
/// old place −1, each written one +1 (folded ones by their `n`). Rows that
/// do not move are left out; sorted, so two writers of the same rows take
/// them in one order and never deadlock.
pub(crate) fn count_deltas<'c>(
    writes: &[Write<'c>],
    olds: &[Option<&'c Loaded>],
) -> Vec<(PlaceKey<'c>, i64)> {
    let mut delta: HashMap<PlaceKey<'c>, i64> = HashMap::new();
    for (w, loaded) in writes.iter().zip(olds) {
        for p in loaded.map_or(&[][..], |l| &l.places) {
            *delta.entry(p.key()).or_default() -= p.n;
        }
        for (key, n) in place_keys(&w.w.state) {
            *delta.entry(key).or_default() += n;
        }
    }
    let mut rows: Vec<(PlaceKey<'c>, i64)> = delta.into_iter().filter(|(_, n)| *n != 0).collect();
    rows.sort_unstable();
    rows
}

/// How many contacts the commit adds (for the running totals).
pub(crate) fn new_contacts(writes: &[Write<'_>]) -> i64 {
    let n = writes.iter().filter(|w| w.expected.is_none()).count();
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// One journal row per contact: its lines of the commit, in order, as a
/// JSON array of `[at, flow, step, what]`.
pub(crate) fn journal_rows(c: &Commit) -> Result<Vec<(&str, String)>> {
    let mut at: HashMap<&str, usize> = HashMap::new();
    type Line<'a> = (i64, &'a str, &'a str, &'a str);
    let mut rows: Vec<(&str, Vec<Line<'_>>)> = Vec::new();
    for (contact, line) in &c.journal {
        let i = *at.entry(contact.as_str()).or_insert_with(|| {
            rows.push((contact.as_str(), Vec::new()));
            rows.len() - 1
        });
        rows[i]
            .1
            .push((line.at, &line.flow, &line.step, &line.what));
    }
    rows.into_iter()
        .map(|(contact, lines)| Ok((contact, json_text(&lines)?)))
        .collect()
}

/// The last `limit` lines of a contact's journal rows, read newest row
/// first (`limit` rows at most: each holds a line at least), as
/// [`journal_rows`] wrote them; oldest line first.
pub(crate) fn journal_tail(
    contact: &str,
    newest_first: &[(String,)],
    limit: usize,
) -> Result<Vec<JournalLine>> {
    let mut out = Vec::new();
    for (text,) in newest_first.iter().rev() {
        let lines: Vec<(i64, String, String, String)> =
            from_json(&format!("journal of contact `{contact}`"), text)?;
        out.extend(lines.into_iter().map(|(at, flow, step, what)| JournalLine {
            at,
            flow,
            step,
            what,
        }));
    }
    let extra = out.len().saturating_sub(limit);
    out.drain(..extra);
    Ok(out)
}

/// Flow counter rows (flow, version, status, step, n), in flow order, as
/// [`FlowCounts`].
pub(crate) fn flow_counts(
    rows: Vec<(String, String, String, String, i64)>,
) -> Result<Vec<FlowCounts>> {
    let mut out: Vec<FlowCounts> = Vec::new();
    for (flow, version, status, step, n) in rows {
        if out.last().is_none_or(|c| c.flow != flow) {
            out.push(FlowCounts {
                flow,
                ..FlowCounts::default()
            });
        }
        let Some(c) = out.last_mut() else { continue };
        c.enrolled += n;
        match status.as_str() {
            "active" => {
                c.active += n;
                *c.steps.entry(step.clone()).or_default() += n;
                *c.versions
                    .entry(version)
                    .or_default()
                    .entry(step)
                    .or_default() += n;
            }
            "completed" => c.completed += n,
            "exited" => c.exited += n,
            "converted" => c.converted += n,
            "failed" => c.failed += n,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "flow counts: unknown status `{other}`"
                )));
            }
        }
    }
    Ok(out)
}

/// The answer of a commit whose acks lost these leases: a conflict naming
/// the first (the commit is refused whole), or none.
pub(crate) fn leases_kept(lost: &[super::Lease]) -> Result<()> {
    match lost.first() {
        None => Ok(()),
        Some(l) => Err(StoreError::Conflict(format!(
            "outbox row {}: its lease was taken over",
            l.id
        ))),
    }
}

/// After a unique key insert was refused: the conflict naming the key's
/// owner (field, value, contact), as read.
pub(crate) fn key_taken(owner: Option<(String, String, String)>) -> StoreError {
    match owner {
        Some((field, value, owner)) => {
            StoreError::Conflict(format!("`{field}` `{value}` belongs to contact `{owner}`"))
        }
        None => StoreError::Conflict("a unique key belongs to another contact".into()),
    }
}

/// An outbox row's columns, in the engines' select order, its payload as
/// `P`: id, contact, flow, step, kind, payload, idem_key, status,
/// attempts, next_attempt_at, last_error, created_at, lease.
pub(crate) type OutboxTuple<P> = (
    i64,
    String,
    String,
    String,
    String,
    P,
    String,
    String,
    i64,
    i64,
    Option<String>,
    i64,
    i64,
);

/// Decodes a listed row. A damaged payload (never written so by Nudge)
/// is listed as its text; claims dead-letter it instead of delivering it.
pub(crate) fn listed_outbox_row(t: OutboxTuple<String>) -> Result<OutboxRow> {
    outbox_row(t, |p| {
        serde_json::from_str(&p).unwrap_or(serde_json::Value::String(p))
    })
}

/// Decodes a row's columns; `json` gives its payload as JSON.
pub(crate) fn outbox_row<P>(
    t: OutboxTuple<P>,
    json: impl FnOnce(P) -> serde_json::Value,
) -> Result<OutboxRow> {
    let (
        id,
        contact,
        flow,
        step,
        kind,
        payload,
        idem_key,
        status,
        attempts,
        next,
        error,
        created,
        lease,
    ) = t;
    let kind = kind_of(id, &kind)?;
    let status = OutboxStatus::from_name(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("outbox row {id}: status `{status}`")))?;
    Ok(OutboxRow {
        id,
        contact,
        flow,
        step,
        kind,
        payload: json(payload),
        idem_key,
        status,
        attempts,
        next_attempt_at: next,
        last_error: error,
        created_at: created,
        lease,
    })
}

/// The stored name of an outbox kind.
pub(crate) fn kind_name(kind: OutboxKind) -> &'static str {
    match kind {
        OutboxKind::Message => "message",
        OutboxKind::Call => "call",
    }
}

/// The outbox kind of a stored name.
fn kind_of(id: i64, name: &str) -> Result<OutboxKind> {
    match name {
        "message" => Ok(OutboxKind::Message),
        "call" => Ok(OutboxKind::Call),
        _ => Err(StoreError::Corrupt(format!(
            "outbox row {id}: kind `{name}`"
        ))),
    }
}

/// A value as JSON text (for JSON parameters and columns).
pub(crate) fn json_text<T: serde::Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Encode {
        what: "a value as JSON".into(),
        source: Box::new(e),
    })
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Decode {
        what: what.to_string(),
        source: Box::new(e),
    })
}

/// A row limit as SQL takes it.
pub(crate) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The wall clock, for bookkeeping columns.
pub(crate) fn wall_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
