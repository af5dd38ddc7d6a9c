//! Replays the `dotenv` and `age_import` fuzz targets' corpora and crash
//! inputs on stable, through the targets' own checks (`fuzz/checks/`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../fuzz/checks/age_import.rs"]
mod age_import;
#[path = "../../../fuzz/checks/dotenv.rs"]
mod dotenv;
#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

#[test]
fn dotenv_inputs_hold_the_property() {
    replay::replay(env!("CARGO_MANIFEST_DIR"), "dotenv", dotenv::check);
}

#[test]
fn age_import_inputs_hold_the_property() {
    replay::replay(env!("CARGO_MANIFEST_DIR"), "age_import", age_import::check);
}
