//! The one place user output goes through: tables and colour for people,
//! `--json` for machines. Colour follows the terminal and NO_COLOR (anstream
//! strips styles when stdout is not a terminal or NO_COLOR is set).

use std::io::Write as _;

use anstyle::{AnsiColor, Style};
use rollway_app::Masks;
use serde::Serialize;
use serde_json::Value;

/// How a line is marked for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Good,
    Warn,
    Bad,
    Dim,
}

impl Tone {
    fn style(self) -> Style {
        match self {
            Tone::Plain => Style::new(),
            Tone::Good => AnsiColor::Green.on_default(),
            Tone::Warn => AnsiColor::Yellow.on_default(),
            Tone::Bad => AnsiColor::Red.on_default().bold(),
            Tone::Dim => Style::new().dimmed(),
        }
    }
}

/// A cell of a table with its tone.
#[derive(Debug, Clone)]
pub struct Cell {
    pub text: String,
    pub tone: Tone,
}

impl<T: Into<String>> From<T> for Cell {
    fn from(t: T) -> Self {
        Cell {
            text: t.into(),
            tone: Tone::Plain,
        }
    }
}

pub fn cell(text: impl Into<String>, tone: Tone) -> Cell {
    Cell {
        text: text.into(),
        tone,
    }
}

/// The printer. Every command prints through one of these, and everything
/// it prints passes the masking filter (`reveal` is the one bypass).
#[derive(Debug, Clone)]
pub struct Printer {
    json: bool,
    /// Prints nothing on stdout (a step inside a command that answers once).
    silent: bool,
    /// The secrets the app layer found; shared with the project.
    masks: Masks,
}

impl Printer {
    pub fn new(json: bool, masks: Masks) -> Self {
        Self {
            json,
            silent: false,
            masks,
        }
    }

    /// The secrets this printer masks (the project's).
    pub fn masks(&self) -> &Masks {
        &self.masks
    }

    fn mask(&self, text: &str) -> String {
        self.masks.mask(text)
    }

    /// The one bypass of masking (`--reveal`): prints `text` in clear, or
    /// `value` as the JSON answer. The caller records the audited event first.
    pub fn reveal<T: Serialize>(&self, text: &str, value: &T) {
        let body = if self.json {
            serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
        } else {
            format!("{text}\n")
        };
        self.write(&body);
    }

