//! The lock every read-modify-write of a secrets file holds: an advisory
//! `flock` on `ENV.age.lock` beside the file, so two `secrets set` of one
//! environment never lose each other's value. The holder writes who it is
//! into the lock file; a waiter gives up after a bounded wait and names it.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{FlockOperation, flock};

/// How long a writer waits for another one by default.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(10);

/// Why a secrets file could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "{} is being changed by another rollway ({holder}, lock {}); waited {}s: try again when it is done",
        secrets.display(), lock.display(), waited.as_secs()
    )]
    Held {
        secrets: PathBuf,
        lock: PathBuf,
        holder: String,
        waited: Duration,
    },
    #[error("cannot lock {}: {source}", lock.display())]
    Io {
        lock: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A held lock; dropping it releases the lock (the file stays).
#[derive(Debug)]
pub struct SecretsLock {
    _file: File,
}

/// The lock file of a secrets file: `ENV.age.lock` beside it.
pub fn lock_path(secrets: &Path) -> PathBuf {
    let mut name = secrets.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    secrets.with_file_name(name)
}

/// Takes the lock of `secrets`, waiting up to `wait`; `holder` says who
/// holds it for anyone who has to wait.
pub fn lock(secrets: &Path, holder: &str, wait: Duration) -> Result<SecretsLock, LockError> {
    let lock = lock_path(secrets);
    let io = |source| LockError::Io {
        lock: lock.clone(),
        source,
    };
    if let Some(dir) = lock.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock)
        .map_err(io)?;
    let start = Instant::now();
    loop {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => break,
            Err(e) if e == rustix::io::Errno::WOULDBLOCK || e == rustix::io::Errno::INTR => {
                if start.elapsed() >= wait {
                    let mut text = String::new();
                    let _ = file.read_to_string(&mut text);
                    let holder = text.trim();
                    return Err(LockError::Held {
                        secrets: secrets.to_owned(),
                        lock: lock.clone(),
                        holder: if holder.is_empty() {
                            "a process that did not say who it is".to_owned()
                        } else {
                            holder.to_owned()
                        },
                        waited: start.elapsed(),
                    });
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            Err(e) => return Err(io(e.into())),
        }
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    file.write_all(format!("{holder}, pid {}\n", std::process::id()).as_bytes())
        .map_err(io)?;
    Ok(SecretsLock { _file: file })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn check(first_holder: &str, expected: &str) {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("staging.age");
        let held = lock(&secrets, first_holder, Duration::ZERO).unwrap();
        let err = lock(&secrets, "second", Duration::from_millis(100)).unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
        drop(held);
        lock(&secrets, "second", Duration::ZERO).unwrap();
    }

    #[test]
    fn a_second_writer_waits_then_names_the_holder() {
        check("tester@example.com", "tester@example.com, pid");
        check("", "being changed by another rollway");
    }
}
