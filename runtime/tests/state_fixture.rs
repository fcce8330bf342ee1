//! Frozen contact-state bytes: a stored state never changes meaning silently.
//!
//! `tests/fixtures/contact_state_v2.hex` holds the bytes `store::doc::encode`
//! gives for [`representative_v2`] under tag `0x02` (postcard, which is
//! positional: adding, removing or reordering a field anywhere inside
//! `ContactState` changes the bytes). The test checks both directions:
//! the stored bytes decode to the state built here, and encoding that state
//! today gives the stored bytes. If either fails, a state written by an
//! earlier build would be read wrongly: give the new layout a new tag in
//! `runtime/src/store/doc.rs`, keep a reader for the old tags, and add a
//! fixture for the new tag beside these.
//!
//! `tests/fixtures/contact_state_v1.hex` is frozen: the bytes of
//! [`representative`] under tag `0x01`, written by earlier builds. It is
//! never blessed again; it must keep decoding to the same state (with no
//! folded counts, which format 1 did not have).
//!
//! Bless (rewrite the current tag's hex file from [`representative_v2`])
//! with one command, only together with a new tag or when the state built
//! here changed:
//!
//!     NUDGE_BLESS=1 cargo test -p nudge-runtime --test state_fixture
//!
//! (or both stored-format fixtures at once:
//! `NUDGE_BLESS=1 cargo test -p nudge-compiler -p nudge-runtime --test bundle_fixture --test state_fixture`).

use nudge_compiler::value::Value;
use nudge_runtime::compact::Folded;
use nudge_runtime::engine::{ContactState, TimeTrigger};
use nudge_runtime::store::doc::{decode, encode};
use nudge_runtime::vm::{Contact, Enrollment, EventValue, PendingWait, Status};
use std::collections::BTreeMap;
use std::path::PathBuf;

const BLESS: &str = "NUDGE_BLESS=1 cargo test -p nudge-runtime --test state_fixture";

fn fixture(tag: u8) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/contact_state_v{tag}.hex"))
}

fn blessing() -> bool {
    std::env::var("NUDGE_BLESS").is_ok_and(|v| v == "1")
}

fn map(entries: &[(&str, Value)]) -> BTreeMap<String, Value> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// A state with a value of every kind, an active enrollment waiting on
/// timers and a call, a finished and a failed one, event counts, sends,
/// time triggers and schedules.
fn representative() -> ContactState {
    let contact = Contact {
        id: "ann".into(),
        fields: map(&[
            ("email", Value::text("ann@shop.example")),
            ("score", Value::Int(-3)),
            ("spent", Value::Decimal(12.5)),
            ("vip", Value::Bool(true)),
            ("created_at", Value::Time(1_767_225_600)),
            ("birthday", Value::Date(20_000)),
            ("trial", Value::Duration(1_209_600)),
            ("visits", Value::List(vec![Value::Time(1), Value::Time(2)])),
            ("tags", Value::Set(vec![Value::text("a"), Value::text("b")])),
            ("extra", Value::Map(map(&[("k", Value::Null)]))),
        ]),
    };
    let sale = EventValue {
        name: "sale".into(),
        fields: map(&[("amount", Value::Decimal(50.0))]),
        at: 1_767_229_200,
        nth: 2,
    };
    let waiting = Enrollment {
        flow: "onboarding".into(),
        version: "ab".repeat(32),
        pc: 14,
        status: Status::Active,
        step: "nurture".into(),
        entered_at: 1_767_225_600,
        event: Some(sale),
        locals: map(&[(
            "lead",
            Value::Map(map(&[
                ("status", Value::Int(201)),
                ("json", Value::Map(map(&[("id", Value::text("L-1"))]))),
            ])),
        )]),
        wait: Some(PendingWait {
            pc: 14,
            timers: vec![(1_767_484_800, 20), (1_768_089_600, 31)],
            call: Some("lead".into()),
        }),
        holdout: false,
        failure: None,
    };
    let done = Enrollment {
        flow: "vip".into(),
        version: "cd".repeat(32),
        pc: 9,
        status: Status::Completed,
        step: "welcome".into(),
        entered_at: 1_767_200_000,
        event: None,
        locals: BTreeMap::new(),
        wait: None,
        holdout: true,
        failure: None,
    };
    let failed = Enrollment {
        status: Status::Failed,
        failure: Some("division by zero at line 12".into()),
        ..done.clone()
    };
    ContactState {
        contact,
        enrollments: vec![done, failed, waiting],
        event_counts: BTreeMap::from([("sale".to_string(), 2), ("signup".to_string(), 1)]),
        sent: BTreeMap::from([("email".to_string(), vec![1_767_225_600, 1_767_229_200])]),
        time_triggers: BTreeMap::from([
            (
                "timed#0".to_string(),
                TimeTrigger {
                    at: 1_768_435_200,
                    fired: false,
                },
            ),
            (
                "timed#1".to_string(),
                TimeTrigger {
                    at: 1_767_000_000,
                    fired: true,
                },
            ),
        ]),
        schedules: BTreeMap::from([("daily#0".to_string(), 1_767_340_800)]),
        folded: Vec::new(),
    }
}

