//! `rollway deploy`, `rollway verify` and `rollway rollback`: assemble a
//! deployment from rollway.toml, the store, the vault and the artifact, and
//! hand it to the engine. Every outcome maps onto one exit code.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use rollway_config::{Config, HostTarget};
use rollway_engine::deploy::stacks::StackSpec;
use rollway_engine::deploy::{
    Connector, DeployError, DeployJob, Health, HostPlan, Outcome, Progress, ReleaseSource, SshTarget,
};
use rollway_engine::supervisor::ServiceSpec;
use rollway_model::{Artifact, DeploymentId, DeploymentKind, DeploymentStatus, EnvironmentStatus, Masker};
use rollway_store::Store;

use crate::exit::{Code, coded, coded_with};
use crate::output::{Printer, Tone};
use crate::session::Session;

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The environment to deploy to.
    pub env: String,
    /// An artifact id or digest (or a unique prefix); default: build one now.
    #[arg(long)]
    pub artifact: Option<String>,
    /// Say per host what would travel and which commands would run; run
    /// nothing (no build, no job) and change nothing, here or on the hosts.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: list every file that would be linked, patched or sent.
    #[arg(long, short)]
    pub verbose: bool,
    /// A note kept with the deployment.
    #[arg(long)]
    pub note: Option<String>,
    /// The version tag (default: `git describe --tags --always`, else the digest prefix).
    #[arg(long)]
    pub version_tag: Option<String>,
    /// Wait this long for another deployment's lease (e.g. 30s).
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub lock_wait: Duration,
    /// Return once the stability window starts; `rollway verify ENV` resumes watching.
    #[arg(long)]
    pub detach: bool,
    /// Values deployed in place of stored ones (`secrets rotate`).
    #[arg(skip)]
    pub overrides: BTreeMap<String, String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    pub env: String,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    pub env: String,
    /// Why (kept as the rollback reason); not needed with --dry-run.
    #[arg(long, required_unless_present = "dry_run")]
    pub reason: Option<String>,
    /// The deployment to return to (default: the previous succeeded one).
    #[arg(long)]
    pub to: Option<String>,
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub lock_wait: Duration,
    /// Render today's variables and secrets instead of the env file the
    /// release ran with.
    #[arg(long)]
    pub current_config: bool,
    /// Say which release it would return to, per host whether that is a
    /// switch or a ship, and the env file (masked); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: list every file that would be shipped.
    #[arg(long, short)]
    pub verbose: bool,
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    rollway_model::time::parse_duration(s)
}

/// Lines per host for people; nothing in `--json` mode.
struct CliProgress {
    printer: Printer,
    tty: bool,
    last_countdown: std::sync::Mutex<Option<u64>>,
}

impl Progress for CliProgress {
    fn step(&self, host: Option<&str>, message: &str) {
        match host {
            Some(h) => self.printer.line(Tone::Plain, format!("  {h:<20} {message}")),
            None => self.printer.line(Tone::Dim, format!("» {message}")),
        }
    }

    fn countdown(&self, remaining: Duration) {
        if !self.tty {
            return;
        }
        // One line per 10 seconds is enough for people watching.
        let bucket = remaining.as_secs() / 10;
        let mut last = self.last_countdown.lock().unwrap_or_else(|p| p.into_inner());
        if *last != Some(bucket) {
            *last = Some(bucket);
            self.printer
                .line(Tone::Dim, format!("  window: {}s left", remaining.as_secs()));
        }
    }
}

/// The lease length: 60 s, or `ROLLWAY_LEASE` (tests shorten it).
pub fn lease() -> Duration {
    std::env::var("ROLLWAY_LEASE")
        .ok()
        .and_then(|v| rollway_model::time::parse_duration(&v).ok())
        .unwrap_or(rollway_model::DEFAULT_LEASE)
}

/// Everything a deploy, verify or rollback of one environment shares.
pub struct Prepared {
    pub hosts: Vec<HostPlan>,
    pub health: Health,
    pub service: ServiceSpec,
    pub env_text: String,
    pub masker: Masker,
    pub keep_releases: usize,
}

fn resolve_root(s: &Session, root: &str, local: bool) -> String {
    if local && !Path::new(root).is_absolute() {
        let base = std::fs::canonicalize(s.config_dir()).unwrap_or_else(|_| s.config_dir());
        base.join(root).display().to_string()
    } else {
        root.to_owned()
    }
}

pub fn prepare(s: &Session, config: &Config, store: &dyn Store, env: &str) -> anyhow::Result<Prepared> {
    prepare_with(s, config, store, env, &BTreeMap::new())
}

/// [`prepare`] with `overrides` in the env file instead of stored values.
pub fn prepare_with(
    s: &Session,
    config: &Config,
    store: &dyn Store,
    env: &str,
    overrides: &BTreeMap<String, String>,
) -> anyhow::Result<Prepared> {
    prepare_checked(s, config, store, env, overrides, true)
}

