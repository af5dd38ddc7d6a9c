//! Media directories as tar streams (`[backups.NAME] kind = "media"`): the
//! agent packs a directory on its host into a zstd-compressed tar that
//! travels as a data stream, and unpacks such a stream into a directory.
//!
//! Packing walks the tree itself and never follows a symlink (a link is
//! stored as a link; one that leads out of the tree fails the backup, since
//! no restore could recreate it), streaming each file so a large one is
//! never held in memory. Unpacking treats the stream as hostile: every path must be
//! plain relative components, a link must resolve inside the target, no
//! entry is written through a link, and the tree is built in a staging
//! directory beside the target that replaces it only once complete.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

/// The zstd level of media streams: fast, since media is mostly compressed already.
const LEVEL: i32 = 3;

/// Resolves a directory the deployer names: absolute, or relative to ROOT.
pub fn resolve(root: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() { p.to_owned() } else { root.join(p) }
}

/// Writes `dir` as a zstd-compressed tar into `out`; returns the number of
/// entries (the directory itself not counted).
pub fn pack(dir: &Path, out: impl Write) -> Result<u64, String> {
    let meta = fs::symlink_metadata(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let mut enc = zstd::stream::write::Encoder::new(out, LEVEL).map_err(|e| format!("zstd: {e}"))?;
    // A checksum per frame: a damaged stream fails to unpack rather than
    // restoring damaged files.
    enc.include_checksum(true).map_err(|e| format!("zstd: {e}"))?;
    let mut builder = tar::Builder::new(enc);
    builder.follow_symlinks(false);
    let mut entries = 0;
    walk(&mut builder, dir, Path::new(""), &mut entries)?;
    let enc = builder
        .into_inner()
        .map_err(|e| format!("writing the stream of {} failed: {e}", dir.display()))?;
    enc.finish()
        .map_err(|e| format!("writing the stream of {} failed: {e}", dir.display()))?;
    Ok(entries)
}

fn walk<W: Write>(b: &mut tar::Builder<W>, dir: &Path, rel: &Path, entries: &mut u64) -> Result<(), String> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    // A stable order: equal trees give equal streams.
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let rel = rel.join(&name);
        let meta = fs::symlink_metadata(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        header.set_mode(meta.mode() & 0o7777);
        let io_err = |e: io::Error| format!("cannot pack {}: {e}", path.display());
        let ft = meta.file_type();
        if ft.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            b.append_data(&mut header, &rel, io::empty()).map_err(io_err)?;
            *entries += 1;
            walk(b, &path, &rel, entries)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&path).map_err(io_err)?;
            // A link out of the tree could not be restored (unpacking
            // refuses it): fail now rather than keep a backup that cannot
            // come back.
            if !link_stays_inside(rel.components().count() - 1, &target) {
                return Err(format!(
                    "{} links to '{}', outside {}; a restore could not recreate it: make the link relative within the directory, or remove it",
                    path.display(),
                    target.display(),
                    dir.display()
                ));
            }
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            b.append_link(&mut header, &rel, &target).map_err(io_err)?;
            *entries += 1;
        } else if ft.is_file() {
            let file = File::open(&path).map_err(io_err)?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(meta.len());
            // The header's size was read before; a file that grows meanwhile
            // is cut to it rather than breaking the stream.
            b.append_data(&mut header, &rel, file.take(meta.len()))
                .map_err(io_err)?;
            *entries += 1;
        }
        // Sockets, fifos and devices are not media: left out.
    }
    Ok(())
}

/// Writes files held in memory — `(name, mode, contents)`, each a plain
/// relative name — as the same zstd-compressed tar that [`pack`] writes,
/// so [`count`] and [`unpack`] read it; returns the number of entries.
/// For small things only (a config backup), never a media tree.
pub fn pack_files(files: &[(&str, u32, &[u8])], out: impl Write) -> Result<u64, String> {
    let mut enc = zstd::stream::write::Encoder::new(out, LEVEL).map_err(|e| format!("zstd: {e}"))?;
    enc.include_checksum(true).map_err(|e| format!("zstd: {e}"))?;
    let mut builder = tar::Builder::new(enc);
    for (name, mode, bytes) in files {
        plain(Path::new(name))?;
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(bytes.len() as u64);
        header.set_mode(*mode);
        builder
            .append_data(&mut header, name, *bytes)
            .map_err(|e| format!("writing {name} into the stream failed: {e}"))?;
    }
    let enc = builder
        .into_inner()
        .map_err(|e| format!("writing the stream failed: {e}"))?;
    enc.finish().map_err(|e| format!("writing the stream failed: {e}"))?;
    Ok(files.len() as u64)
}

