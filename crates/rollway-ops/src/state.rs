//! A monitor's state (OPERATIONS.md "Monitors"): `up`, `down`, `pending`,
//! `maintenance` or `paused`, from its samples in time order. Pure: the
//! caller says whether the monitor is paused or in a maintenance window.
//!
//! - a failing sample (`error` or `unavailable`) makes the monitor
//!   `pending` until `retries` failures in a row, then `down`;
//! - an `ok` sample makes it `up` and clears the run of failures;
//! - `paused`, then `maintenance`, win over what the samples say;
//! - before its first sample (and after a resume) a monitor has no state.
//!
//! The model has no monitor state yet (its `HealthStatus` is seed 003's
//! healthy / warning / critical); this belongs there next to the uptime
//! arithmetic once the store keeps it.

use std::fmt;

use rollway_model::time::Timestamp;
use rollway_model::uptime::Outcome;
use serde::{Serialize, Serializer};

/// What a monitor is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MonitorStatus {
    Up,
    /// `retries` failures in a row: counted as down.
    Down,
    /// Failing, but fewer than `retries` failures in a row: not yet down.
    Pending,
    /// In a maintenance window, whatever the samples say.
    Maintenance,
    /// Not probed until resumed.
    Paused,
}

impl MonitorStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
            Self::Pending => "pending",
            Self::Maintenance => "maintenance",
            Self::Paused => "paused",
        }
    }
}

impl fmt::Display for MonitorStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for MonitorStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What the samples so far say about a monitor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonitorState {
    /// Failing samples in a row, up to the latest.
    failures: u32,
    /// The latest sample: seed 002's lastCheckedAt and lastStatus.
    latest: Option<(Timestamp, Outcome)>,
}

impl MonitorState {
    /// Takes a sample into account; one older than the latest (a late push
    /// with an explicit time) changes nothing and gives `false`.
    pub fn observe(&mut self, at: Timestamp, outcome: Outcome) -> bool {
        if self.latest.is_some_and(|(latest, _)| at < latest) {
            return false;
        }
        self.latest = Some((at, outcome));
        self.failures = match outcome {
            Outcome::Ok => 0,
            Outcome::Error | Outcome::Unavailable => self.failures.saturating_add(1),
        };
        true
    }

    /// Forgets the samples: a resumed monitor starts over, so failures
    /// from before the pause do not count towards `retries`.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Failing samples in a row, up to the latest.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The latest sample's time and outcome.
    pub fn latest(&self) -> Option<(Timestamp, Outcome)> {
        self.latest
    }

    /// The state, given the monitor's `retries` (at least 1: 0 counts as 1)
    /// and whether it is paused or in a maintenance window now; `None`
    /// before the first sample.
    pub fn status(&self, retries: u32, paused: bool, in_maintenance: bool) -> Option<MonitorStatus> {
        if paused {
            return Some(MonitorStatus::Paused);
        }
        if in_maintenance {
            return Some(MonitorStatus::Maintenance);
        }
        self.latest?;
        Some(match self.failures {
            0 => MonitorStatus::Up,
            n if n >= retries.max(1) => MonitorStatus::Down,
            _ => MonitorStatus::Pending,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One thing that happens to a monitor.
    #[derive(Clone, Copy)]
    enum Step {
        Pass,
        Fail,
        NoAnswer,
        /// A sample timed before the latest one, failing.
        LateFail,
        Pause,
        Resume,
        MaintOn,
        MaintOff,
    }
    use Step::*;

    /// `(what, retries, steps, the state before the first step and after
    /// each)`; "-" is no state.
    const CASES: &[(&str, u32, &[Step], &str)] = &[
        ("nothing seen yet", 3, &[], "-"),
        ("an ok is up", 3, &[Pass], "- up"),
        (
            "failures are pending until retries, then down",
            3,
            &[Pass, Fail, NoAnswer, Fail, Fail],
            "- up pending pending down down",
        ),
        ("a first failure is pending too", 2, &[Fail, Fail], "- pending down"),
        (
            "retries 1: the first failure is down",
            1,
            &[Pass, NoAnswer, Pass],
            "- up down up",
        ),
        ("retries 0 counts as 1", 0, &[Fail], "- down"),
        (
            "one ok clears the run of failures",
            3,
            &[Fail, Fail, Pass, Fail, Fail, Fail],
            "- pending pending up pending pending down",
        ),
        (
            "down stays down until an ok",
            2,
            &[Fail, Fail, Fail, Pass],
            "- pending down down up",
        ),
        (
            "a late sample changes nothing",
            2,
            &[Pass, LateFail, LateFail, Fail],
            "- up up up pending",
        ),
        (
            "paused wins; a resume starts over",
            2,
            &[Fail, Pause, Fail, Resume, Fail, Fail],
            "- pending paused paused - pending down",
        ),
        (
            "maintenance wins while it lasts; the samples count on",
            2,
            &[Pass, MaintOn, Fail, Fail, MaintOff, Pass],
            "- up maintenance maintenance maintenance down up",
        ),
        (
            "paused wins over maintenance",
            3,
            &[Pass, MaintOn, Pause, Resume, MaintOff],
            "- up maintenance paused maintenance -",
        ),
        (
            "maintenance before any sample",
            3,
            &[MaintOn, MaintOff],
            "- maintenance -",
        ),
    ];

    #[test]
    fn sequences_of_samples_give_states() {
        for &(what, retries, steps, expected) in CASES {
            let mut state = MonitorState::default();
            let (mut paused, mut maintenance) = (false, false);
            let mut t = 1_000;
            let mut got = vec![
                state
                    .status(retries, paused, maintenance)
                    .map_or("-", MonitorStatus::as_str),
            ];
            for step in steps {
                t += 1_000;
                match step {
                    Pass => assert!(state.observe(Timestamp(t), Outcome::Ok)),
                    Fail => assert!(state.observe(Timestamp(t), Outcome::Error)),
                    NoAnswer => assert!(state.observe(Timestamp(t), Outcome::Unavailable)),
                    LateFail => {
                        let before = state.latest().map_or(0, |(at, _)| at.0 - 1);
                        assert!(!state.observe(Timestamp(before), Outcome::Error));
                    }
                    Pause => paused = true,
                    Resume => {
                        paused = false;
                        state.reset();
                    }
                    MaintOn => maintenance = true,
                    MaintOff => maintenance = false,
                }
                got.push(
                    state
                        .status(retries, paused, maintenance)
                        .map_or("-", MonitorStatus::as_str),
                );
            }
            let expected: Vec<&str> = expected.split_whitespace().collect();
            assert_eq!(got, expected, "{what}");
        }
    }

    #[test]
    fn the_latest_sample_is_kept_with_the_run_of_failures() {
        let mut state = MonitorState::default();
        state.observe(Timestamp(10), Outcome::Error);
        state.observe(Timestamp(20), Outcome::Unavailable);
        state.observe(Timestamp(5), Outcome::Ok);
        assert_eq!(
            (state.latest(), state.failures()),
            (Some((Timestamp(20), Outcome::Unavailable)), 2)
        );
        assert_eq!(serde_json::to_string(&MonitorStatus::Pending).unwrap(), "\"pending\"");
    }
}
