//! Which backups survive (OPERATIONS.md "Backups and restores", seed 003
//! Backup Records), in calendar terms in the environment's time zone:
//! `daily` keeps the newest completed backup of each of the last 30 days,
//! `weekly` the newest of each ISO week of the last 6 months, `monthly`
//! the newest of each calendar month of the last 2 years, `manual` each
//! manual backup for 1 year. Scheduled backups are the candidates of the
//! daily, weekly and monthly classes; manual ones only of `manual`. A
//! backup kept by any class survives (once, with every class that keeps
//! it); failed and in-progress ones never count.
//!
//! The periods end at the newest completed backup when the clock reads
//! earlier than it (a clock set back, WAL-G #636), so a wrong clock can
//! never make the newest backups look old.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{ToSpan, Zoned};
use serde::{Deserialize, Serialize};

use crate::status::BackupClass;
use crate::time::Timestamp;

/// One backup as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub id: String,
    pub created_at: Timestamp,
    /// Completed (failed and in-progress backups never count).
    pub completed: bool,
    /// Taken by hand (`backup create --manual`): kept by `manual` only.
    pub manual: bool,
}

/// How far back each class reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub daily_days: u32,
    pub weekly_months: u32,
    pub monthly_months: u32,
    pub manual_months: u32,
}

/// Seed 003: daily 30 days, weekly 6 months, monthly 2 years, manual 1 year.
pub const SEED_POLICY: Policy = Policy {
    daily_days: 30,
    weekly_months: 6,
    monthly_months: 24,
    manual_months: 12,
};

/// The survivors, each with the classes that keep it (in class order).
pub type Survivors = BTreeMap<String, Vec<BackupClass>>;

