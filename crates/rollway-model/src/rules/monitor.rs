//! Shape rules of seed 002 Health Check (whether the endpoint answers is
//! the probe's business, in rollway-ops).

use crate::entities::Monitor;
use crate::rules::Violation;

/// Seed 002 "interval/timeout/retries 必须为正整数".
pub const SETTINGS_POSITIVE: &str = "monitor.settings-positive";

pub const RULES: &[&str] = &[SETTINGS_POSITIVE];

/// Interval, timeout and retries are each positive.
pub fn validate(m: &Monitor) -> Vec<Violation> {
    [
        ("interval_ms", m.interval_ms),
        ("timeout_ms", m.timeout_ms),
        ("retries", u64::from(m.retries)),
    ]
    .into_iter()
    .filter(|(_, v)| *v == 0)
    .map(|(field, _)| {
        Violation::new(
            field,
            SETTINGS_POSITIVE,
            format!("{field} is 0; it must be a positive number"),
        )
    })
    .collect()
}
