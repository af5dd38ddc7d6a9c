//! `[deploy] before_switch` and `after_switch` hooks end to end on an SSH
//! host (a real sshd on loopback): they run in the new release with its
//! variables; `before_switch` runs before `current` moves, and a failing one
//! leaves the host on its old release; `after_switch` runs once the new
//! service answers, and a failing one rolls the deployment back. Their
//! output in errors is masked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "support/ssh_project.rs"]
mod ssh_project;
#[path = "support/sshd.rs"]
mod sshd;

use common::get;
use ssh_project::SshProject;

const SECRET: &str = "hook-canary-Vb8!qT3";

/// Answers `GET /` with the release's `version.txt`.
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

/// Deploys version `v` with `[deploy]` holding `hooks`.
fn deploy(h: &SshProject, v: &str, hooks: &str) -> common::Run {
    h.p.write("app/version.txt", v);
    h.p.write("rollway.toml", &format!("{}\n[deploy]\n{hooks}\n", h.config));
    h.p.run(&["deploy", "staging"])
}

fn read(h: &SshProject, name: &str) -> String {
    std::fs::read_to_string(h.root.join(name)).unwrap_or_default()
}

const PROBE: &str = "/usr/bin/python3 -c \"import os,urllib.request; print(urllib.request.urlopen('http://127.0.0.1:'+os.environ['PORT']).read().decode())\"";

#[test]
fn hooks_run_in_the_new_release_around_the_switch() {
    let h = SshProject::new("hooktest", APP, SECRET);
    deploy(&h, "v1", "").ok();
    let v1 = h.current();

    // Both hooks see the release's variables; before_switch runs while
    // `current` is still the old release, after_switch once the new service answers.
    let hooks = format!(
        "before_switch = [\"echo $GREETING $(readlink ../../current) > ../../before.txt\"]\n\
         after_switch = [\"{} > ../../after.txt\"]",
        PROBE.replace('\\', "\\\\").replace('"', "\\\"")
    );
    let r = deploy(&h, "v2", &hooks);
    assert_eq!(r.code, 0, "{r:#?}");
    let v2 = h.current();
    assert_ne!(v1, v2);
    // `current` is a relative link: it still named v1 while the hook ran.
    assert_eq!(read(&h, "before.txt"), format!("hello releases/{v1}\n"));
    assert_eq!(read(&h, "after.txt"), "v2\n");
    let steps = format!("{}{}", r.stdout, r.stderr);
    assert!(steps.contains("before_switch hook `echo $GREETING"), "{steps}");
    assert!(steps.contains("after_switch hook `"), "{steps}");

    // A failing before_switch: that host never switches, v2 still answers.
    let r = deploy(
        &h,
        "v3",
        "before_switch = [\"echo migrating; echo boom $TOKEN; exit 3\"]",
    );
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
    let r = deploy(&h, "v4", "after_switch = [\"exit 5\"]");
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
