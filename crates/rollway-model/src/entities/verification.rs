//! Verification: seed 000 HealthCheck, the post-restart check of a
//! deployment — a boot check per host, then one stability window over all.

use serde::{Deserialize, Serialize};

use crate::ids::{DeploymentId, HostResultId, VerificationId};
use crate::status::CheckResult;
use crate::time::Timestamp;

/// The seed 000 default stability window: 30 minutes.
pub const DEFAULT_STABILITY_WINDOW_MS: u64 = 30 * 60 * 1000;

/// What one host showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostResult {
    /// The host result's id (seed 000 keeps one result per session; Rollway one per host).
    pub id: HostResultId,
    /// The host as written in rollway.toml (`deploy@app1.example.com`, `local`).
    pub host: String,
    /// Seed 000 `httpStatus`: the last status the endpoint answered.
    pub http_status: Option<u16>,
    /// Seed 000 `latencyMs` of that answer.
    pub latency_ms: Option<u64>,
    /// Seed 000 `startedAt`.
    pub started_at: Timestamp,
    /// Seed 000 `completedAt`; `None` while the check runs.
    pub completed_at: Option<Timestamp>,
    /// The supervisor's restart count read right after Rollway's own restart.
    pub restart_baseline: Option<u64>,
    /// Seed 000 `restartsObserved`: restarts since the baseline.
    pub restarts_observed: u64,
    /// Seed 000 `result`; `None` while the check runs.
    pub result: Option<CheckResult>,
    /// Seed 000 `logExcerpt`: the service's last lines, masked.
    pub log_excerpt: Option<String>,
    /// The release `current` pointed at before this deployment switched the
    /// host: where an automatic rollback returns it.
    #[serde(default)]
    pub release_before: Option<String>,
    /// When `current` was switched to the new release (none: never switched).
    #[serde(default)]
    pub switched_at: Option<Timestamp>,
    /// Payload bytes sent to the host for this release.
    #[serde(default)]
    pub bytes_sent: u64,
    /// The release the host was returned to by a rollback.
    #[serde(default)]
    pub returned_to: Option<String>,
    /// How long each phase took on this host, in milliseconds, by name:
    /// `ship`, `switch` (env file and `current`), `restart`, `boot`, `window`.
    #[serde(default)]
    pub phases_ms: std::collections::BTreeMap<String, u64>,
}

/// The verification of one deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// Seed 000 `id`.
    pub id: VerificationId,
    /// Seed 000 `sessionId`.
    pub deployment_id: DeploymentId,
    /// Seed 000 `endpoint`, e.g. `/`.
    pub endpoint: String,
    /// The status a PASS needs: seed 000's 200 unless `[health] expect_status` says otherwise.
    pub expect_status: u16,
    /// Seed 000 `stabilityWindowMinutes`, kept in milliseconds.
    pub stability_window_ms: u64,
    /// When the stability window ends, so a detached window can be resumed.
    pub window_ends_at: Option<Timestamp>,
    /// One result per host that took the release.
    pub hosts: Vec<HostResult>,
    /// Seed 000 `result` over all hosts; `None` while the check runs.
    pub result: Option<CheckResult>,
    /// Probes that failed in the stability window, over all hosts: a PASS
    /// with tolerated failures (`[health] window_failures`) says how many
    /// (seed 000 PASS). 0 for records written before it was counted.
    #[serde(default)]
    pub failed_probes: u64,
    /// When the deployer stopped watching the window (`deploy --detach`, or
    /// interrupted), so `rollway serve` knows the window is nobody's;
    /// cleared when `rollway verify` (or `serve`) watches it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detached_at: Option<Timestamp>,
}

impl Verification {
    pub fn new(deployment_id: DeploymentId, endpoint: impl Into<String>, at: Timestamp) -> Self {
        Self {
            id: VerificationId::generate(at),
            deployment_id,
            endpoint: endpoint.into(),
            expect_status: 200,
            stability_window_ms: DEFAULT_STABILITY_WINDOW_MS,
            window_ends_at: None,
            hosts: Vec::new(),
            result: None,
            failed_probes: 0,
            detached_at: None,
        }
    }

    /// PASS when every host passed, FAIL when any failed, `None` while any runs
    /// or when no host was checked.
    pub fn summarize(&self) -> Option<CheckResult> {
        if self.hosts.is_empty() {
            return None;
        }
        let results: Vec<Option<CheckResult>> = self.hosts.iter().map(|h| h.result).collect();
        if results.contains(&Some(CheckResult::Fail)) {
            Some(CheckResult::Fail)
        } else if results.iter().all(|r| *r == Some(CheckResult::Pass)) {
            Some(CheckResult::Pass)
        } else {
            None
        }
    }
}

impl HostResult {
    pub fn new(host: impl Into<String>, at: Timestamp) -> Self {
        Self {
            id: HostResultId::generate(at),
            host: host.into(),
            http_status: None,
            latency_ms: None,
            started_at: at,
            completed_at: None,
            restart_baseline: None,
            restarts_observed: 0,
            result: None,
            log_excerpt: None,
            release_before: None,
            switched_at: None,
            bytes_sent: 0,
            returned_to: None,
            phases_ms: std::collections::BTreeMap::new(),
        }
    }
}
