-- Rollway store schema 11 (SQLite): seed 002 Log Records (OPERATIONS.md
-- "Log records"), the service output `rollway serve` collects from each
-- host through its agent. Times are INTEGER milliseconds since the Unix epoch
-- (UTC). (Numbers 9 and 10 belong to other changes; the runner applies
-- whatever numbers a store lacks, in order, so a gap is harmless.)

-- One row per line of output: `time` is the line's own when it carries
-- one, else when it was collected; `id` orders lines of one time in the
-- order they were written. `message` and `trace_id` are masked.
CREATE TABLE log_records (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    environment  TEXT   NOT NULL,
    host         TEXT   NOT NULL,
    service      TEXT   NOT NULL,
    level        TEXT   NOT NULL,
    message      TEXT   NOT NULL,
    trace_id     TEXT,
    time         INTEGER NOT NULL,
    collected_at INTEGER NOT NULL
);
CREATE INDEX log_records_environment_time ON log_records (environment, time, id);
CREATE INDEX log_records_trace_id ON log_records (trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX log_records_collected_at ON log_records (collected_at);

-- Where collection of one service's output on one host stands: the
-- engine's LogCursor as JSON, written in the transaction that stores the
-- lines read up to it, so a crash neither loses a line nor stores one twice.
CREATE TABLE log_cursors (
    environment TEXT   NOT NULL,
    host        TEXT   NOT NULL,
    service     TEXT   NOT NULL,
    cursor      TEXT   NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (environment, host, service)
);
