//! The harness on real components built from `plugins/`: the examples' own scenarios, the
//! in-memory platform seen from a test (kv, events, sessions, canned outbound answers),
//! and the platform's checks and limits holding as in production.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use guildhall_harness::{Harness, HarnessError, TestRequest, scenario, subject};
use serde_json::json;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// Runs every scenario in `plugins/<folder>/tests` against the built plugin `name`.
async fn scenarios_pass(folder: &str, name: &str) {
    let built = guildhall_test_artifacts::plugin(name);
    let files = scenario::files(&repo().join("plugins").join(folder)).unwrap();
    assert!(!files.is_empty(), "{folder} has no scenarios");
    for file in files {
        let report = scenario::run_file(&built.dir, &file).await;
        assert!(report.passed(), "{}: {report:#?}", file.display());
        assert!(!report.steps.is_empty());
    }
}

#[tokio::test]
async fn the_examples_scenarios_pass() {
    scenarios_pass("hello", "hello").await;
    scenarios_pass("report-a-problem", "report-a-problem").await;
}

/// A scenario file written to a temporary folder.
fn scenario_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("case.toml");
    std::fs::write(&file, text).unwrap();
    (dir, file)
}

#[tokio::test]
async fn a_scenario_fails_where_the_plugin_does_not_do_what_it_says() {
    let hello = guildhall_test_artifacts::plugin("hello");
    let (_dir, file) = scenario_file(
        "[[step]]\npath = \"/\"\n[step.expect]\nstatus = 200\nbody_contains = [\"Goodbye\"]\n\
         [[step]]\npath = \"/never-reached\"\n",
    );
    let report = scenario::run_file(&hello.dir, &file).await;
    assert!(!report.passed());
    // It stops at the failing step and says what the body was.
    assert_eq!(report.steps.len(), 1, "{report:#?}");
    let failure = &report.steps[0].failures[0];
    assert!(
        failure.contains("does not contain \"Goodbye\"")
            && failure.contains("Hello from dev (dev)!"),
        "{failure}"
    );

    // A typo in a scenario is an error naming it, not a silent pass.
    let (_dir, file) = scenario_file("[[step]]\npath = \"/\"\n[step.expect]\nstauts = 200\n");
    let report = scenario::run_file(&hello.dir, &file).await;
    assert!(!report.passed());
    assert!(
        report.error.as_deref().unwrap().contains("stauts"),
        "{report:#?}"
    );

    // A file with no steps, checks that cannot apply to a step, and contradictions are
    // errors too.
    for (text, needle) in [
        ("name = \"nothing\"\n", "no [[step]]"),
        (
            "[[step]]\nschedule = \"daily\"\n[step.expect]\nstatus = 200\n",
            "expect.status cannot be checked on a schedule's run",
        ),
        (
            "[[step]]\npath = \"/\"\n[step.expect]\nok = true\n",
            "expect.ok cannot be checked on a request",
        ),
    ] {
        let (_dir, file) = scenario_file(text);
        let report = scenario::run_file(&hello.dir, &file).await;
        assert!(!report.passed(), "{text}");
        let said = report
            .error
            .clone()
            .or_else(|| report.steps.first().map(|s| s.failures.join("; ")))
            .unwrap_or_default();
        assert!(said.contains(needle), "{text}: {report:#?}");
    }
    // A step that names no status still fails when the call fails.
    let panic = guildhall_test_artifacts::plugin("fixture-panic");
    let (_dir, file) = scenario_file("[[step]]\npath = \"/\"\n");
    let report = scenario::run_file(&panic.dir, &file).await;
    assert!(!report.passed(), "{report:#?}");
    assert!(
        report.steps[0].failures[0].contains("the call failed (502)"),
        "{report:#?}"
    );

    // So is a setting the manifest does not declare.
    let (_dir, file) =
        scenario_file("[install]\nconfig = { colour = \"red\" }\n[[step]]\npath = \"/\"\n");
    let report = scenario::run_file(&hello.dir, &file).await;
    assert!(
        report.error.as_deref().unwrap().contains("colour"),
        "{report:#?}"
    );
}

async fn report_a_problem() -> Harness {
    let mut harness = Harness::load(guildhall_test_artifacts::plugin("report-a-problem").dir)
        .await
        .unwrap();
    harness
        .set_config(
            json!({"services": [{"service_code": "pothole", "service_name": "Pothole",
            "description": "A hole", "metadata": false, "type": "realtime", "keywords": "road",
            "group": "highways"}]}),
        )
        .unwrap();
    harness
}

