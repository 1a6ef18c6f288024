//! Citizens' journeys in Chromium (`tests/browser/citizen-journeys.mjs`): report-a-problem
//! and bin-collections installed for a branded council on a real server (SQLite), walked
//! with a mouse and JavaScript on, with JavaScript off and with the keyboard alone, a wrong
//! answer on each, the platform's feedback page and its refusals of a form after the session
//! ended or without its token; axe-core (WCAG 2.2 AA) and a 320 px reflow check on every page
//! reached, and screenshots in `$CARGO_TARGET_DIR/citizen-screenshots`.
//!
//! The script prints a JSON summary; this test holds it to what a resident must get (every
//! journey completed, no axe violation, no horizontal scrolling, the error states reached)
//! and reads back through the APIs what the pages sent: each report through Open311, each
//! comment through the feedback API.
//!
//! Missing Node.js, Chromium or the kit's packages fail this test with the command that
//! installs them; it is never skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::browser_kit::Script;
use crate::helpers::{Backend, TestApp, expect_json, pothole_services, repo_root};

const TENANT: &str = "north-downs";
const COUNCIL: &str = "tandridge";
const COUNCIL_NAME: &str = "Tandridge District Council";
const REPORT: &str = "/s/north-downs/tandridge/report-a-problem";
const BINS: &str = "/s/north-downs/tandridge/bin-collections";

/// The council's brand; the alliance's (set first) differs in every field, so the pages
/// showing the council's prove the council's overrides the alliance's.
const COLOUR: &str = "00703c";
const CONTACT_URL: &str = "https://www.tandridge.gov.uk/contact-us";
const ACCESSIBILITY_URL: &str = "https://www.tandridge.gov.uk/accessibility";

/// A logo with its own text, as councils' logos are.
const LOGO_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="240" height="40" viewBox="0 0 240 40"><rect width="240" height="40" fill="#ffffff"/><text x="8" y="28" font-family="Arial, sans-serif" font-size="22" fill="#0b0c0c">Tandridge</text></svg>"##;

const POSTCODE: &str = "RH8 0BT";

/// The schedule at [`POSTCODE`]: two properties collected on different days, so the result
/// page shows which one was chosen. (uprn, address, first refuse day, how it is shown.)
const PROPERTIES: [(&str, &str, &str, &str); 2] = [
    (
        "100062035361",
        "1 Station Road East, Oxted",
        "2099-01-05",
        "Monday 5 January 2099",
    ),
    (
        "100062035362",
        "2 Station Road East, Oxted",
        "2099-01-06",
        "Tuesday 6 January 2099",
    ),
];

/// The address the mouse runs choose (the keyboard run takes the first radio).
const ADDRESS: &str = PROPERTIES[1].1;

/// The pages each run must have reached and checked.
const JS_PAGES: &[&str] = &[
    "report/start",
    "report/where",
    "report/where-error",
    "report/describe",
    "report/details",
    "report/check-answers",
    "report/confirmation",
    "feedback",
    "feedback-error",
    "feedback-thanks",
    "bins/start",
    "bins/postcode-error",
    "bins/address",
    "bins/address-error",
    "bins/collections",
    "session-ended",
    "report/start-again",
    "form-refused",
];
const NO_JS_PAGES: &[&str] = &[
    "report/start",
    "report/where",
    "report/where-error",
    "report/describe",
    "report/details",
    "report/check-answers",
    "report/confirmation",
    "feedback",
    "feedback-error",
    "feedback-thanks",
    "bins/start",
    "bins/postcode-error",
    "bins/address",
    "bins/address-error",
    "bins/collections",
];
const KEYBOARD_PAGES: &[&str] = &[
    "report/start",
    "report/where",
    "report/describe",
    "report/details",
    "report/check-answers",
    "report/confirmation",
    "feedback",
    "feedback-thanks",
    "bins/start",
    "bins/postcode-error",
    "bins/address",
    "bins/collections",
];

/// Node.js, the kit's packages and Chromium; answers Chromium's version.
fn require_browser_kit() -> String {
    crate::browser_kit::require_node();
    crate::browser_kit::require_chromium()
}

