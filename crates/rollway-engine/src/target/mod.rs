//! How the deployer reaches a host's agent: [`LocalConnector`] runs this
//! binary as `rollway agent --root ROOT` on this machine, [`SshConnector`]
//! over system OpenSSH (one multiplexed connection per host, the agent
//! binary copied there by digest). Both give an [`AgentSession`], which
//! implements [`HostSession`] over the agent protocol; [`Targets`] picks
//! one per host for a deployment.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rollway_model::Sha256Digest;

use crate::agent::protocol::{Request, Response};
use crate::deploy::{Connector, HostPlan};
use crate::host::{HostError, HostSession, HostState, RunResult, ServiceCheck, ServiceOp, ServiceStatus, ShipStats};
use crate::hoststats::HostStats;
use crate::probe::ProbeResult;
use crate::supervisor::{LogChunk, LogCursor, ServiceSpec};

pub mod archive;
pub mod client;
pub mod local;
mod ship;
pub mod ssh;
#[cfg(test)]
mod tests;
pub mod watchdog;

pub use client::{AgentClient, MediaError};
pub use local::LocalConnector;
pub use ship::ShipPlan;
pub use ssh::SshConnector;

/// What every session of a deployment shares.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// The artifact archive of the release the hosts run now. When a host
    /// holds exactly that release, changed files travel as zstd patches
    /// against its files and the manifest as a diff; without it changed
    /// files travel whole (unchanged ones are still hard-linked).
    pub previous_archive: Option<PathBuf>,
    /// `[service] shared`: directories linked from `ROOT/shared/<dir>`
    /// into every release.
    pub shared: Vec<String>,
    /// Where archive manifests are cached by archive digest (e.g.
    /// `<state dir>/cache/manifests`), so a redeploy reads an archive once.
    pub manifest_cache: Option<PathBuf>,
    /// How long ssh may take to connect and how a silent connection is
    /// detected (`[ssh] connect_timeout`, `alive_interval`, `alive_count_max`).
    pub ssh: SshTiming,
    /// How long an agent may stay silent while a request is outstanding
    /// before it is stopped and the step fails (none: [`client::DEFAULT_QUIET`]).
    pub agent_quiet: Option<Duration>,
}

impl SessionOptions {
    /// The quiet limit of every agent request.
    pub fn quiet(&self) -> Duration {
        self.agent_quiet.unwrap_or(client::DEFAULT_QUIET)
    }
}

/// The bounds every ssh connection runs under, so a host that accepts TCP
/// and never answers (or goes silent later) fails the step instead of
/// hanging the deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SshTiming {
    /// `ssh -o ConnectTimeout`: TCP connect and the SSH handshake.
    pub connect_timeout: std::time::Duration,
    /// `ssh -o ServerAliveInterval`.
    pub alive_interval: std::time::Duration,
    /// `ssh -o ServerAliveCountMax`.
    pub alive_count_max: u32,
    /// How long after `connect_timeout` the launcher may take to answer
    /// (authentication, the login shell, the agent's checksum).
    pub launch_grace: std::time::Duration,
    /// Leave each host's multiplexed connection to ssh's `ControlPersist`
    /// when the connector ends, instead of closing it (`[ssh] persist`).
    pub persist: bool,
}

impl Default for SshTiming {
    fn default() -> Self {
        Self {
            connect_timeout: std::time::Duration::from_secs(10),
            alive_interval: std::time::Duration::from_secs(5),
            alive_count_max: 3,
            launch_grace: std::time::Duration::from_secs(30),
            persist: false,
        }
    }
}

/// A conversation with one host's agent, local or over ssh.
pub struct AgentSession {
    client: AgentClient,
    /// Shared with the client's watchdog, which kills it when an answer
    /// is overdue.
    child: Option<Arc<Mutex<Child>>>,
    options: SessionOptions,
    /// What must outlive this session (an ssh host's connection guard);
    /// dropped after the agent said bye.
    holds: Option<std::sync::Arc<ssh::MasterGuard>>,
}

