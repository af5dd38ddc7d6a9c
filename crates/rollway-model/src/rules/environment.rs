//! Shape rules of seed 001 DeploymentConfiguration and seed 002/003
//! Environment Configuration.

use crate::entities::{Environment, EnvironmentSpec};
use crate::rules::{Violation, fields, validate_domain};
use crate::status::EnvironmentKind;

/// Seed 001 "Environment must be one of the allowed values" (`dev` and
/// `prod` are aliases).
pub const KIND_ALLOWED: &str = "environment.kind-allowed";
/// Seed 002 "domain 必须为有效域名".
pub const DOMAIN_VALID: &str = "environment.domain-valid";
/// Seed 002 "httpsEnabled 在生产必须为 true".
pub const HTTPS_IN_PRODUCTION: &str = "environment.https-in-production";

pub const RULES: &[&str] = &[KIND_ALLOWED, DOMAIN_VALID, HTTPS_IN_PRODUCTION];

fn check(kind: EnvironmentKind, domain: Option<&str>, https: bool) -> Vec<Violation> {
    let mut out = Vec::new();
    if let Some(why) = domain.and_then(validate_domain) {
        out.push(Violation::new("domain", DOMAIN_VALID, format!("domain {why}")));
    }
    if kind == EnvironmentKind::Production && !https {
        out.push(Violation::new(
            "https",
            HTTPS_IN_PRODUCTION,
            "a production environment must have https = true",
        ));
    }
    out
}

/// What rollway.toml says of an environment.
pub fn validate_spec(spec: &EnvironmentSpec) -> Vec<Violation> {
    check(spec.kind, spec.domain.as_deref(), spec.https)
}

/// An environment record.
pub fn validate(env: &Environment) -> Vec<Violation> {
    check(env.kind, env.domain.as_deref(), env.https)
}

/// An environment kind from text.
pub fn parse_kind(value: &str) -> Result<EnvironmentKind, Violation> {
    fields::parse_enum("kind", value, None, KIND_ALLOWED)
}
