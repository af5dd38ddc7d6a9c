//! The deploy benchmarks behind `scripts/bench redeploy|tiny|local`.
//!
//! `bench_deploy ROLLWAY NAME [--files N] [--total-mb M] [--rounds R] [--gen GEN_TREE_PY]`
//! drives a release-built `rollway` binary (the path ROLLWAY) in a
//! temporary project and, round after round, alternately, the reference
//! tool; it prints every round and the medians. SSH targets are a real
//! sshd on loopback (`tests/support/sshd.rs`) whose client config relays
//! every connection through a byte-counting ProxyCommand, so "bytes on the
//! wire" are what crossed that relay, both directions, for the whole
//! command. See `scripts/bench` for what each benchmark measures.
// A benchmark driver: a failed step must stop it loudly, so it unwraps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/sshd.rs"]
mod sshd;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use sshd::{Sshd, Wire};

/// `gen_tree --mutate` stamps every file it changes with this mtime.
const MUTATE_MTIME: u64 = 1_800_000_000;

/// A service that is healthy as soon as it runs: a bare socket answering
/// every request with 200 (no `http.server` import, `python3 -S`).
const FAST_APP: &str = r#"import os, socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(os.environ["PORT"])))
s.listen(64)
while True:
    c, _ = s.accept()
    try:
        c.recv(4096)
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
    except OSError:
        pass
    c.close()
"#;

#[derive(Debug)]
struct Opts {
    rollway: PathBuf,
    name: String,
    files: usize,
    total_mb: f64,
    rounds: usize,
    gen_tree: PathBuf,
    python: String,
}

fn usage() -> ! {
    eprintln!(
        "usage: bench_deploy ROLLWAY redeploy|tiny|local [--files N] [--total-mb M] [--rounds R] [--gen GEN_TREE] [--python PY]"
    );
    std::process::exit(2)
}

fn parse_opts() -> Opts {
    let mut args = std::env::args().skip(1);
    let rollway = PathBuf::from(args.next().unwrap_or_else(|| usage()));
    let name = args.next().unwrap_or_else(|| usage());
    let (files, total_mb) = match name.as_str() {
        "redeploy" => (20_000, 500.0),
        "tiny" | "local" => (0, 20.0),
        _ => usage(),
    };
    let mut o = Opts {
        rollway: fs::canonicalize(&rollway).unwrap_or_else(|e| panic!("{}: {e}", rollway.display())),
        name,
        files,
        total_mb,
        rounds: 5,
        // Cargo puts every example of the workspace in one directory.
        gen_tree: std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.join("gen_tree")))
            .unwrap_or_else(|| PathBuf::from("gen_tree")),
        python: "python3".into(),
    };
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--files" => o.files = value.parse().unwrap_or_else(|_| usage()),
            "--total-mb" => o.total_mb = value.parse().unwrap_or_else(|_| usage()),
            "--rounds" => o.rounds = value.parse().unwrap_or_else(|_| usage()),
            "--gen" => o.gen_tree = PathBuf::from(value),
            "--python" => o.python = value,
            _ => usage(),
        }
    }
    if o.rounds == 0 {
        usage();
    }
    o
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn check(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a command and returns its output and wall time; fails on a non-zero exit.
fn timed(what: &str, cmd: &mut Command) -> (Output, f64) {
    cmd.stdin(Stdio::null());
    let t0 = Instant::now();
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let secs = t0.elapsed().as_secs_f64();
    check(what, &out);
    (out, secs)
}

fn wire_delta(before: Wire, after: Wire) -> u64 {
    (after.up - before.up) + (after.down - before.down)
}

fn ms(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a time in ms: {v}"))
}

/// A project directory driven through the real binary.
struct Project {
    dir: PathBuf,
    rollway: PathBuf,
}

impl Project {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.rollway);
        cmd.args(args)
            .current_dir(&self.dir)
            .env("NO_COLOR", "1")
            .env("ROLLWAY_OPERATOR", "bench@rollway")
            .env("XDG_CONFIG_HOME", self.dir.join("xdg"))
            .env_remove("ROLLWAY_IDENTITY")
            .env_remove("ROLLWAY_STORE");
        cmd
    }

    /// `rollway --json ARGS`: the JSON answer and the wall time.
    fn json(&self, args: &[&str]) -> (Value, f64) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (out, secs) = timed(&format!("rollway {}", args.join(" ")), &mut self.cmd(&all));
        let v = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("rollway {args:?}: stdout is not JSON ({e})"));
        (v, secs)
    }

    /// `rollway --json deploy staging [EXTRA]`, checked to have succeeded.
    fn deploy(&self, extra: &[&str]) -> (Value, f64) {
        let mut args = vec!["deploy", "staging"];
        args.extend_from_slice(extra);
        let (v, secs) = self.json(&args);
        let status = v["deployment"]["lifecycle"]["status"].as_str().unwrap_or_default();
        assert_eq!(status, "succeeded", "deployment did not succeed: {v:#}");
        (v, secs)
    }

    /// The time (ms) a deployment reached lifecycle status `to`.
    fn reached(d: &Value, to: &str) -> u64 {
        let h = d["deployment"]["lifecycle"]["history"].as_array().unwrap();
        ms(&h
            .iter()
            .find(|t| t["to"] == to)
            .unwrap_or_else(|| panic!("never {to}: {d:#}"))["at"])
    }

    /// The "shipped" deploy-step event of deployment `id`.
    fn shipped(&self, id: &str) -> Value {
        let (events, _) = self.json(&["events", "list", "--kind", "deploy-step", "--limit", "40"]);
        events
            .as_array()
            .unwrap()
            .iter()
            .find(|e| {
                e["deployment_id"].as_str() == Some(id)
                    && e["message"].as_str().is_some_and(|m| m.starts_with("shipped"))
            })
            .unwrap_or_else(|| panic!("no shipped event for {id}: {events:#}"))
            .clone()
    }
}

