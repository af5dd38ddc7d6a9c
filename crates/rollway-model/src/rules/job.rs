//! Shape rules of seed 001 DeploymentJob.

use crate::entities::Job;
use crate::rules::{Violation, fields, ordered};
use crate::status::JobStatus;
use crate::transitions::StateMachine;

/// Seed 001 "Status must be one of the allowed values".
pub const STATUS_ALLOWED: &str = "job.status-allowed";
/// Seed 001 "startTime must be before endTime (when present)", as start ≤ end.
pub const TIMES_ORDERED: &str = "job.times-ordered";
/// Seed 001 `startTime`: set once the job ran (empty only for a job
/// cancelled before it started).
pub const START_TIME_REQUIRED: &str = "job.start-time-required";
/// Seed 001 `endTime?` "optional until completion": set exactly when finished.
pub const END_TIME_ON_COMPLETION: &str = "job.end-time-on-completion";

pub const RULES: &[&str] = &[
    STATUS_ALLOWED,
    TIMES_ORDERED,
    START_TIME_REQUIRED,
    END_TIME_ON_COMPLETION,
];

/// All of a job's rules.
pub fn validate(job: &Job) -> Vec<Violation> {
    let mut out = Vec::new();
    let status = job.status();
    let ran = job.lifecycle.entered(JobStatus::Running).is_some();
    if ran && job.start_time.is_none() {
        out.push(Violation::new(
            "start_time",
            START_TIME_REQUIRED,
            format!("a job that ran ({status}) needs its start_time"),
        ));
    }
    let finished = status.is_terminal();
    match (finished, job.end_time) {
        (true, None) => out.push(Violation::new(
            "end_time",
            END_TIME_ON_COMPLETION,
            format!("a {status} job needs its end_time"),
        )),
        (false, Some(_)) => out.push(Violation::new(
            "end_time",
            END_TIME_ON_COMPLETION,
            format!("a {status} job has not ended, so it has no end_time"),
        )),
        _ => {}
    }
    ordered(
        &mut out,
        TIMES_ORDERED,
        ("start_time", job.start_time),
        ("end_time", job.end_time),
    );
    out
}

/// A job status from text (seed 001 `status`).
pub fn parse_status(value: &str) -> Result<JobStatus, Violation> {
    fields::parse_enum("status", value, None, STATUS_ALLOWED)
}

/// A job's commit hash from text (seed 001 `commitHash`).
pub fn parse_commit_hash(value: &str) -> Result<Option<crate::ids::CommitHash>, Violation> {
    fields::commit_hash("commit_hash", value)
}
