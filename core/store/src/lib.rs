//! Guildhall's storage: sea-orm over SQLite or PostgreSQL.
//!
//! This is the only crate that speaks SQL. Other crates get a [`Store`] and call typed
//! repositories on it.
//!
//! **Architecture Invariant:** a request for tenant T can only touch rows of T. Repositories
//! for tenant data take a [`TenantScope`], and the way to obtain one is [`Store::scope`],
//! which checks that the tenant exists; request resolution does that once per request.
//! Code that was handed the id of a tenant resolved that way (the plugin runtime's ports,
//! which receive ids from the gateway) rebuilds the scope with
//! [`TenantScope::already_checked`] rather than checking again. Queries across all tenants
//! live in [`Tenants`], which is operator code.

mod archive;
mod artefacts;
mod audit;
mod catalogue;
mod citizen;
mod claim;
mod console;
mod deletion;
mod entities;
mod identity;
mod installs;
mod millis;
mod owners;
mod plugin_data;
mod retention;
mod schedules;
mod schema_lock;
mod scoped;
mod secrets;
mod settings;
mod subjects;
mod tenants;
mod url;
mod usage;

use std::time::Duration;

use guildhall_domain::{PluginName, TenantId};
use guildhall_migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};

pub use archive::{
    ArchiveColumn, ArchiveRow, ArchiveTable, ColumnKind, Cursor, Import, LEFT_OUT, Lifecycle,
    LogoRow, Page, SecretName, Snapshot, TABLES,
};
pub use artefacts::{ArtefactKey, SharedArtefacts};
pub use audit::{Audit, AuditRecord, Broken, ForgottenChain, NewAuditEntry, Verification};
pub use catalogue::{
    Catalogue, NewVersion, PluginRecord, PublishError, Published, Signed, VersionRecord,
};
pub use citizen::{CitizenSession, CitizenSessions, SessionKey};
pub use console::{ConsoleSessions, NewSession, SessionRecord, SignInRecord};
pub use deletion::Deleted;
pub use identity::{MemberRecord, Members, NewToken, RuleRow, Rules, TokenRecord, Tokens};
pub use installs::{AllCouncils, InstallCouncils, InstallRecord, Installs};
pub use owners::{
    Actor, CLI_OPERATOR, KeyError, KeyRecord, NewKey, OwnerError, OwnerRecord, Owners,
    PublisherKeys,
};
pub use plugin_data::{EventMatch, EventRecord, Events, Kv, KvWriteError, MAX_TTL, NewEvent};
pub use retention::{InstallRetention, MaintenanceRuns, Removed, Retention};
pub use schedules::{NewRun, RunRecord, RunState, ScheduleRuns};
pub use schema_lock::SchemaLock;
pub use secrets::{Keyring, Rotation, SecretError, SecretRecord, Secrets, ValueError};
pub use settings::{CouncilSettings, SettingsError};
pub use subjects::{NewSubjectRequest, SubjectRequestRecord, SubjectRequests, hash_identifier};
pub use tenants::{Applied, CouncilRecord, Councils, TenantRecord, Tenants};
pub use url::DatabaseUrl;
pub use usage::{
    Adoption, AdoptionFigures, AdoptionMap, Comment, CommentCursor, CommentPage, Feedback,
    MAX_COMMENTS_PAGE, NewFeedback, PlatformUsage, RatingSummary, Usage, UsageRow,
};

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
    /// A brand names a logo by a path the platform does not serve.
    #[error("no logo is stored at {0}")]
    UnknownLogo(String),
    /// An install names a council the tenant no longer has (deleted while the install was
    /// checked).
    #[error("no council {0} in this tenant")]
    UnknownCouncil(guildhall_domain::CouncilId),
    /// The council was deleted while the request was on its way.
    #[error("no council {0}")]
    CouncilGone(guildhall_domain::CouncilId),
    /// The tenant was deleted while the request was on its way: its row is gone, so its
    /// data can neither be read nor written.
    #[error("tenant {0} no longer exists")]
    TenantGone(TenantId),
    /// A council's overrides of an install's settings do not fit the version being
    /// installed.
    #[error("council {council}'s settings do not fit this version")]
    InvalidOverrides {
        /// The council.
        council: String,
        /// Each setting refused, and why.
        fields: Vec<(String, String)>,
    },
}

