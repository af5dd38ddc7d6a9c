//! Fuzz target `agent_frames`: the host agent's frame decoder (`read_frame`,
//! `recv::<Request>`, the data stream after `Prepare`/`File`) on an
//! arbitrary byte stream: no panic, requests round-trip.
//! The property lives in `fuzz/checks/`, shared with the stable regression
//! test that replays this target's corpus and crash inputs.
#![no_main]

#[path = "../checks/agent_frames.rs"]
mod agent_frames;

libfuzzer_sys::fuzz_target!(|data: &[u8]| agent_frames::check(data));
