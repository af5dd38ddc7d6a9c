//! Backups' IO (OPERATIONS.md "Backups and restores"): a PostgreSQL
//! database dumped with `pg_dump -Fc`, its bytes age-encrypted to the
//! vault's recipients and hashed (SHA-256 of the stored, encrypted bytes)
//! on their way into a local storage directory, streamed in chunks —
//! never a whole copy in memory or a clear copy on disk; checked again
//! (size, SHA-256, decryption, `pg_restore --list`) and restored through
//! `pg_restore`. Media backups (a directory packed by a host agent) go
//! into the same storage the same way (`media.rs`).
//!
//! Invariants:
//! - An object appears under its final name only complete: it is written
//!   to a hidden `.NAME.partial-…` file beside it, fsynced, then renamed,
//!   and the directory fsynced; any error (or a killed `pg_dump`) removes
//!   the partial file, and a killed `rollway` leaves only a hidden partial
//!   file that nothing lists as a backup (`remove_partials` clears it once
//!   the backup is known dead).
//! - The SHA-256 recorded is of exactly the bytes stored.
//! - A database URL's password never reaches a command line: it travels in
//!   `PGPASSWORD`.

mod media;
mod pg;
mod storage;

use std::io::{self, Write};
use std::path::PathBuf;

use rollway_model::Sha256Digest;
use sha2::{Digest, Sha256};

pub use media::{store_encrypted, store_stream, with_decrypted};
pub use pg::{
    Contents, Tool, archive_contents, database_contents, database_is_empty, differences, dump_database, dump_to,
    list_archive, psql, restore_database, restore_from, with_database,
};
pub use storage::{object_path, remove_object, remove_partials, verify_object};

/// What can go wrong while backing up, checking or restoring.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("cannot run {program}: {source} (is postgresql-client installed?)")]
    Spawn { program: &'static str, source: io::Error },
    #[error("{program} failed ({status}){}", if stderr.is_empty() { String::new() } else { format!(": {stderr}") })]
    Tool {
        program: &'static str,
        status: String,
        stderr: String,
    },
    #[error("the database URL is not valid: {0}")]
    Url(String),
    #[error(transparent)]
    Secrets(#[from] rollway_secrets::Error),
}

/// A backup object as it was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: Sha256Digest,
}

/// A writer that hashes and counts what passes through it.
pub(crate) struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Hashing<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    pub(crate) fn finish(self) -> (W, u64, Sha256Digest) {
        let digest = Sha256Digest::from_bytes(self.hasher.finalize().into());
        (self.inner, self.count, digest)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
