//! The deployer's reading of artifact archives for shipping: their verified
//! manifests (through `rollway_artifact::verify`, cached by archive digest
//! so a redeploy does not decompress everything twice) and one streaming
//! pass over the files a host still needs, hashing the archive bytes on the
//! way so the pass also proves the archive is the one recorded.
//!
//! For the lead: [`stream_files`] reads the tar.zst with the `tar` and
//! `zstd` crates itself because `rollway_artifact`'s reader offers no
//! streaming visitor yet (its `Sink` is crate-private); once it does, this
//! pass can move there. Safety does not depend on it: the host checks every
//! file against the manifest.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use rollway_artifact::manifest::Manifest;
use rollway_artifact::{Expected, verify};
use rollway_model::Sha256Digest;
use sha2::{Digest as _, Sha256};

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
        && let Ok(manifest) = Manifest::parse(&bytes)
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
    fs::create_dir_all(cache)?;
    let path = cache_file(cache, sha);
    let tmp = cache.join(format!(".{sha}.{}.tmp", std::process::id()));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}

/// Counts and hashes the raw archive bytes as they are read.
struct Hashing {
    inner: File,
    sha: Sha256,
}

impl Read for Hashing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }
}

/// Calls `f(path, size, body)` for each regular file of `archive` whose
/// path is in `wanted`, stopping the decompression after the last one, and
/// returns the SHA-256 of the whole archive file (the rest is hashed
/// without being decompressed). Reading is not checked beyond that: the
/// host checks every file against the manifest.
pub fn stream_files<T>(
    archive: &Path,
    wanted: &HashMap<String, T>,
    mut f: impl FnMut(&str, &T, u64, &mut dyn Read) -> Result<(), String>,
) -> Result<Sha256Digest, String> {
    let shown = archive.display();
    let file = File::open(archive).map_err(|e| format!("artifact {shown}: {e}"))?;
    let hashing = Hashing {
        inner: file,
        sha: Sha256::new(),
    };
    let decoder = zstd::stream::read::Decoder::new(hashing).map_err(|e| format!("artifact {shown}: {e}"))?;
    let mut tar = tar::Archive::new(decoder);
    let mut left = wanted.len();
    if left > 0 {
        let entries = tar.entries().map_err(|e| format!("artifact {shown}: {e}"))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| format!("artifact {shown}: {e}"))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            if let Some(tag) = wanted.get(&path) {
                let size = entry.size();
                f(&path, tag, size, &mut entry)?;
                left -= 1;
                if left == 0 {
                    break;
                }
            }
        }
    }
    if left > 0 {
        return Err(format!(
            "artifact {shown}: {left} files of its manifest are missing from it"
        ));
    }
    let decoder = tar.into_inner();
    let mut raw: BufReader<Hashing> = decoder.finish();
    io::copy(&mut raw, &mut io::sink()).map_err(|e| format!("artifact {shown}: {e}"))?;
    let hashing = raw.into_inner();
    Ok(Sha256Digest::from_bytes(hashing.sha.finalize().into()))
}
