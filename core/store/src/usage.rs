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

use std::collections::BTreeMap;

use guildhall_domain::{CouncilId, PluginName};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, QueryResult, Statement, Value};
use serde::Serialize;
use time::OffsetDateTime;

use crate::{Result, TenantScope, scoped};

/// Builds a statement from SQL written with `?` placeholders, numbering them for
/// PostgreSQL.
fn stmt(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
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
async fn scoped_query(
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

fn get_i64(row: &QueryResult, column: &str) -> Result<i64> {
    Ok(row.try_get::<i64>("", column)?)
}

fn get_string(row: &QueryResult, column: &str) -> Result<String> {
    Ok(row.try_get::<String>("", column)?)
}

/// The metered counts of one key, as stored in `usage_daily` and added up in memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UsageCounts {
    /// Calls.
    pub calls: i64,
    /// Calls that failed on the platform's or the plugin's side (429 or 5xx).
    pub errors: i64,
    /// Wall time, microseconds.
    pub wall_us: i64,
    /// Time the plugin's code ran, microseconds.
    pub cpu_us: i64,
    /// Request body bytes.
    pub bytes_in: i64,
    /// Response body bytes.
    pub bytes_out: i64,
    /// Bytes written to the plugin's key-value store.
    pub kv_bytes: i64,
}

/// The columns of [`UsageCounts`], in field order.
const COUNT_COLUMNS: [&str; 7] = [
    "calls",
    "errors",
    "wall_us",
    "cpu_us",
    "bytes_in",
    "bytes_out",
    "kv_bytes",
];

impl UsageCounts {
    fn values(&self) -> [i64; 7] {
        [
            self.calls,
            self.errors,
            self.wall_us,
            self.cpu_us,
            self.bytes_in,
            self.bytes_out,
            self.kv_bytes,
        ]
    }

    fn from_row(row: &QueryResult) -> Result<Self> {
        let [
            calls,
            errors,
            wall_us,
            cpu_us,
            bytes_in,
            bytes_out,
            kv_bytes,
        ] = COUNT_COLUMNS.map(|c| get_i64(row, c));
        Ok(Self {
            calls: calls?,
            errors: errors?,
            wall_us: wall_us?,
            cpu_us: cpu_us?,
            bytes_in: bytes_in?,
            bytes_out: bytes_out?,
            kv_bytes: kv_bytes?,
        })
    }
}

impl std::ops::AddAssign for UsageCounts {
    fn add_assign(&mut self, other: Self) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.wall_us += other.wall_us;
        self.cpu_us += other.cpu_us;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.kv_bytes += other.kv_bytes;
    }
}

/// Counts to add for one council, plugin, version and day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageDelta {
    /// The council called.
    pub council: String,
    /// The plugin.
    pub plugin: String,
    /// The version that answered.
    pub version: String,
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// The counts to add.
    pub counts: UsageCounts,
}

/// Calls to add to one latency bucket of one plugin version on one day, across tenants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallsDelta {
    /// The plugin.
    pub plugin: String,
    /// The version.
    pub version: String,
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// The latency bucket's index.
    pub bucket: i32,
    /// Calls.
    pub calls: i64,
    /// Failed calls.
    pub errors: i64,
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
        for d in deltas {
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
                    counts: UsageCounts::from_row(row)?,
                })
            })
            .collect()
    }
}

/// Records a batch id; `false` when it was recorded before.
async fn claim_batch<C: ConnectionTrait>(db: &C, id: &str) -> Result<bool> {
    let day = crate::usage::day_of(OffsetDateTime::now_utc());
    let result = db
        .execute_raw(stmt(
            db.get_database_backend(),
            "INSERT INTO usage_batches (id, applied_day) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
            vec![id.into(), day.into()],
        ))
        .await?;
    Ok(result.rows_affected() == 1)
}

