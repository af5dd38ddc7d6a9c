//! The `format` a variable's value must have (rollway.toml `[variables.KEY]
//! format`): a regular expression or a preset — `uuid`, `hex:N`, `base64:N`.
//! The config parses specs with it and [`super::variable::validate_value`]
//! matches values with it, so a spec means the same thing everywhere.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// A parsed `format` spec.
#[derive(Debug, Clone)]
pub enum Format {
    /// `uuid`: 8-4-4-4-12 hex digits, either case.
    Uuid,
    /// `hex:N`: hex digits, either case, encoding exactly N bytes (2N digits).
    Hex(usize),
    /// `base64:N`: standard or URL-safe base64, padded or not, of exactly N bytes.
    Base64(usize),
    /// Any other spec: a regular expression, matched as written — it is not
    /// anchored for you, so write `^…$` to constrain the whole value.
    Regex(regex::Regex),
}

impl Format {
    /// Parses a spec. The error is a lowercase phrase that quotes the spec
    /// (never a value) and says what is wrong with it.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let count = |rest: &str, prefix: &str| -> Result<usize, String> {
            match rest.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!(
                    "'{spec}' needs a positive byte count after '{prefix}', e.g. {prefix}32"
                )),
            }
        };
        if spec == "uuid" {
            Ok(Format::Uuid)
        } else if let Some(rest) = spec.strip_prefix("hex:") {
            count(rest, "hex:").map(Format::Hex)
        } else if let Some(rest) = spec.strip_prefix("base64:") {
            count(rest, "base64:").map(Format::Base64)
        } else if spec.is_empty() {
            Err("the format is empty, which would accept any value".into())
        } else {
            regex::Regex::new(spec)
                .map(Format::Regex)
                .map_err(|e| format!("'{spec}' is not a valid regex: {}", regex_problem(&e)))
        }
    }

    /// Whether `value` has this format.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Format::Uuid => {
                value.len() == 36
                    && value.char_indices().all(|(i, c)| {
                        if matches!(i, 8 | 13 | 18 | 23) {
                            c == '-'
                        } else {
                            c.is_ascii_hexdigit()
                        }
                    })
            }
            Format::Hex(n) => n.checked_mul(2) == Some(value.len()) && value.bytes().all(|b| b.is_ascii_hexdigit()),
            Format::Base64(n) => [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                .iter()
                .any(|engine| engine.decode(value).is_ok_and(|bytes| bytes.len() == *n)),
            Format::Regex(re) => re.is_match(value),
        }
    }

    /// What a matching value looks like, for messages.
    pub fn describe(&self) -> String {
        match self {
            Format::Uuid => "a uuid".into(),
            Format::Hex(n) => format!("{} hex characters ({n} bytes)", n.saturating_mul(2)),
            Format::Base64(n) => format!("base64 of {n} bytes"),
            Format::Regex(re) => format!("the pattern {}", re.as_str()),
        }
    }
}

/// Checks a `format` spec so the config can reject a bad regex or preset
/// where it is written.
pub fn validate_format_spec(format: &str) -> Result<(), String> {
    Format::parse(format).map(|_| ())
}

/// The one-line reason inside the regex crate's multi-line error report.
fn regex_problem(e: &regex::Error) -> String {
    let text = e.to_string();
    let detail = text
        .lines()
        .find_map(|l| l.strip_prefix("error: "))
        .map_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "), str::to_string);
    let mut chars = detail.chars();
    chars
        .next()
        .map(|first| first.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// `Ok(())` when the spec parses; `Err(fragment)` for a one-line,
    /// lowercase error that contains `fragment`.
    fn check_spec(spec: &str, expected: Result<(), &str>) {
        match (validate_format_spec(spec), expected) {
            (Ok(()), Ok(())) => {}
            (Err(e), Err(fragment)) => {
                assert!(e.contains(fragment), "{spec}: {e:?} lacks {fragment:?}");
                assert!(!e.contains('\n'), "one line: {e:?}");
                assert!(!e.starts_with(char::is_uppercase), "lowercase: {e:?}");
            }
            (got, want) => panic!("{spec}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn specs() {
        check_spec("uuid", Ok(()));
        check_spec("hex:64", Ok(()));
        check_spec("base64:32", Ok(()));
        check_spec("^sk-[A-Za-z0-9]{20,}$", Ok(()));
        check_spec(
            "hex:0",
            Err("'hex:0' needs a positive byte count after 'hex:', e.g. hex:32"),
        );
        check_spec("hex:x", Err("needs a positive byte count"));
        check_spec("base64:", Err("'base64:' needs a positive byte count after 'base64:'"));
        check_spec("", Err("the format is empty"));
        check_spec("^[a-z", Err("'^[a-z' is not a valid regex: unclosed character class"));
        check_spec("([a-z]", Err("'([a-z]' is not a valid regex: unclosed group"));
        check_spec("(?P<x", Err("is not a valid regex"));
        check_spec("a{9999999}", Err("is not a valid regex"));
    }

    /// Each value in `good` matches `spec`, each in `bad` does not.
    fn check(spec: &str, good: &[&str], bad: &[&str]) {
        let format = Format::parse(spec).unwrap();
        for v in good {
            assert!(format.matches(v), "{spec} should match {v:?}");
        }
        for v in bad {
            assert!(!format.matches(v), "{spec} should not match {v:?}");
        }
    }

    #[test]
    fn matching() {
        check(
            "uuid",
            &[
                "0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b",
                "0190A5B2-7C3D-7E4F-8A9B-0C1D2E3F4A5B",
            ],
            &[
                "0190a5b2_7c3d_7e4f_8a9b_0c1d2e3f4a5b",
                "0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5",
                "",
            ],
        );
        check(
            "hex:4",
            &["DEADbeef", "00000000"],
            &["deadbeefcafe", "deadbee", "deadbeeg", ""],
        );
        check(
            "base64:4",
            &["AQIDBA==", "AQIDBA", "-_-_-w", "+/+/+w=="],
            &["AQIDBAU=", "AQID", "not base64!", ""],
        );
        check(
            "^[A-Za-z0-9]{40}$",
            &["aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5hJ7k"],
            &["too-short-and-has-dashes", "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5hJ7k!"],
        );
        // Matched as written: an unanchored pattern matches anywhere.
        check("[0-9]", &["unanchored 7 matches"], &["no digits here"]);
    }

    #[test]
    fn descriptions() {
        for (spec, want) in [
            ("uuid", "a uuid"),
            ("hex:4", "8 hex characters (4 bytes)"),
            ("base64:32", "base64 of 32 bytes"),
            ("^sk-[a-z]+$", "the pattern ^sk-[a-z]+$"),
        ] {
            assert_eq!(Format::parse(spec).unwrap().describe(), want, "{spec}");
        }
    }
}
