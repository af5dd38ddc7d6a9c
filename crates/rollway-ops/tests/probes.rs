//! Every probe kind against a real peer on loopback started here: what
//! each answer becomes (`ok | error | unavailable`), and that every probe
//! ends within its timeout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use rollway_model::Timestamp;
use rollway_model::status::CacheStatus;
use rollway_model::uptime::Outcome;
use rollway_ops::{
    BODY_KEEP, Detail, DnsProbe, DnsRecord, HttpProbe, Method, PostgresProbe, ProbeResult, ProbeSpec, Prober, TlsProbe,
};
use support::*;

const T: Duration = Duration::from_secs(3);
/// 2030-01-01T00:00:00Z.
const Y2030: Timestamp = Timestamp::from_millis(1_893_456_000_000);
const DAY_MS: i64 = 86_400_000;

/// What a result must show: outcome, HTTP status, cache status and a part
/// of its error text ("" when there must be none).
fn check(r: &ProbeResult, outcome: Outcome, status: Option<u16>, cache: Option<CacheStatus>, error: &str) {
    assert_eq!(
        (r.outcome, r.http_status, r.cache_status),
        (outcome, status, cache),
        "{r:#?}"
    );
    match &r.error {
        None => assert_eq!(error, "", "{r:#?}"),
        Some(e) => assert!(!error.is_empty() && e.contains(error), "error {e:?} lacks {error:?}"),
    }
    assert_eq!(r.at, Y2030, "the time is the clock's");
}

#[tokio::test]
async fn http_answers_become_samples() {
    let server = HttpServer::start().await;
    let prober = prober(Y2030, Vec::new());
    let get = |path: &str| HttpProbe::get(server.url(path));
    let run = |p: HttpProbe| {
        let prober = prober.clone();
        async move { prober.probe(&ProbeSpec::Http(p), T).await }
    };
    let json = |pointer: &str, equals: serde_json::Value| HttpProbe {
        json_pointer: Some(pointer.into()),
        equals: Some(equals),
        ..get("/json")
    };

    let ok = run(get("/ok")).await;
    check(&ok, Outcome::Ok, Some(200), None, "");
    assert!(ok.latency_ms < 2_000, "{ok:?}");
    check(&run(get("/fail")).await, Outcome::Error, Some(500), None, "status 500");
    // Without expectations a 404 is a response that is not 5xx: ok.
    check(&run(get("/notfound")).await, Outcome::Ok, Some(404), None, "");
    let expect_200 = HttpProbe {
        expect_status: vec![200],
        ..get("/notfound")
    };
    check(
        &run(expect_200).await,
        Outcome::Error,
        Some(404),
        None,
        "status 404, expected 200",
    );
    let contains = HttpProbe {
        body_contains: Some("hello".into()),
        ..get("/ok")
    };
    check(&run(contains).await, Outcome::Ok, Some(200), None, "");
    let lacks = HttpProbe {
        body_contains: Some("goodbye".into()),
        ..get("/ok")
    };
    check(
        &run(lacks).await,
        Outcome::Error,
        Some(200),
        None,
        "does not contain 'goodbye'",
    );
    check(
        &run(json("/status", "ok".into())).await,
        Outcome::Ok,
        Some(200),
        None,
        "",
    );
    check(
        &run(json("/n", 4.into())).await,
        Outcome::Error,
        Some(200),
        None,
        "/n is 3, expected 4",
    );
    let ua = run(HttpProbe {
        body_contains: Some("rollway/".into()),
        method: Method::GET,
        ..get("/echo-ua")
    })
    .await;
    check(&ua, Outcome::Ok, Some(200), None, "");

    // Cache status from the headers.
    check(
        &run(get("/cf-hit")).await,
        Outcome::Ok,
        Some(200),
        Some(CacheStatus::Hit),
        "",
    );
    check(
        &run(get("/x-cache")).await,
        Outcome::Ok,
        Some(200),
        Some(CacheStatus::Miss),
        "",
    );
    check(
        &run(get("/age")).await,
        Outcome::Ok,
        Some(200),
        Some(CacheStatus::Hit),
        "",
    );

    // Redirects: followed within the limit; once it runs out the redirect
    // is the answer.
    let followed = run(get("/redirect")).await;
    check(&followed, Outcome::Ok, Some(200), None, "");
    assert!(
        matches!(&followed.detail, Detail::Http { final_url, .. } if final_url.ends_with("/ok")),
        "{followed:?}"
    );
    let not_followed = HttpProbe {
        max_redirects: 0,
        expect_status: vec![200],
        ..get("/redirect")
    };
    check(
        &run(not_followed).await,
        Outcome::Error,
        Some(302),
        None,
        "status 302, expected 200",
    );
    let looping = HttpProbe {
        expect_status: vec![200],
        ..get("/loop")
    };
    check(&run(looping).await, Outcome::Error, Some(302), None, "status 302");

    // Bytes that are not HTTP are no response at all.
    check(
        &run(get("/garbage")).await,
        Outcome::Unavailable,
        None,
        None,
        "invalid HTTP version",
    );
    // A connection reset before any answer: no response either.
    check(
        &run(get("/reset")).await,
        Outcome::Unavailable,
        None,
        None,
        "Connection reset by peer",
    );
}

