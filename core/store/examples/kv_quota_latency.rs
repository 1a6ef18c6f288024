//! How long one tenant's `kv.set` takes while another tenant's install is near its quota and
//! four writers of that install loop, on a SQLite file (the figure issue #16 measured).
//!
//! `cargo run --release -p guildhall-store --example kv_quota_latency [ROWS]`: fills the busy
//! install with ROWS entries (default 15,000) of 4 KiB, just under a 64 MiB quota, then
//! times 100 sets of a quiet tenant, first alone and then while the four writers overwrite
//! the busy install's entries.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use guildhall_domain::tenant::TenantSpec;
use guildhall_domain::{PluginName, TenantId};
use guildhall_store::{Store, TenantScope};

const QUOTA: u64 = 64 << 20;
const VALUE: usize = 4096;
const SAMPLES: usize = 100;

async fn tenant(store: &Store, id: &str) -> TenantScope {
    let spec = TenantSpec::from_toml(&format!(
        "id = \"{id}\"\nname = \"{id}\"\n[[councils]]\nid = \"c1\"\nname = \"C1\"\n"
    ))
    .unwrap();
    store.tenants().create(&spec).await.unwrap();
    store
        .scope(&TenantId::parse(id).unwrap())
        .await
        .unwrap()
        .unwrap()
}

/// Times `SAMPLES` sets of the quiet tenant and prints their median, 90th percentile and
/// maximum.
async fn time_sets(store: &Store, scope: &TenantScope, plugin: &PluginName, label: &str) {
    let mut times = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        let started = Instant::now();
        store
            .kv(scope, plugin)
            .set(&format!("key-{i}"), b"a small value", QUOTA)
            .await
            .unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label}: median {:.2} ms, p90 {:.2} ms, max {:.2} ms ({SAMPLES} sets)",
        ms(times[SAMPLES / 2]),
        ms(times[SAMPLES * 9 / 10]),
        ms(times[SAMPLES - 1]),
    );
}

#[tokio::main]
async fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("ROWS is a number"))
        .unwrap_or(15_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite_file(&dir.path().join("g.db"))
        .await
        .unwrap();
    let busy = tenant(&store, "busy").await;
    let quiet = tenant(&store, "quiet").await;
    let plugin = PluginName::parse("reports").unwrap();

    let started = Instant::now();
    let value = vec![b'v'; VALUE];
    for i in 0..rows {
        store
            .kv(&busy, &plugin)
            .set(&format!("row-{i:06}"), &value, QUOTA)
            .await
            .unwrap();
    }
    println!(
        "filled the busy install with {rows} entries ({} MiB) in {:.1} s",
        store.kv(&busy, &plugin).usage().await.unwrap() >> 20,
        started.elapsed().as_secs_f64()
    );

    time_sets(&store, &quiet, &plugin, "quiet tenant, alone").await;

    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (store, busy, plugin) = (store.clone(), busy.clone(), plugin.clone());
            let (stop, written) = (Arc::clone(&stop), Arc::clone(&written));
            tokio::spawn(async move {
                let value = vec![b'w'; VALUE];
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("row-{:06}", (i * 7919) % rows);
                    store
                        .kv(&busy, &plugin)
                        .set(&key, &value, QUOTA)
                        .await
                        .unwrap();
                    written.fetch_add(1, Ordering::Relaxed);
                    i += 4;
                }
            })
        })
        .collect();
    let started = Instant::now();
    time_sets(&store, &quiet, &plugin, "quiet tenant, four busy writers").await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    println!(
        "the busy writers wrote {} entries in {:.1} s",
        written.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
}
