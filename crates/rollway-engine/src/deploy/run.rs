//! One deployment from lock to verdict: take the lease, recover what an
//! earlier run left, check secrets, ship and switch host by host in waves,
//! restart, boot-check, watch the stability window, and return every host
//! that took the release to its previous one when anything fails.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rollway_model::{
    CheckResult, Clock, Deployment, DeploymentId, DeploymentKind, DeploymentStatus, EnvironmentStatus, EventKind,
    HostResult, Level, Lock, Masker, NewEvent, Resource, ResourceStatus, Stack, StackStatus, Timestamp, Verification,
};
use rollway_store::{LockRequest, Store, StoreError};
use serde_json::json;

use super::failpoint::failpoint;
use super::plan::waves;
use super::stacks::{self, StackSpec};
use super::window::{Observation, Window};
use super::{DeployError, HostPlan, Progress, ReleaseSource};
use crate::host::{HostSession, ServiceCheck, ServiceOp};
use crate::supervisor::{PortOwner, ServiceSpec};

/// How often the boot check looks at the service's start count between
/// attempts, so a crash loop is caught within a restart or two whatever
/// `interval` is.
const BOOT_WATCH: Duration = Duration::from_millis(100);

/// Lines of the service's output a boot-check failure carries.
const BOOT_OUTPUT_LINES: usize = 10;

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

/// One host with its session and its record.
struct Live {
    plan: HostPlan,
    session: Box<dyn HostSession>,
}

