//! The watching half's records as the store takes and returns them:
//! monitors, the counts a sample batch or a rollup run reports, rollup
//! resolutions and rows, and the retention policy (OPERATIONS.md "Samples
//! and rollups"). The samples themselves are the model's
//! [`rollway_model::ProbeSample`]; the work is in `db/monitoring.rs`.

use std::time::Duration;

use rollway_model::Timestamp;
use rollway_model::rollup::Rollup;
use rollway_model::spans::{Span, Spans};

/// What the store keeps of a monitor's definition (from `[monitors.NAME]`).
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorDef {
    pub name: String,
    pub environment: String,
    /// `http`, `tcp`, `tls`, `dns`, `postgres` or `push`.
    pub kind: String,
    /// Seed 002's target (frontend, backend, …) or any name.
    pub target: String,
    pub interval: Duration,
    /// How long one sample speaks for (interval plus grace): time further
    /// than this from every sample is no data.
    pub coverage: Duration,
    /// The rest of the definition, for people and the API; never holds a
    /// secret (a PostgreSQL URL stays a reference to one).
    pub config: serde_json::Value,
}

/// A monitor as stored: its definition and the store's state of it.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorRecord {
    pub def: MonitorDef,
    pub paused: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The rollups cover `[rolled_from, rolled_until)`: every bucket there
    /// carries its full downtime and no-data terms, and a minute without a
    /// row had no data. Outside it, read raw samples (or count no data).
    pub rolled_from: Option<Timestamp>,
    pub rolled_until: Option<Timestamp>,
    /// Minute rollups before this (a UTC hour) were deleted by retention
    /// (kept 35 days), the maintenance windows known then folded into the
    /// hour and day rows: there a window entered later can no longer be
    /// applied, and the stored terms are what is known. `None`: no minute
    /// row was ever pruned.
    pub minutes_from: Option<Timestamp>,
}

/// What [`crate::Store::record_samples`] did with a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordedSamples {
    pub inserted: u64,
    /// Samples whose monitor and slot were already recorded (a batch offered
    /// again, a restart): left as they were.
    pub duplicates: u64,
}

/// The size of a rollup's bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resolution {
    Minute,
    Hour,
    Day,
}

impl Resolution {
    pub const ALL: [Resolution; 3] = [Resolution::Minute, Resolution::Hour, Resolution::Day];

    /// The bucket's length in milliseconds (UTC minutes, hours and days).
    pub const fn millis(self) -> i64 {
        match self {
            Resolution::Minute => 60_000,
            Resolution::Hour => 3_600_000,
            Resolution::Day => 86_400_000,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Resolution::Minute => "minute",
            Resolution::Hour => "hour",
            Resolution::Day => "day",
        }
    }

    /// The start of the bucket holding `t`.
    pub fn bucket_of(self, t: Timestamp) -> Timestamp {
        Timestamp::from_millis(t.as_millis().div_euclid(self.millis()) * self.millis())
    }
}

/// How a backend lays out a rollup row (the `Backend::ROLLUPS` of each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RollupLayout {
    /// SQLite: the bucket's start in milliseconds, every column as it is,
    /// the sketch as packed text. SQLite's integers already take only the
    /// bytes their value needs.
    Plain,
    /// PostgreSQL from schema 15: the bucket as whole minutes, hours or
    /// days since the epoch (an INTEGER key, half a BIGINT), counts and
    /// terms that are zero and an empty sketch as NULL (a bit of the null
    /// bitmap instead of 4 or 8 bytes), the sketch as packed bytes.
    Compact,
}

impl RollupLayout {
    /// Milliseconds per unit of the stored bucket of `res`.
    pub(crate) const fn unit(self, res: Resolution) -> i64 {
        match self {
            RollupLayout::Plain => 1,
            RollupLayout::Compact => res.millis(),
        }
    }
}

/// One bucket of one monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupRow {
    pub monitor: String,
    /// The start of the bucket.
    pub bucket: Timestamp,
    pub rollup: Rollup,
}

/// One range of [`crate::Store::rollup_sums`]: a monitor's buckets with
/// starts in `span`, each counted with `rest_ms` of its length not under a
/// maintenance window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumRange {
    pub monitor: String,
    pub span: Span,
    pub rest_ms: i64,
}

/// What the stored rows of one [`SumRange`] add up to: how many there are,
/// their outcome counts, and their time terms each clipped to the range's
/// `rest_ms` as [`rollway_model::account::Tally::add_bucket`] clips one row
/// (downtime to the rest, no data to what downtime left, maintenance to
/// the rest). Integer sums, so the order of adding does not matter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollupSum {
    pub rows: u64,
    pub ok: u64,
    pub error: u64,
    pub unavailable: u64,
    pub downtime_ms: i64,
    pub maintenance_ms: i64,
    pub no_data_ms: i64,
}

/// How [`crate::Store::roll_up`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupSettings {
    /// A minute is rolled up once it ended this long ago, so that the next
    /// minute (which decides whether an error minute is downtime) and the
    /// end of an unavailable run are in. Later samples are merged then.
    pub settle: Duration,
    /// At most this much time of one monitor per transaction, so a long
    /// backlog (an import, a long stop) never holds the write lock for long.
    pub chunk: Duration,
}

impl Default for RollupSettings {
    fn default() -> Self {
        Self {
            settle: Duration::from_secs(120),
            chunk: Duration::from_secs(6 * 3600),
        }
    }
}

/// What a rollup run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollupReport {
    /// Monitors that had samples not yet rolled up.
    pub monitors: u64,
    /// Samples counted into minutes for the first time.
    pub samples: u64,
    /// Of those, samples that arrived after their minute was rolled up and
    /// were merged into it.
    pub late: u64,
    /// Transactions it took.
    pub transactions: u64,
}

/// How long each tier is kept (OPERATIONS.md's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw samples (48 h). A sample not yet rolled up is kept until it is.
    pub samples: Duration,
    /// 1-minute rollups (35 days: this month and the last can be
    /// recomputed), deleted by whole UTC hours.
    pub minutes: Duration,
    /// 1-hour rollups (2 years).
    pub hours: Duration,
    /// 1-day rollups (5 years).
    pub days: Duration,
    /// Rows deleted per transaction, so a huge delete never holds the write
    /// lock for long.
    pub batch: u32,
}

impl Default for Retention {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        Self {
            samples: Duration::from_secs(2 * DAY),
            minutes: Duration::from_secs(35 * DAY),
            hours: Duration::from_secs(2 * 365 * DAY),
            days: Duration::from_secs(5 * 365 * DAY),
            batch: 5_000,
        }
    }
}

/// A monitor's maintenance windows over a span, as
/// [`crate::Store::prune_monitoring`] folds them into hours and days: the
/// caller expands them (a cron window needs its environment's time zone).
pub type MaintenanceSpans<'a> = dyn Fn(&MonitorRecord, Span) -> Spans + 'a;

/// Rows [`crate::Store::prune_monitoring`] deleted, per tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub samples: u64,
    pub minutes: u64,
    pub hours: u64,
    pub days: u64,
    /// Seed 003 metric records of past windows: error rates kept as long
    /// as hour rollups, uptime as long as day rollups.
    pub records: u64,
    /// Seed 002 log records older than their retention
    /// (`Store::prune_log_records`, which `serve` runs with this).
    pub logs: u64,
    /// Transactions it took.
    pub transactions: u64,
}
