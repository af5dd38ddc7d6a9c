//! One deployment from lock to verdict: take the lease, recover what an
//! earlier run left, check secrets, ship and switch host by host in waves,
//! restart, boot-check, watch the stability window, and return every host
//! that took the release to its previous one when anything fails.
//!
//! `DeployJob` is what the caller fills in; its entry points (`run`,
//! `recover`, `resume`) take the lease and hand the deployment to a `Run`,
//! which holds the per-run state. The phases are method sets on `Run`:
//! `stacks_phase.rs` (synthesize, the eager stack schedule, verify),
//! `ship.rs` (host waves: ship, env file, hooks, switch, restart),
//! `boot.rs` (the boot check), `verdict.rs` (the stability window, success,
//! detaching) and `rollback.rs` (failing and rolling back).

mod boot;
mod rollback;
mod ship;
mod stacks_phase;
mod verdict;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rollway_model::{
    Clock, Deployment, DeploymentId, DeploymentKind, DeploymentStatus, EventKind, HostResult, Level, Lock, Masker,
    NewEvent, Stack, StackContract, StackStatus, Verification,
};
use rollway_store::{LockRequest, Store};
use serde_json::json;

use super::context::{Context, model_err};
use super::failpoint::failpoint;
use super::plan::waves;
use super::stacks::StackSpec;
use super::{DeployError, HostPlan, Progress, ReleaseSource};
use crate::host::HostSession;
use crate::supervisor::ServiceSpec;

/// How a deployment is watched once its hosts run the release.
#[derive(Debug, Clone)]
pub struct Health {
    pub path: String,
    pub expect_status: u16,
    pub timeout: Duration,
    pub interval: Duration,
    pub retries: u32,
    pub window_failures: u32,
    pub stability_window: Duration,
    pub canary: usize,
    pub canary_window: Duration,
    pub parallel: usize,
}

/// Connects to a host's agent; sessions are opened only when a host's wave
/// starts, so a failed canary leaves later hosts untouched.
pub trait Connector: Sync {
    fn connect(&self, host: &HostPlan) -> Result<Box<dyn HostSession>, crate::host::HostError>;
}

/// Everything one deployment needs.
pub struct DeployJob<'a> {
    pub store: &'a dyn Store,
    pub connector: &'a dyn Connector,
    pub progress: &'a dyn Progress,
    pub environment: String,
    pub operator: String,
    pub hosts: Vec<HostPlan>,
    pub health: Health,
    /// The service as every host runs it (root and port are filled per host).
    pub service: ServiceSpec,
    pub release: ReleaseSource,
    /// The env file text (clear: it goes only to the hosts, mode 0600).
    pub env_text: String,
    pub masker: Masker,
    pub lease: Duration,
    pub keep_releases: usize,
    pub detach: bool,
    /// Set by Ctrl-C.
    pub interrupted: &'a AtomicBool,
    pub kind: DeploymentKind,
    pub rollback_to: Option<DeploymentId>,
    pub notes: Option<String>,
    pub version_tag: Option<String>,
    /// How long to wait for another deployment's lease before giving up.
    pub lock_wait: Duration,
    /// The id the deployment gets, when its lease was taken before it was
    /// created (see `lease::env_lease_request`); `run` resumes that lease.
    pub deployment_id: Option<DeploymentId>,
    /// For a manual rollback: the deployment it supersedes and why; that one
    /// becomes rolled_back when this succeeds.
    pub supersedes: Option<(DeploymentId, String)>,
    /// `[stacks]`; empty: the release stack alone.
    pub stacks: Vec<StackSpec>,
    /// Where stack commands run (the project directory), with the
    /// environment's variables; scratch files go under `stack_work`.
    pub stack_dir: Option<std::path::PathBuf>,
    pub stack_vars: Vec<(String, String)>,
    pub stack_work: std::path::PathBuf,
    /// The environment's `required_tags` for stack resources.
    pub required_tags: Vec<String>,
    /// The building phase (`[deploy] jobs`); `Err` is why it failed.
    pub build: Option<&'a (dyn Fn() -> Result<(), String> + Sync)>,
    /// Given a stack's secret outputs (deployment, stack, key–value pairs):
    /// arms every masking door with them and keeps them encrypted; returns
    /// where they are kept.
    pub secret_outputs: Option<&'a SecretOutputs<'a>>,
    /// `[deploy] before_switch` / `after_switch`, run on each host.
    pub hooks: Hooks,
    /// A rollback to a release still on every host (Capistrano-style): no
    /// file is shipped, `current` is switched back to
    /// `ROOT/releases/<switch_to>`.
    pub switch_to: Option<String>,
    /// Use the env file already on each host, `ROOT/envs/<id>.env` (the
    /// 0600 copy written when release `id` ran), instead of writing
    /// `env_text`: a rollback as the release ran when the deployer kept no
    /// copy of its own.
    pub env_from_host: Option<String>,
    /// Keeps the env file text of this deployment on the deployer side
    /// (encrypted at rest) so a later rollback restores it; called once,
    /// before any host is touched. `Err` fails the deployment.
    pub keep_env: Option<&'a KeepEnv<'a>>,
    /// How long building the artifact took before this run (kept on the deployment).
    pub build_ms: Option<u64>,
}

