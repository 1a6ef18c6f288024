//! Installs: which version of which plugin a tenant runs, for which councils.

use guildhall_domain::{CouncilId, PluginName};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::catalogue::bump_revision;
use crate::claim::{Claim, claim, lock_tenant, stamp};
use crate::entities::installs;
use crate::tenants::Applied;
use crate::{Error, Result, Revision, TenantScope, scoped};

/// The councils an install serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InstallCouncils {
    /// `"all"`: every council of the tenant, including ones added later.
    All(AllCouncils),
    /// These councils only.
    Some(Vec<CouncilId>),
}

/// The literal `"all"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllCouncils {
    /// Every council.
    All,
}

impl InstallCouncils {
    /// Whether the install serves `council` (which must belong to the tenant).
    pub fn includes(&self, council: &CouncilId) -> bool {
        match self {
            InstallCouncils::All(_) => true,
            InstallCouncils::Some(list) => list.contains(council),
        }
    }
}

/// An install as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstallRecord {
    /// The plugin.
    pub plugin: PluginName,
    /// The installed version.
    pub version: String,
    /// The councils it serves.
    pub councils: InstallCouncils,
    /// The checked configuration.
    pub config: serde_json::Value,
    /// When the plugin was first installed.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the install last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// One tenant's installs.
#[derive(Debug)]
pub struct Installs<'a> {
    db: &'a DatabaseConnection,
    scope: &'a TenantScope,
    revision: &'a Revision,
}

impl<'a> Installs<'a> {
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

    /// One install.
    pub async fn get(&self, plugin: &PluginName) -> Result<Option<InstallRecord>> {
        let txn = scoped::begin(self.db, self.scope.tenant().as_str()).await?;
        let row =
            installs::Entity::find_by_id((self.scope.tenant().to_string(), plugin.to_string()))
                .one(&txn)
                .await?;
        txn.commit().await?;
        row.map(to_install).transpose()
    }

    /// Every install of the tenant, ordered by plugin.
    pub async fn list(&self) -> Result<Vec<InstallRecord>> {
        let txn = scoped::begin(self.db, self.scope.tenant().as_str()).await?;
        let rows = installs::Entity::find()
            .filter(installs::Column::TenantId.eq(self.scope.tenant().as_str()))
            .order_by_asc(installs::Column::Plugin)
            .all(&txn)
            .await?;
        txn.commit().await?;
        rows.into_iter().map(to_install).collect()
    }

    /// Installs, upgrades or rolls back in one transaction and bumps the platform
    /// revision so every replica switches. Every council's overrides of the install's
    /// settings are checked against `manifest` (the version's) in the same transaction:
    /// [`Error::InvalidOverrides`] names the first council whose overrides it refuses.
    pub async fn put(
        &self,
        plugin: &PluginName,
        manifest: &guildhall_domain::manifest::Manifest,
        councils: &InstallCouncils,
        config: &serde_json::Value,
    ) -> Result<(Applied, InstallRecord)> {
        let version = manifest.version.to_string();
        let version = version.as_str();
        let (all, list) = match councils {
            InstallCouncils::All(_) => (true, "[]".to_string()),
            InstallCouncils::Some(list) => (false, serde_json::to_string(list).map_err(json_err)?),
        };
        let config_text = serde_json::to_string(config).map_err(json_err)?;
        let tenant = self.scope.tenant();
        let txn = scoped::begin_write(self.db, tenant.as_str()).await?;
        lock_tenant(&txn, tenant).await?;
        // The councils were checked before this transaction; with the tenant's row held
        // now, a council deleted since is caught here rather than left in the list.
        if let InstallCouncils::Some(list) = councils {
            let existing: Vec<String> = crate::entities::councils::Entity::find()
                .filter(crate::entities::councils::Column::TenantId.eq(tenant.as_str()))
                .all(&txn)
                .await?
                .into_iter()
                .map(|c| c.id)
                .collect();
            if let Some(gone) = list
                .iter()
                .find(|c| !existing.iter().any(|e| e == c.as_str()))
            {
                return Err(Error::UnknownCouncil(gone.clone()));
            }
        }
        if let Some((council, fields)) =
            crate::settings::check_overrides_in(&txn, tenant.as_str(), plugin.as_str(), manifest)
                .await?
        {
            return Err(Error::InvalidOverrides {
                council,
                fields: fields.into_iter().map(|f| (f.field, f.reason)).collect(),
            });
        }
        let now = OffsetDateTime::now_utc();
        let new = installs::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            plugin: Set(plugin.to_string()),
            version: Set(version.to_string()),
            all_councils: Set(all),
            councils: Set(list.clone()),
            config: Set(config_text.clone()),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let find = installs::Entity::find_by_id((tenant.to_string(), plugin.to_string()));
        let (applied, row) = match claim(&txn, new, find).await? {
            Claim::Created(row) => (Applied::Created, row),
            Claim::Existing(row)
                if row.version == version
                    && row.all_councils == all
                    && row.councils == list
                    && row.config == config_text =>
            {
                (Applied::Unchanged, row)
            }
            Claim::Existing(row) => {
                let created_at = row.created_at;
                let mut active: installs::ActiveModel = row.into();
                active.version = Set(version.to_string());
                active.all_councils = Set(all);
                active.councils = Set(list);
                active.config = Set(config_text);
                active.updated_at = Set(stamp(created_at));
                (Applied::Updated, active.update(&txn).await?)
            }
        };
        let mut bumped = None;
        if applied != Applied::Unchanged {
            let councils = match councils {
                InstallCouncils::All(_) => None,
                InstallCouncils::Some(list) => Some(list.len()),
            };
            crate::usage::adoption_put(
                &txn,
                self.scope.tenant().as_str(),
                plugin.as_str(),
                version,
                councils,
            )
            .await?;
            bumped = Some(bump_revision(&txn, self.scope.tenant()).await?);
        }
        txn.commit().await?;
        self.revision.committed(bumped);
        Ok((applied, to_install(row)?))
    }

