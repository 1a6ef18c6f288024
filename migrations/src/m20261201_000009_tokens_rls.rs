//! Row-level security for `tokens` on PostgreSQL.
//!
//! A tenant's tokens are tenant data (name, role, council, creator, secret hash), but
//! authentication must read a token before any tenant is known, and platform tokens
//! (`tenant_id` NULL) belong to no tenant. Three policies, OR-ed by PostgreSQL:
//! - `tenant_isolation`: a tenant's rows, under that tenant's `guildhall.tenant_id`
//!   setting, for listing, minting and revoking (as on every tenant table);
//! - `platform_tokens`: rows with no tenant, which are platform data;
//! - `token_lookup` (reads only): the one row whose id equals the transaction's
//!   `guildhall.token_id` setting. Authentication sets it to the id inside the presented
//!   token and reads that row to compare hashes: a reader must already hold a token's id to
//!   see its row, and sees no other.
//!
//! A `SECURITY DEFINER` lookup function was the alternative; it would run as the table
//! owner, whom `FORCE ROW LEVEL SECURITY` binds too, so it could not see the rows either
//! without a BYPASSRLS owner. SQLite has no row-level security; there the repositories'
//! filters are the only wall.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if db.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        db.execute_unprepared(
            "ALTER TABLE tokens ENABLE ROW LEVEL SECURITY;
             ALTER TABLE tokens FORCE ROW LEVEL SECURITY;
             CREATE POLICY tenant_isolation ON tokens
                 USING (tenant_id = current_setting('guildhall.tenant_id', true))
                 WITH CHECK (tenant_id = current_setting('guildhall.tenant_id', true));
             CREATE POLICY platform_tokens ON tokens
                 USING (tenant_id IS NULL)
                 WITH CHECK (tenant_id IS NULL);
             CREATE POLICY token_lookup ON tokens FOR SELECT
                 USING (id = current_setting('guildhall.token_id', true));",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if db.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        db.execute_unprepared(
            "DROP POLICY IF EXISTS token_lookup ON tokens;
             DROP POLICY IF EXISTS platform_tokens ON tokens;
             DROP POLICY IF EXISTS tenant_isolation ON tokens;
             ALTER TABLE tokens NO FORCE ROW LEVEL SECURITY;
             ALTER TABLE tokens DISABLE ROW LEVEL SECURITY;",
        )
        .await?;
        Ok(())
    }
}
