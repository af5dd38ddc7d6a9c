//! Dotenv text: the plaintext inside each `secrets/ENV.age` file (so people
//! can write one with `age -e`) and the release's env file, which systemd's
//! `EnvironmentFile` and Rollway's exec wrapper both read.
//!
//! Accepted input: `KEY=VALUE` lines, blank lines, `#` comments, an optional
//! `export ` prefix, blanks around `=`, single-quoted literal values,
//! double-quoted values with the escapes `\"`, `\\`, `\n` (also `\r`, `\t`,
//! `\$` and `` \` ``), and unquoted values, which are trimmed and end at a `#`
//! that follows a blank. Quoted values may span lines. Rendering always
//! double-quotes and escapes `\`, `"` and newlines, so parsing what was
//! rendered gives back exactly the same entries.

use std::collections::BTreeMap;
use std::fmt;

/// One problem in dotenv text, at a 1-based line and column (in characters).
/// The message never contains the value, which may be secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

/// Every problem found in one dotenv text, optionally naming where it came
/// from (a file path) so each line reads `PATH:LINE:COL: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotenvError {
    pub origin: Option<String>,
    pub errors: Vec<ParseError>,
}

impl DotenvError {
    /// Names the file (or other source) the text came from.
    #[must_use]
    pub fn with_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }
}

impl fmt::Display for DotenvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match &self.origin {
                Some(o) => write!(f, "{o}:{e}")?,
                None => write!(f, "{e}")?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for DotenvError {}

/// Whether `key` is a valid environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses dotenv text into its entries in file order; reports every
/// malformed line at once. A key set twice is an error.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, DotenvError> {
    let mut cur = Cursor::new(text);
    let mut entries: Vec<(String, String)> = Vec::new();
    let mut first_line: BTreeMap<String, usize> = BTreeMap::new();
    let mut errors = Vec::new();
    loop {
        cur.skip_blanks();
        match cur.peek() {
            None => break,
            Some('\n') => {
                cur.bump();
                continue;
            }
            Some('\r') if matches!(cur.peek_at(1), None | Some('\n')) => {
                cur.bump();
                continue;
            }
            Some('#') => {
                cur.skip_line();
                continue;
            }
            Some(_) => {}
        }
        let (line, col) = cur.at();
        match parse_entry(&mut cur) {
            Ok((key, value)) => {
                if let Some(first) = first_line.get(&key) {
                    errors.push(ParseError {
                        line,
                        col,
                        message: format!("{key} is set twice (first on line {first}); keep one of them"),
                    });
                } else {
                    first_line.insert(key.clone(), line);
                    entries.push((key, value));
                }
            }
            Err(e) => {
                errors.push(e);
                // The rest of a broken line is skipped so the following lines are still checked.
                cur.skip_line();
            }
        }
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(DotenvError { origin: None, errors })
    }
}

fn parse_entry(cur: &mut Cursor) -> Result<(String, String), ParseError> {
    if cur.starts_with("export") && matches!(cur.peek_at(6), Some(' ' | '\t')) {
        cur.advance(6);
        cur.skip_blanks();
    }
    let (kl, kc) = cur.at();
    let mut key = String::new();
    while let Some(c) = cur.peek().filter(|c| c.is_ascii_alphanumeric() || *c == '_') {
        key.push(c);
        cur.bump();
    }
    if key.is_empty() {
        return Err(
            cur.error_here("expected a variable name (letters, digits and underscores) at the start of the line")
        );
    }
    if key.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(ParseError {
            line: kl,
            col: kc,
            // Never the text itself: a broken line may be part of a value.
            message: "a variable name must start with a letter or an underscore".into(),
        });
    }
    cur.skip_blanks();
    match cur.peek() {
        Some('=') => {
            cur.bump();
        }
        None | Some('\n' | '\r') => {
            return Err(cur.error_here(
                "expected '=' after the variable name; write NAME=VALUE (a value over several lines goes in double quotes)",
            ));
        }
        Some(_) => {
            return Err(cur.error_here(
                "expected '=' after the variable name, which may only hold letters, digits and underscores (a value over several lines goes in double quotes)",
            ));
        }
    }
    let blanks = cur.skip_blanks();
    let value = match cur.peek() {
        Some('\'') => {
            let value = single_quoted(cur)?;
            trailing(cur)?;
            value
        }
        Some('"') => {
            let value = double_quoted(cur)?;
            trailing(cur)?;
            value
        }
        _ => unquoted(cur, blanks > 0),
    };
    Ok((key, value))
}

