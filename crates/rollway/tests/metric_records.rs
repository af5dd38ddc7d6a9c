//! Seed 003 Monitoring Data records through the real binary: samples
//! pushed with explicit times (`rollway monitor push`), then `rollway
//! metrics ENV --json` checked record by record against values computed
//! here from the samples (failed checks in a row, the 5-minute average,
//! each UTC hour's error rate, the month's uptime by OPERATIONS.md's
//! downtime rule), on SQLite and PostgreSQL; `--type` filters; bad input
//! exits 2; the human table of a calm environment as a snapshot (times
//! redacted); and `rollway serve`'s /metrics carrying the month-to-date
//! uptime ratio and downtime from its first rollup.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read as _;
use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Backend, Project, Run};
use rollway_model::Timestamp;
use rollway_model::calendar::Month;
use serde_json::{Value, json};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
/// How long a wait here may take before the test gives up.
const PATIENCE: Duration = Duration::from_secs(60);

const CONFIG: &str = r#"project = "p"

[environments.prod]
kind = "staging"
uptime_target = 99.0

[environments.calm]
kind = "staging"

[monitors.web]
environment = "prod"
kind = "push"
interval = "1m"

[monitors.api]
environment = "prod"
kind = "push"
interval = "1m"
retries = 2

[monitors.calm-web]
environment = "calm"
kind = "push"
interval = "1m"
"#;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The start of the current minute, at least 30 s before it ends (so the
/// commands run next see the same minute).
fn this_minute() -> i64 {
    let mut now = now_ms();
    if now % MIN > 30_000 {
        std::thread::sleep(Duration::from_millis((MIN - now % MIN + 500) as u64));
        now = now_ms();
    }
    now - now % MIN
}

/// One pushed sample: its time, outcome, HTTP status and latency.
#[derive(Clone, Copy)]
struct S {
    t: i64,
    outcome: &'static str,
    status: Option<u16>,
    latency: Option<u64>,
}

fn ok(t: i64, latency: u64) -> S {
    S {
        t,
        outcome: "ok",
        status: Some(200),
        latency: Some(latency),
    }
}

fn err(t: i64) -> S {
    S {
        t,
        outcome: "error",
        status: Some(503),
        latency: Some(30),
    }
}

fn down(t: i64) -> S {
    S {
        t,
        outcome: "unavailable",
        status: None,
        latency: None,
    }
}

fn push(p: &Project, monitor: &str, samples: &[S]) {
    let text: String = samples
        .iter()
        .map(|s| {
            let mut o = json!({"time": s.t, "outcome": s.outcome});
            if let Some(st) = s.status {
                o["status"] = st.into();
            }
            if let Some(l) = s.latency {
                o["latency_ms"] = l.into();
            }
            format!("{o}\n")
        })
        .collect();
    p.run_with_stdin(&["monitor", "push", monitor, "--json"], &text).ok();
}

/// A record as `metrics --json` shows it, without its generated id.
fn record(env: &str, source: &str, kind: &str, value: f64, thresholds: (f64, f64), window: (i64, i64)) -> Value {
    let (unit, higher_is_worse) = match kind {
        "health_check" => ("count", true),
        "performance" => ("ms", true),
        _ => ("%", kind == "error_rate"),
    };
    let (w, c) = thresholds;
    let status = if higher_is_worse {
        if value >= c {
            "critical"
        } else if value >= w {
            "warning"
        } else {
            "healthy"
        }
    } else if value < c {
        "critical"
    } else if value < w {
        "warning"
    } else {
        "healthy"
    };
    json!({
        "environment": env, "metric_type": kind, "metric_value": value, "unit": unit,
        "threshold_warning": w, "threshold_critical": c, "status": status,
        "timestamp": window.1, "source": source, "window_start": window.0,
    })
}

/// The answer without the generated ids (each checked to be a UUID).
fn without_ids(v: Value) -> Vec<Value> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut r = r.clone();
            let id = r.as_object_mut().unwrap().remove("metric_id").unwrap();
            assert_eq!(id.as_str().unwrap().len(), 36, "{id}");
            r
        })
        .collect()
}

