//! Packing: determinism across copies and worker counts, normalised
//! entries, exclusions, refusals (symlinks, secrets, special files), the
//! stat cache and archive reuse, progress, alias results, and verify.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rollway_artifact::{
    AliasSpec, EntryKind, Expected, MANIFEST_NAME, PackOptions, PackPhase, Secrets, pack, pack_with_progress, verify,
};
use support::{copy_tree, gen_tree, rchar};

fn options(out: &Path, cache: Option<&Path>) -> PackOptions {
    let mut o = PackOptions::new(out);
    o.cache_dir = cache.map(Path::to_path_buf);
    o.sync = false;
    o
}

fn archive_names(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "index.json")
        .collect();
    v.sort();
    v
}

#[test]
fn a_copy_elsewhere_packs_identically_and_one_byte_changes_both_digests() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a");
    let b = t.path().join("elsewhere/b");
    gen_tree(&a, 40, 400_000, 1);
    copy_tree(&a, &b);
    let ra = pack(&a, &options(&t.path().join("out-a"), Some(&t.path().join("cache-a")))).unwrap();
    let rb = pack(&b, &options(&t.path().join("out-b"), Some(&t.path().join("cache-b")))).unwrap();
    assert_eq!(ra.sha256, rb.sha256);
    assert_eq!(ra.content_digest, rb.content_digest);
    assert_eq!(fs::read(&ra.archive_path).unwrap(), fs::read(&rb.archive_path).unwrap());
    assert_eq!(
        ra.archive_path.file_name().unwrap().to_str().unwrap(),
        format!("{}.tar.zst", ra.sha256)
    );
    assert_eq!(ra.size_bytes, fs::metadata(&ra.archive_path).unwrap().len());
    assert!(ra.size_bytes > 0);

    let victim = b.join("assets/js/m0001.css");
    let mut bytes = fs::read(&victim).unwrap();
    bytes[100] ^= 0x01;
    fs::write(&victim, bytes).unwrap();
    let rc = pack(&b, &options(&t.path().join("out-b"), Some(&t.path().join("cache-b")))).unwrap();
    assert!(!rc.reused);
    assert_ne!(rc.sha256, ra.sha256);
    assert_ne!(rc.content_digest, ra.content_digest);
    // Both archives stay, each under its own content address.
    assert_eq!(archive_names(&t.path().join("out-b")).len(), 2);
}

#[test]
fn archive_bytes_do_not_depend_on_the_worker_count() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    // Several zstd jobs' worth (2 MiB each), so workers really split it.
    gen_tree(&src, 24, 7_000_000, 2);
    let mut digests = Vec::new();
    for workers in [1, 2, 4] {
        let mut o = options(&t.path().join(format!("out-{workers}")), None);
        o.workers = workers;
        o.reuse = false;
        digests.push(pack(&src, &o).unwrap().sha256);
    }
    assert_eq!(digests[0], digests[1]);
    assert_eq!(digests[0], digests[2]);
}

#[test]
fn entries_are_sorted_normalised_and_end_with_the_manifest() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    gen_tree(&src, 6, 30_000, 3);
    fs::create_dir_all(src.join("a.b")).unwrap();
    fs::write(src.join("a.b/x"), b"x").unwrap();
    fs::set_permissions(src.join("index.html"), fs::Permissions::from_mode(0o600)).unwrap();
    let r = pack(&src, &options(&t.path().join("out"), None)).unwrap();

    let file = fs::File::open(&r.archive_path).unwrap();
    let mut ar = tar::Archive::new(zstd::stream::read::Decoder::new(file).unwrap());
    let mut names = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0), "{name}");
        assert_eq!(h.username_bytes(), Some(&b""[..]), "{name}");
        assert_eq!(h.groupname_bytes(), Some(&b""[..]), "{name}");
        assert_eq!(h.mtime().unwrap(), rollway_artifact::tarfmt::NORMALISED_MTIME, "{name}");
        let mode = h.mode().unwrap();
        let expected_mode = match name.as_str() {
            "start.sh" => 0o755,
            "latest.html" => 0o777,
            n if n.ends_with('/') => 0o755,
            _ => 0o644,
        };
        assert_eq!(mode, expected_mode, "{name}");
        if name == MANIFEST_NAME {
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            assert_eq!(bytes, r.manifest.canonical_bytes());
        }
        names.push(name.trim_end_matches('/').to_owned());
    }
    assert_eq!(names.last().unwrap(), MANIFEST_NAME);
    let body = &names[..names.len() - 1];
    let mut sorted = body.to_vec();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(body, sorted.as_slice());
    // Byte order, not per-directory order: "a.b" sorts before "a.b/x" and
    // "assets" ('.' < '/' < 's').
    assert!(body.contains(&"empty".to_owned()));
    assert_eq!(body.iter().filter(|n| n.starts_with("a.b")).count(), 2);
    let manifest_paths: Vec<&str> = r.manifest.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(manifest_paths, body.iter().map(String::as_str).collect::<Vec<_>>());
    let link = r.manifest.entries.iter().find(|e| e.path == "latest.html").unwrap();
    assert_eq!(
        link.kind,
        EntryKind::Symlink {
            target: "index.html".into()
        }
    );
    // Contents: top-level folders with file counts and bytes.
    let assets = r.contents.iter().find(|c| c.path == "assets").unwrap();
    assert_eq!(assets.files, 6);
    assert_eq!(r.contents.iter().map(|c| c.files).sum::<u64>(), r.file_count);
}

