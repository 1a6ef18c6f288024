//! The Guildhall server and command line: configuration, wiring and process lifecycle.
//!
//! This is the only crate that knows every other crate; it builds them from the
//! configuration and hands each what it needs.

mod access;
mod author;
pub mod cli;
pub mod config;
mod connections;
mod logging;
mod plugins;
pub mod ports;
pub mod server;
mod tenants;
mod usage;

pub use config::Config;
pub use guildhall_api::openapi;
pub use server::Server;
