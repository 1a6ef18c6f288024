//! Identity and audit: API tokens, member bindings, casbin rules and the per-tenant
//! hash-chained audit log.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Tokens {
    Table,
    Id,
    TenantId,
    Name,
    Role,
    Council,
    Hash,
    CreatedBy,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Members {
    Table,
    TenantId,
    Subject,
    Roles,
    Council,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CasbinRules {
    Table,
    Id,
    Ptype,
    V0,
    V1,
    V2,
    V3,
    V4,
    V5,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    TenantId,
    Seq,
    At,
    Actor,
    Action,
    Object,
    Outcome,
    RequestId,
    Detail,
    PrevHash,
    Hash,
}

#[derive(DeriveIden)]
enum AuditHeads {
    Table,
    TenantId,
    Seq,
    Hash,
}

#[derive(DeriveIden)]
enum PlatformRevision {
    Table,
    Id,
    Revision,
}

fn tenant_fk(
    name: &str,
    table: impl IntoTableRef,
    column: impl IntoIden,
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
                    .table(Tokens::Table)
                    .col(
                        ColumnDef::new(Tokens::Id)
                            .string_len(32)
                            .not_null()
                            .primary_key(),
                    )
                    // NULL for the global roles (operator, publisher).
                    .col(ColumnDef::new(Tokens::TenantId).string_len(48).null())
                    .col(ColumnDef::new(Tokens::Name).string_len(100).not_null())
                    .col(ColumnDef::new(Tokens::Role).string_len(32).not_null())
                    .col(ColumnDef::new(Tokens::Council).string_len(48).null())
                    // SHA-256 of the whole token, hex; the token itself is never stored.
                    .col(ColumnDef::new(Tokens::Hash).string_len(64).not_null())
                    .col(ColumnDef::new(Tokens::CreatedBy).string_len(300).not_null())
                    .col(
                        ColumnDef::new(Tokens::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Tokens::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Tokens::RevokedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(&mut tenant_fk(
                        "fk_tokens_tenant",
                        Tokens::Table,
                        Tokens::TenantId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_tokens_tenant")
                    .table(Tokens::Table)
                    .col(Tokens::TenantId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Members::Table)
                    .col(ColumnDef::new(Members::TenantId).string_len(48).not_null())
                    .col(ColumnDef::new(Members::Subject).string_len(300).not_null())
                    // Comma-separated role names, sorted.
                    .col(ColumnDef::new(Members::Roles).string_len(200).not_null())
                    .col(ColumnDef::new(Members::Council).string_len(48).null())
                    .col(
                        ColumnDef::new(Members::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Members::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(Index::create().col(Members::TenantId).col(Members::Subject))
                    .foreign_key(&mut tenant_fk(
                        "fk_members_tenant",
                        Members::Table,
                        Members::TenantId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CasbinRules::Table)
                    .col(
                        ColumnDef::new(CasbinRules::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(CasbinRules::Ptype).string_len(12).not_null())
                    .col(
                        ColumnDef::new(CasbinRules::V0)
                            .string_len(300)
                            .not_null()
                            .default(""),
                    )
                    .col(
                        ColumnDef::new(CasbinRules::V1)
                            .string_len(300)
                            .not_null()
                            .default(""),
                    )
                    .col(
                        ColumnDef::new(CasbinRules::V2)
                            .string_len(300)
                            .not_null()
                            .default(""),
                    )
                    .col(
                        ColumnDef::new(CasbinRules::V3)
                            .string_len(300)
                            .not_null()
                            .default(""),
                    )
                    .col(
                        ColumnDef::new(CasbinRules::V4)
                            .string_len(300)
                            .not_null()
                            .default(""),
                    )
                    .col(
                        ColumnDef::new(CasbinRules::V5)
                            .string_len(300)
                            .not_null()
                            .default(""),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_casbin_rules")
                    .table(CasbinRules::Table)
                    .col(CasbinRules::Ptype)
                    .col(CasbinRules::V0)
                    .col(CasbinRules::V1)
                    .col(CasbinRules::V2)
                    .col(CasbinRules::V3)
                    .col(CasbinRules::V4)
                    .col(CasbinRules::V5)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    // A tenant id, or `_platform` for the platform's own chain. No foreign
                    // key: the record outlives what it is about.
                    .col(ColumnDef::new(AuditLog::TenantId).string_len(48).not_null())
                    .col(ColumnDef::new(AuditLog::Seq).big_integer().not_null())
                    // Kept as the exact text that was hashed.
                    .col(ColumnDef::new(AuditLog::At).string_len(40).not_null())
                    .col(ColumnDef::new(AuditLog::Actor).string_len(300).not_null())
                    .col(ColumnDef::new(AuditLog::Action).string_len(100).not_null())
                    .col(ColumnDef::new(AuditLog::Object).string_len(500).not_null())
                    .col(ColumnDef::new(AuditLog::Outcome).string_len(40).not_null())
                    .col(
                        ColumnDef::new(AuditLog::RequestId)
                            .string_len(100)
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuditLog::Detail).text().not_null())
                    .col(ColumnDef::new(AuditLog::PrevHash).string_len(64).not_null())
                    .col(ColumnDef::new(AuditLog::Hash).string_len(64).not_null())
                    .primary_key(Index::create().col(AuditLog::TenantId).col(AuditLog::Seq))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditHeads::Table)
                    .col(
                        ColumnDef::new(AuditHeads::TenantId)
                            .string_len(48)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AuditHeads::Seq).big_integer().not_null())
                    .col(ColumnDef::new(AuditHeads::Hash).string_len(64).not_null())
                    .to_owned(),
            )
            .await?;
        // Row 2 of the revision table counts access-control changes (bindings, tokens),
        // which every replica checks before each API request.
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(PlatformRevision::Table)
                    .columns([PlatformRevision::Id, PlatformRevision::Revision])
                    // `revision` is a bigint: bind an i64. Migration 000003 inserts with the
                    // same SQL text and an i64, and a connection that ran it has the
                    // statement prepared with a bigint parameter; an i32 bound to it is sent
                    // as four bytes ("insufficient data left in message").
                    .values_panic([2.into(), 0i64.into()])
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .exec_stmt(
                Query::delete()
                    .from_table(PlatformRevision::Table)
                    .and_where(Expr::col(PlatformRevision::Id).eq(2))
                    .to_owned(),
            )
            .await?;
        for table in [
            AuditHeads::Table.into_iden(),
            AuditLog::Table.into_iden(),
            CasbinRules::Table.into_iden(),
            Members::Table.into_iden(),
            Tokens::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
