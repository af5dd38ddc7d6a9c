//! Millisecond timestamps, durations and the `Clock` seam through which all
//! waiting and time arithmetic go, so long windows are tested in milliseconds.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC. Stored as is by both store
/// backends so that hashes and comparisons agree everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// This time plus `d`, saturating.
    pub fn plus(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(ms))
    }

    /// How long after `earlier` this is; zero when it is not later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(self.0 - earlier.0).unwrap_or(0))
    }

    /// RFC 3339 in UTC with milliseconds, e.g. `2026-11-22T07:15:01.123Z`.
    /// Formatted by jiff; a time outside jiff's range (years -9999 to 9999,
    /// which RFC 3339 cannot write either) is shown at that range's edge.
    pub fn to_rfc3339(self) -> String {
        format!("{:.3}", self.to_jiff())
    }

    /// Parses the RFC 3339 forms `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)`
    /// (`t`, `z` and a space as the separator too) and normalises the offset
    /// to UTC; digits past milliseconds are dropped (floored). The shape is checked
    /// here because jiff reads the wider Temporal ISO 8601 grammar (seconds
    /// optional, `[zone]` annotations); the values — a month of 13, a 31st
    /// of February, an hour of 24, a leap day outside a leap year — are
    /// jiff's to refuse, so the calendar is never hand-written here. A leap
    /// second (`:60`) is read as `:59`, as jiff does.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        if !is_rfc3339_shape(s) {
            return None;
        }
        let t: jiff::Timestamp = s.parse().ok()?;
        Some(Self::from_jiff(t))
    }

    /// This time as a `jiff::Timestamp`, for calendar arithmetic; clamped
    /// to jiff's range.
    pub fn to_jiff(self) -> jiff::Timestamp {
        jiff::Timestamp::from_millisecond(self.0).unwrap_or(if self.0 < 0 {
            jiff::Timestamp::MIN
        } else {
            jiff::Timestamp::MAX
        })
    }

    /// A `jiff::Timestamp` to milliseconds, sub-millisecond digits dropped
    /// towards the past (floored: before 1970 too, a time never moves later).
    pub fn from_jiff(t: jiff::Timestamp) -> Self {
        let ms = t.as_nanosecond().div_euclid(1_000_000);
        // jiff's range (years -9999 to 9999) fits i64 milliseconds many times over.
        Self(i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX }))
    }
}

/// Whether `s` has RFC 3339's date-time shape: every field of its fixed
/// width, an optional fraction of at least one digit, and `Z` or `±HH:MM`.
/// Only positions and characters are checked; values are jiff's job.
fn is_rfc3339_shape(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let fixed = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && matches!(b[10], b'T' | b't' | b' ')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !fixed {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        i += 1 + n;
    }
    match &b[i..] {
        [b'Z' | b'z'] => true,
        // jiff takes offsets up to ±25:59:59; RFC 3339's `time-numoffset`
        // has a `time-hour`, 00 to 23, so that one bound is checked here.
        [b'+' | b'-', h1, h2, b':', _, _] => {
            digits(i + 1..i + 3) && digits(i + 4..i + 6) && (h1 - b'0') * 10 + (h2 - b'0') <= 23
        }
        _ => false,
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Parses durations written as in rollway.toml: `500ms`, `5s`, `30m`, `2h`,
/// `90d`, `1w`, or combinations like `1h30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "'{s}' is not a duration (expected e.g. 500ms, 5s, 30m, 2h, 90d)"
            ));
        }
        let n: u128 = rest[..digits]
            .parse()
            .map_err(|_| format!("'{s}' has a number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let ms_per = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "" => return Err(format!("'{s}' needs a unit (ms, s, m, h, d, w)")),
            other => {
                return Err(format!("'{s}' has an unknown unit '{other}' (use ms, s, m, h, d, w)"));
            }
        };
        total = total.saturating_add(n.saturating_mul(ms_per));
    }
    Ok(Duration::from_millis(u64::try_from(total).unwrap_or(u64::MAX)))
}

/// Formats a duration the way `parse_duration` reads it back.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, per) in [("d", 86_400_000u128), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] {
        if ms >= per && ms.is_multiple_of(per) {
            return format!("{}{unit}", ms / per);
        }
    }
    format!("{ms}ms")
}

/// Where "now" comes from and how waiting happens.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> Timestamp;
    fn sleep(&self, d: Duration);
}

/// A clock that only moves when told to, or when something sleeps on it.
/// Pure: it never reads the system time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<AtomicI64>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: Arc::new(AtomicI64::new(start.0)),
        }
    }

    pub fn advance(&self, d: Duration) {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        self.now.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn set(&self, t: Timestamp) {
        self.now.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.now.load(Ordering::SeqCst))
    }

    fn sleep(&self, d: Duration) {
        self.advance(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        for ms in [0, 1_700_000_000_123, 951_782_400_000, -86_400_000, 4_102_444_800_999] {
            let t = Timestamp(ms);
            assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Some(t), "{t}");
        }
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-22T08:15:01+01:00"),
            Timestamp::parse_rfc3339("2026-11-22T07:15:01Z")
        );
        assert_eq!(Timestamp::parse_rfc3339("2026-13-01T00:00:00Z"), None);
    }

    #[test]
    fn durations_parse_and_format() {
        let check = |s: &str, ms: Option<u64>| {
            assert_eq!(parse_duration(s).ok(), ms.map(Duration::from_millis), "{s}");
        };
        check("500ms", Some(500));
        check("5s", Some(5000));
        check("30m", Some(1_800_000));
        check("1h30m", Some(5_400_000));
        check("90d", Some(7_776_000_000));
        check("5", None);
        check("5x", None);
        check("", None);
        assert_eq!(format_duration(Duration::from_secs(1800)), "30m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Timestamp(10));
        assert_eq!(c.now(), Timestamp(10));
        c.sleep(Duration::from_secs(1800));
        assert_eq!(c.now(), Timestamp(1_800_010));
    }
}
