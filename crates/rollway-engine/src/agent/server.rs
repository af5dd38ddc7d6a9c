//! The agent's side of the protocol: one request at a time against ROOT,
//! every failure answered as an error message that says what failed where
//! (the agent never panics on bad input, and stops only when the stream
//! ends, says bye, or can no longer be read in step).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use rollway_artifact::manifest::{self, EntryKind, Manifest};
use rollway_artifact::release::{ReleaseWriter, SourceDir, WrittenFile, remove_tree};
use rollway_model::Sha256Digest;
use sha2::{Digest as _, Sha256};

use super::database::Databases;
use super::protocol::{
    DataReader, Encoding, MAX_MANIFEST, ManifestForm, PROTOCOL, ProtocolError, ReleaseInfo, Request, Response, recv,
    send, version,
};
use crate::host::{ServiceCheck, ServiceOp, ServiceStatus};
use crate::layout::HostLayout;
use crate::supervisor::{ServicePaths, ServiceSpec, SupervisorError, owner, supervisor};

/// The most of a service's output one `LogRead` returns: bounds the
/// agent's memory and the answer, whatever the caller asks for.
const MAX_LOG_READ: usize = 4 * 1024 * 1024;

/// The largest file patched from a reference (the reference and the
/// result are both held in memory); larger changed files travel whole.
pub const MAX_DELTA_FILE: u64 = 1 << 30;

/// Why the agent stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("agent root {}: {source}; check that the directory can be created and written", path.display())]
    Root { path: PathBuf, source: io::Error },
    #[error("agent protocol: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("agent: writing to the deployer failed: {0}")]
    Io(#[from] io::Error),
}

