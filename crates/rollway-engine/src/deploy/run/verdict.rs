//! The verdict: the stability window (watched here, or left to `rollway
//! verify` when detached), then success — the verification passes, the
//! environment activates on its first success, a superseded deployment
//! becomes rolled_back, and old releases are pruned.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rollway_model::{
    CheckResult, Deployment, DeploymentId, DeploymentKind, DeploymentStatus, EnvironmentStatus, EventKind, Level,
    Timestamp,
};
use serde_json::json;

use super::{Live, Outcome, Run, WINDOW_INTERRUPTED, describe};
use crate::deploy::DeployError;
use crate::deploy::context::model_err;
use crate::deploy::failpoint::failpoint;
use crate::deploy::stacks::StackSpec;
use crate::deploy::window::{Observation, Window};

impl Run<'_, '_> {
    /// Watches the stability window of the release stack (or detaches), then
    /// succeeds; a failure in the window fails the deployment and rolls back.
    pub(super) fn verdict(self) -> Result<Outcome, DeployError> {
        let Some(release) = self.specs.iter().position(StackSpec::is_release) else {
            // No release stack: nothing runs on hosts, so no window to watch.
            self.step(
                None,
                "no release stack: the health checks pass through".into(),
                json!({}),
            )?;
            return self.finish();
        };
        let health = &self.job.health;
        let ends = self.clock().now().plus(health.stability_window);
        {
            let mut v = self.verification();
            v.window_ends_at = Some(ends);
            self.job.store.put_verification(&v, Vec::new())?;
        }
        if self.job.detach {
            return self.detach_at(ends, "--detach");
        }
        if let Err(reason) = self.watch(health.stability_window) {
            // Ctrl-C (or SIGTERM, SIGHUP) during the window: the CLI
            // detaches and the window is left to `rollway verify`.
            if reason == WINDOW_INTERRUPTED {
                return self.detach_at(ends, "interrupted");
            }
            return Err(self.fail(&[(release, reason.clone())], reason));
        }
        self.finish()
    }

    /// `rollway verify`: connects to the hosts the deployment switched and
    /// watches the rest of its window (or a fresh one, `unwatched`).
    pub(super) fn resume_window(
        self,
        stored_end: Timestamp,
        end: Timestamp,
        unwatched: bool,
    ) -> Result<Outcome, DeployError> {
        let names: Vec<String> = self.verification().hosts.iter().map(|h| h.host.clone()).collect();
        for plan in self.job.hosts.iter().filter(|p| names.contains(&p.name)) {
            match self.job.connector.connect(plan) {
                Ok(session) => self.live().push(Live {
                    plan: plan.clone(),
                    session,
                }),
                Err(e) => return Err(self.fail_and_return(format!("{}: {e}", plan.name))),
            }
        }
        {
            // Watched again: no longer a window for `rollway serve` to take.
            let mut v = self.verification();
            v.detached_at = None;
            self.job.store.put_verification(&v, Vec::new())?;
        }
        if unwatched {
            self.step(
                None,
                format!(
                    "the window ended at {stored_end} with nobody watching: watching a fresh full window until {end} (restarts since the switch still count)"
                ),
                json!({ "window_ended_at": stored_end, "window_ends_at": end, "fresh_window": true }),
            )?;
        } else {
            self.step(
                None,
                format!("watching the stability window until {end}"),
                json!({ "window_ends_at": end }),
            )?;
        }
        if let Err(reason) = self.watch(end.since(self.clock().now())) {
            if reason == WINDOW_INTERRUPTED {
                return self.detach_at(end, "interrupted");
            }
            return Err(self.fail_and_return(reason));
        }
        self.finish()
    }

    /// Leaves the window to `rollway verify` (or `rollway serve`): the
    /// deployment stays `verifying` with its window end stored, and the lease
    /// is held until that end plus one lease, so nobody else deploys over an
    /// unwatched window.
    fn detach_at(&self, ends: Timestamp, why: &str) -> Result<Outcome, DeployError> {
        let store = self.job.store;
        {
            let mut v = self.verification();
            v.window_ends_at = Some(ends);
            v.detached_at = Some(self.clock().now());
            store.put_verification(&v, Vec::new())?;
        }
        let mut guard = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let until = ends.plus(self.job.lease);
        if let Ok(renewed) = store.renew_lock(&guard, until.since(self.clock().now())) {
            *guard = renewed;
        }
        drop(guard);
        self.step(
            None,
            format!(
                "{why}: detached; the window ends at {ends}: run `rollway verify {}`",
                self.job.environment
            ),
            json!({ "window_ends_at": ends }),
        )?;
        Ok(Outcome::Detached(Box::new(self.dep.clone())))
    }

