//! Log records end to end with the real binary (issue 13's acceptance): a
//! service deployed to a `local` host prints JSON and logfmt lines with
//! trace ids and its secret; `rollway serve` collects them, stops; the
//! service prints past its log's rotation cap (the supervisor really moves
//! `output.log` to `output.log.1`); a new `serve` collects the rest. Then
//! `rollway logs ENV --trace ID --json` gives exactly the expected lines,
//! once each, the canary is in no record and nowhere in the database, and
//! a 10 MB line and invalid UTF-8 are stored bounded, with the marker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/sshd.rs"]
mod sshd;

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::deploy::{Config, Staging, free_ports};
use common::serve::{Serve, wait_for};
use common::{contains, secret_forms};
use serde_json::Value;

const CANARY: &str = "canary-Qm7Xz3Lw9Rt2Vb";

/// Serves 200 on every path (the health checks); prints phase 1 at start
/// and phase N when the file `N` appears in the directory `mode.txt` names,
/// writing `N.done` there once it printed all of it.
const APP: &str = r#"import http.server, os, sys, threading, time
HERE = os.path.dirname(os.path.abspath(__file__))
SIGNALS = open(os.path.join(HERE, "mode.txt")).read().split()[0]
KEY = os.environ.get("API_KEY", "")
out = sys.stdout.buffer

def emit(lines):
    for l in lines:
        out.write(l if isinstance(l, bytes) else l.encode())
        out.write(b"\n")
    out.flush()

PHASES = {
    "1": lambda: emit([
        '{"level":"info","msg":"order placed","trace_id":"trace-a","user":"u1"}',
        '{"level":"warning","message":"card declined with key %s","traceId":"trace-a","time":"2026-03-01T10:00:00Z"}' % KEY,
        'level=error msg="charge failed token=%s" trace_id=trace-a' % KEY,
        'level=info msg="other request" trace_id=trace-b',
        'plain line that prints %s' % KEY,
        b'level=info msg="bad \xff\xfe bytes" trace_id=trace-u',
    ]),
    "2": lambda: emit(
        ['{"level":"debug","msg":"before rotation","trace_id":"trace-a"}']
        + ['level=debug msg="filler %05d %s"' % (i, "f" * 1000) for i in range(4700)]
        + ['{"level":"info","msg":"after rotation","trace_id":"trace-a"}',
           'level=warn msg="retry %s" trace_id=trace-a' % KEY]
    ),
    "3": lambda: emit([
        b"BIG " + b"x" * 1_000_000,
        'level=info msg="after big" trace_id=trace-c',
    ]),
    "4": lambda: emit([
        b"HUGE " + b"y" * 10_000_000,
        'level=info msg="after huge" trace_id=trace-d',
    ]),
}

def phases():
    PHASES["1"]()
    for n in ["2", "3", "4"]:
        while not os.path.exists(os.path.join(SIGNALS, n)):
            time.sleep(0.05)
        PHASES[n]()
        open(os.path.join(SIGNALS, n + ".done"), "w").close()

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass

threading.Thread(target=phases, daemon=True).start()
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// The deployed project: `staging` on a local host (or over SSH through
/// `ssh`), `API_KEY` its secret.
fn staging_on(ssh: Option<&sshd::Sshd>) -> (Staging, PathBuf) {
    let stage = Staging::new();
    let port = free_ports(1)[0];
    let root = stage.path().join("srv");
    let mut config = Config::local("logs", port, &root);
    if let Some(s) = ssh {
        config.ssh_config = Some(s.client_config.clone());
        config.hosts = vec![Config::ssh_host(&s.host_name(), &root, port)];
    }
    config.sections = "[variables.API_KEY]\ntype = \"string\"\nsecret = true\n\n".to_owned();
    stage.configure(&config);
    stage.project.write("app/server.py", APP);
    let signals = stage.path().join("signals");
    fs::create_dir_all(&signals).unwrap();
    stage.mode(&signals.display().to_string());
    stage.project.run(&["secrets", "init"]).ok();
    stage
        .project
        .run_with_stdin(&["secrets", "set", "staging", "API_KEY"], CANARY)
        .ok();
    stage.run(&["deploy", "staging"]).ok();
    (stage, signals)
}