#[test]
fn system_tar_and_zstd_read_the_archive() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    gen_tree(&src, 8, 50_000, 4);
    let r = pack(&src, &options(&t.path().join("out"), None)).unwrap();
    let x = t.path().join("x");
    fs::create_dir(&x).unwrap();
    let status = std::process::Command::new("tar")
        .arg("--use-compress-program=zstd -d")
        .arg("-xf")
        .arg(&r.archive_path)
        .arg("-C")
        .arg(&x)
        .status()
        .expect("tar and zstd must be installed (Debian packages tar, zstd)");
    assert!(status.success());
    for e in &r.manifest.entries {
        let got = x.join(&e.path);
        match &e.kind {
            EntryKind::File { .. } => assert_eq!(fs::read(&got).unwrap(), fs::read(src.join(&e.path)).unwrap()),
            EntryKind::Dir => assert!(got.is_dir()),
            EntryKind::Symlink { target } => assert_eq!(fs::read_link(&got).unwrap(), PathBuf::from(target)),
        }
    }
    assert!(x.join(MANIFEST_NAME).is_file());
}

#[test]
fn excluded_paths_and_the_output_directory_are_left_out() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("app");
    gen_tree(&src, 4, 10_000, 5);
    fs::create_dir_all(src.join(".rollway/artifacts")).unwrap();
    fs::write(src.join(".rollway/state.db"), b"state").unwrap();
    let mut o = options(&src.join(".rollway/artifacts"), Some(&src.join(".rollway/cache")));
    o.exclude = vec![PathBuf::from(".rollway")];
    let r = pack(&src, &o).unwrap();
    assert!(
        r.manifest.entries.iter().all(|e| !e.path.starts_with(".rollway")),
        "{:?}",
        r.manifest
    );
    // Output inside the tree but not excluded by the caller: still left out.
    let o2 = options(&src.join("dist-out"), None);
    let r2 = pack(&src, &o2).unwrap();
    assert!(r2.manifest.entries.iter().all(|e| !e.path.starts_with("dist-out")));
    assert!(r2.manifest.entries.iter().any(|e| e.path.starts_with(".rollway")));
}

fn check_refused(setup: impl FnOnce(&Path), opts: impl FnOnce(&Path) -> PackOptions, expected: &[&str]) -> String {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    gen_tree(&src, 3, 3_000, 6);
    setup(&src);
    let out = t.path().join("out");
    let err = pack(&src, &opts(&out)).expect_err("must be refused");
    let msg = err.to_string();
    for fragment in expected {
        assert!(msg.contains(fragment), "{msg:?} lacks {fragment:?}");
    }
    // A refused pack leaves no archive and no temporary file.
    let left: Vec<_> = fs::read_dir(&out)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.iter().all(|n| n == "index.json"), "{left:?}");
    msg
}

