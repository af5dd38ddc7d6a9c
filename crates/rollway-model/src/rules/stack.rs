//! Shape rules of seed 004 Stack that need no IO (a template's validity is
//! checked by the engine, which runs the stack's `validate` command).

use crate::entities::Stack;
use crate::rules::Violation;
use crate::status::StackStatus;

/// Seed 004 "Dependencies must be deployed before this stack".
pub const DEPENDENCIES_DEPLOYED: &str = "stack.dependencies-deployed";
/// Seed 004 "Outputs must match expected contract".
pub const OUTPUTS_CONTRACT: &str = "stack.outputs-contract";

pub const RULES: &[&str] = &[DEPENDENCIES_DEPLOYED, OUTPUTS_CONTRACT];

/// A stack that is deploying or deployed needs every dependency among
/// `siblings` (the deployment's stacks) and deployed.
pub fn validate_dependencies(stack: &Stack, siblings: &[Stack]) -> Vec<Violation> {
    let mut out = Vec::new();
    if !matches!(stack.status(), StackStatus::Deploying | StackStatus::Deployed) {
        return out;
    }
    for dep in &stack.dependencies {
        match siblings.iter().find(|s| &s.name == dep) {
            None => out.push(Violation::new(
                "dependencies",
                DEPENDENCIES_DEPLOYED,
                format!(
                    "stack '{}' depends on '{dep}', which is not a stack of this deployment",
                    stack.name
                ),
            )),
            Some(s) if s.status() != StackStatus::Deployed => out.push(Violation::new(
                "dependencies",
                DEPENDENCIES_DEPLOYED,
                format!(
                    "stack '{}' is {} but its dependency '{dep}' is {}, not deployed",
                    stack.name,
                    stack.status(),
                    s.status()
                ),
            )),
            Some(_) => {}
        }
    }
    out
}

/// A deployed stack's outputs against its contract (`[stacks.X] outputs`
/// and `secret_outputs`): each declared output present and non-empty, each
/// secret one reported as secret and never stored in clear (at most as
/// the mask).
pub fn validate_outputs(stack: &Stack, outputs: &[String], secret_outputs: &[String]) -> Vec<Violation> {
    if stack.status() != StackStatus::Deployed {
        return Vec::new();
    }
    output_violations(stack, outputs, secret_outputs)
}

/// [`validate_outputs`] whatever the stack's status: what the engine asks
/// of a report before it lets the stack count as deployed (`secret_outputs`
/// of `stack` are the secret keys the report carried).
pub fn output_violations(stack: &Stack, outputs: &[String], secret_outputs: &[String]) -> Vec<Violation> {
    let mut out = Vec::new();
    for key in outputs {
        if stack.outputs.get(key).is_none_or(|v| v.is_empty()) {
            out.push(Violation::new(
                format!("outputs.{key}"),
                OUTPUTS_CONTRACT,
                format!(
                    "stack '{}' did not report output {key}: its deploy command must write it to $ROLLWAY_OUTPUTS",
                    stack.name
                ),
            ));
        }
    }
    for key in secret_outputs {
        // The mask stands in for a secret output (people see it was
        // reported); its value is kept encrypted elsewhere, never here.
        if stack.outputs.get(key).is_some_and(|v| v != crate::mask::MASK) {
            out.push(Violation::new(
                format!("outputs.{key}"),
                OUTPUTS_CONTRACT,
                format!("secret output {key} of stack '{}' is stored in clear", stack.name),
            ));
        }
        if !stack.secret_outputs.contains(key) {
            out.push(Violation::new(
                format!("secret_outputs.{key}"),
                OUTPUTS_CONTRACT,
                format!("stack '{}' did not report secret output {key}", stack.name),
            ));
        }
    }
    out
}

/// The outputs of a deployed stack against the contract it carries
/// (`Stack::contract`).
pub fn validate_own_outputs(stack: &Stack) -> Vec<Violation> {
    validate_outputs(stack, &stack.contract.outputs, &stack.contract.secret_outputs)
}
