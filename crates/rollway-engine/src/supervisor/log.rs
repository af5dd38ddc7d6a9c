//! The service's output log: appended by Rollway's supervisor and rotated
//! at a size cap (`output.log` → `output.log.1`, the way supervisord's
//! `stdout_logfile_backups=1` does it, so one reader serves both), read back
//! from its end (`tail_lines`) and read forward from a cursor that survives
//! rotation (`read_new`, for `rollway serve`'s log records).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The newest 4 MiB of output are kept in the current file (and up to as
/// much again in the rotated one).
pub const DEFAULT_LOG_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// The previous file of a rotated log: `PATH.1`.
pub fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// An append-only file moved aside to `PATH.1` (replacing the one before)
/// once it holds `max` bytes and a write ends a line — or, for output that
/// never ends a line, a quarter past `max` — so readers see whole lines in
/// each file and a rotation costs one rename.
#[derive(Debug)]
pub struct CappedLog {
    path: PathBuf,
    file: File,
    len: u64,
    max: u64,
}

fn open_append(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    // A log made by an older version may be wider open.
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

impl CappedLog {
    /// Opens (creating) the log, readable by its owner only: it holds the
    /// service's raw output, which may print its secrets.
    pub fn open(path: &Path, max: u64) -> io::Result<Self> {
        let file = open_append(path)?;
        let len = file.metadata()?.len();
        let mut log = Self {
            path: path.to_owned(),
            file,
            len,
            max: max.max(1024),
        };
        if log.len >= log.max {
            log.rotate()?;
        }
        Ok(log)
    }

    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.len += bytes.len() as u64;
        let line_ended = bytes.last() == Some(&b'\n');
        if (self.len >= self.max && line_ended) || self.len > self.max + self.max / 4 {
            self.rotate()?;
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        fs::rename(&self.path, rotated(&self.path))?;
        self.file = open_append(&self.path)?;
        self.len = 0;
        Ok(())
    }
}

/// The last `n` lines of a log (oldest first; a missing file has none),
/// from `PATH.1` too when the current file has fewer since its rotation.
pub fn tail_lines(path: &Path, n: usize) -> io::Result<Vec<String>> {
    let mut lines = tail_of_file(path, n)?;
    if lines.len() < n {
        let mut before = tail_of_file(&rotated(path), n - lines.len())?;
        before.append(&mut lines);
        lines = before;
    }
    Ok(lines)
}

/// The last `n` lines of one file. Reads backwards from the end, so a big
/// log costs only what is shown.
fn tail_of_file(path: &Path, n: usize) -> io::Result<Vec<String>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    let mut pos = len;
    let mut buf: Vec<u8> = Vec::new();
    const CHUNK: u64 = 64 * 1024;
    // n lines need n+1 newlines before them (the last may end in one).
    while pos > 0 && buf.iter().filter(|b| **b == b'\n').count() <= n {
        let step = CHUNK.min(pos);
        pos -= step;
        f.seek(SeekFrom::Start(pos))?;
        let mut chunk = vec![0u8; usize::try_from(step).unwrap_or(0)];
        f.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
    }
    let text = String::from_utf8_lossy(&buf);
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let lines: Vec<&str> = text.split('\n').collect();
    let skip = lines.len().saturating_sub(n);
    Ok(lines[skip..]
        .iter()
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_owned())
        .collect())
}

/// Where a reader of a log stands: the file (by inode, so a rotation is
/// seen) and the offset of the next unread byte in it. Inode 0: nothing
/// read yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogCursor {
    pub inode: u64,
    /// FNV-1a of the file's first `head_len` bytes: an inode freed by a
    /// rotation is soon reused by a new file, so the inode alone does not
    /// say it is the same file.
    pub head: u64,
    pub head_len: u32,
    pub offset: u64,
    /// Inside a line longer than one read: its rest is dropped up to its end.
    pub skipping: bool,
    /// `PATH.1` as the read that made this cursor left it (its inode mixed
    /// with the FNV-1a of its start; 0 when there was none; `None` in
    /// cursors from before this was kept: not checked). A cursor in
    /// the current file whose `PATH.1` changed since saw a rotation, so a
    /// current file with its inode is a new file reusing it — which the
    /// head alone cannot tell when it was empty, or began alike, at the read.
    #[serde(default)]
    pub rotated: Option<u64>,
}

