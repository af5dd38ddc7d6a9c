//! The store's logic, written once over the `Backend` seam: migrations, the
//! write transaction with its event-chain head (`in_tx`), and the `Store`
//! methods. Entities kept as documents (artifacts, deployments, runs, jobs,
//! stacks, …) live in `records`: load, apply the caller's change through the
//! model, save, append the events — all inside one `in_tx`.

mod alerts;
mod log_records;
mod maintenance;
mod metric_records;
mod monitoring;
mod records;
mod shards;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rollway_model::event::{ChainBreak, ChainHead, canonical_json, verify_chain};
use rollway_model::rules;
use rollway_model::{
    Artifact, ArtifactId, Clock, Deployment, DeploymentId, Environment, EnvironmentSpec, EnvironmentStatus, Event,
    EventId, EventKind, Job, JobId, Level, Lifecycle, Lock, Masker, NewEvent, PipelineRun, PipelineRunId, ProbeSample,
    Resource, Sha256Digest, Stack, StackId, Timestamp, Variable, Verification,
};
use serde_json::json;

use crate::error::StoreError;
use crate::location::StoreLocation;
use crate::monitoring::{
    MaintenanceSpans, MonitorDef, MonitorRecord, Pruned, RecordedSamples, Resolution, Retention, RollupReport,
    RollupRow, RollupSettings,
};
use crate::shards::{Claimed, ShardLease};
use crate::sql::{Backend, Param, Row, Sql};
use crate::{EventQuery, LockRequest, Store};
use records::UpdateFn;

pub(crate) struct Db<B: Backend> {
    backend: B,
    clock: Arc<dyn Clock>,
    masker: RwLock<Masker>,
}

impl<B: Backend> std::fmt::Debug for Db<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("clock", &self.clock)
            .finish()
    }
}

/// The end of the chain as the `event_head` row records it.
#[derive(Debug, Clone)]
struct Head {
    seq: i64,
    hash: Sha256Digest,
    at: Timestamp,
}

const HEAD_SQL: &str = "SELECT seq, hash, at FROM event_head WHERE id = 1";

fn decode_head(row: Option<Row>) -> Result<Option<Head>, String> {
    let Some(r) = row else {
        return Ok(None);
    };
    Ok(Some(Head {
        seq: r.int(0, "seq")?,
        hash: r.parse(1, "hash")?,
        at: Timestamp::from_millis(r.int(2, "at")?),
    }))
}

/// One open write transaction: SQL plus the chain's head, which it holds
/// locked, so appends inside it get consecutive seqs and monotone times.
pub(crate) struct Tx<'a> {
    sql: &'a mut dyn Sql,
    clock: &'a dyn Clock,
    masker: &'a Masker,
    head: Head,
}

impl Tx<'_> {
    pub fn sql(&mut self) -> &mut dyn Sql {
        &mut *self.sql
    }

    /// The clock's now, but never before the last event: the store's time
    /// does not go backwards when a clock does.
    pub fn now(&self) -> Timestamp {
        self.clock.now().max(self.head.at)
    }

    /// Appends `ev` at `at` (or at the last event's time, if later). The
    /// model's event rules hold first (a message; the deployment of a
    /// deployment's event; a time not ahead of the clock by more than
    /// `MAX_CLOCK_SKEW`), else `StoreError::Invalid` and the whole
    /// transaction writes nothing.
    pub fn append_at(&mut self, mut ev: NewEvent, at: Timestamp) -> Result<Event, StoreError> {
        let at = at.max(self.head.at);
        let mut violations = rules::event::validate(&ev);
        violations.extend(rules::event::validate_time_within(
            at,
            self.clock.now(),
            rules::event::MAX_CLOCK_SKEW,
        ));
        if !violations.is_empty() {
            return Err(StoreError::Invalid {
                what: "event",
                id: format!("{} (seq {})", ev.kind, self.head.seq + 1),
                violations,
            });
        }
        // No secret reaches the log in clear: message and data are masked here,
        // the one door every event goes through.
        ev.message = self.masker.mask(&ev.message);
        ev.data = self.masker.mask_json(&ev.data);
        let seq = self.head.seq + 1;
        let event = ev.seal(seq, EventId::generate(at), at, self.head.hash.clone());
        insert_event(self.sql, &event)?;
        self.sql.exec(
            "UPDATE event_head SET seq = $1, hash = $2, at = $3 WHERE id = 1",
            &[
                event.seq.into(),
                event.hash.as_str().into(),
                event.at.as_millis().into(),
            ],
        )?;
        self.head = Head {
            seq: event.seq,
            hash: event.hash.clone(),
            at: event.at,
        };
        Ok(event)
    }

    /// Appends `ev` now.
    pub fn append(&mut self, ev: NewEvent) -> Result<Event, StoreError> {
        let at = self.now();
        self.append_at(ev, at)
    }
}

impl<B: Backend> Db<B> {
    /// Wraps an open backend and migrates it.
    pub fn open(backend: B, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let db = Self {
            backend,
            clock,
            masker: RwLock::new(Masker::default()),
        };
        db.migrate()?;
        db.backend.migrated();
        Ok(db)
    }

    fn shown(&self) -> String {
        self.backend.location().to_string()
    }

