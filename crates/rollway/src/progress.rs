//! How the CLI shows a long run as it goes: the app layer's progress
//! traits (deploy steps, pipeline jobs, the build) drawn with the printer.

use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rollway_app::build::BuildProgress;
use rollway_app::model::{Artifact, JobStatus, Lock};
use rollway_app::pipeline::PipelineProgress;

use crate::output::{Bar, Printer, Tone};

/// Lines for people; nothing in `--json` mode.
pub struct CliProgress {
    printer: Printer,
    /// The window countdown is drawn only for a person at a terminal.
    tty: bool,
    /// The running pipeline jobs are listed only when stdout is a terminal.
    pipeline_tty: bool,
    last_countdown: Mutex<Option<u64>>,
    bar: Mutex<Option<Bar>>,
}

impl CliProgress {
    pub fn new(printer: &Printer) -> Self {
        Self {
            printer: printer.clone(),
            tty: std::io::stderr().is_terminal() && !printer.is_json(),
            pipeline_tty: std::io::stdout().is_terminal(),
            last_countdown: Mutex::new(None),
            bar: Mutex::new(None),
        }
    }
}

impl rollway_app::Progress for CliProgress {
    fn step(&self, host: Option<&str>, message: &str) {
        match host {
            Some(h) => self.printer.line(Tone::Plain, format!("  {h:<20} {message}")),
            None => self.printer.line(Tone::Dim, format!("» {message}")),
        }
    }

    fn countdown(&self, remaining: Duration) {
        if !self.tty {
            return;
        }
        // One line per 10 seconds is enough for people watching.
        let bucket = remaining.as_secs() / 10;
        let mut last = self.last_countdown.lock().unwrap_or_else(|p| p.into_inner());
        if *last != Some(bucket) {
            *last = Some(bucket);
            self.printer
                .line(Tone::Dim, format!("  window: {}s left", remaining.as_secs()));
        }
    }
}

impl PipelineProgress for CliProgress {
    fn job(&self, name: &str, status: JobStatus, detail: &str) {
        let tone = match status {
            JobStatus::Success => Tone::Good,
            JobStatus::Failure => Tone::Bad,
            JobStatus::Cancelled => Tone::Warn,
            _ => Tone::Dim,
        };
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(" ({detail})")
        };
        self.printer.line(tone, format!("  {name:<20} {status}{detail}"));
    }

    fn running(&self, jobs: &[(String, Duration)]) {
        if !self.pipeline_tty || jobs.is_empty() {
            return;
        }
        let list: Vec<String> = jobs.iter().map(|(n, d)| format!("{n} {}s", d.as_secs())).collect();
        self.printer.line(Tone::Dim, format!("  running: {}", list.join(", ")));
    }
}

impl BuildProgress for CliProgress {
    fn waiting(&self, holder: &Lock) {
        self.printer.line(
            Tone::Dim,
            format!(
                "waiting for the build {} started at {}",
                holder.owner, holder.acquired_at
            ),
        );
    }

    fn command(&self, command: &str) {
        self.printer.line(Tone::Dim, format!("running build: {command}"));
    }

    fn output(&self, line: &str) {
        self.printer.line(Tone::Plain, format!("  │ {line}"));
    }

    fn packing(&self, output: &Path) {
        self.printer.line(Tone::Dim, format!("packing {}", output.display()));
        *self.bar.lock().unwrap_or_else(|p| p.into_inner()) = self.printer.bar("packing");
    }

    fn packed(&self, files: (u64, u64), bytes: (u64, u64)) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            b.update(files, bytes);
        }
    }

    fn pack_done(&self) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            b.finish();
        }
    }

    fn built(&self, artifact: &Artifact, unchanged: bool) {
        let p = &self.printer;
        if unchanged {
            p.line(
                Tone::Good,
                format!("unchanged: artifact {} ({})", artifact.id, artifact.short_digest()),
            );
            return;
        }
        p.line(Tone::Good, format!("artifact {}", artifact.id));
        p.line(Tone::Plain, format!("  sha256          {}", artifact.sha256));
        p.line(Tone::Plain, format!("  content digest  {}", artifact.content_digest));
        p.line(
            Tone::Plain,
            format!(
                "  size            {} bytes, {} files",
                artifact.size_bytes,
                artifact.file_count()
            ),
        );
        if !artifact.aliases_resolved {
            p.line(Tone::Warn, "  aliases unresolved (a deploy will refuse it):");
            for l in &artifact.unresolved_aliases {
                p.line(Tone::Warn, format!("    {l}"));
            }
        }
    }
}

/// Runs `work` while a bar on a terminal shows the bytes `meter` counts
/// and their rate (a backup or restore streaming through storage); nothing
/// is drawn for `--json`, a pipe or a quiet printer.
pub fn with_transfer_bar<T>(
    printer: &Printer,
    label: &str,
    meter: &rollway_app::backup::Meter,
    work: impl FnOnce() -> T,
) -> T {
    let Some(mut bar) = printer.bar(label) else {
        return work();
    };
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let started = std::time::Instant::now();
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                bar.transfer(meter.bytes(), started.elapsed());
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish();
        });
        let out = work();
        done.store(true, std::sync::atomic::Ordering::Release);
        out
    })
}
