//! Packing a tree into a content-addressed `<sha256>.tar.zst`: one read of
//! each file feeds its SHA-256, the secret scan and the tar stream, while
//! zstd's worker threads compress; the stat cache and the archive index let
//! an unchanged tree reuse its archive without reading file contents.

use std::fs::{self, File};
use std::io::{self, Read as _, Write};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use rollway_model::Sha256Digest;
use rollway_model::entities::artifact::ContentFolder;
use sha2::{Digest as _, Sha256};

use crate::aliases::{self, AliasSpec, UnresolvedAlias};
use crate::error::PackError;
use crate::index::{ArchiveIndex, IndexEntry};
use crate::manifest::{EntryKind, MANIFEST_NAME, Manifest, ManifestEntry};
use crate::scan::Secrets;
use crate::statcache::StatCache;
use crate::tarfmt::{self, HeaderKind};
use crate::walk::{self, SourceKind, SourceTree, StatKey};

/// How the tar stream is compressed. Part of the format: the same tree
/// gives the same bytes only under the same setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// zstd with every parameter fixed: `zstd -3`'s 2 MiB window and
    /// settings, but the `fast` match finder with a 64 K-entry hash table
    /// and 4-byte minimum matches. On a web build (see `scripts/bench
    /// pack`) that compresses about 17 % faster than level 3 for under 1 %
    /// more bytes; fixing every parameter also keeps the bytes independent
    /// of the defaults a zstd version gives a level.
    #[default]
    Tuned,
    /// A plain zstd level.
    Level(i32),
}

impl Compression {
    /// A stable name of the setting, stored with each archive.
    pub fn key(self) -> String {
        match self {
            Self::Tuned => format!("tuned/1 job={JOB_SIZE}"),
            Self::Level(l) => format!("level={l} job={JOB_SIZE}"),
        }
    }

    fn apply<W: Write>(self, enc: &mut zstd::stream::write::Encoder<'static, W>) -> io::Result<()> {
        use zstd::zstd_safe::{CParameter as P, Strategy};
        match self {
            Self::Level(level) => enc.set_parameter(P::CompressionLevel(level)),
            Self::Tuned => {
                enc.set_parameter(P::CompressionLevel(3))?;
                for p in [
                    P::WindowLog(21),
                    P::HashLog(16),
                    P::ChainLog(16),
                    P::SearchLog(1),
                    P::MinMatch(4),
                    P::TargetLength(0),
                    P::Strategy(Strategy::ZSTD_fast),
                    P::OverlapSizeLog(6),
                ] {
                    enc.set_parameter(p)?;
                }
                Ok(())
            }
        }
    }
}

/// Bytes gathered before they are handed to the compressor; also the read
/// size for large files.
const CHUNK: usize = 1 << 20;

/// zstd's job size in multithreaded mode. Part of the format: the bytes
/// depend on it (never on the worker count), so it is a constant. 2 MiB
/// keeps zstd's buffers near 20 MiB (the default, 8 MiB jobs, takes 70) for
/// about 0.15 % more bytes, and gives two cores finer-grained work.
const JOB_SIZE: u32 = 2 << 20;

/// Default zstd workers: one more than the CPUs, so the reading thread can
/// run ahead while every core compresses; at most this many, which keeps
/// zstd's buffers near 40 MiB.
const MAX_DEFAULT_WORKERS: usize = 4;

/// Re-hash at most this share of the tree's bytes (changed or racy files)
/// to find out whether an archive of it already exists; beyond it the tree
/// has certainly changed and is packed straight away.
const REUSE_PROBE_SHARE: u64 = 4;

