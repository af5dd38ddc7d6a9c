//! Alert trackers, notification deliveries and business metric points
//! (schema 10). None of these take the event head: the alert rows and
//! their events are in `records.rs`, which may queue deliveries in the same
//! transaction.

use std::time::Duration;

use rollway_model::alerting::Tracker;
use rollway_model::event::canonical_json;
use rollway_model::{AlertId, Masker, Timestamp};

use super::Db;
use crate::alerts::{Attempt, Delivery, DeliveryStatus, MetricPoint, NewDelivery};
use crate::error::StoreError;
use crate::sql::{Backend, Param, Row, Sql};

const DELIVERY_COLS: &str = "id, alert_id, event, channel, environment, idempotency_key, payload, attempts, status, \
                             next_attempt_at, last_error, answer, created_at, delivered_at";

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn delivery_from_row(r: &Row) -> Result<Delivery, StoreError> {
    let id = r.int(0, "id").unwrap_or_default();
    let decode = || -> Result<Delivery, String> {
        let payload = r.text(6, "payload")?;
        Ok(Delivery {
            id: r.int(0, "id")?,
            alert_id: r.parse(1, "alert_id")?,
            event: r.text(2, "event")?,
            channel: r.text(3, "channel")?,
            environment: r.text(4, "environment")?,
            idempotency_key: r.text(5, "idempotency_key")?,
            payload: serde_json::from_str(&payload).map_err(|e| format!("payload: {e}"))?,
            attempts: u32::try_from(r.int(7, "attempts")?).map_err(|e| format!("attempts: {e}"))?,
            status: r.parse(8, "status")?,
            next_attempt_at: Timestamp::from_millis(r.int(9, "next_attempt_at")?),
            last_error: r.opt_text(10, "last_error")?,
            answer: r.opt_text(11, "answer")?,
            created_at: Timestamp::from_millis(r.int(12, "created_at")?),
            delivered_at: r.opt_int(13, "delivered_at")?.map(Timestamp::from_millis),
        })
    };
    decode().map_err(|d| StoreError::corrupt("delivery", id.to_string(), d))
}

/// Queues `deliveries` (masked) at `now`; one whose key is queued already
/// is skipped. Returns how many were queued.
pub(super) fn insert_deliveries(
    sql: &mut dyn Sql,
    masker: &Masker,
    deliveries: &[NewDelivery],
    now: Timestamp,
) -> Result<u64, StoreError> {
    let mut n = 0;
    for d in deliveries {
        let payload = canonical_json(&masker.mask_json(&d.payload));
        n += sql.exec(
            "INSERT INTO deliveries (alert_id, event, channel, environment, idempotency_key, payload, attempts, \
             status, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, 0, 'pending', $7, $7) \
             ON CONFLICT (idempotency_key) DO NOTHING",
            &[
                d.alert_id.to_string().into(),
                d.event.as_str().into(),
                d.channel.as_str().into(),
                d.environment.as_str().into(),
                d.idempotency_key.as_str().into(),
                payload.into(),
                now.as_millis().into(),
            ],
        )?;
    }
    Ok(n)
}

impl<B: Backend> Db<B> {
    pub(super) fn do_alert_trackers(&self) -> Result<Vec<(String, String, Tracker)>, StoreError> {
        self.backend.read(|sql| {
            sql.rows(
                "SELECT rule, subject, tracker FROM alert_trackers ORDER BY rule, subject",
                &[],
            )?
            .iter()
            .map(|r| {
                let decode = || -> Result<(String, String, Tracker), String> {
                    let t = r.text(2, "tracker")?;
                    Ok((
                        r.text(0, "rule")?,
                        r.text(1, "subject")?,
                        serde_json::from_str(&t).map_err(|e| format!("tracker: {e}"))?,
                    ))
                };
                decode().map_err(|d| StoreError::corrupt("alert tracker", "row", d))
            })
            .collect()
        })
    }

    pub(super) fn do_put_alert_tracker(&self, rule: &str, subject: &str, t: &Tracker) -> Result<(), StoreError> {
        let doc = serde_json::to_value(t)
            .map(|v| canonical_json(&v))
            .map_err(|e| StoreError::corrupt("alert tracker", format!("{rule} {subject}"), e.to_string()))?;
        let now = self.clock.now();
        self.backend.write(|sql| {
            sql.exec(
                "INSERT INTO alert_trackers (rule, subject, tracker, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (rule, subject) DO UPDATE SET tracker = excluded.tracker, updated_at = excluded.updated_at",
                &[rule.into(), subject.into(), doc.into(), now.as_millis().into()],
            )?;
            Ok(())
        })
    }

    pub(super) fn do_add_deliveries(&self, deliveries: &[NewDelivery]) -> Result<u64, StoreError> {
        let masker = self.current_masker();
        let now = self.clock.now();
        self.backend
            .write(|sql| insert_deliveries(sql, &masker, deliveries, now))
    }

