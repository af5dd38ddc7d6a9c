//! The stat cache: (path, size, mtime, ctime, inode, device) → file SHA-256,
//! so re-packing an unchanged tree reads almost nothing. Git's racy-timestamp
//! rule applies: an entry whose mtime or ctime is not strictly older than the
//! time the cache file was written (its own mtime, read back from the same
//! filesystem clock and granularity) may have changed within that clock tick
//! unseen, so it is hashed again.
//!
//! File format (`stat-<root digest>.bin` in the cache directory), all
//! integers little-endian:
//! `"RWSTAT1\n"`, u32 root length + root path, u64 entry count, then per
//! entry sorted by path: u16 bytes shared with the previous path, u16 suffix
//! length + suffix, u64 size, i64 mtime ns, i64 ctime ns, u64 inode, u64
//! device, 32-byte SHA-256; last, the SHA-256 of everything before it. A
//! file that fails any check is ignored (everything is re-hashed).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::walk::StatKey;

const MAGIC: &[u8; 8] = b"RWSTAT1\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CacheEntry {
    stat: StatKey,
    sha256: [u8; 32],
}

/// The stat cache of one source root.
#[derive(Debug)]
pub struct StatCache {
    file: PathBuf,
    root: String,
    /// The cache file's mtime when loaded, in ns; entries not strictly
    /// older are racy.
    written_ns: Option<i64>,
    entries: HashMap<String, CacheEntry>,
    dirty: bool,
}

impl StatCache {
    /// The cache for `root` (canonical) kept in `cache_dir`; empty when
    /// there is none yet or it cannot be read.
    pub fn open(cache_dir: &Path, root: &Path) -> Self {
        let root = root.to_string_lossy().into_owned();
        let name = format!("stat-{}.bin", &hex::encode(Sha256::digest(root.as_bytes()))[..16]);
        let file = cache_dir.join(name);
        let mut cache = Self {
            file,
            root,
            written_ns: None,
            entries: HashMap::new(),
            dirty: false,
        };
        let loaded = fs::metadata(&cache.file).ok().and_then(|meta| {
            let bytes = fs::read(&cache.file).ok()?;
            let entries = decode(&bytes, &cache.root)?;
            Some((mtime_ns(&meta), entries))
        });
        if let Some((written, entries)) = loaded {
            cache.written_ns = Some(written);
            cache.entries = entries;
        }
        cache
    }

    /// Where the cache lives.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// How many entries were loaded or recorded.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The cached digest, if the stat matches exactly and the entry is not
    /// racy.
    pub fn lookup(&self, path: &str, stat: &StatKey) -> Option<[u8; 32]> {
        let written = self.written_ns?;
        let e = self.entries.get(path)?;
        let clean = e.stat == *stat && e.stat.mtime_ns < written && e.stat.ctime_ns < written;
        clean.then_some(e.sha256)
    }

    /// Records a digest computed from the bytes read under this stat.
    pub fn record(&mut self, path: &str, stat: StatKey, sha256: [u8; 32]) {
        let new = CacheEntry { stat, sha256 };
        if self.entries.get(path) != Some(&new) {
            self.entries.insert(path.to_owned(), new);
            self.dirty = true;
        }
    }

    /// Keeps only `live` paths and writes the cache (temporary file then
    /// rename) when anything changed, or when some entry is racy and a
    /// later write time would make it clean.
    pub fn save<'a>(&mut self, live: impl IntoIterator<Item = &'a str>) -> io::Result<()> {
        let live: std::collections::HashSet<&str> = live.into_iter().collect();
        let before = self.entries.len();
        self.entries.retain(|p, _| live.contains(p.as_str()));
        let racy = match self.written_ns {
            Some(w) => self
                .entries
                .values()
                .any(|e| e.stat.mtime_ns >= w || e.stat.ctime_ns >= w),
            None => true,
        };
        if !(self.dirty || racy || self.entries.len() != before) {
            return Ok(());
        }
        let bytes = encode(&self.root, &self.entries);
        let result = rollway_fs::write_atomic(&self.file, &bytes, None).and_then(|()| {
            // The rename kept the file's times: this is when it was written.
            let meta = fs::metadata(&self.file)?;
            self.written_ns = Some(mtime_ns(&meta));
            Ok(())
        });
        self.dirty = false;
        result
    }

    #[cfg(test)]
    fn set_written_ns(&mut self, ns: i64) {
        self.written_ns = Some(ns);
    }
}

