//! A new replica loads what another compiled: replicas share compiled components through
//! the database, each authenticated under a key derived from the secrets key, so a new
//! replica compiles nothing another compiled, and nobody who can only write the table can
//! make a replica run machine code of their choosing.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use guildhall_domain::Digest;
use guildhall_store::{Keyring, PoolOptions, Store};
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::helpers::{Backend, TestDb, cli_operator_token, client_with, serve_process, status_of};

/// Starts `guildhall serve` on `db` with secrets key `key` and an empty compile cache of
/// its own in `dir/{cache}`: a new replica. `runtime.share_compiled` is `on` (on SQLite the
/// default, `auto`, shares nothing).
fn replica(dir: &Path, db: &TestDb, key: &str, cache: &str) -> (Child, String) {
    replica_sharing(dir, db, key, cache, "on")
}

fn replica_sharing(
    dir: &Path,
    db: &TestDb,
    key: &str,
    cache: &str,
    share: &str,
) -> (Child, String) {
    let cache = dir.join(cache);
    let (child, addr, _) = serve_process(
        dir,
        &[
            ("GUILDHALL_DATABASE__URL", db.url.expose()),
            ("GUILDHALL_DATABASE__ADMIN_URL", db.admin_url.expose()),
            ("GUILDHALL_RUNTIME__CACHE_DIR", cache.to_str().unwrap()),
            ("GUILDHALL_RUNTIME__SHARE_COMPILED", share),
            ("GUILDHALL_SECRETS__KEY", key),
        ],
    );
    (child, addr)
}

/// Artefacts on the shelf.
async fn shelved(admin: &Store) -> i64 {
    let row = admin
        .connection()
        .query_one_raw(sea_orm::Statement::from_string(
            admin.connection().get_database_backend(),
            "SELECT COUNT(*) AS n FROM compiled_artefacts".to_string(),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

/// A counter from `/metrics`: the sample of `name` whose labels include `label` (or the
/// unlabelled one when `label` is empty).
async fn metric(addr: &str, name: &str, label: &str) -> u64 {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            l.strip_prefix(name).is_some_and(|rest| {
                if label.is_empty() {
                    rest.starts_with([' ', '{'])
                } else {
                    rest.starts_with('{') && rest.contains(label)
                }
            })
        })
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse::<f64>().ok())
        .map_or(0, |n| n as u64)
}

async fn compiles(addr: &str) -> u64 {
    metric(addr, "guildhall_runtime_compiles_total", "").await
}

async fn shared_loads(addr: &str) -> u64 {
    metric(
        addr,
        "guildhall_runtime_cache_hits_total",
        "cache=\"shared\"",
    )
    .await
}

