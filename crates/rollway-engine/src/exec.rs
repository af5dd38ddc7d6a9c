//! The exec wrapper behind `rollway exec`: every supervisor starts a service
//! through it, so the service gets exactly its release's env file plus `PORT`
//! and a few basics — never the deployer's environment — and every start is
//! counted in the service's start counter.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use rollway_secrets::DotenvError;

use crate::supervisor::{ServicePaths, ServiceSpec};

/// `PATH` when the caller has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The only variables a service takes from whoever started it; everything
/// else comes from the env file.
pub const INHERITED_VARS: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME"];

/// What to start, where, with which env file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSpec {
    pub env_file: PathBuf,
    pub port: u16,
    /// The working directory (a release, usually through `ROOT/current`).
    pub dir: PathBuf,
    /// The start counter to increment (`ROOT/.rollway/svc/NAME/starts`).
    pub counter: Option<PathBuf>,
    pub program: OsString,
    pub args: Vec<OsString>,
}

impl ExecSpec {
    /// `sh -c COMMAND` in `ROOT/current`, counted in the service's start counter.
    pub fn for_service(spec: &ServiceSpec) -> Self {
        Self {
            env_file: spec.env_file.clone(),
            port: spec.port,
            dir: crate::layout::HostLayout::new(&spec.root).current(),
            counter: Some(ServicePaths::of(spec).starts),
            program: OsString::from("sh"),
            args: vec![OsString::from("-c"), OsString::from(&spec.command)],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("cannot read the env file {path}: {source}; deploy the release again to write it")]
    ReadEnv {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("refusing to start: the env file is malformed:\n{errors}\nfix the variables and deploy again")]
    ParseEnv { errors: DotenvError },
    #[error("cannot start in {dir}: {source}; is a release switched in there?")]
    Dir {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot update the start counter {path}: {source}; check that the directory is writable")]
    Counter {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the start counter {path} holds {content:?}, not a number; remove the file to restart the count")]
    CounterCorrupt { path: PathBuf, content: String },
    #[error("cannot read the service spec {path}: {detail}; start the service again to rewrite it")]
    Spec { path: PathBuf, detail: String },
    #[error("cannot run {program:?} in {dir}: {source}")]
    Exec {
        program: OsString,
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Reads and parses an env file; a malformed file is refused with every
/// problem as `FILE:LINE:COL: message` (never a value).
pub fn load_env_file(path: &Path) -> Result<Vec<(String, String)>, ExecError> {
    let text = fs::read_to_string(path).map_err(|source| ExecError::ReadEnv {
        path: path.to_owned(),
        source,
    })?;
    rollway_secrets::parse_dotenv(&text).map_err(|e| ExecError::ParseEnv {
        errors: e.with_origin(path.display().to_string()),
    })
}

/// The service's whole environment: the allow-listed basics from
/// `inherited` (PATH defaulting to [`DEFAULT_PATH`]), then the env file's
/// entries, then `PORT`, each overriding what came before.
pub fn service_env<I>(inherited: I, file: &[(String, String)], port: u16) -> BTreeMap<OsString, OsString>
where
    I: IntoIterator<Item = (OsString, OsString)>,
{
    let mut env: BTreeMap<OsString, OsString> = inherited
        .into_iter()
        .filter(|(k, _)| INHERITED_VARS.iter().any(|a| OsStr::new(a) == k))
        .collect();
    env.entry(OsString::from("PATH"))
        .or_insert_with(|| OsString::from(DEFAULT_PATH));
    for (k, v) in file {
        env.insert(OsString::from(k), OsString::from(v));
    }
    env.insert(OsString::from("PORT"), OsString::from(port.to_string()));
    env
}

/// The counter's value; a missing file is 0.
pub fn read_counter(path: &Path) -> Result<u64, ExecError> {
    match fs::read_to_string(path) {
        Ok(text) => text.trim().parse().map_err(|_| ExecError::CounterCorrupt {
            path: path.to_owned(),
            content: text.chars().take(40).collect(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(source) => Err(ExecError::Counter {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Adds one to the counter (creating it), writing a temporary file and
/// renaming it over, so a reader never sees a torn number. Returns the new value.
pub fn increment_counter(path: &Path) -> Result<u64, ExecError> {
    let next = read_counter(path)?.saturating_add(1);
    let io_err = |source| ExecError::Counter {
        path: path.to_owned(),
        source,
    };
    rollway_fs::write_atomic(path, format!("{next}\n").as_bytes(), None).map_err(io_err)?;
    Ok(next)
}

/// Builds the command the wrapper will become: checks the directory and the
/// env file first, so a refusal happens before anything is counted.
pub fn prepare(spec: &ExecSpec) -> Result<Command, ExecError> {
    let entries = load_env_file(&spec.env_file)?;
    let dir = fs::canonicalize(&spec.dir).map_err(|source| ExecError::Dir {
        dir: spec.dir.clone(),
        source,
    })?;
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .env_clear()
        .envs(service_env(std::env::vars_os(), &entries, spec.port))
        .current_dir(dir);
    Ok(cmd)
}

/// Replaces this process with the service. Returns only on failure.
pub fn exec(spec: &ExecSpec) -> ExecError {
    let mut cmd = match prepare(spec) {
        Ok(cmd) => cmd,
        Err(e) => return e,
    };
    if let Some(counter) = spec.counter.as_deref() {
        if let Err(e) = increment_counter(counter) {
            return e;
        }
        // Beside the counter (`ROOT/.rollway/svc/NAME/exec.pid`): this pid
        // becomes the service, so the boot check can tell its sockets from
        // an old process's under any supervisor.
        crate::supervisor::owner::record_exec_pid(&counter.with_file_name("exec.pid"));
    }
    let source = cmd.exec();
    ExecError::Exec {
        program: spec.program.clone(),
        dir: spec.dir.clone(),
        source,
    }
}

/// Reads the service spec a supervisor wrote and execs its command.
pub fn exec_service(spec_path: &Path) -> ExecError {
    match ServiceSpec::load(spec_path) {
        Ok(spec) => exec(&ExecSpec::for_service(&spec)),
        Err(crate::supervisor::SupervisorError::Spec { path, detail }) => ExecError::Spec { path, detail },
        Err(e) => ExecError::Spec {
            path: spec_path.to_owned(),
            detail: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn check_env(inherited: &[(&str, &str)], file: &[(&str, &str)], port: u16, expected: &[(&str, &str)]) {
        let inherited = inherited.iter().map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let file: Vec<(String, String)> = file.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let got = service_env(inherited, &file, port);
        let want: BTreeMap<OsString, OsString> = expected
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn environment_is_the_allow_list_plus_the_file_plus_port() {
        check_env(
            &[("AWS_SECRET_ACCESS_KEY", "leak"), ("HOME", "/root"), ("PATH", "/bin")],
            &[("DATABASE_URL", "postgres://x")],
            3000,
            &[
                ("DATABASE_URL", "postgres://x"),
                ("HOME", "/root"),
                ("PATH", "/bin"),
                ("PORT", "3000"),
            ],
        );
        check_env(&[("TERM", "xterm")], &[], 80, &[("PATH", DEFAULT_PATH), ("PORT", "80")]);
        check_env(
            &[
                ("LANG", "C.UTF-8"),
                ("LC_ALL", "C"),
                ("TZ", "UTC"),
                ("USER", "u"),
                ("LOGNAME", "u"),
                ("SSH_AUTH_SOCK", "/s"),
            ],
            &[("PORT", "1"), ("TZ", "Europe/Paris")],
            8080,
            &[
                ("LANG", "C.UTF-8"),
                ("LC_ALL", "C"),
                ("LOGNAME", "u"),
                ("PATH", DEFAULT_PATH),
                ("PORT", "8080"),
                ("TZ", "Europe/Paris"),
                ("USER", "u"),
            ],
        );
    }

    #[test]
    fn counter_counts_from_zero_and_refuses_garbage() {
        let d = tempfile::tempdir().unwrap();
        let c = d.path().join("svc/x/starts");
        assert_eq!(read_counter(&c).unwrap(), 0);
        assert_eq!(increment_counter(&c).unwrap(), 1);
        assert_eq!(increment_counter(&c).unwrap(), 2);
        assert_eq!(read_counter(&c).unwrap(), 2);
        assert_eq!(fs::read_to_string(&c).unwrap(), "2\n");
        fs::write(&c, "two").unwrap();
        let e = increment_counter(&c).unwrap_err().to_string();
        assert!(e.contains("not a number") && e.contains("starts"), "{e}");
    }

    #[test]
    fn malformed_env_file_is_refused_with_its_position_and_no_value() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("r.env");
        fs::write(&f, "GOOD=1\nSECRET=\"hunter2-unterminated\nBAD KEY=x\n").unwrap();
        let e = load_env_file(&f).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{}:2:", f.display())) || e.contains(&format!("{}:3:", f.display())),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        let spec = ExecSpec {
            env_file: f,
            port: 1,
            dir: d.path().to_owned(),
            counter: Some(d.path().join("starts")),
            program: "true".into(),
            args: vec![],
        };
        // Refused before counting: a refused start is not a start.
        let e = exec(&spec);
        assert!(matches!(e, ExecError::ParseEnv { .. }), "{e}");
        assert_eq!(read_counter(&d.path().join("starts")).unwrap(), 0);
    }
}
