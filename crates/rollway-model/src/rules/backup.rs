//! Shape rules of seed 002 Backup Artifact and seed 003 Backup Records
//! (whether the file is there is checked by rollway-ops).

use crate::entities::Backup;
use crate::entities::backup::{DAY_MS, retention_days};
use crate::rules::Violation;
use crate::status::BackupStatus;

/// Seed 002 "checksum 必须存在", once the backup is complete.
pub const CHECKSUM_REQUIRED: &str = "backup.checksum-required";
/// Seed 002 "retentionDays > 0".
pub const RETENTION_POSITIVE: &str = "backup.retention-positive";
/// Seed 003 Retention Rules: daily 30 days, weekly 6 months, monthly 2
/// years, manual 1 year.
pub const RETENTION_BY_CLASS: &str = "backup.retention-by-class";

pub const RULES: &[&str] = &[CHECKSUM_REQUIRED, RETENTION_POSITIVE, RETENTION_BY_CLASS];

/// The rules that come with a status: a completed (or since expired) backup
/// has its checksum.
pub fn validate_status(b: &Backup) -> Vec<Violation> {
    let mut out = Vec::new();
    if matches!(b.status(), BackupStatus::Completed | BackupStatus::Expired) && b.checksum.is_none() {
        out.push(Violation::new(
            "checksum",
            CHECKSUM_REQUIRED,
            format!("a {} backup needs the checksum of its file", b.status()),
        ));
    }
    out
}

/// All of a backup's rules.
pub fn validate(b: &Backup) -> Vec<Violation> {
    let mut out = validate_status(b);
    if b.retention_days == 0 {
        out.push(Violation::new(
            "retention_days",
            RETENTION_POSITIVE,
            "retention_days is 0; it must be positive",
        ));
        return out;
    }
    let policy = retention_days(b.class);
    if b.retention_days != policy {
        out.push(Violation::new(
            "retention_days",
            RETENTION_BY_CLASS,
            format!("a {} backup is kept {policy} days, not {}", b.class, b.retention_days),
        ));
    }
    let expected = b.created_at.0.saturating_add(i64::from(b.retention_days) * DAY_MS);
    if b.expires_at.0 != expected {
        out.push(Violation::new(
            "expires_at",
            RETENTION_BY_CLASS,
            format!(
                "expires_at {} is not created_at plus {} days ({})",
                b.expires_at,
                b.retention_days,
                crate::time::Timestamp(expected)
            ),
        ));
    }
    out
}
