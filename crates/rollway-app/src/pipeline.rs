//! Pipelines: the `[jobs]` DAG run here with an environment's variables,
//! recorded with masked logs; runs listed, shown, followed and cancelled.

use std::time::Duration;

use rollway_config::Config;
pub use rollway_engine::PipelineProgress;
use rollway_engine::{JobSpec, Pipeline, PipelineError};
use rollway_model::{EventKind, Job, Level, NewEvent, PipelineRun, PipelineRunId, PipelineStatus, StateMachine as _};
use rollway_store::Store;

use crate::error::{Code, Error, Result};
use crate::project::{Project, Scope};

/// A run with its jobs (their logs left out: `logs` has them).
#[derive(Debug, Clone)]
pub struct Shown {
    pub run: PipelineRun,
    pub jobs: Vec<Job>,
}

impl Shown {
    /// The machine answer: the run, and its jobs without their logs.
    pub fn json(&self) -> serde_json::Value {
        let brief: Vec<serde_json::Value> = self
            .jobs
            .iter()
            .map(|j| {
                let mut v = serde_json::to_value(j).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.remove("logs");
                }
                v
            })
            .collect();
        serde_json::json!({ "run": self.run, "jobs": brief })
    }
}

fn shown(store: &dyn Store, run: PipelineRun) -> Result<Shown> {
    let jobs = store.jobs(run.id)?;
    Ok(Shown { run, jobs })
}

/// Runs the named jobs and what they need (default: every job). The run
/// comes back whatever it ended as: [`Shown::verdict`] says whether that
/// is an error.
pub fn run(
    p: &Project,
    env: Option<&str>,
    parallel: Option<usize>,
    names: Vec<String>,
    progress: &dyn PipelineProgress,
) -> Result<Shown> {
    let (config, store) = p.open()?;
    let run = run_pipeline(p, &config, &*store, env, parallel, names, progress)?;
    shown(&*store, run)
}

impl Shown {
    /// A run that did not succeed as an error (cancelled: interrupted;
    /// else failed) whose details are the run's answer.
    pub fn verdict(&self) -> Result<()> {
        let (code, how) = match self.run.status() {
            PipelineStatus::Success => return Ok(()),
            PipelineStatus::Cancelled => (Code::Interrupted, "was cancelled".to_owned()),
            other => (Code::Failed, format!("ended {other}")),
        };
        Err(Error::new(code, anyhow::anyhow!("pipeline {} {how}", self.run.id)).with_details(self.json()))
    }
}

/// Pipeline runs, newest first.
pub fn list(p: &Project, limit: usize) -> Result<Vec<PipelineRun>> {
    let (_, store) = p.open()?;
    Ok(store.runs(limit)?)
}

/// One run with its jobs (a run id or a unique prefix).
pub fn show(p: &Project, run: &str) -> Result<Shown> {
    let (_, store) = p.open()?;
    let run = find_run(&*store, run)?;
    shown(&*store, run)
}

/// A job's stored output, through its end.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobLog {
    pub run: PipelineRunId,
    pub job: String,
    pub status: rollway_model::JobStatus,
    pub logs: String,
}

