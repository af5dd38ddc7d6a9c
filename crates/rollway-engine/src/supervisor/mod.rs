//! How a service is started, stopped and restarted on a host, and how its
//! starts are counted: Rollway's own supervisor, supervisord, systemd and a
//! plain command pair, all behind one `Supervisor` trait.
//!
//! Every supervisor launches the service through the exec wrapper
//! (`rollway exec --spec ROOT/.rollway/svc/NAME/spec.json`), which loads the
//! release's env file, sets `PORT` and counts each start in
//! `ROOT/.rollway/svc/NAME/starts`. `restart()` writes `spec.json` first, so
//! the relaunched service runs the current release with its env file.
//!
//! A service's name on a host is made of its project and environment plus
//! a short digest of those and its root ([`service_name`]), so two
//! environments of one project never share a supervisord program, a systemd
//! unit or a state directory, even when they share a host and a supervisor.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rollway_model::SupervisorKind;
use serde::{Deserialize, Serialize};

use crate::exec;

mod command;
mod log;
pub mod owner;
pub(crate) mod process;
mod rollway;
mod run;
mod supervisord;
mod systemd;

pub use command::CommandSupervisor;
pub use log::{DEFAULT_LOG_MAX_BYTES, LogChunk, LogCursor, read_new, tail_lines};
pub use owner::PortOwner;
pub use process::is_alive;
pub use rollway::RollwaySupervisor;
pub use run::{SuperviseOptions, spawn_detached, supervise};
pub use supervisord::SupervisordSupervisor;
pub use systemd::SystemdSupervisor;

/// Everything a host needs to run one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// The service name on the host, `[a-z0-9_-]`: the host agent sets it
    /// to [`service_name`] of `project`, `environment` and its root when
    /// `environment` is set (see [`ServiceSpec::identified`]).
    pub name: String,
    /// `project` in rollway.toml (empty in specs written before names held
    /// the environment).
    #[serde(default)]
    pub project: String,
    /// The environment this service belongs to (empty: `name` is used as is).
    #[serde(default)]
    pub environment: String,
    /// ROOT on this host.
    pub root: PathBuf,
    /// `[service] start`, run with `sh -c` in `ROOT/current`.
    pub command: String,
    pub port: u16,
    /// `ROOT/envs/<id>.env` of the current release.
    pub env_file: PathBuf,
    pub kind: SupervisorKind,
    pub supervisord_conf: Option<PathBuf>,
    pub supervisorctl: Option<String>,
    pub restart_cmd: Option<String>,
    pub restarts_cmd: Option<String>,
    /// The rollway binary on this host (for `rollway exec` / `rollway supervise`).
    pub rollway_exe: PathBuf,
}

/// The name of the service of `project`'s `environment` under `root` on a
/// host: `PROJECT-ENV-DIGEST`, each part cut down to `[a-z0-9_-]` (at most
/// 64 characters in all). The digest of the exact project, environment and
/// root keeps names apart that sanitizing or cutting would merge, and keeps
/// two roots on one host (one supervisord, one systemd) apart.
pub fn service_name(project: &str, environment: &str, root: &Path) -> String {
    use sha2::{Digest as _, Sha256};
    use std::os::unix::ffi::OsStrExt as _;
    let mut h = Sha256::new();
    for part in [project.as_bytes(), environment.as_bytes(), root.as_os_str().as_bytes()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    let digest: String = h.finalize()[..4].iter().map(|b| format!("{b:02x}")).collect();
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect()
    };
    let mut base = format!("{}-{}", clean(project), clean(environment));
    // 64 at most: the base, '-', eight hex digits.
    base.truncate(64 - 9);
    if base.starts_with('-') {
        base.replace_range(0..1, "s");
    }
    format!("{base}-{digest}")
}

impl ServiceSpec {
    /// The spec with its host-side name: [`service_name`] of its project
    /// (or, when empty, its name), environment and root. Specs without an
    /// environment keep their name.
    pub fn identified(mut self) -> Self {
        if !self.environment.is_empty() {
            let project = if self.project.is_empty() {
                &self.name
            } else {
                &self.project
            };
            self.name = service_name(project, &self.environment, &self.root);
        }
        self
    }

