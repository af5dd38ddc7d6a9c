//! Interoperability with Debian's `age` CLI (and OpenSSH's `ssh-keygen`):
//! files Rollway writes open with `age -d`, files `age -e` writes open in
//! Rollway, for age X25519, ssh-ed25519 and ssh-rsa keys. The real tools
//! are required: when missing they are installed with apt-get, and when that
//! fails the tests fail rather than skip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::OnceLock;

use rollway_model::Timestamp;
use rollway_secrets::{
    Error, Identity, Recipient, decrypt, encrypt_armored, read_secrets_file, write_identity_file, write_secrets_file,
};

const PLAINTEXT: &str =
    "DATABASE_URL=\"postgres://app:p%40ss@db/app\"\nMULTI=\"line one\\nline \\\"two\\\"\"\nUNICODE=\"ünïcödé ✓\"\n";

fn has(tool: &str, arg: &str) -> bool {
    Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Makes sure `age`, `age-keygen` and `ssh-keygen` exist, installing the
/// Debian packages once if they do not; panics (fails) when that is impossible.
fn tools() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        if !(has("age", "--version") && has("age-keygen", "--version") && has("ssh-keygen", "-?")) {
            let install = |args: &[&str]| {
                Command::new("apt-get")
                    .args(args)
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .status()
            };
            let ok = install(&["install", "-y", "-q", "age", "openssh-client"]).is_ok_and(|s| s.success())
                || (install(&["update", "-q"]).is_ok_and(|s| s.success())
                    && install(&["install", "-y", "-q", "age", "openssh-client"]).is_ok_and(|s| s.success()));
            if !ok {
                return Err("Debian's age CLI is required: apt-get install age openssh-client".to_string());
            }
        }
        if has("age", "--version") {
            Ok(())
        } else {
            Err("age is still missing after apt-get install age".into())
        }
    });
    if let Err(e) = ready {
        panic!("{e}");
    }
}

/// Runs a command (with optional stdin) and returns its stdout; fails the test on a non-zero exit.
fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Vec<u8> {
    tools();
    let mut child = cmd
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn age_decrypt(identity: &Path, file: &Path) -> Vec<u8> {
    run(Command::new("age").arg("-d").arg("-i").arg(identity).arg(file), None)
}

fn age_encrypt(args: &[&str], plaintext: &[u8]) -> Vec<u8> {
    run(Command::new("age").arg("-e").args(args), Some(plaintext))
}

fn ssh_keygen(dir: &Path, kind: &[&str], name: &str, passphrase: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    run(
        Command::new("ssh-keygen")
            .args(kind)
            .args(["-q", "-N", passphrase, "-C", "alice@laptop", "-f"])
            .arg(&key),
        None,
    );
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_string())
}

#[test]
fn age_cli_decrypts_what_rollway_encrypts_to_a_generated_identity() {
    tools();
    let dir = tempfile::tempdir().unwrap();
    let id = Identity::generate();
    let id_file = dir.path().join("config/rollway/identity.txt");
    write_identity_file(&id_file, &id, Timestamp(1_700_000_000_000)).unwrap();
    // age-keygen -y reads our identity file and derives the same recipient.
    let derived = run(Command::new("age-keygen").arg("-y").arg(&id_file), None);
    assert_eq!(String::from_utf8(derived).unwrap().trim(), id.recipient().to_string());

    let armored = encrypt_armored(PLAINTEXT.as_bytes(), &[id.recipient()]).unwrap();
    let file = dir.path().join("production.age");
    std::fs::write(&file, &armored).unwrap();
    assert_eq!(age_decrypt(&id_file, &file), PLAINTEXT.as_bytes());
}

