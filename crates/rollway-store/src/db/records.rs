//! Entities stored as documents: artifacts, deployments, verifications,
//! pipeline runs, jobs, stacks and resources. Each row holds the entity's
//! canonical JSON in `doc` (the source of truth, whose lifecycle the model
//! replays through its transition table when read) plus the columns queries
//! use, which every read checks against the doc.

use rollway_model::event::canonical_json;
use rollway_model::rules::{self, Violation};
use rollway_model::{
    Alert, AlertId, AlertStatus, Artifact, ArtifactId, Backup, BackupId, Deployment, DeploymentId, DeploymentStatus,
    Job, JobId, Masker, NewEvent, PipelineRun, PipelineRunId, Resource, Restore, RestoreId, Sha256Digest, Stack,
    StackId, StateMachine, Timestamp, Verification,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Db, Tx, opt_ms};
use crate::alerts::{AlertQuery, NewDelivery};
use crate::error::StoreError;
use crate::sql::{Backend, Param, Row, Sql, Val};

/// What an update closure looks like on the `Store` trait.
pub(crate) type UpdateFn<'a, E> = &'a mut dyn FnMut(&mut E) -> Result<Vec<NewEvent>, StoreError>;

/// References an entity's events get when they name none themselves.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tie {
    environment: Option<String>,
    deployment: Option<DeploymentId>,
    run: Option<PipelineRunId>,
    job: Option<JobId>,
}

impl Tie {
    fn apply(&self, mut ev: NewEvent) -> NewEvent {
        if ev.environment.is_none() {
            ev.environment.clone_from(&self.environment);
        }
        ev.deployment_id = ev.deployment_id.or(self.deployment);
        ev.pipeline_run_id = ev.pipeline_run_id.or(self.run);
        ev.job_id = ev.job_id.or(self.job);
        ev
    }
}

/// An entity kept as a document row.
pub(crate) trait Stored: Serialize + DeserializeOwned + Clone {
    /// For messages: "deployment", "job", …
    const WHAT: &'static str;
    const TABLE: &'static str;
    /// The query columns after `id`, in the order `columns` gives them.
    const COLUMNS: &'static [&'static str];
    /// Read after `doc` and handed to `read_extra` (the job log).
    const EXTRA: &'static str = "";

    fn id_text(&self) -> String;
    /// The values of `COLUMNS`, derived from the entity alone.
    fn columns(&self) -> Vec<Param>;

    /// The document stored in `doc`.
    fn doc(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self)
    }

    /// Takes the `EXTRA` columns, which start at `first`.
    fn read_extra(&mut self, _row: &Row, _first: usize) -> Result<(), String> {
        Ok(())
    }

    /// Masks the free-text fields a secret could reach.
    fn mask(&mut self, _m: &Masker) {}

    /// The model's rules the record must keep to be saved, at `now`.
    fn violations(&self, _now: Timestamp) -> Vec<Violation> {
        Vec::new()
    }

    /// The model's rules that need the records around this one (the
    /// deployment's other stacks, the resource's stack), read in the same
    /// transaction.
    fn related_violations(&self, _sql: &mut dyn Sql) -> Result<Vec<Violation>, StoreError> {
        Ok(Vec::new())
    }

    /// Checks that the records this one belongs to exist, and says which
    /// references its events get.
    fn tie(&self, sql: &mut dyn Sql) -> Result<Tie, StoreError>;

    /// Writes what lives outside the row's columns and doc (the job log).
    fn after_insert(&self, _sql: &mut dyn Sql) -> Result<(), StoreError> {
        Ok(())
    }

    /// A replacing `put` must extend what is stored, so a stale copy cannot
    /// undo newer steps; `Err` says what the copy lacks.
    fn extends(&self, _stored: &Self) -> Result<(), String> {
        Ok(())
    }
}

fn opt_text<T: ToString>(v: Option<&T>) -> Param {
    Param::Text(v.map(ToString::to_string))
}

fn count(n: u64) -> Param {
    Param::Int(Some(i64::try_from(n).unwrap_or(i64::MAX)))
}

fn limit_param(n: usize) -> Param {
    Param::Int(Some(i64::try_from(n).unwrap_or(i64::MAX)))
}

fn extends_lifecycle<S: StateMachine>(
    new: &rollway_model::Lifecycle<S>,
    stored: &rollway_model::Lifecycle<S>,
) -> Result<(), String> {
    if new.history().starts_with(stored.history()) {
        Ok(())
    } else {
        Err(format!(
            "the store has it {} since {}, this copy {} since {}",
            stored.status(),
            stored.since(),
            new.status(),
            new.since()
        ))
    }
}

// ---- the entities ----

impl Stored for Artifact {
    const WHAT: &'static str = "artifact";
    const TABLE: &'static str = "artifacts";
    const COLUMNS: &'static [&'static str] = &[
        "kind",
        "sha256",
        "content_digest",
        "size_bytes",
        "source_version",
        "branch",
        "job_id",
        "built_at",
        "created_at",
        "expires_at",
    ];

    fn id_text(&self) -> String {
        self.id.to_string()
    }

    fn columns(&self) -> Vec<Param> {
        vec![
            self.kind.as_str().into(),
            self.sha256.as_str().into(),
            self.content_digest.as_str().into(),
            count(self.size_bytes),
            opt_text(self.source_version.as_ref()),
            self.branch.clone().into(),
            opt_text(self.job_id.as_ref()),
            self.built_at.as_millis().into(),
            self.created_at.as_millis().into(),
            self.expires_at.as_millis().into(),
        ]
    }

    /// Seed 000 `sizeBytes > 0`, seed 001 `expiresAt` in the future (and
    /// after `createdAt`): an artifact is only ever inserted, so this holds
    /// when it is created.
    fn violations(&self, now: Timestamp) -> Vec<Violation> {
        rules::artifact::validate(self, now)
    }

    fn tie(&self, _sql: &mut dyn Sql) -> Result<Tie, StoreError> {
        Ok(Tie {
            job: self.job_id,
            ..Tie::default()
        })
    }
}

