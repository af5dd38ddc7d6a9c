//! Backups and restores (OPERATIONS.md "Backups and restores"; issue 14,
//! first slice): `backup create NAME [--manual]`, `list`, `show`, `verify`,
//! `prune [--dry-run]` and `restore ID [--to URL] [--force]`, for
//! `[backups.NAME]` of kind database, taken on this machine into its
//! storage — a local directory or an S3-compatible bucket (`s3://…`,
//! reached with credentials from the environment's vault) — or, with
//! `run_on = "host"`, dumped and encrypted on the environment's first host
//! by its agent and stored the same way (one record naming the host;
//! restored there through the agent); of kind media: the directory `path`
//! on each host of the environment, packed by its agent into a tar stream
//! and stored the same way — one backup record per host, naming the host;
//! and of kind config (`config_kind.rs`). The IO (pg_dump / pg_restore,
//! age streams, the storage) is `rollway_ops::backup`'s, the tar streams
//! the host agent's; this module records every step through the model's
//! tables, each with its event. A backup's recorded location (an absolute
//! path, or `s3://BUCKET/KEY`) leads back to its object.
//!
//! A backup whose process died is found through its lease: `create` holds
//! the store lock `backup:ID` (renewed while the dump runs), and every
//! backup command first marks an in-progress backup whose lease is gone
//! as failed — judged by the lease, never by a pid (DESIGN.md "Locks are
//! leases"), so it works from any host — and deletes what it left in
//! storage (a hidden partial file, or an object completed just before the
//! process died, which is not trusted).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jiff::tz::TimeZone;
use rollway_config::{BackupConfig, Config, RunOn};
use rollway_model::retention::{self, Candidate};
use rollway_model::{
    Backup, BackupClass, BackupKind, BackupStatus, EventKind, Level, NewEvent, Restore, RestoreStatus, Timestamp,
};
/// The bytes a run's backups and restores moved, as `Project::backup_meter` counts them.
pub use rollway_ops::backup::Meter;
use rollway_ops::backup::{self as io, BackupError, Tool};
use rollway_store::{LockRequest, Store, StoreError, mask_password};
use serde::Serialize;
use serde_json::json;

use crate::error::{Code, Error, Result};
use crate::project::Project;

mod config_kind;

fn lock_name(b: &Backup) -> String {
    format!("backup:{}", b.id)
}

fn event(kind: EventKind, level: Level, b: &Backup, message: String) -> NewEvent {
    NewEvent::new(kind, level, message)
        .environment(b.environment.clone())
        .data(json!({ "backup_id": b.id.to_string(), "name": b.name, "status": b.status().as_str() }))
}

fn parse_time(flag: &str, t: Option<&str>) -> Result<Option<Timestamp>> {
    t.map(|s| {
        Timestamp::parse_rfc3339(s).ok_or_else(|| {
            Error::invalid(format_args!(
                "{flag} '{s}' is not an RFC 3339 time: write e.g. 2026-11-01T02:00:00Z"
            ))
        })
    })
    .transpose()
}

fn definition<'c>(p: &Project, config: &'c Config, name: &str) -> Result<&'c BackupConfig> {
    config.backups.get(name).ok_or_else(|| {
        let known: Vec<String> = config.backups.keys().cloned().collect();
        Error::invalid(format_args!(
            "no [backups.{}] in {}: known backups are {}",
            rollway_model::names::shown(name),
            p.config_path().display(),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ))
    })
}

/// The database URL of a definition, from its environment's secrets (which
/// arms the masks with them).
fn database_url(p: &Project, config: &Config, store: &dyn Store, def: &BackupConfig) -> Result<String> {
    let key = def.url_secret.as_deref().unwrap_or("DATABASE_URL");
    let values = p.env_values(config, store, &def.environment)?;
    values
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .ok_or_else(|| {
            Error::invalid(format_args!(
                "{key} is not set for environment {env}: set it with `rollway secrets set {env} {key}`",
                env = def.environment
            ))
        })
}

/// Where `def`'s backups go: its local directory, or its bucket reached
/// with the credentials its environment's vault holds.
fn storage(p: &Project, config: &Config, store: &dyn Store, def: &BackupConfig) -> Result<io::Storage> {
    if def.storage.starts_with("s3://") {
        let (bucket, prefix) = rollway_config::parse_s3_url(&def.storage).map_err(|why| {
            Error::invalid(format_args!(
                "storage '{}' of a backup of environment {}: {why}",
                def.storage, def.environment
            ))
        })?;
        return s3_storage(p, config, store, def, bucket, prefix);
    }
    Ok(io::Storage::local(storage_dir(p, def)?).metered(p.backup_meter().clone()))
}

/// A bucket of `def`'s S3 settings, its credentials read from the vault
/// (and masked from then on: they appear in no message or record).
fn s3_storage(
    p: &Project,
    config: &Config,
    store: &dyn Store,
    def: &BackupConfig,
    bucket: String,
    prefix: String,
) -> Result<io::Storage> {
    let env = &def.environment;
    let values = p.env_values(config, store, env)?;
    let read = |key: Option<&str>, which: &str| -> Result<String> {
        let key = key.ok_or_else(|| {
            Error::invalid(format_args!(
                "the backups of s3://{bucket} name no {which}: add {which} = \"VARIABLE\" to their [backups.NAME], naming a variable of environment {env}"
            ))
        })?;
        values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                Error::invalid(format_args!(
                    "{key} ({which}) is not set for environment {env}: set it with `rollway secrets set {env} {key}`"
                ))
            })
    };
    let access_key_id = read(def.s3_access_key_secret.as_deref(), "s3_access_key_secret")?;
    let secret_access_key = read(def.s3_secret_key_secret.as_deref(), "s3_secret_key_secret")?;
    p.mask_secrets(store, [access_key_id.clone(), secret_access_key.clone()]);
    io::Storage::s3(io::S3Settings {
        bucket,
        prefix,
        endpoint: def.s3_endpoint.clone(),
        region: def.s3_region.clone().unwrap_or_else(|| "us-east-1".to_owned()),
        allow_http: def.s3_allow_http,
        access_key_id,
        secret_access_key,
    })
    .map(|s| s.metered(p.backup_meter().clone()))
    .map_err(|e| Error::failed(failed(e, p)))
}

