//! Alert: seed 002 Monitoring Alert, open → ack → resolved, or open →
//! resolved when the metric recovers on its own.

use serde::{Deserialize, Serialize};

use crate::entities::{StatusChangeError, atomically};
use crate::ids::{AlertId, DeploymentId};
use crate::rules;
use crate::status::{AlertStatus, AlertType, Severity};
use crate::time::Timestamp;
use crate::transitions::Lifecycle;

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Seed 002 `id`.
    pub id: AlertId,
    /// The environment's name: seed 002 `environmentId`.
    pub environment: String,
    /// Seed 002 `type`: resource, availability or business.
    pub alert_type: AlertType,
    /// Seed 002 `metric`, e.g. `error_rate` or `p95_response_time_ms`.
    pub metric: String,
    /// Seed 002 `threshold`: the defined threshold that was crossed.
    pub threshold: f64,
    /// The value that crossed it.
    pub value: Option<f64>,
    /// Seed 002 `severity`.
    pub severity: Severity,
    /// Seed 002 `triggeredAt`.
    pub triggered_at: Timestamp,
    /// Seed 002 `resolvedAt`: set only once resolved.
    pub resolved_at: Option<Timestamp>,
    /// Seed 002 `status` with its timed history.
    pub lifecycle: Lifecycle<AlertStatus>,
    /// The deployment that preceded the alert, for deploy-aware alerts.
    pub deployment_id: Option<DeploymentId>,
    /// The rule that opened it (`monitor-down`, or an `[alerts.NAME]` name).
    /// With `subject`, at most one alert is open or acknowledged at a time.
    #[serde(default)]
    pub rule: String,
    /// What the rule watched: a monitor, `HOST`, a metric or the environment.
    #[serde(default)]
    pub subject: String,
    /// One line for people: what crossed what, since when, after which deployment.
    #[serde(default)]
    pub summary: String,
    /// The deployment's version tag, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_version: Option<String>,
    /// Whole minutes from the deployment finishing to the alert opening.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes_after_deployment: Option<i64>,
    /// Who acknowledged it, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<Timestamp>,
    /// An acknowledgement's silence: no reminders before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_until: Option<Timestamp>,
    /// The operator's note on acknowledging or resolving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Who resolved it by hand (`None`: it resolved on its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    /// When the last notification (opened or reminder) was queued: reminders count from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified_at: Option<Timestamp>,
}

/// An alert definition's thresholds for one metric (seed 002 "severity 与
/// threshold 必须匹配定义"; seed 003 `threshold_warning`, `threshold_critical`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertThresholds {
    /// Seed 003 `threshold_warning`: the threshold of a warning alert.
    pub warning: Option<f64>,
    /// Seed 003 `threshold_critical`: the threshold of a critical alert.
    pub critical: Option<f64>,
}

impl AlertThresholds {
    /// The threshold defined for `severity`.
    pub fn for_severity(&self, severity: Severity) -> Option<f64> {
        match severity {
            Severity::Warning => self.warning,
            Severity::Critical => self.critical,
        }
    }
}

impl Alert {
    pub fn new(
        environment: impl Into<String>,
        alert_type: AlertType,
        metric: impl Into<String>,
        severity: Severity,
        threshold: f64,
        at: Timestamp,
    ) -> Self {
        Self {
            id: AlertId::generate(at),
            environment: environment.into(),
            alert_type,
            metric: metric.into(),
            threshold,
            value: None,
            severity,
            triggered_at: at,
            resolved_at: None,
            lifecycle: Lifecycle::new(at),
            deployment_id: None,
            rule: String::new(),
            subject: String::new(),
            summary: String::new(),
            deployment_version: None,
            minutes_after_deployment: None,
            acknowledged_by: None,
            acknowledged_at: None,
            ack_until: None,
            note: None,
            resolved_by: None,
            notified_at: None,
        }
    }

    pub fn status(&self) -> AlertStatus {
        self.lifecycle.status()
    }

    /// Moves the alert through its table; `resolved` sets `resolved_at`.
    pub fn transition(&mut self, to: AlertStatus, at: Timestamp) -> Result<(), StatusChangeError> {
        let id = self.id;
        atomically(self, |next| {
            next.lifecycle
                .transition(to, at)
                .map_err(|e| StatusChangeError::refused("alert", id, to, e))?;
            match to {
                AlertStatus::Resolved => next.resolved_at = Some(at),
                AlertStatus::Ack => next.acknowledged_at = Some(at),
                AlertStatus::Open => {}
            }
            let violations = rules::alert::validate(next);
            if violations.is_empty() {
                Ok(())
            } else {
                Err(StatusChangeError::invalid("alert", id, to, violations))
            }
        })
    }
}
