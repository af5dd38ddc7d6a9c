//! `[logs]`: each case is a config text and the exact diagnostic lines it
//! must give (none for a valid config), plus the values a valid one reads to.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rollway_config::{Config, LogsConfig, parse};

fn check(toml: &str, expected: &str) -> Option<Config> {
    let (config, got) = match parse(toml, "rollway.toml") {
        Ok(c) => (Some(c), String::new()),
        Err(d) => (None, d.to_string()),
    };
    let expected: Vec<&str> = expected.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let got_lines: Vec<&str> = got.lines().collect();
    assert_eq!(got_lines, expected, "\n--- config ---\n{toml}\n--- got ---\n{got}\n");
    config
}

const BASE: &str = "project = \"p\"\n";

#[test]
fn logs_keys_read_to_their_values_or_defaults() {
    let cases: &[(&str, LogsConfig)] = &[
        ("", LogsConfig::default()),
        (
            "[logs]\n",
            LogsConfig {
                retention: Duration::from_secs(14 * 86_400),
                collect_every: Duration::from_secs(10),
            },
        ),
        (
            "[logs]\nretention = \"30d\"\ncollect_every = \"2s\"\n",
            LogsConfig {
                retention: Duration::from_secs(30 * 86_400),
                collect_every: Duration::from_secs(2),
            },
        ),
        (
            "[logs]\ncollect_every = \"1m\"\n",
            LogsConfig {
                retention: Duration::from_secs(14 * 86_400),
                collect_every: Duration::from_secs(60),
            },
        ),
    ];
    for (text, expected) in cases {
        let config = check(&format!("{BASE}{text}"), "").unwrap();
        assert_eq!(&config.logs, expected, "{text}");
    }
}

#[test]
fn bad_logs_keys_are_located() {
    let cases: &[(&str, &str)] = &[
        (
            "[logs]\nretention = \"0s\"\n",
            "rollway.toml:3:13: logs.retention is zero — give it a length greater than zero, e.g. \"5s\"",
        ),
        (
            "[logs]\ncollect_every = \"2h\"\n",
            "rollway.toml:3:17: logs.collect_every is longer than the maximum of 1h — use at most \"1h\"",
        ),
        (
            "[logs]\nretention = 14\n",
            "rollway.toml:3:13: logs.retention must be a duration string, not an integer — write a number and a unit in quotes, e.g. \"500ms\", \"5s\", \"30m\", \"1h30m\" or \"90d\"",
        ),
        (
            "[logs]\nkeep = \"1d\"\n",
            "rollway.toml:3:1: unknown key 'keep' in [logs] — remove it; the keys allowed here are retention, collect_every",
        ),
        (
            "logs = 3\n",
            "rollway.toml:2:8: logs must be a table, not an integer — write it as a [logs] section",
        ),
    ];
    for (text, expected) in cases {
        assert!(check(&format!("{BASE}{text}"), expected).is_none(), "{text}");
    }
}
