//! The release stack: host waves (canary first), and on each host of a
//! wave the ship, the env file, the `before_switch` hooks, the switch of
//! `current`, the restart, the boot check and the `after_switch` hooks.

use std::sync::atomic::Ordering;

use rollway_model::{CheckResult, DeploymentKind, HostResult, Timestamp};
use serde_json::json;

use super::{HostFailure, Live, Outputs, Run};
use crate::deploy::failpoint::failpoint;
use crate::deploy::plan::waves;
use crate::deploy::{DeployError, HostPlan, stacks};
use crate::host::{HostSession, ServiceOp};

impl Run<'_, '_> {
    /// Ships the release to the hosts in waves; the hosts that took it (or
    /// failed to) join `live`, so a failure returns them.
    pub(super) fn ship(&self, upstream: &Outputs) -> Result<(), String> {
        let job = self.job;
        // The upstream stacks' outputs reach the service through its env file.
        let env_text = if upstream.is_empty() {
            job.env_text.clone()
        } else {
            let extra = rollway_secrets::render_env_file(&stacks::upstream_env(upstream));
            format!("{}{extra}", job.env_text)
        };
        if job.env_from_host.is_none()
            && let Some(keep) = job.keep_env
        {
            keep(self.dep.id, &env_text).map_err(|e| format!("keeping the env file on this machine: {e}"))?;
        }
        let env_text = env_text.as_str();
        let plan = waves(job.hosts.len(), job.health.canary, job.health.parallel);
        for (w, wave) in plan.iter().enumerate() {
            if job.interrupted.load(Ordering::SeqCst) {
                return Err("interrupted (Ctrl-C)".into());
            }
            let hosts: Vec<HostPlan> = wave.iter().map(|&i| job.hosts[i].clone()).collect();
            let results: Vec<Result<Live, Box<HostFailure>>> = std::thread::scope(|scope| {
                let handles: Vec<_> = hosts
                    .into_iter()
                    .map(|h| scope.spawn(move || self.take_release(h, env_text)))
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
            {
                let mut live = self.live();
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
            }
            if let Some(reason) = failure {
                return Err(reason);
            }
            if w == 0 && job.health.canary > 0 && !job.health.canary_window.is_zero() && plan.len() > 1 {
                self.step(
                    None,
                    format!("watching the canary wave for {:?}", job.health.canary_window),
                    json!({}),
                )
                .map_err(|e| e.to_string())?;
                self.watch(job.health.canary_window)
                    .map_err(|reason| format!("canary: {reason}"))?;
            }
        }
        Ok(())
    }

    /// Ship, env file, switch, restart, boot check — one host.
    fn take_release(&self, plan: HostPlan, env_text: &str) -> Result<Live, Box<HostFailure>> {
        let job = self.job;
        let host = plan.name.clone();
        let mut session = match job.connector.connect(&plan) {
            Ok(s) => s,
            Err(e) => {
                return Err(Box::new(HostFailure {
                    plan,
                    session: None,
                    why: step_error(e),
                }));
            }
        };
        let release = self.dep.id.to_string();
        let started = self.clock().now();
        let index = {
            let mut v = self.verification();
            v.hosts.push(HostResult::new(host.clone(), started));
            v.hosts.len() - 1
        };
        let record = |f: &mut dyn FnMut(&mut HostResult)| -> Result<(), DeployError> {
            let mut v = self.verification();
            if let Some(h) = v.hosts.get_mut(index) {
                f(h);
            }
            job.store.put_verification(&v, Vec::new())?;
            Ok(())
        };
        let env_name = self.env_name();
        let phase = |name: &str, since: Timestamp| -> Result<(), String> {
            let ms = u64::try_from(self.clock().now().since(since).as_millis()).unwrap_or(u64::MAX);
            record(&mut |h| {
                h.phases_ms.insert(name.to_owned(), ms);
            })
            .map_err(|e| e.to_string())
        };
        let r = (|| -> Result<(), String> {
            let t = self.clock().now();
            let target = match &job.switch_to {
                Some(existing) => {
                    // Still on the host: nothing crosses the wire.
                    self.step(
                        Some(&host),
                        format!("release {existing} is still on the host: 0 bytes sent, switching back to it"),
                        json!(crate::host::ShipStats::default()),
                    )
                    .map_err(|e| e.to_string())?;
                    existing.clone()
                }
                None => {
                    let stats = session
                        .ship(&release, &job.release.archive, &job.release.sha256)
                        .map_err(step_error)?;
                    record(&mut |h| h.bytes_sent = stats.bytes_sent).map_err(|e| e.to_string())?;
                    self.step(
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
            if job.env_from_host.is_none() {
                session.write_env(&release, env_text).map_err(step_error)?;
            }
            self.run_hooks(&mut *session, &plan, &target, &env_name, "before_switch")?;
            let before = session.switch(&target).map_err(step_error)?;
            let at = self.clock().now();
            record(&mut |h| {
                h.release_before.clone_from(&before);
                h.switched_at = Some(at);
            })
            .map_err(|e| e.to_string())?;
            self.step(
                Some(&host),
                format!("switched current to {target}"),
                json!({ "before": before, "release": target }),
            )
            .map_err(|e| e.to_string())?;
            phase("switch", t)?;
            failpoint("after-switch");
            let t = self.clock().now();
            let spec = self.spec_for(&plan, &env_name);
            let status = session.service(ServiceOp::Restart, &spec).map_err(step_error)?;
            record(&mut |h| h.restart_baseline = Some(status.starts)).map_err(|e| e.to_string())?;
            phase("restart", t)?;
            self.step(
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
            let booted = self.boot_check(&mut *session, &plan, &spec, &record, status.starts);
            phase("boot", t)?;
            booted?;
            self.run_hooks(&mut *session, &plan, &target, &env_name, "after_switch")
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
        session: &mut dyn HostSession,
        plan: &HostPlan,
        release: &str,
        env_name: &str,
        which: &str,
    ) -> Result<(), String> {
        let job = self.job;
        if job.kind == DeploymentKind::Rollback {
            return Ok(());
        }
        let hooks = match which {
            "before_switch" => &job.hooks.before_switch,
            _ => &job.hooks.after_switch,
        };
        for cmd in hooks {
            let r = session
                .run(release, Some(env_name), cmd, plan.port, job.hooks.timeout)
                .map_err(|e| e.to_string())?;
            let shown = job.masker.mask(cmd);
            let how = if r.timed_out {
                format!(
                    "ran past {} and was killed",
                    rollway_model::time::format_duration(job.hooks.timeout)
                )
            } else {
                format!("exited {}", r.code.map_or("by a signal".into(), |c| c.to_string()))
            };
            self.step(
                Some(&plan.name),
                format!("{which} hook `{shown}` {how}"),
                json!({ "hook": which, "command": shown, "code": r.code, "timed_out": r.timed_out }),
            )
            .map_err(|e| e.to_string())?;
            if !r.success() {
                let output = job.masker.mask(&r.output);
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

    /// The last lines of the service's output on a host that failed, masked.
    fn excerpt(&self, session: &mut dyn HostSession, plan: &HostPlan, env_name: &str) -> Option<String> {
        let spec = self.spec_for(plan, env_name);
        session
            .log_tail(&spec, 20)
            .ok()
            .map(|lines| self.job.masker.mask(&lines.join("\n")))
    }
}

/// A host's failure without its name: the deployment's reason puts the
/// host in front once (`local: ship: …`, not `local: local: ship: …`).
fn step_error(e: crate::host::HostError) -> String {
    format!("{}: {}", e.step, e.detail)
}
