//! Poison rows, for every engine: a contact state or a held postback's
//! parameters that cannot be decoded is set aside (quarantined) instead of
//! failing every read that meets it. Here is what the engines share: the
//! decoding that tells a poison row apart, and the one log line of each
//! quarantine and release (the engines write the marks).
//!
//! Reasons are decoder messages: they name positions and formats, never a
//! stored value.

use super::rows::from_json;
use super::{HeldPostback, Quarantine, Result, Versioned, doc};
use std::collections::BTreeMap;

/// A stored contact row: id, state bytes, version, wake time.
pub(crate) type StateRow = (String, Vec<u8>, i64, Option<i64>);

/// Decodes contact rows; the ones that cannot be read come back apart as
/// (id, reason), to be quarantined.
pub(crate) fn decode_states(rows: Vec<StateRow>) -> (Vec<Versioned>, Vec<(String, String)>) {
    let mut out = Vec::with_capacity(rows.len());
    let mut bad = Vec::new();
    for (id, bytes, version, next_wake) in rows {
        match doc::decode(&id, &bytes) {
            Ok(state) => out.push(Versioned {
                state,
                version,
                next_wake,
            }),
            Err(e) => bad.push((id, e.to_string())),
        }
    }
    (out, bad)
}

/// A page of the due set and the states in it that cannot be decoded
/// (id, reason).
pub(crate) type DuePage = (Vec<(i64, Versioned)>, Vec<(String, String)>);

/// [`super::Store::due_after`] for an engine: reads the page with `page`;
/// while it holds unreadable states, sets them aside with `quarantine`
/// (they leave the due set) and reads the page again, so a poison row never
/// holds up the contacts behind it.
pub(crate) async fn readable_due_page<'a>(
    page: impl Fn() -> Pending<'a, DuePage>,
    quarantine: impl Fn(Vec<(String, String)>) -> Pending<'a, ()>,
) -> Result<Vec<(i64, Versioned)>> {
    for _ in 0..4 {
        let (rows, bad) = page().await?;
        if bad.is_empty() {
            return Ok(rows);
        }
        quarantine(bad).await?;
    }
    Ok(page().await?.0)
}

/// A store operation under way (boxed, so that it stays `Send` inside the
/// trait's futures).
pub(crate) type Pending<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 'a>>;

/// A held postback as stored: id, source, key field and value, parameters
/// (JSON), received at, until.
pub(crate) type HeldRow = (i64, String, String, String, String, i64, i64);

/// Decodes held postbacks; the ones whose parameters cannot be read come
/// back apart as (id, source, reason), to be quarantined.
pub(crate) fn decode_held(rows: Vec<HeldRow>) -> (Vec<HeldPostback>, Vec<(i64, String, String)>) {
    let mut out = Vec::with_capacity(rows.len());
    let mut bad = Vec::new();
    for (id, source, key_field, key_value, params, received_at, until) in rows {
        let params: Result<BTreeMap<String, String>> =
            from_json(&format!("held postback {id}"), &params);
        match params {
            Ok(params) => out.push(HeldPostback {
                id,
                source,
                key_field,
                key_value,
                params,
                received_at,
                until,
            }),
            Err(e) => bad.push((id, source, e.to_string())),
        }
    }
    (out, bad)
}

/// The one line of a contact set aside.
pub(crate) fn log_contact(id: &str, reason: &str) {
    tracing::warn!(
        contact = %id,
        reason = %reason,
        "contact quarantined: its stored state cannot be read; it takes no input and \
         its timers stop until it is repaired"
    );
}

/// The one line of a held postback set aside.
pub(crate) fn log_held(id: i64, source: &str, reason: &str) {
    tracing::warn!(
        postback = id,
        source = %source,
        reason = %reason,
        "held postback quarantined: its stored parameters cannot be read"
    );
}

/// The one line of a contact released.
pub(crate) fn log_released(contact: &str) {
    tracing::info!(contact = %contact, "contact released from quarantine: its state reads again");
}

/// Quarantine records as stored: contact, reason, at, wake time.
pub(crate) type QuarantineRow = (String, String, i64, Option<i64>);

pub(crate) fn records(rows: Vec<QuarantineRow>) -> Vec<Quarantine> {
    rows.into_iter()
        .map(|(contact, reason, at, next_wake)| Quarantine {
            contact,
            reason,
            at,
            next_wake,
        })
        .collect()
}