    /// Reads a spec written by [`ServiceSpec::save`].
    pub fn load(path: &Path) -> Result<Self, SupervisorError> {
        let text = fs::read_to_string(path).map_err(|e| SupervisorError::Spec {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
        serde_json::from_str(&text).map_err(|e| SupervisorError::Spec {
            path: path.to_owned(),
            detail: format!("not a service spec ({e})"),
        })
    }

    /// Writes the spec as JSON (temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<(), SupervisorError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| SupervisorError::Config {
            service: self.name.clone(),
            message: format!("cannot encode the service spec: {e}"),
        })?;
        rollway_fs::write_atomic(path, text.as_bytes(), None).map_err(|source| self.io("write", path, source))
    }

    /// The same spec with `root`, `env_file` and `rollway_exe` made absolute
    /// (against the current directory), so it means the same thing to a
    /// supervisor that runs elsewhere.
    pub fn absolute(&self) -> Result<Self, SupervisorError> {
        let abs = |p: &Path| std::path::absolute(p).map_err(|source| self.io("resolve", p, source));
        let mut spec = self.clone();
        spec.root = abs(&self.root)?;
        spec.env_file = abs(&self.env_file)?;
        if self.rollway_exe.components().count() > 1 {
            spec.rollway_exe = abs(&self.rollway_exe)?;
        }
        if let Some(c) = &self.supervisord_conf {
            spec.supervisord_conf = Some(abs(c)?);
        }
        Ok(spec)
    }

    /// Refuses names that could escape `svc/` or break a config file.
    pub fn check_name(&self) -> Result<(), SupervisorError> {
        let ok = !self.name.is_empty()
            && self.name.len() <= 64
            && !self.name.starts_with('-')
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(())
        } else {
            Err(SupervisorError::Config {
                service: self.name.clone(),
                message: String::from(
                    "a service name is 1 to 64 characters of [a-z0-9_-], not starting with '-'; fix `project` in rollway.toml",
                ),
            })
        }
    }

    pub(crate) fn io(&self, action: &'static str, path: &Path, source: io::Error) -> SupervisorError {
        SupervisorError::Io {
            service: self.name.clone(),
            action,
            path: path.to_owned(),
            source,
        }
    }
}

/// The files of one service under `ROOT/.rollway/svc/NAME/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePaths {
    pub dir: PathBuf,
    /// The spec the service runs (read by `rollway exec --spec` and `rollway supervise`).
    pub spec: PathBuf,
    /// The start counter, one per launch through the exec wrapper.
    pub starts: PathBuf,
    /// The service's pid (its process group id too).
    pub pid: PathBuf,
    /// Written by the exec wrapper just before it becomes the service:
    /// `PID START_TIME` (start time in clock ticks since boot, so a reused
    /// pid is not taken for the service). Kept under every supervisor.
    pub exec_pid: PathBuf,
    /// Rollway's supervisor's pid.
    pub supervisor_pid: PathBuf,
    /// The service's stdout and stderr.
    pub log: PathBuf,
    /// Held (flock) by the running supervisor: at most one per service.
    pub lock: PathBuf,
    /// The newest request to (re)launch, a number, written before signalling.
    pub request: PathBuf,
    /// The newest request the supervisor has launched (and seen counted).
    pub ack: PathBuf,
    /// The supervisor's own stderr (errors before its log is open).
    pub supervisor_err: PathBuf,
}

impl ServicePaths {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            spec: dir.join("spec.json"),
            starts: dir.join("starts"),
            pid: dir.join("pid"),
            exec_pid: dir.join("exec.pid"),
            supervisor_pid: dir.join("supervisor.pid"),
            log: dir.join("output.log"),
            lock: dir.join("supervisor.lock"),
            request: dir.join("request"),
            ack: dir.join("ack"),
            supervisor_err: dir.join("supervisor.err"),
            dir,
        }
    }

    /// `ROOT/.rollway/svc/NAME/`.
    pub fn of(spec: &ServiceSpec) -> Self {
        Self::new(crate::layout::HostLayout::new(&spec.root).service(&spec.name))
    }
}

/// How a service is driven on a host.
pub trait Supervisor: Send + Sync + std::fmt::Debug {
    /// Starts the service unless it runs (then nothing changes).
    fn start(&self) -> Result<(), SupervisorError>;
    /// Ends the whole process tree of the service.
    fn stop(&self) -> Result<(), SupervisorError>;
    /// Relaunches the service with the spec as it is now (starts it if not
    /// running). Returns once the new launch is counted in `restarts()`.
    fn restart(&self) -> Result<(), SupervisorError>;
    /// A monotone count of the service's starts. The deployer reads it right
    /// after its own restart as a baseline; any increase afterwards is a
    /// restart it did not ask for (a crash).
    fn restarts(&self) -> Result<u64, SupervisorError>;
    fn pid(&self) -> Result<Option<u32>, SupervisorError>;
    /// The service's last output lines, oldest first.
    fn log_tail(&self, lines: usize) -> Result<Vec<String>, SupervisorError>;
    /// Ends the service for good: stops it and removes what this
    /// supervisor keeps for it (a program section, a unit), so that it
    /// never starts again. Used when the service's name or supervisor
    /// changed; a same-named service of another root is left alone.
    fn retire(&self) -> Result<(), SupervisorError> {
        self.stop()
    }
}

