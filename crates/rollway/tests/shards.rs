//! Shard leases through the real binary (OPERATIONS.md "`rollway serve`":
//! several instances on one PostgreSQL store share the monitors; a killed
//! instance's shards are taken over within one lease period; no probe slot
//! runs twice). Two `serve`s, a 3 s lease (`ROLLWAY_SHARD_LEASE`, so a
//! 1 s heartbeat), eight monitors probing every second a loopback server
//! that records each request: while both live each monitor is probed by
//! the one instance holding its shard; after `kill -9` of one, the other
//! takes its shards once the lease expired (and says so), and probes them
//! within a lease and a heartbeat; no slot is probed twice. An instance
//! frozen (SIGSTOP) past its lease stops probing by itself, finds its
//! shards lost when it wakes and gets its share back, again with every
//! slot probed once. A bad `ROLLWAY_SHARD_LEASE` is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::http::RecordingServer;
use common::serve::{Serve, get, parse_metrics, value, wait_for};
use common::{Backend, Project};
use rollway_model::shards::{DEFAULT_SHARDS, shard_of};

const LEASE_MS: i64 = 3_000;
const HEARTBEAT_MS: i64 = 1_000;
const MONITORS: usize = 8;

fn names() -> Vec<String> {
    (0..MONITORS).map(|i| format!("m{i}")).collect()
}

