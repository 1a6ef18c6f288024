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

pub use m20261127_000005_row_level_security::TENANT_TABLES;

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
        ]
    }
}