#[test]
fn symlinks_resolving_outside_are_refused() {
    use std::os::unix::fs::symlink;
    let plain = |out: &Path| options(out, None);
    check_refused(
        |s| symlink("../outside", s.join("up")).unwrap(),
        plain,
        &["up", "outside the tree", "../outside"],
    );
    check_refused(
        |s| symlink("/etc/passwd", s.join("abs")).unwrap(),
        plain,
        &["abs", "absolute"],
    );
    check_refused(
        |s| symlink("../../../x", s.join("assets/js/deep")).unwrap(),
        plain,
        &["assets/js/deep", "outside the tree"],
    );
    check_refused(
        |s| {
            symlink(".", s.join("self")).unwrap();
            symlink("self/..", s.join("sneaky")).unwrap();
        },
        plain,
        &["sneaky", "outside the tree"],
    );
}

#[test]
fn a_file_holding_a_secret_is_refused_by_name_never_by_value() {
    const VALUE: &str = "sk-live-9f8e7d6c5b4a";
    let secrets = || Secrets::new([("STRIPE_KEY", VALUE), ("OTHER", "unrelated-value")]);
    let with_secrets = |out: &Path| {
        let mut o = options(out, None);
        o.secrets = secrets();
        o
    };
    let msg = check_refused(
        |s| fs::write(s.join("assets/config.js"), format!("window.KEY = '{VALUE}';")).unwrap(),
        with_secrets,
        &["assets/config.js", "STRIPE_KEY"],
    );
    assert!(!msg.contains(VALUE), "{msg}");
    // Split across the 1 MiB read chunk boundary.
    let msg = check_refused(
        |s| {
            let mut big = vec![b'a'; (1 << 20) - 7];
            big.extend_from_slice(VALUE.as_bytes());
            big.extend_from_slice(&[b'b'; 100]);
            fs::write(s.join("big.bin"), big).unwrap();
        },
        with_secrets,
        &["big.bin", "STRIPE_KEY"],
    );
    assert!(!msg.contains(VALUE));
    // Without the secret in any file, the same options pack fine.
    let t = tempfile::tempdir().unwrap();
    gen_tree(&t.path().join("src"), 3, 3_000, 7);
    pack(&t.path().join("src"), &with_secrets(&t.path().join("out"))).unwrap();
}

#[test]
fn a_new_secret_is_checked_even_when_the_archive_could_be_reused() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    gen_tree(&src, 4, 20_000, 14);
    fs::write(src.join("env.js"), "window.TOKEN = 'tok-0123456789abcdef';").unwrap();
    support::settle();
    let mut o = options(&t.path().join("out"), Some(&t.path().join("cache")));
    let first = pack(&src, &o).unwrap();
    assert!(pack(&src, &o).unwrap().reused);
    // The same tree, now with a secret it contains: scanned, refused.
    o.secrets = Secrets::new([("API_TOKEN", "tok-0123456789abcdef")]);
    let err = pack(&src, &o).unwrap_err().to_string();
    assert!(err.contains("env.js") && err.contains("API_TOKEN"), "{err}");
    // A secret it does not contain: scanned once, then reused again.
    o.secrets = Secrets::new([("API_TOKEN", "tok-something-else")]);
    let scanned = pack(&src, &o).unwrap();
    assert!(!scanned.reused);
    assert_eq!(scanned.sha256, first.sha256);
    assert!(pack(&src, &o).unwrap().reused);
}

#[test]
fn special_files_and_the_reserved_name_are_refused() {
    let plain = |out: &Path| options(out, None);
    check_refused(
        |s| {
            rustix::fs::mknodat(
                rustix::fs::CWD,
                s.join("pipe"),
                rustix::fs::FileType::Fifo,
                rustix::fs::Mode::from_raw_mode(0o644),
                0,
            )
            .unwrap()
        },
        plain,
        &["pipe", "a FIFO"],
    );
    check_refused(
        |s| fs::write(s.join(MANIFEST_NAME), b"{}").unwrap(),
        plain,
        &[MANIFEST_NAME, "reserved"],
    );
}

