//! The seed 003 numbers of a period read from stored rollups instead of raw
//! samples (OPERATIONS.md "Samples and rollups": "any month's uptime a sum,
//! never a rescan"): [`plan`] cuts a period into the coarsest buckets that
//! fit — days, hours, minutes — taking minutes wherever a maintenance
//! window lies (a window is applied to whole minutes at query time, so one
//! entered late still counts), and raw samples outside the range the
//! rollups cover; [`Tally`] adds the pieces up into the same terms
//! [`crate::uptime::uptime`] gives over raw samples. [`fold_maintenance`]
//! is what retention adds to an hour and a day as it deletes a minute under
//! a window, so months older than the minutes answer for their windows.

use serde::{Deserialize, Serialize};

use crate::rollup::Rollup;
use crate::spans::{Span, Spans};
use crate::time::Timestamp;
use crate::uptime::UptimeReport;

/// A bucket size of the stored rollups (UTC minutes, hours, days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grain {
    Minute,
    Hour,
    Day,
}

impl Grain {
    pub const fn millis(self) -> i64 {
        match self {
            Grain::Minute => 60_000,
            Grain::Hour => 3_600_000,
            Grain::Day => 86_400_000,
        }
    }
}

/// Where one piece of a period is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The stored rollup of this bucket (a missing one had no data).
    Rollup(Grain),
    /// Raw samples: outside the rollups' covered range (the last minutes
    /// not yet settled, or before any rollup).
    Raw,
}

/// One piece of a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub span: Span,
    pub source: Source,
}

/// Cuts `period` into pieces: inside `covered` (the rollups' range), the
/// coarsest aligned bucket that fits and touches no `maintenance`, else a
/// minute; outside it, raw stretches. Minute rows before `minutes_from`
/// were pruned (kept 35 days, by whole hours) and the windows known then
/// folded into their hours and days ([`fold_maintenance`]): there hours
/// and days are taken even where a window lies, and counted as stored.
pub fn plan(period: Span, covered: Option<Span>, minutes_from: Option<Timestamp>, maintenance: &Spans) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::new();
    let mut push = |span: Span, source: Source| match out.last_mut() {
        Some(last) if source == Source::Raw && last.source == Source::Raw && last.span.end == span.start => {
            last.span.end = span.end;
        }
        _ => out.push(Piece { span, source }),
    };
    let (start, end) = (period.start.as_millis(), period.end.as_millis());
    let (c0, c1) = covered.map_or((end, end), |c| (c.start.as_millis(), c.end.as_millis()));
    let pruned_until = minutes_from.map_or(i64::MIN, Timestamp::as_millis);
    let mut t = start;
    while t < end {
        if t < c0 || t >= c1 {
            let next = if t < c0 { c0.min(end) } else { end };
            push(Span::ms(t, next), Source::Raw);
            t = next;
            continue;
        }
        let limit = end.min(c1);
        let fits = |g: Grain| {
            let len = g.millis();
            let span = Span::ms(t, t + len);
            t.rem_euclid(len) == 0
                && t + len <= limit
                && (g == Grain::Minute || t + len <= pruned_until || maintenance.within(span).is_empty())
        };
        match [Grain::Day, Grain::Hour, Grain::Minute].into_iter().find(|&g| fits(g)) {
            Some(g) => {
                push(Span::ms(t, t + g.millis()), Source::Rollup(g));
                t += g.millis();
            }
            None => {
                // Not on a whole minute (a period edge): raw to the next one.
                let next = (t.div_euclid(Grain::Minute.millis()) + 1) * Grain::Minute.millis();
                let next = next.min(limit);
                push(Span::ms(t, next), Source::Raw);
                t = next;
            }
        }
    }
    out
}

/// The time terms of a bucket, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    pub downtime_ms: i64,
    pub maintenance_ms: i64,
    pub no_data_ms: i64,
}

impl Terms {
    /// What a stored bucket holds; `None` (no row inside the rollups'
    /// covered range) had no data at all.
    pub fn stored(span: Span, row: Option<&Rollup>) -> Terms {
        match row {
            Some(r) => Terms {
                downtime_ms: r.downtime_ms,
                maintenance_ms: r.maintenance_ms,
                no_data_ms: r.no_data_ms,
            },
            None => Terms {
                no_data_ms: span.len_ms(),
                ..Terms::default()
            },
        }
    }

    /// What [`Tally::add_bucket`] counts for the bucket with `maintenance`
    /// applied.
    pub fn counted(span: Span, row: Option<&Rollup>, maintenance: &Spans) -> Terms {
        let mut t = Tally::default();
        t.add_bucket(span, row, maintenance);
        Terms {
            downtime_ms: t.downtime_ms,
            maintenance_ms: t.maintenance_ms,
            no_data_ms: t.no_data_ms,
        }
    }
}

