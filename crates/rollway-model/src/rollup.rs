//! Rollups: what a bucket of time (a minute, an hour, a day) keeps of a
//! monitor's samples — counts per outcome, the 5xx count, latency sum, min,
//! max and a mergeable sketch, and its downtime, maintenance and no-data
//! milliseconds — so that averages, error rates, P95 and uptime over any
//! window are merges and sums (OPERATIONS.md "Samples and rollups"), and the
//! seed 003 response-time targets judged on them.

use serde::{Deserialize, Serialize};

use crate::sketch::LatencySketch;
use crate::spans::{Span, Spans};
use crate::time::Timestamp;
use crate::uptime::Outcome;

/// One probe result with its latency, as rollups take it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub at: Timestamp,
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    /// Milliseconds to the answer; `None` without one.
    pub latency_ms: Option<f64>,
}

/// The aggregate of one bucket (or of any merge of buckets).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    pub ok: u64,
    pub error: u64,
    pub unavailable: u64,
    pub status_5xx: u64,
    /// Over the samples that have a latency.
    pub latency_count: u64,
    pub latency_sum_ms: f64,
    pub latency_min_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
    pub sketch: LatencySketch,
    pub downtime_ms: i64,
    pub maintenance_ms: i64,
    pub no_data_ms: i64,
}

impl Rollup {
    /// Counts `m` in.
    pub fn add(&mut self, m: &Measured) {
        match m.outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Error => self.error += 1,
            Outcome::Unavailable => self.unavailable += 1,
        }
        if m.http_status.is_some_and(|s| (500..600).contains(&s)) {
            self.status_5xx += 1;
        }
        if let Some(l) = m.latency_ms.filter(|l| l.is_finite() && *l >= 0.0) {
            self.latency_count += 1;
            self.latency_sum_ms += l;
            self.latency_min_ms = Some(self.latency_min_ms.map_or(l, |x| x.min(l)));
            self.latency_max_ms = Some(self.latency_max_ms.map_or(l, |x| x.max(l)));
            self.sketch.add(l);
        }
    }

    /// Adds `other` in: the rollup of both buckets together.
    pub fn merge(&mut self, other: &Rollup) {
        self.ok += other.ok;
        self.error += other.error;
        self.unavailable += other.unavailable;
        self.status_5xx += other.status_5xx;
        self.latency_count += other.latency_count;
        self.latency_sum_ms += other.latency_sum_ms;
        self.latency_min_ms = min_opt(self.latency_min_ms, other.latency_min_ms, f64::min);
        self.latency_max_ms = min_opt(self.latency_max_ms, other.latency_max_ms, f64::max);
        self.sketch.merge(&other.sketch);
        self.downtime_ms += other.downtime_ms;
        self.maintenance_ms += other.maintenance_ms;
        self.no_data_ms += other.no_data_ms;
    }

    pub fn samples(&self) -> u64 {
        self.ok + self.error + self.unavailable
    }

    pub fn average_ms(&self) -> Option<f64> {
        (self.latency_count > 0).then(|| self.latency_sum_ms / self.latency_count as f64)
    }

    /// Error rate (seed 003): error and unavailable samples over all samples.
    pub fn error_rate(&self) -> Option<f64> {
        let n = self.samples();
        (n > 0).then(|| (self.error + self.unavailable) as f64 / n as f64)
    }

    pub fn p95_ms(&self) -> Option<f64> {
        self.sketch.quantile(0.95)
    }

    /// Sets the time terms of a bucket from spans computed over the whole
    /// series (downtime depends on neighbouring buckets, so it is cut here,
    /// not counted here).
    pub fn set_time_terms(&mut self, bucket: Span, downtime: &Spans, maintenance: &Spans, no_data: &Spans) {
        self.downtime_ms = downtime.within(bucket).total_ms();
        self.maintenance_ms = maintenance.within(bucket).total_ms();
        self.no_data_ms = no_data.within(bucket).total_ms();
    }
}

