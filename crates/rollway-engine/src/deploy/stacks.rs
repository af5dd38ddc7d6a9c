//! Stacks: the parts of a deployment beyond the release — a database
//! before the API, a frontend after it — each a set of commands (`synth`,
//! `validate`, `deploy`, `verify`, `rollback`) run with `sh -c` in the
//! project directory. Dependencies order them into waves; outputs flow
//! downstream as `ROLLWAY_OUTPUT_<STACK>_<KEY>` and `{{ stack.key }}`;
//! resources they report are checked against the required tags and
//! properties. The stack without `deploy` is the release stack, shipped to
//! the hosts by the deploy engine.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Map, Value};

/// One `[stacks.NAME]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackSpec {
    pub name: String,
    pub synth: Option<String>,
    pub validate: Option<String>,
    /// `None`: the release stack.
    pub deploy: Option<String>,
    pub verify: Option<String>,
    pub rollback: Option<String>,
    pub depends_on: Vec<String>,
    pub outputs: Vec<String>,
    pub secret_outputs: Vec<String>,
    /// What each resource the stack reports must hold (seed 004).
    pub resources: rollway_model::ResourceContract,
}

impl StackSpec {
    /// The stack the deploy engine ships to the hosts.
    pub fn is_release(&self) -> bool {
        self.deploy.is_none()
    }

    /// The release stack of a deployment without a `[stacks]` table.
    pub fn release() -> Self {
        Self {
            name: "release".into(),
            ..Self::default()
        }
    }
}

/// Dependency waves: every stack comes after the stacks it depends on;
/// stacks of one wave are independent. Indexes into `specs`, in
/// configuration order within a wave. (Cycles are refused by the config
/// checks; one left here ends the waves early rather than looping.)
pub fn waves(specs: &[StackSpec]) -> Vec<Vec<usize>> {
    // Kahn's algorithm by levels: linear in stacks and dependencies.
    let index: BTreeMap<&str, usize> = specs.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    let mut waiting_on = vec![0usize; specs.len()];
    let mut blocked = vec![false; specs.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); specs.len()];
    for (i, spec) in specs.iter().enumerate() {
        let deps: BTreeSet<&str> = spec.depends_on.iter().map(String::as_str).collect();
        for d in deps {
            match index.get(d) {
                Some(&k) => {
                    waiting_on[i] += 1;
                    dependents[k].push(i);
                }
                // A dependency that is not a stack is never deployed.
                None => blocked[i] = true,
            }
        }
    }
    let mut out = Vec::new();
    let mut ready: Vec<usize> = (0..specs.len())
        .filter(|&i| waiting_on[i] == 0 && !blocked[i])
        .collect();
    while !ready.is_empty() {
        let mut next = Vec::new();
        for &i in &ready {
            for &j in &dependents[i] {
                waiting_on[j] -= 1;
                if waiting_on[j] == 0 && !blocked[j] {
                    next.push(j);
                }
            }
        }
        next.sort_unstable();
        out.push(std::mem::replace(&mut ready, next));
    }
    out
}

/// What a stack's commands reported.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StackReport {
    pub outputs: BTreeMap<String, String>,
    pub resources: Vec<ResourceReport>,
}

/// One entry of `$ROLLWAY_RESOURCES`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceReport {
    pub resource_type: String,
    pub logical_id: String,
    pub physical_id: Option<String>,
    /// creating, available or failed.
    pub status: String,
    pub properties: Map<String, Value>,
    pub tags: BTreeMap<String, String>,
}

/// Where stack commands run and what they see.
#[derive(Debug, Clone)]
pub struct StackEnv {
    /// The project directory (commands run here).
    pub dir: PathBuf,
    /// The environment's variables.
    pub vars: Vec<(String, String)>,
    /// A scratch directory for the `$ROLLWAY_*` files of this deployment.
    pub work: PathBuf,
    pub deployment: String,
    pub environment: String,
}

/// A command's result: its combined output (to be masked by the caller).
#[derive(Debug)]
pub struct Ran {
    pub ok: bool,
    pub code: Option<i32>,
    pub output: String,
}

