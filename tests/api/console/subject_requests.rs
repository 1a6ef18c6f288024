//! The console's subject access and erasure page: a data protection officer asks through
//! the form and reads the bundle on the page (hostile text in a record shown as text), a
//! bad form is refused the GOV.UK way and keeps nothing, an erasure erases what the API's
//! next access would find, and the roles without the permission, and forged forms, change
//! nothing.

use reqwest::Method;
use serde_json::{Value, json};

use super::{A, World, audit_of, forms, inputs, links};
use crate::helpers::{TestApp, expect_json, pothole_services};

const PAGE: &str = "/console/t/north-downs/subject-requests";
const API: &str = "/api/v1/tenants/north-downs/subject-requests";
const HOSTILE: &str = "<script>alert(1)</script>";

/// report-a-problem installed in A for every council, and one report at Tandridge by
/// jo@example.org whose description is markup; returns the report's id.
async fn with_a_report(app: &TestApp) -> String {
    app.publish_built("report-a-problem").await;
    let installed = app
        .install(
            A,
            "report-a-problem",
            "0.1.0",
            json!("all"),
            json!({"services": pothole_services("Pothole")}),
        )
        .await;
    assert_eq!(installed.status(), 201);
    let created = app
        .anonymous
        .post(app.url("/s/north-downs/tandridge/report-a-problem/requests.json"))
        .form(&[
            ("service_code", "pothole"),
            ("address_string", "High Street"),
            ("description", HOSTILE),
            ("email", "jo@example.org"),
            ("first_name", "Jo"),
            ("last_name", "Bloggs"),
        ])
        .send()
        .await
        .unwrap();
    let created = expect_json(created, 201).await;
    created[0]["service_request_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The requests kept for A, read through the API as the operator.
async fn kept(app: &TestApp) -> Vec<Value> {
    app.get_json(API).await["requests"]
        .as_array()
        .unwrap()
        .clone()
}

/// What report-a-problem at Tandridge holds about jo, asked through the API.
async fn api_access(app: &TestApp, dpo: &str) -> Value {
    let answer = app
        .client_for(dpo)
        .post(app.url(API))
        .json(&json!({"kind": "access", "identifiers": {"email": "jo@example.org"}, "councils": ["tandridge"]}))
        .send()
        .await
        .unwrap();
    let answer = expect_json(answer, 201).await;
    answer["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["plugin"] == "report-a-problem")
        .cloned()
        .unwrap_or_else(|| panic!("no report-a-problem in {answer}"))
}

async fn a_dpo_asks_through_the_console(backend: crate::helpers::Backend) {
    let Some(world) = World::start(backend, |_| {}).await else {
        return;
    };
    let app = &world.app;
    let report = with_a_report(app).await;
    let dpo_token = app.token("data-protection-officer", Some(A), None).await;
    let mut dpo = world.as_(&dpo_token).await;

    // The page: its place in the navigation, the form, no request yet.
    let page = dpo.get(PAGE).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.tenant_nav(),
        ["Overview", "Services", "Data protection"],
        "a data protection officer's sections"
    );
    let text = page.text();
    for shown in [
        "Find their data (access)",
        "Erase their data (erasure)",
        "Email address",
        "UPRN (Unique Property Reference Number)",
        "Tandridge District Council (tandridge)",
        "erases every record that matches any one of the identifiers",
        "Make an access request with the same identifiers first",
        "No subject request has been made",
    ] {
        assert!(text.contains(shown), "{shown:?} not in {text}");
    }

    // Errors the GOV.UK way: 422, the summary's links, the values kept, nothing stored.
    let long = "n".repeat(321);
    let refused = dpo
        .submit(PAGE, &[("name", long.as_str()), ("councils", "shropshire")])
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.title().starts_with("Error: "),
        "{}",
        refused.title()
    );
    assert_eq!(refused.error_links(), ["#kind", "#name", "#councils"]);
    let summary = refused.error_summary().unwrap();
    assert!(
        summary.contains("Select whether to find or to erase the resident’s data")
            && summary.contains("Full name is 321 characters; at most 320 are allowed")
            && summary.contains("Select only councils of this alliance"),
        "{summary}"
    );
    assert!(
        inputs(&refused.body).contains(&("name".to_string(), long.clone())),
        "the name typed is kept"
    );
    let refused = dpo
        .submit(PAGE, &[("kind", "access"), ("email", "  ")])
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.error_links(), ["#email"]);
    assert!(
        refused
            .error_summary()
            .unwrap()
            .contains("Enter at least one of the resident’s email address"),
        "{}",
        refused.text()
    );
    assert!(kept(app).await.is_empty(), "a refused form kept a request");

    // Access: the record's fields and the events on the page, markup shown as text.
    let answer = dpo
        .submit(PAGE, &[("kind", "access"), ("email", " JO@example.org")])
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let text = answer.text();
    for shown in [
        "What the alliance’s services hold",
        "report-a-problem 0.1.0: Tandridge District Council (tandridge)",
        "Record 1: service-request",
        "jo@example.org",
        report.as_str(),
        "request.created",
        "nothing of it is kept",
        HOSTILE,
    ] {
        assert!(text.contains(shown), "{shown:?} not in {text}");
    }
    assert!(
        !answer.body.contains(HOSTILE) && answer.body.contains("&lt;script&gt;alert(1)"),
        "the description is escaped"
    );
    assert!(answer.body.contains("govuk-summary-list__key"));
    assert_eq!(
        answer.headers["cache-control"].to_str().unwrap(),
        "no-store"
    );
    // Kept once, hashed, and audited as the API's request is, with its address.
    let requests = kept(app).await;
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0]["kind"], "access");
    assert_eq!(requests[0]["state"], "completed");
    assert!(
        !Value::Array(requests.clone())
            .to_string()
            .contains("example.org")
    );
    let audited: Vec<Value> = audit_of(app, A)
        .await
        .into_iter()
        .filter(|e| e["action"] == "subject-requests.create")
        .collect();
    let created: Vec<&Value> = audited.iter().filter(|e| e["outcome"] == "201").collect();
    assert_eq!(created.len(), 1, "{audited:?}");
    let detail: Value = serde_json::from_str(created[0]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["via"], "console");
    assert_eq!(
        detail["location"],
        format!("{API}/{}", requests[0]["id"].as_str().unwrap())
    );
    assert_eq!(
        audited.iter().filter(|e| e["outcome"] == "422").count(),
        2,
        "each refused form is audited: {audited:?}"
    );
    // The list shows it without the identifiers.
    let page = dpo.get(PAGE).await;
    let text = page.text();
    assert!(
        text.contains("email (hashed)")
            && text.contains("1 record and 1 event found in 4 services")
            && text.contains("Completed"),
        "{text}"
    );
    assert!(!page.body.contains("jo@example.org"));

    // Download as JSON: the same request asked again, answered as a file.
    let download = forms(&answer.body)
        .into_iter()
        .find(|f| f.hidden.iter().any(|(k, v)| k == "format" && v == "json"))
        .expect("a download form");
    assert_eq!(download.action, PAGE);
    let fields: Vec<(&str, &str)> = download
        .hidden
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let file = dpo.post(PAGE, &fields).await;
    assert_eq!(file.status, 200, "{}", file.body);
    assert_eq!(
        file.headers["content-type"].to_str().unwrap(),
        "application/json"
    );
    assert!(
        file.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"subject-access-")
    );
    let bundle: Value = serde_json::from_str(&file.body).unwrap();
    let tandridge = bundle["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["plugin"] == "report-a-problem" && s["council"] == "tandridge")
        .unwrap();
    assert_eq!(tandridge["records"][0]["data"]["email"], "jo@example.org");
    assert_eq!(tandridge["records"][0]["data"]["description"], HOSTILE);
    assert_eq!(kept(app).await.len(), 2);

    // Erasure for Tandridge: what was erased, and the API's next access finds nothing.
    let erased = dpo
        .submit(
            PAGE,
            &[
                ("kind", "erasure"),
                ("email", "jo@example.org"),
                ("councils", "tandridge"),
            ],
        )
        .await;
    assert_eq!(erased.status, 201, "{}", erased.body);
    let text = erased.text();
    assert!(
        text.contains("What was erased")
            && text.contains("report-a-problem 0.1.0 Tandridge District Council (tandridge) Erased 1 service-request 1"),
        "{text}"
    );
    assert!(!text.contains("mole-valley"), "{text}");
    let after = api_access(app, &dpo_token).await;
    assert_eq!(after["records"], json!([]), "{after}");
    assert!(
        after["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["payload"].is_null()),
        "{after}"
    );
    let page = dpo.get(PAGE).await;
    assert!(
        page.text()
            .contains("1 record and 1 event erased in 1 service"),
        "{}",
        page.text()
    );
}

async fn others_cannot_ask(backend: crate::helpers::Backend) {
    let Some(world) = World::start(backend, |_| {}).await else {
        return;
    };
    let app = &world.app;
    with_a_report(app).await;
    let dpo_token = app.token("data-protection-officer", Some(A), None).await;
    let ask = [("kind", "erasure"), ("email", "jo@example.org")];

    // The administrator holds the permission and sees the section.
    let mut admin = world.as_(&world.admin).await;
    let overview = admin.get(&format!("/console/t/{A}")).await;
    assert!(
        overview
            .tenant_nav()
            .contains(&"Data protection".to_string()),
        "{:?}",
        overview.tenant_nav()
    );
    assert!(links(&overview.body).contains(&PAGE.to_string()));
    assert_eq!(admin.get(PAGE).await.status, 200);

    // Officers and auditors: no link, the page and the form refused, nothing kept or erased.
    for (who, token) in [("officer", &world.officer), ("auditor", &world.auditor)] {
        let mut visitor = world.as_(token).await;
        let overview = visitor.get(&format!("/console/t/{A}")).await;
        assert_eq!(overview.status, 200);
        assert!(
            !overview
                .tenant_nav()
                .contains(&"Data protection".to_string()),
            "{who}: {:?}",
            overview.tenant_nav()
        );
        assert!(!links(&overview.body).contains(&PAGE.to_string()), "{who}");
        let page = visitor.get(PAGE).await;
        assert_eq!(page.status, 403, "{who}: {}", page.body);
        assert!(page.is_console_page());
        assert!(
            page.text().contains("You cannot do this"),
            "{}",
            page.text()
        );
        assert!(!page.body.contains("Send request"));
        let posted = visitor.submit(PAGE, &ask).await;
        assert_eq!(posted.status, 403, "{who}: {}", posted.body);
        assert!(posted.text().contains("You cannot do this"));
    }
    assert!(kept(app).await.is_empty());
    let refusals = audit_of(app, A)
        .await
        .into_iter()
        .filter(|e| e["action"] == "subject-requests.create" && e["outcome"] == "403")
        .count();
    assert_eq!(refusals, 2, "each refused post is audited");

    // Forged posts: without the session's token, with another's, from another site.
    let mut dpo = world.as_(&dpo_token).await;
    let other = world.as_(&world.admin2).await;
    let before = audit_of(app, A).await;
    let csrf = dpo.csrf.clone();
    let wrong = "A".repeat(43);
    for (case, csrf, origin) in [
        ("no csrf", None, None),
        ("another session's csrf", Some(other.csrf.as_str()), None),
        ("a wrong csrf", Some(wrong.as_str()), None),
        (
            "another site's Origin",
            Some(csrf.as_str()),
            Some("https://evil.example"),
        ),
    ] {
        let mut fields: Vec<(&str, &str)> = ask.to_vec();
        if let Some(csrf) = csrf {
            fields.insert(0, ("csrf", csrf));
        }
        let mut request = dpo.request(Method::POST, PAGE).form(&fields);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let page = dpo.send(request).await;
        assert_eq!(page.status, 403, "{case}: {}", page.body);
        assert!(page.text().contains("You cannot do this"), "{case}");
    }
    assert!(kept(app).await.is_empty(), "a forged form kept a request");
    assert_eq!(audit_of(app, A).await, before, "a forged form was acted on");
    let still = api_access(app, &dpo_token).await;
    assert_eq!(
        still["records"][0]["data"]["email"], "jo@example.org",
        "a forged erasure erased: {still}"
    );
    // The same form with the session's token goes through.
    let page = dpo
        .submit(PAGE, &[("kind", "access"), ("email", "jo@example.org")])
        .await;
    assert_eq!(page.status, 201, "{}", page.body);
}

both!(a_dpo_asks_through_the_console, others_cannot_ask);
