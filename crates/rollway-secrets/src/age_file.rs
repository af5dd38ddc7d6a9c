//! age encryption of the `secrets/ENV.age` files: recipients (`age1…`,
//! `ssh-ed25519 …`, `ssh-rsa …`), identities loaded from an age identity file
//! or an unencrypted OpenSSH key, and armored output that Debian's `age` CLI
//! reads and writes.

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use age::secrecy::ExposeSecret;
use rollway_model::Timestamp;

use crate::{Error, Result, dotenv};

/// A public key the secrets files are encrypted to.
#[derive(Clone)]
pub struct Recipient {
    key: RecipientKey,
    comment: Option<String>,
}

#[derive(Clone)]
enum RecipientKey {
    X25519(age::x25519::Recipient),
    Ssh(age::ssh::Recipient),
}

impl Recipient {
    /// The key without its comment: `age1…` or `ssh-ed25519 AAAA…`.
    pub fn key_text(&self) -> String {
        match &self.key {
            RecipientKey::X25519(r) => r.to_string(),
            RecipientKey::Ssh(r) => r.to_string(),
        }
    }

    /// The comment after an ssh key (often `user@host`), if any.
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    pub fn is_ssh(&self) -> bool {
        matches!(self.key, RecipientKey::Ssh(_))
    }

    fn as_age(&self) -> &dyn age::Recipient {
        match &self.key {
            RecipientKey::X25519(r) => r,
            RecipientKey::Ssh(r) => r,
        }
    }
}

impl FromStr for Recipient {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let invalid = |shown: &str, reason: String| Error::Recipient {
            shown: shown.to_string(),
            reason,
        };
        if s.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-") {
            // Never echo a secret key back, not even in an error.
            return Err(invalid(
                "(a secret key)",
                "this is a secret key and must not be shared or put in the config; give its public key instead (age1…, printed by `age-keygen -y FILE`)".into(),
            ));
        }
        let mut words = s.split_whitespace();
        let first = words.next().unwrap_or("");
        if first.starts_with("age1") {
            if words.next().is_some() {
                return Err(invalid(
                    first,
                    "unexpected text after an age1… recipient; remove it".into(),
                ));
            }
            return match age::x25519::Recipient::from_str(first) {
                Ok(r) => Ok(Recipient {
                    key: RecipientKey::X25519(r),
                    comment: None,
                }),
                Err(e) => Err(invalid(
                    first,
                    format!("not a valid X25519 age recipient ({e}); copy it again from `age-keygen -y FILE`"),
                )),
            };
        }
        if first.starts_with("ssh-") || first.starts_with("ecdsa-") || first.starts_with("sk-") {
            let Some(data) = words.next() else {
                return Err(invalid(
                    first,
                    "the key data is missing; paste the whole line of the .pub file".into(),
                ));
            };
            let comment: Vec<&str> = words.collect();
            let comment = (!comment.is_empty()).then(|| comment.join(" "));
            let shown = format!("{first} {}", abbreviate(data));
            return match age::ssh::Recipient::from_str(&format!("{first} {data}")) {
                Ok(r) => Ok(Recipient {
                    key: RecipientKey::Ssh(r),
                    comment,
                }),
                Err(age::ssh::ParseRecipientKeyError::Unsupported(kind)) => Err(invalid(
                    &shown,
                    format!("unsupported ssh key type {kind}; use an ssh-ed25519 or ssh-rsa key or an age1… recipient"),
                )),
                Err(age::ssh::ParseRecipientKeyError::RsaModulusTooSmall) => Err(invalid(
                    &shown,
                    "the rsa key is shorter than 2048 bits; use a stronger key".into(),
                )),
                Err(age::ssh::ParseRecipientKeyError::RsaModulusTooLarge) => Err(invalid(
                    &shown,
                    "the rsa key is longer than 4096 bits, which age does not support".into(),
                )),
                Err(_) => Err(invalid(
                    &shown,
                    if first == "ssh-ed25519" || first == "ssh-rsa" {
                        "not a valid ssh public key; paste the whole line of the .pub file".into()
                    } else {
                        format!(
                            "unsupported ssh key type {first}; use an ssh-ed25519 or ssh-rsa key or an age1… recipient"
                        )
                    },
                )),
            };
        }
        Err(invalid(
            "entry",
            "expected an age recipient (age1…) or an ssh public key (ssh-ed25519 AAAA… or ssh-rsa AAAA…)".into(),
        ))
    }
}

