//! What the binary does on a host rather than for a person: the host agent
//! (the framed protocol on stdin/stdout for a deployer), Rollway's own
//! supervisor, and the exec wrapper every supervisor starts a service
//! through.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
pub use rollway_engine::{DEFAULT_LOG_MAX_BYTES, SuperviseOptions};

use rollway_ops::backup::{BackupError, Tool};

use crate::error::{Error, Result};

/// Serves the host agent for `root` on stdin/stdout until the deployer
/// hangs up. Stdout carries only protocol frames.
pub fn serve(root: &Path) -> Result<()> {
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout().lock();
    Ok(rollway_engine::serve_agent(root, stdin, stdout, &HostPostgres)
        .with_context(|| format!("rollway agent --root {}", root.display()))?)
}

/// The agent's PostgreSQL tools for backups taken with `run_on = "host"`:
/// the deployer's own `rollway_ops::backup` code, run on the host (a URL's
/// password in `PGPASSWORD`, never on a command line).
struct HostPostgres;

impl rollway_engine::Databases for HostPostgres {
    fn dump(&self, url: &str, out: &mut dyn std::io::Write) -> std::result::Result<(), String> {
        rollway_ops::backup::dump_to(&Tool::default(), url, out, |source| BackupError::Io {
            what: "send the dump to the deployer through",
            path: PathBuf::from("the agent's output"),
            source,
        })
        .map_err(|e| e.to_string())
    }

    fn is_empty(&self, url: &str) -> std::result::Result<bool, String> {
        rollway_ops::backup::database_is_empty(&Tool::default(), url).map_err(|e| e.to_string())
    }

    fn restore(&self, url: &str, clean: bool, input: &mut dyn std::io::Read) -> std::result::Result<(), String> {
        rollway_ops::backup::restore_from(&Tool::default(), url, clean, input).map_err(|e| e.to_string())
    }
}

/// Runs the service described by `dir/spec.json` and keeps it running;
/// with `detach`, starts that supervisor in the background and returns.
pub fn supervise(dir: &Path, detach: bool, options: &SuperviseOptions) -> Result<()> {
    if detach {
        let exe = std::env::current_exe().context("cannot find the rollway binary to run the supervisor")?;
        rollway_engine::spawn_detached(&exe, dir, options).map_err(anyhow::Error::from)?;
        return Ok(());
    }
    rollway_engine::supervise(dir, options).map_err(anyhow::Error::from)?;
    Ok(())
}

/// How the exec wrapper starts a program.
#[derive(Debug, Clone)]
pub enum Exec {
    /// A service spec (ROOT/.rollway/svc/NAME/spec.json).
    Spec(PathBuf),
    /// A program with its release's env file, PORT, directory and start counter.
    Program {
        env_file: PathBuf,
        port: u16,
        dir: PathBuf,
        counter: Option<PathBuf>,
        program: OsString,
        args: Vec<OsString>,
    },
}

/// Replaces this process with the program (returns only on failure).
pub fn exec(how: Exec) -> Error {
    let err = match how {
        Exec::Spec(spec) => rollway_engine::exec_service(&spec),
        Exec::Program {
            env_file,
            port,
            dir,
            counter,
            program,
            args,
        } => rollway_engine::exec_wrapper(&rollway_engine::ExecSpec {
            env_file,
            port,
            dir,
            counter,
            program,
            args,
        }),
    };
    Error::from(anyhow::Error::from(err))
}
