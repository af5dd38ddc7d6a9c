//! Simulated probe samples for the store's examples (`monitoring_size`,
//! `uptime_fill`): a small deterministic generator, so runs compare, and
//! samples shaped like a real HTTP monitor's — mostly `ok` with log-normal
//! latencies around 120 ms and a slow tail, a few errors, and refused
//! connections while a monitor is down.

use rollway_model::uptime::Outcome;
use rollway_model::{ProbeSample, Timestamp};

/// xorshift64*.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-12);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// One sample of `monitor` at `slot`: refused when `down`, else `ok` with
/// 0.5 % `error` (503) answers.
pub fn sample(rng: &mut Rng, monitor: &str, slot: i64, down: bool) -> ProbeSample {
    let r = rng.unit();
    let outcome = if down {
        Outcome::Unavailable
    } else if r < 0.005 {
        Outcome::Error
    } else {
        Outcome::Ok
    };
    let mut s = ProbeSample::new(monitor, Timestamp::from_millis(slot), outcome);
    s.at = Timestamp::from_millis(slot + (rng.next() % 40) as i64);
    match outcome {
        Outcome::Unavailable => s.error = Some("connect to 10.0.0.7:443: connection refused".into()),
        Outcome::Error => {
            s.http_status = Some(503);
            s.latency_ms = Some(5 + rng.next() % 50);
            s.error = Some("status 503 is not one of 200".into());
        }
        Outcome::Ok => {
            s.http_status = Some(200);
            let tail = if rng.unit() < 0.01 { 8.0 } else { 1.0 };
            s.latency_ms = Some((120.0 * (0.25 * rng.normal()).exp() * tail) as u64);
        }
    }
    s
}
