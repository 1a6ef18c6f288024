//! The shared catalogue: plugins and their immutable, digest-addressed versions.
//!
//! The catalogue is shared by every tenant, so it takes no `TenantScope`; it never holds
//! tenant data.

use guildhall_domain::manifest::Manifest;
use guildhall_domain::{Digest, PluginName, TenantId};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use time::OffsetDateTime;

use crate::entities::{component_blobs, plugin_owners, plugin_versions, plugins};
use crate::owners::{self, Actor, OwnerError};
use crate::{Bump, Error, Result, scoped};

/// Why a version cannot be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The version exists with other bytes; versions are immutable.
    #[error(
        "{plugin} {version} is already published with digest {existing}; versions are immutable, publish a new version"
    )]
    VersionConflict {
        /// The plugin.
        plugin: PluginName,
        /// The version.
        version: String,
        /// The digest it was published with.
        existing: Digest,
    },
    /// The publisher is not an owner of the plugin (nor an operator).
    #[error("{subject} is not an owner of plugin {plugin}; ask an owner to add you")]
    NotOwner {
        /// The plugin.
        plugin: PluginName,
        /// Who tried to publish.
        subject: String,
    },
    /// The key that signed the version is not registered to an owner of the plugin (it
    /// may have changed while the upload was checked).
    #[error("the key {key} is not registered to an owner of plugin {plugin}")]
    SignerNotOwner {
        /// The plugin.
        plugin: PluginName,
        /// The key's fingerprint.
        key: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] Error),
}

/// One published version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionRecord {
    /// The plugin's name.
    pub plugin: PluginName,
    /// The version, e.g. `1.2.0`.
    pub version: String,
    /// The sha256 of the component bytes.
    pub digest: Digest,
    /// The manifest as published.
    pub manifest: Manifest,
    /// The base64 ed25519 signature over the signed statement, when signed.
    pub signature: Option<String>,
    /// The fingerprint of the owner's key that verified the signature.
    pub signed_by: Option<String>,
    /// The sha256 of plugin.toml as uploaded (`None` for versions published before it
    /// was recorded).
    pub manifest_sha256: Option<Digest>,
    /// Yanked versions cannot be newly installed; running installs keep working.
    pub yanked: bool,
    /// When it was published.
    #[serde(with = "time::serde::rfc3339")]
    pub published_at: OffsetDateTime,
}

/// A plugin and its versions, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginRecord {
    /// The plugin's name.
    pub name: PluginName,
    /// The display name its latest manifest gives (not an identity: see the owners).
    pub publisher: String,
    /// The latest version's description.
    pub description: String,
    /// Versions, highest semver first.
    pub versions: Vec<VersionRecord>,
}

impl PluginRecord {
    /// The highest version that is not yanked.
    pub fn latest(&self) -> Option<&VersionRecord> {
        self.versions.iter().find(|v| !v.yanked)
    }
}

/// What publishing did.
#[derive(Debug, Clone, PartialEq)]
pub enum Published {
    /// A new version.
    Created(VersionRecord),
    /// The same bytes were already published under this version.
    Existing(VersionRecord),
}

/// A version to publish.
#[derive(Debug, Clone)]
pub struct NewVersion<'a> {
    /// The checked manifest.
    pub manifest: &'a Manifest,
    /// The component's digest.
    pub digest: Digest,
    /// The component's bytes.
    pub bytes: &'a [u8],
    /// The sha256 of plugin.toml's bytes as uploaded.
    pub manifest_sha256: Digest,
    /// A verified signature, when there is one.
    pub signature: Option<Signed>,
    /// Who publishes.
    pub actor: Actor<'a>,
}

/// A signature the caller has verified, and whose key verified it.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The base64 signature.
    pub signature: String,
    /// The fingerprint of the key that verified it.
    pub fingerprint: String,
    /// The subject the key is registered to.
    pub signer: String,
}

