//! The agent's wire protocol: frames of a 4-byte big-endian length and that
//! many bytes over any byte stream (a child's stdin/stdout, an ssh channel).
//! A request or response is one frame of JSON; file data and manifests
//! follow their request as a data stream — frames of raw bytes ended by an
//! empty frame — so large files never sit whole in one frame.
//!
//! A conversation starts with [`Request::Hello`]: both sides name their
//! protocol number and version, and the agent refuses a deployer of another
//! protocol. Every request gets exactly one response except
//! [`Request::File`], which is answered (with any failure of any file) by
//! the [`Request::Commit`] that ends the release, so files stream without a
//! round trip each.

use std::io::{self, Read, Write};

use rollway_model::Sha256Digest;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::host::{ServiceCheck, ServiceOp, ServiceStatus};
use crate::hoststats::HostStats;
use crate::probe::ProbeResult;
use crate::supervisor::{LogChunk, LogCursor, ServiceSpec};

/// Bumped on any incompatible change of the messages below.
pub const PROTOCOL: u32 = 5;

/// The largest JSON frame accepted (a manifest never travels as JSON).
pub const MAX_MESSAGE: usize = 16 << 20;

/// The largest data frame accepted.
pub const MAX_CHUNK: usize = 4 << 20;

/// The data frame size writers use.
pub const CHUNK: usize = 1 << 20;

/// The largest manifest accepted, decompressed (about a million paths).
pub const MAX_MANIFEST: u64 = 256 << 20;

/// This build's version as the other side sees it.
pub fn version() -> String {
    format!("rollway {} (protocol {PROTOCOL})", env!("CARGO_PKG_VERSION"))
}

/// What the deployer asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Hello {
        protocol: u32,
        version: String,
    },
    /// The host's releases and `current`.
    State,
    /// Starts a release: followed by a data stream holding the manifest's
    /// canonical bytes zstd-compressed ([`ManifestForm::Full`]), or only the
    /// changed entries as a manifest of their own ([`ManifestForm::Diff`]).
    /// Answered by [`Response::Plan`]: what the host still needs.
    Prepare {
        release: String,
        manifest: ManifestForm,
        /// The release whose files changed files are deltas against.
        base: Option<String>,
        /// `[service] shared` directories, linked to `ROOT/shared/<dir>`.
        shared: Vec<String>,
        /// Only answer the plan: nothing is written or staged (`--dry-run`).
        #[serde(default)]
        dry_run: bool,
    },
    /// One file of the prepared release (by its index in the manifest),
    /// followed by a data stream with its body. Not answered by itself.
    File {
        index: u32,
        encoding: Encoding,
    },
    /// Verifies the prepared release against its manifest and moves it to
    /// `ROOT/releases/<release>`; nothing is left when it fails.
    Commit {
        release: String,
    },
    /// Drops the prepared release.
    Abort {
        release: String,
    },
    /// Writes `ROOT/envs/<release>.env`, mode 0600.
    WriteEnv {
        release: String,
        text: String,
    },
    /// Points `ROOT/current` at the release atomically.
    Switch {
        release: String,
    },
    Service {
        action: ServiceOp,
        spec: ServiceSpec,
    },
    ServiceStatus {
        spec: ServiceSpec,
    },
    LogTail {
        spec: ServiceSpec,
        lines: usize,
    },
    /// CPU counters, memory and the disk holding the release root
    /// (answered with `HostStats`).
    HostStats,
    /// The service's output after `cursor` (answered with `LogChunk`).
    LogRead {
        spec: ServiceSpec,
        cursor: Option<LogCursor>,
        max_bytes: usize,
    },
    Probe {
        port: u16,
        path: String,
        timeout_ms: u64,
    },
    /// The service's start count, a probe of its port when `path` is set,
    /// and who listens on the port (answered with `Check`).
    Check {
        spec: ServiceSpec,
        path: Option<String>,
        timeout_ms: u64,
    },
    /// Removes a release (never the current one), its env file and manifest.
    Remove {
        release: String,
    },
    /// Keeps the newest `keep` releases, `protect` and the current one.
    Prune {
        keep: usize,
        protect: Vec<String>,
    },
    /// Runs `command` (`sh -c`) in `ROOT/releases/<release>` with that
    /// release's env file (or `env`'s) and `PORT`, as its service would start; stdin is
    /// empty; bounded by `timeout_ms`. Answered by [`Response::Ran`].
    Run {
        release: String,
        /// The env file's name under `ROOT/envs/` when it is not the
        /// release's own (a release switched back to runs with the env file
        /// of the deployment that returned to it).
        #[serde(default)]
        env: Option<String>,
        command: String,
        port: u16,
        timeout_ms: u64,
    },
    /// Packs the directory `path` (absolute, or relative to ROOT) as a
    /// zstd-compressed tar: answered by [`Response::Streaming`] and a data
    /// stream, then [`Response::Packed`] (or an error, when packing broke
    /// midway); refused up front with an error when it cannot start.
    PackDir {
        path: String,
    },
    /// Followed by a data stream of a zstd-compressed tar, unpacked into
    /// the directory `path` (absolute, or relative to ROOT), which must be
    /// missing or empty unless `force`. Answered by [`Response::Packed`].
    UnpackDir {
        path: String,
        force: bool,
    },
    /// `pg_dump -Fc` of the PostgreSQL database whose URL is the variable
    /// `url_var` of the current release's env file on the host (the URL
    /// never crosses the wire), age-encrypted on the host to `recipients`
    /// (public keys, `age1…` or ssh): answered by [`Response::Streaming`]
    /// and a data stream of the encrypted dump, then [`Response::Dumped`]
    /// (or an error, when the dump broke midway); refused up front with an
    /// error when it cannot start.
    DumpDatabase {
        url_var: String,
        recipients: Vec<String>,
    },
    /// Followed by a data stream of a clear `pg_dump -Fc` archive, restored
    /// by `pg_restore` in one transaction into the database of the current
    /// release's `url_var`, which must be empty unless `force` (then its
    /// objects are dropped first). Answered by [`Response::Done`].
    RestoreDatabase {
        url_var: String,
        force: bool,
    },
    /// Ends the conversation.
    Bye,
}

