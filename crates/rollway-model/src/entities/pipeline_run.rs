//! PipelineRun: one execution of the job DAG of seed 001 (the seed names its
//! jobs; DESIGN.md gives the run pending → running → success | failure | cancelled).

use serde::{Deserialize, Serialize};

use crate::entities::{StatusChangeError, atomically};
use crate::ids::{CommitHash, JobId, PipelineRunId};
use crate::status::PipelineStatus;
use crate::time::Timestamp;
use crate::transitions::Lifecycle;

/// A run of the configured jobs for one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineRun {
    /// The run's id; seed 001 has no run entity, its jobs share one trigger.
    pub id: PipelineRunId,
    /// The run's status and its timed history.
    pub lifecycle: Lifecycle<PipelineStatus>,
    /// Seed 001 `commitHash` shared by the run's jobs; `None` outside git.
    pub commit: Option<CommitHash>,
    /// Seed 001 `branch`.
    pub branch: Option<String>,
    /// Seed 001 `triggeredBy` (the operator chain of DESIGN.md).
    pub triggered_by: String,
    /// The environment deployed to, if the run deploys (seed 001 DeploymentConfiguration).
    pub environment: Option<String>,
    /// The run's jobs (seed 001 DeploymentJob), in configuration order.
    pub jobs: Vec<JobId>,
    /// When `rollway pipeline cancel` asked the running process to stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_requested: Option<Timestamp>,
}

impl PipelineRun {
    pub fn new(triggered_by: impl Into<String>, at: Timestamp) -> Self {
        Self {
            id: PipelineRunId::generate(at),
            lifecycle: Lifecycle::new(at),
            commit: None,
            branch: None,
            triggered_by: triggered_by.into(),
            environment: None,
            jobs: Vec::new(),
            cancel_requested: None,
        }
    }

    pub fn status(&self) -> PipelineStatus {
        self.lifecycle.status()
    }

    /// When the run started running, if it did.
    pub fn started_at(&self) -> Option<Timestamp> {
        self.lifecycle.entered(PipelineStatus::Running)
    }

    /// When the run ended, if it did.
    pub fn finished_at(&self) -> Option<Timestamp> {
        let status = self.status();
        crate::transitions::StateMachine::is_terminal(status).then(|| self.lifecycle.since())
    }

    /// Moves the run through its table, or changes nothing and says why.
    pub fn transition(&mut self, to: PipelineStatus, at: Timestamp) -> Result<(), StatusChangeError> {
        let id = self.id;
        atomically(self, |next| {
            next.lifecycle
                .transition(to, at)
                .map_err(|e| StatusChangeError::refused("pipeline run", id, to, e))
        })
    }
}
