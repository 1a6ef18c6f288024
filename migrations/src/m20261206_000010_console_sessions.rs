//! Console sessions and sign-ins in progress, kept in the database so that every replica
//! sees a sign-in, a sign-out and an expiry at once.
//!
//! - `console_sessions`: one row per signed-in browser. The key is the sha256 of the
//!   cookie's secret, so a copy of the table cannot be replayed as cookies. `token_id` is
//!   set for token sign-ins (the session ends when that token is revoked or expires),
//!   `issuer` for OpenID Connect sign-ins.
//! - `console_sign_ins`: an OpenID Connect sign-in between the redirect to the identity
//!   provider and its answer, keyed by the sha256 of its `state`, with the nonce and the
//!   PKCE verifier. A row is taken (deleted) by the one callback that uses it.
//!
//! Neither is tenant data: a session belongs to an identity, which may act in several
//! tenants, and every page still asks access control for each tenant it shows.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ConsoleSessions {
    Table,
    IdHash,
    Subject,
    Issuer,
    TokenId,
    Csrf,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum ConsoleSignIns {
    Table,
    StateHash,
    Issuer,
    Nonce,
    Verifier,
    ReturnTo,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ConsoleSessions::Table)
                    .col(
                        ColumnDef::new(ConsoleSessions::IdHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ConsoleSessions::Subject)
                            .string_len(512)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ConsoleSessions::Issuer)
                            .string_len(64)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(ConsoleSessions::TokenId)
                            .string_len(64)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(ConsoleSessions::Csrf)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ConsoleSessions::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ConsoleSessions::LastSeenAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ConsoleSessions::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_console_sessions_subject")
                    .table(ConsoleSessions::Table)
                    .col(ConsoleSessions::Subject)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_console_sessions_expires_at")
                    .table(ConsoleSessions::Table)
                    .col(ConsoleSessions::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ConsoleSignIns::Table)
                    .col(
                        ColumnDef::new(ConsoleSignIns::StateHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ConsoleSignIns::Issuer)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ConsoleSignIns::Nonce)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ConsoleSignIns::Verifier)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ConsoleSignIns::ReturnTo)
                            .string_len(512)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ConsoleSignIns::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ConsoleSignIns::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ConsoleSessions::Table).to_owned())
            .await?;
        Ok(())
    }
}
