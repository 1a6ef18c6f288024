//! Route handlers, one module per resource.

pub(crate) mod health;
pub(crate) mod installs;
pub(crate) mod plugins;
pub(crate) mod tenants;
