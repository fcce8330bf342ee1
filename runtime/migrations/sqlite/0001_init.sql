-- The Nudge store on SQLite (RUNTIME.md §4). Times are Unix seconds.

-- One JSON document per contact (`ContactState`), with its version for
-- optimistic concurrency and the instant the scheduler must wake it.
CREATE TABLE contacts (
    id         TEXT PRIMARY KEY NOT NULL,
    state      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    next_wake  INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX contacts_next_wake ON contacts (next_wake, id) WHERE next_wake IS NOT NULL;

-- Unique field values (`email`, `phone`, …) → the contact owning them.
CREATE TABLE contact_keys (
    field   TEXT NOT NULL,
    value   TEXT NOT NULL,
    contact TEXT NOT NULL,
    PRIMARY KEY (field, value)
) WITHOUT ROWID;
CREATE INDEX contact_keys_contact ON contact_keys (contact);

-- Derived from the contact states at each commit: one row per enrollment,
-- `seq` its position in the state's list.
CREATE TABLE enrollments (
    contact    TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    flow       TEXT NOT NULL,
    status     TEXT NOT NULL,
    step       TEXT NOT NULL,
    version    TEXT NOT NULL,
    entered_at INTEGER NOT NULL,
    wake_at    INTEGER,
    PRIMARY KEY (contact, seq)
) WITHOUT ROWID;
CREATE INDEX enrollments_flow ON enrollments (flow, status, step);

CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    key         TEXT UNIQUE,
    contact     TEXT NOT NULL,
    name        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    received_at INTEGER NOT NULL
);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    contact         TEXT NOT NULL,
    flow            TEXT NOT NULL,
    step            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    idem_key        TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at, id);

CREATE TABLE journal (
    seq     INTEGER PRIMARY KEY,
    contact TEXT NOT NULL,
    at      INTEGER NOT NULL,
    flow    TEXT NOT NULL,
    step    TEXT NOT NULL,
    what    TEXT NOT NULL
);
CREATE INDEX journal_contact ON journal (contact, seq);

CREATE TABLE bundles (
    hash        TEXT PRIMARY KEY NOT NULL,
    bytes       BLOB NOT NULL,
    deployed_at INTEGER NOT NULL
);

CREATE TABLE flows (
    name   TEXT PRIMARY KEY NOT NULL,
    paused INTEGER NOT NULL
);

CREATE TABLE postbacks_held (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    key_field   TEXT NOT NULL,
    key_value   TEXT NOT NULL,
    params      TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    until       INTEGER NOT NULL
);
CREATE INDEX postbacks_held_key ON postbacks_held (key_field, key_value);
CREATE INDEX postbacks_held_until ON postbacks_held (until);

CREATE TABLE postbacks_rejected (
    id     INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    params TEXT NOT NULL,
    reason TEXT NOT NULL,
    at     INTEGER NOT NULL
);
