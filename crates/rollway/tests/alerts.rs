//! Alerts end to end (OPERATIONS.md "Alerts"), through the real binary: a
//! real `rollway serve` evaluating every second (`ROLLWAY_ALERT_EVERY=1s`)
//! and backing off 200 ms (`ROLLWAY_ALERT_BACKOFF_MS`), a real local HTTP
//! app the test turns bad and good, a real HTTP receiver on loopback that
//! records every notification (and fails the first ones when told to),
//! Debian's aiosmtpd for e-mail (plain, and STARTTLS with a login and a CA
//! made for the run), a slow app for the P95 rule, a deployed service
//! printing error lines for the log error-rate rules, and serve's own
//! `/metrics`. On both store backends where the test says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Project;
use common::serve::{Serve, wait_for};
use serde_json::Value;

/// One request the receiver got: its Idempotency-Key header and JSON body.
#[derive(Debug, Clone)]
struct Got {
    key: String,
    body: Value,
    accepted: bool,
}

/// A webhook receiver: answers 500 to the first `fail` requests, then 200.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Receiver {
    fn start(fail: usize) -> Self {
        Self::start_hanging(fail, 0)
    }

    /// Never answers the first `hang` requests (keeps them open 30 s),
    /// then as [`Receiver::start`].
    fn start_hanging(fail: usize, hang: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let (log, seen) = (got.clone(), Arc::new(AtomicUsize::new(0)));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                let head_end = loop {
                    if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break 0,
                        Ok(n) => data.extend_from_slice(&buf[..n]),
                    }
                };
                if head_end == 0 {
                    continue;
                }
                let head = String::from_utf8_lossy(&data[..head_end]).to_string();
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                        })
                        .unwrap_or_default()
                };
                let len: usize = header("content-length").parse().unwrap_or(0);
                while data.len() < head_end + len {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => data.extend_from_slice(&buf[..n]),
                    }
                }
                let body = serde_json::from_slice(&data[head_end..]).unwrap_or(Value::Null);
                let n = seen.fetch_add(1, Ordering::SeqCst);
                if n < hang {
                    log.lock().unwrap().push(Got {
                        key: header("idempotency-key"),
                        body,
                        accepted: false,
                    });
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_secs(30));
                        drop(conn);
                    });
                    continue;
                }
                let accepted = n >= fail + hang;
                log.lock().unwrap().push(Got {
                    key: header("idempotency-key"),
                    body,
                    accepted,
                });
                let status = if accepted {
                    "200 OK"
                } else {
                    "500 Internal Server Error"
                };
                let _ = conn.write_all(
                    format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").as_bytes(),
                );
            }
        });
        Self { port, got }
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// Waits for an accepted notification of `event` from `rule` other than `not_alert`.
    fn wait(&self, rule: &str, event: &str, not_alert: Option<&str>) -> Got {
        wait_for(&format!("a {event} notification of {rule}"), || {
            self.got().into_iter().find(|g| {
                g.accepted
                    && g.body["event"] == event
                    && g.body["alert"]["rule"] == rule
                    && not_alert.is_none_or(|a| g.body["alert"]["id"] != a)
            })
        })
    }
}

/// The app the monitor probes: 200 while good, 500 while bad; each answer
/// after its delay.
struct App {
    port: u16,
    bad: Arc<AtomicBool>,
}

impl App {
    fn start() -> Self {
        Self::start_slow(Duration::ZERO)
    }

    /// Answers every request `delay` after reading it.
    fn start_slow(delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let bad = Arc::new(AtomicBool::new(false));
        let flag = bad.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                std::thread::sleep(delay);
                let status = if flag.load(Ordering::SeqCst) {
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                };
                let _ = conn.write_all(
                    format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").as_bytes(),
                );
            }
        });
        Self { port, bad }
    }

    fn set_bad(&self, bad: bool) {
        self.bad.store(bad, Ordering::SeqCst);
    }
}

const FAST: &[(&str, &str)] = &[("ROLLWAY_ALERT_EVERY", "1s"), ("ROLLWAY_ALERT_BACKOFF_MS", "200")];

/// The business rule the notification tests open: `signups` below 5.
const SIGNUPS_RULE: &str = r#"[alerts.signups]
environment = "staging"
type = "business"
metric = "signups"
below = 5
severity = "warning"
"#;

/// [`config`] with `[notify.hook]` posting to 127.0.0.1:HOOK/hook and
/// [`SIGNUPS_RULE`] (plus `extra` lines of the rule).
fn signups_to_hook(app: u16, hook: u16, extra: &str) -> String {
    config(
        app,
        &format!("[notify.hook]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{hook}/hook\"\n\n{SIGNUPS_RULE}{extra}"),
    )
}

