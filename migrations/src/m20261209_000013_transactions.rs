//! What transactional services need: install secrets (`install_secrets`, encrypted), each
//! council's overrides of an install's settings (`council_settings`) and the runs of plugins'
//! schedules (`schedule_runs`, one row per due time, which is also the runners' lease).

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
enum InstallSecrets {
    Table,
    TenantId,
    Plugin,
    Council,
    Name,
    KeyId,
    Nonce,
    Ciphertext,
    SetBy,
    SetAtMs,
}

#[derive(DeriveIden)]
enum CouncilSettings {
    Table,
    TenantId,
    Plugin,
    Council,
    Config,
    UpdatedAtMs,
}

#[derive(DeriveIden)]
enum ScheduleRuns {
    Table,
    Id,
    TenantId,
    Plugin,
    Council,
    Schedule,
    Slot,
    Trigger,
    DueAtMs,
    State,
    Outcome,
    Runner,
    Attempts,
    LeaseUntilMs,
    StartedAtMs,
    FinishedAtMs,
}

fn tenant_fk(
    table: impl IntoIden + 'static,
    name: &str,
    column: impl IntoIden + 'static,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, column)
        .to(Tenants::Table, Tenants::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(InstallSecrets::Table)
                    .col(
                        ColumnDef::new(InstallSecrets::TenantId)
                            .string_len(48)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(InstallSecrets::Plugin)
                            .string_len(48)
                            .not_null(),
                    )
                    // A council's id, or `*` for the value every council without its own gets.
                    .col(
                        ColumnDef::new(InstallSecrets::Council)
                            .string_len(48)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(InstallSecrets::Name)
                            .string_len(64)
                            .not_null(),
                    )
                    // Which key encrypted it (the first 16 hex digits of the key's SHA-256).
                    .col(
                        ColumnDef::new(InstallSecrets::KeyId)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(ColumnDef::new(InstallSecrets::Nonce).binary().not_null())
                    .col(
                        ColumnDef::new(InstallSecrets::Ciphertext)
                            .binary()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(InstallSecrets::SetBy)
                            .string_len(512)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(InstallSecrets::SetAtMs)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(InstallSecrets::TenantId)
                            .col(InstallSecrets::Plugin)
                            .col(InstallSecrets::Council)
                            .col(InstallSecrets::Name),
                    )
                    .foreign_key(&mut tenant_fk(
                        InstallSecrets::Table,
                        "fk_install_secrets_tenant",
                        InstallSecrets::TenantId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CouncilSettings::Table)
                    .col(
                        ColumnDef::new(CouncilSettings::TenantId)
                            .string_len(48)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CouncilSettings::Plugin)
                            .string_len(48)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CouncilSettings::Council)
                            .string_len(48)
                            .not_null(),
                    )
                    // A JSON object: the settings this council gives differently.
                    .col(ColumnDef::new(CouncilSettings::Config).text().not_null())
                    .col(
                        ColumnDef::new(CouncilSettings::UpdatedAtMs)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(CouncilSettings::TenantId)
                            .col(CouncilSettings::Plugin)
                            .col(CouncilSettings::Council),
                    )
                    .foreign_key(&mut tenant_fk(
                        CouncilSettings::Table,
                        "fk_council_settings_tenant",
                        CouncilSettings::TenantId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ScheduleRuns::Table)
                    .col(
                        ColumnDef::new(ScheduleRuns::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ScheduleRuns::TenantId)
                            .string_len(48)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ScheduleRuns::Plugin)
                            .string_len(48)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ScheduleRuns::Council)
                            .string_len(48)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ScheduleRuns::Schedule)
                            .string_len(64)
                            .not_null(),
                    )
                    // `due:<unix ms>` for a due time, `now:<run id>` for a run asked for.
                    .col(ColumnDef::new(ScheduleRuns::Slot).string_len(64).not_null())
                    .col(
                        ColumnDef::new(ScheduleRuns::Trigger)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ScheduleRuns::DueAtMs)
                            .big_integer()
                            .not_null(),
                    )
                    // `running`, `ok` or `failed`.
                    .col(
                        ColumnDef::new(ScheduleRuns::State)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(ColumnDef::new(ScheduleRuns::Outcome).text().null())
                    .col(
                        ColumnDef::new(ScheduleRuns::Runner)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(ScheduleRuns::Attempts).integer().not_null())
                    .col(
                        ColumnDef::new(ScheduleRuns::LeaseUntilMs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ScheduleRuns::StartedAtMs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ScheduleRuns::FinishedAtMs)
                            .big_integer()
                            .null(),
                    )
                    .foreign_key(&mut tenant_fk(
                        ScheduleRuns::Table,
                        "fk_schedule_runs_tenant",
                        ScheduleRuns::TenantId,
                    ))
                    .to_owned(),
            )
            .await?;
        // One row per due time of a schedule, council and install: the claim of its runner.
        manager
            .create_index(
                Index::create()
                    .name("ux_schedule_runs_slot")
                    .table(ScheduleRuns::Table)
                    .col(ScheduleRuns::TenantId)
                    .col(ScheduleRuns::Plugin)
                    .col(ScheduleRuns::Council)
                    .col(ScheduleRuns::Schedule)
                    .col(ScheduleRuns::Slot)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_schedule_runs_recent")
                    .table(ScheduleRuns::Table)
                    .col(ScheduleRuns::TenantId)
                    .col(ScheduleRuns::Plugin)
                    .col(ScheduleRuns::StartedAtMs)
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        if db.get_database_backend() == DbBackend::Postgres {
            for table in ["install_secrets", "council_settings", "schedule_runs"] {
                db.execute_unprepared(&format!(
                    "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
                     ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
                     CREATE POLICY tenant_isolation ON {table}
                         USING (tenant_id = current_setting('guildhall.tenant_id', true))
                         WITH CHECK (tenant_id = current_setting('guildhall.tenant_id', true));"
                ))
                .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ScheduleRuns::Table.into_iden(),
            CouncilSettings::Table.into_iden(),
            InstallSecrets::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
