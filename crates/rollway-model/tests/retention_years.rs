#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Issue 14's retention acceptance: three simulated years of nightly
//! backups in Europe/Berlin (a night the clock skips 02:30, a night it
//! passes 02:30 twice), failed runs beside good ones, a month with no
//! backups at all, and manual backups — the survivors must be exactly the
//! set seed 003's rule text gives, worked out here one backup at a time
//! ("is any scheduled completed backup of the same day newer?") rather
//! than by the grouping the model uses; and a clock set back never ages
//! the newest backups.

use std::collections::BTreeMap;

use jiff::civil::{Date, date};
use jiff::tz::TimeZone;
use jiff::{ToSpan, Zoned};
use rollway_model::retention::{Candidate, SEED_POLICY, survivors};
use rollway_model::{BackupClass, Timestamp};

fn tz() -> TimeZone {
    TimeZone::get("Europe/Berlin").unwrap()
}

fn local(t: Timestamp) -> Zoned {
    t.to_jiff().to_zoned(tz())
}

/// 2023-01-01 to 2025-12-31: each night at 02:30 local time (on the night
/// clocks spring forward that hour does not exist: jiff moves it to 03:30;
/// on the night they fall back it happens twice: both are taken), none in
/// June 2025 (a month of missed backups); every 10th night a failed run
/// later the same day; a manual backup at noon every 40 days.
fn three_years() -> Vec<Candidate> {
    let mut all = Vec::new();
    let mut n = 0;
    let mut day = date(2023, 1, 1);
    while day <= date(2025, 12, 31) {
        let missed = day.year() == 2025 && day.month() == 6;
        if !missed {
            let night = day.at(2, 30, 0, 0);
            let first = night.to_zoned(tz()).unwrap();
            let mut times = vec![first.clone()];
            // The second 02:30 of a fall-back night.
            let later = tz().to_ambiguous_zoned(night).later().unwrap();
            if later.timestamp() != first.timestamp() {
                times.push(later);
            }
            for z in times {
                n += 1;
                all.push(candidate(n, &z, true, false));
            }
            if day.day() % 10 == 0 {
                n += 1;
                all.push(candidate(n, &day.at(23, 0, 0, 0).to_zoned(tz()).unwrap(), false, false));
            }
        }
        if (day - date(2023, 1, 1)).get_days() % 40 == 7 {
            n += 1;
            all.push(candidate(n, &day.at(12, 0, 0, 0).to_zoned(tz()).unwrap(), true, true));
        }
        day = day.tomorrow().unwrap();
    }
    all
}

fn candidate(n: usize, z: &Zoned, completed: bool, manual: bool) -> Candidate {
    Candidate {
        // Ids sort by time, as the store's do.
        id: format!("b{n:05}"),
        created_at: Timestamp::from_jiff(z.timestamp()),
        completed,
        manual,
    }
}

/// Seed 003's rule text, applied to each backup on its own at `now`.
fn by_the_rule_text(all: &[Candidate], now: &Zoned) -> BTreeMap<String, Vec<BackupClass>> {
    let today = now.date();
    let months_ago = |m: i64| Timestamp::from_jiff(now.checked_sub(m.months()).unwrap().timestamp());
    let scheduled: Vec<&Candidate> = all.iter().filter(|c| c.completed && !c.manual).collect();
    // "The newest of its bucket": no scheduled completed backup of the
    // same bucket (and inside the period) is newer.
    let newest_in = |c: &Candidate, from: Timestamp, bucket: &dyn Fn(Date) -> (i16, i16, i16)| {
        let b = bucket(local(c.created_at).date());
        c.created_at >= from
            && !scheduled
                .iter()
                .any(|o| o.created_at >= from && o.created_at > c.created_at && bucket(local(o.created_at).date()) == b)
    };
    let first_daily_day = today.checked_sub(29.days()).unwrap();
    let daily_from = Timestamp::from_jiff(first_daily_day.to_zoned(tz()).unwrap().timestamp());
    let mut out = BTreeMap::new();
    for c in all.iter().filter(|c| c.completed) {
        let mut classes = Vec::new();
        if !c.manual {
            // "Each of the last 30 days": today and the 29 before it.
            if newest_in(c, daily_from, &|d| (d.year(), d.month().into(), d.day().into())) {
                classes.push(BackupClass::Daily);
            }
            if newest_in(c, months_ago(6), &|d| {
                let w = d.iso_week_date();
                (w.year(), w.week().into(), 0)
            }) {
                classes.push(BackupClass::Weekly);
            }
            if newest_in(c, months_ago(24), &|d| (d.year(), d.month().into(), 0)) {
                classes.push(BackupClass::Monthly);
            }
        } else if c.created_at >= months_ago(12) {
            classes.push(BackupClass::Manual);
        }
        if !classes.is_empty() {
            out.insert(c.id.clone(), classes);
        }
    }
    out
}

