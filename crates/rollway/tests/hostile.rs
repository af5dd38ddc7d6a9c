//! Reproductions from a hostile test (issue 10), each driven through the
//! real binary where a user would meet it: silent wrong results, stuck and
//! hanging runs, unbounded input and leaks of clear text.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::Path;

use common::{Backend, Project, Run};

/// A project with a `local` staging environment serving [`common::OK_APP`], an
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
    p.write("app/server.py", common::OK_APP);
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
    p.run_full(&["stop", "staging"], "", &[("ROLLWAY_IDENTITY", "./typo")])
        .ok();
}

// 2. Concurrent writers of one secrets file lose nothing.

/// The keys of `secrets list ENV --json`.
fn listed_keys(p: &Project, env: &str) -> Vec<String> {
    let r = p.run(&["secrets", "list", env, "--json"]).ok();
    let mut keys: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["key"].as_str().unwrap().to_owned())
        .collect();
    keys.sort();
    keys
}

#[test]
fn concurrent_secrets_set_keeps_every_value() {
    let p = app_project("");
    let children: Vec<_> = (1..=5)
        .map(|i| {
            let key = format!("K{i}");
            let value = format!("val_{i}");
            std::thread::spawn({
                let dir = p.path().to_owned();
                move || {
                    use std::io::Write as _;
                    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_rollway"))
                        .args(["secrets", "set", "staging", &key, "--plain"])
                        .current_dir(&dir)
                        .env("XDG_CONFIG_HOME", dir.join("xdg"))
                        .env("ROLLWAY_OPERATOR", "tester@example.com")
                        .env_remove("ROLLWAY_IDENTITY")
                        .env_remove("ROLLWAY_STORE")
                        .stdin(std::process::Stdio::piped())
                        .stdout(std::process::Stdio::piped())
                        .stderr(std::process::Stdio::piped())
                        .spawn()
                        .unwrap();
                    c.stdin.take().unwrap().write_all(value.as_bytes()).unwrap();
                    c.wait_with_output().unwrap()
                }
            })
        })
        .collect();
    for c in children {
        let out = c.join().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(listed_keys(&p, "staging"), ["K1", "K2", "K3", "K4", "K5"]);
    for i in 1..=5 {
        let r = p.run(&["secrets", "get", "staging", &format!("K{i}")]).ok();
        assert_eq!(r.stdout.trim(), format!("val_{i}"));
    }
    p.run(&["secrets", "check", "staging"]).ok();
}

#[test]
fn a_held_secrets_lock_exits_3_naming_the_holder() {
    let p = app_project("");
    fs::create_dir_all(p.path().join("secrets")).unwrap();
    let lock = p.path().join("secrets/staging.age.lock");
    fs::write(&lock, "ops@example.com, pid 4242\n").unwrap();
    // flock(1) holds the lock the way another rollway would.
    let mut holder = std::process::Command::new("flock")
        .arg("-o")
        .arg(&lock)
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let check = |args: &[&str]| {
        let r = p.run_full(args, "v", &[("ROLLWAY_SECRETS_LOCK_WAIT", "500ms")]);
        assert_fails(&r, 3, "ops@example.com, pid 4242");
    };
    check(&["secrets", "set", "staging", "K", "--plain"]);
    check(&["secrets", "rm", "staging", "K"]);
    holder.kill().unwrap();
    holder.wait().unwrap();
    p.run_with_stdin(&["secrets", "set", "staging", "K", "--plain"], "v")
        .ok();
}

#[test]
fn secrets_check_notices_when_the_store_and_the_file_disagree() {
    let p = app_project("");
    p.run_with_stdin(&["secrets", "set", "staging", "ONE", "--plain"], "1")
        .ok();
    p.run_with_stdin(&["secrets", "set", "staging", "TWO", "--plain"], "2")
        .ok();
    let check = |sql: &str, code: i32, expected: &str| {
        p.sql(sql);
        let r = p.run(&["secrets", "check", "staging"]);
        assert_eq!(r.code, code, "{r:#?}");
        assert!(r.stderr.contains(expected), "{r:#?}");
    };
    check(
        "DELETE FROM variables WHERE key = 'ONE'",
        0,
        "note: recorded ONE of staging now: it has a value in ./secrets/staging.age but had no record in the store",
    );
    check(
        "INSERT INTO variables (id, environment, key, type, scheme, secret, platform_synced, synced_at, \
         created_at, updated_at, rotated_at, allow_weak) SELECT '01900000-0000-7000-8000-000000000001', environment, 'GHOST', type, scheme, \
         secret, platform_synced, synced_at, created_at, updated_at, rotated_at, allow_weak FROM variables \
         WHERE key = 'TWO'",
        2,
        "GHOST is recorded in the store but has no value in ./secrets/staging.age",
    );
}

// 3. The store never hides its own loss.

#[test]
fn the_store_is_never_silently_recreated_or_misread() {
    let check = |setup: &dyn Fn(&Project), args: &[&str], code: i32, expected: &str| {
        let p = app_project("");
        setup(&p);
        let mut all = vec!["env", "list"];
        all.extend_from_slice(args);
        let r = p.run(&all);
        assert_fails(&r, code, expected);
        assert!(!p.path().join("nonexistent").exists(), "no directory made: {r:#?}");
        p
    };
    let nothing = |_: &Project| {};
    let empty_db = |p: &Project| {
        p.run(&["env", "list"]).ok();
        fs::write(p.sqlite_path(), "").unwrap();
    };
    let garbage_db = |p: &Project| {
        p.run(&["env", "list"]).ok();
        fs::write(p.sqlite_path(), "this is not a database\n").unwrap();
    };
    check(&empty_db, &[], 1, "rollway.db is empty: its data is lost");
    check(&garbage_db, &[], 1, "rollway.db is not a SQLite database");
    check(
        &nothing,
        &["--store", "mysql://u@db/app"],
        2,
        "unknown store scheme 'mysql'",
    );
    check(
        &nothing,
        &["--store", "http://example.com/x.db"],
        2,
        "unknown store scheme 'http'",
    );
    check(
        &nothing,
        &["--store", "postgres://postgres:pw@127.0.0.1:5432/"],
        2,
        "postgres://postgres:****@127.0.0.1:5432/ names no database",
    );
    check(
        &nothing,
        &["--store", "nonexistent/dir/x.db"],
        2,
        "no store at nonexistent/dir/x.db",
    );
    check(
        &nothing,
        &["--store", "nonexistent/dir/x.db", "--create-store"],
        2,
        "no directory nonexistent/dir",
    );
    let p = check(&nothing, &["--store", "other.db"], 2, "pass --create-store");
    p.run(&["env", "list", "--store", "other.db", "--create-store"]).ok();
    p.run(&["env", "list", "--store", "other.db"]).ok();
}

// 4. Only secrets are scanned for in a build's output.

#[test]
fn a_plain_variable_never_blocks_a_build() {
    let check = |key: &str, plain: bool, value: &str, expected: Result<(), &str>| {
        let p = app_project("");
        let mut args = vec!["secrets", "set", "staging", key];
        if plain {
            args.push("--plain");
        }
        p.run_with_stdin(&args, value).ok();
        p.write("app/settings.txt", &format!("mode={value}\n"));
        let r = p.run(&["build", "--env", "staging"]);
        match expected {
            Ok(()) => assert_eq!(r.code, 0, "{key}: {r:#?}"),
            Err(fragment) => assert_fails(&r, 2, fragment),
        }
    };
    check("NODE_ENV", true, "production", Ok(()));
    check("API_KEY", false, "k-Hq3vR8zLm2Xw9Tk4Pb7Yc", Err("secret API_KEY"));
}

// 5. A host that accepts TCP and never answers fails the deployment in bounded time.

/// A loopback listener that accepts connections and never says a word.
fn silent_host() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
    port
}

