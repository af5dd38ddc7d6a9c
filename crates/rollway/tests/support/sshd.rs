//! A real OpenSSH server on loopback for tests (no fake): its own host key
//! and user key, `StrictModes no`, a free port, and an `ssh_config` for the
//! client (`-F`) whose `ProxyCommand` relays the connection through a tiny
//! Python relay that counts the bytes in each direction — so a test can
//! measure what crossed the wire. openssh-server is installed with apt-get
//! when missing; when sshd cannot run, the test fails (it is never skipped).
//!
//! Use it from a test file with `#[path = "support/sshd.rs"] mod sshd;`.
//! [`Sshd::start`] gives a server owned by the caller (stopped on drop);
//! [`Sshd::shared`] gives one per test binary, stopped by a watchdog when the
//! test process exits.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

/// Relays stdin/stdout to HOST:PORT and keeps "UP DOWN" byte counts in
/// OUTDIR/<pid>, updated before each chunk is forwarded.
const RELAY: &str = r#"import os, select, socket, sys
host, port, outdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((host, port))
path = os.path.join(outdir, str(os.getpid()))
up = down = 0
def record():
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d %d\n" % (up, down))
    os.replace(tmp, path)
record()
stdin_open = True
while True:
    watch = [s] + ([0] if stdin_open else [])
    r, _, _ = select.select(watch, [], [])
    if 0 in r:
        data = os.read(0, 65536)
        if data:
            up += len(data)
            record()
            s.sendall(data)
        else:
            stdin_open = False
            s.shutdown(socket.SHUT_WR)
    if s in r:
        data = s.recv(65536)
        if not data:
            break
        down += len(data)
        record()
        view = memoryview(data)
        while view:
            n = os.write(1, view)
            view = view[n:]
"#;

/// Bytes that crossed the relays, client to server (`up`) and back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wire {
    pub up: u64,
    pub down: u64,
}

/// One running sshd.
#[derive(Debug)]
pub struct Sshd {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub port: u16,
    pub user: String,
    /// The client config: pass as `ssh -F` (`[ssh] config`).
    pub client_config: PathBuf,
    /// sshd's log (`-E`): one "Accepted publickey" line per connection.
    pub log: PathBuf,
    counts: PathBuf,
    pid: u32,
}

fn run(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs openssh-server if sshd is missing; fails the test if it cannot.
fn ensure_installed() {
    if Path::new(SSHD).exists() {
        return;
    }
    let _ = run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "openssh-server"])
        .env("DEBIAN_FRONTEND", "noninteractive"));
    if !Path::new(SSHD).exists() {
        // Another test binary may hold the dpkg lock: give it time.
        let deadline = Instant::now() + Duration::from_secs(120);
        while !Path::new(SSHD).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    assert!(
        Path::new(SSHD).exists(),
        "{SSHD} is missing and `apt-get install -y openssh-server` did not install it; these tests need a real sshd"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn keygen(path: &Path) {
    assert!(
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", ""])
            .arg("-f")
            .arg(path)),
        "ssh-keygen failed for {}",
        path.display()
    );
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

impl Sshd {
    /// Starts a fresh sshd; fails the test when it cannot.
    pub fn start() -> Self {
        ensure_installed();
        let tmp = tempfile::Builder::new().prefix("rollway-sshd").tempdir().unwrap();
        let dir = tmp.path().to_owned();
        fs::create_dir_all("/run/sshd").unwrap();
        keygen(&dir.join("hostkey"));
        keygen(&dir.join("userkey"));
        fs::copy(dir.join("userkey.pub"), dir.join("authorized_keys")).unwrap();
        let counts = dir.join("wire");
        fs::create_dir(&counts).unwrap();
        fs::write(dir.join("relay.py"), RELAY).unwrap();
        let port = free_port();
        let user = whoami();
        let log = dir.join("sshd.log");
        let d = dir.display();
        fs::write(
            dir.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/hostkey\nAuthorizedKeysFile {d}/authorized_keys\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
                 PidFile {d}/sshd.pid\nLogLevel VERBOSE\nMaxSessions 100\nMaxStartups 100\n"
            ),
        )
        .unwrap();
        let client_config = dir.join("ssh_config");
        fs::write(
            &client_config,
            format!(
                "Host *\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {d}/userkey\n  IdentitiesOnly yes\n\
                 \x20 UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking no\n  LogLevel ERROR\n\
                 \x20 ProxyCommand /usr/bin/python3 {d}/relay.py %h %p {d}/wire\n"
            ),
        )
        .unwrap();
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-f")
            .arg(dir.join("sshd_config"))
            .arg("-E")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {SSHD}: {e}"));
        let pid = child.id();
        // The watchdog ends sshd and its sessions when this test process is
        // gone, even if nobody drops this value (a static, a panic).
        let mut watchdog = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {me} 2>/dev/null && kill -0 {pid} 2>/dev/null; do sleep 0.5; done; pkill -P {pid}; kill {pid} 2>/dev/null; true",
                me = std::process::id()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Both reaped by threads, so a dead sshd is not a zombie `kill -0` sees.
        let mut child = child;
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        std::thread::spawn(move || {
            let _ = watchdog.wait();
        });
        let sshd = Self {
            _tmp: tmp,
            dir,
            port,
            user,
            client_config,
            log,
            counts,
            pid,
        };
        sshd.wait_ready();
        sshd
    }

    /// One sshd for the whole test binary.
    pub fn shared() -> &'static Self {
        static SHARED: OnceLock<Sshd> = OnceLock::new();
        SHARED.get_or_init(Self::start)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline && Path::new(&format!("/proc/{}", self.pid)).exists(),
                "sshd did not come up on port {}: {}",
                self.port,
                fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The client works in batch mode with the test key.
        let ok = Command::new("ssh")
            .arg("-F")
            .arg(&self.client_config)
            .args(["-o", "BatchMode=yes", "127.0.0.1", "true"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "ssh to the test sshd failed: {}\nsshd log: {}",
            String::from_utf8_lossy(&ok.stderr),
            fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// The destination as a deployment names it.
    pub fn host_name(&self) -> String {
        format!("{}@127.0.0.1:{}", self.user, self.port)
    }

    /// Bytes relayed so far, over every connection through the relay.
    pub fn wire(&self) -> Wire {
        let mut w = Wire::default();
        for entry in fs::read_dir(&self.counts).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some() {
                continue;
            }
            let text = fs::read_to_string(&path).unwrap_or_default();
            let mut it = text.split_whitespace().map(|n| n.parse::<u64>().unwrap_or(0));
            w.up += it.next().unwrap_or(0);
            w.down += it.next().unwrap_or(0);
        }
        w
    }

    /// How many connections sshd accepted (one per ssh master, none for a
    /// session multiplexed over an existing one).
    pub fn connections(&self) -> usize {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches("Accepted publickey")
            .count()
    }

    /// The sshd's processes: the listener and its session children.
    fn children(&self) -> Vec<u32> {
        let mut kids = Vec::new();
        for entry in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // Fields after the command (which may hold spaces) end at ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(self.pid) {
                kids.push(pid);
            }
        }
        kids
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        for pid in self.children() {
            let _ = run(Command::new("kill").arg(pid.to_string()));
        }
        let _ = run(Command::new("kill").arg(self.pid.to_string()));
    }
}
