//! Writes the generated seeds of the fuzz corpora (the handwritten ones are
//! committed as they are): age files encrypted to the test identity, real
//! and hostile archives, agent conversations. Run from `fuzz/` with
//! `cargo +nightly run --example make-seeds`; it overwrites only `gen-*` files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../checks/age_import.rs"]
mod age_import;
#[allow(dead_code)]
#[path = "../checks/dotenv.rs"]
mod dotenv;

use std::fs;
use std::io::Write as _;
use std::path::Path;

use rollway_artifact::manifest::{EntryKind, Manifest, ManifestEntry};
use rollway_artifact::{MANIFEST_NAME, PackOptions, pack};
use rollway_engine::ManifestForm;
use rollway_engine::fuzzing::{DataWriter, Encoding, PROTOCOL, Request, send, version};
use rollway_model::Sha256Digest;

fn put(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("seeds").join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(format!("gen-{name}")), bytes).unwrap();
}

fn main() {
    config();
    age();
    archives();
    agent();
}

fn config() {
    put("config", "template.toml", rollway_config::template().as_bytes());
    for preset in rollway_config::PRESETS {
        let text = rollway_config::template_for(Some(preset)).unwrap();
        put("config", &format!("preset-{preset}.toml"), text.as_bytes());
    }
    // Every commented example of the template switched on.
    let on: String = rollway_config::template()
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(body) if body.starts_with('[') || body.contains(" = ") => format!("{body}\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    put("config", "template-all.toml", on.as_bytes());
}

fn age() {
    let recipient = age_import::identities()[0].recipient();
    for (name, text) in [
        ("simple", "A=1\nB=\"two words\"\n"),
        ("quoted", "export KEY='single'\nOTHER=\"multi\\nline\" # c\n"),
        ("empty", ""),
        ("broken", "1BAD=x\nA=\"never closed\n"),
    ] {
        let armored = rollway_secrets::encrypt_armored(text.as_bytes(), &[recipient.clone()]).unwrap();
        put("age_import", &format!("{name}.age"), armored.as_bytes());
    }
}

/// A raw ustar header, any field as an attacker would write it.
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

/// A tar stream with a manifest that agrees with its entries.
#[derive(Default)]
struct Tar {
    bytes: Vec<u8>,
    manifest: Vec<ManifestEntry>,
}

impl Tar {
    fn raw(&mut self, h: [u8; 512], data: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(&h);
        self.bytes.extend_from_slice(data);
        self.bytes.resize(self.bytes.len().div_ceil(512) * 512, 0);
        self
    }
    fn dir(&mut self, path: &str) -> &mut Self {
        self.raw(header(format!("{path}/").as_bytes(), b'5', 0, 0o755, b""), b"");
        self.listed(path, EntryKind::Dir)
    }
    fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.raw(header(path.as_bytes(), b'0', data.len() as u64, 0o644, b""), data);
        let kind = EntryKind::File {
            size: data.len() as u64,
            sha256: Sha256Digest::of(data),
            executable: false,
        };
        self.listed(path, kind)
    }
    fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.raw(header(path.as_bytes(), b'2', 0, 0o777, target.as_bytes()), b"");
        let kind = EntryKind::Symlink {
            target: target.to_owned(),
        };
        self.listed(path, kind)
    }
    fn hardlink(&mut self, path: &str, target: &str, data: &[u8]) -> &mut Self {
        self.raw(header(path.as_bytes(), b'1', 0, 0o644, target.as_bytes()), b"");
        let kind = EntryKind::File {
            size: data.len() as u64,
            sha256: Sha256Digest::of(data),
            executable: false,
        };
        self.listed(path, kind)
    }
    fn listed(&mut self, path: &str, kind: EntryKind) -> &mut Self {
        self.manifest.push(ManifestEntry {
            path: path.to_owned(),
            kind,
        });
        self
    }
    /// The tar with its manifest and end blocks, behind the mode byte 0
    /// (the target compresses it).
    fn finish(&mut self) -> Vec<u8> {
        let m = Manifest::new(std::mem::take(&mut self.manifest)).canonical_bytes();
        self.raw(header(MANIFEST_NAME.as_bytes(), b'0', m.len() as u64, 0o644, b""), &m);
        self.bytes.extend_from_slice(&[0u8; 1024]);
        let mut out = vec![0u8];
        out.extend_from_slice(&self.bytes);
        out
    }
}