    /// Applies the migrations this store lacks, in order, in one transaction.
    fn migrate(&self) -> Result<(), StoreError> {
        let shown = self.shown();
        let now = self.clock.now();
        self.backend.write(|sql| {
            if !B::MIGRATION_LOCK.is_empty() {
                sql.batch(B::MIGRATION_LOCK)?;
            }
            sql.batch(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                    version    BIGINT NOT NULL PRIMARY KEY,
                    applied_at BIGINT NOT NULL
                )",
            )?;
            let applied = sql
                .rows("SELECT version FROM schema_migrations ORDER BY version", &[])?
                .iter()
                .map(|r| r.int(0, "version"))
                .collect::<Result<Vec<i64>, String>>()
                .map_err(|d| StoreError::corrupt("schema_migrations", "table", d))?;
            let known = B::MIGRATIONS.last().map_or(0, |m| m.0);
            if let Some(&newest) = applied.last().filter(|&&v| v > known) {
                return Err(StoreError::Migration {
                    location: shown.clone(),
                    version: newest,
                    detail: format!(
                        "the store is at schema version {newest}, newer than this rollway knows ({known}): upgrade rollway"
                    ),
                });
            }
            for &(version, text) in B::MIGRATIONS {
                if applied.contains(&version) {
                    continue;
                }
                sql.batch(text).map_err(|e| StoreError::Migration {
                    location: shown.clone(),
                    version,
                    detail: e.to_string(),
                })?;
                sql.exec(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                    &[version.into(), now.as_millis().into()],
                )?;
            }
            Ok(())
        })
    }

    /// The masking filter as it is now (cheap: the matcher is shared).
    pub(crate) fn current_masker(&self) -> Masker {
        self.masker
            .read()
            .map_or_else(|poisoned| poisoned.into_inner().clone(), |m| m.clone())
    }

    /// Runs `f` in one write transaction, serialised with every other write,
    /// with the chain head locked; commits only when `f` returns `Ok`. A
    /// status change and its event go through here together.
    pub(crate) fn in_tx<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let clock = &*self.clock;
        let masker = &self.current_masker();
        self.backend.write(|sql| {
            let row = sql.row(&format!("{HEAD_SQL}{}", B::LOCK_HEAD), &[])?;
            let head = decode_head(row)
                .map_err(|d| StoreError::corrupt("event log head", "event_head id 1", d))?
                .ok_or_else(|| StoreError::corrupt("event log head", "event_head id 1", "the row is missing"))?;
            let mut tx = Tx {
                sql,
                clock,
                masker,
                head,
            };
            f(&mut tx)
        })
    }
}

// ---- events ----

const EVENT_COLS: &str = "seq, id, at, kind, level, message, environment, deployment_id, job_id, \
     pipeline_run_id, service, trace_id, operator, data, prev_hash, hash";

