//! The service's output log: appended by Rollway's supervisor and kept
//! under a size cap (the newest bytes survive), and read back from its end.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// The newest 4 MiB of output are kept.
pub const DEFAULT_LOG_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// An append-only file that is cut back to its newest `max` bytes (from a
/// line start) whenever it grows a quarter past `max`, so trimming costs
/// little per byte written.
#[derive(Debug)]
pub struct CappedLog {
    path: PathBuf,
    file: File,
    len: u64,
    max: u64,
}

impl CappedLog {
    /// Opens (creating) the log, readable by its owner only: it holds the
    /// service's raw output, which may print its secrets.
    pub fn open(path: &Path, max: u64) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
        // A log made by an older version may be wider open.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        let len = file.metadata()?.len();
        let mut log = Self {
            path: path.to_owned(),
            file,
            len,
            max: max.max(1024),
        };
        if log.len > log.limit() {
            log.shrink()?;
        }
        Ok(log)
    }

    fn limit(&self) -> u64 {
        self.max + self.max / 4
    }

    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.len += bytes.len() as u64;
        if self.len > self.limit() {
            self.shrink()?;
        }
        Ok(())
    }

    fn shrink(&mut self) -> io::Result<()> {
        let mut f = File::open(&self.path)?;
        let len = f.metadata()?.len();
        let start = len.saturating_sub(self.max);
        f.seek(SeekFrom::Start(start))?;
        let mut kept = Vec::new();
        f.read_to_end(&mut kept)?;
        // Start on a whole line when there is one to start on.
        let first_line_end = kept.iter().position(|b| *b == b'\n').filter(|_| start > 0);
        if let Some(nl) = first_line_end {
            kept.drain(..=nl);
        }
        rollway_fs::write_atomic(&self.path, &kept, Some(0o600))?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.len = kept.len() as u64;
        Ok(())
    }
}

/// The last `n` lines of a file (oldest first; a missing file has none).
/// Reads backwards from the end, so a big log costs only what is shown.
pub fn tail_lines(path: &Path, n: usize) -> io::Result<Vec<String>> {
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

    #[test]
    fn the_cap_keeps_the_newest_whole_lines() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("output.log");
        let mut log = CappedLog::open(&p, 2048).unwrap();
        for i in 0..1000 {
            log.write(format!("line {i:04}\n").as_bytes()).unwrap();
            assert!(file_len(&p) <= 2048 + 512, "{}", file_len(&p));
        }
        let text = fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("line "), "{text:?}");
        assert!(text.ends_with("line 0999\n"));
        assert!(!text.contains("line 0000"));
        // Reopening an oversized file trims it too.
        fs::write(&p, "x\n".repeat(5000)).unwrap();
        drop(CappedLog::open(&p, 2048).unwrap());
        assert!(file_len(&p) <= 2048);
    }
}
