//! Shape rules: every seed validation rule that needs no IO. Each validator
//! returns *all* violations, each naming the field it concerns and the rule
//! id that `seed-rules.toml` maps back to the seed line.

use serde::Serialize;

use crate::transitions::TransitionError;

pub mod alert;
pub mod artifact;
pub mod backup;
pub mod certificate;
pub mod deployment;
pub mod domain;
pub mod environment;
pub mod event;
pub mod fields;
pub mod format;
pub mod job;
pub mod metric;
pub mod monitor;
pub mod resource;
pub mod restore;
pub mod stack;
pub mod strength;
pub mod variable;
pub mod verification;

pub use domain::validate_domain;

/// Rule id for an edge an entity's transition table does not hold.
pub const TRANSITION_ALLOWED: &str = "lifecycle.transition-allowed";
/// Rule id for a transition timed before the last recorded one, or an end
/// before its start (seed 000 "timestamps monotonic").
pub const TIMES_MONOTONIC: &str = "lifecycle.times-monotonic";

/// The lifecycle rule ids.
pub const RULES: &[&str] = &[TRANSITION_ALLOWED, TIMES_MONOTONIC];

/// Every rule id any validator or transition can report.
pub fn all_rules() -> Vec<&'static str> {
    [
        RULES,
        alert::RULES,
        artifact::RULES,
        backup::RULES,
        certificate::RULES,
        deployment::RULES,
        domain::RULES,
        environment::RULES,
        event::RULES,
        fields::RULES,
        job::RULES,
        metric::RULES,
        monitor::RULES,
        resource::RULES,
        restore::RULES,
        stack::RULES,
        variable::RULES,
        verification::RULES,
    ]
    .concat()
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The field the rule concerns, as the seeds name it in snake_case.
    pub field: String,
    /// The rule's id, e.g. `artifact.checksum-required`.
    pub rule: &'static str,
    /// A lowercase phrase that says what is wrong.
    pub message: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, rule: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            rule,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A refused transition as a violation of `status`.
pub fn transition_violation(err: &TransitionError) -> Violation {
    let rule = match err {
        TransitionError::Forbidden { .. } | TransitionError::BadHistory { .. } => TRANSITION_ALLOWED,
        TransitionError::TimeWentBackwards { .. } => TIMES_MONOTONIC,
    };
    Violation::new("status", rule, err.to_string())
}

/// `end` may not come before `start` (DESIGN.md: start ≤ end).
pub(crate) fn ordered(
    out: &mut Vec<Violation>,
    rule: &'static str,
    (start_field, start): (&str, Option<crate::time::Timestamp>),
    (end_field, end): (&str, Option<crate::time::Timestamp>),
) {
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        out.push(Violation::new(
            end_field,
            rule,
            format!("{end_field} {e} is before {start_field} {s}"),
        ));
    }
}
