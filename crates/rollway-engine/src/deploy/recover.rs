//! Returning hosts to their previous release: after a failed deployment, and
//! for deployments an earlier run left in progress (a crash, a kill, a
//! detached window nobody watched to its end). Nothing stays live and
//! unverified.

use std::sync::Mutex;

use rollway_model::{DeploymentId, DeploymentStatus, EventKind, Level, Masker, StackStatus, Verification};
use rollway_store::Store;
use serde_json::json;

use super::context::{Context, model_err};
use super::stacks::{StackEnv, StackSpec};
use super::{Connector, DeployError, Health, HostPlan, Progress};
use crate::host::{HostSession, ServiceOp};
use crate::supervisor::ServiceSpec;

/// What recovery needs besides the store.
pub struct Recovery<'a> {
    pub store: &'a dyn Store,
    pub connector: &'a dyn Connector,
    pub progress: &'a dyn Progress,
    pub environment: String,
    pub operator: String,
    pub hosts: Vec<HostPlan>,
    pub service: ServiceSpec,
    pub masker: Masker,
    pub health: Health,
    /// `[stacks]` and where their commands run: the command stacks an
    /// interrupted deployment deployed are rolled back too.
    pub stacks: Vec<StackSpec>,
    pub stack_env: Option<StackEnv>,
}

impl std::fmt::Debug for Recovery<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recovery")
            .field("environment", &self.environment)
            .finish()
    }
}

impl Recovery<'_> {
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

    /// Fails and rolls back every deployment of the environment still in
    /// progress. The caller holds the environment's lease, so none of them
    /// has a live owner. Returns what was recovered.
    pub fn run(&self) -> Result<Vec<DeploymentId>, DeployError> {
        let mut done = Vec::new();
        for dep in self.store.active_deployments(Some(&self.environment))? {
            let verification = self.store.verifications(dep.id)?.into_iter().next();
            let now = self.store.clock().now();
            let reason = match (dep.status(), verification.as_ref().and_then(|v| v.window_ends_at)) {
                (DeploymentStatus::Verifying, Some(end)) if now >= end => {
                    "window not observed: nobody watched the stability window to its end".to_owned()
                }
                (status, _) => format!("interrupted while {status}: the process running it stopped (crash or kill)"),
            };
            self.progress
                .step(None, &format!("recovering deployment {}: {reason}", dep.id));
            let verification =
                Mutex::new(verification.unwrap_or_else(|| Verification::new(dep.id, self.health.path.clone(), now)));
            let names: Vec<String> = verification
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .hosts
                .iter()
                .map(|h| h.host.clone())
                .collect();
            let mut sessions: Vec<(HostPlan, Box<dyn HostSession>)> = Vec::new();
            for plan in self.hosts.iter().filter(|p| names.contains(&p.name)) {
                match self.connector.connect(plan) {
                    Ok(s) => sessions.push((plan.clone(), s)),
                    Err(e) => self.progress.step(Some(&plan.name), &format!("cannot reach it: {e}")),
                }
            }
            let ctx = self.context();
            let reason = self.masker.mask(&reason);
            ctx.mark_failed(dep.id, &reason)?;
            let hosts = ctx.return_hosts(dep.id, &verification, sessions.iter_mut().map(|(p, s)| (&*p, s)));
            let (stacks_rolled, stack_failures) = match &hosts {
                // Hosts still on the failed release: recovery stops here
                // (the error says to run `rollway rollback`).
                HostsBack::Failed { .. } => (false, Vec::new()),
                _ => self.roll_back_stacks(&dep)?,
            };
            match ctx.settle(dep.id, reason, hosts, stacks_rolled, &stack_failures) {
                DeployError::Failed { .. } => done.push(dep.id),
                other => return Err(other),
            }
        }
        Ok(done)
    }

    /// The stacks of an interrupted deployment: every command stack it had
    /// deployed (or was deploying) runs its `rollback`, in reverse order;
    /// those never started are skipped. A deployed stack whose rollback
    /// fails ends failed, not rolled_back. Returns whether a rollback ran
    /// and the failed ones ("stack NAME: why").
    fn roll_back_stacks(&self, dep: &rollway_model::Deployment) -> Result<(bool, Vec<String>), DeployError> {
        let records = self.store.stacks(dep.id)?;
        let order: Vec<&str> = dep.stacks_order.iter().map(String::as_str).collect();
        let mut rolled = false;
        let mut failures = Vec::new();
        let outputs: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> =
            records.iter().map(|s| (s.name.clone(), s.outputs.clone())).collect();
        for name in order.iter().rev() {
            let Some(st) = records.iter().find(|s| s.name == *name) else {
                continue;
            };
            let spec = self.stacks.iter().find(|s| s.name == st.name);
            let now = self.store.clock().now();
            let (mut to, run) = match st.status() {
                StackStatus::Deployed => (Some(StackStatus::RolledBack), true),
                StackStatus::Deploying | StackStatus::Synthesizing => (Some(StackStatus::Failed), true),
                StackStatus::Pending | StackStatus::Synthesized => (Some(StackStatus::Skipped), false),
                _ => (None, false),
            };
            let mut error = "interrupted: the process running it stopped".to_owned();
            if run
                && let (Some(spec), Some(env)) = (spec, &self.stack_env)
                && let Some(cmd) = spec.rollback.as_ref().filter(|_| !spec.is_release())
            {
                let mut env = env.clone();
                env.deployment = dep.id.to_string();
                let ran = env.run(&spec.name, "rollback", cmd, &outputs, &[]);
                let ok = ran.as_ref().is_ok_and(|r| r.ok);
                if ok {
                    rolled = true;
                } else {
                    let why = match &ran {
                        Ok(r) => format!(
                            "rollback exited {}",
                            r.code.map_or("by a signal".to_owned(), |c| c.to_string())
                        ),
                        Err(e) => format!("rollback could not run: {e}"),
                    };
                    failures.push(format!("stack {}: {why}", spec.name));
                    error = why;
                    to = Some(StackStatus::Failed);
                }
                let tail = ran
                    .map(|r| self.masker.mask(&super::stacks::tail(&r.output, 20)))
                    .unwrap_or_default();
                let _ = self.store.append_event(
                    self.context()
                        .event(
                            dep.id,
                            EventKind::DeployStep,
                            Level::Warn,
                            format!(
                                "recovery: stack {} rollback {}",
                                spec.name,
                                if ok { "done" } else { "failed" }
                            ),
                        )
                        .data(json!({ "stack": spec.name, "phase": "rollback", "output": tail })),
                );
            }
            if let Some(to) = to {
                let error = self.masker.mask(&error);
                let _ = self.store.update_stack(st.id, &mut |s| {
                    match to {
                        StackStatus::Failed => s.fail(error.clone(), now),
                        other => s.transition(other, now),
                    }
                    .map_err(model_err)?;
                    Ok(Vec::new())
                });
            }
        }
        Ok((rolled, failures))
    }
}

