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
//! folded counts, which format 1 did not have). The daemon converts such
//! rows at start, with no input ([`the_daemon_converts_older_stored_states_at_start`]).
//!
//! Bless (rewrite the current tag's hex file from [`representative_v2`])
//! with one command, only together with a new tag or when the state built
//! here changed:
//!
//!     NUDGE_BLESS=1 cargo test -p nudge-runtime --test state_fixture
//!
//! (or both stored-format fixtures at once:
//! `NUDGE_BLESS=1 cargo test -p nudge-compiler -p nudge-runtime --test bundle_fixture --test state_fixture`).

#![allow(clippy::unwrap_used)]

mod daemon_kit;
mod vm_support;

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

/// The project the conversion test runs: a capped channel (so the state
/// keeps the sends of the last day) and no flow of the fixture's.
const CONVERT_SRC: &str = r#"
contact { email: email? }
event ping {}
channel mail: smtp { host = "127.0.0.1" from = "a@b.example" cap = 3 per 1 day }
template t: email { subject = "hi" text = "x" }
flow f { when ping  step s { send mail t } }
"#;

/// The frozen tag `0x01` bytes with another contact id (postcard: a
/// length byte, then the id, right after the tag).
fn v1_with_id(fixture: &[u8], id: &str) -> Vec<u8> {
    assert_eq!(&fixture[1..5], b"\x03ann", "the fixture starts with its id");
    assert!(id.len() < 128, "one length byte");
    let mut out = vec![0x01, id.len() as u8];
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(&fixture[5..]);
    out
}

/// Rows (id, state) written as an earlier build would have: no keys, no
/// flow counts (none of them moves), version 1.
async fn insert_rows(pool: &sqlx::SqlitePool, rows: &[(String, Vec<u8>)], wake: Option<i64>) {
    let mut tx = pool.begin().await.expect("begin");
    for (id, state) in rows {
        sqlx::query(
            "INSERT INTO contacts (id, state, version, next_wake, created_at, updated_at) \
             VALUES (?, ?, 1, ?, 0, 0)",
        )
        .bind(id)
        .bind(state)
        .bind(wake)
        .execute(&mut *tx)
        .await
        .expect("insert a contact row");
    }
    tx.commit().await.expect("commit");
}

/// (id, format tag, version) of every stored contact.
async fn stored_tags(pool: &sqlx::SqlitePool) -> Vec<(String, Option<u8>, i64)> {
    let rows: Vec<(String, Vec<u8>, i64)> =
        sqlx::query_as("SELECT id, CAST(state AS BLOB), version FROM contacts ORDER BY id")
            .fetch_all(pool)
            .await
            .expect("read the rows");
    rows.into_iter()
        .map(|(id, state, v)| (id, state.first().copied(), v))
        .collect()
}

/// Wait (polling `/metrics`) until the daemon counted `n` conversions.
async fn conversions_reach(addr: std::net::SocketAddr, n: u64) {
    let want = format!("\nnudge_state_conversions_total {n}\n");
    daemon_kit::metrics_until(addr, |m| m.contains(&want)).await;
}

/// The one-shot migration: rows an earlier build stored (the frozen tag
/// `0x01` fixture, under many ids, more than a page of the pass; a JSON
/// row) are rewritten as `0x02`, compacted, by the daemon at start with no
/// input sent; each reads as before (fields, enrollments, the pending
/// wait, its wake time). A current row and a damaged one are left alone,
/// and the next start converts only a row added since.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_converts_older_stored_states_at_start() {
    use nudge_runtime::daemon::ManualClock;
    let dir = daemon_kit::Scratch::new("state-convert-start");
    let store = nudge_runtime::store::open(&dir.db_url()).await.unwrap();
    let pool = sqlx::SqlitePool::connect(&dir.db_url()).await.unwrap();
    let frozen = read_fixture(1);
    let old = representative();
    let wake = old.next_wake();
    let mut rows: Vec<(String, Vec<u8>)> = (0..2_100)
        .map(|i| {
            let id = format!("c{i:05}");
            (id.clone(), v1_with_id(&frozen, &id))
        })
        .collect();
    rows.push(("ann".into(), frozen.clone()));
    let mut json = old.clone();
    json.contact.id = "json".into();
    rows.push(("json".into(), serde_json::to_vec(&json).unwrap()));
    let mut current = old.clone();
    current.contact.id = "now".into();
    rows.push(("now".into(), encode(&current).unwrap()));
    rows.push(("poison".into(), vec![0x07, 0xff]));
    insert_rows(&pool, &rows, wake).await;
    let old_rows = store.old_format_contacts(None, 5_000).await.unwrap();
    assert_eq!(
        old_rows.len(),
        2_100 + 3,
        "tag 0x01, JSON and the damaged row"
    );
    assert!(old_rows.iter().all(|(id, v)| id != "now" && *v == 1));

    // before every wake time of the fixture: no timer fires meanwhile
    let now = 1_767_268_800; // 2026-01-01T12:00:00Z
    assert!(wake.is_some_and(|w| w > now));
    let clock = ManualClock::new(now);
    let bundle = vm_support::bundle(CONVERT_SRC);
    let (running, store) =
        daemon_kit::start(&dir.db_url(), bundle.clone(), &clock, BTreeMap::new()).await;
    conversions_reach(running.addr, 2_100 + 2).await;
    running.shutdown().await;

    for (id, tag, version) in stored_tags(&pool).await {
        match id.as_str() {
            "poison" => assert_eq!((tag, version), (Some(0x07), 1), "left as it was"),
            "now" => assert_eq!((tag, version), (Some(0x02), 1), "not written again"),
            _ => assert_eq!((tag, version), (Some(0x02), 2), "{id} converted once"),
        }
    }
    assert!(store.quarantine_of("poison").await.unwrap().is_some());
    let mut compacted = old.clone();
    nudge_runtime::compact::compact(&mut compacted, now, Some(86_400));
    for id in ["ann", "c02099", "json"] {
        let got = store.load_contacts(&[id.to_string()]).await.unwrap();
        let (st, mut want) = (&got[0].state, compacted.clone());
        want.contact.id = id.into();
        assert_eq!(st.contact.fields, old.contact.fields, "{id}: fields");
        assert_eq!(st.active("onboarding"), old.active("onboarding"), "{id}");
        assert!(st.active("onboarding").is_some_and(|e| e.wait.is_some()));
        assert_eq!(st.sent, old.sent, "{id}: the sends of the cap window");
        assert_eq!(*st, want, "{id}: compacted in the same write");
        assert_eq!(got[0].next_wake, wake, "{id}: the same wake time");
    }
    assert_eq!(
        compacted.folded.len(),
        1,
        "the finished `vip` enrollment folded"
    );
    assert!(
        store
            .old_format_contacts(None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // the next start: only a row added since is converted
    insert_rows(&pool, &[("late".into(), v1_with_id(&frozen, "late"))], wake).await;
    let (running, _) = daemon_kit::start(&dir.db_url(), bundle, &clock, BTreeMap::new()).await;
    conversions_reach(running.addr, 1).await;
    running.shutdown().await;
    let versions: Vec<i64> = stored_tags(&pool).await.into_iter().map(|r| r.2).collect();
    assert_eq!(versions.iter().filter(|v| **v == 2).count(), 2_100 + 3);
    pool.close().await;
}