impl Error {
    /// Whether the write failed because its tenant was deleted meanwhile: the tenant's row
    /// was gone when it was locked, or a new row met the foreign key to it. Every foreign
    /// key from a tenant table names `tenants`, and the catalogue's rows it also names are
    /// never deleted, so a violated foreign key means the tenant went away.
    pub fn is_tenant_gone(&self) -> bool {
        match self {
            Error::TenantGone(_) => true,
            Error::Database(e) => matches!(
                e.sql_err(),
                Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_))
            ),
            _ => false,
        }
    }

    /// Whether the database could not serve the statement now but may in a moment: no pooled
    /// connection came free in time, the connection was lost (PostgreSQL restarting), the
    /// server refused new connections, or a statement was cancelled, rolled back as a
    /// deadlock victim or failed to serialise. The request can be retried as it was.
    pub fn is_transient(&self) -> bool {
        use sea_orm::RuntimeErr;
        let Error::Database(db) = self else {
            return false;
        };
        let runtime = match db {
            DbErr::ConnectionAcquire(_) => return true,
            DbErr::Conn(e) | DbErr::Exec(e) | DbErr::Query(e) => e,
            _ => return false,
        };
        let RuntimeErr::SqlxError(e) = runtime else {
            return false;
        };
        use sea_orm::sqlx::Error as Sqlx;
        match e.as_ref() {
            Sqlx::Io(_)
            | Sqlx::PoolTimedOut
            | Sqlx::PoolClosed
            | Sqlx::WorkerCrashed
            | Sqlx::Protocol(_)
            | Sqlx::Tls(_) => true,
            Sqlx::Database(e) => e.code().is_some_and(|code| {
                // SQLSTATE classes 08 (connection), 53 (resources), 57 (operator
                // intervention: shutdown, cancel), and 40001/40P01 (serialisation,
                // deadlock). SQLite's busy and locked codes are 5 and 6.
                code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57")
                    || code == "40001"
                    || code == "40P01"
                    || code == "5"
                    || code == "6"
            }),
            _ => false,
        }
    }
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
    /// PostgreSQL's `statement_timeout` on every connection; zero for none.
    pub statement_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::ZERO,
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

/// Proof that a tenant was checked to exist, required by every repository over tenant data.
///
/// [`Store::scope`] builds one after reading the tenant's row, and
/// [`TenantScope::already_checked`] for an id that went through it earlier, so holding a
/// `TenantScope` means the tenant was resolved from the request (or the command line) and
/// checked. It says the tenant existed then, not that it still does: after a deletion its
/// repositories find no rows, and writes fail on the tenant's foreign key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantScope {
    tenant: TenantId,
}

impl TenantScope {
    /// The scope of a tenant the caller has already checked exists through
    /// [`Store::scope`], for code that is handed the id rather than the scope: the plugin
    /// runtime's ports receive the id of the tenant whose install the gateway resolved.
    /// Never call it with an id taken from input that was not resolved that way.
    pub fn already_checked(tenant: TenantId) -> Self {
        Self { tenant }
    }

    /// The tenant this scope is for.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }
}

/// A handle on Guildhall's database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    revision: Revision,
}

/// The revisions this process has committed, shared by every clone of a [`Store`]. Every
/// write that changes what the gateway serves (installs, councils' settings, councils,
/// tenants) bumps the platform revision in its transaction, logs it as its tenant's
/// revision (a row of `tenant_revisions`) and, once committed, records it here for its
/// tenant, so the gateway of this process sees the change on its next request without being
/// told, and drops only that tenant's cached installs; other processes see it by polling
/// [`Store::revision`] and reading [`Store::tenant_revisions_between`].
#[derive(Debug, Clone, Default)]
pub struct Revision(std::sync::Arc<Committed>);

#[derive(Debug, Default)]
struct Committed {
    latest: std::sync::atomic::AtomicI64,
    /// The highest revision committed for each tenant, until [`Revision::take_tenants`]
    /// hands them over: at most one entry per tenant.
    tenants: std::sync::Mutex<std::collections::HashMap<TenantId, i64>>,
}

/// A revision bumped for one tenant inside a transaction, recorded with
/// [`Revision::committed`] once the transaction has committed.
#[derive(Debug)]
pub(crate) struct Bump {
    tenant: TenantId,
    revision: i64,
}

