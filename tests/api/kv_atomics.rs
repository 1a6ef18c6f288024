//! Plugins' key-value store on both databases, through the store as the server uses it (the
//! server's role, under row-level security on PostgreSQL): each atomic operation, the
//! install's usage counter, and the quota under concurrent writers of every kind.

use std::collections::BTreeSet;

use guildhall_domain::{PluginName, TenantId};
use guildhall_store::{KvWriteError, Store, TenantScope};

use crate::helpers::TestApp;
use crate::on_both_databases;

on_both_databases!(
    each_atomic_operation,
    concurrent_increments_hand_out_each_number_once,
    concurrent_writers_of_every_kind_keep_the_quota_and_the_counter,
);

const ROOMY: u64 = 1 << 20;

async fn setup(app: &TestApp) -> (Store, TenantScope, PluginName) {
    app.create_example_tenants().await;
    let store = app.store().await;
    let scope = store
        .scope(&TenantId::parse("north-downs").unwrap())
        .await
        .unwrap()
        .unwrap();
    (store, scope, PluginName::parse("counter").unwrap())
}

/// The counter holds what the entries add up to.
async fn assert_counter_true(store: &Store, scope: &TenantScope, plugin: &PluginName) -> u64 {
    let kv = store.kv(scope, plugin);
    let (counted, summed) = (kv.usage().await.unwrap(), kv.stored_bytes().await.unwrap());
    assert_eq!(
        counted, summed,
        "the usage counter against the entries' sizes"
    );
    counted
}

async fn each_atomic_operation(app: TestApp) {
    let (store, scope, plugin) = setup(&app).await;
    let kv = store.kv(&scope, &plugin);

    // increment: a missing key counts from 0; the number is kept as decimal text.
    assert_eq!(kv.increment("n", 5, ROOMY).await.unwrap(), 5);
    assert_eq!(kv.increment("n", -7, ROOMY).await.unwrap(), -2);
    assert_eq!(kv.get("n").await.unwrap().as_deref(), Some(&b"-2"[..]));
    assert_eq!(assert_counter_true(&store, &scope, &plugin).await, 3);
    kv.set("n", b"41", ROOMY).await.unwrap();
    assert_eq!(kv.increment("n", 1, ROOMY).await.unwrap(), 42);
    // Not a number, or a sum out of range: refused, nothing changed.
    kv.set("text", b"forty-two", ROOMY).await.unwrap();
    assert!(matches!(
        kv.increment("text", 1, ROOMY).await,
        Err(KvWriteError::NotANumber(_))
    ));
    assert_eq!(
        kv.get("text").await.unwrap().as_deref(),
        Some(&b"forty-two"[..])
    );
    kv.set("max", i64::MAX.to_string().as_bytes(), ROOMY)
        .await
        .unwrap();
    assert!(matches!(
        kv.increment("max", 1, ROOMY).await,
        Err(KvWriteError::NotANumber(_))
    ));
    assert_eq!(kv.increment("max", 0, ROOMY).await.unwrap(), i64::MAX);
    assert_eq!(kv.increment("fresh", 1, ROOMY).await.unwrap(), 1);

    // compare-and-swap: `None` means only if absent; otherwise the exact bytes.
    assert!(kv.compare_and_swap("c", None, b"a", ROOMY).await.unwrap());
    assert!(!kv.compare_and_swap("c", None, b"b", ROOMY).await.unwrap());
    assert!(
        !kv.compare_and_swap("c", Some(b"x"), b"b", ROOMY)
            .await
            .unwrap()
    );
    assert_eq!(kv.get("c").await.unwrap().as_deref(), Some(&b"a"[..]));
    assert!(
        kv.compare_and_swap("c", Some(b"a"), b"bbb", ROOMY)
            .await
            .unwrap()
    );
    assert_eq!(kv.get("c").await.unwrap().as_deref(), Some(&b"bbb"[..]));
    assert!(
        !kv.compare_and_swap("absent", Some(b"a"), b"b", ROOMY)
            .await
            .unwrap()
    );
    assert_eq!(kv.get("absent").await.unwrap(), None);

    // set-if-absent: the first value stays.
    assert!(kv.set_if_absent("s", b"first", ROOMY).await.unwrap());
    assert!(!kv.set_if_absent("s", b"second", ROOMY).await.unwrap());
    assert_eq!(kv.get("s").await.unwrap().as_deref(), Some(&b"first"[..]));

    // Every write and delete moved the counter by what it changed.
    let before = assert_counter_true(&store, &scope, &plugin).await;
    assert!(kv.delete("c").await.unwrap());
    assert!(!kv.delete("c").await.unwrap());
    assert_eq!(
        assert_counter_true(&store, &scope, &plugin).await,
        before - 4
    );

    // The quota holds for the atomic operations too, and a refusal changes nothing.
    let used = kv.usage().await.unwrap();
    assert!(matches!(
        kv.set_if_absent("big", &[0; 64], used + 10).await,
        Err(KvWriteError::QuotaExceeded { .. })
    ));
    assert_eq!(kv.get("big").await.unwrap(), None);
    assert!(matches!(
        kv.compare_and_swap("s", Some(b"first"), &[0; 64], used + 10)
            .await,
        Err(KvWriteError::QuotaExceeded { .. })
    ));
    assert_eq!(kv.get("s").await.unwrap().as_deref(), Some(&b"first"[..]));
    assert!(matches!(
        kv.increment("new-counter", 1, used).await,
        Err(KvWriteError::QuotaExceeded { .. })
    ));
    // Shrinking is allowed over the quota.
    assert!(
        kv.compare_and_swap("s", Some(b"first"), b"f", 1)
            .await
            .unwrap()
    );
    assert_counter_true(&store, &scope, &plugin).await;

    // Another tenant's install of the same plugin has its own keys and counter.
    let other = store
        .scope(&TenantId::parse("the-marches").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .kv(&other, &plugin)
            .increment("n", 1, ROOMY)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.kv(&other, &plugin).usage().await.unwrap(), 2);
    assert_eq!(kv.get("n").await.unwrap().as_deref(), Some(&b"42"[..]));
}

