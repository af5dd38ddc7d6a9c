//! Real peers on loopback for the probe tests: a small HTTP server with a
//! route per behaviour, a listener that accepts and never answers, a closed
//! port, a TLS server with certificates made here, and dnsmasq.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, date_time_ymd};
use rollway_model::{ManualClock, Timestamp};
use rollway_ops::{Prober, ProberOptions};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The size of the large body `/big` announces and tries to send.
pub const BIG: u64 = 20 * 1024 * 1024;

/// A prober on a manual clock at `at`, trusting `roots` besides the system's.
pub fn prober(at: Timestamp, roots: Vec<CertificateDer<'static>>) -> Prober {
    Prober::new(Arc::new(ManualClock::new(at)), ProberOptions { extra_roots: roots }).unwrap()
}

/// Whether a test that needs `what` runs: missing is a failure under
/// CI=true, a skip (with the reason on stderr) otherwise.
pub fn required(present: bool, what: &str) -> bool {
    if present {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what} is missing; scripts/test installs it (CI=true makes this a failure)"
    );
    eprintln!("skipped: {what} is missing (scripts/test installs it)");
    false
}

/// The HTTP server: `GET /ROUTE` answers as `route` says.
pub struct HttpServer {
    pub addr: SocketAddr,
    /// Bytes of `/big`'s body written before the client went away.
    pub big_sent: Arc<AtomicU64>,
}

impl HttpServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let big_sent = Arc::new(AtomicU64::new(0));
        let sent = big_sent.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, sent.clone()));
            }
        });
        Self { addr, big_sent }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

async fn serve(mut stream: TcpStream, big_sent: Arc<AtomicU64>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let answer = |status: &str, headers: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
            body.len()
        )
    };
    let text = match path.as_str() {
        "/ok" => answer("200 OK", "", "hello ok"),
        "/fail" => answer("500 Internal Server Error", "", "boom"),
        "/notfound" => answer("404 Not Found", "", "no"),
        "/json" => answer(
            "200 OK",
            "Content-Type: application/json\r\n",
            r#"{"status":"ok","n":3}"#,
        ),
        "/cf-hit" => answer("200 OK", "CF-Cache-Status: HIT\r\n", "x"),
        "/x-cache" => answer("200 OK", "X-Cache: MISS, MISS\r\n", "x"),
        "/age" => answer("200 OK", "Age: 30\r\n", "x"),
        "/redirect" => answer("302 Found", "Location: /ok\r\n", ""),
        "/loop" => answer("302 Found", "Location: /loop\r\n", ""),
        "/echo-ua" => {
            let ua = head
                .lines()
                .find_map(|l| l.strip_prefix("user-agent: "))
                .unwrap_or("")
                .to_owned();
            answer("200 OK", "", &ua)
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            answer("200 OK", "", "late")
        }
        "/garbage" => "SSH-2.0-not-http\r\n\r\n".to_owned(),
        "/reset" => {
            // Linger 0: closing sends RST instead of FIN.
            let _ = stream.set_zero_linger();
            return;
        }
        "/big" => {
            let header = format!("HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\n\r\n");
            if stream.write_all(header.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![b'a'; 64 * 1024];
            let mut sent = 0u64;
            while sent < BIG {
                match stream.write_all(&chunk).await {
                    Ok(()) => sent += chunk.len() as u64,
                    Err(_) => break,
                }
                big_sent.store(sent, Ordering::SeqCst);
            }
            return;
        }
        _ => answer("404 Not Found", "", ""),
    };
    let _ = stream.write_all(text.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A listener that accepts connections, holds them and never says a word.
pub async fn silent_listener() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

/// A port nothing listens on (bound, then let go).
pub async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// A CA and a `localhost` leaf it signed, valid from 2024-01-01 until `not_after`.
pub struct TestPki {
    pub ca: CertificateDer<'static>,
    pub leaf: CertificateDer<'static>,
    pub leaf_key: PrivateKeyDer<'static>,
}

pub fn pki(not_after: (i32, u8, u8)) -> TestPki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.not_before = date_time_ymd(2024, 1, 1);
    ca_params.not_after = date_time_ymd(2199, 1, 1);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    leaf_params.not_before = date_time_ymd(2024, 1, 1);
    leaf_params.not_after = date_time_ymd(not_after.0, not_after.1, not_after.2);
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    TestPki {
        ca: ca.der().clone(),
        leaf: leaf.der().clone(),
        leaf_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    }
}

/// A TLS server presenting `pki`'s leaf (and its CA) on loopback.
pub async fn tls_server(pki: &TestPki) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pki.leaf.clone(), pki.ca.clone()], pki.leaf_key.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    let mut buf = [0u8; 16];
                    let _ = tls.read(&mut buf).await;
                }
            });
        }
    });
    addr
}

