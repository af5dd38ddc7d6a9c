//! `rollway events list|verify`: the append-only, hash-chained audit log.

use clap::Subcommand;
use rollway_app::Result;
use rollway_app::model::{EventKind, Level};

use crate::output::{Cell, Tone, cell};
use crate::session::Session;

#[derive(Debug, Subcommand)]
pub enum EventsCmd {
    /// List events, oldest first.
    List {
        /// Only events of this environment.
        #[arg(long = "env", value_name = "ENV")]
        environment: Option<String>,
        /// Only events of this kind (see the README for the list).
        #[arg(long)]
        kind: Option<EventKind>,
        /// At most this many, the newest.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Recompute the hash chain: exit 0 when intact, 1 naming the first bad event.
    Verify,
}

fn level_cell(level: Level) -> Cell {
    let tone = match level {
        Level::Debug => Tone::Dim,
        Level::Info => Tone::Plain,
        Level::Warn => Tone::Warn,
        Level::Error => Tone::Bad,
    };
    cell(level.as_str(), tone)
}

pub fn run(s: &Session, cmd: EventsCmd) -> Result<()> {
    match cmd {
        EventsCmd::List {
            environment,
            kind,
            limit,
        } => {
            let filter = rollway_app::events::Filter {
                environment,
                kind,
                limit,
            };
            let events = rollway_app::events::list(s, filter)?;
            s.printer.json(&events);
            let rows: Vec<Vec<Cell>> = events
                .iter()
                .map(|e| {
                    vec![
                        Cell::from(e.seq.to_string()),
                        Cell::from(e.at.to_string()),
                        level_cell(e.level),
                        Cell::from(e.kind.as_str()),
                        Cell::from(e.environment.clone().unwrap_or_else(|| "-".into())),
                        Cell::from(e.message.clone()),
                    ]
                })
                .collect();
            s.printer
                .table(&["SEQ", "TIME", "LEVEL", "KIND", "ENV", "MESSAGE"], &rows);
            Ok(())
        }
        EventsCmd::Verify => {
            let n = rollway_app::events::verify(s)?;
            s.printer.json(&serde_json::json!({ "intact": true, "events": n }));
            s.printer
                .line(Tone::Good, format!("event log intact: {n} events, every hash verified"));
            Ok(())
        }
    }
}
