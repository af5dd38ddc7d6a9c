-- Variables of each environment, without their values: values live
-- age-encrypted in the secrets directory (one ENV.age file per environment).
CREATE TABLE variables (
    id              TEXT    NOT NULL PRIMARY KEY,
    environment     TEXT    NOT NULL,
    key             TEXT    NOT NULL,
    type            TEXT    NOT NULL,
    scheme          TEXT,
    secret          BOOLEAN NOT NULL,
    platform_synced BOOLEAN NOT NULL,
    synced_at       BIGINT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    rotated_at      BIGINT,
    allow_weak      BOOLEAN NOT NULL,
    UNIQUE (environment, key)
);
