//! End-to-end tests of `rollway secrets`: interoperability with Debian's
//! `age`, masking of a canary everywhere, refusal of values in argv,
//! generators, `secrets check` and platform sync.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Backend, Project, secret_forms};

const CONFIG: &str = r#"project = "hello"

[secrets]
dir = "secrets"

[variables.DATABASE_URL]
type = "url"
scheme = "postgres"
secret = true
required_for = ["production"]

[variables.JWT_SECRET]
type = "string"
secret = true

[variables.API_TOKEN]
type = "key"
secret = true

[variables.LOG_LEVEL]
type = "string"
secret = false

[environments.staging]
kind = "staging"
hosts = ["local"]
root = ".rollway/staging"
stability_window = "1m"
# A stand-in for a hosted platform's CLI (none can be reached here): a local
# script that records what it receives.
sync = "./platform-cli.sh {key} {environment}"

[environments.production]
kind = "production"
hosts = ["local"]
root = ".rollway/production"
domain = "app.example.com"
https = true
"#;

const CANARY: &str = "canary-Qx7!vR2#pLm9/zT4+wK8";

fn project() -> Project {
    let p = Project::new(Backend::Sqlite);
    p.write("rollway.toml", CONFIG);
    p.run(&["secrets", "init"]).ok();
    p
}

fn age_installed() {
    let ok = Command::new("age")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(ok, "Debian's `age` must be installed (scripts/test installs it)");
}

fn assert_nowhere(what: &str, haystack: &[u8]) {
    for form in secret_forms(CANARY) {
        assert!(
            !haystack.windows(form.len()).any(|w| w == form.as_bytes()),
            "the canary appears in clear ({form:?}) in {what}"
        );
    }
}