impl Request {
    /// How long the agent may take by the request's own terms (a probe's
    /// or a command's timeout), on top of the quiet limit every answer has.
    pub fn own_timeout(&self) -> std::time::Duration {
        match self {
            Self::Probe { timeout_ms, .. } | Self::Check { timeout_ms, .. } | Self::Run { timeout_ms, .. } => {
                std::time::Duration::from_millis(*timeout_ms)
            }
            _ => std::time::Duration::ZERO,
        }
    }
}

/// How the manifest of a new release travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "form", rename_all = "snake_case")]
pub enum ManifestForm {
    /// The whole canonical manifest.
    Full,
    /// The entries added or changed against the manifest of release `from`
    /// (which the host keeps), and the paths removed; the result must have
    /// `content_digest`.
    Diff {
        from: String,
        removed: Vec<String>,
        content_digest: Sha256Digest,
    },
}

/// How a file body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// zstd-compressed whole.
    Zstd,
    /// A zstd frame compressed with the base release's file of the same path
    /// as its reference prefix (zstd's patch-from).
    ZstdDelta,
}

/// One release on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseInfo {
    pub id: String,
    /// SHA-256 of its stored manifest: equal content, equal digest.
    pub content_digest: Option<Sha256Digest>,
}

/// What the agent answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Response {
    Hello {
        protocol: u32,
        version: String,
    },
    State {
        /// Oldest first.
        releases: Vec<ReleaseInfo>,
        current: Option<String>,
    },
    /// Indexes (into the manifest) of the files the host still needs:
    /// `full` without a usable earlier version, `delta` with the base
    /// release's file of the same path to patch. Every other file was
    /// hard-linked (`linked` of them).
    Plan {
        full: Vec<u32>,
        delta: Vec<u32>,
        linked: u64,
    },
    Done,
    Switched {
        previous: Option<String>,
    },
    Service {
        status: ServiceStatus,
    },
    Lines {
        lines: Vec<String>,
    },
    LogChunk {
        chunk: LogChunk,
    },
    HostStats {
        stats: HostStats,
    },
    Probe {
        result: ProbeResult,
    },
    Check {
        check: ServiceCheck,
    },
    Removed {
        releases: Vec<String>,
    },
    Ran {
        result: crate::host::RunResult,
    },
    /// A data stream follows.
    Streaming,
    /// A directory packed or unpacked: its entries.
    Packed {
        entries: u64,
    },
    /// A database dumped: the bytes of the encrypted stream sent.
    Dumped {
        bytes: u64,
    },
    /// The request failed on the host; `message` says what and where.
    Error {
        message: String,
    },
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("frame of {len} bytes is larger than the {max} allowed; the peer is not a rollway agent of this version")]
    TooLarge { len: usize, max: usize },
    #[error("the stream ended inside a frame")]
    Truncated,
    #[error("message is not understood ({0}); the peer speaks another protocol version")]
    Decode(String),
}

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(bytes)
}

