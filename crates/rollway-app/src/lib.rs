//! Rollway's application layer: the use cases — open a project, build,
//! deploy, verify, roll back, recover, run pipelines, manage secrets and
//! environments, read history, status and events, drive the service — with
//! one typed error that carries its exit class. The CLI and the server call
//! these and only render what comes back: nothing here prints.

pub mod error;
pub mod project;

pub use error::{Code, Error, Note, Result};
pub use project::{Flag, Interrupt, Masks, Options, Project, Scope};

/// The domain types answers are made of (deployments, statuses, events…).
pub use rollway_model as model;
