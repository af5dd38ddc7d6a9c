//! A monitor's seed 003 terms over a period read from the store
//! (OPERATIONS.md "The seed 003 numbers, exactly"): the model's
//! [`plan`] cuts the period into days, hours and minutes of the stored
//! rollups and raw stretches outside their covered range, and a [`Tally`]
//! adds them up. Minutes are counted with the maintenance windows applied
//! (so a window entered late counts); hours and days as stored — where the
//! plan takes one under a window, its minutes were pruned and retention
//! folded the windows it knew into it. `rollway uptime`, `slo` and
//! `monitor show` answer from here.

use rollway_model::account::{Grain, Piece, Source, Tally, plan};
use rollway_model::rollup::Rollup;
use rollway_model::spans::{Span, Spans};
use rollway_model::uptime::{UptimeInput, uptime};
use rollway_model::{ProbeSample, Timestamp};

use crate::{MonitorRecord, Resolution, Store, StoreError};

const MINUTE: i64 = 60_000;
/// Samples read before a raw stretch: an unavailable run or an error
/// minute that began before it decides its first minutes.
const CONTEXT: i64 = 2 * MINUTE;
/// At most this many raw samples are read for one stretch.
pub const RAW_LIMIT: usize = 200_000;

/// A monitor's terms over a period, from its rollups and raw samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Account {
    pub tally: Tally,
    /// A window lies where the minute rows were pruned: there the terms
    /// stored with the hours and days (the windows retention knew) were used.
    pub stale_maintenance: bool,
}

fn resolution(g: Grain) -> Resolution {
    match g {
        Grain::Minute => Resolution::Minute,
        Grain::Hour => Resolution::Hour,
        Grain::Day => Resolution::Day,
    }
}

/// `m`'s terms over `period` with the maintenance windows `maint` (spans
/// over the period): the model's plan read from the store.
pub fn account(store: &dyn Store, m: &MonitorRecord, period: Span, maint: &Spans) -> Result<Account, StoreError> {
    let mut all = accounts(
        store,
        &[Query {
            monitor: m,
            period,
            maintenance: maint,
        }],
        true,
    )?;
    Ok(all.pop().unwrap_or_default())
}

/// One monitor's period and windows, for [`accounts`].
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pub monitor: &'a MonitorRecord,
    pub period: Span,
    /// The maintenance windows as spans over the period.
    pub maintenance: &'a Spans,
}

/// [`account`] of many monitors at once: the rollups of all of them are
/// read with one [`Store::rollups_in`] per bucket size (each run of
/// consecutive pieces a range), so a report over a thousand monitors is a
/// handful of statements. Each monitor's pieces are added in the same
/// order as alone (days, hours, minutes, raw), so the sums are identical.
/// Without `latency` the stored rows' 5xx counts and latencies are not
/// read: the tallies' then hold only the raw stretches' samples (what an
/// uptime report needs is the terms and the outcome counts).
pub fn accounts(store: &dyn Store, queries: &[Query<'_>], latency: bool) -> Result<Vec<Account>, StoreError> {
    let plans: Vec<Vec<Piece>> = queries
        .iter()
        .map(|q| {
            let m = q.monitor;
            let covered = m.rolled_from.zip(m.rolled_until).map(|(a, b)| Span::new(a, b));
            plan(q.period, covered, m.minutes_from, q.maintenance)
        })
        .collect();
    let mut out = vec![Account::default(); queries.len()];
    for g in [Grain::Day, Grain::Hour, Grain::Minute] {
        // Runs of consecutive pieces of this size, per monitor, in order.
        let mut runs: Vec<(usize, Vec<&Piece>)> = Vec::new();
        for (i, pieces) in plans.iter().enumerate() {
            for piece in pieces.iter().filter(|x| x.source == Source::Rollup(g)) {
                match runs.last_mut() {
                    Some((j, run)) if *j == i && run.last().is_some_and(|l| l.span.end == piece.span.start) => {
                        run.push(piece);
                    }
                    _ => runs.push((i, vec![piece])),
                }
            }
        }
        let ranges: Vec<(String, Span)> = runs
            .iter()
            .filter_map(|(i, run)| {
                let (first, last) = (run.first()?, run.last()?);
                let q = queries.get(*i)?;
                Some((q.monitor.def.name.clone(), Span::new(first.span.start, last.span.end)))
            })
            .collect();
        if ranges.is_empty() {
            continue;
        }
        let rows = store.rollups_in(resolution(g), &ranges, latency)?;
        for ((i, run), rows) in runs.iter().zip(rows) {
            let (Some(q), Some(acc)) = (queries.get(*i), out.get_mut(*i)) else {
                continue;
            };
            let mut rows = rows.into_iter().peekable();
            for piece in run {
                while rows.peek().is_some_and(|r| r.bucket < piece.span.start) {
                    rows.next();
                }
                let row = rows.next_if(|r| r.bucket == piece.span.start);
                let row = row.as_ref().map(|r| &r.rollup);
                if g == Grain::Minute {
                    acc.tally.add_bucket(piece.span, row, q.maintenance);
                } else {
                    // The plan takes an hour or a day under a window only
                    // where the minutes were pruned: retention folded the
                    // windows it knew into it then, so it counts as stored.
                    if !q.maintenance.within(piece.span).is_empty() {
                        acc.stale_maintenance = true;
                    }
                    acc.tally.add_bucket(piece.span, row, &Spans::new());
                }
            }
        }
    }
    for ((q, pieces), acc) in queries.iter().zip(&plans).zip(out.iter_mut()) {
        let m = q.monitor;
        for piece in pieces.iter().filter(|x| x.source == Source::Raw) {
            let samples = store.samples(
                &m.def.name,
                Timestamp::from_millis(piece.span.start.as_millis() - CONTEXT - coverage_ms(m)),
                piece.span.end,
                RAW_LIMIT,
            )?;
            let observations: Vec<_> = samples.iter().map(ProbeSample::observation).collect();
            let report = uptime(&UptimeInput {
                period: piece.span,
                observations: &observations,
                maintenance: q.maintenance.within(piece.span).spans(),
                coverage: m.def.coverage,
            });
            let mut counted = Rollup::default();
            for s in samples
                .iter()
                .filter(|s| s.slot >= piece.span.start && s.slot < piece.span.end)
            {
                counted.add(&s.measured());
            }
            acc.tally.add_raw(&report, &counted);
        }
    }
    Ok(out)
}

fn coverage_ms(m: &MonitorRecord) -> i64 {
    i64::try_from(m.def.coverage.as_millis()).unwrap_or(i64::MAX)
}
