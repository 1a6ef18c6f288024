//! Guildhall's storage: sea-orm over SQLite or PostgreSQL.
//!
//! This is the only crate that speaks SQL. Other crates get a [`Store`] and call typed
//! repositories on it.
//!
//! **Architecture Invariant:** a request for tenant T can only touch rows of T. Repositories
//! for tenant data take a [`TenantScope`], and the only way to obtain one is
//! [`Store::scope`], which checks that the tenant exists; request resolution does that once
//! per request. Queries across all tenants live in [`Tenants`], which is operator code.

mod catalogue;
mod entities;
mod installs;
mod plugin_data;
mod tenants;
mod url;

use std::time::Duration;

use guildhall_domain::{PluginName, TenantId};
use guildhall_migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};

pub use catalogue::{Catalogue, NewVersion, PluginRecord, PublishError, Published, VersionRecord};
pub use installs::{AllCouncils, InstallCouncils, InstallRecord, Installs};
pub use plugin_data::{EventRecord, Events, Kv, KvWriteError, NewEvent};
pub use tenants::{Applied, CouncilRecord, Councils, TenantRecord, Tenants};
pub use url::DatabaseUrl;

/// Errors from the store. Variants name the tenant or object they are about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database rejected or failed a statement.
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    /// The configured database URL is not one Guildhall can use.
    #[error("unsupported database url {url}: {reason}")]
    BadUrl {
        /// The URL with any password hidden.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// Preparing the database's folder failed.
    #[error("cannot create the database folder {path}: {source}")]
    CreateDir {
        /// The folder.
        path: String,
        /// What the file system said.
        source: std::io::Error,
    },
    /// A tenant with this id already exists.
    #[error("tenant {0} already exists")]
    TenantExists(TenantId),
    /// The same tenant id was given twice in one apply.
    #[error("tenant {0} is declared more than once")]
    DuplicateTenant(TenantId),
}

/// Shorthand for results whose error is the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Connection pool settings.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// The most connections the pool opens.
    pub max_connections: u32,
    /// How long to wait for a free connection before failing the request.
    pub acquire_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Which migrations are applied and which are waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Names of the applied migrations, oldest first.
    pub applied: Vec<String>,
    /// Names of the pending migrations, oldest first.
    pub pending: Vec<String>,
    /// Migrations recorded in the database that this binary does not know: a newer
    /// release applied them.
    pub newer: Vec<String>,
}

/// Proof that a tenant exists, required by every repository over tenant data.
///
/// Only [`Store::scope`] builds one, so holding a `TenantScope` means the tenant was
/// resolved from the request (or the command line) and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantScope {
    tenant: TenantId,
}

impl TenantScope {
    /// The tenant this scope is for.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }
}