/// Serves one deployer until the stream ends or it says bye; `databases`
/// are the PostgreSQL tools for database backups taken on this host.
pub fn serve(root: &Path, input: impl Read, output: impl Write, databases: &dyn Databases) -> Result<(), AgentError> {
    let root = std::path::absolute(root).map_err(|source| AgentError::Root {
        path: root.to_owned(),
        source,
    })?;
    let layout = HostLayout::new(root);
    fs::create_dir_all(layout.releases()).map_err(|source| AgentError::Root {
        path: layout.root.clone(),
        source,
    })?;
    let mut agent = Agent {
        layout,
        staging: None,
        stray_error: None,
        greeted: false,
        manifests: RefCell::new(HashMap::new()),
    };
    let mut input = BufReader::with_capacity(1 << 20, input);
    let mut output = BufWriter::new(output);
    loop {
        let request = match recv::<Request>(&mut input) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(ProtocolError::Decode(detail)) => {
                // The stream may be out of step (a data stream may follow an
                // unknown request): say why, then stop.
                send(
                    &mut output,
                    &Response::Error {
                        message: format!(
                            "request not understood ({detail}); the deployer and this agent ({}) differ",
                            version()
                        ),
                    },
                )?;
                output.flush()?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let response = match request {
            Request::Hello {
                protocol,
                version: theirs,
            } => {
                if protocol != PROTOCOL {
                    send(
                        &mut output,
                        &Response::Error {
                            message: format!(
                                "this agent is {} and the deployer is {theirs}: protocol {PROTOCOL} ≠ {protocol}; deploy with the same rollway version or let it upload its own agent",
                                version()
                            ),
                        },
                    )?;
                    output.flush()?;
                    return Ok(());
                }
                agent.greeted = true;
                Response::Hello {
                    protocol: PROTOCOL,
                    version: version(),
                }
            }
            Request::Bye => {
                send(&mut output, &Response::Done)?;
                output.flush()?;
                return Ok(());
            }
            Request::File { index, encoding } => {
                // Answered by the commit, so files stream without a round trip.
                agent.receive_file(index, encoding, &mut input)?;
                continue;
            }
            Request::Prepare {
                release,
                manifest,
                base,
                shared,
                dry_run,
            } => {
                let mut data = DataReader::new(&mut input);
                let bytes = read_compressed(&mut data);
                data.drain()?;
                match (agent.greeted, bytes) {
                    (false, _) => not_greeted(),
                    (true, Err(e)) => error(format!("release {release}: the manifest could not be read: {e}")),
                    (true, Ok(bytes)) => agent
                        .prepare(&release, &manifest, base.as_deref(), &shared, &bytes, dry_run)
                        .unwrap_or_else(error),
                }
            }
            Request::UnpackDir { path, force } => {
                let mut data = DataReader::new(&mut input);
                let response = if agent.greeted {
                    let dir = super::media::resolve(&agent.layout.root, &path);
                    match super::media::unpack(&dir, force, &mut data) {
                        Ok(entries) => Response::Packed { entries },
                        Err(e) => error(format!("restore into {}: {e}", dir.display())),
                    }
                } else {
                    not_greeted()
                };
                data.drain()?;
                response
            }
            Request::RestoreDatabase { url_var, force } => {
                let mut data = DataReader::new(&mut input);
                let response = if agent.greeted {
                    let current = agent.current();
                    match super::database::url_of(&agent.layout, current.as_deref(), &url_var)
                        .and_then(|url| super::database::restore(databases, &url, force, &mut data))
                    {
                        Ok(()) => Response::Done,
                        Err(e) => error(format!("restore of the database of {url_var}: {e}")),
                    }
                } else {
                    not_greeted()
                };
                data.drain()?;
                response
            }
            Request::DumpDatabase { url_var, recipients } if agent.greeted => {
                let current = agent.current();
                let ready = super::database::url_of(&agent.layout, current.as_deref(), &url_var)
                    .and_then(|url| Ok((url, super::database::recipients(&recipients)?)));
                match ready {
                    Err(e) => error(format!("backup of the database of {url_var}: {e}")),
                    Ok((url, recipients)) => {
                        send(&mut output, &Response::Streaming)?;
                        let mut data = super::protocol::DataWriter::new(&mut output);
                        let mut counted = crate::target::client::Counting::new(&mut data);
                        let dumped = super::database::dump_encrypted(databases, &url, &recipients, &mut counted);
                        let bytes = counted.count;
                        data.finish()?;
                        match dumped {
                            Ok(()) => Response::Dumped { bytes },
                            Err(e) => error(format!("backup of the database of {url_var}: {e}")),
                        }
                    }
                }
            }
            Request::PackDir { path } if agent.greeted => {
                let dir = super::media::resolve(&agent.layout.root, &path);
                if let Err(e) = fs::read_dir(&dir) {
                    error(format!("cannot read the directory {}: {e}", dir.display()))
                } else {
                    send(&mut output, &Response::Streaming)?;
                    let mut data = super::protocol::DataWriter::new(&mut output);
                    let packed = super::media::pack(&dir, &mut data);
                    data.finish()?;
                    match packed {
                        Ok(entries) => Response::Packed { entries },
                        Err(e) => error(format!("backup of {}: {e}", dir.display())),
                    }
                }
            }
            other if !agent.greeted => {
                let _ = other;
                not_greeted()
            }
            other => agent.handle(other).unwrap_or_else(error),
        };
        send(&mut output, &response)?;
        output.flush()?;
    }
}

fn error(message: String) -> Response {
    Response::Error { message }
}

fn not_greeted() -> Response {
    error(String::from(
        "say hello first: the agent checks the protocol version before anything else",
    ))
}

/// Reads a zstd-compressed data stream, refusing more than [`MAX_MANIFEST`]
/// bytes either way.
fn read_compressed<R: Read>(data: &mut DataReader<'_, R>) -> io::Result<Vec<u8>> {
    let compressed = data.read_to_vec(MAX_MANIFEST)?;
    let mut out = Vec::new();
    zstd::stream::read::Decoder::new(&compressed[..])?
        .take(MAX_MANIFEST + 1)
        .read_to_end(&mut out)?;
    if out.len() as u64 > MAX_MANIFEST {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "manifest is larger than 256 MiB",
        ));
    }
    Ok(out)
}

/// A release id names one directory: letters, digits, `.`, `_`, `-`, not
/// starting with `.` or `-`.
fn check_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with(['.', '-'])
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{id}' is not a release id (1 to 128 of [A-Za-z0-9._-], not starting with '.' or '-')"
        ))
    }
}

fn io_err(what: impl std::fmt::Display, path: &Path, e: io::Error) -> String {
    format!("{what} {}: {e}", path.display())
}

/// Where the host holds each (digest, executable) file: release and path.
type Holdings = HashMap<(Sha256Digest, bool), (String, String)>;

/// A release being received.
struct Staging {
    release: String,
    /// `None` when the release is already on the host with this content.
    writer: Option<ReleaseWriter>,
    manifest: Manifest,
    base: Option<String>,
    shared: Vec<String>,
    /// Indexes of files still to arrive.
    needed: BTreeSet<u32>,
    /// Files that arrived.
    received: u64,
    /// The first failure while receiving, reported by the commit.
    error: Option<String>,
}

struct Agent {
    layout: HostLayout,
    staging: Option<Staging>,
    /// A file that arrived with no release being prepared.
    stray_error: Option<String>,
    greeted: bool,
    /// Stored manifests parsed so far (a committed release's never changes).
    manifests: RefCell<HashMap<String, Rc<Manifest>>>,
}

