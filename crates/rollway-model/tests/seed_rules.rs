#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The seed-rule table (`seed-rules.toml`) against the seeds and the code:
//! every quote is on its seed line, every row names a validator that exists
//! and a case that breaks the rule on a bad input and keeps quiet on a good
//! one, every case serves a row, and every rule id the code can report is
//! in the table.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rollway_model::entities::backup::retention_days;
use rollway_model::rules::format::Format;
use rollway_model::rules::variable::VariableSpec;
use rollway_model::rules::{self, TIMES_MONOTONIC, TRANSITION_ALLOWED, Violation, transition_violation};
use rollway_model::*;
use serde_json::json;

// ---------------------------------------------------------------------------
// The table.

#[derive(Debug, Default)]
struct Row {
    at: usize,
    seed: String,
    line: usize,
    quote: String,
    rule: String,
    validator: String,
    case: String,
    /// Tests elsewhere in the workspace (`PATH::FN`, PATH from the
    /// repository root) proving the rule holds where data enters or changes.
    enforced: Vec<String>,
}

impl Row {
    fn is_io(&self) -> bool {
        self.validator.starts_with("io: ")
    }
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository's own verbatim copy of the seeds (`docs/requirements/`),
/// so a fresh clone checks its quotes with nothing beside it.
fn seeds_dir() -> PathBuf {
    manifest_dir().join("../../docs/requirements/seeds")
}

/// Reads the table with `toml_edit` (the TOML parser the workspace already
/// uses): a syntax error, a missing key, an unknown key or a value of the
/// wrong type fails the test with the row's line in seed-rules.toml.
fn table() -> Vec<Row> {
    let path = manifest_dir().join("seed-rules.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let doc = toml_edit::Document::parse(text.as_str()).unwrap_or_else(|e| {
        let at = e.span().map_or(1, |r| line_of(r.start));
        panic!("seed-rules.toml:{at}: invalid TOML: {}", e.message().trim())
    });
    let keys: Vec<&str> = doc.as_table().iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["rule"], "seed-rules.toml: the file holds only [[rule]] rows");
    let rules = doc["rule"]
        .as_array_of_tables()
        .unwrap_or_else(|| panic!("seed-rules.toml: `rule` must be an array of tables ([[rule]])"));
    let mut rows = Vec::new();
    for t in rules.iter() {
        let at = t.span().map_or(0, |r| line_of(r.start));
        let mut row = Row { at, ..Row::default() };
        for (key, item) in t.iter() {
            let value = item.as_value();
            match (key, value.and_then(|v| v.as_str()), value.and_then(|v| v.as_integer())) {
                ("seed", Some(s), _) => row.seed = s.to_owned(),
                ("line", _, Some(l)) => {
                    row.line = usize::try_from(l).unwrap_or_else(|_| panic!("seed-rules.toml:{at}: line {l} < 0"))
                }
                ("quote", Some(s), _) => row.quote = s.to_owned(),
                ("rule", Some(s), _) => row.rule = s.to_owned(),
                ("validator", Some(s), _) => row.validator = s.to_owned(),
                ("case", Some(s), _) => row.case = s.to_owned(),
                ("enforced", _, _) if item.as_array().is_some() => {
                    for v in item.as_array().into_iter().flatten() {
                        let test = v
                            .as_str()
                            .unwrap_or_else(|| panic!("seed-rules.toml:{at}: enforced lists strings (PATH::FN)"));
                        row.enforced.push(test.to_owned());
                    }
                }
                (k, _, _) => panic!(
                    "seed-rules.toml:{at}: unexpected key or type: {k} ({})",
                    item.type_name()
                ),
            }
        }
        assert!(
            !row.seed.is_empty()
                && row.line > 0
                && !row.quote.is_empty()
                && !row.rule.is_empty()
                && !row.validator.is_empty(),
            "seed-rules.toml:{at}: a row needs seed, line, quote, rule and validator"
        );
        rows.push(row);
    }
    rows
}

// ---------------------------------------------------------------------------
// The table's own tests.

