-- Rollway store schema 10 (sqlite): alerts, their trackers, notification
-- deliveries and pushed business metrics (OPERATIONS.md "Alerts"). Times are
-- INTEGER milliseconds since the Unix epoch (UTC). (Number 9 belongs to
-- another change; the runner applies whatever numbers a store lacks, in
-- order, so the gap is harmless.)

-- Seed 002 Monitoring Alert: the model's Alert whole in `doc` (canonical
-- JSON), the query columns beside it agreeing with it.
CREATE TABLE alerts (
    id              TEXT   NOT NULL PRIMARY KEY,
    ord             INTEGER NOT NULL,
    rule            TEXT   NOT NULL,
    subject         TEXT   NOT NULL,
    environment     TEXT   NOT NULL,
    status          TEXT   NOT NULL,
    severity        TEXT   NOT NULL,
    triggered_at    INTEGER NOT NULL,
    acknowledged_at INTEGER,
    acknowledged_by TEXT,
    ack_until       INTEGER,
    resolved_at     INTEGER,
    deployment_id   TEXT,
    version_tag     TEXT,
    note            TEXT,
    doc             TEXT   NOT NULL
);
-- At most one open or acknowledged alert per (rule, subject): the store
-- refuses a second one whatever its callers do.
CREATE UNIQUE INDEX alerts_one_unresolved ON alerts (rule, subject) WHERE status <> 'resolved';
CREATE INDEX alerts_environment ON alerts (environment, triggered_at);

-- What the evaluations so far left behind per (rule, subject): the model's
-- alerting::Tracker as canonical JSON, so a restart resumes it.
CREATE TABLE alert_trackers (
    rule       TEXT   NOT NULL,
    subject    TEXT   NOT NULL,
    tracker    TEXT   NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (rule, subject)
);

-- One row per (alert event, channel). `payload` is the notification
-- (masked); the channel's address is read from rollway.toml and the
-- environment's secrets when it is sent, never stored. A pending row is due
-- at `next_attempt_at`; a sender claims it by moving that ahead by a lease,
-- so a sender killed mid-attempt leaves it due again, same key.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id        TEXT   NOT NULL,
    event           TEXT   NOT NULL,
    channel         TEXT   NOT NULL,
    environment     TEXT   NOT NULL,
    idempotency_key TEXT   NOT NULL UNIQUE,
    payload         TEXT   NOT NULL,
    attempts        INTEGER NOT NULL,
    status          TEXT   NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    answer          TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_alert ON deliveries (alert_id, id);

-- Business metrics pushed with `rollway metric push NAME VALUE`: one value
-- per environment, name and millisecond (a push at the same time replaces).
CREATE TABLE metric_points (
    environment TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    time        INTEGER NOT NULL,
    value       REAL   NOT NULL,
    PRIMARY KEY (environment, name, time)
);
