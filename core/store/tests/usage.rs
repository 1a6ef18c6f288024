//! Metered usage on a real SQLite database: batches apply once, replicas add up.

use guildhall_domain::TenantId;
use guildhall_domain::metering::{CallsDelta, UsageCounts, UsageDelta};
use guildhall_domain::tenant::TenantSpec;
use guildhall_store::Store;

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite_file(&dir.path().join("g.db"))
        .await
        .unwrap();
    let spec = TenantSpec::from_toml(
        "id = \"north-downs\"\nname = \"North Downs\"\n[[councils]]\nid = \"tandridge\"\nname = \"Tandridge\"\n",
    )
    .unwrap();
    store.tenants().create(&spec).await.unwrap();
    (dir, store)
}

fn delta(calls: i64) -> UsageDelta {
    UsageDelta {
        council: "tandridge".into(),
        plugin: "hello".into(),
        version: "0.1.0".into(),
        day: "2026-11-27".into(),
        counts: UsageCounts {
            calls,
            errors: 1,
            wall_us: 1_000 * calls,
            cpu_us: 100 * calls,
            bytes_in: 10,
            bytes_out: 20,
            kv_bytes: 0,
        },
    }
}

#[tokio::test]
async fn a_retried_batch_counts_once_and_replicas_add_up() {
    let (_dir, store) = store().await;
    let scope = store
        .scope(&TenantId::parse("north-downs").unwrap())
        .await
        .unwrap()
        .unwrap();
    let usage = store.usage(&scope);
    assert!(usage.add("batch-1", &[delta(3)]).await.unwrap());
    // The same batch again (a retry after an unclear failure): nothing added.
    assert!(!usage.add("batch-1", &[delta(3)]).await.unwrap());
    // Another replica's batch for the same key adds to it.
    assert!(usage.add("batch-2", &[delta(4)]).await.unwrap());
    let rows = usage.rows("2026-11-01", "2026-11-30").await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].counts.calls, 7);
    assert_eq!(rows[0].counts.errors, 2);
    assert_eq!(rows[0].counts.wall_us, 7_000);
    assert_eq!(rows[0].counts.bytes_in, 20);
    // Outside the period: nothing.
    assert!(
        usage
            .rows("2026-12-01", "2026-12-31")
            .await
            .unwrap()
            .is_empty()
    );

    let platform = store.platform_usage();
    let calls = CallsDelta {
        plugin: "hello".into(),
        version: "0.1.0".into(),
        day: "2026-11-27".into(),
        bucket: 3,
        calls: 5,
        errors: 1,
    };
    assert!(
        platform
            .add("batch-1", std::slice::from_ref(&calls))
            .await
            .unwrap()
    );
    assert!(!platform.add("batch-1", &[calls]).await.unwrap());
    let figures = store
        .adoption()
        .figures(Some("hello"), "2026-11-01")
        .await
        .unwrap();
    assert_eq!(figures["hello"]["0.1.0"].calls, 5);
    assert_eq!(figures["hello"]["0.1.0"].success_rate, Some(0.8));
}

/// Writers that read first (a key-value write checks the quota) queue on SQLite's busy
/// timeout instead of failing with "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_that_read_first_all_succeed() {
    let (_dir, store) = store().await;
    let scope = store
        .scope(&TenantId::parse("north-downs").unwrap())
        .await
        .unwrap()
        .unwrap();
    let plugin = guildhall_domain::PluginName::parse("counter").unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let (store, scope, plugin) = (store.clone(), scope.clone(), plugin.clone());
            tokio::spawn(async move {
                store
                    .kv(&scope, &plugin)
                    .set(&format!("key-{i:02}"), b"value", 1 << 20)
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().expect("every write succeeds");
    }
    assert_eq!(
        store.kv(&scope, &plugin).usage().await.unwrap(),
        64 * (6 + 5)
    );
}