#[tokio::test]
async fn a_large_body_is_cut_at_the_cap_and_never_buffered() {
    let server = HttpServer::start().await;
    let prober = prober(Y2030, Vec::new());
    let started = std::time::Instant::now();
    let r = prober
        .probe(&ProbeSpec::Http(HttpProbe::get(server.url("/big"))), T)
        .await;
    check(&r, Outcome::Ok, Some(200), None, "");
    assert!(started.elapsed() < T, "took {:?}", started.elapsed());
    let Detail::Http {
        body_kept,
        body_truncated,
        ..
    } = r.detail
    else {
        panic!("{r:?}")
    };
    assert_eq!((body_kept, body_truncated), (BODY_KEEP, true));
    // The server could not send the whole body: the probe hung up on it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = server.big_sent.load(Ordering::SeqCst);
    assert!(sent < BIG, "the server sent all {sent} bytes");
    // A JSON check on a body past the cap says so rather than guessing.
    let json = HttpProbe {
        json_pointer: Some("/x".into()),
        ..HttpProbe::get(server.url("/big"))
    };
    let r = prober.probe(&ProbeSpec::Http(json), T).await;
    check(&r, Outcome::Error, Some(200), None, "larger than 64 KiB");
}

#[tokio::test]
async fn no_answer_is_unavailable_and_ends_at_the_timeout() {
    let server = HttpServer::start().await;
    let silent = silent_listener().await;
    let closed = closed_port().await;
    let prober = prober(Y2030, Vec::new());
    let timeout = Duration::from_millis(600);
    let bounded = |r: &ProbeResult| {
        assert!(
            (550..2_000).contains(&r.latency_ms),
            "latency {} ms, timeout 600 ms",
            r.latency_ms
        );
    };

    let slow = prober
        .probe(&ProbeSpec::Http(HttpProbe::get(server.url("/slow"))), timeout)
        .await;
    check(&slow, Outcome::Unavailable, None, None, "timed out after 600ms");
    bounded(&slow);
    let silent_http = prober
        .probe(&ProbeSpec::Http(HttpProbe::get(format!("http://{silent}/"))), timeout)
        .await;
    check(&silent_http, Outcome::Unavailable, None, None, "timed out");
    bounded(&silent_http);
    let silent_tls = prober
        .probe(
            &ProbeSpec::Tls(TlsProbe {
                host: "127.0.0.1".into(),
                port: silent.port(),
                server_name: "localhost".into(),
                warn_days: 14,
            }),
            timeout,
        )
        .await;
    check(&silent_tls, Outcome::Unavailable, None, None, "timed out");
    bounded(&silent_tls);
    let silent_pg = prober
        .probe(
            &ProbeSpec::Postgres(PostgresProbe {
                url: format!("postgres://postgres:secret@127.0.0.1:{}/postgres", silent.port()),
            }),
            timeout,
        )
        .await;
    check(&silent_pg, Outcome::Unavailable, None, None, "timed out");
    bounded(&silent_pg);

    // A TCP probe only connects: the silent listener accepts, so it is up.
    let tcp = |port| ProbeSpec::Tcp {
        host: "127.0.0.1".into(),
        port,
    };
    check(
        &prober.probe(&tcp(silent.port()), timeout).await,
        Outcome::Ok,
        None,
        None,
        "",
    );
    check(
        &prober.probe(&tcp(closed), timeout).await,
        Outcome::Unavailable,
        None,
        None,
        &format!("cannot connect to 127.0.0.1:{closed}"),
    );
    check(
        &prober
            .probe(
                &ProbeSpec::Http(HttpProbe::get(format!("http://127.0.0.1:{closed}/"))),
                timeout,
            )
            .await,
        Outcome::Unavailable,
        None,
        None,
        "onnection refused",
    );
}

