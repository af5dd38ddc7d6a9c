//! One line of a service's output read as a seed 002 Log Record
//! (OPERATIONS.md "Log records"): level, message and trace id taken from a
//! JSON line (`level`, `msg`/`message`, `trace_id`/`traceId`), from logfmt,
//! or from a common `LEVEL` prefix; anything else is an `info` line whose
//! message is the whole line. A line is bounded: invalid UTF-8 is replaced
//! and a line longer than [`MAX_LINE`] bytes is cut with a marker saying
//! how much was dropped, so one runaway line cannot grow memory or rows.

use crate::status::Level;
use crate::time::Timestamp;

/// Bytes of a line kept; the rest is dropped and counted in the marker.
pub const MAX_LINE: usize = 16 * 1024;

/// What a line says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub level: Level,
    pub message: String,
    pub trace_id: Option<String>,
    /// The time the line carries (JSON `time`/`timestamp`/`ts`, logfmt
    /// `time`/`ts`, or an RFC 3339 first word), when it has a readable one.
    pub time: Option<Timestamp>,
}

/// Reads one line of text (its line ending, `\n` or `\r\n`, dropped).
/// Bound raw bytes with [`bound`] first.
pub fn parse(text: &str) -> LogLine {
    let text = text.trim_end_matches(['\n', '\r']);
    json(text)
        .or_else(|| logfmt(text))
        .or_else(|| prefixed(text))
        .unwrap_or_else(|| LogLine {
            level: Level::Info,
            message: text.to_owned(),
            trace_id: None,
            time: None,
        })
}

/// Raw bytes of one line as bounded text: invalid UTF-8 replaced, at most
/// [`MAX_LINE`] bytes kept (cut before a character the limit would split)
/// and a marker that counts what was dropped.
pub fn bound(raw: &[u8]) -> String {
    let (mut text, dropped) = bounded(raw);
    if dropped > 0 {
        text.push_str(&truncated(Some(dropped as u64)));
    }
    text
}

/// The marker of a cut line; `None` when how much was cut is not known
/// (a line that went on past what was read).
pub fn truncated(dropped: Option<u64>) -> String {
    match dropped {
        Some(n) => format!(" …[truncated {n} bytes]"),
        None => " …[truncated]".to_owned(),
    }
}

/// A level word as services print it: seed 002's four, with trace → debug,
/// warning → warn, fatal, critical and panic → error (case ignored).
pub fn level_word(word: &str) -> Option<Level> {
    Some(match word.to_ascii_lowercase().as_str() {
        "trace" | "debug" | "dbug" | "trce" => Level::Debug,
        "info" | "inf" | "information" | "notice" => Level::Info,
        "warn" | "warning" | "wrn" => Level::Warn,
        "error" | "err" | "eror" | "fatal" | "critical" | "crit" | "panic" | "alert" | "emerg" => Level::Error,
        _ => return None,
    })
}

/// The first `MAX_LINE` bytes as text (cut before a character the limit
/// would split) and how many bytes were dropped.
fn bounded(raw: &[u8]) -> (String, usize) {
    let mut cut = raw.len().min(MAX_LINE);
    if cut < raw.len() {
        // Back over continuation bytes to the lead byte of the character
        // the limit falls in; drop it whole when it does not fit.
        let mut lead = cut;
        while lead > 0 && cut - lead < 3 && raw[lead - 1] & 0b1100_0000 == 0b1000_0000 {
            lead -= 1;
        }
        if lead > 0 {
            let width = match raw[lead - 1] {
                b if b >= 0xF0 => 4,
                b if b >= 0xE0 => 3,
                b if b >= 0xC0 => 2,
                _ => 1,
            };
            if lead - 1 + width > cut {
                cut = lead - 1;
            }
        }
    }
    (String::from_utf8_lossy(&raw[..cut]).into_owned(), raw.len() - cut)
}

fn json(text: &str) -> Option<LogLine> {
    if !text.starts_with('{') {
        return None;
    }
    let serde_json::Value::Object(map) = serde_json::from_str::<serde_json::Value>(text).ok()? else {
        return None;
    };
    let field = |keys: &[&str]| {
        keys.iter().find_map(|k| match map.get(*k) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        })
    };
    Some(LogLine {
        level: field(&["level", "lvl", "severity"])
            .and_then(|l| level_word(&l))
            .unwrap_or(Level::Info),
        message: field(&["msg", "message"]).unwrap_or_else(|| text.to_owned()),
        trace_id: field(&["trace_id", "traceId", "trace.id"]).filter(|t| !t.is_empty()),
        time: field(&["time", "timestamp", "ts"]).and_then(|t| Timestamp::parse_rfc3339(&t)),
    })
}

/// `key=value key2="quoted value"` pairs; a line is logfmt when every word
/// is a pair and one of them is `level` or `msg`.
fn logfmt(text: &str) -> Option<LogLine> {
    let pairs = logfmt_pairs(text)?;
    let get = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()))
    };
    let level = get(&["level", "lvl"]);
    let msg = get(&["msg", "message"]);
    if level.is_none() && msg.is_none() {
        return None;
    }
    Some(LogLine {
        level: level.and_then(|l| level_word(&l)).unwrap_or(Level::Info),
        message: msg.unwrap_or_else(|| text.to_owned()),
        trace_id: get(&["trace_id", "traceId"]).filter(|t| !t.is_empty()),
        time: get(&["time", "ts", "timestamp"]).and_then(|t| Timestamp::parse_rfc3339(&t)),
    })
}

