//! When an alert opens and when it resolves (OPERATIONS.md "Alerts"): a
//! rule's condition must hold for its `for` duration before an alert opens
//! (a blip does not page), and an open alert resolves on its own after N
//! consecutive good evaluations (default 2), so a flapping metric neither
//! opens nor closes on every evaluation. A resolved alert never reopens: a
//! later breach starts a new one. Pure: the caller keeps the [`Tracker`]
//! per (rule, subject) between evaluations and moves the stored alert
//! through the seed 002 table.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// Which side of the threshold is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// Breached when the value is above the threshold (latency, errors).
    Above,
    /// Breached when the value is below it (uptime, free disk).
    Below,
}

/// A rule's condition on one metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub comparison: Comparison,
    pub threshold: f64,
}

impl Condition {
    pub fn above(threshold: f64) -> Self {
        Self {
            comparison: Comparison::Above,
            threshold,
        }
    }

    pub fn below(threshold: f64) -> Self {
        Self {
            comparison: Comparison::Below,
            threshold,
        }
    }

    pub fn breached(&self, value: f64) -> bool {
        match self.comparison {
            Comparison::Above => value > self.threshold,
            Comparison::Below => value < self.threshold,
        }
    }
}

/// How flapping is damped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Damping {
    /// How long a breach must last before an alert opens (`for`).
    pub hold: Duration,
    /// Consecutive good evaluations that resolve an open alert (≥ 1).
    pub resolve_after: u32,
}

/// Seed-free defaults: open at the first breached evaluation, resolve after
/// two good ones (OPERATIONS.md).
pub const DEFAULT_DAMPING: Damping = Damping {
    hold: Duration::ZERO,
    resolve_after: 2,
};

/// What the evaluations so far left behind, per (rule, subject).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tracker {
    /// When the current unbroken breach began.
    pub breach_since: Option<Timestamp>,
    /// Good evaluations in a row while an alert is open.
    pub good_streak: u32,
    /// Whether an alert of this rule and subject is open (or acknowledged).
    pub open: bool,
}

/// What one evaluation decides.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum Decision {
    /// Nothing is wrong and nothing is open.
    Quiet,
    /// Breached since `since`, not yet for long enough.
    Pending { since: Timestamp },
    /// Open a new alert now: breached since `since`.
    Open { since: Timestamp },
    /// The open alert's condition still holds.
    Firing,
    /// Good again, `good` evaluations in a row; not yet resolved.
    Recovering { good: u32 },
    /// Resolve the open alert.
    Resolve,
    /// No value this time (no data): nothing moves either way.
    NoData,
}

impl Tracker {
    /// Folds the evaluation at `at` (a value, or none when nothing was
    /// measured) into the tracker and says what to do.
    pub fn step(&mut self, condition: &Condition, damping: &Damping, at: Timestamp, value: Option<f64>) -> Decision {
        let Some(value) = value else {
            return Decision::NoData;
        };
        if condition.breached(value) {
            self.good_streak = 0;
            let since = *self.breach_since.get_or_insert(at);
            if self.open {
                return Decision::Firing;
            }
            let held = at.as_millis().saturating_sub(since.as_millis());
            if held >= i64::try_from(damping.hold.as_millis()).unwrap_or(i64::MAX) {
                self.open = true;
                Decision::Open { since }
            } else {
                Decision::Pending { since }
            }
        } else {
            self.breach_since = None;
            if !self.open {
                return Decision::Quiet;
            }
            self.good_streak += 1;
            if self.good_streak >= damping.resolve_after.max(1) {
                self.open = false;
                self.good_streak = 0;
                Decision::Resolve
            } else {
                Decision::Recovering { good: self.good_streak }
            }
        }
    }

    /// The open alert was resolved by hand (`rollway alerts resolve`): the
    /// next breach opens a new one once it has lasted `for`.
    pub fn resolved_by_hand(&mut self) {
        self.open = false;
        self.good_streak = 0;
        self.breach_since = None;
    }
}

/// A deployment of the alert's environment that finished shortly before it
/// opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentDeployment {
    pub id: String,
    pub version: String,
    pub finished_at: Timestamp,
}

/// The default lookback: an alert within an hour of a deployment names it.
pub const DEPLOY_LOOKBACK: Duration = Duration::from_secs(3600);

