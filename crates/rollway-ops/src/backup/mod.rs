//! Backups' IO (OPERATIONS.md "Backups and restores"): a PostgreSQL
//! database dumped with `pg_dump -Fc`, its bytes age-encrypted to the
//! vault's recipients and hashed (SHA-256 of the stored, encrypted bytes)
//! on their way into a [`Storage`] — a local directory or an S3-compatible
//! bucket (`s3.rs`, multipart uploads) — streamed in chunks, never a whole
//! copy in memory or a clear copy on disk; read back as a stream, checked
//! (size, SHA-256, decryption, `pg_restore --list`) and restored through
//! `pg_restore`. Media backups (a directory packed by a host agent) go
//! into the same storage the same way (`media.rs`).
//!
//! Invariants:
//! - An object appears under its final name only complete. In a
//!   directory it is written to a hidden `.NAME.partial-…` file beside it,
//!   fsynced, then renamed, and the directory fsynced; any error (or a
//!   killed `pg_dump`) removes the partial file, and a killed `rollway`
//!   leaves only a hidden partial file that nothing lists as a backup
//!   (`Object::remove_partials` clears it once the backup is known dead).
//!   In a bucket it is a multipart upload completed only after the last
//!   byte and aborted on any error; a killed `rollway` leaves an
//!   incomplete upload, which is no object.
//! - An S3 bucket's credentials appear in no message (`s3.rs` replaces
//!   them in every error it passes on).
//! - The SHA-256 recorded is of exactly the bytes stored.
//! - A database URL's password never reaches a command line: it travels in
//!   `PGPASSWORD`.

mod media;
mod pg;
mod s3;
mod storage;

use std::io::{self, Read, Write};
use std::path::PathBuf;

use rollway_model::Sha256Digest;
use sha2::{Digest, Sha256};

pub use media::{store_encrypted, store_stream, with_decrypted};
pub use pg::{
    Contents, Tool, archive_contents, database_contents, database_is_empty, differences, dump_database, dump_to,
    list_archive, psql, restore_database, restore_from, with_database,
};
pub use s3::{PART_SIZE, PARTS_IN_FLIGHT, S3Settings};
pub use storage::{Meter, Object, Storage, verify_object};

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
    #[error("cannot {what} {location} (S3 endpoint {endpoint}): {reason}")]
    S3 {
        what: &'static str,
        location: String,
        endpoint: String,
        reason: String,
    },
    #[error("the database URL is not valid: {0}")]
    Url(String),
    #[error(transparent)]
    Secrets(#[from] rollway_secrets::Error),
}

/// A backup object as it was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// An absolute path, or `s3://BUCKET/KEY`.
    pub location: String,
    pub size: u64,
    pub sha256: Sha256Digest,
}

/// The object's decrypted stream handed to `read`: `Ok(Err(why))` when it
/// does not decrypt (a wrong identity, a damaged header); damage further
/// in shows as a read error of the stream.
pub(crate) fn decrypted<T>(
    object: &Object,
    identities: &[rollway_secrets::Identity],
    read: impl FnOnce(&mut dyn Read) -> T,
) -> Result<Result<T, String>, BackupError> {
    let stream = object.open_existing()?;
    match rollway_secrets::decrypt_stream(stream, identities, &object.location()) {
        Ok(mut r) => Ok(Ok(read(&mut r))),
        Err(rollway_secrets::Error::Decrypt { reason, .. }) => Ok(Err(reason)),
        Err(e) => Err(e.into()),
    }
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
