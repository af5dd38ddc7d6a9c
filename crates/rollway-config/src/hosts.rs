//! Host entries of an environment: `"local"`, `"user@host:port"` strings and
//! `{ ssh = "…", root = "…", port = N }` tables.

use crate::types::{HostTarget, SshDestination};

/// Reads a host string: `local`, or an ssh destination `[user@]host[:port]`
/// (IPv6 addresses in brackets: `[::1]:22`).
pub fn parse_host(s: &str) -> Result<HostTarget, String> {
    if s == "local" {
        return Ok(HostTarget::Local);
    }
    parse_ssh(s).map(HostTarget::Ssh)
}

/// Reads an ssh destination `[user@]host[:port]`.
pub fn parse_ssh(s: &str) -> Result<SshDestination, String> {
    if s.trim().is_empty() {
        return Err("the host is empty".into());
    }
    if s.chars().any(char::is_whitespace) {
        return Err(format!("'{s}' contains a space"));
    }
    if s.contains("://") {
        return Err(format!("'{s}' has a scheme; write user@host:port without ssh://"));
    }
    let (user, rest) = match s.split_once('@') {
        Some((u, r)) => (Some(u), r),
        None => (None, s),
    };
    if let Some(u) = user {
        if u.is_empty() {
            return Err(format!("'{s}' has an empty user before '@'"));
        }
        if let Some(c) = u
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(format!("the user in '{s}' contains '{c}'"));
        }
    }
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let Some((h, after)) = inner.split_once(']') else {
            return Err(format!("'{s}' opens '[' without closing it"));
        };
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(p) => Some(p),
                None => return Err(format!("'{s}' has '{p}' after the address; expected :PORT")),
            },
        };
        if !h.contains(':')
            || !h
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '%'))
        {
            return Err(format!("'{h}' in '{s}' is not an IPv6 address"));
        }
        (h, port)
    } else {
        match rest.matches(':').count() {
            0 => (rest, None),
            1 => match rest.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            },
            _ => {
                return Err(format!(
                    "'{s}' has several ':'; write IPv6 addresses in brackets, e.g. [::1]:22"
                ));
            }
        }
    };
    if host.is_empty() {
        return Err(format!("'{s}' has no host name"));
    }
    if !rest.starts_with('[') {
        if let Some(c) = host
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(format!("the host in '{s}' contains '{c}'"));
        }
        if host.starts_with('-') {
            return Err(format!("the host in '{s}' starts with '-'"));
        }
    }
    let port = match port {
        None => None,
        Some(p) => Some(parse_port(p).map_err(|e| format!("'{s}': {e}"))?),
    };
    Ok(SshDestination {
        user: user.map(str::to_owned),
        host: host.to_owned(),
        port,
    })
}

fn parse_port(p: &str) -> Result<u16, String> {
    if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("port '{p}' is not a number"));
    }
    match p.parse::<u64>() {
        Ok(n) if (1..=65535).contains(&n) => u16::try_from(n).map_err(|_| format!("port {n} is out of range")),
        Ok(n) => Err(format!("port {n} is out of range (1 to 65535)")),
        Err(_) => Err(format!("port {p} is out of range (1 to 65535)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(s: &str, expected: Result<&str, &str>) {
        let got = parse_host(s).map(|t| match t {
            HostTarget::Local => "local".to_owned(),
            HostTarget::Ssh(d) => format!("{:?}|{}|{:?}", d.user, d.host, d.port),
        });
        match (got, expected) {
            (Ok(g), Ok(e)) => assert_eq!(g, e, "{s}"),
            (Err(g), Err(e)) => assert!(g.contains(e), "{s}: {g} should contain {e}"),
            (g, e) => panic!("{s}: got {g:?}, expected {e:?}"),
        }
    }

    #[test]
    fn host_strings() {
        check("local", Ok("local"));
        check("app1.example.com", Ok("None|app1.example.com|None"));
        check("deploy@app1.example.com", Ok("Some(\"deploy\")|app1.example.com|None"));
        check("root@127.0.0.1:22222", Ok("Some(\"root\")|127.0.0.1|Some(22222)"));
        check("deploy@[::1]:2222", Ok("Some(\"deploy\")|::1|Some(2222)"));
        check("[fe80::1%eth0]", Ok("None|fe80::1%eth0|None"));
        check("", Err("empty"));
        check("@host", Err("empty user"));
        check("deploy@", Err("no host"));
        check("host:0", Err("port 0 is out of range"));
        check("host:70000", Err("port 70000 is out of range"));
        check("host:ssh", Err("not a number"));
        check("::1", Err("brackets"));
        check("ssh://host", Err("scheme"));
        check("a b", Err("space"));
        check("ho/st", Err("contains '/'"));
        check("[::1", Err("without closing"));
    }

    #[test]
    fn destinations_print_back() {
        for s in ["deploy@app1.example.com:2222", "host", "u@[::1]:22", "u@h"] {
            let d = parse_ssh(s).unwrap();
            assert_eq!(d.to_string(), s);
        }
    }
}