/// How to pack.
#[derive(Debug, Clone)]
pub struct PackOptions {
    /// Where archives (`<sha256>.tar.zst`) and their index live.
    pub out_dir: PathBuf,
    /// Where the stat cache lives; `None` hashes every file every time.
    pub cache_dir: Option<PathBuf>,
    /// Paths left out (absolute, or relative to the source): the state
    /// directory. The output and cache directories are always left out.
    pub exclude: Vec<PathBuf>,
    /// Values no file may contain.
    pub secrets: Secrets,
    /// Aliases no JavaScript file may still import.
    pub aliases: AliasSpec,
    /// How to compress; the default is what archives are compared by.
    pub compression: Compression,
    /// zstd worker threads (at least 1). The archive bytes do not depend on
    /// it: zstd's multithreaded format is the same for any worker count.
    pub workers: u32,
    /// Reuse an archive of the same content when the index has one.
    pub reuse: bool,
    /// fsync the archive before it gets its final name.
    pub sync: bool,
}

impl PackOptions {
    /// Defaults: tuned compression, one worker more than CPUs (at most 4),
    /// reuse on, fsync on.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            out_dir: out_dir.into(),
            cache_dir: None,
            exclude: Vec::new(),
            secrets: Secrets::default(),
            aliases: AliasSpec::none(),
            compression: Compression::Tuned,
            workers: u32::try_from(cpus.saturating_add(1).min(MAX_DEFAULT_WORKERS)).unwrap_or(1),
            reuse: true,
            sync: true,
        }
    }
}

/// What a pack is doing, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackPhase {
    /// Listing the tree.
    Walking,
    /// Hashing changed files to see whether an archive already exists.
    Checking,
    /// Reading, hashing and compressing.
    Packing,
    /// Lexing the JavaScript files that may import an alias.
    Aliases,
    Done,
}

/// Progress of a pack: `bytes_total` and `files_total` are known once the
/// tree is walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub phase: PackPhase,
    pub files_done: u64,
    pub files_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// What the pack did, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackStats {
    /// Files whose digest came from the stat cache.
    pub cache_hits: u64,
    /// Files read and hashed.
    pub files_read: u64,
    /// Bytes of file content read.
    pub bytes_read: u64,
}

/// A packed (or reused) archive and everything the artifact record needs.
#[derive(Debug, Clone)]
pub struct PackResult {
    pub archive_path: PathBuf,
    /// SHA-256 of the archive bytes.
    pub sha256: Sha256Digest,
    /// SHA-256 of the canonical manifest.
    pub content_digest: Sha256Digest,
    /// Size of the archive.
    pub size_bytes: u64,
    /// Seed 000 `contents`.
    pub contents: Vec<ContentFolder>,
    pub file_count: u64,
    /// Total size of the files packed (uncompressed).
    pub file_bytes: u64,
    pub aliases_resolved: bool,
    /// Sorted by file and line.
    pub unresolved_aliases: Vec<UnresolvedAlias>,
    /// An existing archive of the same content was reused.
    pub reused: bool,
    pub manifest: Manifest,
    pub stats: PackStats,
}

impl PackResult {
    /// `file:line: unresolved alias '@/x'` lines, as the record stores them.
    pub fn unresolved_alias_lines(&self) -> Vec<String> {
        self.unresolved_aliases.iter().map(ToString::to_string).collect()
    }

    /// The artifact record of this pack: built now, expiring after
    /// `expire_after`, from `source`, made by `job` when a job made it.
    pub fn record(
        &self,
        kind: rollway_model::ArtifactKind,
        source: &SourceInfo,
        now: rollway_model::Timestamp,
        expire_after: std::time::Duration,
        job: Option<rollway_model::JobId>,
    ) -> rollway_model::Artifact {
        rollway_model::Artifact {
            id: rollway_model::ArtifactId::generate(now),
            kind,
            sha256: self.sha256.clone(),
            content_digest: self.content_digest.clone(),
            size_bytes: self.size_bytes,
            source_version: source.commit.clone(),
            branch: source.branch.clone(),
            dirty: source.dirty,
            built_at: now,
            aliases_resolved: self.aliases_resolved,
            unresolved_aliases: self.unresolved_alias_lines(),
            contents: self.contents.clone(),
            // Absolute, so the record holds wherever later commands run from.
            location: fs::canonicalize(&self.archive_path)
                .unwrap_or_else(|_| self.archive_path.clone())
                .display()
                .to_string(),
            job_id: job,
            expires_at: now.plus(expire_after),
            created_at: now,
        }
    }
}

