//! The masking filter every output passes through: each secret value, and
//! its base64 (standard, URL-safe, padded or not, at any byte alignment),
//! percent-encoded and JSON-escaped forms, becomes `****`. Streaming: a
//! secret split across chunks is still caught.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// What a masked value is replaced with.
pub const MASK: &str = "****";

/// Values shorter than this are not masked: masking two-letter words would
/// shred every output, and `secrets check` refuses such values as weak.
pub const MIN_SECRET_LEN: usize = 4;

/// Shortest run of base64 characters looked for inside a longer base64 text
/// (where only the characters that encode the secret's bits alone are known);
/// shorter runs would match ordinary text by chance. A secret of 7 bytes or
/// more gives such a run at every alignment, so it is caught inside any
/// longer base64 text; a shorter one only in its own encodings.
pub const MIN_BASE64_RUN: usize = 8;

/// A set of secret values and every form they are looked for in.
#[derive(Debug, Clone)]
pub struct Masker {
    matcher: Option<AhoCorasick>,
    longest: usize,
    patterns: usize,
}

impl Default for Masker {
    fn default() -> Self {
        Self::new(std::iter::empty::<&str>())
    }
}

impl Masker {
    /// A masker for these values (empty and very short values are ignored).
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut forms: Vec<Vec<u8>> = Vec::new();
        for s in secrets {
            let s = s.as_ref();
            if s.len() >= MIN_SECRET_LEN {
                forms.extend(encodings(s));
            }
        }
        forms.retain(|f| !f.is_empty());
        forms.sort();
        forms.dedup();
        let longest = forms.iter().map(Vec::len).max().unwrap_or(0);
        let patterns = forms.len();
        let matcher = if forms.is_empty() {
            None
        } else {
            // A contiguous NFA, never a DFA: a DFA spends a full row of
            // transitions on every pattern byte (kilobytes per byte of a
            // long secret), the NFA a few words.
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .kind(Some(AhoCorasickKind::ContiguousNFA))
                .build(&forms)
                .ok()
        };
        Self {
            matcher,
            longest,
            patterns,
        }
    }

    /// How many byte patterns are searched for.
    pub fn pattern_count(&self) -> usize {
        self.patterns
    }

    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// Masks a whole text.
    pub fn mask(&self, text: &str) -> String {
        let mut s = self.stream();
        let mut out = s.push(text.as_bytes());
        out.extend(s.finish());
        String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Masks bytes (e.g. process output that may not be UTF-8).
    pub fn mask_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        let mut s = self.stream();
        let mut out = s.push(bytes);
        out.extend(s.finish());
        out
    }

    /// Masks every string inside a JSON value.
    pub fn mask_json(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(s) => Value::String(self.mask(s)),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.mask_json(v)).collect()),
            Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (self.mask(k), self.mask_json(v))).collect()),
            other => other.clone(),
        }
    }

    /// A streaming filter over this masker.
    pub fn stream(&self) -> MaskStream<'_> {
        MaskStream {
            masker: self,
            pending: Vec::new(),
        }
    }
}

/// Masks a stream chunk by chunk, holding back just enough bytes to catch a
/// secret that straddles two chunks. Output equals `Masker::mask` of the
/// concatenated input.
#[derive(Debug)]
pub struct MaskStream<'a> {
    masker: &'a Masker,
    pending: Vec<u8>,
}

impl MaskStream<'_> {
    /// Feeds a chunk; returns what can be written out safely now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(chunk);
        self.drain(false)
    }

    /// Ends the stream; returns everything still held back, masked.
    pub fn finish(&mut self) -> Vec<u8> {
        self.drain(true)
    }

    fn drain(&mut self, last: bool) -> Vec<u8> {
        let Some(ac) = &self.masker.matcher else {
            return std::mem::take(&mut self.pending);
        };
        let mut out = Vec::with_capacity(self.pending.len());
        let mut pos = 0;
        let len = self.pending.len();
        // A match starting at `p` is final only when every pattern starting
        // at or before `p` could be seen whole: p + longest <= len.
        let decided = |p: usize| last || p + self.masker.longest <= len;
        loop {
            match ac.find(&self.pending[pos..]) {
                Some(m) if decided(pos + m.start()) => {
                    out.extend_from_slice(&self.pending[pos..pos + m.start()]);
                    out.extend_from_slice(MASK.as_bytes());
                    pos += m.end();
                }
                found => {
                    let safe_end = if last {
                        len
                    } else {
                        let undecided_from = (len + 1).saturating_sub(self.masker.longest).max(pos);
                        found.map_or(undecided_from, |m| undecided_from.min(pos + m.start()))
                    };
                    out.extend_from_slice(&self.pending[pos..safe_end]);
                    pos = safe_end;
                    break;
                }
            }
        }
        self.pending.drain(..pos);
        out
    }
}