    /// Pending deliveries due now, at most `limit`, each moved `lease`
    /// ahead in the same transaction so no other sender takes it meanwhile
    /// (PostgreSQL: rows another claimer holds are skipped). A sender that
    /// dies mid-attempt leaves it due again once the lease ran out.
    pub(super) fn do_claim_deliveries(&self, limit: usize, lease: Duration) -> Result<Vec<Delivery>, StoreError> {
        let now = self.clock.now().as_millis();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Looked for with a read first: the sender polls every second, and
        // a write transaction would queue behind (and hold up) the sample
        // writer when another process holds the store's write lock.
        let due = self.backend.read(|sql| {
            sql.row(
                "SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1 LIMIT 1",
                &[now.into()],
            )
        })?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        self.backend.write(|sql| {
            let ids: Vec<i64> = sql
                .rows(
                    &format!(
                        "SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1 \
                         ORDER BY next_attempt_at, id LIMIT $2{}",
                        B::SKIP_LOCKED
                    ),
                    &[now.into(), limit.into()],
                )?
                .iter()
                .map(|r| r.int(0, "id"))
                .collect::<Result<_, String>>()
                .map_err(|d| StoreError::corrupt("delivery", "row", d))?;
            let mut out = Vec::new();
            for id in ids {
                sql.exec(
                    "UPDATE deliveries SET next_attempt_at = $1 WHERE id = $2 AND status = 'pending'",
                    &[now.saturating_add(ms(lease)).into(), id.into()],
                )?;
                if let Some(r) = sql.row(
                    &format!("SELECT {DELIVERY_COLS} FROM deliveries WHERE id = $1"),
                    &[id.into()],
                )? {
                    out.push(delivery_from_row(&r)?);
                }
            }
            Ok(out)
        })
    }

    pub(super) fn do_finish_delivery(&self, id: i64, attempt: &Attempt) -> Result<Delivery, StoreError> {
        let masker = self.current_masker();
        let now = self.clock.now().as_millis();
        self.backend.write(|sql| {
            let (status, next, error, answer, delivered): (
                DeliveryStatus,
                i64,
                Option<String>,
                Option<String>,
                Option<i64>,
            ) = match attempt {
                Attempt::Delivered { answer } => (
                    DeliveryStatus::Delivered,
                    now,
                    None,
                    Some(masker.mask(answer)),
                    Some(now),
                ),
                Attempt::Retry { error, after } => (
                    DeliveryStatus::Pending,
                    now.saturating_add(ms(*after)),
                    Some(masker.mask(error)),
                    None,
                    None,
                ),
                Attempt::Failed { error } => (DeliveryStatus::Failed, now, Some(masker.mask(error)), None, None),
            };
            let n = sql.exec(
                "UPDATE deliveries SET attempts = attempts + 1, status = $1, next_attempt_at = $2, \
                 last_error = COALESCE($3, last_error), answer = $4, delivered_at = $5 \
                 WHERE id = $6 AND status = 'pending'",
                &[
                    status.as_str().into(),
                    next.into(),
                    error.into(),
                    answer.into(),
                    Param::Int(delivered),
                    id.into(),
                ],
            )?;
            let row = sql
                .row(
                    &format!("SELECT {DELIVERY_COLS} FROM deliveries WHERE id = $1"),
                    &[id.into()],
                )?
                .ok_or_else(|| StoreError::NotFound {
                    what: "delivery",
                    id: id.to_string(),
                })?;
            let d = delivery_from_row(&row)?;
            if n == 0 {
                return Err(StoreError::Stale {
                    what: "delivery",
                    id: id.to_string(),
                    detail: format!("it is {} already", d.status.as_str()),
                });
            }
            Ok(d)
        })
    }

    pub(super) fn do_deliveries(&self, alert: Option<AlertId>) -> Result<Vec<Delivery>, StoreError> {
        self.backend.read(|sql| {
            let rows = match alert {
                Some(a) => sql.rows(
                    &format!("SELECT {DELIVERY_COLS} FROM deliveries WHERE alert_id = $1 ORDER BY id"),
                    &[a.to_string().into()],
                )?,
                None => sql.rows(&format!("SELECT {DELIVERY_COLS} FROM deliveries ORDER BY id"), &[])?,
            };
            rows.iter().map(delivery_from_row).collect()
        })
    }

    pub(super) fn do_push_metric_point(&self, p: &MetricPoint) -> Result<(), StoreError> {
        if !p.value.is_finite() {
            return Err(StoreError::Invalid {
                what: "metric point",
                id: format!("{} of {}", p.name, p.environment),
                violations: vec![rollway_model::rules::Violation::new(
                    "value",
                    "metric.finite",
                    format!("{} is not a finite number", p.value),
                )],
            });
        }
        self.backend.write(|sql| {
            sql.exec(
                "INSERT INTO metric_points (environment, name, time, value) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (environment, name, time) DO UPDATE SET value = excluded.value",
                &[
                    p.environment.as_str().into(),
                    p.name.as_str().into(),
                    p.time.as_millis().into(),
                    Param::Real(Some(p.value)),
                ],
            )?;
            Ok(())
        })
    }

    pub(super) fn do_latest_metric_point(
        &self,
        environment: &str,
        name: &str,
    ) -> Result<Option<MetricPoint>, StoreError> {
        self.backend.read(|sql| {
            let Some(r) = sql.row(
                "SELECT time, value FROM metric_points WHERE environment = $1 AND name = $2 \
                 ORDER BY time DESC LIMIT 1",
                &[environment.into(), name.into()],
            )?
            else {
                return Ok(None);
            };
            let decode = || -> Result<MetricPoint, String> {
                Ok(MetricPoint {
                    environment: environment.to_owned(),
                    name: name.to_owned(),
                    time: Timestamp::from_millis(r.int(0, "time")?),
                    value: r.real(1, "value")?,
                })
            };
            decode()
                .map(Some)
                .map_err(|d| StoreError::corrupt("metric point", format!("{name} of {environment}"), d))
        })
    }
}
