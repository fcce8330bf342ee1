//! Storage: one interface ([`Store`]), two engines behind it (SQLite in
//! `sqlite.rs`, PostgreSQL in `postgres.rs`), sharing what is not SQL
//! (`rows.rs`: what a commit writes; `health.rs`: write health;
//! `quarantine.rs`: poison rows). The daemon reads contact states, runs the
//! pure engine in memory, then writes everything an input produced — contact
//! state, event record, outbox rows, journal — in ONE transaction
//! ([`Store::commit`]). Many inputs go into one commit under load (group
//! commit); a contact's `version` guards against a concurrent writer.
//!
//! INVARIANT: an event is acknowledged only after the commit that records it
//! returned; its idempotency key is unique, so it applies at most once. A
//! postback's `dedupe` value is unique per source the same way.

pub mod copy;
pub mod doc;
mod health;
pub mod postgres;
mod quarantine;
pub mod reach;
mod rows;
pub mod sqlite;

use crate::engine::{ContactState, JournalLine};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Why a store operation failed. Each variant keeps its cause; no
/// message carries an SQL parameter value.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed (retryable at a higher level).
    #[error("database error: {0}")]
    Db(#[source] sqlx::Error),
    /// The database could not be opened.
    #[error("cannot open `{url}`: {source}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    /// The schema could not be migrated.
    #[error("migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A database URL this build does not take.
    #[error("{0}")]
    Unsupported(String),
    /// A contact changed since it was read, or a unique key is taken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Stored data holds a value that cannot be (an unknown status…).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// Stored data could not be decoded.
    #[error("corrupt data: {what}: {source}")]
    Decode {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A value could not be encoded for storing.
    #[error("cannot store {what}: {source}")]
    Encode {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The contact's stored state cannot be read: it is set aside
    /// (quarantined) and takes no input.
    #[error("contact `{contact}` is quarantined: {reason}")]
    Quarantined { contact: String, reason: String },
    /// Writes fail (a full disk…): the last one failed for this reason.
    #[error("the database takes no writes: {0}")]
    Unwritable(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A contact state with the version it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    pub state: ContactState,
    pub version: i64,
    /// The wake time stored with it (paused flows left out when written).
    pub next_wake: Option<i64>,
}

/// A contact to write.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactWrite {
    pub state: ContactState,
    /// The version it was read at; `None` for a new contact.
    pub expected_version: Option<i64>,
    /// Its unique keys (`field`, `value`), replacing the stored ones.
    pub keys: Vec<(String, String)>,
    /// When the scheduler must wake it (paused flows left out).
    pub next_wake: Option<i64>,
    /// What the stored version held, as the caller read it; `None` makes
    /// the store read it again (see [`Loaded`]).
    pub loaded: Option<Loaded>,
}

/// What a contact's stored version held when the caller read it: its
/// unique keys and the place of each enrollment. With `expected_version`
/// matching, it is exactly what is stored, so the store writes only the
/// differences (keys moved, counts moved) without reading the row again.
/// For a new contact it is ignored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Loaded {
    pub keys: Vec<(String, String)>,
    pub places: Vec<Place>,
}

/// Where one enrollment stands, as counted in [`FlowCounts`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Place {
    pub flow: String,
    /// The bundle version an active enrollment runs on; `""` for an ended
    /// one (kept or folded), so ended counts do not grow per version.
    pub version: String,
    pub status: &'static str,
    pub step: String,
    /// How many enrollments stand there (more than 1 for folded ones).
    pub n: i64,
}

impl Loaded {
    /// What `state` holds, with its unique `keys`.
    pub fn of(state: &ContactState, keys: Vec<(String, String)>) -> Loaded {
        Loaded {
            keys,
            places: places(state),
        }
    }
}

/// The place of each enrollment of a state, folded ones included.
pub fn places(state: &ContactState) -> Vec<Place> {
    place_keys(state)
        .map(|(k, n)| Place {
            flow: k.flow.to_string(),
            version: k.version.to_string(),
            status: k.status,
            step: k.step.to_string(),
            n,
        })
        .collect()
}

/// Where enrollments stand, borrowed from a state (see [`Place`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlaceKey<'a> {
    pub flow: &'a str,
    pub version: &'a str,
    pub status: &'static str,
    pub step: &'a str,
}

impl Place {
    pub fn key(&self) -> PlaceKey<'_> {
        PlaceKey {
            flow: &self.flow,
            version: &self.version,
            status: self.status,
            step: &self.step,
        }
    }
}

