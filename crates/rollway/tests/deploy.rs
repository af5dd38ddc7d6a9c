//! `rollway deploy ENV` end to end with the real binary, on a `local` target
//! and on SSH hosts (a real sshd on loopback, reached through system OpenSSH
//! with a byte-counting ProxyCommand): a good deploy, bad releases caught by
//! the boot check and the stability window and rolled back by themselves, a
//! failed canary that never reaches the second host, what a small change
//! costs on the wire, the environment lock, a detached window nobody
//! watched, and a dry run that changes nothing.
//!
//! The app and the project around it are `common::deploy`'s: `mode.txt`
//! in the artifact says the version it answers with and whether it
//! `crash`es, turns `sick` or is `down`. Every test stops the service at
//! its end (dropping the fixture runs `rollway stop staging`), since the
//! default supervisor outlives the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/sshd.rs"]
mod sshd;

mod common;

use std::fs;
use std::io::Write as _;
use std::ops::Deref;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Run;
use common::deploy::{
    Config, HEALTH, Health, LEASE_MS, Staging, current_release, free_ports, get, host_results, id, now_ms, status,
};
use serde_json::Value;
use sshd::Sshd;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Local,
    Ssh,
}

/// One host of the environment: its name in rollway.toml, root and port.
#[derive(Debug)]
struct Host {
    name: String,
    root: PathBuf,
    port: u16,
}

/// The shared staging project, its hosts, and the sshd behind each SSH host
/// (declared after the project, so its service is stopped while they run).
struct Fixture {
    kind: Target,
    stage: Staging,
    hosts: Vec<Host>,
    /// Extra keys for `[environments.staging]`.
    env_extra: String,
    sshds: Vec<Sshd>,
}

impl Deref for Fixture {
    type Target = Staging;
    fn deref(&self) -> &Staging {
        &self.stage
    }
}

/// Pseudo-random bytes (xorshift): incompressible.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

impl Fixture {
    fn new(kind: Target) -> Self {
        Self::with_hosts(kind, 1)
    }

    fn with_hosts(kind: Target, n: usize) -> Self {
        let stage = Staging::new();
        let ports = free_ports(n);
        let sshds: Vec<Sshd> = match kind {
            Target::Local => Vec::new(),
            Target::Ssh => (0..n).map(|_| Sshd::start()).collect(),
        };
        // Every host is reached with the first sshd's client config and key.
        for s in sshds.iter().skip(1) {
            let key = fs::read_to_string(sshds[0].dir.join("userkey.pub")).unwrap();
            fs::OpenOptions::new()
                .append(true)
                .open(s.dir.join("authorized_keys"))
                .unwrap()
                .write_all(key.as_bytes())
                .unwrap();
        }
        let hosts = (0..n)
            .map(|i| Host {
                name: match kind {
                    Target::Local => "local".to_owned(),
                    Target::Ssh => sshds[i].host_name(),
                },
                root: stage.path().join(format!("host{i}")),
                port: ports[i],
            })
            .collect();
        Self {
            kind,
            stage,
            hosts,
            env_extra: String::new(),
            sshds,
        }
    }

    fn port(&self) -> u16 {
        self.hosts[0].port
    }

    fn root(&self) -> &Path {
        &self.hosts[0].root
    }

    /// Writes rollway.toml for these hosts and health settings.
    fn configure(&self, h: Health) {
        let mut config = Config::local("deploytest", self.port(), self.root());
        config.health = h;
        config.env_extra.clone_from(&self.env_extra);
        if self.kind == Target::Ssh {
            config.ssh_config = self.sshds.first().map(|s| s.client_config.clone());
            config.hosts = self
                .hosts
                .iter()
                .map(|host| Config::ssh_host(&host.name, &host.root, host.port))
                .collect();
        }
        self.stage.configure(&config);
    }

    fn deploy(&self) -> Run {
        self.run(&["deploy", "staging"])
    }

    /// The release `current` points at on host `i`.
    fn current_on(&self, i: usize) -> Option<String> {
        current_release(&self.hosts[i].root)
    }

