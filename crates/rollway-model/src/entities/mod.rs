//! The entities of DESIGN.md's mapping table, each with the union of the
//! seeds' fields.

use std::fmt;

use crate::rules::{Violation, transition_violation};
use crate::transitions::{StateMachine, TransitionError};

pub mod alert;
pub mod artifact;
pub mod backup;
pub mod certificate;
pub mod deployment;
pub mod domain;
pub mod environment;
pub mod job;
pub mod metric_record;
pub mod monitor;
pub mod pipeline_run;
pub mod probe_sample;
pub mod resource;
pub mod restore;

pub mod stack;
pub mod variable;
pub mod verification;

pub use alert::{Alert, AlertThresholds};
pub use artifact::{Artifact, ContentFolder, artifacts_in_use, may_expire};
pub use backup::Backup;
pub use certificate::Certificate;
pub use deployment::Deployment;
pub use domain::Domain;
pub use environment::{Environment, EnvironmentSpec};
pub use job::Job;
pub use metric_record::{MetricRecord, Thresholds};
pub use monitor::Monitor;
pub use pipeline_run::PipelineRun;
pub use probe_sample::ProbeSample;
pub use resource::{PropertyType, Resource, ResourceContract};
pub use restore::Restore;
pub use stack::{Stack, StackContract};
pub use variable::Variable;
pub use verification::{HostResult, Verification};

/// Why an entity's status change was refused; the entity is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entity} {id} cannot become {to}: {}", self.reason())]
pub struct StatusChangeError {
    /// What the entity is: "deployment", "job", …
    pub entity: &'static str,
    /// The entity's id.
    pub id: String,
    /// The status that was asked for.
    pub to: String,
    /// Set when the transition table or the clock refused the change.
    pub transition: Option<Box<TransitionError>>,
    /// Every violation found; for a refused edge, one on `status`.
    pub violations: Vec<Violation>,
}

impl StatusChangeError {
    /// The transition table or the clock refused the edge.
    pub(crate) fn refused<S: StateMachine>(
        entity: &'static str,
        id: impl fmt::Display,
        to: S,
        err: TransitionError,
    ) -> Self {
        Self {
            entity,
            id: id.to_string(),
            to: to.to_string(),
            violations: vec![transition_violation(&err)],
            transition: Some(Box::new(err)),
        }
    }

    /// The edge is allowed but the entity would break a rule in its new status.
    pub(crate) fn invalid<S: StateMachine>(
        entity: &'static str,
        id: impl fmt::Display,
        to: S,
        violations: Vec<Violation>,
    ) -> Self {
        Self {
            entity,
            id: id.to_string(),
            to: to.to_string(),
            transition: None,
            violations,
        }
    }

    /// True when the transition table forbids the edge (a conflict, exit 3).
    pub fn is_forbidden(&self) -> bool {
        matches!(self.transition.as_deref(), Some(TransitionError::Forbidden { .. }))
    }

    fn reason(&self) -> String {
        match &self.transition {
            Some(err) => err.to_string(),
            None => self
                .violations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}

/// Applies `change` to a copy of `entity` and keeps the copy only when
/// `change` succeeds, so a refused call changes nothing.
pub(crate) fn atomically<E: Clone, T>(
    entity: &mut E,
    change: impl FnOnce(&mut E) -> Result<T, StatusChangeError>,
) -> Result<T, StatusChangeError> {
    let mut next = entity.clone();
    let out = change(&mut next)?;
    *entity = next;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::status::{DeploymentKind, DeploymentStatus, VariableType};
    use crate::time::Timestamp;

    #[test]
    fn refused_change_says_what_and_why() {
        let mut d = Deployment::new(DeploymentKind::Deploy, "production", "ops", Timestamp(0));
        let err = d.transition(DeploymentStatus::Succeeded, Timestamp(1)).unwrap_err();
        assert!(err.is_forbidden());
        assert_eq!(
            err.to_string(),
            format!(
                "deployment {} cannot become succeeded: forbidden deployment transition pending → succeeded (allowed next: building, failed, cancelled)",
                d.id
            )
        );
        let err = d.transition(DeploymentStatus::Failed, Timestamp(1)).unwrap_err();
        assert!(!err.is_forbidden());
        assert!(
            err.to_string()
                .ends_with("failure_reason: a failed deployment needs a failure_reason that says what went wrong"),
            "{err}"
        );
    }

    #[test]
    fn entities_round_trip_through_json() {
        let mut d = Deployment::new(DeploymentKind::Deploy, "production", "ops", Timestamp(0));
        d.fail("boom", Timestamp(5)).unwrap();
        let back: Deployment = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
        let mut v = Variable::new("production", "DATABASE_URL", Timestamp(0));
        v.value_type = VariableType::Url;
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["type"], "url");
        assert_eq!(serde_json::from_value::<Variable>(json).unwrap(), v);
    }
}