async fn concurrent_increments_hand_out_each_number_once(app: TestApp) {
    let (store, scope, plugin) = setup(&app).await;
    const TASKS: i64 = 16;
    const EACH: i64 = 10;
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (store, scope, plugin) = (store.clone(), scope.clone(), plugin.clone());
            tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..EACH {
                    got.push(
                        store
                            .kv(&scope, &plugin)
                            .increment("ids", 1, ROOMY)
                            .await
                            .unwrap(),
                    );
                }
                got
            })
        })
        .collect();
    let mut all = BTreeSet::new();
    for task in tasks {
        for n in task.await.unwrap() {
            assert!(all.insert(n), "{n} handed out twice");
        }
    }
    assert_eq!(all, (1..=TASKS * EACH).collect::<BTreeSet<_>>());
    // Of racing first writes of one key exactly one wins.
    let racers: Vec<_> = (0..TASKS)
        .map(|i| {
            let (store, scope, plugin) = (store.clone(), scope.clone(), plugin.clone());
            tokio::spawn(async move {
                store
                    .kv(&scope, &plugin)
                    .set_if_absent("first", format!("{i}").as_bytes(), ROOMY)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for racer in racers {
        winners += usize::from(racer.await.unwrap());
    }
    assert_eq!(winners, 1);
    assert_counter_true(&store, &scope, &plugin).await;
}

async fn concurrent_writers_of_every_kind_keep_the_quota_and_the_counter(app: TestApp) {
    let (store, scope, plugin) = setup(&app).await;
    const QUOTA: u64 = 2_000;
    // Near the quota: 1,900 bytes in 19 entries of 100.
    for i in 0..19 {
        let key = format!("fill-{i:02}");
        let value = vec![b'v'; 100 - key.len()];
        store
            .kv(&scope, &plugin)
            .set(&key, &value, QUOTA)
            .await
            .unwrap();
    }
    // Forty writers of every kind each want 50 bytes more; room for two.
    let writers: Vec<_> = (0..40)
        .map(|i| {
            let (store, scope, plugin) = (store.clone(), scope.clone(), plugin.clone());
            tokio::spawn(async move {
                let kv = store.kv(&scope, &plugin);
                let key = format!("new-{i:02}");
                let value = vec![b'w'; 50 - key.len()];
                let written = match i % 4 {
                    0 => kv.set(&key, &value, QUOTA).await.map(|()| true),
                    1 => kv.set_if_absent(&key, &value, QUOTA).await,
                    2 => kv.compare_and_swap(&key, None, &value, QUOTA).await,
                    // A value grown in place: 50 bytes more in an existing entry.
                    _ => {
                        let fill = format!("fill-{:02}", i % 19);
                        let grown = vec![b'g'; 150 - fill.len()];
                        let current = kv.get(&fill).await.unwrap().unwrap();
                        kv.compare_and_swap(&fill, Some(&current), &grown, QUOTA)
                            .await
                    }
                };
                match written {
                    Ok(written) => written,
                    Err(KvWriteError::QuotaExceeded { .. }) => false,
                    Err(e) => panic!("unexpected error: {e}"),
                }
            })
        })
        .collect();
    let mut grew = 0;
    for writer in writers {
        grew += usize::from(writer.await.unwrap());
    }
    let used = assert_counter_true(&store, &scope, &plugin).await;
    assert!(
        used <= QUOTA,
        "{used} bytes stored under a {QUOTA}-byte quota"
    );
    assert_eq!(used, 1_900 + 50 * grew as u64);
    assert_eq!(grew, 2, "the quota fills exactly");
    // Increments of new counters race for the room a delete leaves.
    let kv = store.kv(&scope, &plugin);
    // 100 bytes, or 150 when a writer above grew it.
    let freed = "fill-00".len() + kv.get("fill-00").await.unwrap().unwrap().len();
    assert!(kv.delete("fill-00").await.unwrap());
    let counters: Vec<_> = (0..20)
        .map(|i| {
            let (store, scope, plugin) = (store.clone(), scope.clone(), plugin.clone());
            tokio::spawn(async move {
                // Key of 9 bytes and the value "1": 10 bytes each.
                let key = format!("count-{i:03}");
                match store.kv(&scope, &plugin).increment(&key, 1, QUOTA).await {
                    Ok(_) => true,
                    Err(KvWriteError::QuotaExceeded { .. }) => false,
                    Err(e) => panic!("unexpected error: {e}"),
                }
            })
        })
        .collect();
    let mut counted = 0;
    for counter in counters {
        counted += usize::from(counter.await.unwrap());
    }
    assert_eq!(counted, freed / 10);
    assert_eq!(assert_counter_true(&store, &scope, &plugin).await, QUOTA);
}
