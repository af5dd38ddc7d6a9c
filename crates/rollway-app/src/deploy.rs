//! Deploy, verify and recover: assemble a deployment from rollway.toml, the
//! store, the vault and the artifact, hand it to the engine, and class every
//! outcome. A dry run plans and returns the plan; it runs nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context as _;
use rollway_config::{Config, HostTarget};
use rollway_engine::{
    Connector, DeployError, DeployJob, Health, HostPlan, Outcome, Progress, ReleaseSource, ServiceSpec, SshTarget,
    StackSpec,
};
use rollway_model::{
    Artifact, ArtifactId, Deployment, DeploymentId, DeploymentKind, DeploymentStatus, EnvironmentStatus, Masker,
    Verification,
};
use rollway_store::Store;

use crate::build::BuildProgress;
use crate::connect::{self, HostDryRun};
use crate::error::{Code, Error, Note, Result};
use crate::pipeline::PipelineProgress;
use crate::project::{Project, Scope};

/// Where a deploy tells people how it goes: the hosts' steps, the build
/// it may run first, and the `[deploy] jobs` it runs.
pub trait DeployProgress: Progress + BuildProgress + PipelineProgress {}

impl<T: Progress + BuildProgress + PipelineProgress> DeployProgress for T {}

/// The lease length: 60 s, or `ROLLWAY_LEASE` (tests shorten it).
pub fn lease() -> Duration {
    std::env::var("ROLLWAY_LEASE")
        .ok()
        .and_then(|v| rollway_model::time::parse_duration(&v).ok())
        .unwrap_or(rollway_model::DEFAULT_LEASE)
}

/// Everything a deploy, verify or rollback of one environment shares.
pub(crate) struct Prepared {
    pub hosts: Vec<HostPlan>,
    pub health: Health,
    pub service: ServiceSpec,
    pub env_text: String,
    pub masker: Masker,
    pub keep_releases: usize,
}

fn resolve_root(p: &Project, root: &str, local: bool) -> String {
    if local && !Path::new(root).is_absolute() {
        let base = std::fs::canonicalize(p.config_dir()).unwrap_or_else(|_| p.config_dir());
        base.join(root).display().to_string()
    } else {
        root.to_owned()
    }
}

pub(crate) fn prepare(p: &Project, config: &Config, store: &dyn Store, env: &str) -> Result<Prepared> {
    prepare_checked(p, config, store, env, &BTreeMap::new(), true)
}

/// The environment's hosts, health, service and env file (with
/// `overrides` instead of stored values); `check` false skips `secrets
/// check` of today's values (a rollback as it ran does not deploy them).
pub(crate) fn prepare_checked(
    p: &Project,
    config: &Config,
    store: &dyn Store,
    env: &str,
    overrides: &BTreeMap<String, String>,
    check: bool,
) -> Result<Prepared> {
    // An unknown environment is an error here, before anything indexes it.
    p.env_ref(config, env)?;
    let ecfg = &config.environments[env];
    // Command stacks alone ship nothing: no service, no hosts.
    let ships = config.stacks.is_empty() || config.stacks.values().any(|st| st.is_release());
    // `[service]` with this environment's overrides.
    let effective_service = ecfg.service(config.service.as_ref());
    let service_cfg = effective_service.as_ref();
    if ships && service_cfg.is_none() {
        return Err(Error::invalid(format_args!(
            "{} has no [service]: add `start` and `port` so there is something to deploy",
            p.config_path().display()
        )));
    }
    let mut hosts = Vec::new();
    for h in ecfg.hosts.iter().filter(|_| ships) {
        let local = matches!(h.target, HostTarget::Local);
        let root = h
            .effective_root(ecfg)
            .ok_or_else(|| Error::invalid(format_args!("environment {env} has no root for host {h}: set `root`")))?;
        let port = h.effective_port(service_cfg).ok_or_else(|| {
            Error::invalid(format_args!(
                "no port for host {h} of {env}: set [service] port or port in [environments.{env}]"
            ))
        })?;
        let ssh = match &h.target {
            HostTarget::Local => None,
            HostTarget::Ssh(d) => Some(SshTarget {
                user: d.user.clone(),
                host: d.host.clone(),
                port: d.port,
                config: config.ssh.config.as_ref().map(|c| p.config_dir().join(c)),
            }),
        };
        hosts.push(HostPlan {
            name: h.to_string(),
            root: resolve_root(p, root, local),
            port,
            ssh,
        });
    }
    let hc = ecfg.health(&config.health);
    let health = Health {
        path: hc.path.clone(),
        expect_status: hc.expect_status,
        timeout: hc.timeout,
        interval: hc.interval,
        retries: hc.retries,
        window_failures: hc.window_failures,
        stability_window: hc.stability_window,
        canary: ecfg.canary as usize,
        canary_window: ecfg.canary_window,
        parallel: ecfg.effective_parallel(),
    };
    // The host agent names the service from project, environment and root.
    let service = ServiceSpec {
        name: sanitize(&config.project),
        project: config.project.clone(),
        environment: env.to_owned(),
        root: PathBuf::new(),
        command: service_cfg.and_then(|c| c.start.clone()).unwrap_or_default(),
        port: 0,
        env_file: PathBuf::new(),
        kind: service_cfg.map_or(rollway_model::SupervisorKind::Rollway, |c| c.supervisor),
        supervisord_conf: service_cfg.and_then(|c| c.supervisord_conf.as_ref().map(PathBuf::from)),
        supervisorctl: service_cfg.and_then(|c| c.supervisorctl.clone()),
        restart_cmd: service_cfg.and_then(|c| c.restart.clone()),
        restarts_cmd: service_cfg.and_then(|c| c.restarts.clone()),
        rollway_exe: PathBuf::from("rollway"),
    };
    let (env_text, masker) = env_file(p, config, store, env, overrides, check)?;
    Ok(Prepared {
        hosts,
        health,
        service,
        env_text,
        masker,
        keep_releases: ecfg.keep_releases as usize,
    })
}

