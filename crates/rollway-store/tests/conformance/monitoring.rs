//! Conformance cases for monitors, probe samples, rollups and retention
//! (OPERATIONS.md "Samples and rollups"). Each case runs on both backends
//! through the `conformance!` list in `conformance.rs`. Rollups are checked
//! against the model's arithmetic over the raw samples: the same counts and
//! latency sketch, and the same downtime and no-data time as
//! `rollway_model::uptime` gives.

use std::collections::BTreeMap;
use std::time::Duration;

use rollway_model::rollup::{Rollup, merge_all};
use rollway_model::sketch::LatencySketch;
use rollway_model::spans::{Span, Spans};
use rollway_model::uptime::{Outcome, UptimeInput, uptime};
use rollway_model::{CacheStatus, ManualClock, ProbeSample, Timestamp};
use rollway_store::{
    MonitorDef, MonitorRecord, RecordedSamples, Resolution, Retention, RollupSettings, Store, StoreError,
};
use serde_json::json;

const S: i64 = 1000;
const MIN: i64 = 60 * S;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// 2026-04-01T00:00:00Z: a 30-day month.
const APRIL: i64 = 1_775_001_600_000;
const MAY: i64 = APRIL + 30 * DAY;
const COVERAGE: Duration = Duration::from_secs(15);

fn def(name: &str, env: &str) -> MonitorDef {
    MonitorDef {
        name: name.to_owned(),
        environment: env.to_owned(),
        kind: "http".into(),
        target: "frontend".into(),
        interval: Duration::from_secs(5),
        coverage: COVERAGE,
        config: json!({"url": format!("https://{name}.example.com/health")}),
    }
}

/// Retention without maintenance windows.
fn no_windows(_: &MonitorRecord, _: Span) -> Spans {
    Spans::new()
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// A sample at `slot`: `o` ok (200), `e` error (503), `4` error (404), `u`
/// unavailable.
fn sample(monitor: &str, slot: i64, kind: char, latency: u64) -> ProbeSample {
    let outcome = match kind {
        'o' => Outcome::Ok,
        'e' | '4' => Outcome::Error,
        _ => Outcome::Unavailable,
    };
    let mut s = ProbeSample::new(monitor, ts(slot), outcome);
    s.at = ts(slot + 3);
    if outcome != Outcome::Unavailable {
        s.http_status = Some(match kind {
            'o' => 200,
            '4' => 404,
            _ => 503,
        });
        s.latency_ms = Some(latency);
    }
    s
}

/// A deterministic stream of latencies (xorshift), 1 ms to ~2.5 s with a tail.
struct Latencies(u64);

impl Latencies {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let r = self.0 % 1000;
        if r < 950 {
            20 + r / 4
        } else {
            500 + (self.0 >> 20) % 2000
        }
    }
}

/// Every 5 s in `[from, to)` with the outcome `kind(slot)`.
fn series(monitor: &str, from: i64, to: i64, seed: u64, kind: impl Fn(i64) -> Option<char>) -> Vec<ProbeSample> {
    let mut lat = Latencies(seed);
    (from..to)
        .step_by(5_000)
        .filter_map(|t| kind(t).map(|k| sample(monitor, t, k, lat.next())))
        .collect()
}

fn record(store: &dyn Store, samples: &[ProbeSample]) {
    for batch in samples.chunks(5_000) {
        let r = store.record_samples(batch).unwrap();
        assert_eq!(r.duplicates, 0);
    }
}

/// The counts and latency parts of `samples` (what a rollup holds besides
/// its time terms).
fn counted<'a>(samples: impl IntoIterator<Item = &'a ProbeSample>) -> Rollup {
    let mut r = Rollup::default();
    for s in samples {
        r.add(&s.measured());
    }
    r
}

fn without_time_terms(r: &Rollup) -> Rollup {
    Rollup {
        downtime_ms: 0,
        maintenance_ms: 0,
        no_data_ms: 0,
        ..r.clone()
    }
}

fn rollups(store: &dyn Store, name: &str, res: Resolution, from: i64, to: i64) -> BTreeMap<i64, Rollup> {
    store
        .rollups(name, res, ts(from), ts(to))
        .unwrap()
        .into_iter()
        .map(|r| (r.bucket.as_millis(), r.rollup))
        .collect()
}

fn every_resolution(store: &dyn Store, name: &str, from: i64, to: i64) -> Vec<BTreeMap<i64, Rollup>> {
    Resolution::ALL
        .iter()
        .map(|&res| rollups(store, name, res, from, to))
        .collect()
}

fn roll_up_at(store: &dyn Store, clock: &ManualClock, now: i64) -> rollway_store::RollupReport {
    clock.set(ts(now));
    store.roll_up(&RollupSettings::default()).unwrap()
}

// ---- cases ----