/// A backup's object, found from its recorded location: an absolute path,
/// or `s3://BUCKET/KEY` (reached with the endpoint and credentials its
/// `[backups.NAME]` names).
fn object_of(p: &Project, config: &Config, store: &dyn Store, b: &Backup) -> Result<io::Object> {
    let Some(rest) = b.location.strip_prefix("s3://") else {
        return local_object(&b.location, p.backup_meter()).ok_or_else(|| {
            Error::invalid(format_args!(
                "backup {} records no object path ('{}'): it cannot be read",
                b.id, b.location
            ))
        });
    };
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    let (prefix, name) = key.rsplit_once('/').unwrap_or(("", key));
    let def = definition(p, config, &b.name)?;
    if !def.storage.starts_with("s3://") {
        return Err(Error::invalid(format_args!(
            "backup {} is stored in {}, and [backups.{}] no longer stores in S3, so no credentials are named for it: set its storage back to s3://{bucket}{} with its s3_* keys",
            b.id,
            b.location,
            b.name,
            if prefix.is_empty() {
                String::new()
            } else {
                format!("/{prefix}")
            }
        )));
    }
    Ok(s3_storage(p, config, store, def, bucket.to_owned(), prefix.to_owned())?.object(name))
}

/// The object of a local location (an absolute path).
fn local_object(location: &str, meter: &io::Meter) -> Option<io::Object> {
    let path = Path::new(location);
    let (dir, name) = (path.parent()?, path.file_name()?);
    Some(
        io::Storage::local(dir)
            .metered(meter.clone())
            .object(&name.to_string_lossy()),
    )
}

/// The storage directory, absolute: the record's location must lead to
/// the object from wherever a later command runs.
fn storage_dir(p: &Project, def: &BackupConfig) -> Result<PathBuf> {
    let d = Path::new(&def.storage);
    let d = if d.is_absolute() {
        d.to_owned()
    } else {
        p.config_dir().join(d)
    };
    std::path::absolute(&d)
        .map_err(|e| Error::invalid(format_args!("cannot make storage path {} absolute: {e}", d.display())))
}

fn failed(e: BackupError, p: &Project) -> String {
    p.masks().mask(&e.to_string())
}

