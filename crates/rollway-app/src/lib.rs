//! Rollway's application layer: the use cases — open a project, build,
//! deploy, verify, roll back, recover, run pipelines, manage secrets and
//! environments, read history, status and events, drive the service, watch
//! the monitors (`serve`) — with one typed error that carries its exit
//! class. The CLI and the server call these and only render what comes
//! back: nothing here prints.

pub mod agent;
pub mod alerts;
pub mod backup;
pub mod build;
mod connect;
pub mod deploy;
pub mod env;
pub mod error;
pub mod events;
pub mod logs;
pub mod monitors;
pub mod pipeline;
pub mod project;
pub mod queries;
pub mod records;
pub mod rollback;
pub mod secrets;
pub mod serve;
pub mod service;
pub mod uptime;

pub use connect::{FileBytes, HostDryRun, Mode};
pub use error::{Code, Error, Note, Result};
pub use project::{Flag, Interrupt, Masks, Options, Project, Scope};

/// The domain types answers are made of (deployments, statuses, events…).
pub use rollway_model as model;

/// Where a deployment tells people how it goes, host by host.
pub use rollway_engine::Progress;
