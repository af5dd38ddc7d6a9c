//! Seed 003's downtime and uptime, made exact (OPERATIONS.md, "The seed 003
//! numbers, exactly"), as pure functions over probe observations:
//!
//! - unavailability: each maximal run of consecutive `unavailable`
//!   observations spans from its first observation to the next one that got
//!   a response (or the end of the period); a span longer than 30 s is
//!   downtime, whole;
//! - errors: a UTC minute is an error minute when more than half of its
//!   observations that got a response are 5xx; a run of two or more
//!   consecutive error minutes is downtime, whole;
//! - downtime is the union of those spans; maintenance windows and stretches
//!   with no observations (`no_data`) are removed from both the downtime and
//!   the period; uptime = 1 − downtime / (period − maintenance − no_data).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::spans::{Span, Spans};
use crate::time::Timestamp;

/// An unavailable run must last longer than this to count as downtime.
pub const UNAVAILABLE_GRACE: Duration = Duration::from_secs(30);

const MINUTE_MS: i64 = 60_000;

/// What one probe saw (OPERATIONS.md "Samples").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A response that met every expectation.
    Ok,
    /// A response with status 5xx or a failed expectation.
    Error,
    /// No response at all: refused, reset, timeout, TLS or DNS failure.
    Unavailable,
}

impl Outcome {
    /// Every outcome, in order of severity.
    pub const ALL: [Outcome; 3] = [Outcome::Ok, Outcome::Error, Outcome::Unavailable];

    /// The canonical spelling (as serde writes it).
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Unavailable => "unavailable",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Outcome::ALL
            .into_iter()
            .find(|o| o.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown outcome '{s}' (expected one of: ok, error, unavailable)"))
    }
}

/// One probe result, as far as the uptime arithmetic needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub at: Timestamp,
    pub outcome: Outcome,
    /// The HTTP status, when there was an HTTP response.
    pub http_status: Option<u16>,
}

impl Observation {
    fn responded(&self) -> bool {
        self.outcome != Outcome::Unavailable
    }

    fn is_5xx(&self) -> bool {
        self.http_status.is_some_and(|s| (500..600).contains(&s))
    }
}

/// What to compute uptime over.
#[derive(Debug, Clone)]
pub struct UptimeInput<'a> {
    pub period: Span,
    /// Sorted by time.
    pub observations: &'a [Observation],
    /// Maintenance windows (any order, may overlap or reach outside the period).
    pub maintenance: &'a [Span],
    /// How long one observation speaks for: time further than this from
    /// every observation is `no_data` (a monitor's interval plus its grace).
    pub coverage: Duration,
}

/// The seed 003 numbers of one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UptimeReport {
    pub period: Span,
    pub period_ms: i64,
    /// Downtime inside the period, outside maintenance and no-data stretches.
    pub downtime_ms: i64,
    /// Maintenance inside the period.
    pub maintenance_ms: i64,
    /// No observations, inside the period and outside maintenance.
    pub no_data_ms: i64,
    /// 1 − downtime / (period − maintenance − no_data); `None` when nothing
    /// of the period was observed outside maintenance.
    pub uptime: Option<f64>,
    /// The downtime as spans (after maintenance and no data are removed).
    pub downtime: Spans,
}

impl UptimeReport {
    /// Downtime in seconds (fractional).
    pub fn downtime_seconds(&self) -> f64 {
        self.downtime_ms as f64 / 1000.0
    }

    /// Downtime in minutes, as seed 003 counts it (seconds / 60).
    pub fn downtime_minutes(&self) -> f64 {
        self.downtime_ms as f64 / 60_000.0
    }
}

/// Unavailable runs longer than [`UNAVAILABLE_GRACE`], each whole, cut to
/// `period_end`.
pub fn unavailable_downtime(observations: &[Observation], period_end: Timestamp) -> Spans {
    let grace = i64::try_from(UNAVAILABLE_GRACE.as_millis()).unwrap_or(i64::MAX);
    let mut out = Vec::new();
    let mut run_start: Option<Timestamp> = None;
    for o in observations {
        match (o.responded(), run_start) {
            (false, None) => run_start = Some(o.at),
            (true, Some(start)) => {
                out.push(Span::new(start, o.at));
                run_start = None;
            }
            _ => {}
        }
    }
    if let Some(start) = run_start {
        out.push(Span::new(start, period_end.max(start)));
    }
    Spans::from_spans(out.into_iter().filter(|s| s.len_ms() > grace))
}