/// Reads a zstd-compressed tar to its end; returns its entries.
pub fn count(input: impl Read) -> Result<u64, String> {
    let dec = zstd::stream::read::Decoder::new(input).map_err(|e| format!("not a zstd stream: {e}"))?;
    let mut archive = tar::Archive::new(dec);
    let mut n = 0;
    for entry in archive.entries().map_err(|e| format!("not a tar stream: {e}"))? {
        let mut entry = entry.map_err(|e| format!("the tar stream is corrupt after {n} entries: {e}"))?;
        io::copy(&mut entry, &mut io::sink())
            .map_err(|e| format!("the tar stream is cut short after {n} entries: {e}"))?;
        n += 1;
    }
    rest(archive)?;
    Ok(n)
}

/// Reads what follows the tar's end marker to the end of the zstd stream,
/// whose checksum is checked only there.
fn rest<R: Read>(archive: tar::Archive<R>) -> Result<(), String> {
    io::copy(&mut archive.into_inner(), &mut io::sink())
        .map(|_| ())
        .map_err(|e| format!("the stream is corrupt or cut short: {e}"))
}

/// Whether `dir` is missing or an empty directory.
pub fn is_empty(dir: &Path) -> Result<bool, String> {
    match fs::read_dir(dir) {
        Ok(mut d) => Ok(d.next().is_none()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(format!("cannot read {}: {e}", dir.display())),
    }
}

/// Unpacks a zstd-compressed tar from `input` into `dir`, which must be
/// missing or empty unless `force` (then it is replaced whole). Built in a
/// staging directory beside `dir`: on any failure `dir` is left as it was.
/// Returns the number of entries.
pub fn unpack(dir: &Path, force: bool, input: impl Read) -> Result<u64, String> {
    if !force && !is_empty(dir)? {
        return Err(format!(
            "{} is not empty; restore into a new directory, or pass --force to replace it",
            dir.display()
        ));
    }
    let parent = dir
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", dir.display()))?;
    fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = tempdir_in(parent, &format!(".{name}.restoring-"))?;
    let result = unpack_into(&staging, input);
    let entries = match result {
        Ok(n) => n,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    // Swap in: the old tree aside, the new one in place, the old one gone.
    let aside = parent.join(format!(".{name}.replaced-{}", std::process::id()));
    let had = fs::symlink_metadata(dir).is_ok();
    if had {
        fs::rename(dir, &aside).map_err(|e| {
            let _ = fs::remove_dir_all(&staging);
            format!("cannot move {} aside: {e}", dir.display())
        })?;
    }
    if let Err(e) = fs::rename(&staging, dir) {
        if had {
            let _ = fs::rename(&aside, dir);
        }
        let _ = fs::remove_dir_all(&staging);
        return Err(format!("cannot move the restored tree to {}: {e}", dir.display()));
    }
    if had {
        let _ = fs::remove_dir_all(&aside);
    }
    Ok(entries)
}

fn tempdir_in(parent: &Path, prefix: &str) -> Result<PathBuf, String> {
    for i in 0..1000u32 {
        let p = parent.join(format!("{prefix}{}-{i}", std::process::id()));
        match fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {}: {e}", p.display())),
        }
    }
    Err(format!("cannot create a staging directory in {}", parent.display()))
}

/// The entry's path as plain components, or why it is refused.
fn plain(path: &Path) -> Result<Vec<&std::ffi::OsStr>, String> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => parts.push(n),
            Component::CurDir => {}
            _ => return Err(format!("'{}' leaves the directory (absolute or '..')", path.display())),
        }
    }
    if parts.is_empty() {
        return Err(String::from("an entry has an empty path"));
    }
    Ok(parts)
}

