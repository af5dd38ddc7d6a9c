//! The deployer's reading of artifact archives for shipping: their verified
//! manifests (through `rollway_artifact::verify`, cached by archive digest
//! so a redeploy does not decompress everything twice) and one streaming
//! pass over the files a host still needs, hashing the archive bytes on the
//! way so the pass also proves the archive is the one recorded.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rollway_artifact::manifest::Manifest;
use rollway_artifact::{Expected, Flow, StreamError, StreamKind, verify};
use rollway_model::Sha256Digest;

/// An archive's manifest with where it came from.
#[derive(Debug, Clone)]
pub struct ArchiveManifest {
    pub manifest: Manifest,
    /// The archive was fully re-read and checked just now (otherwise the
    /// manifest came from the cache and [`stream_files`] checks the digest).
    pub verified: bool,
}

/// The manifest of `archive`, whose SHA-256 must be `sha256`. From
/// `cache/<sha256>.json` when a verified read left it there; otherwise the
/// archive is verified in full (digest, every entry against the manifest)
/// and the manifest cached.
pub fn manifest_of(
    archive: &Path,
    sha256: Option<&Sha256Digest>,
    cache: Option<&Path>,
) -> Result<ArchiveManifest, String> {
    let sha256 = sha256.cloned().or_else(|| digest_from_name(archive));
    if let (Some(cache), Some(sha)) = (cache, &sha256)
        && let Ok(bytes) = fs::read(cache_file(cache, sha))
        // Written by `write_cache` from a verified manifest.
        && let Ok(manifest) = Manifest::parse_own(&bytes)
    {
        return Ok(ArchiveManifest {
            manifest,
            verified: false,
        });
    }
    let expected = sha256.as_ref().map(Expected::sha256);
    let report = verify(archive, expected.as_ref()).map_err(|e| e.to_string())?;
    if let Some(cache) = cache {
        // A cache that cannot be written only costs time next deploy.
        let _ = write_cache(cache, &report.sha256, &report.manifest.canonical_bytes());
    }
    Ok(ArchiveManifest {
        manifest: report.manifest,
        verified: true,
    })
}

/// Artifacts are stored as `<sha256>.tar.zst`.
fn digest_from_name(archive: &Path) -> Option<Sha256Digest> {
    let name = archive.file_name()?.to_str()?;
    name.strip_suffix(".tar.zst")?.parse().ok()
}

fn cache_file(cache: &Path, sha: &Sha256Digest) -> PathBuf {
    cache.join(format!("{sha}.json"))
}

/// Records the manifest of a freshly packed (hence verified) archive, so
/// its first deploy does not read the archive twice.
pub fn remember_manifest(cache: &Path, sha256: &Sha256Digest, manifest: &Manifest) -> io::Result<()> {
    write_cache(cache, sha256, &manifest.canonical_bytes())
}

fn write_cache(cache: &Path, sha: &Sha256Digest, bytes: &[u8]) -> io::Result<()> {
    rollway_fs::write_atomic(&cache_file(cache, sha), bytes, None)
}

/// What the archive file looked like when its bytes last hashed to a
/// digest: device, inode, size, modification and change times (ns), and
/// when that was recorded.
fn stat_key(archive: &Path) -> Option<[u128; 5]> {
    use std::os::unix::fs::MetadataExt as _;
    let m = fs::metadata(archive).ok()?;
    let ns = |s: i64, n: i64| {
        u128::try_from(s)
            .ok()
            .map(|s| s * 1_000_000_000 + u128::try_from(n).unwrap_or(0))
    };
    Some([
        u128::from(m.dev()),
        u128::from(m.ino()),
        u128::from(m.size()),
        ns(m.mtime(), m.mtime_nsec())?,
        ns(m.ctime(), m.ctime_nsec())?,
    ])
}

fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Whether `archive` is, by its file status, exactly the file whose bytes
/// hashed to `sha` before — git's rule: the same device, inode, size and
/// times, and not modified within two seconds of when that was recorded
/// (a change in the same clock tick would not show in the times).
pub fn digest_known(cache: &Path, archive: &Path, sha: &Sha256Digest) -> bool {
    let Ok(text) = fs::read_to_string(cache.join(format!("{sha}.stat"))) else {
        return false;
    };
    let fields: Vec<u128> = text.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    let (Some(now), [recorded @ .., at]) = (stat_key(archive), fields.as_slice()) else {
        return false;
    };
    recorded == now.as_slice() && now[3] + 2_000_000_000 < *at
}

/// Records that `archive`, as it is now, hashed to `sha`.
pub fn remember_digest(cache: &Path, archive: &Path, sha: &Sha256Digest) {
    let Some(key) = stat_key(archive) else { return };
    let text = format!("{} {} {} {} {} {}\n", key[0], key[1], key[2], key[3], key[4], now_ns());
    // A record that cannot be written only costs a re-hash next time.
    let _ = rollway_fs::write_atomic(&cache.join(format!("{sha}.stat")), text.as_bytes(), None);
}

/// Calls `f(path, size, body)` for each regular file of `archive` whose
/// path is in `wanted`, stopping the decompression after the last one.
/// With `prove`, returns the SHA-256 of the whole archive file (the rest is
/// hashed without being decompressed); without, reads no further than
/// needed and returns `None` (a previous release's archive, read only for
/// delta references, or one whose digest is already known). Decoding is
/// `rollway_artifact::stream`'s (with its hostile-input limits); the host
/// checks every file against the manifest.
pub fn stream_files<T>(
    archive: &Path,
    wanted: &HashMap<String, T>,
    prove: bool,
    mut f: impl FnMut(&str, &T, u64, &mut dyn Read) -> Result<(), String>,
) -> Result<Option<Sha256Digest>, String> {
    let mut left = wanted.len();
    let digest = if left == 0 && !prove {
        None
    } else {
        rollway_artifact::stream(archive, prove, |entry| {
            if left == 0 {
                return Ok(Flow::Stop);
            }
            if entry.kind != StreamKind::File {
                return Ok(Flow::Continue);
            }
            let Some(tag) = wanted.get(entry.path) else {
                return Ok(Flow::Continue);
            };
            f(entry.path, tag, entry.size, entry.reader)?;
            left -= 1;
            Ok(if left == 0 { Flow::Stop } else { Flow::Continue })
        })
        .map_err(|e| match e {
            StreamError::Archive(e) => e.to_string(),
            StreamError::Visit(why) => why,
        })?
    };
    if left > 0 {
        return Err(format!(
            "artifact {}: {left} files of its manifest are missing from it",
            archive.display()
        ));
    }
    Ok(digest)
}
