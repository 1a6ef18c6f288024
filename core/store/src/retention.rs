//! Retention: removing plugins' data past its time, and the claims that run the retention
//! job once across replicas.
//!
//! Each removal is one tenant-scoped write transaction that deletes the rows and moves the
//! install's usage counter by the bytes they held, so the quota stays exact. A writer that
//! renews an entry at the same moment wins or loses as a whole: PostgreSQL re-checks the
//! `DELETE`'s condition on a row a concurrent writer changed, and SQLite's write lock
//! serialises the two.

use std::collections::BTreeMap;

use guildhall_domain::PluginName;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, Statement,
};
use serde::Serialize;
use time::OffsetDateTime;

use crate::millis::{from_ms, now_ms};
use crate::plugin_data::placeholders;
use crate::{Result, TenantScope, scoped};

/// What one removal took away.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// Key-value entries, by plugin.
    pub kv_entries: BTreeMap<String, u64>,
    /// Events, by plugin.
    pub events: BTreeMap<String, u64>,
}

impl Removed {
    /// Whether nothing was removed.
    pub fn is_empty(&self) -> bool {
        self.kv_entries.values().all(|n| *n == 0) && self.events.values().all(|n| *n == 0)
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: Removed) {
        for (plugin, n) in other.kv_entries {
            *self.kv_entries.entry(plugin).or_default() += n;
        }
        for (plugin, n) in other.events {
            *self.events.entry(plugin).or_default() += n;
        }
    }
}

/// An install's own retention, shorter than its manifest's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct InstallRetention {
    /// Days the install keeps key-value entries after their last write.
    pub kv_days: Option<u32>,
    /// Days the install keeps events.
    pub event_days: Option<u32>,
    /// Who set it.
    pub set_by: String,
    /// When, RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub set_at: OffsetDateTime,
}

/// One tenant's retention: installs' settings and the removal of data past its time.
#[derive(Debug)]
pub struct Retention<'a> {
    db: &'a DatabaseConnection,
    scope: &'a TenantScope,
}

/// Takes `bytes` off an install's usage counter.
async fn reduce_usage(
    txn: &DatabaseTransaction,
    tenant: &str,
    plugin: &str,
    bytes: i64,
) -> std::result::Result<(), sea_orm::DbErr> {
    if bytes == 0 {
        return Ok(());
    }
    let backend = txn.get_database_backend();
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        placeholders(
            backend,
            "UPDATE kv_usage SET bytes = bytes - ? WHERE tenant_id = ? AND plugin = ?",
        ),
        [bytes.into(), tenant.into(), plugin.into()],
    ))
    .await?;
    Ok(())
}

impl<'a> Retention<'a> {
    pub(crate) fn new(db: &'a DatabaseConnection, scope: &'a TenantScope) -> Self {
        Self { db, scope }
    }

    fn tenant(&self) -> &str {
        self.scope.tenant().as_str()
    }