/// Where packed files came from: the git commit and branch (none outside
/// git) and whether the work tree had uncommitted changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceInfo {
    pub commit: Option<rollway_model::CommitHash>,
    pub branch: Option<String>,
    pub dirty: bool,
}

/// Packs `source` (a directory, or one file) into `opts.out_dir`.
pub fn pack(source: &Path, opts: &PackOptions) -> Result<PackResult, PackError> {
    pack_with_progress(source, opts, &mut |_| {})
}

/// [`pack`], reporting progress (about every file and every chunk).
pub fn pack_with_progress(
    source: &Path,
    opts: &PackOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<PackResult, PackError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PackError::Io { path, source }
    };
    let mut p = Progress {
        phase: PackPhase::Walking,
        files_done: 0,
        files_total: 0,
        bytes_done: 0,
        bytes_total: 0,
    };
    progress(&p);
    fs::create_dir_all(&opts.out_dir).map_err(io_err(&opts.out_dir))?;
    let mut exclude = opts.exclude.clone();
    exclude.push(opts.out_dir.clone());
    exclude.extend(opts.cache_dir.iter().cloned());
    let tree = walk::walk(source, &exclude)?;
    check_symlinks(&tree)?;
    let files: Vec<usize> = (0..tree.entries.len())
        .filter(|&i| tree.entries[i].kind == SourceKind::File)
        .collect();
    p.files_total = files.len() as u64;
    p.bytes_total = files.iter().map(|&i| tree.entries[i].stat.size).sum();

    let mut cache = opts.cache_dir.as_deref().map(|d| StatCache::open(d, &tree.root));
    let mut digests: Vec<Option<[u8; 32]>> = tree
        .entries
        .iter()
        .map(|e| match (&cache, &e.kind) {
            (Some(c), SourceKind::File) => c.lookup(&e.path, &e.stat),
            _ => None,
        })
        .collect();
    let mut stats = PackStats {
        cache_hits: digests.iter().filter(|d| d.is_some()).count() as u64,
        ..PackStats::default()
    };
    let mut index = ArchiveIndex::load(&opts.out_dir);
    let alias_key = opts.aliases.key();
    let secrets_key = opts.secrets.fingerprint(index.salt());

    if opts.reuse && !index.is_empty() {
        let missing: u64 = files
            .iter()
            .filter(|&&i| digests[i].is_none())
            .map(|&i| tree.entries[i].stat.size)
            .sum();
        if missing <= p.bytes_total / REUSE_PROBE_SHARE {
            p.phase = PackPhase::Checking;
            progress(&p);
            for &i in &files {
                if digests[i].is_none() {
                    let e = &tree.entries[i];
                    let (digest, stat) = hash_file(&tree.root.join(&e.path), e.stat.size)?;
                    stats.files_read += 1;
                    stats.bytes_read += e.stat.size;
                    if let Some(c) = cache.as_mut() {
                        c.record(&e.path, stat, digest);
                    }
                    digests[i] = Some(digest);
                }
            }
            let manifest = manifest_of(&tree, &digests);
            let content_digest = manifest.content_digest();
            if let Some(hit) = index.find(&content_digest)
                && hit.compression == opts.compression.key()
                && hit.alias_key == alias_key
                && hit.secrets == secrets_key
            {
                let hit = hit.clone();
                save_cache(cache.as_mut(), &tree)?;
                p.phase = PackPhase::Done;
                p.files_done = p.files_total;
                p.bytes_done = p.bytes_total;
                progress(&p);
                return Ok(PackResult {
                    archive_path: opts.out_dir.join(&hit.archive),
                    sha256: hit.sha256,
                    content_digest,
                    size_bytes: hit.size_bytes,
                    contents: manifest.contents(),
                    file_count: manifest.file_count(),
                    file_bytes: manifest.file_bytes(),
                    aliases_resolved: hit.aliases_resolved,
                    unresolved_aliases: hit
                        .unresolved
                        .into_iter()
                        .map(|(file, line, specifier)| UnresolvedAlias { file, line, specifier })
                        .collect(),
                    reused: true,
                    manifest,
                    stats,
                });
            }
        }
    }

    p.phase = PackPhase::Packing;
    progress(&p);
    let written = write_archive(&tree, opts, cache.as_mut(), &mut stats, &mut p, progress)?;

    p.phase = PackPhase::Aliases;
    progress(&p);
    let mut unresolved = Vec::new();
    for path in &written.alias_hints {
        let found = aliases::scan_file(&tree.root, path, &opts.aliases).map_err(io_err(&tree.root.join(path)))?;
        unresolved.extend(found);
    }
    unresolved.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));

    let name = format!("{}.tar.zst", written.sha256);
    index.insert(
        &written.content_digest,
        IndexEntry {
            archive: name,
            sha256: written.sha256.clone(),
            size_bytes: written.size_bytes,
            compression: opts.compression.key(),
            alias_key,
            secrets: secrets_key,
            aliases_resolved: unresolved.is_empty(),
            unresolved: unresolved
                .iter()
                .map(|u| (u.file.clone(), u.line, u.specifier.clone()))
                .collect(),
        },
    );
    index.save().map_err(io_err(&opts.out_dir.join("index.json")))?;
    save_cache(cache.as_mut(), &tree)?;
    p.phase = PackPhase::Done;
    progress(&p);
    Ok(PackResult {
        archive_path: written.path,
        sha256: written.sha256,
        content_digest: written.content_digest,
        size_bytes: written.size_bytes,
        contents: written.manifest.contents(),
        file_count: written.manifest.file_count(),
        file_bytes: written.manifest.file_bytes(),
        aliases_resolved: unresolved.is_empty(),
        unresolved_aliases: unresolved,
        reused: false,
        manifest: written.manifest,
        stats,
    })
}