/// What one `read_new` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogChunk {
    /// Whole lines, oldest first, each bounded (`logline::bound`).
    pub lines: Vec<String>,
    /// Where the next read starts.
    pub cursor: LogCursor,
    /// More is waiting now: read again.
    pub more: bool,
    /// Output that can no longer be read (the log rotated twice since the
    /// last read, or was truncated in place), said rather than skipped.
    pub lost: Option<String>,
}

/// Said when the file a cursor was in is gone.
pub const GONE: &str =
    "the log was rotated more than once or truncated since the last read: output written in between is lost";

/// Bytes of a file's start that identify it (with its inode).
const HEAD: u64 = 64;

/// FNV-1a over the first `n` bytes of `path`; `None` when it has fewer.
fn head(path: &Path, n: u32) -> io::Result<Option<u64>> {
    let mut buf = Vec::with_capacity(n as usize);
    match File::open(path) {
        Ok(f) => f.take(u64::from(n)).read_to_end(&mut buf)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if buf.len() < n as usize {
        return Ok(None);
    }
    Ok(Some(buf.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })))
}

/// What [`LogCursor::rotated`] records of `PATH.1`.
fn rotated_mark(old_path: &Path) -> io::Result<u64> {
    let Some((inode, _)) = inode_and_len(old_path)? else {
        return Ok(0);
    };
    let h = head(old_path, u32::try_from(HEAD).unwrap_or(64))?.unwrap_or(0);
    // Never 0 for a file that is there.
    Ok((inode.rotate_left(32) ^ h) | 1)
}

/// Whether `file` (its inode and length) is the one `c` was taken in.
fn is_cursor_file(path: &Path, file: Option<(u64, u64)>, c: &LogCursor) -> io::Result<bool> {
    match file {
        // Nothing of it read yet: the inode is all there is to go by.
        Some((inode, _)) if inode == c.inode && c.head_len == 0 => Ok(true),
        Some((inode, _)) if inode == c.inode => Ok(head(path, c.head_len)? == Some(c.head)),
        _ => Ok(false),
    }
}

