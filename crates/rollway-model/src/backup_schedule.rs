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
}
