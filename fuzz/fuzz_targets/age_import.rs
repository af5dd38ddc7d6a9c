//! Fuzz target `age_import`: `rollway secrets import` of an age file (armored or
//! binary), decrypted with a fixed test identity, then read as dotenv.
//! The property lives in `fuzz/checks/`, shared with the stable regression
//! test that replays this target's corpus and crash inputs.
#![no_main]

#[path = "../checks/age_import.rs"]
mod age_import;
#[path = "../checks/dotenv.rs"]
mod dotenv;

libfuzzer_sys::fuzz_target!(|data: &[u8]| age_import::check(data));
