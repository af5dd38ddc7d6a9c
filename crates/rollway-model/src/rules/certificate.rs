//! Shape rules of seed 002 Certificate and seed 003 SSL Certificate Management.

use crate::entities::Certificate;
use crate::rules::Violation;
use crate::status::EnvironmentKind;

/// Seed 002 "validTo > validFrom".
pub const VALIDITY_ORDERED: &str = "certificate.validity-ordered";
/// Seed 002 "生产环境 autoRenewEnabled 必须为 true".
pub const AUTO_RENEW_IN_PRODUCTION: &str = "certificate.auto-renew-in-production";

pub const RULES: &[&str] = &[VALIDITY_ORDERED, AUTO_RENEW_IN_PRODUCTION];

/// All of a certificate's rules, for an environment of `kind`.
pub fn validate(c: &Certificate, kind: EnvironmentKind) -> Vec<Violation> {
    let mut out = Vec::new();
    if let (Some(from), Some(to)) = (c.valid_from, c.valid_to)
        && to <= from
    {
        out.push(Violation::new(
            "valid_to",
            VALIDITY_ORDERED,
            format!("valid_to {to} is not after valid_from {from}"),
        ));
    }
    if kind == EnvironmentKind::Production && !c.auto_renew {
        out.push(Violation::new(
            "auto_renew",
            AUTO_RENEW_IN_PRODUCTION,
            format!(
                "the certificate for {} is in production, so auto_renew must be on",
                c.domain
            ),
        ));
    }
    out
}