/// The backups of `all` that `policy` keeps at `now` in `tz`.
pub fn survivors(all: &[Candidate], now: Timestamp, tz: &TimeZone, policy: &Policy) -> Survivors {
    let done: Vec<&Candidate> = all.iter().filter(|c| c.completed).collect();
    let newest = done.iter().map(|c| c.created_at).max();
    let reference = newest.map_or(now, |n| n.max(now));
    let local = |t: Timestamp| t.to_jiff().to_zoned(tz.clone());
    let here = local(reference);
    // A period's first instant: midnight of a date in `tz` (or the first
    // instant after it when a clock change skips midnight).
    let from_date = |d: Date| -> Timestamp {
        d.to_zoned(tz.clone()).map_or(Timestamp::from_millis(i64::MIN), |z| {
            Timestamp::from_jiff(z.timestamp())
        })
    };
    let months_back = |m: u32| -> Timestamp {
        here.checked_sub(i64::from(m).months())
            .map_or(Timestamp::from_millis(i64::MIN), |z: Zoned| {
                Timestamp::from_jiff(z.timestamp())
            })
    };
    let daily_from = here
        .date()
        .checked_sub(i64::from(policy.daily_days.saturating_sub(1)).days())
        .map_or(Timestamp::from_millis(i64::MIN), from_date);

    let mut kept: BTreeMap<String, BTreeSet<BackupClass>> = BTreeMap::new();
    let scheduled: Vec<&&Candidate> = done.iter().filter(|c| !c.manual).collect();
    let mut newest_of = |class: BackupClass, from: Timestamp, key: &dyn Fn(&Zoned) -> (i16, i16, i16)| {
        let mut best: BTreeMap<(i16, i16, i16), &Candidate> = BTreeMap::new();
        for c in scheduled.iter().filter(|c| c.created_at >= from) {
            let k = key(&local(c.created_at));
            let b = best.entry(k).or_insert(c);
            // The newest of the bucket; on a tie, the larger id (ids sort by time).
            if (c.created_at, &c.id) > (b.created_at, &b.id) {
                *b = c;
            }
        }
        for c in best.values() {
            kept.entry(c.id.clone()).or_default().insert(class);
        }
    };
    newest_of(BackupClass::Daily, daily_from, &|z| {
        let d = z.date();
        (d.year(), i16::from(d.month()), i16::from(d.day()))
    });
    newest_of(BackupClass::Weekly, months_back(policy.weekly_months), &|z| {
        let w = z.date().iso_week_date();
        (w.year(), i16::from(w.week()), 0)
    });
    newest_of(BackupClass::Monthly, months_back(policy.monthly_months), &|z| {
        let d = z.date();
        (d.year(), i16::from(d.month()), 0)
    });
    let manual_from = months_back(policy.manual_months);
    for c in done.iter().filter(|c| c.manual && c.created_at >= manual_from) {
        kept.entry(c.id.clone()).or_default().insert(BackupClass::Manual);
    }
    kept.into_iter()
        .map(|(id, classes)| (id, classes.into_iter().collect()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    fn c(id: &str, t: &str, completed: bool, manual: bool) -> Candidate {
        Candidate {
            id: id.into(),
            created_at: at(t),
            completed,
            manual,
        }
    }

    #[track_caller]
    fn check(all: &[Candidate], now: &str, tz: &str, expected: &[(&str, &[BackupClass])]) {
        let tz = TimeZone::get(tz).unwrap_or(TimeZone::UTC);
        let got = survivors(all, at(now), &tz, &SEED_POLICY);
        let want: Survivors = expected
            .iter()
            .map(|(id, cl)| ((*id).to_owned(), cl.to_vec()))
            .collect();
        assert_eq!(got, want);
    }

    use BackupClass::{Daily, Manual, Monthly, Weekly};

    #[test]
    fn the_newest_of_each_bucket_is_kept_once_with_every_class() {
        let all = [
            c("a", "2026-11-30T01:00:00Z", true, false),
            c("b", "2026-11-30T23:00:00Z", true, false),
            c("c", "2026-12-01T02:00:00Z", true, false),
            c("d", "2026-12-01T03:00:00Z", false, false),
            c("m", "2026-12-01T01:00:00Z", true, true),
        ];
        // 30 Nov 2026 is a Monday: b and c share ISO week 49. b is the
        // newest of 30 Nov and of November; c of 1 Dec, of week 49 and of
        // December. d failed; m is manual (only `manual` keeps it).
        check(
            &all,
            "2026-12-05T12:00:00Z",
            "UTC",
            &[
                ("b", &[Daily, Monthly]),
                ("c", &[Daily, Weekly, Monthly]),
                ("m", &[Manual]),
            ],
        );
    }

    #[test]
    fn days_are_cut_in_the_environment_time_zone() {
        // 23:30 UTC on 30 Nov is 00:30 on 1 Dec in Berlin: the two backups
        // share a Berlin day, so only the later one is its day's newest.
        let all = [
            c("early", "2026-11-30T23:30:00Z", true, false),
            c("late", "2026-12-01T10:00:00Z", true, false),
        ];
        check(
            &all,
            "2026-12-02T00:00:00Z",
            "Europe/Berlin",
            &[("late", &[Daily, Weekly, Monthly])],
        );
        check(
            &all,
            "2026-12-02T00:00:00Z",
            "UTC",
            &[("early", &[Daily, Monthly]), ("late", &[Daily, Weekly, Monthly])],
        );
    }

    #[test]
    fn a_clock_set_back_never_ages_the_newest_backups() {
        let all = [
            c("old", "2026-01-10T00:00:00Z", true, false),
            c("new", "2026-12-01T00:00:00Z", true, false),
        ];
        // The clock reads a year earlier than the newest backup: the
        // periods end at that backup, so both stay what they were.
        let set_back = "2025-12-01T00:00:00Z";
        let right = "2026-12-02T00:00:00Z";
        let tz = TimeZone::UTC;
        assert_eq!(
            survivors(&all, at(set_back), &tz, &SEED_POLICY),
            survivors(&all, at(right), &tz, &SEED_POLICY)
        );
        check(
            &all,
            set_back,
            "UTC",
            &[("new", &[Daily, Weekly, Monthly]), ("old", &[Monthly])],
        );
    }

    #[test]
    fn nothing_completed_keeps_nothing() {
        check(
            &[c("f", "2026-12-01T00:00:00Z", false, false)],
            "2026-12-02T00:00:00Z",
            "UTC",
            &[],
        );
        check(&[], "2026-12-02T00:00:00Z", "UTC", &[]);
    }
}
