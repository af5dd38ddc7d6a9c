//! Whole answers, as a person sees them: the real binary's stdout, stderr
//! and exit code for `history`, `status`, the dry runs, `artifact`,
//! `pipeline`, `events` and the main errors, compared with the transcripts
//! in `snapshots/` (insta), so a change in what people see shows up in
//! review instead of slipping past a `contains`. A few `--json` answers are
//! snapshotted too.
//!
//! What differs from run to run is redacted by one function,
//! [`Redactor::redact`] (ids, digests, times, durations, ports, pids, temp
//! paths, the version); output is plain (`NO_COLOR=1`, no TTY).
//! `INSTA_UPDATE=always cargo test -p rollway --test snapshots` rewrites the
//! transcripts; review them before committing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::cell::RefCell;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::deploy::{Config, Health, LEASE, Staging, id, status};
use common::{Backend, Project, Run};
use regex::Regex;
use serde_json::Value;

// ------------------------------------------------------------- redaction

/// Everything that changes between runs, replaced by stable placeholders.
/// Ids and digests are numbered in the order they are first seen in a
/// test (`[id 3]`, `[sha 2]`), so a transcript still shows which record is
/// which; an id's 8-character short form is `[short id]`, a digest's
/// 12-character prefix is the digest's own number.
struct Redactor {
    /// Temporary directories, each as written and canonical, with its placeholder.
    dirs: Vec<(String, &'static str)>,
    ports: Vec<u16>,
    /// Ids and digests seen so far: (kind, value).
    seen: RefCell<Vec<(&'static str, String)>>,
}

struct Patterns {
    uuid: Regex,
    hex: Regex,
    short: Regex,
    tmp: Regex,
    time: Regex,
    epoch_ms: Regex,
    duration: Regex,
    attempt: Regex,
    pid: Regex,
    addr: Regex,
    spaces: Regex,
}

fn patterns() -> &'static Patterns {
    static P: std::sync::OnceLock<Patterns> = std::sync::OnceLock::new();
    P.get_or_init(|| Patterns {
        uuid: Regex::new(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b").unwrap(),
        hex: Regex::new(r"\b[0-9a-f]{64}\b|\b[0-9a-f]{12}\b").unwrap(),
        short: Regex::new(r"\b[0-9a-f]{8}\b").unwrap(),
        tmp: Regex::new(&format!(
            r"{}/\.tmp[A-Za-z0-9]+",
            regex::escape(std::env::temp_dir().to_str().unwrap().trim_end_matches('/'))
        ))
        .unwrap(),
        time: Regex::new(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})").unwrap(),
        epoch_ms: Regex::new(r"\b1[6-9]\d{11}\b").unwrap(),
        duration: Regex::new(r"\b\d+(\.\d+)? ?(ms|s|m|h)\b").unwrap(),
        attempt: Regex::new(r"\battempt \d+").unwrap(),
        pid: Regex::new(r"\bpid \d+").unwrap(),
        addr: Regex::new(r"\b(127\.0\.0\.1|localhost):\d+").unwrap(),
        spaces: Regex::new(r"(\S)  +").unwrap(),
    })
}

impl Redactor {
    /// Redacts `project`'s directory as `[project]`, and `ports`.
    fn new(project: &Path, ports: &[u16]) -> Self {
        let mut dirs = Vec::new();
        let shown = project.display().to_string();
        if let Ok(canon) = project.canonicalize() {
            let canon = canon.display().to_string();
            if canon != shown {
                dirs.push((canon, "[project]"));
            }
        }
        dirs.push((shown, "[project]"));
        Self {
            dirs,
            ports: ports.to_vec(),
            seen: RefCell::new(Vec::new()),
        }
    }

    /// The number of `value` among the ids or digests of `kind` seen so far
    /// (a prefix of one, or one a seen prefix starts, counts as that one).
    fn number(&self, kind: &'static str, value: &str) -> usize {
        let mut seen = self.seen.borrow_mut();
        let mut n = 0;
        for (k, v) in seen.iter_mut() {
            if *k != kind {
                continue;
            }
            n += 1;
            if v.starts_with(value) {
                return n;
            }
            if value.starts_with(v.as_str()) {
                *v = value.to_owned();
                return n;
            }
        }
        seen.push((kind, value.to_owned()));
        n + 1
    }

