//! The PostgreSQL store under faults (issue 10): a server that accepts and
//! never answers fails the command within its connect timeout, naming the
//! store; a connection the server drops in the middle of a deployment
//! (`pg_terminate_backend`) is made again and the deployment carries on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Backend, PgDb, Project, free_port, get};

#[test]
fn a_server_that_never_answers_fails_within_the_connect_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts every connection and never says a word.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming() {
            held.push(c);
        }
    });
    let p = Project::new(Backend::Sqlite);
    p.run(&["init"]).ok();
    let url = format!("postgres://postgres@127.0.0.1:{port}/x?connect_timeout=2");
    let started = Instant::now();
    let r = p.run(&["--store", &url, "env", "list"]);
    let took = started.elapsed();
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(
        r.stderr,
        format!(
            "error: cannot open the store at {url}: the postgresql store {url} did not answer within 2s: is it a PostgreSQL server, and is it stuck? (set connect_timeout=SECONDS in the URL to wait longer)\n"
        )
    );
    eprintln!("gave up after {took:?}");
    assert!(took < Duration::from_secs(30), "it waited {took:?}");
}

#[test]
fn a_connection_dropped_during_a_deployment_is_made_again() {
    let Some(db) = PgDb::create() else { return };
    let p = Project::new(Backend::Postgres(db));
    let port = free_port();
    p.write(
        "rollway.toml",
        &format!(
            r#"project = "dropped"

[build]
command = "rm -rf dist && mkdir dist && cp app/server.py dist/"
output = "dist"

[service]
start = "exec /usr/bin/python3 server.py"
port = {port}

[health]
interval = "100ms"
retries = 50
stability_window = "4s"

[environments.staging]
kind = "staging"
hosts = ["local"]
root = "srv"
"#
        ),
    );
    std::fs::create_dir(p.path().join("app")).unwrap();
    p.write("app/server.py", common::OK_APP);
    let Backend::Postgres(db) = &p.backend else {
        unreachable!()
    };
    let deploy = std::process::Command::new(env!("CARGO_BIN_EXE_rollway"))
        .args(["deploy", "staging"])
        .current_dir(p.path())
        .env("NO_COLOR", "1")
        .env("ROLLWAY_OPERATOR", "tester@example.com")
        .env("XDG_CONFIG_HOME", p.path().join("xdg"))
        .env("ROLLWAY_STORE", db.url())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the deployment is in its window, the server ends its connection.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = p.run(&["--json", "history", "staging"]);
        if r.code == 0 && r.json()[0]["deployment"]["lifecycle"]["status"] == "verifying" {
            break;
        }
        assert!(Instant::now() < deadline, "never reached its window: {r:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let killed = db.psql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'rollway'",
    );
    assert_ne!(killed.trim(), "0", "the deployment's connection was ended");
    let out = deploy.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let h = p.run(&["--json", "history", "staging"]).ok().json();
    assert_eq!(h[0]["deployment"]["lifecycle"]["status"], "succeeded");
    assert_eq!(get(port).as_deref(), Some("ok"));
    p.run(&["events", "verify"]).ok();
    p.run(&["stop", "staging"]).ok();
}
