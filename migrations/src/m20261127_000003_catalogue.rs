//! The shared catalogue (plugins, immutable versions, component blobs stored once per
//! digest), each tenant's installs, and a revision counter replicas poll to notice
//! install changes made by another replica.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ComponentBlobs {
    Table,
    Digest,
    Bytes,
    Size,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Plugins {
    Table,
    Name,
    Publisher,
    Description,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PluginVersions {
    Table,
    Plugin,
    Version,
    Digest,
    Manifest,
    Signature,
    SignedBy,
    Yanked,
    PublishedAt,
}

#[derive(DeriveIden)]
enum Installs {
    Table,
    TenantId,
    Plugin,
    Version,
    AllCouncils,
    Councils,
    Config,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PlatformRevision {
    Table,
    Id,
    Revision,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ComponentBlobs::Table)
                    .col(
                        ColumnDef::new(ComponentBlobs::Digest)
                            .string_len(71)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ComponentBlobs::Bytes).blob().not_null())
                    .col(
                        ColumnDef::new(ComponentBlobs::Size)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ComponentBlobs::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Plugins::Table)
                    .col(
                        ColumnDef::new(Plugins::Name)
                            .string_len(48)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Plugins::Publisher).string_len(48).not_null())
                    .col(ColumnDef::new(Plugins::Description).text().not_null())
                    .col(
                        ColumnDef::new(Plugins::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Plugins::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PluginVersions::Table)
                    .col(
                        ColumnDef::new(PluginVersions::Plugin)
                            .string_len(48)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PluginVersions::Version)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PluginVersions::Digest)
                            .string_len(71)
                            .not_null(),
                    )
                    .col(ColumnDef::new(PluginVersions::Manifest).text().not_null())
                    .col(
                        ColumnDef::new(PluginVersions::Signature)
                            .string_len(128)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(PluginVersions::SignedBy)
                            .string_len(64)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(PluginVersions::Yanked)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(PluginVersions::PublishedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(PluginVersions::Plugin)
                            .col(PluginVersions::Version),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_plugin_versions_plugin")
                            .from(PluginVersions::Table, PluginVersions::Plugin)
                            .to(Plugins::Table, Plugins::Name),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_plugin_versions_blob")
                            .from(PluginVersions::Table, PluginVersions::Digest)
                            .to(ComponentBlobs::Table, ComponentBlobs::Digest),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Installs::Table)
                    .col(ColumnDef::new(Installs::TenantId).string_len(48).not_null())
                    .col(ColumnDef::new(Installs::Plugin).string_len(48).not_null())
                    .col(ColumnDef::new(Installs::Version).string_len(64).not_null())
                    .col(ColumnDef::new(Installs::AllCouncils).boolean().not_null())
                    .col(ColumnDef::new(Installs::Councils).text().not_null())
                    .col(ColumnDef::new(Installs::Config).text().not_null())
                    .col(
                        ColumnDef::new(Installs::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Installs::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(Installs::TenantId)
                            .col(Installs::Plugin),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_installs_tenant")
                            .from(Installs::Table, Installs::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_installs_version")
                            .from_col(Installs::Plugin)
                            .from_col(Installs::Version)
                            .to_tbl(PluginVersions::Table)
                            .to_col(PluginVersions::Plugin)
                            .to_col(PluginVersions::Version),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PlatformRevision::Table)
                    .col(
                        ColumnDef::new(PlatformRevision::Id)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(PlatformRevision::Revision)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(PlatformRevision::Table)
                    .columns([PlatformRevision::Id, PlatformRevision::Revision])
                    .values_panic([1.into(), 0i64.into()])
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            PlatformRevision::Table.into_iden(),
            Installs::Table.into_iden(),
            PluginVersions::Table.into_iden(),
            Plugins::Table.into_iden(),
            ComponentBlobs::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
