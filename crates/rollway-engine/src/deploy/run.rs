//! One deployment from lock to verdict: take the lease, recover what an
//! earlier run left, check secrets, ship and switch host by host in waves,
//! restart, boot-check, watch the stability window, and return every host
//! that took the release to its previous one when anything fails.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rollway_model::{
    CheckResult, Clock, Deployment, DeploymentId, DeploymentKind, DeploymentStatus, EventKind, HostResult, Level, Lock,
    Masker, NewEvent, Timestamp, Verification,
};
use rollway_store::{LockRequest, Store, StoreError};
use serde_json::json;

use super::failpoint::failpoint;
use super::plan::waves;
use super::window::{Observation, Window};
use super::{DeployError, HostPlan, Progress, ReleaseSource};
use crate::host::{HostSession, ServiceOp};
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
    /// For a manual rollback: the deployment it supersedes and why; that one
    /// becomes rolled_back when this succeeds.
    pub supersedes: Option<(DeploymentId, String)>,
}

impl std::fmt::Debug for DeployJob<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployJob")
            .field("environment", &self.environment)
            .field("hosts", &self.hosts)
            .finish()
    }
}

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
        let env = self.environment.clone();
        let op = self.operator.clone();
        let dep = self.store.update_deployment(id, &mut |d: &mut Deployment| {
            let from = d.status();
            d.transition(to, now).map_err(model_err)?;
            let mut evs = vec![
                NewEvent::new(
                    EventKind::DeploymentTransition,
                    Level::Info,
                    format!("deployment {}: {from} → {to}", d.id),
                )
                .environment(env.clone())
                .deployment(d.id)
                .operator(op.clone())
                .data(json!({ "from": from.as_str(), "to": to.as_str() })),
            ];
            if to == DeploymentStatus::Succeeded {
                evs.push(
                    NewEvent::new(
                        EventKind::DeploymentSuccess,
                        Level::Info,
                        format!("deployment {} succeeded", d.id),
                    )
                    .environment(env.clone())
                    .deployment(d.id)
                    .operator(op.clone()),
                );
            }
            Ok(evs)
        })?;
        self.progress.step(None, &format!("deployment {}", dep.status()));
        Ok(dep)
    }

    /// Takes the environment's lease, waiting up to `lock_wait` for another
    /// holder; `StoreError::Locked` (exit 3) when it is still held.
    pub fn acquire(&self, reason: String, deployment: Option<DeploymentId>) -> Result<Lock, DeployError> {
        let deadline = self.clock().now().plus(self.lock_wait);
        loop {
            let req = LockRequest {
                name: Lock::env_name(&self.environment),
                owner: self.operator.clone(),
                reason: reason.clone(),
                deployment_id: deployment,
                lease: self.lease,
            };
            match self.store.acquire_lock(&req) {
                Err(StoreError::Locked(held)) if self.clock().now() < deadline => {
                    let _ = held;
                    self.clock().sleep(Duration::from_millis(200));
                }
                other => return Ok(other?),
            }
        }
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
    /// deployment (`rollway verify`); a window already over is failed as
    /// "window not observed" and rolled back.
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
        let Some(end) = verification
            .as_ref()
            .and_then(|v| v.window_ends_at)
            .filter(|&end| now < end)
        else {
            let r = self.recovery().run();
            let _ = self.store.release_lock(&lock);
            r?;
            return Err(DeployError::Failed {
                deployment: dep.id,
                reason: "window not observed: nobody watched the stability window to its end".into(),
                rolled_back: self
                    .store
                    .deployment(dep.id)?
                    .is_some_and(|d| d.status() == DeploymentStatus::RolledBack),
            });
        };
        let verification =
            Mutex::new(verification.unwrap_or_else(|| Verification::new(dep.id, self.health.path.clone(), now)));
        self.under_lease(lock, |_held| {
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
            self.step(
                &dep,
                None,
                format!("watching the stability window until {end}"),
                json!({ "window_ends_at": end }),
            )?;
            if let Err(reason) = self.watch(&dep, &verification, &mut live, end.since(self.clock().now())) {
                return Err(self.fail_and_return(dep.id, &verification, &mut live, reason));
            }
            self.finish(dep.id, &verification, &mut live)
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
        let step = (self.lease / 3).max(Duration::from_millis(50));
        let mut waited = Duration::ZERO;
        while !done.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
            waited += Duration::from_millis(50);
            if waited >= step {
                waited = Duration::ZERO;
                let mut guard = held.lock().unwrap_or_else(|p| p.into_inner());
                if let Ok(renewed) = self.store.renew_lock(&guard, self.lease) {
                    *guard = renewed;
                }
            }
        }
    }

    fn new_deployment(&self) -> Deployment {
        let now = self.clock().now();
        let mut dep = Deployment::new(self.kind, self.environment.clone(), self.operator.clone(), now);
        dep.artifact_id = Some(self.release.artifact_id);
        dep.version_tag.clone_from(&self.version_tag);
        dep.commit_sha.clone_from(&self.release.commit);
        dep.branch.clone_from(&self.release.branch);
        dep.dirty = self.release.dirty;
        dep.notes.clone_from(&self.notes);
        dep.rollback_to = self.rollback_to;
        let plan = waves(self.hosts.len(), self.health.canary, self.health.parallel);
        dep.waves = plan
            .iter()
            .map(|w| w.iter().map(|&i| self.hosts[i].name.clone()).collect())
            .collect();
        dep.stacks_order = vec!["release".to_owned()];
        dep
    }

    fn deploy(&self, mut dep: Deployment, held: &Mutex<Lock>) -> Result<Outcome, DeployError> {
        let plan = waves(self.hosts.len(), self.health.canary, self.health.parallel);
        let created = self.event(&dep, EventKind::DeploymentTransition, Level::Info, format!(
            "deployment {} of {} created by {}",
            dep.id, self.environment, self.operator
        ))
        .data(json!({ "to": "pending", "kind": self.kind.as_str(), "artifact": self.release.artifact_id.to_string() }));
        self.store.insert_deployment(&dep, vec![created])?;
        self.progress
            .step(None, &format!("deployment {} of {}", dep.id, self.environment));
        failpoint("after-create");
        // Nothing to build or synthesize here: both phases are passed through and recorded.
        dep = self.advance(dep.id, DeploymentStatus::Building)?;
        dep = self.advance(dep.id, DeploymentStatus::Synthesizing)?;
        dep = self.advance(dep.id, DeploymentStatus::Deploying)?;
        failpoint("after-deploying");

        let mut verification = Verification::new(dep.id, self.health.path.clone(), self.clock().now());
        verification.expect_status = self.health.expect_status;
        verification.stability_window_ms = u64::try_from(self.health.stability_window.as_millis()).unwrap_or(u64::MAX);
        let verification = Mutex::new(verification);
        let mut live: Vec<Live> = Vec::new();

        for (w, wave) in plan.iter().enumerate() {
            if self.interrupted.load(Ordering::SeqCst) {
                return Err(self.cancel_or_fail(&dep, &verification, &mut live, "interrupted (Ctrl-C)"));
            }
            let hosts: Vec<HostPlan> = wave.iter().map(|&i| self.hosts[i].clone()).collect();
            let results: Vec<Result<Live, Box<HostFailure>>> = std::thread::scope(|scope| {
                let handles: Vec<_> = hosts
                    .into_iter()
                    .map(|h| {
                        let dep = &dep;
                        let verification = &verification;
                        scope.spawn(move || self.take_release(dep, verification, h))
                    })
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
                return Err(self.fail_and_return(dep.id, &verification, &mut live, reason));
            }
            if w == 0 && self.health.canary > 0 && !self.health.canary_window.is_zero() && plan.len() > 1 {
                self.step(
                    &dep,
                    None,
                    format!("watching the canary wave for {:?}", self.health.canary_window),
                    json!({}),
                )?;
                if let Err(reason) = self.watch(&dep, &verification, &mut live, self.health.canary_window) {
                    return Err(self.fail_and_return(dep.id, &verification, &mut live, format!("canary: {reason}")));
                }
            }
        }
        failpoint("after-waves");
        dep = self.advance(dep.id, DeploymentStatus::Verifying)?;
        let ends = self.clock().now().plus(self.health.stability_window);
        {
            let mut v = verification.lock().unwrap_or_else(|p| p.into_inner());
            v.window_ends_at = Some(ends);
            self.store.put_verification(&v, Vec::new())?;
        }
        if self.detach {
            let mut guard = held.lock().unwrap_or_else(|p| p.into_inner());
            let until = self.clock().now().plus(self.health.stability_window).plus(self.lease);
            if let Ok(renewed) = self.store.renew_lock(&guard, until.since(self.clock().now())) {
                *guard = renewed;
            }
            self.step(
                &dep,
                None,
                format!(
                    "detached; the window ends at {ends}: run `rollway verify {}`",
                    self.environment
                ),
                json!({ "window_ends_at": ends }),
            )?;
            return Ok(Outcome::Detached(Box::new(dep)));
        }
        if let Err(reason) = self.watch(&dep, &verification, &mut live, self.health.stability_window) {
            return Err(self.fail_and_return(dep.id, &verification, &mut live, reason));
        }
        self.finish(dep.id, &verification, &mut live)
    }

    /// Ship, env file, switch, restart, boot check — one host.
    fn take_release(
        &self,
        dep: &Deployment,
        verification: &Mutex<Verification>,
        plan: HostPlan,
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
        let r = (|| -> Result<(), String> {
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
            failpoint("after-ship");
            session.write_env(&release, &self.env_text).map_err(|e| e.to_string())?;
            let before = session.switch(&release).map_err(|e| e.to_string())?;
            let at = self.clock().now();
            record(&mut |h| {
                h.release_before.clone_from(&before);
                h.switched_at = Some(at);
            })
            .map_err(|e| e.to_string())?;
            self.step(
                dep,
                Some(&host),
                format!("switched current to {release}"),
                json!({ "before": before }),
            )
            .map_err(|e| e.to_string())?;
            failpoint("after-switch");
            let spec = self.spec_for(&plan, &release);
            let status = session.service(ServiceOp::Restart, &spec).map_err(|e| e.to_string())?;
            record(&mut |h| h.restart_baseline = Some(status.starts)).map_err(|e| e.to_string())?;
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
            self.boot_check(dep, &mut *session, &plan, &spec, &record)
        })();
        match r {
            Ok(()) => Ok(Live { plan, session }),
            Err(why) => {
                let excerpt = self.excerpt(&mut *session, &plan, &release);
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

    fn boot_check(
        &self,
        dep: &Deployment,
        session: &mut dyn HostSession,
        plan: &HostPlan,
        _spec: &ServiceSpec,
        record: &Record<'_>,
    ) -> Result<(), String> {
        let mut last = String::new();
        for attempt in 1..=self.health.retries.max(1) {
            let p = session
                .probe(plan.port, &self.health.path, self.health.timeout)
                .map_err(|e| e.to_string())?;
            record(&mut |h| {
                h.http_status = p.status;
                h.latency_ms = Some(p.latency_ms);
            })
            .map_err(|e| e.to_string())?;
            if p.status == Some(self.health.expect_status) {
                self.step(
                    dep,
                    Some(&plan.name),
                    format!(
                        "boot check passed on attempt {attempt} ({} in {} ms)",
                        self.health.expect_status, p.latency_ms
                    ),
                    json!({ "attempt": attempt, "status": p.status, "latency_ms": p.latency_ms }),
                )
                .map_err(|e| e.to_string())?;
                return Ok(());
            }
            last = describe(&p);
            if attempt < self.health.retries {
                self.clock().sleep(self.health.interval);
            }
        }
        Err(format!(
            "boot check failed after {} attempt{} (last: {last}; expected {})",
            self.health.retries,
            if self.health.retries == 1 { "" } else { "s" },
            self.health.expect_status
        ))
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
        let end = self.clock().now().plus(period);
        let mut failed_host = None;
        let result = 'watch: loop {
            for l in live.iter_mut() {
                let spec = self.spec_for(&l.plan, &dep.id.to_string());
                let p = match l.session.probe(l.plan.port, &self.health.path, self.health.timeout) {
                    Ok(p) => p,
                    Err(e) => break 'watch Err(e.to_string()),
                };
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
                break Err("interrupted (Ctrl-C) during the window".into());
            }
            self.progress.countdown(end.since(now));
            self.clock().sleep(self.health.interval.min(end.since(now)));
        };
        let mut v = verification.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.clock().now();
        for h in &mut v.hosts {
            h.restarts_observed = window.restarts.get(&h.host).copied().unwrap_or(0);
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
        if let Some((old, reason)) = &self.supersedes {
            let now = self.clock().now();
            let env = self.environment.clone();
            let op = self.operator.clone();
            self.store.update_deployment(*old, &mut |d: &mut Deployment| {
                let from = d.status();
                d.rollback_to = self.rollback_to.or(Some(id));
                d.roll_back(reason.clone(), now).map_err(model_err)?;
                Ok(vec![
                    NewEvent::new(
                        EventKind::DeploymentTransition,
                        Level::Warn,
                        format!("deployment {}: {from} → rolled_back", d.id),
                    )
                    .environment(env.clone())
                    .deployment(d.id)
                    .operator(op.clone())
                    .data(json!({ "from": from.as_str(), "to": "rolled_back", "reason": reason, "superseded_by": id })),
                    NewEvent::new(
                        EventKind::RollbackCompleted,
                        Level::Info,
                        format!("rolled back {} by deployment {id}", d.id),
                    )
                    .environment(env.clone())
                    .deployment(d.id)
                    .operator(op.clone()),
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
        // Keep N releases; never the current one or the rollback target.
        let protect: Vec<String> = self
            .store
            .deployments(Some(&self.environment), 50)?
            .into_iter()
            .filter(|d| d.rollback_target)
            .map(|d| d.id.to_string())
            .collect();
        for l in live.iter_mut() {
            if let Ok(removed) = l.session.prune(self.keep_releases, &protect)
                && !removed.is_empty()
            {
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