/// [`representative`] with folded enrollment counts (format 2).
fn representative_v2() -> ContactState {
    let mut st = representative();
    st.folded = vec![
        Folded {
            flow: "vip".into(),
            status: Status::Completed,
            step: "welcome".into(),
            n: 3,
        },
        Folded {
            flow: "onboarding".into(),
            status: Status::Converted,
            step: "nurture".into(),
            n: 1,
        },
    ];
    st
}

fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::new();
    for line in bytes.chunks(32) {
        for b in line {
            out.push_str(&format!("{b:02x}"));
        }
        out.push('\n');
    }
    out
}

fn from_hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).expect("ascii hex");
            u8::from_str_radix(pair, 16).expect("hex digits")
        })
        .collect()
}

fn read_fixture(tag: u8) -> Vec<u8> {
    let path = fixture(tag);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; create it with `{BLESS}`", path.display()));
    let stored = from_hex(&text);
    assert_eq!(
        stored.first(),
        Some(&tag),
        "the fixture is a tag {tag:#04x} state"
    );
    stored
}

#[test]
fn stored_contact_states_keep_their_meaning() {
    let state = representative_v2();
    let now = encode(&state).expect("the state encodes");
    if blessing() {
        std::fs::write(fixture(2), to_hex(&now)).expect("write the fixture");
        return;
    }
    let stored = read_fixture(2);
    let decoded = decode("ann", &stored).unwrap_or_else(|e| {
        panic!(
            "stored tag 0x02 states no longer decode ({e}): the layout of ContactState changed; \
             give the new layout a new tag in runtime/src/store/doc.rs with a reader for 0x02"
        )
    });
    assert_eq!(
        decoded, state,
        "stored tag 0x02 bytes now decode to a different state: the layout of ContactState \
         changed; give the new layout a new tag in runtime/src/store/doc.rs with a reader for 0x02"
    );
    assert!(
        now == stored,
        "encoding the same state gives different bytes under tag 0x02: the tag must move (a new \
         tag in runtime/src/store/doc.rs, with a reader for the old one); bless with `{BLESS}` \
         only together with that change"
    );
}

#[test]
fn format_1_states_of_earlier_builds_still_read() {
    let stored = read_fixture(1);
    let decoded = decode("ann", &stored)
        .unwrap_or_else(|e| panic!("tag 0x01 states no longer decode ({e}): keep their reader"));
    assert_eq!(decoded, representative(), "tag 0x01 bytes changed meaning");
    let again = encode(&decoded).expect("the state encodes");
    assert_eq!(again.first(), Some(&0x02), "read as 0x01, written as 0x02");
    assert_eq!(decode("ann", &again).expect("decodes"), decoded);
}

#[test]
fn hex_round_trips() {
    let bytes = vec![0x00, 0x01, 0x7f, 0xff];
    assert_eq!(from_hex(&to_hex(&bytes)), bytes);
}
