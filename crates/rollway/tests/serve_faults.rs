//! `rollway serve` when the store refuses its writes (OPERATIONS.md: "a
//! store write that fails is retried and reported, samples are not
//! silently dropped"): a real fault, another process (`sqlite3`) holding
//! the SQLite database's write lock (`BEGIN EXCLUSIVE`) for longer than
//! the store waits (10 s) while serve probes two monitors every second.
//! serve says on stderr which store refused and that the samples are kept
//! and retried; once the lock is released every slot probed meanwhile is
//! stored: each monitor's slots run one second apart from its first to
//! its last with no hole, every probe started is stored once, and the
//! final line says 0 lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::http::HttpServer;
use common::serve::{PATIENCE, Serve, wait_for};
use common::uptime::{now_ms, stored_samples};
use common::{Backend, Project};

/// Longer than the store waits for a lock (10 s), so writes fail.
const LOCKED: Duration = Duration::from_secs(15);

fn count(p: &Project, sql: &str) -> u64 {
    p.sql(sql).trim().parse().unwrap()
}

#[test]
fn samples_refused_while_the_database_is_locked_are_kept_and_stored_after() {
    let target = common::free_port();
    let p = Project::new(Backend::Sqlite);
    p.write(
        "rollway.toml",
        &format!(
            r#"project = "faults"

[environments.staging]
kind = "staging"

[monitors.web]
environment = "staging"
kind = "http"
url = "http://127.0.0.1:{target}/"
interval = "1s"

[monitors.sick]
environment = "staging"
kind = "http"
url = "http://127.0.0.1:{target}/sick"
interval = "1s"
"#
        ),
    );
    let _server = HttpServer::start(&p, target);
    let mut serve = Serve::start(&p, &["serve", "--listen", "127.0.0.1:0"]);
    assert!(serve.line().starts_with("serving on http://"));
    wait_for("two samples of each monitor", || {
        (count(
            &p,
            "SELECT COUNT(*) FROM (SELECT monitor_id FROM samples GROUP BY 1 HAVING COUNT(*) >= 2)",
        ) == 2)
            .then_some(())
    });

    // Another process takes the write lock and keeps it.
    let mut sqlite = Command::new("sqlite3")
        .arg(p.sqlite_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut input = sqlite.stdin.take().unwrap();
    let out = sqlite.stdout.take().unwrap();
    let (tx, said) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    input
        .write_all(b".timeout 10000\nBEGIN EXCLUSIVE;\nSELECT 'locked';\n")
        .unwrap();
    assert_eq!(said.recv_timeout(PATIENCE).unwrap(), "locked");
    let locked_at = now_ms();
    let stored_before = count(&p, "SELECT COUNT(*) FROM samples");
    std::thread::sleep(LOCKED);
    // Nothing got in meanwhile (reads go on: the count is read through WAL).
    assert_eq!(count(&p, "SELECT COUNT(*) FROM samples"), stored_before);
    input.write_all(b"COMMIT;\n.quit\n").unwrap();
    drop(input);
    let started = Instant::now();
    while sqlite.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < PATIENCE, "sqlite3 did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
    let released_at = now_ms();

    // The held-back samples arrive, and probing goes on.
    wait_for("samples probed after the release", || {
        (count(
            &p,
            &format!("SELECT COUNT(*) FROM samples WHERE slot > {}", released_at + 2_000),
        ) >= 2)
            .then_some(())
    });
    let (status, stderr) = serve.terminate();
    assert_eq!(status.code(), Some(0), "{stderr}");

    // Reported: what failed, in which store, and that nothing is given up.
    let refused = regex::Regex::new(
        r"cannot record \d+ samples? in the store (\S+); they are kept and retried: the store (\S+) stayed locked by another process for 10s",
    )
    .unwrap();
    let c = refused
        .captures(&stderr)
        .unwrap_or_else(|| panic!("no report of the refused write in:\n{stderr}"));
    assert_eq!(&c[1], &c[2]);
    assert!(c[1].ends_with("rollway.db"), "{stderr}");
    let stop = regex::Regex::new(r"stopped: (\d+) probes started, (\d+) samples recorded, 0 lost")
        .unwrap()
        .captures(&stderr)
        .unwrap_or_else(|| panic!("no stop line saying 0 lost in:\n{stderr}"));
    let (probes, recorded): (u64, u64) = (stop[1].parse().unwrap(), stop[2].parse().unwrap());

    // Every probe started is stored, once; each monitor's slots one second
    // apart with no hole, across the whole run and through the lock.
    let stored = count(&p, "SELECT COUNT(*) FROM samples");
    assert_eq!((probes, recorded), (stored, stored), "{stderr}");
    for monitor in ["web", "sick"] {
        let slots: Vec<i64> = stored_samples(&p, monitor).iter().map(|s| s.slot).collect();
        let holes: Vec<(i64, i64)> = slots
            .windows(2)
            .filter(|w| w[1] - w[0] != 1_000)
            .map(|w| (w[0], w[1]))
            .collect();
        assert_eq!(holes, [], "{monitor}: slots not one second apart");
        let during = slots.iter().filter(|&&s| s > locked_at && s < released_at).count() as i64;
        let span = (released_at - locked_at) / 1_000;
        assert!(
            during >= span - 1,
            "{monitor}: {during} slots stored of the {span} s the lock lasted"
        );
    }
}
