//! The deployer's end of the agent protocol over any pair of byte streams:
//! one call per request, the agent's error messages turned into
//! [`HostError`]s naming the host and the step, and every byte sent counted.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use super::watchdog::{Watchdog, Watched};
use crate::agent::protocol::{self, DataWriter, ManifestForm, PROTOCOL, ReleaseInfo, Request, Response};
use crate::host::HostError;

/// How long an agent may stay silent while a request is outstanding (no
/// byte moving either way), beyond the request's own timeout.
pub const DEFAULT_QUIET: Duration = Duration::from_secs(120);

/// Why a media stream failed: on the host (or the connection), or on the
/// deployer's side of it (writing the backup, reading it back).
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("{0}")]
    Local(io::Error),
}

/// Counts the bytes written through it.
#[derive(Debug)]
pub struct Counting<W> {
    inner: W,
    pub count: u64,
}

impl<W> Counting<W> {
    pub fn new(inner: W) -> Self {
        Self { inner, count: 0 }
    }
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The last lines a child wrote to stderr (ssh's own errors, an agent that
/// could not start), for error messages.
#[derive(Debug, Clone, Default)]
pub struct StderrTail(Arc<Mutex<VecDeque<String>>>);

impl StderrTail {
    const LINES: usize = 20;

    /// Collects `stream` on a thread of its own. The thread is never joined:
    /// a daemon the child started may hold the stream open for a long time.
    pub fn collect(stream: impl Read + Send + 'static) -> Self {
        let tail = Self::default();
        let lines = Arc::clone(&tail.0);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).split(b'\n') {
                let Ok(line) = line else { break };
                let mut l = lines.lock().unwrap_or_else(|p| p.into_inner());
                if l.len() == Self::LINES {
                    l.pop_front();
                }
                l.push_back(String::from_utf8_lossy(&line).trim_end().to_owned());
            }
        });
        tail
    }

    pub fn text(&self) -> String {
        let l = self.0.lock().unwrap_or_else(|p| p.into_inner());
        l.iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join("; ")
    }
}

type Reader = BufReader<Watched<Box<dyn Read + Send>>>;
type Writer = Counting<BufWriter<Watched<Box<dyn Write + Send>>>>;

/// A conversation with one agent.
pub struct AgentClient {
    host: String,
    reader: Reader,
    writer: Writer,
    stderr: StderrTail,
    /// Stops the agent when a request's answer is overdue.
    dog: Watchdog,
    /// How long the agent may stay silent while a request is outstanding.
    quiet: Duration,
    /// The agent's version, from its hello.
    pub agent_version: String,
}

impl std::fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentClient")
            .field("host", &self.host)
            .field("agent_version", &self.agent_version)
            .finish()
    }
}

