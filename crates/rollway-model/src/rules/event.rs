//! Shape rules of seed 000 DeployLog, seed 001 DeploymentEvent and seed 002
//! Log Record, all served by the audit event.

use std::time::Duration;

use crate::event::{EventKind, NewEvent};
use crate::rules::{Violation, fields};
use crate::status::Level;
use crate::time::Timestamp;

/// Seed 000 "message required".
pub const MESSAGE_REQUIRED: &str = "event.message-required";
/// Seed 000 "level required".
pub const LEVEL_REQUIRED: &str = "event.level-required";
/// Seed 000 "sessionId required", for the events of a deployment.
pub const DEPLOYMENT_REQUIRED: &str = "event.deployment-required";
/// Seed 001 "eventType must be one of the allowed values".
pub const KIND_ALLOWED: &str = "event.kind-allowed";
/// Seed 001 "timestamp must be in the past or present".
pub const TIMESTAMP_NOT_FUTURE: &str = "event.timestamp-not-future";
/// Seed 002 "level 限定为 info/warn/error/debug".
pub const LEVEL_ALLOWED: &str = "event.level-allowed";
/// Seed 002 "timestamp 必须为有效时间".
pub const TIMESTAMP_VALID: &str = "event.timestamp-valid";

pub const RULES: &[&str] = &[
    MESSAGE_REQUIRED,
    LEVEL_REQUIRED,
    DEPLOYMENT_REQUIRED,
    KIND_ALLOWED,
    TIMESTAMP_NOT_FUTURE,
    LEVEL_ALLOWED,
    TIMESTAMP_VALID,
];

/// The kinds that belong to one deployment and so name it.
pub fn needs_deployment(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::DeploymentSuccess
            | EventKind::DeploymentFailure
            | EventKind::RollbackInitiated
            | EventKind::RollbackCompleted
            | EventKind::DeploymentTransition
            | EventKind::DeployStep
    )
}

/// An event before it is appended: a message, and a deployment id for the
/// kinds that belong to one.
pub fn validate(e: &NewEvent) -> Vec<Violation> {
    let mut out = Vec::new();
    if e.message.trim().is_empty() {
        out.push(Violation::new(
            "message",
            MESSAGE_REQUIRED,
            format!("a {} event needs a message", e.kind),
        ));
    }
    if needs_deployment(e.kind) && e.deployment_id.is_none() {
        out.push(Violation::new(
            "deployment_id",
            DEPLOYMENT_REQUIRED,
            format!("a {} event needs the id of its deployment", e.kind),
        ));
    }
    out
}

/// How far ahead of the writer's clock an event's time may be and still
/// count as present: the store never lets event times go backwards, so an
/// event follows the last one's time, which another machine's clock (or this
/// clock before a correction) may have put slightly ahead.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// An event's time is not after `now`.
pub fn validate_time(at: Timestamp, now: Timestamp) -> Vec<Violation> {
    validate_time_within(at, now, Duration::ZERO)
}

/// An event's time is not more than `allowance` after `now` (the store
/// passes [`MAX_CLOCK_SKEW`]).
pub fn validate_time_within(at: Timestamp, now: Timestamp, allowance: Duration) -> Vec<Violation> {
    if at > now.plus(allowance) {
        let ahead = crate::time::format_duration(at.since(now));
        vec![Violation::new(
            "timestamp",
            TIMESTAMP_NOT_FUTURE,
            format!(
                "timestamp {at} is {ahead} in the future (now {now}) — a clock that wrote to this store runs ahead: correct it (e.g. with NTP), or wait until {at}"
            ),
        )]
    } else {
        Vec::new()
    }
}

/// An event level from text: required, and one of info/warn/error/debug.
pub fn parse_level(value: &str) -> Result<Level, Violation> {
    fields::parse_enum("level", value, Some(LEVEL_REQUIRED), LEVEL_ALLOWED)
}

/// An event kind from text.
pub fn parse_kind(value: &str) -> Result<EventKind, Violation> {
    fields::parse_enum("event_type", value, None, KIND_ALLOWED)
}

/// An event time from RFC 3339 text.
pub fn parse_timestamp(value: &str) -> Result<Timestamp, Violation> {
    Timestamp::parse_rfc3339(value.trim()).ok_or_else(|| {
        Violation::new(
            "timestamp",
            TIMESTAMP_VALID,
            format!("'{value}' is not a valid time — write RFC 3339, e.g. 2026-01-31T12:00:00Z"),
        )
    })
}
