//! The manifest every archive carries: each path with its type, mode, size,
//! SHA-256 and symlink target, in one canonical JSON encoding whose SHA-256
//! is the artifact's `content_digest` (the identity of the tree).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use rollway_model::Sha256Digest;
use rollway_model::entities::artifact::ContentFolder;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Name of the manifest entry, always the last entry of the archive.
pub const MANIFEST_NAME: &str = ".rollway-manifest.json";

/// The manifest format tag; a reader refuses any other.
pub const MANIFEST_FORMAT: &str = "rollway-manifest/1";

/// Normalised modes: what the archive stores whatever the source had.
pub const MODE_FILE: u32 = 0o644;
pub const MODE_EXEC: u32 = 0o755;
pub const MODE_DIR: u32 = 0o755;
pub const MODE_SYMLINK: u32 = 0o777;

/// How deep a symlink chain may go before it counts as a loop (Linux's limit).
const MAX_SYMLINK_HOPS: usize = 40;

/// What an entry is, with what only that kind has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File {
        size: u64,
        sha256: Sha256Digest,
        executable: bool,
    },
    Symlink {
        target: String,
    },
}

/// One path of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// Relative, `/`-separated, no `.` or `..` components, no trailing slash.
    pub path: String,
    pub kind: EntryKind,
}

impl ManifestEntry {
    /// The normalised mode stored in the archive.
    pub fn mode(&self) -> u32 {
        match &self.kind {
            EntryKind::Dir => MODE_DIR,
            EntryKind::File { executable: true, .. } => MODE_EXEC,
            EntryKind::File { .. } => MODE_FILE,
            EntryKind::Symlink { .. } => MODE_SYMLINK,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self.kind {
            EntryKind::Dir => "dir",
            EntryKind::File { .. } => "file",
            EntryKind::Symlink { .. } => "symlink",
        }
    }
}

/// The whole tree, entries sorted by path bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    pub entries: Vec<ManifestEntry>,
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON: {0}")]
    Json(String),
    #[error("manifest format '{0}' is not {MANIFEST_FORMAT}")]
    Format(String),
    #[error("manifest entry '{path}': {problem}")]
    Entry { path: String, problem: String },
    #[error("manifest is not in canonical form (entries unsorted, duplicated or re-encoded)")]
    NotCanonical,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireManifest {
    format: String,
    entries: Vec<WireEntry>,
}

/// Field order here is the canonical order; `None` fields are left out.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEntry {
    path: String,
    #[serde(rename = "type")]
    kind: String,
    mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<String>,
}

impl Manifest {
    /// A manifest of these entries, sorted into canonical order.
    pub fn new(mut entries: Vec<ManifestEntry>) -> Self {
        entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        Self { entries }
    }

