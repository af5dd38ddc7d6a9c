//! Domain: seed 003 Domain Registry, a custom domain with its DNS state;
//! a certificate is only issued once DNS is verified.

use serde::{Deserialize, Serialize};

use crate::entities::{StatusChangeError, atomically};
use crate::ids::{CertificateId, DomainId};
use crate::rules::{self, Violation};
use crate::status::{DnsStatus, Platform};
use crate::time::Timestamp;
use crate::transitions::Lifecycle;

/// One custom domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    /// Seed 003 `domain_id`.
    pub id: DomainId,
    /// The environment's name.
    pub environment: String,
    /// Seed 003 `domain_name`: the full name, e.g. `api.vocilia.com`.
    pub domain_name: String,
    /// Seed 003 `subdomain`, e.g. `api`; `None` for the apex.
    pub subdomain: Option<String>,
    /// Seed 003 `root_domain`, e.g. `vocilia.com`.
    pub root_domain: String,
    /// Seed 003 `app_target`: the application served (backend, customer, …).
    pub app_target: Option<String>,
    /// Seed 003 `platform_target`.
    pub platform_target: Platform,
    /// The name the CNAME record must point at (seed 003 "CNAME records
    /// must point to correct platform endpoints").
    pub cname_target: Option<String>,
    /// Seed 003 `dns_status` with its timed history.
    pub lifecycle: Lifecycle<DnsStatus>,
    /// Seed 003 `cdn_enabled`.
    pub cdn_enabled: bool,
    /// Seed 003 `ssl_certificate_id`: set only once DNS is verified.
    pub certificate_id: Option<CertificateId>,
    /// Seed 003 `created_at`.
    pub created_at: Timestamp,
    /// Seed 003 `verified_at`.
    pub verified_at: Option<Timestamp>,
}

impl Domain {
    /// A pending domain; `domain_name` is split into subdomain and root at
    /// its first dot when it has more than two labels.
    pub fn new(
        environment: impl Into<String>,
        domain_name: impl Into<String>,
        platform_target: Platform,
        at: Timestamp,
    ) -> Self {
        let domain_name = domain_name.into();
        let (subdomain, root_domain) = match domain_name.split_once('.') {
            Some((sub, root)) if root.contains('.') => (Some(sub.to_owned()), root.to_owned()),
            _ => (None, domain_name.clone()),
        };
        Self {
            id: DomainId::generate(at),
            environment: environment.into(),
            domain_name,
            subdomain,
            root_domain,
            app_target: None,
            platform_target,
            cname_target: None,
            lifecycle: Lifecycle::new(at),
            cdn_enabled: false,
            certificate_id: None,
            created_at: at,
            verified_at: None,
        }
    }

    pub fn status(&self) -> DnsStatus {
        self.lifecycle.status()
    }

    /// Moves the domain through its table; `verified` sets `verified_at`.
    pub fn transition(&mut self, to: DnsStatus, at: Timestamp) -> Result<(), StatusChangeError> {
        let id = self.id;
        atomically(self, |next| {
            next.lifecycle
                .transition(to, at)
                .map_err(|e| StatusChangeError::refused("domain", id, to, e))?;
            if to == DnsStatus::Verified {
                next.verified_at = Some(at);
            }
            Ok(())
        })
    }

    /// Links the certificate issued for this domain; refused, with nothing
    /// changed, until DNS is verified.
    pub fn attach_certificate(&mut self, id: CertificateId) -> Result<(), Vec<Violation>> {
        let mut next = self.clone();
        next.certificate_id = Some(id);
        let violations = rules::domain::validate_certificate_order(&next);
        if violations.is_empty() {
            *self = next;
            Ok(())
        } else {
            Err(violations)
        }
    }
}
