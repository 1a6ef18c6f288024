//! Guildhall's database schema, one sea-orm migration per change.
//!
//! Released migrations are never edited: a change to the schema is a new migration appended
//! to [`Migrator::migrations`]. Every migration runs on both SQLite and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m20261127_000001_tenants;
mod m20261127_000002_plugin_data;
mod m20261127_000003_catalogue;
mod m20261127_000004_identity;
mod m20261127_000005_row_level_security;
mod m20261127_000006_telemetry;
mod m20261201_000007_namespaced_roles;
mod m20261201_000008_plugin_owners;
mod m20261201_000009_tokens_rls;
mod m20261206_000010_console_sessions;
mod m20261207_000011_citizen_pages;
mod m20261208_000012_kv_usage;
mod m20261209_000013_transactions;
mod m20261210_000014_data_protection;
mod m20261211_000015_retention;
mod m20261212_000016_tenant_deletion;
mod m20261213_000017_shared_artefacts;

pub use m20261212_000016_tenant_deletion::FORGET_AUDIT_CHAIN;

/// Every table holding tenant data, each with a `tenant_id` column and, on PostgreSQL,
/// row-level security enabled and forced. (`tokens` also holds platform tokens, whose
/// `tenant_id` is NULL; see its migration for how authentication reads it.)
pub const TENANT_TABLES: &[&str] = &[
    "councils",
    "installs",
    "kv_entries",
    "plugin_events",
    "members",
    "audit_log",
    "audit_heads",
    "usage_daily",
    "feedback",
    "tokens",
    "citizen_sessions",
    "kv_usage",
    "install_secrets",
    "council_settings",
    "schedule_runs",
    "subject_requests",
    "install_retention",
];

/// Applies Guildhall's migrations in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_tenants::Migration),
            Box::new(m20261127_000002_plugin_data::Migration),
            Box::new(m20261127_000003_catalogue::Migration),
            Box::new(m20261127_000004_identity::Migration),
            Box::new(m20261127_000005_row_level_security::Migration),
            Box::new(m20261127_000006_telemetry::Migration),
            Box::new(m20261201_000007_namespaced_roles::Migration),
            Box::new(m20261201_000008_plugin_owners::Migration),
            Box::new(m20261201_000009_tokens_rls::Migration),
            Box::new(m20261206_000010_console_sessions::Migration),
            Box::new(m20261207_000011_citizen_pages::Migration),
            Box::new(m20261208_000012_kv_usage::Migration),
            Box::new(m20261209_000013_transactions::Migration),
            Box::new(m20261210_000014_data_protection::Migration),
            Box::new(m20261211_000015_retention::Migration),
            Box::new(m20261212_000016_tenant_deletion::Migration),
            Box::new(m20261213_000017_shared_artefacts::Migration),
        ]
    }
}