/// Reads one frame; `None` at a clean end of stream (before a length).
pub fn read_frame(r: &mut impl Read, max: usize) -> Result<Option<Vec<u8>>, ProtocolError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(ProtocolError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(ProtocolError::TooLarge { len, max });
    }
    // The buffer grows with the bytes that arrive, not with the length a
    // peer announces: four bytes must not make the agent allocate 16 MiB.
    let mut buf = Vec::with_capacity(len.min(64 * 1024));
    let read = r.take(len as u64).read_to_end(&mut buf)?;
    if read < len {
        return Err(ProtocolError::Truncated);
    }
    Ok(Some(buf))
}

/// Writes one message as a JSON frame (not flushed).
pub fn send<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec(msg).map_err(io::Error::other)?;
    write_frame(w, &bytes)
}

/// Reads one message; `None` at a clean end of stream.
pub fn recv<T: DeserializeOwned>(r: &mut impl Read) -> Result<Option<T>, ProtocolError> {
    match read_frame(r, MAX_MESSAGE)? {
        None => Ok(None),
        Some(bytes) if bytes.is_empty() => Err(ProtocolError::Decode(String::from("empty message"))),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ProtocolError::Decode(e.to_string())),
    }
}

/// Writes a data stream: buffered into frames of [`CHUNK`] bytes;
/// [`DataWriter::finish`] writes the empty frame that ends it.
#[derive(Debug)]
pub struct DataWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: Write> DataWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn flush_frame(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            write_frame(&mut self.inner, &self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Ends the stream; returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_frame()?;
        write_frame(&mut self.inner, &[])?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for DataWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.flush_frame()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_frame()?;
        self.inner.flush()
    }
}

/// Reads a data stream up to its empty frame. Whoever stops early calls
/// [`DataReader::drain`] so the next message starts where it should.
#[derive(Debug)]
pub struct DataReader<'a, R: Read> {
    inner: &'a mut R,
    frame: Vec<u8>,
    pos: usize,
    ended: bool,
    /// Bytes of data (frame payloads) read so far.
    pub bytes: u64,
}

impl<'a, R: Read> DataReader<'a, R> {
    pub fn new(inner: &'a mut R) -> Self {
        Self {
            inner,
            frame: Vec::new(),
            pos: 0,
            ended: false,
            bytes: 0,
        }
    }

    fn next_frame(&mut self) -> io::Result<()> {
        match read_frame(self.inner, MAX_CHUNK) {
            Ok(Some(f)) if f.is_empty() => self.ended = true,
            Ok(Some(f)) => {
                self.bytes += f.len() as u64;
                self.frame = f;
                self.pos = 0;
            }
            Ok(None) | Err(ProtocolError::Truncated) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the stream ended inside a data stream",
                ));
            }
            Err(ProtocolError::Io(e)) => return Err(e),
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
        }
        Ok(())
    }

    /// Reads and drops what is left of the stream.
    pub fn drain(&mut self) -> io::Result<()> {
        while !self.ended {
            self.next_frame()?;
        }
        Ok(())
    }

    /// Reads the rest of the stream, refusing more than `max` bytes.
    pub fn read_to_vec(&mut self, max: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.take(max + 1).read_to_end(&mut out)?;
        if out.len() as u64 > max {
            self.drain()?;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("data stream is larger than {max} bytes"),
            ));
        }
        Ok(out)
    }
}

