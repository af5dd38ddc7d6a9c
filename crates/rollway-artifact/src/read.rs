//! Reading an archive with every safety and consistency rule: the one code
//! path behind both [`verify`] and [`crate::unpack`]. Entries stream
//! through; the manifest (last) is checked against what was seen, and the
//! archive's own SHA-256 against the record.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use rollway_model::Sha256Digest;
use rollway_model::entities::artifact::Artifact;
use sha2::{Digest as _, Sha256};
use tar::EntryType;

use crate::error::{ArchiveError, Problem};
use crate::manifest::{self, EntryKind, MANIFEST_NAME, MODE_DIR, MODE_EXEC, MODE_FILE, Manifest};

/// The largest manifest accepted (a tree of about a million paths).
const MAX_MANIFEST: u64 = 256 << 20;

const CHUNK: usize = 1 << 20;

/// The largest zstd window a reader accepts (16 MiB): Rollway packs with
/// 2 MiB, and `Compression::Level` up to 19 stays within this.
const MAX_WINDOW_LOG: u32 = 24;

/// What the record says about an archive; each known field is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    pub sha256: Option<Sha256Digest>,
    pub size_bytes: Option<u64>,
    pub content_digest: Option<Sha256Digest>,
}

impl Expected {
    /// Only the archive digest.
    pub fn sha256(sha256: &Sha256Digest) -> Self {
        Self {
            sha256: Some(sha256.clone()),
            ..Self::default()
        }
    }
}

impl From<&Artifact> for Expected {
    fn from(a: &Artifact) -> Self {
        Self {
            sha256: Some(a.sha256.clone()),
            size_bytes: Some(a.size_bytes),
            content_digest: Some(a.content_digest.clone()),
        }
    }
}

/// A verified archive.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub sha256: Sha256Digest,
    pub content_digest: Sha256Digest,
    pub size_bytes: u64,
    pub file_count: u64,
    pub file_bytes: u64,
    pub manifest: Manifest,
}

/// Re-hashes an archive (against `expected` when known) and checks that
/// every entry is safe and matches the manifest. The error names the
/// archive and the first bad entry. Without a recorded digest, a file named
/// by its content address (`<sha256>.tar.zst`) is checked against its name.
pub fn verify(archive: &Path, expected: Option<&Expected>) -> Result<VerifyReport, ArchiveError> {
    let mut want = expected.cloned().unwrap_or_default();
    if want.sha256.is_none() {
        want.sha256 = archive
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".tar.zst"))
            .and_then(|n| n.parse().ok());
    }
    read_archive(archive, &want, &mut Discard)
}

/// Where the entries of an archive go.
pub(crate) trait Sink {
    fn dir(&mut self, path: &str) -> io::Result<()>;
    fn file_begin(&mut self, path: &str, executable: bool, size: u64) -> io::Result<()>;
    fn file_chunk(&mut self, data: &[u8]) -> io::Result<()>;
    fn file_end(&mut self) -> io::Result<()>;
    fn symlink(&mut self, path: &str, target: &str) -> io::Result<()>;
    fn hardlink(&mut self, path: &str, target: &str) -> io::Result<()>;
}

/// Verify's sink: reads and forgets.
struct Discard;

impl Sink for Discard {
    fn dir(&mut self, _: &str) -> io::Result<()> {
        Ok(())
    }
    fn file_begin(&mut self, _: &str, _: bool, _: u64) -> io::Result<()> {
        Ok(())
    }
    fn file_chunk(&mut self, _: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn file_end(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn symlink(&mut self, _: &str, _: &str) -> io::Result<()> {
        Ok(())
    }
    fn hardlink(&mut self, _: &str, _: &str) -> io::Result<()> {
        Ok(())
    }
}

/// Counts and hashes the archive bytes as they are read.
struct HashingReader {
    inner: File,
    sha: Sha256,
    read: u64,
}

impl Read for HashingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// What one archive entry turned out to be.
#[derive(Debug, Clone)]
enum Seen {
    Dir { mode: u32 },
    File { mode: u32, size: u64, sha256: Sha256Digest },
    Symlink { target: String },
}

impl Seen {
    fn type_name(&self) -> &'static str {
        match self {
            Self::Dir { .. } => "dir",
            Self::File { .. } => "file",
            Self::Symlink { .. } => "symlink",
        }
    }
}

/// A zstd decoder of `raw` whose memory is bounded whatever a hostile frame
/// header claims ([`MAX_WINDOW_LOG`]); shared with [`crate::stream`].
pub(crate) fn bounded_decoder<R: Read>(raw: R) -> io::Result<zstd::stream::read::Decoder<'static, io::BufReader<R>>> {
    let mut decoder = zstd::stream::read::Decoder::new(raw)?;
    decoder.window_log_max(MAX_WINDOW_LOG)?;
    Ok(decoder)
}

