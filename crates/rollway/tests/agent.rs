//! The host agent end to end with the real `rollway` binary, on a `local`
//! target (the deployer's child) and on an SSH host (a real sshd on
//! loopback, reached through system OpenSSH with a byte-counting
//! ProxyCommand): shipping, hard links and deltas, what crosses the wire,
//! atomic switches, env files, hostile manifests, removing and pruning, and
//! the agent binary copied to SSH hosts by digest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/sshd.rs"]
mod sshd;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rollway_artifact::{PackOptions, PackResult, pack};
use rollway_engine::{
    AgentSession, HostPlan, HostSession, LocalConnector, ManifestForm, ServiceOp, ServiceSpec, SessionOptions,
    SshConnector, SshTarget,
};
use rollway_model::SupervisorKind;

use sshd::Sshd;

const ROLLWAY: &str = env!("CARGO_BIN_EXE_rollway");

/// Size of the one large file of the test tree.
const BIG: usize = 2 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Local,
    Ssh,
}

/// A host (local or behind a fresh sshd) and the artifacts to ship to it.
struct Case {
    kind: Kind,
    tmp: tempfile::TempDir,
    plan: HostPlan,
    sshd: Option<Sshd>,
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

impl Case {
    fn new(kind: Kind) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("host");
        let sshd = (kind == Kind::Ssh).then(Sshd::start);
        let plan = match &sshd {
            None => HostPlan {
                name: "local".into(),
                root: root.to_string_lossy().into_owned(),
                port: 0,
                ssh: None,
            },
            Some(s) => HostPlan {
                name: s.host_name(),
                root: root.to_string_lossy().into_owned(),
                port: 0,
                ssh: Some(SshTarget {
                    user: Some(s.user.clone()),
                    host: "127.0.0.1".into(),
                    port: Some(s.port),
                    config: Some(s.client_config.clone()),
                }),
            },
        };
        Self { kind, tmp, plan, sshd }
    }

    fn root(&self) -> PathBuf {
        PathBuf::from(&self.plan.root)
    }

    fn ssh(&self, options: SessionOptions) -> SshConnector {
        SshConnector::new(&self.tmp.path().join("state"), options).with_agent_exe(ROLLWAY)
    }

    fn connect(&self, options: SessionOptions) -> AgentSession {
        match self.kind {
            Kind::Local => LocalConnector::new(options).with_exe(ROLLWAY).open(&self.plan),
            Kind::Ssh => self.ssh(options).open(&self.plan),
        }
        .unwrap_or_else(|e| panic!("{:?}: {e}", self.kind))
    }

