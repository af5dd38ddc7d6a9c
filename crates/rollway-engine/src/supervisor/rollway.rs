//! `supervisor = "rollway"`: the client side of Rollway's own supervisor.
//! `start()` launches `rollway supervise` in its own session (through a
//! short-lived `--detach` parent, so init reaps it); `restart()` and `stop()`
//! signal it (SIGHUP, SIGTERM) and wait for it to act; the rest is read from
//! the files it keeps under `ROOT/.rollway/svc/NAME/`.

use std::fs::{self, File};
use std::process::{Command, Stdio};
use std::time::Duration;

use rustix::process::Signal;

use super::log::tail_lines;
use super::process::{is_alive, leads_group, signal, terminate_group};
use super::run::{SuperviseOptions, read_number, running_supervisor};
use super::{ServicePaths, ServiceSpec, Supervisor, SupervisorError, read_pid, read_starts, remove_quietly, wait_for};

/// How long a (re)launch may take to be counted before `start()`/`restart()` give up.
const LAUNCH_LIMIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct RollwaySupervisor {
    spec: ServiceSpec,
    options: SuperviseOptions,
}

impl RollwaySupervisor {
    pub fn new(spec: ServiceSpec) -> Self {
        Self::with_options(spec, SuperviseOptions::default())
    }

    /// With other backoff, grace and log-size settings (tests use short ones).
    pub fn with_options(spec: ServiceSpec, options: SuperviseOptions) -> Self {
        Self { spec, options }
    }

    fn resolved(&self) -> Result<(ServiceSpec, ServicePaths), SupervisorError> {
        self.spec.check_name()?;
        let spec = self.spec.absolute()?;
        let paths = ServicePaths::of(&spec);
        Ok((spec, paths))
    }

    fn prepared(&self) -> Result<(ServiceSpec, ServicePaths), SupervisorError> {
        let (spec, paths) = self.resolved()?;
        fs::create_dir_all(&paths.dir).map_err(|e| spec.io("create", &paths.dir, e))?;
        // The service's raw output lives here (output.log): owner only.
        {
            use std::os::unix::fs::PermissionsExt as _;
            fs::set_permissions(&paths.dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| spec.io("protect", &paths.dir, e))?;
        }
        Ok((spec, paths))
    }

    /// `Some(pid)` when a supervisor holds the service's lock (its pid when written).
    fn running(spec: &ServiceSpec, paths: &ServicePaths) -> Result<Option<Option<u32>>, SupervisorError> {
        running_supervisor(paths).map_err(|e| spec.io("lock", &paths.lock, e))
    }

    /// The supervisor's pid, waiting briefly for a just-started one to write it.
    fn supervisor_pid(paths: &ServicePaths, known: Option<u32>) -> Option<u32> {
        known.or_else(|| {
            let mut pid = None;
            wait_for(Duration::from_secs(2), Duration::from_millis(5), || {
                pid = read_pid(&paths.supervisor_pid);
                pid.is_some()
            });
            pid
        })
    }

    fn next_request(spec: &ServiceSpec, paths: &ServicePaths) -> Result<u64, SupervisorError> {
        let n = read_number(&paths.request).max(read_number(&paths.ack)) + 1;
        rollway_fs::write_atomic(&paths.request, format!("{n}\n").as_bytes(), None)
            .map_err(|e| spec.io("write", &paths.request, e))?;
        Ok(n)
    }

    /// Waits for the supervisor to acknowledge request `request`, then checks
    /// that the launch was counted. `gave_up` ends the wait early.
    fn wait_launched(
        spec: &ServiceSpec,
        paths: &ServicePaths,
        request: u64,
        before: u64,
        mut gave_up: impl FnMut() -> bool,
    ) -> Result<(), SupervisorError> {
        let acked = wait_for(LAUNCH_LIMIT, Duration::from_millis(5), || {
            read_number(&paths.ack) >= request || gave_up()
        }) && read_number(&paths.ack) >= request;
        let counted = read_starts(spec)? > before;
        if acked && counted {
            return Ok(());
        }
        let mut output = tail_lines(&paths.log, 5).unwrap_or_default();
        output.extend(tail_lines(&paths.supervisor_err, 5).unwrap_or_default());
        Err(SupervisorError::NotLaunched {
            service: spec.name.clone(),
            what: if acked {
                String::from("the exec wrapper refused to start the service")
            } else {
                format!(
                    "rollway supervise did not launch the service within {} s",
                    LAUNCH_LIMIT.as_secs()
                )
            },
            output: output.join("\n"),
            log: paths.log.clone(),
        })
    }

    /// A service left behind by a supervisor that was killed: its pid file
    /// names a live group leader working inside ROOT.
    fn orphan(spec: &ServiceSpec, paths: &ServicePaths) -> Option<u32> {
        let pid = read_pid(&paths.pid)?;
        let root = fs::canonicalize(&spec.root).ok()?;
        let cwd = fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
        (leads_group(pid) && cwd.starts_with(root)).then_some(pid)
    }