impl Stored for Deployment {
    const WHAT: &'static str = "deployment";
    const TABLE: &'static str = "deployments";
    const COLUMNS: &'static [&'static str] = &[
        "kind",
        "environment",
        "status",
        "operator",
        "artifact_id",
        "version_tag",
        "commit_sha",
        "branch",
        "rollback_to",
        "rollback_target",
        "started_at",
        "finished_at",
    ];

    fn id_text(&self) -> String {
        self.id.to_string()
    }

    fn columns(&self) -> Vec<Param> {
        vec![
            self.kind.as_str().into(),
            self.environment.as_str().into(),
            self.status().as_str().into(),
            self.operator.as_str().into(),
            opt_text(self.artifact_id.as_ref()),
            self.version_tag.clone().into(),
            opt_text(self.commit_sha.as_ref()),
            self.branch.clone().into(),
            opt_text(self.rollback_to.as_ref()),
            self.rollback_target.into(),
            self.started_at.as_millis().into(),
            opt_ms(self.finished_at),
        ]
    }

    fn mask(&mut self, m: &Masker) {
        for text in [&mut self.notes, &mut self.failure_reason, &mut self.rollback_reason]
            .into_iter()
            .flatten()
        {
            *text = m.mask(text);
        }
    }

    fn violations(&self, _now: Timestamp) -> Vec<Violation> {
        rules::deployment::validate(self)
    }

    /// Seed 004 "Stacks_order must respect dependency constraints", against
    /// the stacks recorded so far.
    fn related_violations(&self, sql: &mut dyn Sql) -> Result<Vec<Violation>, StoreError> {
        let stacks = stacks_of(sql, self.id)?;
        Ok(stacks_order_violations(self, &stacks))
    }

    fn tie(&self, _sql: &mut dyn Sql) -> Result<Tie, StoreError> {
        Ok(Tie {
            environment: Some(self.environment.clone()),
            deployment: Some(self.id),
            ..Tie::default()
        })
    }
}

/// A deployment's stacks as recorded, in the order they were first put.
fn stacks_of(sql: &mut dyn Sql, deployment: DeploymentId) -> Result<Vec<Stack>, StoreError> {
    list(
        sql,
        "WHERE deployment_id = $1 ORDER BY ord",
        &[deployment.to_string().into()],
    )
}

/// `stacks_order` against `stacks`: while the deployment is being set up its
/// stacks are recorded one by one, after it, so a listed stack may have no
/// record yet; once it has entered `deploying`, every stack is recorded and
/// the complete rule holds (a deployment that failed before that, e.g. one
/// recovery closes after a crash, still has only the stacks it got).
fn stacks_order_violations(d: &Deployment, stacks: &[Stack]) -> Vec<Violation> {
    if d.lifecycle.entered(DeploymentStatus::Deploying).is_some() {
        rules::deployment::validate_stacks_order(d, stacks)
    } else {
        rules::deployment::validate_stacks_order_so_far(d, stacks)
    }
}

/// The environment of a recorded deployment, or `NotFound`.
fn deployment_environment(sql: &mut dyn Sql, id: DeploymentId) -> Result<String, StoreError> {
    let row = sql.row(
        "SELECT environment FROM deployments WHERE id = $1",
        &[id.to_string().into()],
    )?;
    let row = row.ok_or_else(|| StoreError::NotFound {
        what: "deployment",
        id: id.to_string(),
    })?;
    row.text(0, "environment")
        .map_err(|d| StoreError::corrupt("deployment", id.to_string(), d))
}

impl Stored for Verification {
    const WHAT: &'static str = "verification";
    const TABLE: &'static str = "verifications";
    const COLUMNS: &'static [&'static str] = &["deployment_id", "result", "window_ends_at", "failed_probes"];

    fn id_text(&self) -> String {
        self.id.to_string()
    }

    fn columns(&self) -> Vec<Param> {
        vec![
            self.deployment_id.to_string().into(),
            Param::Text(self.result.map(|r| r.as_str().to_owned())),
            opt_ms(self.window_ends_at),
            count(self.failed_probes),
        ]
    }

    fn mask(&mut self, m: &Masker) {
        for host in &mut self.hosts {
            if let Some(text) = &mut host.log_excerpt {
                *text = m.mask(text);
            }
        }
    }

    fn tie(&self, sql: &mut dyn Sql) -> Result<Tie, StoreError> {
        Ok(Tie {
            environment: Some(deployment_environment(sql, self.deployment_id)?),
            deployment: Some(self.deployment_id),
            ..Tie::default()
        })
    }
}

impl Stored for PipelineRun {
    const WHAT: &'static str = "pipeline run";
    const TABLE: &'static str = "pipeline_runs";
    const COLUMNS: &'static [&'static str] = &[
        "status",
        "environment",
        "triggered_by",
        "commit_hash",
        "branch",
        "created_at",
        "started_at",
        "finished_at",
    ];

    fn id_text(&self) -> String {
        self.id.to_string()
    }

    fn columns(&self) -> Vec<Param> {
        vec![
            self.status().as_str().into(),
            self.environment.clone().into(),
            self.triggered_by.as_str().into(),
            opt_text(self.commit.as_ref()),
            self.branch.clone().into(),
            self.lifecycle.started_at().as_millis().into(),
            opt_ms(self.started_at()),
            opt_ms(self.finished_at()),
        ]
    }

    fn tie(&self, _sql: &mut dyn Sql) -> Result<Tie, StoreError> {
        Ok(Tie {
            environment: self.environment.clone(),
            run: Some(self.id),
            ..Tie::default()
        })
    }
}

/// NUL cannot be stored in PostgreSQL text; both backends store U+FFFD instead.
fn scrub_log(m: &Masker, text: &str) -> String {
    let masked = m.mask(text);
    if masked.contains('\0') {
        masked.replace('\0', "\u{FFFD}")
    } else {
        masked
    }
}

