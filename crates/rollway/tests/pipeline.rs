//! `rollway pipeline` with the real binary: the DAG with parallel jobs and
//! a failure, the exact event sequence, stored logs, job artifacts,
//! timeouts, masking, and a cancel that leaves no process of the run alive.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::{Backend, Project};

fn project(jobs: &str) -> Project {
    let p = Project::new(Backend::Sqlite);
    p.write(
        "rollway.toml",
        &format!(
            r#"project = "pipes"

[variables.API_TOKEN]
type = "string"
secret = true

{jobs}

[environments.staging]
kind = "staging"
hosts = ["local"]
root = "srv"
"#
        ),
    );
    p
}

/// The `--json` answer; for a run that did not succeed, the run record
/// the error document carries as its details.
fn run_json(p: &Project, args: &[&str]) -> (i32, serde_json::Value) {
    let r = p.run(args);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:#?}"));
    match v.get("error") {
        Some(e) => (r.code, e["details"].clone()),
        None => (r.code, v),
    }
}

fn job<'a>(answer: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    answer["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == name)
        .unwrap()
}

#[test]
fn a_failed_job_cancels_its_dependents_and_independent_jobs_finish() {
    let p = project(
        r#"[jobs.a]
run = "echo a-start; sleep 1; echo a-done"
[jobs.b]
type = "test"
run = "echo b-out; echo b-err >&2; exit 3"
needs = ["a"]
[jobs.c]
run = "echo c-ran > c-ran.txt"
needs = ["b"]
[jobs.d]
type = "lint"
run = "sleep 0.3; echo d"
"#,
    );
    let (code, answer) = run_json(&p, &["--json", "pipeline", "run", "--jobs", "2"]);
    assert_eq!(code, 1, "{answer}");
    assert_eq!(answer["run"]["lifecycle"]["status"], "failure");
    let status = |n: &str| job(&answer, n)["lifecycle"]["status"].as_str().unwrap().to_owned();
    assert_eq!(
        [status("a"), status("b"), status("c"), status("d")],
        ["success", "failure", "cancelled", "success"]
    );
    assert_eq!(job(&answer, "b")["exit_code"], 3);
    assert_eq!(job(&answer, "b")["job_type"], "test");
    assert_eq!(
        job(&answer, "c")["start_time"],
        serde_json::Value::Null,
        "c never started"
    );
    assert!(!p.path().join("c-ran.txt").exists());
    assert_eq!(job(&answer, "a")["triggered_by"], "tester@example.com");
    // a and d ran at the same time.
    let span = |n: &str| {
        let j = job(&answer, n);
        (j["start_time"].as_i64().unwrap(), j["end_time"].as_i64().unwrap())
    };
    let ((a0, a1), (d0, d1)) = (span("a"), span("d"));
    assert!(a0 < d1 && d0 < a1, "a {a0}..{a1} and d {d0}..{d1} overlap");

    let run_id = answer["run"]["id"].as_str().unwrap();
    let (_, events) = run_json(&p, &["--json", "events", "list", "--limit", "100"]);
    let seen: Vec<String> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["pipeline_run_id"] == run_id)
        .map(|e| {
            let job = e["data"]["job"].as_str().map(|j| format!(" {j}")).unwrap_or_default();
            format!("{}{job}", e["kind"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        seen,
        [
            "pipeline-started",
            "job-started a",
            "job-started d",
            "job-completed d",
            "job-completed a",
            "job-started b",
            "job-failed b",
            "job-cancelled c",
            "pipeline-completed",
        ]
    );

    let logs = p.run(&["pipeline", "logs", &run_id[..13], "b"]).ok();
    assert_eq!(logs.stdout, "b-out\nb-err\n");
    let listed = run_json(&p, &["--json", "pipeline", "list"]).1;
    assert_eq!(listed[0]["id"], run_id);
    p.run(&["events", "verify"]).ok();
}

#[test]
fn cancel_ends_every_process_of_the_run_setsid_and_orphans_included() {
    let p = project(
        r#"[jobs.spawner]
run = "setsid sh -c 'trap \"\" TERM; echo $$ >> pids; exec sleep 300' & (sh -c 'trap \"\" TERM; echo $$ >> pids; sleep 301' &) ; echo $$ >> pids; sleep 300"
[jobs.after]
run = "echo never"
needs = ["spawner"]
"#,
    );
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_rollway"))
        .args(["--json", "pipeline", "run"])
        .current_dir(p.path())
        .env("ROLLWAY_OPERATOR", "tester@example.com")
        .env("XDG_CONFIG_HOME", p.path().join("xdg"))
        .env_remove("ROLLWAY_STORE")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pids_file = p.path().join("pids");
    let deadline = Instant::now() + Duration::from_secs(20);
    let pids: Vec<u32> = loop {
        let pids: Vec<u32> = fs::read_to_string(&pids_file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if pids.len() == 3 {
            break pids;
        }
        assert!(
            Instant::now() < deadline,
            "the job did not start its processes: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let alive = |pid: u32| {
        fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit(')').next().map(|r| !r.trim_start().starts_with('Z')))
            .unwrap_or(false)
    };
    assert!(pids.iter().all(|p| alive(*p)), "{pids:?}");

    let list = run_json(&p, &["--json", "pipeline", "list"]).1;
    let run_id = list[0]["id"].as_str().unwrap().to_owned();
    let cancelled = p.run(&["--json", "pipeline", "cancel", &run_id]).ok().json();
    assert_eq!(cancelled["lifecycle"]["status"], "cancelled");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    for pid in &pids {
        assert!(!alive(*pid), "process {pid} of the run survived the cancel");
    }
    let answer = run_json(&p, &["--json", "pipeline", "show", &run_id]).1;
    assert_eq!(job(&answer, "spawner")["lifecycle"]["status"], "cancelled");
    assert_eq!(job(&answer, "after")["lifecycle"]["status"], "cancelled");
    assert_eq!(job(&answer, "after")["start_time"], serde_json::Value::Null);
    let again = p.run(&["pipeline", "cancel", &run_id]);
    assert_eq!(again.code, 3, "an ended run cannot be cancelled: {again:#?}");
}

#[test]
fn artifacts_timeouts_and_masked_logs() {
    let p = project(
        r#"[jobs.build]
type = "build-frontend"
run = "mkdir -p out && echo bundle > out/app.js && printf '%s|%s' \"$API_TOKEN\" \"$(printf %s \"$API_TOKEN\" | base64)\""
artifacts = ["out"]
[jobs.slow]
run = "sleep 30"
timeout = "1s"
[jobs.missing]
run = "true"
artifacts = ["nothing-here"]
"#,
    );
    p.run(&["secrets", "init"]).ok();
    let token = "tok-Vq8Zr3Lm5Xw2Tk9Pb4Yc7Hn";
    p.run_with_stdin(&["secrets", "set", "staging", "API_TOKEN"], token)
        .ok();
    let r = p.run(&["--json", "pipeline", "run", "--env", "staging"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(!r.stdout.contains(token) && !r.stderr.contains(token));
    let answer = r.json()["error"]["details"].clone();
    assert_eq!(job(&answer, "build")["lifecycle"]["status"], "success");
    assert_eq!(job(&answer, "slow")["lifecycle"]["status"], "failure");
    assert_eq!(job(&answer, "missing")["lifecycle"]["status"], "failure");
    let took =
        job(&answer, "slow")["end_time"].as_i64().unwrap() - job(&answer, "slow")["start_time"].as_i64().unwrap();
    assert!(took < 10_000, "the timeout ended it: {took} ms");

    let run_id = answer["run"]["id"].as_str().unwrap();
    let logs = p.run(&["pipeline", "logs", run_id, "build"]).ok();
    assert_eq!(logs.stdout, "****|****\n".trim_end_matches('\n'), "{logs:#?}");

    let artifacts = run_json(&p, &["--json", "artifact", "list"]).1;
    let made: Vec<&serde_json::Value> = artifacts.as_array().unwrap().iter().collect();
    assert_eq!(made.len(), 1, "{artifacts}");
    assert_eq!(made[0]["job_id"], job(&answer, "build")["id"]);
    assert!(made[0]["size_bytes"].as_u64().unwrap() > 0);
    p.run(&["artifact", "verify", made[0]["id"].as_str().unwrap()]).ok();

    let (_, events) = run_json(&p, &["--json", "events", "list", "--limit", "100"]);
    let text = events.to_string();
    assert!(text.contains("timed out after 1s"), "{text}");
    assert!(text.contains("artifact path nothing-here was not produced"), "{text}");
    assert!(!text.contains(token));
}
