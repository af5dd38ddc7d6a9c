//! The scheduler (OPERATIONS.md "Monitors": a probe never waits for
//! another): one tokio task per monitor plans one start per interval, a
//! semaphore bounds the probes in flight, and results travel through a
//! bounded channel to a [`SampleSink`].
//!
//! - **Jitter.** A monitor's starts fall where `hash(name) mod interval`
//!   says within each interval, on wall-clock time: 10,000 monitors at 5 s
//!   spread over the 5 s, and a restarted scheduler keeps every monitor's
//!   slots where they were ([`Sample::slot`] names the slot).
//! - **No backlog.** A slot is skipped, and counted, when the monitor's
//!   previous probe is still running or still waiting for the sink, when no
//!   probe place frees up before the next slot, or when the task woke up
//!   whole intervals late. A slot never runs twice and missed slots are
//!   never made up.
//! - **Lag** (actual start − planned start) goes to a histogram with
//!   p50/p99 ([`LagSummary`]).
//! - **Backpressure.** A full channel makes the probe's task wait (counted
//!   in `sink_full`, the waiting ones in `waiting`); its monitor skips slots
//!   meanwhile, so memory stays within the channel plus one result per
//!   monitor. A sink error is retried, never dropped while running.
//! - **Ownership.** When several schedulers share the monitors (shard
//!   leases, OPERATIONS.md "`rollway serve`"), each runs only the slots a
//!   monitor's ownership window `[from, until)` covers, compared with the
//!   slot's planned wall time, so a lease handed from one instance to
//!   another never has a slot run by both. Not owned is not paused: an
//!   operator's pause is kept apart, and counted apart.
//! - **Stop.** [`Scheduler::stop`] starts nothing new, lets the probes in
//!   flight end (each bounded by its timeout), delivers their results and
//!   returns the final counts.
//!
//! Sleeping goes through tokio's timer, so tests drive hours of schedule in
//! paused time; the times written on samples come from the model's `Clock`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rollway_model::Clock;
use rollway_model::names::shown;
use rollway_model::time::Timestamp;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, sleep_until};

use crate::lag::{LagRecorder, LagSummary};
use crate::{MonitorSpec, ProbeResult, ProbeSpec, Prober, result};

/// Probes in flight at once by default.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;
/// Results the channel to the sink holds by default.
pub const DEFAULT_SINK_CAPACITY: usize = 4_096;
/// The most results handed to the sink in one call.
pub const SINK_BATCH: usize = 256;
/// Attempts at a failing batch once stopping, before it is counted lost.
const STOP_ATTEMPTS: u32 = 3;
/// The longest wait between two attempts at a failing batch.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(10);

/// Runs one probe. [`Prober`] is the real one; tests of scheduling pass a
/// closure `Fn(&ProbeSpec, Duration) -> impl Future<Output = ProbeResult>`.
pub trait Probe: Send + Sync + 'static {
    fn probe(&self, spec: &ProbeSpec, timeout: Duration) -> impl Future<Output = ProbeResult> + Send;
}

impl Probe for Prober {
    fn probe(&self, spec: &ProbeSpec, timeout: Duration) -> impl Future<Output = ProbeResult> + Send {
        Prober::probe(self, spec, timeout)
    }
}

impl<F, Fut> Probe for F
where
    F: Fn(&ProbeSpec, Duration) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ProbeResult> + Send,
{
    fn probe(&self, spec: &ProbeSpec, timeout: Duration) -> impl Future<Output = ProbeResult> + Send {
        self(spec, timeout)
    }
}

/// One probe's result on its way to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub monitor: Arc<str>,
    /// The wall-clock time the slot was planned for: with the monitor, the
    /// key that makes a slot recorded at most once.
    pub slot: Timestamp,
    /// Actual start − planned start.
    pub lag: Duration,
    /// With the monitor's location set and its latency budget applied.
    pub result: ProbeResult,
}

