-- Postback deduplication (LANGUAGE.md A5): the `dedupe` value of every
-- postback applied or held, per source, written in the same transaction as
-- its effect. The primary key refuses a value seen before, so a retry is
-- told apart exactly once; rows are dropped after `until`.
CREATE TABLE postback_keys (
    source      TEXT NOT NULL,
    key         TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    until       INTEGER NOT NULL,
    PRIMARY KEY (source, key)
) WITHOUT ROWID;
CREATE INDEX postback_keys_until ON postback_keys (until);