    /// The canonical encoding: compact JSON, entries sorted by path bytes,
    /// fields in a fixed order. This exact byte string is the manifest entry
    /// of the archive, and its SHA-256 is the content digest.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let wire = WireManifest {
            format: MANIFEST_FORMAT.to_owned(),
            entries: self
                .entries
                .iter()
                .map(|e| {
                    let (size, sha256, target) = match &e.kind {
                        EntryKind::Dir => (None, None, None),
                        EntryKind::File { size, sha256, .. } => (Some(*size), Some(sha256.to_string()), None),
                        EntryKind::Symlink { target } => (None, None, Some(target.clone())),
                    };
                    WireEntry {
                        path: e.path.clone(),
                        kind: e.type_name().to_owned(),
                        mode: format!("{:04o}", e.mode()),
                        size,
                        sha256,
                        target,
                    }
                })
                .collect(),
        };
        // Serialising plain strings and numbers cannot fail.
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// SHA-256 of the canonical encoding.
    pub fn content_digest(&self) -> Sha256Digest {
        Sha256Digest::from_bytes(Sha256::digest(self.canonical_bytes()).into())
    }

    /// Parses a manifest and insists that it is canonical (so that its
    /// SHA-256 is the content digest) and that every entry is well formed.
    pub fn parse(bytes: &[u8]) -> Result<Self, ManifestError> {
        let manifest = Self::parse_own(bytes)?;
        if manifest.canonical_bytes() != bytes {
            return Err(ManifestError::NotCanonical);
        }
        Ok(manifest)
    }

    /// [`Manifest::parse`] of a manifest this program wrote itself (a cache
    /// entry, a host's record of a release): every entry is checked and the
    /// order too, but not that the bytes are canonical — they were made by
    /// `canonical_bytes`, and re-serialising a large manifest to prove it
    /// costs as much as parsing it.
    pub fn parse_own(bytes: &[u8]) -> Result<Self, ManifestError> {
        let wire: WireManifest = serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
        if wire.format != MANIFEST_FORMAT {
            return Err(ManifestError::Format(wire.format));
        }
        let mut entries = Vec::with_capacity(wire.entries.len());
        for w in wire.entries {
            let bad = |problem: &str| ManifestError::Entry {
                path: w.path.clone(),
                problem: problem.to_owned(),
            };
            check_path(&w.path).map_err(|p| bad(&p.to_string()))?;
            let kind = match (w.kind.as_str(), w.mode.as_str()) {
                ("dir", "0755") if w.size.is_none() && w.sha256.is_none() && w.target.is_none() => EntryKind::Dir,
                ("file", mode @ ("0644" | "0755")) if w.target.is_none() => {
                    let size = w.size.ok_or_else(|| bad("file without size"))?;
                    let sha = w.sha256.clone().ok_or_else(|| bad("file without sha256"))?;
                    let sha256 = Sha256Digest::try_from(sha).map_err(|e| bad(&e.to_string()))?;
                    EntryKind::File {
                        size,
                        sha256,
                        executable: mode == "0755",
                    }
                }
                ("symlink", "0777") if w.size.is_none() && w.sha256.is_none() => {
                    let target = w.target.clone().ok_or_else(|| bad("symlink without target"))?;
                    check_link_target(&target).map_err(|p| bad(&p.to_string()))?;
                    EntryKind::Symlink { target }
                }
                (kind, mode) => {
                    return Err(bad(&format!(
                        "type '{kind}' with mode {mode} and these fields is not allowed"
                    )));
                }
            };
            entries.push(ManifestEntry { path: w.path, kind });
        }
        let sorted = entries.windows(2).all(|w| w[0].path.as_bytes() < w[1].path.as_bytes());
        if !sorted {
            return Err(ManifestError::NotCanonical);
        }
        Ok(Self { entries })
    }

    /// Total regular files.
    pub fn file_count(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| matches!(e.kind, EntryKind::File { .. }))
            .count() as u64
    }

    /// Total bytes of regular files.
    pub fn file_bytes(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| match e.kind {
                EntryKind::File { size, .. } => size,
                _ => 0,
            })
            .sum()
    }

    /// Seed 000 `contents`: each top-level directory with the files and
    /// bytes under it at any depth; top-level files and symlinks count
    /// under `.`.
    pub fn contents(&self) -> Vec<ContentFolder> {
        let mut folders: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for e in &self.entries {
            let top = match e.path.split_once('/') {
                Some((top, _)) => top,
                None if matches!(e.kind, EntryKind::Dir) => e.path.as_str(),
                None => ".",
            };
            let slot = folders.entry(top).or_default();
            if let EntryKind::File { size, .. } = e.kind {
                slot.0 += 1;
                slot.1 += size;
            }
        }
        folders
            .into_iter()
            .map(|(path, (files, bytes))| ContentFolder {
                path: path.to_owned(),
                files,
                bytes,
            })
            .collect()
    }

    /// The first symlink that resolves outside the tree (or loops), with why.
    pub fn first_escaping_symlink(&self) -> Option<(&ManifestEntry, SymlinkProblem)> {
        let kinds: HashMap<&str, &EntryKind> = self.entries.iter().map(|e| (e.path.as_str(), &e.kind)).collect();
        self.entries.iter().find_map(|e| match &e.kind {
            EntryKind::Symlink { target } => resolve_link(&kinds, &e.path, target).err().map(|p| (e, p)),
            _ => None,
        })
    }
}

/// Why a path is not acceptable inside an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    Empty,
    Absolute,
    ParentComponent,
    CurrentComponent,
    EmptyComponent,
    Nul,
    Backslash,
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "empty path",
            Self::Absolute => "absolute path",
            Self::ParentComponent => "path has a '..' component",
            Self::CurrentComponent => "path has a '.' component",
            Self::EmptyComponent => "path has an empty component ('//' or a trailing '/')",
            Self::Nul => "path contains a NUL byte",
            Self::Backslash => "path contains a backslash",
        })
    }
}

/// A path inside the tree: relative, `/`-separated, every component a
/// plain name. Backslashes are refused so the same archive means the same
/// thing to every tool on every system.
pub fn check_path(path: &str) -> Result<(), PathProblem> {
    if path.is_empty() {
        return Err(PathProblem::Empty);
    }
    if path.starts_with('/') {
        return Err(PathProblem::Absolute);
    }
    if path.contains('\0') {
        return Err(PathProblem::Nul);
    }
    if path.contains('\\') {
        return Err(PathProblem::Backslash);
    }
    for c in path.split('/') {
        match c {
            "" => return Err(PathProblem::EmptyComponent),
            "." => return Err(PathProblem::CurrentComponent),
            ".." => return Err(PathProblem::ParentComponent),
            _ => {}
        }
    }
    Ok(())
}

