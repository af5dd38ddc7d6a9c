//! Shape rules of seed 000 DeploySession, seed 002 Deployment Release,
//! seed 003 Deployment Status and seed 004 Deployment.

use std::collections::{BTreeMap, BTreeSet};

use crate::entities::{Deployment, Stack};
use crate::rules::{TIMES_MONOTONIC, Violation, fields, ordered};
use crate::status::{DeploymentKind, DeploymentStatus};

/// Seed 002 "status 必须为枚举值".
pub const STATUS_ALLOWED: &str = "deployment.status-allowed";
/// Seed 002 "success/failed 必须有 finishedAt": set exactly when finished.
pub const FINISHED_AT_ON_COMPLETION: &str = "deployment.finished-at-on-completion";
/// Seed 004 "Failed deployments must have rollback_reason" (DESIGN.md:
/// `failure_reason` on failed).
pub const FAILURE_REASON_REQUIRED: &str = "deployment.failure-reason-required";
/// Seed 000 "log must capture rollback reason" (DESIGN.md: on rolled_back).
pub const ROLLBACK_REASON_REQUIRED: &str = "deployment.rollback-reason-required";
/// Seed 002 `rollbackToReleaseId`: a rollback names the release it returns to.
pub const ROLLBACK_TO: &str = "deployment.rollback-to";
/// Seed 003 `rollback_target`: only a succeeded deployment can be returned to.
pub const ROLLBACK_TARGET_SUCCEEDED: &str = "deployment.rollback-target-succeeded";
/// Seed 004 "Stacks_order must respect dependency constraints".
pub const STACKS_ORDER: &str = "deployment.stacks-order";

pub const RULES: &[&str] = &[
    STATUS_ALLOWED,
    FINISHED_AT_ON_COMPLETION,
    FAILURE_REASON_REQUIRED,
    ROLLBACK_REASON_REQUIRED,
    ROLLBACK_TO,
    ROLLBACK_TARGET_SUCCEEDED,
    STACKS_ORDER,
];

fn blank(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(|s| s.trim().is_empty())
}

/// The rules that come with a status: finished_at, the failure and
/// rollback reasons, and rollback_target. `Deployment::transition` refuses
/// a change that would break one.
pub fn validate_status(d: &Deployment) -> Vec<Violation> {
    use DeploymentStatus as S;
    let mut out = Vec::new();
    let status = d.status();
    let finished = matches!(status, S::Succeeded | S::Failed | S::Cancelled | S::RolledBack);
    match (finished, d.finished_at) {
        (true, None) => out.push(Violation::new(
            "finished_at",
            FINISHED_AT_ON_COMPLETION,
            format!("a {status} deployment needs its finished_at"),
        )),
        (false, Some(_)) => out.push(Violation::new(
            "finished_at",
            FINISHED_AT_ON_COMPLETION,
            format!("a {status} deployment has not finished, so it has no finished_at"),
        )),
        _ => {}
    }
    if d.lifecycle.entered(S::Failed).is_some() && blank(&d.failure_reason) {
        out.push(Violation::new(
            "failure_reason",
            FAILURE_REASON_REQUIRED,
            "a failed deployment needs a failure_reason that says what went wrong",
        ));
    }
    if status == S::RolledBack && blank(&d.rollback_reason) {
        out.push(Violation::new(
            "rollback_reason",
            ROLLBACK_REASON_REQUIRED,
            "a rolled back deployment needs a rollback_reason — pass --reason",
        ));
    }
    if d.rollback_target && status != S::Succeeded {
        out.push(Violation::new(
            "rollback_target",
            ROLLBACK_TARGET_SUCCEEDED,
            format!("a {status} deployment cannot be a rollback target; only a succeeded one can"),
        ));
    }
    out
}