fn save_cache(cache: Option<&mut StatCache>, tree: &SourceTree) -> Result<(), PackError> {
    if let Some(c) = cache {
        let live = tree
            .entries
            .iter()
            .filter(|e| e.kind == SourceKind::File)
            .map(|e| e.path.as_str());
        c.save(live).map_err(|source| PackError::Io {
            path: c.path().to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

/// Refuses a symlink that resolves outside the tree (judged over the
/// tree's own entries, as unpack judges it).
fn check_symlinks(tree: &SourceTree) -> Result<(), PackError> {
    if !tree.entries.iter().any(|e| matches!(e.kind, SourceKind::Symlink(_))) {
        return Ok(());
    }
    let zero: Vec<Option<[u8; 32]>> = vec![Some([0; 32]); tree.entries.len()];
    let skeleton = manifest_of(tree, &zero);
    if let Some((e, problem)) = skeleton.first_escaping_symlink() {
        let target = match &e.kind {
            EntryKind::Symlink { target } => target.clone(),
            _ => String::new(),
        };
        return Err(PackError::Symlink {
            path: tree.root.join(&e.path),
            target,
            problem,
        });
    }
    Ok(())
}

fn manifest_of(tree: &SourceTree, digests: &[Option<[u8; 32]>]) -> Manifest {
    let entries = tree
        .entries
        .iter()
        .zip(digests)
        .map(|(e, d)| ManifestEntry {
            path: e.path.clone(),
            kind: match &e.kind {
                SourceKind::Dir => EntryKind::Dir,
                SourceKind::Symlink(t) => EntryKind::Symlink { target: t.clone() },
                SourceKind::File => EntryKind::File {
                    size: e.stat.size,
                    sha256: Sha256Digest::from_bytes(d.unwrap_or([0; 32])),
                    executable: e.executable,
                },
            },
        })
        .collect();
    Manifest::new(entries)
}

/// Opens a file of the tree without following a symlink put there since
/// the walk, and returns it with its stat.
fn open_source(path: &Path) -> io::Result<(File, StatKey)> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?;
    stat_source(File::from(fd))
}

fn stat_source(file: File) -> io::Result<(File, StatKey)> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file any more"));
    }
    Ok((file, StatKey::of(&meta)))
}

/// Hashes one file (for the reuse check); its size must not have changed.
fn hash_file(path: &Path, size: u64) -> Result<([u8; 32], StatKey), PackError> {
    let changed = || PackError::Changed {
        path: path.to_path_buf(),
    };
    let (mut f, stat) = open_source(path).map_err(|source| PackError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if stat.size != size {
        return Err(changed());
    }
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK.min(usize::try_from(size).unwrap_or(CHUNK).max(1))];
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = read_some(&mut f, &mut buf[..want]).map_err(|source| PackError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if n == 0 {
            return Err(changed());
        }
        h.update(&buf[..n]);
        left -= n as u64;
    }
    Ok((h.finalize().into(), stat))
}

/// Opens the files of the tree relative to their directory, kept open
/// while consecutive (sorted) files share it, so no open walks the whole
/// path again.
struct SourceDirs {
    root: PathBuf,
    parent: Option<(String, std::os::fd::OwnedFd)>,
}

impl SourceDirs {
    fn open(&mut self, path: &str) -> io::Result<(File, StatKey)> {
        use rustix::fs::{Mode, OFlags};
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        if self.parent.as_ref().is_none_or(|(p, _)| p != parent) {
            let dir = rustix::fs::open(
                self.root.join(parent),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            self.parent = Some((parent.to_owned(), dir));
        }
        let Some((_, dir)) = self.parent.as_ref() else {
            return Err(io::Error::other("no directory open"));
        };
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        stat_source(File::from(fd))
    }
}

fn read_some(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match f.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// zstd's output on its way to the file: gathered into large buffers that a
/// writer thread hashes and writes, so neither job holds up the thread
/// that reads and feeds the compressor.
struct ArchiveSink {
    buf: Vec<u8>,
    tx: Option<mpsc::SyncSender<Vec<u8>>>,
    spare: mpsc::Receiver<Vec<u8>>,
    writer: Option<thread::JoinHandle<io::Result<(File, Sha256, u64)>>>,
}

/// How much archive is written between hints to start writing it back.
const WRITEBACK_STEP: u64 = 16 << 20;

/// Output buffers in flight between the compressor and the writer.
const SINK_BUFFERS: usize = 3;

impl ArchiveSink {
    fn new(mut file: File) -> io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(SINK_BUFFERS);
        let (spare_tx, spare) = mpsc::sync_channel::<Vec<u8>>(SINK_BUFFERS + 2);
        let writer = thread::Builder::new()
            .name("rollway-pack-writer".into())
            .spawn(move || {
                let mut sha = Sha256::new();
                let mut written = 0u64;
                let mut flushed = 0u64;
                for mut chunk in rx {
                    sha.update(&chunk);
                    file.write_all(&chunk)?;
                    written += chunk.len() as u64;
                    chunk.clear();
                    let _ = spare_tx.try_send(chunk);
                    // Start writing back what is done, so the final fsync
                    // waits for the tail only (Linux starts writeback of a
                    // range on DONTNEED; the hint is harmless elsewhere).
                    if written - flushed >= WRITEBACK_STEP {
                        let _ = rustix::fs::fadvise(
                            &file,
                            flushed,
                            std::num::NonZeroU64::new(written - flushed),
                            rustix::fs::Advice::DontNeed,
                        );
                        flushed = written;
                    }
                }
                Ok((file, sha, written))
            })?;
        Ok(Self {
            buf: Vec::with_capacity(CHUNK),
            tx: Some(tx),
            spare,
            writer: Some(writer),
        })
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = self.spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.buf, next);
        let sent = self.tx.as_ref().map(|tx| tx.send(full).is_ok()).unwrap_or(false);
        if sent {
            Ok(())
        } else {
            // The writer stopped: its error says why.
            Err(self
                .join()
                .err()
                .unwrap_or_else(|| io::Error::other("archive writer stopped")))
        }
    }

    fn join(&mut self) -> io::Result<(File, Sha256, u64)> {
        self.tx = None;
        match self.writer.take() {
            Some(h) => h.join().map_err(|_| io::Error::other("archive writer panicked"))?,
            None => Err(io::Error::other("archive writer already finished")),
        }
    }

    /// Sends what is left and waits for the writer: the file, the digest
    /// of every byte written, and the count.
    fn finish(mut self) -> io::Result<(File, Sha256, u64)> {
        self.send()?;
        self.join()
    }
}

impl Write for ArchiveSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The temporary archive, removed unless it was renamed into place.
struct TempFile {
    path: PathBuf,
    done: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.path);
        }
    }
}

