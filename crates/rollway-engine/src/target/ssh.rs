//! An SSH host: system OpenSSH in batch mode, one multiplexed connection
//! per host (`ControlMaster=auto`, `ControlPersist=60`, the control socket
//! under the state directory), the user's ssh config honoured and `-F FILE`
//! from `[ssh] config`. The agent is this very binary, kept on the host as
//! `ROOT/.rollway/bin/rollway-<sha256 prefix>`: one ssh round trip checks
//! its digest and starts it; a missing or different copy is uploaded to a
//! temporary name, verified and renamed first.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rollway_model::Sha256Digest;
use sha2::{Digest as _, Sha256};

use super::client::{AgentClient, StderrTail};
use super::{AgentSession, SessionOptions};
use crate::deploy::{Connector, HostPlan, SshTarget};
use crate::host::{HostError, HostSession};
use crate::layout::AGENT_BIN_DIR;

/// How many hex digits of the binary's digest name it on the host.
const NAME_DIGITS: usize = 16;

/// The launcher's first line when the agent is there and starting.
const OK_LINE: &str = "rollway-agent-ok";
/// …and when it must be uploaded first.
const MISSING_LINE: &str = "rollway-agent-missing";

/// Longest control directory that leaves room for `/%C` (40 hex digits)
/// and the temporary suffix ssh adds, inside a unix socket path.
const MAX_CONTROL_DIR: usize = 48;

/// Starts agents on SSH hosts.
#[derive(Debug)]
pub struct SshConnector {
    pub options: SessionOptions,
    /// Where control sockets live (`<state dir>/ssh`).
    pub control_dir: PathBuf,
    /// The binary copied to hosts; `None` is this process's own binary.
    pub agent_exe: Option<PathBuf>,
    /// The ssh client to run.
    pub ssh_program: PathBuf,
    digest: OnceLock<Result<(PathBuf, Sha256Digest), String>>,
    /// One guard per host a session was opened to: its multiplexed
    /// connection ends when the connector and every session to that host
    /// are gone, unless `options.ssh.persist`.
    masters: std::sync::Mutex<Vec<(HostPlan, std::sync::Arc<MasterGuard>)>>,
}

/// Ends a host's multiplexed ssh connection (`ssh -O exit`) when the last
/// holder lets go: the connector that opened it and the sessions riding it.
#[derive(Debug)]
pub(crate) struct MasterGuard {
    /// `ssh OPTIONS… -O exit DESTINATION`; `None` keeps the connection
    /// (`[ssh] persist`).
    exit: Option<(PathBuf, Vec<OsString>)>,
}