impl std::fmt::Debug for DeployJob<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployJob")
            .field("environment", &self.environment)
            .field("hosts", &self.hosts)
            .finish()
    }
}

/// What keeps a stack's secret outputs (see `DeployJob::secret_outputs`).
pub type SecretOutputs<'a> = dyn Fn(DeploymentId, &str, &[(String, String)]) -> Result<String, String> + Sync + 'a;

/// What keeps a deployment's env file text (see `DeployJob::keep_env`).
pub type KeepEnv<'a> = dyn Fn(DeploymentId, &str) -> Result<(), String> + Sync + 'a;

/// Commands run on each host in the new release with its env file and
/// `PORT`: `before_switch` after the release and its env file are there and
/// before `current` moves (a failure leaves that host on its old release);
/// `after_switch` once the service passed its boot check (a failure fails
/// the deployment, which returns the hosts). A rollback runs none of them:
/// it restores a release as it ran, and its migrations already happened.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    pub before_switch: Vec<String>,
    pub after_switch: Vec<String>,
    pub timeout: Duration,
}

/// What `watch` answers when Ctrl-C ended the watching, not the service.
const WINDOW_INTERRUPTED: &str = "interrupted (Ctrl-C) during the window";

/// How a deployment ended when it did not fail.
#[derive(Debug, Clone)]
pub enum Outcome {
    Succeeded(Box<Deployment>),
    /// The CLI detached during the window; `rollway verify` resumes it.
    Detached(Box<Deployment>),
}

/// A host whose release did not come up, with its session when it has one.
struct HostFailure {
    plan: HostPlan,
    session: Option<Box<dyn HostSession>>,
    why: String,
}

/// Updates one host's record and saves the verification.
type Record<'a> = dyn Fn(&mut dyn FnMut(&mut HostResult)) -> Result<(), DeployError> + 'a;

/// Each deployed stack's outputs, by stack name.
type Outputs = BTreeMap<String, BTreeMap<String, String>>;

/// One host with its session.
struct Live {
    plan: HostPlan,
    session: Box<dyn HostSession>,
}

