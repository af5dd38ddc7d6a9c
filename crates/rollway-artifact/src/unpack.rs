//! Unpacking an archive into a fresh release directory — the one code path
//! the deploy engine uses on every host. Everything is checked by
//! [`crate::read`]; here every write is made relative to directory handles
//! opened without following symlinks, into a directory this call created,
//! so nothing can land outside it. A refused archive leaves nothing: the
//! work happens in a hidden sibling that is renamed into place only when
//! every check passed, and removed otherwise.

use std::fs::{self, File};
use std::io::{self, Read as _, Seek as _, Write as _};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use rollway_model::Sha256Digest;
use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags};

use crate::error::{ArchiveError, Problem};
use crate::manifest::Manifest;
use crate::read::{Expected, Sink, read_archive};

/// How to unpack.
#[derive(Debug, Clone)]
pub struct UnpackOptions {
    /// An earlier release directory: a file whose path, size, executable
    /// bit and bytes are unchanged is hard-linked from it instead of written.
    pub previous: Option<PathBuf>,
    /// Files become 0444 (0555 executable) and directories 0555, so files
    /// shared with other releases cannot be changed through any of them.
    pub read_only: bool,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        Self {
            previous: None,
            read_only: true,
        }
    }
}

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
    /// Files hard-linked from the previous release.
    pub files_linked: u64,
    pub bytes_linked: u64,
}

/// Unpacks `archive` into `dest`, which must not exist (its parent must).
/// The archive's SHA-256 must equal `expected_sha256`, every entry must be
/// safe and match the manifest; otherwise nothing is left behind and the
/// error names the archive and the entry.
pub fn unpack(
    archive: &Path,
    dest: &Path,
    expected_sha256: &Sha256Digest,
    options: &UnpackOptions,
) -> Result<UnpackedRelease, ArchiveError> {
    let fail = |problem: Problem| ArchiveError::new(archive.to_path_buf(), None, problem);
    if fs::symlink_metadata(dest).is_ok() {
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
    let mut nonce = [0u8; 6];
    let _ = getrandom::fill(&mut nonce);
    let fresh = parent.join(format!(
        ".{}.unpacking-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        hex::encode(nonce)
    ));
    fs::create_dir(&fresh).map_err(|e| fail(Problem::Write(e)))?;
    let result = unpack_into(archive, &fresh, dest, expected_sha256, options);
    if result.is_err() {
        let _ = remove_release(&fresh);
    }
    result
}

fn unpack_into(
    archive: &Path,
    fresh: &Path,
    dest: &Path,
    expected_sha256: &Sha256Digest,
    options: &UnpackOptions,
) -> Result<UnpackedRelease, ArchiveError> {
    let fail = |problem: Problem| ArchiveError::new(archive.to_path_buf(), None, problem);
    let root = open_dir(rustix::fs::CWD, fresh).map_err(|e| fail(Problem::Write(e)))?;
    let prev = match &options.previous {
        // The caller names it (it may be `ROOT/current`, a symlink), so its
        // own path is followed; nothing inside it is. One that cannot be
        // opened just means no links.
        Some(p) => rustix::fs::open(p, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).ok(),
        None => None,
    };
    let mut sink = Extract {
        root,
        prev,
        read_only: options.read_only,
        dirs: Vec::new(),
        current: None,
        stats: Stats::default(),
        cmp: Vec::new(),
    };
    let report = read_archive(archive, &Expected::sha256(expected_sha256), &mut sink)?;
    let dir_mode = if options.read_only { 0o555 } else { 0o755 };
    // Children before parents, so no directory is closed before its
    // contents are done.
    for d in sink.dirs.iter().rev() {
        let fd = walk_to(sink.root.as_fd(), d.split('/')).map_err(|e| fail(Problem::Write(e)))?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(dir_mode)).map_err(|e| fail(Problem::Write(e.into())))?;
    }
    rustix::fs::renameat_with(rustix::fs::CWD, fresh, rustix::fs::CWD, dest, RenameFlags::NOREPLACE).map_err(|e| {
        if e == rustix::io::Errno::EXIST {
            fail(Problem::DestinationExists(dest.to_path_buf()))
        } else {
            fail(Problem::Write(e.into()))
        }
    })?;
    // The root last: renaming within one parent needs no write permission
    // on the directory itself, but keep the order obviously safe.
    rustix::fs::fchmod(&sink.root, Mode::from_raw_mode(dir_mode)).map_err(|e| fail(Problem::Write(e.into())))?;
    Ok(UnpackedRelease {
        dir: dest.to_path_buf(),
        sha256: report.sha256,
        content_digest: report.content_digest,
        size_bytes: report.size_bytes,
        manifest: report.manifest,
        files_written: sink.stats.files_written,
        bytes_written: sink.stats.bytes_written,
        files_linked: sink.stats.files_linked,
        bytes_linked: sink.stats.bytes_linked,
    })
}