fn staging() -> (Staging, PathBuf) {
    staging_on(None)
}

/// `rollway --json logs staging ARGS`: the records.
fn records(stage: &Staging, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--json", "logs", "staging"];
    all.extend_from_slice(args);
    if !args.contains(&"--lines") {
        all.extend(["--lines", "100000"]);
    }
    stage.run(&all).ok().json().as_array().unwrap().clone()
}

/// (level, message, trace_id) of each record.
fn rows(records: &[Value]) -> Vec<(String, String, Option<String>)> {
    records
        .iter()
        .map(|r| {
            (
                r["level"].as_str().unwrap().to_owned(),
                r["message"].as_str().unwrap().to_owned(),
                r["trace_id"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn row(level: &str, message: &str, trace: &str) -> (String, String, Option<String>) {
    (level.to_owned(), message.to_owned(), Some(trace.to_owned()))
}

/// Runs `serve` until `ready` holds of `staging`'s records, then stops it;
/// returns what it printed on stderr.
fn serve_until(stage: &Staging, what: &str, ready: impl Fn(&[Value]) -> bool) -> String {
    let mut serve = Serve::start_with(
        &stage.project,
        &["serve", "--listen", "127.0.0.1:0"],
        &[("ROLLWAY_LOG_EVERY", "200ms")],
    );
    wait_for(what, || {
        let r = stage.run(&["--json", "logs", "staging", "--lines", "100000"]);
        let all: Vec<Value> = serde_json::from_str(&r.stdout).ok()?;
        // Before the first collection the hosts' tails answer: no `level`.
        (all.iter().all(|v| v.get("level").is_some()) && ready(&all)).then_some(())
    });
    let (status, stderr) = serve.terminate();
    assert!(status.success(), "serve: {stderr}");
    stderr
}

fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
        if p.is_dir()
            && let Some(found) = find(&p, name)
        {
            return Some(found);
        }
    }
    None
}

fn has(all: &[Value], message: &str) -> bool {
    all.iter()
        .any(|r| r["message"].as_str().is_some_and(|m| m.starts_with(message)))
}

#[test]
fn records_survive_a_serve_restart_and_a_rotation_once_each_masked_and_bounded() {
    let (stage, signals) = staging();
    // Before serve collected anything: the hosts' output, and filters refused.
    let tails = stage.run(&["--json", "logs", "staging"]).ok().json();
    assert!(
        tails
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["line"].as_str().unwrap().contains("order placed")),
        "{tails}"
    );
    let cases: &[(&[&str], &str)] = &[
        (&["--trace", "trace-a"], "staging has no log records yet"),
        (&["--level", "loud"], "invalid value 'loud' for '--level <LEVEL>'"),
        (&["--since", "soon"], "invalid value 'soon' for '--since <DURATION>'"),
    ];
    for (args, message) in cases {
        let mut all = vec!["logs", "staging"];
        all.extend_from_slice(args);
        let r = stage.run(&all);
        assert_eq!(r.code, 2, "{args:?}: {r:#?}");
        assert!(r.stderr.contains(message), "{args:?}: {}", r.stderr);
    }

    // Round 1: phase 1 collected.
    serve_until(&stage, "phase 1 collected", |all| has(all, "bad "));
    let first = records(&stage, &["--trace", "trace-a"]);
    assert_eq!(first.len(), 3, "{first:#?}");

    // While no serve runs: past the rotation cap, lines on both sides of it.
    fs::write(signals.join("2"), "").unwrap();
    wait_for("phase 2 printed", || signals.join("2.done").exists().then_some(()));
    let rotated = wait_for("the output log rotated", || {
        find(&stage.path().join("srv"), "output.log.1")
    });
    assert!(fs::metadata(&rotated).unwrap().len() >= 4 * 1024 * 1024);

    // Round 2: a new serve reads the rest of the rotated file, then the new one.
    serve_until(&stage, "phase 2 collected", |all| has(all, "retry "));
    let expected = vec![
        // Its own time (2026-03-01) sorts it first.
        row("warn", "card declined with key ****", "trace-a"),
        row("info", "order placed", "trace-a"),
        row("error", "charge failed token=****", "trace-a"),
        row("debug", "before rotation", "trace-a"),
        row("info", "after rotation", "trace-a"),
        row("warn", "retry ****", "trace-a"),
    ];
    let traced = records(&stage, &["--trace", "trace-a"]);
    assert_eq!(rows(&traced), expected);
    for r in &traced {
        assert_eq!(r["host"], "local");
        assert_eq!(r["service"], "logs");
        assert!(
            rollway_model::time::Timestamp::parse_rfc3339(r["time"].as_str().unwrap()).is_some(),
            "{r}"
        );
    }
    assert_eq!(traced[0]["time"], "2026-03-01T10:00:00.000Z");

    // Every filler line once, across the rotation.
    let all = records(&stage, &[]);
    let fillers: Vec<&str> = all
        .iter()
        .filter_map(|r| r["message"].as_str())
        .filter(|m| m.starts_with("filler "))
        .collect();
    assert_eq!(fillers.len(), 4700);
    let expected_fillers: Vec<String> = (0..4700)
        .map(|i| format!("filler {i:05} {}", "f".repeat(1000)))
        .collect();
    assert_eq!(fillers, expected_fillers);

    // The CLI's filters, over what was stored.
    let cases: &[(&[&str], &[usize])] = &[
        (&["--trace", "trace-a", "--level", "warn"], &[0, 2, 5]),
        (&["--trace", "trace-a", "--level", "error"], &[2]),
        (&["--trace", "trace-a", "--grep", "CARD DECLINED"], &[0]),
        (&["--trace", "trace-a", "--lines", "2"], &[4, 5]),
    ];
    for (args, which) in cases {
        let want: Vec<_> = which.iter().map(|i| expected[*i].clone()).collect();
        assert_eq!(rows(&records(&stage, args)), want, "{args:?}");
    }

    // Invalid UTF-8 replaced; the line read as logfmt all the same.
    let bad = rows(&records(&stage, &["--trace", "trace-u"]));
    assert_eq!(bad, [row("info", "bad \u{fffd}\u{fffd} bytes", "trace-u")]);

    // A 1 MB line: kept bounded with the marker; the next line intact.
    fs::write(signals.join("3"), "").unwrap();
    wait_for("phase 3 printed", || signals.join("3.done").exists().then_some(()));
    serve_until(&stage, "phase 3 collected", |all| has(all, "after big"));
    let bounded = |prefix: &str| -> Vec<String> {
        records(&stage, &[])
            .iter()
            .filter_map(|r| r["message"].as_str())
            .filter(|m| m.starts_with(prefix))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        bounded("BIG "),
        [format!("BIG {} …[truncated]", "x".repeat(16 * 1024 - 4))]
    );
    assert_eq!(
        rows(&records(&stage, &["--trace", "trace-c"])),
        [row("info", "after big", "trace-c")]
    );

    // A 10 MB line printed while no serve runs: the log rotates twice
    // inside it (at a quarter past the cap when no line ends), so its start
    // is gone — said by serve, not skipped — and what is left of it is
    // stored bounded; the next line intact.
    fs::write(signals.join("4"), "").unwrap();
    wait_for("phase 4 printed", || signals.join("4.done").exists().then_some(()));
    let stderr = serve_until(&stage, "phase 4 collected", |all| has(all, "after huge"));
    assert!(
        stderr.contains("staging on local: the log was rotated more than once"),
        "the loss is reported: {stderr}"
    );
    // Its rest spans the two files still there: a piece from each, as
    // neither holds the whole line.
    let rest = bounded("yyyy");
    assert!(
        (1..=2).contains(&rest.len()),
        "{} pieces of {:?} bytes",
        rest.len(),
        rest.iter().map(String::len).collect::<Vec<_>>()
    );
    // The count is known when the line's end was in what was read, and
    // not when the reader dropped the line's rest read by read.
    let marker = regex::Regex::new(r"^y{16384} …\[truncated( \d+ bytes)?\]$").unwrap();
    for piece in &rest {
        assert!(marker.is_match(piece), "{}", &piece[16_000..]);
    }
    assert_eq!(
        rows(&records(&stage, &["--trace", "trace-d"])),
        [row("info", "after huge", "trace-d")]
    );
    let all = records(&stage, &[]);
    assert!(
        all.iter()
            .all(|r| r["message"].as_str().unwrap().len() <= 16 * 1024 + 64),
        "every record bounded"
    );

    // The canary: in no record, and nowhere in the database's files.
    let text = serde_json::to_string(&all).unwrap();
    for form in secret_forms(CANARY) {
        assert!(!text.contains(&form), "a record holds the canary");
    }
    let dumped = stage
        .project
        .sql("SELECT message || ' ' || COALESCE(trace_id, '') FROM log_records");
    assert!(
        dumped.contains("charge failed token=****"),
        "the database has the records"
    );
    assert!(!dumped.contains(CANARY));
    for entry in fs::read_dir(stage.path().join(".rollway")).unwrap().flatten() {
        let bytes = fs::read(entry.path()).unwrap_or_default();
        assert!(!contains(&bytes, CANARY), "{} holds the canary", entry.path().display());
    }
}

/// Two services of one project: `flood` prints `FLOOD_LINES` lines as
/// fast as it can once the file `go` appears; `staging` prints an info
/// line at start and a warning half a second into the flood. Both serve 200 for their health checks.
const FLOOD_APP: &str = r#"import http.server, os, sys, threading, time
HERE = os.path.dirname(os.path.abspath(__file__))
SIGNALS, FLOOD_PORT = open(os.path.join(HERE, "mode.txt")).read().split()[:2]
FLOOD = os.environ["PORT"] == FLOOD_PORT
out = sys.stdout.buffer

def run():
    if not FLOOD:
        out.write(b'level=info msg="quiet ready" trace_id=ready\n')
        out.flush()
    while not os.path.exists(os.path.join(SIGNALS, "go")):
        time.sleep(0.05)
    if FLOOD:
        start = time.time()
        for i in range(300_000):
            out.write(b'level=info msg="flood %07d ...................................."\n' % i)
            if i % 1000 == 0:
                out.flush()
        out.write(b'level=info msg="flood end" trace_id=flood-end\n')
        out.flush()
        open(os.path.join(SIGNALS, "flood.done"), "w").write("%.3f" % (time.time() - start))
    else:
        time.sleep(0.5)
        out.write(b'level=warn msg="quiet service line" trace_id=quiet\n')
        out.flush()

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass

threading.Thread(target=run, daemon=True).start()
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// Stops `flood`'s service when the test ends (the fixture stops `staging`'s).
struct StopFlood<'a>(&'a Staging);

impl Drop for StopFlood<'_> {
    fn drop(&mut self) {
        let r = self.0.run(&["stop", "flood"]);
        if r.code != 0 {
            eprintln!("rollway stop flood: {r:#?}");
        }
    }
}