impl DeployJob<'_> {
    /// What this job shares with its recovery: store, environment, operator, service.
    fn context(&self) -> Context<'_> {
        Context {
            store: self.store,
            progress: self.progress,
            environment: &self.environment,
            operator: &self.operator,
            masker: &self.masker,
            service: &self.service,
            health: &self.health,
        }
    }

    fn clock(&self) -> &dyn Clock {
        self.store.clock()
    }

    /// Takes the environment's lease, waiting up to `lock_wait` for another
    /// holder; `StoreError::Locked` (exit 3) when it is still held.
    pub fn acquire(&self, reason: String, deployment: Option<DeploymentId>) -> Result<Lock, DeployError> {
        let req = LockRequest {
            name: Lock::env_name(&self.environment),
            owner: self.operator.clone(),
            reason,
            deployment_id: deployment,
            lease: self.lease,
        };
        Ok(super::lease::acquire(self.store, &req, self.lock_wait, &mut |_| {})?)
    }

    /// The recovery of this environment, with this job's hosts and service.
    pub fn recovery(&self) -> super::recover::Recovery<'_> {
        super::recover::Recovery {
            store: self.store,
            connector: self.connector,
            progress: self.progress,
            environment: self.environment.clone(),
            operator: self.operator.clone(),
            hosts: self.hosts.clone(),
            service: self.service.clone(),
            masker: self.masker.clone(),
            health: self.health.clone(),
            stacks: self.stacks.clone(),
            stack_env: self.stack_dir.as_ref().map(|dir| super::stacks::StackEnv {
                dir: dir.clone(),
                vars: self.stack_vars.clone(),
                work: self.stack_work.join("recovery"),
                deployment: String::new(),
                environment: self.environment.clone(),
            }),
        }
    }

    /// Runs the whole deployment under the environment's lease: recovery of
    /// whatever an earlier run left in progress first.
    pub fn run(self) -> Result<Outcome, DeployError> {
        let dep = self.new_deployment();
        let lock = self.acquire(format!("{} of {}", self.kind.as_str(), self.environment), Some(dep.id))?;
        if let Err(e) = self.recovery().run() {
            let _ = self.store.release_lock(&lock);
            return Err(e);
        }
        self.under_lease(lock, |held| Run::start(&self, held, dep)?.deploy())
    }

    /// Only the recovery, under the environment's lease (`rollway recover`):
    /// what an interrupted run left in progress is failed and rolled back.
    /// Returns the deployments it settled.
    pub fn recover(self) -> Result<Vec<DeploymentId>, DeployError> {
        let lock = self.acquire(format!("recover of {}", self.environment), None)?;
        let r = self.recovery().run();
        let _ = self.store.release_lock(&lock);
        r
    }

    /// Resumes watching the stability window of the environment's detached
    /// deployment (`rollway verify`). A window that ended with nobody
    /// watching is not failed (nobody saw the release fail): a fresh full
    /// window is watched, with the restart baselines read right after the
    /// switch, so restarts while detached still count. (A deploy that finds
    /// such a window settles it as "window not observed" in recovery.)
    pub fn resume(self) -> Result<Outcome, DeployError> {
        let dep = self
            .store
            .active_deployments(Some(&self.environment))?
            .into_iter()
            .find(|d| d.status() == DeploymentStatus::Verifying)
            .ok_or_else(|| {
                DeployError::Invalid(format!(
                    "no deployment of {} is in its stability window: nothing to verify (see `rollway status {}`)",
                    self.environment, self.environment
                ))
            })?;
        let lock = self.acquire(format!("verify of {}", self.environment), Some(dep.id))?;
        let verification = self.store.verifications(dep.id)?.into_iter().next();
        let now = self.clock().now();
        let Some(stored_end) = verification.as_ref().and_then(|v| v.window_ends_at) else {
            // Never reached its window (a crash before it started): settle it.
            let r = self.recovery().run();
            let _ = self.store.release_lock(&lock);
            r?;
            return Err(DeployError::Failed {
                deployment: dep.id,
                reason: "interrupted before its stability window started".into(),
                rolled_back: self
                    .store
                    .deployment(dep.id)?
                    .is_some_and(|d| d.status() == DeploymentStatus::RolledBack),
            });
        };
        let mut verification = verification.unwrap_or_else(|| Verification::new(dep.id, self.health.path.clone(), now));
        // Nobody watched the window to its end: rather than fail a release
        // nobody saw fail, watch a fresh full window. The restart baselines
        // stay those read right after the switch, so restarts while nobody
        // watched still count.
        let unwatched = now >= stored_end;
        let end = if unwatched {
            let fresh = now.plus(self.health.stability_window);
            verification.window_ends_at = Some(fresh);
            self.store.put_verification(&verification, Vec::new())?;
            fresh
        } else {
            stored_end
        };
        self.under_lease(lock, |held| {
            Run::resumed(&self, held, dep, verification).resume_window(stored_end, end, unwatched)
        })
    }

    /// Runs `f` while a thread renews the lease; gives it back after, except
    /// for a detached window, which keeps it until its end plus one lease.
    fn under_lease(
        &self,
        lock: Lock,
        f: impl FnOnce(&Mutex<Lock>) -> Result<Outcome, DeployError>,
    ) -> Result<Outcome, DeployError> {
        let done = AtomicBool::new(false);
        let held = Mutex::new(lock);
        let result = std::thread::scope(|scope| {
            scope.spawn(|| super::lease::renew_while(self.store, &held, self.lease, &done));
            let r = f(&held);
            done.store(true, Ordering::SeqCst);
            r
        });
        let lock = held.into_inner().unwrap_or_else(|p| p.into_inner());
        match &result {
            // A detached window keeps the lease until its end plus one lease.
            Ok(Outcome::Detached(_)) => {}
            _ => {
                let _ = self.store.release_lock(&lock);
            }
        }
        result
    }

    fn new_deployment(&self) -> Deployment {
        let now = self.clock().now();
        let mut dep = Deployment::new(self.kind, self.environment.clone(), self.operator.clone(), now);
        if let Some(id) = self.deployment_id {
            dep.id = id;
        }
        dep.artifact_id = Some(self.release.artifact_id);
        dep.version_tag.clone_from(&self.version_tag);
        dep.commit_sha.clone_from(&self.release.commit);
        dep.branch.clone_from(&self.release.branch);
        dep.dirty = self.release.dirty;
        dep.notes.clone_from(&self.notes);
        dep.rollback_to = self.rollback_to;
        dep.build_ms = self.build_ms;
        let plan = waves(self.hosts.len(), self.health.canary, self.health.parallel);
        dep.waves = plan
            .iter()
            .map(|w| w.iter().map(|&i| self.hosts[i].name.clone()).collect())
            .collect();
        let specs = self.stack_specs();
        dep.stacks_order = super::stacks::waves(&specs)
            .iter()
            .flatten()
            .map(|&i| specs[i].name.clone())
            .collect();
        if !self.ships() {
            // Command stacks only: no artifact, no hosts.
            dep.artifact_id = None;
            dep.waves = Vec::new();
        }
        dep
    }

    /// The stacks of this deployment: the configured ones, or the release alone.
    fn stack_specs(&self) -> Vec<StackSpec> {
        if self.stacks.is_empty() {
            vec![StackSpec::release()]
        } else {
            self.stacks.clone()
        }
    }

    fn ships(&self) -> bool {
        self.stack_specs().iter().any(StackSpec::is_release)
    }
}

