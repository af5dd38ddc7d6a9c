//! Sample: seed 003 Monitoring Data and Response Time Tracking, one measured
//! value from a probe.

use serde::{Deserialize, Serialize};

use crate::ids::{MonitorId, SampleId};
use crate::status::{CacheStatus, HealthStatus, MetricType};
use crate::time::Timestamp;

/// One measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seed 003 `metric_id`.
    pub id: SampleId,
    /// The monitor that took it; `None` for values pushed from outside.
    pub monitor_id: Option<MonitorId>,
    /// The environment's name: seed 003 `environment_id`.
    pub environment: String,
    /// Seed 003 `metric_type`.
    pub metric_type: MetricType,
    /// Seed 003 `metric_value`.
    pub metric_value: f64,
    /// Seed 003 `unit`: `ms`, `%`, `count`.
    pub unit: String,
    /// Seed 003 `threshold_warning`.
    pub threshold_warning: Option<f64>,
    /// Seed 003 `threshold_critical`.
    pub threshold_critical: Option<f64>,
    /// Seed 003 `status`.
    pub status: HealthStatus,
    /// Seed 003 `timestamp` (Monitoring Data and Response Time Tracking).
    pub at: Timestamp,
    /// Seed 003 `source`: the monitoring service, e.g. `rollway-monitor`.
    pub source: String,
    /// Seed 003 Response Time Tracking `endpoint`.
    pub endpoint: Option<String>,
    /// Seed 003 `response_time_ms`.
    pub response_time_ms: Option<u64>,
    /// Seed 003 `user_location`; for Rollway's own probes, where the probe ran.
    pub location: Option<String>,
    /// Seed 003 `cache_status`.
    pub cache_status: Option<CacheStatus>,
    /// The HTTP status answered, for HTTP probes (feeds the 5xx downtime rule).
    pub http_status: Option<u16>,
}

impl Sample {
    /// The status a value earns against thresholds where higher is worse
    /// (latency, error rate): critical at or above `critical`, warning at or
    /// above `warning`, else healthy.
    pub fn classify(value: f64, warning: Option<f64>, critical: Option<f64>) -> HealthStatus {
        if critical.is_some_and(|c| value >= c) {
            HealthStatus::Critical
        } else if warning.is_some_and(|w| value >= w) {
            HealthStatus::Warning
        } else {
            HealthStatus::Healthy
        }
    }
}