/// `ROLLWAY_OUTPUT_<STACK>_<KEY>` pairs and `{{ stack.key }}` values of the
/// upstream stacks' outputs.
pub fn upstream_env(outputs: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<(String, String)> {
    outputs
        .iter()
        .flat_map(|(stack, kv)| {
            kv.iter()
                .map(move |(k, v)| (rollway_model::outputs::output_var(stack, k), v.clone()))
        })
        .collect()
}

/// `command` with every `{{ stack.key }}` of a known output replaced.
pub fn substitute(command: &str, outputs: &BTreeMap<String, BTreeMap<String, String>>) -> String {
    rollway_model::outputs::substitute(command, |s, k| outputs.get(s).and_then(|kv| kv.get(k)).cloned())
}

impl StackEnv {
    fn file(&self, stack: &str, what: &str) -> PathBuf {
        self.work.join(format!("{stack}.{what}"))
    }

    /// Runs one command of `stack` with `sh -c`: the environment's
    /// variables, the upstream outputs, and the `$ROLLWAY_*` files.
    pub fn run(
        &self,
        stack: &str,
        phase: &str,
        command: &str,
        upstream: &BTreeMap<String, BTreeMap<String, String>>,
        extra: &[(String, String)],
    ) -> std::io::Result<Ran> {
        std::fs::create_dir_all(&self.work)?;
        let (mut reader, writer) = std::io::pipe()?;
        let err = writer.try_clone()?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(substitute(command, upstream))
            .current_dir(&self.dir)
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .envs(upstream_env(upstream))
            .env("ROLLWAY_STACK", stack)
            .env("ROLLWAY_PHASE", phase)
            .env("ROLLWAY_DEPLOYMENT", &self.deployment)
            .env("ROLLWAY_ENVIRONMENT", &self.environment)
            .env("ROLLWAY_OUTPUTS", self.file(stack, "outputs.json"))
            .env("ROLLWAY_RESOURCES", self.file(stack, "resources.json"))
            .env("ROLLWAY_TEMPLATE", self.file(stack, "template"))
            .envs(extra.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(err);
        let mut child = cmd.spawn()?;
        drop(cmd);
        let mut buf = Vec::new();
        reader.read_to_end(&mut buf)?;
        let status = child.wait()?;
        Ok(Ran {
            ok: status.success(),
            code: status.code(),
            output: String::from_utf8_lossy(&buf).into_owned(),
        })
    }

    /// The template path `synth` wrote to `$ROLLWAY_TEMPLATE`, checked to
    /// parse as JSON or YAML. `None` when synth wrote none.
    pub fn template(&self, stack: &str) -> Result<Option<PathBuf>, String> {
        let file = self.file(stack, "template");
        let Ok(text) = std::fs::read_to_string(&file) else {
            return Ok(None);
        };
        let named = text.trim();
        if named.is_empty() {
            return Ok(None);
        }
        let path = self.dir.join(named);
        let body = std::fs::read_to_string(&path)
            .map_err(|e| format!("the template {} that synth named cannot be read: {e}", path.display()))?;
        parse_template(&body).map_err(|e| format!("the template {} {e}", path.display()))?;
        Ok(Some(path))
    }

    /// What `deploy` (or `verify`) wrote to `$ROLLWAY_OUTPUTS` and
    /// `$ROLLWAY_RESOURCES`; missing files are empty reports.
    pub fn report(&self, stack: &str) -> Result<StackReport, String> {
        let mut report = StackReport::default();
        if let Ok(text) = std::fs::read_to_string(self.file(stack, "outputs.json"))
            && !text.trim().is_empty()
        {
            let v: Value = serde_json::from_str(&text).map_err(|e| format!("$ROLLWAY_OUTPUTS is not JSON: {e}"))?;
            let Value::Object(o) = v else {
                return Err("$ROLLWAY_OUTPUTS must hold a JSON object of strings".into());
            };
            for (k, v) in o {
                let Value::String(s) = v else {
                    return Err(format!("$ROLLWAY_OUTPUTS: output '{k}' is not a string"));
                };
                report.outputs.insert(k, s);
            }
        }
        if let Ok(text) = std::fs::read_to_string(self.file(stack, "resources.json"))
            && !text.trim().is_empty()
        {
            report.resources = parse_resources(&text)?;
        }
        Ok(report)
    }
}

/// JSON first, then YAML: a synthesized template must be one or the other.
pub fn parse_template(text: &str) -> Result<(), String> {
    if serde_json::from_str::<Value>(text).is_ok() {
        return Ok(());
    }
    match yaml_rust2::YamlLoader::load_from_str(text) {
        Ok(docs) if !docs.is_empty() => Ok(()),
        Ok(_) => Err("is empty".into()),
        Err(e) => Err(format!("parses neither as JSON nor as YAML: {e}")),
    }
}

fn parse_resources(text: &str) -> Result<Vec<ResourceReport>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("$ROLLWAY_RESOURCES is not JSON: {e}"))?;
    let Value::Array(items) = v else {
        return Err("$ROLLWAY_RESOURCES must hold a JSON list".into());
    };
    let mut out = Vec::new();
    for (n, item) in items.into_iter().enumerate() {
        let Value::Object(o) = item else {
            return Err(format!("$ROLLWAY_RESOURCES[{n}] is not an object"));
        };
        let text = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
        let (Some(resource_type), Some(logical_id)) = (text("type"), text("logical_id")) else {
            return Err(format!("$ROLLWAY_RESOURCES[{n}] needs \"type\" and \"logical_id\""));
        };
        let status = text("status").unwrap_or_else(|| "available".into());
        if !["creating", "available", "failed"].contains(&status.as_str()) {
            return Err(format!(
                "$ROLLWAY_RESOURCES[{n}] ({logical_id}): status '{status}' is not creating, available or failed"
            ));
        }
        let properties = match o.get("properties") {
            Some(Value::Object(p)) => p.clone(),
            _ => Map::new(),
        };
        let tags = match o.get("tags") {
            Some(Value::Object(t)) => t
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                .collect(),
            _ => BTreeMap::new(),
        };
        out.push(ResourceReport {
            resource_type,
            logical_id,
            physical_id: text("physical_id"),
            status,
            properties,
            tags,
        });
    }
    Ok(out)
}