/// Error rate in percent of the samples in `[from, to)`, if any.
fn error_rate(samples: &[S], from: i64, to: i64) -> Option<f64> {
    let inside: Vec<&S> = samples.iter().filter(|s| (from..to).contains(&s.t)).collect();
    let bad = inside.iter().filter(|s| s.outcome != "ok").count();
    (!inside.is_empty()).then(|| bad as f64 / inside.len() as f64 * 100.0)
}

/// Average latency of the samples in `[from, to)` that have one.
fn average(samples: &[S], from: i64, to: i64) -> Option<f64> {
    let l: Vec<u64> = samples
        .iter()
        .filter(|s| (from..to).contains(&s.t))
        .filter_map(|s| s.latency)
        .collect();
    (!l.is_empty()).then(|| l.iter().sum::<u64>() as f64 / l.len() as f64)
}

/// `uptime_percent` as `rollway uptime` rounds it: 4 decimals of a percent.
fn percent(down_ms: i64, observed_ms: i64) -> f64 {
    ((1.0 - down_ms as f64 / observed_ms as f64) * 1_000_000.0).round() / 10_000.0
}

/// The part of the spans that lies in `[from, to)`, in ms.
fn within(spans: &[(i64, i64)], from: i64, to: i64) -> i64 {
    spans.iter().map(|&(a, b)| (b.min(to) - a.max(from)).max(0)).sum()
}

fn month_start(t: i64) -> i64 {
    Month::of(Timestamp::from_millis(t), &jiff::tz::TimeZone::UTC)
        .span(&jiff::tz::TimeZone::UTC)
        .start
        .as_millis()
}

/// Each UTC hour's record of `samples`: the hour before `at`'s, whole,
/// and `at`'s so far (what a refresh at `at` writes), newest first.
fn hours(env: &str, source: &str, samples: &[S], at: i64) -> Vec<Value> {
    let hour = at - at.rem_euclid(HOUR);
    [(hour, at), (hour - HOUR, hour)]
        .into_iter()
        .filter(|(a, b)| b > a)
        .filter_map(|(a, b)| {
            error_rate(samples, a, b).map(|r| record(env, source, "error_rate", r, (1.0, 5.0), (a, b)))
        })
        .collect()
}