fn inode_and_len(path: &Path) -> io::Result<Option<(u64, u64)>> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some((m.ino(), m.len()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The lines of `path` after `cursor`, at most about `max_bytes` of them:
/// first the rest of `PATH.1` when the log rotated since (nothing lost,
/// nothing twice), then the current file. A line not yet ended is left for
/// the next read, except at the end of a rotated file (nothing more comes).
/// Each line is bounded to `logline::MAX_LINE` bytes with a marker; a line
/// longer than one read is cut and its rest skipped.
pub fn read_new(path: &Path, cursor: Option<LogCursor>, max_bytes: usize) -> io::Result<LogChunk> {
    let max_bytes = max_bytes.max(rollway_model::logline::MAX_LINE + 1);
    let old_path = rotated(path);
    let current = inode_and_len(path)?;
    let old = inode_and_len(&old_path)?;
    let cursor = cursor.filter(|c| c.inode != 0);
    let start = |file: Option<(u64, u64)>| LogCursor {
        inode: file.map_or(0, |f| f.0),
        ..LogCursor::default()
    };
    let mut lost = None;
    // `PATH.1` changed since the read: the file read then rotated away,
    // whatever now has its inode.
    let rotated_since = match &cursor {
        Some(LogCursor { rotated: Some(m), .. }) => rotated_mark(&old_path)? != *m,
        _ => false,
    };
    let in_current = match &cursor {
        Some(c) => !rotated_since && is_cursor_file(path, current, c)?,
        None => false,
    };
    let in_old = match &cursor {
        Some(c) if !in_current => is_cursor_file(&old_path, old, c)?,
        _ => false,
    };
    // `finished`: reading the rotated file, to which nothing is appended.
    let (finished, at) = match cursor {
        // Never read: from the oldest output there is.
        None if old.is_some() => (true, start(old)),
        None => (false, start(current)),
        Some(c) if in_current => (false, c),
        Some(c) if in_old => (true, c),
        // Rotated twice (the inode may even be reused by the new file), or
        // truncated in place: the file read last is not there any more.
        // After rotations both files there now came after it: read from
        // the older. Truncated in place, `PATH.1` was read before.
        Some(_) => {
            lost = Some(GONE.to_owned());
            if rotated_since && old.is_some() {
                (true, start(old))
            } else {
                (false, start(current))
            }
        }
    };
    if at.inode == 0 {
        return Ok(LogChunk {
            lost,
            ..LogChunk::default()
        });
    }
    let file = if finished { old_path.as_path() } else { path };
    let mut chunk = read_file(file, at, max_bytes, finished)?;
    // Taken after the read: a rotation during it moved the file read to
    // `PATH.1`, where the next read finds it by its inode.
    chunk.cursor.rotated = Some(rotated_mark(&old_path)?);
    if chunk.lost.is_none() {
        chunk.lost = lost;
    }
    // The rotated file read to its end: go on in the current one.
    if finished
        && !chunk.more
        && let Some(cur) = current
    {
        chunk.cursor = start(Some(cur));
        chunk.more = true;
    }
    Ok(chunk)
}

/// One read of one file from `at`; `finished`: nothing more will be
/// appended to it (a rotated file), so its last unended line is a line.
fn read_file(path: &Path, at: LogCursor, max_bytes: usize, finished: bool) -> io::Result<LogChunk> {
    use rollway_model::logline::{MAX_LINE, bound, truncated};
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(LogChunk {
                cursor: at,
                more: true,
                ..LogChunk::default()
            });
        }
        Err(e) => return Err(e),
    };
    let meta = f.metadata()?;
    if meta.ino() != at.inode {
        // Rotated between the look and the open: the next read sorts it out.
        return Ok(LogChunk {
            cursor: at,
            more: true,
            ..LogChunk::default()
        });
    }
    let mut at = at;
    let mut lost = None;
    if at.offset > meta.len() {
        lost = Some(format!(
            "the log was truncated in place ({} bytes, read up to {}): output in between is lost",
            meta.len(),
            at.offset
        ));
        at = LogCursor {
            inode: at.inode,
            ..LogCursor::default()
        };
    }
    f.seek(SeekFrom::Start(at.offset))?;
    let mut buf = Vec::with_capacity(max_bytes.min(1 << 20));
    Read::by_ref(&mut f).take(max_bytes as u64).read_to_end(&mut buf)?;
    let full = buf.len() == max_bytes;
    let mut pos = 0;
    let mut lines = Vec::new();
    if at.skipping {
        match buf.iter().position(|b| *b == b'\n') {
            Some(nl) => {
                pos = nl + 1;
                at.skipping = false;
            }
            None => pos = buf.len(),
        }
    }
    while let Some(nl) = buf[pos..].iter().position(|b| *b == b'\n') {
        let line = &buf[pos..pos + nl];
        lines.push(bound(line.strip_suffix(b"\r").unwrap_or(line)));
        pos += nl + 1;
    }
    let rest = &buf[pos..];
    if !rest.is_empty() && !at.skipping {
        if pos == 0 && full {
            // One line longer than a whole read: keep its start, skip the rest.
            let mut text = bound(&rest[..MAX_LINE]);
            text.push_str(&truncated(None));
            lines.push(text);
            pos = buf.len();
            at.skipping = true;
        } else if finished && !full {
            lines.push(bound(rest));
            pos = buf.len();
        }
    }
    at.offset += pos as u64;
    if u64::from(at.head_len) < HEAD && meta.len() > u64::from(at.head_len) {
        let n = u32::try_from(meta.len().min(HEAD)).unwrap_or(0);
        if let Some(h) = head(path, n)? {
            (at.head, at.head_len) = (h, n);
        }
    }
    Ok(LogChunk {
        lines,
        cursor: at,
        more: full,
        lost,
    })
}

