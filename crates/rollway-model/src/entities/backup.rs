//! Backup: seed 002 Backup Artifact and seed 003 Backup Records, with the
//! seed 003 retention classes.

use serde::{Deserialize, Serialize};

use crate::entities::{StatusChangeError, atomically};
use crate::ids::{BackupId, DeploymentId, Sha256Digest};
use crate::rules;
use crate::status::{BackupClass, BackupKind, BackupStatus};
use crate::time::Timestamp;
use crate::transitions::Lifecycle;

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// Seed 003 retention per class: daily 30 days, weekly 6 months (183 days),
/// monthly 2 years (730 days), manual 1 year (365 days).
pub const fn retention_days(class: BackupClass) -> u32 {
    match class {
        BackupClass::Daily => 30,
        BackupClass::Weekly => 183,
        BackupClass::Monthly => 730,
        BackupClass::Manual => 365,
    }
}

/// One backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    /// Seed 002 `id`, seed 003 `backup_id`.
    pub id: BackupId,
    /// The environment's name: seed 002 `environmentId`.
    pub environment: String,
    /// The `[backups.NAME]` it was taken for (empty when none).
    #[serde(default)]
    pub name: String,
    /// Seed 002 `kind`: database, media or config.
    pub kind: BackupKind,
    /// Seed 003 `backup_type`: daily, weekly, monthly or manual.
    pub class: BackupClass,
    /// Seed 003 `database_name`, for database backups.
    pub database_name: Option<String>,
    /// Seed 002 `filePath`, seed 003 `backup_location`.
    pub location: String,
    /// Seed 002 `sizeBytes`, seed 003 `backup_size`.
    pub size_bytes: u64,
    /// Seed 002 `createdAt`, seed 003 `created_at`.
    pub created_at: Timestamp,
    /// Seed 003 `expires_at`: `created_at` plus `retention_days`.
    pub expires_at: Timestamp,
    /// Seed 002 `retentionDays`: the class's retention.
    pub retention_days: u32,
    /// Seed 002 `checksum`, seed 003 `checksum`; known once completed.
    pub checksum: Option<Sha256Digest>,
    /// Seed 003 `restore_point`: usable for point-in-time recovery.
    pub restore_point: bool,
    /// Seed 003 `backup_status` with its timed history.
    pub lifecycle: Lifecycle<BackupStatus>,
    /// The deployment this backup was taken before, if any.
    pub deployment_id: Option<DeploymentId>,
    /// When it completed or failed.
    #[serde(default)]
    pub finished_at: Option<Timestamp>,
    /// Why it failed (masked by the store).
    #[serde(default)]
    pub failure: Option<String>,
    /// For a media backup: the host whose directory it holds (one backup
    /// per host of the environment). Absent from older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// For a media backup: the directory on that host, as configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl Backup {
    /// A backup in progress, with the class's retention.
    pub fn new(
        environment: impl Into<String>,
        kind: BackupKind,
        class: BackupClass,
        location: impl Into<String>,
        at: Timestamp,
    ) -> Self {
        let days = retention_days(class);
        Self {
            id: BackupId::generate(at),
            environment: environment.into(),
            name: String::new(),
            kind,
            class,
            database_name: None,
            location: location.into(),
            size_bytes: 0,
            created_at: at,
            expires_at: Timestamp(at.0.saturating_add(i64::from(days) * DAY_MS)),
            retention_days: days,
            checksum: None,
            restore_point: false,
            lifecycle: Lifecycle::new(at),
            deployment_id: None,
            finished_at: None,
            failure: None,
            host: None,
            path: None,
        }
    }

    pub fn status(&self) -> BackupStatus {
        self.lifecycle.status()
    }

    /// Moves the backup through its table; refused, with nothing changed,
    /// when it would be completed without a checksum.
    pub fn transition(&mut self, to: BackupStatus, at: Timestamp) -> Result<(), StatusChangeError> {
        let id = self.id;
        atomically(self, |next| {
            next.lifecycle
                .transition(to, at)
                .map_err(|e| StatusChangeError::refused("backup", id, to, e))?;
            if matches!(to, BackupStatus::Completed | BackupStatus::Failed) {
                next.finished_at = Some(at);
            }
            let violations = rules::backup::validate_status(next);
            if violations.is_empty() {
                Ok(())
            } else {
                Err(StatusChangeError::invalid("backup", id, to, violations))
            }
        })
    }

    /// Moves to failed with the reason, or changes nothing.
    pub fn fail(&mut self, reason: impl Into<String>, at: Timestamp) -> Result<(), StatusChangeError> {
        let reason = reason.into();
        atomically(self, |next| {
            next.failure = Some(reason);
            next.transition(BackupStatus::Failed, at)
        })
    }

    /// Records the checksum and size and moves to completed, or changes nothing.
    pub fn complete(
        &mut self,
        checksum: Sha256Digest,
        size_bytes: u64,
        at: Timestamp,
    ) -> Result<(), StatusChangeError> {
        atomically(self, |next| {
            next.checksum = Some(checksum);
            next.size_bytes = size_bytes;
            next.transition(BackupStatus::Completed, at)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> Sha256Digest {
        Sha256Digest::try_from("ab".repeat(32)).unwrap()
    }

    /// Walks `steps` from a new backup (completing with a checksum);
    /// returns the status reached, or the index of the first refused step.
    fn check(steps: &[BackupStatus], expected: Result<BackupStatus, usize>) {
        let mut b = Backup::new(
            "production",
            BackupKind::Database,
            BackupClass::Daily,
            "x",
            Timestamp(1),
        );
        for (i, s) in steps.iter().enumerate() {
            let before = b.clone();
            let at = Timestamp(10 + i as i64);
            let r = if *s == BackupStatus::Completed {
                b.complete(digest(), 42, at)
            } else {
                b.transition(*s, at)
            };
            if r.is_err() {
                assert_eq!(b, before, "a refused step changed the backup");
                assert_eq!(Err(i), expected, "steps {steps:?}");
                return;
            }
        }
        assert_eq!(Ok(b.status()), expected, "steps {steps:?}");
    }

    #[test]
    fn backup_table() {
        use BackupStatus::*;
        check(&[], Ok(InProgress));
        check(&[Completed], Ok(Completed));
        check(&[Failed], Ok(Failed));
        check(&[Completed, Expired], Ok(Expired));
        check(&[Expired], Err(0));
        check(&[Failed, Expired], Err(1));
        check(&[Completed, Failed], Err(1));
        check(&[Completed, Expired, Completed], Err(2));
    }

    #[test]
    fn completing_without_a_checksum_is_refused() {
        let mut b = Backup::new(
            "production",
            BackupKind::Database,
            BackupClass::Manual,
            "x",
            Timestamp(1),
        );
        assert!(b.transition(BackupStatus::Completed, Timestamp(2)).is_err());
        assert_eq!(b.status(), BackupStatus::InProgress);
    }
}
