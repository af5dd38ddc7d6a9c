//! `rollway serve`: probe the monitors, record and roll up their samples,
//! and answer `/healthz`, `/readyz` and `/metrics` until SIGTERM or Ctrl-C
//! (then stop gracefully and exit 0).

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;
use rollway_app::Result;

use crate::output::{Printer, Tone};
use crate::session::Session;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to answer on (`/healthz`, `/readyz`, `/metrics`); port 0
    /// lets the system choose.
    #[arg(long, default_value = "127.0.0.1:7800", value_name = "ADDR")]
    pub listen: SocketAddr,
}

/// The server's problems (a sample batch, rollup or retention run that
/// failed and will be retried) as warnings on stderr.
struct Warnings(Printer);

impl rollway_server::Log for Warnings {
    fn problem(&self, line: &str) {
        self.0.stderr_line(Tone::Warn, line);
    }

    fn note(&self, line: &str) {
        self.0.stderr_line(Tone::Plain, line);
    }
}

pub fn run(s: &Session, args: ServeArgs) -> Result<()> {
    let printer = &s.printer;
    let served = rollway_server::serve(
        s,
        args.listen,
        |started| {
            printer.answer(started);
            printer.line(
                Tone::Good,
                format!(
                    "serving on {} ({} monitor{})",
                    started.url,
                    started.monitors,
                    if started.monitors == 1 { "" } else { "s" }
                ),
            );
        },
        Arc::new(Warnings(printer.clone())),
    )?;
    let st = &served.stats;
    printer.stderr_line(
        Tone::Dim,
        &format!(
            "stopped: {} probes started, {} samples recorded, {} lost",
            st.started, st.recorded, st.lost
        ),
    );
    Ok(())
}