/// The env file a deploy of `env` writes, and the masker of its secrets:
/// the vault's values when there is one (an identity), checked first when
/// `check`; the plain vars otherwise. Arms the masks with the secrets.
pub(crate) fn env_file(
    p: &Project,
    config: &Config,
    store: &dyn Store,
    env: &str,
    overrides: &BTreeMap<String, String>,
    check: bool,
) -> Result<(String, Masker)> {
    let env_ref = p.env_ref(config, env)?;
    let ecfg = &config.environments[env];
    match p.vault(config, store) {
        Ok(vault) => {
            let problems = if check { vault.check(&env_ref)? } else { Vec::new() };
            if !problems.is_empty() {
                let notes = problems
                    .iter()
                    .map(|pr| Note::Problem(format!("{env}: {pr}")))
                    .collect();
                return Err(Error::invalid(format_args!(
                    "`rollway secrets check {env}` found {} problem(s); nothing was deployed",
                    problems.len()
                ))
                .with_details(serde_json::to_value(&problems)?)
                .with_notes(notes));
            }
            // Arm both masking doors (printer and event log) with this
            // environment's secrets before anything runs.
            let mut secret = Vec::new();
            for (k, v) in vault.values(env)? {
                if vault.is_secret(env, &k)? {
                    secret.push(v);
                }
            }
            p.mask_secrets(store, secret);
            Ok((vault.env_file_with(env, &ecfg.vars, overrides)?, p.masks().masker()))
        }
        Err(e) => {
            let required = config.variables.values().any(|v| v.required_for.contains(&ecfg.kind));
            if required || p.has_stored_values(config, store, env)? {
                return Err(e);
            }
            let entries: Vec<(String, String)> = ecfg.vars.clone().into_iter().collect();
            Ok((rollway_secrets::render_env_file(&entries), Masker::default()))
        }
    }
}

fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    if s.is_empty() { "app".into() } else { s }
}

/// Finds an artifact by UUID, digest or a unique prefix of either.
pub(crate) fn find_artifact(store: &dyn Store, wanted: &str) -> Result<Artifact> {
    let mut found = store.find_artifacts(wanted)?;
    if found.len() > 1 {
        return Err(Error::invalid(format_args!(
            "'{wanted}' matches {} artifacts: give more characters of the id or digest",
            found.len()
        )));
    }
    found.pop().ok_or_else(|| {
        Error::invalid(format_args!(
            "no artifact matches '{wanted}': see `rollway artifact list`"
        ))
    })
}

/// Seed 001 `expiresAt`: an expired artifact is not deployed, unless a
/// deployment runs it or could return to it (those never expire; see
/// `rollway_model::artifacts_in_use`).
pub(crate) fn refuse_expired(config: &rollway_config::Config, store: &dyn Store, a: &Artifact) -> Result<()> {
    let now = store.clock().now();
    if !a.is_expired(now) {
        return Ok(());
    }
    let deployments = store.deployments(None, usize::MAX)?;
    if rollway_model::artifacts_in_use(&deployments, |env| keep_releases(config, env)).contains(&a.id) {
        return Ok(());
    }
    Err(Error::invalid(format_args!(
        "artifact {} expired at {}: run `rollway build` for a fresh one, then deploy it",
        a.id, a.expires_at
    ))
    .with_details(serde_json::json!({ "artifact": a.id, "expires_at": a.expires_at })))
}

