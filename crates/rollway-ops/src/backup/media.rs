//! Streams that come from elsewhere, stored: a host agent packing a
//! directory (age-encrypted here), or dumping a database (`run_on =
//! "host"`: encrypted on the host already), hashed into storage exactly as
//! a database dump is (a directory's hidden partial file, fsync, rename; a
//! bucket's multipart upload); and a stored object opened again as its
//! decrypted stream.

use std::io::{self, Read, Write};

use rollway_secrets::{Identity, Recipient};

use super::storage::Object;
use super::{BackupError, Hashing, Stored};

/// How every age file (binary, not armored) starts.
const AGE_HEADER: &[u8] = b"age-encryption.org/v1\n";

/// Encrypts to `recipients` and hashes whatever `fill` writes into
/// `object`, which appears only when `fill` and the writing both
/// succeeded. `fill`'s error is returned as it is, with nothing stored.
pub fn store_stream<E: From<BackupError>>(
    object: &Object,
    recipients: &[Recipient],
    fill: impl FnOnce(&mut dyn Write) -> Result<(), E>,
) -> Result<Stored, E> {
    let out = Hashing::new(object.create()?);
    let mut enc = rollway_secrets::encrypt_stream(out, recipients).map_err(BackupError::from)?;
    fill(&mut enc)?;
    let hashing = enc.finish().map_err(|e| object.error("write the backup to", e))?;
    let (writer, size, sha256) = hashing.finish();
    let location = writer.commit()?;
    Ok(Stored { location, size, sha256 })
}

/// Hashes what `fill` writes, already encrypted (a database dump a host
/// agent encrypted before sending it, `run_on = "host"`), into `object`
/// exactly as [`store_stream`] stores: it appears only when `fill` and the
/// writing both succeeded, and only when it is an age file (a backup is
/// never stored in clear, whoever made it) — checked as the first bytes
/// pass, so nothing clear reaches a bucket either.
pub fn store_encrypted<E: From<BackupError>>(
    object: &Object,
    fill: impl FnOnce(&mut dyn Write) -> Result<(), E>,
) -> Result<Stored, E> {
    let not_age = || {
        object.error(
            "store",
            io::Error::other(
                "the stream that arrived is not age-encrypted, and a backup is stored only encrypted; nothing was stored",
            ),
        )
    };
    let mut out = AgeOnly {
        inner: Hashing::new(object.create()?),
        seen: 0,
    };
    if let Err(e) = fill(&mut out) {
        return Err(if out.refused() { not_age().into() } else { e });
    }
    if out.seen < AGE_HEADER.len() {
        return Err(not_age().into());
    }
    let (writer, size, sha256) = out.inner.finish();
    let location = writer.commit()?;
    Ok(Stored { location, size, sha256 })
}

/// Passes bytes on only while they agree with [`AGE_HEADER`] (and all
/// after it): a clear stream fails its first write.
struct AgeOnly<W> {
    inner: W,
    /// How many bytes of the header have been seen (`usize::MAX`: refused).
    seen: usize,
}

impl<W> AgeOnly<W> {
    fn refused(&self) -> bool {
        self.seen == usize::MAX
    }
}

impl<W: Write> Write for AgeOnly<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.refused() {
            return Err(io::Error::other("not an age file"));
        }
        if self.seen < AGE_HEADER.len() {
            let n = buf.len().min(AGE_HEADER.len() - self.seen);
            if buf[..n] != AGE_HEADER[self.seen..self.seen + n] {
                self.seen = usize::MAX;
                return Err(io::Error::other("not an age file"));
            }
            let written = self.inner.write(&buf[..n])?;
            self.seen += written;
            return Ok(written);
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hands the decrypted stream of `object` to `read`: `Ok(Err(why))` when
/// it does not decrypt (a wrong identity, a damaged header); damage
/// further in shows as a read error of the stream.
pub fn with_decrypted<T>(
    object: &Object,
    identities: &[Identity],
    read: impl FnOnce(&mut dyn Read) -> T,
) -> Result<Result<T, String>, BackupError> {
    super::decrypted(object, identities, read)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::backup::Storage;

    fn check(body: &[u8], stored: bool) {
        let tmp = tempfile::tempdir().unwrap();
        let object = Storage::local(tmp.path()).object("b.age");
        let r = store_encrypted::<BackupError>(&object, |w| {
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
                assert_eq!(std::fs::read(tmp.path().join("b.age")).unwrap(), body);
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
