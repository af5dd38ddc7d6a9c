//! `rollway deploy`, `rollway verify` and `rollway rollback`: assemble a
//! deployment from rollway.toml, the store, the vault and the artifact, and
//! hand it to the engine. Every outcome maps onto one exit code.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

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
    /// Print per host every transfer and command; change nothing.
    #[arg(long)]
    pub dry_run: bool,
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
    /// Why (kept as the rollback reason).
    #[arg(long)]
    pub reason: String,
    /// The deployment to return to (default: the previous succeeded one).
    #[arg(long)]
    pub to: Option<String>,
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub lock_wait: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
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
fn lease() -> Duration {
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
    let env_ref = s.env_ref(config, env)?;
    let ecfg = &config.environments[env];
    // Command stacks alone ship nothing: no service, no hosts.
    let ships = config.stacks.is_empty() || config.stacks.values().any(|st| st.is_release());
    let service_cfg = config.service.as_ref();
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
                anyhow::anyhow!("no port for host {h} of {env}: set [service] port"),
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
    let service = ServiceSpec {
        name: sanitize(&config.project),
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
            let problems = vault.check(&env_ref)?;
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
                return Err(e);
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
            supersedes: None,
            stacks: Vec::new(),
            stack_dir: None,
            stack_vars: Vec::new(),
            stack_work: s.state_dir().join("stacks"),
            required_tags: Vec::new(),
            build: None,
            secret_outputs: None,
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
fn dry_run_stacks(s: &Session, stacks: &[StackSpec], jobs: &[String]) {
    if !jobs.is_empty() {
        s.printer
            .line(Tone::Plain, format!("building: jobs {}", jobs.join(", ")));
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
    s.printer
        .json(&serde_json::json!({ "dry_run": true, "jobs": jobs, "stacks": plan }));
}

fn progress(s: &Session) -> CliProgress {
    CliProgress {
        printer: s.printer.clone(),
        tty: std::io::stderr().is_terminal() && !s.printer.is_json(),
        last_countdown: std::sync::Mutex::new(None),
    }
}

fn report(s: &Session, store: &dyn Store, outcome: Result<Outcome, DeployError>) -> anyhow::Result<()> {
    match outcome {
        Ok(Outcome::Succeeded(d)) => {
            let vs = store.verifications(d.id)?;
            s.printer
                .json(&serde_json::json!({ "deployment": d, "verifications": vs }));
            s.printer.line(Tone::Good, format!("deployment {} succeeded", d.id));
            Ok(())
        }
        Ok(Outcome::Detached(d)) if was_interrupted() => Err(coded(
            Code::Interrupted,
            anyhow::anyhow!(
                "interrupted: deployment {} stays in its stability window with its lease held; run `rollway verify {}` to watch it",
                d.id,
                d.environment
            ),
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
        Err(e) if was_interrupted() => Err(coded(Code::Interrupted, engine_error(e))),
        Err(e) => Err(engine_error(e)),
    }
}

pub fn deploy(s: &Session, args: DeployArgs) -> anyhow::Result<()> {
    let (config, store) = s.synced_store()?;
    s.env_ref(&config, &args.env)?;
    refuse_deprecated(&*store, &args.env)?;
    let prepared = prepare_with(s, &config, &*store, &args.env, &args.overrides)?;
    let stacks = stack_specs(&config);
    let ships = stacks.is_empty() || stacks.iter().any(StackSpec::is_release);
    let ecfg = &config.environments[&args.env];
    let jobs: Vec<String> = ecfg.deploy_jobs(&config.deploy).to_vec();
    if args.dry_run && !stacks.is_empty() {
        dry_run_stacks(s, &stacks, &jobs);
        if !ships {
            return Ok(());
        }
    }
    let artifact = match (&args.artifact, ships) {
        (_, false) => None,
        (Some(a), true) => Some(find_artifact(&*store, a)?),
        (None, true) => Some(crate::commands::build::build_for(s, &config, &*store, Some(&args.env))?),
    };
    let release = match &artifact {
        Some(a) => release_of(a)?,
        None => placeholder_release(&*store),
    };
    let rt = Runtime::new(s, &config, &*store, &args.env)?;
    if args.dry_run {
        return crate::commands::connect::dry_run(s, &rt.connector, &prepared.hosts, &release, &prepared.service);
    }
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
    let outcome = job.run();
    report(s, &*store, outcome)
}

pub fn verify(s: &Session, args: VerifyArgs) -> anyhow::Result<()> {
    let (config, store) = s.synced_store()?;
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

pub fn rollback(s: &Session, args: RollbackArgs) -> anyhow::Result<()> {
    let (config, store) = s.synced_store()?;
    s.env_ref(&config, &args.env)?;
    refuse_deprecated(&*store, &args.env)?;
    let prepared = prepare(s, &config, &*store, &args.env)?;
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
            store
                .deployment(id)?
                .ok_or_else(|| coded(Code::Invalid, anyhow::anyhow!("no deployment {id}")))?
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
    let rt = Runtime::new(s, &config, &*store, &args.env)?;
    let mut job = rt.job(s, &*store, &args.env, prepared, release);
    job.kind = DeploymentKind::Rollback;
    job.rollback_to = Some(target.id);
    job.notes = Some(args.reason.clone());
    job.version_tag = target.version_tag.clone();
    job.lock_wait = args.lock_wait;
    job.supersedes = Some((current.id, args.reason));
    let outcome = job.run();
    report(s, &*store, outcome)
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
    let (config, store) = s.synced_store()?;
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