/// What applying `maintenance` to a stored minute changes in its terms
/// (counted minus stored). Retention adds it to the minute's hour and day
/// as it deletes the minute, so they go on answering as the minute did:
/// time under a window is maintenance, neither downtime nor no data
/// (OPERATIONS.md "Samples and rollups": a rollup holds its maintenance
/// seconds, so an old month is a sum). Zero outside the windows.
pub fn fold_maintenance(minute: Span, row: Option<&Rollup>, maintenance: &Spans) -> Terms {
    let stored = Terms::stored(minute, row);
    let counted = Terms::counted(minute, row, maintenance);
    Terms {
        downtime_ms: counted.downtime_ms - stored.downtime_ms,
        maintenance_ms: counted.maintenance_ms - stored.maintenance_ms,
        no_data_ms: counted.no_data_ms - stored.no_data_ms,
    }
}

/// The terms of a period added up piece by piece.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub period_ms: i64,
    pub downtime_ms: i64,
    pub maintenance_ms: i64,
    pub no_data_ms: i64,
    /// Counts, latencies and the sketch of every sample of the period.
    pub rollup: Rollup,
}

impl Tally {
    /// Adds a stored bucket (`None`: no row, so no data) with the
    /// maintenance windows applied: time under maintenance leaves both the
    /// downtime and the no-data terms. A bucket partly under maintenance
    /// (never with whole-minute windows and minute buckets) keeps at most
    /// the rest for the other terms.
    pub fn add_bucket(&mut self, span: Span, row: Option<&Rollup>, maintenance: &Spans) {
        let len = span.len_ms();
        self.period_ms += len;
        let under = maintenance.within(span).total_ms();
        let rest = len - under;
        match row {
            Some(r) => {
                let down = r.downtime_ms.min(rest);
                self.downtime_ms += down;
                self.no_data_ms += r.no_data_ms.min(rest - down);
                self.maintenance_ms += under + r.maintenance_ms.min(rest);
                self.rollup.merge(r);
            }
            None => {
                self.no_data_ms += rest;
                self.maintenance_ms += under;
            }
        }
    }

    /// Adds a stretch computed from raw samples by the uptime arithmetic
    /// (with the maintenance windows), and its samples' rollup.
    pub fn add_raw(&mut self, report: &UptimeReport, samples: &Rollup) {
        self.period_ms += report.period_ms;
        self.downtime_ms += report.downtime_ms;
        self.maintenance_ms += report.maintenance_ms;
        self.no_data_ms += report.no_data_ms;
        self.rollup.merge(samples);
    }

    /// The period without maintenance and no data.
    pub fn observed_ms(&self) -> i64 {
        self.period_ms - self.maintenance_ms - self.no_data_ms
    }

