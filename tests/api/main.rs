//! Black-box tests: the real server over real HTTP, on SQLite and on PostgreSQL.
//!
//! One test binary with a module per feature keeps link time down.

mod helpers;

mod access;
mod catalogue;
mod cli;
mod gateway;
mod health;
mod owners;
mod replicas;
mod shutdown;
mod telemetry;
mod tenants;
