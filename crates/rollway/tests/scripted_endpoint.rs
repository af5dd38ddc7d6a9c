//! The acceptance run of issue 12's numbers with a real `rollway serve`
//! probing every second (about 7 minutes of wall time): a scripted endpoint
//! — a real HTTP server on loopback that this test drives — answers 5xx
//! to 60 % of requests for 150 s, refuses connections for 40 s (its
//! listener closed, then bound again on the same port), answers 5xx to 40 %
//! for 3 minutes, refuses for 20 s, then answers 200; a 10-minute
//! maintenance window (`rollway maintenance add`) begins inside the 40 s
//! refusal. `rollway uptime --json` must report exactly the downtime,
//! maintenance, no data and uptime that OPERATIONS.md's definition gives,
//! worked out here from the samples the store holds (common/uptime.rs),
//! and the samples must be what the server did: the statuses it sent, in
//! order, are the statuses stored, and every sample without an answer lies
//! in a refusal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::serve::Serve;
use common::uptime::{now_ms, stored_samples, uptime_against_definition, within_one_month};
use common::{Backend, Project};
use rollway_model::time::Timestamp;

const OK: u8 = 0;
const FAIL_60: u8 = 1;
const REFUSE: u8 = 2;
const FAIL_40: u8 = 3;
const MINUTE: i64 = 60_000;

/// What the endpoint answered: (when, status), in order.
type Answers = Arc<Mutex<Vec<(i64, u16)>>>;