/// Why a sink did not take a batch.
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// Where results go (the store, in `rollway serve`).
pub trait SampleSink: Send + Sync + 'static {
    /// Keeps `batch`, in order, or nothing of it: on `Err` the same batch is
    /// offered again after a wait (10 s at most), so keeping part of it
    /// must not record those samples twice (the store keys on monitor and
    /// slot).
    fn record(&self, batch: &[Sample]) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// How a scheduler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerOptions {
    /// Probes in flight at once.
    pub max_in_flight: usize,
    /// Results the channel to the sink holds.
    pub sink_capacity: usize,
    /// Whether every monitor starts owned for good (one scheduler runs
    /// them all), or owned by none until [`Scheduler::own`] says (the
    /// caller leases shards first).
    pub initially_owned: bool,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        Self {
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            sink_capacity: DEFAULT_SINK_CAPACITY,
            initially_owned: true,
        }
    }
}

/// Why a scheduler cannot start or a call cannot be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedulerError {
    #[error("monitor '{0}' is scheduled twice")]
    Duplicate(String),
    #[error("monitor '{0}' has an interval of zero")]
    ZeroInterval(String),
    #[error(
        "the scheduler needs room for at least one probe in flight and one result (max_in_flight and sink_capacity are {0} and {1})"
    )]
    ZeroCapacity(usize, usize),
    #[error("no monitor '{0}' is scheduled")]
    Unknown(String),
}

/// Counts since the start; see [`Scheduler::stats`].
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerStats {
    pub monitors: usize,
    /// Monitors paused by the operator.
    pub paused: usize,
    /// Monitors this scheduler does not own now (another instance's).
    pub not_owned: usize,
    /// Probes started (one per slot that ran).
    pub started: u64,
    /// Probes ended, their results handed to the channel or waiting for room.
    pub completed: u64,
    /// Probes the scheduler ended at their timeout.
    pub timed_out: u64,
    /// Slots skipped: the monitor's previous probe was still running or
    /// still waiting for the sink.
    pub skipped_busy: u64,
    /// Slots skipped: no probe place freed up before the next slot.
    pub skipped_saturated: u64,
    /// Slots that passed while the monitor's task was not running (woken
    /// whole intervals late).
    pub missed: u64,
    /// Slots of paused monitors.
    pub paused_slots: u64,
    /// Slots outside their monitor's ownership window (another
    /// instance's to run).
    pub unowned_slots: u64,
    /// Slots waiting for a probe place now (all places taken).
    pub starting: u64,
    /// Results in the channel.
    pub queued: u64,
    /// Results waiting for room in the channel now.
    pub waiting: u64,
    /// Results that found the channel full (and waited).
    pub sink_full: u64,
    /// Results the sink took.
    pub recorded: u64,
    /// Batches the sink refused (each retried).
    pub sink_errors: u64,
    pub last_sink_error: Option<String>,
    /// Results given up: refused by the sink while stopping.
    pub lost: u64,
    pub lag: LagSummary,
}

/// One monitor's counts; see [`Scheduler::monitor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorStats {
    /// Paused by the operator.
    pub paused: bool,
    /// Owned by this scheduler now.
    pub owned: bool,
    /// Whether its probe is running or its result waits for the sink.
    pub busy: bool,
    pub started: u64,
    /// Slots skipped, busy or saturated.
    pub skipped: u64,
}

/// A running scheduler. Dropping it without [`Scheduler::stop`] aborts the
/// monitor tasks; probes in flight still end and deliver.
#[derive(Debug)]
pub struct Scheduler {
    monitors: HashMap<String, Arc<Slot>>,
    counters: Arc<Counters>,
    clock: Arc<dyn Clock>,
    stop: watch::Sender<bool>,
    loops: JoinSet<()>,
    writer: JoinHandle<()>,
}

