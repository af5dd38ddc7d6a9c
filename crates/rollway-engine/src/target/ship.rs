//! The deployer's side of shipping a release to one host: read the
//! artifact's manifest, send it (as a diff against the release the host
//! already runs when the previous artifact is at hand), let the agent say
//! what it lacks after hard-linking everything it has, then stream only
//! those files — a changed file as a zstd patch against the previous
//! release's file of the same path, a new one compressed — and commit.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use rollway_artifact::manifest::{EntryKind, Manifest, ManifestEntry};
use rollway_model::Sha256Digest;
use zstd::zstd_safe::CParameter;

use super::SessionOptions;
use super::archive::{self, stream_files};
use super::client::AgentClient;
use crate::agent::protocol::{Encoding, ManifestForm, Request, Response};
use crate::agent::server::MAX_DELTA_FILE;
use crate::host::{HostError, ShipStats};

const STEP: &str = "ship";

/// zstd level of whole files (the artifact's own level).
const LEVEL: i32 = 3;

/// zstd level of patches. With long-distance matching on, level 6 finds
/// nearly everything level 19 does in a 1 %-changed tree (18.3 KB against
/// 18.1 KB for 200 changed files) at a sixteenth of the time.
const DELTA_LEVEL: i32 = 6;

/// Files up to this size are compressed in memory (one reused context);
/// larger ones stream through a multithreaded encoder.
const IN_MEMORY: u64 = 64 << 20;

/// At most this many bytes of previous files are held as references…
const REFERENCE_BUDGET: u64 = 1 << 30;

/// …and of changed files read ahead while the host prepares.
const PREFETCH_BUDGET: u64 = 1 << 30;

/// What shipping a release to a host would do (`--dry-run`): nothing is
/// written on the host to find out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShipPlan {
    /// Files the host already has (hard links).
    pub files_linked: u64,
    /// Files that would travel as patches, with their sizes.
    pub delta: Vec<(String, u64)>,
    /// Files that would travel whole (compressed), with their sizes.
    pub full: Vec<(String, u64)>,
    /// The release the patches would be against.
    pub base: Option<String>,
}

/// What the deployer knows before asking the host for a plan.
struct Known {
    manifest: Manifest,
    /// The manifest came from the cache: the archive's digest is still to
    /// be checked (by the pass that reads it).
    unverified: bool,
    previous: Option<Previous>,
}

/// The previous artifact, when a host release holds exactly it.
struct Previous {
    /// That release: changed files are patches against its files.
    base: String,
    archive: PathBuf,
    manifest: Manifest,
}

fn known(
    client: &mut AgentClient,
    options: &SessionOptions,
    archive: &Path,
    sha256: &Sha256Digest,
) -> Result<Known, HostError> {
    let cache = options.manifest_cache.as_deref();
    let new = archive::manifest_of(archive, Some(sha256), cache).map_err(|e| client.error(STEP, e))?;
    let (releases, current) = client.state()?;
    let previous = options.previous_archive.as_deref().and_then(|p| {
        // A previous artifact that cannot be read only costs bytes.
        let m = archive::manifest_of(p, None, cache).ok()?.manifest;
        let digest = m.content_digest();
        let matching = |id: &String| {
            releases
                .iter()
                .any(|r| &r.id == id && r.content_digest.as_ref() == Some(&digest))
        };
        let base = current
            .clone()
            .filter(matching)
            .or_else(|| releases.iter().rev().map(|r| r.id.clone()).find(matching))?;
        Some(Previous {
            base,
            archive: p.to_owned(),
            manifest: m,
        })
    });
    Ok(Known {
        manifest: new.manifest,
        unverified: !new.verified,
        previous,
    })
}

/// Sends the manifest (a diff against the base release when there is one)
/// and returns the host's plan: indexes needed whole, as patches, and how
/// many files it linked.
fn request_plan(
    client: &mut AgentClient,
    options: &SessionOptions,
    release: &str,
    known: &Known,
    dry_run: bool,
) -> Result<(Vec<u32>, Vec<u32>, u64), HostError> {
    let manifest = &known.manifest;
    let (form, bytes) = match known
        .previous
        .as_ref()
        .and_then(|p| Some((p, diff(&p.manifest, manifest)?)))
    {
        Some((p, (removed, changed))) => (
            ManifestForm::Diff {
                from: p.base.clone(),
                removed,
                content_digest: manifest.content_digest(),
            },
            changed.canonical_bytes(),
        ),
        None => (ManifestForm::Full, manifest.canonical_bytes()),
    };
    let base = known.previous.as_ref().map(|p| p.base.clone());
    client.prepare(release, form, base, options.shared.clone(), &bytes, dry_run)
}

