//! The deploy fixture the deploy, rollback and snapshot tests share: a
//! project serving [`APP`], the `rollway.toml` of its `staging` environment
//! ([`Config`]), runs of the binary with a short lease ([`Staging`]), and
//! reading what a deployment recorded (`--json history`) and what a host
//! runs (`ROOT/current`, `GET`).
//!
//! The app is a tiny Python HTTP server whose behaviour comes from
//! `mode.txt` in the artifact: its first word is the version `GET /`
//! answers with ("hello from VERSION"), the other words make it `crash` a
//! second after its first request, turn `sick` (HTTP 500 on `/` after its
//! first two answers), or be `down` (exit at once). `GET /env/NAME`
//! answers the value of NAME in its environment (or `<unset>`) and does not
//! count as a request to `/`.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{Backend, Project, Run};

/// The lease every run uses (the CLI reads `ROLLWAY_LEASE`).
pub const LEASE: &str = "2s";
pub const LEASE_MS: u64 = 2000;

/// The test app (see the module docs), written as `app/server.py`.
pub const APP: &str = r#"import http.server, os, sys, threading
HERE = os.path.dirname(os.path.abspath(__file__))
MODE = open(os.path.join(HERE, "mode.txt")).read().split()
BODY = ("hello from %s\n" % MODE[0]).encode()
if "down" in MODE:
    sys.exit(1)
lock = threading.Lock()
served = 0

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global served
        if self.path.startswith("/env/"):
            body = os.environ.get(self.path[5:], "<unset>").encode()
            status = 200
        else:
            with lock:
                served += 1
                n = served
            if n == 1 and "crash" in MODE:
                threading.Timer(1.0, lambda: os._exit(1)).start()
            status = 500 if ("sick" in MODE and n > 2) else 200
            body = BODY
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
server.serve_forever()
"#;

/// The build command that copies `app/` into `dist/`.
pub const BUILD: &str = "rm -rf dist && mkdir dist && cp -R app/. dist/";

/// The `[health]` keys a case sets.
#[derive(Debug, Clone, Copy)]
pub struct Health {
    pub window: &'static str,
    pub retries: u32,
    pub window_failures: u32,
}

/// A 2-second window, 50 boot probes, 2 failed probes in a row fail it.
pub const HEALTH: Health = Health {
    window: "2s",
    retries: 50,
    window_failures: 2,
};

/// What `rollway.toml` says: the app on `port`, its health checks, and an
/// environment `staging` on `hosts` with its release `root`.
#[derive(Debug, Clone)]
pub struct Config {
    pub project: &'static str,
    /// `[build] command`.
    pub build: String,
    pub port: u16,
    pub health: Health,
    /// `[ssh] config`, when the hosts are reached over SSH.
    pub ssh_config: Option<PathBuf>,
    /// The entries of `hosts = [...]`, as TOML.
    pub hosts: Vec<String>,
    pub root: PathBuf,
    /// Top-level sections written before `[ssh]` (e.g. `[variables.X]`).
    pub sections: String,
    /// Extra keys for `[environments.staging]`.
    pub env_extra: String,
}

impl Config {
    /// One `local` host with its releases under `root`, [`BUILD`], [`HEALTH`].
    pub fn local(project: &'static str, port: u16, root: &Path) -> Self {
        Self {
            project,
            build: BUILD.to_owned(),
            port,
            health: HEALTH,
            ssh_config: None,
            hosts: vec!["\"local\"".to_owned()],
            root: root.to_owned(),
            sections: String::new(),
            env_extra: String::new(),
        }
    }

    /// An SSH host entry: `{ ssh = NAME, root = ROOT, port = PORT }`.
    pub fn ssh_host(name: &str, root: &Path, port: u16) -> String {
        format!("{{ ssh = \"{name}\", root = \"{}\", port = {port} }}", root.display())
    }