/// dnsmasq in the foreground on a free port of 127.0.0.1 (TESTING-NOTES'
/// recipe), answering only the records it is given; ended on drop.
pub struct Dnsmasq {
    pub addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

pub const DNSMASQ: &str = "/usr/sbin/dnsmasq";

impl Dnsmasq {
    /// Starts dnsmasq; a port another process took between the pick and
    /// dnsmasq's bind (it exits 2, "address in use") is picked again.
    pub async fn start(records: &[&str]) -> Self {
        let mut last = String::new();
        for _ in 0..5 {
            match Self::try_start(records).await {
                Ok(dns) => return dns,
                Err(why) => last = why,
            }
        }
        panic!("dnsmasq did not start in 5 attempts; the last: {last}");
    }

    async fn try_start(records: &[&str]) -> Result<Self, String> {
        let dir = tempfile::tempdir().unwrap();
        // A port free for UDP now; dnsmasq also listens on TCP there.
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.path().join("dnsmasq.err");
        let mut cmd = Command::new(DNSMASQ);
        cmd.args([
            "--keep-in-foreground",
            &format!("--port={port}"),
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            &format!("--pid-file={}", dir.path().join("dns.pid").display()),
        ]);
        cmd.args(records);
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {DNSMASQ}: {e}"));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut dns = Self { addr, child, _dir: dir };
        for _ in 0..100 {
            if TcpStream::connect(addr).await.is_ok() {
                return Ok(dns);
            }
            if let Ok(Some(status)) = dns.child.try_wait() {
                let said = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!(
                    "dnsmasq exited with {status} before it listened on {addr}: {}",
                    said.trim()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("dnsmasq did not listen on {addr} within 5 s");
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PostgreSQL cluster of its own (initdb + pg_ctl from Debian's server
/// package) on a free port of 127.0.0.1 that asks for a password
/// (scram-sha-256) — the machine's server trusts every local connection, so
/// a wrong password can only be refused by one made here. With `tls` it
/// presents a self-signed certificate and refuses connections without TLS
/// (`hostnossl … reject`). Stopped on drop.
pub struct ScramPostgres {
    pub port: u16,
    pub user: &'static str,
    pub password: &'static str,
    bin: std::path::PathBuf,
    data: std::path::PathBuf,
    as_postgres: bool,
    _dir: tempfile::TempDir,
}

impl ScramPostgres {
    /// `None` when no PostgreSQL server binaries are installed.
    pub fn start(tls: bool) -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|b| b.join("initdb").exists())?;
        let dir = tempfile::tempdir().unwrap();
        // initdb refuses to run as root: the cluster then belongs to the
        // `postgres` user the Debian package made.
        let as_postgres = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        let (user, password) = ("rollway", "right-pw");
        std::fs::write(&pwfile, password).unwrap();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "cannot chown {} to postgres", dir.path().display());
        }
        let run = |program: &str, args: &[&str]| {
            let mut cmd = if as_postgres {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(bin.join(program));
                c
            } else {
                Command::new(bin.join(program))
            };
            let out = cmd
                .args(args)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
            assert!(
                out.status.success(),
                "{program} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let s = |p: &std::path::Path| p.to_str().unwrap().to_owned();
        run(
            "initdb",
            &[
                "-D",
                &s(&data),
                "-U",
                user,
                "--auth=scram-sha-256",
                &format!("--pwfile={}", s(&pwfile)),
                "--no-sync",
            ],
        );
        let mut settings = String::new();
        if tls {
            let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
            std::fs::write(data.join("server.crt"), made.cert.pem()).unwrap();
            std::fs::write(data.join("server.key"), made.signing_key.serialize_pem()).unwrap();
            std::fs::write(
                data.join("pg_hba.conf"),
                "hostnossl all all 127.0.0.1/32 reject\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
            )
            .unwrap();
            let files = [
                data.join("server.crt"),
                data.join("server.key"),
                data.join("pg_hba.conf"),
            ];
            for f in &files {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
                if as_postgres {
                    assert!(Command::new("chown").arg("postgres").arg(f).status().unwrap().success());
                }
            }
            settings = " -c ssl=on".to_owned();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off{settings}",
            s(dir.path())
        );
        let log = dir.path().join("postgres.log");
        run(
            "pg_ctl",
            &[
                "-D",
                &s(&data),
                "-o",
                &options,
                "-l",
                &s(&log),
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
        Some(Self {
            port,
            user,
            password,
            bin,
            data,
            as_postgres,
            _dir: dir,
        })
    }
}

impl Drop for ScramPostgres {
    fn drop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(pg_ctl);
            c
        } else {
            Command::new(pg_ctl)
        };
        let _ = cmd
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
