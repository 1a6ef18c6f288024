//! Black-box tests of OpenID Connect token verification with real keys, a real loopback JWKS
//! server and a JWKS file.
//!
//! One file over 600 lines on purpose: every test shares the loopback JWKS server at its top
//! (and the key pairs and token builders of `support`), and each test is one attack on
//! verification. Sign-in and MFA are in `oidc_flow.rs`.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use guildhall_authz::oidc::{Oidc, OidcError, OidcIssuer};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use support::*;

/// A loopback JWKS server that counts its requests.
struct JwksServer {
    addr: SocketAddr,
    state: ServerState,
}

#[derive(Clone)]
struct ServerState {
    jwks: Arc<Mutex<Value>>,
    hits: Arc<AtomicUsize>,
    status: Arc<Mutex<StatusCode>>,
}

impl JwksServer {
    async fn start(jwks: Value) -> Self {
        let state = ServerState {
            jwks: Arc::new(Mutex::new(jwks)),
            hits: Arc::new(AtomicUsize::new(0)),
            status: Arc::new(Mutex::new(StatusCode::OK)),
        };
        let app = Router::new()
            .route("/jwks.json", get(serve_jwks))
            .route("/huge.json", get(serve_huge))
            .route("/moved.json", get(serve_redirect))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        Self { addr, state }
    }

    fn url(&self) -> String {
        format!("http://{}/jwks.json", self.addr)
    }

    fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    fn publish(&self, jwks: Value) {
        *self.state.jwks.lock().expect("lock") = jwks;
    }

    fn fail_with(&self, status: StatusCode) {
        *self.state.status.lock().expect("lock") = status;
    }

    async fn oidc(&self) -> Oidc {
        Oidc::new(&[url_issuer(&self.url())]).expect("valid configuration")
    }
}

async fn serve_jwks(State(state): State<ServerState>) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let status = *state.status.lock().expect("lock");
    if status != StatusCode::OK {
        return status.into_response();
    }
    let body = state.jwks.lock().expect("lock").to_string();
    ([("content-type", "application/json")], body).into_response()
}

async fn serve_huge(State(state): State<ServerState>) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let body = format!(
        "{{\"keys\":[],\"padding\":\"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    ([("content-type", "application/json")], body).into_response()
}

/// Points at the real keys on the same server: a redirect an attacker controlling the
/// provider's host could as well point into the cluster.
async fn serve_redirect(State(state): State<ServerState>) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    (StatusCode::FOUND, [("location", "/jwks.json")]).into_response()
}

#[tokio::test]
async fn jwks_redirects_are_not_followed() {
    let server = rsa_server().await;
    let moved = format!("http://{}/moved.json", server.addr);
    let oidc = Oidc::new(&[url_issuer(&moved)]).expect("valid configuration");
    let token = sign_rsa(rsa_a(), Some("rsa-a"), &claims("alice"));
    match oidc.verify(&token).await {
        Err(OidcError::Jwks(reason)) => assert!(reason.contains("redirect"), "{reason}"),
        other => panic!("expected a JWKS error, got {other:?}"),
    }
    // Only the redirect was fetched, never its target.
    assert_eq!(server.hits(), 1);
}

async fn rsa_server() -> JwksServer {
    JwksServer::start(jwks(&[rsa_jwk(rsa_a(), "rsa-a")])).await
}

#[tokio::test]
async fn valid_rs256_token_from_url_is_accepted() {
    let server = rsa_server().await;
    let oidc = server.oidc().await;
    assert!(oidc.is_enabled());
    assert_eq!(server.hits(), 0, "URL keys are fetched lazily");

    let token = sign_rsa(rsa_a(), Some("rsa-a"), &claims("alice"));
    assert!(Oidc::looks_like_jwt(&token));
    assert_eq!(
        oidc.verify(&token).await.expect("valid token"),
        identity("alice")
    );
    // Cached: a second token does not fetch again.
    let token = sign_rsa(rsa_a(), Some("rsa-a"), &claims("bob"));
    assert_eq!(
        oidc.verify(&token).await.expect("valid token"),
        identity("bob")
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn valid_es256_token_from_file_is_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks(&[ec_jwk(ec_a(), "ec-a")]).to_string()).expect("write");
    let oidc = Oidc::new(&[file_issuer(&path)]).expect("valid configuration");

    let token = sign_ec(ec_a(), Some("ec-a"), &claims("carol"));
    assert_eq!(
        oidc.verify(&token).await.expect("valid token"),
        identity("carol")
    );
}

