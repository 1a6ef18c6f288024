//! A resident subscribing to garden waste collection in Chromium
//! (`tests/browser/garden-waste-journeys.mjs`): garden-waste installed for Tandridge on a real
//! server (SQLite), paid through the loopback stand-ins of GOV.UK Pay (its hosted card page
//! included) and GOV.UK Notify, walked with a mouse and JavaScript on (paid), with JavaScript
//! off (the card declined) and with the keyboard alone (paid), with wrong answers and an
//! address the council does not collect from; axe-core (WCAG 2.2 AA) and a 320 px reflow
//! check on every page of the service reached (not on Pay's, which is not the council's), and
//! screenshots in `$CARGO_TARGET_DIR/garden-waste-screenshots`.
//!
//! The script prints a JSON summary; this test holds it to what a resident must get (every
//! journey completed, no axe violation, no horizontal scrolling, the pages and error states
//! reached) and reads back what the pages did: the payments Pay was asked for, the emails
//! Notify was asked to send, and the subscriptions an officer lists.
//!
//! Missing Node.js, Chromium or the kit's packages fail this test with the command that
//! installs them; it is never skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::browser_kit::Script;
use crate::govuk_standins::{
    DECLINED_CARD, NotifyStandIn, PayStandIn, PaymentStatus, test_notify_key,
};
use crate::helpers::{Backend, TestApp, expect_json, repo_root};

const TENANT: &str = "north-downs";
const COUNCIL: &str = "tandridge";
const COUNCIL_NAME: &str = "Tandridge District Council";
const PLUGIN: &str = "garden-waste";
const SERVICE: &str = "/s/north-downs/tandridge/garden-waste";

const PAY_KEY: &str = "api_test_pay-5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b";
const CONFIRMATION: &str = "1b0a0c3e-8f5e-4c55-9b0e-1c2d3e4f5a6b";
const REMINDER: &str = "2c1b1d4f-9a6f-4d66-8c1f-2d3e4f5a6b7c";
const PRICE_PENCE: u64 = 4500;

/// Where Tandridge collects garden waste, one postcode there, and a real one elsewhere.
const ELIGIBLE: [&str; 2] = ["RH8", "CR3"];
const ELIGIBLE_POSTCODE: &str = "RH8 0BT";
const INELIGIBLE_POSTCODE: &str = "GU1 3AJ";

/// The pages of the service each run must have reached and checked.
const JS_PAGES: &[&str] = &[
    "start",
    "address",
    "address-error",
    "not-eligible",
    "bins",
    "bins-error",
    "details",
    "check-answers",
    "confirmation",
];
const NO_JS_PAGES: &[&str] = &[
    "start",
    "address",
    "address-error",
    "bins",
    "details",
    "details-error",
    "check-answers",
    "not-taken",
    "check-answers-again",
];
const KEYBOARD_PAGES: &[&str] = &[
    "start",
    "address",
    "address-error",
    "bins",
    "details",
    "check-answers",
    "confirmation",
];

/// How each run ends: on the confirmation, or told the payment was not taken.
const OUTCOMES: [(&str, &str); 3] = [("js", "paid"), ("nojs", "declined"), ("keyboard", "paid")];

/// Node.js, the kit's packages and Chromium; answers Chromium's version.
fn require_browser_kit() -> String {
    crate::browser_kit::require_node();
    crate::browser_kit::require_chromium()
}

/// A server whose plugins may reach the stand-ins on loopback, with session cookies a
/// browser keeps over plain HTTP.
async fn spawn() -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, |c| {
        c.runtime.outbound.allow_cidrs = vec!["127.0.0.0/8".into(), "::1/128".into()];
        c.runtime.default_timeout_ms = 5_000;
        // Plain HTTP on loopback: the session cookie cannot be `__Host-` and `Secure`.
        c.sessions.secure_cookies = false;
    })
    .await
    .expect("SQLite is always available")
}

