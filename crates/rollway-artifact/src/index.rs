//! The archive index of an output directory (`index.json`): content digest
//! → archive name, digest, size and the scan results that went with it, so
//! an unchanged tree reuses its archive without reading file contents.
//! A scan result is reused only for the same alias patterns and the same
//! secret set (compared by a salted fingerprint; no value is stored).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rollway_model::Sha256Digest;
use serde::{Deserialize, Serialize};

const INDEX_NAME: &str = "index.json";
const INDEX_FORMAT: &str = "rollway-archive-index/1";

/// What is known about one archive in the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// File name inside the output directory.
    pub archive: String,
    pub sha256: Sha256Digest,
    pub size_bytes: u64,
    /// The compression setting the archive was made with: an archive is
    /// reused only for the same setting, so equal trees keep equal bytes.
    #[serde(default)]
    pub compression: String,
    /// The alias patterns the scan used ([`crate::AliasSpec`] key).
    pub alias_key: String,
    /// Salted fingerprint of the secret set the pack was checked against.
    pub secrets: String,
    pub aliases_resolved: bool,
    /// (file, line, specifier) of each unresolved alias.
    pub unresolved: Vec<(String, u32, String)>,
}

#[derive(Debug, Serialize, Deserialize)]
struct IndexFile {
    format: String,
    salt: String,
    archives: BTreeMap<String, IndexEntry>,
}

/// The index of one output directory.
#[derive(Debug)]
pub struct ArchiveIndex {
    path: PathBuf,
    salt: String,
    archives: BTreeMap<String, IndexEntry>,
}

impl ArchiveIndex {
    /// Loads `out_dir/index.json`; a missing or unreadable index is empty
    /// (archives are then simply packed again).
    pub fn load(out_dir: &Path) -> Self {
        let path = out_dir.join(INDEX_NAME);
        let parsed = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<IndexFile>(&b).ok())
            .filter(|f| f.format == INDEX_FORMAT && f.salt.len() == 32);
        match parsed {
            Some(f) => Self {
                path,
                salt: f.salt,
                archives: f.archives,
            },
            None => {
                let mut raw = [0u8; 16];
                // Without randomness the salt is merely fixed; the
                // fingerprint still never holds a value in the clear.
                let _ = getrandom::fill(&mut raw);
                Self {
                    path,
                    salt: hex::encode(raw),
                    archives: BTreeMap::new(),
                }
            }
        }
    }

    pub(crate) fn salt(&self) -> &str {
        &self.salt
    }

    pub fn is_empty(&self) -> bool {
        self.archives.is_empty()
    }

    /// The entry for a content digest whose archive file is still there
    /// with the recorded size.
    pub fn find(&self, content_digest: &Sha256Digest) -> Option<&IndexEntry> {
        let e = self.archives.get(content_digest.as_str())?;
        let dir = self.path.parent()?;
        let meta = fs::metadata(dir.join(&e.archive)).ok()?;
        (meta.is_file() && meta.len() == e.size_bytes).then_some(e)
    }

    /// Records an archive, dropping entries whose file is gone.
    pub fn insert(&mut self, content_digest: &Sha256Digest, entry: IndexEntry) {
        self.archives.insert(content_digest.to_string(), entry);
        if let Some(dir) = self.path.parent() {
            self.archives.retain(|_, e| dir.join(&e.archive).is_file());
        }
    }

    /// Writes the index (temporary file, then rename).
    pub fn save(&self) -> io::Result<()> {
        let file = IndexFile {
            format: INDEX_FORMAT.to_owned(),
            salt: self.salt.clone(),
            archives: self.archives.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
        rollway_fs::write_atomic(&self.path, &bytes, None)
    }
}
