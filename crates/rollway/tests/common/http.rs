//! Real HTTP servers for the monitoring tests: [`HttpServer`]
//! (`/usr/bin/python3`, starts in ~10 ms): 200 on every path but `/sick`,
//! which answers 500; every answer says `X-Cache: HIT`; killed on drop.
//! [`RecordingServer`] (a thread here) answers 200 to every GET and keeps
//! each request's path and arrival time, so a test can count the probes
//! that reached it, whoever sent them.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::Project;

const SCRIPT: &str = r#"import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status = 500 if self.path == "/sick" else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.send_header("X-Cache", "HIT")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#;

#[derive(Debug)]
pub struct HttpServer(Child);

impl HttpServer {
    /// Serves on 127.0.0.1:`port` once this returns (within 10 s).
    pub fn start(project: &Project, port: u16) -> Self {
        let script = project.write("http_server.py", SCRIPT);
        let server = Self(
            Command::new("/usr/bin/python3")
                .arg(script)
                .arg(port.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the test server did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback HTTP server that records every request: (path, arrival in
/// Unix milliseconds). Stops on drop.
#[derive(Debug)]
pub struct RecordingServer {
    pub port: u16,
    requests: Arc<Mutex<Vec<(String, i64)>>>,
    stop: Arc<AtomicBool>,
}

impl RecordingServer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopping) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let log = log.clone();
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let at = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap();
                    let text = String::from_utf8_lossy(&head);
                    let path = text.split_whitespace().nth(1).unwrap_or("").to_owned();
                    log.lock().unwrap().push((path, at));
                    let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
                });
            }
        });
        Self { port, requests, stop }
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<(String, i64)> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for RecordingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}
