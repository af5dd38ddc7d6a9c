//! `rollway monitor push`, `maintenance`, `uptime` and `slo` through the
//! real binary: a month of pushed samples (one a minute) with a 10-minute
//! outage, a 3-minute 5xx run, a 6-hour gap and a maintenance window;
//! the whole `uptime --json` answer computed by hand from OPERATIONS.md's
//! definition, then windows over the outage and the 5xx run (a one-off
//! and a cron one) bring the month back to 100 %; a month with no data, a
//! month in Berlin whose boundary is an hour before UTC's, bad input (exit
//! 2), and `slo` (JSON and table) and `monitor show` over samples pushed
//! up to now.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::uptime::{month_answer, percent};
use common::{Backend, Project, Run};
use serde_json::{Value, json};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// 2026-11-01T00:00:00Z.
const NOV: i64 = 1_793_491_200_000;

const CONFIG: &str = r#"project = "p"

[environments.prod]
kind = "staging"

[environments.eu]
kind = "staging"
timezone = "Europe/Berlin"

[environments.slo]
kind = "staging"
uptime_target = 99.5

[monitors.web]
environment = "prod"
kind = "push"
interval = "1m"

[monitors.eu]
environment = "eu"
kind = "push"
interval = "1m"

[monitors.api]
environment = "slo"
kind = "push"
interval = "1m"
"#;