impl Stored for Job {
    const WHAT: &'static str = "job";
    const TABLE: &'static str = "jobs";
    const COLUMNS: &'static [&'static str] = &[
        "run_id",
        "name",
        "type",
        "status",
        "start_time",
        "end_time",
        "exit_code",
    ];
    const EXTRA: &'static str = ", log";

    fn id_text(&self) -> String {
        self.id.to_string()
    }

    fn columns(&self) -> Vec<Param> {
        vec![
            self.run_id.to_string().into(),
            self.name.as_str().into(),
            self.job_type.as_str().into(),
            self.status().as_str().into(),
            opt_ms(self.start_time),
            opt_ms(self.end_time),
            Param::Int(self.exit_code.map(i64::from)),
        ]
    }

    /// The log lives in its own column.
    fn doc(&self) -> Result<Value, serde_json::Error> {
        let mut v = serde_json::to_value(self)?;
        if let Some(logs) = v.get_mut("logs") {
            *logs = Value::String(String::new());
        }
        Ok(v)
    }

    fn read_extra(&mut self, row: &Row, first: usize) -> Result<(), String> {
        self.logs = row.text(first, "log")?;
        Ok(())
    }

    fn after_insert(&self, sql: &mut dyn Sql) -> Result<(), StoreError> {
        write_log(sql, self, "")
    }

    fn mask(&mut self, m: &Masker) {
        self.logs = scrub_log(m, &self.logs);
    }

    fn violations(&self, _now: Timestamp) -> Vec<Violation> {
        rules::job::validate(self)
    }

    fn tie(&self, sql: &mut dyn Sql) -> Result<Tie, StoreError> {
        let row = sql.row(
            "SELECT environment FROM pipeline_runs WHERE id = $1",
            &[self.run_id.to_string().into()],
        )?;
        let row = row.ok_or_else(|| StoreError::NotFound {
            what: "pipeline run",
            id: self.run_id.to_string(),
        })?;
        let environment = row
            .opt_text(0, "environment")
            .map_err(|d| StoreError::corrupt("pipeline run", self.run_id.to_string(), d))?;
        Ok(Tie {
            environment,
            run: Some(self.run_id),
            job: Some(self.id),
            ..Tie::default()
        })
    }
}

impl Stored for Stack {
    const WHAT: &'static str = "stack";
    const TABLE: &'static str = "stacks";
    const COLUMNS: &'static [&'static str] = &["deployment_id", "name", "status"];

    fn id_text(&self) -> String {
        self.id.to_string()
    }

    fn columns(&self) -> Vec<Param> {
        vec![
            self.deployment_id.to_string().into(),
            self.name.as_str().into(),
            self.status().as_str().into(),
        ]
    }

    fn mask(&mut self, m: &Masker) {
        for value in self.outputs.values_mut() {
            *value = m.mask(value);
        }
        if let Some(text) = &mut self.error_message {
            *text = m.mask(text);
        }
    }

    /// Seed 004 Stack: its outputs against the contract it carries once
    /// deployed; its dependencies deployed before it deploys; and, with its
    /// deployment's other stacks, the deployment's `stacks_order`.
    fn violations(&self, _now: Timestamp) -> Vec<Violation> {
        rules::stack::validate_own_outputs(self)
    }

    fn related_violations(&self, sql: &mut dyn Sql) -> Result<Vec<Violation>, StoreError> {
        let mut siblings = stacks_of(sql, self.deployment_id)?;
        match siblings.iter_mut().find(|s| s.id == self.id) {
            Some(stored) => *stored = self.clone(),
            None => siblings.push(self.clone()),
        }
        let mut out = rules::stack::validate_dependencies(self, &siblings);
        if let Some(d) = load::<Deployment>(sql, &self.deployment_id.to_string())? {
            out.extend(stacks_order_violations(&d, &siblings));
        }
        Ok(out)
    }

    fn tie(&self, sql: &mut dyn Sql) -> Result<Tie, StoreError> {
        Ok(Tie {
            environment: Some(deployment_environment(sql, self.deployment_id)?),
            deployment: Some(self.deployment_id),
            ..Tie::default()
        })
    }

    fn extends(&self, stored: &Self) -> Result<(), String> {
        extends_lifecycle(&self.lifecycle, &stored.lifecycle)
    }
}

impl Stored for Resource {
    const WHAT: &'static str = "resource";
    const TABLE: &'static str = "resources";
    const COLUMNS: &'static [&'static str] = &["stack_id", "type", "logical_id", "physical_id", "status"];

    fn id_text(&self) -> String {
        self.id.to_string()
    }

    fn columns(&self) -> Vec<Param> {
        vec![
            self.stack_id.to_string().into(),
            self.resource_type.as_str().into(),
            self.logical_id.as_str().into(),
            self.resource_id.clone().into(),
            self.status().as_str().into(),
        ]
    }

    fn mask(&mut self, m: &Masker) {
        for value in self.properties.values_mut() {
            *value = m.mask_json(value);
        }
        for value in self.tags.values_mut() {
            *value = m.mask(value);
        }
    }

    /// Seed 004 Resource: an available resource keeps the contract of its
    /// stack (property values and types, required tags), checked on the
    /// masked copy that is stored (a contract names no secret values).
    fn related_violations(&self, sql: &mut dyn Sql) -> Result<Vec<Violation>, StoreError> {
        Ok(load::<Stack>(sql, &self.stack_id.to_string())?
            .map(|stack| rules::resource::validate_in_stack(self, &stack))
            .unwrap_or_default())
    }

    fn tie(&self, sql: &mut dyn Sql) -> Result<Tie, StoreError> {
        let row = sql.row(
            "SELECT s.deployment_id, d.environment FROM stacks s \
             JOIN deployments d ON d.id = s.deployment_id WHERE s.id = $1",
            &[self.stack_id.to_string().into()],
        )?;
        let row = row.ok_or_else(|| StoreError::NotFound {
            what: "stack",
            id: self.stack_id.to_string(),
        })?;
        let corrupt = |d| StoreError::corrupt("stack", self.stack_id.to_string(), d);
        Ok(Tie {
            deployment: Some(row.parse(0, "deployment_id").map_err(corrupt)?),
            environment: Some(row.text(1, "environment").map_err(corrupt)?),
            ..Tie::default()
        })
    }

    fn extends(&self, stored: &Self) -> Result<(), String> {
        extends_lifecycle(&self.lifecycle, &stored.lifecycle)
    }
}

impl Stored for Alert {
    const WHAT: &'static str = "alert";
    const TABLE: &'static str = "alerts";
    const COLUMNS: &'static [&'static str] = &[
        "rule",
        "subject",
        "environment",
        "status",
        "severity",
        "triggered_at",
        "acknowledged_at",
        "acknowledged_by",
        "ack_until",
        "resolved_at",
        "deployment_id",
        "version_tag",
        "note",
    ];

    fn id_text(&self) -> String {
        self.id.to_string()
    }

    fn columns(&self) -> Vec<Param> {
        vec![
            self.rule.as_str().into(),
            self.subject.as_str().into(),
            self.environment.as_str().into(),
            self.status().as_str().into(),
            self.severity.as_str().into(),
            self.triggered_at.as_millis().into(),
            opt_ms(self.acknowledged_at),
            self.acknowledged_by.clone().into(),
            opt_ms(self.ack_until),
            opt_ms(self.resolved_at),
            opt_text(self.deployment_id.as_ref()),
            self.deployment_version.clone().into(),
            self.note.clone().into(),
        ]
    }

    fn mask(&mut self, m: &Masker) {
        self.summary = m.mask(&self.summary);
        if let Some(note) = &mut self.note {
            *note = m.mask(note);
        }
    }

    fn violations(&self, _now: Timestamp) -> Vec<Violation> {
        rules::alert::validate(self)
    }

    fn tie(&self, _sql: &mut dyn Sql) -> Result<Tie, StoreError> {
        Ok(Tie {
            environment: Some(self.environment.clone()),
            deployment: self.deployment_id,
            ..Tie::default()
        })
    }

    fn extends(&self, stored: &Self) -> Result<(), String> {
        extends_lifecycle(&self.lifecycle, &stored.lifecycle)
    }
}

