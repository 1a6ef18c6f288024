//! Who owns each plugin name, and the signing keys registered to each identity.
//!
//! **Architecture Invariant:** ownership is decided here, inside the transaction that
//! changes it, never from anything an uploader writes (the manifest's `publisher` is a
//! display name). A subject is an opaque string (`Principal::subject()`), compared only for
//! equality, never with role names. A plugin always has at least one owner.

use guildhall_domain::PluginName;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use time::OffsetDateTime;

use crate::entities::{plugin_owners, plugins, publisher_keys};
use crate::{Error, Result, scoped};

/// The subject the command line acts as: it has the database, so it is an operator.
pub const CLI_OPERATOR: &str = "cli:operator";

/// Who is acting on the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// The principal's subject.
    pub subject: &'a str,
    /// Whether the principal may manage every plugin (an operator).
    pub operator: bool,
}

/// Why an ownership change (or an owner-only action) was refused.
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    /// There is no such plugin.
    #[error("no plugin {0}")]
    NoPlugin(PluginName),
    /// The actor is not an owner of the plugin.
    #[error("{subject} is not an owner of plugin {plugin}; ask an owner to add you")]
    NotOwner {
        /// The plugin.
        plugin: PluginName,
        /// Who tried.
        subject: String,
    },
    /// The subject to remove is the plugin's last owner.
    #[error("{subject} is the last owner of plugin {plugin}; add another owner first")]
    LastOwner {
        /// The plugin.
        plugin: PluginName,
        /// The last owner.
        subject: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] Error),
}

impl From<sea_orm::DbErr> for OwnerError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Store(e.into())
    }
}

/// One owner of a plugin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OwnerRecord {
    /// The owner's subject.
    pub subject: String,
    /// Who added them (the first publisher adds themself).
    pub added_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub added_at: OffsetDateTime,
}

/// The owners of the subjects of one plugin, read inside `db` (a transaction or not).
pub(crate) async fn owner_subjects<C: ConnectionTrait>(
    db: &C,
    plugin: &PluginName,
) -> Result<Vec<String>> {
    Ok(plugin_owners::Entity::find()
        .select_only()
        .column(plugin_owners::Column::Subject)
        .filter(plugin_owners::Column::Plugin.eq(plugin.as_str()))
        .order_by_asc(plugin_owners::Column::Subject)
        .into_tuple::<String>()
        .all(db)
        .await?)
}

/// Takes the plugin's row for the rest of the transaction: on PostgreSQL `FOR UPDATE`, so
/// concurrent ownership changes of one plugin queue; SQLite's write transaction already
/// holds the database. `false` when there is no such plugin.
pub(crate) async fn lock_plugin<C: ConnectionTrait>(db: &C, plugin: &PluginName) -> Result<bool> {
    Ok(plugins::Entity::find_by_id(plugin.to_string())
        .select_only()
        .column(plugins::Column::Name)
        .lock_exclusive()
        .into_tuple::<String>()
        .one(db)
        .await?
        .is_some())
}

impl Actor<'_> {
    /// Whether this actor may manage a plugin with these owners: it is one of them, or an
    /// operator. The one statement of the rule, for the checks here and for edges that
    /// show an owner's actions only to those who may take them.
    pub fn manages<'s>(&self, owners: impl IntoIterator<Item = &'s str>) -> bool {
        self.operator || owners.into_iter().any(|o| o == self.subject)
    }
}

/// Refuses an actor that is neither an owner nor an operator.
pub(crate) fn may_act(
    owners: &[String],
    actor: Actor<'_>,
    plugin: &PluginName,
) -> Result<(), OwnerError> {
    if actor.manages(owners.iter().map(String::as_str)) {
        Ok(())
    } else {
        Err(OwnerError::NotOwner {
            plugin: plugin.clone(),
            subject: actor.subject.to_string(),
        })
    }
}

/// The owners of plugins.
#[derive(Debug)]
pub struct Owners<'a> {
    db: &'a DatabaseConnection,
}

impl<'a> Owners<'a> {
    pub(crate) fn new(db: &'a DatabaseConnection) -> Self {
        Self { db }
    }

