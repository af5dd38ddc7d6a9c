//! `rollway serve` as the tests drive it: a child killed if the test ends
//! first, bounded waits, plain HTTP GETs on loopback, and an OpenMetrics
//! parser strict enough that a malformed `/metrics` fails the test.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::Project;

/// How long anything here may take before the test gives up (a bound on
/// waits, not a timing assertion).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A `rollway serve` child, killed if the test ends before it does.
pub struct Serve {
    pub child: Child,
    /// Its stdout, line by line.
    pub lines: mpsc::Receiver<String>,
}

impl Serve {
    pub fn start(p: &Project, args: &[&str]) -> Self {
        Self::start_with(p, args, &[])
    }

    /// Starts it with extra environment variables.
    pub fn start_with(p: &Project, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut child = p
            .command(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self { child, lines }
    }

    pub fn line(&self) -> String {
        self.lines.recv_timeout(PATIENCE).expect("serve printed a line")
    }

    /// SIGKILL: no graceful stop. Returns what it had written to stderr.
    pub fn kill(&mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let mut stderr = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        stderr
    }

    pub fn terminate(&mut self) -> (ExitStatus, String) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = wait_for("serve to exit after SIGTERM", || self.child.try_wait().unwrap());
        let mut stderr = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        (status, stderr)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Calls `f` until it gives something, for at most [`PATIENCE`].
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < PATIENCE, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `GET path` on 127.0.0.1:port: the status and the body, or None when
/// nothing answers.
pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

pub use super::openmetrics::Sample as Line;

/// `/metrics` through the real OpenMetrics parser.
pub fn parse_metrics(text: &str) -> Vec<Line> {
    super::openmetrics::parse(text)
}

/// The value of the one sample of `name` with exactly `labels`.
pub fn value(metrics: &[Line], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
    let found: Vec<f64> = metrics
        .iter()
        .filter(|l| l.name == name && l.labels == want)
        .map(|l| l.value)
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?} appears {} times", found.len());
    found.first().copied()
}
