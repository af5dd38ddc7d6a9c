//! Streams that come from elsewhere, stored: a host agent packing a
//! directory (age-encrypted here), or dumping a database (`run_on =
//! "host"`: encrypted on the host already), hashed into the storage
//! directory exactly as a database dump is (hidden partial file, fsync,
//! rename); and a stored object opened again as its decrypted stream.

use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use rollway_secrets::{Identity, Recipient};

use super::storage::{Partial, object_path};

/// How every age file (binary, not armored) starts.
const AGE_HEADER: &[u8] = b"age-encryption.org/v1\n";
use super::{BackupError, Hashing, Stored};

/// Encrypts to `recipients` and hashes whatever `fill` writes into
/// `dir/file_name`, which appears only when `fill` and the writing both
/// succeeded. `fill`'s error is returned as it is, with nothing stored.
pub fn store_stream<E: From<BackupError>>(
    dir: &Path,
    file_name: &str,
    recipients: &[Recipient],
    fill: impl FnOnce(&mut dyn Write) -> Result<(), E>,
) -> Result<Stored, E> {
    store_encrypted(dir, file_name, |out| {
        let mut enc = rollway_secrets::encrypt_stream(out, recipients).map_err(BackupError::from)?;
        fill(&mut enc)?;
        enc.finish().map_err(|source| BackupError::Io {
            what: "write the backup into",
            path: dir.to_owned(),
            source,
        })?;
        Ok(())
    })
}

/// Hashes what `fill` writes, already encrypted (a database dump a host
/// agent encrypted before sending it, `run_on = "host"`), into
/// `dir/file_name` exactly as [`store_stream`] stores: it appears only when
/// `fill` and the writing both succeeded, and only when it is an age file
/// (a backup is never stored in clear, whoever made it).
pub fn store_encrypted<E: From<BackupError>>(
    dir: &Path,
    file_name: &str,
    fill: impl FnOnce(&mut dyn Write) -> Result<(), E>,
) -> Result<Stored, E> {
    let partial = Partial::create(dir, file_name)?;
    let io_err = |source| BackupError::Io {
        what: "write the backup to",
        path: partial.path().to_owned(),
        source,
    };
    let mut out = Hashing::new(BufWriter::with_capacity(1 << 16, partial.file()?));
    fill(&mut out)?;
    let (buf, size, sha256) = out.finish();
    let file = buf.into_inner().map_err(|e| io_err(e.into_error()))?;
    let mut head = [0u8; AGE_HEADER.len()];
    if std::os::unix::fs::FileExt::read_exact_at(&file, &mut head, 0).is_err() || head != *AGE_HEADER {
        return Err(BackupError::Io {
            what: "store",
            path: object_path(dir, file_name),
            source: io::Error::other(
                "the stream that arrived is not age-encrypted, and a backup is stored only encrypted; nothing was stored",
            ),
        }
        .into());
    }
    file.sync_all().map_err(io_err)?;
    let path = partial.persist()?;
    Ok(Stored { path, size, sha256 })
}

/// Hands the decrypted stream of the object at `path` to `read`:
/// `Ok(Err(why))` when it does not decrypt (a wrong identity, a damaged
/// header); damage further in shows as a read error of the stream.
pub fn with_decrypted<T>(
    path: &Path,
    identities: &[Identity],
    read: impl FnOnce(&mut dyn Read) -> T,
) -> Result<Result<T, String>, BackupError> {
    let file = std::fs::File::open(path).map_err(|source| BackupError::Io {
        what: "open",
        path: path.to_owned(),
        source,
    })?;
    let origin = path.display().to_string();
    match rollway_secrets::decrypt_stream(io::BufReader::with_capacity(1 << 16, file), identities, &origin) {
        Ok(mut r) => Ok(Ok(read(&mut r))),
        Err(rollway_secrets::Error::Decrypt { reason, .. }) => Ok(Err(reason)),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn check(body: &[u8], stored: bool) {
        let tmp = tempfile::tempdir().unwrap();
        let r = store_encrypted::<BackupError>(tmp.path(), "b.age", |w| {
            w.write_all(body).map_err(|source| BackupError::Io {
                what: "write",
                path: tmp.path().to_owned(),
                source,
            })
        });
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        match r {
            Ok(s) => {
                assert!(stored, "{body:?} was stored");
                assert_eq!(std::fs::read(&s.path).unwrap(), body);
                assert_eq!(s.size, body.len() as u64);
                assert_eq!(left.len(), 1);
            }
            Err(e) => {
                assert!(!stored, "{body:?}: {e}");
                assert!(e.to_string().contains("not age-encrypted"), "{e}");
                assert!(left.is_empty(), "no object and no partial file: {left:?}");
            }
        }
    }

    #[test]
    fn a_stream_encrypted_elsewhere_is_stored_only_when_it_is_an_age_file() {
        let identity = rollway_secrets::Identity::generate();
        let mut age = Vec::new();
        let mut enc = rollway_secrets::encrypt_stream(&mut age, &[identity.recipient()]).unwrap();
        enc.write_all(b"PGDMP a dump").unwrap();
        enc.finish().unwrap();
        check(&age, true);
        check(b"PGDMP a clear dump", false);
        check(b"", false);
        check(b"age-encryption.org/v1", false);
    }
}
