//! Exit codes, documented in the README: the app layer classes every error
//! (`rollway_app::Code`); this turns a class into the process's exit code.

pub use rollway_app::Code;

/// Wraps an error with the class it should end the process with.
pub fn coded(code: Code, error: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(rollway_app::Error::new(code, error))
}

/// Like `coded`, with details for the `--json` answer.
pub fn coded_with(code: Code, error: impl Into<anyhow::Error>, details: serde_json::Value) -> anyhow::Error {
    anyhow::Error::new(rollway_app::Error::new(code, error).with_details(details))
}
