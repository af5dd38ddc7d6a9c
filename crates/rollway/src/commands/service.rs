//! `rollway stop|start|restart ENV` and `rollway logs ENV [--follow]`: the
//! service on every host of an environment, driven by the app layer
//! through each host's agent; `logs` reads the log records `serve`
//! collected when there are any (filtered by time, level, trace id and
//! text), else the hosts' output.

use clap::Args;
use std::time::Duration;

use rollway_app::Result;
use rollway_app::logs::LogFilter;
use rollway_app::model::Level;
use rollway_app::service::ServiceOp;

use crate::output::Tone;
use crate::session::Session;

#[derive(Debug, Args)]
pub struct ServiceArgs {
    pub env: String,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    pub env: String,
    /// Lines per host (the hosts' output), or the newest records (collected).
    #[arg(long, short = 'n', default_value_t = 50)]
    pub lines: usize,
    /// Keep printing new lines until Ctrl-C.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only records of this long ago or later, e.g. 15m, 2h, 1d.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub since: Option<Duration>,
    /// Only records at this level or above: debug, info, warn (warn and error) or error.
    #[arg(long, value_name = "LEVEL", value_parser = level)]
    pub level: Option<Level>,
    /// Only records of this trace id.
    #[arg(long = "trace", value_name = "ID")]
    pub trace: Option<String>,
    /// Only records whose message contains this text (case ignored).
    #[arg(long, value_name = "TEXT")]
    pub grep: Option<String>,
}

fn duration(text: &str) -> std::result::Result<Duration, String> {
    rollway_app::model::time::parse_duration(text)
}

fn level(text: &str) -> std::result::Result<Level, String> {
    text.parse::<Level>().map_err(|e| e.to_string())
}

pub fn control(s: &Session, args: ServiceArgs, op: ServiceOp) -> Result<()> {
    let answers = rollway_app::service::control(s, &args.env, op, &mut |h| {
        s.printer.line(
            Tone::Good,
            format!(
                "{}: {op:?} done (pid {})",
                h.host,
                h.status.pid.map_or("-".into(), |p| p.to_string())
            ),
        );
    })?;
    s.printer.answer(&answers);
    Ok(())
}

pub fn logs(s: &Session, args: LogsArgs) -> Result<()> {
    let filter = LogFilter {
        lines: args.lines,
        since: args.since,
        level: args.level,
        trace_id: args.trace,
        grep: args.grep,
        follow: args.follow,
    };
    let all = rollway_app::logs::logs(
        s,
        &args.env,
        &filter,
        &mut |r| {
            if args.follow {
                // Following never ends: each record is its own JSON line.
                s.printer.json_line(r);
            }
            let trace = r.trace_id.as_deref().map_or(String::new(), |t| format!(" [{t}]"));
            let tone = match r.level {
                Level::Error => Tone::Bad,
                Level::Warn => Tone::Warn,
                Level::Info | Level::Debug => Tone::Plain,
            };
            s.printer.line(
                tone,
                format!("{} {} │ {:5} {}{trace}", r.time, r.host, r.level.as_str(), r.message),
            );
        },
        &mut |l| {
            s.printer.line(Tone::Plain, format!("{} │ {}", l.host, l.line));
        },
    )?;
    s.printer.answer(&all);
    Ok(())
}
