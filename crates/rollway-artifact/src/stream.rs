//! A streaming pass over an archive's entries for readers that want the
//! bytes, not a verdict: the deployer ships the files a host still needs
//! straight from the archive. Every entry comes with its path, kind, mode,
//! size and a reader of its body; the visitor may stop early.
//!
//! It keeps the hostile-input limits of the full reader ([`crate::read`]):
//! the zstd window is bounded, paths and symlink targets must be safe
//! relative paths, and device, FIFO, sparse and PAX-global entries are
//! refused. It does not check entries against the manifest — that is
//! [`crate::verify`]'s job, and whoever writes the files (the host agent's
//! `ReleaseWriter`) checks them again.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use rollway_model::Sha256Digest;
use sha2::{Digest as _, Sha256};
use tar::EntryType;

use crate::error::{ArchiveError, Problem};
use crate::manifest;

/// What kind of entry a [`StreamEntry`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamKind {
    Dir,
    /// A regular file; its body is the entry's reader.
    File,
    Symlink {
        target: String,
    },
    /// A hard link to an earlier regular file of the archive (no body).
    HardLink {
        target: String,
    },
}

/// One entry as the stream reaches it.
pub struct StreamEntry<'a> {
    /// The path in the tree, without a directory's trailing `/`.
    pub path: &'a str,
    pub kind: StreamKind,
    /// Permission bits (`0o7777` at most).
    pub mode: u32,
    /// The size the tar header announces (0 but for files).
    pub size: u64,
    /// The entry's body; read it or not, the stream moves on either way.
    pub reader: &'a mut dyn Read,
}

impl std::fmt::Debug for StreamEntry<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamEntry")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("mode", &self.mode)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Whether the stream goes on after an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// No more entries are needed: decompression stops here.
    Stop,
}

/// Why a stream ended early: the archive, or the visitor.
#[derive(Debug, thiserror::Error)]
pub enum StreamError<E> {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("{0}")]
    Visit(E),
}

