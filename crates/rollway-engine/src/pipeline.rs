//! Pipelines: the configured jobs as a DAG, run with `sh -c` in the
//! project directory, independent jobs in parallel up to a limit. Every job
//! records its times, exit code and masked log; a failed job's dependents
//! are cancelled without starting; a cancel (Ctrl-C or `pipeline cancel`)
//! ends every process of the run — this process is a child subreaper, so
//! children that called `setsid` or double-forked are found too.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rollway_model::{
    ArtifactKind, EventKind, Job, JobId, JobStatus, JobType, Level, Masker, NewEvent, PipelineRun, PipelineRunId,
    PipelineStatus,
};
use rollway_store::{Store, StoreError};
use rustix::process::Signal;
use serde_json::json;

use crate::supervisor::process;

/// One configured job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    pub name: String,
    pub job_type: JobType,
    pub run: String,
    pub needs: Vec<String>,
    pub timeout: Option<Duration>,
    pub env: BTreeMap<String, String>,
    /// Paths (relative to the project directory) packed into artifact records.
    pub artifacts: Vec<String>,
}

/// Where a run tells people how it goes.
pub trait PipelineProgress: Sync {
    /// A job changed status (`detail`: why, when there is something to say).
    fn job(&self, name: &str, status: JobStatus, detail: &str);
    /// The running jobs and how long each has run, about once a second.
    fn running(&self, jobs: &[(String, Duration)]);
}

/// Why a run could not start or could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A pipeline run, ready to go.
pub struct Pipeline<'a> {
    pub store: &'a dyn Store,
    /// Every configured job.
    pub jobs: Vec<JobSpec>,
    /// Jobs to run with what they need; empty: all.
    pub selected: Vec<String>,
    /// Jobs running at once (at least 1).
    pub parallel: usize,
    /// Where commands run (the directory of rollway.toml).
    pub dir: PathBuf,
    /// The environment's variables, added to every job's environment.
    pub env: Vec<(String, String)>,
    pub masker: Masker,
    pub operator: String,
    pub environment: Option<String>,
    pub source: rollway_artifact::SourceInfo,
    /// Set by Ctrl-C: cancel the run.
    pub interrupted: &'a AtomicBool,
    pub progress: &'a dyn PipelineProgress,
    /// Where job artifacts are packed, and how long their records live.
    pub artifact_dir: PathBuf,
    pub artifact_expiry: Duration,
    /// How long a process may take to end after SIGTERM before SIGKILL.
    pub grace: Duration,
}

/// A job being run.
struct Running {
    index: usize,
    child: Child,
    started: Instant,
    /// Set when the reader should stop waiting for output (the job's own
    /// process ended a moment ago, or the run is being cancelled).
    stop: AtomicBool,
}

