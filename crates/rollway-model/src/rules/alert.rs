//! Shape rules of seed 002 Monitoring Alert.

use crate::entities::{Alert, AlertThresholds};
use crate::rules::Violation;
use crate::status::AlertStatus;

/// Seed 002 "severity 与 threshold 必须匹配定义".
pub const SEVERITY_THRESHOLD: &str = "alert.severity-threshold";
/// Seed 002 "resolvedAt 仅在 resolved 状态可填写".
pub const RESOLVED_AT_WHEN_RESOLVED: &str = "alert.resolved-at-when-resolved";

pub const RULES: &[&str] = &[SEVERITY_THRESHOLD, RESOLVED_AT_WHEN_RESOLVED];

/// `resolved_at` is set exactly when the alert is resolved.
pub fn validate(a: &Alert) -> Vec<Violation> {
    let resolved = a.status() == AlertStatus::Resolved;
    match (resolved, a.resolved_at) {
        (false, Some(_)) => vec![Violation::new(
            "resolved_at",
            RESOLVED_AT_WHEN_RESOLVED,
            format!("an {} alert has no resolved_at; only a resolved one does", a.status()),
        )],
        (true, None) => vec![Violation::new(
            "resolved_at",
            RESOLVED_AT_WHEN_RESOLVED,
            "a resolved alert needs its resolved_at",
        )],
        _ => Vec::new(),
    }
}

/// The alert's severity and threshold against its definition: the
/// threshold recorded is the one defined for that severity.
pub fn validate_severity(a: &Alert, defined: &AlertThresholds) -> Vec<Violation> {
    match defined.for_severity(a.severity) {
        None => vec![Violation::new(
            "severity",
            SEVERITY_THRESHOLD,
            format!("metric {} defines no {} threshold", a.metric, a.severity),
        )],
        Some(t) if t != a.threshold => vec![Violation::new(
            "threshold",
            SEVERITY_THRESHOLD,
            format!(
                "a {} alert on {} has threshold {}, but the defined {} threshold is {t}",
                a.severity, a.metric, a.threshold, a.severity
            ),
        )],
        Some(_) => Vec::new(),
    }
}