#[test]
fn rollway_decrypts_what_age_encrypts_with_age_keygen_keys() {
    tools();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.txt");
    run(Command::new("age-keygen").arg("-o").arg(&key), None);
    let recipient = String::from_utf8(run(Command::new("age-keygen").arg("-y").arg(&key), None)).unwrap();
    let recipient = recipient.trim();
    let id = Identity::from_file(&key).unwrap();
    assert_eq!(id.recipient(), Recipient::from_str(recipient).unwrap());

    let armored = age_encrypt(&["-a", "-r", recipient], PLAINTEXT.as_bytes());
    assert!(armored.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"));
    assert_eq!(
        decrypt(&armored, std::slice::from_ref(&id)).unwrap(),
        PLAINTEXT.as_bytes()
    );
    let binary = age_encrypt(&["-r", recipient], PLAINTEXT.as_bytes());
    assert!(binary.starts_with(b"age-encryption.org/v1"));
    assert_eq!(
        decrypt(&binary, std::slice::from_ref(&id)).unwrap(),
        PLAINTEXT.as_bytes()
    );
    let stranger = Identity::generate();
    let err = decrypt(&armored, &[stranger]).unwrap_err().to_string();
    assert!(err.contains("none of your identities can open it"), "{err}");
}

#[test]
fn ssh_ed25519_keys_work_in_both_directions() {
    tools();
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = ssh_keygen(dir.path(), &["-t", "ed25519"], "id_ed25519", "");
    let recipient = Recipient::from_str(&public).unwrap();
    assert!(recipient.is_ssh());
    assert_eq!(recipient.comment(), Some("alice@laptop"));
    let id = Identity::from_file(&key).unwrap();
    assert!(id.is_ssh());
    assert_eq!(id.recipient(), recipient);

    let armored = encrypt_armored(PLAINTEXT.as_bytes(), &[recipient]).unwrap();
    let file = dir.path().join("staging.age");
    std::fs::write(&file, armored).unwrap();
    assert_eq!(age_decrypt(&key, &file), PLAINTEXT.as_bytes());

    let pub_file = key.with_extension("pub");
    let from_age = age_encrypt(&["-a", "-R", pub_file.to_str().unwrap()], PLAINTEXT.as_bytes());
    assert_eq!(decrypt(&from_age, &[id]).unwrap(), PLAINTEXT.as_bytes());
}

#[test]
fn ssh_rsa_keys_work_in_both_directions() {
    tools();
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = ssh_keygen(dir.path(), &["-t", "rsa", "-b", "2048"], "id_rsa", "");
    let recipient = Recipient::from_str(&public).unwrap();
    let id = Identity::from_file(&key).unwrap();
    assert_eq!(id.recipient(), recipient);
    let file = dir.path().join("rsa.age");
    std::fs::write(&file, encrypt_armored(b"rsa works", &[recipient]).unwrap()).unwrap();
    assert_eq!(age_decrypt(&key, &file), b"rsa works");
    let from_age = age_encrypt(&["-a", "-r", &public], b"and back");
    assert_eq!(decrypt(&from_age, &[id]).unwrap(), b"and back");
}

#[test]
fn one_file_for_several_recipients_opens_with_each_key() {
    tools();
    let dir = tempfile::tempdir().unwrap();
    let age_id = Identity::generate();
    let age_file = dir.path().join("age.txt");
    write_identity_file(&age_file, &age_id, Timestamp(0)).unwrap();
    let (ssh_key, ssh_public) = ssh_keygen(dir.path(), &["-t", "ed25519"], "bob", "");
    let recipients = [age_id.recipient(), Recipient::from_str(&ssh_public).unwrap()];
    let entries = vec![
        ("API_TOKEN_SALT".to_string(), "c2FsdHNhbHRzYWx0c2FsdA==".to_string()),
        ("NOTE".to_string(), "quotes \" and \\ and\nnewlines".to_string()),
    ];
    let path = dir.path().join("secrets/production.age");
    write_secrets_file(&path, &entries, &recipients).unwrap();
    let expected = rollway_secrets::render_dotenv(&entries);
    for key in [&age_file, &ssh_key] {
        assert_eq!(String::from_utf8(age_decrypt(key, &path)).unwrap(), expected);
    }
    assert_eq!(
        read_secrets_file(&path, &[Identity::from_file(&ssh_key).unwrap()]).unwrap(),
        entries
    );
}

#[test]
fn a_dotenv_written_by_hand_and_encrypted_with_age_is_read() {
    tools();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.txt");
    run(Command::new("age-keygen").arg("-o").arg(&key), None);
    let recipient = String::from_utf8(run(Command::new("age-keygen").arg("-y").arg(&key), None)).unwrap();
    let hand_written = "# production secrets\nexport JWT_SECRET='lit$eral'\nLOG_LEVEL = info # plain\nEMPTY=\n";
    let path = dir.path().join("production.age");
    std::fs::write(
        &path,
        age_encrypt(&["-a", "-r", recipient.trim()], hand_written.as_bytes()),
    )
    .unwrap();
    let entries = read_secrets_file(&path, &[Identity::from_file(&key).unwrap()]).unwrap();
    let want: Vec<(String, String)> = [("JWT_SECRET", "lit$eral"), ("LOG_LEVEL", "info"), ("EMPTY", "")]
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    assert_eq!(entries, want);
}

#[test]
fn a_passphrase_protected_ssh_key_is_refused_with_a_clear_error() {
    tools();
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = ssh_keygen(dir.path(), &["-t", "ed25519"], "locked", "correct horse battery staple");
    let err = Identity::from_file(&key).unwrap_err();
    assert!(matches!(err, Error::EncryptedSshKey { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&key.display().to_string()), "{text}");
    assert!(text.contains("passphrase-protected"), "{text}");
    // The public half is not an identity either.
    let err = Identity::from_file(&key.with_extension("pub")).unwrap_err().to_string();
    assert!(err.contains("is a public key"), "{err}");
}

#[test]
fn an_ecdsa_key_is_named_as_unsupported() {
    tools();
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = ssh_keygen(dir.path(), &["-t", "ecdsa"], "id_ecdsa", "");
    let err = Recipient::from_str(&public).unwrap_err().to_string();
    assert!(err.contains("unsupported ssh key type ecdsa-sha2-nistp256"), "{err}");
    let err = Identity::from_file(&key).unwrap_err().to_string();
    assert!(err.contains("unsupported ssh key"), "{err}");
    assert!(err.contains(&key.display().to_string()), "{err}");
}
