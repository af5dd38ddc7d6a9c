//! The audit log: events listed, and their hash chain verified.

use rollway_model::{Event, EventKind};
use rollway_store::EventQuery;

use crate::error::{Error, Result};
use crate::project::Project;

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub environment: Option<String>,
    pub kind: Option<EventKind>,
    /// At most this many, the newest.
    pub limit: Option<usize>,
}

/// The events that match, oldest first.
pub fn list(p: &Project, filter: Filter) -> Result<Vec<Event>> {
    let store = p.store()?;
    let q = EventQuery {
        environment: filter.environment,
        kind: filter.kind,
        limit: filter.limit,
        newest_first: filter.limit.is_some(),
        ..EventQuery::default()
    };
    let mut events = store.events(&q)?;
    events.sort_by_key(|e| e.seq);
    Ok(events)
}

/// Recomputes the hash chain; the number of events when intact, else an
/// error (exit 1) naming the first bad event.
pub fn verify(p: &Project) -> Result<i64> {
    let store = p.store()?;
    match store.verify_events()? {
        Ok(n) => Ok(n),
        Err(brk) => Err(Error::failed(format_args!(
            "{brk}; the log was changed outside Rollway: restore the store from a backup"
        ))
        .with_details(serde_json::json!({ "intact": false, "seq": brk.seq, "id": brk.id, "reason": brk.reason }))),
    }
}