#[tokio::test]
async fn both_algorithms_from_one_jwks_and_audience_arrays() {
    let server =
        JwksServer::start(jwks(&[rsa_jwk(rsa_a(), "rsa-a"), ec_jwk(ec_a(), "ec-a")])).await;
    let oidc = server.oidc().await;

    let mut with_array = claims("dave");
    with_array["aud"] = json!(["another-client", AUD]);
    let token = sign_ec(ec_a(), Some("ec-a"), &with_array);
    assert_eq!(
        oidc.verify(&token).await.expect("aud array"),
        identity("dave")
    );
    let token = sign_rsa(rsa_a(), Some("rsa-a"), &with_array);
    assert_eq!(
        oidc.verify(&token).await.expect("aud array"),
        identity("dave")
    );
}

#[tokio::test]
async fn token_without_kid_uses_the_only_key_of_its_type() {
    let server =
        JwksServer::start(jwks(&[rsa_jwk(rsa_a(), "rsa-a"), ec_jwk(ec_a(), "ec-a")])).await;
    let oidc = server.oidc().await;
    let token = sign_rsa(rsa_a(), None, &claims("erin"));
    assert_eq!(
        oidc.verify(&token).await.expect("only RSA key"),
        identity("erin")
    );
    let token = sign_ec(ec_a(), None, &claims("erin"));
    assert_eq!(
        oidc.verify(&token).await.expect("only EC key"),
        identity("erin")
    );

    // Two RSA keys: without a kid the token is ambiguous.
    server.publish(jwks(&[
        rsa_jwk(rsa_a(), "rsa-a"),
        rsa_jwk(rsa_b(), "rsa-b"),
    ]));
    let oidc = server.oidc().await;
    let token = sign_rsa(rsa_a(), None, &claims("erin"));
    assert!(matches!(
        oidc.verify(&token).await,
        Err(OidcError::UnknownKey)
    ));
}

#[tokio::test]
async fn wrong_issuer_is_unknown() {
    let server = rsa_server().await;
    let oidc = server.oidc().await;
    let mut other = claims("frank");
    other["iss"] = json!("https://evil.example.test/");
    let token = sign_rsa(rsa_a(), Some("rsa-a"), &other);
    assert!(matches!(
        oidc.verify(&token).await,
        Err(OidcError::UnknownIssuer)
    ));
    // Near misses are not the same issuer.
    other["iss"] = json!("https://idp.example.test");
    let token = sign_rsa(rsa_a(), Some("rsa-a"), &other);
    assert!(matches!(
        oidc.verify(&token).await,
        Err(OidcError::UnknownIssuer)
    ));
    assert_eq!(server.hits(), 0, "unknown issuers never cause a fetch");
}

#[tokio::test]
async fn wrong_audience_is_rejected() {
    let server = rsa_server().await;
    let oidc = server.oidc().await;
    let mut other = claims("grace");
    other["aud"] = json!("someone-else");
    let token = sign_rsa(rsa_a(), Some("rsa-a"), &other);
    assert!(matches!(
        oidc.verify(&token).await,
        Err(OidcError::WrongAudience)
    ));
    other["aud"] = json!(["someone-else", "and-another"]);
    let token = sign_rsa(rsa_a(), Some("rsa-a"), &other);
    assert!(matches!(
        oidc.verify(&token).await,
        Err(OidcError::WrongAudience)
    ));
}