impl Bump {
    pub(crate) fn new(tenant: TenantId, revision: i64) -> Self {
        Self { tenant, revision }
    }
}

/// A row of the revision log (`tenant_revisions`), from
/// [`Store::tenant_revisions_between`]: a change committed at `revision` to `tenant`'s
/// installs, councils or settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRevision {
    /// The platform revision the change committed at.
    pub revision: i64,
    /// The tenant changed, or the stored id when it is not a valid one.
    pub tenant: std::result::Result<TenantId, String>,
}

impl Revision {
    /// The highest revision this process committed (0 before any).
    pub fn latest(&self) -> i64 {
        self.0.latest.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The highest revision this process committed for `tenant` since the last
    /// [`Revision::take_tenants`]; `None` when none.
    pub fn tenant(&self, tenant: &TenantId) -> Option<i64> {
        self.tenants().get(tenant).copied()
    }

    /// Hands over (and forgets) the revisions committed per tenant, for a gateway that
    /// keeps what it needs of them itself; later commits are recorded afresh.
    pub fn take_tenants(&self) -> std::collections::HashMap<TenantId, i64> {
        std::mem::take(&mut *self.tenants())
    }

    /// Records the bumps of a transaction that has committed.
    pub(crate) fn committed(&self, bumps: impl IntoIterator<Item = Bump>) {
        let mut bumps = bumps.into_iter().peekable();
        if bumps.peek().is_none() {
            return;
        }
        let mut tenants = self.tenants();
        for bump in bumps {
            let known = tenants.entry(bump.tenant).or_insert(bump.revision);
            *known = (*known).max(bump.revision);
            self.0
                .latest
                .fetch_max(bump.revision, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn tenants(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<TenantId, i64>> {
        // A panic while the map was held leaves it whole (every change is one insert).
        self.0
            .tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
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
        if backend == DbBackend::Postgres && !pool.statement_timeout.is_zero() {
            let millis = pool.statement_timeout.as_millis().to_string();
            options.map_sqlx_postgres_opts(move |o| {
                o.options([("statement_timeout", millis.as_str())])
            });
        }
        let db = Database::connect(options).await?;
        tracing::debug!(database = %url, "connected");
        Ok(Self {
            db,
            revision: Revision::default(),
        })
    }

    /// Opens (creating it if missing) a SQLite database file at `path` with every
    /// migration applied: the embedded database of tools, benchmarks and tests.
    pub async fn open_sqlite_file(path: &std::path::Path) -> Result<Self> {
        let url = DatabaseUrl::new(format!("sqlite://{}?mode=rwc", path.display()));
        let store = Self::connect(&url, &PoolOptions::default()).await?;
        store.migrate().await?;
        Ok(store)
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
        Tenants::new(&self.db, &self.revision)
    }

    /// The revisions this process committed, overall and per tenant.
    pub fn committed_revision(&self) -> &Revision {
        &self.revision
    }

    /// The councils of one tenant.
    pub fn councils<'a>(&'a self, scope: &'a TenantScope) -> Councils<'a> {
        Councils::new(&self.db, scope, &self.revision)
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

    /// Who owns each plugin name.
    pub fn owners(&self) -> Owners<'_> {
        Owners::new(&self.db)
    }

    /// Signing keys registered to identities.
    pub fn publisher_keys(&self) -> PublisherKeys<'_> {
        PublisherKeys::new(&self.db)
    }

    /// One tenant's installs.
    pub fn installs<'a>(&'a self, scope: &'a TenantScope) -> Installs<'a> {
        Installs::new(&self.db, scope, &self.revision)
    }

    /// The console's sessions and sign-ins in progress.
    pub fn console_sessions(&self) -> ConsoleSessions<'_> {
        ConsoleSessions::new(&self.db)
    }

    /// API tokens (authentication looks them up before any tenant is known).
    pub fn tokens(&self) -> Tokens<'_> {
        Tokens::new(&self.db)
    }

    /// One tenant's member bindings.
    pub fn members<'a>(&'a self, scope: &'a TenantScope) -> Members<'a> {
        Members::new(&self.db, scope)
    }

    /// The access-control rules casbin loads.
    pub fn rules(&self) -> Rules<'_> {
        Rules::new(&self.db)
    }

    /// One tenant's audit chain.
    pub fn audit(&self, scope: &TenantScope) -> Audit<'_> {
        Audit::tenant(&self.db, scope)
    }

