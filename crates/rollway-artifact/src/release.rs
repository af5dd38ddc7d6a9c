//! The one writer that builds a release directory from untrusted input (an
//! archive being unpacked, files arriving from a deployer): every path is
//! checked, nothing outside the new directory is ever touched, and the
//! finished tree is proved equal to its manifest before anyone may use it.
//!
//! How it stays inside the directory: the directory is created fresh (an
//! existing one is refused); parents are only directories this writer made,
//! opened one component at a time with `O_NOFOLLOW | O_DIRECTORY` from a
//! descriptor of the release root, so a symlink — whether in the input or
//! swapped in by someone else — is never followed while writing; regular
//! files are created with `O_CREAT | O_EXCL`; symlink targets must be
//! relative and resolve inside the release. [`ReleaseWriter::finish`]
//! compares the tree with the [`Manifest`] (every digest, no missing or
//! extra entry), makes files `0444`/`0555` and directories `0555`. On any
//! error, and whenever the writer is dropped unfinished, everything it made
//! is removed.
//!
//! ```no_run
//! # use rollway_artifact::release::ReleaseWriter;
//! # use rollway_artifact::manifest::Manifest;
//! # fn demo(manifest: &Manifest) -> Result<(), rollway_artifact::release::ReleaseError> {
//! let mut w = ReleaseWriter::create(std::path::Path::new("/srv/app/releases/.staging-1"))?;
//! w.add_dir("bin")?;
//! w.add_file("bin/run.sh", 0o755, &b"#!/bin/sh\n"[..])?;
//! w.add_symlink("run", "bin/run.sh")?;
//! let dir = w.finish(manifest)?;
//! # let _ = dir; Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rollway_model::Sha256Digest;
use rustix::fs::{AtFlags, Mode, OFlags};
use sha2::{Digest as _, Sha256};

use crate::manifest::{self, EntryKind, Manifest, PathProblem, SymlinkProblem};

/// Read size when copying a file in.
const CHUNK: usize = 256 << 10;

/// How many symlinks one resolution may expand (Linux's limit).
const MAX_SYMLINK_HOPS: usize = 40;

/// A regular file as written: what [`ReleaseWriter::finish`] compares with
/// the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    pub size: u64,
    pub sha256: Sha256Digest,
    pub executable: bool,
}

/// What is wrong, for one entry or for the whole release.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseProblem {
    #[error("destination already exists; a release is only ever written into a fresh directory")]
    DestinationExists,
    #[error("{0}")]
    Path(PathProblem),
    #[error("symlink target '{target}': {problem}")]
    LinkTarget { target: String, problem: PathProblem },
    #[error("symlink target '{target}': {problem}")]
    Symlink { target: String, problem: SymlinkProblem },
    #[error("written twice")]
    Duplicate,
    #[error("file '{0}' is still being written; end it first")]
    FileOpen(String),
    #[error("no file is being written")]
    NoFileOpen,
    #[error("parent '{0}' is a {1}, not a directory")]
    ParentNotDir(String, &'static str),
    #[error("hard link source {} is not a regular file", .0.display())]
    LinkSourceNotFile(PathBuf),
    #[error("hard link source {} is writable; only read-only files of earlier releases may be shared", .0.display())]
    LinkSourceWritable(PathBuf),
    #[error("hard link source {} has {actual} bytes, {expected} expected", path.display())]
    LinkSourceSize { path: PathBuf, actual: u64, expected: u64 },
    #[error("in the manifest but not written")]
    Missing,
    #[error("written but not in the manifest")]
    Extra,
    #[error("is a {written} but the manifest says {manifest}")]
    TypeMismatch {
        written: &'static str,
        manifest: &'static str,
    },
    #[error("SHA-256 {written} differs from {manifest} in the manifest")]
    DigestMismatch { written: String, manifest: String },
    #[error("size {written} differs from {manifest} in the manifest")]
    SizeMismatch { written: u64, manifest: u64 },
    #[error("executable bit {written} differs from {manifest} in the manifest")]
    ModeMismatch { written: bool, manifest: bool },
    #[error("symlink target '{written}' differs from '{manifest}' in the manifest")]
    TargetMismatch { written: String, manifest: String },
    #[error("{action}: {source}")]
    Io { action: &'static str, source: io::Error },
}

/// A release that could not be written; names the directory and, where
/// there is one, the entry.
#[derive(Debug, thiserror::Error)]
#[error("release {}{}: {problem}", dir.display(), entry.as_ref().map(|e| format!(": entry '{e}'")).unwrap_or_default())]
pub struct ReleaseError {
    pub dir: PathBuf,
    pub entry: Option<String>,
    pub problem: ReleaseProblem,
}

/// What the writer made at one path.
#[derive(Debug, Clone)]
enum Made {
    /// `true` once named by `add_dir`; a parent made for a deeper entry is
    /// not, and may still be named once.
    Dir(bool),
    File(WrittenFile),
    Symlink(String),
}

impl Made {
    fn type_name(&self) -> &'static str {
        match self {
            Self::Dir(_) => "dir",
            Self::File(_) => "file",
            Self::Symlink(_) => "symlink",
        }
    }
}