#[test]
fn records_hold_the_seed_003_numbers_of_the_pushed_samples() {
    for p in Project::each_backend() {
        p.write("rollway.toml", CONFIG);
        let at = this_minute();
        let first = at - 20 * MIN;
        // web: one sample a minute from at − 20 m to at − 1 m; unavailable
        // at − 15, −14, −13 m (one run to the ok at −12 m: 180 s > 30 s,
        // downtime); 503 at −8 and −7 m (two error minutes in a row: 120 s
        // of downtime); else ok, 1000 + 100·k ms (k minutes before at).
        let web: Vec<S> = (1..=20)
            .rev()
            .map(|k| {
                let t = at - k * MIN;
                match k {
                    13..=15 => down(t),
                    7 | 8 => err(t),
                    _ => ok(t, 1000 + 100 * k as u64),
                }
            })
            .collect();
        // api (retries 2): ok at 50 ms from at − 10 m, the last two unavailable.
        let api: Vec<S> = (1..=10)
            .rev()
            .map(|k| {
                if k <= 2 {
                    down(at - k * MIN)
                } else {
                    ok(at - k * MIN, 50)
                }
            })
            .collect();
        push(&p, "web", &web);
        push(&p, "api", &api);
        let before = now_ms();
        let got = without_ids(p.run(&["metrics", "prod", "--json"]).ok().json());
        let after = now_ms();

        // The uptime records stand at the command's now, within [before, after].
        let uptime_at = |source: &str| -> i64 {
            let r = got
                .iter()
                .find(|r| r["metric_type"] == "uptime" && r["source"] == source)
                .unwrap_or_else(|| panic!("no uptime record of {source}: {got:#?}"));
            let t = r["timestamp"].as_i64().unwrap();
            assert!((before..=after).contains(&t), "{t} outside [{before}, {after}]");
            t
        };
        let month = month_start(at);
        // Uptime = 1 − downtime / observed: observed from the first sample
        // (earlier this month is no data) to now (the last sample speaks
        // for 1 m + 1 m grace, past now); api's unavailable run lasts to
        // the end of the period.
        let uptime = |source: &str, first: i64, downtime: &[(i64, i64)]| {
            let now = uptime_at(source);
            let start = first.max(month);
            let value = percent(within(downtime, start, now), now - start);
            record("prod", source, "uptime", value, (99.0, 98.0), (month, now))
        };
        let web_down = [(at - 15 * MIN, at - 12 * MIN), (at - 8 * MIN, at - 6 * MIN)];
        let api_down = [(at - 2 * MIN, i64::MAX)];
        let five = (at - 5 * MIN, at);
        let mut want = vec![
            // Failed checks in a row up to the latest sample: api's last two.
            record("prod", "api", "health_check", 2.0, (1.0, 2.0), (at - MIN, at - MIN)),
            record("prod", "web", "health_check", 0.0, (1.0, 3.0), (at - MIN, at - MIN)),
            record(
                "prod",
                "api",
                "performance",
                average(&api, five.0, five.1).unwrap(),
                (1000.0, 2000.0),
                five,
            ),
            record(
                "prod",
                "web",
                "performance",
                average(&web, five.0, five.1).unwrap(),
                (1000.0, 2000.0),
                five,
            ),
        ];
        want.extend(hours("prod", "api", &api, at));
        want.extend(hours("prod", "web", &web, at));
        want.push(uptime("api", at - 10 * MIN, &api_down));
        want.push(uptime("web", first, &web_down));
        assert_eq!(got, want, "{}", p.backend.name());
        // The values as the seed's statuses put them: web averages 1300 ms
        // over the last 5 minutes (warning), api is down (critical).
        assert_eq!(want[3]["metric_value"], 1300.0);
        assert_eq!(
            (want[0]["status"].as_str(), want[3]["status"].as_str()),
            (Some("critical"), Some("warning"))
        );

        // Asked again, the rolling records are replaced and the hours and
        // month updated in place: the same ids, no new rows.
        let ids = |v: Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|r| r["metric_id"].as_str().unwrap().to_owned())
                .collect()
        };
        let first_ids = ids(p.run(&["metrics", "prod", "--json"]).ok().json());
        let again = ids(p.run(&["metrics", "prod", "--json"]).ok().json());
        assert_eq!(first_ids, again);

        // One type.
        let rates = without_ids(
            p.run(&["metrics", "prod", "--type", "error_rate", "--json"])
                .ok()
                .json(),
        );
        let mut want_rates = hours("prod", "api", &api, at);
        want_rates.extend(hours("prod", "web", &web, at));
        assert_eq!(rates, want_rates);
    }
}