/// Every form a secret is looked for in.
fn encodings(secret: &str) -> Vec<Vec<u8>> {
    let raw = secret.as_bytes();
    let mut forms = vec![raw.to_vec()];
    for engine in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        forms.push(engine.encode(raw).into_bytes());
    }
    // Inside a longer base64 text the secret may start at any byte offset
    // mod 3; the characters that depend only on the secret's bytes are the same
    // whatever surrounds it.
    for offset in 0..3usize {
        let mut prefixed = vec![0u8; offset];
        prefixed.extend_from_slice(raw);
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let enc = engine.encode(&prefixed);
            let first = (offset * 8).div_ceil(6);
            let last = ((offset + raw.len()) * 8) / 6;
            if last > first && last - first >= MIN_BASE64_RUN {
                forms.push(enc.as_bytes()[first..last].to_vec());
            }
        }
    }
    forms.push(percent_encode(raw, false).into_bytes());
    forms.push(percent_encode(raw, true).into_bytes());
    forms.push(percent_encode(raw, false).to_ascii_lowercase().into_bytes());
    let json = serde_json::to_string(secret).unwrap_or_default();
    forms.push(json.as_bytes()[1..json.len().saturating_sub(1).max(1)].to_vec());
    forms.push(json_ascii_escape(secret, AsciiJson::SlashAndU).into_bytes());
    forms.push(json_ascii_escape(secret, AsciiJson::Python).into_bytes());
    forms
}

/// RFC 3986 percent-encoding of everything but unreserved characters; with
/// `form`, spaces become `+` as in HTML forms.
fn percent_encode(raw: &[u8], form: bool) -> String {
    let mut s = String::with_capacity(raw.len() * 3);
    for &b in raw {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => s.push(b as char),
            b' ' if form => s.push('+'),
            _ => s.push_str(&format!("%{b:02X}")),
        }
    }
    s
}

/// The two ASCII-only JSON escapings looked for besides serde's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AsciiJson {
    /// `/` as `\/`, and every control character but `\n`, `\r`, `\t` as
    /// `\u00XX`.
    SlashAndU,
    /// Python's `json.dumps` (ensure_ascii, its default): `/` as it is, the
    /// short escapes `\b` and `\f` too — writing those two as `\u0008` and
    /// `\u000c` missed a secret holding a backspace or form feed beside a
    /// non-ASCII character (found by the `mask` fuzz target).
    Python,
}

