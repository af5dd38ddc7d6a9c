//! Generates a deterministic "web app build" tree for the benchmarks
//! (`scripts/bench pack|redeploy|local`), or changes a fraction of an
//! existing one in place:
//!
//! ```text
//! gen_tree OUT_DIR [--seed 42] [--files 20000] [--total-mb 500]
//! gen_tree OUT_DIR --mutate FRACTION [--mutate-seed 1]
//! ```
//!
//! The tree: many small text files (js, css, html, json, map, svg; 1–50 KiB,
//! log-uniform; token soup with a per-file vocabulary, so zstd compresses
//! each about 3–4× but nothing dedupes across files) carry half the bytes;
//! a few large images (1–10 MB of random bytes behind a real magic number:
//! incompressible) 30 %; wasm modules (1–10 MB, alternating 64 KiB of
//! random and of low-entropy bytes) 20 %. The same seed gives a
//! byte-identical tree with the same names and mtimes.
//!
//! `--mutate` overwrites 64 random bytes at a random offset in that fraction
//! of the files (at least one; sizes unchanged) and stamps each with the
//! mtime `MUTATE_MTIME`, which `bench_deploy` looks for. The summary line
//! goes to stdout, progress and the per-type breakdown to stderr.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, FileTimes};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

/// Every generated file's mtime is this plus its index; directories get it
/// as is, so the tree's metadata is as deterministic as its bytes.
const BASE_MTIME: u64 = 1_700_000_000;
/// The mtime `--mutate` gives the files it changed.
const MUTATE_MTIME: u64 = 1_800_000_000;

/// Text kinds and their share of the text files.
const TEXT_KINDS: [(&str, f64); 6] = [
    ("js", 0.55),
    ("css", 0.12),
    ("html", 0.05),
    ("json", 0.13),
    ("map", 0.10),
    ("svg", 0.05),
];
/// Byte shares of text, images and wasm.
const SHARES: (f64, f64, f64) = (0.50, 0.30, 0.20);
/// At most this many images and wasm modules; fewer when their byte share
/// cannot give each its 1 MB minimum (a small `--total-mb`).
const MAX_IMAGES: usize = 28;
const MAX_WASM: usize = 18;
const BIG_MIN: u64 = 1_000_000;
const BIG_MAX: u64 = 10_000_000;
const TEXT_MIN: u64 = 1024;
const TEXT_MAX: u64 = 50 * 1024;

/// Each kind's own punctuation and keywords: they take the most frequent
/// ranks of a file's vocabulary, as in real minified output.
fn fixed_tokens(kind: &str) -> &'static [&'static str] {
    match kind {
        "js" => &[
            "function", "return", "const", "let", "var", "if", "else", "for", "new", "this", "typeof", "null",
            "void 0", "!0", "!1", "=>", "export", "import", "from", "class", "extends", "async", "await", "(", ")",
            "{", "}", ";", ",", ".", "=", "===", "+", "&&", "||", "?", ":", "[", "]", " ", "\n", "\"", "'", "0", "1",
            "2",
        ],
        "css" => &[
            "{",
            "}",
            ";",
            ":",
            " ",
            "\n",
            "px",
            "rem",
            "%",
            "#",
            "color",
            "margin",
            "padding",
            "display:flex",
            "font-size",
            "background",
            "border",
            "0",
            "1",
            "2",
            "4",
            "8",
            "16",
            ".",
            ",",
            ">",
            "!important",
        ],
        "html" => &[
            "<div",
            "</div>",
            "<span",
            "</span>",
            "<a href=\"",
            "\">",
            "</a>",
            "<p>",
            "</p>",
            " class=\"",
            "\"",
            ">",
            " ",
            "\n",
            "<li>",
            "</li>",
            "<script src=\"",
            "\"></script>",
            "<link rel=\"stylesheet\" href=\"",
        ],
        "json" => &[
            "{",
            "}",
            "[",
            "]",
            "\"",
            ":",
            ",",
            " ",
            "\n",
            "true",
            "false",
            "null",
            "0",
            "1",
            "\"id\"",
            "\"name\"",
            "\"value\"",
            "\"type\"",
        ],
        "map" => &[
            "\"", ",", ";", "A", "C", "E", "G", "I", "K", "M", "O", "Q", "S", "U", "W", "Y", "a", "c", "e", "g", "i",
            "k", "m", "o", "q", "AAAA", "CAAC", "IAAI", "EAAE", "GAAG", "\\n",
        ],
        _ => &[
            "<path d=\"",
            "M",
            "L",
            "C",
            "Z",
            " ",
            ",",
            ".",
            "\"/>",
            "<g>",
            "</g>",
            "fill=\"#",
            "\n",
            "0",
            "1",
            "2",
            "3",
            "4",
            "5",
            "6",
            "7",
            "8",
            "9",
            "-",
        ],
    }
}