/// Stops the environment's service when the benchmark ends, even on a panic.
impl Drop for Project {
    fn drop(&mut self) {
        if self.dir.join("rollway.toml").exists() {
            let out = self.cmd(&["stop", "staging"]).stdin(Stdio::null()).output();
            match out {
                Ok(o) if o.status.success() => {}
                other => eprintln!("rollway stop staging: {other:?}"),
            }
        }
    }
}

/// rollway.toml for one host of `staging`, a zero stability window and a
/// tight boot check.
fn config(output: &str, start: &str, port: u16, host: &str, ssh_config: Option<&Path>) -> String {
    let ssh = ssh_config.map_or(String::new(), |c| format!("[ssh]\nconfig = \"{}\"\n", c.display()));
    format!(
        r#"project = "bench"

[build]
output = "{output}"

[service]
start = "{start}"
port = {port}

[health]
path = "/"
interval = "10ms"
timeout = "2s"
retries = 1000
window_failures = 1
stability_window = "0s"

{ssh}
[environments.staging]
kind = "staging"
hosts = [{host}]
root = "srv"
"#
    )
}

fn ssh_host(sshd: &Sshd, root: &Path, port: u16) -> String {
    format!(
        "{{ ssh = \"{}\", root = \"{}\", port = {port} }}",
        sshd.host_name(),
        root.display()
    )
}

fn gen_tree(o: &Opts, out: &Path) {
    let (p, secs) = timed(
        "gen_tree",
        Command::new(&o.gen_tree).arg(out).args([
            "--files",
            &o.files.to_string(),
            "--total-mb",
            &o.total_mb.to_string(),
        ]),
    );
    let text = String::from_utf8_lossy(&p.stdout);
    println!("generated in {secs:.1}s: {}", text.lines().next().unwrap_or_default());
}

/// Gives the files `gen_tree --mutate` just changed an mtime of their
/// own (`MUTATE_MTIME + round`): it stamps every change with the same one,
/// so a file changed again in a later round would keep size and mtime and
/// rsync's quick check would skip it.
fn restamp(dir: &Path, round: usize) -> usize {
    let stamp = SystemTime::UNIX_EPOCH + Duration::from_secs(MUTATE_MTIME + round as u64);
    let mut n = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                let m = e.metadata().unwrap().modified().unwrap();
                if m == SystemTime::UNIX_EPOCH + Duration::from_secs(MUTATE_MTIME) {
                    let f = fs::File::options().write(true).open(e.path()).unwrap();
                    f.set_times(fs::FileTimes::new().set_modified(stamp).set_accessed(stamp))
                        .unwrap();
                    n += 1;
                }
            }
        }
    }
    n
}

