//! Where backup objects live: a local directory or an S3-compatible
//! bucket (`s3.rs`), behind one type, [`Storage`], and its [`Object`]s.
//! Either way an object appears under its final name only complete — in a
//! directory a hidden partial file beside it, fsynced, renamed, the
//! directory fsynced; in a bucket a multipart upload completed only at
//! the end and aborted otherwise — is read as a stream (checked against
//! its recorded size and SHA-256 by reading it whole), and is removed
//! when it expires.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rollway_model::Sha256Digest;
use sha2::{Digest, Sha256};

use super::BackupError;
use super::s3::{Bucket, S3Settings};

/// Where a backup definition's objects are stored.
#[derive(Debug, Clone)]
pub struct Storage {
    place: Place,
    meter: Meter,
}

/// The bytes written into or read from a storage so far, shared with
/// whoever shows them (a progress bar with bytes/s on a terminal).
#[derive(Debug, Clone, Default)]
pub struct Meter(Arc<AtomicU64>);

impl Meter {
    /// The bytes counted so far.
    pub fn bytes(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self, n: usize) {
        self.0.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// A stream read from storage, counted.
struct Counted<R> {
    inner: R,
    meter: Meter,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.meter.add(n);
        Ok(n)
    }
}

#[derive(Debug, Clone)]
enum Place {
    /// A local directory (absolute: a record's location must lead to the
    /// object from wherever a later command runs).
    Local(PathBuf),
    /// A bucket and prefix, with its client.
    S3(Arc<Bucket>),
}

impl Storage {
    /// A local directory, absolute.
    pub fn local(dir: impl Into<PathBuf>) -> Self {
        Self {
            place: Place::Local(dir.into()),
            meter: Meter::default(),
        }
    }

    /// A bucket's storage; nothing is sent to the server yet.
    pub fn s3(settings: S3Settings) -> Result<Self, BackupError> {
        Ok(Self {
            place: Place::S3(Arc::new(Bucket::connect(settings)?)),
            meter: Meter::default(),
        })
    }

    /// The same storage, counting every byte its objects write or read into `meter`.
    pub fn metered(self, meter: Meter) -> Self {
        Self { meter, ..self }
    }

    /// The object `name` (a file name in the directory, a key under the prefix).
    pub fn object(&self, name: &str) -> Object {
        Object {
            storage: self.clone(),
            name: name.to_owned(),
        }
    }

    /// The directory, or `s3://BUCKET/PREFIX`, as messages name it.
    pub fn describe(&self) -> String {
        match &self.place {
            Place::Local(dir) => dir.display().to_string(),
            Place::S3(b) => b.describe(),
        }
    }
}

/// One object of a storage, stored or to be.
#[derive(Debug, Clone)]
pub struct Object {
    storage: Storage,
    name: String,
}

impl Object {
    /// Where it is, as a backup records it: an absolute path, or `s3://BUCKET/KEY`.
    pub fn location(&self) -> String {
        match &self.storage.place {
            Place::Local(dir) => object_path(dir, &self.name).display().to_string(),
            Place::S3(b) => b.location(&self.name),
        }
    }

    /// Whether the object is there.
    pub fn exists(&self) -> Result<bool, BackupError> {
        match &self.storage.place {
            Place::Local(dir) => Ok(object_path(dir, &self.name).exists()),
            Place::S3(b) => b.exists(&self.name),
        }
    }

    /// A writer that makes the object appear only when committed; dropped
    /// uncommitted, it leaves nothing under the object's name.
    pub(crate) fn create(&self) -> Result<Writer, BackupError> {
        match &self.storage.place {
            Place::Local(dir) => {
                let partial = Partial::create(dir, &self.name)?;
                let file = BufWriter::with_capacity(1 << 16, partial.file()?);
                Ok(Writer {
                    sink: Sink::Local { partial, file },
                    meter: self.storage.meter.clone(),
                })
            }
            Place::S3(b) => Ok(Writer {
                sink: Sink::S3(b.upload(&self.name)?),
                meter: self.storage.meter.clone(),
            }),
        }
    }

    /// The stored bytes as a stream; none when the object is missing.
    pub(crate) fn open(&self) -> Result<Option<Box<dyn Read + Send>>, BackupError> {
        let meter = self.storage.meter.clone();
        let counted = |inner: Box<dyn Read + Send>| -> Box<dyn Read + Send> { Box::new(Counted { inner, meter }) };
        Ok(self.open_uncounted()?.map(counted))
    }

