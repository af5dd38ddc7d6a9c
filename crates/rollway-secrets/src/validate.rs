//! Checks an environment's values against the declared variables (seeds
//! 001, 002, 003): every key through the model's naming rule, required ones
//! present, and each value through the model's one per-value check (`rules::variable::validate_value`: urls and
//! schemes, formats, strength, nothing empty in production). Every problem
//! is reported at once, and no message ever quotes a value, since it may be
//! secret.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rollway_model::mask::{MIN_SECRET_LEN, Masker};
use rollway_model::rules::format::Format;
use rollway_model::rules::strength::MIN_LENGTH;
use rollway_model::rules::variable::{VariableSpec, url_password, validate_key, validate_value};
use rollway_model::{EnvironmentKind, Platform, VariableType};
use serde::{Deserialize, Serialize};

/// A variable declared under `[variables.KEY]` in `rollway.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableDecl {
    pub key: String,
    pub ty: VariableType,
    /// For urls: the scheme the value must use (`postgres` also accepts `postgresql`).
    pub scheme: Option<String>,
    /// A regex (matched as written, so anchor it) or a preset: `uuid`, `hex:N`, `base64:N`.
    pub format: Option<String>,
    pub secret: bool,
    pub required_for: Vec<EnvironmentKind>,
}

/// One thing wrong with one variable. `message` is a lowercase phrase that
/// follows the key and never contains the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.key, self.message)
    }
}

/// Every problem with `values` (key → value) for an environment of kind
/// `env_kind` on `platform`: first each key against the platform's naming
/// rule (seed 003, `rules::variable::validate_key`), then each declared
/// variable in declaration order. `allow_weak` names the keys whose weak
/// values were accepted with `--allow-weak`.
pub fn check_environment(
    env_kind: EnvironmentKind,
    platform: Platform,
    decls: &[VariableDecl],
    values: &BTreeMap<String, String>,
    allow_weak: &BTreeSet<String>,
) -> Vec<Problem> {
    let production = env_kind == EnvironmentKind::Production;
    let mut problems = Vec::new();
    for key in values.keys() {
        for violation in validate_key(key, platform) {
            problems.push(Problem {
                key: key.clone(),
                message: violation.message,
            });
        }
    }
    for decl in decls {
        let mut report = |message: String| {
            problems.push(Problem {
                key: decl.key.clone(),
                message,
            });
        };
        let required = decl.required_for.contains(&env_kind);
        let value = match values.get(&decl.key) {
            None if required => {
                report(format!(
                    "is required in {env_kind} environments but is not set; set it with `rollway secrets set`"
                ));
                continue;
            }
            None if production && decl.secret => {
                report("is a secret and must be set in production (seed 002); set it with `rollway secrets set` or `rollway secrets generate`".into());
                continue;
            }
            None => continue,
            Some(v) => v,
        };
        if value.is_empty() && !production {
            if required {
                report(format!("is required in {env_kind} environments but is empty"));
            }
            continue;
        }
        let format = decl.format.as_deref().map(Format::parse).transpose();
        let spec = VariableSpec {
            key: &decl.key,
            value_type: decl.ty,
            scheme: decl.scheme.as_deref(),
            format: format.as_ref().ok().and_then(Option::as_ref),
            secret: decl.secret,
            allow_weak: allow_weak.contains(&decl.key),
        };
        for violation in validate_value(&spec, value, env_kind) {
            report(violation.message);
        }
        if let Err(e) = format
            && !value.is_empty()
        {
            report(format!(
                "has an invalid format in rollway.toml: {e}; write a regex, or a preset: uuid, hex:N, base64:N"
            ));
        }
    }
    problems
}