/// JSON string escaping that also writes every non-ASCII character as
/// \uXXXX (UTF-16 units, lower-case hex, as many encoders do), without the
/// quotes.
fn json_ascii_escape(secret: &str, style: AsciiJson) -> String {
    let python = style == AsciiJson::Python;
    let mut s = String::new();
    for c in secret.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '/' if !python => s.push_str("\\/"),
            '\u{8}' if python => s.push_str("\\b"),
            '\u{c}' if python => s.push_str("\\f"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 || !c.is_ascii() => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    s.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const CANARY: &str = "canary-S3cr3t/+é\"x";

    fn check(secrets: &[&str], input: &str, expected: &str) {
        let m = Masker::new(secrets);
        assert_eq!(m.mask(input), expected, "whole");
        // Every split point gives the same answer.
        for cut in 0..=input.len() {
            let mut s = m.stream();
            let mut out = s.push(&input.as_bytes()[..cut]);
            out.extend(s.push(&input.as_bytes()[cut..]));
            out.extend(s.finish());
            assert_eq!(String::from_utf8_lossy(&out), expected, "split at {cut}");
        }
    }

    #[test]
    fn masks_plain_values() {
        check(&["hunter2hunter2"], "pw=hunter2hunter2!", "pw=****!");
        check(&["abcd"], "abcdabcd", "********");
        check(&["abc"], "abc is too short to mask", "abc is too short to mask");
        check(&[], "nothing to hide", "nothing to hide");
        check(&[""], "empty values mask nothing", "empty values mask nothing");
    }

    #[test]
    fn the_longest_overlapping_secret_wins() {
        // A password inside a URL that is itself secret: the whole URL goes.
        check(
            &["p4ssw0rd", "postgres://u:p4ssw0rd@db/x"],
            "url=postgres://u:p4ssw0rd@db/x;",
            "url=****;",
        );
        check(
            &["p4ssw0rd", "postgres://u:p4ssw0rd@db/x"],
            "only p4ssw0rd here",
            "only **** here",
        );
    }

    #[test]
    fn masks_every_encoding() {
        let m = Masker::new([CANARY]);
        let forms = [
            STANDARD.encode(CANARY),
            URL_SAFE.encode(CANARY),
            STANDARD_NO_PAD.encode(CANARY),
            URL_SAFE_NO_PAD.encode(CANARY),
            percent_encode(CANARY.as_bytes(), false),
            percent_encode(CANARY.as_bytes(), true),
            serde_json::to_string(CANARY).unwrap(),
            serde_json::to_string(&serde_json::json!({ "v": CANARY })).unwrap(),
            json_ascii_escape(CANARY, AsciiJson::SlashAndU),
            // Python's json.dumps({"v": CANARY}).
            r#"{"v": "canary-S3cr3t/+\u00e9\"x"}"#.to_owned(),
        ];
        for f in forms {
            let masked = m.mask(&format!("<{f}>"));
            assert!(!masked.contains(&f), "{f} -> {masked}");
            assert!(masked.contains(MASK), "{f} -> {masked}");
        }
    }

    #[test]
    fn masks_python_json_of_backspace_and_form_feed() {
        // json.dumps({"v": "pa\bss\x0cw\u00f6rd"}) in Python 3.
        let m = Masker::new(["pa\u{8}ss\u{c}w\u{f6}rd"]);
        assert_eq!(m.mask(r#"{"v": "pa\bss\fw\u00f6rd"}"#), r#"{"v": "****"}"#);
    }

    #[test]
    fn masks_base64_of_a_longer_text_holding_the_secret() {
        let m = Masker::new(["0123456789abcdefXYZ"]);
        for prefix in ["", "K", "KE", "KEY=", "DATABASE_PASSWORD="] {
            let enc = STANDARD.encode(format!("{prefix}0123456789abcdefXYZ\n"));
            let masked = m.mask(&enc);
            assert!(masked.contains(MASK), "{prefix}: {enc} -> {masked}");
            let decodable = masked.replace(MASK, "");
            assert!(
                decodable.len() + 16 < enc.len(),
                "{prefix}: most of it is gone: {masked}"
            );
        }
    }

    #[test]
    fn masks_json_values_and_keys() {
        let m = Masker::new(["s3cr3tvalue"]);
        let v = serde_json::json!({"a": ["x s3cr3tvalue y", 1], "s3cr3tvalue": null});
        assert_eq!(m.mask_json(&v), serde_json::json!({"a": ["x **** y", 1], "****": null}));
    }

    #[test]
    fn streaming_in_one_byte_chunks_equals_whole() {
        let m = Masker::new([CANARY, "another-secret"]);
        let text = format!("a {CANARY} b {} c another-secret d", STANDARD.encode(CANARY));
        let mut s = m.stream();
        let mut out = Vec::new();
        for b in text.as_bytes() {
            out.extend(s.push(&[*b]));
        }
        out.extend(s.finish());
        assert_eq!(String::from_utf8(out).unwrap(), m.mask(&text));
        assert_eq!(m.mask(&text), "a **** b **** c **** d");
    }
}
