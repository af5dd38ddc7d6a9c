//! OPERATIONS.md's downtime, maintenance and no-data terms worked out
//! by the tests themselves, straight from the definition, to hold
//! `rollway uptime --json` against: the samples as the store holds them,
//! a plain implementation of the definition over them (`terms`), and the
//! answer `uptime --json` gives for one monitor's month (`month_answer`).

use serde_json::{Value, json};

use super::Project;

/// An unavailable run must last longer than this to be downtime.
pub const UNAVAILABLE_GRACE_MS: i64 = 30_000;
const MINUTE_MS: i64 = 60_000;

/// One stored sample, as far as the definition needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSample {
    pub slot: i64,
    /// `ok`, `error` or `unavailable`.
    pub outcome: String,
    pub http_status: Option<u16>,
    pub error: String,
}

impl StoredSample {
    pub fn responded(&self) -> bool {
        self.outcome != "unavailable"
    }
}

/// Monitor `name`'s samples as the store holds them, oldest first.
pub fn stored_samples(p: &Project, name: &str) -> Vec<StoredSample> {
    p.sql(&format!(
        "SELECT s.slot, s.outcome, COALESCE(s.http_status, 0), COALESCE(s.error, '') FROM samples s \
         JOIN monitors m ON m.id = s.monitor_id WHERE m.name = '{name}' ORDER BY s.slot"
    ))
    .lines()
    .map(|l| {
        let f: Vec<&str> = l.splitn(4, '|').collect();
        let status: u16 = f[2].parse().unwrap();
        StoredSample {
            slot: f[0].parse().unwrap(),
            outcome: f[1].to_owned(),
            http_status: (status != 0).then_some(status),
            error: f[3].to_owned(),
        }
    })
    .collect()
}

/// The terms of one period, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms {
    pub downtime: i64,
    pub maintenance: i64,
    pub no_data: i64,
}

/// The downtime spans the definition gives, before anything is removed:
/// each run of unavailable samples from its first sample to the next one
/// with a response (or `end`) when longer than 30 s, and each run of two
/// or more UTC minutes in which more than half of the samples with a
/// response were 5xx.
pub fn downtime_spans(samples: &[StoredSample], end: i64) -> Vec<(i64, i64)> {
    let mut runs = Vec::new();
    let mut run: Option<i64> = None;
    for s in samples {
        if !s.responded() {
            run.get_or_insert(s.slot);
        } else if let Some(start) = run.take() {
            runs.push((start, s.slot));
        }
    }
    runs.extend(run.map(|start| (start, end)));
    let mut out: Vec<(i64, i64)> = runs.into_iter().filter(|(a, b)| b - a > UNAVAILABLE_GRACE_MS).collect();
    let mut minutes: std::collections::BTreeMap<i64, (u32, u32)> = Default::default();
    for s in samples.iter().filter(|s| s.responded()) {
        let m = minutes.entry(s.slot.div_euclid(MINUTE_MS)).or_default();
        m.0 += 1;
        if s.http_status.is_some_and(|c| (500..600).contains(&c)) {
            m.1 += 1;
        }
    }
    let bad: Vec<i64> = minutes
        .into_iter()
        .filter(|(_, (n, b))| 2 * b > *n)
        .map(|(m, _)| m)
        .collect();
    let mut i = 0;
    while i < bad.len() {
        let mut j = i;
        while j + 1 < bad.len() && bad[j + 1] == bad[j] + 1 {
            j += 1;
        }
        if j > i {
            out.push((bad[i] * MINUTE_MS, (bad[j] + 1) * MINUTE_MS));
        }
        i = j + 1;
    }
    out
}

