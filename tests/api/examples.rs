//! The example plugins keep each council's data apart: officers limited to one council try
//! to overwrite and update another council's records through that council's URL and their
//! own, and citizens of one council try to read another's.

use serde_json::{Value, json};

use crate::helpers::{
    TestApp, expect_json, fetch_json, pothole_services, status_and_text, status_of,
};
use crate::on_both_databases;

on_both_databases!(
    bin_collections_keep_each_councils_schedule,
    report_a_problem_keeps_each_councils_requests
);

const TANDRIDGE: &str = "/s/north-downs/tandridge/bin-collections";
const MOLE_VALLEY: &str = "/s/north-downs/mole-valley/bin-collections";
/// A property both councils' schedules name, as a careless upload might.
const SHARED_UPRN: &str = "100062035361";

fn schedule(uprn: &str, address: &str, date: &str) -> Value {
    json!([{
        "uprn": uprn,
        "postcode": "RH8 0BT",
        "address": address,
        "collections": [{"date": date, "bin": "refuse"}],
    }])
}

/// Clients of an officer limited to Tandridge and of one limited to Mole Valley.
async fn council_officers(app: &TestApp) -> (reqwest::Client, reqwest::Client) {
    let officer = |council| app.client_as("officer", Some("north-downs"), Some(council));
    (officer("tandridge").await, officer("mole-valley").await)
}

async fn upload(client: &reqwest::Client, app: &TestApp, base: &str, body: &Value) -> u16 {
    status_of(client.put(app.url(&format!("{base}/schedule"))).json(body)).await
}