#[test]
fn a_silent_ssh_host_fails_the_deploy_in_bounded_time() {
    let port = silent_host();
    let p = app_project(&format!(
        r#"
[environments.remote]
kind = "staging"
hosts = ["root@127.0.0.1:{port}"]
root = "/srv/hostile"

[ssh]
connect_timeout = "2s"
alive_interval = "1s"
alive_count_max = 2
"#
    ));
    let start = std::time::Instant::now();
    let r = p.run(&["deploy", "remote"]);
    eprintln!("deploy to a silent host ended after {:?}", start.elapsed());
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stderr.contains("127.0.0.1"), "the message names the host: {r:#?}");
    let history = p.run(&["history", "remote", "--json"]).ok().json();
    let statuses: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["deployment"]["lifecycle"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed"], "{history:#}");
    let status = p.run(&["status", "remote", "--json"]).ok().json();
    assert_eq!(status[0]["lock"], serde_json::Value::Null, "no lease held: {status:#}");
    assert_eq!(status[0]["in_progress"], serde_json::json!([]), "{status:#}");
}

/// An agent that stops answering mid-deploy (SIGSTOP: its pipes stay
/// open, it never reads or writes again) fails the deployment within the
/// quiet limit naming the host, and leaves nothing in progress.
#[test]
fn a_stopped_agent_fails_the_deploy_within_its_quiet_limit() {
    let p = app_project("");
    let mut deploy = p
        .command(&["deploy", "staging"])
        .env("ROLLWAY_AGENT_QUIET", "2s")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    // Stop the first agent the deploy starts, whatever step it is at.
    let parent = deploy.id().to_string();
    let stopped = loop {
        let out = std::process::Command::new("pgrep")
            .args(["-P", &parent, "-f", "agent --root"])
            .output()
            .unwrap();
        if let Some(pid) = String::from_utf8_lossy(&out.stdout).split_whitespace().next() {
            let sent = std::process::Command::new("kill")
                .args(["-STOP", pid])
                .status()
                .unwrap();
            assert!(sent.success());
            break pid.to_owned();
        }
        assert!(
            deploy.try_wait().unwrap().is_none(),
            "the deploy ended before it started an agent"
        );
        assert!(start.elapsed() < std::time::Duration::from_secs(60), "no agent started");
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let stopped_at = std::time::Instant::now();
    let out = deploy.wait_with_output().unwrap();
    let took = stopped_at.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("agent {stopped} stopped; the deploy ended {took:?} later:\n{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("on local") || stderr.contains("local:"),
        "the message names the host: {stderr}"
    );
    assert!(
        stderr.contains("the agent did not answer within 2s (no byte moved either way), so rollway stopped it"),
        "{stderr}"
    );
    assert!(took < std::time::Duration::from_secs(30), "bounded: {took:?}");
    // The watchdog killed it (a stopped process dies of SIGKILL too).
    let alive = std::process::Command::new("kill")
        .args(["-0", &stopped])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!alive.success(), "the stopped agent {stopped} was killed");
    let status = p.run(&["status", "staging", "--json"]).ok().json();
    assert_eq!(status[0]["lock"], serde_json::Value::Null, "no lease held: {status:#}");
    assert_eq!(status[0]["in_progress"], serde_json::json!([]), "{status:#}");
}

// 6. SIGTERM and SIGHUP are handled like Ctrl-C.

/// The status of `env`'s deployment in progress, if any.
fn in_progress(p: &Project, env: &str) -> Option<String> {
    let status = p.run(&["status", env, "--json"]).ok().json();
    status[0]["in_progress"]
        .as_array()?
        .first()
        .and_then(|d| d["lifecycle"]["status"].as_str().or(d["status"].as_str()))
        .map(str::to_owned)
}

#[test]
fn a_signal_during_the_window_detaches_with_exit_130() {
    let check = |signal: &str| {
        let p = app_project("");
        let toml = fs::read_to_string(p.path().join("rollway.toml"))
            .unwrap()
            .replace("stability_window = \"200ms\"", "stability_window = \"4s\"");
        p.write("rollway.toml", &toml);
        let child = p
            .command(&["deploy", "staging"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while in_progress(&p, "staging").as_deref() != Some("verifying") {
            assert!(
                std::time::Instant::now() < deadline,
                "{signal}: the window never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{signal}: {stderr}");
        // DESIGN.md: during the window the CLI detaches; the deployment stays
        // verifying and keeps the lease until its window ends.
        assert!(
            stderr.contains("interrupted during the stability window: deployment"),
            "{signal}: {stderr}"
        );
        assert_eq!(in_progress(&p, "staging").as_deref(), Some("verifying"), "{signal}");
        let status = p.run(&["status", "staging", "--json"]).ok().json();
        assert_eq!(status[0]["lock"]["owner"], "tester@example.com", "{signal}: {status:#}");
        // `rollway verify` watches the rest of it and settles it.
        let r = p.run(&["verify", "staging"]);
        assert_eq!(r.code, 0, "{signal}: {r:#?}");
        assert_eq!(in_progress(&p, "staging"), None, "{signal}: nothing left in progress");
        let status = p.run(&["status", "staging", "--json"]).ok().json();
        assert_eq!(status[0]["lock"], serde_json::Value::Null, "{signal}: {status:#}");
        // Leave no service behind.
        p.run(&["stop", "staging"]);
    };
    check("INT");
    check("TERM");
    check("HUP");
}

// 7. Durations have sane maximums, stated in a located diagnostic.

#[test]
fn absurd_durations_are_config_errors_at_their_position() {
    let check = |toml: &str, expected: &str| {
        let p = Project::new(Backend::Sqlite);
        p.write(
            "rollway.toml",
            &format!(
                "project = \"d\"\n{toml}\n[environments.s]\nkind = \"staging\"\nhosts = [\"local\"]\nroot = \"srv\"\n"
            ),
        );
        let r = p.run(&["config", "check"]);
        assert_fails(&r, 2, expected);
    };
    check(
        "[health]\ntimeout = \"99999999999999999999d\"",
        "rollway.toml:3:11: health.timeout is longer than the maximum of 1h",
    );
    check(
        "[health]\ninterval = \"2h\"",
        "rollway.toml:3:12: health.interval is longer than the maximum of 1h",
    );
    check(
        "[health]\nstability_window = \"8d\"",
        "rollway.toml:3:20: health.stability_window is longer than the maximum of 7d",
    );
    check(
        "[build]\noutput = \"dist\"\nexpire_after = \"3651d\"",
        "rollway.toml:4:16: build.expire_after is longer than the maximum of 3650d",
    );
    check(
        "[ssh]\nconnect_timeout = \"2h\"",
        "rollway.toml:3:19: ssh.connect_timeout is longer than the maximum of 1h",
    );
    check(
        "[jobs.t]\nrun = \"true\"\ntimeout = \"8d\"",
        "rollway.toml:4:11: jobs.t.timeout is longer than the maximum of 7d",
    );
}

// 8. Output never panics on width; names have length limits.

#[test]
fn a_huge_cell_is_cut_not_a_panic() {
    let p = app_project("\n[jobs.t]\nrun = \"true\"\n");
    let operator = "o".repeat(70_000);
    p.run(&["pipeline", "run", "--operator", &operator]).ok();
    let r = p.run(&["pipeline", "list"]).ok();
    let longest = r.stdout.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(r.stdout.contains('…'), "{r:#?}");
    assert!(longest < 1000, "lines are cut: {longest}");
}

#[test]
fn overlong_names_are_refused_with_their_limit() {
    let long = "n".repeat(200);
    let shown = format!("{}…", "n".repeat(40));
    let check = |toml_extra: &str, args: &[&str], stdin: &str, expected: &str| {
        let p = app_project(toml_extra);
        let r = p.run_with_stdin(args, stdin);
        assert_fails(&r, 2, expected);
        assert!(!r.stderr.contains(&long), "the name is not echoed whole: {r:#?}");
    };
    let limit = "200 characters long; names are at most 128";
    check(
        &format!("\n[environments.{long}]\nkind = \"staging\"\nhosts = [\"local\"]\nroot = \"x\"\n"),
        &["config", "check"],
        "",
        &format!("environment name '{shown}' is {limit}"),
    );
    check(
        &format!("\n[jobs.{long}]\nrun = \"true\"\n"),
        &["config", "check"],
        "",
        &format!("job name '{shown}' is {limit}"),
    );
    check(
        &format!("\n[variables.{long}]\ntype = \"string\"\n"),
        &["config", "check"],
        "",
        &format!("variable name '{shown}' is {limit}"),
    );
    check(
        "",
        &["secrets", "set", "staging", &long],
        "v",
        &format!("'{shown}' is {limit}"),
    );
    check(
        "",
        &["secrets", "get", &long, "K"],
        "",
        &format!("no environment '{shown}'"),
    );
}

// 9. Generated values are bounded.

#[test]
fn generate_bytes_are_bounded() {
    let p = app_project("");
    let check = |args: &[&str], expected: Result<(), &str>| {
        let r = p.run(args);
        match expected {
            Ok(()) => assert_eq!(r.code, 0, "{r:#?}"),
            Err(fragment) => assert_fails(&r, 2, fragment),
        }
    };
    let bound = "use 16 to 4096 random bytes per value";
    check(
        &["secrets", "generate", "staging", "K", "--bytes=18446744073709551615"],
        Err(bound),
    );
    check(
        &["secrets", "generate", "staging", "K", "--bytes=100000000"],
        Err(bound),
    );
    check(&["secrets", "generate", "staging", "K", "--bytes=15"], Err(bound));
    check(
        &["secrets", "rotate", "staging", "K", "--generate", "--bytes=99999999"],
        Err(bound),
    );
    check(&["secrets", "generate", "staging", "K", "--bytes=4096"], Ok(()));
}

// 10. A value a process environment cannot take is refused at set and import.

#[test]
fn values_above_128_kib_are_refused() {
    let p = app_project("");
    let check = |how: &str, len: usize, expected: Result<(), &str>| {
        let value = "v".repeat(len);
        let r = match how {
            "set" => p.run_with_stdin(&["secrets", "set", "staging", "BIG", "--plain"], &value),
            _ => {
                p.write("big.env", &format!("BIG={value}\n"));
                p.run(&["secrets", "import", "staging", "big.env"])
            }
        };
        match expected {
            Ok(()) => assert_eq!(r.code, 0, "{how} {len}: {}", r.stderr),
            Err(fragment) => {
                assert_eq!(r.code, 2, "{how} {len}: {}", r.stderr);
                assert!(r.stderr.contains(fragment), "{how} {len}: {}", r.stderr);
                assert!(!r.stderr.contains(&value), "{how} {len}: the value is not echoed");
            }
        }
    };
    let limit = "a process environment takes at most 128 KiB per variable";
    check("set", 100 * 1024, Ok(()));
    check("set", 128 * 1024, Err(limit));
    check("import", 128 * 1024, Err(limit));
    check("import", 100 * 1024, Ok(()));
}

// 11. Config input is bounded, and graph checks are linear.

#[test]
fn config_files_are_read_with_a_bound_and_checked_as_text() {
    let p = Project::new(Backend::Sqlite);
    let check = |path: &str, expected: &str| {
        let r = p.run(&["config", "check", "--config", path]);
        assert_fails(&r, 2, expected);
    };
    fs::write(p.path().join("bad.toml"), b"project = \"a\"\nx = \"\xff\"\n").unwrap();
    check("/dev/zero", "/dev/zero:1:1: the file is larger than 4 MiB");
    check("bad.toml", "bad.toml:2:6: invalid UTF-8");
}

#[test]
fn a_ten_thousand_job_chain_checks_in_linear_time() {
    let p = Project::new(Backend::Sqlite);
    let mut toml = String::from("project = \"chain\"\n");
    for i in 0..10_000 {
        toml.push_str(&format!("[jobs.j{i}]\nrun = \"true\"\n"));
        if i > 0 {
            toml.push_str(&format!("needs = [\"j{}\"]\n", i - 1));
        }
    }
    // A cycle at the end of the chain is still found, with its path.
    p.write("rollway.toml", &toml);
    let start = std::time::Instant::now();
    p.run(&["config", "check"]).ok();
    eprintln!("config check of a 10,000-job chain took {:?}", start.elapsed());
    toml.push_str("[jobs.loop_a]\nrun = \"true\"\nneeds = [\"loop_b\"]\n[jobs.loop_b]\nrun = \"true\"\nneeds = [\"loop_a\", \"j9999\"]\n");
    p.write("rollway.toml", &toml);
    let r = p.run(&["config", "check"]);
    assert_fails(&r, 2, "needs cycle: loop_a → loop_b → loop_a");
}

// 12. The supervisor's output log is the owner's alone.

#[test]
fn the_service_output_log_is_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let p = app_project("");
    p.run(&["deploy", "staging"]).ok();
    let svc = p.path().join("srv/.rollway/svc");
    let dirs: Vec<_> = fs::read_dir(&svc).unwrap().flatten().map(|e| e.path()).collect();
    assert!(!dirs.is_empty(), "no service directory under {}", svc.display());
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    for dir in dirs {
        let check = |path: &Path, expected: u32| {
            assert_eq!(mode(path), expected, "{}: {:o}", path.display(), mode(path));
        };
        check(&dir, 0o700);
        check(&dir.join("output.log"), 0o600);
    }
    p.run(&["stop", "staging"]).ok();
}

// 13. Errors never echo a value the user typed.

#[test]
fn errors_never_echo_a_typed_value() {
    const VALUE: &str = "s3cr3t-Hq3vR8zLm2Xw9Tk4";
    const PEM_LINE: &str = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7";
    let p = app_project("");
    p.write(
        "key.env",
        &format!("TLS_KEY=-----BEGIN PRIVATE KEY-----\n{PEM_LINE}/x+y\n-----END PRIVATE KEY-----\n"),
    );
    let check = |args: &[&str], hidden: &str, expected: &str| {
        let r = p.run(args);
        assert_eq!(r.code, 2, "{args:?}: {r:#?}");
        let all = format!("{}{}", r.stdout, r.stderr);
        assert!(!all.contains(hidden), "{args:?} echoes what was typed: {all}");
        assert!(all.contains(expected), "{args:?}: {all}");
    };
    let kv = format!("KEY={VALUE}");
    check(
        &["secrets", "set", "staging", &kv],
        VALUE,
        "'KEY=****' gives a value with the name",
    );
    check(&["secrets", "get", "staging", &kv], VALUE, "'KEY=****'");
    check(
        &["secrets", "rotate", "staging", "KEY", VALUE],
        VALUE,
        "unexpected argument '****'",
    );
    check(
        &["secrets", "rm", "staging", "KEY", VALUE],
        VALUE,
        "unexpected argument '****'",
    );
    check(&["secrets", "import", "staging", "key.env"], PEM_LINE, "key.env:2:");
}

// Smaller: control characters, artifact verify, history --limit 0, a damaged age header.

#[test]
fn names_with_control_characters_are_shown_escaped() {
    let p = app_project("\n[environments.\"bell\\u0007env\"]\nkind = \"staging\"\nhosts = [\"local\"]\nroot = \"x\"\n");
    let check = |args: &[&str], expected: &str| {
        let r = p.run(args);
        assert_fails(&r, 2, expected);
        assert!(!r.stderr.contains('\u{7}') && !r.stderr.contains('\u{1b}'), "{r:#?}");
    };
    check(&["config", "check"], "environment name 'bell\\u{7}env' is not allowed");
    p.write(
        "rollway.toml",
        &fs::read_to_string(p.path().join("rollway.toml"))
            .unwrap()
            .replace("bell\\u0007env", "other"),
    );
    check(
        &["secrets", "get", "st\u{1b}[31maging", "K"],
        "no environment 'st\\u{1b}[31maging'",
    );
}

#[test]
fn artifact_verify_says_what_is_wrong_in_words() {
    let p = app_project("");
    let built = p.run(&["build", "--json"]).ok().json();
    let id = built["id"]
        .as_str()
        .or(built["artifact"]["id"].as_str())
        .unwrap()
        .to_owned();
    // Garbage that zstd decompresses into bytes no tar header holds.
    let mut x: u32 = 12345;
    let noise: Vec<u8> = (0..3000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    fs::write(p.path().join("noise.bin"), &noise).unwrap();
    let zstd = std::process::Command::new("zstd")
        .args(["-q", "-f", "noise.bin", "-o", "garbage.tar.zst"])
        .current_dir(p.path())
        .status()
        .unwrap();
    assert!(zstd.success());
    let check = |args: &[&str], code: i32, expected: &str| {
        let r = p.run(args);
        assert_fails(&r, code, expected);
        assert!(
            r.stderr
                .chars()
                .all(|c| c == '\n' || (' '..='~').contains(&c) || c == '—'),
            "only words, never raw bytes: {:?}",
            r.stderr
        );
    };
    check(&["artifact", "verify", "garbage.tar.zst"], 1, "not a valid tar archive");
    check(
        &["artifact", "verify", "missing.tar.zst"],
        2,
        "no such file missing.tar.zst",
    );
    for archive in fs::read_dir(p.path().join(".rollway/artifacts")).unwrap().flatten() {
        if archive.path().extension().is_some_and(|e| e == "zst") {
            fs::remove_file(archive.path()).unwrap();
        }
    }
    check(&["artifact", "verify", &id], 1, "is missing: its archive");
    check(&["artifact", "verify", &id], 1, "rebuild it with `rollway build`");
}

#[test]
fn history_limit_zero_is_refused() {
    let p = app_project("");
    let r = p.run(&["history", "--limit", "0"]);
    assert_fails(&r, 2, "0 would show nothing: use 1 or more");
}

#[test]
fn a_flipped_byte_in_an_age_header_says_the_file_is_damaged() {
    let p = app_project("");
    p.run_with_stdin(&["secrets", "set", "staging", "K", "--plain"], "v")
        .ok();
    let file = p.path().join("secrets/staging.age");
    let good = fs::read(&file).unwrap();
    // Positions inside the armored header: the version line and the stanza.
    for pos in [61, 56] {
        let mut bad = good.clone();
        bad[pos] = if bad[pos] == b'A' { b'B' } else { b'A' };
        fs::write(&file, &bad).unwrap();
        let r = p.run(&["secrets", "get", "staging", "K"]);
        assert_eq!(r.code, 1, "{pos}: {r:#?}");
        assert!(
            r.stderr.contains("secrets/staging.age"),
            "{pos}: names the file: {r:#?}"
        );
        assert!(r.stderr.contains("damaged"), "{pos}: {r:#?}");
    }
}
