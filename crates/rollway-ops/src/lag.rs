//! Schedule lag (actual start − planned start) as the server exports it: a
//! cumulative histogram with fixed bounds (OpenMetrics buckets) and p50/p99
//! from the model's latency sketch (1 % relative error), so quantiles are
//! not limited to the bucket bounds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rollway_model::sketch::LatencySketch;

/// The histogram's upper bounds, in milliseconds: 1 ms to a 10 s interval.
pub const LAG_BOUNDS_MS: [u64; 12] = [1, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000];

/// Lags recorded so far; shared by every monitor task.
#[derive(Debug, Default)]
pub(crate) struct LagRecorder {
    /// Counts per bound, plus one past the last bound (+Inf); not cumulative.
    buckets: [AtomicU64; LAG_BOUNDS_MS.len() + 1],
    count: AtomicU64,
    sum_us: AtomicU64,
    max_us: AtomicU64,
    sketch: Mutex<LatencySketch>,
}

/// What the lag histogram holds at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct LagSummary {
    pub count: u64,
    pub sum: Duration,
    pub max: Duration,
    /// `(upper bound, starts with at most that lag)`, cumulative, as
    /// OpenMetrics wants; the count is the +Inf bucket.
    pub buckets: Vec<(Duration, u64)>,
    pub p50: Option<Duration>,
    pub p99: Option<Duration>,
}

impl LagRecorder {
    pub(crate) fn record(&self, lag: Duration) {
        let us = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
        let i = LAG_BOUNDS_MS
            .iter()
            .position(|&b| us <= b * 1_000)
            .unwrap_or(LAG_BOUNDS_MS.len());
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
        // A panic elsewhere cannot leave a sketch half-added: `add` only
        // bumps one count.
        self.sketch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .add(lag.as_secs_f64() * 1_000.0);
    }

    pub(crate) fn summary(&self) -> LagSummary {
        let mut seen = 0;
        let buckets = LAG_BOUNDS_MS
            .iter()
            .zip(&self.buckets)
            .map(|(&bound, n)| {
                seen += n.load(Ordering::Relaxed);
                (Duration::from_millis(bound), seen)
            })
            .collect();
        let sketch = self.sketch.lock().unwrap_or_else(PoisonError::into_inner);
        let quantile = |q| {
            sketch
                .quantile(q)
                .map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1_000.0))
        };
        LagSummary {
            count: self.count.load(Ordering::Relaxed),
            sum: Duration::from_micros(self.sum_us.load(Ordering::Relaxed)),
            max: Duration::from_micros(self.max_us.load(Ordering::Relaxed)),
            buckets,
            p50: quantile(0.5),
            p99: quantile(0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lags_land_in_cumulative_buckets_and_quantiles() {
        let r = LagRecorder::default();
        // 90 starts on time, 9 at 30 ms, 1 at 20 s (past every bound).
        let lags = std::iter::repeat_n(0, 90)
            .chain(std::iter::repeat_n(30, 9))
            .chain([20_000]);
        for ms in lags {
            r.record(Duration::from_millis(ms));
        }
        let s = r.summary();
        assert_eq!(
            (s.count, s.sum, s.max),
            (100, Duration::from_millis(20_270), Duration::from_secs(20))
        );
        let cumulative: Vec<u64> = s.buckets.iter().map(|&(_, n)| n).collect();
        assert_eq!(cumulative, [90, 90, 90, 90, 99, 99, 99, 99, 99, 99, 99, 99]);
        assert_eq!(s.buckets[4].0, Duration::from_millis(50));
        assert_eq!(s.p50, Some(Duration::ZERO));
        let p99 = s.p99.unwrap().as_secs_f64() * 1_000.0;
        assert!((p99 - 30.0).abs() <= 0.3, "p99 {p99} ms is not 30 ms within 1 %");
        assert_eq!(LagRecorder::default().summary().p99, None);
    }
}
