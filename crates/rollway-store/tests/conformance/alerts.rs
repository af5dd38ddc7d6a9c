//! Conformance cases for alerts (schema 10): one unresolved alert per
//! (rule, subject), refused transitions write nothing, trackers survive a
//! reopen, deliveries are queued once per key, claimed by one sender at a
//! time, retried and finished, and business metric points are read back.

use std::time::Duration;

use rollway_model::Clock as _;
use rollway_model::alerting::Tracker;
use rollway_model::{Alert, AlertStatus, AlertType, EventKind, Level, ManualClock, NewEvent, Severity, Timestamp};
use rollway_store::{AlertQuery, Attempt, DeliveryStatus, MetricPoint, NewDelivery, Store, StoreError};
use serde_json::json;

fn alert(rule: &str, subject: &str, at: Timestamp) -> Alert {
    let mut a = Alert::new("prod", AlertType::Availability, "down", Severity::Critical, 0.5, at);
    a.rule = rule.to_owned();
    a.subject = subject.to_owned();
    a.summary = format!("monitor {subject} down");
    a
}

fn ev(text: &str) -> NewEvent {
    NewEvent::new(EventKind::AlertChanged, Level::Warn, text)
}

fn delivery(a: &Alert, event: &str, channel: &str, body: &str) -> NewDelivery {
    NewDelivery {
        alert_id: a.id,
        event: event.to_owned(),
        channel: channel.to_owned(),
        environment: a.environment.clone(),
        idempotency_key: format!("{}-{event}-{channel}", a.id),
        payload: json!({ "summary": body }),
    }
}

pub(super) fn one_unresolved_alert_per_rule_and_subject(store: &dyn Store, clock: &ManualClock) {
    let now = clock.now();
    let first = store
        .open_alert(&alert("monitor-down", "web", now), &[], ev("opened"))
        .unwrap();
    assert_eq!(first.status(), AlertStatus::Open);
    // A second open alert of the same rule and subject is refused, naming the first.
    match store.open_alert(&alert("monitor-down", "web", now), &[], ev("opened")) {
        Err(StoreError::Exists { id, .. }) => assert_eq!(id, first.id.to_string()),
        other => panic!("expected Exists, got {other:?}"),
    }
    // Another subject is another alert.
    store
        .open_alert(&alert("monitor-down", "api", now), &[], ev("opened"))
        .unwrap();
    // Even a raw insert cannot make two unresolved rows (the unique index).
    let dup = store.execute_raw(
        "INSERT INTO alerts (id, ord, rule, subject, environment, status, severity, triggered_at, doc) \
         VALUES ('x', 99, 'monitor-down', 'web', 'prod', 'ack', 'critical', 0, '{}')",
    );
    assert!(dup.is_err(), "{dup:?}");

    // Acknowledge, then resolve: each through the model, with resolved_at.
    clock.advance(Duration::from_secs(60));
    let acked = store
        .update_alert(
            first.id,
            &mut |a| {
                a.transition(AlertStatus::Ack, Timestamp::from_millis(START_MS + 60_000))
                    .map_err(|e| StoreError::Invalid {
                        what: "alert",
                        id: a.id.to_string(),
                        violations: vec![rollway_model::rules::Violation::new("status", "t", e.to_string())],
                    })?;
                a.acknowledged_by = Some("ops@example.com".into());
                Ok(vec![ev("acknowledged")])
            },
            &[],
        )
        .unwrap();
    assert_eq!(acked.status(), AlertStatus::Ack);
    assert_eq!(acked.acknowledged_at, Some(Timestamp::from_millis(START_MS + 60_000)));
    let resolved = store
        .update_alert(
            first.id,
            &mut |a| {
                a.transition(AlertStatus::Resolved, Timestamp::from_millis(START_MS + 120_000))
                    .map_err(|e| StoreError::Invalid {
                        what: "alert",
                        id: a.id.to_string(),
                        violations: vec![rollway_model::rules::Violation::new("status", "t", e.to_string())],
                    })?;
                Ok(vec![ev("resolved")])
            },
            &[],
        )
        .unwrap();
    assert_eq!(resolved.resolved_at, Some(Timestamp::from_millis(START_MS + 120_000)));
    // A resolved alert never reopens: the table refuses, nothing is written.
    let reopen = store.update_alert(
        first.id,
        &mut |a| {
            a.transition(AlertStatus::Open, Timestamp::from_millis(START_MS + 180_000))
                .map_err(|e| StoreError::Invalid {
                    what: "alert",
                    id: a.id.to_string(),
                    violations: vec![rollway_model::rules::Violation::new("status", "t", e.to_string())],
                })?;
            Ok(vec![ev("reopened")])
        },
        &[],
    );
    assert!(reopen.is_err());
    assert_eq!(store.alert(first.id).unwrap().unwrap(), resolved);
    // Once resolved, a new breach opens a new alert.
    let second = store
        .open_alert(&alert("monitor-down", "web", clock.now()), &[], ev("opened"))
        .unwrap();
    assert_ne!(second.id, first.id);
    assert_eq!(
        store.unresolved_alert("monitor-down", "web").unwrap().map(|a| a.id),
        Some(second.id)
    );
    let unresolved: Vec<String> = store
        .alerts(&AlertQuery {
            unresolved: true,
            ..AlertQuery::default()
        })
        .unwrap()
        .into_iter()
        .map(|a| a.subject)
        .collect();
    assert_eq!(unresolved.len(), 2);
    assert_eq!(store.alerts(&AlertQuery::default()).unwrap().len(), 3);
    // Ids by prefix, dashes optional.
    let id = second.id.to_string();
    assert_eq!(store.find_alerts(&id[..13]).unwrap().len(), 1);
    assert_eq!(store.find_alerts(&id.replace('-', "")[..20]).unwrap()[0].id, second.id);
    assert!(store.find_alerts("%").unwrap().is_empty());
}

