//! Fuzz target `artifact_unpack`: `rollway_artifact::unpack` of an arbitrary tar + zstd
//! archive into a fresh directory of a sandbox: nothing is written outside
//! it, a refused archive leaves nothing, an accepted one is read-only and
//! its symlinks stay inside.
//! The property lives in `fuzz/checks/`, shared with the stable regression
//! test that replays this target's corpus and crash inputs.
#![no_main]

#[path = "../checks/artifact.rs"]
mod artifact;

libfuzzer_sys::fuzz_target!(|data: &[u8]| artifact::check_unpack(data));
