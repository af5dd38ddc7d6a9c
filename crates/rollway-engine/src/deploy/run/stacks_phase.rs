//! The stacks of a run: synthesize each in dependency order, deploy them
//! on an eager schedule (a stack starts once every stack it depends on is
//! deployed; the release stack ships to the hosts), then verify the
//! command stacks. Each command is a recorded step; a stack's report is
//! checked against its contract and stored.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use rollway_model::{Resource, ResourceStatus, Stack, StackStatus};
use serde_json::json;

use super::{Outputs, Run};
use crate::deploy::DeployError;
use crate::deploy::stacks::{self, StackSpec};

/// Stacks that failed (indexes into the specs), each with why.
type Failures = Vec<(usize, String)>;

impl Run<'_, '_> {
    /// `synth` and `validate` of every stack, in dependency order.
    pub(super) fn synthesize_all(&mut self) -> Result<(), DeployError> {
        let order = stacks::waves(&self.specs);
        for &i in order.iter().flatten() {
            self.stack_to(i, StackStatus::Synthesizing, None)?;
            if let Err(why) = self.synthesize(i) {
                let reason = format!("stack {}: {why}", self.specs[i].name);
                return Err(self.fail(&[(i, why)], reason));
            }
            self.stack_to(i, StackStatus::Synthesized, None)?;
        }
        Ok(())
    }

    /// Deploys every stack; on a failure or Ctrl-C the deployment fails (or
    /// is cancelled) and what it changed is rolled back.
    pub(super) fn deploy_all(&mut self) -> Result<(), DeployError> {
        let (deployed, mut failing) = self.schedule()?;
        self.deployed = deployed;
        let interrupted = self.job.interrupted.load(Ordering::SeqCst);
        if interrupted && self.deployed.iter().all(|&i| self.specs[i].is_release()) {
            // Ctrl-C with no command stack deployed: cancelled when no host
            // switched yet, else failed with the hosts returned.
            for i in 0..self.specs.len() {
                if !self.deployed.contains(&i) {
                    let _ = self.stack_to(i, StackStatus::Skipped, None);
                }
            }
            return Err(self.cancel_or_fail("interrupted (Ctrl-C)"));
        }
        if failing.is_empty() && self.deployed.len() < self.specs.len() && interrupted {
            failing.push((usize::MAX, "interrupted (Ctrl-C)".into()));
        }
        if failing.is_empty() {
            return Ok(());
        }
        let reason = failing
            .iter()
            .map(|(i, why)| match self.specs.get(*i) {
                Some(s) => format!("stack {}: {why}", s.name),
                None => why.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ");
        failing.retain(|(i, _)| *i < self.specs.len());
        Err(self.fail(&failing, reason))
    }

    /// The eager schedule: each stack starts as soon as every stack it
    /// depends on is deployed (the waves are what is recorded; the wall
    /// time follows the critical path). Returns the stacks deployed and
    /// those that failed, with why; none starts after a failure or Ctrl-C.
    fn schedule(&self) -> Result<(Vec<usize>, Failures), DeployError> {
        let specs = &self.specs;
        let mut deployed: Vec<usize> = Vec::new();
        let mut failing: Failures = Vec::new();
        let mut started: Vec<bool> = vec![false; specs.len()];
        let mut running = 0usize;
        std::thread::scope(|scope| -> Result<(), DeployError> {
            let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<(), String>)>();
            loop {
                if failing.is_empty() && !self.job.interrupted.load(Ordering::SeqCst) {
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
                        self.stack_to(i, StackStatus::Deploying, None)?;
                        let tx = tx.clone();
                        scope.spawn(move || {
                            let r = if specs[i].is_release() {
                                self.ship(&self.upstream_for(&specs[i]))
                            } else {
                                self.deploy_stack(i)
                            };
                            let _ = tx.send((i, r));
                        });
                    }
                }
                if running == 0 {
                    break;
                }
                let Ok((i, r)) = rx.recv() else {
                    break;
                };
                running -= 1;
                match r {
                    Ok(()) => {
                        self.stack_to(i, StackStatus::Deployed, None)?;
                        deployed.push(i);
                    }
                    Err(why) => failing.push((i, why)),
                }
            }
            Ok(())
        })?;
        Ok((deployed, failing))
    }

    /// `verify` of every deployed command stack.
    pub(super) fn verify_all(&mut self) -> Result<(), DeployError> {
        for i in self.deployed.clone() {
            if self.specs[i].is_release() {
                continue;
            }
            if let Err(why) = self.verify_stack(i) {
                let reason = format!("stack {}: {why}", self.specs[i].name);
                return Err(self.fail(&[(i, why)], reason));
            }
        }
        Ok(())
    }

    pub(super) fn stack_env(&self) -> Option<stacks::StackEnv> {
        let job = self.job;
        job.stack_dir.as_ref().map(|dir| stacks::StackEnv {
            dir: dir.clone(),
            vars: job.stack_vars.clone(),
            work: job.stack_work.join(self.dep.id.to_string()),
            deployment: self.dep.id.to_string(),
            environment: job.environment.clone(),
        })
    }

