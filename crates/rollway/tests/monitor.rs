//! `rollway monitor list|check|pause|resume` through the real binary: the monitors of
//! rollway.toml (with an environment's default domain monitor), and one
//! probe now against a real HTTP server, a closed port and a server that
//! answers 500, with the exit code that says whether the sample was ok.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::http::HttpServer;
use common::{Backend, Project, Run};

/// A transcript of a run with its latency and ports redacted, and column
/// padding cut to two spaces (a port's digits move the columns).
fn transcript(r: &Run, port: u16, closed: u16) -> String {
    let latency = regex::Regex::new(r"\d+ ms").unwrap();
    let padding = regex::Regex::new(r"(\S)  +").unwrap();
    let text = format!("[exit {}]\n{}{}", r.code, r.stdout, r.stderr);
    let text = latency.replace_all(&text, "[n] ms");
    let text = text
        .replace(&port.to_string(), "[port]")
        .replace(&closed.to_string(), "[closed]");
    padding.replace_all(&text, "$1  ").into_owned()
}

#[test]
fn monitors_are_listed_and_checked_once_with_the_exit_saying_whether_it_was_ok() {
    let p = Project::new(Backend::Sqlite);
    let port = common::free_port();
    let closed = common::free_port();
    p.write(
        "rollway.toml",
        &format!(
            r#"project = "mon"

[service]
start = "sleep 100"
port = 3000

[environments.staging]
kind = "staging"
hosts = ["local"]
root = ".rollway/staging"
domain = "app.example.test"

[monitors.web]
environment = "staging"
kind = "http"
url = "http://127.0.0.1:{port}/"
interval = "5s"
location = "here"

[monitors.sick]
environment = "staging"
kind = "http"
url = "http://127.0.0.1:{port}/sick"
interval = "5s"

[monitors.gone]
environment = "staging"
kind = "tcp"
address = "127.0.0.1:{closed}"
interval = "10s"
timeout = "1s"
"#
        ),
    );
    let _server = HttpServer::start(&p, port);
    let check = |args: &[&str], expected: &str| {
        let r = p.run(args);
        assert_eq!(transcript(&r, port, closed), expected, "rollway {args:?}");
    };
    check(
        &["monitor", "list"],
        "[exit 0]
NAME  ENV  KIND  PROBES  EVERY  TIMEOUT  RETRIES  STATE
gone  staging  tcp  127.0.0.1:[closed]  10s  1s  3  -
sick  staging  http  http://127.0.0.1:[port]/sick  5s  2500ms  3  -
staging-domain  staging  http  http://app.example.test/  1m  5s  3  -
web  staging  http  http://127.0.0.1:[port]/  5s  2500ms  3  -
",
    );
    check(
        &["monitor", "pause", "gone"],
        "[exit 0]
monitor gone paused: `rollway serve` stops probing it (no data, not downtime)
",
    );
    check(
        &["monitor", "list"],
        "[exit 0]
NAME  ENV  KIND  PROBES  EVERY  TIMEOUT  RETRIES  STATE
gone  staging  tcp  127.0.0.1:[closed]  10s  1s  3  paused
sick  staging  http  http://127.0.0.1:[port]/sick  5s  2500ms  3  -
staging-domain  staging  http  http://app.example.test/  1m  5s  3  -
web  staging  http  http://127.0.0.1:[port]/  5s  2500ms  3  -
",
    );
    check(
        &["monitor", "resume", "gone"],
        "[exit 0]
monitor gone resumed
",
    );
    check(
        &["monitor", "pause", "nope"],
        "[exit 2]
error: no monitor nope in rollway.toml: the monitors are gone, sick, staging-domain, web
",
    );
    check(
        &["monitor", "check", "web"],
        "[exit 0]
monitor  web
probes  http://127.0.0.1:[port]/
outcome  ok
latency  [n] ms
http status  200
cache  hit
location  here
",
    );
    check(
        &["monitor", "check", "sick"],
        "[exit 1]
monitor  sick
probes  http://127.0.0.1:[port]/sick
outcome  error
latency  [n] ms
http status  500
cache  hit
error  status 500
error: monitor sick: error: status 500
",
    );
    check(
        &["monitor", "check", "gone"],
        "[exit 1]
monitor  gone
probes  127.0.0.1:[closed]
outcome  unavailable
latency  [n] ms
error  cannot connect to 127.0.0.1:[closed]: Connection refused (os error 111)
error: monitor gone: unavailable: cannot connect to 127.0.0.1:[closed]: Connection refused (os error 111)
",
    );
    check(
        &["monitor", "check", "nope"],
        "[exit 2]
error: no monitor nope in rollway.toml: the monitors are gone, sick, staging-domain, web
",
    );

    // Machines get the sample itself.
    let r = p.run(&["--json", "monitor", "check", "web"]).ok();
    let sample = &r.json()["sample"];
    assert_eq!(
        (
            sample["outcome"].as_str(),
            sample["http_status"].as_u64(),
            sample["location"].as_str()
        ),
        (Some("ok"), Some(200), Some("here"))
    );
}
