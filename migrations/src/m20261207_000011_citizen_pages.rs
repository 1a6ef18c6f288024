//! What citizen-facing pages need: sessions for multi-page journeys, and each alliance's
//! and council's brand.
//!
//! - `citizen_sessions`: one row per citizen's session with one plugin for one council of
//!   one tenant. The key is the sha256 of the cookie's secret, so a copy of the table cannot
//!   be replayed as cookies. `data` is the plugin's values (a JSON object of base64
//!   strings) and `bytes` their size, checked against the cap. Tenant data: row-level
//!   security on PostgreSQL like every tenant table.
//! - `tenants` and `councils` gain a brand: a colour (`#rrggbb`), links to a contact page
//!   and an accessibility statement, and a logo (the digest of a `brand_logos` row). A
//!   council without its own takes the alliance's.
//! - `brand_logos`: logo images, once per digest. Logos are public (every page shows
//!   them) and hold no tenant data, like `component_blobs`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CitizenSessions {
    Table,
    IdHash,
    TenantId,
    CouncilId,
    Plugin,
    Csrf,
    Data,
    Bytes,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum BrandLogos {
    Table,
    Digest,
    ContentType,
    Bytes,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Councils {
    Table,
}

#[derive(DeriveIden)]
#[allow(clippy::enum_variant_names)] // the columns' names
enum BrandColumn {
    BrandColour,
    ContactUrl,
    AccessibilityUrl,
    LogoDigest,
}

/// The brand columns, added one statement each (SQLite alters one column at a time).
fn brand_columns() -> [ColumnDef; 4] {
    [
        ColumnDef::new(BrandColumn::BrandColour)
            .string_len(7)
            .null()
            .to_owned(),
        ColumnDef::new(BrandColumn::ContactUrl)
            .string_len(512)
            .null()
            .to_owned(),
        ColumnDef::new(BrandColumn::AccessibilityUrl)
            .string_len(512)
            .null()
            .to_owned(),
        ColumnDef::new(BrandColumn::LogoDigest)
            .string_len(64)
            .null()
            .to_owned(),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CitizenSessions::Table)
                    .col(
                        ColumnDef::new(CitizenSessions::IdHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(CitizenSessions::TenantId)
                            .string_len(48)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CitizenSessions::CouncilId)
                            .string_len(48)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CitizenSessions::Plugin)
                            .string_len(48)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CitizenSessions::Csrf)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(CitizenSessions::Data).text().not_null())
                    .col(
                        ColumnDef::new(CitizenSessions::Bytes)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CitizenSessions::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CitizenSessions::LastSeenAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CitizenSessions::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_citizen_sessions_tenant")
                            .from(CitizenSessions::Table, CitizenSessions::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_citizen_sessions_expiry")
                    .table(CitizenSessions::Table)
                    .col(CitizenSessions::TenantId)
                    .col(CitizenSessions::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BrandLogos::Table)
                    .col(
                        ColumnDef::new(BrandLogos::Digest)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(BrandLogos::ContentType)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(ColumnDef::new(BrandLogos::Bytes).blob().not_null())
                    .col(
                        ColumnDef::new(BrandLogos::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        for table in [Tenants::Table.into_iden(), Councils::Table.into_iden()] {
            for mut column in brand_columns() {
                manager
                    .alter_table(
                        Table::alter()
                            .table(table.clone())
                            .add_column(&mut column)
                            .to_owned(),
                    )
                    .await?;
            }
        }
        let db = manager.get_connection();
        if db.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared(
                "ALTER TABLE citizen_sessions ENABLE ROW LEVEL SECURITY;
                 ALTER TABLE citizen_sessions FORCE ROW LEVEL SECURITY;
                 CREATE POLICY tenant_isolation ON citizen_sessions
                     USING (tenant_id = current_setting('guildhall.tenant_id', true))
                     WITH CHECK (tenant_id = current_setting('guildhall.tenant_id', true));",
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [Tenants::Table.into_iden(), Councils::Table.into_iden()] {
            for column in [
                BrandColumn::BrandColour.into_iden(),
                BrandColumn::ContactUrl.into_iden(),
                BrandColumn::AccessibilityUrl.into_iden(),
                BrandColumn::LogoDigest.into_iden(),
            ] {
                manager
                    .alter_table(
                        Table::alter()
                            .table(table.clone())
                            .drop_column(column)
                            .to_owned(),
                    )
                    .await?;
            }
        }
        manager
            .drop_table(Table::drop().table(BrandLogos::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(CitizenSessions::Table).to_owned())
            .await
    }
}