#[tokio::test]
async fn tls_reads_the_certificate_and_its_days_left() {
    let valid = pki((2099, 1, 1));
    let expired = pki((2025, 1, 1));
    let valid_addr = tls_server(&valid).await;
    let expired_addr = tls_server(&expired).await;
    // 2099-01-01 at midnight, as milliseconds since the epoch.
    let end_2098 = Timestamp::from_millis(4_070_908_800_000);
    let tls = |addr: std::net::SocketAddr, warn_days: u32| {
        ProbeSpec::Tls(TlsProbe {
            host: "127.0.0.1".into(),
            port: addr.port(),
            server_name: "localhost".into(),
            warn_days,
        })
    };

    // Trusted (the test's CA), 30 days before notAfter on the clock.
    let at = Timestamp::from_millis(end_2098.as_millis() - 30 * DAY_MS);
    let trusting = prober(at, vec![valid.ca.clone(), expired.ca.clone()]);
    let r = trusting.probe(&tls(valid_addr, 14), T).await;
    assert_eq!((r.outcome, r.error.as_deref()), (Outcome::Ok, None), "{r:#?}");
    assert_eq!(
        r.detail,
        Detail::Tls {
            not_after: end_2098,
            days_left: 30,
            verified: true
        }
    );
    // Fewer days left than warned at: an error, with the days.
    let r = trusting.probe(&tls(valid_addr, 45), T).await;
    assert_eq!(r.outcome, Outcome::Error, "{r:#?}");
    assert!(
        r.error
            .unwrap()
            .contains("expires in 30 days, fewer than the 45 days warned at")
    );

    // Not trusted: the handshake completes, the certificate is read, and
    // the sample is an error naming why.
    let r = prober(at, Vec::new()).probe(&tls(valid_addr, 14), T).await;
    assert_eq!(r.outcome, Outcome::Error, "{r:#?}");
    assert!(
        r.error.as_deref().unwrap().contains("is not valid for localhost"),
        "{r:?}"
    );
    assert!(
        matches!(
            r.detail,
            Detail::Tls {
                days_left: 30,
                verified: false,
                ..
            }
        ),
        "{r:?}"
    );

    // Expired (on the clock: 2030 is after its notAfter of 2025-01-01).
    let r = prober(Y2030, vec![expired.ca.clone()])
        .probe(&tls(expired_addr, 14), T)
        .await;
    assert_eq!(r.outcome, Outcome::Error, "{r:#?}");
    assert!(r.error.as_deref().unwrap().to_lowercase().contains("expired"), "{r:?}");
    let Detail::Tls {
        not_after,
        days_left,
        verified,
    } = r.detail
    else {
        panic!()
    };
    // 2025-01-01 → 2030-01-01 is 1826 days (2028 is a leap year).
    assert_eq!(
        (not_after.as_millis(), days_left, verified),
        (1_735_689_600_000, -1826, false)
    );

    // A wrong server name is not valid either.
    let r = trusting
        .probe(
            &ProbeSpec::Tls(TlsProbe {
                server_name: "other.example.test".into(),
                ..match tls(valid_addr, 14) {
                    ProbeSpec::Tls(t) => t,
                    _ => unreachable!(),
                }
            }),
            T,
        )
        .await;
    assert_eq!(r.outcome, Outcome::Error, "{r:#?}");
    assert!(r.error.unwrap().contains("is not valid for other.example.test"));
}

