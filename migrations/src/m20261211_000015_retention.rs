//! Retention: a key-value entry may carry a time to live (`kv_entries.expires_at_ms`), an
//! install may keep its data for less than its manifest's retention (`install_retention`,
//! under row-level security), and the retention job claims each of its runs once across
//! replicas (`maintenance_runs`, a platform table).

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
enum KvEntries {
    Table,
    TenantId,
    ExpiresAtMs,
}

#[derive(DeriveIden)]
enum InstallRetention {
    Table,
    TenantId,
    Plugin,
    KvDays,
    EventDays,
    SetBy,
    SetAtMs,
}

#[derive(DeriveIden)]
enum MaintenanceRuns {
    Table,
    Job,
    Slot,
    Runner,
    StartedAtMs,
    FinishedAtMs,
    Outcome,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(KvEntries::Table)
                    .add_column(ColumnDef::new(KvEntries::ExpiresAtMs).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_kv_entries_expiry")
                    .table(KvEntries::Table)
                    .col(KvEntries::TenantId)
                    .col(KvEntries::ExpiresAtMs)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(InstallRetention::Table)
                    .col(
                        ColumnDef::new(InstallRetention::TenantId)
                            .string_len(48)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(InstallRetention::Plugin)
                            .string_len(48)
                            .not_null(),
                    )
                    .col(ColumnDef::new(InstallRetention::KvDays).integer().null())
                    .col(ColumnDef::new(InstallRetention::EventDays).integer().null())
                    .col(
                        ColumnDef::new(InstallRetention::SetBy)
                            .string_len(512)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(InstallRetention::SetAtMs)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(InstallRetention::TenantId)
                            .col(InstallRetention::Plugin),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_install_retention_tenant")
                            .from(InstallRetention::Table, InstallRetention::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MaintenanceRuns::Table)
                    .col(
                        ColumnDef::new(MaintenanceRuns::Job)
                            .string_len(64)
                            .not_null(),
                    )
                    // The run's time slot: the start of its interval, in Unix seconds.
                    .col(
                        ColumnDef::new(MaintenanceRuns::Slot)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(MaintenanceRuns::Runner)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(MaintenanceRuns::StartedAtMs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(MaintenanceRuns::FinishedAtMs)
                            .big_integer()
                            .null(),
                    )
                    .col(ColumnDef::new(MaintenanceRuns::Outcome).text().null())
                    .primary_key(
                        Index::create()
                            .col(MaintenanceRuns::Job)
                            .col(MaintenanceRuns::Slot),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        if db.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared(
                "ALTER TABLE install_retention ENABLE ROW LEVEL SECURITY;
                 ALTER TABLE install_retention FORCE ROW LEVEL SECURITY;
                 CREATE POLICY tenant_isolation ON install_retention
                     USING (tenant_id = current_setting('guildhall.tenant_id', true))
                     WITH CHECK (tenant_id = current_setting('guildhall.tenant_id', true));",
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            MaintenanceRuns::Table.into_iden(),
            InstallRetention::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("ix_kv_entries_expiry")
                    .table(KvEntries::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(KvEntries::Table)
                    .drop_column(KvEntries::ExpiresAtMs)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
