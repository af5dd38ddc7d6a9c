//! Monitors (seed 002 Health Check) as the CLI and the server see them:
//! the `[monitors.NAME]` of rollway.toml (and each environment's default
//! domain monitor), and one probe run now, outside any schedule.

use std::sync::Arc;

use rollway_config::MonitorConfig;
use rollway_ops::{MonitorSpec, ProbeResult, Prober, ProberOptions};
use rollway_store::SystemClock;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::project::Project;

/// One monitor as `monitor list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MonitorRow {
    pub name: String,
    pub environment: String,
    pub target: String,
    pub kind: &'static str,
    /// What is probed: a URL, `host:port`, a DNS name, or the variable
    /// holding a PostgreSQL URL (never the URL itself).
    pub probes: String,
    pub interval_ms: u64,
    pub timeout_ms: Option<u64>,
    pub retries: u32,
    pub location: Option<String>,
    /// `rollway monitor pause` (as the store has it; false before `serve`
    /// or a pause first recorded the monitor).
    pub paused: bool,
    /// `up`, `down`, `pending`, `maintenance` or `paused` (OPERATIONS.md
    /// "Monitors"); `None` before the first sample.
    pub state: Option<rollway_ops::MonitorStatus>,
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn row(name: &str, m: &MonitorConfig) -> MonitorRow {
    use rollway_config::MonitorCheck as C;
    let probes = match &m.check {
        C::Http(c) => c.url.clone(),
        C::Tcp(c) => c.address.clone(),
        C::Tls(c) => c.address.clone(),
        C::Dns(c) => format!("{} {}", c.record, c.name),
        C::Postgres(c) => format!("${}", c.url_secret),
        C::Push(_) => "(pushed: rollway monitor push)".to_owned(),
    };
    MonitorRow {
        name: name.to_owned(),
        environment: m.environment.clone(),
        target: m.target.clone(),
        kind: m.kind().as_str(),
        probes,
        interval_ms: millis(m.interval),
        timeout_ms: m.timeout.map(millis),
        retries: m.retries,
        location: m.location.clone(),
        paused: false,
        state: None,
    }
}

/// Every monitor of rollway.toml, by name, with each environment's default
/// domain monitor (`ENV-domain`).
pub fn list(p: &Project) -> Result<Vec<MonitorRow>> {
    let (config, store) = p.open()?;
    let paused: std::collections::BTreeSet<String> = store
        .monitors()?
        .into_iter()
        .filter(|r| r.paused)
        .map(|r| r.def.name)
        .collect();
    let states = crate::uptime::states(&config, &*store)?;
    Ok(config
        .all_monitors()
        .iter()
        .map(|(n, m)| MonitorRow {
            paused: paused.contains(n),
            state: states.get(n).copied(),
            ..row(n, m)
        })
        .collect())
}

/// The monitor `name` of rollway.toml, or an error listing the ones there are.
fn find<'a>(
    p: &Project,
    all: &'a std::collections::BTreeMap<String, MonitorConfig>,
    name: &str,
) -> Result<&'a MonitorConfig> {
    all.get(name).ok_or_else(|| {
        let known: Vec<&str> = all.keys().map(String::as_str).collect();
        Error::invalid(format_args!(
            "no monitor {name} in {}: the monitors are {}",
            p.config_path().display(),
            if known.is_empty() {
                "none (add a [monitors.NAME] table)".to_owned()
            } else {
                known.join(", ")
            }
        ))
    })
}

/// Pauses (or resumes) monitor `name`: a running `serve` stops (starts
/// again) probing it within a few seconds, and the paused stretch counts
/// as no data, never as downtime.
pub fn set_paused(p: &Project, name: &str, paused: bool) -> Result<MonitorRow> {
    let (config, store) = p.open()?;
    let all = config.all_monitors();
    let m = find(p, &all, name)?;
    if store.monitor(name)?.is_none() {
        store.put_monitor(&crate::serve::definition(name, m))?;
    }
    let record = store.set_monitor_paused(name, paused)?;
    Ok(MonitorRow {
        paused: record.paused,
        ..row(name, m)
    })
}

/// The answer of `monitor check NAME`.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    pub monitor: MonitorRow,
    pub sample: ProbeResult,
}

/// Probes monitor `name` once, now, as the schedule would (its timeout,
/// latency budget and location), and returns the sample; stores nothing.
/// A PostgreSQL monitor's URL is read from its environment's variables.
pub fn check(p: &Project, name: &str) -> Result<Checked> {
    let config = p.config()?;
    let all = config.all_monitors();
    let m = find(p, &all, name)?;
    let spec = spec(p, &config, name, m, None)?.ok_or_else(|| {
        Error::invalid(format_args!(
            "monitor {name} is a push monitor: nothing to probe; its samples arrive with `rollway monitor push {name}`"
        ))
    })?;
    let prober = Prober::new(Arc::new(SystemClock), ProberOptions::default())
        .map_err(|e| Error::failed(format_args!("cannot set up the probes: {e}")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::failed(format_args!("cannot start the probe runtime: {e}")))?;
    let timeout = spec.schedule.timeout;
    let mut sample = runtime
        .block_on(prober.probe(&spec.probe, timeout))
        .within_budget(spec.latency_budget)
        .at_location(spec.schedule.location.clone());
    // The error text may quote what the target answered: masked like every output.
    sample.error = sample.error.map(|e| p.masks().mask(&e));
    Ok(Checked {
        monitor: row(name, m),
        sample,
    })
}

/// The probe and schedule of monitor `name`; `None` for a push monitor.
/// A PostgreSQL URL is read through `store` (opened here when `None`, so a
/// one-off check opens the store only for such a monitor).
pub(crate) fn spec(
    p: &Project,
    config: &rollway_config::Config,
    name: &str,
    m: &MonitorConfig,
    store: Option<&dyn rollway_store::Store>,
) -> Result<Option<MonitorSpec>> {
    let resolve = |env: &str, key: &str| -> Result<String> {
        let opened;
        let store = match store {
            Some(s) => s,
            None => {
                opened = p.store()?;
                &*opened
            }
        };
        let values = p.env_values(config, store, env)?;
        values.into_iter().find(|(k, _)| k == key).map(|(_, v)| v).ok_or_else(|| {
            Error::invalid(format_args!(
                "monitor {name} reads its URL from {key}, which {env} does not set: run `rollway secrets set {env} {key}`"
            ))
        })
    };
    let mut failed: Option<Error> = None;
    let spec = rollway_ops::monitor_spec(name, m, |env, key| {
        resolve(env, key).map_err(|e| {
            let shown = e.to_string();
            failed = Some(e);
            shown
        })
    });
    match (spec, failed) {
        (_, Some(e)) => Err(e),
        (Ok(spec), None) => Ok(spec),
        (Err(e), None) => Err(Error::invalid(e)),
    }
}