/// The terms over `period`: every instant is maintenance when a window
/// covers it, else no data when no sample lies within `coverage_ms`
/// before it, else downtime when a downtime span covers it. Worked out
/// over the pieces between consecutive boundaries of all those spans.
pub fn terms(samples: &[StoredSample], period: (i64, i64), windows: &[(i64, i64)], coverage_ms: i64) -> Terms {
    let down = downtime_spans(samples, period.1);
    let covered: Vec<(i64, i64)> = samples.iter().map(|s| (s.slot, s.slot + coverage_ms)).collect();
    let mut cuts: Vec<i64> = vec![period.0, period.1];
    for &(a, b) in down.iter().chain(windows).chain(&covered) {
        cuts.extend([a.clamp(period.0, period.1), b.clamp(period.0, period.1)]);
    }
    cuts.sort_unstable();
    cuts.dedup();
    let inside = |spans: &[(i64, i64)], t: i64| spans.iter().any(|&(a, b)| a <= t && t < b);
    let mut t = Terms {
        downtime: 0,
        maintenance: 0,
        no_data: 0,
    };
    for w in cuts.windows(2) {
        let (at, len) = (w[0], w[1] - w[0]);
        if inside(windows, at) {
            t.maintenance += len;
        } else if !inside(&covered, at) {
            t.no_data += len;
        } else if inside(&down, at) {
            t.downtime += len;
        }
    }
    t
}

/// `uptime_percent` as the binary rounds it: 4 decimals of a percent.
pub fn percent(down_ms: i64, observed_ms: i64) -> f64 {
    ((1.0 - down_ms as f64 / observed_ms as f64) * 1_000_000.0).round() / 10_000.0
}

pub fn month_answer(
    monitor: &str,
    env: &str,
    tz: &str,
    month: &str,
    span: (i64, i64),
    terms: (i64, i64, i64),
    samples: u64,
) -> Value {
    let (start, end) = span;
    let (down, maint, nd) = terms;
    let period = end - start;
    let observed = period - maint - nd;
    let up = (observed > 0).then(|| percent(down, observed));
    json!({
        "monitor": monitor,
        "environment": env,
        "timezone": tz,
        "month": month,
        "month_to_date": false,
        "period_start": start,
        "period_end": end,
        "period_seconds": period as f64 / 1000.0,
        "downtime_seconds": down as f64 / 1000.0,
        "downtime_minutes": down as f64 / 60_000.0,
        "maintenance_seconds": maint as f64 / 1000.0,
        "no_data_seconds": nd as f64 / 1000.0,
        "uptime_percent": up,
        "target_percent": 99.5,
        "verdict": match up { None => "no_data", Some(u) if u >= 99.5 => "ok", Some(_) => "breached" },
        "samples": samples,
        "maintenance_from": "windows",
    })
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `YYYY-MM` of a time (UTC).
fn utc_month(ms: i64) -> String {
    rollway_model::time::Timestamp::from_millis(ms).to_string()[..7].to_owned()
}

/// Waits (at most `span`) until a run of `span` starting now stays within
/// one UTC month, so `uptime --json`'s month to date holds the whole run.
pub fn within_one_month(span: std::time::Duration) {
    let ms = span.as_millis() as i64;
    let started = std::time::Instant::now();
    while utc_month(now_ms()) != utc_month(now_ms() + ms) {
        assert!(started.elapsed() <= span, "still no new month after {span:?}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// `rollway uptime MONITOR --json` of the month to date, and what the
/// definition gives for the same period (its bounds read from the answer)
/// from the samples the store holds and `windows`.
pub fn uptime_against_definition(
    p: &Project,
    monitor: &str,
    env: &str,
    windows: &[(i64, i64)],
    coverage_ms: i64,
) -> (Value, Value, Terms) {
    let got = p.run(&["uptime", monitor, "--json"]).ok().json();
    let period = (
        got[0]["period_start"].as_i64().unwrap(),
        got[0]["period_end"].as_i64().unwrap(),
    );
    let samples = stored_samples(p, monitor);
    let t = terms(&samples, period, windows, coverage_ms);
    let mut want = month_answer(
        monitor,
        env,
        "UTC",
        got[0]["month"].as_str().unwrap(),
        period,
        (t.downtime, t.maintenance, t.no_data),
        samples.len() as u64,
    );
    want["month_to_date"] = json!(true);
    (got, json!([want]), t)
}
