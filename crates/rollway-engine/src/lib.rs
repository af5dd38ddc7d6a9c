//! Rollway's deploy engine: the host agent and its protocol, targets (local
//! and SSH), supervisors, probes, and the deployment itself — ship, switch,
//! restart, verify through a stability window, roll back.

pub mod agent;
pub mod deploy;
pub mod exec;
pub mod host;
pub mod layout;
pub mod pipeline;
pub mod probe;
pub mod supervisor;
pub mod target;

// The curated API: what the application layer and the binary use, at the
// root. The modules above stay public until every caller has moved to
// these paths; then they become `pub(crate)`.
pub use agent::protocol::ManifestForm;
pub use agent::{AgentError, serve as serve_agent};
pub use deploy::failpoint::ALL as FAILPOINTS;
pub use deploy::lease::{acquire as acquire_lease, build_lock_name, env_lease_request, renewing as renewing_lease};
pub use deploy::recover::Recovery;
pub use deploy::stacks::{StackSpec, waves as stack_waves};
pub use deploy::{
    Connector, DeployError, DeployJob, Health, Hooks, HostPlan, KeepEnv, Outcome, Progress, ReleaseSource,
    SecretOutputs, SshTarget,
};
pub use exec::{ExecError, ExecSpec, exec as exec_wrapper, exec_service};
pub use host::{HostError, HostSession, HostState, RunResult, ServiceOp, ServiceStatus, ShipStats};
pub use layout::HostLayout;
pub use pipeline::{JobSpec, Pipeline, PipelineError, PipelineProgress};
pub use supervisor::{
    DEFAULT_LOG_MAX_BYTES, ServiceSpec, SuperviseOptions, Supervisor, SupervisorError, is_alive, service_name,
    spawn_detached, supervise,
};
pub use target::archive::remember_manifest;
pub use target::{AgentSession, LocalConnector, SessionOptions, SshConnector, SshTiming, Targets};