/// The alliance with its brand, and Tandridge with its own (logo included).
async fn brand(app: &TestApp) {
    app.create_example_tenants().await;
    let alliance = app
        .put_json(
            &format!("/api/v1/tenants/{TENANT}/brand"),
            &json!({
                "colour": "#1d70b8",
                "contact_url": "https://www.northdowns.example/contact",
                "accessibility_url": "https://www.northdowns.example/accessibility",
            }),
        )
        .await;
    expect_json(alliance, 200).await;
    let logo = format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(LOGO_SVG)
    );
    let council = app
        .put_json(
            &format!("/api/v1/tenants/{TENANT}/councils/{COUNCIL}"),
            &json!({
                "name": COUNCIL_NAME,
                "gss_code": "E07000215",
                "brand": {
                    "colour": format!("#{COLOUR}"),
                    "contact_url": CONTACT_URL,
                    "accessibility_url": ACCESSIBILITY_URL,
                    "logo": logo,
                },
            }),
        )
        .await;
    expect_json(council, 200).await;
}

/// Both services for Tandridge, with two types of problem and the bin schedule.
async fn services(app: &TestApp) {
    app.publish_built("report-a-problem").await;
    app.publish_built("bin-collections").await;
    let mut types = pothole_services("Pothole");
    types.as_array_mut().unwrap().push(json!({
        "service_code": "fly-tipping", "service_name": "Fly-tipping",
        "description": "Rubbish dumped in a public place", "metadata": false,
        "type": "realtime", "keywords": "rubbish", "group": "street-cleaning",
    }));
    let installed = app
        .install(
            TENANT,
            "report-a-problem",
            "0.1.0",
            json!([COUNCIL]),
            json!({"services": types}),
        )
        .await;
    expect_json(installed, 201).await;
    let installed = app
        .install(
            TENANT,
            "bin-collections",
            "0.1.0",
            json!([COUNCIL]),
            json!({"council_name": COUNCIL_NAME}),
        )
        .await;
    expect_json(installed, 201).await;

    let schedule: Vec<Value> = PROPERTIES
        .iter()
        .map(|(uprn, address, first, _)| {
            let later = first.replace("2099-01-0", "2099-01-1");
            json!({
                "uprn": uprn, "postcode": POSTCODE, "address": address,
                "collections": [
                    {"date": first, "bin": "refuse"},
                    {"date": later, "bin": "recycling"},
                ],
            })
        })
        .collect();
    let officer = app.client_as("officer", Some(TENANT), Some(COUNCIL)).await;
    let uploaded = officer
        .put(app.url(&format!("{BINS}/schedule")))
        .json(&schedule)
        .send()
        .await
        .expect("PUT schedule");
    let uploaded = expect_json(uploaded, 200).await;
    assert_eq!(uploaded["properties"], 2, "{uploaded}");
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_default()
}

/// Every page the summary lists has no axe violation, no reflow problem and no other
/// problem, and each run reached the pages it must have.
fn check_pages(summary: &Value) -> Vec<String> {
    let pages = summary["pages"].as_array().expect("pages");
    let mut wrong = Vec::new();
    let mut reached: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for page in pages {
        let (id, mode) = (text(page, "id"), text(page, "mode"));
        reached.entry(mode).or_default().insert(id);
        let violations = page["axe_violations"].as_u64().unwrap_or(u64::MAX);
        if violations != 0 {
            let rules: Vec<String> = page["axe_rules"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    let targets: Vec<&str> = r["nodes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|n| text(n, "target"))
                        .collect();
                    format!(
                        "{} ({}) on {}",
                        text(r, "id"),
                        text(r, "help"),
                        targets.join(", ")
                    )
                })
                .collect();
            wrong.push(format!(
                "{mode} {id}: {violations} axe violation(s): {}",
                rules.join("; ")
            ));
        }
        if page["reflow"]["ok"] != true {
            wrong.push(format!("{mode} {id}: reflow at 320 px: {}", page["reflow"]));
        }
        if page["problems"].as_array().is_none_or(|p| !p.is_empty()) {
            wrong.push(format!("{mode} {id}: {}", page["problems"]));
        }
        let expected = if id.ends_with("-error") {
            422
        } else if id == "session-ended" || id == "form-refused" {
            403
        } else {
            200
        };
        if page["status"] != expected {
            wrong.push(format!(
                "{mode} {id}: answered {}, not {expected}",
                page["status"]
            ));
        }
    }
    for (mode, ids) in [
        ("js", JS_PAGES),
        ("nojs", NO_JS_PAGES),
        ("keyboard", KEYBOARD_PAGES),
    ] {
        let seen = reached.get(mode).cloned().unwrap_or_default();
        let missing: Vec<&&str> = ids.iter().filter(|id| !seen.contains(**id)).collect();
        if !missing.is_empty() {
            wrong.push(format!(
                "{mode}: pages not reached and checked: {missing:?}"
            ));
        }
    }
    wrong
}

