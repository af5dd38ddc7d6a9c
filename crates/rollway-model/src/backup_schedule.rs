//! When a `[backups.NAME]` schedule is due (OPERATIONS.md "Backups and
//! restores"): its five-field cron expression read in the environment's
//! time zone, the latest occurrence at or before now, and whether a run
//! was already started for it. `serve` asks this every round.

use std::time::Duration;

use jiff::tz::TimeZone;

use crate::maintenance::parse_cron;
use crate::time::Timestamp;

/// A scheduled run found this late is still taken; an older one is missed
/// (a `serve` that was down at 03:00 and back at 03:20 takes it, one back
/// the next afternoon does not run the night's backup then).
pub const CATCH_UP: Duration = Duration::from_secs(3600);

/// The latest occurrence of `expression` at or before `now`, read in `tz`;
/// none when the expression does not parse (config checks it at load) or
/// never fires before `now`.
pub fn latest(expression: &str, tz: &TimeZone, now: Timestamp) -> Option<Timestamp> {
    let cron = parse_cron(expression).ok()?;
    let at = now.to_jiff().to_zoned(tz.clone());
    // Occurrences are on whole minutes: searching back from the end of
    // `now`'s minute finds one in that minute too.
    let from = at.checked_add(jiff::SignedDuration::from_secs(60)).ok()?;
    cron.iter_from(from, croner::Direction::Backward)
        .map(|z| Timestamp::from_jiff(z.timestamp()))
        .find(|t| *t <= now)
}

/// The occurrence a scheduled backup should run for at `now`: the latest
/// one, when no scheduled backup was started at or after it
/// (`last_started`, any outcome: a failed run is not retried until the
/// next occurrence) and it is at most [`CATCH_UP`] old.
pub fn due(expression: &str, tz: &TimeZone, now: Timestamp, last_started: Option<Timestamp>) -> Option<Timestamp> {
    let t = latest(expression, tz, now)?;
    let fresh =
        now.as_millis().saturating_sub(t.as_millis()) <= i64::try_from(CATCH_UP.as_millis()).unwrap_or(i64::MAX);
    let taken = last_started.is_some_and(|s| s >= t);
    (fresh && !taken).then_some(t)
}

/// What came of a schedule's latest occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Not started yet, and it still may be (within [`CATCH_UP`]).
    Pending,
    Running,
    Completed,
    Failed,
    /// Not started within [`CATCH_UP`] of its time.
    Missed,
}

impl Outcome {
    /// Whether it needs someone's attention (an alert, a line in red).
    pub fn is_bad(self) -> bool {
        matches!(self, Self::Failed | Self::Missed)
    }
}

/// The latest occurrence of `expression` at or before `now` (in `tz`) and
/// what came of it, judged from the scheduled runs `runs` (start time and
/// status): the first run started at or after it is its run.
pub fn outcome(
    expression: &str,
    tz: &TimeZone,
    now: Timestamp,
    runs: &[(Timestamp, crate::BackupStatus)],
) -> Option<(Timestamp, Outcome)> {
    use crate::BackupStatus as S;
    let t = latest(expression, tz, now)?;
    let run = runs.iter().filter(|(s, _)| *s >= t).min_by_key(|(s, _)| *s);
    let late = now.as_millis().saturating_sub(t.as_millis()) > i64::try_from(CATCH_UP.as_millis()).unwrap_or(i64::MAX);
    let o = match run.map(|(_, st)| *st) {
        Some(S::InProgress) => Outcome::Running,
        Some(S::Completed | S::Expired) => Outcome::Completed,
        Some(S::Failed) => Outcome::Failed,
        None if late => Outcome::Missed,
        None => Outcome::Pending,
    };
    Some((t, o))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    fn check(expr: &str, tz: &str, now: &str, last: Option<&str>, expected: Option<&str>) {
        let tz = TimeZone::get(tz).unwrap();
        assert_eq!(
            due(expr, &tz, at(now), last.map(at)),
            expected.map(at),
            "{expr} in {tz:?} at {now}, last started {last:?}"
        );
    }

    #[test]
    fn a_run_is_due_once_per_occurrence_and_only_while_fresh() {
        // Nightly at 03:00 UTC.
        check(
            "0 3 * * *",
            "UTC",
            "2026-12-05T03:00:00Z",
            None,
            Some("2026-12-05T03:00:00Z"),
        );
        check(
            "0 3 * * *",
            "UTC",
            "2026-12-05T03:20:00Z",
            None,
            Some("2026-12-05T03:00:00Z"),
        );
        check("0 3 * * *", "UTC", "2026-12-05T02:59:59Z", None, None);
        // Already started for this occurrence (whatever came of it).
        check(
            "0 3 * * *",
            "UTC",
            "2026-12-05T03:20:00Z",
            Some("2026-12-05T03:00:01Z"),
            None,
        );
        // The last run was the night before: due.
        check(
            "0 3 * * *",
            "UTC",
            "2026-12-05T03:20:00Z",
            Some("2026-12-04T03:00:01Z"),
            Some("2026-12-05T03:00:00Z"),
        );
        // Too late: missed, not run in the afternoon.
        check("0 3 * * *", "UTC", "2026-12-05T04:00:01Z", None, None);
        // In the environment's time zone: 03:00 in Berlin is 02:00 UTC in winter.
        check(
            "0 3 * * *",
            "Europe/Berlin",
            "2026-12-05T02:10:00Z",
            None,
            Some("2026-12-05T02:00:00Z"),
        );
        // Every minute: the current minute's occurrence.
        check(
            "* * * * *",
            "UTC",
            "2026-12-05T10:15:42Z",
            None,
            Some("2026-12-05T10:15:00Z"),
        );
        // Not a cron expression: never due.
        check("every night", "UTC", "2026-12-05T03:00:00Z", None, None);
    }

    #[test]
    fn the_latest_occurrence_is_pending_running_completed_failed_or_missed() {
        use crate::BackupStatus as S;
        let utc = TimeZone::UTC;
        let case = |now: &str, runs: &[(&str, S)]| {
            let runs: Vec<(Timestamp, S)> = runs.iter().map(|(t, s)| (at(t), *s)).collect();
            outcome("0 3 * * *", &utc, at(now), &runs).map(|(t, o)| (t.to_string(), o))
        };
        let night = "2026-12-05T03:00:00.000Z".to_owned();
        let yesterday = ("2026-12-04T03:00:02Z", S::Completed);
        assert_eq!(
            case("2026-12-05T03:30:00Z", &[yesterday]),
            Some((night.clone(), Outcome::Pending))
        );
        assert_eq!(
            case("2026-12-05T05:00:00Z", &[yesterday]),
            Some((night.clone(), Outcome::Missed))
        );
        for (status, expected) in [
            (S::InProgress, Outcome::Running),
            (S::Completed, Outcome::Completed),
            (S::Expired, Outcome::Completed),
            (S::Failed, Outcome::Failed),
        ] {
            assert_eq!(
                case("2026-12-05T05:00:00Z", &[yesterday, ("2026-12-05T03:00:01Z", status)]),
                Some((night.clone(), expected))
            );
        }
        // The first run after the occurrence is its run.
        assert_eq!(
            case(
                "2026-12-05T05:00:00Z",
                &[
                    ("2026-12-05T03:00:01Z", S::Failed),
                    ("2026-12-05T03:30:00Z", S::Completed)
                ]
            ),
            Some((night, Outcome::Failed))
        );
        assert!(Outcome::Missed.is_bad() && Outcome::Failed.is_bad() && !Outcome::Pending.is_bad());
    }
}