/// Asks the host what shipping `archive` as `release` would send.
pub(crate) fn plan(
    client: &mut AgentClient,
    options: &SessionOptions,
    release: &str,
    archive: &Path,
    sha256: &Sha256Digest,
) -> Result<ShipPlan, HostError> {
    let known = known(client, options, archive, sha256)?;
    let (full, delta, linked) = request_plan(client, options, release, &known, true)?;
    let sized = |list: &[u32]| -> Vec<(String, u64)> {
        list.iter()
            .filter_map(|&i| known.manifest.entries.get(i as usize))
            .map(|e| match e.kind {
                EntryKind::File { size, .. } => (e.path.clone(), size),
                _ => (e.path.clone(), 0),
            })
            .collect()
    };
    Ok(ShipPlan {
        files_linked: linked,
        delta: sized(&delta),
        full: sized(&full),
        base: known.previous.as_ref().map(|p| p.base.clone()),
    })
}

/// Ships `archive` (whose SHA-256 must be `sha256`) as release `release`.
pub(crate) fn ship(
    client: &mut AgentClient,
    options: &SessionOptions,
    release: &str,
    archive: &Path,
    sha256: &Sha256Digest,
) -> Result<ShipStats, HostError> {
    let started = client.bytes_sent();
    let known = known(client, options, archive, sha256)?;
    let mut stats = ShipStats::default();
    let sent = send_release(client, options, release, archive, sha256, &known, &mut stats);
    let read_sha = match sent {
        Ok(sha) => sha,
        Err(e) => {
            abort(client, release);
            return Err(e);
        }
    };
    // The digest as the archive was read for this release; when nothing
    // was read, the manifest came from a full verification or is hashed now.
    let cache = options.manifest_cache.as_deref();
    let actual = match read_sha {
        Some(sha) => Some(sha),
        // Nothing was read (every file linked): the archive is the one
        // hashed before when its file status says so, else hashed now.
        None if known.unverified && !cache.is_some_and(|c| archive::digest_known(c, archive, sha256)) => {
            Some(hash_file(archive).map_err(|e| client.error(STEP, e))?)
        }
        None => None,
    };
    if let (Some(actual), Some(cache)) = (&actual, cache)
        && actual == sha256
    {
        archive::remember_digest(cache, archive, sha256);
    }
    if let Some(actual) = actual.filter(|a| a != sha256) {
        abort(client, release);
        return Err(client.error(
            STEP,
            format!(
                "artifact {}: its SHA-256 is {actual}, the record says {sha256}; the archive changed on disk — rebuild it with `rollway build`",
                archive.display()
            ),
        ));
    }
    match client.call(
        STEP,
        &Request::Commit {
            release: release.to_owned(),
        },
    )? {
        Response::Done => {}
        other => return Err(client.unexpected(STEP, &other)),
    }
    stats.bytes_sent = client.bytes_sent() - started;
    Ok(stats)
}

fn abort(client: &mut AgentClient, release: &str) {
    let _ = client.call(
        STEP,
        &Request::Abort {
            release: release.to_owned(),
        },
    );
}

fn hash_file(path: &Path) -> Result<Sha256Digest, String> {
    use sha2::Digest as _;
    let mut file = std::fs::File::open(path).map_err(|e| format!("artifact {}: {e}", path.display()))?;
    let mut sha = sha2::Sha256::new();
    io::copy(&mut file, &mut sha).map_err(|e| format!("artifact {}: {e}", path.display()))?;
    Ok(Sha256Digest::from_bytes(sha.finalize().into()))
}

/// The paths of `old` that `new` lacks, and the entries of `new` that
/// `old` lacks or has otherwise; `None` when that says more than `new`.
fn diff(old: &Manifest, new: &Manifest) -> Option<(Vec<String>, Manifest)> {
    let old_map: HashMap<&str, &ManifestEntry> = old.entries.iter().map(|e| (e.path.as_str(), e)).collect();
    let new_paths: HashSet<&str> = new.entries.iter().map(|e| e.path.as_str()).collect();
    let removed: Vec<String> = old
        .entries
        .iter()
        .filter(|e| !new_paths.contains(e.path.as_str()))
        .map(|e| e.path.clone())
        .collect();
    let changed: Vec<ManifestEntry> = new
        .entries
        .iter()
        .filter(|e| old_map.get(e.path.as_str()) != Some(e))
        .cloned()
        .collect();
    (removed.len() + changed.len() < new.entries.len()).then(|| (removed, Manifest::new(changed)))
}