/// A symlink target as stored: not empty, no NUL. Where it points is
/// judged against the whole tree by [`Manifest::first_escaping_symlink`].
pub fn check_link_target(target: &str) -> Result<(), PathProblem> {
    if target.is_empty() {
        Err(PathProblem::Empty)
    } else if target.contains('\0') {
        Err(PathProblem::Nul)
    } else if target.starts_with('/') {
        Err(PathProblem::Absolute)
    } else {
        Ok(())
    }
}

/// Why a symlink was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SymlinkProblem {
    Absolute,
    Outside,
    Loop,
}

impl fmt::Display for SymlinkProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Absolute => "symlink target is an absolute path",
            Self::Outside => "symlink resolves outside the tree",
            Self::Loop => "symlink chain is too long or loops",
        })
    }
}

/// Resolves a link the way the kernel would, but over the tree's own
/// entries: every component that is itself a symlink of the tree is
/// expanded, and `..` above the root is an escape. Lexical checks alone
/// miss `l -> x/..` with `x -> .`, which this catches.
fn resolve_link(kinds: &HashMap<&str, &EntryKind>, link: &str, target: &str) -> Result<(), SymlinkProblem> {
    let mut stack: Vec<String> = link.split('/').map(str::to_owned).collect();
    stack.pop();
    let mut hops = 0;
    walk_target(kinds, &mut stack, target, &mut hops)
}

