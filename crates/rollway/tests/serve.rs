//! `rollway serve` through the real binary against a real HTTP server on
//! loopback: two monitors (one answers 200, one 500) probed every second;
//! `/healthz` and `/readyz` answer, `/metrics` (parsed) shows each
//! monitor's last outcome, the store holds both monitors' samples, a second
//! `serve` on the same store exits 3 naming the first, SIGTERM stops the
//! first with exit 0 and nothing is recorded after it (nor twice); `--json`
//! answers an object; an address already taken exits 1 naming it. On
//! PostgreSQL two `serve`s run on one store, and each slot is stored once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::time::Duration;

use common::http::HttpServer;
use common::serve::{Serve, wait_for};
use common::{Backend, Project};

/// `GET path` on 127.0.0.1:port: the status and the body, or None when
/// nothing answers.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// One sample line of an OpenMetrics exposition.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses OpenMetrics text: `# TYPE`/`# HELP` lines, sample lines
/// `name{k="v",…} value`, and the closing `# EOF`. Panics on anything else,
/// so a malformed exposition fails the test.
fn parse_metrics(text: &str) -> Vec<Line> {
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.pop(), Some("# EOF"), "the exposition ends with # EOF");
    let mut typed = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for l in lines {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["gauge", "counter", "histogram"].contains(&kind), "unknown type in {l}");
            typed.insert(name.to_owned());
            continue;
        }
        if l.starts_with("# HELP ") || l.starts_with("# UNIT ") {
            continue;
        }
        assert!(!l.starts_with('#'), "unexpected comment line {l}");
        let (series, value) = l.rsplit_once(' ').unwrap();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {l}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), BTreeMap::new()),
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').unwrap_or_else(|| panic!("bad labels in {l}"));
                let labels = inner
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once("=\"").unwrap_or_else(|| panic!("bad label in {l}"));
                        (k.to_owned(), v.trim_end_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), labels)
            }
        };
        let family = ["_total", "_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
            .unwrap_or(&name);
        assert!(typed.contains(family), "{name} has no # TYPE line before it");
        out.push(Line { name, labels, value });
    }
    out
}

/// The value of the one sample of `name` with exactly `labels`.
fn value(metrics: &[Line], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
    let found: Vec<f64> = metrics
        .iter()
        .filter(|l| l.name == name && l.labels == want)
        .map(|l| l.value)
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?} appears {} times", found.len());
    found.first().copied()
}

/// Each monitor's last outcome as the metrics say: the outcome whose gauge is 1.
fn last_outcomes(metrics: &[Line]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for l in metrics.iter().filter(|l| l.name == "rollway_monitor_last_outcome") {
        if l.value == 1.0 {
            let previous = out.insert(l.labels["monitor"].clone(), l.labels["outcome"].clone());
            assert!(previous.is_none(), "two last outcomes for {:?}", l.labels);
        } else {
            assert_eq!(l.value, 0.0, "{l:?}");
        }
    }
    out
}

fn project(target: u16) -> Project {
    project_on(Backend::Sqlite, target)
}

