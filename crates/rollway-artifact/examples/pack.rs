//! Packs a tree the way `rollway build` will, for `scripts/bench pack`:
//! `pack SRC OUT_DIR CACHE_DIR [--level N] [--workers N] [--no-sync]`.
//! Prints one line of `key=value` figures (digests, sizes, bytes read from
//! /proc/self/io, peak RSS) for the benchmark to parse.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use rollway_artifact::{Compression, PackOptions, pack};

fn proc_field(file: &str, key: &str) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut positional = Vec::new();
    let mut level = None;
    let mut workers = None;
    let mut sync = true;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--level" => level = it.next().and_then(|v| v.parse().ok()),
            "--workers" => workers = it.next().and_then(|v| v.parse().ok()),
            "--no-sync" => sync = false,
            _ => positional.push(PathBuf::from(a)),
        }
    }
    let [src, out, cache] = positional.as_slice() else {
        eprintln!("usage: pack SRC OUT_DIR CACHE_DIR [--level N] [--workers N] [--no-sync]");
        return ExitCode::from(2);
    };
    let mut opts = PackOptions::new(out);
    opts.cache_dir = Some(cache.clone());
    opts.sync = sync;
    if let Some(l) = level {
        opts.compression = Compression::Level(l);
    }
    if let Some(w) = workers {
        opts.workers = w;
    }
    let rchar_before = proc_field("/proc/self/io", "rchar:");
    let start = Instant::now();
    match pack(src, &opts) {
        Ok(r) => {
            let secs = start.elapsed().as_secs_f64();
            let rchar = proc_field("/proc/self/io", "rchar:") - rchar_before;
            println!(
                "sha256={} content_digest={} size_bytes={} files={} file_bytes={} reused={} cache_hits={} bytes_read={} rchar={} secs={:.3} peak_rss_kib={} aliases_resolved={} archive={}",
                r.sha256,
                r.content_digest,
                r.size_bytes,
                r.file_count,
                r.file_bytes,
                r.reused,
                r.stats.cache_hits,
                r.stats.bytes_read,
                rchar,
                secs,
                proc_field("/proc/self/status", "VmHWM:"),
                r.aliases_resolved,
                r.archive_path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
