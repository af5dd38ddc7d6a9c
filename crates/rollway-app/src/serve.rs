//! The watching half of `rollway serve` (OPERATIONS.md "`rollway serve`"):
//! every configured monitor recorded in the store, the probed ones run by
//! `rollway_ops::Scheduler` with the real `Prober`, their samples written
//! to the store, rollups every minute and retention every hour, and the
//! stability windows a deployer left (`deploy --detach`, or interrupted)
//! watched to their verdict, as `rollway verify` would; a push monitor
//! with `on_silence = "down"` that stopped checking in gets an
//! `unavailable` sample for each slot it missed (`rollway_ops::PushSilence`),
//! until a push arrives; after each rollup the seed 003 metric records are
//! refreshed (`records.rs`). The HTTP
//! side (health, readiness, metrics) and the runtime are the server
//! crate's; this module needs a tokio runtime to run in, and owns no
//! socket and no signal.
//!
//! On SQLite exactly one `serve` runs per store: [`prepare`] takes
//! `DB.serve-lock` beside the database (a flock, with the holder's pid and
//! command line in it, like the store's open lock) and holds it until the
//! watcher stopped, and probes every monitor. On PostgreSQL several may
//! run and share the monitors: each is hashed into one of 64 shards
//! (`rollway_model::shards`), and every instance (`HOST:PID:RANDOM`)
//! claims shards up to its fair share with leases it renews on a heartbeat
//! (lease 15 s, or `ROLLWAY_SHARD_LEASE`; heartbeat a third of it), and
//! probes the monitors of the shards it holds — from the taking of a lease
//! until a tenth of a lease before it expires, slot by slot (the
//! scheduler's ownership windows), so a shard handed over (given back,
//! or taken from a killed instance once its lease expired) never has a
//! slot probed by both. An instance over its share (another joined) stops
//! probing the excess first, then gives it back; a stopping one gives
//! back everything once its last probe ended. Not owned is not paused:
//! `monitor pause` stays the operator's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rollway_config::{MonitorCheck, MonitorConfig, OnSilence};
use rollway_model::shards::{DEFAULT_SHARD_LEASE, DEFAULT_SHARDS, excess, heartbeat, probe_until, shard_list};
use rollway_model::time::Timestamp;
use rollway_model::uptime::Outcome;
use rollway_model::{Clock as _, ProbeSample};
use rollway_ops::{
    MonitorSpec, Prober, ProberOptions, PushSilence, SILENCE_BACKFILL, Sample, SampleSink, Scheduler, SchedulerOptions,
    SinkError,
};
use rollway_store::{Claimed, MonitorDef, Previous, RollupSettings, Store, StoreLocation, SystemClock};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{Code, Error, Result};
use crate::project::Project;
use crate::records::RecordInputs;

pub use crate::records::{MonthToDate, Refreshed};
pub use rollway_ops::{LagSummary, SchedulerStats};
pub use rollway_store::{Pruned, RollupReport};

/// How often rollups run (OPERATIONS.md: minutes settle 2 min after they end).
pub const ROLLUP_EVERY: Duration = Duration::from_secs(60);
/// How often retention runs.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3_600);
/// How often push monitors' silence is looked at: a missed check-in is
/// recorded within this of its grace running out.
pub const SILENCE_POLL: Duration = Duration::from_secs(1);
/// Missed check-ins written per monitor and look (a long silence found on
/// start is written over several).
const SILENCE_BATCH: usize = 1_000;
/// How long a readiness check waits for the store.
const STORE_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// What the watcher tells its caller as it runs: the server turns these
/// into metrics and log lines (nothing here prints).
pub trait ServeEvents: Send + Sync + 'static {
    /// Samples the store took (a batch is taken whole or not at all).
    fn recorded(&self, samples: &[ProbeSample]);
    /// A rollup run ended well.
    fn rolled_up(&self, report: &RollupReport);
    /// A retention run ended well.
    fn pruned(&self, pruned: &Pruned);
    /// The seed 003 metric records were refreshed after a rollup: what was
    /// written and each monitor's month to date.
    fn refreshed(&self, _refreshed: &Refreshed) {}
    /// Something failed and will be tried again: a sample batch, a rollup,
    /// a retention run, the missed check-ins of push monitors. `what` is
    /// `samples`, `rollup`, `prune` or `silence`.
    fn problem(&self, what: &'static str, message: &str);
    /// What failed works again (the store took the samples it refused).
    fn resumed(&self, what: &'static str, message: &str);
    /// A scheduled backup completed.
    fn backed_up(&self, message: &str);
    /// The backup schedules' latest outcomes, after each round.
    fn backup_schedules(&self, _states: &[crate::backup::ScheduleState]) {}
    /// A detached stability window of `environment`: watching it began, or
    /// its verdict (what `rollway verify` would have printed).
    fn window(&self, environment: &str, message: &str);
    /// Shard leases changed hands (PostgreSQL): which instance this is,
    /// shards taken (free, given back, or from an expired lease), given
    /// back or lost, and what this instance probes now.
    fn shards(&self, message: &str);
    /// A round of log collection ended: what each host gave. Output lost
    /// to rotation and failed hosts also come as `problem("logs", …)`.
    fn collected(&self, _collected: &[crate::logs::Collected]) {}
    /// A round of alert evaluation ended: what it opened, and how many
    /// alerts are unresolved per severity and type (every pair).
    fn alerts_evaluated(
        &self,
        _done: &crate::alerts::Evaluated,
        _open: &[(rollway_model::Severity, rollway_model::AlertType, usize)],
    ) {
    }
    /// A round of sending notifications ended.
    fn delivered(&self, _delivered: &crate::alerts::Delivered) {}
}

impl std::fmt::Debug for dyn ServeEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServeEvents")
    }
}

/// The environment variable that sets the shard lease (tests shorten it).
pub const SHARD_LEASE_VAR: &str = "ROLLWAY_SHARD_LEASE";

/// How this instance shares the monitors with the others on one
/// PostgreSQL store.
#[derive(Debug, Clone)]
struct Sharding {
    /// This instance: `HOST:PID:RANDOM`.
    owner: String,
    shards: u32,
    lease: Duration,
    heartbeat: Duration,
    /// The probed monitors, by shard.
    monitors: BTreeMap<u32, Vec<String>>,
    probed: usize,
}