    fn open_uncounted(&self) -> Result<Option<Box<dyn Read + Send>>, BackupError> {
        match &self.storage.place {
            Place::Local(dir) => {
                let path = object_path(dir, &self.name);
                match File::open(&path) {
                    Ok(f) => Ok(Some(Box::new(io::BufReader::with_capacity(1 << 16, f)))),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(BackupError::Io {
                        what: "open",
                        path,
                        source,
                    }),
                }
            }
            Place::S3(b) => Ok(b.open(&self.name)?.map(|d| Box::new(d) as Box<dyn Read + Send>)),
        }
    }

    /// The stored bytes as a stream; a missing object is an error naming it.
    pub(crate) fn open_existing(&self) -> Result<Box<dyn Read + Send>, BackupError> {
        self.open()?
            .ok_or_else(|| self.error("open", io::ErrorKind::NotFound.into()))
    }

    /// An IO error of this object's stream, naming the object (and the endpoint of a bucket).
    pub fn error(&self, what: &'static str, source: io::Error) -> BackupError {
        match &self.storage.place {
            Place::Local(dir) => BackupError::Io {
                what,
                path: object_path(dir, &self.name),
                source,
            },
            Place::S3(b) => b.stream_error(what, &self.name, &source),
        }
    }

    /// Deletes an expired object; one already gone is not an error.
    pub fn remove(&self) -> Result<(), BackupError> {
        match &self.storage.place {
            Place::Local(dir) => remove_object(&object_path(dir, &self.name)),
            Place::S3(b) => b.remove(&self.name),
        }
    }

