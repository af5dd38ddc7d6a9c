//! Every status and kind of the seeds as a closed enum with its canonical
//! spelling and the seeds' aliases (e.g. `prod`, `SUCCESS`, `completed`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A word that is none of an enum's spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{value}' (expected one of: {})", expected.join(", "))]
pub struct UnknownVariant {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static [&'static str],
}

macro_rules! string_enum {
    ($(
        $(#[$meta:meta])*
        $name:ident ($what:literal) { $($variant:ident = $s:literal $(| $alias:literal)*),+ $(,)? }
    )*) => {$(
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The canonical spellings, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($s),+];

            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                // Any case: the seeds write the same words as `SUCCESS`,
                // `success` and `Success`; what Rollway writes stays `$s`.
                $(
                    if s.eq_ignore_ascii_case($s) $(|| s.eq_ignore_ascii_case($alias))* {
                        return Ok($name::$variant);
                    }
                )+
                Err(UnknownVariant { what: $what, value: s.to_owned(), expected: Self::NAMES })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

/// The seeds' word for "under way" (seed 000 `IN_PROGRESS`), which DESIGN.md
/// maps onto several phases of the one deployment state machine.
pub(crate) const IN_PROGRESS_WORD: &str = "in_progress";

impl DeploymentStatus {
    /// The phases seed 000's `IN_PROGRESS` stands for (DESIGN.md: "IN_PROGRESS
    /// is building/synthesizing/deploying/verifying").
    pub const IN_PROGRESS: &'static [DeploymentStatus] = &[
        DeploymentStatus::Building,
        DeploymentStatus::Synthesizing,
        DeploymentStatus::Deploying,
        DeploymentStatus::Verifying,
    ];

    /// The statuses a word names where a set is meant (a filter): `IN_PROGRESS`
    /// (any case) the four phases, any other word the one status it spells,
    /// seed words included (`SUCCESS`, `completed`, `FAILED`, `ROLLED_BACK`…).
    pub fn matching(word: &str) -> Result<&'static [DeploymentStatus], UnknownVariant> {
        if word.eq_ignore_ascii_case(IN_PROGRESS_WORD) {
            return Ok(Self::IN_PROGRESS);
        }
        let one: DeploymentStatus = word.parse()?;
        let at = Self::ALL.iter().position(|s| *s == one).unwrap_or_default();
        Ok(std::slice::from_ref(&Self::ALL[at]))
    }
}

string_enum! {
    /// The one deployment state machine (DESIGN.md); seed words map onto it
    /// (`SUCCESS` and `completed` are succeeded; `IN_PROGRESS` is a set of
    /// phases, see `DeploymentStatus::matching`).
    DeploymentStatus ("deployment status") {
        Pending = "pending",
        Building = "building",
        Synthesizing = "synthesizing",
        Deploying = "deploying",
        Verifying = "verifying",
        Succeeded = "succeeded" | "success" | "completed",
        Failed = "failed",
        Cancelled = "cancelled",
        RolledBack = "rolled_back",
    }

    /// A deployment ships a release forward or returns to an earlier one.
    DeploymentKind ("deployment kind") {
        Deploy = "deploy",
        Rollback = "rollback",
    }

    /// Seed 001 DeploymentJob status.
    JobStatus ("job status") {
        Pending = "pending",
        Running = "running",
        Success = "success",
        Failure = "failure",
        Cancelled = "cancelled",
    }

    /// Seed 001 job types plus `custom`.
    JobType ("job type") {
        Lint = "lint",
        Test = "test",
        BuildFrontend = "build-frontend",
        BuildBackend = "build-backend",
        DeployFrontend = "deploy-frontend",
        DeployBackend = "deploy-backend",
        MigrateDb = "migrate-db",
        PopulateEmbeddings = "populate-embeddings",
        Custom = "custom",
    }

    /// A pipeline run (DESIGN.md: pending → running → success | failure | cancelled).
    PipelineStatus ("pipeline status") {
        Pending = "pending",
        Running = "running",
        Success = "success",
        Failure = "failure",
        Cancelled = "cancelled",
    }

    /// Seed 004 Stack status plus DESIGN.md's synthesized, skipped, rolled_back.
    StackStatus ("stack status") {
        Pending = "pending",
        Synthesizing = "synthesizing",
        Synthesized = "synthesized",
        Deploying = "deploying",
        Deployed = "deployed",
        Failed = "failed",
        Skipped = "skipped",
        RolledBack = "rolled_back",
    }

    /// Seed 004 Resource status.
    ResourceStatus ("resource status") {
        Creating = "creating",
        Available = "available",
        Failed = "failed",
    }

    /// Seed 002 Monitoring Alert status.
    AlertStatus ("alert status") {
        Open = "open",
        Ack = "ack" | "acknowledged",
        Resolved = "resolved",
    }

    /// Seed 002 alert type.
    AlertType ("alert type") {
        Resource = "resource",
        Availability = "availability",
        Business = "business",
    }

    /// Seed 002 alert severity.
    Severity ("severity") {
        Warning = "warning",
        Critical = "critical",
    }

    /// Seed 002 Restore Job status.
    RestoreStatus ("restore status") {
        Pending = "pending",
        Running = "running",
        Success = "success",
        Failed = "failed",
    }

    /// Seed 003 Backup Records status.
    BackupStatus ("backup status") {
        InProgress = "in_progress",
        Completed = "completed",
        Failed = "failed",
        Expired = "expired",
    }

    /// Seed 002 backup kind.
    BackupKind ("backup kind") {
        Database = "database",
        Media = "media",
        Config = "config",
    }

    /// Seed 003 backup type, which decides retention.
    BackupClass ("backup class") {
        Daily = "daily",
        Weekly = "weekly",
        Monthly = "monthly",
        Manual = "manual",
    }

    /// Seed 003 certificate status.
    CertificateStatus ("certificate status") {
        Pending = "pending",
        Active = "active",
        Expired = "expired",
        Failed = "failed",
    }

    /// Seed 003 Domain Registry dns_status.
    DnsStatus ("dns status") {
        Pending = "pending",
        Configured = "configured",
        Verified = "verified",
        Failed = "failed",
    }

    /// Seed 001 DeploymentConfiguration lifecycle, kept for every environment.
    EnvironmentStatus ("environment status") {
        Created = "created",
        Active = "active",
        Deprecated = "deprecated",
    }

    /// Environment kinds; the seeds' `dev` and `prod` are aliases.
    EnvironmentKind ("environment kind") {
        Development = "development" | "dev",
        Test = "test",
        Staging = "staging",
        Production = "production" | "prod",
    }

    /// Where an environment runs (seed 003 platforms plus self-hosted).
    Platform ("platform") {
        SelfHosted = "self-hosted",
        Railway = "railway",
        Vercel = "vercel",
        Supabase = "supabase",
        Other = "other",
    }

    /// Artifact kinds: `app` plus seed 001's artifactType values.
    ArtifactKind ("artifact kind") {
        App = "app",
        FrontendBuild = "frontend-build",
        BackendContainer = "backend-container",
        EmbeddingsData = "embeddings-data",
    }

    /// Seed 000 HealthCheck result.
    CheckResult ("check result") {
        Pass = "PASS" | "pass",
        Fail = "FAIL" | "fail",
    }

    /// Seed 002 Health Check target.
    HealthTarget ("health check target") {
        Frontend = "frontend",
        Backend = "backend",
        Database = "database",
        Nginx = "nginx",
    }

    /// Probe kinds of a monitor.
    ProbeKind ("probe kind") {
        Http = "http" | "https",
        Tcp = "tcp",
        Tls = "tls",
        Dns = "dns",
        Postgres = "postgres" | "postgresql",
    }

    /// Seed 003 Monitoring Data metric_type.
    MetricType ("metric type") {
        HealthCheck = "health_check",
        Performance = "performance",
        ErrorRate = "error_rate",
        Uptime = "uptime",
    }

    /// Seed 003 Monitoring Data unit: "Metric unit (ms, %, count)".
    MetricUnit ("metric unit") {
        Ms = "ms",
        Percent = "%" | "percent",
        Count = "count",
    }

    /// Seed 003 Monitoring Data status.
    HealthStatus ("health status") {
        Healthy = "healthy",
        Warning = "warning",
        Critical = "critical",
    }

    /// Seed 003 Response Time Tracking cache_status.
    CacheStatus ("cache status") {
        Hit = "hit",
        Miss = "miss",
        Bypass = "bypass",
    }

    /// Variable value types (rollway.toml `[variables.X] type`).
    VariableType ("variable type") {
        String = "string",
        Url = "url",
        Key = "key",
    }

    /// Log and event levels (seed 000 INFO/WARN/ERROR, seed 002 adds debug).
    Level ("level") {
        Debug = "debug",
        Info = "info",
        Warn = "warn" | "warning",
        Error = "error",
    }

    /// How a service is restarted and its restarts counted.
    SupervisorKind ("supervisor") {
        Rollway = "rollway",
        Supervisord = "supervisord",
        Systemd = "systemd",
        Command = "command",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_parse_to_canonical_variants() {
        assert_eq!("prod".parse(), Ok(EnvironmentKind::Production));
        assert_eq!("dev".parse(), Ok(EnvironmentKind::Development));
        assert_eq!("SUCCESS".parse(), Ok(DeploymentStatus::Succeeded));
        assert_eq!("completed".parse(), Ok(DeploymentStatus::Succeeded));
        assert_eq!(EnvironmentKind::Production.as_str(), "production");
        let err = "qa".parse::<EnvironmentKind>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown environment kind 'qa' (expected one of: development, test, staging, production)"
        );
    }

    #[test]
    fn serde_uses_canonical_spelling() {
        let json = serde_json::to_string(&DeploymentStatus::RolledBack).unwrap();
        assert_eq!(json, "\"rolled_back\"");
        let back: DeploymentStatus = serde_json::from_str("\"success\"").unwrap();
        assert_eq!(back, DeploymentStatus::Succeeded);
    }
}
