//! Writing normalised tar headers: ustar with owner 0:0, empty user and
//! group names, one fixed mtime and normalised modes; a PAX record carries a
//! path or link target too long for ustar. Every choice here is fixed so the
//! same tree always gives the same bytes.

use crate::manifest::{MODE_DIR, MODE_EXEC, MODE_FILE, MODE_SYMLINK};

/// The mtime of every entry: 1980-01-01T00:00:00Z, the earliest time zip
/// and other formats downstream accept, so a repacked tree stays valid.
pub const NORMALISED_MTIME: u64 = 315_532_800;

pub const BLOCK: usize = 512;

/// What a header describes.
#[derive(Debug, Clone, Copy)]
pub enum HeaderKind<'a> {
    Dir,
    File { size: u64, executable: bool },
    Symlink { target: &'a str },
}

/// Appends the header block(s) for one entry: an optional PAX extended
/// header, then the ustar header. Data (for files) follows, padded by
/// [`padding`].
pub fn append_header(out: &mut Vec<u8>, path: &str, kind: HeaderKind<'_>) {
    let name = match kind {
        HeaderKind::Dir => format!("{path}/"),
        _ => path.to_owned(),
    };
    let (prefix, short_name) = split_ustar(&name).unwrap_or(("", ""));
    let link = match kind {
        HeaderKind::Symlink { target } => target,
        _ => "",
    };
    let mut pax = Vec::new();
    if short_name.is_empty() {
        pax_record(&mut pax, "path", &name);
    }
    if link.len() > 100 {
        pax_record(&mut pax, "linkpath", link);
    }
    if !pax.is_empty() {
        let mut h = blank();
        put(&mut h[0..100], b"././@PaxHeader");
        octal(&mut h[100..108], 0o644);
        octal(&mut h[124..136], pax.len() as u64);
        h[156] = b'x';
        finish(&mut h);
        out.extend_from_slice(&h);
        out.extend_from_slice(&pax);
        out.resize(out.len() + padding(pax.len() as u64), 0);
    }
    let mut h = blank();
    if short_name.is_empty() {
        // Readers without PAX see a truncated name; every reader we target
        // takes the PAX path.
        put(&mut h[0..100], truncate(name.as_bytes(), 100));
    } else {
        put(&mut h[0..100], short_name.as_bytes());
        put(&mut h[345..500], prefix.as_bytes());
    }
    let (mode, size, flag) = match kind {
        HeaderKind::Dir => (MODE_DIR, 0, b'5'),
        HeaderKind::File { size, executable } => (if executable { MODE_EXEC } else { MODE_FILE }, size, b'0'),
        HeaderKind::Symlink { .. } => (MODE_SYMLINK, 0, b'2'),
    };
    octal(&mut h[100..108], u64::from(mode));
    size_field(&mut h[124..136], size);
    h[156] = flag;
    put(&mut h[157..257], truncate(link.as_bytes(), 100));
    finish(&mut h);
    out.extend_from_slice(&h);
}

/// Zero bytes that round `len` up to a whole block.
pub fn padding(len: u64) -> usize {
    ((BLOCK as u64 - len % BLOCK as u64) % BLOCK as u64) as usize
}

/// Splits a name into ustar prefix (≤ 155) and name (≤ 100) at a `/`.
/// The rightmost split that fits is taken, so the choice is fixed.
fn split_ustar(name: &str) -> Option<(&str, &str)> {
    if name.len() <= 100 {
        return Some(("", name));
    }
    let bytes = name.as_bytes();
    // A directory's trailing slash belongs to the name part.
    let search_end = if name.ends_with('/') {
        bytes.len() - 1
    } else {
        bytes.len()
    };
    (0..search_end)
        .rev()
        .filter(|&i| bytes[i] == b'/')
        .map(|i| (&name[..i], &name[i + 1..]))
        .find(|(p, n)| p.len() <= 155 && n.len() <= 100 && !n.is_empty() && *n != "/")
}

fn blank() -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[136..148], NORMALISED_MTIME);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], 0);
    octal(&mut h[337..345], 0);
    h
}

fn put(field: &mut [u8], value: &[u8]) {
    field[..value.len()].copy_from_slice(value);
}