    /// The same printer (same secrets) with stdout silenced, for steps of a
    /// command whose own answer is the only JSON document it prints.
    pub fn silenced(&self) -> Self {
        Self {
            silent: true,
            ..self.clone()
        }
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// The machine answer of a command (only in `--json` mode).
    pub fn json<T: Serialize>(&self, value: &T) {
        if !self.json {
            return;
        }
        let text = serde_json::to_string_pretty(value)
            .unwrap_or_else(|e| format!("{{\"error\":\"cannot encode answer: {e}\"}}"));
        self.out(&format!("{text}\n"));
    }

    /// The machine answer of a command, as a JSON object with its keys in
    /// order (only in `--json` mode).
    pub fn answer<T: Serialize>(&self, value: &T) {
        if !self.json {
            return;
        }
        match serde_json::to_value(value) {
            Ok(v) => self.json(&v),
            Err(e) => self.out(&format!("{{\"error\":\"cannot encode answer: {e}\"}}\n")),
        }
    }

    /// One compact JSON line (only in `--json` mode): a stream that never
    /// ends, like `logs --follow`, answers line by line.
    pub fn json_line<T: Serialize>(&self, value: &T) {
        if !self.json {
            return;
        }
        let text =
            serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"error\":\"cannot encode answer: {e}\"}}"));
        self.out(&format!("{text}\n"));
    }

    /// Asks `question` on the terminal and reads y/N; without a terminal on
    /// stdin and stderr there is nobody to ask: `Ok(false)`.
    pub fn confirm(&self, question: &str) -> std::io::Result<bool> {
        use std::io::{BufRead as _, IsTerminal as _, Read as _, Write as _};
        if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
            return Ok(false);
        }
        let mut err = std::io::stderr().lock();
        write!(err, "{question} [y/N] ")?;
        err.flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().take(64).read_line(&mut answer)?;
        Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
    }

    /// A line for people (nothing in `--json` mode).
    pub fn line(&self, tone: Tone, text: impl AsRef<str>) {
        if !self.json {
            let style = tone.style();
            self.out(&format!("{style}{}{style:#}\n", text.as_ref()));
        }
    }

    /// Key–value pairs for people, aligned.
    pub fn fields(&self, pairs: &[(&str, Cell)]) {
        if self.json {
            return;
        }
        let width = pairs.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
        let mut s = String::new();
        for (k, v) in pairs {
            let style = v.tone.style();
            let label = Style::new().bold();
            s.push_str(&format!("{label}{k:<width$}{label:#}  {style}{}{style:#}\n", v.text));
        }
        self.out(&s);
    }

    /// A table for people: a bold header and aligned columns. Cells are
    /// masked, then cut to [`MAX_CELL`] characters with an ellipsis.
    pub fn table(&self, headers: &[&str], rows: &[Vec<Cell>]) {
        if self.json {
            return;
        }
        let masked: Vec<Vec<Cell>> = rows
            .iter()
            .map(|row| {
                row.iter()
                    .map(|c| Cell {
                        text: self.mask(&c.text),
                        tone: c.tone,
                    })
                    .collect()
            })
            .collect();
        self.out(&table_text(headers, &masked));
    }

    /// A plain line on stderr (diagnostics, warnings beside an answer), masked.
    pub fn stderr_line(&self, tone: Tone, text: &str) {
        let style = tone.style();
        let mut err = anstream::stderr().lock();
        let _ = writeln!(err, "{style}{}{style:#}", self.mask(text));
    }

    /// An error: JSON on stdout in `--json` mode, else a red line on stderr.
    pub fn error(&self, code: i32, message: &str, details: Option<Value>) {
        if self.json {
            let mut obj = serde_json::json!({ "error": { "code": code, "message": message } });
            if let (Some(d), Some(e)) = (details, obj.get_mut("error")) {
                e["details"] = d;
            }
            let text = serde_json::to_string_pretty(&obj).unwrap_or_default();
            self.out(&format!("{text}\n"));
        } else {
            let style = Tone::Bad.style();
            let mut err = anstream::stderr().lock();
            let _ = writeln!(err, "{style}error{style:#}: {}", self.mask(message));
        }
    }

    /// Text for people printed as it comes (a job's log), masked; nothing in `--json` mode.
    pub fn raw_masked(&self, text: &str) {
        if !self.json {
            self.out(text);
        }
    }

    /// Generated text printed as is (completion scripts, man pages), in both modes.
    pub fn raw(&self, bytes: &[u8]) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(bytes);
        let _ = out.flush();
    }

    fn out(&self, text: &str) {
        if self.silent {
            return;
        }
        self.write(&self.mask(text));
    }

    fn write(&self, text: &str) {
        let mut out = anstream::stdout().lock();
        // A closed pipe (`rollway … | head`) is not an error worth reporting.
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

/// A one-line progress bar on stderr: drawn only when stderr is a terminal
/// and the command is not answering `--json`, at most ten times a second.
#[derive(Debug)]
pub struct Bar {
    label: String,
    last: Option<std::time::Instant>,
    drawn: bool,
}

impl Printer {
    /// A progress bar for `label`, or `None` when nobody would see it.
    pub fn bar(&self, label: &str) -> Option<Bar> {
        use std::io::IsTerminal as _;
        (!self.json && !self.silent && std::io::stderr().is_terminal()).then(|| Bar {
            label: label.to_owned(),
            last: None,
            drawn: false,
        })
    }
}

impl Bar {
    /// Redraws with files and bytes done out of their totals (0: unknown).
    pub fn update(&mut self, files: (u64, u64), bytes: (u64, u64)) {
        if !self.due() {
            return;
        }
        let _ = write!(
            anstream::stderr().lock(),
            "\r\x1b[2K{}",
            bar_text(&self.label, files, bytes)
        );
    }

    /// Redraws with the bytes moved so far and their rate over `elapsed`
    /// (a stream whose total is not known ahead).
    pub fn transfer(&mut self, bytes: u64, elapsed: std::time::Duration) {
        if !self.due() {
            return;
        }
        let _ = write!(
            anstream::stderr().lock(),
            "\r\x1b[2K{}",
            transfer_text(&self.label, bytes, elapsed)
        );
    }

    /// Whether to draw now: at most every 100 ms (then it counts as drawn).
    fn due(&mut self) -> bool {
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < std::time::Duration::from_millis(100))
        {
            return false;
        }
        self.last = Some(now);
        self.drawn = true;
        true
    }

    /// Clears the line.
    pub fn finish(self) {
        if self.drawn {
            let _ = write!(anstream::stderr().lock(), "\r\x1b[2K");
        }
    }
}

/// `label 123.4 MB, 45.6 MB/s`.
fn transfer_text(label: &str, bytes: u64, elapsed: std::time::Duration) -> String {
    let mb = bytes as f64 / 1e6;
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { mb / secs } else { 0.0 };
    format!("{label} {mb:.1} MB, {rate:.1} MB/s")
}