#[tokio::test]
async fn expired_token_is_rejected_beyond_the_leeway() {
    let server = rsa_server().await;
    let oidc = server.oidc().await;
    let mut old = claims("heidi");
    old["exp"] = json!(now() - 3600);
    let token = sign_rsa(rsa_a(), Some("rsa-a"), &old);
    assert!(matches!(oidc.verify(&token).await, Err(OidcError::Expired)));
    // Within the 60 s leeway.
    old["exp"] = json!(now() - 30);
    let token = sign_rsa(rsa_a(), Some("rsa-a"), &old);
    assert_eq!(
        oidc.verify(&token).await.expect("within leeway"),
        identity("heidi")
    );
}

#[tokio::test]
async fn token_not_yet_valid_is_rejected_beyond_the_leeway() {
    let server = rsa_server().await;
    let oidc = server.oidc().await;
    let mut early = claims("ivan");
    early["nbf"] = json!(now() + 3600);
    let token = sign_rsa(rsa_a(), Some("rsa-a"), &early);
    assert!(matches!(
        oidc.verify(&token).await,
        Err(OidcError::NotYetValid)
    ));
    early["nbf"] = json!(now() + 30);
    let token = sign_rsa(rsa_a(), Some("rsa-a"), &early);
    assert_eq!(
        oidc.verify(&token).await.expect("within leeway"),
        identity("ivan")
    );
}

