//! A real HTTP server for the monitoring tests (`/usr/bin/python3`, starts
//! in ~10 ms): 200 on every path but `/sick`, which answers 500; every
//! answer says `X-Cache: HIT`. Killed on drop.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
