//! Shape rules of seed 000 DeployArtifact and seed 001 DeploymentArtifact.

use crate::entities::Artifact;
use crate::ids::Sha256Digest;
use crate::rules::{Violation, fields};
use crate::status::ArtifactKind;
use crate::time::Timestamp;

/// Seed 000 "checksum required".
pub const CHECKSUM_REQUIRED: &str = "artifact.checksum-required";
/// Seed 001 "checksum must be a valid SHA256 hash".
pub const CHECKSUM_SHA256: &str = "artifact.checksum-sha256";
/// Seed 000 "sizeBytes > 0".
pub const SIZE_POSITIVE: &str = "artifact.size-positive";
/// Seed 000 "aliasesResolved must be true before deploy".
pub const ALIASES_RESOLVED: &str = "artifact.aliases-resolved";
/// Seed 001 "expiresAt must be in the future".
pub const EXPIRES_IN_FUTURE: &str = "artifact.expires-in-future";
/// Seed 001 "artifactType must be one of the allowed values".
pub const KIND_ALLOWED: &str = "artifact.kind-allowed";

pub const RULES: &[&str] = &[
    CHECKSUM_REQUIRED,
    CHECKSUM_SHA256,
    SIZE_POSITIVE,
    ALIASES_RESOLVED,
    EXPIRES_IN_FUTURE,
    KIND_ALLOWED,
];

/// The rules every recorded artifact keeps: a non-empty package (bytes and
/// at least one file) whose
/// expiry comes after its creation and has not passed at `now`. (Its
/// checksum is a `Sha256Digest`, so it is present and well-formed by type;
/// text goes through `parse_checksum`.)
pub fn validate(a: &Artifact, now: Timestamp) -> Vec<Violation> {
    let mut out = Vec::new();
    if a.size_bytes == 0 {
        out.push(Violation::new(
            "size_bytes",
            SIZE_POSITIVE,
            "the artifact is empty — check that [build] output names the built files",
        ));
    } else if a.file_count() == 0 {
        // `size_bytes` is the packed archive's size, which is never zero (an
        // empty tree still packs to a header); the rule is about content.
        out.push(Violation::new(
            "contents",
            SIZE_POSITIVE,
            "the artifact holds no files — check that [build] output names the built files and that the build wrote them",
        ));
    }
    if a.expires_at <= a.created_at {
        out.push(Violation::new(
            "expires_at",
            EXPIRES_IN_FUTURE,
            format!(
                "expires_at {} is not after created_at {} — give [build] expire_after a positive duration",
                a.expires_at, a.created_at
            ),
        ));
    } else if a.expires_at <= now {
        out.push(Violation::new(
            "expires_at",
            EXPIRES_IN_FUTURE,
            format!(
                "expires_at {} is not after now ({now}) — rebuild, or raise [build] expire_after",
                a.expires_at
            ),
        ));
    }
    out
}

/// `validate` plus what a deployment needs: every import alias resolved.
pub fn validate_deployable(a: &Artifact, now: Timestamp) -> Vec<Violation> {
    let mut out = validate(a, now);
    if !a.aliases_resolved {
        out.push(Violation::new(
            "aliases_resolved",
            ALIASES_RESOLVED,
            "import aliases are not resolved — rebuild so [build] aliases are rewritten to relative paths",
        ));
    }
    if !a.unresolved_aliases.is_empty() {
        out.push(Violation::new(
            "unresolved_aliases",
            ALIASES_RESOLVED,
            format!(
                "imports still use aliases: {} — add them to [build] aliases or tsconfig paths",
                a.unresolved_aliases.join(", ")
            ),
        ));
    }
    out
}

/// An artifact checksum from text (seed 000 and 001 `checksum`).
pub fn parse_checksum(value: &str) -> Result<Sha256Digest, Violation> {
    fields::sha256("checksum", value, CHECKSUM_REQUIRED, CHECKSUM_SHA256)
}

/// An artifact kind from text (seed 001 `artifactType`).
pub fn parse_kind(value: &str) -> Result<ArtifactKind, Violation> {
    fields::parse_enum("kind", value, None, KIND_ALLOWED)
}
