//! Smaller edges: hostile dates in report queries (usage, KPIs, comments), the default
//! Content-Security-Policy of plugin responses, and the key-value quota under concurrent
//! writers.

use crate::helpers::{TestApp, expect_problem, guildhall, text};
use crate::on_both_databases;

on_both_databases!(
    hostile_dates_get_a_400_naming_the_parameter,
    concurrent_writers_never_take_kv_data_over_its_quota
);

/// Days `time` would read but the reports cannot use, and plain nonsense.
const HOSTILE: [(&str, &str); 8] = [
    ("from", "-0001-01-01"),
    ("to", "99999-01-01"),
    ("from", "%2B10000-01-01"),
    ("from", "+10000-01-01"),
    ("from", "0000-01-01"),
    ("to", "0001-01-05"),
    ("to", "2026-02-30"),
    ("from", "2026-1-1"),
];

async fn hostile_dates_get_a_400_naming_the_parameter(app: TestApp) {
    app.create_example_tenants().await;
    for route in ["usage", "kpis", "feedback"] {
        for (name, value) in HOSTILE {
            let path = format!("/api/v1/tenants/north-downs/{route}?{name}={value}");
            let problem = expect_problem(app.get(&path).await, 400).await;
            let detail = problem["detail"].as_str().unwrap_or_default();
            assert!(detail.starts_with(name), "{path}: {problem}");
        }
        let fine = app
            .get(&format!(
                "/api/v1/tenants/north-downs/{route}?from=0001-01-01&to=9999-12-31"
            ))
            .await;
        assert_eq!(fine.status(), 200, "{route}");
    }
    // The command line reads the same days the same way.
    let dir = tempfile::tempdir().unwrap();
    let output = guildhall(dir.path())
        .env("GUILDHALL_DATABASE__URL", app.db.admin_url.expose())
        .args([
            "usage",
            "report",
            "--tenant",
            "north-downs",
            "--from=-0001-01-01",
        ])
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(stderr.contains("from must be a date"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_responses_carry_a_default_csp_unless_they_set_their_own() {
    let app = TestApp::spawn(crate::helpers::Backend::Sqlite)
        .await
        .unwrap();
    app.create_example_tenants().await;
    for plugin in ["hello", "fixture-own-csp"] {
        app.publish_built(plugin).await;
        let response = app.install_for("north-downs", plugin, "all").await;
        assert_eq!(response.status(), 201, "{plugin}");
    }
    let csp = |response: &reqwest::Response| {
        response
            .headers()
            .get_all("content-security-policy")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let plain = app
        .anonymous
        .get(app.url("/s/north-downs/tandridge/hello/"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    // Every answer also carries the platform's own policy, which the plugin's cannot
    // loosen: scripts only from the shared GOV.UK Frontend folder at the host asked.
    let platform = format!(
        "script-src http://{}{}/; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        app.addr,
        guildhall_console::assets::Assets::get().base()
    );
    assert_eq!(csp(&plain), [DEFAULT_CSP, platform.as_str()]);
    // The gateway's own answers (here a 404) have both too.
    let missing = app
        .anonymous
        .get(app.url("/s/north-downs/tandridge/nothing/"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(csp(&missing), [DEFAULT_CSP, platform.as_str()]);
    // A plugin's own policy is passed on instead of the default, but never alone: its
    // script from elsewhere does not run.
    let own = app
        .anonymous
        .get(app.url("/s/north-downs/tandridge/fixture-own-csp/"))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    assert_eq!(
        csp(&own),
        [
            "default-src 'self'; script-src 'self' https://cdn.example.org",
            platform.as_str()
        ]
    );
    // A Host that could smuggle directives gets no scripts at all.
    let odd = app
        .anonymous
        .get(app.url("/s/north-downs/tandridge/hello/"))
        .header("host", "x; script-src *")
        .send()
        .await
        .unwrap();
    let policies = csp(&odd);
    assert_eq!(
        policies.last().map(String::as_str),
        Some("script-src 'none'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
    );
}

/// The gateway's Content-Security-Policy for plugin responses that set none.
pub(crate) const DEFAULT_CSP: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

async fn concurrent_writers_never_take_kv_data_over_its_quota(app: TestApp) {
    app.create_example_tenants().await;
    // The server's role, under row-level security on PostgreSQL.
    let store = app.store().await;
    let tenant = guildhall_domain::TenantId::parse("north-downs").unwrap();
    let scope = store.scope(&tenant).await.unwrap().unwrap();
    let plugin = guildhall_domain::PluginName::parse("counter").unwrap();
    const QUOTA: u64 = 1_000;
    for round in 0..3 {
        // Forty writers of 100 bytes each (key and value) race for room for ten.
        let writers: Vec<_> = (0..40)
            .map(|i| {
                let (store, scope, plugin) = (store.clone(), scope.clone(), plugin.clone());
                tokio::spawn(async move {
                    let key = format!("r{round}-key-{i:03}");
                    let value = vec![b'v'; 100 - key.len()];
                    store.kv(&scope, &plugin).set(&key, &value, QUOTA).await
                })
            })
            .collect();
        let mut stored = 0;
        for writer in writers {
            match writer.await.unwrap() {
                Ok(()) => stored += 1,
                Err(guildhall_store::KvWriteError::QuotaExceeded { .. }) => {}
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        let used = store.kv(&scope, &plugin).usage().await.unwrap();
        assert!(
            used <= QUOTA,
            "round {round}: {used} bytes stored under a {QUOTA}-byte quota"
        );
        assert_eq!(used, stored * 100, "round {round}");
        assert_eq!(used, QUOTA, "round {round}: the quota fills exactly");
        // Empty it for the next round.
        let (keys, _) = store
            .kv(&scope, &plugin)
            .list_keys("", None, 100)
            .await
            .unwrap();
        for key in keys {
            store.kv(&scope, &plugin).delete(&key).await.unwrap();
        }
    }
}
