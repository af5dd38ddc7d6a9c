//! Webhook deliveries: a JSON POST with an `Idempotency-Key` header, in the
//! generic shape or the one Slack's and Discord's incoming webhooks read.

use std::fmt;

use rollway_model::mask::Masker;
use serde_json::json;
use url::Url;

use crate::render::{text, to_json};
use crate::{Failure, Notification, Sent};

/// Discord refuses a `content` longer than this.
const DISCORD_MAX: usize = 2000;

/// Which body the receiver reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The notification as a JSON document (`render::to_json`).
    Json,
    /// `{"text": …}`: Slack incoming webhooks and their clones.
    Slack,
    /// `{"content": …}`: Discord webhooks.
    Discord,
}

/// A URL that receives POSTs.
#[derive(Clone, PartialEq)]
pub struct Webhook {
    pub url: Url,
    pub format: Format,
}

impl fmt::Debug for Webhook {
    /// Chat webhook URLs carry their token in the path: only the origin.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("origin", &self.url.origin().ascii_serialization())
            .field("format", &self.format)
            .finish()
    }
}

impl Webhook {
    /// What messages name: scheme, host and port, never the path.
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }

    /// The body for this receiver.
    pub fn body(&self, n: &Notification) -> serde_json::Value {
        match self.format {
            Format::Json => to_json(n),
            Format::Slack => json!({ "text": text(n) }),
            Format::Discord => {
                let mut t = text(n);
                if t.chars().count() > DISCORD_MAX {
                    t = t.chars().take(DISCORD_MAX - 1).collect::<String>() + "…";
                }
                json!({ "content": t })
            }
        }
    }
}

pub(crate) async fn send(
    http: &reqwest::Client,
    masker: &Masker,
    w: &Webhook,
    n: &Notification,
) -> Result<Sent, Failure> {
    let origin = w.origin();
    let body = masker.mask_bytes(w.body(n).to_string().as_bytes());
    let answer = http
        .post(w.url.clone())
        .header("content-type", "application/json")
        .header("idempotency-key", &n.idempotency_key)
        .body(body)
        .send()
        .await;
    let response = match answer {
        Ok(r) => r,
        // reqwest's error text holds the URL: name the origin only.
        Err(e) if e.is_timeout() => return Err(Failure::retry(format!("webhook {origin} did not answer in time"))),
        Err(e) if e.is_connect() => {
            return Err(Failure::retry(format!(
                "cannot connect to webhook {origin}: {}",
                root_cause(&e)
            )));
        }
        Err(e) => return Err(Failure::retry(format!("webhook {origin} failed: {}", root_cause(&e)))),
    };
    let status = response.status();
    if status.is_success() {
        return Ok(Sent {
            answer: format!("HTTP {}", status.as_u16()),
        });
    }
    let message = format!("webhook {origin} answered HTTP {}", status.as_u16());
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        Err(Failure::retry(message))
    } else {
        Err(Failure::fatal(format!(
            "{message}: it refuses the notification; check the URL and the receiver's settings"
        )))
    }
}

/// The innermost error's text (the outer ones repeat the URL).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}
