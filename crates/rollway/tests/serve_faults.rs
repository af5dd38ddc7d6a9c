//! `rollway serve` when the store refuses its writes (OPERATIONS.md: "a
//! store write that fails is retried and reported, samples are not
//! silently dropped"): a real fault, another process holding the samples'
//! write lock for longer than the store waits while serve probes two
//! monitors every second — on SQLite `sqlite3` in `BEGIN EXCLUSIVE` for
//! 15 s (the store waits 10 s), on PostgreSQL `psql` holding `LOCK TABLE
//! samples IN EXCLUSIVE MODE` for 10 s against a store whose URL sets
//! `statement_timeout` to 3 s. serve says on stderr which store refused
//! and that the samples are kept and retried, then that it takes them
//! again; once the lock is released every slot probed meanwhile is stored: each monitor's slots run one
//! second apart from its first to its last with no hole, every probe
//! started is stored once, and the final line says 0 lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::http::HttpServer;
use common::serve::{PATIENCE, Serve, wait_for};
use common::uptime::{now_ms, stored_samples};
use common::{Backend, Project};

fn count(p: &Project, sql: &str) -> u64 {
    p.sql(sql).trim().parse().unwrap()
}

/// Another process holding the samples' write lock until [`Locker::release`].
struct Locker {
    child: Child,
    input: ChildStdin,
}

impl Locker {
    /// Starts `program args`, feeds it `lock` and waits for it to print `locked`.
    fn hold(program: &str, args: &[&str], lock: &str) -> Self {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, said) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        input.write_all(lock.as_bytes()).unwrap();
        assert_eq!(
            said.recv_timeout(PATIENCE).unwrap().trim(),
            "locked",
            "{program} took the lock"
        );
        Self { child, input }
    }

    /// Feeds `end` (commit and quit) and waits for the process to end.
    fn release(self, end: &str) {
        let Self { mut child, mut input } = self;
        input.write_all(end.as_bytes()).unwrap();
        drop(input);
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            assert!(started.elapsed() < PATIENCE, "the lock holder did not end");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn samples_refused_while_the_store_is_locked_are_kept_and_stored_after() {
    // Both backends at once: the run is mostly waiting.
    std::thread::scope(|s| {
        let runs: Vec<_> = Project::each_backend()
            .into_iter()
            .map(|p| s.spawn(move || refused_on(&p)))
            .collect();
        for r in runs {
            r.join().unwrap();
        }
    });
}

fn refused_on(p: &Project) {
    let target = common::free_port();
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
    let _server = HttpServer::start(p, target);
    // PostgreSQL waits for a lock as long as `statement_timeout` allows
    // (30 s by default): 3 s here, set in the store's URL as an operator would.
    let store = match &p.backend {
        Backend::Sqlite => None,
        Backend::Postgres(db) => Some(format!("{}?options=-c%20statement_timeout%3D3s", db.url())),
    };
    let mut args = Vec::new();
    if let Some(url) = &store {
        args.extend(["--store", url.as_str()]);
    }
    args.extend(["serve", "--listen", "127.0.0.1:0"]);
    let mut serve = Serve::start(p, &args);
    assert!(serve.line().starts_with("serving on http://"));
    let counts = "SELECT COUNT(*) FROM (SELECT monitor_id FROM samples GROUP BY 1 HAVING COUNT(*) >= 2) x";
    wait_for("two samples of each monitor", || (count(p, counts) == 2).then_some(()));

    // Another process takes the write lock and keeps it for longer than
    // the store waits.
    let (locker, held, end) = match &p.backend {
        Backend::Sqlite => (
            Locker::hold(
                "sqlite3",
                &[p.sqlite_path().to_str().unwrap()],
                ".timeout 10000\nBEGIN EXCLUSIVE;\nSELECT 'locked';\n",
            ),
            Duration::from_secs(15),
            "COMMIT;\n.quit\n",
        ),
        Backend::Postgres(db) => (
            Locker::hold(
                "psql",
                &[&db.url(), "-qtA", "-v", "ON_ERROR_STOP=1"],
                "BEGIN;\nLOCK TABLE samples IN EXCLUSIVE MODE;\nSELECT 'locked';\n",
            ),
            Duration::from_secs(10),
            "COMMIT;\n\\q\n",
        ),
    };
    let locked_at = now_ms();
    let stored_before = count(p, "SELECT COUNT(*) FROM samples");
    std::thread::sleep(held);
    // Nothing got in meanwhile (reads go on).
    assert_eq!(count(p, "SELECT COUNT(*) FROM samples"), stored_before);
    locker.release(end);
    let released_at = now_ms();

    // The held-back samples arrive, and probing goes on.
    let after = format!("SELECT COUNT(*) FROM samples WHERE slot > {}", released_at + 2_000);
    wait_for("samples probed after the release", || {
        (count(p, &after) >= 2).then_some(())
    });
    let (status, stderr) = serve.terminate();
    assert_eq!(status.code(), Some(0), "{stderr}");

    // Reported: what failed, in which store, and that nothing is given up.
    let refused =
        regex::Regex::new(r"cannot record \d+ samples? in the store (.+?); they are kept and retried: (.+)").unwrap();
    let c = refused
        .captures(&stderr)
        .unwrap_or_else(|| panic!("no report of the refused write in:\n{stderr}"));
    match &p.backend {
        Backend::Sqlite => {
            assert!(c[1].ends_with("rollway.db"), "{stderr}");
            let busy = format!("the store {} stayed locked by another process for 10s", &c[1]);
            assert!(c[2].starts_with(&busy), "{stderr}");
        }
        Backend::Postgres(db) => {
            assert!(c[1].contains(&db.name), "{stderr}");
            assert!(c[2].contains("statement timeout"), "{stderr}");
        }
    }
    // And that it is over: the refused batch is in.
    let resumed = format!("the store {} takes samples again: the refused ones are recorded", &c[1]);
    assert!(stderr.contains(&resumed), "{stderr}");
    let stop = regex::Regex::new(r"stopped: (\d+) probes started, (\d+) samples recorded, 0 lost")
        .unwrap()
        .captures(&stderr)
        .unwrap_or_else(|| panic!("no stop line saying 0 lost in:\n{stderr}"));
    let (probes, recorded): (u64, u64) = (stop[1].parse().unwrap(), stop[2].parse().unwrap());

    // Every probe started is stored, once; each monitor's slots one second
    // apart with no hole, across the whole run and through the lock.
    let stored = count(p, "SELECT COUNT(*) FROM samples");
    assert_eq!((probes, recorded), (stored, stored), "{stderr}");
    for monitor in ["web", "sick"] {
        let slots: Vec<i64> = stored_samples(p, monitor).iter().map(|s| s.slot).collect();
        let holes: Vec<(i64, i64)> = slots
            .windows(2)
            .filter(|w| w[1] - w[0] != 1_000)
            .map(|w| (w[0], w[1]))
            .collect();
        assert_eq!(holes, [], "{} {monitor}: slots not one second apart", p.backend.name());
        let during = slots.iter().filter(|&&s| s > locked_at && s < released_at).count() as i64;
        let span = (released_at - locked_at) / 1_000;
        assert!(
            during >= span - 1,
            "{} {monitor}: {during} slots stored of the {span} s the lock lasted",
            p.backend.name()
        );
    }
}
