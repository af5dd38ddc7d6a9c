//! Unpacking: a real archive lands read-only and intact, hard-linking what
//! a previous release already has; hostile archives (each with a manifest
//! that agrees with its entries, so the safety rule is what refuses them)
//! are refused naming the entry, write nothing outside the fresh directory,
//! and leave nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rollway_artifact::manifest::{EntryKind, Manifest, ManifestEntry};
use rollway_artifact::{MANIFEST_NAME, PackOptions, pack, remove_release, unpack};
use rollway_model::Sha256Digest;
use support::{gen_tree, list};

// ------------------------------------------------------------ hostile tars

/// A raw ustar header: any name, type, size, mode and link, as an attacker
/// would write it.
fn header(name: &[u8], flag: u8, size: u64, mode: u32, link: &[u8]) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name);
    let octal = |h: &mut [u8; 512], at: usize, len: usize, v: u64| {
        let s = format!("{v:0w$o}\0", w = len - 1);
        h[at..at + len].copy_from_slice(s.as_bytes());
    };
    octal(&mut h, 100, 8, u64::from(mode));
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, size);
    octal(&mut h, 136, 12, 315_532_800);
    h[156] = flag;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// A tar stream under construction and the manifest that describes it.
#[derive(Default)]
struct Hostile {
    tar: Vec<u8>,
    manifest: Vec<ManifestEntry>,
}

impl Hostile {
    fn raw(&mut self, h: [u8; 512], data: &[u8]) -> &mut Self {
        self.tar.extend_from_slice(&h);
        self.tar.extend_from_slice(data);
        self.tar.resize(self.tar.len().div_ceil(512) * 512, 0);
        self
    }
    fn dir(&mut self, path: &str) -> &mut Self {
        self.raw(header(format!("{path}/").as_bytes(), b'5', 0, 0o755, b""), b"");
        self.listed(path, EntryKind::Dir)
    }
    fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.raw(header(path.as_bytes(), b'0', data.len() as u64, 0o644, b""), data);
        self.listed_file(path, data)
    }
    fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.raw(header(path.as_bytes(), b'2', 0, 0o777, target.as_bytes()), b"");
        self.listed(
            path,
            EntryKind::Symlink {
                target: target.to_owned(),
            },
        )
    }
    fn listed(&mut self, path: &str, kind: EntryKind) -> &mut Self {
        self.manifest.push(ManifestEntry {
            path: path.to_owned(),
            kind,
        });
        self
    }
    fn listed_file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.listed(
            path,
            EntryKind::File {
                size: data.len() as u64,
                sha256: Sha256Digest::of(data),
                executable: false,
            },
        )
    }
    /// Appends the manifest and the end blocks; compresses; returns the
    /// archive's digest.
    fn finish(&mut self, at: &Path) -> Sha256Digest {
        let m = Manifest::new(std::mem::take(&mut self.manifest)).canonical_bytes();
        self.raw(header(MANIFEST_NAME.as_bytes(), b'0', m.len() as u64, 0o644, b""), &m);
        self.tar.extend_from_slice(&[0u8; 1024]);
        let z = zstd::stream::encode_all(&self.tar[..], 3).unwrap();
        fs::write(at, &z).unwrap();
        Sha256Digest::of(&z)
    }
}

