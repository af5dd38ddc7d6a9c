//! The HTTP probe the agent runs on a host against `127.0.0.1:PORT`: one
//! HTTP/1.1 GET over a plain `TcpStream`, bounded by a timeout, reporting the
//! status code, the latency and, when there is no status, why.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What one probe saw. `status` is `None` when no status line arrived; then
/// `error` says why (refused, timed out, not HTTP …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
}

/// The status line is all the probe needs; a server that sends more than
/// this without a line end is not speaking HTTP.
const MAX_STATUS_LINE: usize = 8 * 1024;

/// GETs `http://127.0.0.1:PORT{path}` with `Connection: close`. The whole
/// exchange (connect, send, read the status line) is bounded by `timeout`.
/// Never panics: whatever the peer does ends up in `error`.
pub fn http_probe(port: u16, path: &str, timeout: Duration) -> ProbeResult {
    let started = Instant::now();
    let outcome = exchange(port, path, timeout, started);
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok(status) => ProbeResult {
            status: Some(status),
            latency_ms,
            error: None,
        },
        Err(error) => ProbeResult {
            status: None,
            latency_ms,
            error: Some(error),
        },
    }
}

fn exchange(port: u16, path: &str, timeout: Duration, started: Instant) -> Result<u16, String> {
    let target = request_target(path)?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let timeout = timeout.max(Duration::from_millis(1));
    let ms = timeout.as_millis();
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| describe(&e, "connect to", port, ms))?;
    let remaining = |what: &str| {
        timeout
            .checked_sub(started.elapsed())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("timed out after {ms} ms {what} 127.0.0.1:{port}"))
    };
    stream
        .set_write_timeout(Some(remaining("sending to")?))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: rollway-probe\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| describe(&e, "send to", port, ms))?;

    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            return parse_status_line(&buf[..end]);
        }
        if buf.len() > MAX_STATUS_LINE {
            return Err(format!(
                "127.0.0.1:{port} sent {} bytes without a status line: not an HTTP server",
                buf.len()
            ));
        }
        stream
            .set_read_timeout(Some(remaining("waiting for an answer from")?))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut chunk) {
            Ok(0) if buf.is_empty() => {
                return Err(format!("127.0.0.1:{port} closed the connection without answering"));
            }
            // HTTP/1.0-style peers may close right after a bare status line.
            Ok(0) => return parse_status_line(trim_line_end(&buf)),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(describe(&e, "read from", port, ms)),
        }
    }
}

/// Only origin-form targets are sent, so a config typo cannot smuggle a
/// second request line into the probe.
fn request_target(path: &str) -> Result<String, String> {
    if path.chars().any(|c| c.is_ascii_control() || c == ' ') {
        return Err(format!(
            "probe path {path:?} contains spaces or control characters; fix [health] path"
        ));
    }
    Ok(if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    })
}

fn trim_line_end(buf: &[u8]) -> &[u8] {
    buf.strip_suffix(b"\n").unwrap_or(buf)
}

/// `HTTP/1.x NNN reason` → NNN; anything else is an error naming what came.
fn parse_status_line(line: &[u8]) -> Result<u16, String> {
    let text = String::from_utf8_lossy(line);
    let mut parts = text.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    let valid_code = code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit());
    match code.parse::<u16>() {
        Ok(status) if version.starts_with("HTTP/") && valid_code && (100..=999).contains(&status) => Ok(status),
        _ => {
            let shown: String = text.chars().take(80).collect();
            Err(format!("not an HTTP status line: {shown:?}"))
        }
    }
}

