//! Seed rules enforced where a command changes data (issue 11 §3), each
//! driven through the real binary into the violation: what `rollback --to`
//! accepts and what a manual rollback records (seeds 000/001/002/003),
//! and artifacts that are empty or expired (seeds 000/001). The engine's
//! rules (seed 004 rollback_reason, failed stack rollbacks, seed 000 PASS
//! with its failed probes) are in `engine_rules.rs`.
//!
//! The app and project are `common::deploy`'s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::PathBuf;

use common::Run;
use common::deploy::{Config, Staging, get, id, now_ms, status};
use serde_json::Value;

/// A local `staging` whose hosts keep one release (so an older release is
/// found only through its artifact).
fn staging(project: &'static str, keep_releases: u32) -> (Staging, Config) {
    let s = Staging::new();
    let port = common::free_port();
    let mut c = Config::local(project, port, &s.path().join("host0"));
    c.env_extra = format!("keep_releases = {keep_releases}\n");
    s.configure(&c);
    (s, c)
}

fn deploy(s: &Staging, mode: &str) -> Run {
    s.mode(mode);
    s.run(&["deploy", "staging"])
}

/// The whole stderr of a refused command, with ids named.
fn refused(r: &Run, names: &[(&str, &str)]) -> (i32, String) {
    let mut text = r.stderr.trim_end().to_owned();
    for (value, name) in names {
        text = text.replace(value, name);
    }
    (r.code, text)
}

fn artifact_of(s: &Staging, deployment: &str) -> Value {
    let h = s.history();
    let d = h.iter().find(|d| id(d) == deployment).unwrap();
    let artifact = d["deployment"]["artifact_id"].as_str().unwrap().to_owned();
    s.run(&["--json", "artifact", "show", &artifact]).ok().json()
}

