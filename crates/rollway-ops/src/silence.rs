//! A push monitor's silence (OPERATIONS.md "Monitors": `on_silence`):
//! when nothing arrives within `interval + grace`, a monitor that says
//! `down` gets an `unavailable` sample for each slot that passed without a
//! check-in, so the ordinary downtime arithmetic counts the silence (a run
//! longer than 30 s is downtime, from the first missed slot to the next
//! push). A monitor that says `no_data` gets nothing: the gap is no data.
//! Pure: the caller reads the latest sample and writes what this returns.
//!
//! The missed slots continue the latest sample's: `latest + k × interval`,
//! each written once its own grace has passed (`slot + grace ≤ now`), so a
//! push that arrives late but within its grace leaves no trace, and the
//! first push after a silence ends it (the next slot continues from it).
//! Slots are deterministic, so two writers (or a retried write) record each
//! once: the store keys samples on monitor and slot.

use std::time::Duration;

use rollway_model::ProbeSample;
use rollway_model::time::Timestamp;
use rollway_model::uptime::Outcome;

/// How a silence sample's error text begins; the time of the last
/// check-in follows, so a restarted `serve` carries the same text on.
pub const NO_CHECK_IN: &str = "no check-in since ";

/// The furthest back a silence is written: a push monitor whose latest
/// sample is older gets its missed slots from here on (what lies before is
/// no data). The raw samples' retention, so a whole stored stretch is filled.
pub const SILENCE_BACKFILL: Duration = Duration::from_secs(48 * 3_600);

/// What a push monitor's silence needs to know of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushSilence {
    pub interval: Duration,
    pub grace: Duration,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl PushSilence {
    /// The slots after `latest` (the monitor's latest sample) that passed
    /// without a check-in by `now`, oldest first: `latest + k × interval`
    /// for k ≥ 1 with `slot + grace ≤ now`, none before `now − backfill`,
    /// at most `limit` (the rest come at the next call).
    pub fn missed(&self, latest: Timestamp, now: Timestamp, backfill: Duration, limit: usize) -> Vec<Timestamp> {
        let step = millis(self.interval).max(1);
        let last_due = now.as_millis().saturating_sub(millis(self.grace));
        let earliest = now.as_millis().saturating_sub(millis(backfill));
        // The first k whose slot is after the latest sample and not before
        // the backfill bound.
        let mut k = 1i64;
        let from = latest.as_millis();
        if from.saturating_add(step) < earliest {
            k = (earliest - from + step - 1) / step;
        }
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(slot) = k.checked_mul(step).and_then(|o| from.checked_add(o)) else {
                break;
            };
            if slot > last_due {
                break;
            }
            out.push(Timestamp::from_millis(slot));
            k += 1;
        }
        out
    }
}

/// When the monitor last checked in, judged by its latest sample: the time
/// a silence sample names, else the sample's own slot.
pub fn last_check_in(latest: &ProbeSample) -> Timestamp {
    silent_since(latest).unwrap_or(latest.slot)
}

/// The last check-in a silence sample names; `None` for any other sample.
pub fn silent_since(s: &ProbeSample) -> Option<Timestamp> {
    if s.outcome != Outcome::Unavailable || s.http_status.is_some() {
        return None;
    }
    Timestamp::parse_rfc3339(s.error.as_deref()?.strip_prefix(NO_CHECK_IN)?)
}

/// The `unavailable` sample written for a missed `slot` of `monitor`.
pub fn silence_sample(monitor: &str, slot: Timestamp, since: Timestamp, location: Option<String>) -> ProbeSample {
    let mut s = ProbeSample::new(monitor, slot, Outcome::Unavailable);
    s.location = location;
    s.error = Some(format!("{NO_CHECK_IN}{since}"));
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const S: i64 = 1000;

    /// `(what, interval s, grace s, latest s, now s, backfill s, limit, missed slots s)`.
    #[allow(clippy::type_complexity)]
    const CASES: &[(&str, i64, i64, i64, i64, i64, usize, &[i64])] = &[
        ("within interval + grace: nothing", 1, 1, 100, 101, 3_600, 100, &[]),
        (
            "the first slot is due once its grace passed",
            1,
            1,
            100,
            102,
            3_600,
            100,
            &[101],
        ),
        (
            "each slot in turn, a grace behind now",
            1,
            1,
            100,
            105,
            3_600,
            100,
            &[101, 102, 103, 104],
        ),
        (
            "a minute's cron with a 30 s grace",
            60,
            30,
            0,
            200,
            3_600,
            100,
            &[60, 120],
        ),
        (
            "a long silence in pieces of `limit`",
            1,
            1,
            100,
            200,
            3_600,
            3,
            &[101, 102, 103],
        ),
        (
            "from the backfill bound on, on the same grid",
            10,
            5,
            0,
            1_000,
            100,
            100,
            &[900, 910, 920, 930, 940, 950, 960, 970, 980, 990],
        ),
        (
            "a latest sample in the future: nothing",
            1,
            1,
            500,
            100,
            3_600,
            100,
            &[],
        ),
    ];

    #[test]
    fn missed_slots_follow_the_latest_sample() {
        for &(what, interval, grace, latest, now, backfill, limit, expected) in CASES {
            let s = PushSilence {
                interval: Duration::from_secs(interval as u64),
                grace: Duration::from_secs(grace as u64),
            };
            let got: Vec<i64> = s
                .missed(
                    Timestamp::from_millis(latest * S),
                    Timestamp::from_millis(now * S),
                    Duration::from_secs(backfill as u64),
                    limit,
                )
                .iter()
                .map(|t| t.as_millis() / S)
                .collect();
            assert_eq!(got, expected, "{what}");
        }
    }

    #[test]
    fn a_silence_sample_names_the_last_check_in_and_is_read_back() {
        let since = Timestamp::parse_rfc3339("2026-12-05T10:00:00.250Z").unwrap();
        let slot = since.plus(Duration::from_secs(60));
        let s = silence_sample("cron", slot, since, Some("eu".into()));
        assert_eq!(s.error.as_deref(), Some("no check-in since 2026-12-05T10:00:00.250Z"));
        assert_eq!(
            (s.outcome, s.http_status, s.latency_ms),
            (Outcome::Unavailable, None, None)
        );
        assert_eq!((last_check_in(&s), silent_since(&s)), (since, Some(since)));
        // A pushed sample is its own check-in, whatever its outcome or text.
        let mut pushed = ProbeSample::new("cron", slot, Outcome::Unavailable);
        pushed.error = Some("connection refused".into());
        assert_eq!((last_check_in(&pushed), silent_since(&pushed)), (slot, None));
        pushed.http_status = Some(503);
        pushed.error = s.error.clone();
        assert_eq!(silent_since(&pushed), None);
    }
}