/// Removes a release directory, read-only directories included, never
/// following a symlink.
pub fn remove_release(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            make_writable(dir)?;
            fs::remove_dir_all(dir)
        }
        other => other,
    }
}

fn make_writable(dir: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Ok(());
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    for e in fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            make_writable(&e.path())?;
        }
    }
    Ok(())
}

fn open_dir<Fd: AsFd>(at: Fd, path: impl rustix::path::Arg) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        at,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// A plain name: the reader has refused anything else already; this is
/// the second lock on the same door.
fn plain(c: &str) -> io::Result<&str> {
    if c.is_empty() || c == "." || c == ".." || c.contains('/') || c.contains('\0') {
        Err(io::Error::other(format!("unsafe path component '{c}'")))
    } else {
        Ok(c)
    }
}

/// Opens the directory at these components below `root`, refusing to
/// follow a symlink at any step.
fn walk_to<'a>(root: BorrowedFd<'_>, comps: impl Iterator<Item = &'a str>) -> io::Result<OwnedFd> {
    let mut fd = open_dir(root, ".")?;
    for c in comps {
        fd = open_dir(&fd, plain(c)?)?;
    }
    Ok(fd)
}

/// The directory holding `path` (opened safely) and the last component.
fn parent_of<'p>(root: BorrowedFd<'_>, path: &'p str) -> io::Result<(OwnedFd, &'p str)> {
    match path.rsplit_once('/') {
        Some((parent, name)) => Ok((walk_to(root, parent.split('/'))?, plain(name)?)),
        None => Ok((open_dir(root, ".")?, plain(path)?)),
    }
}

#[derive(Debug, Default)]
struct Stats {
    files_written: u64,
    bytes_written: u64,
    files_linked: u64,
    bytes_linked: u64,
}

/// The file being received.
enum Current {
    Writing {
        file: File,
        executable: bool,
        size: u64,
    },
    /// Same path, size and mode in the previous release: compare instead of
    /// writing, and hard-link if every byte matches.
    Comparing {
        prev_file: File,
        prev_parent: OwnedFd,
        parent: OwnedFd,
        name: String,
        executable: bool,
        size: u64,
        matched: u64,
    },
}

struct Extract {
    root: OwnedFd,
    prev: Option<OwnedFd>,
    read_only: bool,
    dirs: Vec<String>,
    current: Option<Current>,
    stats: Stats,
    cmp: Vec<u8>,
}

impl Extract {
    fn file_mode(&self, executable: bool) -> u32 {
        match (self.read_only, executable) {
            (true, true) => 0o555,
            (true, false) => 0o444,
            (false, true) => 0o755,
            (false, false) => 0o644,
        }
    }