impl Drop for MasterGuard {
    fn drop(&mut self) {
        if let Some((program, args)) = &self.exit {
            // A master already gone answers an error: nothing to end.
            let _ = Command::new(program)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl SshConnector {
    pub fn new(state_dir: &Path, options: SessionOptions) -> Self {
        Self {
            options,
            control_dir: state_dir.join("ssh"),
            agent_exe: None,
            ssh_program: PathBuf::from("ssh"),
            digest: OnceLock::new(),
            masters: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Copies `exe` to hosts instead of this binary (tests, `--agent`).
    #[must_use]
    pub fn with_agent_exe(mut self, exe: impl Into<PathBuf>) -> Self {
        self.agent_exe = Some(exe.into());
        self.digest = OnceLock::new();
        self
    }

    /// The binary to copy and its SHA-256, computed once.
    fn agent_binary(&self) -> Result<(PathBuf, Sha256Digest), String> {
        self.digest
            .get_or_init(|| {
                let exe = match &self.agent_exe {
                    Some(e) => e.clone(),
                    None => std::env::current_exe().map_err(|e| format!("cannot find this rollway binary: {e}"))?,
                };
                let mut file = File::open(&exe).map_err(|e| format!("cannot read {}: {e}", exe.display()))?;
                let mut sha = Sha256::new();
                io::copy(&mut file, &mut sha).map_err(|e| format!("cannot read {}: {e}", exe.display()))?;
                Ok((exe, Sha256Digest::from_bytes(sha.finalize().into())))
            })
            .clone()
    }

    /// The control socket directory, made private; a path too long for a
    /// unix socket falls back to `$TMPDIR/rollway-ssh-<uid>`.
    fn control_dir(&self) -> Result<PathBuf, String> {
        let dir = match std::path::absolute(&self.control_dir) {
            Ok(d) if d.as_os_str().len() <= MAX_CONTROL_DIR => d,
            _ => std::env::temp_dir().join(format!("rollway-ssh-{}", rustix::process::getuid().as_raw())),
        };
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let meta = fs::metadata(&dir).map_err(|e| format!("cannot inspect {}: {e}", dir.display()))?;
        if meta.uid() != rustix::process::getuid().as_raw() {
            return Err(format!(
                "{} belongs to another user; remove it, it holds ssh control sockets",
                dir.display()
            ));
        }
        if meta.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("cannot make {} private: {e}", dir.display()))?;
        }
        Ok(dir)
    }

    /// `ssh` with the options every call uses, up to the destination.
    pub fn command(&self, target: &SshTarget) -> Result<Command, String> {
        if target.host.is_empty()
            || target.host.starts_with('-')
            || target.user.as_deref().is_some_and(|u| u.starts_with('-'))
        {
            return Err(format!("'{}' is not an ssh destination", destination(target)));
        }
        let control = self.control_dir()?;
        let mut args: Vec<OsString> = Vec::new();
        let t = self.options.ssh;
        // ssh takes whole seconds; anything shorter still gets one.
        let secs = |d: Duration| d.as_secs().max(1);
        let bounds = [
            format!("ConnectTimeout={}", secs(t.connect_timeout)),
            format!("ServerAliveInterval={}", secs(t.alive_interval)),
            format!("ServerAliveCountMax={}", t.alive_count_max.max(1)),
        ];
        for o in ["BatchMode=yes", "ControlMaster=auto", "ControlPersist=60"]
            .into_iter()
            .map(String::from)
            .chain(bounds)
        {
            args.push("-o".into());
            args.push(o.into());
        }
        args.push("-o".into());
        let mut cp = OsString::from("ControlPath=");
        cp.push(control.join("%C"));
        args.push(cp);
        args.push("-T".into());
        if let Some(config) = &target.config {
            args.push("-F".into());
            args.push(config.into());
        }
        if let Some(port) = target.port {
            args.push("-p".into());
            args.push(port.to_string().into());
        }
        args.push(destination(target).into());
        let mut cmd = Command::new(&self.ssh_program);
        cmd.args(args);
        Ok(cmd)
    }

    /// A session with the agent of `host`, copying the agent there first
    /// when it is missing or differs.
    pub fn open(&self, host: &HostPlan) -> Result<AgentSession, HostError> {
        let fail = |detail: String| HostError {
            host: host.name.clone(),
            step: "connect",
            detail,
        };
        let Some(target) = &host.ssh else {
            return Err(fail(String::from("not an ssh host")));
        };
        let master = self.master(host).map_err(fail)?;
        let (exe, digest) = self.agent_binary().map_err(fail)?;
        let root = remote_path(&host.root);
        let name = format!("rollway-{}", &digest.as_str()[..NAME_DIGITS]);
        let launcher = format!(
            "p={root}/{AGENT_BIN_DIR}/{name}\n\
             if [ -x \"$p\" ] && [ \"$(sha256sum < \"$p\" 2>/dev/null | cut -c1-64)\" = {digest} ]; then\n\
             echo {OK_LINE}; exec \"$p\" agent --root {root}\n\
             fi\n\
             echo {MISSING_LINE}"
        );
        match self.launch(host, target, &launcher)? {
            Launched::Agent(session) => return Ok(session.holding(master)),
            Launched::Missing => {}
        }
        self.upload(host, target, &exe, &digest, &root, &name)?;
        match self.launch(host, target, &launcher)? {
            Launched::Agent(session) => Ok(session.holding(master)),
            Launched::Missing => Err(fail(format!(
                "the agent copied to {} does not start or does not verify; check that {} is writable and not mounted noexec",
                host.root, host.root
            ))),
        }
    }

    fn launch(&self, host: &HostPlan, target: &SshTarget, launcher: &str) -> Result<Launched, HostError> {
        let fail = |detail: String| HostError {
            host: host.name.clone(),
            step: "connect",
            detail,
        };
        let mut cmd = self.command(target).map_err(fail)?;
        cmd.arg(format!("sh -c {}", sh_quote(launcher)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            fail(format!(
                "cannot run {}: {e}; install OpenSSH's client",
                self.ssh_program.display()
            ))
        })?;
        let (Some(stdin), Some(mut stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            return Err(fail(String::from("ssh's standard streams are not piped")));
        };
        let stderr = StderrTail::collect(stderr);
        // The launcher's first line has a deadline too: a host whose login
        // shell waits for input would otherwise hang the step for ever.
        let deadline = self.options.ssh.connect_timeout + self.options.ssh.launch_grace;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let line = read_line(&mut stdout);
            let _ = tx.send((stdout, line));
        });
        let (stdout, line) = match rx.recv_timeout(deadline) {
            Ok(got) => got,
            Err(_) => {
                drop(stdin);
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "ssh {} did not start the agent within {}; check that `ssh {} true` returns at once (a login script waiting for input hangs it)",
                    destination(target),
                    rollway_model::time::format_duration(deadline),
                    destination(target),
                )));
            }
        };
        match line.as_deref() {
            Ok(OK_LINE) => {}
            Ok(MISSING_LINE) => {
                drop(stdin);
                let _ = wait_for(&mut child, Duration::from_secs(10));
                return Ok(Launched::Missing);
            }
            other => {
                drop(stdin);
                let status = wait_for(&mut child, Duration::from_secs(10));
                let said = settle(&stderr);
                let got = match other {
                    Ok(l) if !l.is_empty() => format!("it printed {l:?}"),
                    Ok(_) => String::from("the connection closed"),
                    Err(e) => e.to_string(),
                };
                return Err(fail(format!(
                    "ssh {} failed ({got}{}){}; check that `ssh {}` works in batch mode (keys, known_hosts, [ssh] config)",
                    destination(target),
                    status.map(|s| format!(", {s}")).unwrap_or_default(),
                    if said.is_empty() {
                        String::new()
                    } else {
                        format!(": {said}")
                    },
                    destination(target),
                )));
            }
        }
        let (child, dog) = super::watchdog::for_child(child);
        let quiet = self.options.quiet();
        match AgentClient::connect(&host.name, Box::new(stdout), Box::new(stdin), stderr, dog, quiet) {
            Ok(client) => Ok(Launched::Agent(Box::new(AgentSession::new(
                client,
                Some(child),
                self.options.clone(),
            )))),
            Err(e) => {
                super::watchdog::reap(&child);
                Err(e)
            }
        }
    }

    fn upload(
        &self,
        host: &HostPlan,
        target: &SshTarget,
        exe: &Path,
        digest: &Sha256Digest,
        root: &str,
        name: &str,
    ) -> Result<(), HostError> {
        let fail = |detail: String| HostError {
            host: host.name.clone(),
            step: "copy agent",
            detail,
        };
        let script = format!(
            "set -e\n\
             d={root}/{AGENT_BIN_DIR}\n\
             mkdir -p \"$d\"\n\
             t=\"$d/.{name}.$$.tmp\"\n\
             trap 'rm -f \"$t\"' EXIT\n\
             cat > \"$t\"\n\
             s=$(sha256sum < \"$t\" | cut -c1-64)\n\
             if [ \"$s\" != {digest} ]; then echo \"the copy has SHA-256 $s, not {digest}\" >&2; exit 1; fi\n\
             chmod 0755 \"$t\"\n\
             mv -f \"$t\" \"$d/{name}\"\n\
             trap - EXIT"
        );
        let binary = File::open(exe).map_err(|e| fail(format!("cannot read {}: {e}", exe.display())))?;
        let mut cmd = self.command(target).map_err(fail)?;
        cmd.arg(format!("sh -c {}", sh_quote(&script)))
            .stdin(Stdio::from(binary))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| fail(format!("cannot run ssh: {e}")))?;
        let stderr = child.stderr.take().map(StderrTail::collect).unwrap_or_default();
        let status = child.wait().map_err(|e| fail(format!("ssh: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(fail(format!(
                "copying the agent to {} failed ({status}): {}",
                crate::layout::HostLayout::new(&host.root).agent_bin(name).display(),
                settle(&stderr)
            )))
        }
    }

    /// The guard of `host`'s multiplexed connection, made on first use.
    fn master(&self, host: &HostPlan) -> Result<std::sync::Arc<MasterGuard>, String> {
        let mut masters = self.masters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, g)) = masters.iter().find(|(h, _)| h.ssh == host.ssh) {
            return Ok(std::sync::Arc::clone(g));
        }
        let exit = match &host.ssh {
            Some(target) if !self.options.ssh.persist => {
                let cmd = self.command(target)?;
                // `-O exit` goes before the destination, which `command` put last.
                let mut args: Vec<OsString> = cmd.get_args().map(OsString::from).collect();
                let dest = args.pop().ok_or_else(|| String::from("no destination"))?;
                args.extend([OsString::from("-O"), OsString::from("exit"), dest]);
                Some((self.ssh_program.clone(), args))
            }
            _ => None,
        };
        let guard = std::sync::Arc::new(MasterGuard { exit });
        masters.push((host.clone(), std::sync::Arc::clone(&guard)));
        Ok(guard)
    }

    /// Ends the multiplexed connection to `host` (ssh keeps it 60 s after
    /// the last session otherwise).
    pub fn disconnect(&self, host: &HostPlan) -> Result<(), HostError> {
        let fail = |detail: String| HostError {
            host: host.name.clone(),
            step: "disconnect",
            detail,
        };
        let Some(target) = &host.ssh else { return Ok(()) };
        let cmd = self.command(target).map_err(fail)?;
        // `-O exit` goes before the destination, which `command` put last.
        let args: Vec<OsString> = cmd.get_args().map(OsString::from).collect();
        let (dest, opts) = args.split_last().ok_or_else(|| fail(String::from("no destination")))?;
        Command::new(&self.ssh_program)
            .args(opts)
            .arg("-O")
            .arg("exit")
            .arg(dest)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| fail(e.to_string()))?;
        Ok(())
    }
}