/// A real HTTP server on 127.0.0.1 whose behaviour the test sets: 200, a
/// 5xx to request n when n mod 5 < 3 (60 %) or n mod 5 < 2 (40 %), or no
/// listener at all (connections refused).
struct Scripted {
    port: u16,
    mode: Arc<AtomicU8>,
    answers: Answers,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Scripted {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(OK));
        let answers: Answers = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (m, a, s) = (mode.clone(), answers.clone(), stop.clone());
        let thread = std::thread::spawn(move || serve_script(Some(listener), port, &m, &a, &s));
        Self {
            port,
            mode,
            answers,
            stop,
            thread: Some(thread),
        }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The endpoint's one thread: accepts (non-blocking, so a mode change is
/// seen within milliseconds), answers each request in turn.
fn serve_script(mut listener: Option<TcpListener>, port: u16, mode: &AtomicU8, answers: &Answers, stop: &AtomicBool) {
    let mut n: u64 = 0;
    while !stop.load(Ordering::SeqCst) {
        let now_mode = mode.load(Ordering::SeqCst);
        if now_mode == REFUSE {
            // Closed: the kernel refuses connections to the port.
            listener = None;
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        let l = match &listener {
            Some(l) => l,
            None => {
                // Bound again on the same port (std sets SO_REUSEADDR).
                let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
                l.set_nonblocking(true).unwrap();
                listener.insert(l)
            }
        };
        l.set_nonblocking(true).unwrap();
        match l.accept() {
            Ok((conn, _)) => {
                let status = match now_mode {
                    FAIL_60 if n % 5 < 3 => 503,
                    FAIL_40 if n % 5 < 2 => 503,
                    _ => 200,
                };
                n += 1;
                if answer(conn, status) {
                    answers.lock().unwrap().push((now_ms(), status));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => panic!("accept on 127.0.0.1:{port}: {e}"),
        }
    }
}

/// Reads one request's head and answers `status`; false when the client
/// went away first.
fn answer(mut conn: TcpStream, status: u16) -> bool {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(k) => head.extend_from_slice(&buf[..k]),
        }
    }
    let reason = if status == 200 { "OK" } else { "Service Unavailable" };
    conn.write_all(format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").as_bytes())
        .is_ok()
}

fn sleep_until(ms: i64) {
    let wait = ms - now_ms();
    if wait > 0 {
        std::thread::sleep(Duration::from_millis(wait as u64));
    }
}

#[test]
fn a_scripted_outage_gives_exactly_the_defined_downtime_maintenance_and_uptime() {
    within_one_month(Duration::from_secs(10 * 60));
    let endpoint = Scripted::start();
    let p = Project::new(Backend::Sqlite);
    p.write(
        "rollway.toml",
        &format!(
            r#"project = "scripted"

[environments.staging]
kind = "staging"

[monitors.api]
environment = "staging"
kind = "http"
url = "http://127.0.0.1:{}/"
interval = "1s"
"#,
            endpoint.port
        ),
    );

    // The script, on wall time: at least 10 s of 200s, then 150 s of 60 %
    // 5xx, then the 40 s refusal with a minute boundary (where the window
    // ends: windows are whole minutes) between 10 s and 30 s into it.
    let earliest_refusal = now_ms() + 10_000 + 150_000;
    let boundary = (earliest_refusal + 10_000 + MINUTE - 1).div_euclid(MINUTE) * MINUTE;
    let refusal = earliest_refusal.max(boundary - 30_000);
    let fail_60 = refusal - 150_000;
    let fail_40 = refusal + 40_000;
    let refusal_2 = fail_40 + 180_000;
    let recovered = refusal_2 + 20_000;
    let end = recovered + 10_000;
    let window = (boundary - 10 * MINUTE, boundary);
    assert!((refusal + 10_000..=refusal + 30_000).contains(&boundary));
    p.run(&[
        "maintenance",
        "add",
        "staging",
        "--start",
        &Timestamp::from_millis(window.0).to_string(),
        "--end",
        &Timestamp::from_millis(window.1).to_string(),
        "--note",
        "ends inside the 40 s refusal",
    ])
    .ok();

    let mut serve = Serve::start(&p, &["serve", "--listen", "127.0.0.1:0"]);
    assert!(serve.line().starts_with("serving on http://"));
    let started = now_ms();
    assert!(started < fail_60, "serve took too long to start");
    for (at, mode) in [
        (fail_60, FAIL_60),
        (refusal, REFUSE),
        (fail_40, FAIL_40),
        (refusal_2, REFUSE),
        (recovered, OK),
    ] {
        sleep_until(at);
        endpoint.set(mode);
    }
    sleep_until(end);
    let (status, stderr) = serve.terminate();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(", 0 lost"), "{stderr}");
    let answers = endpoint.answers.lock().unwrap().clone();
    drop(endpoint);

    // The samples are what the endpoint did: its statuses, in order, are
    // the stored statuses of the samples that got an answer (every 5xx it
    // sent is an error sample, every 200 an ok one), and the samples
    // without an answer all lie in a refusal (a probe starts at its slot,
    // give or take its lag).
    let samples = stored_samples(&p, "api");
    let sent: Vec<u16> = answers.iter().map(|a| a.1).collect();
    let stored: Vec<u16> = samples.iter().filter_map(|s| s.http_status).collect();
    assert_eq!(sent.len(), stored.len(), "answers sent vs samples with a status");
    assert!(sent == stored, "the statuses sent and stored differ");
    for s in &samples {
        let expected = match s.http_status {
            Some(503) => "error",
            Some(200) => "ok",
            None => "unavailable",
            Some(other) => panic!("status {other} was never sent"),
        };
        assert_eq!(s.outcome, expected, "{s:?}");
    }
    let in_refusal =
        |t: i64| (refusal - 1_000..fail_40 + 1_000).contains(&t) || (refusal_2 - 1_000..recovered + 1_000).contains(&t);
    let stray: Vec<i64> = samples
        .iter()
        .filter(|s| !s.responded() && !in_refusal(s.slot))
        .map(|s| s.slot)
        .collect();
    assert_eq!(stray, [] as [i64; 0], "samples without an answer outside the refusals");
    let unanswered = samples.iter().filter(|s| !s.responded()).count();
    assert!(
        unanswered >= 55,
        "{unanswered} samples without an answer in 60 s of refusals"
    );
    let n5xx = sent.iter().filter(|&&s| s == 503).count();
    assert!(
        n5xx >= 120,
        "{n5xx} 5xx answers: the 60 % and 40 % stretches did not happen"
    );

    // `uptime --json` against the definition over the same samples.
    let (got, want, terms) = uptime_against_definition(&p, "api", "staging", &[window], 2_000);
    assert_eq!(got, want);
    // What the script makes of it: the window takes all of the 60 % 5xx
    // stretch (its error minutes) and the refusal's first 10–30 s; the
    // refusal is one 40 s run, longer than 30 s, so it is downtime whole and
    // its part after the window stays: 10–30 s, which alone would be too
    // short. 40 % 5xx is never an error minute, and the 20 s refusal is
    // too short. Maintenance is the whole window.
    assert_eq!(terms.maintenance, 10 * MINUTE);
    let after_window = refusal + 40_000 - boundary;
    assert!(
        (after_window - 1_500..=after_window + 1_500).contains(&terms.downtime),
        "downtime {} ms; the refusal's part after the window is {after_window} ms",
        terms.downtime
    );
    assert!(got[0]["uptime_percent"].as_f64().unwrap() < 100.0);
    eprintln!(
        "scripted endpoint: {} samples ({} answered 503, {} unanswered); downtime {} s, maintenance {} s, no data {} s, uptime {} %",
        samples.len(),
        n5xx,
        unanswered,
        got[0]["downtime_seconds"],
        got[0]["maintenance_seconds"],
        got[0]["no_data_seconds"],
        got[0]["uptime_percent"]
    );
}
