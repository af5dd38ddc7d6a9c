//! Import aliases (seed 000 `aliasesResolved`): which specifiers are aliases
//! (from `build.aliases`, else `tsconfig.json` `compilerOptions.paths`,
//! following `extends`), and a JavaScript lexer that finds the module
//! specifiers of `import … from`, `import(…)`, `require(…)` and `export …
//! from` — not in comments, not in other strings — so an output that still
//! imports `@/x` is caught before it ships.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::scan::Matcher;

/// One alias: a prefix (`"@/*"` in tsconfig gives `@/`) or an exact
/// specifier (a key without `*`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum AliasPattern {
    Prefix(String),
    Exact(String),
}

impl AliasPattern {
    fn matches(&self, specifier: &str) -> bool {
        match self {
            Self::Prefix(p) => specifier.starts_with(p.as_str()),
            Self::Exact(e) => specifier == e,
        }
    }

    /// A tsconfig `paths` key: text before the first `*` is a prefix; a key
    /// without `*` is an exact specifier. A bare `*` (every specifier,
    /// npm packages included) is no alias and is dropped.
    fn from_paths_key(key: &str) -> Option<Self> {
        match key.split_once('*') {
            Some(("", _)) => None,
            Some((prefix, _)) => Some(Self::Prefix(prefix.to_owned())),
            None if key.is_empty() => None,
            None => Some(Self::Exact(key.to_owned())),
        }
    }
}

/// Where the aliases came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AliasSource {
    #[default]
    None,
    Configured,
    Tsconfig(PathBuf),
}

/// The aliases an output must not import any more.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AliasSpec {
    patterns: Vec<AliasPattern>,
    source: AliasSource,
}

/// Why the alias configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AliasError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}:{line}:{column}: {message}; fix the JSON (comments and trailing commas are fine)", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: extends '{extends}', which was not found; fix the path or install the package", path.display())]
    ExtendsNotFound { path: PathBuf, extends: String },
    #[error("{}: extends chain loops back to itself", path.display())]
    ExtendsLoop { path: PathBuf },
}

impl AliasSpec {
    /// No aliases: every output counts as resolved.
    pub fn none() -> Self {
        Self::default()
    }

    /// `build.aliases`: each entry is a prefix (a trailing `*` is allowed
    /// and dropped, as in tsconfig keys).
    pub fn from_list<I, S>(list: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut patterns: Vec<AliasPattern> = list
            .into_iter()
            .filter_map(|s| {
                let s = s.as_ref();
                let prefix = s.split_once('*').map_or(s, |(p, _)| p);
                (!prefix.is_empty()).then(|| AliasPattern::Prefix(prefix.to_owned()))
            })
            .collect();
        patterns.sort();
        patterns.dedup();
        Self {
            patterns,
            source: AliasSource::Configured,
        }
    }

    /// The `compilerOptions.paths` keys of a tsconfig file, following
    /// `extends` (a string or a list; relative paths or packages under
    /// `node_modules`); the nearest file that sets `paths` wins, as in tsc.
    pub fn from_tsconfig(path: &Path) -> Result<Self, AliasError> {
        let mut seen = Vec::new();
        let keys = tsconfig_paths(path, &mut seen)?.unwrap_or_default();
        let mut patterns: Vec<AliasPattern> = keys.iter().filter_map(|k| AliasPattern::from_paths_key(k)).collect();
        patterns.sort();
        patterns.dedup();
        Ok(Self {
            patterns,
            source: AliasSource::Tsconfig(path.to_path_buf()),
        })
    }

    /// `configured` (from `build.aliases`) when given, else
    /// `project_dir/tsconfig.json` when it exists, else none.
    pub fn discover(project_dir: &Path, configured: Option<&[String]>) -> Result<Self, AliasError> {
        if let Some(list) = configured {
            return Ok(Self::from_list(list));
        }
        let ts = project_dir.join("tsconfig.json");
        if ts.is_file() {
            Self::from_tsconfig(&ts)
        } else {
            Ok(Self::none())
        }
    }

    pub fn patterns(&self) -> &[AliasPattern] {
        &self.patterns
    }