/// How many succeeded releases of `env` stay deployable (`keep_releases`;
/// the default for an environment no longer in rollway.toml).
pub(crate) fn keep_releases(config: &rollway_config::Config, env: &str) -> usize {
    let n = config
        .environments
        .get(env)
        .map_or(rollway_config::DEFAULT_KEEP_RELEASES, |e| e.keep_releases);
    usize::try_from(n).unwrap_or(usize::MAX)
}

pub(crate) fn release_of(a: &Artifact) -> Result<ReleaseSource> {
    if !a.aliases_resolved {
        return Err(Error::invalid(format_args!(
            "artifact {} has unresolved aliases, so it would not run; resolve them (e.g. tsc-alias) and build again:\n{}",
            a.id,
            a.unresolved_aliases.join("\n")
        ))
        .with_details(serde_json::json!({ "unresolved_aliases": a.unresolved_aliases })));
    }
    Ok(ReleaseSource {
        artifact_id: a.id,
        archive: PathBuf::from(&a.location),
        sha256: a.sha256.clone(),
        commit: a.source_version.clone(),
        branch: a.branch.clone(),
        dirty: a.dirty,
    })
}

/// Classes an engine error onto the documented exit codes.
pub(crate) fn engine_error(e: DeployError) -> Error {
    let code = match &e {
        DeployError::Store(rollway_store::StoreError::Locked(_)) | DeployError::Deprecated { .. } => Code::Conflict,
        DeployError::Store(_) => return Error::from(e),
        DeployError::Invalid(_) => Code::Invalid,
        DeployError::Cancelled { .. } => Code::Interrupted,
        DeployError::Failed { .. } | DeployError::RollbackFailed { .. } | DeployError::Host(_) => Code::Failed,
    };
    let details = match &e {
        DeployError::Failed {
            deployment,
            rolled_back,
            ..
        } => Some(serde_json::json!({ "deployment": deployment, "rolled_back": rolled_back })),
        DeployError::RollbackFailed { deployment, hosts, .. } => {
            Some(serde_json::json!({ "deployment": deployment, "hosts": hosts }))
        }
        _ => None,
    };
    let err = Error::new(code, e);
    match details {
        Some(d) => err.with_details(d),
        None => err,
    }
}

pub(crate) fn refuse_deprecated(store: &dyn Store, env: &str) -> Result<()> {
    if store
        .environment(env)?
        .is_some_and(|e| e.status() == EnvironmentStatus::Deprecated)
    {
        return Err(engine_error(DeployError::Deprecated {
            environment: env.to_owned(),
        }));
    }
    Ok(())
}

/// What a deployment needs alive while it runs: the connectors, the
/// progress and the interrupt flag.
pub(crate) struct Runtime<'p> {
    pub connector: rollway_engine::Targets,
    progress: &'p dyn Progress,
    interrupted: Arc<AtomicBool>,
}

impl<'p> Runtime<'p> {
    pub fn new(p: &Project, config: &Config, store: &dyn Store, env: &str, progress: &'p dyn Progress) -> Result<Self> {
        Ok(Self {
            connector: connect::connector(p, config, store, env)?,
            progress,
            interrupted: p.interrupt().flag(Scope::Deploy),
        })
    }

    /// A deployment of `release` to `env`, with the defaults of a plain deploy.
    pub fn job<'a>(
        &'a self,
        p: &Project,
        store: &'a dyn Store,
        env: &str,
        prepared: Prepared,
        release: ReleaseSource,
    ) -> DeployJob<'a> {
        let connector: &'a dyn Connector = &self.connector;
        let progress: &'a dyn Progress = self.progress;
        let interrupted: &'a AtomicBool = &self.interrupted;
        DeployJob {
            store,
            connector,
            progress,
            environment: env.to_owned(),
            operator: p.operator(),
            hosts: prepared.hosts,
            health: prepared.health,
            service: prepared.service,
            release,
            env_text: prepared.env_text,
            masker: prepared.masker,
            lease: lease(),
            keep_releases: prepared.keep_releases,
            detach: false,
            interrupted,
            kind: DeploymentKind::Deploy,
            rollback_to: None,
            notes: None,
            version_tag: None,
            lock_wait: Duration::ZERO,
            deployment_id: None,
            supersedes: None,
            stacks: Vec::new(),
            stack_dir: None,
            stack_vars: Vec::new(),
            stack_work: p.state_dir().join("stacks"),
            required_tags: Vec::new(),
            build: None,
            secret_outputs: None,
            hooks: rollway_engine::Hooks::default(),
            switch_to: None,
            env_from_host: None,
            keep_env: None,
            build_ms: None,
        }
    }
}