/// Builds a hostile archive inside a fresh temporary root (the builder
/// gets that root, to aim absolute paths into it), unpacks it through the
/// deploy path, and checks the refusal: the message names the archive and
/// has every expected fragment (the entry among them); the fresh directory
/// is gone; nothing new or newer than a marker exists anywhere under the
/// root; the paths the archive aimed at were never created.
fn check(case: &str, build: impl FnOnce(&Path, &mut Hostile) -> Option<Sha256Digest>, expected: &[&str]) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().canonicalize().unwrap();
    let work = root.join("work");
    fs::create_dir_all(work.join("releases")).unwrap();
    let archive = work.join("hostile.tar.zst");
    let mut h = Hostile::default();
    let record = build(&root, &mut h);
    let actual = h.finish(&archive);
    let expected_sha = record.unwrap_or(actual);

    let marker = root.join("marker");
    fs::write(&marker, b"").unwrap();
    let marker_time = fs::metadata(&marker).unwrap().modified().unwrap();
    let before: BTreeSet<PathBuf> = list(&root).into_iter().collect();
    std::thread::sleep(Duration::from_millis(20));

    let dest = work.join("releases/new");
    let err = unpack(&archive, &dest, &expected_sha).expect_err(case);
    let msg = err.to_string();
    assert!(msg.contains(&archive.display().to_string()), "{case}: {msg}");
    for fragment in expected {
        assert!(msg.contains(fragment), "{case}: {msg:?} lacks {fragment:?}");
    }
    assert!(!dest.exists(), "{case}: the release directory exists");
    assert_eq!(
        fs::read_dir(work.join("releases")).unwrap().count(),
        0,
        "{case}: leftovers"
    );
    let after: BTreeSet<PathBuf> = list(&root).into_iter().collect();
    assert_eq!(
        after.difference(&before).collect::<Vec<_>>(),
        Vec::<&PathBuf>::new(),
        "{case}: new paths"
    );
    for p in &after {
        let meta = fs::symlink_metadata(p).unwrap();
        if !meta.is_dir() {
            assert!(
                meta.modified().unwrap() <= marker_time,
                "{case}: {} was written",
                p.display()
            );
        }
    }
    for aimed in ["abs-pwned", "dotdot-pwned", "escaped", "pwned"] {
        assert!(
            fs::symlink_metadata(root.join(aimed)).is_err(),
            "{case}: {aimed} exists"
        );
        assert!(
            fs::symlink_metadata(work.join(aimed)).is_err(),
            "{case}: {aimed} exists"
        );
    }
}

