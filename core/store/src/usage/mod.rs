//! Metered usage, citizens' feedback and the catalogue's adoption figures.
//!
//! Usage arrives in batches from each replica's in-memory meter. A batch carries an id,
//! recorded in `usage_batches` in the same transaction as its counts, so a batch that is
//! retried after an unclear failure is applied once. Counts are added with
//! `INSERT … ON CONFLICT … DO UPDATE SET n = n + excluded.n`, so replicas flushing the same
//! key at the same moment both count.
//!
//! The cross-tenant tables (`plugin_calls_daily`, `plugin_ratings_daily`,
//! `plugin_adoption`) hold counts by plugin and version and which tenants run a plugin;
//! [`Adoption`] reads them. Nothing else here reads across tenants.
//!
//! One repository per file: [`Usage`] (a tenant's metered counts, here), [`Feedback`]
//! (citizens' ratings), [`PlatformUsage`] (calls by plugin version across tenants) and
//! [`Adoption`] (which tenants run which plugin). The counts' vocabulary is
//! `guildhall_domain::metering`.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, QueryResult, Statement, Value};
use serde::Serialize;
use time::OffsetDateTime;

use guildhall_domain::metering::{COUNT_COLUMNS, UsageCounts, UsageDelta};

use crate::{Result, TenantScope, scoped};

mod adoption;
mod feedback;
mod platform;

pub use adoption::{Adoption, AdoptionFigures, AdoptionMap};
pub(crate) use adoption::{adoption_council_added, adoption_delete, adoption_put};
pub use feedback::{
    Comment, CommentCursor, CommentPage, Feedback, MAX_COMMENTS_PAGE, NewFeedback, RatingSummary,
};
pub use platform::PlatformUsage;

/// Builds a statement from SQL written with `?` placeholders, numbering them for
/// PostgreSQL.
pub(super) fn stmt(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = if backend == DbBackend::Postgres {
        let mut out = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for ch in sql.chars() {
            if ch == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(ch);
            }
        }
        out
    } else {
        sql.to_string()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Runs one read query in a transaction scoped to `tenant`; SQL as for [`stmt`].
pub(super) async fn scoped_query(
    db: &DatabaseConnection,
    tenant: &str,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<QueryResult>> {
    let txn = scoped::begin(db, tenant).await?;
    let rows = txn
        .query_all_raw(stmt(db.get_database_backend(), sql, values))
        .await?;
    txn.commit().await?;
    Ok(rows)
}

pub(super) fn get_i64(row: &QueryResult, column: &str) -> Result<i64> {
    Ok(row.try_get::<i64>("", column)?)
}

pub(super) fn get_string(row: &QueryResult, column: &str) -> Result<String> {
    Ok(row.try_get::<String>("", column)?)
}

/// Reads the count columns of a row.
pub(super) fn counts_from_row(row: &QueryResult) -> Result<UsageCounts> {
    let [
        calls,
        errors,
        wall_us,
        cpu_us,
        bytes_in,
        bytes_out,
        kv_bytes,
    ] = COUNT_COLUMNS.map(|c| get_i64(row, c));
    Ok(UsageCounts {
        calls: calls?,
        errors: errors?,
        wall_us: wall_us?,
        cpu_us: cpu_us?,
        bytes_in: bytes_in?,
        bytes_out: bytes_out?,
        kv_bytes: kv_bytes?,
    })
}

/// One stored usage row, summed over versions: one council, plugin and day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageRow {
    /// The UTC day.
    pub day: String,
    /// The council.
    pub council: String,
    /// The plugin.
    pub plugin: String,
    /// The counts.
    #[serde(flatten)]
    pub counts: UsageCounts,
}

/// One tenant's metered usage.
#[derive(Debug)]
pub struct Usage<'a> {
    db: &'a DatabaseConnection,
    scope: &'a TenantScope,
}

