//! Deliveries to real receivers on loopback: an HTTP receiver started here
//! that records what it got and answers as the test scripts it (a status,
//! or silence), and Debian's aiosmtpd as the SMTP server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, VecDeque};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rollway_model::mask::Masker;
use rollway_model::time::Timestamp;
use rollway_notify::{
    Channel, Email, Failure, Format, Notification, NotifyEvent, Security, Sender, SmtpServer, Webhook,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const CANARY: &str = "canary-s3cret-value";

/// What the receiver does with the next request.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Status(u16),
    /// Reads the request and never answers.
    Silence,
}

#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: BTreeMap<String, String>,
    body: Value,
}

struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    /// Answers the requests in turn as `script` says, then 200.
    async fn start(script: &[Answer]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let record = got.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let record = record.clone();
                let script = script.clone();
                tokio::spawn(async move {
                    let mut reader = BufReader::new(stream);
                    let mut line = String::new();
                    reader.read_line(&mut line).await.unwrap();
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let mut headers = BTreeMap::new();
                    loop {
                        line.clear();
                        reader.read_line(&mut line).await.unwrap();
                        let l = line.trim_end();
                        if l.is_empty() {
                            break;
                        }
                        let (k, v) = l.split_once(':').unwrap();
                        headers.insert(k.to_ascii_lowercase(), v.trim().to_owned());
                    }
                    let len: usize = headers.get("content-length").map_or(0, |v| v.parse().unwrap());
                    let mut body = vec![0; len];
                    reader.read_exact(&mut body).await.unwrap();
                    record.lock().unwrap().push(Received {
                        path,
                        headers,
                        body: serde_json::from_slice(&body).unwrap(),
                    });
                    let answer = script.lock().unwrap().pop_front().unwrap_or(Answer::Status(200));
                    let mut stream = reader.into_inner();
                    match answer {
                        Answer::Status(code) => {
                            let text = format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                            let _ = stream.write_all(text.as_bytes()).await;
                        }
                        Answer::Silence => tokio::time::sleep(Duration::from_secs(60)).await,
                    }
                });
            }
        });
        Self { port, got }
    }

    fn webhook(&self, format: Format) -> Channel {
        Channel::Webhook(Webhook {
            url: format!("http://127.0.0.1:{}/hook/T0KEN", self.port).parse().unwrap(),
            format,
        })
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

fn notification(event: NotifyEvent) -> Notification {
    Notification {
        idempotency_key: "01JALERT-opened-webhook".into(),
        event,
        alert_id: "01JALERTID0000000000000000".into(),
        rule: "monitor-down".into(),
        subject: "web".into(),
        environment: "prod".into(),
        severity: "critical".into(),
        status: if event == NotifyEvent::Acknowledged {
            "ack"
        } else {
            "open"
        }
        .into(),
        metric: "availability".into(),
        value: Some(0.0),
        threshold: 1.0,
        summary: format!("monitor web down since 12:04 (db password {CANARY} rejected)"),
        operator: (event == NotifyEvent::Acknowledged).then(|| "ana".to_owned()),
        note: None,
        at: Timestamp::parse_rfc3339("2026-12-05T12:05:00Z").unwrap(),
    }
}

fn sender(timeout: Duration) -> Sender {
    Sender::new(Masker::new([CANARY]), timeout).unwrap()
}

const LINE: &str = "[prod] critical alert 01JALERT opened: monitor web down since 12:04 (db password **** rejected)";

#[tokio::test]
async fn each_webhook_format_gets_its_body_with_the_idempotency_key_and_no_secret() {
    let r = Receiver::start(&[]).await;
    let s = sender(Duration::from_secs(5));
    let n = notification(NotifyEvent::Opened);
    for format in [Format::Json, Format::Slack, Format::Discord] {
        let sent = s.send(&r.webhook(format), &n).await.unwrap();
        assert_eq!(sent.answer, "HTTP 200");
    }
    let got = r.received();
    let bodies: Vec<&Value> = got.iter().map(|g| &g.body).collect();
    assert_eq!(
        bodies,
        [
            &json!({
                "idempotency_key": "01JALERT-opened-webhook",
                "event": "opened",
                "text": LINE,
                "alert": {
                    "id": "01JALERTID0000000000000000", "rule": "monitor-down", "subject": "web",
                    "environment": "prod", "severity": "critical", "status": "open",
                    "metric": "availability", "value": 0.0, "threshold": 1.0,
                    "summary": "monitor web down since 12:04 (db password **** rejected)",
                },
                "operator": null,
                "note": null,
                "at": "2026-12-05T12:05:00.000Z",
            }),
            &json!({ "text": LINE }),
            &json!({ "content": LINE }),
        ]
    );
    for g in &got {
        assert_eq!(g.path, "/hook/T0KEN");
        assert_eq!(g.headers["idempotency-key"], "01JALERT-opened-webhook");
        assert_eq!(g.headers["content-type"], "application/json");
    }
    // The acknowledgement names the operator.
    s.send(&r.webhook(Format::Slack), &notification(NotifyEvent::Acknowledged))
        .await
        .unwrap();
    assert_eq!(
        r.received().last().unwrap().body["text"],
        "[prod] critical alert 01JALERT acknowledged by ana: monitor web down since 12:04 (db password **** rejected)"
    );
}

#[tokio::test]
async fn failures_say_whether_another_attempt_may_succeed() {
    let s = sender(Duration::from_millis(800));
    let n = notification(NotifyEvent::Opened);
    let check = |got: Result<rollway_notify::Sent, Failure>, retryable: bool, message: &str| {
        let f = got.unwrap_err();
        assert_eq!((f.retryable, f.message.as_str()), (retryable, message));
    };
    let r = Receiver::start(&[
        Answer::Status(500),
        Answer::Status(429),
        Answer::Status(404),
        Answer::Silence,
    ])
    .await;
    let origin = format!("http://127.0.0.1:{}", r.port);
    let hook = r.webhook(Format::Json);
    check(
        s.send(&hook, &n).await,
        true,
        &format!("webhook {origin} answered HTTP 500"),
    );
    check(
        s.send(&hook, &n).await,
        true,
        &format!("webhook {origin} answered HTTP 429"),
    );
    check(
        s.send(&hook, &n).await,
        false,
        &format!(
            "webhook {origin} answered HTTP 404: it refuses the notification; check the URL and the receiver's settings"
        ),
    );
    let started = std::time::Instant::now();
    check(
        s.send(&hook, &n).await,
        true,
        &format!("webhook {origin} did not answer in time"),
    );
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    // Nothing listens: no answer, worth another attempt; the path (a chat
    // webhook's token) is never named.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gone = Channel::Webhook(Webhook {
        url: format!("http://127.0.0.1:{closed}/hook/T0KEN").parse().unwrap(),
        format: Format::Json,
    });
    let f = s.send(&gone, &n).await.unwrap_err();
    assert!(f.retryable, "{f:?}");
    assert!(
        f.message
            .starts_with(&format!("cannot connect to webhook http://127.0.0.1:{closed}: ")),
        "{f:?}"
    );
    assert!(
        !f.message.contains("T0KEN") && !format!("{gone:?}").contains("T0KEN"),
        "{f:?}"
    );
}

