//! Streaming byte-pattern search over a file read in chunks: finds secret
//! values (so none is baked into an artifact) and cheap alias hints (so only
//! the few files that may hold an alias import are lexed), including a match
//! that straddles two chunks.

use std::fmt;

use aho_corasick::AhoCorasick;
use sha2::{Digest as _, Sha256};

/// The secret values a pack refuses to ship, each with the name it is
/// reported by. `Debug` shows names only.
#[derive(Clone, Default)]
pub struct Secrets {
    names: Vec<String>,
    values: Vec<String>,
    matcher: Option<Matcher>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl Secrets {
    /// Secrets from (name, value) pairs; values shorter than the masking
    /// filter's minimum are ignored, as the masker ignores them.
    pub fn new<I, N, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (N, V)>,
        N: Into<String>,
        V: Into<String>,
    {
        let (mut names, mut values) = (Vec::new(), Vec::new());
        for (n, v) in pairs {
            let v = v.into();
            if v.len() >= rollway_model::mask::MIN_SECRET_LEN {
                names.push(n.into());
                values.push(v);
            }
        }
        let matcher = Matcher::new(values.iter().map(String::as_bytes));
        Self { names, values, matcher }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Names of the secrets searched for.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub(crate) fn matcher(&self) -> Option<&Matcher> {
        self.matcher.as_ref()
    }

    pub(crate) fn name(&self, pattern: usize) -> &str {
        self.names.get(pattern).map_or("?", String::as_str)
    }

    /// A salted digest of the set of values: equal sets give equal
    /// fingerprints, and the values cannot be read back from it.
    pub(crate) fn fingerprint(&self, salt: &str) -> String {
        let mut values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        values.sort_unstable();
        values.dedup();
        let mut h = Sha256::new();
        h.update(b"rollway-secret-set\0");
        h.update(salt.as_bytes());
        for v in values {
            h.update((v.len() as u64).to_le_bytes());
            h.update(v.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

/// A compiled set of byte patterns.
#[derive(Clone, Debug)]
pub(crate) struct Matcher {
    ac: AhoCorasick,
    longest: usize,
}

impl Matcher {
    pub(crate) fn new<'a>(patterns: impl Iterator<Item = &'a [u8]>) -> Option<Self> {
        let patterns: Vec<&[u8]> = patterns.filter(|p| !p.is_empty()).collect();
        let longest = patterns.iter().map(|p| p.len()).max()?;
        // Leftmost semantics: a match starting in the held-back tail is the
        // one reported at a boundary, even if a later one ends first.
        let ac = AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(&patterns)
            .ok()?;
        Some(Self { ac, longest })
    }

    /// A scan of one file.
    pub(crate) fn stream(&self) -> StreamScan<'_> {
        StreamScan {
            m: self,
            tail: Vec::with_capacity(self.longest * 2),
            found: None,
        }
    }
}

/// Scans consecutive chunks of one file; remembers the first pattern found.
pub(crate) struct StreamScan<'a> {
    m: &'a Matcher,
    /// The last `longest - 1` bytes seen: a match straddling the next
    /// boundary starts in here.
    tail: Vec<u8>,
    found: Option<usize>,
}

impl StreamScan<'_> {
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        if self.found.is_some() || chunk.is_empty() {
            return;
        }
        let keep = self.m.longest - 1;
        if !self.tail.is_empty() {
            let head = &chunk[..chunk.len().min(keep)];
            let tail_len = self.tail.len();
            self.tail.extend_from_slice(head);
            if let Some(m) = self.m.ac.find(&self.tail[..])
                && m.start() < tail_len
            {
                self.found = Some(m.pattern().as_usize());
                return;
            }
            self.tail.truncate(tail_len);
        }
        if let Some(m) = self.m.ac.find(chunk) {
            self.found = Some(m.pattern().as_usize());
            return;
        }
        if chunk.len() >= keep {
            self.tail.clear();
            self.tail.extend_from_slice(&chunk[chunk.len() - keep..]);
        } else {
            self.tail.extend_from_slice(chunk);
            let excess = self.tail.len().saturating_sub(keep);
            self.tail.drain(..excess);
        }
    }

    /// The index of the first pattern found, if any.
    pub(crate) fn found(&self) -> Option<usize> {
        self.found
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every split of `text` into three chunks finds the same thing.
    fn check(patterns: &[&str], text: &str, expected: Option<usize>) {
        let m = Matcher::new(patterns.iter().map(|p| p.as_bytes())).unwrap();
        let b = text.as_bytes();
        for i in 0..=b.len() {
            for j in i..=b.len() {
                let mut s = m.stream();
                s.push(&b[..i]);
                s.push(&b[i..j]);
                s.push(&b[j..]);
                assert_eq!(s.found().is_some(), expected.is_some(), "{text:?} split {i},{j}");
                if let (Some(want), Some(got)) = (expected, s.found()) {
                    assert_eq!(patterns[got], patterns[want], "{text:?} split {i},{j}");
                }
            }
        }
    }

    #[test]
    fn finds_patterns_across_chunk_boundaries() {
        check(&["hunter22"], "xx hunter22 yy", Some(0));
        check(&["hunter22"], "hunter2 hunter2", None);
        check(&["abcd", "zzzzzzzz"], "..zzzzzzz.abcd", Some(0));
        check(&["'@/"], "require('@/x')", Some(0));
        check(&["'@/"], "require('@scope/x')", None);
    }

    #[test]
    fn secrets_ignore_short_values_and_hide_values_from_debug() {
        let s = Secrets::new([("API_KEY", "sk-very-secret"), ("PIN", "123")]);
        assert_eq!(s.names(), ["API_KEY"]);
        let dbg = format!("{s:?}");
        assert!(dbg.contains("API_KEY") && !dbg.contains("sk-very-secret"), "{dbg}");
        let same = Secrets::new([("OTHER", "sk-very-secret")]);
        assert_eq!(s.fingerprint("salt"), same.fingerprint("salt"));
        assert_ne!(s.fingerprint("salt"), s.fingerprint("pepper"));
        assert_ne!(
            s.fingerprint("salt"),
            Secrets::new([("A", "other-value")]).fingerprint("salt")
        );
    }
}