/// Size of a file, 0 when missing.
pub(crate) fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn check_tail(content: &str, n: usize, expected: &[&str]) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        fs::write(&p, content).unwrap();
        assert_eq!(tail_lines(&p, n).unwrap(), expected, "{content:?} n={n}");
    }

    #[test]
    fn tails() {
        check_tail("a\nb\nc\n", 2, &["b", "c"]);
        check_tail("a\nb\nc", 2, &["b", "c"]);
        check_tail("a\nb\nc\n", 10, &["a", "b", "c"]);
        check_tail("a\r\nb\r\n", 1, &["b"]);
        check_tail("only", 1, &["only"]);
        check_tail("x\n", 0, &[]);
        check_tail("\u{fffd}\n\u{e9}t\u{e9}\n", 1, &["\u{e9}t\u{e9}"]);
        let d = tempfile::tempdir().unwrap();
        assert!(tail_lines(&d.path().join("missing"), 3).unwrap().is_empty());
        // Longer than one read chunk.
        let big: String = (0..30_000).map(|i| format!("line {i}\n")).collect();
        check_tail(&big, 3, &["line 29997", "line 29998", "line 29999"]);
    }

    /// Reads everything there is now, following `more`.
    fn drain(p: &Path, cursor: &mut Option<LogCursor>, max: usize) -> (Vec<String>, Vec<String>) {
        let (mut lines, mut lost) = (Vec::new(), Vec::new());
        for _ in 0..10_000 {
            let chunk = read_new(p, *cursor, max).unwrap();
            lines.extend(chunk.lines);
            lost.extend(chunk.lost);
            *cursor = Some(chunk.cursor);
            if !chunk.more {
                return (lines, lost);
            }
        }
        panic!("read_new never caught up");
    }

    #[test]
    fn a_cursor_reads_each_line_once_across_rotations() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("output.log");
        let mut log = CappedLog::open(&p, 2048).unwrap();
        let mut cursor = None;
        let mut read = Vec::new();
        let mut written = Vec::new();
        for i in 0..3000 {
            let line = format!("line {i:05} {}", "x".repeat(i % 37));
            // Written in two pieces now and then: a line not yet ended
            // waits for its end.
            if i % 5 == 0 {
                log.write(&line.as_bytes()[..4]).unwrap();
                log.write(format!("{}\n", &line[4..]).as_bytes()).unwrap();
            } else {
                log.write(format!("{line}\n").as_bytes()).unwrap();
            }
            written.push(line);
            // Read now and then, never more than one rotation behind.
            if i % 23 == 0 {
                let (lines, lost) = drain(&p, &mut cursor, 20_000);
                assert!(lost.is_empty(), "{lost:?}");
                read.extend(lines);
            }
        }
        let (lines, lost) = drain(&p, &mut cursor, 20_000);
        assert!(lost.is_empty(), "{lost:?}");
        read.extend(lines);
        assert!(rotated(&p).exists());
        assert_eq!(read, written);
        // tail_lines reads across the rotation too.
        let tail = tail_lines(&p, 100).unwrap();
        assert_eq!(tail, written[written.len() - 100..]);
    }

    #[test]
    fn what_cannot_be_read_any_more_is_said() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("output.log");
        let mut log = CappedLog::open(&p, 1024).unwrap();
        log.write(b"first\n").unwrap();
        let mut cursor = None;
        assert_eq!(drain(&p, &mut cursor, 20_000).0, ["first"]);
        // Two rotations before the next read: what the first rotated file
        // held is gone.
        for i in 0..200 {
            log.write(format!("filler {i:04}\n").as_bytes()).unwrap();
        }
        let (lines, lost) = drain(&p, &mut cursor, 20_000);
        assert_eq!(lost, [GONE]);
        assert_eq!(lines.last().unwrap(), "filler 0199");
        // Truncated in place (copytruncate): said, then read from the start.
        fs::write(&p, "after\n").unwrap();
        let (lines, lost) = drain(&p, &mut cursor, 20_000);
        assert_eq!((lines, lost), (vec!["after".to_owned()], vec![GONE.to_owned()]));
    }

    #[test]
    fn a_reused_inode_is_not_taken_for_the_file_read_before() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("output.log");
        let mut log = CappedLog::open(&p, 1024).unwrap();
        // Read while the log is empty: the cursor has no head to check.
        let mut cursor = None;
        assert!(drain(&p, &mut cursor, 20_000).0.is_empty());
        let taken = cursor.unwrap();
        assert_eq!((taken.head_len, taken.rotated), (0, Some(0)));
        for i in 0..200 {
            log.write(format!("filler {i:04}\n").as_bytes()).unwrap();
        }
        // Two rotations later the new file may get the freed inode (the
        // file system decides): the cursor as that would leave it.
        let reused = LogCursor {
            inode: fs::metadata(&p).unwrap().ino(),
            ..taken
        };
        let first_kept = fs::read_to_string(rotated(&p))
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_owned();
        let mut cursor = Some(reused);
        let (lines, lost) = drain(&p, &mut cursor, 20_000);
        assert_eq!(lost, [GONE]);
        // What is still there is read, from the older file on, once.
        assert_eq!(lines.first().unwrap(), &first_kept);
        assert_eq!(lines.last().unwrap(), "filler 0199");
        let n: usize = first_kept[7..].parse().unwrap();
        assert_eq!(lines.len(), 200 - n);
        // A cursor from before `rotated` was kept is taken as before.
        let old: LogCursor =
            serde_json::from_str(r#"{"inode":1,"head":0,"head_len":0,"offset":0,"skipping":false}"#).unwrap();
        assert_eq!(old.rotated, None);
    }

    #[test]
    fn a_huge_line_is_cut_and_memory_stays_bounded() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("output.log");
        let mut text = b"before\n".to_vec();
        text.extend(std::iter::repeat_n(b'a', 10 * 1024 * 1024));
        text.extend(b"\nafter \xff\n");
        fs::write(&p, &text).unwrap();
        let mut cursor = None;
        let (lines, lost) = drain(&p, &mut cursor, 1 << 20);
        assert!(lost.is_empty());
        let max = rollway_model::logline::MAX_LINE;
        assert_eq!(
            lines,
            [
                "before".to_owned(),
                format!("{} …[truncated]", "a".repeat(max)),
                "after \u{FFFD}".to_owned()
            ]
        );
        assert_eq!(cursor.unwrap().offset, text.len() as u64);
    }

    #[test]
    fn the_cap_keeps_the_newest_whole_lines() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("output.log");
        let mut log = CappedLog::open(&p, 2048).unwrap();
        for i in 0..1000 {
            log.write(format!("line {i:04}\n").as_bytes()).unwrap();
            assert!(file_len(&p) <= 2048 + 512, "{}", file_len(&p));
        }
        // Whole lines in each file; the newest in the current one.
        let text = fs::read_to_string(&p).unwrap();
        let before = fs::read_to_string(rotated(&p)).unwrap();
        assert!(text.starts_with("line ") && before.starts_with("line "), "{text:?}");
        assert!(text.ends_with("line 0999\n") && before.ends_with('\n'));
        assert!(!text.contains("line 0000") && !before.contains("line 0000"));
        // Reopening an oversized file rotates it.
        fs::write(&p, "x\n".repeat(5000)).unwrap();
        drop(CappedLog::open(&p, 2048).unwrap());
        assert_eq!(file_len(&p), 0);
        assert_eq!(file_len(&rotated(&p)), 10_000);
    }
}
