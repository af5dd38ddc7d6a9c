//! The body of `rollway supervise`: Rollway's own supervisor. It runs in a
//! session of its own (so it outlives the CLI, its terminal and its Ctrl-C),
//! launches the service through `rollway exec` as the leader of a new
//! process group, appends its output to a capped log, relaunches it with
//! backoff when it exits, relaunches it at once on SIGHUP (a restart request)
//! and ends the whole group on SIGTERM.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::fs::{FlockOperation, flock};
use rustix::pipe::{PipeFlags, pipe_with};

use super::log::{CappedLog, DEFAULT_LOG_MAX_BYTES};
use super::process::terminate_group;
use super::{ServicePaths, ServiceSpec, SupervisorError, read_pid, remove_quietly};
use crate::exec;

/// Tunables of the supervisor, passed on its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuperviseOptions {
    /// The output log keeps its newest this many bytes.
    pub log_max_bytes: u64,
    /// Between SIGTERM and SIGKILL when stopping the service.
    pub grace: Duration,
    /// The first relaunch delay after an exit, doubled on each further exit…
    pub backoff_min: Duration,
    /// …up to this,
    pub backoff_max: Duration,
    /// …and back to `backoff_min` once the service had run this long.
    pub backoff_reset: Duration,
}

impl Default for SuperviseOptions {
    fn default() -> Self {
        Self {
            log_max_bytes: DEFAULT_LOG_MAX_BYTES,
            grace: Duration::from_secs(5),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            backoff_reset: Duration::from_secs(10),
        }
    }
}

impl SuperviseOptions {
    /// The `rollway supervise` flags that carry these options.
    pub fn to_args(&self) -> Vec<String> {
        let ms = |d: Duration| d.as_millis().to_string();
        vec![
            format!("--log-max-bytes={}", self.log_max_bytes),
            format!("--grace-ms={}", ms(self.grace)),
            format!("--backoff-min-ms={}", ms(self.backoff_min)),
            format!("--backoff-max-ms={}", ms(self.backoff_max)),
            format!("--backoff-reset-ms={}", ms(self.backoff_reset)),
        ]
    }
}

