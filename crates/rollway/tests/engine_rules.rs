//! Seed rules the deploy engine enforces, each driven through the real
//! binary into the violation it guards against (issue 11 §3):
//! - a command stack whose rollback command fails is not rolled back: it
//!   ends failed, the deployment stays failed naming the stack and the
//!   command's exit, and the CLI exits 1;
//! - seed 004: every failed deployment carries a rollback_reason — the
//!   automatic rollback's, or why none happened (nothing had switched, the
//!   first deployment of the environment, no stack rollback to run);
//! - seed 000 PASS: the verification counts the probes that failed in the
//!   stability window (`failed_probes`), shown in `history --json`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;

use common::{Backend, Project, Run, free_port};
use serde_json::Value;

const STACK_ENV: &str = r#"
[environments.staging]
kind = "staging"
hosts = ["local"]
root = "srv"
"#;

fn stacks_project(stacks: &str) -> Project {
    let p = Project::new(Backend::Sqlite);
    p.write("rollway.toml", &format!("project = \"rules\"\n\n{stacks}\n{STACK_ENV}"));
    p
}

/// A project whose release is `app/server.py` on the local host, with
/// `[health]` and `[deploy]` as given.
fn release_project(app: &str, health: &str, deploy: &str) -> Project {
    let p = Project::new(Backend::Sqlite);
    let port = free_port();
    p.write(
        "rollway.toml",
        &format!(
            r#"project = "rules"

[build]
command = "rm -rf dist && mkdir dist && cp app/server.py dist/"
output = "dist"

[service]
start = "exec /usr/bin/python3 server.py"
port = {port}

[health]
path = "/"
{health}

[deploy]
{deploy}

[environments.staging]
kind = "staging"
hosts = ["local"]
root = "srv"
"#
        ),
    );
    fs::create_dir(p.path().join("app")).unwrap();
    p.write("app/server.py", app);
    p
}

/// The newest deployment of `staging` as `history --json` shows it.
fn last(p: &Project) -> Value {
    p.run(&["--json", "history", "staging"]).ok().json()[0].clone()
}

fn status(d: &Value) -> &str {
    d["deployment"]["lifecycle"]["status"].as_str().unwrap()
}

fn rollback_reason(d: &Value) -> &str {
    d["deployment"]["rollback_reason"]
        .as_str()
        .unwrap_or_else(|| panic!("a failed deployment without rollback_reason: {d:#}"))
}

fn stack_status<'a>(d: &'a Value, name: &str) -> &'a str {
    d["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()["lifecycle"]["status"]
        .as_str()
        .unwrap()
}

fn said(r: &Run) -> String {
    format!("{}{}", r.stdout, r.stderr)
}

#[test]
fn a_stack_whose_rollback_fails_is_failed_not_rolled_back() {
    let p = stacks_project(
        r#"
[stacks.db]
deploy = "true"
rollback = "echo 'cannot drop the schema' >&2; exit 3"

[stacks.api]
depends_on = ["db"]
deploy = "echo 'no capacity left' >&2; exit 1"
"#,
    );
    let r = p.run(&["deploy", "staging"]);
    assert_eq!(r.code, 1, "{r:#?}");
    let out = said(&r);
    assert!(out.contains("stack db") && out.contains("exited 3"), "{out}");
    assert!(!out.contains("was rolled back"), "{out}");

    let d = last(&p);
    assert_eq!(status(&d), "failed", "{d:#}");
    assert_eq!(stack_status(&d, "db"), "failed", "{d:#}");
    assert_eq!(stack_status(&d, "api"), "failed", "{d:#}");
    let why = rollback_reason(&d);
    assert!(
        why.contains("rollback failed") && why.contains("stack db") && why.contains("exited 3"),
        "{why}"
    );
    let events = p.run(&["--json", "events", "list", "--limit", "500"]).ok().json();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "rollback-completed" && e["level"] == "error"),
        "{events:#}"
    );
    p.run(&["events", "verify"]).ok();
}

