//! Artifact: seed 000 DeployArtifact and seed 001 DeploymentArtifact, the
//! checksummed package a build produces and a deployment ships.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::entities::Deployment;
use crate::ids::{ArtifactId, CommitHash, JobId, Sha256Digest};
use crate::status::{ArtifactKind, DeploymentStatus};
use crate::time::Timestamp;
use crate::transitions::StateMachine;

/// One top-level folder of an artifact (seed 000 `contents`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentFolder {
    /// Path inside the artifact, e.g. `dist` or `.` for top-level files.
    pub path: String,
    /// How many files the folder holds, at any depth.
    pub files: u64,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// A built package with its digest and provenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// Seed 000 `id`, seed 001 `id`.
    pub id: ArtifactId,
    /// Seed 001 `artifactType`, plus `app` for a whole application.
    pub kind: ArtifactKind,
    /// SHA-256 of the packed bytes: seed 000 `checksum`, seed 001 `checksum`.
    pub sha256: Sha256Digest,
    /// SHA-256 of the content manifest (paths, modes, file digests), equal
    /// for equal content however it was packed; lets a rebuild be reused.
    pub content_digest: Sha256Digest,
    /// Seed 000 `sizeBytes`, seed 001 `size`.
    pub size_bytes: u64,
    /// Seed 000 `sourceVersion`: the commit built; `None` outside git.
    pub source_version: Option<CommitHash>,
    /// The branch built from (seed 001 `branch` of the producing job).
    pub branch: Option<String>,
    /// The working tree had uncommitted changes when built.
    pub dirty: bool,
    /// Seed 000 `buildTimestamp`.
    pub built_at: Timestamp,
    /// Seed 000 `aliasesResolved`: import aliases were rewritten to relative paths.
    pub aliases_resolved: bool,
    /// Alias imports found unresolved; empty when `aliases_resolved`.
    pub unresolved_aliases: Vec<String>,
    /// Seed 000 `contents`: the packaged top-level folders.
    pub contents: Vec<ContentFolder>,
    /// Seed 000 `location`, seed 001 `storagePath`.
    pub location: String,
    /// Seed 001 `jobId`: the job that produced it.
    pub job_id: Option<JobId>,
    /// Seed 001 `expiresAt`: when it may be pruned.
    pub expires_at: Timestamp,
    /// Seed 001 `createdAt`.
    pub created_at: Timestamp,
}

impl Artifact {
    /// The digest prefix used as a version tag when git gives none (DESIGN.md).
    pub fn short_digest(&self) -> &str {
        self.sha256.as_str().get(..12).unwrap_or(self.sha256.as_str())
    }

    /// Total files over all folders.
    pub fn file_count(&self) -> u64 {
        self.contents.iter().map(|c| c.files).sum()
    }

    /// Seed 001 `expiresAt`: whether the artifact has expired at `now` (its
    /// expiry is the first instant it is no longer valid, as
    /// `rules::artifact::validate` counts it).
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at <= now
    }
}

/// The artifacts a deployment runs or could return to, which must never
/// expire: those of deployments still in progress, and per environment the
/// `keep_releases(environment)` newest succeeded deployments (by
/// `finished_at`) — the first of which is the current release, kept even
/// when `keep_releases` says 0.
pub fn artifacts_in_use(deployments: &[Deployment], keep_releases: impl Fn(&str) -> usize) -> BTreeSet<ArtifactId> {
    let mut kept = BTreeSet::new();
    let mut succeeded: BTreeMap<&str, Vec<&Deployment>> = BTreeMap::new();
    for d in deployments {
        let status = d.status();
        if status == DeploymentStatus::Succeeded {
            succeeded.entry(d.environment.as_str()).or_default().push(d);
        } else if status.can_transition(DeploymentStatus::Cancelled) {
            // In progress (what may still be cancelled): it runs this artifact.
            kept.extend(d.artifact_id);
        }
    }
    for (env, mut list) in succeeded {
        // Newest first; a stable sort keeps the caller's order among equal times.
        list.sort_by_key(|d| std::cmp::Reverse(d.finished_at));
        kept.extend(
            list.iter()
                .take(keep_releases(env).max(1))
                .filter_map(|d| d.artifact_id),
        );
    }
    kept
}

/// The artifacts that may be pruned at `now`: expired, and none a
/// deployment runs or could return to ([`artifacts_in_use`]). In the order
/// given.
pub fn may_expire<'a>(
    artifacts: &'a [Artifact],
    deployments: &[Deployment],
    keep_releases: impl Fn(&str) -> usize,
    now: Timestamp,
) -> Vec<&'a Artifact> {
    let in_use = artifacts_in_use(deployments, keep_releases);
    artifacts
        .iter()
        .filter(|a| a.is_expired(now) && !in_use.contains(&a.id))
        .collect()
}
