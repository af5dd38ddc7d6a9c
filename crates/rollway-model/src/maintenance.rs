//! Maintenance windows (OPERATIONS.md "The seed 003 numbers, exactly"): a
//! one-off `[start, end)` or a cron expression plus a duration, for a whole
//! environment or one monitor, removed from both the downtime and the
//! period of the uptime arithmetic. Cron expressions are read by `croner`
//! and evaluated in the environment's time zone with `jiff` (a daily
//! `0 3 * * *` is 03:00 local time, whatever the offset that day).
//!
//! Windows start and end on whole minutes: the minute rollups are what a
//! late window is applied to, so a window inside a minute could not be
//! applied exactly.

use std::time::Duration;

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::spans::{Span, Spans};
use crate::time::Timestamp;

const MINUTE_MS: i64 = 60_000;

/// The longest a cron window may last: longer than this, it is not a
/// window but a pause.
pub const MAX_CRON_DURATION: Duration = Duration::from_secs(31 * 24 * 3600);

/// At most this many occurrences of one cron window are expanded per
/// period (every minute of a 31-day month is 44,640).
const MAX_OCCURRENCES: usize = 100_000;

/// When a window is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// One stretch of time.
    Once { start: Timestamp, end: Timestamp },
    /// Every start the cron expression names (in the environment's time
    /// zone), lasting `duration_ms` each.
    Cron { expression: String, duration_ms: i64 },
}

/// A stored maintenance window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceWindow {
    pub id: i64,
    pub environment: String,
    /// One monitor of the environment, or `None` for all of them.
    pub monitor: Option<String>,
    pub schedule: Schedule,
    pub note: Option<String>,
    pub created_at: Timestamp,
    pub operator: String,
}

impl MaintenanceWindow {
    /// Whether the window applies to `monitor` of `environment`.
    pub fn applies_to(&self, environment: &str, monitor: &str) -> bool {
        self.environment == environment && self.monitor.as_deref().is_none_or(|m| m == monitor)
    }
}

/// Reads a cron expression of five fields (minute, hour, day of month,
/// month, day of week; no seconds: windows start on whole minutes).
pub fn parse_cron(expression: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .build()
        .parse(expression)
        .map_err(|e| {
            format!("'{expression}' is not a cron expression of five fields (minute hour day month weekday): {e}")
        })
}

/// Checks a schedule: a one-off window ends after it starts, both on whole
/// minutes; a cron window has a valid expression and a duration of whole
/// minutes, at least one and at most [`MAX_CRON_DURATION`]. Every problem
/// is returned, each a sentence.
pub fn check(schedule: &Schedule) -> Vec<String> {
    let mut out = Vec::new();
    match schedule {
        Schedule::Once { start, end } => {
            if end <= start {
                out.push(format!("the window ends ({end}) before or when it starts ({start})"));
            }
            for (what, t) in [("start", start), ("end", end)] {
                if t.as_millis().rem_euclid(MINUTE_MS) != 0 {
                    out.push(format!("the {what} ({t}) is not on a whole minute"));
                }
            }
        }
        Schedule::Cron {
            expression,
            duration_ms,
        } => {
            if let Err(e) = parse_cron(expression) {
                out.push(e);
            }
            let max = i64::try_from(MAX_CRON_DURATION.as_millis()).unwrap_or(i64::MAX);
            if *duration_ms < MINUTE_MS || *duration_ms > max || duration_ms % MINUTE_MS != 0 {
                out.push("the duration must be whole minutes, from 1m to 31d".to_owned());
            }
        }
    }
    out
}

