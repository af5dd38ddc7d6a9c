//! Seed 003 Monitoring Data records (OPERATIONS.md "The seed 003 numbers,
//! exactly"): the numbers `monitor show` and `uptime` give, kept in the
//! seed's shape per environment and monitor — `health_check` (failed
//! checks in a row up to the latest sample), `performance` (the 5-minute
//! rolling average latency), `error_rate` (per UTC hour: this one so far
//! and the last one whole) and `uptime` (this month to date, in the
//! environment's time zone) — each with Rollway's default thresholds
//! (`Thresholds::default_for`) and the status they give.
//!
//! `serve` refreshes them after each rollup (every minute) and
//! `rollway metrics ENV` refreshes that environment's before answering,
//! so the answer is current with or without a `serve`. Every value comes
//! from the same arithmetic as `rollway uptime` and `monitor show`
//! (`rollway_store::account` and `uptime::month_of` over the rollups and raw
//! samples); nothing is counted differently here. A window without data
//! writes nothing: its last record stays, with its timestamp.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use rollway_config::Config;
use rollway_model::calendar::Month;
use rollway_model::spans::Span;
use rollway_model::{MetricRecord, MetricType, Thresholds, Timestamp};
use rollway_ops::MonitorState;
use rollway_store::account::{RAW_LIMIT, account};
use rollway_store::{MonitorRecord, Store};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::project::Project;
use crate::uptime::{MINUTE, month_of, names, roll_up_first, sync_monitors, windows_for, zone};

const HOUR: i64 = 60 * MINUTE;

/// What the refresh needs from rollway.toml, read once (serve keeps it).
#[derive(Debug, Clone)]
pub struct RecordInputs {
    /// Each configured monitor's `retries` (failed checks before it is down).
    retries: BTreeMap<String, u32>,
    /// Each environment's time zone and uptime target (a fraction).
    zones: BTreeMap<String, (TimeZone, f64)>,
}

impl RecordInputs {
    /// Reads the monitors' retries and the environments' zones and targets;
    /// an unknown time zone is a located error.
    pub fn from_config(config: &Config) -> Result<Self> {
        let mut zones = BTreeMap::new();
        for env in config.environments.keys() {
            zones.insert(env.clone(), zone(config, env)?);
        }
        let retries = config
            .all_monitors()
            .into_iter()
            .map(|(name, m)| (name, m.retries))
            .collect();
        Ok(Self { retries, zones })
    }
}

/// One monitor's month to date, as `rollway uptime` counts it.
#[derive(Debug, Clone, Serialize)]
pub struct MonthToDate {
    pub monitor: String,
    pub environment: String,
    /// Uptime as a fraction (`uptime_percent` / 100); `None` without data.
    pub ratio: Option<f64>,
    pub downtime_seconds: f64,
}

/// What one refresh wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Refreshed {
    pub records: Vec<MetricRecord>,
    pub months: Vec<MonthToDate>,
}

