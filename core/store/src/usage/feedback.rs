//! Citizens' ratings of services, kept per tenant, with the cross-tenant daily counts the
//! catalogue shows.

use guildhall_domain::{CouncilId, PluginName};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use time::OffsetDateTime;

use guildhall_domain::metering::day_of;

use super::{get_i64, get_string, scoped_query, stmt};
use crate::{Result, TenantScope, scoped};

/// A citizen's rating of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFeedback {
    /// The council whose service was rated.
    pub council: CouncilId,
    /// The plugin.
    pub plugin: PluginName,
    /// The version installed when the rating was given.
    pub version: String,
    /// 1 to 5.
    pub rating: u8,
    /// An optional comment, already length-checked.
    pub comment: Option<String>,
}

/// Ratings summed for one council and plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatingSummary {
    /// The council.
    pub council: String,
    /// The plugin.
    pub plugin: String,
    /// How many ratings.
    pub ratings: i64,
    /// Their sum.
    pub total: i64,
}

/// One tenant's citizen feedback.
#[derive(Debug)]
pub struct Feedback<'a> {
    db: &'a DatabaseConnection,
    scope: &'a TenantScope,
}

impl<'a> Feedback<'a> {
    pub(crate) fn new(db: &'a DatabaseConnection, scope: &'a TenantScope) -> Self {
        Self { db, scope }
    }

    /// Stores a rating and adds it to the plugin's cross-tenant satisfaction, in one
    /// transaction. Returns the feedback's id.
    pub async fn add(&self, feedback: &NewFeedback) -> Result<String> {
        let backend = self.db.get_database_backend();
        let tenant = self.scope.tenant().as_str();
        let now = OffsetDateTime::now_utc();
        let day = day_of(now);
        let id = uuid::Uuid::now_v7().to_string();
        let at = now
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| sea_orm::DbErr::Custom(e.to_string()))?;
        let txn = scoped::begin_write(self.db, tenant).await?;
        txn.execute_raw(stmt(
            backend,
            "INSERT INTO feedback (id, tenant_id, council_id, plugin, version, day, rating, \
             comment, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                id.clone().into(),
                tenant.into(),
                feedback.council.as_str().into(),
                feedback.plugin.as_str().into(),
                feedback.version.clone().into(),
                day.clone().into(),
                i32::from(feedback.rating).into(),
                feedback.comment.clone().into(),
                at.into(),
            ],
        ))
        .await?;
        txn.execute_raw(stmt(
            backend,
            "INSERT INTO plugin_ratings_daily (plugin, version, day, ratings, total) \
             VALUES (?, ?, ?, 1, ?) ON CONFLICT (plugin, version, day) DO UPDATE SET \
             ratings = plugin_ratings_daily.ratings + 1, \
             total = plugin_ratings_daily.total + excluded.total",
            vec![
                feedback.plugin.as_str().into(),
                feedback.version.clone().into(),
                day.into(),
                i64::from(feedback.rating).into(),
            ],
        ))
        .await?;
        txn.commit().await?;
        Ok(id)
    }

    /// Ratings from day `from` to day `to` (inclusive), per council and plugin.
    pub async fn summary(&self, from: &str, to: &str) -> Result<Vec<RatingSummary>> {
        let tenant = self.scope.tenant().as_str();
        let rows = scoped_query(
            self.db,
            tenant,
            "SELECT council_id, plugin, CAST(COUNT(*) AS BIGINT) AS ratings, \
                 CAST(SUM(rating) AS BIGINT) AS total FROM feedback \
                 WHERE tenant_id = ? AND day >= ? AND day <= ? \
                 GROUP BY council_id, plugin ORDER BY council_id, plugin",
            vec![tenant.into(), from.into(), to.into()],
        )
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RatingSummary {
                    council: get_string(row, "council_id")?,
                    plugin: get_string(row, "plugin")?,
                    ratings: get_i64(row, "ratings")?,
                    total: get_i64(row, "total")?,
                })
            })
            .collect()
    }

    /// How many ratings the tenant has stored (for tests and operators).
    pub async fn count(&self) -> Result<i64> {
        let tenant = self.scope.tenant().as_str();
        let rows = scoped_query(
            self.db,
            tenant,
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM feedback WHERE tenant_id = ?",
            vec![tenant.into()],
        )
        .await?;
        rows.first().map_or(Ok(0), |row| get_i64(row, "n"))
    }
}