fn describe(e: &io::Error, what: &str, port: u16, ms: u128) -> String {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            format!("timed out after {ms} ms trying to {what} 127.0.0.1:{port}")
        }
        io::ErrorKind::ConnectionRefused => {
            format!("connection refused on 127.0.0.1:{port}: nothing listens on the port")
        }
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => {
            format!("127.0.0.1:{port} reset the connection")
        }
        _ => format!("cannot {what} 127.0.0.1:{port}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::net::TcpListener;
    use std::thread;

    /// How the test server answers one connection.
    #[derive(Clone, Copy, Debug)]
    enum Server {
        Reply(&'static [u8]),
        /// Reads the request, sends nothing, holds the connection open.
        Hang(Duration),
        /// Accepts and closes at once.
        Close,
    }

    /// Serves one connection in a thread; returns the port and the request it read.
    fn serve(kind: Server) -> (u16, thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            if let Server::Close = kind {
                return String::new();
            }
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut req = Vec::new();
            let mut b = [0u8; 512];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&b[..n]),
                }
            }
            match kind {
                Server::Reply(bytes) => {
                    let _ = s.write_all(bytes);
                }
                Server::Hang(d) => thread::sleep(d),
                Server::Close => {}
            }
            String::from_utf8_lossy(&req).into_owned()
        });
        (port, handle)
    }

    fn check(kind: Server, path: &str, timeout_ms: u64, status: Option<u16>, error_contains: &str) {
        let (port, server) = serve(kind);
        let r = http_probe(port, path, Duration::from_millis(timeout_ms));
        assert_eq!(r.status, status, "{kind:?}: {r:?}");
        match status {
            Some(_) => assert_eq!(r.error, None),
            None => {
                let e = r.error.clone().unwrap();
                assert!(e.contains(error_contains), "{kind:?}: {e:?} lacks {error_contains:?}");
            }
        }
        assert!(r.latency_ms <= timeout_ms + 500, "{r:?}");
        let req = server.join().unwrap();
        if let Server::Reply(_) = kind {
            let want_path = if path.starts_with('/') {
                path.to_owned()
            } else {
                format!("/{path}")
            };
            assert!(req.starts_with(&format!("GET {want_path} HTTP/1.1\r\n")), "{req:?}");
            assert!(req.contains("\r\nConnection: close\r\n"), "{req:?}");
            assert!(req.contains(&format!("\r\nHost: 127.0.0.1:{port}\r\n")), "{req:?}");
        }
    }

    #[test]
    fn answers_and_garbage() {
        let ok: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        check(Server::Reply(ok), "/health", 2000, Some(200), "");
        check(
            Server::Reply(b"HTTP/1.1 500 Internal Server Error\r\n\r\n"),
            "/",
            2000,
            Some(500),
            "",
        );
        check(
            Server::Reply(b"HTTP/1.0 204 No Content\r\n\r\n"),
            "status",
            2000,
            Some(204),
            "",
        );
        check(Server::Reply(b"HTTP/1.1 302\r\n\r\n"), "/", 2000, Some(302), "");
        check(Server::Reply(b"HTTP/1.1 404 Not Found"), "/", 2000, Some(404), "");
        check(
            Server::Reply(b"SSH-2.0-OpenSSH_9.2\r\n"),
            "/",
            2000,
            None,
            "not an HTTP status line",
        );
        check(
            Server::Reply(b"HTTP/1.1 abc nope\r\n\r\n"),
            "/",
            2000,
            None,
            "not an HTTP status line",
        );
        check(
            Server::Reply(b"HTTP/1.1 20\r\n\r\n"),
            "/",
            2000,
            None,
            "not an HTTP status line",
        );
        check(
            Server::Reply(b"\xff\xfe\x00garbage\r\n"),
            "/",
            2000,
            None,
            "not an HTTP status line",
        );
        check(Server::Reply(&[b'x'; 9000]), "/", 2000, None, "without a status line");
        check(
            Server::Reply(b""),
            "/",
            2000,
            None,
            "closed the connection without answering",
        );
        check(Server::Close, "/", 2000, None, "");
    }

    #[test]
    fn hanging_server_times_out() {
        check(
            Server::Hang(Duration::from_millis(1500)),
            "/",
            200,
            None,
            "timed out after 200 ms",
        );
    }

    #[test]
    fn closed_port_is_refused() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let r = http_probe(port, "/", Duration::from_millis(500));
        assert_eq!(r.status, None);
        assert!(r.error.unwrap().contains("connection refused"));
    }

    #[test]
    fn bad_paths_are_refused_before_connecting() {
        for path in ["/a b", "/x\r\nHost: evil", "/\u{7f}"] {
            let r = http_probe(1, path, Duration::from_millis(100));
            assert_eq!(r.status, None);
            assert!(r.error.unwrap().contains("fix [health] path"), "{path:?}");
        }
    }
}
