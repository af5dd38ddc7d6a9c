//! Locks are leases: free once `expires_at` has passed, whoever held them.
//! A holder is never judged alive by a pid, which means nothing across hosts.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::DeploymentId;
use crate::time::Timestamp;

/// How long a lease lasts unless renewed.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// What is locked, e.g. `env:production`.
    pub name: String,
    /// Who holds it (the operator chain of DESIGN.md).
    pub owner: String,
    /// A random token that tells this holder from another with the same owner name.
    pub token: String,
    pub reason: String,
    pub deployment_id: Option<DeploymentId>,
    pub acquired_at: Timestamp,
    pub expires_at: Timestamp,
}

impl Lock {
    /// A lock is free when its lease has expired.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }

    /// The name of an environment's deploy lock.
    pub fn env_name(env: &str) -> String {
        format!("env:{env}")
    }
}
