//! Rollway's deploy engine: the host agent and its protocol, targets (local
//! and SSH), supervisors, probes, and the deployment itself — ship, switch,
//! restart, verify through a stability window, roll back.
//!
//! The modules are private; the API is what this root re-exports, in five
//! groups: deployments, hosts and targets, the host side (agent,
//! supervisors, exec wrapper), pipelines, and the fuzzing facade.

mod agent;
mod deploy;
mod exec;
mod host;
mod hoststats;
mod layout;
mod pipeline;
mod probe;
mod supervisor;
mod target;

// Deployments: the job and its answers, leases, stacks, recovery, failpoints.
pub use deploy::failpoint::ALL as FAILPOINTS;
pub use deploy::lease::{acquire as acquire_lease, build_lock_name, env_lease_request, renewing as renewing_lease};
pub use deploy::recover::Recovery;
pub use deploy::stacks::{StackSpec, waves as stack_waves};
pub use deploy::{
    Connector, DeployError, DeployJob, Health, Hooks, HostPlan, KeepEnv, Outcome, Progress, ReleaseSource,
    SecretOutputs, SshTarget,
};

// Hosts and targets: a session on a host, the connectors that open one.
pub use agent::protocol::ManifestForm;
pub use host::{HostError, HostSession, HostState, RunResult, ServiceOp, ServiceStatus, ShipStats};
pub use hoststats::{CpuTimes, HostStats, cpu_percent};
pub use target::archive::remember_manifest;
pub use target::{AgentSession, LocalConnector, MediaError, SessionOptions, SshConnector, SshTiming, Targets};

// The host side: the agent, Rollway's supervisor and the others, the exec wrapper.
pub use agent::media::{count as count_media_entries, pack_files as pack_media_files, unpack as unpack_media};
pub use agent::{AgentError, Databases, serve as serve_agent};
pub use exec::{ExecError, ExecSpec, exec as exec_wrapper, exec_service};
pub use supervisor::{
    DEFAULT_LOG_MAX_BYTES, LogChunk, LogCursor, ServiceSpec, SuperviseOptions, Supervisor, SupervisorError, is_alive,
    service_name, spawn_detached, supervise, supervisor as supervisor_for,
};

// Pipelines: the `[jobs]` DAG runner.
pub use pipeline::{JobSpec, Pipeline, PipelineError, PipelineProgress};

/// The agent's wire protocol, for the fuzz targets and their stable replay
/// (`fuzz/checks/agent_frames.rs`); not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::agent::protocol::{
        DataReader, DataWriter, Encoding, MAX_MANIFEST, PROTOCOL, Request, read_frame, recv, send, version,
    };
}
