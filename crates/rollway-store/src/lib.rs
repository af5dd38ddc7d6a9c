//! Rollway's persistence: one [`Store`] trait with a SQLite backend (the
//! default, one file in the state directory) and a PostgreSQL backend (for
//! several instances sharing one store), schema migrations, the hash-chained
//! event log, lease locks, and the records of environments, variables,
//! artifacts, deployments, verifications, pipeline runs, jobs, stacks and
//! resources, and the watching half's monitors, probe samples, rollups,
//! maintenance windows, seed 003 metric records, the shard leases
//! `serve` instances share them by, and seed 002 log records.
//!
//! # Schema
//!
//! Both backends hold the same tables, written so that people (and tests) can
//! read and tamper with them through `sqlite3` or `psql`. Times are integer
//! milliseconds since the Unix epoch, ids are UUID text, JSON is text in the
//! canonical form of [`rollway_model::event::canonical_json`] (never `jsonb`,
//! which reorders keys), so both backends hash an event alike.
//!
//! | table | columns | notes |
//! | --- | --- | --- |
//! | `schema_migrations` | `version`, `applied_at` | one row per applied migration of `migrations/<backend>/NNNN_*.sql`, applied in order in one transaction when the store is opened |
//! | `environments` | `id`, `name` (unique), `kind`, `status`, `lifecycle`, `domain`, `https`, `platform`, `app`, `nginx_config`, `config`, `created_at`, `updated_at` | `lifecycle` is the JSON of every transition with its time; `status` repeats the current one for queries |
//! | `events` | `seq` (1, 2, …), `id`, `at`, `kind`, `level`, `message`, `environment`, `deployment_id`, `job_id`, `pipeline_run_id`, `service`, `trace_id`, `operator`, `data`, `prev_hash`, `hash` | append-only; `hash` covers every other column, `prev_hash` is the hash of event `seq - 1` (64 zeros for event 1) |
//! | `event_head` | `id` (always 1), `seq`, `hash`, `at` | the last event's seq, hash and time, updated with every append, so deleting the last events is detected |
//! | `variables` | `id`, `environment`, `key` (unique per environment), `type`, `scheme`, `secret`, `platform_synced`, `synced_at`, `created_at`, `updated_at`, `rotated_at`, `allow_weak` | names and metadata only: values live age-encrypted in the secrets directory |
//! | `locks` | `name`, `owner`, `token`, `reason`, `deployment_id`, `acquired_at`, `expires_at` | leases: free when absent or when `expires_at` has passed |
//! | `artifacts` | `id`, `ord`, `kind`, `sha256`, `content_digest`, `size_bytes`, `source_version`, `branch`, `job_id`, `built_at`, `created_at`, `expires_at`, `doc` | several records may share a digest |
//! | `deployments` | `id`, `ord`, `kind`, `environment`, `status`, `operator`, `artifact_id`, `version_tag`, `commit_sha`, `branch`, `rollback_to`, `rollback_target`, `started_at`, `finished_at`, `doc` | |
//! | `verifications` | `id`, `ord`, `deployment_id`, `result`, `window_ends_at`, `failed_probes`, `doc` | per-host results are in `doc` |
//! | `pipeline_runs` | `id`, `ord`, `status`, `environment`, `triggered_by`, `commit_hash`, `branch`, `created_at`, `started_at`, `finished_at`, `doc` | |
//! | `jobs` | `id`, `ord`, `run_id`, `name` (unique per run), `type`, `status`, `start_time`, `end_time`, `exit_code`, `doc`, `log` | the output is in `log`, appended in place; `doc`'s `logs` is stored empty |
//! | `stacks` | `id`, `ord`, `deployment_id`, `name` (unique per deployment), `status`, `doc` | |
//! | `resources` | `id`, `ord`, `stack_id`, `type`, `logical_id`, `physical_id`, `status`, `doc` | |
//! | `monitors` | `id` (integer), `name` (unique), `environment`, `kind`, `target`, `interval_ms`, `coverage_ms`, `config`, `paused`, `created_at`, `updated_at`, `rolled_from`, `rolled_until`, `minutes_from` | the rollups cover `[rolled_from, rolled_until)`; minute rows before `minutes_from` were pruned |
//! | `samples` | `monitor_id`, `slot` (key with the monitor), `lag_ms`, `outcome`, `http_status`, `latency_ms`, `cache_status`, `location`, `error`, `rolled` | one row per monitor and slot; `error` masked; a partial index holds the rows not yet rolled up |
//! | `maintenance_windows` | `id` (integer), `environment`, `monitor`, `kind` (`once` or `cron`), `start_at`, `end_at`, `cron`, `duration_ms`, `note`, `created_at`, `operator` | the model's `MaintenanceWindow`; `note` masked; applied at query time |
//! | `shard_owners` | `owner` (an instance id, `HOST:PID:RANDOM`), `started_at`, `renewed_at`, `expires_at` | the `serve` instances sharing the monitors' shards; live while `expires_at` is ahead |
//! | `shard_leases` | `shard` (0 … shards - 1), `owner`, `acquired_at`, `renewed_at`, `expires_at`, `released_at` | one row per shard; free when `owner` is null or `expires_at` has passed; `released_at`: given back |
//! | `metric_records` | `metric_id`, `environment`, `metric_type`, `source`, `slot` (unique with the three before it), `metric_value`, `unit`, `threshold_warning`, `threshold_critical`, `status`, `timestamp`, `window_start` | seed 003 Monitoring Data: the model's `MetricRecord`; `slot` is the window's start for error rates and uptime, 0 for the latest health check and rolling average |
//! | `log_records` | `id` (integer, insertion order), `environment`, `host`, `service`, `level`, `message`, `trace_id`, `time`, `collected_at` | seed 002 Log Record: one line of a service's output; `message` and `trace_id` masked; `time` the line's own or when it was collected |
//! | `log_cursors` | `environment`, `host`, `service` (the key), `cursor`, `updated_at` | where collection stands: the engine's `LogCursor` as JSON, moved in the transaction that stores the lines before it |
//! | `alerts` | `id`, `ord`, `rule`, `subject`, `environment`, `status`, `severity`, `triggered_at`, `acknowledged_at`, `acknowledged_by`, `ack_until`, `resolved_at`, `deployment_id`, `version_tag`, `note`, `doc` | seed 002 Monitoring Alert as a document; a unique partial index keeps one unresolved alert per (`rule`, `subject`) |
//! | `backups` | `id`, `ord`, `environment`, `name`, `kind`, `class`, `location`, `size_bytes`, `sha256`, `status`, `restore_point`, `deployment_id`, `created_at`, `expires_at`, `finished_at`, `doc` | seed 002 Backup Artifact / seed 003 Backup Records as a document; an expired backup keeps its row |
//! | `restore_jobs` | `id`, `ord`, `backup_id` (references `backups`), `environment`, `status`, `target`, `started_at`, `finished_at`, `doc` | seed 002 Restore Job as a document; `target` masked |
//! | `alert_trackers` | `rule`, `subject` (key), `tracker`, `updated_at` | the model's `alerting::Tracker` as canonical JSON, so evaluation resumes after a restart |
//! | `deliveries` | `id` (integer), `alert_id`, `event`, `channel`, `environment`, `idempotency_key` (unique), `payload`, `attempts`, `status` (`pending`, `delivered`, `failed`), `next_attempt_at`, `last_error`, `answer`, `created_at`, `delivered_at` | one notification to one channel; `payload` masked; the channel's address is never stored |
//! | `metric_points` | `environment`, `name`, `time` (key with the two before it), `value` | business metrics pushed with `rollway metric push` |
//! | `rollups_minute`, `rollups_hour`, `rollups_day` | `monitor_id`, `bucket` (key with the monitor), `ok`, `error`, `unavailable`, `status_5xx`, `latency_count`, `latency_sum_ms`, `latency_min_ms`, `latency_max_ms`, `sketch`, `downtime_ms`, `maintenance_ms`, `no_data_ms` | the model's `Rollup`; the sketch as short text (`db/monitoring.rs`) |
//!
//! The seven document tables (artifacts to resources) keep each entity whole as canonical JSON in `doc`,
//! the source of truth: reading it replays the entity's lifecycle through the
//! model's transition table, and the query columns beside it must agree with
//! it, so a hand-edited row is `StoreError::Corrupt` naming the id. `ord` is
//! the insertion order, which breaks ties between rows of the same
//! millisecond. Free text a secret could reach (reasons, notes, log
//! excerpts, job logs, stack outputs and errors, resource properties and
//! tags) passes the store's masking filter before it is written.
//!
//! # Guarantees
//!
//! - Every write (a status transition and its event, an append, a lock) is
//!   one transaction, serialised with every other write: SQLite takes the
//!   write lock up front (`BEGIN IMMEDIATE`), PostgreSQL locks the
//!   `event_head` row first. So appends from many threads, processes or
//!   instances form one valid chain.
//! - Event times never go backwards: an event's `at` is the later of the
//!   clock's now and the previous event's time. Nor are they in the future
//!   (seed 001): when that later time is ahead of the clock by more than
//!   `rollway_model::rules::event::MAX_CLOCK_SKEW` (a clock set back, or
//!   another machine's running ahead), the write is refused until the clock
//!   catches up.
//! - A forbidden transition (decided only by `rollway_model`'s tables) writes
//!   nothing; neither does an update whose closure fails or leaves the entity
//!   breaking one of the model's rules.
//! - Every record and event is checked against the model's validators as it
//!   is written, and one that breaks a rule is `StoreError::Invalid` naming
//!   each field and rule id, with nothing written: an event's message and
//!   deployment (`rules::event`), an artifact's size and expiry
//!   (`rules::artifact::validate`, at the store clock's now), a deployment's
//!   rules and `stacks_order` against its recorded stacks
//!   (`rules::deployment`), a stack's dependencies and the outputs its
//!   `contract` names (`rules::stack`), and an available resource against its
//!   stack's contract (`rules::resource::validate_in_stack`).
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use rollway_model::{EventKind, Level, ManualClock, NewEvent, Timestamp};
//! use rollway_store::{EventQuery, StoreLocation};
//!
//! let dir = tempfile::tempdir()?;
//! let loc = StoreLocation::resolve(None, dir.path()); // STATE_DIR/rollway.db
//! let clock = ManualClock::new(Timestamp::from_millis(1_767_225_600_000));
//! let store = rollway_store::open(&loc, Arc::new(clock))?;
//! let ev = store.append_event(NewEvent::new(EventKind::CommandExecuted, Level::Info, "ran").environment("staging"))?;
//! assert_eq!(ev.seq, 1);
//! let q = EventQuery { environment: Some("staging".into()), ..EventQuery::default() };
//! assert_eq!(store.events(&q)?, vec![ev]);
//! assert_eq!(store.verify_events()?, Ok(1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod account;
mod alerts;
mod db;
mod error;
mod location;
mod logs;
mod monitoring;
mod pg;
mod preopen;
mod shards;
mod sql;
mod sqlite;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rollway_model::maintenance::MaintenanceWindow;
use rollway_model::spans::Span;
use rollway_model::{
    Artifact, ArtifactId, Backup, BackupId, ChainBreak, Clock, Deployment, DeploymentId, Environment, EnvironmentSpec,
    EnvironmentStatus, Event, EventKind, Job, JobId, Lock, Masker, MetricRecord, MetricType, NewEvent, PipelineRun,
    PipelineRunId, ProbeSample, Resource, Restore, RestoreId, Sha256Digest, Stack, StackId, Timestamp, Variable,
    Verification,
};

