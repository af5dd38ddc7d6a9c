//! Maintenance windows (`maintenance_windows`, schema 6), written once for
//! both backends: added and removed each with its event in one
//! transaction, checked by the model's `maintenance::check` first.

use rollway_model::maintenance::{MaintenanceWindow, Schedule, check};
use rollway_model::rules::Violation;
use rollway_model::{NewEvent, Timestamp};

use super::Db;
use crate::error::StoreError;
use crate::sql::{Backend, Param, Row, Sql};

const COLS: &str = "id, environment, monitor, kind, start_at, end_at, cron, duration_ms, note, created_at, operator";

fn window_from_row(r: &Row) -> Result<MaintenanceWindow, StoreError> {
    let id = r.int(0, "id").unwrap_or_default();
    let decode = || -> Result<MaintenanceWindow, String> {
        let kind = r.text(3, "kind")?;
        let schedule = match kind.as_str() {
            "once" => Schedule::Once {
                start: Timestamp::from_millis(r.opt_int(4, "start_at")?.ok_or("a one-off window without start_at")?),
                end: Timestamp::from_millis(r.opt_int(5, "end_at")?.ok_or("a one-off window without end_at")?),
            },
            "cron" => Schedule::Cron {
                expression: r.opt_text(6, "cron")?.ok_or("a cron window without cron")?,
                duration_ms: r
                    .opt_int(7, "duration_ms")?
                    .ok_or("a cron window without duration_ms")?,
            },
            other => return Err(format!("kind '{other}' is neither 'once' nor 'cron'")),
        };
        Ok(MaintenanceWindow {
            id: r.int(0, "id")?,
            environment: r.text(1, "environment")?,
            monitor: r.opt_text(2, "monitor")?,
            schedule,
            note: r.opt_text(8, "note")?,
            created_at: Timestamp::from_millis(r.int(9, "created_at")?),
            operator: r.text(10, "operator")?,
        })
    };
    decode().map_err(|d| StoreError::corrupt("maintenance window", id.to_string(), d))
}

fn get(sql: &mut dyn Sql, id: i64) -> Result<Option<MaintenanceWindow>, StoreError> {
    sql.row(
        &format!("SELECT {COLS} FROM maintenance_windows WHERE id = $1"),
        &[id.into()],
    )?
    .as_ref()
    .map(window_from_row)
    .transpose()
}

impl<B: Backend> Db<B> {
    pub(super) fn do_add_maintenance(
        &self,
        w: &MaintenanceWindow,
        ev: NewEvent,
    ) -> Result<MaintenanceWindow, StoreError> {
        let mut violations: Vec<Violation> = check(&w.schedule)
            .into_iter()
            .map(|m| Violation::new("schedule", "maintenance.schedule", m))
            .collect();
        if w.environment.is_empty() {
            violations.push(Violation::new(
                "environment",
                "maintenance.environment-required",
                "a maintenance window needs an environment",
            ));
        }
        if !violations.is_empty() {
            return Err(StoreError::Invalid {
                what: "maintenance window",
                id: w.environment.clone(),
                violations,
            });
        }
        let masker = self.current_masker();
        let (kind, start, end, cron, duration) = match &w.schedule {
            Schedule::Once { start, end } => ("once", Some(start.as_millis()), Some(end.as_millis()), None, None),
            Schedule::Cron {
                expression,
                duration_ms,
            } => ("cron", None, None, Some(expression.clone()), Some(*duration_ms)),
        };
        self.in_tx(|tx| {
            let now = tx.now();
            let row = tx.sql().row(
                "INSERT INTO maintenance_windows (environment, monitor, kind, start_at, end_at, cron, duration_ms, \
                 note, created_at, operator) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                &[
                    w.environment.as_str().into(),
                    Param::Text(w.monitor.clone()),
                    kind.into(),
                    Param::Int(start),
                    Param::Int(end),
                    Param::Text(cron.clone()),
                    Param::Int(duration),
                    Param::Text(w.note.as_deref().map(|n| masker.mask(n))),
                    now.as_millis().into(),
                    w.operator.as_str().into(),
                ],
            )?;
            let id = row
                .map(|r| r.int(0, "id"))
                .transpose()
                .map_err(|d| StoreError::corrupt("maintenance window", "new", d))?
                .ok_or_else(|| StoreError::corrupt("maintenance window", "new", "the insert returned no id"))?;
            let stored = get(tx.sql(), id)?
                .ok_or_else(|| StoreError::corrupt("maintenance window", id.to_string(), "it vanished"))?;
            let mut data = serde_json::to_value(&stored).unwrap_or_default();
            if let Some(o) = data.as_object_mut() {
                o.insert("action".into(), "added".into());
            }
            tx.append(ev.data(data))?;
            Ok(stored)
        })
    }

    pub(super) fn do_maintenance_windows(
        &self,
        environment: Option<&str>,
    ) -> Result<Vec<MaintenanceWindow>, StoreError> {
        let (filter, params): (&str, Vec<Param>) = match environment {
            Some(env) => (" WHERE environment = $1", vec![env.into()]),
            None => ("", Vec::new()),
        };
        self.backend.read(|sql| {
            sql.rows(
                &format!("SELECT {COLS} FROM maintenance_windows{filter} ORDER BY id"),
                &params,
            )?
            .iter()
            .map(window_from_row)
            .collect()
        })
    }

    pub(super) fn do_remove_maintenance(&self, id: i64, ev: NewEvent) -> Result<Option<MaintenanceWindow>, StoreError> {
        self.in_tx(|tx| {
            let Some(w) = get(tx.sql(), id)? else {
                return Ok(None);
            };
            tx.sql()
                .exec("DELETE FROM maintenance_windows WHERE id = $1", &[id.into()])?;
            let mut data = serde_json::to_value(&w).unwrap_or_default();
            if let Some(o) = data.as_object_mut() {
                o.insert("action".into(), "removed".into());
            }
            tx.append(ev.data(data))?;
            Ok(Some(w))
        })
    }
}
