//! Secrets meeting deployments, with the real binary on a `local` target:
//! where a canary secret lives in clear after a good and a failing deploy,
//! and `secrets rotate`, whose new value is stored only when its deployment
//! succeeds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Backend, Project, contains, free_port, get, sha256sum};

/// Answers the SHA-256 of `API_KEY` (never the value); crashes 0.5 s after
/// start when the release holds a `crash` file or `API_KEY` starts with "bad".
const SERVER: &str = r#"import hashlib, http.server, os, threading
here = os.path.dirname(os.path.abspath(__file__))
key = os.environ.get("API_KEY", "")
BODY = hashlib.sha256(key.encode()).hexdigest().encode()
if os.path.exists(os.path.join(here, "crash")) or key.startswith("bad"):
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

const CANARY: &str = "canary-Hq3vR8zLm2Xw9Tk4Pb7Yc";
const NEXT: &str = "next-Jn5sW1qEr6Uy0Io3Pa8Sd2Fg";
const BAD: &str = "bad-Zm4Xn7Cb1Vq9Lk2Jh6Gf3Ds8";

fn project() -> (Project, u16) {
    let port = free_port();
    let p = Project::new(Backend::Sqlite);
    p.write(
        "rollway.toml",
        &format!(
            r#"project = "keys"

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
window_failures = 2
stability_window = "1500ms"

[variables.API_KEY]
type = "string"
secret = true

[environments.staging]
kind = "staging"
hosts = ["local"]
root = "srv"
"#
        ),
    );
    fs::create_dir_all(p.path().join("app")).unwrap();
    p.write("app/server.py", SERVER);
    p.run(&["secrets", "init"]).ok();
    (p, port)
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap().flatten() {
        let ty = e.file_type().unwrap();
        if ty.is_dir() {
            files(&e.path(), out);
        } else if ty.is_file() {
            out.push(e.path());
        }
    }
}

fn service_pid(p: &Project) -> u32 {
    // The supervisor's child runs the app; find it by its working directory.
    let current = fs::canonicalize(p.path().join("srv/current")).unwrap();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if contains(&cmd, "server.py") && fs::read_link(e.path().join("cwd")).ok().as_deref() == Some(&current) {
            return pid;
        }
    }
    panic!("no service process runs in {}", current.display());
}

#[test]
fn a_canary_secret_is_in_clear_only_in_env_files_and_the_service_environment() {
    let (p, port) = project();
    p.run_with_stdin(&["secrets", "set", "staging", "API_KEY"], CANARY).ok();
    let mut runs = vec![p.run(&["deploy", "staging"]).ok()];
    assert_eq!(
        get(port).as_deref(),
        Some(sha256sum(CANARY).as_str()),
        "the service got the value"
    );
    let pid = service_pid(&p);
    let environ = fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(
        contains(&environ, &format!("API_KEY={CANARY}")),
        "the service's environment holds it"
    );

    p.write("app/crash", "");
    let failed = p.run(&["deploy", "staging"]);
    assert_eq!(failed.code, 1, "{failed:#?}");
    runs.push(failed);
    runs.push(p.run(&["--json", "history", "staging"]).ok());
    runs.push(p.run(&["--json", "events", "list"]).ok());
    runs.push(p.run(&["logs", "staging"]).ok());
    for r in &runs {
        assert!(
            !r.stdout.contains(CANARY) && !r.stderr.contains(CANARY),
            "printed in clear: {r:#?}"
        );
    }

    let mut all = Vec::new();
    files(p.path(), &mut all);
    let mut clear = Vec::new();
    for f in &all {
        if contains(&fs::read(f).unwrap(), CANARY) {
            clear.push(f.strip_prefix(p.path()).unwrap().to_path_buf());
        }
    }
    clear.sort();
    // The current release's env file; the failed release's went with it.
    let current = fs::read_link(p.path().join("srv/current")).unwrap();
    let release = current.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        clear.contains(&PathBuf::from(format!("srv/envs/{release}.env"))),
        "{clear:?}"
    );
    for f in &clear {
        assert!(
            f.starts_with("srv/envs") && f.extension().is_some_and(|e| e == "env"),
            "{clear:?}"
        );
        let mode = fs::metadata(p.path().join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    p.run(&["stop", "staging"]).ok();
}

#[test]
fn rotate_stores_the_new_value_only_when_its_deployment_succeeds() {
    let (p, port) = project();
    p.run_with_stdin(&["secrets", "set", "staging", "API_KEY"], CANARY).ok();
    let first = p.run(&["--json", "deploy", "staging"]).ok().json();
    let artifact = first["deployment"]["artifact_id"].clone();
    assert_eq!(get(port).as_deref(), Some(sha256sum(CANARY).as_str()));

    let rotated = p
        .run_with_stdin(&["secrets", "rotate", "staging", "API_KEY"], NEXT)
        .ok();
    assert!(!rotated.stdout.contains(NEXT), "{rotated:#?}");
    assert_eq!(
        get(port).as_deref(),
        Some(sha256sum(NEXT).as_str()),
        "the new value is live"
    );
    let stored = p
        .run(&["--json", "secrets", "get", "staging", "API_KEY", "--reveal"])
        .ok()
        .json();
    assert_eq!(stored["value"], NEXT);
    let h: Vec<serde_json::Value> =
        serde_json::from_str(&p.run(&["--json", "history", "staging"]).ok().stdout).unwrap();
    assert_eq!(h[0]["deployment"]["lifecycle"]["status"], "succeeded");
    assert_eq!(
        h[0]["deployment"]["artifact_id"], artifact,
        "a rotation redeploys the running artifact"
    );

    // A value the app cannot live with: the deployment is rolled back and
    // the stored value stays the previous one.
    let refused = p.run_with_stdin(&["secrets", "rotate", "staging", "API_KEY"], BAD);
    assert_eq!(refused.code, 1, "{refused:#?}");
    assert!(refused.stderr.contains("keeps its old value"), "{}", refused.stderr);
    assert!(
        !refused.stderr.contains(BAD) && !refused.stdout.contains(BAD),
        "{refused:#?}"
    );
    let stored = p
        .run(&["--json", "secrets", "get", "staging", "API_KEY", "--reveal"])
        .ok()
        .json();
    assert_eq!(stored["value"], NEXT);
    let h: Vec<serde_json::Value> =
        serde_json::from_str(&p.run(&["--json", "history", "staging"]).ok().stdout).unwrap();
    assert_eq!(h[0]["deployment"]["lifecycle"]["status"], "rolled_back");
    let mut answer = None;
    for _ in 0..50 {
        answer = get(port);
        if answer.as_deref() == Some(sha256sum(NEXT).as_str()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        answer.as_deref(),
        Some(sha256sum(NEXT).as_str()),
        "the previous release runs with the previous value"
    );

    // --generate makes a strong value, stored after its deployment passes.
    let generated = p
        .run(&["--json", "secrets", "rotate", "staging", "API_KEY", "--generate"])
        .ok();
    let stored = p
        .run(&["--json", "secrets", "get", "staging", "API_KEY", "--reveal"])
        .ok()
        .json();
    let value = stored["value"].as_str().unwrap();
    assert!(value.len() >= 32 && value != NEXT, "{value}");
    assert!(!generated.stdout.contains(value), "{generated:#?}");
    assert_eq!(get(port).as_deref(), Some(sha256sum(value).as_str()));
    p.run(&["stop", "staging"]).ok();
}