impl Agent {
    fn handle(&mut self, request: Request) -> Result<Response, String> {
        match request {
            Request::State => {
                let (releases, current) = self.state()?;
                Ok(Response::State { releases, current })
            }
            Request::Commit { release } => self.commit(&release).map(|()| Response::Done),
            Request::Abort { release } => {
                if self.staging.as_ref().is_some_and(|s| s.release == release) {
                    self.staging = None;
                }
                self.stray_error = None;
                Ok(Response::Done)
            }
            Request::WriteEnv { release, text } => self.write_env(&release, &text).map(|()| Response::Done),
            Request::Switch { release } => self.switch(&release).map(|previous| Response::Switched { previous }),
            Request::Service { action, spec } => {
                let spec = self.spec(spec)?;
                // Whatever else ran this environment's service here goes
                // first: a start must get the port, and a stop must stop
                // the process that actually runs (under an old name or
                // the supervisor the config named before).
                self.retire_others(&spec)?;
                let sup = supervisor(spec);
                match action {
                    ServiceOp::Start => sup.start(),
                    ServiceOp::Stop => sup.stop(),
                    ServiceOp::Restart => sup.restart(),
                }
                .map_err(|e| e.to_string())?;
                status(&*sup).map(|status| Response::Service { status })
            }
            Request::Check { spec, path, timeout_ms } => {
                let spec = self.spec(spec)?;
                let sup = supervisor(spec.clone());
                let starts = sup.restarts().map_err(|e| e.to_string())?;
                let probe = path.map(|p| crate::probe::http_probe(spec.port, &p, Duration::from_millis(timeout_ms)));
                let paths = ServicePaths::of(&spec);
                let roots: Vec<u32> = owner::exec_pid(&paths.exec_pid).into_iter().collect();
                let owner = owner::port_owner(spec.port, &roots, || sup.pid().ok().flatten().into_iter().collect());
                Ok(Response::Check {
                    check: ServiceCheck { starts, owner, probe },
                })
            }
            Request::ServiceStatus { spec } => {
                let sup = supervisor(self.spec(spec)?);
                status(&*sup).map(|status| Response::Service { status })
            }
            Request::LogTail { spec, lines } => {
                let sup = supervisor(self.spec(spec)?);
                let lines = sup.log_tail(lines).map_err(|e| e.to_string())?;
                Ok(Response::Lines { lines })
            }
            Request::HostStats => {
                // The agent made its root when it started.
                let path = &self.layout.root;
                let stats = crate::hoststats::read(path)
                    .map_err(|e| format!("cannot read the disk of {}: {e}", path.display()))?;
                Ok(Response::HostStats { stats })
            }
            Request::LogRead {
                spec,
                cursor,
                max_bytes,
            } => {
                // Every supervisor writes (or has supervisord write) the
                // service's output to the same file.
                let log = ServicePaths::of(&self.spec(spec)?).log;
                let chunk = crate::supervisor::read_new(&log, cursor, max_bytes.min(MAX_LOG_READ))
                    .map_err(|e| format!("cannot read {}: {e}", log.display()))?;
                Ok(Response::LogChunk { chunk })
            }
            Request::Probe { port, path, timeout_ms } => Ok(Response::Probe {
                result: crate::probe::http_probe(port, &path, Duration::from_millis(timeout_ms)),
            }),
            Request::Run {
                release,
                env,
                command,
                port,
                timeout_ms,
            } => {
                check_id(&release)?;
                let env = env.unwrap_or_else(|| release.clone());
                check_id(&env)?;
                let spec = crate::exec::ExecSpec {
                    env_file: self.layout.env_file(&env),
                    port,
                    dir: self.layout.release(&release),
                    counter: None,
                    program: "sh".into(),
                    args: vec!["-c".into(), command.into()],
                };
                super::run::run(&spec, Duration::from_millis(timeout_ms)).map(|result| Response::Ran { result })
            }
            Request::Remove { release } => self.remove(&release).map(|()| Response::Done),
            Request::Prune { keep, protect } => self
                .prune(keep, &protect)
                .map(|releases| Response::Removed { releases }),
            Request::Hello { .. }
            | Request::Bye
            | Request::File { .. }
            | Request::Prepare { .. }
            | Request::PackDir { .. }
            | Request::UnpackDir { .. }
            | Request::DumpDatabase { .. }
            | Request::RestoreDatabase { .. } => Err(String::from("request out of place")),
        }
    }

    /// The service as this host runs it: this binary for `rollway exec` and
    /// `rollway supervise` (the deployer cannot know its path here), this
    /// agent's root, and the name of its project and environment under this
    /// root ([`ServiceSpec::identified`]).
    fn spec(&self, mut spec: ServiceSpec) -> Result<ServiceSpec, String> {
        spec.check_name().map_err(|e| e.to_string())?;
        spec.rollway_exe = std::env::current_exe().map_err(|e| format!("cannot find the agent's own binary: {e}"))?;
        spec.root.clone_from(&self.layout.root);
        if spec.env_file.is_relative() {
            spec.env_file = std::path::absolute(&spec.env_file).map_err(|e| e.to_string())?;
        }
        let spec = spec.identified();
        spec.check_name().map_err(|e| e.to_string())?;
        Ok(spec)
    }

