-- Rollway store schema 5 (SQLite): monitors, their probe samples and the
-- rollups of those samples at 1 minute, 1 hour and 1 day (OPERATIONS.md
-- "Samples and rollups"). Times are INTEGER milliseconds since the Unix
-- epoch (UTC).

-- One row per monitor ever synced. `id` is what samples and rollups refer
-- to (an integer, so a sample row does not repeat the name). The rollups
-- cover [rolled_from, rolled_until): every bucket inside carries its full
-- downtime / maintenance / no-data terms, and a bucket without a row there
-- had no data. `coverage_ms` is how long one sample speaks for (interval
-- plus grace): time further than that from every sample is no data.
CREATE TABLE monitors (
    id           INTEGER NOT NULL PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    environment  TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    target       TEXT    NOT NULL,
    interval_ms  INTEGER NOT NULL,
    coverage_ms  INTEGER NOT NULL,
    config       TEXT    NOT NULL,
    paused       INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    rolled_from  INTEGER,
    rolled_until INTEGER
);
CREATE INDEX monitors_environment ON monitors (environment, name);

-- Raw samples, clustered by monitor and slot (WITHOUT ROWID: the key is the
-- row, which keeps a range read of one monitor sequential and the file
-- small). A slot is recorded at most once. `lag_ms` is the actual start
-- minus the slot. `rolled` is 1 once the sample is counted in the rollups.
CREATE TABLE samples (
    monitor_id   INTEGER NOT NULL REFERENCES monitors (id),
    slot         INTEGER NOT NULL,
    lag_ms       INTEGER NOT NULL,
    outcome      TEXT    NOT NULL,
    http_status  INTEGER,
    latency_ms   INTEGER,
    cache_status TEXT,
    location     TEXT,
    error        TEXT,
    rolled       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (monitor_id, slot)
) WITHOUT ROWID;
-- Only the few samples not yet rolled up: what each rollup run looks for.
CREATE INDEX samples_unrolled ON samples (monitor_id, slot) WHERE rolled = 0;

-- Rollups: `bucket` is the start of the minute, hour or day (UTC). The
-- sketch is the model's latency sketch as text (see db/monitoring.rs).
CREATE TABLE rollups_minute (
    monitor_id     INTEGER NOT NULL REFERENCES monitors (id),
    bucket         INTEGER NOT NULL,
    ok             INTEGER NOT NULL,
    error          INTEGER NOT NULL,
    unavailable    INTEGER NOT NULL,
    status_5xx     INTEGER NOT NULL,
    latency_count  INTEGER NOT NULL,
    latency_sum_ms REAL    NOT NULL,
    latency_min_ms REAL,
    latency_max_ms REAL,
    sketch         TEXT    NOT NULL,
    downtime_ms    INTEGER NOT NULL,
    maintenance_ms INTEGER NOT NULL,
    no_data_ms     INTEGER NOT NULL,
    PRIMARY KEY (monitor_id, bucket)
) WITHOUT ROWID;

CREATE TABLE rollups_hour (
    monitor_id     INTEGER NOT NULL REFERENCES monitors (id),
    bucket         INTEGER NOT NULL,
    ok             INTEGER NOT NULL,
    error          INTEGER NOT NULL,
    unavailable    INTEGER NOT NULL,
    status_5xx     INTEGER NOT NULL,
    latency_count  INTEGER NOT NULL,
    latency_sum_ms REAL    NOT NULL,
    latency_min_ms REAL,
    latency_max_ms REAL,
    sketch         TEXT    NOT NULL,
    downtime_ms    INTEGER NOT NULL,
    maintenance_ms INTEGER NOT NULL,
    no_data_ms     INTEGER NOT NULL,
    PRIMARY KEY (monitor_id, bucket)
) WITHOUT ROWID;

CREATE TABLE rollups_day (
    monitor_id     INTEGER NOT NULL REFERENCES monitors (id),
    bucket         INTEGER NOT NULL,
    ok             INTEGER NOT NULL,
    error          INTEGER NOT NULL,
    unavailable    INTEGER NOT NULL,
    status_5xx     INTEGER NOT NULL,
    latency_count  INTEGER NOT NULL,
    latency_sum_ms REAL    NOT NULL,
    latency_min_ms REAL,
    latency_max_ms REAL,
    sketch         TEXT    NOT NULL,
    downtime_ms    INTEGER NOT NULL,
    maintenance_ms INTEGER NOT NULL,
    no_data_ms     INTEGER NOT NULL,
    PRIMARY KEY (monitor_id, bucket)
) WITHOUT ROWID;