/// All of a deployment's own rules: `validate_status`, times in order and
/// the rollback link.
pub fn validate(d: &Deployment) -> Vec<Violation> {
    let mut out = validate_status(d);
    ordered(
        &mut out,
        TIMES_MONOTONIC,
        ("started_at", Some(d.started_at)),
        ("finished_at", d.finished_at),
    );
    match (d.kind, d.rollback_to) {
        (DeploymentKind::Rollback, None) => out.push(Violation::new(
            "rollback_to",
            ROLLBACK_TO,
            "a rollback deployment names the deployment it returns to in rollback_to",
        )),
        // A deploy that was rolled back names the deployment it returned to.
        (DeploymentKind::Deploy, Some(_)) if d.status() != DeploymentStatus::RolledBack => out.push(Violation::new(
            "rollback_to",
            ROLLBACK_TO,
            "only a rollback deployment, or one that was rolled back, has a rollback_to",
        )),
        (_, Some(to)) if to == d.id => out.push(Violation::new(
            "rollback_to",
            ROLLBACK_TO,
            "a deployment cannot roll back to itself",
        )),
        _ => {}
    }
    out
}

/// `stacks_order` against the deployment's stacks: each stack exactly once,
/// no unknown names, and every dependency before the stack that needs it.
pub fn validate_stacks_order(d: &Deployment, stacks: &[Stack]) -> Vec<Violation> {
    stacks_order(d, stacks, true)
}

/// `validate_stacks_order` while the stacks are still being recorded:
/// `stacks` are those recorded so far, and a name of `stacks_order` without
/// a stack yet is allowed; everything else holds (each name once, each
/// given stack listed after every stack it depends on, and each of those
/// listed too). The store applies it until the deployment starts deploying,
/// then the complete rule.
pub fn validate_stacks_order_so_far(d: &Deployment, stacks: &[Stack]) -> Vec<Violation> {
    stacks_order(d, stacks, false)
}

fn stacks_order(d: &Deployment, stacks: &[Stack], complete: bool) -> Vec<Violation> {
    let mut out = Vec::new();
    let deps: BTreeMap<&str, &[String]> = stacks
        .iter()
        .map(|s| (s.name.as_str(), s.dependencies.as_slice()))
        .collect();
    let listed: BTreeSet<&str> = d.stacks_order.iter().map(String::as_str).collect();
    let mut seen = BTreeSet::new();
    for name in &d.stacks_order {
        if !seen.insert(name.as_str()) {
            out.push(Violation::new(
                "stacks_order",
                STACKS_ORDER,
                format!("stack '{name}' appears twice"),
            ));
            continue;
        }
        let Some(needs) = deps.get(name.as_str()) else {
            if complete {
                out.push(Violation::new(
                    "stacks_order",
                    STACKS_ORDER,
                    format!("'{name}' is not a stack of this deployment"),
                ));
            }
            continue;
        };
        for dep in needs.iter() {
            let known = if complete {
                deps.contains_key(dep.as_str())
            } else {
                listed.contains(dep.as_str())
            };
            if !known {
                out.push(Violation::new(
                    "stacks_order",
                    STACKS_ORDER,
                    format!("stack '{name}' depends on '{dep}', which is not a stack of this deployment"),
                ));
            } else if !seen.contains(dep.as_str()) {
                out.push(Violation::new(
                    "stacks_order",
                    STACKS_ORDER,
                    format!("stack '{name}' comes before '{dep}', which it depends on"),
                ));
            }
        }
    }
    for name in deps.keys() {
        if !seen.contains(name) {
            out.push(Violation::new(
                "stacks_order",
                STACKS_ORDER,
                format!("stack '{name}' is missing from stacks_order"),
            ));
        }
    }
    out
}

/// A deployment status from text, in any case; the seeds' words (SUCCESS,
/// completed, FAILED, ROLLED_BACK, …) are aliases. `IN_PROGRESS` names four
/// phases, not one status, so it is refused here with the phases to choose
/// from (a filter reads it with `DeploymentStatus::matching`).
pub fn parse_status(value: &str) -> Result<DeploymentStatus, Violation> {
    if value.trim().eq_ignore_ascii_case(crate::status::IN_PROGRESS_WORD) {
        let phases: Vec<&str> = DeploymentStatus::IN_PROGRESS.iter().map(|s| s.as_str()).collect();
        return Err(Violation::new(
            "status",
            STATUS_ALLOWED,
            format!(
                "'{}' is any of {}; name the phase the deployment is in",
                value.trim(),
                phases.join(", ")
            ),
        ));
    }
    fields::parse_enum("status", value, None, STATUS_ALLOWED)
}