    /// The specs recorded under `ROOT/.rollway/svc/*/spec.json`: what ran
    /// here, under which name and supervisor (each directory's name is the
    /// service's name).
    fn recorded(&self) -> Vec<(PathBuf, ServiceSpec)> {
        let dir = self.layout.services();
        let Ok(entries) = fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(mut old) = ServiceSpec::load(&entry.path().join("spec.json")) else {
                continue;
            };
            old.name = name;
            if old.check_name().is_err() {
                continue;
            }
            // In this host's frame: this root, this binary.
            old.root.clone_from(&self.layout.root);
            if let Ok(exe) = std::env::current_exe() {
                old.rollway_exe = exe;
            }
            out.push((entry.path(), old));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Before `spec` starts or stops: every other service recorded under this root
    /// (an earlier name — the project alone, before names held the
    /// environment — or the same name under another supervisor) is stopped
    /// and its program section or unit removed, so it cannot keep the port.
    /// A record whose supervisor cannot stop it (`command`) is dropped: the
    /// host's own tooling owns that process.
    fn retire_others(&self, spec: &ServiceSpec) -> Result<(), String> {
        for (dir, old) in self.recorded() {
            let same_name = old.name == spec.name;
            if same_name && old.kind == spec.kind {
                continue;
            }
            match supervisor(old.clone()).retire() {
                Ok(()) | Err(SupervisorError::Unsupported { .. }) => {}
                Err(e) => {
                    return Err(format!(
                        "cannot stop the earlier service {} (supervisor = \"{}\") under {}: {e}; stop it by hand, remove {}, and deploy again",
                        old.name,
                        old.kind,
                        self.layout.root.display(),
                        dir.display()
                    ));
                }
            }
            if !same_name {
                remove_tree(&dir).map_err(|e| io_err("cannot remove the earlier service's state", &dir, e))?;
            }
        }
        Ok(())
    }

    fn release_ids(&self) -> Result<Vec<String>, String> {
        let dir = self.layout.releases();
        let mut ids = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => return Err(io_err("cannot list", &dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_err("cannot list", &dir, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if check_id(&name).is_ok() && entry.file_type().is_ok_and(|t| t.is_dir()) {
                ids.push(name);
            }
        }
        // Deployment ids are UUIDv7: their text order is their time order.
        ids.sort();
        Ok(ids)
    }

    fn current(&self) -> Option<String> {
        let target = fs::read_link(self.layout.current()).ok()?;
        target.file_name().and_then(|n| n.to_str()).map(str::to_owned)
    }

    fn state(&self) -> Result<(Vec<ReleaseInfo>, Option<String>), String> {
        let releases = self
            .release_ids()?
            .into_iter()
            .map(|id| {
                let content_digest = fs::read(self.layout.manifest(&id))
                    .ok()
                    .map(|b| Sha256Digest::from_bytes(Sha256::digest(&b).into()));
                ReleaseInfo { id, content_digest }
            })
            .collect();
        Ok((releases, self.current()))
    }

    fn load_manifest(&self, id: &str) -> Result<Rc<Manifest>, String> {
        if let Some(m) = self.manifests.borrow().get(id) {
            return Ok(Rc::clone(m));
        }
        let path = self.layout.manifest(id);
        let bytes = fs::read(&path).map_err(|e| io_err(format!("release {id}: cannot read its manifest"), &path, e))?;
        let m = Rc::new(
            // Written by this agent (`canonical_bytes`) when the release was committed.
            Manifest::parse_own(&bytes)
                .map_err(|e| format!("release {id}: stored manifest {}: {e}", path.display()))?,
        );
        self.manifests.borrow_mut().insert(id.to_owned(), Rc::clone(&m));
        Ok(m)
    }

    fn prepare(
        &mut self,
        release: &str,
        form: &ManifestForm,
        base: Option<&str>,
        shared: &[String],
        bytes: &[u8],
        dry_run: bool,
    ) -> Result<Response, String> {
        check_id(release)?;
        self.staging = None;
        self.stray_error = None;
        let manifest = self.build_manifest(release, form, bytes)?;
        let fail = |m: String| format!("release {release}: {m}");
        if let Some((e, problem)) = manifest.first_escaping_symlink() {
            return Err(fail(format!("manifest entry '{}': {problem}", e.path)));
        }
        check_parents(&manifest).map_err(fail)?;
        check_shared(&manifest, shared).map_err(fail)?;
        let final_dir = self.layout.release(release);
        if fs::symlink_metadata(&final_dir).is_ok() {
            let same = self
                .load_manifest(release)
                .is_ok_and(|m| m.content_digest() == manifest.content_digest());
            if !same {
                return Err(fail(String::from(
                    "a release of this id with other content is already on this host; remove it first",
                )));
            }
            if dry_run {
                return Ok(Response::Plan {
                    full: Vec::new(),
                    delta: Vec::new(),
                    linked: 0,
                });
            }
            self.staging = Some(Staging {
                release: release.to_owned(),
                writer: None,
                manifest,
                base: None,
                shared: shared.to_vec(),
                needed: BTreeSet::new(),
                received: 0,
                error: None,
            });
            return Ok(Response::Plan {
                full: Vec::new(),
                delta: Vec::new(),
                linked: 0,
            });
        }

        let base_files: HashSet<String> = match base {
            Some(b) => {
                check_id(b)?;
                let m = self.load_manifest(b)?;
                if !self.layout.release(b).is_dir() {
                    return Err(fail(format!("base release {b} is not on this host")));
                }
                m.entries
                    .iter()
                    .filter(|e| matches!(e.kind, EntryKind::File { .. }))
                    .map(|e| e.path.clone())
                    .collect()
            }
            None => HashSet::new(),
        };
        let have = self.index()?;

        let mut writer = if dry_run {
            None
        } else {
            let staging_dir = self.layout.staging(release);
            remove_tree(&staging_dir).map_err(|e| io_err("cannot remove the stale", &staging_dir, e))?;
            Some(ReleaseWriter::create(&staging_dir).map_err(|e| e.to_string())?)
        };
        let (mut full, mut delta, mut linked) = (Vec::new(), Vec::new(), 0u64);
        let mut sources: HashMap<String, Option<SourceDir>> = HashMap::new();
        for (i, e) in manifest.entries.iter().enumerate() {
            let index = u32::try_from(i).map_err(|_| fail(String::from("manifest has too many entries")))?;
            match (&e.kind, writer.as_mut()) {
                (EntryKind::Dir, Some(w)) => w.add_dir(&e.path).map_err(|e| e.to_string())?,
                (EntryKind::Symlink { target }, Some(w)) => {
                    w.add_symlink(&e.path, target).map_err(|e| e.to_string())?
                }
                (EntryKind::Dir | EntryKind::Symlink { .. }, None) => {}
                (
                    EntryKind::File {
                        size,
                        sha256,
                        executable,
                    },
                    w,
                ) => {
                    let known = WrittenFile {
                        size: *size,
                        sha256: sha256.clone(),
                        executable: *executable,
                    };
                    let from = have.get(&(sha256.clone(), *executable));
                    // A source gone or changed since its commit is simply sent.
                    if let Some((id, path)) = from {
                        let linked_it = match w {
                            Some(w) => {
                                if !sources.contains_key(id) {
                                    // A release that cannot be opened shares nothing.
                                    let dir = SourceDir::open(&self.layout.release(id)).ok();
                                    sources.insert(id.clone(), dir);
                                }
                                sources
                                    .get(id)
                                    .and_then(Option::as_ref)
                                    .is_some_and(|dir| w.add_hardlink_known_at(&e.path, dir, path, &known).is_ok())
                            }
                            None => fs::symlink_metadata(self.layout.release(id).join(path))
                                .is_ok_and(|m| m.is_file() && m.len() == *size && m.permissions().mode() & 0o222 == 0),
                        };
                        if linked_it {
                            linked += 1;
                            continue;
                        }
                    }
                    if base_files.contains(&e.path) {
                        delta.push(index);
                    } else {
                        full.push(index);
                    }
                }
            }
        }
        if writer.is_none() {
            return Ok(Response::Plan { full, delta, linked });
        }
        self.staging = Some(Staging {
            release: release.to_owned(),
            writer,
            manifest,
            base: base.map(str::to_owned),
            shared: shared.to_vec(),
            needed: full.iter().chain(&delta).copied().collect(),
            received: 0,
            error: None,
        });
        Ok(Response::Plan { full, delta, linked })
    }

    fn build_manifest(&self, release: &str, form: &ManifestForm, bytes: &[u8]) -> Result<Manifest, String> {
        let parsed = Manifest::parse(bytes).map_err(|e| format!("release {release}: {e}"))?;
        match form {
            ManifestForm::Full => Ok(parsed),
            ManifestForm::Diff {
                from,
                removed,
                content_digest,
            } => {
                check_id(from)?;
                let mut entries: BTreeMap<String, _> = self
                    .load_manifest(from)?
                    .entries
                    .iter()
                    .map(|e| (e.path.clone(), e.clone()))
                    .collect();
                for path in removed {
                    if entries.remove(path).is_none() {
                        return Err(format!(
                            "release {release}: the manifest diff removes '{path}', which release {from} does not have"
                        ));
                    }
                }
                for e in parsed.entries {
                    entries.insert(e.path.clone(), e);
                }
                let manifest = Manifest::new(entries.into_values().collect());
                let got = manifest.content_digest();
                if &got != content_digest {
                    return Err(format!(
                        "release {release}: the manifest diff against release {from} gives content {got}, not {content_digest}; the host's copy of {from}'s manifest differs — deploy without a previous artifact"
                    ));
                }
                Ok(manifest)
            }
        }
    }

    /// Every file of every committed release by (digest, executable): the
    /// newest release holding it.
    fn index(&self) -> Result<Holdings, String> {
        let mut have = HashMap::new();
        for id in self.release_ids()? {
            // A release without a readable manifest is simply not shared from.
            let Ok(m) = self.load_manifest(&id) else { continue };
            for e in &m.entries {
                if let EntryKind::File { sha256, executable, .. } = &e.kind {
                    have.insert((sha256.clone(), *executable), (id.clone(), e.path.clone()));
                }
            }
        }
        Ok(have)
    }

    fn receive_file<R: Read>(&mut self, index: u32, encoding: Encoding, input: &mut R) -> Result<(), AgentError> {
        let mut data = DataReader::new(input);
        let result = match self.staging.as_mut() {
            None => Err(String::from("a file arrived with no release being prepared")),
            Some(st) if st.error.is_some() => Ok(()),
            Some(st) => st.receive(&self.layout, index, encoding, &mut data),
        };
        // An unreadable stream is a broken connection; anything else is the
        // release's failure, reported by the commit.
        data.drain()?;
        if let Err(message) = result {
            match self.staging.as_mut() {
                Some(st) => {
                    st.error.get_or_insert(message);
                }
                None => {
                    self.stray_error.get_or_insert(message);
                }
            }
        }
        Ok(())
    }

    fn commit(&mut self, release: &str) -> Result<(), String> {
        if let Some(e) = self.stray_error.take() {
            self.staging = None;
            return Err(e);
        }
        let st = match self.staging.take() {
            Some(st) if st.release == release => st,
            _ => return Err(format!("release {release} was not prepared on this host")),
        };
        if let Some(e) = st.error {
            return Err(e);
        }
        let Some(writer) = st.writer else {
            return Ok(());
        };
        if let Some(first) = st.needed.first() {
            let path = st
                .manifest
                .entries
                .get(*first as usize)
                .map_or("?", |e| e.path.as_str());
            return Err(format!(
                "release {release}: {} files never arrived (first: '{path}')",
                st.needed.len()
            ));
        }
        let staging = writer.finish(&st.manifest).map_err(|e| e.to_string())?;
        let done = self.place(release, &staging, &st.manifest, &st.shared, st.received > 0);
        if done.is_err() {
            let _ = remove_tree(&staging);
            let _ = fs::remove_file(self.layout.manifest(release));
        }
        done
    }

    /// Links the shared directories into a finished release, records its
    /// manifest and renames it into place.
    fn place(
        &self,
        release: &str,
        staging: &Path,
        manifest: &Manifest,
        shared: &[String],
        wrote_bodies: bool,
    ) -> Result<(), String> {
        for dir in shared {
            let host_dir = self.layout.shared().join(dir);
            fs::create_dir_all(&host_dir).map_err(|e| io_err("cannot create the shared directory", &host_dir, e))?;
            let link = staging.join(dir);
            let parent = link.parent().unwrap_or(staging);
            let depth = dir.split('/').count();
            let target = format!("{}shared/{dir}", "../".repeat(depth + 1));
            // The release is read-only already; open its parent directory for this one link.
            let writable = |mode| fs::set_permissions(parent, fs::Permissions::from_mode(mode));
            writable(0o755).map_err(|e| io_err("cannot open for the shared link", parent, e))?;
            let linked = symlink(&target, &link);
            writable(0o555).map_err(|e| io_err("cannot make read-only again", parent, e))?;
            linked.map_err(|e| io_err("cannot link the shared directory at", &link, e))?;
        }
        let manifests = self.layout.manifests();
        fs::create_dir_all(&manifests).map_err(|e| io_err("cannot create", &manifests, e))?;
        write_atomic(&self.layout.manifest(release), &manifest.canonical_bytes(), 0o644)?;
        // One flush for the whole tree, so a crash after the rename never
        // finds a release whose new files have holes. A release made only of
        // links and directories needs none: the journal keeps metadata in
        // order, so the rename is never durable before the links.
        if wrote_bodies && let Ok(fd) = File::open(staging) {
            let _ = rustix::fs::syncfs(&fd);
        }
        let final_dir = self.layout.release(release);
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            staging,
            rustix::fs::CWD,
            &final_dir,
            rustix::fs::RenameFlags::NOREPLACE,
        )
        .map_err(|e| {
            io_err(
                format!("cannot move release {release} into place at"),
                &final_dir,
                e.into(),
            )
        })?;
        rollway_fs::sync_dir(&self.layout.releases());
        Ok(())
    }

    fn write_env(&self, release: &str, text: &str) -> Result<(), String> {
        check_id(release)?;
        let dir = self.layout.envs();
        fs::create_dir_all(&dir).map_err(|e| io_err("cannot create", &dir, e))?;
        let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
        write_atomic(&self.layout.env_file(release), text.as_bytes(), 0o600)
    }

    fn switch(&self, release: &str) -> Result<Option<String>, String> {
        check_id(release)?;
        let dir = self.layout.release(release);
        if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            return Err(format!("release {release} is not on this host; ship it first"));
        }
        let current = self.layout.current();
        if fs::symlink_metadata(&current).is_ok_and(|m| !m.file_type().is_symlink()) {
            return Err(format!(
                "{} is not a symlink; move it away so rollway can manage it",
                current.display()
            ));
        }
        let previous = self.current();
        rollway_fs::replace_symlink(&current, &HostLayout::current_target(release))
            .map_err(|e| format!("cannot switch: {e}"))?;
        Ok(previous)
    }

    fn remove(&mut self, release: &str) -> Result<(), String> {
        check_id(release)?;
        if self.current().as_deref() == Some(release) {
            return Err(format!(
                "release {release} is current on this host; switch to another release before removing it"
            ));
        }
        if self.staging.as_ref().is_some_and(|s| s.release == release) {
            self.staging = None;
        }
        self.remove_files(release)
    }

    fn remove_files(&self, release: &str) -> Result<(), String> {
        self.manifests.borrow_mut().remove(release);
        for dir in [self.layout.staging(release), self.layout.release(release)] {
            remove_tree(&dir).map_err(|e| io_err(format!("cannot remove release {release} at"), &dir, e))?;
        }
        for file in [self.layout.env_file(release), self.layout.manifest(release)] {
            match fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("cannot remove", &file, e)),
            }
        }
        Ok(())
    }

    fn prune(&mut self, keep: usize, protect: &[String]) -> Result<Vec<String>, String> {
        let ids = self.release_ids()?;
        let current = self.current();
        let kept: BTreeSet<&str> = ids
            .iter()
            .rev()
            .take(keep)
            .map(String::as_str)
            .chain(protect.iter().map(String::as_str))
            .chain(current.as_deref())
            .collect();
        let mut removed = Vec::new();
        for id in &ids {
            if !kept.contains(id.as_str()) {
                self.remove_files(id)?;
                removed.push(id.clone());
            }
        }
        // What a crash or a failed ship left: env files and manifests of no
        // release, staging directories, temporary names.
        let live: BTreeSet<&str> = ids
            .iter()
            .map(String::as_str)
            .chain(protect.iter().map(String::as_str))
            .collect();
        for (dir, suffix) in [(self.layout.envs(), ".env"), (self.layout.manifests(), ".json")] {
            let Ok(entries) = fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(id) = name.strip_suffix(suffix)
                    && check_id(id).is_ok()
                    && !live.contains(id)
                    && !removed.iter().any(|r| r == id)
                {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        if let Ok(entries) = fs::read_dir(self.layout.releases()) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let ours = self
                    .staging
                    .as_ref()
                    .is_some_and(|s| name == format!(".staging-{}", s.release));
                if name.starts_with(".staging-") && !ours {
                    let _ = remove_tree(&entry.path());
                }
            }
        }
        Ok(removed)
    }
}

