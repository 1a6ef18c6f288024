//! Transactional services: install secrets, each council's own settings, scheduled work,
//! and the garden-waste subscription paid through GOV.UK Pay and confirmed and reminded by
//! GOV.UK Notify, here their loopback stand-ins (`govuk_standins`), on both databases.

use reqwest::header::LOCATION;
use serde_json::json;

use crate::citizen::{Citizen, csrf_of};
use crate::govuk_standins::{NotifyStandIn, Outcome, PayStandIn, test_notify_key};
use crate::helpers::{Backend, TestApp, expect_json, expect_problem, status_of};

const T: &str = "north-downs";
const PLUGIN: &str = "garden-waste";
const PAY_KEY: &str = "api_test_pay-0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const CONFIRMATION: &str = "1b0a0c3e-8f5e-4c55-9b0e-1c2d3e4f5a6b";
const REMINDER: &str = "2c1b1d4f-9a6f-4d66-8c1f-2d3e4f5a6b7c";

/// garden-waste's settings for an install: RH8 eligible, £45 a bin, the stand-ins' addresses
/// when given.
fn settings(pay: Option<&PayStandIn>, notify: Option<&NotifyStandIn>) -> serde_json::Value {
    let mut config = json!({
        "eligible_postcodes": ["RH8"],
        "price_per_bin_pence": 4500,
        "confirmation_template_id": CONFIRMATION,
        "reminder_template_id": REMINDER,
    });
    if let Some(pay) = pay {
        config["pay_base_url"] = pay.base_url().into();
    }
    if let Some(notify) = notify {
        config["notify_base_url"] = notify.base_url().into();
    }
    config
}

/// Publishes garden-waste and installs it for every council of `tenants` with `config`.
async fn install_garden_waste(app: &TestApp, tenants: &[&str], config: &serde_json::Value) {
    app.create_example_tenants().await;
    app.publish_built(PLUGIN).await;
    for tenant in tenants {
        let response = app
            .install(tenant, PLUGIN, "0.1.0", json!("all"), config.clone())
            .await;
        assert_eq!(response.status(), 201, "{tenant}");
    }
}

