//! Property of the `mask` fuzz target, shared with
//! `crates/rollway-model/tests/fuzz_regressions.rs`: for arbitrary secrets
//! and arbitrary text around one of their encodings, the masked output —
//! whole ([`Masker::mask_bytes`], [`Masker::mask`]) or streamed in
//! arbitrary chunks ([`Masker::stream`]) — never contains a secret in any
//! form the README promises: raw; base64 standard and URL-safe, padded or
//! not; inside a longer base64 text at any byte alignment; percent-encoded;
//! JSON-escaped as serde writes it and as Python's `json.dumps` writes it
//! (`\uXXXX`). Streaming gives the same bytes as masking the whole text.
//!
//! The forms are computed here independently of the masker (the list of
//! `crates/rollway/tests/common/mod.rs` `secret_forms`, plus the aligned
//! runs of a longer base64 text), so a form the masker forgets is caught.
//!
//! Input layout: `[len1, len2, form, seed, secret1 (len1 % 40 bytes),
//! secret2 (len2 % 40 bytes, none when 0), before…, after…]`, the rest split
//! in two at a point chosen by `seed`; secrets are read as lossy UTF-8, as
//! every secret value is a string.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use rollway_model::Masker;
use rollway_model::mask::{MIN_BASE64_RUN, MIN_SECRET_LEN};