impl Stored for Backup {
    const WHAT: &'static str = "backup";
    const TABLE: &'static str = "backups";
    const COLUMNS: &'static [&'static str] = &[
        "environment",
        "name",
        "kind",
        "class",
        "location",
        "size_bytes",
        "sha256",
        "status",
        "restore_point",
        "deployment_id",
        "created_at",
        "expires_at",
        "finished_at",
    ];

    fn id_text(&self) -> String {
        self.id.to_string()
    }

    fn columns(&self) -> Vec<Param> {
        vec![
            self.environment.as_str().into(),
            self.name.as_str().into(),
            self.kind.as_str().into(),
            self.class.as_str().into(),
            self.location.as_str().into(),
            count(self.size_bytes),
            opt_text(self.checksum.as_ref()),
            self.status().as_str().into(),
            Param::Bool(self.restore_point),
            opt_text(self.deployment_id.as_ref()),
            self.created_at.as_millis().into(),
            self.expires_at.as_millis().into(),
            opt_ms(self.finished_at),
        ]
    }

    fn mask(&mut self, m: &Masker) {
        if let Some(f) = &mut self.failure {
            *f = m.mask(f);
        }
    }

    fn violations(&self, _now: Timestamp) -> Vec<Violation> {
        rules::backup::validate(self)
    }

    fn tie(&self, _sql: &mut dyn Sql) -> Result<Tie, StoreError> {
        Ok(Tie {
            environment: Some(self.environment.clone()),
            deployment: self.deployment_id,
            ..Tie::default()
        })
    }

    fn extends(&self, stored: &Self) -> Result<(), String> {
        extends_lifecycle(&self.lifecycle, &stored.lifecycle)
    }
}

impl Stored for Restore {
    const WHAT: &'static str = "restore job";
    const TABLE: &'static str = "restore_jobs";
    const COLUMNS: &'static [&'static str] = &[
        "backup_id",
        "environment",
        "status",
        "target",
        "started_at",
        "finished_at",
    ];

    fn id_text(&self) -> String {
        self.id.to_string()
    }

    fn columns(&self) -> Vec<Param> {
        vec![
            self.backup_id.to_string().into(),
            self.environment.as_str().into(),
            self.status().as_str().into(),
            self.target.as_str().into(),
            self.started_at.as_millis().into(),
            opt_ms(self.finished_at),
        ]
    }

    fn mask(&mut self, m: &Masker) {
        self.target = m.mask(&self.target);
        if let Some(n) = &mut self.notes {
            *n = m.mask(n);
        }
    }

    fn violations(&self, _now: Timestamp) -> Vec<Violation> {
        rules::restore::validate(self)
    }

    /// Seed 002 "backupArtifactId 必须存在": the backup is recorded.
    fn tie(&self, sql: &mut dyn Sql) -> Result<Tie, StoreError> {
        let id = self.backup_id.to_string();
        if sql
            .row("SELECT id FROM backups WHERE id = $1", &[id.as_str().into()])?
            .is_none()
        {
            return Err(StoreError::NotFound { what: "backup", id });
        }
        Ok(Tie {
            environment: Some(self.environment.clone()),
            ..Tie::default()
        })
    }

    fn extends(&self, stored: &Self) -> Result<(), String> {
        extends_lifecycle(&self.lifecycle, &stored.lifecycle)
    }
}

// ---- rows ----

fn select_sql<E: Stored>() -> String {
    format!(
        "SELECT id, {}, doc{} FROM {}",
        E::COLUMNS.join(", "),
        E::EXTRA,
        E::TABLE
    )
}

fn same(p: &Param, v: &Val) -> bool {
    match (p, v) {
        (Param::Int(None) | Param::Text(None) | Param::Real(None) | Param::Bytes(None), Val::Null) => true,
        (Param::Real(Some(a)), Val::Real(b)) => a == b,
        (Param::Int(Some(a)), Val::Int(b)) => a == b,
        (Param::Text(Some(a)), Val::Text(b)) => a == b,
        (Param::Bytes(Some(a)), Val::Bytes(b)) => a == b,
        (Param::Bool(a), Val::Bool(b)) => a == b,
        (Param::Bool(a), Val::Int(b)) => i64::from(*a) == *b,
        _ => false,
    }
}

fn shown_param(p: &Param) -> String {
    match p {
        Param::Int(Some(v)) => v.to_string(),
        Param::Text(Some(v)) => format!("'{v}'"),
        Param::Bool(v) => v.to_string(),
        Param::Real(Some(v)) => v.to_string(),
        Param::Bytes(Some(v)) => format!("{} bytes", v.len()),
        Param::Int(None) | Param::Text(None) | Param::Real(None) | Param::Bytes(None) => "null".into(),
    }
}

fn shown_val(v: &Val) -> String {
    match v {
        Val::Null => "null".into(),
        Val::Int(v) => v.to_string(),
        Val::Text(v) => format!("'{v}'"),
        Val::Bool(v) => v.to_string(),
        Val::Real(v) => v.to_string(),
        Val::Bytes(v) => format!("{} bytes", v.len()),
        Val::Other(what) => what.clone(),
    }
}

/// Reads a row of `select_sql`: the doc, checked against the id and query
/// columns beside it.
fn decode<E: Stored>(r: &Row) -> Result<E, StoreError> {
    let id = r.text(0, "id").unwrap_or_else(|_| "?".into());
    let inner = || -> Result<E, String> {
        let n = E::COLUMNS.len();
        let doc = r.text(n + 1, "doc")?;
        let mut e: E = serde_json::from_str(&doc).map_err(|e| format!("its doc: {e}"))?;
        if e.id_text() != id {
            return Err(format!("its doc is the record of {}", e.id_text()));
        }
        let stored = r.0.get(1..=n).ok_or("the row is missing columns")?;
        for ((name, want), got) in E::COLUMNS.iter().zip(e.columns()).zip(stored) {
            if !same(&want, got) {
                return Err(format!(
                    "column {name} holds {} but its doc says {}",
                    shown_val(got),
                    shown_param(&want)
                ));
            }
        }
        e.read_extra(r, n + 2)?;
        Ok(e)
    };
    inner().map_err(|d| StoreError::corrupt(E::WHAT, id.clone(), d))
}

