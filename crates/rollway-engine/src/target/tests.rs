//! The agent and the deployer's session talking in one process (the agent
//! on a thread, over a socket pair): shipping whole, by hard links and by
//! deltas, refusals that leave nothing behind, switching, env files,
//! removing and pruning. The real binary, locally and over a real sshd, is
//! tested in `crates/rollway/tests/agent.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rollway_artifact::{PackOptions, PackResult, pack};

use super::client::StderrTail;
use super::*;
use crate::agent::protocol::{DataWriter, Encoding, ManifestForm, PROTOCOL, Request, Response};

/// PostgreSQL stand-ins for the protocol tests (the real tools are the
/// binary's, driven against a real server in
/// `crates/rollway/tests/backups_host.rs`): a dump is `PGDMP` and the URL,
/// one of a database named `fail` dies after half a dump naming its URL,
/// and a restore writes the archive to `DIR/restored`.
struct Stand {
    dir: PathBuf,
}

impl crate::agent::Databases for Stand {
    fn dump(&self, url: &str, out: &mut dyn std::io::Write) -> Result<(), String> {
        out.write_all(b"PGDMP ").map_err(|e| e.to_string())?;
        if url.ends_with("/fail") {
            return Err(format!("pg_dump failed: cannot reach {url}"));
        }
        out.write_all(url.as_bytes()).map_err(|e| e.to_string())
    }

    fn is_empty(&self, _url: &str) -> Result<bool, String> {
        Ok(!self.dir.join("restored").exists())
    }

    fn restore(&self, _url: &str, _clean: bool, input: &mut dyn std::io::Read) -> Result<(), String> {
        let mut all = Vec::new();
        input.read_to_end(&mut all).map_err(|e| e.to_string())?;
        fs::write(self.dir.join("restored"), all).map_err(|e| e.to_string())
    }
}

fn session(root: &Path, options: SessionOptions) -> AgentSession {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let root = root.to_owned();
    std::thread::spawn(move || {
        let input = theirs.try_clone().unwrap();
        let stand = Stand { dir: root.clone() };
        let _ = crate::agent::serve(&root, input, theirs, &stand);
    });
    let client = AgentClient::connect(
        "test-host",
        Box::new(ours.try_clone().unwrap()),
        Box::new(ours.try_clone().unwrap()),
        StderrTail::default(),
        shutting_down(ours),
        options.quiet(),
    )
    .unwrap();
    AgentSession::new(client, None, options)
}

/// A watchdog that stops the conversation by shutting the socket down.
fn shutting_down(socket: UnixStream) -> watchdog::Watchdog {
    watchdog::Watchdog::new(Box::new(move || {
        let _ = socket.shutdown(std::net::Shutdown::Both);
    }))
}

/// An agent that stops answering fails the step within its quiet limit
/// (plus a request's own timeout), naming the host; one that answers late
/// but moves bytes is not cut.
#[test]
fn a_silent_agent_fails_the_step_within_its_quiet_limit() {
    let quiet = Duration::from_millis(300);
    let connect = |answer: bool| {
        let (ours, theirs) = UnixStream::pair().unwrap();
        std::thread::spawn(move || {
            let mut input = theirs.try_clone().unwrap();
            let mut output = theirs;
            let _hello: Option<Request> = crate::agent::protocol::recv(&mut input).unwrap();
            if answer {
                let hello = Response::Hello {
                    protocol: PROTOCOL,
                    version: crate::agent::protocol::version(),
                };
                crate::agent::protocol::send(&mut output, &hello).unwrap();
                output.flush().unwrap();
            }
            // Then silence, with the streams held open.
            std::thread::sleep(Duration::from_secs(30));
        });
        let started = Instant::now();
        let client = AgentClient::connect(
            "silent-host",
            Box::new(ours.try_clone().unwrap()),
            Box::new(ours.try_clone().unwrap()),
            StderrTail::default(),
            shutting_down(ours),
            quiet,
        );
        (client, started)
    };
    let (client, started) = connect(false);
    let err = client.unwrap_err();
    let took = started.elapsed();
    assert_eq!(
        (err.host.as_str(), err.step, err.detail.as_str()),
        (
            "silent-host",
            "connect",
            "the agent did not answer within 300ms (no byte moved either way), so rollway stopped it; check the host (load, a full disk, a stuck agent), then try again"
        )
    );
    assert!(took >= quiet && took < quiet * 5, "failed after {took:?}");

    // A request with its own timeout gets that much longer.
    let (client, _) = connect(true);
    let mut client = client.unwrap();
    let started = Instant::now();
    let err = client
        .call(
            "probe",
            &Request::Probe {
                port: 1,
                path: "/".into(),
                timeout_ms: 500,
            },
        )
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!((err.step, client.stopped()), ("probe", true));
    assert!(
        took >= quiet + Duration::from_millis(500) && took < Duration::from_secs(3),
        "failed after {took:?}"
    );
    // Stopped stays stopped: the next request fails at once.
    let started = Instant::now();
    assert!(client.state().is_err());
    assert!(started.elapsed() < quiet);
}