/// What a file of the new archive is wanted for.
#[derive(Debug, Clone, Copy)]
struct Want {
    index: u32,
    delta: bool,
}

/// Files read ahead of the plan: contents by path.
type Contents = HashMap<String, Vec<u8>>;

/// Asks for the plan and sends what the host lacks. With a previous
/// artifact, the files that changed and their previous versions are read
/// (from both archives, in parallel) while the host prepares, since they
/// are what it will ask for; anything else it asks for is streamed after.
/// Returns the archive's SHA-256 as read, when it was read.
fn send_release(
    client: &mut AgentClient,
    options: &SessionOptions,
    release: &str,
    archive: &Path,
    sha256: &Sha256Digest,
    known: &Known,
    stats: &mut ShipStats,
) -> Result<Option<Sha256Digest>, HostError> {
    let manifest = &known.manifest;
    let expected = known.previous.as_ref().map(|p| expected_changes(&p.manifest, manifest));
    // An archive whose digest is known by its file status needs no hashing.
    let proven = !known.unverified
        || options
            .manifest_cache
            .as_deref()
            .is_some_and(|c| archive::digest_known(c, archive, sha256));
    std::thread::scope(|scope| {
        let prefetch = known
            .previous
            .as_ref()
            .zip(expected.as_ref())
            .map(|(prev, (bodies, refs))| {
                // References only seed deltas (the host checks every result),
                // so the previous archive is read, never proved.
                let refs = scope.spawn(move || {
                    read_files(&prev.archive, refs, false)
                        .map(|(c, _)| c)
                        .unwrap_or_default()
                });
                let bodies = scope.spawn(move || read_files(archive, bodies, !proven));
                (refs, bodies)
            });
        let plan = request_plan(client, options, release, known, false);
        let (references, bodies) = match prefetch {
            Some((refs, bodies)) => {
                let refs = refs.join().unwrap_or_default();
                let bodies = bodies
                    .join()
                    .map_err(|_| String::from("reading the artifact failed"))
                    .and_then(|r| r);
                (refs, Some(bodies))
            }
            None => (Contents::new(), None),
        };
        let (full, delta, linked) = plan?;
        stats.files_linked = linked;
        let (bodies, mut sha) = match bodies {
            Some(b) => b.map_err(|e| client.error(STEP, e))?,
            None => (Contents::new(), None),
        };

        let mut compressor = zstd::bulk::Compressor::new(LEVEL).map_err(|e| client.error(STEP, e.to_string()))?;
        let mut wanted: Vec<(u32, bool)> = full
            .iter()
            .map(|&i| (i, false))
            .chain(delta.iter().map(|&i| (i, true)))
            .collect();
        wanted.sort_unstable();
        let mut leftover: HashMap<String, Want> = HashMap::new();
        for (index, is_delta) in wanted {
            let entry = manifest
                .entries
                .get(index as usize)
                .filter(|e| matches!(e.kind, EntryKind::File { .. }))
                .ok_or_else(|| {
                    client.error(
                        STEP,
                        format!("the agent asked for entry #{index}, which is not a file of the manifest"),
                    )
                })?;
            match bodies.get(&entry.path) {
                Some(data) => {
                    let reference = if is_delta { references.get(&entry.path) } else { None };
                    let encoding = send_encoded(client, &mut compressor, index, data, reference.map(Vec::as_slice))?;
                    count(stats, encoding);
                }
                None => {
                    leftover.insert(entry.path.clone(), Want { index, delta: is_delta });
                }
            }
        }
        if !leftover.is_empty() {
            let mut broken: Option<HostError> = None;
            let streamed = stream_files(archive, &leftover, !proven, |path, want, size, body| {
                let reference = if want.delta { references.get(path) } else { None };
                match send_one(
                    client,
                    &mut compressor,
                    want.index,
                    size,
                    body,
                    reference.map(Vec::as_slice),
                ) {
                    Ok(encoding) => {
                        count(stats, encoding);
                        Ok(())
                    }
                    Err(e) => {
                        broken = Some(e);
                        Err(String::new())
                    }
                }
            });
            if let Some(e) = broken {
                return Err(e);
            }
            sha = streamed.map_err(|e| client.error(STEP, e))?;
        }
        Ok(sha)
    })
}

fn count(stats: &mut ShipStats, encoding: Encoding) {
    match encoding {
        Encoding::Zstd => stats.files_full += 1,
        Encoding::ZstdDelta => stats.files_delta += 1,
    }
}