/// Reads the whole archive into `sink`, refusing the first unsafe or
/// inconsistent entry. The sink may have received earlier entries when an
/// error comes back; the caller undoes them.
pub(crate) fn read_archive(
    archive: &Path,
    expected: &Expected,
    sink: &mut dyn Sink,
) -> Result<VerifyReport, ArchiveError> {
    let fail = |entry: Option<&str>, problem: Problem| {
        ArchiveError::new(archive.to_path_buf(), entry.map(str::to_owned), problem)
    };
    let file = File::open(archive).map_err(|e| fail(None, Problem::Read(e)))?;
    let reader = HashingReader {
        inner: file,
        sha: Sha256::new(),
        read: 0,
    };
    let decoder = bounded_decoder(reader).map_err(|e| fail(None, Problem::Read(e)))?;
    let mut tar = tar::Archive::new(decoder);
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut manifest_bytes: Option<Vec<u8>> = None;
    let mut buf = vec![0u8; CHUNK];
    let mut last: Option<String> = None;

    let entries = tar.entries().map_err(|e| fail(None, Problem::Read(e)))?;
    for entry in entries {
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
        if manifest_bytes.is_some() {
            return Err(bad(Problem::AfterManifest));
        }
        if seen.contains_key(&path) {
            return Err(bad(Problem::Duplicate));
        }
        if let Some((parent, _)) = path.rsplit_once('/')
            && !matches!(seen.get(parent), Some(Seen::Dir { .. }))
        {
            return Err(bad(Problem::NoParent(parent.to_owned())));
        }
        let header_size = entry.header().entry_size().map_err(|e| bad(Problem::Read(e)))?;
        if let Some(pax) = pax_size(&mut entry).map_err(|e| bad(Problem::Read(e)))?
            && pax != header_size
        {
            return Err(bad(Problem::PaxSize {
                pax,
                header: header_size,
            }));
        }
        let mode = entry.header().mode().map_err(|e| bad(Problem::Read(e)))? & 0o7777;
        let kind = match entry_type {
            EntryType::Directory => {
                sink.dir(&path).map_err(|e| bad(sink_problem(e)))?;
                Seen::Dir { mode }
            }
            EntryType::Regular | EntryType::Continuous if path == MANIFEST_NAME => {
                if header_size > MAX_MANIFEST {
                    return Err(bad(Problem::ManifestTooLarge(header_size)));
                }
                let mut bytes = Vec::with_capacity(usize::try_from(header_size).unwrap_or(0));
                (&mut entry)
                    .take(header_size)
                    .read_to_end(&mut bytes)
                    .map_err(|e| bad(Problem::Read(e)))?;
                if bytes.len() as u64 != header_size {
                    return Err(bad(Problem::Truncated {
                        got: bytes.len() as u64,
                        header: header_size,
                    }));
                }
                manifest_bytes = Some(bytes);
                last = Some(path);
                continue;
            }
            EntryType::Regular | EntryType::Continuous => {
                let executable = mode & 0o111 != 0;
                sink.file_begin(&path, executable, header_size)
                    .map_err(|e| bad(sink_problem(e)))?;
                let mut sha = Sha256::new();
                let mut got = 0u64;
                loop {
                    let n = match entry.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(bad(Problem::Read(e))),
                    };
                    sha.update(&buf[..n]);
                    sink.file_chunk(&buf[..n]).map_err(|e| bad(sink_problem(e)))?;
                    got += n as u64;
                }
                if got != header_size {
                    return Err(bad(Problem::Truncated {
                        got,
                        header: header_size,
                    }));
                }
                sink.file_end().map_err(|e| bad(sink_problem(e)))?;
                Seen::File {
                    mode,
                    size: got,
                    sha256: Sha256Digest::from_bytes(sha.finalize().into()),
                }
            }
            EntryType::Symlink => {
                let target = link_name(&entry).map_err(&bad)?;
                manifest::check_link_target(&target).map_err(|_| {
                    bad(Problem::Symlink {
                        target: target.clone(),
                        problem: manifest::SymlinkProblem::Absolute,
                    })
                })?;
                sink.symlink(&path, &target).map_err(|e| bad(sink_problem(e)))?;
                Seen::Symlink { target }
            }
            EntryType::Link => {
                let target = link_name(&entry).map_err(&bad)?;
                let ok = manifest::check_path(&target).is_ok();
                let Some(Seen::File { mode, size, sha256 }) = seen.get(&target).filter(|_| ok).cloned() else {
                    return Err(bad(Problem::HardLinkOutside(target)));
                };
                sink.hardlink(&path, &target).map_err(|e| bad(sink_problem(e)))?;
                Seen::File { mode, size, sha256 }
            }
            EntryType::Char | EntryType::Block => return Err(bad(Problem::Special("device"))),
            EntryType::Fifo => return Err(bad(Problem::Special("FIFO"))),
            EntryType::XGlobalHeader => return Err(bad(Problem::Special("PAX global header"))),
            EntryType::GNUSparse => return Err(bad(Problem::Special("sparse file"))),
            _ => return Err(bad(Problem::Special("unknown type"))),
        };
        seen.insert(path.clone(), kind);
        order.push(path.clone());
        last = Some(path);
    }

    // Drain to the very end so the digest covers every byte: anything after
    // the tar end marker must be zero padding.
    let mut decoder = tar.into_inner();
    let trailing = loop {
        let n = match decoder.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(fail(last.as_deref(), Problem::Read(e))),
        };
        if buf[..n].iter().any(|&b| b != 0) {
            break Some(());
        }
    };
    let mut raw = decoder.finish();
    io::copy(&mut raw, &mut io::sink()).map_err(|e| fail(None, Problem::Read(e)))?;
    let reader = raw.into_inner();
    let sha256 = Sha256Digest::from_bytes(reader.sha.finalize().into());
    let size_bytes = reader.read;
    if let Some(want) = &expected.sha256
        && *want != sha256
    {
        return Err(fail(
            None,
            Problem::ArchiveDigest {
                actual: sha256.to_string(),
                expected: want.to_string(),
            },
        ));
    }
    if let Some(want) = expected.size_bytes
        && want != size_bytes
    {
        return Err(fail(
            None,
            Problem::ArchiveSize {
                actual: size_bytes,
                expected: want,
            },
        ));
    }
    if trailing.is_some() {
        return Err(fail(
            last.as_deref(),
            Problem::Read(io::Error::other("data after the end of the tar archive")),
        ));
    }
    let bytes = manifest_bytes.ok_or_else(|| fail(None, Problem::NoManifest))?;
    let manifest = Manifest::parse(&bytes).map_err(|e| fail(Some(MANIFEST_NAME), Problem::Manifest(e)))?;
    let content_digest = Sha256Digest::from_bytes(Sha256::digest(&bytes).into());
    if let Some(want) = &expected.content_digest
        && *want != content_digest
    {
        return Err(fail(
            Some(MANIFEST_NAME),
            Problem::ContentDigest {
                actual: content_digest.to_string(),
                expected: want.to_string(),
            },
        ));
    }
    compare(&manifest, &seen, &order).map_err(|(path, p)| fail(Some(&path), p))?;
    if let Some((e, problem)) = manifest.first_escaping_symlink() {
        let target = match &e.kind {
            EntryKind::Symlink { target } => target.clone(),
            _ => String::new(),
        };
        return Err(fail(Some(&e.path), Problem::Symlink { target, problem }));
    }
    Ok(VerifyReport {
        sha256,
        content_digest,
        size_bytes,
        file_count: manifest.file_count(),
        file_bytes: manifest.file_bytes(),
        manifest,
    })
}

