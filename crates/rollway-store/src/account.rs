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

use crate::{MonitorRecord, Resolution, Store, StoreError, SumRange};

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
/// Without `latency` the stored rows are not read at all: the store sums
/// each run of pieces with the same time under maintenance
/// ([`Store::rollup_sums`]), which gives the same terms and outcome counts
/// as adding them one by one (integer sums), and the tallies' 5xx counts
/// and latencies then hold only the raw stretches' samples (what an uptime
/// report needs is the terms and the outcome counts).
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
        // Runs of consecutive pieces of this size, per monitor, in order;
        // summed in SQL, a run also keeps to one time under maintenance.
        let mut runs: Vec<(usize, Vec<&Piece>)> = Vec::new();
        for (i, pieces) in plans.iter().enumerate() {
            let Some(q) = queries.get(i) else { continue };
            for piece in pieces.iter().filter(|x| x.source == Source::Rollup(g)) {
                let under = under_ms(g, piece.span, q.maintenance);
                match runs.last_mut() {
                    Some((j, run))
                        if *j == i
                            && run.last().is_some_and(|l| {
                                l.span.end == piece.span.start
                                    && (latency || under_ms(g, l.span, q.maintenance) == under)
                            }) =>
                    {
                        run.push(piece);
                    }
                    _ => runs.push((i, vec![piece])),
                }
            }
        }
        if runs.is_empty() {
            continue;
        }
        for (i, run) in &runs {
            // The plan takes an hour or a day under a window only where
            // the minutes were pruned: retention folded the windows it
            // knew into it then, so it counts as stored.
            if let (Some(q), Some(acc)) = (queries.get(*i), out.get_mut(*i))
                && g != Grain::Minute
                && run.iter().any(|p| !q.maintenance.within(p.span).is_empty())
            {
                acc.stale_maintenance = true;
            }
        }
        if latency {
            add_rows(store, g, queries, &runs, &mut out)?;
        } else {
            add_sums(store, g, queries, &runs, &mut out)?;
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

/// How much of a piece of grain `g` is under maintenance as
/// [`accounts`] counts it: minutes with the windows applied, hours and days
/// as stored.
fn under_ms(g: Grain, span: Span, maintenance: &Spans) -> i64 {
    if g == Grain::Minute {
        maintenance.within(span).total_ms()
    } else {
        0
    }
}

/// Adds each run's pieces row by row (the latency sketches need merging).
fn add_rows(
    store: &dyn Store,
    g: Grain,
    queries: &[Query<'_>],
    runs: &[(usize, Vec<&Piece>)],
    out: &mut [Account],
) -> Result<(), StoreError> {
    let ranges: Vec<(String, Span)> = runs
        .iter()
        .filter_map(|(i, run)| {
            let (first, last) = (run.first()?, run.last()?);
            let q = queries.get(*i)?;
            Some((q.monitor.def.name.clone(), Span::new(first.span.start, last.span.end)))
        })
        .collect();
    let rows = store.rollups_in(resolution(g), &ranges, true)?;
    let none = Spans::new();
    for ((i, run), rows) in runs.iter().zip(rows) {
        let (Some(q), Some(acc)) = (queries.get(*i), out.get_mut(*i)) else {
            continue;
        };
        let maintenance = if g == Grain::Minute { q.maintenance } else { &none };
        let mut rows = rows.into_iter().peekable();
        for piece in run {
            while rows.peek().is_some_and(|r| r.bucket < piece.span.start) {
                rows.next();
            }
            let row = rows.next_if(|r| r.bucket == piece.span.start);
            acc.tally
                .add_bucket(piece.span, row.as_ref().map(|r| &r.rollup), maintenance);
        }
    }
    Ok(())
}

/// Adds each run's pieces from the sums of its rows, which the store adds
/// up without sending them: what [`Tally::add_bucket`] would add row by
/// row, since every piece of a run has the same length and the same time
/// under maintenance (a missing row is no data for the rest of its piece).
/// Only the terms and outcome counts: the 5xx counts and latencies stay
/// empty.
fn add_sums(
    store: &dyn Store,
    g: Grain,
    queries: &[Query<'_>],
    runs: &[(usize, Vec<&Piece>)],
    out: &mut [Account],
) -> Result<(), StoreError> {
    let mut ranges = Vec::with_capacity(runs.len());
    let mut shapes = Vec::with_capacity(runs.len());
    for (i, run) in runs {
        let (Some(first), Some(last), Some(q)) = (run.first(), run.last(), queries.get(*i)) else {
            continue;
        };
        let under = under_ms(g, first.span, q.maintenance);
        let rest = g.millis() - under;
        ranges.push(SumRange {
            monitor: q.monitor.def.name.clone(),
            span: Span::new(first.span.start, last.span.end),
            rest_ms: rest,
        });
        shapes.push((*i, i64::try_from(run.len()).unwrap_or(i64::MAX), under, rest));
    }
    let sums = store.rollup_sums(resolution(g), &ranges)?;
    for ((i, pieces, under, rest), s) in shapes.into_iter().zip(sums) {
        let Some(acc) = out.get_mut(i) else { continue };
        let missing = pieces - i64::try_from(s.rows).unwrap_or(i64::MAX);
        let t = &mut acc.tally;
        t.period_ms += pieces * g.millis();
        t.downtime_ms += s.downtime_ms;
        t.no_data_ms += s.no_data_ms + missing * rest;
        t.maintenance_ms += pieces * under + s.maintenance_ms;
        t.rollup.ok += s.ok;
        t.rollup.error += s.error;
        t.rollup.unavailable += s.unavailable;
    }
    Ok(())
}

fn coverage_ms(m: &MonitorRecord) -> i64 {
    i64::try_from(m.def.coverage.as_millis()).unwrap_or(i64::MAX)
}
