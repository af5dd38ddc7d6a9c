//! `rollway stop|start|restart ENV` and `rollway logs ENV [--follow]`: the
//! service on every host of an environment, driven by the app layer
//! through each host's agent.

use clap::Args;
use rollway_app::Result;
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
    /// Lines per host.
    #[arg(long, short = 'n', default_value_t = 50)]
    pub lines: usize,
    /// Keep printing new lines until Ctrl-C.
    #[arg(long, short = 'f')]
    pub follow: bool,
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
    let all = rollway_app::service::logs(s, &args.env, args.lines, args.follow, &mut |l| {
        s.printer.line(Tone::Plain, format!("{} │ {}", l.host, l.line));
    })?;
    s.printer.answer(&all);
    Ok(())
}
