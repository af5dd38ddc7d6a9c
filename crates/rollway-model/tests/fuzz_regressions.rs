//! Replays the `mask` fuzz target's corpus and crash inputs on stable,
//! through the target's own check (`fuzz/checks/mask.rs`): no promised form
//! of a secret survives masking, whole or streamed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../fuzz/checks/mask.rs"]
mod mask;
#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

#[test]
fn mask_inputs_hold_the_property() {
    replay::replay(env!("CARGO_MANIFEST_DIR"), "mask", mask::check);
}