/// The last `n` lines of a command's output, for records and errors.
pub fn tail(output: &str, n: usize) -> String {
    let lines: Vec<&str> = output.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn spec(name: &str, deps: &[&str]) -> StackSpec {
        StackSpec {
            name: name.into(),
            deploy: Some("true".into()),
            depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
            ..StackSpec::default()
        }
    }

    #[test]
    fn waves_follow_dependencies() {
        let check = |specs: Vec<StackSpec>, expected: Vec<Vec<&str>>| {
            let got: Vec<Vec<&str>> = waves(&specs)
                .iter()
                .map(|w| w.iter().map(|&i| specs[i].name.as_str()).collect())
                .collect();
            assert_eq!(got, expected);
        };
        check(
            vec![spec("a", &[]), spec("b", &["a"]), spec("c", &["b"])],
            vec![vec!["a"], vec!["b"], vec!["c"]],
        );
        check(
            vec![
                spec("api", &["db"]),
                spec("db", &[]),
                spec("web", &["api"]),
                spec("cache", &[]),
            ],
            vec![vec!["db", "cache"], vec!["api"], vec!["web"]],
        );
        check(vec![spec("x", &["y"]), spec("y", &["x"])], vec![]);
        check(
            vec![spec("a", &["nope", "c"]), spec("b", &["a"]), spec("c", &[])],
            vec![vec!["c"]],
        );
        // A long chain is one wave per stack, found in linear time.
        let names: Vec<String> = (0..10_000).map(|i| format!("s{i}")).collect();
        let chain: Vec<StackSpec> = (0..names.len())
            .map(|i| {
                spec(
                    &names[i],
                    &names[i.saturating_sub(1)..i]
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        assert_eq!(waves(&chain).len(), 10_000);
    }

    #[test]
    fn placeholders_are_substituted_and_others_kept() {
        let mut outputs = BTreeMap::new();
        outputs.insert(
            "db".to_owned(),
            BTreeMap::from([("HOST".to_owned(), "10.0.0.5".to_owned())]),
        );
        let check = |cmd: &str, expected: &str| assert_eq!(substitute(cmd, &outputs), expected);
        check("psql -h {{ db.HOST }}", "psql -h 10.0.0.5");
        check(
            "x {{db.HOST}}{{ .State }} {{ db.PORT }}",
            "x 10.0.0.5{{ .State }} {{ db.PORT }}",
        );
        check("open {{ db.HOST", "open {{ db.HOST");
        check("{{ db.HOST }}:{{ db.HOST }}", "10.0.0.5:10.0.0.5");
    }

    #[test]
    fn resources_need_a_logical_id_and_a_known_status() {
        // (Whether they keep the stack's contract is the model's rule,
        // applied as the report is recorded: tests/stacks.rs.)
        assert!(parse_resources(r#"[{"type":"x"}]"#).unwrap_err().contains("logical_id"));
        assert!(
            parse_resources(r#"[{"type":"x","logical_id":"a","status":"up"}]"#)
                .unwrap_err()
                .contains("'up'")
        );
    }

    #[test]
    fn templates_parse_as_json_or_yaml() {
        assert!(parse_template(r#"{"Resources": {}}"#).is_ok());
        assert!(parse_template("Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n").is_ok());
        assert!(parse_template("key: [unclosed\n").is_err());
    }
}
