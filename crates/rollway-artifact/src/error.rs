//! Errors of packing, reading (verify and unpack) and alias scanning; each
//! says what failed, where, and what to do.

use std::io;
use std::path::PathBuf;

/// Why a pack failed or was refused.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: file name is not UTF-8; rename it, artifacts hold UTF-8 paths only", path.display())]
    NotUtf8 { path: PathBuf },
    #[error("{}: the name {} is reserved for the artifact manifest; rename or remove it", path.display(), crate::MANIFEST_NAME)]
    Reserved { path: PathBuf },
    #[error("{}: is {what}, which an artifact cannot hold; remove it from the build output", path.display())]
    Special { path: PathBuf, what: &'static str },
    #[error("{}: {problem} (target '{target}'); point it inside the build output or remove it", path.display())]
    Symlink {
        path: PathBuf,
        target: String,
        problem: crate::manifest::SymlinkProblem,
    },
    #[error(
        "{}: contains the value of secret {name}; a secret must never be baked into an artifact — remove it from the build output and read it from the environment at run time",
        path.display()
    )]
    SecretFound { path: PathBuf, name: String },
    #[error("{}: changed while it was being packed; run the build again", path.display())]
    Changed { path: PathBuf },
    #[error("{}: writing the archive failed: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// What is wrong with one archive, found by [`crate::verify`] or
/// [`crate::unpack`].
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("{0}")]
    Path(crate::manifest::PathProblem),
    #[error("path is not UTF-8")]
    NotUtf8,
    #[error("{0} entries are not allowed")]
    Special(&'static str),
    #[error("duplicate path")]
    Duplicate,
    #[error("parent directory '{0}' is not an earlier directory entry")]
    NoParent(String),
    #[error("hard link target '{0}' is not an earlier regular file of this archive")]
    HardLinkOutside(String),
    #[error("{problem} (target '{target}')")]
    Symlink {
        target: String,
        problem: crate::manifest::SymlinkProblem,
    },
    #[error("size {pax} in the PAX header disagrees with size {header} in the tar header")]
    PaxSize { pax: u64, header: u64 },
    #[error("data ends after {got} of {header} bytes the tar header announces")]
    Truncated { got: u64, header: u64 },
    #[error("entry comes after the manifest, which must be last")]
    AfterManifest,
    #[error("the archive has no manifest ({})", crate::MANIFEST_NAME)]
    NoManifest,
    #[error("manifest is too large ({0} bytes)")]
    ManifestTooLarge(u64),
    #[error("{0}")]
    Manifest(#[from] crate::manifest::ManifestError),
    #[error("not in the manifest")]
    NotInManifest,
    #[error("in the manifest but not in the archive")]
    MissingFromArchive,
    #[error("is a {archive} in the archive but a {manifest} in the manifest")]
    TypeMismatch {
        archive: &'static str,
        manifest: &'static str,
    },
    #[error("mode {archive:04o} differs from {manifest:04o} in the manifest")]
    ModeMismatch { archive: u32, manifest: u32 },
    #[error("size {archive} differs from {manifest} in the manifest")]
    SizeMismatch { archive: u64, manifest: u64 },
    #[error("SHA-256 {archive} differs from {manifest} in the manifest")]
    DigestMismatch { archive: String, manifest: String },
    #[error("symlink target '{archive}' differs from '{manifest}' in the manifest")]
    TargetMismatch { archive: String, manifest: String },
    #[error("archive SHA-256 is {actual}, the record says {expected}")]
    ArchiveDigest { actual: String, expected: String },
    #[error("archive size is {actual} bytes, the record says {expected}")]
    ArchiveSize { actual: u64, expected: u64 },
    #[error("content digest is {actual}, the record says {expected}")]
    ContentDigest { actual: String, expected: String },
    #[error("reading the archive failed: {}", describe_read(.0))]
    Read(io::Error),
    #[error("writing the release failed: {0}")]
    Write(io::Error),
    /// The release writer refused the entry (the writer's own words).
    #[error("{0}")]
    Refused(String),
    #[error("destination {0} already exists; unpack only into a fresh directory")]
    DestinationExists(PathBuf),
}

/// An archive that failed verification or was refused at unpack; names the
/// archive and, where there is one, the first bad entry.
#[derive(Debug, thiserror::Error)]
#[error("artifact {}{}: {problem}; {hint}", archive.display(), entry.as_ref().map(|e| format!(": entry '{e}'")).unwrap_or_default())]
pub struct ArchiveError {
    pub archive: PathBuf,
    pub entry: Option<String>,
    pub problem: Problem,
    hint: &'static str,
}

impl ArchiveError {
    pub(crate) fn new(archive: PathBuf, entry: Option<String>, problem: Problem) -> Self {
        let hint = match &problem {
            Problem::Read(e) if e.kind() == io::ErrorKind::NotFound => {
                "the archive file is missing; rebuild it with `rollway build`"
            }
            Problem::Write(_) => "check the destination's free space and permissions",
            Problem::DestinationExists(_) => "choose a new release directory",
            _ => "the archive is corrupt or unsafe; rebuild it with `rollway build`",
        };
        Self {
            archive,
            entry,
            problem,
            hint,
        }
    }
}

/// A read error in words, never the bytes that caused it: the tar reader
/// quotes header fields, which for garbage input are raw binary.
fn describe_read(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::NotFound {
        return "the archive file does not exist".to_owned();
    }
    let text = e.to_string();
    let printable = text.chars().all(|c| c.is_ascii_graphic() || c == ' ');
    if printable && text.len() <= 160 && !text.contains("when getting") {
        text
    } else {
        "the data is not a valid tar archive (damaged, or not made by `rollway build`)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_errors_never_quote_raw_bytes() {
        let check = |e: io::Error, expected: &str| assert_eq!(describe_read(&e), expected);
        let garbage = "the data is not a valid tar archive (damaged, or not made by `rollway build`)";
        check(
            io::Error::other("numeric field did not have utf-8 text: \u{fffd}\u{1b}G when getting cksum for x"),
            garbage,
        );
        check(
            io::Error::other("numeric field did not have utf-8 text: \u{fffd}"),
            garbage,
        );
        check(io::Error::other("unexpected end of file"), "unexpected end of file");
        check(io::ErrorKind::NotFound.into(), "the archive file does not exist");
    }
}
