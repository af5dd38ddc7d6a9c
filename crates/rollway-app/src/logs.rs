//! Seed 002 Log Records (OPERATIONS.md "Log records"): `rollway serve`
//! collects each environment's service output from its hosts through the
//! agent, and `rollway logs` reads them back.
//!
//! Collection, per environment with hosts and at least one deployment, per
//! host with a current release: read forward from the cursor stored for
//! (environment, host, service) with `HostSession::log_read`, read again
//! while the agent says more is waiting — at most [`HOST_ROUND_BYTES`] per
//! host per round, so one flooding service delays the others by a bounded
//! read and never starves them — and store each batch with the cursor after
//! it in one transaction (`Store::put_log_records`, compare and set: a
//! crash stores neither, and a second `serve` on one PostgreSQL that read
//! the same lines stores nothing). Each line (already bounded by the agent:
//! invalid UTF-8 replaced, 16 KiB at most with a marker) is read by the
//! model's `logline::parse`; its message and trace id pass the
//! environment's masker (every secret value of it) before they leave this
//! module; its time is the one it carries, else the collection time. Output
//! that rotated away unread is reported, never skipped in silence.
//!
//! Reading: when the store holds records of the environment, `rollway logs`
//! queries them (since, level at or above, trace id, text); otherwise it
//! reads the hosts' tails as before `serve` collected anything.

use std::time::Duration;

use rollway_engine::LogCursor;
use rollway_model::logline;
use rollway_model::time::Timestamp;
use rollway_model::{Clock, Level};
use rollway_store::{LogQuery, LogRecord, LogSource, NewLogRecord, Store};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::project::Project;
use crate::service::{self, HostService};

/// The environment variable that sets the collection period (tests shorten
/// it; `[logs] collect_every` otherwise).
pub const COLLECT_EVERY_VAR: &str = "ROLLWAY_LOG_EVERY";
/// Bytes asked of the agent in one read.
pub const READ_BYTES: usize = 256 * 1024;
/// Bytes read from one host in one round: a flood waits for the next round
/// (and, past the log's rotation cap, is reported lost) rather than holding
/// up every other host.
pub const HOST_ROUND_BYTES: usize = 4 * 1024 * 1024;
/// Rows deleted per transaction by retention.
pub const PRUNE_BATCH: u32 = 10_000;

/// What one round did for one host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Collected {
    pub environment: String,
    pub host: String,
    /// Records stored.
    pub records: u64,
    /// Output the agent could no longer read (rotated away unread).
    pub lost: Option<String>,
    /// Another collector stored the lines first (another `serve`).
    pub raced: bool,
    /// Bytes were still waiting when this host's share of the round ran out.
    pub behind: bool,
}

/// One round over `environments`: what each host gave, and a message per
/// environment or host that failed (the round goes on with the others).
pub fn collect_round(
    p: &Project,
    config: &rollway_config::Config,
    store: &dyn Store,
    clock: &dyn Clock,
    environments: &[String],
) -> (Vec<Collected>, Vec<String>) {
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for env in environments {
        match collect_environment(p, config, store, clock, env, &mut done) {
            Ok(()) => {}
            Err(e) => failed.push(format!("cannot collect the logs of {env}: {e}")),
        }
    }
    (done, failed)
}

/// The environments worth collecting: with hosts and a deployment.
pub fn collected_environments(config: &rollway_config::Config, store: &dyn Store) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (name, e) in &config.environments {
        if e.hosts.is_empty() {
            continue;
        }
        if !store.deployments(Some(name), 1)?.is_empty() {
            out.push(name.clone());
        }
    }
    Ok(out)
}

