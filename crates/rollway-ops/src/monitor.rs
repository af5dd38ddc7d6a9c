//! What the scheduler runs: a monitor as plain values — its name, the probe
//! and the schedule — so the scheduler never reads the config and tests
//! build monitors by hand. `from_config.rs` makes them from `rollway.toml`.

use std::time::Duration;

use crate::ProbeSpec;

/// One monitor, ready to schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorSpec {
    /// The monitor's name (`[monitors.NAME]`); unique within a scheduler.
    /// It also sets where in its interval the monitor starts (jitter).
    pub name: String,
    pub probe: ProbeSpec,
    pub schedule: Schedule,
    /// An `ok` slower than this is recorded as an `error`.
    pub latency_budget: Option<Duration>,
}

/// When and how often a monitor is probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Time between two planned starts.
    pub interval: Duration,
    /// Bound on each probe; the config keeps it shorter than `interval`.
    pub timeout: Duration,
    /// Failed probes in a row before the monitor counts as down (seed 002);
    /// the scheduler does not use it, `state::MonitorState` does.
    pub retries: u32,
    /// Recorded on each sample (seed 003 user_location).
    pub location: Option<String>,
}

impl MonitorSpec {
    /// A monitor with OPERATIONS.md's defaults besides what is given:
    /// timeout 10 s or half the interval, 3 retries, no location, no budget.
    pub fn new(name: impl Into<String>, probe: ProbeSpec, interval: Duration) -> Self {
        Self {
            name: name.into(),
            probe,
            schedule: Schedule {
                interval,
                timeout: default_timeout(interval),
                retries: rollway_config::DEFAULT_MONITOR_RETRIES,
                location: None,
            },
            latency_budget: None,
        }
    }
}

/// The config's default timeout: 10 s, or half the interval when shorter.
pub(crate) fn default_timeout(interval: Duration) -> Duration {
    rollway_config::DEFAULT_MONITOR_TIMEOUT.min(interval / 2)
}