fn encode<E: Stored>(e: &E) -> Result<String, StoreError> {
    e.doc()
        .map(|v| canonical_json(&v))
        .map_err(|err| StoreError::corrupt(E::WHAT, e.id_text(), format!("cannot encode it: {err}")))
}

fn load<E: Stored>(sql: &mut dyn Sql, id: &str) -> Result<Option<E>, StoreError> {
    sql.row(&format!("{} WHERE id = $1", select_sql::<E>()), &[id.into()])?
        .as_ref()
        .map(decode)
        .transpose()
}

fn list<E: Stored>(sql: &mut dyn Sql, rest: &str, params: &[Param]) -> Result<Vec<E>, StoreError> {
    sql.rows(&format!("{} {rest}", select_sql::<E>()), params)?
        .iter()
        .map(decode)
        .collect()
}

/// `$first, $first+1, …` for `n` parameters.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn insert_row<E: Stored>(sql: &mut dyn Sql, e: &E, upsert: bool) -> Result<(), StoreError> {
    let n = E::COLUMNS.len();
    let table = E::TABLE;
    let mut text = format!(
        "INSERT INTO {table} (id, ord, {}, doc) VALUES ($1, (SELECT COALESCE(MAX(ord), 0) + 1 FROM {table}), {}, ${})",
        E::COLUMNS.join(", "),
        placeholders(2, n),
        n + 2
    );
    if upsert {
        let set: Vec<String> = E::COLUMNS
            .iter()
            .chain(&["doc"])
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        text.push_str(&format!(" ON CONFLICT (id) DO UPDATE SET {}", set.join(", ")));
    }
    let mut params = vec![Param::from(e.id_text())];
    params.extend(e.columns());
    params.push(encode(e)?.into());
    sql.exec(&text, &params)?;
    Ok(())
}

fn update_row<E: Stored>(sql: &mut dyn Sql, e: &E) -> Result<(), StoreError> {
    let set: Vec<String> = E::COLUMNS
        .iter()
        .chain(&["doc"])
        .enumerate()
        .map(|(i, c)| format!("{c} = ${}", i + 2))
        .collect();
    let mut params = vec![Param::from(e.id_text())];
    params.extend(e.columns());
    params.push(encode(e)?.into());
    sql.exec(
        &format!("UPDATE {} SET {} WHERE id = $1", E::TABLE, set.join(", ")),
        &params,
    )?;
    Ok(())
}

/// Every rule of the model the record must keep, its own and those that
/// need the records around it; all are reported at once.
fn check_rules<E: Stored>(sql: &mut dyn Sql, e: &E, now: Timestamp) -> Result<(), StoreError> {
    let mut violations = e.violations(now);
    violations.extend(e.related_violations(sql)?);
    if violations.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            what: E::WHAT,
            id: e.id_text(),
            violations,
        })
    }
}

fn not_found<E: Stored>(id: &str) -> StoreError {
    StoreError::NotFound {
        what: E::WHAT,
        id: id.to_owned(),
    }
}

fn append_all(tx: &mut Tx<'_>, tie: &Tie, events: Vec<NewEvent>) -> Result<(), StoreError> {
    for ev in events {
        tx.append(tie.apply(ev))?;
    }
    Ok(())
}

/// Rewrites a job's stored log when it differs from `before`.
fn write_log(sql: &mut dyn Sql, job: &Job, before: &str) -> Result<(), StoreError> {
    if job.logs != before {
        sql.exec(
            "UPDATE jobs SET log = $1 WHERE id = $2",
            &[job.logs.as_str().into(), job.id.to_string().into()],
        )?;
    }
    Ok(())
}

/// A unique name within a parent (a job in its run, a stack in its
/// deployment) taken by another record.
fn name_taken(
    sql: &mut dyn Sql,
    table: &str,
    parent_col: &str,
    parent: String,
    name: &str,
    id: String,
) -> Result<Option<String>, StoreError> {
    let row = sql.row(
        &format!("SELECT id FROM {table} WHERE {parent_col} = $1 AND name = $2 AND id <> $3"),
        &[parent.into(), name.into(), id.into()],
    )?;
    Ok(row.and_then(|r| r.text(0, "id").ok()))
}