/// What a citizen of the council at `base` sees for `uprn`: the status and the body.
async fn lookup(app: &TestApp, base: &str, uprn: &str) -> (u16, Value) {
    let response = app
        .anonymous
        .get(app.url(&format!("{base}/uprn/{uprn}")))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn address_at(app: &TestApp, base: &str, uprn: &str) -> String {
    let (status, body) = lookup(app, base, uprn).await;
    assert_eq!(status, 200, "{base} {uprn}: {body}");
    body["address"].as_str().unwrap().to_string()
}

async fn bin_collections_keep_each_councils_schedule(app: TestApp) {
    app.create_example_tenants().await;
    app.publish_built("bin-collections").await;
    let installed = app
        .install(
            "north-downs",
            "bin-collections",
            "0.1.0",
            json!(["tandridge", "mole-valley"]),
            json!({"council_name": "North Downs"}),
        )
        .await;
    assert_eq!(installed.status(), 201);
    let (tandridge_officer, mole_valley_officer) = council_officers(&app).await;

    // Both councils upload a schedule for the same UPRN; neither overwrites the other.
    let mole = schedule(SHARED_UPRN, "1 Mole Lane", "2099-01-05");
    assert_eq!(
        upload(&mole_valley_officer, &app, MOLE_VALLEY, &mole).await,
        200
    );
    let tandridge = schedule(SHARED_UPRN, "1 Tandridge Road", "2099-02-06");
    assert_eq!(
        upload(&tandridge_officer, &app, TANDRIDGE, &tandridge).await,
        200
    );
    assert_eq!(
        address_at(&app, MOLE_VALLEY, SHARED_UPRN).await,
        "1 Mole Lane"
    );
    assert_eq!(
        address_at(&app, TANDRIDGE, SHARED_UPRN).await,
        "1 Tandridge Road"
    );
    let (_, before) = lookup(&app, MOLE_VALLEY, SHARED_UPRN).await;

    // An officer limited to Tandridge, through Mole Valley's URL: refused, in JSON and CSV.
    let hostile = schedule(SHARED_UPRN, "Overwritten by Tandridge", "2099-03-07");
    assert_eq!(
        upload(&tandridge_officer, &app, MOLE_VALLEY, &hostile).await,
        403
    );
    let csv = tandridge_officer
        .put(app.url(&format!("{MOLE_VALLEY}/schedule")))
        .header("content-type", "text/csv")
        .body(format!(
            "uprn,postcode,address,date,bin\n{SHARED_UPRN},RH8 0BT,Overwritten,2099-03-07,refuse\n"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        csv.headers()["content-type"],
        "application/problem+json",
        "the refusal is a problem"
    );
    let problem = expect_json(csv, 403).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("tandridge"),
        "{problem}"
    );
    // The other way round, and through its own URL: Tandridge's record changes, Mole
    // Valley's stays exactly as it was.
    assert_eq!(
        upload(&mole_valley_officer, &app, TANDRIDGE, &hostile).await,
        403
    );
    assert_eq!(
        upload(&tandridge_officer, &app, TANDRIDGE, &hostile).await,
        200
    );
    assert_eq!(lookup(&app, MOLE_VALLEY, SHARED_UPRN).await, (200, before));
    assert_eq!(
        address_at(&app, TANDRIDGE, SHARED_UPRN).await,
        "Overwritten by Tandridge"
    );
    // An officer of another alliance holds nothing here; a citizen must sign in.
    let marches_officer = app.client_as("officer", Some("the-marches"), None).await;
    assert_eq!(
        upload(&marches_officer, &app, MOLE_VALLEY, &hostile).await,
        403
    );
    assert_eq!(
        upload(&app.anonymous, &app, MOLE_VALLEY, &hostile).await,
        401
    );

    // Citizens of one council never see another's properties, by UPRN or by postcode.
    let only_tandridge = schedule("200000000001", "2 Tandridge Road", "2099-01-05");
    assert_eq!(
        upload(&tandridge_officer, &app, TANDRIDGE, &only_tandridge).await,
        200
    );
    assert_eq!(lookup(&app, MOLE_VALLEY, "200000000001").await.0, 404);
    let listed = fetch_json(
        app.anonymous
            .get(app.url(&format!("{MOLE_VALLEY}/postcode/RH80BT"))),
    )
    .await;
    assert_eq!(
        listed["addresses"],
        json!([{"uprn": SHARED_UPRN, "address": "1 Mole Lane"}]),
        "{listed}"
    );
    let listed = fetch_json(
        app.anonymous
            .get(app.url(&format!("{TANDRIDGE}/postcode/RH80BT"))),
    )
    .await;
    assert_eq!(listed["addresses"].as_array().unwrap().len(), 2, "{listed}");

    // Officers and tenant admins not limited to a council write for the council of the
    // URL only.
    let any_officer = app.client_as("officer", Some("north-downs"), None).await;
    let admin = app
        .client_as("tenant-admin", Some("north-downs"), None)
        .await;
    let by_officer = schedule(SHARED_UPRN, "Mole Valley by any officer", "2099-01-05");
    assert_eq!(
        upload(&any_officer, &app, MOLE_VALLEY, &by_officer).await,
        200
    );
    let by_admin = schedule(SHARED_UPRN, "Tandridge by the admin", "2099-01-05");
    assert_eq!(upload(&admin, &app, TANDRIDGE, &by_admin).await, 200);
    assert_eq!(
        address_at(&app, MOLE_VALLEY, SHARED_UPRN).await,
        "Mole Valley by any officer"
    );
    assert_eq!(
        address_at(&app, TANDRIDGE, SHARED_UPRN).await,
        "Tandridge by the admin"
    );
}

const REPORTS_TANDRIDGE: &str = "/s/north-downs/tandridge/report-a-problem";
const REPORTS_MOLE_VALLEY: &str = "/s/north-downs/mole-valley/report-a-problem";

async fn report(app: &TestApp, base: &str, description: &str) -> String {
    let created = app
        .anonymous
        .post(app.url(&format!("{base}/requests.json")))
        .form(&[
            ("service_code", "pothole"),
            ("address_string", "High Street"),
            ("description", description),
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

async fn close(client: &reqwest::Client, app: &TestApp, base: &str, id: &str) -> u16 {
    status_of(
        client
            .post(app.url(&format!("{base}/requests/{id}/status.json")))
            .json(&json!({"status": "closed", "status_notes": "Filled in"})),
    )
    .await
}

/// What a citizen of the council at `base` sees of request `id`: the status and the text.
async fn request(app: &TestApp, base: &str, id: &str) -> (u16, String) {
    let response = app
        .anonymous
        .get(app.url(&format!("{base}/requests/{id}.json")))
        .send()
        .await
        .unwrap();
    status_and_text(response).await
}

async fn report_a_problem_keeps_each_councils_requests(app: TestApp) {
    app.create_example_tenants().await;
    app.publish_built("report-a-problem").await;
    let services = pothole_services("Pothole");
    let installed = app
        .install(
            "north-downs",
            "report-a-problem",
            "0.1.0",
            json!("all"),
            json!({"services": services}),
        )
        .await;
    assert_eq!(installed.status(), 201);

    // Each council numbers its own requests.
    assert_eq!(
        report(&app, REPORTS_TANDRIDGE, "tandridge first").await,
        "1"
    );
    assert_eq!(
        report(&app, REPORTS_TANDRIDGE, "tandridge second").await,
        "2"
    );
    assert_eq!(
        report(&app, REPORTS_MOLE_VALLEY, "mole valley first").await,
        "1"
    );

    // A citizen of Mole Valley cannot read Tandridge's requests, one by one or listed.
    assert_eq!(request(&app, REPORTS_MOLE_VALLEY, "2").await.0, 404);
    let (status, one) = request(&app, REPORTS_MOLE_VALLEY, "1").await;
    assert_eq!(status, 200);
    assert!(
        one.contains("mole valley first") && !one.contains("tandridge"),
        "{one}"
    );
    let (_, listed) = app
        .serve(
            "north-downs",
            "mole-valley",
            "report-a-problem",
            "requests.json",
        )
        .await;
    assert!(
        listed.contains("mole valley first") && !listed.contains("tandridge"),
        "{listed}"
    );

    let (tandridge_officer, mole_valley_officer) = council_officers(&app).await;
    // An officer limited to Tandridge cannot update Mole Valley's request through Mole
    // Valley's URL, nor reach it through Tandridge's: the same id there is Tandridge's own.
    let refused = tandridge_officer
        .post(app.url(&format!("{REPORTS_MOLE_VALLEY}/requests/1/status.json")))
        .json(&json!({"status": "closed"}))
        .send()
        .await
        .unwrap();
    let body = expect_json(refused, 403).await;
    assert_eq!(body[0]["code"], 403, "{body}");
    assert_eq!(
        close(&tandridge_officer, &app, REPORTS_TANDRIDGE, "1").await,
        200
    );
    let (_, mole_valley_one) = request(&app, REPORTS_MOLE_VALLEY, "1").await;
    assert!(
        mole_valley_one.contains("\"open\"") && !mole_valley_one.contains("Filled in"),
        "{mole_valley_one}"
    );
    let (_, tandridge_one) = request(&app, REPORTS_TANDRIDGE, "1").await;
    assert!(
        tandridge_one.contains("\"closed\"") && tandridge_one.contains("Filled in"),
        "{tandridge_one}"
    );
    // The other way round, and a citizen.
    assert_eq!(
        close(&mole_valley_officer, &app, REPORTS_TANDRIDGE, "2").await,
        403
    );
    assert_eq!(
        close(&app.anonymous, &app, REPORTS_TANDRIDGE, "2").await,
        401
    );
    // A request id of another council's numbering, or made up, is not found.
    assert_eq!(
        close(&mole_valley_officer, &app, REPORTS_MOLE_VALLEY, "2").await,
        404
    );
    let (_, tandridge_two) = request(&app, REPORTS_TANDRIDGE, "2").await;
    assert!(tandridge_two.contains("\"open\""), "{tandridge_two}");

    // An officer not limited to a council updates the council of the URL only.
    let any_officer = app.client_as("officer", Some("north-downs"), None).await;
    assert_eq!(
        close(&any_officer, &app, REPORTS_MOLE_VALLEY, "1").await,
        200
    );
    let (_, mole_valley_one) = request(&app, REPORTS_MOLE_VALLEY, "1").await;
    assert!(mole_valley_one.contains("\"closed\""), "{mole_valley_one}");
    let (_, tandridge_two) = request(&app, REPORTS_TANDRIDGE, "2").await;
    assert!(tandridge_two.contains("\"open\""), "{tandridge_two}");
}
