//! Warm replicas: components compiled by one replica are kept for the others
//! (`compiled_artefacts`, keyed by digest and the engine's compatibility hash, each
//! authenticated with a key derived from the secrets key), and every change to a tenant's
//! installs, councils or settings is logged with the platform revision it committed at
//! (`tenant_revisions`, one row per revision naming the tenant changed), so a change to one
//! tenant's installs leaves every other tenant's cached installs valid.
//!
//! Both are platform tables: an artefact is the compiled form of a shared catalogue blob,
//! and a log row holds only a revision and a tenant's id (no foreign key: a deleted tenant's
//! rows stay until pruned). Revisions are consecutive and commit in order, so a replica that
//! finds fewer rows between two platform revisions than their difference knows a change went
//! unlogged (made by a release before this one, or pruned while it lagged) and drops every
//! cached install. The revision is the primary key, which the replicas' range reads and the
//! pruning of old rows use; `tenant_id` has an index of its own.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CompiledArtefacts {
    Table,
    Digest,
    Engine,
    Bytes,
    Mac,
    CreatedAtMs,
}

#[derive(DeriveIden)]
enum TenantRevisions {
    Table,
    TenantId,
    Revision,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CompiledArtefacts::Table)
                    .col(
                        ColumnDef::new(CompiledArtefacts::Digest)
                            .string_len(80)
                            .not_null(),
                    )
                    // The engine's `precompile_compatibility_hash`, as hex.
                    .col(
                        ColumnDef::new(CompiledArtefacts::Engine)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(CompiledArtefacts::Bytes).blob().not_null())
                    // HMAC-SHA256 over digest, engine and bytes, as hex.
                    .col(
                        ColumnDef::new(CompiledArtefacts::Mac)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CompiledArtefacts::CreatedAtMs)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(CompiledArtefacts::Digest)
                            .col(CompiledArtefacts::Engine),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TenantRevisions::Table)
                    .col(
                        ColumnDef::new(TenantRevisions::Revision)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(TenantRevisions::TenantId)
                            .string_len(48)
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_tenant_revisions_tenant_id")
                    .table(TenantRevisions::Table)
                    .col(TenantRevisions::TenantId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            TenantRevisions::Table.into_iden(),
            CompiledArtefacts::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