/// [`prepare_with`]; `check` false skips `secrets check` of today's values
/// (a rollback as it ran does not deploy them).
pub(crate) fn prepare_checked(
    s: &Session,
    config: &Config,
    store: &dyn Store,
    env: &str,
    overrides: &BTreeMap<String, String>,
    check: bool,
) -> anyhow::Result<Prepared> {
    let env_ref = s.env_ref(config, env)?;
    let ecfg = &config.environments[env];
    // Command stacks alone ship nothing: no service, no hosts.
    let ships = config.stacks.is_empty() || config.stacks.values().any(|st| st.is_release());
    // `[service]` with this environment's overrides.
    let effective_service = ecfg.service(config.service.as_ref());
    let service_cfg = effective_service.as_ref();
    if ships && service_cfg.is_none() {
        return Err(coded(
            Code::Invalid,
            anyhow::anyhow!(
                "{} has no [service]: add `start` and `port` so there is something to deploy",
                s.config_path().display()
            ),
        ));
    }
    let mut hosts = Vec::new();
    for h in ecfg.hosts.iter().filter(|_| ships) {
        let local = matches!(h.target, HostTarget::Local);
        let root = h.effective_root(ecfg).ok_or_else(|| {
            coded(
                Code::Invalid,
                anyhow::anyhow!("environment {env} has no root for host {h}: set `root`"),
            )
        })?;
        let port = h.effective_port(service_cfg).ok_or_else(|| {
            coded(
                Code::Invalid,
                anyhow::anyhow!("no port for host {h} of {env}: set [service] port or port in [environments.{env}]"),
            )
        })?;
        let ssh = match &h.target {
            HostTarget::Local => None,
            HostTarget::Ssh(d) => Some(SshTarget {
                user: d.user.clone(),
                host: d.host.clone(),
                port: d.port,
                config: config.ssh.config.as_ref().map(|c| s.config_dir().join(c)),
            }),
        };
        hosts.push(HostPlan {
            name: h.to_string(),
            root: resolve_root(s, root, local),
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
    // Values: the vault when there is one (an identity); plain vars otherwise.
    let (env_text, masker) = match s.vault(config, store) {
        Ok(vault) => {
            let problems = if check { vault.check(&env_ref)? } else { Vec::new() };
            if !problems.is_empty() {
                for p in &problems {
                    s.printer.stderr_line(Tone::Plain, &format!("{env}: {p}"));
                }
                return Err(coded_with(
                    Code::Invalid,
                    anyhow::anyhow!(
                        "`rollway secrets check {env}` found {} problem(s); nothing was deployed",
                        problems.len()
                    ),
                    serde_json::to_value(&problems)?,
                ));
            }
            // Arm both masking doors (printer and event log) with this
            // environment's secrets before anything runs.
            let mut secret = Vec::new();
            for (k, v) in vault.values(env)? {
                if vault.is_secret(env, &k)? {
                    secret.push(v);
                }
            }
            s.printer.add_secrets(secret);
            store.set_masker(s.printer.masker());
            (vault.env_file_with(env, &ecfg.vars, overrides)?, s.printer.masker())
        }
        Err(e) => {
            let required = config.variables.values().any(|v| v.required_for.contains(&ecfg.kind));
            if required || s.has_stored_values(config, store, env)? {
                return Err(e.into());
            }
            let entries: Vec<(String, String)> = ecfg.vars.clone().into_iter().collect();
            (rollway_secrets::render_env_file(&entries), Masker::default())
        }
    };
    Ok(Prepared {
        hosts,
        health,
        service,
        env_text,
        masker,
        keep_releases: ecfg.keep_releases as usize,
    })
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
pub fn find_artifact(store: &dyn Store, wanted: &str) -> anyhow::Result<Artifact> {
    let mut found = store.find_artifacts(wanted)?;
    if found.len() > 1 {
        return Err(coded(
            Code::Invalid,
            anyhow::anyhow!(
                "'{wanted}' matches {} artifacts: give more characters of the id or digest",
                found.len()
            ),
        ));
    }
    found.pop().ok_or_else(|| {
        coded(
            Code::Invalid,
            anyhow::anyhow!("no artifact matches '{wanted}': see `rollway artifact list`"),
        )
    })
}

fn release_of(a: &Artifact) -> anyhow::Result<ReleaseSource> {
    if !a.aliases_resolved {
        return Err(coded_with(
            Code::Invalid,
            anyhow::anyhow!(
                "artifact {} has unresolved aliases, so it would not run; resolve them (e.g. tsc-alias) and build again:\n{}",
                a.id,
                a.unresolved_aliases.join("\n")
            ),
            serde_json::json!({ "unresolved_aliases": a.unresolved_aliases }),
        ));
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

/// Maps an engine error onto the documented exit codes.
fn engine_error(e: DeployError) -> anyhow::Error {
    let code = match &e {
        DeployError::Store(rollway_store::StoreError::Locked(_)) | DeployError::Deprecated { .. } => Code::Conflict,
        DeployError::Store(_) => return anyhow::Error::new(e),
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
    match details {
        Some(d) => coded_with(code, e, d),
        None => coded(code, e),
    }
}

fn refuse_deprecated(store: &dyn Store, env: &str) -> anyhow::Result<()> {
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

/// The one flag Ctrl-C, SIGTERM and SIGHUP set, registered once per process.
static INTERRUPTED: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();

fn interrupted_flag() -> Arc<AtomicBool> {
    Arc::clone(INTERRUPTED.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        // Ctrl-C, a `kill` and a closed terminal set the flag; the
        // deployment decides what it means (cancel before any host
        // switched, detach or fail after).
        for signal in [
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ] {
            let _ = signal_hook::flag::register(signal, Arc::clone(&flag));
        }
        flag
    }))
}

/// Whether a signal interrupted this process's deployment.
fn was_interrupted() -> bool {
    INTERRUPTED
        .get()
        .is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst))
}

/// What a deployment needs alive while it runs: the connectors, the
/// progress lines and the Ctrl-C flag.
struct Runtime {
    connector: rollway_engine::target::Targets,
    progress: CliProgress,
    interrupted: Arc<AtomicBool>,
}

impl Runtime {
    fn new(s: &Session, config: &Config, store: &dyn Store, env: &str) -> anyhow::Result<Self> {
        Ok(Self {
            connector: crate::commands::connect::connector(s, config, store, env)?,
            progress: progress(s),
            interrupted: interrupted_flag(),
        })
    }

    /// A deployment of `release` to `env`, with the defaults of a plain deploy.
    fn job<'a>(
        &'a self,
        s: &Session,
        store: &'a dyn Store,
        env: &str,
        p: Prepared,
        release: ReleaseSource,
    ) -> DeployJob<'a> {
        let connector: &'a dyn Connector = &self.connector;
        let progress: &'a dyn Progress = &self.progress;
        let interrupted: &'a AtomicBool = &self.interrupted;
        DeployJob {
            store,
            connector,
            progress,
            environment: env.to_owned(),
            operator: s.operator(),
            hosts: p.hosts,
            health: p.health,
            service: p.service,
            release,
            env_text: p.env_text,
            masker: p.masker,
            lease: lease(),
            keep_releases: p.keep_releases,
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
            stack_work: s.state_dir().join("stacks"),
            required_tags: Vec::new(),
            build: None,
            secret_outputs: None,
            hooks: rollway_engine::deploy::Hooks::default(),
            switch_to: None,
            env_from_host: None,
            keep_env: None,
            build_ms: None,
        }
    }
}

/// Gives `job` the environment's stacks and where their commands run.
fn with_stacks(
    job: &mut DeployJob<'_>,
    s: &Session,
    config: &Config,
    stacks: Vec<StackSpec>,
    vars: Vec<(String, String)>,
    env: &str,
) {
    let dir = s.config_dir();
    job.stack_dir = Some(std::fs::canonicalize(&dir).unwrap_or(dir));
    job.stack_vars = vars;
    job.required_tags.clone_from(&config.environments[env].required_tags);
    job.stacks = stacks;
}

/// `[stacks]` as the engine takes them, in name order (empty: the release alone).
fn stack_specs(config: &Config) -> Vec<StackSpec> {
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
            required_properties: st.required_properties.clone(),
        })
        .collect()
}

