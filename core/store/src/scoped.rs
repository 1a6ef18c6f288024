//! Tenant transactions: the second wall on PostgreSQL.
//!
//! Every statement on a tenant table runs in a transaction that first sets
//! `guildhall.tenant_id` to the scope's tenant (`set_config(…, true)`: it ends with the
//! transaction). PostgreSQL's row-level security policies then hide and refuse every other
//! tenant's rows, even if a repository's own filter were wrong. SQLite has no such feature,
//! so there the setting is skipped.

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, SqliteTransactionMode,
    Statement, TransactionOptions, TransactionTrait,
};

use crate::Result;

/// Begins a read transaction that can see the rows of `tenant` only.
pub(crate) async fn begin(db: &DatabaseConnection, tenant: &str) -> Result<DatabaseTransaction> {
    let txn = db.begin().await?;
    set_tenant(&txn, tenant).await?;
    Ok(txn)
}

/// Begins a transaction that writes, seeing and writing the rows of `tenant` only.
pub(crate) async fn begin_write(
    db: &DatabaseConnection,
    tenant: &str,
) -> Result<DatabaseTransaction> {
    let txn = write(db).await?;
    set_tenant(&txn, tenant).await?;
    Ok(txn)
}

/// Begins a read transaction that can see one token's row, whatever its tenant: the
/// `token_lookup` policy shows the row whose id is the `guildhall.token_id` setting.
pub(crate) async fn begin_token_lookup(
    db: &DatabaseConnection,
    token_id: &str,
) -> Result<DatabaseTransaction> {
    let txn = db.begin().await?;
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT set_config('guildhall.token_id', $1, true)",
            [token_id.into()],
        ))
        .await?;
    }
    Ok(txn)
}

/// Begins a transaction that writes. On SQLite it takes the write lock at `BEGIN`
/// (`BEGIN IMMEDIATE`), so concurrent writers queue on the busy timeout; a deferred
/// transaction that reads first and writes later fails at once with "database is locked"
/// when another writer committed in between. PostgreSQL ignores the mode.
pub(crate) async fn write(db: &DatabaseConnection) -> Result<DatabaseTransaction> {
    Ok(db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?)
}

/// Switches an open transaction to `tenant` (operator code that writes several tenants in
/// one transaction, such as `tenants apply`).
pub(crate) async fn set_tenant<C: ConnectionTrait>(db: &C, tenant: &str) -> Result<()> {
    if db.get_database_backend() == DbBackend::Postgres {
        db.query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT set_config('guildhall.tenant_id', $1, true)",
            [tenant.into()],
        ))
        .await?;
    }
    Ok(())
}
