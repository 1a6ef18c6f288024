//! Guildhall's vocabulary: identifiers and the declarative tenant files.
//!
//! This crate does no I/O and knows nothing about HTTP or SQL, so every other crate can
//! depend on it and tests can exercise validation without a server.

mod ids;
pub mod tenant;

pub use ids::{CouncilId, IdError, PluginName, TenantId};