impl Staging {
    fn receive<R: Read>(
        &mut self,
        layout: &HostLayout,
        index: u32,
        encoding: Encoding,
        data: &mut DataReader<'_, R>,
    ) -> Result<(), String> {
        let release = &self.release;
        if !self.needed.remove(&index) {
            return Err(format!(
                "release {release}: file #{index} was not asked for, or came twice"
            ));
        }
        let entry = self
            .manifest
            .entries
            .get(index as usize)
            .ok_or_else(|| format!("release {release}: file #{index} is not in the manifest"))?;
        let EntryKind::File {
            size,
            sha256,
            executable,
        } = &entry.kind
        else {
            return Err(format!(
                "release {release}: '{}' is not a file in the manifest",
                entry.path
            ));
        };
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| format!("release {release}: no file was asked for"))?;
        let reference = match encoding {
            Encoding::Zstd => None,
            Encoding::ZstdDelta => {
                let base = self.base.as_deref().ok_or_else(|| {
                    format!(
                        "release {release}: '{}' came as a delta, but no base release was named",
                        entry.path
                    )
                })?;
                // The manifest path is checked: plain components, no '..'.
                manifest::check_path(&entry.path).map_err(|p| format!("release {release}: '{}': {p}", entry.path))?;
                let path = layout.release(base).join(&entry.path);
                Some(read_reference(&path).map_err(|e| {
                    format!(
                        "release {release}: '{}': cannot read the base file {}: {e}",
                        entry.path,
                        path.display()
                    )
                })?)
            }
        };
        let mode = if *executable { 0o755 } else { 0o644 };
        let written = {
            let decoder = match &reference {
                None => zstd::stream::read::Decoder::new(&mut *data),
                Some(r) => zstd::stream::read::Decoder::with_ref_prefix(BufReader::new(&mut *data), r),
            };
            let mut decoder = decoder.map_err(|e| format!("release {release}: '{}': {e}", entry.path))?;
            decoder
                .window_log_max(31)
                .map_err(|e| format!("release {release}: '{}': {e}", entry.path))?;
            // A body longer than the manifest says is cut one byte past it,
            // which the size check then refuses.
            writer
                .add_file(&entry.path, mode, decoder.take(size.saturating_add(1)))
                .map_err(|e| e.to_string())?
        };
        if written.size != *size || &written.sha256 != sha256 {
            return Err(format!(
                "release {release}: '{}' arrived with {} bytes and SHA-256 {}, the manifest says {size} bytes and {sha256}; the artifact or the base release is corrupt",
                entry.path, written.size, written.sha256
            ));
        }
        self.received += 1;
        Ok(())
    }
}

