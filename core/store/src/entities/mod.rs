//! sea-orm entities, one module per table. Private to the store: other crates see records.

pub(crate) mod audit_heads;
pub(crate) mod audit_log;
pub(crate) mod brand_logos;
pub(crate) mod casbin_rules;
pub(crate) mod citizen_sessions;
pub(crate) mod compiled_artefacts;
pub(crate) mod component_blobs;
pub(crate) mod console_sessions;
pub(crate) mod console_sign_ins;
pub(crate) mod councils;
pub(crate) mod installs;
pub(crate) mod kv_entries;
pub(crate) mod maintenance_runs;
pub(crate) mod members;
pub(crate) mod platform_revision;
pub(crate) mod plugin_events;
pub(crate) mod plugin_owners;
pub(crate) mod plugin_versions;
pub(crate) mod plugins;
pub(crate) mod publisher_keys;
pub(crate) mod subject_requests;
pub(crate) mod tenant_revisions;
pub(crate) mod tenants;
pub(crate) mod tokens;
