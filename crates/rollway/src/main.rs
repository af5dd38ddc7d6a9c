//! The `rollway` binary: parses arguments and hands off to `cli`. Kept thin;
//! the work lives in the library crates.

mod cli;
mod commands;
mod output;
mod progress;
mod session;
mod signals;

fn main() {
    std::process::exit(cli::run());
}