pub(crate) fn duplicate_slots_are_recorded_once(store: &dyn Store, _clock: &ManualClock) {
    store.put_monitor(&def("web", "production")).unwrap();
    store.put_monitor(&def("api", "staging")).unwrap();
    let secret = "hunter2-canary-9d1e";
    store.set_masker(rollway_model::Masker::new([secret]));
    let mut first = sample("web", APRIL, 'u', 0);
    first.error = Some(format!("connect to db with password {secret}: refused\0"));
    first.location = Some("fra1".into());
    let mut cached = sample("web", APRIL + 5 * S, 'o', 42);
    cached.cache_status = Some(CacheStatus::Hit);
    let batch = vec![first.clone(), cached.clone(), sample("api", APRIL, 'o', 7)];
    assert_eq!(
        store.record_samples(&batch).unwrap(),
        RecordedSamples {
            inserted: 3,
            duplicates: 0
        }
    );
    // The same batch again (a retry, a restart), plus one new slot and a
    // slot twice within the batch: only the new slot is recorded, and what
    // was recorded first stays.
    let mut again = batch.clone();
    again[1].latency_ms = Some(9_999);
    again.push(sample("web", APRIL + 10 * S, 'o', 40));
    again.push(sample("web", APRIL + 10 * S, 'e', 41));
    assert_eq!(
        store.record_samples(&again).unwrap(),
        RecordedSamples {
            inserted: 1,
            duplicates: 4
        }
    );
    let web = store.samples("web", ts(APRIL), ts(APRIL + HOUR), 100).unwrap();
    assert_eq!(web.len(), 3);
    let mut masked = first.clone();
    masked.error = Some("connect to db with password ****: refused\u{FFFD}".into());
    assert_eq!(web[0], masked);
    assert_eq!(web[1], cached);
    assert_eq!(web[2].latency_ms, Some(40));
    // [from, to) and the limit.
    let slots = |v: Vec<ProbeSample>| v.iter().map(|s| s.slot.as_millis() - APRIL).collect::<Vec<_>>();
    assert_eq!(
        slots(
            store
                .samples("web", ts(APRIL + 5 * S), ts(APRIL + 10 * S), 100)
                .unwrap()
        ),
        [5 * S]
    );
    assert_eq!(
        slots(store.samples("web", ts(APRIL), ts(APRIL + HOUR), 2).unwrap()),
        [0, 5 * S]
    );
    assert!(store.samples("nobody", ts(APRIL), ts(MAY), 10).unwrap().is_empty());
    // A sample of a monitor never put writes nothing of its batch.
    let err = store
        .record_samples(&[sample("web", APRIL + 15 * S, 'o', 1), sample("ghost", APRIL, 'o', 1)])
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound { what: "monitor", id } if id == "ghost"),
        "{err}"
    );
    assert_eq!(store.samples("web", ts(APRIL), ts(MAY), 100).unwrap().len(), 3);
}

pub(crate) fn latest_sample_of_each_monitor(store: &dyn Store, clock: &ManualClock) {
    assert!(store.latest_samples(None).unwrap().is_empty());
    for (name, env) in [
        ("web", "production"),
        ("api", "production"),
        ("docs", "staging"),
        ("idle", "staging"),
    ] {
        store.put_monitor(&def(name, env)).unwrap();
    }
    let web = series("web", APRIL, APRIL + 10 * MIN, 1, |_| Some('o'));
    let api = series("api", APRIL, APRIL + 3 * MIN, 2, |t| {
        Some(if t >= APRIL + 2 * MIN { 'u' } else { 'o' })
    });
    let docs = series("docs", APRIL + DAY, APRIL + DAY + MIN, 3, |_| Some('e'));
    record(store, &web);
    record(store, &api);
    record(store, &docs);
    let latest = store.latest_samples(None).unwrap();
    let want = vec![
        api.last().unwrap().clone(),
        docs.last().unwrap().clone(),
        web.last().unwrap().clone(),
    ];
    assert_eq!(latest, want);
    assert_eq!(
        store.latest_samples(Some("staging")).unwrap(),
        [docs.last().unwrap().clone()]
    );
    // Rolling up and pruning the raw samples away leaves none to be latest.
    roll_up_at(store, clock, APRIL + 5 * DAY);
    store.prune_monitoring(&Retention::default(), &no_windows).unwrap();
    assert!(store.latest_samples(None).unwrap().is_empty());
    // Monitors are kept, with their definitions, and can be paused.
    let rec = store.set_monitor_paused("idle", true).unwrap();
    assert!(rec.paused);
    assert_eq!(rec.def, def("idle", "staging"));
    let names: Vec<String> = store.monitors().unwrap().into_iter().map(|m| m.def.name).collect();
    assert_eq!(names, ["api", "docs", "idle", "web"]);
    // Putting the definition again keeps the paused flag.
    assert!(store.put_monitor(&def("idle", "production")).unwrap().paused);
    assert!(matches!(
        store.set_monitor_paused("nobody", true),
        Err(StoreError::NotFound { what: "monitor", .. })
    ));
    let mut bad = def("bad", "x");
    bad.interval = Duration::ZERO;
    assert!(matches!(store.put_monitor(&bad), Err(StoreError::Invalid { .. })));
}

/// Two days of mixed samples: every minute, hour and day row holds exactly
/// the counts and sketch of its raw samples, so P95 over any merge of them
/// is the P95 of the sketch of all raw samples.
pub(crate) fn rollups_are_exact_at_every_resolution(store: &dyn Store, clock: &ManualClock) {
    store.put_monitor(&def("web", "production")).unwrap();
    let from = APRIL + 22 * HOUR;
    let to = APRIL + 2 * DAY + 3 * HOUR;
    let samples = series("web", from, to, 7, |t| {
        Some(match (t / S) % 97 {
            0..=3 => 'u',
            4..=6 => 'e',
            7 => '4',
            _ => 'o',
        })
    });
    record(store, &samples);
    let report = roll_up_at(store, clock, to + 10 * MIN);
    assert_eq!(report.samples, samples.len() as u64);
    assert_eq!(report.monitors, 1);
    for res in Resolution::ALL {
        let rows = rollups(store, "web", res, 0, i64::MAX);
        let mut expected: BTreeMap<i64, Vec<&ProbeSample>> = BTreeMap::new();
        for s in &samples {
            expected.entry(res.bucket_of(s.slot).as_millis()).or_default().push(s);
        }
        let with_samples: BTreeMap<i64, Rollup> = rows
            .iter()
            .filter(|(_, r)| r.samples() > 0)
            .map(|(b, r)| (*b, without_time_terms(r)))
            .collect();
        let want: BTreeMap<i64, Rollup> = expected.into_iter().map(|(b, v)| (b, counted(v))).collect();
        assert_eq!(with_samples, want, "{res:?}");
        let all = merge_all(rows.values());
        let raw = counted(&samples);
        assert_eq!(without_time_terms(&all), raw, "{res:?}");
        assert_eq!(all.p95_ms(), raw.p95_ms());
        let mut sketch = LatencySketch::new();
        samples
            .iter()
            .filter_map(|s| s.latency_ms)
            .for_each(|l| sketch.add(l as f64));
        assert_eq!(all.sketch, sketch);
        assert_eq!(
            (all.ok, all.error, all.unavailable),
            (
                samples.iter().filter(|s| s.outcome == Outcome::Ok).count() as u64,
                samples.iter().filter(|s| s.outcome == Outcome::Error).count() as u64,
                samples.iter().filter(|s| s.outcome == Outcome::Unavailable).count() as u64,
            )
        );
        let latencies: Vec<u64> = samples.iter().filter_map(|s| s.latency_ms).collect();
        assert_eq!(all.latency_sum_ms, latencies.iter().sum::<u64>() as f64);
        assert_eq!(all.latency_min_ms, latencies.iter().min().map(|&l| l as f64));
        assert_eq!(all.latency_max_ms, latencies.iter().max().map(|&l| l as f64));
    }
    // The day rows start at the day of the first sample, and hours and days
    // agree on the time terms.
    let rec = store.monitor("web").unwrap().unwrap();
    assert_eq!(rec.rolled_from, Some(ts(APRIL)));
    let [_, hours, days] = &every_resolution(store, "web", 0, i64::MAX)[..] else {
        unreachable!()
    };
    let covered = rec.rolled_until.unwrap().as_millis() - APRIL;
    for r in [merge_all(hours.values()), merge_all(days.values())] {
        assert_eq!(r.no_data_ms, covered - (to - from) - 10 * S);
    }
    assert_eq!(
        merge_all(hours.values()).downtime_ms,
        merge_all(days.values()).downtime_ms
    );
}