/// A job's stored output (masked when stored): `text` is called with each
/// new piece; with `follow` until the job ends.
pub fn logs(p: &Project, run: &str, job: &str, follow: bool, text: &mut dyn FnMut(&str)) -> Result<JobLog> {
    let (_, store) = p.open()?;
    let run = find_run(&*store, run)?;
    let Some(found) = store.jobs(run.id)?.into_iter().find(|j| j.name == job) else {
        return Err(Error::invalid(format_args!("run {} has no job '{job}'", run.id)));
    };
    let mut printed = 0usize;
    loop {
        let j = store.job(found.id)?.unwrap_or_else(|| found.clone());
        if j.logs.len() > printed {
            text(&j.logs[printed..]);
            printed = j.logs.len();
        }
        if !follow || j.status().is_terminal() {
            return Ok(JobLog {
                run: run.id,
                job: j.name.clone(),
                status: j.status(),
                logs: j.logs,
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Asks the process running `run` to stop: every job's processes end, the
/// jobs end cancelled. Returns the run once it ended (or after a minute).
pub fn cancel(p: &Project, run: &str) -> Result<PipelineRun> {
    let (_, store) = p.open()?;
    let run = find_run(&*store, run)?;
    if run.status().is_terminal() {
        return Err(Error::new(
            Code::Conflict,
            anyhow::anyhow!("pipeline {} already ended {}; nothing to cancel", run.id, run.status()),
        ));
    }
    let now = store.clock().now();
    let operator = p.operator();
    let updated = store.update_run(run.id, &mut |r| {
        r.cancel_requested = Some(now);
        Ok(vec![
            NewEvent::new(
                EventKind::JobCancelled,
                Level::Warn,
                format!("cancel of pipeline {} requested", r.id),
            )
            .pipeline_run(r.id)
            .operator(operator.clone())
            .data(serde_json::json!({ "requested": true })),
        ])
    })?;
    wait_until_ended(&*store, updated.id, Duration::from_secs(60))
}

fn wait_until_ended(store: &dyn Store, id: PipelineRunId, limit: Duration) -> Result<PipelineRun> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let r = store
            .run(id)?
            .ok_or_else(|| Error::from(anyhow::anyhow!("pipeline {id} vanished from the store")))?;
        if r.status().is_terminal() || std::time::Instant::now() >= deadline {
            return Ok(r);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Finds a run by id or unique prefix among recent runs.
fn find_run(store: &dyn Store, wanted: &str) -> Result<PipelineRun> {
    let mut found: Vec<PipelineRun> = store
        .runs(10_000)?
        .into_iter()
        .filter(|r| r.id.to_string().starts_with(wanted))
        .collect();
    if found.len() > 1 {
        return Err(Error::invalid(format_args!(
            "'{wanted}' matches {} runs: give more characters",
            found.len()
        )));
    }
    found.pop().ok_or_else(|| {
        Error::invalid(format_args!(
            "no pipeline run matches '{wanted}': see `rollway pipeline list`"
        ))
    })
}

/// Runs the pipeline of `config` (the named jobs, or all).
pub(crate) fn run_pipeline(
    p: &Project,
    config: &Config,
    store: &dyn Store,
    env: Option<&str>,
    parallel: Option<usize>,
    names: Vec<String>,
    progress: &dyn PipelineProgress,
) -> Result<PipelineRun> {
    if config.jobs.is_empty() {
        return Err(Error::invalid(format_args!(
            "{} has no [jobs]: add a [jobs.NAME] table with `run`",
            p.config_path().display()
        )));
    }
    let env_vars = match env {
        Some(e) => p.env_values(config, store, e)?,
        None => Vec::new(),
    };
    let jobs: Vec<JobSpec> = config
        .jobs
        .iter()
        .map(|(name, j)| JobSpec {
            name: name.clone(),
            job_type: j.job_type,
            run: j.run.clone(),
            needs: j.needs.clone(),
            timeout: j.timeout,
            env: j.env.clone(),
            artifacts: j.artifacts.clone(),
        })
        .collect();
    let interrupted = p.interrupt().flag(Scope::Pipeline);
    let dir = p.config_dir();
    let pipeline = Pipeline {
        store,
        jobs,
        selected: names,
        parallel: parallel.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        dir: std::fs::canonicalize(&dir).unwrap_or(dir.clone()),
        env: env_vars,
        masker: p.masks().masker(),
        operator: p.operator(),
        environment: env.map(str::to_owned),
        source: crate::build::source_info(&dir)?,
        interrupted: &interrupted,
        progress,
        artifact_dir: p.state_dir().join("artifacts"),
        artifact_expiry: config
            .build
            .as_ref()
            .map_or(Duration::from_secs(90 * 86_400), |b| b.expire_after),
        grace: Duration::from_secs(2),
    };
    pipeline.run().map_err(|e| match e {
        PipelineError::Invalid(m) => Error::invalid(m).with_details(serde_json::Value::Null),
        PipelineError::Store(e) => Error::from(e),
    })
}
