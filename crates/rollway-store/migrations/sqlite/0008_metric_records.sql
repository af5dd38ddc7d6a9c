-- Rollway store schema 8 (SQLite): seed 003 Monitoring Data records
-- (OPERATIONS.md "The seed 003 numbers, exactly"): the seed 003 numbers
-- kept in the seed's shape per environment, metric type and source (the
-- monitor). Times are INTEGER milliseconds since the Unix epoch (UTC).
-- (Number 7 belongs to another change; the runner applies whatever
-- numbers a store lacks, in order, so the gap is harmless.)

-- One row per environment, metric type, source and `slot`: the window's
-- start for the types that keep a record per window (error_rate per UTC
-- hour, uptime per month), 0 for those replaced as the window rolls on
-- (health_check: the latest status; performance: the 5-minute rolling
-- average). A rewrite of the same window keeps its metric_id.
CREATE TABLE metric_records (
    metric_id          TEXT   NOT NULL PRIMARY KEY,
    environment        TEXT   NOT NULL,
    metric_type        TEXT   NOT NULL,
    source             TEXT   NOT NULL,
    slot               INTEGER NOT NULL,
    metric_value       REAL NOT NULL,
    unit               TEXT   NOT NULL,
    threshold_warning  REAL NOT NULL,
    threshold_critical REAL NOT NULL,
    status             TEXT   NOT NULL,
    timestamp          INTEGER NOT NULL,
    window_start       INTEGER NOT NULL,
    UNIQUE (environment, metric_type, source, slot)
);