impl<R: Read> Read for DataReader<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.frame.len() {
            if self.ended {
                return Ok(0);
            }
            self.next_frame()?;
            if self.ended {
                return Ok(0);
            }
        }
        let n = out.len().min(self.frame.len() - self.pos);
        out[..n].copy_from_slice(&self.frame[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_short_frame_is_truncated_whatever_length_it_announces() {
        // 16 MiB announced, 3 bytes sent: truncated, with a buffer no bigger
        // than what arrived could need.
        let mut input: Vec<u8> = (16u32 * 1024 * 1024).to_be_bytes().to_vec();
        input.extend_from_slice(b"abc");
        let err = read_frame(&mut input.as_slice(), 16 * 1024 * 1024).unwrap_err();
        assert!(matches!(err, ProtocolError::Truncated), "{err}");
        let mut whole: Vec<u8> = 3u32.to_be_bytes().to_vec();
        whole.extend_from_slice(b"abc");
        assert_eq!(read_frame(&mut whole.as_slice(), 16).unwrap(), Some(b"abc".to_vec()));
    }

    #[test]
    fn messages_and_data_streams_round_trip() {
        let mut wire = Vec::new();
        let reqs = [
            Request::Hello {
                protocol: PROTOCOL,
                version: version(),
            },
            Request::File {
                index: 7,
                encoding: Encoding::ZstdDelta,
            },
            Request::Prune {
                keep: 2,
                protect: vec!["a".into()],
            },
        ];
        let body: Vec<u8> = (0..(CHUNK * 2 + 17)).map(|i| (i % 251) as u8).collect();
        for r in &reqs {
            send(&mut wire, r).unwrap();
            let mut d = DataWriter::new(&mut wire);
            d.write_all(&body).unwrap();
            d.finish().unwrap();
        }
        let mut r = &wire[..];
        for want in &reqs {
            let got: Request = recv(&mut r).unwrap().unwrap();
            assert_eq!(&got, want);
            let mut d = DataReader::new(&mut r);
            assert_eq!(d.read_to_vec(u64::MAX - 1).unwrap(), body);
            assert_eq!(d.bytes, body.len() as u64);
        }
        assert!(recv::<Request>(&mut r).unwrap().is_none());
    }

    fn check_bad(wire: &[u8], expected: &str) {
        let err = recv::<Request>(&mut &wire[..]).unwrap_err().to_string();
        assert!(err.contains(expected), "{wire:?}: {err}");
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        check_bad(&[0, 0], "ended inside a frame");
        check_bad(&[0, 0, 0, 5, b'{'], "ended inside a frame");
        check_bad(&[0xff, 0xff, 0xff, 0xff], "larger than");
        check_bad(&[0, 0, 0, 2, b'{', b'}'], "not understood");
        check_bad(&[0, 0, 0, 0], "empty message");
        let mut wire = Vec::new();
        send(&mut wire, &serde_json::json!({"op": "format_disk"})).unwrap();
        check_bad(&wire, "not understood");
    }

    #[test]
    fn an_abandoned_data_stream_can_be_drained() {
        let mut wire = Vec::new();
        let mut d = DataWriter::new(&mut wire);
        d.write_all(&vec![1u8; CHUNK + 5]).unwrap();
        d.finish().unwrap();
        send(&mut wire, &Request::State).unwrap();
        let mut r = &wire[..];
        let mut d = DataReader::new(&mut r);
        let mut first = [0u8; 10];
        d.read_exact(&mut first).unwrap();
        d.drain().unwrap();
        assert_eq!(recv::<Request>(&mut r).unwrap(), Some(Request::State));
        // Too much data is refused and skipped.
        let mut wire = Vec::new();
        let mut d = DataWriter::new(&mut wire);
        d.write_all(&[2u8; 100]).unwrap();
        d.finish().unwrap();
        send(&mut wire, &Request::Bye).unwrap();
        let mut r = &wire[..];
        let err = DataReader::new(&mut r).read_to_vec(10).unwrap_err();
        assert!(err.to_string().contains("larger than 10"), "{err}");
        assert_eq!(recv::<Request>(&mut r).unwrap(), Some(Request::Bye));
    }
}
