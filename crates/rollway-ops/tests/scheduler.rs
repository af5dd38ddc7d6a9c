//! The scheduler in tokio's paused time: minutes of schedule for a thousand
//! monitors run in well under a second, and every figure below is a count
//! of virtual time, so none depends on the machine's speed.
//!
//! The probe here is a fake (a closure that sleeps in virtual time and
//! answers `ok`): these tests are about scheduling — slots, spread, skips,
//! stop, backpressure — not about probing, which `probes.rs` tests against
//! real peers. The last test runs the real `Prober` against a loopback
//! HTTP server for a few real seconds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rollway_model::uptime::Outcome;
use rollway_model::{Clock, Timestamp};
use rollway_ops::{
    Detail, HttpProbe, MonitorSpec, Probe, ProbeResult, ProbeSpec, Sample, SampleSink, Scheduler, SchedulerError,
    SchedulerOptions, SchedulerStats, SinkError, slot_phase,
};
use tokio::sync::watch;
use tokio::time::{Instant, sleep, sleep_until};

/// 2030-01-01T00:00:01.234Z: not on a multiple of any interval, so slots
/// are placed from the wall clock and not from the start.
const BASE: Timestamp = Timestamp::from_millis(1_893_456_001_234);
const S5: Duration = Duration::from_secs(5);

/// Wall time that follows tokio's clock (paused or not) from `BASE`.
#[derive(Debug)]
struct TokioClock {
    origin: Instant,
}

impl TokioClock {
    fn new() -> Arc<Self> {
        Arc::new(Self { origin: Instant::now() })
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        BASE.plus(self.origin.elapsed())
    }

    /// Nothing here sleeps on this clock: the scheduler sleeps on tokio's.
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// What the fake probe saw: each start (monitor, time since the origin)
/// and how many ended.
#[derive(Debug, Default)]
struct Calls {
    starts: Mutex<Vec<(String, Duration)>>,
    ended: AtomicU64,
}

impl Calls {
    fn starts_of(&self, name: &str) -> Vec<Duration> {
        let starts = self.starts.lock().unwrap();
        starts.iter().filter(|(n, _)| n == name).map(|&(_, t)| t).collect()
    }
}

/// How long the fake probe of a monitor takes; `None`: it never answers.
type Latency = fn(&str) -> Option<Duration>;

/// The fake probe: the monitor's name travels as a TCP probe's host.
fn fake(clock: Arc<TokioClock>, calls: Arc<Calls>, latency: Latency) -> impl Probe {
    move |spec: &ProbeSpec, _timeout: Duration| {
        let ProbeSpec::Tcp { host, .. } = spec else {
            panic!("the fake probes tcp specs only")
        };
        let at = clock.now();
        calls
            .starts
            .lock()
            .unwrap()
            .push((host.clone(), clock.origin.elapsed()));
        let took = latency(host);
        let calls = calls.clone();
        async move {
            match took {
                Some(d) => sleep(d).await,
                None => std::future::pending().await,
            }
            calls.ended.fetch_add(1, Ordering::SeqCst);
            ProbeResult {
                at,
                outcome: Outcome::Ok,
                http_status: None,
                latency_ms: took.map_or(0, |d| d.as_millis().try_into().unwrap()),
                cache_status: None,
                location: None,
                error: None,
                detail: Detail::None,
            }
        }
    }
}

fn monitor(name: &str, interval: Duration, timeout: Duration) -> MonitorSpec {
    let mut m = MonitorSpec::new(
        name,
        ProbeSpec::Tcp {
            host: name.to_owned(),
            port: 1,
        },
        interval,
    );
    m.schedule.timeout = timeout;
    m
}

fn monitors(n: usize, interval: Duration) -> Vec<MonitorSpec> {
    (0..n)
        .map(|i| monitor(&format!("m{i:04}"), interval, Duration::from_secs(2)))
        .collect()
}

/// A sink that keeps everything; closed, it blocks every batch until opened.
#[derive(Clone)]
struct Collect {
    samples: Arc<Mutex<Vec<Sample>>>,
    open: watch::Receiver<bool>,
    /// Batches to refuse before taking any.
    refuse: Arc<AtomicU64>,
    /// Samples handed over, taken or not yet (blocked in `record`).
    offered: Arc<AtomicU64>,
}

impl Collect {
    fn new() -> (Self, watch::Sender<bool>) {
        let (tx, open) = watch::channel(true);
        let sink = Self {
            samples: Arc::default(),
            open,
            refuse: Arc::default(),
            offered: Arc::default(),
        };
        (sink, tx)
    }

