//! The check before a SQLite store is opened: an existing file must look
//! like a SQLite database (an empty or damaged one is an error, never
//! silently recreated), and a missing one is created only where the caller
//! allows it: the default path in the state directory, or when asked.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::location::StoreLocation;

/// The first 16 bytes of every SQLite 3 database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// How long an empty file may stay empty while another rollway creates it.
const CREATION_GRACE: Duration = Duration::from_secs(1);

/// Why a store is not opened.
#[derive(Debug, thiserror::Error)]
pub enum PreOpenError {
    #[error(
        "the store {} is empty: its data is lost, so Rollway will not start a new one over it; restore it from a backup, or remove the file to start an empty store (history, locks and events start over)",
        path.display()
    )]
    Empty { path: PathBuf },
    #[error(
        "the store {} is not a SQLite database (damaged, or another kind of file): restore it from a backup, or point --store at the right file",
        path.display()
    )]
    Damaged { path: PathBuf },
    #[error(
        "no store at {}: pass --create-store to create a new one there, or point --store at an existing store",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error("cannot create the store {}: no directory {}; create it first", path.display(), dir.display())]
    NoDirectory { path: PathBuf, dir: PathBuf },
    #[error("cannot read the store {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Checks `loc` before it is opened; `may_create` allows a new SQLite file
/// (its parent directory is created only when `may_create_dir` too).
/// PostgreSQL needs no check here: its URL was checked when parsed.
pub fn check_before_open(loc: &StoreLocation, may_create: bool, may_create_dir: bool) -> Result<(), PreOpenError> {
    let StoreLocation::Sqlite(path) = loc else {
        return Ok(());
    };
    match std::fs::metadata(path) {
        Ok(_) => check_existing(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !may_create {
                return Err(PreOpenError::Missing { path: path.clone() });
            }
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            match dir {
                Some(d) if !may_create_dir && !d.is_dir() => Err(PreOpenError::NoDirectory {
                    path: path.clone(),
                    dir: d.to_owned(),
                }),
                _ => Ok(()),
            }
        }
        Err(source) => Err(PreOpenError::Io {
            path: path.clone(),
            source,
        }),
    }
}

/// An existing file: empty (after a short grace for a concurrent creator)
/// or without SQLite's header is refused.
fn check_existing(path: &Path) -> Result<(), PreOpenError> {
    let io = |source| PreOpenError::Io {
        path: path.to_owned(),
        source,
    };
    let start = Instant::now();
    loop {
        let mut head = Vec::with_capacity(16);
        std::fs::File::open(path)
            .map_err(io)?
            .take(16)
            .read_to_end(&mut head)
            .map_err(io)?;
        if head.is_empty() {
            // SQLite creates the file empty and writes its header a moment
            // later: another rollway may be creating this store right now.
            if start.elapsed() < CREATION_GRACE {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            return Err(PreOpenError::Empty { path: path.to_owned() });
        }
        if head.as_slice() != SQLITE_MAGIC {
            return Err(PreOpenError::Damaged { path: path.to_owned() });
        }
        return Ok(());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn check(content: Option<&[u8]>, may_create: bool, expected: Result<(), &str>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollway.db");
        if let Some(c) = content {
            std::fs::write(&path, c).unwrap();
        }
        let got = check_before_open(&StoreLocation::Sqlite(path), may_create, false);
        match (got, expected) {
            (Ok(()), Ok(())) => {}
            (Err(e), Err(fragment)) => assert!(e.to_string().contains(fragment), "{e}"),
            (got, want) => panic!("{content:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn refuses_empty_damaged_and_unasked_for_stores() {
        check(Some(b""), true, Err("is empty: its data is lost"));
        check(
            Some(b"garbage, not a database at all"),
            true,
            Err("is not a SQLite database"),
        );
        check(Some(b"SQLite format 3\0rest of page"), false, Ok(()));
        check(None, false, Err("pass --create-store"));
        check(None, true, Ok(()));
    }

    #[test]
    fn never_creates_a_missing_directory_unless_allowed() {
        let loc = StoreLocation::Sqlite(PathBuf::from("/nonexistent/dir/x.db"));
        let e = check_before_open(&loc, true, false).unwrap_err();
        assert!(e.to_string().contains("no directory /nonexistent/dir"), "{e}");
        check_before_open(&loc, true, true).unwrap();
    }
}
