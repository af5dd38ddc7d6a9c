//! What a probe returns: a sample-shaped value (OPERATIONS.md "Samples").

use std::time::Duration;

use rollway_model::status::CacheStatus;
use rollway_model::time::{Timestamp, format_duration};
use rollway_model::uptime::{Observation, Outcome};
use serde::Serialize;

/// One probe's sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeResult {
    /// When the probe started.
    pub at: Timestamp,
    pub outcome: Outcome,
    /// The HTTP status of the final answer, for HTTP probes that got one.
    pub http_status: Option<u16>,
    /// From the start to the end of the probe (for HTTP, through the kept body).
    pub latency_ms: u64,
    /// Seed 003's hit / miss / bypass, from the answer's headers.
    pub cache_status: Option<CacheStatus>,
    /// Where the probe ran; the caller sets it ([`ProbeResult::at_location`]).
    pub location: Option<String>,
    /// What went wrong, for `error` and `unavailable`. Not masked here: the
    /// caller passes it through the model's `Masker` before storing it.
    pub error: Option<String>,
    pub detail: Detail,
}

/// What a probe kind saw beyond the sample fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Detail {
    None,
    Http {
        /// Body bytes kept for the checks (at most `BODY_KEEP`).
        body_kept: usize,
        /// Whether the body went on past what was kept (the rest was not read).
        body_truncated: bool,
        /// The URL that gave the final answer, after redirects.
        final_url: String,
    },
    Tls {
        /// The leaf certificate's notAfter.
        not_after: Timestamp,
        /// Whole days from the probe to notAfter; negative once expired.
        days_left: i64,
        /// Whether the chain verified for the server name.
        verified: bool,
    },
    Dns {
        /// The answers of the asked type, as text (names without the trailing dot).
        answers: Vec<String>,
    },
}

impl ProbeResult {
    /// The same result, recorded at `location`.
    pub fn at_location(mut self, location: Option<String>) -> Self {
        self.location = location;
        self
    }

    /// An `ok` slower than `budget` becomes an `error` (a monitor's
    /// `latency_budget`).
    pub fn within_budget(mut self, budget: Option<Duration>) -> Self {
        if let Some(budget) = budget
            && self.outcome == Outcome::Ok
            && u128::from(self.latency_ms) > budget.as_millis()
        {
            self.outcome = Outcome::Error;
            self.error = Some(format!(
                "latency {} ms is over the budget of {}",
                self.latency_ms,
                format_duration(budget)
            ));
        }
        self
    }

    /// What the uptime arithmetic needs of it.
    pub fn observation(&self) -> Observation {
        Observation {
            at: self.at,
            outcome: self.outcome,
            http_status: self.http_status,
        }
    }
}

/// A probe that did not end within `timeout`: no answer, `unavailable`.
pub(crate) fn timed_out(spec: &crate::ProbeSpec, timeout: Duration) -> Seen {
    Seen::unavailable(format!(
        "{} timed out after {}",
        spec.target(),
        format_duration(timeout)
    ))
}

/// What a probe kind found, before the common fields are added.
#[derive(Debug)]
pub(crate) struct Seen {
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    pub cache_status: Option<CacheStatus>,
    pub error: Option<String>,
    pub detail: Detail,
}

impl Seen {
    pub fn ok() -> Self {
        Self {
            outcome: Outcome::Ok,
            http_status: None,
            cache_status: None,
            error: None,
            detail: Detail::None,
        }
    }

    pub fn unavailable(why: String) -> Self {
        Self {
            outcome: Outcome::Unavailable,
            error: Some(why),
            ..Self::ok()
        }
    }

    pub fn error(why: String) -> Self {
        Self {
            outcome: Outcome::Error,
            error: Some(why),
            ..Self::ok()
        }
    }

    pub fn with_detail(mut self, detail: Detail) -> Self {
        self.detail = detail;
        self
    }

    pub fn finish(self, at: Timestamp, took: Duration) -> ProbeResult {
        ProbeResult {
            at,
            outcome: self.outcome,
            http_status: self.http_status,
            latency_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            cache_status: self.cache_status,
            location: None,
            error: self.error,
            detail: self.detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latency_budget_turns_slow_oks_into_errors() {
        let check = |outcome: Outcome, latency_ms: u64, budget: Option<u64>, expected: (Outcome, Option<&str>)| {
            let r = ProbeResult {
                at: Timestamp::from_millis(0),
                outcome,
                http_status: Some(200),
                latency_ms,
                cache_status: None,
                location: None,
                error: None,
                detail: Detail::None,
            }
            .within_budget(budget.map(Duration::from_millis));
            assert_eq!(
                (r.outcome, r.error.as_deref()),
                expected,
                "{latency_ms} ms, budget {budget:?}"
            );
        };
        check(Outcome::Ok, 300, Some(500), (Outcome::Ok, None));
        check(Outcome::Ok, 500, Some(500), (Outcome::Ok, None));
        check(
            Outcome::Ok,
            501,
            Some(500),
            (Outcome::Error, Some("latency 501 ms is over the budget of 500ms")),
        );
        check(Outcome::Ok, 9_000, None, (Outcome::Ok, None));
        check(Outcome::Unavailable, 9_000, Some(500), (Outcome::Unavailable, None));
    }
}
