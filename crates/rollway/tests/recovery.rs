//! Crash recovery: the real `rollway` binary, built with the `failpoints`
//! feature, is killed with SIGKILL at every step boundary of a deployment
//! (`ROLLWAY_FAILPOINT`), under Rollway's own supervisor and under Debian's
//! supervisord. After `rollway recover`, `current` is a complete release of
//! a succeeded deployment that answers, nothing is in progress and the event
//! chain verifies. Run with `cargo test -p rollway --features failpoints
//! --test recovery` (scripts/test does).
#![cfg(feature = "failpoints")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "support/supervisord.rs"]
mod supervisord;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::{Backend, Project, free_port, get};
use rollway_engine::FAILPOINTS;
use supervisord::Supervisord;

const SERVER: &str = r#"import http.server, os
BODY = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "body.txt"), "rb").read()
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

const LEASE: (&str, &str) = ("ROLLWAY_LEASE", "1s");

fn project(port: u16, supervisord: Option<&Supervisord>) -> Project {
    let p = Project::new(Backend::Sqlite);
    let service = match supervisord {
        None => String::new(),
        Some(sd) => format!(
            "supervisor = \"supervisord\"\nsupervisord_conf = \"{}\"\nsupervisorctl = \"{}\"\n",
            sd.conf_d().display(),
            sd.ctl()
        ),
    };
    p.write(
        "rollway.toml",
        &format!(
            r#"project = "fp"

[build]
command = "rm -rf dist && mkdir dist && cp app/server.py app/body.txt dist/"
output = "dist"

[service]
start = "exec python3 server.py"
port = {port}
{service}
[health]
path = "/"
interval = "100ms"
timeout = "1s"
retries = 50
window_failures = 2
stability_window = "1s"

[environments.staging]
kind = "staging"
hosts = ["local"]
root = "srv"
"#
        ),
    );
    fs::create_dir_all(p.path().join("app")).unwrap();
    p.write("app/server.py", SERVER);
    p
}

fn history(p: &Project) -> Vec<serde_json::Value> {
    serde_json::from_str(&p.run(&["--json", "history", "staging", "--limit", "100"]).ok().stdout).unwrap()
}

fn status_of(h: &[serde_json::Value], id: &str) -> String {
    h.iter()
        .find(|d| d["deployment"]["id"] == id)
        .map(|d| d["deployment"]["lifecycle"]["status"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no deployment {id} in history"))
}

/// `current` names a release of a succeeded deployment whose files are all
/// there, and the service answers with that release's body.
fn assert_settled(p: &Project, port: u16, fp: &str, good: &str, body: &str) {
    let h = history(p);
    for d in &h {
        let st = d["deployment"]["lifecycle"]["status"].as_str().unwrap();
        assert!(
            ["succeeded", "failed", "rolled_back", "cancelled"].contains(&st),
            "after a kill at {fp}, deployment {} is still {st}",
            d["deployment"]["id"]
        );
    }
    let root = p.path().join("srv");
    let current = fs::read_link(root.join("current")).unwrap();
    assert_eq!(current, Path::new("releases").join(good), "after a kill at {fp}");
    assert_eq!(status_of(&h, good), "succeeded");
    let release = root.join(&current);
    assert_eq!(
        fs::read_to_string(release.join("body.txt")).unwrap(),
        body,
        "after a kill at {fp}"
    );
    assert_eq!(fs::read_to_string(release.join("server.py")).unwrap(), SERVER);
    let mut answered = None;
    for _ in 0..100 {
        answered = get(port);
        if answered.as_deref() == Some(body) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        answered.as_deref(),
        Some(body),
        "after a kill at {fp}, the service answers the good release"
    );
    p.run(&["events", "verify"]).ok();
}

fn kill_at_every_step(supervisord: Option<&Supervisord>) {
    let port = free_port();
    let p = project(port, supervisord);
    p.write("app/body.txt", "v1\n");
    let v1 = p.run_full(&["--json", "deploy", "staging"], "", &[LEASE]).ok().json();
    let good = v1["deployment"]["id"].as_str().unwrap().to_owned();

    for (n, fp) in FAILPOINTS.iter().enumerate() {
        p.write("app/body.txt", &format!("v{} killed at {fp}\n", n + 2));
        let killed = p.run_full(&["deploy", "staging"], "", &[LEASE, ("ROLLWAY_FAILPOINT", fp)]);
        assert_eq!(killed.code, -1, "the deploy dies by SIGKILL at {fp}: {killed:#?}");
        let h = history(&p);
        let victim = h[0]["deployment"]["id"].as_str().unwrap().to_owned();
        assert_ne!(victim, good, "a deployment was created before {fp}");
        let in_progress = status_of(&h, &victim);
        assert!(
            !["succeeded", "failed", "rolled_back", "cancelled"].contains(&in_progress.as_str()),
            "the kill at {fp} left {in_progress}"
        );

        let recovered = p
            .run_full(&["--json", "recover", "staging", "--lock-wait", "20s"], "", &[LEASE])
            .ok()
            .json();
        assert_eq!(recovered["recovered"], serde_json::json!([victim]), "at {fp}");
        let after = status_of(&history(&p), &victim);
        assert!(
            ["failed", "rolled_back"].contains(&after.as_str()),
            "the deployment killed at {fp} ended {after}"
        );
        assert_settled(&p, port, fp, &good, "v1\n");
    }
    p.run(&["stop", "staging"]).ok();
}

#[test]
fn every_step_boundary_has_a_failpoint_in_the_engine() {
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../rollway-engine/src/deploy")];
    let mut found = Vec::new();
    // The deploy module has submodules in folders (`deploy/run/`).
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = fs::read_to_string(&path).unwrap();
            for part in text.split("failpoint(\"").skip(1) {
                found.push(part.split('"').next().unwrap().to_owned());
            }
        }
    }
    found.sort();
    let mut all: Vec<String> = FAILPOINTS.iter().map(|s| (*s).to_owned()).collect();
    all.sort();
    assert_eq!(
        found, all,
        "every failpoint in the engine is in ALL, and every ALL entry is placed once"
    );
}

