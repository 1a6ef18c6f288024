//! Calls by plugin version, latency bucket and day, across tenants: the catalogue's
//! reliability figures.

use sea_orm::{ConnectionTrait, DatabaseConnection};
use time::OffsetDateTime;

use guildhall_domain::metering::{CallsDelta, day_of};

use super::{claim_batch, stmt};
use crate::{Result, scoped};

/// Cross-tenant counts by plugin and version, written by the meter's flush.
#[derive(Debug)]
pub struct PlatformUsage<'a> {
    db: &'a DatabaseConnection,
}

impl<'a> PlatformUsage<'a> {
    pub(crate) fn new(db: &'a DatabaseConnection) -> Self {
        Self { db }
    }

    /// Adds a batch of call counts once; `false` when the batch was applied before.
    pub async fn add(&self, batch: &str, deltas: &[CallsDelta]) -> Result<bool> {
        let backend = self.db.get_database_backend();
        let txn = scoped::write(self.db).await?;
        if !claim_batch(&txn, &format!("{batch}:_platform")).await? {
            txn.rollback().await?;
            return Ok(false);
        }
        for d in deltas {
            txn.execute_raw(stmt(
                backend,
                "INSERT INTO plugin_calls_daily (plugin, version, day, bucket, calls, errors) \
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (plugin, version, day, bucket) \
                 DO UPDATE SET calls = plugin_calls_daily.calls + excluded.calls, \
                 errors = plugin_calls_daily.errors + excluded.errors",
                vec![
                    d.plugin.clone().into(),
                    d.version.clone().into(),
                    d.day.clone().into(),
                    d.bucket.into(),
                    d.calls.into(),
                    d.errors.into(),
                ],
            ))
            .await?;
        }
        // Batch ids only guard against retries; a week is far longer than any retry.
        let cutoff = day_of(OffsetDateTime::now_utc() - time::Duration::days(7));
        txn.execute_raw(stmt(
            backend,
            "DELETE FROM usage_batches WHERE applied_day < ?",
            vec![cutoff.into()],
        ))
        .await?;
        txn.commit().await?;
        Ok(true)
    }
}