#[test]
fn hostile_archives_are_refused_naming_the_entry_and_leave_nothing() {
    check(
        "absolute path",
        |root, h| {
            let p = format!("{}/abs-pwned", root.display());
            h.file("ok.txt", b"fine").file(&p, b"owned");
            None
        },
        &["abs-pwned", "absolute path"],
    );
    check(
        "'..' component",
        |_, h| {
            h.dir("a").file("a/../../dotdot-pwned", b"owned");
            None
        },
        &["a/../../dotdot-pwned", "'..' component"],
    );
    check(
        "symlink escaping",
        |_, h| {
            h.dir("d")
                .symlink("d/link", "../../../escaped")
                .file("z.txt", b"after the link");
            None
        },
        &["d/link", "outside the tree", "../../../escaped"],
    );
    check(
        "file written through a symlink",
        |_, h| {
            // A symlink that stays inside, then a file through it.
            h.dir("inside").symlink("esc", "inside").file("esc/pwned", b"owned");
            None
        },
        &["esc/pwned", "parent directory 'esc'"],
    );
    check(
        "symlink climbing out of the release",
        |_, h| {
            h.symlink("up", "../..").file("z.txt", b"after");
            None
        },
        &["'up'", "symlink target '../..'", "outside"],
    );
    check(
        "hard link escaping",
        |_, h| {
            h.file("a.txt", b"a")
                .raw(header(b"h", b'1', 0, 0o644, b"../../etc/hostname"), b"")
                .listed_file("h", b"a");
            None
        },
        &["'h'", "hard link target '../../etc/hostname'"],
    );
    check(
        "hard link to an absolute path",
        |_, h| {
            h.raw(header(b"h", b'1', 0, 0o644, b"/etc/hostname"), b"")
                .listed_file("h", b"");
            None
        },
        &["'h'", "hard link target '/etc/hostname'"],
    );
    check(
        "device",
        |_, h| {
            let mut d = header(b"null", b'3', 0, 0o644, b"");
            // Major 1, minor 3: /dev/null; the checksum is recomputed below.
            d[329..337].copy_from_slice(b"0000001\0");
            d[337..345].copy_from_slice(b"0000003\0");
            d[148..156].fill(b' ');
            let sum: u64 = d.iter().map(|&b| u64::from(b)).sum();
            d[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
            // A manifest cannot describe a device; it lists the path as empty.
            h.raw(d, b"").listed_file("null", b"");
            None
        },
        &["'null'", "device entries are not allowed"],
    );
    check(
        "FIFO",
        |_, h| {
            h.raw(header(b"fifo", b'6', 0, 0o644, b""), b"")
                .listed_file("fifo", b"");
            None
        },
        &["'fifo'", "FIFO entries are not allowed"],
    );
    check(
        "duplicate path",
        |_, h| {
            h.file("same.txt", b"first")
                .raw(header(b"same.txt", b'0', 5, 0o644, b""), b"later");
            None
        },
        &["'same.txt'", "duplicate path"],
    );
    check(
        "size disagreeing with the header (PAX size)",
        |_, h| {
            let record = b"10 size=4\n";
            h.raw(header(b"././@PaxHeader", b'x', record.len() as u64, 0o644, b""), record)
                .raw(header(b"sized.txt", b'0', 10, 0o644, b""), b"0123456789")
                .listed_file("sized.txt", b"0123456789");
            None
        },
        &["'sized.txt'", "size 4 in the PAX header disagrees with size 10"],
    );
    check(
        "size disagreeing with the data (truncated)",
        |_, h| {
            let mut body = b"only ten b".to_vec();
            body.resize(512, 0);
            h.tar
                .extend_from_slice(&header(b"short.txt", b'0', 100_000, 0o644, b""));
            h.tar.extend_from_slice(&body);
            // No manifest could be reached; finish() still appends one,
            // which the reader takes as more data of the same entry.
            None
        },
        &["'short.txt'"],
    );
    check(
        "size disagreeing with the manifest",
        |_, h| {
            h.raw(header(b"grown.txt", b'0', 12, 0o644, b""), b"twelve bytes")
                .listed_file("grown.txt", b"ten bytes!");
            None
        },
        &["'grown.txt'", "size 12 differs from 10 in the manifest"],
    );
    check(
        "file digest differing from the manifest",
        |_, h| {
            h.raw(header(b"app.js", b'0', 5, 0o644, b""), b"hello")
                .listed_file("app.js", b"HELLO");
            None
        },
        &["'app.js'", "differs from", "in the manifest"],
    );
    check(
        "archive digest differing from the record",
        |_, h| {
            h.dir("site").file("site/index.html", b"<h1>fine</h1>");
            Some(Sha256Digest::of(b"the record names another archive"))
        },
        &["archive SHA-256", "the record says"],
    );
}

// -------------------------------------------------------- real archives

fn packed(src: &Path, out: &Path) -> rollway_artifact::PackResult {
    let mut o = PackOptions::new(out);
    o.sync = false;
    pack(src, &o).unwrap()
}

#[test]
fn a_release_is_unpacked_intact_and_read_only() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    gen_tree(&src, 12, 2_500_000, 20);
    let r = packed(&src, &t.path().join("out"));
    fs::create_dir(t.path().join("releases")).unwrap();
    let dest = t.path().join("releases/r1");
    let u = unpack(&r.archive_path, &dest, &r.sha256).unwrap();
    assert_eq!(u.dir, dest);
    assert_eq!(u.content_digest, r.content_digest);
    assert_eq!(u.manifest, r.manifest);
    assert_eq!(u.files_written, r.file_count);
    assert!(!dest.join(MANIFEST_NAME).exists());
    for e in &r.manifest.entries {
        let p = dest.join(&e.path);
        let meta = fs::symlink_metadata(&p).unwrap();
        match &e.kind {
            EntryKind::File { executable, .. } => {
                assert_eq!(
                    fs::read(&p).unwrap(),
                    fs::read(src.join(&e.path)).unwrap(),
                    "{}",
                    e.path
                );
                assert_eq!(
                    meta.permissions().mode() & 0o7777,
                    if *executable { 0o555 } else { 0o444 },
                    "{}",
                    e.path
                );
            }
            EntryKind::Dir => assert_eq!(meta.permissions().mode() & 0o7777, 0o555, "{}", e.path),
            EntryKind::Symlink { target } => assert_eq!(fs::read_link(&p).unwrap(), PathBuf::from(target)),
        }
    }
    assert_eq!(fs::metadata(&dest).unwrap().permissions().mode() & 0o7777, 0o555);
    assert_eq!(
        fs::read_dir(t.path().join("releases")).unwrap().count(),
        1,
        "no leftovers"
    );

    // Never into an existing directory.
    let err = unpack(&r.archive_path, &dest, &r.sha256).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert!(dest.join("index.html").is_file(), "the existing release is untouched");

    remove_release(&dest).unwrap();
    assert!(!dest.exists());
}
