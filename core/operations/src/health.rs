//! Whether the platform can serve: its database answers and its schema is current. The
//! API's `/readyz` and the console's platform page ask the same question here.

use guildhall_store::{MigrationStatus, Store};

/// Why the platform is not ready to serve.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    /// The database does not answer.
    #[error("the database is unreachable: {0}")]
    Unreachable(guildhall_store::Error),
    /// The database answers but which migrations it has applied cannot be read.
    #[error("the database schema cannot be read: {0}")]
    SchemaUnreadable(guildhall_store::Error),
    /// Migrations this build knows are not applied yet.
    #[error("{} database migration(s) pending: {}", .0.pending.len(), .0.pending.join(", "))]
    Pending(MigrationStatus),
}

/// Checks the database answers and no migration is pending; returns which are applied
/// (and any newer ones a later build applied).
pub async fn readiness(store: &Store) -> Result<MigrationStatus, NotReady> {
    store.ping().await.map_err(NotReady::Unreachable)?;
    let status = store
        .migration_status()
        .await
        .map_err(NotReady::SchemaUnreadable)?;
    if status.pending.is_empty() {
        Ok(status)
    } else {
        Err(NotReady::Pending(status))
    }
}
