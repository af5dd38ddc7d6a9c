//! `rollway exec ENV -- COMMAND` end to end on an SSH host (a real sshd on
//! loopback): the command runs in the current release with that release's
//! variables and PORT, its output comes back masked, its exit code passes
//! through, a timeout ends it and everything it started, and each run is an
//! audit event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "support/ssh_project.rs"]
mod ssh_project;
#[path = "support/sshd.rs"]
mod sshd;

use ssh_project::SshProject;

const SECRET: &str = "exec-canary-7Qz!pL2";

/// A project deployed once to one SSH host, with a plain variable and a secret.
fn deployed() -> SshProject {
    let h = SshProject::new("exectest", common::OK_APP, SECRET);
    h.p.run(&["deploy", "staging"]).ok();
    h
}

#[test]
fn exec_runs_in_the_current_release_with_its_variables() {
    let h = deployed();
    let release = h.current();

    // A shell line as one word; its output masked, its exit code passed through.
    let r =
        h.p.run(&["exec", "staging", "--", "echo $GREETING $TOKEN port=$PORT; pwd; exit 7"]);
    assert_eq!(r.code, 7, "{r:#?}");
    let host = r.stdout.lines().next().unwrap().split(" │ ").next().unwrap().to_owned();
    let port = {
        let t = std::fs::read_to_string(h.p.path().join("rollway.toml")).unwrap();
        t.lines().find_map(|l| l.strip_prefix("port = ")).unwrap().to_owned()
    };
    assert_eq!(
        r.stdout,
        format!(
            "{host} │ hello **** port={port}\n{host} │ {}\n",
            h.root.join("releases").join(&release).canonicalize().unwrap().display()
        )
    );
    assert_eq!(
        r.stderr,
        format!("error: {host}: `echo $GREETING $TOKEN port=$PORT; pwd; exit 7` exited 7\n")
    );

    // Several words reach the program as given; --json answers one document.
    let r =
        h.p.run(&["--json", "exec", "staging", "--", "printf", "%s|", "a b", "$TOKEN"]);
    assert_eq!(r.code, 0, "{r:#?}");
    let j = r.json();
    assert_eq!(j[0]["output"], "a b|$TOKEN|");
    assert_eq!(j[0]["code"], 0);
    assert_eq!(j[0]["release"], release.as_str());

    // A timeout ends the command and what it started in the background.
    let marker = h.p.path().join("survivor");
    let line = format!("(sleep 2; touch {}) & sleep 30", marker.display());
    let r = h.p.run(&["exec", "staging", "--timeout", "1s", "--", &line]);
    assert_eq!(r.code, 124, "{r:#?}");
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(!marker.exists(), "a process the command started outlived its timeout");

    // Every run is audited, the secret masked there too.
    let events =
        h.p.run(&["--json", "events", "list", "--kind", "command-executed"])
            .ok()
            .json();
    let got: Vec<(String, serde_json::Value)> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["data"]["command"].as_str().unwrap().to_owned(),
                e["data"]["code"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "echo $GREETING $TOKEN port=$PORT; pwd; exit 7".to_owned(),
                serde_json::json!(7)
            ),
            ("printf '%s|' 'a b' '$TOKEN'".to_owned(), serde_json::json!(0)),
            (line.clone(), serde_json::Value::Null),
        ]
    );
    let all = h.p.run(&["--json", "events", "list"]).ok().stdout;
    assert!(!all.contains(SECRET), "the secret reached the audit log");

    // Bad input: an unknown host, nothing to run.
    let r = h.p.run(&["exec", "staging", "--host", "nosuch", "--", "true"]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert_eq!(
        r.stderr,
        format!("error: staging has no host nosuch: its hosts are {host}\n")
    );
    let r = h.p.run(&["exec", "staging"]);
    assert_eq!(r.code, 2, "{r:#?}");
    h.p.run(&["stop", "staging"]).ok();
}

/// `rollway status ENV` asks each host now, through its agent: the release,
/// whether the service runs (pid, uptime, restarts since the deploy) and
/// whether the health endpoint answers.
#[test]
fn status_of_one_environment_asks_its_hosts_now() {
    let h = deployed();
    let release = h.current();
    let live = |h: &SshProject| {
        let j = h.p.run(&["--json", "status", "staging"]).ok().json();
        j[0]["hosts"][0].clone()
    };
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let up = live(&h);
    assert_eq!(up["release"], release.as_str(), "{up:#}");
    assert_eq!(up["error"], serde_json::Value::Null, "{up:#}");
    assert!(up["pid"].as_u64().is_some(), "{up:#}");
    assert!(up["uptime_ms"].as_u64().unwrap() >= 1000, "{up:#}");
    assert_eq!(up["restarts"], 0, "{up:#}");
    assert_eq!(up["healthy"], true, "{up:#}");

    h.p.run(&["restart", "staging"]).ok();
    let again = live(&h);
    assert_eq!(again["restarts"], 1, "a restart counts: {again:#}");
    assert_ne!(again["pid"], up["pid"]);

    // Each command closes its multiplexed ssh connection when it ends…
    let sockets = |h: &SshProject| -> usize {
        use std::os::unix::fs::FileTypeExt as _;
        std::fs::read_dir(h.p.path().join(".rollway/ssh"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_socket()))
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(sockets(&h), 0, "a control socket outlived its command");
    // …unless `[ssh] persist` keeps it for the next one.
    let toml = std::fs::read_to_string(h.p.path().join("rollway.toml")).unwrap();
    h.p.write("rollway.toml", &toml.replace("[ssh]\n", "[ssh]\npersist = true\n"));
    live(&h);
    assert_eq!(sockets(&h), 1, "[ssh] persist keeps the connection");
    h.p.write("rollway.toml", &toml);

    h.p.run(&["stop", "staging"]).ok();
    let down = live(&h);
    assert_eq!(down["pid"], serde_json::Value::Null, "{down:#}");
    assert_eq!(down["healthy"], false, "{down:#}");
    let text = h.p.run(&["status", "staging"]).ok().stdout;
    assert!(text.contains("stopped"), "{text}");
}
