-- Per-flow counters keyed by bundle version too, so `GET /v1/flows` shows
-- how many contacts are active on each deployed version without reading a
-- state. `version` is the version an active enrollment runs on and `''` for
-- ended ones (their counts do not grow per version).
--
-- The old counters do not say which version an active enrollment is on:
-- they are given the latest deployed bundle's here, and the store rebuilds
-- the active rows from the stored states right after this migration ran
-- (`store/sqlite/recount.rs`); ended counts are exact as copied.
CREATE TABLE flow_counts_v (
    flow    TEXT NOT NULL,
    version TEXT NOT NULL,
    status  TEXT NOT NULL,
    step    TEXT NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (flow, version, status, step)
) WITHOUT ROWID;

INSERT INTO flow_counts_v (flow, version, status, step, n)
    SELECT flow,
           CASE WHEN status = 'active' THEN
               COALESCE((SELECT hash FROM bundles ORDER BY deployed_at DESC, rowid DESC LIMIT 1), '')
           ELSE '' END,
           status, step, n
    FROM flow_counts WHERE n != 0;

DROP TABLE flow_counts;
ALTER TABLE flow_counts_v RENAME TO flow_counts;
