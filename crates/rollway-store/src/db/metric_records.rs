//! Seed 003 Monitoring Data records (`metric_records`, schema 8), written
//! once for both backends: a batch is checked by the model's
//! `rules::metric::validate` and then upserted in one transaction on
//! (environment, metric type, source, slot), so a window written again
//! keeps its `metric_id` and takes the new value. Like samples and
//! rollups, these writes never take the event head.

use rollway_model::rules::metric::validate;
use rollway_model::{MetricId, MetricRecord, MetricType, Timestamp};

use super::Db;
use crate::error::StoreError;
use crate::monitoring::{Pruned, Retention};
use crate::sql::{Backend, Param, Row};

const COLS: &str = "metric_id, environment, metric_type, source, metric_value, unit, threshold_warning, \
                    threshold_critical, status, timestamp, window_start";

fn record_from_row(r: &Row) -> Result<MetricRecord, StoreError> {
    let id = r.text(0, "metric_id").unwrap_or_default();
    let decode = || -> Result<MetricRecord, String> {
        Ok(MetricRecord {
            metric_id: r.parse::<MetricId>(0, "metric_id")?,
            environment: r.text(1, "environment")?,
            metric_type: r.parse(2, "metric_type")?,
            source: r.text(3, "source")?,
            metric_value: r.real(4, "metric_value")?,
            unit: r.parse(5, "unit")?,
            threshold_warning: r.real(6, "threshold_warning")?,
            threshold_critical: r.real(7, "threshold_critical")?,
            status: r.parse(8, "status")?,
            timestamp: Timestamp::from_millis(r.int(9, "timestamp")?),
            window_start: Timestamp::from_millis(r.int(10, "window_start")?),
        })
    };
    decode().map_err(|d| StoreError::corrupt("metric record", id, d))
}

impl<B: Backend> Db<B> {
    pub(super) fn do_put_metric_records(&self, records: &[MetricRecord]) -> Result<u64, StoreError> {
        for r in records {
            let violations = validate(r);
            if !violations.is_empty() {
                return Err(StoreError::Invalid {
                    what: "metric record",
                    id: format!("{} {} of {}", r.environment, r.metric_type, r.source),
                    violations,
                });
            }
        }
        if records.is_empty() {
            return Ok(0);
        }
        self.backend.write(|sql| {
            let mut n = 0;
            for r in records {
                n += sql.exec(
                    "INSERT INTO metric_records (metric_id, environment, metric_type, source, slot, metric_value, \
                     unit, threshold_warning, threshold_critical, status, timestamp, window_start) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (environment, metric_type, source, slot) DO UPDATE SET \
                     metric_value = excluded.metric_value, unit = excluded.unit, \
                     threshold_warning = excluded.threshold_warning, \
                     threshold_critical = excluded.threshold_critical, status = excluded.status, \
                     timestamp = excluded.timestamp, window_start = excluded.window_start",
                    &[
                        r.metric_id.to_string().into(),
                        r.environment.as_str().into(),
                        r.metric_type.as_str().into(),
                        r.source.as_str().into(),
                        r.slot().into(),
                        Param::Real(Some(r.metric_value)),
                        r.unit.as_str().into(),
                        Param::Real(Some(r.threshold_warning)),
                        Param::Real(Some(r.threshold_critical)),
                        r.status.as_str().into(),
                        r.timestamp.as_millis().into(),
                        r.window_start.as_millis().into(),
                    ],
                )?;
            }
            Ok(n)
        })
    }

    /// Deletes the records of windows that ended longer ago than their
    /// tier keeps: error rates (hourly) with the hour rollups, uptime
    /// (monthly) with the day rollups; `batch` rows per transaction. The
    /// latest health check and rolling average are current: kept.
    pub(super) fn prune_metric_records(
        &self,
        keep: &Retention,
        now: i64,
        batch: i64,
        out: &mut Pruned,
    ) -> Result<(), StoreError> {
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        for (t, cutoff) in [
            (MetricType::ErrorRate, now.saturating_sub(ms(keep.hours))),
            (MetricType::Uptime, now.saturating_sub(ms(keep.days))),
        ] {
            loop {
                let deleted = self.backend.write(|sql| {
                    sql.exec(
                        "DELETE FROM metric_records WHERE metric_id IN (SELECT metric_id FROM metric_records \
                         WHERE metric_type = $1 AND timestamp <= $2 ORDER BY timestamp LIMIT $3)",
                        &[t.as_str().into(), cutoff.into(), batch.into()],
                    )
                })?;
                out.transactions += 1;
                out.records += deleted;
                if deleted < u64::try_from(batch).unwrap_or(u64::MAX) {
                    break;
                }
            }
        }
        Ok(())
    }

    pub(super) fn do_metric_records(
        &self,
        environment: &str,
        metric_type: Option<MetricType>,
    ) -> Result<Vec<MetricRecord>, StoreError> {
        let mut params: Vec<Param> = vec![environment.into()];
        let mut filter = String::from("environment = $1");
        if let Some(t) = metric_type {
            params.push(t.as_str().into());
            filter.push_str(" AND metric_type = $2");
        }
        self.backend.read(|sql| {
            sql.rows(
                &format!(
                    "SELECT {COLS} FROM metric_records WHERE {filter} \
                     ORDER BY metric_type, source, window_start DESC, metric_id"
                ),
                &params,
            )?
            .iter()
            .map(record_from_row)
            .collect()
        })
    }
}
