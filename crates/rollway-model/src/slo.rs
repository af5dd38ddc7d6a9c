//! Service level objectives over the seed 003 downtime (OPERATIONS.md "SLO
//! and burn rate", after the Google SRE workbook's multi-window rules): the
//! error budget is 1 − target; a window's burn rate is its downtime share
//! divided by the budget; page when both windows of a fast pair burn faster
//! than its factor, ticket on the slow pair.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::spans::Span;
use crate::time::Timestamp;
use crate::uptime::{Observation, UptimeInput, uptime};

/// What a burn-rate rule asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Page,
    Ticket,
}

/// A long and a short window that must both burn faster than `factor`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnRule {
    pub severity: Severity,
    pub long: Duration,
    pub short: Duration,
    pub factor: f64,
}

const MIN: u64 = 60;
const HOUR: u64 = 60 * MIN;

/// The workbook's three rules: 14.4 over 1 h and 5 min, 6 over 6 h and
/// 30 min (pages), 1 over 3 d and 6 h (a ticket).
pub const RULES: [BurnRule; 3] = [
    BurnRule {
        severity: Severity::Page,
        long: Duration::from_secs(HOUR),
        short: Duration::from_secs(5 * MIN),
        factor: 14.4,
    },
    BurnRule {
        severity: Severity::Page,
        long: Duration::from_secs(6 * HOUR),
        short: Duration::from_secs(30 * MIN),
        factor: 6.0,
    },
    BurnRule {
        severity: Severity::Ticket,
        long: Duration::from_secs(72 * HOUR),
        short: Duration::from_secs(6 * HOUR),
        factor: 1.0,
    },
];

/// One window's burn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowBurn {
    pub window_ms: i64,
    pub downtime_ms: i64,
    /// Observed time: the window without maintenance and no-data stretches.
    pub observed_ms: i64,
    /// Downtime share ÷ error budget; `None` when nothing was observed.
    pub burn_rate: Option<f64>,
}

/// A rule and whether it fires now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleVerdict {
    pub severity: Severity,
    pub factor: f64,
    pub long: WindowBurn,
    pub short: WindowBurn,
    pub firing: bool,
}

/// The burn of the window of length `window` that ends at `now`.
pub fn window_burn(
    now: Timestamp,
    window: Duration,
    observations: &[Observation],
    maintenance: &[Span],
    coverage: Duration,
    target: f64,
) -> WindowBurn {
    let len = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    let period = Span::ms(now.as_millis().saturating_sub(len), now.as_millis());
    let r = uptime(&UptimeInput {
        period,
        observations,
        maintenance,
        coverage,
    });
    let observed_ms = r.period_ms - r.maintenance_ms - r.no_data_ms;
    let budget = 1.0 - target;
    WindowBurn {
        window_ms: len,
        downtime_ms: r.downtime_ms,
        observed_ms,
        burn_rate: (observed_ms > 0 && budget > 0.0).then(|| r.downtime_ms as f64 / observed_ms as f64 / budget),
    }
}

/// Every rule of [`RULES`] evaluated at `now`.
pub fn evaluate(
    now: Timestamp,
    observations: &[Observation],
    maintenance: &[Span],
    coverage: Duration,
    target: f64,
) -> Vec<RuleVerdict> {
    RULES
        .iter()
        .map(|rule| {
            let long = window_burn(now, rule.long, observations, maintenance, coverage, target);
            let short = window_burn(now, rule.short, observations, maintenance, coverage, target);
            let over = |w: &WindowBurn| w.burn_rate.is_some_and(|b| b > rule.factor);
            RuleVerdict {
                severity: rule.severity,
                factor: rule.factor,
                firing: over(&long) && over(&short),
                long,
                short,
            }
        })
        .collect()
}

/// The default SLO window: the error budget is spent over 30 days.
pub const SLO_WINDOW: Duration = Duration::from_secs(30 * 24 * HOUR);