fn project(db: common::PgDb, target: u16) -> Project {
    let p = Project::new(Backend::Postgres(db));
    let mut toml = String::from(
        r#"project = "shards"

[service]
start = "sleep 100"
port = 3000

[environments.staging]
kind = "staging"
hosts = ["local"]
root = ".rollway/staging"
"#,
    );
    for n in names() {
        toml.push_str(&format!(
            "\n[monitors.{n}]\nenvironment = \"staging\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{target}/{n}\"\ninterval = \"1s\"\n"
        ));
    }
    p.write("rollway.toml", &toml);
    p
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// The live leases: owner → shards.
fn leases(p: &Project) -> BTreeMap<String, BTreeSet<u32>> {
    let mut out: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    let rows = p.sql(&format!(
        "SELECT owner, shard FROM shard_leases WHERE owner IS NOT NULL AND released_at IS NULL AND expires_at > {}",
        now_ms()
    ));
    for l in rows.lines() {
        let (owner, shard) = l.split_once('|').unwrap();
        out.entry(owner.to_owned()).or_default().insert(shard.parse().unwrap());
    }
    out
}

/// Each monitor's probes as one instance's `/metrics` counts them.
fn probes(port: u16) -> BTreeMap<String, f64> {
    let (_, text) = get(port, "/metrics").unwrap();
    let m = parse_metrics(&text);
    names()
        .into_iter()
        .map(|n| {
            let v = value(&m, "rollway_probes_total", &[("monitor", &n), ("outcome", "ok")]).unwrap_or(0.0);
            (n, v)
        })
        .collect()
}

fn metric(port: u16, name: &str) -> Option<f64> {
    let (_, text) = get(port, "/metrics")?;
    value(&parse_metrics(&text), name, &[])
}

/// Stored samples of each monitor: slots.
fn slots(p: &Project) -> BTreeMap<String, Vec<i64>> {
    let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for l in p
        .sql("SELECT m.name, s.slot FROM samples s JOIN monitors m ON m.id = s.monitor_id ORDER BY 1, 2")
        .lines()
    {
        let (n, slot) = l.split_once('|').unwrap();
        out.entry(n.to_owned()).or_default().push(slot.parse().unwrap());
    }
    out
}

#[test]
fn two_serves_split_the_monitors_and_a_killed_ones_shards_are_taken_over_within_a_lease() {
    let Some(db) = common::PgDb::create() else {
        return;
    };
    let server = RecordingServer::start();
    let p = project(db, server.port);
    let env = [("ROLLWAY_SHARD_LEASE", "3s")];
    let (port_a, port_b) = (common::free_port(), common::free_port());
    let mut a = Serve::start_with(&p, &["serve", "--listen", &format!("127.0.0.1:{port_a}")], &env);
    assert!(a.line().starts_with("serving on"));
    wait_for("a to hold every shard", || {
        (leases(&p).values().map(BTreeSet::len).sum::<usize>() == DEFAULT_SHARDS as usize).then_some(())
    });
    let mut b = Serve::start_with(&p, &["serve", "--listen", &format!("127.0.0.1:{port_b}")], &env);
    assert!(b.line().starts_with("serving on"));

    // Two owners, 32 shards each: a kept the low half, b took the top.
    let pid = |s: &Serve| format!(":{}:", s.child.id());
    let split = wait_for("the shards split 32/32", || {
        let l = leases(&p);
        (l.len() == 2 && l.values().all(|s| s.len() == 32)).then_some(l)
    });
    let owner_of = |s: &Serve| split.keys().find(|o| o.contains(&pid(s))).unwrap().clone();
    let (id_a, id_b) = (owner_of(&a), owner_of(&b));
    assert_eq!(split[&id_a], (0..32).collect::<BTreeSet<u32>>());
    assert_eq!(split[&id_b], (32..64).collect::<BTreeSet<u32>>());
    let of_b: BTreeSet<String> = names()
        .into_iter()
        .filter(|n| shard_of(n, DEFAULT_SHARDS) >= 32)
        .collect();
    assert!(
        !of_b.is_empty() && of_b.len() < MONITORS,
        "the test's monitor names should land on both halves: {of_b:?}"
    );

    // While both live, each monitor is probed by the instance holding its
    // shard, and only by it.
    let before = (probes(port_a), probes(port_b));
    std::thread::sleep(Duration::from_millis(3_500));
    let after = (probes(port_a), probes(port_b));
    for n in names() {
        let (da, db) = (after.0[&n] - before.0[&n], after.1[&n] - before.1[&n]);
        if of_b.contains(&n) {
            assert!(da == 0.0 && db >= 2.0, "{n}: a probed {da}, b {db}");
        } else {
            assert!(db == 0.0 && da >= 2.0, "{n}: a probed {da}, b {db}");
        }
    }
    assert_eq!(metric(port_a, "rollway_shards_owned"), Some(32.0));
    assert_eq!(
        metric(port_b, "rollway_monitors_not_owned"),
        Some((MONITORS - of_b.len()) as f64)
    );
    assert_eq!(
        metric(port_b, "rollway_monitors_paused"),
        Some(0.0),
        "not owned is not paused"
    );
    let (status, body) = get(port_b, "/readyz").unwrap();
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, &ready["shards"]),
        (
            200,
            &serde_json::json!({"owner": id_b, "shards": 64, "owned": 32, "monitors": of_b.len()})
        ),
        "{body}"
    );

    // kill -9 b: a takes its shards once b's lease expired, and probes
    // them within a lease and a heartbeat (plus one interval to the next
    // slot, and a second of slack for a loaded machine).
    let killed = now_ms();
    let b_log = b.kill();
    let took = wait_for("a to probe b's monitors", || {
        let s = slots(&p);
        let firsts: Vec<i64> = of_b
            .iter()
            .map(|n| s.get(n).and_then(|v| v.iter().copied().find(|&t| t > killed)))
            .collect::<Option<Vec<i64>>>()?;
        firsts.into_iter().max()
    });
    let gap = took - killed;
    // The figure the README quotes (`cargo test -p rollway --test shards -- --nocapture`).
    eprintln!("takeover: b's monitors probed again {gap} ms after kill -9 (lease 3 s, heartbeat 1 s)");
    assert!(
        gap <= LEASE_MS + HEARTBEAT_MS + 1_000 + 1_000,
        "b's monitors were probed again {gap} ms after the kill"
    );
    assert_eq!(metric(port_a, "rollway_shards_owned"), Some(64.0));
    std::thread::sleep(Duration::from_millis(1_500));
    let (status, a_log) = a.terminate();
    assert_eq!(status.code(), Some(0), "{a_log}");

    // What each said: the split, the takeover naming b, the stop.
    let shard_lines = |log: &str| -> Vec<String> {
        log.lines()
            .filter(|l| l.starts_with("shards: ") && !l.starts_with("shards: sharing"))
            .map(str::to_owned)
            .collect()
    };
    let n_b = of_b.len();
    let n_a = MONITORS - n_b;
    assert_eq!(
        shard_lines(&a_log),
        [
            format!(
                "shards: took shards 0-63 (free); holding 64 of 64 shards (1 instance), probing {MONITORS} of {MONITORS} monitors"
            ),
            format!(
                "shards: gave back shards 32-63 (a fair share is 32 of 64 with 2 instances); holding 32 of 64 shards (2 instances), probing {n_a} of {MONITORS} monitors"
            ),
            format!(
                "shards: took shards 32-63 (lease of {id_b} expired); holding 64 of 64 shards (1 instance), probing {MONITORS} of {MONITORS} monitors"
            ),
            "shards: gave back 64 shards (stopping)".to_owned(),
        ],
        "{a_log}"
    );
    assert!(
        a_log.contains(&format!(
            "shards: sharing the monitors as {id_a} (64 shards, 3s leases renewed every 1s)"
        )),
        "{a_log}"
    );
    assert_eq!(
        shard_lines(&b_log),
        [format!(
            "shards: took shards 32-63 (released by {id_a}); holding 32 of 64 shards (2 instances), probing {n_b} of {MONITORS} monitors"
        )],
        "{b_log}"
    );

    // No slot probed twice. The store keeps a (monitor, slot) once anyway,
    // so count what reached the server: one request per slot (a second
    // probe of a slot would arrive within milliseconds of the first, not
    // an interval later), as many as stored samples — and for b's
    // monitors at most one more, a probe b had in flight when it died.
    assert_eq!(
        p.sql("SELECT COUNT(*) FROM (SELECT monitor_id, slot FROM samples GROUP BY 1, 2 HAVING COUNT(*) > 1) d"),
        "0\n"
    );
    let stored = slots(&p);
    let mut requests: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (path, at) in server.requests() {
        requests
            .entry(path.trim_start_matches('/').to_owned())
            .or_default()
            .push(at);
    }
    for n in names() {
        let (got, kept) = (&requests[&n], &stored[&n]);
        for w in got.windows(2) {
            assert!(
                w[1] - w[0] >= 500,
                "{n}: two requests {} ms apart: {got:?}",
                w[1] - w[0]
            );
        }
        let extra = got.len() - kept.len();
        assert!(
            extra == 0 || (of_b.contains(&n) && extra == 1),
            "{n}: {} requests, {} samples",
            got.len(),
            kept.len()
        );
    }
    // The takeover is a gap in b's monitors, never an overlap: their
    // first slot after the kill is a lease (less the guard) or more after
    // b's last.
    let s = slots(&p);
    for n in &of_b {
        let last_b = s[n].iter().copied().filter(|&t| t <= killed).max().unwrap();
        let first_a = s[n].iter().copied().find(|&t| t > killed).unwrap();
        assert!(first_a - last_b >= 1_000, "{n}: {last_b} then {first_a}");
    }
    assert_eq!(
        p.sql("SELECT COUNT(*) FROM shard_leases WHERE released_at IS NULL"),
        "0\n",
        "a gave back everything it held, b's shards included"
    );
}