impl Sharding {
    fn new(specs: &[MonitorSpec]) -> Result<Self> {
        let lease = match std::env::var(SHARD_LEASE_VAR) {
            Err(_) => DEFAULT_SHARD_LEASE,
            Ok(text) => rollway_model::time::parse_duration(&text)
                .ok()
                .filter(|d| *d >= Duration::from_millis(300))
                .ok_or_else(|| {
                    Error::invalid(format_args!(
                        "{SHARD_LEASE_VAR}={text} is not a shard lease: write a duration of 300ms or more, e.g. 15s"
                    ))
                })?,
        };
        let mut random = [0u8; 4];
        getrandom::fill(&mut random)
            .map_err(|e| Error::failed(format_args!("cannot draw a random instance id: {e}")))?;
        let random: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let mut monitors: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for s in specs {
            monitors
                .entry(rollway_model::shards::shard_of(&s.name, DEFAULT_SHARDS))
                .or_default()
                .push(s.name.clone());
        }
        Ok(Self {
            owner: format!("{}:{}:{random}", crate::project::hostname(), std::process::id()),
            shards: DEFAULT_SHARDS,
            lease,
            heartbeat: heartbeat(lease),
            monitors,
            probed: specs.len(),
        })
    }

    fn monitors_in(&self, shards: &BTreeSet<u32>) -> usize {
        shards.iter().filter_map(|s| self.monitors.get(s)).map(Vec::len).sum()
    }
}

/// This instance's share of the monitors (PostgreSQL).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShardStatus {
    /// This instance: `HOST:PID:RANDOM`.
    pub owner: String,
    pub shards: u32,
    /// Shards whose leases it holds now.
    pub owned: usize,
    /// Probed monitors in those shards.
    pub monitors: usize,
}

/// How often `serve` looks for stability windows nobody watches.
pub const WINDOW_POLL: Duration = Duration::from_secs(5);

/// A configured monitor as `serve` runs it.
#[derive(Debug, Clone, Serialize)]
pub struct ServedMonitor {
    pub name: String,
    pub environment: String,
    pub kind: &'static str,
    /// False for push monitors: recorded in the store, not probed here.
    pub probed: bool,
    pub paused: bool,
}

/// A project ready to be watched: the store open (and, on SQLite, held),
/// every monitor recorded, the probed ones built. Made outside the runtime
/// (it does blocking IO); [`Prepared::start`] runs it.
#[derive(Debug)]
pub struct Prepared {
    store: Arc<dyn Store>,
    specs: Vec<MonitorSpec>,
    monitors: Vec<ServedMonitor>,
    lock: Option<ServeLock>,
    windows: Windows,
    /// The environments' time zones: retention folds cron windows in them.
    zones: Arc<BTreeMap<String, jiff::tz::TimeZone>>,
    records: Arc<RecordInputs>,
    /// `None` on SQLite: the one `serve` probes every monitor.
    sharding: Option<Sharding>,
    silent: Arc<[SilentPush]>,
    logs: LogCollection,
}

/// What collecting log records needs (`logs.rs`): the project and its
/// config (each round opens the hosts' sessions as `rollway logs` does),
/// the period and the retention.
#[derive(Debug, Clone)]
struct LogCollection {
    project: Project,
    config: Arc<rollway_config::Config>,
    every: Duration,
    retention: Duration,
}

/// A push monitor that is `down` when it stops checking in.
#[derive(Debug, Clone)]
struct SilentPush {
    name: String,
    silence: PushSilence,
    location: Option<String>,
}

/// What watching detached stability windows needs: the project (its long
/// runs watching `flag`, which stopping sets so a window in progress is
/// detached again, not cut short) and the environments to look at.
#[derive(Debug, Clone)]
struct Windows {
    project: Project,
    environments: Vec<String>,
    flag: Arc<AtomicBool>,
}

impl Prepared {
    /// Every configured monitor, by name.
    pub fn monitors(&self) -> &[ServedMonitor] {
        &self.monitors
    }

    /// The store being watched, as people see it (`sqlite:PATH`, a URL without password).
    pub fn store(&self) -> String {
        self.store.location().to_string()
    }

