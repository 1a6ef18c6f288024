//! Deleting a whole tenant, or one council of a tenant, with everything stored for it, in
//! one transaction.
//!
//! A deletion takes the tenant's row first, as every writer of the tenant's configuration
//! does, so it queues behind writes in flight and writes that come later find the tenant
//! gone ([`crate::Error::TenantGone`], or the foreign key to the tenant). It bumps the
//! platform revision in the same transaction, so the gateway stops serving what it removed
//! from its next request, and the access revision when it removed role bindings.
//!
//! **Architecture Invariant:** a tenant's audit chain is deleted only together with the
//! tenant, in the transaction that deletes the tenant's row. On PostgreSQL the server's
//! role has no DELETE on `audit_log`; it calls `guildhall_forget_audit_chain`, which the
//! table owner made (migration `000016`) and which refuses the platform's chain and the
//! chain of any tenant whose row still exists.

use std::collections::BTreeMap;

use guildhall_domain::{CouncilId, Subject};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement, Value};
use serde::Serialize;
use time::OffsetDateTime;

use crate::archive::Lifecycle;
use crate::plugin_data::placeholders;
use crate::{Result, TenantScope, claim, scoped};

/// What a deletion removed: the rows of each table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Deleted {
    /// The tenant deleted, or whose council was.
    pub tenant: String,
    /// The council deleted, when one council was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub council: Option<String>,
    /// Rows removed, by table (tables with none are left out).
    pub rows: BTreeMap<String, u64>,
    /// Installs that served this council among others and now serve the others (council
    /// deletion only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub installs_narrowed: Vec<String>,
}

impl Deleted {
    fn count(&mut self, table: &str, rows: u64) {
        if rows > 0 {
            *self.rows.entry(table.to_string()).or_default() += rows;
        }
    }
}

async fn execute(txn: &DatabaseTransaction, sql: &str, values: Vec<Value>) -> Result<u64> {
    let backend = txn.get_database_backend();
    Ok(txn
        .execute_raw(Statement::from_sql_and_values(
            backend,
            placeholders(backend, sql),
            values,
        ))
        .await?
        .rows_affected())
}

async fn query(
    txn: &DatabaseTransaction,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<sea_orm::QueryResult>> {
    let backend = txn.get_database_backend();
    Ok(txn
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            placeholders(backend, sql),
            values,
        ))
        .await?)
}