/// Runs one input; panics when the property does not hold.
pub fn check(data: &[u8]) {
    let Some((&[l1, l2, form, seed], rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let (secret1, rest) = take(rest, usize::from(l1) % 40);
    let (secret2, rest) = take(rest, usize::from(l2) % 40);
    let secret1 = String::from_utf8_lossy(secret1).into_owned();
    let secret2 = String::from_utf8_lossy(secret2).into_owned();
    let secrets: Vec<&str> = [secret1.as_str(), secret2.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let split = if rest.is_empty() {
        0
    } else {
        usize::from(seed) % (rest.len() + 1)
    };
    let (before, after) = rest.split_at(split);
    let planted = secrets.first().copied().unwrap_or_default();
    let text = plant(before, planted, after, form);

    let masker = Masker::new(secrets.iter().copied());
    let whole = masker.mask_bytes(&text);
    assert_eq!(
        streamed(&masker, &text, seed),
        whole,
        "streaming differs from masking the whole text"
    );
    if let Ok(s) = std::str::from_utf8(&text) {
        assert_eq!(masker.mask(s).as_bytes(), &whole[..], "mask and mask_bytes differ");
    }
    for secret in &secrets {
        if secret.len() < MIN_SECRET_LEN {
            continue;
        }
        for f in promised_forms(secret) {
            assert!(
                leaked(&whole, &f).is_none(),
                "secret {secret:?} left as {:?} in {:?}",
                String::from_utf8_lossy(&f),
                String::from_utf8_lossy(&whole)
            );
        }
    }
}

fn take(data: &[u8], n: usize) -> (&[u8], &[u8]) {
    data.split_at(n.min(data.len()))
}

/// The text: `before`, the secret in the form chosen by `form`, `after`.
fn plant(before: &[u8], secret: &str, after: &[u8], form: u8) -> Vec<u8> {
    let raw = secret.as_bytes();
    let mut out = before.to_vec();
    match form % 12 {
        0 => out.extend_from_slice(raw),
        1 => out.extend_from_slice(STANDARD.encode(raw).as_bytes()),
        2 => out.extend_from_slice(URL_SAFE.encode(raw).as_bytes()),
        3 => out.extend_from_slice(STANDARD_NO_PAD.encode(raw).as_bytes()),
        4 => out.extend_from_slice(URL_SAFE_NO_PAD.encode(raw).as_bytes()),
        5 => out.extend_from_slice(percent(raw).as_bytes()),
        6 => out.extend_from_slice(serde_json_inner(secret).as_bytes()),
        7 => out.extend_from_slice(python_json_inner(secret).as_bytes()),
        // The secret inside a longer text that is base64-encoded whole
        // (a dotenv file, a JSON document): any alignment mod 3.
        8..=11 => {
            let mut inner = before.to_vec();
            inner.extend_from_slice(raw);
            inner.extend_from_slice(after);
            let engine = [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD][usize::from(form % 12 - 8)];
            return engine.encode(inner).into_bytes();
        }
        _ => unreachable!(),
    }
    out.extend_from_slice(after);
    out
}

/// Every form the README promises to mask, computed without the masker.
fn promised_forms(secret: &str) -> Vec<Vec<u8>> {
    let raw = secret.as_bytes();
    let mut forms: Vec<Vec<u8>> = vec![raw.to_vec()];
    for engine in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        forms.push(engine.encode(raw).into_bytes());
    }
    // Inside a longer base64 text, the characters that encode only bits of
    // the secret, for each alignment; the masker documents the shortest run
    // it looks for.
    for offset in 0..3usize {
        let mut padded = vec![0u8; offset];
        padded.extend_from_slice(raw);
        padded.extend_from_slice(&[0, 0, 0]);
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let enc = engine.encode(&padded);
            let first = (offset * 8).div_ceil(6);
            let last = (offset + raw.len()) * 8 / 6;
            if last >= first + MIN_BASE64_RUN {
                forms.push(enc.as_bytes()[first..last].to_vec());
            }
        }
    }
    forms.push(percent(raw).into_bytes());
    forms.push(serde_json_inner(secret).into_bytes());
    forms.push(python_json_inner(secret).into_bytes());
    forms.sort();
    forms.dedup();
    forms
}

/// RFC 3986 percent-encoding: everything but unreserved characters, upper-case hex.
fn percent(raw: &[u8]) -> String {
    raw.iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// serde_json's string escaping, without the quotes.
fn serde_json_inner(secret: &str) -> String {
    let json = serde_json::to_string(secret).unwrap_or_default();
    json.get(1..json.len().saturating_sub(1)).unwrap_or_default().to_owned()
}

/// Python's `json.dumps` (ensure_ascii, the default), without the quotes:
/// short escapes for `"`, `\`, `\b`, `\f`, `\n`, `\r`, `\t`; other controls
/// and every non-ASCII character as lower-case `\uXXXX` (UTF-16 units);
/// `/` and DEL as they are.
fn python_json_inner(secret: &str) -> String {
    let mut s = String::new();
    for c in secret.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\u{8}' => s.push_str("\\b"),
            '\u{c}' => s.push_str("\\f"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if u32::from(c) < 0x20 || !c.is_ascii() => {
                for unit in c.encode_utf16(&mut [0u16; 2]) {
                    s.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => s.push(c),
        }
    }
    s
}

/// The text pushed through a stream in chunks whose sizes come from `seed`.
fn streamed(masker: &Masker, text: &[u8], seed: u8) -> Vec<u8> {
    let mut state = u32::from(seed) | 0x100;
    let mut stream = masker.stream();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        // xorshift: cheap, deterministic chunk sizes from 0 to 40 bytes.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state % 41) as usize;
        let end = (pos + n).min(text.len());
        out.extend(stream.push(&text[pos..end]));
        pos = end;
    }
    out.extend(stream.finish());
    out
}

/// Where `form` occurs in `out` other than by overlapping a mask. A form
/// holding `*` can seem to re-form from a mask's `*`s and the text beside
/// it (secret `*abc`, text `*abcabc` masks to `****abc`); those `*`s are the
/// mask's, so nothing of the secret is shown, and such an occurrence is not
/// a leak. Every other occurrence is.
fn leaked(out: &[u8], form: &[u8]) -> Option<usize> {
    if form.is_empty() || form.len() > out.len() {
        return None;
    }
    let mask = rollway_model::MASK.as_bytes();
    (0..=out.len() - form.len()).find(|&at| {
        &out[at..at + form.len()] == form
            && !(form.contains(&b'*')
                && (at.saturating_sub(mask.len() - 1)..at + form.len())
                    .any(|m| out.get(m..m + mask.len()) == Some(mask)))
    })
}