    /// Runs one command of a stack and records it as a step; `Err` carries
    /// why (the exit code and the last lines of output, masked).
    pub(super) fn stack_command(
        &self,
        spec: &StackSpec,
        phase: &str,
        command: &str,
        upstream: &Outputs,
        extra: &[(String, String)],
    ) -> Result<(), String> {
        let env = self
            .stack_env()
            .ok_or_else(|| "no project directory for stack commands".to_owned())?;
        let ran = env
            .run(&spec.name, phase, command, upstream, extra)
            .map_err(|e| format!("{phase} could not run: {e}"))?;
        let output = self.job.masker.mask(&stacks::tail(&ran.output, 20));
        let ok = ran.ok;
        let code = ran.code;
        let _ = self.step(
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

    fn synthesize(&self, i: usize) -> Result<(), String> {
        let spec = &self.specs[i];
        let none = BTreeMap::new();
        if let Some(cmd) = &spec.synth {
            self.stack_command(spec, "synth", cmd, &none, &[])?;
        }
        let Some(env) = self.stack_env() else {
            return Ok(());
        };
        let Some(template) = env.template(&spec.name)? else {
            return Ok(());
        };
        let id = self.records().get(i).map(|s| s.id);
        if let Some(id) = id {
            let path = template.display().to_string();
            let updated = self
                .job
                .store
                .update_stack(id, &mut |s: &mut Stack| {
                    s.template_path = Some(path.clone());
                    Ok(Vec::new())
                })
                .map_err(|e| e.to_string())?;
            if let Some(slot) = self.records().get_mut(i) {
                *slot = updated.clone();
            }
        }
        if let Some(cmd) = &spec.validate {
            let extra = [("ROLLWAY_TEMPLATE".to_owned(), template.display().to_string())];
            self.stack_command(spec, "validate", cmd, &none, &extra)?;
        }
        Ok(())
    }

    /// The outputs of the stacks upstream of `spec` deployed so far.
    fn upstream_for(&self, spec: &StackSpec) -> Outputs {
        let all = self.upstream.lock().unwrap_or_else(|p| p.into_inner());
        all.iter()
            .filter(|(k, _)| self.upstream_of(spec, k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// `deploy` of command stack `i` with its upstream outputs; checks and
    /// records what it reported.
    fn deploy_stack(&self, i: usize) -> Result<(), String> {
        let spec = &self.specs[i];
        let seen = self.upstream_for(spec);
        let cmd = spec.deploy.clone().unwrap_or_default();
        self.stack_command(spec, "deploy", &cmd, &seen, &[])?;
        let env = self
            .stack_env()
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
            && let Some(keep) = self.job.secret_outputs
        {
            let kept =
                keep(self.dep.id, &spec.name, &secrets).map_err(|e| format!("keeping the secret outputs: {e}"))?;
            let _ = self.step(
                None,
                format!("stack {}: secret outputs encrypted in {kept}", spec.name),
                json!({ "stack": spec.name, "keys": spec.secret_outputs, "file": kept }),
            );
        }
        let problems = self.record_report(i, &report)?;
        self.upstream
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(spec.name.clone(), report.outputs.clone());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Whether `other` is an ancestor of `spec` (its outputs reach it).
    fn upstream_of(&self, spec: &StackSpec, other: &str) -> bool {
        let specs = &self.job.stacks;
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

    /// Stores stack `i`'s outputs (secret ones masked) and its resources,
    /// and returns what breaks the stack's contract (seed 004), in the
    /// model's words: an output not reported, a resource without a required
    /// property or tag (recorded as failed, so what exists is not lost), a
    /// resource that failed.
    fn record_report(&self, i: usize, report: &stacks::StackReport) -> Result<Vec<String>, String> {
        let spec = &self.specs[i];
        let store = self.job.store;
        let Some(stack) = self.records().get(i).cloned() else {
            return Ok(Vec::new());
        };
        let mut problems = Vec::new();
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
        let mut reported = stack.clone();
        reported.outputs.clone_from(&outputs);
        reported.secret_outputs = spec
            .secret_outputs
            .iter()
            .filter(|k| report.outputs.contains_key(*k))
            .cloned()
            .collect();
        problems.extend(
            rollway_model::rules::stack::output_violations(&reported, &spec.outputs, &spec.secret_outputs)
                .into_iter()
                .map(|v| v.message),
        );
        let updated = store
            .update_stack(stack.id, &mut |s: &mut Stack| {
                s.outputs.clone_from(&outputs);
                Ok(Vec::new())
            })
            .map_err(|e| e.to_string())?;
        if let Some(slot) = self.records().get_mut(i) {
            *slot = updated.clone();
        }
        let known = store.resources(stack.id).map_err(|e| e.to_string())?;
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
            if let Some(mut to) = to
                && res.status() == ResourceStatus::Creating
            {
                if to == ResourceStatus::Available {
                    let mut available = res.clone();
                    available.transition(to, now).map_err(|e| e.to_string())?;
                    let broken = rollway_model::rules::resource::validate_in_stack(&available, &updated);
                    if !broken.is_empty() {
                        problems.extend(broken.into_iter().map(|v| v.message));
                        to = ResourceStatus::Failed;
                    }
                }
                res.transition(to, now).map_err(|e| e.to_string())?;
            }
            if r.status == "failed" {
                problems.push(format!("resource {} ({}) failed", r.logical_id, r.resource_type));
            }
            store.put_resource(&res, Vec::new()).map_err(|e| e.to_string())?;
        }
        Ok(problems)
    }

    /// `verify` of deployed command stack `i`; then no resource may still be creating.
    fn verify_stack(&self, i: usize) -> Result<(), String> {
        let spec = &self.specs[i];
        let seen = self.upstream.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(cmd) = &spec.verify {
            self.stack_command(spec, "verify", cmd, &seen, &[])?;
            if let Some(env) = self.stack_env() {
                let report = env.report(&spec.name)?;
                let problems = self.record_report(i, &report)?;
                if !problems.is_empty() {
                    return Err(problems.join("; "));
                }
            }
        }
        let Some(stack) = self.records().get(i).cloned() else {
            return Ok(());
        };
        let creating: Vec<String> = self
            .job
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
}
