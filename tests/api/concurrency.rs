//! Concurrency, on both databases: for every write operation in the OpenAPI document, batches
//! of concurrent identical and conflicting requests. Each batch must answer only statuses its
//! route documents (never 5xx); the state read back over the API afterwards must equal one
//! acknowledged write (nothing merged, nothing lost, nothing a refused request wrote); every
//! request must be on its audit chain with its outcome and every chain must verify; and the
//! gateway must serve the state that was read back.
//!
//! `every_write_route_is_raced` holds the list of covered operations against the document,
//! so a new write route fails the suite until it has a case here.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::future::join_all;
use guildhall_domain::manifest::Manifest;
use guildhall_domain::signing::{self, SecretKey};
use guildhall_domain::{Digest, TenantId};
use guildhall_store::{AuditRecord, Store};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, client_with};
use crate::on_both_databases;

on_both_databases!(
    tenant_creates,
    council_puts,
    brand_puts,
    install_puts,
    install_deletes,
    member_puts,
    token_mints_and_revokes,
    version_publishes,
    first_publishes,
    yanks,
    owner_changes,
    key_changes,
    feedback_ratings,
    reports_get_unique_ids,
    install_settings_races,
    subject_requests_race,
    retention_puts,
    deletes_race,
);

/// Concurrent requests in a batch.
const N: usize = 8;
/// Concurrent tenant creations in a batch, and ratings from one address.
const WIDE_N: usize = 12;
/// Batches of each kind per scenario, so that races show.
const ROUNDS: usize = 3;

type Route = (&'static str, &'static str);

const CREATE_TENANT: Route = ("post", "/api/v1/tenants");
const PUT_COUNCIL: Route = ("put", "/api/v1/tenants/{tenant}/councils/{council}");
const PUT_BRAND: Route = ("put", "/api/v1/tenants/{tenant}/brand");
const PUT_INSTALL: Route = ("put", "/api/v1/tenants/{tenant}/installs/{plugin}");
const DELETE_INSTALL: Route = ("delete", "/api/v1/tenants/{tenant}/installs/{plugin}");
const PUT_MEMBER: Route = ("put", "/api/v1/tenants/{tenant}/members/{subject}");
const MINT_TOKEN: Route = ("post", "/api/v1/tenants/{tenant}/tokens");
const REVOKE_TOKEN: Route = ("delete", "/api/v1/tenants/{tenant}/tokens/{token}");
const PUBLISH: Route = ("post", "/api/v1/plugins/{plugin}/versions");
const YANK: Route = ("post", "/api/v1/plugins/{plugin}/versions/{version}/yank");
const ADD_OWNER: Route = ("put", "/api/v1/plugins/{plugin}/owners/{subject}");
const REMOVE_OWNER: Route = ("delete", "/api/v1/plugins/{plugin}/owners/{subject}");
const PUT_KEY: Route = ("put", "/api/v1/publisher-keys/{name}");
const DELETE_KEY: Route = ("delete", "/api/v1/publisher-keys/{name}");
const RATE: Route = ("post", "/s/{tenant}/{council}/{plugin}/_feedback");
const PUT_SECRET: Route = (
    "put",
    "/api/v1/tenants/{tenant}/installs/{plugin}/secrets/{name}",
);
const DELETE_SECRET: Route = (
    "delete",
    "/api/v1/tenants/{tenant}/installs/{plugin}/secrets/{name}",
);
const PUT_COUNCIL_CONFIG: Route = (
    "put",
    "/api/v1/tenants/{tenant}/installs/{plugin}/councils/{council}/config",
);
const RUN_SCHEDULE: Route = (
    "post",
    "/api/v1/tenants/{tenant}/installs/{plugin}/schedules/{name}/run",
);

const SUBJECT_REQUEST: Route = ("post", "/api/v1/tenants/{tenant}/subject-requests");
const DELETE_TENANT: Route = ("delete", "/api/v1/tenants/{tenant}");
const DELETE_COUNCIL: Route = ("delete", "/api/v1/tenants/{tenant}/councils/{council}");
const PUT_RETENTION: Route = (
    "put",
    "/api/v1/tenants/{tenant}/installs/{plugin}/retention",
);

/// Every write operation this suite races, and the scenario that races it.
const COVERED: &[(Route, &str)] = &[
    (CREATE_TENANT, "tenant_creates"),
    (PUT_COUNCIL, "council_puts"),
    (PUT_BRAND, "brand_puts"),
    (PUT_INSTALL, "install_puts, install_deletes, yanks"),
    (DELETE_INSTALL, "install_deletes"),
    (PUT_MEMBER, "member_puts"),
    (MINT_TOKEN, "token_mints_and_revokes"),
    (REVOKE_TOKEN, "token_mints_and_revokes"),
    (PUBLISH, "version_publishes, first_publishes, key_changes"),
    (YANK, "yanks"),
    (ADD_OWNER, "owner_changes"),
    (REMOVE_OWNER, "owner_changes"),
    (PUT_KEY, "key_changes"),
    (DELETE_KEY, "key_changes"),
    (RATE, "feedback_ratings"),
    (PUT_SECRET, "install_settings_races"),
    (DELETE_SECRET, "install_settings_races"),
    (PUT_COUNCIL_CONFIG, "install_settings_races"),
    (RUN_SCHEDULE, "install_settings_races"),
    (SUBJECT_REQUEST, "subject_requests_race"),
    (PUT_RETENTION, "retention_puts"),
    (DELETE_TENANT, "deletes_race"),
    (DELETE_COUNCIL, "deletes_race"),
];

/// The methods that write.
const WRITE_METHODS: [&str; 4] = ["post", "put", "patch", "delete"];

/// The tenant most scenarios work in, and its councils.
const T: &str = "north-downs";
const COUNCILS: [&str; 4] = [
    "tandridge",
    "mole-valley",
    "reigate-banstead",
    "epsom-ewell",
];

/// Every write operation in the OpenAPI document has a concurrency scenario here, and every
/// operation listed here is still in the document: a new write route fails this test until
/// it is raced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_route_is_raced() {
    let app = TestApp::spawn(Backend::Sqlite)
        .await
        .expect("SQLite is always available");
    let documented: BTreeSet<(String, String)> = Contract::of(&app).await.0.into_keys().collect();
    assert!(
        !documented.is_empty(),
        "the document lists no write operations"
    );
    let covered: BTreeSet<(String, String)> = COVERED
        .iter()
        .map(|((method, path), _)| (method.to_string(), path.to_string()))
        .collect();
    let missing: Vec<_> = documented.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "write operations without a concurrency scenario in tests/api/concurrency.rs: {missing:?}"
    );
    let stale: Vec<_> = covered.difference(&documented).collect();
    assert!(
        stale.is_empty(),
        "operations listed as raced that the OpenAPI document no longer has: {stale:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Racing, the documented contract, the audit chains and the gateway.

/// One answered request of a batch.
#[derive(Debug, Clone)]
struct Answer {
    /// Its place in the batch: the index of what it sent.
    index: usize,
    status: u16,
    /// The server's request id, which its audit entry carries.
    request_id: String,
    /// The JSON body; `Null` when empty, a string when not JSON.
    body: Value,
}

impl Answer {
    fn acknowledged(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Sends every request at once and collects the answers, in batch order.
async fn race(requests: Vec<reqwest::RequestBuilder>) -> Vec<Answer> {
    join_all(
        requests
            .into_iter()
            .enumerate()
            .map(|(index, request)| async move {
                let response = request.send().await.expect("the server answers");
                let status = response.status().as_u16();
                let request_id = response
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let text = response.text().await.expect("a body");
                let body = if text.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_str(&text).unwrap_or(Value::String(text))
                };
                Answer {
                    index,
                    status,
                    request_id,
                    body,
                }
            }),
    )
    .await
}

fn statuses(answers: &[Answer]) -> Vec<u16> {
    answers.iter().map(|a| a.status).collect()
}

fn with_status(answers: &[Answer], status: u16) -> Vec<&Answer> {
    answers.iter().filter(|a| a.status == status).collect()
}

/// Asserts that exactly one answer has `status`, showing them all when not.
#[track_caller]
fn exactly_one(answers: &[Answer], status: u16) {
    assert_eq!(
        with_status(answers, status).len(),
        1,
        "{:?}",
        statuses(answers)
    );
}

/// Asserts that every answer has one of `allowed` statuses, showing the first that has not.
#[track_caller]
fn assert_statuses(what: &str, answers: &[Answer], allowed: &[u16]) {
    if let Some(odd) = answers.iter().find(|a| !allowed.contains(&a.status)) {
        panic!(
            "{what}: expected only {allowed:?}, got {:?}; request {} answered {}: {}",
            statuses(answers),
            odd.index,
            odd.status,
            odd.body
        );
    }
}

/// Asserts that `stored` (a state read back) is one of the acknowledged writes' states.
#[track_caller]
fn assert_acknowledged(what: &str, stored: &Value, acknowledged: &[Value]) {
    assert!(
        acknowledged.contains(stored),
        "{what}: the final state {stored} is none of the acknowledged writes {acknowledged:?}"
    );
}

/// The documented statuses of every write operation, from the server's OpenAPI document.
struct Contract(BTreeMap<(String, String), BTreeSet<u16>>);

impl Contract {
    async fn of(app: &TestApp) -> Self {
        let doc: Value = app
            .anonymous
            .get(app.url("/api/openapi.json"))
            .send()
            .await
            .expect("GET /api/openapi.json")
            .json()
            .await
            .expect("the OpenAPI document is JSON");
        let mut operations = BTreeMap::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("a path item") {
                if !WRITE_METHODS.contains(&method.as_str()) {
                    continue;
                }
                let documented: BTreeSet<u16> = operation["responses"]
                    .as_object()
                    .map(|r| r.keys().filter_map(|k| k.parse().ok()).collect())
                    .unwrap_or_default();
                operations.insert((method.clone(), path.clone()), documented);
            }
        }
        Self(operations)
    }

    /// Asserts that every answer is a status `route` documents, and none a server error.
    #[track_caller]
    fn check(&self, (method, path): Route, answers: &[Answer]) {
        let documented = self
            .0
            .get(&(method.to_string(), path.to_string()))
            .unwrap_or_else(|| panic!("{method} {path} is not in the OpenAPI document"));
        let method = method.to_uppercase();
        for a in answers {
            assert!(
                a.status < 500,
                "{method} {path}: request {} of {} answered {} (a server error): {}; all: {:?}",
                a.index,
                answers.len(),
                a.status,
                a.body,
                statuses(answers)
            );
            assert!(
                documented.contains(&a.status),
                "{method} {path}: request {} answered {}, not one of the documented {documented:?}: {}",
                a.index,
                a.status,
                a.body
            );
        }
    }
}

/// Every entry of one audit chain: a tenant's, or the platform's for `None`.
async fn chain_entries(store: &Store, chain: Option<&str>) -> Vec<AuditRecord> {
    let audit = match chain {
        Some(tenant) => {
            let scope = store
                .scope(&TenantId::parse(tenant).unwrap())
                .await
                .unwrap()
                .expect("the tenant exists");
            store.audit(&scope)
        }
        None => store.platform_audit(),
    };
    let mut entries: Vec<AuditRecord> = Vec::new();
    loop {
        let after = entries.last().map_or(0, |e| e.seq);
        let page = audit.list(after, 1000).await.expect("read the audit log");
        if page.is_empty() {
            return entries;
        }
        entries.extend(page);
    }
}

/// Asserts that every audit chain (the platform's and each tenant's) verifies.
async fn assert_chains_intact(store: &Store) {
    let mut verifications = vec![store.platform_audit().verify().await.unwrap()];
    for tenant in store.tenants().list().await.unwrap() {
        let scope = store.scope(&tenant.id).await.unwrap().unwrap();
        verifications.push(store.audit(&scope).verify().await.unwrap());
    }
    for v in verifications {
        assert!(
            v.broken.is_none(),
            "the audit chain {} is broken after concurrent writes: {:?}",
            v.chain,
            v.broken
        );
    }
}

/// Asserts that each answer is on `chain` (a tenant's, or the platform's for `None`) exactly
/// once, as `action` with the answer's status as its outcome, and that every chain verifies.
async fn assert_on_record(app: &TestApp, chain: Option<&str>, action: &str, answers: &[Answer]) {
    let store = app.store().await;
    let entries = chain_entries(&store, chain).await;
    let name = chain.unwrap_or("platform");
    for a in answers {
        let found: Vec<&AuditRecord> = entries
            .iter()
            .filter(|e| e.request_id == a.request_id)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "request {} ({action}, answered {}) has {} entries on the {name} audit chain",
            a.index,
            a.status,
            found.len()
        );
        assert_eq!(
            (found[0].action.as_str(), found[0].outcome.as_str()),
            (action, a.status.to_string().as_str()),
            "request {}'s audit entry on the {name} chain: {:?}",
            a.index,
            found[0]
        );
    }
    assert_chains_intact(&store).await;
    store.close().await.ok();
}