#[test]
fn every_quote_is_on_its_seed_line() {
    let mut cache: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for r in table() {
        let lines = cache.entry(r.seed.clone()).or_insert_with(|| {
            let path = seeds_dir().join(&r.seed);
            std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("seed-rules.toml:{}: cannot read {}: {e}", r.at, path.display()))
                .lines()
                .map(str::to_owned)
                .collect()
        });
        match lines.get(r.line - 1) {
            None => problems.push(format!("seed-rules.toml:{}: {} has no line {}", r.at, r.seed, r.line)),
            Some(text) if !text.contains(&r.quote) => problems.push(format!(
                "seed-rules.toml:{}: {}:{} does not contain {:?} (the line is {:?})",
                r.at, r.seed, r.line, r.quote, text
            )),
            Some(_) => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_enforcement_test_exists() {
    let root = manifest_dir().join("../..");
    let mut problems = Vec::new();
    for r in table() {
        for test in &r.enforced {
            let Some((path, func)) = test.rsplit_once("::") else {
                problems.push(format!("seed-rules.toml:{}: enforced {test:?} is not PATH::FN", r.at));
                continue;
            };
            let text = std::fs::read_to_string(root.join(path)).unwrap_or_default();
            let declared =
                regex::Regex::new(&format!(r"#\[test\]\s*(?:#\[[^\]]*\]\s*)*fn {}\(", regex::escape(func))).unwrap();
            if !declared.is_match(&text) && !is_conformance_case(&root.join(path), &text, func) {
                problems.push(format!("seed-rules.toml:{}: no #[test] fn {func} in {path}", r.at));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A case of a store conformance list: `func` is named in the file's
/// `conformance! { … }` (which makes it a #[test] on each backend) and
/// defined in the file or in a module it includes with `#[path = "…"]`.
fn is_conformance_case(path: &Path, text: &str, func: &str) -> bool {
    let name = regex::escape(func);
    let listed = regex::Regex::new(&format!(r"conformance!\s*\{{[^}}]*\b{name}\b")).unwrap();
    if !listed.is_match(text) {
        return false;
    }
    let defined = regex::Regex::new(&format!(r"\bfn {name}\(")).unwrap();
    let dir = path.parent().unwrap_or(Path::new("."));
    let included = regex::Regex::new(r#"#\[path = "([^"]+)"\]"#).unwrap();
    defined.is_match(text)
        || included.captures_iter(text).any(|c| {
            let module = std::fs::read_to_string(dir.join(&c[1])).unwrap_or_default();
            defined.is_match(&module)
        })
}

#[test]
fn rows_and_cases_match_one_to_one() {
    let registry: BTreeSet<&str> = cases().iter().map(|(n, _)| *n).collect();
    assert_eq!(registry.len(), cases().len(), "two cases share a name");
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    let mut keys = BTreeSet::new();
    for r in table() {
        if !keys.insert((r.seed.clone(), r.line, r.quote.clone(), r.rule.clone())) {
            problems.push(format!("seed-rules.toml:{}: the same row is listed twice", r.at));
        }
        if r.is_io() {
            if !r.case.is_empty() {
                problems.push(format!(
                    "seed-rules.toml:{}: an io row has no case; it is tested where its IO lives",
                    r.at
                ));
            }
            continue;
        }
        if r.case.is_empty() {
            problems.push(format!("seed-rules.toml:{}: rule {} has no case", r.at, r.rule));
        } else if !registry.contains(r.case.as_str()) {
            problems.push(format!(
                "seed-rules.toml:{}: case {} does not exist in tests/seed_rules.rs",
                r.at, r.case
            ));
        } else if !used.insert(r.case.clone()) {
            problems.push(format!("seed-rules.toml:{}: case {} serves two rows", r.at, r.case));
        }
    }
    for name in registry {
        if !used.contains(name) {
            problems.push(format!("case {name} is in no row of seed-rules.toml"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_rule_id_in_the_code_is_in_the_table() {
    let rows = table();
    let in_table: BTreeSet<&str> = rows.iter().map(|r| r.rule.as_str()).collect();
    let code: BTreeSet<&str> = rules::all_rules().into_iter().collect();
    let mut problems = Vec::new();
    for id in &code {
        if !in_table.contains(id) {
            problems.push(format!(
                "rule {id} is reported by the code but has no row in seed-rules.toml"
            ));
        }
    }
    for r in rows.iter().filter(|r| !r.is_io()) {
        if !code.contains(r.rule.as_str()) {
            problems.push(format!(
                "seed-rules.toml:{}: rule {} is not in rules::all_rules()",
                r.at, r.rule
            ));
        }
    }
    // Every rule-id constant declared under src/rules is listed in all_rules().
    let declared = regex::Regex::new(r#"pub const [A-Z_]+: &str = "([a-z_]+\.[a-z0-9-]+)";"#).unwrap();
    for entry in std::fs::read_dir(manifest_dir().join("src/rules")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for cap in declared.captures_iter(&text) {
            if !code.contains(&cap[1]) {
                problems.push(format!(
                    "{}: rule {} is declared but missing from its RULES list",
                    path.display(),
                    &cap[1]
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_validator_exists() {
    let src = manifest_dir().join("src");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let entity_files: Vec<String> = std::fs::read_dir(src.join("entities"))
        .unwrap()
        .map(|e| read(&e.unwrap().path()))
        .collect();
    let io_crates = ["rollway-engine", "rollway-ops", "rollway-store", "rollway-secrets"];
    let mut problems = Vec::new();
    for r in table() {
        let v = r.validator.as_str();
        let ok = if let Some(krate) = v.strip_prefix("io: ") {
            io_crates.contains(&krate)
        } else if let Some(path) = v.strip_prefix("rules::") {
            match path.split_once("::") {
                Some((module, func)) => {
                    let text = read(&src.join("rules").join(format!("{module}.rs")));
                    text.contains(&format!("pub fn {func}("))
                }
                None => false,
            }
        } else {
            match v.split_once("::") {
                Some((ty, method)) => entity_files.iter().any(|text| {
                    text.contains(&format!("pub struct {ty} ")) && text.contains(&format!("pub fn {method}("))
                }),
                None => false,
            }
        };
        if !ok {
            problems.push(format!("seed-rules.toml:{}: validator {v} does not exist", r.at));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_case_breaks_and_keeps_its_rule() {
    let registry: BTreeMap<&str, fn()> = cases().into_iter().collect();
    let mut failed = Vec::new();
    for r in table().into_iter().filter(|r| !r.is_io()) {
        let Some(case) = registry.get(r.case.as_str()) else {
            continue; // reported by rows_and_cases_match_one_to_one
        };
        FIRED.with(|f| f.borrow_mut().clear());
        let outcome = std::panic::catch_unwind(case);
        let fired = FIRED.with(|f| f.borrow().clone());
        match outcome {
            Err(_) => failed.push(format!(
                "seed-rules.toml:{}: case {} failed (see its panic above)",
                r.at, r.case
            )),
            Ok(()) if !fired.contains(&r.rule) => failed.push(format!(
                "seed-rules.toml:{}: case {} never made rule {} fire (it fired {fired:?})",
                r.at, r.case, r.rule
            )),
            Ok(()) => {}
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

// ---------------------------------------------------------------------------
// The check and its helpers.

thread_local! {
    /// The rules the running case showed firing.
    static FIRED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// The rule fires on the bad input with exactly the `expected` (field, rule)
/// pairs, and the good input breaks nothing.
fn check(bad: Vec<Violation>, good: Vec<Violation>, expected: &[(&str, &str)]) {
    let mut got: Vec<(String, String)> = bad.iter().map(|v| (v.field.clone(), v.rule.to_owned())).collect();
    let mut want: Vec<(String, String)> = expected
        .iter()
        .map(|(f, r)| ((*f).to_owned(), (*r).to_owned()))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "violations of the bad input: {bad:#?}");
    for v in &bad {
        assert!(
            !v.message.is_empty() && !v.message.starts_with(char::is_uppercase),
            "message {:?}",
            v.message
        );
    }
    assert!(good.is_empty(), "the good input broke rules: {good:#?}");
    FIRED.with(|f| f.borrow_mut().extend(want.into_iter().map(|(_, r)| r)));
}

fn err<T>(r: Result<T, Violation>) -> Vec<Violation> {
    r.err().into_iter().collect()
}

fn refused(r: Result<(), StatusChangeError>) -> Vec<Violation> {
    r.err().map(|e| e.violations).unwrap_or_default()
}

/// A record of `t` with Rollway's default thresholds over the window its
/// aggregation rule names, ending on an hour (so an error rate's hour is whole).
fn metric(t: MetricType, value: f64) -> MetricRecord {
    let end = Timestamp(1_700_002_800_000); // 2023-11-14T23:00:00Z
    let start = match t {
        MetricType::HealthCheck => end,
        MetricType::Performance => Timestamp(end.0 - 5 * 60_000),
        MetricType::ErrorRate => Timestamp(end.0 - 3_600_000),
        MetricType::Uptime => Timestamp(end.0 - 14 * 86_400_000),
    };
    let thresholds = Thresholds::default_for(t, 99.5, 3);
    MetricRecord::new("production", "web", t, value, thresholds, start, end)
}

const T0: Timestamp = Timestamp(1_700_000_000_000);

fn at(minutes: i64) -> Timestamp {
    Timestamp(T0.0 + minutes * 60_000)
}

fn days(n: i64) -> i64 {
    n * 24 * 60
}

fn digest(s: &str) -> Sha256Digest {
    Sha256Digest::of(s.as_bytes())
}

type Step<E, S> = fn(&mut E, S, Timestamp) -> Vec<Violation>;

/// Walks `path` one minute apart from `start`, collecting what was refused.
fn walk<E, S: Copy>(e: &mut E, step: Step<E, S>, path: &[S], start: i64) -> Vec<Violation> {
    path.iter().zip(start..).flat_map(|(s, m)| step(e, *s, at(m))).collect()
}

/// A transition rule: `good` walks from a fresh entity without a refusal;
/// after `prefix`, the edge to `forbidden` is refused and changes nothing.
fn edge_case<E: Clone + PartialEq + std::fmt::Debug, S: Copy>(
    fresh: &E,
    step: Step<E, S>,
    good: &[S],
    prefix: &[S],
    forbidden: S,
) {
    let mut g = fresh.clone();
    let good_v = walk(&mut g, step, good, 1);
    let mut b = fresh.clone();
    assert!(
        walk(&mut b, step, prefix, 1).is_empty(),
        "the prefix {:?} was refused",
        prefix.len()
    );
    let before = b.clone();
    let bad_v = step(&mut b, forbidden, at(prefix.len() as i64 + 1));
    assert_eq!(b, before, "a refused transition changed the entity");
    check(bad_v, good_v, &[("status", TRANSITION_ALLOWED)]);
}

// Baselines: valid entities the cases break one field at a time.

fn artifact() -> Artifact {
    Artifact {
        id: ArtifactId::generate(T0),
        kind: ArtifactKind::App,
        sha256: digest("package"),
        content_digest: digest("manifest"),
        size_bytes: 4096,
        source_version: Some(CommitHash::try_from("a".repeat(40)).unwrap()),
        branch: Some("main".into()),
        dirty: false,
        built_at: T0,
        aliases_resolved: true,
        unresolved_aliases: Vec::new(),
        contents: vec![ContentFolder {
            path: "dist".into(),
            files: 3,
            bytes: 4096,
        }],
        location: ".rollway/artifacts/hello.tar".into(),
        job_id: None,
        expires_at: at(days(90)),
        created_at: T0,
    }
}

fn deployment() -> Deployment {
    Deployment::new(DeploymentKind::Deploy, "production", "ops@example.com", T0)
}

fn dep_step(d: &mut Deployment, s: DeploymentStatus, t: Timestamp) -> Vec<Violation> {
    refused(match s {
        DeploymentStatus::Failed => d.fail("health check failed on app1", t),
        DeploymentStatus::RolledBack => d.roll_back("previous release restored", t),
        _ => d.transition(s, t),
    })
}

use DeploymentStatus as D;
const TO_SUCCEEDED: &[DeploymentStatus] = &[D::Building, D::Synthesizing, D::Deploying, D::Verifying, D::Succeeded];

fn deployed(path: &[DeploymentStatus]) -> Deployment {
    let mut d = deployment();
    assert!(walk(&mut d, dep_step, path, 1).is_empty());
    d
}

fn job() -> Job {
    Job::new(
        PipelineRunId::generate(T0),
        "test",
        JobType::Test,
        "ops@example.com",
        T0,
    )
}

fn job_step(j: &mut Job, s: JobStatus, t: Timestamp) -> Vec<Violation> {
    refused(j.transition(s, t))
}

fn job_after(path: &[JobStatus]) -> Job {
    let mut j = job();
    assert!(walk(&mut j, job_step, path, 1).is_empty());
    j
}

fn stack(name: &str, deps: &[&str]) -> Stack {
    let mut s = Stack::new(DeploymentId::generate(T0), name, T0);
    s.dependencies = deps.iter().map(|d| (*d).to_owned()).collect();
    s
}

fn stack_step(s: &mut Stack, to: StackStatus, t: Timestamp) -> Vec<Violation> {
    refused(if to == StackStatus::Failed {
        s.fail("deploy command exited 1", t)
    } else {
        s.transition(to, t)
    })
}

fn stack_at(name: &str, deps: &[&str], path: &[StackStatus]) -> Stack {
    let mut s = stack(name, deps);
    assert!(walk(&mut s, stack_step, path, 1).is_empty());
    s
}

fn resource() -> Resource {
    Resource::new(StackId::generate(T0), "AWS::RDS::DBInstance", "Database", T0)
}

fn verification() -> Verification {
    let mut v = Verification::new(DeploymentId::generate(T0), "/", T0);
    for host in ["deploy@app1.example.com", "deploy@app2.example.com"] {
        let mut h = HostResult::new(host, T0);
        h.http_status = Some(200);
        h.latency_ms = Some(12);
        h.completed_at = Some(at(31));
        h.result = Some(CheckResult::Pass);
        v.hosts.push(h);
    }
    v.result = v.summarize();
    v
}

fn env_spec(kind: EnvironmentKind, domain: Option<&str>, https: bool) -> EnvironmentSpec {
    EnvironmentSpec {
        name: kind.as_str().into(),
        kind,
        domain: domain.map(str::to_owned),
        https,
        platform: Platform::SelfHosted,
        app: None,
        nginx_config: None,
        config: json!({}),
    }
}

fn variable(key: &str, value_type: VariableType, secret: bool) -> Variable {
    let mut v = Variable::new("production", key, T0);
    v.value_type = value_type;
    v.secret = secret;
    v
}

const STRONG: &str = "q3Vd9kZ2xP7mR4tW8yB1nC6fH0jL5sAe";

fn alert() -> Alert {
    Alert::new(
        "production",
        AlertType::Availability,
        "p95_response_time_ms",
        Severity::Critical,
        2000.0,
        T0,
    )
}

fn alert_step(a: &mut Alert, s: AlertStatus, t: Timestamp) -> Vec<Violation> {
    refused(a.transition(s, t))
}

fn backup(class: BackupClass) -> Backup {
    Backup::new("production", BackupKind::Database, class, "/srv/backups/db.dump", T0)
}

fn restore() -> Restore {
    Restore::new("production", BackupId::generate(T0), T0)
}

fn restore_step(r: &mut Restore, s: RestoreStatus, t: Timestamp) -> Vec<Violation> {
    refused(r.transition(s, t))
}

fn certificate(auto_renew: bool) -> Certificate {
    let mut c = Certificate::new(
        "production",
        "api.example.com",
        "Let's Encrypt",
        Platform::SelfHosted,
        T0,
    );
    c.valid_from = Some(T0);
    c.valid_to = Some(at(days(90)));
    c.auto_renew = auto_renew;
    c
}

fn domain(name: &str, platform: Platform, cname: Option<&str>) -> Domain {
    let mut d = Domain::new("production", name, platform, T0);
    d.cname_target = cname.map(str::to_owned);
    d
}

fn backup_retention(class: BackupClass, seed_days: u32) {
    assert_eq!(retention_days(class), seed_days, "the seed's retention for {class}");
    let good = backup(class);
    let mut bad = good.clone();
    bad.retention_days = seed_days - 1;
    bad.expires_at = Timestamp(T0.0 + i64::from(seed_days - 1) * 86_400_000);
    check(
        rules::backup::validate(&bad),
        rules::backup::validate(&good),
        &[("retention_days", rules::backup::RETENTION_BY_CLASS)],
    );
    let mut late = good.clone();
    late.expires_at = Timestamp(late.expires_at.0 + 86_400_000);
    check(
        rules::backup::validate(&late),
        Vec::new(),
        &[("expires_at", rules::backup::RETENTION_BY_CLASS)],
    );
}

// ---------------------------------------------------------------------------
// The cases, one per row of seed-rules.toml.

macro_rules! cases {
    ($($name:ident $body:block)*) => {
        $(fn $name() $body)*

        /// Every case by name.
        fn cases() -> Vec<(&'static str, fn())> {
            vec![$((stringify!($name), $name as fn())),*]
        }
    };
}

cases! {
    // --- seed 000
    artifact_checksum_required {
        let good = digest("x").to_string();
        check(err(rules::artifact::parse_checksum("  ")), err(rules::artifact::parse_checksum(&good)), &[(
            "checksum",
            rules::artifact::CHECKSUM_REQUIRED,
        )]);
    }
    artifact_aliases_resolved {
        let mut bad = artifact();
        bad.aliases_resolved = false;
        bad.unresolved_aliases = vec!["@/lib/db".into()];
        check(
            rules::artifact::validate_deployable(&bad, at(1)),
            rules::artifact::validate_deployable(&artifact(), at(1)),
            &[("aliases_resolved", rules::artifact::ALIASES_RESOLVED), ("unresolved_aliases", rules::artifact::ALIASES_RESOLVED)],
        );
    }
    artifact_size_positive {
        let mut bad = artifact();
        bad.size_bytes = 0;
        check(rules::artifact::validate(&bad, at(1)), rules::artifact::validate(&artifact(), at(1)), &[(
            "size_bytes",
            rules::artifact::SIZE_POSITIVE,
        )]);
        // An archive of an empty tree has bytes but no file: empty all the same.
        let mut no_files = artifact();
        no_files.contents = vec![ContentFolder { path: "dist".into(), files: 0, bytes: 0 }];
        check(rules::artifact::validate(&no_files, at(1)), Vec::new(), &[("contents", rules::artifact::SIZE_POSITIVE)]);
    }
    session_pending_in_progress_success_or_failed {
        edge_case(&deployment(), dep_step, TO_SUCCEEDED, &[], D::Succeeded);
        edge_case(&deployment(), dep_step, &[D::Building, D::Failed], &[], D::Verifying);
    }
    session_success_rolled_back_optional {
        let mut good = TO_SUCCEEDED.to_vec();
        good.push(D::RolledBack);
        edge_case(&deployment(), dep_step, &good, &[D::Building], D::RolledBack);
    }
    session_timestamps_monotonic {
        let mut d = deployed(&[D::Building]);
        let before = d.clone();
        let bad = refused(d.transition(D::Synthesizing, T0));
        assert_eq!(d, before);
        let good = refused(d.transition(D::Synthesizing, at(1)));
        check(bad, good, &[("status", TIMES_MONOTONIC)]);
        let mut backwards = deployed(&[D::Building, D::Failed]);
        backwards.finished_at = Some(Timestamp(T0.0 - 1));
        check(rules::deployment::validate(&backwards), rules::deployment::validate(&deployed(TO_SUCCEEDED)), &[(
            "finished_at",
            TIMES_MONOTONIC,
        )]);
    }
    verification_pass_needs_expected_status {
        let mut bad = verification();
        bad.hosts[1].http_status = Some(502);
        check(rules::verification::validate(&bad, EnvironmentKind::Production), rules::verification::validate(&verification(), EnvironmentKind::Production), &[(
            "hosts[1].http_status",
            rules::verification::PASS_EXPECTED_STATUS,
        )]);
        // A host that FAILed with a 502 breaks no rule.
        let mut failed = bad.clone();
        failed.hosts[1].result = Some(CheckResult::Fail);
        failed.result = failed.summarize();
        assert_eq!(failed.result, Some(CheckResult::Fail));
        assert_eq!(rules::verification::validate(&failed, EnvironmentKind::Production), Vec::new());
    }
    verification_pass_needs_no_restarts {
        let mut bad = verification();
        bad.hosts[0].restarts_observed = 1;
        check(rules::verification::validate(&bad, EnvironmentKind::Staging), rules::verification::validate(&verification(), EnvironmentKind::Staging), &[(
            "hosts[0].restarts_observed",
            rules::verification::PASS_NO_RESTARTS,
        )]);
    }
    verification_stability_window_production_only {
        let mut short = verification();
        short.stability_window_ms = 60_000;
        check(rules::verification::validate(&short, EnvironmentKind::Production), rules::verification::validate(&short, EnvironmentKind::Staging), &[(
            "stability_window_ms",
            rules::verification::STABILITY_WINDOW_MIN,
        )]);
    }
    event_message_required {
        let bad = NewEvent::new(EventKind::ArtifactBuilt, Level::Info, " ");
        let good = NewEvent::new(EventKind::ArtifactBuilt, Level::Info, "artifact built");
        check(rules::event::validate(&bad), rules::event::validate(&good), &[("message", rules::event::MESSAGE_REQUIRED)]);
    }
    event_level_required {
        check(err(rules::event::parse_level("")), err(rules::event::parse_level("info")), &[(
            "level",
            rules::event::LEVEL_REQUIRED,
        )]);
    }
    event_deployment_required {
        let bad = NewEvent::new(EventKind::DeployStep, Level::Info, "switched current");
        let good = bad.clone().deployment(DeploymentId::generate(T0));
        check(rules::event::validate(&bad), rules::event::validate(&good), &[(
            "deployment_id",
            rules::event::DEPLOYMENT_REQUIRED,
        )]);
    }
    session_pending_to_in_progress {
        edge_case(&deployment(), dep_step, &[D::Building], &[], D::Deploying);
    }
    session_in_progress_to_success {
        edge_case(&deployment(), dep_step, TO_SUCCEEDED, &[D::Building], D::Succeeded);
    }
    session_in_progress_to_failed {
        edge_case(&deployment(), dep_step, &[D::Building, D::Synthesizing, D::Failed], TO_SUCCEEDED, D::Failed);
    }
    session_success_to_rolled_back {
        let mut good = TO_SUCCEEDED.to_vec();
        good.push(D::RolledBack);
        edge_case(&deployment(), dep_step, &good, &[D::Cancelled], D::RolledBack);
    }
    deployment_rollback_reason_required {
        let mut d = deployed(TO_SUCCEEDED);
        d.rollback_target = true;
        let before = d.clone();
        let bad = refused(d.transition(D::RolledBack, at(10)));
        assert_eq!(d, before);
        let good = refused(d.roll_back("error rate rose after the release", at(10)));
        assert_eq!(d.status(), D::RolledBack);
        assert!(!d.rollback_target, "a rolled back release is no rollback target");
        assert_eq!(d.finished_at, before.finished_at, "a later rollback keeps the time the deployment finished");
        check(bad, good, &[("rollback_reason", rules::deployment::ROLLBACK_REASON_REQUIRED)]);
    }

    // --- seed 001
    variable_url_valid {
        let mut v = variable("DATABASE_URL", VariableType::Url, true);
        v.scheme = Some("postgres".into());
        let spec = VariableSpec::from(&v);
        let good = rules::variable::validate_value(&spec, &format!("postgresql://app:{STRONG}@db.internal:5432/app?sslmode=require"), EnvironmentKind::Production);
        for bad in ["db.internal:5432", "postgres://app@db.internal:99999/app", "mysql://app@db/app", "postgres://bad host/app"] {
            check(rules::variable::validate_value(&spec, bad, EnvironmentKind::Production), good.clone(), &[(
                "variables.DATABASE_URL",
                rules::variable::URL_VALID,
            )]);
        }
    }
    variable_key_format {
        let v = variable("COHERE_API_KEY", VariableType::Key, false);
        let cohere = Format::parse("^[A-Za-z0-9]{40}$").unwrap();
        let spec = VariableSpec { format: Some(&cohere), ..VariableSpec::from(&v) };
        let good = rules::variable::validate_value(&spec, "a8Xk2mQ9pL4vR7tY1wZ3bN6cF0hJ5dSe4Gu7Ii0O", EnvironmentKind::Production);
        for bad in ["abc", "a8Xk2mQ9 pL4vR7tY1wZ3bN6cF0hJ5dSe4Gu7Ii0O", "a8Xk2mQ9-pL4vR7tY1wZ3bN6cF0hJ5dSe4Gu7Ii0O"] {
            check(rules::variable::validate_value(&spec, bad, EnvironmentKind::Production), good.clone(), &[(
                "variables.COHERE_API_KEY",
                rules::variable::KEY_FORMAT,
            )]);
        }
    }
    environment_kind_allowed {
        assert_eq!(rules::environment::parse_kind("prod"), Ok(EnvironmentKind::Production));
        check(err(rules::environment::parse_kind("qa")), err(rules::environment::parse_kind("dev")), &[(
            "kind",
            rules::environment::KIND_ALLOWED,
        )]);
    }
    job_start_time_required {
        let mut bad = job_after(&[JobStatus::Running, JobStatus::Success]);
        bad.start_time = None;
        let good = job_after(&[JobStatus::Running, JobStatus::Success]);
        check(rules::job::validate(&bad), rules::job::validate(&good), &[(
            "start_time",
            rules::job::START_TIME_REQUIRED,
        )]);
    }
    job_end_time_on_completion {
        let mut bad = job_after(&[JobStatus::Running, JobStatus::Failure]);
        bad.end_time = None;
        let mut early = job_after(&[JobStatus::Running]);
        early.end_time = Some(at(5));
        let good = job_after(&[JobStatus::Running, JobStatus::Failure]);
        check(rules::job::validate(&bad), rules::job::validate(&good), &[("end_time", rules::job::END_TIME_ON_COMPLETION)]);
        check(rules::job::validate(&early), rules::job::validate(&job_after(&[JobStatus::Running])), &[(
            "end_time",
            rules::job::END_TIME_ON_COMPLETION,
        )]);
    }
    job_status_allowed {
        check(err(rules::job::parse_status("skipped")), err(rules::job::parse_status("cancelled")), &[(
            "status",
            rules::job::STATUS_ALLOWED,
        )]);
    }
    job_times_ordered {
        let mut bad = job_after(&[JobStatus::Running, JobStatus::Success]);
        bad.start_time = Some(at(5));
        bad.end_time = Some(at(3));
        let mut same = bad.clone();
        same.end_time = Some(at(5));
        check(rules::job::validate(&bad), rules::job::validate(&same), &[("end_time", rules::job::TIMES_ORDERED)]);
    }
    job_commit_hash_format {
        assert_eq!(rules::job::parse_commit_hash(""), Ok(None), "empty outside git");
        let sha1 = "0123456789abcdef0123456789ABCDEF01234567";
        assert_eq!(rules::job::parse_commit_hash(sha1).unwrap().unwrap().as_str(), sha1.to_ascii_lowercase());
        check(err(rules::job::parse_commit_hash("abc123")), err(rules::job::parse_commit_hash(&"e".repeat(64))), &[(
            "commit_hash",
            rules::fields::COMMIT_HASH_FORMAT,
        )]);
    }
    artifact_checksum_sha256 {
        let upper = format!("sha256:{}", digest("x").as_str().to_ascii_uppercase());
        check(err(rules::artifact::parse_checksum("d41d8cd98f00b204e9800998ecf8427e")), err(rules::artifact::parse_checksum(&upper)), &[(
            "checksum",
            rules::artifact::CHECKSUM_SHA256,
        )]);
    }
    artifact_expires_in_future {
        let mut bad = artifact();
        bad.expires_at = at(1);
        check(rules::artifact::validate(&bad, at(1)), rules::artifact::validate(&artifact(), at(1)), &[(
            "expires_at",
            rules::artifact::EXPIRES_IN_FUTURE,
        )]);
        // Expiring no later than it was created is refused whatever the clock says.
        let mut backwards = artifact();
        backwards.expires_at = backwards.created_at;
        check(rules::artifact::validate(&backwards, at(-5)), Vec::new(), &[(
            "expires_at",
            rules::artifact::EXPIRES_IN_FUTURE,
        )]);
        assert!(bad.is_expired(at(1)) && !bad.is_expired(at(0)) && !artifact().is_expired(at(1)));
    }
    artifact_kind_allowed {
        check(err(rules::artifact::parse_kind("docker-image")), err(rules::artifact::parse_kind("frontend-build")), &[(
            "kind",
            rules::artifact::KIND_ALLOWED,
        )]);
    }
    event_kind_allowed {
        check(err(rules::event::parse_kind("job-skipped")), err(rules::event::parse_kind("rollback-completed")), &[(
            "event_type",
            rules::event::KIND_ALLOWED,
        )]);
    }
    event_timestamp_not_future {
        check(rules::event::validate_time(at(2), at(1)), rules::event::validate_time(at(1), at(1)), &[(
            "timestamp",
            rules::event::TIMESTAMP_NOT_FUTURE,
        )]);
        // The store's allowance for clock skew: up to it is present, past it is future.
        let skew = rules::event::MAX_CLOCK_SKEW;
        check(
            rules::event::validate_time_within(at(1).plus(skew + std::time::Duration::from_millis(1)), at(1), skew),
            rules::event::validate_time_within(at(1).plus(skew), at(1), skew),
            &[("timestamp", rules::event::TIMESTAMP_NOT_FUTURE)],
        );
    }
    job_pending_running_success {
        edge_case(&job(), job_step, &[JobStatus::Running, JobStatus::Success], &[], JobStatus::Success);
    }
    job_running_failure {
        edge_case(&job(), job_step, &[JobStatus::Running, JobStatus::Failure], &[JobStatus::Running, JobStatus::Success], JobStatus::Failure);
    }
    job_cancelled_started_or_not {
        let never_started = job_after(&[JobStatus::Cancelled]);
        assert_eq!((never_started.start_time, never_started.end_time), (None, Some(at(1))));
        assert_eq!(rules::job::validate(&never_started), Vec::new());
        edge_case(&job(), job_step, &[JobStatus::Running, JobStatus::Cancelled], &[JobStatus::Running, JobStatus::Failure], JobStatus::Cancelled);
    }
    environment_created_active_deprecated {
        fn step(e: &mut Environment, s: EnvironmentStatus, t: Timestamp) -> Vec<Violation> {
            e.transition(s, t).err().iter().map(transition_violation).collect()
        }
        let env = Environment::create(env_spec(EnvironmentKind::Staging, None, false), T0);
        edge_case(&env, step, &[EnvironmentStatus::Active, EnvironmentStatus::Deprecated], &[EnvironmentStatus::Active, EnvironmentStatus::Deprecated], EnvironmentStatus::Active);
    }

    // --- seed 002
    environment_domain_valid {
        let bad = env_spec(EnvironmentKind::Staging, Some("bad_domain"), true);
        let good = env_spec(EnvironmentKind::Staging, Some("api.example.com"), true);
        check(rules::environment::validate_spec(&bad), rules::environment::validate_spec(&good), &[(
            "domain",
            rules::environment::DOMAIN_VALID,
        )]);
        let record = Environment::create(bad, T0);
        assert_eq!(rules::environment::validate(&record).len(), 1);
    }
    environment_https_in_production {
        let bad = env_spec(EnvironmentKind::Production, Some("api.example.com"), false);
        let staging = env_spec(EnvironmentKind::Staging, Some("api.example.com"), false);
        check(rules::environment::validate_spec(&bad), rules::environment::validate_spec(&staging), &[(
            "https",
            rules::environment::HTTPS_IN_PRODUCTION,
        )]);
    }
    variable_secret_strength {
        let v = variable("JWT_SECRET", VariableType::String, true);
        let spec = VariableSpec::from(&v);
        let good = rules::variable::validate_value(&spec, STRONG, EnvironmentKind::Production);
        for bad in ["k9#Qz", "toBeModified1,toBeModified2", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "abcdefghabcdefgh"] {
            let found = rules::variable::validate_value(&spec, bad, EnvironmentKind::Production);
            assert!(found.iter().all(|x| !x.message.contains(bad)), "a message quoted the secret: {found:?}");
            check(found, good.clone(), &[("variables.JWT_SECRET", rules::variable::SECRET_STRENGTH)]);
            // The bar holds in production only.
            assert_eq!(rules::variable::validate_value(&spec, bad, EnvironmentKind::Staging), Vec::new());
        }
        let mut weak_ok = v.clone();
        weak_ok.allow_weak = true;
        assert_eq!(rules::variable::validate_value(&VariableSpec::from(&weak_ok), "k9#Qz", EnvironmentKind::Production), Vec::new());
    }
    variable_required_in_production {
        let mut v = variable("POSTGRES_PASSWORD", VariableType::String, true);
        v.allow_weak = true;
        let spec = VariableSpec::from(&v);
        check(rules::variable::validate_value(&spec, "", EnvironmentKind::Production), rules::variable::validate_value(&spec, "", EnvironmentKind::Development), &[(
            "variables.POSTGRES_PASSWORD",
            rules::variable::REQUIRED_IN_PRODUCTION,
        )]);
    }
    deployment_rollback_to {
        let target = deployed(TO_SUCCEEDED);
        let mut bad = Deployment::new(DeploymentKind::Rollback, "production", "ops@example.com", T0);
        let mut good = bad.clone();
        good.rollback_to = Some(target.id);
        check(rules::deployment::validate(&bad), rules::deployment::validate(&good), &[("rollback_to", rules::deployment::ROLLBACK_TO)]);
        bad.kind = DeploymentKind::Deploy;
        bad.rollback_to = Some(target.id);
        let mut returned = deployed(TO_SUCCEEDED);
        returned.roll_back("a later manual rollback", at(60)).unwrap();
        returned.rollback_to = Some(target.id);
        check(rules::deployment::validate(&bad), rules::deployment::validate(&returned), &[("rollback_to", rules::deployment::ROLLBACK_TO)]);
    }
    deployment_status_allowed {
        assert_eq!(rules::deployment::parse_status("SUCCESS"), Ok(D::Succeeded));
        assert_eq!(rules::deployment::parse_status("completed"), Ok(D::Succeeded));
        check(err(rules::deployment::parse_status("paused")), err(rules::deployment::parse_status("rolled_back")), &[(
            "status",
            rules::deployment::STATUS_ALLOWED,
        )]);
    }
    deployment_status_seed_words {
        // Seed 000 writes PENDING, IN_PROGRESS, SUCCESS, FAILED, ROLLED_BACK;
        // each reads in any case, mapped as DESIGN.md says. IN_PROGRESS names
        // four phases, so as one status it is refused.
        assert_eq!(rules::deployment::parse_status("PENDING"), Ok(D::Pending));
        assert_eq!(rules::deployment::parse_status("FAILED"), Ok(D::Failed));
        assert_eq!(rules::deployment::parse_status("ROLLED_BACK"), Ok(D::RolledBack));
        assert_eq!(D::matching("IN_PROGRESS").map(<[D]>::len), Ok(4));
        check(err(rules::deployment::parse_status("IN_PROGRESS")), err(rules::deployment::parse_status("SUCCESS")), &[(
            "status",
            rules::deployment::STATUS_ALLOWED,
        )]);
    }
    deployment_finished_at_on_completion {
        let good = deployed(TO_SUCCEEDED);
        assert_eq!(good.finished_at, Some(at(5)), "succeeded sets finished_at");
        let mut bad = good.clone();
        bad.finished_at = None;
        check(rules::deployment::validate_status(&bad), rules::deployment::validate_status(&good), &[(
            "finished_at",
            rules::deployment::FINISHED_AT_ON_COMPLETION,
        )]);
        let mut running = deployed(&[D::Building]);
        running.finished_at = Some(at(2));
        check(rules::deployment::validate_status(&running), rules::deployment::validate_status(&deployed(&[D::Building, D::Failed])), &[(
            "finished_at",
            rules::deployment::FINISHED_AT_ON_COMPLETION,
        )]);
    }
    monitor_settings_positive {
        let good = Monitor::new("production", HealthTarget::Backend, ProbeKind::Http, "https://api.example.com/health", T0);
        let mut bad = good.clone();
        bad.interval_ms = 0;
        bad.timeout_ms = 0;
        bad.retries = 0;
        check(rules::monitor::validate(&bad), rules::monitor::validate(&good), &[
            ("interval_ms", rules::monitor::SETTINGS_POSITIVE),
            ("timeout_ms", rules::monitor::SETTINGS_POSITIVE),
            ("retries", rules::monitor::SETTINGS_POSITIVE),
        ]);
    }
    alert_severity_matches_threshold {
        let defined = AlertThresholds { warning: Some(1000.0), critical: Some(2000.0) };
        let mut bad = alert();
        bad.threshold = 1000.0;
        check(rules::alert::validate_severity(&bad, &defined), rules::alert::validate_severity(&alert(), &defined), &[(
            "threshold",
            rules::alert::SEVERITY_THRESHOLD,
        )]);
        let warning_only = AlertThresholds { warning: Some(1000.0), critical: None };
        check(rules::alert::validate_severity(&alert(), &warning_only), Vec::new(), &[("severity", rules::alert::SEVERITY_THRESHOLD)]);
    }
    alert_resolved_at_only_when_resolved {
        let mut bad = alert();
        bad.resolved_at = Some(at(3));
        let mut good = alert();
        assert!(alert_step(&mut good, AlertStatus::Resolved, at(3)).is_empty());
        assert_eq!(good.resolved_at, Some(at(3)));
        check(rules::alert::validate(&bad), rules::alert::validate(&good), &[(
            "resolved_at",
            rules::alert::RESOLVED_AT_WHEN_RESOLVED,
        )]);
        let before = bad.clone();
        let refused_ack = alert_step(&mut bad, AlertStatus::Ack, at(4));
        assert_eq!(bad, before, "a refused transition changed the alert");
        check(refused_ack, Vec::new(), &[("resolved_at", rules::alert::RESOLVED_AT_WHEN_RESOLVED)]);
    }
    event_level_allowed {
        assert_eq!(rules::event::parse_level("warning"), Ok(Level::Warn));
        check(err(rules::event::parse_level("trace")), err(rules::event::parse_level("debug")), &[(
            "level",
            rules::event::LEVEL_ALLOWED,
        )]);
    }
    event_timestamp_valid {
        check(err(rules::event::parse_timestamp("2026-13-01 25:00")), err(rules::event::parse_timestamp("2026-01-31T12:00:00Z")), &[(
            "timestamp",
            rules::event::TIMESTAMP_VALID,
        )]);
    }
    backup_checksum_required {
        let mut bad = backup(BackupClass::Manual);
        let before = bad.clone();
        let refused_v = refused(bad.transition(BackupStatus::Completed, at(1)));
        assert_eq!(bad, before);
        let mut good = backup(BackupClass::Manual);
        let ok = refused(good.complete(digest("dump"), 1 << 20, at(1)));
        assert_eq!(good.status(), BackupStatus::Completed);
        check(refused_v, ok, &[("checksum", rules::backup::CHECKSUM_REQUIRED)]);
    }
    backup_retention_positive {
        let mut bad = backup(BackupClass::Daily);
        bad.retention_days = 0;
        check(rules::backup::validate(&bad), rules::backup::validate(&backup(BackupClass::Daily)), &[(
            "retention_days",
            rules::backup::RETENTION_POSITIVE,
        )]);
    }
    restore_finished_at_on_completion {
        let mut good = restore();
        assert!(restore_step(&mut good, RestoreStatus::Failed, at(2)).is_empty());
        assert_eq!(good.finished_at, Some(at(2)));
        let mut bad = good.clone();
        bad.finished_at = None;
        check(rules::restore::validate(&bad), rules::restore::validate(&good), &[(
            "finished_at",
            rules::restore::FINISHED_AT_ON_COMPLETION,
        )]);
    }
    certificate_validity_ordered {
        let mut bad = certificate(true);
        bad.valid_to = bad.valid_from;
        check(rules::certificate::validate(&bad, EnvironmentKind::Production), rules::certificate::validate(&certificate(true), EnvironmentKind::Production), &[(
            "valid_to",
            rules::certificate::VALIDITY_ORDERED,
        )]);
    }
    certificate_auto_renew_in_production {
        let manual = certificate(false);
        check(rules::certificate::validate(&manual, EnvironmentKind::Production), rules::certificate::validate(&manual, EnvironmentKind::Staging), &[(
            "auto_renew",
            rules::certificate::AUTO_RENEW_IN_PRODUCTION,
        )]);
    }
    release_pending_success {
        edge_case(&deployment(), dep_step, TO_SUCCEEDED, TO_SUCCEEDED, D::Pending);
    }
    release_pending_failed_rolled_back {
        edge_case(&deployment(), dep_step, &[D::Failed, D::RolledBack], &[D::Cancelled], D::Failed);
        let d = deployed(&[D::Failed, D::RolledBack]);
        assert_eq!(d.finished_at, Some(at(2)), "the rollback ends a failed deployment's run");
        assert!(d.failure_reason.is_some() && d.rollback_reason.is_some());
    }
    alert_open_ack_resolved {
        edge_case(&alert(), alert_step, &[AlertStatus::Ack, AlertStatus::Resolved], &[AlertStatus::Ack], AlertStatus::Open);
    }
    alert_open_resolved {
        edge_case(&alert(), alert_step, &[AlertStatus::Resolved], &[AlertStatus::Resolved], AlertStatus::Ack);
    }
    restore_pending_success {
        // DESIGN.md puts `running` between pending and success.
        edge_case(&restore(), restore_step, &[RestoreStatus::Running, RestoreStatus::Success], &[RestoreStatus::Failed], RestoreStatus::Success);
    }
    restore_pending_failed {
        edge_case(&restore(), restore_step, &[RestoreStatus::Failed], &[RestoreStatus::Running, RestoreStatus::Success], RestoreStatus::Failed);
    }

    // --- seed 003
    variable_key_name {
        let good = rules::variable::validate(&variable("DATABASE_URL", VariableType::Url, true), Platform::Railway);
        for (key, platform) in [
            ("database-url", Platform::SelfHosted),
            ("1PASSWORD", Platform::Vercel),
            ("RAILWAY_TOKEN", Platform::Railway),
            ("AWS_REGION", Platform::Vercel),
            ("PORT", Platform::SelfHosted),
        ] {
            check(rules::variable::validate(&variable(key, VariableType::String, false), platform), good.clone(), &[(
                "key",
                rules::variable::KEY_NAME,
            )]);
        }
    }
    variable_encrypted_at_rest {
        let good = rules::variable::validate_ciphertext("DATABASE_URL", b"age-encryption.org/v1\n-> X25519 abc\n");
        let armored = rules::variable::validate_ciphertext("DATABASE_URL", b"\n-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n");
        assert_eq!(armored, Vec::new());
        check(rules::variable::validate_ciphertext("DATABASE_URL", b"postgres://app:pw@db/app"), good, &[(
            "DATABASE_URL",
            rules::variable::ENCRYPTED_AT_REST,
        )]);
    }
    variable_required_present {
        let required = vec!["DATABASE_URL".to_owned(), "JWT_SECRET".to_owned()];
        let db = variable("DATABASE_URL", VariableType::Url, true);
        let mut staging_jwt = variable("JWT_SECRET", VariableType::String, true);
        staging_jwt.environment = "staging".into();
        let prod_jwt = variable("JWT_SECRET", VariableType::String, true);
        check(
            rules::variable::validate_required("production", &required, &[db.clone(), staging_jwt]),
            rules::variable::validate_required("production", &required, &[db, prod_jwt]),
            &[("variables.JWT_SECRET", rules::variable::REQUIRED_PRESENT)],
        );
    }
    deployment_rollback_target_succeeded {
        let mut good = deployed(TO_SUCCEEDED);
        good.rollback_target = true;
        let mut bad = deployed(&[D::Building, D::Failed]);
        bad.rollback_target = true;
        check(rules::deployment::validate_status(&bad), rules::deployment::validate_status(&good), &[(
            "rollback_target",
            rules::deployment::ROLLBACK_TARGET_SUCCEEDED,
        )]);
    }
    status_pending_building_deploying_success_failed {
        edge_case(&deployment(), dep_step, &[D::Building, D::Synthesizing, D::Deploying, D::Failed], &[D::Building], D::Deploying);
    }
    status_success_rolled_back {
        let mut good = TO_SUCCEEDED.to_vec();
        good.push(D::RolledBack);
        edge_case(&deployment(), dep_step, &good, &[D::Failed, D::RolledBack], D::Succeeded);
    }
    backup_retention_daily {
        backup_retention(BackupClass::Daily, 30);
    }
    backup_retention_weekly {
        backup_retention(BackupClass::Weekly, 183);
    }
    backup_retention_monthly {
        backup_retention(BackupClass::Monthly, 730);
    }
    backup_retention_manual {
        backup_retention(BackupClass::Manual, 365);
    }
    domain_name_valid {
        let good = domain("api.vocilia.com", Platform::SelfHosted, None);
        assert_eq!((good.subdomain.as_deref(), good.root_domain.as_str()), (Some("api"), "vocilia.com"));
        let mut mismatch = good.clone();
        mismatch.subdomain = Some("www".into());
        check(rules::domain::validate(&mismatch), rules::domain::validate(&good), &[("domain_name", rules::domain::NAME_VALID)]);
        let invalid = domain("api_vocilia", Platform::SelfHosted, None);
        check(rules::domain::validate(&invalid), Vec::new(), &[
            ("domain_name", rules::domain::NAME_VALID),
            ("root_domain", rules::domain::NAME_VALID),
        ]);
    }
    domain_cname_target {
        let good = domain("app.vocilia.com", Platform::Vercel, Some("cname.vercel-dns.com"));
        for (platform, cname) in [
            (Platform::Vercel, Some("backend.up.railway.app")),
            (Platform::Railway, None),
            (Platform::Railway, Some("not a name")),
        ] {
            check(rules::domain::validate(&domain("app.vocilia.com", platform, cname)), rules::domain::validate(&good), &[(
                "cname_target",
                rules::domain::CNAME_TARGET,
            )]);
        }
    }
    domain_verified_before_certificate {
        let cert = CertificateId::generate(T0);
        let mut pending = domain("api.vocilia.com", Platform::SelfHosted, None);
        let before = pending.clone();
        let bad = pending.attach_certificate(cert).err().unwrap_or_default();
        assert_eq!(pending, before, "a refused attach changed the domain");
        let mut verified = pending.clone();
        for (m, s) in [(1, DnsStatus::Configured), (2, DnsStatus::Verified)] {
            verified.transition(s, at(m)).unwrap();
        }
        assert_eq!(verified.verified_at, Some(at(2)));
        let good = verified.attach_certificate(cert).err().unwrap_or_default();
        assert_eq!(verified.certificate_id, Some(cert));
        check(bad, good, &[("certificate_id", rules::domain::VERIFIED_BEFORE_CERTIFICATE)]);
    }

    // --- seed 004
    deployment_transitions_follow_order {
        edge_case(&deployment(), dep_step, TO_SUCCEEDED, &[D::Building, D::Synthesizing], D::Verifying);
    }
    deployment_failure_reason_required {
        let mut d = deployed(&[D::Building, D::Synthesizing, D::Deploying]);
        let before = d.clone();
        let bad = refused(d.transition(D::Failed, at(4)));
        assert_eq!(d, before);
        let blank = refused(d.fail("  ", at(4)));
        assert_eq!(d, before);
        let good = refused(d.fail("stack database: deploy command exited 1", at(4)));
        assert_eq!((d.status(), d.finished_at), (D::Failed, Some(at(4))));
        check(blank, Vec::new(), &[("failure_reason", rules::deployment::FAILURE_REASON_REQUIRED)]);
        check(bad, good, &[("failure_reason", rules::deployment::FAILURE_REASON_REQUIRED)]);
    }
    deployment_stacks_order {
        let stacks = vec![stack("database", &[]), stack("app", &["database"])];
        let mut good = deployment();
        good.stacks_order = vec!["database".into(), "app".into()];
        let mut bad = good.clone();
        bad.stacks_order = vec!["app".into(), "database".into()];
        check(rules::deployment::validate_stacks_order(&bad, &stacks), rules::deployment::validate_stacks_order(&good, &stacks), &[(
            "stacks_order",
            rules::deployment::STACKS_ORDER,
        )]);
        let mut missing = good.clone();
        missing.stacks_order = vec!["database".into(), "database".into(), "cache".into()];
        check(rules::deployment::validate_stacks_order(&missing, &stacks), Vec::new(), &[
            ("stacks_order", rules::deployment::STACKS_ORDER),
            ("stacks_order", rules::deployment::STACKS_ORDER),
            ("stacks_order", rules::deployment::STACKS_ORDER),
        ]);
        // While stacks are being recorded: a listed name without a stack yet
        // is fine, an order that puts a recorded stack before its dependency is not.
        let app_only = vec![stack("app", &["database"])];
        check(
            rules::deployment::validate_stacks_order_so_far(&bad, &app_only),
            rules::deployment::validate_stacks_order_so_far(&good, &app_only),
            &[("stacks_order", rules::deployment::STACKS_ORDER)],
        );
        let mut unlisted = good.clone();
        unlisted.stacks_order = vec!["app".into()];
        check(rules::deployment::validate_stacks_order_so_far(&unlisted, &app_only), Vec::new(), &[(
            "stacks_order",
            rules::deployment::STACKS_ORDER,
        )]);
    }
    stack_dependencies_deployed {
        use StackStatus as S;
        let app = stack_at("app", &["database"], &[S::Synthesizing, S::Synthesized, S::Deploying]);
        let db_synthesized = stack_at("database", &[], &[S::Synthesizing, S::Synthesized]);
        let db_deployed = stack_at("database", &[], &[S::Synthesizing, S::Synthesized, S::Deploying, S::Deployed]);
        check(
            rules::stack::validate_dependencies(&app, &[db_synthesized, app.clone()]),
            rules::stack::validate_dependencies(&app, &[db_deployed, app.clone()]),
            &[("dependencies", rules::stack::DEPENDENCIES_DEPLOYED)],
        );
    }
    stack_outputs_contract {
        use StackStatus as S;
        let bad = stack_at("database", &[], &[S::Synthesizing, S::Synthesized, S::Deploying, S::Deployed]);
        let mut good = bad.clone();
        good.outputs.insert("HOST".into(), "db.internal".into());
        good.secret_outputs.push("PASSWORD".into());
        let (outputs, secrets) = (vec!["HOST".to_owned()], vec!["PASSWORD".to_owned()]);
        check(rules::stack::validate_outputs(&bad, &outputs, &secrets), rules::stack::validate_outputs(&good, &outputs, &secrets), &[
            ("outputs.HOST", rules::stack::OUTPUTS_CONTRACT),
            ("secret_outputs.PASSWORD", rules::stack::OUTPUTS_CONTRACT),
        ]);
        let mut leaked = good.clone();
        leaked.outputs.insert("PASSWORD".into(), "hunter2hunter2".into());
        check(rules::stack::validate_outputs(&leaked, &outputs, &secrets), Vec::new(), &[("outputs.PASSWORD", rules::stack::OUTPUTS_CONTRACT)]);
    }
    resource_properties_contract {
        let contract = ResourceContract {
            resource_type: Some("AWS::RDS::DBInstance".into()),
            required: [("Engine".to_owned(), Some(json!("postgres"))), ("DBInstanceClass".to_owned(), None), ("Port".to_owned(), Some(json!(5432)))].into_iter().collect(),
            types: [("AllocatedStorage".to_owned(), PropertyType::Integer), ("MultiAZ".to_owned(), PropertyType::Boolean)].into_iter().collect(),
        };
        let mut bad = resource();
        bad.properties.insert("Engine".into(), json!("mysql"));
        bad.properties.insert("Port".into(), json!("5432"));
        bad.properties.insert("AllocatedStorage".into(), json!("20"));
        let mut good = resource();
        good.properties.insert("Engine".into(), json!("postgres"));
        good.properties.insert("DBInstanceClass".into(), json!("db.t3.micro"));
        good.properties.insert("Port".into(), json!(5432.0));
        good.properties.insert("AllocatedStorage".into(), json!(20));
        good.properties.insert("MultiAZ".into(), json!(false));
        check(rules::resource::validate_properties(&bad, &contract), rules::resource::validate_properties(&good, &contract), &[
            ("properties.Engine", rules::resource::PROPERTIES_CONTRACT),
            ("properties.DBInstanceClass", rules::resource::PROPERTIES_CONTRACT),
            ("properties.Port", rules::resource::PROPERTIES_CONTRACT),
            ("properties.AllocatedStorage", rules::resource::PROPERTIES_CONTRACT),
            ("properties.MultiAZ", rules::resource::PROPERTIES_CONTRACT),
        ]);
        let mut fractional = good.clone();
        fractional.properties.insert("AllocatedStorage".into(), json!(20.5));
        check(rules::resource::validate_properties(&fractional, &contract), Vec::new(), &[(
            "properties.AllocatedStorage",
            rules::resource::PROPERTIES_CONTRACT,
        )]);
        let mut other = good.clone();
        other.resource_type = "AWS::S3::Bucket".into();
        check(rules::resource::validate_properties(&other, &contract), Vec::new(), &[("resource_type", rules::resource::PROPERTIES_CONTRACT)]);
    }
    resource_required_tags {
        let required = vec!["owner".to_owned(), "cost-center".to_owned()];
        let mut bad = resource();
        bad.tags.insert("owner".into(), "team-a".into());
        bad.tags.insert("cost-center".into(), " ".into());
        let mut good = bad.clone();
        good.tags.insert("cost-center".into(), "cc-42".into());
        check(rules::resource::validate_tags(&bad, &required), rules::resource::validate_tags(&good, &required), &[(
            "tags.cost-center",
            rules::resource::REQUIRED_TAGS,
        )]);
    }
    deployment_pending_synthesizing {
        edge_case(&deployment(), dep_step, &[D::Building, D::Synthesizing], &[D::Building, D::Synthesizing], D::Pending);
    }
    deployment_synthesizing_deploying {
        edge_case(&deployment(), dep_step, &[D::Building, D::Synthesizing, D::Deploying], &[D::Building, D::Synthesizing, D::Deploying], D::Synthesizing);
    }
    deployment_deploying_verifying {
        edge_case(&deployment(), dep_step, &[D::Building, D::Synthesizing, D::Deploying, D::Verifying], &[D::Building, D::Synthesizing, D::Deploying, D::Verifying], D::Deploying);
    }
    deployment_verifying_completed {
        edge_case(&deployment(), dep_step, TO_SUCCEEDED, &[D::Building, D::Synthesizing, D::Deploying], D::Succeeded);
    }
    deployment_any_failed {
        for n in 0..TO_SUCCEEDED.len() {
            let mut good = TO_SUCCEEDED[..n].to_vec();
            good.push(D::Failed);
            edge_case(&deployment(), dep_step, &good, TO_SUCCEEDED, D::Failed);
        }
    }
    deployment_failed_rolled_back {
        edge_case(&deployment(), dep_step, &[D::Building, D::Failed, D::RolledBack], &[D::Building, D::Cancelled], D::RolledBack);
    }
    stack_pending_synthesizing {
        edge_case(&stack("app", &[]), stack_step, &[StackStatus::Synthesizing], &[], StackStatus::Deploying);
    }
    stack_synthesizing_deploying {
        use StackStatus as S;
        edge_case(&stack("app", &[]), stack_step, &[S::Synthesizing, S::Synthesized, S::Deploying], &[S::Synthesizing], S::Deploying);
    }
    stack_deploying_deployed {
        use StackStatus as S;
        edge_case(&stack("app", &[]), stack_step, &[S::Synthesizing, S::Synthesized, S::Deploying, S::Deployed], &[S::Synthesizing, S::Synthesized], S::Deployed);
    }
    stack_any_failed {
        use StackStatus as S;
        let path = [S::Synthesizing, S::Synthesized, S::Deploying, S::Deployed];
        for n in 0..=path.len() {
            let mut good = path[..n].to_vec();
            good.push(S::Failed);
            edge_case(&stack("app", &[]), stack_step, &good, &[S::Skipped], S::Failed);
        }
        let failed = stack_at("app", &[], &[S::Failed]);
        assert_eq!(failed.error_message.as_deref(), Some("deploy command exited 1"));
    }
    resource_creating_available {
        fn step(r: &mut Resource, s: ResourceStatus, t: Timestamp) -> Vec<Violation> {
            refused(r.transition(s, t))
        }
        edge_case(&resource(), step, &[ResourceStatus::Available], &[ResourceStatus::Failed], ResourceStatus::Available);
    }
    resource_creating_failed {
        fn step(r: &mut Resource, s: ResourceStatus, t: Timestamp) -> Vec<Violation> {
            refused(r.transition(s, t))
        }
        edge_case(&resource(), step, &[ResourceStatus::Failed], &[ResourceStatus::Available], ResourceStatus::Failed);
    }
    // --- seed 003 Monitoring Data
    metric_value_in_range {
        let good = metric(MetricType::ErrorRate, 0.5);
        let mut bad = good.clone();
        bad.metric_value = 120.0;
        check(rules::metric::validate(&bad), rules::metric::validate(&good), &[("metric_value", rules::metric::VALUE_IN_RANGE)]);
        let mut nan = metric(MetricType::Performance, 10.0);
        nan.metric_value = f64::NAN;
        check(rules::metric::validate(&nan), Vec::new(), &[("metric_value", rules::metric::VALUE_IN_RANGE)]);
    }
    metric_unit_of_type {
        let good = metric(MetricType::Performance, 120.0);
        let mut bad = good.clone();
        bad.unit = MetricUnit::Percent;
        check(rules::metric::validate(&bad), rules::metric::validate(&good), &[("unit", rules::metric::UNIT_OF_TYPE)]);
    }
    metric_thresholds_ordered {
        let good = metric(MetricType::Uptime, 99.9);
        let mut bad = good.clone();
        // Uptime: lower is worse, so critical must not be above warning.
        (bad.threshold_warning, bad.threshold_critical) = (99.0, 99.5);
        check(rules::metric::validate(&bad), rules::metric::validate(&good), &[("threshold_critical", rules::metric::THRESHOLDS_ORDERED)]);
        let mut latency = metric(MetricType::Performance, 10.0);
        (latency.threshold_warning, latency.threshold_critical) = (2000.0, 1000.0);
        check(rules::metric::validate(&latency), Vec::new(), &[("threshold_critical", rules::metric::THRESHOLDS_ORDERED)]);
    }
    metric_status_by_threshold {
        let good = metric(MetricType::Performance, 1500.0);
        assert_eq!(good.status, HealthStatus::Warning);
        let mut bad = good.clone();
        bad.status = HealthStatus::Healthy;
        check(rules::metric::validate(&bad), rules::metric::validate(&good), &[("status", rules::metric::STATUS_BY_THRESHOLD)]);
    }
    metric_source_required {
        let good = metric(MetricType::HealthCheck, 0.0);
        let mut bad = good.clone();
        bad.source = " ".into();
        bad.environment = String::new();
        check(rules::metric::validate(&bad), rules::metric::validate(&good), &[
            ("source", rules::metric::SOURCE_REQUIRED),
            ("environment_id", rules::metric::SOURCE_REQUIRED),
        ]);
    }
    metric_health_check_latest {
        let good = metric(MetricType::HealthCheck, 0.0);
        let mut bad = good.clone();
        bad.window_start = Timestamp(bad.timestamp.0 - 60_000);
        check(rules::metric::validate(&bad), rules::metric::validate(&good), &[("window_start", rules::metric::AGGREGATION_WINDOW)]);
    }
    metric_performance_five_minutes {
        let good = metric(MetricType::Performance, 20.0);
        let mut bad = good.clone();
        bad.window_start = Timestamp(bad.timestamp.0 - 60 * 60_000);
        check(rules::metric::validate(&bad), rules::metric::validate(&good), &[("window_start", rules::metric::AGGREGATION_WINDOW)]);
    }
    metric_uptime_monthly {
        let good = metric(MetricType::Uptime, 100.0);
        let mut bad = good.clone();
        bad.window_start = Timestamp(bad.timestamp.0 - 40 * 86_400_000);
        check(rules::metric::validate(&bad), rules::metric::validate(&good), &[("window_start", rules::metric::AGGREGATION_WINDOW)]);
    }
    metric_error_rate_hourly {
        let good = metric(MetricType::ErrorRate, 0.0);
        let mut bad = good.clone();
        bad.window_start = Timestamp(bad.window_start.0 + 60_000);
        check(rules::metric::validate(&bad), rules::metric::validate(&good), &[("window_start", rules::metric::AGGREGATION_WINDOW)]);
        let mut two_hours = good.clone();
        two_hours.window_start = Timestamp(good.timestamp.0 - 2 * 3_600_000);
        check(rules::metric::validate(&two_hours), Vec::new(), &[("window_start", rules::metric::AGGREGATION_WINDOW)]);
    }
}