    pub fn source(&self) -> &AliasSource {
        &self.source
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether a module specifier is one of the aliases.
    pub fn matches(&self, specifier: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(specifier))
    }

    /// A stable text of the patterns, to tell whether a stored scan result
    /// still applies.
    pub(crate) fn key(&self) -> String {
        self.patterns
            .iter()
            .map(|p| match p {
                AliasPattern::Prefix(s) => format!("p:{s}"),
                AliasPattern::Exact(s) => format!("e:{s}"),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Byte patterns (a quote followed by an alias) that any file holding
    /// an alias specifier must contain: files without them need no lexing.
    pub(crate) fn hint_matcher(&self) -> Option<Matcher> {
        let mut hints: Vec<Vec<u8>> = Vec::new();
        for q in [b'\'', b'"', b'`'] {
            for p in &self.patterns {
                let mut h = vec![q];
                match p {
                    AliasPattern::Prefix(s) => h.extend_from_slice(s.as_bytes()),
                    AliasPattern::Exact(s) => {
                        h.extend_from_slice(s.as_bytes());
                        h.push(q);
                    }
                }
                hints.push(h);
            }
        }
        Matcher::new(hints.iter().map(Vec::as_slice))
    }
}

/// Whether a path names a JavaScript file the scan covers.
pub fn is_js(path: &str) -> bool {
    [".js", ".mjs", ".cjs"].iter().any(|ext| path.ends_with(ext))
}

/// An alias import left in the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnresolvedAlias {
    /// Path inside the output.
    pub file: String,
    pub line: u32,
    pub specifier: String,
}

impl fmt::Display for UnresolvedAlias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: unresolved alias '{}'", self.file, self.line, self.specifier)
    }
}

/// Every alias specifier in one JavaScript source, as (line, specifier).
pub fn scan_js(mut reader: impl Read, spec: &AliasSpec) -> io::Result<Vec<(u32, String)>> {
    let mut lexer = Lexer::new();
    let mut found = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        lexer.feed(&buf[..n], &mut |line, s| {
            if spec.matches(s) {
                found.push((line, s.to_owned()));
            }
        });
    }
    Ok(found)
}

/// Scans a file of the output (relative `path` under `root`).
pub(crate) fn scan_file(root: &Path, path: &str, spec: &AliasSpec) -> io::Result<Vec<UnresolvedAlias>> {
    let f = fs::File::open(root.join(path))?;
    Ok(scan_js(f, spec)?
        .into_iter()
        .map(|(line, specifier)| UnresolvedAlias {
            file: path.to_owned(),
            line,
            specifier,
        })
        .collect())
}