fn abbreviate(data: &str) -> String {
    match data.char_indices().nth(12) {
        Some((i, _)) => format!("{}…", &data[..i]),
        None => data.to_string(),
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key_text())?;
        if let Some(c) = &self.comment {
            write!(f, " {c}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipient({self})")
    }
}

/// Two recipients are equal when their keys are; comments do not matter.
impl PartialEq for Recipient {
    fn eq(&self, other: &Self) -> bool {
        self.key_text() == other.key_text()
    }
}

impl Eq for Recipient {}

/// A private key that opens secrets files: an age X25519 identity or an
/// unencrypted OpenSSH key. Its `Debug` shows only the public recipient.
#[derive(Clone)]
pub struct Identity {
    key: IdentityKey,
    recipient: Recipient,
}

#[derive(Clone)]
enum IdentityKey {
    X25519(age::x25519::Identity),
    Ssh(age::ssh::Identity),
}

impl Identity {
    /// A new X25519 identity from the operating system's random source.
    pub fn generate() -> Self {
        Self::from_x25519(age::x25519::Identity::generate())
    }

    fn from_x25519(key: age::x25519::Identity) -> Self {
        let recipient = Recipient {
            key: RecipientKey::X25519(key.to_public()),
            comment: None,
        };
        Self {
            key: IdentityKey::X25519(key),
            recipient,
        }
    }

    /// The public key that files must be encrypted to for this identity to open them.
    pub fn recipient(&self) -> Recipient {
        self.recipient.clone()
    }

    pub fn is_ssh(&self) -> bool {
        matches!(self.key, IdentityKey::Ssh(_))
    }

    /// Loads the one identity in `path` (see [`load_identities`]).
    pub fn from_file(path: &Path) -> Result<Self> {
        let mut all = load_identities(path)?;
        match all.len() {
            1 => Ok(all.remove(0)),
            count => Err(Error::SeveralIdentities {
                path: path.to_path_buf(),
                count,
            }),
        }
    }

    /// The text of an age identity file, in `age-keygen`'s layout: a
    /// `# created:` and a `# public key:` comment, then the secret key line.
    pub fn to_file_text(&self, created: Timestamp) -> Result<String> {
        match &self.key {
            IdentityKey::X25519(k) => Ok(format!(
                "# created: {}\n# public key: {}\n{}\n",
                created.to_rfc3339(),
                self.recipient.key_text(),
                k.to_string().expose_secret()
            )),
            IdentityKey::Ssh(_) => Err(Error::NotAnAgeIdentity),
        }
    }

    fn as_age(&self) -> &dyn age::Identity {
        match &self.key {
            IdentityKey::X25519(k) => k,
            IdentityKey::Ssh(k) => k,
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity(recipient: {})", self.recipient)
    }
}

/// Loads every identity in an identity file: either an age identity file
/// (`AGE-SECRET-KEY-1…` lines, `#` comments and blank lines) or an
/// unencrypted OpenSSH private key. Errors name the file and line and never
/// quote its contents.
pub fn load_identities(path: &Path) -> Result<Vec<Identity>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::IdentityMissing {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(Error::io("read identity file", path, e)),
    };
    let text = String::from_utf8(bytes).map_err(|_| Error::InvalidIdentity {
        path: path.to_path_buf(),
        reason: "it is not a text file".into(),
    })?;
    if text.trim_start().starts_with("-----BEGIN") {
        return load_ssh_identity(path, &text).map(|i| vec![i]);
    }
    let mut identities = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |reason: &str| Error::IdentityFile {
            path: path.to_path_buf(),
            line: i + 1,
            reason: reason.to_string(),
        };
        if ["ssh-", "ecdsa-", "sk-", "age1"].iter().any(|p| line.starts_with(p)) {
            return Err(Error::PublicKeyAsIdentity {
                path: path.to_path_buf(),
            });
        }
        if line.starts_with("AGE-PLUGIN-") {
            return Err(at(
                "plugin identities are not supported; use a plain age identity (age-keygen)",
            ));
        }
        match age::x25519::Identity::from_str(line) {
            Ok(k) => identities.push(Identity::from_x25519(k)),
            Err(_) => return Err(at("not an age identity; expected AGE-SECRET-KEY-1… or a # comment")),
        }
    }
    if identities.is_empty() {
        return Err(Error::NoIdentity {
            path: path.to_path_buf(),
        });
    }
    Ok(identities)
}