async fn spawn(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |c| {
        // The stand-ins listen on loopback, which plugins may not reach by default.
        c.runtime.outbound.allow_cidrs = vec!["127.0.0.0/8".into(), "::1/128".into()];
        c.runtime.default_timeout_ms = 5_000;
        // Plain http on loopback: the platform's origin for plugins is `http://…` too.
        c.sessions.secure_cookies = false;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garden_waste_on_sqlite() {
    let app = spawn(Backend::Sqlite).await.expect("SQLite");
    garden_waste(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garden_waste_on_postgres() {
    if let Some(app) = spawn(Backend::Postgres).await {
        garden_waste(app).await;
    }
}

/// A citizen's answers to garden-waste's questions, up to check your answers: the citizen
/// (with their session) and the form token.
async fn answer<'a>(app: &'a TestApp, council: &str, bins: &str) -> (Citizen<'a>, String) {
    let base = format!("/s/{T}/{council}/{PLUGIN}");
    let mut citizen = Citizen::new(app);
    let (status, page) = citizen.get(&format!("{base}/address")).await;
    assert_eq!(status, 200, "{page}");
    let csrf = csrf_of(&page);
    for (path, form) in [
        (
            "address",
            vec![
                ("address_line_1", "1 Station Road East"),
                ("postcode", "rh8 0bt"),
            ],
        ),
        ("bins", vec![("bins", bins)]),
        (
            "details",
            vec![("name", "Alice Example"), ("email", "alice@example.org")],
        ),
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        let response = citizen.post_form(&format!("{base}/{path}"), &form).await;
        assert_eq!(
            response.status(),
            303,
            "{path}: {}",
            response.text().await.unwrap()
        );
    }
    let (status, page) = citizen.get(&format!("{base}/check-answers")).await;
    assert_eq!(status, 200, "{page}");
    (citizen, csrf)
}

/// A citizen's journey through garden-waste, up to the Pay stand-in's page; returns the
/// payment's id and its return URL.
async fn apply(app: &TestApp, council: &str, pay: &PayStandIn, bins: &str) -> (String, String) {
    let base = format!("/s/{T}/{council}/{PLUGIN}");
    let (mut citizen, csrf) = answer(app, council, bins).await;
    let before = pay.payments().len();
    // The return address is the platform's origin, whatever a caller claims.
    let request = app
        .anonymous
        .post(app.url(&format!("{base}/check-answers")))
        .header("x-guildhall-origin", "https://evil.example")
        .form(&[("csrf", csrf.as_str())]);
    let response = citizen.send(request).await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    let next = response.headers()[LOCATION].to_str().unwrap().to_string();
    assert!(next.starts_with(pay.base_url()), "{next}");
    let payments = pay.payments();
    assert_eq!(payments.len(), before + 1);
    let payment = payments.last().unwrap().clone();
    let scheme = if app.config.sessions.secure_cookies {
        "https"
    } else {
        "http"
    };
    assert!(
        payment.return_url.starts_with(&format!(
            "{scheme}://{}/s/{T}/{council}/{PLUGIN}/",
            app.addr
        )),
        "{}",
        payment.return_url
    );
    (payment.id, payment.return_url)
}

async fn garden_waste(app: TestApp) {
    let pay = PayStandIn::start(PAY_KEY).await;
    let notify_key = test_notify_key();
    let notify = NotifyStandIn::start(&notify_key).await;
    install_garden_waste(&app, &[T], &settings(Some(&pay), Some(&notify))).await;
    let installs = format!("/api/v1/tenants/{T}/installs/{PLUGIN}");

    // ---- Secrets: write-only, declared names only, admins only --------------------------
    let admin = app.client_as("tenant-admin", Some(T), None).await;
    let officer = app.client_as("officer", Some(T), None).await;
    let marches_admin = app
        .client_as("tenant-admin", Some("the-marches"), None)
        .await;
    let secret = |name: &str| app.url(&format!("{installs}/secrets/{name}"));
    assert_eq!(
        status_of(
            officer
                .put(secret("pay_api_key"))
                .json(&json!({"value": PAY_KEY}))
        )
        .await,
        403
    );
    assert_eq!(
        status_of(
            marches_admin
                .put(secret("pay_api_key"))
                .json(&json!({"value": PAY_KEY}))
        )
        .await,
        404
    );
    let problem = expect_problem(
        admin
            .put(secret("admin_password"))
            .json(&json!({"value": "x"}))
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "name", "{problem}");
    for bad in [
        json!({"value": ""}),
        json!({"value": "a\nb"}),
        json!({"value": "x".repeat(9000)}),
    ] {
        expect_problem(
            admin
                .put(secret("pay_api_key"))
                .json(&bad)
                .send()
                .await
                .unwrap(),
            422,
        )
        .await;
    }
    // A council's officer cannot set secrets, its own council's included.
    let tandridge_officer = app.client_as("officer", Some(T), Some("tandridge")).await;
    assert_eq!(
        status_of(
            tandridge_officer
                .put(secret("pay_api_key"))
                .json(&json!({"value": "x", "council": "tandridge"}))
        )
        .await,
        403
    );
    let set = expect_json(
        admin
            .put(secret("pay_api_key"))
            .json(&json!({"value": PAY_KEY}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    assert!(!set.to_string().contains(PAY_KEY), "{set}");
    expect_json(
        admin
            .put(secret("notify_api_key"))
            .json(&json!({"value": notify_key}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    // Mole Valley's own (wrong) Pay key does not reach Tandridge.
    expect_json(
        admin
            .put(secret("pay_api_key"))
            .json(&json!({"value": "mole-valley-key", "council": "mole-valley"}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let listed = app.get_json(&format!("{installs}/secrets")).await;
    assert_eq!(listed["declared"].as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(listed["set"].as_array().unwrap().len(), 3, "{listed}");
    for leaked in [PAY_KEY, notify_key.as_str(), "mole-valley-key"] {
        assert!(!listed.to_string().contains(leaked), "{listed}");
    }
    // The database holds them sealed.
    let store = app.admin_store().await;
    let rows = sea_orm::ConnectionTrait::query_all_raw(
        store.connection(),
        sea_orm::Statement::from_string(
            store.backend(),
            "SELECT ciphertext FROM install_secrets".to_string(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows {
        let sealed: Vec<u8> = row.try_get("", "ciphertext").unwrap();
        assert!(
            !sealed
                .windows(PAY_KEY.len())
                .any(|w| w == PAY_KEY.as_bytes())
        );
    }

    // ---- Per-council settings: checked, and each council sees only its own ----------------
    let council_config = |c: &str| app.url(&format!("{installs}/councils/{c}/config"));
    let problem = expect_problem(
        tandridge_officer
            .put(council_config("tandridge"))
            .json(&json!({"overrides": {"price_per_bin_pence": "cheap", "colour": 1}}))
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["overrides.colour", "overrides.price_per_bin_pence"],
        "{problem}"
    );
    // Where the install's secrets go is the alliance's administrators' to change, not a
    // council officer's, even for the officer's own council.
    let problem = expect_problem(
        tandridge_officer
            .put(council_config("tandridge"))
            .json(&json!({"overrides": {"pay_base_url": "http://localhost:9/"}}))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    assert_eq!(problem["settings"], json!(["pay_base_url"]), "{problem}");
    // Tandridge's officer keeps Tandridge's settings: subscriptions that end within the
    // reminder window, so the reminder below is due.
    let mine = expect_json(
        tandridge_officer
            .put(council_config("tandridge"))
            .json(&json!({"overrides": {"subscription_days": 20}}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(mine["config"]["subscription_days"], 20, "{mine}");
    assert_eq!(mine["config"]["price_per_bin_pence"], 4500, "{mine}");
    for attempt in [
        tandridge_officer.get(council_config("mole-valley")),
        tandridge_officer
            .put(council_config("mole-valley"))
            .json(&json!({"overrides": {"price_per_bin_pence": 1}})),
    ] {
        assert_eq!(status_of(attempt).await, 404);
    }
    expect_json(
        admin
            .put(council_config("mole-valley"))
            .json(&json!({"overrides": {"price_per_bin_pence": 6000}}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let (_, start) = app.serve(T, "tandridge", PLUGIN, "").await;
    assert!(start.contains("£45.00"), "{start}");
    let (_, start) = app.serve(T, "mole-valley", PLUGIN, "").await;
    assert!(start.contains("£60.00"), "{start}");
    // An upgrade cannot leave a council with settings its version refuses: none here, so
    // a re-install with the same version keeps them.
    let unchanged = app
        .get_json(&format!("{installs}/councils/mole-valley/config"))
        .await;
    assert_eq!(unchanged["overrides"], json!({"price_per_bin_pence": 6000}));

    // ---- The journey: paid -----------------------------------------------------------------
    let (payment, return_url) = apply(&app, "tandridge", &pay, "2").await;
    let paid = pay.payments().last().unwrap().clone();
    assert_eq!(paid.amount, 9000);
    pay.complete(&payment, Outcome::Success);
    let back = return_url.replacen(&format!("http://{}", app.addr), "", 1);
    let (status, page) = app.get_anonymous(&back).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Subscription complete"), "{page}");
    let reference = paid.reference.clone();
    assert!(page.contains(&reference), "{page}");
    let sent = notify.notifications();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].recipient, "alice@example.org");
    assert_eq!(sent[0].template_id.to_string(), CONFIRMATION);
    assert_eq!(sent[0].reference.as_deref(), Some(reference.as_str()));
    // Coming back again (a refresh) subscribes and writes once.
    let (status, _) = app.get_anonymous(&back).await;
    assert_eq!(status, 200);
    assert_eq!(notify.notifications().len(), 1);

    // ---- Declined ---------------------------------------------------------------------------
    let (declined, return_url) = apply(&app, "tandridge", &pay, "1").await;
    pay.complete(&declined, Outcome::Declined);
    let back = return_url.replacen(&format!("http://{}", app.addr), "", 1);
    let (status, page) = app.get_anonymous(&back).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Your payment was not taken"), "{page}");
    assert_eq!(notify.notifications().len(), 1);

    // ---- Officers list their own council's subscriptions ----------------------------------
    let listing = format!("/s/{T}/tandridge/{PLUGIN}/subscriptions");
    let subs = expect_json(
        tandridge_officer
            .get(app.url(&listing))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let subs = subs["subscriptions"].as_array().unwrap().clone();
    assert_eq!(subs.len(), 1, "{subs:?}");
    assert_eq!(subs[0]["reference"], reference.as_str());
    let mole_officer = app.client_as("officer", Some(T), Some("mole-valley")).await;
    assert_eq!(status_of(mole_officer.get(app.url(&listing))).await, 403);
    assert_eq!(status_of(app.anonymous.get(app.url(&listing))).await, 401);

    // ---- The reminder schedule, run now ----------------------------------------------------
    let run = app.url(&format!("{installs}/schedules/renewal-reminders/run"));
    assert_eq!(
        status_of(officer.post(run.clone()).json(&json!({}))).await,
        403
    );
    assert_eq!(
        status_of(admin.post(app.url(&format!("{installs}/schedules/nope/run")))).await,
        404
    );
    let ran = expect_json(
        admin
            .post(run.clone())
            .json(&json!({"council": "tandridge"}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(ran["runs"][0]["state"], "ok", "{ran}");
    let reminders: Vec<_> = notify
        .notifications()
        .into_iter()
        .filter(|n| n.template_id.to_string() == REMINDER)
        .collect();
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    assert_eq!(reminders[0].reference.as_deref(), Some(reference.as_str()));
    // Run again: nothing more is due for that subscription.
    let ran = expect_json(
        admin
            .post(run)
            .json(&json!({"council": "tandridge"}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(ran["runs"][0]["state"], "ok", "{ran}");
    assert_eq!(
        notify
            .notifications()
            .iter()
            .filter(|n| n.template_id.to_string() == REMINDER)
            .count(),
        1
    );
    let schedules = app.get_json(&format!("{installs}/schedules")).await;
    let listed = &schedules["schedules"][0];
    assert_eq!(listed["name"], "renewal-reminders");
    assert!(listed["next_due"].is_string(), "{schedules}");
    assert_eq!(listed["runs"].as_array().unwrap().len(), 2, "{schedules}");
    assert_eq!(listed["runs"][0]["trigger"], "manual");

    // ---- No secret in any answer, the metrics or the audit log -----------------------------
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let audit = app
        .get_json(&format!("/api/v1/tenants/{T}/audit?limit=500"))
        .await;
    let audit = audit.to_string();
    assert!(
        audit.contains("secrets.put"),
        "the audit records the change"
    );
    for value in [PAY_KEY, notify_key.as_str(), "mole-valley-key"] {
        assert!(!metrics.contains(value), "a secret in /metrics");
        assert!(!audit.contains(value), "a secret in the audit log");
    }

    // ---- The subscriber's subject access and erasure requests ------------------------------
    let requests = app.url(&format!("/api/v1/tenants/{T}/subject-requests"));
    let ask = |kind: &str| {
        admin.post(requests.clone()).json(&json!({
            "kind": kind,
            "identifiers": {"email": "ALICE@example.org"},
            "councils": ["tandridge"],
        }))
    };
    let found = expect_json(ask("access").send().await.unwrap(), 201).await;
    let service = found["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["plugin"] == PLUGIN)
        .unwrap_or_else(|| panic!("{found}"));
    let records = service["records"].as_array().unwrap();
    let subscription = records
        .iter()
        .find(|r| r["schema"] == "subscription")
        .unwrap_or_else(|| panic!("{service}"));
    assert_eq!(subscription["data"]["reference"], reference.as_str());
    assert_eq!(subscription["data"]["name"], "Alice Example");
    assert!(
        records
            .iter()
            .all(|r| r["data"]["email"] == "alice@example.org"),
        "{service}"
    );
    assert_eq!(
        service["events"][0]["payload"]["reference"],
        reference.as_str()
    );
    // Her applications still waiting for a payment are hers too, and go with it.
    let mut kinds = serde_json::Map::new();
    for record in records {
        let schema = record["schema"].as_str().unwrap().to_string();
        let n = kinds
            .get(&schema)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        kinds.insert(schema, json!(n + 1));
    }
    let erased = expect_json(ask("erasure").send().await.unwrap(), 201).await;
    let service = erased["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["plugin"] == PLUGIN)
        .unwrap_or_else(|| panic!("{erased}"));
    assert_eq!(
        service["erased"],
        serde_json::Value::Object(kinds),
        "{erased}"
    );
    assert!(service["events_erased"].as_u64().unwrap() >= 1, "{erased}");
    let subs = expect_json(
        tandridge_officer
            .get(app.url(&listing))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(subs["subscriptions"], json!([]), "{subs}");
    let again = expect_json(ask("access").send().await.unwrap(), 201).await;
    assert!(!again.to_string().contains("Alice Example"), "{again}");
}

/// Two replicas of one PostgreSQL database, each looking for due schedules every second,
/// with garden-waste's reminders due every minute (the published component, with a manifest
/// whose schedule is `* * * * *`): the due minute runs once per council across both, each
/// due subscription gets exactly one reminder, and neither replica's log holds a secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_run_once_across_two_replicas() {
    use crate::helpers::{TestDb, cli_operator_token, client_with, serve_process};
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pay = PayStandIn::start(PAY_KEY).await;
    let notify_key = test_notify_key();
    let notify = NotifyStandIn::start(&notify_key).await;
    let key = crate::helpers::test_secrets_key(&db).to_string();
    let env = |cache: &str| -> Vec<(String, String)> {
        vec![
            (
                "GUILDHALL_DATABASE__URL".into(),
                db.url.expose().to_string(),
            ),
            (
                "GUILDHALL_DATABASE__ADMIN_URL".into(),
                db.admin_url.expose().to_string(),
            ),
            (
                "GUILDHALL_RUNTIME__CACHE_DIR".into(),
                dir.path().join(cache).display().to_string(),
            ),
            ("GUILDHALL_SECRETS__KEY".into(), key.clone()),
            ("GUILDHALL_SCHEDULES__POLL_INTERVAL_SECS".into(), "1".into()),
            (
                "GUILDHALL_RUNTIME__OUTBOUND__ALLOW_CIDRS".into(),
                "[\"127.0.0.0/8\"]".into(),
            ),
            (
                "GUILDHALL_RUNTIME__DEFAULT_TIMEOUT_MS".into(),
                "5000".into(),
            ),
        ]
    };
    let start = |cache: &str| {
        let env = env(cache);
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        serve_process(dir.path(), &pairs)
    };
    let (a, addr_a, log_a) = start("cache-a");
    let (b, _addr_b, log_b) = start("cache-b");
    // Killed however the test ends, so no replica outlives it.
    let (mut a, mut b) = (KillOnDrop(a), KillOnDrop(b));
    let env_a = env("cache-a");
    let pairs: Vec<(&str, &str)> = env_a
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let operator = client_with(Some(&cli_operator_token(dir.path(), &pairs)));
    let url = |path: &str| format!("http://{addr_a}{path}");
    for file in ["north-downs"] {
        let text = std::fs::read_to_string(
            crate::helpers::repo_root().join(format!("tenants/{file}.toml")),
        )
        .unwrap();
        let json = serde_json::to_value(toml::from_str::<toml::Value>(&text).unwrap()).unwrap();
        assert_eq!(
            status_of(operator.post(url("/api/v1/tenants")).json(&json)).await,
            201
        );
    }
    let artifact = guildhall_test_artifacts::plugin(PLUGIN);
    let manifest = artifact
        .manifest()
        .replace("cron = \"0 8 * * *\"", "cron = \"* * * * *\"");
    assert!(manifest.contains("* * * * *"), "{manifest}");
    let form = reqwest::multipart::Form::new()
        .text("manifest", manifest)
        .part(
            "component",
            reqwest::multipart::Part::bytes(artifact.bytes()).file_name("component.wasm"),
        );
    let published = operator
        .post(url(&format!("/api/v1/plugins/{PLUGIN}/versions")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert!(
        published.status().is_success(),
        "{}",
        published.text().await.unwrap()
    );
    let installs = format!("/api/v1/tenants/{T}/installs/{PLUGIN}");
    let install = json!({
        "version": "0.1.0",
        "councils": ["tandridge", "mole-valley"],
        "config": {
            "eligible_postcodes": ["RH8"],
            "price_per_bin_pence": 4500,
            "pay_base_url": pay.base_url(),
            "notify_base_url": notify.base_url(),
            "confirmation_template_id": CONFIRMATION,
            "reminder_template_id": REMINDER,
        },
    });
    assert_eq!(
        status_of(operator.put(url(&installs)).json(&install)).await,
        201
    );
    for (name, value) in [
        ("pay_api_key", PAY_KEY),
        ("notify_api_key", notify_key.as_str()),
    ] {
        let path = url(&format!("{installs}/secrets/{name}"));
        assert_eq!(
            status_of(operator.put(path).json(&json!({"value": value}))).await,
            201
        );
    }
    // Subscriptions that end within the reminder window, as the plugin stores them.
    let store = guildhall_store::Store::connect(&db.url, &Default::default())
        .await
        .unwrap();
    let scope = store
        .scope(&guildhall_domain::TenantId::parse("north-downs".to_string()).unwrap())
        .await
        .unwrap()
        .unwrap();
    let plugin = guildhall_domain::PluginName::parse(PLUGIN.to_string()).unwrap();
    let today = time::OffsetDateTime::now_utc().date();
    let mut due = Vec::new();
    for (i, council) in [
        "tandridge",
        "tandridge",
        "tandridge",
        "mole-valley",
        "mole-valley",
    ]
    .iter()
    .enumerate()
    {
        let reference = format!("GW-{:06}", 900 + i);
        let subscription = json!({
            "reference": reference,
            "name": format!("Resident {i}"),
            "email": format!("resident{i}@example.org"),
            "postcode": "RH8 0BT",
            "address": format!("{i} Station Road East"),
            "bins": 1,
            "amount": 4500,
            "start": (today - time::Duration::days(340)).to_string(),
            "expires": (today + time::Duration::days(20)).to_string(),
            "payment_id": format!("payment{i}"),
        });
        store
            .kv(&scope, &plugin)
            .set(
                &format!("council/{council}/subscriptions/{reference}"),
                subscription.to_string().as_bytes(),
                u64::MAX,
            )
            .await
            .unwrap();
        due.push(reference);
    }
    // Wait for the next minute's runs, and a few seconds more for a late claim to show.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(100);
    let runs = loop {
        let listed = fetch(&operator, &url(&format!("{installs}/schedules"))).await;
        let runs: Vec<serde_json::Value> = listed["schedules"][0]["runs"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r["trigger"] == "schedule")
            .collect();
        let finished = runs.iter().filter(|r| r["state"] != "running").count();
        if finished >= 2 {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            break fetch(&operator, &url(&format!("{installs}/schedules"))).await["schedules"][0]
                ["runs"]
                .as_array()
                .cloned()
                .unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no scheduled run within 100 s: {listed}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    let first_due = runs
        .iter()
        .filter(|r| r["trigger"] == "schedule")
        .map(|r| r["due_at"].as_str().unwrap().to_string())
        .min()
        .unwrap();
    let of_first: Vec<_> = runs
        .iter()
        .filter(|r| r["due_at"] == first_due.as_str())
        .collect();
    let councils: std::collections::BTreeSet<&str> = of_first
        .iter()
        .map(|r| r["council"].as_str().unwrap())
        .collect();
    assert_eq!(
        of_first.len(),
        2,
        "one run per council for {first_due}: {runs:?}"
    );
    assert_eq!(councils.len(), 2, "{runs:?}");
    assert!(of_first.iter().all(|r| r["state"] == "ok"), "{runs:?}");
    a.stop();
    b.stop();
    let logs = format!("{}{}", log_a.join().unwrap(), log_b.join().unwrap());
    let mut reminded: Vec<String> = notify
        .notifications()
        .into_iter()
        .filter(|n| n.template_id.to_string() == REMINDER)
        .filter_map(|n| n.reference)
        .collect();
    reminded.sort();
    let tail: String = logs.lines().rev().take(60).collect::<Vec<_>>().join("\n");
    assert_eq!(
        reminded, due,
        "each due subscription reminded exactly once; runs {runs:?}; logs (last lines first):\n{tail}"
    );
    assert!(logs.contains("scheduled run"), "the runs are logged");
    for value in [PAY_KEY, notify_key.as_str(), key.as_str()] {
        assert!(!logs.contains(value), "a secret in a replica's log");
    }
}

/// A child process killed when dropped.
struct KillOnDrop(std::process::Child);

impl KillOnDrop {
    fn stop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn fetch(client: &reqwest::Client, url: &str) -> serde_json::Value {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// What publishing refuses: schedules without the `scheduled` export, a component reading
/// secrets its manifest does not declare, cron expressions that are not five fields, and
/// subject requests declared without the `data-subject` export or exported undeclared;
/// nothing is stored by a refused publish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_checks_schedules_and_secrets() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("SQLite");
    let hello = guildhall_test_artifacts::plugin("hello");
    let with_schedule = format!(
        "{}\n[[schedules]]\nname = \"nightly\"\ncron = \"0 2 * * *\"\n",
        hello.manifest()
    );
    let problem = expect_problem(
        app.publish("hello", &with_schedule, hello.bytes(), None)
            .await,
        422,
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("guildhall:platform/scheduled"),
        "{problem}"
    );
    let garden = guildhall_test_artifacts::plugin(PLUGIN);
    let manifest = garden.manifest();
    let start = manifest.find("[secrets]").unwrap();
    let end = start + manifest[start..].find("\n[").unwrap() + 1;
    let without_secrets = format!("{}{}", &manifest[..start], &manifest[end..]);
    assert!(
        !without_secrets.contains("pay_api_key"),
        "{without_secrets}"
    );
    let problem = expect_problem(
        app.publish(PLUGIN, &without_secrets, garden.bytes(), None)
            .await,
        422,
    )
    .await;
    assert!(problem.to_string().contains("[secrets]"), "{problem}");
    for (cron, why) in [
        ("*/5 * * * * *", "five-field"),
        ("61 * * * *", "not a valid cron expression"),
        ("@daily", "five-field"),
    ] {
        let bad = manifest.replace("cron = \"0 8 * * *\"", &format!("cron = \"{cron}\""));
        let problem =
            expect_problem(app.publish(PLUGIN, &bad, garden.bytes(), None).await, 422).await;
        assert!(
            problem.to_string().contains("schedules[0].cron"),
            "{cron}: {problem}"
        );
        assert!(problem.to_string().contains(why), "{cron}: {problem}");
    }
    // Subject requests: declared without the export, and exported without the declaration.
    let declared = format!(
        "{}\n[data_protection]\nsubject_requests = true\n",
        hello.manifest()
    );
    let problem = expect_problem(
        app.publish("hello", &declared, hello.bytes(), None).await,
        422,
    )
    .await;
    assert!(
        problem
            .to_string()
            .contains("guildhall:platform/data-subject"),
        "{problem}"
    );
    let start = manifest.find("[data_protection]").unwrap();
    let undeclared = manifest[..start].to_string();
    let problem = expect_problem(
        app.publish(PLUGIN, &undeclared, garden.bytes(), None).await,
        422,
    )
    .await;
    assert!(
        problem
            .to_string()
            .contains("does not declare [data_protection]"),
        "{problem}"
    );
    let catalogue = app.get_json("/api/v1/plugins").await;
    assert!(!catalogue.to_string().contains(PLUGIN), "{catalogue}");
    assert!(!catalogue.to_string().contains("\"hello\""), "{catalogue}");
}

/// Another alliance's install of the same plugin reads none of this alliance's secrets:
/// with none of its own set, the payment cannot start and the citizen gets the service's
/// problem page, with no key shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_with_their_alliance() {
    let app = spawn(Backend::Sqlite).await.expect("SQLite");
    let pay = PayStandIn::start(PAY_KEY).await;
    install_garden_waste(&app, &[T, "the-marches"], &settings(Some(&pay), None)).await;
    let secret = app.url(&format!(
        "/api/v1/tenants/{T}/installs/{PLUGIN}/secrets/pay_api_key"
    ));
    assert_eq!(
        status_of(app.client.put(secret).json(&json!({"value": PAY_KEY}))).await,
        201
    );
    let marches = app
        .get_json(&format!(
            "/api/v1/tenants/the-marches/installs/{PLUGIN}/secrets"
        ))
        .await;
    assert_eq!(marches["set"], json!([]), "{marches}");
    let base = format!("/s/the-marches/shropshire/{PLUGIN}");
    let mut citizen = Citizen::new(&app);
    let (_, page) = citizen.get(&format!("{base}/address")).await;
    let csrf = csrf_of(&page);
    for (path, form) in [
        (
            "address",
            vec![("address_line_1", "1 High Street"), ("postcode", "RH8 0BT")],
        ),
        ("bins", vec![("bins", "1")]),
        (
            "details",
            vec![("name", "Bob"), ("email", "bob@example.org")],
        ),
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        let response = citizen.post_form(&format!("{base}/{path}"), &form).await;
        assert_eq!(response.status(), 303, "{path}");
    }
    let request = app
        .anonymous
        .post(app.url(&format!("{base}/check-answers")))
        .form(&[("csrf", csrf.as_str())]);
    let response = citizen.send(request).await;
    assert_eq!(response.status(), 503);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("Sorry, there is a problem with the service"),
        "{page}"
    );
    assert!(!page.contains(PAY_KEY));
    assert!(
        pay.payments().is_empty(),
        "no payment started without the alliance's own key"
    );
}

/// With no `secrets.key`: on SQLite `serve` makes one next to the database file, readable by
/// its owner only, and secrets can be set; on PostgreSQL (several replicas must share a key)
/// setting one is refused with what to configure, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_configured_key() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = TestApp::spawn_with(backend, |c| c.secrets.key = String::new()).await
        else {
            continue;
        };
        install_garden_waste(&app, &[T], &settings(None, None)).await;
        let secret = app.url(&format!(
            "/api/v1/tenants/{T}/installs/{PLUGIN}/secrets/pay_api_key"
        ));
        let response = app
            .client
            .put(secret)
            .json(&json!({"value": PAY_KEY}))
            .send()
            .await
            .unwrap();
        match backend {
            Backend::Sqlite => {
                assert_eq!(response.status(), 201);
                let file = app
                    .config
                    .database
                    .url
                    .sqlite_path()
                    .unwrap()
                    .parent()
                    .unwrap()
                    .join("secret.key");
                let mode = std::os::unix::fs::PermissionsExt::mode(
                    &std::fs::metadata(&file).unwrap().permissions(),
                );
                assert_eq!(mode & 0o777, 0o600, "{}", file.display());
                let key = std::fs::read_to_string(&file).unwrap();
                assert!(guildhall_store::Keyring::from_base64(&key, &[]).is_ok());
            }
            Backend::Postgres => {
                let problem = expect_problem(response, 409).await;
                assert!(
                    problem["detail"].as_str().unwrap().contains("secrets.key"),
                    "{problem}"
                );
                let listed = app
                    .get_json(&format!("/api/v1/tenants/{T}/installs/{PLUGIN}/secrets"))
                    .await;
                assert_eq!(listed["set"], json!([]));
            }
        }
    }
}

/// A platform served over TLS (`sessions.secure_cookies`, the default) gives plugins an
/// `https://` origin, so a payment's return address is `https://` too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_tls_the_return_address_is_https() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.runtime.outbound.allow_cidrs = vec!["127.0.0.0/8".into()];
        c.runtime.default_timeout_ms = 5_000;
    })
    .await
    .expect("SQLite");
    assert!(app.config.sessions.secure_cookies);
    let pay = PayStandIn::start(PAY_KEY).await;
    install_garden_waste(&app, &[T], &settings(Some(&pay), None)).await;
    let secret = app.url(&format!(
        "/api/v1/tenants/{T}/installs/{PLUGIN}/secrets/pay_api_key"
    ));
    assert_eq!(
        status_of(app.client.put(secret).json(&json!({"value": PAY_KEY}))).await,
        201
    );
    let (_, return_url) = apply(&app, "tandridge", &pay, "1").await;
    assert!(return_url.starts_with("https://"), "{return_url}");
}

/// Rotating the key: the operator moves the old key to `secrets.previous_keys` and runs
/// `guildhall secrets rotate-key` with the new one; every value is then sealed under the new
/// key (the old one opens nothing more), the count is printed, and a second run finds
/// nothing to do. Without the old key, the command fails naming the key it lacks and
/// changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_key_seals_every_secret_again() {
    use crate::helpers::{guildhall, text};
    use guildhall_store::{Keyring, SecretError, ValueError};
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = TestApp::spawn_with(backend, |_| {}).await else {
            continue;
        };
        install_garden_waste(&app, &[T, "the-marches"], &settings(None, None)).await;
        for tenant in [T, "the-marches"] {
            let secret = app.url(&format!(
                "/api/v1/tenants/{tenant}/installs/{PLUGIN}/secrets/pay_api_key"
            ));
            let body = json!({"value": format!("{tenant}-pay-key")});
            assert_eq!(status_of(app.client.put(secret).json(&body)).await, 201);
        }
        let old = app.config.secrets.key.clone();
        let new = Keyring::generate_key();
        let dir = tempfile::tempdir().unwrap();
        let rotate = |previous: Option<&str>| {
            let mut cmd = guildhall(dir.path());
            cmd.env("GUILDHALL_DATABASE__URL", app.db.url.expose())
                .env("GUILDHALL_SECRETS__KEY", &new)
                .args(["secrets", "rotate-key"]);
            if let Some(previous) = previous {
                cmd.env(
                    "GUILDHALL_SECRETS__PREVIOUS_KEYS",
                    format!("[\"{previous}\"]"),
                );
            }
            cmd.output().unwrap()
        };
        // Without the old key nothing can be opened, so nothing changes.
        let out = rotate(None);
        let (stdout, stderr) = text(&out);
        assert!(!out.status.success(), "{stdout}");
        assert!(stderr.contains("not configured"), "{stderr}");
        let out = rotate(Some(&old));
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        assert!(stdout.contains("2 secrets encrypted again"), "{stdout}");
        assert!(!stdout.contains(&old) && !stdout.contains(&new), "{stdout}");
        let out = rotate(Some(&old));
        assert!(
            text(&out).0.contains("0 secrets encrypted again"),
            "{:?}",
            text(&out)
        );
        // The new key alone opens every value; the old one opens none.
        let store = app.store().await;
        let plugin = guildhall_domain::PluginName::parse(PLUGIN.to_string()).unwrap();
        let council = guildhall_domain::CouncilId::parse("shropshire".to_string()).unwrap();
        let tenant = guildhall_domain::TenantId::parse("the-marches".to_string()).unwrap();
        let scope = store.scope(&tenant).await.unwrap().unwrap();
        let secrets = store.secrets(&scope);
        let new_ring = Keyring::from_base64(&new, &[]).unwrap();
        let old_ring = Keyring::from_base64(&old, &[]).unwrap();
        let value = secrets
            .value(&new_ring, &plugin, &council, "pay_api_key")
            .await
            .unwrap();
        assert_eq!(value.as_deref(), Some("the-marches-pay-key"));
        assert!(matches!(
            secrets
                .value(&old_ring, &plugin, &council, "pay_api_key")
                .await,
            Err(ValueError::Secret(SecretError::UnknownKey(_)))
        ));
    }
}

/// With `server.public_hosts` set, a plugin is told its origin only for a request to one of
/// them: a payment started through a forged `Host` cannot return anywhere else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_public_hosts_become_return_addresses() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.runtime.outbound.allow_cidrs = vec!["127.0.0.0/8".into()];
        c.runtime.default_timeout_ms = 5_000;
        c.sessions.secure_cookies = false;
        c.server.public_hosts = vec!["Services.North-Downs.example".into()];
    })
    .await
    .expect("SQLite");
    let pay = PayStandIn::start(PAY_KEY).await;
    install_garden_waste(&app, &[T], &settings(Some(&pay), None)).await;
    let secret = app.url(&format!(
        "/api/v1/tenants/{T}/installs/{PLUGIN}/secrets/pay_api_key"
    ));
    assert_eq!(
        status_of(app.client.put(secret).json(&json!({"value": PAY_KEY}))).await,
        201
    );
    let base = format!("/s/{T}/tandridge/{PLUGIN}");
    for (host, paid) in [
        ("evil.example", false),
        ("services.north-downs.example", true),
    ] {
        let (mut citizen, csrf) = answer(&app, "tandridge", "1").await;
        let request = app
            .anonymous
            .post(app.url(&format!("{base}/check-answers")))
            .header("host", host)
            .form(&[("csrf", csrf.as_str())]);
        let response = citizen.send(request).await;
        if paid {
            assert_eq!(response.status(), 303, "{host}");
            let payment = pay.payments().last().unwrap().clone();
            assert!(
                payment
                    .return_url
                    .starts_with("http://services.north-downs.example/s/north-downs/"),
                "{}",
                payment.return_url
            );
        } else {
            assert_eq!(response.status(), 400, "{host}: no origin to return to");
            assert!(
                pay.payments().is_empty(),
                "no payment through a forged Host"
            );
        }
    }
}
