//! End-to-end tests of the host-side service machinery with the real
//! `rollway` binary (`rollway supervise`, `rollway exec`), a real HTTP app
//! (/usr/bin/python3) and Debian's real supervisord: starting, crash
//! restarts and their count, restarts with a new release, stopping the whole
//! process tree, surviving the deployer, the service's output, and the
//! service's clean environment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rollway_engine::{ServiceSpec, Supervisor, is_alive, supervisor_for};
use rollway_model::SupervisorKind;

#[path = "support/supervisord.rs"]
mod supervisord;
use supervisord::{Supervisord, ensure_supervisord};

const ROLLWAY: &str = env!("CARGO_BIN_EXE_rollway");

/// The app: serves $BODY on $PORT (and its environment on /env), prints to
/// stdout and stderr, and leaves a grandchild (`sleep`) in its process group
/// whose pid it appends to $GRANDCHILD_FILE.
const APP: &str = r#"import http.server, os, sys
body = os.environ.get("BODY", "").encode()
os.system("sleep 300 & echo $! >> " + os.environ["GRANDCHILD_FILE"])
print("serving", os.environ.get("BODY"), "on", os.environ["PORT"], flush=True)
print("a line on stderr", file=sys.stderr, flush=True)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        out = body
        if self.path == "/env":
            out = "\n".join(k + "=" + v for k, v in sorted(os.environ.items())).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// A host root with releases r1 (BODY=v1) and r2 (BODY=v2), `current` on r1.
struct Host {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn host() -> Host {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    for (release, body) in [("r1", "v1"), ("r2", "v2")] {
        let dir = root.join("releases").join(release);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("app.py"), APP).unwrap();
        fs::create_dir_all(root.join("envs")).unwrap();
        let env = format!(
            "BODY=\"{body}\"\nGRANDCHILD_FILE=\"{}\"\n",
            tmp.path().join(format!("grandchild-{release}")).display()
        );
        fs::write(root.join("envs").join(format!("{release}.env")), env).unwrap();
    }
    switch(&root, "r1");
    Host {
        port: free_port(),
        root,
        _tmp: tmp,
    }
}

fn switch(root: &Path, release: &str) {
    let tmp = root.join("current.tmp");
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(Path::new("releases").join(release), &tmp).unwrap();
    fs::rename(&tmp, root.join("current")).unwrap();
}

impl Host {
    fn spec(&self, kind: SupervisorKind, release: &str) -> ServiceSpec {
        ServiceSpec {
            name: String::from("hello"),
            project: String::new(),
            environment: String::new(),
            root: self.root.clone(),
            command: String::from("exec /usr/bin/python3 app.py"),
            port: self.port,
            env_file: self.root.join("envs").join(format!("{release}.env")),
            kind,
            supervisord_conf: None,
            supervisorctl: None,
            restart_cmd: None,
            restarts_cmd: None,
            rollway_exe: PathBuf::from(ROLLWAY),
        }
    }

    fn svc(&self) -> PathBuf {
        self.root.join(".rollway/svc/hello")
    }

    /// The newest grandchild the app of `release` left.
    fn grandchild(&self, release: &str) -> u32 {
        let f = self._tmp.path().join(format!("grandchild-{release}"));
        let text = fs::read_to_string(f).unwrap_or_default();
        text.lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or(0)
    }
}

impl Drop for Host {
    /// Grandchildren of a crashed app outlive it under supervisord (only a
    /// stop ends the group there): end them so no test leaves a process.
    fn drop(&mut self) {
        for release in ["r1", "r2"] {
            let f = self._tmp.path().join(format!("grandchild-{release}"));
            for pid in fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse::<u32>().ok())
            {
                if is_alive(pid) {
                    let _ = Command::new("kill").arg(pid.to_string()).status();
                }
            }
        }
    }
}

/// The body of `GET path`, or None when nothing answers.
fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.starts_with("HTTP/1.")
        .then(|| text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()))?
}

#[track_caller]
fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(st.success(), "kill -{sig} {pid}");
}

/// Stops the service when a test ends, passing or not.
struct StopOnDrop(Box<dyn Supervisor>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.stop();
    }
}