impl AgentClient {
    /// Greets the agent at the other end of `reader`/`writer` and checks
    /// that it speaks this protocol; `dog` stops the agent when it stays
    /// silent for `quiet` while a request is outstanding.
    pub fn connect(
        host: &str,
        reader: Box<dyn Read + Send>,
        writer: Box<dyn Write + Send>,
        stderr: StderrTail,
        dog: Watchdog,
        quiet: Duration,
    ) -> Result<Self, HostError> {
        let reader = Watched {
            inner: reader,
            dog: dog.clone(),
        };
        let writer = Watched {
            inner: writer,
            dog: dog.clone(),
        };
        let mut client = Self {
            host: host.to_owned(),
            reader: BufReader::with_capacity(64 << 10, reader),
            writer: Counting {
                inner: BufWriter::with_capacity(1 << 20, writer),
                count: 0,
            },
            stderr,
            dog,
            quiet,
            agent_version: String::new(),
        };
        let hello = Request::Hello {
            protocol: PROTOCOL,
            version: protocol::version(),
        };
        match client.call("connect", &hello)? {
            Response::Hello { protocol, version } if protocol == PROTOCOL => {
                client.agent_version = version;
                Ok(client)
            }
            Response::Hello { version, .. } => Err(client.error(
                "connect",
                format!(
                    "the agent is {version}, this deployer is {}; they cannot talk",
                    protocol::version()
                ),
            )),
            other => Err(client.unexpected("connect", &other)),
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Bytes written to the agent so far.
    pub fn bytes_sent(&self) -> u64 {
        self.writer.count
    }

    /// Whether the agent was stopped for not answering in time.
    pub fn stopped(&self) -> bool {
        self.dog.fired().is_some()
    }

    pub(crate) fn error(&self, step: &'static str, detail: String) -> HostError {
        // Once the watchdog stopped the agent, whatever broke broke because
        // of that: say so rather than "broken pipe".
        let detail = match self.dog.fired() {
            Some(quiet) => format!(
                "the agent did not answer within {} (no byte moved either way), so rollway stopped it; check the host (load, a full disk, a stuck agent), then try again",
                rollway_model::time::format_duration(quiet)
            ),
            None => detail,
        };
        HostError {
            host: self.host.clone(),
            step,
            detail,
        }
    }

    /// A broken stream: what the agent (or ssh) said on stderr says why.
    fn broken(&self, step: &'static str, e: &dyn std::fmt::Display) -> HostError {
        let said = self.stderr.text();
        let detail = if said.is_empty() {
            format!("the connection to the agent broke ({e})")
        } else {
            format!("the connection to the agent broke ({e}): {said}")
        };
        self.error(step, detail)
    }

    pub(crate) fn unexpected(&self, step: &'static str, got: &Response) -> HostError {
        match got {
            Response::Error { message } => self.error(step, message.clone()),
            other => self.error(step, format!("the agent answered out of turn: {other:?}")),
        }
    }

    /// Sends a request without waiting (a data stream may follow).
    pub(crate) fn send(&mut self, step: &'static str, request: &Request) -> Result<(), HostError> {
        if self.stopped() {
            return Err(self.error(step, String::new()));
        }
        self.dog.arm(self.quiet + request.own_timeout());
        protocol::send(&mut self.writer, request).map_err(|e| self.broken(step, &e))
    }

    /// A data stream to the agent; `finish` it.
    pub(crate) fn data(&mut self) -> DataWriter<&mut Writer> {
        DataWriter::new(&mut self.writer)
    }

    /// Flushes and reads one response.
    pub(crate) fn receive(&mut self, step: &'static str) -> Result<Response, HostError> {
        self.writer.flush().map_err(|e| self.broken(step, &e))?;
        match protocol::recv::<Response>(&mut self.reader) {
            Ok(Some(r)) => {
                self.dog.disarm();
                Ok(r)
            }
            Ok(None) => Err(self.broken(step, &"it closed the stream")),
            Err(e) => Err(self.broken(step, &e)),
        }
    }

    /// One request, one response; an agent error becomes a `HostError`.
    pub(crate) fn call(&mut self, step: &'static str, request: &Request) -> Result<Response, HostError> {
        self.send(step, request)?;
        match self.receive(step)? {
            Response::Error { message } => Err(self.error(step, message)),
            r => Ok(r),
        }
    }

    /// The host's releases (with their content digests) and `current`.
    pub fn state(&mut self) -> Result<(Vec<ReleaseInfo>, Option<String>), HostError> {
        match self.call("state", &Request::State)? {
            Response::State { releases, current } => Ok((releases, current)),
            other => Err(self.unexpected("state", &other)),
        }
    }

    /// Sends a release's manifest as `form` with `manifest_bytes` (canonical
    /// bytes; compressed here) and returns the agent's plan: indexes of
    /// files needed whole, as deltas, and how many were linked (`dry_run`:
    /// would be; then nothing is staged).
    pub fn prepare(
        &mut self,
        release: &str,
        form: ManifestForm,
        base: Option<String>,
        shared: Vec<String>,
        manifest_bytes: &[u8],
        dry_run: bool,
    ) -> Result<(Vec<u32>, Vec<u32>, u64), HostError> {
        const STEP: &str = "ship";
        self.send(
            STEP,
            &Request::Prepare {
                release: release.to_owned(),
                manifest: form,
                base,
                shared,
                dry_run,
            },
        )?;
        let compressed = zstd::bulk::compress(manifest_bytes, 3).map_err(|e| self.error(STEP, e.to_string()))?;
        let mut data = self.data();
        let sent = data.write_all(&compressed).and_then(|()| data.finish().map(|_| ()));
        sent.map_err(|e| self.broken(STEP, &e))?;
        match self.receive(STEP)? {
            Response::Plan { full, delta, linked } => Ok((full, delta, linked)),
            other => Err(self.unexpected(STEP, &other)),
        }
    }

    /// Streams the directory `path` on the host (absolute, or relative to
    /// its root) as a zstd-compressed tar into `out`; returns its entries.
    /// A failure of `out` is `Err(Ok(io error))` once the agent's stream was
    /// read to its end (the conversation stays in step).
    pub fn pack_dir(&mut self, path: &str, out: &mut dyn Write) -> Result<u64, MediaError> {
        const STEP: &str = "backup";
        match self.receive_stream(STEP, &Request::PackDir { path: path.to_owned() }, out)? {
            (Response::Packed { entries }, _) => Ok(entries),
            (other, _) => Err(self.unexpected(STEP, &other).into()),
        }
    }

    /// Sends `request`, which the agent answers with a data stream, copied
    /// into `out`, then its answer: that answer and the bytes that arrived.
    /// Bytes moving keep the watchdog quiet; a stalled agent still trips it.
    fn receive_stream(
        &mut self,
        step: &'static str,
        request: &Request,
        out: &mut dyn Write,
    ) -> Result<(Response, u64), MediaError> {
        match self.call(step, request)? {
            Response::Streaming => {}
            other => return Err(self.unexpected(step, &other).into()),
        }
        self.dog.arm(self.quiet);
        let mut data = protocol::DataReader::new(&mut self.reader);
        let copied = io::copy(&mut data, out);
        let drained = data.drain();
        let received = data.bytes;
        if let Err(e) = drained {
            return Err(self.broken(step, &e).into());
        }
        if let Err(e) = copied {
            // Either side may have failed: a broken agent stream was caught
            // by the drain above, so this is the deployer's writer.
            let _ = self.receive(step);
            return Err(MediaError::Local(e));
        }
        Ok((self.receive(step)?, received))
    }

    /// Sends a zstd-compressed tar from `input` to be unpacked into the
    /// directory `path` on the host (missing or empty unless `force`);
    /// returns its entries. A failure of `input` ends the stream early,
    /// which the agent refuses, leaving the directory as it was.
    pub fn unpack_dir(&mut self, path: &str, force: bool, input: &mut dyn Read) -> Result<u64, MediaError> {
        const STEP: &str = "restore";
        let request = Request::UnpackDir {
            path: path.to_owned(),
            force,
        };
        match self.send_stream(STEP, &request, input)? {
            Response::Packed { entries } => Ok(entries),
            other => Err(self.unexpected(STEP, &other).into()),
        }
    }

    /// Sends `request` followed by `input` as a data stream, then reads
    /// the agent's answer. A local read failure still ends the stream, cut
    /// short, so the agent fails rather than accepts part of it.
    fn send_stream(
        &mut self,
        step: &'static str,
        request: &Request,
        input: &mut dyn Read,
    ) -> Result<Response, MediaError> {
        self.send(step, request)?;
        let mut data = self.data();
        let copied = io::copy(input, &mut data);
        if let Err(e) = data.finish() {
            return Err(self.broken(step, &e).into());
        }
        let answer = self.receive(step)?;
        if let Err(e) = copied {
            return Err(MediaError::Local(e));
        }
        Ok(answer)
    }

    /// Has the host dump the database whose URL is `url_var` in its current
    /// release's env file, age-encrypted there to `recipients` (public
    /// keys), into `out`; returns the bytes received. A failure of `out` is
    /// `MediaError::Local` once the agent's stream was read to its end.
    pub fn dump_database(
        &mut self,
        url_var: &str,
        recipients: &[String],
        out: &mut dyn Write,
    ) -> Result<u64, MediaError> {
        const STEP: &str = "database backup";
        let request = Request::DumpDatabase {
            url_var: url_var.to_owned(),
            recipients: recipients.to_vec(),
        };
        match self.receive_stream(STEP, &request, out)? {
            (Response::Dumped { bytes }, received) if bytes == received => Ok(bytes),
            (Response::Dumped { bytes }, received) => Err(self
                .error(
                    STEP,
                    format!("the agent sent {bytes} bytes of the dump and {received} arrived"),
                )
                .into()),
            (other, _) => Err(self.unexpected(STEP, &other).into()),
        }
    }

    /// Sends a clear `pg_dump -Fc` archive from `input` to be restored on
    /// the host into the database of `url_var` in its current release's env
    /// file (empty unless `force`), in one transaction. A failure of
    /// `input` cuts the stream short, which `pg_restore` refuses, leaving
    /// the database as it was.
    pub fn restore_database(&mut self, url_var: &str, force: bool, input: &mut dyn Read) -> Result<(), MediaError> {
        const STEP: &str = "database restore";
        let request = Request::RestoreDatabase {
            url_var: url_var.to_owned(),
            force,
        };
        match self.send_stream(STEP, &request, input)? {
            Response::Done => Ok(()),
            other => Err(self.unexpected(STEP, &other).into()),
        }
    }

    /// Ends the conversation (best effort).
    pub fn bye(&mut self) {
        if !self.stopped() && self.send("disconnect", &Request::Bye).is_ok() {
            let _ = self.receive("disconnect");
        }
    }
}