/// The masking filter for an environment: every value is masked except those
/// of variables declared `secret = false`. A url's password and each
/// comma-separated part of at least 16 characters (APP_KEYS) are masked on
/// their own too, since they show up alone in logs.
pub fn secret_masker(decls: &[VariableDecl], values: &BTreeMap<String, String>) -> Masker {
    let plain: BTreeSet<&str> = decls.iter().filter(|d| !d.secret).map(|d| d.key.as_str()).collect();
    let mut secrets: Vec<String> = Vec::new();
    for (key, value) in values {
        if plain.contains(key.as_str()) {
            continue;
        }
        secrets.push(value.clone());
        if let Some(p) = url_password(value).filter(|p| p.len() >= MIN_SECRET_LEN) {
            secrets.push(p);
        }
        if value.contains(',') {
            secrets.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|p| p.len() >= MIN_LENGTH)
                    .map(str::to_string),
            );
        }
    }
    Masker::new(secrets)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use EnvironmentKind::{Development, Production, Staging};

    fn decl(key: &str, ty: VariableType, secret: bool) -> VariableDecl {
        VariableDecl {
            key: key.into(),
            ty,
            scheme: None,
            format: None,
            secret,
            required_for: Vec::new(),
        }
    }

    fn url(key: &str, scheme: &str) -> VariableDecl {
        VariableDecl {
            scheme: Some(scheme.into()),
            ..decl(key, VariableType::Url, true)
        }
    }

    fn formatted(key: &str, format: &str) -> VariableDecl {
        VariableDecl {
            format: Some(format.into()),
            ..decl(key, VariableType::Key, false)
        }
    }

    fn map(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        list.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    const STRONG: &str = "kX9#mQ2$vL7@nR4!wZ";

    /// `expected` lists (key, message fragment) in order; also checks that no
    /// message quotes any value of at least four characters.
    fn check(
        kind: EnvironmentKind,
        decls: &[VariableDecl],
        values: &[(&str, &str)],
        allow_weak: &[&str],
        expected: &[(&str, &str)],
    ) {
        let values = map(values);
        let allow: BTreeSet<String> = allow_weak.iter().map(|s| (*s).to_string()).collect();
        let problems = check_environment(kind, Platform::SelfHosted, decls, &values, &allow);
        let got: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        let want: Vec<&str> = expected.iter().map(|(k, _)| *k).collect();
        assert_eq!(got, want, "{problems:#?}");
        for (p, (_, fragment)) in problems.iter().zip(expected) {
            assert!(p.message.contains(fragment), "{:?} lacks {fragment:?}", p.message);
            assert!(p.message.starts_with(|c: char| c.is_lowercase()), "{:?}", p.message);
            for v in values.values().filter(|v| v.len() >= 4) {
                assert!(!p.message.contains(v.as_str()), "{:?} quotes a value", p.message);
            }
        }
    }

    #[test]
    fn required_variables() {
        let mut db = url("DATABASE_URL", "postgres");
        db.required_for = vec![Staging, Production];
        let plain = VariableDecl {
            required_for: vec![Development],
            ..decl("LOG_LEVEL", VariableType::String, false)
        };
        let secret = decl("JWT_SECRET", VariableType::String, true);
        let decls = [db, plain, secret];
        check(
            Staging,
            &decls,
            &[],
            &[],
            &[("DATABASE_URL", "required in staging environments but is not set")],
        );
        check(
            Development,
            &decls,
            &[],
            &[],
            &[("LOG_LEVEL", "required in development")],
        );
        check(
            Production,
            &decls,
            &[],
            &[],
            &[
                ("DATABASE_URL", "required in production"),
                ("JWT_SECRET", "must be set in production (seed 002)"),
            ],
        );
        check(EnvironmentKind::Test, &decls, &[], &[], &[]);
        check(
            Staging,
            &decls,
            &[("DATABASE_URL", "")],
            &[],
            &[("DATABASE_URL", "required in staging environments but is empty")],
        );
    }

    #[test]
    fn nothing_empty_in_production() {
        let decls = [
            decl("JWT_SECRET", VariableType::String, true),
            decl("LOG_LEVEL", VariableType::String, false),
        ];
        let values = [("JWT_SECRET", ""), ("LOG_LEVEL", "")];
        check(
            Production,
            &decls,
            &values,
            &[],
            &[("JWT_SECRET", "is empty"), ("LOG_LEVEL", "is empty")],
        );
        check(Staging, &decls, &values, &[], &[]);
        // --allow-weak does not excuse an empty value.
        check(
            Production,
            &decls,
            &values,
            &["JWT_SECRET"],
            &[("JWT_SECRET", "is empty"), ("LOG_LEVEL", "is empty")],
        );
    }

    #[test]
    fn urls_and_schemes() {
        let decls = [url("DATABASE_URL", "postgres")];
        let ok = |v: &str| check(Staging, &decls, &[("DATABASE_URL", v)], &[], &[]);
        let bad = |v: &str, fragment: &str| {
            check(
                Staging,
                &decls,
                &[("DATABASE_URL", v)],
                &[],
                &[("DATABASE_URL", fragment)],
            )
        };
        ok("postgres://app:pw@db.internal:5432/app");
        ok("postgresql://db/app?sslmode=require");
        ok("POSTGRES://db/app");
        bad(
            "mysql://db/app",
            "wrong scheme; expected postgres://… or postgresql://…",
        );
        bad("not a url", "is not a valid url (relative url without a base)");
        bad("postgres://db:99999/app", "is not a valid url (invalid port number)");
        bad("postgres:///app", "has no host");
        bad("postgres:app", "has no host");
        let web = [VariableDecl {
            scheme: None,
            ..url("BACKEND_URL", "")
        }];
        check(Staging, &web, &[("BACKEND_URL", "https://api.example.com")], &[], &[]);
        check(
            Staging,
            &web,
            &[("BACKEND_URL", "api.example.com")],
            &[],
            &[("BACKEND_URL", "not a valid url")],
        );
        let https = [url("FRONTEND_URL", "https")];
        check(
            Staging,
            &https,
            &[("FRONTEND_URL", "http://example.com")],
            &[],
            &[("FRONTEND_URL", "expected https://…")],
        );
    }

    #[test]
    fn formats() {
        let decls = [
            formatted("COHERE_API_KEY", "^[A-Za-z0-9]{40}$"),
            formatted("ID", "uuid"),
            formatted("HEX", "hex:4"),
            formatted("B64", "base64:4"),
            formatted("LOOSE", "[0-9]"),
        ];
        let good = [
            ("COHERE_API_KEY", "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5hJ7k"),
            ("ID", "0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"),
            ("HEX", "DEADbeef"),
            ("B64", "AQIDBA=="),
            ("LOOSE", "unanchored 7 matches"),
        ];
        check(Production, &decls, &good, &[], &[]);
        check(
            Production,
            &decls,
            &[("B64", "AQIDBA"), ("ID", "0190A5B2-7C3D-7E4F-8A9B-0C1D2E3F4A5B")],
            &[],
            &[],
        );
        check(Production, &decls, &[("B64", "-_-_-w")], &[], &[]);
        let bad = [
            ("COHERE_API_KEY", "too-short-and-has-dashes"),
            ("ID", "0190a5b2_7c3d_7e4f_8a9b_0c1d2e3f4a5b"),
            ("HEX", "deadbeefcafe"),
            ("B64", "AQIDBAU="),
            ("LOOSE", "no digits here"),
        ];
        check(
            Production,
            &decls,
            &bad,
            &[],
            &[
                ("COHERE_API_KEY", "expected the pattern ^[A-Za-z0-9]{40}$"),
                ("ID", "expected a uuid"),
                ("HEX", "expected 8 hex characters (4 bytes)"),
                ("B64", "expected base64 of 4 bytes"),
                ("LOOSE", "expected the pattern [0-9]"),
            ],
        );
        check(
            Staging,
            &[formatted("X", "hex:")],
            &[("X", "abcd")],
            &[],
            &[(
                "X",
                "has an invalid format in rollway.toml: 'hex:' needs a positive byte count",
            )],
        );
        // A bad spec is reported once, and not for an empty value.
        check(Staging, &[formatted("X", "hex:")], &[("X", "")], &[], &[]);
    }

    #[test]
    fn strength_in_production() {
        let decls = [
            decl("JWT_SECRET", VariableType::String, true),
            decl("LOG_LEVEL", VariableType::String, false),
            url("DATABASE_URL", "postgres"),
        ];
        let weak = [
            ("JWT_SECRET", "changeme"),
            ("LOG_LEVEL", "info"),
            ("DATABASE_URL", "postgres://app:postgres@db/app"),
        ];
        check(
            Production,
            &decls,
            &weak,
            &[],
            &[
                (
                    "JWT_SECRET",
                    "is a weak secret: it is shorter than 16 characters, it is a well-known weak",
                ),
                ("DATABASE_URL", "has a weak password"),
            ],
        );
        check(Production, &decls, &weak, &["JWT_SECRET", "DATABASE_URL"], &[]);
        check(Staging, &decls, &weak, &[], &[]);
        let strong = [
            ("JWT_SECRET", STRONG),
            ("LOG_LEVEL", "info"),
            ("DATABASE_URL", "postgres://app:kX9%23mQ2%24vL7%40nR4%21@db/app"),
        ];
        check(Production, &decls, &strong, &[], &[]);
        // A url without a password has nothing to measure.
        check(
            Production,
            &decls,
            &[("JWT_SECRET", STRONG), ("DATABASE_URL", "postgres://db/app")],
            &[],
            &[],
        );
    }

    #[test]
    fn every_problem_at_once_without_values() {
        let mut db = url("DATABASE_URL", "postgres");
        db.required_for = vec![Production];
        let decls = [
            db,
            decl("ADMIN_JWT_SECRET", VariableType::String, true),
            decl("JWT_SECRET", VariableType::String, true),
            formatted("COHERE_API_KEY", "^[A-Za-z0-9]{40}$"),
            decl("ENCRYPTION_KEY", VariableType::Key, true),
        ];
        let values = [
            ("DATABASE_URL", "postgres//canary-url-9f3b:secretpw@db"),
            ("ADMIN_JWT_SECRET", ""),
            ("JWT_SECRET", "canary-weak-7"),
            ("COHERE_API_KEY", "canary-key-has-dashes-0c1d"),
            ("bad-name", "canary-value-x"),
        ];
        check(
            Production,
            &decls,
            &values,
            &[],
            &[
                ("bad-name", "is not a variable name: use upper-case letters"),
                ("DATABASE_URL", "not a valid url"),
                ("ADMIN_JWT_SECRET", "is empty"),
                ("JWT_SECRET", "weak secret"),
                ("COHERE_API_KEY", "does not match its format"),
                ("ENCRYPTION_KEY", "must be set in production"),
            ],
        );
        let problems = check_environment(
            Production,
            Platform::SelfHosted,
            &decls,
            &map(&values),
            &BTreeSet::new(),
        );
        let all = problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
        for fragment in ["canary", "secretpw", "9f3b", "0c1d"] {
            assert!(!all.contains(fragment), "{all}");
        }
        assert!(all.contains("JWT_SECRET is a weak secret"), "{all}");
    }

    #[test]
    fn masker_covers_secrets_and_their_parts() {
        let decls = [
            decl("LOG_LEVEL", VariableType::String, false),
            url("DATABASE_URL", "postgres"),
        ];
        let values = map(&[
            ("LOG_LEVEL", "verbose"),
            ("DATABASE_URL", "postgres://app:s3cr%40tpass@db/app"),
            ("APP_KEYS", "firstkeyAAAAAAAAAAAA,secondkeyBBBBBBBBBBB"),
            ("UNDECLARED", "hidden-by-default"),
        ]);
        let masker = secret_masker(&decls, &values);
        let masked = masker.mask(
            "level verbose url postgres://app:s3cr%40tpass@db/app pw s3cr@tpass key secondkeyBBBBBBBBBBB undeclared hidden-by-default",
        );
        assert_eq!(masked, "level verbose url **** pw **** key **** undeclared ****");
    }

    #[test]
    fn generated_values_clear_the_bar() {
        for bytes in [16, 32, 64] {
            let v = crate::generate::random_secret(bytes).unwrap();
            let s = crate::assess(&v);
            assert!(s.ok, "{bytes} random bytes: {s:?}");
            assert!(
                s.entropy_bits >= 8.0 * bytes as f64 * 0.7,
                "{bytes} bytes: {}",
                s.entropy_bits
            );
            let decls = [decl("JWT_SECRET", VariableType::String, true)];
            check(Production, &decls, &[("JWT_SECRET", &v)], &[], &[]);
        }
    }
}