fn walk_target(
    kinds: &HashMap<&str, &EntryKind>,
    stack: &mut Vec<String>,
    target: &str,
    hops: &mut usize,
) -> Result<(), SymlinkProblem> {
    if target.starts_with('/') {
        return Err(SymlinkProblem::Absolute);
    }
    *hops += 1;
    if *hops > MAX_SYMLINK_HOPS {
        return Err(SymlinkProblem::Loop);
    }
    for comp in target.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if stack.pop().is_none() {
                    return Err(SymlinkProblem::Outside);
                }
            }
            name => {
                stack.push(name.to_owned());
                let here = stack.join("/");
                if let Some(EntryKind::Symlink { target: next }) = kinds.get(here.as_str()) {
                    stack.pop();
                    walk_target(kinds, stack, next, hops)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn file(path: &str, size: u64, byte: u8, executable: bool) -> ManifestEntry {
        ManifestEntry {
            path: path.to_owned(),
            kind: EntryKind::File {
                size,
                sha256: Sha256Digest::of(&vec![byte; size as usize]),
                executable,
            },
        }
    }
    fn dir(path: &str) -> ManifestEntry {
        ManifestEntry {
            path: path.to_owned(),
            kind: EntryKind::Dir,
        }
    }
    fn link(path: &str, target: &str) -> ManifestEntry {
        ManifestEntry {
            path: path.to_owned(),
            kind: EntryKind::Symlink {
                target: target.to_owned(),
            },
        }
    }

    #[test]
    fn canonical_encoding_round_trips_and_is_order_independent() {
        let entries = vec![
            file("b/x.js", 3, 1, false),
            dir("b"),
            link("l", "b/x.js"),
            file("run.sh", 2, 2, true),
            file("a.b", 1, 3, false),
        ];
        let m1 = Manifest::new(entries.clone());
        let mut rev = entries;
        rev.reverse();
        let m2 = Manifest::new(rev);
        assert_eq!(m1.canonical_bytes(), m2.canonical_bytes());
        let bytes = m1.canonical_bytes();
        assert_eq!(Manifest::parse(&bytes).unwrap(), m1);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with(
            r#"{"format":"rollway-manifest/1","entries":[{"path":"a.b","type":"file","mode":"0644","size":1,"sha256":""#
        ));
        assert!(text.contains(r#"{"path":"b","type":"dir","mode":"0755"}"#));
        assert!(text.contains(r#"{"path":"l","type":"symlink","mode":"0777","target":"b/x.js"}"#));
        assert!(text.contains(r#""path":"run.sh","type":"file","mode":"0755""#));
        // Byte order: "a.b" < "b" < "b/x.js" < "l" < "run.sh".
        let order: Vec<_> = m1.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(order, ["a.b", "b", "b/x.js", "l", "run.sh"]);
    }

    #[test]
    fn content_digest_changes_with_any_field() {
        let base = Manifest::new(vec![dir("d"), file("d/f", 4, 7, false)]);
        let variants = [
            Manifest::new(vec![dir("d"), file("d/f", 4, 8, false)]),
            Manifest::new(vec![dir("d"), file("d/f", 4, 7, true)]),
            Manifest::new(vec![dir("d"), file("d/f", 5, 7, false)]),
            Manifest::new(vec![dir("d"), file("d/g", 4, 7, false)]),
            Manifest::new(vec![dir("d"), file("d/f", 4, 7, false), dir("e")]),
        ];
        for v in variants {
            assert_ne!(v.content_digest(), base.content_digest(), "{v:?}");
        }
    }

    fn check_parse(text: &str, expected_fragment: &str) {
        let err = Manifest::parse(text.as_bytes()).expect_err(text).to_string();
        assert!(err.contains(expected_fragment), "{text}: {err}");
    }

    #[test]
    fn parse_refuses_malformed_manifests() {
        let sha = "0".repeat(64);
        check_parse("{", "not valid JSON");
        check_parse(r#"{"format":"other/9","entries":[]}"#, "format 'other/9'");
        check_parse(
            r#"{"format":"rollway-manifest/1","entries":[{"path":"../x","type":"dir","mode":"0755"}]}"#,
            "'..' component",
        );
        check_parse(
            r#"{"format":"rollway-manifest/1","entries":[{"path":"/x","type":"dir","mode":"0755"}]}"#,
            "absolute path",
        );
        check_parse(
            &format!(
                r#"{{"format":"rollway-manifest/1","entries":[{{"path":"x","type":"file","mode":"0600","size":1,"sha256":"{sha}"}}]}}"#
            ),
            "mode 0600",
        );
        check_parse(
            r#"{"format":"rollway-manifest/1","entries":[{"path":"x","type":"fifo","mode":"0644"}]}"#,
            "type 'fifo'",
        );
        check_parse(
            r#"{"format":"rollway-manifest/1","entries":[{"path":"b","type":"dir","mode":"0755"},{"path":"a","type":"dir","mode":"0755"}]}"#,
            "canonical",
        );
        check_parse(r#"{"format": "rollway-manifest/1","entries":[]}"#, "canonical");
    }

    fn check_links(entries: Vec<ManifestEntry>, expected: Option<(&str, SymlinkProblem)>) {
        let m = Manifest::new(entries);
        let got = m.first_escaping_symlink().map(|(e, p)| (e.path.as_str(), p));
        assert_eq!(got, expected);
    }

    #[test]
    fn symlinks_are_resolved_against_the_tree() {
        use SymlinkProblem::*;
        check_links(vec![dir("a"), file("a/f", 1, 1, false), link("a/l", "f")], None);
        check_links(vec![dir("a"), link("a/l", "../a/f")], None);
        check_links(vec![link("l", "missing/but/inside")], None);
        check_links(vec![dir("a"), link("a/l", "../../etc/passwd")], Some(("a/l", Outside)));
        check_links(vec![link("l", "..")], Some(("l", Outside)));
        check_links(vec![link("l", "/etc/passwd")], Some(("l", Absolute)));
        // Lexically inside, physically the parent of the root.
        check_links(vec![link("x", "."), link("y", "x/..")], Some(("y", Outside)));
        check_links(
            vec![dir("d"), link("d/up", ".."), link("z", "d/up/d/up/..")],
            Some(("z", Outside)),
        );
        check_links(vec![link("a", "b"), link("b", "a")], Some(("a", Loop)));
    }

    #[test]
    fn contents_groups_by_top_level_folder() {
        let m = Manifest::new(vec![
            dir("assets"),
            dir("assets/js"),
            file("assets/js/a.js", 10, 1, false),
            file("assets/b.css", 5, 2, false),
            dir("empty"),
            file("index.html", 7, 3, false),
            link("latest", "assets"),
        ]);
        let got: Vec<_> = m.contents().into_iter().map(|c| (c.path, c.files, c.bytes)).collect();
        assert_eq!(
            got,
            [
                (".".to_owned(), 1, 7),
                ("assets".to_owned(), 2, 15),
                ("empty".to_owned(), 0, 0)
            ]
        );
        assert_eq!(m.file_count(), 3);
        assert_eq!(m.file_bytes(), 22);
    }

    #[test]
    fn path_rules() {
        for (p, want) in [
            ("a/b", Ok(())),
            ("", Err(PathProblem::Empty)),
            ("/a", Err(PathProblem::Absolute)),
            ("a/../b", Err(PathProblem::ParentComponent)),
            ("./a", Err(PathProblem::CurrentComponent)),
            ("a//b", Err(PathProblem::EmptyComponent)),
            ("a/", Err(PathProblem::EmptyComponent)),
            ("a\\b", Err(PathProblem::Backslash)),
        ] {
            assert_eq!(check_path(p), want, "{p}");
        }
    }
}