fn logfmt_pairs(text: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        if key.is_empty() || chars.next() != Some('=') {
            return None;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => value.push(chars.next()?),
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(c);
            }
        }
        pairs.push((key, value));
    }
    (!pairs.is_empty()).then_some(pairs)
}

/// `LEVEL message`, `[LEVEL] message`, `LEVEL: message`, each optionally
/// after an RFC 3339 time.
fn prefixed(text: &str) -> Option<LogLine> {
    let (time, rest) = match text.split_once(' ') {
        Some((first, rest)) => match Timestamp::parse_rfc3339(first) {
            Some(t) => (Some(t), rest.trim_start()),
            None => (None, text),
        },
        None => (None, text),
    };
    let (word, message) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let bare = word
        .strip_prefix('[')
        .and_then(|w| w.strip_suffix(']'))
        .or_else(|| word.strip_suffix(':'))
        .unwrap_or(word);
    let level = level_word(bare)?;
    // Only an upper-case or bracketed word is a prefix: "error handling
    // improved" is an info line about errors.
    if bare != bare.to_ascii_uppercase() && bare.len() == word.len() {
        return None;
    }
    Some(LogLine {
        level,
        message: message.trim_start().to_owned(),
        trace_id: None,
        time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(raw: &str, level: Level, message: &str, trace: Option<&str>, time: Option<&str>) {
        let got = parse(&bound(raw.as_bytes()));
        let want = LogLine {
            level,
            message: message.to_owned(),
            trace_id: trace.map(str::to_owned),
            time: time.map(|t| Timestamp::parse_rfc3339(t).unwrap()),
        };
        assert_eq!(got, want, "{raw:?}");
    }

    #[test]
    fn json_lines() {
        check(
            r#"{"level":"error","msg":"db down","trace_id":"t-1","time":"2026-12-05T10:00:00Z"}"#,
            Level::Error,
            "db down",
            Some("t-1"),
            Some("2026-12-05T10:00:00Z"),
        );
        check(
            r#"{"level":"WARNING","message":"slow","traceId":"abc"}"#,
            Level::Warn,
            "slow",
            Some("abc"),
            None,
        );
        check(r#"{"severity":"fatal","msg":"bye"}"#, Level::Error, "bye", None, None);
        check(r#"{"level":"trace","msg":"x"}"#, Level::Debug, "x", None, None);
        // No message key: the whole line; an unknown level: info.
        check(
            r#"{"level":"loud","n":1}"#,
            Level::Info,
            r#"{"level":"loud","n":1}"#,
            None,
            None,
        );
        // Not an object, or not JSON: read as other lines are.
        check("{not json", Level::Info, "{not json", None, None);
        check("[1,2]", Level::Info, "[1,2]", None, None);
    }

    #[test]
    fn logfmt_lines() {
        check(
            r#"time=2026-12-05T10:00:01Z level=warn msg="cache miss for \"k\"" trace_id=t-2 dur=3ms"#,
            Level::Warn,
            r#"cache miss for "k""#,
            Some("t-2"),
            Some("2026-12-05T10:00:01Z"),
        );
        check(
            "level=info traceId=q",
            Level::Info,
            "level=info traceId=q",
            Some("q"),
            None,
        );
        check("lvl=critical msg=boom", Level::Error, "boom", None, None);
        // Pairs without level or msg are an ordinary line.
        check("a=1 b=2", Level::Info, "a=1 b=2", None, None);
        // An unclosed quote is not logfmt.
        check(
            r#"level=error msg="open"#,
            Level::Info,
            r#"level=error msg="open"#,
            None,
            None,
        );
    }

    #[test]
    fn prefixed_lines() {
        check("ERROR cannot connect", Level::Error, "cannot connect", None, None);
        check("[WARN] disk 91%", Level::Warn, "disk 91%", None, None);
        check("[info] started", Level::Info, "started", None, None);
        check("DEBUG: x=1 y", Level::Debug, "x=1 y", None, None);
        check(
            "2026-12-05T10:00:02.500Z FATAL out of memory",
            Level::Error,
            "out of memory",
            None,
            Some("2026-12-05T10:00:02.500Z"),
        );
        // A lower-case word that happens to be a level is prose.
        check(
            "error handling improved",
            Level::Info,
            "error handling improved",
            None,
            None,
        );
        check("listening on :8080", Level::Info, "listening on :8080", None, None);
        check("", Level::Info, "", None, None);
        check("ERROR", Level::Error, "", None, None);
    }

    #[test]
    fn line_endings_and_bad_bytes() {
        check("WARN x\r\n", Level::Warn, "x", None, None);
        let got = parse(&bound(b"ERROR caf\xe9 \xff"));
        assert_eq!(
            (got.level, got.message.as_str()),
            (Level::Error, "caf\u{FFFD} \u{FFFD}")
        );
    }

    #[test]
    fn a_huge_line_is_cut_with_a_marker() {
        let mut raw = b"INFO ".to_vec();
        raw.extend(std::iter::repeat_n(b'a', 10 * 1024 * 1024));
        let got = parse(&bound(&raw));
        let dropped = raw.len() - MAX_LINE;
        assert_eq!(
            got.message,
            format!("{} …[truncated {dropped} bytes]", "a".repeat(MAX_LINE - 5))
        );
        // Cut inside a multi-byte character: the half is dropped, not mangled.
        let mut raw = vec![b'x'; MAX_LINE - 1];
        raw.extend("é tail".as_bytes());
        let got = parse(&bound(&raw));
        assert_eq!(
            got.message,
            format!("{} …[truncated 7 bytes]", "x".repeat(MAX_LINE - 1))
        );
    }
}