fn config(app: u16, extra: &str) -> String {
    format!(
        r#"project = "alerts"

[service]
start = "sleep 100"
port = 3000

[environments.staging]
kind = "staging"
hosts = ["local"]
root = ".rollway/staging"

[monitors.web]
environment = "staging"
kind = "http"
url = "http://127.0.0.1:{app}/"
interval = "1s"
retries = 1

{extra}
"#
    )
}

fn json(p: &Project, args: &[&str]) -> Value {
    p.run(args).ok().json()
}

#[test]
fn an_alert_opens_is_acknowledged_resolves_and_a_new_breach_opens_another() {
    for p in Project::each_backend() {
        let app = App::start();
        let hook = Receiver::start(0);
        p.write(
            "rollway.toml",
            &config(
                app.port,
                &format!(
                    "[notify.hook]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{}/hook\"\n",
                    hook.port
                ),
            ),
        );
        let _serve = Serve::start_with(&p, &["serve", "--listen", "127.0.0.1:0"], FAST);

        // Bad: the monitor goes down, an alert opens and is notified.
        app.set_bad(true);
        let opened = hook.wait("monitor-down", "opened", None);
        let id = opened.body["alert"]["id"].as_str().unwrap().to_owned();
        assert_eq!(opened.body["alert"]["subject"], "web");
        assert_eq!(opened.body["alert"]["severity"], "critical");
        assert_eq!(opened.key, format!("{id}-opened-hook"), "{}", p.backend.name());
        assert_eq!(opened.body["idempotency_key"], opened.key.as_str());
        let open = json(&p, &["--json", "alerts", "list", "--open"]);
        let open: Vec<&Value> = open
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["rule"] == "monitor-down")
            .collect();
        assert_eq!(open.len(), 1, "one open alert per (rule, subject): {open:?}");
        assert_eq!(open[0]["id"], id.as_str());

        // Acknowledged by a prefix of its id: notified with the operator.
        let acked = json(&p, &["--json", "alerts", "ack", &id[..13], "--note", "looking"]);
        assert_eq!(acked["acknowledged_by"], "tester@example.com");
        let ack = hook.wait("monitor-down", "acknowledged", None);
        assert_eq!(ack.body["operator"], "tester@example.com");
        assert_eq!(ack.body["alert"]["status"], "ack");
        assert_eq!(ack.body["note"], "looking");

        // Good again: two good evaluations resolve it.
        app.set_bad(false);
        let resolved = hook.wait("monitor-down", "resolved", None);
        assert_eq!(resolved.body["alert"]["id"], id.as_str());
        let shown = json(&p, &["--json", "alerts", "show", &id]);
        assert_eq!(shown["alert"]["lifecycle"]["status"], "resolved", "{shown}");
        assert!(shown["alert"]["resolved_at"].is_number() || shown["alert"]["resolved_at"].is_string());
        let events: Vec<&str> = shown["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["event"].as_str().unwrap())
            .collect();
        assert_eq!(events, ["opened", "acknowledged", "resolved"]);

        // A second breach opens a new alert (the resolved one never
        // reopens), and it resolves without an acknowledgement.
        app.set_bad(true);
        let second = hook.wait("monitor-down", "opened", Some(&id));
        let id2 = second.body["alert"]["id"].as_str().unwrap().to_owned();
        assert_ne!(id2, id);
        app.set_bad(false);
        let again = hook.wait("monitor-down", "resolved", Some(&id));
        assert_eq!(again.body["alert"]["id"], id2.as_str());
        let first = json(&p, &["--json", "alerts", "show", &id]);
        assert_eq!(first["alert"]["lifecycle"]["status"], "resolved");

        // Every notification had its own key, and each arrived once.
        let keys: Vec<String> = hook.got().into_iter().map(|g| g.key).collect();
        let unique: std::collections::BTreeSet<&String> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len(), "{keys:?}");
        // A prefix two alerts share is refused, listing both.
        let common_prefix: String = id
            .chars()
            .zip(id2.chars())
            .take_while(|(a, b)| a == b)
            .map(|(a, _)| a)
            .collect();
        if !common_prefix.is_empty() {
            let ambiguous = p.run(&["alerts", "show", &common_prefix]);
            assert_eq!(ambiguous.code, 2, "{}", ambiguous.stderr);
            assert!(
                ambiguous.stderr.contains(&id) && ambiguous.stderr.contains(&id2),
                "{}",
                ambiguous.stderr
            );
        }
    }
}

const CANARY: &str = "canary-s3cret-token";