    fn end_orphan(&self, spec: &ServiceSpec, paths: &ServicePaths) {
        if let Some(pid) = Self::orphan(spec, paths) {
            terminate_group(pid, self.options.grace, || {});
        }
        remove_quietly(&paths.pid);
        remove_quietly(&paths.supervisor_pid);
    }

    fn launch(&self, spec: &ServiceSpec, paths: &ServicePaths) -> Result<(), SupervisorError> {
        self.end_orphan(spec, paths);
        spec.save(&paths.spec)?;
        let before = read_starts(spec)?;
        let request = Self::next_request(spec, paths)?;
        let err = File::create(&paths.supervisor_err).map_err(|e| spec.io("create", &paths.supervisor_err, e))?;
        let command = format!(
            "{} supervise --dir {} --detach",
            spec.rollway_exe.display(),
            paths.dir.display()
        );
        let status = Command::new(&spec.rollway_exe)
            .arg("supervise")
            .arg("--dir")
            .arg(&paths.dir)
            .arg("--detach")
            .args(self.options.to_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .status()
            .map_err(|source| SupervisorError::Spawn {
                service: spec.name.clone(),
                command: command.clone(),
                hint: String::from("check [service] and that the rollway binary exists on the host"),
                source,
            })?;
        if !status.success() {
            return Err(SupervisorError::Command {
                service: spec.name.clone(),
                command,
                status: status.to_string(),
                output: tail_lines(&paths.supervisor_err, 5).unwrap_or_default().join("\n"),
                hint: String::from("fix what it says and start again"),
            });
        }
        // A supervisor that died before launching anything has said why on stderr.
        Self::wait_launched(spec, paths, request, before, || {
            super::log::file_len(&paths.supervisor_err) > 0 && matches!(running_supervisor(paths), Ok(None))
        })
    }
}

impl Supervisor for RollwaySupervisor {
    fn start(&self) -> Result<(), SupervisorError> {
        let (spec, paths) = self.prepared()?;
        if Self::running(&spec, &paths)?.is_some() {
            return Ok(());
        }
        self.launch(&spec, &paths)
    }

    fn stop(&self) -> Result<(), SupervisorError> {
        let (spec, paths) = self.resolved()?;
        let running = Self::running(&spec, &paths)?;
        if let Some(pid) = running.and_then(|known| Self::supervisor_pid(&paths, known)) {
            signal(pid, Signal::TERM);
            let limit = self.options.grace + Duration::from_secs(5);
            let ended = wait_for(limit, Duration::from_millis(10), || {
                matches!(running_supervisor(&paths), Ok(None))
            });
            if !ended {
                signal(pid, Signal::KILL);
            }
            // The lock goes a moment before the process does.
            wait_for(Duration::from_secs(2), Duration::from_millis(5), || !is_alive(pid));
        }
        self.end_orphan(&spec, &paths);
        if let Some(pid) = Self::running(&spec, &paths)?.flatten() {
            return Err(SupervisorError::Config {
                service: spec.name.clone(),
                message: format!(
                    "rollway supervise (pid {pid}) did not stop; kill it and run stop again ({})",
                    paths.dir.display()
                ),
            });
        }
        Ok(())
    }

    fn restart(&self) -> Result<(), SupervisorError> {
        let (spec, paths) = self.prepared()?;
        let Some(known) = Self::running(&spec, &paths)? else {
            return self.launch(&spec, &paths);
        };
        spec.save(&paths.spec)?;
        let before = read_starts(&spec)?;
        let request = Self::next_request(&spec, &paths)?;
        let Some(pid) = Self::supervisor_pid(&paths, known) else {
            return Err(SupervisorError::Config {
                service: spec.name.clone(),
                message: format!(
                    "a supervisor holds {} but wrote no pid; stop the service and start it again",
                    paths.lock.display()
                ),
            });
        };
        signal(pid, Signal::HUP);
        Self::wait_launched(&spec, &paths, request, before, || {
            matches!(running_supervisor(&paths), Ok(None))
        })
    }

    fn restarts(&self) -> Result<u64, SupervisorError> {
        let (spec, _) = self.resolved()?;
        read_starts(&spec)
    }

    fn pid(&self) -> Result<Option<u32>, SupervisorError> {
        let (_, paths) = self.resolved()?;
        Ok(read_pid(&paths.pid).filter(|p| is_alive(*p)))
    }

    fn log_tail(&self, lines: usize) -> Result<Vec<String>, SupervisorError> {
        let (spec, paths) = self.resolved()?;
        tail_lines(&paths.log, lines).map_err(|e| spec.io("read", &paths.log, e))
    }
}