fn truncate(b: &[u8], n: usize) -> &[u8] {
    &b[..b.len().min(n)]
}

/// A NUL-terminated, zero-padded octal number filling the field.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}

/// Sizes of 8 GiB and more do not fit 11 octal digits; GNU base-256 then.
fn size_field(field: &mut [u8], size: u64) {
    if size < 1 << 33 {
        octal(field, size);
    } else {
        field.fill(0);
        field[0] = 0x80;
        field[4..12].copy_from_slice(&size.to_be_bytes());
    }
}

fn finish(h: &mut [u8; BLOCK]) {
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
}

/// One PAX record: "LEN key=value\n", LEN counting itself.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &str) {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}={value}\n").as_bytes());
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::io::Read as _;

    /// Writes entries and reads them back with the `tar` crate.
    fn check(entries: &[(&str, HeaderKind<'_>)]) {
        let mut out = Vec::new();
        for (path, kind) in entries {
            append_header(&mut out, path, *kind);
            if let HeaderKind::File { size, .. } = kind {
                out.extend(std::iter::repeat_n(b'x', *size as usize));
                out.resize(out.len() + padding(*size), 0);
            }
        }
        out.extend_from_slice(&[0u8; 1024]);
        assert_eq!(out.len() % BLOCK, 0);
        let mut ar = tar::Archive::new(&out[..]);
        let mut got = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            assert_eq!(h.uid().unwrap(), 0);
            assert_eq!(h.gid().unwrap(), 0);
            assert_eq!(h.mtime().unwrap(), NORMALISED_MTIME);
            assert_eq!(h.username_bytes(), Some(&b""[..]));
            let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let link = e.link_name_bytes().map(|l| String::from_utf8(l.into_owned()).unwrap());
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            got.push((
                path,
                h.mode().unwrap(),
                h.entry_type().as_byte(),
                data.len() as u64,
                link,
            ));
        }
        assert_eq!(got.len(), entries.len());
        for ((path, kind), (gpath, mode, flag, size, link)) in entries.iter().zip(got) {
            match kind {
                HeaderKind::Dir => {
                    assert_eq!(gpath, format!("{path}/"));
                    assert_eq!((mode, flag), (0o755, b'5'));
                }
                HeaderKind::File { size: s, executable } => {
                    assert_eq!(&gpath, path);
                    assert_eq!(mode, if *executable { 0o755 } else { 0o644 });
                    assert_eq!((flag, size), (b'0', *s));
                }
                HeaderKind::Symlink { target } => {
                    assert_eq!(&gpath, path);
                    assert_eq!(flag, b'2');
                    assert_eq!(link.as_deref(), Some(*target));
                }
            }
        }
    }

    #[test]
    fn headers_round_trip_through_a_tar_reader() {
        let long_dir = format!("{}/{}", "d".repeat(120), "e".repeat(90));
        let long_file = format!("{long_dir}/{}", "f".repeat(99));
        let no_split = "n".repeat(180);
        let long_target = "t/".repeat(80);
        check(&[
            ("a", HeaderKind::Dir),
            (
                "a/b.js",
                HeaderKind::File {
                    size: 5,
                    executable: false,
                },
            ),
            (
                "a/run",
                HeaderKind::File {
                    size: 512,
                    executable: true,
                },
            ),
            (
                "a/empty",
                HeaderKind::File {
                    size: 0,
                    executable: false,
                },
            ),
            ("l", HeaderKind::Symlink { target: "a/b.js" }),
            (&long_dir, HeaderKind::Dir),
            (
                &long_file,
                HeaderKind::File {
                    size: 3,
                    executable: false,
                },
            ),
            (
                &no_split,
                HeaderKind::File {
                    size: 1,
                    executable: false,
                },
            ),
            ("ll", HeaderKind::Symlink { target: &long_target }),
        ]);
    }

    #[test]
    fn pax_record_length_counts_itself() {
        for value_len in [0usize, 1, 5, 80, 89, 90, 91, 95, 985, 995, 9990] {
            let mut out = Vec::new();
            let v = "v".repeat(value_len);
            pax_record(&mut out, "path", &v);
            let text = String::from_utf8(out).unwrap();
            let (len, _) = text.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), text.len(), "{value_len}");
        }
    }
}
