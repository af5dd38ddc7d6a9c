//! Metric record: seed 003 Monitoring Data. The seed 003 numbers
//! (OPERATIONS.md "The seed 003 numbers, exactly") kept in the seed's
//! shape, one record per environment, metric type, source (the monitor)
//! and window: `health_check` is the latest status of an endpoint,
//! `performance` the 5-minute rolling average latency, `error_rate` a UTC
//! hour's, `uptime` a calendar month's (to date). Each carries its unit,
//! its warning and critical thresholds and the status those give.
//!
//! Pure: the values come from the rollup and uptime arithmetic
//! (`rollup.rs`, `account.rs`); this module says what a record holds, its
//! default thresholds and the status they give. The shape rules are in
//! `rules::metric`.

use serde::{Deserialize, Serialize};

use crate::ids::MetricId;
use crate::status::{HealthStatus, MetricType, MetricUnit};
use crate::time::Timestamp;

/// Seed 003 "Performance: 5-minute rolling averages".
pub const PERFORMANCE_WINDOW_MS: i64 = 5 * 60_000;
/// Seed 003 "Error rates: Hourly aggregations" (UTC hours, as the rollups).
pub const ERROR_RATE_WINDOW_MS: i64 = 3_600_000;
/// The longest calendar month in any time zone: 31 days and the hour a
/// clock change may add.
pub const LONGEST_MONTH_MS: i64 = 31 * 86_400_000 + 3_600_000;
/// Default warning error rate, percent: seed 003's target "Error rate <1%".
pub const ERROR_RATE_WARNING: f64 = 1.0;
/// Default critical error rate, percent: five times the target (Rollway's
/// choice; the seed names one target).
pub const ERROR_RATE_CRITICAL: f64 = 5.0;
/// Default warning average latency: seed 003 "Average response time <1000ms".
pub const PERFORMANCE_WARNING_MS: f64 = 1000.0;
/// Default critical average latency: seed 003's "<2s targets" (P95 < 2000 ms).
pub const PERFORMANCE_CRITICAL_MS: f64 = 2000.0;

impl MetricType {
    /// The unit each type is kept in: latency in `ms`, rates and uptime in
    /// `%`, a health check as failed checks in a row (`count`).
    pub const fn unit(self) -> MetricUnit {
        match self {
            MetricType::HealthCheck => MetricUnit::Count,
            MetricType::Performance => MetricUnit::Ms,
            MetricType::ErrorRate | MetricType::Uptime => MetricUnit::Percent,
        }
    }

    /// Whether a larger value is worse (all but uptime).
    pub const fn higher_is_worse(self) -> bool {
        !matches!(self, MetricType::Uptime)
    }

    /// Whether each window keeps its own record (hours, months) rather than
    /// one record replaced as the window rolls on (latest status, rolling
    /// average).
    pub const fn keeps_history(self) -> bool {
        matches!(self, MetricType::ErrorRate | MetricType::Uptime)
    }
}

/// Seed 003 `threshold_warning` and `threshold_critical`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub warning: f64,
    pub critical: f64,
}

impl Thresholds {
    /// Rollway's defaults, from seed 003's targets:
    /// - `health_check` (failed checks in a row): warning at 1, critical at
    ///   the monitor's `retries` (down, as OPERATIONS.md counts it);
    /// - `performance` (average ms): warning at 1000 (average < 1000 ms),
    ///   critical at 2000 (the "<2s" target);
    /// - `error_rate` (%): warning at 1 (error rate < 1 %), critical at 5;
    /// - `uptime` (%, lower is worse): warning below the environment's
    ///   target (default 99.5), critical below the target less its budget
    ///   again (99.0 for 99.5: the month's budget spent twice).
    pub fn default_for(metric_type: MetricType, uptime_target_percent: f64, retries: u32) -> Thresholds {
        match metric_type {
            MetricType::HealthCheck => Thresholds {
                warning: 1.0,
                critical: f64::from(retries.max(1)),
            },
            MetricType::Performance => Thresholds {
                warning: PERFORMANCE_WARNING_MS,
                critical: PERFORMANCE_CRITICAL_MS,
            },
            MetricType::ErrorRate => Thresholds {
                warning: ERROR_RATE_WARNING,
                critical: ERROR_RATE_CRITICAL,
            },
            MetricType::Uptime => Thresholds {
                warning: uptime_target_percent,
                critical: (100.0 - 2.0 * (100.0 - uptime_target_percent)).max(0.0),
            },
        }
    }

    /// The status `value` earns. Where higher is worse, a threshold is
    /// reached at or above it (seed 003's targets are "<": 1000 ms is not
    /// under 1000 ms); for uptime, below it (a month exactly at its target
    /// is met, as `rollway uptime` judges it).
    pub fn status(&self, metric_type: MetricType, value: f64) -> HealthStatus {
        let reached = |threshold: f64| {
            if metric_type.higher_is_worse() {
                value >= threshold
            } else {
                value < threshold
            }
        };
        if reached(self.critical) {
            HealthStatus::Critical
        } else if reached(self.warning) {
            HealthStatus::Warning
        } else {
            HealthStatus::Healthy
        }
    }
}