/// Peak resident memory of a process, from /proc (kB).
fn peak_rss_kb(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_flooding_service_neither_starves_another_nor_grows_serve() {
    let stage = Staging::new();
    let ports = free_ports(2);
    let root = stage.path().join("srv");
    let mut config = Config::local("logs", ports[0], &root);
    config.sections = format!(
        "[environments.flood]\nkind = \"development\"\nhosts = [\"local\"]\nroot = \"{}\"\nport = {}\n\n",
        stage.path().join("srv-flood").display(),
        ports[1]
    );
    stage.configure(&config);
    stage.project.write("app/server.py", FLOOD_APP);
    let signals = stage.path().join("signals");
    fs::create_dir_all(&signals).unwrap();
    stage.mode(&format!("{} {}", signals.display(), ports[1]));
    stage.run(&["deploy", "staging"]).ok();
    let _stop = StopFlood(&stage);
    stage.run(&["deploy", "flood"]).ok();

    let mut serve = Serve::start_with(
        &stage.project,
        &["serve", "--listen", "127.0.0.1:0"],
        &[("ROLLWAY_LOG_EVERY", "200ms")],
    );
    let pid = serve.child.id();
    // Both services' cursors stored: what comes next is after them.
    wait_for("the first collection", || {
        (stage.project.sql("SELECT COUNT(*) FROM log_cursors").trim() == "2").then_some(())
    });
    wait_for("the quiet service's first record", || {
        (stage
            .project
            .sql("SELECT COUNT(*) FROM log_records WHERE trace_id = 'ready'")
            .trim()
            == "1")
            .then_some(())
    });
    // Following the quiet service's warnings from the store, as JSON lines.
    let mut follow = stage
        .command(&["--json", "logs", "staging", "--follow", "--level", "warn"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let followed = follow.stdout.take().unwrap();
    let (tx, followed_lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(followed).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    fs::write(signals.join("go"), "").unwrap();
    let quiet = wait_for("the quiet service's line", || {
        let r = stage.run(&["--json", "logs", "staging", "--trace", "quiet"]);
        let v: Vec<Value> = serde_json::from_str(&r.stdout).ok()?;
        (!v.is_empty()).then_some(v)
    });
    assert_eq!(rows(&quiet), [row("warn", "quiet service line", "quiet")]);
    let line = followed_lines
        .recv_timeout(common::serve::PATIENCE)
        .expect("logs --follow printed the record");
    let followed: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(rows(&[followed]), [row("warn", "quiet service line", "quiet")]);
    follow.kill().unwrap();
    follow.wait().unwrap();
    let flood_seconds: f64 = wait_for("the flood printed", || {
        fs::read_to_string(signals.join("flood.done")).ok()
    })
    .parse()
    .unwrap();
    wait_for("the flood's last line", || {
        let r = stage.run(&["--json", "logs", "flood", "--trace", "flood-end"]);
        let v: Vec<Value> = serde_json::from_str(&r.stdout).ok()?;
        (v.len() == 1).then_some(())
    });
    let peak = peak_rss_kb(pid);
    let (status, stderr) = serve.terminate();
    assert!(status.success(), "serve: {stderr}");

    let stored: usize = stage
        .project
        .sql("SELECT COUNT(*) FROM log_records WHERE environment = 'flood'")
        .trim()
        .parse()
        .unwrap();
    let lost = stderr.matches("flood on local: the log was rotated").count();
    eprintln!(
        "flood: 300001 lines printed in {flood_seconds:.2} s; {stored} stored, {lost} losses reported; serve peak RSS {peak} kB"
    );
    // Either every line made it, or what did not was said; none twice.
    assert!(
        stored == 300_001 || lost > 0,
        "{stored} stored, no loss reported: {stderr}"
    );
    let distinct: usize = stage
        .project
        .sql("SELECT COUNT(DISTINCT message) FROM log_records WHERE environment = 'flood'")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(distinct, stored, "a flood line stored twice");
    // Bounded memory: a round holds at most a read of lines at a time.
    assert!(peak < 200 * 1024, "serve peaked at {peak} kB");
    // The quiet service's line, once, whatever the flood did.
    assert_eq!(
        rows(&records(&stage, &["--trace", "quiet"])),
        [row("warn", "quiet service line", "quiet")]
    );
}

/// Prints 20,000 numbered lines and an end line once `go` appears in the
/// directory `mode.txt` names; serves 200 for the health checks.
const BURST_APP: &str = r#"import http.server, os, sys, threading, time
HERE = os.path.dirname(os.path.abspath(__file__))
SIGNALS = open(os.path.join(HERE, "mode.txt")).read().split()[0]
out = sys.stdout.buffer

def run():
    while not os.path.exists(os.path.join(SIGNALS, "go")):
        time.sleep(0.05)
    for i in range(20_000):
        out.write(b'level=info msg="burst %05d"\n' % i)
        if i % 100 == 0:
            out.flush()
            time.sleep(0.002)
    out.write(b'level=info msg="burst end" trace_id=burst-end\n')
    out.flush()

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass

threading.Thread(target=run, daemon=True).start()
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// Stops `staging`'s service of a project the `Staging` fixture does not hold.
struct StopStaging<'a>(&'a common::Project);

impl Drop for StopStaging<'_> {
    fn drop(&mut self) {
        let r = self.0.run(&["stop", "staging"]);
        if r.code != 0 {
            eprintln!("rollway stop staging: {r:#?}");
        }
    }
}

#[test]
fn two_serves_on_one_postgresql_store_each_store_a_line_once() {
    let Some(db) = common::PgDb::create() else {
        return;
    };
    let p = common::Project::new(common::Backend::Postgres(db));
    let port = free_ports(1)[0];
    let root = p.path().join("srv");
    fs::create_dir_all(p.path().join("app")).unwrap();
    p.write("rollway.toml", &Config::local("logs", port, &root).toml());
    p.write("app/server.py", BURST_APP);
    let signals = p.path().join("signals");
    fs::create_dir_all(&signals).unwrap();
    p.write("app/mode.txt", &format!("{}\n", signals.display()));
    p.run_full(&["deploy", "staging"], "", &[("ROLLWAY_LEASE", "2s")]).ok();
    let _stop = StopStaging(&p);

    let serves: Vec<Serve> = (0..2)
        .map(|_| {
            Serve::start_with(
                &p,
                &["serve", "--listen", "127.0.0.1:0"],
                &[("ROLLWAY_LOG_EVERY", "50ms")],
            )
        })
        .collect();
    wait_for("the first collection", || {
        (p.sql("SELECT COUNT(*) FROM log_cursors").trim() == "1").then_some(())
    });
    fs::write(signals.join("go"), "").unwrap();
    wait_for("the burst's last line", || {
        (p.sql("SELECT COUNT(*) FROM log_records WHERE trace_id = 'burst-end'")
            .trim()
            != "0")
            .then_some(())
    });
    // A few more rounds of both: any line stored twice would show.
    std::thread::sleep(std::time::Duration::from_millis(500));
    for mut s in serves {
        let (status, stderr) = s.terminate();
        assert!(status.success(), "serve: {stderr}");
        assert!(!stderr.contains("cannot collect"), "{stderr}");
    }
    let counts = p.sql("SELECT COUNT(*), COUNT(DISTINCT message) FROM log_records");
    assert_eq!(counts.trim(), "20001|20001", "every line once");
    let order = p.sql(
        "SELECT COUNT(*) FROM (SELECT message, LAG(message) OVER (ORDER BY id) AS prev FROM log_records) t \
         WHERE prev IS NOT NULL AND prev > message",
    );
    assert_eq!(order.trim(), "0", "stored in the order printed");
}

#[test]
fn records_are_collected_from_an_ssh_host_across_a_rotation() {
    // Declared first, dropped last: the fixture stops the service through it.
    let ssh = sshd::Sshd::start();
    let (stage, signals) = staging_on(Some(&ssh));
    serve_until(&stage, "phase 1 collected", |all| has(all, "bad "));
    fs::write(signals.join("2"), "").unwrap();
    wait_for("phase 2 printed", || signals.join("2.done").exists().then_some(()));
    assert!(find(&stage.path().join("srv"), "output.log.1").is_some(), "rotated");
    serve_until(&stage, "phase 2 collected", |all| has(all, "retry "));
    let traced = records(&stage, &["--trace", "trace-a"]);
    assert_eq!(
        rows(&traced),
        [
            row("warn", "card declined with key ****", "trace-a"),
            row("info", "order placed", "trace-a"),
            row("error", "charge failed token=****", "trace-a"),
            row("debug", "before rotation", "trace-a"),
            row("info", "after rotation", "trace-a"),
            row("warn", "retry ****", "trace-a"),
        ]
    );
    assert!(
        traced.iter().all(|r| r["host"] == ssh.host_name().as_str()),
        "{traced:#?}"
    );
    let all = records(&stage, &[]);
    let fillers = all
        .iter()
        .filter(|r| r["message"].as_str().unwrap().starts_with("filler "))
        .count();
    assert_eq!(fillers, 4700);
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains(CANARY));
}