    /// Starts probing, recording, rolling up and pruning; must be called
    /// within a tokio runtime.
    pub fn start(self, events: Arc<dyn ServeEvents>) -> Result<Watcher> {
        let clock: Arc<dyn rollway_model::Clock> = Arc::new(SystemClock);
        let prober = match Prober::new(clock.clone(), ProberOptions::default()) {
            Ok(p) => p,
            Err(e) => {
                close_elsewhere(self.store);
                return Err(Error::failed(format_args!("cannot set up the probes: {e}")));
            }
        };
        let sink = StoreSink {
            store: self.store.clone(),
            events: events.clone(),
            refused: Arc::new(AtomicBool::new(false)),
        };
        let paused: Vec<String> = self
            .monitors
            .iter()
            .filter(|m| m.probed && m.paused)
            .map(|m| m.name.clone())
            .collect();
        let options = SchedulerOptions {
            // Sharing: nothing is probed before the first claim says what
            // is this instance's.
            initially_owned: self.sharding.is_none(),
            ..SchedulerOptions::default()
        };
        let scheduler = match Scheduler::start(self.specs, prober, sink, clock, options) {
            Ok(s) => s,
            Err(e) => {
                close_elsewhere(self.store);
                return Err(Error::invalid(format_args!("cannot schedule the monitors: {e}")));
            }
        };
        for name in &paused {
            // Every name came from the specs the scheduler was given.
            let _ = scheduler.pause(name);
        }
        let state = Arc::new(Mutex::new(Maintenance::default()));
        let (stop, stop_rx) = watch::channel(false);
        let retention = self.logs.retention;
        let rollups = tokio::spawn(maintain(
            Job::Rollup,
            self.records.clone(),
            self.store.clone(),
            events.clone(),
            state.clone(),
            stop_rx.clone(),
        ));
        let prunes = tokio::spawn(maintain(
            Job::Prune(self.zones.clone(), retention),
            self.records.clone(),
            self.store.clone(),
            events.clone(),
            state.clone(),
            stop_rx.clone(),
        ));
        let scheduler = Arc::new(Mutex::new(Some(scheduler)));
        let shard_status = Arc::new(Mutex::new(self.sharding.as_ref().map(|s| ShardStatus {
            owner: s.owner.clone(),
            shards: s.shards,
            owned: 0,
            monitors: 0,
        })));
        let mut tasks = vec![rollups, prunes];
        if let Some(sharding) = self.sharding.clone() {
            tasks.push(tokio::spawn(share_shards(
                sharding,
                self.store.clone(),
                events.clone(),
                scheduler.clone(),
                shard_status.clone(),
                stop_rx.clone(),
            )));
        }
        tasks.push(tokio::spawn(watch_silence(
            self.silent,
            self.store.clone(),
            events.clone(),
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(collect_logs(
            self.logs,
            self.store.clone(),
            events.clone(),
            stop_rx.clone(),
        )));
        let project = self.windows.project.clone();
        // SQLite: the serve lock already makes this the only evaluator.
        let owner = self.sharding.as_ref().map(|s| s.owner.clone());
        tasks.push(tokio::spawn(evaluate_alerts(
            project.clone(),
            owner,
            self.store.clone(),
            events.clone(),
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(deliver_notifications(
            project,
            self.store.clone(),
            events.clone(),
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(run_backup_schedules(
            self.windows.project.clone(),
            self.store.clone(),
            self.sharding
                .as_ref()
                .map_or_else(|| "serve".to_owned(), |s| s.owner.clone()),
            events.clone(),
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(watch_windows(
            self.windows,
            self.store.clone(),
            events.clone(),
            scheduler.clone(),
            stop_rx,
        )));
        Ok(Watcher {
            inner: Arc::new(Inner {
                store: Mutex::new(Some(self.store)),
                monitors: self.monitors,
                scheduler,
                last_stats: Mutex::new(None),
                stopping: AtomicBool::new(false),
                stop,
                tasks: Mutex::new(tasks),
                maintenance: state,
                lock: Mutex::new(self.lock),
                sharding: self.sharding.map(|s| s.owner),
                shard_status,
                events,
            }),
        })
    }
}

/// Opens the project for `serve`: loads rollway.toml, opens the store,
/// takes the SQLite serve lock (a second `serve` on the same store is a
/// conflict, exit 3, naming the holder), records every monitor of
/// `Config::all_monitors` with `put_monitor`, and builds the probed ones
/// (a PostgreSQL monitor's URL is read from its environment's secrets).
pub fn prepare(p: &Project) -> Result<Prepared> {
    let (config, store) = p.open()?;
    let store: Arc<dyn Store> = Arc::from(store);
    let lock = match store.location() {
        StoreLocation::Sqlite(path) => Some(ServeLock::acquire(path)?),
        _ => None,
    };
    let records = Arc::new(RecordInputs::from_config(&config)?);
    let mut specs = Vec::new();
    let mut monitors = Vec::new();
    let mut silent = Vec::new();
    for (name, m) in config.all_monitors() {
        if let MonitorCheck::Push(push) = &m.check
            && push.on_silence == OnSilence::Down
        {
            silent.push(SilentPush {
                name: name.clone(),
                silence: PushSilence {
                    interval: m.interval,
                    grace: push.grace,
                },
                location: m.location.clone(),
            });
        }
        let spec = crate::monitors::spec(p, &config, &name, &m, Some(&*store))?;
        let record = store
            .put_monitor(&definition(&name, &m))
            .map_err(|e| Error::from(e).context(format!("cannot record monitor {name} in the store")))?;
        monitors.push(ServedMonitor {
            name: name.clone(),
            environment: m.environment.clone(),
            kind: m.kind().as_str(),
            probed: spec.is_some(),
            paused: record.paused,
        });
        specs.extend(spec);
    }
    // Error texts of samples pass the store's masker: arm it with every
    // secret the monitors' resolution read.
    store.set_masker(p.masks().masker());
    let sharding = match store.location() {
        StoreLocation::Postgres(_) => Some(Sharding::new(&specs)?),
        _ => None,
    };
    let every = match std::env::var(crate::logs::COLLECT_EVERY_VAR) {
        Err(_) => config.logs.collect_every,
        Ok(text) => rollway_model::time::parse_duration(&text)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                Error::invalid(format_args!(
                    "{}={text} is not a collection period: write a duration, e.g. 10s",
                    crate::logs::COLLECT_EVERY_VAR
                ))
            })?,
    };
    let logs = LogCollection {
        project: p.clone(),
        every,
        retention: config.logs.retention,
        config: Arc::new(config.clone()),
    };
    let flag = Arc::new(AtomicBool::new(false));
    let windows = Windows {
        project: p.with_interrupt(Arc::new(crate::project::Flag(flag.clone()))),
        environments: config.environments.keys().cloned().collect(),
        flag,
    };
    Ok(Prepared {
        store,
        specs,
        monitors,
        lock,
        windows,
        sharding,
        silent: silent.into(),
        records,
        zones: Arc::new(crate::uptime::zones(&config)?),
        logs,
    })
}

/// The shards of `c` grouped by whose they were, as people read them:
/// `0-31 (free)`, `32-63 (released by H:P:R)`, `5, 9 (lease of H:P:R expired)`.
fn taken_text(c: &Claimed) -> String {
    let mut groups: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for t in &c.taken {
        let why = match &t.previous {
            Previous::Free => "free".to_owned(),
            Previous::Released { owner, .. } => format!("released by {owner}"),
            Previous::Expired { owner, .. } => format!("lease of {owner} expired"),
        };
        groups.entry(why).or_default().push(t.shard);
    }
    groups
        .iter()
        .map(|(why, shards)| format!("{} ({why})", shard_list(shards)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every heartbeat: claims (renews, takes up to the fair share), sets each
/// probed monitor's ownership window in the scheduler from its shard's
/// lease — from the taking until a tenth of a lease before expiry, or none
/// — and gives back what is over the share once the scheduler stopped
/// starting it. A failed claim is reported and tried again at the next
/// beat; meanwhile the windows run out by themselves, so an instance cut
/// off from the store stops probing before anyone else may take over.
async fn share_shards(
    sh: Sharding,
    store: Arc<dyn Store>,
    events: Arc<dyn ServeEvents>,
    scheduler: Arc<Mutex<Option<Scheduler>>>,
    status: Arc<Mutex<Option<ShardStatus>>>,
    mut stop: watch::Receiver<bool>,
) {
    events.shards(&format!(
        "sharing the monitors as {} ({} shards, {} leases renewed every {})",
        sh.owner,
        sh.shards,
        rollway_model::time::format_duration(sh.lease),
        rollway_model::time::format_duration(sh.heartbeat)
    ));
    // What this instance held after its last beat, to tell a lost lease.
    let mut held: BTreeSet<u32> = BTreeSet::new();
    let mut ticks = tokio::time::interval(sh.heartbeat);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            _ = ticks.tick() => {}
        }
        let (s, owner, shards, lease) = (store.clone(), sh.owner.clone(), sh.shards, sh.lease);
        let claimed = match tokio::task::spawn_blocking(move || s.claim_shards(&owner, shards, lease)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                events.problem("shards", &format!("cannot renew the shard leases (trying again): {e}"));
                continue;
            }
            Err(e) => {
                events.problem("shards", &format!("renewing the shard leases panicked: {e}"));
                continue;
            }
        };
        let all: Vec<u32> = claimed.held.iter().map(|l| l.shard).collect();
        let over: Vec<u32> = excess(&all, claimed.fair_share).to_vec();
        let keep: BTreeMap<u32, &rollway_store::ShardLease> = claimed
            .held
            .iter()
            .filter(|l| !over.contains(&l.shard))
            .map(|l| (l.shard, l))
            .collect();
        {
            let guard = locked(&scheduler);
            let Some(sched) = guard.as_ref() else { return };
            let now = SystemClock.now();
            for (shard, names) in &sh.monitors {
                for name in names {
                    // Every name came from the specs the scheduler was given.
                    let _ = match keep.get(shard) {
                        Some(l) => sched.own(name, l.acquired_at, probe_until(l.expires_at, sh.lease)),
                        None => sched.disown(name, now),
                    };
                }
            }
        }
        let now_held: BTreeSet<u32> = keep.keys().copied().collect();
        let taken: BTreeSet<u32> = claimed.taken.iter().map(|t| t.shard).collect();
        let lost: Vec<u32> = held
            .iter()
            .filter(|s| !now_held.contains(s) && !over.contains(s))
            .copied()
            .collect();
        let holding = |held: &BTreeSet<u32>| {
            format!(
                "holding {} of {} shards ({} instance{}), probing {} of {} monitors",
                held.len(),
                sh.shards,
                claimed.owners,
                if claimed.owners == 1 { "" } else { "s" },
                sh.monitors_in(held),
                sh.probed
            )
        };
        if !lost.is_empty() {
            events.problem(
                "shards",
                &format!(
                    "lost shards {}: their leases expired before they were renewed; {}",
                    shard_list(&lost),
                    holding(&now_held)
                ),
            );
        }
        if !over.is_empty() {
            let (s, owner, give) = (store.clone(), sh.owner.clone(), over.clone());
            match tokio::task::spawn_blocking(move || s.release_shards(&owner, &give)).await {
                Ok(Ok(_)) => events.shards(&format!(
                    "gave back shards {} (a fair share is {} of {} with {} instances); {}",
                    shard_list(&over),
                    claimed.fair_share,
                    sh.shards,
                    claimed.owners,
                    holding(&now_held)
                )),
                // Not probed here any more either way; unreleased, they
                // expire within a lease.
                Ok(Err(e)) => events.problem("shards", &format!("cannot give back shards {}: {e}", shard_list(&over))),
                Err(e) => events.problem("shards", &format!("giving back shards panicked: {e}")),
            }
        }
        let fresh: Vec<u32> = taken.iter().filter(|s| now_held.contains(s)).copied().collect();
        if !fresh.is_empty() {
            events.shards(&format!("took shards {}; {}", taken_text(&claimed), holding(&now_held)));
        }
        if let Some(st) = locked(&status).as_mut() {
            st.owned = now_held.len();
            st.monitors = sh.monitors_in(&now_held);
        }
        held = now_held;
    }
}

/// Every [`SILENCE_POLL`] until stop: each push monitor of `pushes` (its
/// `on_silence` is `down`) whose latest sample is older than its interval
/// plus grace gets an `unavailable` sample ("no check-in since T") for
/// each slot it missed since, so the silence counts as downtime by the
/// ordinary arithmetic; the first push ends it. A monitor that never
/// checked in, or is paused, gets none. A failed write is reported and
/// made again at the next look (the slots are worked out from the store
/// each time, and the store keeps each slot once).
async fn watch_silence(
    pushes: Arc<[SilentPush]>,
    store: Arc<dyn Store>,
    events: Arc<dyn ServeEvents>,
    mut stop: watch::Receiver<bool>,
) {
    if pushes.is_empty() {
        return;
    }
    let mut ticks = tokio::time::interval(SILENCE_POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            _ = ticks.tick() => {}
        }
        let (s, p) = (store.clone(), pushes.clone());
        let location = store.location().to_string();
        match tokio::task::spawn_blocking(move || record_silences(&*s, &p)).await {
            Ok(Ok(samples)) if !samples.is_empty() => events.recorded(&samples),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => events.problem(
                "silence",
                &format!(
                    "cannot record the missed check-ins of push monitors in the store {location} (trying again in {}): {e}",
                    rollway_model::time::format_duration(SILENCE_POLL)
                ),
            ),
            Err(e) => events.problem("silence", &format!("recording missed check-ins panicked: {e}")),
        }
    }
}

/// One look at the silent push monitors: the samples written.
fn record_silences(
    store: &dyn Store,
    pushes: &[SilentPush],
) -> std::result::Result<Vec<ProbeSample>, rollway_store::StoreError> {
    let paused: std::collections::BTreeSet<String> = store
        .monitors()?
        .into_iter()
        .filter(|m| m.paused)
        .map(|m| m.def.name)
        .collect();
    let latest: std::collections::HashMap<String, ProbeSample> = store
        .latest_samples(None)?
        .into_iter()
        .map(|s| (s.monitor.clone(), s))
        .collect();
    let now = store.clock().now();
    let mut out = Vec::new();
    for p in pushes.iter().filter(|p| !paused.contains(&p.name)) {
        // Never checked in: there is no silence to speak of yet (no data).
        let Some(l) = latest.get(&p.name) else { continue };
        let since = rollway_ops::last_check_in(l);
        let batch: Vec<ProbeSample> = p
            .silence
            .missed(l.slot, now, SILENCE_BACKFILL, SILENCE_BATCH)
            .into_iter()
            .map(|slot| rollway_ops::silence_sample(&p.name, slot, since, p.location.clone()))
            .collect();
        if !batch.is_empty() {
            store.record_samples(&batch)?;
            out.extend(batch);
        }
    }
    Ok(out)
}

/// `rollway monitor pause|resume` as the store has them: each probed
/// monitor paused or resumed in the scheduler (a paused stretch has no
/// samples: no data, never downtime).
async fn apply_pauses(
    store: &Arc<dyn Store>,
    scheduler: &Arc<Mutex<Option<Scheduler>>>,
    events: &Arc<dyn ServeEvents>,
) {
    let s = store.clone();
    let records = match tokio::task::spawn_blocking(move || s.monitors()).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return events.problem("monitors", &format!("cannot read the monitors' pause state: {e}")),
        Err(e) => return events.problem("monitors", &format!("reading the monitors' pause state panicked: {e}")),
    };
    let guard = locked(scheduler);
    let Some(sched) = guard.as_ref() else { return };
    for r in records {
        let Ok(now) = sched.monitor(&r.def.name) else {
            // Not probed here (a push monitor, or one no longer configured).
            continue;
        };
        if now.paused != r.paused {
            let _ = if r.paused {
                sched.pause(&r.def.name)
            } else {
                sched.resume(&r.def.name)
            };
        }
    }
}

/// Whether `env` has a deployment in its stability window that its
/// deployer left (detached, nobody watching).
fn detached_window(store: &dyn Store, env: &str) -> std::result::Result<bool, rollway_store::StoreError> {
    for d in store.active_deployments(Some(env))? {
        if d.status() == rollway_model::DeploymentStatus::Verifying
            && store
                .verifications(d.id)?
                .last()
                .is_some_and(|v| v.detached_at.is_some())
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Progress of a window `serve` watches: the window's own steps are in the
/// event log; only the verdict goes to the caller.
struct Quiet;

impl rollway_engine::Progress for Quiet {
    fn step(&self, _host: Option<&str>, _message: &str) {}
    fn countdown(&self, _remaining: Duration) {}
}

/// Every `every` (`[logs] collect_every`, or `ROLLWAY_LOG_EVERY`) until
/// stop: one round of log collection on the blocking pool (`logs.rs`),
/// then one at once again while a host was left behind by its share of
/// the round. Failures and output lost to rotation are reported, and the
/// next round tries again from the stored cursors.
async fn collect_logs(
    logs: LogCollection,
    store: Arc<dyn Store>,
    events: Arc<dyn ServeEvents>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(logs.every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut behind = false;
    loop {
        if !behind {
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => return,
                _ = ticks.tick() => {}
            }
        } else if *stop.borrow() {
            return;
        }
        let (s, l) = (store.clone(), logs.clone());
        let round = tokio::task::spawn_blocking(move || {
            let environments = crate::logs::collected_environments(&l.config, &*s)?;
            Ok::<_, Error>(crate::logs::collect_round(
                &l.project,
                &l.config,
                &*s,
                &SystemClock,
                &environments,
            ))
        })
        .await;
        behind = false;
        match round {
            Ok(Ok((collected, failed))) => {
                for c in &collected {
                    if let Some(lost) = &c.lost {
                        events.problem("logs", &format!("{} on {}: {lost}", c.environment, c.host));
                    }
                }
                for f in &failed {
                    events.problem("logs", f);
                }
                behind = collected.iter().any(|c| c.behind);
                events.collected(&collected);
            }
            Ok(Err(e)) => events.problem("logs", &format!("cannot collect log records: {e}")),
            Err(e) => events.problem("logs", &format!("collecting log records panicked: {e}")),
        }
    }
}

/// Every [`WINDOW_POLL`], takes each detached stability window (one per
/// environment at a time) and watches it to its verdict on the blocking
/// pool, through the same use case as `rollway verify`. On stop, the flag
/// those runs watch is set: a window in progress is detached again (its
/// end and baselines stay stored) for the next `serve` or `rollway verify`.
async fn watch_windows(
    w: Windows,
    store: Arc<dyn Store>,
    events: Arc<dyn ServeEvents>,
    scheduler: Arc<Mutex<Option<Scheduler>>>,
    mut stop: watch::Receiver<bool>,
) {
    let busy: Arc<Mutex<std::collections::BTreeSet<String>>> = Arc::default();
    let mut running: Vec<JoinHandle<()>> = Vec::new();
    while !*stop.borrow() {
        apply_pauses(&store, &scheduler, &events).await;
        for env in &w.environments {
            if locked(&busy).contains(env) {
                continue;
            }
            let (s, e) = (store.clone(), env.clone());
            match tokio::task::spawn_blocking(move || detached_window(&*s, &e)).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => continue,
                Ok(Err(err)) => {
                    events.problem("windows", &format!("cannot look for detached windows of {env}: {err}"));
                    continue;
                }
                Err(err) => {
                    events.problem(
                        "windows",
                        &format!("looking for detached windows of {env} panicked: {err}"),
                    );
                    continue;
                }
            }
            locked(&busy).insert(env.clone());
            events.window(env, "watching its detached stability window");
            let (project, env, busy, events) = (w.project.clone(), env.clone(), busy.clone(), events.clone());
            running.push(tokio::task::spawn_blocking(move || {
                let verdict = match crate::deploy::verify(&project, &env, &Quiet) {
                    Ok(crate::deploy::Deployed::Succeeded { deployment, .. }) => {
                        format!("deployment {} succeeded: its stability window passed", deployment.id)
                    }
                    Ok(crate::deploy::Deployed::Detached { deployment, .. }) => {
                        format!("deployment {} detached again: serve is stopping", deployment.id)
                    }
                    Err(e) => e.to_string(),
                };
                events.window(&env, &verdict);
                locked(&busy).remove(&env);
            }));
        }
        running.retain(|h| !h.is_finished());
        tokio::select! {
            _ = stop.changed() => {}
            () = tokio::time::sleep(WINDOW_POLL) => {}
        }
    }
    w.flag.store(true, Ordering::SeqCst);
    for h in running {
        let _ = h.await;
    }
}

/// How often alert rules are evaluated: every 10 s, or
/// `ROLLWAY_ALERT_EVERY` (a duration such as `1s`; for tests).
pub fn alert_every() -> Duration {
    std::env::var("ROLLWAY_ALERT_EVERY")
        .ok()
        .and_then(|v| rollway_model::time::parse_duration(&v).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(Duration::from_secs(10))
}

/// How often backup schedules are looked at: every 30 s, or
/// `ROLLWAY_BACKUP_EVERY` (for tests).
fn backup_every() -> Duration {
    std::env::var("ROLLWAY_BACKUP_EVERY")
        .ok()
        .and_then(|v| rollway_model::time::parse_duration(&v).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(Duration::from_secs(30))
}

/// Every [`backup_every`], takes the scheduled backups that are due
/// (`backup::run_schedules`) on the blocking pool; each outcome is a line
/// on stderr (and the backup's own `backup-changed` events). A backup in
/// progress when serve stops runs to its end.
async fn run_backup_schedules(
    project: Project,
    store: Arc<dyn Store>,
    owner: String,
    events: Arc<dyn ServeEvents>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(backup_every());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            _ = ticks.tick() => {}
        }
        let (p, s, o) = (project.clone(), store.clone(), owner.clone());
        let round = tokio::task::spawn_blocking(move || {
            let runs = crate::backup::run_schedules(&p, &*s, &o)?;
            Ok::<_, Error>((runs, crate::backup::schedule_states(&p.config()?, &*s)?))
        });
        match round.await {
            Ok(Ok((runs, states))) => {
                events.backup_schedules(&states);
                for r in runs {
                    match r.result {
                        Ok(all) => {
                            for b in all {
                                events.backed_up(&format!(
                                    "scheduled backup {} ({}) of {} completed: {} bytes",
                                    r.name, b.id, r.due, b.size_bytes
                                ));
                            }
                        }
                        Err(e) => events.problem(
                            "backups",
                            &format!("scheduled backup {} of {} failed: {e}", r.name, r.due),
                        ),
                    }
                }
            }
            Ok(Err(e)) => events.problem("backups", &format!("cannot run the backup schedules: {e}")),
            Err(e) => events.problem("backups", &format!("the backup schedules panicked: {e}")),
        }
    }
}

/// How often due notifications are looked for.
pub const DELIVERY_POLL: Duration = Duration::from_secs(1);
/// The lease an evaluating instance holds: one instance evaluates at a time.
const ALERT_LOCK: &str = "alerts-evaluation";

/// Every [`alert_every`], evaluates the alert rules on the blocking pool
/// (`alerts::Evaluator`). On SQLite the serve lock makes this instance the
/// only one. Several instances on one PostgreSQL take turns:
/// each evaluation holds the `alerts-evaluation` lease (a store lock with
/// an expiry, so a killed holder's is taken over), and an instance that
/// finds it held skips that round. One evaluation at a time keeps the
/// trackers and the one-alert-per-(rule, subject) checks free of races
/// (the store's unique index backs them up).
async fn evaluate_alerts(
    project: Project,
    owner: Option<String>,
    store: Arc<dyn Store>,
    events: Arc<dyn ServeEvents>,
    mut stop: watch::Receiver<bool>,
) {
    let every = alert_every();
    let evaluator = Arc::new(Mutex::new(crate::alerts::Evaluator::new(project)));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut held: Option<rollway_model::Lock> = None;
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            _ = ticks.tick() => {}
        }
        let (s, e, owner, had) = (store.clone(), evaluator.clone(), owner.clone(), held.take());
        let ran = tokio::task::spawn_blocking(move || {
            let lease = every.saturating_mul(3).max(Duration::from_secs(60));
            // Renewed while this instance evaluates, never released between
            // rounds (a release is an event): another takes it over only
            // once this one stopped or died and its lease ran out.
            // What is unresolved, read by every instance each round (the
            // evaluating one included), for its `/metrics`.
            let with_counts = |r: Result<Option<crate::alerts::Evaluated>>| {
                r.and_then(|done| Ok((done, crate::alerts::open_counts(&*s)?)))
            };
            let Some(owner) = owner else {
                // SQLite: the one serve (no lease row, no write per round).
                return (None, with_counts(locked(&e).run(&*s).map(Some)));
            };
            let lock = match had.map(|l| s.renew_lock(&l, lease)) {
                Some(Ok(l)) => l,
                _ => {
                    let req = rollway_store::LockRequest {
                        name: ALERT_LOCK.to_owned(),
                        owner,
                        reason: "evaluating alert rules".to_owned(),
                        deployment_id: None,
                        lease,
                    };
                    match s.acquire_lock(&req) {
                        Ok(l) => l,
                        Err(rollway_store::StoreError::Locked(_)) => return (None, with_counts(Ok(None))),
                        Err(e) => return (None, Err(Error::from(e))),
                    }
                }
            };
            let result = locked(&e).run(&*s);
            (Some(lock), with_counts(result.map(Some)))
        })
        .await
        .map(|(lock, result)| {
            held = lock;
            result
        });
        match ran {
            Ok(Ok((Some(done), open))) => {
                for p in &done.problems {
                    events.problem("alerts", p);
                }
                events.alerts_evaluated(&done, &open);
            }
            Ok(Ok((None, open))) => events.alerts_evaluated(&crate::alerts::Evaluated::default(), &open),
            Ok(Err(e)) => events.problem("alerts", &format!("cannot evaluate the alert rules: {e}")),
            Err(e) => events.problem("alerts", &format!("evaluating the alert rules panicked: {e}")),
        }
    }
    if let Some(l) = held {
        let _ = tokio::task::spawn_blocking(move || store.release_lock(&l)).await;
    }
}
/// Every [`DELIVERY_POLL`], sends the notifications that are due
/// (`alerts::deliver_due`): claimed row by row, so instances never send
/// one twice; a delivery in flight when serve stops is finished (bounded
/// by the attempt timeout), one cut off by a kill is due again after its
/// claim's lease, with the same idempotency key.
async fn deliver_notifications(
    project: Project,
    store: Arc<dyn Store>,
    events: Arc<dyn ServeEvents>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(DELIVERY_POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            _ = ticks.tick() => {}
        }
        match crate::alerts::deliver_due(&project, store.clone(), 20).await {
            Ok(d) => events.delivered(&d),
            Err(e) => events.problem("notifications", &format!("cannot send notifications: {e}")),
        }
    }
}

/// What the store keeps of a monitor: its config as JSON, header values
/// hidden (they may carry a token) and a PostgreSQL URL as the name of the
/// variable holding it (the config never holds the URL).
pub(crate) fn definition(name: &str, m: &MonitorConfig) -> MonitorDef {
    let mut config = serde_json::to_value(m).unwrap_or(serde_json::Value::Null);
    if let Some(headers) = config.get_mut("headers").and_then(serde_json::Value::as_object_mut) {
        for v in headers.values_mut() {
            *v = serde_json::Value::String("****".to_owned());
        }
    }
    // A probed monitor's sample speaks for two intervals, so one skipped
    // slot (its previous probe still running) is not counted as no data;
    // a push monitor's for its interval plus grace (OPERATIONS.md).
    let coverage = match &m.check {
        MonitorCheck::Push(push) => m.interval + push.grace,
        _ => m.interval * 2,
    };
    MonitorDef {
        name: name.to_owned(),
        environment: m.environment.clone(),
        kind: m.kind().as_str().to_owned(),
        target: m.target.clone(),
        interval: m.interval,
        coverage,
        config,
    }
}

/// A running watcher; cheap to clone (the server's handlers and its
/// metrics collector each hold one).
#[derive(Debug, Clone)]
pub struct Watcher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// `None` once stopped. Taken out and dropped on the blocking pool:
    /// the PostgreSQL client blocks on its own runtime when it closes,
    /// which panics on a runtime thread.
    store: Mutex<Option<Arc<dyn Store>>>,
    monitors: Vec<ServedMonitor>,
    /// `None` once stopping took it. Shared with the task that applies
    /// `monitor pause|resume` as the store records them.
    scheduler: Arc<Mutex<Option<Scheduler>>>,
    /// The final counts, once stopped.
    last_stats: Mutex<Option<SchedulerStats>>,
    stopping: AtomicBool,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    maintenance: Arc<Mutex<Maintenance>>,
    /// Released after the last sample was written.
    lock: Mutex<Option<ServeLock>>,
    /// This instance's id when it shares shards (PostgreSQL): its leases
    /// are given back once the last sample was written.
    sharding: Option<String>,
    shard_status: Arc<Mutex<Option<ShardStatus>>>,
    events: Arc<dyn ServeEvents>,
}

/// The last rollup and retention runs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Maintenance {
    pub last_rollup_at: Option<Timestamp>,
    pub rollup_error: Option<String>,
    pub last_prune_at: Option<Timestamp>,
    pub prune_error: Option<String>,
}

