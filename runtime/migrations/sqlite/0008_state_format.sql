-- The contacts whose stored state is not in the current format (tag 0x02,
-- `runtime/src/store/doc.rs`): tag 0x01 and JSON rows of earlier versions.
-- The daemon's conversion pass (`daemon/convert.rs`) walks this partial
-- index at start and rewrites each row in the current format; once every
-- row is converted the index is empty, so the pass costs one empty index
-- look per start and decodes nothing. A new tag replaces this index in a
-- migration of its own.
CREATE INDEX contacts_old_format ON contacts (id)
    WHERE substr(CAST(state AS BLOB), 1, 1) IS NOT X'02';