/// [`places`] without copying: each place and its count.
pub fn place_keys(state: &ContactState) -> impl Iterator<Item = (PlaceKey<'_>, i64)> {
    let kept = state.enrollments.iter().map(|e| {
        let version = if e.is_active() {
            e.version.as_str()
        } else {
            ""
        };
        (e.flow.as_str(), version, e.status, e.step.as_str(), 1)
    });
    let folded = state
        .folded
        .iter()
        .map(|f| (f.flow.as_str(), "", f.status, f.step.as_str(), f.n));
    kept.chain(folded).map(|(flow, version, status, step, n)| {
        let key = PlaceKey {
            flow,
            version,
            status: status.name(),
            step,
        };
        (key, n)
    })
}

/// An event as received (for the record and idempotency).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// The idempotency key; unique when given.
    pub key: Option<String>,
    pub contact: String,
    pub name: String,
    pub payload: serde_json::Value,
    pub received_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutboxKind {
    Message,
    Call,
}

/// What [`Store::outbox_requeue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// The dead row is pending again.
    Pending,
    /// The row exists but is not a dead letter (pending or delivered).
    NotDead,
    /// No row has this id.
    Missing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutboxStatus {
    Pending,
    Delivered,
    Dead,
}

impl OutboxStatus {
    pub fn name(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Delivered => "delivered",
            OutboxStatus::Dead => "dead",
        }
    }

    pub fn from_name(s: &str) -> Option<OutboxStatus> {
        match s {
            "pending" => Some(OutboxStatus::Pending),
            "delivered" => Some(OutboxStatus::Delivered),
            "dead" => Some(OutboxStatus::Dead),
            _ => None,
        }
    }
}

/// A new effect to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOutbox {
    pub contact: String,
    pub flow: String,
    pub step: String,
    pub kind: OutboxKind,
    /// The `vm::Message` or `vm::Request`, as JSON.
    pub payload: JsonText,
    /// Stable across retries and re-applications: a second row with the same
    /// key is ignored.
    pub idem_key: String,
    /// Not before this instant (send windows).
    pub not_before: i64,
}

/// JSON text, serialised once where the value is made (the applier, off
/// the writer's path) and written as it is.
#[derive(Debug, Clone)]
pub struct JsonText(Box<serde_json::value::RawValue>);

impl JsonText {
    pub fn of<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<JsonText> {
        serde_json::value::to_raw_value(value).map(JsonText)
    }

    pub fn as_str(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for JsonText {
    fn eq(&self, other: &JsonText) -> bool {
        self.as_str() == other.as_str()
    }
}

/// A stored outbox row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub contact: String,
    pub flow: String,
    pub step: String,
    pub kind: OutboxKind,
    pub payload: serde_json::Value,
    pub idem_key: String,
    pub status: OutboxStatus,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    /// The token of the claim that holds (or last held) the row: what an
    /// ack must carry ([`Lease`]).
    #[serde(skip)]
    pub lease: i64,
}

impl OutboxRow {
    /// The fence an ack of this claimed row carries.
    pub fn fence(&self) -> Lease {
        Lease {
            id: self.id,
            token: self.lease,
        }
    }
}

/// A claimed outbox row and the token of its claim. An ack applies only
/// while the row still carries that token: once its lease expired and
/// another claim took it over, the first holder's ack changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lease {
    pub id: i64,
    pub token: i64,
}

/// What one delivery attempt of an outbox row came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Delivered,
    /// Try again at this instant.
    Retry {
        at: i64,
        error: String,
    },
    /// Give up (dead letter).
    Dead {
        error: String,
    },
    /// Not attempted (its channel's rate or share of the worker is used
    /// up): pending again from this instant, no attempt counted.
    Defer {
        at: i64,
    },
}

/// An attempt of a claimed row, fenced by its claim's token.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    pub lease: Lease,
    pub attempt: Attempt,
}

/// A postback kept because its contact does not exist yet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeldPostback {
    pub id: i64,
    pub source: String,
    pub key_field: String,
    pub key_value: String,
    pub params: BTreeMap<String, String>,
    pub received_at: i64,
    pub until: i64,
}

/// A postback's `dedupe` value, recorded with the postback's effect (or its
/// holding): unique per source, so a retry is told apart once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PostbackKey {
    pub source: String,
    pub key: String,
    pub received_at: i64,
    /// Kept until this instant (see [`Store::expire_postback_keys`]).
    pub until: i64,
}