    fn create(parent: &OwnedFd, name: &str) -> io::Result<File> {
        let fd = rustix::fs::openat(
            parent,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        Ok(File::from(fd))
    }

    /// The previous release's file at `path`, if it is a regular file of
    /// this size and executable bit.
    fn previous(&self, path: &str, executable: bool, size: u64) -> Option<(File, OwnedFd)> {
        let prev = self.prev.as_ref()?;
        let (pparent, name) = parent_of(prev.as_fd(), path).ok()?;
        let fd = rustix::fs::openat(
            &pparent,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let st = rustix::fs::fstat(&fd).ok()?;
        let file_type = rustix::fs::FileType::from_raw_mode(st.st_mode);
        let same = file_type == rustix::fs::FileType::RegularFile
            && st.st_size as u64 == size
            && (st.st_mode & 0o111 != 0) == executable;
        same.then(|| (File::from(fd), pparent))
    }

    /// Turns a comparison that diverged into a write: the bytes matched so
    /// far are copied from the previous file.
    fn diverge(&mut self) -> io::Result<()> {
        if let Some(Current::Comparing {
            mut prev_file,
            parent,
            name,
            executable,
            size,
            matched,
            ..
        }) = self.current.take()
        {
            let mut file = Self::create(&parent, &name)?;
            prev_file.rewind()?;
            let copied = io::copy(&mut (&mut prev_file).take(matched), &mut file)?;
            if copied != matched {
                return Err(io::Error::other("previous release file changed while it was read"));
            }
            self.current = Some(Current::Writing { file, executable, size });
        }
        Ok(())
    }
}

impl Sink for Extract {
    fn dir(&mut self, path: &str) -> io::Result<()> {
        let (parent, name) = parent_of(self.root.as_fd(), path)?;
        rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o700))?;
        self.dirs.push(path.to_owned());
        Ok(())
    }

    fn file_begin(&mut self, path: &str, executable: bool, size: u64) -> io::Result<()> {
        let (parent, name) = parent_of(self.root.as_fd(), path)?;
        self.current = Some(match self.previous(path, executable, size) {
            Some((prev_file, prev_parent)) => Current::Comparing {
                prev_file,
                prev_parent,
                parent,
                name: name.to_owned(),
                executable,
                size,
                matched: 0,
            },
            None => Current::Writing {
                file: Self::create(&parent, name)?,
                executable,
                size,
            },
        });
        Ok(())
    }

    fn file_chunk(&mut self, data: &[u8]) -> io::Result<()> {
        if let Some(Current::Comparing { prev_file, matched, .. }) = self.current.as_mut() {
            self.cmp.resize(data.len(), 0);
            let same = prev_file.read_exact(&mut self.cmp).is_ok() && self.cmp == data;
            if same {
                *matched += data.len() as u64;
                return Ok(());
            }
            self.diverge()?;
        }
        match self.current.as_mut() {
            Some(Current::Writing { file, .. }) => file.write_all(data),
            _ => Err(io::Error::other("file data outside a file entry")),
        }
    }

    fn file_end(&mut self) -> io::Result<()> {
        match self.current.take() {
            Some(Current::Writing { file, executable, size }) => {
                rustix::fs::fchmod(&file, Mode::from_raw_mode(self.file_mode(executable)))?;
                self.stats.files_written += 1;
                self.stats.bytes_written += size;
                Ok(())
            }
            Some(Current::Comparing {
                prev_file,
                prev_parent,
                parent,
                name,
                executable,
                size,
                matched,
            }) => {
                match rustix::fs::linkat(&prev_parent, name.as_str(), &parent, name.as_str(), AtFlags::empty()) {
                    Ok(()) => {
                        let want = self.file_mode(executable);
                        let st = rustix::fs::fstat(&prev_file)?;
                        if st.st_mode & 0o7777 != want {
                            rustix::fs::fchmod(&prev_file, Mode::from_raw_mode(want))?;
                        }
                        self.stats.files_linked += 1;
                        self.stats.bytes_linked += size;
                        Ok(())
                    }
                    // Another filesystem, or too many links: write a copy.
                    Err(_) => {
                        self.current = Some(Current::Comparing {
                            prev_file,
                            prev_parent,
                            parent,
                            name,
                            executable,
                            size,
                            matched,
                        });
                        self.diverge()?;
                        self.file_end()
                    }
                }
            }
            None => Ok(()),
        }
    }

    fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        let (parent, name) = parent_of(self.root.as_fd(), path)?;
        rustix::fs::symlinkat(target, &parent, name)?;
        Ok(())
    }

    fn hardlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        let (tparent, tname) = parent_of(self.root.as_fd(), target)?;
        let (parent, name) = parent_of(self.root.as_fd(), path)?;
        rustix::fs::linkat(&tparent, tname, &parent, name, AtFlags::empty())?;
        self.stats.files_linked += 1;
        Ok(())
    }
}
