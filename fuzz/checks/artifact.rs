//! Properties of the `artifact_unpack` and `release_writer` fuzz targets,
//! shared with `crates/rollway-artifact/tests/fuzz_regressions.rs`.
//!
//! Both work in a fresh temporary sandbox: `archive.tar.zst`, a canary
//! directory `outside/` holding one file, and `work/`, the parent of the
//! release directory. Whatever the input, afterwards nothing exists in the
//! sandbox but those, the canary is unchanged, and anything written is
//! inside the release directory — which exists only when the input was
//! accepted (a refused input leaves nothing). An accepted release holds
//! read-only files and directories, and every symlink in it resolves
//! inside it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Component, Path, PathBuf};

use rollway_artifact::manifest::{EntryKind, Manifest, ManifestEntry};
use rollway_artifact::release::{ReleaseWriter, SourceDir, WrittenFile};
use rollway_artifact::{remove_release, unpack};
use rollway_model::Sha256Digest;

const CANARY: &[u8] = b"must stay as it is";

/// A fresh temporary directory laid out as the module docs say.
struct Sandbox {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    dest: PathBuf,
}

impl Sandbox {
    fn new() -> Self {
        let tmp = tempfile::tempdir().expect("temporary directory");
        let root = tmp.path().canonicalize().expect("canonical temporary directory");
        fs::create_dir(root.join("outside")).expect("outside/");
        fs::write(root.join("outside/keep"), CANARY).expect("canary");
        fs::create_dir(root.join("work")).expect("work/");
        let dest = root.join("work/release");
        Self { _tmp: tmp, root, dest }
    }

    /// Checks what the sandbox holds; `accepted` says whether the release
    /// directory may exist.
    fn check(&self, accepted: bool) {
        let mut found = Vec::new();
        walk(&self.root, &mut found);
        for p in &found {
            let fixed = [
                self.root.join("archive.tar.zst"),
                self.root.join("outside"),
                self.root.join("outside/keep"),
                self.root.join("work"),
            ];
            assert!(
                fixed.contains(p) || p.starts_with(&self.dest),
                "written outside the release: {}",
                p.display()
            );
        }
        assert_eq!(
            fs::read(self.root.join("outside/keep")).ok().as_deref(),
            Some(CANARY),
            "the canary changed"
        );
        if !accepted {
            assert!(
                fs::symlink_metadata(&self.dest).is_err(),
                "a refused input left the release directory"
            );
            let left = fs::read_dir(self.root.join("work")).map(Iterator::count).unwrap_or(0);
            assert_eq!(left, 0, "a refused input left something in work/");
            return;
        }
        for p in found.iter().filter(|p| p.starts_with(&self.dest)) {
            let meta = fs::symlink_metadata(p).expect("stat");
            let mode = meta.permissions().mode() & 0o7777;
            if meta.is_dir() {
                assert_eq!(mode, 0o555, "directory {} is writable", p.display());
            } else if meta.is_file() {
                assert!(mode == 0o444 || mode == 0o555, "file {} has mode {mode:o}", p.display());
            } else if meta.file_type().is_symlink() {
                let target = fs::read_link(p).expect("readlink");
                assert!(
                    resolves_inside(&self.dest, p, &target),
                    "symlink {} -> {} leaves the release",
                    p.display(),
                    target.display()
                );
            } else {
                panic!("{} is neither a file, a directory nor a symlink", p.display());
            }
        }
    }

    /// Removes an accepted release (its directories are read-only).
    fn clean(&self) {
        if fs::symlink_metadata(&self.dest).is_ok() {
            remove_release(&self.dest).expect("remove the release");
        }
    }
}

/// Every path under `dir`, never following a symlink.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        out.push(p.clone());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&p, out);
        }
    }
}

/// Whether `target`, read from symlink `link` inside `root`, stays inside
/// `root`, following the symlinks it meets inside the tree (at most 40).
fn resolves_inside(root: &Path, link: &Path, target: &Path) -> bool {
    fn go(root: &Path, base: &Path, target: &Path, hops: usize) -> bool {
        if hops > 40 || target.is_absolute() {
            return false;
        }
        let mut at = base.to_path_buf();
        let comps: Vec<Component> = target.components().collect();
        for (i, c) in comps.iter().enumerate() {
            match c {
                Component::CurDir => {}
                Component::ParentDir => {
                    if at == root {
                        return false;
                    }
                    at.pop();
                }
                Component::Normal(n) => {
                    at.push(n);
                    if let Ok(t) = fs::read_link(&at) {
                        at.pop();
                        let rest: PathBuf = comps[i + 1..].iter().collect();
                        let mut next = at.clone();
                        if !go(root, &next, &t, hops + 1) {
                            return false;
                        }
                        // Where the link leads, then the rest of the path.
                        next = resolve_lexically(&next, &t);
                        return go(root, &next, &rest, hops + 1);
                    }
                }
                Component::RootDir | Component::Prefix(_) => return false,
            }
        }
        at.starts_with(root)
    }
    let base = link.parent().unwrap_or(root);
    go(root, base, target, 0)
}

fn resolve_lexically(base: &Path, target: &Path) -> PathBuf {
    let mut at = base.to_path_buf();
    for c in target.components() {
        match c {
            Component::ParentDir => {
                at.pop();
            }
            Component::Normal(n) => at.push(n),
            _ => {}
        }
    }
    at
}

