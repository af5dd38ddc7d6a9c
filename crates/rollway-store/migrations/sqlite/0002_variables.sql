-- Variables of each environment, without their values: values live
-- age-encrypted in the secrets directory (one ENV.age file per environment).
CREATE TABLE variables (
    id              TEXT    NOT NULL PRIMARY KEY,
    environment     TEXT    NOT NULL,
    key             TEXT    NOT NULL,
    type            TEXT    NOT NULL,
    scheme          TEXT,
    secret          INTEGER NOT NULL,
    platform_synced INTEGER NOT NULL,
    synced_at       INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    rotated_at      INTEGER,
    allow_weak      INTEGER NOT NULL,
    UNIQUE (environment, key)
);
