//! Restore: seed 002 Restore Job, putting one backup back, pending →
//! success | failed.

use serde::{Deserialize, Serialize};

use crate::entities::{StatusChangeError, atomically};
use crate::ids::{BackupId, RestoreId};
use crate::rules;
use crate::status::RestoreStatus;
use crate::time::Timestamp;
use crate::transitions::Lifecycle;

/// One restore job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restore {
    /// Seed 002 `id`.
    pub id: RestoreId,
    /// The environment's name: seed 002 `environmentId`.
    pub environment: String,
    /// Seed 002 `backupArtifactId`.
    pub backup_id: BackupId,
    /// Seed 002 `status` with its timed history.
    pub lifecycle: Lifecycle<RestoreStatus>,
    /// Seed 002 `startedAt`.
    pub started_at: Timestamp,
    /// Seed 002 `finishedAt`: set on success and on failed.
    pub finished_at: Option<Timestamp>,
    /// Seed 002 `notes`.
    pub notes: Option<String>,
}

impl Restore {
    pub fn new(environment: impl Into<String>, backup_id: BackupId, at: Timestamp) -> Self {
        Self {
            id: RestoreId::generate(at),
            environment: environment.into(),
            backup_id,
            lifecycle: Lifecycle::new(at),
            started_at: at,
            finished_at: None,
            notes: None,
        }
    }

    pub fn status(&self) -> RestoreStatus {
        self.lifecycle.status()
    }

    /// Moves the restore through its table; success and failed set `finished_at`.
    pub fn transition(&mut self, to: RestoreStatus, at: Timestamp) -> Result<(), StatusChangeError> {
        let id = self.id;
        atomically(self, |next| {
            next.lifecycle
                .transition(to, at)
                .map_err(|e| StatusChangeError::refused("restore job", id, to, e))?;
            if matches!(to, RestoreStatus::Success | RestoreStatus::Failed) {
                next.finished_at = Some(at);
            }
            let violations = rules::restore::validate(next);
            if violations.is_empty() {
                Ok(())
            } else {
                Err(StatusChangeError::invalid("restore job", id, to, violations))
            }
        })
    }
}
