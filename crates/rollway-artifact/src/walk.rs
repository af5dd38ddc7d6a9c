//! Walking the source tree: every directory, regular file and symlink with
//! the stat fields the cache keys on, sorted by path bytes; excluded paths
//! skipped; anything else (sockets, FIFOs, devices) refused.

use std::fs::{self, Metadata};
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use crate::error::PackError;
use crate::manifest::MANIFEST_NAME;

/// What a source path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    Dir,
    File,
    Symlink(String),
}

/// The stat fields that decide whether a cached digest still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatKey {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
    pub dev: u64,
}

impl StatKey {
    pub fn of(m: &Metadata) -> Self {
        Self {
            size: m.len(),
            mtime_ns: m.mtime().saturating_mul(1_000_000_000).saturating_add(m.mtime_nsec()),
            ctime_ns: m.ctime().saturating_mul(1_000_000_000).saturating_add(m.ctime_nsec()),
            ino: m.ino(),
            dev: m.dev(),
        }
    }
}

/// One path of the source tree.
#[derive(Debug, Clone)]
pub struct SourceEntry {
    /// Relative to the root, `/`-separated.
    pub path: String,
    pub kind: SourceKind,
    pub executable: bool,
    pub stat: StatKey,
}

/// The walked tree: where it is and what is in it.
#[derive(Debug)]
pub struct SourceTree {
    /// The directory entries are relative to (canonical).
    pub root: PathBuf,
    pub entries: Vec<SourceEntry>,
}

/// Walks `source` (a directory, or a single file that becomes the only
/// entry), skipping `exclude` (absolute, or relative to `source`).
pub fn walk(source: &Path, exclude: &[PathBuf]) -> Result<SourceTree, PackError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PackError::Io { path, source }
    };
    let canonical = fs::canonicalize(source).map_err(io(source))?;
    let meta = fs::metadata(&canonical).map_err(io(source))?;
    if meta.is_file() {
        let name = canonical
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| PackError::NotUtf8 {
                path: canonical.clone(),
            })?
            .to_owned();
        if name == MANIFEST_NAME {
            return Err(PackError::Reserved { path: canonical });
        }
        let root = canonical
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        let entry = entry_for(name, &meta, &canonical)?;
        return Ok(SourceTree {
            root,
            entries: vec![entry],
        });
    }
    let excluded: Vec<PathBuf> = exclude
        .iter()
        .filter_map(|p| {
            let abs = if p.is_absolute() { p.clone() } else { canonical.join(p) };
            // A path that does not exist cannot be walked into anyway.
            fs::canonicalize(&abs).ok()
        })
        .collect();
    let mut entries = Vec::new();
    let mut stack = vec![(canonical.clone(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        for item in fs::read_dir(&dir).map_err(io(&dir))? {
            let item = item.map_err(io(&dir))?;
            let abs = item.path();
            if excluded.iter().any(|x| x == &abs) {
                continue;
            }
            let name = item
                .file_name()
                .into_string()
                .map_err(|_| PackError::NotUtf8 { path: abs.clone() })?;
            let path = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            if path == MANIFEST_NAME {
                return Err(PackError::Reserved { path: abs });
            }
            // Relative to the open directory: no path walk from the root.
            let meta = item.metadata().map_err(io(&abs))?;
            let entry = entry_for(path, &meta, &abs)?;
            if entry.kind == SourceKind::Dir {
                stack.push((abs, entry.path.clone()));
            }
            entries.push(entry);
        }
    }
    entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(SourceTree {
        root: canonical,
        entries,
    })
}

fn entry_for(path: String, meta: &Metadata, abs: &Path) -> Result<SourceEntry, PackError> {
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        SourceKind::Dir
    } else if ft.is_file() {
        SourceKind::File
    } else if ft.is_symlink() {
        let target = fs::read_link(abs).map_err(|source| PackError::Io {
            path: abs.to_path_buf(),
            source,
        })?;
        let target = target.into_os_string().into_string().map_err(|_| PackError::NotUtf8 {
            path: abs.to_path_buf(),
        })?;
        SourceKind::Symlink(target)
    } else {
        let what = if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_socket() {
            "a socket"
        } else if ft.is_block_device() || ft.is_char_device() {
            "a device"
        } else {
            "a special file"
        };
        return Err(PackError::Special {
            path: abs.to_path_buf(),
            what,
        });
    };
    Ok(SourceEntry {
        path,
        kind,
        executable: meta.mode() & 0o111 != 0,
        stat: StatKey::of(meta),
    })
}
