//! One module per command group; each turns a `Session` and its arguments
//! into printer output or an error with an exit code.

pub mod agent;
pub mod alerts;
pub mod backup;
pub mod build;
pub mod config;
pub mod demo;
pub mod deploy;
pub mod deploys;
pub mod env;
pub mod events;
pub mod exec;
pub mod host;
pub mod init;
pub mod meta;
pub mod metrics;
pub mod monitor;
pub mod pipeline;
pub mod secrets;
pub mod serve;
pub mod service;
pub mod uptime;
