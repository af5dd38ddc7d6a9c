//! What the deployment needs from one host, whatever carries it (a local
//! agent child process or an agent over ssh): ship a release, write its env
//! file, switch `current`, drive the service, probe it. The agent client in
//! `target/` implements this; `deploy/` only speaks to this trait.

use std::path::Path;
use std::time::Duration;

use rollway_model::Sha256Digest;
use serde::{Deserialize, Serialize};

use crate::hoststats::HostStats;
use crate::probe::ProbeResult;
use crate::supervisor::{LogChunk, LogCursor, PortOwner, ServiceSpec};

/// A host's releases as its agent sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostState {
    /// Release ids under `ROOT/releases/`, oldest first.
    pub releases: Vec<String>,
    /// What `ROOT/current` points at.
    pub current: Option<String>,
}

/// What crossing the wire cost for one release on one host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipStats {
    /// Payload bytes sent to the host (compressed files and deltas).
    pub bytes_sent: u64,
    /// Files hard-linked from a release the host already had.
    pub files_linked: u64,
    /// Files sent as a zstd delta against the previous release's file.
    pub files_delta: u64,
    /// Files sent whole (compressed).
    pub files_full: u64,
}

/// A service operation carried out by the host's supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceOp {
    Start,
    Stop,
    Restart,
}

/// The service as the host reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub pid: Option<u32>,
    /// The monotone start count (see `Supervisor::restarts`).
    pub starts: u64,
    /// How long the process `pid` has run, read on the host.
    #[serde(default)]
    pub uptime_ms: Option<u64>,
}

/// How a one-off command on a host ended (`rollway exec`, deploy hooks).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResult {
    /// The exit code; `None` when a signal (or the timeout) ended it.
    pub code: Option<i32>,
    /// Its output, stdout and stderr interleaved as written, the last
    /// [`RUN_OUTPUT_MAX`] bytes at most (the deployer masks them).
    pub output: String,
    /// Earlier output was dropped to keep within the bound.
    pub truncated: bool,
    /// It ran past its timeout and was killed with its process group.
    pub timed_out: bool,
}

impl RunResult {
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }
}

/// How much of a one-off command's output travels back.
pub const RUN_OUTPUT_MAX: usize = 256 * 1024;

/// One look at a service during its boot check, taken on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceCheck {
    /// The monotone start count (see `Supervisor::restarts`).
    pub starts: u64,
    /// Who listens on the service's port, read after the probe.
    pub owner: PortOwner,
    /// The probe of `127.0.0.1:PORT`, when one was asked for.
    pub probe: Option<ProbeResult>,
}

/// Errors name the host and the step.
#[derive(Debug, thiserror::Error)]
#[error("{host}: {step}: {detail}")]
pub struct HostError {
    pub host: String,
    pub step: &'static str,
    pub detail: String,
}

/// One host of an environment, reached through its agent.
pub trait HostSession: Send {
    /// How the host is named in messages and records: `local`, `deploy@app1:22`.
    fn name(&self) -> &str;
    fn state(&mut self) -> Result<HostState, HostError>;
    /// Builds `ROOT/releases/<release>` from the artifact at `archive`: files
    /// the host already has (same digest, any earlier release) are hard-linked,
    /// changed files travel as deltas, new ones compressed; every file is
    /// checked against the manifest on arrival; nothing is left on failure.
    fn ship(&mut self, release: &str, archive: &Path, sha256: &Sha256Digest) -> Result<ShipStats, HostError>;
    /// Writes `ROOT/envs/<release>.env` with mode 0600.
    fn write_env(&mut self, release: &str, text: &str) -> Result<(), HostError>;
    /// Points `ROOT/current` at the release atomically; returns what it pointed at before.
    fn switch(&mut self, release: &str) -> Result<Option<String>, HostError>;
    fn service(&mut self, op: ServiceOp, spec: &ServiceSpec) -> Result<ServiceStatus, HostError>;
    fn service_status(&mut self, spec: &ServiceSpec) -> Result<ServiceStatus, HostError>;
    /// The service's last output lines (the deployer masks them).
    fn log_tail(&mut self, spec: &ServiceSpec, lines: usize) -> Result<Vec<String>, HostError>;
    /// CPU counters, memory in use and the disk holding the release root.
    fn host_stats(&mut self) -> Result<HostStats, HostError>;
    /// The service's output after `cursor`, whole lines, about `max_bytes`
    /// at most (unmasked: the caller masks before it keeps anything).
    fn log_read(
        &mut self,
        spec: &ServiceSpec,
        cursor: Option<LogCursor>,
        max_bytes: usize,
    ) -> Result<LogChunk, HostError>;
    /// The service's start count, optionally a probe of `127.0.0.1:PORT`
    /// (`path`, `timeout`), and who listens on the port: what a boot check
    /// needs to tell the new service's answer from an old process's.
    fn check(&mut self, spec: &ServiceSpec, probe: Option<(&str, Duration)>) -> Result<ServiceCheck, HostError>;
    /// An HTTP probe of `127.0.0.1:PORT` run on the host.
    fn probe(&mut self, port: u16, path: &str, timeout: Duration) -> Result<ProbeResult, HostError>;
    /// Removes a release (never the current one) and its env file.
    fn remove_release(&mut self, release: &str) -> Result<(), HostError>;
    /// Keeps the newest `keep` releases plus `protect`; returns the removed ones.
    fn prune(&mut self, keep: usize, protect: &[String]) -> Result<Vec<String>, HostError>;
    /// Runs `command` in `ROOT/releases/<release>` with the env file
    /// `ROOT/envs/<env>.env` (`env` defaults to the release) and `PORT` (see
    /// `agent::run`).
    fn run(
        &mut self,
        release: &str,
        env: Option<&str>,
        command: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<RunResult, HostError>;
}
