//! Property tests of `POST /api/v1/plugins/{plugin}/versions`: arbitrary and deliberately
//! malformed multipart bodies, manifests and components, sent with an operator token, are
//! refused with a 4xx problem and never a 5xx, and leave the catalogue as it was.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;

use crate::helpers::TestApp;
use crate::on_both_databases;

on_both_databases!(
    malformed_publishes_are_refused_and_change_nothing,
    long_manifest_text_is_refused_with_a_whole_problem
);

/// Boundaries the hand-built bodies declare.
const BOUNDARY: &str = "gh-boundary";

/// One upload an attacker chooses.
#[derive(Debug, Clone)]
enum Upload {
    /// A form reqwest builds, with fields the attacker names and fills.
    Form {
        plugin: String,
        fields: Vec<(String, Vec<u8>)>,
    },
    /// Any body, with any `content-type`.
    Raw {
        plugin: String,
        content_type: String,
        body: Vec<u8>,
    },
}

/// Strings an attacker would try where a name, a version or a field goes.
fn adversarial_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("*".to_string()),
        Just("operator".to_string()),
        Just("role:operator".to_string()),
        Just("tenant-admin".to_string()),
        Just("../../etc/passwd".to_string()),
        Just("..%2f..%2fetc".to_string()),
        Just("hello\0".to_string()),
        Just("\u{202e}olleh".to_string()),
        Just("héllo-😀".to_string()),
        Just("a".repeat(70_000)),
        Just("0.1.0-\0".to_string()),
        Just("99999999999999999999.0.0".to_string()),
        "\\PC{0,64}",
        any::<String>(),
    ]
}

/// Manifests: mutations of a valid one and arbitrary text.
fn manifest() -> impl Strategy<Value = Vec<u8>> {
    let base = guildhall_test_artifacts::plugin("hello").manifest();
    let mutate = (
        prop::sample::select(vec!["name", "version", "component", "publisher", "licence"]),
        adversarial_text(),
    )
        .prop_map(move |(field, value)| {
            let value = toml_string(&value);
            base.lines()
                .map(|line| {
                    if line.starts_with(&format!("{field} =")) {
                        format!("{field} = {value}")
                    } else {
                        line.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes()
        });
    prop_oneof![
        mutate,
        adversarial_text().prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..512),
        Just(b"[capabilities]\nkv = \"yes\"\n[[[".to_vec()),
        Just(b"name = \"hello\"\nversion = \"0.9.0\"\n[limits]\nmemory_mib = -1\n".to_vec()),
    ]
}

/// A TOML basic string holding `value`, escaped so the manifest stays one line per key.
fn toml_string(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Components: never a valid one, so nothing can be published.
fn component() -> impl Strategy<Value = Vec<u8>> {
    let real = guildhall_test_artifacts::plugin("hello").bytes();
    let len = real.len();
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|tail| {
            let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
            bytes.extend(tail);
            bytes
        }),
        // A real component cut short is never a whole one.
        (8..len).prop_map(move |cut| real[..cut].to_vec()),
    ]
}

fn plugin_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("hello".to_string()),
        // Cut short: a URI beyond 64 KiB is refused by the HTTP parser before the server
        // sees it, with a bare 414.
        1 => adversarial_text().prop_map(|s| percent_encode(&s.chars().take(1000).collect::<String>())),
    ]
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("manifest".to_string()),
        Just("component".to_string()),
        Just("signature".to_string()),
        adversarial_text(),
    ]
}

fn upload() -> impl Strategy<Value = Upload> {
    let field = prop_oneof![
        manifest().prop_map(|m| ("manifest".to_string(), m)),
        component().prop_map(|c| ("component".to_string(), c)),
        (field_name(), prop::collection::vec(any::<u8>(), 0..128)),
        adversarial_text().prop_map(|s| ("signature".to_string(), s.into_bytes())),
    ];
    let form = (
        plugin_name(),
        (manifest(), component()),
        prop::collection::vec(field, 0..4),
    )
        .prop_map(|(plugin, (manifest, component), extra)| {
            let mut fields = vec![
                ("manifest".to_string(), manifest),
                ("component".to_string(), component),
            ];
            fields.extend(extra);
            Upload::Form { plugin, fields }
        });
    let raw_body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        // Shaped like multipart, broken somewhere.
        (field_name(), adversarial_text()).prop_map(|(name, value)| {
            format!(
                "--{BOUNDARY}\r\ncontent-disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n--{BOUNDARY}"
            )
            .into_bytes()
        }),
        adversarial_text().prop_map(|header| {
            format!("--{BOUNDARY}\r\n{header}\r\n\r\nbody\r\n--{BOUNDARY}--\r\n").into_bytes()
        }),
        Just(format!("--{BOUNDARY}--\r\n").into_bytes()),
        Just(Vec::new()),
    ];
    let content_type = prop_oneof![
        3 => Just(format!("multipart/form-data; boundary={BOUNDARY}")),
        1 => Just("multipart/form-data".to_string()),
        1 => Just("multipart/form-data; boundary=".to_string()),
        1 => Just(format!("multipart/form-data; boundary={}", "b".repeat(300))),
        1 => Just("application/json".to_string()),
        1 => "[ -~]{0,80}",
    ];
    let raw = (plugin_name(), content_type, raw_body).prop_map(|(plugin, content_type, body)| {
        Upload::Raw {
            plugin,
            content_type,
            body,
        }
    });
    prop_oneof![form, raw]
}

