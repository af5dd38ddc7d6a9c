//! Probe sample: one probe's result as the store keeps it (OPERATIONS.md
//! "Samples") — monitor, planned slot, outcome, status, latency, cache
//! status, location and error text. Seed 003's metric record ([`MetricRecord`])
//! is a separate, derived thing: aggregates kept in the seed's shape.
//!
//! [`MetricRecord`]: crate::entities::MetricRecord

use serde::{Deserialize, Serialize};

use crate::rollup::Measured;
use crate::status::CacheStatus;
use crate::time::Timestamp;
use crate::uptime::{Observation, Outcome};

/// One probe's result, keyed by its monitor and planned slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeSample {
    /// The monitor's name (`[monitors.NAME]`).
    pub monitor: String,
    /// The wall-clock time the probe was planned for (for pushed results,
    /// the time they carry). With the monitor, it identifies the sample: a
    /// slot is recorded at most once. Buckets and the uptime arithmetic
    /// place a sample at its slot.
    pub slot: Timestamp,
    /// When the probe actually started (the slot plus the schedule lag).
    pub at: Timestamp,
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    /// Milliseconds to the answer; `None` when there was none (`unavailable`).
    pub latency_ms: Option<u64>,
    /// Seed 003's hit / miss / bypass; `None` when the answer said nothing.
    pub cache_status: Option<CacheStatus>,
    /// Where the probe ran (seed 003 user_location).
    pub location: Option<String>,
    /// What went wrong; masked before it is stored.
    pub error: Option<String>,
}

impl ProbeSample {
    /// A sample at `slot` with nothing but its outcome.
    pub fn new(monitor: impl Into<String>, slot: Timestamp, outcome: Outcome) -> Self {
        Self {
            monitor: monitor.into(),
            slot,
            at: slot,
            outcome,
            http_status: None,
            latency_ms: None,
            cache_status: None,
            location: None,
            error: None,
        }
    }

    /// What rollups count of it, placed at its slot.
    pub fn measured(&self) -> Measured {
        Measured {
            at: self.slot,
            outcome: self.outcome,
            http_status: self.http_status,
            latency_ms: self.latency_ms.map(|l| l as f64),
        }
    }

    /// What the uptime arithmetic needs of it, placed at its slot.
    pub fn observation(&self) -> Observation {
        Observation {
            at: self.slot,
            outcome: self.outcome,
            http_status: self.http_status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_counted_at_its_slot() {
        let mut s = ProbeSample::new("web", Timestamp::from_millis(5_000), Outcome::Ok);
        s.at = Timestamp::from_millis(5_040);
        s.latency_ms = Some(12);
        s.http_status = Some(200);
        assert_eq!(s.measured().at, s.slot);
        assert_eq!(s.measured().latency_ms, Some(12.0));
        assert_eq!(s.observation().at, s.slot);
    }
}