fn archives() {
    // A real pack of a small tree: its .tar.zst (mode 1) and its tar (mode 0).
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("bin")).unwrap();
    fs::write(src.join("index.html"), "<h1>hello</h1>\n").unwrap();
    fs::write(src.join("bin/run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::os::unix::fs::symlink("bin/run.sh", src.join("run")).unwrap();
    let out = tmp.path().join("out");
    let packed = pack(&src, &PackOptions::new(&out)).unwrap();
    let zst = fs::read(&packed.archive_path).unwrap();
    let mut real = vec![1u8];
    real.extend_from_slice(&zst);
    put("artifact_unpack", "packed.tar.zst", &real);
    let mut plain = vec![0u8];
    plain.extend_from_slice(&zstd::stream::decode_all(&zst[..]).unwrap());
    put("artifact_unpack", "packed.tar", &plain);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "ok-tree",
            Tar::default()
                .dir("a")
                .file("a/f.txt", b"data")
                .symlink("l", "a/f.txt")
                .hardlink("h", "a/f.txt", b"data")
                .finish(),
        ),
        ("dotdot", Tar::default().dir("a").file("a/../../x", b"owned").finish()),
        (
            "absolute",
            Tar::default().file("/tmp/rollway-fuzz-absolute", b"owned").finish(),
        ),
        (
            "symlink-escape",
            Tar::default()
                .dir("d")
                .symlink("d/l", "../../outside")
                .file("d/l/keep", b"owned")
                .finish(),
        ),
        ("symlink-absolute", Tar::default().symlink("l", "/etc").finish()),
        (
            "hardlink-outside",
            Tar::default().hardlink("h", "../outside/keep", b"").finish(),
        ),
        ("duplicate", Tar::default().file("f", b"1").file("f", b"2").finish()),
        ("no-manifest", {
            let mut t = Tar::default();
            t.file("f", b"1");
            t.bytes.extend_from_slice(&[0u8; 1024]);
            let mut v = vec![0u8];
            v.extend_from_slice(&t.bytes);
            v
        }),
    ];
    for (name, bytes) in cases {
        put("artifact_unpack", &format!("{name}.tar"), &bytes);
    }
}

fn agent() {
    let frame = |reqs: &[serde_json::Value], data: &[&[u8]]| {
        let mut wire = Vec::new();
        for (i, r) in reqs.iter().enumerate() {
            send(&mut wire, r).unwrap();
            if let Some(body) = data.get(i) {
                let mut d = DataWriter::new(&mut wire);
                d.write_all(body).unwrap();
                d.finish().unwrap();
            }
        }
        wire
    };
    let hello = serde_json::to_value(Request::Hello {
        protocol: PROTOCOL,
        version: version(),
    })
    .unwrap();
    let manifest = zstd::stream::encode_all(&Manifest::new(Vec::new()).canonical_bytes()[..], 3).unwrap();
    let prepare = serde_json::to_value(Request::Prepare {
        release: "r1".into(),
        manifest: ManifestForm::Full,
        base: None,
        shared: vec!["uploads".into()],
        dry_run: false,
    })
    .unwrap();
    let file = serde_json::to_value(Request::File {
        index: 0,
        encoding: Encoding::Zstd,
    })
    .unwrap();
    let state = serde_json::to_value(Request::State).unwrap();
    let bye = serde_json::to_value(Request::Bye).unwrap();
    let diff = serde_json::json!({"op": "prepare", "release": "r2", "manifest": {"form": "diff", "from": "r1",
        "removed": ["a"], "content_digest": Sha256Digest::of(b"x")}, "base": "r1", "shared": []});
    let service = serde_json::json!({"op": "service", "action": "restart", "spec": {"name": "app", "root": "/srv/app",
        "command": "./run", "port": 3000, "env_file": "/srv/app/envs/r1.env", "kind": "rollway",
        "supervisord_conf": null, "supervisorctl": null, "restart_cmd": null, "restarts_cmd": null,
        "rollway_exe": "/usr/bin/rollway"}});
    let probe = serde_json::json!({"op": "probe", "port": 3000, "path": "/health", "timeout_ms": 500});
    put(
        "agent_frames",
        "hello-state-bye",
        &frame(&[hello.clone(), state.clone(), bye.clone()], &[]),
    );
    let mut w = frame(&[hello.clone()], &[]);
    w.extend(frame(&[prepare], &[&manifest]));
    w.extend(frame(&[file], &[b"body bytes"]));
    w.extend(frame(&[serde_json::json!({"op": "commit", "release": "r1"}), bye], &[]));
    put("agent_frames", "prepare-file-commit", &w);
    put("agent_frames", "diff", &frame(&[diff], &[&manifest]));
    put("agent_frames", "service-probe", &frame(&[service, probe, state], &[]));
    put(
        "agent_frames",
        "env-prune",
        &frame(
            &[
                serde_json::json!({"op": "write_env", "release": "r1", "text": "A=\"1\"\n"}),
                serde_json::json!({"op": "prune", "keep": 5, "protect": ["r1"]}),
                serde_json::json!({"op": "switch", "release": "r1"}),
            ],
            &[],
        ),
    );
}
