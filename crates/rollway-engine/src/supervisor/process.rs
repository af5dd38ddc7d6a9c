//! Process facts and signals for supervisors, read from `/proc` so that a
//! zombie (dead, not yet reaped) never counts as running.

use std::fs;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process, kill_process_group};

/// `(state, process group)` of a process, from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(char, u32)> {
    full_stat(pid).map(|(state, _, pgrp)| (state, pgrp))
}

/// `(state, parent, process group)` of a process, from `/proc/PID/stat`.
fn full_stat(pid: u32) -> Option<(char, u32, u32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself hold spaces or ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, ppid, pgrp))
}

/// Every process (zombies included) whose parent chain reaches one of
/// `roots`, the roots themselves excluded.
pub fn descendants(roots: &[u32]) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| full_stat(pid).map(|(_, ppid, _)| (pid, ppid)))
        .collect();
    let mut found: Vec<u32> = Vec::new();
    let mut frontier: Vec<u32> = roots.to_vec();
    while let Some(p) = frontier.pop() {
        for &(child, parent) in &parents {
            if parent == p && !found.contains(&child) && !roots.contains(&child) {
                found.push(child);
                frontier.push(child);
            }
        }
    }
    found
}

fn is_dead_state(state: char) -> bool {
    matches!(state, 'Z' | 'X' | 'x')
}

/// Whether `pid` is a live (non-zombie) process.
pub fn is_alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _)| !is_dead_state(state))
}

/// Whether any live process is in process group `pgid`.
pub fn process_group_alive(pgid: u32) -> bool {
    group_members(pgid).next().is_some()
}

fn group_members(pgid: u32) -> impl Iterator<Item = u32> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(move |pid| stat(*pid).is_some_and(|(state, g)| g == pgid && !is_dead_state(state)))
}

fn pid_of(pid: u32) -> Option<Pid> {
    i32::try_from(pid).ok().and_then(Pid::from_raw)
}

/// The process group `pid` leads, if it leads one (the service is started
/// as the leader of its own group, so its pid is the group id).
pub fn leads_group(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, g)| g == pid && !is_dead_state(state))
}

pub fn signal(pid: u32, sig: Signal) {
    if let Some(p) = pid_of(pid) {
        let _ = kill_process(p, sig);
    }
}

pub fn signal_group(pgid: u32, sig: Signal) {
    if let Some(p) = pid_of(pgid) {
        let _ = kill_process_group(p, sig);
    }
}

/// SIGTERM to the group, then SIGKILL to whatever is left after `grace`.
/// `reap` is called while waiting (the supervisor reaps its own child there).
/// Returns whether the group was gone before the SIGKILL.
pub fn terminate_group(pgid: u32, grace: Duration, mut reap: impl FnMut()) -> bool {
    signal_group(pgid, Signal::TERM);
    // SIGCONT so a stopped member can act on the SIGTERM.
    signal_group(pgid, Signal::CONT);
    let ended = super::wait_for(grace, Duration::from_millis(10), || {
        reap();
        !process_group_alive(pgid)
    });
    if !ended {
        signal_group(pgid, Signal::KILL);
        super::wait_for(Duration::from_secs(2), Duration::from_millis(10), || {
            reap();
            !process_group_alive(pgid)
        });
    }
    ended
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    #[test]
    fn zombies_are_not_alive_and_groups_end() {
        let mut child = Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(super::super::wait_for(
            Duration::from_secs(5),
            Duration::from_millis(5),
            || { group_members(pid).count() >= 2 }
        ));
        assert!(is_alive(pid));
        assert!(leads_group(pid));
        assert!(process_group_alive(pid));
        signal(pid, Signal::KILL);
        // Killed but not reaped: a zombie, which is not alive; its
        // children still are, in its group.
        assert!(super::super::wait_for(
            Duration::from_secs(5),
            Duration::from_millis(5),
            || !is_alive(pid)
        ));
        assert!(process_group_alive(pid));
        let members: Vec<u32> = group_members(pid).collect();
        assert!(terminate_group(pid, Duration::from_secs(5), || {}));
        assert!(!process_group_alive(pid));
        for m in members {
            assert!(!is_alive(m), "{m}");
        }
        child.wait().unwrap();
        assert!(!is_alive(pid));
    }
}
