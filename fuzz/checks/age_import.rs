//! Property of the `age_import` fuzz target, shared with
//! `crates/rollway-secrets/tests/fuzz_regressions.rs`: what `rollway
//! secrets import FILE` does with a file's bytes — an age file (armored or
//! binary) is decrypted with a fixed test identity, anything else is read
//! as dotenv — never panics, and whatever decrypts meets the dotenv
//! property of `dotenv.rs`. The seeds hold files encrypted to this
//! identity, so mutations reach the header, the armor and the payload.

use std::sync::OnceLock;

use rollway_secrets::{Identity, decrypt, load_identities};

/// The fixed identity of the fuzz corpora. It protects nothing: it is public
/// so that the seed files can be decrypted by anyone who runs the target.
pub const TEST_IDENTITY: &str = "AGE-SECRET-KEY-1JZS3V8V5UF0S5484F9N6MLZQPATJEX4CELVZ5KL9GTDGGU6PKWQQZ09G7R";

/// The identity, loaded once through the same public loader the CLI uses
/// (which only reads files, hence the temporary one).
pub fn identities() -> &'static [Identity] {
    static IDS: OnceLock<Vec<Identity>> = OnceLock::new();
    IDS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("identity.txt");
        std::fs::write(&path, format!("# rollway fuzz test identity\n{TEST_IDENTITY}\n")).expect("write identity");
        load_identities(&path).expect("the test identity loads")
    })
}

/// Runs one input; panics when the property does not hold.
pub fn check(data: &[u8]) {
    // The same test as `secrets import`: leading whitespace, then either header.
    let start = data.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(data.len());
    let head = &data[start..];
    let encrypted = head.starts_with(b"age-encryption.org/") || head.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----");
    if !encrypted {
        super::dotenv::check(data);
        return;
    }
    match decrypt(data, identities()) {
        Ok(plain) => super::dotenv::check(&plain),
        Err(e) => {
            let _ = e.to_string();
        }
    }
}
