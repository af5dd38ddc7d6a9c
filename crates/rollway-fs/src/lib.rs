//! Replacing a file or a symlink so a reader sees the old one or the new
//! one, never a torn one: write (or link) under a unique temporary name in
//! the same directory, flush, rename over, flush the directory.
//!
//! The temporary names come from `tempfile` (random, created with
//! `O_EXCL`), so two threads of one process — or two processes — writing
//! the same path never share a temporary file; the last rename wins whole.
//! Every error names the path it concerns. `holder.rs` is the other
//! primitive two crates shared: a lock file that names its holder.

use std::fs::{self, File, Permissions};
use std::io::{self, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

mod holder;
pub use holder::{HoldError, HolderLock, beside, this_process};

/// Writes `bytes` to `path` atomically, creating the parent directory.
///
/// `mode`: the file's exact permission bits (set after creation, so the
/// umask can narrow nothing and the file is never wider before); `None`:
/// `0666` narrowed by the umask, as `fs::write` creates files.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
    let dir = parent_of(path);
    fs::create_dir_all(dir).map_err(|e| named("cannot create directory", dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&hidden_prefix(path))
        .suffix(".tmp")
        // Applied at creation, narrowed by the umask like `fs::write`.
        .permissions(Permissions::from_mode(mode.unwrap_or(0o666)))
        .tempfile_in(dir)
        .map_err(|e| named("cannot create a temporary file in", dir, e))?;
    let write = |f: &mut File| -> io::Result<()> {
        if let Some(mode) = mode {
            // The umask may have narrowed it; the caller asked for exactly this.
            f.set_permissions(Permissions::from_mode(mode))?;
        }
        f.write_all(bytes)?;
        f.sync_all()
    };
    write(tmp.as_file_mut()).map_err(|e| named("cannot write", tmp.path(), e))?;
    // On failure the temporary file is removed when `tmp` drops.
    tmp.persist(path).map_err(|e| named("cannot replace", path, e.error))?;
    sync_dir(dir);
    Ok(())
}

/// Points the symlink `link` at `target` atomically (a new link under a
/// unique name, renamed over `link`). `link` must not be a directory.
pub fn replace_symlink(link: &Path, target: &Path) -> io::Result<()> {
    let dir = parent_of(link);
    let tmp = tempfile::Builder::new()
        .prefix(&hidden_prefix(link))
        .suffix(".tmp")
        .make_in(dir, |p| std::os::unix::fs::symlink(target, p))
        .map_err(|e| named("cannot create a symlink in", dir, e))?
        .into_temp_path();
    // On failure the temporary link is removed when the error drops.
    tmp.persist(link).map_err(|e| named("cannot replace", link, e.error))?;
    sync_dir(dir);
    Ok(())
}

/// A fresh path in `dir` that no other caller gets (`.PREFIX` + random +
/// `SUFFIX`), for what must be written by other means (a directory tree, a
/// stream) and renamed into place. Nothing is created; collisions with
/// existing files are for the caller's `create_new` to refuse.
pub fn temp_path(dir: &Path, prefix: &str, suffix: &str) -> io::Result<PathBuf> {
    // A `TempPath` reserved with O_EXCL, removed at once: the name is unique
    // (random) and known free at that moment.
    let reserved = tempfile::Builder::new()
        .prefix(&format!(".{prefix}"))
        .suffix(suffix)
        .tempfile_in(dir)
        .map_err(|e| named("cannot create a temporary file in", dir, e))?
        .into_temp_path();
    let path = reserved.to_path_buf();
    reserved
        .close()
        .map_err(|e| named("cannot remove the temporary file", &path, e))?;
    Ok(path)
}

/// Flushes a directory's entries (a rename in it) to disk; best effort: a
/// file system without directory fsync loses only durability, not atomicity.
pub fn sync_dir(dir: &Path) {
    if let Ok(f) = File::open(dir) {
        let _ = f.sync_all();
    }
}

fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// `.NAME.` — temporary files hide beside the file they replace.
fn hidden_prefix(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    format!(".{name}.")
}

/// `e`, its kind kept, with a message naming `path`.
fn named(what: &str, path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_threads_writing_one_path_leave_one_whole_file_and_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/value");
        let threads = 16;
        let rounds = 50;
        std::thread::scope(|s| {
            for t in 0..threads {
                let path = &path;
                s.spawn(move || {
                    // Each writer's content is recognisable and long enough
                    // that a torn write would show.
                    let body = format!("{t:02}").repeat(4096);
                    for _ in 0..rounds {
                        write_atomic(path, body.as_bytes(), Some(0o640)).unwrap();
                        let seen = fs::read_to_string(path).unwrap();
                        assert_eq!(seen.len(), 8192);
                        assert!(
                            seen.as_bytes().chunks(2).all(|c| c == &seen.as_bytes()[..2]),
                            "torn file"
                        );
                    }
                });
            }
        });
        let names: Vec<String> = fs::read_dir(dir.path().join("state"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["value".to_owned()], "temporary files left behind");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    #[test]
    fn many_threads_switching_one_symlink_leave_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("current");
        std::thread::scope(|s| {
            for t in 0..8 {
                let link = &link;
                s.spawn(move || {
                    for _ in 0..50 {
                        replace_symlink(link, Path::new(&format!("releases/r{t}"))).unwrap();
                    }
                });
            }
        });
        let target = fs::read_link(&link).unwrap();
        assert!(target.to_string_lossy().starts_with("releases/r"));
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temporary links left behind"
        );
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, "x").unwrap();
        let path = blocker.join("inside");
        let e = write_atomic(&path, b"x", None).unwrap_err();
        assert!(e.to_string().contains(&blocker.display().to_string()), "{e}");
    }

    #[test]
    fn without_a_mode_the_file_is_created_like_fs_write() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        fs::write(&a, "x").unwrap();
        write_atomic(&b, b"x", None).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&a), mode(&b));
    }

    #[test]
    fn temp_paths_are_unique_and_free() {
        let dir = tempfile::tempdir().unwrap();
        let a = temp_path(dir.path(), "pack-", ".tmp").unwrap();
        let b = temp_path(dir.path(), "pack-", ".tmp").unwrap();
        assert_ne!(a, b);
        assert!(!a.exists() && !b.exists());
        assert!(a.file_name().unwrap().to_string_lossy().starts_with(".pack-"));
    }
}
