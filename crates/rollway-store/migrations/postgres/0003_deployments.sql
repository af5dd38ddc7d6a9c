-- Rollway store schema 3 (PostgreSQL): artifacts, deployments with their
-- verifications, pipeline runs with their jobs, stacks with their resources.
--
-- Each row keeps the whole entity as canonical JSON text in `doc`: the doc is
-- the source of truth, and reading it replays the entity's lifecycle through
-- the model's transition table. The other columns repeat the fields people
-- query on; the store checks on every read that they still agree with the
-- doc. Times are BIGINT milliseconds since the Unix epoch (UTC). `ord` is
-- the insertion order, the tie-breaker between rows written in the same
-- millisecond.

-- Packed, checksummed releases. Several records may share a digest.
CREATE TABLE artifacts (
    id             TEXT    NOT NULL PRIMARY KEY,
    ord            BIGINT  NOT NULL UNIQUE,
    kind           TEXT    NOT NULL,
    sha256         TEXT    NOT NULL,
    content_digest TEXT    NOT NULL,
    size_bytes     BIGINT  NOT NULL,
    source_version TEXT,
    branch         TEXT,
    job_id         TEXT,
    built_at       BIGINT  NOT NULL,
    created_at     BIGINT  NOT NULL,
    expires_at     BIGINT  NOT NULL,
    doc            TEXT    NOT NULL
);
CREATE INDEX artifacts_sha256 ON artifacts (sha256);
CREATE INDEX artifacts_content_digest ON artifacts (content_digest);
CREATE INDEX artifacts_created ON artifacts (created_at, ord);

-- Deployments and manual rollbacks. `status` is the lifecycle's current status.
CREATE TABLE deployments (
    id              TEXT    NOT NULL PRIMARY KEY,
    ord             BIGINT  NOT NULL UNIQUE,
    kind            TEXT    NOT NULL,
    environment     TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    operator        TEXT    NOT NULL,
    artifact_id     TEXT,
    version_tag     TEXT,
    commit_sha      TEXT,
    branch          TEXT,
    rollback_to     TEXT,
    rollback_target BOOLEAN NOT NULL,
    started_at      BIGINT  NOT NULL,
    finished_at     BIGINT,
    doc             TEXT    NOT NULL
);
CREATE INDEX deployments_environment ON deployments (environment, started_at, ord);
CREATE INDEX deployments_status ON deployments (status, environment);

-- The health verification of a deployment, with one result per host in `doc`.
CREATE TABLE verifications (
    id             TEXT    NOT NULL PRIMARY KEY,
    ord            BIGINT  NOT NULL UNIQUE,
    deployment_id  TEXT    NOT NULL REFERENCES deployments (id),
    result         TEXT,
    window_ends_at BIGINT,
    doc            TEXT    NOT NULL
);
CREATE INDEX verifications_deployment ON verifications (deployment_id, ord);

-- Pipeline runs; `created_at` is when the run was made (pending),
-- `started_at` when it began running, `finished_at` when it ended.
CREATE TABLE pipeline_runs (
    id           TEXT    NOT NULL PRIMARY KEY,
    ord          BIGINT  NOT NULL UNIQUE,
    status       TEXT    NOT NULL,
    environment  TEXT,
    triggered_by TEXT    NOT NULL,
    commit_hash  TEXT,
    branch       TEXT,
    created_at   BIGINT  NOT NULL,
    started_at   BIGINT,
    finished_at  BIGINT,
    doc          TEXT    NOT NULL
);
CREATE INDEX pipeline_runs_created ON pipeline_runs (created_at, ord);

-- Jobs of a run. The job's output lives in `log` (masked, appended to in
-- place as the job runs), not in `doc`, whose `logs` field is stored empty.
CREATE TABLE jobs (
    id         TEXT    NOT NULL PRIMARY KEY,
    ord        BIGINT  NOT NULL UNIQUE,
    run_id     TEXT    NOT NULL REFERENCES pipeline_runs (id),
    name       TEXT    NOT NULL,
    type       TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    start_time BIGINT,
    end_time   BIGINT,
    exit_code  BIGINT,
    doc        TEXT    NOT NULL,
    log        TEXT    NOT NULL DEFAULT '',
    UNIQUE (run_id, name)
);

-- Stacks of a deployment, one per `[stacks.NAME]`.
CREATE TABLE stacks (
    id            TEXT    NOT NULL PRIMARY KEY,
    ord           BIGINT  NOT NULL UNIQUE,
    deployment_id TEXT    NOT NULL REFERENCES deployments (id),
    name          TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    doc           TEXT    NOT NULL,
    UNIQUE (deployment_id, name)
);

-- Resources a stack's tool reported; `physical_id` is the tool's own id.
CREATE TABLE resources (
    id          TEXT    NOT NULL PRIMARY KEY,
    ord         BIGINT  NOT NULL UNIQUE,
    stack_id    TEXT    NOT NULL REFERENCES stacks (id),
    type        TEXT    NOT NULL,
    logical_id  TEXT    NOT NULL,
    physical_id TEXT,
    status      TEXT    NOT NULL,
    doc         TEXT    NOT NULL
);
CREATE INDEX resources_stack ON resources (stack_id, ord);
