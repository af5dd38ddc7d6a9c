-- Rollway store schema 12 (SQLite): which samples are not yet rolled up is
-- a row of `samples_unrolled`, not a flag updated in `samples` — the same
-- layout as PostgreSQL's schema 12, where an updated row is written twice
-- until vacuum takes the old version back. (13 and 14 belong to other
-- changes; the runner applies whatever numbers a store lacks, in order.)
-- SQLite's integers already take only the bytes their value needs, so the
-- rollups are unchanged.

DROP INDEX samples_unrolled;

-- The samples not yet counted in the rollups: few, each deleted by the
-- roll-up that counts it.
CREATE TABLE samples_unrolled (
    monitor_id INTEGER NOT NULL,
    slot       INTEGER NOT NULL,
    PRIMARY KEY (monitor_id, slot)
) WITHOUT ROWID;
INSERT INTO samples_unrolled (monitor_id, slot) SELECT monitor_id, slot FROM samples WHERE rolled = 0;

ALTER TABLE samples DROP COLUMN rolled;