pub use alerts::{AlertQuery, Attempt, Delivery, DeliveryStatus, MetricPoint, NewDelivery};
pub use error::StoreError;
pub use location::{DEFAULT_SQLITE_FILE, LocationError, StoreLocation, mask_password};
pub use logs::{DEFAULT_LOG_RETENTION, LogQuery, LogRecord, LogSource, NewLogRecord};
pub use monitoring::{
    MaintenanceSpans, MonitorDef, MonitorRecord, Pruned, RecordedSamples, Resolution, Retention, RollupReport,
    RollupRow, RollupSettings, RollupSum, SumRange,
};
pub use preopen::{PreOpenError, check_before_open};
pub use shards::{Claimed, Previous, ShardLease, Taken};

/// The schema version this build writes (the highest migration it knows).
pub const SCHEMA_VERSION: i64 = 15;

/// The clock of real runs: the only place that reads the system time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
        };
        Timestamp::from_millis(ms)
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// Opens the store at `loc` and brings its schema up to date. SQLite creates
/// the file and its parent directories.
pub fn open(loc: &StoreLocation, clock: Arc<dyn Clock>) -> Result<Box<dyn Store>, StoreError> {
    match loc {
        StoreLocation::Sqlite(path) => Ok(Box::new(db::Db::open(sqlite::SqliteBackend::open(path)?, clock)?)),
        StoreLocation::Postgres(url) => Ok(Box::new(db::Db::open(pg::PgBackend::connect(url)?, clock)?)),
    }
}