/// Builds one release directory; see the module docs.
pub struct ReleaseWriter {
    dir: PathBuf,
    root: OwnedFd,
    made: BTreeMap<String, Made>,
    /// The directories open from the root down to the last parent used:
    /// entries arrive mostly sorted, so consecutive files share them.
    open: Vec<(String, OwnedFd)>,
    buf: Vec<u8>,
    /// A file being written by pushes ([`ReleaseWriter::file_begin`]).
    pending: Option<PendingFile>,
    finished: bool,
}

/// A regular file between `file_begin` and `file_end`.
struct PendingFile {
    path: String,
    file: File,
    sha: Sha256,
    size: u64,
    executable: bool,
}

impl fmt::Debug for ReleaseWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReleaseWriter")
            .field("dir", &self.dir)
            .field("entries", &self.made.len())
            .field("finished", &self.finished)
            .finish()
    }
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

impl ReleaseWriter {
    /// Creates `dir` (its parent must exist) and refuses one that exists.
    pub fn create(dir: &Path) -> Result<Self, ReleaseError> {
        let fail = |problem| ReleaseError {
            dir: dir.to_owned(),
            entry: None,
            problem,
        };
        match fs::create_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(fail(ReleaseProblem::DestinationExists)),
            Err(source) => {
                return Err(fail(ReleaseProblem::Io {
                    action: "create the release directory",
                    source,
                }));
            }
        }
        let root = match rustix::fs::open(dir, dir_flags(), Mode::empty()) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = fs::remove_dir(dir);
                return Err(fail(ReleaseProblem::Io {
                    action: "open the release directory",
                    source: e.into(),
                }));
            }
        };
        Ok(Self {
            dir: dir.to_owned(),
            root,
            made: BTreeMap::new(),
            open: Vec::new(),
            buf: vec![0; CHUNK],
            pending: None,
            finished: false,
        })
    }

    /// The directory being written.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What was written at `path`, if it is a regular file.
    pub fn file(&self, path: &str) -> Option<&WrittenFile> {
        match self.made.get(path) {
            Some(Made::File(f)) => Some(f),
            _ => None,
        }
    }

    /// How many entries were written.
    pub fn len(&self) -> usize {
        self.made.len()
    }

    pub fn is_empty(&self) -> bool {
        self.made.is_empty()
    }

    fn err(&self, entry: &str, problem: ReleaseProblem) -> ReleaseError {
        ReleaseError {
            dir: self.dir.clone(),
            entry: Some(entry.to_owned()),
            problem,
        }
    }

    fn io(&self, entry: &str, action: &'static str, source: impl Into<io::Error>) -> ReleaseError {
        self.err(
            entry,
            ReleaseProblem::Io {
                action,
                source: source.into(),
            },
        )
    }

    /// Checks `path` and that nothing was written there yet; makes its
    /// missing parents; leaves the parent open; returns the last component.
    fn prepare<'p>(&mut self, path: &'p str) -> Result<&'p str, ReleaseError> {
        if let Some(open) = &self.pending {
            return Err(self.err(path, ReleaseProblem::FileOpen(open.path.clone())));
        }
        manifest::check_path(path).map_err(|p| self.err(path, ReleaseProblem::Path(p)))?;
        if self.made.contains_key(path) {
            return Err(self.err(path, ReleaseProblem::Duplicate));
        }
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        if !parent.is_empty() {
            self.make_dirs(parent, path)?;
        }
        self.open_dir(parent)
            .map_err(|e| self.io(path, "open the parent directory", e))?;
        Ok(name)
    }

    /// Makes every missing directory of `parent`, refusing a non-directory.
    fn make_dirs(&mut self, parent: &str, entry: &str) -> Result<(), ReleaseError> {
        let mut end = 0;
        for comp in parent.split('/') {
            end += comp.len();
            let prefix = &parent[..end];
            match self.made.get(prefix) {
                Some(Made::Dir(_)) => {}
                Some(other) => {
                    let kind = other.type_name();
                    return Err(self.err(entry, ReleaseProblem::ParentNotDir(prefix.to_owned(), kind)));
                }
                None => self.mkdir(prefix, false)?,
            }
            end += 1;
        }
        Ok(())
    }

    fn mkdir(&mut self, path: &str, named: bool) -> Result<(), ReleaseError> {
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        self.open_dir(parent)
            .map_err(|e| self.io(path, "open the parent directory", e))?;
        rustix::fs::mkdirat(self.cwd(), name, Mode::from_raw_mode(0o700))
            .map_err(|e| self.io(path, "create the directory", e))?;
        self.made.insert(path.to_owned(), Made::Dir(named));
        Ok(())
    }

    /// The directory `open_dir` last opened.
    fn cwd(&self) -> BorrowedFd<'_> {
        self.open.last().map_or(self.root.as_fd(), |(_, fd)| fd.as_fd())
    }

    /// Opens `parent` (a directory this writer made) component by component,
    /// never following a symlink; keeps the chain open for the next entry.
    fn open_dir(&mut self, parent: &str) -> io::Result<()> {
        let comps: Vec<&str> = if parent.is_empty() {
            Vec::new()
        } else {
            parent.split('/').collect()
        };
        let keep = self
            .open
            .iter()
            .zip(&comps)
            .take_while(|((name, _), comp)| name == *comp)
            .count();
        self.open.truncate(keep);
        for comp in &comps[keep..] {
            let fd = rustix::fs::openat(self.cwd(), *comp, dir_flags(), Mode::empty())?;
            self.open.push(((*comp).to_owned(), fd));
        }
        Ok(())
    }

    /// Makes a directory (and any missing parents).
    pub fn add_dir(&mut self, path: &str) -> Result<(), ReleaseError> {
        if let Some(Made::Dir(named @ false)) = self.made.get_mut(path) {
            // A parent made earlier for a deeper entry, named now by its own.
            *named = true;
            return Ok(());
        }
        self.prepare(path)?;
        self.mkdir(path, true)
    }

    /// Writes a regular file from `reader`, hashing it on the way; `mode`
    /// only decides whether it is executable. The caller bounds `reader`
    /// (e.g. with `Read::take`) when its length is not to be trusted.
    pub fn add_file(&mut self, path: &str, mode: u32, mut reader: impl Read) -> Result<WrittenFile, ReleaseError> {
        self.file_begin(path, mode)?;
        let mut buf = std::mem::take(&mut self.buf);
        let copied = loop {
            match reader.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    if let Err(e) = self.file_write(&buf[..n]) {
                        break Err(e);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(self.io(path, "read the file's data", e)),
            }
        };
        self.buf = buf;
        copied?;
        self.file_end()
    }

    /// Starts a regular file whose bytes arrive by [`Self::file_write`]
    /// (an archive read in chunks); [`Self::file_end`] completes it. No
    /// other entry may be added in between.
    pub fn file_begin(&mut self, path: &str, mode: u32) -> Result<(), ReleaseError> {
        let name = self.prepare(path)?;
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(self.cwd(), name, flags, Mode::from_raw_mode(0o600))
            .map_err(|e| self.io(path, "create the file", e))?;
        // Recorded before writing, so a failure later still counts it as ours.
        let executable = mode & 0o111 != 0;
        self.made.insert(
            path.to_owned(),
            Made::File(WrittenFile {
                size: 0,
                sha256: Sha256Digest::zero(),
                executable,
            }),
        );
        self.pending = Some(PendingFile {
            path: path.to_owned(),
            file: File::from(fd),
            sha: Sha256::new(),
            size: 0,
            executable,
        });
        Ok(())
    }

    /// Appends bytes to the file [`Self::file_begin`] started.
    pub fn file_write(&mut self, data: &[u8]) -> Result<(), ReleaseError> {
        let Some(open) = self.pending.as_mut() else {
            return Err(ReleaseError {
                dir: self.dir.clone(),
                entry: None,
                problem: ReleaseProblem::NoFileOpen,
            });
        };
        open.sha.update(data);
        open.size += data.len() as u64;
        if let Err(e) = open.file.write_all(data) {
            let path = open.path.clone();
            return Err(self.io(&path, "write the file", e));
        }
        Ok(())
    }

    /// Completes the file [`Self::file_begin`] started: read-only, hashed.
    pub fn file_end(&mut self) -> Result<WrittenFile, ReleaseError> {
        let Some(open) = self.pending.take() else {
            return Err(ReleaseError {
                dir: self.dir.clone(),
                entry: None,
                problem: ReleaseProblem::NoFileOpen,
            });
        };
        rustix::fs::fchmod(
            &open.file,
            Mode::from_raw_mode(if open.executable { 0o555 } else { 0o444 }),
        )
        .map_err(|e| self.io(&open.path, "make the file read-only", e))?;
        let written = WrittenFile {
            size: open.size,
            sha256: Sha256Digest::from_bytes(open.sha.finalize().into()),
            executable: open.executable,
        };
        self.made.insert(open.path, Made::File(written.clone()));
        Ok(written)
    }

    /// Hard-links `existing` (a read-only regular file, e.g. of an earlier
    /// release) at `path` and hashes it, so `finish` checks it like any
    /// written file. The link shares the inode: its mode is the existing
    /// file's, which is why a writable source is refused.
    pub fn add_hardlink_from(&mut self, path: &str, existing: &Path) -> Result<WrittenFile, ReleaseError> {
        self.link(path, rustix::fs::CWD, existing, None)
    }

    /// Like [`Self::add_hardlink_from`] without reading the file: `known`
    /// is its digest as verified when the file was first written (an earlier
    /// release's checked manifest). The size, the executable bit and that
    /// the file is still read-only are checked; the content is trusted.
    pub fn add_hardlink_known(&mut self, path: &str, existing: &Path, known: &WrittenFile) -> Result<(), ReleaseError> {
        self.link(path, rustix::fs::CWD, existing, Some(known)).map(|_| ())
    }

    /// [`Self::add_hardlink_known`] with the source named relative to an
    /// open directory (an earlier release), which spares resolving the
    /// same long prefix for every file of a large tree.
    pub fn add_hardlink_known_at(
        &mut self,
        path: &str,
        source: &SourceDir,
        relative: &str,
        known: &WrittenFile,
    ) -> Result<(), ReleaseError> {
        manifest::check_path(relative).map_err(|p| self.err(path, ReleaseProblem::Path(p)))?;
        self.link(path, source.fd.as_fd(), Path::new(relative), Some(known))
            .map(|_| ())
    }

    fn link(
        &mut self,
        path: &str,
        from: BorrowedFd<'_>,
        existing: &Path,
        known: Option<&WrittenFile>,
    ) -> Result<WrittenFile, ReleaseError> {
        let name = self.prepare(path)?;
        // Flags 0: a symlink at `existing` is linked itself, never followed;
        // the checks below then refuse it.
        rustix::fs::linkat(from, existing, self.cwd(), name, AtFlags::empty())
            .map_err(|e| self.io(path, "hard-link the file", e))?;
        // The link, not the path it came from: it is what the release holds.
        let checked = rustix::fs::statat(self.cwd(), name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(ReleaseProblem::from_errno("inspect the hard link"))
            .and_then(|st| link_problem(&st, existing, known).map(|()| st));
        let st = match checked {
            Ok(st) => st,
            Err(problem) => {
                let _ = rustix::fs::unlinkat(self.cwd(), name, AtFlags::empty());
                return Err(self.err(path, problem));
            }
        };
        let executable = st.st_mode & 0o111 != 0;
        let written = match known {
            Some(k) => WrittenFile {
                size: k.size,
                sha256: k.sha256.clone(),
                executable,
            },
            None => {
                // Recorded first, so a failure below still counts it as ours.
                self.made.insert(
                    path.to_owned(),
                    Made::File(WrittenFile {
                        size: 0,
                        sha256: Sha256Digest::zero(),
                        executable,
                    }),
                );
                let fd = rustix::fs::openat(
                    self.cwd(),
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| self.io(path, "open the hard link", e))?;
                let (size, sha256) =
                    hash(File::from(fd), &mut self.buf).map_err(|e| self.io(path, "read the hard link", e))?;
                WrittenFile {
                    size,
                    sha256,
                    executable,
                }
            }
        };
        self.made.insert(path.to_owned(), Made::File(written.clone()));
        Ok(written)
    }

    /// Makes a symlink whose relative `target` must resolve inside the
    /// release (through the symlinks written so far; `finish` checks the
    /// complete tree again).
    pub fn add_symlink(&mut self, path: &str, target: &str) -> Result<(), ReleaseError> {
        manifest::check_path(path).map_err(|p| self.err(path, ReleaseProblem::Path(p)))?;
        manifest::check_link_target(target).map_err(|problem| {
            self.err(
                path,
                ReleaseProblem::LinkTarget {
                    target: target.to_owned(),
                    problem,
                },
            )
        })?;
        resolve(&self.made, path, target).map_err(|problem| {
            self.err(
                path,
                ReleaseProblem::Symlink {
                    target: target.to_owned(),
                    problem,
                },
            )
        })?;
        let name = self.prepare(path)?;
        rustix::fs::symlinkat(target, self.cwd(), name).map_err(|e| self.io(path, "create the symlink", e))?;
        self.made.insert(path.to_owned(), Made::Symlink(target.to_owned()));
        Ok(())
    }

    /// Checks that the tree is exactly `manifest` (every file's size, digest
    /// and executable bit, every symlink's target, no missing or extra
    /// entry, no symlink resolving outside), then makes the directories
    /// read-only. Returns the release directory. On error everything is
    /// removed.
    pub fn finish(mut self, manifest: &Manifest) -> Result<PathBuf, ReleaseError> {
        self.open.clear();
        let mut expected: HashMap<&str, &EntryKind> = HashMap::with_capacity(manifest.entries.len());
        for e in &manifest.entries {
            if expected.insert(e.path.as_str(), &e.kind).is_some() {
                return Err(self.err(&e.path, ReleaseProblem::Duplicate));
            }
            let Some(made) = self.made.get(&e.path) else {
                return Err(self.err(&e.path, ReleaseProblem::Missing));
            };
            compare(made, &e.kind).map_err(|p| self.err(&e.path, p))?;
        }
        if let Some(extra) = self.made.keys().find(|p| !expected.contains_key(p.as_str())) {
            return Err(self.err(extra, ReleaseProblem::Extra));
        }
        if let Some((e, problem)) = manifest.first_escaping_symlink() {
            let target = match &e.kind {
                EntryKind::Symlink { target } => target.clone(),
                _ => String::new(),
            };
            return Err(self.err(&e.path, ReleaseProblem::Symlink { target, problem }));
        }
        let dirs: Vec<String> = self
            .made
            .iter()
            .filter(|(_, m)| matches!(m, Made::Dir(_)))
            .map(|(p, _)| p.clone())
            .collect();
        for d in dirs {
            let fd = rustix::fs::openat(&self.root, d.as_str(), dir_flags(), Mode::empty())
                .map_err(|e| self.io(&d, "open the directory", e))?;
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o555))
                .map_err(|e| self.io(&d, "make the directory read-only", e))?;
        }
        rustix::fs::fchmod(&self.root, Mode::from_raw_mode(0o555)).map_err(|e| ReleaseError {
            dir: self.dir.clone(),
            entry: None,
            problem: ReleaseProblem::Io {
                action: "make the release directory read-only",
                source: e.into(),
            },
        })?;
        self.finished = true;
        Ok(self.dir.clone())
    }

    /// Removes everything written (also what dropping an unfinished writer does).
    pub fn abandon(mut self) -> io::Result<()> {
        self.finished = true;
        self.open.clear();
        remove_tree(&self.dir)
    }
}