/// The behaviours every real supervisor must have, in one pass: start,
/// idempotent start, crash restart counted, restart into a new release
/// counted exactly once, output captured, stop ends the whole tree.
fn lifecycle(h: &Host, make: &dyn Fn(ServiceSpec) -> Box<dyn Supervisor>, kind: SupervisorKind) {
    let sup = StopOnDrop(make(h.spec(kind, "r1")));
    let sup = &sup.0;
    assert_eq!(sup.restarts().unwrap(), 0);
    sup.start().unwrap();
    // Counted by the time start() returns.
    assert_eq!(sup.restarts().unwrap(), 1);
    eventually("v1 answers", || get(h.port, "/").as_deref() == Some("v1"));
    let pid1 = sup.pid().unwrap().expect("a pid after start");
    assert!(is_alive(pid1));

    // Starting a running service changes nothing.
    sup.start().unwrap();
    assert_eq!(sup.restarts().unwrap(), 1);
    assert_eq!(sup.pid().unwrap(), Some(pid1));

    // A crash is relaunched and counted once.
    kill(pid1, "KILL");
    eventually("a new pid answers", || {
        sup.pid().unwrap().is_some_and(|p| p != pid1) && get(h.port, "/").as_deref() == Some("v1")
    });
    assert_eq!(sup.restarts().unwrap(), 2);

    // A restart runs the spec as it is now: the new release with its env file.
    switch(&h.root, "r2");
    let sup2 = make(h.spec(kind, "r2"));
    let before = sup2.restarts().unwrap();
    sup2.restart().unwrap();
    assert_eq!(
        sup2.restarts().unwrap(),
        before + 1,
        "the restart is counted by the time restart() returns"
    );
    eventually("v2 answers", || get(h.port, "/").as_deref() == Some("v2"));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sup2.restarts().unwrap(), before + 1, "one restart counts once");

    // The service's output, stdout and stderr, is in the log.
    eventually("the log holds the output", || {
        let lines = sup2.log_tail(50).unwrap();
        lines.iter().any(|l| l == &format!("serving v2 on {}", h.port)) && lines.iter().any(|l| l == "a line on stderr")
    });
    let log = fs::read_to_string(h.svc().join("output.log")).unwrap();
    assert!(log.contains(&format!("serving v1 on {}", h.port)), "{log}");

    // Stop ends the service and the grandchild it left in its group.
    let pid2 = sup2.pid().unwrap().expect("running");
    eventually("the grandchild is recorded", || {
        h.grandchild("r2") > 1 && is_alive(h.grandchild("r2"))
    });
    let grandchild = h.grandchild("r2");
    sup2.stop().unwrap();
    assert!(!is_alive(pid2), "service {pid2} survived stop");
    assert!(!is_alive(grandchild), "grandchild {grandchild} survived stop");
    assert_eq!(sup2.pid().unwrap(), None);
    assert_eq!(get(h.port, "/"), None);
    // Stopping a stopped service is fine; the count stays.
    sup2.stop().unwrap();
    assert_eq!(sup2.restarts().unwrap(), before + 1);
}

#[test]
fn rollway_supervisor_lifecycle() {
    let h = host();
    lifecycle(&h, &supervisor_for, SupervisorKind::Rollway);
    assert!(
        !h.svc().join("supervisor.pid").exists(),
        "the supervisor's pid file is removed on stop"
    );
    assert!(!h.svc().join("pid").exists());
    let log = fs::read_to_string(h.svc().join("output.log")).unwrap();
    assert!(
        log.contains("[rollway supervise] the service exited: signal: 9"),
        "{log}"
    );
}