/// The time `windows` cover within `period`, cron starts read in `tz`. A
/// cron occurrence that started before the period and still lasts counts
/// from the period's start. A schedule that does not parse covers nothing
/// (they are checked when stored).
pub fn expand(windows: &[&MaintenanceWindow], period: Span, tz: &TimeZone) -> Spans {
    let mut out = Vec::new();
    for w in windows {
        match &w.schedule {
            Schedule::Once { start, end } => out.push(Span::new(*start, *end)),
            Schedule::Cron {
                expression,
                duration_ms,
            } => {
                let Ok(cron) = parse_cron(expression) else { continue };
                let from = period.start.as_millis().saturating_sub(*duration_ms);
                let Ok(from) = jiff::Timestamp::from_millisecond(from) else {
                    continue;
                };
                let from = from.to_zoned(tz.clone());
                for start in cron.iter_from(from, croner::Direction::Forward).take(MAX_OCCURRENCES) {
                    let start = Timestamp::from_jiff(start.timestamp());
                    if start >= period.end {
                        break;
                    }
                    out.push(Span::ms(
                        start.as_millis(),
                        start.as_millis().saturating_add(*duration_ms),
                    ));
                }
            }
        }
    }
    Spans::from_spans(out).within(period)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    fn window(schedule: Schedule) -> MaintenanceWindow {
        MaintenanceWindow {
            id: 1,
            environment: "prod".into(),
            monitor: None,
            schedule,
            note: None,
            created_at: Timestamp::from_millis(0),
            operator: "ops".into(),
        }
    }

    fn shown(s: &Spans) -> Vec<(String, String)> {
        s.spans()
            .iter()
            .map(|x| (x.start.to_rfc3339(), x.end.to_rfc3339()))
            .collect()
    }

    #[test]
    fn schedules_are_checked_whole_minutes_and_a_real_cron() {
        let once = |a: &str, b: &str| Schedule::Once { start: t(a), end: t(b) };
        assert!(check(&once("2026-11-01T02:00:00Z", "2026-11-01T02:30:00Z")).is_empty());
        assert_eq!(check(&once("2026-11-01T02:00:00Z", "2026-11-01T02:00:00Z")).len(), 1);
        assert_eq!(check(&once("2026-11-01T02:00:10Z", "2026-11-01T02:30:01Z")).len(), 2);
        let cron = |e: &str, d: i64| Schedule::Cron {
            expression: e.into(),
            duration_ms: d,
        };
        assert!(check(&cron("0 3 * * SUN", 30 * MINUTE_MS)).is_empty());
        assert_eq!(check(&cron("0 0 3 * * SUN", 30 * MINUTE_MS)).len(), 1, "no seconds");
        assert_eq!(check(&cron("61 * * * *", 30_000)).len(), 2);
    }

    #[test]
    fn cron_windows_start_in_the_time_zone_and_are_cut_to_the_period() {
        // Berlin: CET (+01:00) in winter, CEST (+02:00) from the last Sunday of March.
        let berlin = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        let w = window(Schedule::Cron {
            expression: "0 3 * * *".into(),
            duration_ms: 30 * MINUTE_MS,
        });
        let period = Span::new(t("2026-03-28T00:00:00Z"), t("2026-03-30T02:10:00Z"));
        assert_eq!(
            shown(&expand(&[&w], period, &berlin)),
            [
                ("2026-03-28T02:00:00.000Z".into(), "2026-03-28T02:30:00.000Z".into()),
                // The clocks moved on the 29th: 03:00 is 01:00 UTC from then on.
                ("2026-03-29T01:00:00.000Z".into(), "2026-03-29T01:30:00.000Z".into()),
                ("2026-03-30T01:00:00.000Z".into(), "2026-03-30T01:30:00.000Z".into()),
            ]
        );
        // An occurrence that began before the period counts from its start;
        // one-off windows are cut too.
        let once = window(Schedule::Once {
            start: t("2026-03-27T23:00:00Z"),
            end: t("2026-03-28T00:20:00Z"),
        });
        let period = Span::new(t("2026-03-28T02:10:00Z"), t("2026-03-28T03:00:00Z"));
        assert_eq!(
            shown(&expand(&[&w, &once], period, &berlin)),
            [("2026-03-28T02:10:00.000Z".into(), "2026-03-28T02:30:00.000Z".into())]
        );
        let period = Span::new(t("2026-03-28T00:00:00Z"), t("2026-03-28T01:00:00Z"));
        assert_eq!(
            shown(&expand(&[&once], period, &TimeZone::UTC)),
            [("2026-03-28T00:00:00.000Z".into(), "2026-03-28T00:20:00.000Z".into())]
        );
    }

    #[test]
    fn a_window_applies_to_its_environment_and_its_monitor() {
        let mut w = window(Schedule::Once {
            start: Timestamp::from_millis(0),
            end: Timestamp::from_millis(MINUTE_MS),
        });
        assert!(w.applies_to("prod", "web"));
        assert!(!w.applies_to("staging", "web"));
        w.monitor = Some("api".into());
        assert!(!w.applies_to("prod", "web"));
        assert!(w.applies_to("prod", "api"));
    }
}
