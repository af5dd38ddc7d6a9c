//! The stability window's verdict, probe by probe: `window_failures`
//! consecutive failed probes on a host, or any start of the service beyond
//! the baseline read right after Rollway's own restart, fails it.

use std::collections::BTreeMap;

/// What one round of observation found on one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub host: String,
    /// The probe answered the expected status.
    pub healthy: bool,
    /// A short description of the probe (status or error) for the reason.
    pub detail: String,
    /// The service's start count now.
    pub starts: u64,
}

/// Why the window failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowFailure {
    Unhealthy {
        host: String,
        consecutive: u32,
        detail: String,
    },
    Restarted {
        host: String,
        restarts: u64,
    },
}

impl WindowFailure {
    /// The host whose observation failed the window.
    pub fn host(&self) -> &str {
        match self {
            WindowFailure::Unhealthy { host, .. } | WindowFailure::Restarted { host, .. } => host,
        }
    }
}

impl std::fmt::Display for WindowFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WindowFailure::Unhealthy {
                host,
                consecutive,
                detail,
            } => {
                write!(
                    f,
                    "{host}: {consecutive} consecutive failed probes in the stability window (last: {detail})"
                )
            }
            WindowFailure::Restarted { host, restarts } => write!(
                f,
                "{host}: the service restarted {restarts} time{} during the stability window",
                if *restarts == 1 { "" } else { "s" }
            ),
        }
    }
}

/// Per-host counters of one window.
#[derive(Debug, Clone)]
pub struct Window {
    window_failures: u32,
    baselines: BTreeMap<String, u64>,
    consecutive: BTreeMap<String, u32>,
    /// Restarts seen per host (for the verification records).
    pub restarts: BTreeMap<String, u64>,
    /// Probes that failed, over all hosts, tolerated or not (seed 000: a
    /// PASS says how many it tolerated).
    pub failed_probes: u64,
}

impl Window {
    /// A window over hosts with their start-count baselines.
    pub fn new(window_failures: u32, baselines: BTreeMap<String, u64>) -> Self {
        let restarts = baselines.keys().map(|h| (h.clone(), 0)).collect();
        Self {
            window_failures: window_failures.max(1),
            baselines,
            consecutive: BTreeMap::new(),
            restarts,
            failed_probes: 0,
        }
    }

    /// Takes one observation; the first failure found ends the window.
    pub fn observe(&mut self, o: &Observation) -> Result<(), WindowFailure> {
        let base = self.baselines.get(&o.host).copied().unwrap_or(o.starts);
        let restarts = o.starts.saturating_sub(base);
        self.restarts.insert(o.host.clone(), restarts);
        if restarts > 0 {
            return Err(WindowFailure::Restarted {
                host: o.host.clone(),
                restarts,
            });
        }
        let n = self.consecutive.entry(o.host.clone()).or_insert(0);
        if o.healthy {
            *n = 0;
            return Ok(());
        }
        *n += 1;
        self.failed_probes += 1;
        if *n >= self.window_failures {
            return Err(WindowFailure::Unhealthy {
                host: o.host.clone(),
                consecutive: *n,
                detail: o.detail.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(host: &str, healthy: bool, starts: u64) -> Observation {
        Observation {
            host: host.into(),
            healthy,
            detail: if healthy { "200".into() } else { "500".into() },
            starts,
        }
    }

    fn check(window_failures: u32, seq: &[Observation], expected: Option<&str>) {
        let mut w = Window::new(window_failures, [("a".to_owned(), 3), ("b".to_owned(), 7)].into());
        let got = seq.iter().try_for_each(|o| w.observe(o)).err().map(|f| f.to_string());
        assert_eq!(got.as_deref(), expected, "{seq:?}");
    }

    #[test]
    fn tolerated_failures_are_counted() {
        let mut w = Window::new(3, [("a".to_owned(), 3), ("b".to_owned(), 7)].into());
        for o in [
            obs("a", false, 3),
            obs("b", false, 7),
            obs("a", true, 3),
            obs("a", false, 3),
        ] {
            w.observe(&o).unwrap();
        }
        assert_eq!(w.failed_probes, 3);
    }

    #[test]
    fn verdicts() {
        check(3, &[obs("a", true, 3), obs("b", true, 7), obs("a", true, 3)], None);
        check(
            3,
            &[
                obs("a", false, 3),
                obs("a", false, 3),
                obs("a", true, 3),
                obs("a", false, 3),
            ],
            None,
        );
        check(
            3,
            &[
                obs("a", false, 3),
                obs("b", false, 7),
                obs("a", false, 3),
                obs("a", false, 3),
            ],
            Some("a: 3 consecutive failed probes in the stability window (last: 500)"),
        );
        check(
            3,
            &[obs("a", true, 3), obs("b", true, 8)],
            Some("b: the service restarted 1 time during the stability window"),
        );
        check(
            1,
            &[obs("b", false, 7)],
            Some("b: 1 consecutive failed probes in the stability window (last: 500)"),
        );
    }
}
