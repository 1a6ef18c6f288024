//! Guildhall's operations: what an operator, a tenant's administrator or a publisher can do
//! to the platform, each with all of its checks, beneath the edges that offer them (the
//! HTTP API, the console and the command line).
//!
//! **Architecture Invariant:** an edge parses its input, decides who is acting and may act,
//! and calls an operation here; it never repeats an operation's checks or reaches around
//! it to the store. Every operation returns a typed [`Error`] that says what went wrong in
//! the platform's terms; each edge turns it into its own form (problem+json, a page's error
//! summary, a line on stderr) in one place.

pub mod access;
pub mod audit;
pub mod catalogue;
mod error;
pub mod health;
pub mod installs;
pub mod owners;
pub mod retention;
pub mod tenant_archive;
pub mod tenants;

pub use error::{Error, FieldProblem};