/// Running it again — at once, or later with nothing new — changes nothing.
pub(crate) fn rolling_up_twice_changes_nothing(store: &dyn Store, clock: &ManualClock) {
    store.put_monitor(&def("web", "production")).unwrap();
    let samples = series("web", APRIL, APRIL + 3 * HOUR, 11, |t| {
        Some(if (t / MIN) % 7 == 3 { 'e' } else { 'o' })
    });
    record(store, &samples);
    let first = roll_up_at(store, clock, APRIL + 4 * HOUR);
    assert_eq!(first.samples, samples.len() as u64);
    let before = every_resolution(store, "web", 0, i64::MAX);
    let again = store.roll_up(&RollupSettings::default()).unwrap();
    assert_eq!((again.samples, again.monitors), (0, 0));
    roll_up_at(store, clock, APRIL + 9 * HOUR);
    assert_eq!(every_resolution(store, "web", 0, i64::MAX), before);
}

/// Late samples — in a minute already rolled up, and before the first one
/// rolled up (history imported later) — are merged exactly: the rollups end
/// as those of a twin monitor that had every sample from the start.
pub(crate) fn a_late_sample_is_merged_exactly(store: &dyn Store, clock: &ManualClock) {
    store.put_monitor(&def("late", "production")).unwrap();
    store.put_monitor(&def("twin", "production")).unwrap();
    let start = APRIL + 5 * DAY;
    // Unavailable from 100 s to 150 s; the ok at 125 s arrives late, and
    // splits the run into two of 25 s: no downtime after all. A 5xx minute
    // run whose middle minute arrives late. A day of history arrives last.
    let kind = |t: i64| {
        let s = (t - start) / S;
        Some(match s {
            100..=150 if s != 125 => 'u',
            600..=779 => 'e',
            _ => 'o',
        })
    };
    let all = series("x", start - DAY, start + 2 * HOUR, 5, kind);
    let is_late = |s: &ProbeSample| {
        let t = (s.slot.as_millis() - start) / S;
        t == 125 || (660..720).contains(&t) || t < 0
    };
    let named = |name: &str, keep: &dyn Fn(&ProbeSample) -> bool| -> Vec<ProbeSample> {
        all.iter()
            .filter(|s| keep(s))
            .map(|s| ProbeSample {
                monitor: name.to_owned(),
                ..s.clone()
            })
            .collect()
    };
    record(store, &named("twin", &|_| true));
    record(store, &named("late", &|s| !is_late(s)));
    roll_up_at(store, clock, start + 3 * HOUR);
    // Before the late samples: the run of 55 s is downtime, minutes 10-12
    // are two separate single error minutes … (minute 11 is missing).
    let day = |name: &str| merge_all(rollups(store, name, Resolution::Day, 0, i64::MAX).values());
    assert_ne!(day("late").downtime_ms, day("twin").downtime_ms);
    // The late ok alone (the middle of the run).
    let late = named("late", &is_late);
    let (ok_125, rest): (Vec<_>, Vec<_>) = late.into_iter().partition(|s| s.slot.as_millis() == start + 125 * S);
    record(store, &ok_125);
    // (The clock stays, so that the twin's rollups end where these do.)
    let r = store.roll_up(&RollupSettings::default()).unwrap();
    assert_eq!((r.samples, r.late), (1, 1));
    record(store, &rest);
    let r = store.roll_up(&RollupSettings::default()).unwrap();
    assert_eq!(r.late, rest.len() as u64);
    assert_eq!(
        every_resolution(store, "late", 0, i64::MAX),
        every_resolution(store, "twin", 0, i64::MAX)
    );
    assert_eq!(
        store.monitor("late").unwrap().unwrap().rolled_from,
        Some(ts(start - DAY))
    );
    // Minutes 10 to 12 are one run of three error minutes: 180 s of downtime.
    assert_eq!(day("twin").downtime_ms, 180 * S);
}

