//! Reproductions from a hostile test (issue 10), each driven through the
//! real binary where a user would meet it: silent wrong results, stuck and
//! hanging runs, unbounded input and leaks of clear text.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::Path;

use common::{Backend, Project, Run};

/// A tiny HTTP app that answers 200 on every path.
const SERVER: &str = r#"import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// A project with a `local` staging environment serving [`SERVER`], an
/// identity, and `extra` appended to its rollway.toml.
fn app_project(extra: &str) -> Project {
    let port = common::free_port();
    let p = Project::new(Backend::Sqlite);
    p.write(
        "rollway.toml",
        &format!(
            r#"project = "hostile"

[build]
command = "rm -rf dist && mkdir dist && cp app/* dist/"
output = "dist"

[service]
start = "exec python3 server.py"
port = {port}

[health]
path = "/"
interval = "100ms"
timeout = "1s"
retries = 50
stability_window = "200ms"

[environments.staging]
kind = "staging"
hosts = ["local"]
root = "srv"
{extra}"#
        ),
    );
    fs::create_dir_all(p.path().join("app")).unwrap();
    p.write("app/server.py", SERVER);
    p.run(&["secrets", "init"]).ok();
    p
}

/// Every env file under `root/envs` with its size.
fn env_files(root: &Path) -> Vec<(String, u64)> {
    let Ok(dir) = fs::read_dir(root.join("envs")) else {
        return Vec::new();
    };
    dir.flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect()
}

#[track_caller]
fn assert_fails(r: &Run, code: i32, needle: &str) {
    assert_eq!(r.code, code, "exit code: {r:#?}");
    assert!(r.stderr.contains(needle), "stderr should contain {needle:?}: {r:#?}");
}

// 1. A missing identity never deploys an empty env file.

#[test]
fn a_missing_identity_fails_every_command_that_needs_values() {
    let p = app_project("");
    p.run_with_stdin(&["secrets", "set", "staging", "API_KEY"], "k-Hq3vR8zLm2Xw9Tk4Pb7Yc")
        .ok();
    fs::create_dir_all(p.path().join("empty-xdg")).unwrap();
    let empty = p.path().join("empty-xdg").display().to_string();
    let check = |args: &[&str], envs: &[(&str, &str)], expected: &str| {
        let r = p.run_full(args, "", envs);
        assert_fails(&r, 2, expected);
        assert!(r.stderr.contains("rollway secrets init"), "{r:#?}");
        assert_eq!(
            env_files(&p.path().join("srv")),
            Vec::new(),
            "no env file written: {r:#?}"
        );
    };
    check(
        &["deploy", "staging"],
        &[("ROLLWAY_IDENTITY", "./typo")],
        "no identity at ./typo",
    );
    check(&["deploy", "staging"], &[("XDG_CONFIG_HOME", &empty)], "no identity at");
    check(
        &["build", "--env", "staging"],
        &[("ROLLWAY_IDENTITY", "./typo")],
        "no identity at ./typo",
    );
    check(
        &["secrets", "get", "staging", "API_KEY"],
        &[("ROLLWAY_IDENTITY", "./typo")],
        "no identity at ./typo",
    );
}

#[test]
fn an_environment_without_stored_values_deploys_without_an_identity() {
    let p = app_project("vars = { LOG_LEVEL = \"info\" }\n");
    let r = p
        .run_full(&["deploy", "staging"], "", &[("ROLLWAY_IDENTITY", "./typo")])
        .ok();
    let files = env_files(&p.path().join("srv"));
    assert_eq!(files.len(), 1, "{r:#?}");
    assert!(files[0].1 > 0, "the plain vars are in the env file: {files:?}");
}
