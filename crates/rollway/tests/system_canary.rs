//! The whole system against one canary secret: after `secrets set`, a
//! build that prints it, a pipeline job that prints it in every encoding
//! (and split across two writes), a good deploy, a failing deploy rolled
//! back, and every `--json` answer, the canary is in clear only in the
//! releases' env files (mode 0600) and the output log of the service that
//! printed it (mode 0600 in a 0700 directory) — not in any output, not in
//! any other file of the project, not in the store, not in any fresh temp
//! file, and in no file another user could read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Backend, Project, Run, contains, free_port, get, secret_forms, sha256sum};

/// Prints `API_TOKEN` as it starts (a careless service), answers its
/// SHA-256 (never the value); crashes 0.5 s after start when the release
/// holds a `crash` file.
const SERVER: &str = r#"import hashlib, http.server, os, threading
print("starting with token " + os.environ.get("API_TOKEN", ""), flush=True)
here = os.path.dirname(os.path.abspath(__file__))
BODY = hashlib.sha256(os.environ.get("API_TOKEN", "").encode()).hexdigest().encode()
if os.path.exists(os.path.join(here, "crash")):
    threading.Timer(0.5, lambda: os._exit(1)).start()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// The job printing the canary every way a careless script might: one
/// labelled line per form, the last one written in two halves a second apart.
const LEAK: &str = r#"printf 'raw=%s\n' "$API_TOKEN"
printf 'b64=%s\n' "$(printf %s "$API_TOKEN" | base64 -w0)"
printf 'b64url=%s\n' "$(printf %s "$API_TOKEN" | base64 -w0 | tr '+/' '-_')"
printf 'b64nopad=%s\n' "$(printf %s "$API_TOKEN" | base64 -w0 | tr -d =)"
printf 'b64urlnopad=%s\n' "$(printf %s "$API_TOKEN" | base64 -w0 | tr '+/' '-_' | tr -d =)"
python3 -c 'import os, urllib.parse; print("pct=" + urllib.parse.quote(os.environ["API_TOKEN"], safe=""))'
python3 -c 'import os, json; print("json=" + json.dumps({"token": os.environ["API_TOKEN"]}))'
python3 -c 'import os, json; print("jsonutf8=" + json.dumps({"token": os.environ["API_TOKEN"]}, ensure_ascii=False))'
python3 -c 'import os, sys, time
t = os.environ["API_TOKEN"]
sys.stdout.write("split=" + t[: len(t) // 2]); sys.stdout.flush()
time.sleep(1)
print(t[len(t) // 2 :])'
echo leak-done
"#;

/// A canary unique to this run (so no other test's files can match it),
/// with `/`, `+`, `~`, `!`, `#` and a non-ASCII letter so that its percent-encoded
/// and JSON-escaped forms differ from it, and chosen so that its standard and
/// URL-safe base64 differ and are padded.
fn canary() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let mut x = (nanos as u64) ^ (u64::from(std::process::id()) << 32);
    let alphabet = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    for _ in 0..1000 {
        let mut tail = String::new();
        for _ in 0..16 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            tail.push(alphabet[(x >> 33) as usize % alphabet.len()] as char);
        }
        let c = format!("cnry-{}/é+~!#{}", &tail[..8], &tail[8..]);
        let b = STANDARD.encode(&c);
        if (b.contains('+') || b.contains('/')) && b.ends_with('=') {
            return c;
        }
    }
    panic!("no canary fits")
}

/// Every form the canary must never appear in outside the env files.
fn encodings(secret: &str) -> Vec<String> {
    let forms = secret_forms(secret);
    // Raw, four base64, percent-encoded and \u-escaped differ; serde's JSON
    // escaping of this canary is the raw canary.
    assert_eq!(forms.len(), 7, "the forms differ: {forms:?}");
    forms
}

/// The forms of the canary found in `hay`.
fn found(hay: &[u8], forms: &[String]) -> Vec<String> {
    forms.iter().filter(|f| contains(hay, f)).cloned().collect()
}

/// Every regular file under `dir` (not following links), skipping `skip`,
/// directories owned by someone else and directories that cannot be read.
fn files(dir: &Path, uid: u32, skip: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if path != skip && meta.uid() == uid {
                files(&path, uid, skip, out);
            }
        } else if meta.is_file() {
            out.push(path);
        }
    }
}

/// Stops the service when the test ends, passed or not.
struct StopOnDrop<'a>(&'a Project);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["stop", "staging"]);
    }
}

/// What one command printed, kept for the final check.
struct Answer {
    args: String,
    stdout: String,
    stderr: String,
}

/// Runs `rollway ARGS` with `input` on stdin and keeps what it printed.
fn run(p: &Project, answers: &mut Vec<Answer>, args: &[&str], input: &str) -> Run {
    let r = p.run_with_stdin(args, input);
    answers.push(Answer {
        args: args.join(" "),
        stdout: r.stdout.clone(),
        stderr: r.stderr.clone(),
    });
    r
}