/// Gives `job` the environment's stacks and where their commands run.
pub(crate) fn with_stacks(
    job: &mut DeployJob<'_>,
    p: &Project,
    config: &Config,
    stacks: Vec<StackSpec>,
    vars: Vec<(String, String)>,
    env: &str,
) {
    let dir = p.config_dir();
    job.stack_dir = Some(std::fs::canonicalize(&dir).unwrap_or(dir));
    job.stack_vars = vars;
    job.required_tags.clone_from(&config.environments[env].required_tags);
    job.stacks = stacks;
}

/// `[stacks]` as the engine takes them, in name order (empty: the release alone).
pub(crate) fn stack_specs(config: &Config) -> Vec<StackSpec> {
    config
        .stacks
        .iter()
        .map(|(name, st)| StackSpec {
            name: name.clone(),
            synth: st.synth.clone(),
            validate: st.validate.clone(),
            deploy: st.deploy.clone(),
            verify: st.verify.clone(),
            rollback: st.rollback.clone(),
            depends_on: st.depends_on.clone(),
            outputs: st.outputs.clone(),
            secret_outputs: st.secret_outputs.clone(),
            resources: resource_contract(st),
        })
        .collect()
}

/// `[stacks.X]`'s `required_properties`, `properties` and
/// `property_types` as the model's resource contract.
fn resource_contract(st: &rollway_config::StackConfig) -> rollway_model::ResourceContract {
    let mut required: std::collections::BTreeMap<String, Option<serde_json::Value>> =
        st.required_properties.iter().map(|p| (p.clone(), None)).collect();
    required.extend(st.properties.iter().map(|(k, v)| (k.clone(), Some(v.clone()))));
    rollway_model::ResourceContract {
        resource_type: None,
        required,
        types: st
            .property_types
            .iter()
            .filter_map(|(k, t)| Some((k.clone(), rollway_model::PropertyType::named(t)?)))
            .collect(),
    }
}

/// One stack of a dry run, in wave order, with the commands it would run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StackStep {
    pub wave: usize,
    pub stack: String,
    /// The release stack: ships the artifact to the hosts.
    pub release: bool,
    pub synth: Option<String>,
    pub validate: Option<String>,
    pub deploy: Option<String>,
    pub verify: Option<String>,
    pub rollback: Option<String>,
}

impl StackStep {
    /// The commands in the order they run, with their phase.
    pub fn commands(&self) -> Vec<(&'static str, &str)> {
        [
            ("synth", &self.synth),
            ("validate", &self.validate),
            ("deploy", &self.deploy),
            ("verify", &self.verify),
            ("rollback", &self.rollback),
        ]
        .into_iter()
        .filter_map(|(phase, c)| c.as_deref().map(|c| (phase, c)))
        .collect()
    }
}

fn dry_run_stacks(stacks: &[StackSpec]) -> Vec<StackStep> {
    let waves = rollway_engine::stack_waves(stacks);
    let mut plan = Vec::new();
    for (n, wave) in waves.iter().enumerate() {
        for &i in wave {
            let st = &stacks[i];
            plan.push(StackStep {
                wave: n + 1,
                stack: st.name.clone(),
                release: st.is_release(),
                synth: st.synth.clone(),
                validate: st.validate.clone(),
                deploy: st.deploy.clone(),
                verify: st.verify.clone(),
                rollback: st.rollback.clone(),
            });
        }
    }
    plan
}

/// How long each phase of a deployment took, in milliseconds: `build` (the
/// artifact build plus the `building` phase of `[deploy] jobs`), then the
/// host phases (`ship`, `switch`, `restart`, `boot`, `window`) as the
/// slowest host took them.
pub fn phases(d: &Deployment, vs: &[Verification]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let history = d.lifecycle.history();
    let at = |to: DeploymentStatus| history.iter().find(|r| r.to == to).map(|r| r.at);
    if let (Some(from), Some(to)) = (at(DeploymentStatus::Building), at(DeploymentStatus::Synthesizing)) {
        // The artifact build (before the deployment existed) and the jobs.
        let jobs = u64::try_from(to.since(from).as_millis()).unwrap_or(u64::MAX);
        out.insert("build".to_owned(), jobs.saturating_add(d.build_ms.unwrap_or(0)));
    }
    for h in vs.iter().flat_map(|v| &v.hosts) {
        for (k, ms) in &h.phases_ms {
            let slot = out.entry(k.clone()).or_insert(0);
            *slot = (*slot).max(*ms);
        }
    }
    out
}