impl Connector for SshConnector {
    fn connect(&self, host: &HostPlan) -> Result<Box<dyn HostSession>, HostError> {
        Ok(Box::new(self.open(host)?))
    }
}

enum Launched {
    Agent(Box<AgentSession>),
    Missing,
}

fn destination(t: &SshTarget) -> String {
    match &t.user {
        Some(u) => format!("{u}@{}", t.host),
        None => t.host.clone(),
    }
}

/// Single-quoted for a POSIX shell.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// ROOT for the remote shell: `~/x` is the remote home's `x`, a relative
/// path is relative to the home too (where ssh starts), the rest quoted.
fn remote_path(root: &str) -> String {
    match root.strip_prefix("~/") {
        Some(rest) => format!("\"$HOME\"/{}", sh_quote(rest)),
        None if root == "~" => String::from("\"$HOME\""),
        None => sh_quote(root),
    }
}

/// One line from the launcher, read byte by byte so nothing of the agent's
/// first frame is taken with it.
fn read_line(r: &mut impl Read) -> io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < 256 {
        match r.read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8_lossy(&line).trim().to_owned())
}

fn wait_for(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                return child.wait().ok();
            }
        }
    }
}

/// What a finished child said on stderr, given its reader a moment to
/// catch up.
fn settle(tail: &StderrTail) -> String {
    std::thread::sleep(Duration::from_millis(50));
    tail.text()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_launcher_that_never_answers_fails_the_connect_step_in_bounded_time() {
        // A FAKE ssh (named as such): a script that says nothing and never
        // exits stands for a host whose login shell waits for input; no real
        // sshd here can be made to hang after authentication.
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let fake = tmp.path().join("fake-ssh");
        fs::write(&fake, "#!/bin/sh\nexec sleep 60\n").unwrap();
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
        let check = |grace_ms: u64, expected: &str| {
            let mut options = SessionOptions::default();
            options.ssh.connect_timeout = Duration::from_millis(200);
            options.ssh.launch_grace = Duration::from_millis(grace_ms);
            let mut c = SshConnector::new(tmp.path(), options);
            c.ssh_program = fake.clone();
            let plan = HostPlan {
                name: "deploy@quiet".into(),
                root: "/srv/x".into(),
                port: 3000,
                ssh: Some(SshTarget {
                    user: Some("deploy".into()),
                    host: "quiet".into(),
                    port: None,
                    config: None,
                }),
            };
            let start = Instant::now();
            let err = c.open(&plan).map(|_| ()).unwrap_err();
            eprintln!("a silent launcher failed after {:?}", start.elapsed());
            assert_eq!(err.step, "connect");
            assert!(err.to_string().contains(expected), "{err}");
        };
        check(300, "ssh deploy@quiet did not start the agent within 500ms");
    }

    #[test]
    fn remote_paths_are_quoted_for_the_shell() {
        for (root, want) in [
            ("/srv/app", "'/srv/app'"),
            ("~/apps/x", "\"$HOME\"/'apps/x'"),
            ("~", "\"$HOME\""),
            ("it's", r"'it'\''s'"),
            ("a b;rm -rf /", "'a b;rm -rf /'"),
        ] {
            assert_eq!(remote_path(root), want, "{root}");
        }
    }

    #[test]
    fn the_command_carries_batch_mode_multiplexing_and_the_config() {
        let tmp = tempfile::tempdir().unwrap();
        let c = SshConnector::new(tmp.path(), SessionOptions::default());
        let target = SshTarget {
            user: Some("deploy".into()),
            host: "app1".into(),
            port: Some(2222),
            config: Some(PathBuf::from("deploy/ssh_config")),
        };
        let cmd = c.command(&target).unwrap();
        let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        let control = format!(
            "ControlPath={}/ssh/%C",
            std::path::absolute(tmp.path()).unwrap().display()
        );
        assert_eq!(
            args,
            [
                "-o",
                "BatchMode=yes",
                "-o",
                "ControlMaster=auto",
                "-o",
                "ControlPersist=60",
                "-o",
                "ConnectTimeout=10",
                "-o",
                "ServerAliveInterval=5",
                "-o",
                "ServerAliveCountMax=3",
                "-o",
                control.as_str(),
                "-T",
                "-F",
                "deploy/ssh_config",
                "-p",
                "2222",
                "deploy@app1"
            ]
        );
        let mode = fs::metadata(tmp.path().join("ssh")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // Without a config or port nothing is added: the user's config decides.
        let plain = SshTarget {
            user: None,
            host: "app2".into(),
            port: None,
            config: None,
        };
        let args: Vec<String> = c
            .command(&plain)
            .unwrap()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args.last().map(String::as_str), Some("app2"));
        assert!(!args.iter().any(|a| a == "-F" || a == "-p"));
        let hostile = SshTarget {
            host: "-oProxyCommand=x".into(),
            ..plain
        };
        assert!(c.command(&hostile).is_err());
    }
}