/// Which events to list. Empty filters match everything; results are in
/// `seq` order, oldest first unless `newest_first`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    pub environment: Option<String>,
    pub deployment_id: Option<DeploymentId>,
    pub kind: Option<EventKind>,
    /// Only events with a larger seq (for following the log).
    pub after_seq: Option<i64>,
    pub limit: Option<usize>,
    pub newest_first: bool,
}

/// What a would-be lock holder asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRequest {
    /// What to lock, e.g. `Lock::env_name("production")`.
    pub name: String,
    pub owner: String,
    pub reason: String,
    pub deployment_id: Option<DeploymentId>,
    /// How long the lease lasts unless renewed (`rollway_model::DEFAULT_LEASE`).
    pub lease: Duration,
}

/// Everything Rollway remembers, behind one seam with two backends.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// "sqlite" or "postgres".
    fn backend(&self) -> &'static str;
    fn location(&self) -> &StoreLocation;
    fn clock(&self) -> &dyn Clock;
    /// The highest migration applied to this store.
    fn schema_version(&self) -> Result<i64, StoreError>;

    /// Creates the environment (status `created`, an `environment-created`
    /// event) when first seen, else takes the spec's fields; one transaction.
    fn sync_environment(&self, spec: &EnvironmentSpec) -> Result<Environment, StoreError>;
    /// Every environment, by name.
    fn environments(&self) -> Result<Vec<Environment>, StoreError>;
    fn environment(&self, name: &str) -> Result<Option<Environment>, StoreError>;
    /// Moves the environment's lifecycle and writes an
    /// `environment-transition` event in one transaction. A forbidden edge is
    /// `StoreError::Transition` and writes nothing; an unknown name is
    /// `StoreError::NotFound`.
    fn transition_environment(
        &self,
        name: &str,
        to: EnvironmentStatus,
        operator: &str,
    ) -> Result<Environment, StoreError>;

    /// Appends to the one global chain; returns the event as stored.
    fn append_event(&self, ev: NewEvent) -> Result<Event, StoreError>;
    fn events(&self, q: &EventQuery) -> Result<Vec<Event>, StoreError>;
    /// Checks the whole chain and its head. The outer error is the store
    /// failing; the inner one is the verdict: `Ok(number of events)` or the
    /// first broken event.
    fn verify_events(&self) -> Result<Result<i64, ChainBreak>, StoreError>;

    /// Takes the lock when it is free (absent or expired; taking over an
    /// expired lease writes a `lock-expired` event), or when it is held for
    /// the same deployment (`deployment_id` equal and set: a detached window
    /// resumed). Held otherwise: `StoreError::Locked`.
    fn acquire_lock(&self, req: &LockRequest) -> Result<Lock, StoreError>;
    /// Extends a lease this holder still has; otherwise `StoreError::LockLost`.
    fn renew_lock(&self, lock: &Lock, lease: Duration) -> Result<Lock, StoreError>;
    /// Gives the lock back if this holder (same token) still has it; does
    /// nothing otherwise.
    fn release_lock(&self, lock: &Lock) -> Result<(), StoreError>;
    /// The current unexpired lock of that name, if any.
    fn lock(&self, name: &str) -> Result<Option<Lock>, StoreError>;

    /// The masking filter every appended event's message and data pass
    /// through; callers add secret values as they learn them.
    fn set_masker(&self, masker: Masker);

    /// An environment's variables (metadata only), by key.
    fn variables(&self, environment: &str) -> Result<Vec<Variable>, StoreError>;
    fn variable(&self, environment: &str, key: &str) -> Result<Option<Variable>, StoreError>;
    /// Creates or updates a variable's record and appends `ev`, in one transaction.
    fn record_variable(&self, var: &Variable, ev: NewEvent) -> Result<Variable, StoreError>;
    /// Removes a variable's record and appends `ev`, in one transaction;
    /// false (and no event) when there was none.
    fn remove_variable(&self, environment: &str, key: &str, ev: NewEvent) -> Result<bool, StoreError>;

    // ---- artifacts ----

    /// Records a new artifact and appends `ev` (typically `artifact-built`;
    /// tied to the producing job when it names none), in one transaction. An
    /// id already recorded is `StoreError::Exists`; an empty artifact, or one
    /// that expires no later than its creation or the clock's now, is
    /// `StoreError::Invalid`. Returns the record as stored.
    fn insert_artifact(&self, artifact: &Artifact, ev: NewEvent) -> Result<Artifact, StoreError>;
    fn artifact(&self, id: ArtifactId) -> Result<Option<Artifact>, StoreError>;
    /// Every artifact whose id, `sha256` or `content_digest` starts with
    /// `prefix`, newest first: the caller decides what zero or several
    /// matches mean. Case does not matter; an id matches with or without its
    /// hyphens; a leading `sha256:` is ignored. An empty prefix, or one with
    /// a character that is neither a hex digit nor `-`, matches nothing.
    fn find_artifacts(&self, prefix: &str) -> Result<Vec<Artifact>, StoreError>;
    /// The newest artifact packed from exactly this content (manifest digest),
    /// so an unchanged tree reuses its archive.
    fn artifact_by_content_digest(&self, digest: &Sha256Digest) -> Result<Option<Artifact>, StoreError>;
    /// Every artifact, newest first (`created_at`, then insertion order).
    fn artifacts(&self) -> Result<Vec<Artifact>, StoreError>;
    /// Removes an artifact's record and appends `ev` (typically
    /// `artifact-pruned`), in one transaction; false (and no event) when there
    /// was none. Deployments that name it keep their `artifact_id`.
    fn delete_artifact(&self, id: ArtifactId, ev: NewEvent) -> Result<bool, StoreError>;
    /// Moves an artifact's expiry to `expires_at` and appends `ev`, in one
    /// transaction: a build of unchanged content hands back its record
    /// renewed, never expired. An expiry not after the clock's now is
    /// `StoreError::Invalid` (the model's artifact rules), with nothing written.
    fn renew_artifact(&self, id: ArtifactId, expires_at: Timestamp, ev: NewEvent) -> Result<Artifact, StoreError>;

    // ---- deployments ----

    /// Records a new deployment and appends `events`, in one transaction. The
    /// model's deployment rules must hold (`StoreError::Invalid` otherwise);
    /// an id already recorded is `StoreError::Exists`. Events that name no
    /// deployment or environment are tied to this one. Returns it as stored
    /// (free text masked).
    fn insert_deployment(&self, deployment: &Deployment, events: Vec<NewEvent>) -> Result<Deployment, StoreError>;
    fn deployment(&self, id: DeploymentId) -> Result<Option<Deployment>, StoreError>;
    /// Loads the deployment, applies `f` (which calls the model's
    /// `transition` / `fail` / `roll_back` and edits fields), saves it and
    /// appends the events `f` returns (tied to the deployment like
    /// `insert_deployment`'s), all in one transaction serialised with every
    /// other write, so concurrent updates never lose one another. An error
    /// from `f` (a `StatusChangeError` converts with `?`: a refused edge is
    /// `StoreError::Transition`, a broken rule `StoreError::Invalid`), a
    /// changed id or a broken deployment rule writes nothing. Unknown id:
    /// `StoreError::NotFound`.
    fn update_deployment(
        &self,
        id: DeploymentId,
        f: &mut dyn FnMut(&mut Deployment) -> Result<Vec<NewEvent>, StoreError>,
    ) -> Result<Deployment, StoreError>;
    /// The history: deployments of `env` (or of every environment), newest
    /// first (`started_at`, then insertion order), at most `limit`.
    fn deployments(&self, env: Option<&str>, limit: usize) -> Result<Vec<Deployment>, StoreError>;
    /// Deployments still in progress — every status from which the model's
    /// table allows `cancelled` (pending, building, synthesizing, deploying,
    /// verifying) — of `env` or of every environment, newest first.
    fn active_deployments(&self, env: Option<&str>) -> Result<Vec<Deployment>, StoreError>;
    /// The newest succeeded deployment of `env` (by `finished_at`, then
    /// insertion order): the current release, and the rollback target
    /// candidate of the next deployment.
    fn last_succeeded(&self, env: &str) -> Result<Option<Deployment>, StoreError>;

    // ---- verifications ----

    /// Creates or replaces (by id) a deployment's verification and appends
    /// `events`, in one transaction; events that name no deployment or
    /// environment are tied to its deployment. That deployment must be
    /// recorded (`StoreError::NotFound`). Host log excerpts are masked.
    fn put_verification(&self, verification: &Verification, events: Vec<NewEvent>) -> Result<Verification, StoreError>;
    /// A deployment's verifications, in the order they were first put.
    fn verifications(&self, deployment_id: DeploymentId) -> Result<Vec<Verification>, StoreError>;

    // ---- pipeline runs and jobs ----

    /// Records a new pipeline run and appends `events` (tied to the run and
    /// its environment when they name none), in one transaction.
    fn insert_run(&self, run: &PipelineRun, events: Vec<NewEvent>) -> Result<PipelineRun, StoreError>;
    /// Like `update_deployment`, for a pipeline run.
    fn update_run(
        &self,
        id: PipelineRunId,
        f: &mut dyn FnMut(&mut PipelineRun) -> Result<Vec<NewEvent>, StoreError>,
    ) -> Result<PipelineRun, StoreError>;
    fn run(&self, id: PipelineRunId) -> Result<Option<PipelineRun>, StoreError>;
    /// Pipeline runs, newest first (created, then insertion order), at most `limit`.
    fn runs(&self, limit: usize) -> Result<Vec<PipelineRun>, StoreError>;
    /// Records a new job of a recorded run (`StoreError::NotFound`
    /// otherwise; a name is unique within its run) and appends `events`
    /// (tied to the job and its run), in one transaction. The model's job
    /// rules must hold. Events are tied to the job, its run and the run's
    /// environment when they name none. Does not touch the run's `jobs` list.
    ///
    /// A job's output is kept apart from its record, in the `log` column, so
    /// that appending a chunk ([`Store::append_job_log`]) costs one statement
    /// however long the log grows; reads put it back into `Job::logs`.
    fn insert_job(&self, job: &Job, events: Vec<NewEvent>) -> Result<Job, StoreError>;
    /// Like `update_deployment`, for a job. The stored log is rewritten only
    /// when `f` changed `logs`; otherwise chunks appended meanwhile stay.
    fn update_job(
        &self,
        id: JobId,
        f: &mut dyn FnMut(&mut Job) -> Result<Vec<NewEvent>, StoreError>,
    ) -> Result<Job, StoreError>;
    /// A run's jobs, in the order they were inserted.
    fn jobs(&self, run_id: PipelineRunId) -> Result<Vec<Job>, StoreError>;
    fn job(&self, id: JobId) -> Result<Option<Job>, StoreError>;
    /// Appends `chunk` to a job's stored log in one statement, without an
    /// event. The caller masks the stream (a secret split across chunks is
    /// only caught by a streaming filter); the store masks each chunk again
    /// with its own masker and replaces NUL characters (which PostgreSQL text
    /// cannot hold) with U+FFFD. Unknown job: `StoreError::NotFound`.
    fn append_job_log(&self, job_id: JobId, chunk: &str) -> Result<(), StoreError>;

    // ---- stacks and resources ----

    /// Creates or replaces (by id) a stack of a recorded deployment
    /// (`StoreError::NotFound` otherwise; a name is unique within its
    /// deployment) and appends `events` (tied to the deployment and its
    /// environment when they name none), in one
    /// transaction. Replacing needs a copy whose lifecycle extends the stored
    /// one, else `StoreError::Stale`. Error messages and outputs are masked.
    fn put_stack(&self, stack: &Stack, events: Vec<NewEvent>) -> Result<Stack, StoreError>;
    /// Like `update_deployment`, for a stack.
    fn update_stack(
        &self,
        id: StackId,
        f: &mut dyn FnMut(&mut Stack) -> Result<Vec<NewEvent>, StoreError>,
    ) -> Result<Stack, StoreError>;
    /// A deployment's stacks, in the order they were first put.
    fn stacks(&self, deployment_id: DeploymentId) -> Result<Vec<Stack>, StoreError>;
    /// Creates or replaces (by id) a resource of a recorded stack
    /// (`StoreError::NotFound` otherwise) and appends `events` (tied to the
    /// stack's deployment and environment), in one transaction; replacing needs a lifecycle
    /// that extends the stored one (`StoreError::Stale`). Property and tag
    /// values are masked.
    fn put_resource(&self, resource: &Resource, events: Vec<NewEvent>) -> Result<Resource, StoreError>;
    /// A stack's resources, in the order they were first put.
    fn resources(&self, stack_id: StackId) -> Result<Vec<Resource>, StoreError>;

    // ---- monitors, samples, rollups (OPERATIONS.md "Samples and rollups") ----

    /// Creates the monitor when first seen, else takes the definition's
    /// fields (its paused flag and rollup range stay). A definition without a
    /// name, with a zero interval or a coverage shorter than the interval is
    /// `StoreError::Invalid`.
    fn put_monitor(&self, def: &MonitorDef) -> Result<MonitorRecord, StoreError>;
    fn monitor(&self, name: &str) -> Result<Option<MonitorRecord>, StoreError>;
    /// Every monitor, by name.
    fn monitors(&self) -> Result<Vec<MonitorRecord>, StoreError>;
    /// Unknown name: `StoreError::NotFound`.
    fn set_monitor_paused(&self, name: &str, paused: bool) -> Result<MonitorRecord, StoreError>;
    /// Records a batch in one transaction. A sample whose monitor and slot
    /// are already recorded is left as it was and counted as a duplicate, so
    /// a batch offered again or replayed after a restart records nothing
    /// twice. Error text passes the store's masker. A sample of a monitor
    /// never put is `StoreError::NotFound`, with nothing written.
    fn record_samples(&self, batch: &[ProbeSample]) -> Result<RecordedSamples, StoreError>;
    /// The latest sample of each monitor (of `environment`, or of all) that
    /// has one, by monitor name: seed 002's lastStatus and lastCheckedAt.
    fn latest_samples(&self, environment: Option<&str>) -> Result<Vec<ProbeSample>, StoreError>;
    /// A monitor's samples with slots in `[from, to)`, oldest first, at most
    /// `limit`.
    fn samples(
        &self,
        monitor: &str,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<ProbeSample>, StoreError>;
    /// Folds samples into 1-minute rollups and those into hours and days,
    /// up to the minute that ended `settle` ago (then later samples are
    /// merged into the minutes they belong to, exactly). Running it again
    /// changes nothing. Each transaction covers one monitor and at most
    /// `chunk` of time.
    fn roll_up(&self, settings: &RollupSettings) -> Result<RollupReport, StoreError>;
    /// A monitor's rollups with bucket starts in `[from, to)`, oldest first.
    /// Inside the monitor's `[rolled_from, rolled_until)`, a minute without a
    /// row had no data; hour and day rows are whole.
    fn rollups(
        &self,
        monitor: &str,
        resolution: Resolution,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<RollupRow>, StoreError>;
    /// The rollups of many bucket ranges at once — `(monitor, [from, to))`
    /// each — in one read transaction of a few statements: for each range,
    /// its rows oldest first (an unknown monitor has none). What a report
    /// over many monitors reads, instead of a query per monitor and piece.
    /// Without `latency`, the rows' 5xx count and latency fields (count,
    /// sum, min, max, sketch) are left empty, not read: an uptime report
    /// needs the outcome counts and the time terms.
    fn rollups_in(
        &self,
        resolution: Resolution,
        ranges: &[(String, Span)],
        latency: bool,
    ) -> Result<Vec<Vec<RollupRow>>, StoreError>;
    /// The sums of many bucket ranges at once, in one read transaction of
    /// a few statements ([`RollupSum`]: row count, outcome counts and the
    /// clipped time terms of each range's rows), in the order of `ranges`;
    /// the rows themselves are not read. What an uptime report over many
    /// monitors needs of the buckets it takes whole.
    fn rollup_sums(&self, resolution: Resolution, ranges: &[SumRange]) -> Result<Vec<RollupSum>, StoreError>;
    /// Deletes what `keep` no longer keeps, in transactions of at most
    /// `keep.batch` rows: raw samples older than `keep.samples` (once rolled
    /// up), minute rows by whole UTC hours once their hour ended
    /// `keep.minutes` ago, and hour and day buckets that ended `keep.hours`
    /// / `days` ago or earlier. As minutes go, `windows` (a monitor's
    /// maintenance windows over a span, expanded by the caller, who knows
    /// the environments' time zones) is folded into their hours and days
    /// (`rollway_model::account::fold_maintenance`), so those answer for
    /// the windows as the minutes did; `monitors.minutes_from` moves on in
    /// the same transaction. With them go the metric records of windows
    /// that ended as long ago (error rates with the hours, uptime with the
    /// days).
    fn prune_monitoring(&self, keep: &Retention, windows: &MaintenanceSpans<'_>) -> Result<Pruned, StoreError>;

    // ---- maintenance windows (OPERATIONS.md "The seed 003 numbers") ----

    /// Stores a window (its `id` and `created_at` are the store's) with its
    /// event, in one transaction; a schedule the model's
    /// `maintenance::check` refuses is `StoreError::Invalid`, nothing written.
    fn add_maintenance(&self, window: &MaintenanceWindow, ev: NewEvent) -> Result<MaintenanceWindow, StoreError>;
    /// The windows of `environment` (or all), oldest first.
    fn maintenance_windows(&self, environment: Option<&str>) -> Result<Vec<MaintenanceWindow>, StoreError>;
    /// Removes window `id` with its event (the event's data is the window);
    /// `None` (and no event) when there is no such window.
    fn remove_maintenance(&self, id: i64, ev: NewEvent) -> Result<Option<MaintenanceWindow>, StoreError>;

    // ---- shard leases (OPERATIONS.md "`rollway serve`") ----

    /// One heartbeat of `owner` (an instance id) sharing `shards` shards:
    /// records it as live until now + `lease`, renews every lease it still
    /// holds, and takes free shards (never leased, given back, or expired
    /// — never a live lease) up to its fair share, `shards` divided by the
    /// live owners rounded up; one transaction, at the store clock's now.
    /// It gives nothing back: an owner holding more than its share (an
    /// instance joined) stops probing the excess, then calls
    /// [`Store::release_shards`]. No owner, no shard or a zero lease is
    /// `StoreError::Invalid`.
    fn claim_shards(&self, owner: &str, shards: u32, lease: Duration) -> Result<Claimed, StoreError>;
    /// Gives back those of `shards` that `owner` still holds: free for the
    /// next claim at once. Returns how many.
    fn release_shards(&self, owner: &str, shards: &[u32]) -> Result<usize, StoreError>;
    /// A graceful stop: gives back every lease of `owner` and forgets it
    /// as a live owner, so the others' shares grow at their next claim.
    /// Returns how many leases it gave back.
    fn leave_shards(&self, owner: &str) -> Result<usize, StoreError>;
    /// Every shard that has had an owner, by shard: held, expired or given
    /// back (`released_at`).
    fn shard_leases(&self) -> Result<Vec<ShardLease>, StoreError>;

    /// Runs raw SQL against the store, bypassing every rule. For tests that
    /// tamper with the tables; never used by Rollway itself.
    #[doc(hidden)]
    fn execute_raw(&self, sql: &str) -> Result<(), StoreError>;

    // ---- seed 003 Monitoring Data records (OPERATIONS.md "The seed 003 numbers") ----

    /// Writes `records` in one transaction, each replacing the stored one
    /// of its environment, type, source and window (`MetricRecord::slot`),
    /// whose `metric_id` it keeps. A record `rules::metric::validate`
    /// refuses is `StoreError::Invalid`, with nothing written. Returns the
    /// rows written.
    fn put_metric_records(&self, records: &[MetricRecord]) -> Result<u64, StoreError>;
    /// The records of `environment` (of one type, or all), by type and
    /// source, newest window first.
    fn metric_records(
        &self,
        environment: &str,
        metric_type: Option<MetricType>,
    ) -> Result<Vec<MetricRecord>, StoreError>;

    // ---- seed 002 log records (OPERATIONS.md "Log records") ----

    // ---- backups and restore jobs ----

    /// Records a new backup (in progress) and appends `events`, in one
    /// transaction; the model's backup rules must hold.
    fn insert_backup(&self, backup: &Backup, events: Vec<NewEvent>) -> Result<Backup, StoreError>;
    /// Moves a backup through `f` (the model's `complete` / `fail` /
    /// `transition`) and appends its events, in one transaction.
    fn update_backup(
        &self,
        id: BackupId,
        f: &mut dyn FnMut(&mut Backup) -> Result<Vec<NewEvent>, StoreError>,
    ) -> Result<Backup, StoreError>;
    fn backup(&self, id: BackupId) -> Result<Option<Backup>, StoreError>;
    /// Every backup whose id starts with `prefix` (with or without hyphens,
    /// any case), newest first; the caller decides what zero or several mean.
    fn find_backups(&self, prefix: &str) -> Result<Vec<Backup>, StoreError>;
    /// The backups of `env` (or of every environment), newest first.
    fn backups(&self, env: Option<&str>) -> Result<Vec<Backup>, StoreError>;
    /// Records a new restore job and appends `events`, in one transaction;
    /// its backup must be recorded (`StoreError::NotFound` otherwise).
    fn insert_restore(&self, restore: &Restore, events: Vec<NewEvent>) -> Result<Restore, StoreError>;
    /// Moves a restore job through `f` and appends its events, in one transaction.
    fn update_restore(
        &self,
        id: RestoreId,
        f: &mut dyn FnMut(&mut Restore) -> Result<Vec<NewEvent>, StoreError>,
    ) -> Result<Restore, StoreError>;
    /// A backup's restore jobs, newest first.
    fn restores(&self, backup_id: BackupId) -> Result<Vec<Restore>, StoreError>;

    /// Where collection of `source`'s output stands (the cursor JSON a
    /// collector stored), `None` before the first batch.
    fn log_cursor(&self, source: &LogSource) -> Result<Option<String>, StoreError>;
    /// Stores `records` (message and trace id passing the masker) and moves
    /// `source`'s cursor from `previous` (what [`Store::log_cursor`] said)
    /// to `cursor`, in one transaction. `None`, with nothing written, when
    /// the cursor is no longer `previous`: another collector stored these
    /// lines first. Returns the records written.
    fn put_log_records(
        &self,
        source: &LogSource,
        previous: Option<&str>,
        cursor: &str,
        records: &[NewLogRecord],
    ) -> Result<Option<u64>, StoreError>;
    /// The newest `query.limit` records matching `query`, oldest first (by
    /// time, then id).
    fn log_records(&self, query: &LogQuery) -> Result<Vec<LogRecord>, StoreError>;
    /// How many records match `query`'s filters (its limit aside): the
    /// log error-rate rule counts the last minute's error lines without
    /// reading them.
    fn count_log_records(&self, query: &LogQuery) -> Result<u64, StoreError>;
    /// Deletes records whose time is more than `keep` before the store
    /// clock's now, `batch` rows per transaction; returns how many.
    fn prune_log_records(&self, keep: Duration, batch: u32) -> Result<u64, StoreError>;

    // ---- alerts (OPERATIONS.md "Alerts"; schema 10) ----

    /// Records a new open alert with its event and queued deliveries, in one
    /// transaction. While an alert of the same rule and subject is open or
    /// acknowledged, a second is `StoreError::Exists` naming it.
    fn open_alert(
        &self,
        alert: &rollway_model::Alert,
        deliveries: &[NewDelivery],
        ev: NewEvent,
    ) -> Result<rollway_model::Alert, StoreError>;
    /// Loads an alert, applies `f` (which moves it with
    /// `Alert::transition` and returns its events), checks, saves and
    /// queues `deliveries`: one transaction; a refused transition writes
    /// nothing.
    fn update_alert(
        &self,
        id: rollway_model::AlertId,
        f: &mut dyn FnMut(&mut rollway_model::Alert) -> Result<Vec<NewEvent>, StoreError>,
        deliveries: &[NewDelivery],
    ) -> Result<rollway_model::Alert, StoreError>;
    fn alert(&self, id: rollway_model::AlertId) -> Result<Option<rollway_model::Alert>, StoreError>;
    /// Alerts whose id starts with `prefix` (dashes optional), newest first.
    fn find_alerts(&self, prefix: &str) -> Result<Vec<rollway_model::Alert>, StoreError>;
    /// Alerts, newest first.
    fn alerts(&self, q: &AlertQuery) -> Result<Vec<rollway_model::Alert>, StoreError>;
    /// The open or acknowledged alert of a rule and subject.
    fn unresolved_alert(&self, rule: &str, subject: &str) -> Result<Option<rollway_model::Alert>, StoreError>;
    /// Every (rule, subject)'s tracker: what the evaluations so far left.
    fn alert_trackers(&self) -> Result<Vec<(String, String, rollway_model::alerting::Tracker)>, StoreError>;
    fn put_alert_tracker(
        &self,
        rule: &str,
        subject: &str,
        tracker: &rollway_model::alerting::Tracker,
    ) -> Result<(), StoreError>;
    /// Queues deliveries (masked); one whose idempotency key is queued
    /// already is skipped. Returns how many were queued.
    fn add_deliveries(&self, deliveries: &[NewDelivery]) -> Result<u64, StoreError>;
    /// Takes up to `limit` pending deliveries that are due, moving each
    /// `lease` ahead so no other sender takes it meanwhile (PostgreSQL:
    /// `FOR UPDATE SKIP LOCKED`); one whose sender died is due again after it.
    fn claim_deliveries(&self, limit: usize, lease: Duration) -> Result<Vec<Delivery>, StoreError>;
    /// Records one attempt of a pending delivery; a delivery no longer
    /// pending is `StoreError::Stale`.
    fn finish_delivery(&self, id: i64, attempt: &Attempt) -> Result<Delivery, StoreError>;
    /// The deliveries of one alert, or all, oldest first.
    fn deliveries(&self, alert: Option<rollway_model::AlertId>) -> Result<Vec<Delivery>, StoreError>;
    /// Stores one value of a business metric (`rollway metric push`).
    fn push_metric_point(&self, point: &MetricPoint) -> Result<(), StoreError>;
    /// The newest value of a business metric.
    fn latest_metric_point(&self, environment: &str, name: &str) -> Result<Option<MetricPoint>, StoreError>;
}