/// Marks in-progress backups whose lease is gone as failed (and, with the
/// config at hand to reach a bucket, deletes what they left in storage).
fn settle_stale(p: &Project, config: Option<&Config>, store: &dyn Store) -> Result<()> {
    for b in store.backups(None)? {
        if b.status() != BackupStatus::InProgress || store.lock(&lock_name(&b))?.is_some() {
            continue;
        }
        let at = store.clock().now().max(b.created_at);
        let reason = "the process taking it stopped before it finished (its lease expired)";
        let r = store.update_backup(b.id, &mut |x| {
            x.fail(reason, at)?;
            Ok(vec![event(
                EventKind::BackupChanged,
                Level::Error,
                x,
                format!("backup {} ({}) failed: {reason}", x.name, x.id),
            )])
        });
        match r {
            // A process killed between the rename and the record's update
            // left a whole object under the name of a failed backup: it is
            // not trusted, so it goes.
            Ok(failed) => {
                let object = match config {
                    _ if !failed.location.starts_with("s3://") => local_object(&failed.location, p.backup_meter()),
                    Some(c) => object_of(p, c, store, &failed).ok(),
                    None => None,
                };
                if let Some(o) = object {
                    let _ = o.remove();
                    o.remove_partials();
                }
            }
            // Another command settled it first.
            Err(StoreError::Transition { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The backup whose id starts with `prefix`; several are an error listing them.
fn find(store: &dyn Store, prefix: &str) -> Result<Backup> {
    let mut found = store.find_backups(prefix)?;
    match found.len() {
        0 => Err(Error::invalid(format_args!(
            "no backup id starts with '{}': see `rollway backup list`",
            rollway_model::names::shown(prefix)
        ))),
        1 => Ok(found.remove(0)),
        _ => Err(Error::invalid(format_args!(
            "'{prefix}' is the start of {} backup ids: {}; give more of the id",
            found.len(),
            found.iter().map(|b| b.id.to_string()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// `rollway backup create NAME [--manual]`: dumps, encrypts, hashes and
/// stores; the record goes in_progress → completed, or failed on any error.
/// `at` (hidden, for tests and imports) records it as taken then.
/// A media backup gives one record per host of its environment.
pub fn create(p: &Project, name: &str, manual: bool, at: Option<&str>) -> Result<Vec<Backup>> {
    let (config, store) = p.open()?;
    let taken_at = parse_time("--at", at)?;
    take_any(p, &config, &*store, name, manual, taken_at)
}

/// Takes `[backups.NAME]` of any kind: one backup, or one per host.
fn take_any(
    p: &Project,
    config: &Config,
    store: &dyn Store,
    name: &str,
    manual: bool,
    taken_at: Option<Timestamp>,
) -> Result<Vec<Backup>> {
    let def = definition(p, config, name)?;
    if def.kind == BackupKind::Media {
        take_media(p, config, store, name, def, manual, taken_at)
    } else if def.kind == BackupKind::Config {
        config_kind::take(p, config, store, name, def, manual, taken_at).map(|b| vec![b])
    } else {
        take(p, config, store, name, manual, taken_at, None).map(|b| vec![b])
    }
}

/// A `[backups.NAME]` schedule and what came of its latest occurrence.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleState {
    pub name: String,
    pub environment: String,
    pub schedule: String,
    /// The latest occurrence at or before now (none: it never fired yet).
    pub occurrence: Option<Timestamp>,
    pub outcome: Option<rollway_model::backup_schedule::Outcome>,
}

/// Every scheduled `[backups.NAME]` with its latest occurrence's outcome,
/// judged from the scheduled backups in the store.
pub(crate) fn schedule_states(config: &Config, store: &dyn Store) -> Result<Vec<ScheduleState>> {
    let mut out = Vec::new();
    for (name, def) in &config.backups {
        let Some(expression) = &def.schedule else { continue };
        let tz = crate::uptime::zone(config, &def.environment)?.0;
        let runs: Vec<(Timestamp, BackupStatus)> = store
            .backups(Some(&def.environment))?
            .into_iter()
            .filter(|b| &b.name == name && b.class != BackupClass::Manual && b.deployment_id.is_none())
            .map(|b| (b.created_at, b.status()))
            .collect();
        let now = store.clock().now();
        let found = rollway_model::backup_schedule::outcome(expression, &tz, now, &runs);
        out.push(ScheduleState {
            name: name.clone(),
            environment: def.environment.clone(),
            schedule: expression.clone(),
            occurrence: found.map(|(t, _)| t),
            outcome: found.map(|(_, o)| o),
        });
    }
    Ok(out)
}

/// `backup list`'s schedules: each with its latest occurrence's outcome
/// (a missed or failed one is what needs attention).
pub fn schedules(p: &Project, environment: Option<&str>) -> Result<Vec<ScheduleState>> {
    let (config, store) = p.open()?;
    let mut all = schedule_states(&config, &*store)?;
    all.retain(|s| environment.is_none_or(|e| e == s.environment));
    Ok(all)
}

/// What one scheduled backup of a `serve` round came to.
#[derive(Debug)]
pub struct ScheduledRun {
    pub name: String,
    /// The occurrence it ran for.
    pub due: Timestamp,
    /// One backup, or one per host for kind media.
    pub result: Result<Vec<Backup>>,
}

/// One round of `serve`'s backup schedules: every `[backups.NAME]` with a
/// `schedule` whose latest occurrence (in its environment's time zone) is
/// due — no scheduled backup of it started since, at most an hour ago
/// (`rollway_model::backup_schedule`) — is taken now. Instances sharing a
/// PostgreSQL store take turns through the `backup-schedule:NAME` lease
/// and look again under it, so an occurrence runs once.
pub fn run_schedules(p: &Project, store: &dyn Store, owner: &str) -> Result<Vec<ScheduledRun>> {
    // `serve`'s own store: a second one opened inside serve stalls its
    // sample writer on SQLite.
    let config = p.config()?;
    let mut out = Vec::new();
    for (name, def) in &config.backups {
        let Some(expression) = &def.schedule else { continue };
        let tz = crate::uptime::zone(&config, &def.environment)?.0;
        let last_started = |store: &dyn Store| -> Result<Option<Timestamp>> {
            Ok(store
                .backups(Some(&def.environment))?
                .into_iter()
                .filter(|b| &b.name == name && b.class != BackupClass::Manual && b.deployment_id.is_none())
                .map(|b| b.created_at)
                .max())
        };
        let now = store.clock().now();
        if rollway_model::backup_schedule::due(expression, &tz, now, last_started(store)?).is_none() {
            continue;
        }
        let lock = match store.acquire_lock(&LockRequest {
            name: format!("backup-schedule:{name}"),
            owner: owner.to_owned(),
            reason: format!("scheduled backup {name}"),
            deployment_id: None,
            lease: crate::deploy::lease(),
        }) {
            Ok(l) => l,
            Err(StoreError::Locked(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        // Under the lease, once more: another instance may have just run it.
        let now = store.clock().now();
        if let Some(due) = rollway_model::backup_schedule::due(expression, &tz, now, last_started(store)?) {
            let result = take_any(p, &config, store, name, false, None);
            out.push(ScheduledRun {
                name: name.clone(),
                due,
                result,
            });
        }
        let _ = store.release_lock(&lock);
    }
    Ok(out)
}

/// The backup `[deploy] pre_migration_backup` names, taken for deployment
/// `dep` before it runs its jobs and hooks: a restore point linked to it
/// (`rollway rollback ENV --restore-db` finds it there), kept as a manual
/// backup is.
pub(crate) fn before_migration(
    p: &Project,
    config: &Config,
    store: &dyn Store,
    name: &str,
    dep: rollway_model::DeploymentId,
) -> Result<Backup> {
    take(p, config, store, name, true, None, Some(dep))
}

fn take(
    p: &Project,
    config: &Config,
    store: &dyn Store,
    name: &str,
    manual: bool,
    taken_at: Option<rollway_model::Timestamp>,
    deployment: Option<rollway_model::DeploymentId>,
) -> Result<Backup> {
    settle_stale(p, Some(config), store)?;
    let def = definition(p, config, name)?;
    if def.kind != BackupKind::Database {
        return Err(Error::invalid(format_args!(
            "backups.{name} is of kind {}, which cannot be taken yet",
            def.kind
        )));
    }
    // run_on = "host": one dump, on the environment's first host, with the
    // URL of that host's current release; the deployer's value (when it
    // has one) only names the database in the record. Either way the
    // environment's secrets arm the masks.
    let source = match def.run_on {
        RunOn::Host => DumpOn::Host(Box::new(first_host(p, config, store, name, def)?)),
        RunOn::Deployer => DumpOn::Deployer(database_url(p, config, store, def)?),
    };
    let url = match &source {
        DumpOn::Deployer(url) => Some(url.clone()),
        DumpOn::Host(_) => database_url(p, config, store, def).ok(),
    };
    let vault = p.vault(config, store)?;
    let recipients = vault.recipients();
    let now = store.clock().now();
    let taken_at = taken_at.unwrap_or(now);
    let class = if manual {
        BackupClass::Manual
    } else {
        BackupClass::Daily
    };
    let storage = storage(p, config, store, def)?;
    let mut b = Backup::new(&def.environment, BackupKind::Database, class, "", taken_at);
    let object = storage.object(&format!("{name}-{}.dump.age", b.id));
    b.location = object.location();
    b.name = name.to_owned();
    b.deployment_id = deployment;
    b.restore_point = deployment.is_some();
    b.database_name = url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .map(|u| u.path().trim_start_matches('/').to_owned())
        .filter(|d| !d.is_empty());
    if let DumpOn::Host(on) = &source {
        b.host = Some(on.0.name.clone());
    }
    let on = b.host.as_ref().map(|h| format!(" on {h}")).unwrap_or_default();
    let label = format!("backup {name} ({}){on}", b.id);
    let taking = Taking::start(p, store, &b, label.clone(), &storage.describe())?;
    let result = taking.run(|| match &source {
        DumpOn::Host(on) => {
            let (plan, connector) = &**on;
            let var = def.url_secret.as_deref().unwrap_or("DATABASE_URL");
            let keys: Vec<String> = recipients.iter().map(|r| r.key_text()).collect();
            let mut session = connector
                .open(plan)
                .map_err(|e| TakeFailure::Host(format!("cannot reach the host: {e}")))?;
            io::store_encrypted(&object, |w| {
                session
                    .client()
                    .dump_database(var, &keys, w)
                    .map(|_| ())
                    .map_err(|e| host_failure(e, &object))
            })
        }
        DumpOn::Deployer(url) => {
            io::dump_database(&Tool::default(), url, &object, &recipients).map_err(TakeFailure::from)
        }
    })?;
    result.map_err(|reason| Error::failed(format_args!("{label} failed: {reason}; nothing was stored")))
}

/// One backup being taken — every kind goes through this one lifecycle:
/// its store lease (`backup:ID`) taken and its record inserted with the
/// `started` event, the work run while the lease is renewed, then the
/// record completed or failed with its event, and the lease given back.
struct Taking<'a> {
    p: &'a Project,
    store: &'a dyn Store,
    lock: rollway_model::Lock,
    lease: Duration,
    backup: Backup,
    /// "backup NAME (ID)" and what of where: how each event begins.
    label: String,
}

impl<'a> Taking<'a> {
    /// Takes the lease and inserts `b`, stored `into` (a storage's description).
    fn start(p: &'a Project, store: &'a dyn Store, b: &Backup, label: String, into: &str) -> Result<Self> {
        // The deployments' lease: 60 s, or `ROLLWAY_LEASE` (tests shorten it).
        let lease = crate::deploy::lease();
        let lock = store.acquire_lock(&LockRequest {
            name: lock_name(b),
            owner: p.operator(),
            reason: label.clone(),
            deployment_id: None,
            lease,
        })?;
        let started = event(
            EventKind::BackupChanged,
            Level::Info,
            b,
            format!("{label} started into {into}"),
        );
        let backup = match store.insert_backup(b, vec![started]) {
            Ok(b) => b,
            Err(e) => {
                let _ = store.release_lock(&lock);
                return Err(e.into());
            }
        };
        Ok(Self {
            p,
            store,
            lock,
            lease,
            backup,
            label,
        })
    }

    /// Runs `work` under the renewed lease and records what came of it:
    /// the completed backup, or (recorded as failed) why, masked.
    fn run(
        self,
        work: impl FnOnce() -> std::result::Result<io::Stored, TakeFailure>,
    ) -> Result<std::result::Result<Backup, String>> {
        let result = renewing(self.store, &self.lock, self.lease, work);
        let finished = self.store.clock().now().max(self.backup.created_at);
        let label = &self.label;
        let recorded = match result {
            Ok(stored) => self
                .store
                .update_backup(self.backup.id, &mut |x| {
                    x.complete(stored.sha256.clone(), stored.size, finished)?;
                    Ok(vec![event(
                        EventKind::BackupChanged,
                        Level::Info,
                        x,
                        format!("{label} completed: {} bytes, sha256 {}", stored.size, stored.sha256),
                    )])
                })
                .map(Ok),
            Err(e) => {
                let reason = match e {
                    TakeFailure::Storage(e) => failed(e, self.p),
                    TakeFailure::Host(s) => self.p.masks().mask(&s),
                };
                self.store
                    .update_backup(self.backup.id, &mut |x| {
                        x.fail(reason.clone(), finished)?;
                        Ok(vec![event(
                            EventKind::BackupChanged,
                            Level::Error,
                            x,
                            format!("{label} failed: {reason}"),
                        )])
                    })
                    .map(|_| Err(reason))
            }
        };
        let _ = self.store.release_lock(&self.lock);
        Ok(recorded?)
    }
}

/// Runs `work` while renewing `lock` at a third of `lease`: the lease says
/// the backup is alive.
fn renewing<T>(store: &dyn Store, lock: &rollway_model::Lock, lease: Duration, work: impl FnOnce() -> T) -> T {
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut held = lock.clone();
            let mut waited = Duration::ZERO;
            while !done.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(200));
                waited += Duration::from_millis(200);
                if waited >= lease / 3 {
                    waited = Duration::ZERO;
                    if let Ok(l) = store.renew_lock(&held, lease) {
                        held = l;
                    }
                }
            }
        });
        let r = work();
        done.store(true, Ordering::Release);
        r
    })
}

/// Where a database backup is dumped: here, from its URL, or on a host
/// through its agent (`run_on = "host"`).
enum DumpOn {
    Deployer(String),
    Host(Box<(rollway_engine::HostPlan, rollway_engine::Targets)>),
}

/// Why taking a backup failed: storing it (here), or on the host's side
/// (a media backup, or a database with `run_on = "host"`).
enum TakeFailure {
    Storage(BackupError),
    Host(String),
}

impl From<BackupError> for TakeFailure {
    fn from(e: BackupError) -> Self {
        Self::Storage(e)
    }
}

/// A failed stream from a host's agent: the host's (or the connection's)
/// failure, or the deployer's writing into `dir`.
fn host_failure(e: rollway_engine::MediaError, object: &io::Object) -> TakeFailure {
    match e {
        rollway_engine::MediaError::Host(h) => TakeFailure::Host(h.to_string()),
        rollway_engine::MediaError::Local(source) => TakeFailure::Storage(object.error("write the backup to", source)),
    }
}

/// The host a `run_on = "host"` database backup is taken on: the first
/// host of its environment (a database is one thing, dumped once), with
/// the connector that reaches it.
fn first_host(
    p: &Project,
    config: &Config,
    store: &dyn Store,
    name: &str,
    def: &BackupConfig,
) -> Result<(rollway_engine::HostPlan, rollway_engine::Targets)> {
    let env = &def.environment;
    let prepared = crate::deploy::prepare_checked(p, config, store, env, &Default::default(), false)?;
    let plan = prepared.hosts.into_iter().next().ok_or_else(|| {
        Error::invalid(format_args!(
            "backups.{name} runs on the host, and environment {env} has no hosts: add hosts to [environments.{env}], or take it with run_on = \"deployer\""
        ))
    })?;
    Ok((plan, crate::connect::connector(p, config, store, env)?))
}

/// `[backups.NAME]` of kind media: for each host of the environment, its
/// agent packs `path` (absolute, or relative to the host's root) into a
/// tar stream that is encrypted and hashed into storage as
/// it arrives; one backup record per host, each completed or failed on its
/// own. Fails (after trying every host) when any host failed.
fn take_media(
    p: &Project,
    config: &Config,
    store: &dyn Store,
    name: &str,
    def: &BackupConfig,
    manual: bool,
    taken_at: Option<Timestamp>,
) -> Result<Vec<Backup>> {
    settle_stale(p, Some(config), store)?;
    let path = def.path.as_deref().ok_or_else(|| {
        Error::invalid(format_args!(
            "backups.{name} is of kind media but names no path: add path = \"DIRECTORY\""
        ))
    })?;
    let env = &def.environment;
    let prepared = crate::deploy::prepare_checked(p, config, store, env, &Default::default(), false)?;
    if prepared.hosts.is_empty() {
        return Err(Error::invalid(format_args!(
            "backups.{name}: environment {env} has no hosts to back up {path} from; add hosts to [environments.{env}]"
        )));
    }
    let connector = crate::connect::connector(p, config, store, env)?;
    let vault = p.vault(config, store)?;
    let recipients = vault.recipients();
    let storage = storage(p, config, store, def)?;
    let class = if manual {
        BackupClass::Manual
    } else {
        BackupClass::Daily
    };
    let mut out = Vec::new();
    let mut failures = Vec::new();
    for plan in &prepared.hosts {
        let taken_at = taken_at.unwrap_or_else(|| store.clock().now());
        let mut b = Backup::new(env, BackupKind::Media, class, "", taken_at);
        let object = storage.object(&format!("{name}-{}.tar.zst.age", b.id));
        b.location = object.location();
        b.name = name.to_owned();
        b.host = Some(plan.name.clone());
        b.path = Some(path.to_owned());
        let label = format!("backup {name} ({}) of {path} on {}", b.id, plan.name);
        let taking = Taking::start(p, store, &b, label, &storage.describe())?;
        let result = taking.run(|| {
            let mut session = connector
                .open(plan)
                .map_err(|e| TakeFailure::Host(format!("cannot reach the host: {e}")))?;
            io::store_stream(&object, &recipients, |w| {
                session
                    .client()
                    .pack_dir(path, w)
                    .map(|_| ())
                    .map_err(|e| host_failure(e, &object))
            })
        })?;
        match result {
            Ok(done) => out.push(done),
            Err(reason) => failures.push(format!("on {} ({}): {reason}", plan.name, b.id)),
        }
    }
    if !failures.is_empty() {
        return Err(Error::failed(format_args!(
            "backup {name} of {path} failed {}; nothing was stored for {}; check the host and the directory, then take it again",
            failures.join("; "),
            if failures.len() == 1 {
                "that host"
            } else {
                "those hosts"
            }
        )));
    }
    Ok(out)
}

/// `rollway backup list [--env ENV]`: newest first.
pub fn list(p: &Project, environment: Option<&str>) -> Result<Vec<Backup>> {
    let (config, store) = p.open()?;
    if let Some(env) = environment {
        p.env_ref(&config, env)?;
    }
    settle_stale(p, Some(&config), &*store)?;
    Ok(store.backups(environment)?)
}

/// One backup with its restore jobs (`rollway backup show`).
#[derive(Debug, Clone, Serialize)]
pub struct BackupShow {
    pub backup: Backup,
    pub restores: Vec<Restore>,
}

/// `rollway backup show ID`.
pub fn show(p: &Project, id: &str) -> Result<BackupShow> {
    let store = p.store()?;
    settle_stale(p, None, &*store)?;
    let backup = find(&*store, id)?;
    let restores = store.restores(backup.id)?;
    Ok(BackupShow { backup, restores })
}

/// What `backup verify` found in a backup that passed.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub backup: Backup,
    /// Entries of the archive's table of contents (`pg_restore --list`).
    pub entries: usize,
    /// With `--restore-test`: what the scratch restore showed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_test: Option<RestoreTest>,
}

/// A backup restored into a scratch database that matched its archive.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreTest {
    /// The scratch database (dropped again).
    pub database: String,
    /// Lines of schema compared, equal in the archive and the restore.
    pub schema_lines: usize,
    pub tables: usize,
    pub rows: u64,
}

/// A scratch database on the backup's server, dropped when this goes.
struct Scratch<'a> {
    tool: &'a Tool,
    server: String,
    name: String,
}

impl Drop for Scratch<'_> {
    fn drop(&mut self) {
        let _ = io::psql(
            self.tool,
            &self.server,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// Restores `b` into a new scratch database on its own server and compares
/// the schema and each table's rows with what the archive holds: `Ok`
/// with the figures, or every difference.
fn restore_test(
    p: &Project,
    config: &Config,
    store: &dyn Store,
    b: &Backup,
) -> Result<std::result::Result<RestoreTest, Vec<String>>> {
    let def = definition(p, config, &b.name)?;
    let server = database_url(p, config, store, def)?;
    let tool = Tool::default();
    // Only [a-z0-9_]: the name goes into SQL unquoted.
    let id: String =
        b.id.to_string()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect();
    let scratch = Scratch {
        tool: &tool,
        server: server.clone(),
        name: format!(
            "rollway_restore_test_{}_{}",
            id.to_ascii_lowercase(),
            std::process::id()
        ),
    };
    let fail = |e: BackupError| {
        Error::failed(format_args!(
            "the restore test of backup {} could not run: {}; it needs a PostgreSQL role that may create databases on the backup's server",
            b.id,
            failed(e, p)
        ))
    };
    io::psql(&tool, &server, &format!("CREATE DATABASE {}", scratch.name)).map_err(fail)?;
    let url = io::with_database(&server, &scratch.name).map_err(fail)?;
    let vault = p.vault(config, store)?;
    let object = object_of(p, config, store, b)?;
    if let Err(e) = io::restore_database(&tool, &object, vault.identities(), &url, false) {
        return Ok(Err(vec![format!("it does not restore: {}", failed(e, p))]));
    }
    let archive = match io::archive_contents(&tool, &object, vault.identities()).map_err(fail)? {
        Ok(c) => c,
        Err(why) => {
            return Ok(Err(vec![format!(
                "its archive cannot be read back: {}",
                p.masks().mask(&why)
            )]));
        }
    };
    let restored = io::database_contents(&tool, &url).map_err(fail)?;
    let problems = io::differences(&archive, &restored);
    if !problems.is_empty() {
        return Ok(Err(problems));
    }
    Ok(Ok(RestoreTest {
        database: scratch.name.clone(),
        schema_lines: archive.schema.len(),
        tables: archive.rows.len(),
        rows: archive.rows.values().sum(),
    }))
}

/// Checks a backup: recorded completed, size and SHA-256 of the stored
/// bytes, decryption with the local identity, `pg_restore --list` (a media
/// backup's tar read to its end). Every problem found, or the number of
/// archive entries.
fn check(
    p: &Project,
    config: &Config,
    store: &dyn Store,
    b: &Backup,
) -> Result<std::result::Result<usize, Vec<String>>> {
    if b.status() != BackupStatus::Completed {
        return Ok(Err(vec![format!("it is {}, not completed", b.status())]));
    }
    let Some(sha) = &b.checksum else {
        return Ok(Err(vec!["it has no recorded SHA-256".to_owned()]));
    };
    let object = object_of(p, config, store, b)?;
    let mut problems = io::verify_object(&object, b.size_bytes, sha).map_err(|e| Error::failed(failed(e, p)))?;
    let found = problems.is_empty() || object.exists().map_err(|e| Error::failed(failed(e, p)))?;
    if found && matches!(b.kind, BackupKind::Media | BackupKind::Config) {
        let vault = p.vault(config, store)?;
        let read = io::with_decrypted(&object, vault.identities(), |r| rollway_engine::count_media_entries(r))
            .map_err(|e| Error::failed(failed(e, p)))?;
        match read {
            Ok(Ok(entries)) if problems.is_empty() => return Ok(Ok(entries as usize)),
            Ok(Ok(_)) => {}
            Ok(Err(why)) => problems.push(format!("it does not decrypt into a readable tar stream: {why}")),
            Err(why) => problems.push(format!("it does not decrypt: {}", p.masks().mask(&why))),
        }
    } else if found {
        let vault = p.vault(config, store)?;
        match io::list_archive(&Tool::default(), &object, vault.identities())
            .map_err(|e| Error::failed(failed(e, p)))?
        {
            Ok(entries) if problems.is_empty() => return Ok(Ok(entries)),
            Ok(_) => {}
            Err(why) => problems.push(format!(
                "it does not decrypt into a readable archive: {}",
                p.masks().mask(&why)
            )),
        }
    }
    Ok(Err(problems))
}

fn does_not_verify(b: &Backup, problems: &[String], then: &str) -> Error {
    // The problems are in the message itself (shown in every mode), and in
    // the machine answer's details one by one.
    Error::failed(format_args!(
        "backup {} ({}) does not verify: {}{then}; take a new backup, or restore another one (see `rollway backup list`)",
        b.id,
        b.name,
        problems.join("; ")
    ))
    .with_details(json!({ "backup_id": b.id.to_string(), "problems": problems }))
}

/// `rollway backup verify ID [--restore-test]`: exit 1 naming the backup
/// and what is wrong.
pub fn verify(p: &Project, id: &str, restore: bool) -> Result<Verified> {
    let (config, store) = p.open()?;
    let b = find(&*store, id)?;
    if restore && b.kind != BackupKind::Database {
        return Err(Error::invalid(format_args!(
            "--restore-test restores database backups, and backup {} is of kind {}: verify it without --restore-test, or restore it into a new directory with `rollway restore {} --to PATH`",
            b.id, b.kind, b.id
        )));
    }
    let mut tested = None;
    let mut verdict = check(p, &config, &*store, &b)?;
    if restore && verdict.is_ok() {
        match restore_test(p, &config, &*store, &b)? {
            Ok(t) => tested = Some(t),
            Err(problems) => verdict = Err(problems),
        }
    }
    let (level, message) = match &verdict {
        Ok(n) => (
            Level::Info,
            match &tested {
                Some(t) => format!(
                    "backup {} ({}) verified: {n} archive entries; restored into a scratch database, schema and the rows of {} tables ({} rows) equal the archive's",
                    b.name, b.id, t.tables, t.rows
                ),
                None => format!("backup {} ({}) verified: {n} archive entries", b.name, b.id),
            },
        ),
        Err(problems) => (
            Level::Error,
            format!("backup {} ({}) does not verify: {}", b.name, b.id, problems.join("; ")),
        ),
    };
    store.append_event(event(EventKind::BackupChanged, level, &b, message))?;
    match verdict {
        Ok(entries) => Ok(Verified {
            backup: b,
            entries,
            restore_test: tested,
        }),
        Err(problems) => Err(does_not_verify(&b, &problems, "")),
    }
}

/// `rollway restore ID [--to URL] [--force]`: verifies first (a backup that
/// does not verify fails the job and leaves the target untouched), refuses
/// a non-empty target without `force`, then restores in one transaction.
/// For a media backup, `to` is the directory and `host` the host of its
/// environment to unpack into (default: the backup's own).
pub fn restore(p: &Project, id: &str, to: Option<&str>, host: Option<&str>, force: bool) -> Result<Restore> {
    let (config, store) = p.open()?;
    let store = &*store;
    let b = find(store, id)?;
    if b.kind == BackupKind::Media {
        return restore_media(p, &config, store, &b, to, host, force);
    }
    if b.kind == BackupKind::Config {
        if let Some(h) = host {
            return Err(Error::invalid(format_args!(
                "--host {h}: backup {} is of kind config, restored on this machine; drop --host",
                b.id
            )));
        }
        return config_kind::restore(p, &config, store, &b, to, force);
    }
    // Taken on a host (run_on = "host"): restored there, into the database
    // of that host's current release, unless --to names another.
    if b.host.is_some() && to.is_none() {
        return restore_on_host(p, &config, store, &b, host, force);
    }
    if let Some(h) = host {
        return Err(Error::invalid(format_args!(
            "--host {h}: backup {} is of kind {}, restored through its database URL, not on a host; drop --host",
            b.id, b.kind
        )));
    }
    let url = match to {
        Some(u) => u.to_owned(),
        None => {
            let def = definition(p, &config, &b.name)?;
            database_url(p, &config, store, def)?
        }
    };
    if let Ok(u) = url::Url::parse(&url)
        && let Some(pw) = u.password()
    {
        p.mask_secrets(store, [pw.to_owned()]);
    }
    let now = store.clock().now();
    let mut job = Restore::new(&b.environment, b.id, now);
    job.target = mask_password(&url);
    let record = RestoreRecord::create(p, store, &job)?;
    let job = record.job.clone();
    let end = |status, level, message| record.end(status, level, message);
    record.refuse_unverified(&config, &b)?;
    let tool = Tool::default();
    let empty = io::database_is_empty(&tool, &url).map_err(|e| Error::failed(failed(e, p)))?;
    if !empty && !force {
        let message = format!(
            "the target database {} is not empty: restore into an empty database, or pass --force to replace what is there",
            job.target
        );
        end(RestoreStatus::Failed, Level::Error, message.clone())?;
        return Err(Error::new(Code::Conflict, anyhow::anyhow!(message)));
    }
    record.running(&b, &job.target)?;
    let restored = io::restore_database(
        &tool,
        &object_of(p, &config, store, &b)?,
        p.vault(&config, store)?.identities(),
        &url,
        !empty,
    )
    .map(|()| String::new())
    .map_err(|e| failed(e, p));
    record.settle(
        &b,
        &job.target,
        restored,
        "restore into an empty database, or pass --force to replace what is there",
        "pg_restore ran in one transaction, so the target is as it was",
    )
}

/// The restore job's event for one of its steps.
/// A restore job recorded as created, and the one way it moves on: each
/// transition through the model's table with its `restore-step` event (a
/// failure's message kept as the job's notes).
struct RestoreRecord<'a> {
    p: &'a Project,
    store: &'a dyn Store,
    job: Restore,
}

impl<'a> RestoreRecord<'a> {
    fn create(p: &'a Project, store: &'a dyn Store, job: &Restore) -> Result<Self> {
        let message = format!(
            "restore {} of backup {} into {} created",
            job.id, job.backup_id, job.target
        );
        let job = store.insert_restore(job, vec![restore_step(p, job, Level::Info, message)])?;
        Ok(Self { p, store, job })
    }

    /// Refuses a backup that does not verify before anything touches the
    /// target: the job fails, naming every problem.
    fn refuse_unverified(&self, config: &Config, b: &Backup) -> Result<()> {
        if let Err(problems) = check(self.p, config, self.store, b)? {
            let e = does_not_verify(
                b,
                &problems,
                &format!("; restore {} refused, the target was not touched", self.job.id),
            );
            self.end(RestoreStatus::Failed, Level::Error, e.to_string())?;
            return Err(e);
        }
        Ok(())
    }

    /// The backup verified: the job runs, restoring `into` its target.
    fn running(&self, b: &Backup, into: &str) -> Result<Restore> {
        self.end(
            RestoreStatus::Running,
            Level::Info,
            format!("backup {} verified; restoring into {into}", b.id),
        )
    }

    /// Ends the job with what came of restoring `b` into `into`: success
    /// (`done` appended, e.g. ": 12 entries"), or failure — why (masked
    /// here), then `on_conflict` when the target was not empty (a
    /// conflict, exit 3), `otherwise` when it was something else.
    fn settle(
        &self,
        b: &Backup,
        into: &str,
        result: std::result::Result<String, String>,
        on_conflict: &str,
        otherwise: &str,
    ) -> Result<Restore> {
        let job = &self.job.id;
        match result {
            Ok(done) => self.end(
                RestoreStatus::Success,
                Level::Info,
                format!("restore {job} of backup {} into {into} succeeded{done}", b.id),
            ),
            Err(why) => {
                let why = self.p.masks().mask(&why);
                let conflict = why.contains("not empty");
                let hint = if conflict { on_conflict } else { otherwise };
                let message = format!("restore {job} of backup {} failed: {why}; {hint}", b.id);
                self.end(RestoreStatus::Failed, Level::Error, message.clone())?;
                Err(if conflict {
                    Error::new(Code::Conflict, anyhow::anyhow!(message))
                } else {
                    Error::failed(message)
                })
            }
        }
    }

    fn end(&self, status: RestoreStatus, level: Level, message: String) -> Result<Restore> {
        let at = self.store.clock().now().max(self.job.started_at);
        Ok(self.store.update_restore(self.job.id, &mut |r| {
            r.transition(status, at)?;
            if status == RestoreStatus::Failed {
                r.notes = Some(message.clone());
            }
            Ok(vec![restore_step(self.p, r, level, message.clone())])
        })?)
    }
}

fn restore_step(p: &Project, job: &Restore, level: Level, message: String) -> NewEvent {
    NewEvent::new(EventKind::RestoreStep, level, message)
        .environment(job.environment.clone())
        .operator(p.operator())
        .data(json!({ "restore_id": job.id.to_string(), "backup_id": job.backup_id.to_string(), "status": job.status().as_str() }))
}

/// A media backup restored through a host's agent: verified first (a
/// backup that does not verify fails the job and touches nothing), then
/// its decrypted tar streamed to the agent, which unpacks it beside the
/// target and moves it in only when complete (refusing a non-empty target
/// without `force`).
fn restore_media(
    p: &Project,
    config: &Config,
    store: &dyn Store,
    b: &Backup,
    to: Option<&str>,
    host: Option<&str>,
    force: bool,
) -> Result<Restore> {
    let host = host.or(b.host.as_deref()).ok_or_else(|| {
        Error::invalid(format_args!(
            "backup {} names no host: pass --host HOST, one of environment {}'s hosts",
            b.id, b.environment
        ))
    })?;
    let path = to.or(b.path.as_deref()).ok_or_else(|| {
        Error::invalid(format_args!(
            "backup {} names no directory: pass --to PATH, the directory on {host} to restore into",
            b.id
        ))
    })?;
    let env = &b.environment;
    let plan = host_plan(p, config, store, env, host)?;
    let plan = &plan;
    let now = store.clock().now();
    let mut job = Restore::new(env, b.id, now);
    job.target = format!("{host}:{path}");
    let record = RestoreRecord::create(p, store, &job)?;
    let job = record.job.clone();
    record.refuse_unverified(config, b)?;
    record.running(b, &job.target)?;
    let vault = p.vault(config, store)?;
    let connector = crate::connect::connector(p, config, store, env)?;
    let unpacked = connector
        .open(plan)
        .map_err(|e| format!("cannot reach {host}: {e}"))
        .and_then(|mut session| {
            let object = object_of(p, config, store, b).map_err(|e| e.to_string())?;
            match io::with_decrypted(&object, vault.identities(), |r| {
                session.client().unpack_dir(path, force, r)
            }) {
                Ok(Ok(Ok(entries))) => Ok(entries),
                Ok(Ok(Err(e))) => Err(e.to_string()),
                Ok(Err(why)) => Err(format!("it does not decrypt: {why}")),
                Err(e) => Err(failed(e, p)),
            }
        });
    record.settle(
        b,
        &job.target,
        unpacked.map(|entries| format!(": {entries} entries")),
        "restore into a new directory with --to PATH, or pass --force to replace it",
        "the tree is unpacked beside the target and moved in only when complete, so the target is as it was",
    )
}

/// The host `host` of environment `env`, as a deployment reaches it.
fn host_plan(
    p: &Project,
    config: &Config,
    store: &dyn Store,
    env: &str,
    host: &str,
) -> Result<rollway_engine::HostPlan> {
    let prepared = crate::deploy::prepare_checked(p, config, store, env, &Default::default(), false)?;
    let names: Vec<String> = prepared.hosts.iter().map(|h| h.name.clone()).collect();
    prepared.hosts.into_iter().find(|h| h.name == host).ok_or_else(|| {
        Error::invalid(format_args!(
            "environment {env} has no host {host}: its hosts are {}; pass one with --host",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        ))
    })
}

/// A database backup taken on a host (`run_on = "host"`) restored there:
/// verified first on this machine (a backup that does not verify fails the
/// job and touches nothing), then decrypted here (the identity never leaves
/// the deployer) and its clear archive streamed to the host's agent, which
/// refuses a non-empty database without `force` and restores in one
/// transaction into the database of its current release's `url_secret`.
fn restore_on_host(
    p: &Project,
    config: &Config,
    store: &dyn Store,
    b: &Backup,
    host: Option<&str>,
    force: bool,
) -> Result<Restore> {
    let def = definition(p, config, &b.name)?;
    let var = def.url_secret.as_deref().unwrap_or("DATABASE_URL");
    // Arms the masks with the environment's secrets, as a deployer restore does.
    let _ = database_url(p, config, store, def);
    let host = host.or(b.host.as_deref()).unwrap_or_default();
    let env = &b.environment;
    let plan = host_plan(p, config, store, env, host)?;
    let now = store.clock().now();
    let mut job = Restore::new(env, b.id, now);
    job.target = format!("{host}:{var}");
    let record = RestoreRecord::create(p, store, &job)?;
    record.refuse_unverified(config, b)?;
    record.running(b, &format!("the database of {var} on {host}"))?;
    let vault = p.vault(config, store)?;
    let connector = crate::connect::connector(p, config, store, env)?;
    let restored = connector
        .open(&plan)
        .map_err(|e| format!("cannot reach {host}: {e}"))
        .and_then(|mut session| {
            let object = object_of(p, config, store, b).map_err(|e| e.to_string())?;
            match io::with_decrypted(&object, vault.identities(), |r| {
                session.client().restore_database(var, force, r)
            }) {
                Ok(Ok(Ok(()))) => Ok(()),
                Ok(Ok(Err(e))) => Err(e.to_string()),
                Ok(Err(why)) => Err(format!("it does not decrypt: {why}")),
                Err(e) => Err(failed(e, p)),
            }
        });
    record.settle(
        b,
        &format!("the database of {var} on {host}"),
        restored.map(|()| String::new()),
        "restore with --to URL into an empty database, or pass --force to replace what is there",
        "pg_restore ran in one transaction, so the target is as it was",
    )
}

/// A backup retention keeps, with the classes that keep it.
#[derive(Debug, Clone, Serialize)]
pub struct Kept {
    pub backup: Backup,
    pub classes: Vec<BackupClass>,
}

/// What `backup prune` did (or, with `--dry-run`, would do).
#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    pub dry_run: bool,
    pub kept: Vec<Kept>,
    pub expired: Vec<Backup>,
}

/// `rollway backup prune [--dry-run]`: the seed 003 classes over each
/// backup name's completed backups in its environment's time zone; the
/// others' objects are deleted and their records marked expired. `now`
/// (hidden, for tests) stands in for the clock.
pub fn prune(p: &Project, dry_run: bool, now: Option<&str>) -> Result<PruneReport> {
    let (config, store) = p.open()?;
    let store = &*store;
    settle_stale(p, Some(&config), store)?;
    let now = parse_time("--now", now)?.unwrap_or_else(|| store.clock().now());
    // A media backup's hosts each keep their own history.
    let mut groups: BTreeMap<(String, String, Option<String>), Vec<Backup>> = BTreeMap::new();
    for b in store.backups(None)? {
        if b.status() == BackupStatus::Completed {
            groups
                .entry((b.environment.clone(), b.name.clone(), b.host.clone()))
                .or_default()
                .push(b);
        }
    }
    let mut report = PruneReport {
        dry_run,
        kept: Vec::new(),
        expired: Vec::new(),
    };
    for ((env, _, _), list) in groups {
        let tz = if config.environments.contains_key(&env) {
            crate::uptime::zone(&config, &env)?.0
        } else {
            TimeZone::UTC
        };
        let candidates: Vec<Candidate> = list
            .iter()
            .map(|b| Candidate {
                id: b.id.to_string(),
                created_at: b.created_at,
                completed: true,
                manual: b.class == BackupClass::Manual,
            })
            .collect();
        let survivors = retention::survivors(&candidates, now, &tz, &retention::SEED_POLICY);
        for b in list {
            match survivors.get(&b.id.to_string()) {
                Some(classes) => report.kept.push(Kept {
                    backup: b,
                    classes: classes.clone(),
                }),
                None => report.expired.push(b),
            }
        }
    }
    if !dry_run {
        let mut done = Vec::new();
        for b in report.expired {
            object_of(p, &config, store, &b)?
                .remove()
                .map_err(|e| Error::failed(failed(e, p)))?;
            let at = store.clock().now().max(b.finished_at.unwrap_or(b.created_at));
            done.push(store.update_backup(b.id, &mut |x| {
                x.transition(BackupStatus::Expired, at)?;
                Ok(vec![event(
                    EventKind::BackupChanged,
                    Level::Info,
                    x,
                    format!(
                        "backup {} ({}) expired: no retention class keeps it; its object was deleted",
                        x.name, x.id
                    ),
                )])
            })?);
        }
        report.expired = done;
    }
    Ok(report)
}