fn read_reference(path: &Path) -> io::Result<Vec<u8>> {
    let meta = fs::symlink_metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    if meta.len() > MAX_DELTA_FILE {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "too large to patch"));
    }
    fs::read(path)
}

fn status(sup: &dyn crate::supervisor::Supervisor) -> Result<ServiceStatus, String> {
    let pid = sup.pid().map_err(|e| e.to_string())?;
    Ok(ServiceStatus {
        pid,
        starts: sup.restarts().map_err(|e| e.to_string())?,
        uptime_ms: pid.and_then(process_uptime_ms),
    })
}

/// How long process `pid` has run: its start in clock ticks after boot
/// (`/proc/PID/stat` field 22) against the system's uptime (`/proc/uptime`).
fn process_uptime_ms(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count
    // fields after its closing parenthesis.
    let after = &stat[stat.rfind(')')? + 1..];
    let start_ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let uptime_s: f64 = fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let hz = rustix::param::clock_ticks_per_second();
    let started_ms = start_ticks.checked_mul(1000)? / hz.max(1);
    let up_ms = (uptime_s * 1000.0) as u64;
    Some(up_ms.saturating_sub(started_ms))
}

/// Every entry's parent must be a directory entry of the manifest, so no
/// file waits for bytes under a path that cannot hold it.
fn check_parents(manifest: &Manifest) -> Result<(), String> {
    let dirs: HashSet<&str> = manifest
        .entries
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::Dir))
        .map(|e| e.path.as_str())
        .collect();
    for e in &manifest.entries {
        if let Some((parent, _)) = e.path.rsplit_once('/')
            && !dirs.contains(parent)
        {
            return Err(format!(
                "manifest entry '{}': parent '{parent}' is not a directory entry of the manifest",
                e.path
            ));
        }
    }
    Ok(())
}

/// Checks that each shared directory is a plain path the artifact leaves
/// free, inside a directory the artifact has.
fn check_shared(manifest: &Manifest, shared: &[String]) -> Result<(), String> {
    let kinds: HashMap<&str, &EntryKind> = manifest.entries.iter().map(|e| (e.path.as_str(), &e.kind)).collect();
    for dir in shared {
        manifest::check_path(dir).map_err(|p| format!("shared directory '{dir}': {p}"))?;
        if kinds.contains_key(dir.as_str()) {
            return Err(format!(
                "the artifact has '{dir}', which [service] shared links to ROOT/shared/{dir}; leave it out of the build output"
            ));
        }
        if let Some((parent, _)) = dir.rsplit_once('/')
            && !matches!(kinds.get(parent), Some(EntryKind::Dir))
        {
            return Err(format!(
                "shared directory '{dir}': the artifact has no directory '{parent}' to hold it"
            ));
        }
    }
    Ok(())
}

/// Writes `bytes` with exactly `mode` (never wider on the way), atomically.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    rollway_fs::write_atomic(path, bytes, Some(mode)).map_err(|e| e.to_string())
}