/// One deployment in progress: the job, the lease it runs under, and what
/// the run has learned so far. Phases running side by side (a command
/// stack while the release ships) share it through `&self`, so what they
/// change sits behind a mutex.
struct Run<'r, 'a> {
    job: &'r DeployJob<'a>,
    /// The environment's lease, renewed by `DeployJob::under_lease`.
    held: &'r Mutex<Lock>,
    dep: Deployment,
    specs: Vec<StackSpec>,
    /// The stack records, one per spec, in the same order.
    records: Mutex<Vec<Stack>>,
    verification: Mutex<Verification>,
    /// The hosts that took (or were taking) the release, with their sessions.
    live: Mutex<Vec<Live>>,
    /// The outputs of the command stacks deployed so far.
    upstream: Mutex<Outputs>,
    /// Indexes of the stacks deployed, in the order they finished.
    deployed: Vec<usize>,
}

impl<'r, 'a> Run<'r, 'a> {
    /// Creates deployment `dep` and its stack records (pending).
    fn start(job: &'r DeployJob<'a>, held: &'r Mutex<Lock>, dep: Deployment) -> Result<Self, DeployError> {
        let ctx = job.context();
        let created = ctx
            .event(
                dep.id,
                EventKind::DeploymentTransition,
                Level::Info,
                format!(
                    "deployment {} of {} created by {}",
                    dep.id, job.environment, job.operator
                ),
            )
            .data(json!({
                "to": "pending",
                "kind": job.kind.as_str(),
                "artifact": dep.artifact_id.map(|a| a.to_string()),
            }));
        let mut events = vec![created];
        // Seed 001: a manual rollback announces itself as it starts (its
        // completion is written when the release it supersedes is rolled back).
        if let (DeploymentKind::Rollback, Some((from, reason))) = (job.kind, &job.supersedes) {
            events.push(
                ctx.event(
                    dep.id,
                    EventKind::RollbackInitiated,
                    Level::Warn,
                    format!(
                        "rolling back {} from {from} to {}",
                        job.environment,
                        dep.rollback_to
                            .map_or_else(|| "an earlier release".to_owned(), |t| t.to_string())
                    ),
                )
                .data(
                    json!({ "from": from.to_string(), "to": dep.rollback_to.map(|t| t.to_string()), "reason": reason }),
                ),
            );
        }
        job.store.insert_deployment(&dep, events)?;
        let specs = job.stack_specs();
        let mut records: Vec<Stack> = Vec::with_capacity(specs.len());
        for s in &specs {
            let mut st = Stack::new(dep.id, s.name.clone(), job.clock().now());
            st.dependencies.clone_from(&s.depends_on);
            st.secret_outputs.clone_from(&s.secret_outputs);
            // The store holds the stack to its contract (seed 004 outputs,
            // resource properties and governance tags) as data is recorded.
            if !s.is_release() {
                st.contract = StackContract {
                    outputs: s.outputs.clone(),
                    secret_outputs: s.secret_outputs.clone(),
                    resources: s.resources.clone(),
                    required_tags: job.required_tags.clone(),
                };
            }
            records.push(job.store.put_stack(&st, Vec::new())?);
        }
        job.progress
            .step(None, &format!("deployment {} of {}", dep.id, job.environment));
        failpoint("after-create");
        let mut verification = Verification::new(dep.id, job.health.path.clone(), job.clock().now());
        verification.expect_status = job.health.expect_status;
        verification.stability_window_ms = u64::try_from(job.health.stability_window.as_millis()).unwrap_or(u64::MAX);
        Ok(Self {
            job,
            held,
            dep,
            specs,
            records: Mutex::new(records),
            verification: Mutex::new(verification),
            live: Mutex::new(Vec::new()),
            upstream: Mutex::new(BTreeMap::new()),
            deployed: Vec::new(),
        })
    }

