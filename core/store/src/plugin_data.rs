//! Plugin data: a key-value store per tenant and plugin, and the events plugins emit.

use guildhall_domain::{CouncilId, PluginName};
use sea_orm::sea_query::{Alias, Expr, Func};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement, TryInsertResult,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::entities::{kv_entries, plugin_events};
use crate::millis::now_ms;
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
    /// An increment found a value that is not the decimal text of an `i64`, or the sum
    /// would leave the `i64` range.
    #[error("not a number: {0}")]
    NotANumber(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crate::Error),
}

impl From<sea_orm::DbErr> for KvWriteError {
    fn from(e: sea_orm::DbErr) -> Self {
        KvWriteError::Store(e.into())
    }
}

/// One plugin's key-value data in one tenant.
///
/// Every write runs in one tenant-scoped write transaction that holds the entry's row from
/// the moment it reads it (`FOR UPDATE` on PostgreSQL; SQLite's write transaction holds the
/// database), claims an absent key with `INSERT … ON CONFLICT DO NOTHING`, and then moves the
/// install's usage counter (`kv_usage`) by the size it added or removed in one conditional
/// upsert that refuses to pass the quota. The entry is always locked before the counter, so
/// writers of one install queue only on the counter's row, and only from their counter
/// update to their commit; nothing sums the install's entries.
#[derive(Debug)]
pub struct Kv<'a> {
    db: &'a DatabaseConnection,
    tenant: &'a str,
    plugin: &'a str,
}

/// What a write does to the entry's time to live.
#[derive(Debug, Clone, Copy)]
enum Expiry {
    /// None: the entry stays until deleted (`set`).
    Clear,
    /// Until this instant, in Unix milliseconds (`set_with_ttl`).
    At(i64),
    /// As it was: a live entry keeps its time to live, a new one has none (`increment`,
    /// `compare_and_swap`).
    Keep,
}

/// The longest time to live: ten years.
pub const MAX_TTL: std::time::Duration = std::time::Duration::from_secs(10 * 365 * 86_400);

/// Entries that have not expired at `now` (Unix milliseconds).
fn live_at(now: i64) -> sea_orm::Condition {
    sea_orm::Condition::any()
        .add(kv_entries::Column::ExpiresAtMs.is_null())
        .add(kv_entries::Column::ExpiresAtMs.gt(now))
}

/// What a write of one key does, given the value it holds now.
enum Change {
    /// Store these bytes.
    Put(Vec<u8>),
    /// Leave the key as it is.
    Keep,
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

    fn entry(&self, key: &str) -> sea_orm::Condition {
        self.scoped()
            .add(kv_entries::Column::Key.eq(key.as_bytes().to_vec()))
    }

