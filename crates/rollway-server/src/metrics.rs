//! `/metrics` (OpenMetrics text through prometheus-client): per monitor
//! the last outcome, status, latency and sample time, probes by outcome and
//! a latency histogram — kept up to date from the samples the store took —
//! and, read from the scheduler at each scrape, its counts: schedule lag
//! (histogram, p50, p99), skipped and missed slots, the sink's backlog and
//! errors, monitors paused and not owned, shards owned (PostgreSQL); then
//! rollup and retention runs, and each monitor's month-to-date uptime ratio
//! and downtime, refreshed after each rollup; alerts unresolved (set after
//! each evaluation round) and opened by severity and type, and notification
//! delivery attempts by channel and outcome.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use rollway_app::alerts::{Delivered, Evaluated};
use rollway_app::model::uptime::Outcome;
use rollway_app::model::{AlertType, ProbeSample, Severity};
use rollway_app::serve::{LagSummary, Pruned, Refreshed, RollupReport, ServeEvents, Watcher};

use crate::Log;

const OUTCOMES: [Outcome; 3] = [Outcome::Ok, Outcome::Error, Outcome::Unavailable];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MonitorLabel {
    monitor: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    monitor: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MonitorEnvLabels {
    monitor: String,
    environment: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabels {
    severity: String,
    r#type: String,
}

impl AlertLabels {
    fn of(severity: Severity, alert_type: AlertType) -> Self {
        Self {
            severity: severity.as_str().to_owned(),
            r#type: alert_type.as_str().to_owned(),
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    channel: String,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackupLabels {
    backup: String,
    environment: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

fn latency_histogram() -> Histogram {
    // 5 ms to 10 s, doubling.
    Histogram::new(exponential_buckets(0.005, 2.0, 12))
}

/// The metrics the samples and the maintenance runs update; the
/// [`ServeEvents`] the watcher reports to.
#[derive(Debug)]
pub(crate) struct Recorder {
    last_outcome: Family<OutcomeLabels, Gauge>,
    last_status: Family<MonitorLabel, Gauge>,
    last_latency: Family<MonitorLabel, FloatGauge>,
    last_sample: Family<MonitorLabel, FloatGauge>,
    probes: Family<OutcomeLabels, Counter>,
    latency: Family<MonitorLabel, Histogram, fn() -> Histogram>,
    runs: Family<JobLabels, Counter>,
    failures: Family<JobLabels, Counter>,
    rolled_samples: Counter,
    pruned_rows: Counter,
    uptime_ratio: Family<MonitorEnvLabels, FloatGauge>,
    downtime: Family<MonitorEnvLabels, FloatGauge>,
    alerts_open: Family<AlertLabels, Gauge>,
    alerts_opened: Family<AlertLabels, Counter>,
    deliveries: Family<DeliveryLabels, Counter>,
    backup_runs: Family<BackupLabels, Gauge>,
    log: Arc<dyn Log>,
    /// One lock around a batch, so two batches never interleave their
    /// last-outcome updates for one monitor.
    batch: Mutex<()>,
}

impl std::fmt::Debug for dyn Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Log")
    }
}

/// The registry `/metrics` encodes and the recorder that feeds it.
pub(crate) fn registry(log: Arc<dyn Log>) -> (Registry, Arc<Recorder>) {
    let r = Recorder {
        last_outcome: Family::default(),
        last_status: Family::default(),
        last_latency: Family::default(),
        last_sample: Family::default(),
        probes: Family::default(),
        latency: Family::new_with_constructor(latency_histogram),
        runs: Family::default(),
        failures: Family::default(),
        rolled_samples: Counter::default(),
        pruned_rows: Counter::default(),
        uptime_ratio: Family::default(),
        downtime: Family::default(),
        alerts_open: Family::default(),
        alerts_opened: Family::default(),
        deliveries: Family::default(),
        backup_runs: Family::default(),
        log,
        batch: Mutex::new(()),
    };
    let mut reg = Registry::default();
    reg.register(
        "rollway_monitor_last_outcome",
        "1 for the outcome of the monitor's latest recorded sample, 0 for the others",
        r.last_outcome.clone(),
    );
    reg.register(
        "rollway_monitor_last_http_status",
        "The HTTP status of the monitor's latest sample (0: none)",
        r.last_status.clone(),
    );
    reg.register(
        "rollway_monitor_last_latency_seconds",
        "The latency of the monitor's latest sample that got an answer",
        r.last_latency.clone(),
    );
    reg.register(
        "rollway_monitor_last_sample_timestamp_seconds",
        "The planned slot of the monitor's latest recorded sample, Unix time",
        r.last_sample.clone(),
    );
    reg.register(
        "rollway_probes",
        "Samples recorded, by monitor and outcome",
        r.probes.clone(),
    );
    reg.register(
        "rollway_probe_latency_seconds",
        "Latency of the samples that got an answer, by monitor",
        r.latency.clone(),
    );
    reg.register(
        "rollway_maintenance_runs",
        "Rollup and retention runs that ended well",
        r.runs.clone(),
    );
    reg.register(
        "rollway_maintenance_failures",
        "Rollup and retention runs that failed (each is tried again)",
        r.failures.clone(),
    );
    reg.register(
        "rollway_rollup_samples",
        "Samples counted into rollups",
        r.rolled_samples.clone(),
    );
    reg.register(
        "rollway_pruned_rows",
        "Samples, rollup rows and metric records deleted by retention",
        r.pruned_rows.clone(),
    );
    reg.register(
        "rollway_monitor_uptime_ratio",
        "Month-to-date uptime (0 to 1) in the environment's time zone, as `rollway uptime` counts it; absent while the month has no data",
        r.uptime_ratio.clone(),
    );
    reg.register(
        "rollway_monitor_downtime_seconds",
        "Month-to-date downtime in the environment's time zone (seed 003's definition, maintenance removed)",
        r.downtime.clone(),
    );
    reg.register(
        "rollway_alerts_open",
        "Alerts open or acknowledged (not resolved), by severity and type, as of the last evaluation round",
        r.alerts_open.clone(),
    );
    reg.register(
        "rollway_alerts_opened",
        "Alerts this instance opened, by severity and type",
        r.alerts_opened.clone(),
    );
    reg.register(
        "rollway_notification_deliveries",
        "Notification delivery attempts this instance made, by channel and status: delivered, retried (failed, tried again after the backoff) or failed (for good)",
        r.deliveries.clone(),
    );
    reg.register(
        "rollway_backup_last_run",
        "1 for what came of each scheduled backup's latest occurrence (outcome pending, running, completed, failed or missed), 0 for the other outcomes",
        r.backup_runs.clone(),
    );
    (reg, Arc::new(r))
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1_000.0
}

impl ServeEvents for Recorder {
    fn recorded(&self, samples: &[ProbeSample]) {
        let _one = self.batch.lock().unwrap_or_else(PoisonError::into_inner);
        for s in samples {
            let monitor = MonitorLabel {
                monitor: s.monitor.clone(),
            };
            for o in OUTCOMES {
                let labels = OutcomeLabels {
                    monitor: s.monitor.clone(),
                    outcome: o.as_str().to_owned(),
                };
                self.last_outcome.get_or_create(&labels).set(i64::from(o == s.outcome));
            }
            self.probes
                .get_or_create(&OutcomeLabels {
                    monitor: s.monitor.clone(),
                    outcome: s.outcome.as_str().to_owned(),
                })
                .inc();
            self.last_status
                .get_or_create(&monitor)
                .set(i64::from(s.http_status.unwrap_or(0)));
            if let Some(ms) = s.latency_ms {
                self.last_latency.get_or_create(&monitor).set(secs(ms));
                self.latency.get_or_create(&monitor).observe(secs(ms));
            }
            self.last_sample
                .get_or_create(&monitor)
                .set(s.slot.as_millis() as f64 / 1_000.0);
        }
    }

    fn rolled_up(&self, report: &RollupReport) {
        self.runs.get_or_create(&JobLabels { job: "rollup".into() }).inc();
        self.rolled_samples.inc_by(report.samples);
    }

    fn pruned(&self, pruned: &Pruned) {
        self.runs.get_or_create(&JobLabels { job: "prune".into() }).inc();
        self.pruned_rows
            .inc_by(pruned.samples + pruned.minutes + pruned.hours + pruned.days + pruned.records + pruned.logs);
    }

    fn refreshed(&self, refreshed: &Refreshed) {
        for m in &refreshed.months {
            let labels = MonitorEnvLabels {
                monitor: m.monitor.clone(),
                environment: m.environment.clone(),
            };
            match m.ratio {
                Some(r) => {
                    self.uptime_ratio.get_or_create(&labels).set(r);
                }
                None => {
                    self.uptime_ratio.remove(&labels);
                }
            }
            self.downtime.get_or_create(&labels).set(m.downtime_seconds);
        }
    }

    fn problem(&self, what: &'static str, message: &str) {
        if what != "samples" {
            self.failures.get_or_create(&JobLabels { job: what.into() }).inc();
        }
        self.log.problem(message);
    }

    fn resumed(&self, _what: &'static str, message: &str) {
        self.log.note(message);
    }

    fn window(&self, environment: &str, message: &str) {
        self.log.note(&format!("{environment}: {message}"));
    }

    fn shards(&self, message: &str) {
        self.log.note(&format!("shards: {message}"));
    }

    fn backed_up(&self, message: &str) {
        self.log.note(message);
    }

    fn backup_schedules(&self, states: &[rollway_app::backup::ScheduleState]) {
        use rollway_app::model::backup_schedule::Outcome;
        for st in states {
            let Some(now) = st.outcome else { continue };
            for o in [
                Outcome::Pending,
                Outcome::Running,
                Outcome::Completed,
                Outcome::Failed,
                Outcome::Missed,
            ] {
                let word = serde_json::to_value(o)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                self.backup_runs
                    .get_or_create(&BackupLabels {
                        backup: st.name.clone(),
                        environment: st.environment.clone(),
                        outcome: word,
                    })
                    .set(i64::from(o == now));
            }
        }
    }

    fn alerts_evaluated(&self, done: &Evaluated, open: &[(Severity, AlertType, usize)]) {
        for (severity, alert_type) in &done.opened_kinds {
            self.alerts_opened
                .get_or_create(&AlertLabels::of(*severity, *alert_type))
                .inc();
        }
        for (severity, alert_type, n) in open {
            self.alerts_open
                .get_or_create(&AlertLabels::of(*severity, *alert_type))
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }

    fn delivered(&self, delivered: &Delivered) {
        for (channel, status) in &delivered.attempts {
            self.deliveries
                .get_or_create(&DeliveryLabels {
                    channel: channel.clone(),
                    status: (*status).to_owned(),
                })
                .inc();
        }
    }
}

/// The lag histogram's buckets as the encoder wants them: each bucket's
/// own count (the scheduler's are cumulative), `+Inf` (`f64::MAX`) last.
fn lag_buckets(lag: &LagSummary) -> Vec<(f64, u64)> {
    let mut buckets = Vec::with_capacity(lag.buckets.len() + 1);
    let mut below = 0u64;
    for (bound, cumulative) in &lag.buckets {
        buckets.push((bound.as_secs_f64(), cumulative.saturating_sub(below)));
        below = *cumulative;
    }
    buckets.push((f64::MAX, lag.count.saturating_sub(below)));
    buckets
}

/// The scheduler's counts, read at each scrape.
#[derive(Debug)]
pub(crate) struct SchedulerCollector(pub Watcher);

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

impl Collector for SchedulerCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(s) = self.0.stats() else {
            return Ok(());
        };
        gauge(&mut e, "rollway_monitors", "Monitors scheduled.", s.monitors as f64)?;
        gauge(
            &mut e,
            "rollway_monitors_paused",
            "Scheduled monitors paused by the operator.",
            s.paused as f64,
        )?;
        gauge(
            &mut e,
            "rollway_monitors_not_owned",
            "Scheduled monitors in shards another instance holds (PostgreSQL).",
            s.not_owned as f64,
        )?;
        if let Some(shards) = self.0.shards() {
            gauge(
                &mut e,
                "rollway_shards_owned",
                "Shards whose leases this instance holds (PostgreSQL).",
                shards.owned as f64,
            )?;
        }
        counter(
            &mut e,
            "rollway_probes_started",
            "Probes started (one per slot that ran).",
            s.started,
        )?;
        counter(
            &mut e,
            "rollway_probes_timed_out",
            "Probes the scheduler ended at their timeout.",
            s.timed_out,
        )?;
        {
            let skipped = ConstCounter::new(0u64);
            let mut family = e.encode_descriptor(
                "rollway_slots_skipped",
                "Slots not run: busy (the previous probe still going), saturated (no probe place freed in time), missed (woken whole intervals late).",
                None,
                skipped.metric_type(),
            )?;
            for (reason, n) in [
                ("busy", s.skipped_busy),
                ("saturated", s.skipped_saturated),
                ("missed", s.missed),
            ] {
                ConstCounter::new(n).encode(family.encode_family(&[("reason", reason)])?)?;
            }
        }
        counter(
            &mut e,
            "rollway_slots_paused",
            "Slots of paused monitors.",
            s.paused_slots,
        )?;
        counter(
            &mut e,
            "rollway_slots_not_owned",
            "Slots of monitors in shards this instance did not hold (another instance's).",
            s.unowned_slots,
        )?;
        gauge(
            &mut e,
            "rollway_sink_queued",
            "Results waiting in the channel to the store.",
            s.queued as f64,
        )?;
        gauge(
            &mut e,
            "rollway_sink_waiting",
            "Results waiting for room in the full channel.",
            s.waiting as f64,
        )?;
        counter(
            &mut e,
            "rollway_sink_full",
            "Results that found the channel full.",
            s.sink_full,
        )?;
        counter(
            &mut e,
            "rollway_samples_recorded",
            "Results the store took.",
            s.recorded,
        )?;
        counter(
            &mut e,
            "rollway_sink_errors",
            "Sample batches the store refused (each retried).",
            s.sink_errors,
        )?;
        counter(
            &mut e,
            "rollway_samples_lost",
            "Results given up while stopping.",
            s.lost,
        )?;
        let buckets = lag_buckets(&s.lag);
        e.encode_descriptor(
            "rollway_schedule_lag_seconds",
            "Actual start minus planned start of each probe.",
            None,
            MetricType::Histogram,
        )?
        .encode_histogram::<NoLabelSet>(s.lag.sum.as_secs_f64(), s.lag.count, &buckets, None)?;
        if let Some(p50) = s.lag.p50 {
            gauge(
                &mut e,
                "rollway_schedule_lag_p50_seconds",
                "Median schedule lag (1 % relative error).",
                p50.as_secs_f64(),
            )?;
        }
        if let Some(p99) = s.lag.p99 {
            gauge(
                &mut e,
                "rollway_schedule_lag_p99_seconds",
                "99th percentile schedule lag (1 % relative error).",
                p99.as_secs_f64(),
            )?;
        }
        gauge(
            &mut e,
            "rollway_schedule_lag_max_seconds",
            "Largest schedule lag.",
            s.lag.max.as_secs_f64(),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::time::Duration;

    use rollway_app::model::time::Timestamp;

    use super::*;

    struct Quiet;

    impl Log for Quiet {
        fn problem(&self, _line: &str) {}
        fn note(&self, _line: &str) {}
    }

    fn sample(monitor: &str, slot: i64, outcome: Outcome, latency_ms: Option<u64>) -> ProbeSample {
        ProbeSample {
            latency_ms,
            http_status: latency_ms.map(|_| 200),
            ..ProbeSample::new(monitor, Timestamp::from_millis(slot), outcome)
        }
    }

    fn encoded(reg: &Registry) -> Vec<String> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, reg).unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_last_sample_of_a_monitor_sets_its_outcome_and_every_sample_counts() {
        let (reg, rec) = registry(Arc::new(Quiet));
        rec.recorded(&[
            sample("web", 1_000, Outcome::Ok, Some(20)),
            sample("web", 2_000, Outcome::Unavailable, None),
        ]);
        let lines = encoded(&reg);
        let has = |l: &str| lines.iter().any(|x| x == l);
        assert!(
            has(r#"rollway_monitor_last_outcome{monitor="web",outcome="unavailable"} 1"#),
            "{lines:#?}"
        );
        assert!(has(r#"rollway_monitor_last_outcome{monitor="web",outcome="ok"} 0"#));
        assert!(has(r#"rollway_probes_total{monitor="web",outcome="ok"} 1"#));
        assert!(has(r#"rollway_probes_total{monitor="web",outcome="unavailable"} 1"#));
        // No answer, no latency: the histogram holds the one that had one,
        // and the last latency stays the last answered one.
        assert!(has(r#"rollway_probe_latency_seconds_count{monitor="web"} 1"#));
        assert!(has(r#"rollway_monitor_last_latency_seconds{monitor="web"} 0.02"#));
        assert!(has(r#"rollway_monitor_last_http_status{monitor="web"} 0"#));
        assert!(has(
            r#"rollway_monitor_last_sample_timestamp_seconds{monitor="web"} 2.0"#
        ));

        rec.recorded(&[sample("web", 3_000, Outcome::Ok, Some(5))]);
        let lines = encoded(&reg);
        let has = |l: &str| lines.iter().any(|x| x == l);
        assert!(has(r#"rollway_monitor_last_outcome{monitor="web",outcome="ok"} 1"#));
        assert!(has(
            r#"rollway_monitor_last_outcome{monitor="web",outcome="unavailable"} 0"#
        ));
    }

    #[test]
    fn lag_buckets_are_each_buckets_own_count_with_inf_last() {
        let ms = Duration::from_millis;
        let lag = LagSummary {
            count: 10,
            sum: ms(900),
            max: ms(400),
            buckets: vec![(ms(1), 4), (ms(10), 4), (ms(100), 9)],
            p50: None,
            p99: None,
        };
        assert_eq!(lag_buckets(&lag), [(0.001, 4), (0.01, 0), (0.1, 5), (f64::MAX, 1)]);
    }
}
