-- Poison rows are set aside, not retried forever (issue 10).
--
-- A contact whose stored state cannot be decoded is quarantined: one row
-- here with the reason, and its `next_wake` cleared (kept here), so the
-- scheduler never meets it again and no input applies to it.
CREATE TABLE contacts_quarantined (
    contact   TEXT PRIMARY KEY NOT NULL,
    reason    TEXT NOT NULL,
    at        INTEGER NOT NULL,
    next_wake INTEGER
) WITHOUT ROWID;

-- A held postback whose stored parameters cannot be decoded keeps its row,
-- marked with the reason: never released, never expired, counted.
ALTER TABLE postbacks_held ADD COLUMN quarantined TEXT;
CREATE INDEX postbacks_held_quarantined ON postbacks_held (id) WHERE quarantined IS NOT NULL;

-- One row rewritten by the readiness probe after a failed write: proof
-- that the database takes writes again.
CREATE TABLE store_probe (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL
);
