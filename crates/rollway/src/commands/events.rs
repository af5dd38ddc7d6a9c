//! `rollway events list|verify`: the append-only, hash-chained audit log.

use clap::Subcommand;
use rollway_model::{EventKind, Level};
use rollway_store::EventQuery;

use crate::exit::{Code, coded_with};
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

pub fn run(s: &Session, cmd: EventsCmd) -> anyhow::Result<()> {
    let store = s.store()?;
    match cmd {
        EventsCmd::List {
            environment,
            kind,
            limit,
        } => {
            let q = EventQuery {
                environment,
                kind,
                limit,
                newest_first: limit.is_some(),
                ..EventQuery::default()
            };
            let mut events = store.events(&q)?;
            events.sort_by_key(|e| e.seq);
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
        EventsCmd::Verify => match store.verify_events()? {
            Ok(n) => {
                s.printer.json(&serde_json::json!({ "intact": true, "events": n }));
                s.printer
                    .line(Tone::Good, format!("event log intact: {n} events, every hash verified"));
                Ok(())
            }
            Err(brk) => Err(coded_with(
                Code::Failed,
                anyhow::anyhow!("{brk}; the log was changed outside Rollway: restore the store from a backup"),
                serde_json::json!({ "intact": false, "seq": brk.seq, "id": brk.id, "reason": brk.reason }),
            )),
        },
    }
}
