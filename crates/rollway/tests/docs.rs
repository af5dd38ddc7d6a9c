//! The README documents what the code does: the event kinds table lists
//! exactly `EventKind::ALL`, and the exit codes match `--help`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use rollway_model::EventKind;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap()
}

fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text.find(heading).unwrap_or_else(|| panic!("README has no {heading}"));
    let rest = &text[start + heading.len()..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

#[test]
fn readme_lists_every_event_kind_and_no_other() {
    let text = readme();
    let documented: BTreeSet<String> = section(&text, "## Event kinds")
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .flat_map(|l| {
            let names = l.split(" |").next().unwrap_or("");
            names
                .split(" / ")
                .map(|n| n.trim_matches('`').to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let code: BTreeSet<String> = EventKind::ALL.iter().map(|k| k.as_str().to_owned()).collect();
    assert_eq!(documented, code);
}

#[test]
fn readme_exit_codes_match_the_help_text() {
    let text = readme();
    let table = section(&text, "## Exit codes");
    for code in ["0", "1", "2", "3", "130"] {
        assert!(
            table.contains(&format!("| {code} |")),
            "README documents exit code {code}"
        );
    }
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_rollway"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("0 ok, 1 the operation failed, 2 invalid input, 3 conflict"),
        "{help}"
    );
}

#[test]
fn readme_opens_with_the_demo_and_the_test_command_that_ci_runs() {
    let text = readme();
    let first_block = text.split("```sh\n").nth(1).unwrap();
    let mut lines = first_block.lines();
    let first_command = lines.next().unwrap();
    assert!(first_command.starts_with("scripts/demo"), "{first_command}");
    let second_command = lines.next().unwrap();
    assert!(second_command.starts_with("scripts/test"), "{second_command}");
    let demo = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/demo")).unwrap();
    assert!(demo.contains("rollway demo"), "{demo}");
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.ci/run")).unwrap();
    assert!(ci.contains("exec scripts/test"), "{ci}");
}
