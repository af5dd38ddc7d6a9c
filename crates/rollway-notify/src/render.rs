//! The words and bodies of a notification: one text line for chat and
//! e-mail subjects, and the generic JSON document.

use serde_json::{Value, json};

use crate::{Notification, NotifyEvent};

/// One line for people: what happened to which alert, and the summary.
pub fn text(n: &Notification) -> String {
    let what = match n.event {
        NotifyEvent::Opened => "opened".to_owned(),
        NotifyEvent::Acknowledged => match &n.operator {
            Some(op) => format!("acknowledged by {op}"),
            None => "acknowledged".to_owned(),
        },
        NotifyEvent::Resolved => match &n.operator {
            Some(op) => format!("resolved by {op}"),
            None => "resolved".to_owned(),
        },
        NotifyEvent::Reminder => "still open".to_owned(),
    };
    let mut line = format!(
        "[{}] {} alert {} {what}: {}",
        n.environment,
        n.severity,
        short(&n.alert_id),
        n.summary
    );
    if let Some(note) = n.note.as_deref().filter(|s| !s.is_empty()) {
        line.push_str(&format!(" — {note}"));
    }
    line
}

/// An id as people read it: its first 8 characters (ids are unique by
/// prefix in `rollway alerts`).
fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// The generic JSON body: the notification's fields, the time in RFC 3339
/// and the text line.
pub fn to_json(n: &Notification) -> Value {
    json!({
        "idempotency_key": n.idempotency_key,
        "event": n.event.as_str(),
        "text": text(n),
        "alert": {
            "id": n.alert_id,
            "rule": n.rule,
            "subject": n.subject,
            "environment": n.environment,
            "severity": n.severity,
            "status": n.status,
            "metric": n.metric,
            "value": n.value,
            "threshold": n.threshold,
            "summary": n.summary,
        },
        "operator": n.operator,
        "note": n.note,
        "at": n.at.to_rfc3339(),
    })
}