    /// The value under `key`, if any (an expired entry is absent).
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let txn = scoped::begin(self.db, self.tenant).await?;
        let row = kv_entries::Entity::find()
            .filter(self.entry(key))
            .filter(live_at(now_ms()))
            .one(&txn)
            .await?;
        txn.commit().await?;
        Ok(row.map(|row| row.value))
    }

    /// Stores `value` under `key` unless the plugin's data would exceed `quota` bytes
    /// (keys plus values) in this tenant.
    pub async fn set(&self, key: &str, value: &[u8], quota: u64) -> Result<(), KvWriteError> {
        self.write(key, quota, Expiry::Clear, |_| {
            Ok(Change::Put(value.to_vec()))
        })
        .await
        .map(drop)
    }

    /// Stores `value` under `key` until `ttl` from now (at most [`MAX_TTL`]), with the
    /// quota checked as for [`Kv::set`]. After that the key reads as absent, and the
    /// retention job removes it.
    pub async fn set_with_ttl(
        &self,
        key: &str,
        value: &[u8],
        ttl: std::time::Duration,
        quota: u64,
    ) -> Result<(), KvWriteError> {
        let ttl_ms = ttl.min(MAX_TTL).as_millis() as i64;
        let until = now_ms().saturating_add(ttl_ms);
        self.write(key, quota, Expiry::At(until), |_| {
            Ok(Change::Put(value.to_vec()))
        })
        .await
        .map(drop)
    }

    /// Stores `value` under `key` only if the key is absent; `true` when it stored it.
    pub async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        quota: u64,
    ) -> Result<bool, KvWriteError> {
        self.compare_and_swap(key, None, value, quota).await
    }

    /// Stores `new` under `key` only if the key holds exactly `old` now (`None`: only if it
    /// is absent); `true` when it stored it.
    pub async fn compare_and_swap(
        &self,
        key: &str,
        old: Option<&[u8]>,
        new: &[u8],
        quota: u64,
    ) -> Result<bool, KvWriteError> {
        let written = self
            .write(key, quota, Expiry::Keep, |current| {
                Ok(if current == old {
                    Change::Put(new.to_vec())
                } else {
                    Change::Keep
                })
            })
            .await?;
        Ok(written.is_some())
    }

    /// Adds `delta` to the number stored under `key` and returns the sum. A missing key
    /// counts as 0. Numbers are stored as the decimal ASCII text of an `i64` (`-12`, `0`,
    /// `42`; no sign for positive numbers, no spaces); any other value, or a sum outside
    /// the `i64` range, is refused with [`KvWriteError::NotANumber`] and nothing changes.
    pub async fn increment(&self, key: &str, delta: i64, quota: u64) -> Result<i64, KvWriteError> {
        let written = self
            .write(key, quota, Expiry::Keep, |current| {
                let now = match current {
                    None => 0,
                    Some(bytes) => parse_number(bytes)?,
                };
                let sum = now.checked_add(delta).ok_or_else(|| {
                    KvWriteError::NotANumber(format!("{now} + {delta} is outside the i64 range"))
                })?;
                Ok(Change::Put(sum.to_string().into_bytes()))
            })
            .await?
            .expect("an increment always writes");
        Ok(parse_number(&written).expect("the sum was just written"))
    }

    /// One write of `key` in its own transaction: `change` sees the value held now (with the
    /// row held, so no other writer changes it in between) and says what to store. Returns
    /// what was stored, or `None` when `change` kept the key as it was.
    async fn write(
        &self,
        key: &str,
        quota: u64,
        expiry: Expiry,
        change: impl Fn(Option<&[u8]>) -> Result<Change, KvWriteError>,
    ) -> Result<Option<Vec<u8>>, KvWriteError> {
        let txn = scoped::begin_write(self.db, self.tenant).await?;
        let (value, added) = loop {
            let held = kv_entries::Entity::find()
                .select_only()
                .column(kv_entries::Column::Value)
                .column(kv_entries::Column::Size)
                .column(kv_entries::Column::ExpiresAtMs)
                .filter(self.entry(key))
                .lock_exclusive()
                .into_tuple::<(Vec<u8>, i64, Option<i64>)>()
                .one(&txn)
                .await?;
            // An expired entry is absent to the change; its row is reused.
            let now_ms = now_ms();
            let live = held
                .as_ref()
                .filter(|(_, _, expires)| expires.is_none_or(|at| at > now_ms));
            let Change::Put(value) = change(live.map(|(v, _, _)| v.as_slice()))? else {
                txn.commit().await.map_err(crate::Error::from)?;
                return Ok(None);
            };
            let expires_at_ms = match expiry {
                Expiry::Clear => None,
                Expiry::At(at) => Some(at),
                Expiry::Keep => live.and_then(|(_, _, expires)| *expires),
            };
            let size = (key.len() + value.len()) as i64;
            let now = OffsetDateTime::now_utc();
            match held {
                Some((_, old_size, _)) => {
                    kv_entries::Entity::update_many()
                        .col_expr(kv_entries::Column::Value, Expr::value(value.clone()))
                        .col_expr(kv_entries::Column::Size, Expr::value(size))
                        .col_expr(kv_entries::Column::UpdatedAt, Expr::value(now))
                        .col_expr(kv_entries::Column::ExpiresAtMs, Expr::value(expires_at_ms))
                        .filter(self.entry(key))
                        .exec(&txn)
                        .await?;
                    break (value, size - old_size);
                }
                None => {
                    let row = kv_entries::ActiveModel {
                        tenant_id: Set(self.tenant.to_string()),
                        plugin: Set(self.plugin.to_string()),
                        key: Set(key.as_bytes().to_vec()),
                        value: Set(value.clone()),
                        size: Set(size),
                        updated_at: Set(now),
                        expires_at_ms: Set(expires_at_ms),
                    };
                    let inserted = kv_entries::Entity::insert(row)
                        .on_conflict_do_nothing()
                        .exec_without_returning(&txn)
                        .await?;
                    if matches!(inserted, TryInsertResult::Inserted(n) if n > 0) {
                        break (value, size);
                    }
                    // A concurrent writer created the key after we looked and has
                    // committed: look again, now at its value.
                }
            }
        };
        if !self.add_usage(&txn, added, quota).await? {
            let used = self.read_usage(&txn).await?;
            return Err(KvWriteError::QuotaExceeded {
                quota,
                used,
                needed: added.max(0) as u64,
            });
        }
        txn.commit().await.map_err(crate::Error::from)?;
        Ok(Some(value))
    }

    /// Moves the install's usage counter by `added` bytes in one statement, unless it grows
    /// past `quota`; `false` when it was refused (and nothing changed). Shrinking is always
    /// allowed, so an install over a lowered quota can still delete.
    ///
    /// On PostgreSQL the upsert locks the counter's row until the transaction ends, and a
    /// concurrent writer's upsert waits for it and then checks its `WHERE` against the
    /// committed total, so two writers cannot both pass the quota.
    async fn add_usage(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        added: i64,
        quota: u64,
    ) -> Result<bool, sea_orm::DbErr> {
        let quota = i64::try_from(quota).unwrap_or(i64::MAX);
        if added == 0 {
            return Ok(true);
        }
        if added > quota {
            return Ok(false);
        }
        let backend = txn.get_database_backend();
        let result = txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                placeholders(
                    backend,
                    "INSERT INTO kv_usage (tenant_id, plugin, bytes) VALUES (?, ?, ?) \
                     ON CONFLICT (tenant_id, plugin) DO UPDATE \
                     SET bytes = kv_usage.bytes + excluded.bytes \
                     WHERE excluded.bytes <= 0 OR kv_usage.bytes + excluded.bytes <= ?",
                ),
                [
                    self.tenant.into(),
                    self.plugin.into(),
                    added.into(),
                    quota.into(),
                ],
            ))
            .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn read_usage<C: ConnectionTrait>(&self, db: &C) -> Result<u64, sea_orm::DbErr> {
        let backend = db.get_database_backend();
        let row = db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                placeholders(
                    backend,
                    "SELECT bytes FROM kv_usage WHERE tenant_id = ? AND plugin = ?",
                ),
                [self.tenant.into(), self.plugin.into()],
            ))
            .await?;
        Ok(match row {
            Some(row) => row.try_get::<i64>("", "bytes")?.max(0) as u64,
            None => 0,
        })
    }

    /// Removes `key`; returns whether it existed (an expired entry is removed too, and
    /// did not exist).
    pub async fn delete(&self, key: &str) -> Result<bool> {
        let txn = scoped::begin_write(self.db, self.tenant).await?;
        let held = kv_entries::Entity::find()
            .select_only()
            .column(kv_entries::Column::Size)
            .column(kv_entries::Column::ExpiresAtMs)
            .filter(self.entry(key))
            .lock_exclusive()
            .into_tuple::<(i64, Option<i64>)>()
            .one(&txn)
            .await?;
        let Some((size, expires)) = held else {
            txn.commit().await?;
            return Ok(false);
        };
        kv_entries::Entity::delete_many()
            .filter(self.entry(key))
            .exec(&txn)
            .await?;
        self.add_usage(&txn, -size, u64::MAX).await?;
        txn.commit().await?;
        Ok(expires.is_none_or(|at| at > now_ms()))
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
            .filter(live_at(now_ms()))
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

    /// Bytes of keys and values the plugin stores in this tenant, as its usage counter
    /// holds them (what the quota is checked against).
    pub async fn usage(&self) -> Result<u64> {
        let txn = scoped::begin(self.db, self.tenant).await?;
        let used = self.read_usage(&txn).await?;
        txn.commit().await?;
        Ok(used)
    }

    /// Bytes of keys and values the plugin stores in this tenant, summed over its entries.
    /// Reads every entry of the install: for checks that the counter is right, never on a
    /// request's path.
    pub async fn stored_bytes(&self) -> Result<u64> {
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

/// Removes an install's usage counter, in the transaction that removes its entries.
pub(crate) async fn forget_usage<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    plugin: &str,
) -> Result<(), sea_orm::DbErr> {
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        placeholders(
            backend,
            "DELETE FROM kv_usage WHERE tenant_id = ? AND plugin = ?",
        ),
        [tenant.into(), plugin.into()],
    ))
    .await?;
    Ok(())
}