    fn by_monitor(&self) -> BTreeMap<String, Vec<Sample>> {
        let mut by: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
        for s in self.samples.lock().unwrap().iter() {
            by.entry(s.monitor.to_string()).or_default().push(s.clone());
        }
        by
    }
}

impl SampleSink for Collect {
    fn record(&self, batch: &[Sample]) -> impl Future<Output = Result<(), SinkError>> + Send {
        let batch = batch.to_vec();
        let this = self.clone();
        async move {
            let mut open = this.open.clone();
            this.offered.fetch_add(batch.len() as u64, Ordering::SeqCst);
            open.wait_for(|o| *o).await.unwrap();
            if this
                .refuse
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                this.offered.fetch_sub(batch.len() as u64, Ordering::SeqCst);
                return Err("the store is read-only".into());
            }
            this.samples.lock().unwrap().extend(batch);
            Ok(())
        }
    }
}

fn start(ms: Vec<MonitorSpec>, probe: impl Probe, sink: Collect, clock: Arc<TokioClock>) -> Scheduler {
    start_with(ms, probe, sink, clock, SchedulerOptions::default())
}

fn start_with(
    ms: Vec<MonitorSpec>,
    probe: impl Probe,
    sink: Collect,
    clock: Arc<TokioClock>,
    options: SchedulerOptions,
) -> Scheduler {
    Scheduler::start(ms, probe, sink, clock, options).unwrap()
}

/// How many slots of `m` fall in `[from, to)` after the start: the wall
/// times at `slot_phase` modulo the interval.
fn slots_between(m: &MonitorSpec, from: Duration, to: Duration) -> u64 {
    let iv = i64::try_from(m.schedule.interval.as_millis()).unwrap();
    let phase = i64::try_from(slot_phase(&m.name, m.schedule.interval).as_millis()).unwrap();
    let first = BASE.0 + (phase - BASE.0).rem_euclid(iv);
    let before = |t: Duration| {
        let end = BASE.plus(t).0;
        if end <= first { 0 } else { (end - first - 1) / iv + 1 }
    };
    u64::try_from(before(to) - before(from)).unwrap()
}

fn slots_until(ms: &[MonitorSpec], to: Duration) -> u64 {
    ms.iter().map(|m| slots_between(m, Duration::ZERO, to)).sum()
}

/// The first time from `near` on at which no monitor has a slot: looking
/// or stopping there races with no start.
fn between_slots(ms: &[MonitorSpec], near: Duration) -> Duration {
    let ms1 = Duration::from_millis(1);
    (0..)
        .map(|i| near + ms1 * i)
        .find(|&t| ms.iter().all(|m| slots_between(m, t, t + ms1) == 0))
        .unwrap()
}

/// Sleeps until `t` after the clock's origin.
async fn until(clock: &TokioClock, t: Duration) {
    sleep_until(clock.origin + t).await;
}

/// Every slot accounted for: each one ran, was skipped or missed, or fell
/// while paused.
fn slots_seen(s: &SchedulerStats) -> u64 {
    s.started + s.skipped_busy + s.skipped_saturated + s.missed + s.paused_slots + s.unowned_slots
}