    /// The one redaction: `text` with everything that varies between runs
    /// replaced. Runs of two or more spaces after a word become two, since a
    /// table's column widths follow the widths of the values redacted.
    fn redact(&self, text: &str) -> String {
        let p = patterns();
        let mut t = text.to_owned();
        for (dir, shown) in &self.dirs {
            t = t.replace(dir.as_str(), shown);
        }
        t = p.tmp.replace_all(&t, "[tmp]").into_owned();
        t = t.replace(&format!("rollway {}", env!("CARGO_PKG_VERSION")), "rollway [version]");
        t = p
            .uuid
            .replace_all(&t, |c: &regex::Captures| format!("[id {}]", self.number("id", &c[0])))
            .into_owned();
        t = p
            .short
            .replace_all(&t, |c: &regex::Captures| {
                let known = self
                    .seen
                    .borrow()
                    .iter()
                    .any(|(k, v)| *k == "id" && v.starts_with(&c[0]));
                if known {
                    "[short id]".to_owned()
                } else {
                    c[0].to_owned()
                }
            })
            .into_owned();
        t = p
            .hex
            .replace_all(&t, |c: &regex::Captures| format!("[sha {}]", self.number("sha", &c[0])))
            .into_owned();
        t = p.time.replace_all(&t, "[time]").into_owned();
        t = p.epoch_ms.replace_all(&t, "[epoch ms]").into_owned();
        t = p.addr.replace_all(&t, "$1:[port]").into_owned();
        for port in &self.ports {
            t = Regex::new(&format!(r"\b{port}\b"))
                .unwrap()
                .replace_all(&t, "[port]")
                .into_owned();
        }
        t = p.pid.replace_all(&t, "pid [pid]").into_owned();
        t = p.attempt.replace_all(&t, "attempt [n]").into_owned();
        t = p.duration.replace_all(&t, "[dur]").into_owned();
        p.spaces.replace_all(&t, "$1  ").into_owned()
    }