/// Every window a rule of [`RULES`] reads, shortest first, once each:
/// 5 min, 30 min, 1 h, 6 h, 3 d.
pub fn rule_windows() -> Vec<Duration> {
    let mut w: Vec<Duration> = RULES.iter().flat_map(|r| [r.long, r.short]).collect();
    w.sort_unstable();
    w.dedup();
    w
}

/// A window's burn from its terms (added up from rollups or computed over
/// samples): the downtime share of the observed time over the budget.
pub fn burn(window: Duration, downtime_ms: i64, observed_ms: i64, target: f64) -> WindowBurn {
    let budget = 1.0 - target;
    WindowBurn {
        window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX),
        downtime_ms,
        observed_ms,
        burn_rate: (observed_ms > 0 && budget > 0.0).then(|| downtime_ms as f64 / observed_ms as f64 / budget),
    }
}

/// The rules of [`RULES`] judged on burns already computed (one per
/// window of [`rule_windows`]); a window missing is one never observed.
pub fn judge(burns: &[WindowBurn]) -> Vec<RuleVerdict> {
    let find = |d: Duration| {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        burns.iter().find(|b| b.window_ms == ms).cloned().unwrap_or(WindowBurn {
            window_ms: ms,
            downtime_ms: 0,
            observed_ms: 0,
            burn_rate: None,
        })
    };
    RULES
        .iter()
        .map(|rule| {
            let (long, short) = (find(rule.long), find(rule.short));
            let over = |w: &WindowBurn| w.burn_rate.is_some_and(|b| b > rule.factor);
            RuleVerdict {
                severity: rule.severity,
                factor: rule.factor,
                firing: over(&long) && over(&short),
                long,
                short,
            }
        })
        .collect()
}

/// The error budget over an SLO window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// 1 − target, a fraction.
    pub budget: f64,
    /// The downtime the budget allows over the observed time.
    pub allowed_ms: i64,
    pub downtime_ms: i64,
    /// downtime / allowed (1.0: all spent; above: overspent); `None` when
    /// nothing was observed or the target is 100 %.
    pub used: Option<f64>,
    /// 1 − used, never below 0.
    pub left: Option<f64>,
}

