//! Stacks with the real binary: dependency waves, outputs flowing
//! downstream (variables, `{{ stack.key }}`, the release's env file),
//! contracts on outputs and resources, synthesized templates, and a failure
//! in the middle of a chain rolled back in reverse; `history --status` with
//! the seeds' status words.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;

use common::{Backend, Project, free_port, get};

const ENV: &str = r#"
[environments.staging]
kind = "staging"
hosts = ["local"]
root = "srv"
required_tags = ["team"]
"#;

fn project(stacks: &str) -> Project {
    let p = Project::new(Backend::Sqlite);
    p.write("rollway.toml", &format!("project = \"stacks\"\n\n{stacks}\n{ENV}"));
    p
}

/// The last deployment of `staging` with its stacks, from `history --json`.
fn last(p: &Project) -> serde_json::Value {
    let h = p.run(&["--json", "history", "staging"]).ok().json();
    h[0].clone()
}

fn stack<'a>(d: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    d["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()
}

fn status(d: &serde_json::Value, name: &str) -> String {
    stack(d, name)["lifecycle"]["status"].as_str().unwrap().to_owned()
}

#[test]
fn a_failure_in_the_middle_rolls_back_in_reverse_and_skips_the_rest() {
    let p = project(
        r#"
[stacks.one]
deploy = "printf '{\"HOST\":\"10.0.0.1\"}' > \"$ROLLWAY_OUTPUTS\""
rollback = "echo one >> rollbacks.log"
outputs = ["HOST"]

[stacks.two]
depends_on = ["one"]
deploy = "echo \"$ROLLWAY_OUTPUT_ONE_HOST {{ one.HOST }}\" > two-saw.txt; echo 'no capacity left' >&2; exit 1"
rollback = "echo two >> rollbacks.log"

[stacks.three]
depends_on = ["two"]
deploy = "touch three-ran.txt"
rollback = "echo three >> rollbacks.log"
"#,
    );
    let r = p.run(&["deploy", "staging"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(
        fs::read_to_string(p.path().join("two-saw.txt")).unwrap(),
        "10.0.0.1 10.0.0.1\n"
    );
    assert_eq!(
        fs::read_to_string(p.path().join("rollbacks.log")).unwrap(),
        "two\none\n",
        "the failing stack's rollback first, then the deployed ones in reverse"
    );
    assert!(!p.path().join("three-ran.txt").exists());

    let d = last(&p);
    let dep = &d["deployment"];
    assert_eq!(dep["lifecycle"]["status"], "rolled_back");
    assert_eq!(
        dep["artifact_id"],
        serde_json::Value::Null,
        "command stacks only: no artifact"
    );
    assert_eq!(dep["stacks_order"], serde_json::json!(["one", "two", "three"]));
    let reason = dep["failure_reason"].as_str().unwrap();
    assert!(
        reason.contains("stack two") && reason.contains("no capacity left"),
        "{reason}"
    );
    assert!(
        dep["rollback_reason"]
            .as_str()
            .unwrap()
            .starts_with("automatic rollback")
    );
    assert_eq!(status(&d, "one"), "rolled_back");
    assert_eq!(status(&d, "two"), "failed");
    assert!(
        stack(&d, "two")["error_message"]
            .as_str()
            .unwrap()
            .contains("deploy exited 1")
    );
    assert_eq!(status(&d, "three"), "skipped");
    assert_eq!(stack(&d, "one")["outputs"]["HOST"], "10.0.0.1");
    let events = p.run(&["--json", "events", "list", "--limit", "500"]).ok().json();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["deployment_id"] == dep["id"])
        .map(|e| e["kind"].as_str().unwrap())
        .filter(|k| {
            [
                "deployment-success",
                "deployment-failure",
                "rollback-initiated",
                "rollback-completed",
            ]
            .contains(k)
        })
        .collect();
    assert_eq!(
        kinds,
        ["deployment-failure", "rollback-initiated", "rollback-completed"],
        "seed 001's deployment events, in order"
    );
    p.run(&["events", "verify"]).ok();

    let dry = p.run(&["deploy", "staging", "--dry-run"]).ok();
    assert!(
        dry.stdout.contains("wave 1: one\n") && dry.stdout.contains("wave 3: three\n"),
        "{}",
        dry.stdout
    );
    assert_eq!(
        p.run(&["--json", "history", "staging"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn contracts_on_outputs_and_resources_fail_the_stack_naming_what_is_missing() {
    let p = project(
        r#"
[stacks.db]
deploy = "printf '{\"URL\":\"postgres://db.internal/app\",\"PASSWORD\":\"Pw-Xq7Lm2Vr9Tk4Nb8Zc\"}' > \"$ROLLWAY_OUTPUTS\"; printf '[{\"type\":\"database\",\"logical_id\":\"Main\",\"physical_id\":\"db-1\",\"status\":\"available\",\"properties\":{\"engine\":\"pg\"},\"tags\":{\"team\":\"core\"}}]' > \"$ROLLWAY_RESOURCES\""
outputs = ["URL"]
secret_outputs = ["PASSWORD"]
required_properties = ["engine"]

[stacks.cache]
depends_on = ["db"]
deploy = "printf '[{\"type\":\"cache\",\"logical_id\":\"Hot\",\"status\":\"available\",\"properties\":{\"engine\":\"redis\"},\"tags\":{}}]' > \"$ROLLWAY_RESOURCES\"; echo \"$ROLLWAY_OUTPUT_DB_PASSWORD\" > cache-saw.txt"
required_properties = ["engine"]
"#,
    );
    p.run(&["secrets", "init"]).ok();
    let r = p.run(&["--json", "deploy", "staging"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(!r.stdout.contains("Pw-Xq7Lm2Vr9Tk4Nb8Zc"), "{}", r.stdout);
    // Kept encrypted (age, to the vault's recipients), never in clear.
    let dep_id = r.json()["error"]["details"]["deployment"].as_str().unwrap().to_owned();
    let kept = p.path().join(".rollway/outputs").join(&dep_id).join("db.age");
    let sealed = fs::read_to_string(&kept).unwrap();
    assert!(sealed.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"), "{sealed}");
    assert!(!sealed.contains("Pw-Xq7Lm2Vr9Tk4Nb8Zc"));
    assert_eq!(
        fs::read_to_string(p.path().join("cache-saw.txt")).unwrap(),
        "Pw-Xq7Lm2Vr9Tk4Nb8Zc\n"
    );
    let d = last(&p);
    assert_eq!(status(&d, "db"), "rolled_back");
    assert_eq!(status(&d, "cache"), "failed");
    assert!(
        stack(&d, "cache")["error_message"]
            .as_str()
            .unwrap()
            .contains("resource Hot lacks the required tag team — tag it in the stack's template"),
        "{d}"
    );
    assert_eq!(stack(&d, "db")["outputs"]["URL"], "postgres://db.internal/app");
    assert_eq!(
        stack(&d, "db")["outputs"]["PASSWORD"],
        "****",
        "secret outputs are stored masked"
    );
    let resources = stack(&d, "db")["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 1);
    assert_eq!(resources[0]["resource_id"], "db-1");
    assert_eq!(resources[0]["lifecycle"]["status"], "available");
    let all = format!(
        "{}{}",
        p.run(&["--json", "events", "list", "--limit", "500"]).ok().stdout,
        p.run(&["--json", "history"]).ok().stdout
    );
    assert!(!all.contains("Pw-Xq7Lm2Vr9Tk4Nb8Zc"));

    // A declared output the stack does not write fails it, naming the key.
    p.write(
        "rollway.toml",
        &format!("project = \"stacks\"\n[stacks.db]\ndeploy = \"true\"\noutputs = [\"URL\"]\n{ENV}"),
    );
    assert_eq!(p.run(&["deploy", "staging"]).code, 1);
    let d = last(&p);
    assert!(
        stack(&d, "db")["error_message"]
            .as_str()
            .unwrap()
            .contains("stack 'db' did not report output URL: its deploy command must write it to $ROLLWAY_OUTPUTS")
    );
}

#[test]
fn templates_must_parse_and_resources_must_be_ready_after_verify() {
    let p = project(
        r#"
[stacks.infra]
synth = "printf 'Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n' > infra.yaml; echo infra.yaml > \"$ROLLWAY_TEMPLATE\""
validate = "grep -q Bucket \"$ROLLWAY_TEMPLATE\" && echo validated > validated.txt"
deploy = "printf '[{\"type\":\"bucket\",\"logical_id\":\"Bucket\",\"status\":\"creating\",\"tags\":{\"team\":\"x\"}}]' > \"$ROLLWAY_RESOURCES\""
verify = "true"
"#,
    );
    let r = p.run(&["deploy", "staging"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(p.path().join("validated.txt").exists(), "validate ran on the template");
    let d = last(&p);
    assert!(
        stack(&d, "infra")["template_path"]
            .as_str()
            .unwrap()
            .ends_with("infra.yaml")
    );
    assert!(
        stack(&d, "infra")["error_message"]
            .as_str()
            .unwrap()
            .contains("still creating after verify: Bucket (bucket)")
    );

    // verify reports the bucket ready: the deployment succeeds, verify passing through hosts.
    let toml = fs::read_to_string(p.path().join("rollway.toml")).unwrap().replace(
        "verify = \"true\"",
        "verify = \"sed -i s/creating/available/ \\\"$ROLLWAY_RESOURCES\\\"\"",
    );
    p.write("rollway.toml", &toml);
    p.run(&["deploy", "staging"]).ok();
    let d = last(&p);
    assert_eq!(d["deployment"]["lifecycle"]["status"], "succeeded");
    assert_eq!(stack(&d, "infra")["resources"][0]["lifecycle"]["status"], "available");

    // A template that is neither JSON nor YAML fails in synthesizing.
    let toml = toml.replace("printf 'Resources:", "printf 'key: [unclosed\\nResources:");
    p.write("rollway.toml", &toml);
    assert_eq!(p.run(&["deploy", "staging"]).code, 1);
    let d = last(&p);
    let path: Vec<&str> = d["deployment"]["lifecycle"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to"].as_str().unwrap())
        .collect();
    assert_eq!(path, ["pending", "building", "synthesizing", "failed"]);
    assert!(
        stack(&d, "infra")["error_message"]
            .as_str()
            .unwrap()
            .contains("neither as JSON nor as YAML")
    );
}

#[test]
fn the_release_stack_gets_upstream_outputs_in_its_env_file_and_deploy_jobs_run_first() {
    let port = free_port();
    let p = Project::new(Backend::Sqlite);
    p.write(
        "rollway.toml",
        &format!(
            r#"project = "withdb"

[build]
command = "mkdir -p dist && cp server.py dist/"
output = "dist"

[service]
start = "exec python3 server.py"
port = {port}

[health]
interval = "100ms"
retries = 50
stability_window = "0s"

[deploy]
jobs = ["migrate"]

[jobs.migrate]
type = "migrate-db"
run = "echo migrated > migrated.txt"

[stacks.db]
deploy = "printf '{{\"URL\":\"postgres://db.internal:5432/app\"}}' > \"$ROLLWAY_OUTPUTS\""
outputs = ["URL"]

[stacks.app]
depends_on = ["db"]

[environments.staging]
kind = "staging"
hosts = ["local"]
root = "srv"
"#
        ),
    );
    p.write(
        "server.py",
        r#"import http.server, os
BODY = os.environ.get("ROLLWAY_OUTPUT_DB_URL", "none").encode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#,
    );
    let r = p.run(&["deploy", "staging"]);
    let body = get(port);
    p.run(&["stop", "staging"]).ok();
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(body.as_deref(), Some("postgres://db.internal:5432/app"));
    assert!(
        p.path().join("migrated.txt").exists(),
        "[deploy] jobs ran in the building phase"
    );
    let d = last(&p);
    assert_eq!(d["deployment"]["stacks_order"], serde_json::json!(["db", "app"]));
    assert_eq!(status(&d, "db"), "deployed");
    assert_eq!(status(&d, "app"), "deployed");
    assert!(d["deployment"]["artifact_id"].is_string());
    let runs = p.run(&["--json", "pipeline", "list"]).ok().json();
    assert_eq!(runs[0]["environment"], "staging");
}

/// The seeds' status words are read wherever Rollway reads a status — here
/// `history --status` — in any case and mapped as DESIGN.md says (SUCCESS
/// and completed are succeeded, IN_PROGRESS the four running phases); what
/// Rollway writes stays canonical.
#[test]
fn history_reads_the_seeds_status_words_and_writes_canonical_ones() {
    let p = project("[stacks.one]\ndeploy = \"if test -f fail; then exit 1; fi\"\n");
    p.run(&["deploy", "staging"]).ok();
    p.write("fail", "");
    let failed = p.run(&["deploy", "staging"]);
    assert_eq!(failed.code, 1, "{failed:#?}");
    let statuses = |word: &str| -> Vec<String> {
        let h = p.run(&["--json", "history", "staging", "--status", word]).ok().json();
        h.as_array()
            .unwrap()
            .iter()
            .map(|d| d["deployment"]["lifecycle"]["status"].as_str().unwrap().to_owned())
            .collect()
    };
    for word in ["SUCCESS", "success", "Completed", "COMPLETED", "succeeded"] {
        assert_eq!(statuses(word), ["succeeded"], "{word}");
    }
    for word in ["FAILED", "failed", "Failed"] {
        assert_eq!(statuses(word), ["failed"], "{word}");
    }
    for word in ["PENDING", "IN_PROGRESS", "in_progress", "ROLLED_BACK", "rolled_back"] {
        assert!(statuses(word).is_empty(), "{word}: {:?}", statuses(word));
    }
    let text = p.run(&["history", "staging", "--status", "SUCCESS"]).ok();
    assert!(
        text.stdout.contains("succeeded") && !text.stdout.contains("SUCCESS"),
        "people see the canonical word: {}",
        text.stdout
    );
    let unknown = p.run(&["history", "--status", "paused"]);
    assert_eq!(unknown.code, 2, "{unknown:#?}");
    assert!(
        unknown.stderr.contains("unknown deployment status 'paused'"),
        "{}",
        unknown.stderr
    );
}

/// Seed 004 "Properties must match contract specifications": values and
/// JSON types, not only presence; each way of breaking it fails the stack
/// in the model's words, and the resource is kept as failed.
#[test]
fn property_values_and_types_are_part_of_the_contract() {
    let check = |resource: &str, expected: Option<&str>| {
        let p = project(&format!(
            r#"
[stacks.db]
deploy = "printf '[{resource}]' > \"$ROLLWAY_RESOURCES\""
required_properties = ["region"]
properties = {{ engine = "postgres", encrypted = true }}
property_types = {{ port = "integer" }}
"#
        ));
        let r = p.run(&["deploy", "staging"]);
        let d = last(&p);
        let db = stack(&d, "db");
        match expected {
            None => {
                assert_eq!(r.code, 0, "{r:#?}");
                assert_eq!(status(&d, "db"), "deployed");
                assert_eq!(db["resources"][0]["lifecycle"]["status"], "available");
            }
            Some(message) => {
                assert_eq!(r.code, 1, "{r:#?}");
                assert_eq!(
                    (status(&d, "db"), db["error_message"].as_str()),
                    ("failed".to_owned(), Some(message)),
                    "{resource}"
                );
                assert_eq!(db["resources"][0]["lifecycle"]["status"], "failed");
            }
        }
    };
    let res = |props: &str| {
        format!(
            r#"{{\"type\":\"database\",\"logical_id\":\"Main\",\"status\":\"available\",\"properties\":{{{props}}},\"tags\":{{\"team\":\"core\"}}}}"#
        )
    };
    check(
        &res(r#"\"region\":\"eu\",\"engine\":\"postgres\",\"encrypted\":true,\"port\":5432"#),
        None,
    );
    check(
        &res(r#"\"region\":\"eu\",\"engine\":\"mysql\",\"encrypted\":true,\"port\":5432"#),
        Some(r#"resource Main has engine = "mysql", the contract wants "postgres""#),
    );
    check(
        &res(r#"\"region\":\"eu\",\"engine\":\"postgres\",\"encrypted\":true,\"port\":\"5432\""#),
        Some("resource Main has port of type string, the contract wants type integer"),
    );
    check(
        &res(r#"\"engine\":\"postgres\",\"encrypted\":\"yes\",\"port\":5432"#),
        Some(r#"resource Main has encrypted = "yes", the contract wants true; resource Main has no property region"#),
    );

    // A type that is no JSON type is a config error at its place.
    let p = project(
        r#"
[stacks.db]
deploy = "true"
property_types = { port = "int" }
"#,
    );
    let r = p.run(&["config", "check"]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(
        r.stderr
            .contains("property type 'int' of port in stack 'db' is not a JSON type"),
        "{}",
        r.stderr
    );
}
