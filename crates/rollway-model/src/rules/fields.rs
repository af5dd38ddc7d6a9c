//! Field parsers shared by the entity rules: closed enums, git commit
//! hashes and SHA-256 digests read from text (config, API, stored rows).

use std::str::FromStr;

use crate::ids::{CommitHash, Sha256Digest};
use crate::rules::Violation;
use crate::status::UnknownVariant;

/// Seed 001 "commitHash must be a valid git hash format" (DESIGN.md: 40 or
/// 64 lowercase hex, or empty outside git).
pub const COMMIT_HASH_FORMAT: &str = "commit.hash-format";

pub const RULES: &[&str] = &[COMMIT_HASH_FORMAT];

/// A commit hash from text: empty means "outside git" (`None`); otherwise
/// 40 or 64 hex characters, upper case folded to lower.
pub fn commit_hash(field: &str, value: &str) -> Result<Option<CommitHash>, Violation> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    CommitHash::try_from(value.to_ascii_lowercase())
        .map(Some)
        .map_err(|_| {
            Violation::new(
                field,
                COMMIT_HASH_FORMAT,
                format!(
                    "'{value}' is not a git commit hash — give the full 40 (or 64) hex characters, e.g. from `git rev-parse HEAD`, or leave it empty outside git"
                ),
            )
        })
}

/// A SHA-256 digest from text, with an optional `sha256:` prefix and upper
/// case folded: `required` fires on an empty value, `shape` on anything else
/// that is not 64 hex characters.
pub(crate) fn sha256(
    field: &str,
    value: &str,
    required: &'static str,
    shape: &'static str,
) -> Result<Sha256Digest, Violation> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Violation::new(
            field,
            required,
            format!("{field} is required — record the SHA-256 of the content"),
        ));
    }
    let hex = value.strip_prefix("sha256:").unwrap_or(value);
    Sha256Digest::try_from(hex.to_ascii_lowercase()).map_err(|_| {
        Violation::new(
            field,
            shape,
            format!("'{value}' is not a SHA-256 digest (64 hex characters)"),
        )
    })
}

/// A closed enum from text: `required` (when given) fires on an empty
/// value, `allowed` on a word that is none of the enum's spellings.
pub(crate) fn parse_enum<T: FromStr<Err = UnknownVariant>>(
    field: &str,
    value: &str,
    required: Option<&'static str>,
    allowed: &'static str,
) -> Result<T, Violation> {
    let trimmed = value.trim();
    if trimmed.is_empty()
        && let Some(rule) = required
    {
        return Err(Violation::new(field, rule, format!("{field} is required")));
    }
    trimmed
        .parse()
        .map_err(|e: UnknownVariant| Violation::new(field, allowed, e.to_string()))
}
