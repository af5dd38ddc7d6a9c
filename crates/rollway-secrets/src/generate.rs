//! Secret values drawn from the operating system's random source: single
//! values of N random bytes and the presets, such as seed 002's Strapi set,
//! where every value carries at least 256 bits of randomness.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::{Error, Result};

/// The names `preset` accepts.
pub const PRESETS: &[&str] = &["strapi"];

/// Bytes of randomness behind every generated value (256 bits).
pub const SECRET_BYTES: usize = 32;

/// Length of a generated alphanumeric password: 44 × log2(62) ≈ 262 bits.
pub const PASSWORD_CHARS: usize = 44;

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `n` bytes from the operating system's random source.
pub fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| Error::Random(e.to_string()))?;
    Ok(buf)
}

/// The most random bytes one generated value may hold.
pub const MAX_SECRET_BYTES: usize = 4096;

/// `bytes` random bytes (at most [`MAX_SECRET_BYTES`]) as standard base64
/// (with `=` padding).
pub fn random_secret(bytes: usize) -> Result<String> {
    if bytes > MAX_SECRET_BYTES {
        return Err(Error::Random(format!(
            "{bytes} random bytes asked for one value; the most is {MAX_SECRET_BYTES}"
        )));
    }
    Ok(STANDARD.encode(random_bytes(bytes)?))
}

/// `len` characters from `[A-Za-z0-9]`, uniformly: safe in URLs, shells and
/// config files without quoting or escaping.
pub fn random_alphanumeric(len: usize) -> Result<String> {
    // Rejection sampling keeps every character equally likely: 248 = 4 × 62.
    const LIMIT: u8 = 248;
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in random_bytes(len * 2)? {
            if b < LIMIT && out.len() < len {
                out.push(char::from(ALPHANUMERIC[usize::from(b) % ALPHANUMERIC.len()]));
            }
        }
    }
    Ok(out)
}

/// The named set of variables with fresh random values, in a stable order.
pub fn preset(name: &str) -> Result<Vec<(String, String)>> {
    match name {
        "strapi" => strapi(),
        _ => Err(Error::UnknownPreset {
            name: name.to_string(),
            expected: PRESETS.join(", "),
        }),
    }
}

/// Seed 002's secret set as Strapi reads it: APP_KEYS is four
/// comma-separated keys; POSTGRES_PASSWORD is alphanumeric because it goes
/// into connection URLs.
fn strapi() -> Result<Vec<(String, String)>> {
    let app_keys = (0..4)
        .map(|_| random_secret(SECRET_BYTES))
        .collect::<Result<Vec<_>>>()?
        .join(",");
    let mut out = vec![("APP_KEYS".to_string(), app_keys)];
    for key in [
        "API_TOKEN_SALT",
        "ADMIN_JWT_SECRET",
        "TRANSFER_TOKEN_SALT",
        "JWT_SECRET",
        "ENCRYPTION_KEY",
    ] {
        out.push((key.to_string(), random_secret(SECRET_BYTES)?));
    }
    out.push(("POSTGRES_PASSWORD".to_string(), random_alphanumeric(PASSWORD_CHARS)?));
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::collections::BTreeSet;

    use super::*;
    use crate::strength;

    fn check(bytes: usize, expected_len: usize) {
        let a = random_secret(bytes).unwrap();
        assert_eq!(a.len(), expected_len, "{bytes} bytes");
        assert_eq!(STANDARD.decode(&a).unwrap().len(), bytes);
        if bytes >= 16 {
            assert_ne!(a, random_secret(bytes).unwrap(), "two draws of {bytes} bytes differ");
        }
    }

    #[test]
    fn random_secret_is_standard_base64_of_n_bytes() {
        check(0, 0);
        check(1, 4);
        check(16, 24);
        check(32, 44);
        check(33, 44);
        check(64, 88);
    }

    #[test]
    fn alphanumeric_is_alphanumeric_and_uses_the_whole_alphabet() {
        let s = random_alphanumeric(4000).unwrap();
        assert_eq!(s.len(), 4000);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        let distinct: BTreeSet<u8> = s.bytes().collect();
        // 4000 uniform draws miss one of 62 symbols with probability ~ 62·e^-64.
        assert_eq!(distinct.len(), 62);
        assert_eq!(random_alphanumeric(0).unwrap(), "");
    }

    #[test]
    fn strapi_preset_has_seven_strong_values() {
        let first = preset("strapi").unwrap();
        let keys: Vec<&str> = first.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "APP_KEYS",
                "API_TOKEN_SALT",
                "ADMIN_JWT_SECRET",
                "TRANSFER_TOKEN_SALT",
                "JWT_SECRET",
                "ENCRYPTION_KEY",
                "POSTGRES_PASSWORD"
            ]
        );
        let parts: Vec<&str> = first[0].1.split(',').collect();
        assert_eq!(parts.len(), 4);
        for part in &parts {
            assert!(
                STANDARD.decode(part).unwrap().len() >= 32,
                "APP_KEYS part carries 256 bits"
            );
        }
        assert_eq!(parts.iter().collect::<BTreeSet<_>>().len(), 4, "the four keys differ");
        for (key, value) in &first[1..6] {
            assert!(STANDARD.decode(value).unwrap().len() >= 32, "{key} carries 256 bits");
        }
        let password = &first[6].1;
        assert!(password.bytes().all(|b| b.is_ascii_alphanumeric()), "url-safe");
        assert!(password.len() as f64 * 62f64.log2() >= 256.0);
        for (key, value) in &first {
            let s = strength::assess(value);
            assert!(s.ok, "{key} fails the strength bar: {:?}", s.reasons);
        }
        let second = preset("strapi").unwrap();
        for ((key, a), (_, b)) in first.iter().zip(&second) {
            assert_ne!(a, b, "{key} differs between runs");
        }
    }

    #[test]
    fn unknown_preset_lists_the_known_ones() {
        let err = preset("rails").unwrap_err().to_string();
        assert_eq!(err, "unknown preset rails (expected one of: strapi)");
    }
}