#[test]
fn an_unchanged_tree_repacks_reading_under_one_percent_and_reuses_the_archive() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let total = gen_tree(&src, 120, 24_000_000, 8);
    let o = options(&t.path().join("out"), Some(&t.path().join("cache")));
    let first = pack(&src, &o).unwrap();
    assert!(!first.reused);
    assert_eq!(first.stats.bytes_read, total);

    let before = rchar();
    let again = pack(&src, &o).unwrap();
    let read = rchar() - before;
    assert!(again.reused);
    assert_eq!(again.stats.bytes_read, 0);
    assert_eq!(again.stats.cache_hits, first.file_count);
    assert!(read * 100 < total, "re-pack read {read} bytes of a {total}-byte tree");
    assert_eq!(again.sha256, first.sha256);
    assert_eq!(again.content_digest, first.content_digest);
    assert_eq!(again.size_bytes, first.size_bytes);
    assert_eq!(again.archive_path, first.archive_path);
    assert_eq!(again.contents, first.contents);
    assert_eq!(again.manifest, first.manifest);
    assert_eq!(archive_names(&t.path().join("out")).len(), 1);

    // Touching a file (same bytes, new mtime) re-hashes just it and still
    // reuses the archive.
    let touched = src.join("assets/js/m0003.css");
    fs::File::options()
        .write(true)
        .open(&touched)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(60))
        .unwrap();
    let third = pack(&src, &o).unwrap();
    assert!(third.reused);
    assert_eq!(third.stats.files_read, 1);
    assert_eq!(third.stats.bytes_read, fs::metadata(&touched).unwrap().len());
}

#[test]
fn a_same_size_rewrite_with_the_old_mtime_is_noticed() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    gen_tree(&src, 10, 100_000, 9);
    let o = options(&t.path().join("out"), Some(&t.path().join("cache")));
    let first = pack(&src, &o).unwrap();
    let victim = src.join("assets/js/chunks/c0002.js");
    let old_mtime = fs::metadata(&victim).unwrap().modified().unwrap();
    let mut bytes = fs::read(&victim).unwrap();
    bytes[0] ^= 0x20;
    fs::write(&victim, &bytes).unwrap();
    fs::File::options()
        .write(true)
        .open(&victim)
        .unwrap()
        .set_modified(old_mtime)
        .unwrap();
    assert_eq!(fs::metadata(&victim).unwrap().modified().unwrap(), old_mtime);
    let second = pack(&src, &o).unwrap();
    assert!(!second.reused);
    assert_ne!(second.content_digest, first.content_digest);
    let entry = second
        .manifest
        .entries
        .iter()
        .find(|e| e.path == "assets/js/chunks/c0002.js")
        .unwrap();
    let EntryKind::File { sha256, .. } = &entry.kind else {
        panic!("not a file")
    };
    assert_eq!(*sha256, rollway_model::Sha256Digest::of(&bytes));
}

#[test]
fn a_racy_entry_is_hashed_again_on_every_pack() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    gen_tree(&src, 10, 100_000, 10);
    // An mtime not older than the cache's own write time: the file might
    // change again within that tick unseen, so the cache must not vouch.
    let racy = src.join("index.html");
    fs::File::options()
        .write(true)
        .open(&racy)
        .unwrap()
        .set_modified(SystemTime::now() + Duration::from_secs(3600))
        .unwrap();
    let o = options(&t.path().join("out"), Some(&t.path().join("cache")));
    pack(&src, &o).unwrap();
    for _ in 0..2 {
        let r = pack(&src, &o).unwrap();
        assert!(r.reused);
        assert_eq!(r.stats.files_read, 1);
        assert_eq!(r.stats.bytes_read, fs::metadata(&racy).unwrap().len());
    }
}

#[test]
fn progress_reports_files_and_bytes() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let total = gen_tree(&src, 12, 3_000_000, 11);
    let mut seen = Vec::new();
    let r = pack_with_progress(&src, &options(&t.path().join("out"), None), &mut |p| seen.push(*p)).unwrap();
    let last = seen.last().unwrap();
    assert_eq!(last.phase, PackPhase::Done);
    assert_eq!(last.files_total, r.file_count);
    assert_eq!(last.bytes_total, total);
    let packing: Vec<_> = seen.iter().filter(|p| p.phase == PackPhase::Packing).collect();
    assert!(packing.len() >= 2, "{seen:?}");
    assert!(packing.windows(2).all(|w| w[0].bytes_done <= w[1].bytes_done));
    assert_eq!(packing.last().unwrap().bytes_done, total);
    assert_eq!(packing.last().unwrap().files_done, r.file_count);
}