/// `body` pretty-printed with ids, short ids and times replaced.
fn redacted(body: &Value) -> String {
    let any_time = regex::Regex::new(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z").unwrap();
    let short_id = regex::Regex::new(r"alert [0-9a-f]{8}\b").unwrap();
    let shown = any_time
        .replace_all(&common::redact(&format!("{body:#}")), "[time]")
        .into_owned();
    short_id.replace_all(&shown, "alert [short id]").into_owned()
}

/// Debian's aiosmtpd in the foreground, printing each message it gets;
/// `None` (skipped) only outside CI when it is not installed.
struct Smtpd {
    port: u16,
    child: std::process::Child,
    out: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Smtpd {
    fn start() -> Option<Self> {
        let probe = std::process::Command::new("/usr/bin/python3")
            .args(["-c", "import aiosmtpd"])
            .status();
        if !probe.is_ok_and(|s| s.success()) {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "python3-aiosmtpd is missing; scripts/test installs it"
            );
            eprintln!("skipped the e-mail part: python3-aiosmtpd is missing (scripts/test installs it)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = common::free_port();
        let out = dir.path().join("smtpd.out");
        let child = std::process::Command::new("/usr/bin/python3")
            .args(["-u", "-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Debugging"])
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let smtpd = Self {
            port,
            child,
            out,
            _dir: dir,
        };
        wait_for("aiosmtpd to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Some(smtpd)
    }

    fn printed(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_failing_receiver_gets_one_delivery_after_three_attempts_with_one_key_and_no_secret() {
    for p in Project::each_backend() {
        let app = App::start();
        let hook = Receiver::start(2);
        let smtpd = Smtpd::start();
        let mail = smtpd.as_ref().map_or_else(String::new, |s| {
            format!(
                "[notify.mail]\nkind = \"email\"\nsmtp = \"smtp+plain://127.0.0.1:{}\"\nfrom = \"Rollway <rollway@example.test>\"\nto = [\"ops@example.test\"]\n",
                s.port
            )
        });
        p.write(
            "rollway.toml",
            &config(
                app.port,
                &format!(
                    r#"[notify.hook]
kind = "webhook"
url_secret = "HOOK_URL"

{mail}
{SIGNUPS_RULE}"#
                ),
            ),
        );
        // The receiver's URL is a secret: it carries a token.
        p.run(&["secrets", "init"]).ok();
        let url = format!("http://127.0.0.1:{}/hook/{CANARY}", hook.port);
        p.run_with_stdin(&["secrets", "set", "staging", "HOOK_URL"], &format!("{url}\n"))
            .ok();
        let pushed = json(&p, &["--json", "metric", "push", "signups", "1"]);
        assert_eq!(pushed["value"], 1.0);
        assert_eq!(pushed["environment"], "staging");
        // Bad input says what and what to do.
        let bad = p.run(&["metric", "push", "signups", "lots"]);
        assert_eq!(bad.code, 2);
        assert!(bad.stderr.contains("'lots' is not a finite number"), "{}", bad.stderr);

        let _serve = Serve::start_with(&p, &["serve", "--listen", "127.0.0.1:0"], FAST);
        let opened = hook.wait("signups", "opened", None);
        let id = opened.body["alert"]["id"].as_str().unwrap().to_owned();
        // The whole body a JSON receiver reads, ids and times redacted.
        insta::assert_snapshot!("webhook_opened_body", redacted(&opened.body));
        // Three attempts, one accepted, all with the same key.
        let tries: Vec<Got> = hook.got().into_iter().filter(|g| g.key == opened.key).collect();
        assert_eq!(tries.len(), 3, "{tries:?}");
        assert_eq!(tries.iter().filter(|g| g.accepted).count(), 1);
        let shown = json(&p, &["--json", "alerts", "show", &id]);
        let d = shown["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["channel"] == "hook")
            .unwrap()
            .clone();
        assert_eq!(
            (d["attempts"].as_u64(), d["status"].as_str()),
            (Some(3), Some("delivered")),
            "{d}"
        );
        assert_eq!(d["idempotency_key"], format!("{id}-opened-hook").as_str());
        assert_eq!(shown["alert"]["alert_type"], "business");

        // A note quoting the secret is masked before it is stored or sent.
        p.run(&["alerts", "ack", &id, "--note", &format!("token {url} rotated")])
            .ok();
        let ack = hook.wait("signups", "acknowledged", None);
        assert_eq!(ack.body["note"], "token **** rotated");

        // Good again: resolved. No body, stored or sent, holds the secret.
        p.run(&["metric", "push", "signups", "9"]).ok();
        hook.wait("signups", "resolved", None);
        for g in hook.got() {
            assert!(!g.body.to_string().contains(CANARY), "{}", g.body);
        }
        let shown = p.run(&["--json", "alerts", "show", &id]).ok();
        assert!(!shown.stdout.contains(CANARY), "{}", shown.stdout);

        if let Some(smtpd) = &smtpd {
            let mail = wait_for("the e-mails of open, ack and resolve", || {
                let text = smtpd.printed();
                (text.matches("Message-ID").count() + text.matches("Message-Id").count() >= 3).then_some(text)
            });
            assert!(mail.contains(&id), "{mail}");
            assert!(mail.contains("signups"), "{mail}");
            assert!(!mail.contains(CANARY), "{mail}");
        }
    }
}

#[test]
fn a_disk_rule_below_the_real_usage_opens_a_resource_alert_naming_the_host() {
    let p = Project::new(common::Backend::Sqlite);
    let app = App::start();
    let hook = Receiver::start(0);
    p.write(
        "rollway.toml",
        &config(
            app.port,
            &format!(
                r#"[notify.hook]
kind = "webhook"
url = "http://127.0.0.1:{}/hook"

[alerts.disk]
environment = "staging"
type = "resource"
metric = "disk"
above = 0.001
severity = "critical"
"#,
                hook.port
            ),
        ),
    );
    let _serve = Serve::start_with(&p, &["serve", "--listen", "127.0.0.1:0"], FAST);
    let opened = hook.wait("disk", "opened", None);
    assert_eq!(opened.body["alert"]["subject"], "local");
    assert_eq!(opened.body["alert"]["metric"], "disk");
    assert!(opened.body["alert"]["value"].as_f64().unwrap() > 0.001);
    let listed = json(&p, &["--json", "alerts", "list", "--open", "--env", "staging"]);
    let disk: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["rule"] == "disk")
        .collect();
    assert_eq!(disk.len(), 1);
    assert_eq!(disk[0]["alert_type"], "resource");
    assert!(disk[0]["summary"].as_str().unwrap().contains("local"), "{}", disk[0]);
}

#[test]
fn an_alert_soon_after_a_deployment_names_it_and_suggests_a_rollback() {
    use common::deploy::{Config, Staging};
    let stage = Staging::new();
    let port = common::free_port();
    let hook = Receiver::start(0);
    let mut config = Config::local("deployaware", port, &stage.path().join("host0"));
    config.sections = format!(
        r#"[monitors.app]
environment = "staging"
kind = "http"
url = "http://127.0.0.1:{port}/"
interval = "1s"
retries = 1

[notify.hook]
kind = "webhook"
url = "http://127.0.0.1:{}/hook"

"#,
        hook.port
    );
    stage.configure(&config);
    stage.mode("v1");
    let r = stage.run(&["--json", "deploy", "staging", "--version-tag", "v1.4.2"]);
    assert_eq!(r.code, 0, "{r:#?}");
    let deployment = common::deploy::id(&stage.history()[0]).to_owned();
    // Two seconds after its window passed, the app stops answering.
    std::thread::sleep(Duration::from_secs(2));
    stage.run(&["stop", "staging"]).ok();
    let _serve = Serve::start_with(
        &stage.project,
        &["serve", "--listen", "127.0.0.1:0"],
        &[("ROLLWAY_ALERT_EVERY", "1s"), ("ROLLWAY_LEASE", common::deploy::LEASE)],
    );
    let opened = hook.wait("monitor-down", "opened", None);
    let summary = opened.body["alert"]["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!("after deployment {deployment} (v1.4.2)")),
        "{summary}"
    );
    assert!(summary.contains("rollway rollback staging"), "{summary}");
    let id = opened.body["alert"]["id"].as_str().unwrap();
    let shown = json(&stage.project, &["--json", "alerts", "show", id]);
    assert_eq!(shown["alert"]["deployment_id"], deployment.as_str());
    assert_eq!(shown["alert"]["deployment_version"], "v1.4.2");
    assert!(
        shown["alert"]["minutes_after_deployment"].as_i64().unwrap() <= 1,
        "{shown}"
    );
}

#[test]
fn a_delivery_cut_off_by_a_kill_is_sent_after_a_restart_with_the_same_key() {
    for p in Project::each_backend() {
        let app = App::start();
        let hook = Receiver::start_hanging(0, 1);
        p.write("rollway.toml", &signups_to_hook(app.port, hook.port, ""));
        p.run(&["metric", "push", "signups", "1"]).ok();
        let mut first = Serve::start_with(&p, &["serve", "--listen", "127.0.0.1:0"], FAST);
        let cut = wait_for("the first attempt to reach the receiver", || {
            hook.got().into_iter().next()
        });
        first.kill();
        let id = cut.body["alert"]["id"].as_str().unwrap().to_owned();
        let pending = json(&p, &["--json", "alerts", "show", &id]);
        assert_eq!(pending["deliveries"][0]["status"], "pending", "{pending}");
        assert_eq!(
            pending["deliveries"][0]["attempts"], 0,
            "the cut attempt was never recorded"
        );

        // Due again once the killed sender's claim ran out (30 s).
        let _second = Serve::start_with(&p, &["serve", "--listen", "127.0.0.1:0"], FAST);
        let sent = hook.wait("signups", "opened", None);
        assert_eq!(sent.key, cut.key, "the same idempotency key");
        let all = hook.got();
        assert_eq!(all.iter().filter(|g| g.accepted).count(), 1, "{all:?}");
        let done = json(&p, &["--json", "alerts", "show", &id]);
        assert_eq!(done["deliveries"].as_array().unwrap().len(), 1, "{done}");
        assert_eq!(done["deliveries"][0]["status"], "delivered");
        // One alert: the restart resumed the tracker, it opened none anew.
        let listed = json(&p, &["--json", "alerts", "list"]);
        let signups = listed
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["rule"] == "signups")
            .count();
        assert_eq!(signups, 1);
    }
}

#[test]
fn a_maintenance_window_keeps_the_record_and_silences_the_notifications() {
    for p in Project::each_backend() {
        let app = App::start();
        let hook = Receiver::start(0);
        p.write("rollway.toml", &signups_to_hook(app.port, hook.port, ""));
        let now = common::deploy::now_ms();
        let minute = i64::try_from(now - now % 60_000).unwrap();
        p.run(&[
            "maintenance",
            "add",
            "staging",
            "--start",
            &rollway_model::Timestamp::from_millis(minute - 60_000).to_string(),
            "--end",
            &rollway_model::Timestamp::from_millis(minute + 3_600_000).to_string(),
        ])
        .ok();
        p.run(&["metric", "push", "signups", "1"]).ok();
        let _serve = Serve::start_with(&p, &["serve", "--listen", "127.0.0.1:0"], FAST);
        let alert = wait_for("the alert to be recorded", || {
            json(&p, &["--json", "alerts", "list", "--open"])
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["rule"] == "signups")
                .cloned()
        });
        // Several evaluations and delivery rounds later: nothing was sent or queued.
        std::thread::sleep(Duration::from_secs(3));
        assert!(hook.got().is_empty(), "{:?}", hook.got());
        let shown = json(&p, &["--json", "alerts", "show", alert["id"].as_str().unwrap()]);
        assert_eq!(shown["deliveries"], Value::Array(Vec::new()), "{shown}");
    }
}

#[test]
fn an_open_alert_is_repeated_until_acknowledged_then_after_its_until() {
    let p = Project::new(common::Backend::Sqlite);
    let app = App::start();
    let hook = Receiver::start(0);
    p.write(
        "rollway.toml",
        &signups_to_hook(app.port, hook.port, "repeat = \"2s\"\n"),
    );
    p.run(&["metric", "push", "signups", "1"]).ok();
    let _serve = Serve::start_with(&p, &["serve", "--listen", "127.0.0.1:0"], FAST);
    let opened = hook.wait("signups", "opened", None);
    let id = opened.body["alert"]["id"].as_str().unwrap().to_owned();
    let first = hook.wait("signups", "reminder", None);
    assert_eq!(first.key, format!("{id}-reminder-hook-1"));
    let second = wait_for("a second reminder", || {
        hook.got()
            .into_iter()
            .find(|g| g.key == format!("{id}-reminder-hook-2"))
    });
    assert_eq!(second.body["alert"]["status"], "open");
    // Acknowledged with a silence of 3 s: no reminder before it ends, one after.
    let acked = common::deploy::now_ms();
    p.run(&["alerts", "ack", &id, "--until", "3s"]).ok();
    hook.wait("signups", "acknowledged", None);
    let third = wait_for("a reminder after the silence", || {
        hook.got()
            .into_iter()
            .find(|g| g.key == format!("{id}-reminder-hook-3"))
    });
    let at = rollway_model::Timestamp::parse_rfc3339(third.body["at"].as_str().unwrap()).unwrap();
    assert!(
        u64::try_from(at.as_millis()).unwrap() >= acked + 3_000,
        "the reminder came {} ms after the ack",
        at.as_millis() - i64::try_from(acked).unwrap()
    );
    assert_eq!(third.body["alert"]["status"], "ack");
}

#[test]
fn a_slow_app_opens_a_p95_alert_naming_the_monitor() {
    for p in Project::each_backend() {
        let app = App::start_slow(Duration::from_millis(300));
        let hook = Receiver::start(0);
        p.write(
            "rollway.toml",
            &config(
                app.port,
                &format!(
                    r#"[notify.hook]
kind = "webhook"
url = "http://127.0.0.1:{}/hook"

[alerts.slow]
environment = "staging"
type = "availability"
metric = "p95_ms"
monitor = "web"
above = 150
severity = "warning"
"#,
                    hook.port
                ),
            ),
        );
        let _serve = Serve::start_with(&p, &["serve", "--listen", "127.0.0.1:0"], FAST);
        let opened = hook.wait("slow", "opened", None);
        let alert = &opened.body["alert"];
        assert_eq!(alert["subject"], "web", "{alert}");
        assert_eq!(alert["metric"], "p95_ms");
        assert_eq!(alert["severity"], "warning");
        // Every answer took at least 300 ms; the sketch is within 1 %.
        let p95 = alert["value"].as_f64().unwrap();
        assert!(p95 >= 297.0, "p95 {p95} ms");
        assert!(
            alert["summary"].as_str().unwrap().starts_with("p95_ms of web at "),
            "{alert}"
        );
        // The monitor is up all along: no availability alert on it.
        let open = json(&p, &["--json", "alerts", "list", "--open"]);
        let rules: Vec<&str> = open
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["rule"].as_str().unwrap())
            .collect();
        assert_eq!(rules, ["slow"], "{open}");
    }
}

/// A deployed service that prints an info line every 100 ms, and an error
/// line beside it while the file `bad` exists in the directory its
/// `mode.txt` names.
const NOISY_APP: &str = r#"import http.server, os, sys, threading, time
HERE = os.path.dirname(os.path.abspath(__file__))
SIGNALS = open(os.path.join(HERE, "mode.txt")).read().split()[0]

def talk():
    n = 0
    while True:
        n += 1
        lines = ['level=info msg="tick %d"' % n]
        if os.path.exists(os.path.join(SIGNALS, "bad")):
            lines.append('{"level":"error","msg":"payment failed %d"}' % n)
        sys.stdout.write("".join(l + "\n" for l in lines))
        sys.stdout.flush()
        time.sleep(0.1)

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass

threading.Thread(target=talk, daemon=True).start()
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

#[test]
fn error_lines_in_the_logs_open_an_alert_naming_the_environment_and_resolve_when_they_stop() {
    use common::deploy::{Config, Staging};
    let stage = Staging::new();
    let hook = Receiver::start(0);
    let port = common::free_port();
    let mut config = Config::local("logerrors", port, &stage.path().join("srv"));
    config.sections = format!(
        r#"[notify.hook]
kind = "webhook"
url = "http://127.0.0.1:{}/hook"

[alerting]
log_errors_per_minute = 5

[alerts.errors]
environment = "staging"
type = "availability"
metric = "log_errors_per_minute"
above = 5
severity = "critical"
resolve_after = 2

"#,
        hook.port
    );
    stage.configure(&config);
    stage.project.write("app/server.py", NOISY_APP);
    let signals = stage.path().join("signals");
    std::fs::create_dir_all(&signals).unwrap();
    stage.mode(&signals.display().to_string());
    let r = stage.run(&["deploy", "staging"]);
    assert_eq!(r.code, 0, "{r:#?}");
    // The window shortened to 3 s (scaled to a minute): an error line seen
    // in it is 20 a minute, none for 3 s is 0.
    let _serve = Serve::start_with(
        &stage.project,
        &["serve", "--listen", "127.0.0.1:0"],
        &[
            ("ROLLWAY_ALERT_EVERY", "1s"),
            ("ROLLWAY_LOG_EVERY", "200ms"),
            ("ROLLWAY_LOG_ERROR_WINDOW", "3s"),
            ("ROLLWAY_LEASE", common::deploy::LEASE),
        ],
    );
    // Info lines alone: collected, and no alert.
    wait_for("the info lines to be stored", || {
        // Until the first batch is stored, `logs --grep` says there is none.
        let r = stage.run(&["--json", "logs", "staging", "--grep", "tick"]);
        (r.code == 0 && r.json().as_array().unwrap().len() >= 10).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(hook.got().is_empty(), "{:?}", hook.got());

    std::fs::write(signals.join("bad"), "").unwrap();
    let opened = hook.wait("errors", "opened", None);
    let alert = &opened.body["alert"];
    assert_eq!(alert["subject"], "staging", "{alert}");
    assert_eq!(alert["metric"], "log_errors_per_minute");
    assert_eq!(alert["severity"], "critical");
    assert!(alert["value"].as_f64().unwrap() > 5.0, "{alert}");
    let summary = alert["summary"].as_str().unwrap();
    assert!(summary.contains("of staging"), "{summary}");
    // The deployment finished moments ago: the alert names it.
    let deployment = common::deploy::id(&stage.history()[0]).to_owned();
    assert!(summary.contains(&deployment), "{summary}");

    // The built-in rule of [alerting] log_errors_per_minute opens its own, a warning.
    let builtin = hook.wait("log-errors", "opened", None);
    assert_eq!(
        (&builtin.body["alert"]["subject"], &builtin.body["alert"]["severity"]),
        (&Value::from("staging"), &Value::from("warning"))
    );

    // `rollway history` lists both under the deployment they followed.
    let mut listed: Vec<String> = stage.history()[0]["alerts"]
        .as_array()
        .unwrap_or_else(|| panic!("no alerts in {}", stage.history()[0]))
        .iter()
        .map(|a| a["rule"].as_str().unwrap().to_owned())
        .collect();
    listed.sort();
    assert_eq!(listed, ["errors", "log-errors"]);

    // The errors stop: once the window holds none, two good evaluations resolve them.
    std::fs::remove_file(signals.join("bad")).unwrap();
    let resolved = hook.wait("errors", "resolved", None);
    assert_eq!(resolved.body["alert"]["id"], alert["id"]);
    hook.wait("log-errors", "resolved", None);
    let shown = json(
        &stage.project,
        &["--json", "alerts", "show", alert["id"].as_str().unwrap()],
    );
    assert_eq!(shown["alert"]["lifecycle"]["status"], "resolved", "{shown}");
    let opened: Vec<String> = hook
        .got()
        .iter()
        .filter(|g| g.body["event"] == "opened")
        .map(|g| g.body["alert"]["rule"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(opened.len(), 2, "one alert per rule for the one burst: {opened:?}");
}

/// An SMTP server that insists on STARTTLS and on a login over it
/// (aiosmtpd's `require_starttls`, `auth_required`, `auth_require_tls`),
/// with a CA and a server certificate for 127.0.0.1 made for the run
/// (`ca.pem` beside it). Each AUTH attempt and each message is one JSON
/// line in `smtpd.jsonl`: the login and password received, whether TLS was
/// on, and the message.
const SMTPD_TLS: &str = r#"import datetime, ipaddress, json, os, ssl, sys, time
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

DIR, PORT, USER, PASSWORD = sys.argv[1], int(sys.argv[2]), sys.argv[3], os.environ["SMTP_EXPECTED"]
OUT = os.path.join(DIR, "smtpd.jsonl")
now = datetime.datetime.utcnow()

def cert(subject, key, issuer, issuer_key, ca):
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(hours=1))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())

name = lambda cn: x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
ca = cert(name("rollway test ca"), ca_key, name("rollway test ca"), ca_key, True)
leaf = cert(name("127.0.0.1"), key, name("rollway test ca"), ca_key, False)
pem = lambda c: c.public_bytes(serialization.Encoding.PEM)
open(os.path.join(DIR, "ca.pem"), "wb").write(pem(ca))
open(os.path.join(DIR, "server.pem"), "wb").write(pem(leaf))
open(os.path.join(DIR, "server.key"), "wb").write(key.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

def record(entry):
    with open(OUT, "a") as f:
        f.write(json.dumps(entry) + "\n")

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword)
    login = auth_data.login.decode() if ok else None
    password = auth_data.password.decode() if ok else None
    record({"auth": mechanism, "login": login, "password": password, "tls": session.ssl is not None})
    return AuthResult(success=ok and login == USER and password == PASSWORD)

class Handler:
    async def handle_DATA(self, server, session, envelope):
        record({"mail": envelope.content.decode("utf-8", "replace"), "tls": session.ssl is not None,
                "authenticated": bool(session.authenticated)})
        return "250 OK"

context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(os.path.join(DIR, "server.pem"), os.path.join(DIR, "server.key"))
controller = Controller(Handler(), hostname="127.0.0.1", port=PORT, tls_context=context,
                        require_starttls=True, auth_required=True, auth_require_tls=True,
                        authenticator=authenticator)
controller.start()
open(os.path.join(DIR, "ready"), "w").close()
while True:
    time.sleep(3600)
"#;

const SMTP_PASSWORD: &str = "canary-smtp-Pw7Kq2Zx9";

#[test]
fn e_mail_logs_in_over_starttls_with_the_secret_which_no_record_event_or_output_shows() {
    let p = Project::new(common::Backend::Sqlite);
    let app = App::start();
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    std::fs::write(dir.path().join("smtpd.py"), SMTPD_TLS).unwrap();
    let mut smtpd = std::process::Command::new("/usr/bin/python3")
        .arg(dir.path().join("smtpd.py"))
        .args([&dir.path().display().to_string(), &port.to_string(), "rollway"])
        .env("SMTP_EXPECTED", SMTP_PASSWORD)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("smtpd.err")).unwrap())
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _smtpd = Kill(&mut smtpd);
    wait_for("the SMTP server to start", || {
        dir.path().join("ready").exists().then_some(())
    });
    std::fs::copy(dir.path().join("ca.pem"), p.path().join("test-ca.pem")).unwrap();
    p.write(
        "rollway.toml",
        &config(
            app.port,
            &format!(
                r#"[notify.mail]
kind = "email"
smtp = "smtp://127.0.0.1:{port}"
username = "rollway"
password_secret = "SMTP_PASSWORD"
ca_file = "test-ca.pem"
from = "Rollway <rollway@example.test>"
to = ["ops@example.test"]

{SIGNUPS_RULE}"#
            ),
        ),
    );
    p.run(&["secrets", "init"]).ok();
    p.run_with_stdin(
        &["secrets", "set", "staging", "SMTP_PASSWORD"],
        &format!("{SMTP_PASSWORD}\n"),
    )
    .ok();
    p.run(&["metric", "push", "signups", "1"]).ok();
    let mut serve = Serve::start_with(&p, &["serve", "--listen", "127.0.0.1:0"], FAST);

    let seen = || -> Vec<Value> {
        std::fs::read_to_string(dir.path().join("smtpd.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let mail = wait_for("the e-mail of the opened alert", || {
        seen().into_iter().find(|e| e.get("mail").is_some())
    });
    // The login came over TLS, with the secret's value, and succeeded.
    let auths: Vec<Value> = seen().into_iter().filter(|e| e.get("auth").is_some()).collect();
    assert_eq!(auths.len(), 1, "{auths:?}");
    assert_eq!(auths[0]["login"], "rollway");
    assert_eq!(auths[0]["password"], SMTP_PASSWORD);
    assert_eq!(auths[0]["tls"], true);
    assert_eq!(
        (&mail["tls"], &mail["authenticated"]),
        (&Value::Bool(true), &Value::Bool(true))
    );
    // The body arrived: the alert's line and fields.
    let listed = json(&p, &["--json", "alerts", "list"]);
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    let body = mail["mail"].as_str().unwrap();
    assert!(
        body.contains(&format!("Message-ID: <{id}-opened-mail@rollway>")),
        "{body}"
    );
    assert!(body.contains(&format!("alert       {id}")), "{body}");
    assert!(body.contains("rule        signups"), "{body}");
    let shown = json(&p, &["--json", "alerts", "show", &id]);
    assert_eq!(shown["deliveries"][0]["status"], "delivered", "{shown}");
    assert_eq!(shown["deliveries"][0]["attempts"], 1, "{shown}");

    // The secret's value is in no record, delivery row, event or output.
    let (_, serve_err) = serve.terminate();
    let mut outputs = vec![
        ("serve's stderr".to_owned(), serve_err),
        (
            "serve's stdout".to_owned(),
            serve.lines.try_iter().collect::<Vec<_>>().join("\n"),
        ),
    ];
    for args in [
        &["--json", "alerts", "show", &id][..],
        &["--json", "alerts", "list"],
        &["--json", "events", "list"],
        &["alerts", "show", &id],
    ] {
        let r = p.run(args).ok();
        outputs.push((format!("{args:?}"), r.stdout + &r.stderr));
    }
    for (what, text) in &outputs {
        for form in common::secret_forms(SMTP_PASSWORD) {
            assert!(!text.contains(&form), "{what} shows the SMTP password: {text}");
        }
    }
    for entry in std::fs::read_dir(p.path().join(".rollway")).unwrap().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        for form in common::secret_forms(SMTP_PASSWORD) {
            assert!(
                !common::contains(&bytes, &form),
                "{} holds the SMTP password",
                entry.path().display()
            );
        }
    }
}

#[test]
fn metrics_count_open_and_opened_alerts_and_each_delivery_attempt() {
    use common::serve::{get, parse_metrics, value};
    for p in Project::each_backend() {
        let app = App::start();
        let hook = Receiver::start(1);
        p.write("rollway.toml", &signups_to_hook(app.port, hook.port, ""));
        p.run(&["metric", "push", "signups", "1"]).ok();
        let port = common::free_port();
        let listen = format!("127.0.0.1:{port}");
        let _serve = Serve::start_with(&p, &["serve", "--listen", &listen], FAST);
        hook.wait("signups", "opened", None);
        // (name, labels, value) that /metrics must show, all at once.
        type Want<'a> = Vec<(&'a str, Vec<(&'a str, &'a str)>, f64)>;
        let scrape_until = |what: &str, want: &Want<'_>| {
            wait_for(what, || {
                let (status, text) = get(port, "/metrics")?;
                assert_eq!(status, 200);
                let m = parse_metrics(&text);
                want.iter()
                    .all(|(name, labels, v)| value(&m, name, labels) == Some(*v))
                    .then_some(m)
            })
        };
        let business = vec![("severity", "warning"), ("type", "business")];
        let opened = scrape_until(
            "the opened alert and its two attempts in /metrics",
            &vec![
                ("rollway_alerts_open", business.clone(), 1.0),
                ("rollway_alerts_opened_total", business.clone(), 1.0),
                (
                    "rollway_notification_deliveries_total",
                    vec![("channel", "hook"), ("status", "retried")],
                    1.0,
                ),
                (
                    "rollway_notification_deliveries_total",
                    vec![("channel", "hook"), ("status", "delivered")],
                    1.0,
                ),
            ],
        );
        // Every other severity and type is there, at zero; nothing failed for good.
        assert_eq!(
            value(
                &opened,
                "rollway_alerts_open",
                &[("severity", "critical"), ("type", "availability")]
            ),
            Some(0.0)
        );
        assert_eq!(
            value(
                &opened,
                "rollway_notification_deliveries_total",
                &[("channel", "hook"), ("status", "failed")]
            ),
            None
        );

        // Resolved: no alert open, and the resolve notification delivered.
        p.run(&["metric", "push", "signups", "9"]).ok();
        hook.wait("signups", "resolved", None);
        scrape_until(
            "the resolved alert in /metrics",
            &vec![
                ("rollway_alerts_open", business.clone(), 0.0),
                ("rollway_alerts_opened_total", business.clone(), 1.0),
                (
                    "rollway_notification_deliveries_total",
                    vec![("channel", "hook"), ("status", "delivered")],
                    2.0,
                ),
            ],
        );
    }
}
