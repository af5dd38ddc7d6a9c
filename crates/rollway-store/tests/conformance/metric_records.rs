//! Conformance cases for seed 003 Monitoring Data records: upserted per
//! environment, type, source and window, read back field for field, and
//! refused whole when the model's rules refuse one.

use rollway_model::Clock as _;
use rollway_model::{HealthStatus, MetricRecord, MetricType, MetricUnit, Thresholds, Timestamp};
use rollway_store::{Store, StoreError};

const HOUR: i64 = 3_600_000;
/// 2026-01-01T00:00:00Z, an hour boundary.
const T: i64 = 1_767_225_600_000;

fn record(t: MetricType, source: &str, value: f64, window_start: i64, timestamp: i64) -> MetricRecord {
    MetricRecord::new(
        "prod",
        source,
        t,
        value,
        Thresholds::default_for(t, 99.5, 3),
        Timestamp::from_millis(window_start),
        Timestamp::from_millis(timestamp),
    )
}

pub(super) fn metric_records_are_upserted_per_window_and_read_back(
    store: &dyn Store,
    _clock: &rollway_model::ManualClock,
) {
    let health = record(MetricType::HealthCheck, "web", 0.0, T + 10, T + 10);
    let perf = record(MetricType::Performance, "web", 1234.5, T + 60_000, T + 360_000);
    let hour1 = record(MetricType::ErrorRate, "web", 2.5, T, T + 30 * 60_000);
    let hour2 = record(MetricType::ErrorRate, "web", 0.0, T + HOUR, T + HOUR + 60_000);
    let month = record(MetricType::Uptime, "web", 98.75, T, T + 10 * HOUR);
    let other_env = MetricRecord::new(
        "staging",
        "web",
        MetricType::Uptime,
        100.0,
        Thresholds::default_for(MetricType::Uptime, 99.5, 3),
        Timestamp::from_millis(T),
        Timestamp::from_millis(T + HOUR),
    );
    let all = [
        health.clone(),
        perf.clone(),
        hour1.clone(),
        hour2.clone(),
        month.clone(),
        other_env,
    ];
    assert_eq!(store.put_metric_records(&all).unwrap(), 6);
    // Every field back as written; statuses as the thresholds give them.
    let mut got = store.metric_records("prod", None).unwrap();
    got.sort_by_key(|r| (r.metric_type, r.window_start));
    assert_eq!(
        got,
        vec![
            health.clone(),
            perf.clone(),
            hour1.clone(),
            hour2.clone(),
            month.clone()
        ]
    );
    assert_eq!(
        got.iter().map(|r| (r.unit, r.status)).collect::<Vec<_>>(),
        [
            (MetricUnit::Count, HealthStatus::Healthy),
            (MetricUnit::Ms, HealthStatus::Warning),
            (MetricUnit::Percent, HealthStatus::Warning),
            (MetricUnit::Percent, HealthStatus::Healthy),
            (MetricUnit::Percent, HealthStatus::Critical),
        ]
    );
    // One type; newest window first.
    let rates = store.metric_records("prod", Some(MetricType::ErrorRate)).unwrap();
    assert_eq!(rates, vec![hour2.clone(), hour1.clone()]);
    // The rolling kinds are replaced as the window moves on, keeping their
    // id; an hour written again is updated in place, not duplicated.
    let health2 = record(MetricType::HealthCheck, "web", 3.0, T + 70_000, T + 70_000);
    let perf2 = record(MetricType::Performance, "web", 10.0, T + 120_000, T + 420_000);
    let hour1b = record(MetricType::ErrorRate, "web", 0.5, T, T + HOUR);
    store
        .put_metric_records(&[health2.clone(), perf2.clone(), hour1b.clone()])
        .unwrap();
    let got = store.metric_records("prod", None).unwrap();
    assert_eq!(got.len(), 5, "{got:#?}");
    let find = |t: MetricType, ws: i64| {
        got.iter()
            .find(|r| r.metric_type == t && r.window_start.as_millis() == ws)
            .cloned()
            .unwrap()
    };
    let h = find(MetricType::HealthCheck, T + 70_000);
    assert_eq!(
        (h.metric_id, h.metric_value, h.status),
        (health.metric_id, 3.0, HealthStatus::Critical)
    );
    let p = find(MetricType::Performance, T + 120_000);
    assert_eq!(
        (p.metric_id, p.metric_value, p.status),
        (perf.metric_id, 10.0, HealthStatus::Healthy)
    );
    let e = find(MetricType::ErrorRate, T);
    assert_eq!(
        (e.metric_id, e.metric_value, e.timestamp),
        (hour1.metric_id, 0.5, Timestamp::from_millis(T + HOUR))
    );
    assert_eq!(find(MetricType::ErrorRate, T + HOUR), hour2);
}

