-- Per-flow counts kept as counters instead of one derived row per
-- enrollment: each commit adds what its contacts' enrollments moved, so a
-- timer or an event writes a few counter rows per group, not one row per
-- enrollment, and `GET /v1/flows` reads a handful of rows whatever the size.
-- `step` is the enrollment's current step (its last one once it ended).
CREATE TABLE flow_counts (
    flow   TEXT NOT NULL,
    status TEXT NOT NULL,
    step   TEXT NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (flow, status, step)
) WITHOUT ROWID;

INSERT INTO flow_counts (flow, status, step, n)
    SELECT flow, status, step, count(*) FROM enrollments GROUP BY flow, status, step;

DROP TABLE enrollments;