#[test]
fn a_rollback_that_succeeds_still_rolls_back() {
    // The other side of the rule: the same chain with a working rollback.
    let p = stacks_project(
        r#"
[stacks.db]
deploy = "true"
rollback = "echo db >> rollbacks.log"

[stacks.api]
depends_on = ["db"]
deploy = "exit 1"
"#,
    );
    assert_eq!(p.run(&["deploy", "staging"]).code, 1);
    let d = last(&p);
    assert_eq!(status(&d), "rolled_back", "{d:#}");
    assert_eq!(stack_status(&d, "db"), "rolled_back");
    assert!(rollback_reason(&d).starts_with("automatic rollback: "), "{d:#}");
}

#[test]
fn a_failed_stack_with_nothing_to_roll_back_says_so() {
    let p = stacks_project(
        r#"
[stacks.only]
deploy = "exit 4"
"#,
    );
    assert_eq!(p.run(&["deploy", "staging"]).code, 1);
    let d = last(&p);
    assert_eq!(status(&d), "failed", "{d:#}");
    assert!(rollback_reason(&d).starts_with("nothing to roll back"), "{d:#}");
}

#[test]
fn a_failure_before_any_host_switched_has_a_rollback_reason() {
    let p = release_project(
        common::OK_APP,
        "interval = \"100ms\"\nretries = 50\nstability_window = \"1s\"",
        "before_switch = [\"echo 'migration refused'; exit 5\"]",
    );
    let r = p.run(&["deploy", "staging"]);
    assert_eq!(r.code, 1, "{r:#?}");
    let d = last(&p);
    assert_eq!(status(&d), "failed", "{d:#}");
    let why = rollback_reason(&d);
    assert!(why.contains("no host had switched"), "{why}");
    assert!(!p.path().join("srv/current").exists(), "nothing switched");
}

#[test]
fn a_failed_first_deployment_has_nothing_to_return_to() {
    // Exits at once: the boot check fails after the switch.
    let p = release_project(
        "import sys\nsys.exit(1)\n",
        "interval = \"100ms\"\nretries = 3\nstability_window = \"1s\"",
        "",
    );
    let r = p.run(&["deploy", "staging"]);
    assert_eq!(r.code, 1, "{r:#?}");
    let d = last(&p);
    assert_eq!(status(&d), "failed", "{d:#}");
    assert_eq!(
        rollback_reason(&d),
        "first deployment of staging: nothing to return to (its service was stopped)"
    );
    p.run(&["stop", "staging"]);
}

/// Answers 500 to every other request: never two failures in a row.
const FLAKY_APP: &str = r#"import http.server, os
n = [0]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        n[0] += 1
        code = 500 if n[0] % 2 == 0 else 200
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

#[test]
fn a_pass_with_tolerated_failures_counts_them() {
    let p = release_project(
        FLAKY_APP,
        "interval = \"100ms\"\nretries = 20\nwindow_failures = 3\nstability_window = \"1500ms\"",
        "",
    );
    let r = p.run(&["deploy", "staging"]);
    assert_eq!(r.code, 0, "{r:#?}");
    let d = last(&p);
    assert_eq!(status(&d), "succeeded", "{d:#}");
    let v = &d["verifications"][0];
    assert_eq!(v["result"], "PASS", "{d:#}");
    let failed = v["failed_probes"].as_u64().unwrap();
    assert!(
        failed >= 2,
        "every other probe failed, yet failed_probes is {failed}: {v:#}"
    );
    // People see the count too, not only `--json`.
    let shown = p.run(&["history", "staging"]).ok();
    let line =
        format!("  window: PASS with {failed} failed probe(s) tolerated (window_failures allows fewer in a row)");
    assert!(
        shown.stdout.lines().any(|l| l == line),
        "no `{line}` in:\n{}",
        shown.stdout
    );

    // A steady service passes with none.
    p.write("app/server.py", common::OK_APP);
    p.run(&["deploy", "staging"]).ok();
    let v = &last(&p)["verifications"][0];
    assert_eq!(v["result"], "PASS");
    assert_eq!(v["failed_probes"], 0, "{v:#}");
    p.run(&["stop", "staging"]);
}
