//! What the store keeps for alerts besides the alerts themselves (schema
//! 10, `db/alerts.rs`): notification deliveries with their attempts, and
//! business metrics pushed with `rollway metric push`.

use std::time::Duration;

use rollway_model::{AlertId, Timestamp};
use serde::{Deserialize, Serialize};

/// Which alerts `Store::alerts` lists, newest first.
#[derive(Debug, Clone, Default)]
pub struct AlertQuery {
    pub environment: Option<String>,
    /// Only open or acknowledged ones.
    pub unresolved: bool,
    /// At most this many (0: no limit).
    pub limit: usize,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not yet accepted: due at `next_attempt_at`.
    Pending,
    /// The receiver accepted it.
    Delivered,
    /// Refused for good, or out of attempts.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

impl std::str::FromStr for DeliveryStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(Self::Pending),
            "delivered" => Ok(Self::Delivered),
            "failed" => Ok(Self::Failed),
            other => Err(format!(
                "unknown delivery status '{other}': pending, delivered or failed"
            )),
        }
    }
}

/// A notification to queue for one channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewDelivery {
    pub alert_id: AlertId,
    /// `opened`, `acknowledged`, `resolved` or `reminder`.
    pub event: String,
    /// The `[notify.NAME]` channel.
    pub channel: String,
    pub environment: String,
    /// `ALERTID-EVENT-CHANNEL[-n]`: the same on every attempt; a second
    /// delivery with the same key is not queued.
    pub idempotency_key: String,
    /// The notification as JSON (masked before it is stored).
    pub payload: serde_json::Value,
}

/// A queued notification and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub id: i64,
    pub alert_id: AlertId,
    pub event: String,
    pub channel: String,
    pub environment: String,
    pub idempotency_key: String,
    pub payload: serde_json::Value,
    pub attempts: u32,
    pub status: DeliveryStatus,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    /// What the receiver answered when it accepted it.
    pub answer: Option<String>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

/// The outcome of one attempt, as `Store::finish_delivery` records it.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Delivered {
        answer: String,
    },
    /// Failed; due again after `after`.
    Retry {
        error: String,
        after: Duration,
    },
    /// Failed for good.
    Failed {
        error: String,
    },
}

/// One value of a business metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    pub environment: String,
    pub name: String,
    pub time: Timestamp,
    pub value: f64,
}