    /// A plugin's owners, or `None` when there is no such plugin.
    pub async fn list(&self, plugin: &PluginName) -> Result<Option<Vec<OwnerRecord>>> {
        if plugins::Entity::find_by_id(plugin.to_string())
            .one(self.db)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let rows = plugin_owners::Entity::find()
            .filter(plugin_owners::Column::Plugin.eq(plugin.as_str()))
            .order_by_asc(plugin_owners::Column::CreatedAt)
            .order_by_asc(plugin_owners::Column::Subject)
            .all(self.db)
            .await?;
        Ok(Some(
            rows.into_iter()
                .map(|r| OwnerRecord {
                    subject: r.subject,
                    added_by: r.added_by,
                    added_at: r.created_at,
                })
                .collect(),
        ))
    }

    /// The names of the plugins `subject` owns, in order.
    pub async fn plugins_of(&self, subject: &str) -> Result<Vec<String>> {
        Ok(plugin_owners::Entity::find()
            .select_only()
            .column(plugin_owners::Column::Plugin)
            .filter(plugin_owners::Column::Subject.eq(subject))
            .order_by_asc(plugin_owners::Column::Plugin)
            .into_tuple::<String>()
            .all(self.db)
            .await?)
    }

    /// The subjects owning a plugin (empty when there is no such plugin).
    pub async fn subjects(&self, plugin: &PluginName) -> Result<Vec<String>> {
        owner_subjects(self.db, plugin).await
    }

    /// Adds `subject` as an owner; `true` when it was not one already. Only an owner or an
    /// operator may add.
    pub async fn add(
        &self,
        plugin: &PluginName,
        subject: &str,
        actor: Actor<'_>,
    ) -> Result<bool, OwnerError> {
        let txn = scoped::write(self.db).await?;
        if !lock_plugin(&txn, plugin).await? {
            return Err(OwnerError::NoPlugin(plugin.clone()));
        }
        let owners = owner_subjects(&txn, plugin).await?;
        may_act(&owners, actor, plugin)?;
        if owners.iter().any(|o| o == subject) {
            return Ok(false);
        }
        plugin_owners::ActiveModel {
            plugin: Set(plugin.to_string()),
            subject: Set(subject.to_string()),
            added_by: Set(actor.subject.to_string()),
            created_at: Set(OffsetDateTime::now_utc()),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(true)
    }

    /// Removes `subject` as an owner; `false` when it was not one. Only an owner or an
    /// operator may remove, and never the last owner.
    pub async fn remove(
        &self,
        plugin: &PluginName,
        subject: &str,
        actor: Actor<'_>,
    ) -> Result<bool, OwnerError> {
        let txn = scoped::write(self.db).await?;
        if !lock_plugin(&txn, plugin).await? {
            return Err(OwnerError::NoPlugin(plugin.clone()));
        }
        let owners = owner_subjects(&txn, plugin).await?;
        may_act(&owners, actor, plugin)?;
        if !owners.iter().any(|o| o == subject) {
            return Ok(false);
        }
        if owners.len() == 1 {
            return Err(OwnerError::LastOwner {
                plugin: plugin.clone(),
                subject: subject.to_string(),
            });
        }
        plugin_owners::Entity::delete_by_id((plugin.to_string(), subject.to_string()))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(true)
    }
}

/// A public key registered to an identity for signing plugins.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyRecord {
    /// `SHA256:…` of the key.
    pub fingerprint: String,
    /// Whose key it is.
    pub subject: String,
    /// The owner's name for it.
    pub name: String,
    /// The 32-byte ed25519 key in base64.
    pub public_key: String,
    /// When it was registered.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Why a key cannot be registered.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The same public key is registered already, to someone else or under another name.
    #[error("this public key ({fingerprint}) is already registered{}", if *.other_subject { " to another identity" } else { " under another name" })]
    Taken {
        /// The key's fingerprint.
        fingerprint: String,
        /// Whether another identity holds it.
        other_subject: bool,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] Error),
}

impl From<sea_orm::DbErr> for KeyError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Store(e.into())
    }
}