    /// A tree of 40 small text files, an executable, a symlink and one
    /// large incompressible file; `big_change` overwrites 64 bytes of it.
    fn pack(&self, name: &str, big_change: Option<usize>) -> PackResult {
        let src = self.tmp.path().join("src").join(name);
        fs::create_dir_all(src.join("public/js")).unwrap();
        for i in 0..40 {
            fs::write(
                src.join(format!("public/js/chunk{i}.js")),
                format!("export const c{i} = '{i}';\n").repeat(40),
            )
            .unwrap();
        }
        fs::write(
            src.join("server.sh"),
            "#!/bin/sh\nexec python3 -m http.server \"$PORT\"\n",
        )
        .unwrap();
        fs::set_permissions(src.join("server.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        symlink("public/js/chunk0.js", src.join("main.js")).unwrap();
        let mut big = noise(BIG, 11);
        if let Some(at) = big_change {
            big[at..at + 64].copy_from_slice(&noise(64, at as u64));
        }
        fs::write(src.join("public/hero.webp"), big).unwrap();
        let mut opts = PackOptions::new(self.tmp.path().join("artifacts"));
        opts.sync = false;
        pack(&src, &opts).unwrap()
    }

    fn release(&self, id: &str) -> PathBuf {
        self.root().join("releases").join(id)
    }

    /// Everything under releases/, hidden names (staging) included.
    fn release_dirs(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.root().join("releases"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    fn wire_up(&self) -> u64 {
        self.sshd.as_ref().map_or(0, |s| s.wire().up)
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        if self.kind == Kind::Ssh {
            let _ = self.ssh(SessionOptions::default()).disconnect(&self.plan);
        }
    }
}

fn ino(p: &Path) -> u64 {
    fs::symlink_metadata(p).unwrap().ino()
}

fn ship_link_delta_switch(kind: Kind) {
    let case = Case::new(kind);
    let v1 = case.pack("v1", None);
    let v2 = case.pack("v2", Some(BIG / 2));
    let full_bytes = v2.manifest.file_bytes();

    let mut s = case.connect(SessionOptions::default());
    let first = s.ship("r1", &v1.archive_path, &v1.sha256).unwrap();
    assert_eq!(
        (first.files_full, first.files_linked, first.files_delta),
        (42, 0, 0),
        "{kind:?}"
    );
    let state = s.state().unwrap();
    assert_eq!(state.releases, ["r1"]);
    assert_eq!(state.current, None);
    s.write_env("r1", "GREETING=\"v1\"\n").unwrap();
    let env = case.root().join("envs/r1.env");
    assert_eq!(
        fs::metadata(&env).unwrap().permissions().mode() & 0o777,
        0o600,
        "{kind:?}"
    );
    assert_eq!(s.switch("r1").unwrap(), None);
    drop(s);

    // A second session (over the same ssh connection) ships v2 with v1 as
    // the previous artifact: the changed file as a delta, the rest linked.
    let mut s = case.connect(SessionOptions {
        previous_archive: Some(v1.archive_path.clone()),
        ..SessionOptions::default()
    });
    let before = case.wire_up();
    let second = s.ship("r2", &v2.archive_path, &v2.sha256).unwrap();
    let on_wire = case.wire_up() - before;
    eprintln!(
        "{kind:?}: full tree {full_bytes} bytes; first ship sent {}; 1-file change sent {} (payload), {on_wire} bytes of ssh on the wire",
        first.bytes_sent, second.bytes_sent
    );
    assert_eq!(
        (second.files_full, second.files_linked, second.files_delta),
        (0, 41, 1),
        "{kind:?}"
    );
    assert!(
        second.bytes_sent * 200 < full_bytes,
        "{kind:?}: {second:?} of {full_bytes}"
    );
    if kind == Kind::Ssh {
        assert!(
            on_wire > second.bytes_sent,
            "the relay counts the ssh stream: {on_wire}"
        );
        assert!(
            on_wire * 100 < full_bytes,
            "{on_wire} bytes on the wire for a 64-byte change"
        );
    }
    let (r1, r2) = (case.release("r1"), case.release("r2"));
    assert_eq!(
        ino(&r2.join("public/js/chunk7.js")),
        ino(&r1.join("public/js/chunk7.js"))
    );
    assert_eq!(ino(&r2.join("server.sh")), ino(&r1.join("server.sh")));
    assert_ne!(ino(&r2.join("public/hero.webp")), ino(&r1.join("public/hero.webp")));
    let mut want = noise(BIG, 11);
    want[BIG / 2..BIG / 2 + 64].copy_from_slice(&noise(64, (BIG / 2) as u64));
    assert_eq!(fs::read(r2.join("public/hero.webp")).unwrap(), want);
    assert_eq!(
        fs::symlink_metadata(r2.join("public/hero.webp"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o444
    );

    // Switching is one rename: a reader never sees `current` missing or
    // pointing anywhere but a release.
    let current = case.root().join("current");
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (current, stop) = (current.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut seen = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let target = fs::read_link(&current).unwrap_or_else(|e| panic!("current vanished mid-switch: {e}"));
                assert!(
                    target == Path::new("releases/r1") || target == Path::new("releases/r2"),
                    "{target:?}"
                );
                seen += 1;
            }
            seen
        })
    };
    let mut previous = Some("r1".to_owned());
    for i in 0..100 {
        let (to, from) = if i % 2 == 0 { ("r2", "r1") } else { ("r1", "r2") };
        assert_eq!(s.switch(to).unwrap(), previous, "{kind:?} switch {i}");
        assert_eq!(previous.as_deref(), Some(from));
        previous = Some(to.to_owned());
    }
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    assert_eq!(fs::read_link(&current).unwrap(), Path::new("releases/r1"));
    let state = s.state().unwrap();
    assert_eq!(
        (state.releases, state.current),
        (vec!["r1".to_owned(), "r2".to_owned()], Some("r1".to_owned()))
    );
}

#[test]
fn local_ships_links_deltas_and_switches_atomically() {
    ship_link_delta_switch(Kind::Local);
}

#[test]
fn ssh_ships_links_deltas_and_switches_atomically() {
    ship_link_delta_switch(Kind::Ssh);
}

fn hostile_and_cleanup(kind: Kind) {
    let case = Case::new(kind);
    let v1 = case.pack("v1", None);
    let mut s = case.connect(SessionOptions::default());
    for id in ["r1", "r2", "r3"] {
        s.ship(id, &v1.archive_path, &v1.sha256).unwrap();
        s.write_env(id, "A=1\n").unwrap();
    }
    s.switch("r2").unwrap();

    // A manifest no pack would write: refused by the agent, nothing left.
    for (manifest, expected) in [
        (
            r#"{"format":"rollway-manifest/1","entries":[{"path":"../x","type":"dir","mode":"0755"}]}"#,
            "path has a '..' component",
        ),
        (
            r#"{"format":"rollway-manifest/1","entries":[{"path":"l","type":"symlink","mode":"0777","target":"../../../x"}]}"#,
            "symlink resolves outside the tree",
        ),
    ] {
        let err = s
            .client()
            .prepare("r9", ManifestForm::Full, None, Vec::new(), manifest.as_bytes(), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{kind:?}: {err}");
        assert_eq!(case.release_dirs(), ["r1", "r2", "r3"], "{kind:?}");
        assert!(!case.tmp.path().join("x").exists());
    }
    // The agent is still serving.
    assert_eq!(s.state().unwrap().current.as_deref(), Some("r2"));

    let err = s.remove_release("r2").unwrap_err().to_string();
    assert!(err.contains("release r2 is current on this host"), "{kind:?}: {err}");
    s.remove_release("r1").unwrap();
    assert!(!case.root().join("envs/r1.env").exists());
    // keep 0: only the current one stays.
    assert_eq!(s.prune(0, &[]).unwrap(), ["r3"]);
    assert_eq!(case.release_dirs(), ["r2"]);
    let state = s.state().unwrap();
    assert_eq!(
        (state.releases, state.current),
        (vec!["r2".to_owned()], Some("r2".to_owned()))
    );
}

#[test]
fn local_refuses_hostile_manifests_and_keeps_current() {
    hostile_and_cleanup(Kind::Local);
}

#[test]
fn ssh_refuses_hostile_manifests_and_keeps_current() {
    hostile_and_cleanup(Kind::Ssh);
}

#[test]
fn ssh_copies_the_agent_once_by_digest_over_one_connection() {
    let case = Case::new(Kind::Ssh);
    // `[ssh] persist`: each connector leaves the host's connection to the next.
    let persist = || {
        let mut o = SessionOptions::default();
        o.ssh.persist = true;
        o
    };
    let sshd = case.sshd.as_ref().unwrap();
    let bin = case.root().join(".rollway/bin");
    let mut s = case.connect(persist());
    s.state().unwrap();
    let copies: Vec<PathBuf> = fs::read_dir(&bin).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    let copy = &copies[0];
    let name = copy.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("rollway-") && name.len() == "rollway-".len() + 16,
        "{name}"
    );
    assert_eq!(fs::read(copy).unwrap(), fs::read(ROLLWAY).unwrap());
    assert_eq!(fs::metadata(copy).unwrap().permissions().mode() & 0o777, 0o755);
    drop(s);

    // Present and intact: not copied again.
    let inode = ino(copy);
    let up = sshd.wire().up;
    case.connect(persist()).state().unwrap();
    assert_eq!(ino(copy), inode);
    let size = fs::metadata(ROLLWAY).unwrap().len();
    assert!(sshd.wire().up - up < size / 10, "the binary was sent again");

    // Damaged: replaced by a verified copy.
    fs::set_permissions(copy, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(copy, b"#!/bin/sh\necho rollway-agent-ok\n").unwrap();
    case.connect(persist()).state().unwrap();
    assert_eq!(fs::read(copy).unwrap(), fs::read(ROLLWAY).unwrap());
    // Every session rode the one multiplexed connection.
    assert_eq!(sshd.connections(), 2, "the harness's own check, then the master");
}

#[test]
fn ssh_to_a_host_that_refuses_says_why() {
    let case = Case::new(Kind::Ssh);
    let mut plan = case.plan.clone();
    if let Some(t) = plan.ssh.as_mut() {
        // A key the server does not know.
        let other = case.tmp.path().join("ssh_config");
        let text = fs::read_to_string(t.config.as_ref().unwrap()).unwrap();
        fs::write(&other, text.replace("userkey", "no-such-key")).unwrap();
        t.config = Some(other);
    }
    let err = case.ssh(SessionOptions::default()).open(&plan).unwrap_err().to_string();
    assert!(err.contains("connect: ssh"), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
}

/// Serves `$GREETING` on `$PORT` and says so on stdout.
const APP: &str = r#"import http.server, os
body = os.environ.get("GREETING", "").encode()
print("serving", os.environ.get("GREETING"), flush=True)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

fn get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
}

/// The service of a shipped release, started, probed, restarted and
/// stopped through the agent (the host's own rollway binary supervises it).
fn service_through_the_agent(kind: Kind) {
    let case = Case::new(kind);
    let src = case.tmp.path().join("src/app");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("app.py"), APP).unwrap();
    let mut opts = PackOptions::new(case.tmp.path().join("artifacts"));
    opts.sync = false;
    let art = pack(&src, &opts).unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let spec = ServiceSpec {
        name: "hello".into(),
        project: String::new(),
        environment: String::new(),
        root: case.root(),
        command: "exec /usr/bin/python3 app.py".into(),
        port,
        env_file: case.root().join("envs/r1.env"),
        kind: SupervisorKind::Rollway,
        supervisord_conf: None,
        supervisorctl: None,
        restart_cmd: None,
        restarts_cmd: None,
        // The deployer cannot know the host's path; the agent puts its own.
        rollway_exe: PathBuf::from("/nonexistent/rollway"),
    };
    let mut s = case.connect(SessionOptions::default());
    s.ship("r1", &art.archive_path, &art.sha256).unwrap();
    s.write_env("r1", "GREETING=\"hello from r1\"\n").unwrap();
    s.switch("r1").unwrap();
    let started = s.service(ServiceOp::Restart, &spec).unwrap();
    assert!(started.pid.is_some(), "{kind:?}: {started:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let probe = loop {
        let p = s.probe(port, "/", Duration::from_secs(1)).unwrap();
        if p.status == Some(200) || Instant::now() > deadline {
            break p;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(probe.status, Some(200), "{kind:?}: {probe:?}");
    assert_eq!(get(port).as_deref(), Some("hello from r1"));
    let status = s.service_status(&spec).unwrap();
    // The same process, still on its first start (its uptime has grown).
    assert_eq!((status.pid, status.starts), (started.pid, started.starts));
    assert!(status.uptime_ms.is_some(), "{kind:?}: {status:?}");
    let lines = s.log_tail(&spec, 5).unwrap();
    assert!(
        lines.iter().any(|l| l.contains("serving hello from r1")),
        "{kind:?}: {lines:?}"
    );
    // Read forward from a cursor: everything once, then only what is new.
    let first = s.log_read(&spec, None, 1 << 20).unwrap();
    let serving = |lines: &[String]| lines.iter().filter(|l| l.contains("serving hello from r1")).count();
    assert_eq!(serving(&first.lines), 1, "{kind:?}: {first:?}");
    assert_eq!((first.more, &first.lost), (false, &None), "{kind:?}");
    let nothing = s.log_read(&spec, Some(first.cursor), 1 << 20).unwrap();
    assert_eq!((nothing.lines.len(), nothing.cursor), (0, first.cursor), "{kind:?}");
    drop(s);

    // A later session still sees it; a restart counts one more start.
    let mut s = case.connect(SessionOptions::default());
    let again = s.service(ServiceOp::Restart, &spec).unwrap();
    assert_eq!(again.starts, started.starts + 1, "{kind:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut cursor = first.cursor;
    let mut after: Vec<String> = Vec::new();
    while serving(&after) == 0 && Instant::now() < deadline {
        let chunk = s.log_read(&spec, Some(cursor), 1 << 20).unwrap();
        after.extend(chunk.lines);
        cursor = chunk.cursor;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(serving(&after), 1, "{kind:?}: only the new start's line: {after:?}");
    s.service(ServiceOp::Stop, &spec).unwrap();
    let stopped = s.probe(port, "/", Duration::from_millis(500)).unwrap();
    assert_eq!(stopped.status, None, "{kind:?}: {stopped:?}");
    assert!(stopped.error.is_some());
}

/// The host's figures for resource alerts, through the agent, against
/// `df` and the kernel's own counters read here.
fn host_stats_through_the_agent(kind: Kind) {
    let case = Case::new(kind);
    let mut s = case.connect(SessionOptions::default());
    let first = s.host_stats().unwrap();
    // df rounds the percentage up.
    let df = std::process::Command::new("df")
        .args(["--output=pcent"])
        .arg(case.root())
        .output()
        .unwrap();
    let df: f64 = String::from_utf8(df.stdout)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    let disk = first.disk_used_percent.unwrap();
    assert!((disk.ceil() - df).abs() <= 1.0, "{kind:?}: {disk} vs df {df}");
    let memory = first.memory_used_percent.unwrap();
    assert!(memory > 0.0 && memory < 100.0, "{kind:?}: {first:?}");
    std::thread::sleep(Duration::from_millis(300));
    let second = s.host_stats().unwrap();
    let cpu = rollway_engine::cpu_percent(first.cpu.unwrap(), second.cpu.unwrap()).unwrap();
    assert!((0.0..=100.0).contains(&cpu), "{kind:?}: {cpu}");
}

#[test]
fn local_reads_host_stats_through_the_agent() {
    host_stats_through_the_agent(Kind::Local);
}

#[test]
fn ssh_reads_host_stats_through_the_agent() {
    host_stats_through_the_agent(Kind::Ssh);
}

#[test]
fn local_runs_the_service_through_the_agent() {
    service_through_the_agent(Kind::Local);
}

#[test]
fn ssh_runs_the_service_through_the_agent() {
    service_through_the_agent(Kind::Ssh);
}