/// Polls the gateway, for up to two seconds, until every council in `councils` of `tenant`
/// is served as `install` says: hello at its version for an enabled council, 404 for any
/// other, and 404 everywhere when `install` is `None`.
async fn assert_gateway_serves(
    app: &TestApp,
    tenant: &str,
    councils: &[&str],
    install: Option<&Value>,
) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut wrong = Vec::new();
        for council in councils {
            let expected = install
                .filter(|i| enabled(&i["councils"], council))
                .map(|i| format!("hello@{}", i["version"].as_str().unwrap()));
            let response = app
                .anonymous
                .get(app.url(&format!("/s/{tenant}/{council}/hello/")))
                .send()
                .await
                .expect("the gateway answers");
            let status = response.status().as_u16();
            let served_by = response
                .headers()
                .get("x-guildhall-plugin")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let body = response.text().await.unwrap_or_default();
            let right = match &expected {
                Some(version) => {
                    status == 200
                        && served_by == *version
                        && body == format!("Hello from {council} ({tenant})!")
                }
                None => status == 404,
            };
            if !right {
                wrong.push(format!(
                    "{council}: expected {}, got {status} {served_by:?} {body:?}",
                    expected.as_deref().unwrap_or("404")
                ));
            }
        }
        if wrong.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway does not serve the final install {install:?} in {tenant}: {wrong:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether an install's `councils` (`"all"` or a list) enables `council`.
fn enabled(councils: &Value, council: &str) -> bool {
    councils == "all"
        || councils
            .as_array()
            .is_some_and(|list| list.iter().any(|c| c == council))
}

/// An RFC 3339 UTC time in nanoseconds since 1970, so times written at different
/// precisions compare.
fn nanos(value: &Value) -> i128 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"));
    let field = |at: std::ops::Range<usize>| -> i64 {
        text.get(at)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an RFC 3339 time: {text}"))
    };
    let (year, month, day) = (field(0..4), field(5..7), field(8..10));
    let (hour, minute, second) = (field(11..13), field(14..16), field(17..19));
    let rest = &text[19..];
    let (fraction, offset) = match rest.strip_prefix('.') {
        Some(r) => r.split_at(r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len())),
        None => ("", rest),
    };
    assert!(
        offset == "Z" || offset == "+00:00",
        "not a UTC time: {text}"
    );
    let fraction: i128 = format!("{fraction:0<9}")[..9].parse().unwrap();
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    i128::from(days * 86_400 + hour * 3_600 + minute * 60 + second) * 1_000_000_000 + fraction
}

/// Asserts that a record's `updated_at` is not before its `created_at`.
#[track_caller]
fn assert_updated_after_created(what: &str, record: &Value) {
    assert!(
        nanos(&record["updated_at"]) >= nanos(&record["created_at"]),
        "{what}: updated_at {} is earlier than created_at {}",
        record["updated_at"],
        record["created_at"]
    );
}

/// Asserts that two times name the same instant (to the microsecond a database keeps).
#[track_caller]
fn assert_same_instant(what: &str, a: &Value, b: &Value) {
    assert!(
        (nanos(a) - nanos(b)).abs() <= 1_000,
        "{what}: {a} and {b} differ"
    );
}

// ---------------------------------------------------------------------------------------
// Tenants and councils.

/// Twelve concurrent creations of one tenant id with different names, adoption flags and
/// councils, and twelve with one identical body: exactly one is created (201), the others
/// are refused (409) and change nothing, so the tenant read back is exactly the body that
/// was acknowledged, never a merge; every attempt is on the platform's audit chain.
async fn tenant_creates(app: TestApp) {
    let contract = Contract::of(&app).await;
    for round in 0..ROUNDS {
        for (id, conflicting) in [
            (format!("race-{round}"), true),
            (format!("same-{round}"), false),
        ] {
            let bodies: Vec<Value> = (0..WIDE_N)
                .map(|i| tenant_body(&id, if conflicting { i } else { 0 }))
                .collect();
            let answers = race(
                bodies
                    .iter()
                    .map(|b| app.client.post(app.url("/api/v1/tenants")).json(b))
                    .collect(),
            )
            .await;
            contract.check(CREATE_TENANT, &answers);
            let created = with_status(&answers, 201);
            assert_eq!(
                created.len(),
                1,
                "POST /api/v1/tenants {id}: exactly one creation may succeed: {:?}",
                statuses(&answers)
            );
            assert_statuses(&format!("POST /api/v1/tenants {id}"), &answers, &[201, 409]);
            let winner = tenant_state(&bodies[created[0].index]);
            assert_eq!(
                tenant_state(&created[0].body),
                winner,
                "the 201 reports its body"
            );
            let stored = app.get_json(&format!("/api/v1/tenants/{id}")).await;
            assert_eq!(
                tenant_state(&stored),
                winner,
                "tenant {id} is not exactly the one acknowledged body (a refused creation changed it)"
            );
            assert_updated_after_created(&format!("tenant {id}"), &stored);
            assert_on_record(&app, None, "tenants.create", &answers).await;
        }
    }
}

/// A tenant body, different for each `take`: the councils overlap on `shared` with different
/// names and codes, and each take has councils of its own.
fn tenant_body(id: &str, take: usize) -> Value {
    let mut councils = vec![
        json!({"id": "shared", "name": format!("Shared council, take {take}")}),
        json!({"id": format!("own-{take}"), "name": format!("Own council {take}")}),
    ];
    if take % 2 == 1 {
        councils[0]["gss_code"] = json!(format!("E07{:06}", 100 + take));
        councils.push(json!({"id": format!("extra-{take}"), "name": "Extra council"}));
    }
    json!({
        "id": id,
        "name": format!("Alliance, take {take}"),
        "share_adoption": take.is_multiple_of(2),
        "councils": councils,
    })
}

/// A tenant as written or as read: id, name, adoption flag and councils by id.
fn tenant_state(tenant: &Value) -> Value {
    let mut councils: Vec<Value> = tenant["councils"]
        .as_array()
        .unwrap_or_else(|| panic!("no councils in {tenant}"))
        .iter()
        .map(council_state)
        .collect();
    councils.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    json!({
        "id": tenant["id"],
        "name": tenant["name"],
        "share_adoption": tenant["share_adoption"].as_bool().unwrap_or(false),
        "councils": councils,
    })
}

/// A council as written or as read (the id only when the body has one).
fn council_state(council: &Value) -> Value {
    json!({
        "id": council.get("id").cloned().unwrap_or(Value::Null),
        "name": council["name"],
        "gss_code": council.get("gss_code").cloned().unwrap_or(Value::Null),
    })
}

/// Eight concurrent identical PUTs of a new council, eight with different names and codes
/// for a new council, and eight for an existing one: a new council is created once (one
/// 201, the rest 200), every answer reports what it wrote, the council read back is one
/// acknowledged body, every PUT is on the tenant's audit chain, and the gateway serves the
/// new council at once (hello is installed for all councils).
async fn council_puts(app: TestApp) {
    let contract = Contract::of(&app).await;
    app.create_example_tenants().await;
    app.publish_built("hello").await;
    let installed = app
        .install(T, "hello", "0.1.0", json!("all"), json!({}))
        .await;
    assert_eq!(installed.status(), 201);
    let for_all = json!({"version": "0.1.0", "councils": "all"});
    for round in 0..ROUNDS {
        let batches = [
            (format!("same-{round}"), false, true),
            (format!("race-{round}"), true, true),
            ("tandridge".to_string(), true, false),
        ];
        for (council, conflicting, fresh) in batches {
            let path = format!("/api/v1/tenants/{T}/councils/{council}");
            let bodies: Vec<Value> = (0..N)
                .map(|i| council_body(round, if conflicting { i } else { 0 }))
                .collect();
            let answers = race(
                bodies
                    .iter()
                    .map(|b| app.client.put(app.url(&path)).json(b))
                    .collect(),
            )
            .await;
            contract.check(PUT_COUNCIL, &answers);
            assert_statuses(&format!("PUT {path}"), &answers, &[200, 201]);
            assert_eq!(
                with_status(&answers, 201).len(),
                usize::from(fresh),
                "PUT {path}: one 201 for a new council, none for an existing one: {:?}",
                statuses(&answers)
            );
            let mut acknowledged = Vec::new();
            for a in &answers {
                let sent = json!({"id": council, "name": bodies[a.index]["name"],
                    "gss_code": bodies[a.index].get("gss_code").cloned().unwrap_or(Value::Null)});
                assert_eq!(
                    council_state(&a.body),
                    sent,
                    "an answer reports what it wrote"
                );
                assert_updated_after_created(&format!("PUT {path} answer"), &a.body);
                acknowledged.push(sent);
            }
            let tenant = app.get_json(&format!("/api/v1/tenants/{T}")).await;
            let stored: Vec<&Value> = tenant["councils"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["id"] == council.as_str())
                .collect();
            assert_eq!(stored.len(), 1, "{tenant}");
            assert_acknowledged(
                &format!("PUT {path}"),
                &council_state(stored[0]),
                &acknowledged,
            );
            assert_updated_after_created(&format!("council {council}"), stored[0]);
            assert_on_record(&app, Some(T), "councils.put", &answers).await;
            assert_gateway_serves(&app, T, &[&council], Some(&for_all)).await;
        }
    }
}