/// Each tier goes exactly when it passes its keep: a sample at `now - 48 h`
/// stays, one a millisecond older goes; a bucket that ended exactly `keep`
/// ago goes, one that ends a millisecond later stays (minutes go with
/// their hour, or once the monitor's rolled-up range ended that long ago). Samples not yet
/// rolled up stay whatever their age. Deletes run in small batches.
pub(crate) fn retention_cuts_exactly_at_the_boundaries(store: &dyn Store, clock: &ManualClock) {
    store.put_monitor(&def("web", "production")).unwrap();
    let t0 = APRIL + 10 * DAY + 23 * HOUR + 58 * MIN;
    // 4 minutes across a day boundary: 48 samples; 5 minute rows (the last
    // sample speaks into a fifth), the 24 hours of the first day (its rows
    // start at its midnight) and the first of the next, 2 days.
    record(store, &series("web", t0, t0 + 4 * MIN, 3, |_| Some('o')));
    roll_up_at(store, clock, t0 + HOUR);
    let count = |res: Resolution| rollups(store, "web", res, 0, i64::MAX).len();
    let raw = || store.samples("web", ts(0), ts(i64::MAX), 1_000).unwrap().len();
    assert_eq!(
        (
            raw(),
            count(Resolution::Minute),
            count(Resolution::Hour),
            count(Resolution::Day)
        ),
        (48, 5, 25, 2)
    );
    let keep = Retention {
        batch: 5,
        ..Retention::default()
    };
    let ms = |d: Duration| d.as_millis() as i64;
    // A late sample older than every cut-off, not rolled up yet, stays.
    let old = sample("web", t0 - 30 * DAY, 'o', 1);
    record(store, std::slice::from_ref(&old));

    clock.set(ts(t0 + 10 * S + ms(keep.samples)));
    let p = store.prune_monitoring(&keep, &no_windows).unwrap();
    assert_eq!(p.samples, 2, "{p:?}");
    assert_eq!(raw(), 48 - 2 + 1);
    clock.set(ts(t0 + 4 * MIN + ms(keep.samples)));
    let p = store.prune_monitoring(&keep, &no_windows).unwrap();
    assert_eq!((p.samples, p.minutes), (46, 0));
    assert!(p.transactions > 10, "{p:?}");
    assert_eq!(
        store.samples("web", ts(0), ts(i64::MAX), 10).unwrap(),
        std::slice::from_ref(&old)
    );

    // Minutes go by whole hours (so their windows can be folded into the
    // hour): the first day's last hour (23:00–24:00) ends at t0 + 2 min.
    let hour_end = t0 + 2 * MIN;
    clock.set(ts(hour_end + ms(keep.minutes) - 1));
    assert_eq!(store.prune_monitoring(&keep, &no_windows).unwrap().minutes, 0);
    // The day's earlier hours (rolled up, no rows) are behind it already.
    assert_eq!(
        store.monitor("web").unwrap().unwrap().minutes_from,
        Some(ts(hour_end - HOUR))
    );
    clock.set(ts(hour_end + ms(keep.minutes)));
    assert_eq!(store.prune_monitoring(&keep, &no_windows).unwrap().minutes, 2);
    assert_eq!(count(Resolution::Minute), 3);
    // The monitor says from where its minutes are kept.
    assert_eq!(store.monitor("web").unwrap().unwrap().minutes_from, Some(ts(hour_end)));

    clock.set(ts(hour_end + ms(keep.hours) - 1));
    assert_eq!(store.prune_monitoring(&keep, &no_windows).unwrap().hours, 23);
    assert_eq!(count(Resolution::Minute), 0);
    clock.set(ts(hour_end + ms(keep.hours)));
    let p = store.prune_monitoring(&keep, &no_windows).unwrap();
    assert_eq!((p.hours, p.days), (1, 0));
    assert_eq!(count(Resolution::Hour), 1);

    clock.set(ts(hour_end + ms(keep.days) - 1));
    assert_eq!(store.prune_monitoring(&keep, &no_windows).unwrap().days, 0);
    clock.set(ts(hour_end + ms(keep.days)));
    let p = store.prune_monitoring(&keep, &no_windows).unwrap();
    assert_eq!((p.hours, p.days), (0, 1));
    assert_eq!((count(Resolution::Hour), count(Resolution::Day)), (0, 1));
    // The old sample is still there: it was never rolled up.
    assert_eq!(raw(), 1);
}

/// A 30-day month of one sample every 5 s with outages of every kind rolls
/// up, and the month's downtime, no-data time and uptime from the 30 day
/// rollups (or the hours, or the minutes) equal those the model computes
/// from all the raw samples.
pub(crate) fn a_month_rolls_up_to_the_uptime_of_its_raw_samples(store: &dyn Store, clock: &ManualClock) {
    store.put_monitor(&def("web", "production")).unwrap();
    let at = |day: i64, h: i64, m: i64, s: i64| APRIL + day * DAY + h * HOUR + m * MIN + s * S;
    let kind = |t: i64| -> Option<char> {
        let in_ = |a: i64, b: i64| t >= a && t < b;
        if in_(at(14, 3, 0, 0), at(14, 4, 0, 0)) || in_(at(20, 23, 59, 50), at(21, 0, 7, 0)) {
            None // serve down: no data
        } else if in_(at(2, 10, 0, 0), at(2, 10, 2, 0)) || in_(at(3, 0, 0, 0), at(3, 0, 0, 20)) {
            Some('u') // 2 minutes down; 20 s is not downtime
        } else if in_(at(5, 23, 59, 0), at(6, 0, 2, 0)) || in_(at(9, 8, 0, 0), at(9, 8, 1, 0)) {
            Some('e') // 3 error minutes across midnight; 1 alone is not downtime
        } else if in_(at(12, 6, 0, 0), at(12, 6, 3, 0)) {
            Some('4') // failed expectations, not 5xx: not downtime
        } else if in_(at(17, 12, 0, 0), at(17, 12, 0, 40)) {
            Some(if (t / S) % 10 == 0 { 'o' } else { 'u' }) // runs of 30 s and less
        } else {
            Some('o')
        }
    };
    let samples = series("web", APRIL, MAY, 42, kind);
    assert!(samples.len() > 500_000);
    record(store, &samples);
    roll_up_at(store, clock, MAY + HOUR);

    let observations: Vec<_> = samples.iter().map(ProbeSample::observation).collect();
    let raw = uptime(&UptimeInput {
        period: Span::ms(APRIL, MAY),
        observations: &observations,
        maintenance: &[],
        coverage: COVERAGE,
    });
    // 120 s + 180 s; no data for 1 h and 7 min 10 s, less the 10 s the
    // last sample before each gap speaks into it.
    assert_eq!(raw.downtime_ms, 300 * S);
    assert_eq!(raw.no_data_ms, HOUR - 10 * S + 7 * MIN);
    for res in Resolution::ALL {
        let rows = rollups(store, "web", res, APRIL, MAY);
        let missing = (MAY - APRIL) / res.millis() - rows.len() as i64;
        let sum = merge_all(rows.values());
        let no_data = sum.no_data_ms + missing * res.millis();
        let observed = (MAY - APRIL) - sum.maintenance_ms - no_data;
        let uptime = 1.0 - sum.downtime_ms as f64 / observed as f64;
        assert_eq!((sum.downtime_ms, no_data), (raw.downtime_ms, raw.no_data_ms), "{res:?}");
        assert_eq!(Some(uptime), raw.uptime, "{res:?}");
        assert_eq!(without_time_terms(&sum), counted(&samples), "{res:?}");
    }
    assert_eq!(rollups(store, "web", Resolution::Day, APRIL, MAY).len(), 30);
}

