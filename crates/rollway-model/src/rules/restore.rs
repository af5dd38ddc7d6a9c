//! Shape rules of seed 002 Restore Job (that its backup exists is the
//! store's foreign key).

use crate::entities::Restore;
use crate::rules::{TIMES_MONOTONIC, Violation, ordered};
use crate::status::RestoreStatus;

/// Seed 002 "success/failed 必须有 finishedAt": set exactly when finished.
pub const FINISHED_AT_ON_COMPLETION: &str = "restore.finished-at-on-completion";

pub const RULES: &[&str] = &[FINISHED_AT_ON_COMPLETION];

/// All of a restore job's rules.
pub fn validate(r: &Restore) -> Vec<Violation> {
    let mut out = Vec::new();
    let status = r.status();
    let finished = matches!(status, RestoreStatus::Success | RestoreStatus::Failed);
    match (finished, r.finished_at) {
        (true, None) => out.push(Violation::new(
            "finished_at",
            FINISHED_AT_ON_COMPLETION,
            format!("a {status} restore job needs its finished_at"),
        )),
        (false, Some(_)) => out.push(Violation::new(
            "finished_at",
            FINISHED_AT_ON_COMPLETION,
            format!("a {status} restore job has not finished, so it has no finished_at"),
        )),
        _ => {}
    }
    ordered(
        &mut out,
        TIMES_MONOTONIC,
        ("started_at", Some(r.started_at)),
        ("finished_at", r.finished_at),
    );
    out
}