fn assert_no_file_holds_it(dir: &Path) {
    for entry in walk(dir) {
        let bytes = std::fs::read(&entry).unwrap();
        assert_nowhere(&entry.display().to_string(), &bytes);
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn debian_age_reads_what_rollway_writes_and_the_other_way_round() {
    age_installed();
    let p = project();
    p.run_with_stdin(
        &["secrets", "set", "staging", "JWT_SECRET"],
        "Zx9-kq2LmP0vR7tYw3Ne8sUa\n",
    )
    .ok();
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(p.identity())
        .arg(p.path().join("secrets/staging.age"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "JWT_SECRET=\"Zx9-kq2LmP0vR7tYw3Ne8sUa\"\n"
    );

    // A file written by age itself, to our recipient.
    let recipient = p.run(&["--json", "secrets", "init"]).ok().json()["recipient"]
        .as_str()
        .unwrap()
        .to_owned();
    let plain = p.write(
        "prod.env",
        "DATABASE_URL=postgres://app:Sup3r-S3cret-Pw-42x@db.internal:5432/app\nLOG_LEVEL=info\n",
    );
    let status = Command::new("age")
        .args(["-e", "-a", "-r", &recipient, "-o"])
        .arg(p.path().join("secrets/production.age"))
        .arg(&plain)
        .status()
        .unwrap();
    assert!(status.success());
    let got = p
        .run(&["secrets", "get", "production", "DATABASE_URL", "--reveal"])
        .ok();
    assert_eq!(got.stdout, "postgres://app:Sup3r-S3cret-Pw-42x@db.internal:5432/app\n");
    let masked = p.run(&["secrets", "get", "production", "DATABASE_URL"]).ok();
    assert_eq!(masked.stdout, "****\n");
    let plain_value = p.run(&["secrets", "get", "production", "LOG_LEVEL"]).ok();
    assert_eq!(plain_value.stdout, "info\n", "a plain variable is not masked");
    let list = p.run(&["--json", "secrets", "list", "production"]).ok().json();
    let keys: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["DATABASE_URL", "LOG_LEVEL"],
        "keys first seen in the file are recorded"
    );
}

#[test]
fn a_canary_is_in_clear_nowhere_but_after_an_audited_reveal() {
    let p = project();
    let mut outputs = Vec::new();
    let set = p
        .run_with_stdin(
            &["--json", "secrets", "set", "production", "JWT_SECRET"],
            &format!("{CANARY}\n"),
        )
        .ok();
    outputs.push(("set", set));
    outputs.push(("get", p.run(&["secrets", "get", "production", "JWT_SECRET"]).ok()));
    outputs.push((
        "get --json",
        p.run(&["--json", "secrets", "get", "production", "JWT_SECRET"]).ok(),
    ));
    outputs.push(("list --json", p.run(&["--json", "secrets", "list", "production"]).ok()));
    outputs.push(("events list --json", p.run(&["--json", "events", "list"]).ok()));
    outputs.push(("check", p.run(&["secrets", "check", "production"])));
    // A value typed into another variable by mistake is masked in the error too.
    let weak = p.run_with_stdin(&["secrets", "set", "production", "API_TOKEN"], CANARY);
    outputs.push(("set API_TOKEN", weak));
    for (what, run) in &outputs {
        assert_nowhere(what, run.stdout.as_bytes());
        assert_nowhere(what, run.stderr.as_bytes());
    }
    assert_no_file_holds_it(&p.path().join(".rollway"));
    assert_no_file_holds_it(&p.path().join("secrets"));

    let revealed = p.run(&["secrets", "get", "production", "JWT_SECRET", "--reveal"]).ok();
    assert_eq!(revealed.stdout.trim_end(), CANARY);
    let events = p
        .run(&["--json", "events", "list", "--kind", "secret-revealed"])
        .ok()
        .json();
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["operator"], "tester@example.com");
    assert_eq!(events[0]["data"]["key"], "JWT_SECRET");
    p.run(&["events", "verify"]).ok();
}

#[test]
fn a_value_in_argv_is_refused_and_nothing_is_stored() {
    let p = project();
    let r = p.run(&["secrets", "set", "staging", "JWT_SECRET", "Zx9-kq2LmP0vR7tYw3Ne8sUa"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("shell history"), "{r:?}");
    assert!(
        !r.stderr.contains("Zx9-kq2LmP0vR7tYw3Ne8sUa"),
        "the refused value is not echoed"
    );
    assert!(!p.path().join("secrets/staging.age").exists());
    let events = p
        .run(&["--json", "events", "list", "--kind", "secret-changed"])
        .ok()
        .json();
    assert_eq!(events.as_array().unwrap().len(), 0);
}

#[test]
fn the_strapi_preset_makes_seven_strong_values_that_differ_each_run() {
    age_installed();
    let p = project();
    let read = |env: &str| -> std::collections::BTreeMap<String, String> {
        let out = Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(p.identity())
            .arg(p.path().join(format!("secrets/{env}.age")))
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k.to_owned(), v.trim_matches('"').to_owned())
            })
            .collect()
    };
    p.run(&["secrets", "generate", "staging", "--preset", "strapi"]).ok();
    p.run(&["secrets", "generate", "production", "--preset", "strapi"]).ok();
    let (a, b) = (read("staging"), read("production"));
    let keys: Vec<&str> = a.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "ADMIN_JWT_SECRET",
            "API_TOKEN_SALT",
            "APP_KEYS",
            "ENCRYPTION_KEY",
            "JWT_SECRET",
            "POSTGRES_PASSWORD",
            "TRANSFER_TOKEN_SALT"
        ]
    );
    let parts: Vec<&str> = a["APP_KEYS"].split(',').collect();
    assert_eq!(parts.len(), 4);
    for part in parts {
        assert!(STANDARD.decode(part).unwrap().len() * 8 >= 256, "{part}");
    }
    for (k, v) in &a {
        assert_ne!(Some(v), b.get(k), "{k} differs between runs");
        if k != "APP_KEYS" && k != "POSTGRES_PASSWORD" {
            assert!(STANDARD.decode(v).unwrap().len() * 8 >= 256, "{k}");
        }
    }
    assert!(a["POSTGRES_PASSWORD"].len() as f64 * 62f64.log2() >= 256.0);
    // Generated values pass every check; what check still finds are the
    // declared variables the preset does not make.
    let check = p.run(&["secrets", "check", "production"]);
    assert_eq!(check.code, 2);
    let flagged: Vec<&str> = check
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("production: "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(flagged, ["API_TOKEN", "DATABASE_URL"], "{check:?}");
}

