//! Data protection: an event's payload can be erased (`plugin_events.erased_at_ms`; the
//! audit chain records only the hash of the payload with a random salt kept beside it,
//! `payload_salt`, from this migration on), and subject access and erasure requests are kept
//! (`subject_requests`, the identifiers only as hashes).

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
enum PluginEvents {
    Table,
    ErasedAtMs,
    PayloadSalt,
}

#[derive(DeriveIden)]
enum SubjectRequests {
    Table,
    Id,
    TenantId,
    Kind,
    Identifiers,
    Councils,
    State,
    Outcome,
    RequestedBy,
    RequestedAtMs,
    FinishedAtMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(PluginEvents::Table)
                    .add_column(
                        ColumnDef::new(PluginEvents::ErasedAtMs)
                            .big_integer()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        // Random, erased with the payload: once both are gone, the hash on the audit chain
        // cannot be used to confirm a guess of what the payload was.
        manager
            .alter_table(
                Table::alter()
                    .table(PluginEvents::Table)
                    .add_column(
                        ColumnDef::new(PluginEvents::PayloadSalt)
                            .string_len(32)
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SubjectRequests::Table)
                    .col(
                        ColumnDef::new(SubjectRequests::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(SubjectRequests::TenantId)
                            .string_len(48)
                            .not_null(),
                    )
                    // `access` or `erasure`.
                    .col(
                        ColumnDef::new(SubjectRequests::Kind)
                            .string_len(16)
                            .not_null(),
                    )
                    // A JSON object of identifier name to keyed hash; never the values.
                    .col(
                        ColumnDef::new(SubjectRequests::Identifiers)
                            .text()
                            .not_null(),
                    )
                    // A JSON array of council ids, or null for every council.
                    .col(ColumnDef::new(SubjectRequests::Councils).text().null())
                    // `running`, `completed` or `failed`.
                    .col(
                        ColumnDef::new(SubjectRequests::State)
                            .string_len(16)
                            .not_null(),
                    )
                    // JSON: per service and council, what was found or erased (counts by
                    // schema, never the records).
                    .col(ColumnDef::new(SubjectRequests::Outcome).text().null())
                    .col(
                        ColumnDef::new(SubjectRequests::RequestedBy)
                            .string_len(512)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SubjectRequests::RequestedAtMs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SubjectRequests::FinishedAtMs)
                            .big_integer()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_subject_requests_tenant")
                            .from(SubjectRequests::Table, SubjectRequests::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_subject_requests_tenant")
                    .table(SubjectRequests::Table)
                    .col(SubjectRequests::TenantId)
                    .col(SubjectRequests::Id)
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        if db.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared(
                "ALTER TABLE subject_requests ENABLE ROW LEVEL SECURITY;
                 ALTER TABLE subject_requests FORCE ROW LEVEL SECURITY;
                 CREATE POLICY tenant_isolation ON subject_requests
                     USING (tenant_id = current_setting('guildhall.tenant_id', true))
                     WITH CHECK (tenant_id = current_setting('guildhall.tenant_id', true));",
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SubjectRequests::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(PluginEvents::Table)
                    .drop_column(PluginEvents::ErasedAtMs)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(PluginEvents::Table)
                    .drop_column(PluginEvents::PayloadSalt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