impl DeployJob<'_> {
    fn clock(&self) -> &dyn Clock {
        self.store.clock()
    }

    fn event(&self, dep: &Deployment, kind: EventKind, level: Level, msg: impl Into<String>) -> NewEvent {
        NewEvent::new(kind, level, self.masker.mask(&msg.into()))
            .environment(self.environment.clone())
            .deployment(dep.id)
            .operator(self.operator.clone())
    }

    fn step(
        &self,
        dep: &Deployment,
        host: Option<&str>,
        msg: String,
        data: serde_json::Value,
    ) -> Result<(), DeployError> {
        self.progress.step(host, &msg);
        let mut ev = self.event(dep, EventKind::DeployStep, Level::Info, msg).data(data);
        ev.service = host.map(str::to_owned);
        self.store.append_event(ev)?;
        Ok(())
    }

    /// Moves the deployment and writes its transition event, in one transaction.
    fn advance(&self, id: DeploymentId, to: DeploymentStatus) -> Result<Deployment, DeployError> {
        let now = self.clock().now();
        let dep = self.store.update_deployment(id, &mut |d: &mut Deployment| {
            let from = d.status();
            d.transition(to, now).map_err(model_err)?;
            let mut evs = vec![
                self.event(
                    d,
                    EventKind::DeploymentTransition,
                    Level::Info,
                    format!("deployment {}: {from} → {to}", d.id),
                )
                .data(json!({ "from": from.as_str(), "to": to.as_str() })),
            ];
            if to == DeploymentStatus::Succeeded {
                evs.push(self.event(
                    d,
                    EventKind::DeploymentSuccess,
                    Level::Info,
                    format!("deployment {} succeeded", d.id),
                ));
            }
            Ok(evs)
        })?;
        self.progress.step(None, &format!("deployment {}", dep.status()));
        Ok(dep)
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
        self.under_lease(lock, |held| self.deploy(dep, held))
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
        let verification = Mutex::new(verification);
        self.under_lease(lock, |held| {
            let names: Vec<String> = verification
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .hosts
                .iter()
                .map(|h| h.host.clone())
                .collect();
            let mut live = Vec::new();
            for plan in self.hosts.iter().filter(|p| names.contains(&p.name)) {
                match self.connector.connect(plan) {
                    Ok(session) => live.push(Live {
                        plan: plan.clone(),
                        session,
                    }),
                    Err(e) => {
                        return Err(self.fail_and_return(
                            dep.id,
                            &verification,
                            &mut live,
                            format!("{}: {e}", plan.name),
                        ));
                    }
                }
            }
            if unwatched {
                self.step(
                    &dep,
                    None,
                    format!(
                        "the window ended at {stored_end} with nobody watching: watching a fresh full window until {end} (restarts since the switch still count)"
                    ),
                    json!({ "window_ended_at": stored_end, "window_ends_at": end, "fresh_window": true }),
                )?;
            } else {
                self.step(
                    &dep,
                    None,
                    format!("watching the stability window until {end}"),
                    json!({ "window_ends_at": end }),
                )?;
            }
            if let Err(reason) = self.watch(&dep, &verification, &mut live, end.since(self.clock().now())) {
                if reason == WINDOW_INTERRUPTED {
                    return self.detach_at(&dep, &verification, held, end, "interrupted");
                }
                return Err(self.fail_and_return(dep.id, &verification, &mut live, reason));
            }
            self.finish(dep.id, &verification, &mut live)
        })
    }

    /// Leaves the window to `rollway verify` (or `rollway serve`): the
    /// deployment stays `verifying` with its window end stored, and the lease
    /// is held until that end plus one lease, so nobody else deploys over an
    /// unwatched window.
    fn detach_at(
        &self,
        dep: &Deployment,
        verification: &Mutex<Verification>,
        held: &Mutex<Lock>,
        ends: Timestamp,
        why: &str,
    ) -> Result<Outcome, DeployError> {
        {
            let mut v = verification.lock().unwrap_or_else(|p| p.into_inner());
            v.window_ends_at = Some(ends);
            self.store.put_verification(&v, Vec::new())?;
        }
        let mut guard = held.lock().unwrap_or_else(|p| p.into_inner());
        let until = ends.plus(self.lease);
        if let Ok(renewed) = self.store.renew_lock(&guard, until.since(self.clock().now())) {
            *guard = renewed;
        }
        drop(guard);
        self.step(
            dep,
            None,
            format!(
                "{why}: detached; the window ends at {ends}: run `rollway verify {}`",
                self.environment
            ),
            json!({ "window_ends_at": ends }),
        )?;
        Ok(Outcome::Detached(Box::new(dep.clone())))
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
            scope.spawn(|| self.renew_while(&held, &done));
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

    fn renew_while(&self, held: &Mutex<Lock>, done: &AtomicBool) {
        super::lease::renew_while(self.store, held, self.lease, done);
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

    fn deploy(&self, mut dep: Deployment, held: &Mutex<Lock>) -> Result<Outcome, DeployError> {
        let specs = self.stack_specs();
        let order = stacks::waves(&specs);
        let created = self
            .event(
                &dep,
                EventKind::DeploymentTransition,
                Level::Info,
                format!(
                    "deployment {} of {} created by {}",
                    dep.id, self.environment, self.operator
                ),
            )
            .data(json!({
                "to": "pending",
                "kind": self.kind.as_str(),
                "artifact": dep.artifact_id.map(|a| a.to_string()),
            }));
        self.store.insert_deployment(&dep, vec![created])?;
        let mut records: Vec<Stack> = Vec::with_capacity(specs.len());
        for s in &specs {
            let mut st = Stack::new(dep.id, s.name.clone(), self.clock().now());
            st.dependencies.clone_from(&s.depends_on);
            st.secret_outputs.clone_from(&s.secret_outputs);
            records.push(self.store.put_stack(&st, Vec::new())?);
        }
        let records = Mutex::new(records);
        self.progress
            .step(None, &format!("deployment {} of {}", dep.id, self.environment));
        failpoint("after-create");
        let mut verification = Verification::new(dep.id, self.health.path.clone(), self.clock().now());
        verification.expect_status = self.health.expect_status;
        verification.stability_window_ms = u64::try_from(self.health.stability_window.as_millis()).unwrap_or(u64::MAX);
        let verification = Mutex::new(verification);
        let mut live: Vec<Live> = Vec::new();

        dep = self.advance(dep.id, DeploymentStatus::Building)?;
        if let Some(build) = self.build
            && let Err(why) = build()
        {
            return Err(self.fail_stacks(
                &dep,
                &specs,
                &records,
                &[],
                &[],
                &verification,
                &mut live,
                format!("building: {why}"),
            ));
        }
        dep = self.advance(dep.id, DeploymentStatus::Synthesizing)?;
        let upstream: Mutex<BTreeMap<String, BTreeMap<String, String>>> = Mutex::new(BTreeMap::new());
        for &i in order.iter().flatten() {
            self.stack_to(&records, i, StackStatus::Synthesizing, None)?;
            if let Err(why) = self.synthesize(&dep, &specs[i], &records, i) {
                let reason = format!("stack {}: {why}", specs[i].name);
                return Err(self.fail_stacks(
                    &dep,
                    &specs,
                    &records,
                    &[(i, why)],
                    &[],
                    &verification,
                    &mut live,
                    reason,
                ));
            }
            self.stack_to(&records, i, StackStatus::Synthesized, None)?;
        }
        dep = self.advance(dep.id, DeploymentStatus::Deploying)?;
        failpoint("after-deploying");

        // Each stack starts as soon as every stack it depends on is
        // deployed (the waves are what is recorded; the schedule is eager,
        // so the wall time follows the critical path).
        let mut deployed: Vec<usize> = Vec::new();
        let mut failing: Vec<(usize, String)> = Vec::new();
        let mut started: Vec<bool> = vec![false; specs.len()];
        let mut running = 0usize;
        std::thread::scope(|scope| -> Result<(), DeployError> {
            let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<(), String>, Vec<Live>)>();
            loop {
                if failing.is_empty() && !self.interrupted.load(Ordering::SeqCst) {
                    for i in 0..specs.len() {
                        let ready = !started[i]
                            && specs[i].depends_on.iter().all(|d| {
                                specs
                                    .iter()
                                    .position(|s| &s.name == d)
                                    .is_some_and(|k| deployed.contains(&k))
                            });
                        if !ready {
                            continue;
                        }
                        started[i] = true;
                        running += 1;
                        self.stack_to(&records, i, StackStatus::Deploying, None)?;
                        let tx = tx.clone();
                        let (dep, specs, records, upstream, verification) =
                            (&dep, &specs, &records, &upstream, &verification);
                        scope.spawn(move || {
                            let mut live = Vec::new();
                            let r = if specs[i].is_release() {
                                let seen: BTreeMap<String, BTreeMap<String, String>> = {
                                    let all = upstream.lock().unwrap_or_else(|p| p.into_inner());
                                    all.iter()
                                        .filter(|(k, _)| self.upstream_of(&specs[i], k))
                                        .map(|(k, v)| (k.clone(), v.clone()))
                                        .collect()
                                };
                                self.ship_hosts(dep, verification, &mut live, &seen)
                            } else {
                                self.deploy_stack(dep, &specs[i], records, i, upstream)
                            };
                            let _ = tx.send((i, r, live));
                        });
                    }
                }
                if running == 0 {
                    break;
                }
                let Ok((i, r, mut hosts)) = rx.recv() else {
                    break;
                };
                running -= 1;
                live.append(&mut hosts);
                match r {
                    Ok(()) => {
                        self.stack_to(&records, i, StackStatus::Deployed, None)?;
                        deployed.push(i);
                    }
                    Err(why) => failing.push((i, why)),
                }
            }
            Ok(())
        })?;
        if self.interrupted.load(Ordering::SeqCst) && deployed.iter().all(|&i| specs[i].is_release()) {
            // Ctrl-C with no command stack deployed: cancelled when no host
            // switched yet, else failed with the hosts returned.
            for i in 0..specs.len() {
                if !deployed.contains(&i) {
                    let _ = self.stack_to(&records, i, StackStatus::Skipped, None);
                }
            }
            return Err(self.cancel_or_fail(&dep, &verification, &mut live, "interrupted (Ctrl-C)"));
        }
        if failing.is_empty() && deployed.len() < specs.len() && self.interrupted.load(Ordering::SeqCst) {
            failing.push((usize::MAX, "interrupted (Ctrl-C)".into()));
        }
        if !failing.is_empty() {
            let reason = failing
                .iter()
                .map(|(i, why)| match specs.get(*i) {
                    Some(s) => format!("stack {}: {why}", s.name),
                    None => why.clone(),
                })
                .collect::<Vec<_>>()
                .join("; ");
            failing.retain(|(i, _)| *i < specs.len());
            return Err(self.fail_stacks(
                &dep,
                &specs,
                &records,
                &failing,
                &deployed,
                &verification,
                &mut live,
                reason,
            ));
        }
        failpoint("after-waves");
        dep = self.advance(dep.id, DeploymentStatus::Verifying)?;
        for &i in &deployed {
            if specs[i].is_release() {
                continue;
            }
            if let Err(why) = self.verify_stack(&dep, &specs[i], &records, i, &upstream) {
                let rest: Vec<usize> = deployed.iter().copied().filter(|&d| d != i).collect();
                let reason = format!("stack {}: {why}", specs[i].name);
                return Err(self.fail_stacks(
                    &dep,
                    &specs,
                    &records,
                    &[(i, why)],
                    &rest,
                    &verification,
                    &mut live,
                    reason,
                ));
            }
        }
        let release = specs.iter().position(StackSpec::is_release);
        let Some(release) = release else {
            // No release stack: nothing runs on hosts, so no window to watch.
            self.step(
                &dep,
                None,
                "no release stack: the health checks pass through".into(),
                json!({}),
            )?;
            return self.finish(dep.id, &verification, &mut live);
        };
        let ends = self.clock().now().plus(self.health.stability_window);
        {
            let mut v = verification.lock().unwrap_or_else(|p| p.into_inner());
            v.window_ends_at = Some(ends);
            self.store.put_verification(&v, Vec::new())?;
        }
        if self.detach {
            return self.detach_at(&dep, &verification, held, ends, "--detach");
        }
        if let Err(reason) = self.watch(&dep, &verification, &mut live, self.health.stability_window) {
            // Ctrl-C (or SIGTERM, SIGHUP) during the window: the CLI
            // detaches and the window is left to `rollway verify`.
            if reason == WINDOW_INTERRUPTED {
                return self.detach_at(&dep, &verification, held, ends, "interrupted");
            }
            let rest: Vec<usize> = deployed.iter().copied().filter(|&d| d != release).collect();
            return Err(self.fail_stacks(
                &dep,
                &specs,
                &records,
                &[(release, reason.clone())],
                &rest,
                &verification,
                &mut live,
                reason,
            ));
        }
        self.finish(dep.id, &verification, &mut live)
    }

    /// The release stack: ships to the hosts in waves (canary first).
    fn ship_hosts(
        &self,
        dep: &Deployment,
        verification: &Mutex<Verification>,
        live: &mut Vec<Live>,
        upstream: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<(), String> {
        // The upstream stacks' outputs reach the service through its env file.
        let env_text = if upstream.is_empty() {
            self.env_text.clone()
        } else {
            let extra = rollway_secrets::render_env_file(&stacks::upstream_env(upstream));
            format!("{}{extra}", self.env_text)
        };
        if self.env_from_host.is_none()
            && let Some(keep) = self.keep_env
        {
            keep(dep.id, &env_text).map_err(|e| format!("keeping the env file on this machine: {e}"))?;
        }
        let env_text = env_text.as_str();
        let plan = waves(self.hosts.len(), self.health.canary, self.health.parallel);
        for (w, wave) in plan.iter().enumerate() {
            if self.interrupted.load(Ordering::SeqCst) {
                return Err("interrupted (Ctrl-C)".into());
            }
            let hosts: Vec<HostPlan> = wave.iter().map(|&i| self.hosts[i].clone()).collect();
            let results: Vec<Result<Live, Box<HostFailure>>> = std::thread::scope(|scope| {
                let handles: Vec<_> = hosts
                    .into_iter()
                    .map(|h| scope.spawn(move || self.take_release(dep, verification, h, env_text)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(Box::new(HostFailure {
                                plan: HostPlan::unknown(),
                                session: None,
                                why: "host thread panicked".into(),
                            }))
                        })
                    })
                    .collect()
            });
            let mut failure = None;
            for r in results {
                match r {
                    Ok(l) => live.push(l),
                    Err(f) => {
                        let HostFailure { plan, session, why } = *f;
                        if let Some(session) = session {
                            live.push(Live {
                                plan: plan.clone(),
                                session,
                            });
                        }
                        failure.get_or_insert(format!("{}: {why}", plan.name));
                    }
                }
            }
            if let Some(reason) = failure {
                return Err(reason);
            }
            if w == 0 && self.health.canary > 0 && !self.health.canary_window.is_zero() && plan.len() > 1 {
                self.step(
                    dep,
                    None,
                    format!("watching the canary wave for {:?}", self.health.canary_window),
                    json!({}),
                )
                .map_err(|e| e.to_string())?;
                self.watch(dep, verification, live, self.health.canary_window)
                    .map_err(|reason| format!("canary: {reason}"))?;
            }
        }
        Ok(())
    }

    /// Moves stack `i` to `to` (with `error` on failed), recorded.
    fn stack_to(
        &self,
        records: &Mutex<Vec<Stack>>,
        i: usize,
        to: StackStatus,
        error: Option<&str>,
    ) -> Result<(), DeployError> {
        let id = {
            let g = records.lock().unwrap_or_else(|p| p.into_inner());
            match g.get(i) {
                Some(s) if s.status() != to => s.id,
                _ => return Ok(()),
            }
        };
        let now = self.clock().now();
        let masked = error.map(|e| self.masker.mask(e));
        let updated = self.store.update_stack(id, &mut |s: &mut Stack| {
            match &masked {
                Some(e) => s.fail(e.clone(), now).map_err(model_err)?,
                None => s.transition(to, now).map_err(model_err)?,
            }
            Ok(Vec::new())
        })?;
        if let Some(slot) = records.lock().unwrap_or_else(|p| p.into_inner()).get_mut(i) {
            *slot = updated;
        }
        Ok(())
    }

    fn stack_env(&self, dep: &Deployment) -> Option<stacks::StackEnv> {
        self.stack_dir.as_ref().map(|dir| stacks::StackEnv {
            dir: dir.clone(),
            vars: self.stack_vars.clone(),
            work: self.stack_work.join(dep.id.to_string()),
            deployment: dep.id.to_string(),
            environment: self.environment.clone(),
        })
    }

    /// Runs one command of a stack and records it as a step; `Err` carries
    /// why (the exit code and the last lines of output, masked).
    fn stack_command(
        &self,
        dep: &Deployment,
        spec: &StackSpec,
        phase: &str,
        command: &str,
        upstream: &BTreeMap<String, BTreeMap<String, String>>,
        extra: &[(String, String)],
    ) -> Result<(), String> {
        let env = self
            .stack_env(dep)
            .ok_or_else(|| "no project directory for stack commands".to_owned())?;
        let ran = env
            .run(&spec.name, phase, command, upstream, extra)
            .map_err(|e| format!("{phase} could not run: {e}"))?;
        let output = self.masker.mask(&stacks::tail(&ran.output, 20));
        let ok = ran.ok;
        let code = ran.code;
        let _ = self.step(
            dep,
            None,
            format!("stack {} {phase} {}", spec.name, if ok { "done" } else { "failed" }),
            json!({ "stack": spec.name, "phase": phase, "exit_code": code, "output": output }),
        );
        if ok {
            Ok(())
        } else {
            let last = output.lines().last().unwrap_or("").to_owned();
            Err(format!(
                "{phase} exited {}{}",
                code.map_or("by a signal".to_owned(), |c| c.to_string()),
                if last.is_empty() {
                    String::new()
                } else {
                    format!(": {last}")
                }
            ))
        }
    }

    fn synthesize(
        &self,
        dep: &Deployment,
        spec: &StackSpec,
        records: &Mutex<Vec<Stack>>,
        i: usize,
    ) -> Result<(), String> {
        let none = BTreeMap::new();
        if let Some(cmd) = &spec.synth {
            self.stack_command(dep, spec, "synth", cmd, &none, &[])?;
        }
        let Some(env) = self.stack_env(dep) else {
            return Ok(());
        };
        let Some(template) = env.template(&spec.name)? else {
            return Ok(());
        };
        let id = records.lock().unwrap_or_else(|p| p.into_inner()).get(i).map(|s| s.id);
        if let Some(id) = id {
            let path = template.display().to_string();
            let updated = self
                .store
                .update_stack(id, &mut |s: &mut Stack| {
                    s.template_path = Some(path.clone());
                    Ok(Vec::new())
                })
                .map_err(|e| e.to_string())?;
            if let Some(slot) = records.lock().unwrap_or_else(|p| p.into_inner()).get_mut(i) {
                *slot = updated;
            }
        }
        if let Some(cmd) = &spec.validate {
            let extra = [("ROLLWAY_TEMPLATE".to_owned(), template.display().to_string())];
            self.stack_command(dep, spec, "validate", cmd, &none, &extra)?;
        }
        Ok(())
    }

    /// `deploy` of a command stack with its upstream outputs; checks and
    /// records what it reported.
    fn deploy_stack(
        &self,
        dep: &Deployment,
        spec: &StackSpec,
        records: &Mutex<Vec<Stack>>,
        i: usize,
        upstream: &Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    ) -> Result<(), String> {
        let seen: BTreeMap<String, BTreeMap<String, String>> = {
            let all = upstream.lock().unwrap_or_else(|p| p.into_inner());
            all.iter()
                .filter(|(k, _)| self.upstream_of(spec, k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        let cmd = spec.deploy.clone().unwrap_or_default();
        self.stack_command(dep, spec, "deploy", &cmd, &seen, &[])?;
        let env = self
            .stack_env(dep)
            .ok_or_else(|| "no project directory for stack commands".to_owned())?;
        let report = env.report(&spec.name)?;
        // Secret outputs: masked everywhere from now on, kept encrypted,
        // stored in the stack record as `****`.
        let secrets: Vec<(String, String)> = spec
            .secret_outputs
            .iter()
            .filter_map(|k| report.outputs.get(k).map(|v| (k.clone(), v.clone())))
            .collect();
        if !secrets.is_empty()
            && let Some(keep) = self.secret_outputs
        {
            let kept = keep(dep.id, &spec.name, &secrets).map_err(|e| format!("keeping the secret outputs: {e}"))?;
            let _ = self.step(
                dep,
                None,
                format!("stack {}: secret outputs encrypted in {kept}", spec.name),
                json!({ "stack": spec.name, "keys": spec.secret_outputs, "file": kept }),
            );
        }
        self.record_report(records, i, spec, &report)?;
        upstream
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(spec.name.clone(), report.outputs.clone());
        let problems = stacks::problems(spec, &report, &self.required_tags);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Whether `other` is an ancestor of `spec` (its outputs reach it).
    fn upstream_of(&self, spec: &StackSpec, other: &str) -> bool {
        let specs = &self.stacks;
        let mut stack: Vec<&str> = spec.depends_on.iter().map(String::as_str).collect();
        let mut seen = std::collections::BTreeSet::new();
        while let Some(n) = stack.pop() {
            if n == other {
                return true;
            }
            if seen.insert(n)
                && let Some(s) = specs.iter().find(|s| s.name == n)
            {
                stack.extend(s.depends_on.iter().map(String::as_str));
            }
        }
        false
    }

    /// Stores a stack's outputs (secret ones masked) and its resources.
    fn record_report(
        &self,
        records: &Mutex<Vec<Stack>>,
        i: usize,
        spec: &StackSpec,
        report: &stacks::StackReport,
    ) -> Result<(), String> {
        let Some(stack) = records.lock().unwrap_or_else(|p| p.into_inner()).get(i).cloned() else {
            return Ok(());
        };
        let outputs: BTreeMap<String, String> = report
            .outputs
            .iter()
            .map(|(k, v)| {
                let shown = if spec.secret_outputs.contains(k) {
                    rollway_model::mask::MASK.to_owned()
                } else {
                    v.clone()
                };
                (k.clone(), shown)
            })
            .collect();
        let updated = self
            .store
            .update_stack(stack.id, &mut |s: &mut Stack| {
                s.outputs.clone_from(&outputs);
                Ok(Vec::new())
            })
            .map_err(|e| e.to_string())?;
        if let Some(slot) = records.lock().unwrap_or_else(|p| p.into_inner()).get_mut(i) {
            *slot = updated;
        }
        let known = self.store.resources(stack.id).map_err(|e| e.to_string())?;
        for r in &report.resources {
            let now = self.clock().now();
            let mut res = known
                .iter()
                .find(|k| k.logical_id == r.logical_id)
                .cloned()
                .unwrap_or_else(|| Resource::new(stack.id, r.resource_type.clone(), r.logical_id.clone(), now));
            res.resource_id.clone_from(&r.physical_id);
            res.properties.clone_from(&r.properties);
            res.tags.clone_from(&r.tags);
            let to = match r.status.as_str() {
                "available" => Some(ResourceStatus::Available),
                "failed" => Some(ResourceStatus::Failed),
                _ => None,
            };
            if let Some(to) = to
                && res.status() == ResourceStatus::Creating
            {
                res.transition(to, now).map_err(|e| e.to_string())?;
            }
            self.store.put_resource(&res, Vec::new()).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// `verify` of a deployed command stack; then no resource may still be creating.
    fn verify_stack(
        &self,
        dep: &Deployment,
        spec: &StackSpec,
        records: &Mutex<Vec<Stack>>,
        i: usize,
        upstream: &Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    ) -> Result<(), String> {
        let seen = upstream.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(cmd) = &spec.verify {
            self.stack_command(dep, spec, "verify", cmd, &seen, &[])?;
            if let Some(env) = self.stack_env(dep) {
                let report = env.report(&spec.name)?;
                self.record_report(records, i, spec, &report)?;
                let problems = stacks::problems(spec, &report, &self.required_tags);
                if !problems.is_empty() {
                    return Err(problems.join("; "));
                }
            }
        }
        let Some(stack) = records.lock().unwrap_or_else(|p| p.into_inner()).get(i).cloned() else {
            return Ok(());
        };
        let creating: Vec<String> = self
            .store
            .resources(stack.id)
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|r| r.status() == ResourceStatus::Creating)
            .map(|r| format!("{} ({})", r.logical_id, r.resource_type))
            .collect();
        if creating.is_empty() {
            Ok(())
        } else {
            Err(format!("still creating after verify: {}", creating.join(", ")))
        }
    }

    /// A failure anywhere: the deployment fails with `reason`; the failing
    /// stacks' own rollbacks run first, then every deployed stack's in
    /// reverse order (the release stack returns its hosts); stacks never
    /// started are skipped; the deployment ends rolled_back when anything
    /// was rolled back.
    #[allow(clippy::too_many_arguments)]
    fn fail_stacks(
        &self,
        dep: &Deployment,
        specs: &[StackSpec],
        records: &Mutex<Vec<Stack>>,
        failing: &[(usize, String)],
        deployed: &[usize],
        verification: &Mutex<Verification>,
        live: &mut [Live],
        reason: String,
    ) -> DeployError {
        let reason = self.masker.mask(&reason);
        let involves_release = failing
            .iter()
            .map(|(i, _)| *i)
            .chain(deployed.iter().copied())
            .any(|i| specs.get(i).is_some_and(StackSpec::is_release));
        // The deployment is failed first, so every rollback below is a rollback of a failed deployment.
        let mut outcome = None;
        if let Err(e) = self.mark_failed(dep.id, &reason) {
            return e;
        }
        let none = BTreeMap::new();
        let mut rolled_any = false;
        let command_rollbacks = failing
            .iter()
            .map(|(i, _)| *i)
            .chain(deployed.iter().copied())
            .any(|i| specs.get(i).is_some_and(|s| !s.is_release()));
        if command_rollbacks && !involves_release {
            // (The release stack's return announces itself.)
            let _ = self.store.append_event(
                self.event(
                    dep,
                    EventKind::RollbackInitiated,
                    Level::Warn,
                    format!("rolling back the stacks of {}", dep.id),
                )
                .data(json!({ "reason": reason })),
            );
        }
        for (i, why) in failing {
            let _ = self.stack_to(records, *i, StackStatus::Failed, Some(why));
            match specs.get(*i) {
                Some(s) if s.is_release() => {
                    outcome = Some(self.fail_and_return(dep.id, verification, live, reason.clone()))
                }
                Some(s) => {
                    if let Some(cmd) = &s.rollback {
                        rolled_any |= self.stack_command(dep, s, "rollback", cmd, &none, &[]).is_ok();
                    }
                }
                None => {}
            }
        }
        for &i in deployed.iter().rev() {
            match specs.get(i) {
                Some(s) if s.is_release() => {
                    let r = self.fail_and_return(dep.id, verification, live, reason.clone());
                    let back = matches!(r, DeployError::Failed { rolled_back: true, .. });
                    if back {
                        let _ = self.stack_to(records, i, StackStatus::RolledBack, None);
                    }
                    outcome = Some(r);
                }
                Some(s) => {
                    if let Some(cmd) = &s.rollback {
                        let _ = self.stack_command(dep, s, "rollback", cmd, &none, &[]);
                    }
                    let _ = self.stack_to(records, i, StackStatus::RolledBack, None);
                    rolled_any = true;
                }
                None => {}
            }
        }
        let n = records.lock().unwrap_or_else(|p| p.into_inner()).len();
        for i in 0..n {
            let st = records
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(i)
                .map(Stack::status);
            if matches!(st, Some(StackStatus::Pending | StackStatus::Synthesized)) {
                let _ = self.stack_to(records, i, StackStatus::Skipped, None);
            } else if matches!(st, Some(StackStatus::Synthesizing | StackStatus::Deploying)) {
                let _ = self.stack_to(records, i, StackStatus::Failed, Some("the deployment failed"));
            }
        }
        if !involves_release {
            // Hosts were never touched: drop any partial release.
            outcome = Some(self.fail_and_return(dep.id, verification, live, reason.clone()));
        }
        let already_back = self
            .store
            .deployment(dep.id)
            .ok()
            .flatten()
            .is_some_and(|d| d.status() == DeploymentStatus::RolledBack);
        if rolled_any && !already_back {
            let now = self.clock().now();
            let rb = format!("automatic rollback: {reason}");
            let r = self.store.update_deployment(dep.id, &mut |d: &mut Deployment| {
                d.roll_back(rb.clone(), now).map_err(model_err)?;
                Ok(vec![
                    self.event(
                        d,
                        EventKind::DeploymentTransition,
                        Level::Warn,
                        format!("deployment {}: failed → rolled_back", d.id),
                    )
                    .data(json!({ "from": "failed", "to": "rolled_back", "reason": rb })),
                    self.event(
                        d,
                        EventKind::RollbackCompleted,
                        Level::Info,
                        format!("rolled back the stacks of {}", d.id),
                    ),
                ])
            });
            if let Err(e) = r {
                return e.into();
            }
            return DeployError::Failed {
                deployment: dep.id,
                reason,
                rolled_back: true,
            };
        }
        outcome.unwrap_or(DeployError::Failed {
            deployment: dep.id,
            reason,
            rolled_back: already_back,
        })
    }

    /// Records the deployment as failed with `reason` (once).
    fn mark_failed(&self, id: DeploymentId, reason: &str) -> Result<(), DeployError> {
        let now = self.clock().now();
        self.store.update_deployment(id, &mut |d: &mut Deployment| {
            let from = d.status();
            if from == DeploymentStatus::Failed {
                return Ok(Vec::new());
            }
            d.fail(reason.to_owned(), now).map_err(model_err)?;
            Ok(vec![
                self.event(
                    d,
                    EventKind::DeploymentTransition,
                    Level::Error,
                    format!("deployment {}: {from} → failed", d.id),
                )
                .data(json!({ "from": from.as_str(), "to": "failed", "reason": reason })),
                self.event(
                    d,
                    EventKind::DeploymentFailure,
                    Level::Error,
                    format!("deployment {} failed: {reason}", d.id),
                ),
            ])
        })?;
        // The reason is said once: by the error this failure ends with.
        self.progress.step(None, &format!("deployment {id} failed"));
        Ok(())
    }

    /// Ship, env file, switch, restart, boot check — one host.
    fn take_release(
        &self,
        dep: &Deployment,
        verification: &Mutex<Verification>,
        plan: HostPlan,
        env_text: &str,
    ) -> Result<Live, Box<HostFailure>> {
        let host = plan.name.clone();
        let mut session = match self.connector.connect(&plan) {
            Ok(s) => s,
            Err(e) => {
                return Err(Box::new(HostFailure {
                    plan,
                    session: None,
                    why: e.to_string(),
                }));
            }
        };
        let release = dep.id.to_string();
        let started = self.clock().now();
        let index = {
            let mut v = verification.lock().unwrap_or_else(|p| p.into_inner());
            v.hosts.push(HostResult::new(host.clone(), started));
            v.hosts.len() - 1
        };
        let record = |f: &mut dyn FnMut(&mut HostResult)| -> Result<(), DeployError> {
            let mut v = verification.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(h) = v.hosts.get_mut(index) {
                f(h);
            }
            self.store.put_verification(&v, Vec::new())?;
            Ok(())
        };
        let env_name = self.env_name(dep);
        let phase = |name: &str, since: Timestamp| -> Result<(), String> {
            let ms = u64::try_from(self.clock().now().since(since).as_millis()).unwrap_or(u64::MAX);
            record(&mut |h| {
                h.phases_ms.insert(name.to_owned(), ms);
            })
            .map_err(|e| e.to_string())
        };
        let r = (|| -> Result<(), String> {
            let t = self.clock().now();
            let target = match &self.switch_to {
                Some(existing) => {
                    // Still on the host: nothing crosses the wire.
                    self.step(
                        dep,
                        Some(&host),
                        format!("release {existing} is still on the host: 0 bytes sent, switching back to it"),
                        json!(crate::host::ShipStats::default()),
                    )
                    .map_err(|e| e.to_string())?;
                    existing.clone()
                }
                None => {
                    let stats = session
                        .ship(&release, &self.release.archive, &self.release.sha256)
                        .map_err(|e| e.to_string())?;
                    record(&mut |h| h.bytes_sent = stats.bytes_sent).map_err(|e| e.to_string())?;
                    self.step(
                        dep,
                        Some(&host),
                        format!(
                            "shipped: {} bytes sent, {} files linked, {} deltas, {} whole",
                            stats.bytes_sent, stats.files_linked, stats.files_delta, stats.files_full
                        ),
                        json!(stats),
                    )
                    .map_err(|e| e.to_string())?;
                    release.clone()
                }
            };
            phase("ship", t)?;
            failpoint("after-ship");
            let t = self.clock().now();
            if self.env_from_host.is_none() {
                session.write_env(&release, env_text).map_err(|e| e.to_string())?;
            }
            self.run_hooks(dep, &mut *session, &plan, &target, &env_name, "before_switch")?;
            let before = session.switch(&target).map_err(|e| e.to_string())?;
            let at = self.clock().now();
            record(&mut |h| {
                h.release_before.clone_from(&before);
                h.switched_at = Some(at);
            })
            .map_err(|e| e.to_string())?;
            self.step(
                dep,
                Some(&host),
                format!("switched current to {target}"),
                json!({ "before": before, "release": target }),
            )
            .map_err(|e| e.to_string())?;
            phase("switch", t)?;
            failpoint("after-switch");
            let t = self.clock().now();
            let spec = self.spec_for(&plan, &env_name);
            let status = session.service(ServiceOp::Restart, &spec).map_err(|e| e.to_string())?;
            record(&mut |h| h.restart_baseline = Some(status.starts)).map_err(|e| e.to_string())?;
            phase("restart", t)?;
            self.step(
                dep,
                Some(&host),
                format!(
                    "restarted the service (pid {})",
                    status.pid.map_or("?".into(), |p| p.to_string())
                ),
                json!(status),
            )
            .map_err(|e| e.to_string())?;
            failpoint("after-restart");
            let t = self.clock().now();
            let booted = self.boot_check(dep, &mut *session, &plan, &spec, &record, status.starts);
            phase("boot", t)?;
            booted?;
            self.run_hooks(dep, &mut *session, &plan, &target, &env_name, "after_switch")
        })();
        match r {
            Ok(()) => Ok(Live { plan, session }),
            Err(why) => {
                let excerpt = self.excerpt(&mut *session, &plan, &env_name);
                let _ = record(&mut |h| {
                    h.result = Some(CheckResult::Fail);
                    h.completed_at = Some(self.clock().now());
                    h.log_excerpt.clone_from(&excerpt);
                });
                Err(Box::new(HostFailure {
                    plan,
                    session: Some(session),
                    why,
                }))
            }
        }
    }

    /// Runs the `which` hooks in `release` on one host, in order; the first
    /// that fails (or runs past the timeout) is the host's failure, with its
    /// last output lines, masked.
    fn run_hooks(
        &self,
        dep: &Deployment,
        session: &mut dyn HostSession,
        plan: &HostPlan,
        release: &str,
        env_name: &str,
        which: &str,
    ) -> Result<(), String> {
        if self.kind == DeploymentKind::Rollback {
            return Ok(());
        }
        let hooks = match which {
            "before_switch" => &self.hooks.before_switch,
            _ => &self.hooks.after_switch,
        };
        for cmd in hooks {
            let r = session
                .run(release, Some(env_name), cmd, plan.port, self.hooks.timeout)
                .map_err(|e| e.to_string())?;
            let shown = self.masker.mask(cmd);
            let how = if r.timed_out {
                format!(
                    "ran past {} and was killed",
                    rollway_model::time::format_duration(self.hooks.timeout)
                )
            } else {
                format!("exited {}", r.code.map_or("by a signal".into(), |c| c.to_string()))
            };
            self.step(
                dep,
                Some(&plan.name),
                format!("{which} hook `{shown}` {how}"),
                json!({ "hook": which, "command": shown, "code": r.code, "timed_out": r.timed_out }),
            )
            .map_err(|e| e.to_string())?;
            if !r.success() {
                let output = self.masker.mask(&r.output);
                let tail: Vec<&str> = output.lines().rev().take(10).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                return Err(format!(
                    "{which} hook `{shown}` {how}{}{}",
                    if tail.is_empty() { "" } else { "; its last output:\n" },
                    tail.join("\n")
                ));
            }
        }
        Ok(())
    }

    /// The name of this deployment's env file on the hosts (`ROOT/envs/<name>.env`).
    fn env_name(&self, dep: &Deployment) -> String {
        self.env_from_host.clone().unwrap_or_else(|| dep.id.to_string())
    }

    fn spec_for(&self, plan: &HostPlan, release: &str) -> ServiceSpec {
        let mut spec = self.service.clone();
        spec.root = plan.root.clone().into();
        spec.port = plan.port;
        spec.env_file = std::path::Path::new(&plan.root)
            .join("envs")
            .join(format!("{release}.env"));
        spec
    }

    fn excerpt(&self, session: &mut dyn HostSession, plan: &HostPlan, release: &str) -> Option<String> {
        let spec = self.spec_for(plan, release);
        session
            .log_tail(&spec, 20)
            .ok()
            .map(|lines| self.masker.mask(&lines.join("\n")))
    }

    /// Up to `retries` probes spaced by `interval`. A pass needs the
    /// expected status from a port held by the service's own process tree;
    /// a port held by anyone else, or any start beyond `baseline` (the
    /// count right after Rollway's restart), fails at once. The start count
    /// is watched every [`BOOT_WATCH`] between attempts.
    fn boot_check(
        &self,
        dep: &Deployment,
        session: &mut dyn HostSession,
        plan: &HostPlan,
        spec: &ServiceSpec,
        record: &Record<'_>,
        baseline: u64,
    ) -> Result<(), String> {
        let retries = self.health.retries.max(1);
        let mut last = String::new();
        for attempt in 1..=retries {
            let c = session
                .check(spec, Some((&self.health.path, self.health.timeout)))
                .map_err(|e| e.to_string())?;
            self.boot_guard(session, plan, spec, record, baseline, &c)?;
            let Some(p) = &c.probe else {
                return Err(format!("{}: the host answered a boot check without a probe", plan.name));
            };
            record(&mut |h| {
                h.http_status = p.status;
                h.latency_ms = Some(p.latency_ms);
            })
            .map_err(|e| e.to_string())?;
            match (&c.owner, p.status == Some(self.health.expect_status)) {
                (PortOwner::Service { pid }, true) => {
                    self.step(
                        dep,
                        Some(&plan.name),
                        format!(
                            "boot check passed on attempt {attempt} ({} in {} ms from pid {pid})",
                            self.health.expect_status, p.latency_ms
                        ),
                        json!({ "attempt": attempt, "status": p.status, "latency_ms": p.latency_ms, "pid": pid }),
                    )
                    .map_err(|e| e.to_string())?;
                    return Ok(());
                }
                // Answered, yet no socket of the service listens: whoever
                // answered is gone (or was never the service); not a pass.
                (_, true) => {
                    last = format!(
                        "{} answered, but the service holds no socket on port {}",
                        self.health.expect_status, plan.port
                    );
                }
                (_, false) => last = describe(p),
            }
            if attempt < retries {
                self.boot_pause(session, plan, spec, record, baseline)?;
            }
        }
        let why = format!(
            "boot check failed on {} after {retries} attempt{} (last: {last}; expected {})",
            plan.name,
            if retries == 1 { "" } else { "s" },
            self.health.expect_status
        );
        Err(self.with_output(session, spec, why))
    }

    /// Waits `interval`, looking at the start count and the port's owner
    /// every [`BOOT_WATCH`].
    fn boot_pause(
        &self,
        session: &mut dyn HostSession,
        plan: &HostPlan,
        spec: &ServiceSpec,
        record: &Record<'_>,
        baseline: u64,
    ) -> Result<(), String> {
        let end = self.clock().now().plus(self.health.interval);
        loop {
            let now = self.clock().now();
            if now >= end {
                return Ok(());
            }
            self.clock().sleep(BOOT_WATCH.min(end.since(now)));
            let c = session.check(spec, None).map_err(|e| e.to_string())?;
            self.boot_guard(session, plan, spec, record, baseline, &c)?;
        }
    }

    /// Fails the boot check at once on a foreign port owner or a restart.
    fn boot_guard(
        &self,
        session: &mut dyn HostSession,
        plan: &HostPlan,
        spec: &ServiceSpec,
        record: &Record<'_>,
        baseline: u64,
        c: &ServiceCheck,
    ) -> Result<(), String> {
        // A foreign owner first: it is the cause when the new service
        // also crash-loops (it cannot bind the port).
        if let PortOwner::Other { pid, command } = &c.owner {
            let why = format!(
                "boot check failed on {}: port {} is held by {}, not by the service rollway just started; stop that process or give this environment another port, then deploy again",
                plan.name,
                plan.port,
                PortOwner::describe_other(*pid, command)
            );
            return Err(self.with_output(session, spec, self.masker.mask(&why)));
        }
        let restarts = c.starts.saturating_sub(baseline);
        if restarts > 0 {
            record(&mut |h| h.restarts_observed = restarts).map_err(|e| e.to_string())?;
            let why = format!(
                "boot check failed on {}: the service restarted {restarts} time{} before it answered (starts {baseline} → {}); it is crashing",
                plan.name,
                if restarts == 1 { "" } else { "s" },
                c.starts
            );
            return Err(self.with_output(session, spec, why));
        }
        Ok(())
    }

    /// `why` with the service's last output lines, masked.
    fn with_output(&self, session: &mut dyn HostSession, spec: &ServiceSpec, why: String) -> String {
        match session.log_tail(spec, BOOT_OUTPUT_LINES) {
            Ok(lines) if !lines.is_empty() => {
                let shown: Vec<String> = lines.iter().map(|l| format!("  {}", self.masker.mask(l))).collect();
                format!("{why}; its last output:\n{}", shown.join("\n"))
            }
            _ => why,
        }
    }

    /// Probes every live host each interval for `period`.
    fn watch(
        &self,
        dep: &Deployment,
        verification: &Mutex<Verification>,
        live: &mut [Live],
        period: Duration,
    ) -> Result<(), String> {
        let baselines: BTreeMap<String, u64> = {
            let v = verification.lock().unwrap_or_else(|p| p.into_inner());
            v.hosts
                .iter()
                .map(|h| (h.host.clone(), h.restart_baseline.unwrap_or(0)))
                .collect()
        };
        let mut window = Window::new(self.health.window_failures, baselines);
        let started = self.clock().now();
        let end = started.plus(period);
        let mut failed_host = None;
        // The last probe of each host, so a host that failed in the window
        // shows the probe that failed it, not its boot probe.
        let mut last_probe: BTreeMap<String, (Option<u16>, u64)> = BTreeMap::new();
        let env_name = self.env_name(dep);
        let result = 'watch: loop {
            for l in live.iter_mut() {
                let spec = self.spec_for(&l.plan, &env_name);
                let p = match l.session.probe(l.plan.port, &self.health.path, self.health.timeout) {
                    Ok(p) => p,
                    Err(e) => break 'watch Err(e.to_string()),
                };
                last_probe.insert(l.plan.name.clone(), (p.status, p.latency_ms));
                let st = match l.session.service_status(&spec) {
                    Ok(st) => st,
                    Err(e) => break 'watch Err(e.to_string()),
                };
                let o = Observation {
                    host: l.plan.name.clone(),
                    healthy: p.status == Some(self.health.expect_status),
                    detail: describe(&p),
                    starts: st.starts,
                };
                if let Err(f) = window.observe(&o) {
                    failed_host = Some(f.host().to_owned());
                    break 'watch Err(f.to_string());
                }
            }
            let now = self.clock().now();
            if now >= end {
                break Ok(());
            }
            if self.interrupted.load(Ordering::SeqCst) {
                break Err(WINDOW_INTERRUPTED.into());
            }
            self.progress.countdown(end.since(now));
            self.clock().sleep(self.health.interval.min(end.since(now)));
        };
        let mut v = verification.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.clock().now();
        let window_ms = u64::try_from(now.since(started).as_millis()).unwrap_or(u64::MAX);
        for h in &mut v.hosts {
            h.restarts_observed = window.restarts.get(&h.host).copied().unwrap_or(0);
            if let Some((status, latency)) = last_probe.get(&h.host) {
                h.http_status = *status;
                h.latency_ms = Some(*latency);
                *h.phases_ms.entry("window".to_owned()).or_insert(0) += window_ms;
            }
            if failed_host.as_deref() == Some(h.host.as_str()) {
                h.result = Some(CheckResult::Fail);
                h.completed_at = Some(now);
            }
        }
        if failed_host.is_some() {
            v.result = Some(CheckResult::Fail);
        }
        let _ = self.store.put_verification(&v, Vec::new());
        drop(v);
        let _ = dep;
        result
    }

    fn finish(
        &self,
        id: DeploymentId,
        verification: &Mutex<Verification>,
        live: &mut [Live],
    ) -> Result<Outcome, DeployError> {
        {
            let mut v = verification.lock().unwrap_or_else(|p| p.into_inner());
            let now = self.clock().now();
            for h in &mut v.hosts {
                h.result = Some(CheckResult::Pass);
                h.completed_at = Some(now);
            }
            v.result = Some(CheckResult::Pass);
            self.store.put_verification(&v, Vec::new())?;
        }
        failpoint("before-success");
        let dep = self.advance(id, DeploymentStatus::Succeeded)?;
        self.activate_environment(&dep);
        if let Some((old, reason)) = &self.supersedes {
            let now = self.clock().now();
            self.store.update_deployment(*old, &mut |d: &mut Deployment| {
                let from = d.status();
                d.rollback_to = self.rollback_to.or(Some(id));
                d.roll_back(reason.clone(), now).map_err(model_err)?;
                Ok(vec![
                    self.event(
                        d,
                        EventKind::DeploymentTransition,
                        Level::Warn,
                        format!("deployment {}: {from} → rolled_back", d.id),
                    )
                    .data(json!({ "from": from.as_str(), "to": "rolled_back", "reason": reason, "superseded_by": id })),
                    self.event(
                        d,
                        EventKind::RollbackCompleted,
                        Level::Info,
                        format!("rolled back {} by deployment {id}", d.id),
                    ),
                ])
            })?;
        }
        let dep = self
            .store
            .update_deployment(id, &mut |d: &mut Deployment| {
                d.rollback_target = true;
                Ok(Vec::new())
            })
            .unwrap_or(dep);
        // Keep N releases; never the current one or the rollback target
        // (the newest earlier succeeded deployment still on the hosts).
        let protect: Vec<String> = self
            .store
            .deployments(Some(&self.environment), 50)?
            .into_iter()
            .filter(|d| d.id != id && d.rollback_target && d.status() == DeploymentStatus::Succeeded)
            .take(1)
            // A rollback that switched back has no directory of its own: it
            // runs in the directory of the release it returned to.
            .flat_map(|d| {
                let back = (d.kind == DeploymentKind::Rollback).then_some(d.rollback_to).flatten();
                std::iter::once(d.id.to_string()).chain(back.map(|b| b.to_string()))
            })
            .collect();
        for l in live.iter_mut() {
            if let Ok(removed) = l.session.prune(self.keep_releases, &protect)
                && !removed.is_empty()
            {
                // Gone from the hosts: no longer something to return to.
                for r in &removed {
                    if let Ok(rid) = r.parse::<DeploymentId>() {
                        let _ = self.store.update_deployment(rid, &mut |d: &mut Deployment| {
                            d.rollback_target = false;
                            Ok(Vec::new())
                        });
                    }
                }
                {
                    let _ = self.step(
                        &dep,
                        Some(&l.plan.name),
                        format!("pruned {} old release(s)", removed.len()),
                        json!({ "removed": removed }),
                    );
                }
            }
        }
        Ok(Outcome::Succeeded(Box::new(dep)))
    }

    /// Seed 001's lifecycle: the first successful deployment of a created
    /// environment activates it (an `environment-transition` event) and
    /// says so. A failure here does not undo the deployment; it is reported.
    fn activate_environment(&self, dep: &Deployment) {
        let created = self
            .store
            .environment(&self.environment)
            .ok()
            .flatten()
            .is_some_and(|e| e.status() == EnvironmentStatus::Created);
        if !created {
            return;
        }
        match self
            .store
            .transition_environment(&self.environment, EnvironmentStatus::Active, &self.operator)
        {
            Ok(_) => {
                let _ = self.step(
                    dep,
                    None,
                    format!(
                        "environment {} activated (created → active) by its first successful deployment",
                        self.environment
                    ),
                    json!({ "environment": self.environment, "from": "created", "to": "active" }),
                );
            }
            Err(e) => self.progress.step(
                None,
                &format!(
                    "environment {} stays created: activating it failed ({e}); run `rollway env activate {}`",
                    self.environment, self.environment
                ),
            ),
        }
    }

    /// Ctrl-C: before any host switched the deployment is cancelled and partial
    /// releases removed; after, it fails and returns the hosts.
    fn cancel_or_fail(
        &self,
        dep: &Deployment,
        verification: &Mutex<Verification>,
        live: &mut [Live],
        why: &str,
    ) -> DeployError {
        let switched = verification
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .hosts
            .iter()
            .any(|h| h.switched_at.is_some());
        if switched {
            return self.fail_and_return(dep.id, verification, live, why.to_owned());
        }
        for l in live.iter_mut() {
            let _ = l.session.remove_release(&dep.id.to_string());
        }
        match self.advance(dep.id, DeploymentStatus::Cancelled) {
            Ok(_) => DeployError::Cancelled { deployment: dep.id },
            Err(e) => e,
        }
    }

    /// Fails the deployment with `reason`, returns every switched host to its
    /// previous release, and marks it rolled back (or says why not).
    fn fail_and_return(
        &self,
        id: DeploymentId,
        verification: &Mutex<Verification>,
        live: &mut [Live],
        reason: String,
    ) -> DeployError {
        let reason = self.masker.mask(&reason);
        super::recover::fail_and_return(
            self.store,
            &self.environment,
            &self.operator,
            id,
            verification,
            live.iter_mut().map(|l| (&l.plan, &mut l.session)),
            &self.service,
            &self.masker,
            self.progress,
            &self.health,
            reason,
        )
    }
}

fn describe(p: &crate::probe::ProbeResult) -> String {
    match (p.status, &p.error) {
        (Some(s), _) => format!("HTTP {s} in {} ms", p.latency_ms),
        (None, Some(e)) => e.clone(),
        (None, None) => "no answer".to_owned(),
    }
}

pub(crate) fn model_err(e: rollway_model::entities::StatusChangeError) -> StoreError {
    match e.transition {
        Some(t) => StoreError::Transition(*t),
        None => StoreError::Corrupt {
            what: "deployment",
            id: e.id.to_string(),
            detail: e
                .violations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        },
    }
}

#[allow(dead_code)]
fn _assert_send(_: &Timestamp) {}