    /// The platform's own audit chain (publishing, tenant creation, global tokens).
    pub fn platform_audit(&self) -> Audit<'_> {
        Audit::platform(&self.db)
    }

    /// One tenant's metered usage.
    pub fn usage<'a>(&'a self, scope: &'a TenantScope) -> Usage<'a> {
        Usage::new(&self.db, scope)
    }

    /// One tenant's citizen feedback.
    pub fn feedback<'a>(&'a self, scope: &'a TenantScope) -> Feedback<'a> {
        Feedback::new(&self.db, scope)
    }

    /// The install secrets of one tenant.
    pub fn secrets<'a>(&'a self, scope: &'a TenantScope) -> Secrets<'a> {
        Secrets::new(&self.db, scope)
    }

    /// Each council's overrides of one tenant's installs' settings.
    pub fn council_settings<'a>(&'a self, scope: &'a TenantScope) -> CouncilSettings<'a> {
        CouncilSettings::new(&self.db, scope, &self.revision)
    }

    /// One tenant's retention: installs' settings and removing data past its time.
    pub fn retention<'a>(&'a self, scope: &'a TenantScope) -> Retention<'a> {
        Retention::new(&self.db, scope)
    }

    /// Compiled components shared between replicas, authenticated with `key`.
    pub fn shared_artefacts<'a>(&'a self, key: &'a ArtefactKey) -> SharedArtefacts<'a> {
        SharedArtefacts::new(&self.db, key)
    }

    /// Claims of maintenance jobs' runs, across replicas.
    pub fn maintenance_runs(&self) -> MaintenanceRuns<'_> {
        MaintenanceRuns::new(&self.db)
    }

    /// One tenant's subject access and erasure requests.
    pub fn subject_requests<'a>(&'a self, scope: &'a TenantScope) -> SubjectRequests<'a> {
        SubjectRequests::new(&self.db, scope)
    }

    /// The runs of one tenant's plugins' schedules.
    pub fn schedule_runs<'a>(&'a self, scope: &'a TenantScope) -> ScheduleRuns<'a> {
        ScheduleRuns::new(&self.db, scope)
    }

    /// Citizens' sessions with the plugins of one tenant.
    pub fn citizen_sessions<'a>(&'a self, scope: &'a TenantScope) -> CitizenSessions<'a> {
        CitizenSessions::new(&self.db, scope)
    }

    /// Every tenant audit chain deleted with its tenant, oldest first.
    pub async fn forgotten_chains(&self) -> Result<Vec<ForgottenChain>> {
        audit::forgotten_chains(&self.db).await
    }

    /// Cross-tenant call counts by plugin version (written by the meter).
    pub fn platform_usage(&self) -> PlatformUsage<'_> {
        PlatformUsage::new(&self.db)
    }

    /// The catalogue's adoption figures.
    pub fn adoption(&self) -> Adoption<'_> {
        Adoption::new(&self.db)
    }

    /// Connections the pool holds now: `(open, idle)`.
    pub fn pool_connections(&self) -> (u32, u32) {
        match self.db.get_database_backend() {
            DbBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle() as u32)
            }
            _ => {
                let pool = self.db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle() as u32)
            }
        }
    }

    /// Exporting, importing and deleting whole tenants and councils (operator code).
    pub fn lifecycle(&self) -> Lifecycle<'_> {
        Lifecycle::new(&self.db, &self.revision)
    }

    /// The platform revision: it goes up whenever an install or a council changes, so
    /// replicas polling it know when to look for the tenants that changed.
    pub async fn revision(&self) -> Result<i64> {
        use sea_orm::EntityTrait;
        Ok(entities::platform_revision::Entity::find_by_id(1)
            .one(&self.db)
            .await?
            .map_or(0, |row| row.revision))
    }

    /// The revision log's rows with `after < revision <= upto`, in revision order: each
    /// change's platform revision and the tenant it changed.
    ///
    /// Read with `upto` a platform revision read before this call, the rows are all
    /// committed (bumps hold the platform row until they commit), one per revision, so
    /// there are `upto - after` of them unless a revision has none: bumped by a release that
    /// kept no log, or pruned ([`Store::prune_tenant_revisions`]). A row whose tenant id is
    /// not valid is returned too (its [`TenantRevision::tenant`] is `Err`), never an error.
    pub async fn tenant_revisions_between(
        &self,
        after: i64,
        upto: i64,
    ) -> Result<Vec<TenantRevision>> {
        use entities::tenant_revisions::Column;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        Ok(entities::tenant_revisions::Entity::find()
            .filter(Column::Revision.gt(after))
            .filter(Column::Revision.lte(upto))
            .order_by_asc(Column::Revision)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| TenantRevision {
                revision: row.revision,
                tenant: TenantId::parse(row.tenant_id.as_str()).map_err(|_| row.tenant_id),
            })
            .collect())
    }

    /// Deletes the revision log's rows below `below` and returns how many went. A range of
    /// the primary key, so cheap; replicas may run it at once (a row another deletes is
    /// skipped once that commits, and the result is the same whoever deletes what).
    pub async fn prune_tenant_revisions(&self, below: i64) -> Result<u64> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        Ok(entities::tenant_revisions::Entity::delete_many()
            .filter(entities::tenant_revisions::Column::Revision.lt(below))
            .exec(&self.db)
            .await?
            .rows_affected)
    }

    /// Grants the application role what the server needs and nothing more: read and
    /// write on the tables, but only read and append on the audit log and only read on
    /// the migration history. PostgreSQL only; run with the owner's connection after
    /// migrating.
    pub async fn grant_application_role(&self, role: &str) -> Result<()> {
        if self.backend() != DbBackend::Postgres {
            return Ok(());
        }
        let role = quote_ident(role);
        let schema: String = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                DbBackend::Postgres,
                "SELECT current_schema()",
            ))
            .await?
            .ok_or_else(|| DbErr::Custom("no current schema".into()))?
            .try_get_by_index(0)?;
        let schema = quote_ident(&schema);
        // Deleting a tenant removes its audit chain through this function only (see the
        // migration that adds it); the role gets no DELETE on the audit log itself.
        let forget = guildhall_migrations::FORGET_AUDIT_CHAIN;
        self.db
            .execute_unprepared(&format!(
                "GRANT USAGE ON SCHEMA {schema} TO {role};
                 GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role};
                 GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role};
                 REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM {role};
                 REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON seaql_migrations FROM {role};
                 REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON forgotten_audit_chains FROM {role};
                 GRANT EXECUTE ON FUNCTION {forget} TO {role};"
            ))
            .await?;
        Ok(())
    }

    /// On PostgreSQL, the role this store connects as; `None` on SQLite.
    pub async fn current_role(&self) -> Result<Option<String>> {
        if self.backend() != DbBackend::Postgres {
            return Ok(None);
        }
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                DbBackend::Postgres,
                "SELECT current_user::text",
            ))
            .await?
            .ok_or_else(|| DbErr::Custom("no current user".into()))?;
        Ok(Some(row.try_get_by_index(0)?))
    }

    /// On PostgreSQL, whether this connection's role escapes row-level security (a
    /// superuser or a role with BYPASSRLS); `None` on SQLite.
    pub async fn bypasses_row_security(&self) -> Result<Option<bool>> {
        if self.backend() != DbBackend::Postgres {
            return Ok(None);
        }
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                DbBackend::Postgres,
                "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user",
            ))
            .await?
            .ok_or_else(|| DbErr::Custom("current role not found".into()))?;
        Ok(Some(row.try_get_by_index(0)?))
    }

    /// Closes every pooled connection.
    pub async fn close(self) -> Result<()> {
        self.db.close().await?;
        Ok(())
    }

    /// The tenant tables that row-level security guards on PostgreSQL.
    pub fn tenant_tables() -> &'static [&'static str] {
        guildhall_migrations::TENANT_TABLES
    }

    /// Begins a raw transaction; for tests that look behind the repositories.
    #[doc(hidden)]
    pub async fn connection_begin(&self) -> Result<sea_orm::DatabaseTransaction> {
        use sea_orm::TransactionTrait;
        Ok(self.db.begin().await?)
    }

    /// Runs a raw statement; for tests and tooling that inspect the database directly.
    #[doc(hidden)]
    pub fn connection(&self) -> &impl ConnectionTrait {
        &self.db
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