#[tokio::test(start_paused = true)]
async fn a_thousand_monitors_at_5s_for_10_minutes_each_probed_once_per_slot_and_spread() {
    const N: usize = 1_000;
    let clock = TokioClock::new();
    let calls = Arc::new(Calls::default());
    let (sink, _open) = Collect::new();
    let ms = monitors(N, S5);
    let end = between_slots(&ms, Duration::from_secs(600));
    let scheduler = start(
        ms.clone(),
        fake(clock.clone(), calls.clone(), |_| Some(Duration::from_millis(40))),
        sink.clone(),
        clock.clone(),
    );
    until(&clock, end).await;
    let stats = scheduler.stop().await;

    let by = sink.by_monitor();
    assert_eq!(by.len(), N);
    for m in &ms {
        let samples = &by[&m.name];
        let slots: Vec<i64> = samples.iter().map(|s| s.slot.0).collect();
        // Exactly the slots of the 10 minutes (120), one sample each, one
        // interval apart, at the monitor's phase.
        assert_eq!(slots.len() as u64, slots_between(m, Duration::ZERO, end), "{}", m.name);
        assert!((120..=121).contains(&slots.len()), "{}", m.name);
        assert!(slots.windows(2).all(|w| w[1] - w[0] == 5_000), "{}: {slots:?}", m.name);
        let phase = i64::try_from(slot_phase(&m.name, S5).as_millis()).unwrap();
        assert_eq!(slots[0].rem_euclid(5_000), phase, "{}", m.name);
        assert!(slots[0] >= BASE.0 && slots[0] < BASE.0 + 5_000, "{}", m.name);
        for s in samples {
            // Started on time: the sample's time (the clock's) is its slot.
            assert_eq!((s.result.at, s.lag), (s.slot, Duration::ZERO), "{}", m.name);
        }
    }
    let total = slots_until(&ms, end);
    assert_eq!((stats.started, stats.completed, stats.recorded), (total, total, total));
    assert_eq!(calls.ended.load(Ordering::SeqCst), total);
    assert_eq!(slots_seen(&stats), total, "no slot skipped: {stats:?}");
    assert_eq!((stats.lost, stats.queued, stats.waiting, stats.timed_out), (0, 0, 0, 0));
    assert_eq!(
        (stats.lag.count, stats.lag.max, stats.lag.p99),
        (total, Duration::ZERO, Some(Duration::ZERO))
    );

    // Spread: 1,000 monitors over 50 buckets of 100 ms make 20 a bucket on
    // average; the hash keeps every bucket under twice that, and leaves
    // none of the interval empty.
    let mut per_bucket: BTreeMap<u128, u32> = BTreeMap::new();
    for (_, t) in calls.starts.lock().unwrap().iter() {
        *per_bucket.entry(t.as_millis() / 100).or_default() += 1;
    }
    let busiest = per_bucket.values().max().copied().unwrap();
    assert!(busiest <= 40, "{busiest} starts in one 100 ms bucket");
    let phases: std::collections::BTreeSet<u128> = per_bucket.keys().map(|b| b % 50).collect();
    assert_eq!(phases.len(), 50);
}

#[tokio::test(start_paused = true)]
async fn a_probe_slower_than_its_interval_skips_slots_and_a_hung_one_ends_at_its_timeout() {
    let clock = TokioClock::new();
    let calls = Arc::new(Calls::default());
    let (sink, _open) = Collect::new();
    // Hand-made: the config keeps timeouts under the interval, but a probe
    // may still outlast it (a late wake-up, a slow sink).
    let ms = vec![
        monitor("slow", S5, Duration::from_secs(30)),
        monitor("fast", S5, Duration::from_secs(2)),
        monitor("hung", S5, Duration::from_secs(2)),
    ];
    let end = between_slots(&ms, Duration::from_secs(60));
    let scheduler = start(
        ms.clone(),
        fake(clock.clone(), calls.clone(), |name| match name {
            "slow" => Some(Duration::from_secs(12)),
            "hung" => None,
            _ => Some(Duration::from_millis(100)),
        }),
        sink.clone(),
        clock.clone(),
    );
    until(&clock, end).await;
    let slow = scheduler.monitor("slow").unwrap();
    let fast = scheduler.monitor("fast").unwrap();
    let stats = scheduler.stop().await;

    // The 12 s probe runs in every third slot; the others are skipped.
    let n = |i: usize| slots_between(&ms[i], Duration::ZERO, end);
    let slow_runs = n(0).div_ceil(3);
    assert_eq!((slow.started, slow.skipped), (slow_runs, n(0) - slow_runs));
    assert_eq!((fast.started, fast.skipped), (n(1), 0));
    let starts = calls.starts_of("slow");
    assert!(
        starts.windows(2).all(|w| w[1] - w[0] == Duration::from_secs(15)),
        "never two at once, never made up: {starts:?}"
    );
    assert_eq!(stats.skipped_busy, n(0) - slow_runs);

    let by = sink.by_monitor();
    let hung = &by["hung"];
    assert_eq!((hung.len() as u64, stats.timed_out), (n(2), n(2)));
    for s in hung {
        assert_eq!(
            (
                s.result.outcome,
                s.result.error.as_deref(),
                s.result.latency_ms,
                s.result.at
            ),
            (Outcome::Unavailable, Some("hung:1 timed out after 2s"), 2_000, s.slot)
        );
    }
    assert_eq!(slots_seen(&stats), slots_until(&ms, end));
}