/// xoshiro256** seeded through splitmix64: small, fast and the same on
/// every machine, which is all a benchmark tree needs.
struct Rng([u64; 4]);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Self([next(), next(), next(), next()])
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let out = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    /// Uniform in `0..n` (`n > 0`), by the multiply-shift method.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.index(i + 1));
        }
    }

    /// `k` distinct indices of `0..n`, in random order.
    fn sample(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        for i in 0..k.min(n) {
            let j = i + self.index(n - i);
            idx.swap(i, j);
        }
        idx.truncate(k.min(n));
        idx
    }

    /// An index drawn by cumulative weights (the last one is the total).
    fn weighted(&mut self, cum: &[f64]) -> usize {
        let total = cum.last().copied().unwrap_or(0.0);
        let x = self.unit() * total;
        cum.partition_point(|&c| c <= x).min(cum.len() - 1)
    }

    /// An identifier-like word of `lo..=hi` characters.
    fn word(&mut self, lo: u64, hi: u64) -> String {
        const FIRST: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_$";
        const REST: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
        let n = self.between(lo, hi) as usize;
        let mut w = String::with_capacity(n);
        w.push(FIRST[self.index(FIRST.len())] as char);
        for _ in 1..n {
            w.push(REST[self.index(REST.len())] as char);
        }
        w
    }
}

/// Cumulative Zipf weights for `n` ranks: rank r weighs 1 / (r + 1)^s.
fn zipf_cum(n: usize, s: f64) -> Vec<f64> {
    let mut acc = 0.0;
    (0..n)
        .map(|r| {
            acc += 1.0 / ((r + 1) as f64).powf(s);
            acc
        })
        .collect()
}

/// Scales sizes towards `target` bytes in total, each kept in `lo..=hi`.
fn scale(mut sizes: Vec<u64>, target: f64, lo: u64, hi: u64) -> Vec<u64> {
    for _ in 0..20 {
        let total: u64 = sizes.iter().sum();
        if total == 0 || (total as f64 - target).abs() < target * 0.001 {
            break;
        }
        let f = target / total as f64;
        for s in &mut sizes {
            *s = ((*s as f64 * f) as u64).clamp(lo, hi);
        }
    }
    sizes
}

fn text_file(rng: &mut Rng, kind: &str, size: usize, global: &[String]) -> Vec<u8> {
    let mut local: Vec<String> = rng
        .sample(global.len(), 200)
        .into_iter()
        .map(|i| global[i].clone())
        .collect();
    for _ in 0..30 {
        local.push(rng.word(3, 16));
    }
    let mut fixed: Vec<String> = fixed_tokens(kind).iter().map(|t| (*t).to_owned()).collect();
    rng.shuffle(&mut fixed);
    rng.shuffle(&mut local);
    fixed.extend(local);
    let vocab = fixed;
    let cum = zipf_cum(vocab.len(), 1.1);
    let mut out = format!("/* {kind} build {:016x} */\n", rng.next_u64()).into_bytes();
    while out.len() < size {
        out.extend_from_slice(vocab[rng.weighted(&cum)].as_bytes());
    }
    out.truncate(size);
    out
}