/// Everything one group of inputs wrote; applied in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Commit {
    pub contacts: Vec<ContactWrite>,
    pub events: Vec<EventRecord>,
    pub outbox: Vec<NewOutbox>,
    /// (contact id, line)
    pub journal: Vec<(String, JournalLine)>,
    /// Held postbacks now applied (deleted).
    pub released: Vec<i64>,
    /// New held postbacks (their `id` is ignored: the store assigns one).
    pub held: Vec<HeldPostback>,
    /// Postbacks refused and kept for inspection: (source, params, reason, at).
    pub rejected: Vec<(String, BTreeMap<String, String>, String, i64)>,
    /// `dedupe` values of the postbacks applied or held; one recorded
    /// before (or given twice) fails the commit with a conflict.
    pub postback_keys: Vec<PostbackKey>,
    /// Outbox attempts settled with this commit (a `call … as NAME` row with
    /// the response it gave): one whose lease was lost fails the commit
    /// with a conflict.
    pub acks: Vec<Ack>,
    /// Unique keys (field, value) whose held postbacks this commit read
    /// and released, as held at the instant given: an engine shared by
    /// several daemons (Postgres) refuses the commit with a conflict when
    /// one was held meanwhile by another daemon, and likewise a new held
    /// postback whose key has an owner by the time it commits, so that no
    /// postback stays held for a contact that exists.
    pub release_checked: Vec<(String, String, i64)>,
}

/// Per-flow counts for `GET /v1/flows` and `nudge stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FlowCounts {
    pub flow: String,
    /// Enrollments in the contacts' states, ever (folded ones included).
    pub enrolled: i64,
    pub active: i64,
    pub completed: i64,
    pub exited: i64,
    pub converted: i64,
    pub failed: i64,
    /// Active enrollments per step.
    pub steps: BTreeMap<String, i64>,
    /// Active enrollments per bundle version, and per step within it.
    pub versions: BTreeMap<String, BTreeMap<String, i64>>,
}

/// Totals for `/metrics` and `nudge stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    pub contacts: i64,
    pub events: i64,
    pub outbox_pending: i64,
    pub outbox_dead: i64,
    pub outbox_delivered: i64,
    /// Contacts with a wake time at or before `now`.
    pub due: i64,
    /// Contacts set aside because their state cannot be read.
    pub quarantined_contacts: i64,
    /// Held postbacks set aside because their parameters cannot be read.
    pub quarantined_postbacks: i64,
}

/// A contact set aside because its stored state cannot be read
/// (see [`Store::load_contacts`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quarantine {
    pub contact: String,
    /// Why its state cannot be read (no stored value in it).
    pub reason: String,
    /// When it was set aside (wall clock).
    pub at: i64,
    /// The wake time it had, cleared when it was set aside.
    pub next_wake: Option<i64>,
}

/// What [`Store::release_quarantine`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// Its state reads again: released, its wake time back.
    Released,
    /// Its state still cannot be read, for this reason: kept.
    Unreadable(String),
    /// It is not quarantined (or does not exist).
    NotQuarantined,
}

/// Whether writes go through (see [`Store::write_health`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WriteHealth {
    /// Why the last write failed; `None` while writes go through.
    pub failing: Option<String>,
    /// Writes failed since the store was opened (conflicts not counted).
    pub failures: u64,
}

/// The storage interface; object-safe (`Arc<dyn Store>`).
#[async_trait]
pub trait Store: Send + Sync {
    /// Create or upgrade the schema (migrations ship in the binary).
    async fn migrate(&self) -> Result<()>;

    // ---- contacts and events
    /// The stored contacts among `ids`, in that order; unknown ids are left
    /// out. A state that cannot be decoded is quarantined (marked with the
    /// reason, its wake time cleared, logged once) and the call fails with
    /// [`StoreError::Quarantined`] naming it.
    async fn load_contacts(&self, ids: &[String]) -> Result<Vec<Versioned>>;
    /// The contact owning a unique key.
    async fn find_contact(&self, field: &str, value: &str) -> Result<Option<String>>;
    /// The contacts owning these values of one unique field, in one read:
    /// value → contact id; a value no contact owns is left out (the
    /// applier's lookup of a group's keys).
    async fn find_contacts(
        &self,
        field: &str,
        values: &[String],
    ) -> Result<std::collections::HashMap<String, String>>;
    /// [`Store::held_for`] of many keys (field, value) in one read: the
    /// held postbacks waiting for any of them, oldest first.
    async fn held_for_keys(&self, keys: &[(String, String)]) -> Result<Vec<HeldPostback>>;
    /// Which of these idempotency keys were recorded before.
    async fn seen_events(&self, keys: &[String]) -> Result<BTreeSet<String>>;
    /// Which of these postback `dedupe` values (source, value) were
    /// recorded before.
    async fn seen_postbacks(&self, keys: &[(String, String)])
    -> Result<BTreeSet<(String, String)>>;
    /// Write one group of inputs atomically. A contact whose version moved,
    /// or a unique key owned by another contact, fails the whole commit with
    /// [`StoreError::Conflict`]; a duplicate event key or postback `dedupe`
    /// value likewise.
    async fn commit(&self, c: &Commit) -> Result<()>;