fn load_ssh_identity(path: &Path, text: &str) -> Result<Identity> {
    use age::ssh::{Identity as Ssh, UnsupportedKey};
    let parsed =
        Ssh::from_buffer(text.as_bytes(), Some(path.display().to_string())).map_err(|_| Error::InvalidIdentity {
            path: path.to_path_buf(),
            reason: "not a valid OpenSSH private key".into(),
        })?;
    match &parsed {
        Ssh::Unencrypted(_) => {}
        Ssh::Encrypted(_) | Ssh::Unsupported(UnsupportedKey::EncryptedPem | UnsupportedKey::EncryptedSsh(_)) => {
            return Err(Error::EncryptedSshKey {
                path: path.to_path_buf(),
            });
        }
        Ssh::Unsupported(UnsupportedKey::Hardware(kind) | UnsupportedKey::Type(kind)) => {
            return Err(Error::UnsupportedSshKey {
                path: path.to_path_buf(),
                kind: kind.clone(),
            });
        }
    }
    let public = age::ssh::Recipient::try_from(parsed.clone()).map_err(|_| Error::InvalidIdentity {
        path: path.to_path_buf(),
        reason: "its public key cannot be derived".into(),
    })?;
    Ok(Identity {
        key: IdentityKey::Ssh(parsed),
        recipient: Recipient {
            key: RecipientKey::Ssh(public),
            comment: None,
        },
    })
}

/// Where the local identity lives: `ROLLWAY_IDENTITY` if set, else
/// `$XDG_CONFIG_HOME/rollway/identity.txt`, else
/// `$HOME/.config/rollway/identity.txt`. `env` looks variables up (pass
/// `&|k| std::env::var(k).ok()`); empty values count as unset, and a relative
/// `XDG_CONFIG_HOME` is ignored as the XDG spec asks.
pub fn identity_path(env: &impl Fn(&str) -> Option<String>) -> Result<PathBuf> {
    let get = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(p) = get("ROLLWAY_IDENTITY") {
        return Ok(PathBuf::from(p));
    }
    if let Some(x) = get("XDG_CONFIG_HOME").filter(|x| Path::new(x).is_absolute()) {
        return Ok(Path::new(&x).join("rollway").join("identity.txt"));
    }
    if let Some(home) = get("HOME") {
        return Ok(Path::new(&home).join(".config").join("rollway").join("identity.txt"));
    }
    Err(Error::NoHome)
}

/// Writes a new age identity file, creating missing parent directories
/// (mode 0700). The file is created with mode 0600 from the start, so the
/// key is never readable by others, and an existing file is never replaced.
pub fn write_identity_file(path: &Path, identity: &Identity, created: Timestamp) -> Result<()> {
    let text = identity.to_file_text(created)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(parent)
            .map_err(|e| Error::io("create directory", parent, e))?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            Error::IdentityExists {
                path: path.to_path_buf(),
            }
        } else {
            Error::io("create identity file", path, e)
        }
    })?;
    if let Err(e) = file.write_all(text.as_bytes()).and_then(|()| file.sync_all()) {
        drop(file);
        // A half-written identity would be worse than none.
        let _ = fs::remove_file(path);
        return Err(Error::io("write identity file", path, e));
    }
    Ok(())
}