#[test]
fn secrets_check_names_every_problem_of_a_file_written_with_age() {
    age_installed();
    let p = project();
    let recipient = p.run(&["--json", "secrets", "init"]).ok().json()["recipient"]
        .as_str()
        .unwrap()
        .to_owned();
    let plain = p.write(
        "bad.env",
        "DATABASE_URL=\"not a url\"\nJWT_SECRET=\"\"\nAPI_TOKEN=\"password123password\"\n",
    );
    std::fs::create_dir_all(p.path().join("secrets")).unwrap();
    let status = Command::new("age")
        .args(["-e", "-r", &recipient, "-o"])
        .arg(p.path().join("secrets/production.age"))
        .arg(&plain)
        .status()
        .unwrap();
    assert!(status.success());
    let r = p.run(&["secrets", "check", "production"]);
    assert_eq!(r.code, 2, "{r:?}");
    let lines: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("production: ")).collect();
    let named = |key: &str| {
        lines
            .iter()
            .filter(|l| l.starts_with(&format!("production: {key} ")))
            .count()
    };
    assert_eq!(named("DATABASE_URL"), 1, "{lines:#?}");
    assert_eq!(named("JWT_SECRET"), 1, "{lines:#?}");
    assert_eq!(named("API_TOKEN"), 1, "{lines:#?}");
    assert!(!r.stderr.contains("password123password"), "problems never quote values");
    let j = p.run(&["--json", "secrets", "check", "production"]);
    assert_eq!(j.json()["error"]["details"].as_array().unwrap().len(), 3);
}

#[test]
fn weak_values_are_refused_in_production_unless_allowed() {
    let p = project();
    let r = p.run_with_stdin(&["secrets", "set", "production", "JWT_SECRET"], "letmein");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--allow-weak"), "{r:?}");
    assert!(!p.path().join("secrets/production.age").exists(), "nothing stored");
    p.run_with_stdin(&["secrets", "set", "staging", "JWT_SECRET"], "letmein")
        .ok();
    p.run_with_stdin(
        &["secrets", "set", "production", "JWT_SECRET", "--allow-weak"],
        "letmein",
    )
    .ok();
    let list = p.run(&["--json", "secrets", "list", "production"]).ok().json();
    assert_eq!(list[0]["allow_weak"], true);
    let ev = p
        .run(&[
            "--json",
            "events",
            "list",
            "--kind",
            "secret-changed",
            "--env",
            "production",
        ])
        .ok()
        .json();
    assert_eq!(ev.as_array().unwrap().last().unwrap()["data"]["allow_weak"], true);
}