/// Waits until both digests' artefacts are on the shelf (they are shared in the background).
async fn wait_for_shelf(admin: &Store, digests: &[&str]) {
    let list = digests
        .iter()
        .map(|d| format!("'{d}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let started = Instant::now();
    loop {
        let row = admin
            .connection()
            .query_one_raw(sea_orm::Statement::from_string(
                admin.connection().get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM compiled_artefacts WHERE digest IN ({list})"),
            ))
            .await
            .unwrap()
            .unwrap();
        let n: i64 = row.try_get("", "n").unwrap();
        if n as usize == digests.len() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the compiled artefacts were not shared: {n} of {}",
            digests.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn new_replicas_load_what_another_compiled(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key = Keyring::generate_key();
    let (mut first, addr_a) = replica(dir.path(), &db, &key, "a");
    let token = cli_operator_token(
        dir.path(),
        &[
            ("GUILDHALL_DATABASE__URL", db.url.expose()),
            ("GUILDHALL_SECRETS__KEY", &key),
        ],
    );
    let client = client_with(Some(&token));
    let on = |addr: &str, path: &str| format!("http://{addr}{path}");
    let tenant = json!({"id": "north-downs", "name": "North Downs", "councils": [{"id": "tandridge", "name": "Tandridge"}]});
    assert_eq!(
        status_of(client.post(on(&addr_a, "/api/v1/tenants")).json(&tenant)).await,
        201
    );
    let mut digests = Vec::new();
    for name in ["hello", "bin-collections"] {
        let plugin = guildhall_test_artifacts::plugin(name);
        digests.push(Digest::of(&plugin.bytes()).to_string());
        let form = reqwest::multipart::Form::new()
            .text("manifest", plugin.manifest())
            .part("component", reqwest::multipart::Part::bytes(plugin.bytes()));
        let response = client
            .post(on(&addr_a, &format!("/api/v1/plugins/{name}/versions")))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "publishing {name}");
    }
    let version = guildhall_domain::manifest::Manifest::from_toml(
        &guildhall_test_artifacts::plugin("hello").manifest(),
    )
    .unwrap()
    .version
    .to_string();
    let install = json!({"version": version, "councils": "all", "config": {}});
    assert_eq!(
        status_of(
            client
                .put(on(&addr_a, "/api/v1/tenants/north-downs/installs/hello"))
                .json(&install)
        )
        .await,
        201
    );
    let service = "/s/north-downs/tandridge/hello/";
    let answer_a = client.get(on(&addr_a, service)).send().await.unwrap();
    assert_eq!(answer_a.status(), 200);
    let expected = answer_a.text().await.unwrap();
    let admin = Store::connect(&db.admin_url, &PoolOptions::default())
        .await
        .unwrap();
    wait_for_shelf(&admin, &[&digests[0], &digests[1]]).await;

    // A new replica with an empty cache answers without compiling.
    let (mut second, addr_b) = replica(dir.path(), &db, &key, "b");
    let answer_b = client.get(on(&addr_b, service)).send().await.unwrap();
    assert_eq!(answer_b.status(), 200);
    assert_eq!(answer_b.text().await.unwrap(), expected);
    assert_eq!(compiles(&addr_b).await, 0, "the new replica compiled");
    assert_eq!(shared_loads(&addr_b).await, 1);

    // Someone who can write the table copies another component's artefact and MAC over
    // hello's: the MAC names the digest, so the next new replica compiles hello itself.
    let (hello, other) = (&digests[0], &digests[1]);
    admin
        .connection()
        .execute_unprepared(&format!(
            "UPDATE compiled_artefacts SET \
             bytes = (SELECT bytes FROM compiled_artefacts WHERE digest = '{other}'), \
             mac = (SELECT mac FROM compiled_artefacts WHERE digest = '{other}') \
             WHERE digest = '{hello}'"
        ))
        .await
        .unwrap();
    let (mut third, addr_c) = replica(dir.path(), &db, &key, "c");
    let answer_c = client.get(on(&addr_c, service)).send().await.unwrap();
    assert_eq!(answer_c.status(), 200);
    assert_eq!(
        answer_c.text().await.unwrap(),
        expected,
        "another component ran"
    );
    assert_eq!(compiles(&addr_c).await, 1);
    assert_eq!(shared_loads(&addr_c).await, 0);

    // A replica under another secrets key trusts nothing the others shared.
    let (mut fourth, addr_d) = replica(dir.path(), &db, &Keyring::generate_key(), "d");
    let answer_d = client.get(on(&addr_d, service)).send().await.unwrap();
    assert_eq!(answer_d.status(), 200);
    assert_eq!(answer_d.text().await.unwrap(), expected);
    assert_eq!(compiles(&addr_d).await, 1);
    assert_eq!(shared_loads(&addr_d).await, 0);

    for child in [&mut first, &mut second, &mut third, &mut fourth] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A single SQLite server has no one to share with: by default (`auto`) it keeps its
/// compiles to itself, and its database does not grow by every artefact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_servers_share_nothing_by_default() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = Keyring::generate_key();
    let (mut server, addr) = replica_sharing(dir.path(), &db, &key, "a", "auto");
    let token = cli_operator_token(dir.path(), &[("GUILDHALL_DATABASE__URL", db.url.expose())]);
    let client = client_with(Some(&token));
    let hello = guildhall_test_artifacts::plugin("hello");
    let form = reqwest::multipart::Form::new()
        .text("manifest", hello.manifest())
        .part("component", reqwest::multipart::Part::bytes(hello.bytes()));
    let response = client
        .post(format!("http://{addr}/api/v1/plugins/hello/versions"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    assert_eq!(compiles(&addr).await, 1);
    let admin = Store::connect(&db.admin_url, &PoolOptions::default())
        .await
        .unwrap();
    // Give a background put the time it would take, then look.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(shelved(&admin).await, 0);
    let _ = server.kill();
    let _ = server.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_replicas_load_what_another_compiled_on_sqlite() {
    new_replicas_load_what_another_compiled(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_replicas_load_what_another_compiled_on_postgres() {
    new_replicas_load_what_another_compiled(Backend::Postgres).await;
}
