-- Rollway store schema 12 (PostgreSQL): smaller monitoring rows, the data
-- kept (OPERATIONS.md "Samples and rollups": the size per monitor per year
-- is measured; `scripts/bench uptime`). (13 and 14 belong to other changes;
-- the runner applies whatever numbers a store lacks, in order.)
--
-- Which samples are not yet rolled up is a row of `samples_unrolled`, not a
-- flag updated in `samples`: an update writes a second version of the row
-- (and of its index entries) that only vacuum takes back, which doubled the
-- raw samples' size. Samples are now written once and deleted by retention.
--
-- The rollups' counts and time terms are INTEGER: a bucket is at most a
-- day, so its milliseconds (86,400,000) and its samples (one per
-- millisecond slot) fit. Columns go widest first, so no padding is needed
-- between them.

DROP INDEX samples_unrolled;

CREATE TABLE samples_compact (
    monitor_id   BIGINT  NOT NULL REFERENCES monitors (id),
    slot         BIGINT  NOT NULL,
    lag_ms       BIGINT  NOT NULL,
    latency_ms   BIGINT,
    http_status  INTEGER,
    outcome      TEXT    NOT NULL,
    cache_status TEXT,
    location     TEXT,
    error        TEXT,
    PRIMARY KEY (monitor_id, slot)
);
INSERT INTO samples_compact (monitor_id, slot, lag_ms, latency_ms, http_status, outcome, cache_status, location, error)
    SELECT monitor_id, slot, lag_ms, latency_ms, CAST(http_status AS INTEGER), outcome, cache_status, location, error
    FROM samples;

-- The samples not yet counted in the rollups: few, each deleted by the
-- roll-up that counts it.
CREATE TABLE samples_unrolled (
    monitor_id BIGINT NOT NULL,
    slot       BIGINT NOT NULL,
    PRIMARY KEY (monitor_id, slot)
);
INSERT INTO samples_unrolled (monitor_id, slot) SELECT monitor_id, slot FROM samples WHERE rolled = 0;

DROP TABLE samples;
ALTER TABLE samples_compact RENAME TO samples;
ALTER INDEX samples_compact_pkey RENAME TO samples_pkey;
ALTER TABLE samples RENAME CONSTRAINT samples_compact_monitor_id_fkey TO samples_monitor_id_fkey;

CREATE TABLE rollups_minute_compact (
    monitor_id     BIGINT  NOT NULL REFERENCES monitors (id),
    bucket         BIGINT  NOT NULL,
    latency_sum_ms DOUBLE PRECISION NOT NULL,
    latency_min_ms DOUBLE PRECISION,
    latency_max_ms DOUBLE PRECISION,
    ok             INTEGER NOT NULL,
    error          INTEGER NOT NULL,
    unavailable    INTEGER NOT NULL,
    status_5xx     INTEGER NOT NULL,
    latency_count  INTEGER NOT NULL,
    downtime_ms    INTEGER NOT NULL,
    maintenance_ms INTEGER NOT NULL,
    no_data_ms     INTEGER NOT NULL,
    sketch         TEXT    NOT NULL,
    PRIMARY KEY (monitor_id, bucket)
);
CREATE TABLE rollups_hour_compact (LIKE rollups_minute_compact INCLUDING ALL);
ALTER TABLE rollups_hour_compact ADD FOREIGN KEY (monitor_id) REFERENCES monitors (id);
CREATE TABLE rollups_day_compact (LIKE rollups_minute_compact INCLUDING ALL);
ALTER TABLE rollups_day_compact ADD FOREIGN KEY (monitor_id) REFERENCES monitors (id);

INSERT INTO rollups_minute_compact (monitor_id, bucket, latency_sum_ms, latency_min_ms, latency_max_ms, ok, error,
        unavailable, status_5xx, latency_count, downtime_ms, maintenance_ms, no_data_ms, sketch)
    SELECT monitor_id, bucket, latency_sum_ms, latency_min_ms, latency_max_ms, ok, error,
        unavailable, status_5xx, latency_count, downtime_ms, maintenance_ms, no_data_ms, sketch
    FROM rollups_minute;
INSERT INTO rollups_hour_compact (monitor_id, bucket, latency_sum_ms, latency_min_ms, latency_max_ms, ok, error,
        unavailable, status_5xx, latency_count, downtime_ms, maintenance_ms, no_data_ms, sketch)
    SELECT monitor_id, bucket, latency_sum_ms, latency_min_ms, latency_max_ms, ok, error,
        unavailable, status_5xx, latency_count, downtime_ms, maintenance_ms, no_data_ms, sketch
    FROM rollups_hour;
INSERT INTO rollups_day_compact (monitor_id, bucket, latency_sum_ms, latency_min_ms, latency_max_ms, ok, error,
        unavailable, status_5xx, latency_count, downtime_ms, maintenance_ms, no_data_ms, sketch)
    SELECT monitor_id, bucket, latency_sum_ms, latency_min_ms, latency_max_ms, ok, error,
        unavailable, status_5xx, latency_count, downtime_ms, maintenance_ms, no_data_ms, sketch
    FROM rollups_day;

DROP TABLE rollups_minute;
DROP TABLE rollups_hour;
DROP TABLE rollups_day;
ALTER TABLE rollups_minute_compact RENAME TO rollups_minute;
ALTER TABLE rollups_hour_compact RENAME TO rollups_hour;
ALTER TABLE rollups_day_compact RENAME TO rollups_day;
ALTER INDEX rollups_minute_compact_pkey RENAME TO rollups_minute_pkey;
ALTER INDEX rollups_hour_compact_pkey RENAME TO rollups_hour_pkey;
ALTER INDEX rollups_day_compact_pkey RENAME TO rollups_day_pkey;
ALTER TABLE rollups_minute RENAME CONSTRAINT rollups_minute_compact_monitor_id_fkey TO rollups_minute_monitor_id_fkey;
ALTER TABLE rollups_hour RENAME CONSTRAINT rollups_hour_compact_monitor_id_fkey TO rollups_hour_monitor_id_fkey;
ALTER TABLE rollups_day RENAME CONSTRAINT rollups_day_compact_monitor_id_fkey TO rollups_day_monitor_id_fkey;
