-- Running totals of rows that are only ever added (contacts, events), moved
-- by each commit, so `/metrics` and `nudge stats` do not count a table on
-- every scrape (a `count(*)` of `contacts`, a WITHOUT ROWID table, reads
-- every state).
CREATE TABLE totals (
    name TEXT PRIMARY KEY NOT NULL,
    n    INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO totals (name, n) VALUES
    ('contacts', (SELECT count(*) FROM contacts)),
    ('events', (SELECT count(*) FROM events));
