//! Durations serialise as rollway.toml writes them ("5s", "30m"), so a
//! serialised config reads like the file it came from.

use std::time::Duration;

use rollway_model::time::format_duration;
use serde::Serializer;

pub(crate) fn ser<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

pub(crate) fn ser_opt<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser(d, s),
        None => s.serialize_none(),
    }
}
