-- Rollway store schema 15 (PostgreSQL): rollup rows of ~9 MB per monitor
-- and year at 10 s instead of ~12 (OPERATIONS.md "Samples and rollups";
-- measured with `scripts/bench uptime`). SQLite's schema 15 changes nothing.
--
-- * The bucket is whole minutes, hours or days since the epoch (per
--   table), not milliseconds, so it and the monitor id are INTEGER: the
--   key is 8 bytes instead of 16, in the row and in its index entry.
--   Minutes fit an INTEGER until the year 6053.
-- * A count, a time term or a latency sum that is zero, and an empty
--   sketch, is NULL: a bit of the null bitmap instead of 4 or 8 bytes.
--   The store writes NULL for zero and reads NULL as zero, so every sum
--   stays exact.
-- * The sketch is BYTEA, packed 7 bits a byte (a marker byte first) where
--   text packed 5 bits a character; the text of older rows is kept as its
--   bytes and still read.
-- * Columns go widest first (the doubles, then the integers), so no
--   padding is needed between them.
--
-- Bucket starts are whole minutes, hours and days, so the divisions are
-- exact; a bucket outside INTEGER fails the migration instead of being cut.

CREATE TABLE rollups_minute_v15 (
    latency_sum_ms DOUBLE PRECISION,
    latency_min_ms DOUBLE PRECISION,
    latency_max_ms DOUBLE PRECISION,
    monitor_id     INTEGER NOT NULL REFERENCES monitors (id),
    bucket         INTEGER NOT NULL,
    ok             INTEGER,
    error          INTEGER,
    unavailable    INTEGER,
    status_5xx     INTEGER,
    latency_count  INTEGER,
    downtime_ms    INTEGER,
    maintenance_ms INTEGER,
    no_data_ms     INTEGER,
    sketch         BYTEA,
    PRIMARY KEY (monitor_id, bucket)
);
CREATE TABLE rollups_hour_v15 (LIKE rollups_minute_v15 INCLUDING ALL);
ALTER TABLE rollups_hour_v15 ADD FOREIGN KEY (monitor_id) REFERENCES monitors (id);
CREATE TABLE rollups_day_v15 (LIKE rollups_minute_v15 INCLUDING ALL);
ALTER TABLE rollups_day_v15 ADD FOREIGN KEY (monitor_id) REFERENCES monitors (id);

INSERT INTO rollups_minute_v15 (latency_sum_ms, latency_min_ms, latency_max_ms, monitor_id, bucket, ok, error,
        unavailable, status_5xx, latency_count, downtime_ms, maintenance_ms, no_data_ms, sketch)
    SELECT NULLIF(latency_sum_ms, 0), latency_min_ms, latency_max_ms, monitor_id, bucket / 60000, NULLIF(ok, 0),
        NULLIF(error, 0), NULLIF(unavailable, 0), NULLIF(status_5xx, 0), NULLIF(latency_count, 0),
        NULLIF(downtime_ms, 0), NULLIF(maintenance_ms, 0), NULLIF(no_data_ms, 0),
        NULLIF(convert_to(sketch, 'UTF8'), ''::bytea)
    FROM rollups_minute ORDER BY monitor_id, bucket;
INSERT INTO rollups_hour_v15 (latency_sum_ms, latency_min_ms, latency_max_ms, monitor_id, bucket, ok, error,
        unavailable, status_5xx, latency_count, downtime_ms, maintenance_ms, no_data_ms, sketch)
    SELECT NULLIF(latency_sum_ms, 0), latency_min_ms, latency_max_ms, monitor_id, bucket / 3600000, NULLIF(ok, 0),
        NULLIF(error, 0), NULLIF(unavailable, 0), NULLIF(status_5xx, 0), NULLIF(latency_count, 0),
        NULLIF(downtime_ms, 0), NULLIF(maintenance_ms, 0), NULLIF(no_data_ms, 0),
        NULLIF(convert_to(sketch, 'UTF8'), ''::bytea)
    FROM rollups_hour ORDER BY monitor_id, bucket;
INSERT INTO rollups_day_v15 (latency_sum_ms, latency_min_ms, latency_max_ms, monitor_id, bucket, ok, error,
        unavailable, status_5xx, latency_count, downtime_ms, maintenance_ms, no_data_ms, sketch)
    SELECT NULLIF(latency_sum_ms, 0), latency_min_ms, latency_max_ms, monitor_id, bucket / 86400000, NULLIF(ok, 0),
        NULLIF(error, 0), NULLIF(unavailable, 0), NULLIF(status_5xx, 0), NULLIF(latency_count, 0),
        NULLIF(downtime_ms, 0), NULLIF(maintenance_ms, 0), NULLIF(no_data_ms, 0),
        NULLIF(convert_to(sketch, 'UTF8'), ''::bytea)
    FROM rollups_day ORDER BY monitor_id, bucket;

DROP TABLE rollups_minute;
DROP TABLE rollups_hour;
DROP TABLE rollups_day;
ALTER TABLE rollups_minute_v15 RENAME TO rollups_minute;
ALTER TABLE rollups_hour_v15 RENAME TO rollups_hour;
ALTER TABLE rollups_day_v15 RENAME TO rollups_day;
ALTER INDEX rollups_minute_v15_pkey RENAME TO rollups_minute_pkey;
ALTER INDEX rollups_hour_v15_pkey RENAME TO rollups_hour_pkey;
ALTER INDEX rollups_day_v15_pkey RENAME TO rollups_day_pkey;
ALTER TABLE rollups_minute RENAME CONSTRAINT rollups_minute_v15_monitor_id_fkey TO rollups_minute_monitor_id_fkey;
ALTER TABLE rollups_hour RENAME CONSTRAINT rollups_hour_v15_monitor_id_fkey TO rollups_hour_monitor_id_fkey;
ALTER TABLE rollups_day RENAME CONSTRAINT rollups_day_v15_monitor_id_fkey TO rollups_day_monitor_id_fkey;
