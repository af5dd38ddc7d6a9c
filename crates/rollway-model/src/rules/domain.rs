//! Domain names (seed 002 "domain 必须为有效域名", seed 003 Domain Registry)
//! and the shape rules of a registered domain; DNS lookups live in rollway-ops.

use crate::entities::Domain;
use crate::rules::Violation;
use crate::status::{DnsStatus, Platform};

/// Seed 003 `domain_name` "Full domain": a valid name, subdomain + root.
pub const NAME_VALID: &str = "domain.name-valid";
/// Seed 003 "CNAME records must point to correct platform endpoints", for
/// the target recorded (the live record is looked up by rollway-ops).
pub const CNAME_TARGET: &str = "domain.cname-target";
/// Seed 003 "DNS propagation verification required before SSL issuance".
pub const VERIFIED_BEFORE_CERTIFICATE: &str = "domain.verified-before-certificate";

pub const RULES: &[&str] = &[NAME_VALID, CNAME_TARGET, VERIFIED_BEFORE_CERTIFICATE];

/// Why `name` is not a valid fully qualified domain name, or `None` when it is.
/// Rules: 1–253 characters, at least two labels, each label 1–63 of
/// `[a-z0-9-]` (case-insensitive), not starting or ending with `-`, and a
/// top-level label that is not all digits. A leading `*.` wildcard is allowed.
pub fn validate_domain(name: &str) -> Option<String> {
    let body = name.strip_prefix("*.").unwrap_or(name);
    let body = body.strip_suffix('.').unwrap_or(body);
    if body.is_empty() {
        return Some("is empty".into());
    }
    if name.len() > 253 {
        return Some(format!("is {} characters long; a domain has at most 253", name.len()));
    }
    let labels: Vec<&str> = body.split('.').collect();
    if labels.len() < 2 {
        return Some(format!(
            "'{name}' has no dot; a domain needs at least two labels like example.com"
        ));
    }
    for label in &labels {
        if label.is_empty() {
            return Some(format!("'{name}' has an empty label"));
        }
        if label.len() > 63 {
            return Some(format!("label '{label}' is longer than 63 characters"));
        }
        if let Some(c) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
            return Some(format!("'{name}' contains '{c}', which a domain name cannot hold"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some(format!("label '{label}' starts or ends with '-'"));
        }
    }
    if labels.last().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit())) {
        return Some(format!(
            "'{name}' ends in a numeric label; that is an IP address, not a domain"
        ));
    }
    None
}

/// All of a registered domain's rules.
pub fn validate(d: &Domain) -> Vec<Violation> {
    let mut out = Vec::new();
    if let Some(why) = validate_domain(&d.domain_name) {
        out.push(Violation::new("domain_name", NAME_VALID, format!("domain_name {why}")));
    }
    if let Some(why) = validate_domain(&d.root_domain) {
        out.push(Violation::new("root_domain", NAME_VALID, format!("root_domain {why}")));
    }
    let joined = match &d.subdomain {
        Some(sub) => format!("{sub}.{}", d.root_domain),
        None => d.root_domain.clone(),
    };
    if !joined.eq_ignore_ascii_case(&d.domain_name) {
        out.push(Violation::new(
            "domain_name",
            NAME_VALID,
            format!(
                "domain_name {} is not subdomain + root_domain ({joined})",
                d.domain_name
            ),
        ));
    }
    out.extend(validate_cname(d));
    out.extend(validate_certificate_order(d));
    out
}

/// The suffix a platform's CNAME targets end with, if it has one.
fn platform_cname_suffix(p: Platform) -> Option<&'static str> {
    match p {
        Platform::Vercel => Some(".vercel-dns.com"),
        Platform::Railway => Some(".up.railway.app"),
        Platform::Supabase => Some(".supabase.co"),
        Platform::SelfHosted | Platform::Other => None,
    }
}

fn validate_cname(d: &Domain) -> Vec<Violation> {
    let suffix = platform_cname_suffix(d.platform_target);
    let Some(target) = &d.cname_target else {
        return match (suffix, &d.subdomain) {
            (Some(suffix), Some(_)) => vec![Violation::new(
                "cname_target",
                CNAME_TARGET,
                format!(
                    "{} on {} needs a CNAME target ending in {suffix}",
                    d.domain_name, d.platform_target
                ),
            )],
            _ => Vec::new(),
        };
    };
    let target = target.trim_end_matches('.').to_ascii_lowercase();
    if let Some(why) = validate_domain(&target) {
        return vec![Violation::new(
            "cname_target",
            CNAME_TARGET,
            format!("cname_target {why}"),
        )];
    }
    match suffix {
        Some(suffix) if !target.ends_with(suffix) => vec![Violation::new(
            "cname_target",
            CNAME_TARGET,
            format!(
                "cname_target {target} is not a {} endpoint (it should end in {suffix})",
                d.platform_target
            ),
        )],
        _ => Vec::new(),
    }
}

/// A certificate is linked only once DNS is verified, and a verified
/// domain records when.
pub fn validate_certificate_order(d: &Domain) -> Vec<Violation> {
    let mut out = Vec::new();
    let verified = d.status() == DnsStatus::Verified;
    if d.certificate_id.is_some() && !verified {
        out.push(Violation::new(
            "certificate_id",
            VERIFIED_BEFORE_CERTIFICATE,
            format!(
                "{} is {}, so no certificate may be issued yet — run `rollway domains verify` first",
                d.domain_name,
                d.status()
            ),
        ));
    }
    if verified && d.verified_at.is_none() {
        out.push(Violation::new(
            "verified_at",
            VERIFIED_BEFORE_CERTIFICATE,
            "a verified domain needs its verified_at",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::validate_domain;

    #[test]
    fn domains() {
        let check = |d: &str, ok: bool| assert_eq!(validate_domain(d).is_none(), ok, "{d}: {:?}", validate_domain(d));
        check("api.example.com", true);
        check("*.example.com", true);
        check("xn--bcher-kva.example", true);
        check("localhost", false);
        check("bad_domain.com", false);
        check("-a.com", false);
        check("a..com", false);
        check("10.0.0.1", false);
        check("", false);
        check(&format!("{}.com", "a".repeat(64)), false);
    }
}