fn single_quoted(cur: &mut Cursor) -> Result<String, ParseError> {
    let (line, col) = cur.at();
    cur.bump();
    let mut value = String::new();
    loop {
        match cur.bump() {
            None => {
                return Err(ParseError {
                    line,
                    col,
                    message: "single-quoted value is never closed; add the closing '".into(),
                });
            }
            Some('\'') => return Ok(value),
            Some(c) => value.push(c),
        }
    }
}

fn double_quoted(cur: &mut Cursor) -> Result<String, ParseError> {
    let (line, col) = cur.at();
    cur.bump();
    let mut value = String::new();
    let unclosed = || ParseError {
        line,
        col,
        message: "double-quoted value is never closed; add the closing \"".into(),
    };
    loop {
        match cur.bump() {
            None => return Err(unclosed()),
            Some('"') => return Ok(value),
            Some('\\') => {
                let (el, ec) = (cur.line, cur.col - 1);
                match cur.bump() {
                    None => return Err(unclosed()),
                    Some('n') => value.push('\n'),
                    Some('r') => value.push('\r'),
                    Some('t') => value.push('\t'),
                    Some(c @ ('"' | '\\' | '$' | '`')) => value.push(c),
                    Some(_) => {
                        return Err(ParseError {
                            line: el,
                            col: ec,
                            message: "unknown escape in a double-quoted value; the escapes are \\\", \\\\, \\n, \\r, \\t, \\$ and \\`, so write \\\\ for a backslash".into(),
                        });
                    }
                }
            }
            Some(c) => value.push(c),
        }
    }
}

/// After a closing quote only blanks and a comment may follow on the line.
fn trailing(cur: &mut Cursor) -> Result<(), ParseError> {
    cur.skip_blanks();
    match cur.peek() {
        None => Ok(()),
        Some('\n') => {
            cur.bump();
            Ok(())
        }
        Some('\r') if matches!(cur.peek_at(1), None | Some('\n')) => {
            cur.skip_line();
            Ok(())
        }
        Some('#') => {
            cur.skip_line();
            Ok(())
        }
        Some(_) => Err(cur.error_here("unexpected text after the closing quote; quote the whole value")),
    }
}

fn unquoted(cur: &mut Cursor, after_blank: bool) -> String {
    let mut value = String::new();
    let mut prev_blank = after_blank;
    while let Some(c) = cur.peek() {
        if c == '\n' || (c == '#' && prev_blank) {
            break;
        }
        prev_blank = c == ' ' || c == '\t';
        value.push(c);
        cur.bump();
    }
    cur.skip_line();
    value
        .trim_matches(|c: char| c == ' ' || c == '\t' || c == '\r')
        .to_string()
}

struct Cursor {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    col: usize,
}

