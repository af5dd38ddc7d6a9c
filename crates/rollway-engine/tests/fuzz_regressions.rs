//! Replays the `agent_frames` fuzz target's corpus and crash inputs on
//! stable, through the target's own check (`fuzz/checks/agent_frames.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../fuzz/checks/agent_frames.rs"]
mod agent_frames;
#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

#[test]
fn agent_frame_inputs_hold_the_property() {
    replay::replay(env!("CARGO_MANIFEST_DIR"), "agent_frames", agent_frames::check);
}
