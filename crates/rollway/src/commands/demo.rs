//! `rollway demo`: the main job end to end on this machine. In a temporary
//! directory it builds a small web app, deploys v1 to a local target with a
//! short stability window, deploys a broken v2 that crashes in the window
//! and is rolled back by itself, and leaves v1 answering.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;

use crate::cli::Global;
use crate::commands::deploy::{self, DeployArgs};
use crate::commands::deploys::{self, HistoryArgs};
use crate::output::Tone;
use crate::session::Session;
use rollway_app::Result;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to put the demo project (default: a new temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

const SERVER: &str = r#"# A tiny web app: answers GET / with the text of body.txt.
import http.server, os, sys, threading

BODY = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "body.txt"), "rb").read()
CRASH_AFTER = float(os.environ.get("CRASH_AFTER", "0") or 0)

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, fmt, *args):
        sys.stdout.write("%s %s\n" % (self.command, self.path))
        sys.stdout.flush()

server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
print("listening on", server.server_address, flush=True)
if CRASH_AFTER > 0:
    threading.Timer(CRASH_AFTER, lambda: os._exit(1)).start()
server.serve_forever()
"#;

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("cannot find a free port on 127.0.0.1")?;
    Ok(l.local_addr().context("cannot find a free port on 127.0.0.1")?.port())
}

fn config(port: u16) -> String {
    format!(
        r#"# The demo project `rollway demo` made.
project = "demo"

[build]
command = "rm -rf dist && mkdir dist && cp app/server.py app/body.txt dist/"
output = "dist"

[service]
start = "exec python3 server.py"
port = {port}

[health]
path = "/"
interval = "200ms"
timeout = "1s"
retries = 25
window_failures = 2
stability_window = "3s"

[environments.staging]
kind = "staging"
hosts = ["local"]
root = "srv"
vars = {{ GREETING = "hello" }}
"#
    )
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

pub fn run(s: &Session, args: DemoArgs) -> Result<()> {
    let dir = match args.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("rollway-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = std::fs::canonicalize(&dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
    let port = free_port()?;
    let cfg_path = dir.join("rollway.toml");
    write(&cfg_path, &config(port))?;
    write(&dir.join("app/server.py"), SERVER)?;
    write(&dir.join("app/body.txt"), "hello from v1\n")?;
    let demo = Session::new(
        Global {
            config: cfg_path.clone(),
            state_dir: None,
            store: None,
            create_store: false,
            json: s.global.json,
            operator: s.global.operator.clone().or_else(|| Some("demo@rollway".into())),
        },
        // With --json the demo's own summary is its one answer.
        if s.global.json {
            s.printer.silenced()
        } else {
            s.printer.clone()
        },
    );
    s.printer.line(Tone::Good, format!("demo project in {}", dir.display()));

    s.printer.line(Tone::Good, "\n1/2  deploy v1");
    deploy::deploy(&demo, deploy_args())?;
    let v1 = last_id(&demo)?;

    s.printer.line(
        Tone::Good,
        "\n2/2  deploy v2, which crashes a second into its stability window",
    );
    write(&dir.join("app/body.txt"), "hello from v2\n")?;
    write(
        &dir.join("app/server.py"),
        &SERVER.replace(
            "CRASH_AFTER = float(os.environ.get(\"CRASH_AFTER\", \"0\") or 0)",
            "CRASH_AFTER = 1.0",
        ),
    )?;
    let failed = deploy::deploy(&demo, deploy_args());
    let v2 = last_id(&demo)?;
    match failed {
        Err(e) if e.code() == rollway_app::Code::Failed => {
            crate::cli::print_notes(&s.printer, e.notes());
            s.printer.line(Tone::Warn, format!("as expected, v2 failed: {e}"));
        }
        Err(e) => return Err(e),
        Ok(()) => {
            return Err(anyhow::anyhow!(
                "the broken v2 was not caught by the stability window: this is a bug in rollway"
            )
            .into());
        }
    }

    s.printer.line(Tone::Good, "\nhistory");
    deploys::history(
        &demo,
        HistoryArgs {
            env: Some("staging".into()),
            limit: 5,
            status: None,
        },
    )?;
    let url = format!("http://127.0.0.1:{port}/");
    let body = fetch(port).unwrap_or_else(|e| format!("(no answer: {e})"));
    s.printer.json(&serde_json::json!({
        "dir": dir, "v1": v1, "v2": v2, "url": url, "body": body.trim_end(),
        "stop": format!("rollway --config {} stop staging", cfg_path.display()),
    }));
    s.printer.line(Tone::Good, format!("v1 deployment: {v1}"));
    s.printer.line(
        Tone::Warn,
        format!("v2 deployment: {v2} (failed, rolled back by itself)"),
    );
    s.printer
        .line(Tone::Good, format!("v1 still answers at {url}: {}", body.trim_end()));
    s.printer.line(
        Tone::Plain,
        format!("stop it with: rollway --config {} stop staging", cfg_path.display()),
    );
    Ok(())
}

fn deploy_args() -> DeployArgs {
    DeployArgs {
        env: "staging".into(),
        artifact: None,
        dry_run: false,
        verbose: false,
        note: Some("rollway demo".into()),
        version_tag: None,
        lock_wait: std::time::Duration::from_secs(5),
        detach: false,
    }
}

fn last_id(s: &Session) -> Result<String> {
    let id = rollway_app::queries::last_deployment(s, "staging")?;
    Ok(id.map(|id| id.to_string()).unwrap_or_default())
}

/// GET / on the demo's port, with the standard library.
fn fetch(port: u16) -> std::io::Result<String> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    Ok(buf.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned())
}
