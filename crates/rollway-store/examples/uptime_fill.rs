//! Fills a store with what `rollway serve` leaves after months of watching
//! N monitors at a 10 s interval, for `scripts/bench uptime`: 1-day and
//! 1-hour rollups over `[--from, --until)` and 1-minute rollups from
//! `--minutes-from` (retention keeps minutes 35 days), the monitors'
//! covered range and `minutes_from` set as roll-up and retention set them.
//! Raw samples are not written: a complete month is answered from rollups
//! alone (OPERATIONS.md "Samples and rollups").
//!
//! ```text
//! cargo run --release -p rollway-store --example uptime_fill -- \
//!     --store PATH|postgres://… --monitors N --from MS --until MS --minutes-from MS
//! ```
//!
//! Writing 1,000 × 8,640 samples a day through `record_samples` and
//! `roll_up` would take hours, so four template monitors get one real day
//! of simulated samples each (`sim::sample`; template 1 has a 90 s outage,
//! template 2 a 3-minute 5xx run, template 3 a 10-minute gap), rolled up
//! by the store itself; their day's rows are then copied with SQL to every
//! monitor and day (template `(monitor id + day) mod 4`), one statement
//! per table and day (PostgreSQL stores a bucket as whole minutes, hours
//! or days since schema 15, SQLite as milliseconds: the copies shift and
//! select the keys in the table's unit). It prints the rows written, how long that took, and
//! the bytes per row of each table (SQLite: `dbstat`, used bytes of the
//! table and its indexes; PostgreSQL: `pg_total_relation_size`, free
//! space in pages included) as JSON.

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rollway_model::uptime::Outcome;
use rollway_model::{ManualClock, Timestamp};
use rollway_store::{MonitorDef, RollupSettings, StoreLocation};
use sim::{Rng, sample};

#[path = "sim/mod.rs"]
mod sim;

/// The template day: 2026-04-01T00:00:00Z.
const T0: i64 = 1_775_001_600_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
const INTERVAL: i64 = 10_000;
const TEMPLATES: i64 = 4;
const COLS: &str = "ok, error, unavailable, status_5xx, latency_count, latency_sum_ms, latency_min_ms, \
     latency_max_ms, sketch, downtime_ms, maintenance_ms, no_data_ms";

struct Args {
    store: String,
    monitors: usize,
    from: i64,
    until: i64,
    minutes_from: i64,
}