fn pax_size<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Option<u64>> {
    let Some(exts) = entry.pax_extensions()? else {
        return Ok(None);
    };
    for ext in exts {
        let ext = ext?;
        if ext.key_bytes() == b"size" {
            let v = std::str::from_utf8(ext.value_bytes())
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| io::Error::other("invalid size in PAX header"))?;
            return Ok(Some(v));
        }
    }
    Ok(None)
}

pub(crate) fn link_name<R: Read>(entry: &tar::Entry<'_, R>) -> Result<String, Problem> {
    let raw = entry
        .link_name_bytes()
        .ok_or(Problem::Path(manifest::PathProblem::Empty))?
        .into_owned();
    String::from_utf8(raw).map_err(|_| Problem::NotUtf8)
}

/// Every archive entry against the manifest, in archive order; then what
/// the manifest lists that the archive lacks.
fn compare(manifest: &Manifest, seen: &HashMap<String, Seen>, order: &[String]) -> Result<(), (String, Problem)> {
    let listed: HashMap<&str, &EntryKind> = manifest.entries.iter().map(|e| (e.path.as_str(), &e.kind)).collect();
    for path in order {
        let Some(got) = seen.get(path) else { continue };
        let Some(want) = listed.get(path.as_str()) else {
            return Err((path.clone(), Problem::NotInManifest));
        };
        let mismatch =
            |archive: &'static str, manifest: &'static str| (path.clone(), Problem::TypeMismatch { archive, manifest });
        match (got, want) {
            (Seen::Dir { mode }, EntryKind::Dir) => {
                if *mode != MODE_DIR {
                    return Err((
                        path.clone(),
                        Problem::ModeMismatch {
                            archive: *mode,
                            manifest: MODE_DIR,
                        },
                    ));
                }
            }
            (
                Seen::File { mode, size, sha256 },
                EntryKind::File {
                    size: msize,
                    sha256: msha,
                    executable,
                },
            ) => {
                let mmode = if *executable { MODE_EXEC } else { MODE_FILE };
                if *mode != mmode {
                    return Err((
                        path.clone(),
                        Problem::ModeMismatch {
                            archive: *mode,
                            manifest: mmode,
                        },
                    ));
                }
                if size != msize {
                    return Err((
                        path.clone(),
                        Problem::SizeMismatch {
                            archive: *size,
                            manifest: *msize,
                        },
                    ));
                }
                if sha256 != msha {
                    return Err((
                        path.clone(),
                        Problem::DigestMismatch {
                            archive: sha256.to_string(),
                            manifest: msha.to_string(),
                        },
                    ));
                }
            }
            (Seen::Symlink { target }, EntryKind::Symlink { target: mtarget }) => {
                if target != mtarget {
                    return Err((
                        path.clone(),
                        Problem::TargetMismatch {
                            archive: target.clone(),
                            manifest: mtarget.clone(),
                        },
                    ));
                }
            }
            (got, want) => {
                let want_name = match want {
                    EntryKind::Dir => "dir",
                    EntryKind::File { .. } => "file",
                    EntryKind::Symlink { .. } => "symlink",
                };
                return Err(mismatch(got.type_name(), want_name));
            }
        }
    }
    if let Some(e) = manifest.entries.iter().find(|e| !seen.contains_key(&e.path)) {
        return Err((e.path.clone(), Problem::MissingFromArchive));
    }
    Ok(())
}

/// A sink's error: the release writer refusing an entry is an unsafe
/// archive, anything else a failed write.
fn sink_problem(e: io::Error) -> Problem {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<crate::release::ReleaseError>())
    {
        Some(refused) if !refused.is_io() => Problem::Refused(refused.problem.to_string()),
        _ => Problem::Write(e),
    }
}