#[test]
fn a_canary_secret_is_in_clear_only_in_the_release_env_files() {
    let started = SystemTime::now() - Duration::from_secs(2);
    let canary = canary();
    let forms = encodings(&canary);
    let port = free_port();
    let p = Project::new(Backend::Sqlite);
    p.write(
        "rollway.toml",
        &format!(
            r#"project = "canary"

[variables.API_TOKEN]
type = "string"
secret = true

[build]
command = """
echo "building with token $API_TOKEN"
printf 'token in base64: %s\n' "$(printf %s "$API_TOKEN" | base64 -w0)"
echo "token on stderr $API_TOKEN" >&2
rm -rf dist && mkdir dist && cp app/* dist/
"""
output = "dist"

[service]
start = "exec python3 server.py"
port = {port}

[health]
path = "/"
interval = "100ms"
timeout = "1s"
retries = 50
window_failures = 2
stability_window = "1s"

[environments.staging]
kind = "staging"
hosts = ["local"]
root = "srv"

[jobs.leak]
run = '''
{LEAK}'''
"#
        ),
    );
    fs::create_dir_all(p.path().join("app")).unwrap();
    p.write("app/server.py", SERVER);
    let _stop = StopOnDrop(&p);

    let mut answers: Vec<Answer> = Vec::new();
    let a = &mut answers;

    assert_eq!(run(&p, a, &["secrets", "init"], "").code, 0);
    let set = run(&p, a, &["secrets", "set", "staging", "API_TOKEN"], &canary);
    assert_eq!(set.code, 0, "{set:#?}");

    // The build prints the canary (raw on stdout and stderr, and in base64):
    // what reaches the terminal and the build log is masked.
    let build = run(&p, a, &["build", "--env", "staging"], "");
    assert_eq!(build.code, 0, "{build:#?}");
    let shown = format!("{}{}", build.stdout, build.stderr);
    assert!(
        shown.contains("building with token ****")
            && shown.contains("token in base64: ****")
            && shown.contains("token on stderr ****"),
        "the build's output is shown, masked: {build:#?}"
    );

    // The job prints every form, and its log is stored; once answering
    // for people, once for machines.
    let plain = run(&p, a, &["pipeline", "run", "--env", "staging"], "");
    assert_eq!(plain.code, 0, "{plain:#?}");
    let piped = run(&p, a, &["--json", "pipeline", "run", "--env", "staging"], "");
    assert_eq!(piped.code, 0, "{piped:#?}");
    let answer = piped.json();
    let run_id = answer["run"]["id"].as_str().unwrap().to_owned();
    assert_eq!(answer["run"]["lifecycle"]["status"], "success", "{answer}");

    let good = run(&p, a, &["deploy", "staging"], "");
    assert_eq!(good.code, 0, "{good:#?}");
    assert_eq!(
        get(port).as_deref(),
        Some(sha256sum(&canary).as_str()),
        "the service runs with the value"
    );
    let good_release = fs::read_link(p.path().join("srv/current")).unwrap();

    p.write("app/crash", "");
    let failed = run(&p, a, &["--json", "deploy", "staging"], "");
    assert_eq!(failed.code, 1, "the crashing release fails: {failed:#?}");
    fs::remove_file(p.path().join("app/crash")).unwrap();
    assert_eq!(
        fs::read_link(p.path().join("srv/current")).unwrap(),
        good_release,
        "rolled back to the good release"
    );

    let mut asked: Vec<Vec<String>> = vec![
        vec!["status".into()],
        vec!["history".into(), "staging".into()],
        vec!["events".into(), "list".into(), "--limit".into(), "1000".into()],
        vec!["pipeline".into(), "list".into()],
        vec!["pipeline".into(), "show".into(), run_id.clone()],
        vec!["pipeline".into(), "logs".into(), run_id.clone(), "leak".into()],
        vec!["artifact".into(), "list".into()],
        vec!["secrets".into(), "list".into(), "staging".into()],
        vec!["secrets".into(), "get".into(), "staging".into(), "API_TOKEN".into()],
        vec!["env".into(), "show".into(), "staging".into()],
        vec!["logs".into(), "staging".into()],
        vec!["secrets".into(), "check".into(), "staging".into()],
    ];
    // Each one for people, then for machines.
    asked.extend(asked.clone().into_iter().map(|mut a| {
        a.insert(0, "--json".into());
        a
    }));
    for args in &asked {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = run(&p, a, &args, "");
        assert_eq!(r.code, 0, "{r:#?}");
        if args[0] == "--json" {
            let _ = r.json();
        }
    }

    // The stored job log holds every line, each form masked.
    let logs = run(&p, a, &["pipeline", "logs", &run_id, "leak"], "").ok();
    let expected = [
        "raw=****",
        "b64=****",
        "b64url=****",
        "b64nopad=****",
        "b64urlnopad=****",
        "pct=****",
        r#"json={"token": "****"}"#,
        r#"jsonutf8={"token": "****"}"#,
        "split=****",
        "leak-done",
    ];
    assert_eq!(logs.stdout.lines().collect::<Vec<_>>(), expected, "{logs:#?}");
    let secret = run(&p, a, &["--json", "secrets", "get", "staging", "API_TOKEN"], "")
        .ok()
        .json();
    assert_eq!(secret["value"], "****", "{secret}");
    let history = run(&p, a, &["--json", "history", "staging"], "").ok().json();
    assert_eq!(
        history[0]["deployment"]["lifecycle"]["status"], "rolled_back",
        "{history}"
    );
    // The build's log is kept, masked (the file scan below reads it).
    let build_logs: Vec<String> = fs::read_dir(p.path().join(".rollway/logs"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("build-"))
        .map(|e| fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(
        build_logs.iter().any(|l| l.contains("building with token ****")),
        "{build_logs:?}"
    );
    // `rollway logs` shows the service's output masked (checked below with
    // every other answer).
    let logs = run(&p, a, &["logs", "staging"], "").ok();
    assert!(logs.stdout.contains("starting with token ****"), "{logs:#?}");
    let verify = run(&p, a, &["events", "verify"], "");
    assert_eq!(verify.code, 0, "{verify:#?}");

    // 1. No output of any command holds the canary in any form.
    for a in &answers {
        for (stream, text) in [("stdout", &a.stdout), ("stderr", &a.stderr)] {
            let seen = found(text.as_bytes(), &forms);
            assert!(
                seen.is_empty(),
                "`rollway {}` printed the canary on {stream} as {seen:?}:\n{text}",
                a.args
            );
        }
    }

    // 2. In the project directory, only the releases' env files hold it,
    // mode 0600, the current release's among them.
    let uid = fs::metadata(p.path()).unwrap().uid();
    let mut all = Vec::new();
    files(p.path(), uid, Path::new("/nonexistent"), &mut all);
    assert!(all.len() > 10, "the walk sees the project: {all:?}");
    let mut env_files = Vec::new();
    let mut service_logs_with_canary = 0;
    for f in &all {
        let rel = f.strip_prefix(p.path()).unwrap();
        let bytes = fs::read(f).unwrap();
        if rel.starts_with("srv/envs") && rel.extension().is_some_and(|e| e == "env") {
            let mode = fs::metadata(f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", rel.display());
            env_files.push((rel.to_path_buf(), bytes));
            continue;
        }
        let seen = found(&bytes, &forms);
        // The service printed it: its output log (rollway supervisor) is a
        // place of clear text, readable by its owner only.
        if rel.starts_with("srv/.rollway/svc") && rel.file_name().is_some_and(|n| n == "output.log") {
            let mode = fs::metadata(f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", rel.display());
            let dir = fs::metadata(f.parent().unwrap()).unwrap().permissions().mode() & 0o777;
            assert_eq!(dir, 0o700, "{}", rel.display());
            if !seen.is_empty() {
                service_logs_with_canary += 1;
            }
            continue;
        }
        assert!(seen.is_empty(), "{} holds the canary as {seen:?}", rel.display());
    }
    assert!(
        service_logs_with_canary > 0,
        "the service printed the canary into its output log, which the walk reaches"
    );
    let current = fs::read_link(p.path().join("srv/current")).unwrap();
    let release = current.file_name().unwrap().to_string_lossy().into_owned();
    let current_env = PathBuf::from(format!("srv/envs/{release}.env"));
    let (_, bytes) = env_files
        .iter()
        .find(|(f, _)| *f == current_env)
        .unwrap_or_else(|| panic!("no {} among {env_files:?}", current_env.display()));
    assert!(
        contains(bytes, &format!("API_TOKEN=\"{canary}\"")),
        "the current release's env file holds the value"
    );

    // 3. The store: its pages are binary, so the raw canary only.
    let db = p.sqlite_path();
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let pages = fs::read(&db).unwrap();
    assert!(pages.len() > 4096, "the store was written");
    let wal_pages = fs::read(&wal).unwrap_or_default();
    assert!(
        contains(&pages, "job-completed") || contains(&wal_pages, "job-completed"),
        "the store's text is readable in its pages"
    );
    assert!(!contains(&pages, &canary), "the store holds the canary");
    assert!(!contains(&wal_pages, &canary), "the store's WAL holds the canary");

    // 4. No file in the temp directory written since the test started
    // (a probe of our own shows the walk reaches such files).
    let tmp = std::env::temp_dir();
    let probe = tempfile::NamedTempFile::new().unwrap();
    let mut fresh = Vec::new();
    files(&tmp, uid, p.path(), &mut fresh);
    let probe_path = fs::canonicalize(probe.path()).unwrap();
    assert!(
        fresh.iter().any(|f| fs::canonicalize(f).is_ok_and(|f| f == probe_path)),
        "the walk of {} reaches fresh files",
        tmp.display()
    );
    let mut scanned = 0usize;
    for f in fresh {
        let Ok(meta) = fs::metadata(&f) else {
            continue;
        };
        if meta.modified().is_ok_and(|m| m < started) || meta.len() > 256 << 20 {
            continue;
        }
        let Ok(bytes) = fs::read(&f) else {
            continue;
        };
        scanned += 1;
        let seen = found(&bytes, &forms);
        assert!(seen.is_empty(), "{} holds the canary as {seen:?}", f.display());
    }
    eprintln!("scanned {scanned} fresh files under {}", tmp.display());

    p.run(&["stop", "staging"]).ok();
}