/// What returning the hosts of a failed deployment came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostsBack {
    /// No host had switched: the partial releases were removed.
    NoneSwitched,
    /// The first deployment of the environment: nothing to return to, its
    /// service was stopped.
    FirstDeploy,
    /// Every host that switched runs its previous release again.
    Returned { to: Option<String> },
    /// Some hosts could not be returned.
    Failed { hosts: Vec<String>, detail: String },
}

/// Returning hosts and the verdict on a failed deployment, shared by a
/// failing run and recovery.
impl Context<'_> {
    /// Fails deployment `id` with `reason`, returns every host that switched to
    /// its previous release (restart and boot check), removes the failed release
    /// where it was shipped, and marks the deployment rolled back — or says why
    /// it could not.
    pub(crate) fn fail_and_return<'s>(
        &self,
        id: DeploymentId,
        verification: &Mutex<Verification>,
        sessions: impl Iterator<Item = (&'s HostPlan, &'s mut Box<dyn HostSession>)>,
        reason: String,
    ) -> DeployError {
        let reason = self.masker.mask(&reason);
        if let Err(e) = self.mark_failed(id, &reason) {
            return e;
        }
        let hosts = self.return_hosts(id, verification, sessions);
        self.settle(id, reason, hosts, false, &[])
    }

    /// Returns every host that switched to deployment `id`'s release to its
    /// previous one (a first deployment's service is stopped instead) and
    /// removes the failed release where it was shipped. The deployment is
    /// failed already; its verdict is [`Context::settle`]'s.
    pub(crate) fn return_hosts<'s>(
        &self,
        id: DeploymentId,
        verification: &Mutex<Verification>,
        sessions: impl Iterator<Item = (&'s HostPlan, &'s mut Box<dyn HostSession>)>,
    ) -> HostsBack {
        let (store, env, progress) = (self.store, self.environment, self.progress);
        let release = id.to_string();
        let mut v = verification.lock().unwrap_or_else(|p| p.into_inner());
        let switched: Vec<(String, Option<String>)> = v
            .hosts
            .iter()
            .filter(|h| h.switched_at.is_some())
            .map(|h| (h.host.clone(), h.release_before.clone()))
            .collect();
        let mut sessions: Vec<(&HostPlan, &mut Box<dyn HostSession>)> = sessions.collect();
        if switched.is_empty() {
            for (_, s) in sessions.iter_mut() {
                let _ = s.remove_release(&release);
            }
            return HostsBack::NoneSwitched;
        }
        let _ = store.append_event(self.event(
            id,
            EventKind::RollbackInitiated,
            Level::Warn,
            format!(
                "returning {} to the previous release",
                switched.iter().map(|(h, _)| h.as_str()).collect::<Vec<_>>().join(", ")
            ),
        ));
        let mut problems = Vec::new();
        let mut returned_to: Option<String> = None;
        let mut first_deploy = true;
        for (host, before) in &switched {
            let Some((plan, session)) = sessions.iter_mut().find(|(p, _)| &p.name == host) else {
                problems.push((host.clone(), "not reachable".to_owned()));
                continue;
            };
            let result = match before {
                Some(prev) => {
                    first_deploy = false;
                    self.return_one(&mut ***session, plan, prev)
                        .map(|()| Some(prev.clone()))
                }
                None => {
                    // Nothing to return to: stop the service rather than leave
                    // an unverified release running.
                    let spec = self.spec_for(plan, &release);
                    session
                        .service(ServiceOp::Stop, &spec)
                        .map(|_| None)
                        .map_err(|e| e.to_string())
                }
            };
            match result {
                Ok(back) => {
                    if let Some(h) = v.hosts.iter_mut().find(|h| &h.host == host) {
                        h.returned_to.clone_from(&back);
                    }
                    if back.is_some() {
                        let _ = session.remove_release(&release);
                        progress.step(
                            Some(host),
                            &format!("returned to release {}", back.as_deref().unwrap_or("?")),
                        );
                    } else {
                        progress.step(
                            Some(host),
                            "stopped the service: there is no earlier release to return to",
                        );
                    }
                    returned_to = returned_to.or(back);
                }
                Err(e) => problems.push((host.clone(), e)),
            }
        }
        for (plan, s) in sessions.iter_mut() {
            if !switched.iter().any(|(h, _)| h == &plan.name) {
                let _ = s.remove_release(&release);
            }
        }
        let _ = store.put_verification(&v, Vec::new());
        drop(v);
        if !problems.is_empty() {
            let hosts: Vec<String> = problems.iter().map(|(h, _)| h.clone()).collect();
            let detail = problems
                .iter()
                .map(|(h, e)| format!("{h}: {e}"))
                .collect::<Vec<_>>()
                .join("; ");
            let _ = store.append_event(
                self.event(
                    id,
                    EventKind::RollbackCompleted,
                    Level::Error,
                    format!("rollback failed on {}", hosts.join(", ")),
                )
                .data(json!({ "hosts": hosts, "detail": detail })),
            );
            return HostsBack::Failed { hosts, detail };
        }
        if first_deploy {
            let _ = store.append_event(self.event(
                id,
                EventKind::RollbackCompleted,
                Level::Warn,
                format!("nothing to return to: deployment {id} was the first of {env}; its service was stopped"),
            ));
            return HostsBack::FirstDeploy;
        }
        HostsBack::Returned { to: returned_to }
    }

    /// The verdict on failed deployment `id` once every rollback was tried:
    /// rolled_back when the hosts went back (or were never touched) and some
    /// command stack rolled back, and no rollback failed; otherwise it stays
    /// failed, its rollback_reason saying why nothing was rolled back
    /// (seed 004: a failed deployment always carries one).
    /// `stack_failures`: the command stacks whose rollback failed, each
    /// "stack NAME: why".
    pub(crate) fn settle(
        &self,
        id: DeploymentId,
        reason: String,
        hosts: HostsBack,
        stacks_rolled: bool,
        stack_failures: &[String],
    ) -> DeployError {
        let env = self.environment;
        if let HostsBack::Failed { hosts, detail } = hosts {
            let detail = std::iter::once(detail)
                .chain(stack_failures.iter().cloned())
                .collect::<Vec<_>>()
                .join("; ");
            self.note_rollback_reason(
                id,
                &format!("automatic rollback failed on {}: {detail}", hosts.join(", ")),
            );
            return DeployError::RollbackFailed {
                deployment: id,
                reason,
                hosts,
                detail,
            };
        }
        if !stack_failures.is_empty() {
            let what = stack_failures.join("; ");
            let _ = self.store.append_event(
                self.event(
                    id,
                    EventKind::RollbackCompleted,
                    Level::Error,
                    format!("rollback failed: {what}"),
                )
                .data(json!({ "stacks": stack_failures })),
            );
            self.note_rollback_reason(id, &format!("automatic rollback failed: {what}"));
            return DeployError::Failed {
                deployment: id,
                reason: format!("{reason}; rolling back failed too ({what}), so it stays failed"),
                rolled_back: false,
            };
        }
        let rollback_reason = format!("automatic rollback: {reason}");
        let rolled = match &hosts {
            HostsBack::Returned { to } => {
                let completed = format!("returned to release {}", to.as_deref().unwrap_or("?"));
                let to: Option<DeploymentId> = to.as_deref().and_then(|r| r.parse().ok());
                Some(self.mark_rolled_back(id, &rollback_reason, to, Some(completed)))
            }
            _ if stacks_rolled => Some(self.mark_rolled_back(
                id,
                &rollback_reason,
                None,
                Some(format!("rolled back the stacks of {id}")),
            )),
            _ => None,
        };
        match rolled {
            Some(Err(e)) => return e,
            Some(Ok(())) => {
                if matches!(hosts, HostsBack::Returned { .. }) {
                    self.progress.step(None, "rolled back");
                }
                return DeployError::Failed {
                    deployment: id,
                    reason,
                    rolled_back: true,
                };
            }
            None => {}
        }
        if hosts == HostsBack::FirstDeploy {
            self.note_rollback_reason(
                id,
                &format!("first deployment of {env}: nothing to return to (its service was stopped)"),
            );
            return DeployError::Failed {
                deployment: id,
                reason: format!("{reason}; nothing to return to (the first deployment of {env}), so it stays failed"),
                rolled_back: false,
            };
        }
        self.note_rollback_reason(
            id,
            "nothing to roll back: no host had switched to this release and no stack rollback ran",
        );
        DeployError::Failed {
            deployment: id,
            reason,
            rolled_back: false,
        }
    }

    /// Records why failed deployment `id` was not rolled back (or why its
    /// rollback failed). Best effort: the deployment is failed either way,
    /// and the error that reports the failure says the same.
    fn note_rollback_reason(&self, id: DeploymentId, why: &str) {
        let why = self.masker.mask(why);
        let _ = self.store.update_deployment(id, &mut |d| {
            if d.status() == DeploymentStatus::Failed {
                d.rollback_reason = Some(why.clone());
            }
            Ok(Vec::new())
        });
    }

    /// Switches one host back to `prev`, restarts it with that release's env
    /// file and checks it answers.
    fn return_one(&self, session: &mut dyn HostSession, plan: &HostPlan, prev: &str) -> Result<(), String> {
        let health = self.health;
        session.switch(prev).map_err(|e| e.to_string())?;
        let spec = self.spec_for(plan, prev);
        session.service(ServiceOp::Restart, &spec).map_err(|e| e.to_string())?;
        let mut last = String::new();
        for _ in 0..health.retries.max(1) {
            let p = session
                .probe(plan.port, &health.path, health.timeout)
                .map_err(|e| e.to_string())?;
            if p.status == Some(health.expect_status) {
                return Ok(());
            }
            last = p
                .status
                .map_or_else(|| p.error.clone().unwrap_or_default(), |s| format!("HTTP {s}"));
            std::thread::sleep(health.interval);
        }
        Err(format!(
            "the previous release {prev} does not answer either (last: {last})"
        ))
    }
}