#[tokio::test(start_paused = true)]
async fn stop_lets_probes_in_flight_finish_and_starts_none() {
    let clock = TokioClock::new();
    let calls = Arc::new(Calls::default());
    let (sink, _open) = Collect::new();
    let mut ms = monitors(100, S5);
    ms.push(monitor("hung", S5, Duration::from_secs(4)));
    let stop_at = between_slots(&ms, Duration::from_millis(61_500));
    let scheduler = start(
        ms.clone(),
        fake(clock.clone(), calls.clone(), |name| {
            (name != "hung").then_some(Duration::from_millis(1_500))
        }),
        sink.clone(),
        clock.clone(),
    );
    until(&clock, stop_at).await;
    let in_flight = calls.starts.lock().unwrap().len() as u64 - calls.ended.load(Ordering::SeqCst);
    assert!(in_flight > 10, "the test stops with probes in flight ({in_flight})");
    let stats = scheduler.stop().await;
    let took = clock.origin.elapsed() - stop_at;

    // In flight ended by themselves (1.5 s) or at their timeout (4 s, hung).
    assert!(took > Duration::ZERO && took <= Duration::from_secs(4), "{took:?}");
    let starts = calls.starts.lock().unwrap();
    assert_eq!(
        starts.len() as u64,
        slots_until(&ms, stop_at),
        "one start per slot before the stop, none after"
    );
    assert_eq!(stats.started, starts.len() as u64);
    // Every start delivered: the fake ones that ended, and the hung ones.
    let hung = sink.by_monitor()["hung"].len() as u64;
    assert_eq!(
        (stats.completed, stats.recorded, stats.lost),
        (stats.started, stats.started, 0)
    );
    assert_eq!(calls.ended.load(Ordering::SeqCst) + hung, stats.started);
    assert_eq!(stats.timed_out, hung);
}

#[tokio::test(start_paused = true)]
async fn a_blocked_sink_holds_memory_to_the_channel_and_one_result_per_monitor_then_catches_up() {
    const N: u64 = 1_000;
    const CAPACITY: u64 = 64;
    let clock = TokioClock::new();
    let calls = Arc::new(Calls::default());
    let (sink, open) = Collect::new();
    open.send_replace(false);
    let ms = monitors(N as usize, S5);
    let look = between_slots(&ms, Duration::from_secs(300));
    let scheduler = start_with(
        ms.clone(),
        fake(clock.clone(), calls.clone(), |_| Some(Duration::from_millis(10))),
        sink.clone(),
        clock.clone(),
        SchedulerOptions {
            max_in_flight: 256,
            sink_capacity: CAPACITY as usize,
            ..SchedulerOptions::default()
        },
    );
    until(&clock, look).await;
    let blocked = scheduler.stats();
    let in_sink = sink.offered.load(Ordering::SeqCst);
    // Nothing stored, nothing lost: each result is in the sink's hands, in
    // the channel or waiting for room — and each of those is bounded.
    assert_eq!((blocked.recorded, blocked.lost), (0, 0));
    assert_eq!(blocked.completed, blocked.started);
    assert_eq!(
        in_sink + blocked.queued + blocked.waiting,
        blocked.completed,
        "{blocked:?}"
    );
    assert!(
        in_sink <= CAPACITY && blocked.queued == CAPACITY,
        "{in_sink} {blocked:?}"
    );
    assert!(blocked.waiting <= N);
    assert!(blocked.started <= 2 * CAPACITY + N, "{blocked:?}");
    // The backlog is reported: results found the channel full, slots skipped.
    assert_eq!(blocked.sink_full, blocked.waiting);
    assert_eq!(slots_seen(&blocked), slots_until(&ms, look));
    assert_eq!(blocked.skipped_busy, slots_until(&ms, look) - blocked.started);

    open.send_replace(true);
    let end = between_slots(&ms, look + Duration::from_secs(60));
    until(&clock, end).await;
    let stats = scheduler.stop().await;
    assert_eq!(
        (stats.recorded, stats.lost, stats.queued, stats.waiting),
        (stats.started, 0, 0, 0)
    );
    assert_eq!(sink.samples.lock().unwrap().len() as u64, stats.started);
    // Caught up: once the sink took the backlog, every slot ran again.
    let after = look + Duration::from_secs(5);
    let ran = sink
        .samples
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.slot >= BASE.plus(after))
        .count() as u64;
    let planned: u64 = ms.iter().map(|m| slots_between(m, after, end)).sum();
    assert_eq!(ran, planned);
}

