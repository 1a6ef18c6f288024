//! Metering, the usage report, KPIs, citizen feedback (ratings and comments read back) and
//! catalogue adoption, through the real server on SQLite and PostgreSQL.

use serde_json::{Value, json};

use crate::helpers::{
    TestApp, expect_json, expect_problem, fetch_json, guildhall, pothole_services, text,
};
use crate::on_both_databases;

const A: &str = "north-downs";
const B: &str = "the-marches";

/// Sends `n` calls to `hello` for `council` with a body of `body` bytes; returns the
/// response bytes the plugin sent back.
async fn hello_calls(app: &TestApp, council: &str, n: usize, body: usize) -> u64 {
    let mut out = 0;
    for _ in 0..n {
        let response = app
            .anonymous
            .post(app.url(&format!("/s/{A}/{council}/hello/")))
            .body(vec![b'x'; body])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        out += response.bytes().await.unwrap().len() as u64;
    }
    out
}

fn row<'a>(report: &'a Value, council: &str, plugin: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["council"] == council && r["plugin"] == plugin)
        .unwrap_or_else(|| panic!("no row for {council}/{plugin} in {report}"))
}

/// A scripted run across two councils and two plugins, with a graceful restart in the
/// middle and only shutdown flushes: the report matches the calls exactly and the shares
/// add up to one.
async fn usage_report_matches_the_calls_across_a_restart(mut app: TestApp) {
    // Only shutdown writes counts: nothing reaches the database by the interval.
    app.config.metering.flush_interval_secs = 3600;
    app.restart().await;
    app.create_example_tenants().await;
    app.publish_built("hello").await;
    app.publish_built("report-a-problem").await;
    assert_eq!(app.install_for(A, "hello", "all").await.status(), 201);
    assert_eq!(
        app.install(
            A,
            "report-a-problem",
            "0.1.0",
            json!(["mole-valley"]),
            json!({"services": pothole_services("Pothole")})
        )
        .await
        .status(),
        201
    );

    let mut out_tandridge = hello_calls(&app, "tandridge", 7, 100).await;
    let out_mole = hello_calls(&app, "mole-valley", 3, 10).await;
    for _ in 0..2 {
        let response = app
            .anonymous
            .post(app.url(&format!(
                "/s/{A}/mole-valley/report-a-problem/requests.json"
            )))
            .form(&[
                ("service_code", "pothole"),
                ("address_string", "High St"),
                ("description", "Deep"),
            ])
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }
    // Not installed for this council: not a call, not metered.
    let (status, _) = app
        .serve(A, "tandridge", "report-a-problem", "services.json")
        .await;
    assert_eq!(status, 404);

    app.restart().await;
    out_tandridge += hello_calls(&app, "tandridge", 2, 1).await;
    app.restart().await;

    let report: Value = app.get_json(&format!("/api/v1/tenants/{A}/usage")).await;
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{report}");
    let t = row(&report, "tandridge", "hello");
    assert_eq!(t["calls"], 9);
    assert_eq!(t["errors"], 0);
    assert_eq!(t["bytes_in"], 7 * 100 + 2);
    assert_eq!(t["bytes_out"], out_tandridge);
    assert_eq!(t["kv_bytes"], 0);
    let m = row(&report, "mole-valley", "hello");
    assert_eq!(m["calls"], 3);
    assert_eq!(m["bytes_in"], 30);
    assert_eq!(m["bytes_out"], out_mole);
    let r = row(&report, "mole-valley", "report-a-problem");
    assert_eq!(r["calls"], 2);
    assert!(r["kv_bytes"].as_i64().unwrap() > 0, "{r}");
    for row in rows {
        assert!(row["wall_ms"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["cpu_ms"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["cpu_ms"].as_f64().unwrap() <= row["wall_ms"].as_f64().unwrap());
    }
    let shares: f64 = rows.iter().map(|r| r["share"].as_f64().unwrap()).sum();
    assert!((shares - 1.0).abs() < 1e-9, "shares add up to {shares}");
    assert_eq!(report["basis"], "cpu");

    // By calls, the shares are the call counts over 14.
    let by_calls: Value = app
        .get_json(&format!("/api/v1/tenants/{A}/usage?basis=calls"))
        .await;
    assert_eq!(row(&by_calls, "tandridge", "hello")["share"], 9.0 / 14.0);

    // The CSV has the same figures.
    let csv = app
        .get(&format!("/api/v1/tenants/{A}/usage?format=csv&basis=calls"))
        .await;
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = csv.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "day,council,plugin,calls,errors,wall_ms,cpu_ms,bytes_in,bytes_out,kv_bytes,share"
    );
    let tandridge = lines
        .find(|l| l.contains(",tandridge,hello,"))
        .expect("a tandridge line");
    assert!(tandridge.contains(",tandridge,hello,9,0,"), "{tandridge}");
    assert!(tandridge.ends_with(",0.642857"), "{tandridge}");

    // Another tenant sees none of it.
    let other: Value = app.get_json(&format!("/api/v1/tenants/{B}/usage")).await;
    assert_eq!(other["rows"], json!([]));

    // Bad parameters are refused with the reason.
    for query in [
        "from=yesterday",
        "from=2026-12-01&to=2026-11-01",
        "format=xml",
        "basis=money",
        "colour=red",
    ] {
        let problem = expect_problem(
            app.get(&format!("/api/v1/tenants/{A}/usage?{query}")).await,
            400,
        )
        .await;
        assert!(problem["detail"].is_string(), "{query}: {problem}");
    }
}

/// Adoption counts every alliance that runs a plugin, names only those that opted in,
/// and reports calls, success and ratings across them.
async fn adoption_counts_alliances_and_names_only_those_who_opt_in(mut app: TestApp) {
    app.create_example_tenants().await;
    app.publish_built("hello").await;
    // north-downs shares adoption; the-marches does not.
    assert_eq!(
        app.install_for(A, "hello", ["tandridge"]).await.status(),
        201
    );
    assert_eq!(app.install_for(B, "hello", "all").await.status(), 201);
    hello_calls(&app, "tandridge", 4, 0).await;
    let response = app
        .anonymous
        .post(app.url(&format!("/s/{A}/tandridge/hello/_feedback")))
        .json(&json!({"rating": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    app.restart().await;

    let marches: Value = app.get_json(&format!("/api/v1/tenants/{B}")).await;
    let marches_councils = marches["councils"].as_array().unwrap().len() as i64;
    let plugin: Value = app.get_json("/api/v1/plugins/hello").await;
    let adoption = &plugin["adoption"];
    assert_eq!(adoption["tenants"], 2, "{adoption}");
    assert_eq!(adoption["councils"], 1 + marches_councils, "{adoption}");
    assert_eq!(adoption["named_tenants"], json!([A]), "{adoption}");
    assert_eq!(adoption["calls_30d"], 4);
    assert_eq!(adoption["success_rate_30d"], 1.0);
    assert!(adoption["p95_ms_30d"].as_f64().unwrap() > 0.0);
    assert_eq!(adoption["satisfaction_30d"], 4.0);
    assert_eq!(adoption["ratings_30d"], 1);
    assert_eq!(plugin["versions"][0]["adoption"], *adoption);
    let text = plugin.to_string();
    assert!(!text.contains(B), "the-marches did not opt in: {text}");

    // The whole catalogue carries the same figures, for any authenticated caller.
    let auditor = app.client_as("auditor", Some(B), None).await;
    let list = fetch_json(auditor.get(app.url("/api/v1/plugins"))).await;
    let listed = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "hello")
        .unwrap();
    assert_eq!(listed["adoption"], *adoption);

    // A council joining an alliance that installed for all councils is counted.
    let response = app
        .put_json(
            &format!("/api/v1/tenants/{B}/councils/wyre-forest"),
            &json!({"name": "Wyre Forest District Council"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let plugin: Value = app.get_json("/api/v1/plugins/hello").await;
    assert_eq!(plugin["adoption"]["councils"], 2 + marches_councils);

    // Uninstalling removes the alliance from the count.
    let response = app
        .client
        .delete(app.url(&format!("/api/v1/tenants/{B}/installs/hello")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let version: Value = app.get_json("/api/v1/plugins/hello/versions/0.1.0").await;
    assert_eq!(version["adoption"]["tenants"], 1);
    assert_eq!(version["adoption"]["councils"], 1);
}

/// Citizens rate a service anonymously; bad ratings change nothing; an address is
/// limited; ratings and failures show in the KPIs.
async fn feedback_and_kpis(mut app: TestApp) {
    app.create_example_tenants().await;
    app.publish_built("hello").await;
    app.publish_built("fixture-panic").await;
    for plugin in ["hello", "fixture-panic"] {
        assert_eq!(
            app.install_for(A, plugin, ["tandridge"]).await.status(),
            201
        );
    }
    let feedback = |council: &str, plugin: &str, body: Value| {
        let request = app
            .anonymous
            .post(app.url(&format!("/s/{A}/{council}/{plugin}/_feedback")))
            .json(&body);
        async move { request.send().await.unwrap() }
    };
    let count = || async {
        let store = app.admin_store().await;
        let scope = store
            .scope(&guildhall_domain::TenantId::parse(A).unwrap())
            .await
            .unwrap()
            .unwrap();
        store.feedback(&scope).count().await.unwrap()
    };

    for (body, fragment) in [
        (json!({"rating": 0}), "rating"),
        (json!({"rating": 6}), "rating"),
        (json!({"rating": "five"}), "rating"),
        (json!({"rating": 3, "comment": "x".repeat(2001)}), "comment"),
        (json!({"rating": 3, "name": "Ann"}), "name"),
    ] {
        let problem = expect_problem(feedback("tandridge", "hello", body).await, 422).await;
        assert!(
            problem["detail"].as_str().unwrap().contains(fragment),
            "{problem}"
        );
    }
    // Not installed for the council, or no such plugin: 404.
    expect_problem(
        feedback("mole-valley", "hello", json!({"rating": 5})).await,
        404,
    )
    .await;
    expect_problem(
        feedback("tandridge", "nope", json!({"rating": 5})).await,
        404,
    )
    .await;
    assert_eq!(count().await, 0, "refused ratings are not stored");

    let stored = feedback(
        "tandridge",
        "hello",
        json!({"rating": 5, "comment": "Found my bin day fast"}),
    )
    .await;
    assert!(expect_json(stored, 201).await["id"].is_string());
    assert_eq!(
        feedback("tandridge", "hello", json!({"rating": 2}))
            .await
            .status(),
        201
    );
    assert_eq!(count().await, 2);
    // Ten submissions a minute per address (nine so far, refused ones included): the
    // eleventh is refused.
    for _ in 0..2 {
        let _ = feedback("tandridge", "hello", json!({"rating": 0})).await;
    }
    let limited = feedback("tandridge", "hello", json!({"rating": 3})).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(count().await, 2);

    // Three good calls and one that traps.
    hello_calls(&app, "tandridge", 3, 0).await;
    let (status, _) = app.serve(A, "tandridge", "fixture-panic", "").await;
    assert_eq!(status, 502);
    app.restart().await;

    let officer = app.client_as("officer", Some(A), None).await;
    let kpis = fetch_json(officer.get(app.url(&format!("/api/v1/tenants/{A}/kpis")))).await;
    let service = |plugin: &str| {
        kpis["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["plugin"] == plugin && s["council"] == "tandridge")
            .cloned()
            .unwrap_or_else(|| panic!("no KPIs for {plugin}: {kpis}"))
    };
    let hello = service("hello");
    assert_eq!(hello["calls"], 3);
    assert_eq!(hello["availability"], 1.0);
    assert_eq!(hello["satisfaction"], 3.5);
    assert_eq!(hello["ratings"], 2);
    let cost = hello["cost_per_transaction_gbp"].as_f64().unwrap();
    let expected = hello["cpu_seconds"].as_f64().unwrap()
        * kpis["price_per_cpu_second_gbp"].as_f64().unwrap()
        / 3.0;
    assert!(cost > 0.0 && (cost - expected).abs() < 1e-15, "{hello}");
    let panicking = service("fixture-panic");
    assert_eq!(panicking["calls"], 1);
    assert_eq!(panicking["errors"], 1);
    assert_eq!(panicking["availability"], 0.0);
    assert_eq!(panicking["satisfaction"], Value::Null);
}

/// The comments of a page of `GET /api/v1/tenants/{t}/feedback`.
fn texts(page: &Value) -> Vec<&str> {
    page["comments"]
        .as_array()
        .unwrap_or_else(|| panic!("no comments in {page}"))
        .iter()
        .map(|c| c["comment"].as_str().unwrap())
        .collect()
}

/// Citizens' comments read back: newest first, exactly as written, paged by a cursor,
/// for one plugin when asked, without ratings that had none; only by tenant admins,
/// officers and operators of the tenant (auditors 403, other tenants 404), in the API and
/// in the console.
async fn comments_are_read_back_newest_first_by_those_who_may(app: TestApp) {
    app.create_example_tenants().await;
    app.publish_built("hello").await;
    app.publish_built("fixture-panic").await;
    for plugin in ["hello", "fixture-panic"] {
        assert_eq!(
            app.install_for(A, plugin, ["tandridge"]).await.status(),
            201
        );
    }
    assert_eq!(app.install_for(B, "hello", "all").await.status(), 201);
    let script = "<script>alert(1)</script>\n\"quoted\" & line two";
    // Seven ratings (of the ten a minute one address may send), oldest first.
    for (tenant, council, plugin, rating, comment) in [
        (A, "tandridge", "hello", 4, Some("First: <b>bold</b>")),
        (A, "tandridge", "hello", 5, Some("Second")),
        (A, "tandridge", "hello", 3, None),
        (A, "tandridge", "hello", 2, Some("   ")),
        (A, "tandridge", "fixture-panic", 1, Some("It broke")),
        (B, "shropshire", "hello", 5, Some("Marches only")),
        (A, "tandridge", "hello", 1, Some(script)),
    ] {
        let mut body = json!({"rating": rating});
        if let Some(comment) = comment {
            body["comment"] = comment.into();
        }
        let response = app
            .anonymous
            .post(app.url(&format!("/s/{tenant}/{council}/{plugin}/_feedback")))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{body}");
    }

    let admin = app.client_as("tenant-admin", Some(A), None).await;
    let read = |client: &reqwest::Client, query: &str| {
        client
            .get(app.url(&format!("/api/v1/tenants/{A}/feedback{query}")))
            .send()
    };
    let response = read(&admin, "").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let page: Value = response.json().await.unwrap();
    assert_eq!(
        texts(&page),
        [script, "It broke", "Second", "First: <b>bold</b>"],
        "newest first, exactly as written, without empty comments: {page}"
    );
    assert!(page.get("next").is_none(), "{page}");
    let newest = &page["comments"][0];
    assert_eq!(newest["council"], "tandridge");
    assert_eq!(newest["plugin"], "hello");
    assert_eq!(newest["version"], "0.1.0");
    assert_eq!(newest["rating"], 1);
    let day = newest["day"].as_str().unwrap();
    assert_eq!(day.len(), 10, "{newest}");
    assert!(newest["at"].as_str().unwrap().starts_with(day), "{newest}");
    assert!(newest["id"].is_string());
    assert_eq!(page["period"]["to"], day);

    // Paged by the cursor: no comment skipped or repeated.
    let first =
        fetch_json(admin.get(app.url(&format!("/api/v1/tenants/{A}/feedback?limit=3")))).await;
    assert_eq!(texts(&first), [script, "It broke", "Second"]);
    let next = first["next"].as_str().expect("a cursor for older comments");
    assert_eq!(next, first["comments"][2]["id"]);
    let second = fetch_json(admin.get(app.url(&format!(
        "/api/v1/tenants/{A}/feedback?limit=3&before={next}"
    ))))
    .await;
    assert_eq!(texts(&second), ["First: <b>bold</b>"]);
    assert!(second.get("next").is_none(), "{second}");

    // One plugin's; another period's.
    let hello =
        fetch_json(admin.get(app.url(&format!("/api/v1/tenants/{A}/feedback?plugin=hello")))).await;
    assert_eq!(texts(&hello), [script, "Second", "First: <b>bold</b>"]);
    let broken = fetch_json(admin.get(app.url(&format!(
        "/api/v1/tenants/{A}/feedback?plugin=fixture-panic"
    ))))
    .await;
    assert_eq!(texts(&broken), ["It broke"]);
    let nobody = fetch_json(admin.get(app.url(&format!(
        "/api/v1/tenants/{A}/feedback?plugin=bin-collections"
    ))))
    .await;
    assert_eq!(nobody["comments"], json!([]));
    let earlier = fetch_json(admin.get(app.url(&format!(
        "/api/v1/tenants/{A}/feedback?from=2001-01-01&to=2001-12-31"
    ))))
    .await;
    assert_eq!(earlier["comments"], json!([]));

    // Bad parameters: 400 with the reason.
    for query in [
        "from=yesterday",
        "from=2026-12-01&to=2026-11-01",
        "to=2026-02-30",
        "limit=0",
        "limit=101",
        "limit=many",
        "plugin=Not_A_Plugin",
        "before=not-a-cursor",
        "before=' OR 1=1 --",
        "colour=red",
    ] {
        let problem = expect_problem(read(&admin, &format!("?{query}")).await.unwrap(), 400).await;
        assert!(problem["detail"].is_string(), "{query}: {problem}");
    }
    let upper = next.to_uppercase();
    expect_problem(
        read(&admin, &format!("?before={upper}")).await.unwrap(),
        400,
    )
    .await;

    // Officers and operators read them; auditors may not (403); another tenant's admin
    // is told the tenant does not exist, and reads only its own tenant's comments.
    let officer = app.client_as("officer", Some(A), None).await;
    let as_officer =
        fetch_json(officer.get(app.url(&format!("/api/v1/tenants/{A}/feedback")))).await;
    assert_eq!(as_officer["comments"], page["comments"]);
    let as_operator = app.get_json(&format!("/api/v1/tenants/{A}/feedback")).await;
    assert_eq!(as_operator["comments"], page["comments"]);
    let auditor = app.client_as("auditor", Some(A), None).await;
    expect_problem(read(&auditor, "").await.unwrap(), 403).await;
    let kpis = auditor
        .get(app.url(&format!("/api/v1/tenants/{A}/kpis")))
        .send()
        .await
        .unwrap();
    assert_eq!(kpis.status(), 200, "auditors keep the KPIs");
    let other = app.client_as("tenant-admin", Some(B), None).await;
    let hidden = expect_problem(read(&other, "").await.unwrap(), 404).await;
    assert!(!hidden.to_string().contains("broke"), "{hidden}");
    let own = fetch_json(other.get(app.url(&format!("/api/v1/tenants/{B}/feedback")))).await;
    assert_eq!(texts(&own), ["Marches only"]);
    let anonymous = app
        .anonymous
        .get(app.url(&format!("/api/v1/tenants/{A}/feedback")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // The console shows the same comments, escaped, to those who may read them, with
    // older and newer pages: twenty more comments make two pages.
    let store = app.store().await;
    let scope = store
        .scope(&guildhall_domain::TenantId::parse(A).unwrap())
        .await
        .unwrap()
        .unwrap();
    for i in 0..20 {
        store
            .feedback(&scope)
            .add(&guildhall_store::NewFeedback {
                council: guildhall_domain::CouncilId::parse("tandridge").unwrap(),
                plugin: guildhall_domain::PluginName::parse("hello").unwrap(),
                version: "0.1.0".into(),
                rating: 3,
                comment: Some(format!("Later comment {i:02}")),
            })
            .await
            .unwrap();
    }
    let base = format!("http://{}", app.addr);
    let admin_token = app.token("tenant-admin", Some(A), None).await;
    let mut browser = crate::console::signed_in(&base, &admin_token).await;
    let newest = browser.get(&format!("/console/t/{A}/feedback")).await;
    assert_eq!(newest.status, 200, "{}", newest.body);
    assert!(newest.body.contains("id=\"comments\""), "{}", newest.body);
    assert!(newest.body.contains("Later comment 19"));
    assert!(newest.body.contains("Later comment 00"));
    assert!(!newest.body.contains("It broke"), "twenty to a page");
    assert!(!newest.body.contains("rel=\"prev\""), "nothing newer");
    let older = crate::console::links(&newest.body)
        .into_iter()
        .find(|l| l.contains("before="))
        .expect("a link to older comments");
    let page2 = browser.get(&crate::console::unescape(&older)).await;
    assert_eq!(page2.status, 200, "{}", page2.body);
    assert!(page2.body.contains("It broke"));
    assert!(page2.body.contains("&lt;script&gt;alert(1)&lt;"));
    assert!(
        !page2.body.contains("<script>alert"),
        "comments are escaped"
    );
    assert!(page2.body.contains("First: &lt;b&gt;bold&lt;"));
    assert!(!page2.body.contains("Later comment"));
    assert!(!page2.body.contains("Marches only"));
    let newer = crate::console::links(&page2.body)
        .into_iter()
        .find(|l| l.contains("after="))
        .expect("a link to newer comments");
    let back = browser.get(&crate::console::unescape(&newer)).await;
    assert!(back.body.contains("Later comment 19") && back.body.contains("Later comment 00"));
    assert!(!back.body.contains("It broke"));
    let officer_token = app.token("officer", Some(A), None).await;
    let mut officer = crate::console::signed_in(&base, &officer_token).await;
    let page = officer.get(&format!("/console/t/{A}/feedback")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"comments\""));
    let auditor_token = app.token("auditor", Some(A), None).await;
    let mut auditor = crate::console::signed_in(&base, &auditor_token).await;
    let page = auditor.get(&format!("/console/t/{A}/feedback")).await;
    assert_eq!(page.status, 200, "auditors see the ratings");
    assert!(
        !page.body.contains("id=\"comments\""),
        "but not the comments"
    );
    assert!(!page.body.contains("Later comment"));
}

on_both_databases!(
    usage_report_matches_the_calls_across_a_restart,
    adoption_counts_alliances_and_names_only_those_who_opt_in,
    feedback_and_kpis,
    comments_are_read_back_newest_first_by_those_who_may,
);

/// `guildhall usage report` prints the same report as the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_usage_report_command_matches_the_api() {
    let mut app = TestApp::spawn(crate::helpers::Backend::Sqlite)
        .await
        .unwrap();
    app.create_example_tenants().await;
    app.publish_built("hello").await;
    assert_eq!(app.install_for(A, "hello", "all").await.status(), 201);
    hello_calls(&app, "tandridge", 2, 5).await;
    hello_calls(&app, "mole-valley", 1, 5).await;
    app.restart().await;
    let api = app
        .get(&format!("/api/v1/tenants/{A}/usage?format=csv"))
        .await
        .text()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let output = guildhall(dir.path())
        .args(["usage", "report", "--tenant", A])
        .env("GUILDHALL_DATABASE__URL", app.db.url.expose())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stdout, api);
    assert_eq!(stdout.lines().count(), 3, "{stdout}");

    let output = guildhall(dir.path())
        .args(["usage", "report", "--tenant", A, "--format", "json"])
        .env("GUILDHALL_DATABASE__URL", app.db.url.expose())
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(row(&report, "tandridge", "hello")["calls"], 2);

    let output = guildhall(dir.path())
        .args(["usage", "report", "--tenant", A, "--from", "27/11/2026"])
        .env("GUILDHALL_DATABASE__URL", app.db.url.expose())
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(stderr.contains("YYYY-MM-DD"), "{stderr}");
}