fn insert_event(sql: &mut dyn Sql, e: &Event) -> Result<(), StoreError> {
    let id = |v: Option<String>| Param::Text(v);
    sql.exec(
        &format!(
            "INSERT INTO events ({EVENT_COLS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ),
        &[
            e.seq.into(),
            e.id.to_string().into(),
            e.at.as_millis().into(),
            e.kind.as_str().into(),
            e.level.as_str().into(),
            e.message.as_str().into(),
            e.environment.clone().into(),
            id(e.deployment_id.map(|i| i.to_string())),
            id(e.job_id.map(|i| i.to_string())),
            id(e.pipeline_run_id.map(|i| i.to_string())),
            e.service.clone().into(),
            e.trace_id.clone().into(),
            e.operator.clone().into(),
            canonical_json(&e.data).into(),
            e.prev_hash.as_str().into(),
            e.hash.as_str().into(),
        ],
    )?;
    Ok(())
}

/// Reads an event row; on failure, the row's seq (when readable) and why.
fn decode_event(r: &Row) -> Result<Event, (Option<i64>, String)> {
    let seq = r.int(0, "seq").map_err(|d| (None, d))?;
    let inner = || -> Result<Event, String> {
        let data = r.text(13, "data")?;
        Ok(Event {
            seq,
            id: r.parse(1, "id")?,
            at: Timestamp::from_millis(r.int(2, "at")?),
            kind: r.parse(3, "kind")?,
            level: r.parse(4, "level")?,
            message: r.text(5, "message")?,
            environment: r.opt_text(6, "environment")?,
            deployment_id: r.parse_opt(7, "deployment_id")?,
            job_id: r.parse_opt(8, "job_id")?,
            pipeline_run_id: r.parse_opt(9, "pipeline_run_id")?,
            service: r.opt_text(10, "service")?,
            trace_id: r.opt_text(11, "trace_id")?,
            operator: r.opt_text(12, "operator")?,
            data: serde_json::from_str(&data).map_err(|e| format!("data is not JSON: {e}"))?,
            prev_hash: r.parse(14, "prev_hash")?,
            hash: r.parse(15, "hash")?,
        })
    };
    inner().map_err(|d| (Some(seq), d))
}

fn event_from_row(r: &Row) -> Result<Event, StoreError> {
    decode_event(r)
        .map_err(|(seq, d)| StoreError::corrupt("event", seq.map_or_else(|| "?".to_owned(), |s| s.to_string()), d))
}

/// The verdict on a chain whose rows may not all be readable: the first
/// problem in seq order wins.
fn verdict(rows: &[Row], head: Result<Option<Head>, String>) -> Result<i64, ChainBreak> {
    let mut events = Vec::with_capacity(rows.len());
    for r in rows {
        match decode_event(r) {
            Ok(e) => events.push(e),
            Err((seq, detail)) => {
                let n = verify_chain(events, None)?;
                let seq = seq.unwrap_or(n + 1);
                return Err(if seq == n + 1 {
                    ChainBreak {
                        seq,
                        id: None,
                        reason: format!("its stored row is unreadable: {detail}"),
                    }
                } else {
                    ChainBreak {
                        seq: n + 1,
                        id: None,
                        reason: format!("event {} is missing: the next stored event is {seq}", n + 1),
                    }
                });
            }
        }
    }
    match head {
        Ok(Some(h)) => verify_chain(
            events,
            Some(&ChainHead {
                seq: h.seq,
                hash: h.hash,
            }),
        ),
        Ok(None) => {
            let n = verify_chain(events, None)?;
            Err(ChainBreak {
                seq: n + 1,
                id: None,
                reason:
                    "the log's head row (event_head id 1) is missing, so events deleted from the end would go unseen"
                        .into(),
            })
        }
        Err(detail) => {
            let n = verify_chain(events, None)?;
            Err(ChainBreak {
                seq: n + 1,
                id: None,
                reason: format!("the log's head row (event_head id 1) is unreadable: {detail}"),
            })
        }
    }
}

// ---- environments ----

const ENV_COLS: &str = "id, name, kind, status, lifecycle, domain, https, platform, app, \
     nginx_config, config, created_at, updated_at";

fn decode_environment(r: &Row) -> Result<Environment, String> {
    let lifecycle: Lifecycle<EnvironmentStatus> =
        serde_json::from_str(&r.text(4, "lifecycle")?).map_err(|e| format!("lifecycle: {e}"))?;
    // Re-walk the history so a hand-edited lifecycle cannot smuggle in an
    // edge the transition table forbids.
    let checked = Lifecycle::from_history(lifecycle.history().to_vec()).map_err(|e| format!("lifecycle: {e}"))?;
    if checked != lifecycle {
        return Err("lifecycle: its status is not where its history leads".into());
    }
    let status: EnvironmentStatus = r.parse(3, "status")?;
    if status != lifecycle.status() {
        return Err(format!(
            "status is {status} but its lifecycle says {}",
            lifecycle.status()
        ));
    }
    Ok(Environment {
        id: r.parse(0, "id")?,
        name: r.text(1, "name")?,
        kind: r.parse(2, "kind")?,
        lifecycle,
        domain: r.opt_text(5, "domain")?,
        https: r.bool(6, "https")?,
        platform: r.parse(7, "platform")?,
        app: r.opt_text(8, "app")?,
        nginx_config: r.opt_text(9, "nginx_config")?,
        config: serde_json::from_str(&r.text(10, "config")?).map_err(|e| format!("config is not JSON: {e}"))?,
        created_at: Timestamp::from_millis(r.int(11, "created_at")?),
        updated_at: Timestamp::from_millis(r.int(12, "updated_at")?),
    })
}

fn environment_from_row(r: &Row) -> Result<Environment, StoreError> {
    decode_environment(r).map_err(|d| {
        let name = r.text(1, "name").unwrap_or_else(|_| "?".into());
        StoreError::corrupt("environment", name, d)
    })
}

fn get_environment(sql: &mut dyn Sql, name: &str) -> Result<Option<Environment>, StoreError> {
    sql.row(
        &format!("SELECT {ENV_COLS} FROM environments WHERE name = $1"),
        &[name.into()],
    )?
    .as_ref()
    .map(environment_from_row)
    .transpose()
}

fn put_environment(sql: &mut dyn Sql, env: &Environment) -> Result<(), StoreError> {
    let lifecycle = serde_json::to_value(&env.lifecycle)
        .map(|v| canonical_json(&v))
        .map_err(|e| StoreError::corrupt("environment", &env.name, format!("cannot encode its lifecycle: {e}")))?;
    sql.exec(
        &format!(
            "INSERT INTO environments ({ENV_COLS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, \
             status = excluded.status, lifecycle = excluded.lifecycle, domain = excluded.domain, \
             https = excluded.https, platform = excluded.platform, app = excluded.app, \
             nginx_config = excluded.nginx_config, config = excluded.config, \
             created_at = excluded.created_at, updated_at = excluded.updated_at"
        ),
        &[
            env.id.to_string().into(),
            env.name.as_str().into(),
            env.kind.as_str().into(),
            env.status().as_str().into(),
            lifecycle.into(),
            env.domain.clone().into(),
            env.https.into(),
            env.platform.as_str().into(),
            env.app.clone().into(),
            env.nginx_config.clone().into(),
            canonical_json(&env.config).into(),
            env.created_at.as_millis().into(),
            env.updated_at.as_millis().into(),
        ],
    )?;
    Ok(())
}

// ---- variables ----

const VAR_COLS: &str = "id, environment, key, type, scheme, secret, platform_synced, synced_at, \
     created_at, updated_at, rotated_at, allow_weak";

fn opt_ms(v: Option<Timestamp>) -> Param {
    Param::Int(v.map(Timestamp::as_millis))
}

fn variable_from_row(r: &Row) -> Result<Variable, StoreError> {
    let opt_time = |i: usize, name: &str| Ok::<_, String>(r.opt_int(i, name)?.map(Timestamp::from_millis));
    let inner = || -> Result<Variable, String> {
        Ok(Variable {
            id: r.parse(0, "id")?,
            environment: r.text(1, "environment")?,
            key: r.text(2, "key")?,
            value_type: r.parse(3, "type")?,
            scheme: r.opt_text(4, "scheme")?,
            secret: r.bool(5, "secret")?,
            platform_synced: r.bool(6, "platform_synced")?,
            synced_at: opt_time(7, "synced_at")?,
            created_at: Timestamp::from_millis(r.int(8, "created_at")?),
            updated_at: Timestamp::from_millis(r.int(9, "updated_at")?),
            rotated_at: opt_time(10, "rotated_at")?,
            allow_weak: r.bool(11, "allow_weak")?,
        })
    };
    inner().map_err(|d| {
        let key = r.text(2, "key").unwrap_or_else(|_| "?".into());
        StoreError::corrupt("variable", key, d)
    })
}

fn get_variable(sql: &mut dyn Sql, environment: &str, key: &str) -> Result<Option<Variable>, StoreError> {
    sql.row(
        &format!("SELECT {VAR_COLS} FROM variables WHERE environment = $1 AND key = $2"),
        &[environment.into(), key.into()],
    )?
    .as_ref()
    .map(variable_from_row)
    .transpose()
}

fn put_variable(sql: &mut dyn Sql, v: &Variable) -> Result<(), StoreError> {
    sql.exec(
        &format!(
            "INSERT INTO variables ({VAR_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (environment, key) DO UPDATE SET type = excluded.type, scheme = excluded.scheme, \
             secret = excluded.secret, platform_synced = excluded.platform_synced, \
             synced_at = excluded.synced_at, updated_at = excluded.updated_at, \
             rotated_at = excluded.rotated_at, allow_weak = excluded.allow_weak"
        ),
        &[
            v.id.to_string().into(),
            v.environment.as_str().into(),
            v.key.as_str().into(),
            v.value_type.as_str().into(),
            v.scheme.clone().into(),
            v.secret.into(),
            v.platform_synced.into(),
            opt_ms(v.synced_at),
            v.created_at.as_millis().into(),
            v.updated_at.as_millis().into(),
            opt_ms(v.rotated_at),
            v.allow_weak.into(),
        ],
    )?;
    Ok(())
}

// ---- locks ----

const LOCK_COLS: &str = "name, owner, token, reason, deployment_id, acquired_at, expires_at";

fn lock_from_row(r: &Row) -> Result<Lock, StoreError> {
    let inner = || -> Result<Lock, String> {
        Ok(Lock {
            name: r.text(0, "name")?,
            owner: r.text(1, "owner")?,
            token: r.text(2, "token")?,
            reason: r.text(3, "reason")?,
            deployment_id: r.parse_opt(4, "deployment_id")?,
            acquired_at: Timestamp::from_millis(r.int(5, "acquired_at")?),
            expires_at: Timestamp::from_millis(r.int(6, "expires_at")?),
        })
    };
    inner().map_err(|d| StoreError::corrupt("lock", r.text(0, "name").unwrap_or_else(|_| "?".into()), d))
}

fn get_lock(sql: &mut dyn Sql, name: &str) -> Result<Option<Lock>, StoreError> {
    sql.row(
        &format!("SELECT {LOCK_COLS} FROM locks WHERE name = $1"),
        &[name.into()],
    )?
    .as_ref()
    .map(lock_from_row)
    .transpose()
}

/// A random token telling this holder from any other, even one with the same owner name.
fn new_token(at: Timestamp) -> String {
    let ms = u64::try_from(at.as_millis()).unwrap_or(0);
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        ms / 1000,
        u32::try_from((ms % 1000) * 1_000_000).unwrap_or(0),
    );
    uuid::Uuid::new_v7(ts).simple().to_string()
}

