//! Media backups' storage side: a stream that comes from elsewhere (a host
//! agent packing a directory) age-encrypted and hashed into storage
//! exactly as a database dump is (a directory's hidden partial file,
//! fsync, rename; a bucket's multipart upload), and a stored object opened
//! again as its decrypted stream.

use std::io::{Read, Write};

use rollway_secrets::{Identity, Recipient};

use super::storage::Object;
use super::{BackupError, Hashing, Stored};

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
