//! Shape rules of seed 000 HealthCheck, as DESIGN.md overrides them: PASS
//! means the expected status (default 200) and no restarts; the 30-minute
//! window is the floor in production only.

use crate::entities::Verification;
use crate::entities::verification::DEFAULT_STABILITY_WINDOW_MS;
use crate::rules::Violation;
use crate::status::{CheckResult, EnvironmentKind};

/// Seed 000 "httpStatus must be 200 for PASS".
pub const PASS_EXPECTED_STATUS: &str = "verification.pass-expected-status";
/// Seed 000 "restartsObserved must be 0 for PASS".
pub const PASS_NO_RESTARTS: &str = "verification.pass-no-restarts";
/// Seed 000 "stabilityWindowMinutes ≥ 30", in production only.
pub const STABILITY_WINDOW_MIN: &str = "verification.stability-window-min";

pub const RULES: &[&str] = &[PASS_EXPECTED_STATUS, PASS_NO_RESTARTS, STABILITY_WINDOW_MIN];

/// All of a verification's rules, for an environment of `kind`.
pub fn validate(v: &Verification, kind: EnvironmentKind) -> Vec<Violation> {
    let mut out = Vec::new();
    if kind == EnvironmentKind::Production && v.stability_window_ms < DEFAULT_STABILITY_WINDOW_MS {
        out.push(Violation::new(
            "stability_window_ms",
            STABILITY_WINDOW_MIN,
            format!(
                "a production stability window of {} ms is shorter than 30 minutes — set [health] stability_window = \"30m\" or more",
                v.stability_window_ms
            ),
        ));
    }
    let overall_pass = v.result == Some(CheckResult::Pass);
    if overall_pass && v.hosts.is_empty() {
        out.push(Violation::new(
            "hosts",
            PASS_EXPECTED_STATUS,
            "a PASS needs at least one host that answered",
        ));
    }
    for (i, h) in v.hosts.iter().enumerate() {
        if !(overall_pass || h.result == Some(CheckResult::Pass)) {
            continue;
        }
        if h.http_status != Some(v.expect_status) {
            let got = h.http_status.map_or_else(|| "no answer".to_owned(), |s| s.to_string());
            out.push(Violation::new(
                format!("hosts[{i}].http_status"),
                PASS_EXPECTED_STATUS,
                format!(
                    "host {} answered {got}, not {}, so it cannot PASS",
                    h.host, v.expect_status
                ),
            ));
        }
        if h.restarts_observed > 0 {
            out.push(Violation::new(
                format!("hosts[{i}].restarts_observed"),
                PASS_NO_RESTARTS,
                format!(
                    "host {} restarted {} time(s) during the check, so it cannot PASS",
                    h.host, h.restarts_observed
                ),
            ));
        }
    }
    out
}
