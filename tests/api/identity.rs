//! Trust boundaries between identities, tried as an attacker would: subjects spelt like roles,
//! the same `sub` at two providers, a council's provider reaching for the platform (or for
//! its own tenant under names nobody bound there), HEAD and unknown methods, lockouts by
//! other callers' failures, forwarded addresses, and floods of refused calls into an audit
//! chain.

use reqwest::Method;
use serde_json::{Value, json};

use crate::access::{A, B, Idp, concrete, now, operations, send, two_alliances};
use crate::helpers::{
    Backend, TestApp, client_with, expect_json, expect_problem, fetch_json, status_of,
};

const RESTRICTED: &str = "restricted";
const OPEN: &str = "open";
const OPEN2: &str = "open-two";

/// Three providers: one limited to tenant B, two that serve every tenant.
struct Providers {
    restricted: Idp,
    open: Idp,
    open2: Idp,
}

impl Providers {
    fn new() -> Self {
        Self {
            restricted: Idp::new(),
            open: Idp::new(),
            open2: Idp::new(),
        }
    }

    fn config(&self) -> Vec<guildhall_authz::OidcIssuer> {
        let issuer = |idp: &Idp, id: &str, tenants: Vec<String>| guildhall_authz::OidcIssuer {
            id: id.into(),
            issuer: format!("https://{id}.example/"),
            tenants,
            ..idp.issuer()
        };
        vec![
            issuer(&self.restricted, RESTRICTED, vec![B.into()]),
            issuer(&self.open, OPEN, vec![]),
            issuer(&self.open2, OPEN2, vec![]),
        ]
    }

    fn jwt(&self, id: &str, sub: &str) -> String {
        let idp = match id {
            RESTRICTED => &self.restricted,
            OPEN => &self.open,
            _ => &self.open2,
        };
        idp.sign(
            json!({"iss": format!("https://{id}.example/"), "aud": "guildhall",
            "sub": sub, "iat": now(), "exp": now() + 600}),
        )
    }
}

/// Starts a server on each available database with the three providers.
async fn apps(providers: &Providers) -> Vec<TestApp> {
    let mut apps = Vec::new();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if let Some(app) = TestApp::spawn_with(backend, |c| c.auth.oidc = providers.config()).await
        {
            apps.push(app);
        }
    }
    apps
}

async fn bind(app: &TestApp, tenant: &str, subject: &str, body: Value) -> reqwest::Response {
    app.put_json(
        &format!("/api/v1/tenants/{tenant}/members/{subject}"),
        &body,
    )
    .await
}

