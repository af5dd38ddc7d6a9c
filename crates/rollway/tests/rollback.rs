//! Issue 9 end to end through the real binary: a dry run that runs and
//! writes nothing; a rollback that restores the release as it ran (its env
//! file) and switches back with nothing shipped, on a real sshd; `verify`
//! after a detached window nobody watched; the environment's lifecycle and
//! what `deploy`, `history` and `status` report.
//!
//! The app and the project around it are `common::deploy`'s: `GET
//! /env/NAME` answers the value of NAME in the service's environment, `GET
//! /` "hello from VERSION" from `mode.txt`, which may also make it `crash`
//! or turn `sick`. Every test stops the service at its end (dropping the
//! fixture runs `rollway stop staging`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/sshd.rs"]
mod sshd;

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::ops::Deref;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::deploy::{
    Config, LEASE, LEASE_MS, Staging, current_release, get, host_results as hosts, id, now_ms, status, wait_until,
};
use sshd::Sshd;

/// A value that must reach the service and never be printed in clear.
const ADDED: &str = "added-later-Qw8Er5Ty2Ui9Op3As";

/// The shared staging project with an environment `staging` on one host
/// (`local`, or a real sshd on loopback, declared after the project so the
/// service is stopped while it runs).
struct Fixture {
    stage: Staging,
    root: PathBuf,
    port: u16,
    sshd: Option<Sshd>,
}

impl Deref for Fixture {
    type Target = Staging;
    fn deref(&self) -> &Staging {
        &self.stage
    }
}

