//! Deleting a tenant's audit chain together with the tenant, and never otherwise.
//!
//! On PostgreSQL the server's role may only read and append to `audit_log`. Deleting a
//! tenant must remove its chain as well, so this migration adds one function, owned by the
//! table owner and run with the owner's rights (`SECURITY DEFINER`), that deletes the chain
//! (entries and head) of a tenant whose row no longer exists: the server calls it in the
//! transaction that has just deleted the tenant's row. It refuses the platform's chain and
//! the chain of any tenant that still exists, so the server's role still cannot remove or
//! shorten a live chain. Row-level security (forced, so it binds the owner too) applies
//! inside the function: the caller's transaction is scoped to the tenant being deleted.
//!
//! `EXECUTE` is taken from `PUBLIC`; the owner keeps it and the server's role is granted it
//! with its other privileges (`Store::grant_application_role`). SQLite has no roles: there
//! the store deletes the rows itself.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The function's name and signature, as `GRANT` and `DROP` name it.
pub const FORGET_AUDIT_CHAIN: &str = "guildhall_forget_audit_chain(text)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if db.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let schema: String = db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT current_schema()",
            ))
            .await?
            .ok_or_else(|| DbErr::Custom("no current schema".into()))?
            .try_get_by_index(0)?;
        let schema = format!("\"{}\"", schema.replace('"', "\"\""));
        // The search path is fixed, so nobody can put their own `tenants` or `audit_log`
        // in front of the real ones for a function that runs with the owner's rights.
        db.execute_unprepared(&format!(
            "CREATE FUNCTION guildhall_forget_audit_chain(tenant text) RETURNS bigint
                 LANGUAGE plpgsql SECURITY DEFINER
                 SET search_path = {schema}, pg_temp
             AS $$
             DECLARE
                 removed bigint;
             BEGIN
                 IF tenant = '_platform' THEN
                     RAISE EXCEPTION 'the platform audit chain is never deleted';
                 END IF;
                 IF EXISTS (SELECT 1 FROM tenants WHERE id = tenant) THEN
                     RAISE EXCEPTION 'tenant % exists: its audit chain is deleted only with it',
                         tenant;
                 END IF;
                 DELETE FROM audit_log WHERE tenant_id = tenant;
                 GET DIAGNOSTICS removed = ROW_COUNT;
                 DELETE FROM audit_heads WHERE tenant_id = tenant;
                 RETURN removed;
             END
             $$;
             REVOKE ALL ON FUNCTION {FORGET_AUDIT_CHAIN} FROM PUBLIC;"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if db.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        db.execute_unprepared(&format!("DROP FUNCTION IF EXISTS {FORGET_AUDIT_CHAIN};"))
            .await?;
        Ok(())
    }
}