#[test]
fn sync_hands_each_value_to_the_platform_on_stdin() {
    let p = project();
    let received = p.path().join("received.txt");
    // Stand-in for a platform CLI: records key, environment and the value from stdin.
    p.write(
        "platform-cli.sh",
        &format!(
            "#!/bin/sh\nprintf '%s %s %s\\n' \"$1\" \"$2\" \"$(cat)\" >> {}\n",
            received.display()
        ),
    );
    std::fs::set_permissions(
        p.path().join("platform-cli.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    p.run_with_stdin(&["secrets", "set", "staging", "JWT_SECRET"], "Zx9-kq2LmP0vR7tYw3Ne8sUa")
        .ok();
    p.run_with_stdin(&["secrets", "set", "staging", "LOG_LEVEL"], "debug")
        .ok();
    p.run(&["secrets", "sync", "staging"]).ok();
    assert_eq!(
        std::fs::read_to_string(&received).unwrap(),
        "JWT_SECRET staging Zx9-kq2LmP0vR7tYw3Ne8sUa\nLOG_LEVEL staging debug\n"
    );
    let list = p.run(&["--json", "secrets", "list", "staging"]).ok().json();
    assert!(list.as_array().unwrap().iter().all(|v| v["platform_synced"] == true));

    // A rotated value is stale on the platform, and a failing sync leaves it so.
    p.run_with_stdin(&["secrets", "set", "staging", "JWT_SECRET"], "Qm4-Lp8sVx2Rt6Yw0Nb3Kd7H")
        .ok();
    p.write("platform-cli.sh", "#!/bin/sh\necho 'platform says no' >&2\nexit 1\n");
    let r = p.run(&["secrets", "sync", "staging"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("syncing JWT_SECRET to staging failed"), "{r:?}");
    let list = p.run(&["--json", "secrets", "list", "staging"]).ok().json();
    let jwt = list
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["key"] == "JWT_SECRET")
        .unwrap();
    assert_eq!(jwt["platform_synced"], false);
}

#[test]
fn import_rm_and_rekey() {
    age_installed();
    let p = project();
    p.write(
        "staging.env",
        "# from the old host\nexport JWT_SECRET='Zx9-kq2LmP0vR7tYw3Ne8sUa'\nLOG_LEVEL=warn\n",
    );
    p.run(&["secrets", "import", "staging", "staging.env"]).ok();
    assert_eq!(p.run(&["secrets", "get", "staging", "LOG_LEVEL"]).ok().stdout, "warn\n");
    p.run(&["secrets", "rm", "staging", "LOG_LEVEL"]).ok();
    assert_eq!(p.run(&["secrets", "get", "staging", "LOG_LEVEL"]).code, 2);

    // A teammate's key joins the recipients; rekey makes the file readable by both.
    let mate = p.path().join("mate.txt");
    assert!(
        Command::new("age-keygen")
            .arg("-o")
            .arg(&mate)
            .output()
            .unwrap()
            .status
            .success()
    );
    let mate_pub = String::from_utf8(Command::new("age-keygen").arg("-y").arg(&mate).output().unwrap().stdout).unwrap();
    let mine = p.run(&["--json", "secrets", "init"]).ok().json()["recipient"]
        .as_str()
        .unwrap()
        .to_owned();
    let config = CONFIG.replace(
        "dir = \"secrets\"",
        &format!("dir = \"secrets\"\nrecipients = [\"{mine}\", \"{}\"]", mate_pub.trim()),
    );
    p.write("rollway.toml", &config);
    p.run(&["secrets", "rekey"]).ok();
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&mate)
        .arg(p.path().join("secrets/staging.age"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "JWT_SECRET=\"Zx9-kq2LmP0vR7tYw3Ne8sUa\"\n"
    );
}

#[test]
fn init_presets_declare_the_seed_variables() {
    let p = Project::new(Backend::Sqlite);
    p.run(&["init", "--preset", "strapi"]).ok();
    p.run(&["config", "check"]).ok();
    p.run(&["secrets", "init"]).ok();
    let before = p.run(&["secrets", "check", "staging"]);
    assert_eq!(before.code, 2, "the seven are required: {before:?}");
    p.run(&["secrets", "generate", "staging", "--preset", "strapi"]).ok();
    p.run(&["secrets", "check", "staging"]).ok();

    let q = Project::new(Backend::Sqlite);
    q.run(&["init", "--preset", "rag-app"]).ok();
    let config = q.run(&["--json", "config", "check"]).ok();
    let _ = config.json();
    q.run(&["secrets", "init"]).ok();
    let wrong = q.run_with_stdin(
        &["secrets", "set", "staging", "COHERE_API_KEY", "--allow-weak"],
        "too-short",
    );
    assert_eq!(
        wrong.code, 2,
        "a key not in its declared format is refused even with --allow-weak: {wrong:?}"
    );
    let check = q.run(&["--json", "secrets", "check", "staging"]);
    let keys: Vec<String> = check.json()["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        keys,
        [
            "BACKEND_URL",
            "COHERE_API_KEY",
            "DATABASE_URL",
            "FRONTEND_URL",
            "VECTOR_DATABASE_URL"
        ]
    );
    assert_eq!(q.run(&["init", "--preset", "rails", "--force"]).code, 2);
}

#[test]
fn rollway_identity_may_be_an_ssh_ed25519_key() {
    age_installed();
    let p = Project::new(Backend::Sqlite);
    let key = p.path().join("id_ed25519");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let public = std::fs::read_to_string(p.path().join("id_ed25519.pub")).unwrap();
    p.write(
        "rollway.toml",
        &CONFIG.replace(
            "dir = \"secrets\"",
            &format!("dir = \"secrets\"\nrecipients = [\"{}\"]", public.trim()),
        ),
    );
    let env = [("ROLLWAY_IDENTITY", key.to_str().unwrap())];
    p.run_full(
        &["secrets", "set", "staging", "JWT_SECRET"],
        "Zx9-kq2LmP0vR7tYw3Ne8sUa",
        &env,
    )
    .ok();
    let got = p
        .run_full(&["secrets", "get", "staging", "JWT_SECRET", "--reveal"], "", &env)
        .ok();
    assert_eq!(got.stdout, "Zx9-kq2LmP0vR7tYw3Ne8sUa\n");
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&key)
        .arg(p.path().join("secrets/staging.age"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "JWT_SECRET=\"Zx9-kq2LmP0vR7tYw3Ne8sUa\"\n"
    );
}
