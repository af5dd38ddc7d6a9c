//! A `local` target: the deployer starts its own binary as
//! `rollway agent --root ROOT`, a child speaking the protocol on its
//! stdin/stdout — the same agent code an SSH host runs.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::client::{AgentClient, StderrTail};
use super::{AgentSession, SessionOptions, watchdog};
use crate::deploy::{Connector, HostPlan};
use crate::host::{HostError, HostSession};

/// Starts local agents.
#[derive(Debug, Clone)]
pub struct LocalConnector {
    /// The binary run as the agent; `None` is this process's own binary.
    pub exe: Option<PathBuf>,
    pub options: SessionOptions,
}

impl LocalConnector {
    pub fn new(options: SessionOptions) -> Self {
        Self { exe: None, options }
    }

    /// Runs `exe` as the agent instead of this binary (tests, `--agent`).
    #[must_use]
    pub fn with_exe(mut self, exe: impl Into<PathBuf>) -> Self {
        self.exe = Some(exe.into());
        self
    }

    /// A session with the agent of `host`.
    pub fn open(&self, host: &HostPlan) -> Result<AgentSession, HostError> {
        let fail = |detail: String| HostError {
            host: host.name.clone(),
            step: "connect",
            detail,
        };
        let exe = match &self.exe {
            Some(e) => e.clone(),
            None => std::env::current_exe().map_err(|e| fail(format!("cannot find this rollway binary: {e}")))?,
        };
        let mut child = Command::new(&exe)
            .arg("agent")
            .arg("--root")
            .arg(&host.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("cannot start the agent {}: {e}", exe.display())))?;
        let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            return Err(fail(String::from("the agent's standard streams are not piped")));
        };
        let stderr = StderrTail::collect(stderr);
        let (child, dog) = watchdog::for_child(child);
        let quiet = self.options.quiet();
        match AgentClient::connect(&host.name, Box::new(stdout), Box::new(stdin), stderr, dog, quiet) {
            Ok(client) => Ok(AgentSession::new(client, Some(child), self.options.clone())),
            Err(e) => {
                watchdog::reap(&child);
                Err(e)
            }
        }
    }
}

impl Connector for LocalConnector {
    fn connect(&self, host: &HostPlan) -> Result<Box<dyn HostSession>, HostError> {
        Ok(Box::new(self.open(host)?))
    }
}