fn wasm_file(rng: &mut Rng, size: usize) -> Vec<u8> {
    let table: Vec<[u8; 4]> = (0..256).map(|_| (rng.next_u64() as u32).to_le_bytes()).collect();
    let cum = zipf_cum(table.len(), 1.2);
    let mut out = b"\0asm\x01\0\0\0".to_vec();
    let mut random_chunk = true;
    while out.len() < size {
        let n = (64 * 1024).min(size - out.len());
        let start = out.len();
        if random_chunk {
            out.resize(start + n, 0);
            rng.fill(&mut out[start..]);
        } else {
            while out.len() < start + n {
                out.extend_from_slice(&table[rng.weighted(&cum)]);
            }
            out.truncate(start + n);
        }
        random_chunk = !random_chunk;
    }
    out.truncate(size);
    out
}

fn image_file(rng: &mut Rng, ext: &str, size: usize) -> Vec<u8> {
    let magic: &[u8] = match ext {
        "png" => b"\x89PNG\r\n\x1a\n",
        "jpg" => b"\xff\xd8\xff\xe0",
        _ => b"RIFF\0\0\0\0WEBP",
    };
    let mut out = vec![0; size.max(magic.len())];
    out[..magic.len()].copy_from_slice(magic);
    rng.fill(&mut out[magic.len()..]);
    out
}

/// The directories each kind of file goes to, shaped like a bundler's output.
fn layout(rng: &mut Rng) -> BTreeMap<&'static str, Vec<String>> {
    let mut dirs: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for i in 0..180 {
        let mut d = format!("assets/js/m{i:03}");
        if i % 3 == 0 {
            d += &format!("/chunks/{}", rng.word(4, 8).to_lowercase());
        }
        dirs.entry("js").or_default().push(d.clone());
        dirs.entry("map").or_default().push(d);
    }
    for _ in 0..40 {
        let d = format!("assets/css/{}", rng.word(4, 10).to_lowercase());
        dirs.entry("css").or_default().push(d);
    }
    dirs.entry("html").or_default().push(String::new());
    for i in 0..60 {
        let d = format!("pages/{}/{i:02}", rng.word(4, 10).to_lowercase());
        dirs.entry("html").or_default().push(d);
    }
    for loc in ["en", "de", "fr", "es", "it", "ja", "ko", "zh", "pt", "ru", "nl", "sv"] {
        for j in 0..8 {
            dirs.entry("json").or_default().push(format!("locales/{loc}/ns{j}"));
        }
    }
    for i in 0..50 {
        dirs.entry("svg").or_default().push(format!("static/icons/set{i:02}"));
    }
    for i in 0..10 {
        dirs.entry("img").or_default().push(format!("static/media/{i:02}"));
    }
    dirs.insert("wasm", vec!["wasm".into(), "wasm/workers".into()]);
    dirs
}

fn stamp(path: &Path, secs: u64) -> std::io::Result<()> {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    File::open(path)?.set_times(FileTimes::new().set_accessed(t).set_modified(t))
}

