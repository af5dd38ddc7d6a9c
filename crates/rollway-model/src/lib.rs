//! Rollway's domain model: entities with the union of the five seeds' fields,
//! id and digest newtypes, status enums, the transition tables, shape rules
//! and the hash-chained event. Pure: no file, process, network or clock IO.

pub mod account;
pub mod alerting;
pub mod backup_schedule;
pub mod calendar;
pub mod entities;
pub mod event;
pub mod ids;
pub mod lock;
pub mod logline;
pub mod maintenance;
pub mod mask;
pub mod names;
pub mod outputs;
pub mod retention;
pub mod rollup;
pub mod rules;
pub mod shards;
pub mod sketch;
pub mod slo;
pub mod spans;
pub mod status;
pub mod time;
pub mod transitions;
pub mod uptime;

pub use entities::*;
pub use event::{ChainBreak, ChainHead, Event, EventKind, NewEvent};
pub use ids::*;
pub use lock::{DEFAULT_LEASE, Lock};
pub use mask::{MASK, Masker};
pub use status::*;
pub use time::{Clock, ManualClock, Timestamp};
pub use transitions::{Lifecycle, StateMachine, TransitionError, TransitionRecord};