fn events(s: &Staging) -> Vec<Value> {
    s.run(&["--json", "events", "list", "--limit", "1000"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn rollback_to_accepts_only_an_earlier_succeeded_release_whose_artifact_is_present() {
    // Hosts keep one release (and the rollback target), so v1 is found
    // only through its artifact once v3 and v4 ran.
    let (s, c) = staging("rollbackto", 1);
    // An identity, so each release's env file is kept (encrypted) here.
    s.run(&["secrets", "init"]).ok();
    let mut ids = Vec::new();
    for (mode, code) in [("v1", 0), ("v2 sick", 1), ("v3", 0), ("v4", 0)] {
        let r = deploy(&s, mode);
        assert_eq!(r.code, code, "{mode}: {r:#?}");
        ids.push(id(&s.history()[0]).to_owned());
    }
    let [v1, v2, v3, v4] = [&ids[0], &ids[1], &ids[2], &ids[3]];
    let names = [
        (v1.as_str(), "V1"),
        (v2.as_str(), "V2"),
        (v3.as_str(), "V3"),
        (v4.as_str(), "V4"),
    ];

    // Each condition refused with exit 2 and what failed, before anything changes.
    let art = artifact_of(&s, v1);
    let location = PathBuf::from(art["location"].as_str().unwrap());
    let aside = location.with_extension("aside");
    let check = |to: &str, expected: &str| {
        let r = s.run(&["rollback", "staging", "--to", to, "--reason", "undo"]);
        assert_eq!(refused(&r, &names), (2, expected.to_owned()), "{r:#?}");
    };
    check(
        v4,
        "error: deployment V4 is the current release of staging: pick an earlier one from `rollway history staging`",
    );
    check(
        v2,
        "error: deployment V2 did not succeed (it is rolled_back): only a succeeded release can be returned to; see `rollway history staging`",
    );
    check("nope", "error: --to nope is not a deployment id");
    fs::rename(&location, &aside).unwrap();
    check(
        v1,
        &format!(
            "error: deployment V1 cannot be returned to: its release is no longer on every host of staging and its artifact {} is gone from {}: build and deploy that version instead",
            art["id"].as_str().unwrap(),
            location.display()
        ),
    );
    assert_eq!(
        get(c.port, "/").unwrap().1,
        "hello from v4\n",
        "a refused rollback changed nothing"
    );
    assert_eq!(status(&s.history()[0]), "succeeded");

    // Present again: the rollback ships it and records what seed 001 asks.
    fs::rename(&aside, &location).unwrap();
    let r = s.run(&["rollback", "staging", "--to", v1, "--reason", "back to v1"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(get(c.port, "/").unwrap().1, "hello from v1\n");
    let h = s.history();
    let back = id(&h[0]).to_owned();
    let superseded = h.iter().find(|d| id(d) == v4).unwrap();
    assert_eq!(
        (status(superseded), superseded["deployment"]["rollback_reason"].as_str()),
        ("rolled_back", Some("back to v1"))
    );
    let all = events(&s);
    let kinds: Vec<(&str, &str)> = all
        .iter()
        .filter_map(|e| Some((e["kind"].as_str()?, e["deployment_id"].as_str()?)))
        .filter(|(k, _)| k.starts_with("rollback-"))
        .filter(|(_, d)| *d == back || d == v4)
        .map(|(k, d)| (k, if d == back { "rollback" } else { "V4" }))
        .collect();
    assert_eq!(
        kinds,
        [("rollback-initiated", "rollback"), ("rollback-completed", "V4")],
        "{all:#?}"
    );

    // A second rollback goes further back, not to the release already running.
    let again = s.run(&["--json", "rollback", "staging", "--dry-run"]).ok().json();
    assert_eq!(again["to"].as_str(), Some(v3.as_str()), "{again:#}");
}

/// Sets an artifact's expiry (the column and the stored record) to `at_ms`.
fn expire(s: &Staging, artifact: &str, at_ms: u64) {
    s.project.sql(&format!(
        "UPDATE artifacts SET expires_at = {at_ms}, doc = json_set(doc, '$.expires_at', {at_ms}) WHERE id = '{artifact}'"
    ));
}

#[test]
fn an_expired_artifact_is_refused_renewed_by_a_build_and_kept_while_it_runs() {
    let (s, c) = staging("expiry", 5);
    s.mode("v1");
    let built = s.run(&["--json", "build"]).ok().json();
    let a = built["id"].as_str().unwrap().to_owned();
    let past = now_ms() - 60_000;
    expire(&s, &a, past);

    let r = s.run(&["deploy", "staging", "--artifact", &a]);
    let shown = s.run(&["--json", "artifact", "show", &a]).ok().json();
    assert_eq!(
        refused(&r, &[(a.as_str(), "A")]),
        (
            2,
            format!(
                "error: artifact A expired at {}: run `rollway build` for a fresh one, then deploy it",
                rollway_time(shown["expires_at"].as_u64().unwrap())
            )
        ),
        "{r:#?}"
    );
    assert!(get(c.port, "/").is_none(), "nothing was deployed");

    // The same content built again is handed back renewed, never expired.
    let rebuilt = s.run(&["--json", "build"]).ok().json();
    assert_eq!(rebuilt["id"].as_str(), Some(a.as_str()));
    assert!(
        rebuilt["expires_at"].as_u64().unwrap() > now_ms() + 86_400_000,
        "{rebuilt:#}"
    );
    assert_eq!(s.run(&["deploy", "staging", "--artifact", &a]).code, 0);

    // What a deployment runs never expires: not pruned, still deployable.
    expire(&s, &a, past);
    let pruned = s.run(&["--json", "artifact", "prune"]).ok().json();
    assert_eq!(pruned["removed"], Value::Array(vec![]));
    assert_eq!(s.run(&["deploy", "staging", "--artifact", &a]).code, 0);
}

/// How the CLI prints a time: RFC 3339 in UTC with milliseconds.
fn rollway_time(ms: u64) -> String {
    let out = std::process::Command::new("date")
        .args([
            "-u",
            "-d",
            &format!("@{}.{:03}", ms / 1000, ms % 1000),
            "+%Y-%m-%dT%H:%M:%S.%3NZ",
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn an_empty_build_output_is_refused() {
    let (s, _) = staging("emptybuild", 5);
    let mut c = Config::local("emptybuild", common::free_port(), &s.path().join("host0"));
    c.build = "rm -rf dist && mkdir dist".to_owned();
    s.configure(&c);
    let r = s.run(&["build"]);
    assert_eq!(
        refused(&r, &[]),
        (
            2,
            "error: the build output ./dist holds no files: an empty artifact cannot be deployed; check [build] output and the build command"
                .to_owned()
        ),
        "{r:#?}"
    );
    let list = s.run(&["--json", "artifact", "list"]).ok().json();
    assert_eq!(list, Value::Array(vec![]), "nothing recorded");
}