impl std::fmt::Debug for AgentSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentSession").field("client", &self.client).finish()
    }
}

impl AgentSession {
    /// A session over a connected client; `child` (the agent or ssh
    /// process) is reaped when the session ends.
    pub fn new(client: AgentClient, child: Option<Arc<Mutex<Child>>>, options: SessionOptions) -> Self {
        Self {
            client,
            child,
            options,
            holds: None,
        }
    }

    /// This session keeps `guard` (and the connection it ends) alive.
    pub(crate) fn holding(mut self: Box<Self>, guard: std::sync::Arc<ssh::MasterGuard>) -> Self {
        self.holds = Some(guard);
        *self
    }

    /// The protocol client, for requests the trait does not cover.
    pub fn client(&mut self) -> &mut AgentClient {
        &mut self.client
    }

    pub fn options_mut(&mut self) -> &mut SessionOptions {
        &mut self.options
    }

    /// What [`HostSession::ship`] would send, asked of the host without
    /// writing anything there (for `--dry-run`).
    pub fn plan_ship(&mut self, release: &str, archive: &Path, sha256: &Sha256Digest) -> Result<ShipPlan, HostError> {
        ship::plan(&mut self.client, &self.options, release, archive, sha256)
    }

    fn expect<T>(
        &mut self,
        step: &'static str,
        request: &Request,
        pick: impl FnOnce(Response) -> Result<T, Response>,
    ) -> Result<T, HostError> {
        let response = self.client.call(step, request)?;
        pick(response).map_err(|other| self.client.unexpected(step, &other))
    }

    fn done(&mut self, step: &'static str, request: &Request) -> Result<(), HostError> {
        self.expect(step, request, |r| match r {
            Response::Done => Ok(()),
            other => Err(other),
        })
    }

    fn service_request(&mut self, step: &'static str, request: &Request) -> Result<ServiceStatus, HostError> {
        self.expect(step, request, |r| match r {
            Response::Service { status } => Ok(status),
            other => Err(other),
        })
    }
}

impl Drop for AgentSession {
    fn drop(&mut self) {
        self.client.bye();
        if let Some(child) = &self.child {
            let mut child = child.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // The agent exits on bye; an ssh client whose channel a stray
            // daemon keeps open is not waited for long.
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }
    }
}

impl HostSession for AgentSession {
    fn name(&self) -> &str {
        self.client.host()
    }

    fn state(&mut self) -> Result<HostState, HostError> {
        let (releases, current) = self.client.state()?;
        Ok(HostState {
            releases: releases.into_iter().map(|r| r.id).collect(),
            current,
        })
    }

    fn ship(&mut self, release: &str, archive: &Path, sha256: &Sha256Digest) -> Result<ShipStats, HostError> {
        ship::ship(&mut self.client, &self.options, release, archive, sha256)
    }

    fn write_env(&mut self, release: &str, text: &str) -> Result<(), HostError> {
        self.done(
            "write env file",
            &Request::WriteEnv {
                release: release.to_owned(),
                text: text.to_owned(),
            },
        )
    }

    fn switch(&mut self, release: &str) -> Result<Option<String>, HostError> {
        self.expect(
            "switch",
            &Request::Switch {
                release: release.to_owned(),
            },
            |r| match r {
                Response::Switched { previous } => Ok(previous),
                other => Err(other),
            },
        )
    }

    fn service(&mut self, op: ServiceOp, spec: &ServiceSpec) -> Result<ServiceStatus, HostError> {
        let step = match op {
            ServiceOp::Start => "start",
            ServiceOp::Stop => "stop",
            ServiceOp::Restart => "restart",
        };
        self.service_request(
            step,
            &Request::Service {
                action: op,
                spec: spec.clone(),
            },
        )
    }

    fn service_status(&mut self, spec: &ServiceSpec) -> Result<ServiceStatus, HostError> {
        self.service_request("service status", &Request::ServiceStatus { spec: spec.clone() })
    }