/// Debian's aiosmtpd in the foreground, printing each message it gets.
struct Smtpd {
    port: u16,
    child: Child,
    out: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Smtpd {
    async fn start() -> Option<Self> {
        let probe = Command::new("/usr/bin/python3")
            .args(["-c", "import aiosmtpd"])
            .status();
        if !probe.is_ok_and(|s| s.success()) {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "python3-aiosmtpd is missing; scripts/test installs it"
            );
            eprintln!("skipped: python3-aiosmtpd is missing (scripts/test installs it)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = dir.path().join("smtpd.out");
        let child = Command::new("/usr/bin/python3")
            .args(["-u", "-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Debugging"])
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Owned at once, so its drop stops the server on every path.
        let smtpd = Self {
            port,
            child,
            out,
            _dir: dir,
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Some(smtpd);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("aiosmtpd did not listen on 127.0.0.1:{port} within 5 s");
    }

    fn printed(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap()
    }
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn e_mail_reaches_a_real_smtp_server_with_the_line_as_subject() {
    let Some(smtpd) = Smtpd::start().await else {
        return;
    };
    let email = |to: Vec<&str>| {
        Channel::Email(Email {
            server: SmtpServer {
                host: "127.0.0.1".into(),
                port: smtpd.port,
                security: Security::Plain,
                username: None,
                password: None,
                ca_pem: None,
            },
            from: "Rollway <rollway@example.test>".into(),
            to: to.into_iter().map(str::to_owned).collect(),
        })
    };
    let s = sender(Duration::from_secs(5));
    let sent = s
        .send(
            &email(vec!["ops@example.test", "ana@example.test"]),
            &notification(NotifyEvent::Opened),
        )
        .await
        .unwrap();
    assert!(sent.answer.starts_with("250"), "{sent:?}");
    // Debugging prints the message between these lines once it is taken.
    let mut printed = String::new();
    for _ in 0..100 {
        printed = smtpd.printed();
        if printed.contains("------------ END MESSAGE ------------") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Headers unfolded (a long Subject continues on indented lines).
    let head = printed
        .split("\n\n")
        .next()
        .unwrap()
        .replace("\n ", " ")
        .replace("\n\t", " ");
    let headers = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} header in {printed}"))
            .to_owned()
    };
    assert_eq!(headers("Subject"), LINE);
    assert_eq!(headers("Message-ID"), "<01JALERT-opened-webhook@rollway>");
    assert_eq!(headers("From"), "Rollway <rollway@example.test>");
    assert_eq!(headers("To"), "ops@example.test, ana@example.test");
    // The body as a mail client shows it: quoted-printable decoded.
    let raw: String = printed
        .lines()
        .skip_while(|l| !l.is_empty())
        .skip(1)
        .take_while(|l| !l.starts_with("------------ END MESSAGE"))
        .map(|l| format!("{l}\n"))
        .collect();
    let decoded = quoted_printable::decode(raw.as_bytes(), quoted_printable::ParseMode::Robust).unwrap();
    let decoded = String::from_utf8(decoded).unwrap();
    let body: Vec<&str> = decoded.trim_end().lines().collect();
    assert_eq!(
        body,
        [
            LINE,
            "",
            "alert       01JALERTID0000000000000000",
            "status      open",
            "environment prod",
            "rule        monitor-down",
            "subject     web",
            "metric      availability = 0 (threshold 1)",
            "at          2026-12-05T12:05:00.000Z",
        ]
    );
    assert!(!printed.contains(CANARY));
    // A bad address is refused before anything is sent, for good.
    let f = s
        .send(&email(vec!["not an address"]), &notification(NotifyEvent::Opened))
        .await
        .unwrap_err();
    assert!(!f.retryable, "{f:?}");
    assert!(
        f.message
            .starts_with("e-mail to address 'not an address' is not an address"),
        "{f:?}"
    );
}

#[tokio::test]
async fn a_ca_file_without_a_certificate_is_refused_before_connecting() {
    let email = |pem: &[u8]| {
        Channel::Email(Email {
            server: SmtpServer {
                host: "127.0.0.1".into(),
                // Nothing listens here: a refusal must come before any connection.
                port: 9,
                security: Security::StartTls,
                username: None,
                password: None,
                ca_pem: Some(pem.to_vec()),
            },
            from: "Rollway <rollway@example.test>".into(),
            to: vec!["ops@example.test".into()],
        })
    };
    let s = sender(Duration::from_secs(5));
    for pem in [
        &b"not a certificate"[..],
        b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
    ] {
        let f = s
            .send(&email(pem), &notification(NotifyEvent::Opened))
            .await
            .unwrap_err();
        assert!(!f.retryable, "{f:?}");
        assert!(
            f.message
                .starts_with("the ca_file of smtp server 127.0.0.1:9 holds no PEM certificate"),
            "{f:?}"
        );
    }
}