fn project_on(backend: Backend, target: u16) -> Project {
    let p = Project::new(backend);
    p.write(
        "rollway.toml",
        &format!(
            r#"project = "watch"

[service]
start = "sleep 100"
port = 3000

[environments.staging]
kind = "staging"
hosts = ["local"]
root = ".rollway/staging"

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
    p
}

fn count(p: &Project, sql: &str) -> u64 {
    p.sql(sql).trim().parse().unwrap()
}

const SAMPLES: &str = "SELECT COUNT(*) FROM samples";

#[test]
fn serve_probes_records_exports_and_stops_gracefully() {
    let target = common::free_port();
    let p = project(target);
    let _server = HttpServer::start(&p, target);
    let port = common::free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut serve = Serve::start(&p, &["serve", "--listen", &listen]);

    assert_eq!(wait_for("/healthz", || get(port, "/healthz")), (200, "ok\n".to_owned()));
    assert_eq!(serve.line(), format!("serving on http://{listen} (2 monitors)"));
    let (status, body) = wait_for("/readyz to answer 200", || {
        get(port, "/readyz").filter(|(s, _)| *s == 200)
    });
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (
            status,
            &ready["ready"],
            &ready["scheduler"],
            &ready["store"],
            &ready["monitors"]
        ),
        (200, &true.into(), &"running".into(), &"ok".into(), &2.into()),
        "{body}"
    );

    // Both monitors probed at least twice, as the metrics say.
    let metrics = wait_for("two samples of each monitor in /metrics", || {
        let (status, text) = get(port, "/metrics")?;
        assert_eq!(status, 200);
        let m = parse_metrics(&text);
        let probes = |monitor, outcome| {
            value(
                &m,
                "rollway_probes_total",
                &[("monitor", monitor), ("outcome", outcome)],
            )
        };
        (probes("web", "ok") >= Some(2.0) && probes("sick", "error") >= Some(2.0)).then_some(m)
    });
    assert_eq!(
        last_outcomes(&metrics),
        BTreeMap::from([
            ("sick".to_owned(), "error".to_owned()),
            ("web".to_owned(), "ok".to_owned())
        ])
    );
    for (monitor, status) in [("web", 200.0), ("sick", 500.0)] {
        assert_eq!(
            value(&metrics, "rollway_monitor_last_http_status", &[("monitor", monitor)]),
            Some(status)
        );
        let seen = value(&metrics, "rollway_probe_latency_seconds_count", &[("monitor", monitor)]).unwrap();
        let inf = value(
            &metrics,
            "rollway_probe_latency_seconds_bucket",
            &[("monitor", monitor), ("le", "+Inf")],
        );
        assert_eq!(inf, Some(seen), "{monitor}: the +Inf bucket holds every latency");
    }
    // Nothing but ok on web and error on sick was seen.
    for (monitor, never) in [("web", ["error", "unavailable"]), ("sick", ["ok", "unavailable"])] {
        for outcome in never {
            assert_eq!(
                value(
                    &metrics,
                    "rollway_probes_total",
                    &[("monitor", monitor), ("outcome", outcome)]
                ),
                None
            );
        }
    }
    let lag_count = value(&metrics, "rollway_schedule_lag_seconds_count", &[]).unwrap();
    assert!(lag_count >= 4.0, "{lag_count} lags recorded");
    assert_eq!(
        value(&metrics, "rollway_schedule_lag_seconds_bucket", &[("le", "+Inf")]),
        Some(lag_count)
    );
    assert_eq!(value(&metrics, "rollway_monitors", &[]), Some(2.0));
    assert_eq!(value(&metrics, "rollway_sink_errors_total", &[]), Some(0.0));
    for reason in ["busy", "saturated", "missed"] {
        assert!(value(&metrics, "rollway_slots_skipped_total", &[("reason", reason)]).is_some());
    }

    // The store holds both monitors' samples, as probed.
    let rows = p.sql(
        "SELECT m.name, s.outcome, s.http_status, COUNT(*) FROM samples s JOIN monitors m ON m.id = s.monitor_id \
         GROUP BY 1, 2, 3 ORDER BY 1",
    );
    let groups: Vec<(String, String, String)> = rows
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            assert!(f[3].parse::<u64>().unwrap() >= 1, "{l}");
            (f[0].to_owned(), f[1].to_owned(), f[2].to_owned())
        })
        .collect();
    assert_eq!(
        groups,
        [
            ("sick".to_owned(), "error".to_owned(), "500".to_owned()),
            ("web".to_owned(), "ok".to_owned(), "200".to_owned())
        ],
        "{rows}"
    );
    assert_eq!(
        p.sql("SELECT name, kind, interval_ms, coverage_ms FROM monitors ORDER BY name"),
        "sick|http|1000|2000\nweb|http|1000|2000\n"
    );

    // A second serve on the same store refuses, naming the first.
    let second = p.run(&["serve", "--listen", "127.0.0.1:0"]);
    let db = std::path::Path::new(".").join(".rollway").join("rollway.db");
    assert_eq!(second.code, 3, "{second:?}");
    let expected = format!(
        "error: another rollway serve holds {} (pid {}: {} serve --listen {listen}): ",
        db.display(),
        serve.child.id(),
        env!("CARGO_BIN_EXE_rollway")
    );
    assert!(
        second.stderr.starts_with(&expected),
        "{}\nwanted {expected}",
        second.stderr
    );

    // SIGTERM: exit 0, every sample it took is in the store, and nothing
    // more arrives afterwards.
    let (status, stderr) = serve.terminate();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let stored = count(&p, SAMPLES);
    let recorded: u64 = regex::Regex::new(r"stopped: \d+ probes started, (\d+) samples recorded, 0 lost")
        .unwrap()
        .captures(&stderr)
        .unwrap_or_else(|| panic!("no stop line in {stderr}"))[1]
        .parse()
        .unwrap();
    assert_eq!(recorded, stored, "{stderr}");
    assert_eq!(
        std::fs::read_to_string(p.sqlite_path().with_file_name("rollway.db.serve-lock")).unwrap(),
        "",
        "the lock file is emptied on release"
    );
    // Two intervals later, still nothing new (there is nobody left to write).
    std::thread::sleep(Duration::from_millis(2_500));
    assert_eq!(count(&p, SAMPLES), stored);
    assert_eq!(
        count(
            &p,
            "SELECT COUNT(*) FROM (SELECT monitor_id, slot FROM samples GROUP BY 1, 2 HAVING COUNT(*) > 1)"
        ),
        0
    );

    // The lock is free again; --json answers one object.
    let mut json = Serve::start(&p, &["--json", "serve", "--listen", "127.0.0.1:0"]);
    let mut text = String::new();
    let answer: serde_json::Value = loop {
        text.push_str(&json.line());
        text.push('\n');
        if let Ok(v) = serde_json::from_str(&text) {
            break v;
        }
    };
    let bound: std::net::SocketAddr = answer["listen"].as_str().unwrap().parse().unwrap();
    assert_ne!(bound.port(), 0);
    assert_eq!(answer["url"], format!("http://{bound}"));
    assert_eq!(
        (&answer["monitors"], &answer["probed"]),
        (&2.into(), &2.into()),
        "{answer}"
    );
    assert_eq!(get(bound.port(), "/healthz"), Some((200, "ok\n".to_owned())));
    let (status, stderr) = json.terminate();
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[test]
fn an_address_in_use_fails_with_exit_1_naming_it() {
    let p = project(common::free_port());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let r = p.run(&["serve", "--listen", &addr.to_string()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.starts_with(&format!("error: cannot listen on {addr}: ")),
        "{}",
        r.stderr
    );
    // Nothing was left holding the store.
    assert_eq!(
        std::fs::read_to_string(p.sqlite_path().with_file_name("rollway.db.serve-lock")).unwrap(),
        ""
    );
}

#[test]
fn two_serves_run_on_one_postgresql_store_and_each_slot_is_stored_once() {
    let Some(db) = common::PgDb::create() else {
        return;
    };
    let target = common::free_port();
    let p = project_on(Backend::Postgres(db), target);
    let _server = HttpServer::start(&p, target);
    let mut a = Serve::start(&p, &["serve", "--listen", "127.0.0.1:0"]);
    assert!(a.line().starts_with("serving on http://127.0.0.1:"));
    let mut b = Serve::start(&p, &["serve", "--listen", "127.0.0.1:0"]);
    assert!(b.line().starts_with("serving on http://127.0.0.1:"));
    // Both probe every monitor (no shard leases yet); the store keeps each
    // (monitor, slot) once, so the second instance's samples are duplicates.
    wait_for("three samples of each monitor", || {
        let rows = p.sql("SELECT COUNT(*) FROM samples GROUP BY monitor_id HAVING COUNT(*) >= 3");
        (rows.lines().count() == 2).then_some(())
    });
    for s in [&mut a, &mut b] {
        let (status, stderr) = s.terminate();
        assert_eq!(status.code(), Some(0), "{stderr}");
        assert!(stderr.contains(", 0 lost"), "{stderr}");
    }
    assert_eq!(
        p.sql("SELECT COUNT(*) FROM (SELECT monitor_id, slot FROM samples GROUP BY 1, 2 HAVING COUNT(*) > 1) d"),
        "0\n"
    );
    assert_eq!(
        p.sql("SELECT DISTINCT m.name, s.outcome FROM samples s JOIN monitors m ON m.id = s.monitor_id ORDER BY 1"),
        "sick|error\nweb|ok\n"
    );
}

/// OPERATIONS.md: `serve` finishes the stability windows a deployer left
/// (`deploy --detach`): a good release is watched to `succeeded`, a sick
/// one to its automatic rollback — nobody runs `rollway verify`.
#[test]
fn serve_watches_detached_windows_to_their_verdict() {
    use common::deploy::{Config, Staging, get as app_get, status};
    let s = Staging::new();
    let port = common::free_port();
    let mut c = Config::local("windows", port, &s.path().join("host0"));
    c.health.window = "3s";
    s.configure(&c);

    s.mode("v1");
    let r = s.run(&["deploy", "staging", "--detach"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(status(&s.history()[0]), "verifying");

    let listen = common::free_port();
    let mut serve = Serve::start(&s.project, &["serve", "--listen", &format!("127.0.0.1:{listen}")]);
    assert!(serve.line().starts_with("serving on http://"), "serve started");
    wait_for("v1's window to be watched to success", || {
        (status(&s.history()[0]) == "succeeded").then_some(())
    });

    // A release that turns sick in its window: serve fails it, and the
    // host returns to v1.
    s.mode("v2 sick");
    // (serve's verify gives the lease back just after the verdict is written)
    let r = s.run(&["deploy", "staging", "--detach", "--lock-wait", "10s"]);
    assert_eq!(r.code, 0, "{r:#?}");
    wait_for("v2's window to fail and roll back", || {
        let h = s.history();
        (status(&h[0]) == "rolled_back").then_some(())
    });
    assert_eq!(app_get(port, "/").map(|(_, b)| b), Some("hello from v1\n".to_owned()));

    let (exit, stderr) = serve.terminate();
    assert!(exit.success(), "{exit:?}: {stderr}");
    let notes: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("staging: "))
        .map(|l| {
            if l.contains("succeeded") {
                "staging: succeeded"
            } else if l.contains("failed") {
                "staging: failed"
            } else {
                l
            }
        })
        .collect();
    assert_eq!(
        notes,
        [
            "staging: watching its detached stability window",
            "staging: succeeded",
            "staging: watching its detached stability window",
            "staging: failed",
        ],
        "{stderr}"
    );
}

/// `rollway monitor pause|resume` while `serve` runs: the scheduler follows
/// the store within a poll, a paused monitor gets no samples (no data, not
/// downtime), the other goes on, and a resumed one is probed again.
#[test]
fn a_paused_monitor_is_not_probed_until_resumed() {
    let target = common::free_port();
    let p = project(target);
    let _server = HttpServer::start(&p, target);
    let port = common::free_port();
    let mut serve = Serve::start(&p, &["serve", "--listen", &format!("127.0.0.1:{port}")]);
    assert!(serve.line().starts_with("serving on"));
    let of = |m: &str| {
        count(
            &p,
            &format!("SELECT COUNT(*) FROM samples s JOIN monitors m ON m.id = s.monitor_id WHERE m.name = '{m}'"),
        )
    };
    wait_for("samples of web", || (of("web") >= 1).then_some(()));

    let r = p.run(&["--json", "monitor", "pause", "web"]);
    assert_eq!((r.code, r.json()["paused"].as_bool()), (0, Some(true)), "{r:#?}");
    let paused_gauge = || {
        let (_, text) = get(port, "/metrics")?;
        value(&parse_metrics(&text), "rollway_monitors_paused", &[])
    };
    wait_for("serve to pause web", || (paused_gauge() == Some(1.0)).then_some(()));
    // Anything in flight when it paused lands within a probe's timeout.
    std::thread::sleep(Duration::from_millis(1500));
    let (web, sick) = (of("web"), of("sick"));
    wait_for("sick to go on being probed", || (of("sick") >= sick + 2).then_some(()));
    assert_eq!(of("web"), web, "a paused monitor got samples");
    let listed = p.run(&["--json", "monitor", "list"]).ok().json();
    let states: Vec<(&str, bool)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m["paused"].as_bool().unwrap()))
        .collect();
    assert_eq!(states, [("sick", false), ("web", true)]);

    p.run(&["monitor", "resume", "web"]).ok();
    wait_for("web to be probed again", || (of("web") > web).then_some(()));
    let (exit, stderr) = serve.terminate();
    assert!(exit.success(), "{stderr}");
}

