//! A lock file that says who holds it: an exclusive flock on `PATH`, with
//! the holder's own description (its pid and command line) written inside,
//! so whoever waits for it, or gives up, can name the holder. The kernel
//! drops the flock when the process dies, so a killed holder never blocks
//! the next one; dropping the lock empties and unlocks the file.

use std::fs::{File, TryLockError};
use std::io::{self, Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `PATH` beside `file`, named `FILE.SUFFIX` (e.g. `rollway.db.serve-lock`).
pub fn beside(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".");
    name.push(suffix);
    file.with_file_name(name)
}

/// Why a [`HolderLock`] was not taken.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    /// Another process held it past the wait; what it wrote of itself.
    #[error("{} is held by {}", path.display(), holder.as_deref().unwrap_or("another process"))]
    Held { path: PathBuf, holder: Option<String> },
    #[error("cannot use the lock file {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// A held lock file; released (emptied, unlocked) on drop.
#[derive(Debug)]
pub struct HolderLock {
    file: File,
}

impl HolderLock {
    /// Takes the lock on `path` (created if missing), waiting up to `wait`
    /// (zero: one try), and writes `me` into it for the next one to read.
    pub fn acquire(path: &Path, wait: Duration, me: &str) -> Result<Self, HoldError> {
        let io = |source| HoldError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    return Err(HoldError::Held {
                        path: path.to_owned(),
                        holder: Some(holder.trim().to_owned()).filter(|h| !h.is_empty()),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        // Who holds it, for the next one's message; a failure here only loses that.
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(me.as_bytes()));
        Ok(Self { file })
    }
}

impl Drop for HolderLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// This process as a holder: `pid N` and its command line, in `format`'s
/// shape (`{pid}` and `{command}` replaced).
pub fn this_process(format: &str) -> String {
    format
        .replace("{pid}", &std::process::id().to_string())
        .replace("{command}", &std::env::args().collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_second_holder_reads_the_first_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = beside(&dir.path().join("rollway.db"), "test-lock");
        assert_eq!(path, dir.path().join("rollway.db.test-lock"));
        let first = HolderLock::acquire(&path, Duration::ZERO, "pid 1 (first)").unwrap();
        let held = HolderLock::acquire(&path, Duration::from_millis(30), "second").unwrap_err();
        assert!(
            matches!(&held, HoldError::Held { holder: Some(h), .. } if h == "pid 1 (first)"),
            "{held}"
        );
        drop(first);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "", "emptied on release");
        HolderLock::acquire(&path, Duration::ZERO, "second").unwrap();
    }
}