/// Streams the entries of `archive` to `visit` until it returns
/// [`Flow::Stop`] or the archive ends. With `hash_archive`, returns the
/// SHA-256 of the whole archive file (what follows a stop is hashed
/// without being decompressed), so the pass also proves which archive it
/// read; without, reads no further than needed and returns `None`.
pub fn stream<E>(
    archive: &Path,
    hash_archive: bool,
    mut visit: impl FnMut(StreamEntry<'_>) -> Result<Flow, E>,
) -> Result<Option<Sha256Digest>, StreamError<E>> {
    let fail = |entry: Option<&str>, problem: Problem| {
        ArchiveError::new(archive.to_path_buf(), entry.map(str::to_owned), problem)
    };
    let file = File::open(archive).map_err(|e| fail(None, Problem::Read(e)))?;
    let reader = Hashing {
        inner: file,
        sha: hash_archive.then(Sha256::new),
    };
    let decoder = crate::read::bounded_decoder(reader).map_err(|e| fail(None, Problem::Read(e)))?;
    let mut tar = tar::Archive::new(decoder);
    let mut last: Option<String> = None;
    for entry in tar.entries().map_err(|e| fail(None, Problem::Read(e)))? {
        let mut entry = entry.map_err(|e| fail(last.as_deref(), Problem::Read(e)))?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let bad = |problem: Problem| fail(Some(&shown), problem);
        let name = String::from_utf8(raw).map_err(|_| bad(Problem::NotUtf8))?;
        let entry_type = entry.header().entry_type();
        let path = match entry_type {
            EntryType::Directory => name.strip_suffix('/').unwrap_or(&name).to_owned(),
            _ => name.clone(),
        };
        manifest::check_path(&path).map_err(|p| bad(Problem::Path(p)))?;
        let size = entry.header().entry_size().map_err(|e| bad(Problem::Read(e)))?;
        let mode = entry.header().mode().map_err(|e| bad(Problem::Read(e)))? & 0o7777;
        let kind = match entry_type {
            EntryType::Directory => StreamKind::Dir,
            EntryType::Regular | EntryType::Continuous => StreamKind::File,
            EntryType::Symlink => {
                let target = crate::read::link_name(&entry).map_err(&bad)?;
                manifest::check_link_target(&target).map_err(|_| {
                    bad(Problem::Symlink {
                        target: target.clone(),
                        problem: manifest::SymlinkProblem::Absolute,
                    })
                })?;
                StreamKind::Symlink { target }
            }
            EntryType::Link => {
                let target = crate::read::link_name(&entry).map_err(&bad)?;
                manifest::check_path(&target).map_err(|_| bad(Problem::HardLinkOutside(target.clone())))?;
                StreamKind::HardLink { target }
            }
            EntryType::Char | EntryType::Block => return Err(bad(Problem::Special("device")).into()),
            EntryType::Fifo => return Err(bad(Problem::Special("FIFO")).into()),
            EntryType::XGlobalHeader => return Err(bad(Problem::Special("PAX global header")).into()),
            EntryType::GNUSparse => return Err(bad(Problem::Special("sparse file")).into()),
            _ => return Err(bad(Problem::Special("unknown type")).into()),
        };
        let flow = visit(StreamEntry {
            path: &path,
            kind,
            mode,
            size,
            reader: &mut entry,
        })
        .map_err(StreamError::Visit)?;
        last = Some(path);
        if flow == Flow::Stop {
            break;
        }
    }
    if !hash_archive {
        return Ok(None);
    }
    let decoder = tar.into_inner();
    let mut raw: BufReader<Hashing> = decoder.finish();
    io::copy(&mut raw, &mut io::sink()).map_err(|e| fail(None, Problem::Read(e)))?;
    Ok(raw
        .into_inner()
        .sha
        .map(|sha| Sha256Digest::from_bytes(sha.finalize().into())))
}

/// Hashes the raw archive bytes as they are read, when asked to.
struct Hashing {
    inner: File,
    sha: Option<Sha256>,
}

impl Read for Hashing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(sha) = self.sha.as_mut() {
            sha.update(&buf[..n]);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PackOptions, pack};

    fn packed(dir: &Path) -> (std::path::PathBuf, Sha256Digest) {
        let src = dir.join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("a.txt"), "alpha").unwrap();
        std::fs::write(src.join("sub/b.txt"), "bravo!").unwrap();
        std::os::unix::fs::symlink("a.txt", src.join("link")).unwrap();
        let out = dir.join("out");
        std::fs::create_dir_all(&out).unwrap();
        let r = pack(&src, &PackOptions::new(&out)).unwrap();
        (r.archive_path, r.sha256)
    }

    #[test]
    fn streams_every_entry_with_its_body_and_proves_the_digest() {
        let d = tempfile::tempdir().unwrap();
        let (archive, sha) = packed(d.path());
        let mut seen = Vec::new();
        let digest = stream(&archive, true, |e| -> Result<Flow, String> {
            let mut body = String::new();
            if e.kind == StreamKind::File {
                e.reader.read_to_string(&mut body).unwrap();
            }
            seen.push((e.path.to_owned(), e.kind.clone(), e.size, body));
            Ok(Flow::Continue)
        })
        .unwrap();
        assert_eq!(digest, Some(sha));
        assert!(seen.contains(&("a.txt".into(), StreamKind::File, 5, "alpha".into())));
        assert!(seen.contains(&("sub".into(), StreamKind::Dir, 0, String::new())));
        assert!(seen.contains(&("sub/b.txt".into(), StreamKind::File, 6, "bravo!".into())));
        assert!(
            seen.iter()
                .any(|(p, k, ..)| p == "link" && *k == StreamKind::Symlink { target: "a.txt".into() })
        );
    }

    #[test]
    fn a_stop_still_hashes_the_whole_archive() {
        let d = tempfile::tempdir().unwrap();
        let (archive, sha) = packed(d.path());
        let mut n = 0;
        let digest = stream(&archive, true, |_| -> Result<Flow, String> {
            n += 1;
            Ok(Flow::Stop)
        })
        .unwrap();
        assert_eq!(n, 1);
        assert_eq!(digest, Some(sha));
        assert_eq!(stream(&archive, false, |_| Ok::<_, String>(Flow::Stop)).unwrap(), None);
    }

    #[test]
    fn visitor_errors_come_back_as_they_are() {
        let d = tempfile::tempdir().unwrap();
        let (archive, _) = packed(d.path());
        let e = stream(&archive, false, |_| Err::<Flow, _>("host went away".to_owned())).unwrap_err();
        assert!(matches!(&e, StreamError::Visit(s) if s == "host went away"), "{e}");
    }

    #[test]
    fn a_missing_archive_is_named() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("nope.tar.zst");
        let e = stream(&missing, false, |_| Ok::<_, String>(Flow::Continue)).unwrap_err();
        assert!(e.to_string().contains("nope.tar.zst"), "{e}");
    }
}
