//! The seed 003 numbers for people and machines (OPERATIONS.md "The seed
//! 003 numbers, exactly"): maintenance windows (`rollway maintenance`),
//! samples pushed from outside (`rollway monitor push`), monthly uptime
//! per monitor in its environment's time zone (`rollway uptime`) and the
//! SLO's error budget and burn rates (`rollway slo`).
//!
//! Every number is the model's arithmetic over the store's rollups
//! (`account::plan` and `Tally`): whole days and hours where no window
//! lies, minutes where one does (so a window entered late still counts),
//! raw samples for the minutes not yet rolled up. Before answering, the
//! samples `serve` has not folded in yet are rolled up (the same
//! idempotent `roll_up` serve runs every minute).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::time::Duration;

use jiff::tz::TimeZone;
use rollway_config::{Config, MonitorCheck};
use rollway_model::account::Tally;
use rollway_model::calendar::Month;
use rollway_model::maintenance::{MaintenanceWindow, Schedule, expand};
use rollway_model::rollup::{TargetReport, Targets, Verdict};
use rollway_model::slo::{Budget, RuleVerdict, SLO_WINDOW, WindowBurn, budget, burn, judge, rule_windows};
use rollway_model::spans::{Span, Spans};
use rollway_model::uptime::Outcome;
use rollway_model::{EventKind, Level, NewEvent, ProbeSample, Timestamp};
use rollway_store::account::{Query, RAW_LIMIT, account, accounts};
use rollway_store::{MonitorRecord, Pruned, Resolution, Retention, RollupSettings, Store, StoreError};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::project::Project;

pub(crate) const MINUTE: i64 = 60_000;
/// Pushed samples recorded per transaction.
const PUSH_BATCH: usize = 5_000;

// ---- monitors and environments ----

/// Records every monitor of rollway.toml in the store (as `serve` does),
/// so pushes and reports know them before any `serve` ran. A definition
/// the store already holds is not written again: a report over a thousand
/// monitors would otherwise be a thousand write transactions.
pub(crate) fn sync_monitors(config: &Config, store: &dyn Store) -> Result<()> {
    let stored: BTreeMap<String, MonitorRecord> =
        store.monitors()?.into_iter().map(|m| (m.def.name.clone(), m)).collect();
    for (name, m) in config.all_monitors() {
        let def = crate::serve::definition(&name, &m);
        if stored.get(&name).is_some_and(|r| r.def == def) {
            continue;
        }
        store
            .put_monitor(&def)
            .map_err(|e| Error::from(e).context(format!("cannot record monitor {name} in the store")))?;
    }
    Ok(())
}

pub(crate) fn zone(config: &Config, env: &str) -> Result<(TimeZone, f64)> {
    let e = config
        .environments
        .get(env)
        .ok_or_else(|| Error::invalid(format_args!("no environment {env} in rollway.toml")))?;
    let tz = TimeZone::get(&e.timezone).map_err(|err| {
        Error::invalid(format_args!(
            "environments.{env}.timezone '{}' is not a known time zone: {err}; run `rollway config check`",
            e.timezone
        ))
    })?;
    Ok((tz, e.uptime_target / 100.0))
}

pub(crate) fn names(list: impl IntoIterator<Item = String>) -> String {
    let v: Vec<String> = list.into_iter().collect();
    if v.is_empty() { "none".to_owned() } else { v.join(", ") }
}

/// The monitors `what` names: an environment's, one monitor, or all.
pub(crate) fn select(config: &Config, store: &dyn Store, what: Option<&str>) -> Result<Vec<MonitorRecord>> {
    let all = store.monitors()?;
    let configured = config.all_monitors();
    let known: Vec<MonitorRecord> = all
        .into_iter()
        .filter(|m| configured.contains_key(&m.def.name))
        .collect();
    match what {
        None => Ok(known),
        Some(w) if config.environments.contains_key(w) => {
            Ok(known.into_iter().filter(|m| m.def.environment == w).collect())
        }
        Some(w) => {
            let one: Vec<MonitorRecord> = known.iter().filter(|m| m.def.name == w).cloned().collect();
            if one.is_empty() {
                return Err(Error::invalid(format_args!(
                    "no environment or monitor named {w}: the environments are {}; the monitors are {}",
                    names(config.environments.keys().cloned()),
                    names(configured.keys().cloned())
                )));
            }
            Ok(one)
        }
    }
}

