//! Job: seed 001 DeploymentJob, one node of a pipeline run's DAG.

use serde::{Deserialize, Serialize};

use crate::entities::{StatusChangeError, atomically};
use crate::ids::{CommitHash, JobId, PipelineRunId};
use crate::rules;
use crate::status::{JobStatus, JobType};
use crate::time::Timestamp;
use crate::transitions::Lifecycle;

/// One job execution with its output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Seed 001 `id`.
    pub id: JobId,
    /// The pipeline run the job belongs to.
    pub run_id: PipelineRunId,
    /// The job's name in rollway.toml (`[jobs.NAME]`); `needs` refers to it.
    pub name: String,
    /// Seed 001 `jobType`, or `custom`.
    pub job_type: JobType,
    /// Names of the jobs that must succeed first.
    pub needs: Vec<String>,
    /// Seed 001 `status` with its timed history.
    pub lifecycle: Lifecycle<JobStatus>,
    /// Seed 001 `startTime`; empty for a job cancelled before it started.
    pub start_time: Option<Timestamp>,
    /// Seed 001 `endTime?`: set on completion.
    pub end_time: Option<Timestamp>,
    /// The exit code of the job's command, once it exited.
    pub exit_code: Option<i32>,
    /// Seed 001 `logs`: the job's output, stored after the masking filter.
    pub logs: String,
    /// Seed 001 `commitHash`; `None` outside git.
    pub commit_hash: Option<CommitHash>,
    /// Seed 001 `branch`.
    pub branch: Option<String>,
    /// Seed 001 `triggeredBy`.
    pub triggered_by: String,
}

impl Job {
    pub fn new(
        run_id: PipelineRunId,
        name: impl Into<String>,
        job_type: JobType,
        triggered_by: impl Into<String>,
        at: Timestamp,
    ) -> Self {
        Self {
            id: JobId::generate(at),
            run_id,
            name: name.into(),
            job_type,
            needs: Vec::new(),
            lifecycle: Lifecycle::new(at),
            start_time: None,
            end_time: None,
            exit_code: None,
            logs: String::new(),
            commit_hash: None,
            branch: None,
            triggered_by: triggered_by.into(),
        }
    }

    pub fn status(&self) -> JobStatus {
        self.lifecycle.status()
    }

    /// Moves the job through its table: `running` sets `start_time`, a final
    /// status sets `end_time`; a pending job cancelled keeps an empty start.
    pub fn transition(&mut self, to: JobStatus, at: Timestamp) -> Result<(), StatusChangeError> {
        let id = self.id;
        atomically(self, |next| {
            next.lifecycle
                .transition(to, at)
                .map_err(|e| StatusChangeError::refused("job", id, to, e))?;
            match to {
                JobStatus::Running => next.start_time = Some(at),
                JobStatus::Success | JobStatus::Failure | JobStatus::Cancelled => {
                    next.end_time = Some(at);
                }
                JobStatus::Pending => {}
            }
            let violations = rules::job::validate(next);
            if violations.is_empty() {
                Ok(())
            } else {
                Err(StatusChangeError::invalid("job", id, to, violations))
            }
        })
    }
}