/// The answer of a readiness check (`/readyz`).
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    /// The store answered and the scheduler runs.
    pub ready: bool,
    /// `running`, or `stopping` once shutdown began.
    pub scheduler: &'static str,
    /// `ok`, or why the store did not answer.
    pub store: String,
    pub monitors: usize,
    /// This instance's share of the monitors (PostgreSQL; absent on SQLite).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<ShardStatus>,
    pub last_sink_error: Option<String>,
    #[serde(flatten)]
    pub maintenance: Maintenance,
}

/// What stopping left.
#[derive(Debug, Clone)]
pub struct Stopped {
    pub stats: SchedulerStats,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Watcher {
    /// Every configured monitor, by name.
    pub fn monitors(&self) -> &[ServedMonitor] {
        &self.inner.monitors
    }

    /// The scheduler's counts (the final ones once stopped).
    pub fn stats(&self) -> Option<SchedulerStats> {
        if let Some(s) = locked(&self.inner.scheduler).as_ref() {
            return Some(s.stats());
        }
        locked(&self.inner.last_stats).clone()
    }

    /// This instance's share of the monitors; `None` on SQLite (it
    /// probes them all).
    pub fn shards(&self) -> Option<ShardStatus> {
        locked(&self.inner.shard_status).clone()
    }

    /// The last rollup and retention runs.
    pub fn maintenance(&self) -> Maintenance {
        locked(&self.inner.maintenance).clone()
    }

    /// Whether the store answers (within 5 s) and the scheduler runs.
    pub async fn readiness(&self) -> Readiness {
        // Cloned in a statement of its own: the guard must not live on
        // across the await below.
        let opened = locked(&self.inner.store).clone();
        let store = match opened {
            None => "closed: the watcher stopped".to_owned(),
            Some(store) => {
                let check = tokio::task::spawn_blocking(move || store.schema_version());
                match tokio::time::timeout(STORE_CHECK_TIMEOUT, check).await {
                    Ok(Ok(Ok(_))) => "ok".to_owned(),
                    Ok(Ok(Err(e))) => e.to_string(),
                    Ok(Err(e)) => format!("the store check panicked: {e}"),
                    Err(_) => format!(
                        "the store did not answer within {}",
                        rollway_model::time::format_duration(STORE_CHECK_TIMEOUT)
                    ),
                }
            }
        };
        let running = !self.inner.stopping.load(Ordering::SeqCst);
        Readiness {
            ready: running && store == "ok",
            scheduler: if running { "running" } else { "stopping" },
            store,
            monitors: self.inner.monitors.len(),
            shards: self.shards(),
            last_sink_error: self.stats().and_then(|s| s.last_sink_error),
            maintenance: self.maintenance(),
        }
    }

    /// Marks the watcher as stopping (readiness answers no from now on)
    /// while the caller winds down what runs in front of it.
    pub fn begin_stop(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
    }

    /// Starts nothing new, lets the probes in flight end (each bounded by
    /// its timeout), writes their samples, waits for a rollup or retention
    /// run in progress, then releases the serve lock. Once only: a second
    /// call returns the same final counts.
    pub async fn stop(&self) -> Stopped {
        self.inner.stopping.store(true, Ordering::SeqCst);
        let scheduler = locked(&self.inner.scheduler).take();
        if let Some(s) = scheduler {
            let stats = s.stop().await;
            *locked(&self.inner.last_stats) = Some(stats);
        }
        self.inner.stop.send_replace(true);
        let tasks: Vec<JoinHandle<()>> = locked(&self.inner.tasks).drain(..).collect();
        for t in tasks {
            let _ = t.await;
        }
        let store = locked(&self.inner.store).take();
        if let Some(store) = store {
            let owner = self.inner.sharding.clone();
            let left = tokio::task::spawn_blocking(move || {
                // Nothing probes any more: the shards are free for the
                // others at their next heartbeat, not a lease later.
                let left = owner.map(|o| store.leave_shards(&o));
                drop(store);
                left
            })
            .await;
            match left {
                Ok(None) => {}
                Ok(Some(Ok(n))) => {
                    self.inner.events.shards(&format!(
                        "gave back {n} shard{} (stopping)",
                        if n == 1 { "" } else { "s" }
                    ));
                }
                Ok(Some(Err(e))) => self.inner.events.problem(
                    "shards",
                    &format!("cannot give back the shard leases (they expire within a lease): {e}"),
                ),
                Err(e) => self
                    .inner
                    .events
                    .problem("shards", &format!("giving back the shard leases panicked: {e}")),
            }
            if let Some(st) = locked(&self.inner.shard_status).as_mut() {
                st.owned = 0;
                st.monitors = 0;
            }
        }
        locked(&self.inner.lock).take();
        Stopped {
            stats: self.stats().unwrap_or_else(|| empty_stats(self.inner.monitors.len())),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Not stopped (an error path): this may run on a runtime thread.
        if let Some(store) = self.store.get_mut().unwrap_or_else(PoisonError::into_inner).take() {
            close_elsewhere(store);
        }
    }
}

/// Drops `store` on a plain thread: on a runtime thread the PostgreSQL
/// client, which blocks on its own runtime to close, would panic.
fn close_elsewhere(store: Arc<dyn Store>) {
    let _ = std::thread::Builder::new()
        .name("rollway-store-close".into())
        .spawn(move || drop(store));
}

fn empty_stats(monitors: usize) -> SchedulerStats {
    SchedulerStats {
        monitors,
        paused: 0,
        started: 0,
        completed: 0,
        timed_out: 0,
        skipped_busy: 0,
        skipped_saturated: 0,
        missed: 0,
        not_owned: 0,
        paused_slots: 0,
        unowned_slots: 0,
        starting: 0,
        queued: 0,
        waiting: 0,
        sink_full: 0,
        recorded: 0,
        sink_errors: 0,
        last_sink_error: None,
        lost: 0,
        lag: LagSummary {
            count: 0,
            sum: Duration::ZERO,
            max: Duration::ZERO,
            buckets: Vec::new(),
            p50: None,
            p99: None,
        },
    }
}

/// The scheduler's sink: samples into the store, on the blocking pool.
struct StoreSink {
    store: Arc<dyn Store>,
    events: Arc<dyn ServeEvents>,
    /// The last batch was refused: the next one taken says so. (One
    /// writer calls the sink, one batch at a time.)
    refused: Arc<AtomicBool>,
}

/// A scheduler sample as the store keeps it.
fn probe_sample(s: &Sample) -> ProbeSample {
    let r = &s.result;
    ProbeSample {
        monitor: s.monitor.to_string(),
        slot: s.slot,
        at: r.at,
        outcome: r.outcome,
        http_status: r.http_status,
        // No answer, no latency: the time a refused or timed-out probe took
        // says nothing about the service.
        latency_ms: (r.outcome != Outcome::Unavailable).then_some(r.latency_ms),
        cache_status: r.cache_status,
        location: r.location.clone(),
        error: r.error.clone(),
    }
}

impl SampleSink for StoreSink {
    fn record(&self, batch: &[Sample]) -> impl Future<Output = std::result::Result<(), SinkError>> + Send {
        let samples: Vec<ProbeSample> = batch.iter().map(probe_sample).collect();
        let store = self.store.clone();
        let events = self.events.clone();
        let refused = self.refused.clone();
        async move {
            let n = samples.len();
            let location = store.location().to_string();
            let noun = if n == 1 { "sample" } else { "samples" };
            let written = tokio::task::spawn_blocking(move || {
                let r = store.record_samples(&samples);
                (samples, r)
            })
            .await;
            match written {
                Ok((samples, Ok(_))) => {
                    events.recorded(&samples);
                    if refused.swap(false, Ordering::SeqCst) {
                        events.resumed(
                            "samples",
                            &format!("the store {location} takes samples again: the refused ones are recorded"),
                        );
                    }
                    Ok(())
                }
                Ok((_, Err(e))) => {
                    refused.store(true, Ordering::SeqCst);
                    events.problem(
                        "samples",
                        &format!("cannot record {n} {noun} in the store {location}; they are kept and retried: {e}"),
                    );
                    Err(Box::new(e) as SinkError)
                }
                Err(e) => {
                    refused.store(true, Ordering::SeqCst);
                    let message = format!(
                        "cannot record {n} {noun} in the store {location}; they are kept and retried: the writer panicked: {e}"
                    );
                    events.problem("samples", &message);
                    Err(message.into())
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Job {
    Rollup,
    /// With the environments' time zones (to fold cron windows in) and
    /// the age past which log records go.
    Prune(Arc<BTreeMap<String, jiff::tz::TimeZone>>, Duration),
}

/// Runs `job` on the blocking pool: rollups at once and then every
/// minute, each followed by a refresh of the metric records, retention
/// every hour, until stop; a failure is reported and tried again at the
/// next tick.
async fn maintain(
    job: Job,
    records: Arc<RecordInputs>,
    store: Arc<dyn Store>,
    events: Arc<dyn ServeEvents>,
    state: Arc<Mutex<Maintenance>>,
    mut stop: watch::Receiver<bool>,
) {
    let (first, every) = match job {
        // A restart rolls up what the last run left at once; retention can
        // wait its hour (nothing grows fast enough to matter before).
        Job::Rollup => (tokio::time::Instant::now(), ROLLUP_EVERY),
        Job::Prune(..) => (tokio::time::Instant::now() + PRUNE_EVERY, PRUNE_EVERY),
    };
    let mut ticks = tokio::time::interval_at(first, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            _ = ticks.tick() => {}
        }
        let store = store.clone();
        let records = records.clone();
        let this = job.clone();
        let ran = tokio::task::spawn_blocking(move || match this {
            Job::Rollup => store
                .roll_up(&RollupSettings::default())
                .map(|r| Ran::Rollup(r, crate::records::refresh(&*store, &records, None))),
            Job::Prune(zones, logs) => crate::uptime::prune(&*store, &zones).and_then(|mut p| {
                p.logs = store.prune_log_records(logs, crate::logs::PRUNE_BATCH)?;
                Ok(Ran::Prune(p))
            }),
        })
        .await;
        let now = Some(SystemClock.now());
        let error = match ran {
            Ok(Ok(Ran::Rollup(r, refreshed))) => {
                events.rolled_up(&r);
                match refreshed {
                    Ok(x) => events.refreshed(&x),
                    Err(e) => events.problem(
                        "records",
                        &format!(
                            "cannot refresh the metric records (trying again in {}): {e}",
                            rollway_model::time::format_duration(every)
                        ),
                    ),
                }
                None
            }
            Ok(Ok(Ran::Prune(p))) => {
                events.pruned(&p);
                None
            }
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(format!("it panicked: {e}")),
        };
        let what = match job {
            Job::Rollup => "rollup",
            Job::Prune(..) => "prune",
        };
        if let Some(e) = &error {
            events.problem(
                what,
                &format!(
                    "{what} failed (trying again in {}): {e}",
                    rollway_model::time::format_duration(every)
                ),
            );
        }
        let mut s = locked(&state);
        match job {
            Job::Rollup => {
                s.last_rollup_at = now;
                s.rollup_error = error;
            }
            Job::Prune(..) => {
                s.last_prune_at = now;
                s.prune_error = error;
            }
        }
    }
}

enum Ran {
    /// The rollup and the metric records' refresh after it.
    Rollup(RollupReport, Result<Refreshed>),
    Prune(Pruned),
}

/// `DB.serve-lock` beside a SQLite database: held (flock) by the one
/// `serve` of that store for as long as it runs, with its pid and command
/// line inside so a second one can name it. The kernel drops the flock
/// when the process dies, so a killed `serve` never blocks the next.
#[derive(Debug)]
struct ServeLock {
    _held: rollway_fs::HolderLock,
}

impl ServeLock {
    fn acquire(db: &Path) -> Result<Self> {
        let me = rollway_fs::this_process("pid {pid}: {command}");
        match rollway_fs::HolderLock::acquire(&rollway_fs::beside(db, "serve-lock"), Duration::ZERO, &me) {
            Ok(held) => Ok(Self { _held: held }),
            Err(rollway_fs::HoldError::Held { holder, .. }) => Err(Error::new(
                Code::Conflict,
                anyhow::anyhow!(
                    "another rollway serve holds {} ({}): one serve runs per SQLite store; stop it first, or use PostgreSQL to run several",
                    db.display(),
                    holder.as_deref().unwrap_or("holder unknown")
                ),
            )),
            Err(e @ rollway_fs::HoldError::Io { .. }) => Err(Error::failed(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_second_serve_lock_names_the_first_holder_until_it_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("rollway.db");
        let first = ServeLock::acquire(&db).unwrap();
        let e = ServeLock::acquire(&db).unwrap_err();
        assert_eq!(e.code(), Code::Conflict);
        let text = e.to_string();
        let want = format!(
            "another rollway serve holds {} (pid {}: ",
            db.display(),
            std::process::id()
        );
        assert!(text.starts_with(&want), "{text}");
        drop(first);
        ServeLock::acquire(&db).unwrap();
        assert!(dir.path().join("rollway.db.serve-lock").exists());
    }
}
