//! Plugin data: a key-value store per tenant and plugin, and the events plugins emit.

use guildhall_domain::{CouncilId, PluginName};
use sea_orm::sea_query::{Alias, Expr, Func, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::Serialize;
use time::OffsetDateTime;

use crate::entities::{kv_entries, plugin_events};
use crate::{Result, TenantScope, scoped};

/// Why a key-value write was refused.
#[derive(Debug, thiserror::Error)]
pub enum KvWriteError {
    /// Writing would take the plugin's data in this tenant over its quota.
    #[error("quota of {quota} bytes exceeded: {used} bytes used, {needed} more needed")]
    QuotaExceeded {
        /// The quota in bytes.
        quota: u64,
        /// Bytes used now.
        used: u64,
        /// Bytes the write would add.
        needed: u64,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crate::Error),
}

/// One plugin's key-value data in one tenant.
#[derive(Debug)]
pub struct Kv<'a> {
    db: &'a DatabaseConnection,
    tenant: &'a str,
    plugin: &'a str,
}

impl<'a> Kv<'a> {
    pub(crate) fn new(
        db: &'a DatabaseConnection,
        scope: &'a TenantScope,
        plugin: &'a PluginName,
    ) -> Self {
        Self {
            db,
            tenant: scope.tenant().as_str(),
            plugin: plugin.as_str(),
        }
    }

    fn scoped(&self) -> sea_orm::Condition {
        sea_orm::Condition::all()
            .add(kv_entries::Column::TenantId.eq(self.tenant))
            .add(kv_entries::Column::Plugin.eq(self.plugin))
    }

    /// The value under `key`, if any.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let txn = scoped::begin(self.db, self.tenant).await?;
        let row = kv_entries::Entity::find()
            .filter(self.scoped())
            .filter(kv_entries::Column::Key.eq(key.as_bytes().to_vec()))
            .one(&txn)
            .await?;
        txn.commit().await?;
        Ok(row.map(|row| row.value))
    }

    /// Stores `value` under `key` unless the plugin's data would exceed `quota` bytes
    /// (keys plus values) in this tenant.
    pub async fn set(&self, key: &str, value: &[u8], quota: u64) -> Result<(), KvWriteError> {
        let size = (key.len() + value.len()) as u64;
        let txn = scoped::begin_write(self.db, self.tenant).await?;
        self.lock_writers(&txn).await.map_err(crate::Error::from)?;
        let others: Option<i64> = kv_entries::Entity::find()
            .select_only()
            .column_as(sum_of_sizes(), "total")
            .filter(self.scoped())
            .filter(kv_entries::Column::Key.ne(key.as_bytes().to_vec()))
            .into_tuple::<Option<i64>>()
            .one(&txn)
            .await
            .map_err(crate::Error::from)?
            .flatten();
        let used = others.unwrap_or(0).max(0) as u64;
        if used + size > quota {
            return Err(KvWriteError::QuotaExceeded {
                quota,
                used,
                needed: size,
            });
        }
        let row = kv_entries::ActiveModel {
            tenant_id: Set(self.tenant.to_string()),
            plugin: Set(self.plugin.to_string()),
            key: Set(key.as_bytes().to_vec()),
            value: Set(value.to_vec()),
            size: Set(size as i64),
            updated_at: Set(OffsetDateTime::now_utc()),
        };
        kv_entries::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([
                    kv_entries::Column::TenantId,
                    kv_entries::Column::Plugin,
                    kv_entries::Column::Key,
                ])
                .update_columns([
                    kv_entries::Column::Value,
                    kv_entries::Column::Size,
                    kv_entries::Column::UpdatedAt,
                ])
                .to_owned(),
            )
            .exec(&txn)
            .await
            .map_err(crate::Error::from)?;
        txn.commit().await.map_err(crate::Error::from)?;
        Ok(())
    }

    /// Makes this transaction the only writer of the plugin's data in this tenant until it
    /// ends, so the quota check and the write see the same total.
    ///
    /// On PostgreSQL two writers could both read the total before either writes, and both
    /// pass; a lock on the (tenant, plugin) pair's name queues them instead. Under READ
    /// COMMITTED the sum read after the lock sees every write committed before it.
    async fn lock_writers(&self, txn: &sea_orm::DatabaseTransaction) -> Result<(), sea_orm::DbErr> {
        crate::claim::lock_name(
            txn,
            &format!("guildhall.kv:{}/{}", self.tenant, self.plugin),
        )
        .await
    }

    /// Removes `key`; returns whether it existed.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        let txn = scoped::begin_write(self.db, self.tenant).await?;
        let result = kv_entries::Entity::delete_many()
            .filter(self.scoped())
            .filter(kv_entries::Column::Key.eq(key.as_bytes().to_vec()))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(result.rows_affected > 0)
    }

    /// Up to `limit` keys starting with `prefix` and after `cursor`, in byte order, and the
    /// cursor for the next page when there may be more.
    pub async fn list_keys(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<String>, Option<String>)> {
        let mut query = kv_entries::Entity::find()
            .select_only()
            .column(kv_entries::Column::Key)
            .filter(self.scoped())
            .filter(kv_entries::Column::Key.gte(prefix.as_bytes().to_vec()));
        if let Some(end) = prefix_end(prefix.as_bytes()) {
            query = query.filter(kv_entries::Column::Key.lt(end));
        }
        if let Some(cursor) = cursor {
            query = query.filter(kv_entries::Column::Key.gt(cursor.as_bytes().to_vec()));
        }
        let txn = scoped::begin(self.db, self.tenant).await?;
        let rows: Vec<Vec<u8>> = query
            .order_by_asc(kv_entries::Column::Key)
            .limit(u64::from(limit) + 1)
            .into_tuple()
            .all(&txn)
            .await?;
        txn.commit().await?;
        let more = rows.len() > limit as usize;
        let keys: Vec<String> = rows
            .into_iter()
            .take(limit as usize)
            .map(|k| String::from_utf8_lossy(&k).into_owned())
            .collect();
        let next = if more { keys.last().cloned() } else { None };
        Ok((keys, next))
    }

    /// Bytes of keys and values the plugin stores in this tenant.
    pub async fn usage(&self) -> Result<u64> {
        let txn = scoped::begin(self.db, self.tenant).await?;
        let total: Option<i64> = kv_entries::Entity::find()
            .select_only()
            .column_as(sum_of_sizes(), "total")
            .filter(self.scoped())
            .into_tuple::<Option<i64>>()
            .one(&txn)
            .await?
            .flatten();
        txn.commit().await?;
        Ok(total.unwrap_or(0).max(0) as u64)
    }
}