impl Drop for ReleaseWriter {
    fn drop(&mut self) {
        if !self.finished {
            self.open.clear();
            let _ = remove_tree(&self.dir);
        }
    }
}

/// An earlier release (or any directory) that hard links are made from,
/// opened once.
#[derive(Debug)]
pub struct SourceDir {
    fd: OwnedFd,
}

impl SourceDir {
    /// Opens `dir`, which must be a directory (not a symlink to one).
    pub fn open(dir: &Path) -> io::Result<Self> {
        Ok(Self {
            fd: rustix::fs::open(dir, dir_flags(), Mode::empty())?,
        })
    }
}

impl ReleaseError {
    /// Whether the file system failed (rather than the input being refused).
    pub fn is_io(&self) -> bool {
        matches!(self.problem, ReleaseProblem::Io { .. })
    }
}

impl ReleaseProblem {
    fn from_errno(action: &'static str) -> impl Fn(rustix::io::Errno) -> Self {
        move |e| Self::Io {
            action,
            source: e.into(),
        }
    }
}

/// Why a fresh hard link may not stay: not a regular file, writable, or
/// not of the size its digest was known for.
fn link_problem(st: &rustix::fs::Stat, existing: &Path, known: Option<&WrittenFile>) -> Result<(), ReleaseProblem> {
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(ReleaseProblem::LinkSourceNotFile(existing.to_owned()));
    }
    if st.st_mode & 0o222 != 0 {
        return Err(ReleaseProblem::LinkSourceWritable(existing.to_owned()));
    }
    let size = u64::try_from(st.st_size).unwrap_or(0);
    match known {
        Some(k) if k.size != size => Err(ReleaseProblem::LinkSourceSize {
            path: existing.to_owned(),
            actual: size,
            expected: k.size,
        }),
        _ => Ok(()),
    }
}