    fn log_tail(&mut self, spec: &ServiceSpec, lines: usize) -> Result<Vec<String>, HostError> {
        self.expect(
            "logs",
            &Request::LogTail {
                spec: spec.clone(),
                lines,
            },
            |r| match r {
                Response::Lines { lines } => Ok(lines),
                other => Err(other),
            },
        )
    }

    fn host_stats(&mut self) -> Result<HostStats, HostError> {
        self.expect("host stats", &Request::HostStats, |r| match r {
            Response::HostStats { stats } => Ok(stats),
            other => Err(other),
        })
    }

    fn log_read(
        &mut self,
        spec: &ServiceSpec,
        cursor: Option<LogCursor>,
        max_bytes: usize,
    ) -> Result<LogChunk, HostError> {
        self.expect(
            "log read",
            &Request::LogRead {
                spec: spec.clone(),
                cursor,
                max_bytes,
            },
            |r| match r {
                Response::LogChunk { chunk } => Ok(chunk),
                other => Err(other),
            },
        )
    }

    fn check(&mut self, spec: &ServiceSpec, probe: Option<(&str, Duration)>) -> Result<ServiceCheck, HostError> {
        self.expect(
            "service check",
            &Request::Check {
                spec: spec.clone(),
                path: probe.map(|(p, _)| p.to_owned()),
                timeout_ms: probe.map_or(0, |(_, t)| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            },
            |r| match r {
                Response::Check { check } => Ok(check),
                other => Err(other),
            },
        )
    }

    fn probe(&mut self, port: u16, path: &str, timeout: Duration) -> Result<ProbeResult, HostError> {
        self.expect(
            "probe",
            &Request::Probe {
                port,
                path: path.to_owned(),
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            },
            |r| match r {
                Response::Probe { result } => Ok(result),
                other => Err(other),
            },
        )
    }

    fn remove_release(&mut self, release: &str) -> Result<(), HostError> {
        self.done(
            "remove release",
            &Request::Remove {
                release: release.to_owned(),
            },
        )
    }

    fn run(
        &mut self,
        release: &str,
        env: Option<&str>,
        command: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<RunResult, HostError> {
        self.expect(
            "run",
            &Request::Run {
                release: release.to_owned(),
                env: env.map(str::to_owned),
                command: command.to_owned(),
                port,
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            },
            |r| match r {
                Response::Ran { result } => Ok(result),
                other => Err(other),
            },
        )
    }

    fn prune(&mut self, keep: usize, protect: &[String]) -> Result<Vec<String>, HostError> {
        self.expect(
            "prune",
            &Request::Prune {
                keep,
                protect: protect.to_vec(),
            },
            |r| match r {
                Response::Removed { releases } => Ok(releases),
                other => Err(other),
            },
        )
    }
}

/// The connector of a deployment: a local agent for hosts without ssh,
/// an agent over ssh for the others.
#[derive(Debug)]
pub struct Targets {
    pub local: LocalConnector,
    pub ssh: SshConnector,
}

impl Targets {
    /// Both connectors with `options`; ssh keeps its control sockets under
    /// `state_dir/ssh`.
    pub fn new(state_dir: &Path, options: SessionOptions) -> Self {
        Self {
            local: LocalConnector::new(options.clone()),
            ssh: SshConnector::new(state_dir, options),
        }
    }

    /// Sets the previous release's artifact for every later session.
    pub fn set_previous_archive(&mut self, archive: Option<PathBuf>) {
        self.local.options.previous_archive.clone_from(&archive);
        self.ssh.options.previous_archive = archive;
    }

    /// A session with the host's agent as its concrete type (for what the
    /// trait does not carry, e.g. [`AgentSession::plan_ship`]).
    pub fn open(&self, host: &HostPlan) -> Result<AgentSession, HostError> {
        match host.ssh {
            Some(_) => self.ssh.open(host),
            None => self.local.open(host),
        }
    }
}

impl Connector for Targets {
    fn connect(&self, host: &HostPlan) -> Result<Box<dyn HostSession>, HostError> {
        Ok(Box::new(self.open(host)?))
    }
}