impl Lifecycle<'_> {
    /// Deletes the tenant and everything stored for it: the rows of every tenant table,
    /// its audit chain, its rows in the adoption figures and its role bindings and
    /// policies. [`crate::Error::TenantGone`] when a concurrent deletion got there first.
    pub async fn delete_tenant(&self, scope: &TenantScope) -> Result<Deleted> {
        let tenant = scope.tenant();
        let t = tenant.as_str();
        let txn = scoped::begin_write(self.db, t).await?;
        claim::lock_tenant(&txn, tenant).await?;
        let mut deleted = Deleted {
            tenant: t.to_string(),
            ..Deleted::default()
        };
        for table in guildhall_migrations::TENANT_TABLES {
            if matches!(*table, "audit_log" | "audit_heads") {
                continue;
            }
            let n = execute(
                &txn,
                &format!("DELETE FROM {table} WHERE tenant_id = ?"),
                vec![t.into()],
            )
            .await?;
            deleted.count(table, n);
        }
        let n = execute(
            &txn,
            "DELETE FROM plugin_adoption WHERE tenant_id = ?",
            vec![t.into()],
        )
        .await?;
        deleted.count("plugin_adoption", n);
        let n = execute(
            &txn,
            "DELETE FROM casbin_rules WHERE (ptype = 'g' AND v2 = ?) OR (ptype = 'p' AND v1 = ?)",
            vec![t.into(), t.into()],
        )
        .await?;
        deleted.count("casbin_rules", n);
        if n > 0 {
            crate::identity::bump_authz_revision(&txn).await?;
        }
        let n = execute(&txn, "DELETE FROM tenants WHERE id = ?", vec![t.into()]).await?;
        deleted.count("tenants", n);
        // Only now, with the tenant's row gone, may its chain go.
        let chain = if txn.get_database_backend() == DbBackend::Postgres {
            let row = txn
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT guildhall_forget_audit_chain($1) AS removed",
                    [t.into()],
                ))
                .await?;
            row.map(|r| r.try_get::<i64>("", "removed"))
                .transpose()?
                .unwrap_or(0)
                .max(0) as u64
        } else {
            let head = query(
                &txn,
                "SELECT hash FROM audit_heads WHERE tenant_id = ?",
                vec![t.into()],
            )
            .await?
            .first()
            .map(|row| row.try_get::<String>("", "hash"))
            .transpose()?
            .unwrap_or_default();
            let n = execute(
                &txn,
                "DELETE FROM audit_log WHERE tenant_id = ?",
                vec![t.into()],
            )
            .await?;
            execute(
                &txn,
                "DELETE FROM audit_heads WHERE tenant_id = ?",
                vec![t.into()],
            )
            .await?;
            execute(
                &txn,
                "INSERT INTO forgotten_audit_chains \
                 (tenant_id, entries, head_hash, forgotten_at_ms) VALUES (?, ?, ?, ?)",
                vec![
                    t.into(),
                    (n as i64).into(),
                    head.into(),
                    crate::millis::now_ms().into(),
                ],
            )
            .await?;
            n
        };
        deleted.count("audit_log", chain);
        let bumped = crate::catalogue::bump_revision(&txn, tenant).await?;
        txn.commit().await?;
        self.revision.committed(Some(bumped));
        Ok(deleted)
    }

    /// Deletes one council of the tenant and what is stored for it: the key-value entries
    /// under `council/<council>/` (the part of each install's data that is the council's,
    /// as the SDK keeps it), its events, settings, secrets, schedule runs, residents'
    /// sessions, usage and feedback, the members and tokens limited to it (with their role
    /// bindings), and the council from each install's list; an install that served only
    /// this council is removed. The tenant's audit chain keeps its entries. `None` when the
    /// tenant has no such council.
    pub async fn delete_council(
        &self,
        scope: &TenantScope,
        council: &CouncilId,
    ) -> Result<Option<Deleted>> {
        let tenant = scope.tenant();
        let t = tenant.as_str();
        let c = council.as_str();
        let txn = scoped::begin_write(self.db, t).await?;
        claim::lock_tenant(&txn, tenant).await?;
        // The council's row first: writes of its rows that hold it (ratings, usage) finish
        // before anything is deleted, and later ones find it gone.
        let backend = txn.get_database_backend();
        let lock = if backend == DbBackend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let found = query(
            &txn,
            &format!("SELECT id FROM councils WHERE tenant_id = ? AND id = ?{lock}"),
            vec![t.into(), c.into()],
        )
        .await?;
        if found.is_empty() {
            return Ok(None);
        }
        let mut deleted = Deleted {
            tenant: t.to_string(),
            council: Some(c.to_string()),
            ..Deleted::default()
        };
        // The council's part of every install's key-value data, and its usage.
        let from = format!("council/{c}/").into_bytes();
        let mut until = from.clone();
        *until.last_mut().expect("not empty") += 1;
        // What was deleted is what the counters lose: the sizes come back from the DELETE
        // itself, so a write committed between a sum and the delete cannot leave phantom
        // usage behind.
        let removed = query(
            &txn,
            "DELETE FROM kv_entries WHERE tenant_id = ? AND key >= ? AND key < ? \
             RETURNING plugin, size",
            vec![t.into(), from.into(), until.into()],
        )
        .await?;
        deleted.count("kv_entries", removed.len() as u64);
        let mut sizes: std::collections::BTreeMap<String, i64> = Default::default();
        for row in &removed {
            let plugin: String = row.try_get("", "plugin")?;
            *sizes.entry(plugin).or_default() += row.try_get::<i64>("", "size")?;
        }
        for (plugin, bytes) in sizes {
            execute(
                &txn,
                "UPDATE kv_usage SET bytes = bytes - ? WHERE tenant_id = ? AND plugin = ?",
                vec![bytes.into(), t.into(), plugin.into()],
            )
            .await?;
        }
        for (table, column) in [
            ("plugin_events", "council_id"),
            ("council_settings", "council"),
            ("install_secrets", "council"),
            ("schedule_runs", "council"),
            ("citizen_sessions", "council_id"),
            ("usage_daily", "council_id"),
            ("feedback", "council_id"),
        ] {
            let n = execute(
                &txn,
                &format!("DELETE FROM {table} WHERE tenant_id = ? AND {column} = ?"),
                vec![t.into(), c.into()],
            )
            .await?;
            deleted.count(table, n);
        }
        // Members and tokens limited to the council, with their role bindings.
        let mut subjects: Vec<String> = Vec::new();
        for row in query(
            &txn,
            "SELECT subject FROM members WHERE tenant_id = ? AND council = ?",
            vec![t.into(), c.into()],
        )
        .await?
        {
            subjects.push(row.try_get("", "subject")?);
        }
        for row in query(
            &txn,
            "SELECT id FROM tokens WHERE tenant_id = ? AND council = ?",
            vec![t.into(), c.into()],
        )
        .await?
        {
            let id: String = row.try_get("", "id")?;
            subjects.push(Subject::token(&id).as_str().to_string());
        }
        for (table, n) in [
            (
                "members",
                execute(
                    &txn,
                    "DELETE FROM members WHERE tenant_id = ? AND council = ?",
                    vec![t.into(), c.into()],
                )
                .await?,
            ),
            (
                "tokens",
                execute(
                    &txn,
                    "DELETE FROM tokens WHERE tenant_id = ? AND council = ?",
                    vec![t.into(), c.into()],
                )
                .await?,
            ),
        ] {
            deleted.count(table, n);
        }
        let mut bindings = 0;
        for subject in &subjects {
            bindings += execute(
                &txn,
                "DELETE FROM casbin_rules WHERE ptype = 'g' AND v0 = ? AND v2 = ?",
                vec![subject.clone().into(), t.into()],
            )
            .await?;
        }
        deleted.count("casbin_rules", bindings);
        if bindings > 0 {
            crate::identity::bump_authz_revision(&txn).await?;
        }
        // The council leaves every install's list; an install it was alone in goes.
        let installs = query(
            &txn,
            "SELECT plugin, version, councils FROM installs \
             WHERE tenant_id = ? AND all_councils = ?",
            vec![t.into(), false.into()],
        )
        .await?;
        for install in &installs {
            let plugin: String = install.try_get("", "plugin")?;
            let version: String = install.try_get("", "version")?;
            let text: String = install.try_get("", "councils")?;
            let mut list: Vec<String> = serde_json::from_str(&text).map_err(|e| {
                sea_orm::DbErr::Custom(format!("corrupt install row of {plugin}: {e}"))
            })?;
            let before = list.len();
            list.retain(|x| x != c);
            if list.len() == before {
                continue;
            }
            if list.is_empty() {
                let n = execute(
                    &txn,
                    "DELETE FROM installs WHERE tenant_id = ? AND plugin = ?",
                    vec![t.into(), plugin.clone().into()],
                )
                .await?;
                deleted.count("installs", n);
                crate::usage::adoption_delete(&txn, t, &plugin).await?;
            } else {
                let text = serde_json::to_string(&list)
                    .map_err(|e| sea_orm::DbErr::Custom(e.to_string()))?;
                execute(
                    &txn,
                    "UPDATE installs SET councils = ?, updated_at = ? \
                     WHERE tenant_id = ? AND plugin = ?",
                    vec![
                        text.into(),
                        OffsetDateTime::now_utc().into(),
                        t.into(),
                        plugin.clone().into(),
                    ],
                )
                .await?;
                crate::usage::adoption_put(&txn, t, &plugin, &version, Some(list.len())).await?;
                deleted.installs_narrowed.push(plugin);
            }
        }
        let n = execute(
            &txn,
            "DELETE FROM councils WHERE tenant_id = ? AND id = ?",
            vec![t.into(), c.into()],
        )
        .await?;
        deleted.count("councils", n);
        // Installs for every council now serve one fewer.
        execute(
            &txn,
            "UPDATE plugin_adoption SET councils = councils - 1 \
             WHERE tenant_id = ? AND all_councils = ? AND councils > 0",
            vec![t.into(), true.into()],
        )
        .await?;
        let bumped = crate::catalogue::bump_revision(&txn, tenant).await?;
        txn.commit().await?;
        self.revision.committed(Some(bumped));
        Ok(Some(deleted))
    }
}