pub(super) fn trackers_and_metric_points_round_trip(store: &dyn Store, clock: &ManualClock) {
    let t = Tracker {
        breach_since: Some(clock.now()),
        good_streak: 1,
        open: true,
    };
    store.put_alert_tracker("disk", "web-1", &t).unwrap();
    store.put_alert_tracker("disk", "web-1", &t).unwrap();
    store.put_alert_tracker("cpu", "web-1", &Tracker::default()).unwrap();
    assert_eq!(
        store.alert_trackers().unwrap(),
        vec![
            ("cpu".to_owned(), "web-1".to_owned(), Tracker::default()),
            ("disk".to_owned(), "web-1".to_owned(), t)
        ]
    );
    let point = |time: i64, value: f64| MetricPoint {
        environment: "prod".into(),
        name: "signups".into(),
        time: Timestamp::from_millis(time),
        value,
    };
    assert_eq!(store.latest_metric_point("prod", "signups").unwrap(), None);
    store.push_metric_point(&point(2_000, 5.0)).unwrap();
    store.push_metric_point(&point(1_000, 9.0)).unwrap();
    store.push_metric_point(&point(2_000, 7.5)).unwrap();
    assert_eq!(
        store.latest_metric_point("prod", "signups").unwrap(),
        Some(point(2_000, 7.5))
    );
    assert!(store.push_metric_point(&point(3_000, f64::NAN)).is_err());
}

pub(super) fn deliveries_are_queued_once_claimed_and_finished(store: &dyn Store, clock: &ManualClock) {
    store.set_masker(rollway_model::Masker::new(["canary-s3cret-value"]));
    let a = alert("monitor-down", "web", clock.now());
    let opened = store
        .open_alert(
            &a,
            &[
                delivery(&a, "opened", "ops", "down canary-s3cret-value"),
                delivery(&a, "opened", "mail", "down"),
            ],
            ev("opened"),
        )
        .unwrap();
    // Queued again under the same key: skipped.
    assert_eq!(
        store
            .add_deliveries(&[delivery(&opened, "opened", "ops", "again")])
            .unwrap(),
        0
    );
    let all = store.deliveries(Some(a.id)).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].payload, json!({ "summary": "down ****" }), "payloads are masked");
    assert_eq!(all[0].status, DeliveryStatus::Pending);

    // A claim takes each due delivery once until its lease runs out.
    let lease = Duration::from_secs(20);
    let claimed = store.claim_deliveries(10, lease).unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(store.claim_deliveries(10, lease).unwrap().is_empty());
    // The first fails and is retried after its backoff, same key.
    let retry = store
        .finish_delivery(
            claimed[0].id,
            &Attempt::Retry {
                error: "HTTP 500".into(),
                after: Duration::from_secs(10),
            },
        )
        .unwrap();
    assert_eq!((retry.attempts, retry.status), (1, DeliveryStatus::Pending));
    assert_eq!(retry.last_error.as_deref(), Some("HTTP 500"));
    // The second's sender died: due again once the lease ran out.
    clock.advance(Duration::from_secs(21));
    let again = store.claim_deliveries(10, lease).unwrap();
    let keys: Vec<&str> = again.iter().map(|d| d.idempotency_key.as_str()).collect();
    assert_eq!(
        keys,
        [claimed[0].idempotency_key.as_str(), claimed[1].idempotency_key.as_str()]
    );
    let done = store
        .finish_delivery(
            again[0].id,
            &Attempt::Delivered {
                answer: "HTTP 200".into(),
            },
        )
        .unwrap();
    assert_eq!((done.attempts, done.status), (2, DeliveryStatus::Delivered));
    assert_eq!(done.delivered_at, Some(clock.now()));
    let failed = store
        .finish_delivery(
            again[1].id,
            &Attempt::Failed {
                error: "550 no such user".into(),
            },
        )
        .unwrap();
    assert_eq!((failed.attempts, failed.status), (1, DeliveryStatus::Failed));
    // A finished delivery takes no further attempt.
    assert!(matches!(
        store.finish_delivery(done.id, &Attempt::Delivered { answer: "x".into() }),
        Err(StoreError::Stale { .. })
    ));
    clock.advance(Duration::from_secs(600));
    assert!(store.claim_deliveries(10, lease).unwrap().is_empty());
}

const START_MS: i64 = 1_767_225_600_000;