/// Computes and stores the records of every configured monitor (of
/// `environment`, or all) as of the store clock's now.
pub fn refresh(store: &dyn Store, inputs: &RecordInputs, environment: Option<&str>) -> Result<Refreshed> {
    let now = store.clock().now();
    // Windows end at the start of the current minute, as `monitor show`'s.
    let at = Timestamp::from_millis(now.as_millis().div_euclid(MINUTE) * MINUTE);
    let windows = store.maintenance_windows(environment)?;
    let latest = store.latest_samples(environment)?;
    let mut out = Refreshed::default();
    for m in store.monitors()? {
        let Some(&retries) = inputs.retries.get(&m.def.name) else {
            continue; // no longer configured
        };
        if environment.is_some_and(|e| e != m.def.environment) {
            continue;
        }
        let Some((tz, target)) = inputs.zones.get(&m.def.environment) else {
            continue;
        };
        let record = |t: MetricType, value: f64, start: Timestamp, end: Timestamp| {
            MetricRecord::new(
                &m.def.environment,
                &m.def.name,
                t,
                value,
                Thresholds::default_for(t, target * 100.0, retries),
                start,
                end,
            )
        };
        if let Some(s) = latest.iter().find(|s| s.monitor == m.def.name) {
            let failures = failures_in_a_row(store, &m, retries, s.slot)?;
            out.records
                .push(record(MetricType::HealthCheck, f64::from(failures), s.at, s.at));
        }
        let over = |start: i64, end: i64| -> Result<rollway_model::rollup::Rollup> {
            let period = Span::new(Timestamp::from_millis(start), Timestamp::from_millis(end));
            let maint = windows_for(&windows, &m, period, tz);
            Ok(account(store, &m, period, &maint)?.tally.rollup)
        };
        let five = rollway_model::entities::metric_record::PERFORMANCE_WINDOW_MS;
        if let Some(avg) = over(at.as_millis() - five, at.as_millis())?.average_ms() {
            out.records.push(record(
                MetricType::Performance,
                avg,
                Timestamp::from_millis(at.as_millis() - five),
                at,
            ));
        }
        // This UTC hour so far, and the last one whole (late samples and
        // the minutes that settled since may have changed it).
        let hour = at.as_millis().div_euclid(HOUR) * HOUR;
        for (start, end) in [(hour - HOUR, hour), (hour, at.as_millis())] {
            if end <= start {
                continue;
            }
            if let Some(rate) = over(start, end)?.error_rate() {
                out.records.push(record(
                    MetricType::ErrorRate,
                    rate * 100.0,
                    Timestamp::from_millis(start),
                    Timestamp::from_millis(end),
                ));
            }
        }
        let month = month_of(store, &m, tz, *target, &windows, Month::of(now, tz), now)?;
        if let Some(pct) = month.uptime_percent {
            out.records
                .push(record(MetricType::Uptime, pct, month.period_start, month.period_end));
        }
        out.months.push(MonthToDate {
            monitor: m.def.name.clone(),
            environment: m.def.environment.clone(),
            ratio: month.uptime_percent.map(|p| p / 100.0),
            downtime_seconds: month.downtime_seconds,
        });
    }
    store.put_metric_records(&out.records)?;
    Ok(out)
}

/// Failed samples in a row up to the one at `slot`, counted by the same
/// `MonitorState` that decides `up`, `pending` and `down`, over the
/// samples of the `retries` coverages before it (enough to reach
/// `retries`, the critical threshold).
fn failures_in_a_row(store: &dyn Store, m: &MonitorRecord, retries: u32, slot: Timestamp) -> Result<u32> {
    let coverage = i64::try_from(m.def.coverage.as_millis()).unwrap_or(i64::MAX);
    let from = slot
        .as_millis()
        .saturating_sub(coverage.saturating_mul(i64::from(retries.max(1))));
    let samples = store.samples(
        &m.def.name,
        Timestamp::from_millis(from),
        Timestamp::from_millis(slot.as_millis() + 1),
        RAW_LIMIT,
    )?;
    let mut state = MonitorState::default();
    for s in &samples {
        state.observe(s.slot, s.outcome);
    }
    Ok(state.failures())
}

/// `rollway metrics ENV [--type T]`: the environment's records, refreshed
/// first (after rolling up what `serve` has not), by type in the seed's
/// order, then source, newest window first.
pub fn metrics_report(p: &Project, environment: &str, metric_type: Option<&str>) -> Result<Vec<MetricRecord>> {
    let metric_type = metric_type
        .map(|t| {
            t.parse::<MetricType>()
                .map_err(|e| Error::invalid(format_args!("--type: {e}")))
        })
        .transpose()?;
    let (config, store) = p.open()?;
    if !config.environments.contains_key(environment) {
        return Err(Error::invalid(format_args!(
            "no environment {environment} in {}: the environments are {}",
            p.config_path().display(),
            names(config.environments.keys().cloned())
        )));
    }
    sync_monitors(&config, &*store)?;
    roll_up_first(&*store)?;
    let inputs = RecordInputs::from_config(&config)?;
    refresh(&*store, &inputs, Some(environment))
        .map_err(|e| e.context(format!("cannot refresh the metric records of {environment}")))?;
    let mut records = store.metric_records(environment, metric_type)?;
    records.sort_by(|a, b| {
        (a.metric_type, &a.source)
            .cmp(&(b.metric_type, &b.source))
            .then(b.window_start.cmp(&a.window_start))
    });
    Ok(records)
}