/// `find_artifacts`' prefix, normalised; `None` when it can match nothing.
fn artifact_prefix(prefix: &str) -> Option<String> {
    let p = prefix.trim().to_ascii_lowercase();
    let p = p.strip_prefix("sha256:").unwrap_or(&p).to_owned();
    (!p.is_empty() && p.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')).then_some(p)
}

const NEWEST_ARTIFACTS: &str = "ORDER BY created_at DESC, ord DESC";
const NEWEST_DEPLOYMENTS: &str = "ORDER BY started_at DESC, ord DESC";
const NEWEST_BACKUPS: &str = "ORDER BY created_at DESC, ord DESC";

impl<B: Backend> Db<B> {
    /// Records a new entity: parents checked, masked, rules checked, events
    /// appended, in one transaction; returns it as stored.
    fn create<E: Stored>(
        &self,
        e: &E,
        events: Vec<NewEvent>,
        extra: impl FnOnce(&mut dyn Sql, &E) -> Result<(), StoreError>,
    ) -> Result<E, StoreError> {
        self.in_tx(|tx| {
            let id = e.id_text();
            if tx
                .sql()
                .row(
                    &format!("SELECT id FROM {} WHERE id = $1", E::TABLE),
                    &[id.as_str().into()],
                )?
                .is_some()
            {
                return Err(StoreError::Exists { what: E::WHAT, id });
            }
            let tie = e.tie(tx.sql())?;
            let mut e = e.clone();
            e.mask(tx.masker);
            let now = tx.now();
            check_rules(tx.sql(), &e, now)?;
            extra(tx.sql(), &e)?;
            insert_row(tx.sql(), &e, false)?;
            e.after_insert(tx.sql())?;
            append_all(tx, &tie, events)?;
            load(tx.sql(), &id)?
                .ok_or_else(|| StoreError::corrupt(E::WHAT, id, "it vanished right after it was written"))
        })
    }

    /// Creates or replaces an entity by id; a replacement must extend the
    /// stored record.
    fn put<E: Stored>(
        &self,
        e: &E,
        events: Vec<NewEvent>,
        extra: impl FnOnce(&mut dyn Sql, &E) -> Result<(), StoreError>,
    ) -> Result<E, StoreError> {
        self.in_tx(|tx| {
            let id = e.id_text();
            let tie = e.tie(tx.sql())?;
            let mut e = e.clone();
            e.mask(tx.masker);
            if let Some(stored) = load::<E>(tx.sql(), &id)? {
                e.extends(&stored).map_err(|detail| StoreError::Stale {
                    what: E::WHAT,
                    id: id.clone(),
                    detail,
                })?;
            }
            let now = tx.now();
            check_rules(tx.sql(), &e, now)?;
            extra(tx.sql(), &e)?;
            insert_row(tx.sql(), &e, true)?;
            e.after_insert(tx.sql())?;
            append_all(tx, &tie, events)?;
            load(tx.sql(), &id)?
                .ok_or_else(|| StoreError::corrupt(E::WHAT, id, "it vanished right after it was written"))
        })
    }

    /// Load, apply `f`, check, save, append `f`'s events: one transaction.
    fn update<E: Stored>(
        &self,
        id: String,
        f: UpdateFn<'_, E>,
        after: impl FnOnce(&mut dyn Sql, &E, &E) -> Result<(), StoreError>,
    ) -> Result<E, StoreError> {
        self.in_tx(|tx| {
            let before = load::<E>(tx.sql(), &id)?.ok_or_else(|| not_found::<E>(&id))?;
            let mut e = before.clone();
            let events = f(&mut e)?;
            if e.id_text() != id {
                return Err(StoreError::Invalid {
                    what: E::WHAT,
                    id: id.clone(),
                    violations: vec![Violation::new(
                        "id",
                        "store.id-unchanged",
                        format!("an update may not change the id (to {})", e.id_text()),
                    )],
                });
            }
            e.mask(tx.masker);
            let now = tx.now();
            check_rules(tx.sql(), &e, now)?;
            let tie = e.tie(tx.sql())?;
            update_row(tx.sql(), &e)?;
            after(tx.sql(), &before, &e)?;
            append_all(tx, &tie, events)?;
            Ok(e)
        })
    }

    fn read_one<E: Stored>(&self, id: String) -> Result<Option<E>, StoreError> {
        self.backend.read(|sql| load(sql, &id))
    }

    fn read_list<E: Stored>(&self, rest: &str, params: &[Param]) -> Result<Vec<E>, StoreError> {
        self.backend.read(|sql| list(sql, rest, params))
    }

    // ---- artifacts ----

    pub(super) fn do_insert_artifact(&self, a: &Artifact, ev: NewEvent) -> Result<Artifact, StoreError> {
        self.create(a, vec![ev], |_, _| Ok(()))
    }

    pub(super) fn do_artifact(&self, id: ArtifactId) -> Result<Option<Artifact>, StoreError> {
        self.read_one(id.to_string())
    }

    pub(super) fn do_find_artifacts(&self, prefix: &str) -> Result<Vec<Artifact>, StoreError> {
        let Some(p) = artifact_prefix(prefix) else {
            return Ok(Vec::new());
        };
        // The prefix holds only hex digits and '-', so LIKE sees no wildcard
        // but the trailing one.
        let with = format!("{p}%");
        let bare = format!("{}%", p.replace('-', ""));
        self.read_list(
            &format!(
                "WHERE id LIKE $1 OR REPLACE(id, '-', '') LIKE $2 OR sha256 LIKE $1 OR content_digest LIKE $1 \
                 {NEWEST_ARTIFACTS}"
            ),
            &[with.into(), bare.into()],
        )
    }

    pub(super) fn do_artifact_by_content_digest(&self, d: &Sha256Digest) -> Result<Option<Artifact>, StoreError> {
        Ok(self
            .read_list(
                &format!("WHERE content_digest = $1 {NEWEST_ARTIFACTS} LIMIT 1"),
                &[d.as_str().into()],
            )?
            .into_iter()
            .next())
    }

    pub(super) fn do_artifacts(&self) -> Result<Vec<Artifact>, StoreError> {
        self.read_list(NEWEST_ARTIFACTS, &[])
    }

    pub(super) fn do_renew_artifact(
        &self,
        id: ArtifactId,
        expires_at: Timestamp,
        ev: NewEvent,
    ) -> Result<Artifact, StoreError> {
        let mut ev = Some(ev);
        self.update(
            id.to_string(),
            &mut |a: &mut Artifact| {
                a.expires_at = expires_at;
                Ok(ev.take().into_iter().collect())
            },
            |_, _, _| Ok(()),
        )
    }

    pub(super) fn do_delete_artifact(&self, id: ArtifactId, ev: NewEvent) -> Result<bool, StoreError> {
        self.in_tx(|tx| {
            let n = tx
                .sql()
                .exec("DELETE FROM artifacts WHERE id = $1", &[id.to_string().into()])?;
            if n > 0 {
                tx.append(ev)?;
            }
            Ok(n > 0)
        })
    }

    // ---- deployments ----

    pub(super) fn do_insert_deployment(&self, d: &Deployment, events: Vec<NewEvent>) -> Result<Deployment, StoreError> {
        self.create(d, events, |_, _| Ok(()))
    }

    pub(super) fn do_deployment(&self, id: DeploymentId) -> Result<Option<Deployment>, StoreError> {
        self.read_one(id.to_string())
    }

    pub(super) fn do_update_deployment(
        &self,
        id: DeploymentId,
        f: UpdateFn<'_, Deployment>,
    ) -> Result<Deployment, StoreError> {
        self.update(id.to_string(), f, |_, _, _| Ok(()))
    }

    pub(super) fn do_deployments(&self, env: Option<&str>, limit: usize) -> Result<Vec<Deployment>, StoreError> {
        match env {
            Some(env) => self.read_list(
                &format!("WHERE environment = $1 {NEWEST_DEPLOYMENTS} LIMIT $2"),
                &[env.into(), limit_param(limit)],
            ),
            None => self.read_list(&format!("{NEWEST_DEPLOYMENTS} LIMIT $1"), &[limit_param(limit)]),
        }
    }

    pub(super) fn do_active_deployments(&self, env: Option<&str>) -> Result<Vec<Deployment>, StoreError> {
        // In progress: what may still be cancelled. The table decides, not a list here.
        let mut params: Vec<Param> = DeploymentStatus::ALL
            .iter()
            .filter(|s| s.can_transition(DeploymentStatus::Cancelled))
            .map(|s| s.as_str().into())
            .collect();
        let mut text = format!("WHERE status IN ({})", placeholders(1, params.len()));
        if let Some(env) = env {
            params.push(env.into());
            text.push_str(&format!(" AND environment = ${}", params.len()));
        }
        text.push(' ');
        text.push_str(NEWEST_DEPLOYMENTS);
        self.read_list(&text, &params)
    }

    pub(super) fn do_last_succeeded(&self, env: &str) -> Result<Option<Deployment>, StoreError> {
        Ok(self
            .read_list(
                "WHERE environment = $1 AND status = $2 ORDER BY finished_at DESC, ord DESC LIMIT 1",
                &[env.into(), DeploymentStatus::Succeeded.as_str().into()],
            )?
            .into_iter()
            .next())
    }

    // ---- verifications ----

    pub(super) fn do_put_verification(
        &self,
        v: &Verification,
        events: Vec<NewEvent>,
    ) -> Result<Verification, StoreError> {
        self.put(v, events, |_, _| Ok(()))
    }

    pub(super) fn do_verifications(&self, deployment_id: DeploymentId) -> Result<Vec<Verification>, StoreError> {
        self.read_list(
            "WHERE deployment_id = $1 ORDER BY ord",
            &[deployment_id.to_string().into()],
        )
    }

    // ---- pipeline runs and jobs ----

    pub(super) fn do_insert_run(&self, run: &PipelineRun, events: Vec<NewEvent>) -> Result<PipelineRun, StoreError> {
        self.create(run, events, |_, _| Ok(()))
    }

    pub(super) fn do_update_run(
        &self,
        id: PipelineRunId,
        f: UpdateFn<'_, PipelineRun>,
    ) -> Result<PipelineRun, StoreError> {
        self.update(id.to_string(), f, |_, _, _| Ok(()))
    }

    pub(super) fn do_run(&self, id: PipelineRunId) -> Result<Option<PipelineRun>, StoreError> {
        self.read_one(id.to_string())
    }

    pub(super) fn do_runs(&self, limit: usize) -> Result<Vec<PipelineRun>, StoreError> {
        self.read_list("ORDER BY created_at DESC, ord DESC LIMIT $1", &[limit_param(limit)])
    }

    pub(super) fn do_insert_job(&self, job: &Job, events: Vec<NewEvent>) -> Result<Job, StoreError> {
        self.create(job, events, |sql, job| {
            if let Some(other) = name_taken(
                sql,
                "jobs",
                "run_id",
                job.run_id.to_string(),
                &job.name,
                job.id.to_string(),
            )? {
                return Err(StoreError::Exists {
                    what: "job",
                    id: format!("'{}' of pipeline run {} (as {other})", job.name, job.run_id),
                });
            }
            Ok(())
        })
    }

    pub(super) fn do_update_job(&self, id: JobId, f: UpdateFn<'_, Job>) -> Result<Job, StoreError> {
        self.update(id.to_string(), f, |sql, before, job| write_log(sql, job, &before.logs))
    }

    pub(super) fn do_jobs(&self, run_id: PipelineRunId) -> Result<Vec<Job>, StoreError> {
        self.read_list("WHERE run_id = $1 ORDER BY ord", &[run_id.to_string().into()])
    }

    pub(super) fn do_job(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        self.read_one(id.to_string())
    }

    pub(super) fn do_append_job_log(&self, id: JobId, chunk: &str) -> Result<(), StoreError> {
        let chunk = scrub_log(&self.current_masker(), chunk);
        let n = self.backend.write(|sql| {
            sql.exec(
                "UPDATE jobs SET log = log || $1 WHERE id = $2",
                &[chunk.as_str().into(), id.to_string().into()],
            )
        })?;
        if n == 0 {
            return Err(not_found::<Job>(&id.to_string()));
        }
        Ok(())
    }

    // ---- stacks and resources ----

    pub(super) fn do_put_stack(&self, stack: &Stack, events: Vec<NewEvent>) -> Result<Stack, StoreError> {
        self.put(stack, events, |sql, s| {
            if let Some(other) = name_taken(
                sql,
                "stacks",
                "deployment_id",
                s.deployment_id.to_string(),
                &s.name,
                s.id.to_string(),
            )? {
                return Err(StoreError::Exists {
                    what: "stack",
                    id: format!("'{}' of deployment {} (as {other})", s.name, s.deployment_id),
                });
            }
            Ok(())
        })
    }

    pub(super) fn do_update_stack(&self, id: StackId, f: UpdateFn<'_, Stack>) -> Result<Stack, StoreError> {
        self.update(id.to_string(), f, |_, _, _| Ok(()))
    }

    pub(super) fn do_stacks(&self, deployment_id: DeploymentId) -> Result<Vec<Stack>, StoreError> {
        self.read_list(
            "WHERE deployment_id = $1 ORDER BY ord",
            &[deployment_id.to_string().into()],
        )
    }

    pub(super) fn do_put_resource(&self, r: &Resource, events: Vec<NewEvent>) -> Result<Resource, StoreError> {
        self.put(r, events, |_, _| Ok(()))
    }

    pub(super) fn do_resources(&self, stack_id: StackId) -> Result<Vec<Resource>, StoreError> {
        self.read_list("WHERE stack_id = $1 ORDER BY ord", &[stack_id.to_string().into()])
    }
}

impl<B: Backend> Db<B> {
    // ---- alerts ----

    /// Records a new open alert, its event and its deliveries in one
    /// transaction; an unresolved alert of the same rule and subject is
    /// `StoreError::Exists` naming it (the unique index backs this up).
    pub(super) fn do_open_alert(
        &self,
        alert: &Alert,
        deliveries: &[NewDelivery],
        ev: NewEvent,
    ) -> Result<Alert, StoreError> {
        if alert.status() != AlertStatus::Open {
            return Err(StoreError::Invalid {
                what: "alert",
                id: alert.id.to_string(),
                violations: vec![Violation::new(
                    "status",
                    "store.alert-opens-open",
                    format!("a new alert is open, not {}", alert.status()),
                )],
            });
        }
        let masker = self.current_masker();
        self.create(alert, vec![ev], |sql, a| {
            if let Some(r) = sql.row(
                "SELECT id FROM alerts WHERE rule = $1 AND subject = $2 AND status <> 'resolved'",
                &[a.rule.as_str().into(), a.subject.as_str().into()],
            )? {
                return Err(StoreError::Exists {
                    what: "unresolved alert of this rule and subject",
                    id: r.text(0, "id").unwrap_or_default(),
                });
            }
            super::alerts::insert_deliveries(sql, &masker, deliveries, a.triggered_at)?;
            Ok(())
        })
    }

    /// Moves an alert through `f` (the model's transitions) and queues
    /// `deliveries`, in one transaction.
    pub(super) fn do_update_alert(
        &self,
        id: AlertId,
        f: UpdateFn<'_, Alert>,
        deliveries: &[NewDelivery],
    ) -> Result<Alert, StoreError> {
        let masker = self.current_masker();
        let now = self.clock.now();
        self.update(id.to_string(), f, |sql, _, _| {
            super::alerts::insert_deliveries(sql, &masker, deliveries, now).map(|_| ())
        })
    }

    pub(super) fn do_alert(&self, id: AlertId) -> Result<Option<Alert>, StoreError> {
        self.read_one(id.to_string())
    }

    pub(super) fn do_find_alerts(&self, prefix: &str) -> Result<Vec<Alert>, StoreError> {
        let p = prefix.trim().to_ascii_lowercase();
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Ok(Vec::new());
        }
        // Only hex digits and '-': LIKE sees no wildcard but the trailing one.
        self.read_list(
            "WHERE id LIKE $1 OR REPLACE(id, '-', '') LIKE $2 ORDER BY triggered_at DESC, ord DESC",
            &[format!("{p}%").into(), format!("{}%", p.replace('-', "")).into()],
        )
    }

    pub(super) fn do_alerts(&self, q: &AlertQuery) -> Result<Vec<Alert>, StoreError> {
        let mut filter = vec!["1 = 1".to_owned()];
        let mut params: Vec<Param> = Vec::new();
        if let Some(env) = &q.environment {
            params.push(env.as_str().into());
            filter.push(format!("environment = ${}", params.len()));
        }
        if q.unresolved {
            filter.push("status <> 'resolved'".to_owned());
        }
        let mut rest = format!("WHERE {} ORDER BY triggered_at DESC, ord DESC", filter.join(" AND "));
        if q.limit > 0 {
            params.push(limit_param(q.limit));
            rest.push_str(&format!(" LIMIT ${}", params.len()));
        }
        self.read_list(&rest, &params)
    }

    pub(super) fn do_unresolved_alert(&self, rule: &str, subject: &str) -> Result<Option<Alert>, StoreError> {
        Ok(self
            .read_list(
                "WHERE rule = $1 AND subject = $2 AND status <> 'resolved'",
                &[rule.into(), subject.into()],
            )?
            .into_iter()
            .next())
    }

    // ---- backups and restore jobs ----

    pub(super) fn do_insert_backup(&self, b: &Backup, events: Vec<NewEvent>) -> Result<Backup, StoreError> {
        self.create(b, events, |_, _| Ok(()))
    }

    pub(super) fn do_update_backup(&self, id: BackupId, f: UpdateFn<'_, Backup>) -> Result<Backup, StoreError> {
        self.update(id.to_string(), f, |_, _, _| Ok(()))
    }

    pub(super) fn do_backup(&self, id: BackupId) -> Result<Option<Backup>, StoreError> {
        self.read_one(id.to_string())
    }

    pub(super) fn do_find_backups(&self, prefix: &str) -> Result<Vec<Backup>, StoreError> {
        let p = prefix.trim().to_ascii_lowercase();
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Ok(Vec::new());
        }
        // Only hex digits and '-': LIKE sees no wildcard but the trailing one.
        self.read_list(
            &format!("WHERE id LIKE $1 OR REPLACE(id, '-', '') LIKE $2 {NEWEST_BACKUPS}"),
            &[format!("{p}%").into(), format!("{}%", p.replace('-', "")).into()],
        )
    }

    pub(super) fn do_backups(&self, env: Option<&str>) -> Result<Vec<Backup>, StoreError> {
        match env {
            Some(e) => self.read_list(&format!("WHERE environment = $1 {NEWEST_BACKUPS}"), &[e.into()]),
            None => self.read_list(NEWEST_BACKUPS, &[]),
        }
    }

    pub(super) fn do_insert_restore(&self, r: &Restore, events: Vec<NewEvent>) -> Result<Restore, StoreError> {
        self.create(r, events, |_, _| Ok(()))
    }

    pub(super) fn do_update_restore(&self, id: RestoreId, f: UpdateFn<'_, Restore>) -> Result<Restore, StoreError> {
        self.update(id.to_string(), f, |_, _, _| Ok(()))
    }

    pub(super) fn do_restores(&self, backup_id: BackupId) -> Result<Vec<Restore>, StoreError> {
        self.read_list(
            "WHERE backup_id = $1 ORDER BY started_at DESC, ord DESC",
            &[backup_id.to_string().into()],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_prefixes_are_normalised_or_refused() {
        let check = |input: &str, expected: Option<&str>| {
            assert_eq!(artifact_prefix(input).as_deref(), expected, "{input:?}");
        };
        check("0192AB", Some("0192ab"));
        check(" sha256:e3b0 ", Some("e3b0"));
        check("0192ab-7c", Some("0192ab-7c"));
        check("", None);
        check("sha256:", None);
        check("ab%", None);
        check("a_b", None);
        check("xyz", None);
    }

    #[test]
    fn ties_fill_only_what_an_event_leaves_empty() {
        let at = rollway_model::Timestamp::from_millis(1);
        let (d1, d2) = (DeploymentId::generate(at), DeploymentId::generate(at));
        let tie = Tie {
            environment: Some("staging".into()),
            deployment: Some(d1),
            ..Tie::default()
        };
        let ev = || NewEvent::new(rollway_model::EventKind::DeployStep, rollway_model::Level::Info, "x");
        let filled = tie.apply(ev());
        assert_eq!(
            (filled.environment.as_deref(), filled.deployment_id),
            (Some("staging"), Some(d1))
        );
        assert_eq!((filled.job_id, filled.pipeline_run_id), (None, None));
        let kept = tie.apply(ev().environment("production").deployment(d2));
        assert_eq!(
            (kept.environment.as_deref(), kept.deployment_id),
            (Some("production"), Some(d2))
        );
    }
}