/// What a resident sees of request `id` through Open311.
async fn open311_request(app: &TestApp, id: &str) -> (u16, String) {
    let response = app
        .anonymous
        .get(app.url(&format!("{REPORT}/requests/{id}.json")))
        .send()
        .await
        .expect("GET request");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// Axe and reflow on every page state a resident reaches in two services (with and without
/// JavaScript, and by keyboard), both journeys completed each way, and what the pages sent
/// read back through the APIs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn citizen_journeys_in_chromium() {
    let chromium = require_browser_kit();
    let started = Instant::now();
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        // Plain HTTP on loopback: the session cookie cannot be `__Host-` and `Secure`.
        c.sessions.secure_cookies = false;
    })
    .await
    .expect("SQLite is always available");
    brand(&app).await;
    services(&app).await;
    let base = format!("http://{}", app.addr);
    let screenshots = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target"))
        .join("citizen-screenshots");

    let journeys = Script::start(
        "citizen-journeys.mjs",
        &base,
        &[
            ("TENANT", TENANT.to_string()),
            ("COUNCIL", COUNCIL.to_string()),
            ("COUNCIL_NAME", COUNCIL_NAME.to_string()),
            ("BRAND_COLOUR", COLOUR.to_string()),
            ("CONTACT_URL", CONTACT_URL.to_string()),
            ("ACCESSIBILITY_URL", ACCESSIBILITY_URL.to_string()),
            ("POSTCODE", POSTCODE.to_string()),
            ("ADDRESS", ADDRESS.to_string()),
            ("SCREENSHOT_DIR", screenshots.display().to_string()),
        ],
    );
    let (status, stdout, stderr) = journeys.finish(Duration::from_secs(900)).await;
    println!("{chromium}");
    println!(
        "citizen journeys took {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        screenshots.display()
    );
    let summary: Value = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!("citizen-journeys.mjs printed no JSON summary ({status}):\n{stdout}\n{stderr}")
        });

    // Each page, as the browser found it.
    let failures = summary["failures"].as_array().cloned().unwrap_or_default();
    let mut wrong: Vec<String> = failures
        .iter()
        .map(|f| format!("the script: {}", f.as_str().unwrap_or_default()))
        .collect();
    wrong.extend(check_pages(&summary));
    println!(
        "{} page states checked with axe (WCAG 2.2 AA) and at 320 px",
        summary["pages"].as_array().map_or(0, Vec::len)
    );

    // Both journeys, completed all three ways.
    let journeys = summary["journeys"].as_array().cloned().unwrap_or_default();
    for service in ["report-a-problem", "bin-collections"] {
        for mode in ["js", "nojs", "keyboard"] {
            let done = journeys.iter().any(|j| {
                text(j, "service") == service && text(j, "mode") == mode && j["completed"] == true
            });
            if !done {
                wrong.push(format!("{service} ({mode}) was not completed"));
            }
        }
    }
    for journey in &journeys {
        let invisible = journey["focus_invisible"].as_array().map_or(0, Vec::len);
        if invisible > 0 {
            wrong.push(format!(
                "{} ({}): focus not visible on {}",
                text(journey, "service"),
                text(journey, "mode"),
                journey["focus_invisible"]
            ));
        }
        if text(journey, "mode") != "keyboard"
            && journey["errors_shown"].as_array().is_none_or(Vec::is_empty)
        {
            wrong.push(format!(
                "{} ({}): no wrong answer was shown its errors",
                text(journey, "service"),
                text(journey, "mode")
            ));
        }
    }

    // Each report the pages sent, readable through Open311 with what was typed, and
    // without the reporter's contact details.
    let reports: Vec<&Value> = journeys
        .iter()
        .filter(|j| text(j, "service") == "report-a-problem" && j["completed"] == true)
        .collect();
    let mut references = BTreeSet::new();
    for journey in &reports {
        let reference = text(journey, "reference");
        references.insert(reference);
        let (status, body) = open311_request(&app, reference).await;
        if status != 200 {
            wrong.push(format!(
                "the reference {reference:?} shown on the confirmation is not found through Open311: {status} {body}"
            ));
            continue;
        }
        let request: Value = serde_json::from_str(&body).unwrap_or_default();
        let request = &request[0];
        let expected = [
            ("service_request_id", reference),
            ("service_code", text(journey, "service_code")),
            ("address", text(journey, "location")),
            ("description", text(journey, "description")),
            ("status", "open"),
        ];
        for (field, value) in expected {
            if request[field] != value {
                wrong.push(format!(
                    "request {reference}: {field} is {}, not {value:?} as the browser sent",
                    request[field]
                ));
            }
        }
        for private in ["Jo Bloggs", "jo.bloggs@example.com", "Sam Keys"] {
            if body.contains(private) {
                wrong.push(format!(
                    "request {reference} shows the reporter's {private:?} to anyone: {body}"
                ));
            }
        }
    }
    if references.len() != reports.len() {
        wrong.push(format!("the references repeat: {references:?}"));
    }

    // Each bin journey showed the chosen address's days.
    for journey in journeys
        .iter()
        .filter(|j| text(j, "service") == "bin-collections" && j["completed"] == true)
    {
        let address = text(journey, "address");
        let mode = text(journey, "mode");
        let Some((_, _, _, shown)) = PROPERTIES.iter().find(|p| p.1 == address) else {
            wrong.push(format!(
                "bin-collections ({mode}) shows an address not in the schedule: {address:?}"
            ));
            continue;
        };
        if mode != "keyboard" && address != ADDRESS {
            wrong.push(format!(
                "bin-collections ({mode}) shows {address:?}, not the {ADDRESS:?} chosen"
            ));
        }
        let refuse = journey["next"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|row| row[0] == "Rubbish (general waste)");
        if refuse.is_none_or(|row| row[1] != *shown) {
            wrong.push(format!(
                "bin-collections ({mode}) at {address}: the next refuse collection is not {shown:?}: {}",
                journey["next"]
            ));
        }
    }

    // The comments sent from the feedback page, read back by the alliance.
    let admin = app.client_as("tenant-admin", Some(TENANT), None).await;
    let comments = admin
        .get(app.url(&format!(
            "/api/v1/tenants/{TENANT}/feedback?plugin=report-a-problem&limit=100"
        )))
        .send()
        .await
        .expect("GET feedback");
    let comments = expect_json(comments, 200).await;
    for journey in &reports {
        let comment = text(journey, "feedback_comment");
        let stored = comments["comments"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| {
                c["comment"] == comment
                    && c["council"] == COUNCIL
                    && c["plugin"] == "report-a-problem"
            });
        if !stored {
            wrong.push(format!(
                "the comment {comment:?} ({}) is not among the alliance's feedback: {comments}",
                text(journey, "mode")
            ));
        }
    }

    // The platform's refusals, before the plugin ran.
    let refusals = &summary["refusals"];
    let expected_refusals = json!({
        "session_cookie": format!("guildhall.{TENANT}.{COUNCIL}.report-a-problem"),
        "ended_status": 403,
        "forged_status": 403,
    });
    if *refusals != expected_refusals {
        wrong.push(format!("refusals: {refusals}, not {expected_refusals}"));
    }

    assert!(
        wrong.is_empty() && status.success(),
        "citizen journeys ({status}), {} problem(s):\n{}\n\nstderr:\n{stderr}",
        wrong.len(),
        wrong.join("\n")
    );
}