/// One JSON line a sample: `o` ok (200, 20 ms), `e` 503 (30 ms), `u` unavailable.
fn line(t: i64, kind: char) -> String {
    match kind {
        'o' => format!(r#"{{"time": {t}, "outcome": "ok", "status": 200, "latency_ms": 20}}"#),
        'e' => format!(r#"{{"time": {t}, "outcome": "error", "status": 503, "latency_ms": 30}}"#),
        _ => format!(r#"{{"time": {t}, "outcome": "unavailable"}}"#),
    }
}

fn push(p: &Project, monitor: &str, lines: &[String]) -> Run {
    p.run_with_stdin(&["monitor", "push", monitor, "--json"], &(lines.join("\n") + "\n"))
}

fn uptime(p: &Project, args: &[&str]) -> Value {
    let mut all = vec!["uptime", "--json"];
    all.extend(args);
    p.run(&all).ok().json()
}

/// The human table with its padding cut to two spaces.
fn transcript(r: &Run) -> String {
    let padding = regex::Regex::new(r"(\S)  +").unwrap();
    padding
        .replace_all(&format!("[exit {}]\n{}{}", r.code, r.stdout, r.stderr), "$1  ")
        .into_owned()
}

#[test]
fn a_pushed_month_gives_the_seed_003_numbers_exactly_and_windows_take_outages_out() {
    for p in Project::each_backend() {
        p.write("rollway.toml", CONFIG);
        // November 2026 (30 days), one sample a minute at :00, except:
        // - Nov 10 12:00–12:09 unavailable (10 samples), ok again at 12:10:
        //   one run from 12:00 to 12:10 = 600 s, longer than 30 s: downtime;
        // - Nov 15 08:00–08:02 answered 503: three error minutes in a row
        //   (more than one): 180 s of downtime;
        // - nothing Nov 20 00:00–05:59: the 23:59 sample speaks for its
        //   interval plus grace (1 m + 1 m), to 00:01, so no data is 6 h − 60 s
        //   = 21,540 s.
        let outage = NOV + 9 * DAY + 12 * HOUR;
        let errors = NOV + 14 * DAY + 8 * HOUR;
        let gap = NOV + 19 * DAY;
        let mut lines = Vec::new();
        let mut samples = 0u64;
        for i in 0..(30 * DAY / MIN) {
            let t = NOV + i * MIN;
            let kind = if (outage..outage + 10 * MIN).contains(&t) {
                'u'
            } else if (errors..errors + 3 * MIN).contains(&t) {
                'e'
            } else if (gap..gap + 6 * HOUR).contains(&t) {
                continue;
            } else {
                'o'
            };
            samples += 1;
            lines.push(line(t, kind));
        }
        let r = push(&p, "web", &lines).ok().json();
        assert_eq!(
            r,
            json!({"monitor": "web", "lines": samples, "inserted": samples, "duplicates": 0,
                   "first": NOV, "last": NOV + 30 * DAY - MIN})
        );
        // Pushed again: every slot is already there.
        assert_eq!(push(&p, "web", &lines[..5]).ok().json()["duplicates"], 5);

        // A window on the monitor with nothing down in it: Nov 25 10:00–10:30,
        // 1,800 s of maintenance out of both terms.
        p.run(&[
            "maintenance",
            "add",
            "--monitor",
            "web",
            "--start",
            "2026-11-25T10:00:00Z",
            "--end",
            "2026-11-25T10:30:00Z",
            "--note",
            "kernel update",
        ])
        .ok();
        let month = (NOV, NOV + 30 * DAY);
        // downtime 600 + 180 = 780 s; uptime 1 − 780 / (2,592,000 − 1,800 −
        // 21,540) = 1 − 780 / 2,568,660 = 99.9696 %.
        assert_eq!(
            uptime(&p, &["web", "--month", "2026-11"]),
            json!([month_answer(
                "web",
                "prod",
                "UTC",
                "2026-11",
                month,
                (780_000, 1_800_000, 21_540_000),
                samples
            )])
        );
        assert_eq!(percent(780_000, 2_568_660_000), 99.9696);
        let human = p.run(&["uptime", "web", "--month", "2026-11"]);
        assert_eq!(
            transcript(&human),
            "[exit 0]\n\
             MONITOR  MONTH  UPTIME  TARGET  VERDICT  DOWNTIME  MAINTENANCE  NO DATA\n\
             web  2026-11  99.9696 %  99.50 %  ok  780 s (13.00 min)  1800 s  21540 s\n\
             months in UTC; uptime = 1 − downtime / (period − maintenance − no data)\n"
        );

        // A window over the outage (11:55–12:15, environment-wide) and a cron
        // one over the 5xx run (08:00 on November 15th, 5 minutes): no
        // downtime left, 100 %; maintenance 1,800 + 1,200 + 300 s.
        p.run(&[
            "maintenance",
            "add",
            "prod",
            "--start",
            "2026-11-10T11:55:00Z",
            "--end",
            "2026-11-10T12:15:00Z",
        ])
        .ok();
        let cron = p
            .run(&[
                "maintenance",
                "add",
                "prod",
                "--cron",
                "0 8 15 11 *",
                "--duration",
                "5m",
                "--json",
            ])
            .ok()
            .json();
        assert_eq!(
            uptime(&p, &["prod", "--month", "2026-11"]),
            json!([month_answer(
                "web",
                "prod",
                "UTC",
                "2026-11",
                month,
                (0, 3_300_000, 21_540_000),
                samples
            )])
        );
        let list = p.run(&["maintenance", "list", "prod", "--json"]).ok().json();
        assert_eq!(list.as_array().unwrap().len(), 3, "{list}");
        assert_eq!(
            list[2]["schedule"],
            json!({"kind": "cron", "expression": "0 8 15 11 *", "duration_ms": 300_000})
        );
        // Removing the cron window brings the 5xx run back (an event each).
        let id = cron["id"].as_i64().unwrap().to_string();
        p.run(&["maintenance", "rm", &id]).ok();
        assert_eq!(p.run(&["maintenance", "rm", &id]).code, 2);
        assert_eq!(
            uptime(&p, &["web", "--month", "2026-11"])[0]["downtime_seconds"],
            json!(180.0)
        );
        let events = p.run(&["events", "list", "--json"]).ok().json();
        let changed = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "maintenance-changed")
            .count();
        assert_eq!(changed, 4, "{events}");

        // A month with no data at all: all of it no data, no uptime.
        let r = uptime(&p, &["web", "--month", "2026-09"]);
        assert_eq!(r[0]["no_data_seconds"], json!(30.0 * 86_400.0));
        assert_eq!(
            (r[0]["uptime_percent"].clone(), r[0]["verdict"].clone()),
            (Value::Null, json!("no_data"))
        );

        // Bad input: exit 2 with a message that says what to write.
        let bad = p.run(&["uptime", "--month", "2026-13"]);
        assert_eq!(bad.code, 2, "{bad:?}");
        assert!(
            bad.stderr
                .contains("--month: '2026-13' has month 13: a month is 01 to 12"),
            "{bad:?}"
        );
        let bad = p.run(&["uptime", "nope"]);
        assert_eq!(bad.code, 2, "{bad:?}");
        assert!(
            bad.stderr.contains("no environment or monitor named nope: the environments are eu, prod, slo; the monitors are api, eu, web"),
            "{bad:?}"
        );
        let bad = p.run(&[
            "maintenance",
            "add",
            "prod",
            "--start",
            "2026-11-01T00:00:30Z",
            "--end",
            "2026-11-01T01:00:00Z",
        ]);
        assert_eq!(bad.code, 2, "{bad:?}");
        assert!(bad.stderr.contains("is not on a whole minute"), "{bad:?}");
        let bad = p.run_with_stdin(&["monitor", "push", "web"], "{\"time\": 1, \"outcome\": \"fine\"}\n");
        assert_eq!(bad.code, 2, "{bad:?}");
        assert!(bad.stderr.contains("stdin line 1: unknown variant `fine`"), "{bad:?}");
    }
}

#[test]
fn a_month_is_cut_at_midnight_in_the_environment_time_zone() {
    let p = Project::new(Backend::Sqlite);
    p.write("rollway.toml", CONFIG);
    // Berlin is UTC+1 in autumn: November begins at 2026-10-31T23:00Z.
    // Samples each minute 22:00–23:59Z on October 31st; unavailable
    // 22:40–22:49Z (October in Berlin: 23:40 local) and 23:10–23:14Z
    // (November: 00:10 local). In UTC both are October.
    let start = NOV - 2 * HOUR;
    let lines: Vec<String> = (0..120)
        .map(|i| {
            let t = start + i * MIN;
            let down =
                (start + 40 * MIN..start + 50 * MIN).contains(&t) || (start + 70 * MIN..start + 75 * MIN).contains(&t);
            line(t, if down { 'u' } else { 'o' })
        })
        .collect();
    push(&p, "eu", &lines).ok();
    let nov = uptime(&p, &["eu", "--month", "2026-11"]);
    let oct = uptime(&p, &["eu", "--month", "2026-10"]);
    // November in Berlin: 2026-10-31T23:00Z to 2026-11-30T23:00Z; observed
    // 23:00Z to 00:01Z (the last sample plus 2 m): 61 m; down 300 s.
    let nov_span = (NOV - HOUR, NOV + 30 * DAY - HOUR);
    let nov_nd = (nov_span.1 - nov_span.0) - 61 * MIN;
    assert_eq!(
        nov,
        json!([month_answer(
            "eu",
            "eu",
            "Europe/Berlin",
            "2026-11",
            nov_span,
            (300_000, 0, nov_nd),
            60
        )])
    );
    // October in Berlin: 2026-09-30T22:00Z (CEST) to 2026-10-31T23:00Z, 31
    // days and the hour the clocks went back; observed 22:00Z–23:00Z.
    let oct_span = (NOV - 31 * DAY - 2 * HOUR, NOV - HOUR);
    let oct_nd = (oct_span.1 - oct_span.0) - HOUR;
    assert_eq!(
        oct,
        json!([month_answer(
            "eu",
            "eu",
            "Europe/Berlin",
            "2026-10",
            oct_span,
            (600_000, 0, oct_nd),
            60
        )])
    );
}

#[test]
fn slo_reports_the_budget_and_burn_rates_up_to_now() {
    let p = Project::new(Backend::Sqlite);
    p.write("rollway.toml", CONFIG);
    // The windows end at the start of the current minute: stay inside one.
    let mut now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    if now % MIN > 40_000 {
        std::thread::sleep(std::time::Duration::from_millis((MIN - now % MIN + 500) as u64));
        now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
    }
    let at = now - now % MIN;
    // Three days of samples, one a minute, to the minute before `at`; the
    // last 10 unavailable: one run from at − 10 m to the window's end, 600 s.
    let lines: Vec<String> = (1..=3 * 24 * 60)
        .rev()
        .map(|k| line(at - k * MIN, if k <= 10 { 'u' } else { 'o' }))
        .collect();
    push(&p, "api", &lines).ok();
    let r = p.run(&["slo", "slo", "--json"]).ok().json();
    let target: f64 = 99.5 / 100.0;
    let burn = |w: i64, down: i64| {
        json!({"window_ms": w, "downtime_ms": down, "observed_ms": w,
               "burn_rate": down as f64 / w as f64 / (1.0 - target)})
    };
    // Budget 0.5 % over 30 days, of which 3 days observed: 1,296 s allowed,
    // 600 s used (46.3 %). Burns: 5 m 300/300 s → 200; 30 m 600/1,800 →
    // 66.7; 1 h → 33.3; 6 h → 5.6; 3 d → 0.46. The fast page fires (1 h and
    // 5 m over 14.4); 6 h is under 6 and 3 d under 1.
    let windows = [
        burn(5 * MIN, 5 * MIN),
        burn(30 * MIN, 10 * MIN),
        burn(HOUR, 10 * MIN),
        burn(6 * HOUR, 10 * MIN),
        burn(3 * DAY, 10 * MIN),
    ];
    let allowed = (1.0 - target) * (3 * DAY) as f64;
    let used = 600_000.0 / allowed;
    assert_eq!(
        r,
        json!([{
            "monitor": "api",
            "target_percent": 99.5,
            "at": at,
            "slo_window_days": 30,
            "budget": {"budget": 1.0 - target, "allowed_ms": allowed.round() as i64, "downtime_ms": 600_000,
                       "used": used, "left": 1.0 - used},
            "windows": windows,
            "rules": [
                {"severity": "page", "factor": 14.4, "long": windows[2], "short": windows[0], "firing": true},
                {"severity": "page", "factor": 6.0, "long": windows[3], "short": windows[1], "firing": false},
                {"severity": "ticket", "factor": 1.0, "long": windows[4], "short": windows[3], "firing": false},
            ],
            "verdict": "page",
        }])
    );
    assert_eq!(
        transcript(&p.run(&["slo", "slo"])),
        "[exit 0]
monitor  api
target  99.50 % over 30 days
error budget  0.50 % = 1296 s of downtime allowed
used  600 s (46.30 %)
left  53.70 %
verdict  page
WINDOW  DOWNTIME  OBSERVED  BURN RATE
5m  300 s  300 s  200.00
30m  600 s  1800 s  66.67
1h  600 s  3600 s  33.33
6h  600 s  21600 s  5.56
3d  600 s  259200 s  0.46
RULE  WHEN  NOW
page  > 14.4 over 1h and 5m  firing
page  > 6 over 6h and 30m  quiet
ticket  > 1 over 3d and 6h  quiet
"
    );

    // `monitor show`: the newest 10 samples (all in the unavailable run),
    // the last hour's numbers (50 answers of 20 ms, 10 of none: error rate
    // 10/60), and the month to date, whose run lasts until now.
    let shown = p.run(&["monitor", "show", "api"]);
    let time = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z").unwrap();
    let month = regex::Regex::new(
        r"uptime  \d+\.\d+ % in \d{4}-\d\d to date: downtime [\d.]+ s \([\d.]+ min\), maintenance 0 s, no data \d+ s, target 99.50 %",
    )
    .unwrap();
    let text = transcript(&shown);
    let text = month.replace(&text, "uptime  [month to date]");
    let unavailable = "[time]  unavailable  -  -  \n".repeat(10);
    assert_eq!(
        time.replace_all(&text, "[time]"),
        format!(
            "[exit 0]
monitor  api
environment  slo
kind  push
last status  unavailable
last checked  [time]
average 5m  -
p95 1h  19.9 ms (< 2000 ms) ok
average 1h  20.0 ms (< 1000 ms) ok
error rate 1h  16.7 % (< 1 %) breached
uptime  [month to date]
TIME  OUTCOME  STATUS  LATENCY  ERROR
{unavailable}"
        )
    );
    let j = p.run(&["monitor", "show", "api", "--json"]).ok().json();
    let after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let latest: Vec<i64> = j["latest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["at"].as_i64().unwrap())
        .collect();
    assert_eq!(latest, (1..=10).map(|k| at - k * MIN).collect::<Vec<_>>());
    assert_eq!(j["last_checked_at"], json!(at - MIN));
    assert_eq!(j["error_rate_1h"], json!(10.0 / 60.0));
    // The run began at `at` − 10 m and lasts to the end of the period (now).
    let down = j["month"]["downtime_seconds"].as_f64().unwrap();
    assert!(down >= 600.0 && down <= 600.0 + (after - at) as f64 / 1000.0, "{j}");
}
