//! The bar a hand-set secret must clear (seed 002: every secret a strong
//! random value). [`super::variable::validate_value`] refuses a production
//! secret below it unless the variable is marked `allow_weak` (`--allow-weak`).
//!
//! A value passes when all of these hold:
//! - it is at least [`MIN_LENGTH`] (16) characters long;
//! - it is not a well-known weak or placeholder value (`password`,
//!   `changeme`, `secret`, `admin`, `123456`, `qwerty`, `letmein`, `default`,
//!   `example`, `test`, `tobemodified`, …), compared case-insensitively,
//!   ignoring punctuation, common letter-for-digit swaps (`p@ssw0rd`) and
//!   digits at either end (`password123`);
//! - it is not one character repeated, nor one ascending or descending run
//!   (`abcdef…`, `98765…`);
//! - its estimated entropy is at least [`MIN_ENTROPY_BITS`] (64) bits.
//!
//! The estimate is `effective length × log2(pool)`. The pool adds up the
//! character classes present: lowercase 26, uppercase 26, digits 10, ASCII
//! punctuation and space 33, anything else 100. The effective length counts
//! characters, except that each of these counts as one: a repeat of three or
//! more characters seen earlier (`abcabc`, `aaaa`), a run of three or more
//! with a constant step of one (`abc`, `4321`), four or more characters
//! along a keyboard row (`qwer`, `asdf`), and a weak word of four or more
//! letters. So `correct-horse-battery-staple` passes and
//! `toBeModified1,toBeModified2` does not. Only the first 1024 characters
//! are analysed; longer values are measured on that prefix.

use serde::Serialize;

/// Shortest acceptable hand-set secret, in characters.
pub const MIN_LENGTH: usize = 16;

/// Least acceptable estimated entropy, in bits.
pub const MIN_ENTROPY_BITS: f64 = 64.0;

const ANALYSED_CHARS: usize = 1024;

/// Well-known weak, default and placeholder values (lowercase, letters and digits only).
const WEAK: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "changeme",
    "changeit",
    "changethis",
    "secret",
    "secretkey",
    "mysecret",
    "supersecret",
    "topsecret",
    "jwtsecret",
    "yoursecret",
    "yoursecretkey",
    "admin",
    "administrator",
    "root",
    "toor",
    "123456",
    "1234567",
    "12345678",
    "123456789",
    "1234567890",
    "111111",
    "000000",
    "654321",
    "qwerty",
    "qwertyuiop",
    "asdfgh",
    "qazwsx",
    "zxcvbn",
    "letmein",
    "default",
    "example",
    "test",
    "testing",
    "welcome",
    "iloveyou",
    "monkey",
    "dragon",
    "master",
    "abc123",
    "trustno1",
    "sunshine",
    "football",
    "baseball",
    "login",
    "guest",
    "user",
    "postgres",
    "postgresql",
    "strapi",
    "token",
    "apikey",
    "tobemodified",
    "placeholder",
    "dummy",
    "sample",
    "demo",
    "foobar",
    "hunter2",
    "xxxxxx",
    "todo",
    "none",
    "null",
    "undefined",
];

/// Keyboard rows; four or more keys along one, either way, count as one character.
const ROWS: &[&str] = &[
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "1234567890",
    "!@#$%^&*()",
    "1qaz2wsx3edc",
];

/// The verdict on one value. `reasons` are lowercase phrases completing
/// "the value …"; they never quote the value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Strength {
    pub ok: bool,
    pub reasons: Vec<String>,
    pub entropy_bits: f64,
}

/// Measures `value` against the bar described in the module documentation.
pub fn assess(value: &str) -> Strength {
    let chars: Vec<char> = value.chars().collect();
    let mut reasons = Vec::new();
    if chars.is_empty() {
        reasons.push("is empty".to_string());
    } else if chars.len() < MIN_LENGTH {
        reasons.push(format!("is shorter than {MIN_LENGTH} characters"));
    }
    if is_weak_value(value) {
        reasons.push("is a well-known weak or placeholder value".to_string());
    } else if chars.len() >= 2 && chars.iter().all(|c| *c == chars[0]) {
        reasons.push("is one character repeated".to_string());
    } else if chars.len() >= 3 && run_length(&chars, 0) == chars.len() {
        reasons.push("is an ascending or descending run of characters".to_string());
    }
    let entropy_bits = estimate_entropy(&chars[..chars.len().min(ANALYSED_CHARS)]);
    if !chars.is_empty() && entropy_bits < MIN_ENTROPY_BITS {
        reasons.push(format!(
            "has an estimated entropy of {entropy_bits:.0} bits, below the {MIN_ENTROPY_BITS:.0} required"
        ));
    }
    Strength {
        ok: reasons.is_empty(),
        reasons,
        entropy_bits,
    }
}