/// Encrypts to every recipient (duplicates dropped) and returns the
/// ASCII-armored file text (`-----BEGIN AGE ENCRYPTED FILE-----`).
pub fn encrypt_armored(plaintext: &[u8], recipients: &[Recipient]) -> Result<String> {
    let mut unique: Vec<&Recipient> = Vec::new();
    for r in recipients {
        if !unique.contains(&r) {
            unique.push(r);
        }
    }
    if unique.is_empty() {
        return Err(Error::NoRecipients);
    }
    let encryptor = age::Encryptor::with_recipients(unique.iter().map(|r| r.as_age()))
        .map_err(|e| Error::Encrypt(e.to_string()))?;
    let failed = |e: io::Error| Error::Encrypt(e.to_string());
    let mut out = Vec::with_capacity(plaintext.len() * 2 + 512);
    let armor = ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor).map_err(failed)?;
    let mut writer = encryptor.wrap_output(armor).map_err(failed)?;
    writer.write_all(plaintext).map_err(failed)?;
    writer.finish().and_then(|armor| armor.finish()).map_err(failed)?;
    String::from_utf8(out).map_err(|_| Error::Encrypt("the armored output is not text".into()))
}

/// An encrypting writer over `out` for every recipient (duplicates
/// dropped): binary age, what `age -d` reads. Data passes through in 64 KiB
/// chunks, never whole; `finish()` writes the last chunk and hands `out`
/// back (without it the output is truncated and will not decrypt).
pub fn encrypt_stream<W: Write>(out: W, recipients: &[Recipient]) -> Result<age::stream::StreamWriter<W>> {
    let mut unique: Vec<&Recipient> = Vec::new();
    for r in recipients {
        if !unique.contains(&r) {
            unique.push(r);
        }
    }
    if unique.is_empty() {
        return Err(Error::NoRecipients);
    }
    let encryptor = age::Encryptor::with_recipients(unique.iter().map(|r| r.as_age()))
        .map_err(|e| Error::Encrypt(e.to_string()))?;
    encryptor.wrap_output(out).map_err(|e| Error::Encrypt(e.to_string()))
}

/// A decrypting reader over `input` (armored or binary age) with the first
/// identity that opens it; `origin` names the data in errors. A read of a
/// chunk that was modified or cut short fails with an `io::Error`; a whole
/// read that ends without one proves the data intact.
pub fn decrypt_stream<R: Read>(input: R, identities: &[Identity], origin: &str) -> Result<impl Read> {
    let fail = |reason: String| Error::Decrypt {
        origin: origin.to_string(),
        reason,
    };
    if identities.is_empty() {
        return Err(fail(
            "no identity to decrypt with; run `rollway secrets init` or set ROLLWAY_IDENTITY".into(),
        ));
    }
    let decryptor = age::Decryptor::new(ArmoredReader::new(input)).map_err(|e| fail(decrypt_reason(e)))?;
    if decryptor.is_scrypt() {
        return Err(fail("it is passphrase-encrypted (age -p), not to a recipient".into()));
    }
    decryptor
        .decrypt(identities.iter().map(Identity::as_age))
        .map_err(|e| fail(decrypt_reason(e)))
}

/// Decrypts an age file, armored or binary, with the first identity that
/// opens it.
pub fn decrypt(ciphertext: &[u8], identities: &[Identity]) -> Result<Vec<u8>> {
    decrypt_named(ciphertext, identities, "the age data")
}

fn decrypt_named(ciphertext: &[u8], identities: &[Identity], origin: &str) -> Result<Vec<u8>> {
    let fail = |reason: String| Error::Decrypt {
        origin: origin.to_string(),
        reason,
    };
    if identities.is_empty() {
        return Err(fail(
            "no identity to decrypt with; run `rollway secrets init` or set ROLLWAY_IDENTITY".into(),
        ));
    }
    let decryptor =
        age::Decryptor::new_buffered(ArmoredReader::new(ciphertext)).map_err(|e| fail(decrypt_reason(e)))?;
    if decryptor.is_scrypt() {
        return Err(fail(
            "it is passphrase-encrypted (age -p); encrypt it to a recipient instead: age -e -a -r RECIPIENT".into(),
        ));
    }
    let mut reader = decryptor
        .decrypt(identities.iter().map(Identity::as_age))
        .map_err(|e| fail(decrypt_reason(e)))?;
    let mut plaintext = Vec::new();
    reader
        .read_to_end(&mut plaintext)
        .map_err(|e| fail(format!("it is corrupted or was modified ({e})")))?;
    Ok(plaintext)
}