/// Pseudo-random bytes (xorshift): incompressible, like images.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

struct World {
    tmp: tempfile::TempDir,
    root: PathBuf,
}

impl World {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("host");
        Self { tmp, root }
    }

    /// A source tree: `big.bin` (1 MiB of noise), `app/` with text files,
    /// an executable and a symlink; `edit` changes it before packing.
    fn pack(&self, name: &str, edit: impl FnOnce(&Path)) -> PackResult {
        let src = self.tmp.path().join("src").join(name);
        fs::create_dir_all(src.join("app/lib")).unwrap();
        fs::write(src.join("big.bin"), noise(1 << 20, 5)).unwrap();
        for i in 0..20 {
            fs::write(
                src.join(format!("app/lib/m{i}.js")),
                format!("export const v{i} = {i};\n").repeat(50),
            )
            .unwrap();
        }
        fs::write(src.join("app/run.sh"), "#!/bin/sh\necho hi\n").unwrap();
        fs::set_permissions(src.join("app/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        symlink("app/run.sh", src.join("run")).unwrap();
        edit(&src);
        let mut opts = PackOptions::new(self.tmp.path().join("artifacts"));
        opts.sync = false;
        pack(&src, &opts).unwrap()
    }

    fn release(&self, id: &str) -> PathBuf {
        self.root.join("releases").join(id)
    }

    /// Everything under releases/, hidden names included.
    fn release_dirs(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.root.join("releases"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

fn ino(p: &Path) -> u64 {
    fs::symlink_metadata(p).unwrap().ino()
}

/// `big.bin` with 64 bytes changed at `at`.
fn change_big(src: &Path, at: usize) {
    let mut big = noise(1 << 20, 5);
    big[at..at + 64].copy_from_slice(&noise(64, 77));
    fs::write(src.join("big.bin"), big).unwrap();
}

#[test]
fn ships_whole_then_links_and_patches_only_what_changed() {
    let w = World::new();
    let v1 = w.pack("v1", |_| {});
    let v2 = w.pack("v2", |src| change_big(src, 300_000));
    let v3 = w.pack("v3", |src| change_big(src, 700_000));
    let mut s = session(&w.root, SessionOptions::default());

    let first = s.ship("r1", &v1.archive_path, &v1.sha256).unwrap();
    assert_eq!((first.files_full, first.files_linked, first.files_delta), (22, 0, 0));
    assert!(first.bytes_sent > 1 << 20, "{first:?}");
    let r1 = w.release("r1");
    assert_eq!(fs::read(r1.join("big.bin")).unwrap(), noise(1 << 20, 5));
    assert_eq!(fs::read_link(r1.join("run")).unwrap(), Path::new("app/run.sh"));
    let mode = |p: &Path| fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&r1.join("app/run.sh")), 0o555);
    assert_eq!(mode(&r1.join("app/lib/m1.js")), 0o444);
    assert_eq!(mode(&r1.join("app")), 0o555);
    assert!(w.root.join(".rollway/manifests/r1.json").is_file());
    assert_eq!(
        s.state().unwrap(),
        HostState {
            releases: vec!["r1".into()],
            current: None
        }
    );

    // Without the previous artifact the changed file travels whole.
    let whole = s.ship("r2", &v2.archive_path, &v2.sha256).unwrap();
    assert_eq!((whole.files_full, whole.files_linked, whole.files_delta), (1, 21, 0));
    assert!(whole.bytes_sent > 1 << 20, "{whole:?}");

    // With it (r2 holds exactly v2), as a patch a few hundred bytes long.
    s.options_mut().previous_archive = Some(v2.archive_path.clone());
    // A dry run says so without writing anything on the host.
    let plan = s.plan_ship("r3", &v3.archive_path, &v3.sha256).unwrap();
    assert_eq!(
        plan,
        ShipPlan {
            files_linked: 21,
            delta: vec![("big.bin".into(), 1 << 20)],
            full: vec![],
            base: Some("r2".into()),
        }
    );
    assert_eq!(w.release_dirs(), ["r1", "r2"]);
    let patched = s.ship("r3", &v3.archive_path, &v3.sha256).unwrap();
    assert_eq!(
        (patched.files_full, patched.files_linked, patched.files_delta),
        (0, 21, 1)
    );
    assert!(patched.bytes_sent < 4096, "{patched:?}");
    let r3 = w.release("r3");
    let mut want = noise(1 << 20, 5);
    want[700_000..700_064].copy_from_slice(&noise(64, 77));
    assert_eq!(fs::read(r3.join("big.bin")).unwrap(), want);
    assert_eq!(ino(&r3.join("app/lib/m3.js")), ino(&r1.join("app/lib/m3.js")));
    assert_eq!(ino(&r3.join("app/run.sh")), ino(&r1.join("app/run.sh")));
    assert_ne!(ino(&r3.join("big.bin")), ino(&w.release("r2").join("big.bin")));

    // A release whose content a host release already has is all links.
    let linked = s.ship("r4", &v1.archive_path, &v1.sha256).unwrap();
    assert_eq!((linked.files_full, linked.files_linked, linked.files_delta), (0, 22, 0));
    assert_eq!(ino(&w.release("r4").join("big.bin")), ino(&r1.join("big.bin")));

    // The same release again is already there: nothing moves.
    let again = s.ship("r3", &v3.archive_path, &v3.sha256).unwrap();
    assert_eq!((again.files_full, again.files_delta), (0, 0));
    // Other content under an existing id is refused.
    let err = s.ship("r3", &v1.archive_path, &v1.sha256).unwrap_err().to_string();
    assert!(
        err.contains("test-host: ship: release r3: a release of this id with other content"),
        "{err}"
    );
    assert_eq!(w.release_dirs(), ["r1", "r2", "r3", "r4"]);
}

#[test]
fn a_wrong_archive_digest_is_refused_before_anything_moves() {
    let w = World::new();
    let v1 = w.pack("v1", |_| {});
    let mut s = session(&w.root, SessionOptions::default());
    let wrong: Sha256Digest = "0".repeat(64).parse().unwrap();
    let err = s.ship("r1", &v1.archive_path, &wrong).unwrap_err().to_string();
    assert!(err.contains("test-host: ship: artifact"), "{err}");
    assert!(s.state().unwrap().releases.is_empty());
    assert!(w.release_dirs().is_empty());
}

#[test]
fn switch_env_remove_and_prune() {
    let w = World::new();
    let v1 = w.pack("v1", |_| {});
    let mut s = session(&w.root, SessionOptions::default());
    for id in ["r1", "r2", "r3", "r4"] {
        s.ship(id, &v1.archive_path, &v1.sha256).unwrap();
        s.write_env(id, &format!("SECRET=\"{id}\"\n")).unwrap();
    }
    let env = w.root.join("envs/r2.env");
    assert_eq!(fs::metadata(&env).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(fs::read_to_string(&env).unwrap(), "SECRET=\"r2\"\n");

    assert_eq!(s.switch("r1").unwrap(), None);
    assert_eq!(s.switch("r2").unwrap(), Some("r1".into()));
    assert_eq!(fs::read_link(w.root.join("current")).unwrap(), Path::new("releases/r2"));
    let err = s.switch("nope").unwrap_err().to_string();
    assert!(err.contains("release nope is not on this host"), "{err}");
    let err = s.switch("../x").unwrap_err().to_string();
    assert!(err.contains("is not a release id"), "{err}");
    assert_eq!(fs::read_link(w.root.join("current")).unwrap(), Path::new("releases/r2"));

    let err = s.remove_release("r2").unwrap_err().to_string();
    assert!(err.contains("release r2 is current"), "{err}");
    s.remove_release("r3").unwrap();
    assert!(!w.root.join("envs/r3.env").exists());
    assert!(!w.root.join(".rollway/manifests/r3.json").exists());
    // Keep 1 (r4, the newest) plus r1 (protected) plus r2 (current).
    assert_eq!(s.prune(1, &["r1".into()]).unwrap(), Vec::<String>::new());
    assert_eq!(s.prune(0, &[]).unwrap(), ["r1", "r4"]);
    assert_eq!(
        s.state().unwrap(),
        HostState {
            releases: vec!["r2".into()],
            current: Some("r2".into())
        }
    );
    assert_eq!(w.release_dirs(), ["r2"]);
}

#[test]
fn shared_directories_are_linked_into_every_release() {
    let w = World::new();
    let v1 = w.pack("v1", |_| {});
    let options = SessionOptions {
        shared: vec!["uploads".into(), "app/cache".into()],
        ..SessionOptions::default()
    };
    let mut s = session(&w.root, options);
    s.ship("r1", &v1.archive_path, &v1.sha256).unwrap();
    let r1 = w.release("r1");
    assert_eq!(
        fs::read_link(r1.join("uploads")).unwrap(),
        Path::new("../../shared/uploads")
    );
    assert_eq!(
        fs::read_link(r1.join("app/cache")).unwrap(),
        Path::new("../../../shared/app/cache")
    );
    fs::write(r1.join("uploads/photo"), b"kept").unwrap();
    assert_eq!(fs::read(w.root.join("shared/uploads/photo")).unwrap(), b"kept");
    assert_eq!(
        fs::symlink_metadata(r1.join("app")).unwrap().permissions().mode() & 0o777,
        0o555
    );

    // An artifact that has the shared path itself is refused.
    let v2 = w.pack("v2", |src| fs::create_dir(src.join("uploads")).unwrap());
    let err = s.ship("r2", &v2.archive_path, &v2.sha256).unwrap_err().to_string();
    assert!(err.contains("the artifact has 'uploads'"), "{err}");
    assert_eq!(w.release_dirs(), ["r1"]);
}

/// Sends a prepare with raw manifest bytes; returns the agent's answer.
fn raw_prepare(s: &mut AgentSession, release: &str, manifest: &[u8]) -> Response {
    let c = s.client();
    c.send(
        "test",
        &Request::Prepare {
            release: release.into(),
            manifest: ManifestForm::Full,
            base: None,
            shared: vec![],
            dry_run: false,
        },
    )
    .unwrap();
    let mut d = c.data();
    d.write_all(&zstd::bulk::compress(manifest, 3).unwrap()).unwrap();
    d.finish().unwrap();
    c.receive("test").unwrap()
}

fn check_refused(manifest: &str, expected: &str) {
    let w = World::new();
    let mut s = session(&w.root, SessionOptions::default());
    match raw_prepare(&mut s, "r1", manifest.as_bytes()) {
        Response::Error { message } => assert!(message.contains(expected), "{manifest}: {message}"),
        other => panic!("{manifest}: {other:?}"),
    }
    assert!(w.release_dirs().is_empty(), "{manifest}: {:?}", w.release_dirs());
    assert!(!w.tmp.path().join("x").exists());
    // The agent keeps serving.
    assert!(s.state().unwrap().releases.is_empty());
}

#[test]
fn hostile_manifests_are_refused_with_nothing_left() {
    let sha = "a".repeat(64);
    let head = r#"{"format":"rollway-manifest/1","entries":["#;
    check_refused(
        &format!(r#"{head}{{"path":"../x","type":"dir","mode":"0755"}}]}}"#),
        "'..' component",
    );
    check_refused(
        &format!(r#"{head}{{"path":"/x","type":"dir","mode":"0755"}}]}}"#),
        "absolute path",
    );
    check_refused(
        &format!(r#"{head}{{"path":"l","type":"symlink","mode":"0777","target":"../../x"}}]}}"#),
        "symlink resolves outside the tree",
    );
    check_refused(
        &format!(
            r#"{head}{{"path":"a","type":"symlink","mode":"0777","target":"."}},{{"path":"a/f","type":"file","mode":"0644","size":1,"sha256":"{sha}"}}]}}"#
        ),
        "parent 'a' is not a directory entry",
    );
    check_refused("not json", "not valid JSON");
}

#[test]
fn a_body_that_does_not_match_the_manifest_fails_the_commit_and_leaves_nothing() {
    let w = World::new();
    let mut s = session(&w.root, SessionOptions::default());
    let good = b"good";
    let manifest = format!(
        r#"{{"format":"rollway-manifest/1","entries":[{{"path":"f","type":"file","mode":"0644","size":4,"sha256":"{}"}}]}}"#,
        Sha256Digest::of(good)
    );
    let Response::Plan { full, .. } = raw_prepare(&mut s, "r1", manifest.as_bytes()) else {
        panic!("no plan")
    };
    assert_eq!(full, [0]);
    let c = s.client();
    c.send(
        "test",
        &Request::File {
            index: 0,
            encoding: Encoding::Zstd,
        },
    )
    .unwrap();
    let mut d: DataWriter<_> = c.data();
    d.write_all(&zstd::bulk::compress(b"evil", 3).unwrap()).unwrap();
    d.finish().unwrap();
    let err = c
        .call("test", &Request::Commit { release: "r1".into() })
        .unwrap_err()
        .to_string();
    assert!(err.contains("'f' arrived with 4 bytes and SHA-256"), "{err}");
    assert!(w.release_dirs().is_empty(), "{:?}", w.release_dirs());
    // A file nobody asked for, and a commit with files missing.
    let Response::Plan { .. } = raw_prepare(&mut s, "r1", manifest.as_bytes()) else {
        panic!("no plan")
    };
    let err = s
        .client()
        .call("test", &Request::Commit { release: "r1".into() })
        .unwrap_err()
        .to_string();
    assert!(err.contains("1 files never arrived (first: 'f')"), "{err}");
    assert!(w.release_dirs().is_empty());
}

#[test]
fn requests_before_hello_and_other_protocols_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut wire = Vec::new();
    crate::agent::protocol::send(&mut wire, &Request::State).unwrap();
    crate::agent::protocol::send(
        &mut wire,
        &Request::Hello {
            protocol: PROTOCOL + 1,
            version: "rollway 99".into(),
        },
    )
    .unwrap();
    let mut out = Vec::new();
    let stand = Stand {
        dir: tmp.path().to_owned(),
    };
    crate::agent::serve(tmp.path(), &wire[..], &mut out, &stand).unwrap();
    let mut r = &out[..];
    let first: Response = crate::agent::protocol::recv(&mut r).unwrap().unwrap();
    let second: Response = crate::agent::protocol::recv(&mut r).unwrap().unwrap();
    let text = format!("{first:?} {second:?}");
    assert!(text.contains("say hello first"), "{text}");
    assert!(
        text.contains(&format!("protocol {PROTOCOL} ≠ {}", PROTOCOL + 1)),
        "{text}"
    );
    assert!(crate::agent::protocol::recv::<Response>(&mut r).unwrap().is_none());
}

/// A media directory streams out of the agent and back into another
/// directory through the protocol, and the conversation stays in step after
/// refusals (a missing directory, a non-empty target, a corrupt stream).
#[test]
fn a_directory_streams_out_and_back_through_the_agent() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let media = root.join("media");
    fs::create_dir_all(media.join("sub")).unwrap();
    fs::write(media.join("sub/f"), noise(3 << 20, 7)).unwrap();
    symlink("sub/f", media.join("l")).unwrap();
    let mut s = session(&root, SessionOptions::default());
    let c = s.client();
    let err = c.pack_dir("missing", &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    let mut tar = Vec::new();
    assert_eq!(c.pack_dir("media", &mut tar).unwrap(), 3);
    assert_eq!(c.unpack_dir("copy", false, &mut &tar[..]).unwrap(), 3);
    assert_eq!(fs::read(root.join("copy/sub/f")).unwrap(), noise(3 << 20, 7));
    assert_eq!(fs::read_link(root.join("copy/l")).unwrap(), Path::new("sub/f"));
    let err = c.unpack_dir("copy", false, &mut &tar[..]).unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
    let mut bad = tar.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    let target = tmp.path().join("abs");
    assert!(c.unpack_dir(target.to_str().unwrap(), false, &mut &bad[..]).is_err());
    assert!(!target.exists());
    assert_eq!(c.unpack_dir(target.to_str().unwrap(), false, &mut &tar[..]).unwrap(), 3);
}

/// A database dump leaves the agent encrypted to the recipients sent, its
/// URL read from the current release's env file and never echoed in an
/// error; a restore refuses a database that holds anything without force;
/// the conversation stays in step after every refusal.
#[test]
fn a_database_dump_leaves_the_agent_encrypted_and_a_restore_refuses_a_full_database() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let password = "hunter2-very-secret";
    let mut s = session(&root, SessionOptions::default());
    let identity = rollway_secrets::Identity::generate();
    let keys = vec![identity.recipient().key_text()];
    let c = s.client();
    let err = c.dump_database("DATABASE_URL", &keys, &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("no current release"), "{err}");
    fs::create_dir_all(root.join("envs")).unwrap();
    fs::write(
        root.join("envs/r1.env"),
        format!(
            "DATABASE_URL=\"postgres://app:{password}@db.internal/shop\"\nBAD_URL=\"postgres://app:{password}@db.internal/fail\"\n"
        ),
    )
    .unwrap();
    symlink("releases/r1", root.join("current")).unwrap();

    let mut stored = Vec::new();
    let bytes = c.dump_database("DATABASE_URL", &keys, &mut stored).unwrap();
    assert_eq!(bytes, stored.len() as u64);
    assert!(!common_contains(&stored, password) && !common_contains(&stored, "PGDMP"));
    let clear = rollway_secrets::decrypt(&stored, &[identity]).unwrap();
    assert_eq!(
        clear,
        format!("PGDMP postgres://app:{password}@db.internal/shop").as_bytes()
    );

    for (var, keys, expected) in [
        ("BAD_URL", keys.clone(), "pg_dump failed"),
        ("MISSING_URL", keys.clone(), "MISSING_URL is not set"),
        ("DATABASE_URL", Vec::new(), "no recipients"),
        ("DATABASE_URL", vec!["AGE-SECRET-KEY-1XYZ".to_owned()], "secret key"),
    ] {
        let err = c.dump_database(var, &keys, &mut Vec::new()).unwrap_err().to_string();
        assert!(err.contains(expected), "{var}: {err}");
        assert!(!err.contains(password), "{var}: the password in {err}");
    }

    c.restore_database("DATABASE_URL", false, &mut &b"archive one"[..])
        .unwrap();
    let err = c
        .restore_database("DATABASE_URL", false, &mut &b"archive two"[..])
        .unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
    assert_eq!(fs::read(root.join("restored")).unwrap(), b"archive one");
    c.restore_database("DATABASE_URL", true, &mut &b"archive two"[..])
        .unwrap();
    assert_eq!(fs::read(root.join("restored")).unwrap(), b"archive two");
    // Still in step: the next request gets its own answer.
    let err = c.pack_dir("missing", &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("cannot read the directory"), "{err}");
}

fn common_contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}