/// Lowercase, with common substitutions undone (`@`→a, `0`→o, …) when `leet`.
fn normalise(value: &str, leet: bool) -> String {
    value
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| match (leet, c) {
            (true, '@' | '4') => 'a',
            (true, '0') => 'o',
            (true, '1' | '!') => 'i',
            (true, '3') => 'e',
            (true, '$' | '5') => 's',
            (true, '7') => 't',
            _ => c,
        })
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

fn is_weak_value(value: &str) -> bool {
    [normalise(value, false), normalise(value, true)].iter().any(|n| {
        let digits = |c: char| c.is_ascii_digit();
        [
            n.as_str(),
            n.trim_end_matches(digits),
            n.trim_start_matches(digits),
            n.trim_matches(digits),
        ]
        .iter()
        .any(|candidate| !candidate.is_empty() && WEAK.contains(candidate))
    })
}

fn pool_size(chars: &[char]) -> f64 {
    let has = |f: fn(&char) -> bool| chars.iter().any(f);
    let mut pool = 0.0;
    if has(char::is_ascii_lowercase) {
        pool += 26.0;
    }
    if has(char::is_ascii_uppercase) {
        pool += 26.0;
    }
    if has(char::is_ascii_digit) {
        pool += 10.0;
    }
    if has(|c| c.is_ascii_punctuation() || *c == ' ') {
        pool += 33.0;
    }
    if has(|c| !c.is_ascii() || c.is_ascii_control()) {
        pool += 100.0;
    }
    pool
}

