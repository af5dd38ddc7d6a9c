-- Rollway store schema 6 (SQLite): maintenance windows (OPERATIONS.md "The
-- seed 003 numbers, exactly") and how far back a monitor's minute rollups
-- are kept. Times are INTEGER milliseconds since the Unix epoch (UTC).

-- One row per window: a one-off `[start_at, end_at)` (kind 'once') or a cron
-- expression read in the environment's time zone plus a duration (kind
-- 'cron'); for a whole environment (`monitor` NULL) or one monitor. The
-- uptime arithmetic applies them at query time to the minute rollups.
CREATE TABLE maintenance_windows (
    id          INTEGER NOT NULL PRIMARY KEY,
    environment TEXT    NOT NULL,
    monitor     TEXT,
    kind        TEXT    NOT NULL,
    start_at    INTEGER,
    end_at      INTEGER,
    cron        TEXT,
    duration_ms INTEGER,
    note        TEXT,
    created_at  INTEGER NOT NULL,
    operator    TEXT    NOT NULL
);
CREATE INDEX maintenance_windows_environment ON maintenance_windows (environment, id);

-- Minute rollups before `minutes_from` were deleted by retention (kept 35
-- days): there only hours and days remain, with the maintenance seconds
-- they were stored with. NULL: none deleted yet.
ALTER TABLE monitors ADD COLUMN minutes_from INTEGER;
