//! Route handlers, one module per resource.

pub(crate) mod audit;
pub(crate) mod health;
pub(crate) mod install_settings;
pub(crate) mod installs;
pub(crate) mod members;
pub(crate) mod owners;
pub(crate) mod plugins;
pub(crate) mod retention;
pub(crate) mod subject_requests;
pub(crate) mod telemetry;
pub(crate) mod tenant_lifecycle;
pub(crate) mod tenants;
pub(crate) mod tokens;
