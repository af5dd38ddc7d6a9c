//! Measures what monitoring costs on disk in a SQLite store, per monitor,
//! and extrapolates it over the retention tiers (OPERATIONS.md "Samples and
//! rollups"): raw samples 48 h, 1-minute rollups 35 days, 1-hour 2 years,
//! 1-day 5 years. For `scripts/bench` and ARCHITECTURE.md's store section.
//!
//! ```text
//! cargo run --release -p rollway-store --example monitoring_size -- \
//!     [--monitors N] [--interval SECS] [--hours H] [--json]
//! ```
//!
//! It writes H hours (default 24) of simulated samples for N monitors
//! (default 50) at the interval (default 5 s) into a fresh store — mostly
//! `ok` with log-normal latencies around 120 ms and a slow tail, a few
//! errors and unavailable runs with error texts — rolls them up, vacuums the
//! file and reads each table's bytes (with its indexes) from SQLite's
//! `dbstat`. Bytes per row times the rows each tier keeps gives the size
//! per monitor:
//!
//! ```text
//! bytes = raw_row × 48 h / interval + minute_row × 35 × 1440
//!       + hour_row × 730 × 24 + day_row × 1825
//! ```

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rollway_model::spans::Spans;
use rollway_model::{ManualClock, Timestamp};
use rollway_store::{MonitorDef, Retention, RollupSettings, StoreLocation};
use sim::{Rng, sample};

#[path = "sim/mod.rs"]
mod sim;

/// 2026-04-01T00:00:00Z.
const START: i64 = 1_775_001_600_000;
const HOUR: i64 = 3_600_000;

