//! Each install's key-value usage as a counter (`kv_usage`), so a write checks the quota
//! against one row instead of summing the install's entries, backfilled from `kv_entries`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum KvUsage {
    Table,
    TenantId,
    Plugin,
    Bytes,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(KvUsage::Table)
                    .col(ColumnDef::new(KvUsage::TenantId).string_len(48).not_null())
                    .col(ColumnDef::new(KvUsage::Plugin).string_len(48).not_null())
                    // Bytes of keys and values the install stores: the sum of its entries'
                    // `size`, kept in step by every write in the write's own transaction.
                    .col(ColumnDef::new(KvUsage::Bytes).big_integer().not_null())
                    .primary_key(Index::create().col(KvUsage::TenantId).col(KvUsage::Plugin))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_kv_usage_tenant")
                            .from(KvUsage::Table, KvUsage::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let backfill = "INSERT INTO kv_usage (tenant_id, plugin, bytes)
             SELECT tenant_id, plugin, SUM(size) FROM kv_entries GROUP BY tenant_id, plugin";
        if db.get_database_backend() == DbBackend::Postgres {
            // `kv_entries` has row-level security forced, which hides every row from the
            // migrating owner (no tenant is set); the backfill reads all tenants, so the
            // owner steps outside the policy for this transaction's one statement.
            db.execute_unprepared(&format!(
                "ALTER TABLE kv_entries NO FORCE ROW LEVEL SECURITY;
                 {backfill};
                 ALTER TABLE kv_entries FORCE ROW LEVEL SECURITY;
                 ALTER TABLE kv_usage ENABLE ROW LEVEL SECURITY;
                 ALTER TABLE kv_usage FORCE ROW LEVEL SECURITY;
                 CREATE POLICY tenant_isolation ON kv_usage
                     USING (tenant_id = current_setting('guildhall.tenant_id', true))
                     WITH CHECK (tenant_id = current_setting('guildhall.tenant_id', true));"
            ))
            .await?;
        } else {
            db.execute_unprepared(backfill).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(KvUsage::Table).to_owned())
            .await
    }
}