/// The files a host holding `prev` will most likely ask for when given
/// `new`: those whose path is new or whose content changed (by digest,
/// up to a memory budget), and for the changed ones the previous version's
/// digest, to read from the previous artifact.
fn expected_changes(prev: &Manifest, new: &Manifest) -> (HashMap<String, Sha256Digest>, HashMap<String, Sha256Digest>) {
    let old: HashMap<&str, (u64, &Sha256Digest)> = prev
        .entries
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::File { size, sha256, .. } => Some((e.path.as_str(), (*size, sha256))),
            _ => None,
        })
        .collect();
    let (mut bodies, mut refs) = (HashMap::new(), HashMap::new());
    let (mut body_budget, mut ref_budget) = (PREFETCH_BUDGET, REFERENCE_BUDGET);
    for e in &new.entries {
        let EntryKind::File { size, sha256, .. } = &e.kind else {
            continue;
        };
        let before = old.get(e.path.as_str());
        if before.is_some_and(|(_, d)| *d == sha256) || *size > IN_MEMORY || *size > body_budget {
            continue;
        }
        body_budget -= size;
        bodies.insert(e.path.clone(), sha256.clone());
        if let Some(&(old_size, old_sha)) = before
            && old_size <= MAX_DELTA_FILE.min(IN_MEMORY)
            && old_size <= ref_budget
        {
            ref_budget -= old_size;
            refs.insert(e.path.clone(), old_sha.clone());
        }
    }
    (bodies, refs)
}

/// Reads the files of `archive` named in `wanted` into memory, keeping
/// those whose content has the digest given; returns them with the
/// archive's SHA-256.
fn read_files(
    archive: &Path,
    wanted: &HashMap<String, Sha256Digest>,
    prove: bool,
) -> Result<(Contents, Option<Sha256Digest>), String> {
    if wanted.is_empty() {
        // Nothing expected to change: the archive need not be read (its
        // digest is settled by whichever pass reads it, or by `ship`).
        return Ok((Contents::new(), None));
    }
    let mut contents = Contents::with_capacity(wanted.len());
    let sha = stream_files(archive, wanted, prove, |path, digest, size, body| {
        let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        body.read_to_end(&mut buf)
            .map_err(|e| format!("artifact {}: {e}", archive.display()))?;
        if &Sha256Digest::of(&buf) == digest {
            contents.insert(path.to_owned(), buf);
        }
        Ok(())
    })?;
    Ok((contents, sha))
}

/// Sends one file already in memory.
fn send_encoded(
    client: &mut AgentClient,
    compressor: &mut zstd::bulk::Compressor<'_>,
    index: u32,
    data: &[u8],
    reference: Option<&[u8]>,
) -> Result<Encoding, HostError> {
    let (encoding, payload) = encode(compressor, data, reference)
        .map_err(|e| client.error(STEP, format!("compressing file #{index}: {e}")))?;
    client.send(STEP, &Request::File { index, encoding })?;
    let mut stream = client.data();
    let written = stream.write_all(&payload).and_then(|()| stream.finish().map(|_| ()));
    written.map_err(|e| client.error(STEP, format!("sending file #{index}: {e}")))?;
    Ok(encoding)
}

/// Sends one file; returns how it went.
fn send_one(
    client: &mut AgentClient,
    compressor: &mut zstd::bulk::Compressor<'_>,
    index: u32,
    size: u64,
    body: &mut dyn Read,
    reference: Option<&[u8]>,
) -> Result<Encoding, HostError> {
    if size > IN_MEMORY {
        client.send(
            STEP,
            &Request::File {
                index,
                encoding: Encoding::Zstd,
            },
        )?;
        let streamed = (|| -> io::Result<()> {
            let mut enc = zstd::stream::write::Encoder::new(client.data(), LEVEL)?;
            let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
            enc.multithread(u32::try_from(workers).unwrap_or(1))?;
            io::copy(body, &mut enc)?;
            enc.finish()?.finish()?;
            Ok(())
        })();
        streamed.map_err(|e| client.error(STEP, format!("sending file #{index}: {e}")))?;
        return Ok(Encoding::Zstd);
    }
    let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    body.read_to_end(&mut data)
        .map_err(|e| client.error(STEP, format!("reading file #{index} from the artifact: {e}")))?;
    send_encoded(client, compressor, index, &data, reference)
}

