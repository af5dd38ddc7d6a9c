//! Fuzz target `release_writer`: arbitrary steps on `ReleaseWriter` (directories, files,
//! symlinks, hard links, then finish or abandon): nothing is written outside
//! the release directory, a refused or abandoned release leaves nothing.
//! The property lives in `fuzz/checks/`, shared with the stable regression
//! test that replays this target's corpus and crash inputs.
#![no_main]

#[path = "../checks/artifact.rs"]
mod artifact;

libfuzzer_sys::fuzz_target!(|data: &[u8]| artifact::check_release_writer(data));
