//! Plugin data: each plugin's key-value entries and the events plugins emit, per tenant.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum KvEntries {
    Table,
    TenantId,
    Plugin,
    Key,
    Value,
    Size,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PluginEvents {
    Table,
    Id,
    TenantId,
    CouncilId,
    Plugin,
    Version,
    Name,
    Payload,
    RequestId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(KvEntries::Table)
                    .col(
                        ColumnDef::new(KvEntries::TenantId)
                            .string_len(48)
                            .not_null(),
                    )
                    .col(ColumnDef::new(KvEntries::Plugin).string_len(48).not_null())
                    // Keys are stored as bytes so that ordering and prefix ranges are
                    // byte-wise on every database, whatever its collation.
                    .col(ColumnDef::new(KvEntries::Key).var_binary(512).not_null())
                    .col(ColumnDef::new(KvEntries::Value).blob().not_null())
                    .col(ColumnDef::new(KvEntries::Size).big_integer().not_null())
                    .col(
                        ColumnDef::new(KvEntries::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(KvEntries::TenantId)
                            .col(KvEntries::Plugin)
                            .col(KvEntries::Key),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_kv_entries_tenant")
                            .from(KvEntries::Table, KvEntries::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PluginEvents::Table)
                    .col(
                        ColumnDef::new(PluginEvents::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(PluginEvents::TenantId)
                            .string_len(48)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PluginEvents::CouncilId)
                            .string_len(48)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PluginEvents::Plugin)
                            .string_len(48)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PluginEvents::Version)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(PluginEvents::Name).string_len(64).not_null())
                    .col(ColumnDef::new(PluginEvents::Payload).text().not_null())
                    .col(
                        ColumnDef::new(PluginEvents::RequestId)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PluginEvents::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_plugin_events_tenant")
                            .from(PluginEvents::Table, PluginEvents::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_plugin_events_tenant_plugin_time")
                    .table(PluginEvents::Table)
                    .col(PluginEvents::TenantId)
                    .col(PluginEvents::Plugin)
                    .col(PluginEvents::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PluginEvents::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(KvEntries::Table).to_owned())
            .await
    }
}
