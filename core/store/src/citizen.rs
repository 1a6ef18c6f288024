//! Citizens' sessions with plugins: a few values a plugin keeps between the pages of a
//! journey, and the anti-forgery token its forms carry.
//!
//! A session belongs to one council of one tenant and one plugin, and every read and write
//! names all three with the hash of the cookie's secret, so a cookie presented anywhere
//! else finds nothing. The store keeps the hash, never the secret. Timeouts and the size
//! cap are the caller's policy; the store answers what is recorded.

use guildhall_domain::{CouncilId, PluginName};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait,
    QueryFilter,
};
use time::OffsetDateTime;

use crate::entities::citizen_sessions::{self, Column};
use crate::{Result, TenantScope, scoped};

/// Which session: the council, plugin and cookie hash within the repository's tenant.
#[derive(Debug, Clone, Copy)]
pub struct SessionKey<'a> {
    /// The council the session is with.
    pub council: &'a CouncilId,
    /// The plugin the session is with.
    pub plugin: &'a PluginName,
    /// The sha256 (hex) of the cookie's secret.
    pub id_hash: &'a str,
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CitizenSession {
    /// The anti-forgery token.
    pub csrf: String,
    /// The plugin's values, as the gateway encoded them.
    pub data: String,
    /// The size of the values, as the gateway counted it.
    pub bytes: i64,
    /// When it began.
    pub created_at: OffsetDateTime,
    /// When it was last used.
    pub last_seen_at: OffsetDateTime,
    /// Its absolute end.
    pub expires_at: OffsetDateTime,
}

/// The citizens' sessions of one tenant.
#[derive(Debug, Clone, Copy)]
pub struct CitizenSessions<'a> {
    db: &'a DatabaseConnection,
    scope: &'a TenantScope,
}

impl<'a> CitizenSessions<'a> {
    pub(crate) fn new(db: &'a DatabaseConnection, scope: &'a TenantScope) -> Self {
        Self { db, scope }
    }

    fn tenant(&self) -> &str {
        self.scope.tenant().as_str()
    }

    fn matching(&self, key: SessionKey<'_>) -> Condition {
        Condition::all()
            .add(Column::IdHash.eq(key.id_hash))
            .add(Column::TenantId.eq(self.tenant()))
            .add(Column::CouncilId.eq(key.council.as_str()))
            .add(Column::Plugin.eq(key.plugin.as_str()))
    }

    /// Records a new, empty session ending at `expires_at` at the latest.
    pub async fn create(
        &self,
        key: SessionKey<'_>,
        csrf: &str,
        expires_at: OffsetDateTime,
    ) -> Result<()> {
        let now = OffsetDateTime::now_utc();
        let txn = scoped::begin_write(self.db, self.tenant()).await?;
        citizen_sessions::ActiveModel {
            id_hash: Set(key.id_hash.to_string()),
            tenant_id: Set(self.tenant().to_string()),
            council_id: Set(key.council.to_string()),
            plugin: Set(key.plugin.to_string()),
            csrf: Set(csrf.to_string()),
            data: Set("{}".to_string()),
            bytes: Set(0),
            created_at: Set(now),
            last_seen_at: Set(now),
            expires_at: Set(expires_at),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// The session `key` names, if it is recorded for this council and plugin.
    pub async fn find(&self, key: SessionKey<'_>) -> Result<Option<CitizenSession>> {
        let txn = scoped::begin(self.db, self.tenant()).await?;
        let row = citizen_sessions::Entity::find()
            .filter(self.matching(key))
            .one(&txn)
            .await?;
        txn.commit().await?;
        Ok(row.map(|row| CitizenSession {
            csrf: row.csrf,
            data: row.data,
            bytes: row.bytes,
            created_at: row.created_at,
            last_seen_at: row.last_seen_at,
            expires_at: row.expires_at,
        }))
    }

    /// Replaces the session's values and records it as used at `at`; `false` when the
    /// session is no longer recorded.
    pub async fn save(
        &self,
        key: SessionKey<'_>,
        data: &str,
        bytes: i64,
        at: OffsetDateTime,
    ) -> Result<bool> {
        let txn = scoped::begin_write(self.db, self.tenant()).await?;
        let updated = citizen_sessions::Entity::update_many()
            .col_expr(Column::Data, Expr::value(data))
            .col_expr(Column::Bytes, Expr::value(bytes))
            .col_expr(Column::LastSeenAt, Expr::value(at))
            .filter(self.matching(key))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(updated.rows_affected == 1)
    }

    /// Records that the session was used at `at`.
    pub async fn touch(&self, key: SessionKey<'_>, at: OffsetDateTime) -> Result<()> {
        let txn = scoped::begin_write(self.db, self.tenant()).await?;
        citizen_sessions::Entity::update_many()
            .col_expr(Column::LastSeenAt, Expr::value(at))
            .filter(self.matching(key))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Deletes the session.
    pub async fn end(&self, key: SessionKey<'_>) -> Result<()> {
        let txn = scoped::begin_write(self.db, self.tenant()).await?;
        citizen_sessions::Entity::delete_many()
            .filter(self.matching(key))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Deletes the tenant's sessions past their absolute end (`now`) or unused since
    /// `idle_since`; returns how many.
    pub async fn purge(&self, now: OffsetDateTime, idle_since: OffsetDateTime) -> Result<u64> {
        let txn = scoped::begin_write(self.db, self.tenant()).await?;
        let deleted = citizen_sessions::Entity::delete_many()
            .filter(Column::TenantId.eq(self.tenant()))
            .filter(
                Condition::any()
                    .add(Column::ExpiresAt.lte(now))
                    .add(Column::LastSeenAt.lt(idle_since)),
            )
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(deleted.rows_affected)
    }
}
