//! Telemetry: metered usage per tenant, council, plugin, version and day; citizens'
//! feedback; and the cross-tenant aggregates the catalogue's adoption figures read.
//!
//! `usage_daily` and `feedback` are tenant tables (row-level security on PostgreSQL).
//! `plugin_calls_daily`, `plugin_ratings_daily` and `plugin_adoption` are the only tables
//! that aggregate across tenants: counts by plugin and version, and which tenants run a
//! plugin (a tenant's name is shown only when it opts in with `share_adoption`).
//! `usage_batches` records which metering batches were applied, so a retried flush never
//! counts twice.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The tenant tables this migration creates.
const TENANT_TABLES: &[&str] = &["usage_daily", "feedback"];

const CREATE: &str = "
CREATE TABLE usage_daily (
    tenant_id VARCHAR(48) NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    day VARCHAR(10) NOT NULL,
    council_id VARCHAR(48) NOT NULL,
    plugin VARCHAR(48) NOT NULL,
    version VARCHAR(64) NOT NULL,
    calls BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    wall_us BIGINT NOT NULL,
    cpu_us BIGINT NOT NULL,
    bytes_in BIGINT NOT NULL,
    bytes_out BIGINT NOT NULL,
    kv_bytes BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, day, council_id, plugin, version)
);
CREATE TABLE usage_batches (
    id VARCHAR(100) NOT NULL PRIMARY KEY,
    applied_day VARCHAR(10) NOT NULL
);
CREATE TABLE plugin_calls_daily (
    plugin VARCHAR(48) NOT NULL,
    version VARCHAR(64) NOT NULL,
    day VARCHAR(10) NOT NULL,
    bucket INTEGER NOT NULL,
    calls BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    PRIMARY KEY (plugin, version, day, bucket)
);
CREATE TABLE feedback (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    tenant_id VARCHAR(48) NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    council_id VARCHAR(48) NOT NULL,
    plugin VARCHAR(48) NOT NULL,
    version VARCHAR(64) NOT NULL,
    day VARCHAR(10) NOT NULL,
    rating INTEGER NOT NULL,
    comment TEXT,
    created_at VARCHAR(40) NOT NULL
);
CREATE INDEX ix_feedback_tenant_day ON feedback (tenant_id, day);
CREATE TABLE plugin_ratings_daily (
    plugin VARCHAR(48) NOT NULL,
    version VARCHAR(64) NOT NULL,
    day VARCHAR(10) NOT NULL,
    ratings BIGINT NOT NULL,
    total BIGINT NOT NULL,
    PRIMARY KEY (plugin, version, day)
);
CREATE TABLE plugin_adoption (
    plugin VARCHAR(48) NOT NULL,
    tenant_id VARCHAR(48) NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    version VARCHAR(64) NOT NULL,
    all_councils BOOLEAN NOT NULL,
    councils BIGINT NOT NULL,
    PRIMARY KEY (plugin, tenant_id)
);
";

const BACKFILL: &str = "
INSERT INTO plugin_adoption (plugin, tenant_id, version, all_councils, councils)
SELECT i.plugin, i.tenant_id, i.version, i.all_councils,
       CASE WHEN i.all_councils
            THEN (SELECT COUNT(*) FROM councils c WHERE c.tenant_id = i.tenant_id)
            ELSE json_array_length(JSON_TEXT) END
FROM installs i;
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let postgres = db.get_database_backend() == DbBackend::Postgres;
        db.execute_unprepared(CREATE).await?;
        if postgres {
            // The owner is subject to the forced policies too; lift them for the copy.
            db.execute_unprepared(
                "ALTER TABLE installs NO FORCE ROW LEVEL SECURITY;
                 ALTER TABLE councils NO FORCE ROW LEVEL SECURITY;",
            )
            .await?;
            db.execute_unprepared(&BACKFILL.replace("JSON_TEXT", "i.councils::json"))
                .await?;
            db.execute_unprepared(
                "ALTER TABLE installs FORCE ROW LEVEL SECURITY;
                 ALTER TABLE councils FORCE ROW LEVEL SECURITY;",
            )
            .await?;
            for table in TENANT_TABLES {
                db.execute_unprepared(&format!(
                    "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
                     ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
                     CREATE POLICY tenant_isolation ON {table}
                         USING (tenant_id = current_setting('guildhall.tenant_id', true))
                         WITH CHECK (tenant_id = current_setting('guildhall.tenant_id', true));"
                ))
                .await?;
            }
        } else {
            db.execute_unprepared(&BACKFILL.replace("JSON_TEXT", "i.councils"))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "DROP TABLE plugin_adoption;
                 DROP TABLE plugin_ratings_daily;
                 DROP TABLE feedback;
                 DROP TABLE plugin_calls_daily;
                 DROP TABLE usage_batches;
                 DROP TABLE usage_daily;",
            )
            .await?;
        Ok(())
    }
}