struct Written {
    path: PathBuf,
    sha256: Sha256Digest,
    content_digest: Sha256Digest,
    size_bytes: u64,
    manifest: Manifest,
    alias_hints: Vec<String>,
}

/// One piece of the tar stream with the progress made when it was cut.
struct Piece {
    buf: Vec<u8>,
    files_done: u64,
    bytes_done: u64,
}

/// Tar stream pieces in flight between the producer and the compressor.
const PIECES: usize = 4;

/// The tar stream as the producer thread builds it: headers and file data
/// gathered in one buffer that files are read straight into, handed over
/// whole to the thread that feeds zstd.
struct TarOut {
    buf: Vec<u8>,
    fill: usize,
    tx: mpsc::SyncSender<Piece>,
    spare: mpsc::Receiver<Vec<u8>>,
    files_done: u64,
    bytes_done: u64,
}

/// The compressing side hung up (it failed and says why itself).
#[derive(Debug)]
struct Stopped;

impl TarOut {
    fn flush_chunk(&mut self) -> Result<(), Stopped> {
        if self.fill == 0 {
            return Ok(());
        }
        let mut next = self.spare.try_recv().unwrap_or_default();
        next.resize(CHUNK, 0);
        let mut full = std::mem::replace(&mut self.buf, next);
        full.truncate(self.fill);
        self.fill = 0;
        self.tx
            .send(Piece {
                buf: full,
                files_done: self.files_done,
                bytes_done: self.bytes_done,
            })
            .map_err(|_| Stopped)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), Stopped> {
        let mut rest = bytes;
        while !rest.is_empty() {
            if self.fill == self.buf.len() {
                self.flush_chunk()?;
            }
            let n = rest.len().min(self.buf.len() - self.fill);
            self.buf[self.fill..self.fill + n].copy_from_slice(&rest[..n]);
            self.fill += n;
            rest = &rest[n..];
        }
        Ok(())
    }