fn hash(mut file: File, buf: &mut [u8]) -> io::Result<(u64, Sha256Digest)> {
    let mut sha = Sha256::new();
    let mut size = 0u64;
    loop {
        let n = match file.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        sha.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, Sha256Digest::from_bytes(sha.finalize().into())))
}

fn compare(made: &Made, want: &EntryKind) -> Result<(), ReleaseProblem> {
    let manifest_type = match want {
        EntryKind::Dir => "dir",
        EntryKind::File { .. } => "file",
        EntryKind::Symlink { .. } => "symlink",
    };
    match (made, want) {
        (Made::Dir(_), EntryKind::Dir) => Ok(()),
        (
            Made::File(w),
            EntryKind::File {
                size,
                sha256,
                executable,
            },
        ) => {
            if w.size != *size {
                Err(ReleaseProblem::SizeMismatch {
                    written: w.size,
                    manifest: *size,
                })
            } else if w.sha256 != *sha256 {
                Err(ReleaseProblem::DigestMismatch {
                    written: w.sha256.to_string(),
                    manifest: sha256.to_string(),
                })
            } else if w.executable != *executable {
                Err(ReleaseProblem::ModeMismatch {
                    written: w.executable,
                    manifest: *executable,
                })
            } else {
                Ok(())
            }
        }
        (Made::Symlink(t), EntryKind::Symlink { target }) if t == target => Ok(()),
        (Made::Symlink(t), EntryKind::Symlink { target }) => Err(ReleaseProblem::TargetMismatch {
            written: t.clone(),
            manifest: target.clone(),
        }),
        (m, _) => Err(ReleaseProblem::TypeMismatch {
            written: m.type_name(),
            manifest: manifest_type,
        }),
    }
}

