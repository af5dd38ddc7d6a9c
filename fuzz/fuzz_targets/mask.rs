//! Fuzz target `mask`: the masking filter (`rollway_model::Masker`, whole and
//! streamed): for arbitrary secrets and text around one of their
//! encodings, no promised form of a secret survives masking.
//! The property lives in `fuzz/checks/`, shared with the stable regression
//! test that replays this target's corpus and crash inputs.
#![no_main]

#[path = "../checks/mask.rs"]
mod mask;

libfuzzer_sys::fuzz_target!(|data: &[u8]| mask::check(data));