    /// A deployment already in its window (`rollway verify`): its stacks
    /// are behind it, only its hosts and its verification matter.
    fn resumed(job: &'r DeployJob<'a>, held: &'r Mutex<Lock>, dep: Deployment, verification: Verification) -> Self {
        Self {
            job,
            held,
            dep,
            specs: Vec::new(),
            records: Mutex::new(Vec::new()),
            verification: Mutex::new(verification),
            live: Mutex::new(Vec::new()),
            upstream: Mutex::new(BTreeMap::new()),
            deployed: Vec::new(),
        }
    }

    /// The phases in order; the first failure fails the deployment and
    /// rolls back what it changed.
    fn deploy(mut self) -> Result<Outcome, DeployError> {
        self.dep = self.advance(DeploymentStatus::Building)?;
        if let Some(build) = self.job.build
            && let Err(why) = build()
        {
            return Err(self.fail(&[], format!("building: {why}")));
        }
        self.dep = self.advance(DeploymentStatus::Synthesizing)?;
        self.synthesize_all()?;
        self.dep = self.advance(DeploymentStatus::Deploying)?;
        failpoint("after-deploying");
        self.deploy_all()?;
        failpoint("after-waves");
        self.dep = self.advance(DeploymentStatus::Verifying)?;
        self.verify_all()?;
        self.verdict()
    }

