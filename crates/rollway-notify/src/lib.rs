//! Alert notifications (OPERATIONS.md "Alerts", Notifications): one attempt
//! to deliver one notification to one channel — a webhook (generic JSON, or
//! a Slack- or Discord-compatible body) or e-mail over SMTP — and whether a
//! failure is worth another attempt. Recording deliveries, their attempts
//! and the backoff between them belongs to the caller (`rollway serve`);
//! [`backoff`] says how long to wait. Every body passes through the masking
//! filter before it leaves, so no secret value reaches a receiver.

mod email;
mod render;
mod webhook;

use std::fmt;
use std::time::Duration;

use rollway_model::mask::Masker;
use rollway_model::time::Timestamp;
use serde::{Deserialize, Serialize};

pub use email::{Email, Security, SmtpServer};
pub use render::{text, to_json};
pub use webhook::{Format, Webhook};

/// Why a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    Opened,
    Acknowledged,
    Resolved,
    /// A reminder that an alert is still open (`repeat`).
    Reminder,
}

impl NotifyEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
            Self::Reminder => "reminder",
        }
    }
}

/// What a receiver is told. Texts are shown as given (masked on the way
/// out), so the caller words `summary` for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The same on every attempt of one delivery: receivers drop repeats
    /// (`Idempotency-Key` header, the e-mail's Message-ID).
    pub idempotency_key: String,
    pub event: NotifyEvent,
    pub alert_id: String,
    pub rule: String,
    pub subject: String,
    pub environment: String,
    /// `warning` or `critical`.
    pub severity: String,
    /// The alert's status after the event: `open`, `ack`, `resolved`.
    pub status: String,
    pub metric: String,
    pub value: Option<f64>,
    pub threshold: f64,
    /// One line for people, e.g. "monitor web down since 12:04, 4 min
    /// after deployment 01a2… (v1.4.2)".
    pub summary: String,
    /// Who acknowledged or resolved it.
    pub operator: Option<String>,
    pub note: Option<String>,
    pub at: Timestamp,
}

/// Where notifications go.
#[derive(Debug, Clone, PartialEq)]
pub enum Channel {
    Webhook(Webhook),
    Email(Email),
}

impl Channel {
    /// The kind, for records: `webhook` or `email`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Webhook(_) => "webhook",
            Self::Email(_) => "email",
        }
    }
}

/// A delivery the receiver accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// What it answered: `HTTP 200`, or the SMTP server's reply.
    pub answer: String,
}

/// A delivery that did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// Whether another attempt may succeed (no answer, a timeout, 5xx, 429,
    /// an SMTP 4xx); a refusal (4xx, SMTP 5xx, a bad address) is final.
    pub retryable: bool,
    pub message: String,
}

impl Failure {
    fn retry(message: impl Into<String>) -> Self {
        Self {
            retryable: true,
            message: message.into(),
        }
    }

    fn fatal(message: impl Into<String>) -> Self {
        Self {
            retryable: false,
            message: message.into(),
        }
    }
}

/// Sends notifications; one per process is enough (it pools connections).
#[derive(Clone)]
pub struct Sender {
    http: reqwest::Client,
    masker: Masker,
    timeout: Duration,
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The bound of one attempt, connection and answer included.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("cannot set up the http client for webhooks: {0}")]
    Client(#[source] reqwest::Error),
}

impl Sender {
    /// A sender whose bodies pass through `masker`, each attempt bounded by
    /// `timeout`.
    pub fn new(masker: Masker, timeout: Duration) -> Result<Self, NotifyError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("rollway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(NotifyError::Client)?;
        Ok(Self { http, masker, timeout })
    }

    /// One attempt to deliver `n` to `channel`.
    pub async fn send(&self, channel: &Channel, n: &Notification) -> Result<Sent, Failure> {
        match channel {
            Channel::Webhook(w) => webhook::send(&self.http, &self.masker, w, n).await,
            Channel::Email(e) => email::send(&self.masker, self.timeout, e, n).await,
        }
    }
}

/// Attempts of one delivery before it is recorded as failed.
pub const MAX_ATTEMPTS: u32 = 6;

/// How long to wait after failed attempt number `attempt` (1-based) before
/// the next: 10 s, 30 s, 90 s, 4.5 min, 13.5 min; `None` once
/// [`MAX_ATTEMPTS`] were made.
pub fn backoff(attempt: u32) -> Option<Duration> {
    (1..MAX_ATTEMPTS)
        .contains(&attempt)
        .then(|| Duration::from_secs(10 * 3u64.pow(attempt - 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_triples_until_the_last_attempt() {
        let waits: Vec<Option<u64>> = (0..=7).map(|a| backoff(a).map(|d| d.as_secs())).collect();
        assert_eq!(
            waits,
            [None, Some(10), Some(30), Some(90), Some(270), Some(810), None, None]
        );
    }
}
