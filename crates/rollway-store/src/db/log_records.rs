//! Seed 002 Log Records (`log_records`, `log_cursors`; schema 11), written
//! once for both backends. A batch of lines and the cursor after them are
//! one transaction, and the cursor moves only from the one the collector
//! read from (compare and set): a crash stores neither, and a second
//! collector that read the same lines (another `serve` on one PostgreSQL)
//! finds the cursor moved and writes nothing — each line is stored once.
//! Like samples, these writes never take the event head.

use rollway_model::{Level, Timestamp};

use super::Db;
use crate::error::StoreError;
use crate::logs::{LogQuery, LogRecord, LogSource, NewLogRecord};
use crate::sql::{Backend, Param, Row};

const COLS: &str = "id, environment, host, service, level, message, trace_id, time, collected_at";

fn record_from_row(r: &Row) -> Result<LogRecord, StoreError> {
    let id = r.int(0, "id").unwrap_or_default();
    let decode = || -> Result<LogRecord, String> {
        Ok(LogRecord {
            id: r.int(0, "id")?,
            environment: r.text(1, "environment")?,
            host: r.text(2, "host")?,
            service: r.text(3, "service")?,
            level: r.parse(4, "level")?,
            message: r.text(5, "message")?,
            trace_id: r.opt_text(6, "trace_id")?,
            time: Timestamp::from_millis(r.int(7, "time")?),
            collected_at: Timestamp::from_millis(r.int(8, "collected_at")?),
        })
    };
    decode().map_err(|d| StoreError::corrupt("log record", id.to_string(), d))
}

/// `text` as a LIKE pattern matching it anywhere (`\` escapes).
fn contains_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for c in text.to_ascii_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The WHERE clause of `q`'s filters (not its limit) and its parameters.
fn filter(q: &LogQuery) -> (String, Vec<Param>) {
    let mut params: Vec<Param> = vec![q.environment.as_str().into()];
    let mut filter = String::from("environment = $1");
    // Each `?` of a clause becomes the number of the parameter pushed with it.
    let push = |filter: &mut String, params: &mut Vec<Param>, clause: &str, p: Param| {
        params.push(p);
        filter.push_str(&clause.replace('?', &format!("${}", params.len())));
    };
    if let Some(since) = q.since {
        push(&mut filter, &mut params, " AND time >= ?", since.as_millis().into());
    }
    if let Some(level) = q.level {
        let words: Vec<&str> = [Level::Debug, Level::Info, Level::Warn, Level::Error]
            .into_iter()
            .filter(|l| *l >= level)
            .map(|l| l.as_str())
            .collect();
        push(&mut filter, &mut params, " AND level IN (?", words[0].into());
        for w in &words[1..] {
            push(&mut filter, &mut params, ", ?", (*w).into());
        }
        filter.push(')');
    }
    if let Some(t) = &q.trace_id {
        push(&mut filter, &mut params, " AND trace_id = ?", t.as_str().into());
    }
    if let Some(g) = &q.grep {
        push(
            &mut filter,
            &mut params,
            " AND LOWER(message) LIKE ? ESCAPE '\\'",
            contains_pattern(g).into(),
        );
    }
    if let Some(after) = q.after_id {
        push(&mut filter, &mut params, " AND id > ?", after.into());
    }
    (filter, params)
}

impl<B: Backend> Db<B> {
    pub(super) fn do_log_cursor(&self, source: &LogSource) -> Result<Option<String>, StoreError> {
        self.backend.read(|sql| {
            sql.row(
                "SELECT cursor FROM log_cursors WHERE environment = $1 AND host = $2 AND service = $3",
                &[
                    source.environment.as_str().into(),
                    source.host.as_str().into(),
                    source.service.as_str().into(),
                ],
            )?
            .map(|r| {
                r.text(0, "cursor")
                    .map_err(|d| StoreError::corrupt("log cursor", &source.host, d))
            })
            .transpose()
        })
    }

    pub(super) fn do_put_log_records(
        &self,
        source: &LogSource,
        previous: Option<&str>,
        cursor: &str,
        records: &[NewLogRecord],
    ) -> Result<Option<u64>, StoreError> {
        let masker = self.current_masker();
        let now = self.clock.now().as_millis();
        let key: [Param; 3] = [
            source.environment.as_str().into(),
            source.host.as_str().into(),
            source.service.as_str().into(),
        ];
        self.backend.write(|sql| {
            // Compare and set: the first statement of the transaction, so on
            // PostgreSQL a concurrent collector waits here for the row and
            // then sees it moved.
            let moved = match previous {
                Some(prev) => sql.exec(
                    "UPDATE log_cursors SET cursor = $4, updated_at = $5 \
                     WHERE environment = $1 AND host = $2 AND service = $3 AND cursor = $6",
                    &[
                        key[0].clone(),
                        key[1].clone(),
                        key[2].clone(),
                        cursor.into(),
                        now.into(),
                        prev.into(),
                    ],
                )?,
                None => sql.exec(
                    "INSERT INTO log_cursors (environment, host, service, cursor, updated_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (environment, host, service) DO NOTHING",
                    &[key[0].clone(), key[1].clone(), key[2].clone(), cursor.into(), now.into()],
                )?,
            };
            if moved != 1 {
                return Ok(None);
            }
            let mut n = 0;
            for r in records {
                n += sql.exec(
                    "INSERT INTO log_records (environment, host, service, level, message, trace_id, time, collected_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[
                        key[0].clone(),
                        key[1].clone(),
                        key[2].clone(),
                        r.level.as_str().into(),
                        masker.mask(&r.message).into(),
                        r.trace_id.as_deref().map(|t| masker.mask(t)).into(),
                        r.time.as_millis().into(),
                        now.into(),
                    ],
                )?;
            }
            Ok(Some(n))
        })
    }

    pub(super) fn do_log_records(&self, q: &LogQuery) -> Result<Vec<LogRecord>, StoreError> {
        let (filter, mut params) = filter(q);
        params.push(i64::try_from(q.limit).unwrap_or(i64::MAX).into());
        let n = params.len();
        let mut out = self.backend.read(|sql| {
            sql.rows(
                &format!("SELECT {COLS} FROM log_records WHERE {filter} ORDER BY time DESC, id DESC LIMIT ${n}"),
                &params,
            )?
            .iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>, _>>()
        })?;
        out.reverse();
        Ok(out)
    }

    pub(super) fn do_count_log_records(&self, q: &LogQuery) -> Result<u64, StoreError> {
        let (filter, params) = filter(q);
        let n = self.backend.read(|sql| {
            sql.row(&format!("SELECT COUNT(*) FROM log_records WHERE {filter}"), &params)?
                .map(|r| r.int(0, "count"))
                .transpose()
                .map_err(|d| StoreError::corrupt("log records", &q.environment, d))
        })?;
        Ok(n.and_then(|n| u64::try_from(n).ok()).unwrap_or_default())
    }

    pub(super) fn do_prune_log_records(&self, keep: std::time::Duration, batch: u32) -> Result<u64, StoreError> {
        let keep = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        let cutoff = self.clock.now().as_millis().saturating_sub(keep);
        let batch = i64::from(batch.max(1));
        let mut total = 0;
        loop {
            let deleted = self.backend.write(|sql| {
                sql.exec(
                    "DELETE FROM log_records WHERE id IN (SELECT id FROM log_records \
                     WHERE time < $1 ORDER BY time LIMIT $2)",
                    &[cutoff.into(), batch.into()],
                )
            })?;
            total += deleted;
            if deleted < u64::try_from(batch).unwrap_or(u64::MAX) {
                return Ok(total);
            }
        }
    }
}