#[tokio::test]
async fn kv_events_and_callers_are_seen_from_the_test() {
    let harness = report_a_problem().await;
    let filed = harness
        .send(TestRequest::post("/requests.json").form([
            ("service_code", "pothole"),
            ("address_string", "1 High Street"),
            ("description", "Deep"),
        ]))
        .await
        .unwrap();
    assert_eq!(filed.status, 201, "{}", filed.text());
    let events = harness.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].name, "request.created");
    assert_eq!(events[0].payload["service_request_id"], "1");
    assert_eq!(events[0].actor, "anonymous");
    assert!(
        harness
            .kv_keys()
            .contains(&"council/dev/request/1".to_string())
    );

    // The access rules answer the plugin's authz questions.
    let officer = subject("token:alice", &["officer"], None).unwrap();
    let update = || {
        TestRequest::post("/requests/1/status.json")
            .caller(officer.clone())
            .json(&json!({"status": "closed"}))
    };
    assert_eq!(harness.send(update()).await.unwrap().status, 403);
    harness.allow("officer", "update", "requests");
    let closed = harness.send(update()).await.unwrap();
    assert_eq!(closed.status, 200, "{}", closed.text());
    assert_eq!(closed.json().unwrap()[0]["status"], "closed");
}

#[tokio::test]
async fn a_citizens_session_lasts_between_pages_and_forms_need_its_token() {
    let harness = report_a_problem().await;
    let start = harness.send(TestRequest::get("/where")).await.unwrap();
    assert_eq!(start.status, 200, "{}", start.text());
    let token = harness
        .csrf_token(None)
        .expect("the page started a session");
    assert!(start.text().contains(&token));
    // A form posted with the token goes on to the next page.
    let next = harness
        .send(
            TestRequest::post("/where")
                .form([("service", "pothole"), ("location", "1 High Street")]),
        )
        .await
        .unwrap();
    assert_eq!(next.status, 303, "{}", next.text());
    // Without it the platform refuses before the plugin runs.
    let forged = harness
        .send(
            TestRequest::post("/where")
                .body("service=pothole&location=x")
                .header("content-type", "application/x-www-form-urlencoded"),
        )
        .await
        .unwrap();
    assert_eq!(forged.status, 403);
}

#[tokio::test]
async fn outbound_requests_get_canned_answers_and_are_recorded() {
    let harness = Harness::load(guildhall_test_artifacts::plugin("fixture-outbound").dir)
        .await
        .unwrap();
    harness.answer(
        http::Method::GET,
        "https://api.example.org/status?x=1",
        http::Response::builder()
            .status(200)
            .body(Bytes::from("all good"))
            .unwrap(),
    );
    let answered = harness
        .send(TestRequest::get("/?url=https://api.example.org/status?x=1"))
        .await
        .unwrap();
    assert_eq!(answered.status, 200, "{}", answered.text());
    assert!(answered.text().contains("all good"));
    // No answer: the plugin sees a refused connection, and the test sees the request.
    let unanswered = harness
        .send(TestRequest::get("/?url=https://api.example.org/other"))
        .await
        .unwrap();
    assert_eq!(unanswered.status, 502, "{}", unanswered.text());
    // A host the manifest does not declare is refused before any answer is looked for.
    let undeclared = harness
        .send(TestRequest::get("/?url=https://evil.example.com/"))
        .await
        .unwrap();
    assert_eq!(undeclared.status, 502);
    let recorded = harness.outbound();
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    assert_eq!(
        recorded[0].request.url,
        "https://api.example.org/status?x=1"
    );
    assert!(recorded[0].answered);
    assert!(!recorded[1].answered);
}

#[tokio::test]
async fn the_platforms_checks_and_limits_hold_in_the_harness() {
    // Imports beyond the manifest are refused as publishing refuses them.
    let undeclared = guildhall_test_artifacts::plugin("fixture-undeclared-kv");
    match Harness::load(&undeclared.dir).await {
        Err(HarnessError::Refused(why)) => assert!(why.contains("guildhall:platform/kv"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A guest that never returns meets the deadline; one that eats memory, its cap.
    let looping = Harness::load(guildhall_test_artifacts::plugin("fixture-infinite-loop").dir)
        .await
        .unwrap();
    let answer = looping.send(TestRequest::get("/")).await.unwrap();
    assert_eq!(answer.status, 504, "{answer:?}");
    let bomb = Harness::load(guildhall_test_artifacts::plugin("fixture-memory-bomb").dir)
        .await
        .unwrap();
    let answer = bomb.send(TestRequest::get("/")).await.unwrap();
    assert_eq!(answer.status, 502, "{answer:?}");
    assert!(answer.failure.is_some());
}
