//! What a host has left, for resource alerts (OPERATIONS.md "Alerts":
//! host CPU, memory and disk read through the host agent): the kernel's
//! cumulative CPU counters (a caller diffs two readings into a percentage,
//! so the agent never sleeps to measure), memory in use as `free` counts
//! it (total − available) and disk in use as `df` counts it for a path.

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Cumulative CPU time of all CPUs since boot, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuTimes {
    /// Everything but idle and iowait.
    pub busy: u64,
    pub total: u64,
}

/// One reading of a host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostStats {
    pub cpu: Option<CpuTimes>,
    /// Percent of memory in use (MemTotal − MemAvailable).
    pub memory_used_percent: Option<f64>,
    /// Percent of the filesystem holding the path in use, as `df` shows it
    /// (used ÷ (used + available to unprivileged users)).
    pub disk_used_percent: Option<f64>,
    /// The 1-minute load average.
    pub load1: Option<f64>,
}

/// CPU in use between two readings, in percent; `None` when no time passed
/// or the counters went back (a reboot in between).
pub fn cpu_percent(before: CpuTimes, after: CpuTimes) -> Option<f64> {
    let total = after.total.checked_sub(before.total)?;
    let busy = after.busy.checked_sub(before.busy)?;
    (total > 0).then(|| (busy as f64 / total as f64 * 100.0).min(100.0))
}

/// The `cpu` line of `/proc/stat`.
pub fn parse_proc_stat(text: &str) -> Option<CpuTimes> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]:
    // guest time is already counted in user and nice.
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some(CpuTimes {
        busy: total.saturating_sub(idle),
        total,
    })
}

/// Percent of memory in use from `/proc/meminfo`.
pub fn parse_meminfo(text: &str) -> Option<f64> {
    let kb = |key: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
    };
    let total = kb("MemTotal")?;
    let available = kb("MemAvailable")?;
    (total > 0).then(|| total.saturating_sub(available) as f64 / total as f64 * 100.0)
}

/// The 1-minute load average from `/proc/loadavg`.
pub fn parse_loadavg(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// Reads the host, the disk figure for the filesystem holding `path`.
/// A missing `/proc` file leaves its figure out; a path that cannot be
/// looked at is an error naming it.
pub fn read(path: &Path) -> io::Result<HostStats> {
    let proc = |name: &str| std::fs::read_to_string(format!("/proc/{name}")).ok();
    let vfs = rustix::fs::statvfs(path).map_err(io::Error::from)?;
    let used = vfs.f_blocks.saturating_sub(vfs.f_bfree);
    let room = used + vfs.f_bavail;
    Ok(HostStats {
        cpu: proc("stat").as_deref().and_then(parse_proc_stat),
        memory_used_percent: proc("meminfo").as_deref().and_then(parse_meminfo),
        disk_used_percent: (room > 0).then(|| used as f64 / room as f64 * 100.0),
        load1: proc("loadavg").as_deref().and_then(parse_loadavg),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn proc_files_are_read() {
        let stat = "cpu  100 5 50 800 20 3 2 0 7 0\ncpu0 50 2 25 400 10 1 1 0 0 0\nintr 1 2\n";
        assert_eq!(parse_proc_stat(stat), Some(CpuTimes { busy: 160, total: 980 }));
        assert_eq!(parse_proc_stat("intr 1\n"), None);
        assert_eq!(parse_proc_stat("cpu  1 x 3\n"), None);
        let meminfo = "MemTotal:       16000 kB\nMemFree:  1000 kB\nMemAvailable:    4000 kB\n";
        assert_eq!(parse_meminfo(meminfo), Some(75.0));
        assert_eq!(parse_meminfo("MemTotal: 0 kB\nMemAvailable: 0 kB\n"), None);
        assert_eq!(parse_meminfo("MemFree: 1 kB\n"), None);
        assert_eq!(parse_loadavg("0.42 0.30 0.20 1/234 5678\n"), Some(0.42));
    }

    #[test]
    fn cpu_percent_is_busy_time_over_time_passed() {
        let t = |busy, total| CpuTimes { busy, total };
        let check = |a, b, expected: Option<f64>| assert_eq!(cpu_percent(a, b), expected, "{a:?} → {b:?}");
        check(t(100, 1000), t(150, 1100), Some(50.0));
        check(t(100, 1000), t(100, 1000), None);
        // Counters that went back: a reboot in between.
        check(t(100, 1000), t(10, 200), None);
    }

    #[test]
    fn this_machine_reads_within_range() {
        let s = read(Path::new("/")).unwrap();
        for p in [s.memory_used_percent, s.disk_used_percent] {
            let p = p.unwrap();
            assert!((0.0..=100.0).contains(&p), "{s:?}");
        }
        assert!(s.cpu.unwrap().total > 0);
        let e = read(Path::new("/nonexistent/rollway")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
