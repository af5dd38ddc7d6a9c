-- Rollway store schema 7 (PostgreSQL): shard leases, so several `rollway
-- serve` instances on one store share the monitors (OPERATIONS.md
-- "`rollway serve`"). Times are BIGINT milliseconds since the Unix epoch.

-- The instances sharing the shards: each renews its row with its leases,
-- so the live ones (`expires_at` ahead) are counted for the fair share.
-- A stopping instance deletes its row; a killed one's is deleted once
-- expired.
CREATE TABLE shard_owners (
    owner      TEXT   NOT NULL PRIMARY KEY,
    started_at BIGINT NOT NULL,
    renewed_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- One row per shard (0 … shards - 1), made on the first claim. Free when
-- `owner` is NULL or `expires_at` has passed; `released_at` says the owner
-- gave it back (a graceful stop, or a share grown too large), not that it
-- expired. `acquired_at` is the taking: its holder probes slots from then.
CREATE TABLE shard_leases (
    shard       BIGINT NOT NULL PRIMARY KEY,
    owner       TEXT,
    acquired_at BIGINT NOT NULL,
    renewed_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    released_at BIGINT
);
CREATE INDEX shard_leases_owner ON shard_leases (owner);