fn at(s: &str) -> Zoned {
    s.parse::<jiff::civil::DateTime>().unwrap().to_zoned(tz()).unwrap()
}

#[test]
fn three_years_of_nightly_backups_keep_exactly_the_seed_set() {
    let all = three_years();
    let now = at("2025-12-31T12:00");
    let got = survivors(&all, Timestamp::from_jiff(now.timestamp()), &tz(), &SEED_POLICY);
    let expected = by_the_rule_text(&all, &now);
    assert_eq!(got, expected);

    // What the rule text means in counts, as a reader checks it by hand.
    let count = |class: BackupClass| got.values().filter(|c| c.contains(&class)).count();
    // 30 days, one survivor each.
    assert_eq!(count(BackupClass::Daily), 30);
    // Jan 2024 to Dec 2025 is 24 months; June 2025 had none; December 2023
    // lies before the 2-year period's first instant (31 Dec 2023, 12:00)
    // except its last night's 02:30 run, which is earlier still.
    assert_eq!(count(BackupClass::Monthly), 23);
    // Manual ones of the last year: every 40th day.
    let manual_last_year = all
        .iter()
        .filter(|c| c.manual && local(c.created_at) >= at("2024-12-31T12:00"))
        .count();
    assert_eq!(count(BackupClass::Manual), manual_last_year);
    // No failed run survives, nor shadows the good run of its day.
    let failed: Vec<&str> = all.iter().filter(|c| !c.completed).map(|c| c.id.as_str()).collect();
    assert!(failed.iter().all(|id| !got.contains_key(*id)));

    // The newest backup is the newest of its day, week and month: kept
    // once, with the three classes.
    let newest = all
        .iter()
        .filter(|c| c.completed && !c.manual)
        .max_by_key(|c| c.created_at)
        .unwrap();
    assert_eq!(
        got.get(&newest.id),
        Some(&vec![BackupClass::Daily, BackupClass::Weekly, BackupClass::Monthly])
    );
}

#[test]
fn the_nights_the_clock_changes_keep_the_newest_run_of_the_day() {
    let until = |now: &Zoned| -> Vec<Candidate> {
        let now = Timestamp::from_jiff(now.timestamp());
        three_years().into_iter().filter(|c| c.created_at <= now).collect()
    };
    // Fall back 2025-10-26: 02:30 happened twice; the later one is the day's.
    let now = at("2025-11-10T12:00");
    let all = until(&now);
    let got = survivors(&all, Timestamp::from_jiff(now.timestamp()), &tz(), &SEED_POLICY);
    assert_eq!(got, by_the_rule_text(&all, &now));
    let of_day = |d: Date| -> Vec<&Candidate> {
        all.iter()
            .filter(|c| c.completed && !c.manual && local(c.created_at).date() == d)
            .collect()
    };
    let twice = of_day(date(2025, 10, 26));
    assert_eq!(twice.len(), 2, "the fall-back night has two 02:30 runs");
    assert_eq!(
        got.get(&twice[1].id).map(|c| c.contains(&BackupClass::Daily)),
        Some(true)
    );
    assert_eq!(
        got.get(&twice[0].id),
        None,
        "the earlier 02:30 of that night is not the day's newest"
    );
    // Spring forward 2025-03-30: the run moved to 03:30 and still belongs to its day.
    let now = at("2025-04-02T12:00");
    let all = until(&now);
    let got = survivors(&all, Timestamp::from_jiff(now.timestamp()), &tz(), &SEED_POLICY);
    assert_eq!(got, by_the_rule_text(&all, &now));
    let skipped = of_day(date(2025, 3, 30));
    assert_eq!(skipped.len(), 1);
    assert_eq!(local(skipped[0].created_at).hour(), 3);
    assert!(got.get(&skipped[0].id).is_some_and(|c| c.contains(&BackupClass::Daily)));
}

#[test]
fn a_clock_set_back_never_deletes_the_newest_backups() {
    let all = three_years();
    let newest = all.iter().filter(|c| c.completed).map(|c| c.created_at).max().unwrap();
    let right = survivors(&all, newest, &tz(), &SEED_POLICY);
    assert_eq!(right, by_the_rule_text(&all, &local(newest)));
    // A year back, a month back, an hour before the newest backup: the
    // periods end at the newest completed backup, so the set that survives
    // is the one of that instant — nothing newer looks old.
    for wrong in ["2024-12-31T12:00", "2025-12-01T00:00", "2025-12-31T01:00"] {
        let got = survivors(&all, Timestamp::from_jiff(at(wrong).timestamp()), &tz(), &SEED_POLICY);
        assert_eq!(got, right, "clock at {wrong}");
    }
    // The 30 newest nights are all kept.
    let mut nightly: Vec<&Candidate> = all.iter().filter(|c| c.completed && !c.manual).collect();
    nightly.sort_by_key(|c| c.created_at);
    for c in nightly.iter().rev().take(30) {
        assert!(right.contains_key(&c.id), "{} kept", c.id);
    }
}
