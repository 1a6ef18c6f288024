//! The shared catalogue: plugins and their immutable, digest-addressed versions.
//!
//! The catalogue is shared by every tenant, so it takes no `TenantScope`; it never holds
//! tenant data.

use guildhall_domain::manifest::Manifest;
use guildhall_domain::{Digest, PluginName};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use time::OffsetDateTime;

use crate::entities::{component_blobs, plugin_versions, plugins};
use crate::{Error, Result, scoped};

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
    /// The plugin name belongs to another publisher.
    #[error("plugin {plugin} belongs to publisher {owner}, not {publisher}")]
    PublisherMismatch {
        /// The plugin.
        plugin: PluginName,
        /// Who owns the name.
        owner: String,
        /// Who tried to publish.
        publisher: String,
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
    /// The base64 ed25519 signature over the digest, when signed.
    pub signature: Option<String>,
    /// The trusted key that verified the signature.
    pub signed_by: Option<String>,
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
    /// Who publishes it.
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
    /// A verified signature and the key that verified it.
    pub signature: Option<(String, String)>,
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

    /// Publishes a version in one transaction: the blob (once per digest), the plugin row
    /// and the version row appear together or not at all.
    pub async fn publish(&self, new: NewVersion<'_>) -> Result<Published, PublishError> {
        let m = new.manifest;
        let version = m.version.to_string();
        let now = OffsetDateTime::now_utc();
        let txn = scoped::write(self.db).await?;
        if let Some(existing) =
            plugin_versions::Entity::find_by_id((m.name.to_string(), version.clone()))
                .one(&txn)
                .await
                .map_err(Error::from)?
        {
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
        match plugins::Entity::find_by_id(m.name.to_string())
            .one(&txn)
            .await
            .map_err(Error::from)?
        {
            Some(row) if row.publisher != m.publisher => {
                return Err(PublishError::PublisherMismatch {
                    plugin: m.name.clone(),
                    owner: row.publisher,
                    publisher: m.publisher.clone(),
                });
            }
            Some(row) => {
                let mut active: plugins::ActiveModel = row.into();
                active.description = Set(m.description.clone());
                active.updated_at = Set(now);
                active.update(&txn).await.map_err(Error::from)?;
            }
            None => {
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
            }
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
            .map_or((None, None), |(s, k)| (Some(s), Some(k)));
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
        }
        .insert(&txn)
        .await
        .map_err(Error::from)?;
        txn.commit().await.map_err(Error::from)?;
        Ok(Published::Created(to_version(row)?))
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
    pub async fn yank(&self, name: &PluginName, version: &str) -> Result<Option<VersionRecord>> {
        let Some(row) =
            plugin_versions::Entity::find_by_id((name.to_string(), version.to_string()))
                .one(self.db)
                .await?
        else {
            return Ok(None);
        };
        if row.yanked {
            return to_version(row).map(Some);
        }
        let mut active: plugin_versions::ActiveModel = row.into();
        active.yanked = Set(true);
        to_version(active.update(self.db).await?).map(Some)
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

/// Bumps the platform revision inside a transaction.
pub(crate) async fn bump_revision<C: ConnectionTrait>(db: &C) -> Result<()> {
    use crate::entities::platform_revision;
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
    Ok(())
}
