//! Shared helpers for the artifact tests: deterministic generated trees,
//! fresh copies of a tree, and the calling thread's read counter.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// xorshift64*: deterministic bytes without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Incompressible bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
    /// Compressible, code-like text.
    pub fn text(&mut self, n: usize) -> Vec<u8> {
        const WORDS: [&str; 16] = [
            "const ",
            "function ",
            "return ",
            "(a, b)",
            " => ",
            "{\n",
            "}\n",
            "import ",
            "value",
            "this.",
            "if (",
            ") ",
            "; ",
            "0",
            "export ",
            "let ",
        ];
        let mut v = Vec::with_capacity(n + 16);
        while v.len() < n {
            v.extend_from_slice(WORDS[self.below(16) as usize].as_bytes());
            if self.below(7) == 0 {
                v.extend_from_slice(format!("x{:x}", self.below(4096)).as_bytes());
            }
        }
        v.truncate(n);
        v
    }
}

/// A web-build-like tree: nested folders, text and binary files, an
/// executable, an empty file, an empty folder and an inside symlink.
/// Returns the total file bytes.
pub fn gen_tree(dir: &Path, files: usize, total: usize, seed: u64) -> u64 {
    let mut rng = Rng::new(seed);
    fs::create_dir_all(dir.join("assets/js/chunks")).unwrap();
    fs::create_dir_all(dir.join("assets/img")).unwrap();
    fs::create_dir_all(dir.join("empty")).unwrap();
    let per = total / files.max(1);
    let mut bytes = 0u64;
    for i in 0..files {
        let (path, data) = if i % 5 == 4 {
            (format!("assets/img/i{i:04}.png"), rng.bytes(per))
        } else if i % 2 == 0 {
            (format!("assets/js/chunks/c{i:04}.js"), rng.text(per))
        } else {
            (format!("assets/js/m{i:04}.css"), rng.text(per))
        };
        fs::write(dir.join(&path), &data).unwrap();
        bytes += data.len() as u64;
    }
    fs::write(
        dir.join("index.html"),
        b"<!doctype html><script src=assets/js/app.js></script>",
    )
    .unwrap();
    fs::write(dir.join("start.sh"), b"#!/bin/sh\nexec node server.js\n").unwrap();
    fs::set_permissions(dir.join("start.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(dir.join("empty.txt"), b"").unwrap();
    std::os::unix::fs::symlink("index.html", dir.join("latest.html")).unwrap();
    bytes + 53 + 30
}

/// Copies a tree with new inodes and new mtimes (nothing preserved but
/// content, the executable bit and symlink targets).
pub fn copy_tree(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    let mut items: Vec<PathBuf> = fs::read_dir(src).unwrap().map(|e| e.unwrap().path()).collect();
    items.sort();
    for p in items {
        let to = dst.join(p.file_name().unwrap());
        let meta = fs::symlink_metadata(&p).unwrap();
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&p).unwrap(), &to).unwrap();
        } else if meta.is_dir() {
            copy_tree(&p, &to);
        } else {
            fs::write(&to, fs::read(&p).unwrap()).unwrap();
            let exec = meta.permissions().mode() & 0o111 != 0;
            // Different but equivalent modes: normalisation must erase them.
            fs::set_permissions(&to, fs::Permissions::from_mode(if exec { 0o700 } else { 0o600 })).unwrap();
        }
    }
}

/// Bytes this thread has read through read(2) and friends.
pub fn rchar() -> u64 {
    let s = fs::read_to_string("/proc/thread-self/io").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("rchar:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Every path under `dir` (not following symlinks), sorted.
pub fn list(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Waits out the filesystem's timestamp tick (a jiffy, at most 10 ms on
/// Linux), so files written so far are strictly older than any stat cache
/// written next — otherwise git's racy rule (rightly) hashes them again and
/// a test of reuse would measure the race instead.
pub fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(25));
}