/// A key to register: the caller has already parsed and checked it.
#[derive(Debug, Clone, Copy)]
pub struct NewKey<'a> {
    /// Whose key.
    pub subject: &'a str,
    /// The owner's name for it.
    pub name: &'a str,
    /// The key in base64.
    pub public_key: &'a str,
    /// Its fingerprint.
    pub fingerprint: &'a str,
}

/// Signing keys registered to identities.
#[derive(Debug)]
pub struct PublisherKeys<'a> {
    db: &'a DatabaseConnection,
}

fn to_key(row: publisher_keys::Model) -> KeyRecord {
    KeyRecord {
        fingerprint: row.fingerprint,
        subject: row.subject,
        name: row.name,
        public_key: row.public_key,
        created_at: row.created_at,
    }
}

impl<'a> PublisherKeys<'a> {
    pub(crate) fn new(db: &'a DatabaseConnection) -> Self {
        Self { db }
    }

    /// Registers (or replaces) the key `name` of `subject`; `true` when it is new. A public
    /// key belongs to one identity under one name.
    pub async fn put(&self, key: NewKey<'_>) -> Result<bool, KeyError> {
        let txn = scoped::write(self.db).await?;
        // A subject's key changes queue; the fingerprint's primary key settles a race
        // between two subjects registering one key.
        crate::claim::lock_name(&txn, &format!("guildhall.keys:{}", key.subject)).await?;
        if let Some(existing) = publisher_keys::Entity::find_by_id(key.fingerprint.to_string())
            .one(&txn)
            .await?
        {
            if existing.subject == key.subject && existing.name == key.name {
                return Ok(false);
            }
            return Err(KeyError::Taken {
                fingerprint: key.fingerprint.to_string(),
                other_subject: existing.subject != key.subject,
            });
        }
        let replaced = publisher_keys::Entity::delete_many()
            .filter(publisher_keys::Column::Subject.eq(key.subject))
            .filter(publisher_keys::Column::Name.eq(key.name))
            .exec(&txn)
            .await?
            .rows_affected
            > 0;
        let inserted = publisher_keys::Entity::insert(publisher_keys::ActiveModel {
            fingerprint: Set(key.fingerprint.to_string()),
            subject: Set(key.subject.to_string()),
            name: Set(key.name.to_string()),
            public_key: Set(key.public_key.to_string()),
            created_at: Set(OffsetDateTime::now_utc()),
        })
        .on_conflict_do_nothing()
        .exec_without_returning(&txn)
        .await?;
        if !matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0) {
            // Another subject registered this key a moment ago.
            return Err(KeyError::Taken {
                fingerprint: key.fingerprint.to_string(),
                other_subject: true,
            });
        }
        txn.commit().await?;
        Ok(!replaced)
    }

    /// The keys of `subject`, by name.
    pub async fn list(&self, subject: &str) -> Result<Vec<KeyRecord>> {
        Ok(publisher_keys::Entity::find()
            .filter(publisher_keys::Column::Subject.eq(subject))
            .order_by_asc(publisher_keys::Column::Name)
            .all(self.db)
            .await?
            .into_iter()
            .map(to_key)
            .collect())
    }

    /// The keys of any of `subjects`.
    pub async fn of_subjects(&self, subjects: &[String]) -> Result<Vec<KeyRecord>> {
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        Ok(publisher_keys::Entity::find()
            .filter(publisher_keys::Column::Subject.is_in(subjects.iter().map(String::as_str)))
            .order_by_asc(publisher_keys::Column::Fingerprint)
            .all(self.db)
            .await?
            .into_iter()
            .map(to_key)
            .collect())
    }

    /// Removes the key `name` of `subject`; `false` when there is none.
    pub async fn remove(&self, subject: &str, name: &str) -> Result<bool> {
        Ok(publisher_keys::Entity::delete_many()
            .filter(publisher_keys::Column::Subject.eq(subject))
            .filter(publisher_keys::Column::Name.eq(name))
            .exec(self.db)
            .await?
            .rows_affected
            > 0)
    }
}