#[tokio::test]
async fn dns_answers_from_dnsmasq() {
    if !required(
        std::path::Path::new(DNSMASQ).exists(),
        "dnsmasq (Debian package dnsmasq-base)",
    ) {
        return;
    }
    let dns = Dnsmasq::start(&[
        "--host-record=app.example.test,127.0.0.9",
        "--cname=www.example.test,app.example.test",
    ])
    .await;
    let prober = prober(Y2030, Vec::new());
    let ask = |name: &str, record: DnsRecord, expect: &[&str]| {
        ProbeSpec::Dns(DnsProbe {
            name: name.into(),
            record,
            expect: expect.iter().map(|s| s.to_string()).collect(),
            resolver: Some(dns.addr),
        })
    };
    let answers = |r: &ProbeResult| match &r.detail {
        Detail::Dns { answers } => answers.clone(),
        other => panic!("{other:?}"),
    };

    let r = prober
        .probe(&ask("app.example.test", DnsRecord::A, &["127.0.0.9"]), T)
        .await;
    check(&r, Outcome::Ok, None, None, "");
    assert_eq!(answers(&r), ["127.0.0.9"]);
    let r = prober
        .probe(&ask("www.example.test", DnsRecord::Cname, &["App.Example.Test."]), T)
        .await;
    check(&r, Outcome::Ok, None, None, "");
    assert_eq!(answers(&r), ["app.example.test"]);
    // No expectation: any answer of the type will do.
    check(
        &prober.probe(&ask("app.example.test", DnsRecord::A, &[]), T).await,
        Outcome::Ok,
        None,
        None,
        "",
    );
    // A mismatch is an answer that fails its expectation: error.
    check(
        &prober
            .probe(&ask("app.example.test", DnsRecord::A, &["127.0.0.1"]), T)
            .await,
        Outcome::Error,
        None,
        None,
        "app.example.test A is 127.0.0.9, without 127.0.0.1",
    );
    // A name dnsmasq does not know: it answers, without the record.
    let r = prober.probe(&ask("nothere.example.test", DnsRecord::A, &[]), T).await;
    check(&r, Outcome::Error, None, None, &dns.addr.to_string());

    // A resolver that is not there gives no answer at all (UDP: the
    // question goes unanswered until the timeout).
    let gone = closed_port().await;
    let r = prober
        .probe(
            &ProbeSpec::Dns(DnsProbe {
                name: "app.example.test".into(),
                record: DnsRecord::A,
                expect: Vec::new(),
                resolver: Some(format!("127.0.0.1:{gone}").parse().unwrap()),
            }),
            Duration::from_millis(800),
        )
        .await;
    check(
        &r,
        Outcome::Unavailable,
        None,
        None,
        "app.example.test A lookup timed out after 800ms",
    );
    assert!(r.latency_ms < 2_000, "{r:?}");
}

