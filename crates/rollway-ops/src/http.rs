//! HTTP(S) probes over reqwest with rustls: redirects followed by hand (so
//! each monitor has its own limit on one shared client), the body read to
//! at most [`BODY_KEEP`] bytes, and the cache status read from the headers.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode};
use rollway_model::status::CacheStatus;
use rollway_model::uptime::Outcome;
use rustls::pki_types::CertificateDer;

use crate::result::{Detail, Seen};
use crate::{HttpProbe, OpsError, chain};

/// Body bytes kept for `body_contains` and `json_pointer`. Reading stops
/// there and the connection is dropped (nothing is pooled), so a 20 MB body
/// costs 64 KiB, not 20 MB.
pub const BODY_KEEP: usize = 64 * 1024;

pub(crate) fn client(extra_roots: &[CertificateDer<'static>]) -> Result<reqwest::Client, OpsError> {
    let mut builder = reqwest::Client::builder()
        // Redirects are followed in `probe`, with the monitor's own limit.
        .redirect(reqwest::redirect::Policy::none())
        // Every probe measures a fresh connection: a pooled one would hide
        // a server that stopped accepting.
        .pool_max_idle_per_host(0)
        // A probe measures the target as the server sees it, not through
        // whatever proxy the environment of `rollway serve` names.
        .no_proxy()
        .user_agent(concat!("rollway/", env!("CARGO_PKG_VERSION")));
    for root in extra_roots {
        let cert = reqwest::Certificate::from_der(root).map_err(OpsError::HttpClient)?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build().map_err(OpsError::HttpClient)
}

pub(crate) async fn probe(client: &reqwest::Client, p: &HttpProbe) -> Seen {
    let mut url = match url::Url::parse(&p.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        Ok(_) => return Seen::error(format!("{} is not an http or https url", p.url)),
        Err(e) => return Seen::error(format!("{} is not a url: {e}", p.url)),
    };
    let mut headers = HeaderMap::new();
    for (k, v) in &p.headers {
        match (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => return Seen::error(format!("header '{k}' is not a valid http header")),
        }
    }
    let mut method = p.method.clone();
    let mut redirects_left = p.max_redirects;
    let mut response = loop {
        let sent = client
            .request(method.clone(), url.clone())
            .headers(headers.clone())
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            // No answer: refused, reset, timeout, TLS failure, DNS failure
            // or bytes that are not HTTP.
            Err(e) => return Seen::unavailable(chain(&e)),
        };
        let status = response.status();
        let next = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(|l| url.join(l));
        match next {
            Some(Ok(next)) if status.is_redirection() && redirects_left > 0 => {
                if !matches!(next.scheme(), "http" | "https") {
                    return Seen::error(format!("{url} redirects to {next}, which is not an http or https url"));
                }
                // 303 (and 301/302 after anything but GET/HEAD, as browsers
                // do) turn into a GET; 307 and 308 keep the method.
                if status == StatusCode::SEE_OTHER
                    || (matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND)
                        && method != Method::GET
                        && method != Method::HEAD)
                {
                    method = Method::GET;
                }
                redirects_left -= 1;
                url = next;
            }
            _ => break response,
        }
    };
    let status = response.status().as_u16();
    let cache = cache_status(response.headers());
    let mut kept: Vec<u8> = Vec::new();
    let mut truncated = false;
    let mut body_error = None;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = BODY_KEEP - kept.len();
                if chunk.len() > room {
                    kept.extend_from_slice(&chunk[..room]);
                    truncated = true;
                    break;
                }
                kept.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                body_error = Some(chain(&e));
                break;
            }
        }
    }
    // Dropping the response here closes the connection: the rest of a large
    // body is never read.
    drop(response);
    let failed = judge(p, status, &kept, truncated, body_error);
    Seen {
        outcome: if failed.is_some() { Outcome::Error } else { Outcome::Ok },
        http_status: Some(status),
        cache_status: cache,
        error: failed,
        detail: Detail::Http {
            body_kept: kept.len(),
            body_truncated: truncated,
            final_url: url.to_string(),
        },
    }
}

/// Why an answer is an `error`, or `None` when it is `ok`.
fn judge(p: &HttpProbe, status: u16, body: &[u8], truncated: bool, body_error: Option<String>) -> Option<String> {
    if (500..600).contains(&status) {
        return Some(format!("status {status}"));
    }
    if !p.expect_status.is_empty() && !p.expect_status.contains(&status) {
        let wanted: Vec<String> = p.expect_status.iter().map(u16::to_string).collect();
        return Some(format!("status {status}, expected {}", wanted.join(" or ")));
    }
    if let Some(e) = body_error {
        return Some(format!("reading the body failed: {e}"));
    }
    let within = if truncated { " in its first 64 KiB" } else { "" };
    if let Some(needle) = &p.body_contains
        && !String::from_utf8_lossy(body).contains(needle.as_str())
    {
        return Some(format!("the body does not contain '{needle}'{within}"));
    }
    if let Some(pointer) = &p.json_pointer {
        if truncated {
            return Some(format!(
                "the body is larger than 64 KiB, the most {pointer} is looked up in"
            ));
        }
        let json: serde_json::Value = match serde_json::from_slice(body) {
            Ok(j) => j,
            Err(e) => return Some(format!("the body is not json: {e}")),
        };
        let Some(found) = json.pointer(pointer) else {
            return Some(format!("the json body has nothing at {pointer}"));
        };
        if let Some(wanted) = &p.equals
            && found != wanted
        {
            return Some(format!("{pointer} is {found}, expected {wanted}"));
        }
    }
    None
}