    // ---- the scheduler
    /// Contacts due at `now`, earliest first (uses the index on wake times).
    async fn due_contacts(&self, now: i64, limit: usize) -> Result<Vec<String>>;
    /// A page of the contacts due at `now`, in (wake time, id) order after
    /// `after` (exclusive), with their wake times and states: the scheduler
    /// walks the due set with it, so the pages it has in flight are never
    /// read again, and hands the states to the applier with the timers.
    /// A state that cannot be decoded is quarantined and left out, so it
    /// never holds up the contacts behind it. An engine shared by several
    /// daemons (Postgres) claims the page: its contacts are left out of
    /// every page (this store's and others') until they are written or the
    /// claim's lease ends.
    async fn due_after(
        &self,
        now: i64,
        after: Option<(i64, &str)>,
        limit: usize,
    ) -> Result<Vec<(i64, Versioned)>>;
    /// How long a claim of [`Store::due_after`] holds, in the caller's
    /// seconds; `None` for an engine that does not claim (SQLite: one
    /// daemon per file).
    fn due_lease(&self) -> Option<i64> {
        None
    }
    /// Extends the claims of due contacts still held (claimed and not
    /// written since) to `lease_until`: the scheduler renews the pages
    /// waiting in the applier's queue, so a slow applier keeps its timers.
    async fn renew_due(&self, ids: &[String], lease_until: i64) -> Result<()> {
        let _ = (ids, lease_until);
        Ok(())
    }
    /// The earliest wake time of any contact.
    async fn next_wake(&self) -> Result<Option<i64>>;
    /// Contact ids after `after`, in id order, `limit` at most: a page of a
    /// walk over every contact (done only when a deploy adds time triggers
    /// or schedules, and when a paused flow resumes).
    async fn contact_ids(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>>;
    /// A page of the contacts whose stored state is not in the current
    /// format ([`doc`]: tag `0x01` or JSON rows of earlier versions), in id
    /// order after `after` (exclusive), `limit` at most, with the version
    /// each was read at; quarantined contacts are left out. Found by the
    /// format tag alone, on an index of the older rows, so it decodes
    /// nothing and costs nothing once every row is converted.
    async fn old_format_contacts(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, i64)>>;

    // ---- the outbox
    /// Claim up to `limit` pending rows due at `now`: their
    /// `next_attempt_at` moves to `lease_until` so no other worker takes
    /// them, and each carries this claim's new token ([`OutboxRow::lease`]).
    async fn claim_outbox(
        &self,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRow>> {
        self.claim_outbox_except(now, lease_until, limit, &[]).await
    }
    /// [`Store::claim_outbox`], leaving out the rows of the channels in
    /// `skip` (by the payload's `channel`; `url` for a call to a bare URL):
    /// the worker's way of keeping one channel to its share of deliveries.
    async fn claim_outbox_except(
        &self,
        now: i64,
        lease_until: i64,
        limit: usize,
        skip: &[String],
    ) -> Result<Vec<OutboxRow>>;
    /// Mark a claimed row delivered (counts the attempt); false when its
    /// lease was lost (the token moved) or it is settled.
    async fn outbox_delivered(&self, lease: Lease) -> Result<bool> {
        let acks = [Ack {
            lease,
            attempt: Attempt::Delivered,
        }];
        Ok(self.outbox_record(&acks).await?.is_empty())
    }
    /// Count an attempt and reschedule a claimed row (fenced likewise).
    async fn outbox_retry(&self, lease: Lease, at: i64, error: &str) -> Result<bool> {
        let error = error.to_string();
        let acks = [Ack {
            lease,
            attempt: Attempt::Retry { at, error },
        }];
        Ok(self.outbox_record(&acks).await?.is_empty())
    }
    /// Count an attempt and give up on a claimed row (dead letter; fenced).
    async fn outbox_dead(&self, lease: Lease, error: &str) -> Result<bool> {
        let error = error.to_string();
        let acks = [Ack {
            lease,
            attempt: Attempt::Dead { error },
        }];
        Ok(self.outbox_record(&acks).await?.is_empty())
    }
    /// Record many acks in one transaction (each as
    /// [`Store::outbox_delivered`], [`Store::outbox_retry`] or
    /// [`Store::outbox_dead`] would; a `Defer` reschedules without counting
    /// an attempt). Gives the leases that were lost: those acks changed
    /// nothing.
    async fn outbox_record(&self, acks: &[Ack]) -> Result<Vec<Lease>>;
    /// Extend the lease of rows still held to `lease_until` (a long
    /// delivery); gives the leases that were lost.
    async fn outbox_renew(&self, leases: &[Lease], lease_until: i64) -> Result<Vec<Lease>>;
    /// Rows by id (oldest first), of one status or all.
    async fn outbox_list(
        &self,
        status: Option<OutboxStatus>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>>;
    /// Put a dead row back to pending (attempts reset), or say why not.
    async fn outbox_requeue(&self, id: i64, now: i64) -> Result<Requeue>;

    // ---- journey, bundles, flows, postbacks, totals
    /// The contact's last `limit` journal lines, oldest first.
    async fn journal(&self, contact: &str, limit: usize) -> Result<Vec<JournalLine>>;
    /// Store a bundle by hash. A known hash gets the new bytes (the same
    /// version: only source lines can differ, see `Bundle::hash`) and its
    /// deploy time moves to `now`, so it is the latest again.
    async fn put_bundle(&self, hash: &str, bytes: &[u8], now: i64) -> Result<()>;
    async fn get_bundle(&self, hash: &str) -> Result<Option<Vec<u8>>>;
    /// The bundle deployed last (hash, bytes): what the CLI's database
    /// commands run with.
    async fn latest_bundle(&self) -> Result<Option<(String, Vec<u8>)>>;
    /// Every stored bundle's hash and deploy time, the latest first.
    async fn bundles(&self) -> Result<Vec<(String, i64)>>;
    async fn set_paused(&self, flow: &str, paused: bool) -> Result<()>;
    async fn paused(&self) -> Result<BTreeSet<String>>;
    async fn flow_counts(&self) -> Result<Vec<FlowCounts>>;
    /// Held postbacks waiting for this key. One whose stored parameters
    /// cannot be decoded is quarantined (kept, marked with the reason,
    /// never released or expired) and left out.
    async fn held_for(&self, key_field: &str, key_value: &str) -> Result<Vec<HeldPostback>>;
    /// Drop held postbacks whose `until` is before `now` (a postback is
    /// still held at `until`); returns how many.
    async fn expire_held(&self, now: i64) -> Result<u64>;
    /// Forget postback `dedupe` values whose `until` is before `now`;
    /// returns how many.
    async fn expire_postback_keys(&self, now: i64) -> Result<u64>;
    /// The last `limit` refused postbacks, oldest first.
    async fn rejected_postbacks(
        &self,
        limit: usize,
    ) -> Result<Vec<(String, BTreeMap<String, String>, String, i64)>>;
    async fn totals(&self, now: i64) -> Result<Totals>;

    // ---- quarantine and health
    /// The quarantined contacts, oldest first, `limit` at most.
    async fn quarantined(&self, limit: usize) -> Result<Vec<Quarantine>>;
    /// The quarantine record of one contact.
    async fn quarantine_of(&self, contact: &str) -> Result<Option<Quarantine>>;
    /// Takes a repaired contact out of quarantine: if its state reads
    /// now, the mark goes and the wake time it had comes back.
    async fn release_quarantine(&self, contact: &str) -> Result<Release>;
    /// Ready for inputs: reads answer and writes go through. After a write
    /// failed, [`StoreError::Unwritable`] until a write succeeds again (a
    /// probe write is tried when the failure is a few seconds old).
    async fn ready(&self, now: i64) -> Result<()>;
    /// The outcome of the last writes, without touching the database.
    fn write_health(&self) -> WriteHealth;
}

/// Open the store a URL names: `sqlite://FILE` (created if missing),
/// `sqlite::memory:`, or `postgres://…` / `postgresql://…` (the database
/// must exist; [`postgres::PgOptions`] defaults). The schema is migrated
/// before it is returned.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    open_with(url, &postgres::PgOptions::default()).await
}

/// [`open`] with the settings of a Postgres store (ignored for SQLite).
pub async fn open_with(url: &str, pg: &postgres::PgOptions) -> Result<std::sync::Arc<dyn Store>> {
    let store: std::sync::Arc<dyn Store> = if url.starts_with("sqlite:") {
        std::sync::Arc::new(sqlite::SqliteStore::open(url).await?)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        std::sync::Arc::new(postgres::PgStore::open_with(url, pg).await?)
    } else {
        return Err(StoreError::Unsupported(format!(
            "`{}` is not a database URL nudge knows (use `sqlite://FILE` or `postgres://…`)",
            postgres::redacted(url)
        )));
    };
    store.migrate().await?;
    Ok(store)
}
