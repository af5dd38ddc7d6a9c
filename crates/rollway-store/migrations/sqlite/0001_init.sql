-- Rollway store schema 1 (SQLite). Times are INTEGER milliseconds since the
-- Unix epoch (UTC), ids are TEXT UUIDs, JSON is TEXT in canonical form.
-- The `schema_migrations(version, applied_at)` table is created by the store itself.

-- One row per environment of rollway.toml: its record and lifecycle.
-- `status` repeats the lifecycle's current status for queries; `lifecycle`
-- holds the JSON of every transition with its time.
CREATE TABLE environments (
    id           TEXT    NOT NULL PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    kind         TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    lifecycle    TEXT    NOT NULL,
    domain       TEXT,
    https        INTEGER NOT NULL,
    platform     TEXT    NOT NULL,
    app          TEXT,
    nginx_config TEXT,
    config       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- The audit log: one global append-only sequence. `hash` is the SHA-256 of
-- the event's canonical encoding, which includes `prev_hash`, the hash of
-- the event before (64 zeros for event 1). `data` is canonical JSON text.
CREATE TABLE events (
    seq             INTEGER NOT NULL PRIMARY KEY,
    id              TEXT    NOT NULL UNIQUE,
    at              INTEGER NOT NULL,
    kind            TEXT    NOT NULL,
    level           TEXT    NOT NULL,
    message         TEXT    NOT NULL,
    environment     TEXT,
    deployment_id   TEXT,
    job_id          TEXT,
    pipeline_run_id TEXT,
    service         TEXT,
    trace_id        TEXT,
    operator        TEXT,
    data            TEXT    NOT NULL,
    prev_hash       TEXT    NOT NULL,
    hash            TEXT    NOT NULL
);
CREATE INDEX events_environment ON events (environment, seq);
CREATE INDEX events_deployment ON events (deployment_id, seq);
CREATE INDEX events_kind ON events (kind, seq);

-- The end of the chain, updated with every append: deleting the last events
-- leaves the head pointing past them. Exactly one row, id 1.
CREATE TABLE event_head (
    id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT    NOT NULL,
    at   INTEGER NOT NULL
);
INSERT INTO event_head (id, seq, hash, at) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0);

-- Leases: a lock is free when absent or when expires_at has passed.
CREATE TABLE locks (
    name          TEXT    NOT NULL PRIMARY KEY,
    owner         TEXT    NOT NULL,
    token         TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    deployment_id TEXT,
    acquired_at   INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