fn generate(out: &Path, seed: u64, files: usize, total_mb: f64) -> Result<(), String> {
    let io = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
    let mut rng = Rng::new(seed);
    let total = total_mb * 1e6;
    let (text_share, img_share, wasm_share) = (total * SHARES.0, total * SHARES.1, total * SHARES.2);
    // As many large files as their share holds at 1 MB each, up to the maximum.
    let n_img = MAX_IMAGES.min((img_share / BIG_MIN as f64) as usize);
    let n_wasm = MAX_WASM.min((wasm_share / BIG_MIN as f64) as usize);
    let n_text = files
        .checked_sub(n_img + n_wasm)
        .ok_or_else(|| format!("--files {files} is fewer than the {} large files", n_img + n_wasm))?;
    let dirs = layout(&mut rng);
    let global: Vec<String> = (0..8000).map(|_| rng.word(1, 12)).collect();

    let (ln_lo, ln_hi) = ((TEXT_MIN as f64).ln(), (TEXT_MAX as f64).ln());
    let text_sizes = (0..n_text)
        .map(|_| (ln_lo + rng.unit() * (ln_hi - ln_lo)).exp() as u64)
        .collect();
    let text_sizes = scale(text_sizes, text_share, TEXT_MIN, TEXT_MAX);
    let img_sizes = (0..n_img).map(|_| rng.between(BIG_MIN, BIG_MAX)).collect();
    let img_sizes = scale(img_sizes, img_share, BIG_MIN, BIG_MAX);
    let wasm_sizes = (0..n_wasm).map(|_| rng.between(BIG_MIN, BIG_MAX)).collect();
    let wasm_sizes = scale(wasm_sizes, wasm_share, BIG_MIN, BIG_MAX);

    let kind_cum: Vec<f64> = TEXT_KINDS
        .iter()
        .scan(0.0, |acc, (_, w)| {
            *acc += w;
            Some(*acc)
        })
        .collect();
    // (kind, extension, size)
    let mut plan: Vec<(&str, &str, u64)> = Vec::with_capacity(files);
    for s in text_sizes {
        let k = TEXT_KINDS[rng.weighted(&kind_cum)].0;
        plan.push((k, k, s));
    }
    for s in img_sizes {
        plan.push(("img", ["png", "jpg", "webp"][rng.index(3)], s));
    }
    for s in wasm_sizes {
        plan.push(("wasm", "wasm", s));
    }
    rng.shuffle(&mut plan);

    fs::create_dir_all(out).map_err(|e| io("cannot create", out, e))?;
    let mut made: BTreeSet<PathBuf> = BTreeSet::from([out.to_owned()]);
    let mut stats: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    let started = Instant::now();
    for (idx, (kind, ext, size)) in plan.iter().enumerate() {
        let choices = &dirs[kind];
        let dir = out.join(&choices[rng.index(choices.len())]);
        let name = format!("{}-{:08x}.{ext}", rng.word(3, 10).to_lowercase(), rng.next_u64() as u32);
        let size = *size as usize;
        let data = match *kind {
            "img" => image_file(&mut rng, ext, size),
            "wasm" => wasm_file(&mut rng, size),
            _ => text_file(&mut rng, kind, size, &global),
        };
        if !made.contains(&dir) {
            fs::create_dir_all(&dir).map_err(|e| io("cannot create", &dir, e))?;
            // Every ancestor too, for the directory mtimes below.
            for a in dir.ancestors().take_while(|a| *a != out) {
                made.insert(a.to_owned());
            }
        }
        let path = dir.join(name);
        fs::write(&path, &data).map_err(|e| io("cannot write", &path, e))?;
        stamp(&path, BASE_MTIME + idx as u64).map_err(|e| io("cannot stamp", &path, e))?;
        let s = stats.entry(ext).or_default();
        s.0 += 1;
        s.1 += data.len() as u64;
        if idx % 2000 == 0 {
            eprintln!("  {idx}/{} files, {:.1}s", plan.len(), started.elapsed().as_secs_f64());
        }
    }
    // Deepest first, so stamping a directory comes after its last change.
    let mut made: Vec<PathBuf> = made.into_iter().collect();
    made.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in &made {
        stamp(d, BASE_MTIME).map_err(|e| io("cannot stamp", d, e))?;
    }
    for (ext, (n, bytes)) in &stats {
        eprintln!("  {ext:5} {n:6} files {:8.1} MB", *bytes as f64 / 1e6);
    }
    let n: usize = stats.values().map(|s| s.0).sum();
    let bytes: u64 = stats.values().map(|s| s.1).sum();
    println!(
        "wrote {n} files, {bytes} bytes ({:.1} MB), {} dirs in {:.1}s",
        bytes as f64 / 1e6,
        made.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn mutate(out: &Path, fraction: f64, seed: u64) -> Result<(), String> {
    let mut files = Vec::new();
    let mut stack = vec![out.to_owned()];
    while let Some(d) = stack.pop() {
        let entries = fs::read_dir(&d).map_err(|e| format!("cannot read {}: {e}", d.display()))?;
        for e in entries {
            let e = e.map_err(|e| format!("cannot read {}: {e}", d.display()))?;
            let t = e.file_type().map_err(|e| format!("{}: {e}", e))?;
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                files.push(e.path());
            }
        }
    }
    // Sorted, so the same seed picks the same files whatever order the
    // directory listing came in.
    files.sort();
    if files.is_empty() {
        return Err(format!("{} has no files to mutate", out.display()));
    }
    let mut rng = Rng::new(seed);
    let k = ((files.len() as f64 * fraction).round() as usize).clamp(1, files.len());
    let mut bytes = 0u64;
    for i in rng.sample(files.len(), k) {
        let path = &files[i];
        let fail = |e: std::io::Error| format!("cannot mutate {}: {e}", path.display());
        let mut f = File::options().write(true).open(path).map_err(fail)?;
        let size = f.metadata().map_err(fail)?.len();
        let off = rng.below(size.saturating_sub(64).max(1));
        let mut patch = vec![0; size.min(64) as usize];
        rng.fill(&mut patch);
        f.seek(SeekFrom::Start(off)).map_err(fail)?;
        f.write_all(&patch).map_err(fail)?;
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(MUTATE_MTIME);
        f.set_times(FileTimes::new().set_accessed(t).set_modified(t))
            .map_err(fail)?;
        bytes += size;
    }
    println!(
        "mutated {k} of {} files ({:.1} MB in those files)",
        files.len(),
        bytes as f64 / 1e6
    );
    Ok(())
}

const USAGE: &str = "usage: gen_tree OUT_DIR [--seed N] [--files N] [--total-mb M]\n       gen_tree OUT_DIR --mutate FRACTION [--mutate-seed N]";

fn run() -> Result<(), String> {
    let mut out = None;
    let (mut seed, mut files, mut total_mb) = (42u64, 20_000usize, 500.0f64);
    let (mut fraction, mut mutate_seed) = (None, 1u64);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value\n{USAGE}"));
        let bad = |name: &str, v: &str| format!("{name}: '{v}' is not a number\n{USAGE}");
        match a.as_str() {
            "--seed" => {
                let v = value("--seed")?;
                seed = v.parse().map_err(|_| bad("--seed", &v))?;
            }
            "--files" => {
                let v = value("--files")?;
                files = v.parse().map_err(|_| bad("--files", &v))?;
            }
            "--total-mb" => {
                let v = value("--total-mb")?;
                total_mb = v.parse().map_err(|_| bad("--total-mb", &v))?;
            }
            "--mutate" => {
                let v = value("--mutate")?;
                fraction = Some(v.parse::<f64>().map_err(|_| bad("--mutate", &v))?);
            }
            "--mutate-seed" => {
                let v = value("--mutate-seed")?;
                mutate_seed = v.parse().map_err(|_| bad("--mutate-seed", &v))?;
            }
            "-h" | "--help" => return Err(USAGE.into()),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}\n{USAGE}")),
            _ if out.is_some() => return Err(format!("one OUT_DIR only\n{USAGE}")),
            _ => out = Some(PathBuf::from(a)),
        }
    }
    let out = out.ok_or_else(|| USAGE.to_owned())?;
    match fraction {
        Some(f) if !(0.0..=1.0).contains(&f) => Err(format!("--mutate {f}: a fraction between 0 and 1")),
        Some(f) => mutate(&out, f, mutate_seed),
        None => {
            if fs::read_dir(&out).is_ok_and(|mut d| d.next().is_some()) {
                return Err(format!("{} exists and is not empty", out.display()));
            }
            generate(&out, seed, files, total_mb)
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_tree: {e}");
            ExitCode::from(2)
        }
    }
}
