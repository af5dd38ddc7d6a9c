//! Push monitors that stop checking in, through the real binary
//! (OPERATIONS.md "Monitors": `on_silence`): two push monitors at 1 s with
//! a 1 s grace get a few pushes, then nothing for over 30 s while `rollway
//! serve` runs, then pushes again. The `down` one gets an `unavailable`
//! sample ("no check-in since T") for every slot it missed, none once
//! pushes arrive again; `monitor list` shows it down during the silence
//! (before serve runs too: the CLI counts the missed slots without writing
//! them) and up after; its month counts the silence as downtime (from the first
//! missed slot to the next push, longer than 30 s). The `no_data` one gets
//! nothing: the gap is no data, never downtime. Both months are held
//! against the definition worked out from the stored samples.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::Project;
use common::serve::{Serve, wait_for};
use common::uptime::{now_ms, stored_samples, uptime_against_definition, within_one_month};
use rollway_model::time::Timestamp;

const CONFIG: &str = r#"project = "silence"

[environments.prod]
kind = "staging"

[monitors.cron]
environment = "prod"
kind = "push"
interval = "1s"
grace = "1s"

[monitors.probes]
environment = "prod"
kind = "push"
interval = "1s"
grace = "1s"
on_silence = "no_data"
"#;

/// How long the pushes stop: longer than the 30 s an unavailable run must
/// last to be downtime.
const SILENCE: Duration = Duration::from_secs(36);

/// Pushes one ok sample at `at` (ms) to both monitors.
fn push_both(p: &Project, at: i64) {
    for m in ["cron", "probes"] {
        let line = format!(r#"{{"time": {at}, "outcome": "ok", "status": 200, "latency_ms": 5}}"#);
        let r = p
            .run_with_stdin(&["monitor", "push", m, "--json"], &format!("{line}\n"))
            .ok();
        assert_eq!(r.json()["inserted"], 1, "{r:?}");
    }
}

/// Each monitor's state as `monitor list --json` shows it.
fn states(p: &Project) -> Vec<(String, Option<String>)> {
    p.run(&["--json", "monitor", "list"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_owned(),
                m["state"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn state_of(p: &Project, name: &str) -> Option<String> {
    states(p).into_iter().find(|(n, _)| n == name).unwrap().1
}

#[test]
fn a_silent_push_monitor_is_down_or_no_data_as_on_silence_says() {
    within_one_month(SILENCE + Duration::from_secs(60));
    // Both backends at once: the run is mostly waiting.
    std::thread::scope(|s| {
        let runs: Vec<_> = Project::each_backend()
            .into_iter()
            .map(|p| s.spawn(move || silence_on(&p)))
            .collect();
        for r in runs {
            r.join().unwrap();
        }
    });
}

fn silence_on(p: &Project) {
    p.write("rollway.toml", CONFIG);
    assert_eq!(
        states(p),
        [("cron".to_owned(), None), ("probes".to_owned(), None)],
        "no state before the first sample"
    );
    // Three check-ins a second apart, the last one (t0) now.
    let t0 = now_ms();
    for k in (0..3).rev() {
        push_both(p, t0 - k * 1000);
    }
    assert_eq!(state_of(p, "probes").as_deref(), Some("up"));
    // retries 3: three missed slots (t0 + 1 s, 2 s, 3 s, each due a grace
    // later) make it down — in `monitor list` with no serve running too,
    // and without writing anything.
    wait_for("cron to be down", || {
        (state_of(p, "cron").as_deref() == Some("down")).then_some(())
    });
    assert_eq!(stored_samples(p, "cron").len(), 3, "the CLI records no silence");

    let mut serve = Serve::start(p, &["serve", "--listen", "127.0.0.1:0"]);
    assert!(serve.line().starts_with("serving on http://"));
    wait_for("serve to record cron's missed check-ins", || {
        let silent = stored_samples(p, "cron")
            .iter()
            .filter(|s| s.outcome == "unavailable")
            .count();
        (silent >= 3).then_some(())
    });
    assert_eq!(state_of(p, "cron").as_deref(), Some("down"));
    assert_eq!(
        state_of(p, "probes").as_deref(),
        Some("up"),
        "a no_data monitor is not judged by silence"
    );
    let sleep_until = |ms: i64| std::thread::sleep(Duration::from_millis((ms - now_ms()).max(0) as u64));
    sleep_until(t0 + SILENCE.as_millis() as i64);

    // Pushes again, every second; the first one (t1) ends the silence.
    let t1 = now_ms();
    let mut last = t1;
    for k in 0..4 {
        sleep_until(t1 + k * 1000);
        last = now_ms();
        push_both(p, last);
    }
    assert_eq!(state_of(p, "cron").as_deref(), Some("up"));
    let (status, stderr) = serve.terminate();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("cannot"), "{stderr}");

    // cron: the missed slots t0 + 1 s, t0 + 2 s, … each unavailable, naming
    // t0, up to the last one whose grace ran out before t1 arrived; none
    // while the pushes went on.
    let since = format!("no check-in since {}", Timestamp::from_millis(t0));
    let cron = stored_samples(p, "cron");
    let silent: Vec<i64> = cron
        .iter()
        .filter(|s| s.outcome == "unavailable")
        .map(|s| s.slot)
        .collect();
    assert!(
        cron.iter()
            .filter(|s| s.outcome == "unavailable")
            .all(|s| s.error == since && s.http_status.is_none()),
        "{cron:#?}"
    );
    let in_silence: Vec<i64> = silent.iter().copied().filter(|&s| s < last).collect();
    let expected: Vec<i64> = (1..=in_silence.len() as i64).map(|k| t0 + k * 1000).collect();
    assert_eq!(in_silence, expected, "one sample per missed slot, none after t1 = {t1}");
    let end = *in_silence.last().unwrap();
    assert!(
        end < t1 && end >= t1 - 4_000,
        "the silence runs to the push that ended it: last missed slot {end}, push at {t1}"
    );
    assert_eq!(
        cron.iter().filter(|s| s.outcome == "ok").count(),
        7,
        "the seven pushes are stored as pushed"
    );

    // Its month: the run of missed slots from t0 + 1 s to t1 (the next
    // sample with a response) is longer than 30 s: downtime, whole — up to
    // where the last missed slot's coverage (interval + grace) ends, when
    // t1 arrived just after that (its slot was due, not yet written): the
    // few milliseconds between are no data.
    let (got, want, terms) = uptime_against_definition(p, "cron", "prod", &[], 2_000);
    assert_eq!(got, want, "{}", p.backend.name());
    assert_eq!(terms.downtime, t1.min(end + 2_000) - (t0 + 1000), "{got:#}");

    // probes: nothing recorded between t0 and t1; the gap beyond its
    // coverage (interval + grace) is no data, and nothing is down.
    let probes = stored_samples(p, "probes");
    assert!(probes.iter().all(|s| s.outcome == "ok"), "{probes:#?}");
    assert_eq!(probes.len(), 7);
    let (got, want, terms) = uptime_against_definition(p, "probes", "prod", &[], 2_000);
    assert_eq!(got, want, "{}", p.backend.name());
    assert_eq!(terms.downtime, 0);
    let period = (
        got[0]["period_start"].as_i64().unwrap(),
        got[0]["period_end"].as_i64().unwrap(),
    );
    let slots: Vec<i64> = probes.iter().map(|s| s.slot).collect();
    let before = slots[0] - period.0;
    let after = (period.1 - slots[6] - 2_000).max(0);
    assert_eq!(terms.no_data, before + (t1 - t0 - 2_000) + after, "{got:#}");
}
