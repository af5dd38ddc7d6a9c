-- Rollway store schema 14 (postgres): backups and restore jobs (OPERATIONS.md
-- "Backups and restores"; seed 002 Backup Artifact and Restore Job, seed
-- 003 Backup Records). Times are BIGINT milliseconds since the Unix epoch
-- (UTC). (Numbers 12 and 13 belong to other changes; the runner applies
-- whatever numbers a store lacks, in order, so a gap is harmless.)

-- One backup: the model's Backup whole in `doc` (canonical JSON, its
-- lifecycle replayed through the model's table when read), the query
-- columns beside it agreeing with it. An expired backup keeps its row.
CREATE TABLE backups (
    id            TEXT    NOT NULL PRIMARY KEY,
    ord           BIGINT NOT NULL UNIQUE,
    environment   TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    class         TEXT    NOT NULL,
    location      TEXT    NOT NULL,
    size_bytes    BIGINT NOT NULL,
    sha256        TEXT,
    status        TEXT    NOT NULL,
    restore_point BOOLEAN NOT NULL,
    deployment_id TEXT,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    finished_at   BIGINT,
    doc           TEXT    NOT NULL
);
CREATE INDEX backups_environment_created ON backups (environment, created_at, ord);
CREATE INDEX backups_created ON backups (created_at, ord);

-- One restore job; its backup must exist (seed 002 "backupArtifactId 必须存在").
CREATE TABLE restore_jobs (
    id          TEXT    NOT NULL PRIMARY KEY,
    ord         BIGINT NOT NULL UNIQUE,
    backup_id   TEXT    NOT NULL REFERENCES backups (id),
    environment TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    doc         TEXT    NOT NULL
);
CREATE INDEX restore_jobs_backup ON restore_jobs (backup_id, started_at, ord);
