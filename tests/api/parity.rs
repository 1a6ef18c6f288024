//! Parity: the same requests get the same answers on SQLite and PostgreSQL.
//!
//! [`same_on_both`] runs one case against a server on each database and compares every
//! answer's status and body, after removing what differs by nature (request ids, times,
//! token ids and secrets). The cases are the inputs the two databases treat differently on
//! their own: NUL (PostgreSQL's text cannot hold it), very long text (a `varchar(n)` limit
//! on PostgreSQL, none on SQLite), odd Unicode, and dates at the edges of the calendar.

use std::future::Future;
use std::pin::Pin;

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};

/// One request's answer: what was asked, the status and the body (JSON, or the text).
#[derive(Debug, PartialEq)]
struct Answer {
    request: String,
    status: u16,
    body: Value,
}

/// The answers one case collected.
#[derive(Debug, Default)]
struct Answers(Vec<Answer>);

impl Answers {
    /// Records a response under `label`.
    async fn record(&mut self, label: impl Into<String>, response: reqwest::Response) {
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        self.0.push(Answer {
            request: label.into(),
            status,
            body: normalise(body),
        });
    }
}

type Case = for<'a> fn(&'a TestApp, &'a mut Answers) -> Pin<Box<dyn Future<Output = ()> + 'a>>;

/// Runs `case` on a fresh server over each database and asserts that every answer matches,
/// and that none was a 5xx.
async fn same_on_both(case: Case) {
    let sqlite = TestApp::spawn(Backend::Sqlite).await.expect("SQLite");
    let Some(postgres) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let mut on_sqlite = Answers::default();
    case(&sqlite, &mut on_sqlite).await;
    let mut on_postgres = Answers::default();
    case(&postgres, &mut on_postgres).await;
    assert_eq!(on_sqlite.0.len(), on_postgres.0.len());
    assert!(!on_sqlite.0.is_empty(), "the case recorded nothing");
    for (s, p) in on_sqlite.0.iter().zip(&on_postgres.0) {
        assert!(
            s.status < 500,
            "{}: {} on SQLite: {}",
            s.request,
            s.status,
            s.body
        );
        assert_eq!(
            s, p,
            "SQLite and PostgreSQL answer {} differently",
            s.request
        );
    }
}

/// Removes what differs between two servers by nature, at any depth.
fn normalise(value: Value) -> Value {
    const VOLATILE: &[&str] = &[
        "request_id",
        "created_at",
        "updated_at",
        "expires_at",
        "at",
        "id",
        "token",
        "hash",
        "prev_hash",
    ];
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    if VOLATILE.contains(&k.as_str()) && !v.is_null() {
                        (k, Value::String("…".into()))
                    } else {
                        (k, normalise(v))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normalise).collect()),
        // Token subjects name a token id, minted afresh on each server.
        Value::String(s) if s.starts_with("token:") => Value::String("token:…".into()),
        other => other,
    }
}

/// Texts that each database treats in its own way when left to itself.
fn hostile_texts() -> Vec<(&'static str, String)> {
    vec![
        ("nul", "a\u{0}b".to_string()),
        ("escape", "a\u{1b}[31mred".to_string()),
        ("long", "x".repeat(10_000)),
        ("long-multibyte", "é".repeat(201)),
        ("at-limit", "é".repeat(200)),
        (
            "odd-unicode",
            "\u{202e}olleh \u{fffe} \u{1f600} Ω".to_string(),
        ),
        ("combining", "e\u{301}\u{301}\u{301}".to_string()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_and_comments_are_refused_or_kept_alike() {
    same_on_both(|app, answers| {
        Box::pin(async move {
            app.create_example_tenants().await;
            app.publish_built("hello").await;
            let installed = app
                .install("north-downs", "hello", "0.1.0", json!("all"), json!({}))
                .await;
            answers.record("install", installed).await;
            for (label, text) in hostile_texts() {
                let tenant = json!({"id": "probe", "name": text, "councils": []});
                answers
                    .record(
                        format!("tenant name {label}"),
                        app.post_json("/api/v1/tenants", &tenant).await,
                    )
                    .await;
                answers
                    .record(
                        format!("council name {label}"),
                        app.put_json(
                            "/api/v1/tenants/north-downs/councils/probe",
                            &json!({"name": text}),
                        )
                        .await,
                    )
                    .await;
                answers
                    .record(
                        format!("token name {label}"),
                        app.post_json(
                            "/api/v1/tenants/north-downs/tokens",
                            &json!({"name": text, "role": "auditor"}),
                        )
                        .await,
                    )
                    .await;
                let feedback = app
                    .anonymous
                    .post(app.url("/s/north-downs/tandridge/hello/_feedback"))
                    .json(&json!({"rating": 4, "comment": text}))
                    .send()
                    .await
                    .unwrap();
                answers.record(format!("comment {label}"), feedback).await;
                // Text inside an install's configuration is JSON, kept as it came.
                let config = app
                    .install(
                        "north-downs",
                        "hello",
                        "0.1.0",
                        json!("all"),
                        json!({ "greeting": text }),
                    )
                    .await;
                answers.record(format!("config {label}"), config).await;
                let key = app
                    .client
                    .put(app.url(&format!(
                        "/api/v1/publisher-keys/{}",
                        urlencode(&text.chars().take(100).collect::<String>())
                    )))
                    .json(&json!({"public_key": text}))
                    .send()
                    .await
                    .unwrap();
                answers.record(format!("key name {label}"), key).await;
                let member = app
                    .put_json(
                        &format!("/api/v1/tenants/north-downs/members/{}", urlencode(&text)),
                        &json!({"issuer": "council-idp", "roles": ["auditor"]}),
                    )
                    .await;
                answers.record(format!("member {label}"), member).await;
            }
            // What was kept reads back the same.
            for path in [
                "/api/v1/tenants/north-downs",
                "/api/v1/tenants/north-downs/installs",
                "/api/v1/tenants/north-downs/members",
                "/api/v1/publisher-keys",
                "/api/v1/tenants",
            ] {
                answers
                    .record(format!("GET {path}"), app.get(path).await)
                    .await;
            }
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dates_at_the_edges_of_the_calendar_are_answered_alike() {
    same_on_both(|app, answers| {
        Box::pin(async move {
            app.create_example_tenants().await;
            for report in ["usage", "kpis", "feedback"] {
                for (from, to) in [
                    ("-0001-01-01", "2026-01-01"),
                    ("0000-12-31", "2026-01-01"),
                    ("0001-01-01", "9999-12-31"),
                    ("2026-02-30", "2026-03-01"),
                    ("99999-01-01", "99999-01-02"),
                    ("2026-01-01", "+10000-01-01"),
                    ("2026-01-01\u{0}", "2026-01-02"),
                    ("2026-03-01", "2026-02-01"),
                ] {
                    let path = format!(
                        "/api/v1/tenants/north-downs/{report}?from={}&to={}",
                        urlencode(from),
                        urlencode(to)
                    );
                    answers
                        .record(format!("{report} {from}..{to}"), app.get(&path).await)
                        .await;
                }
            }
        })
    })
    .await;
}

/// Percent-encodes every byte that is not unreserved in a URI.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
