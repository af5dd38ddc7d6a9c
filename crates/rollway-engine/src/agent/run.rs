//! One-off commands on the host (`rollway exec`, deploy hooks): started
//! like the service — a release directory, its env file and `PORT`, nothing
//! of the agent's own environment beyond the basics — in a process group of
//! their own, so a timeout ends every process they started.

use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::exec::{ExecSpec, prepare};
use crate::host::{RUN_OUTPUT_MAX, RunResult};

/// Runs `spec` to its end or `timeout`, whichever comes first; keeps the
/// last [`RUN_OUTPUT_MAX`] bytes of its output.
pub fn run(spec: &ExecSpec, timeout: Duration) -> Result<RunResult, String> {
    let mut cmd = prepare(spec).map_err(|e| e.to_string())?;
    let (mut reader, writer) = std::io::pipe().map_err(|e| format!("cannot make a pipe: {e}"))?;
    let err_writer = writer.try_clone().map_err(|e| format!("cannot make a pipe: {e}"))?;
    cmd.stdin(Stdio::null())
        .stdout(writer)
        .stderr(err_writer)
        .process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start `sh -c` in {}: {e}", spec.dir.display()))?;
    // The pipe's write ends live in `cmd` until it is dropped; without that
    // the reader would never see the end of the output.
    drop(cmd);
    let pgid = child.id();
    let collector = std::thread::spawn(move || {
        let mut kept: Vec<u8> = Vec::new();
        let mut truncated = false;
        let mut buf = [0u8; 8192];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    kept.extend_from_slice(&buf[..n]);
                    if kept.len() > RUN_OUTPUT_MAX {
                        let cut = kept.len() - RUN_OUTPUT_MAX;
                        kept.drain(..cut);
                        truncated = true;
                    }
                }
            }
        }
        (kept, truncated)
    });
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                kill_group(pgid);
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("cannot wait for `sh -c` in {}: {e}", spec.dir.display())),
        }
    };
    // Processes the command left behind in its group would hold the pipe
    // open (and outlive it): end them too.
    kill_group(pgid);
    let (kept, truncated) = collector.join().unwrap_or_default();
    Ok(RunResult {
        code: status.and_then(|s| s.code()),
        output: String::from_utf8_lossy(&kept).into_owned(),
        truncated,
        timed_out,
    })
}

fn kill_group(pgid: u32) {
    if let Some(pid) = i32::try_from(pgid).ok().and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}
