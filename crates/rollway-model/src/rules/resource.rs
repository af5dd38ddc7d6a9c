//! Shape rules of seed 004 Resource that need no IO (whether the resource
//! answers through its provider's API is checked by the engine).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::entities::resource::PropertyType;
use crate::entities::{Resource, ResourceContract, Stack};
use crate::rules::Violation;
use crate::status::ResourceStatus;

/// Seed 004 "Properties must match contract specifications".
pub const PROPERTIES_CONTRACT: &str = "resource.properties-contract";
/// Seed 004 "Tags must include required governance tags".
pub const REQUIRED_TAGS: &str = "resource.required-tags";

pub const RULES: &[&str] = &[PROPERTIES_CONTRACT, REQUIRED_TAGS];

/// The resource's type and properties against `contract`: each required
/// property present, with the contract's value and JSON type where it names
/// them.
pub fn validate_properties(r: &Resource, contract: &ResourceContract) -> Vec<Violation> {
    let mut out = Vec::new();
    if let Some(ty) = &contract.resource_type
        && &r.resource_type != ty
    {
        out.push(Violation::new(
            "resource_type",
            PROPERTIES_CONTRACT,
            format!(
                "resource {} is of type {}, the contract wants type {ty}",
                r.logical_id, r.resource_type
            ),
        ));
    }
    let keys: BTreeSet<&String> = contract.required.keys().chain(contract.types.keys()).collect();
    for key in keys {
        let field = || format!("properties.{key}");
        let Some(actual) = r.properties.get(key) else {
            out.push(Violation::new(
                field(),
                PROPERTIES_CONTRACT,
                format!("resource {} has no property {key}", r.logical_id),
            ));
            continue;
        };
        if let Some(ty) = contract.types.get(key)
            && !ty.holds(actual)
        {
            out.push(Violation::new(
                field(),
                PROPERTIES_CONTRACT,
                format!(
                    "resource {} has {key} of type {}, the contract wants type {ty}",
                    r.logical_id,
                    PropertyType::name_of(actual)
                ),
            ));
        } else if let Some(Some(want)) = contract.required.get(key)
            && !same_value(actual, want)
        {
            out.push(Violation::new(
                field(),
                PROPERTIES_CONTRACT,
                format!(
                    "resource {} has {key} = {actual}, the contract wants {want}",
                    r.logical_id
                ),
            ));
        }
    }
    out
}

/// JSON equality, except that numbers compare by value: a tool that
/// reports `5.0` for a contract's `5` keeps to it, while `"5"` (a string)
/// does not.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64().zip(y.as_f64()).is_some_and(|(x, y)| x == y),
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same_value(x, y))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len() && xs.iter().all(|(k, x)| ys.get(k).is_some_and(|y| same_value(x, y)))
        }
        _ => a == b,
    }
}

/// Every tag of `required` (an environment's `required_tags`) present with a value.
pub fn validate_tags(r: &Resource, required: &[String]) -> Vec<Violation> {
    required
        .iter()
        .filter(|tag| r.tags.get(*tag).is_none_or(|v| v.trim().is_empty()))
        .map(|tag| {
            Violation::new(
                format!("tags.{tag}"),
                REQUIRED_TAGS,
                format!(
                    "resource {} lacks the required tag {tag} — tag it in the stack's template",
                    r.logical_id
                ),
            )
        })
        .collect()
}

/// An available resource against the contract of its stack: properties and
/// required tags. A resource still creating, or failed, is not held to it.
pub fn validate_in_stack(r: &Resource, stack: &Stack) -> Vec<Violation> {
    if r.status() != ResourceStatus::Available {
        return Vec::new();
    }
    let mut out = validate_properties(r, &stack.contract.resources);
    out.extend(validate_tags(r, &stack.contract.required_tags));
    out
}