/// The catalogue.
#[derive(Debug)]
pub struct Catalogue<'a> {
    db: &'a DatabaseConnection,
}

impl<'a> Catalogue<'a> {
    pub(crate) fn new(db: &'a DatabaseConnection) -> Self {
        Self { db }
    }

    /// Publishes a version in one transaction: the blob (once per digest), the plugin row,
    /// its first owner (the actor, for a new name) and the version row appear together or
    /// not at all. Only an owner or an operator publishes into an existing plugin, and a
    /// signature must come from a key of an owner. Two first publishes of one name race on
    /// the plugin's primary key; the loser retries once and then meets the winner's
    /// ownership.
    pub async fn publish(&self, new: NewVersion<'_>) -> Result<Published, PublishError> {
        // A first publish that lost the race for the name (its insert met the winner's key,
        // or it found the winner's version) runs once more, and then meets the plugin and
        // its owner like any later publish.
        match self.try_publish(&new).await {
            Err(PublishError::Store(Error::Database(e)))
                if matches!(e, DbErr::RecordNotInserted)
                    || matches!(
                        e.sql_err(),
                        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                    ) =>
            {
                self.try_publish(&new).await
            }
            other => other,
        }
    }

    async fn try_publish(&self, new: &NewVersion<'_>) -> Result<Published, PublishError> {
        let m = new.manifest;
        let version = m.version.to_string();
        let now = OffsetDateTime::now_utc();
        let txn = scoped::write(self.db).await?;
        let exists = owners::lock_plugin(&txn, &m.name).await?;
        let owners = if exists {
            let owners = owners::owner_subjects(&txn, &m.name).await?;
            owners::may_act(&owners, new.actor, &m.name).map_err(|_| PublishError::NotOwner {
                plugin: m.name.clone(),
                subject: new.actor.subject.to_string(),
            })?;
            owners
        } else {
            vec![new.actor.subject.to_string()]
        };
        if let Some(signed) = &new.signature
            && !owners.contains(&signed.signer)
        {
            return Err(PublishError::SignerNotOwner {
                plugin: m.name.clone(),
                key: signed.fingerprint.clone(),
            });
        }
        if let Some(existing) =
            plugin_versions::Entity::find_by_id((m.name.to_string(), version.clone()))
                .one(&txn)
                .await
                .map_err(Error::from)?
        {
            if !exists {
                // The plugin was created (with this version) after this transaction found
                // no plugin to lock: a concurrent first publish won. Start again, so the
                // owner check runs on the committed plugin.
                return Err(PublishError::Store(Error::Database(
                    DbErr::RecordNotInserted,
                )));
            }
            let record = to_version(existing)?;
            return if record.digest == new.digest {
                Ok(Published::Existing(record))
            } else {
                Err(PublishError::VersionConflict {
                    plugin: m.name.clone(),
                    version,
                    existing: record.digest,
                })
            };
        }
        if exists {
            plugins::Entity::update_many()
                .col_expr(
                    plugins::Column::Description,
                    sea_orm::sea_query::Expr::value(m.description.clone()),
                )
                .col_expr(
                    plugins::Column::Publisher,
                    sea_orm::sea_query::Expr::value(m.publisher.clone()),
                )
                .col_expr(
                    plugins::Column::UpdatedAt,
                    sea_orm::sea_query::Expr::value(now),
                )
                .filter(plugins::Column::Name.eq(m.name.as_str()))
                .exec(&txn)
                .await
                .map_err(Error::from)?;
        } else {
            plugins::ActiveModel {
                name: Set(m.name.to_string()),
                publisher: Set(m.publisher.clone()),
                description: Set(m.description.clone()),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(&txn)
            .await
            .map_err(Error::from)?;
            plugin_owners::ActiveModel {
                plugin: Set(m.name.to_string()),
                subject: Set(new.actor.subject.to_string()),
                added_by: Set(new.actor.subject.to_string()),
                created_at: Set(now),
            }
            .insert(&txn)
            .await
            .map_err(Error::from)?;
        }
        let digest = new.digest.to_string();
        if component_blobs::Entity::find_by_id(digest.clone())
            .select_only()
            .column(component_blobs::Column::Digest)
            .into_tuple::<String>()
            .one(&txn)
            .await
            .map_err(Error::from)?
            .is_none()
        {
            component_blobs::ActiveModel {
                digest: Set(digest.clone()),
                bytes: Set(new.bytes.to_vec()),
                size: Set(new.bytes.len() as i64),
                created_at: Set(now),
            }
            .insert(&txn)
            .await
            .map_err(Error::from)?;
        }
        let (signature, signed_by) = new
            .signature
            .clone()
            .map_or((None, None), |s| (Some(s.signature), Some(s.fingerprint)));
        let manifest_json = serde_json::to_string(m)
            .map_err(|e| Error::Database(sea_orm::DbErr::Custom(e.to_string())))?;
        let row = plugin_versions::ActiveModel {
            plugin: Set(m.name.to_string()),
            version: Set(version),
            digest: Set(digest),
            manifest: Set(manifest_json),
            signature: Set(signature),
            signed_by: Set(signed_by),
            yanked: Set(false),
            published_at: Set(now),
            manifest_sha256: Set(Some(new.manifest_sha256.to_string())),
        }
        .insert(&txn)
        .await
        .map_err(Error::from)?;
        txn.commit().await.map_err(Error::from)?;
        Ok(Published::Created(to_version(row)?))
    }

    /// Whether a version of `name` exists, and its digest (a cheap check before compiling).
    pub async fn version_digest(&self, name: &PluginName, version: &str) -> Result<Option<Digest>> {
        plugin_versions::Entity::find_by_id((name.to_string(), version.to_string()))
            .select_only()
            .column(plugin_versions::Column::Digest)
            .into_tuple::<String>()
            .one(self.db)
            .await?
            .map(|d| d.parse().map_err(corrupt))
            .transpose()
    }

    /// Every plugin with its versions, ordered by name.
    pub async fn list(&self) -> Result<Vec<PluginRecord>> {
        let plugins = plugins::Entity::find()
            .order_by_asc(plugins::Column::Name)
            .all(self.db)
            .await?;
        let versions = plugin_versions::Entity::find().all(self.db).await?;
        let mut out = Vec::with_capacity(plugins.len());
        for p in plugins {
            let mine = versions
                .iter()
                .filter(|v| v.plugin == p.name)
                .cloned()
                .collect();
            out.push(to_plugin(p, mine)?);
        }
        Ok(out)
    }

    /// One plugin with its versions.
    pub async fn get(&self, name: &PluginName) -> Result<Option<PluginRecord>> {
        let Some(p) = plugins::Entity::find_by_id(name.to_string())
            .one(self.db)
            .await?
        else {
            return Ok(None);
        };
        let versions = plugin_versions::Entity::find()
            .filter(plugin_versions::Column::Plugin.eq(name.as_str()))
            .all(self.db)
            .await?;
        to_plugin(p, versions).map(Some)
    }

    /// One version.
    pub async fn version(&self, name: &PluginName, version: &str) -> Result<Option<VersionRecord>> {
        plugin_versions::Entity::find_by_id((name.to_string(), version.to_string()))
            .one(self.db)
            .await?
            .map(to_version)
            .transpose()
    }

    /// Marks a version yanked; returns the record, or `None` when there is no such version.
    /// Only an owner of the plugin or an operator may yank.
    pub async fn yank(
        &self,
        name: &PluginName,
        version: &str,
        actor: Actor<'_>,
    ) -> Result<Option<VersionRecord>, OwnerError> {
        let txn = scoped::write(self.db).await?;
        if !owners::lock_plugin(&txn, name).await? {
            return Ok(None);
        }
        let owners = owners::owner_subjects(&txn, name).await?;
        owners::may_act(&owners, actor, name)?;
        let Some(row) =
            plugin_versions::Entity::find_by_id((name.to_string(), version.to_string()))
                .one(&txn)
                .await?
        else {
            return Ok(None);
        };
        if row.yanked {
            return Ok(Some(to_version(row)?));
        }
        let mut active: plugin_versions::ActiveModel = row.into();
        active.yanked = Set(true);
        let row = active.update(&txn).await?;
        txn.commit().await?;
        Ok(Some(to_version(row)?))
    }

    /// The bytes of a component.
    pub async fn blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>> {
        Ok(component_blobs::Entity::find_by_id(digest.to_string())
            .one(self.db)
            .await?
            .map(|row| row.bytes))
    }

    /// How many distinct blobs are stored (for tests and operators).
    pub async fn blob_count(&self) -> Result<u64> {
        use sea_orm::PaginatorTrait;
        Ok(component_blobs::Entity::find().count(self.db).await?)
    }
}

fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::Database(sea_orm::DbErr::Custom(format!(
        "corrupt catalogue row: {what}"
    )))
}

