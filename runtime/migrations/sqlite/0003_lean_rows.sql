-- Fewer B-trees on the path of every input and timer.
--
-- Contacts are keyed by id alone (WITHOUT ROWID): one B-tree instead of a
-- rowid table plus the index of its primary key. States are binary now
-- (`store/doc.rs`); rows still holding JSON text are read as before.
CREATE TABLE contacts_lean (
    id         TEXT PRIMARY KEY NOT NULL,
    state      BLOB NOT NULL,
    version    INTEGER NOT NULL,
    next_wake  INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO contacts_lean (id, state, version, next_wake, created_at, updated_at)
    SELECT id, state, version, next_wake, created_at, updated_at FROM contacts;
DROP TABLE contacts;
ALTER TABLE contacts_lean RENAME TO contacts;
CREATE INDEX contacts_next_wake ON contacts (next_wake, id) WHERE next_wake IS NOT NULL;
-- Always empty outside a commit: a write of a stored contact is an upsert
-- whose insert (the contact is gone) carries a negative `created_at`, which
-- this index finds at once so the commit is refused (`sqlite/commit.rs`).
CREATE INDEX contacts_gone ON contacts (id) WHERE created_at < 0;

-- The journal holds one row per contact and commit: `lines` is a JSON array
-- of `[at, flow, step, what]`, oldest first.
CREATE TABLE journal_lean (
    seq     INTEGER PRIMARY KEY,
    contact TEXT NOT NULL,
    lines   TEXT NOT NULL
);
INSERT INTO journal_lean (seq, contact, lines)
    SELECT seq, contact, json_array(json_array(at, flow, step, what)) FROM journal;
DROP TABLE journal;
ALTER TABLE journal_lean RENAME TO journal;
CREATE INDEX journal_contact ON journal (contact, seq);
