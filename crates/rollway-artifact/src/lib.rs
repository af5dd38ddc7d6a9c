//! Rollway's artifacts: a build output packed into a deterministic,
//! content-addressed tar + zstd archive with a manifest, verified, and
//! unpacked safely on hosts.
//!
//! # Format
//!
//! An archive is one zstd frame (level 3, multithreaded, content checksum
//! on) holding a ustar stream: entries sorted by path bytes, directories
//! included, owner 0:0 with empty names, mtime 1980-01-01, modes 0644/0755
//! (0777 for symlinks), a PAX record for a path longer than ustar holds.
//! The last entry is the manifest, `.rollway-manifest.json`: compact JSON
//! `{"format":"rollway-manifest/1","entries":[{"path","type","mode","size",
//! "sha256","target"}…]}`, entries in path order, fields in that order and
//! absent where they do not apply. Two digests name an archive: `sha256`
//! of its bytes (integrity; also its file name, `<sha256>.tar.zst`) and
//! `content_digest`, the SHA-256 of the manifest bytes (the identity of the
//! tree, however and wherever it was packed).
//!
//! The manifest goes last, not first, so a pack reads every file exactly
//! once — hashing it while it streams into the tar — and compression
//! overlaps reading; a manifest first would need every digest before the
//! first byte is written, that is a second full read or a serial hashing
//! pass. Readers pay nothing for it: they hash entries as they stream and
//! compare with the manifest at the end, and unpack works in a fresh
//! directory that a refusal removes whole.
//!
//! zstd's multithreaded mode produces the same bytes for any number of
//! workers (≥ 1), so the archive of a tree is the same on every machine
//! built with this crate's zstd version.

pub mod aliases;
pub mod error;
pub mod index;
pub mod manifest;
pub mod pack;
pub mod read;
pub mod release;
pub mod scan;
pub mod statcache;
pub mod stream;
pub mod tarfmt;
pub mod unpack;
pub mod walk;

pub use aliases::{AliasPattern, AliasSource, AliasSpec, UnresolvedAlias};
pub use error::{ArchiveError, PackError, Problem};
pub use manifest::{EntryKind, MANIFEST_NAME, Manifest, ManifestEntry};
pub use pack::{
    Compression, PackOptions, PackPhase, PackResult, PackStats, Progress, SourceInfo, pack, pack_with_progress,
};
pub use read::{Expected, VerifyReport, verify};
pub use scan::Secrets;
pub use stream::{Flow, StreamEntry, StreamError, StreamKind, stream};
pub use unpack::{UnpackedRelease, remove_release, unpack};
