//! Hidden commands that run on a host rather than for a person: `rollway
//! supervise` (Rollway's own supervisor) and `rollway exec` (the wrapper that
//! starts a service with its release's env file and PORT).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use rollway_app::Result;
use rollway_app::agent::{DEFAULT_LOG_MAX_BYTES, Exec, SuperviseOptions};

use crate::session::Session;

/// `rollway supervise --dir ROOT/.rollway/svc/NAME [--detach]`: runs the
/// service described by `DIR/spec.json` and keeps it running.
#[derive(Debug, Args)]
pub struct SuperviseArgs {
    /// The service's state directory (ROOT/.rollway/svc/NAME).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Start the supervisor in the background and return at once.
    #[arg(long)]
    pub detach: bool,
    /// Keep the newest this many bytes of the service's output.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_LOG_MAX_BYTES)]
    pub log_max_bytes: u64,
    /// Milliseconds between SIGTERM and SIGKILL when stopping the service.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub grace_ms: u64,
    /// First relaunch delay after the service exits, doubled on each exit.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub backoff_min_ms: u64,
    /// Longest relaunch delay.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub backoff_max_ms: u64,
    /// Uptime after which the delay starts over.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub backoff_reset_ms: u64,
}

/// `rollway exec ENV [--host H] [--timeout D] -- COMMAND…` for people (see
/// `commands::exec`). On a host the same verb is the exec wrapper every
/// supervisor starts a service through — `rollway exec --spec FILE`, or
/// `rollway exec --env-file FILE --port N --dir DIR [--counter FILE] --
/// PROGRAM [ARGS…]` — whose flags are hidden.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The environment whose current release runs the command.
    #[arg(conflicts_with_all = ["spec", "env_file", "port", "dir", "counter"])]
    pub env: Option<String>,
    /// Only this host of the environment (as named in rollway.toml).
    #[arg(long, requires = "env")]
    pub host: Option<String>,
    /// How long the command may run on each host.
    #[arg(long, requires = "env", value_parser = crate::commands::deploy::parse_duration, default_value = "10m")]
    pub timeout: Duration,
    /// A service spec (ROOT/.rollway/svc/NAME/spec.json): runs its command
    /// with `sh -c` in ROOT/current with its env file, port and start counter.
    #[arg(long, hide = true, value_name = "FILE", conflicts_with_all = ["env_file", "port", "dir", "counter", "command"])]
    pub spec: Option<PathBuf>,
    /// The release's env file (KEY=VALUE lines); a malformed file is refused.
    #[arg(long, hide = true, value_name = "FILE", required_unless_present_any = ["spec", "env"])]
    pub env_file: Option<PathBuf>,
    /// Set as PORT.
    #[arg(long, hide = true, value_name = "N", required_unless_present_any = ["spec", "env"])]
    pub port: Option<u16>,
    /// The directory to run in.
    #[arg(long, hide = true, value_name = "DIR", required_unless_present_any = ["spec", "env"])]
    pub dir: Option<PathBuf>,
    /// A start counter file, incremented before the program starts.
    #[arg(long, hide = true, value_name = "FILE")]
    pub counter: Option<PathBuf>,
    /// The command (run with `sh -c` in the release) and its arguments.
    #[arg(last = true, value_name = "COMMAND", required_unless_present = "spec")]
    pub command: Vec<OsString>,
}

pub fn supervise(_s: &Session, args: SuperviseArgs) -> Result<()> {
    let options = SuperviseOptions {
        log_max_bytes: args.log_max_bytes,
        grace: Duration::from_millis(args.grace_ms),
        backoff_min: Duration::from_millis(args.backoff_min_ms),
        backoff_max: Duration::from_millis(args.backoff_max_ms),
        backoff_reset: Duration::from_millis(args.backoff_reset_ms),
    };
    rollway_app::agent::supervise(&args.dir, args.detach, &options)
}

pub fn exec(s: &Session, args: ExecArgs) -> Result<()> {
    if let Some(env) = args.env {
        return crate::commands::exec::run(s, &env, args.host.as_deref(), args.timeout, &args.command);
    }
    let how = match args.spec {
        Some(spec) => Exec::Spec(spec),
        None => {
            let mut command = args.command.into_iter();
            let (Some(env_file), Some(port), Some(dir), Some(program)) =
                (args.env_file, args.port, args.dir, command.next())
            else {
                return Err(anyhow::anyhow!(
                    "rollway exec needs --spec FILE, or --env-file, --port, --dir and a command after --"
                )
                .into());
            };
            Exec::Program {
                env_file,
                port,
                dir,
                counter: args.counter,
                program,
                args: command.collect(),
            }
        }
    };
    Err(rollway_app::agent::exec(how))
}