fn min_opt(a: Option<f64>, b: Option<f64>, pick: fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(pick(x, y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Merges every rollup of `parts` into one.
pub fn merge_all<'a>(parts: impl IntoIterator<Item = &'a Rollup>) -> Rollup {
    let mut out = Rollup::default();
    for p in parts {
        out.merge(p);
    }
    out
}

/// A response-time target's verdict (seed 003 "Response Time Tracking").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    Breached,
    /// No samples in the window.
    NoData,
}

/// The seed 003 targets of one monitor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Targets {
    pub p95_ms: f64,
    pub average_ms: f64,
    /// A fraction: 0.01 is 1 %.
    pub error_rate: f64,
}

impl Default for Targets {
    /// Seed 003: P95 under 2000 ms, average under 1000 ms, errors under 1 %.
    fn default() -> Self {
        Self {
            p95_ms: 2000.0,
            average_ms: 1000.0,
            error_rate: 0.01,
        }
    }
}

/// One target with its value and verdict.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TargetCheck {
    pub value: Option<f64>,
    pub target: f64,
    pub verdict: Verdict,
}

/// The three targets judged on a window's rollup.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TargetReport {
    pub p95_ms: TargetCheck,
    pub average_ms: TargetCheck,
    pub error_rate: TargetCheck,
}

impl Targets {
    /// Each target is met when the value is strictly below it (seed 003 "<").
    pub fn judge(&self, window: &Rollup) -> TargetReport {
        let check = |value: Option<f64>, target: f64| TargetCheck {
            value,
            target,
            verdict: match value {
                None => Verdict::NoData,
                Some(v) if v < target => Verdict::Ok,
                Some(_) => Verdict::Breached,
            },
        };
        TargetReport {
            p95_ms: check(window.p95_ms(), self.p95_ms),
            average_ms: check(window.average_ms(), self.average_ms),
            error_rate: check(window.error_rate(), self.error_rate),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn m(outcome: Outcome, status: Option<u16>, latency: Option<f64>) -> Measured {
        Measured {
            at: Timestamp::from_millis(0),
            outcome,
            http_status: status,
            latency_ms: latency,
        }
    }

    #[test]
    fn a_merge_of_rollups_equals_the_rollup_of_all_samples() {
        let all = [
            m(Outcome::Ok, Some(200), Some(120.0)),
            m(Outcome::Error, Some(503), Some(40.0)),
            m(Outcome::Unavailable, None, None),
            m(Outcome::Ok, Some(200), Some(3000.0)),
            m(Outcome::Error, Some(404), Some(10.0)),
        ];
        let mut whole = Rollup::default();
        all.iter().for_each(|x| whole.add(x));
        let mut a = Rollup::default();
        all[..2].iter().for_each(|x| a.add(x));
        let mut b = Rollup::default();
        all[2..].iter().for_each(|x| b.add(x));
        assert_eq!(merge_all([&a, &b]), whole);
        assert_eq!(
            (whole.ok, whole.error, whole.unavailable, whole.status_5xx),
            (2, 2, 1, 1)
        );
        assert_eq!(whole.average_ms(), Some(3170.0 / 4.0));
        assert_eq!(whole.error_rate(), Some(3.0 / 5.0));
        assert_eq!((whole.latency_min_ms, whole.latency_max_ms), (Some(10.0), Some(3000.0)));
    }

    #[test]
    fn targets_are_met_only_strictly_below() {
        let check = |latencies: &[f64], errors: u64, expected: [Verdict; 3]| {
            let mut r = Rollup::default();
            for &l in latencies {
                r.add(&m(Outcome::Ok, Some(200), Some(l)));
            }
            for _ in 0..errors {
                r.add(&m(Outcome::Unavailable, None, None));
            }
            let t = Targets::default().judge(&r);
            assert_eq!(
                [t.p95_ms.verdict, t.average_ms.verdict, t.error_rate.verdict],
                expected,
                "{latencies:?} + {errors} errors: {t:?}"
            );
        };
        use Verdict::{Breached, NoData, Ok};
        check(&[], 0, [NoData, NoData, NoData]);
        check(&[100.0; 100], 0, [Ok, Ok, Ok]);
        check(&[100.0; 99], 1, [Ok, Ok, Breached]);
        check(&[1000.0; 10], 0, [Ok, Breached, Ok]);
        let mut slow_tail = vec![100.0; 90];
        slow_tail.extend([5000.0; 10]);
        check(&slow_tail, 0, [Breached, Ok, Ok]);
    }
}