/// Starts `serve` with a 3 s shard lease, answering on `port`.
fn serve(p: &Project, port: u16) -> Serve {
    let s = Serve::start_with(
        p,
        &["serve", "--listen", &format!("127.0.0.1:{port}")],
        &[("ROLLWAY_SHARD_LEASE", "3s")],
    );
    assert!(s.line().starts_with("serving on"));
    s
}

fn signal(s: &Serve, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// `stopped: N probes started, …, 0 lost`: N.
fn started(log: &str) -> u64 {
    regex::Regex::new(r"stopped: (\d+) probes started, \d+ samples recorded, 0 lost")
        .unwrap()
        .captures(log)
        .unwrap_or_else(|| panic!("no stop line in {log}"))[1]
        .parse()
        .unwrap()
}

#[test]
fn a_frozen_serve_stops_probing_at_its_lease_and_gets_its_share_back_when_it_wakes() {
    let Some(db) = common::PgDb::create() else {
        return;
    };
    let server = RecordingServer::start();
    let p = project(db, server.port);
    let (port_a, port_b) = (common::free_port(), common::free_port());
    let mut a = serve(&p, port_a);
    wait_for("a to hold every shard", || {
        (metric(port_a, "rollway_shards_owned") == Some(64.0)).then_some(())
    });
    let mut b = serve(&p, port_b);
    wait_for("the shards split 32/32", || {
        (metric(port_b, "rollway_shards_owned") == Some(32.0)).then_some(())
    });

    // b freezes (a stuck machine, a long GC pause): its leases run out, a
    // takes them; b's own schedule stops at its leases' end by itself.
    signal(&b, "-STOP");
    wait_for("a to take b's shards", || {
        (metric(port_a, "rollway_shards_owned") == Some(64.0)).then_some(())
    });
    std::thread::sleep(Duration::from_millis(1_500));
    signal(&b, "-CONT");
    // b wakes, finds its shards gone, and gets its share back.
    wait_for("b to hold its share again", || {
        (metric(port_b, "rollway_shards_owned") == Some(32.0) && metric(port_a, "rollway_shards_owned") == Some(32.0))
            .then_some(())
    });
    std::thread::sleep(Duration::from_millis(2_000));
    let (status_b, b_log) = b.terminate();
    let (status_a, a_log) = a.terminate();
    assert_eq!(
        (status_a.code(), status_b.code()),
        (Some(0), Some(0)),
        "{a_log}\n{b_log}"
    );
    assert!(
        b_log.contains(
            "lost shards 32-63: their leases expired before they were renewed; holding 0 of 64 shards (2 instances)"
        ),
        "{b_log}"
    );

    // Every probe either started was one slot stored once, and reached
    // the server once.
    let stored: usize = slots(&p).values().map(Vec::len).sum();
    assert_eq!(started(&a_log) + started(&b_log), stored as u64, "{a_log}\n{b_log}");
    assert_eq!(server.requests().len(), stored);
}

#[test]
fn a_bad_shard_lease_is_refused_naming_the_variable() {
    let Some(db) = common::PgDb::create() else {
        return;
    };
    let p = project(db, 9);
    for bad in ["soon", "100ms"] {
        let r = p.run_full(
            &["serve", "--listen", "127.0.0.1:0"],
            "",
            &[("ROLLWAY_SHARD_LEASE", bad)],
        );
        assert_eq!(
            (r.code, r.stderr.as_str()),
            (
                2,
                format!(
                    "error: ROLLWAY_SHARD_LEASE={bad} is not a shard lease: write a duration of 300ms or more, e.g. 15s\n"
                )
                .as_str()
            ),
            "{r:?}"
        );
    }
}
