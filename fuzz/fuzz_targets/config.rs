//! Fuzz target `config`: `rollway_config::parse` (what `rollway config check`
//! runs) on arbitrary text: no panic, diagnostics inside the text and
//! sorted, an accepted config consistent.
//! The property lives in `fuzz/checks/`, shared with the stable regression
//! test that replays this target's corpus and crash inputs.
#![no_main]

#[path = "../checks/config.rs"]
mod config;

libfuzzer_sys::fuzz_target!(|data: &[u8]| config::check(data));
