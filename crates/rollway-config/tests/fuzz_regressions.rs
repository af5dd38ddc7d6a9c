//! Replays the `config` fuzz target's corpus and crash inputs on stable:
//! each goes through the same check as the target (`fuzz/checks/config.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../fuzz/checks/config.rs"]
mod config;
#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

#[test]
fn config_inputs_hold_the_property() {
    replay::replay(env!("CARGO_MANIFEST_DIR"), "config", config::check);
}
