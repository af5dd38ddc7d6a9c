//! Many `rollway` processes at once on one new store (issue 15): opening,
//! creating and migrating the store is safe under concurrency, so no command
//! fails on the store while another one merely runs; of the deploys of one
//! environment exactly one runs and the others exit 3. On SQLite and on a
//! fresh PostgreSQL database per round.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;

use common::{Backend, PgDb, Project, free_port, get};

const ROUNDS: usize = 20;

/// The eight commands started together each round.
const MIX: [&[&str]; 8] = [
    &["deploy", "staging"],
    &["deploy", "staging"],
    &["deploy", "other"],
    &["deploy", "other"],
    &["env", "list"],
    &["events", "list"],
    &["secrets", "list", "staging"],
    &["secrets", "list", "other"],
];

const APP: &str = r#"import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = os.environ["WHO"].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

fn config(staging: u16, other: u16) -> String {
    format!(
        r#"project = "busy"

[build]
command = "rm -rf dist && mkdir dist && cp app/server.py dist/"
output = "dist"

[service]
start = "exec /usr/bin/python3 server.py"

[health]
interval = "100ms"
timeout = "1s"
retries = 50
stability_window = "0s"

[environments.staging]
kind = "staging"
hosts = [{{ ssh = "local", port = {staging} }}]
root = "srv/staging"
vars = {{ WHO = "staging" }}

[environments.other]
kind = "staging"
hosts = [{{ ssh = "local", port = {other} }}]
root = "srv/other"
vars = {{ WHO = "other" }}
"#
    )
}

/// What one process of the mix did.
#[derive(Debug)]
struct Outcome {
    args: Vec<String>,
    code: i32,
    stderr: String,
}

/// Starts the whole mix at once in `p` and waits for every process.
fn start_together(p: &Project) -> Vec<Outcome> {
    let children: Vec<_> = MIX
        .iter()
        .map(|args| {
            let mut cmd = p.command(args);
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
            (args, cmd.spawn().unwrap())
        })
        .collect();
    children
        .into_iter()
        .map(|(args, child)| {
            let out = child.wait_with_output().unwrap();
            Outcome {
                args: args.iter().map(|a| (*a).to_owned()).collect(),
                code: out.status.code().unwrap_or(-1),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        })
        .collect()
}

/// One round on a new project (state directory and store): every command
/// but the losing deploys exits 0, per environment one deploy exits 0 and
/// the other 3 naming the holder, and each environment answers.
fn round(backend: Backend, n: usize) {
    let p = Project::new(backend);
    let (staging, other) = (free_port(), free_port());
    p.write("rollway.toml", &config(staging, other));
    std::fs::create_dir(p.path().join("app")).unwrap();
    p.write("app/server.py", APP);
    // The identity lives outside the state directory, as a user's does.
    p.run(&["secrets", "init"]).ok();
    assert!(
        !p.path().join(".rollway").exists(),
        "the round starts without a state directory"
    );

    let outcomes = start_together(&p);
    let mut codes: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for o in &outcomes {
        assert!(
            !o.stderr.contains("database is locked") && !o.stderr.contains("cannot open the store"),
            "round {n} ({}): `rollway {}` failed on the store: {}",
            p.backend.name(),
            o.args.join(" "),
            o.stderr
        );
        codes.entry(o.args.join(" ")).or_default().push(o.code);
        if o.args[0] == "deploy" && o.code == 3 {
            assert!(
                o.stderr.contains("is locked by tester@example.com"),
                "round {n}: the refused deploy names the holder: {}",
                o.stderr
            );
        }
    }
    for v in codes.values_mut() {
        v.sort_unstable();
    }
    let expected: BTreeMap<String, Vec<i32>> = [
        ("deploy other", vec![0, 3]),
        ("deploy staging", vec![0, 3]),
        ("env list", vec![0]),
        ("events list", vec![0]),
        ("secrets list other", vec![0]),
        ("secrets list staging", vec![0]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(codes, expected, "round {n} ({}): {outcomes:#?}", p.backend.name());
    assert_eq!(get(staging).as_deref(), Some("staging"));
    assert_eq!(get(other).as_deref(), Some("other"));

    let history = p.run(&["--json", "history"]).ok().json();
    let statuses: Vec<(&str, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["deployment"]["environment"].as_str().unwrap(),
                d["deployment"]["lifecycle"]["status"].as_str().unwrap(),
            )
        })
        .collect();
    let mut statuses = statuses;
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [("other", "succeeded"), ("staging", "succeeded")],
        "round {n}: one deployment per environment, none left in progress"
    );
    p.run(&["events", "verify"]).ok();
    for env in ["staging", "other"] {
        p.run(&["stop", env]).ok();
    }
}

#[test]
fn eight_commands_at_once_on_a_new_sqlite_store() {
    for n in 0..ROUNDS {
        round(Backend::Sqlite, n);
    }
}

#[test]
fn eight_commands_at_once_on_a_new_postgres_database() {
    for n in 0..ROUNDS {
        let Some(db) = PgDb::create() else { return };
        round(Backend::Postgres(db), n);
    }
}