#[test]
fn unresolved_aliases_are_listed_and_survive_reuse() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    gen_tree(&src, 3, 3_000, 12);
    fs::write(
        src.join("assets/app.js"),
        "// import x from '@/commented'\nimport a from '@/lib/a';\nconst b = require(\"@scope/pkg\");\nconst c = require('@/c');\n",
    )
    .unwrap();
    fs::write(src.join("assets/clean.mjs"), "import a from './a.js';\n").unwrap();
    fs::write(src.join("assets/data.json"), "{\"x\": \"@/not-js\"}").unwrap();
    support::settle();
    let mut o = options(&t.path().join("out"), Some(&t.path().join("cache")));
    o.aliases = AliasSpec::from_list(["@/"]);
    let r = pack(&src, &o).unwrap();
    assert!(!r.aliases_resolved);
    assert_eq!(
        r.unresolved_alias_lines(),
        [
            "assets/app.js:2: unresolved alias '@/lib/a'",
            "assets/app.js:4: unresolved alias '@/c'"
        ]
    );
    let again = pack(&src, &o).unwrap();
    assert!(again.reused);
    assert_eq!(again.unresolved_aliases, r.unresolved_aliases);
    // Another alias set: the stored answer does not apply, so it is scanned.
    o.aliases = AliasSpec::from_list(["~/"]);
    let other = pack(&src, &o).unwrap();
    assert!(!other.reused);
    assert!(other.aliases_resolved);
    // No aliases configured: resolved.
    let none = pack(&src, &options(&t.path().join("out2"), None)).unwrap();
    assert!(none.aliases_resolved && none.unresolved_aliases.is_empty());
}

#[test]
fn a_single_file_output_packs_as_one_entry() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("app.bin");
    fs::write(&f, b"binary").unwrap();
    let r = pack(&f, &options(&t.path().join("out"), None)).unwrap();
    assert_eq!(r.manifest.entries.len(), 1);
    assert_eq!(r.manifest.entries[0].path, "app.bin");
    verify(&r.archive_path, Some(&Expected::sha256(&r.sha256))).unwrap();
}

#[test]
fn verify_accepts_a_good_archive_and_names_one_flipped_byte() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    gen_tree(&src, 20, 600_000, 13);
    let r = pack(&src, &options(&t.path().join("out"), None)).unwrap();
    let expected = Expected {
        sha256: Some(r.sha256.clone()),
        size_bytes: Some(r.size_bytes),
        content_digest: Some(r.content_digest.clone()),
    };
    let report = verify(&r.archive_path, Some(&expected)).unwrap();
    assert_eq!(report.manifest, r.manifest);
    assert_eq!(report.file_count, r.file_count);
    verify(&r.archive_path, None).unwrap();

    let original = fs::read(&r.archive_path).unwrap();
    let bad = t.path().join("bad.tar.zst");
    for at in [original.len() / 3, original.len() / 2, original.len() - 2] {
        let mut bytes = original.clone();
        bytes[at] ^= 0x04;
        fs::write(&bad, &bytes).unwrap();
        for exp in [None, Some(&expected)] {
            let err = verify(&bad, exp).expect_err("a flipped byte must fail");
            let msg = err.to_string();
            assert!(msg.contains(&bad.display().to_string()), "{msg}");
            if exp.is_some() {
                // Either the first entry that reads wrong, or the digest.
                assert!(err.entry.is_some() || msg.contains("archive SHA-256"), "{msg}");
            }
        }
    }
    // No record, but the file is named by its content address.
    let mut bytes = original.clone();
    let at = original.len() / 2;
    bytes[at] ^= 0x01;
    let named = t.path().join("named");
    fs::create_dir(&named).unwrap();
    let named = named.join(r.archive_path.file_name().unwrap());
    fs::write(&named, &bytes).unwrap();
    let msg = verify(&named, None).unwrap_err().to_string();
    assert!(msg.contains(&named.display().to_string()), "{msg}");
    // A record for another archive.
    let other = Expected::sha256(&rollway_model::Sha256Digest::of(b"other"));
    let msg = verify(&r.archive_path, Some(&other)).unwrap_err().to_string();
    assert!(
        msg.contains("archive SHA-256") && msg.contains(r.sha256.as_str()),
        "{msg}"
    );
}