/// A handle on Guildhall's database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// Connects to SQLite (`sqlite://…`) or PostgreSQL (`postgres://…`).
    ///
    /// For a SQLite file the parent folder is created if it is missing, and the database is
    /// switched to write-ahead logging so that readers do not block the writer.
    pub async fn connect(url: &DatabaseUrl, pool: &PoolOptions) -> Result<Self> {
        let backend = url.backend()?;
        if backend == DbBackend::Sqlite {
            url.create_sqlite_parent_dir()?;
        }
        let mut options = ConnectOptions::new(url.expose());
        options
            .max_connections(pool.max_connections)
            .acquire_timeout(pool.acquire_timeout)
            .connect_timeout(pool.acquire_timeout)
            .sqlx_logging(false);
        if backend == DbBackend::Sqlite {
            options.map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
        }
        let db = Database::connect(options).await?;
        tracing::debug!(database = %url, "connected");
        Ok(Self { db })
    }

    /// Which database engine this store talks to.
    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Applies every pending migration and returns their names.
    ///
    /// A database that already holds migrations this binary does not know (a newer release
    /// migrated it) is left alone when nothing of ours is pending, so the previous release
    /// keeps running during a rolling upgrade.
    pub async fn migrate(&self) -> Result<Vec<String>> {
        let status = self.migration_status().await?;
        if status.pending.is_empty() {
            if !status.newer.is_empty() {
                tracing::warn!(
                    newer = %status.newer.join(", "),
                    "the database has migrations from a newer release; running on it unchanged"
                );
            }
            return Ok(Vec::new());
        }
        Migrator::up(&self.db, None).await?;
        Ok(status.pending)
    }

    /// Which migrations are applied and pending, without changing the database.
    pub async fn migration_status(&self) -> Result<MigrationStatus> {
        use sea_orm::EntityTrait;
        use sea_orm_migration::seaql_migrations;
        let manager = sea_orm_migration::SchemaManager::new(&self.db);
        let recorded: std::collections::BTreeSet<String> =
            if manager.has_table("seaql_migrations").await? {
                seaql_migrations::Entity::find()
                    .all(&self.db)
                    .await?
                    .into_iter()
                    .map(|m| m.version)
                    .collect()
            } else {
                Default::default()
            };
        let mut status = MigrationStatus {
            applied: Vec::new(),
            pending: Vec::new(),
            newer: Vec::new(),
        };
        let known: Vec<String> = Migrator::migrations()
            .iter()
            .map(|m| m.name().to_string())
            .collect();
        for name in &known {
            if recorded.contains(name) {
                status.applied.push(name.clone());
            } else {
                status.pending.push(name.clone());
            }
        }
        status.newer = recorded
            .into_iter()
            .filter(|r| !known.contains(r))
            .collect();
        Ok(status)
    }

    /// Checks that the database answers a trivial query.
    pub async fn ping(&self) -> Result<()> {
        self.db.ping().await?;
        Ok(())
    }

    /// Resolves a tenant id into a [`TenantScope`], or `None` when there is no such tenant.
    pub async fn scope(&self, tenant: &TenantId) -> Result<Option<TenantScope>> {
        use sea_orm::EntityTrait;
        let found = entities::tenants::Entity::find_by_id(tenant.as_str().to_string())
            .one(&self.db)
            .await?;
        Ok(found.map(|_| TenantScope {
            tenant: tenant.clone(),
        }))
    }

    /// Operator-level access to all tenants.
    pub fn tenants(&self) -> Tenants<'_> {
        Tenants::new(&self.db)
    }

    /// The councils of one tenant.
    pub fn councils<'a>(&'a self, scope: &'a TenantScope) -> Councils<'a> {
        Councils::new(&self.db, scope)
    }

    /// One plugin's key-value data in one tenant.
    pub fn kv<'a>(&'a self, scope: &'a TenantScope, plugin: &'a PluginName) -> Kv<'a> {
        Kv::new(&self.db, scope, plugin)
    }

    /// The plugin events of one tenant.
    pub fn events<'a>(&'a self, scope: &'a TenantScope) -> Events<'a> {
        Events::new(&self.db, scope)
    }

    /// The shared catalogue of plugins.
    pub fn catalogue(&self) -> Catalogue<'_> {
        Catalogue::new(&self.db)
    }

    /// One tenant's installs.
    pub fn installs<'a>(&'a self, scope: &'a TenantScope) -> Installs<'a> {
        Installs::new(&self.db, scope)
    }

    /// The platform revision: it goes up whenever an install or a council changes, so
    /// replicas polling it know when to drop cached installs.
    pub async fn revision(&self) -> Result<i64> {
        use sea_orm::EntityTrait;
        Ok(entities::platform_revision::Entity::find_by_id(1)
            .one(&self.db)
            .await?
            .map_or(0, |row| row.revision))
    }

    /// Closes every pooled connection.
    pub async fn close(self) -> Result<()> {
        self.db.close().await?;
        Ok(())
    }

    /// Runs a raw statement; for tests and tooling that inspect the database directly.
    #[doc(hidden)]
    pub fn connection(&self) -> &impl ConnectionTrait {
        &self.db
    }
}
