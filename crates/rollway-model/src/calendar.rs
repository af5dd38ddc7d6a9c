//! Calendar months in a time zone, for uptime per month (OPERATIONS.md:
//! "per calendar month in the environment's time zone"). All calendar
//! arithmetic is jiff's; the zone is the caller's (looking one up by name
//! reads the system's tz database, which this crate does not do).

use std::fmt;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::spans::Span;
use crate::time::Timestamp;

/// A calendar month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Month {
    pub year: i16,
    /// 1 to 12.
    pub month: i8,
}

impl Month {
    /// Reads `YYYY-MM` (a four-digit year, a month from 01 to 12).
    pub fn parse(s: &str) -> Result<Month, String> {
        let bad = || format!("'{s}' is not a month: write YYYY-MM, e.g. 2026-11");
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let year: i16 = y.parse().map_err(|_| bad())?;
        let month: i8 = m.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) {
            return Err(format!("'{s}' has month {month}: a month is 01 to 12"));
        }
        Ok(Month { year, month })
    }

    /// The month holding `t` in `tz`.
    pub fn of(t: Timestamp, tz: &TimeZone) -> Month {
        let d = t.to_jiff().to_zoned(tz.clone()).date();
        Month {
            year: d.year(),
            month: d.month(),
        }
    }

    fn first_day(self) -> Option<Date> {
        Date::new(self.year, self.month, 1).ok()
    }

    /// `[first midnight, next month's first midnight)` in `tz` (a midnight
    /// that a clock change skips is the first instant after it).
    pub fn span(self, tz: &TimeZone) -> Span {
        let instant = |d: Option<Date>| {
            d.and_then(|d| d.to_zoned(tz.clone()).ok())
                .map_or(Timestamp::from_millis(i64::MAX), |z| {
                    Timestamp::from_jiff(z.timestamp())
                })
        };
        let first = self.first_day();
        let next = first.and_then(|d| d.checked_add(jiff::Span::new().months(1)).ok());
        Span::new(instant(first), instant(next))
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl TryFrom<String> for Month {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Month::parse(&s)
    }
}

impl From<Month> for String {
    fn from(m: Month) -> String {
        m.to_string()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn months_are_read_strictly() {
        assert_eq!(Month::parse("2026-11").unwrap(), Month { year: 2026, month: 11 });
        for bad in [
            "2026-13",
            "2026-00",
            "2026-1",
            "26-11",
            "2026/11",
            "2026-11-01",
            "",
            "abcd-ef",
        ] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
        assert!(Month::parse("2026-13").unwrap_err().contains("01 to 12"));
    }

    #[test]
    fn a_month_starts_at_local_midnight() {
        let t = |s: &str| Timestamp::parse_rfc3339(s).unwrap();
        let berlin = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        let nov = Month::parse("2026-11").unwrap();
        assert_eq!(
            nov.span(&TimeZone::UTC),
            Span::new(t("2026-11-01T00:00:00Z"), t("2026-12-01T00:00:00Z"))
        );
        // October 2026 in Berlin: from CEST midnight to CET midnight (31 days and an hour).
        let oct = Month::parse("2026-10").unwrap().span(&berlin);
        assert_eq!(oct, Span::new(t("2026-09-30T22:00:00Z"), t("2026-10-31T23:00:00Z")));
        assert_eq!(oct.len_ms(), (31 * 24 + 1) * 3_600_000);
        // 23:30 UTC on October 31st is November in Berlin.
        assert_eq!(Month::of(t("2026-10-31T23:30:00Z"), &berlin), nov);
        assert_eq!(Month::of(t("2026-10-31T23:30:00Z"), &TimeZone::UTC).month, 10);
        assert_eq!(nov.to_string(), "2026-11");
    }
}