/// `CAST(SUM(size) AS BIGINT)`: PostgreSQL sums a bigint column into a numeric.
fn sum_of_sizes() -> Expr {
    Func::cast_as(
        Func::sum(Expr::col(kv_entries::Column::Size)),
        Alias::new("BIGINT"),
    )
    .into()
}

/// The smallest byte string greater than every string starting with `prefix`, or `None`
/// when there is none (an empty prefix, or one made only of 0xFF bytes).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// An event a plugin emitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRecord {
    /// Time-ordered unique id.
    pub id: String,
    /// The council the request was for.
    pub council: String,
    /// The plugin that emitted it.
    pub plugin: String,
    /// The plugin's version.
    pub version: String,
    /// The event's name, e.g. `request.created`.
    pub name: String,
    /// JSON payload text.
    pub payload: String,
    /// The request during which it was emitted.
    pub request_id: String,
    /// When it was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A new event to record.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    /// The council the request was for.
    pub council: &'a CouncilId,
    /// The plugin that emitted it.
    pub plugin: &'a PluginName,
    /// The plugin's version.
    pub version: &'a str,
    /// The event's name.
    pub name: &'a str,
    /// JSON payload text, already checked to be JSON.
    pub payload: &'a str,
    /// The request id.
    pub request_id: &'a str,
    /// Who the plugin acted for: the caller's subject, or `anonymous`.
    pub actor: &'a str,
}

/// Plugin events of one tenant.
#[derive(Debug)]
pub struct Events<'a> {
    db: &'a DatabaseConnection,
    scope: &'a TenantScope,
}

impl<'a> Events<'a> {
    pub(crate) fn new(db: &'a DatabaseConnection, scope: &'a TenantScope) -> Self {
        Self { db, scope }
    }

    /// Records an event and appends it to the tenant's audit chain, in one transaction,
    /// and returns it.
    pub async fn record(&self, event: NewEvent<'_>) -> Result<EventRecord> {
        let tenant = self.scope.tenant().as_str();
        let txn = scoped::begin_write(self.db, tenant).await?;
        let row = plugin_events::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            tenant_id: Set(self.scope.tenant().as_str().to_string()),
            council_id: Set(event.council.as_str().to_string()),
            plugin: Set(event.plugin.as_str().to_string()),
            version: Set(event.version.to_string()),
            name: Set(event.name.to_string()),
            payload: Set(event.payload.to_string()),
            request_id: Set(event.request_id.to_string()),
            created_at: Set(OffsetDateTime::now_utc()),
        };
        let row = plugin_events::Entity::insert(row)
            .exec_with_returning(&txn)
            .await?;
        let object = format!("plugins/{}/events/{}", row.plugin, row.name);
        let payload: serde_json::Value =
            serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::Null);
        crate::audit::append_in(
            &txn,
            tenant,
            crate::NewAuditEntry {
                actor: event.actor,
                action: "plugin.event",
                object: &object,
                outcome: "recorded",
                request_id: &row.request_id,
                detail: serde_json::json!({
                    "council": row.council_id,
                    "version": row.version,
                    "payload": payload,
                }),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(to_event(row))
    }

    /// The newest events of one plugin in this tenant, newest first.
    pub async fn list(&self, plugin: &PluginName, limit: u64) -> Result<Vec<EventRecord>> {
        let txn = scoped::begin(self.db, self.scope.tenant().as_str()).await?;
        let rows = plugin_events::Entity::find()
            .filter(plugin_events::Column::TenantId.eq(self.scope.tenant().as_str()))
            .filter(plugin_events::Column::Plugin.eq(plugin.as_str()))
            .order_by_desc(plugin_events::Column::Id)
            .limit(limit)
            .all(&txn)
            .await?;
        txn.commit().await?;
        Ok(rows.into_iter().map(to_event).collect())
    }
}

fn to_event(row: plugin_events::Model) -> EventRecord {
    EventRecord {
        id: row.id,
        council: row.council_id,
        plugin: row.plugin,
        version: row.version,
        name: row.name,
        payload: row.payload,
        request_id: row.request_id,
        created_at: row.created_at,
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_ranges() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(b"\xff\xff"), None);
    }
}