/// `build 1.2s, ship 0.3s, …` in the order they happen.
pub fn phases_line(p: &BTreeMap<String, u64>) -> String {
    const ORDER: [&str; 6] = ["build", "ship", "switch", "restart", "boot", "window"];
    ORDER
        .iter()
        .filter_map(|k| p.get(*k).map(|ms| format!("{k} {:.1}s", *ms as f64 / 1000.0)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a deployment that did not fail ended.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
pub enum Deployed {
    /// It passed its stability window.
    Succeeded {
        deployment: Deployment,
        verifications: Vec<Verification>,
        phases: BTreeMap<String, u64>,
        /// The phases as the store has them, for people (may be empty).
        #[serde(skip)]
        phases_line: String,
    },
    /// It returned once its stability window started (`--detach`).
    Detached { deployment: Deployment, detached: bool },
}

/// The phases of deployment `id` as the store has them, and their line.
fn stored_phases(store: &dyn Store, id: DeploymentId) -> Option<(Deployment, BTreeMap<String, u64>)> {
    let d = store.deployment(id).ok().flatten()?;
    let vs = store.verifications(id).unwrap_or_default();
    let p = phases(&d, &vs);
    Some((d, p))
}

/// Classes what the engine answered.
pub(crate) fn report(p: &Project, store: &dyn Store, outcome: Result<Outcome, DeployError>) -> Result<Deployed> {
    match outcome {
        Ok(Outcome::Succeeded(d)) => {
            let verifications = store.verifications(d.id)?;
            let phases = phases(&d, &verifications);
            // What people see is read back, as it was stored.
            let phases_line = stored_phases(store, d.id)
                .map(|(_, p)| phases_line(&p))
                .unwrap_or_default();
            Ok(Deployed::Succeeded {
                deployment: *d,
                verifications,
                phases,
                phases_line,
            })
        }
        // Interrupted during the window: the deployment stays verifying and
        // the window is left to `rollway verify`; the process was interrupted.
        Ok(Outcome::Detached(d)) if p.interrupt().interrupted() => Err(Error::new(
            Code::Interrupted,
            anyhow::anyhow!(
                "interrupted during the stability window: deployment {} stays verifying and keeps the lease until its window ends; run `rollway verify {}` to watch it",
                d.id,
                d.environment
            ),
        )
        .with_details(serde_json::json!({ "deployment": d, "detached": true }))),
        Ok(Outcome::Detached(d)) => Ok(Deployed::Detached {
            deployment: *d,
            detached: true,
        }),
        // A signal ended it (SIGINT, SIGTERM or SIGHUP): whatever the
        // deployment became, the process was interrupted.
        Err(e) => {
            let code = if p.interrupt().interrupted() {
                Code::Interrupted
            } else {
                Code::Failed
            };
            let deployment = match &e {
                DeployError::Failed { deployment, .. } | DeployError::RollbackFailed { deployment, .. } => {
                    Some(*deployment)
                }
                _ => None,
            };
            let Some(id) = deployment else {
                return Err(match code {
                    Code::Interrupted => Error::new(code, engine_error(e)),
                    _ => engine_error(e),
                });
            };
            let stored = stored_phases(store, id);
            let notes = stored
                .as_ref()
                .map(|(_, p)| phases_line(p))
                .filter(|l| !l.is_empty())
                .map(Note::Phases)
                .into_iter()
                .collect();
            // The machine answer carries the phases too.
            let p = stored.map(|(_, p)| p).unwrap_or_default();
            let details = match &e {
                DeployError::Failed { rolled_back, .. } => {
                    serde_json::json!({ "deployment": id, "rolled_back": rolled_back, "phases": p })
                }
                DeployError::RollbackFailed { hosts, .. } => {
                    serde_json::json!({ "deployment": id, "hosts": hosts, "phases": p })
                }
                _ => serde_json::json!({ "deployment": id, "phases": p }),
            };
            Err(Error::new(code, e).with_details(details).with_notes(notes))
        }
    }
}

/// The environment's lease taken before a deployment exists; given back if
/// the deploy stops before the deployment takes it over.
struct EarlyLease<'a> {
    store: &'a dyn Store,
    lock: Option<rollway_model::Lock>,
    id: DeploymentId,
}

impl EarlyLease<'_> {
    /// The deployment id that resumes this lease; dropping no longer releases it.
    fn hand_over(&mut self) -> DeploymentId {
        self.lock = None;
        self.id
    }
}

impl Drop for EarlyLease<'_> {
    fn drop(&mut self) {
        if let Some(lock) = self.lock.take() {
            let _ = self.store.release_lock(&lock);
        }
    }
}

