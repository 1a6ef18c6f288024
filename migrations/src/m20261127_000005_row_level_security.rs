//! Row-level security on PostgreSQL: the second wall between tenants.
//!
//! Every table that holds a tenant's data gets RLS enabled and forced (so it holds for the
//! table owner too) with one policy: a row is visible and writable only when its
//! `tenant_id` equals the transaction's `guildhall.tenant_id` setting. Without the setting
//! no tenant row is visible. SQLite has no such feature; there the repositories'
//! `TenantScope` is the only wall.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The tables holding tenant data when this migration was written, each with a
/// `tenant_id` column. Later migrations guard their own tables the same way.
pub const TABLES: &[&str] = &[
    "councils",
    "installs",
    "kv_entries",
    "plugin_events",
    "members",
    "audit_log",
    "audit_heads",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if db.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        for table in TABLES {
            db.execute_unprepared(&format!(
                "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
                 ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
                 CREATE POLICY tenant_isolation ON {table}
                     USING (tenant_id = current_setting('guildhall.tenant_id', true))
                     WITH CHECK (tenant_id = current_setting('guildhall.tenant_id', true));"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if db.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        for table in TABLES {
            db.execute_unprepared(&format!(
                "DROP POLICY IF EXISTS tenant_isolation ON {table};
                 ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY;
                 ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;"
            ))
            .await?;
        }
        Ok(())
    }
}