/// Maintenance windows round-trip every field, each add and removal with
/// its event; a schedule the model refuses writes nothing.
pub(crate) fn maintenance_windows_are_added_listed_and_removed(store: &dyn Store, _clock: &ManualClock) {
    use rollway_model::maintenance::{MaintenanceWindow, Schedule};
    use rollway_model::{EventKind, Level, NewEvent};
    let ev = |m: &str| NewEvent::new(EventKind::MaintenanceChanged, Level::Info, m).environment("production");
    let once = MaintenanceWindow {
        id: 0,
        environment: "production".into(),
        monitor: None,
        schedule: Schedule::Once {
            start: ts(APRIL + HOUR),
            end: ts(APRIL + HOUR + 30 * MIN),
        },
        note: Some("database upgrade".into()),
        created_at: ts(0),
        operator: "ops@example.com".into(),
    };
    let cron = MaintenanceWindow {
        environment: "staging".into(),
        monitor: Some("web".into()),
        schedule: Schedule::Cron {
            expression: "0 3 * * SUN".into(),
            duration_ms: 30 * MIN,
        },
        note: None,
        ..once.clone()
    };
    let a = store.add_maintenance(&once, ev("added")).unwrap();
    let b = store.add_maintenance(&cron, ev("added")).unwrap();
    assert!(b.id > a.id, "{a:?} {b:?}");
    assert_eq!(a.created_at, crate::START);
    assert_eq!(
        MaintenanceWindow {
            id: 0,
            created_at: ts(0),
            ..a.clone()
        },
        once
    );
    assert_eq!(
        MaintenanceWindow {
            id: 0,
            created_at: ts(0),
            ..b.clone()
        },
        cron
    );
    assert_eq!(store.maintenance_windows(None).unwrap(), [a.clone(), b.clone()]);
    assert_eq!(
        store.maintenance_windows(Some("staging")).unwrap(),
        std::slice::from_ref(&b)
    );

    let bad = MaintenanceWindow {
        schedule: Schedule::Cron {
            expression: "every sunday".into(),
            duration_ms: 30 * S,
        },
        ..cron.clone()
    };
    match store.add_maintenance(&bad, ev("added")) {
        Err(StoreError::Invalid { violations, .. }) => assert_eq!(violations.len(), 2, "{violations:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.maintenance_windows(None).unwrap().len(), 2);

    assert_eq!(store.remove_maintenance(a.id, ev("removed")).unwrap(), Some(a.clone()));
    assert_eq!(store.remove_maintenance(a.id, ev("removed")).unwrap(), None);
    let b_id = b.id;
    assert_eq!(store.maintenance_windows(None).unwrap(), [b]);
    let events = store
        .events(&rollway_store::EventQuery::default())
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::MaintenanceChanged)
        .map(|e| {
            (
                e.data["action"].as_str().unwrap_or("").to_owned(),
                e.data["id"].as_i64(),
            )
        })
        .collect::<Vec<_>>();
    assert_eq!(
        events,
        [
            ("added".to_owned(), Some(a.id)),
            ("added".to_owned(), Some(b_id)),
            ("removed".to_owned(), Some(a.id))
        ]
    );
}

/// Retention folds the maintenance windows into the hours and days whose
/// minutes it deletes: a month with windows, 40 days later (raw samples
/// and minutes pruned), answers exactly as it did before — and as the
/// model's arithmetic over the raw samples with the windows — and a window
/// removed or added after that no longer changes it. Samples every 30 s on
/// three days of April: a 10-minute outage (day 9), three 5xx minutes (day
/// 14), a 6-hour gap (day 19); no data on the other days.
pub(crate) fn a_pruned_month_answers_for_its_windows_as_before(store: &dyn Store, clock: &ManualClock) {
    use rollway_store::account::account;
    let at = |day: i64, h: i64, m: i64| APRIL + day * DAY + h * HOUR + m * MIN;
    let coverage = Duration::from_secs(60);
    let kind = |t: i64| -> Option<char> {
        let in_ = |a: i64, b: i64| t >= a && t < b;
        if in_(at(9, 12, 0), at(9, 12, 10)) {
            Some('u')
        } else if in_(at(14, 8, 0), at(14, 8, 3)) {
            Some('e')
        } else if in_(at(9, 0, 0), at(10, 0, 0))
            || in_(at(14, 0, 0), at(15, 0, 0))
            || in_(at(19, 0, 0), at(19, 6, 0))
            || in_(at(19, 12, 0), at(20, 0, 0))
        {
            Some('o')
        } else {
            None
        }
    };
    let month = Span::ms(APRIL, MAY);
    // What `rollway uptime` shows of a tally: its terms and the samples'
    // counts and latencies (the merged rows' own time terms are not used).
    let answer = |t: &rollway_model::account::Tally| {
        (
            t.period_ms,
            t.downtime_ms,
            t.maintenance_ms,
            t.no_data_ms,
            without_time_terms(&t.rollup),
        )
    };
    // (monitor, its windows, downtime s, maintenance s) with the windows.
    let outage = Span::ms(at(9, 11, 55), at(9, 12, 15));
    let errors = Span::ms(at(14, 8, 1), at(14, 8, 30));
    let gap = Span::ms(at(19, 5, 30), at(19, 7, 0));
    let midnight = Span::ms(at(20, 23, 0), at(21, 1, 0));
    let cases: Vec<(&str, Vec<Span>, i64, i64)> = vec![
        // 600 s unavailable + 180 s of a 3-minute 5xx run.
        ("none", vec![], 780, 0),
        ("outage", vec![outage], 180, 1_200),
        // The run stays downtime but for the 2 minutes under the window.
        ("errors", vec![errors], 660, 1_740),
        ("gap", vec![gap], 780, 5_400),
        ("midnight", vec![midnight], 780, 7_200),
        ("all", vec![outage, errors, gap, midnight], 60, 15_540),
    ];
    let mut samples = BTreeMap::new();
    for (name, ..) in &cases {
        store
            .put_monitor(&MonitorDef {
                interval: Duration::from_secs(30),
                coverage,
                ..def(name, "production")
            })
            .unwrap();
        let mine: Vec<ProbeSample> = (APRIL..MAY)
            .step_by(30_000)
            .filter_map(|t| kind(t).map(|k| sample(name, t, k, 40)))
            .collect();
        record(store, &mine);
        samples.insert(*name, mine);
    }
    roll_up_at(store, clock, MAY + HOUR);
    let windows_of = |name: &str| {
        Spans::from_spans(
            cases
                .iter()
                .find(|c| c.0 == name)
                .map(|c| c.1.clone())
                .unwrap_or_default(),
        )
    };
    let monitor = |name: &str| store.monitor(name).unwrap().unwrap();
    let mut before = BTreeMap::new();
    for (name, windows, down_s, maint_s) in &cases {
        let maint = Spans::from_spans(windows.iter().copied());
        let a = account(store, &monitor(name), month, &maint).unwrap();
        let observations: Vec<_> = samples[name].iter().map(ProbeSample::observation).collect();
        let raw = uptime(&UptimeInput {
            period: month,
            observations: &observations,
            maintenance: windows,
            coverage,
        });
        let t = &a.tally;
        assert_eq!(
            (t.period_ms, t.downtime_ms, t.maintenance_ms, t.no_data_ms),
            (raw.period_ms, raw.downtime_ms, raw.maintenance_ms, raw.no_data_ms),
            "{name}"
        );
        assert_eq!((t.downtime_ms, t.maintenance_ms), (down_s * S, maint_s * S), "{name}");
        assert_eq!(without_time_terms(&t.rollup), counted(&samples[name]), "{name}");
        assert!(!a.stale_maintenance, "{name}");
        before.insert(*name, answer(&a.tally));
    }

    // 40 days later: retention deletes the raw samples and April's minutes,
    // folding each monitor's windows into its hours and days.
    clock.set(ts(MAY + 40 * DAY));
    let p = store
        .prune_monitoring(&Retention::default(), &|m: &MonitorRecord, span: Span| {
            windows_of(&m.def.name).within(span)
        })
        .unwrap();
    assert_eq!(
        p.samples,
        samples.values().map(|s| s.len() as u64).sum::<u64>(),
        "{p:?}"
    );
    for (name, windows, ..) in &cases {
        let m = monitor(name);
        // The covered range ends where the last rollup run settled.
        assert_eq!(m.minutes_from, Some(ts(MAY + HOUR - 2 * MIN)), "{name}");
        assert!(
            rollups(store, name, Resolution::Minute, 0, i64::MAX).is_empty(),
            "{name}"
        );
        let maint = Spans::from_spans(windows.iter().copied());
        let after = account(store, &m, month, &maint).unwrap();
        assert_eq!(answer(&after.tally), before[name], "{name}");
        assert_eq!(after.stale_maintenance, !windows.is_empty(), "{name}");
        // A window removed since, or one added now, changes nothing: the
        // minutes it would apply to are gone.
        assert_eq!(
            answer(&account(store, &m, month, &Spans::new()).unwrap().tally),
            before[name],
            "{name}"
        );
        let late = Spans::from_spans([Span::ms(at(9, 3, 0), at(9, 4, 0))]);
        assert_eq!(
            answer(&account(store, &m, month, &late).unwrap().tally),
            before[name],
            "{name}"
        );
    }
    // Pruning again folds nothing twice.
    let again = store
        .prune_monitoring(&Retention::default(), &|m: &MonitorRecord, span: Span| {
            windows_of(&m.def.name).within(span)
        })
        .unwrap();
    assert_eq!(again.minutes, 0, "{again:?}");
    let m = monitor("all");
    assert_eq!(
        answer(&account(store, &m, month, &windows_of("all")).unwrap().tally),
        before["all"]
    );
}

/// `accounts` without latency has the store sum each run of buckets
/// (`rollup_sums`); with latency it adds the rows one by one. Both give the
/// same terms and outcome counts — on a store with an outage, 5xx minutes,
/// a gap inside a day, a whole day without data, whole-minute and
/// part-minute windows (runs of minutes with different time under
/// maintenance), periods off the minute grid reaching past the rollups
/// into raw samples, and months whose minutes were pruned (hours and days
/// counted as stored).
pub(crate) fn summed_accounts_equal_the_row_by_row_ones(store: &dyn Store, clock: &ManualClock) {
    use rollway_store::account::{Query, account, accounts};
    let at = |day: i64, h: i64, m: i64, s: i64| APRIL + day * DAY + h * HOUR + m * MIN + s * S;
    let kind = |t: i64| -> Option<char> {
        let in_ = |a: i64, b: i64| t >= a && t < b;
        if in_(at(2, 12, 0, 0), at(2, 12, 10, 0)) {
            Some('u')
        } else if in_(at(3, 8, 0, 0), at(3, 8, 4, 0)) {
            Some('e')
        } else if in_(at(3, 14, 0, 0), at(3, 16, 30, 0)) || in_(at(5, 0, 0, 0), at(6, 0, 0, 0)) {
            // A gap, and a whole day (day 5) with no data.
            None
        } else if in_(at(2, 0, 0, 0), at(8, 0, 0, 0)) {
            Some('o')
        } else {
            None
        }
    };
    let names = ["sum-a", "sum-b"];
    for (n, name) in names.iter().enumerate() {
        store
            .put_monitor(&MonitorDef {
                interval: Duration::from_secs(20),
                coverage: Duration::from_secs(40),
                ..def(name, "production")
            })
            .unwrap();
        let mine: Vec<ProbeSample> = (APRIL..MAY)
            .step_by(20_000)
            .filter_map(|t| kind(t + n as i64 * 20_000).map(|k| sample(name, t, k, 30 + (t / 20_000 % 7) as u64)))
            .collect();
        record(store, &mine);
    }
    roll_up_at(store, clock, at(7, 6, 0, 0));
    let windows = Spans::from_spans([
        // Whole minutes over the outage.
        Span::ms(at(2, 11, 58, 0), at(2, 12, 5, 0)),
        // Part of each minute: 20 s then 40 s under maintenance.
        Span::ms(at(3, 8, 1, 40), at(3, 8, 2, 0)),
        Span::ms(at(3, 8, 2, 20), at(3, 8, 3, 0)),
        // Over the end of the gap and a whole-day window.
        Span::ms(at(3, 16, 0, 0), at(3, 17, 0, 30)),
        Span::ms(at(6, 0, 0, 0), at(7, 0, 0, 0)),
    ]);
    let periods = [
        Span::ms(APRIL, MAY),
        // Off the grid at both ends, past the covered range into raw samples.
        Span::ms(at(1, 12, 34, 56), at(7, 7, 0, 1)),
        Span::ms(at(3, 8, 1, 10), at(3, 8, 2, 50)),
    ];
    let compare = |pruned: bool| {
        let monitors: Vec<MonitorRecord> = names.iter().map(|n| store.monitor(n).unwrap().unwrap()).collect();
        let spans: Vec<Spans> = periods.iter().map(|p| windows.within(*p)).collect();
        let queries: Vec<Query<'_>> = monitors
            .iter()
            .flat_map(|m| {
                periods.iter().zip(&spans).map(move |(p, w)| Query {
                    monitor: m,
                    period: *p,
                    maintenance: w,
                })
            })
            .collect();
        let summed = accounts(store, &queries, false).unwrap();
        let rows = accounts(store, &queries, true).unwrap();
        assert_eq!(summed.len(), queries.len());
        let terms = |a: &rollway_store::account::Account| {
            let t = &a.tally;
            (
                t.period_ms,
                t.downtime_ms,
                t.maintenance_ms,
                t.no_data_ms,
                t.rollup.ok,
                t.rollup.error,
                t.rollup.unavailable,
                a.stale_maintenance,
            )
        };
        for ((q, s), r) in queries.iter().zip(&summed).zip(&rows) {
            let what = format!("{} over {:?}, pruned {pruned}", q.monitor.def.name, q.period);
            assert_eq!(terms(s), terms(r), "{what}");
            let one = account(store, q.monitor, q.period, q.maintenance).unwrap();
            assert_eq!(terms(&one), terms(r), "{what}");
            assert_eq!(one.tally, r.tally, "{what}");
            assert_eq!(s.tally.period_ms, q.period.len_ms(), "{what}");
        }
        // The whole month of the first monitor: every kind of term is there.
        let t = &summed[0].tally;
        assert!(t.downtime_ms > 0 && t.maintenance_ms > 0 && t.no_data_ms > 0, "{t:?}");
        assert!(
            t.rollup.ok > 0 && t.rollup.error > 0 && t.rollup.unavailable > 0,
            "{t:?}"
        );
        assert_eq!(t.maintenance_ms, windows.total_ms(), "{t:?}");
        assert_eq!(summed[0].stale_maintenance, pruned);
    };
    compare(false);
    // 40 days later the minutes are gone: hours and days count as stored.
    clock.set(ts(MAY + 40 * DAY));
    store
        .prune_monitoring(&Retention::default(), &|m: &MonitorRecord, span: Span| {
            if m.def.name.starts_with("sum-") {
                windows.within(span)
            } else {
                Spans::new()
            }
        })
        .unwrap();
    assert!(rollups(store, "sum-a", Resolution::Minute, 0, i64::MAX).is_empty());
    compare(true);
}

// ---- schema 15 keeps the rollups (run from `conformance.rs`) ----

/// The older sketch text (schema 5 on, still in schema 14 stores):
/// `z<zeros>;` when there are zeros, then each bucket's index step from
/// the previous one, with `:count` when it is not 1.
fn sketch_text_v1(s: &LatencySketch) -> String {
    let (buckets, zeros) = s.to_parts();
    let mut out = if zeros > 0 { format!("z{zeros};") } else { String::new() };
    let mut prev = 0i64;
    for (n, (i, c)) in buckets.into_iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str(&(i64::from(i) - prev).to_string());
        if c != 1 {
            out.push_str(&format!(":{c}"));
        }
        prev = i64::from(i);
    }
    out
}