/// A deploy, as asked.
#[derive(Debug, Clone, Default)]
pub struct DeployRequest {
    /// The environment to deploy to.
    pub env: String,
    /// An artifact id or digest (or a unique prefix); none: build one now.
    pub artifact: Option<String>,
    /// A note kept with the deployment.
    pub note: Option<String>,
    /// The version tag (default: `git describe --tags --always`, else the digest prefix).
    pub version_tag: Option<String>,
    /// How long to wait for another deployment's lease.
    pub lock_wait: Duration,
    /// Return once the stability window starts.
    pub detach: bool,
    /// Values deployed in place of stored ones (`secrets rotate`).
    pub overrides: BTreeMap<String, String>,
    /// With a dry run: list every file that would be linked, patched or sent.
    pub verbose: bool,
}

/// How a dry run would get an artifact when none was named.
#[derive(Debug, Clone)]
pub struct BuildFirst {
    /// `[build] command`, which a deploy would run.
    pub command: Option<String>,
    /// The artifact the plan was made from (the last built, else the last
    /// deployed) and its short digest.
    pub planned_from: Option<(ArtifactId, String)>,
}

/// What `deploy --dry-run` found: nothing ran, nothing changed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeployPlan {
    pub dry_run: bool,
    pub would_build: bool,
    pub build_command: Option<String>,
    pub artifact: Option<ArtifactId>,
    /// `[deploy] jobs` that would run.
    pub jobs: Vec<String>,
    pub stacks: Vec<StackStep>,
    pub hosts: Vec<HostDryRun>,
    /// No artifact was named: how it would be built.
    #[serde(skip)]
    pub build_first: Option<BuildFirst>,
    /// Whether the deploy ships a release to hosts (else command stacks only).
    #[serde(skip)]
    pub ships: bool,
}

/// `deploy --dry-run`: runs nothing (no build command, no job, no stack
/// command) and writes nothing, neither under the state directory nor on a
/// host. Without an artifact it plans from the last artifact built (else
/// the last deployed) and says it would build first.
pub fn plan(p: &Project, req: &DeployRequest) -> Result<DeployPlan> {
    let (config, store) = p.open()?;
    p.env_ref(&config, &req.env)?;
    refuse_deprecated(&*store, &req.env)?;
    let prepared = prepare_checked(p, &config, &*store, &req.env, &req.overrides, true)?;
    let stacks = stack_specs(&config);
    let jobs: Vec<String> = config.environments[&req.env].deploy_jobs(&config.deploy).to_vec();
    let store = &*store;
    let ships = stacks.is_empty() || stacks.iter().any(StackSpec::is_release);
    let stack_plan = dry_run_stacks(&stacks);
    let build_command = config.build.as_ref().and_then(|b| b.command.clone());
    let mut build_first = None;
    let artifact = match (&req.artifact, ships) {
        (_, false) => None,
        (Some(a), true) => {
            let a = find_artifact(store, a)?;
            refuse_expired(&config, store, &a)?;
            Some(a)
        }
        (None, true) => {
            let built = store
                .artifacts()?
                .into_iter()
                .filter(|a| a.job_id.is_none() && Path::new(&a.location).is_file())
                .max_by_key(|a| a.created_at);
            let deployed = || {
                store
                    .last_succeeded(&req.env)
                    .ok()
                    .flatten()
                    .and_then(|d| d.artifact_id)
                    .and_then(|id| store.artifact(id).ok().flatten())
            };
            let a = built.or_else(deployed);
            build_first = Some(BuildFirst {
                command: build_command.clone(),
                planned_from: a.as_ref().map(|a| (a.id, a.short_digest().to_owned())),
            });
            a
        }
    };
    let release = artifact.as_ref().map(release_of).transpose()?;
    let hosts = if ships {
        let scratch = tempfile::tempdir()
            .context("cannot make a scratch directory for the dry run; check that TMPDIR (or /tmp) is writable")?;
        let targets = connect::dry_run_connector(&config, store, &req.env, scratch.path())?;
        let hosts = connect::dry_run(
            &targets,
            &prepared.hosts,
            &prepared.service,
            &connect::DryRun {
                release: release.as_ref(),
                total_bytes: artifact
                    .as_ref()
                    .map_or(0, |a| a.contents.iter().map(|c| c.bytes).sum()),
                reuse: &[],
                verbose: req.verbose,
            },
        )?;
        drop(targets);
        hosts
    } else {
        Vec::new()
    };
    Ok(DeployPlan {
        dry_run: true,
        would_build: req.artifact.is_none() && ships,
        build_command,
        artifact: artifact.as_ref().map(|a| a.id),
        jobs,
        stacks: stack_plan,
        hosts,
        build_first,
        ships,
    })
}

