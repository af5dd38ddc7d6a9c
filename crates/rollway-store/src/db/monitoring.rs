//! Monitors, probe samples, rollups and their retention, written once for
//! both backends (OPERATIONS.md "Samples and rollups").
//!
//! Rolling up is incremental and exact. Each monitor has a covered range
//! `[rolled_from, rolled_until)` (minute-aligned; `rolled_from` day-aligned
//! so hour and day rows are whole): a run extends it to the settled minute
//! and merges into the minute, hour and day rows the *delta* of what
//! changed — the counts of samples not yet rolled (each has a row in
//! `samples_unrolled`, deleted in the same transaction, so running twice
//! changes nothing) and the change of each minute's time terms. Time terms (downtime, no data) depend on
//! neighbouring samples (a run of unavailable samples, the next error
//! minute), so they are computed from raw samples with context around the
//! range and restated for the minutes just before it too; a late sample
//! restates the minutes around it. A minute without a row inside the
//! covered range had no data: its implicit terms are 60 s of no data, and
//! the hour and day rows already hold them.
//!
//! A rollup row is stored as the backend's `RollupLayout` says (PostgreSQL:
//! buckets as minutes, hours or days, zeros as NULL, the sketch as bytes;
//! SQLite: milliseconds, as they are, text); [`Buckets`] converts a
//! bucket's start to its stored key and back, everything else here works
//! in milliseconds.

use std::collections::BTreeMap;
use std::time::Duration;

use rollway_model::account::{Terms, fold_maintenance};
use rollway_model::rollup::{Measured, Rollup};
use rollway_model::sketch::LatencySketch;
use rollway_model::spans::{Span, Spans};
use rollway_model::uptime::{Observation, Outcome, error_minute_downtime, no_data, unavailable_downtime};
use rollway_model::{Masker, ProbeSample, Timestamp};

use super::Db;
use crate::error::StoreError;
use crate::monitoring::{
    MaintenanceSpans, MonitorDef, MonitorRecord, Pruned, RecordedSamples, Resolution, Retention, RollupLayout,
    RollupReport, RollupRow, RollupSettings, RollupSum, SumRange,
};
use crate::sql::{Backend, Param, Row, Sql};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
/// How far before a changed minute its neighbours' terms may change: an
/// unavailable run is judged on 30 s, an error minute on the minute before.
const NEAR_BACK: i64 = 2 * MINUTE;
/// Samples read after a range: the next minute decides an error minute, and
/// an unavailable run still open this long is longer than 30 s.
const AHEAD: i64 = 2 * MINUTE;
/// Rows per multi-row statement (PostgreSQL allows 65,535 parameters,
/// SQLite 32,766).
const ROWS_PER_INSERT: usize = 200;
/// Bucket ranges per statement of `rollups_in` (four parameters each).
const RANGES_PER_QUERY: usize = 2_000;

fn floor(t: i64, step: i64) -> i64 {
    t.div_euclid(step) * step
}

fn ceil(t: i64, step: i64) -> i64 {
    -floor(-t, step)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn table(r: Resolution) -> &'static str {
    match r {
        Resolution::Minute => "rollups_minute",
        Resolution::Hour => "rollups_hour",
        Resolution::Day => "rollups_day",
    }
}

/// Converts between a bucket's start in milliseconds (as the model and
/// every computation here have it) and the key a backend stores for it
/// (`RollupLayout::unit`): the one place that knows the unit, for reads,
/// writes and deletes alike.
#[derive(Debug, Clone, Copy)]
struct Buckets {
    res: Resolution,
    unit: i64,
}

impl Buckets {
    fn of(layout: RollupLayout, res: Resolution) -> Self {
        Self {
            res,
            unit: layout.unit(res),
        }
    }

    /// The key of the bucket starting at `start` (a bucket start, so a
    /// whole number of units); also the last key whose bucket starts at or
    /// before `start`.
    fn key(self, start: i64) -> i64 {
        start.div_euclid(self.unit)
    }

    /// The first key whose bucket starts at or after `t`: buckets starting
    /// in `[from, to)` are the keys in `[first_from(from), first_from(to))`.
    fn first_from(self, t: i64) -> i64 {
        -(-t).div_euclid(self.unit)
    }

    /// The start of the bucket stored as `key`.
    fn start(self, key: i64) -> Result<i64, String> {
        key.checked_mul(self.unit)
            .ok_or_else(|| format!("{} bucket {key} is out of range", self.res.as_str()))
    }
}

/// NUL cannot be stored in PostgreSQL text; both backends store U+FFFD.
fn scrub(text: &str) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text.to_owned()
    }
}

// ---- the sketch as text ----

/// Digits of a packed number that more digits follow (base 32, most
/// significant first) …
const MORE: &[u8; 32] = b"0123456789ABCDEFGHIJKLMNOPQRSTUV";
/// … and the digits that end one.
const LAST: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz()*+-.";
/// What a packed sketch starts with; the older form never does.
const PACKED: char = '~';

fn push_packed(out: &mut String, v: u64) {
    let mut digits = vec![LAST[(v % 32) as usize]];
    let mut rest = v / 32;
    while rest > 0 {
        digits.push(MORE[(rest % 32) as usize]);
        rest /= 32;
    }
    out.extend(digits.iter().rev().map(|&b| char::from(b)));
}

/// The numbers a sketch is packed into: the zero count, then per bucket its
/// index (the first: the index zigzagged; the others: the step from the
/// previous one, minus 1) times two, plus one when a count other than 1
/// follows (as count − 2). None for the empty sketch.
fn sketch_numbers(s: &LatencySketch) -> Option<Vec<u64>> {
    let (buckets, zeros) = s.to_parts();
    if buckets.is_empty() && zeros == 0 {
        return None;
    }
    let mut out = vec![zeros];
    let mut prev: Option<i64> = None;
    for (i, c) in buckets {
        let i = i64::from(i);
        let step = match prev {
            None => ((i << 1) ^ (i >> 63)) as u64,
            Some(p) => (i - p - 1) as u64,
        };
        let more = c != 1;
        out.push(step * 2 + u64::from(more));
        if more {
            out.push(c.saturating_sub(2));
        }
        prev = Some(i);
    }
    Some(out)
}

/// The sketch as SQLite (and PostgreSQL from schema 12 to 14) writes it:
/// `~`, then [`sketch_numbers`] five bits a character. Each bucket of an
/// hour's or a day's sketch (steps of 1, counts in the hundreds) takes 3
/// characters instead of the older form's 6; empty is `""`.
pub(crate) fn encode_sketch(s: &LatencySketch) -> String {
    let Some(numbers) = sketch_numbers(s) else {
        return String::new();
    };
    let mut out = String::from(PACKED);
    for n in numbers {
        push_packed(&mut out, n);
    }
    out
}

/// What a sketch in bytes starts with; a sketch as text never does.
const BINARY: u8 = 1;