/// The supervisor `spec.kind` names.
pub fn supervisor(spec: ServiceSpec) -> Box<dyn Supervisor> {
    match spec.kind {
        SupervisorKind::Rollway => Box::new(RollwaySupervisor::new(spec)),
        SupervisorKind::Supervisord => Box::new(SupervisordSupervisor::new(spec)),
        SupervisorKind::Systemd => Box::new(SystemdSupervisor::new(spec)),
        SupervisorKind::Command => Box::new(CommandSupervisor::new(spec)),
    }
}

/// Every error names the service; most name a path or command and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("service {service}: cannot {action} {path}: {source}; check that the directory exists and is writable")]
    Io {
        service: String,
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("service {service}: cannot run `{command}`: {source}; {hint}")]
    Spawn {
        service: String,
        command: String,
        hint: String,
        #[source]
        source: io::Error,
    },
    #[error("service {service}: `{command}` failed ({status}){}; {hint}", output_suffix(output))]
    Command {
        service: String,
        command: String,
        status: String,
        output: String,
        hint: String,
    },
    #[error("service {service}: `{command}` printed {output:?}, expected a number; {hint}")]
    Parse {
        service: String,
        command: String,
        output: String,
        hint: String,
    },
    #[error("service {service}: {message}")]
    Config { service: String, message: String },
    #[error("service {service}: {what}{}; see {log}", output_suffix(output))]
    NotLaunched {
        service: String,
        what: String,
        /// The last lines of the service's log (the CLI and the store mask them).
        output: String,
        log: PathBuf,
    },
    #[error("service {service}: supervisor = \"{kind}\" cannot {op}; {hint}")]
    Unsupported {
        service: String,
        kind: &'static str,
        op: &'static str,
        hint: &'static str,
    },
    #[error("cannot read the service spec {path}: {detail}; start the service again to rewrite it")]
    Spec { path: PathBuf, detail: String },
    #[error("service {service}: {source}")]
    Counter {
        service: String,
        #[source]
        source: exec::ExecError,
    },
}

fn output_suffix(output: &str) -> String {
    let trimmed = output.trim();
    if trimmed.is_empty() {
        String::new()
    } else {
        format!(": {trimmed}")
    }
}

/// The start counter of a service (0 before its first start).
pub(crate) fn read_starts(spec: &ServiceSpec) -> Result<u64, SupervisorError> {
    exec::read_counter(&ServicePaths::of(spec).starts).map_err(|source| SupervisorError::Counter {
        service: spec.name.clone(),
        source,
    })
}

/// Runs `sh -c COMMAND` with stdin closed and returns its output (stdout
/// then stderr) and whether it succeeded.
pub(crate) fn run_sh(
    spec: &ServiceSpec,
    command: &str,
    configure: impl FnOnce(&mut std::process::Command),
) -> Result<(String, std::process::ExitStatus), SupervisorError> {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(command).stdin(std::process::Stdio::null());
    configure(&mut cmd);
    let output = cmd.output().map_err(|source| SupervisorError::Spawn {
        service: spec.name.clone(),
        command: command.to_owned(),
        hint: String::from("check that sh exists on the host"),
        source,
    })?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Ok((text, output.status))
}

/// Reads a pid file; missing or unreadable content is no pid.
pub(crate) fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok().filter(|p| *p > 1)
}

/// Removes a file that may not exist.
pub(crate) fn remove_quietly(path: &Path) {
    let _ = fs::remove_file(path);
}

