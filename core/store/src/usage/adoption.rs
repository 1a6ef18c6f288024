//! Which tenants run which plugin (`plugin_adoption`, kept in step inside each install's
//! transaction) and the figures the catalogue shows from it.

use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, DatabaseConnection, Value};
use serde::Serialize;

use guildhall_domain::metering::LATENCY_BOUNDS_MS;

use super::{get_i64, get_string, stmt};
use crate::Result;

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
pub(super) struct Accumulator {
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
    fn p95_from_latency_buckets() {
        use guildhall_domain::metering::latency_bucket;
        let mut a = Accumulator::default();
        // 94 fast calls and 6 slow ones: p95 lands in the slow bucket.
        a.buckets.insert(latency_bucket(0.9), (94, 0));
        a.buckets.insert(latency_bucket(90.0), (6, 3));
        let f = a.finish();
        assert_eq!(f.calls, 100);
        assert_eq!(f.p95_ms, Some(100.0));
        assert_eq!(f.success_rate, Some(0.97));
    }
}