/// The sketch as PostgreSQL writes it from schema 15: [`BINARY`], then
/// [`sketch_numbers`] seven bits a byte (LEB128: low bits first, the high
/// bit set when more bytes follow); empty is no bytes (stored as NULL).
fn encode_sketch_bytes(s: &LatencySketch) -> Vec<u8> {
    let Some(numbers) = sketch_numbers(s) else {
        return Vec::new();
    };
    let mut out = vec![BINARY];
    for mut n in numbers {
        while n >= 0x80 {
            out.push((n & 0x7f) as u8 | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }
    out
}

/// Reads a stored sketch: [`encode_sketch_bytes`]'s form, or the bytes of
/// a sketch as text (SQLite, and rows PostgreSQL wrote before schema 15).
pub(crate) fn decode_sketch_bytes(bytes: &[u8]) -> Result<LatencySketch, String> {
    if bytes.first() != Some(&BINARY) {
        let text = std::str::from_utf8(bytes).map_err(|_| "the sketch is neither bytes nor text".to_owned())?;
        return decode_sketch(text);
    }
    let bad = |what: &str| format!("sketch of {} bytes: {what}", bytes.len());
    let mut numbers = Vec::new();
    let (mut v, mut shift) = (0u64, 0u32);
    for &b in &bytes[1..] {
        let low = u64::from(b & 0x7f);
        if shift > 63 || (shift > 0 && low >> (64 - shift) != 0) {
            return Err(bad("a number is out of range"));
        }
        v |= low << shift;
        if b & 0x80 == 0 {
            numbers.push(v);
            (v, shift) = (0, 0);
        } else {
            shift += 7;
        }
    }
    if shift != 0 {
        return Err(bad("it ends inside a number"));
    }
    sketch_from_numbers(numbers, bad)
}

/// Reads [`encode_sketch`]'s packed form (after the `~`).
fn decode_packed(text: &str) -> Result<LatencySketch, String> {
    let bad = |what: &str| format!("sketch '{text}': {what}");
    let mut numbers = Vec::new();
    let mut v: u64 = 0;
    for b in text.bytes().skip(1) {
        let (digit, last) = match (MORE.iter().position(|&m| m == b), LAST.iter().position(|&l| l == b)) {
            (Some(d), _) => (d, false),
            (None, Some(d)) => (d, true),
            (None, None) => return Err(bad("a character that is not a packed digit")),
        };
        v = v
            .checked_mul(32)
            .and_then(|x| x.checked_add(digit as u64))
            .ok_or_else(|| bad("a number is out of range"))?;
        if last {
            numbers.push(v);
            v = 0;
        }
    }
    if v != 0 || text.as_bytes().last().is_some_and(|b| MORE.contains(b)) {
        return Err(bad("it ends inside a number"));
    }
    sketch_from_numbers(numbers, bad)
}

/// The sketch [`sketch_numbers`] packed; `bad` words what is wrong.
fn sketch_from_numbers(numbers: Vec<u64>, bad: impl Fn(&str) -> String) -> Result<LatencySketch, String> {
    let mut it = numbers.into_iter();
    let zeros = it.next().ok_or_else(|| bad("no zero count"))?;
    let mut buckets = Vec::new();
    let mut prev: Option<i64> = None;
    while let Some(n) = it.next() {
        let step = i64::try_from(n / 2).map_err(|_| bad("a bucket index is out of range"))?;
        let i = match prev {
            None => (step >> 1) ^ -(step & 1),
            Some(p) => p
                .checked_add(step + 1)
                .ok_or_else(|| bad("a bucket index is out of range"))?,
        };
        let c = if n % 2 == 1 {
            it.next()
                .ok_or_else(|| bad("a count is missing"))?
                .checked_add(2)
                .ok_or_else(|| bad("a count is out of range"))?
        } else {
            1
        };
        buckets.push((i32::try_from(i).map_err(|_| bad("a bucket index is out of range"))?, c));
        prev = Some(i);
    }
    Ok(LatencySketch::from_parts(buckets, zeros))
}

/// The older form (schema 5 to 11), still read: `z<zeros>;` when there are
/// zeros, then one token per bucket, comma separated: the bucket's index
/// minus the previous one's (the first: the index), then `:count` when the
/// count is not 1.
#[cfg(test)]
fn encode_sketch_v1(s: &LatencySketch) -> String {
    let (buckets, zeros) = s.to_parts();
    let mut out = String::new();
    if zeros > 0 {
        out.push_str(&format!("z{zeros};"));
    }
    let mut prev = 0i64;
    for (n, (i, c)) in buckets.into_iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str(&(i64::from(i) - prev).to_string());
        if c != 1 {
            out.push_str(&format!(":{c}"));
        }
        prev = i64::from(i);
    }
    out
}

/// Reads either form: packed (`~…`) or the older text.
pub(crate) fn decode_sketch(text: &str) -> Result<LatencySketch, String> {
    if text.starts_with(PACKED) {
        return decode_packed(text);
    }
    let bad = |what: &str| format!("sketch '{text}': {what}");
    let (zeros, rest) = match text.strip_prefix('z') {
        Some(t) => {
            let (z, rest) = t.split_once(';').ok_or_else(|| bad("no ';' after the zero count"))?;
            (
                z.parse::<u64>().map_err(|_| bad("the zero count is not a number"))?,
                rest,
            )
        }
        None => (0, text),
    };
    let mut buckets = Vec::new();
    let mut prev = 0i64;
    for token in rest.split(',').filter(|t| !t.is_empty()) {
        let (d, c) = token.split_once(':').unwrap_or((token, "1"));
        let i = prev + d.parse::<i64>().map_err(|_| bad("a bucket index is not a number"))?;
        let c = c.parse::<u64>().map_err(|_| bad("a bucket count is not a number"))?;
        buckets.push((i32::try_from(i).map_err(|_| bad("a bucket index is out of range"))?, c));
        prev = i;
    }
    Ok(LatencySketch::from_parts(buckets, zeros))
}

// ---- rows ----

const MONITOR_COLS: &str = "id, name, environment, kind, target, interval_ms, coverage_ms, config, paused, \
     created_at, updated_at, rolled_from, rolled_until, minutes_from";

fn duration(v: i64, name: &str) -> Result<Duration, String> {
    u64::try_from(v)
        .map(Duration::from_millis)
        .map_err(|_| format!("{name} is negative ({v})"))
}

fn monitor_from_row(r: &Row) -> Result<MonitorRecord, StoreError> {
    let name = r.text(1, "name").unwrap_or_else(|_| "?".into());
    let decode = || -> Result<MonitorRecord, String> {
        Ok(MonitorRecord {
            def: MonitorDef {
                name: r.text(1, "name")?,
                environment: r.text(2, "environment")?,
                kind: r.text(3, "kind")?,
                target: r.text(4, "target")?,
                interval: duration(r.int(5, "interval_ms")?, "interval_ms")?,
                coverage: duration(r.int(6, "coverage_ms")?, "coverage_ms")?,
                config: serde_json::from_str(&r.text(7, "config")?).map_err(|e| format!("config is not JSON: {e}"))?,
            },
            paused: r.bool(8, "paused")?,
            created_at: Timestamp::from_millis(r.int(9, "created_at")?),
            updated_at: Timestamp::from_millis(r.int(10, "updated_at")?),
            rolled_from: r.opt_int(11, "rolled_from")?.map(Timestamp::from_millis),
            rolled_until: r.opt_int(12, "rolled_until")?.map(Timestamp::from_millis),
            minutes_from: r.opt_int(13, "minutes_from")?.map(Timestamp::from_millis),
        })
    };
    decode().map_err(|d| StoreError::corrupt("monitor", name, d))
}

const SAMPLE_COLS: &str = "m.name, s.slot, s.lag_ms, s.outcome, s.http_status, s.latency_ms, s.cache_status, \
     s.location, s.error";

fn sample_from_row(r: &Row) -> Result<ProbeSample, StoreError> {
    let decode = || -> Result<ProbeSample, String> {
        let slot = Timestamp::from_millis(r.int(1, "slot")?);
        Ok(ProbeSample {
            monitor: r.text(0, "monitor")?,
            slot,
            at: Timestamp::from_millis(slot.as_millis() + r.int(2, "lag_ms")?),
            outcome: r.parse(3, "outcome")?,
            http_status: r
                .opt_int(4, "http_status")?
                .map(|v| u16::try_from(v).map_err(|_| format!("http_status {v} is out of range")))
                .transpose()?,
            latency_ms: r
                .opt_int(5, "latency_ms")?
                .map(|v| u64::try_from(v).map_err(|_| format!("latency_ms {v} is negative")))
                .transpose()?,
            cache_status: r.parse_opt(6, "cache_status")?,
            location: r.opt_text(7, "location")?,
            error: r.opt_text(8, "error")?,
        })
    };
    decode().map_err(|d| {
        let id = format!(
            "{} at {}",
            r.text(0, "monitor").unwrap_or_else(|_| "?".into()),
            r.int(1, "slot").unwrap_or_default()
        );
        StoreError::corrupt("sample", id, d)
    })
}

const ROLLUP_COLS: &str = "ok, error, unavailable, status_5xx, latency_count, latency_sum_ms, latency_min_ms, \
     latency_max_ms, sketch, downtime_ms, maintenance_ms, no_data_ms";

/// Column `col` of a rollup row as a number: NULL is zero in the
/// `Compact` layout; `Plain` columns are never NULL and are read as they
/// are.
fn zero_null(layout: RollupLayout, col: &str) -> String {
    match layout {
        RollupLayout::Plain => col.to_owned(),
        RollupLayout::Compact => format!("COALESCE({col}, 0)"),
    }
}

/// `ROLLUP_COLS` of the rows as `r` for reading; without `latency` the
/// sketch is not sent (NULL reads as the empty one).
fn rollup_reads(layout: RollupLayout, latency: bool) -> String {
    ROLLUP_COLS
        .split(", ")
        .map(|c| match c {
            "sketch" if latency => "r.sketch".to_owned(),
            "sketch" => "NULL".to_owned(),
            "latency_min_ms" | "latency_max_ms" => format!("r.{c}"),
            c => zero_null(layout, &format!("r.{c}")),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn count(r: &Row, i: usize, name: &str) -> Result<u64, String> {
    let v = r.int(i, name)?;
    u64::try_from(v).map_err(|_| format!("{name} is negative ({v})"))
}

/// Reads `ROLLUP_COLS` starting at column `first`.
fn rollup_from(r: &Row, first: usize) -> Result<Rollup, String> {
    Ok(Rollup {
        ok: count(r, first, "ok")?,
        error: count(r, first + 1, "error")?,
        unavailable: count(r, first + 2, "unavailable")?,
        status_5xx: count(r, first + 3, "status_5xx")?,
        latency_count: count(r, first + 4, "latency_count")?,
        latency_sum_ms: r.real(first + 5, "latency_sum_ms")?,
        latency_min_ms: r.opt_real(first + 6, "latency_min_ms")?,
        latency_max_ms: r.opt_real(first + 7, "latency_max_ms")?,
        sketch: match r.opt_bytes(first + 8, "sketch")? {
            Some(bytes) => decode_sketch_bytes(&bytes)?,
            None => LatencySketch::new(),
        },
        downtime_ms: r.int(first + 9, "downtime_ms")?,
        maintenance_ms: r.int(first + 10, "maintenance_ms")?,
        no_data_ms: r.int(first + 11, "no_data_ms")?,
    })
}

/// The parameters of one row as `layout` stores it.
fn rollup_params(layout: RollupLayout, monitor_id: i64, key: i64, r: &Rollup) -> [Param; 14] {
    let compact = layout == RollupLayout::Compact;
    let int = |v: i64| Param::Int(Some(v).filter(|&v| !(compact && v == 0)));
    let count = |v: u64| int(i64::try_from(v).unwrap_or(i64::MAX));
    let sketch = match layout {
        RollupLayout::Plain => Param::Text(Some(encode_sketch(&r.sketch))),
        RollupLayout::Compact => Param::Bytes(Some(encode_sketch_bytes(&r.sketch)).filter(|b| !b.is_empty())),
    };
    [
        monitor_id.into(),
        key.into(),
        count(r.ok),
        count(r.error),
        count(r.unavailable),
        count(r.status_5xx),
        count(r.latency_count),
        Param::Real(Some(r.latency_sum_ms).filter(|&v| !(compact && v == 0.0))),
        r.latency_min_ms.into(),
        r.latency_max_ms.into(),
        sketch,
        int(r.downtime_ms),
        int(r.maintenance_ms),
        int(r.no_data_ms),
    ]
}

/// `($1, …, $n), ($n+1, …)` for `rows` rows of `width` parameters. On
/// PostgreSQL each parameter takes its column's type (an INTEGER count is
/// bound as one, refused when it does not fit: `pg::PgParam`).
fn values_list(rows: usize, width: usize) -> String {
    (0..rows)
        .map(|r| {
            let ps: Vec<String> = (0..width).map(|c| format!("${}", r * width + c + 1)).collect();
            format!("({})", ps.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes whole rows (by bucket start; replacing what is there).
fn put_rollups(
    sql: &mut dyn Sql,
    layout: RollupLayout,
    res: Resolution,
    monitor_id: i64,
    rows: &[(i64, Rollup)],
) -> Result<(), StoreError> {
    let keys = Buckets::of(layout, res);
    let updates = ROLLUP_COLS
        .split(", ")
        .map(|c| format!("{c} = excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let params: Vec<Param> = chunk
            .iter()
            .flat_map(|(bucket, r)| rollup_params(layout, monitor_id, keys.key(*bucket), r))
            .collect();
        sql.exec(
            &format!(
                "INSERT INTO {} (monitor_id, bucket, {ROLLUP_COLS}) VALUES {} \
                 ON CONFLICT (monitor_id, bucket) DO UPDATE SET {updates}",
                table(res),
                values_list(chunk.len(), 14)
            ),
            &params,
        )?;
    }
    Ok(())
}

/// The stored rows of one monitor with bucket starts in `[from, to)`, by
/// bucket start.
fn stored_rollups(
    sql: &mut dyn Sql,
    layout: RollupLayout,
    res: Resolution,
    monitor_id: i64,
    from: i64,
    to: i64,
) -> Result<BTreeMap<i64, Rollup>, StoreError> {
    let keys = Buckets::of(layout, res);
    // The bounds as BIGINT: a range far out is no error, it holds no row.
    let rows = sql.rows(
        &format!(
            "SELECT r.bucket, {} FROM {} r WHERE r.monitor_id = $1 AND r.bucket >= CAST($2 AS BIGINT) \
             AND r.bucket < CAST($3 AS BIGINT)",
            rollup_reads(layout, true),
            table(res)
        ),
        &[
            monitor_id.into(),
            keys.first_from(from).into(),
            keys.first_from(to).into(),
        ],
    )?;
    rows.iter()
        .map(|r| {
            let bucket = r
                .int(0, "bucket")
                .and_then(|k| keys.start(k))
                .map_err(|d| StoreError::corrupt("rollup", res.as_str(), d))?;
            let rollup = rollup_from(r, 1).map_err(|d| {
                StoreError::corrupt(
                    "rollup",
                    format!("{} {bucket} of monitor {monitor_id}", res.as_str()),
                    d,
                )
            })?;
            Ok((bucket, rollup))
        })
        .collect()
}

/// Merges `deltas` (by bucket start of `res`) into the stored rows.
fn merge_into(
    sql: &mut dyn Sql,
    layout: RollupLayout,
    res: Resolution,
    monitor_id: i64,
    deltas: &BTreeMap<i64, Rollup>,
) -> Result<(), StoreError> {
    let (Some(&first), Some(&last)) = (deltas.keys().next(), deltas.keys().next_back()) else {
        return Ok(());
    };
    let mut rows = stored_rollups(sql, layout, res, monitor_id, first, last + 1)?;
    for (bucket, delta) in deltas {
        rows.entry(*bucket).or_default().merge(delta);
    }
    let changed: Vec<(i64, Rollup)> = rows.into_iter().filter(|(b, _)| deltas.contains_key(b)).collect();
    put_rollups(sql, layout, res, monitor_id, &changed)
}

/// The rollups' time terms of each minute of `range` from the samples
/// around it: `(downtime, no data)` in milliseconds, downtime outside no
/// data (as the uptime arithmetic removes it).
fn minute_terms(obs: &[Observation], range: Span, coverage: Duration, window_end: i64) -> BTreeMap<i64, (i64, i64)> {
    let nd = no_data(obs, range, coverage);
    let down = unavailable_downtime(obs, Timestamp::from_millis(window_end))
        .union(&error_minute_downtime(obs))
        .intersect(&Spans::from_spans([range]))
        .minus(&nd);
    let mut out = BTreeMap::new();
    let mut m = range.start.as_millis();
    while m < range.end.as_millis() {
        let minute = Span::ms(m, m + MINUTE);
        out.insert(m, (down.within(minute).total_ms(), nd.within(minute).total_ms()));
        m += MINUTE;
    }
    out
}

fn measured_from(r: &Row) -> Result<Measured, String> {
    Ok(Measured {
        at: Timestamp::from_millis(r.int(0, "slot")?),
        outcome: r.parse::<Outcome>(1, "outcome")?,
        http_status: r.opt_int(2, "http_status")?.and_then(|v| u16::try_from(v).ok()),
        latency_ms: r.opt_int(3, "latency_ms")?.map(|v| v as f64),
    })
}

/// One monitor's state while a rollup step runs.
struct Rolling {
    layout: RollupLayout,
    id: i64,
    name: String,
    coverage: Duration,
    rolled_from: Option<i64>,
    rolled_until: Option<i64>,
}

/// What one step (one transaction) did.
#[derive(Debug, Default)]
struct Step {
    samples: u64,
    late: u64,
    done: bool,
}

impl Rolling {
    fn corrupt(&self, d: String) -> StoreError {
        StoreError::corrupt("sample", format!("of monitor {}", self.name), d)
    }

    /// Takes the unrolled samples with slots in `[from, to)` off
    /// `samples_unrolled` and returns them: the deletion is one statement,
    /// so what is counted is exactly what was taken, whatever is inserted
    /// meanwhile (a sample and its unrolled row are written together).
    fn take(&self, sql: &mut dyn Sql, from: i64, to: i64) -> Result<Vec<Measured>, StoreError> {
        let taken = sql
            .rows(
                "DELETE FROM samples_unrolled WHERE monitor_id = $1 AND slot >= $2 AND slot < $3 RETURNING slot",
                &[self.id.into(), from.into(), to.into()],
            )?
            .iter()
            .map(|r| r.int(0, "slot"))
            .collect::<Result<std::collections::BTreeSet<i64>, String>>()
            .map_err(|d| self.corrupt(d))?;
        let (Some(&first), Some(&last)) = (taken.first(), taken.last()) else {
            return Ok(Vec::new());
        };
        let rows = sql.rows(
            "SELECT slot, outcome, http_status, latency_ms FROM samples \
             WHERE monitor_id = $1 AND slot >= $2 AND slot <= $3 ORDER BY slot",
            &[self.id.into(), first.into(), last.into()],
        )?;
        let mut out = Vec::with_capacity(taken.len());
        for r in &rows {
            let m = measured_from(r).map_err(|d| self.corrupt(d))?;
            if taken.contains(&m.at.as_millis()) {
                out.push(m);
            }
        }
        if out.len() != taken.len() {
            return Err(self.corrupt(format!(
                "{} unrolled slots in [{from}, {to}) but {} samples",
                taken.len(),
                out.len()
            )));
        }
        Ok(out)
    }

    /// Every sample with a slot in `[from, to)`, in slot order.
    fn context(&self, sql: &mut dyn Sql, from: i64, to: i64) -> Result<Vec<Observation>, StoreError> {
        let rows = sql.rows(
            "SELECT slot, outcome, http_status, latency_ms FROM samples \
             WHERE monitor_id = $1 AND slot >= $2 AND slot < $3 ORDER BY slot",
            &[self.id.into(), from.into(), to.into()],
        )?;
        rows.iter()
            .map(|r| {
                measured_from(r)
                    .map(|m| Observation {
                        at: m.at,
                        outcome: m.outcome,
                        http_status: m.http_status,
                    })
                    .map_err(|d| self.corrupt(d))
            })
            .collect()
    }

    /// Folds `counted` into the rollups and restates the time terms of the
    /// minutes of `range`, which stays within `covered` once done: minutes
    /// inside the old covered range already hold their terms (in their row,
    /// or 60 s of no data when they have none), minutes outside it held
    /// nothing. Hours and days take the same deltas.
    fn restate(
        &self,
        sql: &mut dyn Sql,
        range: (i64, i64),
        old_covered: Option<(i64, i64)>,
        counted: &[Measured],
    ) -> Result<(), StoreError> {
        let (a, b) = range;
        if a >= b {
            return Ok(());
        }
        let mut deltas: BTreeMap<i64, Rollup> = BTreeMap::new();
        for m in counted {
            deltas.entry(floor(m.at.as_millis(), MINUTE)).or_default().add(m);
        }
        let back = NEAR_BACK + ms(self.coverage);
        let obs = self.context(sql, a - back, b + AHEAD)?;
        let terms = minute_terms(&obs, Span::ms(a, b), self.coverage, b + AHEAD);
        let mut minutes = stored_rollups(sql, self.layout, Resolution::Minute, self.id, a, b)?;
        let covered = |m: i64| old_covered.is_some_and(|(from, until)| m >= from && m < until);
        let mut write = Vec::new();
        for (&m, &(down, nd)) in &terms {
            let delta = deltas.entry(m).or_default();
            let stored = minutes.remove(&m);
            let base = match &stored {
                Some(r) => r.clone(),
                None if covered(m) => Rollup {
                    no_data_ms: MINUTE,
                    ..Rollup::default()
                },
                None => Rollup::default(),
            };
            delta.downtime_ms += down - base.downtime_ms;
            delta.no_data_ms += nd - base.no_data_ms;
            let mut row = base;
            row.merge(delta);
            // A minute that saw nothing and is all no data needs no row.
            let empty = row.samples() == 0 && row.downtime_ms == 0 && row.no_data_ms == MINUTE;
            if stored.is_some() || !empty {
                write.push((m, row));
            }
        }
        // Samples outside `range` (never: the callers take them from it).
        deltas.retain(|m, _| terms.contains_key(m));
        put_rollups(sql, self.layout, Resolution::Minute, self.id, &write)?;
        for res in [Resolution::Hour, Resolution::Day] {
            let mut coarse: BTreeMap<i64, Rollup> = BTreeMap::new();
            for (m, d) in &deltas {
                coarse.entry(floor(*m, res.millis())).or_default().merge(d);
            }
            merge_into(sql, self.layout, res, self.id, &coarse)?;
        }
        Ok(())
    }

    fn save_range(&self, sql: &mut dyn Sql, from: i64, until: i64) -> Result<(), StoreError> {
        sql.exec(
            "UPDATE monitors SET rolled_from = $2, rolled_until = $3 WHERE id = $1",
            &[self.id.into(), from.into(), until.into()],
        )?;
        Ok(())
    }
}

fn min_unrolled(sql: &mut dyn Sql, id: i64, below: Option<i64>) -> Result<Option<i64>, StoreError> {
    let row = match below {
        Some(b) => sql.row(
            "SELECT MIN(slot) FROM samples_unrolled WHERE monitor_id = $1 AND slot < $2",
            &[id.into(), b.into()],
        )?,
        None => sql.row(
            "SELECT MIN(slot) FROM samples_unrolled WHERE monitor_id = $1",
            &[id.into()],
        )?,
    };
    row.map(|r| r.opt_int(0, "slot"))
        .transpose()
        .map(Option::flatten)
        .map_err(|d| StoreError::corrupt("sample", format!("of monitor {id}"), d))
}

/// One transaction of a rollup run for one monitor: late samples first (a
/// chunk of them), else the next chunk of time up to `settled`.
fn roll_step(
    sql: &mut dyn Sql,
    (lock, layout): (&str, RollupLayout),
    id: i64,
    settled: i64,
    chunk: i64,
) -> Result<Step, StoreError> {
    // The row lock makes concurrent runs (several instances) take turns.
    let Some(row) = sql.row(
        &format!("SELECT name, coverage_ms, rolled_from, rolled_until FROM monitors WHERE id = $1{lock}"),
        &[id.into()],
    )?
    else {
        return Ok(Step {
            done: true,
            ..Step::default()
        });
    };
    let m = (|| -> Result<Rolling, String> {
        Ok(Rolling {
            layout,
            id,
            name: row.text(0, "name")?,
            coverage: duration(row.int(1, "coverage_ms")?, "coverage_ms")?,
            rolled_from: row.opt_int(2, "rolled_from")?,
            rolled_until: row.opt_int(3, "rolled_until")?,
        })
    })()
    .map_err(|d| StoreError::corrupt("monitor", id.to_string(), d))?;
    let coverage = ms(m.coverage);

    if let (Some(from), Some(until)) = (m.rolled_from, m.rolled_until)
        && let Some(lo) = min_unrolled(sql, id, Some(until))?
    {
        // Late samples: in minutes already rolled up, or before them.
        let (a, b, taken) = if lo < from {
            // Before the covered range (history imported later): extend it
            // backwards by whole days, the latest first, at least a day and
            // at most a chunk (rounded up to days) per step.
            let a = floor(lo, DAY).max(from - ceil(chunk, DAY));
            let taken = m.take(sql, a, from)?;
            (a, ceil(from + NEAR_BACK + coverage, MINUTE).min(until), taken)
        } else {
            let hi = (floor(lo, MINUTE) + chunk).min(until);
            let taken = m.take(sql, lo, hi)?;
            let last = taken.iter().map(|s| s.at.as_millis()).max().unwrap_or(lo);
            let a = (floor(lo, MINUTE) - NEAR_BACK).max(from);
            (a, ceil(last + MINUTE + NEAR_BACK + coverage, MINUTE).min(until), taken)
        };
        let late = taken.len() as u64;
        m.restate(sql, (a, b), Some((from, until)), &taken)?;
        m.save_range(sql, a.min(from), until)?;
        return Ok(Step {
            samples: late,
            late,
            done: false,
        });
    }

    let start = match m.rolled_until {
        Some(u) => u,
        None => match min_unrolled(sql, id, None)? {
            Some(first) => floor(first, DAY),
            None => {
                return Ok(Step {
                    done: true,
                    ..Step::default()
                });
            }
        },
    };
    let end = (start + chunk).min(settled);
    if end <= start {
        return Ok(Step {
            done: true,
            ..Step::default()
        });
    }
    let from = m.rolled_from.unwrap_or(start);
    let taken = m.take(sql, start, end)?;
    // The minutes just before the range may change with what follows them.
    let a = (start - NEAR_BACK).max(from);
    m.restate(sql, (a, end), Some((from, start)), &taken)?;
    m.save_range(sql, from, end)?;
    Ok(Step {
        samples: taken.len() as u64,
        late: 0,
        done: end >= settled,
    })
}

impl<B: Backend> Db<B> {
    fn monitor_id(sql: &mut dyn Sql, name: &str) -> Result<Option<i64>, StoreError> {
        sql.row("SELECT id FROM monitors WHERE name = $1", &[name.into()])?
            .map(|r| r.int(0, "id"))
            .transpose()
            .map_err(|d| StoreError::corrupt("monitor", name, d))
    }

    pub(super) fn do_put_monitor(&self, def: &MonitorDef) -> Result<MonitorRecord, StoreError> {
        let mut violations = Vec::new();
        if def.name.is_empty() {
            violations.push(rollway_model::rules::Violation::new(
                "name",
                "monitor.name-required",
                "a monitor needs a name",
            ));
        }
        if let Some(why) = rollway_model::names::name_too_long(&def.name) {
            violations.push(rollway_model::rules::Violation::new("name", "monitor.name-length", why));
        }
        if def.interval.is_zero() || def.coverage < def.interval {
            violations.push(rollway_model::rules::Violation::new(
                "interval",
                "monitor.interval-positive",
                "the interval must be positive and the coverage at least the interval",
            ));
        }
        if !violations.is_empty() {
            return Err(StoreError::Invalid {
                what: "monitor",
                id: rollway_model::names::shown(&def.name),
                violations,
            });
        }
        let now = self.clock.now().as_millis();
        let config = rollway_model::event::canonical_json(&def.config);
        self.backend.write(|sql| {
            sql.exec(
                "INSERT INTO monitors (name, environment, kind, target, interval_ms, coverage_ms, config, paused, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $8) \
                 ON CONFLICT (name) DO UPDATE SET environment = excluded.environment, kind = excluded.kind, \
                 target = excluded.target, interval_ms = excluded.interval_ms, coverage_ms = excluded.coverage_ms, \
                 config = excluded.config, updated_at = excluded.updated_at",
                &[
                    def.name.as_str().into(),
                    def.environment.as_str().into(),
                    def.kind.as_str().into(),
                    def.target.as_str().into(),
                    ms(def.interval).into(),
                    ms(def.coverage).into(),
                    config.into(),
                    now.into(),
                ],
            )?;
            Self::get_monitor(sql, &def.name)?.ok_or_else(|| StoreError::NotFound {
                what: "monitor",
                id: def.name.clone(),
            })
        })
    }

    fn get_monitor(sql: &mut dyn Sql, name: &str) -> Result<Option<MonitorRecord>, StoreError> {
        sql.row(
            &format!("SELECT {MONITOR_COLS} FROM monitors WHERE name = $1"),
            &[name.into()],
        )?
        .as_ref()
        .map(monitor_from_row)
        .transpose()
    }

    pub(super) fn do_monitor(&self, name: &str) -> Result<Option<MonitorRecord>, StoreError> {
        self.backend.read(|sql| Self::get_monitor(sql, name))
    }

    pub(super) fn do_monitors(&self) -> Result<Vec<MonitorRecord>, StoreError> {
        self.backend.read(|sql| {
            sql.rows(&format!("SELECT {MONITOR_COLS} FROM monitors ORDER BY name"), &[])?
                .iter()
                .map(monitor_from_row)
                .collect()
        })
    }

    pub(super) fn do_set_monitor_paused(&self, name: &str, paused: bool) -> Result<MonitorRecord, StoreError> {
        let now = self.clock.now().as_millis();
        self.backend.write(|sql| {
            let n = sql.exec(
                "UPDATE monitors SET paused = $2, updated_at = $3 WHERE name = $1",
                &[name.into(), i64::from(paused).into(), now.into()],
            )?;
            let not_found = || StoreError::NotFound {
                what: "monitor",
                id: name.to_owned(),
            };
            if n == 0 {
                return Err(not_found());
            }
            Self::get_monitor(sql, name)?.ok_or_else(not_found)
        })
    }

    pub(super) fn do_record_samples(&self, batch: &[ProbeSample]) -> Result<RecordedSamples, StoreError> {
        if batch.is_empty() {
            return Ok(RecordedSamples::default());
        }
        let masker: Masker = self.current_masker();
        self.backend.write(|sql| {
            let mut ids: BTreeMap<&str, i64> = BTreeMap::new();
            for s in batch {
                if !ids.contains_key(s.monitor.as_str()) {
                    let id = Self::monitor_id(sql, &s.monitor)?.ok_or_else(|| StoreError::NotFound {
                        what: "monitor",
                        id: s.monitor.clone(),
                    })?;
                    ids.insert(&s.monitor, id);
                }
            }
            let mut inserted = 0;
            for chunk in batch.chunks(ROWS_PER_INSERT) {
                let mut params = Vec::with_capacity(chunk.len() * 9);
                for s in chunk {
                    let id = ids.get(s.monitor.as_str()).copied().unwrap_or_default();
                    params.extend([
                        id.into(),
                        s.slot.as_millis().into(),
                        (s.at.as_millis() - s.slot.as_millis()).into(),
                        s.outcome.as_str().into(),
                        Param::Int(s.http_status.map(i64::from)),
                        Param::Int(s.latency_ms.map(|l| i64::try_from(l).unwrap_or(i64::MAX))),
                        Param::Text(s.cache_status.map(|c| c.as_str().to_owned())),
                        Param::Text(s.location.as_deref().map(scrub)),
                        Param::Text(s.error.as_deref().map(|e| scrub(&masker.mask(e)))),
                    ]);
                }
                let new = sql.rows(
                    &format!(
                        "INSERT INTO samples (monitor_id, slot, lag_ms, outcome, http_status, latency_ms, \
                         cache_status, location, error) VALUES {} ON CONFLICT (monitor_id, slot) DO NOTHING \
                         RETURNING monitor_id, slot",
                        values_list(chunk.len(), 9)
                    ),
                    &params,
                )?;
                if new.is_empty() {
                    continue;
                }
                // Only the samples written now wait for a roll-up: a
                // duplicate was counted (or waits) already.
                let keys: Vec<Param> = new
                    .iter()
                    .flat_map(|r| [r.int(0, "monitor_id"), r.int(1, "slot")])
                    .map(|v| v.map(Param::from))
                    .collect::<Result<_, String>>()
                    .map_err(|d| StoreError::corrupt("sample", "inserted", d))?;
                sql.exec(
                    &format!(
                        "INSERT INTO samples_unrolled (monitor_id, slot) VALUES {}",
                        values_list(new.len(), 2)
                    ),
                    &keys,
                )?;
                inserted += new.len() as u64;
            }
            Ok(RecordedSamples {
                inserted,
                duplicates: batch.len() as u64 - inserted,
            })
        })
    }

    pub(super) fn do_latest_samples(&self, environment: Option<&str>) -> Result<Vec<ProbeSample>, StoreError> {
        let (filter, params): (&str, Vec<Param>) = match environment {
            Some(env) => (" AND m.environment = $1", vec![env.into()]),
            None => ("", Vec::new()),
        };
        self.backend.read(|sql| {
            sql.rows(
                &format!(
                    "SELECT {SAMPLE_COLS} FROM monitors m JOIN samples s ON s.monitor_id = m.id \
                     WHERE s.slot = (SELECT MAX(slot) FROM samples WHERE monitor_id = m.id){filter} \
                     ORDER BY m.name"
                ),
                &params,
            )?
            .iter()
            .map(sample_from_row)
            .collect()
        })
    }

    pub(super) fn do_samples(
        &self,
        monitor: &str,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<ProbeSample>, StoreError> {
        self.backend.read(|sql| {
            sql.rows(
                &format!(
                    "SELECT {SAMPLE_COLS} FROM samples s JOIN monitors m ON m.id = s.monitor_id \
                     WHERE m.name = $1 AND s.slot >= $2 AND s.slot < $3 ORDER BY s.slot LIMIT $4"
                ),
                &[
                    monitor.into(),
                    from.as_millis().into(),
                    to.as_millis().into(),
                    i64::try_from(limit).unwrap_or(i64::MAX).into(),
                ],
            )?
            .iter()
            .map(sample_from_row)
            .collect()
        })
    }

    pub(super) fn do_rollups(
        &self,
        monitor: &str,
        res: Resolution,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<RollupRow>, StoreError> {
        self.backend.read(|sql| {
            let Some(id) = Self::monitor_id(sql, monitor)? else {
                return Ok(Vec::new());
            };
            Ok(
                stored_rollups(sql, B::ROLLUPS, res, id, from.as_millis(), to.as_millis())?
                    .into_iter()
                    .map(|(bucket, rollup)| RollupRow {
                        monitor: monitor.to_owned(),
                        bucket: Timestamp::from_millis(bucket),
                        rollup,
                    })
                    .collect(),
            )
        })
    }

    pub(super) fn do_rollups_in(
        &self,
        res: Resolution,
        ranges: &[(String, Span)],
        latency: bool,
    ) -> Result<Vec<Vec<RollupRow>>, StoreError> {
        let mut out: Vec<Vec<RollupRow>> = vec![Vec::new(); ranges.len()];
        let cols = rollup_reads(B::ROLLUPS, latency);
        let keys = Buckets::of(B::ROLLUPS, res);
        self.backend.read(|sql| {
            if !B::BULK_READ.is_empty() {
                sql.exec(B::BULK_READ, &[])?;
            }
            for (n, chunk) in ranges.chunks(RANGES_PER_QUERY).enumerate() {
                let first = n * RANGES_PER_QUERY;
                // The ranges as a table joined to the primary key: one
                // index range scan each, whatever the number of monitors
                // (`Backend::RANGES_JOIN` says how each planner keeps to it).
                let values = (0..chunk.len())
                    .map(|k| {
                        let p = 4 * k;
                        format!(
                            "(CAST(${} AS BIGINT), CAST(${} AS TEXT), CAST(${} AS BIGINT), CAST(${} AS BIGINT))",
                            p + 1,
                            p + 2,
                            p + 3,
                            p + 4
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let params: Vec<Param> = chunk
                    .iter()
                    .enumerate()
                    .flat_map(|(k, (monitor, span))| {
                        [
                            i64::try_from(first + k).unwrap_or(i64::MAX).into(),
                            monitor.as_str().into(),
                            keys.first_from(span.start.as_millis()).into(),
                            keys.first_from(span.end.as_millis()).into(),
                        ]
                    })
                    .collect();
                let rows = sql.rows(
                    &format!(
                        "WITH q (k, name, lo, hi) AS (VALUES {values}) \
                         SELECT q.k, r.bucket, {cols} FROM {} ORDER BY q.k, r.bucket",
                        B::RANGES_JOIN.replace("TABLE", table(res))
                    ),
                    &params,
                )?;
                for r in &rows {
                    let decode = || -> Result<(usize, RollupRow), String> {
                        let k = usize::try_from(r.int(0, "k")?).map_err(|_| "k is negative".to_owned())?;
                        let (monitor, _) = ranges.get(k).ok_or_else(|| format!("k {k} is out of range"))?;
                        Ok((
                            k,
                            RollupRow {
                                monitor: monitor.clone(),
                                bucket: Timestamp::from_millis(keys.start(r.int(1, "bucket")?)?),
                                rollup: rollup_from(r, 2)?,
                            },
                        ))
                    };
                    let (k, row) = decode().map_err(|d| StoreError::corrupt("rollup", res.as_str(), d))?;
                    if let Some(rows) = out.get_mut(k) {
                        rows.push(row);
                    }
                }
            }
            Ok(())
        })?;
        Ok(out)
    }

    pub(super) fn do_rollup_sums(&self, res: Resolution, ranges: &[SumRange]) -> Result<Vec<RollupSum>, StoreError> {
        let mut out = vec![RollupSum::default(); ranges.len()];
        // Each row's terms clipped as `Tally::add_bucket` clips them (to
        // the time not under maintenance), then summed; only rows on a
        // bucket boundary of the range count, as only those are pieces (a
        // range that starts off a boundary counts none). NULL is zero.
        let keys = Buckets::of(B::ROLLUPS, res);
        let zero = |col: &str| zero_null(B::ROLLUPS, col);
        let clip = |col: &str, limit: &str| format!("CASE WHEN {col} < {limit} THEN {col} ELSE {limit} END");
        let select = format!(
            "SELECT t.k, COUNT(*), CAST(SUM(t.ok) AS BIGINT), CAST(SUM(t.error) AS BIGINT), \
             CAST(SUM(t.unavailable) AS BIGINT), CAST(SUM(t.down) AS BIGINT), CAST(SUM({}) AS BIGINT), \
             CAST(SUM({}) AS BIGINT), \
             SUM(CASE WHEN t.ok < 0 OR t.error < 0 OR t.unavailable < 0 THEN 1 ELSE 0 END) \
             FROM (SELECT q.k AS k, q.lo AS lo, q.rest AS rest, r.bucket AS bucket, {} AS ok, {} AS error, \
             {} AS unavailable, {} AS maintenance_ms, {} AS no_data_ms, {} AS down FROM {}) t \
             WHERE (t.bucket - t.lo) % {} = 0 GROUP BY t.k ORDER BY t.k",
            clip("t.maintenance_ms", "t.rest"),
            clip("t.no_data_ms", "t.rest - t.down"),
            zero("r.ok"),
            zero("r.error"),
            zero("r.unavailable"),
            zero("r.maintenance_ms"),
            zero("r.no_data_ms"),
            clip(&zero("r.downtime_ms"), "q.rest"),
            B::RANGES_JOIN.replace("TABLE", table(res)),
            res.millis() / keys.unit,
        );
        self.backend.read(|sql| {
            if !B::BULK_READ.is_empty() {
                sql.exec(B::BULK_READ, &[])?;
            }
            for (n, chunk) in ranges.chunks(RANGES_PER_QUERY).enumerate() {
                let first = n * RANGES_PER_QUERY;
                let values = (0..chunk.len())
                    .map(|k| {
                        let p = 5 * k;
                        format!(
                            "(CAST(${} AS BIGINT), CAST(${} AS TEXT), CAST(${} AS BIGINT), CAST(${} AS BIGINT), \
                             CAST(${} AS BIGINT))",
                            p + 1,
                            p + 2,
                            p + 3,
                            p + 4,
                            p + 5
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let params: Vec<Param> = chunk
                    .iter()
                    .enumerate()
                    .flat_map(|(k, r)| {
                        let lo = keys.first_from(r.span.start.as_millis());
                        let hi = if r.span.start.as_millis().rem_euclid(res.millis()) == 0 {
                            keys.first_from(r.span.end.as_millis())
                        } else {
                            lo
                        };
                        [
                            i64::try_from(first + k).unwrap_or(i64::MAX).into(),
                            r.monitor.as_str().into(),
                            lo.into(),
                            hi.into(),
                            r.rest_ms.into(),
                        ]
                    })
                    .collect();
                let rows = sql.rows(
                    &format!("WITH q (k, name, lo, hi, rest) AS (VALUES {values}) {select}"),
                    &params,
                )?;
                for r in &rows {
                    let decode = || -> Result<(usize, RollupSum), String> {
                        let k = usize::try_from(r.int(0, "k")?).map_err(|_| "k is negative".to_owned())?;
                        if r.int(8, "negative counts")? > 0 {
                            return Err(format!("range {k} has a row with a negative count"));
                        }
                        Ok((
                            k,
                            RollupSum {
                                rows: count(r, 1, "rows")?,
                                ok: count(r, 2, "ok")?,
                                error: count(r, 3, "error")?,
                                unavailable: count(r, 4, "unavailable")?,
                                downtime_ms: r.int(5, "downtime_ms")?,
                                maintenance_ms: r.int(6, "maintenance_ms")?,
                                no_data_ms: r.int(7, "no_data_ms")?,
                            },
                        ))
                    };
                    let (k, sum) = decode().map_err(|d| StoreError::corrupt("rollup", res.as_str(), d))?;
                    if let Some(slot) = out.get_mut(k) {
                        *slot = sum;
                    }
                }
            }
            Ok(())
        })?;
        Ok(out)
    }

    pub(super) fn do_roll_up(&self, settings: &RollupSettings) -> Result<RollupReport, StoreError> {
        let now = self.clock.now().as_millis();
        let settled = floor(now - ms(settings.settle), MINUTE);
        let chunk = ceil(ms(settings.chunk).max(MINUTE), MINUTE);
        let ids: Vec<i64> = self.backend.read(|sql| {
            sql.rows("SELECT DISTINCT monitor_id FROM samples_unrolled", &[])?
                .iter()
                .map(|r| r.int(0, "monitor_id"))
                .collect::<Result<_, _>>()
                .map_err(|d| StoreError::corrupt("sample", "monitor_id", d))
        })?;
        let mut report = RollupReport {
            monitors: ids.len() as u64,
            ..RollupReport::default()
        };
        for id in ids {
            loop {
                let step = self
                    .backend
                    .write(|sql| roll_step(sql, (B::LOCK_ROW, B::ROLLUPS), id, settled, chunk))?;
                report.transactions += 1;
                report.samples += step.samples;
                report.late += step.late;
                if step.done {
                    break;
                }
            }
        }
        Ok(report)
    }

    pub(super) fn do_prune_monitoring(
        &self,
        keep: &Retention,
        windows: &MaintenanceSpans<'_>,
    ) -> Result<Pruned, StoreError> {
        let now = self.clock.now().as_millis();
        let batch = i64::from(keep.batch.max(1));
        let monitors: Vec<(i64, MonitorRecord)> = self.backend.read(|sql| {
            sql.rows(&format!("SELECT {MONITOR_COLS} FROM monitors ORDER BY id"), &[])?
                .iter()
                .map(|r| {
                    let id = r.int(0, "id").map_err(|d| StoreError::corrupt("monitor", "id", d))?;
                    Ok((id, monitor_from_row(r)?))
                })
                .collect()
        })?;
        let mut out = Pruned::default();
        // A sample goes once older than its keep and rolled up; a bucket
        // once all of it is older than its keep; minutes by whole hours,
        // folded into them first. A bucket's cutoff is the last key whose
        // bucket starts at or before it.
        let (hours, days) = (
            Buckets::of(B::ROLLUPS, Resolution::Hour),
            Buckets::of(B::ROLLUPS, Resolution::Day),
        );
        let tiers: [(&str, &str, &str, i64, &str); 3] = [
            (
                "samples",
                "slot",
                " AND NOT EXISTS (SELECT 1 FROM samples_unrolled u WHERE u.monitor_id = $1 AND u.slot = samples.slot)",
                now - ms(keep.samples),
                "<",
            ),
            (
                "rollups_hour",
                "bucket",
                "",
                hours.key(now - ms(keep.hours) - HOUR),
                "<=",
            ),
            ("rollups_day", "bucket", "", days.key(now - ms(keep.days) - DAY), "<="),
        ];
        for (n, (table, key, extra, cutoff, op)) in tiers.into_iter().enumerate() {
            if n == 1 {
                self.prune_minutes(keep, windows, &monitors, now, &mut out)?;
            }
            let statement = format!(
                "DELETE FROM {table} WHERE monitor_id = $1 AND {key} IN \
                 (SELECT {key} FROM {table} WHERE monitor_id = $1 AND {key} {op} CAST($2 AS BIGINT){extra} \
                 ORDER BY {key} LIMIT $3)"
            );
            for (id, _) in &monitors {
                loop {
                    let deleted = self
                        .backend
                        .write(|sql| sql.exec(&statement, &[(*id).into(), cutoff.into(), batch.into()]))?;
                    out.transactions += 1;
                    match n {
                        0 => out.samples += deleted,
                        1 => out.hours += deleted,
                        _ => out.days += deleted,
                    }
                    if deleted < batch as u64 {
                        break;
                    }
                }
            }
        }
        self.prune_metric_records(keep, now, batch, &mut out)?;
        Ok(out)
    }

    /// Deletes the minute rows of every hour that ended `keep.minutes` ago,
    /// a few hours per transaction (at least one, at most `keep.batch`
    /// rows' worth), each with its maintenance windows folded into the
    /// hours and days it belongs to and `minutes_from` moved past it.
    fn prune_minutes(
        &self,
        keep: &Retention,
        windows: &MaintenanceSpans<'_>,
        monitors: &[(i64, MonitorRecord)],
        now: i64,
        out: &mut Pruned,
    ) -> Result<(), StoreError> {
        let kept_from = floor(now - ms(keep.minutes), HOUR);
        let step = HOUR * (i64::from(keep.batch) / 60).max(1);
        for (id, m) in monitors {
            let (Some(from), Some(until)) = (m.rolled_from, m.rolled_until) else {
                continue;
            };
            let covered = (from.as_millis(), until.as_millis());
            // A whole hour, unless the covered range (nothing after it
            // was rolled up) ended before: a monitor stopped 35 days ago
            // loses all its minutes.
            let target = kept_from.min(covered.1);
            let mut a = m.minutes_from.map_or(covered.0, Timestamp::as_millis);
            while a < target {
                let b = (a + step).min(target);
                let under = windows(m, Span::ms(a, b));
                let deleted = self
                    .backend
                    .write(|sql| fold_and_delete(sql, (B::LOCK_ROW, B::ROLLUPS), *id, (a, b), covered, &under))?;
                out.transactions += 1;
                out.minutes += deleted;
                a = b;
            }
        }
        Ok(())
    }
}

/// One transaction of minute retention for monitor `id`: the minutes of
/// `[a, b)` (less any another instance already did) under `under` folded
/// into their hours and days, every minute row before `b` deleted, and
/// `minutes_from` set to `b`.
fn fold_and_delete(
    sql: &mut dyn Sql,
    (lock, layout): (&str, RollupLayout),
    id: i64,
    range: (i64, i64),
    covered: (i64, i64),
    under: &Spans,
) -> Result<u64, StoreError> {
    let (a, b) = range;
    // The row lock makes instances take turns; what one did, the other skips.
    let Some(row) = sql.row(
        &format!("SELECT minutes_from FROM monitors WHERE id = $1{lock}"),
        &[id.into()],
    )?
    else {
        return Ok(0);
    };
    let done = row
        .opt_int(0, "minutes_from")
        .map_err(|d| StoreError::corrupt("monitor", id.to_string(), d))?;
    let a = done.map_or(a, |d| d.max(a));
    if a >= b {
        return Ok(0);
    }
    // Only rolled-up minutes are in hours and days: outside the covered
    // range the uptime arithmetic reads raw samples and applies the windows.
    let (lo, hi) = (a.max(covered.0), b.min(covered.1));
    let inside = if lo < hi {
        under.within(Span::ms(lo, hi))
    } else {
        Spans::new()
    };
    if !inside.is_empty() {
        let minutes = stored_rollups(sql, layout, Resolution::Minute, id, a, b)?;
        for res in [Resolution::Hour, Resolution::Day] {
            let mut deltas: BTreeMap<i64, Terms> = BTreeMap::new();
            for span in inside.spans() {
                let mut t = floor(span.start.as_millis(), MINUTE);
                while t < span.end.as_millis() {
                    let d = fold_maintenance(Span::ms(t, t + MINUTE), minutes.get(&t), &inside);
                    let sum = deltas.entry(floor(t, res.millis())).or_default();
                    sum.downtime_ms += d.downtime_ms;
                    sum.maintenance_ms += d.maintenance_ms;
                    sum.no_data_ms += d.no_data_ms;
                    t += MINUTE;
                }
            }
            let (Some(&first), Some(&last)) = (deltas.keys().next(), deltas.keys().next_back()) else {
                continue;
            };
            let mut rows = stored_rollups(sql, layout, res, id, first, last + 1)?;
            let changed: Vec<(i64, Rollup)> = deltas
                .into_iter()
                .map(|(bucket, d)| {
                    // A bucket without a row inside the covered range had no data.
                    let mut r = rows.remove(&bucket).unwrap_or_else(|| Rollup {
                        no_data_ms: res.millis(),
                        ..Rollup::default()
                    });
                    r.downtime_ms += d.downtime_ms;
                    r.maintenance_ms += d.maintenance_ms;
                    r.no_data_ms += d.no_data_ms;
                    (bucket, r)
                })
                .collect();
            put_rollups(sql, layout, res, id, &changed)?;
        }
    }
    // Rows before `a` were folded before (or written by samples that came
    // after their hour was pruned, and are dropped as the hour's were).
    let deleted = sql.exec(
        "DELETE FROM rollups_minute WHERE monitor_id = $1 AND bucket < CAST($2 AS BIGINT)",
        &[id.into(), Buckets::of(layout, Resolution::Minute).first_from(b).into()],
    )?;
    sql.exec(
        "UPDATE monitors SET minutes_from = $2 WHERE id = $1",
        &[id.into(), b.into()],
    )?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sketches_round_trip_through_text() {
        let mut s = LatencySketch::new();
        assert_eq!(encode_sketch(&s), "");
        assert_eq!(decode_sketch("").unwrap(), s);
        for v in [0.0, 0.0, 12.0, 12.1, 12.2, 250.0, 0.5, 0.001, 90_000.0] {
            s.add(v);
        }
        let text = encode_sketch(&s);
        assert!(text.starts_with("~c"), "{text}");
        assert_eq!(decode_sketch(&text).unwrap(), s);
        // The older form is still read.
        let old = encode_sketch_v1(&s);
        assert!(old.starts_with("z2;"), "{old}");
        assert_eq!(decode_sketch(&old).unwrap(), s);
        assert!(decode_sketch("z;1").is_err());
        assert!(decode_sketch("1:x").is_err());
        assert!(decode_sketch("~").is_err());
        assert!(decode_sketch("~aB").is_err());
        assert!(decode_sketch("~a,").is_err());
        assert!(decode_sketch("~ab").is_err(), "a count announced but missing");
    }

    #[test]
    fn packed_sketches_are_smaller_and_exact_over_many_shapes() {
        // A deterministic stream of latencies from 0 to ~60 s with a tail.
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for n in [1, 2, 6, 60, 360, 8640] {
            let mut s = LatencySketch::new();
            for _ in 0..n {
                let r = next();
                let v = match r % 100 {
                    0 => 0.0,
                    1..=89 => 20.0 + (r >> 8) as f64 % 200.0,
                    _ => (r >> 8) as f64 % 60_000.0 + 0.25,
                };
                s.add(v);
            }
            let packed = encode_sketch(&s);
            let old = encode_sketch_v1(&s);
            let bytes = encode_sketch_bytes(&s);
            assert_eq!(decode_sketch(&packed).unwrap(), s, "{n}: {packed}");
            assert_eq!(decode_sketch(&old).unwrap(), s, "{n}: {old}");
            assert_eq!(decode_sketch_bytes(&bytes).unwrap(), s, "{n}: {bytes:?}");
            // Text as PostgreSQL stored it before schema 15, kept as its bytes.
            assert_eq!(decode_sketch_bytes(packed.as_bytes()).unwrap(), s, "{n}");
            assert_eq!(decode_sketch_bytes(old.as_bytes()).unwrap(), s, "{n}");
            assert!(bytes.len() <= packed.len(), "{n}: {} vs {}", bytes.len(), packed.len());
            if n >= 60 {
                assert!(
                    packed.len() * 3 < old.len() * 2,
                    "{n}: {} vs {}",
                    packed.len(),
                    old.len()
                );
            }
        }
    }

    #[test]
    fn sketch_bytes_refuse_what_they_cannot_read() {
        let check = |bytes: &[u8], expected: Result<u64, &str>| {
            let got = decode_sketch_bytes(bytes).map(|s| s.count());
            match expected {
                Ok(count) => assert_eq!(got, Ok(count), "{bytes:?}"),
                Err(needle) => {
                    let e = got.unwrap_err();
                    assert!(e.contains(needle), "{bytes:?}: {e}");
                }
            }
        };
        check(b"", Ok(0));
        check(&[BINARY, 0], Ok(0));
        check(&[BINARY, 2], Ok(2));
        check(&[BINARY, 0, 0x80], Err("it ends inside a number"));
        check(
            &[BINARY, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            Err("out of range"),
        );
        check(&[BINARY, 0, 1], Err("a count is missing"));
        check(&[0xff, 0xfe], Err("neither bytes nor text"));
        let mut s = LatencySketch::new();
        for v in [0.0, 3.0, 3.0, 250.0] {
            s.add(v);
        }
        assert_eq!(encode_sketch_bytes(&LatencySketch::new()), Vec::<u8>::new());
        assert_eq!(decode_sketch_bytes(&encode_sketch_bytes(&s)).unwrap(), s);
    }

    #[test]
    fn bucket_keys_convert_exactly_in_both_layouts() {
        let check = |layout: RollupLayout, res: Resolution, t: i64, key: i64, first_from: i64| {
            let b = Buckets::of(layout, res);
            assert_eq!((b.key(t), b.first_from(t)), (key, first_from), "{layout:?} {res:?} {t}");
        };
        let (m, h, d) = (MINUTE, HOUR, DAY);
        check(RollupLayout::Plain, Resolution::Hour, 5 * h + 1, 5 * h + 1, 5 * h + 1);
        check(RollupLayout::Compact, Resolution::Minute, 7 * m, 7, 7);
        check(RollupLayout::Compact, Resolution::Minute, 7 * m + 1, 7, 8);
        check(RollupLayout::Compact, Resolution::Hour, -h, -1, -1);
        check(RollupLayout::Compact, Resolution::Hour, -h + 1, -1, 0);
        check(RollupLayout::Compact, Resolution::Day, 3 * d - 1, 2, 3);
        let b = Buckets::of(RollupLayout::Compact, Resolution::Day);
        assert_eq!(b.start(3), Ok(3 * d));
        assert!(b.start(i64::MAX / 1000).unwrap_err().contains("day bucket"));
    }

    #[test]
    fn minutes_round_down_and_up() {
        assert_eq!(
            (floor(-1, MINUTE), ceil(1, MINUTE), ceil(MINUTE, MINUTE)),
            (-MINUTE, MINUTE, MINUTE)
        );
    }
}
