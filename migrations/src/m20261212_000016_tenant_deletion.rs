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
//! Each chain deleted leaves a line in `forgotten_audit_chains` (tenant, entries, head hash,
//! when), which the server's role may only read on PostgreSQL: `guildhall audit verify`
//! reports them, so a chain that was deleted and begun again shows, even when the same
//! transaction re-created the tenant.
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
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("forgotten_audit_chains"))
                    .col(
                        ColumnDef::new(Alias::new("tenant_id"))
                            .string_len(48)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Alias::new("entries"))
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Alias::new("head_hash"))
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Alias::new("forgotten_at_ms"))
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
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
                 head text;
             BEGIN
                 IF tenant = '_platform' THEN
                     RAISE EXCEPTION 'the platform audit chain is never deleted';
                 END IF;
                 IF EXISTS (SELECT 1 FROM tenants WHERE id = tenant) THEN
                     RAISE EXCEPTION 'tenant % exists: its audit chain is deleted only with it',
                         tenant;
                 END IF;
                 SELECT hash INTO head FROM audit_heads WHERE tenant_id = tenant;
                 DELETE FROM audit_log WHERE tenant_id = tenant;
                 GET DIAGNOSTICS removed = ROW_COUNT;
                 DELETE FROM audit_heads WHERE tenant_id = tenant;
                 INSERT INTO forgotten_audit_chains
                     (tenant_id, entries, head_hash, forgotten_at_ms)
                     VALUES (tenant, removed, coalesce(head, ''),
                             (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
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
        if db.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared(&format!("DROP FUNCTION IF EXISTS {FORGET_AUDIT_CHAIN};"))
                .await?;
        }
        manager
            .drop_table(
                Table::drop()
                    .table(Alias::new("forgotten_audit_chains"))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
