//! People signing in through an OIDC provider: a subject gets its roles from the member
//! bindings of a tenant, honoured and withdrawn on every replica at once; a provider cannot
//! pose as a token's subject; expired, premature, misaddressed and wrongly signed tokens are
//! refused with the reason.

use serde_json::json;

use crate::access::{A, B, Idp, now};
use crate::helpers::{Backend, TestApp, client_with, expect_json, expect_problem, fetch_json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_subjects_get_their_roles_from_member_bindings_on_every_replica() {
    let idp = Idp::new();
    let issuer = idp.issuer();
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.auth.oidc = vec![issuer.clone()])
        .await
        .unwrap();
    app.create_example_tenants().await;
    // A second replica on the same database.
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::helpers::test_config(&app.db, dir.path());
    config.auth.oidc = vec![issuer];
    let replica = guildhall::Server::start(&config).await.unwrap();
    let on_replica = |path: &str| format!("http://{}{path}", replica.addr());

    let claims = |sub: &str, exp: u64| {
        json!({"iss": "https://login.north-downs.example/", "aud": "guildhall", "sub": sub,
               "iat": now(), "exp": exp})
    };
    let jwt = idp.sign(claims("alice@tandridge", now() + 600));
    let alice = client_with(Some(&jwt));
    // Authenticated but bound to nothing: A is hidden.
    expect_problem(
        alice
            .get(on_replica(&format!("/api/v1/tenants/{A}")))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    // Bind her as an officer of A through the first replica; the second honours it on
    // the very next request.
    let bound = app
        .put_json(
            &format!("/api/v1/tenants/{A}/members/alice@tandridge"),
            &json!({"issuer": "north-downs-idp", "roles": ["officer"], "council": "tandridge"}),
        )
        .await;
    let bound = expect_json(bound, 201).await;
    assert_eq!(bound["subject"], "oidc:north-downs-idp:alice@tandridge");
    assert_eq!(bound["issuer"], "north-downs-idp");
    assert_eq!(bound["sub"], "alice@tandridge");
    let tenant = alice
        .get(on_replica(&format!("/api/v1/tenants/{A}")))
        .send()
        .await
        .unwrap();
    assert_eq!(tenant.status(), 200);
    expect_problem(
        alice
            .put(on_replica(&format!("/api/v1/tenants/{A}/installs/hello")))
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    expect_problem(
        alice
            .get(on_replica(&format!("/api/v1/tenants/{B}")))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    // Platform roles cannot be handed out in a tenant.
    expect_problem(
        app.put_json(
            &format!("/api/v1/tenants/{A}/members/oidc:north-downs-idp:alice@tandridge"),
            &json!({"roles": ["operator"]}),
        )
        .await,
        422,
    )
    .await;
    // Removed: gone on the next request, on both replicas.
    let removed = app
        .put_json(
            &format!("/api/v1/tenants/{A}/members/oidc:north-downs-idp:alice@tandridge"),
            &json!({"roles": []}),
        )
        .await;
    assert_eq!(removed.status(), 204);
    for url in [
        on_replica(&format!("/api/v1/tenants/{A}")),
        app.url(&format!("/api/v1/tenants/{A}")),
    ] {
        expect_problem(alice.get(url).send().await.unwrap(), 404).await;
    }

    // A provider cannot name a token's subject and so inherit its roles: its `sub` is
    // `oidc:<issuer>:token:…`, a person with no role anywhere.
    let operator = app.token("operator", None, None).await;
    let stolen = format!("token:{}", operator.split('_').nth(1).unwrap());
    let posing = client_with(Some(&idp.sign(claims(&stolen, now() + 600))));
    let listed = fetch_json(posing.get(app.url("/api/v1/tenants"))).await;
    assert_eq!(listed["tenants"], json!([]));
    expect_problem(
        posing
            .post(app.url("/api/v1/tenants"))
            .json(&json!({"id": "stolen", "name": "Stolen"}))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;

    // Expired, not yet valid, wrong audience, another key: 401 with the reason.
    let other = Idp::new();
    for (jwt, reason) in [
        (idp.sign(claims("alice@tandridge", now() - 600)), "expired"),
        (
            idp.sign(
                json!({"iss": "https://login.north-downs.example/", "aud": "guildhall",
                            "sub": "alice@tandridge", "nbf": now() + 600, "exp": now() + 1200}),
            ),
            "not valid yet",
        ),
        (
            idp.sign(
                json!({"iss": "https://login.north-downs.example/", "aud": "someone-else",
                            "sub": "alice@tandridge", "exp": now() + 600}),
            ),
            "audience",
        ),
        (
            other.sign(claims("alice@tandridge", now() + 600)),
            "signature",
        ),
    ] {
        let problem = expect_problem(
            client_with(Some(&jwt))
                .get(app.url("/api/v1/tenants"))
                .send()
                .await
                .unwrap(),
            401,
        )
        .await;
        let detail = problem["detail"].as_str().unwrap().to_lowercase();
        assert!(detail.contains(reason), "{reason}: {detail}");
        assert!(!detail.contains(&jwt));
    }
    replica.shutdown();
}
