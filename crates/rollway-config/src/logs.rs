//! `[logs]` (OPERATIONS.md "Log records"): how long `rollway serve` keeps
//! the log records it collects, and how often it collects them.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;

use crate::reader::Table;
use crate::{schema, serde_duration};

/// `[logs]`: log records' retention and collection period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct LogsConfig {
    /// Records older than this are deleted by serve's hourly retention. Default "14d".
    #[serde(default = "default_retention", serialize_with = "serde_duration::ser")]
    #[schemars(schema_with = "schema::duration")]
    pub retention: Duration,
    /// How often serve reads new service output from every host. Default "10s".
    #[serde(default = "default_collect_every", serialize_with = "serde_duration::ser")]
    #[schemars(schema_with = "schema::duration")]
    pub collect_every: Duration,
}

impl Default for LogsConfig {
    fn default() -> Self {
        Self {
            retention: default_retention(),
            collect_every: default_collect_every(),
        }
    }
}

fn default_retention() -> Duration {
    Duration::from_secs(14 * 86_400)
}

fn default_collect_every() -> Duration {
    Duration::from_secs(10)
}

/// Ten years: longer is a typo more often than a wish.
const MAX_RETENTION: Duration = Duration::from_secs(3_650 * 86_400);
/// Output waits this long at most before it is a record (a longer period
/// also lets a busy service's log rotate unread).
const MAX_COLLECT_EVERY: Duration = Duration::from_secs(3_600);

/// Reads `[logs]`.
pub(crate) fn read_logs(t: &mut Table<'_>) -> LogsConfig {
    let d = LogsConfig::default();
    LogsConfig {
        retention: t.bounded_duration("retention", MAX_RETENTION).unwrap_or(d.retention),
        collect_every: t
            .bounded_duration("collect_every", MAX_COLLECT_EVERY)
            .unwrap_or(d.collect_every),
    }
}