/// The smaller of a patch against `reference` (when there is one) and
/// the file compressed on its own.
pub(crate) fn encode(
    compressor: &mut zstd::bulk::Compressor<'_>,
    data: &[u8],
    reference: Option<&[u8]>,
) -> io::Result<(Encoding, Vec<u8>)> {
    let Some(reference) = reference else {
        return Ok((Encoding::Zstd, compressor.compress(data)?));
    };
    let patch = delta(data, reference)?;
    // A good patch is far smaller than the file; only a poor one is worth
    // comparing with plain compression.
    if patch.len() * 4 > data.len() {
        let whole = compressor.compress(data)?;
        if whole.len() < patch.len() {
            return Ok((Encoding::Zstd, whole));
        }
    }
    Ok((Encoding::ZstdDelta, patch))
}

/// `data` compressed with `reference` as zstd's reference prefix
/// (`zstd --patch-from`): the window covers both, and long-distance
/// matching finds the unchanged runs of a large incompressible file (a
/// 4.7 MB image with 64 bytes changed: 3.6 MB at level 3 without it,
/// 7 KB with it).
pub(crate) fn delta(data: &[u8], reference: &[u8]) -> io::Result<Vec<u8>> {
    let mut c = zstd::bulk::Compressor::new(DELTA_LEVEL)?;
    let span = (data.len() + reference.len()).max(1);
    let window_log = (usize::BITS - (span - 1).leading_zeros()).clamp(10, 30);
    c.set_parameter(CParameter::WindowLog(window_log))?;
    c.set_parameter(CParameter::EnableLongDistanceMatching(true))?;
    c.context_mut()
        .ref_prefix(reference)
        .map_err(|code| io::Error::other(zstd::zstd_safe::get_error_name(code)))?;
    c.compress(data)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// Pseudo-random bytes (xorshift), incompressible like images.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn patched(data: &[u8], reference: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let patch = patch_of(data, reference);
        let mut d = zstd::stream::read::Decoder::with_ref_prefix(io::BufReader::new(&patch[..]), reference).unwrap();
        d.window_log_max(31).unwrap();
        d.read_to_end(&mut out).unwrap();
        out
    }

    fn patch_of(data: &[u8], reference: &[u8]) -> Vec<u8> {
        delta(data, reference).unwrap()
    }

    /// (size, changed bytes) → the patch stays close to the change.
    fn check(size: usize, change: usize) {
        let old = noise(size, 7);
        let mut new = old.clone();
        let at = size / 3;
        new[at..at + change].copy_from_slice(&noise(change, 99));
        let patch = patch_of(&new, &old);
        assert_eq!(patched(&new, &old), new, "{size}");
        assert!(
            patch.len() < change + 200 + size / 2000,
            "{size} bytes with {change} changed: patch of {} bytes",
            patch.len()
        );
        let mut c = zstd::bulk::Compressor::new(LEVEL).unwrap();
        let (enc, payload) = encode(&mut c, &new, Some(&old)).unwrap();
        assert_eq!((enc, payload.len()), (Encoding::ZstdDelta, patch.len()));
    }

    #[test]
    fn a_small_change_makes_a_small_patch() {
        check(4 << 10, 64);
        check(1 << 20, 64);
        check(10 << 20, 64);
        check(40 << 20, 4096);
    }

    #[test]
    fn an_unrelated_reference_falls_back_to_plain_compression() {
        let text: Vec<u8> = b"hello world, ".iter().copied().cycle().take(100_000).collect();
        let mut c = zstd::bulk::Compressor::new(LEVEL).unwrap();
        let (enc, payload) = encode(&mut c, &text, Some(&noise(100_000, 3))).unwrap();
        assert!(payload.len() < 1000, "{}", payload.len());
        // Either is fine as long as it is the smaller and decodes.
        if enc == Encoding::Zstd {
            assert_eq!(zstd::bulk::decompress(&payload, text.len()).unwrap(), text);
        }
    }

    #[test]
    fn a_manifest_diff_carries_only_changes() {
        let file = |p: &str, b: u8| ManifestEntry {
            path: p.into(),
            kind: EntryKind::File {
                size: 1,
                sha256: Sha256Digest::of(&[b]),
                executable: false,
            },
        };
        let old = Manifest::new((0..10).map(|i| file(&format!("f{i}"), i)).collect());
        let mut entries: Vec<_> = (1..10).map(|i| file(&format!("f{i}"), i)).collect();
        entries[0] = file("f1", 100);
        entries.push(file("g", 1));
        let new = Manifest::new(entries);
        let (removed, changed) = diff(&old, &new).unwrap();
        assert_eq!(removed, ["f0"]);
        let paths: Vec<_> = changed.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["f1", "g"]);
        // Everything changed: the whole manifest is shorter.
        let other = Manifest::new((0..10).map(|i| file(&format!("h{i}"), i)).collect());
        assert!(diff(&old, &other).is_none());
    }
}