/// Deploys: builds when no artifact is named (under the environment's
/// lease, so of two deploys started together one builds and the other
/// exits 3), runs `[deploy] jobs` and the stacks, ships, switches, verifies,
/// and rolls back by itself when the release is not healthy.
pub fn deploy(p: &Project, req: DeployRequest, progress: &dyn DeployProgress) -> Result<Deployed> {
    let (config, store) = p.open()?;
    p.env_ref(&config, &req.env)?;
    refuse_deprecated(&*store, &req.env)?;
    let prepared = prepare_checked(p, &config, &*store, &req.env, &req.overrides, true)?;
    let stacks = stack_specs(&config);
    let ships = stacks.is_empty() || stacks.iter().any(StackSpec::is_release);
    let ecfg = &config.environments[&req.env];
    let jobs: Vec<String> = ecfg.deploy_jobs(&config.deploy).to_vec();
    // A deploy that builds takes the environment's lease first, so that of
    // two deploys started together one builds and the other exits 3 at once;
    // the deployment created after the build resumes that lease.
    let mut early: Option<EarlyLease<'_>> = None;
    let mut build_ms = None;
    let artifact = match (&req.artifact, ships) {
        (_, false) => None,
        (Some(a), true) => {
            let a = find_artifact(&*store, a)?;
            refuse_expired(&config, &*store, &a)?;
            Some(a)
        }
        (None, true) => {
            let id = DeploymentId::generate(store.clock().now());
            let lease_req = rollway_engine::env_lease_request(&req.env, &p.operator(), "deploy", id, lease());
            let lock = rollway_engine::acquire_lease(&*store, &lease_req, req.lock_wait, &mut |_| {})
                .map_err(|e| engine_error(DeployError::Store(e)))?;
            let started = std::time::Instant::now();
            let (lock, built) = rollway_engine::renewing_lease(&*store, lock, lease(), || {
                crate::build::build_for(p, &config, &*store, Some(&req.env), progress)
            });
            early = Some(EarlyLease {
                store: &*store,
                lock: Some(lock),
                id,
            });
            let built = built?;
            build_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
            Some(built)
        }
    };
    let release = match &artifact {
        Some(a) => release_of(a)?,
        None => placeholder_release(&*store),
    };
    let rt = Runtime::new(p, &config, &*store, &req.env, progress)?;
    let recipients = p.vault(&config, &*store).ok().map(|v| v.recipients());
    let keep_env = |dep: DeploymentId, text: &str| -> Result<(), String> {
        match &recipients {
            Some(r) => crate::rollback::keep_env_file(p, dep, text, r),
            None => Ok(()),
        }
    };
    let stack_vars = if stacks.is_empty() {
        Vec::new()
    } else {
        p.env_values(&config, &*store, &req.env)?
    };
    // The deployment's id is known before it starts, so the pre-migration
    // backup it takes in its building phase can name it.
    let dep_id = match early.as_mut() {
        Some(e) => e.hand_over(),
        None => DeploymentId::generate(store.clock().now()),
    };
    let pre_migration = config
        .deploy
        .pre_migration_backup
        .as_ref()
        .filter(|name| config.backups.get(*name).is_some_and(|b| b.environment == req.env));
    let build_jobs = || -> Result<(), String> {
        if let Some(name) = pre_migration {
            let b = crate::backup::before_migration(p, &config, &*store, name, dep_id)
                .map_err(|e| format!("the pre-migration backup {name} failed, so nothing was migrated: {e}"))?;
            progress.step(None, &format!(
                "pre-migration backup {name} ({}) taken: {} bytes; `rollway rollback {} --restore-db` returns the database to it",
                b.id, b.size_bytes, req.env
            ));
        }
        if jobs.is_empty() {
            return Ok(());
        }
        let run = crate::pipeline::run_pipeline(p, &config, &*store, Some(&req.env), None, jobs.clone(), progress)
            .map_err(|e| e.to_string())?;
        match run.status() {
            rollway_model::PipelineStatus::Success => Ok(()),
            other => Err(format!("pipeline {} ended {other}", run.id)),
        }
    };
    let keep_secret_outputs = |dep: DeploymentId, stack: &str, values: &[(String, String)]| -> Result<String, String> {
        p.mask_secrets(&*store, values.iter().map(|(_, v)| v.clone()));
        // Encrypted to the vault's recipients, like every other value.
        let vault = p.vault(&config, &*store).map_err(|e| {
            format!("{e}; secret outputs need an identity to be kept encrypted: run `rollway secrets init`")
        })?;
        let path = p
            .state_dir()
            .join("outputs")
            .join(dep.to_string())
            .join(format!("{stack}.age"));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        rollway_secrets::age_file::write_secrets_file(&path, values, &vault.recipients())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path.display().to_string())
    };
    let mut job = rt.job(p, &*store, &req.env, prepared, release);
    job.keep_env = Some(&keep_env);
    job.build_ms = build_ms;
    if !jobs.is_empty() || pre_migration.is_some() {
        job.build = Some(&build_jobs);
    }
    if !stacks.is_empty() {
        with_stacks(&mut job, p, &config, stacks, stack_vars, &req.env);
        job.secret_outputs = Some(&keep_secret_outputs);
    }
    job.detach = req.detach;
    job.notes = req.note;
    job.version_tag = req
        .version_tag
        .or_else(|| git_describe(&p.config_dir()))
        .or_else(|| artifact.as_ref().map(|a| a.sha256.as_str()[..12].to_owned()));
    job.lock_wait = req.lock_wait;
    job.deployment_id = Some(dep_id);
    job.hooks = rollway_engine::Hooks {
        before_switch: config.deploy.before_switch.clone(),
        after_switch: config.deploy.after_switch.clone(),
        timeout: config.deploy.hook_timeout,
    };
    let outcome = job.run();
    report(p, &*store, outcome)
}