/// The UTC day of a moment, `YYYY-MM-DD`.
pub fn day_of(at: OffsetDateTime) -> String {
    let date = at.to_offset(time::UtcOffset::UTC).date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

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

/// Cross-tenant counts by plugin and version, written by the meter's flush.
#[derive(Debug)]
pub struct PlatformUsage<'a> {
    db: &'a DatabaseConnection,
}

impl<'a> PlatformUsage<'a> {
    pub(crate) fn new(db: &'a DatabaseConnection) -> Self {
        Self { db }
    }

    /// Adds a batch of call counts once; `false` when the batch was applied before.
    pub async fn add(&self, batch: &str, deltas: &[CallsDelta]) -> Result<bool> {
        let backend = self.db.get_database_backend();
        let txn = scoped::write(self.db).await?;
        if !claim_batch(&txn, &format!("{batch}:_platform")).await? {
            txn.rollback().await?;
            return Ok(false);
        }
        for d in deltas {
            txn.execute_raw(stmt(
                backend,
                "INSERT INTO plugin_calls_daily (plugin, version, day, bucket, calls, errors) \
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (plugin, version, day, bucket) \
                 DO UPDATE SET calls = plugin_calls_daily.calls + excluded.calls, \
                 errors = plugin_calls_daily.errors + excluded.errors",
                vec![
                    d.plugin.clone().into(),
                    d.version.clone().into(),
                    d.day.clone().into(),
                    d.bucket.into(),
                    d.calls.into(),
                    d.errors.into(),
                ],
            ))
            .await?;
        }
        // Batch ids only guard against retries; a week is far longer than any retry.
        let cutoff = day_of(OffsetDateTime::now_utc() - time::Duration::days(7));
        txn.execute_raw(stmt(
            backend,
            "DELETE FROM usage_batches WHERE applied_day < ?",
            vec![cutoff.into()],
        ))
        .await?;
        txn.commit().await?;
        Ok(true)
    }
}