    /// Probes every live host each interval for `period`.
    pub(super) fn watch(&self, period: Duration) -> Result<(), String> {
        let health = &self.job.health;
        let baselines: BTreeMap<String, u64> = self
            .verification()
            .hosts
            .iter()
            .map(|h| (h.host.clone(), h.restart_baseline.unwrap_or(0)))
            .collect();
        let mut window = Window::new(health.window_failures, baselines);
        let started = self.clock().now();
        let end = started.plus(period);
        let mut failed_host = None;
        // The last probe of each host, so a host that failed in the window
        // shows the probe that failed it, not its boot probe.
        let mut last_probe: BTreeMap<String, (Option<u16>, u64)> = BTreeMap::new();
        let env_name = self.env_name();
        let mut live = self.live();
        let result = 'watch: loop {
            for l in live.iter_mut() {
                let spec = self.spec_for(&l.plan, &env_name);
                let p = match l.session.probe(l.plan.port, &health.path, health.timeout) {
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
                    healthy: p.status == Some(health.expect_status),
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
            if self.job.interrupted.load(Ordering::SeqCst) {
                break Err(WINDOW_INTERRUPTED.into());
            }
            self.job.progress.countdown(end.since(now));
            self.clock().sleep(health.interval.min(end.since(now)));
        };
        drop(live);
        let mut v = self.verification();
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
        // Every window of the run counts (the canary's, then the full one).
        v.failed_probes += window.failed_probes;
        if failed_host.is_some() {
            v.result = Some(CheckResult::Fail);
        }
        let _ = self.job.store.put_verification(&v, Vec::new());
        result
    }

    /// The verification passes and the deployment succeeds; then the
    /// superseded deployment (a manual rollback) and old releases.
    fn finish(&self) -> Result<Outcome, DeployError> {
        let job = self.job;
        let store = job.store;
        let id = self.dep.id;
        {
            let mut v = self.verification();
            let now = self.clock().now();
            for h in &mut v.hosts {
                h.result = Some(CheckResult::Pass);
                h.completed_at = Some(now);
            }
            v.result = Some(CheckResult::Pass);
            store.put_verification(&v, Vec::new())?;
        }
        failpoint("before-success");
        let dep = self.advance(DeploymentStatus::Succeeded)?;
        self.activate_environment();
        if let Some((old, reason)) = &job.supersedes {
            let ctx = self.ctx();
            let now = self.clock().now();
            store.update_deployment(*old, &mut |d: &mut Deployment| {
                let from = d.status();
                d.rollback_to = job.rollback_to.or(Some(id));
                d.roll_back(reason.clone(), now).map_err(model_err)?;
                Ok(vec![
                    ctx.event(
                        d.id,
                        EventKind::DeploymentTransition,
                        Level::Warn,
                        format!("deployment {}: {from} → rolled_back", d.id),
                    )
                    .data(json!({ "from": from.as_str(), "to": "rolled_back", "reason": reason, "superseded_by": id })),
                    ctx.event(
                        d.id,
                        EventKind::RollbackCompleted,
                        Level::Info,
                        format!("rolled back {} by deployment {id}", d.id),
                    ),
                ])
            })?;
        }
        let dep = store
            .update_deployment(id, &mut |d: &mut Deployment| {
                d.rollback_target = true;
                Ok(Vec::new())
            })
            .unwrap_or(dep);
        self.prune(&dep)?;
        Ok(Outcome::Succeeded(Box::new(dep)))
    }

    /// Keeps `keep_releases` releases on each host; never the current one or
    /// the rollback target (the newest earlier succeeded deployment still on
    /// the hosts).
    fn prune(&self, dep: &Deployment) -> Result<(), DeployError> {
        let job = self.job;
        let protect: Vec<String> = job
            .store
            .deployments(Some(&job.environment), 50)?
            .into_iter()
            .filter(|d| d.id != dep.id && d.rollback_target && d.status() == DeploymentStatus::Succeeded)
            .take(1)
            // A rollback that switched back has no directory of its own: it
            // runs in the directory of the release it returned to.
            .flat_map(|d| {
                let back = (d.kind == DeploymentKind::Rollback).then_some(d.rollback_to).flatten();
                std::iter::once(d.id.to_string()).chain(back.map(|b| b.to_string()))
            })
            .collect();
        for l in self.live().iter_mut() {
            if let Ok(removed) = l.session.prune(job.keep_releases, &protect)
                && !removed.is_empty()
            {
                // Gone from the hosts: no longer something to return to.
                for r in &removed {
                    if let Ok(rid) = r.parse::<DeploymentId>() {
                        let _ = job.store.update_deployment(rid, &mut |d: &mut Deployment| {
                            d.rollback_target = false;
                            Ok(Vec::new())
                        });
                    }
                }
                let _ = self.step(
                    Some(&l.plan.name),
                    format!("pruned {} old release(s)", removed.len()),
                    json!({ "removed": removed }),
                );
            }
        }
        Ok(())
    }

    /// Seed 001's lifecycle: the first successful deployment of a created
    /// environment activates it (an `environment-transition` event) and
    /// says so. A failure here does not undo the deployment; it is reported.
    fn activate_environment(&self) {
        let job = self.job;
        let created = job
            .store
            .environment(&job.environment)
            .ok()
            .flatten()
            .is_some_and(|e| e.status() == EnvironmentStatus::Created);
        if !created {
            return;
        }
        match job
            .store
            .transition_environment(&job.environment, EnvironmentStatus::Active, &job.operator)
        {
            Ok(_) => {
                let _ = self.step(
                    None,
                    format!(
                        "environment {} activated (created → active) by its first successful deployment",
                        job.environment
                    ),
                    json!({ "environment": job.environment, "from": "created", "to": "active" }),
                );
            }
            Err(e) => job.progress.step(
                None,
                &format!(
                    "environment {} stays created: activating it failed ({e}); run `rollway env activate {}`",
                    job.environment, job.environment
                ),
            ),
        }
    }
}