#[test]
fn rollway_supervisor_stop_ends_the_supervisor_and_a_stale_pid_file_is_ignored() {
    let h = host();
    let sup = StopOnDrop(supervisor_for(h.spec(SupervisorKind::Rollway, "r1")));
    let sup = &sup.0;
    // Stale pid files from a supervisor long gone (pid 999999 does not exist).
    fs::create_dir_all(h.svc()).unwrap();
    fs::write(h.svc().join("supervisor.pid"), "999999\n").unwrap();
    fs::write(h.svc().join("pid"), "999998\n").unwrap();
    assert_eq!(sup.pid().unwrap(), None);
    sup.start().unwrap();
    eventually("v1 answers", || get(h.port, "/").as_deref() == Some("v1"));
    let spid: u32 = fs::read_to_string(h.svc().join("supervisor.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(spid, 999_999);
    assert!(is_alive(spid));
    sup.stop().unwrap();
    assert!(!is_alive(spid), "the supervisor {spid} exits on stop");
}

/// A release whose env file is malformed is refused by the exec wrapper:
/// `start()` says so with the file and line and no value, nothing is
/// counted, and a restart after the file is fixed runs the service.
#[test]
fn rollway_supervisor_reports_a_refused_start() {
    let h = host();
    let env_file = h.root.join("envs/r1.env");
    let good = fs::read_to_string(&env_file).unwrap();
    fs::write(&env_file, format!("TOKEN=\"s3cr3t-canary-77\"\nNOT VALID\n{good}")).unwrap();
    let sup = StopOnDrop(supervisor_for(h.spec(SupervisorKind::Rollway, "r1")));
    let sup = &sup.0;
    let e = sup.start().unwrap_err().to_string();
    assert!(
        e.starts_with("service hello: the exec wrapper refused to start the service: "),
        "{e}"
    );
    assert!(e.contains(&format!("{}:2:", env_file.display())), "{e}");
    assert!(!e.contains("s3cr3t"), "{e}");
    assert_eq!(sup.restarts().unwrap(), 0);
    fs::write(&env_file, good).unwrap();
    sup.restart().unwrap();
    assert_eq!(sup.restarts().unwrap(), 1);
    eventually("v1 answers", || get(h.port, "/").as_deref() == Some("v1"));
}

/// `start()` called from a process that then dies (SIGINT to its process
/// group as a terminal's Ctrl-C would, then SIGKILL): the supervisor runs in
/// a session of its own and keeps the service up, without a restart.
#[test]
fn rollway_supervisor_outlives_its_parent() {
    if let Some(root) = std::env::var_os("ROLLWAY_SUPERVISOR_TEST_PARENT") {
        // The parent process: starts the service and waits to be killed.
        let port: u16 = std::env::var("ROLLWAY_SUPERVISOR_TEST_PORT").unwrap().parse().unwrap();
        let h = Host {
            _tmp: tempfile::tempdir().unwrap(),
            root: PathBuf::from(root),
            port,
        };
        supervisor_for(h.spec(SupervisorKind::Rollway, "r1")).start().unwrap();
        println!("STARTED");
        std::io::stdout().flush().unwrap();
        std::thread::sleep(Duration::from_secs(120));
        return;
    }
    let h = host();
    let parent = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "rollway_supervisor_outlives_its_parent",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ROLLWAY_SUPERVISOR_TEST_PARENT", &h.root)
        .env("ROLLWAY_SUPERVISOR_TEST_PORT", h.port.to_string())
        .process_group(0)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut parent = KillOnDrop(parent);
    let parent = &mut parent.0;
    let sup = StopOnDrop(supervisor_for(h.spec(SupervisorKind::Rollway, "r1")));
    let sup = &sup.0;
    let mut out = parent.stdout.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    while !seen.contains("STARTED") {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "the parent ended before starting: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    eventually("v1 answers", || get(h.port, "/").as_deref() == Some("v1"));
    let pid = sup.pid().unwrap().unwrap();
    let group = parent.id();
    let st = Command::new("kill")
        .args(["-INT", "--", &format!("-{group}")])
        .status()
        .unwrap();
    assert!(st.success());
    kill(parent.id(), "KILL");
    parent.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        get(h.port, "/").as_deref(),
        Some("v1"),
        "the service answers after its starter died"
    );
    assert_eq!(sup.pid().unwrap(), Some(pid));
    assert_eq!(sup.restarts().unwrap(), 1, "nothing restarted");
    sup.stop().unwrap();
    assert!(!is_alive(pid));
}

/// Kills a helper process when a test ends, passing or not.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn supervisord_lifecycle() {
    let h = host();
    let sd = Supervisord::start();
    let conf_d = sd.conf_d();
    let ctl = sd.ctl();
    let make = move |mut s: ServiceSpec| {
        s.supervisord_conf = Some(conf_d.clone());
        s.supervisorctl = Some(ctl.clone());
        supervisor_for(s)
    };
    lifecycle(&h, &make, SupervisorKind::Supervisord);
    let section = fs::read_to_string(sd.conf_d().join("hello.conf")).unwrap();
    assert!(section.contains("[program:hello]\n"), "{section}");
    assert!(section.contains(&format!(
        "command={ROLLWAY} exec --spec {}",
        h.svc().join("spec.json").display()
    )));
    let log = fs::read_to_string(sd.dir.path().join("supervisord.log")).unwrap();
    assert_eq!(log.matches("spawned: 'hello'").count(), 3, "{log}");
}

#[test]
fn supervisord_errors_name_the_fix() {
    let h = host();
    let mut spec = h.spec(SupervisorKind::Supervisord, "r1");
    let e = supervisor_for(spec.clone()).start().unwrap_err().to_string();
    assert!(e.contains("needs [service] supervisord_conf"), "{e}");
    spec.supervisord_conf = Some(h.root.join("no-such-dir"));
    let e = supervisor_for(spec.clone()).start().unwrap_err().to_string();
    assert!(e.contains("is not a directory") && e.contains("[include]"), "{e}");
    // A supervisorctl that reaches no supervisord.
    fs::create_dir_all(h.root.join("conf.d")).unwrap();
    spec.supervisord_conf = Some(h.root.join("conf.d"));
    spec.supervisorctl = Some(format!("supervisorctl -s unix://{}/none.sock", h.root.display()));
    ensure_supervisord();
    let e = supervisor_for(spec).start().unwrap_err().to_string();
    assert!(e.starts_with("service hello: `supervisorctl -s unix://"), "{e}");
    assert!(e.contains("check that supervisord runs"), "{e}");
}

// ---- the exec wrapper ----

fn run_exec(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(ROLLWAY)
        .arg("exec")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("AWS_SECRET_ACCESS_KEY", "canary-4f1e9c-deployer-secret")
        .env("TERM", "xterm")
        .env("LANG", "C.UTF-8")
        .env("HOME", "/home/deployer")
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap()
}

#[test]
fn exec_wrapper_gives_a_clean_environment_and_counts_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let release = tmp.path().join("release");
    fs::create_dir_all(&release).unwrap();
    let env_file = tmp.path().join("r.env");
    fs::write(
        &env_file,
        "DATABASE_URL=\"postgres://db/app\"\nGREETING='hello world'\n",
    )
    .unwrap();
    let counter = tmp.path().join("starts");
    let (e, c, r) = (
        env_file.display().to_string(),
        counter.display().to_string(),
        release.display().to_string(),
    );
    let args = [
        "--env-file",
        &e,
        "--port",
        "4321",
        "--dir",
        &r,
        "--counter",
        &c,
        "--",
        "sh",
        "-c",
        "env; echo cwd=$(pwd -P)",
    ];
    let out = run_exec(&args, tmp.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let mut vars: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.starts_with("cwd=") && !l.starts_with("PWD=") && !l.starts_with("SHLVL=") && !l.starts_with('_'))
        .collect();
    vars.sort_unstable();
    // Exactly the allow-listed basics, the file's values and PORT; the
    // caller's secret is not there.
    assert_eq!(
        vars,
        [
            "DATABASE_URL=postgres://db/app",
            "GREETING=hello world",
            "HOME=/home/deployer",
            "LANG=C.UTF-8",
            "PATH=/usr/bin:/bin",
            "PORT=4321"
        ],
        "{stdout}"
    );
    assert!(!stdout.contains("canary-4f1e9c"), "{stdout}");
    assert!(
        stdout.contains(&format!("cwd={}\n", fs::canonicalize(&release).unwrap().display())),
        "{stdout}"
    );
    assert_eq!(fs::read_to_string(&counter).unwrap(), "1\n");
    assert!(run_exec(&args, tmp.path()).status.success());
    assert_eq!(fs::read_to_string(&counter).unwrap(), "2\n");

    // A malformed env file: refused, where it is said, no value shown, not counted.
    fs::write(&env_file, "OK=1\nTOKEN=\"s3cr3t-value\nBAD LINE\n").unwrap();
    let out = run_exec(&args, tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("{e}:2:")) || stderr.contains(&format!("{e}:3:")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("s3cr3t") && !String::from_utf8_lossy(&out.stdout).contains("s3cr3t"),
        "{stderr}"
    );
    assert_eq!(fs::read_to_string(&counter).unwrap(), "2\n");

    // A missing directory is refused the same way.
    fs::write(&env_file, "OK=1\n").unwrap();
    let missing = tmp.path().join("gone").display().to_string();
    let args = [
        "--env-file",
        &e,
        "--port",
        "1",
        "--dir",
        &missing,
        "--counter",
        &c,
        "--",
        "true",
    ];
    let out = run_exec(&args, tmp.path());
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot start in"),
        "{out:?}"
    );
    assert_eq!(fs::read_to_string(&counter).unwrap(), "2\n");
}

#[test]
fn exec_wrapper_runs_a_service_spec() {
    let h = host();
    let mut spec = h.spec(SupervisorKind::Rollway, "r2");
    spec.command = String::from("echo \"$BODY on $PORT in $(basename $(pwd -P))\"; env | grep -c SECRET || true");
    let spec_path = h.svc().join("spec.json");
    fs::create_dir_all(h.svc()).unwrap();
    spec.save(&spec_path).unwrap();
    let out = run_exec(&["--spec", &spec_path.display().to_string()], &h.root);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("v2 on {} in r1\n0\n", h.port)
    );
    assert_eq!(fs::read_to_string(h.svc().join("starts")).unwrap(), "1\n");
    let out = run_exec(&["--spec", "/nonexistent/spec.json"], &h.root);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the service spec /nonexistent/spec.json"));
}