/// Percent-encodes everything but unreserved characters, so any text can be a path segment.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn send(app: &TestApp, upload: Upload) -> reqwest::Response {
    match upload {
        Upload::Form { plugin, fields } => {
            let mut form = reqwest::multipart::Form::new();
            for (name, value) in fields {
                form = form.part(
                    name,
                    reqwest::multipart::Part::bytes(value).file_name("part"),
                );
            }
            app.client
                .post(app.url(&format!("/api/v1/plugins/{plugin}/versions")))
                .multipart(form)
                .send()
                .await
                .expect("POST publish")
        }
        Upload::Raw {
            plugin,
            content_type,
            body,
        } => app
            .client
            .post(app.url(&format!("/api/v1/plugins/{plugin}/versions")))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST publish"),
    }
}

/// The catalogue as the API lists it and the number of stored blobs.
async fn catalogue(app: &TestApp) -> (Value, u64) {
    let listed = app.get_json("/api/v1/plugins").await;
    let blobs = app.store().await.catalogue().blob_count().await.unwrap();
    (listed, blobs)
}

async fn malformed_publishes_are_refused_and_change_nothing(app: TestApp) {
    // One good version, so a refused upload has something to leave untouched.
    app.publish_built("hello").await;
    let before = catalogue(&app).await;
    let handle = tokio::runtime::Handle::current();
    // Each case is an HTTP round trip, some with a component to parse: 48 keep the run to
    // seconds on each database while still reaching every strategy above.
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&upload(), |upload| {
        let described: String = format!("{upload:?}").chars().take(300).collect();
        tokio::task::block_in_place(|| {
            handle.block_on(async {
                let response = send(&app, upload).await;
                let status = response.status().as_u16();
                let content_type = response
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let body = response.text().await.unwrap_or_default();
                prop_assert!(
                    (400..500).contains(&status),
                    "{status} for {described}: {body}"
                );
                prop_assert_eq!(
                    content_type.as_str(),
                    "application/problem+json",
                    "{} for {}: {}",
                    status,
                    described,
                    body
                );
                let problem: Value = serde_json::from_str(&body)
                    .map_err(|e| TestCaseError::fail(format!("{e}: {body}")))?;
                prop_assert_eq!(&problem["status"], &Value::from(status));
                Ok(())
            })
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    assert_eq!(
        catalogue(&app).await,
        before,
        "a refused upload changed the catalogue"
    );
}

/// A 70,000-character field is quoted back clipped, in a problem that still has its status,
/// instance and request id.
async fn long_manifest_text_is_refused_with_a_whole_problem(app: TestApp) {
    let base = guildhall_test_artifacts::plugin("hello").manifest();
    let long = "a".repeat(70_000);
    let before = catalogue(&app).await;
    for field in ["name", "version", "publisher", "licence"] {
        let manifest: String = base
            .lines()
            .map(|line| {
                if line.starts_with(&format!("{field} =")) {
                    format!("{field} = \"{long}\"")
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let upload = Upload::Form {
            plugin: "hello".to_string(),
            fields: vec![
                ("manifest".to_string(), manifest.into_bytes()),
                (
                    "component".to_string(),
                    guildhall_test_artifacts::plugin("hello").bytes(),
                ),
            ],
        };
        let response = send(&app, upload).await;
        let status = response.status().as_u16();
        let problem: Value = response.json().await.expect("a problem");
        assert!((400..500).contains(&status), "{field}: {status} {problem}");
        assert_eq!(problem["status"], status, "{field}: {problem}");
        assert!(problem["instance"].is_string(), "{field}: {problem}");
        assert!(problem["request_id"].is_string(), "{field}: {problem}");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            detail.chars().count() <= 1025,
            "{field}: {} chars",
            detail.len()
        );
    }
    assert_eq!(catalogue(&app).await, before);
}
