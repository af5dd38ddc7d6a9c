//! `rollway pipeline run|list|show|logs|cancel`: the `[jobs]` DAG, run
//! here with the environment's variables, recorded with masked logs.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::Subcommand;
use rollway_config::Config;
use rollway_engine::pipeline::{JobSpec, Pipeline, PipelineError, PipelineProgress};
use rollway_model::{EventKind, JobStatus, Level, NewEvent, PipelineRun, PipelineRunId, PipelineStatus};
use rollway_store::Store;

use crate::exit::{Code, coded, coded_with};
use crate::output::{Cell, Printer, Tone, cell};
use crate::session::Session;

#[derive(Debug, Subcommand)]
pub enum PipelineCmd {
    /// Run the named jobs and what they need (default: every job).
    Run {
        /// Run with this environment's variables (its secrets masked).
        #[arg(long)]
        env: Option<String>,
        /// Jobs at once (default: the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Jobs to run; what they need runs first.
        names: Vec<String>,
    },
    /// Pipeline runs, newest first.
    List {
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One run with its jobs (a run id or a unique prefix).
    Show { run: String },
    /// A job's stored output (masked).
    Logs {
        run: String,
        job: String,
        /// Keep printing new output until the job ends.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Ask the process running RUN to stop: every job's processes end, the jobs end cancelled.
    Cancel { run: String },
}

pub fn run(s: &Session, cmd: PipelineCmd) -> anyhow::Result<()> {
    let (config, store) = s.open()?;
    match cmd {
        PipelineCmd::Run { env, jobs, names } => {
            let run = run_pipeline(s, &config, &*store, env.as_deref(), jobs, names)?;
            let answer = show_run(s, &*store, &run)?;
            // A run that did not succeed answers `--json` with the error
            // document, the run record as its details.
            match run.status() {
                PipelineStatus::Success => {
                    s.printer.json(&answer);
                    Ok(())
                }
                PipelineStatus::Cancelled => Err(coded_with(
                    Code::Interrupted,
                    anyhow::anyhow!("pipeline {} was cancelled", run.id),
                    answer,
                )),
                other => Err(coded_with(
                    Code::Failed,
                    anyhow::anyhow!("pipeline {} ended {other}", run.id),
                    answer,
                )),
            }
        }
        PipelineCmd::List { limit } => {
            let runs = store.runs(limit)?;
            s.printer.json(&runs);
            let rows: Vec<Vec<Cell>> = runs
                .iter()
                .map(|r| {
                    vec![
                        Cell::from(r.id.to_string()),
                        status_cell(r.status().as_str()),
                        Cell::from(r.environment.clone().unwrap_or_else(|| "-".into())),
                        Cell::from(r.triggered_by.clone()),
                        Cell::from(r.lifecycle.started_at().to_string()),
                    ]
                })
                .collect();
            s.printer
                .table(&["RUN", "STATUS", "ENV", "TRIGGERED BY", "CREATED"], &rows);
            Ok(())
        }
        PipelineCmd::Show { run } => {
            let run = find_run(&*store, &run)?;
            let answer = show_run(s, &*store, &run)?;
            s.printer.json(&answer);
            Ok(())
        }
        PipelineCmd::Logs { run, job, follow } => {
            let run = find_run(&*store, &run)?;
            let Some(found) = store.jobs(run.id)?.into_iter().find(|j| j.name == job) else {
                return Err(coded(
                    Code::Invalid,
                    anyhow::anyhow!("run {} has no job '{job}'", run.id),
                ));
            };
            let mut printed = 0usize;
            loop {
                let j = store.job(found.id)?.unwrap_or_else(|| found.clone());
                if j.logs.len() > printed {
                    s.printer.raw_masked(&j.logs[printed..]);
                    printed = j.logs.len();
                }
                if !follow || rollway_model::StateMachine::is_terminal(j.status()) {
                    s.printer.json(
                        &serde_json::json!({ "run": run.id, "job": j.name, "status": j.status(), "logs": j.logs }),
                    );
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        PipelineCmd::Cancel { run } => {
            let run = find_run(&*store, &run)?;
            if rollway_model::StateMachine::is_terminal(run.status()) {
                return Err(coded(
                    Code::Conflict,
                    anyhow::anyhow!("pipeline {} already ended {}; nothing to cancel", run.id, run.status()),
                ));
            }
            let now = store.clock().now();
            let operator = s.operator();
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
            let ended = wait_until_ended(&*store, updated.id, Duration::from_secs(60))?;
            s.printer.json(&ended);
            s.printer
                .line(Tone::Warn, format!("pipeline {} ended {}", ended.id, ended.status()));
            Ok(())
        }
    }
}

fn wait_until_ended(store: &dyn Store, id: PipelineRunId, limit: Duration) -> anyhow::Result<PipelineRun> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let r = store
            .run(id)?
            .ok_or_else(|| anyhow::anyhow!("pipeline {id} vanished from the store"))?;
        if rollway_model::StateMachine::is_terminal(r.status()) || std::time::Instant::now() >= deadline {
            return Ok(r);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Finds a run by id or unique prefix among recent runs.
fn find_run(store: &dyn Store, wanted: &str) -> anyhow::Result<PipelineRun> {
    let mut found: Vec<PipelineRun> = store
        .runs(10_000)?
        .into_iter()
        .filter(|r| r.id.to_string().starts_with(wanted))
        .collect();
    if found.len() > 1 {
        return Err(coded(
            Code::Invalid,
            anyhow::anyhow!("'{wanted}' matches {} runs: give more characters", found.len()),
        ));
    }
    found.pop().ok_or_else(|| {
        coded(
            Code::Invalid,
            anyhow::anyhow!("no pipeline run matches '{wanted}': see `rollway pipeline list`"),
        )
    })
}

fn status_cell(status: &str) -> Cell {
    let tone = match status {
        "success" | "succeeded" => Tone::Good,
        "failure" | "failed" => Tone::Bad,
        "cancelled" | "skipped" => Tone::Warn,
        _ => Tone::Plain,
    };
    cell(status, tone)
}

/// Prints the run's jobs for people; returns the `--json` answer.
fn show_run(s: &Session, store: &dyn Store, run: &PipelineRun) -> anyhow::Result<serde_json::Value> {
    let jobs = store.jobs(run.id)?;
    let brief: Vec<serde_json::Value> = jobs
        .iter()
        .map(|j| {
            let mut v = serde_json::to_value(j).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.remove("logs");
            }
            v
        })
        .collect();
    s.printer
        .line(Tone::Plain, format!("pipeline {} {}", run.id, run.status()));
    let rows: Vec<Vec<Cell>> = jobs
        .iter()
        .map(|j| {
            let took = match (j.start_time, j.end_time) {
                (Some(a), Some(b)) => rollway_model::time::format_duration(b.since(a)),
                _ => "-".into(),
            };
            vec![
                Cell::from(j.name.clone()),
                status_cell(j.status().as_str()),
                Cell::from(j.exit_code.map_or("-".into(), |c| c.to_string())),
                Cell::from(took),
                Cell::from(j.needs.join(", ")),
            ]
        })
        .collect();
    s.printer.table(&["JOB", "STATUS", "EXIT", "TOOK", "NEEDS"], &rows);
    Ok(serde_json::json!({ "run": run, "jobs": brief }))
}

/// Lines for people: one per job change, and the running jobs with their
/// elapsed time once a second on a terminal.
struct CliProgress {
    printer: Printer,
    tty: bool,
}

impl PipelineProgress for CliProgress {
    fn job(&self, name: &str, status: JobStatus, detail: &str) {
        let tone = match status {
            JobStatus::Success => Tone::Good,
            JobStatus::Failure => Tone::Bad,
            JobStatus::Cancelled => Tone::Warn,
            _ => Tone::Dim,
        };
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(" ({detail})")
        };
        self.printer.line(tone, format!("  {name:<20} {status}{detail}"));
    }

    fn running(&self, jobs: &[(String, Duration)]) {
        if !self.tty || jobs.is_empty() {
            return;
        }
        let list: Vec<String> = jobs.iter().map(|(n, d)| format!("{n} {}s", d.as_secs())).collect();
        self.printer.line(Tone::Dim, format!("  running: {}", list.join(", ")));
    }
}

/// Runs the pipeline of `config` (the named jobs, or all).
pub fn run_pipeline(
    s: &Session,
    config: &Config,
    store: &dyn Store,
    env: Option<&str>,
    parallel: Option<usize>,
    names: Vec<String>,
) -> anyhow::Result<PipelineRun> {
    if config.jobs.is_empty() {
        return Err(coded(
            Code::Invalid,
            anyhow::anyhow!(
                "{} has no [jobs]: add a [jobs.NAME] table with `run`",
                s.config_path().display()
            ),
        ));
    }
    let env_vars = match env {
        Some(e) => s.env_values(config, store, e)?,
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
    let interrupted = Arc::new(AtomicBool::new(false));
    let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&interrupted));
    let progress = CliProgress {
        printer: s.printer.clone(),
        tty: std::io::stdout().is_terminal(),
    };
    let dir = s.config_dir();
    let pipeline = Pipeline {
        store,
        jobs,
        selected: names,
        parallel: parallel.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        dir: std::fs::canonicalize(&dir).unwrap_or(dir.clone()),
        env: env_vars,
        masker: s.printer.masker(),
        operator: s.operator(),
        environment: env.map(str::to_owned),
        source: crate::commands::build::source_info(&dir)?,
        interrupted: &interrupted,
        progress: &progress,
        artifact_dir: s.state_dir().join("artifacts"),
        artifact_expiry: config
            .build
            .as_ref()
            .map_or(Duration::from_secs(90 * 86_400), |b| b.expire_after),
        grace: Duration::from_secs(2),
    };
    pipeline.run().map_err(|e| match e {
        PipelineError::Invalid(m) => coded_with(Code::Invalid, anyhow::anyhow!(m), serde_json::Value::Null),
        PipelineError::Store(e) => anyhow::Error::new(e),
    })
}