/// A lock event, tied to the environment when the lock is an environment's.
fn lock_event(kind: EventKind, level: Level, lock: &Lock, message: String) -> NewEvent {
    let mut ev = NewEvent::new(kind, level, message)
        .operator(lock.owner.clone())
        .data(json!({
            "name": lock.name,
            "owner": lock.owner,
            "reason": lock.reason,
            "acquired_at": lock.acquired_at.as_millis(),
            "expires_at": lock.expires_at.as_millis(),
        }));
    if let Some(env) = lock.name.strip_prefix("env:") {
        ev = ev.environment(env);
    }
    if let Some(d) = lock.deployment_id {
        ev = ev.deployment(d);
    }
    ev
}

impl<B: Backend> Store for Db<B> {
    fn backend(&self) -> &'static str {
        B::NAME
    }

    fn location(&self) -> &StoreLocation {
        self.backend.location()
    }

    fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    fn schema_version(&self) -> Result<i64, StoreError> {
        self.backend.read(|sql| {
            let rows = sql.rows("SELECT version FROM schema_migrations", &[])?;
            rows.iter().try_fold(0, |max, r| {
                r.int(0, "version")
                    .map(|v| max.max(v))
                    .map_err(|d| StoreError::corrupt("schema_migrations", "table", d))
            })
        })
    }

    fn sync_environment(&self, spec: &EnvironmentSpec) -> Result<Environment, StoreError> {
        self.in_tx(|tx| match get_environment(tx.sql(), &spec.name)? {
            None => {
                let at = tx.now();
                let env = Environment::create(spec.clone(), at);
                put_environment(tx.sql(), &env)?;
                let ev = NewEvent::new(
                    EventKind::EnvironmentCreated,
                    Level::Info,
                    format!("environment {} ({}) created", env.name, env.kind),
                )
                .environment(env.name.clone())
                .data(json!({
                    "id": env.id.to_string(),
                    "kind": env.kind.as_str(),
                    "domain": env.domain,
                    "https": env.https,
                    "platform": env.platform.as_str(),
                }));
                tx.append_at(ev, at)?;
                Ok(env)
            }
            Some(mut env) => {
                let at = tx.now().max(env.updated_at);
                if env.apply_spec(spec, at) {
                    put_environment(tx.sql(), &env)?;
                }
                Ok(env)
            }
        })
    }

    fn environments(&self) -> Result<Vec<Environment>, StoreError> {
        self.backend.read(|sql| {
            sql.rows(&format!("SELECT {ENV_COLS} FROM environments ORDER BY name"), &[])?
                .iter()
                .map(environment_from_row)
                .collect()
        })
    }

    fn environment(&self, name: &str) -> Result<Option<Environment>, StoreError> {
        self.backend.read(|sql| get_environment(sql, name))
    }

    fn transition_environment(
        &self,
        name: &str,
        to: EnvironmentStatus,
        operator: &str,
    ) -> Result<Environment, StoreError> {
        self.in_tx(|tx| {
            let mut env = get_environment(tx.sql(), name)?.ok_or_else(|| StoreError::NotFound {
                what: "environment",
                id: name.to_owned(),
            })?;
            let from = env.status();
            let at = tx.now().max(env.lifecycle.since());
            env.transition(to, at)?;
            put_environment(tx.sql(), &env)?;
            let ev = NewEvent::new(
                EventKind::EnvironmentTransition,
                Level::Info,
                format!("environment {name}: {from} → {to}"),
            )
            .environment(name)
            .operator(operator)
            .data(json!({ "from": from.as_str(), "to": to.as_str() }));
            tx.append_at(ev, at)?;
            Ok(env)
        })
    }

    fn append_event(&self, ev: NewEvent) -> Result<Event, StoreError> {
        self.in_tx(|tx| tx.append(ev))
    }

    fn events(&self, q: &EventQuery) -> Result<Vec<Event>, StoreError> {
        let mut conds = Vec::new();
        let mut params: Vec<Param> = Vec::new();
        let mut filter = |col: &str, p: Param| {
            params.push(p);
            conds.push(format!("{col} ${}", params.len()));
        };
        if let Some(env) = &q.environment {
            filter("environment =", env.as_str().into());
        }
        if let Some(d) = q.deployment_id {
            filter("deployment_id =", d.to_string().into());
        }
        if let Some(k) = q.kind {
            filter("kind =", k.as_str().into());
        }
        if let Some(after) = q.after_seq {
            filter("seq >", after.into());
        }
        let mut text = format!("SELECT {EVENT_COLS} FROM events");
        if !conds.is_empty() {
            text.push_str(" WHERE ");
            text.push_str(&conds.join(" AND "));
        }
        text.push_str(if q.newest_first {
            " ORDER BY seq DESC"
        } else {
            " ORDER BY seq"
        });
        if let Some(limit) = q.limit {
            params.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
            text.push_str(&format!(" LIMIT ${}", params.len()));
        }
        self.backend
            .read(|sql| sql.rows(&text, &params)?.iter().map(event_from_row).collect())
    }

    fn verify_events(&self) -> Result<Result<i64, ChainBreak>, StoreError> {
        let (rows, head) = self.backend.read(|sql| {
            let rows = sql.rows(&format!("SELECT {EVENT_COLS} FROM events ORDER BY seq"), &[])?;
            let head = sql.row(HEAD_SQL, &[])?;
            Ok((rows, head))
        })?;
        Ok(verdict(&rows, decode_head(head)))
    }

    fn acquire_lock(&self, req: &LockRequest) -> Result<Lock, StoreError> {
        self.in_tx(|tx| {
            let now = tx.now();
            let current = get_lock(tx.sql(), &req.name)?;
            // A deployment may resume its own lease (a detached stability
            // window watched again by `rollway verify`).
            let resuming = |c: &Lock| c.deployment_id.is_some() && c.deployment_id == req.deployment_id;
            if let Some(cur) = current.as_ref().filter(|c| !c.is_expired(now) && !resuming(c)) {
                return Err(StoreError::Locked(Box::new(cur.clone())));
            }
            let lock = Lock {
                name: req.name.clone(),
                owner: req.owner.clone(),
                token: new_token(now),
                reason: req.reason.clone(),
                deployment_id: req.deployment_id,
                acquired_at: now,
                expires_at: now.plus(req.lease),
            };
            let mut msg = Some(format!("{} locked {}: {}", lock.owner, lock.name, lock.reason));
            if let Some(old) = current.as_ref().filter(|c| !c.is_expired(now)) {
                tx.sql()
                    .exec("DELETE FROM locks WHERE name = $1", &[old.name.as_str().into()])?;
                // The lease a deploy takes before its deployment exists and
                // the deployment's own are one hold on the environment: it
                // is logged when taken, not again when handed over.
                let same_hold = old.owner == lock.owner && old.reason == lock.reason;
                msg = (!same_hold).then(|| {
                    format!(
                        "{} resumes the lease {} took on {}: {}",
                        lock.owner, old.owner, old.name, lock.reason
                    )
                });
            } else if let Some(old) = current {
                tx.sql()
                    .exec("DELETE FROM locks WHERE name = $1", &[old.name.as_str().into()])?;
                let msg = format!(
                    "the lease of {} on {} expired at {}; {} takes it over",
                    old.owner, old.name, old.expires_at, lock.owner
                );
                tx.append_at(lock_event(EventKind::LockExpired, Level::Warn, &old, msg), now)?;
            }
            tx.sql().exec(
                &format!("INSERT INTO locks ({LOCK_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"),
                &[
                    lock.name.as_str().into(),
                    lock.owner.as_str().into(),
                    lock.token.as_str().into(),
                    lock.reason.as_str().into(),
                    lock.deployment_id.map(|d| d.to_string()).into(),
                    lock.acquired_at.as_millis().into(),
                    lock.expires_at.as_millis().into(),
                ],
            )?;
            if let Some(msg) = msg {
                tx.append_at(lock_event(EventKind::LockAcquired, Level::Info, &lock, msg), now)?;
            }
            Ok(lock)
        })
    }

    fn renew_lock(&self, lock: &Lock, lease: Duration) -> Result<Lock, StoreError> {
        self.in_tx(|tx| {
            let now = tx.now();
            match get_lock(tx.sql(), &lock.name)? {
                Some(cur) if cur.token == lock.token && !cur.is_expired(now) => {
                    let renewed = Lock {
                        expires_at: now.plus(lease),
                        ..cur
                    };
                    tx.sql().exec(
                        "UPDATE locks SET expires_at = $1 WHERE name = $2 AND token = $3",
                        &[
                            renewed.expires_at.as_millis().into(),
                            renewed.name.as_str().into(),
                            renewed.token.as_str().into(),
                        ],
                    )?;
                    Ok(renewed)
                }
                _ => Err(StoreError::LockLost {
                    name: lock.name.clone(),
                }),
            }
        })
    }

    fn release_lock(&self, lock: &Lock) -> Result<(), StoreError> {
        self.in_tx(|tx| {
            let held = get_lock(tx.sql(), &lock.name)?.filter(|cur| cur.token == lock.token);
            if let Some(cur) = held {
                tx.sql().exec(
                    "DELETE FROM locks WHERE name = $1 AND token = $2",
                    &[cur.name.as_str().into(), cur.token.as_str().into()],
                )?;
                let msg = format!("{} released {}", cur.owner, cur.name);
                tx.append(lock_event(EventKind::LockReleased, Level::Info, &cur, msg))?;
            }
            Ok(())
        })
    }

    fn lock(&self, name: &str) -> Result<Option<Lock>, StoreError> {
        let now = self.clock.now();
        Ok(self
            .backend
            .read(|sql| get_lock(sql, name))?
            .filter(|l| !l.is_expired(now)))
    }

    fn set_masker(&self, masker: Masker) {
        match self.masker.write() {
            Ok(mut m) => *m = masker,
            Err(poisoned) => *poisoned.into_inner() = masker,
        }
    }

    fn variables(&self, environment: &str) -> Result<Vec<Variable>, StoreError> {
        self.backend.read(|sql| {
            sql.rows(
                &format!("SELECT {VAR_COLS} FROM variables WHERE environment = $1 ORDER BY key"),
                &[environment.into()],
            )?
            .iter()
            .map(variable_from_row)
            .collect()
        })
    }

    fn variable(&self, environment: &str, key: &str) -> Result<Option<Variable>, StoreError> {
        self.backend.read(|sql| get_variable(sql, environment, key))
    }

    fn record_variable(&self, var: &Variable, ev: NewEvent) -> Result<Variable, StoreError> {
        self.in_tx(|tx| {
            put_variable(tx.sql(), var)?;
            tx.append(ev)?;
            get_variable(tx.sql(), &var.environment, &var.key)?
                .ok_or_else(|| StoreError::corrupt("variable", &var.key, "it vanished right after it was written"))
        })
    }

    fn remove_variable(&self, environment: &str, key: &str, ev: NewEvent) -> Result<bool, StoreError> {
        self.in_tx(|tx| {
            let n = tx.sql().exec(
                "DELETE FROM variables WHERE environment = $1 AND key = $2",
                &[environment.into(), key.into()],
            )?;
            if n > 0 {
                tx.append(ev)?;
            }
            Ok(n > 0)
        })
    }

    fn insert_artifact(&self, artifact: &Artifact, ev: NewEvent) -> Result<Artifact, StoreError> {
        self.do_insert_artifact(artifact, ev)
    }

    fn artifact(&self, id: ArtifactId) -> Result<Option<Artifact>, StoreError> {
        self.do_artifact(id)
    }

    fn find_artifacts(&self, prefix: &str) -> Result<Vec<Artifact>, StoreError> {
        self.do_find_artifacts(prefix)
    }

    fn artifact_by_content_digest(&self, digest: &Sha256Digest) -> Result<Option<Artifact>, StoreError> {
        self.do_artifact_by_content_digest(digest)
    }

    fn artifacts(&self) -> Result<Vec<Artifact>, StoreError> {
        self.do_artifacts()
    }

    fn delete_artifact(&self, id: ArtifactId, ev: NewEvent) -> Result<bool, StoreError> {
        self.do_delete_artifact(id, ev)
    }

    fn renew_artifact(&self, id: ArtifactId, expires_at: Timestamp, ev: NewEvent) -> Result<Artifact, StoreError> {
        self.do_renew_artifact(id, expires_at, ev)
    }

    fn insert_deployment(&self, deployment: &Deployment, events: Vec<NewEvent>) -> Result<Deployment, StoreError> {
        self.do_insert_deployment(deployment, events)
    }

    fn deployment(&self, id: DeploymentId) -> Result<Option<Deployment>, StoreError> {
        self.do_deployment(id)
    }

    fn update_deployment(&self, id: DeploymentId, f: UpdateFn<'_, Deployment>) -> Result<Deployment, StoreError> {
        self.do_update_deployment(id, f)
    }

    fn deployments(&self, env: Option<&str>, limit: usize) -> Result<Vec<Deployment>, StoreError> {
        self.do_deployments(env, limit)
    }

    fn active_deployments(&self, env: Option<&str>) -> Result<Vec<Deployment>, StoreError> {
        self.do_active_deployments(env)
    }

    fn last_succeeded(&self, env: &str) -> Result<Option<Deployment>, StoreError> {
        self.do_last_succeeded(env)
    }

    fn put_verification(&self, verification: &Verification, events: Vec<NewEvent>) -> Result<Verification, StoreError> {
        self.do_put_verification(verification, events)
    }

    fn verifications(&self, deployment_id: DeploymentId) -> Result<Vec<Verification>, StoreError> {
        self.do_verifications(deployment_id)
    }

    fn insert_run(&self, run: &PipelineRun, events: Vec<NewEvent>) -> Result<PipelineRun, StoreError> {
        self.do_insert_run(run, events)
    }

    fn update_run(&self, id: PipelineRunId, f: UpdateFn<'_, PipelineRun>) -> Result<PipelineRun, StoreError> {
        self.do_update_run(id, f)
    }

    fn run(&self, id: PipelineRunId) -> Result<Option<PipelineRun>, StoreError> {
        self.do_run(id)
    }

    fn runs(&self, limit: usize) -> Result<Vec<PipelineRun>, StoreError> {
        self.do_runs(limit)
    }

    fn insert_job(&self, job: &Job, events: Vec<NewEvent>) -> Result<Job, StoreError> {
        self.do_insert_job(job, events)
    }

    fn update_job(&self, id: JobId, f: UpdateFn<'_, Job>) -> Result<Job, StoreError> {
        self.do_update_job(id, f)
    }

    fn jobs(&self, run_id: PipelineRunId) -> Result<Vec<Job>, StoreError> {
        self.do_jobs(run_id)
    }

    fn job(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        self.do_job(id)
    }

    fn append_job_log(&self, job_id: JobId, chunk: &str) -> Result<(), StoreError> {
        self.do_append_job_log(job_id, chunk)
    }

    fn put_stack(&self, stack: &Stack, events: Vec<NewEvent>) -> Result<Stack, StoreError> {
        self.do_put_stack(stack, events)
    }

    fn update_stack(&self, id: StackId, f: UpdateFn<'_, Stack>) -> Result<Stack, StoreError> {
        self.do_update_stack(id, f)
    }

    fn stacks(&self, deployment_id: DeploymentId) -> Result<Vec<Stack>, StoreError> {
        self.do_stacks(deployment_id)
    }

    fn put_resource(&self, resource: &Resource, events: Vec<NewEvent>) -> Result<Resource, StoreError> {
        self.do_put_resource(resource, events)
    }

    fn resources(&self, stack_id: StackId) -> Result<Vec<Resource>, StoreError> {
        self.do_resources(stack_id)
    }

    fn put_monitor(&self, def: &MonitorDef) -> Result<MonitorRecord, StoreError> {
        self.do_put_monitor(def)
    }

    fn monitor(&self, name: &str) -> Result<Option<MonitorRecord>, StoreError> {
        self.do_monitor(name)
    }

    fn monitors(&self) -> Result<Vec<MonitorRecord>, StoreError> {
        self.do_monitors()
    }

    fn set_monitor_paused(&self, name: &str, paused: bool) -> Result<MonitorRecord, StoreError> {
        self.do_set_monitor_paused(name, paused)
    }

    fn record_samples(&self, batch: &[ProbeSample]) -> Result<RecordedSamples, StoreError> {
        self.do_record_samples(batch)
    }

    fn latest_samples(&self, environment: Option<&str>) -> Result<Vec<ProbeSample>, StoreError> {
        self.do_latest_samples(environment)
    }

    fn samples(
        &self,
        monitor: &str,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<ProbeSample>, StoreError> {
        self.do_samples(monitor, from, to, limit)
    }

    fn roll_up(&self, settings: &RollupSettings) -> Result<RollupReport, StoreError> {
        self.do_roll_up(settings)
    }

    fn rollups(
        &self,
        monitor: &str,
        resolution: Resolution,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<RollupRow>, StoreError> {
        self.do_rollups(monitor, resolution, from, to)
    }

    fn rollups_in(
        &self,
        resolution: Resolution,
        ranges: &[(String, rollway_model::spans::Span)],
        latency: bool,
    ) -> Result<Vec<Vec<RollupRow>>, StoreError> {
        self.do_rollups_in(resolution, ranges, latency)
    }

    fn rollup_sums(
        &self,
        resolution: Resolution,
        ranges: &[crate::SumRange],
    ) -> Result<Vec<crate::RollupSum>, StoreError> {
        self.do_rollup_sums(resolution, ranges)
    }

    fn prune_monitoring(&self, keep: &Retention, windows: &MaintenanceSpans<'_>) -> Result<Pruned, StoreError> {
        self.do_prune_monitoring(keep, windows)
    }

    fn add_maintenance(
        &self,
        window: &rollway_model::maintenance::MaintenanceWindow,
        ev: NewEvent,
    ) -> Result<rollway_model::maintenance::MaintenanceWindow, StoreError> {
        self.do_add_maintenance(window, ev)
    }

    fn maintenance_windows(
        &self,
        environment: Option<&str>,
    ) -> Result<Vec<rollway_model::maintenance::MaintenanceWindow>, StoreError> {
        self.do_maintenance_windows(environment)
    }

    fn remove_maintenance(
        &self,
        id: i64,
        ev: NewEvent,
    ) -> Result<Option<rollway_model::maintenance::MaintenanceWindow>, StoreError> {
        self.do_remove_maintenance(id, ev)
    }

    fn claim_shards(&self, owner: &str, shards: u32, lease: Duration) -> Result<Claimed, StoreError> {
        self.do_claim_shards(owner, shards, lease)
    }

    fn release_shards(&self, owner: &str, shards: &[u32]) -> Result<usize, StoreError> {
        self.do_release_shards(owner, shards)
    }

    fn leave_shards(&self, owner: &str) -> Result<usize, StoreError> {
        self.do_leave_shards(owner)
    }

    fn shard_leases(&self) -> Result<Vec<ShardLease>, StoreError> {
        self.do_shard_leases()
    }

    fn execute_raw(&self, sql: &str) -> Result<(), StoreError> {
        self.backend.execute_raw(sql)
    }

    fn put_metric_records(&self, records: &[rollway_model::MetricRecord]) -> Result<u64, StoreError> {
        self.do_put_metric_records(records)
    }

    fn metric_records(
        &self,
        environment: &str,
        metric_type: Option<rollway_model::MetricType>,
    ) -> Result<Vec<rollway_model::MetricRecord>, StoreError> {
        self.do_metric_records(environment, metric_type)
    }

    fn log_cursor(&self, source: &crate::logs::LogSource) -> Result<Option<String>, StoreError> {
        self.do_log_cursor(source)
    }

    fn insert_backup(
        &self,
        backup: &rollway_model::Backup,
        events: Vec<NewEvent>,
    ) -> Result<rollway_model::Backup, StoreError> {
        self.do_insert_backup(backup, events)
    }

    fn update_backup(
        &self,
        id: rollway_model::BackupId,
        f: UpdateFn<'_, rollway_model::Backup>,
    ) -> Result<rollway_model::Backup, StoreError> {
        self.do_update_backup(id, f)
    }

    fn backup(&self, id: rollway_model::BackupId) -> Result<Option<rollway_model::Backup>, StoreError> {
        self.do_backup(id)
    }

    fn find_backups(&self, prefix: &str) -> Result<Vec<rollway_model::Backup>, StoreError> {
        self.do_find_backups(prefix)
    }

    fn backups(&self, env: Option<&str>) -> Result<Vec<rollway_model::Backup>, StoreError> {
        self.do_backups(env)
    }

    fn insert_restore(
        &self,
        restore: &rollway_model::Restore,
        events: Vec<NewEvent>,
    ) -> Result<rollway_model::Restore, StoreError> {
        self.do_insert_restore(restore, events)
    }

    fn update_restore(
        &self,
        id: rollway_model::RestoreId,
        f: UpdateFn<'_, rollway_model::Restore>,
    ) -> Result<rollway_model::Restore, StoreError> {
        self.do_update_restore(id, f)
    }

    fn restores(&self, backup_id: rollway_model::BackupId) -> Result<Vec<rollway_model::Restore>, StoreError> {
        self.do_restores(backup_id)
    }

    fn put_log_records(
        &self,
        source: &crate::logs::LogSource,
        previous: Option<&str>,
        cursor: &str,
        records: &[crate::logs::NewLogRecord],
    ) -> Result<Option<u64>, StoreError> {
        self.do_put_log_records(source, previous, cursor, records)
    }

    fn log_records(&self, query: &crate::logs::LogQuery) -> Result<Vec<crate::logs::LogRecord>, StoreError> {
        self.do_log_records(query)
    }

    fn count_log_records(&self, query: &crate::logs::LogQuery) -> Result<u64, StoreError> {
        self.do_count_log_records(query)
    }

    fn prune_log_records(&self, keep: Duration, batch: u32) -> Result<u64, StoreError> {
        self.do_prune_log_records(keep, batch)
    }

    fn open_alert(
        &self,
        alert: &rollway_model::Alert,
        deliveries: &[crate::NewDelivery],
        ev: NewEvent,
    ) -> Result<rollway_model::Alert, StoreError> {
        self.do_open_alert(alert, deliveries, ev)
    }

    fn update_alert(
        &self,
        id: rollway_model::AlertId,
        f: UpdateFn<'_, rollway_model::Alert>,
        deliveries: &[crate::NewDelivery],
    ) -> Result<rollway_model::Alert, StoreError> {
        self.do_update_alert(id, f, deliveries)
    }

    fn alert(&self, id: rollway_model::AlertId) -> Result<Option<rollway_model::Alert>, StoreError> {
        self.do_alert(id)
    }

    fn find_alerts(&self, prefix: &str) -> Result<Vec<rollway_model::Alert>, StoreError> {
        self.do_find_alerts(prefix)
    }

    fn alerts(&self, q: &crate::AlertQuery) -> Result<Vec<rollway_model::Alert>, StoreError> {
        self.do_alerts(q)
    }

    fn unresolved_alert(&self, rule: &str, subject: &str) -> Result<Option<rollway_model::Alert>, StoreError> {
        self.do_unresolved_alert(rule, subject)
    }

    fn alert_trackers(&self) -> Result<Vec<(String, String, rollway_model::alerting::Tracker)>, StoreError> {
        self.do_alert_trackers()
    }

    fn put_alert_tracker(
        &self,
        rule: &str,
        subject: &str,
        tracker: &rollway_model::alerting::Tracker,
    ) -> Result<(), StoreError> {
        self.do_put_alert_tracker(rule, subject, tracker)
    }

    fn add_deliveries(&self, deliveries: &[crate::NewDelivery]) -> Result<u64, StoreError> {
        self.do_add_deliveries(deliveries)
    }

    fn claim_deliveries(&self, limit: usize, lease: Duration) -> Result<Vec<crate::Delivery>, StoreError> {
        self.do_claim_deliveries(limit, lease)
    }

    fn finish_delivery(&self, id: i64, attempt: &crate::Attempt) -> Result<crate::Delivery, StoreError> {
        self.do_finish_delivery(id, attempt)
    }

    fn deliveries(&self, alert: Option<rollway_model::AlertId>) -> Result<Vec<crate::Delivery>, StoreError> {
        self.do_deliveries(alert)
    }

    fn push_metric_point(&self, point: &crate::MetricPoint) -> Result<(), StoreError> {
        self.do_push_metric_point(point)
    }

    fn latest_metric_point(&self, environment: &str, name: &str) -> Result<Option<crate::MetricPoint>, StoreError> {
        self.do_latest_metric_point(environment, name)
    }
}