/// `artifact_unpack`: the input is an archive — with an even first byte the
/// rest is a tar stream that the harness compresses (so mutations reach the
/// tar and manifest rules instead of breaking the zstd frame), with an odd
/// one the rest is the `.tar.zst` file itself. It is unpacked with its own
/// digest as the record, as the host agent would.
pub fn check_unpack(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let bytes = if mode % 2 == 0 {
        zstd::stream::encode_all(body, 1).expect("zstd compresses")
    } else {
        body.to_vec()
    };
    let sandbox = Sandbox::new();
    let archive = sandbox.root.join("archive.tar.zst");
    fs::write(&archive, &bytes).expect("write the archive");
    let result = unpack(&archive, &sandbox.dest, &Sha256Digest::of(&bytes));
    match &result {
        Ok(release) => {
            assert_eq!(release.dir, sandbox.dest);
            let mut found = Vec::new();
            walk(&sandbox.dest, &mut found);
            assert_eq!(
                found.len(),
                release.manifest.entries.len(),
                "the tree differs from its manifest"
            );
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    sandbox.check(result.is_ok());
    sandbox.clean();
}

/// One step of a `release_writer` input.
enum Op {
    Dir(String),
    File(String, bool, Vec<u8>),
    Begin(String, bool),
    Write(Vec<u8>),
    End,
    Symlink(String, String),
    Hardlink(String, String),
}

/// Reads steps: an opcode byte, then length-prefixed strings and bytes.
fn ops(mut data: &[u8]) -> Vec<Op> {
    fn bytes<'a>(data: &mut &'a [u8]) -> &'a [u8] {
        let Some((&n, rest)) = data.split_first() else {
            return &[];
        };
        let (b, rest) = rest.split_at(usize::from(n % 64).min(rest.len()));
        *data = rest;
        b
    }
    fn string(data: &mut &[u8]) -> String {
        String::from_utf8_lossy(bytes(data)).into_owned()
    }
    let mut out = Vec::new();
    while let Some((&op, rest)) = data.split_first() {
        data = rest;
        out.push(match op % 7 {
            0 => Op::Dir(string(&mut data)),
            1 => Op::File(string(&mut data), op & 0x80 != 0, bytes(&mut data).to_vec()),
            2 => Op::Begin(string(&mut data), op & 0x80 != 0),
            3 => Op::Write(bytes(&mut data).to_vec()),
            4 => Op::End,
            5 => Op::Symlink(string(&mut data), string(&mut data)),
            _ => Op::Hardlink(string(&mut data), string(&mut data)),
        });
    }
    out
}

/// `release_writer`: arbitrary steps on a [`ReleaseWriter`] — directories,
/// files whole or pushed, symlinks, hard links to files written before —
/// then `finish` with the manifest of what was accepted (an odd last byte
/// abandons the writer instead).
pub fn check_release_writer(data: &[u8]) {
    let abandon = data.last().is_some_and(|b| b % 2 == 1);
    let sandbox = Sandbox::new();
    let Ok(mut w) = ReleaseWriter::create(&sandbox.dest) else {
        panic!("a fresh release directory cannot be created");
    };
    // What the writer accepted, as the manifest will list it.
    let mut accepted: BTreeMap<String, EntryKind> = BTreeMap::new();
    let mut pending: Option<String> = None;
    let file_kind = |f: &WrittenFile| EntryKind::File {
        size: f.size,
        sha256: f.sha256.clone(),
        executable: f.executable,
    };
    for op in ops(data) {
        match op {
            Op::Dir(p) => {
                if w.add_dir(&p).is_ok() {
                    accepted.insert(p, EntryKind::Dir);
                }
            }
            Op::File(p, x, body) => {
                if let Ok(f) = w.add_file(&p, if x { 0o755 } else { 0o644 }, &body[..]) {
                    accepted.insert(p, file_kind(&f));
                }
            }
            Op::Begin(p, x) => {
                if w.file_begin(&p, if x { 0o755 } else { 0o644 }).is_ok() {
                    pending = Some(p);
                }
            }
            Op::Write(body) => {
                let _ = w.file_write(&body);
            }
            Op::End => {
                if let (Ok(f), Some(p)) = (w.file_end(), pending.take()) {
                    accepted.insert(p, file_kind(&f));
                }
            }
            Op::Symlink(p, t) => {
                if w.add_symlink(&p, &t).is_ok() {
                    accepted.insert(p, EntryKind::Symlink { target: t });
                }
            }
            Op::Hardlink(p, from) => {
                // As unpack does: only a file this writer wrote, by its digest.
                let Some(known) = w.file(&from).cloned() else {
                    continue;
                };
                let Ok(source) = SourceDir::open(w.dir()) else {
                    continue;
                };
                if w.add_hardlink_known_at(&p, &source, &from, &known).is_ok() {
                    accepted.insert(p, file_kind(&known));
                }
            }
        }
    }
    if abandon {
        w.abandon().expect("abandon removes the release");
        sandbox.check(false);
        return;
    }
    // Parents made for deeper entries are directories of the tree too.
    let parents: Vec<String> = accepted
        .keys()
        .flat_map(|p| {
            let mut v = Vec::new();
            let mut at = p.as_str();
            while let Some(i) = at.rfind('/') {
                at = &at[..i];
                v.push(at.to_owned());
            }
            v
        })
        .collect();
    for p in parents {
        accepted.entry(p).or_insert(EntryKind::Dir);
    }
    let manifest = Manifest::new(
        accepted
            .into_iter()
            .map(|(path, kind)| ManifestEntry { path, kind })
            .collect(),
    );
    let finished = w.finish(&manifest);
    sandbox.check(finished.is_ok());
    sandbox.clean();
}
