//! The deployment: plan waves, ship and switch each host, restart, verify
//! through the boot check and the stability window, roll back by itself.

use std::path::PathBuf;
use std::time::Duration;

use rollway_model::{ArtifactId, CommitHash, DeploymentId, Sha256Digest};
use rollway_store::StoreError;

mod context;
pub mod failpoint;
pub mod lease;
pub mod plan;
pub mod recover;
pub mod run;
pub mod stacks;
pub mod window;

pub use run::{Connector, DeployJob, Health, Hooks, KeepEnv, Outcome, SecretOutputs};

pub(crate) use context::model_err;

/// One host of the environment as the deployment sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPlan {
    /// `local` or `user@host:port`.
    pub name: String,
    /// The host's release root.
    pub root: String,
    /// The service port on the host.
    pub port: u16,
    /// For SSH hosts: the destination and the `-F` config, if any.
    pub ssh: Option<SshTarget>,
}

/// How to reach an SSH host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub config: Option<PathBuf>,
}

impl HostPlan {
    pub(crate) fn unknown() -> Self {
        Self {
            name: "?".into(),
            root: String::new(),
            port: 0,
            ssh: None,
        }
    }
}

/// The artifact a deployment ships.
#[derive(Debug, Clone)]
pub struct ReleaseSource {
    pub artifact_id: ArtifactId,
    pub archive: PathBuf,
    pub sha256: Sha256Digest,
    pub commit: Option<CommitHash>,
    pub branch: Option<String>,
    pub dirty: bool,
}

/// Where a deployment tells people how it goes.
pub trait Progress: Sync {
    /// A step, of the whole deployment (`host` none) or of one host.
    fn step(&self, host: Option<&str>, message: &str);
    /// The stability window's remaining time.
    fn countdown(&self, remaining: Duration);
}

/// Why a deployment did not succeed. Each says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "environment {environment} is deprecated: activate another environment or create a new one; deploys to it are refused"
    )]
    Deprecated { environment: String },
    #[error("{0}")]
    Invalid(String),
    #[error("deployment {deployment} failed: {reason}{}", if *rolled_back { "; what it changed was rolled back (hosts to their previous release, stacks by their rollback)" } else { "" })]
    Failed {
        deployment: DeploymentId,
        reason: String,
        rolled_back: bool,
    },
    #[error("deployment {deployment} failed ({reason}) and returning {} to the previous release failed too: {detail}; run `rollway rollback` once the hosts answer", hosts.join(", "))]
    RollbackFailed {
        deployment: DeploymentId,
        reason: String,
        hosts: Vec<String>,
        detail: String,
    },
    #[error("deployment {deployment} was cancelled before any host switched; partial releases were removed")]
    Cancelled { deployment: DeploymentId },
    #[error("{0}")]
    Host(#[from] crate::host::HostError),
}
