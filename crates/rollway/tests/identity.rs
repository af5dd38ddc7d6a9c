//! A service's identity on a host, end to end with the real binary, a real
//! sshd on loopback and Debian's real supervisord (issue 9):
//!
//! - two environments of one project on one host get their own service
//!   (Rollway's state directory, supervisord program): both answer, a
//!   redeploy or a stop of one leaves the other's process alone, `status`
//!   tells them apart;
//! - a boot check passes only when the answer comes from the process Rollway
//!   just started: a port held by another environment's process under
//!   another supervisor fails the deploy, naming the port and the process;
//!   a supervisor change stops the service under the old supervisor first;
//!   a service left under the old project-only name is retired;
//! - a crash loop fails the boot check within three restarts, with the
//!   app's last output (masked) in the error;
//! - `[environments.X]` overrides `supervisor`, `port` and `start`.
//!
//! systemd cannot run on these machines (no systemd as PID 1), so for it
//! only the rendered unit names are checked (`systemd_unit_names_...`).
//!
//! The app is a small Python HTTP server answering "WHO VERSION FLAVOR PID"
//! (WHO from the environment's `vars`, VERSION and modes from `mode.txt` in
//! the artifact, FLAVOR from its first argument), printing one line when it
//! starts; in mode `crashloop` it exits 0.2 s after starting instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/sshd.rs"]
mod sshd;

#[path = "support/supervisord.rs"]
mod supervisord;

mod common;

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::deploy::free_ports;
use common::{Backend, Project, Run};
use rollway_engine::{ServiceSpec, is_alive, service_name, supervisor_for};
use rollway_model::SupervisorKind;
use serde_json::Value;
use sshd::Sshd;
use supervisord::Supervisord;

const PROJECT: &str = "identity";

const APP: &str = r#"import http.server, os, sys, time
HERE = os.path.dirname(os.path.abspath(__file__))
MODE = open(os.path.join(HERE, "mode.txt")).read().split()
WHO = os.environ.get("WHO", "?")
FLAVOR = sys.argv[1] if len(sys.argv) > 1 else "plain"
print("app %s %s starting as pid %d, token %s" % (WHO, MODE[0], os.getpid(), os.environ.get("API_KEY", "-")), flush=True)
if "crashloop" in MODE:
    time.sleep(0.2)
    sys.exit(3)
BODY = ("%s %s %s %d\n" % (WHO, MODE[0], FLAVOR, os.getpid())).encode()

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, fmt, *args):
        pass

http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#;

/// A secret the crash-loop app prints; it must show only masked.
const CANARY: &str = "canary-Zx81-identity-secret-4471";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Local,
    Ssh,
}

/// One environment of the project: where it runs and its extra keys.
#[derive(Debug, Clone)]
struct Env {
    name: &'static str,
    root: PathBuf,
    /// Its own `port` key, or None for `[service] port`.
    port: Option<u16>,
    /// Its own `supervisor` key, or None for `[service] supervisor` (rollway).
    kind: Option<SupervisorKind>,
    /// On this machine even when the fixture has an sshd.
    local: bool,
    /// Extra lines for its `[environments.NAME]` table.
    extra: String,
}

impl Env {
    fn kind(&self) -> SupervisorKind {
        self.kind.unwrap_or(SupervisorKind::Rollway)
    }
}

/// A project whose environments all share one host (local or one sshd),
/// and the supervisord they may use.
struct Fixture {
    project: Project,
    target: Target,
    sshd: Option<Sshd>,
    supervisord: Option<Supervisord>,
    envs: Vec<Env>,
    /// `[service] port` (default: one nobody uses), and `[health]`
    /// retries and interval.
    service_port: u16,
    retries: u32,
    interval: &'static str,
    /// Environments to stop when the test ends.
    started: std::cell::RefCell<Vec<&'static str>>,
}

/// The body of GET / on 127.0.0.1:PORT, or None when nothing answers.
fn get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.starts_with("HTTP/1.")
        .then(|| buf.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()))?
}

/// What the app on `port` says: (who, version, flavor, pid).
fn answer(port: u16) -> Option<(String, String, String, u32)> {
    let body = get(port)?;
    let w: Vec<&str> = body.split_whitespace().collect();
    match w.as_slice() {
        [who, version, flavor, pid] => Some((
            (*who).to_owned(),
            (*version).to_owned(),
            (*flavor).to_owned(),
            pid.parse().ok()?,
        )),
        _ => panic!("unexpected answer on port {port}: {body:?}"),
    }
}