/// Whether link `target`, placed at depth `depth` (its parent's components),
/// stays inside the tree.
fn link_stays_inside(depth: usize, target: &Path) -> bool {
    let mut level = depth as i64;
    for c in target.components() {
        match c {
            Component::Normal(_) => level += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                level -= 1;
                if level < 0 {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

fn unpack_into(root: &Path, input: impl Read) -> Result<u64, String> {
    let dec = zstd::stream::read::Decoder::new(input).map_err(|e| format!("not a zstd stream: {e}"))?;
    let mut archive = tar::Archive::new(dec);
    let mut n = 0;
    let mut dirs = Vec::new();
    for entry in archive.entries().map_err(|e| format!("not a tar stream: {e}"))? {
        let mut entry = entry.map_err(|e| format!("the stream is corrupt after {n} entries: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("entry {n}: unreadable path: {e}"))?
            .into_owned();
        let parts = plain(&path)?;
        // Never write through a link: every parent must be a real directory.
        let mut at = root.to_path_buf();
        for p in &parts[..parts.len() - 1] {
            at.push(p);
            match fs::symlink_metadata(&at) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(format!("'{}' lies under a link or a file", path.display())),
                Err(_) => fs::create_dir_all(&at).map_err(|e| format!("cannot create {}: {e}", at.display()))?,
            }
        }
        let dest = at.join(parts[parts.len() - 1]);
        let mode = entry
            .header()
            .mode()
            .map_err(|e| format!("'{}': {e}", path.display()))?
            & 0o7777;
        let io_err = |e: io::Error| format!("cannot write {}: {e}", dest.display());
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                match fs::symlink_metadata(&dest) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => return Err(format!("'{}' comes twice", path.display())),
                    Err(_) => fs::create_dir(&dest).map_err(io_err)?,
                }
                // Modes last: a read-only directory must still be filled.
                dirs.push((dest, mode));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&dest)
                    .map_err(io_err)?;
                io::copy(&mut entry, &mut f).map_err(io_err)?;
                f.set_permissions(fs::Permissions::from_mode(mode)).map_err(io_err)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| format!("'{}': {e}", path.display()))?
                    .ok_or_else(|| format!("'{}': a link without a target", path.display()))?
                    .into_owned();
                if !link_stays_inside(parts.len() - 1, &target) {
                    return Err(format!(
                        "'{}' links to '{}', outside the directory",
                        path.display(),
                        target.display()
                    ));
                }
                symlink(&target, &dest).map_err(io_err)?;
            }
            other => {
                return Err(format!(
                    "'{}' is a {other:?} entry; only directories, files and links are restored",
                    path.display()
                ));
            }
        }
        n += 1;
    }
    rest(archive)?;
    for (dir, mode) in dirs.into_iter().rev() {
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
            .map_err(|e| format!("cannot set the mode of {}: {e}", dir.display()))?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn stream(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        zstd::encode_all(&b.into_inner().unwrap()[..], 3).unwrap()
    }

    fn header(kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(0);
        h
    }

    #[test]
    fn a_tree_round_trips_with_modes_and_links() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir_all(src.join("a/b")).unwrap();
        fs::write(src.join("a/b/run.sh"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(src.join("a/b/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(src.join("secret"), "s").unwrap();
        fs::set_permissions(src.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(src.join("empty"), "").unwrap();
        fs::write(src.join("été.txt"), "ü").unwrap();
        symlink("../secret", src.join("a/link")).unwrap();
        let mut bytes = Vec::new();
        let packed = pack(&src, &mut bytes).unwrap();
        assert_eq!(packed, 7);
        assert_eq!(count(&bytes[..]).unwrap(), 7);
        let dst = tmp.path().join("dst");
        assert_eq!(unpack(&dst, false, &bytes[..]).unwrap(), 7);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dst.join("a/b/run.sh")), 0o755);
        assert_eq!(mode(&dst.join("secret")), 0o600);
        assert_eq!(fs::read_to_string(dst.join("été.txt")).unwrap(), "ü");
        assert_eq!(fs::read_link(dst.join("a/link")).unwrap(), Path::new("../secret"));
        assert_eq!(fs::read(dst.join("empty")).unwrap(), b"");
        // A link out of the tree fails the backup, naming it.
        let out = tmp.path().join("out");
        fs::create_dir_all(out.join("d")).unwrap();
        symlink("../../src", out.join("d/up")).unwrap();
        let err = pack(&out, io::sink()).unwrap_err();
        assert!(err.contains("d/up") && err.contains("outside"), "{err}");
        // Not empty now: refused without force, replaced with it.
        let err = unpack(&dst, false, &bytes[..]).unwrap_err();
        assert!(err.contains("not empty"), "{err}");
        fs::write(dst.join("extra"), "x").unwrap();
        unpack(&dst, true, &bytes[..]).unwrap();
        assert!(!dst.join("extra").exists());
    }

    #[test]
    fn hostile_streams_write_nothing_outside_and_leave_the_target_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dst = tmp.path().join("dst");
        let escaping = stream(|b| {
            let mut h = header(tar::EntryType::Symlink);
            b.append_link(&mut h, "out", "../../etc").unwrap();
        });
        let err = unpack(&dst, false, &escaping[..]).unwrap_err();
        assert!(err.contains("outside the directory"), "{err}");
        let absolute = stream(|b| {
            let mut h = header(tar::EntryType::Symlink);
            b.append_link(&mut h, "out", "/etc").unwrap();
        });
        assert!(unpack(&dst, false, &absolute[..]).is_err());
        // `..` in a path: written raw, since tar's builder refuses it.
        let mut raw = tar::Builder::new(Vec::new());
        let mut h = header(tar::EntryType::Regular);
        h.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../escape");
        h.set_cksum();
        raw.append(&h, io::empty()).unwrap();
        let dotdot = zstd::encode_all(&raw.into_inner().unwrap()[..], 3).unwrap();
        let err = unpack(&dst, false, &dotdot[..]).unwrap_err();
        assert!(err.contains("leaves the directory"), "{err}");
        // A link inside, then a file written through it.
        let through = stream(|b| {
            let mut h = header(tar::EntryType::Symlink);
            b.append_link(&mut h, "l", ".").unwrap();
            let mut h = header(tar::EntryType::Regular);
            b.append_data(&mut h, "l/x", io::empty()).unwrap();
        });
        let err = unpack(&dst, false, &through[..]).unwrap_err();
        assert!(err.contains("under a link"), "{err}");
        assert!(!tmp.path().join("escape").exists());
        assert!(!dst.exists(), "a failed unpack leaves no target");
        let leftovers: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