#[tokio::test]
async fn postgres_select_1() {
    let prober = prober(Y2030, Vec::new());
    let pg = |port: u16, db: &str| {
        ProbeSpec::Postgres(PostgresProbe {
            url: format!("postgres://postgres:s3cret-pw@127.0.0.1:{port}/{db}?connect_timeout=5"),
        })
    };
    let r = prober.probe(&pg(5432, "postgres"), T).await;
    if !required(r.outcome != Outcome::Unavailable, "PostgreSQL on 127.0.0.1:5432") {
        return;
    }
    check(&r, Outcome::Ok, None, None, "");
    // The server answers, refusing: an error, with its code; never the URL.
    let r = prober.probe(&pg(5432, "no_such_database_rollway"), T).await;
    check(&r, Outcome::Error, None, None, "3D000");
    assert!(!r.error.as_deref().unwrap().contains("s3cret-pw"), "{r:?}");
    assert!(
        !format!("{:?}", pg(5432, "x")).contains("s3cret-pw"),
        "Debug hides the URL"
    );
    // Nothing listens: unavailable.
    let closed = closed_port().await;
    let r = prober.probe(&pg(closed, "postgres"), T).await;
    check(&r, Outcome::Unavailable, None, None, "no answer");
    assert!(!r.error.as_deref().unwrap().contains("s3cret-pw"), "{r:?}");
}

/// A server that asks for a password: the right one is `ok`, a wrong one
/// an `error` sample (the server answered, refusing: SQLSTATE 28P01) whose
/// text never holds either password.
#[tokio::test]
async fn postgres_with_a_wrong_password_is_an_error_that_names_no_password() {
    let Some(pg) = ScramPostgres::start(false) else {
        required(false, "PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb)");
        return;
    };
    let prober = prober(Y2030, Vec::new());
    let probe = |password: &str| {
        ProbeSpec::Postgres(PostgresProbe {
            url: format!(
                "postgres://{}:{password}@127.0.0.1:{}/postgres?connect_timeout=5",
                pg.user, pg.port
            ),
        })
    };
    let r = prober.probe(&probe(pg.password), T).await;
    check(&r, Outcome::Ok, None, None, "");
    let r = prober.probe(&probe("wr0ng-pw"), T).await;
    check(&r, Outcome::Error, None, None, "28P01");
    let said = r.error.as_deref().unwrap();
    assert!(!said.contains("wr0ng-pw") && !said.contains(pg.password), "{r:?}");
}

/// A server that accepts only TLS, with a self-signed certificate:
/// `sslmode=require` is `ok` (encrypted, the certificate not judged, as
/// libpq does), `sslmode=disable` is refused by the server (an `error`).
#[tokio::test]
async fn postgres_over_tls_when_the_url_requires_it() {
    let Some(pg) = ScramPostgres::start(true) else {
        required(false, "PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb)");
        return;
    };
    let prober = prober(Y2030, Vec::new());
    let probe = |mode: &str| {
        ProbeSpec::Postgres(PostgresProbe {
            url: format!(
                "postgres://{}:{}@localhost:{}/postgres?connect_timeout=5&sslmode={mode}",
                pg.user, pg.password, pg.port
            ),
        })
    };
    let r = prober.probe(&probe("require"), T).await;
    check(&r, Outcome::Ok, None, None, "");
    let r = prober.probe(&probe("prefer"), T).await;
    check(&r, Outcome::Ok, None, None, "");
    let r = prober.probe(&probe("disable"), T).await;
    check(&r, Outcome::Error, None, None, "no encryption (28000)");
    assert!(!r.error.as_deref().unwrap().contains(pg.password), "{r:?}");
}

/// One prober serves many probes at once; none waits for a slow one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_probe_does_not_delay_the_others() {
    let server = HttpServer::start().await;
    let prober: Prober = prober(Y2030, Vec::new());
    let slow = {
        let prober = prober.clone();
        let spec = ProbeSpec::Http(HttpProbe::get(server.url("/slow")));
        tokio::spawn(async move { prober.probe(&spec, Duration::from_secs(2)).await })
    };
    let started = std::time::Instant::now();
    for _ in 0..20 {
        let r = prober
            .probe(&ProbeSpec::Http(HttpProbe::get(server.url("/ok"))), T)
            .await;
        assert_eq!(r.outcome, Outcome::Ok);
    }
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(slow.await.unwrap().outcome, Outcome::Unavailable);
}
