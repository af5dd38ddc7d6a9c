//! DNS probes with hickory-resolver against one resolver (or the system's):
//! no cache and no hosts file, so every probe asks the server.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use hickory_resolver::Resolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RecordType;

use crate::DnsProbe;
use crate::result::{Detail, Seen};

/// The record types a DNS probe asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsRecord {
    A,
    Aaaa,
    Cname,
    Txt,
    Mx,
    Ns,
    Srv,
    Ptr,
    Caa,
}

impl DnsRecord {
    pub const ALL: &[DnsRecord] = &[
        Self::A,
        Self::Aaaa,
        Self::Cname,
        Self::Txt,
        Self::Mx,
        Self::Ns,
        Self::Srv,
        Self::Ptr,
        Self::Caa,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::Aaaa => "AAAA",
            Self::Cname => "CNAME",
            Self::Txt => "TXT",
            Self::Mx => "MX",
            Self::Ns => "NS",
            Self::Srv => "SRV",
            Self::Ptr => "PTR",
            Self::Caa => "CAA",
        }
    }

    fn record_type(self) -> RecordType {
        match self {
            Self::A => RecordType::A,
            Self::Aaaa => RecordType::AAAA,
            Self::Cname => RecordType::CNAME,
            Self::Txt => RecordType::TXT,
            Self::Mx => RecordType::MX,
            Self::Ns => RecordType::NS,
            Self::Srv => RecordType::SRV,
            Self::Ptr => RecordType::PTR,
            Self::Caa => RecordType::CAA,
        }
    }

    /// Answers that are names compare without case and trailing dot.
    fn is_name(self) -> bool {
        matches!(self, Self::Cname | Self::Mx | Self::Ns | Self::Srv | Self::Ptr)
    }
}

impl fmt::Display for DnsRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DnsRecord {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|r| r.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown dns record type '{s}'"))
    }
}

pub(crate) async fn probe(p: &DnsProbe, timeout: Duration) -> Seen {
    let what = format!("{} {}", p.name, p.record);
    let mut builder = match p.resolver {
        Some(addr) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
            Resolver::builder_with_config(
                ResolverConfig::from_parts(None, Vec::new(), vec![server]),
                TokioRuntimeProvider::default(),
            )
        }
        None => match Resolver::builder_tokio() {
            Ok(b) => b,
            Err(e) => return Seen::unavailable(format!("cannot read the system's resolvers (/etc/resolv.conf): {e}")),
        },
    };
    let options: &mut ResolverOpts = builder.options_mut();
    options.timeout = timeout;
    options.attempts = 1;
    options.cache_size = 0;
    options.use_hosts_file = ResolveHosts::Never;
    let resolver = match builder.build() {
        Ok(r) => r,
        Err(e) => return Seen::unavailable(format!("cannot set up a resolver for {what}: {e}")),
    };
    let server = p
        .resolver
        .map_or_else(|| "the system's resolver".to_owned(), |a| a.to_string());
    // A trailing dot: the name as written, never a search-domain variant.
    let fqdn = if p.name.ends_with('.') {
        p.name.clone()
    } else {
        format!("{}.", p.name)
    };
    let lookup = match resolver.lookup(fqdn.as_str(), p.record.record_type()).await {
        Ok(l) => l,
        // The server answered, with no such records or an error code.
        Err(NetError::Dns(e)) => return Seen::error(format!("{server} answered the {what} question with {e}")),
        Err(e) => return Seen::unavailable(format!("{server} gave no answer to the {what} question: {e}")),
    };
    let wanted = p.record.record_type();
    let answers: Vec<String> = lookup
        .answers()
        .iter()
        .filter(|r| r.record_type() == wanted)
        .map(|r| normalise(p.record, &r.data.to_string()))
        .collect();
    let missing: Vec<&String> = p
        .expect
        .iter()
        .filter(|e| !answers.contains(&normalise(p.record, e)))
        .collect();
    let seen = if answers.is_empty() {
        Seen::error(format!("{server} has no {what} record"))
    } else if !missing.is_empty() {
        let missing: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        Seen::error(format!(
            "{what} is {}, without {}",
            answers.join(", "),
            missing.join(", ")
        ))
    } else {
        Seen::ok()
    };
    seen.with_detail(Detail::Dns { answers })
}

fn normalise(record: DnsRecord, answer: &str) -> String {
    if record.is_name() {
        answer.trim().trim_end_matches('.').to_ascii_lowercase()
    } else {
        answer.trim().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_types_and_answers() {
        for r in DnsRecord::ALL {
            assert_eq!(r.as_str().to_ascii_lowercase().parse::<DnsRecord>(), Ok(*r));
        }
        assert_eq!("SPF".parse::<DnsRecord>(), Err("unknown dns record type 'SPF'".into()));
        let check = |r: DnsRecord, s: &str, expected: &str| assert_eq!(normalise(r, s), expected);
        check(DnsRecord::Cname, "App.Example.TEST.", "app.example.test");
        check(DnsRecord::Mx, "10 Mail.example.com.", "10 mail.example.com");
        check(DnsRecord::Txt, "v=spf1 -all", "v=spf1 -all");
        check(DnsRecord::A, " 127.0.0.9", "127.0.0.9");
    }
}
