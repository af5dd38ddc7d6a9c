//! Measures what refreshing the seed 003 metric records costs, the work
//! `rollway serve` adds after each rollup (every minute): N push monitors
//! with H hours of samples at an interval, rolled up in a fresh SQLite
//! store, then `records::refresh` over all of them, timed over a few runs.
//!
//! ```text
//! cargo run --release -p rollway-app --example records_refresh -- \
//!     [--monitors N] [--interval SECS] [--hours H]
//! ```

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rollway_app::records::{RecordInputs, refresh};
use rollway_model::uptime::Outcome;
use rollway_model::{ManualClock, ProbeSample, Timestamp};
use rollway_store::{MonitorDef, RollupSettings, StoreLocation};

/// 2026-04-10T00:00:00Z: ten days into a month, so the month's uptime
/// reads day rows, hour rows and minutes.
const START: i64 = 1_775_779_200_000;
const HOUR: i64 = 3_600_000;
const RUNS: u32 = 5;

fn arg(name: &str, default: u64) -> Result<u64, String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .ok_or_else(|| format!("{name} needs a value"))?
            .parse()
            .map_err(|e| format!("{name}: {e}")),
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let monitors = arg("--monitors", 1000)? as usize;
    let interval_s = arg("--interval", 60)?.max(1);
    let hours = arg("--hours", 6)? as i64;
    let interval = Duration::from_secs(interval_s);
    let dir = tempfile::tempdir()?;
    let end = START + hours * HOUR;
    let clock = ManualClock::new(Timestamp::from_millis(end + 30_000));
    let loc = StoreLocation::Sqlite(dir.path().join("rollway.db"));
    let store = rollway_store::open(&loc, Arc::new(clock.clone()))?;

    let mut toml = String::from("project = \"bench\"\n\n[environments.prod]\nkind = \"staging\"\n");
    for i in 0..monitors {
        toml.push_str(&format!(
            "\n[monitors.m{i}]\nenvironment = \"prod\"\nkind = \"push\"\ninterval = \"{interval_s}s\"\n"
        ));
    }
    let config = rollway_config::parse(&toml, "rollway.toml").map_err(|d| format!("{d:?}"))?;
    let inputs = RecordInputs::from_config(&config).map_err(|e| e.to_string())?;

    let started = Instant::now();
    let step = i64::try_from(interval.as_millis())?;
    for i in 0..monitors {
        let name = format!("m{i}");
        store.put_monitor(&MonitorDef {
            name: name.clone(),
            environment: "prod".into(),
            kind: "push".into(),
            target: "backend".into(),
            interval,
            coverage: interval * 2,
            config: serde_json::json!({}),
        })?;
        let mut batch = Vec::new();
        let mut t = START;
        let mut k = 0u64;
        while t < end {
            // Mostly ok around 100 ms; every 97th slot unavailable.
            let outcome = if (k + i as u64).is_multiple_of(97) {
                Outcome::Unavailable
            } else {
                Outcome::Ok
            };
            let mut s = ProbeSample::new(&name, Timestamp::from_millis(t), outcome);
            if outcome == Outcome::Ok {
                s.http_status = Some(200);
                s.latency_ms = Some(80 + (k * 7 + i as u64) % 50);
            }
            batch.push(s);
            t += step;
            k += 1;
        }
        store.record_samples(&batch)?;
    }
    let written = started.elapsed();
    let started = Instant::now();
    store.roll_up(&RollupSettings::default())?;
    let rolled = started.elapsed();

    let mut times = Vec::new();
    let mut records = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let r = refresh(&*store, &inputs, None).map_err(|e| e.to_string())?;
        times.push(started.elapsed());
        records = r.records.len();
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "{monitors} monitors, {hours} h of samples at {interval_s} s: written in {:.1} s, rolled up in {:.1} s",
        written.as_secs_f64(),
        rolled.as_secs_f64()
    );
    println!(
        "refresh ({records} records): median {:.0} ms of {RUNS} runs (min {:.0}, max {:.0}) = {:.0} us per monitor",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e6 / monitors as f64
    );
    Ok(())
}