/// Every entry under `dir`: path → (kind, size, mtime in ns, mode). Sockets
/// and the like count too.
fn listing(dir: &Path) -> BTreeMap<String, (String, u64, i128, u32)> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, (String, u64, i128, u32)>) {
        let Ok(rd) = fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let path = e.path();
            let md = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(base).unwrap().display().to_string();
            let kind = if md.file_type().is_symlink() {
                format!("link -> {}", fs::read_link(&path).unwrap().display())
            } else if md.is_dir() {
                "dir".to_owned()
            } else {
                "file".to_owned()
            };
            let mtime = i128::from(md.mtime()) * 1_000_000_000 + i128::from(md.mtime_nsec());
            out.insert(rel, (kind, md.len(), mtime, md.mode()));
            if md.is_dir() {
                walk(base, &path, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

impl Fixture {
    fn new(ssh: bool) -> Self {
        let stage = Staging::new();
        let port = common::free_port();
        let sshd = ssh.then(Sshd::start);
        let root = stage.path().join("host0");
        let f = Self {
            stage,
            root,
            port,
            sshd,
        };
        f.configure("2s", "");
        f
    }

    /// rollway.toml, with `extra` keys for `[environments.staging]`; the
    /// build appends a line to `built.log` each time it runs.
    fn configure(&self, window: &'static str, extra: &str) {
        let mut config = Config::local("rollbacktest", self.port, &self.root);
        config.build = format!("echo built >> built.log && {}", config.build);
        config.health.window = window;
        config.sections = "[variables.ADDED_LATER]\ntype = \"string\"\nsecret = true\n\n".to_owned();
        config.env_extra = format!("vars = {{ GREETING = \"hi\" }}\n{extra}");
        if let Some(s) = &self.sshd {
            config.ssh_config = Some(s.client_config.clone());
            config.hosts = vec![Config::ssh_host(&s.host_name(), &self.root, self.port)];
        }
        self.stage.configure(&config);
    }

    fn current(&self) -> Option<String> {
        current_release(&self.root)
    }

    /// A good deploy of `version`; returns its deployment id.
    fn deploy(&self, version: &str) -> String {
        self.mode(version);
        let r = self.run(&["deploy", "staging"]);
        assert_eq!(r.code, 0, "{version} should deploy: {r:#?}");
        assert_eq!(get(self.port, "/"), Some((200, format!("hello from {version}\n"))));
        let h = self.history();
        assert_eq!(status(&h[0]), "succeeded", "{:#?}", h[0]);
        id(&h[0]).to_owned()
    }

    fn env_of_service(&self, key: &str) -> String {
        get(self.port, &format!("/env/{key}")).unwrap().1
    }
}

// ------------------------------------------------------------- A. dry run

#[test]
fn dry_run_runs_no_build_and_writes_nothing() {
    let f = Fixture::new(false);
    let v1 = f.deploy("v1");
    // A newer artifact, built but not deployed: the dry run plans from it.
    f.mode("v2");
    f.run(&["build"]).ok();
    let marker = f.project.path().join("built.log");
    fs::remove_file(&marker).unwrap();
    f.mode("v3");
    let state = f.project.path().join(".rollway");
    let state_before = listing(&state);
    let root_before = listing(&f.root);
    assert!(!state_before.is_empty() && !root_before.is_empty());

    let r = f.run(&["deploy", "--dry-run", "staging"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(!marker.exists(), "the build command ran: {r:#?}");
    let out = &r.stdout;
    assert!(out.contains("would build first"), "{out}");
    assert!(out.contains(&format!("current {v1}")), "{out}");
    assert!(out.contains("1 patched"), "a per-host summary: {out}");
    assert!(!out.contains("mode.txt"), "files are listed only with --verbose: {out}");
    for cmd in ["write ", "point ", "restart ", "probe http://127.0.0.1:"] {
        assert!(out.contains(&format!("run   {cmd}")), "lacks {cmd:?}: {out}");
    }
    assert!(out.contains("nothing was changed"), "{out}");

    let v = f.run(&["deploy", "--dry-run", "--verbose", "staging"]).ok();
    assert!(v.stdout.contains("patch mode.txt"), "{}", v.stdout);
    let j = f.run(&["--json", "deploy", "--dry-run", "staging"]).ok().json();
    assert_eq!(j["dry_run"], true);
    assert_eq!(j["would_build"], true);
    assert_eq!(j["hosts"][0]["files_patched"], 1, "{j:#}");
    assert!(j["hosts"][0].get("patches").is_none(), "{j:#}");

    assert!(!marker.exists(), "the build command ran");
    assert_eq!(listing(&state), state_before, "the state directory changed");
    assert_eq!(listing(&f.root), root_before, "the host root changed");
    assert_eq!(f.history().len(), 1, "a dry run records no deployment");
    assert_eq!(get(f.port, "/"), Some((200, "hello from v1\n".into())));
}

// ------------------------------------------------- B. rollback as it ran

#[test]
fn rollback_restores_the_env_file_it_ran_with_and_ships_nothing_ssh() {
    let f = Fixture::new(true);
    f.run(&["secrets", "init"]).ok();
    let r1 = f.deploy("v1");
    assert_eq!(f.env_of_service("ADDED_LATER"), "<unset>");
    assert_eq!(f.env_of_service("GREETING"), "hi");

    f.project
        .run_full(
            &["secrets", "set", "staging", "ADDED_LATER"],
            ADDED,
            &[("ROLLWAY_LEASE", LEASE)],
        )
        .ok();
    let r2 = f.deploy("v2");
    assert_eq!(f.env_of_service("ADDED_LATER"), ADDED);

    // The dry run says what it would do, masked, and changes nothing.
    let root_before = listing(&f.root);
    let dry = f.run(&["rollback", "staging", "--to", &r1, "--dry-run"]).ok();
    let out = format!("{}{}", dry.stdout, dry.stderr);
    assert!(out.contains(&format!("to release {r1}")), "{out}");
    assert!(
        out.contains(&format!("switch: release {r1} is still on the host")),
        "{out}"
    );
    assert!(out.contains("GREETING=hi"), "the env file it would use: {out}");
    assert!(!out.contains("ADDED_LATER"), "release 1 ran without it: {out}");
    let dry = f
        .run(&["rollback", "staging", "--to", &r1, "--dry-run", "--current-config"])
        .ok();
    let out = format!("{}{}", dry.stdout, dry.stderr);
    assert!(out.contains("ADDED_LATER=****"), "{out}");
    for form in common::secret_forms(ADDED) {
        assert!(!out.contains(&form), "the secret in clear: {out}");
    }
    assert_eq!(listing(&f.root), root_before, "a dry run changed the host");

    // As it ran: the variable added after release 1 is gone; nothing shipped.
    let wire = f.sshd.as_ref().unwrap().wire();
    let r = f.run(&["rollback", "staging", "--to", &r1, "--reason", "back to one"]);
    assert_eq!(r.code, 0, "{r:#?}");
    let up = f.sshd.as_ref().unwrap().wire().up - wire.up;
    assert_eq!(
        f.current().as_deref(),
        Some(r1.as_str()),
        "switched back to release 1's directory"
    );
    assert_eq!(get(f.port, "/"), Some((200, "hello from v1\n".into())));
    assert_eq!(f.env_of_service("ADDED_LATER"), "<unset>");
    assert_eq!(f.env_of_service("GREETING"), "hi");
    let h = f.history();
    let rb = &h[0];
    assert_eq!(rb["deployment"]["kind"], "rollback", "{rb:#}");
    assert_eq!(status(rb), "succeeded", "{rb:#}");
    assert_eq!(rb["deployment"]["rollback_to"].as_str(), Some(r1.as_str()));
    assert_eq!(hosts(rb)[0]["bytes_sent"], 0, "a switch ships no file bytes: {rb:#}");
    assert_eq!(id(&h[1]), r2);
    assert_eq!(status(&h[1]), "rolled_back");
    assert!(up < 64 * 1024, "{up} bytes went up for a switch");
    for form in common::secret_forms(ADDED) {
        assert!(!r.stdout.contains(&form) && !r.stderr.contains(&form), "{r:#?}");
    }

    // Today's configuration on request, still a switch.
    let r = f.run(&[
        "--json",
        "rollback",
        "staging",
        "--to",
        &r1,
        "--current-config",
        "--reason",
        "one with today's config",
    ]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(f.env_of_service("ADDED_LATER"), ADDED);
    assert_eq!(f.current().as_deref(), Some(r1.as_str()));
    let j = r.json();
    assert_eq!(hosts(&j)[0]["bytes_sent"], 0, "{j:#}");
    assert!(j["phases"]["switch"].is_u64(), "{j:#}");
}

#[test]
fn rollback_to_a_pruned_release_ships_it_with_the_env_file_it_ran_with() {
    let f = Fixture::new(false);
    f.configure("1s", "keep_releases = 1");
    f.run(&["secrets", "init"]).ok();
    let r1 = f.deploy("v1");
    let kept = f.project.path().join(format!(".rollway/envs/{r1}.env.age"));
    let text = fs::read_to_string(&kept).expect("the env file is kept on the deployer");
    assert!(text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"), "{text}");
    assert!(!text.contains("GREETING"), "kept encrypted: {text}");

    f.project
        .run_full(
            &["secrets", "set", "staging", "ADDED_LATER"],
            ADDED,
            &[("ROLLWAY_LEASE", LEASE)],
        )
        .ok();
    f.deploy("v2");
    let r3 = f.deploy("v3");
    assert!(
        !f.root.join("releases").join(&r1).exists(),
        "release 1 was pruned from the host"
    );
    let text = fs::read_to_string(f.project.path().join(format!(".rollway/envs/{r3}.env.age"))).unwrap();
    for form in common::secret_forms(ADDED) {
        assert!(!text.contains(&form), "the secret in clear in the kept env file");
    }

    let dry = f.run(&["rollback", "staging", "--to", &r1, "--dry-run"]).ok();
    assert!(dry.stdout.contains("local  ship"), "{}", dry.stdout);
    let r = f.run(&["rollback", "staging", "--to", &r1, "--reason", "pruned one"]);
    assert_eq!(r.code, 0, "{r:#?}");
    let h = f.history();
    let rb = id(&h[0]).to_owned();
    assert_eq!(f.current().as_deref(), Some(rb.as_str()), "shipped as a new release");
    assert!(hosts(&h[0])[0]["bytes_sent"].as_u64().unwrap() > 0, "{:#}", h[0]);
    assert_eq!(get(f.port, "/"), Some((200, "hello from v1\n".into())));
    assert_eq!(f.env_of_service("ADDED_LATER"), "<unset>", "as release 1 ran");
    assert_eq!(f.env_of_service("GREETING"), "hi");
}

// ------------------------------------------- C. verify after an unwatched window

#[test]
fn verify_after_an_unwatched_window_watches_a_fresh_window() {
    let f = Fixture::new(false);
    let v1 = f.deploy("v1");

    // Healthy while nobody watched: verify watches a fresh window and passes.
    f.mode("v2");
    f.run(&["deploy", "--detach", "staging"]).ok();
    let h = f.history();
    let v2 = id(&h[0]).to_owned();
    assert_eq!(status(&h[0]), "verifying");
    let ends = h[0]["verifications"][0]["window_ends_at"].as_u64().unwrap();
    wait_until(ends + 300);
    let st = f.run(&["status", "staging"]).ok();
    assert!(
        st.stdout
            .contains("verifying (window ended unwatched; run rollway verify staging)"),
        "{}",
        st.stdout
    );
    let r = f.run(&["verify", "staging"]);
    assert_eq!(r.code, 0, "a healthy release nobody watched is not failed: {r:#?}");
    assert!(r.stdout.contains("fresh full window"), "{}", r.stdout);
    let h = f.history();
    assert_eq!(id(&h[0]), v2);
    assert_eq!(status(&h[0]), "succeeded", "{:#?}", h[0]);
    let new_end = h[0]["verifications"][0]["window_ends_at"].as_u64().unwrap();
    assert!(
        new_end >= ends + 2000,
        "a full window after the old end: {new_end} vs {ends}"
    );
    assert_eq!(f.current().as_deref(), Some(v2.as_str()));

    // Died (and was restarted) while nobody watched: verify rolls it back.
    f.mode("v3 crash");
    f.run(&["deploy", "--detach", "staging"]).ok();
    let h = f.history();
    let v3 = id(&h[0]).to_owned();
    let ends = h[0]["verifications"][0]["window_ends_at"].as_u64().unwrap();
    wait_until(ends.max(now_ms()) + LEASE_MS / 2);
    // The supervisor brought it back (a restart nobody watched): it answers
    // again (`/env/…` does not count as the request that arms the crash).
    let deadline = now_ms() + 60_000;
    while get(f.port, "/env/PORT").is_none() {
        assert!(now_ms() < deadline, "the supervisor never restarted the service");
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = f.run(&["verify", "staging"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stderr.contains("restarted"), "{}", r.stderr);
    let h = f.history();
    assert_eq!(id(&h[0]), v3);
    assert_eq!(status(&h[0]), "rolled_back", "{:#?}", h[0]);
    assert!(hosts(&h[0])[0]["restarts_observed"].as_u64().unwrap() >= 1);
    assert_eq!(h[0]["deployment"]["rollback_to"].as_str(), Some(v2.as_str()));
    assert_eq!(f.current().as_deref(), Some(v2.as_str()));
    assert_eq!(get(f.port, "/"), Some((200, "hello from v2\n".into())));
    assert_ne!(v1, v2);
}

// ---------------------------------------------------------- D. reporting

#[test]
fn first_deploy_activates_the_environment_and_reports_phases() {
    let f = Fixture::new(false);
    let list = f.run(&["env", "list"]).ok();
    assert!(list.stdout.contains("created"), "{}", list.stdout);

    f.mode("v1");
    let r = f.run(&["deploy", "staging"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains("environment staging activated"), "{}", r.stdout);
    assert!(r.stdout.contains("phases: build "), "{}", r.stdout);
    let list = f.run(&["env", "list"]).ok();
    assert!(list.stdout.contains("active"), "{}", list.stdout);
    assert!(!list.stdout.contains("created"), "{}", list.stdout);
    let events = f
        .run(&["--json", "events", "list", "--kind", "environment-transition"])
        .ok();
    let ev = events.json();
    assert_eq!(ev.as_array().map(Vec::len), Some(1), "{ev:#}");
    assert!(ev.to_string().contains("created → active"), "{ev:#}");

    let h = f.history();
    let phases = &h[0]["phases"];
    for k in ["build", "ship", "switch", "restart", "boot", "window"] {
        assert!(phases[k].is_u64(), "no {k} in {phases:#}");
    }
    let text = f.run(&["history", "staging"]).ok();
    assert!(text.stdout.contains("phases: build "), "{}", text.stdout);

    // A second deploy does not activate again.
    f.mode("v2");
    let r = f.run(&["deploy", "staging"]).ok();
    assert!(!r.stdout.contains("activated"), "{}", r.stdout);

    // A release that turns sick in the window: the failure is said once,
    // and history shows the probe that failed, not the boot probe.
    f.mode("v3 sick");
    let r = f.run(&["deploy", "staging"]);
    assert_eq!(r.code, 1, "{r:#?}");
    let all = format!("{}{}", r.stdout, r.stderr);
    let reason = "consecutive failed probes in the stability window";
    assert_eq!(all.matches(reason).count(), 1, "{all}");
    let h = f.history();
    assert_eq!(status(&h[0]), "rolled_back");
    assert_eq!(hosts(&h[0])[0]["http_status"], 500, "{:#}", h[0]);
    let text = f.run(&["history", "staging", "--limit", "1"]).ok();
    assert!(text.stdout.contains("FAIL (HTTP 500"), "{}", text.stdout);
}