#[tokio::test]
async fn hs256_token_is_an_unsupported_algorithm() {
    let server = rsa_server().await;
    let oidc = server.oidc().await;
    // The classic confusion attack: HMAC keyed with the RSA public key.
    let public = rsa_a().to_public_key();
    let secret = rsa::pkcs1::EncodeRsaPublicKey::to_pkcs1_der(&public).expect("DER");
    let token = jsonwebtoken::encode(
        &header(Algorithm::HS256, Some("rsa-a")),
        &claims("judy"),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign HS256");
    match oidc.verify(&token).await {
        Err(OidcError::UnsupportedAlgorithm(alg)) => assert_eq!(alg, "HS256"),
        other => panic!("expected UnsupportedAlgorithm, got {other:?}"),
    }
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn unsigned_token_is_an_unsupported_algorithm() {
    let server = rsa_server().await;
    let oidc = server.oidc().await;
    for alg in ["none", "None", "NONE"] {
        let token = raw_token(&json!({ "alg": alg, "typ": "JWT" }), &claims("mallory"), "");
        assert!(Oidc::looks_like_jwt(&token));
        match oidc.verify(&token).await {
            Err(OidcError::UnsupportedAlgorithm(got)) => assert_eq!(got, alg),
            other => panic!("expected UnsupportedAlgorithm, got {other:?}"),
        }
    }
    // Other algorithms jsonwebtoken knows are refused too.
    let token = raw_token(
        &json!({ "alg": "PS256", "kid": "rsa-a" }),
        &claims("mallory"),
        "AAAA",
    );
    assert!(matches!(
        oidc.verify(&token).await,
        Err(OidcError::UnsupportedAlgorithm(_))
    ));
    // An RS256 header with an empty signature does not verify.
    let token = raw_token(
        &json!({ "alg": "RS256", "kid": "rsa-a" }),
        &claims("mallory"),
        "",
    );
    assert!(matches!(
        oidc.verify(&token).await,
        Err(OidcError::BadSignature)
    ));
}

#[tokio::test]
async fn signature_by_another_key_with_the_same_kid_is_bad() {
    let server =
        JwksServer::start(jwks(&[rsa_jwk(rsa_a(), "rsa-a"), ec_jwk(ec_a(), "ec-a")])).await;
    let oidc = server.oidc().await;
    let token = sign_rsa(rsa_c(), Some("rsa-a"), &claims("mallory"));
    assert!(matches!(
        oidc.verify(&token).await,
        Err(OidcError::BadSignature)
    ));
    let token = sign_ec(ec_b(), Some("ec-a"), &claims("mallory"));
    assert!(matches!(
        oidc.verify(&token).await,
        Err(OidcError::BadSignature)
    ));

    // A genuine token whose claims were altered.
    let genuine = sign_rsa(rsa_a(), Some("rsa-a"), &claims("alice"));
    let mut parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(claims("mallory").to_string());
    assert!(matches!(
        oidc.verify(&parts.join(".")).await,
        Err(OidcError::BadSignature)
    ));

    // An ES256 token naming the RSA key's kid.
    let token = sign_ec(ec_a(), Some("rsa-a"), &claims("mallory"));
    assert!(matches!(
        oidc.verify(&token).await,
        Err(OidcError::Invalid(_))
    ));
}

#[tokio::test]
async fn claim_problems_are_invalid() {
    let server = rsa_server().await;
    let oidc = server.oidc().await;
    let cases: Vec<(&str, Value)> = vec![
        ("sub", json!({ "iss": ISS, "aud": AUD, "exp": now() + 600 })),
        (
            "sub",
            json!({ "iss": ISS, "aud": AUD, "sub": "", "exp": now() + 600 }),
        ),
        (
            "sub",
            json!({ "iss": ISS, "aud": AUD, "sub": 42, "exp": now() + 600 }),
        ),
        (
            "sub",
            json!({ "iss": ISS, "aud": AUD, "sub": "x".repeat(300), "exp": now() + 600 }),
        ),
        ("exp", json!({ "iss": ISS, "aud": AUD, "sub": "alice" })),
        (
            "exp",
            json!({ "iss": ISS, "aud": AUD, "sub": "alice", "exp": "tomorrow" }),
        ),
        (
            "aud",
            json!({ "iss": ISS, "sub": "alice", "exp": now() + 600 }),
        ),
        (
            "iss",
            json!({ "aud": AUD, "sub": "alice", "exp": now() + 600 }),
        ),
        (
            "iss",
            json!({ "iss": [ISS], "aud": AUD, "sub": "alice", "exp": now() + 600 }),
        ),
    ];
    for (claim, body) in cases {
        let token = sign_rsa(rsa_a(), Some("rsa-a"), &body);
        match oidc.verify(&token).await {
            Err(OidcError::Invalid(message)) => {
                assert!(
                    message.contains(claim),
                    "{message:?} should name `{claim}` for {body}"
                )
            }
            other => panic!("expected Invalid about `{claim}` for {body}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn rotated_key_is_accepted_after_the_automatic_refresh() {
    let server = rsa_server().await;
    let oidc = server.oidc().await;
    let old = sign_rsa(rsa_a(), Some("rsa-a"), &claims("alice"));
    assert_eq!(oidc.verify(&old).await.expect("key A"), identity("alice"));
    assert_eq!(server.hits(), 1);

    // The provider rotates: it now signs with B and publishes both.
    server.publish(jwks(&[
        rsa_jwk(rsa_a(), "rsa-a"),
        rsa_jwk(rsa_b(), "rsa-b"),
    ]));
    let new = sign_rsa(rsa_b(), Some("rsa-b"), &claims("alice"));
    assert_eq!(
        oidc.verify(&new).await.expect("key B after refresh"),
        identity("alice")
    );
    assert_eq!(server.hits(), 2);
    // Both keys are now cached.
    assert_eq!(oidc.verify(&old).await.expect("key A"), identity("alice"));
    assert_eq!(
        oidc.clone().verify(&new).await.expect("key B"),
        identity("alice")
    );
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn never_published_kid_is_unknown_and_does_not_hammer_the_provider() {
    let server = rsa_server().await;
    let oidc = server.oidc().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let oidc = oidc.clone();
        let token = sign_rsa(rsa_c(), Some(&format!("forged-{i}")), &claims("mallory"));
        tasks.spawn(async move { oidc.verify(&token).await });
    }
    while let Some(result) = tasks.join_next().await {
        let result = result.expect("task");
        assert!(
            matches!(result, Err(OidcError::UnknownKey)),
            "got {result:?}"
        );
    }
    // Sequential attempts are limited just the same.
    for i in 0..20 {
        let token = sign_rsa(rsa_c(), Some(&format!("again-{i}")), &claims("mallory"));
        assert!(matches!(
            oidc.verify(&token).await,
            Err(OidcError::UnknownKey)
        ));
    }
    assert!(
        server.hits() <= 2,
        "the JWKS server was hit {} times",
        server.hits()
    );
    // Genuine tokens are unaffected.
    let token = sign_rsa(rsa_a(), Some("rsa-a"), &claims("alice"));
    assert_eq!(
        oidc.verify(&token).await.expect("valid token"),
        identity("alice")
    );
    assert!(server.hits() <= 2);
}

#[tokio::test]
async fn jwks_file_is_reread_for_an_unknown_kid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks(&[ec_jwk(ec_a(), "ec-a")]).to_string()).expect("write");
    let oidc = Oidc::new(&[file_issuer(&path)]).expect("valid configuration");

    std::fs::write(
        &path,
        jwks(&[ec_jwk(ec_a(), "ec-a"), ec_jwk(ec_b(), "ec-b")]).to_string(),
    )
    .expect("rewrite");
    let token = sign_ec(ec_b(), Some("ec-b"), &claims("alice"));
    assert_eq!(
        oidc.verify(&token).await.expect("re-read file"),
        identity("alice")
    );
    let token = sign_ec(ec_a(), Some("ec-a"), &claims("alice"));
    assert_eq!(
        oidc.verify(&token).await.expect("old key"),
        identity("alice")
    );
}

#[tokio::test]
async fn unusable_jwks_entries_are_ignored() {
    let mut enc = rsa_jwk(rsa_b(), "rsa-enc");
    enc["use"] = json!("enc");
    let mut ps256 = rsa_jwk(rsa_b(), "rsa-ps");
    ps256["alg"] = json!("PS256");
    let server = JwksServer::start(jwks(&[
        enc,
        ps256,
        json!({ "kty": "oct", "kid": "hmac", "k": "c2VjcmV0" }),
        json!({ "kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" }),
        json!({ "kty": "EC", "crv": "P-384", "kid": "p384", "x": "AAAA", "y": "AAAA" }),
        json!({ "kty": "EC", "crv": "P-256", "kid": "not-on-curve", "x": URL_SAFE_NO_PAD.encode([1u8; 32]), "y": URL_SAFE_NO_PAD.encode([2u8; 32]) }),
        json!({ "kty": "RSA", "kid": "tiny", "n": "AQAB", "e": "AQAB" }),
        json!({ "kty": "RSA", "kid": "broken", "n": 7 }),
        json!("not even an object"),
        rsa_jwk(rsa_a(), "rsa-a"),
    ]))
    .await;
    let oidc = server.oidc().await;
    let token = sign_rsa(rsa_a(), Some("rsa-a"), &claims("alice"));
    assert_eq!(
        oidc.verify(&token).await.expect("usable key"),
        identity("alice")
    );
    for kid in ["rsa-enc", "rsa-ps", "tiny"] {
        let token = sign_rsa(rsa_b(), Some(kid), &claims("alice"));
        assert!(
            matches!(oidc.verify(&token).await, Err(OidcError::UnknownKey)),
            "{kid}"
        );
    }
    let token = sign_ec(ec_a(), Some("not-on-curve"), &claims("alice"));
    assert!(matches!(
        oidc.verify(&token).await,
        Err(OidcError::UnknownKey)
    ));
}

#[tokio::test]
async fn jwks_fetch_failures_are_reported_and_not_retried_at_once() {
    let server = rsa_server().await;
    server.fail_with(StatusCode::INTERNAL_SERVER_ERROR);
    let oidc = server.oidc().await;
    let token = sign_rsa(rsa_a(), Some("rsa-a"), &claims("alice"));
    for _ in 0..5 {
        match oidc.verify(&token).await {
            Err(OidcError::Jwks(message)) => assert!(message.contains("500"), "{message}"),
            other => panic!("expected Jwks, got {other:?}"),
        }
    }
    assert_eq!(server.hits(), 1);

    // A body over the 1 MiB cap.
    let huge =
        Oidc::new(&[url_issuer(&format!("http://{}/huge.json", server.addr))]).expect("config");
    assert!(matches!(huge.verify(&token).await, Err(OidcError::Jwks(_))));

    // Nothing listening.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}/jwks.json", listener.local_addr().expect("addr"));
    drop(listener);
    let oidc = Oidc::new(&[url_issuer(&dead)]).expect("config");
    assert!(matches!(oidc.verify(&token).await, Err(OidcError::Jwks(_))));

    // Not a JWKS.
    server.fail_with(StatusCode::OK);
    server.publish(json!({ "hello": "world" }));
    let oidc = server.oidc().await;
    assert!(matches!(oidc.verify(&token).await, Err(OidcError::Jwks(_))));
}

#[test]
fn configuration_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good_file = dir.path().join("jwks.json");
    std::fs::write(&good_file, jwks(&[ec_jwk(ec_a(), "ec-a")]).to_string()).expect("write");
    let bad_file = dir.path().join("bad.json");
    std::fs::write(&bad_file, "{ not json").expect("write");
    let empty_file = dir.path().join("empty.json");
    std::fs::write(&empty_file, r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).expect("write");
    let url = "https://idp.example.test/jwks.json";

    let neither = OidcIssuer {
        jwks_url: None,
        ..url_issuer(url)
    };
    let both = OidcIssuer {
        jwks_file: Some(good_file.clone()),
        ..url_issuer(url)
    };
    let cases: Vec<(&str, Vec<OidcIssuer>)> = vec![
        ("neither", vec![neither]),
        ("both", vec![both]),
        (
            "empty issuer",
            vec![OidcIssuer {
                issuer: " ".into(),
                ..url_issuer(url)
            }],
        ),
        (
            "empty audience",
            vec![OidcIssuer {
                audience: String::new(),
                ..url_issuer(url)
            }],
        ),
        ("unparsable url", vec![url_issuer("not a url")]),
        ("non-http url", vec![url_issuer("file:///etc/jwks.json")]),
        // Keys in the clear could be swapped in transit: http only on loopback.
        (
            "plain http off loopback",
            vec![url_issuer("http://idp.example.test/jwks.json")],
        ),
        (
            "no id",
            vec![OidcIssuer {
                id: String::new(),
                ..url_issuer(url)
            }],
        ),
        (
            "an id with a colon",
            vec![OidcIssuer {
                id: "a:b".into(),
                ..url_issuer(url)
            }],
        ),
        (
            "duplicate id",
            vec![
                url_issuer(url),
                OidcIssuer {
                    issuer: "https://other.example.test/".into(),
                    ..file_issuer(&good_file)
                },
            ],
        ),
        (
            "missing file",
            vec![file_issuer(&dir.path().join("missing.json"))],
        ),
        ("invalid file", vec![file_issuer(&bad_file)]),
        ("file without usable keys", vec![file_issuer(&empty_file)]),
        (
            "huge leeway",
            vec![OidcIssuer {
                leeway_secs: u64::MAX,
                ..url_issuer(url)
            }],
        ),
        (
            "duplicate issuer",
            vec![url_issuer(url), file_issuer(&good_file)],
        ),
    ];
    for (name, issuers) in cases {
        match Oidc::new(&issuers) {
            Err(OidcError::Config(message)) => assert!(!message.is_empty(), "{name}"),
            other => panic!("{name}: expected Config, got {other:?}"),
        }
    }

    assert!(Oidc::new(&[url_issuer(url)]).is_ok());
    assert!(Oidc::new(&[file_issuer(&good_file)]).is_ok());
    let disabled = Oidc::new(&[]).expect("no issuers");
    assert!(!disabled.is_enabled());
}

#[tokio::test]
async fn malformed_tokens() {
    let server = rsa_server().await;
    let oidc = server.oidc().await;
    for token in [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "..sig",
        "not a jwt.at.all",
        "gh_0123456789abcdef",
        "eyJhbGciOiJSUzI1NiJ9.e30=.sig",
    ] {
        assert!(!Oidc::looks_like_jwt(token), "{token:?}");
        assert!(
            matches!(oidc.verify(token).await, Err(OidcError::Malformed)),
            "{token:?}"
        );
    }
    // Syntactically plausible but not JSON, or not objects.
    for token in ["abc.def.ghi", "bnVsbA.bnVsbA.sig", "e30.bnVsbA.sig"] {
        assert!(Oidc::looks_like_jwt(token), "{token:?}");
        assert!(
            matches!(oidc.verify(token).await, Err(OidcError::Malformed)),
            "{token:?}"
        );
    }
    let genuine = sign_rsa(rsa_a(), Some("rsa-a"), &claims("alice"));
    let huge = format!("{genuine}{}", "A".repeat(70 * 1024));
    assert!(matches!(
        oidc.verify(&huge).await,
        Err(OidcError::Malformed)
    ));
    assert_eq!(server.hits(), 0);
}

#[test]
fn tenant_restrictions() {
    let url = "https://idp.example.test/jwks.json";
    let restricted = OidcIssuer {
        id: "restricted".into(),
        issuer: "https://restricted.example.test/".into(),
        tenants: vec!["leeds".into(), "york".into()],
        ..url_issuer(url)
    };
    let oidc = Oidc::new(&[url_issuer(url), restricted]).expect("config");
    assert!(oidc.issuer_allows_tenant(ISSUER_ID, "anywhere"));
    assert!(oidc.issuer_allows_tenant("restricted", "york"));
    assert!(!oidc.issuer_allows_tenant("restricted", "hull"));
    assert!(!oidc.issuer_allows_tenant("unknown", "york"));
    // Issuers are named by their ids, never their URLs.
    assert!(!oidc.issuer_allows_tenant(ISS, "anywhere"));
    assert!(!oidc.issuer_is_restricted(ISSUER_ID));
    assert!(oidc.issuer_is_restricted("restricted"));
    assert!(oidc.issuer_is_restricted("unknown"));
}

#[tokio::test]
async fn error_messages_never_contain_the_token() {
    let server = rsa_server().await;
    let oidc = server.oidc().await;
    let mut wrong_aud = claims("alice");
    wrong_aud["aud"] = json!("secret-audience");
    let tokens = [
        sign_rsa(rsa_c(), Some("rsa-a"), &claims("alice")),
        sign_rsa(rsa_a(), Some("rsa-a"), &wrong_aud),
        sign_rsa(rsa_c(), Some("unknown"), &claims("alice")),
        raw_token(&json!({ "alg": "HS256" }), &claims("alice"), "c2ln"),
        sign_rsa(
            rsa_a(),
            Some("rsa-a"),
            &json!({ "iss": ISS, "aud": AUD, "exp": now() + 60 }),
        ),
    ];
    for token in tokens {
        let error = oidc.verify(&token).await.expect_err("rejected");
        let shown = format!("{error} / {error:?}");
        for part in token.split('.').filter(|p| p.len() > 8) {
            assert!(!shown.contains(part), "{shown} contains part of the token");
        }
        assert!(
            !shown.contains("alice") && !shown.contains("secret-audience"),
            "{shown}"
        );
    }
}

#[test]
fn oidc_is_cheap_to_share() {
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    fn assert_error<T: std::error::Error + Send + Sync + 'static>() {}
    assert_send_sync_clone::<Oidc>();
    assert_error::<OidcError>();
}