/// `label [#####-----] 12/40 files, 1.2/4.0 MB`.
fn bar_text(label: &str, (files, files_total): (u64, u64), (bytes, bytes_total): (u64, u64)) -> String {
    const WIDTH: u64 = 24;
    let filled = (bytes.min(bytes_total) * WIDTH).checked_div(bytes_total).unwrap_or(0);
    let mb = |b: u64| b as f64 / 1e6;
    format!(
        "{label} [{}{}] {files}/{files_total} files, {:.1}/{:.1} MB",
        "#".repeat(filled as usize),
        "-".repeat((WIDTH - filled) as usize),
        mb(bytes),
        mb(bytes_total)
    )
}

/// The longest a table cell is printed, in characters; longer text ends in `…`.
pub const MAX_CELL: usize = 200;

/// `text` cut to `max` characters, the last one an ellipsis when cut.
fn truncate(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => std::borrow::Cow::Borrowed(text),
        Some(_) => {
            let keep: String = text.chars().take(max.saturating_sub(1)).collect();
            std::borrow::Cow::Owned(keep + "…")
        }
    }
}

/// A table's text: a bold header and columns padded by hand (never by a
/// format width, which cannot exceed 65,535), each cell cut to [`MAX_CELL`].
fn table_text(headers: &[&str], rows: &[Vec<Cell>]) -> String {
    let rows: Vec<Vec<(std::borrow::Cow<'_, str>, Tone)>> = rows
        .iter()
        .map(|row| row.iter().map(|c| (truncate(&c.text, MAX_CELL), c.tone)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| truncate(h, MAX_CELL).chars().count()).collect();
    for row in &rows {
        for (i, (text, _)) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(text.chars().count());
            }
        }
    }
    let pad = |s: &mut String, text: &str, width: usize| {
        s.push_str(text);
        let n = text.chars().count();
        s.extend(std::iter::repeat_n(' ', (width + 2).saturating_sub(n)));
    };
    let mut s = String::new();
    let bold = Style::new().bold();
    let last = headers.len().saturating_sub(1);
    for (i, h) in headers.iter().enumerate() {
        s.push_str(&format!("{bold}"));
        if i == last {
            s.push_str(&truncate(h, MAX_CELL));
        } else {
            pad(&mut s, &truncate(h, MAX_CELL), widths[i]);
        }
        s.push_str(&format!("{bold:#}"));
    }
    s.push('\n');
    for row in &rows {
        for (i, (text, tone)) in row.iter().enumerate() {
            let style = tone.style();
            s.push_str(&format!("{style}"));
            if i >= last {
                s.push_str(text);
            } else {
                pad(&mut s, text, widths[i]);
            }
            s.push_str(&format!("{style:#}"));
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::{Cell, MAX_CELL, table_text};

    #[test]
    fn tables_never_panic_on_width_and_cut_long_cells() {
        let check = |cells: &[&str], expected_line: &str| {
            let row: Vec<Cell> = cells.iter().map(|c| Cell::from(c.to_string())).collect();
            let text = table_text(&["A", "B"], &[row]);
            let line = text.lines().nth(1).unwrap_or_default();
            assert_eq!(line, expected_line);
        };
        let long = "x".repeat(70_000);
        let cut = format!("{}…", "x".repeat(MAX_CELL - 1));
        check(&["a", "b"], "a  b");
        check(&[&long, "b"], &format!("{cut}  b"));
        check(&["a", &long], &format!("a  {cut}"));
        check(&["é", "ü"], "é  ü");
    }

    #[test]
    fn transfer_text_gives_bytes_and_their_rate() {
        let check = |bytes, ms, expected: &str| {
            assert_eq!(
                super::transfer_text("backup db", bytes, std::time::Duration::from_millis(ms)),
                expected
            )
        };
        check(0, 0, "backup db 0.0 MB, 0.0 MB/s");
        check(50_000_000, 2_000, "backup db 50.0 MB, 25.0 MB/s");
        check(1_234_567, 500, "backup db 1.2 MB, 2.5 MB/s");
    }

    #[test]
    fn bar_text_fills_with_bytes() {
        let check = |files, bytes, expected: &str| assert_eq!(super::bar_text("packing", files, bytes), expected);
        check(
            (0, 0),
            (0, 0),
            "packing [------------------------] 0/0 files, 0.0/0.0 MB",
        );
        check(
            (5, 10),
            (2_000_000, 4_000_000),
            "packing [############------------] 5/10 files, 2.0/4.0 MB",
        );
        check(
            (10, 10),
            (4_000_000, 4_000_000),
            "packing [########################] 10/10 files, 4.0/4.0 MB",
        );
    }
}