/// Resolves `target` of the link at `link` over what was written so far,
/// expanding written symlinks; `..` above the release root is an escape.
fn resolve(made: &BTreeMap<String, Made>, link: &str, target: &str) -> Result<(), SymlinkProblem> {
    let mut stack: Vec<String> = link.split('/').map(str::to_owned).collect();
    stack.pop();
    let mut hops = 0;
    walk(made, &mut stack, target, &mut hops)
}

fn walk(
    made: &BTreeMap<String, Made>,
    stack: &mut Vec<String>,
    target: &str,
    hops: &mut usize,
) -> Result<(), SymlinkProblem> {
    if target.starts_with('/') {
        return Err(SymlinkProblem::Absolute);
    }
    *hops += 1;
    if *hops > MAX_SYMLINK_HOPS {
        return Err(SymlinkProblem::Loop);
    }
    for comp in target.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if stack.pop().is_none() {
                    return Err(SymlinkProblem::Outside);
                }
            }
            name => {
                stack.push(name.to_owned());
                if let Some(Made::Symlink(next)) = made.get(&stack.join("/")) {
                    let next = next.clone();
                    stack.pop();
                    walk(made, stack, &next, hops)?;
                }
            }
        }
    }
    Ok(())
}

/// Removes a directory tree that may be read-only (a finished release),
/// never following a symlink: directories are made writable for their
/// owner just before their entries go. A missing `path` is not an error.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_dir() {
        return fs::remove_file(path);
    }
    if meta.permissions().mode() & 0o700 != 0o700 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
    }
    for entry in fs::read_dir(path)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_tree(&entry.path())?;
        } else {
            fs::remove_file(entry.path())?;
        }
    }
    fs::remove_dir(path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::manifest::ManifestEntry;

    fn file(path: &str, body: &[u8], executable: bool) -> ManifestEntry {
        ManifestEntry {
            path: path.to_owned(),
            kind: EntryKind::File {
                size: body.len() as u64,
                sha256: Sha256Digest::of(body),
                executable,
            },
        }
    }
    fn dir(path: &str) -> ManifestEntry {
        ManifestEntry {
            path: path.to_owned(),
            kind: EntryKind::Dir,
        }
    }
    fn link(path: &str, target: &str) -> ManifestEntry {
        ManifestEntry {
            path: path.to_owned(),
            kind: EntryKind::Symlink {
                target: target.to_owned(),
            },
        }
    }

    /// One step of building a release.
    #[derive(Debug, Clone)]
    enum Op {
        Dir(&'static str),
        File(&'static str, &'static [u8], u32),
        Link(&'static str, &'static str),
        /// Hard-link from the `outside` file of the test directory.
        HardLink(&'static str),
    }

    /// Runs `ops` then `finish(manifest)`; returns the error text of the
    /// first failure, or `None`. Whatever happens, a failed release leaves
    /// nothing behind and touches nothing outside.
    fn run(ops: &[Op], manifest: &Manifest) -> Option<String> {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::write(&outside, b"outside").unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o444)).unwrap();
        let dest = tmp.path().join("release");
        let result = (|| -> Result<PathBuf, ReleaseError> {
            let mut w = ReleaseWriter::create(&dest)?;
            for op in ops {
                match op {
                    Op::Dir(p) => w.add_dir(p)?,
                    Op::File(p, body, mode) => {
                        w.add_file(p, *mode, *body)?;
                    }
                    Op::Link(p, t) => w.add_symlink(p, t)?,
                    Op::HardLink(p) => {
                        w.add_hardlink_from(p, &outside)?;
                    }
                }
            }
            w.finish(manifest)
        })();
        assert_eq!(fs::read(&outside).unwrap(), b"outside");
        let names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        match result {
            Ok(d) => {
                assert_eq!(d, dest);
                let _ = remove_tree(&dest);
                None
            }
            Err(e) => {
                assert_eq!(names, ["outside"], "{e}: the failed release was not removed");
                Some(e.to_string())
            }
        }
    }

    fn check(ops: &[Op], manifest: Vec<ManifestEntry>, expected: Option<&str>) {
        let got = run(ops, &Manifest::new(manifest));
        match (got, expected) {
            (None, None) => {}
            (Some(err), Some(fragment)) => assert!(err.contains(fragment), "{ops:?}: {err} lacks {fragment}"),
            (got, want) => panic!("{ops:?}: got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn builds_what_the_manifest_says_and_refuses_the_rest() {
        use Op::*;
        let good = || {
            vec![
                dir("a"),
                file("a/run.sh", b"#!/bin/sh\n", true),
                file("a/x.js", b"x", false),
                link("l", "a/x.js"),
            ]
        };
        let good_ops = [
            Dir("a"),
            File("a/run.sh", b"#!/bin/sh\n", 0o755),
            File("a/x.js", b"x", 0o644),
            Link("l", "a/x.js"),
        ];
        check(&good_ops, good(), None);
        // Parents are made on demand, still checked against the manifest.
        check(&good_ops[1..], good(), None);
        check(
            &[File("b/c/f", b"f", 0o644)],
            vec![file("b/c/f", b"f", false)],
            Some("entry 'b': written but not in the manifest"),
        );

        // Hostile paths.
        check(
            &[File("/etc/x", b"", 0o644)],
            vec![],
            Some("entry '/etc/x': absolute path"),
        );
        check(
            &[File("../x", b"", 0o644)],
            vec![],
            Some("entry '../x': path has a '..' component"),
        );
        check(&[File("a/../../x", b"", 0o644)], vec![], Some("'..' component"));
        check(&[Dir("./a")], vec![], Some("'.' component"));
        check(&[File("a//b", b"", 0o644)], vec![], Some("empty component"));
        // Escaping and absolute symlinks.
        check(
            &[Link("l", "../outside")],
            vec![],
            Some("entry 'l': symlink target '../outside': symlink resolves outside the tree"),
        );
        check(&[Link("l", "/etc/passwd")], vec![], Some("absolute path"));
        check(
            &[Dir("d"), Link("d/up", ".."), Link("z", "d/up/..")],
            vec![],
            Some("entry 'z'"),
        );
        check(
            &[Link("x", "."), Link("y", "x/../..")],
            vec![],
            Some("resolves outside"),
        );
        // Writing through a symlink of the input is refused, never followed.
        check(
            &[Link("a", "b"), Dir("b"), File("a/f", b"f", 0o644)],
            vec![],
            Some("entry 'a/f': parent 'a' is a symlink"),
        );
        // Twice the same path.
        check(
            &[File("f", b"1", 0o644), File("f", b"2", 0o644)],
            vec![],
            Some("entry 'f': written twice"),
        );
        check(&[File("f", b"1", 0o644), Dir("f")], vec![], Some("written twice"));

        // The manifest decides.
        check(
            &[File("f", b"evil", 0o644)],
            vec![file("f", b"good", false)],
            Some("entry 'f': SHA-256"),
        );
        check(
            &[File("f", b"long", 0o644)],
            vec![file("f", b"short", false)],
            Some("size 4 differs from 5"),
        );
        check(
            &[File("f", b"x", 0o644)],
            vec![file("f", b"x", true)],
            Some("executable bit false differs from true"),
        );
        check(
            &[File("f", b"x", 0o644)],
            vec![file("f", b"x", false), file("g", b"y", false)],
            Some("entry 'g': in the manifest but not written"),
        );
        check(
            &[File("f", b"x", 0o644), File("g", b"y", 0o644)],
            vec![file("f", b"x", false)],
            Some("entry 'g': written but not in the manifest"),
        );
        check(
            &[Dir("f")],
            vec![file("f", b"x", false)],
            Some("is a dir but the manifest says file"),
        );
        check(
            &[Link("l", "a")],
            vec![link("l", "b")],
            Some("symlink target 'a' differs from 'b'"),
        );
        // A manifest whose own symlinks escape through one another.
        check(
            &[Link("x", "."), Link("y", "x/..")],
            vec![link("x", "."), link("y", "x/..")],
            Some("entry 'y'"),
        );

        // Hard links: from a read-only regular file, hashed.
        check(&[HardLink("h")], vec![file("h", b"outside", false)], None);
        check(
            &[HardLink("h")],
            vec![file("h", b"OUTSIDE", false)],
            Some("entry 'h': SHA-256"),
        );
    }

    #[test]
    fn refuses_an_existing_destination_and_leaves_it_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("r");
        fs::create_dir(&dest).unwrap();
        fs::write(dest.join("keep"), b"k").unwrap();
        let err = ReleaseWriter::create(&dest).unwrap_err();
        assert!(matches!(err.problem, ReleaseProblem::DestinationExists), "{err}");
        assert_eq!(fs::read(dest.join("keep")).unwrap(), b"k");
        // A symlink at the destination is an existing destination too.
        let target = tmp.path().join("elsewhere");
        fs::create_dir(&target).unwrap();
        symlink(&target, tmp.path().join("s")).unwrap();
        assert!(ReleaseWriter::create(&tmp.path().join("s")).is_err());
        assert_eq!(fs::read_dir(&target).unwrap().count(), 0);
    }

    fn ino(p: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt as _;
        fs::symlink_metadata(p).unwrap().ino()
    }

    #[test]
    fn finished_release_is_read_only_and_links_share_the_inode() {
        let tmp = tempfile::tempdir().unwrap();
        let m1 = Manifest::new(vec![dir("d"), file("d/a", b"aaa", false), file("run", b"#!", true)]);
        let mut w = ReleaseWriter::create(&tmp.path().join("r1")).unwrap();
        w.add_dir("d").unwrap();
        let a = w.add_file("d/a", 0o644, &b"aaa"[..]).unwrap();
        assert_eq!(a.sha256, Sha256Digest::of(b"aaa"));
        w.add_file("run", 0o755, &b"#!"[..]).unwrap();
        let r1 = w.finish(&m1).unwrap();
        let mode = |p: &Path| fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&r1.join("d/a")), 0o444);
        assert_eq!(mode(&r1.join("run")), 0o555);
        assert_eq!(mode(&r1.join("d")), 0o555);
        assert_eq!(mode(&r1), 0o555);

        let m2 = Manifest::new(vec![file("a", b"aaa", false), file("run", b"#!", true)]);
        let mut w = ReleaseWriter::create(&tmp.path().join("r2")).unwrap();
        w.add_hardlink_known("a", &r1.join("d/a"), &a).unwrap();
        // A known digest with the wrong size is refused before linking.
        let wrong = WrittenFile { size: 9, ..a.clone() };
        let err = w.add_hardlink_known("b", &r1.join("d/a"), &wrong).unwrap_err();
        assert!(err.to_string().contains("has 3 bytes, 9 expected"), "{err}");
        w.add_hardlink_from("run", &r1.join("run")).unwrap();
        let r2 = w.finish(&m2).unwrap();
        let mut w = ReleaseWriter::create(&tmp.path().join("r2b")).unwrap();
        let source = SourceDir::open(&r1).unwrap();
        w.add_hardlink_known_at("a", &source, "d/a", &a).unwrap();
        let err = w.add_hardlink_known_at("b", &source, "../r1/d/a", &a).unwrap_err();
        assert!(err.to_string().contains("'..' component"), "{err}");
        let err = w.add_hardlink_known_at("c", &source, "d", &a).unwrap_err();
        assert!(err.to_string().contains("entry 'c'"), "{err}");
        assert!(!tmp.path().join("r2b/c").exists());
        w.add_hardlink_known_at(
            "run",
            &source,
            "run",
            &WrittenFile {
                size: 2,
                sha256: Sha256Digest::of(b"#!"),
                executable: true,
            },
        )
        .unwrap();
        let r2b = w.finish(&m2).unwrap();
        assert_eq!(ino(&r2b.join("a")), ino(&r1.join("d/a")));
        assert_eq!(ino(&r2.join("a")), ino(&r1.join("d/a")));
        assert_eq!(ino(&r2.join("run")), ino(&r1.join("run")));

        // A writable source is refused: making it read-only would change it.
        let loose = tmp.path().join("loose");
        fs::write(&loose, b"aaa").unwrap();
        let mut w = ReleaseWriter::create(&tmp.path().join("r3")).unwrap();
        let err = w.add_hardlink_from("a", &loose).unwrap_err();
        assert!(err.to_string().contains("is writable"), "{err}");
        // A symlink as source is refused too.
        symlink(r1.join("d/a"), tmp.path().join("sl")).unwrap();
        let err = w.add_hardlink_from("a", &tmp.path().join("sl")).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        drop(w);
        assert!(!tmp.path().join("r3").exists());

        remove_tree(&r1).unwrap();
        remove_tree(&r2).unwrap();
        remove_tree(&r2b).unwrap();
        assert!(!r1.exists() && !r2.exists());
        assert_eq!(fs::read(&loose).unwrap(), b"aaa");
    }

    #[test]
    fn a_symlink_swapped_in_under_the_writer_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        fs::create_dir(&victim).unwrap();
        let dest = tmp.path().join("r");
        let mut w = ReleaseWriter::create(&dest).unwrap();
        w.add_dir("d").unwrap();
        // Someone replaces the directory with a symlink behind the writer's back.
        w.open.clear();
        fs::remove_dir(dest.join("d")).unwrap();
        symlink(&victim, dest.join("d")).unwrap();
        let err = w.add_file("d/f", 0o644, &b"x"[..]).unwrap_err();
        assert!(err.to_string().contains("entry 'd/f'"), "{err}");
        assert_eq!(fs::read_dir(&victim).unwrap().count(), 0);
        drop(w);
        assert!(!dest.exists());
        assert!(victim.exists());
    }
}