impl Pipeline<'_> {
    /// The selected jobs with everything they need, in configuration order.
    fn plan(&self) -> Result<Vec<JobSpec>, PipelineError> {
        let by_name: BTreeMap<&str, &JobSpec> = self.jobs.iter().map(|j| (j.name.as_str(), j)).collect();
        let mut wanted: BTreeSet<&str> = BTreeSet::new();
        let mut stack: Vec<&str> = if self.selected.is_empty() {
            self.jobs.iter().map(|j| j.name.as_str()).collect()
        } else {
            self.selected.iter().map(String::as_str).collect()
        };
        while let Some(name) = stack.pop() {
            let job = by_name.get(name).ok_or_else(|| {
                PipelineError::Invalid(format!(
                    "no job '{name}' in rollway.toml (jobs: {})",
                    by_name.keys().copied().collect::<Vec<_>>().join(", ")
                ))
            })?;
            if wanted.insert(name) {
                stack.extend(job.needs.iter().map(String::as_str));
            }
        }
        Ok(self
            .jobs
            .iter()
            .filter(|j| wanted.contains(j.name.as_str()))
            .cloned()
            .collect())
    }

    fn event(&self, kind: EventKind, level: Level, message: String, run: PipelineRunId) -> NewEvent {
        let mut e = NewEvent::new(kind, level, message)
            .pipeline_run(run)
            .operator(self.operator.clone());
        if let Some(env) = &self.environment {
            e = e.environment(env.clone());
        }
        e
    }

    /// Runs the pipeline to its end and returns the run as recorded.
    pub fn run(&self) -> Result<PipelineRun, PipelineError> {
        let plan = self.plan()?;
        // Orphans of our jobs are re-parented to us, so a cancel finds them.
        let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
        let exempt: Vec<u32> = process::descendants(&[std::process::id()]);
        let now = self.store.clock().now();
        let mut run = PipelineRun::new(self.operator.clone(), now);
        run.commit = self.source.commit.clone();
        run.branch = self.source.branch.clone();
        run.environment = self.environment.clone();
        let run_id = run.id;
        self.store.insert_run(&run, Vec::new())?;
        let mut jobs: Vec<Job> = Vec::with_capacity(plan.len());
        for spec in &plan {
            let mut job = Job::new(
                run_id,
                &spec.name,
                spec.job_type,
                &self.operator,
                self.store.clock().now(),
            );
            job.needs = spec.needs.clone();
            job.commit_hash = self.source.commit.clone();
            job.branch = self.source.branch.clone();
            jobs.push(self.store.insert_job(&job, Vec::new())?);
        }
        let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
        let names: Vec<String> = plan.iter().map(|j| j.name.clone()).collect();
        self.store.update_run(run_id, &mut |r| {
            r.jobs.clone_from(&ids);
            r.transition(PipelineStatus::Running, self.store.clock().now())
                .map_err(crate::deploy::model_err)?;
            Ok(vec![
                self.event(
                    EventKind::PipelineStarted,
                    Level::Info,
                    format!("pipeline {run_id} started: {}", names.join(", ")),
                    run_id,
                )
                .data(json!({ "jobs": names })),
            ])
        })?;

        let mut status: Vec<JobStatus> = vec![JobStatus::Pending; plan.len()];
        // Each job's needs as indexes into the plan, looked up once.
        let position: BTreeMap<&str, usize> = plan.iter().enumerate().map(|(i, p)| (p.name.as_str(), i)).collect();
        let need_index: Vec<Vec<usize>> = plan
            .iter()
            .map(|p| {
                p.needs
                    .iter()
                    .filter_map(|n| position.get(n.as_str()).copied())
                    .collect()
            })
            .collect();
        let mut cancelled = false;
        std::thread::scope(|scope| -> Result<(), PipelineError> {
            let mut running: Vec<std::sync::Arc<std::sync::Mutex<Option<Running>>>> = Vec::new();
            let mut readers = Vec::new();
            let mut last_tick = Instant::now();
            let mut last_poll = Instant::now();
            loop {
                // A cancel: Ctrl-C here, or `pipeline cancel` through the store.
                if !cancelled {
                    let requested = last_poll.elapsed() >= Duration::from_millis(200) && {
                        last_poll = Instant::now();
                        self.store.run(run_id)?.is_some_and(|r| r.cancel_requested.is_some())
                    };
                    if requested || self.interrupted.load(Ordering::SeqCst) {
                        cancelled = true;
                        self.cancel_all(&running, &exempt);
                    }
                }
                // Finished jobs.
                for slot in &running {
                    let mut guard = slot.lock().unwrap_or_else(|p| p.into_inner());
                    let Some(r) = guard.as_mut() else { continue };
                    let timed_out = plan[r.index].timeout.is_some_and(|t| r.started.elapsed() > t);
                    if timed_out {
                        let leader = r.child.id();
                        self.kill_job(leader, &exempt, &[leader]);
                    }
                    let exit = match r.child.try_wait() {
                        Ok(Some(st)) => Some(st),
                        Ok(None) => continue,
                        // Already reaped elsewhere: its status is lost.
                        Err(_) => None,
                    };
                    r.stop.store(true, Ordering::SeqCst);
                    let i = r.index;
                    let code = exit.and_then(|e| e.code()).unwrap_or(-1);
                    let to = if cancelled {
                        JobStatus::Cancelled
                    } else if exit.is_some_and(|e| e.success()) && !timed_out {
                        JobStatus::Success
                    } else {
                        JobStatus::Failure
                    };
                    let why = if timed_out {
                        format!(
                            "timed out after {}",
                            rollway_model::time::format_duration(plan[i].timeout.unwrap_or_default())
                        )
                    } else if cancelled {
                        "cancelled".to_owned()
                    } else {
                        format!("exit code {code}")
                    };
                    drop(guard);
                    self.finish_job(&jobs[i], &plan[i], to, Some(code), &why, run_id)?;
                    status[i] = to;
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
                }
                running.retain(|s| s.lock().unwrap_or_else(|p| p.into_inner()).is_some());
                // Jobs that can no longer run, and jobs that can start.
                for i in 0..plan.len() {
                    if status[i] != JobStatus::Pending {
                        continue;
                    }
                    let needs: Vec<(usize, JobStatus)> = need_index[i].iter().map(|&k| (k, status[k])).collect();
                    if cancelled {
                        self.finish_job(
                            &jobs[i],
                            &plan[i],
                            JobStatus::Cancelled,
                            None,
                            "the run was cancelled",
                            run_id,
                        )?;
                        status[i] = JobStatus::Cancelled;
                    } else if let Some((k, st)) = needs
                        .iter()
                        .find(|(_, st)| matches!(st, JobStatus::Failure | JobStatus::Cancelled))
                    {
                        let why = format!("needs {}, which ended {st}", plan[*k].name);
                        self.finish_job(&jobs[i], &plan[i], JobStatus::Cancelled, None, &why, run_id)?;
                        status[i] = JobStatus::Cancelled;
                    } else if needs.iter().all(|(_, st)| *st == JobStatus::Success)
                        && running.len() < self.parallel.max(1)
                    {
                        let (slot, reader) = match self.start_job(&jobs[i], &plan[i], i, run_id)? {
                            Ok(started) => started,
                            Err(why) => {
                                self.finish_job(&jobs[i], &plan[i], JobStatus::Failure, None, &why, run_id)?;
                                status[i] = JobStatus::Failure;
                                continue;
                            }
                        };
                        status[i] = JobStatus::Running;
                        let job_id = jobs[i].id;
                        let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(slot)));
                        let watch = std::sync::Arc::clone(&slot);
                        readers.push(scope.spawn(move || self.pump(job_id, reader, &watch)));
                        running.push(slot);
                    }
                }
                if status.iter().all(|s| rollway_model::StateMachine::is_terminal(*s)) {
                    break;
                }
                if last_tick.elapsed() >= Duration::from_secs(1) {
                    last_tick = Instant::now();
                    let now: Vec<(String, Duration)> = running
                        .iter()
                        .filter_map(|s| {
                            let g = s.lock().unwrap_or_else(|p| p.into_inner());
                            g.as_ref().map(|r| (plan[r.index].name.clone(), r.started.elapsed()))
                        })
                        .collect();
                    self.progress.running(&now);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(())
        })?;
        self.reap_orphans(&exempt, &[]);

        let outcome = if cancelled {
            PipelineStatus::Cancelled
        } else if status.contains(&JobStatus::Failure) {
            PipelineStatus::Failure
        } else {
            PipelineStatus::Success
        };
        let counts = json!({
            "success": status.iter().filter(|s| **s == JobStatus::Success).count(),
            "failure": status.iter().filter(|s| **s == JobStatus::Failure).count(),
            "cancelled": status.iter().filter(|s| **s == JobStatus::Cancelled).count(),
        });
        let run = self.store.update_run(run_id, &mut |r| {
            r.transition(outcome, self.store.clock().now())
                .map_err(crate::deploy::model_err)?;
            Ok(vec![
                self.event(
                    EventKind::PipelineCompleted,
                    if outcome == PipelineStatus::Success {
                        Level::Info
                    } else {
                        Level::Warn
                    },
                    format!("pipeline {run_id} ended {outcome}"),
                    run_id,
                )
                .data(json!({ "status": outcome.as_str(), "jobs": counts })),
            ])
        })?;
        Ok(run)
    }

    fn start_job(
        &self,
        job: &Job,
        spec: &JobSpec,
        index: usize,
        run_id: PipelineRunId,
    ) -> Result<Result<(Running, std::io::PipeReader), String>, PipelineError> {
        let (reader, writer) = std::io::pipe().map_err(|e| self.spawn_error(spec, &e))?;
        let err_writer = writer.try_clone().map_err(|e| self.spawn_error(spec, &e))?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(&spec.run)
            .current_dir(&self.dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(&spec.env)
            .env("ROLLWAY_JOB", &spec.name)
            .env("ROLLWAY_PIPELINE_RUN", run_id.to_string())
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(err_writer)
            .process_group(0);
        let now = self.store.clock().now();
        self.store.update_job(job.id, &mut |j| {
            j.transition(JobStatus::Running, now)
                .map_err(crate::deploy::model_err)?;
            Ok(vec![
                self.event(
                    EventKind::JobStarted,
                    Level::Info,
                    format!("job {} started", spec.name),
                    run_id,
                )
                .job(job.id)
                .data(json!({ "job": spec.name, "type": spec.job_type.as_str(), "run": spec.run })),
            ])
        })?;
        self.progress.job(&spec.name, JobStatus::Running, "");
        match cmd.spawn() {
            Ok(child) => {
                drop(cmd);
                Ok(Ok((
                    Running {
                        index,
                        child,
                        started: Instant::now(),
                        stop: AtomicBool::new(false),
                    },
                    reader,
                )))
            }
            Err(e) => {
                // A failure of the job, not of the run's bookkeeping.
                let why = format!("cannot start `sh -c`: {e}");
                self.store.append_job_log(job.id, &format!("{why}\n"))?;
                Ok(Err(why))
            }
        }
    }

    fn spawn_error(&self, spec: &JobSpec, e: &std::io::Error) -> PipelineError {
        PipelineError::Invalid(format!("cannot start job {}: {e}", spec.name))
    }

    /// Copies a job's output into its stored log through the masking
    /// filter, until the output closes or the job is over and quiet.
    fn pump(&self, job: JobId, reader: std::io::PipeReader, slot: &std::sync::Mutex<Option<Running>>) {
        let mut stream = self.masker.stream();
        let mut reader = reader;
        let mut buf = vec![0u8; 16 << 10];
        let stopped = || {
            slot.lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .is_none_or(|r| r.stop.load(Ordering::SeqCst))
        };
        let mut quiet_since: Option<Instant> = None;
        loop {
            let mut fds = [rustix::event::PollFd::new(&reader, rustix::event::PollFlags::IN)];
            let timeout = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 50_000_000,
            };
            let ready = rustix::event::poll(&mut fds, Some(&timeout)).unwrap_or(0);
            if ready == 0 {
                // Output still open (a background process holds it): once the
                // job itself ended, wait a moment for stragglers, then stop.
                if stopped() {
                    let since = *quiet_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_millis(300) {
                        break;
                    }
                }
                continue;
            }
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let out = stream.push(&buf[..n]);
                    if !out.is_empty() {
                        let _ = self.store.append_job_log(job, &String::from_utf8_lossy(&out));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let rest = stream.finish();
        if !rest.is_empty() {
            let _ = self.store.append_job_log(job, &String::from_utf8_lossy(&rest));
        }
    }

    fn finish_job(
        &self,
        job: &Job,
        spec: &JobSpec,
        to: JobStatus,
        code: Option<i32>,
        why: &str,
        run_id: PipelineRunId,
    ) -> Result<(), PipelineError> {
        // Give the reader a moment to store the last output before the
        // record says the job is over.
        if code.is_some() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let artifacts = if to == JobStatus::Success {
            self.job_artifacts(job, spec)
        } else {
            Ok(Vec::new())
        };
        let (to, why) = match artifacts {
            Ok(_) => (to, why.to_owned()),
            Err(e) => (JobStatus::Failure, e),
        };
        let (kind, level) = match to {
            JobStatus::Success => (EventKind::JobCompleted, Level::Info),
            JobStatus::Failure => (EventKind::JobFailed, Level::Error),
            _ => (EventKind::JobCancelled, Level::Warn),
        };
        let now = self.store.clock().now();
        self.store.update_job(job.id, &mut |j| {
            j.exit_code = code;
            j.transition(to, now).map_err(crate::deploy::model_err)?;
            Ok(vec![
                self.event(kind, level, format!("job {} ended {to}: {why}", spec.name), run_id)
                    .job(job.id)
                    .data(json!({ "job": spec.name, "status": to.as_str(), "exit_code": code, "reason": why })),
            ])
        })?;
        self.progress.job(&spec.name, to, &why);
        Ok(())
    }

    /// Packs each of a successful job's `artifacts` into an artifact record
    /// tied to the job; a missing path fails the job.
    fn job_artifacts(&self, job: &Job, spec: &JobSpec) -> Result<Vec<rollway_model::Artifact>, String> {
        let mut out = Vec::new();
        for path in &spec.artifacts {
            let source = self.dir.join(path);
            if !source.exists() {
                return Err(format!("artifact path {path} was not produced"));
            }
            let opts = rollway_artifact::PackOptions::new(&self.artifact_dir);
            let packed = rollway_artifact::pack(&source, &opts).map_err(|e| format!("packing {path}: {e}"))?;
            let now = self.store.clock().now();
            let record = packed.record(ArtifactKind::App, &self.source, now, self.artifact_expiry, Some(job.id));
            let ev = NewEvent::new(
                EventKind::ArtifactBuilt,
                Level::Info,
                format!("job {} produced artifact {} ({path})", spec.name, record.id),
            )
            .job(job.id)
            .pipeline_run(job.run_id)
            .operator(self.operator.clone())
            .data(json!({ "id": record.id, "path": path, "sha256": record.sha256, "size_bytes": record.size_bytes }));
            out.push(self.store.insert_artifact(&record, ev).map_err(|e| e.to_string())?);
        }
        Ok(out)
    }

    /// SIGTERM to a job's whole tree (its process group and every
    /// descendant, `setsid` ones too), SIGKILL to what is left after the grace.
    fn kill_job(&self, leader: u32, exempt: &[u32], leaders: &[u32]) {
        let tree = |leader: u32| -> Vec<u32> {
            let mut all = process::descendants(&[leader]);
            all.push(leader);
            // Orphans re-parented to us are ours to end too.
            all.extend(
                process::descendants(&[std::process::id()])
                    .into_iter()
                    .filter(|p| !exempt.contains(p)),
            );
            all.sort_unstable();
            all.dedup();
            all
        };
        for p in tree(leader) {
            process::signal(p, Signal::TERM);
            process::signal(p, Signal::CONT);
        }
        process::signal_group(leader, Signal::TERM);
        let deadline = Instant::now() + self.grace;
        while Instant::now() < deadline && tree(leader).iter().any(|p| process::is_alive(*p) && *p != leader) {
            self.reap_orphans(exempt, leaders);
            std::thread::sleep(Duration::from_millis(10));
        }
        for p in tree(leader) {
            process::signal(p, Signal::KILL);
        }
        process::signal_group(leader, Signal::KILL);
        self.reap_orphans(exempt, leaders);
    }

    fn cancel_all(&self, running: &[std::sync::Arc<std::sync::Mutex<Option<Running>>>], exempt: &[u32]) {
        let leaders: Vec<u32> = running
            .iter()
            .filter_map(|s| {
                s.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_ref()
                    .map(|r| r.child.id())
            })
            .collect();
        for leader in &leaders {
            self.kill_job(*leader, exempt, &leaders);
        }
    }

    /// Waits for (reaps) dead orphans our jobs left us, so none lingers as
    /// a zombie; job leaders are waited for by their `Child`.
    fn reap_orphans(&self, exempt: &[u32], leaders: &[u32]) {
        for p in process::descendants(&[std::process::id()]) {
            if exempt.contains(&p) || leaders.contains(&p) || process::is_alive(p) {
                continue;
            }
            if let Some(pid) = i32::try_from(p).ok().and_then(rustix::process::Pid::from_raw) {
                let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG);
            }
        }
    }
}
