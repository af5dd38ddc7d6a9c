//! Restore: seed 002 Restore Job, putting one backup back, pending →
//! running → success | failed (DESIGN.md adds `running`; a backup that
//! does not verify fails the job straight from pending).

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
    /// Where the backup goes back to, as shown to people: a database URL
    /// with its password masked, or a path.
    pub target: String,
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
            target: String::new(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks `steps` from a new job; returns the status reached, or the
    /// index of the first refused step, and whether `finished_at` is set.
    fn check(steps: &[RestoreStatus], expected: Result<(RestoreStatus, bool), usize>) {
        let mut r = Restore::new("production", BackupId::generate(Timestamp(1)), Timestamp(1));
        let mut got = Ok(());
        for (i, s) in steps.iter().enumerate() {
            let before = r.clone();
            if r.transition(*s, Timestamp(10 + i as i64)).is_err() {
                assert_eq!(r, before, "a refused step changed the job");
                got = Err(i);
                break;
            }
        }
        let got = got.map(|()| (r.status(), r.finished_at.is_some()));
        assert_eq!(got, expected, "steps {steps:?}");
    }

    #[test]
    fn restore_job_table() {
        use RestoreStatus::*;
        check(&[], Ok((Pending, false)));
        check(&[Running], Ok((Running, false)));
        check(&[Running, Success], Ok((Success, true)));
        check(&[Running, Failed], Ok((Failed, true)));
        check(&[Failed], Ok((Failed, true)));
        check(&[Success], Err(0));
        check(&[Running, Pending], Err(1));
        check(&[Running, Success, Failed], Err(2));
        check(&[Failed, Running], Err(1));
    }
}