/// garden-waste for Tandridge, paying through `pay` and emailing through `notify`, with the
/// alliance's keys for both.
async fn install(app: &TestApp, pay: &PayStandIn, notify: &NotifyStandIn, notify_key: &str) {
    app.create_example_tenants().await;
    app.publish_built(PLUGIN).await;
    let config = json!({
        "eligible_postcodes": ELIGIBLE,
        "price_per_bin_pence": PRICE_PENCE,
        "pay_base_url": pay.base_url(),
        "notify_base_url": notify.base_url(),
        "confirmation_template_id": CONFIRMATION,
        "reminder_template_id": REMINDER,
    });
    let installed = app
        .install(TENANT, PLUGIN, "0.1.0", json!([COUNCIL]), config)
        .await;
    expect_json(installed, 201).await;
    let admin = app.client_as("tenant-admin", Some(TENANT), None).await;
    for (name, value) in [("pay_api_key", PAY_KEY), ("notify_api_key", notify_key)] {
        let url = app.url(&format!(
            "/api/v1/tenants/{TENANT}/installs/{PLUGIN}/secrets/{name}"
        ));
        let set = admin
            .put(url)
            .json(&json!({"value": value}))
            .send()
            .await
            .expect("PUT secret");
        expect_json(set, 201).await;
    }
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
                "{mode} {id} [{}]: {violations} axe violation(s): {}",
                text(page, "path"),
                rules.join("; ")
            ));
        }
        if page["reflow"]["ok"] != true {
            wrong.push(format!("{mode} {id}: reflow at 320 px: {}", page["reflow"]));
        }
        if page["problems"].as_array().is_none_or(|p| !p.is_empty()) {
            wrong.push(format!("{mode} {id}: {}", page["problems"]));
        }
        let expected = if id.ends_with("-error") { 422 } else { 200 };
        if page["status"] != expected {
            wrong.push(format!(
                "{mode} {id}: answered {}, not {expected}",
                page["status"]
            ));
        }
        if !text(page, "path").starts_with(&format!("{SERVICE}/")) {
            wrong.push(format!(
                "{mode} {id}: checked at {}, not a page of the service",
                page["path"]
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

/// Axe and reflow on every page state of the service a resident reaches (with and without
/// JavaScript, and by keyboard), the journey completed each way, and what the pages did read
/// back from Pay, Notify and the officers' list of subscriptions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garden_waste_journeys_in_chromium() {
    let chromium = require_browser_kit();
    let started = Instant::now();
    let app = spawn().await;
    let pay = PayStandIn::start(PAY_KEY).await;
    let notify_key = test_notify_key();
    let notify = NotifyStandIn::start(&notify_key).await;
    install(&app, &pay, &notify, &notify_key).await;
    let base = format!("http://{}", app.addr);
    let screenshots = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target"))
        .join("garden-waste-screenshots");

    let journeys = Script::start(
        "garden-waste-journeys.mjs",
        &base,
        &[
            ("TENANT", TENANT.to_string()),
            ("COUNCIL", COUNCIL.to_string()),
            ("COUNCIL_NAME", COUNCIL_NAME.to_string()),
            ("PRICE_PENCE", PRICE_PENCE.to_string()),
            ("ELIGIBLE_POSTCODE", ELIGIBLE_POSTCODE.to_string()),
            ("INELIGIBLE_POSTCODE", INELIGIBLE_POSTCODE.to_string()),
            ("DECLINED_CARD", DECLINED_CARD.to_string()),
            ("SCREENSHOT_DIR", screenshots.display().to_string()),
        ],
    );
    let (status, stdout, stderr) = journeys.finish(Duration::from_secs(600)).await;
    println!("{chromium}");
    println!(
        "garden-waste journeys took {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        screenshots.display()
    );
    let summary: Value = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "garden-waste-journeys.mjs printed no JSON summary ({status}):\n{stdout}\n{stderr}"
            )
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

    // The journey, completed all three ways, each ending as it should.
    let journeys = summary["journeys"].as_array().cloned().unwrap_or_default();
    for (mode, outcome) in OUTCOMES {
        let journey = journeys.iter().find(|j| text(j, "mode") == mode);
        match journey {
            Some(j) if j["completed"] == true && text(j, "outcome") == outcome => {}
            Some(j) => wrong.push(format!(
                "{mode}: not completed {outcome} (completed {}, {:?})",
                j["completed"],
                text(j, "outcome")
            )),
            None => wrong.push(format!("{mode}: the journey was not walked")),
        }
    }
    for journey in &journeys {
        let mode = text(journey, "mode");
        if journey["focus_invisible"]
            .as_array()
            .is_none_or(|f| !f.is_empty())
        {
            wrong.push(format!(
                "{mode}: focus not visible on {}",
                journey["focus_invisible"]
            ));
        }
        if journey["errors_shown"].as_array().is_none_or(Vec::is_empty) {
            wrong.push(format!("{mode}: no wrong answer was shown its errors"));
        }
    }
    let completed: Vec<&Value> = journeys.iter().filter(|j| j["completed"] == true).collect();
    let paid: Vec<&Value> = completed
        .iter()
        .copied()
        .filter(|j| text(j, "outcome") == "paid")
        .collect();

    // Pay was asked for each journey's payment: bins × price, the email typed, settled as
    // the card on Pay's page decided, and nothing else.
    let payments = pay.payments();
    if payments.len() != journeys.len() {
        wrong.push(format!(
            "{} payment(s) created for {} journeys: {payments:?}",
            payments.len(),
            journeys.len()
        ));
    }
    for journey in &completed {
        let reference = text(journey, "reference");
        let mode = text(journey, "mode");
        let Some(payment) = payments.iter().find(|p| p.reference == reference) else {
            wrong.push(format!("{mode}: Pay has no payment {reference:?}"));
            continue;
        };
        let bins = journey["bins"].as_u64().unwrap_or_default();
        let expected_status = if text(journey, "outcome") == "paid" {
            PaymentStatus::Success
        } else {
            PaymentStatus::Failed
        };
        let expected = (
            i64::try_from(bins * PRICE_PENCE).expect("pence"),
            Some(text(journey, "email")),
            expected_status,
        );
        let recorded = (payment.amount, payment.email.as_deref(), payment.status);
        if recorded != expected {
            wrong.push(format!(
                "{mode}: payment {reference} is (amount, email, status) {recorded:?}, not {expected:?} for {bins} bin(s)"
            ));
        }
        if journey["amount_pence"] != json!(bins * PRICE_PENCE) {
            wrong.push(format!(
                "{mode}: the pages asked for {}, not {} pence",
                journey["amount_pence"],
                bins * PRICE_PENCE
            ));
        }
    }

    // Notify sent one confirmation per payment taken, to the address typed, and none for
    // the declined one.
    let mut sent: Vec<(String, String, String)> = notify
        .notifications()
        .into_iter()
        .map(|n| {
            (
                n.reference.unwrap_or_default(),
                n.recipient,
                n.template_id.to_string(),
            )
        })
        .collect();
    sent.sort();
    let mut expected_sent: Vec<(String, String, String)> = paid
        .iter()
        .map(|j| {
            (
                text(j, "reference").to_owned(),
                text(j, "email").to_owned(),
                CONFIRMATION.to_owned(),
            )
        })
        .collect();
    expected_sent.sort();
    if sent != expected_sent {
        wrong.push(format!(
            "Notify was sent (reference, recipient, template) {sent:?}, not {expected_sent:?}"
        ));
    }

    // Tandridge's officers list exactly the subscriptions paid for, as typed.
    let officer = app.client_as("officer", Some(TENANT), Some(COUNCIL)).await;
    let listed = officer
        .get(app.url(&format!("{SERVICE}/subscriptions")))
        .send()
        .await
        .expect("GET subscriptions");
    let listed = expect_json(listed, 200).await;
    let fields = ["reference", "name", "email", "address", "postcode", "bins"];
    let pick = |value: &Value| -> Value {
        fields
            .iter()
            .map(|f| ((*f).to_owned(), value[*f].clone()))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let subscriptions: Vec<Value> = listed["subscriptions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(pick)
        .collect();
    let expected_subscriptions: Vec<Value> = paid.iter().map(|j| pick(j)).collect();
    if subscriptions != expected_subscriptions {
        wrong.push(format!(
            "the officer lists {subscriptions:?}, not the subscriptions paid for {expected_subscriptions:?}"
        ));
    }

    assert!(
        wrong.is_empty() && status.success(),
        "garden-waste journeys ({status}), {} problem(s):\n{}\n\nstderr:\n{stderr}",
        wrong.len(),
        wrong.join("\n")
    );
}