/// Seed 003's cache status from an answer's headers, the first that speaks:
/// `CF-Cache-Status` (HIT/STALE/UPDATING/REVALIDATED → hit, MISS/EXPIRED →
/// miss, BYPASS/DYNAMIC → bypass), then `X-Cache` (its last entry: the cache
/// nearest the client, e.g. "MISS, HIT" is a hit at the edge; hit / miss /
/// pass or bypass anywhere in it, as in "TCP_HIT" or "Hit from cloudfront"),
/// then `Age` (above 0: served from a cache; 0: just fetched). `None` when
/// none says anything.
pub fn cache_status(headers: &HeaderMap) -> Option<CacheStatus> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_ascii_lowercase())
    };
    let cf = text("cf-cache-status").and_then(|v| match v.as_str() {
        "hit" | "stale" | "updating" | "revalidated" => Some(CacheStatus::Hit),
        "miss" | "expired" => Some(CacheStatus::Miss),
        "bypass" | "dynamic" => Some(CacheStatus::Bypass),
        _ => None,
    });
    let x_cache = || {
        text("x-cache").and_then(|v| {
            let last = v.rsplit(',').next().unwrap_or("").trim().to_owned();
            if last.contains("hit") {
                Some(CacheStatus::Hit)
            } else if last.contains("miss") {
                Some(CacheStatus::Miss)
            } else if last.contains("pass") {
                Some(CacheStatus::Bypass)
            } else {
                None
            }
        })
    };
    let age = || {
        text("age")
            .and_then(|v| v.parse::<u64>().ok())
            .map(|age| if age > 0 { CacheStatus::Hit } else { CacheStatus::Miss })
    };
    cf.or_else(x_cache).or_else(age)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_status_from_headers() {
        let check = |pairs: &[(&str, &str)], expected: Option<CacheStatus>| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            assert_eq!(cache_status(&h), expected, "{pairs:?}");
        };
        check(&[], None);
        check(&[("CF-Cache-Status", "HIT")], Some(CacheStatus::Hit));
        check(&[("cf-cache-status", "EXPIRED")], Some(CacheStatus::Miss));
        check(&[("CF-Cache-Status", "DYNAMIC")], Some(CacheStatus::Bypass));
        check(&[("CF-Cache-Status", "NONE"), ("Age", "0")], Some(CacheStatus::Miss));
        check(&[("X-Cache", "Hit from cloudfront")], Some(CacheStatus::Hit));
        check(&[("X-Cache", "MISS, HIT")], Some(CacheStatus::Hit));
        check(&[("X-Cache", "HIT, MISS")], Some(CacheStatus::Miss));
        check(&[("X-Cache", "TCP_MISS")], Some(CacheStatus::Miss));
        check(&[("X-Cache", "PASS")], Some(CacheStatus::Bypass));
        check(&[("X-Cache", "something")], None);
        check(&[("Age", "120")], Some(CacheStatus::Hit));
        check(&[("Age", "soon")], None);
        check(&[("CF-Cache-Status", "MISS"), ("Age", "50")], Some(CacheStatus::Miss));
    }

    #[test]
    fn answers_are_judged() {
        let mut p = HttpProbe::get("http://x/");
        let check = |p: &HttpProbe, status: u16, body: &str, truncated: bool, expected: Option<&str>| {
            assert_eq!(
                judge(p, status, body.as_bytes(), truncated, None).as_deref(),
                expected,
                "{status} {body}"
            );
        };
        check(&p, 200, "", false, None);
        check(&p, 404, "", false, None);
        check(&p, 503, "", false, Some("status 503"));
        p.expect_status = vec![200, 204];
        check(&p, 404, "", false, Some("status 404, expected 200 or 204"));
        p.body_contains = Some("ok".into());
        check(&p, 200, "all ok", false, None);
        check(
            &p,
            200,
            "down",
            true,
            Some("the body does not contain 'ok' in its first 64 KiB"),
        );
        p.body_contains = None;
        p.json_pointer = Some("/checks/0/ok".into());
        check(&p, 200, r#"{"checks":[{"ok":false}]}"#, false, None);
        check(
            &p,
            200,
            r#"{"checks":[]}"#,
            false,
            Some("the json body has nothing at /checks/0/ok"),
        );
        p.equals = Some(serde_json::json!(true));
        check(
            &p,
            200,
            r#"{"checks":[{"ok":false}]}"#,
            false,
            Some("/checks/0/ok is false, expected true"),
        );
        check(&p, 200, r#"{"checks":[{"ok":true}]}"#, false, None);
        check(
            &p,
            200,
            r#"{"checks":"#,
            true,
            Some("the body is larger than 64 KiB, the most /checks/0/ok is looked up in"),
        );
        assert!(
            judge(&p, 200, b"<html>", false, None)
                .unwrap()
                .starts_with("the body is not json: ")
        );
    }
}
