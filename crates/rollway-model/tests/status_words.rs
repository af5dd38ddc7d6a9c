#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The seeds' own status words, in any case, read wherever Rollway reads a
//! status — `FromStr`, serde (stored rows, tool reports, API bodies), the
//! `parse_status` rule and filters (`DeploymentStatus::matching`) — and
//! mapped as DESIGN.md says; what Rollway writes stays canonical.

use rollway_model::rules;
use rollway_model::{BackupStatus, DeploymentStatus as D, JobStatus, RestoreStatus, StackStatus};

/// Seed words (and canonical ones in other cases) with the one deployment
/// status DESIGN.md maps each onto.
const DEPLOYMENT_WORDS: &[(&str, D)] = &[
    ("PENDING", D::Pending),
    ("pending", D::Pending),
    ("SUCCESS", D::Succeeded),
    ("success", D::Succeeded),
    ("Success", D::Succeeded),
    ("completed", D::Succeeded),
    ("COMPLETED", D::Succeeded),
    ("succeeded", D::Succeeded),
    ("FAILED", D::Failed),
    ("Failed", D::Failed),
    ("ROLLED_BACK", D::RolledBack),
    ("rolled_back", D::RolledBack),
    ("Building", D::Building),
    ("SYNTHESIZING", D::Synthesizing),
    ("Deploying", D::Deploying),
    ("VERIFYING", D::Verifying),
    ("CANCELLED", D::Cancelled),
];

#[test]
fn every_seed_deployment_word_reads_in_any_case() {
    let mut problems = Vec::new();
    for (word, want) in DEPLOYMENT_WORDS {
        let parsed = word.parse::<D>().ok();
        let json = serde_json::from_str::<D>(&format!("\"{word}\"")).ok();
        let rule = rules::deployment::parse_status(word).ok();
        let filter = D::matching(word).ok();
        if parsed != Some(*want) || json != Some(*want) || rule != Some(*want) || filter != Some(&[*want][..]) {
            problems.push(format!(
                "{word}: FromStr {parsed:?}, serde {json:?}, parse_status {rule:?}, matching {filter:?}; DESIGN.md says {want:?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn in_progress_is_the_four_running_phases() {
    let phases = [D::Building, D::Synthesizing, D::Deploying, D::Verifying];
    for word in ["IN_PROGRESS", "in_progress", "In_Progress"] {
        assert_eq!(D::matching(word).unwrap(), phases, "{word}");
        // One status cannot be four: a single value is refused with the
        // phases to choose from, under the status rule.
        let v = rules::deployment::parse_status(word).unwrap_err();
        assert_eq!(v.rule, rules::deployment::STATUS_ALLOWED);
        assert!(
            v.message.contains("building, synthesizing, deploying, verifying"),
            "{v}"
        );
    }
}

#[test]
fn output_stays_canonical() {
    for (word, status) in DEPLOYMENT_WORDS {
        let read: D = word.parse().unwrap();
        assert_eq!(read, *status);
        assert_eq!(read.to_string(), status.as_str(), "{word}");
        assert_eq!(
            serde_json::to_string(&read).unwrap(),
            format!("\"{}\"", status.as_str())
        );
        assert!(D::NAMES.contains(&read.to_string().as_str()));
    }
    assert_eq!(D::Succeeded.to_string(), "succeeded");
    assert_eq!(D::RolledBack.to_string(), "rolled_back");
}

#[test]
fn the_other_machines_read_their_seed_words_in_any_case() {
    assert_eq!("SUCCESS".parse(), Ok(JobStatus::Success));
    assert_eq!("Cancelled".parse(), Ok(JobStatus::Cancelled));
    assert_eq!("FAILED".parse(), Ok(RestoreStatus::Failed));
    assert_eq!("COMPLETED".parse(), Ok(BackupStatus::Completed));
    assert_eq!("IN_PROGRESS".parse(), Ok(BackupStatus::InProgress));
    assert_eq!("ROLLED_BACK".parse(), Ok(StackStatus::RolledBack));
    assert_eq!(JobStatus::Success.to_string(), "success");
    assert!("paused".parse::<D>().is_err());
    assert!("".parse::<D>().is_err());
}