    fn ctx(&self) -> Context<'_> {
        self.job.context()
    }

    fn clock(&self) -> &dyn Clock {
        self.job.clock()
    }

    fn event(&self, kind: EventKind, level: Level, msg: impl Into<String>) -> NewEvent {
        self.ctx().event(self.dep.id, kind, level, msg)
    }

    fn verification(&self) -> std::sync::MutexGuard<'_, Verification> {
        self.verification.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Vec<Live>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn records(&self) -> std::sync::MutexGuard<'_, Vec<Stack>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Says `msg` and records it as a step of the deployment.
    fn step(&self, host: Option<&str>, msg: String, data: serde_json::Value) -> Result<(), DeployError> {
        self.job.progress.step(host, &msg);
        let mut ev = self.event(EventKind::DeployStep, Level::Info, msg).data(data);
        ev.service = host.map(str::to_owned);
        self.job.store.append_event(ev)?;
        Ok(())
    }

    /// Moves the deployment and writes its transition event, in one transaction.
    fn advance(&self, to: DeploymentStatus) -> Result<Deployment, DeployError> {
        let ctx = self.ctx();
        let now = self.clock().now();
        let dep = self
            .job
            .store
            .update_deployment(self.dep.id, &mut |d: &mut Deployment| {
                let from = d.status();
                d.transition(to, now).map_err(model_err)?;
                let mut evs = vec![
                    ctx.event(
                        d.id,
                        EventKind::DeploymentTransition,
                        Level::Info,
                        format!("deployment {}: {from} → {to}", d.id),
                    )
                    .data(json!({ "from": from.as_str(), "to": to.as_str() })),
                ];
                if to == DeploymentStatus::Succeeded {
                    evs.push(ctx.event(
                        d.id,
                        EventKind::DeploymentSuccess,
                        Level::Info,
                        format!("deployment {} succeeded", d.id),
                    ));
                }
                Ok(evs)
            })?;
        self.job.progress.step(None, &format!("deployment {}", dep.status()));
        Ok(dep)
    }

    /// Moves stack `i` to `to` (with `error` on failed), recorded.
    fn stack_to(&self, i: usize, to: StackStatus, error: Option<&str>) -> Result<(), DeployError> {
        let id = match self.records().get(i) {
            Some(s) if s.status() != to => s.id,
            _ => return Ok(()),
        };
        let now = self.clock().now();
        let masked = error.map(|e| self.job.masker.mask(e));
        let updated = self.job.store.update_stack(id, &mut |s: &mut Stack| {
            match &masked {
                Some(e) => s.fail(e.clone(), now).map_err(model_err)?,
                None => s.transition(to, now).map_err(model_err)?,
            }
            Ok(Vec::new())
        })?;
        if let Some(slot) = self.records().get_mut(i) {
            *slot = updated;
        }
        Ok(())
    }

    /// The name of this deployment's env file on the hosts (`ROOT/envs/<name>.env`).
    fn env_name(&self) -> String {
        self.job
            .env_from_host
            .clone()
            .unwrap_or_else(|| self.dep.id.to_string())
    }

    fn spec_for(&self, plan: &HostPlan, env_name: &str) -> ServiceSpec {
        self.ctx().spec_for(plan, env_name)
    }
}

fn describe(p: &crate::probe::ProbeResult) -> String {
    match (p.status, &p.error) {
        (Some(s), _) => format!("HTTP {s} in {} ms", p.latency_ms),
        (None, Some(e)) => e.clone(),
        (None, None) => "no answer".to_owned(),
    }
}