fn pid_on(port: u16) -> u32 {
    answer(port)
        .unwrap_or_else(|| panic!("nothing answers on port {port}"))
        .3
}

#[track_caller]
fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Fixture {
    fn new(target: Target, with_supervisord: bool) -> Self {
        Self {
            project: Project::new(Backend::Sqlite),
            target,
            sshd: (target == Target::Ssh).then(Sshd::start),
            supervisord: with_supervisord.then(Supervisord::start),
            envs: Vec::new(),
            service_port: free_ports(1)[0],
            retries: 50,
            interval: "200ms",
            started: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// Adds an environment with its own root and port under `kind`.
    fn env(&mut self, name: &'static str, port: u16, kind: SupervisorKind) -> &mut Env {
        let root = self.project.path().join(format!("host-{name}"));
        self.envs.push(Env {
            name,
            root,
            port: Some(port),
            kind: Some(kind),
            local: false,
            extra: String::new(),
        });
        self.envs.last_mut().unwrap()
    }

    fn get_env(&self, name: &str) -> &Env {
        self.envs.iter().find(|e| e.name == name).unwrap()
    }

    fn supervisord(&self) -> &Supervisord {
        self.supervisord.as_ref().expect("the fixture has a supervisord")
    }

    /// The keys that put an environment under `kind`.
    fn supervisor_keys(&self, kind: SupervisorKind) -> String {
        match kind {
            SupervisorKind::Supervisord => format!(
                "supervisor = \"supervisord\"\nsupervisord_conf = \"{}\"\nsupervisorctl = \"{}\"\n",
                self.supervisord().conf_d().display(),
                self.supervisord().ctl()
            ),
            other => format!("supervisor = \"{other}\"\n"),
        }
    }

    /// Writes rollway.toml: `[service]` defaults (rollway, a port nobody
    /// uses), every environment overriding `port` and `supervisor`.
    fn configure(&self) {
        let host = match &self.sshd {
            Some(s) => format!("\"{}\"", s.host_name()),
            None => "\"local\"".to_owned(),
        };
        let ssh = match &self.sshd {
            Some(s) => format!("[ssh]\nconfig = \"{}\"\n", s.client_config.display()),
            None => String::new(),
        };
        let mut envs = String::new();
        for e in &self.envs {
            let host = if e.local { "\"local\"" } else { host.as_str() };
            let port = e.port.map(|p| format!("port = {p}\n")).unwrap_or_default();
            let sup = e.kind.map(|k| self.supervisor_keys(k)).unwrap_or_default();
            envs.push_str(&format!(
                "[environments.{name}]\nkind = \"staging\"\nhosts = [{host}]\nroot = \"{root}\"\n{port}vars = {{ WHO = \"{name}\" }}\n{sup}{extra}\n",
                name = e.name,
                root = e.root.display(),
                extra = e.extra,
            ));
        }
        let text = format!(
            r#"project = "{PROJECT}"

[build]
command = "rm -rf dist && mkdir dist && cp -R app/. dist/"
output = "dist"

[service]
start = "exec /usr/bin/python3 server.py"
port = {service_port}

[health]
path = "/"
interval = "{interval}"
timeout = "2s"
retries = {retries}
window_failures = 2
stability_window = "1s"

[variables.API_KEY]
type = "string"
secret = true

{ssh}
{envs}"#,
            service_port = self.service_port,
            interval = self.interval,
            retries = self.retries,
        );
        self.project.write("rollway.toml", &text);
        fs::create_dir_all(self.project.path().join("app")).unwrap();
        self.project.write("app/server.py", APP);
    }

    fn mode(&self, mode: &str) {
        self.project.write("app/mode.txt", &format!("{mode}\n"));
    }

    fn run(&self, args: &[&str]) -> Run {
        self.project.run_full(args, "", &[("ROLLWAY_LEASE", "2s")])
    }

    fn deploy(&self, env: &'static str) -> Run {
        if !self.started.borrow().contains(&env) {
            self.started.borrow_mut().push(env);
        }
        self.run(&["deploy", env])
    }

    #[track_caller]
    fn deploy_ok(&self, env: &'static str) -> Run {
        let r = self.deploy(env);
        assert_eq!(r.code, 0, "deploy {env} under {:?}: {r:#?}", self.target);
        r
    }

    /// `history ENV`, newest first.
    fn history(&self, env: &str) -> Vec<Value> {
        self.run(&["--json", "history", env])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .clone()
    }

    /// The service's name on the host, as the agent makes it.
    fn name(&self, env: &str) -> String {
        service_name(PROJECT, env, &self.get_env(env).root)
    }

    /// The service's pid as its supervisor records it.
    fn supervised_pid(&self, env: &str) -> Option<u32> {
        let e = self.get_env(env);
        match e.kind() {
            SupervisorKind::Rollway => fs::read_to_string(e.root.join(".rollway/svc").join(self.name(env)).join("pid"))
                .ok()?
                .trim()
                .parse()
                .ok(),
            SupervisorKind::Supervisord => self.ctl_pid(&self.name(env)),
            other => panic!("no pid for {other}"),
        }
    }

    /// `supervisorctl pid NAME`: the pid, or None when stopped or unknown.
    fn ctl_pid(&self, name: &str) -> Option<u32> {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{} pid {name}", self.supervisord().ctl()))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .ok()
            .filter(|p| *p > 0)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for env in self.started.borrow().iter() {
            let r = self.run(&["stop", env]);
            if r.code != 0 {
                eprintln!("rollway stop {env}: {r:#?}");
            }
        }
    }
}

// ------------------------------------------------- two environments, one host

/// Two environments of one project on one host under `kind`: each its own
/// service; a redeploy and a stop of one leave the other's process alone.
fn two_environments(kind: SupervisorKind, target: Target) {
    let mut f = Fixture::new(target, kind == SupervisorKind::Supervisord);
    let ports = free_ports(2);
    f.env("staging", ports[0], kind);
    f.env("remote", ports[1], kind);
    f.configure();
    f.mode("v1");
    f.deploy_ok("staging");
    f.deploy_ok("remote");

    let staging = answer(ports[0]).expect("staging answers");
    let remote = answer(ports[1]).expect("remote answers");
    assert_eq!((staging.0.as_str(), staging.1.as_str()), ("staging", "v1"));
    assert_eq!((remote.0.as_str(), remote.1.as_str()), ("remote", "v1"));
    assert_ne!(staging.3, remote.3);

    // Each service under its own name, which its supervisor knows by its pid.
    let (ns, nr) = (f.name("staging"), f.name("remote"));
    assert!(
        ns.starts_with("identity-staging-") && nr.starts_with("identity-remote-"),
        "{ns} {nr}"
    );
    for (env, pid) in [("staging", staging.3), ("remote", remote.3)] {
        assert_eq!(f.supervised_pid(env), Some(pid), "{env} under {kind}");
        let svc: Vec<String> = fs::read_dir(f.get_env(env).root.join(".rollway/svc"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(svc, [f.name(env)], "{env}: one state directory, its own");
    }
    if kind == SupervisorKind::Supervisord {
        let mut sections: Vec<String> = fs::read_dir(f.supervisord().conf_d())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        sections.sort();
        let mut want = vec![format!("{nr}.conf"), format!("{ns}.conf")];
        want.sort();
        assert_eq!(sections, want);
    }

    // Redeploy staging: a new process there, remote's untouched.
    f.mode("v2");
    f.deploy_ok("staging");
    let staging2 = answer(ports[0]).expect("staging answers v2");
    assert_eq!(staging2.1, "v2");
    assert_ne!(staging2.3, staging.3);
    assert_eq!(answer(ports[1]), Some(remote.clone()), "remote's process is unchanged");

    // `status` tells them apart: each environment's current release is its own.
    let status = f.run(&["--json", "status"]).ok().json();
    for env in ["staging", "remote"] {
        let item = status
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["environment"] == env)
            .unwrap_or_else(|| panic!("{env} missing from {status:#}"));
        let newest = &f.history(env)[0];
        assert_eq!(newest["deployment"]["lifecycle"]["status"], "succeeded");
        assert_eq!(item["current"]["id"], newest["deployment"]["id"], "{status:#}");
    }
    let h = f.history("staging");
    assert_eq!(h.len(), 2, "staging was deployed twice");
    assert_eq!(f.history("remote").len(), 1, "remote once");

    // Stop staging: remote still answers, with the same process.
    f.run(&["stop", "staging"]).ok();
    eventually("staging stops answering", || get(ports[0]).is_none());
    assert!(!is_alive(staging2.3), "staging's process ended");
    assert_eq!(answer(ports[1]), Some(remote), "remote still answers");
}

#[test]
fn two_environments_rollway_ssh() {
    two_environments(SupervisorKind::Rollway, Target::Ssh);
}

#[test]
fn two_environments_supervisord_ssh() {
    two_environments(SupervisorKind::Supervisord, Target::Ssh);
}

#[test]
fn two_environments_supervisord_local() {
    two_environments(SupervisorKind::Supervisord, Target::Local);
}

// ------------------------------------------------- who answered the boot check

/// `remote` runs under Rollway's own supervisor on port P; `staging`, under
/// supervisord, is configured on the same port. Its new process cannot bind
/// P, and remote's answers the probe: the deploy must fail, never pass,
/// naming the port and remote's process.
#[test]
fn port_held_under_another_supervisor_fails_the_deploy() {
    let mut f = Fixture::new(Target::Local, true);
    let port = free_ports(1)[0];
    f.env("remote", port, SupervisorKind::Rollway);
    f.env("staging", port, SupervisorKind::Supervisord);
    f.configure();
    f.mode("v1");
    f.deploy_ok("remote");
    let holder = pid_on(port);

    let r = f.deploy("staging");
    assert_eq!(r.code, 1, "the deploy must fail: {r:#?}");
    for needle in [
        format!("port {port} is held by pid {holder} ("),
        String::from("/usr/bin/python3 server.py"),
        String::from("not by the service rollway just started"),
    ] {
        assert!(r.stderr.contains(&needle), "stderr lacks {needle:?}: {}", r.stderr);
    }
    assert!(!r.stderr.contains("boot check passed") && !r.stdout.contains("boot check passed"));
    let newest = &f.history("staging")[0];
    assert_ne!(newest["deployment"]["lifecycle"]["status"], "succeeded", "{newest:#}");
    let reason = newest["deployment"]["failure_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!("port {port} is held by pid {holder}")),
        "{reason}"
    );
    // remote's process was left alone and still answers.
    assert_eq!(answer(port).map(|a| (a.0, a.3)), Some(("remote".into(), holder)));
}

/// One environment moves from Rollway's supervisor to supervisord and back:
/// each deploy stops the service under the supervisor that ran it first,
/// so the new one gets the port and the boot check passes on its answer.
#[test]
fn supervisor_change_stops_the_old_service_first() {
    let mut f = Fixture::new(Target::Local, true);
    let port = free_ports(1)[0];
    f.env("staging", port, SupervisorKind::Rollway);
    f.configure();
    f.mode("v1");
    f.deploy_ok("staging");
    let first = pid_on(port);
    let svc = f.get_env("staging").root.join(".rollway/svc").join(f.name("staging"));
    let supervise: u32 = fs::read_to_string(svc.join("supervisor.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(is_alive(supervise));

    f.envs[0].kind = Some(SupervisorKind::Supervisord);
    f.configure();
    let r = f.deploy_ok("staging");
    let second = pid_on(port);
    assert_ne!(second, first);
    assert!(!is_alive(first), "the old service ended");
    assert!(!is_alive(supervise), "rollway supervise ended");
    assert_eq!(f.ctl_pid(&f.name("staging")), Some(second), "supervisord runs it now");
    assert!(
        r.stdout.contains(&format!("from pid {second}")) || r.stderr.contains(&format!("from pid {second}")),
        "the boot check names the new pid: {r:#?}"
    );

    f.envs[0].kind = Some(SupervisorKind::Rollway);
    f.configure();
    f.deploy_ok("staging");
    let third = pid_on(port);
    assert_ne!(third, second);
    assert!(!is_alive(second));
    assert_eq!(f.ctl_pid(&f.name("staging")), None, "supervisord no longer has it");
    assert!(
        !f.supervisord()
            .conf_d()
            .join(format!("{}.conf", f.name("staging")))
            .exists(),
        "its program section is gone"
    );
    assert_eq!(f.supervised_pid("staging"), Some(third));
}

/// A service started under the old name (the project alone) before names
/// held the environment keeps the port. `rollway stop` stops it (it is what
/// runs the environment); after it is started again, the next deploy stops
/// it and drops its state, then passes with its own process.
#[test]
fn a_service_under_the_old_name_is_retired() {
    let mut f = Fixture::new(Target::Local, false);
    let port = free_ports(1)[0];
    f.env("staging", port, SupervisorKind::Rollway);
    f.configure();
    f.mode("v1");
    f.deploy_ok("staging");
    f.run(&["stop", "staging"]).ok();
    let root = f.get_env("staging").root.clone();
    let current = fs::read_link(root.join("current")).unwrap();
    let release = current.file_name().unwrap().to_string_lossy().into_owned();
    let legacy = ServiceSpec {
        name: PROJECT.into(),
        project: String::new(),
        environment: String::new(),
        root: root.clone(),
        command: "exec /usr/bin/python3 server.py".into(),
        port,
        env_file: root.join("envs").join(format!("{release}.env")),
        kind: SupervisorKind::Rollway,
        supervisord_conf: None,
        supervisorctl: None,
        restart_cmd: None,
        restarts_cmd: None,
        rollway_exe: PathBuf::from(env!("CARGO_BIN_EXE_rollway")),
    };
    let old_dir = root.join(".rollway/svc").join(PROJECT);
    for op in ["stop", "deploy"] {
        let old = supervisor_for(legacy.clone());
        old.start().unwrap();
        eventually("the old-named service answers", || get(port).is_some());
        let old_pid = pid_on(port);
        assert!(old_dir.is_dir());

        let r = f.run(&[op, "staging"]);
        if r.code != 0 {
            let _ = old.stop();
        }
        assert_eq!(r.code, 0, "{op}: {r:#?}");
        assert!(!is_alive(old_pid), "{op}: the old-named service was stopped");
        assert!(!old_dir.exists(), "{op}: its state was removed");
        if op == "stop" {
            assert_eq!(get(port), None, "nothing answers after stop");
        } else {
            let new_pid = pid_on(port);
            assert_ne!(new_pid, old_pid);
            assert_eq!(f.supervised_pid("staging"), Some(new_pid));
        }
    }
}

/// The bug's own state under supervisord: `staging` and then `remote` were
/// deployed as `[program:identity]`, so the one section now runs remote's
/// spec, and both roots hold an `identity` record. Deploying staging drops
/// staging's old record but leaves the section alone (it is remote's) and
/// remote keeps running; deploying remote then retires the section.
#[test]
fn old_supervisord_program_is_retired_only_by_its_own_root() {
    let mut f = Fixture::new(Target::Local, true);
    let ports = free_ports(2);
    f.env("staging", ports[0], SupervisorKind::Supervisord);
    f.env("remote", ports[1], SupervisorKind::Supervisord);
    f.configure();
    f.mode("v1");
    let mut legacy = Vec::new();
    for env in ["staging", "remote"] {
        // A release and env file to run, then the service under its old name.
        f.deploy_ok(env);
        f.run(&["stop", env]).ok();
        let e = f.get_env(env);
        let release = fs::read_link(e.root.join("current")).unwrap();
        let release = release.file_name().unwrap().to_string_lossy().into_owned();
        let spec = ServiceSpec {
            name: PROJECT.into(),
            project: String::new(),
            environment: String::new(),
            root: e.root.clone(),
            command: "exec /usr/bin/python3 server.py".into(),
            port: e.port.unwrap(),
            env_file: e.root.join("envs").join(format!("{release}.env")),
            kind: SupervisorKind::Supervisord,
            supervisord_conf: Some(f.supervisord().conf_d()),
            supervisorctl: Some(f.supervisord().ctl()),
            restart_cmd: None,
            restarts_cmd: None,
            rollway_exe: PathBuf::from(env!("CARGO_BIN_EXE_rollway")),
        };
        supervisor_for(spec.clone()).restart().unwrap();
        legacy.push(spec);
    }
    let section = f.supervisord().conf_d().join(format!("{PROJECT}.conf"));
    let remote_spec = f
        .get_env("remote")
        .root
        .join(".rollway/svc")
        .join(PROJECT)
        .join("spec.json");
    assert!(
        fs::read_to_string(&section)
            .unwrap()
            .contains(&remote_spec.display().to_string()),
        "the old section runs remote's spec"
    );
    eventually("remote's old program answers", || get(ports[1]).is_some());
    let remote_old = pid_on(ports[1]);
    assert_eq!(f.ctl_pid(PROJECT), Some(remote_old));

    f.deploy_ok("staging");
    assert_eq!(answer(ports[0]).map(|a| a.0), Some("staging".into()));
    assert!(
        !f.get_env("staging").root.join(".rollway/svc").join(PROJECT).exists(),
        "staging's old record is gone"
    );
    assert!(section.exists(), "remote's section is left alone");
    assert_eq!(f.ctl_pid(PROJECT), Some(remote_old), "and remote's old program runs on");
    assert_eq!(pid_on(ports[1]), remote_old);

    f.deploy_ok("remote");
    let remote_new = pid_on(ports[1]);
    assert_ne!(remote_new, remote_old);
    assert!(!section.exists(), "remote retired the old section");
    assert_eq!(f.ctl_pid(PROJECT), None, "supervisord dropped the old program");
    assert_eq!(f.supervised_pid("remote"), Some(remote_new));
    assert_eq!(f.supervised_pid("staging"), Some(pid_on(ports[0])));
}

// ------------------------------------------------------------- crash loop

/// The app exits 0.2 s after each start (printing a line with a secret):
/// with 50 attempts a second apart, the boot check must still fail within
/// three restarts, with the app's last output, masked, in the error.
fn crash_loop(kind: SupervisorKind) {
    let mut f = Fixture::new(Target::Local, kind == SupervisorKind::Supervisord);
    f.retries = 50;
    f.interval = "1s";
    let port = free_ports(1)[0];
    f.env("staging", port, kind);
    f.configure();
    f.run(&["secrets", "init"]).ok();
    f.project
        .run_with_stdin(&["secrets", "set", "staging", "API_KEY"], CANARY)
        .ok();
    f.mode("v1 crashloop");
    let r = f.deploy("staging");
    assert_eq!(r.code, 1, "{kind}: {r:#?}");
    let re = regex::Regex::new(r"the service restarted (\d+) times? before it answered").unwrap();
    let seen: u64 = re
        .captures(&r.stderr)
        .unwrap_or_else(|| panic!("{kind}: no restart count in {}", r.stderr))[1]
        .parse()
        .unwrap();
    assert!((1..=3).contains(&seen), "{kind}: {seen} restarts seen before failing");
    assert!(
        r.stderr.contains("app staging v1 starting as pid"),
        "{kind}: the app's output is in the error: {}",
        r.stderr
    );
    assert!(r.stderr.contains("token ****"), "{kind}: masked: {}", r.stderr);
    let newest = &f.history("staging")[0];
    let all = newest.to_string();
    for text in [&r.stdout, &r.stderr, &all] {
        assert!(!text.contains(CANARY), "{kind}: the secret leaked: {text}");
    }
    assert_ne!(newest["deployment"]["lifecycle"]["status"], "succeeded");
    let hosts: Vec<&Value> = newest["verifications"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|v| v["hosts"].as_array().into_iter().flatten())
        .collect();
    assert_eq!(hosts.len(), 1, "{newest:#}");
    assert_eq!(hosts[0]["restarts_observed"], seen, "{newest:#}");
    assert_eq!(hosts[0]["result"], "FAIL");
}

#[test]
fn crash_loop_fails_the_boot_check_rollway() {
    crash_loop(SupervisorKind::Rollway);
}

#[test]
fn crash_loop_fails_the_boot_check_supervisord() {
    crash_loop(SupervisorKind::Supervisord);
}

// ------------------------------------------------ per-environment [service]

/// `[service]` says rollway, port P0, `server.py plain`; `staging` on an
/// SSH host overrides supervisor (supervisord), port and start; `dev`
/// (local) keeps the defaults. deploy, logs, restart and stop use each
/// environment's own values.
#[test]
fn environment_overrides_supervisor_port_and_start_over_ssh() {
    let mut f = Fixture::new(Target::Ssh, true);
    let ports = free_ports(2);
    let default_port = ports[1];
    f.service_port = default_port;
    f.env("staging", ports[0], SupervisorKind::Supervisord).extra =
        String::from("start = \"exec /usr/bin/python3 server.py overridden\"\n");
    // `dev`: the [service] values (no port, supervisor or start of its own), on this machine.
    let dev = f.env("dev", 0, SupervisorKind::Rollway);
    dev.port = None;
    dev.kind = None;
    dev.local = true;
    let dev_root = dev.root.clone();
    f.configure();
    f.run(&["config", "check"]).ok();
    f.mode("v1");

    f.deploy_ok("staging");
    f.deploy_ok("dev");
    let staging = answer(ports[0]).expect("staging answers on its own port");
    assert_eq!(
        (staging.0.as_str(), staging.2.as_str()),
        ("staging", "overridden"),
        "staging runs its own start command"
    );
    assert_eq!(f.ctl_pid(&f.name("staging")), Some(staging.3), "under supervisord");
    let dev = answer(default_port).expect("dev answers on [service] port");
    assert_eq!((dev.0.as_str(), dev.2.as_str()), ("dev", "plain"));
    let dev_name = service_name(PROJECT, "dev", &dev_root);
    let dev_pid: u32 = fs::read_to_string(dev_root.join(".rollway/svc").join(&dev_name).join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(dev_pid, dev.3, "dev under Rollway's own supervisor");

    // logs, restart and stop go to staging's supervisord program.
    let logs = f.run(&["logs", "staging"]).ok();
    assert!(
        logs.stdout
            .contains(&format!("app staging v1 starting as pid {}", staging.3)),
        "{logs:#?}"
    );
    f.run(&["restart", "staging"]).ok();
    let restarted = answer(ports[0]).expect("staging answers after restart");
    assert_ne!(restarted.3, staging.3);
    assert_eq!(f.ctl_pid(&f.name("staging")), Some(restarted.3));
    f.run(&["stop", "staging"]).ok();
    eventually("staging stops answering", || get(ports[0]).is_none());
    assert_eq!(f.ctl_pid(&f.name("staging")), None);
    assert_eq!(answer(default_port).map(|a| a.3), Some(dev.3), "dev untouched");
    f.started.borrow_mut().push("dev");
}

/// `config check` and `config schema` know the overrides: each misuse is
/// reported at its place, and the schema lists every key.
#[test]
fn config_knows_the_service_overrides() {
    let p = Project::new(Backend::Sqlite);
    let base = "project = \"identity\"\n\n[service]\nstart = \"run\"\nport = 3000\n\n[environments.staging]\nkind = \"staging\"\nhosts = [\"local\"]\nroot = \"srv\"\n";
    // (extra lines for staging, the problem expected on its first extra line, or none)
    let cases: &[(&str, Option<&str>)] = &[
        (
            "port = 3100\nsupervisor = \"supervisord\"\nsupervisord_conf = \"/etc/supervisor/conf.d\"\n",
            None,
        ),
        (
            "start = \"run --other\"\nsupervisor = \"command\"\nrestart = \"r\"\nrestarts = \"n\"\n",
            None,
        ),
        (
            "supervisord_conf = \"/etc/supervisor/conf.d\"\n",
            Some("applies only to supervisor = \"supervisord\""),
        ),
        ("port = 0\n", Some("environments.staging.port is 0")),
        ("supervisor = \"upstart\"\n", Some("upstart")),
        ("start = 5\n", Some("environments.staging.start must be a string")),
        (
            "supervisor = \"command\"\n",
            Some("missing key 'restart' in [environments.staging]"),
        ),
    ];
    for (extra, problem) in cases {
        p.write("rollway.toml", &format!("{base}{extra}"));
        let r = p.run(&["config", "check"]);
        match problem {
            None => assert_eq!(r.code, 0, "{extra}: {r:#?}"),
            Some(want) => {
                assert_eq!(r.code, 2, "{extra}: {r:#?}");
                let line = r
                    .stderr
                    .lines()
                    .chain(r.stdout.lines())
                    .find(|l| l.contains(want))
                    .unwrap_or_else(|| panic!("{extra}: no {want:?} in {r:#?}"));
                // At the key's value (line 11, the first extra line) or the
                // table header (line 7) for a missing key.
                let at = if want.starts_with("missing") { ":7:" } else { ":11:" };
                assert!(line.starts_with("rollway.toml") && line.contains(at), "{line}");
            }
        }
    }
    let schema = p.run(&["--json", "config", "schema"]).ok().json();
    let env = &schema["$defs"]["EnvironmentConfig"]["properties"];
    for key in [
        "start",
        "port",
        "supervisor",
        "supervisord_conf",
        "supervisorctl",
        "restart",
        "restarts",
    ] {
        assert!(env.get(key).is_some(), "schema lacks environments.*.{key}: {env:#}");
    }
}