    fn zeros(&mut self, n: usize) -> Result<(), Stopped> {
        const Z: [u8; tarfmt::BLOCK] = [0; tarfmt::BLOCK];
        self.put(&Z[..n])
    }
}

/// What the producer learned about the tree while streaming it.
struct Produced {
    manifest: Manifest,
    manifest_bytes: Vec<u8>,
    /// (path, stat at open, digest) of every file read.
    hashed: Vec<(String, StatKey, [u8; 32])>,
    alias_hints: Vec<String>,
}

enum ProduceError {
    Pack(PackError),
    Stopped,
}

impl From<PackError> for ProduceError {
    fn from(e: PackError) -> Self {
        Self::Pack(e)
    }
}

impl From<Stopped> for ProduceError {
    fn from(_: Stopped) -> Self {
        Self::Stopped
    }
}

/// Reads every file once — hashing it, scanning it and laying it into the
/// tar stream together — and ends the stream with the manifest.
fn produce(tree: &SourceTree, opts: &PackOptions, out: &mut TarOut) -> Result<Produced, ProduceError> {
    let secret_matcher = opts.secrets.matcher();
    let alias_matcher = opts.aliases.hint_matcher();
    let mut header = Vec::with_capacity(2 * tarfmt::BLOCK);
    let mut entries = Vec::with_capacity(tree.entries.len());
    let mut hashed = Vec::new();
    let mut alias_hints = Vec::new();
    let mut dirs = SourceDirs {
        root: tree.root.clone(),
        parent: None,
    };
    for e in &tree.entries {
        header.clear();
        let kind = match &e.kind {
            SourceKind::Dir => {
                tarfmt::append_header(&mut header, &e.path, HeaderKind::Dir);
                out.put(&header)?;
                EntryKind::Dir
            }
            SourceKind::Symlink(target) => {
                tarfmt::append_header(&mut header, &e.path, HeaderKind::Symlink { target });
                out.put(&header)?;
                EntryKind::Symlink { target: target.clone() }
            }
            SourceKind::File => {
                let abs = tree.root.join(&e.path);
                let read_err = |source| PackError::Io {
                    path: abs.clone(),
                    source,
                };
                let (mut f, stat) = dirs.open(&e.path).map_err(read_err)?;
                if stat.size != e.stat.size {
                    return Err(PackError::Changed { path: abs }.into());
                }
                let size = stat.size;
                tarfmt::append_header(
                    &mut header,
                    &e.path,
                    HeaderKind::File {
                        size,
                        executable: e.executable,
                    },
                );
                out.put(&header)?;
                let mut sha = Sha256::new();
                let mut secret_scan = secret_matcher.map(|m| m.stream());
                let mut alias_scan = alias_matcher
                    .as_ref()
                    .filter(|_| aliases::is_js(&e.path))
                    .map(|m| m.stream());
                let mut left = size;
                while left > 0 {
                    if out.fill == out.buf.len() {
                        out.flush_chunk()?;
                    }
                    let room = (out.buf.len() - out.fill).min(usize::try_from(left).unwrap_or(usize::MAX));
                    let at = out.fill;
                    let n = read_some(&mut f, &mut out.buf[at..at + room]).map_err(read_err)?;
                    if n == 0 {
                        return Err(PackError::Changed { path: abs }.into());
                    }
                    let data = &out.buf[at..at + n];
                    sha.update(data);
                    if let Some(s) = secret_scan.as_mut() {
                        s.push(data);
                    }
                    if let Some(s) = alias_scan.as_mut() {
                        s.push(data);
                    }
                    out.fill += n;
                    out.bytes_done += n as u64;
                    left -= n as u64;
                }
                if let Some(found) = secret_scan.as_ref().and_then(|s| s.found()) {
                    return Err(PackError::SecretFound {
                        path: abs,
                        name: opts.secrets.name(found).to_owned(),
                    }
                    .into());
                }
                if alias_scan.as_ref().is_some_and(|s| s.found().is_some()) {
                    alias_hints.push(e.path.clone());
                }
                out.zeros(tarfmt::padding(size))?;
                let digest: [u8; 32] = sha.finalize().into();
                hashed.push((e.path.clone(), stat, digest));
                out.files_done += 1;
                EntryKind::File {
                    size,
                    sha256: Sha256Digest::from_bytes(digest),
                    executable: e.executable,
                }
            }
        };
        entries.push(ManifestEntry {
            path: e.path.clone(),
            kind,
        });
    }
    // The manifest goes last: only then are all digests known, and each
    // file is read once, for hashing and packing together.
    let manifest = Manifest::new(entries);
    let manifest_bytes = manifest.canonical_bytes();
    header.clear();
    tarfmt::append_header(
        &mut header,
        MANIFEST_NAME,
        HeaderKind::File {
            size: manifest_bytes.len() as u64,
            executable: false,
        },
    );
    out.put(&header)?;
    out.put(&manifest_bytes)?;
    out.zeros(tarfmt::padding(manifest_bytes.len() as u64))?;
    out.zeros(tarfmt::BLOCK)?;
    out.zeros(tarfmt::BLOCK)?;
    out.flush_chunk()?;
    Ok(Produced {
        manifest,
        manifest_bytes,
        hashed,
        alias_hints,
    })
}