    fn current(&self) -> Option<String> {
        self.current_on(0)
    }

    /// The names under ROOT/releases, sorted.
    fn releases(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.root().join("releases"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// A first good deploy of `v1`; returns its deployment id.
    fn deploy_v1(&self) -> String {
        self.mode("v1");
        let r = self.deploy();
        assert_eq!(r.code, 0, "{:?}: v1 should deploy: {r:#?}", self.kind);
        assert_eq!(get(self.port(), "/").map(|g| g.1), Some("hello from v1\n".into()));
        let h = self.history();
        assert_eq!(status(&h[0]), "succeeded", "{h:#?}");
        id(&h[0]).to_owned()
    }

    /// Asserts that the newest deployment failed its window or boot check
    /// and was rolled back to `v1` on the host, which answers again.
    fn assert_rolled_back(&self, r: &Run, v1: &str, reason: &str) -> Value {
        assert_eq!(r.code, 1, "{:?}: a failed deployment exits 1: {r:#?}", self.kind);
        let h = self.history();
        let v2 = &h[0];
        let d = &v2["deployment"];
        assert_ne!(id(v2), v1);
        assert_eq!(status(v2), "rolled_back", "{v2:#?}");
        let failure = d["failure_reason"].as_str().unwrap_or_default();
        assert!(failure.contains(reason), "failure_reason {failure:?} lacks {reason:?}");
        assert!(d["rollback_reason"].as_str().is_some_and(|s| !s.is_empty()), "{d:#?}");
        assert_eq!(d["rollback_to"].as_str(), Some(v1), "{d:#?}");
        let hosts = host_results(v2);
        assert_eq!(hosts.len(), 1, "{v2:#?}");
        assert_eq!(hosts[0]["result"], "FAIL", "{v2:#?}");
        assert_eq!(hosts[0]["returned_to"].as_str(), Some(v1), "{v2:#?}");
        assert!(r.stderr.contains(reason), "stderr: {}", r.stderr);
        assert_eq!(self.current().as_deref(), Some(v1));
        assert_eq!(
            get(self.port(), "/"),
            Some((200, "hello from v1\n".into())),
            "v1 answers again"
        );
        // The previous deployment is untouched.
        assert_eq!(status(&h[1]), "succeeded");
        v2.clone()
    }
}

// ---------------------------------------------------------------- 1. good deploy

fn good_deploy(kind: Target) {
    let f = Fixture::new(kind);
    f.configure(HEALTH);
    f.mode("v1");
    let r = f.deploy();
    assert_eq!(r.code, 0, "{kind:?}: {r:#?}");
    assert_eq!(get(f.port(), "/"), Some((200, "hello from v1\n".into())));

    let h = f.history();
    assert_eq!(h.len(), 1, "{h:#?}");
    let d = &h[0];
    assert_eq!(status(d), "succeeded", "{d:#?}");
    let dep = id(d).to_owned();
    let steps: Vec<&str> = d["deployment"]["lifecycle"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "pending",
            "building",
            "synthesizing",
            "deploying",
            "verifying",
            "succeeded"
        ]
    );
    let v = &d["verifications"][0];
    assert_eq!(v["result"], "PASS", "{d:#?}");
    assert_eq!(v["stability_window_ms"], 2000);
    let hosts = host_results(d);
    assert_eq!(hosts.len(), 1, "{d:#?}");
    assert_eq!(hosts[0]["host"].as_str(), Some(f.hosts[0].name.as_str()));
    assert_eq!(hosts[0]["result"], "PASS", "{d:#?}");
    assert_eq!(hosts[0]["http_status"], 200);
    assert!(hosts[0]["bytes_sent"].as_u64().unwrap() > 0, "{d:#?}");
    assert_eq!(hosts[0]["restarts_observed"], 0);

    // The layout on the host.
    assert_eq!(f.current().as_deref(), Some(dep.as_str()));
    let release = f.root().join("releases").join(&dep);
    assert_eq!(
        fs::read_to_string(release.join("mode.txt")).unwrap(),
        "v1\n",
        "current points at v1's files"
    );
    assert_eq!(
        fs::canonicalize(f.root().join("current")).unwrap(),
        fs::canonicalize(&release).unwrap()
    );
    let env = f.root().join("envs").join(format!("{dep}.env"));
    let mode = fs::metadata(&env)
        .unwrap_or_else(|e| panic!("{}: {e}", env.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{}", env.display());
}

#[test]
fn good_deploy_local() {
    good_deploy(Target::Local);
}

#[test]
fn good_deploy_ssh() {
    good_deploy(Target::Ssh);
}

// ---------------------------------------------------- 2. crash in the window

fn crash_in_window_rolls_back(kind: Target) {
    let f = Fixture::new(kind);
    // A crash is seen as a restart by the supervisor: give the restart
    // count room to be read before failed probes would decide instead.
    f.configure(Health {
        window: "3s",
        window_failures: 5,
        ..HEALTH
    });
    let v1 = f.deploy_v1();
    f.mode("v2 crash");
    let r = f.deploy();
    let v2 = f.assert_rolled_back(&r, &v1, "restarted");
    assert!(
        host_results(&v2)[0]["restarts_observed"].as_u64().unwrap() >= 1,
        "{v2:#?}"
    );
    let rollback = v2["deployment"]["rollback_reason"].as_str().unwrap();
    assert!(rollback.contains("restarted"), "{rollback}");
}

#[test]
fn crash_in_window_rolls_back_local() {
    crash_in_window_rolls_back(Target::Local);
}

#[test]
fn crash_in_window_rolls_back_ssh() {
    crash_in_window_rolls_back(Target::Ssh);
}

// --------------------------------------------------- 3. HTTP 500 in the window

fn http_500_in_window_rolls_back(kind: Target) {
    let f = Fixture::new(kind);
    f.configure(HEALTH);
    let v1 = f.deploy_v1();
    f.mode("v2 sick");
    let r = f.deploy();
    let v2 = f.assert_rolled_back(&r, &v1, "consecutive failed probes");
    let failure = v2["deployment"]["failure_reason"].as_str().unwrap();
    assert!(failure.contains("500"), "{failure}");
}

#[test]
fn http_500_in_window_rolls_back_local() {
    http_500_in_window_rolls_back(Target::Local);
}

#[test]
fn http_500_in_window_rolls_back_ssh() {
    http_500_in_window_rolls_back(Target::Ssh);
}

// ------------------------------------------------------ 4. never comes up

fn never_up_rolls_back(kind: Target) {
    let f = Fixture::new(kind);
    f.configure(HEALTH);
    let v1 = f.deploy_v1();
    f.configure(Health { retries: 4, ..HEALTH });
    f.mode("v2 down");
    let r = f.deploy();
    let v2 = f.assert_rolled_back(&r, &v1, "boot check failed");
    // It never reached the window.
    let steps: Vec<&str> = v2["deployment"]["lifecycle"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to"].as_str().unwrap())
        .collect();
    assert!(!steps.contains(&"verifying"), "{steps:?}");
}

#[test]
fn never_up_rolls_back_local() {
    never_up_rolls_back(Target::Local);
}

#[test]
fn never_up_rolls_back_ssh() {
    never_up_rolls_back(Target::Ssh);
}

// ------------------------------------------- 5. failed canary, second host untouched

#[test]
fn failed_canary_never_reaches_second_host_ssh() {
    let mut f = Fixture::with_hosts(Target::Ssh, 2);
    f.env_extra = "canary = 1\n".into();
    f.configure(Health { retries: 4, ..HEALTH });
    f.mode("v1 down");
    // `Sshd::start` checks its server with one ssh session of its own.
    let baseline: Vec<usize> = f.sshds.iter().map(Sshd::connections).collect();
    let r = f.deploy();
    assert_eq!(r.code, 1, "{r:#?}");
    let h = f.history();
    assert_eq!(h.len(), 1, "{h:#?}");
    let d = &h[0];
    assert_eq!(status(d), "failed", "{d:#?}");
    let failure = d["deployment"]["failure_reason"].as_str().unwrap();
    assert!(failure.contains("boot check failed"), "{failure}");
    assert!(failure.contains(&f.hosts[0].name), "names the canary host: {failure}");
    assert!(d["deployment"]["rollback_to"].is_null(), "{d:#?}");
    // Seed 004: a failed deployment carries a rollback_reason, here why none happened.
    assert_eq!(
        d["deployment"]["rollback_reason"],
        "first deployment of staging: nothing to return to (its service was stopped)",
        "{d:#?}"
    );
    assert!(
        r.stderr.contains("nothing to return to") && r.stderr.contains("stays failed"),
        "says there was nothing to return to: {r:#?}"
    );
    assert!(
        get(f.hosts[0].port, "/").is_none(),
        "the failed release's service was stopped"
    );
    assert_eq!(d["deployment"]["waves"].as_array().unwrap().len(), 2, "{d:#?}");
    // Only the canary took the release; no session ever reached the second host.
    let hosts = host_results(d);
    assert!(
        hosts
            .iter()
            .all(|x| x["host"].as_str() == Some(f.hosts[0].name.as_str())),
        "{d:#?}"
    );
    assert_eq!(
        f.sshds[1].connections() - baseline[1],
        0,
        "a session reached the second host"
    );
    assert!(!f.hosts[1].root.exists(), "the second host's root was made");
    assert!(f.sshds[0].connections() > baseline[0], "the canary was reached");
    assert!(get(f.hosts[1].port, "/").is_none());
}

// ------------------------------------------- 6. a small change costs few bytes

#[test]
fn small_change_small_wire_ssh() {
    const FILES: usize = 300;
    const SIZE: usize = 8 << 10;
    const CHANGED: usize = FILES / 100;
    const PATCH: usize = 16;
    let f = Fixture::new(Target::Ssh);
    f.configure(HEALTH);
    let data = f.project.path().join("app/data");
    fs::create_dir_all(&data).unwrap();
    let mut files: Vec<Vec<u8>> = (0..FILES).map(|i| noise(SIZE, i as u64 + 1)).collect();
    for (i, bytes) in files.iter().enumerate() {
        fs::write(data.join(format!("blob{i:03}.bin")), bytes).unwrap();
    }
    let v1 = f.deploy_v1();
    let sshd = &f.sshds[0];

    // Change a few bytes in the middle of 1 % of the files.
    for k in 0..CHANGED {
        let i = k * (FILES / CHANGED) + 7;
        let at = SIZE / 2 + k * 100;
        files[i][at..at + PATCH].copy_from_slice(&noise(PATCH, 1000 + k as u64));
        fs::write(data.join(format!("blob{i:03}.bin")), &files[i]).unwrap();
    }
    let before = sshd.wire();
    let r = f.deploy();
    let after = sshd.wire();
    assert_eq!(r.code, 0, "{r:#?}");
    let up = after.up - before.up;
    let down = after.down - before.down;
    let tree = (FILES * SIZE) as u64;
    let changed = (CHANGED * PATCH) as u64;
    println!(
        "redeploy after {CHANGED} of {FILES} files changed by {PATCH} bytes each ({changed} bytes changed, tree {tree} bytes): {up} bytes up, {down} bytes down on the wire"
    );
    let h = f.history();
    assert_eq!(status(&h[0]), "succeeded", "{:#?}", h[0]);
    assert_ne!(id(&h[0]), v1);
    let sent = host_results(&h[0])[0]["bytes_sent"].as_u64().unwrap();
    assert!(sent > 0 && sent < tree / 20, "bytes_sent {sent}");
    assert!(up > 0);
    assert!(
        up < changed + 150 * 1024,
        "{up} bytes up for {changed} changed bytes (over the 150 KiB overhead bound)"
    );
    assert!(up * 10 < tree, "{up} bytes up is not far below the tree ({tree})");
    // The new release has the changed bytes.
    let cur = f.current().unwrap();
    let i = 7;
    assert_eq!(
        fs::read(
            f.root()
                .join("releases")
                .join(&cur)
                .join(format!("data/blob{i:03}.bin"))
        )
        .unwrap(),
        files[i]
    );
}

// ------------------------------------------------------- 7. the environment lock

fn concurrent_deploy_is_locked(kind: Target) {
    let f = Fixture::new(kind);
    f.configure(Health { window: "3s", ..HEALTH });
    f.mode("v1");
    let mut first = f
        .command(&["deploy", "staging"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first deployment is in its window.
    let deadline = Instant::now() + Duration::from_secs(120);
    let first_id = loop {
        let r = f.run(&["--json", "history", "staging"]);
        if r.code == 0 {
            let h = r.json();
            if let Some(d) = h.as_array().and_then(|a| a.first()) {
                match status(d) {
                    "verifying" => break id(d).to_owned(),
                    "pending" | "building" | "synthesizing" | "deploying" => {}
                    other => panic!("the first deployment ended before its window: {other}: {d:#?}"),
                }
            }
        }
        if Instant::now() >= deadline {
            let _ = first.kill();
            let out = first.wait_with_output().unwrap();
            panic!(
                "the first deployment never reached verifying; history: {}\nits output: {}\n{}",
                f.run(&["--json", "history", "staging"]).stdout,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };

    f.mode("v2");
    let second = f.deploy();
    let out = first.wait_with_output().unwrap();
    assert_eq!(second.code, 3, "{second:#?}");
    let re = regex::Regex::new(
        r"locked by tester@example\.com since (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z) \(deployment ([0-9a-f-]{36})",
    )
    .unwrap();
    let caps = re
        .captures(&second.stderr)
        .unwrap_or_else(|| panic!("no lock message in: {}", second.stderr));
    assert_eq!(&caps[3], first_id, "names the holder's deployment");

    assert_eq!(
        out.status.code(),
        Some(0),
        "the first deployment: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let h = f.history();
    assert_eq!(h.len(), 1, "the refused deploy left no deployment: {h:#?}");
    assert_eq!(status(&h[0]), "succeeded");
    assert_eq!(get(f.port(), "/"), Some((200, "hello from v1\n".into())));
}

#[test]
fn concurrent_deploy_is_locked_local() {
    concurrent_deploy_is_locked(Target::Local);
}

#[test]
fn concurrent_deploy_is_locked_ssh() {
    concurrent_deploy_is_locked(Target::Ssh);
}

// ----------------------------------------------- 8. a detached window nobody watched

fn unwatched_detached_window(kind: Target) {
    let f = Fixture::new(kind);
    f.configure(HEALTH);
    let v1 = f.deploy_v1();

    f.mode("v2");
    let r = f.run(&["deploy", "--detach", "staging"]);
    assert_eq!(r.code, 0, "{r:#?}");
    let h = f.history();
    let v2 = id(&h[0]).to_owned();
    assert_ne!(v2, v1);
    assert_eq!(status(&h[0]), "verifying", "{:#?}", h[0]);
    assert_eq!(f.current().as_deref(), Some(v2.as_str()));
    let ends = h[0]["verifications"][0]["window_ends_at"].as_u64().unwrap();
    // Past the window's end and the lease, nobody having watched it.
    let until = ends + LEASE_MS + 500;
    while now_ms() < until {
        std::thread::sleep(Duration::from_millis(until - now_ms()));
    }
    assert_eq!(status(&f.history()[0]), "verifying", "history only reads");

    f.mode("v3");
    let r = f.deploy();
    assert_eq!(r.code, 0, "{r:#?}");
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(all.contains("window not observed"), "{all}");
    let h = f.history();
    assert_eq!(h.len(), 3, "{h:#?}");
    let (d3, d2) = (&h[0], &h[1]);
    assert_eq!(id(d2), v2);
    assert_eq!(status(d2), "rolled_back", "{d2:#?}");
    let failure = d2["deployment"]["failure_reason"].as_str().unwrap();
    assert!(failure.contains("window not observed"), "{failure}");
    assert!(d2["deployment"]["rollback_reason"].as_str().is_some());
    assert_eq!(d2["deployment"]["rollback_to"].as_str(), Some(v1.as_str()));
    assert_eq!(host_results(d2)[0]["returned_to"].as_str(), Some(v1.as_str()));
    // The detached one was settled before the new one was shipped.
    let recovered = all.find("window not observed").unwrap();
    let shipped = all.find("shipped:").expect("the new release was shipped");
    assert!(recovered < shipped, "{all}");
    let rolled_at = d2["deployment"]["lifecycle"]["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["at"]
        .as_u64()
        .unwrap();
    let deploying_at = d3["deployment"]["lifecycle"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["to"] == "deploying")
        .unwrap()["at"]
        .as_u64()
        .unwrap();
    assert!(rolled_at <= deploying_at, "{h:#?}");
    assert_eq!(status(d3), "succeeded", "{d3:#?}");
    assert_eq!(f.current().as_deref(), Some(id(d3)));
    assert_eq!(get(f.port(), "/"), Some((200, "hello from v3\n".into())));
}

#[test]
fn unwatched_detached_window_local() {
    unwatched_detached_window(Target::Local);
}

#[test]
fn unwatched_detached_window_ssh() {
    unwatched_detached_window(Target::Ssh);
}

// ------------------------------------------------------------- 9. dry run

fn dry_run_changes_nothing(kind: Target) {
    let f = Fixture::new(kind);
    f.configure(HEALTH);
    let v1 = f.deploy_v1();
    let releases = f.releases();
    let envs = fs::read_dir(f.root().join("envs")).unwrap().count();
    let wire = f.sshds.first().map(Sshd::wire);

    f.mode("v2");
    // A dry run builds nothing: it plans from the last artifact built.
    f.run(&["build"]).ok();
    // Files are listed only with --verbose (a summary per host otherwise).
    let r = f.run(&["deploy", "--dry-run", "--verbose", "staging"]);
    assert_eq!(r.code, 0, "{r:#?}");
    let out = &r.stdout;
    let host = &f.hosts[0].name;
    assert!(out.contains(&format!("{host} (")), "names the host: {out}");
    assert!(out.contains(&format!("current {v1}")), "{out}");
    assert!(out.contains("patch mode.txt"), "the transfer: {out}");
    for cmd in ["write ", "point ", "restart ", "probe http://127.0.0.1:"] {
        assert!(out.contains(&format!("run   {cmd}")), "lacks {cmd:?}: {out}");
    }
    assert!(out.contains("nothing was changed"), "{out}");

    let j = f
        .run(&["--json", "deploy", "--dry-run", "--verbose", "staging"])
        .ok()
        .json();
    assert_eq!(j["dry_run"], true);
    assert_eq!(j["hosts"][0]["host"].as_str(), Some(host.as_str()));
    assert_eq!(j["hosts"][0]["current"].as_str(), Some(v1.as_str()));
    assert_eq!(j["hosts"][0]["patches"][0]["path"], "mode.txt", "{j:#}");

    assert_eq!(f.releases(), releases, "releases/ changed");
    assert_eq!(f.current().as_deref(), Some(v1.as_str()));
    assert_eq!(fs::read_dir(f.root().join("envs")).unwrap().count(), envs);
    let h = f.history();
    assert_eq!(h.len(), 1, "a dry run records no deployment: {h:#?}");
    assert_eq!(get(f.port(), "/"), Some((200, "hello from v1\n".into())));
    if let (Some(before), Some(s)) = (wire, f.sshds.first()) {
        // It did look at the host (the state and the agent), but shipped nothing.
        let up = s.wire().up - before.up;
        assert!(up < 64 * 1024, "{up} bytes up for a dry run");
    }
}

#[test]
fn dry_run_changes_nothing_local() {
    dry_run_changes_nothing(Target::Local);
}

#[test]
fn dry_run_changes_nothing_ssh() {
    dry_run_changes_nothing(Target::Ssh);
}
