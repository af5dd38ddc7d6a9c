//! The local storage directory: objects appear under their final name only
//! complete (a hidden partial file beside it, fsynced, renamed, the
//! directory fsynced), are checked against their recorded size and SHA-256
//! by reading them whole, and are removed when they expire.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rollway_model::Sha256Digest;
use sha2::{Digest, Sha256};

use super::BackupError;

/// Where the object of `file_name` lives in `dir`.
pub fn object_path(dir: &Path, file_name: &str) -> PathBuf {
    dir.join(file_name)
}

/// A hidden file being written beside its final name; removed on drop
/// unless persisted.
pub(crate) struct Partial {
    temp: Option<tempfile::NamedTempFile>,
    dir: PathBuf,
    target: PathBuf,
}

impl Partial {
    pub(crate) fn create(dir: &Path, file_name: &str) -> Result<Self, BackupError> {
        fs::create_dir_all(dir).map_err(|source| BackupError::Io {
            what: "create the storage directory",
            path: dir.to_owned(),
            source,
        })?;
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{file_name}.partial-"))
            .tempfile_in(dir)
            .map_err(|source| BackupError::Io {
                what: "create a file in",
                path: dir.to_owned(),
                source,
            })?;
        Ok(Self {
            temp: Some(temp),
            dir: dir.to_owned(),
            target: object_path(dir, file_name),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        self.temp.as_ref().map_or(&self.target, |t| t.path())
    }

    /// A second handle on the partial file, for writing.
    pub(crate) fn file(&self) -> Result<File, BackupError> {
        let t = self.temp.as_ref().ok_or_else(|| BackupError::Io {
            what: "write",
            path: self.target.clone(),
            source: io::Error::other("the partial file is gone"),
        })?;
        t.as_file().try_clone().map_err(|source| BackupError::Io {
            what: "open",
            path: t.path().to_owned(),
            source,
        })
    }

    /// Renames the partial file to its final name and fsyncs the directory.
    pub(crate) fn persist(mut self) -> Result<PathBuf, BackupError> {
        let temp = self.temp.take().ok_or_else(|| BackupError::Io {
            what: "persist",
            path: self.target.clone(),
            source: io::Error::other("the partial file is gone"),
        })?;
        temp.persist_noclobber(&self.target).map_err(|e| BackupError::Io {
            what: "move the finished backup to",
            path: self.target.clone(),
            source: e.error,
        })?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| BackupError::Io {
                what: "sync the storage directory",
                path: self.dir.clone(),
                source,
            })?;
        Ok(self.target.clone())
    }
}

/// Reads the object whole and compares its size and SHA-256 with the
/// record: every difference as a sentence (none when it is intact).
pub fn verify_object(path: &Path, size: u64, sha256: &Sha256Digest) -> Result<Vec<String>, BackupError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(vec![format!("its object {} is missing", path.display())]);
        }
        Err(source) => {
            return Err(BackupError::Io {
                what: "open",
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n_total = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|source| BackupError::Io {
            what: "read",
            path: path.to_owned(),
            source,
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        n_total += n as u64;
    }
    let got = Sha256Digest::from_bytes(hasher.finalize().into());
    let mut problems = Vec::new();
    if n_total != size {
        problems.push(format!(
            "its object {} has {n_total} bytes, the record says {size} (truncated or replaced)",
            path.display()
        ));
    }
    if &got != sha256 {
        problems.push(format!(
            "its object {} has SHA-256 {got}, the record says {sha256} (modified or damaged)",
            path.display()
        ));
    }
    Ok(problems)
}

/// Deletes the hidden partial files a killed writer left beside the object
/// at `path`; returns how many went.
pub fn remove_partials(path: &Path) -> usize {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return 0;
    };
    let prefix = format!(".{}.partial-", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter(|e| fs::remove_file(e.path()).is_ok())
        .count()
}

/// Deletes an expired object; one already gone is not an error.
pub fn remove_object(path: &Path) -> Result<(), BackupError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(BackupError::Io {
            what: "delete",
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::Write as _;

    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn an_object_appears_only_when_persisted_and_never_over_another() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("store");
        // Dropped unpersisted: nothing is left, not even the partial file.
        let p = Partial::create(&d, "a.age").unwrap();
        p.file().unwrap().write_all(b"half").unwrap();
        assert!(names(&d)[0].starts_with(".a.age.partial-"));
        drop(p);
        assert!(names(&d).is_empty());
        // What a killed writer leaves (a partial file never dropped) is found and removed.
        let kept = Partial::create(&d, "a.age").unwrap();
        std::mem::forget(kept);
        assert_eq!(names(&d).len(), 1);
        assert_eq!(remove_partials(&d.join("a.age")), 1);
        assert!(names(&d).is_empty());
        // Persisted: under its name only.
        let p = Partial::create(&d, "a.age").unwrap();
        p.file().unwrap().write_all(b"whole").unwrap();
        assert_eq!(p.persist().unwrap(), d.join("a.age"));
        assert_eq!(names(&d), ["a.age"]);
        // A second object of the same name does not replace the first.
        let p = Partial::create(&d, "a.age").unwrap();
        p.file().unwrap().write_all(b"other").unwrap();
        assert!(p.persist().is_err());
        assert_eq!(fs::read(d.join("a.age")).unwrap(), b"whole");
        assert_eq!(names(&d), ["a.age"]);
    }

    #[test]
    fn verify_object_names_each_difference() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("o");
        fs::write(&f, b"bytes").unwrap();
        let good = Sha256Digest::of(b"bytes");
        let check = |size: u64, sha: &Sha256Digest, expected: &[&str]| {
            let got = verify_object(&f, size, sha).unwrap();
            assert_eq!(got.len(), expected.len(), "{got:?}");
            for (g, e) in got.iter().zip(expected) {
                assert!(g.contains(e), "{g} should say {e}");
            }
        };
        check(5, &good, &[]);
        check(6, &good, &["has 5 bytes, the record says 6"]);
        check(5, &Sha256Digest::of(b"other"), &["modified or damaged"]);
        check(
            4,
            &Sha256Digest::of(b"byte"),
            &["truncated or replaced", "modified or damaged"],
        );
        let gone = verify_object(&dir.path().join("missing"), 5, &good).unwrap();
        assert!(gone[0].contains("is missing"), "{gone:?}");
        assert!(
            remove_object(&f).is_ok() && remove_object(&f).is_ok(),
            "removing twice is fine"
        );
    }
}