#[test]
fn kill_9_at_every_step_under_the_rollway_supervisor_recovers() {
    kill_at_every_step(None);
}

#[test]
fn kill_9_at_every_step_under_supervisord_recovers() {
    let sd = Supervisord::start();
    kill_at_every_step(Some(&sd));
}

#[test]
fn a_killed_deployment_with_stacks_rolls_its_command_stacks_back_on_recovery() {
    let port = free_port();
    let p = Project::new(Backend::Sqlite);
    p.write(
        "rollway.toml",
        &format!(
            r#"project = "fpstacks"

[build]
command = "rm -rf dist && mkdir dist && cp app/server.py app/body.txt dist/"
output = "dist"

[service]
start = "exec python3 server.py"
port = {port}

[health]
interval = "100ms"
retries = 50
stability_window = "1s"

[stacks.db]
deploy = "echo deployed >> db.log"
rollback = "echo rolled back >> db.log"

[stacks.app]
depends_on = ["db"]

[environments.staging]
kind = "staging"
hosts = ["local"]
root = "srv"
"#
        ),
    );
    fs::create_dir_all(p.path().join("app")).unwrap();
    p.write("app/server.py", SERVER);
    p.write("app/body.txt", "v1\n");
    let v1 = p.run_full(&["--json", "deploy", "staging"], "", &[LEASE]).ok().json();
    let good = v1["deployment"]["id"].as_str().unwrap().to_owned();

    p.write("app/body.txt", "v2\n");
    let killed = p.run_full(
        &["deploy", "staging"],
        "",
        &[LEASE, ("ROLLWAY_FAILPOINT", "after-waves")],
    );
    assert_eq!(killed.code, -1, "{killed:#?}");
    let victim = history(&p)[0]["deployment"]["id"].as_str().unwrap().to_owned();
    let recovered = p
        .run_full(&["--json", "recover", "staging", "--lock-wait", "20s"], "", &[LEASE])
        .ok()
        .json();
    assert_eq!(recovered["recovered"], serde_json::json!([victim]));
    assert_eq!(
        fs::read_to_string(p.path().join("db.log")).unwrap(),
        "deployed\ndeployed\nrolled back\n",
        "the killed deployment's db stack ran its rollback"
    );
    let h: Vec<serde_json::Value> =
        serde_json::from_str(&p.run(&["--json", "history", "staging"]).ok().stdout).unwrap();
    let d = h.iter().find(|d| d["deployment"]["id"] == victim.as_str()).unwrap();
    assert_eq!(d["deployment"]["lifecycle"]["status"], "rolled_back");
    let stacks: Vec<(String, String)> = d["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["lifecycle"]["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(stacks.contains(&("db".into(), "rolled_back".into())), "{stacks:?}");
    assert_settled(&p, port, "after-waves (stacks)", &good, "v1\n");
    p.run(&["stop", "staging"]).ok();
}