// ---- maintenance windows ----

/// What `rollway maintenance add` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewWindow {
    /// The environment (or `None` with `monitor`).
    pub environment: Option<String>,
    pub monitor: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub cron: Option<String>,
    pub duration: Option<String>,
    pub note: Option<String>,
}

fn time_arg(flag: &str, v: &str) -> Result<Timestamp> {
    Timestamp::parse_rfc3339(v).ok_or_else(|| {
        Error::invalid(format_args!(
            "{flag} '{v}' is not an RFC 3339 time: write e.g. 2026-11-01T02:00:00Z or 2026-11-01T03:00:00+01:00"
        ))
    })
}

/// Stores a maintenance window for an environment or one monitor, with a
/// `maintenance-changed` event.
pub fn maintenance_add(p: &Project, w: NewWindow) -> Result<MaintenanceWindow> {
    let (config, store) = p.open()?;
    let all = config.all_monitors();
    let environment = match (&w.environment, &w.monitor) {
        (Some(env), None) => {
            if !config.environments.contains_key(env) {
                return Err(Error::invalid(format_args!(
                    "no environment {env} in {}: the environments are {}",
                    p.config_path().display(),
                    names(config.environments.keys().cloned())
                )));
            }
            env.clone()
        }
        (None, Some(m)) => match all.get(m) {
            Some(mc) => mc.environment.clone(),
            None => {
                return Err(Error::invalid(format_args!(
                    "no monitor {m} in {}: the monitors are {}",
                    p.config_path().display(),
                    names(all.keys().cloned())
                )));
            }
        },
        _ => {
            return Err(Error::invalid(
                "name an environment or --monitor NAME (one of them): the window applies to it",
            ));
        }
    };
    let schedule = match (&w.start, &w.end, &w.cron, &w.duration) {
        (Some(s), Some(e), None, None) => Schedule::Once {
            start: time_arg("--start", s)?,
            end: time_arg("--end", e)?,
        },
        (None, None, Some(c), Some(d)) => {
            let d = rollway_model::time::parse_duration(d)
                .map_err(|e| Error::invalid(format_args!("--duration '{d}': {e}")))?;
            Schedule::Cron {
                expression: c.clone(),
                duration_ms: i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            }
        }
        _ => {
            return Err(Error::invalid(
                "give --start T --end T for a one-off window, or --cron \"EXPR\" --duration D for a recurring one",
            ));
        }
    };
    let problems = rollway_model::maintenance::check(&schedule);
    if !problems.is_empty() {
        return Err(Error::invalid(format_args!(
            "the maintenance window is refused: {}",
            problems.join("; ")
        )));
    }
    let window = MaintenanceWindow {
        id: 0,
        environment: environment.clone(),
        monitor: w.monitor.clone(),
        schedule,
        note: w.note.clone(),
        created_at: Timestamp::from_millis(0),
        operator: p.operator(),
    };
    let ev = NewEvent::new(
        EventKind::MaintenanceChanged,
        Level::Info,
        format!(
            "maintenance window added to {}",
            w.monitor.as_deref().unwrap_or(&environment)
        ),
    )
    .environment(environment.clone())
    .operator(p.operator());
    Ok(store.add_maintenance(&window, ev)?)
}

/// The maintenance windows of `environment`, or all.
pub fn maintenance_list(p: &Project, environment: Option<&str>) -> Result<Vec<MaintenanceWindow>> {
    let (config, store) = p.open()?;
    if let Some(env) = environment
        && !config.environments.contains_key(env)
    {
        return Err(Error::invalid(format_args!(
            "no environment {env} in {}: the environments are {}",
            p.config_path().display(),
            names(config.environments.keys().cloned())
        )));
    }
    Ok(store.maintenance_windows(environment)?)
}

/// Removes window `id` with a `maintenance-changed` event.
pub fn maintenance_rm(p: &Project, id: i64) -> Result<MaintenanceWindow> {
    let store = p.store()?;
    let ev = NewEvent::new(
        EventKind::MaintenanceChanged,
        Level::Info,
        format!("maintenance window {id} removed"),
    )
    .operator(p.operator());
    store.remove_maintenance(id, ev)?.ok_or_else(|| {
        Error::invalid(format_args!(
            "no maintenance window {id}: `rollway maintenance list` shows them"
        ))
    })
}