/// Takes the supervisor lock of a service directory without waiting:
/// `Some(file)` holds it until dropped, `None` means a supervisor holds it.
pub(crate) fn try_lock(path: &Path) -> io::Result<Option<File>> {
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A number kept in a file (restart requests and their acknowledgements); 0 when missing.
pub(crate) fn read_number(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// Spawns `exe supervise --dir DIR …` and returns without waiting for it:
/// what `rollway supervise --detach` does, so the real supervisor's parent
/// exits at once and nobody is left to reap it but init.
pub fn spawn_detached(exe: &Path, dir: &Path, options: &SuperviseOptions) -> Result<u32, SupervisorError> {
    let child = Command::new(exe)
        .arg("supervise")
        .arg("--dir")
        .arg(dir)
        .args(options.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|source| SupervisorError::Spawn {
            service: service_name(dir),
            command: format!("{} supervise", exe.display()),
            hint: String::from("check that the rollway binary exists and is executable"),
            source,
        })?;
    Ok(child.id())
}

fn service_name(dir: &Path) -> String {
    dir.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// The service's output log, shared with the threads copying its output.
type SharedLog = Arc<Mutex<CappedLog>>;

fn note(log: &SharedLog, message: &str) {
    let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
    let _ = log.write(format!("[rollway supervise] {message}\n").as_bytes());
}

/// Copies the service's output into the log until every writer has closed it.
fn copy_output(mut from: File, log: SharedLog) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
                let _ = log.write(&buf[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Gives the output copier a moment to reach the end of the pipe, so the
/// log is complete before the supervisor's own notes follow it. Bounded: a
/// process that escaped the group may hold the pipe open for good.
fn drain(copier: &JoinHandle<()>) {
    super::wait_for(Duration::from_secs(1), Duration::from_millis(2), || {
        copier.is_finished()
    });
}

/// Why the supervisor stopped watching one launch of the service.
enum Outcome {
    Stop,
    Restart,
    Exited(ExitStatus),
}

struct Signals {
    term: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
}

impl Signals {
    fn register() -> io::Result<Self> {
        let term = Arc::new(AtomicBool::new(false));
        let hup = Arc::new(AtomicBool::new(false));
        for sig in [
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGQUIT,
        ] {
            signal_hook::flag::register(sig, Arc::clone(&term))?;
        }
        signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))?;
        Ok(Self { term, hup })
    }

    fn term(&self) -> bool {
        self.term.load(Ordering::SeqCst)
    }
}

/// Runs the supervisor of the service whose state is in `dir` until it is
/// told to stop. Returns at once when another supervisor already runs it.
pub fn supervise(dir: &Path, options: &SuperviseOptions) -> Result<(), SupervisorError> {
    let service = service_name(dir);
    let io_err = |action: &'static str, path: &Path, source: io::Error| SupervisorError::Io {
        service: service.clone(),
        action,
        path: path.to_owned(),
        source,
    };
    let dir = std::path::absolute(dir).map_err(|e| io_err("resolve", dir, e))?;
    let paths = ServicePaths::new(dir.clone());
    // A session of its own: no controlling terminal, no Ctrl-C from the CLI.
    // Already being a session leader (started by hand from a fresh session) is fine.
    if let Err(e) = rustix::process::setsid() {
        let own = rustix::process::getpid();
        if rustix::process::getsid(None).ok() != Some(own) {
            return Err(io_err("start a new session for", &dir, e.into()));
        }
    }
    // Holding no directory busy (a release may be removed under us).
    std::env::set_current_dir("/").map_err(|e| io_err("enter", Path::new("/"), e))?;
    let Some(_lock) = try_lock(&paths.lock).map_err(|e| io_err("lock", &paths.lock, e))? else {
        return Ok(());
    };
    let signals = Signals::register().map_err(|e| io_err("handle signals for", &dir, e))?;
    let log: SharedLog = Arc::new(Mutex::new(
        CappedLog::open(&paths.log, options.log_max_bytes).map_err(|e| io_err("open", &paths.log, e))?,
    ));
    rollway_fs::write_atomic(
        &paths.supervisor_pid,
        format!("{}\n", std::process::id()).as_bytes(),
        None,
    )
    .map_err(|e| io_err("write", &paths.supervisor_pid, e))?;
    let result = Supervision {
        paths: &paths,
        options,
        log: &log,
        signals: &signals,
        acked: read_number(&paths.ack),
    }
    .run();
    remove_quietly(&paths.pid);
    remove_quietly(&paths.supervisor_pid);
    if let Err(e) = &result {
        note(&log, &format!("stopped: {e}"));
    }
    result
}

struct Supervision<'a> {
    paths: &'a ServicePaths,
    options: &'a SuperviseOptions,
    log: &'a SharedLog,
    signals: &'a Signals,
    /// The newest restart request launched.
    acked: u64,
}

impl Supervision<'_> {
    fn run(&mut self) -> Result<(), SupervisorError> {
        let mut backoff = self.options.backoff_min;
        while !self.signals.term() {
            // Any restart request pending now is served by this launch.
            self.signals.hup.store(false, Ordering::SeqCst);
            let request = read_number(&self.paths.request);
            let spec = ServiceSpec::load(&self.paths.spec)?;
            let started = Instant::now();
            let before = exec::read_counter(&self.paths.starts).unwrap_or(0);
            let outcome = match self.launch(&spec) {
                Ok((mut child, copier)) => {
                    self.wait_counted(&mut child, &copier, before);
                    self.ack(request);
                    let outcome = self.watch(&mut child);
                    self.end_group(&mut child, &copier, &outcome);
                    Some(outcome)
                }
                Err(e) => {
                    note(self.log, &e.to_string());
                    self.ack(request);
                    None
                }
            };
            remove_quietly(&self.paths.pid);
            match outcome {
                Some(Outcome::Stop) => break,
                Some(Outcome::Restart) => {
                    backoff = self.options.backoff_min;
                    continue;
                }
                Some(Outcome::Exited(_)) | None => {}
            }
            if started.elapsed() >= self.options.backoff_reset {
                backoff = self.options.backoff_min;
            }
            note(self.log, &format!("relaunching in {} ms", backoff.as_millis()));
            self.pause(backoff);
            backoff = (backoff * 2).min(self.options.backoff_max);
        }
        note(self.log, "stopped");
        Ok(())
    }

    /// Starts `rollway exec --spec …` as the leader of a new process group,
    /// its stdout and stderr both into one pipe copied to the log.
    fn launch(&self, spec: &ServiceSpec) -> Result<(Child, JoinHandle<()>), SupervisorError> {
        let command = format!(
            "{} exec --spec {}",
            spec.rollway_exe.display(),
            self.paths.spec.display()
        );
        let spawn_err = |source: io::Error| SupervisorError::Spawn {
            service: spec.name.clone(),
            command: command.clone(),
            hint: String::from("check that the rollway binary named in the spec exists and is executable"),
            source,
        };
        let (read, write) = pipe_with(PipeFlags::CLOEXEC).map_err(|e| spawn_err(e.into()))?;
        let write_err = write.try_clone().map_err(spawn_err)?;
        // The Command owns the parent's copies of the write end; it must be
        // dropped after spawning, or the copier would never see the end.
        let child = Command::new(&spec.rollway_exe)
            .arg("exec")
            .arg("--spec")
            .arg(&self.paths.spec)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::from(write))
            .stderr(Stdio::from(write_err))
            .spawn()
            .map_err(spawn_err)?;
        let log = Arc::clone(self.log);
        let reader = File::from(read);
        let copier = std::thread::spawn(move || copy_output(reader, log));
        // The pid file is best effort: the service runs either way.
        if let Err(e) = rollway_fs::write_atomic(&self.paths.pid, format!("{}\n", child.id()).as_bytes(), None) {
            note(self.log, &format!("cannot write {}: {e}", self.paths.pid.display()));
        }
        Ok((child, copier))
    }

    /// Waits until the exec wrapper counted this launch (the counter passed
    /// `before`, read before spawning) or refused and exited, so whoever
    /// asked for the launch reads an exact count afterwards.
    fn wait_counted(&self, child: &mut Child, copier: &JoinHandle<()>, before: u64) {
        super::wait_for(Duration::from_secs(10), Duration::from_millis(2), || {
            exec::read_counter(&self.paths.starts).is_ok_and(|n| n > before)
                || matches!(child.try_wait(), Ok(Some(_)))
                || self.signals.term()
        });
        // A refusal is read from the log right after the acknowledgement.
        if matches!(child.try_wait(), Ok(Some(_))) {
            drain(copier);
        }
    }

    fn ack(&mut self, request: u64) {
        if request > self.acked {
            self.acked = request;
        }
        if let Err(e) = rollway_fs::write_atomic(&self.paths.ack, format!("{}\n", self.acked).as_bytes(), None) {
            note(self.log, &format!("cannot write {}: {e}", self.paths.ack.display()));
        }
    }

    fn watch(&self, child: &mut Child) -> Outcome {
        loop {
            if self.signals.term() {
                return Outcome::Stop;
            }
            // A SIGHUP whose request an earlier launch already served is stale.
            if self.signals.hup.swap(false, Ordering::SeqCst) && read_number(&self.paths.request) > self.acked {
                return Outcome::Restart;
            }
            match child.try_wait() {
                Ok(Some(status)) => return Outcome::Exited(status),
                Ok(None) => {}
                Err(e) => {
                    note(self.log, &format!("cannot wait for the service: {e}"));
                    return Outcome::Stop;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Ends what is left of the launch's process group: all of it on stop or
    /// restart, and the orphans of a service that exited (they could hold
    /// its port).
    fn end_group(&self, child: &mut Child, copier: &JoinHandle<()>, outcome: &Outcome) {
        let pgid = child.id();
        match outcome {
            Outcome::Stop => note(self.log, "stopping the service"),
            Outcome::Restart => note(self.log, "restarting the service (requested)"),
            Outcome::Exited(_) => {}
        }
        terminate_group(pgid, self.options.grace, || {
            let _ = child.try_wait();
        });
        let _ = child.wait();
        drain(copier);
        if let Outcome::Exited(status) = outcome {
            note(self.log, &format!("the service exited: {status}"));
        }
    }

    /// Sleeps, cut short by a stop or a restart request.
    fn pause(&self, d: Duration) {
        super::wait_for(d, Duration::from_millis(10), || {
            self.signals.term() || self.signals.hup.load(Ordering::SeqCst)
        });
    }
}

/// The pid in a service's `supervisor.pid` when that supervisor holds the lock.
pub(crate) fn running_supervisor(paths: &ServicePaths) -> Result<Option<Option<u32>>, io::Error> {
    if !paths.lock.exists() {
        return Ok(None);
    }
    match try_lock(&paths.lock)? {
        Some(_free) => Ok(None),
        None => Ok(Some(read_pid(&paths.supervisor_pid))),
    }
}