/// The number an increment finds: the decimal ASCII text of an `i64`.
fn parse_number(bytes: &[u8]) -> Result<i64, KvWriteError> {
    std::str::from_utf8(bytes)
        .ok()
        .filter(|text| !text.starts_with('+'))
        .and_then(|text| text.parse::<i64>().ok())
        .ok_or_else(|| {
            let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(32)]).into_owned();
            KvWriteError::NotANumber(format!("the stored value {shown:?} is not an i64"))
        })
}

/// `sql` with its `?` placeholders numbered (`$1`, `$2`, …) for PostgreSQL.
pub(crate) fn placeholders(backend: DbBackend, sql: &str) -> String {
    if backend != DbBackend::Postgres {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
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
    /// Whether its payload was erased (it is then `null`).
    pub erased: bool,
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
            erased_at_ms: Set(None),
            payload_salt: Set(Some(uuid::Uuid::new_v4().simple().to_string())),
        };
        let row = plugin_events::Entity::insert(row)
            .exec_with_returning(&txn)
            .await?;
        let object = format!("plugins/{}/events/{}", row.plugin, row.name);
        // The payload may hold personal data, which must be erasable: the chain records the
        // event's id and the hash of the salt and the payload, never the payload. The salt is
        // erased with the payload, so the hash cannot confirm a guess afterwards.
        let mut hash = Sha256::new();
        hash.update(row.payload_salt.as_deref().unwrap_or_default().as_bytes());
        hash.update(row.payload.as_bytes());
        let payload_sha256 = hex::encode(hash.finalize());
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
                    "event": row.id,
                    "payload_sha256": payload_sha256,
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

/// How a subject request finds a plugin's events about a resident: a top-level field of
/// the payload equal to a key the plugin named, or any string in the payload equal to an
/// identifier the resident gave.
#[derive(Debug, Clone, Default)]
pub struct EventMatch {
    /// `(field, value)` pairs from the plugin's records.
    pub keys: Vec<(String, String)>,
    /// The resident's identifiers, compared without regard to case or surrounding space.
    pub values: Vec<String>,
}

impl EventMatch {
    fn matches(&self, payload: &serde_json::Value) -> bool {
        if let serde_json::Value::Object(fields) = payload
            && self
                .keys
                .iter()
                .any(|(field, value)| match fields.get(field) {
                    Some(serde_json::Value::String(text)) => text == value,
                    Some(serde_json::Value::Number(number)) => *value == number.to_string(),
                    _ => false,
                })
        {
            return true;
        }
        !self.values.is_empty() && self.holds_value(payload)
    }

    fn holds_value(&self, payload: &serde_json::Value) -> bool {
        match payload {
            serde_json::Value::String(text) => {
                let text = text.trim().to_lowercase();
                self.values.contains(&text)
            }
            serde_json::Value::Array(items) => items.iter().any(|item| self.holds_value(item)),
            serde_json::Value::Object(fields) => fields.values().any(|item| self.holds_value(item)),
            _ => false,
        }
    }
}

impl Events<'_> {
    /// The events of `plugin` for `council` that `matching` finds, oldest first; erased
    /// ones are left out.
    pub async fn about(
        &self,
        plugin: &PluginName,
        council: &CouncilId,
        matching: &EventMatch,
    ) -> Result<Vec<EventRecord>> {
        let mut matching = matching.clone();
        matching.values = matching
            .values
            .iter()
            .map(|value| value.trim().to_lowercase())
            .filter(|value| !value.is_empty())
            .collect();
        let txn = scoped::begin(self.db, self.scope.tenant().as_str()).await?;
        let mut found = Vec::new();
        let mut after = String::new();
        loop {
            let rows = plugin_events::Entity::find()
                .filter(plugin_events::Column::TenantId.eq(self.scope.tenant().as_str()))
                .filter(plugin_events::Column::Plugin.eq(plugin.as_str()))
                .filter(plugin_events::Column::CouncilId.eq(council.as_str()))
                .filter(plugin_events::Column::ErasedAtMs.is_null())
                .filter(plugin_events::Column::Id.gt(after.as_str()))
                .order_by_asc(plugin_events::Column::Id)
                .limit(1000)
                .all(&txn)
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.id.clone();
            for row in rows {
                let payload = serde_json::from_str(&row.payload).unwrap_or_default();
                if matching.matches(&payload) {
                    found.push(to_event(row));
                }
            }
        }
        txn.commit().await?;
        Ok(found)
    }

    /// Erases the payloads of the events `ids` (it becomes `null`); the events themselves,
    /// and the audit chain's record of them, stay. Returns how many were erased now.
    pub async fn erase(&self, ids: &[String]) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let now = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let txn = scoped::begin_write(self.db, self.scope.tenant().as_str()).await?;
        let mut erased = 0;
        for chunk in ids.chunks(500) {
            erased += plugin_events::Entity::update_many()
                .col_expr(plugin_events::Column::Payload, "null".into())
                .col_expr(
                    plugin_events::Column::PayloadSalt,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(plugin_events::Column::ErasedAtMs, (now as i64).into())
                .filter(plugin_events::Column::TenantId.eq(self.scope.tenant().as_str()))
                .filter(plugin_events::Column::Id.is_in(chunk.iter().map(String::as_str)))
                .filter(plugin_events::Column::ErasedAtMs.is_null())
                .exec(&txn)
                .await?
                .rows_affected;
        }
        txn.commit().await?;
        Ok(erased)
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
        erased: row.erased_at_ms.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_number, prefix_end};

    #[test]
    fn numbers_are_decimal_i64_text() {
        assert_eq!(parse_number(b"42").unwrap(), 42);
        assert_eq!(parse_number(b"-7").unwrap(), -7);
        assert_eq!(parse_number(b"9223372036854775807").unwrap(), i64::MAX);
        for bad in [
            &b""[..],
            b"+1",
            b" 1",
            b"1.5",
            b"\"1\"",
            b"9223372036854775808",
            b"\xff",
        ] {
            assert!(parse_number(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn prefix_ranges() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(b"\xff\xff"), None);
    }
}
