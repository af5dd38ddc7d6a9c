//! Fuzz target `dotenv`: the dotenv parser behind `rollway secrets import`: no panic,
//! valid distinct keys, render/parse round trip.
//! The property lives in `fuzz/checks/`, shared with the stable regression
//! test that replays this target's corpus and crash inputs.
#![no_main]

#[path = "../checks/dotenv.rs"]
mod dotenv;

libfuzzer_sys::fuzz_target!(|data: &[u8]| dotenv::check(data));