/// Rollups a real store made (an outage, an error run, a gap), written by
/// hand into a schema 14 store (`raw`, migrated up to 14) as it stored them
/// — buckets in milliseconds, zeros, sketches as text, `''` when empty:
/// once the store opens it at schema 15 it reads the same rows and the
/// same uptime accounts, summed and row by row, and PostgreSQL keeps the
/// buckets as hours where SQLite keeps milliseconds.
pub(crate) fn schema_15_keeps_the_rollups(
    reference: &dyn Store,
    clock: &ManualClock,
    raw: &mut super::Raw,
    loc: &rollway_store::StoreLocation,
) {
    use rollway_store::account::{Query, accounts};
    let at = |day: i64, h: i64, m: i64| APRIL + day * DAY + h * HOUR + m * MIN;
    let kind = |t: i64| -> Option<char> {
        let in_ = |a: i64, b: i64| t >= a && t < b;
        if in_(at(0, 9, 0), at(0, 9, 7)) {
            Some('u')
        } else if in_(at(1, 2, 0), at(1, 2, 4)) {
            Some('e')
        } else if in_(at(1, 20, 0), at(1, 21, 30)) {
            None
        } else {
            Some('o')
        }
    };
    reference.put_monitor(&def("web", "production")).unwrap();
    let mut lat = Latencies(0x9E37_79B9_7F4A_7C15);
    let samples: Vec<ProbeSample> = (at(0, 0, 0)..at(2, 12, 0))
        .step_by(5_000)
        .filter_map(|t| kind(t).map(|k| sample("web", t, k, lat.next())))
        .collect();
    record(reference, &samples);
    roll_up_at(reference, clock, at(2, 12, 10));
    let m = reference.monitor("web").unwrap().unwrap();
    let (from, until) = (m.rolled_from.unwrap().as_millis(), m.rolled_until.unwrap().as_millis());
    let rows: Vec<Vec<rollway_store::RollupRow>> = Resolution::ALL
        .iter()
        .map(|&res| {
            reference
                .rollups("web", res, ts(i64::MIN / 2), ts(i64::MAX / 2))
                .unwrap()
        })
        .collect();
    let minutes = &rows[0];
    assert!(minutes.len() > 3000, "{}", minutes.len());
    assert!(
        minutes
            .iter()
            .any(|r| r.rollup.ok == 0 && r.rollup.sketch.count() == 0 && r.rollup.downtime_ms > 0),
        "an outage minute: zeros and an empty sketch"
    );

    raw.batch(&format!(
        "INSERT INTO monitors (id, name, environment, kind, target, interval_ms, coverage_ms, config, created_at, \
         updated_at, rolled_from, rolled_until) VALUES (7, 'web', 'production', 'http', 'frontend', {}, {}, \
         '{{}}', {from}, {from}, {from}, {until})",
        m.def.interval.as_millis(),
        m.def.coverage.as_millis()
    ));
    let opt = |v: Option<f64>| v.map_or("NULL".to_owned(), |v| format!("{v:?}"));
    for (res, rows) in Resolution::ALL.iter().zip(&rows) {
        for chunk in rows.chunks(500) {
            let values: Vec<String> = chunk
                .iter()
                .map(|r| {
                    let x = &r.rollup;
                    format!(
                        "(7, {}, {}, {}, {}, {}, {}, {:?}, {}, {}, '{}', {}, {}, {})",
                        r.bucket.as_millis(),
                        x.ok,
                        x.error,
                        x.unavailable,
                        x.status_5xx,
                        x.latency_count,
                        x.latency_sum_ms,
                        opt(x.latency_min_ms),
                        opt(x.latency_max_ms),
                        sketch_text_v1(&x.sketch),
                        x.downtime_ms,
                        x.maintenance_ms,
                        x.no_data_ms
                    )
                })
                .collect();
            raw.batch(&format!(
                "INSERT INTO rollups_{} (monitor_id, bucket, ok, error, unavailable, status_5xx, latency_count, \
                 latency_sum_ms, latency_min_ms, latency_max_ms, sketch, downtime_ms, maintenance_ms, no_data_ms) \
                 VALUES {}",
                res.as_str(),
                values.join(", ")
            ));
        }
    }

    let store = rollway_store::open(loc, std::sync::Arc::new(clock.clone())).unwrap();
    assert_eq!(store.schema_version().unwrap(), 15);
    for (res, expected) in Resolution::ALL.iter().zip(&rows) {
        let got = store.rollups("web", *res, ts(i64::MIN / 2), ts(i64::MAX / 2)).unwrap();
        assert_eq!(got.len(), expected.len(), "{res:?}");
        for (g, e) in got.iter().zip(expected) {
            assert_eq!(g, e, "{res:?}");
        }
    }
    // The stored key of the first hour: hours on PostgreSQL, milliseconds
    // on SQLite (its layout is unchanged).
    let first_hour = rows[1][0].bucket.as_millis();
    let key = if store.backend() == "postgres" {
        first_hour / HOUR
    } else {
        first_hour
    };
    assert_eq!(
        raw.pairs("SELECT CAST(MIN(bucket) AS BIGINT), COUNT(*) FROM rollups_hour"),
        [(key, rows[1].len() as i64)]
    );

    let windows = Spans::from_spans([Span::ms(at(0, 8, 58), at(0, 9, 3)), Span::ms(at(1, 0, 0), at(1, 6, 0))]);
    // Whole minutes: the new store has no raw samples for the parts of a
    // minute (those are read from samples, which schema 15 leaves alone).
    let periods = [
        Span::ms(from, until),
        Span::ms(at(0, 3, 17), at(1, 22, 0)),
        Span::ms(at(1, 1, 0), at(1, 2, 3)),
    ];
    let spans: Vec<Spans> = periods.iter().map(|p| windows.within(*p)).collect();
    let tallies = |s: &dyn Store| {
        let m = s.monitor("web").unwrap().unwrap();
        let queries: Vec<Query<'_>> = periods
            .iter()
            .zip(&spans)
            .map(|(p, w)| Query {
                monitor: &m,
                period: *p,
                maintenance: w,
            })
            .collect();
        let summed: Vec<_> = accounts(s, &queries, false)
            .unwrap()
            .into_iter()
            .map(|a| a.tally)
            .collect();
        let by_row: Vec<_> = accounts(s, &queries, true)
            .unwrap()
            .into_iter()
            .map(|a| a.tally)
            .collect();
        (summed, by_row)
    };
    let (summed, by_row) = tallies(&*store);
    assert_eq!((&summed, &by_row), (&tallies(reference).0, &tallies(reference).1));
    let t = &by_row[0];
    assert!(t.downtime_ms > 0 && t.maintenance_ms > 0 && t.no_data_ms > 0, "{t:?}");
}