/// `--dry-run` of the stacks: the waves and each stack's commands, in order.
fn dry_run_stacks(s: &Session, stacks: &[StackSpec], jobs: &[String]) -> Vec<serde_json::Value> {
    if !jobs.is_empty() {
        s.printer.line(
            Tone::Plain,
            format!("would run jobs: {} (not run in a dry run)", jobs.join(", ")),
        );
    }
    let waves = rollway_engine::deploy::stacks::waves(stacks);
    let mut plan = Vec::new();
    for (n, wave) in waves.iter().enumerate() {
        let names: Vec<&str> = wave.iter().map(|&i| stacks[i].name.as_str()).collect();
        s.printer
            .line(Tone::Plain, format!("wave {}: {}", n + 1, names.join(", ")));
        for &i in wave {
            let st = &stacks[i];
            if st.is_release() {
                s.printer
                    .line(Tone::Dim, format!("  {}: ship the artifact to the hosts", st.name));
            }
            let steps = [
                ("synth", &st.synth),
                ("validate", &st.validate),
                ("deploy", &st.deploy),
                ("verify", &st.verify),
                ("rollback", &st.rollback),
            ];
            for (phase, cmd) in steps {
                if let Some(c) = cmd {
                    s.printer.line(Tone::Dim, format!("  {} {phase}: {c}", st.name));
                }
            }
            plan.push(serde_json::json!({
                "wave": n + 1, "stack": st.name, "release": st.is_release(),
                "synth": st.synth, "validate": st.validate, "deploy": st.deploy,
                "verify": st.verify, "rollback": st.rollback,
            }));
        }
    }
    plan
}

fn progress(s: &Session) -> CliProgress {
    CliProgress {
        printer: s.printer.clone(),
        tty: std::io::stderr().is_terminal() && !s.printer.is_json(),
        last_countdown: std::sync::Mutex::new(None),
    }
}