fn decrypt_reason(e: age::DecryptError) -> String {
    use age::DecryptError as D;
    match e {
        D::NoMatchingKeys => "none of your identities can open it (it was encrypted to other recipients); ask someone who can read it to add your recipient to [secrets] recipients and run `rollway secrets rekey`".into(),
        D::InvalidHeader => "it is damaged or not an age file (its header is invalid); restore it from git or a backup".into(),
        D::UnknownFormat => "it is damaged: its header is not a valid age v1 header (or it was written by a newer age format); restore it from git or a backup".into(),
        D::DecryptionFailed | D::InvalidMac => "it is corrupted or was modified (the integrity check failed)".into(),
        D::KeyDecryptionFailed => "the identity's key could not be unlocked".into(),
        D::ExcessiveWork { .. } => "it is passphrase-encrypted; encrypt it to a recipient instead".into(),
        D::Io(e) => format!("it is not a readable age file ({e})"),
        other => other.to_string(),
    }
}

/// Reads and decrypts an age file; errors name the file.
pub fn decrypt_file(path: &Path, identities: &[Identity]) -> Result<Vec<u8>> {
    let bytes = fs::read(path).map_err(|e| Error::io("read", path, e))?;
    decrypt_named(&bytes, identities, &path.display().to_string())
}

/// Encrypts `plaintext` and replaces `path` atomically (a temporary file in
/// the same directory, then a rename), creating the directory if needed.
pub fn write_armored_file(path: &Path, plaintext: &[u8], recipients: &[Recipient]) -> Result<()> {
    let armored = encrypt_armored(plaintext, recipients)?;
    rollway_fs::write_atomic(path, armored.as_bytes(), None).map_err(|e| Error::io("write", path, e))
}

/// Decrypts an environment's secrets file and parses the dotenv text inside.
pub fn read_secrets_file(path: &Path, identities: &[Identity]) -> Result<Vec<(String, String)>> {
    let plaintext = decrypt_file(path, identities)?;
    let origin = path.display().to_string();
    let text = String::from_utf8(plaintext).map_err(|_| Error::NotUtf8 { origin: origin.clone() })?;
    Ok(dotenv::parse(&text).map_err(|e| e.with_origin(origin))?)
}

