//! Certificate: seed 002 Certificate and seed 003 SSL Certificate
//! Management, pending → active | failed, active → expired, renewal back to pending.

use serde::{Deserialize, Serialize};

use crate::entities::{StatusChangeError, atomically};
use crate::ids::{CertificateId, Sha256Digest};
use crate::status::{CertificateStatus, Platform};
use crate::time::Timestamp;
use crate::transitions::Lifecycle;

/// One TLS certificate for one domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// Seed 002 `id`, seed 003 `certificate_id`.
    pub id: CertificateId,
    /// The environment's name: seed 002 `environmentId`.
    pub environment: String,
    /// Seed 002 `domain`, seed 003 `domain`.
    pub domain: String,
    /// Seed 002 `issuer`, seed 003 `certificate_authority` (Let's Encrypt, Custom).
    pub issuer: String,
    /// Seed 003 `platform`: where the certificate is served.
    pub platform: Platform,
    /// Seed 002 `validFrom`, seed 003 `issued_at`; known once issued.
    pub valid_from: Option<Timestamp>,
    /// Seed 002 `validTo`, seed 003 `expires_at`; known once issued.
    pub valid_to: Option<Timestamp>,
    /// Seed 003 `status` with its timed history.
    pub lifecycle: Lifecycle<CertificateStatus>,
    /// Seed 002 `autoRenewEnabled`, seed 003 `auto_renewal`.
    pub auto_renew: bool,
    /// Seed 002 `lastRenewedAt`: the last successful issuance.
    pub last_renewed_at: Option<Timestamp>,
    /// Seed 003 `last_renewal_attempt`.
    pub last_renewal_attempt: Option<Timestamp>,
    /// Seed 003 `certificate_hash`: SHA-256 of the DER certificate.
    pub fingerprint: Option<Sha256Digest>,
}

impl Certificate {
    pub fn new(
        environment: impl Into<String>,
        domain: impl Into<String>,
        issuer: impl Into<String>,
        platform: Platform,
        at: Timestamp,
    ) -> Self {
        Self {
            id: CertificateId::generate(at),
            environment: environment.into(),
            domain: domain.into(),
            issuer: issuer.into(),
            platform,
            valid_from: None,
            valid_to: None,
            lifecycle: Lifecycle::new(at),
            auto_renew: true,
            last_renewed_at: None,
            last_renewal_attempt: None,
            fingerprint: None,
        }
    }

    pub fn status(&self) -> CertificateStatus {
        self.lifecycle.status()
    }

    /// Moves the certificate through its table: `active` records
    /// `last_renewed_at`, a return to `pending` records `last_renewal_attempt`.
    pub fn transition(&mut self, to: CertificateStatus, at: Timestamp) -> Result<(), StatusChangeError> {
        let id = self.id;
        atomically(self, |next| {
            next.lifecycle
                .transition(to, at)
                .map_err(|e| StatusChangeError::refused("certificate", id, to, e))?;
            match to {
                CertificateStatus::Active => next.last_renewed_at = Some(at),
                CertificateStatus::Pending => next.last_renewal_attempt = Some(at),
                CertificateStatus::Expired | CertificateStatus::Failed => {}
            }
            Ok(())
        })
    }

    /// Whole days from `now` until `valid_to`, negative once expired.
    pub fn days_left(&self, now: Timestamp) -> Option<i64> {
        self.valid_to.map(|to| (to.0 - now.0).div_euclid(86_400_000))
    }
}