    /// 1 − downtime / (period − maintenance − no_data); `None` when nothing
    /// was observed.
    pub fn uptime(&self) -> Option<f64> {
        let observed = self.observed_ms();
        (observed > 0).then(|| 1.0 - self.downtime_ms as f64 / observed as f64)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;
    use crate::rollup::Measured;
    use crate::uptime::{
        Observation, Outcome, UptimeInput, error_minute_downtime, no_data, unavailable_downtime, uptime,
    };

    const M: i64 = 60_000;
    const H: i64 = 3_600_000;
    const D: i64 = 86_400_000;

    fn shape(p: &[Piece]) -> Vec<(i64, i64, &'static str)> {
        p.iter()
            .map(|x| {
                let s = match x.source {
                    Source::Raw => "raw",
                    Source::Rollup(Grain::Minute) => "m",
                    Source::Rollup(Grain::Hour) => "h",
                    Source::Rollup(Grain::Day) => "d",
                };
                (x.span.start.as_millis(), x.span.end.as_millis(), s)
            })
            .collect()
    }

    #[test]
    fn the_plan_takes_the_coarsest_bucket_that_fits_and_minutes_under_maintenance() {
        let period = Span::ms(-H, 2 * D + 30 * M);
        let covered = Some(Span::ms(0, 2 * D + 10 * M));
        let maint = Spans::from_spans([Span::ms(D + H + 2 * M, D + H + 3 * M)]);
        let p = plan(period, covered, None, &maint);
        let mut expected = vec![(-H, 0, "raw"), (0, D, "d")];
        expected.push((D, D + H, "h"));
        for i in 0..60 {
            expected.push((D + H + i * M, D + H + (i + 1) * M, "m"));
        }
        for h in 2..24 {
            expected.push((D + h * H, D + (h + 1) * H, "h"));
        }
        for i in 0..10 {
            expected.push((2 * D + i * M, 2 * D + (i + 1) * M, "m"));
        }
        expected.push((2 * D + 10 * M, 2 * D + 30 * M, "raw"));
        assert_eq!(shape(&p), expected);
        // Minutes pruned: the hour is taken whole, window or not.
        let p = plan(
            Span::ms(D, 2 * D),
            Some(Span::ms(0, 3 * D)),
            Some(Timestamp::from_millis(3 * D)),
            &maint,
        );
        assert_eq!(shape(&p), [(D, 2 * D, "d")]);
        // Nothing covered: all raw.
        assert_eq!(shape(&plan(Span::ms(0, H), None, None, &Spans::new())), [(0, H, "raw")]);
    }

    /// A minute under a window becomes maintenance whatever it held; a
    /// minute outside every window is left as it is.
    #[test]
    fn folding_a_window_into_a_minute_moves_its_terms_to_maintenance() {
        let minute = Span::ms(10 * M, 11 * M);
        let window = Spans::from_spans([Span::ms(10 * M, 12 * M)]);
        let check = |row: Option<(i64, i64, i64)>, maint: &Spans, expected: (i64, i64, i64)| {
            let row = row.map(|(down, m, nd)| Rollup {
                ok: 3,
                downtime_ms: down,
                maintenance_ms: m,
                no_data_ms: nd,
                ..Rollup::default()
            });
            let d = fold_maintenance(minute, row.as_ref(), maint);
            assert_eq!(
                (d.downtime_ms, d.maintenance_ms, d.no_data_ms),
                expected,
                "{row:?} {maint:?}"
            );
        };
        // Down all minute, under the window: downtime becomes maintenance.
        check(Some((M, 0, 0)), &window, (-M, M, 0));
        // 20 s down, 40 s without data.
        check(Some((20_000, 0, 40_000)), &window, (-20_000, M, -40_000));
        // All fine.
        check(Some((0, 0, 0)), &window, (0, M, 0));
        // No row: the minute had no data.
        check(None, &window, (0, M, -M));
        // Outside the windows nothing changes.
        check(Some((M, 0, 0)), &Spans::new(), (0, 0, 0));
        check(None, &Spans::from_spans([Span::ms(12 * M, 13 * M)]), (0, 0, 0));
    }

    /// Minute rollups computed like the store's (terms per minute from the
    /// whole series), added up with a window applied at query time, give
    /// the uptime arithmetic's numbers over the raw samples.
    #[test]
    fn a_tally_of_minute_rows_equals_the_arithmetic_over_raw_samples() {
        // 3 hours at 10 s; unavailable 20:00–21:30 (90 s), 5xx 40:00–43:00,
        // nothing 100:00–110:00; maintenance 41:00–45:00 (applied late).
        let mut obs = Vec::new();
        for i in 0..(3 * 360) {
            let at = i * 10_000;
            let minute = at / M;
            if (100..110).contains(&minute) {
                continue;
            }
            let (outcome, status) = if (20 * M..21 * M + 30_000).contains(&at) {
                (Outcome::Unavailable, None)
            } else if (40..43).contains(&minute) {
                (Outcome::Error, Some(503))
            } else {
                (Outcome::Ok, Some(200))
            };
            obs.push(Observation {
                at: Timestamp::from_millis(at),
                outcome,
                http_status: status,
            });
        }
        let period = Span::ms(0, 3 * H);
        let coverage = Duration::from_secs(20);
        let maint = Spans::from_spans([Span::ms(41 * M, 45 * M)]);
        let expected = uptime(&UptimeInput {
            period,
            observations: &obs,
            maintenance: maint.spans(),
            coverage,
        });
        // The stored minute rows (no maintenance known when they were rolled up).
        let nd = no_data(&obs, period, coverage);
        let down = unavailable_downtime(&obs, period.end)
            .union(&error_minute_downtime(&obs))
            .minus(&nd);
        let mut tally = Tally::default();
        for piece in plan(period, Some(period), None, &maint) {
            let mut rows = Vec::new();
            let mut t = piece.span.start.as_millis();
            while t < piece.span.end.as_millis() {
                let minute = Span::ms(t, t + M);
                let mut r = Rollup::default();
                for o in obs.iter().filter(|o| o.at >= minute.start && o.at < minute.end) {
                    r.add(&Measured {
                        at: o.at,
                        outcome: o.outcome,
                        http_status: o.http_status,
                        latency_ms: Some(5.0),
                    });
                }
                r.set_time_terms(minute, &down, &Spans::new(), &nd);
                rows.push(r);
                t += M;
            }
            let row = crate::rollup::merge_all(&rows);
            tally.add_bucket(piece.span, Some(&row), &maint);
        }
        assert_eq!(
            (
                tally.period_ms,
                tally.downtime_ms,
                tally.maintenance_ms,
                tally.no_data_ms
            ),
            (
                expected.period_ms,
                expected.downtime_ms,
                expected.maintenance_ms,
                expected.no_data_ms
            )
        );
        // 90 s unavailable + 40:00–41:00 of the error run; 4 min of
        // maintenance; no data from 99:50 + 20 s to 110:00.
        assert_eq!(tally.downtime_ms, 90_000 + 60_000);
        assert_eq!(tally.maintenance_ms, 4 * M);
        assert_eq!(tally.no_data_ms, 10 * M - 10_000);
        assert_eq!(tally.uptime(), expected.uptime);
    }
}
