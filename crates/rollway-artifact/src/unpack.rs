//! Unpacking an archive into a fresh release directory. The archive is
//! checked entry by entry by [`crate::read`] and written by
//! [`ReleaseWriter`] — the same writer the host agent builds every deployed
//! release with — so hostile input meets one code path wherever it lands.
//! The work happens in a hidden sibling that is renamed into place only when
//! the tree equals the manifest; a refused archive leaves nothing.

use std::io;
use std::path::{Path, PathBuf};

use rollway_model::Sha256Digest;
use rustix::fs::RenameFlags;

use crate::error::{ArchiveError, Problem};
use crate::manifest::Manifest;
use crate::read::{Expected, Sink, read_archive};
use crate::release::{ReleaseWriter, SourceDir};

/// A release unpacked and checked.
#[derive(Debug, Clone)]
pub struct UnpackedRelease {
    pub dir: PathBuf,
    pub sha256: Sha256Digest,
    pub content_digest: Sha256Digest,
    pub size_bytes: u64,
    pub manifest: Manifest,
    pub files_written: u64,
    pub bytes_written: u64,
}

/// Unpacks `archive` into `dest`, which must not exist (its parent must).
/// The archive's SHA-256 must equal `expected_sha256`, every entry must be
/// safe and match the manifest; otherwise nothing is left behind and the
/// error names the archive and the entry. Files end 0444 (0555 when
/// executable) and directories 0555.
pub fn unpack(archive: &Path, dest: &Path, expected_sha256: &Sha256Digest) -> Result<UnpackedRelease, ArchiveError> {
    let fail = |problem: Problem| ArchiveError::new(archive.to_path_buf(), None, problem);
    if std::fs::symlink_metadata(dest).is_ok() {
        return Err(fail(Problem::DestinationExists(dest.to_path_buf())));
    }
    let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
        return Err(fail(Problem::Write(io::Error::other(format!(
            "{} has no parent directory",
            dest.display()
        )))));
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let fresh = rollway_fs::temp_path(parent, &format!("{}.unpacking-", name.to_string_lossy()), "")
        .map_err(|e| fail(Problem::Write(e)))?;
    let writer = ReleaseWriter::create(&fresh).map_err(|e| fail(Problem::Write(io::Error::other(e))))?;
    let mut sink = Extract {
        writer,
        files_written: 0,
        bytes_written: 0,
    };
    // Dropping the writer unfinished (any `?` below) removes `fresh`.
    let report = read_archive(archive, &Expected::sha256(expected_sha256), &mut sink)?;
    let Extract {
        writer,
        files_written,
        bytes_written,
    } = sink;
    writer.finish(&report.manifest).map_err(|e| {
        let entry = e.entry.clone();
        let problem = if e.is_io() {
            Problem::Write(io::Error::other(e))
        } else {
            Problem::Refused(e.problem.to_string())
        };
        ArchiveError::new(archive.to_path_buf(), entry, problem)
    })?;
    let renamed = rustix::fs::renameat_with(rustix::fs::CWD, &fresh, rustix::fs::CWD, dest, RenameFlags::NOREPLACE);
    if let Err(e) = renamed {
        let _ = remove_release(&fresh);
        return Err(if e == rustix::io::Errno::EXIST {
            fail(Problem::DestinationExists(dest.to_path_buf()))
        } else {
            fail(Problem::Write(e.into()))
        });
    }
    Ok(UnpackedRelease {
        dir: dest.to_path_buf(),
        sha256: report.sha256,
        content_digest: report.content_digest,
        size_bytes: report.size_bytes,
        manifest: report.manifest,
        files_written,
        bytes_written,
    })
}

/// Removes a release directory, read-only directories included, never
/// following a symlink.
pub fn remove_release(dir: &Path) -> io::Result<()> {
    crate::release::remove_tree(dir)
}

/// Feeds the checked entries of an archive to the release writer.
struct Extract {
    writer: ReleaseWriter,
    files_written: u64,
    bytes_written: u64,
}

fn write_err(e: crate::release::ReleaseError) -> io::Error {
    io::Error::other(e)
}

impl Sink for Extract {
    fn dir(&mut self, path: &str) -> io::Result<()> {
        self.writer.add_dir(path).map_err(write_err)
    }

    fn file_begin(&mut self, path: &str, executable: bool, _size: u64) -> io::Result<()> {
        self.writer
            .file_begin(path, if executable { 0o755 } else { 0o644 })
            .map_err(write_err)
    }

    fn file_chunk(&mut self, data: &[u8]) -> io::Result<()> {
        self.bytes_written += data.len() as u64;
        self.writer.file_write(data).map_err(write_err)
    }

    fn file_end(&mut self) -> io::Result<()> {
        self.files_written += 1;
        self.writer.file_end().map(|_| ()).map_err(write_err)
    }

    fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.writer.add_symlink(path, target).map_err(write_err)
    }

    /// The reader allows only a hard link to an earlier regular file of
    /// this archive, which the writer made read-only; link it from inside
    /// the release, with the digest it was written with.
    fn hardlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        let known = self
            .writer
            .file(target)
            .cloned()
            .ok_or_else(|| io::Error::other(format!("hard link target '{target}' was not written")))?;
        let source = SourceDir::open(self.writer.dir())?;
        self.writer
            .add_hardlink_known_at(path, &source, target, &known)
            .map_err(write_err)
    }
}
