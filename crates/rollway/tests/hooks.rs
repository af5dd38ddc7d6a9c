//! `[deploy] before_switch` and `after_switch` hooks end to end on an SSH
//! host (a real sshd on loopback): they run in the new release with its
//! variables; `before_switch` runs before `current` moves, and a failing one
//! leaves the host on its old release; `after_switch` runs once the new
//! service answers, and a failing one rolls the deployment back. Their
//! output in errors is masked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "support/sshd.rs"]
mod sshd;

use common::{Backend, Project, free_port, get};
use sshd::Sshd;

const SECRET: &str = "hook-canary-Vb8!qT3";

const APP: &str = r#"import http.server, os
BODY = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "version.txt"), "rb").read()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

struct Host {
    p: Project,
    _sshd: Sshd,
    root: std::path::PathBuf,
    port: u16,
    config: String,
}

impl Host {
    fn new() -> Self {
        let sshd = Sshd::start();
        let p = Project::new(Backend::Sqlite);
        let root = p.path().join("host");
        let port = free_port();
        let config = format!(
            r#"project = "hooktest"

[build]
command = "rm -rf dist && mkdir dist && cp app/* dist/"
output = "dist"

[service]
start = "exec /usr/bin/python3 server.py"
port = {port}

[health]
interval = "100ms"
retries = 50
stability_window = "0s"

[ssh]
config = "{config}"

[environments.staging]
kind = "staging"
hosts = [{{ ssh = "{host}", root = "{root}" }}]
vars = {{ GREETING = "hello" }}
"#,
            config = sshd.client_config.display(),
            host = sshd.host_name(),
            root = root.display(),
        );
        std::fs::create_dir(p.path().join("app")).unwrap();
        p.write("app/server.py", APP);
        p.write("rollway.toml", &config);
        p.run(&["secrets", "init"]).ok();
        p.run_with_stdin(&["secrets", "set", "staging", "TOKEN"], SECRET).ok();
        Self {
            p,
            _sshd: sshd,
            root,
            port,
            config,
        }
    }

    /// Deploys version `v` with `[deploy]` holding `hooks`.
    fn deploy(&self, v: &str, hooks: &str) -> common::Run {
        self.p.write("app/version.txt", v);
        self.p
            .write("rollway.toml", &format!("{}\n[deploy]\n{hooks}\n", self.config));
        self.p.run(&["deploy", "staging"])
    }

    fn current(&self) -> String {
        let link = std::fs::read_link(self.root.join("current")).unwrap();
        link.file_name().unwrap().to_str().unwrap().to_owned()
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.root.join(name)).unwrap_or_default()
    }
}

const PROBE: &str = "/usr/bin/python3 -c \"import os,urllib.request; print(urllib.request.urlopen('http://127.0.0.1:'+os.environ['PORT']).read().decode())\"";

#[test]
fn hooks_run_in_the_new_release_around_the_switch() {
    let h = Host::new();
    h.deploy("v1", "").ok();
    let v1 = h.current();

    // Both hooks see the release's variables; before_switch runs while
    // `current` is still the old release, after_switch once the new service answers.
    let hooks = format!(
        "before_switch = [\"echo $GREETING $(readlink ../../current) > ../../before.txt\"]\n\
         after_switch = [\"{} > ../../after.txt\"]",
        PROBE.replace('\\', "\\\\").replace('"', "\\\"")
    );
    let r = h.deploy("v2", &hooks);
    assert_eq!(r.code, 0, "{r:#?}");
    let v2 = h.current();
    assert_ne!(v1, v2);
    // `current` is a relative link: it still named v1 while the hook ran.
    assert_eq!(h.read("before.txt"), format!("hello releases/{v1}\n"));
    assert_eq!(h.read("after.txt"), "v2\n");
    let steps = format!("{}{}", r.stdout, r.stderr);
    assert!(steps.contains("before_switch hook `echo $GREETING"), "{steps}");
    assert!(steps.contains("after_switch hook `"), "{steps}");

    // A failing before_switch: that host never switches, v2 still answers.
    let r = h.deploy("v3", "before_switch = [\"echo migrating; echo boom $TOKEN; exit 3\"]");
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(
        r.stderr.contains("before_switch hook `echo migrating; echo boom $TOKEN; exit 3` exited 3; its last output:\nmigrating\nboom ****"),
        "{}",
        r.stderr
    );
    assert!(!format!("{r:?}").contains(SECRET));
    assert_eq!(h.current(), v2);
    assert_eq!(get(h.port).as_deref(), Some("v2"));

    // A failing after_switch: the deployment is rolled back to v2.
    let r = h.deploy("v4", "after_switch = [\"exit 5\"]");
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stderr.contains("after_switch hook `exit 5` exited 5"), "{}", r.stderr);
    assert_eq!(h.current(), v2);
    assert_eq!(get(h.port).as_deref(), Some("v2"));
    let history = h.p.run(&["--json", "history", "staging"]).ok().json();
    let statuses: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["deployment"]["lifecycle"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["rolled_back", "failed", "succeeded", "succeeded"]);
    h.p.run(&["stop", "staging"]).ok();
}