/// Runs of two or more consecutive error minutes, each whole.
pub fn error_minute_downtime(observations: &[Observation]) -> Spans {
    // Per UTC minute: observations that got a response, and how many were 5xx.
    let mut minutes: Vec<(i64, u32, u32)> = Vec::new();
    for o in observations.iter().filter(|o| o.responded()) {
        let m = o.at.as_millis().div_euclid(MINUTE_MS);
        match minutes.last_mut() {
            Some((last, n, bad)) if *last == m => {
                *n += 1;
                *bad += u32::from(o.is_5xx());
            }
            _ => minutes.push((m, 1, u32::from(o.is_5xx()))),
        }
    }
    let error_minutes: Vec<i64> = minutes
        .into_iter()
        .filter(|&(_, n, bad)| bad * 2 > n)
        .map(|(m, _, _)| m)
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < error_minutes.len() {
        let mut j = i;
        while j + 1 < error_minutes.len() && error_minutes[j + 1] == error_minutes[j] + 1 {
            j += 1;
        }
        if j > i {
            out.push(Span::ms(
                error_minutes[i] * MINUTE_MS,
                (error_minutes[j] + 1) * MINUTE_MS,
            ));
        }
        i = j + 1;
    }
    Spans::from_spans(out)
}

/// The stretches of `period` further than `coverage` from every observation.
pub fn no_data(observations: &[Observation], period: Span, coverage: Duration) -> Spans {
    let cover = i64::try_from(coverage.as_millis()).unwrap_or(i64::MAX);
    let covered = Spans::from_spans(
        observations
            .iter()
            .map(|o| Span::new(o.at, Timestamp::from_millis(o.at.as_millis().saturating_add(cover)))),
    );
    Spans::from_spans([period]).minus(&covered)
}

