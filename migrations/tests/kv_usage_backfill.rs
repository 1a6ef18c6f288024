//! Migration 000012 on a SQLite database holding key-value data: each install's usage
//! counter starts at the sum of its entries' sizes.

use guildhall_migrations::{Migrator, MigratorTrait};
use sea_orm_migration::sea_orm::{ConnectionTrait, Database, Statement};

#[tokio::test]
async fn the_counter_starts_at_what_each_install_stores() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("g.db").display());
    let db = Database::connect(&url).await.unwrap();
    // The schema as released before the counter.
    Migrator::up(&db, Some(11)).await.unwrap();
    db.execute_unprepared(
        "PRAGMA foreign_keys = OFF;
         INSERT INTO kv_entries (tenant_id, plugin, key, value, size, updated_at) VALUES
           ('north-downs', 'report-a-problem', X'61', X'6262', 3, '2026-12-01T00:00:00Z'),
           ('north-downs', 'report-a-problem', X'6363', X'646464', 5, '2026-12-01T00:00:00Z'),
           ('north-downs', 'bin-collections', X'65', X'66', 2, '2026-12-01T00:00:00Z'),
           ('the-marches', 'report-a-problem', X'67', X'68', 2, '2026-12-01T00:00:00Z');",
    )
    .await
    .unwrap();
    Migrator::up(&db, None).await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT tenant_id, plugin, bytes FROM kv_usage ORDER BY tenant_id, plugin",
        ))
        .await
        .unwrap();
    let counters: Vec<(String, String, i64)> = rows
        .iter()
        .map(|row| {
            (
                row.try_get("", "tenant_id").unwrap(),
                row.try_get("", "plugin").unwrap(),
                row.try_get("", "bytes").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counters,
        [
            ("north-downs".into(), "bin-collections".into(), 2),
            ("north-downs".into(), "report-a-problem".into(), 8),
            ("the-marches".into(), "report-a-problem".into(), 2),
        ]
    );
}
