//! The vault over a real SQLite store and real age files: a refused set
//! writes nothing, a replaced value is rotated, and the release env file
//! overlays stored values on the config's plain `vars`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use rollway_model::{Clock, EnvironmentKind, ManualClock, Timestamp, VariableType};
use rollway_secrets::{
    EnvRef, Identity, SetOptions, VariableDecl, Vault, VaultConfig, VaultError, parse_dotenv, write_identity_file,
};
use rollway_store::StoreLocation;

fn setup(dir: &std::path::Path) -> (Box<dyn rollway_store::Store>, ManualClock, std::path::PathBuf) {
    let clock = ManualClock::new(Timestamp::from_millis(1_800_000_000_000));
    let store = rollway_store::open(
        &StoreLocation::Sqlite(dir.join("state/rollway.db")),
        Arc::new(clock.clone()),
    )
    .unwrap();
    let id_path = dir.join("identity.txt");
    write_identity_file(&id_path, &Identity::generate(), clock.now()).unwrap();
    (store, clock, id_path)
}

fn cfg(dir: &std::path::Path) -> VaultConfig {
    VaultConfig {
        dir: dir.join("secrets"),
        recipients: Vec::new(),
        decls: vec![VariableDecl {
            key: "DATABASE_URL".into(),
            ty: VariableType::Url,
            scheme: Some("postgres".into()),
            format: None,
            secret: true,
            required_for: vec![EnvironmentKind::Production],
        }],
    }
}

fn opts(action: &str) -> SetOptions {
    SetOptions {
        action: action.into(),
        operator: "tester".into(),
        ..SetOptions::default()
    }
}

#[test]
fn a_refused_set_writes_nothing_and_a_replaced_value_is_rotated() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock, id) = setup(dir.path());
    let vault = Vault::open(cfg(dir.path()), &id, &*store).unwrap();
    let prod = EnvRef {
        name: "production".into(),
        kind: EnvironmentKind::Production,
    };
    let bad = vec![
        ("DATABASE_URL".to_owned(), "mysql://x@db/app".to_owned()),
        ("TOKEN".to_owned(), "short".to_owned()),
    ];
    match vault.set(&prod, &bad, &opts("set")) {
        Err(VaultError::Invalid { problems, .. }) => assert_eq!(problems.len(), 2, "{problems:?}"),
        other => panic!("expected both problems, got {other:?}"),
    }
    assert!(!vault.path("production").exists());
    assert!(store.variables("production").unwrap().is_empty());

    let url = "postgres://app:Vq8-Ls3Tn6Wz1Xc4Bm7@db/app".to_owned();
    let first = vault.set(&prod, &[("DATABASE_URL".into(), url)], &opts("set")).unwrap();
    assert_eq!(first[0].rotated_at, None);
    clock.advance(std::time::Duration::from_secs(60));
    let url2 = "postgres://app:Rt5-Hy2Ju9Ki4Lo7Pq1@db/app".to_owned();
    let second = vault
        .set(&prod, &[("DATABASE_URL".into(), url2.clone())], &opts("rotated"))
        .unwrap();
    assert_eq!(second[0].rotated_at, Some(clock.now()));
    assert_eq!(second[0].id, first[0].id);
    assert_eq!(vault.values("production").unwrap()["DATABASE_URL"], url2);
    assert!(vault.check(&prod).unwrap().is_empty());
    let masked = vault.masker("production").unwrap().mask(&format!("url={url2}"));
    assert_eq!(masked, "url=****");
}