struct Args {
    monitors: usize,
    interval_s: u64,
    hours: i64,
    json: bool,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        monitors: 50,
        interval_s: 5,
        hours: 24,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| format!("{name} needs a value"))?
                .parse::<u64>()
                .map_err(|e| format!("{name}: {e}"))
        };
        match flag.as_str() {
            "--monitors" => a.monitors = value("--monitors")? as usize,
            "--interval" => a.interval_s = value("--interval")?.max(1),
            "--hours" => a.hours = value("--hours")?.max(1) as i64,
            "--json" => a.json = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn main() -> Result<(), Box<dyn Error>> {
    let a = args()?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("rollway.db");
    let clock = ManualClock::new(Timestamp::from_millis(START));
    let store = rollway_store::open(&StoreLocation::Sqlite(path.clone()), Arc::new(clock.clone()))?;
    let interval = a.interval_s as i64 * 1000;
    let names: Vec<String> = (0..a.monitors).map(|i| format!("monitor-{i:05}")).collect();
    for (i, name) in names.iter().enumerate() {
        store.put_monitor(&MonitorDef {
            name: name.clone(),
            environment: "production".into(),
            kind: "http".into(),
            target: ["frontend", "backend", "database", "nginx"][i % 4].into(),
            interval: Duration::from_millis(interval as u64),
            coverage: Duration::from_millis(interval as u64 * 3),
            config: serde_json::json!({"url": format!("https://{name}.example.com/health")}),
        })?;
    }

    // Slot by slot, every monitor, in batches the size of the scheduler's
    // channel; each monitor is down (refused) for 3 minutes every 6 hours.
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let end = START + a.hours * HOUR;
    let mut batch = Vec::with_capacity(4096);
    let mut inserted = 0u64;
    let t = Instant::now();
    let mut slot = START;
    while slot < end {
        for (i, name) in names.iter().enumerate() {
            let phase = (slot - START + i as i64 * 600_000) % (6 * HOUR);
            let s = sample(&mut rng, name, slot, phase < 180_000);
            batch.push(s);
            if batch.len() == 4096 {
                inserted += store.record_samples(&batch)?.inserted;
                batch.clear();
            }
        }
        slot += interval;
    }
    inserted += store.record_samples(&batch)?.inserted;
    let insert_s = t.elapsed().as_secs_f64();

    clock.set(Timestamp::from_millis(end + 3 * 60_000));
    let t = Instant::now();
    let report = store.roll_up(&RollupSettings::default())?;
    let rollup_s = t.elapsed().as_secs_f64();
    // Nothing is old enough to go; this only shows the pass is cheap.
    let t = Instant::now();
    store.prune_monitoring(&Retention::default(), &|_, _| Spans::new())?;
    let prune_s = t.elapsed().as_secs_f64();
    drop(store);

    let conn = rusqlite::Connection::open(&path)?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;")?;
    let file_bytes = std::fs::metadata(&path)?.len();
    // Used bytes of each table and its indexes (page headers included,
    // free space in pages not).
    let bytes = |table: &str| -> Result<f64, rusqlite::Error> {
        conn.query_row(
            "SELECT COALESCE(SUM(pgsize - unused), 0) FROM dbstat \
             WHERE name = ?1 OR name IN (SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = ?1)",
            [table],
            |r| r.get::<_, i64>(0),
        )
        .map(|v| v as f64)
    };
    let rows = |table: &str| -> Result<f64, rusqlite::Error> {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get::<_, i64>(0))
            .map(|v| v as f64)
    };
    let per_row = |table: &str| -> Result<f64, rusqlite::Error> { Ok(bytes(table)? / rows(table)?.max(1.0)) };
    let raw_row = per_row("samples")?;
    let minute_row = per_row("rollups_minute")?;
    let hour_row = per_row("rollups_hour")?;
    let day_row = per_row("rollups_day")?;

    let day_ms = 24.0 * HOUR as f64;
    let raw_rows = 2.0 * day_ms / interval as f64;
    let tiers = [
        ("raw samples, 48 h", raw_row, raw_rows),
        ("1-minute rollups, 35 days", minute_row, 35.0 * 1440.0),
        ("1-hour rollups, 2 years", hour_row, 730.0 * 24.0),
        ("1-day rollups, 5 years", day_row, 1825.0),
    ];
    let full: f64 = tiers.iter().map(|(_, b, n)| b * n).sum();
    // After one year: raw and minutes at their keep, a year of hours and days.
    let one_year = raw_row * raw_rows + minute_row * 35.0 * 1440.0 + hour_row * 8760.0 + day_row * 365.0;
    // What each further year adds once raw and minutes are at their keep.
    let per_year = hour_row * 8760.0 + day_row * 365.0;
    const MB: f64 = 1_000_000.0;
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "monitors": a.monitors, "interval_s": a.interval_s, "hours": a.hours,
                "samples": inserted, "file_bytes": file_bytes,
                "bytes_per_row": {"sample": raw_row, "minute": minute_row, "hour": hour_row, "day": day_row},
                "bytes_per_monitor": {"first_year": one_year, "full_retention": full, "each_further_year": per_year},
                "seconds": {"insert": insert_s, "roll_up": rollup_s, "prune": prune_s},
            })
        );
        return Ok(());
    }
    println!(
        "{} monitors × {} h at {} s: {inserted} samples in {insert_s:.2} s ({:.0}/s); roll up {rollup_s:.2} s ({} transactions); prune pass {prune_s:.2} s; file {:.1} MB",
        a.monitors,
        a.hours,
        a.interval_s,
        inserted as f64 / insert_s,
        report.transactions,
        file_bytes as f64 / MB
    );
    println!("per monitor, SQLite, interval {} s:", a.interval_s);
    for (what, b, n) in tiers {
        println!("  {what:<28} {b:>6.1} B/row × {n:>8.0} rows = {:>6.2} MB", b * n / MB);
    }
    println!("  full retention (steady state)       = {:>6.2} MB", full / MB);
    println!("  after one year                      = {:>6.2} MB", one_year / MB);
    println!("  each further year adds              = {:>6.2} MB", per_year / MB);
    Ok(())
}