    /// Removes every key-value entry of the tenant whose time to live has run out.
    pub async fn remove_expired_kv(&self) -> Result<Removed> {
        let txn = scoped::begin_write(self.db, self.tenant()).await?;
        let backend = txn.get_database_backend();
        let rows = txn
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                placeholders(
                    backend,
                    "DELETE FROM kv_entries WHERE tenant_id = ? AND expires_at_ms IS NOT NULL \
                     AND expires_at_ms <= ? RETURNING plugin, size",
                ),
                [self.tenant().into(), now_ms().into()],
            ))
            .await?;
        let mut by_plugin: BTreeMap<String, (u64, i64)> = BTreeMap::new();
        for row in rows {
            let plugin: String = row.try_get("", "plugin")?;
            let size: i64 = row.try_get("", "size")?;
            let entry = by_plugin.entry(plugin).or_default();
            entry.0 += 1;
            entry.1 += size;
        }
        for (plugin, (_, bytes)) in &by_plugin {
            reduce_usage(&txn, self.tenant(), plugin, *bytes).await?;
        }
        txn.commit().await?;
        Ok(Removed {
            kv_entries: by_plugin.into_iter().map(|(p, (n, _))| (p, n)).collect(),
            events: BTreeMap::new(),
        })
    }

    /// Removes `plugin`'s key-value entries last written before `kv_before` and its events
    /// recorded before `events_before`.
    pub async fn remove_older(
        &self,
        plugin: &PluginName,
        kv_before: Option<OffsetDateTime>,
        events_before: Option<OffsetDateTime>,
    ) -> Result<Removed> {
        let mut removed = Removed::default();
        let txn = scoped::begin_write(self.db, self.tenant()).await?;
        let backend = txn.get_database_backend();
        if let Some(before) = kv_before {
            let rows = txn
                .query_all_raw(Statement::from_sql_and_values(
                    backend,
                    placeholders(
                        backend,
                        "DELETE FROM kv_entries WHERE tenant_id = ? AND plugin = ? \
                         AND updated_at < ? RETURNING size",
                    ),
                    [self.tenant().into(), plugin.as_str().into(), before.into()],
                ))
                .await?;
            let mut bytes = 0;
            for row in &rows {
                bytes += row.try_get::<i64>("", "size")?;
            }
            reduce_usage(&txn, self.tenant(), plugin.as_str(), bytes).await?;
            removed
                .kv_entries
                .insert(plugin.to_string(), rows.len() as u64);
        }
        if let Some(before) = events_before {
            let deleted = crate::entities::plugin_events::Entity::delete_many()
                .filter(crate::entities::plugin_events::Column::TenantId.eq(self.tenant()))
                .filter(crate::entities::plugin_events::Column::Plugin.eq(plugin.as_str()))
                .filter(crate::entities::plugin_events::Column::CreatedAt.lt(before))
                .exec(&txn)
                .await?;
            removed
                .events
                .insert(plugin.to_string(), deleted.rows_affected);
        }
        txn.commit().await?;
        Ok(removed)
    }

    /// The install's own retention, if its administrators set one.
    pub async fn get(&self, plugin: &PluginName) -> Result<Option<InstallRetention>> {
        let txn = scoped::begin(self.db, self.tenant()).await?;
        let backend = txn.get_database_backend();
        let row = txn
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                placeholders(
                    backend,
                    "SELECT kv_days, event_days, set_by, set_at_ms FROM install_retention \
                     WHERE tenant_id = ? AND plugin = ?",
                ),
                [self.tenant().into(), plugin.as_str().into()],
            ))
            .await?;
        txn.commit().await?;
        let Some(row) = row else { return Ok(None) };
        let days = |column: &str| -> std::result::Result<Option<u32>, sea_orm::DbErr> {
            Ok(row
                .try_get::<Option<i32>>("", column)?
                .map(|d| d.max(0) as u32))
        };
        let set_at_ms: i64 = row.try_get("", "set_at_ms")?;
        Ok(Some(InstallRetention {
            kv_days: days("kv_days")?,
            event_days: days("event_days")?,
            set_by: row.try_get("", "set_by")?,
            set_at: from_ms(set_at_ms),
        }))
    }

    /// Sets the install's own retention (both `None`: removes it); returns whether one was
    /// set before.
    pub async fn put(
        &self,
        plugin: &PluginName,
        kv_days: Option<u32>,
        event_days: Option<u32>,
        set_by: &str,
    ) -> Result<bool> {
        let txn = scoped::begin_write(self.db, self.tenant()).await?;
        // Concurrent puts queue here, so exactly one of them finds nothing set before.
        crate::claim::lock_tenant(&txn, self.scope.tenant()).await?;
        let backend = txn.get_database_backend();
        let existed = txn
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                placeholders(
                    backend,
                    "SELECT 1 AS one FROM install_retention WHERE tenant_id = ? AND plugin = ?",
                ),
                [self.tenant().into(), plugin.as_str().into()],
            ))
            .await?
            .is_some();
        if kv_days.is_none() && event_days.is_none() {
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                placeholders(
                    backend,
                    "DELETE FROM install_retention WHERE tenant_id = ? AND plugin = ?",
                ),
                [self.tenant().into(), plugin.as_str().into()],
            ))
            .await?;
        } else {
            let days = |d: Option<u32>| d.map(|d| i32::try_from(d).unwrap_or(i32::MAX));
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                placeholders(
                    backend,
                    "INSERT INTO install_retention \
                     (tenant_id, plugin, kv_days, event_days, set_by, set_at_ms) \
                     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, plugin) DO UPDATE SET \
                     kv_days = excluded.kv_days, event_days = excluded.event_days, \
                     set_by = excluded.set_by, set_at_ms = excluded.set_at_ms",
                ),
                [
                    self.tenant().into(),
                    plugin.as_str().into(),
                    days(kv_days).into(),
                    days(event_days).into(),
                    set_by.into(),
                    now_ms().into(),
                ],
            ))
            .await?;
        }
        txn.commit().await?;
        Ok(existed)
    }
}

/// Claims of maintenance jobs' runs, shared by every replica (`maintenance_runs`).
#[derive(Debug)]
pub struct MaintenanceRuns<'a> {
    db: &'a DatabaseConnection,
}

impl<'a> MaintenanceRuns<'a> {
    pub(crate) fn new(db: &'a DatabaseConnection) -> Self {
        Self { db }
    }

    /// Claims the run of `job` for time slot `slot` for `runner`: `true` for the one
    /// replica whose insert made the row, `false` for every other.
    pub async fn claim(&self, job: &str, slot: i64, runner: &str) -> Result<bool> {
        use crate::entities::maintenance_runs as runs;
        let inserted = runs::Entity::insert(runs::ActiveModel {
            job: Set(job.to_string()),
            slot: Set(slot),
            runner: Set(runner.to_string()),
            started_at_ms: Set(now_ms()),
            finished_at_ms: Set(None),
            outcome: Set(None),
        })
        .on_conflict_do_nothing()
        .exec_without_returning(self.db)
        .await?;
        Ok(matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0))
    }

    /// Records how a claimed run ended.
    pub async fn finish(&self, job: &str, slot: i64, outcome: &str) -> Result<()> {
        use crate::entities::maintenance_runs as runs;
        runs::Entity::update_many()
            .col_expr(runs::Column::FinishedAtMs, now_ms().into())
            .col_expr(runs::Column::Outcome, outcome.into())
            .filter(runs::Column::Job.eq(job))
            .filter(runs::Column::Slot.eq(slot))
            .exec(self.db)
            .await?;
        Ok(())
    }
}