/// Downtime, maintenance, no data and uptime of one period.
pub fn uptime(input: &UptimeInput<'_>) -> UptimeReport {
    let period = Spans::from_spans([input.period]);
    let maintenance = Spans::from_spans(input.maintenance.iter().copied()).intersect(&period);
    let no_data = no_data(input.observations, input.period, input.coverage).minus(&maintenance);
    let excluded = maintenance.union(&no_data);
    let downtime = unavailable_downtime(input.observations, input.period.end)
        .union(&error_minute_downtime(input.observations))
        .intersect(&period)
        .minus(&excluded);
    let observed = input.period.len_ms() - excluded.total_ms();
    let downtime_ms = downtime.total_ms();
    UptimeReport {
        period: input.period,
        period_ms: input.period.len_ms(),
        downtime_ms,
        maintenance_ms: maintenance.total_ms(),
        no_data_ms: no_data.total_ms(),
        uptime: (observed > 0).then(|| 1.0 - downtime_ms as f64 / observed as f64),
        downtime,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const S: i64 = 1000;

    /// `(second, outcome letter, status)`: `o` ok, `e` error, `u` unavailable.
    fn obs(v: &[(i64, char, u16)]) -> Vec<Observation> {
        v.iter()
            .map(|&(sec, c, status)| Observation {
                at: Timestamp::from_millis(sec * S),
                outcome: match c {
                    'o' => Outcome::Ok,
                    'e' => Outcome::Error,
                    _ => Outcome::Unavailable,
                },
                http_status: (status != 0).then_some(status),
            })
            .collect()
    }

    /// Every `step` seconds from `from` (included) to `to` (excluded).
    fn every(from: i64, to: i64, step: i64, c: char, status: u16) -> Vec<(i64, char, u16)> {
        (0..)
            .map(|i| from + i * step)
            .take_while(|&t| t < to)
            .map(|t| (t, c, status))
            .collect()
    }

    fn secs(s: &Spans) -> Vec<(i64, i64)> {
        s.spans()
            .iter()
            .map(|x| (x.start.as_millis() / S, x.end.as_millis() / S))
            .collect()
    }

    #[test]
    fn unavailable_runs_count_whole_when_longer_than_30_seconds() {
        let check = |v: &[(i64, char, u16)], end: i64, expected: &[(i64, i64)]| {
            let got = unavailable_downtime(&obs(v), Timestamp::from_millis(end * S));
            assert_eq!(secs(&got), expected, "{v:?}");
        };
        // 30 s exactly is not longer than 30 s.
        check(&[(0, 'o', 200), (10, 'u', 0), (20, 'u', 0), (40, 'o', 200)], 100, &[]);
        check(
            &[(0, 'o', 200), (10, 'u', 0), (20, 'u', 0), (41, 'o', 200)],
            100,
            &[(10, 41)],
        );
        // An error response ends the run too: it got a response.
        check(&[(10, 'u', 0), (50, 'e', 500)], 100, &[(10, 50)]);
        // A run still open at the end of the period reaches it.
        check(&[(0, 'o', 200), (60, 'u', 0)], 100, &[(60, 100)]);
        check(&[(0, 'o', 200), (80, 'u', 0)], 100, &[]);
        check(
            &[(0, 'u', 0), (5, 'o', 200), (10, 'u', 0), (45, 'o', 200)],
            100,
            &[(10, 45)],
        );
    }

    #[test]
    fn two_or_more_consecutive_error_minutes_count_whole() {
        let check = |v: Vec<(i64, char, u16)>, expected: &[(i64, i64)]| {
            assert_eq!(secs(&error_minute_downtime(&obs(&v))), expected, "{v:?}");
        };
        // One error minute alone is not downtime.
        check(every(60, 120, 10, 'e', 500), &[]);
        check(every(60, 180, 10, 'e', 500), &[(60, 180)]);
        // Exactly half is not more than half.
        let half: Vec<_> = (0..12)
            .map(|i| {
                (
                    60 + i * 10,
                    if i % 2 == 0 { 'e' } else { 'o' },
                    if i % 2 == 0 { 500 } else { 200 },
                )
            })
            .collect();
        check(half, &[]);
        // Unavailable observations do not count in either direction.
        let mut v = every(0, 120, 10, 'e', 503);
        v.extend(every(5, 120, 10, 'u', 0));
        v.sort_unstable();
        check(v, &[(0, 120)]);
        // A 4xx failed expectation is an error but not a 5xx.
        check(every(0, 180, 10, 'e', 404), &[]);
        // A minute with no responses breaks the run.
        let mut v = every(0, 60, 10, 'e', 500);
        v.extend(every(120, 240, 10, 'e', 500));
        check(v, &[(120, 240)]);
    }

    #[test]
    fn no_data_is_time_no_observation_speaks_for() {
        let check = |v: &[(i64, char, u16)], expected: &[(i64, i64)]| {
            let got = no_data(&obs(v), Span::ms(0, 100 * S), Duration::from_secs(15));
            assert_eq!(secs(&got), expected, "{v:?}");
        };
        check(&[], &[(0, 100)]);
        check(
            &[(0, 'o', 200), (10, 'o', 200), (20, 'u', 0), (30, 'o', 200)],
            &[(45, 100)],
        );
        check(&[(10, 'o', 200), (90, 'o', 200)], &[(0, 10), (25, 90)]);
    }

    #[test]
    fn uptime_removes_maintenance_and_no_data_from_both_terms() {
        // 10 minutes at a 10 s interval; unavailable 120–200 s (80 s: downtime);
        // maintenance 150–260 s; nothing observed 400–500 s.
        let mut v: Vec<(i64, char, u16)> = every(0, 600, 10, 'o', 200)
            .into_iter()
            .filter(|&(t, _, _)| !(400..500).contains(&t))
            .collect();
        for o in v.iter_mut().filter(|o| (120..200).contains(&o.0)) {
            *o = (o.0, 'u', 0);
        }
        let observations = obs(&v);
        let r = uptime(&UptimeInput {
            period: Span::ms(0, 600 * S),
            observations: &observations,
            maintenance: &[Span::ms(150 * S, 260 * S)],
            coverage: Duration::from_secs(15),
        });
        assert_eq!(secs(&r.downtime), [(120, 150)]);
        assert_eq!(r.downtime_ms, 30 * S);
        assert_eq!(r.maintenance_ms, 110 * S);
        // The last observation before the gap (390 s) speaks until 405 s.
        assert_eq!(r.no_data_ms, 95 * S);
        let observed = (600 - 110 - 95) as f64;
        assert_eq!(r.uptime, Some(1.0 - 30.0 / observed));
        assert_eq!(r.downtime_minutes(), 0.5);
    }

    #[test]
    fn a_period_never_observed_has_no_uptime() {
        let r = uptime(&UptimeInput {
            period: Span::ms(0, 60 * S),
            observations: &[],
            maintenance: &[],
            coverage: Duration::from_secs(15),
        });
        assert_eq!((r.uptime, r.no_data_ms, r.downtime_ms), (None, 60 * S, 0));
    }
}