/// How long each phase of a deployment took, in milliseconds: `build` (the
/// artifact build plus the `building` phase of `[deploy] jobs`), then the
/// host phases (`ship`, `switch`, `restart`, `boot`, `window`) as the
/// slowest host took them.
pub fn phases(d: &rollway_model::Deployment, vs: &[rollway_model::Verification]) -> BTreeMap<String, u64> {
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

fn print_phases(s: &Session, store: &dyn Store, id: DeploymentId) {
    let Ok(Some(d)) = store.deployment(id) else {
        return;
    };
    let vs = store.verifications(id).unwrap_or_default();
    let line = phases_line(&phases(&d, &vs));
    if !line.is_empty() {
        s.printer.line(Tone::Dim, format!("phases: {line}"));
    }
}

fn report(s: &Session, store: &dyn Store, outcome: Result<Outcome, DeployError>) -> anyhow::Result<()> {
    match outcome {
        Ok(Outcome::Succeeded(d)) => {
            let vs = store.verifications(d.id)?;
            let p = phases(&d, &vs);
            s.printer
                .json(&serde_json::json!({ "deployment": d, "verifications": vs, "phases": p }));
            print_phases(s, store, d.id);
            s.printer.line(Tone::Good, format!("deployment {} succeeded", d.id));
            Ok(())
        }
        // Interrupted during the window: the deployment stays verifying and
        // the window is left to `rollway verify`; the process was interrupted.
        Ok(Outcome::Detached(d)) if was_interrupted() => Err(coded_with(
            Code::Interrupted,
            anyhow::anyhow!(
                "interrupted during the stability window: deployment {} stays verifying and keeps the lease until its window ends; run `rollway verify {}` to watch it",
                d.id,
                d.environment
            ),
            serde_json::json!({ "deployment": d, "detached": true }),
        )),
        Ok(Outcome::Detached(d)) => {
            s.printer
                .json(&serde_json::json!({ "deployment": d, "detached": true }));
            s.printer.line(
                Tone::Warn,
                format!(
                    "deployment {} is in its stability window; run `rollway verify {}` to watch it",
                    d.id, d.environment
                ),
            );
            Ok(())
        }
        // A signal ended it (SIGINT, SIGTERM or SIGHUP): whatever the
        // deployment became, the process was interrupted.
        Err(e) => {
            let code = if was_interrupted() {
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
                    Code::Interrupted => coded(code, engine_error(e)),
                    _ => engine_error(e),
                });
            };
            print_phases(s, store, id);
            // The JSON error carries the phases too.
            let p = match store.deployment(id) {
                Ok(Some(d)) => phases(&d, &store.verifications(id).unwrap_or_default()),
                _ => BTreeMap::new(),
            };
            let details = match &e {
                DeployError::Failed { rolled_back, .. } => {
                    serde_json::json!({ "deployment": id, "rolled_back": rolled_back, "phases": p })
                }
                DeployError::RollbackFailed { hosts, .. } => {
                    serde_json::json!({ "deployment": id, "hosts": hosts, "phases": p })
                }
                _ => serde_json::json!({ "deployment": id, "phases": p }),
            };
            Err(coded_with(code, e, details))
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

pub fn deploy(s: &Session, args: DeployArgs) -> anyhow::Result<()> {
    let (config, store) = s.open()?;
    s.env_ref(&config, &args.env)?;
    refuse_deprecated(&*store, &args.env)?;
    let prepared = prepare_with(s, &config, &*store, &args.env, &args.overrides)?;
    let stacks = stack_specs(&config);
    let ships = stacks.is_empty() || stacks.iter().any(StackSpec::is_release);
    let ecfg = &config.environments[&args.env];
    let jobs: Vec<String> = ecfg.deploy_jobs(&config.deploy).to_vec();
    if args.dry_run {
        return dry_run_deploy(s, &config, &*store, &args, &prepared, &stacks, &jobs);
    }
    // A deploy that builds takes the environment's lease first, so that of
    // two deploys started together one builds and the other exits 3 at once;
    // the deployment created after the build resumes that lease.
    let mut early: Option<EarlyLease<'_>> = None;
    let mut build_ms = None;
    let artifact = match (&args.artifact, ships) {
        (_, false) => None,
        (Some(a), true) => Some(find_artifact(&*store, a)?),
        (None, true) => {
            let id = DeploymentId::generate(store.clock().now());
            let req = rollway_engine::deploy::lease::env_lease_request(&args.env, &s.operator(), "deploy", id, lease());
            let lock = rollway_engine::deploy::lease::acquire(&*store, &req, args.lock_wait, &mut |_| {})
                .map_err(|e| engine_error(DeployError::Store(e)))?;
            let started = std::time::Instant::now();
            let (lock, built) = rollway_engine::deploy::lease::renewing(&*store, lock, lease(), || {
                crate::commands::build::build_for(s, &config, &*store, Some(&args.env))
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
    let rt = Runtime::new(s, &config, &*store, &args.env)?;
    let recipients = s.vault(&config, &*store).ok().map(|v| v.recipients());
    let keep_env = |dep: DeploymentId, text: &str| -> Result<(), String> {
        match &recipients {
            Some(r) => keep_env_file(s, dep, text, r),
            None => Ok(()),
        }
    };
    let stack_vars = if stacks.is_empty() {
        Vec::new()
    } else {
        s.env_values(&config, &*store, &args.env)?
    };
    let build_jobs = || -> Result<(), String> {
        let run = crate::commands::pipeline::run_pipeline(s, &config, &*store, Some(&args.env), None, jobs.clone())
            .map_err(|e| format!("{e:#}"))?;
        match run.status() {
            rollway_model::PipelineStatus::Success => Ok(()),
            other => Err(format!("pipeline {} ended {other}", run.id)),
        }
    };
    let keep_secret_outputs = |dep: DeploymentId, stack: &str, values: &[(String, String)]| -> Result<String, String> {
        s.printer.add_secrets(values.iter().map(|(_, v)| v.clone()));
        store.set_masker(s.printer.masker());
        // Encrypted to the vault's recipients, like every other value.
        let vault = s.vault(&config, &*store).map_err(|e| {
            format!("{e:#}; secret outputs need an identity to be kept encrypted: run `rollway secrets init`")
        })?;
        let path = s
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
    let mut job = rt.job(s, &*store, &args.env, prepared, release);
    job.keep_env = Some(&keep_env);
    job.build_ms = build_ms;
    if !jobs.is_empty() {
        job.build = Some(&build_jobs);
    }
    if !stacks.is_empty() {
        with_stacks(&mut job, s, &config, stacks, stack_vars, &args.env);
        job.secret_outputs = Some(&keep_secret_outputs);
    }
    job.detach = args.detach;
    job.notes = args.note;
    job.version_tag = args
        .version_tag
        .or_else(|| git_describe(&s.config_dir()))
        .or_else(|| artifact.as_ref().map(|a| a.sha256.as_str()[..12].to_owned()));
    job.lock_wait = args.lock_wait;
    job.deployment_id = early.as_mut().map(EarlyLease::hand_over);
    job.hooks = rollway_engine::deploy::Hooks {
        before_switch: config.deploy.before_switch.clone(),
        after_switch: config.deploy.after_switch.clone(),
        timeout: config.deploy.hook_timeout,
    };
    let outcome = job.run();
    report(s, &*store, outcome)
}

pub fn verify(s: &Session, args: VerifyArgs) -> anyhow::Result<()> {
    let (config, store) = s.open()?;
    s.env_ref(&config, &args.env)?;
    let prepared = prepare(s, &config, &*store, &args.env)?;
    let active = store.active_deployments(Some(&args.env))?;
    let Some(dep) = active.into_iter().find(|d| d.status() == DeploymentStatus::Verifying) else {
        return Err(coded(
            Code::Invalid,
            anyhow::anyhow!(
                "no deployment of {} is in its stability window: nothing to verify",
                args.env
            ),
        ));
    };
    let artifact = dep
        .artifact_id
        .and_then(|id| store.artifact(id).ok().flatten())
        .ok_or_else(|| anyhow::anyhow!("deployment {} names no artifact the store still has", dep.id))?;
    let release = release_of(&artifact)?;
    let rt = Runtime::new(s, &config, &*store, &args.env)?;
    let job = rt.job(s, &*store, &args.env, prepared, release);
    let outcome = job.resume();
    report(s, &*store, outcome)
}

/// Where the deployer keeps the env file each deployment wrote:
/// `<state dir>/envs/<deployment id>.env.age`, encrypted with age to the
/// vault's recipients (like stack secret outputs under `outputs/`).
///
/// Why here rather than only the 0600 copy on the hosts
/// (`ROOT/envs/<id>.env`): a host's copy goes when its release is pruned or
/// the host is rebuilt, yet a rollback must restore the release *as it ran*
/// even when it has to be shipped again; and `rollback --dry-run` shows the
/// env file (masked) without asking any host to read secrets back. The
/// hosts' copies remain the fallback for a release deployed without an
/// identity (then nothing could be encrypted here, so nothing is kept): a
/// rollback that switches back uses `ROOT/envs/<id>.env` as it is.
fn kept_env_path(s: &Session, id: DeploymentId) -> PathBuf {
    s.state_dir().join("envs").join(format!("{id}.env.age"))
}

/// Keeps a deployment's env file text, encrypted to `recipients`.
fn keep_env_file(
    s: &Session,
    id: DeploymentId,
    text: &str,
    recipients: &[rollway_secrets::Recipient],
) -> Result<(), String> {
    let path = kept_env_path(s, id);
    rollway_secrets::age_file::write_armored_file(&path, text.as_bytes(), recipients).map_err(|e| {
        format!(
            "cannot keep the env file at {}: {e}; make the state directory writable (nothing was deployed)",
            path.display()
        )
    })
}

/// The env file deployment `id` wrote, decrypted, when this machine kept it.
fn kept_env(s: &Session, id: DeploymentId) -> anyhow::Result<Option<String>> {
    let path = kept_env_path(s, id);
    if !path.exists() {
        return Ok(None);
    }
    let identities = rollway_secrets::age_file::load_identities(&s.identity_path()?).with_context(|| {
        format!(
            "cannot read the env file kept at {}: no usable identity; run `rollway secrets init` or set ROLLWAY_IDENTITY",
            path.display()
        )
    })?;
    let bytes = rollway_secrets::age_file::decrypt_file(&path, &identities).with_context(|| {
        format!(
            "cannot decrypt the env file kept at {}: your identity is not one of its recipients; use --current-config",
            path.display()
        )
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        anyhow::anyhow!(
            "the env file kept at {} is not UTF-8; use --current-config",
            path.display()
        )
    })?;
    Ok(Some(text))
}

/// An env file for people: `KEY=****` for every secret (or unknown) key,
/// plain values of the environment's `vars` as they are; then the printer's
/// own filter runs over it too.
fn masked_env(text: &str, plain: &BTreeMap<String, String>) -> String {
    let Ok(entries) = rollway_secrets::dotenv::parse(text) else {
        return "(the env file does not parse; not shown)".to_owned();
    };
    entries
        .iter()
        .map(|(k, v)| {
            if plain.get(k) == Some(v) {
                format!("{k}={v}")
            } else {
                format!("{k}={}", rollway_model::mask::MASK)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The release directories a deployment's release lives in on the hosts,
/// newest first: its own, and for a rollback that switched back (it shipped
/// nothing, so it has no directory of its own) the one it returned to.
fn release_dirs(store: &dyn Store, target: &rollway_model::Deployment) -> Vec<String> {
    let mut dirs = vec![target.id.to_string()];
    let mut d = target.clone();
    while d.kind == DeploymentKind::Rollback && dirs.len() < 20 {
        let Some(next) = d.rollback_to.and_then(|id| store.deployment(id).ok().flatten()) else {
            break;
        };
        dirs.push(next.id.to_string());
        d = next;
    }
    dirs
}

/// The release directory every host still holds, if any: then the
/// rollback is a switch.
fn on_every_host(rt: &Runtime, hosts: &[HostPlan], dirs: &[String]) -> anyhow::Result<Option<String>> {
    let mut common: Option<Vec<String>> = None;
    for plan in hosts {
        let mut session = rt
            .connector
            .open(plan)
            .with_context(|| {
                format!(
                    "cannot reach {} to see which releases it holds; check the host answers over ssh, then run the rollback again",
                    plan.name
                )
            })?;
        let state = rollway_engine::host::HostSession::state(&mut session)?;
        let here: Vec<String> = dirs.iter().filter(|d| state.releases.contains(d)).cloned().collect();
        common = Some(match common {
            None => here,
            Some(c) => c.into_iter().filter(|d| here.contains(d)).collect(),
        });
    }
    Ok(common.and_then(|c| c.into_iter().next()))
}

/// The env file a rollback uses.
enum RollbackEnv {
    /// Today's configuration (`--current-config`).
    Current,
    /// The text the release ran with, kept on this machine.
    Kept(String),
    /// The hosts' own copy, `ROOT/envs/<id>.env` (nothing kept here).
    OnHosts(String),
}

pub fn rollback(s: &Session, args: RollbackArgs) -> anyhow::Result<()> {
    let (config, store) = s.open()?;
    s.env_ref(&config, &args.env)?;
    if !args.dry_run {
        refuse_deprecated(&*store, &args.env)?;
    }
    // Today's values are checked only when they are what gets deployed.
    let mut prepared = prepare_checked(s, &config, &*store, &args.env, &BTreeMap::new(), args.current_config)?;
    let current = store.last_succeeded(&args.env)?.ok_or_else(|| {
        coded(
            Code::Invalid,
            anyhow::anyhow!("{} has no succeeded deployment to roll back", args.env),
        )
    })?;
    let target = match &args.to {
        Some(id) => {
            let id: DeploymentId = id
                .parse()
                .map_err(|_| coded(Code::Invalid, anyhow::anyhow!("--to {id} is not a deployment id")))?;
            let d = store.deployment(id)?.ok_or_else(|| {
                coded(
                    Code::Invalid,
                    anyhow::anyhow!("no deployment {id}: see `rollway history {}`", args.env),
                )
            })?;
            if d.environment != args.env {
                return Err(coded(
                    Code::Invalid,
                    anyhow::anyhow!(
                        "deployment {id} is a release of {}, not {}: pick one from `rollway history {}`",
                        d.environment,
                        args.env,
                        args.env
                    ),
                ));
            }
            d
        }
        None => store
            .deployments(Some(&args.env), 100)?
            .into_iter()
            .filter(|d| d.id != current.id && d.status() == DeploymentStatus::Succeeded)
            .find(|d| d.started_at <= current.started_at)
            .ok_or_else(|| {
                coded(
                    Code::Invalid,
                    anyhow::anyhow!("{} has no earlier succeeded deployment to return to", args.env),
                )
            })?,
    };
    let artifact = target
        .artifact_id
        .and_then(|id| store.artifact(id).ok().flatten())
        .ok_or_else(|| {
            coded(
                Code::Failed,
                anyhow::anyhow!("deployment {} has no artifact left to return to", target.id),
            )
        })?;
    let release = release_of(&artifact)?;
    // The release as it ran: its env file, unless --current-config.
    let env = if args.current_config {
        RollbackEnv::Current
    } else {
        match kept_env(s, target.id)? {
            Some(text) => RollbackEnv::Kept(text),
            None => RollbackEnv::OnHosts(target.id.to_string()),
        }
    };
    let plain = config.environments[&args.env].vars.clone();
    if let RollbackEnv::Kept(text) = &env {
        // Its secrets may differ from today's: mask them too.
        let secret = match s.vault(&config, &*store) {
            Ok(vault) => rollway_secrets::dotenv::parse(text)
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, v)| plain.get(k) != Some(v) && vault.is_secret(&args.env, k).unwrap_or(true))
                .map(|(_, v)| v)
                .collect(),
            Err(_) => Vec::new(),
        };
        s.printer.add_secrets(secret);
        store.set_masker(s.printer.masker());
        prepared.masker = s.printer.masker();
    }
    let dirs = release_dirs(&*store, &target);
    if args.dry_run {
        let (env_shown, env_json) = match &env {
            RollbackEnv::Current => (masked_env(&prepared.env_text, &plain), "current-config"),
            RollbackEnv::Kept(text) => (masked_env(text, &plain), "as-it-ran"),
            RollbackEnv::OnHosts(id) => (
                format!("(ROOT/envs/{id}.env on each host, as it ran; this machine kept no copy)"),
                "as-it-ran-on-hosts",
            ),
        };
        s.printer.line(
            Tone::Plain,
            format!(
                "rollback of {} would return from {} to release {}{}",
                args.env,
                current.id,
                target.id,
                target
                    .version_tag
                    .as_ref()
                    .map(|v| format!(" ({v})"))
                    .unwrap_or_default()
            ),
        );
        let scratch = tempfile::tempdir()
            .context("cannot make a scratch directory for the dry run; check that TMPDIR (or /tmp) is writable")?;
        let targets = crate::commands::connect::dry_run_connector(&config, &*store, &args.env, scratch.path())?;
        let hosts = crate::commands::connect::dry_run(
            s,
            &targets,
            &prepared.hosts,
            &prepared.service,
            &crate::commands::connect::DryRun {
                release: Some(&release),
                total_bytes: artifact.contents.iter().map(|c| c.bytes).sum(),
                reuse: &dirs,
                env_file: &env_shown,
                verbose: args.verbose,
            },
        )?;
        drop(targets);
        s.printer.line(Tone::Good, "dry run: nothing was changed");
        s.printer.json(&serde_json::json!({
            "dry_run": true,
            "kind": "rollback",
            "from": current.id,
            "to": target.id,
            "artifact": artifact.id,
            "env_file": env_json,
            "env": s.printer.masker().mask(&env_shown),
            "hosts": hosts,
        }));
        return Ok(());
    }
    let Some(reason) = args.reason.clone() else {
        return Err(coded(
            Code::Invalid,
            anyhow::anyhow!(
                "rollback of {} needs --reason TEXT (kept as the rollback reason)",
                args.env
            ),
        ));
    };
    let rt = Runtime::new(s, &config, &*store, &args.env)?;
    let switch_to = on_every_host(&rt, &prepared.hosts, &dirs)?;
    let mut env_from_host = None;
    match env {
        RollbackEnv::Current => {}
        RollbackEnv::Kept(text) => prepared.env_text = text,
        RollbackEnv::OnHosts(id) => {
            if switch_to.is_none() {
                return Err(coded(
                    Code::Failed,
                    anyhow::anyhow!(
                        "release {} is no longer on every host of {} and its env file was not kept on this machine (no identity when it ran), so it cannot be restored as it ran: run `rollway rollback {} --to {} --current-config` to use today's configuration",
                        target.id,
                        args.env,
                        args.env,
                        target.id
                    ),
                ));
            }
            env_from_host = Some(id);
        }
    }
    let recipients = s.vault(&config, &*store).ok().map(|v| v.recipients());
    let keep_env = |dep: DeploymentId, text: &str| -> Result<(), String> {
        match &recipients {
            Some(r) => keep_env_file(s, dep, text, r),
            None => Ok(()),
        }
    };
    let mut job = rt.job(s, &*store, &args.env, prepared, release);
    job.kind = DeploymentKind::Rollback;
    job.rollback_to = Some(target.id);
    job.notes = Some(reason.clone());
    job.version_tag = target.version_tag.clone();
    job.lock_wait = args.lock_wait;
    job.supersedes = Some((current.id, reason));
    job.switch_to = switch_to;
    job.env_from_host = env_from_host;
    job.keep_env = Some(&keep_env);
    let outcome = job.run();
    report(s, &*store, outcome)
}

/// `deploy --dry-run`: runs nothing (no build command, no job, no stack
/// command) and writes nothing, neither under the state directory nor on a
/// host. Without `--artifact` it plans from the last artifact built (else
/// the last deployed) and says it would build first.
fn dry_run_deploy(
    s: &Session,
    config: &Config,
    store: &dyn Store,
    args: &DeployArgs,
    prepared: &Prepared,
    stacks: &[StackSpec],
    jobs: &[String],
) -> anyhow::Result<()> {
    let ships = stacks.is_empty() || stacks.iter().any(StackSpec::is_release);
    let stack_plan = if stacks.is_empty() {
        Vec::new()
    } else {
        dry_run_stacks(s, stacks, jobs)
    };
    if stacks.is_empty() && !jobs.is_empty() {
        s.printer.line(
            Tone::Plain,
            format!("would run jobs: {} (not run in a dry run)", jobs.join(", ")),
        );
    }
    let build_command = config.build.as_ref().and_then(|b| b.command.clone());
    let artifact = match (&args.artifact, ships) {
        (_, false) => None,
        (Some(a), true) => Some(find_artifact(store, a)?),
        (None, true) => {
            let built = store
                .artifacts()?
                .into_iter()
                .filter(|a| a.job_id.is_none() && Path::new(&a.location).is_file())
                .max_by_key(|a| a.created_at);
            let deployed = || {
                store
                    .last_succeeded(&args.env)
                    .ok()
                    .flatten()
                    .and_then(|d| d.artifact_id)
                    .and_then(|id| store.artifact(id).ok().flatten())
            };
            let a = built.or_else(deployed);
            let what = match &build_command {
                Some(c) => format!("would build first (`{c}`, not run in a dry run)"),
                None => "would pack the build output first (not done in a dry run)".to_owned(),
            };
            match &a {
                Some(a) => s.printer.line(
                    Tone::Plain,
                    format!(
                        "{what}; planned from the last artifact built, {} ({})",
                        a.id,
                        a.short_digest()
                    ),
                ),
                None => s.printer.line(Tone::Plain, format!("{what}; no artifact exists yet")),
            }
            a
        }
    };
    let release = artifact.as_ref().map(release_of).transpose()?;
    let hosts = if ships {
        let scratch = tempfile::tempdir()
            .context("cannot make a scratch directory for the dry run; check that TMPDIR (or /tmp) is writable")?;
        let targets = crate::commands::connect::dry_run_connector(config, store, &args.env, scratch.path())?;
        let hosts = crate::commands::connect::dry_run(
            s,
            &targets,
            &prepared.hosts,
            &prepared.service,
            &crate::commands::connect::DryRun {
                release: release.as_ref(),
                total_bytes: artifact
                    .as_ref()
                    .map_or(0, |a| a.contents.iter().map(|c| c.bytes).sum()),
                reuse: &[],
                env_file: "",
                verbose: args.verbose,
            },
        )?;
        drop(targets);
        hosts
    } else {
        Vec::new()
    };
    s.printer.line(Tone::Good, "dry run: nothing was changed");
    s.printer.json(&serde_json::json!({
        "dry_run": true,
        "would_build": args.artifact.is_none() && ships,
        "build_command": build_command,
        "artifact": artifact.as_ref().map(|a| a.id),
        "jobs": jobs,
        "stacks": stack_plan,
        "hosts": hosts,
    }));
    Ok(())
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    pub env: String,
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub lock_wait: Duration,
}

/// `rollway recover ENV`: under the environment's lease, settles what a
/// crashed or killed run left in progress (failed, hosts returned, rolled
/// back), and nothing else. Every deploy, verify and rollback does the same
/// first; this is that step alone.
pub fn recover(s: &Session, args: RecoverArgs) -> anyhow::Result<()> {
    let (config, store) = s.open()?;
    s.env_ref(&config, &args.env)?;
    let prepared = prepare(s, &config, &*store, &args.env)?;
    // Recovery ships nothing: the release only fills the job's shape.
    let release = match store.last_succeeded(&args.env)?.and_then(|d| d.artifact_id) {
        Some(id) => match store.artifact(id)? {
            Some(a) => release_of(&a)?,
            None => placeholder_release(&*store),
        },
        None => placeholder_release(&*store),
    };
    let rt = Runtime::new(s, &config, &*store, &args.env)?;
    let mut job = rt.job(s, &*store, &args.env, prepared, release);
    job.lock_wait = args.lock_wait;
    // An interrupted deployment's command stacks roll back too.
    let stacks = stack_specs(&config);
    if !stacks.is_empty() {
        let vars = s.env_values(&config, &*store, &args.env)?;
        with_stacks(&mut job, s, &config, stacks, vars, &args.env);
    }
    let settled = job.recover().map_err(engine_error)?;
    s.printer
        .json(&serde_json::json!({ "environment": args.env, "recovered": settled }));
    if settled.is_empty() {
        s.printer
            .line(Tone::Good, format!("{}: nothing was left in progress", args.env));
    }
    for id in &settled {
        s.printer
            .line(Tone::Warn, format!("{}: settled interrupted deployment {id}", args.env));
    }
    Ok(())
}

fn placeholder_release(store: &dyn Store) -> ReleaseSource {
    ReleaseSource {
        artifact_id: rollway_model::ArtifactId::generate(store.clock().now()),
        archive: PathBuf::new(),
        sha256: rollway_model::Sha256Digest::zero(),
        commit: None,
        branch: None,
        dirty: false,
    }
}

/// `git describe --tags --always` in `dir`, if it is a git work tree.
pub fn git_describe(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["describe", "--tags", "--always", "--dirty"])
        .current_dir(dir)
        .output()
        .ok()?;
    let v = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !v.is_empty()).then_some(v)
}
