//! Guildhall's vocabulary: identifiers, plugin manifests and the declarative tenant files.
//!
//! This crate does no I/O and knows nothing about HTTP or SQL, so every other crate can
//! depend on it and tests can exercise validation without a server.

pub mod audit;
pub mod brand;
mod caller;
mod digest;
mod ids;
pub mod manifest;
pub mod metering;
mod role;
pub mod signing;
mod site;
mod subject;
pub mod tenant;
pub mod text;

pub use caller::Caller;
pub use digest::{Digest, DigestError};
pub use ids::{CouncilId, IdError, PluginName, TenantId};
pub use role::{Role, UnknownRole};
pub use site::Site;
pub use subject::{IssuerId, MAX_SUB_LEN, Subject, SubjectError, check_sub};