fn collect_environment(
    p: &Project,
    config: &rollway_config::Config,
    store: &dyn Store,
    clock: &dyn Clock,
    env: &str,
    done: &mut Vec<Collected>,
) -> Result<()> {
    let (prepared, hosts) = service::sessions_in(p, config, store, env, None)?;
    let mut first_error = None;
    for mut h in hosts {
        if h.current.is_none() {
            // Nothing deployed there yet: no service, no output.
            continue;
        }
        let source = LogSource {
            environment: env.to_owned(),
            host: h.name.clone(),
            service: config.project.clone(),
        };
        match collect_host(&mut h, &source, &prepared.masker, store, clock) {
            Ok(c) => done.push(c),
            Err(e) => {
                let e = e.context(format!("host {}", h.name));
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Reads `h`'s new output and stores it, batch by batch with its cursor.
fn collect_host(
    h: &mut HostService,
    source: &LogSource,
    masker: &rollway_model::Masker,
    store: &dyn Store,
    clock: &dyn Clock,
) -> Result<Collected> {
    let mut out = Collected {
        environment: source.environment.clone(),
        host: source.host.clone(),
        ..Collected::default()
    };
    let mut budget = HOST_ROUND_BYTES;
    loop {
        let previous = store.log_cursor(source)?;
        let cursor: Option<LogCursor> = previous.as_deref().map(serde_json::from_str).transpose().map_err(|e| {
            Error::failed(format_args!(
                "the stored log cursor of {} is unreadable: {e}",
                source.host
            ))
        })?;
        let ask = READ_BYTES.min(budget);
        let chunk = h.session.log_read(&h.spec, cursor, ask)?;
        if let Some(lost) = &chunk.lost {
            out.lost = Some(lost.clone());
        }
        let now = clock.now();
        let records: Vec<NewLogRecord> = chunk.lines.iter().map(|l| record(l, masker, now)).collect();
        let next = serde_json::to_string(&chunk.cursor)?;
        match store.put_log_records(source, previous.as_deref(), &next, &records)? {
            Some(n) => out.records += n,
            None => {
                out.raced = true;
                return Ok(out);
            }
        }
        // Every read counts whole against the budget, so even reads that
        // only skip the rest of a runaway line end the round.
        budget = budget.saturating_sub(ask);
        if !chunk.more {
            return Ok(out);
        }
        if budget == 0 {
            out.behind = true;
            return Ok(out);
        }
    }
}

/// One line of output as a record: parsed, masked, timed.
pub fn record(line: &str, masker: &rollway_model::Masker, now: Timestamp) -> NewLogRecord {
    let parsed = logline::parse(line);
    NewLogRecord {
        level: parsed.level,
        message: masker.mask(&parsed.message),
        trace_id: parsed.trace_id.map(|t| masker.mask(&t)),
        time: parsed.time.unwrap_or(now),
    }
}

/// What `rollway logs` asks for.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Lines per host (host tails) or records in all (the store).
    pub lines: usize,
    pub since: Option<Duration>,
    pub level: Option<Level>,
    pub trace_id: Option<String>,
    pub grep: Option<String>,
    pub follow: bool,
}

impl LogFilter {
    fn narrows(&self) -> bool {
        self.since.is_some() || self.level.is_some() || self.trace_id.is_some() || self.grep.is_some()
    }
}

/// A stored record as `rollway logs` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShownRecord {
    /// RFC 3339.
    pub time: String,
    pub host: String,
    pub service: String,
    pub level: Level,
    pub message: String,
    pub trace_id: Option<String>,
}

impl From<&LogRecord> for ShownRecord {
    fn from(r: &LogRecord) -> Self {
        Self {
            time: r.time.to_rfc3339(),
            host: r.host.clone(),
            service: r.service.clone(),
            level: r.level,
            message: r.message.clone(),
            trace_id: r.trace_id.clone(),
        }
    }
}

/// What `rollway logs` answered.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Shown {
    /// From the store (`serve` collected the environment).
    Records(Vec<ShownRecord>),
    /// The hosts' tails (nothing collected yet).
    Tails(Vec<service::LogLine>),
}

/// How often `--follow` looks for new records.
const FOLLOW_POLL: Duration = Duration::from_secs(1);

/// `rollway logs ENV`: the store's records when it holds any of `env`,
/// else the hosts' tails (a filter other than `lines` then is an error:
/// only records are parsed). `record` / `line` are told each as it comes.
pub fn logs(
    p: &Project,
    env: &str,
    filter: &LogFilter,
    record: &mut dyn FnMut(&ShownRecord),
    line: &mut dyn FnMut(&service::LogLine),
) -> Result<Shown> {
    let store = {
        let (config, store) = p.open()?;
        p.env_ref(&config, env)?;
        store
    };
    let any = store.log_records(&LogQuery::new(env, 1))?;
    if any.is_empty() {
        drop(store);
        if filter.narrows() {
            return Err(Error::invalid(format_args!(
                "{env} has no log records yet, so --since, --level, --trace and --grep have nothing to search: \
                 run `rollway serve` to collect them, or drop the filters to read the hosts' output"
            )));
        }
        return service::logs(p, env, filter.lines, filter.follow, line).map(Shown::Tails);
    }
    let mut q = LogQuery::new(env, filter.lines);
    q.since = filter.since.map(|d| {
        let now = store.clock().now();
        Timestamp::from_millis(
            now.as_millis()
                .saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    });
    q.level = filter.level;
    q.trace_id.clone_from(&filter.trace_id);
    q.grep.clone_from(&filter.grep);
    let mut all = Vec::new();
    loop {
        let batch = store.log_records(&q)?;
        if let Some(last) = batch.iter().map(|r| r.id).max() {
            q.after_id = Some(last);
        }
        for r in &batch {
            let shown = ShownRecord::from(r);
            record(&shown);
            all.push(shown);
        }
        if !filter.follow {
            return Ok(Shown::Records(all));
        }
        // Following: everything new, not only the newest `lines`.
        q.limit = usize::MAX >> 1;
        std::thread::sleep(FOLLOW_POLL);
    }
}

#[cfg(test)]
mod tests {
    use rollway_model::{Level, Masker, Timestamp};

    use super::record;

    #[test]
    fn lines_become_masked_records_with_their_own_time_or_now() {
        let m = Masker::new(["s3cr3t-value"]);
        let now = Timestamp::from_millis(1_767_225_600_000);
        let cases: &[(&str, Level, &str, Option<&str>, Timestamp)] = &[
            (
                r#"{"level":"error","msg":"key s3cr3t-value refused","trace_id":"t-s3cr3t-value","time":"2026-01-01T00:00:01Z"}"#,
                Level::Error,
                "key **** refused",
                Some("t-****"),
                Timestamp::from_millis(1_767_225_601_000),
            ),
            (
                "level=warn msg=\"slow\" trace_id=abc",
                Level::Warn,
                "slow",
                Some("abc"),
                now,
            ),
            ("plain s3cr3t-value text", Level::Info, "plain **** text", None, now),
        ];
        for (line, level, message, trace, time) in cases {
            let r = record(line, &m, now);
            assert_eq!(r.level, *level, "{line}");
            assert_eq!(r.message, *message, "{line}");
            assert_eq!(r.trace_id.as_deref(), *trace, "{line}");
            assert_eq!(r.time, *time, "{line}");
        }
    }
}
