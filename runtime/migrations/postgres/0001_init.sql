-- The Nudge store on PostgreSQL: the schema SQLite reached in its
-- migrations 0001–0008, in one step (`runtime/src/store/postgres.rs`).
-- Times are Unix seconds (BIGINT). sqlx's migrator holds an advisory lock
-- while it runs, so daemons starting together migrate once.

-- One state per contact (`store/doc.rs`: a format tag, then postcard),
-- its version for optimistic concurrency and when the scheduler must
-- wake it. `wake_lease`: until when a scheduler's claim of its due timers
-- holds (0: none); every write of the contact clears it.
CREATE TABLE contacts (
    id         TEXT PRIMARY KEY,
    state      BYTEA NOT NULL,
    version    BIGINT NOT NULL,
    next_wake  BIGINT,
    wake_lease BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX contacts_next_wake ON contacts (next_wake, id) WHERE next_wake IS NOT NULL;
-- States not in the current format (tag 0x02): what `daemon/convert.rs`
-- rewrites at start; empty once every row is converted.
CREATE INDEX contacts_old_format ON contacts (id)
    WHERE substring(state FROM 1 FOR 1) <> '\x02'::bytea;

-- Unique field values (`email`, `phone`, …) → the contact owning them.
CREATE TABLE contact_keys (
    field   TEXT NOT NULL,
    value   TEXT NOT NULL,
    contact TEXT NOT NULL,
    PRIMARY KEY (field, value)
);
CREATE INDEX contact_keys_contact ON contact_keys (contact);

-- Per-flow counters, moved by each commit (`step`: the current step, the
-- last one once the enrollment ended; `version`: the bundle version an
-- active enrollment runs on, '' for ended ones). `shard`: each store
-- process adds to rows of its own (`PgStore`'s counter shard), so that
-- daemons sharing the database never wait for each other's commits on a
-- counter row; readers sum over the shards.
CREATE TABLE flow_counts (
    flow    TEXT NOT NULL,
    version TEXT NOT NULL,
    status  TEXT NOT NULL,
    step    TEXT NOT NULL,
    shard   SMALLINT NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (flow, version, status, step, shard)
);

-- Running totals of rows only ever added (`contacts`, `events`), sharded
-- as the flow counters are.
CREATE TABLE totals (
    name  TEXT NOT NULL,
    shard SMALLINT NOT NULL,
    n     BIGINT NOT NULL,
    PRIMARY KEY (name, shard)
);

CREATE TABLE events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key         TEXT UNIQUE,
    contact     TEXT NOT NULL,
    name        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    received_at BIGINT NOT NULL
);

-- `channel`: the payload's `channel` (`url` for a call to a bare URL),
-- filled at insert, for claims that leave busy channels out. `lease`: the
-- token of the claim holding the row (from `outbox_lease`), 0 if never
-- claimed; every ack must carry it.
CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contact         TEXT NOT NULL,
    flow            TEXT NOT NULL,
    step            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    channel         TEXT NOT NULL,
    payload         TEXT NOT NULL,
    idem_key        TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    lease           BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at, id);
CREATE SEQUENCE outbox_lease;

-- One row per contact and commit: `lines` is a JSON array of
-- `[at, flow, step, what]`, oldest first.
CREATE TABLE journal (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contact TEXT NOT NULL,
    lines   TEXT NOT NULL
);
CREATE INDEX journal_contact ON journal (contact, seq);

CREATE TABLE bundles (
    hash        TEXT PRIMARY KEY,
    bytes       BYTEA NOT NULL,
    deployed_at BIGINT NOT NULL,
    seq         BIGINT GENERATED ALWAYS AS IDENTITY
);

CREATE TABLE flows (
    name   TEXT PRIMARY KEY,
    paused BOOLEAN NOT NULL
);

CREATE TABLE postbacks_held (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      TEXT NOT NULL,
    key_field   TEXT NOT NULL,
    key_value   TEXT NOT NULL,
    params      TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    until       BIGINT NOT NULL,
    quarantined TEXT
);
CREATE INDEX postbacks_held_key ON postbacks_held (key_field, key_value);
CREATE INDEX postbacks_held_until ON postbacks_held (until);
CREATE INDEX postbacks_held_quarantined ON postbacks_held (id) WHERE quarantined IS NOT NULL;

CREATE TABLE postbacks_rejected (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source TEXT NOT NULL,
    params TEXT NOT NULL,
    reason TEXT NOT NULL,
    at     BIGINT NOT NULL
);

-- Postback `dedupe` values, unique per source, dropped after `until`.
CREATE TABLE postback_keys (
    source      TEXT NOT NULL,
    key         TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    until       BIGINT NOT NULL,
    PRIMARY KEY (source, key)
);
CREATE INDEX postback_keys_until ON postback_keys (until);

-- Contacts set aside because their state cannot be read: the wake time
-- they had is kept here, theirs cleared.
CREATE TABLE contacts_quarantined (
    contact   TEXT PRIMARY KEY,
    reason    TEXT NOT NULL,
    at        BIGINT NOT NULL,
    next_wake BIGINT
);

-- One row rewritten by the readiness probe after a failed write.
CREATE TABLE store_probe (
    id BIGINT PRIMARY KEY,
    at BIGINT NOT NULL
);