impl<'a> Usage<'a> {
    pub(crate) fn new(db: &'a DatabaseConnection, scope: &'a TenantScope) -> Self {
        Self { db, scope }
    }

    /// Adds a batch of counts once: `false` when a batch with this id was already
    /// applied (nothing is added again).
    pub async fn add(&self, batch: &str, deltas: &[UsageDelta]) -> Result<bool> {
        let backend = self.db.get_database_backend();
        let tenant = self.scope.tenant().as_str();
        let txn = scoped::begin_write(self.db, tenant).await?;
        // The tenant first, as a deletion takes it: a flush and a deletion queue. Counts of
        // a council deleted since the calls have nowhere to go.
        crate::claim::share_tenant(&txn, tenant).await?;
        let councils = crate::claim::share_councils(&txn, tenant).await?;
        if !claim_batch(&txn, &format!("{batch}:{tenant}")).await? {
            txn.rollback().await?;
            return Ok(false);
        }
        let sql = format!(
            "INSERT INTO usage_daily (tenant_id, day, council_id, plugin, version, {}) \
             VALUES (?, ?, ?, ?, ?, {}) \
             ON CONFLICT (tenant_id, day, council_id, plugin, version) DO UPDATE SET {}",
            COUNT_COLUMNS.join(", "),
            ["?"; 7].join(", "),
            COUNT_COLUMNS
                .map(|c| format!("{c} = usage_daily.{c} + excluded.{c}"))
                .join(", "),
        );
        for d in deltas.iter().filter(|d| councils.contains(&d.council)) {
            let mut values: Vec<Value> = vec![
                tenant.into(),
                d.day.clone().into(),
                d.council.clone().into(),
                d.plugin.clone().into(),
                d.version.clone().into(),
            ];
            values.extend(d.counts.values().map(Value::from));
            txn.execute_raw(stmt(backend, &sql, values)).await?;
        }
        txn.commit().await?;
        Ok(true)
    }

    /// Usage from day `from` to day `to` (inclusive, `YYYY-MM-DD`), one row per day,
    /// council and plugin, ordered that way.
    pub async fn rows(&self, from: &str, to: &str) -> Result<Vec<UsageRow>> {
        let tenant = self.scope.tenant().as_str();
        let sql = format!(
            "SELECT day, council_id, plugin, {} FROM usage_daily \
             WHERE tenant_id = ? AND day >= ? AND day <= ? \
             GROUP BY day, council_id, plugin ORDER BY day, council_id, plugin",
            COUNT_COLUMNS
                .map(|c| format!("CAST(SUM({c}) AS BIGINT) AS {c}"))
                .join(", "),
        );
        let rows = scoped_query(
            self.db,
            tenant,
            &sql,
            vec![tenant.into(), from.into(), to.into()],
        )
        .await?;
        rows.iter()
            .map(|row| {
                Ok(UsageRow {
                    day: get_string(row, "day")?,
                    council: get_string(row, "council_id")?,
                    plugin: get_string(row, "plugin")?,
                    counts: counts_from_row(row)?,
                })
            })
            .collect()
    }
}

/// Records a batch id; `false` when it was recorded before.
pub(super) async fn claim_batch<C: ConnectionTrait>(db: &C, id: &str) -> Result<bool> {
    let day = guildhall_domain::metering::day_of(OffsetDateTime::now_utc());
    let result = db
        .execute_raw(stmt(
            db.get_database_backend(),
            "INSERT INTO usage_batches (id, applied_day) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
            vec![id.into(), day.into()],
        ))
        .await?;
    Ok(result.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        let s = stmt(
            DbBackend::Postgres,
            "a = ? AND b = ?",
            vec![1.into(), 2.into()],
        );
        assert_eq!(s.sql, "a = $1 AND b = $2");
        let s = stmt(
            DbBackend::Sqlite,
            "a = ? AND b = ?",
            vec![1.into(), 2.into()],
        );
        assert_eq!(s.sql, "a = ? AND b = ?");
    }
}
