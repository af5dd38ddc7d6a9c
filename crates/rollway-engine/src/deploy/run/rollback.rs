//! Failing a run: the deployment is failed first, then the failing stacks'
//! rollbacks run, then every deployed stack's in reverse order (the release
//! stack returns its hosts through `Context::fail_and_return`); stacks
//! never started are skipped. Ctrl-C before any host switched cancels.

use std::collections::BTreeMap;

use rollway_model::{DeploymentStatus, EventKind, Level, Stack, StackStatus};
use serde_json::json;

use super::Run;
use crate::deploy::DeployError;
use crate::deploy::stacks::StackSpec;

impl Run<'_, '_> {
    /// A failure anywhere: the deployment fails with `reason`; the `failing`
    /// stacks' own rollbacks run first, then every other deployed stack's
    /// in reverse order (the release stack returns its hosts); stacks never
    /// started are skipped; the deployment ends rolled_back when anything
    /// was rolled back.
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
        let mut outcome = None;
        if let Err(e) = ctx.mark_failed(dep.id, &reason) {
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
            let _ = self.job.store.append_event(
                self.event(
                    EventKind::RollbackInitiated,
                    Level::Warn,
                    format!("rolling back the stacks of {}", dep.id),
                )
                .data(json!({ "reason": reason })),
            );
        }
        for (i, why) in failing {
            let _ = self.stack_to(*i, StackStatus::Failed, Some(why));
            match specs.get(*i) {
                Some(s) if s.is_release() => outcome = Some(self.fail_and_return(reason.clone())),
                Some(s) => {
                    if let Some(cmd) = &s.rollback {
                        rolled_any |= self.stack_command(s, "rollback", cmd, &none, &[]).is_ok();
                    }
                }
                None => {}
            }
        }
        for &i in deployed.iter().rev() {
            match specs.get(i) {
                Some(s) if s.is_release() => {
                    let r = self.fail_and_return(reason.clone());
                    let back = matches!(r, DeployError::Failed { rolled_back: true, .. });
                    if back {
                        let _ = self.stack_to(i, StackStatus::RolledBack, None);
                    }
                    outcome = Some(r);
                }
                Some(s) => {
                    if let Some(cmd) = &s.rollback {
                        let _ = self.stack_command(s, "rollback", cmd, &none, &[]);
                    }
                    let _ = self.stack_to(i, StackStatus::RolledBack, None);
                    rolled_any = true;
                }
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
        if !involves_release {
            // Hosts were never touched: drop any partial release.
            outcome = Some(self.fail_and_return(reason.clone()));
        }
        let already_back = self
            .job
            .store
            .deployment(dep.id)
            .ok()
            .flatten()
            .is_some_and(|d| d.status() == DeploymentStatus::RolledBack);
        if rolled_any && !already_back {
            let rb = format!("automatic rollback: {reason}");
            let completed = format!("rolled back the stacks of {}", dep.id);
            if let Err(e) = ctx.mark_rolled_back(dep.id, &rb, None, Some(completed)) {
                return e;
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