/// Whole minutes from `deployment` finishing to `opened_at`, when the alert
/// opened within `lookback` after it (OPERATIONS.md "Deploy-aware").
pub fn minutes_after(opened_at: Timestamp, deployment: &RecentDeployment, lookback: Duration) -> Option<i64> {
    let after = opened_at.as_millis() - deployment.finished_at.as_millis();
    let lookback = i64::try_from(lookback.as_millis()).unwrap_or(i64::MAX);
    (0..=lookback).contains(&after).then_some(after / 60_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evaluations every 10 s; `values[i]` at i × 10 s (`None`: no data).
    /// Returns each decision as a short word.
    fn run(condition: Condition, damping: Damping, values: &[Option<f64>]) -> Vec<String> {
        let mut t = Tracker::default();
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let at = Timestamp::from_millis(i as i64 * 10_000);
                match t.step(&condition, &damping, at, *v) {
                    Decision::Quiet => "-".to_owned(),
                    Decision::Pending { since } => format!("pending@{}", since.as_millis() / 1000),
                    Decision::Open { since } => format!("OPEN@{}", since.as_millis() / 1000),
                    Decision::Firing => "firing".to_owned(),
                    Decision::Recovering { good } => format!("good{good}"),
                    Decision::Resolve => "RESOLVE".to_owned(),
                    Decision::NoData => "nodata".to_owned(),
                }
            })
            .collect()
    }

    #[track_caller]
    fn check(condition: Condition, hold_s: u64, resolve_after: u32, values: &[Option<f64>], expected: &str) {
        let damping = Damping {
            hold: Duration::from_secs(hold_s),
            resolve_after,
        };
        assert_eq!(run(condition, damping, values).join(" "), expected);
    }

    const BAD: Option<f64> = Some(900.0);
    const OK: Option<f64> = Some(100.0);

    #[test]
    fn an_alert_opens_after_for_and_resolves_after_n_good() {
        let c = Condition::above(500.0);
        // No `for`: the first breach opens; two good resolve.
        check(c, 0, 2, &[OK, BAD, BAD, OK, OK, OK], "- OPEN@10 firing good1 RESOLVE -");
        // `for` 20 s: the breach must still hold 20 s after it began.
        check(c, 20, 2, &[BAD, BAD, BAD, BAD], "pending@0 pending@0 OPEN@0 firing");
        // A blip shorter than `for` never opens.
        check(
            c,
            20,
            2,
            &[BAD, BAD, OK, BAD, BAD, OK],
            "pending@0 pending@0 - pending@30 pending@30 -",
        );
        // Flapping while open: one good evaluation is not enough.
        check(c, 0, 2, &[BAD, OK, BAD, OK, BAD], "OPEN@0 good1 firing good1 firing");
        // After resolving, a new breach is a new alert.
        check(c, 0, 1, &[BAD, OK, BAD], "OPEN@0 RESOLVE OPEN@20");
        // resolve_after 0 behaves as 1.
        check(c, 0, 0, &[BAD, OK], "OPEN@0 RESOLVE");
    }

    #[test]
    fn no_data_moves_nothing() {
        let c = Condition::above(500.0);
        check(c, 20, 2, &[BAD, None, None, BAD], "pending@0 nodata nodata OPEN@0");
        check(c, 0, 2, &[BAD, OK, None, OK], "OPEN@0 good1 nodata RESOLVE");
    }

    #[test]
    fn below_thresholds_breach_under_them() {
        let uptime = Condition::below(99.5);
        check(
            uptime,
            0,
            1,
            &[Some(99.9), Some(99.5), Some(99.4), Some(99.6)],
            "- - OPEN@20 RESOLVE",
        );
    }

    #[test]
    fn a_hand_resolve_starts_over() {
        let c = Condition::above(1.0);
        let d = Damping {
            hold: Duration::from_secs(10),
            resolve_after: 2,
        };
        let mut t = Tracker::default();
        let at = |s: i64| Timestamp::from_millis(s * 1000);
        assert_eq!(t.step(&c, &d, at(0), Some(2.0)), Decision::Pending { since: at(0) });
        assert_eq!(t.step(&c, &d, at(10), Some(2.0)), Decision::Open { since: at(0) });
        t.resolved_by_hand();
        assert_eq!(t.step(&c, &d, at(20), Some(2.0)), Decision::Pending { since: at(20) });
        assert_eq!(t.step(&c, &d, at(30), Some(2.0)), Decision::Open { since: at(20) });
    }

    #[test]
    fn deployments_within_the_lookback_are_named_with_minutes_after() {
        let d = RecentDeployment {
            id: "01a2".into(),
            version: "v1.4.2".into(),
            finished_at: Timestamp::from_millis(1_000_000),
        };
        let check = |opened_ms: i64, expected: Option<i64>| {
            assert_eq!(
                minutes_after(Timestamp::from_millis(opened_ms), &d, DEPLOY_LOOKBACK),
                expected,
                "{opened_ms}"
            );
        };
        check(1_000_000 + 4 * 60_000 + 59_000, Some(4));
        check(1_000_000, Some(0));
        check(1_000_000 + 3_600_000, Some(60));
        check(1_000_000 + 3_600_001, None);
        check(999_999, None);
    }
}