/// Renders entries as dotenv text and writes them encrypted to `path`.
pub fn write_secrets_file(path: &Path, entries: &[(String, String)], recipients: &[Recipient]) -> Result<()> {
    write_armored_file(path, dotenv::render(entries).as_bytes(), recipients)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn streams_round_trip_in_chunks_and_refuse_a_flipped_byte_or_another_identity() {
        let me = Identity::generate();
        // Several 64 KiB chunks and a partial one.
        let data: Vec<u8> = (0..70_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut out = Vec::new();
        let mut w = encrypt_stream(&mut out, &[me.recipient(), me.recipient()]).unwrap();
        w.write_all(&data).unwrap();
        w.finish().unwrap();
        let mut back = Vec::new();
        decrypt_stream(&out[..], std::slice::from_ref(&me), "t")
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);

        let mut bad = out.clone();
        let i = bad.len() / 2;
        bad[i] ^= 1;
        let read = decrypt_stream(&bad[..], std::slice::from_ref(&me), "t")
            .unwrap()
            .read_to_end(&mut Vec::new());
        assert!(read.is_err(), "a flipped byte fails the read");
        let cut = decrypt_stream(&out[..out.len() - 100], std::slice::from_ref(&me), "t")
            .unwrap()
            .read_to_end(&mut Vec::new());
        assert!(cut.is_err(), "a truncated stream fails the read");

        match decrypt_stream(&out[..], &[Identity::generate()], "t").err() {
            Some(Error::Decrypt { reason, .. }) => assert!(reason.contains("none of your identities"), "{reason}"),
            other => panic!("expected a decrypt error, got {other:?}"),
        }
        assert!(matches!(
            encrypt_stream(Vec::new(), &[]).err(),
            Some(Error::NoRecipients)
        ));
    }

    // Public keys made once with age-keygen and ssh-keygen; only their shape matters here.
    const AGE_PUB: &str = "age1k2h5rcf95azkff0pepqmdhg5n0jfwfsv6cw6hxmey3qfdp24m5jqy6ne4m";
    const ED_PUB: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOICAC30cXShhGrn+ubeTLJM8Qci96EeyXV1d/WKKH54";

    fn check(input: &str, expected: std::result::Result<&str, &str>) {
        match (Recipient::from_str(input), expected) {
            (Ok(r), Ok(display)) => assert_eq!(r.to_string(), display, "{input}"),
            (Err(e), Err(fragment)) => {
                let text = e.to_string();
                assert!(text.contains(fragment), "{input}: {text:?} lacks {fragment:?}");
            }
            (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn parses_recipients() {
        check(AGE_PUB, Ok(AGE_PUB));
        check(&format!("  {AGE_PUB}\n"), Ok(AGE_PUB));
        check(ED_PUB, Ok(ED_PUB));
        check(&format!("{ED_PUB} alice@laptop"), Ok(&format!("{ED_PUB} alice@laptop")));
        check(&format!("{ED_PUB}   two  words"), Ok(&format!("{ED_PUB} two words")));
        check(&format!("{AGE_PUB} comment"), Err("unexpected text after an age1"));
        check("age1notakey", Err("not a valid X25519 age recipient"));
        check("ssh-ed25519", Err("key data is missing"));
        check("ssh-ed25519 AAAAnotbase64!!", Err("not a valid ssh public key"));
        check(
            "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY=",
            Err("unsupported ssh key type"),
        );
        check("ssh-dss AAAAB3NzaC1kc3M=", Err("unsupported ssh key type"));
        check("", Err("expected an age recipient (age1…) or an ssh public key"));
        check("hello world", Err("expected an age recipient"));
    }

    #[test]
    fn a_secret_key_given_as_recipient_is_refused_without_echo() {
        let id = Identity::generate();
        let text = id.to_file_text(Timestamp(0)).unwrap();
        let secret = text.lines().last().unwrap();
        for input in [secret.to_string(), secret.to_lowercase()] {
            let err = Recipient::from_str(&input).unwrap_err().to_string();
            assert!(err.contains("secret key"), "{err}");
            assert!(!err.to_uppercase().contains(&secret[15..]), "{err}");
        }
    }

    #[test]
    fn recipients_compare_by_key_only() {
        let a = Recipient::from_str(&format!("{ED_PUB} a")).unwrap();
        let b = Recipient::from_str(&format!("{ED_PUB} b")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.comment(), Some("a"));
        assert!(a.is_ssh());
        assert_ne!(a, Recipient::from_str(AGE_PUB).unwrap());
    }

    #[test]
    fn round_trips_through_generated_identities() {
        let (alice, bob, eve) = (Identity::generate(), Identity::generate(), Identity::generate());
        let plaintext = b"DATABASE_URL=\"postgres://u:p@db/app\"\n";
        let armored = encrypt_armored(plaintext, &[alice.recipient(), bob.recipient(), alice.recipient()]).unwrap();
        assert!(armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"), "{armored}");
        assert!(armored.trim_end().ends_with("-----END AGE ENCRYPTED FILE-----"));
        assert!(!armored.contains("postgres"));
        for who in [&alice, &bob] {
            assert_eq!(
                decrypt(armored.as_bytes(), std::slice::from_ref(who)).unwrap(),
                plaintext
            );
        }
        assert_eq!(
            decrypt(armored.as_bytes(), &[eve.clone(), bob.clone()]).unwrap(),
            plaintext
        );
        let err = decrypt(armored.as_bytes(), &[eve]).unwrap_err().to_string();
        assert!(err.contains("none of your identities can open it"), "{err}");
    }

    #[test]
    fn decrypts_binary_input_too() {
        let id = Identity::generate();
        let r = age::x25519::Recipient::from_str(&id.recipient().key_text()).unwrap();
        let binary = age::encrypt(&r, b"binary form").unwrap();
        assert!(binary.starts_with(b"age-encryption.org/v1"));
        assert_eq!(decrypt(&binary, &[id]).unwrap(), b"binary form");
    }

    fn check_decrypt_error(input: &[u8], fragment: &str) {
        let err = decrypt(input, &[Identity::generate()]).unwrap_err().to_string();
        assert!(err.starts_with("cannot decrypt the age data: "), "{err}");
        assert!(err.contains(fragment), "{err:?} lacks {fragment:?}");
    }

    #[test]
    fn decrypt_errors_say_what_is_wrong() {
        let id = Identity::generate();
        let good = encrypt_armored(b"x", &[id.recipient()]).unwrap();
        check_decrypt_error(b"KEY=VALUE\n", "not");
        check_decrypt_error(b"", "not");
        check_decrypt_error(good.as_bytes(), "none of your identities");
        let mut tampered = good.clone().into_bytes();
        let pos = tampered.len() - 40;
        tampered[pos] = if tampered[pos] == b'A' { b'B' } else { b'A' };
        let err = decrypt(&tampered, &[id]).unwrap_err().to_string();
        assert!(err.starts_with("cannot decrypt"), "{err}");
        assert!(
            decrypt(b"x", &[])
                .unwrap_err()
                .to_string()
                .contains("no identity to decrypt with")
        );
        assert!(matches!(encrypt_armored(b"x", &[]), Err(Error::NoRecipients)));
    }

    #[test]
    fn identity_file_text_is_age_keygen_layout_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::generate();
        let path = dir.path().join("nested/dir/identity.txt");
        write_identity_file(&path, &id, Timestamp(1_700_000_000_000)).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "# created: 2023-11-14T22:13:20.000Z");
        assert_eq!(lines[1], format!("# public key: {}", id.recipient()));
        assert!(lines[2].starts_with("AGE-SECRET-KEY-1"), "secret line");
        assert_eq!(lines.len(), 3);
        let loaded = Identity::from_file(&path).unwrap();
        assert_eq!(loaded.recipient(), id.recipient());
        assert!(format!("{loaded:?}").contains(&id.recipient().to_string()));
        assert!(!format!("{loaded:?}").contains("AGE-SECRET-KEY"));
        let ct = encrypt_armored(b"hi", &[id.recipient()]).unwrap();
        assert_eq!(decrypt(ct.as_bytes(), &[loaded]).unwrap(), b"hi");
    }

    #[cfg(unix)]
    #[test]
    fn identity_file_is_0600_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollway/identity.txt");
        let first = Identity::generate();
        write_identity_file(&path, &first, Timestamp(0)).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let before = fs::read(&path).unwrap();
        let err = write_identity_file(&path, &Identity::generate(), Timestamp(0)).unwrap_err();
        assert!(matches!(err, Error::IdentityExists { .. }), "{err}");
        assert!(err.to_string().contains(&path.display().to_string()));
        assert_eq!(fs::read(&path).unwrap(), before);
    }

    fn check_load(content: &str, expected: std::result::Result<usize, &str>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.txt");
        fs::write(&path, content).unwrap();
        match (load_identities(&path), expected) {
            (Ok(ids), Ok(n)) => assert_eq!(ids.len(), n, "{content}"),
            (Err(e), Err(fragment)) => {
                let text = e.to_string();
                assert!(text.contains(fragment), "{text:?} lacks {fragment:?}");
                assert!(text.contains(&path.display().to_string()), "{text:?} names no path");
            }
            (got, want) => panic!("{content:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn loads_age_identity_files() {
        let a = Identity::generate().to_file_text(Timestamp(0)).unwrap();
        let b = Identity::generate().to_file_text(Timestamp(0)).unwrap();
        let secret_a = a.lines().last().unwrap().to_string();
        check_load(&a, Ok(1));
        check_load(&format!("{a}\n\n# another\n{b}"), Ok(2));
        check_load(&format!("  {secret_a}  \r\n"), Ok(1));
        check_load("", Err("holds no identity"));
        check_load("# only comments\n\n", Err("holds no identity"));
        check_load(&format!("{a}garbage-line\n"), Err("id.txt:4: not an age identity"));
        check_load(&format!("{ED_PUB} me\n"), Err("is a public key"));
        check_load(&format!("{AGE_PUB}\n"), Err("is a public key"));
        check_load(
            "AGE-PLUGIN-YUBIKEY-1ABC\n",
            Err(":1: plugin identities are not supported"),
        );
        check_load(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n-----END OPENSSH PRIVATE KEY-----\n",
            Err("not a valid OpenSSH private key"),
        );
        // The secret key never appears in an error about a later line.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.txt");
        fs::write(&path, format!("{secret_a}\nAGE-SECRET-KEY-1BROKEN\n")).unwrap();
        let err = load_identities(&path).unwrap_err().to_string();
        assert!(err.contains("id.txt:2: not an age identity"), "{err}");
        assert!(!err.contains(&secret_a) && !err.contains("BROKEN"), "{err}");
        let several = dir.path().join("two.txt");
        fs::write(&several, format!("{a}{b}")).unwrap();
        assert!(matches!(
            Identity::from_file(&several),
            Err(Error::SeveralIdentities { count: 2, .. })
        ));
    }

    #[test]
    fn a_missing_identity_file_says_how_to_create_one() {
        let err = load_identities(Path::new("/nonexistent/rollway/identity.txt"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no identity file at /nonexistent/rollway/identity.txt"),
            "{err}"
        );
        assert!(err.contains("rollway secrets init"), "{err}");
    }

    fn check_path(vars: &[(&str, &str)], expected: Option<&str>) {
        let map: BTreeMap<String, String> = vars.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        let got = identity_path(&|k: &str| map.get(k).cloned());
        match expected {
            Some(p) => assert_eq!(got.unwrap(), PathBuf::from(p), "{vars:?}"),
            None => assert!(matches!(got, Err(Error::NoHome)), "{vars:?}: {got:?}"),
        }
    }

    #[test]
    fn identity_path_follows_the_documented_order() {
        let all = [
            ("ROLLWAY_IDENTITY", "/keys/id"),
            ("XDG_CONFIG_HOME", "/xdg"),
            ("HOME", "/home/u"),
        ];
        check_path(&all, Some("/keys/id"));
        check_path(&all[1..], Some("/xdg/rollway/identity.txt"));
        check_path(&all[2..], Some("/home/u/.config/rollway/identity.txt"));
        check_path(&[("ROLLWAY_IDENTITY", "rel/id.txt")], Some("rel/id.txt"));
        check_path(
            &[("ROLLWAY_IDENTITY", ""), ("HOME", "/h")],
            Some("/h/.config/rollway/identity.txt"),
        );
        check_path(
            &[("XDG_CONFIG_HOME", "relative"), ("HOME", "/h")],
            Some("/h/.config/rollway/identity.txt"),
        );
        check_path(
            &[("XDG_CONFIG_HOME", ""), ("HOME", "/h")],
            Some("/h/.config/rollway/identity.txt"),
        );
        check_path(&[], None);
    }

    #[test]
    fn secrets_files_round_trip_and_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets/production.age");
        let (id, other) = (Identity::generate(), Identity::generate());
        let entries = vec![
            ("DATABASE_URL".to_string(), "postgres://u:p@db/app".to_string()),
            ("MULTI".to_string(), "a\n\"b\"\\".to_string()),
        ];
        write_secrets_file(&path, &entries, &[id.recipient()]).unwrap();
        assert_eq!(read_secrets_file(&path, std::slice::from_ref(&id)).unwrap(), entries);
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
        let err = read_secrets_file(&path, &[other]).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("cannot decrypt {}: none", path.display())),
            "{err}"
        );
        write_armored_file(&path, b"A=\"x\" junk\nB='open", &[id.recipient()]).unwrap();
        let err = read_secrets_file(&path, std::slice::from_ref(&id))
            .unwrap_err()
            .to_string();
        assert_eq!(err.lines().count(), 2, "{err}");
        assert!(err.starts_with(&format!("{}:1:7: ", path.display())), "{err}");
        write_armored_file(&path, &[0xff, 0xfe], &[id.recipient()]).unwrap();
        assert!(matches!(read_secrets_file(&path, &[id]), Err(Error::NotUtf8 { .. })));
    }
}
