//! Each council's overrides of an install's settings (`council_settings`). A change bumps
//! the platform revision in its transaction, like an install change, so every replica's
//! gateway serves the council's merged settings from its next call.

use std::collections::BTreeMap;

use guildhall_domain::manifest::Manifest;
use guildhall_domain::{CouncilId, PluginName};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, Statement};
use serde_json::Value;

use crate::catalogue::bump_revision;
use crate::claim::lock_tenant;
use crate::millis::now_ms;
use crate::plugin_data::placeholders;
use crate::{Error, Result, Revision, TenantScope, scoped};

/// Why a council's settings were not stored.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] Error),
    /// The plugin is not installed, or not at the version the overrides were checked
    /// against (an upgrade committed in between).
    #[error("the install of {plugin} changed while its settings were checked; try again")]
    InstallChanged {
        /// The plugin.
        plugin: String,
    },
}

impl From<sea_orm::DbErr> for SettingsError {
    fn from(e: sea_orm::DbErr) -> Self {
        SettingsError::Store(e.into())
    }
}

/// One tenant's per-council settings.
#[derive(Debug)]
pub struct CouncilSettings<'a> {
    db: &'a DatabaseConnection,
    scope: &'a TenantScope,
    revision: &'a Revision,
}

/// Every council's overrides of `plugin`, read in an open transaction of the tenant.
pub(crate) async fn overrides_in<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    plugin: &str,
) -> Result<BTreeMap<String, Value>> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            placeholders(
                backend,
                "SELECT council, config FROM council_settings WHERE tenant_id = ? AND plugin = ?",
            ),
            [tenant.into(), plugin.into()],
        ))
        .await?;
    let mut all = BTreeMap::new();
    for row in rows {
        let council: String = row.try_get("", "council")?;
        let text: String = row.try_get("", "config")?;
        let value = serde_json::from_str(&text)
            .map_err(|e| sea_orm::DbErr::Custom(format!("stored settings are not JSON: {e}")))?;
        all.insert(council, value);
    }
    Ok(all)
}

impl<'a> CouncilSettings<'a> {
    pub(crate) fn new(
        db: &'a DatabaseConnection,
        scope: &'a TenantScope,
        revision: &'a Revision,
    ) -> Self {
        Self {
            db,
            scope,
            revision,
        }
    }

    /// Every council's overrides of `plugin`'s settings, by council id.
    pub async fn all(&self, plugin: &PluginName) -> Result<BTreeMap<String, Value>> {
        let tenant = self.scope.tenant().as_str();
        let txn = scoped::begin(self.db, tenant).await?;
        let all = overrides_in(&txn, tenant, plugin.as_str()).await?;
        txn.commit().await?;
        Ok(all)
    }

    /// `council`'s overrides of `plugin`'s settings (an empty object when it has none).
    pub async fn get(&self, plugin: &PluginName, council: &CouncilId) -> Result<Value> {
        Ok(self
            .all(plugin)
            .await?
            .remove(council.as_str())
            .unwrap_or_else(|| Value::Object(serde_json::Map::new())))
    }

    /// Replaces `council`'s overrides of `plugin`'s settings, checked by the caller against
    /// the manifest of `version`; an empty object removes them. Refused when the install is
    /// no longer at `version`. Returns whether anything changed.
    pub async fn put(
        &self,
        plugin: &PluginName,
        version: &str,
        council: &CouncilId,
        overrides: &Value,
    ) -> Result<bool, SettingsError> {
        let tenant = self.scope.tenant();
        let txn = scoped::begin_write(self.db, tenant.as_str()).await?;
        lock_tenant(&txn, tenant).await?;
        let installed = installed_version(&txn, tenant.as_str(), plugin.as_str()).await?;
        if installed.as_deref() != Some(version) {
            return Err(SettingsError::InstallChanged {
                plugin: plugin.to_string(),
            });
        }
        let current = overrides_in(&txn, tenant.as_str(), plugin.as_str())
            .await?
            .remove(council.as_str());
        let empty = overrides.as_object().is_none_or(serde_json::Map::is_empty);
        let changed = match (&current, empty) {
            (None, true) => false,
            (Some(old), false) if old == overrides => false,
            _ => true,
        };
        if changed {
            let backend = txn.get_database_backend();
            let sql = if empty {
                "DELETE FROM council_settings WHERE tenant_id = ? AND plugin = ? AND council = ?"
            } else {
                "INSERT INTO council_settings (tenant_id, plugin, council, config, updated_at_ms) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, plugin, council) DO UPDATE SET \
                 config = excluded.config, updated_at_ms = excluded.updated_at_ms"
            };
            let mut values: Vec<sea_orm::Value> = vec![
                tenant.as_str().into(),
                plugin.as_str().into(),
                council.as_str().into(),
            ];
            if !empty {
                values.push(overrides.to_string().into());
                values.push(now_ms().into());
            }
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                placeholders(backend, sql),
                values,
            ))
            .await?;
            let bumped = bump_revision(&txn, tenant).await?;
            txn.commit().await?;
            self.revision.committed(Some(bumped));
        } else {
            txn.commit().await?;
        }
        Ok(changed)
    }
}

async fn installed_version(
    txn: &DatabaseTransaction,
    tenant: &str,
    plugin: &str,
) -> Result<Option<String>> {
    let backend = txn.get_database_backend();
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            placeholders(
                backend,
                "SELECT version FROM installs WHERE tenant_id = ? AND plugin = ?",
            ),
            [tenant.into(), plugin.into()],
        ))
        .await?;
    Ok(match row {
        Some(row) => Some(row.try_get("", "version")?),
        None => None,
    })
}

/// Checks every council's overrides of `plugin` against `manifest` inside an install's
/// transaction, so an upgrade cannot leave a council with settings its new version refuses.
/// Returns the first council whose overrides fail, with the failures.
pub(crate) async fn check_overrides_in(
    txn: &DatabaseTransaction,
    tenant: &str,
    plugin: &str,
    manifest: &Manifest,
) -> Result<Option<(String, Vec<guildhall_domain::manifest::FieldError>)>> {
    for (council, overrides) in overrides_in(txn, tenant, plugin).await? {
        if let Err(errors) = manifest.check_overrides(&overrides) {
            return Ok(Some((council, errors)));
        }
    }
    Ok(None)
}