/// Three stages overlap: this thread's producer reads, hashes and frames
/// files; the calling thread feeds zstd (whose workers compress); the
/// writer thread hashes and writes the compressed bytes.
fn write_archive(
    tree: &SourceTree,
    opts: &PackOptions,
    mut cache: Option<&mut StatCache>,
    stats: &mut PackStats,
    p: &mut Progress,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Written, PackError> {
    let tmp_path = rollway_fs::temp_path(&opts.out_dir, "pack-", ".tmp").map_err(|source| PackError::Write {
        path: opts.out_dir.clone(),
        source,
    })?;
    let write_err = |source| PackError::Write {
        path: tmp_path.clone(),
        source,
    };
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp_path)
        .map_err(write_err)?;
    let mut tmp = TempFile {
        path: tmp_path.clone(),
        done: false,
    };
    let mut enc =
        zstd::stream::write::Encoder::new(ArchiveSink::new(file).map_err(write_err)?, 0).map_err(write_err)?;
    opts.compression.apply(&mut enc).map_err(write_err)?;
    enc.multithread(opts.workers.max(1)).map_err(write_err)?;
    enc.include_checksum(true).map_err(write_err)?;
    enc.set_parameter(zstd::zstd_safe::CParameter::JobSize(JOB_SIZE))
        .map_err(write_err)?;

    let (tx, rx) = mpsc::sync_channel::<Piece>(PIECES);
    let (spare_tx, spare_rx) = mpsc::sync_channel::<Vec<u8>>(PIECES + 2);
    let (produced, fed) = thread::scope(|s| {
        let producer = thread::Builder::new()
            .name("rollway-pack-reader".into())
            .spawn_scoped(s, move || {
                let mut out = TarOut {
                    buf: vec![0u8; CHUNK],
                    fill: 0,
                    tx,
                    spare: spare_rx,
                    files_done: 0,
                    bytes_done: 0,
                };
                produce(tree, opts, &mut out)
            });
        let producer = match producer {
            Ok(h) => h,
            Err(e) => return (Err(ProduceError::Stopped), Err(e)),
        };
        let mut fed = Ok(());
        for piece in &rx {
            if let Err(e) = enc.write_all(&piece.buf) {
                fed = Err(e);
                break;
            }
            p.files_done = piece.files_done;
            p.bytes_done = piece.bytes_done;
            progress(p);
            let _ = spare_tx.try_send(piece.buf);
        }
        // Hanging up stops a producer still sending after a failed write.
        drop(rx);
        let produced = producer.join().unwrap_or(Err(ProduceError::Stopped));
        (produced, fed)
    });
    let produced = match (produced, fed) {
        (Ok(prod), Ok(())) => prod,
        (Err(ProduceError::Pack(e)), _) => return Err(e),
        (_, Err(e)) => return Err(write_err(e)),
        (Err(ProduceError::Stopped), Ok(())) => {
            return Err(write_err(io::Error::other("the archive reader thread stopped")));
        }
    };
    let (file, sha, size_bytes) = enc.finish().and_then(ArchiveSink::finish).map_err(write_err)?;
    if opts.sync {
        file.sync_all().map_err(write_err)?;
    }
    drop(file);
    let sha256 = Sha256Digest::from_bytes(sha.finalize().into());
    for (path, stat, digest) in &produced.hashed {
        if let Some(c) = cache.as_deref_mut() {
            c.record(path, *stat, *digest);
        }
        stats.files_read += 1;
        stats.bytes_read += stat.size;
    }
    let final_path = opts.out_dir.join(format!("{sha256}.tar.zst"));
    fs::rename(&tmp_path, &final_path).map_err(|source| PackError::Write {
        path: final_path.clone(),
        source,
    })?;
    tmp.done = true;
    // The size on disk is what the index checks later; a mismatch here means
    // another writer raced us for the same name with different bytes.
    let on_disk = fs::metadata(&final_path).map(|m| m.size()).unwrap_or(0);
    if on_disk != size_bytes {
        return Err(PackError::Write {
            path: final_path,
            source: io::Error::other("archive size changed after it was written"),
        });
    }
    Ok(Written {
        path: final_path,
        sha256,
        content_digest: Sha256Digest::from_bytes(Sha256::digest(&produced.manifest_bytes).into()),
        size_bytes,
        manifest: produced.manifest,
        alias_hints: produced.alias_hints,
    })
}