    /// The file's text.
    pub fn toml(&self) -> String {
        let ssh = match &self.ssh_config {
            Some(c) => format!("[ssh]\nconfig = \"{}\"\n", c.display()),
            None => String::new(),
        };
        format!(
            r#"project = "{project}"

[build]
command = "{build}"
output = "dist"

[service]
start = "exec /usr/bin/python3 server.py"
port = {port}

[health]
path = "/"
interval = "200ms"
timeout = "2s"
retries = {retries}
window_failures = {window_failures}
stability_window = "{window}"

{sections}{ssh}
[environments.staging]
kind = "staging"
hosts = [{hosts}]
root = "{root}"
{extra}
"#,
            project = self.project,
            build = self.build,
            port = self.port,
            retries = self.health.retries,
            window_failures = self.health.window_failures,
            window = self.health.window,
            sections = self.sections,
            hosts = self.hosts.join(", "),
            root = self.root.display(),
            extra = self.env_extra,
        )
    }
}

/// A SQLite project serving [`APP`]; every run carries [`LEASE`]. Dropping
/// it stops `staging`'s service (the default supervisor outlives the CLI),
/// so a fixture holding it and an sshd declares it first.
#[derive(Debug)]
pub struct Staging {
    pub project: Project,
}

impl Default for Staging {
    fn default() -> Self {
        Self::new()
    }
}

impl Staging {
    pub fn new() -> Self {
        let project = Project::new(Backend::Sqlite);
        fs::create_dir_all(project.path().join("app")).unwrap();
        project.write("app/server.py", APP);
        Self { project }
    }

    pub fn path(&self) -> &Path {
        self.project.path()
    }

    /// Writes `rollway.toml`.
    pub fn configure(&self, config: &Config) {
        self.project.write("rollway.toml", &config.toml());
    }

    /// Sets what the next build's app does (see the module docs).
    pub fn mode(&self, mode: &str) {
        self.project.write("app/mode.txt", &format!("{mode}\n"));
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.project.run_full(args, "", &[("ROLLWAY_LEASE", LEASE)])
    }

    /// A command line for the binary, as `run` sets it up, stdin closed.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.project.command(args);
        cmd.env("ROLLWAY_LEASE", LEASE).stdin(Stdio::null());
        cmd
    }

    /// `history staging`, newest first.
    pub fn history(&self) -> Vec<Value> {
        self.run(&["--json", "history", "staging"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .clone()
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.project.path().join("rollway.toml").exists() {
            let r = self.run(&["stop", "staging"]);
            if r.code != 0 {
                eprintln!("rollway stop staging: {r:#?}");
            }
        }
    }
}

/// Free ports, all distinct and distinct from every other test's (see [`super::free_port`]).
pub fn free_ports(n: usize) -> Vec<u16> {
    (0..n).map(|_| super::free_port()).collect()
}

/// GET PATH on 127.0.0.1:PORT: the status and the body, or None when
/// nothing answers.
pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    Some((status, body))
}

pub fn now_ms() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// Waits until `ms` (epoch milliseconds) has passed.
pub fn wait_until(ms: u64) {
    while now_ms() < ms {
        std::thread::sleep(Duration::from_millis(ms - now_ms()));
    }
}

/// A `history` entry's status.
pub fn status(d: &Value) -> &str {
    d["deployment"]["lifecycle"]["status"].as_str().unwrap_or_default()
}

/// A `history` entry's deployment id.
pub fn id(d: &Value) -> &str {
    d["deployment"]["id"].as_str().unwrap()
}

/// The host results of a deployment's verifications.
pub fn host_results(d: &Value) -> Vec<&Value> {
    d["verifications"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|v| v["hosts"].as_array().into_iter().flatten())
        .collect()
}

/// The release `ROOT/current` points at.
pub fn current_release(root: &Path) -> Option<String> {
    let link = fs::read_link(root.join("current")).ok()?;
    let rel = link.strip_prefix("releases").unwrap_or_else(|_| {
        link.strip_prefix(root.join("releases"))
            .unwrap_or_else(|_| panic!("current points outside releases/: {}", link.display()))
    });
    Some(rel.to_string_lossy().into_owned())
}