fn estimate_entropy(chars: &[char]) -> f64 {
    if chars.is_empty() {
        return 0.0;
    }
    let lower: Vec<char> = chars.iter().flat_map(|c| c.to_lowercase().next()).collect();
    let mut effective = 0.0;
    let mut i = 0;
    while i < chars.len() {
        let span = [
            repeat_length(chars, i),
            run_length(chars, i),
            row_length(&lower, i),
            word_length(&lower, i),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        effective += 1.0;
        i += span.max(1);
    }
    effective * pool_size(chars).log2()
}

/// Longest earlier occurrence (overlap allowed) of the text at `i`, if ≥ 3.
fn repeat_length(chars: &[char], i: usize) -> usize {
    let mut best = 0;
    for j in 0..i {
        let mut l = 0;
        while i + l < chars.len() && chars[j + l] == chars[i + l] {
            l += 1;
        }
        best = best.max(l);
    }
    if best >= 3 { best } else { 0 }
}

/// Length of the constant ±1 step run starting at `i`, if ≥ 3.
fn run_length(chars: &[char], i: usize) -> usize {
    let step = |a: char, b: char| i64::from(u32::from(b)) - i64::from(u32::from(a));
    if i + 1 >= chars.len() {
        return 0;
    }
    let d = step(chars[i], chars[i + 1]);
    if d.abs() != 1 {
        return 0;
    }
    let mut l = 2;
    while i + l < chars.len() && step(chars[i + l - 1], chars[i + l]) == d {
        l += 1;
    }
    if l >= 3 { l } else { 0 }
}

/// Longest stretch at `i` along a keyboard row, either way, if ≥ 4.
fn row_length(lower: &[char], i: usize) -> usize {
    let max = (lower.len() - i).min(12);
    for l in (4..=max).rev() {
        let s: String = lower[i..i + l].iter().collect();
        let r: String = s.chars().rev().collect();
        if ROWS.iter().any(|row| row.contains(&s) || row.contains(&r)) {
            return l;
        }
    }
    0
}

/// Longest weak word of four or more letters starting at `i`.
fn word_length(lower: &[char], i: usize) -> usize {
    WEAK.iter()
        .filter(|w| w.len() >= 4 && w.len() <= lower.len() - i)
        .filter(|w| w.chars().zip(&lower[i..]).all(|(a, b)| a == *b))
        .map(|w| w.len())
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use sha2::{Digest, Sha256};

    use super::*;

    /// `reasons` are fragments that must each appear in some reason; an empty
    /// list means the value must pass.
    fn check(value: &str, reasons: &[&str]) {
        let s = assess(value);
        assert_eq!(s.ok, reasons.is_empty(), "{value:?}: {s:?}");
        assert_eq!(s.reasons.len(), reasons.len(), "{value:?}: {:?}", s.reasons);
        for fragment in reasons {
            assert!(
                s.reasons.iter().any(|r| r.contains(fragment)),
                "{value:?}: {:?} lacks {fragment:?}",
                s.reasons
            );
        }
        for r in &s.reasons {
            assert!(value.len() < 4 || !r.contains(value), "a reason quotes the value: {r}");
            assert_eq!(r.to_lowercase(), *r, "reasons are lowercase");
        }
    }

    /// `n` bytes that look random (a SHA-256 chain over `seed`), as standard
    /// base64 — the shape `rollway secrets generate` produces. The model has
    /// no random source; the secrets crate tests the real generator.
    fn random_like(seed: &str, n: usize) -> String {
        let mut bytes = Vec::with_capacity(n + 32);
        let mut block = Sha256::digest(seed.as_bytes());
        while bytes.len() < n {
            bytes.extend_from_slice(&block);
            block = Sha256::digest(block);
        }
        bytes.truncate(n);
        STANDARD.encode(bytes)
    }

    const SHORT: &str = "shorter than 16";
    const WEAK_VALUE: &str = "well-known weak";
    const ENTROPY: &str = "estimated entropy";

    #[test]
    fn the_bar() {
        check("", &["is empty"]);
        check("password", &[SHORT, WEAK_VALUE, ENTROPY]);
        check("PASSWORD", &[SHORT, WEAK_VALUE, ENTROPY]);
        check("P@ssw0rd", &[SHORT, WEAK_VALUE, ENTROPY]);
        check("changeme", &[SHORT, WEAK_VALUE, ENTROPY]);
        check("Password123456789", &[WEAK_VALUE, ENTROPY]);
        check("123456789012345678", &[ENTROPY]);
        check("123456", &[SHORT, WEAK_VALUE, ENTROPY]);
        check("__default__2024__", &[WEAK_VALUE]);
        check("letmein!letmein!", &[ENTROPY]);
        check("aaaaaaaaaaaaaaaaaaaa", &["one character repeated", ENTROPY]);
        check("abcdefghijklmnopqrstuvwxyz", &["ascending or descending run", ENTROPY]);
        check("zyxwvutsrqponmlk", &["ascending or descending run", ENTROPY]);
        check("9876543210", &[SHORT, "ascending or descending run", ENTROPY]);
        check("toBeModified1,toBeModified2", &[ENTROPY]);
        check("abcabcabcabcabcabc", &[ENTROPY]);
        check("abcdefghabcdefgh", &[ENTROPY]);
        check("qwertyuiopasdfghjkl", &[ENTROPY]);
        check("zxcvbnmasdfghjkl", &[ENTROPY]);
        check("MyPassword2024!!", &[ENTROPY]);
        check("kX9#mQ2$vL7@nR4", &[SHORT]);
        check("kX9#mQ2$vL7@nR4!", &[]);
        check("xK3mQ9vL2nR7pT5w", &[]);
        check("correct-horse-battery-staple", &[]);
        check("ünïcödé-ĉĥàŕš-ŵőŗķ", &[]);
        check("deadbeefcafe0b1e57ab2e19a4c3d8f1", &[]);
    }

    #[test]
    fn random_looking_values_pass() {
        for bytes in [16, 32, 64] {
            let v = random_like("the bar", bytes);
            let s = assess(&v);
            assert!(s.ok, "{bytes} bytes: {s:?}");
            assert!(
                s.entropy_bits >= 8.0 * bytes as f64 * 0.7,
                "{bytes} bytes: {}",
                s.entropy_bits
            );
        }
    }

    #[test]
    fn entropy_falls_with_repetition_and_grows_with_classes() {
        let e = |v: &str| assess(v).entropy_bits;
        assert!(e("abababababababab") < e("abqzmxncbvlkpoiu"));
        assert!(e("kx9mq2vl7nr4pt5w") < e("kX9mQ2vL7nR4pT5w"));
        assert!(e("kX9mQ2vL7nR4pT5w") < e("kX9#mQ2$vL7@nR4!"));
        assert_eq!(e(""), 0.0);
        // Only a prefix is analysed, so a huge value is still quick and strong.
        let long = random_like("long", 100_000);
        assert!(assess(&long).ok);
        assert!(!assess(&"x".repeat(100_000)).ok);
    }
}