fn args() -> Result<Args, String> {
    let mut store = None;
    let (mut monitors, mut from, mut until, mut minutes_from) = (1000, None, None, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |name: &str, v: String| v.parse::<i64>().map_err(|e| format!("{name} '{v}': {e}"));
        match flag.as_str() {
            "--store" => store = Some(value("--store")?),
            "--monitors" => monitors = number("--monitors", value("--monitors")?)?.max(1) as usize,
            "--from" => from = Some(number("--from", value("--from")?)?),
            "--until" => until = Some(number("--until", value("--until")?)?),
            "--minutes-from" => minutes_from = Some(number("--minutes-from", value("--minutes-from")?)?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let need = |v: Option<i64>, name: &str| -> Result<i64, String> {
        let v = v.ok_or_else(|| format!("{name} MS is required"))?;
        if v.rem_euclid(DAY) != 0 {
            return Err(format!("{name} {v} is not a UTC midnight in milliseconds"));
        }
        Ok(v)
    };
    Ok(Args {
        store: store.ok_or("--store PATH|URL is required")?,
        monitors,
        from: need(from, "--from")?,
        until: need(until, "--until")?,
        minutes_from: need(minutes_from, "--minutes-from")?,
    })
}

/// A direct connection, for the bulk copies and the size queries.
enum Conn {
    Lite(rusqlite::Connection),
    Pg(postgres::Client),
}

impl Conn {
    fn exec(&mut self, sql: &str) -> Result<u64, Box<dyn Error>> {
        Ok(match self {
            Conn::Lite(c) => c.execute(sql, [])? as u64,
            Conn::Pg(c) => c.execute(sql, &[])?,
        })
    }

    fn number(&mut self, sql: &str) -> Result<f64, Box<dyn Error>> {
        Ok(match self {
            Conn::Lite(c) => c.query_row(sql, [], |r| r.get::<_, f64>(0))?,
            Conn::Pg(c) => c.query_one(sql, &[])?.get::<_, f64>(0),
        })
    }
}

fn def(name: String) -> MonitorDef {
    MonitorDef {
        name,
        environment: "prod".into(),
        kind: "push".into(),
        target: "backend".into(),
        interval: Duration::from_millis(INTERVAL as u64),
        coverage: Duration::from_millis(2 * INTERVAL as u64),
        config: serde_json::json!({}),
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let a = args()?;
    let loc = if a.store.starts_with("postgres://") || a.store.starts_with("postgresql://") {
        StoreLocation::Postgres(a.store.clone())
    } else {
        StoreLocation::Sqlite(a.store.clone().into())
    };
    let clock = ManualClock::new(Timestamp::from_millis(T0));
    let store = rollway_store::open(&loc, Arc::new(clock.clone()))
        .map_err(|e| format!("cannot open the store at {}: {e}", a.store))?;
    let t = Instant::now();
    for i in 0..a.monitors {
        store.put_monitor(&def(format!("m-{i:05}")))?;
    }
    // Templates: a day at 10 s, with 10 minutes of context on each side.
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for k in 0..TEMPLATES {
        let name = format!("template-{k}");
        store.put_monitor(&def(name.clone()))?;
        let mut batch = Vec::new();
        let mut slot = T0 - 10 * MIN;
        while slot < T0 + DAY + 10 * MIN {
            let o = slot - T0;
            let gap = k == 3 && (3 * HOUR..3 * HOUR + 10 * MIN).contains(&o);
            if !gap {
                let down = k == 1 && (10 * HOUR..10 * HOUR + 90_000).contains(&o);
                let mut s = sample(&mut rng, &name, slot, down);
                if k == 2 && (14 * HOUR..14 * HOUR + 3 * MIN).contains(&o) {
                    s.outcome = Outcome::Error;
                    s.http_status = Some(503);
                }
                batch.push(s);
            }
            slot += INTERVAL;
        }
        for chunk in batch.chunks(4096) {
            store.record_samples(chunk)?;
        }
    }
    clock.set(Timestamp::from_millis(T0 + DAY + 15 * MIN));
    store.roll_up(&RollupSettings::default())?;
    drop(store);
    let setup_s = t.elapsed().as_secs_f64();

    let mut conn = match &loc {
        StoreLocation::Sqlite(path) => {
            let c = rusqlite::Connection::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            // A generated bench store: durability of each statement does not matter.
            c.execute_batch("PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;")?;
            Conn::Lite(c)
        }
        StoreLocation::Postgres(url) => Conn::Pg(
            postgres::Client::connect(url, postgres::NoTls)
                .map_err(|e| format!("cannot connect to {}: {e}", rollway_store::mask_password(url)))?,
        ),
    };
    let t = Instant::now();
    // Milliseconds per unit of a stored bucket (`RollupLayout::unit`).
    let pg = matches!(conn, Conn::Pg(_));
    let unit = |table: &str| match (pg, table) {
        (false, _) => 1,
        (true, "rollups_day") => DAY,
        (true, "rollups_hour") => HOUR,
        (true, _) => MIN,
    };
    let mut rows = [0u64; 3];
    let mut day = a.from;
    while day < a.until {
        let index = (day - a.from) / DAY;
        for (n, table) in ["rollups_day", "rollups_hour", "rollups_minute"]
            .into_iter()
            .enumerate()
        {
            if n == 2 && day < a.minutes_from {
                continue;
            }
            let u = unit(table);
            let sql = format!(
                "INSERT INTO {table} (monitor_id, bucket, {COLS}) \
                 SELECT m.id, t.bucket + {shift}, {cols} FROM monitors m \
                 JOIN monitors tp ON tp.name = 'template-' || ((m.id + {index}) % {TEMPLATES}) \
                 JOIN {table} t ON t.monitor_id = tp.id AND t.bucket >= {start} AND t.bucket < {end} \
                 WHERE m.name LIKE 'm-%'",
                shift = (day - T0) / u,
                start = T0 / u,
                cols = COLS
                    .split(", ")
                    .map(|c| format!("t.{c}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                end = (T0 + DAY) / u,
            );
            rows[n] += conn.exec(&sql)?;
        }
        day += DAY;
    }
    conn.exec(&format!(
        "UPDATE monitors SET rolled_from = {}, rolled_until = {}, minutes_from = {} WHERE name LIKE 'm-%'",
        a.from, a.until, a.minutes_from
    ))?;
    let fill_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let tables = ["samples", "rollups_minute", "rollups_hour", "rollups_day"];
    let mut per_row = Vec::new();
    for table in tables {
        let count = conn.number(&format!("SELECT CAST(COUNT(*) AS DOUBLE PRECISION) FROM {table}"))?;
        let bytes = match &conn {
            Conn::Lite(_) => conn.number(&format!(
                "SELECT CAST(COALESCE(SUM(pgsize - unused), 0) AS REAL) FROM dbstat \
                 WHERE name = '{table}' OR name IN \
                 (SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = '{table}')"
            ))?,
            Conn::Pg(_) => {
                conn.exec(&format!("ANALYZE {table}"))?;
                conn.number(&format!(
                    "SELECT CAST(pg_total_relation_size('{table}') AS DOUBLE PRECISION)"
                ))?
            }
        };
        per_row.push(bytes / count.max(1.0));
    }
    let measure_s = t.elapsed().as_secs_f64();
    // Per monitor at 10 s: raw samples 48 h, minutes 35 days, then a year
    // of hours and days (after one year), or their full keep (2 and 5 years).
    let raw = per_row[0] * (2 * DAY / INTERVAL) as f64 + per_row[1] * (35 * 1440) as f64;
    let first_year = raw + per_row[2] * 8760.0 + per_row[3] * 365.0;
    let full = raw + per_row[2] * 17_520.0 + per_row[3] * 1825.0;
    println!(
        "{}",
        serde_json::json!({
            "backend": loc.backend(),
            "monitors": a.monitors,
            "rows": {"day": rows[0], "hour": rows[1], "minute": rows[2]},
            "seconds": {"templates": setup_s, "fill": fill_s, "measure": measure_s},
            "bytes_per_row": {"sample": per_row[0], "minute": per_row[1], "hour": per_row[2], "day": per_row[3]},
            "bytes_per_monitor": {"first_year": first_year, "full_retention": full},
        })
    );
    Ok(())
}
