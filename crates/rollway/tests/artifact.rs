//! `rollway build` and `rollway artifact` with the real binary: the record
//! and its seed fields, a flipped byte caught by `verify`, prune keeping
//! what runs and what could be returned to, a deploy refusing unresolved
//! aliases, no progress bar when nobody watches, and a HEAD that is no git
//! hash refusing the build.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;

use common::{Backend, Project, free_port};

fn project(extra_build: &str, port: u16) -> Project {
    let p = Project::new(Backend::Sqlite);
    p.write(
        "rollway.toml",
        &format!(
            r#"project = "art"

[build]
output = "dist"
{extra_build}

[service]
start = "exec python3 -m http.server $PORT --bind 127.0.0.1"
port = {port}

[health]
path = "/"
interval = "100ms"
retries = 50
stability_window = "0s"

[environments.staging]
kind = "staging"
hosts = ["local"]
root = "srv"
"#
        ),
    );
    fs::create_dir_all(p.path().join("dist")).unwrap();
    p
}

fn build(p: &Project, body: &str) -> serde_json::Value {
    p.write("dist/index.html", body);
    p.run(&["--json", "build"]).ok().json()
}

#[test]
fn the_record_carries_every_seed_field_and_a_flipped_byte_fails_verify() {
    let p = project("kind = \"frontend-build\"", free_port());
    fs::create_dir_all(p.path().join("dist/assets")).unwrap();
    p.write("dist/assets/app.js", "console.log(1)\n");
    let build = p.run(&["--json", "build"]);
    assert!(
        !build.stderr.contains("packing ["),
        "no progress bar off a terminal: {}",
        build.stderr
    );
    let a = build.ok().json();
    assert_eq!(a["kind"], "frontend-build");
    assert!(a["size_bytes"].as_u64().unwrap() > 0);
    assert_eq!(a["aliases_resolved"], true);
    assert_eq!(a["source_version"], serde_json::Value::Null, "outside git");
    let location = a["location"].as_str().unwrap();
    assert!(location.starts_with('/'), "{location}");
    assert!(a["expires_at"].as_i64().unwrap() - a["built_at"].as_i64().unwrap() >= 89 * 86_400_000);
    let folders: Vec<&str> = a["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert!(folders.contains(&"assets"), "{folders:?}");

    let id = a["id"].as_str().unwrap();
    let sha = a["sha256"].as_str().unwrap();
    // Named by id, digest or prefix of either.
    for name in [id, sha, &sha[..10], &id[..13]] {
        let shown = p.run(&["--json", "artifact", "show", name]).ok().json();
        assert_eq!(shown["id"], id, "{name}");
        p.run(&["artifact", "verify", name]).ok();
    }

    let mut bytes = fs::read(location).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    fs::write(location, &bytes).unwrap();
    let bad = p.run(&["artifact", "verify", id]);
    assert_eq!(bad.code, 1, "{bad:#?}");
    assert!(bad.stderr.contains(location), "names the archive: {}", bad.stderr);
    assert!(
        bad.stderr.contains(&format!("artifact {id} is damaged")),
        "names the record: {}",
        bad.stderr
    );
    assert!(
        bad.stderr.contains("entry '"),
        "names the first bad entry: {}",
        bad.stderr
    );
}

#[test]
fn prune_keeps_the_current_release_and_rollback_targets_and_removes_the_expired_rest() {
    let port = free_port();
    let p = project("expire_after = \"1s\"", port);
    let first = build(&p, "v1");
    p.run(&["deploy", "staging", "--artifact", first["id"].as_str().unwrap()])
        .ok();
    let second = build(&p, "v2");
    p.run(&["deploy", "staging", "--artifact", second["id"].as_str().unwrap()])
        .ok();
    let unused = build(&p, "never deployed");
    std::thread::sleep(std::time::Duration::from_millis(1100));

    let dry = p.run(&["--json", "artifact", "prune", "--dry-run"]).ok().json();
    let would: Vec<&str> = dry["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(would, [unused["id"].as_str().unwrap()]);
    assert!(
        fs::metadata(unused["location"].as_str().unwrap()).is_ok(),
        "a dry run removes nothing"
    );

    let pruned = p.run(&["--json", "artifact", "prune"]).ok().json();
    let removed: Vec<&str> = pruned["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(removed, [unused["id"].as_str().unwrap()]);
    assert!(fs::metadata(unused["location"].as_str().unwrap()).is_err());
    for kept in [&first, &second] {
        assert!(fs::metadata(kept["location"].as_str().unwrap()).is_ok(), "{kept}");
        p.run(&["artifact", "verify", kept["id"].as_str().unwrap()]).ok();
    }
    let listed = p.run(&["--json", "artifact", "list"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let events = p
        .run(&["--json", "events", "list", "--kind", "artifact-pruned"])
        .ok()
        .json();
    assert_eq!(events.as_array().unwrap().len(), 1, "{events}");
    p.run(&["stop", "staging"]).ok();
}

#[test]
fn a_deploy_refuses_an_artifact_with_unresolved_aliases() {
    let p = project("", free_port());
    p.write(
        "tsconfig.json",
        r#"{ "compilerOptions": { "baseUrl": ".", "paths": { "@/*": ["src/*"] } } }"#,
    );
    p.write("dist/index.html", "ok");
    p.write(
        "dist/main.js",
        "const x = require(\"./ok\");\nimport y from \"@/lib/y\";\n",
    );
    let a = p.run(&["--json", "build"]).ok().json();
    assert_eq!(a["aliases_resolved"], false);
    let refused = p.run(&["deploy", "staging", "--artifact", a["id"].as_str().unwrap()]);
    assert_eq!(refused.code, 2, "{refused:#?}");
    assert!(
        refused.stderr.contains("main.js:2: unresolved alias '@/lib/y'"),
        "{}",
        refused.stderr
    );
    let history = p.run(&["--json", "history", "staging"]).ok().json();
    assert_eq!(history.as_array().unwrap().len(), 0, "nothing was deployed");
}

#[test]
fn a_deploy_refuses_an_archive_changed_on_disk_even_when_every_file_is_linked() {
    let p = project("", free_port());
    let a = build(&p, "v1");
    let id = a["id"].as_str().unwrap();
    p.run(&["deploy", "staging", "--artifact", id]).ok();
    // The same artifact again: every file is linked, nothing is read from the
    // archive — its digest must still be proved.
    p.run(&["deploy", "staging", "--artifact", id]).ok();
    let current = fs::read_link(p.path().join("srv/current")).unwrap();

    let location = a["location"].as_str().unwrap();
    let mut bytes = fs::read(location).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    fs::write(location, &bytes).unwrap();
    let refused = p.run(&["deploy", "staging", "--artifact", id]);
    assert_eq!(refused.code, 1, "{refused:#?}");
    assert!(refused.stderr.contains("the record says"), "{}", refused.stderr);
    assert!(refused.stderr.contains(location), "{}", refused.stderr);
    assert_eq!(
        fs::read_link(p.path().join("srv/current")).unwrap(),
        current,
        "nothing switched"
    );
    p.run(&["stop", "staging"]).ok();
}

/// Seed 001 "commitHash must be a valid git hash format": when what git
/// names as HEAD is no git hash, the build is refused with a message and
/// nothing is recorded — the commit is not dropped as if outside git.
#[test]
fn a_head_that_is_no_git_hash_refuses_the_build() {
    use std::os::unix::fs::PermissionsExt as _;
    let p = project("", free_port());
    p.write("dist/index.html", "v1");
    // A stand-in for git, the one way to make `rev-parse HEAD` answer
    // something that is not a hash (a real git never does).
    fs::create_dir_all(p.path().join("fakebin")).unwrap();
    let git = p.write("fakebin/git", "#!/bin/sh\necho not-a-hash\n");
    fs::set_permissions(&git, fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        p.path().join("fakebin").display(),
        std::env::var("PATH").unwrap()
    );
    let refused = p.run_full(&["build"], "", &[("PATH", &path)]);
    assert_eq!(refused.code, 2, "{refused:#?}");
    assert!(
        refused.stderr.contains("'not-a-hash' is not a git commit hash"),
        "the message names the value and the rule: {}",
        refused.stderr
    );
    let list = p.run(&["--json", "artifact", "list"]).ok().json();
    assert_eq!(list.as_array().map(Vec::len), Some(0), "nothing recorded: {list}");
}
