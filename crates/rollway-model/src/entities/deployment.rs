//! Deployment: seed 000 DeploySession, seed 002 Deployment Release, seed 003
//! Deployment Status and seed 004 Deployment, on the one state machine of
//! DESIGN.md.

use serde::{Deserialize, Serialize};

use crate::entities::{StatusChangeError, atomically};
use crate::ids::{ArtifactId, CommitHash, DeploymentId};
use crate::rules;
use crate::status::{DeploymentKind, DeploymentStatus};
use crate::time::Timestamp;
use crate::transitions::Lifecycle;

/// One attempt to put a release on an environment, or to return to one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// Seed 000 `id`, seed 002 `id`, seed 003 `deployment_id`, seed 004 `id`.
    pub id: DeploymentId,
    /// A forward deploy, or a manual rollback to `rollback_to`.
    pub kind: DeploymentKind,
    /// The environment's name: seed 000 `targetEnvironment`, seed 002
    /// `environmentId`, seed 003 `environment_id`, seed 004 `environment`.
    pub environment: String,
    /// Seed 000 `operator`.
    pub operator: String,
    /// Seed 000 `artifactId`; `None` for a deployment of command stacks only.
    pub artifact_id: Option<ArtifactId>,
    /// Seed 002 `versionTag`.
    pub version_tag: Option<String>,
    /// Seed 003 `commit_sha`; `None` outside git.
    pub commit_sha: Option<CommitHash>,
    /// Seed 003 `branch`.
    pub branch: Option<String>,
    /// The source had uncommitted changes.
    pub dirty: bool,
    /// Seed 000 `notes`.
    pub notes: Option<String>,
    /// Seed 000/002/003/004 `status`, with the time of every transition.
    pub lifecycle: Lifecycle<DeploymentStatus>,
    /// Why it failed; required on failed (seed 004 "Failed deployments must
    /// have rollback_reason", kept apart from the rollback's own reason).
    pub failure_reason: Option<String>,
    /// Seed 004 `rollback_reason`, seed 000 "log must capture rollback
    /// reason": required on rolled_back.
    pub rollback_reason: Option<String>,
    /// Seed 002 `rollbackToReleaseId`: the deployment a rollback returns to.
    pub rollback_to: Option<DeploymentId>,
    /// Seed 003 `rollback_target`: a succeeded release still on every host
    /// with its artifact kept, so a rollback may return to it.
    pub rollback_target: bool,
    /// Seed 004 `stacks_order`: stack names in dependency order.
    pub stacks_order: Vec<String>,
    /// Host waves (canary first, then batches), each a list of host names.
    pub waves: Vec<Vec<String>>,
    /// Seed 003 `platform_deployment_id`.
    pub platform_deployment_id: Option<String>,
    /// Seed 003 `artifacts_url`.
    pub artifacts_url: Option<String>,
    /// Seed 003 `logs_url`.
    pub logs_url: Option<String>,
    /// Seed 000/002/003 `startedAt`, seed 004 `start_time`.
    pub started_at: Timestamp,
    /// Seed 000 `completedAt`, seed 002 `finishedAt`, seed 003
    /// `completed_at`, seed 004 `end_time`.
    pub finished_at: Option<Timestamp>,
    /// How long building the artifact took, in milliseconds, when this
    /// deployment built it (it is built before the deployment is created;
    /// the `building` phase then covers only `[deploy] jobs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_ms: Option<u64>,
}

const ENTITY: &str = "deployment";

impl Deployment {
    /// A new pending deployment.
    pub fn new(
        kind: DeploymentKind,
        environment: impl Into<String>,
        operator: impl Into<String>,
        at: Timestamp,
    ) -> Self {
        Self {
            id: DeploymentId::generate(at),
            kind,
            environment: environment.into(),
            operator: operator.into(),
            artifact_id: None,
            version_tag: None,
            commit_sha: None,
            branch: None,
            dirty: false,
            notes: None,
            lifecycle: Lifecycle::new(at),
            failure_reason: None,
            rollback_reason: None,
            rollback_to: None,
            rollback_target: false,
            stacks_order: Vec::new(),
            waves: Vec::new(),
            platform_deployment_id: None,
            artifacts_url: None,
            logs_url: None,
            started_at: at,
            finished_at: None,
            build_ms: None,
        }
    }

    pub fn status(&self) -> DeploymentStatus {
        self.lifecycle.status()
    }

    /// Moves the deployment through the table. Entering succeeded, failed or
    /// cancelled sets `finished_at`; so does rolled_back after failed (the
    /// rollback ends this deployment's own run), while a succeeded deployment
    /// rolled back later keeps the time it finished. Leaving succeeded clears
    /// `rollback_target`. Refused, with nothing changed, when the edge is
    /// forbidden, time goes backwards, or the new status misses a field it
    /// needs (a failure or rollback reason).
    pub fn transition(&mut self, to: DeploymentStatus, at: Timestamp) -> Result<(), StatusChangeError> {
        let id = self.id;
        atomically(self, |next| {
            let from = next.status();
            next.lifecycle
                .transition(to, at)
                .map_err(|e| StatusChangeError::refused(ENTITY, id, to, e))?;
            match to {
                DeploymentStatus::Succeeded | DeploymentStatus::Failed | DeploymentStatus::Cancelled => {
                    next.finished_at = Some(at)
                }
                DeploymentStatus::RolledBack => {
                    if from == DeploymentStatus::Failed || next.finished_at.is_none() {
                        next.finished_at = Some(at);
                    }
                    next.rollback_target = false;
                }
                _ => {}
            }
            let violations = rules::deployment::validate_status(next);
            if violations.is_empty() {
                Ok(())
            } else {
                Err(StatusChangeError::invalid(ENTITY, id, to, violations))
            }
        })
    }

    /// Records `reason` and moves to failed, or changes nothing.
    pub fn fail(&mut self, reason: impl Into<String>, at: Timestamp) -> Result<(), StatusChangeError> {
        let reason = reason.into();
        atomically(self, |next| {
            next.failure_reason = Some(reason);
            next.transition(DeploymentStatus::Failed, at)
        })
    }

    /// Records `reason` and moves to rolled_back, or changes nothing.
    pub fn roll_back(&mut self, reason: impl Into<String>, at: Timestamp) -> Result<(), StatusChangeError> {
        let reason = reason.into();
        atomically(self, |next| {
            next.rollback_reason = Some(reason);
            next.transition(DeploymentStatus::RolledBack, at)
        })
    }
}
