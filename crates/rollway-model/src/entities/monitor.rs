//! Monitor: seed 002 Health Check, a probe scheduled against one target of
//! one environment.

use serde::{Deserialize, Serialize};

use crate::ids::MonitorId;
use crate::status::{HealthStatus, HealthTarget, ProbeKind};
use crate::time::Timestamp;

/// A scheduled probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Monitor {
    /// Seed 002 `id`.
    pub id: MonitorId,
    /// The environment's name: seed 002 `environmentId`.
    pub environment: String,
    /// Seed 002 `target`: frontend, backend, database or nginx.
    pub target: HealthTarget,
    /// How the target is probed.
    pub probe: ProbeKind,
    /// Seed 002 `endpoint`: a URL, `host:port`, or a domain, by probe kind.
    pub endpoint: String,
    /// Seed 002 `intervalSeconds`, kept in milliseconds.
    pub interval_ms: u64,
    /// Seed 002 `timeoutSeconds`, kept in milliseconds.
    pub timeout_ms: u64,
    /// Seed 002 `retries`: failed attempts before the target counts as down.
    pub retries: u32,
    /// Seed 002 `lastStatus`.
    pub last_status: Option<HealthStatus>,
    /// Seed 002 `lastCheckedAt`.
    pub last_checked_at: Option<Timestamp>,
}

impl Monitor {
    pub fn new(
        environment: impl Into<String>,
        target: HealthTarget,
        probe: ProbeKind,
        endpoint: impl Into<String>,
        at: Timestamp,
    ) -> Self {
        Self {
            id: MonitorId::generate(at),
            environment: environment.into(),
            target,
            probe,
            endpoint: endpoint.into(),
            interval_ms: 60_000,
            timeout_ms: 5_000,
            retries: 3,
            last_status: None,
            last_checked_at: None,
        }
    }

    /// Records the outcome of a probe.
    pub fn observed(&mut self, status: HealthStatus, at: Timestamp) {
        self.last_status = Some(status);
        self.last_checked_at = Some(at);
    }
}
