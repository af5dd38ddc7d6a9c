//! Test harness: runs the real `rollway` binary in a temporary project, on a
//! SQLite store or on a fresh PostgreSQL database made for the test.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

pub mod deploy;
pub mod http;
pub mod openmetrics;
pub mod serve;
pub mod uptime;

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self
    }
}

/// Which store a project uses.
#[derive(Debug)]
pub enum Backend {
    Sqlite,
    Postgres(PgDb),
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }
}

/// A fresh PostgreSQL database, dropped when the test ends.
#[derive(Debug)]
pub struct PgDb {
    pub name: String,
    pub admin_url: String,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn pg_admin_url() -> String {
    std::env::var("ROLLWAY_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// What an unreachable PostgreSQL means for a test. The PostgreSQL cases
/// never vanish silently: they fail, unless `ROLLWAY_SKIP_PG=1` is set, no
/// `ROLLWAY_TEST_PG` names a server the run expects, and `CI` is not
/// `true`. A skip is then announced on the stderr handle itself, which
/// libtest does not capture (it captures only the print macros), so the
/// notice shows in every `cargo test` run.
pub fn skip_or_fail(admin_url: &str, why: &str) {
    let ci = std::env::var("CI").as_deref() == Ok("true");
    let asked = std::env::var("ROLLWAY_SKIP_PG").as_deref() == Ok("1");
    let named = std::env::var_os("ROLLWAY_TEST_PG").is_some();
    if ci || !asked || named {
        panic!(
            "PostgreSQL at {admin_url} is unreachable ({why}). Start it (scripts/test does), point ROLLWAY_TEST_PG at one, \
             or set ROLLWAY_SKIP_PG=1 (with ROLLWAY_TEST_PG unset, outside CI) to skip the PostgreSQL cases."
        );
    }
    static NOTICE: std::sync::Once = std::sync::Once::new();
    NOTICE.call_once(|| {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!! SKIPPED (ROLLWAY_SKIP_PG=1): PostgreSQL at {admin_url} is unreachable; the CLI's PostgreSQL cases did NOT run. !!!!!\n"
        );
    });
}

impl PgDb {
    /// A new database, or None when PostgreSQL is unreachable and skipping
    /// was asked for (see `skip_or_fail`).
    pub fn create() -> Option<PgDb> {
        let admin_url = pg_admin_url();
        let name = format!(
            "rollway_cli_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let out = Command::new("psql")
            .args([&admin_url, "-qtAc", &format!("CREATE DATABASE {name}")])
            .output();
        match out {
            Ok(o) if o.status.success() => Some(PgDb { name, admin_url }),
            other => {
                skip_or_fail(&admin_url, &format!("{other:?}"));
                None
            }
        }
    }

    pub fn url(&self) -> String {
        let base = self
            .admin_url
            .rsplit_once('/')
            .map_or(self.admin_url.as_str(), |(b, _)| b);
        format!("{base}/{}", self.name)
    }

    /// Runs SQL in this database through `psql`.
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .args([&self.url(), "-v", "ON_ERROR_STOP=1", "-qtAc", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A shop's data for backup round trips: several tables, a sequence,
    /// an index, a view and non-ASCII data (`blobs` takes more rows).
    pub fn fill_shop(&self) {
        self.psql(
            "CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, city text);
             CREATE SEQUENCE invoice_numbers START 1000;
             CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int REFERENCES customers(id),
                                  total numeric(10,2), note text, made_at timestamptz DEFAULT now());
             CREATE INDEX orders_customer ON orders (customer_id, made_at);
             CREATE TABLE blobs (k text PRIMARY KEY, v bytea);
             CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100;
             INSERT INTO customers (name, city) VALUES ('Zoë Ångström', 'Malmö'), ('李小龙', '香港'),
                    ('Ñandú Çelik', 'İstanbul'), ('😀 emoji', NULL);
             INSERT INTO orders (customer_id, total, note)
                    SELECT 1 + (g % 4), g * 1.5, 'order № ' || g FROM generate_series(1, 500) g;
             INSERT INTO blobs SELECT 'k' || g, decode(md5(g::text), 'hex') FROM generate_series(1, 50) g;
             SELECT nextval('invoice_numbers'); SELECT nextval('invoice_numbers');",
        );
    }

    /// What a restore of the shop must give back beside its schema: each
    /// table's rows, the blobs' bytes, the sequence's position, the names.
    pub fn shop_counts(&self) -> String {
        self.psql(
            "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders), (SELECT count(*) FROM blobs),
                    (SELECT md5(string_agg(v, ''::bytea ORDER BY k)) FROM blobs),
                    (SELECT last_value FROM invoice_numbers), (SELECT string_agg(name, ',' ORDER BY id) FROM customers)",
        )
    }

    /// `pg_dump --schema-only` (owners left out) as a restore must give it
    /// back; pg_dump 17's random per-run `\restrict` key is not schema.
    pub fn schema(&self) -> String {
        let out = Command::new("pg_dump")
            .args(["--schema-only", "--no-owner", "--dbname", &self.url()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                &self.admin_url,
                "-qtAc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// A project directory with its own state, driven through the real binary.
#[derive(Debug)]
pub struct Project {
    pub dir: tempfile::TempDir,
    pub backend: Backend,
}

impl Project {
    pub fn new(backend: Backend) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            backend,
        }
    }

    /// Both backends, PostgreSQL only when reachable (see `PgDb::create`).
    pub fn each_backend() -> Vec<Project> {
        let mut v = vec![Project::new(Backend::Sqlite)];
        if let Some(db) = PgDb::create() {
            v.push(Project::new(Backend::Postgres(db)));
        }
        v
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.path().join(".rollway").join("rollway.db")
    }

    /// Runs `rollway ARGS` in the project directory.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, "")
    }

    /// The identity file the project's runs use (under its own XDG_CONFIG_HOME).
    pub fn identity(&self) -> PathBuf {
        self.path().join("xdg").join("rollway").join("identity.txt")
    }

    /// Runs `rollway ARGS` with `input` on stdin.
    pub fn run_with_stdin(&self, args: &[&str], input: &str) -> Run {
        self.run_full(args, input, &[])
    }

    /// `rollway ARGS` set up as every run here is (the project directory,
    /// its own XDG_CONFIG_HOME, a fixed operator, its store), for tests that
    /// start it themselves.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rollway"));
        cmd.args(args)
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .env("ROLLWAY_OPERATOR", "tester@example.com")
            .env("XDG_CONFIG_HOME", self.path().join("xdg"))
            .env_remove("ROLLWAY_IDENTITY")
            .env_remove("ROLLWAY_STORE");
        if let Backend::Postgres(db) = &self.backend {
            cmd.env("ROLLWAY_STORE", db.url());
        }
        cmd
    }

    /// Runs `rollway ARGS` with `input` on stdin and extra environment variables.
    pub fn run_full(&self, args: &[&str], input: &str, envs: &[(&str, &str)]) -> Run {
        use std::io::Write as _;
        use std::process::Stdio;
        let mut cmd = self.command(args);
        cmd.envs(envs.iter().copied());
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs SQL against the project's store with the backend's own CLI tool.
    pub fn sql(&self, sql: &str) -> String {
        match &self.backend {
            Backend::Sqlite => {
                // A `serve` may be writing: wait for its lock as the
                // store does, rather than failing with "database is locked".
                let out = Command::new("sqlite3")
                    .args(["-cmd", ".timeout 10000"])
                    .arg(self.sqlite_path())
                    .arg(sql)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "sqlite3 {sql}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8_lossy(&out.stdout).into_owned()
            }
            Backend::Postgres(db) => db.psql(sql),
        }
    }
}

/// A tiny HTTP app for deploy tests (`/usr/bin/python3`, starts in ~10 ms):
/// answers every GET with 200 and the body `ok`.
pub const OK_APP: &str = r#"import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// Replaces ids and times with stable placeholders for snapshots.
pub fn redact(text: &str) -> String {
    let uuid = regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").unwrap();
    let time = regex::Regex::new(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z").unwrap();
    let hash = regex::Regex::new(r"\b[0-9a-f]{64}\b").unwrap();
    let text = uuid.replace_all(text, "[id]");
    let text = time.replace_all(&text, "[time]");
    hash.replace_all(&text, "[hash]").into_owned()
}

/// A free port on 127.0.0.1 (the listener is dropped; a service takes it next).
/// A free port on 127.0.0.1 that no other test of this binary was given:
/// tests run side by side and an app binds its port only seconds after the
/// port was chosen, so the kernel may offer the same free port twice in
/// that gap; remembering what was handed out closes it.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if GIVEN.lock().unwrap().insert(port) {
            return port;
        }
    }
}

/// The body of `GET /` on 127.0.0.1:PORT, or None when nothing answers.
pub fn get(port: u16) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
}

/// The SHA-256 of `s` in hex, as Debian's `sha256sum` prints it.
pub fn sha256sum(s: &str) -> String {
    use std::io::Write as _;
    let mut c = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// `rollway --json backup create db ARGS`, asserted completed: its record.
pub fn backup_db(p: &Project, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json", "backup", "create", "db"];
    all.extend_from_slice(args);
    let b = p.run(&all).ok().json();
    assert_eq!(b["lifecycle"]["status"], "completed", "{b}");
    b
}

/// The stored object at `path` is the record `b`'s: its size, and the
/// SHA-256 Debian's `sha256sum` computes.
pub fn assert_stored_as_recorded(path: &Path, b: &serde_json::Value) {
    assert_eq!(
        std::fs::metadata(path).unwrap().len(),
        b["size_bytes"].as_u64().unwrap()
    );
    let sum = Command::new("sha256sum").arg(path).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&sum.stdout).split_whitespace().next(),
        b["checksum"].as_str()
    );
}

/// Every path under `dir` with its kind, mode and contents or link target.
pub fn tree(dir: &Path) -> Vec<(String, String)> {
    use std::os::unix::fs::PermissionsExt;
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                out.push((rel, format!("link -> {}", std::fs::read_link(&path).unwrap().display())));
            } else if meta.is_dir() {
                out.push((rel, format!("dir {mode:o}")));
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.push((rel, format!("file {mode:o} {} {:x}", bytes.len(), fnv1a(&bytes))));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A cheap content fingerprint (FNV-1a) for comparing trees.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Every form a secret must never appear in where it is masked: raw, base64
/// (standard and URL-safe, padded or not), percent-encoded, JSON-escaped as
/// serde writes it and as Python's json.dumps does (non-ASCII as \uXXXX);
/// sorted, without repeats.
pub fn secret_forms(secret: &str) -> Vec<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut v = vec![secret.to_owned()];
    for e in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        v.push(e.encode(secret));
    }
    let pct: String = secret
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    v.push(pct);
    let json = serde_json::to_string(secret).unwrap();
    v.push(json[1..json.len() - 1].to_owned());
    let ascii: String = secret
        .chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                c.encode_utf16(&mut [0; 2])
                    .iter()
                    .map(|u| format!("\\u{u:04x}"))
                    .collect()
            }
        })
        .collect();
    v.push(ascii);
    v.sort();
    v.dedup();
    v
}