/// A monitor and what its task and its probes share.
#[derive(Debug)]
struct Slot {
    spec: MonitorSpec,
    name: Arc<str>,
    paused: AtomicBool,
    /// The ownership window `[owned_from, owned_until)`, wall-clock
    /// milliseconds of planned slots.
    owned_from: AtomicI64,
    owned_until: AtomicI64,
    busy: AtomicBool,
    started: AtomicU64,
    skipped: AtomicU64,
}

impl Slot {
    fn owns(&self, at: Timestamp) -> bool {
        // `own` writes `from` before `until`: a window read halfway is
        // empty or the old one, never wider than either.
        let until = self.owned_until.load(Ordering::SeqCst);
        let from = self.owned_from.load(Ordering::SeqCst);
        from <= at.as_millis() && at.as_millis() < until
    }
}

#[derive(Debug, Default)]
struct Counters {
    started: AtomicU64,
    completed: AtomicU64,
    timed_out: AtomicU64,
    skipped_busy: AtomicU64,
    skipped_saturated: AtomicU64,
    missed: AtomicU64,
    paused_slots: AtomicU64,
    unowned_slots: AtomicU64,
    starting: AtomicU64,
    queued: AtomicU64,
    waiting: AtomicU64,
    sink_full: AtomicU64,
    recorded: AtomicU64,
    sink_errors: AtomicU64,
    lost: AtomicU64,
    last_sink_error: Mutex<Option<String>>,
    lag: LagRecorder,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// What every monitor task needs besides its own slot.
struct Context<P> {
    probe: Arc<P>,
    clock: Arc<dyn Clock>,
    permits: Arc<Semaphore>,
    counters: Arc<Counters>,
    tx: mpsc::Sender<Sample>,
    stop: watch::Receiver<bool>,
    /// One reading of both clocks, so every monitor's slots are placed
    /// from the same instant.
    origin: Instant,
    origin_wall: Timestamp,
}

impl<P> Clone for Context<P> {
    fn clone(&self) -> Self {
        Self {
            probe: self.probe.clone(),
            clock: self.clock.clone(),
            permits: self.permits.clone(),
            counters: self.counters.clone(),
            tx: self.tx.clone(),
            stop: self.stop.clone(),
            origin: self.origin,
            origin_wall: self.origin_wall,
        }
    }
}

impl Scheduler {
    /// Starts probing `monitors` with `probe`, results to `sink`; must be
    /// called within a tokio runtime. `clock` stamps the results the
    /// scheduler makes itself (timeouts) and places the slots on wall time.
    pub fn start<P: Probe, S: SampleSink>(
        monitors: Vec<MonitorSpec>,
        probe: P,
        sink: S,
        clock: Arc<dyn Clock>,
        options: SchedulerOptions,
    ) -> Result<Self, SchedulerError> {
        if options.max_in_flight == 0 || options.sink_capacity == 0 {
            return Err(SchedulerError::ZeroCapacity(
                options.max_in_flight,
                options.sink_capacity,
            ));
        }
        let mut slots = HashMap::with_capacity(monitors.len());
        for spec in monitors {
            if spec.schedule.interval.is_zero() {
                return Err(SchedulerError::ZeroInterval(shown(&spec.name)));
            }
            let slot = Arc::new(Slot {
                name: Arc::from(spec.name.as_str()),
                spec,
                paused: AtomicBool::new(false),
                owned_from: AtomicI64::new(i64::MIN),
                owned_until: AtomicI64::new(if options.initially_owned { i64::MAX } else { i64::MIN }),
                busy: AtomicBool::new(false),
                started: AtomicU64::new(0),
                skipped: AtomicU64::new(0),
            });
            if slots.insert(slot.spec.name.clone(), slot.clone()).is_some() {
                return Err(SchedulerError::Duplicate(shown(&slot.spec.name)));
            }
        }
        let (stop, stop_rx) = watch::channel(false);
        let (tx, rx) = mpsc::channel(options.sink_capacity);
        let counters = Arc::new(Counters::default());
        let cx = Context {
            probe: Arc::new(probe),
            origin: Instant::now(),
            origin_wall: clock.now(),
            clock: clock.clone(),
            permits: Arc::new(Semaphore::new(options.max_in_flight)),
            counters: counters.clone(),
            tx,
            stop: stop_rx.clone(),
        };
        let mut loops = JoinSet::new();
        for slot in slots.values() {
            loops.spawn(run_monitor(cx.clone(), slot.clone()));
        }
        let writer = tokio::spawn(write(sink, rx, counters.clone(), stop_rx));
        Ok(Self {
            monitors: slots,
            counters,
            clock,
            stop,
            loops,
            writer,
        })
    }

