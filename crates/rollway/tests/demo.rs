//! `rollway demo` as a user runs it: exit 0, v1 answers at the printed URL,
//! and the history tells the whole story of the rolled-back v2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::process::Command;

const ROLLWAY: &str = env!("CARGO_BIN_EXE_rollway");

fn rollway(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(ROLLWAY)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("ROLLWAY_STORE")
        .env_remove("ROLLWAY_OPERATOR")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn get(url: &str) -> String {
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    buf.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned()
}

#[test]
fn demo_deploys_v1_rolls_back_v2_and_leaves_v1_answering() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let (code, stdout, stderr) = rollway(&["--json", "demo", "--dir", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let answer: serde_json::Value = serde_json::from_str(&stdout).expect("--json demo prints one JSON document");
    let config = dir.join("rollway.toml");
    let config = config.to_str().unwrap();
    let stop = || rollway(&["--config", config, "stop", "staging"]);

    let url = answer["url"].as_str().unwrap();
    let body = get(url);
    let v1 = answer["v1"].as_str().unwrap().to_owned();
    let v2 = answer["v2"].as_str().unwrap().to_owned();
    assert_ne!(v1, v2);

    let (code, history, stderr) = rollway(&["--config", config, "--json", "history", "staging"]);
    let (stop_code, _, stop_err) = stop();
    assert_eq!(stop_code, 0, "{stop_err}");
    assert_eq!(body, "hello from v1\n");
    assert_eq!(answer["body"], "hello from v1");
    assert_eq!(code, 0, "{stderr}");
    let history: Vec<serde_json::Value> = serde_json::from_str(&history).unwrap();
    let find = |id: &str| history.iter().find(|h| h["deployment"]["id"] == id).unwrap().clone();

    let first = find(&v1);
    assert_eq!(first["deployment"]["lifecycle"]["status"], "succeeded");

    let second = find(&v2);
    let d = &second["deployment"];
    assert_eq!(d["lifecycle"]["status"], "rolled_back");
    let path: Vec<&str> = d["lifecycle"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        path,
        [
            "pending",
            "building",
            "synthesizing",
            "deploying",
            "verifying",
            "failed",
            "rolled_back"
        ]
    );
    let times: Vec<i64> = d["lifecycle"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["at"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(d["failure_reason"].as_str().unwrap().contains("restarted"), "{d}");
    assert!(
        d["rollback_reason"].as_str().unwrap().starts_with("automatic rollback"),
        "{d}"
    );
    assert_eq!(d["rollback_to"], v1.as_str());
    let host = &second["verifications"][0]["hosts"][0];
    assert_eq!(host["host"], "local");
    assert_eq!(host["result"], "FAIL", "{host}");
    assert!(host["restarts_observed"].as_u64().unwrap() >= 1, "{host}");
    assert_eq!(host["returned_to"], v1.as_str(), "{host}");
}