    /// Deletes what a killed writer left beside the object: hidden partial
    /// files in a directory (how many went). A bucket's incomplete upload is
    /// no object and is never listed; its parts go with the bucket's
    /// `AbortIncompleteMultipartUpload` lifecycle rule.
    pub fn remove_partials(&self) -> usize {
        match &self.storage.place {
            Place::Local(dir) => remove_partials(&object_path(dir, &self.name)),
            Place::S3(_) => 0,
        }
    }
}

/// An object being written, its bytes counted.
pub(crate) struct Writer {
    sink: Sink,
    meter: Meter,
}

/// Where an object's bytes go: a hidden partial file, or a multipart upload.
enum Sink {
    Local { partial: Partial, file: BufWriter<File> },
    S3(super::s3::Upload),
}

impl Writer {
    /// Makes the object appear under its name, complete: the file fsynced
    /// and renamed (the directory fsynced), or the upload completed.
    pub(crate) fn commit(self) -> Result<String, BackupError> {
        match self.sink {
            Sink::Local { partial, file } => {
                let io_err = |source| BackupError::Io {
                    what: "write the backup to",
                    path: partial.path().to_owned(),
                    source,
                };
                let file = file.into_inner().map_err(|e| io_err(e.into_error()))?;
                file.sync_all().map_err(io_err)?;
                Ok(partial.persist()?.display().to_string())
            }
            Sink::S3(upload) => upload.commit(),
        }
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.sink {
            Sink::Local { file, .. } => file.write(buf),
            Sink::S3(u) => u.write(buf),
        }?;
        self.meter.add(n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Local { file, .. } => file.flush(),
            Sink::S3(u) => u.flush(),
        }
    }
}

/// Where the object of `file_name` lives in `dir`.
fn object_path(dir: &Path, file_name: &str) -> PathBuf {
    dir.join(file_name)
}

/// A hidden file being written beside its final name; removed on drop
/// unless persisted.
pub(crate) struct Partial {
    temp: Option<tempfile::NamedTempFile>,
    dir: PathBuf,
    target: PathBuf,
}

impl Partial {
    pub(crate) fn create(dir: &Path, file_name: &str) -> Result<Self, BackupError> {
        fs::create_dir_all(dir).map_err(|source| BackupError::Io {
            what: "create the storage directory",
            path: dir.to_owned(),
            source,
        })?;
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{file_name}.partial-"))
            .tempfile_in(dir)
            .map_err(|source| BackupError::Io {
                what: "create a file in",
                path: dir.to_owned(),
                source,
            })?;
        Ok(Self {
            temp: Some(temp),
            dir: dir.to_owned(),
            target: object_path(dir, file_name),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        self.temp.as_ref().map_or(&self.target, |t| t.path())
    }

    /// A second handle on the partial file, for writing.
    pub(crate) fn file(&self) -> Result<File, BackupError> {
        let t = self.temp.as_ref().ok_or_else(|| BackupError::Io {
            what: "write",
            path: self.target.clone(),
            source: io::Error::other("the partial file is gone"),
        })?;
        t.as_file().try_clone().map_err(|source| BackupError::Io {
            what: "open",
            path: t.path().to_owned(),
            source,
        })
    }

    /// Renames the partial file to its final name and fsyncs the directory.
    pub(crate) fn persist(mut self) -> Result<PathBuf, BackupError> {
        let temp = self.temp.take().ok_or_else(|| BackupError::Io {
            what: "persist",
            path: self.target.clone(),
            source: io::Error::other("the partial file is gone"),
        })?;
        temp.persist_noclobber(&self.target).map_err(|e| BackupError::Io {
            what: "move the finished backup to",
            path: self.target.clone(),
            source: e.error,
        })?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| BackupError::Io {
                what: "sync the storage directory",
                path: self.dir.clone(),
                source,
            })?;
        Ok(self.target.clone())
    }
}

/// Reads the object whole and compares its size and SHA-256 with the
/// record: every difference as a sentence (none when it is intact).
pub fn verify_object(object: &Object, size: u64, sha256: &Sha256Digest) -> Result<Vec<String>, BackupError> {
    let location = object.location();
    let Some(mut stream) = object.open()? else {
        return Ok(vec![format!("its object {location} is missing")]);
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n_total = 0u64;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(object.error("read", e)),
        };
        hasher.update(&buf[..n]);
        n_total += n as u64;
    }
    let got = Sha256Digest::from_bytes(hasher.finalize().into());
    let mut problems = Vec::new();
    if n_total != size {
        problems.push(format!(
            "its object {location} has {n_total} bytes, the record says {size} (truncated or replaced)"
        ));
    }
    if &got != sha256 {
        problems.push(format!(
            "its object {location} has SHA-256 {got}, the record says {sha256} (modified or damaged)"
        ));
    }
    Ok(problems)
}

/// Deletes the hidden partial files a killed writer left beside the object
/// at `path`; returns how many went.
fn remove_partials(path: &Path) -> usize {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return 0;
    };
    let prefix = format!(".{}.partial-", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter(|e| fs::remove_file(e.path()).is_ok())
        .count()
}

/// Deletes a file; one already gone is not an error.
fn remove_object(path: &Path) -> Result<(), BackupError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(BackupError::Io {
            what: "delete",
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::Write as _;

    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn an_object_appears_only_when_persisted_and_never_over_another() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("store");
        // Dropped unpersisted: nothing is left, not even the partial file.
        let p = Partial::create(&d, "a.age").unwrap();
        p.file().unwrap().write_all(b"half").unwrap();
        assert!(names(&d)[0].starts_with(".a.age.partial-"));
        drop(p);
        assert!(names(&d).is_empty());
        // What a killed writer leaves (a partial file never dropped) is found and removed.
        let kept = Partial::create(&d, "a.age").unwrap();
        std::mem::forget(kept);
        assert_eq!(names(&d).len(), 1);
        assert_eq!(remove_partials(&d.join("a.age")), 1);
        assert!(names(&d).is_empty());
        // Persisted: under its name only.
        let p = Partial::create(&d, "a.age").unwrap();
        p.file().unwrap().write_all(b"whole").unwrap();
        assert_eq!(p.persist().unwrap(), d.join("a.age"));
        assert_eq!(names(&d), ["a.age"]);
        // A second object of the same name does not replace the first.
        let p = Partial::create(&d, "a.age").unwrap();
        p.file().unwrap().write_all(b"other").unwrap();
        assert!(p.persist().is_err());
        assert_eq!(fs::read(d.join("a.age")).unwrap(), b"whole");
        assert_eq!(names(&d), ["a.age"]);
    }

    #[test]
    fn verify_object_names_each_difference() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("o");
        fs::write(&f, b"bytes").unwrap();
        let storage = Storage::local(dir.path());
        let good = Sha256Digest::of(b"bytes");
        let check = |size: u64, sha: &Sha256Digest, expected: &[&str]| {
            let got = verify_object(&storage.object("o"), size, sha).unwrap();
            assert_eq!(got.len(), expected.len(), "{got:?}");
            for (g, e) in got.iter().zip(expected) {
                assert!(g.contains(e), "{g} should say {e}");
            }
        };
        check(5, &good, &[]);
        check(6, &good, &["has 5 bytes, the record says 6"]);
        check(5, &Sha256Digest::of(b"other"), &["modified or damaged"]);
        check(
            4,
            &Sha256Digest::of(b"byte"),
            &["truncated or replaced", "modified or damaged"],
        );
        let gone = verify_object(&storage.object("missing"), 5, &good).unwrap();
        assert!(gone[0].contains("is missing"), "{gone:?}");
        let o = storage.object("o");
        assert!(o.exists().unwrap());
        assert!(o.remove().is_ok() && o.remove().is_ok(), "removing twice is fine");
        assert!(!o.exists().unwrap() && !f.exists());
    }
}