/// The budget of a window where `observed_ms` was observed and
/// `downtime_ms` of it was down.
pub fn budget(downtime_ms: i64, observed_ms: i64, target: f64) -> Budget {
    let budget = 1.0 - target;
    let allowed = budget * observed_ms as f64;
    let used = (allowed > 0.0).then(|| downtime_ms as f64 / allowed);
    Budget {
        budget,
        allowed_ms: allowed.round() as i64,
        downtime_ms,
        used,
        left: used.map(|u| (1.0 - u).max(0.0)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::uptime::Outcome;

    /// One observation every 10 s over `[from, to)` seconds, unavailable in `down`.
    fn series(from: i64, to: i64, down: &[(i64, i64)]) -> Vec<Observation> {
        (from / 10..to / 10)
            .map(|i| i * 10)
            .map(|t| Observation {
                at: Timestamp::from_millis(t * 1000),
                outcome: if down.iter().any(|&(a, b)| (a..b).contains(&t)) {
                    Outcome::Unavailable
                } else {
                    Outcome::Ok
                },
                http_status: None,
            })
            .collect()
    }

    #[test]
    fn the_fast_page_fires_only_when_both_windows_burn() {
        const H: i64 = 3600;
        let now = 80 * H;
        let check = |down: &[(i64, i64)], expected: [bool; 3]| {
            let obs = series(0, now, down);
            let v = evaluate(
                Timestamp::from_millis(now * 1000),
                &obs,
                &[],
                Duration::from_secs(15),
                0.999,
            );
            let firing: Vec<bool> = v.iter().map(|r| r.firing).collect();
            assert_eq!(firing, expected, "{down:?}: {v:#?}");
        };
        // No downtime: nothing fires.
        check(&[], [false, false, false]);
        // 2 minutes down just now: burn 33 over 1 h and 400 over 5 min: the
        // fast page. 6 h: 5.6 < 6; 3 d: 0.46 < 1.
        check(&[(now - 120, now)], [true, false, false]);
        // 3 minutes down 20 minutes ago: the 5-minute window is clean; 6 h
        // burns 8.3 and 30 min 100: the slow page.
        check(&[(now - 1200, now - 1020)], [false, true, false]);
        // 5 minutes down 5 hours ago: 3 d burns 1.16 and 6 h 13.9: a ticket;
        // the 30-minute window is clean.
        check(&[(now - 5 * H, now - 5 * H + 300)], [false, false, true]);
        // A short spike must not page: 40 s down just now burns 133 over
        // 5 min but 11.1 over 1 h (< 14.4), 22 over 30 min but 1.9 over 6 h.
        check(&[(now - 45, now)], [false, false, false]);
        // 20 s unavailable is no downtime at all (a run of 30 s or less).
        check(&[(now - 20, now)], [false, false, false]);
    }

    /// The Clock moves on after a 2-minute outage: the page fires while the
    /// 5-minute window holds it and stops once that window is clean, though
    /// the hour still burns (the workbook's reset time).
    #[test]
    fn a_page_stops_when_the_short_window_clears() {
        const H: i64 = 3600;
        let end = 80 * H;
        let obs = series(0, end + 600, &[(end - 120, end)]);
        let firing_at = |t: i64| {
            // Only what had been observed by then.
            let seen: Vec<Observation> = obs.iter().filter(|o| o.at.as_millis() < t * 1000).cloned().collect();
            evaluate(
                Timestamp::from_millis(t * 1000),
                &seen,
                &[],
                Duration::from_secs(15),
                0.999,
            )[0]
            .firing
        };
        let timeline: Vec<(i64, bool)> = [end - 150, end, end + 60, end + 290, end + 310, end + 400]
            .into_iter()
            .map(|t| (t - end, firing_at(t)))
            .collect();
        assert_eq!(
            timeline,
            [
                (-150, false),
                (0, true),
                (60, true),
                (290, true),
                (310, false),
                (400, false)
            ]
        );
    }

    #[test]
    fn rules_judged_on_computed_burns_match_the_evaluation() {
        assert_eq!(
            rule_windows().iter().map(Duration::as_secs).collect::<Vec<_>>(),
            [300, 1800, 3600, 6 * 3600, 72 * 3600]
        );
        let now = 80 * 3600;
        let obs = series(0, now, &[(now - 120, now)]);
        let at = Timestamp::from_millis(now * 1000);
        let cov = Duration::from_secs(15);
        let burns: Vec<WindowBurn> = rule_windows()
            .into_iter()
            .map(|w| {
                let b = window_burn(at, w, &obs, &[], cov, 0.999);
                burn(w, b.downtime_ms, b.observed_ms, 0.999)
            })
            .collect();
        assert_eq!(judge(&burns), evaluate(at, &obs, &[], cov, 0.999));
        let b = budget(43_200, 2_592_000_000, 0.995);
        assert_eq!(b.allowed_ms, 12_960_000);
        assert!((b.used.unwrap() - 43_200.0 / 12_960_000.0).abs() < 1e-12);
        assert_eq!(budget(0, 0, 0.995).used, None);
    }

    #[test]
    fn burn_rate_is_downtime_share_over_budget() {
        let obs = series(0, 3600, &[(0, 360)]);
        let w = window_burn(
            Timestamp::from_millis(3_600_000),
            Duration::from_secs(3600),
            &obs,
            &[],
            Duration::from_secs(15),
            0.99,
        );
        assert_eq!((w.downtime_ms, w.observed_ms), (360_000, 3_600_000));
        assert!((w.burn_rate.unwrap() - 10.0).abs() < 1e-9, "{w:?}");
    }
}
