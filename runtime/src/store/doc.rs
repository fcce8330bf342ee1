//! How a contact state is stored: a one-byte format tag, then the
//! [`ContactState`] in postcard (compact, about half the size of JSON and
//! several times faster to read and write; a state is read and written on
//! every input and timer). `nudge contact show` and `GET /v1/contacts/{id}`
//! give the JSON view.
//!
//! Formats: tag `0x02` (written) adds the folded enrollment counts of
//! [`crate::compact`]; tag `0x01` states and rows written as JSON text by
//! earlier versions (both without them) are still read, through
//! `StateV1`. They are rewritten as `0x02`, compacted, by the daemon's
//! conversion pass at start (`daemon/convert.rs`, in the background: it
//! finds them by the tag byte, on the index `contacts_old_format` of each
//! engine, so it decodes nothing once done), or by their next input if that
//! comes first. A new tag moves that index's condition in a migration of its own
//! and keeps a reader for the tags before it.
//!
//! INVARIANT: the types inside `ContactState` carry no serde attributes
//! that need a self-describing format (`skip_serializing_if`, `flatten`,
//! `untagged`); adding a field to one of them changes the format, so it
//! comes with a new tag and a reader for the old one.

use super::{Result, StoreError};
use crate::engine::{ContactState, TimeTrigger};
use crate::vm::{Contact, Enrollment};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The tag of postcard-encoded states, format 1 (read only).
const POSTCARD_V1: u8 = 0x01;
/// The tag of postcard-encoded states, format 2: format 1 + `folded`.
const POSTCARD_V2: u8 = 0x02;

/// The layout of format 1 (and of JSON rows): `ContactState` before
/// `folded`.
#[derive(Deserialize)]
struct StateV1 {
    contact: Contact,
    enrollments: Vec<Enrollment>,
    event_counts: BTreeMap<String, i64>,
    sent: BTreeMap<String, Vec<i64>>,
    time_triggers: BTreeMap<String, TimeTrigger>,
    schedules: BTreeMap<String, i64>,
}

impl From<StateV1> for ContactState {
    fn from(v: StateV1) -> ContactState {
        ContactState {
            contact: v.contact,
            enrollments: v.enrollments,
            event_counts: v.event_counts,
            sent: v.sent,
            time_triggers: v.time_triggers,
            schedules: v.schedules,
            folded: Vec::new(),
        }
    }
}

/// A state as stored.
pub fn encode(state: &ContactState) -> Result<Vec<u8>> {
    let out = vec![POSTCARD_V2];
    postcard::to_extend(state, out).map_err(|e| StoreError::Encode {
        what: format!("the state of contact `{}`", state.contact.id),
        source: Box::new(e),
    })
}

/// A stored state (of contact `id`, for errors).
pub fn decode(id: &str, bytes: &[u8]) -> Result<ContactState> {
    let corrupt = |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Decode {
        what: format!("contact `{id}`"),
        source: e,
    };
    match bytes.first() {
        Some(&POSTCARD_V2) => postcard::from_bytes(&bytes[1..]).map_err(|e| corrupt(Box::new(e))),
        Some(&POSTCARD_V1) => postcard::from_bytes::<StateV1>(&bytes[1..])
            .map(ContactState::from)
            .map_err(|e| corrupt(Box::new(e))),
        Some(b'{') => serde_json::from_slice::<StateV1>(bytes)
            .map(ContactState::from)
            .map_err(|e| corrupt(Box::new(e))),
        Some(tag) => Err(corrupt(format!("unknown state format {tag:#04x}").into())),
        None => Err(corrupt("empty state".into())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::vm::Contact;
    use nudge_compiler::value::Value;
    use std::collections::BTreeMap;

    fn sample() -> ContactState {
        let mut st = ContactState::new(Contact {
            id: "ann".into(),
            fields: BTreeMap::from([
                ("email".to_string(), Value::text("ann@x.test")),
                ("score".to_string(), Value::Decimal(2.5)),
                ("tags".to_string(), Value::Set(Default::default())),
            ]),
        });
        st.event_counts.insert("signup".into(), 2);
        st.schedules.insert("f#0".into(), 1_800_000_000);
        st
    }

    #[test]
    fn states_round_trip_and_shrink() {
        let st = sample();
        let bytes = encode(&st).unwrap();
        assert_eq!(bytes[0], POSTCARD_V2);
        assert_eq!(decode("ann", &bytes).unwrap(), st);
        assert!(bytes.len() < serde_json::to_vec(&st).unwrap().len());
    }

    #[test]
    fn json_states_of_earlier_versions_are_read() {
        let st = sample();
        let json = serde_json::to_vec(&st).unwrap();
        assert_eq!(decode("ann", &json).unwrap(), st);
    }

    #[test]
    fn damaged_states_are_errors_naming_the_contact() {
        for bad in [
            &b""[..],
            &[0x07, 1, 2][..],
            &[POSTCARD_V1, 0xff][..],
            &[POSTCARD_V2, 0xff][..],
        ] {
            let e = decode("ann", bad).unwrap_err().to_string();
            assert!(e.contains("contact `ann`"), "{e}");
        }
    }
}