#[tokio::test(start_paused = true)]
async fn a_refusing_sink_is_retried_and_nothing_is_lost() {
    let clock = TokioClock::new();
    let calls = Arc::new(Calls::default());
    let (sink, _open) = Collect::new();
    sink.refuse.store(3, Ordering::SeqCst);
    let scheduler = start(
        monitors(10, S5),
        fake(clock.clone(), calls.clone(), |_| Some(Duration::from_millis(10))),
        sink.clone(),
        clock.clone(),
    );
    sleep(Duration::from_secs(30)).await;
    let stats = scheduler.stop().await;
    assert_eq!((stats.sink_errors, stats.lost), (3, 0));
    assert_eq!(stats.last_sink_error.as_deref(), Some("the store is read-only"));
    assert!(stats.started >= 50, "{stats:?}");
    assert_eq!(stats.recorded, stats.started);
    assert_eq!(sink.samples.lock().unwrap().len() as u64, stats.started);
}

#[tokio::test(start_paused = true)]
async fn a_sink_refusing_at_stop_is_given_up_after_three_attempts_and_counted() {
    let clock = TokioClock::new();
    let calls = Arc::new(Calls::default());
    let (sink, _open) = Collect::new();
    sink.refuse.store(u64::MAX, Ordering::SeqCst);
    let scheduler = start(
        monitors(10, S5),
        fake(clock.clone(), calls.clone(), |_| Some(Duration::from_millis(10))),
        sink.clone(),
        clock.clone(),
    );
    sleep(Duration::from_secs(30)).await;
    let stats = scheduler.stop().await;
    assert_eq!((stats.recorded, stats.lost), (0, stats.started));
    assert!(stats.started >= 50 && stats.sink_errors >= 3, "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn saturated_probes_skip_slots_and_lag_stays_under_one_interval() {
    const N: u64 = 1_000;
    let clock = TokioClock::new();
    let calls = Arc::new(Calls::default());
    let (sink, _open) = Collect::new();
    let ms = monitors(N as usize, S5);
    let look = between_slots(&ms, Duration::from_secs(60));
    // Room for 10 one-second probes: 50 starts per 5 s for 1,000 monitors.
    let scheduler = start_with(
        ms.clone(),
        fake(clock.clone(), calls.clone(), |_| Some(Duration::from_secs(1))),
        sink.clone(),
        clock.clone(),
        SchedulerOptions {
            max_in_flight: 10,
            sink_capacity: 4_096,
            ..SchedulerOptions::default()
        },
    );
    until(&clock, look).await;
    let seen = scheduler.stats();
    let stats = scheduler.stop().await;
    assert_eq!(slots_seen(&seen) + seen.starting, slots_until(&ms, look), "{seen:?}");
    assert!(seen.starting > 0 && seen.skipped_saturated > N * 9, "{seen:?}");
    // At most 10 starts a second: the places bound them.
    assert!(seen.started <= 10 * (look.as_secs() + 1), "{seen:?}");
    assert!(stats.lag.max < S5, "{:?}", stats.lag);
    assert!(stats.lag.p50.unwrap() > Duration::ZERO);
    assert_eq!((stats.recorded, stats.starting), (stats.started, 0));
}

#[tokio::test(start_paused = true)]
async fn slots_passed_while_the_runtime_was_away_are_missed_not_made_up() {
    let clock = TokioClock::new();
    let calls = Arc::new(Calls::default());
    let (sink, _open) = Collect::new();
    let ms = monitors(1, S5);
    let away = between_slots(&ms, Duration::from_secs(17));
    let end = between_slots(&ms, Duration::from_secs(40));
    let scheduler = start(
        ms.clone(),
        fake(clock.clone(), calls.clone(), |_| Some(Duration::from_millis(10))),
        sink.clone(),
        clock.clone(),
    );
    // The clock jumps as after a suspended machine: no timer fires between.
    tokio::time::advance(away).await;
    until(&clock, end).await;
    let stats = scheduler.stop().await;

    // Of the slots while away, only the latest runs (late); the rest are
    // missed, once each.
    let while_away = slots_between(&ms[0], Duration::ZERO, away);
    let after = slots_between(&ms[0], away, end);
    assert_eq!((stats.missed, stats.started), (while_away - 1, 1 + after));
    let samples = &sink.by_monitor()["m0000"];
    let slots: Vec<i64> = samples.iter().map(|s| s.slot.0).collect();
    assert!(slots.windows(2).all(|w| w[1] - w[0] == 5_000), "{slots:?}");
    assert!(
        samples[0].lag > Duration::ZERO && samples[0].lag < S5,
        "{:?}",
        samples[0].lag
    );
    assert!(samples[1..].iter().all(|s| s.lag == Duration::ZERO));
}

#[tokio::test(start_paused = true)]
async fn a_paused_monitor_is_not_probed_until_resumed() {
    let clock = TokioClock::new();
    let calls = Arc::new(Calls::default());
    let (sink, _open) = Collect::new();
    let ms = monitors(2, S5);
    let pause = between_slots(&ms, Duration::from_secs(12));
    let resume = between_slots(&ms, Duration::from_secs(32));
    let end = between_slots(&ms, Duration::from_secs(60));
    let scheduler = start(
        ms.clone(),
        fake(clock.clone(), calls.clone(), |_| Some(Duration::from_millis(10))),
        sink,
        clock.clone(),
    );
    until(&clock, pause).await;
    scheduler.pause("m0000").unwrap();
    assert!(scheduler.monitor("m0000").unwrap().paused);
    until(&clock, resume).await;
    assert_eq!(scheduler.stats().paused, 1);
    scheduler.resume("m0000").unwrap();
    until(&clock, end).await;
    let stats = scheduler.stop().await;

    let starts = calls.starts_of("m0000");
    assert!(starts.iter().all(|t| !(pause..resume).contains(t)), "{starts:?}");
    let paused_slots = slots_between(&ms[0], pause, resume);
    assert_eq!(
        (starts.len() as u64, stats.paused_slots),
        (slots_between(&ms[0], Duration::ZERO, end) - paused_slots, paused_slots)
    );
    assert_eq!(paused_slots, 4);
    assert_eq!(
        calls.starts_of("m0001").len() as u64,
        slots_between(&ms[1], Duration::ZERO, end)
    );
}

/// Two schedulers sharing four monitors by ownership windows, as two
/// `serve`s sharing shard leases: A owns all until 20.5 s and renews two of
/// them, B takes the other two at 25 s; A gives one back at 35 s, B takes
/// it at 40 s. Every slot runs at most once over both, each where its
/// window says; the slots nobody owned are counted as not owned, not as
/// paused, and the operator's pause stays its own.
#[tokio::test(start_paused = true)]
async fn ownership_windows_split_the_slots_between_two_schedulers() {
    let clock = TokioClock::new();
    let (calls_a, calls_b) = (Arc::new(Calls::default()), Arc::new(Calls::default()));
    let (sink, _open) = Collect::new();
    let ms = monitors(4, S5);
    let names: Vec<&str> = ms.iter().map(|m| m.name.as_str()).collect();
    let unowned = SchedulerOptions {
        initially_owned: false,
        ..SchedulerOptions::default()
    };
    let ten_ms = |_: &str| Some(Duration::from_millis(10));
    let a = start_with(
        ms.clone(),
        fake(clock.clone(), calls_a.clone(), ten_ms),
        sink.clone(),
        clock.clone(),
        unowned,
    );
    let b = start_with(
        ms.clone(),
        fake(clock.clone(), calls_b.clone(), ten_ms),
        sink,
        clock.clone(),
        unowned,
    );
    assert_eq!((a.stats().not_owned, b.stats().not_owned), (4, 4));
    let at = |secs: f64| BASE.plus(Duration::from_secs_f64(secs));
    let forever = Timestamp::from_millis(i64::MAX);
    for n in &names {
        a.own(n, BASE, at(20.5)).unwrap();
    }
    assert_eq!(a.stats().not_owned, 0);
    until(&clock, Duration::from_secs(10)).await;
    for n in &names[..2] {
        a.own(n, BASE, at(30.5)).unwrap();
    }
    until(&clock, Duration::from_secs(25)).await;
    for n in &names[2..] {
        b.own(n, at(25.0), forever).unwrap();
    }
    b.pause(names[3]).unwrap();
    until(&clock, Duration::from_secs(28)).await;
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(
        (sa.not_owned, sa.paused, sb.not_owned, sb.paused),
        (2, 0, 2, 1),
        "not owned and paused are told apart"
    );
    assert!(!a.monitor(names[2]).unwrap().owned && b.monitor(names[2]).unwrap().owned);
    b.resume(names[3]).unwrap();
    // A gives m0000 back at 29 s (before its lease ends); B takes it at 40 s.
    until(&clock, Duration::from_secs(29)).await;
    a.disown(names[0], at(29.0)).unwrap();
    until(&clock, Duration::from_secs(40)).await;
    b.own(names[0], at(40.0), forever).unwrap();
    let end = Duration::from_secs(60);
    until(&clock, end).await;
    let (sa, sb) = (a.stop().await, b.stop().await);

    let secs = |v: Vec<Duration>| v.iter().map(Duration::as_secs_f64).collect::<Vec<f64>>();
    let windows: [(&str, f64, f64, f64, f64); 4] = [
        // (monitor, A from, A until, B from, B until)
        (names[0], 0.0, 29.0, 40.0, 60.0),
        (names[1], 0.0, 30.5, 60.0, 60.0),
        (names[2], 0.0, 20.5, 25.0, 60.0),
        (names[3], 0.0, 20.5, 28.0, 60.0), // paused on B until 28 s
    ];
    let mut gaps = 0;
    for (i, (name, a_from, a_until, b_from, b_until)) in windows.into_iter().enumerate() {
        let (on_a, on_b) = (secs(calls_a.starts_of(name)), secs(calls_b.starts_of(name)));
        assert!(
            on_a.iter().all(|t| (a_from..a_until).contains(t)),
            "{name} on A: {on_a:?}"
        );
        assert!(
            on_b.iter().all(|t| (b_from..b_until).contains(t)),
            "{name} on B: {on_b:?}"
        );
        let in_window = |from: f64, to: f64| {
            slots_between(
                &ms[i],
                Duration::from_secs_f64(from),
                Duration::from_secs_f64(to.max(from)),
            )
        };
        assert_eq!(
            (on_a.len() as u64, on_b.len() as u64),
            (in_window(a_from, a_until), in_window(b_from, b_until)),
            "{name}: every owned slot ran, on its owner only"
        );
        gaps += in_window(a_until, b_from.max(a_until));
    }
    // Every slot of every monitor: run once over both, or not owned by
    // one of them (each slot is seen by both schedulers).
    let all = slots_until(&ms, end);
    assert_eq!(sa.started + sb.started + gaps, all);
    assert_eq!(sa.started + sa.unowned_slots + sa.paused_slots, all);
    assert_eq!(
        sb.paused_slots,
        slots_between(&ms[3], Duration::from_secs(25), Duration::from_secs(28))
    );
    assert_eq!(sb.started + sb.unowned_slots + sb.paused_slots, all);
}

fn scheduler_error(r: Result<Scheduler, SchedulerError>) -> String {
    r.err().map(|e| e.to_string()).unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn duplicates_unknown_monitors_and_no_room_are_refused() {
    let clock = TokioClock::new();
    let calls = Arc::new(Calls::default());
    let attempt = |ms: Vec<MonitorSpec>, max_in_flight, sink_capacity| {
        scheduler_error(Scheduler::start(
            ms,
            fake(clock.clone(), calls.clone(), |_| None),
            Collect::new().0,
            clock.clone(),
            SchedulerOptions {
                max_in_flight,
                sink_capacity,
                ..SchedulerOptions::default()
            },
        ))
    };
    let twice = monitors(2, S5).into_iter().chain(monitors(1, S5)).collect();
    assert_eq!(attempt(twice, 1, 1), "monitor 'm0000' is scheduled twice");
    assert_eq!(
        attempt(vec![monitor("z", Duration::ZERO, Duration::ZERO)], 1, 1),
        "monitor 'z' has an interval of zero"
    );
    assert_eq!(
        attempt(monitors(1, S5), 0, 1),
        "the scheduler needs room for at least one probe in flight and one result (max_in_flight and sink_capacity are 0 and 1)"
    );
    assert!(attempt(monitors(1, S5), 1, 0).ends_with("are 1 and 0)"));

    let scheduler = start(
        monitors(1, S5),
        fake(clock.clone(), calls.clone(), |_| None),
        Collect::new().0,
        clock.clone(),
    );
    assert_eq!(
        scheduler.pause("nope").unwrap_err().to_string(),
        "no monitor 'nope' is scheduled"
    );
    assert!(scheduler.monitor("m0000").is_ok());
    scheduler.stop().await;
}

/// The real prober against real peers on loopback, for a few real seconds.
#[tokio::test]
async fn the_real_prober_on_a_loopback_server_for_a_few_seconds() {
    let server = support::HttpServer::start().await;
    let silent = support::silent_listener().await;
    let closed = support::closed_port().await;
    let clock = TokioClock::new();
    let prober = rollway_ops::Prober::new(clock.clone(), Default::default()).unwrap();
    let second = Duration::from_secs(1);
    let http = |name: &str, url: String| MonitorSpec::new(name, ProbeSpec::Http(HttpProbe::get(url)), second);
    let tcp = |name: &str, port: u16| {
        let host = "127.0.0.1".to_owned();
        MonitorSpec::new(name, ProbeSpec::Tcp { host, port }, second)
    };
    let mut ok = http("ok", server.url("/ok"));
    ok.schedule.location = Some("loopback".into());
    let monitors = vec![
        ok,
        http("fail", server.url("/fail")),
        tcp("closed", closed),
        tcp("silent-tcp", silent.port()),
        http("silent-http", format!("http://{silent}/")),
    ];
    let (sink, _open) = Collect::new();
    let scheduler = start(monitors, prober, sink.clone(), clock);
    sleep(Duration::from_millis(3_500)).await;
    let stats = scheduler.stop().await;

    let by = sink.by_monitor();
    let expect = [
        ("ok", Outcome::Ok, Some(200), ""),
        ("fail", Outcome::Error, Some(500), "status 500"),
        ("closed", Outcome::Unavailable, None, "cannot connect"),
        // A TCP monitor asks only for a connect, which the silent one accepts.
        ("silent-tcp", Outcome::Ok, None, ""),
        ("silent-http", Outcome::Unavailable, None, "timed out after 500ms"),
    ];
    for (name, outcome, status, error) in expect {
        let samples = &by[name];
        assert!(samples.len() >= 3, "{name}: {samples:?}");
        let slots: Vec<i64> = samples.iter().map(|s| s.slot.0).collect();
        assert!(slots.windows(2).all(|w| w[1] - w[0] == 1_000), "{name}: {slots:?}");
        for s in samples {
            let r = &s.result;
            assert_eq!((r.outcome, r.http_status), (outcome, status), "{name}: {r:?}");
            assert!(r.error.as_deref().unwrap_or("").contains(error), "{name}: {r:?}");
        }
    }
    assert_eq!(by["ok"][0].result.location.as_deref(), Some("loopback"));
    assert_eq!((stats.recorded, stats.lost), (stats.started, 0));
}