/// OPERATIONS.md: `serve` killed with SIGKILL and started again resumes the
/// schedule; the slots it missed are not made up, and the gap is no data
/// in the month's numbers — never up, never down.
#[test]
fn after_a_kill_the_gap_is_no_data_never_up_or_down() {
    let target = common::free_port();
    let p = project(target);
    let _server = HttpServer::start(&p, target);
    let slots = || -> Vec<i64> {
        p.sql(
            "SELECT s.slot FROM samples s JOIN monitors m ON m.id = s.monitor_id WHERE m.name = 'web' ORDER BY s.slot",
        )
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
    };
    let start = |p: &Project| {
        let port = common::free_port();
        let serve = Serve::start(p, &["serve", "--listen", &format!("127.0.0.1:{port}")]);
        assert!(serve.line().starts_with("serving on"));
        serve
    };
    let mut first = start(&p);
    wait_for("three samples of web", || (slots().len() >= 3).then_some(()));
    first.child.kill().unwrap(); // SIGKILL: no graceful stop
    first.child.wait().unwrap();
    let before = slots();
    std::thread::sleep(Duration::from_secs(4));

    let mut second = start(&p);
    let resumed = wait_for("web probed again", || {
        let now = slots();
        (now.len() >= before.len() + 2).then_some(now)
    });
    let (exit, stderr) = second.terminate();
    assert!(exit.success(), "{stderr}");
    let all = slots();
    let last_before = *before.last().unwrap();
    let first_after = *all.iter().find(|s| **s > last_before).unwrap();
    assert!(
        first_after - last_before >= 4_000,
        "the missed slots were made up: {last_before} then {first_after} ({resumed:?})"
    );

    // The month's terms: coverage is two intervals (2 s) per sample, so the
    // gap beyond it, the time before the first sample and after the last
    // are no data; nothing is down (every answer was 200).
    let answer = p.run(&["--json", "uptime", "web"]).ok().json();
    let web = &answer[0];
    let (start_ms, end_ms) = (
        web["period_start"].as_i64().unwrap(),
        web["period_end"].as_i64().unwrap(),
    );
    let coverage = 2_000;
    let mut no_data = all[0] - start_ms;
    for w in all.windows(2) {
        no_data += (w[1] - w[0] - coverage).max(0);
    }
    no_data += (end_ms - all[all.len() - 1] - coverage).max(0);
    assert_eq!(
        (
            web["downtime_seconds"].as_f64(),
            web["no_data_seconds"].as_f64(),
            web["samples"].as_u64()
        ),
        (Some(0.0), Some(no_data as f64 / 1000.0), Some(all.len() as u64)),
        "{web:#}"
    );
    assert!(no_data >= first_after - last_before - coverage, "the gap is in no data");
}