impl Cursor {
    fn new(text: &str) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        Self {
            chars: text.chars().collect(),
            pos: 0,
            line: 1,
            col: 1,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    fn starts_with(&self, s: &str) -> bool {
        s.chars().enumerate().all(|(i, c)| self.peek_at(i) == Some(c))
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn advance(&mut self, n: usize) {
        for _ in 0..n {
            self.bump();
        }
    }

    fn at(&self) -> (usize, usize) {
        (self.line, self.col)
    }

    /// Skips spaces and tabs; returns how many.
    fn skip_blanks(&mut self) -> usize {
        let mut n = 0;
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
            n += 1;
        }
        n
    }

    /// Moves past the end of the current line.
    fn skip_line(&mut self) {
        while let Some(c) = self.bump() {
            if c == '\n' {
                break;
            }
        }
    }

    fn error_here(&self, message: &str) -> ParseError {
        ParseError {
            line: self.line,
            col: self.col,
            message: message.to_string(),
        }
    }
}

/// Renders entries as `KEY="VALUE"` lines: always double-quoted, with `\`,
/// `"` and newlines escaped. Keys must satisfy [`is_valid_key`].
pub fn render<K: AsRef<str>, V: AsRef<str>>(entries: &[(K, V)]) -> String {
    let mut out = String::new();
    for (key, value) in entries {
        out.push_str(key.as_ref());
        out.push_str("=\"");
        for c in value.as_ref().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push_str("\"\n");
    }
    out
}

/// The release's env file (DESIGN.md "Secrets in clear text"): the same
/// rendering, compatible with systemd's `EnvironmentFile`.
pub fn render_env_file<K: AsRef<str>, V: AsRef<str>>(entries: &[(K, V)]) -> String {
    render(entries)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    fn check(input: &str, expected: &[(&str, &str)]) {
        assert_eq!(parse(input).unwrap(), pairs(expected), "input: {input:?}");
    }

    fn check_err(input: &str, expected: &[(usize, usize, &str)]) {
        let err = parse(input).expect_err(input);
        let got: Vec<(usize, usize)> = err.errors.iter().map(|e| (e.line, e.col)).collect();
        let want: Vec<(usize, usize)> = expected.iter().map(|(l, c, _)| (*l, *c)).collect();
        assert_eq!(got, want, "input: {input:?}: {err}");
        for (e, (_, _, fragment)) in err.errors.iter().zip(expected) {
            assert!(e.message.contains(fragment), "{:?} lacks {fragment:?}", e.message);
        }
    }

    #[test]
    fn parses_the_accepted_forms() {
        check("", &[]);
        check("\n\n  \n# only a comment\n", &[]);
        check("A=1", &[("A", "1")]);
        check("A=1\nB=2\n", &[("A", "1"), ("B", "2")]);
        check("export A=1", &[("A", "1")]);
        check("export\tA=1", &[("A", "1")]);
        check("exportA=1", &[("exportA", "1")]);
        check("export=1", &[("export", "1")]);
        check("  A = spaced value  ", &[("A", "spaced value")]);
        check("A=", &[("A", "")]);
        check("A=  # just a comment", &[("A", "")]);
        check("A=abc # comment", &[("A", "abc")]);
        check("A=abc#not-a-comment", &[("A", "abc#not-a-comment")]);
        check("A=#hash-first", &[("A", "#hash-first")]);
        check("A=x=y=z", &[("A", "x=y=z")]);
        check("A='single $x \\n \"q\"'", &[("A", "single $x \\n \"q\"")]);
        check("A='a # b' # comment", &[("A", "a # b")]);
        check(r#"A="a\"b\\c\nd""#, &[("A", "a\"b\\c\nd")]);
        check(r#"A="tab\there\rcr\$x\`y""#, &[("A", "tab\there\rcr$x`y")]);
        check("A=\"multi\nline\"\nB=2", &[("A", "multi\nline"), ("B", "2")]);
        check("A='multi\nline'", &[("A", "multi\nline")]);
        check("A=1\r\nB=\"2\"\r\n", &[("A", "1"), ("B", "2")]);
        check("\u{feff}A=1", &[("A", "1")]);
        check("_X9=ünïcödé ✓", &[("_X9", "ünïcödé ✓")]);
    }

    #[test]
    fn reports_every_error_with_line_and_column() {
        check_err("=1", &[(1, 1, "expected a variable name")]);
        check_err("A", &[(1, 2, "expected '=' after the variable name")]);
        // An unquoted multi-line value: the error points at the line, never quotes it.
        check_err(
            "K=-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC/x\n-----END KEY-----\n",
            &[(2, 33, "in double quotes"), (3, 1, "expected a variable name")],
        );
        check_err("MY-KEY=1", &[(1, 3, "only hold letters")]);
        check_err("1A=x", &[(1, 1, "must start with a letter")]);
        check_err("A='open", &[(1, 3, "never closed")]);
        check_err("A=\"open\nB=2", &[(1, 3, "never closed")]);
        check_err("A=\"x\" y", &[(1, 7, "after the closing quote")]);
        check_err("A=\"a\\qb\"", &[(1, 5, "unknown escape")]);
        check_err("A=1\nA=2", &[(2, 1, "set twice (first on line 1)")]);
        check_err(
            "OK=1\n-bad\nB\n  C=\"x\" junk\nD=fine",
            &[(2, 1, "variable name"), (3, 2, "'='"), (4, 9, "closing quote")],
        );
    }

    #[test]
    fn errors_never_contain_the_value() {
        for input in [
            "A='hunter2secret",
            "A=\"hunter2secret",
            "A=\"hunter2secret\" tail",
            "A=\"hunter2\\qsecret\"",
        ] {
            let err = parse(input).unwrap_err();
            let text = err.with_origin("secrets/production.age").to_string();
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.starts_with("secrets/production.age:1:"), "{text}");
        }
    }

    #[test]
    fn keys() {
        for (key, ok) in [
            ("A", true),
            ("_", true),
            ("a_B9", true),
            ("", false),
            ("9A", false),
            ("A-B", false),
            ("Ä", false),
        ] {
            assert_eq!(is_valid_key(key), ok, "{key}");
        }
    }

    fn check_render(entries: &[(&str, &str)], expected: &str) {
        let rendered = render_env_file(entries);
        assert_eq!(rendered, expected);
        assert_eq!(parse(&rendered).unwrap(), pairs(entries), "round trip of {rendered:?}");
    }

    #[test]
    fn renders_systemd_compatible_double_quoted_lines() {
        check_render(&[], "");
        check_render(&[("A", "1")], "A=\"1\"\n");
        check_render(&[("A", "")], "A=\"\"\n");
        check_render(&[("A", "say \"hi\"")], "A=\"say \\\"hi\\\"\"\n");
        check_render(&[("A", "back\\slash")], "A=\"back\\\\slash\"\n");
        check_render(&[("A", "two\nlines")], "A=\"two\\nlines\"\n");
        check_render(&[("A", "a=b # c $HOME 'q'")], "A=\"a=b # c $HOME 'q'\"\n");
        check_render(&[("B", "x"), ("A", "y")], "B=\"x\"\nA=\"y\"\n");
    }

    #[test]
    fn round_trips_awkward_values() {
        let values = [
            "",
            " ",
            "  padded  ",
            "\"",
            "\\",
            "\\n",
            "\\\"",
            "'",
            "''",
            "=",
            "#",
            " # x",
            "\n",
            "\n\n",
            "\r\n",
            "\t",
            "line1\nline2\n",
            "ünïcödé ✓ 日本語 🚀",
            "postgres://u:p%40ss@db:5432/app?sslmode=require",
            "-----BEGIN KEY-----\nabc\n-----END KEY-----\n",
            "ends with backslash\\",
            "$VAR ${VAR} `cmd`",
        ];
        let entries: Vec<(String, String)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("K{i}"), (*v).to_string()))
            .collect();
        let text = render(&entries);
        assert_eq!(parse(&text).unwrap(), entries);
        for (i, v) in values.iter().enumerate() {
            let one = [(format!("K{i}"), (*v).to_string())];
            assert_eq!(parse(&render(&one)).unwrap(), one.to_vec(), "value {v:?}");
        }
    }

    #[test]
    fn round_trips_every_char_class() {
        // Each char from a wide sample, alone and between others, survives a round trip.
        let sample: Vec<char> = (0u32..0x250)
            .chain([0x2028, 0x2029, 0xfeff, 0x1f600])
            .filter_map(char::from_u32)
            .collect();
        let entries: Vec<(String, String)> = sample
            .iter()
            .enumerate()
            .filter(|(_, c)| **c != '\0')
            .map(|(i, c)| (format!("C{i}"), format!("{c}x{c}")))
            .collect();
        assert_eq!(parse(&render(&entries)).unwrap(), entries);
    }
}