/// Eight concurrent PUTs of an alliance's brand, half sharing one new logo and half each
/// with their own, and eight councils' PUTs in another alliance with the same logos at the
/// same time: every answer is 200 and reports what it wrote, the brand read back is one
/// acknowledged write, every logo any answer names is served, and every PUT is on its
/// tenant's audit chain.
async fn brand_puts(app: TestApp) {
    use base64::Engine as _;
    let contract = Contract::of(&app).await;
    app.create_example_tenants().await;
    let logo = |n: usize| {
        let svg = format!("<svg xmlns=\"http://www.w3.org/2000/svg\"><title>{n}</title></svg>");
        format!(
            "data:image/svg+xml;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(svg)
        )
    };
    for round in 0..ROUNDS {
        let bodies: Vec<Value> = (0..N)
            .map(|i| {
                let which = if i % 2 == 0 {
                    round * 100
                } else {
                    round * 100 + i
                };
                json!({"colour": format!("#0000{:02x}", i), "logo": logo(which)})
            })
            .collect();
        let path = format!("/api/v1/tenants/{T}/brand");
        let mut requests: Vec<reqwest::RequestBuilder> = bodies
            .iter()
            .map(|b| app.client.put(app.url(&path)).json(b))
            .collect();
        // The same logos, written at once by councils of another alliance.
        requests.extend((0..N).map(|i| {
            let council = ["shropshire", "herefordshire", "telford-wrekin"][i % 3];
            app.client
                .put(app.url(&format!("/api/v1/tenants/the-marches/councils/{council}")))
                .json(
                    &json!({"name": format!("Council {i}"), "brand": {"logo": bodies[i]["logo"]}}),
                )
        }));
        let answers = race(requests).await;
        let (brands, councils) = answers.split_at(N);
        contract.check(PUT_BRAND, brands);
        assert_statuses(&format!("PUT {path}"), &answers, &[200]);
        let mut acknowledged = Vec::new();
        for a in brands {
            assert_eq!(
                a.body["brand"]["colour"], bodies[a.index]["colour"],
                "an answer reports what it wrote"
            );
            acknowledged.push(a.body["brand"].clone());
        }
        for a in brands.iter().chain(councils) {
            let logo = a.body["brand"]["logo"]
                .as_str()
                .expect("a logo path")
                .to_string();
            let served = app.anonymous.get(app.url(&logo)).send().await.unwrap();
            assert_eq!(served.status(), 200, "{logo}");
        }
        let tenant = app.get_json(&format!("/api/v1/tenants/{T}")).await;
        assert_acknowledged(&format!("PUT {path}"), &tenant["brand"], &acknowledged);
        assert_on_record(&app, Some(T), "tenants.brand", brands).await;
        assert_on_record(&app, Some("the-marches"), "councils.put", councils).await;
    }
}

/// A council body, different for each `take`.
fn council_body(round: usize, take: usize) -> Value {
    let name = format!("Council {round}, take {take}");
    if take.is_multiple_of(2) {
        json!({"name": name})
    } else {
        json!({"name": name, "gss_code": format!("E07{:06}", round * 100 + take)})
    }
}

// ---------------------------------------------------------------------------------------
// Installs.

/// Publishes hello 0.1.0 and, from the same component, 0.2.0.
async fn publish_hello_twice(app: &TestApp) {
    let hello = guildhall_test_artifacts::plugin("hello");
    app.publish_built("hello").await;
    let response = app
        .publish(
            "hello",
            &hello_manifest("hello", "0.2.0"),
            hello.bytes(),
            None,
        )
        .await;
    assert_eq!(response.status(), 201);
}

/// An install body of hello, different for each `take` below eight: two versions and four
/// council sets.
fn install_body(take: usize) -> Value {
    let councils = [
        json!(["tandridge", "mole-valley"]),
        json!(["epsom-ewell"]),
        json!("all"),
        json!(["reigate-banstead", "tandridge"]),
    ][take % 4]
        .clone();
    let version = if (take / 4).is_multiple_of(2) {
        "0.1.0"
    } else {
        "0.2.0"
    };
    json!({"version": version, "councils": councils, "config": {}})
}

/// An install as written or as read: version, councils (lists sorted) and config.
fn install_state(install: &Value) -> Value {
    let councils = match install["councils"].as_array() {
        Some(list) => {
            let mut ids: Vec<&str> = list.iter().map(|c| c.as_str().unwrap()).collect();
            ids.sort_unstable();
            json!(ids)
        }
        None => install["councils"].clone(),
    };
    json!({"version": install["version"], "councils": councils, "config": install["config"]})
}

/// The install of `plugin` in `tenant` as listed, if any.
async fn installed(app: &TestApp, tenant: &str, plugin: &str) -> Option<Value> {
    let list = app
        .get_json(&format!("/api/v1/tenants/{tenant}/installs"))
        .await;
    list["installs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["plugin"] == plugin)
        .cloned()
}

/// Uninstalls hello from `tenant` if it is installed.
async fn uninstall(app: &TestApp, tenant: &str) {
    let response = app
        .client
        .delete(app.url(&format!("/api/v1/tenants/{tenant}/installs/hello")))
        .send()
        .await
        .unwrap();
    assert!(
        [204, 404].contains(&response.status().as_u16()),
        "uninstall: {}",
        response.status()
    );
}

/// Races `bodies` as PUTs of hello's install in T (`fresh`: there is none yet) and checks
/// the outcome; returns the install read back.
async fn install_race(app: &TestApp, contract: &Contract, bodies: &[Value], fresh: bool) -> Value {
    let path = format!("/api/v1/tenants/{T}/installs/hello");
    let answers = race(
        bodies
            .iter()
            .map(|b| app.client.put(app.url(&path)).json(b))
            .collect(),
    )
    .await;
    contract.check(PUT_INSTALL, &answers);
    assert_statuses(&format!("PUT {path}"), &answers, &[200, 201]);
    assert_eq!(
        with_status(&answers, 201).len(),
        usize::from(fresh),
        "PUT {path}: one 201 when there was no install, none otherwise: {:?}",
        statuses(&answers)
    );
    let stored = installed(app, T, "hello")
        .await
        .expect("hello is installed after acknowledged PUTs");
    let mut acknowledged = Vec::new();
    for a in &answers {
        assert_eq!(
            install_state(&a.body),
            install_state(&bodies[a.index]),
            "an answer reports what it wrote"
        );
        assert_updated_after_created(&format!("PUT {path} answer {}", a.index), &a.body);
        assert_same_instant(
            &format!(
                "PUT {path} answer {}: created_at against the stored install",
                a.index
            ),
            &a.body["created_at"],
            &stored["created_at"],
        );
        acknowledged.push(install_state(&bodies[a.index]));
    }
    assert_updated_after_created(&format!("install after PUT {path}"), &stored);
    assert_acknowledged(
        &format!("PUT {path}"),
        &install_state(&stored),
        &acknowledged,
    );
    assert_on_record(app, Some(T), "installs.put", &answers).await;
    assert_gateway_serves(app, T, &COUNCILS, Some(&stored)).await;
    stored
}

/// Eight concurrent first installs with one body, eight updates with different versions
/// and councils, and eight first installs with different bodies: an install is created once
/// (one 201, the rest 200, never a 500), every answer reports what it wrote and the one
/// creation time, `updated_at` is never before `created_at`, the install read back is one
/// acknowledged body, every PUT is audited, and the gateway serves exactly that version to
/// exactly those councils.
async fn install_puts(app: TestApp) {
    let contract = Contract::of(&app).await;
    app.create_example_tenants().await;
    publish_hello_twice(&app).await;
    let different: Vec<Value> = (0..N).map(install_body).collect();
    for _ in 0..ROUNDS {
        uninstall(&app, T).await;
        let first = install_race(&app, &contract, &vec![install_body(0); N], true).await;
        let updated = install_race(&app, &contract, &different, false).await;
        assert_same_instant(
            "an update keeps the install's creation time",
            &updated["created_at"],
            &first["created_at"],
        );
        uninstall(&app, T).await;
        install_race(&app, &contract, &different, true).await;
    }
}

/// Eight concurrent uninstalls of one install, then four installs racing four uninstalls:
/// one uninstall succeeds (204) and the rest find nothing (404); when installs race
/// uninstalls, the successes add up (the install is there exactly when as many uninstalls
/// as creations succeeded) and what is left is one acknowledged body; every request is
/// audited and the gateway serves what is left.
async fn install_deletes(app: TestApp) {
    let contract = Contract::of(&app).await;
    app.create_example_tenants().await;
    publish_hello_twice(&app).await;
    let path = format!("/api/v1/tenants/{T}/installs/hello");
    // The body installed before each batch; no racing PUT sends it.
    let initial = install_body(1);
    for _ in 0..ROUNDS {
        uninstall(&app, T).await;
        assert_eq!(app.put_json(&path, &initial).await.status(), 201);
        let answers = race((0..N).map(|_| app.client.delete(app.url(&path))).collect()).await;
        contract.check(DELETE_INSTALL, &answers);
        assert_statuses(&format!("DELETE {path}"), &answers, &[204, 404]);
        assert_eq!(
            with_status(&answers, 204).len(),
            1,
            "DELETE {path}: exactly one uninstall succeeds: {:?}",
            statuses(&answers)
        );
        assert_eq!(installed(&app, T, "hello").await, None, "uninstalled");
        assert_on_record(&app, Some(T), "installs.delete", &answers).await;
        assert_gateway_serves(&app, T, &COUNCILS, None).await;

        assert_eq!(app.put_json(&path, &initial).await.status(), 201);
        let puts: Vec<Value> = (0..N).step_by(2).map(install_body).collect();
        let requests = (0..N)
            .map(|i| {
                if i.is_multiple_of(2) {
                    app.client.put(app.url(&path)).json(&puts[i / 2])
                } else {
                    app.client.delete(app.url(&path))
                }
            })
            .collect();
        let answers = race(requests).await;
        let (put_answers, delete_answers): (Vec<Answer>, Vec<Answer>) =
            answers.into_iter().partition(|a| a.index.is_multiple_of(2));
        contract.check(PUT_INSTALL, &put_answers);
        contract.check(DELETE_INSTALL, &delete_answers);
        assert_statuses(&format!("PUT {path}"), &put_answers, &[200, 201]);
        assert_statuses(&format!("DELETE {path}"), &delete_answers, &[204, 404]);
        let created = with_status(&put_answers, 201).len();
        let removed = with_status(&delete_answers, 204).len();
        let stored = installed(&app, T, "hello").await;
        match &stored {
            Some(install) => {
                assert_eq!(
                    removed,
                    created,
                    "installed at the end, so as many uninstalls as creations succeeded: {:?} {:?}",
                    statuses(&put_answers),
                    statuses(&delete_answers)
                );
                let acknowledged: Vec<Value> = put_answers
                    .iter()
                    .map(|a| install_state(&puts[a.index / 2]))
                    .collect();
                assert_acknowledged(
                    &format!("PUT/DELETE {path}"),
                    &install_state(install),
                    &acknowledged,
                );
                assert_updated_after_created("install after PUT/DELETE", install);
            }
            None => assert_eq!(
                removed,
                created + 1,
                "uninstalled at the end, so one more uninstall than creations succeeded: {:?} {:?}",
                statuses(&put_answers),
                statuses(&delete_answers)
            ),
        }
        assert_on_record(&app, Some(T), "installs.put", &put_answers).await;
        assert_on_record(&app, Some(T), "installs.delete", &delete_answers).await;
        assert_gateway_serves(&app, T, &COUNCILS, stored.as_ref()).await;
    }
}

// ---------------------------------------------------------------------------------------
// Members and tokens.

/// The identity provider member bindings name.
const ISSUER: &str = "north-downs-idp";

/// A member binding as written or as read: roles (sorted) and council.
fn member_state(member: &Value) -> Value {
    let mut roles: Vec<&str> = member["roles"]
        .as_array()
        .unwrap_or_else(|| panic!("no roles in {member}"))
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    roles.sort_unstable();
    json!({"roles": roles, "council": member.get("council").cloned().unwrap_or(Value::Null)})
}

/// A member body, different for each `take` below four.
fn member_body(take: usize) -> Value {
    match take % 4 {
        0 => json!({"roles": ["officer"], "council": "tandridge"}),
        1 => json!({"roles": ["auditor"]}),
        2 => json!({"roles": ["tenant-admin"]}),
        _ => json!({"roles": ["officer"], "council": "mole-valley"}),
    }
}

/// Races `bodies` as PUTs of the binding of `sub` in T (`fresh`: there is none yet) and
/// checks the outcome, including that the roles in force are the binding read back.
async fn member_race(
    app: &TestApp,
    contract: &Contract,
    idp: &crate::access::Idp,
    sub: &str,
    bodies: &[Value],
    fresh: bool,
) {
    let subject = format!("oidc:{ISSUER}:{sub}");
    let path = format!("/api/v1/tenants/{T}/members/{subject}");
    let answers = race(
        bodies
            .iter()
            .map(|b| app.client.put(app.url(&path)).json(b))
            .collect(),
    )
    .await;
    contract.check(PUT_MEMBER, &answers);
    let mut acknowledged = Vec::new();
    for a in &answers {
        let sent = &bodies[a.index];
        if sent["roles"].as_array().unwrap().is_empty() {
            assert_eq!(a.status, 204, "PUT {path} with no roles: {}", a.body);
        } else {
            assert!(
                [200, 201].contains(&a.status),
                "PUT {path}: {:?}; request {}: {}",
                statuses(&answers),
                a.index,
                a.body
            );
            assert_eq!(
                member_state(&a.body),
                member_state(sent),
                "an answer reports what it wrote"
            );
            assert_updated_after_created(&format!("PUT {path} answer"), &a.body);
            acknowledged.push(member_state(sent));
        }
    }
    if fresh {
        assert_eq!(
            with_status(&answers, 201).len(),
            1,
            "PUT {path}: one binding is created: {:?}",
            statuses(&answers)
        );
    }
    let members = app.get_json(&format!("/api/v1/tenants/{T}/members")).await;
    let stored = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["subject"] == subject.as_str())
        .map(member_state);
    match &stored {
        Some(state) => assert_acknowledged(&format!("PUT {path}"), state, &acknowledged),
        None => assert!(
            !with_status(&answers, 204).is_empty(),
            "PUT {path}: the binding is gone though no removal was acknowledged"
        ),
    }
    assert_roles_in_force(app, idp, sub, stored.as_ref()).await;
    assert_on_record(app, Some(T), "members.put", &answers).await;
}