/// One seed 003 Monitoring Data record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRecord {
    /// Seed 003 `metric_id`.
    pub metric_id: MetricId,
    /// Seed 003 `environment_id`: the environment's name.
    pub environment: String,
    /// Seed 003 `metric_type`.
    pub metric_type: MetricType,
    /// Seed 003 `metric_value`, in `unit`.
    pub metric_value: f64,
    /// Seed 003 `unit`: always `metric_type.unit()`.
    pub unit: MetricUnit,
    /// Seed 003 `threshold_warning`.
    pub threshold_warning: f64,
    /// Seed 003 `threshold_critical`.
    pub threshold_critical: f64,
    /// Seed 003 `status`: what the thresholds give the value.
    pub status: HealthStatus,
    /// Seed 003 `timestamp`: when the value stands — the latest sample's
    /// time for a health check, else the end of the window counted.
    pub timestamp: Timestamp,
    /// Seed 003 `source`: the monitor the value is of.
    pub source: String,
    /// The start of the window the value aggregates (a health check: its
    /// sample's time; performance: 5 minutes before `timestamp`; error
    /// rate: the UTC hour; uptime: the month in the environment's zone).
    pub window_start: Timestamp,
}

impl MetricRecord {
    /// A record of `value` over `[window_start, timestamp]`, its unit from
    /// its type and its status from `thresholds`.
    pub fn new(
        environment: impl Into<String>,
        source: impl Into<String>,
        metric_type: MetricType,
        metric_value: f64,
        thresholds: Thresholds,
        window_start: Timestamp,
        timestamp: Timestamp,
    ) -> Self {
        Self {
            metric_id: MetricId::generate(timestamp),
            environment: environment.into(),
            metric_type,
            metric_value,
            unit: metric_type.unit(),
            threshold_warning: thresholds.warning,
            threshold_critical: thresholds.critical,
            status: thresholds.status(metric_type, metric_value),
            timestamp,
            source: source.into(),
            window_start,
        }
    }

    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            warning: self.threshold_warning,
            critical: self.threshold_critical,
        }
    }

    /// What tells this record apart from the others of its environment,
    /// type and source: its window's start for types that keep history,
    /// else 0 (one record, replaced as the window rolls on).
    pub fn slot(&self) -> i64 {
        if self.metric_type.keeps_history() {
            self.window_start.as_millis()
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HealthStatus::{Critical, Healthy, Warning};
    use MetricType::{ErrorRate, HealthCheck, Performance, Uptime};

    #[test]
    fn default_thresholds_follow_the_seed_targets() {
        let check = |t: MetricType, target: f64, retries: u32, expected: (f64, f64)| {
            let th = Thresholds::default_for(t, target, retries);
            assert_eq!(
                (th.warning, th.critical),
                expected,
                "{t} target {target} retries {retries}"
            );
        };
        check(HealthCheck, 99.5, 3, (1.0, 3.0));
        check(HealthCheck, 99.5, 0, (1.0, 1.0));
        check(Performance, 99.5, 3, (1000.0, 2000.0));
        check(ErrorRate, 99.5, 3, (1.0, 5.0));
        check(Uptime, 99.5, 3, (99.5, 99.0));
        check(Uptime, 99.9, 3, (99.9, 99.9 - (100.0 - 99.9)));
        check(Uptime, 40.0, 3, (40.0, 0.0));
    }

    #[test]
    fn the_status_is_what_the_thresholds_give() {
        let check = |t: MetricType, value: f64, expected: HealthStatus| {
            let th = Thresholds::default_for(t, 99.5, 3);
            assert_eq!(th.status(t, value), expected, "{t} {value}");
            let r = MetricRecord::new("prod", "web", t, value, th, Timestamp(0), Timestamp(0));
            assert_eq!((r.status, r.unit), (expected, t.unit()), "{t} {value}");
        };
        check(HealthCheck, 0.0, Healthy);
        check(HealthCheck, 1.0, Warning);
        check(HealthCheck, 2.0, Warning);
        check(HealthCheck, 3.0, Critical);
        check(Performance, 999.9, Healthy);
        check(Performance, 1000.0, Warning);
        check(Performance, 1999.0, Warning);
        check(Performance, 2000.0, Critical);
        check(ErrorRate, 0.0, Healthy);
        check(ErrorRate, 0.99, Healthy);
        check(ErrorRate, 1.0, Warning);
        check(ErrorRate, 5.0, Critical);
        check(Uptime, 100.0, Healthy);
        check(Uptime, 99.5, Healthy);
        check(Uptime, 99.4999, Warning);
        check(Uptime, 99.0, Warning);
        check(Uptime, 98.9999, Critical);
    }

    #[test]
    fn only_hours_and_months_keep_a_record_per_window() {
        let check = |t: MetricType, slot: i64| {
            let th = Thresholds::default_for(t, 99.5, 3);
            let r = MetricRecord::new("prod", "web", t, 1.0, th, Timestamp(3_600_000), Timestamp(3_660_000));
            assert_eq!(r.slot(), slot, "{t}");
        };
        check(HealthCheck, 0);
        check(Performance, 0);
        check(ErrorRate, 3_600_000);
        check(Uptime, 3_600_000);
    }
}