pub(crate) fn to_version(row: plugin_versions::Model) -> Result<VersionRecord> {
    Ok(VersionRecord {
        plugin: PluginName::parse(row.plugin).map_err(corrupt)?,
        version: row.version,
        digest: row.digest.parse().map_err(corrupt)?,
        manifest: serde_json::from_str(&row.manifest).map_err(corrupt)?,
        signature: row.signature,
        signed_by: row.signed_by,
        manifest_sha256: row
            .manifest_sha256
            .map(|d| d.parse().map_err(corrupt))
            .transpose()?,
        yanked: row.yanked,
        published_at: row.published_at,
    })
}

fn to_plugin(row: plugins::Model, versions: Vec<plugin_versions::Model>) -> Result<PluginRecord> {
    let mut versions = versions
        .into_iter()
        .map(to_version)
        .collect::<Result<Vec<_>>>()?;
    versions.sort_by(|a, b| b.manifest.version.cmp(&a.manifest.version));
    Ok(PluginRecord {
        name: PluginName::parse(row.name).map_err(corrupt)?,
        publisher: row.publisher,
        description: row.description,
        versions,
    })
}

/// Bumps the platform revision inside a transaction for a change to `tenant`'s installs,
/// councils or settings, and logs the new revision as the tenant's (a row of
/// `tenant_revisions`), so other replicas drop only this tenant's cached installs. Returns
/// the bump, which the caller hands to [`crate::Revision::committed`] once the transaction
/// has committed.
///
/// The platform row is held from the update to the commit, so revisions are consecutive
/// and commit in order: once a replica reads revision `n`, every log row at `n` or below is
/// committed, one per revision (a revision with none was bumped by a release that kept no
/// log, or its row was pruned).
pub(crate) async fn bump_revision<C: ConnectionTrait>(db: &C, tenant: &TenantId) -> Result<Bump> {
    use crate::entities::{platform_revision, tenant_revisions};
    platform_revision::Entity::update_many()
        .col_expr(
            platform_revision::Column::Revision,
            sea_orm::sea_query::ExprTrait::add(
                sea_orm::sea_query::Expr::col(platform_revision::Column::Revision),
                1,
            ),
        )
        .filter(platform_revision::Column::Id.eq(1))
        .exec(db)
        .await?;
    // The update holds the row, so this reads this transaction's own increment.
    let revision = platform_revision::Entity::find_by_id(1)
        .one(db)
        .await?
        .map_or(0, |row| row.revision);
    tenant_revisions::Entity::insert(tenant_revisions::ActiveModel {
        revision: Set(revision),
        tenant_id: Set(tenant.as_str().to_string()),
    })
    .exec_without_returning(db)
    .await?;
    Ok(Bump::new(tenant.clone(), revision))
}
