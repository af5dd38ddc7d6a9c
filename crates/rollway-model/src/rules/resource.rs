//! Shape rules of seed 004 Resource that need no IO (whether the resource
//! answers through its provider's API is checked by the engine).

use crate::entities::{Resource, ResourceContract};
use crate::rules::Violation;

/// Seed 004 "Properties must match contract specifications".
pub const PROPERTIES_CONTRACT: &str = "resource.properties-contract";
/// Seed 004 "Tags must include required governance tags".
pub const REQUIRED_TAGS: &str = "resource.required-tags";

pub const RULES: &[&str] = &[PROPERTIES_CONTRACT, REQUIRED_TAGS];

/// The resource's type and properties against `contract`.
pub fn validate_properties(r: &Resource, contract: &ResourceContract) -> Vec<Violation> {
    let mut out = Vec::new();
    if let Some(ty) = &contract.resource_type
        && &r.resource_type != ty
    {
        out.push(Violation::new(
            "resource_type",
            PROPERTIES_CONTRACT,
            format!(
                "resource {} is a {}, the contract wants a {ty}",
                r.logical_id, r.resource_type
            ),
        ));
    }
    for (key, expected) in &contract.required {
        match (r.properties.get(key), expected) {
            (None, _) => out.push(Violation::new(
                format!("properties.{key}"),
                PROPERTIES_CONTRACT,
                format!("resource {} has no property {key}", r.logical_id),
            )),
            (Some(actual), Some(want)) if actual != want => out.push(Violation::new(
                format!("properties.{key}"),
                PROPERTIES_CONTRACT,
                format!(
                    "resource {} has {key} = {actual}, the contract wants {want}",
                    r.logical_id
                ),
            )),
            _ => {}
        }
    }
    out
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
