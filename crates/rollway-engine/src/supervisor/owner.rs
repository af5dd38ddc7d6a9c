//! Who listens on a service's port, read from `/proc` on the host: the
//! listening sockets on `127.0.0.1:PORT` (or a wildcard address, which
//! takes 127.0.0.1 too) in `/proc/net/tcp` and `/proc/net/tcp6`, and the
//! processes whose `/proc/PID/fd` links name those sockets' inodes.
//!
//! The boot check passes only when every such socket belongs to the
//! process tree of the service Rollway just started: an answer from an old
//! process that kept the port (another supervisor's, another environment's)
//! must never pass for the new release.

use std::collections::HashSet;
use std::fs;
use std::io::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::process::descendants;

/// Who holds a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "owner", rename_all = "snake_case")]
pub enum PortOwner {
    /// Nothing listens on the port.
    Free,
    /// The service's process tree, and no one else (`pid` holds a socket).
    Service { pid: u32 },
    /// Another process listens on the port; `pid` is None when it is not
    /// visible to the agent (another user's process), `command` its
    /// command line or what is known of it.
    Other { pid: Option<u32>, command: String },
}

impl PortOwner {
    /// "pid 123 (python3 -m http.server)" for messages.
    pub fn describe_other(pid: Option<u32>, command: &str) -> String {
        match pid {
            Some(p) => format!("pid {p} ({command})"),
            None => format!("a process this agent cannot see ({command})"),
        }
    }
}

/// Records this process as the service just launched, at `path`: its pid and
/// start time. Best effort: a service whose record could not be written is
/// still found through its supervisor's pid.
pub fn record_exec_pid(path: &Path) {
    let pid = std::process::id();
    let Some(start) = start_time(pid) else { return };
    let tmp = path.with_extension(format!("tmp{pid}"));
    let written = fs::File::create(&tmp)
        .and_then(|mut f| writeln!(f, "{pid} {start}"))
        .and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
}

/// The process [`record_exec_pid`] recorded, when it is still that process.
pub fn exec_pid(path: &Path) -> Option<u32> {
    let text = fs::read_to_string(path).ok()?;
    let mut words = text.split_whitespace();
    let pid: u32 = words.next()?.parse().ok()?;
    let start: u64 = words.next()?.parse().ok()?;
    (start_time(pid) == Some(start) && super::is_alive(pid)).then_some(pid)
}

/// Field 22 of `/proc/PID/stat`: when the process started, in clock ticks.
fn start_time(pid: u32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces or ')'.
    let rest = &text[text.rfind(')')? + 1..];
    // `rest` starts at field 3 (state); start time is field 22.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Inodes of the sockets listening on `port` at an address that receives
/// connections to 127.0.0.1.
pub fn listening_inodes(port: u16) -> Vec<u64> {
    let mut out = Vec::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        if let Ok(text) = fs::read_to_string(file) {
            out.extend(parse_listeners(&text, port, v6));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Parses a `/proc/net/tcp{,6}` table: rows in state 0A (LISTEN) on `port`
/// at 0.0.0.0, 127.0.0.1, `::`, `::ffff:0.0.0.0` or `::ffff:127.0.0.1`.
fn parse_listeners(text: &str, port: u16, v6: bool) -> Vec<u64> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(state), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else {
            continue;
        };
        if *state != "0A" {
            continue;
        }
        let Some((addr, p)) = local.split_once(':') else {
            continue;
        };
        if u16::from_str_radix(p, 16).ok() != Some(port) {
            continue;
        }
        // Addresses are 32-bit words in host (little-endian) order.
        let takes_loopback = if v6 {
            matches!(
                addr,
                "00000000000000000000000000000000"
                    | "0000000000000000FFFF000000000000"
                    | "0000000000000000FFFF00000100007F"
            )
        } else {
            matches!(addr, "00000000" | "0100007F")
        };
        if takes_loopback && let Ok(n) = inode.parse::<u64>() {
            // Inode 0: a socket being torn down, owned by no one.
            if n != 0 {
                out.push(n);
            }
        }
    }
    out
}

/// The socket inodes among `pid`'s open files.
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let mut out = HashSet::new();
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return out;
    };
    for e in entries.flatten() {
        if let Ok(target) = fs::read_link(e.path())
            && let Some(n) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse().ok())
        {
            out.insert(n);
        }
    }
    out
}