// ------------------------------------------------------------------ redeploy

fn redeploy(o: &Opts, work: &Path) {
    let sshd = Sshd::start();
    let cfg = sshd.client_config.clone();
    let proj = work.join("project");
    fs::create_dir_all(&proj).unwrap();
    let tree = proj.join("tree");
    println!(
        "== generating {} files, {} MB in {}",
        o.files,
        o.total_mb,
        tree.display()
    );
    gen_tree(o, &tree);
    let p = Project {
        dir: proj.clone(),
        rollway: o.rollway.clone(),
    };
    let port = free_port();
    fs::write(
        proj.join("rollway.toml"),
        config(
            "tree",
            "exec python3 -m http.server $PORT --bind 127.0.0.1",
            port,
            &ssh_host(&sshd, &work.join("host"), port),
            Some(&cfg),
        ),
    )
    .unwrap();
    let dest = work.join("rsync-dest");
    fs::create_dir_all(&dest).unwrap();
    let rsync = |label: &str| -> (u64, f64) {
        let before = sshd.wire();
        let (_, secs) = timed(
            label,
            Command::new("rsync")
                .arg("-a")
                .arg("-e")
                .arg(format!("ssh -F {}", cfg.display()))
                .arg(format!("{}/", tree.display()))
                .arg(format!("127.0.0.1:{}/", dest.display())),
        );
        (wire_delta(before, sshd.wire()), secs)
    };

    let ssh_true = || {
        timed(
            "ssh true",
            Command::new("ssh").arg("-F").arg(&cfg).args(["127.0.0.1", "true"]),
        )
        .1
    };

    println!("== v1: the whole tree, once each (not timed as a round)");
    let before = sshd.wire();
    let (v1, secs) = p.deploy(&[]);
    let host = &v1["verifications"][0]["hosts"][0];
    println!(
        "rollway v1 deploy: {secs:.2}s, {} payload bytes, {} bytes on the wire (with the agent's upload)",
        host["bytes_sent"],
        wire_delta(before, sshd.wire())
    );
    let (bytes, secs) = rsync("rsync v1");
    println!("rsync v1: {secs:.2}s, {bytes} bytes on the wire");

    println!(
        "== {} rounds: mutate 1 % of the files in place, then ship the change",
        o.rounds
    );
    let (mut bytes_ratio, mut ship_ratio, mut conn_ratio) = (Vec::new(), Vec::new(), Vec::new());
    let (mut rw_bytes, mut rs_bytes, mut rs_walls, mut ships, mut conns) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut handshakes = Vec::new();
    for r in 1..=o.rounds {
        let (m, _) = timed(
            "gen_tree --mutate",
            Command::new(&o.gen_tree)
                .args(["--mutate", "0.01", "--mutate-seed", &r.to_string()])
                .arg(&tree),
        );
        let stamped = restamp(&tree, r);
        let handshake = ssh_true();
        let mutated = String::from_utf8_lossy(&m.stdout).trim().to_owned();
        let rollway_round = || {
            let before = sshd.wire();
            let (d, wall) = p.deploy(&[]);
            let bytes = wire_delta(before, sshd.wire());
            let id = d["deployment"]["id"].as_str().unwrap().to_owned();
            let shipped = ms(&p.shipped(&id)["at"]);
            let host = &d["verifications"][0]["hosts"][0];
            let started = ms(&host["started_at"]);
            let deploying = Project::reached(&d, "deploying");
            let ship = (shipped - started) as f64 / 1000.0;
            let conn_ship = (shipped - deploying) as f64 / 1000.0;
            (bytes, ship, conn_ship, wall, host["bytes_sent"].as_u64().unwrap_or(0))
        };
        // Alternate which goes first so neither always meets a warmer machine.
        let ((bytes, ship, conn_ship, wall, payload), (rbytes, rwall)) = if r % 2 == 1 {
            let a = rollway_round();
            (a, rsync("rsync"))
        } else {
            let b = rsync("rsync");
            (rollway_round(), b)
        };
        println!(
            "round {r}: {mutated} [{stamped} restamped]\n  \
             rollway: {bytes} bytes on the wire ({payload} payload), ship {ship:.3}s, connect+ship {conn_ship:.3}s, whole deploy {wall:.2}s\n  \
             rsync:   {rbytes} bytes on the wire, {rwall:.3}s (a bare `ssh HOST true` took {handshake:.3}s)\n  \
             -> bytes {:.3}x, ship {:.2}x, connect+ship {:.2}x (rollway / rsync)",
            bytes as f64 / rbytes as f64,
            ship / rwall,
            conn_ship / rwall
        );
        bytes_ratio.push(bytes as f64 / rbytes as f64);
        ship_ratio.push(ship / rwall);
        conn_ratio.push(conn_ship / rwall);
        rw_bytes.push(bytes as f64);
        rs_bytes.push(rbytes as f64);
        rs_walls.push(rwall);
        ships.push(ship);
        conns.push(conn_ship);
        handshakes.push(handshake);
    }
    // Both ends must hold the last version, byte for byte.
    for (who, dir) in [("rollway", work.join("host/current")), ("rsync", dest.clone())] {
        let out = Command::new("diff").arg("-rq").arg(&tree).arg(&dir).output().unwrap();
        assert!(
            out.status.success(),
            "{who}'s copy differs from the tree:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    println!("after the last round both copies equal the tree (diff -rq)");
    let (b, s, c) = (median(&bytes_ratio), median(&ship_ratio), median(&conn_ratio));
    println!();
    println!(
        "median bytes on the wire: rollway {:.0}, rsync {:.0}",
        median(&rw_bytes),
        median(&rs_bytes)
    );
    println!(
        "median ship wall: rollway ship {:.3}s, connect+ship {:.3}s; rsync {:.3}s (bare `ssh HOST true` {:.3}s)",
        median(&ships),
        median(&conns),
        median(&rs_walls),
        median(&handshakes)
    );
    println!(
        "median bytes rollway / rsync:        {b:.3}x (goal <= 1.0: {})",
        met(b <= 1.0)
    );
    println!(
        "median ship wall rollway / rsync:    {s:.2}x (goal <= 1.0: {})",
        met(s <= 1.0)
    );
    println!(
        "median connect+ship / rsync:         {c:.2}x (goal <= 1.0: {})",
        met(c <= 1.0)
    );
    drop(p);
}

// ---------------------------------------------------------------------- tiny

fn tiny_app(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("app.py"), FAST_APP).unwrap();
    fs::write(
        dir.join("index.html"),
        "<!doctype html><title>tiny</title><p>tiny</p>\n",
    )
    .unwrap();
    fs::write(dir.join("style.css"), "body { margin: 0 }\n").unwrap();
    fs::write(dir.join("version.txt"), "0\n").unwrap();
}

const FAST_START: &str = "exec python3 -S app.py";

fn tiny(o: &Opts, work: &Path) {
    let sshd = Sshd::start();
    let cfg = sshd.client_config.clone();
    let proj = work.join("project");
    tiny_app(&proj.join("app"));
    let port = free_port();
    fs::write(
        proj.join("rollway.toml"),
        config(
            "app",
            FAST_START,
            port,
            &ssh_host(&sshd, &work.join("host"), port),
            Some(&cfg),
        ),
    )
    .unwrap();
    let p = Project {
        dir: proj.clone(),
        rollway: o.rollway.clone(),
    };
    let ssh_true = || {
        timed(
            "ssh true",
            Command::new("ssh").arg("-F").arg(&cfg).args(["127.0.0.1", "true"]),
        )
        .1
    };
    let (_, first) = p.deploy(&[]);
    println!("first deploy (uploads the agent, not a round): {first:.3}s");
    let (mut walls, mut refs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for r in 1..=o.rounds {
        fs::write(proj.join("app/version.txt"), format!("{r}\n")).unwrap();
        let deploy = || {
            let before = sshd.wire();
            let (d, wall) = p.deploy(&[]);
            (d, wall, wire_delta(before, sshd.wire()))
        };
        let ((d, wall, bytes), reference) = if r % 2 == 1 {
            let a = deploy();
            (a, ssh_true())
        } else {
            let b = ssh_true();
            (deploy(), b)
        };
        let pending = Project::reached(&d, "pending");
        let deploying = Project::reached(&d, "deploying");
        let verifying = Project::reached(&d, "verifying");
        let done = Project::reached(&d, "succeeded");
        println!(
            "round {r}: rollway deploy {wall:.3}s (created->deploying {} ms, deploying->verifying {} ms, verifying->succeeded {} ms; {bytes} bytes on the wire) | ssh true {reference:.3}s -> {:.2}x",
            deploying - pending,
            verifying - deploying,
            done - verifying,
            wall / reference
        );
        walls.push(wall);
        refs.push(reference);
        ratios.push(wall / reference);
    }
    let (w, x) = (median(&walls), median(&ratios));
    println!();
    println!("median rollway deploy wall: {w:.3}s (goal <= 0.5s: {})", met(w <= 0.5));
    println!("median ssh HOST true:       {:.3}s", median(&refs));
    println!("median deploy / ssh true:   {x:.2}x");
    drop(p);
}

// --------------------------------------------------------------------- local

fn local(o: &Opts, work: &Path) {
    let proj = work.join("project");
    let app = proj.join("app");
    tiny_app(&app);
    if o.files > 0 {
        gen_tree(o, &app.join("data"));
    }
    let port = free_port();
    fs::write(
        proj.join("rollway.toml"),
        config("app", FAST_START, port, "\"local\"", None),
    )
    .unwrap();
    let p = Project {
        dir: proj.clone(),
        rollway: o.rollway.clone(),
    };
    let (d, first) = p.deploy(&[]);
    let artifact = d["deployment"]["artifact_id"].as_str().unwrap().to_owned();
    println!("first deploy (builds artifact {artifact}, not a round): {first:.3}s");
    let cp_al = |r: usize| {
        let dest = work.join(format!("cp-al-{r}"));
        let (_, secs) = timed("cp -al", Command::new("cp").arg("-al").arg(&app).arg(&dest));
        fs::remove_dir_all(&dest).unwrap();
        secs
    };
    let (mut walls, mut refs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for r in 1..=o.rounds {
        let deploy = || p.deploy(&["--artifact", &artifact]);
        let ((d, wall), reference) = if r % 2 == 1 {
            let a = deploy();
            (a, cp_al(r))
        } else {
            let b = cp_al(r);
            (deploy(), b)
        };
        let shipped = p.shipped(d["deployment"]["id"].as_str().unwrap());
        let pending = Project::reached(&d, "pending");
        let deploying = Project::reached(&d, "deploying");
        let verifying = Project::reached(&d, "verifying");
        let done = Project::reached(&d, "succeeded");
        println!(
            "round {r}: rollway deploy --artifact {wall:.3}s (created->deploying {} ms, deploying->verifying {} ms, verifying->succeeded {} ms; {}) | cp -al {:.4}s -> {:.1}x",
            deploying - pending,
            verifying - deploying,
            done - verifying,
            shipped["message"].as_str().unwrap_or_default(),
            reference,
            wall / reference
        );
        walls.push(wall);
        refs.push(reference);
        ratios.push(wall / reference);
    }
    let (w, x) = (median(&walls), median(&ratios));
    println!();
    println!("median rollway deploy wall: {w:.3}s (goal < 0.3s: {})", met(w < 0.3));
    println!("median cp -al of the tree:  {:.4}s", median(&refs));
    println!("median deploy / cp -al:     {x:.1}x");
    drop(p);
}

fn main() {
    let o = parse_opts();
    let work = tempfile::Builder::new()
        .prefix(&format!("rollway-bench-{}", o.name))
        .tempdir()
        .unwrap();
    // A canonical path: hosts' roots are absolute, `cp` and rsync get the same.
    let path = fs::canonicalize(work.path()).unwrap();
    println!("== rollway {} in {}", o.rollway.display(), path.display());
    match o.name.as_str() {
        "redeploy" => redeploy(&o, &path),
        "tiny" => tiny(&o, &path),
        "local" => local(&o, &path),
        _ => usage(),
    }
}