fn mtime_ns(meta: &fs::Metadata) -> i64 {
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

fn encode(root: &str, entries: &HashMap<String, CacheEntry>) -> Vec<u8> {
    let mut sorted: Vec<(&String, &CacheEntry)> = entries
        .iter()
        .filter(|(p, _)| p.len() <= usize::from(u16::MAX))
        .collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = Vec::with_capacity(64 + sorted.len() * 96);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(root.len() as u32).to_le_bytes());
    out.extend_from_slice(root.as_bytes());
    out.extend_from_slice(&(sorted.len() as u64).to_le_bytes());
    let mut prev: &[u8] = b"";
    for (path, e) in sorted {
        let p = path.as_bytes();
        let shared = p.iter().zip(prev).take_while(|(a, b)| a == b).count();
        out.extend_from_slice(&(shared as u16).to_le_bytes());
        out.extend_from_slice(&((p.len() - shared) as u16).to_le_bytes());
        out.extend_from_slice(&p[shared..]);
        out.extend_from_slice(&e.stat.size.to_le_bytes());
        out.extend_from_slice(&e.stat.mtime_ns.to_le_bytes());
        out.extend_from_slice(&e.stat.ctime_ns.to_le_bytes());
        out.extend_from_slice(&e.stat.ino.to_le_bytes());
        out.extend_from_slice(&e.stat.dev.to_le_bytes());
        out.extend_from_slice(&e.sha256);
        prev = p;
    }
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    out
}

fn decode(bytes: &[u8], root: &str) -> Option<HashMap<String, CacheEntry>> {
    let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
    if Sha256::digest(body).as_slice() != sum {
        return None;
    }
    let mut r = Reader { b: body };
    if r.take(8)? != MAGIC {
        return None;
    }
    let root_len = r.u32()? as usize;
    if r.take(root_len)? != root.as_bytes() {
        return None;
    }
    let count = r.u64()?;
    let mut entries = HashMap::with_capacity(usize::try_from(count).ok()?.min(1 << 24));
    let mut prev: Vec<u8> = Vec::new();
    for _ in 0..count {
        let shared = usize::from(r.u16()?);
        let suffix_len = usize::from(r.u16()?);
        let suffix = r.take(suffix_len)?;
        prev.truncate(shared);
        if prev.len() != shared {
            return None;
        }
        prev.extend_from_slice(suffix);
        let stat = StatKey {
            size: r.u64()?,
            mtime_ns: r.u64()? as i64,
            ctime_ns: r.u64()? as i64,
            ino: r.u64()?,
            dev: r.u64()?,
        };
        let sha256: [u8; 32] = r.take(32)?.try_into().ok()?;
        entries.insert(String::from_utf8(prev.clone()).ok()?, CacheEntry { stat, sha256 });
    }
    r.b.is_empty().then_some(entries)
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.b.split_at_checked(n)?;
        self.b = rest;
        Some(head)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn stat(size: u64, mtime_ns: i64, ctime_ns: i64) -> StatKey {
        StatKey {
            size,
            mtime_ns,
            ctime_ns,
            ino: 7,
            dev: 1,
        }
    }

    #[test]
    fn round_trips_and_drops_dead_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new("/src/app");
        let mut c = StatCache::open(dir.path(), root);
        assert!(c.is_empty());
        c.record("a/b.js", stat(3, 10, 10), [1; 32]);
        c.record("a/bc.js", stat(4, 11, 11), [2; 32]);
        c.record("gone", stat(5, 12, 12), [3; 32]);
        c.save(["a/b.js", "a/bc.js"]).unwrap();
        let c2 = StatCache::open(dir.path(), root);
        assert_eq!(c2.len(), 2);
        assert_eq!(c2.lookup("a/b.js", &stat(3, 10, 10)), Some([1; 32]));
        assert_eq!(c2.lookup("a/bc.js", &stat(4, 11, 11)), Some([2; 32]));
        assert_eq!(c2.lookup("gone", &stat(5, 12, 12)), None);
        // Another root does not see this cache.
        assert!(StatCache::open(dir.path(), Path::new("/src/other")).is_empty());
        // A damaged file is ignored, not trusted.
        let mut bytes = fs::read(c2.path()).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        fs::write(c2.path(), bytes).unwrap();
        assert!(StatCache::open(dir.path(), root).is_empty());
    }

    /// (entry stat, stat seen now, cache written at) → hit?
    fn check(entry: StatKey, now: StatKey, written_ns: i64, hit: bool) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = StatCache::open(dir.path(), Path::new("/r"));
        c.record("f", entry, [9; 32]);
        c.set_written_ns(written_ns);
        assert_eq!(c.lookup("f", &now).is_some(), hit, "{entry:?} {now:?} {written_ns}");
    }

    #[test]
    fn lookup_follows_the_racy_timestamp_rule() {
        let s = stat(10, 1_000, 1_000);
        check(s, s, 2_000, true);
        // Modified in the same tick the cache was written: re-hash.
        check(s, s, 1_000, false);
        check(stat(10, 1_000, 1_500), stat(10, 1_000, 1_500), 1_500, false);
        check(s, s, 999, false);
        // Any stat field differing: re-hash.
        check(s, stat(11, 1_000, 1_000), 2_000, false);
        check(s, stat(10, 1_001, 1_000), 2_000, false);
        check(s, stat(10, 1_000, 1_001), 2_000, false);
        check(s, StatKey { ino: 8, ..s }, 2_000, false);
        check(s, StatKey { dev: 2, ..s }, 2_000, false);
    }
}