/// Asserts that `sub`, signed in at the identity provider, has the access its binding
/// (`None`: no binding) gives: the audit log for tenant admins and auditors, the members for
/// tenant admins, 403 for what its roles do not allow, and 404 without a role.
async fn assert_roles_in_force(
    app: &TestApp,
    idp: &crate::access::Idp,
    sub: &str,
    binding: Option<&Value>,
) {
    let now = crate::access::now();
    let jwt = idp.sign(
        json!({"iss": "https://login.north-downs.example/", "aud": "guildhall",
        "sub": sub, "iat": now, "exp": now + 600}),
    );
    let client = client_with(Some(&jwt));
    let roles: Vec<&str> = binding.map_or(Vec::new(), |b| {
        b["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect()
    });
    let has = |role: &str| roles.contains(&role);
    let expected = |allowed: bool| match (roles.is_empty(), allowed) {
        (true, _) => 404,
        (false, true) => 200,
        (false, false) => 403,
    };
    let mut seen = Vec::new();
    for path in ["audit", "members"] {
        let response = client
            .get(app.url(&format!("/api/v1/tenants/{T}/{path}")))
            .send()
            .await
            .unwrap();
        seen.push(response.status().as_u16());
    }
    assert_eq!(
        seen,
        [
            expected(has("tenant-admin") || has("auditor")),
            expected(has("tenant-admin"))
        ],
        "GET audit and members as {sub}: the roles in force are not the binding {binding:?}"
    );
}

/// Eight concurrent identical PUTs of a new member binding, eight with different roles and
/// councils, and four that set roles racing four that remove an existing binding: a
/// binding is created once (one 201, never a 500), what is read back is one acknowledged
/// body (or gone only when a removal was acknowledged), and the roles in force for the
/// subject are exactly the binding's, with no role left over from a losing write.
async fn member_puts(mut app: TestApp) {
    let idp = crate::access::Idp::new();
    app.config.auth.oidc = vec![idp.issuer()];
    app.restart().await;
    let contract = Contract::of(&app).await;
    app.create_example_tenants().await;
    for round in 0..ROUNDS {
        member_race(
            &app,
            &contract,
            &idp,
            &format!("same-{round}"),
            &vec![member_body(0); N],
            true,
        )
        .await;
        let different: Vec<Value> = (0..N).map(member_body).collect();
        member_race(
            &app,
            &contract,
            &idp,
            &format!("race-{round}"),
            &different,
            true,
        )
        .await;
        // Roles set and removed at once, on a binding that exists.
        let sub = format!("flip-{round}");
        let path = format!("/api/v1/tenants/{T}/members/oidc:{ISSUER}:{sub}");
        assert_eq!(app.put_json(&path, &member_body(1)).await.status(), 201);
        let flips: Vec<Value> = (0..N)
            .map(|i| {
                if i.is_multiple_of(2) {
                    member_body(2)
                } else {
                    json!({"roles": []})
                }
            })
            .collect();
        member_race(&app, &contract, &idp, &sub, &flips, false).await;
    }
}

/// A token body, different for each `take`.
fn token_body(round: usize, take: usize) -> Value {
    let role = ["officer", "auditor", "tenant-admin"][take % 3];
    let mut body = json!({"name": format!("ci {round}.{take}"), "role": role,
        "expires_in_days": 30 + take});
    if role == "officer" && take.is_multiple_of(2) {
        body["council"] = json!("tandridge");
    }
    body
}

/// A token as asked for or as listed: name, role and council.
fn token_state(token: &Value) -> Value {
    json!({"name": token["name"], "role": token["role"],
        "council": token.get("council").cloned().unwrap_or(Value::Null)})
}

/// Eight concurrent identical mints and eight different ones: every mint succeeds (201) with
/// its own id and a token that works, and the list holds exactly what was minted. Eight
/// concurrent revocations of one token all answer 200 and agree on one revocation time (the
/// one listed), and eight revocations of different tokens all hold; revoked tokens are
/// refused. Every request is on the tenant's audit chain.
async fn token_mints_and_revokes(app: TestApp) {
    let contract = Contract::of(&app).await;
    app.create_example_tenants().await;
    let tokens_path = format!("/api/v1/tenants/{T}/tokens");
    let works = |token: &str| {
        let request = app
            .client_for(token)
            .get(app.url(&format!("/api/v1/tenants/{T}")));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let mut minted: BTreeMap<String, Value> = BTreeMap::new();
    for round in 0..ROUNDS {
        let mut batches = Vec::new();
        for conflicting in [false, true] {
            let bodies: Vec<Value> = (0..N)
                .map(|i| token_body(round, if conflicting { i } else { 0 }))
                .collect();
            let answers = race(
                bodies
                    .iter()
                    .map(|b| app.client.post(app.url(&tokens_path)).json(b))
                    .collect(),
            )
            .await;
            contract.check(MINT_TOKEN, &answers);
            assert_statuses(&format!("POST {tokens_path}"), &answers, &[201]);
            for a in &answers {
                assert_eq!(token_state(&a.body), token_state(&bodies[a.index]));
                let id = a.body["id"].as_str().unwrap().to_string();
                assert!(
                    minted
                        .insert(id.clone(), token_state(&bodies[a.index]))
                        .is_none(),
                    "token id {id} was minted twice"
                );
                assert_eq!(works(a.body["token"].as_str().unwrap()).await, 200);
            }
            assert_on_record(&app, Some(T), "tokens.create", &answers).await;
            batches.push(answers);
        }
        let list = app.get_json(&tokens_path).await;
        let listed: BTreeMap<String, Value> = list["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["id"].as_str().unwrap().to_string(), token_state(t)))
            .collect();
        assert_eq!(listed, minted, "the list is exactly the minted tokens");

        // One token revoked eight times at once.
        let target = &batches[0][0].body;
        let id = target["id"].as_str().unwrap();
        let path = format!("{tokens_path}/{id}");
        let answers = race((0..N).map(|_| app.client.delete(app.url(&path))).collect()).await;
        contract.check(REVOKE_TOKEN, &answers);
        assert_statuses(&format!("DELETE {path}"), &answers, &[200]);
        let list = app.get_json(&tokens_path).await;
        let stored = list["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap()
            .clone();
        assert!(stored["revoked_at"].is_string(), "{stored}");
        let listed = nanos(&stored["revoked_at"]);
        assert!(
            answers
                .iter()
                .any(|a| (nanos(&a.body["revoked_at"]) - listed).abs() <= 1_000),
            "DELETE {path}: the listed revocation time {} is none of the acknowledged ones",
            stored["revoked_at"]
        );
        // A token is revoked once: a repeated revocation reports that time, not a new one.
        for a in &answers {
            assert_same_instant(
                &format!(
                    "DELETE {path}: answer {} and the token's listed revocation time (a repeated \
                     revocation moved it)",
                    a.index
                ),
                &a.body["revoked_at"],
                &stored["revoked_at"],
            );
        }
        assert_eq!(works(target["token"].as_str().unwrap()).await, 401);
        assert_on_record(&app, Some(T), "tokens.revoke", &answers).await;

        // Eight different tokens revoked at once.
        let targets: Vec<&Value> = batches[1].iter().map(|a| &a.body).collect();
        let answers = race(
            targets
                .iter()
                .map(|t| {
                    app.client
                        .delete(app.url(&format!("{tokens_path}/{}", t["id"].as_str().unwrap())))
                })
                .collect(),
        )
        .await;
        contract.check(REVOKE_TOKEN, &answers);
        assert_statuses(&format!("DELETE {tokens_path}/…"), &answers, &[200]);
        let list = app.get_json(&tokens_path).await;
        for t in &targets {
            let listed = list["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["id"] == t["id"])
                .unwrap();
            assert!(listed["revoked_at"].is_string(), "{listed}");
            assert_eq!(works(t["token"].as_str().unwrap()).await, 401);
        }
        assert_on_record(&app, Some(T), "tokens.revoke", &answers).await;
    }
}

// ---------------------------------------------------------------------------------------
// The catalogue: versions, yanks, owners and signing keys.

/// hello's manifest under another name and version.
fn hello_manifest(name: &str, version: &str) -> String {
    let text = guildhall_test_artifacts::plugin("hello")
        .manifest()
        .replacen("name = \"hello\"", &format!("name = \"{name}\""), 1)
        .replacen(
            "version = \"0.1.0\"",
            &format!("version = \"{version}\""),
            1,
        );
    let manifest = Manifest::from_toml(&text).unwrap();
    assert_eq!(
        (
            manifest.name.as_str(),
            manifest.version.to_string().as_str()
        ),
        (name, version),
        "hello's manifest names hello 0.1.0"
    );
    text
}

/// A publish request from `client`.
fn publish_request(
    app: &TestApp,
    client: &reqwest::Client,
    manifest: &str,
    component: Vec<u8>,
    signature: Option<String>,
) -> reqwest::RequestBuilder {
    let name = Manifest::from_toml(manifest).unwrap().name;
    let mut form = reqwest::multipart::Form::new()
        .text("manifest", manifest.to_string())
        .part(
            "component",
            reqwest::multipart::Part::bytes(component).file_name("component.wasm"),
        );
    if let Some(signature) = signature {
        form = form.text("signature", signature);
    }
    client
        .post(app.url(&format!("/api/v1/plugins/{name}/versions")))
        .multipart(form)
}

/// The subject `client` acts as.
async fn subject_of(app: &TestApp, client: &reqwest::Client) -> String {
    let keys: Value = client
        .get(app.url("/api/v1/publisher-keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    keys["subject"].as_str().unwrap().to_string()
}

/// The owners of `plugin`, in the order they were added.
async fn owners(app: &TestApp, plugin: &str) -> Vec<String> {
    let list = app
        .get_json(&format!("/api/v1/plugins/{plugin}/owners"))
        .await;
    list["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["subject"].as_str().unwrap().to_string())
        .collect()
}

/// Publishers for racing: `n` clients with their own publisher tokens, and their subjects.
async fn publishers(app: &TestApp, n: usize) -> Vec<(reqwest::Client, String)> {
    let mut publishers = Vec::new();
    for _ in 0..n {
        let client = app.client_for(&app.token("publisher", None, None).await);
        let subject = subject_of(app, &client).await;
        publishers.push((client, subject));
    }
    publishers
}

/// Eight concurrent publishes of one version with the same bytes (one 201, the rest 200,
/// all naming that digest), and eight of one version with three different components (one
/// 201; the requests with the winner's bytes 200, the others 409; the version read back has
/// the winner's digest). Every request is on the platform's audit chain.
async fn version_publishes(app: TestApp) {
    let contract = Contract::of(&app).await;
    let bytes = guildhall_test_artifacts::plugin("hello").bytes();
    app.publish_built("hello").await;
    for round in 0..ROUNDS {
        // One version, the same bytes.
        let same = format!("1.{round}.0");
        let manifest = hello_manifest("hello", &same);
        let answers = race(
            (0..N)
                .map(|_| publish_request(&app, &app.client, &manifest, bytes.clone(), None))
                .collect(),
        )
        .await;
        contract.check(PUBLISH, &answers);
        assert_statuses(&format!("publish hello {same}"), &answers, &[200, 201]);
        exactly_one(&answers, 201);
        let digest = Digest::of(&bytes).to_string();
        for a in &answers {
            assert_eq!(a.body["digest"], digest.as_str());
        }
        let stored = app
            .get_json(&format!("/api/v1/plugins/hello/versions/{same}"))
            .await;
        assert_eq!(stored["digest"], digest.as_str());
        assert_on_record(&app, None, "catalogue.publish", &answers).await;

        // One version, three different components.
        let contested = format!("2.{round}.0");
        let manifest = hello_manifest("hello", &contested);
        let variants: Vec<Vec<u8>> = (0..3)
            .map(|v| {
                guildhall_test_artifacts::with_custom_section(
                    &bytes,
                    "concurrency",
                    format!("{round}.{v}").as_bytes(),
                )
            })
            .collect();
        let answers = race(
            (0..N)
                .map(|i| {
                    publish_request(&app, &app.client, &manifest, variants[i % 3].clone(), None)
                })
                .collect(),
        )
        .await;
        contract.check(PUBLISH, &answers);
        let created = with_status(&answers, 201);
        assert_eq!(
            created.len(),
            1,
            "publish hello {contested}: {:?}",
            statuses(&answers)
        );
        let winner = created[0].index % 3;
        for a in &answers {
            let expected = match (a.index % 3 == winner, a.index == created[0].index) {
                (true, true) => 201,
                (true, false) => 200,
                (false, _) => 409,
            };
            assert_eq!(
                a.status,
                expected,
                "publish hello {contested}, request {} (component {} of 3; the winner's is {winner}): {}",
                a.index,
                a.index % 3,
                a.body
            );
        }
        let stored = app
            .get_json(&format!("/api/v1/plugins/hello/versions/{contested}"))
            .await;
        assert_eq!(
            stored["digest"],
            Digest::of(&variants[winner]).to_string().as_str()
        );
        assert_on_record(&app, None, "catalogue.publish", &answers).await;
    }
}

/// Eight publishers publish a new name at once, with the same bytes: exactly one is
/// created (201) and owns the name; the others are not owners and are refused (403), as
/// they would be one after the other. Every attempt is on the platform's audit chain.
async fn first_publishes(app: TestApp) {
    let contract = Contract::of(&app).await;
    let bytes = guildhall_test_artifacts::plugin("hello").bytes();
    let publishers = publishers(&app, N).await;
    // The losing window is narrow and each round is cheap (the component is compiled once).
    for round in 0..2 * ROUNDS {
        // A new name, first published by eight publishers at once.
        let fresh = format!("fresh-{round}");
        let manifest = hello_manifest(&fresh, "0.1.0");
        let answers = race(
            publishers
                .iter()
                .map(|(client, _)| publish_request(&app, client, &manifest, bytes.clone(), None))
                .collect(),
        )
        .await;
        contract.check(PUBLISH, &answers);
        let created = with_status(&answers, 201);
        assert_eq!(
            created.len(),
            1,
            "first publishes of {fresh}: {:?}",
            statuses(&answers)
        );
        assert_statuses(
            &format!("first publishes of {fresh} (non-owners are refused)"),
            &answers,
            &[201, 403],
        );
        assert_eq!(
            owners(&app, &fresh).await,
            [publishers[created[0].index].1.clone()],
            "{fresh} is owned by its one successful publisher"
        );
        assert_on_record(&app, None, "catalogue.publish", &answers).await;
    }
}

/// Eight concurrent yanks of one version all answer 200 and leave it yanked. The owner's
/// yanks racing non-owners' yanks (403) and first installs of the version (201 or 200
/// before the yank, 409 after) leave the version yanked and the install there exactly when
/// one was acknowledged, as the gateway serves. Every request is audited.
async fn yanks(app: TestApp) {
    let contract = Contract::of(&app).await;
    app.create_example_tenants().await;
    let bytes = guildhall_test_artifacts::plugin("hello").bytes();
    app.publish_built("hello").await;
    let publishers = publishers(&app, N).await;
    for round in 0..ROUNDS {
        let same = format!("1.{round}.0");
        let contested = format!("2.{round}.0");
        for version in [&same, &contested] {
            let manifest = hello_manifest("hello", version);
            let published = publish_request(&app, &app.client, &manifest, bytes.clone(), None)
                .send()
                .await
                .unwrap();
            assert_eq!(published.status(), 201);
        }
        // One version yanked eight times at once.
        let yank_same = format!("/api/v1/plugins/hello/versions/{same}/yank");
        let answers = race(
            (0..N)
                .map(|_| app.client.post(app.url(&yank_same)))
                .collect(),
        )
        .await;
        contract.check(YANK, &answers);
        assert_statuses(&format!("POST {yank_same}"), &answers, &[200]);
        assert!(answers.iter().all(|a| a.body["yanked"] == true));
        let stored = app
            .get_json(&format!("/api/v1/plugins/hello/versions/{same}"))
            .await;
        assert_eq!(stored["yanked"], true);
        assert_on_record(&app, None, "catalogue.yank", &answers).await;

        // The owner's yanks race non-owners' yanks and first installs of the version.
        uninstall(&app, "the-marches").await;
        let yank = format!("/api/v1/plugins/hello/versions/{contested}/yank");
        let install_path = "/api/v1/tenants/the-marches/installs/hello";
        let body = json!({"version": contested, "councils": ["shropshire"], "config": {}});
        let requests = (0..N)
            .map(|i| match i % 3 {
                0 => app.client.post(app.url(&yank)),
                1 => publishers[i].0.post(app.url(&yank)),
                _ => app.client.put(app.url(install_path)).json(&body),
            })
            .collect();
        let answers = race(requests).await;
        let kind = |k: usize| -> Vec<Answer> {
            answers
                .iter()
                .filter(|a| a.index % 3 == k)
                .cloned()
                .collect()
        };
        let (own, others, installs) = (kind(0), kind(1), kind(2));
        contract.check(YANK, &own);
        contract.check(YANK, &others);
        contract.check(PUT_INSTALL, &installs);
        assert_statuses(&format!("POST {yank} as the owner"), &own, &[200]);
        assert_statuses(&format!("POST {yank} as a non-owner"), &others, &[403]);
        assert_statuses(
            &format!("PUT {install_path} racing a yank"),
            &installs,
            &[200, 201, 409],
        );
        assert!(
            with_status(&installs, 201).len() <= 1,
            "{:?}",
            statuses(&installs)
        );
        let stored = app
            .get_json(&format!("/api/v1/plugins/hello/versions/{contested}"))
            .await;
        assert_eq!(stored["yanked"], true, "yanked whatever raced it");
        let install = installed(&app, "the-marches", "hello").await;
        let any_installed = installs.iter().any(Answer::acknowledged);
        assert_eq!(
            install.as_ref().map(install_state),
            any_installed.then(|| install_state(&body)),
            "installed exactly when an install was acknowledged: {:?}",
            statuses(&installs)
        );
        assert_on_record(&app, None, "catalogue.yank", &[own, others].concat()).await;
        assert_on_record(&app, Some("the-marches"), "installs.put", &installs).await;
        assert_gateway_serves(
            &app,
            "the-marches",
            &["shropshire", "herefordshire"],
            install.as_ref(),
        )
        .await;
    }
}

/// Eight concurrent adds of one owner (one 201, the rest 200, listed once), adds racing
/// removals of one owner (the successes add up to whether it is an owner at the end), eight
/// removals of one owner (one 200, the rest 404), and removals of every owner of a plugin
/// at once: exactly all but one succeed, the last is refused (409), and the plugin never
/// has zero owners. Every request is on the platform's audit chain.
async fn owner_changes(app: TestApp) {
    let contract = Contract::of(&app).await;
    let bytes = guildhall_test_artifacts::plugin("hello").bytes();
    app.publish_built("hello").await;
    let me = subject_of(&app, &app.client).await;
    let owner_url = |plugin: &str, subject: &str| {
        app.url(&format!("/api/v1/plugins/{plugin}/owners/{subject}"))
    };
    for round in 0..ROUNDS {
        // One owner added eight times at once.
        let co = format!("token:co-owner-{round}");
        let answers = race(
            (0..N)
                .map(|_| app.client.put(owner_url("hello", &co)))
                .collect(),
        )
        .await;
        contract.check(ADD_OWNER, &answers);
        assert_statuses(&format!("PUT owner {co}"), &answers, &[200, 201]);
        exactly_one(&answers, 201);
        for a in &answers {
            assert!(
                a.body["owners"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|o| o["subject"] == co.as_str())
            );
        }
        let listed = owners(&app, "hello").await;
        assert_eq!(listed.iter().filter(|o| **o == co).count(), 1, "{listed:?}");
        assert_on_record(&app, None, "catalogue.owners.add", &answers).await;

        // Adds and removals of one owner at once.
        let flip = format!("token:flip-{round}");
        let added = app
            .client
            .put(owner_url("hello", &flip))
            .send()
            .await
            .unwrap();
        assert_eq!(added.status(), 201);
        let requests = (0..N)
            .map(|i| {
                if i.is_multiple_of(2) {
                    app.client.put(owner_url("hello", &flip))
                } else {
                    app.client.delete(owner_url("hello", &flip))
                }
            })
            .collect();
        let (adds, removes): (Vec<Answer>, Vec<Answer>) = race(requests)
            .await
            .into_iter()
            .partition(|a| a.index.is_multiple_of(2));
        contract.check(ADD_OWNER, &adds);
        contract.check(REMOVE_OWNER, &removes);
        assert_statuses(&format!("PUT owner {flip}"), &adds, &[200, 201]);
        assert_statuses(&format!("DELETE owner {flip}"), &removes, &[200, 404]);
        let created = with_status(&adds, 201).len();
        let removed = with_status(&removes, 200).len();
        let present = owners(&app, "hello").await.contains(&flip);
        assert_eq!(
            removed,
            created + usize::from(!present),
            "{flip} is {} an owner at the end, after {created} adds and {removed} removals succeeded",
            if present { "still" } else { "no longer" }
        );
        assert_on_record(&app, None, "catalogue.owners.add", &adds).await;
        assert_on_record(&app, None, "catalogue.owners.remove", &removes).await;

        // One owner removed eight times at once.
        let answers = race(
            (0..N)
                .map(|_| app.client.delete(owner_url("hello", &co)))
                .collect(),
        )
        .await;
        contract.check(REMOVE_OWNER, &answers);
        assert_statuses(&format!("DELETE owner {co}"), &answers, &[200, 404]);
        exactly_one(&answers, 200);
        assert!(!owners(&app, "hello").await.contains(&co));
        assert_on_record(&app, None, "catalogue.owners.remove", &answers).await;

        // Every owner of a plugin removed at once, each twice.
        let solo = format!("solo-{round}");
        let published = publish_request(
            &app,
            &app.client,
            &hello_manifest(&solo, "0.1.0"),
            bytes.clone(),
            None,
        )
        .send()
        .await
        .unwrap();
        assert_eq!(published.status(), 201);
        let mut everyone = vec![me.clone()];
        for k in 0..3 {
            let subject = format!("token:solo-{round}-{k}");
            let added = app
                .client
                .put(owner_url(&solo, &subject))
                .send()
                .await
                .unwrap();
            assert_eq!(added.status(), 201);
            everyone.push(subject);
        }
        let answers = race(
            (0..N)
                .map(|i| {
                    app.client
                        .delete(owner_url(&solo, &everyone[i % everyone.len()]))
                })
                .collect(),
        )
        .await;
        contract.check(REMOVE_OWNER, &answers);
        assert_statuses(
            &format!("DELETE every owner of {solo}"),
            &answers,
            &[200, 404, 409],
        );
        let left = owners(&app, &solo).await;
        assert_eq!(
            left.len(),
            1,
            "{solo} must keep exactly one owner: {left:?}; {:?}",
            statuses(&answers)
        );
        for (k, subject) in everyone.iter().enumerate() {
            let mut mine: Vec<u16> = answers
                .iter()
                .filter(|a| a.index % everyone.len() == k)
                .map(|a| a.status)
                .collect();
            mine.sort_unstable();
            let expected: &[u16] = if left[0] == *subject {
                &[409, 409]
            } else {
                &[200, 404]
            };
            assert_eq!(
                mine, expected,
                "removals of {subject} (the owner left is {})",
                left[0]
            );
        }
        assert_on_record(&app, None, "catalogue.owners.remove", &answers).await;
    }
}

/// A signing key, different for each round and take.
fn signing_key(round: usize, take: usize) -> SecretKey {
    let mut seed = [7u8; 32];
    seed[0] = round as u8;
    seed[1] = take as u8;
    SecretKey::from_seed(seed)
}

/// The caller's keys, name to public key.
async fn my_keys(app: &TestApp) -> BTreeMap<String, String> {
    let list = app.get_json("/api/v1/publisher-keys").await;
    list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["name"].as_str().unwrap().to_string(),
                k["public_key"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Signs the statement of `manifest` and `component` with `key`.
fn sign(key: &SecretKey, manifest: &str, component: &[u8]) -> String {
    let m = Manifest::from_toml(manifest).unwrap();
    key.sign(&signing::statement(
        &m.name,
        &m.version,
        &Digest::of(manifest.as_bytes()),
        &Digest::of(component),
    ))
}

/// Eight concurrent identical key registrations (one 201, the rest 200), eight different
/// keys under one name (one 201, the rest replace it with 200; one key is left under the
/// name, an acknowledged one, and it is the key that verifies a signed publish while a
/// replaced one does not), one key under eight names (one 201, the rest 409; the key is
/// under the winner's name only), and eight removals of one key (one 200, the rest 404).
/// Every request is on the platform's audit chain.
async fn key_changes(app: TestApp) {
    let contract = Contract::of(&app).await;
    let bytes = guildhall_test_artifacts::plugin("hello").bytes();
    app.publish_built("hello").await;
    let key_url = |name: &str| app.url(&format!("/api/v1/publisher-keys/{name}"));
    let body = |key: &SecretKey| json!({"public_key": key.public().to_base64()});
    for round in 0..ROUNDS {
        // One key under one name, eight times at once.
        let same = format!("same-{round}");
        let key = signing_key(round, 0);
        let answers = race(
            (0..N)
                .map(|_| app.client.put(key_url(&same)).json(&body(&key)))
                .collect(),
        )
        .await;
        contract.check(PUT_KEY, &answers);
        assert_statuses(&format!("PUT key {same}"), &answers, &[200, 201]);
        exactly_one(&answers, 201);
        assert_eq!(
            my_keys(&app).await.get(&same),
            Some(&key.public().to_base64())
        );
        assert_on_record(&app, None, "catalogue.keys.put", &answers).await;

        // Eight keys under one name at once.
        let name = format!("race-{round}");
        let keys: Vec<SecretKey> = (0..N).map(|i| signing_key(round, 1 + i)).collect();
        let answers = race(
            keys.iter()
                .map(|k| app.client.put(key_url(&name)).json(&body(k)))
                .collect(),
        )
        .await;
        contract.check(PUT_KEY, &answers);
        assert_statuses(&format!("PUT key {name}"), &answers, &[200, 201]);
        exactly_one(&answers, 201);
        let mine = my_keys(&app).await;
        let acknowledged: Vec<Value> = answers
            .iter()
            .map(|a| json!(keys[a.index].public().to_base64()))
            .collect();
        let stored = mine.get(&name).map(|k| json!(k)).unwrap_or(Value::Null);
        assert_acknowledged(&format!("PUT key {name}"), &stored, &acknowledged);
        let batch: BTreeSet<String> = keys.iter().map(|k| k.public().to_base64()).collect();
        let registered: Vec<(&String, &String)> =
            mine.iter().filter(|(_, k)| batch.contains(*k)).collect();
        assert_eq!(
            registered.len(),
            1,
            "one key of the batch is left registered: {registered:?}"
        );
        // The key in force verifies a signed publish; a replaced one does not.
        let winner = keys
            .iter()
            .position(|k| json!(k.public().to_base64()) == stored)
            .unwrap();
        let loser = &keys[(winner + 1) % N];
        let manifest = hello_manifest("hello", &format!("3.{round}.0"));
        let refused = publish_request(
            &app,
            &app.client,
            &manifest,
            bytes.clone(),
            Some(sign(loser, &manifest, &bytes)),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(refused.status(), 422, "a replaced key still verifies");
        let signed = publish_request(
            &app,
            &app.client,
            &manifest,
            bytes.clone(),
            Some(sign(&keys[winner], &manifest, &bytes)),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(signed.status(), 201, "the registered key does not verify");
        let signed: Value = signed.json().await.unwrap();
        assert_eq!(signed["signature"]["status"], "verified", "{signed}");
        assert_on_record(&app, None, "catalogue.keys.put", &answers).await;

        // One key under eight names at once.
        let key = signing_key(round, 100);
        let names: Vec<String> = (0..N).map(|i| format!("alias-{round}-{i}")).collect();
        let answers = race(
            names
                .iter()
                .map(|n| app.client.put(key_url(n)).json(&body(&key)))
                .collect(),
        )
        .await;
        contract.check(PUT_KEY, &answers);
        assert_statuses(&format!("PUT key alias-{round}-*"), &answers, &[201, 409]);
        let created = with_status(&answers, 201);
        assert_eq!(created.len(), 1, "{:?}", statuses(&answers));
        let under: Vec<String> = my_keys(&app)
            .await
            .into_iter()
            .filter(|(_, k)| *k == key.public().to_base64())
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            under,
            [names[created[0].index].clone()],
            "the key is under the winner's name only"
        );
        assert_on_record(&app, None, "catalogue.keys.put", &answers).await;

        // One key removed eight times at once.
        let answers = race((0..N).map(|_| app.client.delete(key_url(&same))).collect()).await;
        contract.check(DELETE_KEY, &answers);
        assert_statuses(&format!("DELETE key {same}"), &answers, &[200, 404]);
        exactly_one(&answers, 200);
        assert!(!my_keys(&app).await.contains_key(&same));
        assert_on_record(&app, None, "catalogue.keys.delete", &answers).await;
    }
}

// ---------------------------------------------------------------------------------------
// Citizens' ratings.

/// Ratings from one address a minute.
const RATINGS_PER_MINUTE: usize = 10;

/// Twelve concurrent ratings from one address, identical and different: exactly ten are
/// stored (201) and the rest refused (429), each stored rating has its own id, and the KPIs
/// count exactly the stored ratings with their mean; the audit chains still verify.
async fn feedback_ratings(mut app: TestApp) {
    // Each batch comes from its own address, named by the proxy the tests pose as.
    app.config.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    app.restart().await;
    let contract = Contract::of(&app).await;
    app.create_example_tenants().await;
    app.publish_built("hello").await;
    let installed = app
        .install(T, "hello", "0.1.0", json!(["tandridge"]), json!({}))
        .await;
    assert_eq!(installed.status(), 201);
    let path = format!("/s/{T}/tandridge/hello/_feedback");
    let mut accepted: Vec<u64> = Vec::new();
    let mut ids = BTreeSet::new();
    for round in 0..ROUNDS {
        for conflicting in [false, true] {
            let address = format!("198.51.100.{}", 1 + 2 * round + usize::from(conflicting));
            let bodies: Vec<Value> = (0..WIDE_N)
                .map(|i| {
                    if conflicting {
                        json!({"rating": 1 + i % 5, "comment": format!("Take {i}")})
                    } else {
                        json!({"rating": 4, "comment": "Quick and clear"})
                    }
                })
                .collect();
            let answers = race(
                bodies
                    .iter()
                    .map(|b| {
                        app.anonymous
                            .post(app.url(&path))
                            .header("x-forwarded-for", &address)
                            .json(b)
                    })
                    .collect(),
            )
            .await;
            contract.check(RATE, &answers);
            assert_statuses(&format!("POST {path}"), &answers, &[201, 429]);
            let stored = with_status(&answers, 201);
            assert_eq!(
                stored.len(),
                RATINGS_PER_MINUTE,
                "POST {path} from {address}: an address may send {RATINGS_PER_MINUTE} ratings a minute: {:?}",
                statuses(&answers)
            );
            for a in stored {
                assert!(
                    ids.insert(a.body["id"].as_str().unwrap().to_string()),
                    "a rating id twice"
                );
                accepted.push(bodies[a.index]["rating"].as_u64().unwrap());
            }
            let kpis = app.get_json(&format!("/api/v1/tenants/{T}/kpis")).await;
            let hello = kpis["services"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["plugin"] == "hello" && s["council"] == "tandridge")
                .unwrap_or_else(|| panic!("no KPIs for hello: {kpis}"))
                .clone();
            assert_eq!(hello["ratings"], accepted.len(), "{hello}");
            let mean = accepted.iter().sum::<u64>() as f64 / accepted.len() as f64;
            let satisfaction = hello["satisfaction"].as_f64().unwrap();
            assert!(
                (satisfaction - mean).abs() < 1e-9,
                "{satisfaction} against {mean}"
            );
            let store = app.store().await;
            assert_chains_intact(&store).await;
            store.close().await.ok();
        }
    }
}

/// Citizens reporting at once, through report-a-problem's Open311 `POST /requests.json`:
/// every acknowledged `service_request_id` is unique within its council and reads back with
/// what its citizen posted, so no acknowledged report was overwritten or lost (the plugin
/// hands out ids with `kv.increment` and files with `kv.set-if-absent`).
async fn reports_get_unique_ids(app: TestApp) {
    /// Citizens posting at once, and rounds of them.
    const CITIZENS: usize = 16;
    const REPORT_ROUNDS: usize = 4;
    app.create_example_tenants().await;
    app.install_reports("north-downs").await;
    let councils = ["tandridge", "mole-valley"];
    // (council, id) → the description its citizen posted.
    let mut acknowledged: BTreeMap<(&str, String), String> = BTreeMap::new();
    let mut refused = 0;
    for round in 0..REPORT_ROUNDS {
        let posts = (0..CITIZENS).map(|i| {
            // Most reports go to one council, so its counter is the contended one.
            let council = councils[usize::from(i % 4 == 3)];
            let description = format!("report {round}-{i} to {council}");
            let request = app
                .anonymous
                .post(app.url(&format!(
                    "/s/north-downs/{council}/report-a-problem/requests.json"
                )))
                .form(&[
                    ("service_code", "pothole"),
                    ("address_string", "High Street"),
                    ("description", description.as_str()),
                ]);
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                (council, description, status, body)
            }
        });
        for (council, description, status, body) in join_all(posts).await {
            match status {
                201 => {
                    let id = body[0]["service_request_id"]
                        .as_str()
                        .unwrap_or_else(|| panic!("no id in {body}"))
                        .to_owned();
                    if let Some(earlier) =
                        acknowledged.insert((council, id.clone()), description.clone())
                    {
                        panic!("{council} gave id {id} to {earlier:?} and to {description:?}");
                    }
                }
                // Busy (the fair gate or the memory budget), or past the tests' one-second
                // plugin deadline on a machine busy with other tests: not acknowledged, so
                // nothing promised (a call ended at its deadline may leave its id unused).
                429 | 503 | 504 => refused += 1,
                other => panic!("POST /requests.json answered {other}: {body}"),
            }
        }
    }
    assert!(
        acknowledged.len() * 2 > CITIZENS * REPORT_ROUNDS,
        "only {} of {} reports acknowledged ({refused} refused as busy)",
        acknowledged.len(),
        CITIZENS * REPORT_ROUNDS
    );
    for ((council, id), description) in &acknowledged {
        let response = app
            .anonymous
            .get(app.url(&format!(
                "/s/north-downs/{council}/report-a-problem/requests/{id}.json"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{council} request {id}");
        let text = response.text().await.unwrap();
        assert!(
            text.contains(&format!("\"{description}\"")),
            "{council} request {id} should be {description:?}: {text}"
        );
    }
    // Each council's ids are its own numbering, handed out without gaps from 1.
    for council in councils {
        let ids: BTreeSet<u64> = acknowledged
            .keys()
            .filter(|(c, _)| *c == council)
            .map(|(_, id)| id.parse().unwrap())
            .collect();
        if refused == 0 {
            assert_eq!(
                ids,
                (1..=ids.len() as u64).collect::<BTreeSet<_>>(),
                "{council}"
            );
        }
    }
}

/// Secrets set and removed at once, a council's settings written at once with the install
/// being put again, and a schedule run many times at once: each answer is documented and on
/// record, the secret ends as one acknowledged write or absent after an acknowledged delete,
/// the settings as one acknowledged write, and every run asked for ran once.
async fn install_settings_races(app: TestApp) {
    let contract = Contract::of(&app).await;
    app.create_example_tenants().await;
    app.publish_built("garden-waste").await;
    let config = json!({
        "eligible_postcodes": ["RH8"],
        "price_per_bin_pence": 4500,
        "confirmation_template_id": "c",
        "reminder_template_id": "r",
    });
    let installs = format!("/api/v1/tenants/{T}/installs/garden-waste");
    let response = app
        .install(T, "garden-waste", "0.1.0", json!("all"), config.clone())
        .await;
    assert_eq!(response.status(), 201);
    let secret = app.url(&format!("{installs}/secrets/pay_api_key"));
    let council_config = app.url(&format!("{installs}/councils/tandridge/config"));
    for round in 0..ROUNDS {
        // Secrets: puts of different values, and deletes, at once.
        let mut requests: Vec<reqwest::RequestBuilder> = (0..N)
            .map(|i| {
                app.client
                    .put(secret.clone())
                    .json(&json!({"value": format!("key-{round}-{i}")}))
            })
            .collect();
        requests.extend((0..N / 2).map(|_| app.client.delete(secret.clone())));
        let answers = race(requests).await;
        let (puts, deletes) = answers.split_at(N);
        contract.check(PUT_SECRET, puts);
        contract.check(DELETE_SECRET, deletes);
        assert_statuses("PUT secret", puts, &[200, 201]);
        assert_statuses("DELETE secret", deletes, &[204, 404]);
        assert_on_record(&app, Some(T), "secrets.put", puts).await;
        assert_on_record(&app, Some(T), "secrets.delete", deletes).await;
        let listed = app.get_json(&format!("{installs}/secrets")).await;
        assert!(listed["set"].as_array().unwrap().len() <= 1, "{listed}");

        // A council's settings, written at once, with the install put again.
        let bodies: Vec<Value> = (0..N)
            .map(|i| json!({"overrides": {"price_per_bin_pence": 1000 * (round * N + i + 1)}}))
            .collect();
        let mut requests: Vec<reqwest::RequestBuilder> = bodies
            .iter()
            .map(|b| app.client.put(council_config.clone()).json(b))
            .collect();
        requests.extend((0..N / 2).map(|_| {
            app.client
                .put(app.url(&installs))
                .json(&json!({"version": "0.1.0", "councils": "all", "config": config.clone()}))
        }));
        let answers = race(requests).await;
        let (settings, reinstalls) = answers.split_at(N);
        contract.check(PUT_COUNCIL_CONFIG, settings);
        contract.check(PUT_INSTALL, reinstalls);
        assert_statuses("PUT council config", settings, &[200]);
        assert_statuses("PUT install", reinstalls, &[200]);
        assert_on_record(&app, Some(T), "settings.put", settings).await;
        let stored = app
            .get_json(&format!("{installs}/councils/tandridge/config"))
            .await;
        let acknowledged: Vec<Value> = settings
            .iter()
            .map(|a| a.body["overrides"].clone())
            .collect();
        assert_acknowledged("PUT council config", &stored["overrides"], &acknowledged);
        // What the plugin is served matches what was stored.
        let (_, page) = app.serve(T, "tandridge", "garden-waste", "").await;
        let pence = stored["overrides"]["price_per_bin_pence"].as_u64().unwrap();
        assert!(
            page.contains(&format!("£{}.{:02}", pence / 100, pence % 100)),
            "{pence}: {page}"
        );

        // A schedule run asked for many times at once: each ran once, for one council.
        let run = app.url(&format!("{installs}/schedules/renewal-reminders/run"));
        let answers = race(
            (0..N)
                .map(|_| {
                    app.client
                        .post(run.clone())
                        .json(&json!({"council": "tandridge"}))
                })
                .collect(),
        )
        .await;
        contract.check(RUN_SCHEDULE, &answers);
        assert_statuses("POST run", &answers, &[200]);
        assert_on_record(&app, Some(T), "schedules.run", &answers).await;
        let ids: BTreeSet<String> = answers
            .iter()
            .map(|a| a.body["runs"][0]["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), N, "every run asked for is its own run");
    }
}

/// Erasure requests for one resident made at once, with access requests among them: every
/// record and event is erased by exactly one of them (the counts add up to what there was),
/// each answer is documented and on record, nothing of the resident is left, and another
/// resident's report stays.
async fn subject_requests_race(app: TestApp) {
    let contract = Contract::of(&app).await;
    app.create_example_tenants().await;
    app.install_reports(T).await;
    let report = |council: &'static str, email: &'static str| {
        app.anonymous
            .post(app.url(&format!("/s/{T}/{council}/report-a-problem/requests.json")))
            .form(&[
                ("service_code", "pothole"),
                ("address_string", "High Street"),
                ("email", email),
            ])
    };
    let mut reported = 0;
    for council in ["tandridge", "tandridge", "mole-valley"] {
        assert_eq!(
            report(council, "jo@example.org")
                .send()
                .await
                .unwrap()
                .status(),
            201
        );
        reported += 1;
    }
    assert_eq!(
        report("tandridge", "sam@example.org")
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    let dpo = app
        .client_as("data-protection-officer", Some(T), None)
        .await;
    let url = app.url(&format!("/api/v1/tenants/{T}/subject-requests"));
    let requests = (0..N)
        .map(|i| {
            let kind = if i % 3 == 2 { "access" } else { "erasure" };
            dpo.post(&url).json(&json!({
                "kind": kind,
                "identifiers": {"email": "jo@example.org"},
            }))
        })
        .collect();
    let answers = race(requests).await;
    contract.check(SUBJECT_REQUEST, &answers);
    assert_statuses("subject requests", &answers, &[201]);
    let (mut records, mut events) = (0, 0);
    for answer in &answers {
        assert_eq!(
            answer.body["request"]["state"], "completed",
            "{}",
            answer.body
        );
        for service in answer.body["services"].as_array().unwrap() {
            records += service["erased"]["service-request"].as_u64().unwrap_or(0);
            events += service["events_erased"].as_u64().unwrap_or(0);
        }
    }
    assert_eq!(
        (records, events),
        (reported, reported),
        "each erased exactly once"
    );
    assert_on_record(&app, Some(T), "subject-requests.create", &answers).await;
    let after = dpo
        .post(&url)
        .json(&json!({"kind": "access", "identifiers": {"email": "jo@example.org"}}))
        .send()
        .await
        .unwrap();
    let after: Value = after.json().await.unwrap();
    for service in after["services"].as_array().unwrap() {
        assert_eq!(service["records"], json!([]), "{after}");
        assert_eq!(service["events"], json!([]), "{after}");
    }
    let (status, sam) = app
        .serve(T, "tandridge", "report-a-problem", "requests/3.json")
        .await;
    assert_eq!(status, 200, "{sam}");
}

/// An install's retention set many times at once: in each round exactly one answer creates
/// it (the first round) or every answer replaces it, the stored setting is one of the
/// acknowledged ones, and every answer is documented and on record.
async fn retention_puts(app: TestApp) {
    let contract = Contract::of(&app).await;
    app.create_example_tenants().await;
    app.publish_built("fixture-kv-ttl").await;
    assert_eq!(
        app.install_for(T, "fixture-kv-ttl", json!("all"))
            .await
            .status(),
        201
    );
    let url = app.url(&format!(
        "/api/v1/tenants/{T}/installs/fixture-kv-ttl/retention"
    ));
    for round in 0..ROUNDS {
        let bodies: Vec<Value> = (0..N)
            .map(|i| json!({"kv_days": 10 + i, "event_days": 100 + round * N + i}))
            .collect();
        let answers = race(
            bodies
                .iter()
                .map(|body| app.client.put(&url).json(body))
                .collect(),
        )
        .await;
        contract.check(PUT_RETENTION, &answers);
        assert_statuses("retention puts", &answers, &[200, 201]);
        if round == 0 {
            exactly_one(&answers, 201);
        } else {
            assert!(
                with_status(&answers, 201).is_empty(),
                "{:?}",
                statuses(&answers)
            );
        }
        let stored: Value = app
            .client
            .get(&url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let state = json!({"kv_days": stored["kv_days"], "event_days": stored["event_days"]});
        assert!(
            bodies.contains(&state),
            "round {round}: {state} is none of the acknowledged writes"
        );
        assert_on_record(&app, Some(T), "installs.retention", &answers).await;
    }
}

// ---------------------------------------------------------------------------------------
// Deleting tenants and councils.

/// Racing deletions: each round, eight confirmed deletions of one tenant race writes into it
/// (councils added, hello installed, tokens minted, citizens' ratings), and eight confirmed
/// deletions of one council of another tenant race installs naming it and ratings of its
/// service. Exactly one deletion is acknowledged and the others find nothing (404); no
/// answer is a server error or undocumented; afterwards nothing of the tenant (or of the
/// council's ratings and install lists) is left and the gateway answers 404 for it. Every
/// tenant deletion, and every write refused because its tenant was gone, is on the
/// platform's chain; every council deletion and install is on the tenant's; every chain
/// verifies.
async fn deletes_race(app: TestApp) {
    use sea_orm::ConnectionTrait as _;
    let contract = Contract::of(&app).await;
    app.publish_built("hello").await;
    for round in 0..ROUNDS {
        // A tenant deleted while it is written to.
        let tenant = format!("gone-{round}");
        let created = app
            .post_json(
                "/api/v1/tenants",
                &json!({"id": tenant, "name": "Going", "councils": [
                    {"id": "first", "name": "First"}, {"id": "second", "name": "Second"}]}),
            )
            .await;
        assert_eq!(created.status(), 201);
        assert_eq!(app.install_for(&tenant, "hello", "all").await.status(), 201);
        let base = format!("/api/v1/tenants/{tenant}");
        // A new operator each round: requests the access layer refuses (the tenant gone)
        // are recorded up to a quota per principal a minute, and every one must be.
        let operator = app.client_as("operator", None, None).await;
        let mut requests = Vec::new();
        let mut routes = Vec::new();
        for i in 0..N {
            requests.push(operator.delete(app.url(&format!("{base}?confirm={tenant}"))));
            routes.push(DELETE_TENANT);
            let (route, request) = match i % 4 {
                0 => (
                    PUT_COUNCIL,
                    operator
                        .put(app.url(&format!("{base}/councils/extra-{i}")))
                        .json(&json!({"name": format!("Extra {i}")})),
                ),
                1 => (
                    PUT_INSTALL,
                    operator
                        .put(app.url(&format!("{base}/installs/hello")))
                        .json(&json!({"version": "0.1.0", "councils": ["first"], "config": {}})),
                ),
                2 => (
                    MINT_TOKEN,
                    operator
                        .post(app.url(&format!("{base}/tokens")))
                        .json(&json!({"name": format!("late {i}"), "role": "officer"})),
                ),
                _ => (
                    RATE,
                    app.anonymous
                        .post(app.url(&format!("/s/{tenant}/first/hello/_feedback")))
                        .json(&json!({"rating": 3})),
                ),
            };
            requests.push(request);
            routes.push(route);
        }
        let answers = race(requests).await;
        let of = |route: Route| -> Vec<Answer> {
            answers
                .iter()
                .filter(|a| routes[a.index] == route)
                .cloned()
                .collect()
        };
        for route in [DELETE_TENANT, PUT_COUNCIL, PUT_INSTALL, MINT_TOKEN, RATE] {
            contract.check(route, &of(route));
        }
        let deletes = of(DELETE_TENANT);
        exactly_one(&deletes, 200);
        assert_statuses("tenant deletions", &deletes, &[200, 404]);
        assert_eq!(app.get(&base).await.status(), 404);
        assert_eq!(
            crate::tenant_lifecycle::rows_of(&app, &tenant).await,
            Vec::<(String, i64)>::new(),
            "round {round}: rows of the deleted tenant are left"
        );
        assert_gateway_serves(&app, &tenant, &["first", "second"], None).await;
        assert_on_record(&app, None, "tenants.delete", &deletes).await;
        for (route, action) in [
            (PUT_COUNCIL, "councils.put"),
            (PUT_INSTALL, "installs.put"),
            (MINT_TOKEN, "tokens.create"),
        ] {
            let refused: Vec<Answer> = of(route).into_iter().filter(|a| a.status == 404).collect();
            assert_on_record(&app, None, action, &refused).await;
        }

        // A council deleted while installs name it and citizens rate its service.
        let kept = format!("kept-{round}");
        let created = app
            .post_json(
                "/api/v1/tenants",
                &json!({"id": kept, "name": "Kept", "councils": [
                    {"id": "leaving", "name": "Leaving"}, {"id": "staying", "name": "Staying"}]}),
            )
            .await;
        assert_eq!(created.status(), 201);
        let install = json!({"version": "0.1.0", "councils": ["leaving", "staying"], "config": {}});
        assert_eq!(
            app.put_json(&format!("/api/v1/tenants/{kept}/installs/hello"), &install)
                .await
                .status(),
            201
        );
        let council = format!("/api/v1/tenants/{kept}/councils/leaving");
        let mut requests = Vec::new();
        let mut routes = Vec::new();
        for i in 0..N {
            requests.push(
                app.client
                    .delete(app.url(&format!("{council}?confirm=leaving"))),
            );
            routes.push(DELETE_COUNCIL);
            if i % 2 == 0 {
                requests.push(
                    app.client
                        .put(app.url(&format!("/api/v1/tenants/{kept}/installs/hello")))
                        .json(&install),
                );
                routes.push(PUT_INSTALL);
            } else if i % 4 == 1 {
                requests.push(
                    app.anonymous
                        .post(app.url(&format!("/s/{kept}/leaving/hello/_feedback")))
                        .json(&json!({"rating": 2})),
                );
                routes.push(RATE);
            }
        }
        let answers = race(requests).await;
        let of = |route: Route| -> Vec<Answer> {
            answers
                .iter()
                .filter(|a| routes[a.index] == route)
                .cloned()
                .collect()
        };
        for route in [DELETE_COUNCIL, PUT_INSTALL, RATE] {
            contract.check(route, &of(route));
        }
        let deletes = of(DELETE_COUNCIL);
        exactly_one(&deletes, 200);
        assert_statuses("council deletions", &deletes, &[200, 404]);
        let installs = of(PUT_INSTALL);
        assert_statuses("installs naming the council", &installs, &[200, 422]);
        let stored = installed(&app, &kept, "hello")
            .await
            .expect("hello stays installed for the council that stays");
        assert_eq!(stored["councils"], json!(["staying"]), "round {round}");
        let tenant = app.get_json(&format!("/api/v1/tenants/{kept}")).await;
        let ids: Vec<&str> = tenant["councils"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["staying"]);
        let admin = app.admin_store().await;
        let left = admin
            .connection()
            .query_one_raw(sea_orm::Statement::from_string(
                admin.backend(),
                format!(
                    "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM feedback \
                     WHERE tenant_id = '{kept}' AND council_id = 'leaving'"
                ),
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<i64>("", "n")
            .unwrap();
        admin.close().await.ok();
        assert_eq!(
            left, 0,
            "round {round}: ratings of the deleted council are left"
        );
        assert_gateway_serves(
            &app,
            &kept,
            &["leaving", "staying"],
            Some(&json!({"version": "0.1.0", "councils": ["staying"]})),
        )
        .await;
        assert_on_record(&app, Some(&kept), "councils.delete", &deletes).await;
        assert_on_record(&app, Some(&kept), "installs.put", &installs).await;
    }
}