/// A process's command line, arguments joined by blanks.
pub fn command_line(pid: u32) -> String {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let words: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    if words.is_empty() {
        fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| format!("[{}]", c.trim()))
            .unwrap_or_else(|_| String::from("?"))
    } else {
        let mut text = words.join(" ");
        if text.len() > 200 {
            let mut cut = 200;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        text
    }
}

/// Who listens on `port`: the tree under `roots` (the service's pids), or
/// someone else. `more_roots` is asked only when the tree under `roots`
/// does not hold every listening socket (it may be slow, e.g. a
/// `supervisorctl pid`).
pub fn port_owner(port: u16, roots: &[u32], more_roots: impl FnOnce() -> Vec<u32>) -> PortOwner {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return PortOwner::Free;
    }
    let held_by = |roots: &[u32]| -> (HashSet<u64>, Option<u32>) {
        let mut held = HashSet::new();
        let mut holder = None;
        for pid in roots.iter().copied().chain(descendants(roots)) {
            let mine = socket_inodes(pid);
            for i in &inodes {
                if mine.contains(i) {
                    held.insert(*i);
                    holder.get_or_insert(pid);
                }
            }
        }
        (held, holder)
    };
    let (mut held, mut holder) = held_by(roots);
    if held.len() < inodes.len() {
        let extra: Vec<u32> = more_roots().into_iter().filter(|p| !roots.contains(p)).collect();
        if !extra.is_empty() {
            let (more, h) = held_by(&extra);
            held.extend(more);
            holder = holder.or(h);
        }
    }
    if held.len() == inodes.len()
        && let Some(pid) = holder
    {
        return PortOwner::Service { pid };
    }
    // Someone else: name the first process holding a socket we do not.
    let foreign: HashSet<u64> = inodes.iter().copied().filter(|i| !held.contains(i)).collect();
    let pids = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok());
    for pid in pids {
        if socket_inodes(pid).iter().any(|i| foreign.contains(i)) {
            return PortOwner::Other {
                pid: Some(pid),
                command: command_line(pid),
            };
        }
    }
    PortOwner::Other {
        pid: None,
        command: String::from("owned by another user, or gone"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::net::TcpListener;

    #[test]
    fn proc_net_rows() {
        // Port 3000 is 0BB8.
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0000000000000000 100 0 0 10 0
   1: 00000000:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 222 1 0000000000000000 100 0 0 10 0
   2: 0100007F:0BB8 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 333 1 0000000000000000 100 0 0 10 0
   3: 0500000A:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 444 1 0000000000000000 100 0 0 10 0
   4: 0100007F:0BB9 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 555 1 0000000000000000 100 0 0 10 0
";
        // Listening on loopback and the wildcard; not an established
        // connection, another address or another port.
        assert_eq!(parse_listeners(v4, 3000, false), vec![111, 222]);
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0BB8 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 666 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:0BB8 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:0BB8 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 888 1 0000000000000000 100 0 0 10 0
";
        assert_eq!(parse_listeners(v6, 3000, true), vec![666, 888]);
    }

    #[test]
    fn this_process_owns_its_listener() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let me = std::process::id();
        assert_eq!(port_owner(port, &[me], Vec::new), PortOwner::Service { pid: me });
        // Seen from a tree that is not ours, it is someone else's, named.
        match port_owner(port, &[], Vec::new) {
            PortOwner::Other { pid, command } => {
                assert_eq!(pid, Some(me));
                assert!(!command.is_empty());
            }
            other => panic!("{other:?}"),
        }
        // The slower roots are asked when the first ones do not hold it.
        assert_eq!(port_owner(port, &[], || vec![me]), PortOwner::Service { pid: me });
        drop(l);
        assert_eq!(port_owner(port, &[me], Vec::new), PortOwner::Free);
    }

    #[test]
    fn exec_pid_is_this_process_only_while_it_lives() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("exec.pid");
        assert_eq!(exec_pid(&f), None);
        record_exec_pid(&f);
        assert_eq!(exec_pid(&f), Some(std::process::id()));
        // Same pid, another start time: a reused pid is not the service.
        fs::write(&f, format!("{} 1\n", std::process::id())).unwrap();
        assert_eq!(exec_pid(&f), None);
    }
}