/// Keeps `plugin_adoption` in step with an install, inside the install's transaction.
pub(crate) async fn adoption_put<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    plugin: &str,
    version: &str,
    councils: Option<usize>,
) -> Result<()> {
    let backend = db.get_database_backend();
    let count = match councils {
        Some(n) => n as i64,
        None => {
            let row = db
                .query_one_raw(stmt(
                    backend,
                    "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM councils WHERE tenant_id = ?",
                    vec![tenant.into()],
                ))
                .await?;
            row.map_or(Ok(0), |row| get_i64(&row, "n"))?
        }
    };
    db.execute_raw(stmt(
        backend,
        "INSERT INTO plugin_adoption (plugin, tenant_id, version, all_councils, councils) \
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (plugin, tenant_id) DO UPDATE SET \
         version = excluded.version, all_councils = excluded.all_councils, \
         councils = excluded.councils",
        vec![
            plugin.into(),
            tenant.into(),
            version.into(),
            councils.is_none().into(),
            count.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Removes a tenant's install from `plugin_adoption`.
pub(crate) async fn adoption_delete<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    plugin: &str,
) -> Result<()> {
    db.execute_raw(stmt(
        db.get_database_backend(),
        "DELETE FROM plugin_adoption WHERE tenant_id = ? AND plugin = ?",
        vec![tenant.into(), plugin.into()],
    ))
    .await?;
    Ok(())
}

/// A council joined a tenant: installs for all its councils now serve one more.
pub(crate) async fn adoption_council_added<C: ConnectionTrait>(db: &C, tenant: &str) -> Result<()> {
    db.execute_raw(stmt(
        db.get_database_backend(),
        "UPDATE plugin_adoption SET councils = councils + 1 WHERE tenant_id = ? AND all_councils",
        vec![tenant.into()],
    ))
    .await?;
    Ok(())
}

/// The upper bounds of the latency buckets, in milliseconds; the last bucket is
/// everything slower. Roughly 25% apart, so a p95 read from them is within a quarter.
pub const LATENCY_BOUNDS_MS: &[f64] = &[
    0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.5, 15.0, 20.0,
    25.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 125.0, 150.0, 200.0, 250.0, 300.0, 400.0, 500.0,
    600.0, 800.0, 1000.0, 1250.0, 1500.0, 2000.0, 2500.0, 3000.0, 4000.0, 5000.0, 7500.0, 10000.0,
    15000.0, 20000.0, 30000.0,
];

/// The bucket a latency falls in.
pub fn latency_bucket(ms: f64) -> i32 {
    LATENCY_BOUNDS_MS
        .iter()
        .position(|bound| ms <= *bound)
        .unwrap_or(LATENCY_BOUNDS_MS.len()) as i32
}

/// What the catalogue shows about one plugin version (or, with `version` empty, one
/// plugin across its versions).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AdoptionFigures {
    /// Tenants that run it.
    pub tenants: i64,
    /// Councils it serves across those tenants.
    pub councils: i64,
    /// Tenants that run it and agreed to be named.
    pub named_tenants: Vec<String>,
    /// Calls in the window.
    pub calls: i64,
    /// Share of those calls without a platform or plugin error; `None` without calls.
    pub success_rate: Option<f64>,
    /// 95th percentile latency in milliseconds (the upper bound of its bucket).
    pub p95_ms: Option<f64>,
    /// Mean citizen rating, 1 to 5.
    pub satisfaction: Option<f64>,
    /// How many ratings.
    pub ratings: i64,
}

#[derive(Default)]
struct Accumulator {
    tenants: std::collections::BTreeSet<String>,
    councils: i64,
    named: std::collections::BTreeSet<String>,
    buckets: BTreeMap<i32, (i64, i64)>,
    ratings: i64,
    total: i64,
}

impl Accumulator {
    fn finish(self) -> AdoptionFigures {
        let calls: i64 = self.buckets.values().map(|(c, _)| c).sum();
        let errors: i64 = self.buckets.values().map(|(_, e)| e).sum();
        let p95_ms = (calls > 0).then(|| {
            let target = (calls as f64 * 0.95).ceil() as i64;
            let mut seen = 0;
            for (bucket, (count, _)) in &self.buckets {
                seen += count;
                if seen >= target {
                    return LATENCY_BOUNDS_MS
                        .get(*bucket as usize)
                        .copied()
                        .unwrap_or(f64::INFINITY);
                }
            }
            f64::INFINITY
        });
        AdoptionFigures {
            tenants: self.tenants.len() as i64,
            councils: self.councils,
            named_tenants: self.named.into_iter().collect(),
            calls,
            success_rate: (calls > 0).then(|| (calls - errors) as f64 / calls as f64),
            p95_ms: p95_ms.filter(|p| p.is_finite()),
            satisfaction: (self.ratings > 0).then(|| self.total as f64 / self.ratings as f64),
            ratings: self.ratings,
        }
    }
}

/// Adoption of every plugin, keyed by plugin, then by version (`""` for the plugin as a
/// whole).
pub type AdoptionMap = BTreeMap<String, BTreeMap<String, AdoptionFigures>>;

/// The catalogue's adoption figures: shared counts across tenants, names only by consent.
#[derive(Debug)]
pub struct Adoption<'a> {
    db: &'a DatabaseConnection,
}

impl<'a> Adoption<'a> {
    pub(crate) fn new(db: &'a DatabaseConnection) -> Self {
        Self { db }
    }

    /// Figures for every plugin (or one), with calls, latency and ratings from day
    /// `since` on.
    pub async fn figures(&self, plugin: Option<&str>, since: &str) -> Result<AdoptionMap> {
        let backend = self.db.get_database_backend();
        let filter = |sql: &str| match plugin {
            Some(_) => format!("{sql} AND a.plugin = ?"),
            None => sql.to_string(),
        };
        let with_plugin = |mut values: Vec<Value>| {
            if let Some(p) = plugin {
                values.push(p.into());
            }
            values
        };
        let mut acc: BTreeMap<(String, String), Accumulator> = BTreeMap::new();
        let installs = self
            .db
            .query_all_raw(stmt(
                backend,
                &filter(
                    "SELECT a.plugin, a.version, a.tenant_id, a.councils, t.share_adoption \
                     FROM plugin_adoption a JOIN tenants t ON t.id = a.tenant_id WHERE 1 = 1",
                ),
                with_plugin(vec![]),
            ))
            .await?;
        for row in &installs {
            let plugin = get_string(row, "plugin")?;
            let version = get_string(row, "version")?;
            let tenant = get_string(row, "tenant_id")?;
            let councils = get_i64(row, "councils")?;
            let named: bool = row.try_get("", "share_adoption")?;
            for key in [version.clone(), String::new()] {
                let a = acc.entry((plugin.clone(), key)).or_default();
                a.tenants.insert(tenant.clone());
                a.councils += councils;
                if named {
                    a.named.insert(tenant.clone());
                }
            }
        }
        let calls = self
            .db
            .query_all_raw(stmt(
                backend,
                &(filter(
                    "SELECT a.plugin, a.version, a.bucket, CAST(SUM(a.calls) AS BIGINT) AS calls, \
                     CAST(SUM(a.errors) AS BIGINT) AS errors FROM plugin_calls_daily a \
                     WHERE a.day >= ?",
                ) + " GROUP BY a.plugin, a.version, a.bucket"),
                with_plugin(vec![since.into()]),
            ))
            .await?;
        for row in &calls {
            let plugin = get_string(row, "plugin")?;
            let version = get_string(row, "version")?;
            let bucket: i32 = row.try_get("", "bucket")?;
            let (c, e) = (get_i64(row, "calls")?, get_i64(row, "errors")?);
            for key in [version.clone(), String::new()] {
                let slot = acc
                    .entry((plugin.clone(), key))
                    .or_default()
                    .buckets
                    .entry(bucket)
                    .or_default();
                slot.0 += c;
                slot.1 += e;
            }
        }
        let ratings = self
            .db
            .query_all_raw(stmt(
                backend,
                &(filter(
                    "SELECT a.plugin, a.version, CAST(SUM(a.ratings) AS BIGINT) AS ratings, \
                     CAST(SUM(a.total) AS BIGINT) AS total FROM plugin_ratings_daily a \
                     WHERE a.day >= ?",
                ) + " GROUP BY a.plugin, a.version"),
                with_plugin(vec![since.into()]),
            ))
            .await?;
        for row in &ratings {
            let plugin = get_string(row, "plugin")?;
            let version = get_string(row, "version")?;
            let (n, total) = (get_i64(row, "ratings")?, get_i64(row, "total")?);
            for key in [version.clone(), String::new()] {
                let a = acc.entry((plugin.clone(), key)).or_default();
                a.ratings += n;
                a.total += total;
            }
        }
        let mut out = AdoptionMap::new();
        for ((plugin, version), a) in acc {
            out.entry(plugin).or_default().insert(version, a.finish());
        }
        Ok(out)
    }
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

    #[test]
    fn latency_buckets_and_p95() {
        assert_eq!(latency_bucket(0.1), 0);
        assert_eq!(latency_bucket(1.0), 3);
        assert_eq!(latency_bucket(1.1), 4);
        assert_eq!(latency_bucket(1e9), LATENCY_BOUNDS_MS.len() as i32);
        let mut a = Accumulator::default();
        // 94 fast calls and 6 slow ones: p95 lands in the slow bucket.
        a.buckets.insert(latency_bucket(0.9), (94, 0));
        a.buckets.insert(latency_bucket(90.0), (6, 3));
        let f = a.finish();
        assert_eq!(f.calls, 100);
        assert_eq!(f.p95_ms, Some(100.0));
        assert_eq!(f.success_rate, Some(0.97));
    }

    #[test]
    fn days_are_utc_dates() {
        let at = time::macros::datetime!(2026-11-27 23:30 -02:00);
        assert_eq!(day_of(at), "2026-11-28");
    }
}