/// Polls `ready` every `every` until it holds or `limit` has passed. Real
/// processes run on real time, so this waits on the monotonic clock rather
/// than on a `Clock`.
pub(crate) fn wait_for(limit: Duration, every: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// After a supervisor was told to (re)start the service, waits until the
/// exec wrapper has counted the launch, so a baseline read next is exact.
pub(crate) fn wait_counted(spec: &ServiceSpec, before: u64, limit: Duration) -> Result<(), SupervisorError> {
    let paths = ServicePaths::of(spec);
    let counted = wait_for(limit, Duration::from_millis(5), || {
        exec::read_counter(&paths.starts).is_ok_and(|n| n > before)
    });
    if counted {
        Ok(())
    } else {
        Err(SupervisorError::NotLaunched {
            service: spec.name.clone(),
            what: format!(
                "the service was not launched through `rollway exec` within {} s",
                limit.as_secs()
            ),
            output: tail_lines(&paths.log, 5).unwrap_or_default().join("\n"),
            log: paths.log,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    pub(crate) fn spec(root: &Path, kind: SupervisorKind) -> ServiceSpec {
        ServiceSpec {
            name: String::from("hello"),
            project: String::new(),
            environment: String::new(),
            root: root.to_owned(),
            command: String::from("exec /usr/bin/python3 -m http.server $PORT"),
            port: 3000,
            env_file: root.join("envs/01.env"),
            kind,
            supervisord_conf: Some(root.join("conf.d")),
            supervisorctl: Some(String::from("supervisorctl -c /etc/supervisord.conf")),
            restart_cmd: None,
            restarts_cmd: None,
            rollway_exe: PathBuf::from("/usr/local/bin/rollway"),
        }
    }

    #[test]
    fn names_are_checked() {
        let d = tempfile::tempdir().unwrap();
        for (name, ok) in [
            ("hello", true),
            ("my-app_2", true),
            ("", false),
            ("Hello", false),
            ("../x", false),
            ("-x", false),
            ("a b", false),
        ] {
            let mut s = spec(d.path(), SupervisorKind::Rollway);
            s.name = name.to_owned();
            assert_eq!(s.check_name().is_ok(), ok, "{name:?}");
        }
    }

    #[test]
    fn names_hold_project_environment_and_root() {
        let root = Path::new("/srv/hello");
        let a = service_name("hello", "staging", root);
        assert!(a.starts_with("hello-staging-"), "{a}");
        assert_eq!(a.len(), "hello-staging-".len() + 8);
        let mut names = vec![
            a.clone(),
            service_name("hello", "remote", root),
            service_name("hello", "staging", Path::new("/srv/hello2")),
            // Sanitizing merges these bases; the digest keeps them apart.
            service_name("a-b", "c", root),
            service_name("a", "b-c", root),
            service_name("Hello.app", "prod", root),
            service_name("hello-app", "prod", root),
        ];
        assert_eq!(service_name("hello", "staging", root), a, "stable");
        let long = service_name(&"x".repeat(80), "production", root);
        assert_eq!(long.len(), 64, "{long}");
        names.push(long);
        let d = tempfile::tempdir().unwrap();
        for n in &names {
            let mut s = spec(d.path(), SupervisorKind::Rollway);
            s.name.clone_from(n);
            assert!(s.check_name().is_ok(), "{n}");
        }
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count, "{names:?}");
        // `identified` names a spec with an environment, and only those.
        let mut s = spec(root, SupervisorKind::Supervisord);
        assert_eq!(s.clone().identified().name, "hello");
        s.environment = String::from("staging");
        assert_eq!(s.clone().identified().name, a);
        s.project = String::from("other");
        assert_eq!(s.identified().name, service_name("other", "staging", root));
    }

    #[test]
    fn spec_round_trips_and_paths_are_under_root() {
        let d = tempfile::tempdir().unwrap();
        let s = spec(d.path(), SupervisorKind::Supervisord);
        let p = ServicePaths::of(&s);
        assert_eq!(p.dir, d.path().join(".rollway/svc/hello"));
        assert_eq!(p.starts, d.path().join(".rollway/svc/hello/starts"));
        s.save(&p.spec).unwrap();
        assert_eq!(ServiceSpec::load(&p.spec).unwrap(), s);
        let text = fs::read_to_string(&p.spec).unwrap();
        assert!(text.contains("\"kind\": \"supervisord\""), "{text}");
        fs::write(&p.spec, "{").unwrap();
        let e = ServiceSpec::load(&p.spec).unwrap_err().to_string();
        assert!(e.contains("spec.json: not a service spec"), "{e}");
    }

    #[test]
    fn relative_paths_become_absolute() {
        let mut s = spec(Path::new("rel/root"), SupervisorKind::Rollway);
        s.env_file = PathBuf::from("rel/root/envs/1.env");
        s.rollway_exe = PathBuf::from("rollway");
        let a = s.absolute().unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(a.root, cwd.join("rel/root"));
        assert_eq!(a.env_file, cwd.join("rel/root/envs/1.env"));
        // A bare program name stays a PATH lookup.
        assert_eq!(a.rollway_exe, PathBuf::from("rollway"));
    }
}
