//! Replays the `artifact_unpack` and `release_writer` fuzz targets' corpora
//! and crash inputs on stable, through the targets' own checks
//! (`fuzz/checks/artifact.rs`): nothing is written outside the release.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../fuzz/checks/artifact.rs"]
mod artifact;
#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

#[test]
fn artifact_unpack_inputs_hold_the_property() {
    replay::replay(env!("CARGO_MANIFEST_DIR"), "artifact_unpack", artifact::check_unpack);
}

#[test]
fn release_writer_inputs_hold_the_property() {
    replay::replay(
        env!("CARGO_MANIFEST_DIR"),
        "release_writer",
        artifact::check_release_writer,
    );
}