// ---- pushed samples ----

/// One line of `rollway monitor push`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PushLine {
    /// RFC 3339, or milliseconds since the epoch; default: now.
    time: Option<serde_json::Value>,
    outcome: Outcome,
    status: Option<u16>,
    latency_ms: Option<u64>,
    location: Option<String>,
    error: Option<String>,
}

/// What `monitor push` recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Pushed {
    pub monitor: String,
    pub lines: u64,
    pub inserted: u64,
    /// Samples at a time already recorded: left as they were.
    pub duplicates: u64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

/// Records the JSON lines of `input` as samples of monitor `name`, each at
/// its time. A monitor Rollway probes itself takes pushed samples only
/// with `import` (history brought in from elsewhere). Every line is
/// checked before anything is stored: a bad line names its number.
pub fn push(p: &Project, name: &str, input: impl BufRead, import: bool) -> Result<Pushed> {
    let (config, store) = p.open()?;
    let all = config.all_monitors();
    let Some(m) = all.get(name) else {
        return Err(Error::invalid(format_args!(
            "no monitor {name} in {}: the monitors are {}",
            p.config_path().display(),
            names(all.keys().cloned())
        )));
    };
    if !matches!(m.check, MonitorCheck::Push(_)) && !import {
        return Err(Error::invalid(format_args!(
            "monitor {name} is a {} monitor that Rollway probes itself: pass --import to bring in samples taken elsewhere, or use a kind = \"push\" monitor",
            m.kind().as_str()
        )));
    }
    sync_monitors(&config, &*store)?;
    let now = store.clock().now();
    let mut samples = Vec::new();
    let mut lines = 0u64;
    for (i, line) in input.lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|e| Error::failed(format_args!("cannot read stdin at line {n}: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        lines += 1;
        let bad = |what: String| {
            Error::invalid(format_args!(
                "stdin line {n}: {what} — write {{\"time\": \"2026-11-01T00:00:00Z\", \"outcome\": \"ok\", \"status\": 200, \"latency_ms\": 12}}"
            ))
        };
        let l: PushLine = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        let at = match &l.time {
            None => now,
            Some(serde_json::Value::Number(ms)) => Timestamp::from_millis(
                ms.as_i64()
                    .ok_or_else(|| bad(format!("time {ms} is not whole milliseconds")))?,
            ),
            Some(serde_json::Value::String(s)) => {
                Timestamp::parse_rfc3339(s).ok_or_else(|| bad(format!("time '{s}' is not an RFC 3339 time")))?
            }
            Some(other) => return Err(bad(format!("time {other} is neither RFC 3339 text nor milliseconds"))),
        };
        if at.as_millis() > now.as_millis() + MINUTE {
            return Err(bad(format!("time {at} is in the future")));
        }
        let mut s = ProbeSample::new(name, at, l.outcome);
        s.http_status = l.status;
        s.latency_ms = l.latency_ms;
        s.location = l.location.or_else(|| m.location.clone());
        s.error = l.error.map(|e| p.masks().mask(&e));
        samples.push(s);
    }
    let mut pushed = Pushed {
        monitor: name.to_owned(),
        lines,
        inserted: 0,
        duplicates: 0,
        first: samples.iter().map(|s| s.slot).min(),
        last: samples.iter().map(|s| s.slot).max(),
    };
    for batch in samples.chunks(PUSH_BATCH) {
        let r = store.record_samples(batch)?;
        pushed.inserted += r.inserted;
        pushed.duplicates += r.duplicates;
    }
    Ok(pushed)
}

// ---- the arithmetic over the store ----

pub(crate) fn windows_for(all: &[MaintenanceWindow], m: &MonitorRecord, period: Span, tz: &TimeZone) -> Spans {
    let mine: Vec<&MaintenanceWindow> = all
        .iter()
        .filter(|w| w.applies_to(&m.def.environment, &m.def.name))
        .collect();
    expand(&mine, period, tz)
}

/// Each environment's time zone, for expanding its cron windows.
pub(crate) fn zones(config: &Config) -> Result<BTreeMap<String, TimeZone>> {
    config
        .environments
        .keys()
        .map(|env| Ok((env.clone(), zone(config, env)?.0)))
        .collect()
}

/// Retention (`Retention::default()`), with the maintenance windows in the
/// store now folded into the hours and days whose minutes go: `serve`
/// runs it every hour. A monitor of an environment no longer configured
/// has its windows read in UTC.
pub(crate) fn prune(store: &dyn Store, zones: &BTreeMap<String, TimeZone>) -> Result<Pruned, StoreError> {
    let windows = store.maintenance_windows(None)?;
    store.prune_monitoring(&Retention::default(), &|m: &MonitorRecord, span: Span| {
        windows_for(
            &windows,
            m,
            span,
            zones.get(&m.def.environment).unwrap_or(&TimeZone::UTC),
        )
    })
}

pub(crate) fn roll_up_first(store: &dyn Store) -> Result<()> {
    store
        .roll_up(&RollupSettings::default())
        .map_err(|e| Error::from(e).context("cannot roll up the samples not yet counted"))?;
    Ok(())
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// A fraction as a percentage with 4 decimals (99.9768).
fn percent(f: f64) -> f64 {
    (f * 1_000_000.0).round() / 10_000.0
}

// ---- state ----

/// Each configured monitor's state now (OPERATIONS.md "Monitors"), by
/// name: `paused`, `maintenance` (a window covers now), else what its
/// latest samples say (`rollway_ops::MonitorState`: `retries` failures in
/// a row are `down`, fewer `pending`, an ok `up`); absent before its
/// first sample. The failures in a row are read from the samples within
/// `retries` coverages of the latest one; a push monitor whose
/// `on_silence` is `down` counts the slots it missed since as failures
/// too, as `serve` will record them (so the state is the same whether or
/// not a `serve` runs, and without its grace of lag).
pub(crate) fn states(
    config: &Config,
    store: &dyn Store,
) -> Result<std::collections::BTreeMap<String, rollway_ops::MonitorStatus>> {
    let configured = config.all_monitors();
    let latest: std::collections::HashMap<String, ProbeSample> = store
        .latest_samples(None)?
        .into_iter()
        .map(|s| (s.monitor.clone(), s))
        .collect();
    let windows = store.maintenance_windows(None)?;
    let now = store.clock().now();
    let mut out = std::collections::BTreeMap::new();
    for m in store.monitors()? {
        let Some(c) = configured.get(&m.def.name) else {
            continue;
        };
        let (tz, _) = zone(config, &m.def.environment)?;
        let here = Span::new(now, Timestamp::from_millis(now.as_millis() + 1));
        let in_window = !windows_for(&windows, &m, here, &tz).is_empty();
        let mut state = rollway_ops::MonitorState::default();
        if let Some(l) = latest.get(&m.def.name) {
            let coverage = i64::try_from(m.def.coverage.as_millis()).unwrap_or(i64::MAX);
            let back = coverage.saturating_mul(i64::from(c.retries.max(1)));
            let recent = store.samples(
                &m.def.name,
                Timestamp::from_millis(l.slot.as_millis().saturating_sub(back)),
                Timestamp::from_millis(l.slot.as_millis() + 1),
                RAW_LIMIT,
            )?;
            for s in recent {
                state.observe(s.slot, s.outcome);
            }
            if let MonitorCheck::Push(push) = &c.check
                && push.on_silence == rollway_config::OnSilence::Down
            {
                let silence = rollway_ops::PushSilence {
                    interval: c.interval,
                    grace: push.grace,
                };
                let missed = silence.missed(l.slot, now, rollway_ops::SILENCE_BACKFILL, c.retries.max(1) as usize);
                for slot in missed {
                    state.observe(slot, Outcome::Unavailable);
                }
            }
        }
        if let Some(status) = state.status(c.retries, m.paused, in_window) {
            out.insert(m.def.name.clone(), status);
        }
    }
    Ok(out)
}

// ---- uptime ----

/// One monitor's month.
#[derive(Debug, Clone, Serialize)]
pub struct MonitorUptime {
    pub monitor: String,
    pub environment: String,
    pub timezone: String,
    pub month: Month,
    /// The current month: counted to now.
    pub month_to_date: bool,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    pub period_seconds: f64,
    pub downtime_seconds: f64,
    /// Seed 003 counts minutes: seconds / 60.
    pub downtime_minutes: f64,
    pub maintenance_seconds: f64,
    pub no_data_seconds: f64,
    /// 1 − downtime / (period − maintenance − no data), in percent, 4
    /// decimals; `None` when nothing was observed.
    pub uptime_percent: Option<f64>,
    pub target_percent: f64,
    /// `ok`, `breached` (below the target) or `no_data`.
    pub verdict: Verdict,
    pub samples: u64,
    /// How maintenance was applied: `windows` (the stored windows, to the
    /// minute rollups) or `stored` (minute rollups pruned: the seconds
    /// stored with the hours and days).
    pub maintenance_from: &'static str,
}

/// `rollway uptime`: the month of each selected monitor.
pub fn uptime_report(p: &Project, what: Option<&str>, month: Option<&str>) -> Result<Vec<MonitorUptime>> {
    let month = month
        .map(|m| Month::parse(m).map_err(|e| Error::invalid(format_args!("--month: {e}"))))
        .transpose()?;
    let (config, store) = p.open()?;
    sync_monitors(&config, &*store)?;
    let monitors = select(&config, &*store, what)?;
    roll_up_first(&*store)?;
    let windows = store.maintenance_windows(None)?;
    let now = store.clock().now();
    // Monitors of one environment share its zone and, mostly, its windows:
    // each is looked up and expanded once.
    let mut zones: BTreeMap<String, (TimeZone, f64)> = BTreeMap::new();
    let mut expanded = Expanded::default();
    let mut months = Vec::with_capacity(monitors.len());
    for m in &monitors {
        let env = &m.def.environment;
        if !zones.contains_key(env) {
            zones.insert(env.clone(), zone(&config, env)?);
        }
        let Some((tz, target)) = zones.get(env).cloned() else {
            continue;
        };
        let month = month.unwrap_or_else(|| Month::of(now, &tz));
        let span = month.span(&tz);
        if span.start > now {
            return Err(Error::invalid(format_args!(
                "--month {month} has not begun in {} ({}): pick this month or an earlier one",
                m.def.environment,
                tz.iana_name().unwrap_or("UTC")
            )));
        }
        let period = Span::new(span.start, span.end.min(now));
        let maint = expanded.spans(&windows, m, period, &tz);
        months.push((tz, target, month, span.end > now, period, maint));
    }
    let queries: Vec<Query<'_>> = monitors
        .iter()
        .zip(&months)
        .map(|(m, (_, _, _, _, period, maint))| Query {
            monitor: m,
            period: *period,
            maintenance: maint,
        })
        .collect();
    // The month's latency is not shown: its sketches are not read.
    let all = accounts(&*store, &queries, false)?;
    Ok(monitors
        .iter()
        .zip(months)
        .zip(all)
        .map(|((m, (tz, target, month, month_to_date, period, _)), a)| {
            month_answer(m, &tz, target, month, month_to_date, period, &a)
        })
        .collect())
}

/// One monitor's `month` (counted to `now` when it is the current one) in
/// zone `tz` against `target` (a fraction): the numbers `rollway uptime`
/// prints, the metric records' uptime and `/metrics`' uptime ratio.
pub(crate) fn month_of(
    store: &dyn Store,
    m: &MonitorRecord,
    tz: &TimeZone,
    target: f64,
    windows: &[MaintenanceWindow],
    month: Month,
    now: Timestamp,
) -> Result<MonitorUptime> {
    let span = month.span(tz);
    let period = Span::new(span.start, span.end.min(now));
    let maint = windows_for(windows, m, period, tz);
    let a = account(store, m, period, &maint)?;
    Ok(month_answer(m, tz, target, month, span.end > now, period, &a))
}

/// The answer for one monitor's month from its account.
fn month_answer(
    m: &MonitorRecord,
    tz: &TimeZone,
    target: f64,
    month: Month,
    month_to_date: bool,
    period: Span,
    a: &rollway_store::account::Account,
) -> MonitorUptime {
    let t = &a.tally;
    let up = t.uptime();
    MonitorUptime {
        monitor: m.def.name.clone(),
        environment: m.def.environment.clone(),
        timezone: tz.iana_name().unwrap_or("UTC").to_owned(),
        month,
        month_to_date,
        period_start: period.start,
        period_end: period.end,
        period_seconds: seconds(t.period_ms),
        downtime_seconds: seconds(t.downtime_ms),
        downtime_minutes: t.downtime_ms as f64 / 60_000.0,
        maintenance_seconds: seconds(t.maintenance_ms),
        no_data_seconds: seconds(t.no_data_ms),
        uptime_percent: up.map(percent),
        target_percent: target * 100.0,
        verdict: match up {
            None => Verdict::NoData,
            Some(u) if u >= target => Verdict::Ok,
            Some(_) => Verdict::Breached,
        },
        samples: t.rollup.samples(),
        maintenance_from: if a.stale_maintenance { "stored" } else { "windows" },
    }
}

/// Windows expanded over a period, kept by the windows that apply, the
/// period and the environment (whose zone they are read in): the monitors
/// of an environment share them.
#[derive(Default)]
struct Expanded {
    done: BTreeMap<(Vec<i64>, i64, i64, String), Spans>,
}

impl Expanded {
    fn spans(&mut self, all: &[MaintenanceWindow], m: &MonitorRecord, period: Span, tz: &TimeZone) -> Spans {
        let mine: Vec<&MaintenanceWindow> = all
            .iter()
            .filter(|w| w.applies_to(&m.def.environment, &m.def.name))
            .collect();
        let key = (
            mine.iter().map(|w| w.id).collect(),
            period.start.as_millis(),
            period.end.as_millis(),
            m.def.environment.clone(),
        );
        self.done
            .entry(key)
            .or_insert_with(|| expand(&mine, period, tz))
            .clone()
    }
}

// ---- SLO ----

/// One monitor's error budget and burn rates.
#[derive(Debug, Clone, Serialize)]
pub struct MonitorSlo {
    pub monitor: String,
    pub target_percent: f64,
    /// The windows end here: the start of the current minute.
    pub at: Timestamp,
    pub slo_window_days: u64,
    pub budget: Budget,
    /// 5 min, 30 min, 1 h, 6 h, 3 d.
    pub windows: Vec<WindowBurn>,
    /// Page: 14.4 over 1 h and 5 min, or 6 over 6 h and 30 min; ticket: 1
    /// over 3 d and 6 h.
    pub rules: Vec<RuleVerdict>,
    /// `page`, `ticket` or `ok`.
    pub verdict: &'static str,
}

/// `rollway slo ENV`: each monitor of the environment.
pub fn slo_report(p: &Project, env: &str) -> Result<Vec<MonitorSlo>> {
    let (config, store) = p.open()?;
    if !config.environments.contains_key(env) {
        return Err(Error::invalid(format_args!(
            "no environment {env} in {}: the environments are {}",
            p.config_path().display(),
            names(config.environments.keys().cloned())
        )));
    }
    sync_monitors(&config, &*store)?;
    roll_up_first(&*store)?;
    slo_of(&config, &*store, env)
}

/// The burn rates of `env`'s monitors from the rollups as stored (`serve`
/// keeps them rolled up; `slo_report` rolls up first).
pub(crate) fn slo_of(config: &Config, store: &dyn Store, env: &str) -> Result<Vec<MonitorSlo>> {
    let monitors = select(config, store, Some(env))?;
    let windows = store.maintenance_windows(Some(env))?;
    let (tz, target) = zone(config, env)?;
    let now = store.clock().now();
    let at = Timestamp::from_millis(now.as_millis().div_euclid(MINUTE) * MINUTE);
    let span = |d: Duration| Span::new(Timestamp::from_millis(at.as_millis() - ms(d)), at);
    let mut out = Vec::new();
    for m in monitors {
        let terms = |d: Duration| -> Result<Tally> {
            let period = span(d);
            let maint = windows_for(&windows, &m, period, &tz);
            Ok(account(store, &m, period, &maint)?.tally)
        };
        let whole = terms(SLO_WINDOW)?;
        let burns = rule_windows()
            .into_iter()
            .map(|d| terms(d).map(|t| burn(d, t.downtime_ms, t.observed_ms(), target)))
            .collect::<Result<Vec<_>>>()?;
        let rules = judge(&burns);
        let verdict = if rules
            .iter()
            .any(|r| r.firing && r.severity == rollway_model::slo::Severity::Page)
        {
            "page"
        } else if rules.iter().any(|r| r.firing) {
            "ticket"
        } else {
            "ok"
        };
        out.push(MonitorSlo {
            monitor: m.def.name.clone(),
            target_percent: target * 100.0,
            at,
            slo_window_days: SLO_WINDOW.as_secs() / 86_400,
            budget: budget(whole.downtime_ms, whole.observed_ms(), target),
            windows: burns,
            rules,
            verdict,
        });
    }
    Ok(out)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

// ---- one monitor ----

/// `rollway monitor show NAME`: state, latest samples, the response-time
/// targets over the last hour, the 5-minute average, this month's uptime
/// and the last hour's latency per minute.
#[derive(Debug, Clone, Serialize)]
pub struct MonitorShow {
    pub monitor: String,
    pub environment: String,
    pub kind: String,
    pub paused: bool,
    /// The latest sample's outcome (seed 002 lastStatus); `None` before any.
    pub last_outcome: Option<Outcome>,
    pub last_checked_at: Option<Timestamp>,
    /// Newest first, at most 10.
    pub latest: Vec<ProbeSample>,
    /// Seed 003: the 5-minute rolling average latency.
    pub average_5m_ms: Option<f64>,
    /// Seed 003: the hourly error rate, a fraction.
    pub error_rate_1h: Option<f64>,
    /// P95 < 2000 ms, average < 1000 ms, error rate < 1 %, over the last hour.
    pub targets_1h: TargetReport,
    /// Average latency of each of the last 60 minutes (`None`: no latency).
    pub latency_per_minute_ms: Vec<Option<f64>>,
    pub month: MonitorUptime,
}

/// Everything `monitor show NAME` prints.
pub fn show(p: &Project, name: &str) -> Result<MonitorShow> {
    let month = uptime_report(p, Some(name), None)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::invalid(format_args!("no monitor {name}")))?;
    let (config, store) = p.open()?;
    let m = select(&config, &*store, Some(name))?
        .into_iter()
        .next()
        .ok_or_else(|| Error::invalid(format_args!("no monitor {name}")))?;
    let windows = store.maintenance_windows(Some(&m.def.environment))?;
    let (tz, _) = zone(&config, &m.def.environment)?;
    let now = store.clock().now();
    let at = Timestamp::from_millis(now.as_millis().div_euclid(MINUTE) * MINUTE);
    let last = |minutes: i64| -> Result<Tally> {
        let period = Span::new(Timestamp::from_millis(at.as_millis() - minutes * MINUTE), at);
        let maint = windows_for(&windows, &m, period, &tz);
        Ok(account(&*store, &m, period, &maint)?.tally)
    };
    let hour = last(60)?;
    let five = last(5)?;
    let mut per_minute = Vec::with_capacity(60);
    let rows = store.rollups(
        name,
        Resolution::Minute,
        Timestamp::from_millis(at.as_millis() - 60 * MINUTE),
        at,
    )?;
    let recent = store.samples(
        name,
        m.rolled_until
            .unwrap_or(Timestamp::from_millis(at.as_millis() - 60 * MINUTE)),
        at,
        RAW_LIMIT,
    )?;
    for i in (1..=60).rev() {
        let start = at.as_millis() - i * MINUTE;
        let mut r = rows
            .iter()
            .find(|x| x.bucket.as_millis() == start)
            .map(|x| x.rollup.clone())
            .unwrap_or_default();
        if r.samples() == 0 {
            for s in recent
                .iter()
                .filter(|s| s.slot.as_millis() >= start && s.slot.as_millis() < start + MINUTE)
            {
                r.add(&s.measured());
            }
        }
        per_minute.push(r.average_ms());
    }
    // The newest: from the last hour's raw samples (rolled up or not, and
    // the current minute's too), else the latest known one.
    let mut latest: Vec<ProbeSample> = store
        .samples(
            name,
            Timestamp::from_millis(at.as_millis() - 60 * MINUTE),
            Timestamp::from_millis(now.as_millis() + 1),
            RAW_LIMIT,
        )?
        .into_iter()
        .rev()
        .take(10)
        .collect();
    if latest.is_empty() {
        latest = store
            .latest_samples(Some(&m.def.environment))?
            .into_iter()
            .filter(|s| s.monitor == name)
            .collect();
    }
    Ok(MonitorShow {
        monitor: m.def.name.clone(),
        environment: m.def.environment.clone(),
        kind: m.def.kind.clone(),
        paused: m.paused,
        last_outcome: latest.first().map(|s| s.outcome),
        last_checked_at: latest.first().map(|s| s.at),
        latest,
        average_5m_ms: five.rollup.average_ms(),
        error_rate_1h: hour.rollup.error_rate(),
        targets_1h: Targets::default().judge(&hour.rollup),
        latency_per_minute_ms: per_minute,
        month,
    })
}
