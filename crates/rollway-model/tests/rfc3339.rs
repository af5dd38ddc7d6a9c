#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `Timestamp::parse_rfc3339` against a table of inputs: impossible dates
//! and times are refused (the calendar is jiff's, not hand-written), valid
//! ones are read and normalised to UTC milliseconds.

use rollway_model::Timestamp;

/// Inputs that must be refused, each with why.
const REFUSED: &[(&str, &str)] = &[
    ("2026-02-31T00:00:00Z", "no 31st of February"),
    ("2026-02-29T00:00:00Z", "2026 is not a leap year"),
    ("2100-02-29T00:00:00Z", "a century that is not a leap year"),
    ("2026-04-31T12:00:00Z", "April has 30 days"),
    ("2026-13-01T00:00:00Z", "no month 13"),
    ("2026-00-10T00:00:00Z", "no month 0"),
    ("2026-01-00T00:00:00Z", "no day 0"),
    ("2026-01-32T00:00:00Z", "no day 32"),
    ("2026-01-01T24:00:00Z", "hours end at 23"),
    ("2026-01-01T23:60:00Z", "minutes end at 59"),
    ("2026-01-01T23:59:61Z", "seconds end at 60"),
    ("2026-01-01T00:00:00+24:00", "an offset's hours end at 23"),
    ("2026-01-01T00:00:00+05:60", "an offset's minutes end at 59"),
    ("2026-01-01T00:00:00", "no offset: a local time is not an instant"),
    ("2026-01-01T00:00Z", "seconds are required"),
    ("2026-01-01T00:00:00.Z", "a fraction needs a digit"),
    ("2026-01-01T00:00:00+0530", "the offset needs its colon"),
    ("2026-01-01T00:00:00Z[UTC]", "no bracketed zone annotation"),
    ("2026-1-01T00:00:00Z", "fields have fixed widths"),
    ("2026-01-01", "a date alone"),
    ("", "empty"),
    ("not a time", "not a time"),
];

/// Inputs that must be read, with the UTC time they name.
const ACCEPTED: &[(&str, &str)] = &[
    ("2028-02-29T12:00:00Z", "2028-02-29T12:00:00.000Z"),
    ("2000-02-29T00:00:00Z", "2000-02-29T00:00:00.000Z"),
    ("2026-11-22T07:15:01.123Z", "2026-11-22T07:15:01.123Z"),
    ("2026-11-22T07:15:01.1Z", "2026-11-22T07:15:01.100Z"),
    ("2026-11-22T07:15:01.123456789Z", "2026-11-22T07:15:01.123Z"),
    ("2026-03-01T05:29:59+05:30", "2026-02-28T23:59:59.000Z"),
    ("2028-03-01T03:00:00+05:30", "2028-02-29T21:30:00.000Z"),
    ("2026-12-31T22:00:00-03:00", "2027-01-01T01:00:00.000Z"),
    ("2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00.000Z"),
    ("2026-01-01t00:00:00z", "2026-01-01T00:00:00.000Z"),
    ("2026-01-01 00:00:00Z", "2026-01-01T00:00:00.000Z"),
    ("1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999Z"),
    ("1969-12-31T23:59:59.9999Z", "1969-12-31T23:59:59.999Z"),
    ("1970-01-01T00:00:00.0001Z", "1970-01-01T00:00:00.000Z"),
    ("2026-12-31T23:59:60Z", "2026-12-31T23:59:59.000Z"),
];

#[test]
fn impossible_dates_and_times_are_refused() {
    let wrongly_read: Vec<String> = REFUSED
        .iter()
        .filter_map(|(input, why)| {
            Timestamp::parse_rfc3339(input).map(|t| format!("{input:?} ({why}) was read as {t}"))
        })
        .collect();
    assert!(wrongly_read.is_empty(), "{}", wrongly_read.join("\n"));
}

#[test]
fn valid_times_are_read_and_normalised_to_utc() {
    let mut problems = Vec::new();
    for (input, utc) in ACCEPTED {
        match Timestamp::parse_rfc3339(input) {
            None => problems.push(format!("{input:?} was refused")),
            Some(t) if t.to_rfc3339() != *utc => problems.push(format!("{input:?} read as {t}, expected {utc}")),
            Some(t) => {
                // What Rollway writes it reads back to the same millisecond.
                let again = Timestamp::parse_rfc3339(&t.to_rfc3339());
                if again != Some(t) {
                    problems.push(format!("{t} does not read back ({again:?})"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
