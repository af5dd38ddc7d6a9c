//! End-to-end tests of the `rollway` binary for the foundation: init,
//! config check, environment lifecycle, the audit log and its tampering,
//! `--json` everywhere, completions, man and colour.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, Project, redact};

#[test]
fn init_then_check_passes_in_an_empty_directory() {
    let p = Project::new(Backend::Sqlite);
    p.run(&["init"]).ok();
    let r = p.run(&["config", "check"]).ok();
    assert!(r.stdout.contains("rollway.toml is valid"), "{r:?}");
    let j = p.run(&["--json", "config", "check"]).ok().json();
    assert_eq!(j["ok"], true);
    let names: Vec<&str> = j["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["production", "staging"]);
    let again = p.run(&["init"]);
    assert_eq!(again.code, 2, "init must not overwrite: {again:?}");
    assert!(again.stderr.contains("already exists"), "{again:?}");
}

/// `init` keeps the state directory and the local staging root out of git,
/// adding to a `.gitignore` the user has rather than replacing it.
#[test]
fn init_ignores_local_state_in_git() {
    let check = |before: Option<&str>, expected: &str| {
        let p = Project::new(Backend::Sqlite);
        if let Some(text) = before {
            p.write(".gitignore", text);
        }
        p.run(&["init"]).ok();
        let after = std::fs::read_to_string(p.path().join(".gitignore")).unwrap();
        assert_eq!(after, expected, "from {before:?}");
    };
    let header = "# rollway: the state directory, the local staging root, secrets file locks\n";
    check(None, &format!("{header}/.rollway/\n/srv/\n*.age.lock\n"));
    check(
        Some("node_modules\n"),
        &format!("node_modules\n{header}/.rollway/\n/srv/\n*.age.lock\n"),
    );
    check(
        Some("dist\n.rollway"),
        &format!("dist\n.rollway\n{header}/srv/\n*.age.lock\n"),
    );
    check(Some("/.rollway/\nsrv/\n*.age.lock\n"), "/.rollway/\nsrv/\n*.age.lock\n");

    // The template's staging root lies outside the state directory.
    let p = Project::new(Backend::Sqlite);
    p.run(&["init"]).ok();
    let j = p.run(&["--json", "env", "show", "staging"]).ok().json();
    let root = j.to_string();
    assert!(
        root.contains("srv/staging") && !root.contains(".rollway/staging"),
        "{j:#}"
    );
}

#[test]
fn a_missing_config_says_what_to_do() {
    let p = Project::new(Backend::Sqlite);
    let r = p.run(&["config", "check"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("run `rollway init`"), "{r:?}");
}

/// One config with six different problems: exit 2 and exactly one
/// `rollway.toml:LINE:COL` line for each, at the right place.
#[test]
fn six_problems_are_reported_in_one_run() {
    let p = Project::new(Backend::Sqlite);
    p.write(
        "rollway.toml",
        r#"project = "hello"
colour = "blue"

[health]
retries = "many"

[environments.production]
kind = "production"
hosts = ["local"]
root = "/srv/hello"
domain = "not a domain"
https = false

[environments.qa]
kind = "quality"
hosts = ["local"]
root = ".rollway/qa"

[jobs.a]
run = "true"
needs = ["b"]

[jobs.b]
run = "true"
needs = ["a"]
"#,
    );
    let r = p.run(&["config", "check"]);
    assert_eq!(r.code, 2, "{r:?}");
    let located: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("rollway.toml:")).collect();
    assert_eq!(located.len(), 6, "exactly six located lines: {located:#?}");
    let at = |line: usize, col: usize, needle: &str| {
        let prefix = format!("rollway.toml:{line}:{col}: ");
        let hits: Vec<_> = located.iter().filter(|l| l.starts_with(&prefix)).collect();
        assert_eq!(hits.len(), 1, "one diagnostic at {line}:{col}: {located:#?}");
        assert!(
            hits[0].contains(needle),
            "{line}:{col} should mention {needle:?}: {}",
            hits[0]
        );
        assert!(hits[0].contains(" — "), "every diagnostic says what to do: {}", hits[0]);
    };
    at(2, 1, "colour");
    at(5, 11, "retries");
    at(11, 10, "domain");
    at(12, 9, "https");
    at(15, 8, "quality");
    at(21, 10, "a → b → a");
    let j = p.run(&["--json", "config", "check"]);
    assert_eq!(j.code, 2);
    assert_eq!(j.json()["error"]["details"].as_array().unwrap().len(), 6);
}

#[test]
fn a_deprecated_environment_cannot_be_activated_again() {
    for p in Project::each_backend() {
        let b = p.backend.name();
        p.run(&["init"]).ok();
        p.run(&["env", "activate", "staging"]).ok();
        p.run(&["env", "deprecate", "staging"]).ok();
        let r = p.run(&["env", "activate", "staging"]);
        assert_eq!(r.code, 3, "{b}: {r:?}");
        assert!(
            r.stderr
                .contains("forbidden environment transition deprecated → active"),
            "{b}: {r:?}"
        );
        let envs = p.run(&["--json", "env", "list"]).ok().json();
        let staging = envs
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "staging")
            .unwrap();
        assert_eq!(staging["lifecycle"]["status"], "deprecated", "{b}");
        let kinds: Vec<String> = p
            .run(&["--json", "events", "list"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            kinds,
            [
                "environment-created",
                "environment-created",
                "environment-transition",
                "environment-transition"
            ],
            "{b}: the refused transition wrote no event"
        );
        p.run(&["events", "verify"]).ok();
        let unknown = p.run(&["env", "activate", "nope"]);
        assert_eq!(unknown.code, 2, "{b}: {unknown:?}");
        assert!(
            unknown.stderr.contains("known environments are production, staging"),
            "{unknown:?}"
        );
    }
}

#[test]
fn env_show_prints_the_record_and_its_history() {
    let p = Project::new(Backend::Sqlite);
    p.run(&["init"]).ok();
    p.run(&["env", "activate", "production"]).ok();
    let r = p.run(&["env", "show", "production"]).ok();
    insta::assert_snapshot!(redact(&r.stdout));
    let j = p.run(&["--json", "env", "show", "production"]).ok().json();
    assert_eq!(j["environment"]["kind"], "production");
    assert_eq!(j["environment"]["https"], true);
}

/// Builds a log of at least six events, then tampers with it one way.
fn tampered(p: &Project, sql: &[&str]) -> common::Run {
    p.run(&["init"]).ok();
    for args in [
        ["env", "activate", "staging"],
        ["env", "deprecate", "staging"],
        ["env", "activate", "production"],
    ] {
        p.run(&args).ok();
    }
    let n = p
        .run(&["--json", "events", "list"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .len();
    assert_eq!(n, 5);
    p.run(&["events", "verify"]).ok();
    for stmt in sql {
        p.sql(stmt);
    }
    p.run(&["events", "verify"])
}

#[test]
fn events_verify_finds_each_tampering_on_both_backends() {
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "edited column",
            &["UPDATE events SET message = 'nothing happened' WHERE seq = 3"],
            "event 3",
        ),
        (
            "middle row deleted",
            &["DELETE FROM events WHERE seq = 2"],
            "event 2 is missing",
        ),
        (
            "last row deleted",
            &["DELETE FROM events WHERE seq = 5"],
            "deleted from the end",
        ),
        (
            "two rows swapped",
            &[
                "UPDATE events SET seq = -1 WHERE seq = 2",
                "UPDATE events SET seq = 2 WHERE seq = 3",
                "UPDATE events SET seq = 3 WHERE seq = -1",
            ],
            "event 2",
        ),
    ];
    for (what, sql, needle) in cases {
        for p in Project::each_backend() {
            let b = p.backend.name();
            let r = tampered(&p, sql);
            assert_eq!(r.code, 1, "{b} {what}: {r:?}");
            assert!(r.stderr.contains(needle), "{b} {what}: expected {needle:?} in {r:?}");
            let j = p.run(&["--json", "events", "verify"]);
            assert_eq!(j.code, 1);
            assert_eq!(j.json()["error"]["details"]["intact"], false, "{b} {what}");
        }
    }
}

#[test]
fn every_command_answers_json() {
    let p = Project::new(Backend::Sqlite);
    let init = p.run(&["--json", "init"]).ok().json();
    assert!(init["written"].as_str().unwrap().ends_with("rollway.toml"));
    for args in [
        &["--json", "config", "check"][..],
        &["--json", "config", "schema"],
        &["--json", "env", "list"],
        &["--json", "env", "show", "staging"],
        &["--json", "env", "activate", "staging"],
        &["--json", "env", "deprecate", "staging"],
        &["--json", "events", "list"],
        &[
            "--json",
            "events",
            "list",
            "--kind",
            "environment-created",
            "--limit",
            "1",
        ],
        &["--json", "events", "verify"],
    ] {
        let r = p.run(args).ok();
        let _ = r.json();
    }
    let err = p.run(&["--json", "env", "activate", "staging"]);
    assert_eq!(err.code, 3);
    assert_eq!(err.json()["error"]["code"], 3);
    let schema = p.run(&["--json", "config", "schema"]).json();
    assert!(schema.to_string().contains("stability_window"));
}

#[test]
fn completions_and_man_page_are_generated_from_the_grammar() {
    let p = Project::new(Backend::Sqlite);
    let bash = p.run(&["completions", "bash"]).ok();
    assert!(
        bash.stdout.contains("rollway") && bash.stdout.contains("deprecate"),
        "{bash:?}"
    );
    let man = p.run(&["man"]).ok();
    assert!(man.stdout.contains(".TH rollway"), "{man:?}");
    let dir = p.path().join("man");
    p.run(&["man", "--dir", dir.to_str().unwrap()]).ok();
    assert!(dir.join("rollway-env.1").exists());
    let bad = p.run(&["completions", "tcsh"]);
    assert_eq!(bad.code, 2, "usage errors exit 2: {bad:?}");
}

/// Colour on a terminal, none with NO_COLOR (run under `script` for a pty).
#[test]
fn colour_follows_the_terminal_and_no_color() {
    let p = Project::new(Backend::Sqlite);
    p.run(&["init"]).ok();
    let bin = env!("CARGO_BIN_EXE_rollway");
    let under_pty = |no_color: bool| {
        let mut cmd = std::process::Command::new("script");
        cmd.args(["-qec", &format!("{bin} env list"), "/dev/null"])
            .current_dir(p.path());
        cmd.env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .env("TERM", "xterm");
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(under_pty(false).contains("\x1b["), "a terminal gets colour");
    let plain = under_pty(true);
    assert!(!plain.contains("\x1b["), "NO_COLOR turns colour off: {plain:?}");
    assert!(plain.contains("staging"));
}