pub(super) fn refused_metric_records_write_nothing(store: &dyn Store, _clock: &rollway_model::ManualClock) {
    let good = record(MetricType::Performance, "web", 20.0, T, T + 300_000);
    let mut bad = record(MetricType::ErrorRate, "api", 0.5, T, T + 60_000);
    bad.status = HealthStatus::Critical;
    bad.unit = MetricUnit::Ms;
    let err = store.put_metric_records(&[good, bad]).unwrap_err();
    let StoreError::Invalid { what, id, violations } = &err else {
        panic!("{err}");
    };
    assert_eq!((*what, id.as_str()), ("metric record", "prod error_rate of api"));
    let mut rules: Vec<(&str, &str)> = violations.iter().map(|v| (v.field.as_str(), v.rule)).collect();
    rules.sort();
    assert_eq!(
        rules,
        [
            ("status", rollway_model::rules::metric::STATUS_BY_THRESHOLD),
            ("unit", rollway_model::rules::metric::UNIT_OF_TYPE)
        ]
    );
    assert!(err.to_string().contains("nothing was written"), "{err}");
    assert_eq!(store.metric_records("prod", None).unwrap(), Vec::new());
}

pub(super) fn old_metric_records_go_with_their_rollup_tier(store: &dyn Store, clock: &rollway_model::ManualClock) {
    let now = clock.now().as_millis();
    let day = 24 * HOUR;
    // Hours that ended 3 h, 2 h and 1 h ago; months that ended 50 and 10
    // days ago; a rolling average from long ago (current: kept).
    let old_hour = record(MetricType::ErrorRate, "web", 0.0, now - 4 * HOUR, now - 3 * HOUR);
    let cut_hour = record(MetricType::ErrorRate, "web", 0.0, now - 3 * HOUR, now - 2 * HOUR);
    let kept_hour = record(MetricType::ErrorRate, "web", 0.0, now - 2 * HOUR, now - HOUR);
    let old_month = record(MetricType::Uptime, "web", 100.0, now - 80 * day, now - 50 * day);
    let kept_month = record(MetricType::Uptime, "web", 100.0, now - 40 * day, now - 10 * day);
    let perf = record(
        MetricType::Performance,
        "web",
        5.0,
        now - 100 * day - 300_000,
        now - 100 * day,
    );
    store
        .put_metric_records(&[
            old_hour,
            cut_hour,
            kept_hour.clone(),
            old_month,
            kept_month.clone(),
            perf.clone(),
        ])
        .unwrap();
    let keep = rollway_store::Retention {
        hours: std::time::Duration::from_secs(2 * 3600),
        days: std::time::Duration::from_secs(30 * 86_400),
        batch: 1,
        ..rollway_store::Retention::default()
    };
    let pruned = store
        .prune_monitoring(&keep, &|_: &rollway_store::MonitorRecord, _| {
            rollway_model::spans::Spans::default()
        })
        .unwrap();
    assert_eq!(pruned.records, 3, "{pruned:?}");
    let mut left = store.metric_records("prod", None).unwrap();
    left.sort_by_key(|r| (r.metric_type, r.window_start));
    assert_eq!(left, vec![perf, kept_hour, kept_month]);
}
