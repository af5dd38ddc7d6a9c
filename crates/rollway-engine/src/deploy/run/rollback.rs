//! Failing a run: the deployment is failed first, then the failing stacks'
//! rollbacks run, then every deployed stack's in reverse order (the release
//! stack returns its hosts through `Context::fail_and_return`); stacks
//! never started are skipped. Ctrl-C before any host switched cancels.

use std::collections::BTreeMap;

use rollway_model::{DeploymentStatus, EventKind, Level, Stack, StackStatus};
use serde_json::json;

use super::Run;
use crate::deploy::DeployError;
use crate::deploy::recover::HostsBack;
use crate::deploy::stacks::StackSpec;

impl Run<'_, '_> {
    /// A failure anywhere: the deployment fails with `reason`; the `failing`
    /// stacks' own rollbacks run first, then every other deployed stack's
    /// in reverse order (the release stack returns its hosts); stacks never
    /// started are skipped. The deployment ends rolled_back when something
    /// was rolled back and no rollback failed; a command stack whose
    /// rollback fails ends failed, and so does the deployment, its
    /// rollback_reason naming the stack and how the command exited.
    pub(super) fn fail(&self, failing: &[(usize, String)], reason: String) -> DeployError {
        let ctx = self.ctx();
        let specs = &self.specs;
        let dep = &self.dep;
        let deployed: Vec<usize> = self
            .deployed
            .iter()
            .copied()
            .filter(|d| !failing.iter().any(|(i, _)| i == d))
            .collect();
        let reason = self.job.masker.mask(&reason);
        let involves_release = failing
            .iter()
            .map(|(i, _)| *i)
            .chain(deployed.iter().copied())
            .any(|i| specs.get(i).is_some_and(StackSpec::is_release));
        // The deployment is failed first, so every rollback below is a rollback of a failed deployment.
        if let Err(e) = ctx.mark_failed(dep.id, &reason) {
            return e;
        }
        let command_rollbacks = failing
            .iter()
            .map(|(i, _)| *i)
            .chain(deployed.iter().copied())
            .any(|i| specs.get(i).is_some_and(|s| !s.is_release()));
        if command_rollbacks && !involves_release {
            // (The release stack's return announces itself.)
            let _ = self.job.store.append_event(
                self.event(
                    EventKind::RollbackInitiated,
                    Level::Warn,
                    format!("rolling back the stacks of {}", dep.id),
                )
                .data(json!({ "reason": reason })),
            );
        }
        let mut hosts = None;
        let mut stacks_rolled = false;
        let mut stack_failures = Vec::new();
        for (i, why) in failing {
            let _ = self.stack_to(*i, StackStatus::Failed, Some(why));
            match specs.get(*i) {
                Some(s) if s.is_release() => hosts = Some(self.return_hosts()),
                Some(s) => match self.roll_back_stack(s) {
                    Some(Ok(())) => stacks_rolled = true,
                    Some(Err(why)) => stack_failures.push(format!("stack {}: {why}", s.name)),
                    None => {}
                },
                None => {}
            }
        }
        for &i in deployed.iter().rev() {
            match specs.get(i) {
                Some(s) if s.is_release() => {
                    let back = self.return_hosts();
                    if matches!(back, HostsBack::Returned { .. }) {
                        let _ = self.stack_to(i, StackStatus::RolledBack, None);
                    }
                    hosts = Some(back);
                }
                Some(s) => match self.roll_back_stack(s) {
                    Some(Err(why)) => {
                        let _ = self.stack_to(i, StackStatus::Failed, Some(&why));
                        stack_failures.push(format!("stack {}: {why}", s.name));
                    }
                    // Deployed without a rollback command: nothing to undo.
                    Some(Ok(())) | None => {
                        let _ = self.stack_to(i, StackStatus::RolledBack, None);
                        stacks_rolled = true;
                    }
                },
                None => {}
            }
        }
        let n = self.records().len();
        for i in 0..n {
            let st = self.records().get(i).map(Stack::status);
            if matches!(st, Some(StackStatus::Pending | StackStatus::Synthesized)) {
                let _ = self.stack_to(i, StackStatus::Skipped, None);
            } else if matches!(st, Some(StackStatus::Synthesizing | StackStatus::Deploying)) {
                let _ = self.stack_to(i, StackStatus::Failed, Some("the deployment failed"));
            }
        }
        // Hosts never touched (no release stack involved): drop any partial release.
        let hosts = hosts.unwrap_or_else(|| self.return_hosts());
        ctx.settle(dep.id, reason, hosts, stacks_rolled, &stack_failures)
    }

    /// Runs a command stack's `rollback`, when it has one.
    fn roll_back_stack(&self, spec: &StackSpec) -> Option<Result<(), String>> {
        let cmd = spec.rollback.as_ref()?;
        Some(self.stack_command(spec, "rollback", cmd, &BTreeMap::new(), &[]))
    }

    /// Ctrl-C: before any host switched the deployment is cancelled and partial
    /// releases removed; after, it fails and returns the hosts.
    pub(super) fn cancel_or_fail(&self, why: &str) -> DeployError {
        let switched = self.verification().hosts.iter().any(|h| h.switched_at.is_some());
        if switched {
            return self.fail_and_return(why.to_owned());
        }
        for l in self.live().iter_mut() {
            let _ = l.session.remove_release(&self.dep.id.to_string());
        }
        match self.advance(DeploymentStatus::Cancelled) {
            Ok(_) => DeployError::Cancelled {
                deployment: self.dep.id,
            },
            Err(e) => e,
        }
    }

    /// Returns every switched host to its previous release (the deployment
    /// is failed already).
    fn return_hosts(&self) -> HostsBack {
        let mut live = self.live();
        self.ctx().return_hosts(
            self.dep.id,
            &self.verification,
            live.iter_mut().map(|l| (&l.plan, &mut l.session)),
        )
    }

    /// Fails the deployment with `reason`, returns every switched host to its
    /// previous release, and marks it rolled back (or says why not).
    pub(super) fn fail_and_return(&self, reason: String) -> DeployError {
        let mut live = self.live();
        self.ctx().fail_and_return(
            self.dep.id,
            &self.verification,
            live.iter_mut().map(|l| (&l.plan, &mut l.session)),
            reason,
        )
    }
}