/// Resumes watching the stability window of `env`'s detached deployment.
pub fn verify(p: &Project, env: &str, progress: &dyn Progress) -> Result<Deployed> {
    let (config, store) = p.open()?;
    p.env_ref(&config, env)?;
    let prepared = prepare(p, &config, &*store, env)?;
    let active = store.active_deployments(Some(env))?;
    let Some(dep) = active.into_iter().find(|d| d.status() == DeploymentStatus::Verifying) else {
        return Err(Error::invalid(format_args!(
            "no deployment of {env} is in its stability window: nothing to verify"
        )));
    };
    let artifact = dep
        .artifact_id
        .and_then(|id| store.artifact(id).ok().flatten())
        .ok_or_else(|| {
            Error::from(anyhow::anyhow!(
                "deployment {} names no artifact the store still has",
                dep.id
            ))
        })?;
    let release = release_of(&artifact)?;
    let rt = Runtime::new(p, &config, &*store, env, progress)?;
    let job = rt.job(p, &*store, env, prepared, release);
    let outcome = job.resume();
    report(p, &*store, outcome)
}

/// What `recover` settled.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recovered {
    pub environment: String,
    pub recovered: Vec<DeploymentId>,
}

/// Under the environment's lease, settles what a crashed or killed run
/// left in progress (failed, hosts returned, rolled back), and nothing
/// else. Every deploy, verify and rollback does the same first; this is
/// that step alone.
pub fn recover(p: &Project, env: &str, lock_wait: Duration, progress: &dyn Progress) -> Result<Recovered> {
    let (config, store) = p.open()?;
    p.env_ref(&config, env)?;
    let prepared = prepare(p, &config, &*store, env)?;
    // Recovery ships nothing: the release only fills the job's shape.
    let release = match store.last_succeeded(env)?.and_then(|d| d.artifact_id) {
        Some(id) => match store.artifact(id)? {
            Some(a) => release_of(&a)?,
            None => placeholder_release(&*store),
        },
        None => placeholder_release(&*store),
    };
    let rt = Runtime::new(p, &config, &*store, env, progress)?;
    let mut job = rt.job(p, &*store, env, prepared, release);
    job.lock_wait = lock_wait;
    // An interrupted deployment's command stacks roll back too.
    let stacks = stack_specs(&config);
    if !stacks.is_empty() {
        let vars = p.env_values(&config, &*store, env)?;
        with_stacks(&mut job, p, &config, stacks, vars, env);
    }
    let settled = job.recover().map_err(engine_error)?;
    Ok(Recovered {
        environment: env.to_owned(),
        recovered: settled,
    })
}

pub(crate) fn placeholder_release(store: &dyn Store) -> ReleaseSource {
    ReleaseSource {
        artifact_id: ArtifactId::generate(store.clock().now()),
        archive: PathBuf::new(),
        sha256: rollway_model::Sha256Digest::zero(),
        commit: None,
        branch: None,
        dirty: false,
    }
}

/// `git describe --tags --always` in `dir`, if it is a git work tree.
fn git_describe(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["describe", "--tags", "--always", "--dirty"])
        .current_dir(dir)
        .output()
        .ok()?;
    let v = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !v.is_empty()).then_some(v)
}