    /// Every string in `v` redacted as text is.
    fn redact_json(&self, v: &mut Value) {
        match v {
            Value::String(s) => *s = self.redact(s),
            Value::Array(a) => a.iter_mut().for_each(|x| self.redact_json(x)),
            Value::Object(o) => o.values_mut().for_each(|x| self.redact_json(x)),
            _ => {}
        }
    }
}

/// The numbers in `--json` answers that are times, durations (a
/// deployment's phases among them) or processes, as insta sees the
/// serialized answer: `"KEY": NUMBER`. (The workspace builds insta with
/// `json` and `filters`, not `redactions`, so these are insta filters.)
const JSON_VARYING: &str = r#""(at|\w+_at|\w+_time|build_ms|latency_ms|uptime_ms|duration_ms|took_ms|pid|build|ship|switch|restart|boot|window)": \d+"#;

/// Asserts a `--json` answer (its strings already redacted) against its
/// snapshot, the varying numbers filtered by insta.
macro_rules! assert_json {
    ($name:expr, $value:expr) => {
        insta::with_settings!({ filters => vec![(JSON_VARYING, r#""$1": "[varies]""#)] }, {
            insta::assert_json_snapshot!($name, $value)
        })
    };
}

/// `$ rollway ARGS`, the exit code, stdout and stderr, redacted.
fn transcript(r: &Redactor, args: &[&str], run: &Run) -> String {
    let shown: Vec<String> = args
        .iter()
        .map(|a| {
            if a.contains(' ') {
                format!("'{a}'")
            } else {
                (*a).to_owned()
            }
        })
        .collect();
    let text = format!(
        "$ rollway {}\n[exit {}]\n--- stdout\n{}--- stderr\n{}",
        shown.join(" "),
        run.code,
        run.stdout,
        run.stderr
    );
    r.redact(&text)
}

/// Runs `rollway ARGS` in `p` (with the deploy tests' short lease) and
/// returns its transcript.
fn check(r: &Redactor, p: &Project, args: &[&str]) -> String {
    let run = p.run_full(args, "", &[("ROLLWAY_LEASE", LEASE)]);
    transcript(r, args, &run)
}

/// Runs `rollway --json ARGS` in `p`: the exit code and the answer, its
/// strings redacted.
fn check_json(r: &Redactor, p: &Project, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let run = p.run_full(&all, "", &[("ROLLWAY_LEASE", LEASE)]);
    let mut v = run.json();
    r.redact_json(&mut v);
    (run.code, v)
}

// ---------------------------------------------------------------- deploys

/// A `staging` on the local host with a 1-second window.
fn staging(project: &'static str) -> (Staging, Redactor, Config) {
    let stage = Staging::new();
    let port = common::free_port();
    let root = stage.path().join("host0");
    let mut config = Config::local(project, port, &root);
    config.health = Health {
        window: "1s",
        retries: 50,
        window_failures: 2,
    };
    stage.configure(&config);
    let red = Redactor::new(stage.path(), &[port]);
    (stage, red, config)
}

/// A succeeded deploy, one that failed and was rolled back, a manual
/// rollback, and what `history`, `status`, the dry runs, `artifact` and
/// `events` say about them; then a deploy refused by the lock another holds.
#[test]
fn deployments_as_history_status_dry_runs_and_artifacts_show_them() {
    let (f, r, config) = staging("snap");
    let p = &f.project;

    f.mode("v1");
    insta::assert_snapshot!("deploy_succeeds", check(&r, p, &["deploy", "staging"]));
    insta::assert_snapshot!("events_list", check(&r, p, &["events", "list"]));
    let v1 = id(&f.history()[0]).to_owned();

    f.mode("v2 sick");
    insta::assert_snapshot!("deploy_fails_and_rolls_back", check(&r, p, &["deploy", "staging"]));
    f.mode("v3");
    f.run(&["deploy", "staging"]).ok();

    // Built, not deployed: the dry run plans from it.
    f.mode("v4");
    f.run(&["build"]).ok();
    insta::assert_snapshot!("deploy_dry_run", check(&r, p, &["deploy", "staging", "--dry-run"]));
    let (code, dry) = check_json(&r, p, &["deploy", "staging", "--dry-run"]);
    assert_eq!(code, 0, "{dry:#}");
    assert_json!("deploy_dry_run_json", &dry);
    insta::assert_snapshot!("rollback_dry_run", check(&r, p, &["rollback", "staging", "--dry-run"]));

    insta::assert_snapshot!(
        "rollback_manual",
        check(&r, p, &["rollback", "staging", "--reason", "back to v1"])
    );
    let h = f.history();
    assert_eq!(
        h.iter().map(status).collect::<Vec<_>>(),
        ["succeeded", "rolled_back", "rolled_back", "succeeded"],
        "the manual rollback, v3 it superseded, v2 rolled back by itself, v1"
    );
    assert_eq!(h[0]["deployment"]["rollback_to"].as_str(), Some(v1.as_str()));
    insta::assert_snapshot!("history", check(&r, p, &["history", "staging"]));
    let (code, last) = check_json(&r, p, &["history", "staging", "--limit", "1"]);
    assert_eq!(code, 0, "{last:#}");
    assert_json!("history_json", &last);
    insta::assert_snapshot!("status", check(&r, p, &["status", "staging"]));
    let (code, st) = check_json(&r, p, &["status", "staging"]);
    assert_eq!(code, 0, "{st:#}");
    assert_json!("status_json", &st);

    insta::assert_snapshot!("artifact_list", check(&r, p, &["artifact", "list"]));
    let artifact = h[3]["deployment"]["artifact_id"].as_str().unwrap().to_owned();
    insta::assert_snapshot!("artifact_show", check(&r, p, &["artifact", "show", &artifact]));

    // The errors a deploy meets.
    insta::assert_snapshot!("error_unknown_environment", check(&r, p, &["deploy", "production"]));
    insta::assert_snapshot!(
        "error_unknown_artifact",
        check(&r, p, &["deploy", "staging", "--artifact", "0123abcd"])
    );
    let (code, err) = check_json(&r, p, &["deploy", "staging", "--artifact", "0123abcd"]);
    assert_eq!(code, 2, "{err:#}");
    assert_json!("error_unknown_artifact_json", &err);

    // A deploy while another holds the lease: the second waits for the
    // first's window (3 s) to begin, then is refused.
    let mut slow = config.clone();
    slow.health.window = "3s";
    f.configure(&slow);
    f.mode("v5");
    let first = f
        .command(&["deploy", "staging", "--artifact", &artifact])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h = f.history();
        if h.len() == 5 && status(&h[0]) == "verifying" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first deploy never reached its window: {h:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    insta::assert_snapshot!("error_lock_held", check(&r, p, &["deploy", "staging"]));
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(f.history().len(), 5, "the refused deploy left no deployment");
}

/// `rollback` with nothing to return to: before any deployment, and after
/// the first.
#[test]
fn rollback_with_nothing_to_return_to() {
    let (f, r, _) = staging("lonely");
    let p = &f.project;
    insta::assert_snapshot!(
        "error_rollback_before_any_deploy",
        check(&r, p, &["rollback", "staging", "--reason", "undo"])
    );
    f.mode("v1");
    f.run(&["deploy", "staging"]).ok();
    insta::assert_snapshot!(
        "error_rollback_after_the_first_deploy",
        check(&r, p, &["rollback", "staging", "--reason", "undo"])
    );
    assert_eq!(f.history().len(), 1, "a refused rollback records nothing");
}

// ---------------------------------------------------------------- pipeline

/// A pipeline whose second job fails: the run, `pipeline show` and `list`.
#[test]
fn pipeline_run_show_and_list() {
    let p = Project::new(Backend::Sqlite);
    p.write(
        "rollway.toml",
        r#"project = "pipes"

[jobs.lint]
type = "lint"
run = "echo linted"

[jobs.test]
type = "test"
run = "echo testing; echo 'assertion failed' >&2; exit 3"
needs = ["lint"]

[jobs.package]
run = "echo never runs"
needs = ["test"]

[environments.staging]
kind = "staging"
hosts = ["local"]
root = "srv"
"#,
    );
    let r = Redactor::new(p.path(), &[]);
    insta::assert_snapshot!("pipeline_run_fails", check(&r, &p, &["pipeline", "run"]));
    let list = p.run(&["--json", "pipeline", "list"]).ok().json();
    let run_id = list[0]["id"]
        .as_str()
        .or_else(|| list[0]["run"]["id"].as_str())
        .unwrap_or_else(|| panic!("no run id in {list:#}"))
        .to_owned();
    insta::assert_snapshot!("pipeline_show", check(&r, &p, &["pipeline", "show", &run_id]));
    let (code, show) = check_json(&r, &p, &["pipeline", "show", &run_id]);
    assert_eq!(code, 0, "{show:#}");
    assert_json!("pipeline_show_json", &show);
    insta::assert_snapshot!("pipeline_list", check(&r, &p, &["pipeline", "list"]));
    insta::assert_snapshot!("pipeline_logs", check(&r, &p, &["pipeline", "logs", &run_id, "test"]));
}

// ------------------------------------------------------------------ errors

/// No rollway.toml: every command that needs one says how to make one.
#[test]
fn error_no_config() {
    let p = Project::new(Backend::Sqlite);
    let r = Redactor::new(p.path(), &[]);
    insta::assert_snapshot!("error_no_config", check(&r, &p, &["status"]));
    let (code, err) = check_json(&r, &p, &["deploy", "staging"]);
    assert_eq!(code, 2, "{err:#}");
    assert_json!("error_no_config_json", &err);
    assert!(
        !p.path().join(".rollway").exists(),
        "no state was made without a config"
    );
}

/// A broken rollway.toml: every problem at once, each at FILE:LINE:COL.
#[test]
fn error_config_problems_at_file_line_col() {
    let p = Project::new(Backend::Sqlite);
    p.write(
        "rollway.toml",
        r#"project = "broken"

[service]
port = "eighty"
strat = "python3 app.py"

[environments.staging]
kind = "stagin"
hosts = ["local"]
"#,
    );
    let r = Redactor::new(p.path(), &[]);
    insta::assert_snapshot!("error_config_check", check(&r, &p, &["config", "check"]));
    insta::assert_snapshot!("error_config_on_deploy", check(&r, &p, &["deploy", "staging"]));
    let (code, err) = check_json(&r, &p, &["config", "check"]);
    assert_eq!(code, 2, "{err:#}");
    assert_json!("error_config_check_json", &err);
}

/// An environment the config does not name.
#[test]
fn error_unknown_environment_everywhere() {
    let p = Project::new(Backend::Sqlite);
    p.run(&["init"]).ok();
    let r = Redactor::new(p.path(), &[]);
    let mut all = String::new();
    for args in [
        &["status", "prod"][..],
        &["history", "prod"],
        &["rollback", "prod", "--dry-run"],
        &["env", "show", "prod"],
    ] {
        all.push_str(&check(&r, &p, args));
        all.push('\n');
    }
    insta::assert_snapshot!("error_unknown_environment_everywhere", all);
}