/// Scans every `.js/.mjs/.cjs` file under `dir` (no pack), for a check of an
/// output on its own.
pub fn scan_tree(dir: &Path, spec: &AliasSpec) -> Result<Vec<UnresolvedAlias>, crate::PackError> {
    let tree = crate::walk::walk(dir, &[])?;
    let mut out = Vec::new();
    if spec.is_empty() {
        return Ok(out);
    }
    for e in &tree.entries {
        if e.kind == crate::walk::SourceKind::File && is_js(&e.path) {
            out.extend(
                scan_file(&tree.root, &e.path, spec).map_err(|source| crate::PackError::Io {
                    path: tree.root.join(&e.path),
                    source,
                })?,
            );
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- tsconfig

fn tsconfig_paths(path: &Path, seen: &mut Vec<PathBuf>) -> Result<Option<Vec<String>>, AliasError> {
    let canonical = fs::canonicalize(path).map_err(|source| AliasError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if seen.contains(&canonical) {
        return Err(AliasError::ExtendsLoop {
            path: path.to_path_buf(),
        });
    }
    seen.push(canonical);
    let text = fs::read_to_string(path).map_err(|source| AliasError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let value: serde_json::Value = serde_json::from_str(&strip_jsonc(&text)).map_err(|e| AliasError::Parse {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string().split(" at line ").next().unwrap_or_default().to_owned(),
    })?;
    if let Some(paths) = value.pointer("/compilerOptions/paths").and_then(|p| p.as_object()) {
        return Ok(Some(paths.keys().cloned().collect()));
    }
    let extends: Vec<&str> = match value.get("extends") {
        Some(serde_json::Value::String(s)) => vec![s.as_str()],
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
        _ => Vec::new(),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    // Later bases override earlier ones, so the last that sets paths wins.
    for ext in extends.iter().rev() {
        let base = resolve_extends(dir, ext).ok_or_else(|| AliasError::ExtendsNotFound {
            path: path.to_path_buf(),
            extends: (*ext).to_owned(),
        })?;
        if let Some(keys) = tsconfig_paths(&base, seen)? {
            return Ok(Some(keys));
        }
    }
    Ok(None)
}

fn resolve_extends(dir: &Path, ext: &str) -> Option<PathBuf> {
    let candidates = |base: PathBuf| {
        let mut with_json = base.clone().into_os_string();
        with_json.push(".json");
        [base.clone(), PathBuf::from(with_json), base.join("tsconfig.json")]
    };
    if ext.starts_with("./") || ext.starts_with("../") || ext.starts_with('/') || ext == "." || ext == ".." {
        return candidates(dir.join(ext)).into_iter().find(|p| p.is_file());
    }
    // A package: node_modules of this directory or any above it.
    let mut here = Some(dir);
    while let Some(d) = here {
        if let Some(found) = candidates(d.join("node_modules").join(ext))
            .into_iter()
            .find(|p| p.is_file())
        {
            return Some(found);
        }
        here = d.parent();
    }
    None
}

/// JSON with comments and trailing commas (as tsc accepts) to plain JSON.
/// Comments and dropped commas become spaces, so line and column numbers
/// of parse errors still point into the original file.
pub fn strip_jsonc(text: &str) -> String {
    let b = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    // Index in `out` of a comma that may turn out to be trailing.
    let mut pending_comma: Option<usize> = None;
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' => {
                pending_comma = None;
                out.push(c);
                i += 1;
                while i < b.len() {
                    out.push(b[i]);
                    match b[i] {
                        b'\\' if i + 1 < b.len() => {
                            out.push(b[i + 1]);
                            i += 2;
                        }
                        b'"' => {
                            i += 1;
                            break;
                        }
                        _ => i += 1,
                    }
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    out.push(b' ');
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                out.extend_from_slice(b"  ");
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    out.push(if b[i] == b'\n' { b'\n' } else { b' ' });
                    i += 1;
                }
                if i < b.len() {
                    out.extend_from_slice(b"  ");
                    i += 2;
                }
            }
            b',' => {
                pending_comma = Some(out.len());
                out.push(c);
                i += 1;
            }
            b'}' | b']' => {
                if let Some(at) = pending_comma.take() {
                    out[at] = b' ';
                }
                out.push(c);
                i += 1;
            }
            c if c.is_ascii_whitespace() => {
                out.push(c);
                i += 1;
            }
            _ => {
                pending_comma = None;
                out.push(c);
                i += 1;
            }
        }
    }
    // Only ASCII bytes were replaced, by ASCII, so this stays UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

// ------------------------------------------------------------------- lexer

/// The significant tokens that decide whether a string is a specifier and
/// whether `/` starts a regular expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Start,
    Import,
    Require,
    From,
    /// A keyword after which an expression (so a regex) may follow.
    ExprKeyword,
    /// Any other identifier, or a number: a value.
    Value,
    /// A string, template or regex literal.
    Literal,
    Dot,
    LParen,
    /// `)`: a value ends (and a call's argument list).
    RParen,
    /// `]`: a value ends.
    Close,
    Comma,
    /// `}`: a block ends (or an object literal; taken as a block).
    CloseBrace,
    /// Any other punctuation: an operator or separator.
    Punct,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    Word,
    /// Saw `/` in code; the next byte decides comment, regex or division.
    Slash,
    LineComment,
    BlockComment {
        star: bool,
    },
    Str {
        quote: u8,
        escaped: bool,
    },
    Template {
        escaped: bool,
        dollar: bool,
    },
    Regex {
        class: bool,
        escaped: bool,
    },
}

/// Longest string kept to compare with the aliases; longer ones are no
/// module specifier worth reporting.
const MAX_SPECIFIER: usize = 4096;

/// A streaming JavaScript lexer, just enough to find module specifiers.
struct Lexer {
    state: State,
    line: u32,
    toks: [Tok; 3],
    word: Vec<u8>,
    text: Vec<u8>,
    text_line: u32,
    text_subst: bool,
    /// A string that is a specifier if the call's argument ends right
    /// after it (`require('x')`, `import('x', opts)`, not `require('x'.y)`).
    pending_call: Option<(u32, String)>,
    /// Brace depth in code, and the depths at which `${` opened.
    depth: u32,
    templates: Vec<u32>,
    at_start: bool,
}

impl Lexer {
    fn new() -> Self {
        Self {
            state: State::Code,
            line: 1,
            toks: [Tok::Start; 3],
            word: Vec::new(),
            text: Vec::new(),
            text_line: 1,
            text_subst: false,
            pending_call: None,
            depth: 0,
            templates: Vec::new(),
            at_start: true,
        }
    }

    fn push_tok(&mut self, t: Tok, emit: &mut dyn FnMut(u32, &str)) {
        if let Some((line, s)) = self.pending_call.take()
            && matches!(t, Tok::RParen | Tok::Comma)
        {
            emit(line, &s);
        }
        self.toks = [t, self.toks[0], self.toks[1]];
    }

    fn is_word(c: u8) -> bool {
        c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c == b'#' || c >= 0x80
    }

    fn regex_allowed(&self) -> bool {
        !matches!(
            self.toks[0],
            Tok::Value | Tok::Literal | Tok::RParen | Tok::Close | Tok::Dot
        )
    }

    /// A string literal just ended: report it when the tokens before it
    /// make it a module specifier.
    fn string_done(&mut self, emit: &mut dyn FnMut(u32, &str)) {
        let [t1, t2, t3] = self.toks;
        let plain = self.text.len() <= MAX_SPECIFIER && !self.text_subst;
        let text = std::mem::take(&mut self.text);
        self.push_tok(Tok::Literal, emit);
        let Ok(s) = std::str::from_utf8(&text) else { return };
        match t1 {
            Tok::From | Tok::Import if plain && t2 != Tok::Dot => emit(self.text_line, s),
            Tok::LParen if plain && matches!(t2, Tok::Import | Tok::Require) && t3 != Tok::Dot => {
                self.pending_call = Some((self.text_line, s.to_owned()));
            }
            _ => {}
        }
    }

    fn word_done(&mut self, emit: &mut dyn FnMut(u32, &str)) {
        let t = match &self.word[..] {
            b"import" => Tok::Import,
            b"require" => Tok::Require,
            b"from" => Tok::From,
            b"return" | b"typeof" | b"instanceof" | b"in" | b"of" | b"new" | b"delete" | b"void" | b"throw"
            | b"case" | b"do" | b"else" | b"yield" | b"await" | b"export" | b"default" => Tok::ExprKeyword,
            _ => Tok::Value,
        };
        self.word.clear();
        self.push_tok(t, emit);
    }

    fn feed(&mut self, chunk: &[u8], emit: &mut dyn FnMut(u32, &str)) {
        let mut i = 0;
        while i < chunk.len() {
            let c = chunk[i];
            let start = std::mem::replace(&mut self.at_start, false);
            // `false` means: look at this byte again in the new state.
            let consumed = match self.state {
                State::Code => {
                    self.code(c, start, emit);
                    true
                }
                State::Word => {
                    if Self::is_word(c) {
                        self.word.push(c);
                        true
                    } else {
                        self.word_done(emit);
                        self.state = State::Code;
                        false
                    }
                }
                State::Slash => match c {
                    b'/' => {
                        self.state = State::LineComment;
                        true
                    }
                    b'*' => {
                        self.state = State::BlockComment { star: false };
                        true
                    }
                    _ if self.regex_allowed() => {
                        self.state = State::Regex {
                            class: false,
                            escaped: false,
                        };
                        false
                    }
                    _ => {
                        self.push_tok(Tok::Punct, emit);
                        self.state = State::Code;
                        false
                    }
                },
                State::LineComment => {
                    if c == b'\n' {
                        self.state = State::Code;
                    }
                    true
                }
                State::BlockComment { star } => {
                    if star && c == b'/' {
                        self.state = State::Code;
                    } else {
                        self.state = State::BlockComment { star: c == b'*' };
                    }
                    true
                }
                State::Str { quote, escaped } => {
                    if escaped {
                        self.text.push(c);
                        self.state = State::Str { quote, escaped: false };
                    } else if c == quote {
                        self.state = State::Code;
                        self.string_done(emit);
                    } else if c == b'\n' {
                        // An unterminated string: resynchronise on the next line.
                        self.text.clear();
                        self.state = State::Code;
                    } else {
                        if self.text.len() <= MAX_SPECIFIER {
                            self.text.push(c);
                        }
                        self.state = State::Str {
                            quote,
                            escaped: c == b'\\',
                        };
                    }
                    true
                }
                State::Template { escaped, dollar } => {
                    if escaped {
                        self.state = State::Template {
                            escaped: false,
                            dollar: false,
                        };
                    } else if c == b'`' {
                        self.state = State::Code;
                        self.string_done(emit);
                    } else if dollar && c == b'{' {
                        self.text_subst = true;
                        self.templates.push(self.depth);
                        self.push_tok(Tok::Punct, emit);
                        self.state = State::Code;
                    } else {
                        if self.text.len() <= MAX_SPECIFIER {
                            self.text.push(c);
                        }
                        self.state = State::Template {
                            escaped: c == b'\\',
                            dollar: c == b'$',
                        };
                    }
                    true
                }
                State::Regex { class, escaped } => {
                    self.state = if escaped {
                        State::Regex { class, escaped: false }
                    } else if c == b'\n' {
                        State::Code
                    } else if c == b'\\' {
                        State::Regex { class, escaped: true }
                    } else if c == b'[' {
                        State::Regex {
                            class: true,
                            escaped: false,
                        }
                    } else if c == b']' {
                        State::Regex {
                            class: false,
                            escaped: false,
                        }
                    } else if c == b'/' && !class {
                        self.push_tok(Tok::Literal, emit);
                        State::Code
                    } else {
                        State::Regex { class, escaped: false }
                    };
                    true
                }
            };
            if consumed {
                if c == b'\n' {
                    self.line += 1;
                }
                i += 1;
            }
        }
    }

    fn code(&mut self, c: u8, start: bool, emit: &mut dyn FnMut(u32, &str)) {
        match c {
            b'#' if start => self.state = State::LineComment, // #! line
            c if Self::is_word(c) => {
                self.word.clear();
                self.word.push(c);
                self.state = State::Word;
            }
            b'\'' | b'"' => {
                self.text.clear();
                self.text_line = self.line;
                self.text_subst = false;
                self.state = State::Str {
                    quote: c,
                    escaped: false,
                };
            }
            b'`' => {
                self.text.clear();
                self.text_line = self.line;
                self.text_subst = false;
                self.state = State::Template {
                    escaped: false,
                    dollar: false,
                };
            }
            b'/' => self.state = State::Slash,
            b'.' => self.push_tok(Tok::Dot, emit),
            b'(' => self.push_tok(Tok::LParen, emit),
            b')' => self.push_tok(Tok::RParen, emit),
            b']' => self.push_tok(Tok::Close, emit),
            b',' => self.push_tok(Tok::Comma, emit),
            b'{' => {
                self.depth += 1;
                self.push_tok(Tok::Punct, emit);
            }
            b'}' => {
                if self.templates.last() == Some(&self.depth) {
                    self.templates.pop();
                    // Back in a template that has a substitution: never a
                    // plain specifier, whatever strings the substitution held.
                    self.text_subst = true;
                    self.state = State::Template {
                        escaped: false,
                        dollar: false,
                    };
                } else {
                    self.depth = self.depth.saturating_sub(1);
                    self.push_tok(Tok::CloseBrace, emit);
                }
            }
            c if c.is_ascii_whitespace() => {}
            _ => self.push_tok(Tok::Punct, emit),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn spec() -> AliasSpec {
        AliasSpec {
            patterns: vec![
                AliasPattern::Prefix("@/".into()),
                AliasPattern::Prefix("~lib/".into()),
                AliasPattern::Exact("config".into()),
            ],
            source: AliasSource::Configured,
        }
    }

    /// The alias specifiers found in `js`, whole and fed one byte at a time.
    fn check(js: &str, expected: &[(u32, &str)]) {
        let want: Vec<(u32, String)> = expected.iter().map(|(l, s)| (*l, (*s).to_owned())).collect();
        assert_eq!(scan_js(js.as_bytes(), &spec()).unwrap(), want, "whole: {js}");
        let mut lexer = Lexer::new();
        let mut got = Vec::new();
        for b in js.as_bytes() {
            lexer.feed(&[*b], &mut |l, s| {
                if spec().matches(s) {
                    got.push((l, s.to_owned()));
                }
            });
        }
        assert_eq!(got, want, "bytewise: {js}");
    }

    #[test]
    fn finds_alias_specifiers_in_every_import_form() {
        check("import x from '@/util';", &[(1, "@/util")]);
        check("import {a, b} from \"@/a/b\"", &[(1, "@/a/b")]);
        check("import * as ns from '@/ns'", &[(1, "@/ns")]);
        check("import '@/side-effect.css';", &[(1, "@/side-effect.css")]);
        check("const m = await import('@/lazy');", &[(1, "@/lazy")]);
        check("const m = import( `@/tpl` );", &[(1, "@/tpl")]);
        check("const u = require('@/u');", &[(1, "@/u")]);
        check("const u = require ( '~lib/x' )", &[(1, "~lib/x")]);
        check("export * from '@/all';", &[(1, "@/all")]);
        check("export { a as b } from '@/re';", &[(1, "@/re")]);
        check("import cfg from 'config'", &[(1, "config")]);
        check("\n\nvar a = 1;\nrequire('@/third')\n", &[(4, "@/third")]);
        check("import a from '@/a';\nimport b from '@/b';", &[(1, "@/a"), (2, "@/b")]);
        check("#!/usr/bin/env node\nrequire('@/x')", &[(2, "@/x")]);
        check(
            "await import('@/with-options', { with: { type: 'json' } })",
            &[(1, "@/with-options")],
        );
        check(
            "const { a } = require('@/destructured'), b = 2;",
            &[(1, "@/destructured")],
        );
    }

    #[test]
    fn ignores_what_is_not_an_alias_specifier() {
        // Packages, relative paths, and near-misses.
        check("import x from '@scope/pkg'; require('@/'.length)", &[]);
        check("import a from './util'; import b from 'lodash'", &[]);
        check("import c from 'config/x'; import d from 'configs'", &[]);
        // Comments.
        check("// import x from '@/a'\n/* require('@/b') */ x = 1", &[]);
        check("/* multi\n line require('@/c') */", &[]);
        // Other strings and properties.
        check("const s = \"import x from '@/a'\"; const t = 'require(\"@/b\")';", &[]);
        check("const p = '@/not-an-import'; f('@/arg')", &[]);
        check("obj.require('@/m'); obj.import('@/n')", &[]);
        check("const o = { from: '@/x' }", &[]);
        check("const t = `${require('./ok')} @/x`", &[]);
        check("import(`@/${name}`)", &[]);
        // Regex literals containing quotes.
        check("const r = /'@\\/x'/; require('./fine')", &[]);
        check("if (/[\"']/.test(s)) x()", &[]);
        // Division is not a regex: the string after it is still seen.
        check("a = b / 2; c = d / e; require('@/after-div')", &[(1, "@/after-div")]);
    }

    #[test]
    fn template_substitutions_are_code() {
        check("const t = `a ${require('@/in-subst')} b`", &[(1, "@/in-subst")]);
        check("const t = `a ${ {x: 1}.x } b`; require('@/after')", &[(1, "@/after")]);
        check("const t = `line1\nline2`;\nrequire('@/l3')", &[(3, "@/l3")]);
    }

    fn check_key(key: &str, expected: Option<AliasPattern>) {
        assert_eq!(AliasPattern::from_paths_key(key), expected, "{key}");
    }

    #[test]
    fn paths_keys_become_prefixes_or_exact_specifiers() {
        check_key("@/*", Some(AliasPattern::Prefix("@/".into())));
        check_key("~/*", Some(AliasPattern::Prefix("~/".into())));
        check_key("@app/*", Some(AliasPattern::Prefix("@app/".into())));
        check_key("config", Some(AliasPattern::Exact("config".into())));
        check_key("*", None);
        let s = AliasSpec::from_list(["@/", "~/*", "@/"]);
        assert_eq!(
            s.patterns(),
            [AliasPattern::Prefix("@/".into()), AliasPattern::Prefix("~/".into())]
        );
        assert!(s.matches("@/x") && !s.matches("@scope/x"));
    }

    #[test]
    fn tsconfig_with_comments_trailing_commas_and_extends() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("configs")).unwrap();
        fs::create_dir_all(d.join("node_modules/@tsconfig/base")).unwrap();
        fs::write(
            d.join("configs/base.json"),
            "{\n  // shared\n  \"compilerOptions\": {\n    \"paths\": { \"@/*\": [\"src/*\"], \"cfg\": [\"c.ts\"], },\n  },\n}\n",
        )
        .unwrap();
        fs::write(
            d.join("tsconfig.json"),
            "/* app */ {\"extends\": \"./configs/base\", \"compilerOptions\": {\"strict\": true,},}",
        )
        .unwrap();
        let s = AliasSpec::from_tsconfig(&d.join("tsconfig.json")).unwrap();
        assert_eq!(
            s.patterns(),
            [AliasPattern::Prefix("@/".into()), AliasPattern::Exact("cfg".into())]
        );
        // The child's own paths win over the base's.
        fs::write(
            d.join("own.json"),
            "{\"extends\": [\"@tsconfig/base/tsconfig.json\", \"./configs/base.json\"], \"compilerOptions\": {\"paths\": {\"~/*\": [\"x/*\"]}}}",
        )
        .unwrap();
        fs::write(d.join("node_modules/@tsconfig/base/tsconfig.json"), "{}").unwrap();
        let s = AliasSpec::from_tsconfig(&d.join("own.json")).unwrap();
        assert_eq!(s.patterns(), [AliasPattern::Prefix("~/".into())]);
        // A package base without paths, then a relative one with them.
        fs::write(
            d.join("pkg.json"),
            "{\"extends\": [\"./configs/base.json\", \"@tsconfig/base\"]}",
        )
        .unwrap();
        let s = AliasSpec::from_tsconfig(&d.join("pkg.json")).unwrap();
        assert_eq!(s.patterns().len(), 2);
        // Errors name the file.
        fs::write(
            d.join("bad.json"),
            "{\n  \"compilerOptions\": {\n    \"paths\": nope\n  }\n}",
        )
        .unwrap();
        let e = AliasSpec::from_tsconfig(&d.join("bad.json")).unwrap_err().to_string();
        assert!(e.contains("bad.json:3:"), "{e}");
        fs::write(d.join("missing.json"), "{\"extends\": \"./nowhere.json\"}").unwrap();
        let e = AliasSpec::from_tsconfig(&d.join("missing.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("./nowhere.json") && e.contains("not found"), "{e}");
        fs::write(d.join("loop.json"), "{\"extends\": \"./loop.json\"}").unwrap();
        let e = AliasSpec::from_tsconfig(&d.join("loop.json")).unwrap_err().to_string();
        assert!(e.contains("loops"), "{e}");
        // No tsconfig and nothing configured: no aliases.
        let empty = tempfile::tempdir().unwrap();
        assert!(AliasSpec::discover(empty.path(), None).unwrap().is_empty());
        assert_eq!(AliasSpec::discover(d, None).unwrap().patterns().len(), 2);
        let configured = vec!["#/".to_owned()];
        assert_eq!(
            AliasSpec::discover(d, Some(&configured)).unwrap().patterns(),
            [AliasPattern::Prefix("#/".into())]
        );
    }

    #[test]
    fn strip_jsonc_keeps_strings_and_positions() {
        let src = "{\"a\": \"// not a comment\", /* c */ \"b\": [1, 2,], // end\n}";
        let out = strip_jsonc(src);
        assert_eq!(out.len(), src.len());
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["a"], "// not a comment");
        assert_eq!(v["b"], serde_json::json!([1, 2]));
    }
}
