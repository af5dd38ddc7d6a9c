//! Shape rules of seed 003 Monitoring Data (a metric record): a finite
//! value in its unit's range, the unit of its type, ordered thresholds, the
//! status those thresholds give, the window its aggregation rule names,
//! and a source.

use crate::entities::MetricRecord;
use crate::entities::metric_record::{ERROR_RATE_WINDOW_MS, LONGEST_MONTH_MS, PERFORMANCE_WINDOW_MS};
use crate::rules::Violation;
use crate::status::{MetricType, MetricUnit};

/// Seed 003 "`metric_value`: Float - Measured value": finite; a `%` from 0
/// to 100, `ms` and `count` not negative.
pub const VALUE_IN_RANGE: &str = "metric.value-in-range";
/// Seed 003 "Metric unit (ms, %, count)": the unit of the record's type.
pub const UNIT_OF_TYPE: &str = "metric.unit-of-type";
/// Seed 003 `threshold_warning`, `threshold_critical`: finite, and the
/// warning one reached first (warning ≤ critical where higher is worse,
/// warning ≥ critical for uptime).
pub const THRESHOLDS_ORDERED: &str = "metric.thresholds-ordered";
/// Seed 003 "`status`: Enum - healthy, warning, critical": the one the
/// thresholds give the value.
pub const STATUS_BY_THRESHOLD: &str = "metric.status-by-threshold";
/// Seed 003 "Aggregation Rules": a health check is one sample (the
/// latest), performance a 5-minute window, an error rate one UTC hour,
/// uptime a month (to date).
pub const AGGREGATION_WINDOW: &str = "metric.aggregation-window";
/// Seed 003 "`source`: String - Monitoring service identifier", and the
/// environment it belongs to.
pub const SOURCE_REQUIRED: &str = "metric.source-required";

pub const RULES: &[&str] = &[
    VALUE_IN_RANGE,
    UNIT_OF_TYPE,
    THRESHOLDS_ORDERED,
    STATUS_BY_THRESHOLD,
    AGGREGATION_WINDOW,
    SOURCE_REQUIRED,
];

fn in_range(unit: MetricUnit, v: f64) -> bool {
    v.is_finite()
        && match unit {
            MetricUnit::Percent => (0.0..=100.0).contains(&v),
            MetricUnit::Ms | MetricUnit::Count => v >= 0.0,
        }
}

/// Every rule above.
pub fn validate(r: &MetricRecord) -> Vec<Violation> {
    let mut out = Vec::new();
    let t = r.metric_type;
    let unit = t.unit();
    if r.unit != unit {
        out.push(Violation::new(
            "unit",
            UNIT_OF_TYPE,
            format!("a {t} record is kept in {unit}, not {}", r.unit),
        ));
    }
    if !in_range(unit, r.metric_value) {
        out.push(Violation::new(
            "metric_value",
            VALUE_IN_RANGE,
            format!("the value {} is not a {unit} value{}", r.metric_value, range_hint(unit)),
        ));
    }
    for (field, v) in [
        ("threshold_warning", r.threshold_warning),
        ("threshold_critical", r.threshold_critical),
    ] {
        if !in_range(unit, v) {
            out.push(Violation::new(
                field,
                THRESHOLDS_ORDERED,
                format!("the threshold {v} is not a {unit} threshold{}", range_hint(unit)),
            ));
        }
    }
    let (w, c) = (r.threshold_warning, r.threshold_critical);
    let ordered = if t.higher_is_worse() { w <= c } else { w >= c };
    if !ordered {
        out.push(Violation::new(
            "threshold_critical",
            THRESHOLDS_ORDERED,
            if t.higher_is_worse() {
                format!("the critical threshold {c} is below the warning one {w}: a larger {t} is worse")
            } else {
                format!("the critical threshold {c} is above the warning one {w}: a lower {t} is worse")
            },
        ));
    }
    let earned = r.thresholds().status(t, r.metric_value);
    if in_range(unit, r.metric_value) && r.status != earned {
        out.push(Violation::new(
            "status",
            STATUS_BY_THRESHOLD,
            format!(
                "the value {} against warning {w} and critical {c} is {earned}, not {}",
                r.metric_value, r.status
            ),
        ));
    }
    let span = r.timestamp.as_millis() - r.window_start.as_millis();
    let window = match t {
        MetricType::HealthCheck => {
            (span != 0).then(|| "a health check is its latest sample: the window starts at its timestamp".to_owned())
        }
        MetricType::Performance => (span != PERFORMANCE_WINDOW_MS).then(|| {
            format!(
                "a performance record is a 5-minute rolling average, not {} s",
                span / 1000
            )
        }),
        MetricType::ErrorRate => (r.window_start.as_millis().rem_euclid(ERROR_RATE_WINDOW_MS) != 0
            || span <= 0
            || span > ERROR_RATE_WINDOW_MS)
            .then(|| "an error rate is hourly: its window starts on a UTC hour and lasts at most one".to_owned()),
        MetricType::Uptime => (span <= 0 || span > LONGEST_MONTH_MS)
            .then(|| "an uptime record is monthly: its window lasts at most a month".to_owned()),
    };
    if let Some(message) = window {
        out.push(Violation::new("window_start", AGGREGATION_WINDOW, message));
    }
    if r.source.trim().is_empty() {
        out.push(Violation::new(
            "source",
            SOURCE_REQUIRED,
            "a metric record needs a source: the monitor it is of",
        ));
    }
    if r.environment.trim().is_empty() {
        out.push(Violation::new(
            "environment_id",
            SOURCE_REQUIRED,
            "a metric record needs the environment it belongs to",
        ));
    }
    out
}

fn range_hint(unit: MetricUnit) -> &'static str {
    match unit {
        MetricUnit::Percent => ": use 0 to 100",
        MetricUnit::Ms | MetricUnit::Count => ": use a finite number, 0 or more",
    }
}
