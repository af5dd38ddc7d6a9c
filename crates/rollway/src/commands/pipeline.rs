//! `rollway pipeline run|list|show|logs|cancel`: the `[jobs]` DAG, run by
//! the app layer with the environment's variables, recorded with masked
//! logs; this shows the jobs as they go and the runs as they are.

use clap::Subcommand;
use rollway_app::Result;
use rollway_app::pipeline::Shown;

use crate::output::{Cell, Tone, cell};
use crate::progress::CliProgress;
use crate::session::Session;

#[derive(Debug, Subcommand)]
pub enum PipelineCmd {
    /// Run the named jobs and what they need (default: every job).
    Run {
        /// Run with this environment's variables (its secrets masked).
        #[arg(long)]
        env: Option<String>,
        /// Jobs at once (default: the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Jobs to run; what they need runs first.
        names: Vec<String>,
    },
    /// Pipeline runs, newest first.
    List {
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One run with its jobs (a run id or a unique prefix).
    Show { run: String },
    /// A job's stored output (masked).
    Logs {
        run: String,
        job: String,
        /// Keep printing new output until the job ends.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Ask the process running RUN to stop: every job's processes end, the jobs end cancelled.
    Cancel { run: String },
}

pub fn run(s: &Session, cmd: PipelineCmd) -> Result<()> {
    match cmd {
        PipelineCmd::Run { env, jobs, names } => {
            let progress = CliProgress::new(&s.printer);
            let shown = rollway_app::pipeline::run(s, env.as_deref(), jobs, names, &progress)?;
            show_run(s, &shown);
            // A run that did not succeed answers `--json` with the error
            // document, the run record as its details.
            shown.verdict()?;
            s.printer.json(&shown.json());
            Ok(())
        }
        PipelineCmd::List { limit } => {
            let runs = rollway_app::pipeline::list(s, limit)?;
            s.printer.json(&runs);
            let rows: Vec<Vec<Cell>> = runs
                .iter()
                .map(|r| {
                    vec![
                        Cell::from(r.id.to_string()),
                        status_cell(r.status().as_str()),
                        Cell::from(r.environment.clone().unwrap_or_else(|| "-".into())),
                        Cell::from(r.triggered_by.clone()),
                        Cell::from(r.lifecycle.started_at().to_string()),
                    ]
                })
                .collect();
            s.printer
                .table(&["RUN", "STATUS", "ENV", "TRIGGERED BY", "CREATED"], &rows);
            Ok(())
        }
        PipelineCmd::Show { run } => {
            let shown = rollway_app::pipeline::show(s, &run)?;
            show_run(s, &shown);
            s.printer.json(&shown.json());
            Ok(())
        }
        PipelineCmd::Logs { run, job, follow } => {
            let log = rollway_app::pipeline::logs(s, &run, &job, follow, &mut |text| s.printer.raw_masked(text))?;
            s.printer.answer(&log);
            Ok(())
        }
        PipelineCmd::Cancel { run } => {
            let ended = rollway_app::pipeline::cancel(s, &run)?;
            s.printer.json(&ended);
            s.printer
                .line(Tone::Warn, format!("pipeline {} ended {}", ended.id, ended.status()));
            Ok(())
        }
    }
}

fn status_cell(status: &str) -> Cell {
    let tone = match status {
        "success" | "succeeded" => Tone::Good,
        "failure" | "failed" => Tone::Bad,
        "cancelled" | "skipped" => Tone::Warn,
        _ => Tone::Plain,
    };
    cell(status, tone)
}

/// The run's jobs for people.
fn show_run(s: &Session, shown: &Shown) {
    s.printer
        .line(Tone::Plain, format!("pipeline {} {}", shown.run.id, shown.run.status()));
    let rows: Vec<Vec<Cell>> = shown
        .jobs
        .iter()
        .map(|j| {
            let took = match (j.start_time, j.end_time) {
                (Some(a), Some(b)) => rollway_app::model::time::format_duration(b.since(a)),
                _ => "-".into(),
            };
            vec![
                Cell::from(j.name.clone()),
                status_cell(j.status().as_str()),
                Cell::from(j.exit_code.map_or("-".into(), |c| c.to_string())),
                Cell::from(took),
                Cell::from(j.needs.join(", ")),
            ]
        })
        .collect();
    s.printer.table(&["JOB", "STATUS", "EXIT", "TOOK", "NEEDS"], &rows);
}