    /// Stops starting probes of `name` until [`Scheduler::resume`]; a
    /// probe in flight ends normally.
    pub fn pause(&self, name: &str) -> Result<(), SchedulerError> {
        self.slot(name)?.paused.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Starts probing `name` again from its next slot.
    pub fn resume(&self, name: &str) -> Result<(), SchedulerError> {
        self.slot(name)?.paused.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// Runs the slots of `name` planned in `[from, until)` (wall time) and
    /// no other: a shard lease renewed extends `until`; one newly taken
    /// starts at `from`, its taking.
    pub fn own(&self, name: &str, from: Timestamp, until: Timestamp) -> Result<(), SchedulerError> {
        let slot = self.slot(name)?;
        // `from` first: see `Slot::owns`.
        slot.owned_from.store(from.as_millis(), Ordering::SeqCst);
        slot.owned_until.store(until.as_millis(), Ordering::SeqCst);
        Ok(())
    }

    /// Runs no slot of `name` planned at `at` or later (a lease given back
    /// or lost).
    pub fn disown(&self, name: &str, at: Timestamp) -> Result<(), SchedulerError> {
        let slot = self.slot(name)?;
        slot.owned_until.fetch_min(at.as_millis(), Ordering::SeqCst);
        Ok(())
    }

    fn slot(&self, name: &str) -> Result<&Slot, SchedulerError> {
        self.monitors
            .get(name)
            .map(Arc::as_ref)
            .ok_or_else(|| SchedulerError::Unknown(shown(name)))
    }

    /// One monitor's counts.
    pub fn monitor(&self, name: &str) -> Result<MonitorStats, SchedulerError> {
        let s = self.slot(name)?;
        Ok(MonitorStats {
            paused: s.paused.load(Ordering::Relaxed),
            owned: s.owns(self.clock.now()),
            busy: s.busy.load(Ordering::Relaxed),
            started: s.started.load(Ordering::Relaxed),
            skipped: s.skipped.load(Ordering::Relaxed),
        })
    }

    /// The counts so far.
    pub fn stats(&self) -> SchedulerStats {
        let c = &self.counters;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let now = self.clock.now();
        SchedulerStats {
            monitors: self.monitors.len(),
            paused: self
                .monitors
                .values()
                .filter(|s| s.paused.load(Ordering::Relaxed))
                .count(),
            not_owned: self.monitors.values().filter(|s| !s.owns(now)).count(),
            started: n(&c.started),
            completed: n(&c.completed),
            timed_out: n(&c.timed_out),
            skipped_busy: n(&c.skipped_busy),
            skipped_saturated: n(&c.skipped_saturated),
            missed: n(&c.missed),
            paused_slots: n(&c.paused_slots),
            unowned_slots: n(&c.unowned_slots),
            starting: n(&c.starting),
            queued: n(&c.queued),
            waiting: n(&c.waiting),
            sink_full: n(&c.sink_full),
            recorded: n(&c.recorded),
            sink_errors: n(&c.sink_errors),
            last_sink_error: c.last_sink_error.lock().unwrap_or_else(PoisonError::into_inner).clone(),
            lost: n(&c.lost),
            lag: c.lag.summary(),
        }
    }

    /// Starts nothing new, waits for the probes in flight (each bounded by
    /// its timeout) and for the sink to take their results, then returns
    /// the final counts.
    pub async fn stop(mut self) -> SchedulerStats {
        // The receivers see the change even if one of them is gone.
        self.stop.send_replace(true);
        while self.loops.join_next().await.is_some() {}
        // The monitor tasks held the channel's other senders; the probes
        // still in flight hold theirs until they delivered, and the writer
        // ends once every sender is gone and the channel is empty.
        if (&mut self.writer).await.is_err() {
            *self
                .counters
                .last_sink_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some("the sink panicked".to_owned());
        }
        self.stats()
    }
}

/// Where a monitor's slots fall: at the wall-clock times (milliseconds
/// since the epoch) equal to this modulo the interval. A hash of the name,
/// so the place is the same on every run, every instance and every version.
pub fn slot_phase(name: &str, interval: Duration) -> Duration {
    let interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(phase(name, interval_ms))
}

fn phase(name: &str, interval_ms: u64) -> u64 {
    rollway_model::shards::stable_hash(name) % interval_ms
}

/// Resolves once stop is asked for (or the scheduler is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// One monitor's schedule: its slots, one after the other, until stop.
async fn run_monitor<P: Probe>(mut cx: Context<P>, slot: Arc<Slot>) {
    let interval_ms = u64::try_from(slot.spec.schedule.interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let ms = |n: u64| Duration::from_millis(n);
    // The first slot at or after the origin whose wall time is the
    // monitor's phase modulo its interval.
    let wall_now = u64::try_from(cx.origin_wall.0).unwrap_or(0);
    let first_ms = (phase(&slot.name, interval_ms) + interval_ms - wall_now % interval_ms) % interval_ms;
    let c = &cx.counters;
    let mut k: u64 = 0;
    loop {
        let Some(planned) = cx.origin.checked_add(ms(first_ms + k * interval_ms)) else {
            return;
        };
        tokio::select! {
            biased;
            () = stopped(&mut cx.stop) => return,
            () = sleep_until(planned) => {}
        }
        // Woken whole intervals late (a blocked runtime, a suspended
        // machine): those slots are gone, not owed.
        let behind = u64::try_from(Instant::now().saturating_duration_since(planned).as_millis()).unwrap_or(u64::MAX)
            / interval_ms;
        if behind > 0 {
            bump(&c.missed, behind);
            k += behind;
        }
        let offset = first_ms + k * interval_ms;
        k += 1;
        let (Some(planned), Some(next)) = (
            cx.origin.checked_add(ms(offset)),
            cx.origin.checked_add(ms(offset + interval_ms)),
        ) else {
            return;
        };
        let slot_at = cx.origin_wall.plus(ms(offset));
        if !slot.owns(slot_at) {
            bump(&c.unowned_slots, 1);
            continue;
        }
        if slot.paused.load(Ordering::Relaxed) {
            bump(&c.paused_slots, 1);
            continue;
        }
        if slot.busy.load(Ordering::Acquire) {
            bump(&c.skipped_busy, 1);
            bump(&slot.skipped, 1);
            continue;
        }
        bump(&c.starting, 1);
        let permit = tokio::select! {
            biased;
            () = stopped(&mut cx.stop) => None,
            permit = cx.permits.clone().acquire_owned() => permit.ok(),
            () = sleep_until(next) => {
                bump(&c.skipped_saturated, 1);
                bump(&slot.skipped, 1);
                c.starting.fetch_sub(1, Ordering::Relaxed);
                continue;
            }
        };
        c.starting.fetch_sub(1, Ordering::Relaxed);
        // Stopping (the semaphore is never closed).
        let Some(permit) = permit else {
            return;
        };
        let lag = Instant::now().saturating_duration_since(planned);
        c.lag.record(lag);
        bump(&c.started, 1);
        bump(&slot.started, 1);
        slot.busy.store(true, Ordering::Release);
        tokio::spawn(run_probe(cx.clone(), slot.clone(), permit, slot_at, lag));
    }
}

/// Clears a monitor's busy flag when its probe's task ends, a panic included.
struct Busy(Arc<Slot>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}

/// One probe, bounded by its timeout, then its result into the channel.
async fn run_probe<P: Probe>(
    cx: Context<P>,
    slot: Arc<Slot>,
    permit: OwnedSemaphorePermit,
    at: Timestamp,
    lag: Duration,
) {
    let busy = Busy(slot);
    let spec = &busy.0.spec;
    let c = &cx.counters;
    let timeout = spec.schedule.timeout;
    let began = Instant::now();
    let stamped = cx.clock.now();
    let result = match tokio::time::timeout(timeout, cx.probe.probe(&spec.probe, timeout)).await {
        Ok(r) => r,
        Err(_) => {
            bump(&c.timed_out, 1);
            result::timed_out(&spec.probe, timeout).finish(stamped, began.elapsed())
        }
    };
    // The place is for probing; waiting for the sink does not hold it.
    drop(permit);
    bump(&c.completed, 1);
    let sample = Sample {
        monitor: busy.0.name.clone(),
        slot: at,
        lag,
        result: result
            .within_budget(spec.latency_budget)
            .at_location(spec.schedule.location.clone()),
    };
    let sent = match cx.tx.try_send(sample) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(sample)) => {
            bump(&c.sink_full, 1);
            bump(&c.waiting, 1);
            let sent = cx.tx.send(sample).await.is_ok();
            c.waiting.fetch_sub(1, Ordering::Relaxed);
            sent
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    };
    if sent {
        bump(&c.queued, 1);
    } else {
        // The writer ends only once every sender is gone, and this task
        // holds one: unreachable, but counted rather than assumed.
        bump(&c.lost, 1);
    }
}

/// Hands the channel's results to the sink in batches until every sender
/// is gone; a refused batch is offered again, with growing waits.
async fn write<S: SampleSink>(
    sink: S,
    mut rx: mpsc::Receiver<Sample>,
    c: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(SINK_BATCH);
    while rx.recv_many(&mut batch, SINK_BATCH).await > 0 {
        let n = batch.len() as u64;
        c.queued.fetch_sub(n, Ordering::Relaxed);
        let mut attempts = 0u32;
        loop {
            match sink.record(&batch).await {
                Ok(()) => {
                    bump(&c.recorded, n);
                    break;
                }
                Err(e) => {
                    attempts += 1;
                    bump(&c.sink_errors, 1);
                    *c.last_sink_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
                    if *stop.borrow() && attempts >= STOP_ATTEMPTS {
                        bump(&c.lost, n);
                        break;
                    }
                    let wait = Duration::from_millis(100u64 << attempts.min(10)).min(MAX_RETRY_WAIT);
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        // Stopping: try again now rather than after the wait.
                        () = stopped(&mut stop), if !*stop.borrow() => {}
                    }
                }
            }
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_stable_and_within_the_interval() {
        // Fixed: a change would move every monitor's slots on upgrade.
        assert_eq!(
            [
                phase("api", 5_000),
                phase("api", 60_000),
                phase("production-domain", 60_000)
            ],
            [4_607, 34_607, 27_119]
        );
        let phases: Vec<u64> = (0..1_000).map(|i| phase(&format!("m{i}"), 5_000)).collect();
        assert!(phases.iter().all(|&p| p < 5_000));
        // Names that differ in their last character spread over the interval:
        // every tenth of it gets some of them.
        let mut tenths = [0u32; 10];
        for p in &phases {
            tenths[usize::try_from(p / 500).unwrap()] += 1;
        }
        assert!(tenths.iter().all(|&n| (60..=140).contains(&n)), "{tenths:?}");
    }
}