/// Whether `status` and `body` grant nothing to a caller with no role where it asks and no
/// platform role: `Err` says what was granted. Only reads of `authenticated` routes may
/// succeed, and none of them may show `tenant`.
fn judge(
    method: &Method,
    path: &str,
    access: &str,
    tenant: &str,
    status: u16,
    body: &str,
) -> Result<(), &'static str> {
    let success = (200..300).contains(&status);
    if access == "authenticated" {
        if [Method::GET, Method::HEAD].contains(method) {
            // Readable by anyone signed in, but it must not show the tenant. The catalogue
            // is shared by every tenant, so what it shows is not the tenant's.
            if success && body.contains(tenant) && !path.starts_with("/api/v1/plugins") {
                return Err("an authenticated read shows the tenant");
            }
        } else if ![403, 404].contains(&status) {
            // Changes through such routes (a plugin's owners) are the owners' alone, and
            // these callers own nothing.
            return Err("an authenticated change was not refused");
        }
    } else if access.starts_with("platform:") {
        if status != 403 {
            return Err("a platform route was not refused with 403");
        }
    } else if status != 404 {
        return Err("a tenant route did not answer as if the tenant did not exist");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restricted_providers_subjects_get_nothing_whatever_they_are_called() {
    let providers = Providers::new();
    for app in apps(&providers).await {
        two_alliances(&app).await;
        // Mallory is a tenant admin of A through the open provider; Carol one of B through
        // the restricted provider.
        for (tenant, subject, issuer) in [(A, "mallory", OPEN), (B, "carol", RESTRICTED)] {
            let body = json!({"issuer": issuer, "roles": ["tenant-admin"]});
            assert_eq!(bind(&app, tenant, subject, body).await.status(), 201);
        }

        let mut subs: Vec<String> = guildhall_domain::Role::ALL
            .iter()
            .flat_map(|r| [r.as_str().to_string(), r.casbin_name().to_string()])
            .collect();
        subs.extend(["*", "mallory", "carol", "anonymous", "token:x"].map(String::from));
        let ops = operations(&app).await;
        let mut failures = Vec::new();
        // Every name from the restricted provider; role names from an open one too.
        let mut callers: Vec<(&str, String)> =
            subs.iter().map(|s| (RESTRICTED, s.clone())).collect();
        callers.extend(
            guildhall_domain::Role::ALL
                .iter()
                .map(|r| (OPEN, r.as_str().to_string())),
        );
        for (provider, sub) in &callers {
            let client = client_with(Some(&providers.jwt(provider, sub)));
            // Every caller tries A; the restricted provider's callers also try B, the tenant
            // it serves, where none of them but Carol is bound.
            let mut tenants = vec![A];
            if *provider == RESTRICTED && sub != "carol" {
                tenants.push(B);
            }
            for tenant in tenants {
                for (method, path, access) in &ops {
                    // Routes that name no tenant answer B's run as they answered A's, but
                    // what an authenticated read shows depends on the tenant looked for.
                    if tenant == B && !path.contains("{tenant}") && access != "authenticated" {
                        continue;
                    }
                    let method: Method = method.parse().unwrap();
                    let mut methods = vec![method.clone()];
                    if method == Method::GET {
                        methods.push(Method::HEAD);
                    }
                    for method in methods {
                        let (status, body) =
                            send(&client, &app, &method, &concrete(path, tenant)).await;
                        let who =
                            format!("{provider}:{sub} {method} {path} in {tenant} ({access})");
                        if let Err(why) = judge(&method, path, access, tenant, status, &body) {
                            failures.push(format!("{who}: {why}: {status} {body}"));
                        }
                    }
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} crossings:\n{}",
            failures.len(),
            failures.join("\n")
        );

        // Carol holds her role in B, the tenant her provider serves, and nothing more.
        let carol = client_with(Some(&providers.jwt(RESTRICTED, "carol")));
        let listed = fetch_json(carol.get(app.url("/api/v1/tenants"))).await;
        assert_eq!(listed["tenants"].as_array().unwrap().len(), 1, "{listed}");
        assert_eq!(listed["tenants"][0]["id"], B);
        let r = carol
            .get(app.url(&format!("/api/v1/tenants/{B}/members")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // Mallory from the open provider is A's admin; the same `sub` from another provider
        // is somebody else.
        let mallory = client_with(Some(&providers.jwt(OPEN, "mallory")));
        let r = mallory
            .get(app.url(&format!("/api/v1/tenants/{A}/members")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let impostor = client_with(Some(&providers.jwt(OPEN2, "mallory")));
        expect_problem(
            impostor
                .get(app.url(&format!("/api/v1/tenants/{A}/members")))
                .send()
                .await
                .unwrap(),
            404,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_bound_with_their_issuer_named() {
    let providers = Providers::new();
    for app in apps(&providers).await {
        app.create_example_tenants().await;
        let before = app.get_json(&format!("/api/v1/tenants/{A}/members")).await;
        for (subject, body, field) in [
            // No issuer: which provider's `dave`?
            ("dave", json!({"roles": ["auditor"]}), "issuer"),
            (
                "dave",
                json!({"issuer": "nobody", "roles": ["auditor"]}),
                "issuer",
            ),
            (
                "dave",
                json!({"issuer": "Open", "roles": ["auditor"]}),
                "issuer",
            ),
            // The restricted provider does not serve A.
            (
                "dave",
                json!({"issuer": RESTRICTED, "roles": ["auditor"]}),
                "issuer",
            ),
            // The whole subject in the path, but another issuer in the body.
            (
                "oidc:open:dave",
                json!({"issuer": OPEN2, "roles": ["auditor"]}),
                "issuer",
            ),
            // Names that are not people's subjects.
            ("token:abc", json!({"roles": ["auditor"]}), ""),
            ("oidc:open:", json!({"roles": ["auditor"]}), "subject"),
            ("oidc::dave", json!({"roles": ["auditor"]}), "subject"),
            // Platform roles are never handed out in a tenant.
            ("dave", json!({"issuer": OPEN, "roles": ["operator"]}), ""),
            ("dave", json!({"issuer": OPEN, "roles": ["publisher"]}), ""),
        ] {
            let problem = expect_problem(bind(&app, A, subject, body.clone()).await, 422).await;
            if !field.is_empty() {
                assert_eq!(
                    problem["errors"][0]["field"], field,
                    "{subject} {body}: {problem}"
                );
            }
        }
        assert_eq!(
            app.get_json(&format!("/api/v1/tenants/{A}/members")).await,
            before
        );

        // Dave of one provider and Dave of another are two members.
        for (subject, body) in [
            ("dave", json!({"issuer": OPEN, "roles": ["auditor"]})),
            (
                "oidc:open-two:dave",
                json!({"roles": ["officer"], "council": "tandridge"}),
            ),
        ] {
            assert_eq!(bind(&app, A, subject, body).await.status(), 201);
        }
        let members = app.get_json(&format!("/api/v1/tenants/{A}/members")).await;
        let shown: Vec<(String, String, String)> = members["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["subject"].as_str().unwrap().to_string(),
                    m["issuer"].as_str().unwrap().to_string(),
                    m["sub"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("oidc:open-two:dave".into(), OPEN2.into(), "dave".into()),
                ("oidc:open:dave".into(), OPEN.into(), "dave".into()),
            ]
        );
        let audit_path = format!("/api/v1/tenants/{A}/audit");
        let dave = client_with(Some(&providers.jwt(OPEN, "dave")));
        assert_eq!(status_of(dave.get(app.url(&audit_path))).await, 200);
        let other_dave = client_with(Some(&providers.jwt(OPEN2, "dave")));
        expect_problem(
            other_dave.get(app.url(&audit_path)).send().await.unwrap(),
            403,
        )
        .await;

        // A user whose `sub` is spelt like a role is just a user: bound as an auditor, an
        // auditor is all they are.
        let r = bind(
            &app,
            A,
            "role:operator",
            json!({"issuer": OPEN, "roles": ["auditor"]}),
        )
        .await;
        let r = expect_json(r, 201).await;
        assert_eq!(r["subject"], "oidc:open:role:operator");
        let posing = client_with(Some(&providers.jwt(OPEN, "role:operator")));
        assert_eq!(status_of(posing.get(app.url(&audit_path))).await, 200);
        expect_problem(
            posing
                .post(app.url("/api/v1/tenants"))
                .json(&json!({"id": "posed", "name": "Posed"}))
                .send()
                .await
                .unwrap(),
            403,
        )
        .await;
        expect_problem(
            posing
                .put(app.url(&format!("/api/v1/tenants/{A}/councils/posed")))
                .json(&json!({"name": "Posed"}))
                .send()
                .await
                .unwrap(),
            403,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_made_before_subjects_named_their_issuer_are_moved_at_start() {
    let providers = Providers::new();
    // One provider serves A, so a bare `sub` bound in A can only have come from it.
    let only_open = |c: &mut guildhall::Config| {
        c.auth.oidc = providers
            .config()
            .into_iter()
            .filter(|i| i.id == OPEN)
            .collect();
    };
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(mut app) = TestApp::spawn_with(backend, only_open).await else {
            continue;
        };
        app.create_example_tenants().await;
        let store = app.admin_store().await;
        for sql in [
            format!(
                "INSERT INTO members (tenant_id, subject, roles, council, created_at, updated_at) \
                     VALUES ('{A}', 'erin', 'auditor', NULL, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            format!(
                "INSERT INTO casbin_rules (ptype, v0, v1, v2, v3, v4, v5) \
                     VALUES ('g', 'erin', 'role:auditor', '{A}', '', '', '')"
            ),
        ] {
            use sea_orm::ConnectionTrait;
            store.connection().execute_unprepared(&sql).await.unwrap();
        }
        let erin = client_with(Some(&providers.jwt(OPEN, "erin")));
        let audit_path = format!("/api/v1/tenants/{A}/audit");
        // The bare binding matches nobody.
        assert_eq!(status_of(erin.get(app.url(&audit_path))).await, 404);
        app.restart().await;
        assert_eq!(status_of(erin.get(app.url(&audit_path))).await, 200);
        let members = app.get_json(&format!("/api/v1/tenants/{A}/members")).await;
        assert_eq!(
            members["members"][0]["subject"], "oidc:open:erin",
            "{members}"
        );
        assert_eq!(members["members"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_on_every_api_path_is_decided_before_anything_answers() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    two_alliances(&app).await;
    let admin_b = app.client_as("tenant-admin", Some(B), None).await;
    let methods = [
        "GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND",
    ];
    let mut failures = Vec::new();
    let ops = operations(&app).await;
    let mut paths: Vec<String> = ops.iter().map(|(_, p, _)| p.clone()).collect();
    paths.dedup();
    for path in &paths {
        for method in methods {
            let method: Method = method.parse().unwrap();
            // Anonymous: 401, and the same answer whether the tenant exists or not.
            let mut answers = Vec::new();
            for tenant in [A, "no-such-alliance"] {
                let url = app.url(&concrete(path, tenant));
                let response = app
                    .anonymous
                    .request(method.clone(), url)
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                // `instance` echoes the path the caller sent; everything else must match.
                let mut body: Value = response.json().await.unwrap_or(Value::Null);
                if let Value::Object(problem) = &mut body {
                    problem.remove("instance");
                    problem.remove("request_id");
                }
                answers.push((status, body));
            }
            if answers[0].0 != 401 || answers[0] != answers[1] {
                failures.push(format!("anonymous {method} {path}: {answers:?}"));
            }
            // Signed in elsewhere: A's routes answer as if A did not exist, HEAD like GET.
            let readable = ops.iter().any(|(m, p, _)| p == path && m == "GET");
            if readable
                && path.contains("{tenant}")
                && [Method::GET, Method::HEAD].contains(&method)
            {
                let (status, _) = send(&admin_b, &app, &method, &concrete(path, A)).await;
                if status != 404 {
                    failures.push(format!("B's admin {method} {path}: {status}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // A method a route does not have is 405 once the caller is known, naming those it has.
    let response = app
        .client
        .request(Method::PATCH, app.url(&format!("/api/v1/tenants/{A}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["allow"], "GET, DELETE, HEAD");
    expect_problem(response, 405).await;
}

/// A token of an id that exists, with a wrong secret.
fn wrong_secret(token: &str) -> String {
    let id = token.split('_').nth(1).unwrap();
    format!("ghall_{id}_{}", "A".repeat(43))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_credential_is_never_refused_for_others_failures() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.create_example_tenants().await;
    let garbage = client_with(Some(&format!("ghall_0123456789abcdef_{}", "A".repeat(43))));
    for _ in 0..10 {
        expect_problem(
            garbage
                .get(app.url("/api/v1/tenants"))
                .send()
                .await
                .unwrap(),
            401,
        )
        .await;
    }
    let response = garbage
        .get(app.url("/api/v1/tenants"))
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("retry-after"));
    expect_problem(response, 429).await;
    // Same address, a good token: served.
    assert_eq!(app.get("/api/v1/tenants").await.status(), 200);

    // A stale token of a colleague behind the same address fails against that token only.
    let auditor = app.token("auditor", Some(A), None).await;
    let stale = client_with(Some(&wrong_secret(&auditor)));
    for _ in 0..10 {
        expect_problem(
            stale.get(app.url("/api/v1/tenants")).send().await.unwrap(),
            401,
        )
        .await;
    }
    expect_problem(
        stale.get(app.url("/api/v1/tenants")).send().await.unwrap(),
        429,
    )
    .await;
    // The real holder of that token is not refused, nor is anyone else.
    let holder = app.client_for(&auditor);
    assert_eq!(
        status_of(holder.get(app.url(&format!("/api/v1/tenants/{A}")))).await,
        200
    );
    let admin = app.client_as("tenant-admin", Some(A), None).await;
    assert_eq!(
        status_of(admin.get(app.url(&format!("/api/v1/tenants/{A}")))).await,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    let garbage = format!("ghall_0123456789abcdef_{}", "B".repeat(43));
    let attempt = |app: &TestApp, forwarded: &str| {
        client_with(Some(&garbage))
            .get(app.url("/api/v1/tenants"))
            .header("x-forwarded-for", forwarded)
            .send()
    };
    // No trusted proxies: the header is the caller's own writing, and changing it escapes
    // nothing.
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    for i in 0..10 {
        let status = attempt(&app, &format!("203.0.113.{i}"))
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401);
    }
    assert_eq!(attempt(&app, "198.51.100.1").await.unwrap().status(), 429);

    // Behind a trusted ingress, each forwarded client is counted on its own; IPv6 clients
    // by their /64.
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.server.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await
    .unwrap();
    for _ in 0..10 {
        assert_eq!(attempt(&app, "203.0.113.7").await.unwrap().status(), 401);
    }
    assert_eq!(attempt(&app, "203.0.113.7").await.unwrap().status(), 429);
    // A client prepending another address is still itself.
    assert_eq!(
        attempt(&app, "203.0.113.8, 203.0.113.7")
            .await
            .unwrap()
            .status(),
        429
    );
    assert_eq!(attempt(&app, "203.0.113.8").await.unwrap().status(), 401);
    for i in 0..10 {
        let status = attempt(&app, &format!("2001:db8:7:7::{i:x}"))
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401);
    }
    assert_eq!(
        attempt(&app, "2001:db8:7:7:ffff::1")
            .await
            .unwrap()
            .status(),
        429
    );
    assert_eq!(
        attempt(&app, "2001:db8:7:8::1").await.unwrap().status(),
        401
    );
}

async fn platform_chain(app: &TestApp) -> Vec<guildhall_store::AuditRecord> {
    app.store()
        .await
        .platform_audit()
        .list(0, 10_000)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_calls_cannot_flood_an_audit_chain() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = TestApp::spawn(backend).await else {
            continue;
        };
        app.create_example_tenants().await;
        let chain_a = |app: &TestApp| {
            let path = format!("/api/v1/tenants/{A}/audit?limit=1000");
            let app_client = app.client.clone();
            let url = app.url(&path);
            async move {
                let page = fetch_json(app_client.get(url)).await;
                page["entries"].as_array().unwrap().len()
            }
        };
        let a_before = chain_a(&app).await;
        let platform_before = platform_chain(&app).await.len();
        // An admin of B hammers A, which is hidden from it: nothing lands in A's chain, and
        // the platform's records a bounded number of attempts.
        let admin_b = app.client_as("tenant-admin", Some(B), None).await;
        for i in 0..45 {
            let r = admin_b
                .put(app.url(&format!("/api/v1/tenants/{A}/councils/c{i:02}")))
                .json(&json!({"name": "x"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 404);
        }
        assert_eq!(chain_a(&app).await, a_before);
        let attempts = platform_chain(&app).await.len() - platform_before;
        assert_eq!(
            attempts,
            guildhall_authz::Authz::REFUSALS_AUDITED_PER_MINUTE as usize
        );
        // An auditor of A may read but not write: its refusals land in A's chain, up to the
        // quota.
        let auditor_a = app.client_as("auditor", Some(A), None).await;
        let before = chain_a(&app).await;
        for _ in 0..45 {
            let r = auditor_a
                .put(app.url(&format!("/api/v1/tenants/{A}/councils/tandridge")))
                .json(&json!({"name": "x"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403);
        }
        assert_eq!(
            chain_a(&app).await - before,
            guildhall_authz::Authz::REFUSALS_AUDITED_PER_MINUTE as usize
        );
        // A caller's request id is kept beside the server's, never in its place.
        let r = app
            .client
            .put(app.url(&format!("/api/v1/tenants/{A}/councils/oxted")))
            .header("x-request-id", "caller-chosen")
            .json(&json!({"name": "Oxted"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let server_id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        assert_ne!(server_id, "caller-chosen");
        let page = app
            .get_json(&format!("/api/v1/tenants/{A}/audit?limit=1000"))
            .await;
        let last = page["entries"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["request_id"], server_id.as_str(), "{last}");
        let detail: Value = serde_json::from_str(last["detail"].as_str().unwrap()).unwrap();
        assert_eq!(detail["client_request_id"], "caller-chosen");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_stored_under_bare_role_names_are_migrated() {
    use sea_orm::{ConnectionTrait, Statement};
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(mut app) = TestApp::spawn(backend).await else {
            continue;
        };
        app.create_example_tenants().await;
        let admin_a = app.client_as("tenant-admin", Some(A), None).await;
        let store = app.admin_store().await;
        let db = store.connection();
        // The database as the previous release left it: the roles of that release under
        // their bare names (roles added since were never bare), and the renaming migration
        // not yet applied.
        let roles = "('role:operator', 'role:publisher', 'role:tenant-admin', 'role:officer', \
                     'role:auditor')";
        for sql in [
            format!(
                "UPDATE casbin_rules SET v1 = substr(v1, 6) WHERE ptype = 'g' AND v1 IN {roles}"
            ),
            format!(
                "UPDATE casbin_rules SET v0 = substr(v0, 6) WHERE ptype = 'p' AND v0 IN {roles}"
            ),
            "DELETE FROM seaql_migrations WHERE version = 'm20261201_000007_namespaced_roles'"
                .to_string(),
        ] {
            db.execute_unprepared(&sql).await.unwrap();
        }
        let bare = "SELECT COUNT(*) FROM casbin_rules WHERE (ptype = 'g' AND v1 NOT LIKE 'role:%') \
                    OR (ptype = 'p' AND v0 NOT LIKE 'role:%')";
        let n = db
            .query_one_raw(Statement::from_string(db.get_database_backend(), bare))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<i64>(0)
            .unwrap();
        assert!(n > 0, "the old form was not set up");
        assert_eq!(
            store.migrate().await.unwrap(),
            ["m20261201_000007_namespaced_roles"]
        );
        let n = db
            .query_one_raw(Statement::from_string(db.get_database_backend(), bare))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<i64>(0)
            .unwrap();
        assert_eq!(n, 0, "rules left under bare role names");
        // The next start restores the built-in policies under the new names; every token
        // keeps exactly the role it had.
        app.restart().await;
        assert_eq!(app.get("/api/v1/tenants").await.status(), 200);
        let r = app
            .post_json(
                "/api/v1/tenants",
                &json!({"id": "after-migration", "name": "After"}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let r = admin_a
            .get(app.url(&format!("/api/v1/tenants/{A}/members")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = admin_a
            .get(app.url(&format!("/api/v1/tenants/{B}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
}