#[test]
fn the_env_file_overlays_stored_values_on_plain_vars() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _clock, id) = setup(dir.path());
    let vault = Vault::open(cfg(dir.path()), &id, &*store).unwrap();
    let staging = EnvRef {
        name: "staging".into(),
        kind: EnvironmentKind::Staging,
    };
    let tricky = "line one\nsays \"hi\" \\ $HOME #not a comment".to_owned();
    vault
        .set(
            &staging,
            &[
                ("GREETING".into(), tricky.clone()),
                ("LOG_LEVEL".into(), "debug".into()),
            ],
            &opts("set"),
        )
        .unwrap();
    let vars: BTreeMap<String, String> = [
        ("LOG_LEVEL".to_owned(), "info".to_owned()),
        ("REGION".to_owned(), "eu-north".to_owned()),
    ]
    .into();
    let text = vault.env_file("staging", &vars).unwrap();
    assert_eq!(
        text,
        "GREETING=\"line one\\nsays \\\"hi\\\" \\\\ $HOME #not a comment\"\nLOG_LEVEL=\"debug\"\nREGION=\"eu-north\"\n"
    );
    let back: BTreeMap<String, String> = parse_dotenv(&text).unwrap().into_iter().collect();
    assert_eq!(back["GREETING"], tricky);
    assert_eq!(back["LOG_LEVEL"], "debug", "a stored value wins over the config's var");
    assert_eq!(back["REGION"], "eu-north");
}

/// Seed 003 "Key names must follow platform naming conventions": `set` (and
/// so `import`, which sets) applies the model's rule for the environment's
/// platform as the store records it, and a refused key writes nothing.
#[test]
fn set_applies_the_platforms_key_naming_rule() {
    use rollway_model::{EnvironmentSpec, Platform};
    let dir = tempfile::tempdir().unwrap();
    let (store, _clock, id) = setup(dir.path());
    let vault = Vault::open(cfg(dir.path()), &id, &*store).unwrap();
    let env_on = |name: &str, platform: Platform| {
        store
            .sync_environment(&EnvironmentSpec {
                name: name.into(),
                kind: EnvironmentKind::Staging,
                domain: None,
                https: false,
                platform,
                app: None,
                nginx_config: None,
                config: serde_json::Value::Null,
            })
            .unwrap();
        EnvRef {
            name: name.into(),
            kind: EnvironmentKind::Staging,
        }
    };
    let check = |platform: Platform, key: &str, expected: Option<&str>| {
        let env = env_on(&format!("env-{}", platform.as_str()), platform);
        let entries = [(key.to_owned(), "some-value".to_owned())];
        let plain = SetOptions {
            plain: true,
            ..opts("set")
        };
        match (vault.set(&env, &entries, &plain), expected) {
            (Ok(_), None) => assert_eq!(vault.values(&env.name).unwrap()[key], "some-value"),
            (Err(VaultError::BadKey { key: k, why }), Some(fragment)) => {
                assert_eq!(k, key);
                assert!(why.contains(fragment), "{key} on {platform}: {why}");
                assert!(
                    !vault.values(&env.name).unwrap().contains_key(key),
                    "{key}: nothing written"
                );
                assert!(store.variable(&env.name, key).unwrap().is_none(), "{key}: no record");
            }
            (other, _) => panic!("{key} on {platform}: expected {expected:?}, got {other:?}"),
        }
    };
    let shape = Some("is not a variable name: use upper-case letters");
    check(Platform::SelfHosted, "LOG_LEVEL", None);
    check(Platform::SelfHosted, "_PRIVATE_2", None);
    check(Platform::SelfHosted, "database_url", shape);
    check(Platform::SelfHosted, "Api_Key", shape);
    check(Platform::SelfHosted, "2FA_SECRET", shape);
    check(
        Platform::SelfHosted,
        "PORT",
        Some("is set by Rollway from [service] port"),
    );
    check(Platform::Railway, "PORT", None);
    check(Platform::Railway, "RAILWAY_TOKEN", Some("RAILWAY_ prefix"));
    check(Platform::Vercel, "AWS_REGION", Some("reserved by Vercel"));
    check(Platform::Supabase, "SUPABASE_URL", Some("SUPABASE_ prefix"));
    check(Platform::Other, "SUPABASE_URL", None);
    // `secrets check` reads the same rule for keys already in the file.
    let railway = env_on("env-railway", Platform::Railway);
    let problems = vault.check(&railway).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
}