#[test]
fn bad_input_is_refused_with_what_to_do() {
    let p = Project::new(Backend::Sqlite);
    p.write("rollway.toml", CONFIG);
    let r = p.run(&["metrics", "nowhere"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("no environment nowhere in") && r.stderr.contains("the environments are calm, prod"),
        "{}",
        r.stderr
    );
    let r = p.run(&["metrics", "prod", "--type", "latency"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("[possible values: health_check, performance, error_rate, uptime]"),
        "{}",
        r.stderr
    );
    // No samples yet: no records, and the table says why.
    let r = p.run(&["metrics", "calm"]).ok();
    assert_eq!(
        r.stdout.trim(),
        "no metric records in calm: its monitors have no samples yet"
    );
}

/// The human table with times redacted and padding cut to two spaces.
fn transcript(r: &Run) -> String {
    let padding = regex::Regex::new(r"(\S)  +").unwrap();
    let time = regex::Regex::new(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z").unwrap();
    let text = format!("[exit {}]\n{}{}", r.code, r.stdout, r.stderr);
    padding
        .replace_all(&time.replace_all(&text, "[time]"), "$1  ")
        .into_owned()
}

#[test]
fn the_human_table_shows_each_record_with_its_thresholds_and_status() {
    let p = Project::new(Backend::Sqlite);
    p.write("rollway.toml", CONFIG);
    let at = this_minute();
    // Five ok samples at 120 ms in the last five minutes, all in the UTC
    // hour of the last one, so exactly one hourly error rate (0 %) and a
    // month at 100 % whatever the time of the run.
    let last_hour = (at - MIN) - (at - MIN).rem_euclid(HOUR);
    let samples: Vec<S> = (1..=5)
        .rev()
        .map(|k| ok(at - k * MIN, 120))
        .filter(|s| s.t >= last_hour)
        .collect();
    push(&p, "calm-web", &samples);
    let r = p.run(&["metrics", "calm"]).ok();
    insta::assert_snapshot!(transcript(&r));
}

/// A `rollway serve` child, killed if the test ends before it does.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET /metrics` on 127.0.0.1:port, or None when nothing answers yet.
fn scrape(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
}

/// The value of the sample line `series` (name and labels as written).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn serve_exports_the_month_to_date_uptime_ratio_and_downtime() {
    let p = Project::new(Backend::Sqlite);
    p.write("rollway.toml", CONFIG);
    let at = this_minute();
    // web: ok from at − 10 m, unavailable at −6 and −5 m, ok again at −4 m:
    // 120 s of downtime.
    let web: Vec<S> = (1..=10)
        .rev()
        .map(|k| {
            if k == 5 || k == 6 {
                down(at - k * MIN)
            } else {
                ok(at - k * MIN, 40)
            }
        })
        .collect();
    push(&p, "web", &web);
    let port = common::free_port();
    let listen = format!("127.0.0.1:{port}");
    let before = now_ms();
    let child = p
        .command(&["serve", "--listen", &listen])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut serve = Serve(child);
    // serve rolls up at once and refreshes the records after it.
    let ratio_series = r#"rollway_monitor_uptime_ratio{monitor="web",environment="prod"}"#;
    let down_series = r#"rollway_monitor_downtime_seconds{monitor="web",environment="prod"}"#;
    let start = Instant::now();
    let text = loop {
        if let Some(t) = scrape(port).filter(|t| sample(t, ratio_series).is_some()) {
            break t;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "no uptime ratio in /metrics within {PATIENCE:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let after = now_ms();
    let ratio = sample(&text, ratio_series).unwrap();
    assert_eq!(sample(&text, down_series), Some(120.0), "{text}");
    // Observed from the first sample (or the month's start) to serve's now,
    // somewhere in [before, after].
    let first = (at - 10 * MIN).max(month_start(at));
    let down = within(&[(at - 6 * MIN, at - 4 * MIN)], first, after);
    let (lo, hi) = (
        percent(down, before - first) / 100.0,
        percent(down, after - first) / 100.0,
    );
    assert!((lo..=hi).contains(&ratio), "{ratio} outside [{lo}, {hi}]");
    // api and calm-web have no samples: downtime 0, no ratio.
    assert_eq!(
        sample(
            &text,
            r#"rollway_monitor_uptime_ratio{monitor="api",environment="prod"}"#
        ),
        None
    );
    assert_eq!(
        sample(
            &text,
            r#"rollway_monitor_downtime_seconds{monitor="calm-web",environment="calm"}"#
        ),
        Some(0.0)
    );
    let killed = Command::new("kill")
        .args(["-TERM", &serve.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = serve.0.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < PATIENCE, "serve did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    // serve stored the records too: web's month, read from the table
    // before any other command refreshes it, as /metrics had it (or from a
    // later tick of the same serve).
    let stored: f64 = p
        .sql("SELECT metric_value FROM metric_records WHERE source = 'web' AND metric_type = 'uptime'")
        .trim()
        .parse()
        .unwrap();
    let hi = percent(down, now_ms() - first) / 100.0;
    assert!((lo..=hi).contains(&(stored / 100.0)), "{stored} outside [{lo}, {hi}]");
    // The records serve wrote are the ones `metrics` shows (refreshed again).
    let r = p.run(&["metrics", "prod", "--type", "uptime", "--json"]).ok().json();
    assert_eq!(r.as_array().unwrap().len(), 1, "{r}");
}