    /// Uninstalls. The plugin's key-value data in the tenant is kept unless `purge_data`,
    /// so a later install picks up where the last one left off. Returns whether the
    /// plugin was installed.
    pub async fn delete(&self, plugin: &PluginName, purge_data: bool) -> Result<bool> {
        let txn = scoped::begin_write(self.db, self.scope.tenant().as_str()).await?;
        lock_tenant(&txn, self.scope.tenant()).await?;
        let deleted = installs::Entity::delete_many()
            .filter(installs::Column::TenantId.eq(self.scope.tenant().as_str()))
            .filter(installs::Column::Plugin.eq(plugin.as_str()))
            .exec(&txn)
            .await?
            .rows_affected
            > 0;
        let mut bumped = None;
        if deleted {
            if purge_data {
                use crate::entities::kv_entries;
                kv_entries::Entity::delete_many()
                    .filter(kv_entries::Column::TenantId.eq(self.scope.tenant().as_str()))
                    .filter(kv_entries::Column::Plugin.eq(plugin.as_str()))
                    .exec(&txn)
                    .await?;
                crate::plugin_data::forget_usage(
                    &txn,
                    self.scope.tenant().as_str(),
                    plugin.as_str(),
                )
                .await?;
                // Its secrets and councils' settings go with its data.
                let backend = txn.get_database_backend();
                for table in ["install_secrets", "council_settings"] {
                    txn.execute_raw(sea_orm::Statement::from_sql_and_values(
                        backend,
                        crate::plugin_data::placeholders(
                            backend,
                            &format!("DELETE FROM {table} WHERE tenant_id = ? AND plugin = ?"),
                        ),
                        [self.scope.tenant().as_str().into(), plugin.as_str().into()],
                    ))
                    .await?;
                }
            }
            crate::usage::adoption_delete(&txn, self.scope.tenant().as_str(), plugin.as_str())
                .await?;
            bumped = Some(bump_revision(&txn, self.scope.tenant()).await?);
        }
        txn.commit().await?;
        self.revision.committed(bumped);
        Ok(deleted)
    }
}

fn json_err(e: serde_json::Error) -> Error {
    Error::Database(sea_orm::DbErr::Custom(e.to_string()))
}

fn to_install(row: installs::Model) -> Result<InstallRecord> {
    let corrupt = |e: &dyn std::fmt::Display| {
        Error::Database(sea_orm::DbErr::Custom(format!("corrupt install row: {e}")))
    };
    let councils = if row.all_councils {
        InstallCouncils::All(AllCouncils::All)
    } else {
        InstallCouncils::Some(serde_json::from_str(&row.councils).map_err(|e| corrupt(&e))?)
    };
    Ok(InstallRecord {
        plugin: PluginName::parse(row.plugin).map_err(|e| corrupt(&e))?,
        version: row.version,
        councils,
        config: serde_json::from_str(&row.config).map_err(|e| corrupt(&e))?,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}
