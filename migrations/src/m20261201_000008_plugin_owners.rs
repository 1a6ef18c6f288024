//! The crates.io owner model for the catalogue: who owns each plugin name, and the ed25519
//! public keys each identity registers to sign the versions it publishes, and the manifest
//! digest each version's signature covers.
//!
//! Plugins published before owners existed are given to the operator's pseudo-subject
//! `cli:operator`; an operator hands each to its real owners with
//! `PUT /api/v1/plugins/{plugin}/owners/{subject}`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Plugins {
    Table,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PluginVersions {
    Table,
    ManifestSha256,
}

#[derive(DeriveIden)]
enum PluginOwners {
    Table,
    Plugin,
    Subject,
    AddedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PublisherKeys {
    Table,
    Fingerprint,
    Subject,
    Name,
    PublicKey,
    CreatedAt,
}

/// The owner given to plugins that existed before this migration.
const LEGACY_OWNER: &str = "cli:operator";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PluginOwners::Table)
                    .col(
                        ColumnDef::new(PluginOwners::Plugin)
                            .string_len(48)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PluginOwners::Subject)
                            .string_len(512)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PluginOwners::AddedBy)
                            .string_len(512)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PluginOwners::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(PluginOwners::Plugin)
                            .col(PluginOwners::Subject),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_plugin_owners_plugin")
                            .from(PluginOwners::Table, PluginOwners::Plugin)
                            .to(Plugins::Table, Plugins::Name)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_plugin_owners_subject")
                    .table(PluginOwners::Table)
                    .col(PluginOwners::Subject)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PublisherKeys::Table)
                    .col(
                        ColumnDef::new(PublisherKeys::Fingerprint)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(PublisherKeys::Subject)
                            .string_len(512)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PublisherKeys::Name)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PublisherKeys::PublicKey)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PublisherKeys::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_publisher_keys_subject_name")
                    .table(PublisherKeys::Table)
                    .col(PublisherKeys::Subject)
                    .col(PublisherKeys::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // The manifest's digest, so anyone can recompute the signed statement later.
        manager
            .alter_table(
                Table::alter()
                    .table(PluginVersions::Table)
                    .add_column(
                        ColumnDef::new(PluginVersions::ManifestSha256)
                            .string_len(71)
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        // Every existing plugin gets the operator as its one owner, so no name is left
        // ownerless (an ownerless name would be claimable by anyone). The plugin's own
        // creation time is copied, so each backend keeps its own timestamp format.
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(PluginOwners::Table)
                    .columns([
                        PluginOwners::Plugin,
                        PluginOwners::Subject,
                        PluginOwners::AddedBy,
                        PluginOwners::CreatedAt,
                    ])
                    .select_from(
                        Query::select()
                            .column(Plugins::Name)
                            .expr(Expr::val(LEGACY_OWNER))
                            .expr(Expr::val("migration"))
                            .column(Plugins::CreatedAt)
                            .from(Plugins::Table)
                            .to_owned(),
                    )
                    .map_err(|e| DbErr::Migration(e.to_string()))?
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(PluginVersions::Table)
                    .drop_column(PluginVersions::ManifestSha256)
                    .to_owned(),
            )
            .await?;
        for table in [
            PublisherKeys::Table.into_iden(),
            PluginOwners::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
