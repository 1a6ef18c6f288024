//! Black-box tests of console sign-in (the authorization code flow with PKCE) and of the MFA
//! rule, against a loopback identity provider that serves discovery, JWKS, an authorization
//! endpoint and a token endpoint as OpenID Connect Core 1.0 §3.1 and RFC 7636 describe them.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use guildhall_authz::oidc::{
    ClientSecret, Identity, Oidc, OidcError, OidcIssuer, SignInIssuer, SignInRequest,
};
use serde_json::{Value, json};
use sha2::Digest as _;
use support::*;

const REDIRECT_URI: &str = "https://guildhall.example.gov.uk/console/auth/callback";
const CONSOLE_CLIENT: &str = "guildhall-console";
const SECRET: &str = "s3cr:t/+ with%odd&chars=";

/// How the token endpoint misbehaves, when it does.
#[derive(Clone)]
enum Failure {
    /// An OAuth error response whose description quotes what it was sent.
    EchoingError,
    /// A status with a body that is not an OAuth error.
    Status(StatusCode, &'static str),
    /// A success whose body is far larger than any token response.
    Huge,
}

/// What the provider has been told and has seen.
struct Shared {
    issuer: String,
    client_id: String,
    /// When set, the token endpoint requires client_secret_basic with it.
    secret: Option<String>,
    discovery: Value,
    discovery_hits: usize,
    /// Codes issued and not yet redeemed.
    grants: HashMap<String, Grant>,
    issued: usize,
    /// Who signs in next.
    sub: String,
    /// Claims set on (or, when null, removed from) the next ID tokens.
    extra_claims: Value,
    failure: Option<Failure>,
    last_token_request: Option<TokenRequest>,
}

struct Grant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    nonce: String,
    sub: String,
}

#[derive(Clone, Debug)]
struct TokenRequest {
    form: HashMap<String, String>,
    authorization: Option<String>,
}

#[derive(Clone)]
struct Provider {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

impl Provider {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local address");
        let issuer = format!("http://{addr}");
        let shared = Arc::new(Mutex::new(Shared {
            discovery: json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{issuer}/authorize"),
                "token_endpoint": format!("{issuer}/token"),
                "jwks_uri": format!("{issuer}/jwks.json"),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256"],
                "code_challenge_methods_supported": ["plain", "S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
            }),
            issuer,
            client_id: AUD.into(),
            secret: None,
            discovery_hits: 0,
            grants: HashMap::new(),
            issued: 0,
            sub: "alice".into(),
            extra_claims: json!({}),
            failure: None,
            last_token_request: None,
        }));
        let provider = Self { addr, shared };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/moved/.well-known/openid-configuration", get(moved))
            .route("/jwks.json", get(keys))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(provider.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        provider
    }

    fn issuer_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().expect("provider lock")
    }

    /// The issuer's settings, as Guildhall would be configured for this provider.
    fn config(&self) -> OidcIssuer {
        OidcIssuer {
            issuer: self.issuer_url(),
            ..url_issuer(&format!("{}/jwks.json", self.issuer_url()))
        }
    }

    fn oidc(&self, adjust: impl FnOnce(&mut OidcIssuer)) -> Oidc {
        let mut config = self.config();
        adjust(&mut config);
        Oidc::new(&[config]).expect("valid configuration")
    }

    fn discovery_hits(&self) -> usize {
        self.shared().discovery_hits
    }

    fn last_token_request(&self) -> TokenRequest {
        self.shared()
            .last_token_request
            .clone()
            .expect("a token request")
    }

    /// A bearer token for the API from this provider, with extra claims.
    fn bearer(&self, sub: &str, extra: Value) -> String {
        let mut claims = json!({
            "iss": self.issuer_url(), "aud": AUD, "sub": sub, "iat": now(), "exp": now() + 600,
        });
        merge(&mut claims, &extra);
        sign_ec(ec_a(), Some("ec-a"), &claims)
    }
}

fn merge(claims: &mut Value, extra: &Value) {
    for (key, value) in extra.as_object().expect("an object") {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(key);
        } else {
            claims[key] = value.clone();
        }
    }
}

async fn discovery(State(p): State<Provider>) -> Json<Value> {
    let mut shared = p.shared();
    shared.discovery_hits += 1;
    Json(shared.discovery.clone())
}

async fn moved() -> Response {
    (
        StatusCode::FOUND,
        [(header::LOCATION, "/.well-known/openid-configuration")],
    )
        .into_response()
}

async fn keys() -> Json<Value> {
    Json(jwks(&[ec_jwk(ec_a(), "ec-a")]))
}

/// The browser's stop at the provider: the user is taken to have signed in as `sub`.
async fn authorize(
    State(p): State<Provider>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut shared = p.shared();
    let param = |name: &str| query.get(name).cloned().unwrap_or_default();
    let problems = [
        (
            param("response_type") == "code",
            "response_type must be code",
        ),
        (param("client_id") == shared.client_id, "unknown client_id"),
        (
            param("scope").split(' ').any(|s| s == "openid"),
            "scope must include openid",
        ),
        (
            param("code_challenge_method") == "S256",
            "code_challenge_method must be S256",
        ),
        (param("code_challenge").len() == 43, "bad code_challenge"),
        (!param("nonce").is_empty(), "nonce missing"),
        (!param("state").is_empty(), "state missing"),
    ];
    if let Some((_, why)) = problems.iter().find(|(ok, _)| !ok) {
        return (StatusCode::BAD_REQUEST, *why).into_response();
    }
    shared.issued += 1;
    let code = format!(
        "code-{}-{}",
        shared.issued,
        URL_SAFE_NO_PAD.encode(param("nonce"))
    );
    let grant = Grant {
        client_id: param("client_id"),
        redirect_uri: param("redirect_uri"),
        challenge: param("code_challenge"),
        nonce: param("nonce"),
        sub: shared.sub.clone(),
    };
    shared.grants.insert(code.clone(), grant);
    let mut location = reqwest::Url::parse(&param("redirect_uri")).expect("redirect_uri");
    location
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &param("state"));
    (
        StatusCode::FOUND,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

/// The token endpoint: client authentication, the code (once), the redirect URI and the
/// PKCE verifier checked; an ID token for the grant's user and nonce.
async fn token(
    State(p): State<Provider>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut shared = p.shared();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().expect("text").to_owned());
    shared.last_token_request = Some(TokenRequest {
        form: form.clone(),
        authorization: authorization.clone(),
    });
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    match shared.failure.clone() {
        Some(Failure::EchoingError) => {
            let secret = authorization.as_deref().map(basic_credentials);
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                &format!(
                    "The code {} with verifier {} (client {:?}) is not valid",
                    field("code"),
                    field("code_verifier"),
                    secret
                ),
            );
        }
        Some(Failure::Status(status, body)) => return (status, body).into_response(),
        Some(Failure::Huge) => {
            let body = json!({ "id_token": "x".repeat(1024 * 1024) }).to_string();
            return ([(header::CONTENT_TYPE, "application/json")], body).into_response();
        }
        None => {}
    }
    let client_id = match (&shared.secret, authorization.as_deref()) {
        (Some(secret), Some(authorization)) => {
            let (id, given) = basic_credentials(authorization);
            if &given != secret || form.contains_key("client_secret") {
                return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "bad secret");
            }
            id
        }
        (Some(_), None) => {
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "no credentials");
        }
        (None, _) => field("client_id"),
    };
    if field("grant_type") != "authorization_code" {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "");
    }
    let Some(grant) = shared.grants.remove(&field("code")) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "unknown or used code",
        );
    };
    if grant.client_id != client_id || client_id != shared.client_id {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "another client's code",
        );
    }
    if grant.redirect_uri != field("redirect_uri") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "redirect_uri differs",
        );
    }
    if s256(&field("code_verifier")) != grant.challenge {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "PKCE verification failed",
        );
    }
    let mut claims = json!({
        "iss": shared.issuer, "aud": client_id, "sub": grant.sub, "nonce": grant.nonce,
        "iat": now(), "exp": now() + 300,
    });
    merge(&mut claims, &shared.extra_claims);
    let id_token = sign_ec(ec_a(), Some("ec-a"), &claims);
    Json(json!({
        "access_token": "an-access-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
    .into_response()
}

/// The client id and secret of a `Basic` header, form-urldecoded (RFC 6749 §2.3.1).
fn basic_credentials(authorization: &str) -> (String, String) {
    let encoded = authorization.strip_prefix("Basic ").expect("Basic");
    let decoded = String::from_utf8(STANDARD.decode(encoded).expect("base64")).expect("UTF-8");
    let (id, secret) = decoded.split_once(':').expect("id:secret");
    (form_decode(id), form_decode(secret))
}

fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex");
                out.push(u8::from_str_radix(hex, 16).expect("hex"));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).expect("UTF-8")
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

fn query_of(url: &str) -> HashMap<String, String> {
    reqwest::Url::parse(url)
        .expect("a URL")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The browser: follows the authorization URL to the provider and returns the code and state
/// it is sent back with.
async fn browse(request: &SignInRequest) -> (String, String) {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = browser.get(&request.url).send().await.expect("authorize");
    assert_eq!(
        response.status(),
        StatusCode::FOUND,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let location = response.headers()[header::LOCATION].to_str().expect("text");
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    let back = query_of(location);
    (back["code"].clone(), back["state"].clone())
}

/// A whole sign-in as the console runs it.
async fn sign_in(oidc: &Oidc) -> Result<Identity, OidcError> {
    let request = oidc
        .begin_sign_in(ISSUER_ID, REDIRECT_URI)
        .await
        .expect("begin");
    let (code, state) = browse(&request).await;
    assert_eq!(state, request.state, "the state comes back unchanged");
    oidc.finish_sign_in(
        ISSUER_ID,
        &code,
        &request.verifier,
        &request.nonce,
        REDIRECT_URI,
    )
    .await
}

fn signed_in(sub: &str, amr: &[&str], acr: Option<&str>) -> Identity {
    Identity {
        amr: amr.iter().map(|s| s.to_string()).collect(),
        acr: acr.map(str::to_owned),
        ..identity(sub)
    }
}

fn is_base64url(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[tokio::test]
async fn round_trip_as_a_public_client() {
    let provider = Provider::start().await;
    let oidc = provider.oidc(|_| {});
    assert_eq!(provider.discovery_hits(), 0, "discovery is lazy");
    assert_eq!(
        oidc.sign_in_issuers(),
        vec![SignInIssuer {
            id: guildhall_domain::IssuerId::parse(ISSUER_ID).unwrap(),
            display_name: ISSUER_ID.into(),
        }]
    );

    let request = oidc
        .begin_sign_in(ISSUER_ID, REDIRECT_URI)
        .await
        .expect("begin");
    assert!(
        request
            .url
            .starts_with(&format!("{}/authorize?", provider.issuer_url())),
        "{}",
        request.url
    );
    let query = query_of(&request.url);
    assert_eq!(query["response_type"], "code");
    assert_eq!(
        query["client_id"], AUD,
        "the client id defaults to the audience"
    );
    assert_eq!(query["redirect_uri"], REDIRECT_URI);
    assert_eq!(query["scope"], "openid");
    assert_eq!(query["state"], request.state);
    assert_eq!(query["nonce"], request.nonce);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["code_challenge"], s256(&request.verifier));
    assert!(!query.contains_key("code_verifier") && !query.contains_key("acr_values"));
    assert!(!request.url.contains(&request.verifier));
    // 32 random bytes each, base64url: 43 characters, all different.
    for value in [&request.state, &request.nonce, &request.verifier] {
        assert_eq!(value.len(), 43, "{value}");
        assert!(is_base64url(value), "{value}");
    }
    assert_ne!(request.state, request.nonce);
    assert_ne!(request.nonce, request.verifier);
    assert!(!format!("{request:?}").contains(&request.verifier));

    let (code, state) = browse(&request).await;
    assert_eq!(state, request.state);
    let identity = oidc
        .finish_sign_in(
            ISSUER_ID,
            &code,
            &request.verifier,
            &request.nonce,
            REDIRECT_URI,
        )
        .await
        .expect("signed in");
    assert_eq!(identity, identity_of("alice"));
    assert_eq!(identity.subject.as_str(), "oidc:test-idp:alice");

    // A public client names itself in the body and sends no credentials.
    let sent = provider.last_token_request();
    assert_eq!(sent.authorization, None);
    assert_eq!(sent.form["client_id"], AUD);
    assert_eq!(sent.form["grant_type"], "authorization_code");
    assert_eq!(sent.form["code_verifier"], request.verifier);
    assert_eq!(sent.form["redirect_uri"], REDIRECT_URI);
    assert!(!sent.form.contains_key("client_secret"));

    // A second sign-in gets fresh values and reuses the discovered endpoints.
    let again = oidc
        .begin_sign_in(ISSUER_ID, REDIRECT_URI)
        .await
        .expect("begin");
    assert_ne!(again.state, request.state);
    assert_ne!(again.nonce, request.nonce);
    assert_ne!(again.verifier, request.verifier);
    provider.shared().sub = "bob".into();
    assert_eq!(sign_in(&oidc).await.expect("bob"), identity_of("bob"));
    assert_eq!(provider.discovery_hits(), 1);

    // A code is redeemed once.
    let replay = oidc
        .finish_sign_in(
            ISSUER_ID,
            &code,
            &request.verifier,
            &request.nonce,
            REDIRECT_URI,
        )
        .await;
    match replay {
        Err(OidcError::SignInRefused(message)) => {
            assert!(message.contains("invalid_grant"), "{message}")
        }
        other => panic!("expected the provider's refusal, got {other:?}"),
    }
}

fn identity_of(sub: &str) -> Identity {
    identity(sub)
}

#[tokio::test]
async fn round_trip_as_a_confidential_client() {
    let provider = Provider::start().await;
    {
        let mut shared = provider.shared();
        shared.client_id = CONSOLE_CLIENT.into();
        shared.secret = Some(SECRET.into());
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let secret_file = dir.path().join("client-secret");
    // As Kubernetes mounts it from a Secret made with a trailing newline.
    std::fs::write(&secret_file, format!("{SECRET}\n")).expect("write");
    let oidc = provider.oidc(|i| {
        i.client_id = Some(CONSOLE_CLIENT.into());
        i.client_secret_file = Some(secret_file.clone());
        i.display_name = Some("Test County Council staff".into());
    });
    assert_eq!(
        oidc.sign_in_issuers()[0].display_name,
        "Test County Council staff"
    );
    let request = oidc
        .begin_sign_in(ISSUER_ID, REDIRECT_URI)
        .await
        .expect("begin");
    assert_eq!(query_of(&request.url)["client_id"], CONSOLE_CLIENT);
    let (code, _) = browse(&request).await;
    let identity = oidc
        .finish_sign_in(
            ISSUER_ID,
            &code,
            &request.verifier,
            &request.nonce,
            REDIRECT_URI,
        )
        .await
        .expect("signed in");
    assert_eq!(identity, identity_of("alice"));

    // client_secret_basic, the id and secret form-urlencoded; never the secret in the body.
    let sent = provider.last_token_request();
    let authorization = sent.authorization.expect("client credentials");
    assert_eq!(
        basic_credentials(&authorization),
        (CONSOLE_CLIENT.to_owned(), SECRET.to_owned())
    );
    assert!(!authorization.contains(SECRET));
    assert!(!sent.form.values().any(|v| v.contains(SECRET)));

    // The ID token's audience is the client id, not the API's audience...
    provider.shared().extra_claims = json!({ "aud": AUD });
    assert!(matches!(
        sign_in(&oidc).await,
        Err(OidcError::WrongAudience)
    ));
    // ...and the API's bearer tokens keep theirs: a token for the console is not one for
    // the API.
    let for_console = provider.bearer("alice", json!({ "aud": CONSOLE_CLIENT }));
    assert!(matches!(
        oidc.verify(&for_console).await,
        Err(OidcError::WrongAudience)
    ));
    // An authorized party must be us.
    provider.shared().extra_claims = json!({ "aud": [CONSOLE_CLIENT, "other"], "azp": "other" });
    assert!(matches!(sign_in(&oidc).await, Err(OidcError::Invalid(m)) if m.contains("azp")));
    provider.shared().extra_claims =
        json!({ "aud": [CONSOLE_CLIENT, "other"], "azp": CONSOLE_CLIENT });
    assert_eq!(
        sign_in(&oidc).await.expect("azp is us"),
        identity_of("alice")
    );

    // A wrong secret is the provider's refusal, and the secret is not in the message.
    let wrong = provider.oidc(|i| {
        i.client_id = Some(CONSOLE_CLIENT.into());
        i.client_secret = Some(ClientSecret::new("not-the-secret"));
    });
    match sign_in(&wrong).await {
        Err(error @ OidcError::SignInRefused(_)) => {
            let shown = format!("{error} {error:?}");
            assert!(shown.contains("invalid_client"), "{shown}");
            assert!(!shown.contains("not-the-secret"), "{shown}");
        }
        other => panic!("expected the provider's refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn the_nonce_must_be_this_sign_ins() {
    let provider = Provider::start().await;
    let oidc = provider.oidc(|_| {});
    provider.shared().extra_claims = json!({ "nonce": "another-sign-in" });
    assert!(matches!(
        sign_in(&oidc).await,
        Err(OidcError::NonceMismatch)
    ));
    provider.shared().extra_claims = json!({ "nonce": null });
    match sign_in(&oidc).await {
        Err(OidcError::Invalid(message)) => assert!(message.contains("nonce"), "{message}"),
        other => panic!("expected a missing nonce, got {other:?}"),
    }
    provider.shared().extra_claims = json!({ "nonce": 7 });
    assert!(matches!(sign_in(&oidc).await, Err(OidcError::Invalid(_))));

    // The nonce of another sign-in, passed by the caller, is refused the same way.
    provider.shared().extra_claims = json!({});
    let first = oidc
        .begin_sign_in(ISSUER_ID, REDIRECT_URI)
        .await
        .expect("begin");
    let second = oidc
        .begin_sign_in(ISSUER_ID, REDIRECT_URI)
        .await
        .expect("begin");
    let (code, _) = browse(&first).await;
    assert!(matches!(
        oidc.finish_sign_in(
            ISSUER_ID,
            &code,
            &first.verifier,
            &second.nonce,
            REDIRECT_URI
        )
        .await,
        Err(OidcError::NonceMismatch)
    ));
}

#[tokio::test]
async fn the_id_token_is_verified_like_a_bearer_token() {
    let provider = Provider::start().await;
    let oidc = provider.oidc(|_| {});
    type Expected = fn(&OidcError) -> bool;
    let cases: Vec<(Value, Expected)> = vec![
        (json!({ "iss": ISS }), |e| {
            matches!(e, OidcError::UnknownIssuer)
        }),
        (json!({ "exp": now() - 3600 }), |e| {
            matches!(e, OidcError::Expired)
        }),
        (json!({ "nbf": now() + 3600 }), |e| {
            matches!(e, OidcError::NotYetValid)
        }),
        (
            json!({ "sub": null }),
            |e| matches!(e, OidcError::Invalid(m) if m.contains("sub")),
        ),
    ];
    for (claims, expected) in cases {
        provider.shared().extra_claims = claims.clone();
        let result = sign_in(&oidc).await;
        assert!(
            result.as_ref().is_err_and(expected),
            "{claims}: got {result:?}"
        );
    }
    // Within the leeway.
    provider.shared().extra_claims = json!({ "exp": now() - 30 });
    assert_eq!(sign_in(&oidc).await.expect("leeway"), identity_of("alice"));
}

#[tokio::test]
async fn a_wrong_verifier_is_the_providers_refusal() {
    let provider = Provider::start().await;
    let oidc = provider.oidc(|_| {});
    let request = oidc
        .begin_sign_in(ISSUER_ID, REDIRECT_URI)
        .await
        .expect("begin");
    let (code, _) = browse(&request).await;
    let other = oidc
        .begin_sign_in(ISSUER_ID, REDIRECT_URI)
        .await
        .expect("begin");
    match oidc
        .finish_sign_in(
            ISSUER_ID,
            &code,
            &other.verifier,
            &request.nonce,
            REDIRECT_URI,
        )
        .await
    {
        Err(OidcError::SignInRefused(message)) => {
            assert!(
                message.contains("invalid_grant") && message.contains("PKCE"),
                "{message}"
            )
        }
        other => panic!("expected the provider's refusal, got {other:?}"),
    }
    // Inputs that cannot be right never reach the provider.
    provider.shared().last_token_request = None;
    for (code, verifier) in [
        ("", request.verifier.as_str()),
        (code.as_str(), "short"),
        (code.as_str(), &"x".repeat(129)),
        (code.as_str(), &format!("{}!", &request.verifier)),
    ] {
        assert!(
            matches!(
                oidc.finish_sign_in(ISSUER_ID, code, verifier, &request.nonce, REDIRECT_URI)
                    .await,
                Err(OidcError::InvalidRequest(_))
            ),
            "{code:?} {verifier:?}"
        );
    }
    assert!(provider.shared().last_token_request.is_none());
}

#[tokio::test]
async fn token_endpoint_errors_are_clear_and_quote_no_secrets() {
    let provider = Provider::start().await;
    provider.shared().secret = Some(SECRET.into());
    let oidc = provider.oidc(|i| i.client_secret = Some(ClientSecret::new(SECRET)));

    provider.shared().failure = Some(Failure::EchoingError);
    let request = oidc
        .begin_sign_in(ISSUER_ID, REDIRECT_URI)
        .await
        .expect("begin");
    let (code, _) = browse(&request).await;
    let error = oidc
        .finish_sign_in(
            ISSUER_ID,
            &code,
            &request.verifier,
            &request.nonce,
            REDIRECT_URI,
        )
        .await
        .expect_err("refused");
    let shown = format!("{error} / {error:?}");
    assert!(matches!(error, OidcError::SignInRefused(_)), "{shown}");
    assert!(
        shown.contains("invalid_grant") && shown.contains("HTTP 400"),
        "{shown}"
    );
    assert!(shown.contains("[redacted]"), "{shown}");
    for hidden in [code.as_str(), &request.verifier, SECRET] {
        assert!(!shown.contains(hidden), "{shown} quotes {hidden}");
    }

    provider.shared().failure = Some(Failure::Status(
        StatusCode::INTERNAL_SERVER_ERROR,
        "<html>oops</html>",
    ));
    match sign_in(&oidc).await {
        Err(OidcError::TokenEndpoint(message)) => {
            assert!(
                message.contains("500") && message.contains("/token"),
                "{message}"
            )
        }
        other => panic!("expected a token endpoint failure, got {other:?}"),
    }
    provider.shared().failure = Some(Failure::Status(StatusCode::FOUND, ""));
    match sign_in(&oidc).await {
        Err(OidcError::TokenEndpoint(message)) => {
            assert!(message.contains("redirect"), "{message}")
        }
        other => panic!("expected a token endpoint failure, got {other:?}"),
    }
    provider.shared().failure = Some(Failure::Status(StatusCode::OK, "{\"access_token\":\"a\"}"));
    match sign_in(&oidc).await {
        Err(OidcError::TokenEndpoint(message)) => {
            assert!(message.contains("id_token"), "{message}")
        }
        other => panic!("expected a token endpoint failure, got {other:?}"),
    }
    provider.shared().failure = Some(Failure::Huge);
    match sign_in(&oidc).await {
        Err(OidcError::TokenEndpoint(message)) => assert!(message.contains("larger"), "{message}"),
        other => panic!("expected a token endpoint failure, got {other:?}"),
    }
}

#[tokio::test]
async fn discovery_must_name_the_configured_issuer() {
    let provider = Provider::start().await;
    provider.shared().discovery["issuer"] = json!("https://impostor.example.test/");
    let oidc = provider.oidc(|_| {});
    match oidc.begin_sign_in(ISSUER_ID, REDIRECT_URI).await {
        Err(OidcError::Discovery(message)) => {
            assert!(message.contains("not the configured"), "{message}")
        }
        other => panic!("expected a discovery failure, got {other:?}"),
    }
    // The failure is remembered for a while rather than retried on every sign-in.
    assert!(oidc.begin_sign_in(ISSUER_ID, REDIRECT_URI).await.is_err());
    assert_eq!(provider.discovery_hits(), 1);
    // The ID token verification path is unaffected: bearer tokens still verify.
    let token = provider.bearer("alice", json!({}));
    assert_eq!(
        oidc.verify(&token).await.expect("bearer"),
        identity_of("alice")
    );
}

#[tokio::test]
async fn discovery_redirects_are_not_followed() {
    let provider = Provider::start().await;
    let oidc = provider.oidc(|i| i.issuer = format!("{}/moved", provider.issuer_url()));
    match oidc.begin_sign_in(ISSUER_ID, REDIRECT_URI).await {
        Err(OidcError::Discovery(message)) => assert!(message.contains("redirect"), "{message}"),
        other => panic!("expected a discovery failure, got {other:?}"),
    }
    assert_eq!(
        provider.discovery_hits(),
        0,
        "the redirect's target is never fetched"
    );
}

#[tokio::test]
async fn discovered_endpoints_must_be_https_off_loopback() {
    for endpoint in ["authorization_endpoint", "token_endpoint"] {
        let provider = Provider::start().await;
        provider.shared().discovery[endpoint] = json!("http://idp.example.test/oauth2");
        let oidc = provider.oidc(|_| {});
        match oidc.begin_sign_in(ISSUER_ID, REDIRECT_URI).await {
            Err(OidcError::Discovery(message)) => {
                assert!(
                    message.contains(endpoint) && message.contains("must use https"),
                    "{message}"
                )
            }
            other => panic!("{endpoint}: expected a discovery failure, got {other:?}"),
        }
    }
    // A provider without PKCE S256 is refused too.
    let provider = Provider::start().await;
    provider.shared().discovery["code_challenge_methods_supported"] = json!(["plain"]);
    let oidc = provider.oidc(|_| {});
    assert!(matches!(
        oidc.begin_sign_in(ISSUER_ID, REDIRECT_URI).await,
        Err(OidcError::Discovery(m)) if m.contains("S256")
    ));
}

#[tokio::test]
async fn issuers_that_cannot_be_discovered_safely_are_not_offered() {
    let off_loopback = "http://idp.example.test/";
    let url = "https://idp.example.test/jwks.json";
    // Asked for explicitly: refused at start-up.
    for issuer in [
        off_loopback,
        "urn:council:idp",
        "https://idp.example.test/?tenant=x",
    ] {
        let config = OidcIssuer {
            issuer: issuer.into(),
            sign_in: Some(true),
            ..url_issuer(url)
        };
        match Oidc::new(&[config]) {
            Err(OidcError::Config(message)) => assert!(message.contains("sign_in"), "{message}"),
            other => panic!("{issuer}: expected a configuration error, got {other:?}"),
        }
    }
    let config = OidcIssuer {
        issuer: off_loopback.into(),
        sign_in: Some(true),
        ..url_issuer(url)
    };
    let Err(OidcError::Config(message)) = Oidc::new(&[config]) else {
        panic!("refused")
    };
    assert!(message.contains("must use https"), "{message}");
    // Left to the default: the issuer keeps verifying bearer tokens, without sign-in.
    let config = OidcIssuer {
        issuer: off_loopback.into(),
        ..url_issuer(url)
    };
    let oidc = Oidc::new(&[config]).expect("bearer tokens only");
    assert!(oidc.sign_in_issuers().is_empty());
    assert!(matches!(
        oidc.begin_sign_in(ISSUER_ID, REDIRECT_URI).await,
        Err(OidcError::NotForSignIn(_))
    ));
}

#[tokio::test]
async fn only_offered_issuers_sign_in() {
    let provider = Provider::start().await;
    let offered = provider.config();
    let not_offered = OidcIssuer {
        id: "api-only".into(),
        issuer: "https://api-only.example.test/".into(),
        sign_in: Some(false),
        ..provider.config()
    };
    let named = OidcIssuer {
        id: "named".into(),
        issuer: "https://named.example.test/".into(),
        display_name: Some("  Kent County Council  ".into()),
        sign_in: Some(true),
        ..provider.config()
    };
    let oidc = Oidc::new(&[offered, not_offered, named]).expect("config");
    let listed: Vec<(String, String)> = oidc
        .sign_in_issuers()
        .into_iter()
        .map(|i| (i.id.as_str().to_owned(), i.display_name))
        .collect();
    assert_eq!(
        listed,
        vec![
            (ISSUER_ID.to_owned(), ISSUER_ID.to_owned()),
            ("named".to_owned(), "Kent County Council".to_owned()),
        ]
    );
    for id in ["api-only", "unknown", "oidc:test-idp"] {
        assert!(
            matches!(
                oidc.begin_sign_in(id, REDIRECT_URI).await,
                Err(OidcError::NotForSignIn(_))
            ),
            "{id}"
        );
        assert!(matches!(
            oidc.finish_sign_in(id, "code", &"v".repeat(43), "nonce", REDIRECT_URI)
                .await,
            Err(OidcError::NotForSignIn(_))
        ));
    }
    assert_eq!(provider.discovery_hits(), 0);
}

#[tokio::test]
async fn redirect_uris_are_https_or_loopback() {
    let provider = Provider::start().await;
    let oidc = provider.oidc(|_| {});
    for uri in [
        "http://guildhall.example.gov.uk/console/auth/callback",
        "https://guildhall.example.gov.uk/callback#fragment",
        "/console/auth/callback",
        "javascript:alert(1)",
    ] {
        assert!(
            matches!(
                oidc.begin_sign_in(ISSUER_ID, uri).await,
                Err(OidcError::InvalidRequest(_))
            ),
            "{uri}"
        );
    }
    let request = oidc
        .begin_sign_in(ISSUER_ID, "http://127.0.0.1:8080/console/auth/callback")
        .await
        .expect("loopback");
    assert_eq!(
        query_of(&request.url)["redirect_uri"],
        "http://127.0.0.1:8080/console/auth/callback"
    );
}

/// The MFA cases: `amr`/`acr` claims, and whether an issuer with `require_mfa` and
/// `mfa_acr_values = ["urn:mfa"]` accepts them.
fn mfa_cases() -> Vec<(Value, bool)> {
    vec![
        (json!({ "amr": ["pwd"] }), false),
        (json!({}), false),
        (json!({ "amr": [] }), false),
        (json!({ "amr": ["pwd", "kba"] }), false),
        (json!({ "amr": ["pwd"], "acr": "urn:other" }), false),
        (json!({ "amr": "mfa" }), false),
        (json!({ "amr": ["pwd", "otp"] }), true),
        (json!({ "amr": ["mfa"] }), true),
        (json!({ "amr": ["mca"] }), true),
        (json!({ "amr": ["hwk"] }), true),
        (json!({ "amr": ["face"] }), true),
        (json!({ "amr": ["pwd"], "acr": "urn:mfa" }), true),
        (json!({ "acr": "urn:mfa" }), true),
    ]
}

fn expected_identity(claims: &Value) -> Identity {
    let amr: Vec<&str> = claims["amr"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    signed_in("alice", &amr, claims["acr"].as_str())
}

#[tokio::test]
async fn require_mfa_on_bearer_tokens() {
    let provider = Provider::start().await;
    let strict = provider.oidc(|i| {
        i.require_mfa = true;
        i.mfa_acr_values = vec!["urn:mfa".into()];
    });
    let relaxed = provider.oidc(|_| {});
    for (claims, accepted) in mfa_cases() {
        let token = provider.bearer("alice", claims.clone());
        match strict.verify(&token).await {
            Ok(identity) if accepted => assert_eq!(identity, expected_identity(&claims)),
            Err(OidcError::MfaRequired) if !accepted && claims["amr"].is_string() => {
                panic!("{claims}: a malformed amr is invalid, not merely without MFA")
            }
            Err(OidcError::MfaRequired | OidcError::Invalid(_)) if !accepted => {}
            other => panic!("{claims}: accepted {accepted} expected, got {other:?}"),
        }
        // Without require_mfa, how the user signed in does not matter.
        let identity = relaxed.verify(&token).await.expect("no MFA needed");
        assert_eq!(identity.subject, identity_of("alice").subject, "{claims}");
    }
    // The refusal is the documented one.
    let token = provider.bearer("alice", json!({ "amr": ["pwd"] }));
    let error = strict.verify(&token).await.expect_err("refused");
    assert!(matches!(error, OidcError::MfaRequired));
    assert_eq!(
        error.to_string(),
        "the identity provider did not confirm a second factor; this issuer requires multi-factor authentication"
    );
    // Identity carries amr and acr.
    let token = provider.bearer("alice", json!({ "amr": ["pwd"], "acr": "urn:basic" }));
    assert_eq!(
        relaxed.verify(&token).await.expect("relaxed"),
        signed_in("alice", &["pwd"], Some("urn:basic"))
    );
    // MFA is refused only after the signature: a forged amr is a bad signature.
    let genuine = provider.bearer("alice", json!({ "amr": ["pwd"] }));
    let mut parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
    let forged = json!({
        "iss": provider.issuer_url(), "aud": AUD, "sub": "alice", "exp": now() + 600, "amr": ["mfa"],
    });
    parts[1] = URL_SAFE_NO_PAD.encode(forged.to_string());
    assert!(matches!(
        strict.verify(&parts.join(".")).await,
        Err(OidcError::BadSignature)
    ));
}

#[tokio::test]
async fn require_mfa_on_sign_in() {
    let provider = Provider::start().await;
    let strict = provider.oidc(|i| {
        i.require_mfa = true;
        i.mfa_acr_values = vec!["urn:mfa".into()];
    });
    // The sign-in asks the provider for what will be required.
    let request = strict
        .begin_sign_in(ISSUER_ID, REDIRECT_URI)
        .await
        .expect("begin");
    assert_eq!(query_of(&request.url)["acr_values"], "urn:mfa");
    for (claims, accepted) in mfa_cases() {
        provider.shared().extra_claims = claims.clone();
        match sign_in(&strict).await {
            Ok(identity) if accepted => assert_eq!(identity, expected_identity(&claims)),
            Err(OidcError::MfaRequired | OidcError::Invalid(_)) if !accepted => {}
            other => panic!("{claims}: accepted {accepted} expected, got {other:?}"),
        }
    }
    // Without require_mfa, a password is enough.
    let relaxed = provider.oidc(|_| {});
    provider.shared().extra_claims = json!({ "amr": ["pwd"] });
    assert_eq!(
        sign_in(&relaxed).await.expect("password only"),
        signed_in("alice", &["pwd"], None)
    );
    // require_mfa without acr values asks for nothing in particular.
    let amr_only = provider.oidc(|i| i.require_mfa = true);
    let request = amr_only
        .begin_sign_in(ISSUER_ID, REDIRECT_URI)
        .await
        .expect("begin");
    assert!(!query_of(&request.url).contains_key("acr_values"));
    provider.shared().extra_claims = json!({ "amr": ["pwd"], "acr": "urn:mfa" });
    assert!(matches!(
        sign_in(&amr_only).await,
        Err(OidcError::MfaRequired)
    ));
}

#[test]
fn sign_in_configuration_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "a-secret\n").expect("write");
    let empty_file = dir.path().join("empty");
    std::fs::write(&empty_file, "\n").expect("write");
    let two_lines = dir.path().join("two-lines");
    std::fs::write(&two_lines, "hidden-part-one\nhidden-part-two\n").expect("write");
    let url = "https://idp.example.test/jwks.json";
    let cases: Vec<(&str, OidcIssuer, &str)> = vec![
        (
            "both secrets",
            OidcIssuer {
                client_secret: Some(ClientSecret::new("inline")),
                client_secret_file: Some(secret_file.clone()),
                ..url_issuer(url)
            },
            "not both",
        ),
        (
            "empty inline secret",
            OidcIssuer {
                client_secret: Some(ClientSecret::new(" ")),
                ..url_issuer(url)
            },
            "`client_secret` is empty",
        ),
        (
            "missing secret file",
            OidcIssuer {
                client_secret_file: Some(dir.path().join("missing")),
                ..url_issuer(url)
            },
            "client_secret_file",
        ),
        (
            "empty secret file",
            OidcIssuer {
                client_secret_file: Some(empty_file),
                ..url_issuer(url)
            },
            "empty",
        ),
        (
            "secret of two lines",
            OidcIssuer {
                client_secret_file: Some(two_lines),
                ..url_issuer(url)
            },
            "one line",
        ),
        (
            "empty client id",
            OidcIssuer {
                client_id: Some(String::new()),
                ..url_issuer(url)
            },
            "`client_id` is empty",
        ),
        (
            "empty display name",
            OidcIssuer {
                display_name: Some("  ".into()),
                ..url_issuer(url)
            },
            "`display_name` is empty",
        ),
        (
            "long display name",
            OidcIssuer {
                display_name: Some("x".repeat(101)),
                ..url_issuer(url)
            },
            "longer than 100",
        ),
        (
            "acr values without require_mfa",
            OidcIssuer {
                mfa_acr_values: vec!["urn:mfa".into()],
                ..url_issuer(url)
            },
            "require_mfa",
        ),
        (
            "an acr value with a space",
            OidcIssuer {
                require_mfa: true,
                mfa_acr_values: vec!["urn:a urn:b".into()],
                ..url_issuer(url)
            },
            "without spaces",
        ),
    ];
    for (name, config, says) in cases {
        match Oidc::new(&[config]) {
            Err(OidcError::Config(message)) => {
                assert!(message.contains(says), "{name}: {message}");
                assert!(message.contains("auth.oidc[0]"), "{name}: {message}");
                assert!(!message.contains("hidden-part"), "{name}: {message}");
            }
            other => panic!("{name}: expected Config, got {other:?}"),
        }
    }
    let fine = OidcIssuer {
        client_id: Some(CONSOLE_CLIENT.into()),
        client_secret_file: Some(secret_file),
        display_name: Some("Surrey staff".into()),
        sign_in: Some(true),
        require_mfa: true,
        mfa_acr_values: vec!["urn:mfa".into(), "2".into()],
        ..url_issuer(url)
    };
    Oidc::new(&[fine]).expect("valid");
}

#[test]
fn the_client_secret_is_never_shown() {
    let hidden = "correct-horse-battery-staple";
    let dir = tempfile::tempdir().expect("tempdir");
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, hidden).expect("write");
    let inline = OidcIssuer {
        client_secret: Some(ClientSecret::new(hidden)),
        ..url_issuer("https://idp.example.test/jwks.json")
    };
    let from_file = OidcIssuer {
        id: "from-file".into(),
        issuer: "https://other.example.test/".into(),
        client_secret_file: Some(secret_file),
        ..url_issuer("https://other.example.test/jwks.json")
    };
    let oidc = Oidc::new(&[inline.clone(), from_file]).expect("config");
    let shown = [
        format!("{inline:?}"),
        format!("{inline:#?}"),
        format!("{oidc:?}"),
        serde_json::to_string(&inline).expect("serialise"),
        ClientSecret::new(hidden).to_string(),
    ];
    for text in shown {
        assert!(!text.contains(hidden), "{text}");
    }
    assert!(format!("{inline:?}").contains("***"));
    let serialised: Value = serde_json::to_value(&inline).expect("serialise");
    assert_eq!(serialised["client_secret"], "***");
    // Reading a configuration still gets the secret itself.
    let read: OidcIssuer = serde_json::from_value(json!({
        "id": "x1", "issuer": ISS, "audience": AUD, "jwks_url": "https://idp.example.test/k",
        "client_secret": hidden,
    }))
    .expect("deserialise");
    assert_eq!(read.client_secret, Some(ClientSecret::new(hidden)));
}

#[test]
fn configuration_written_before_sign_in_still_loads() {
    // The keys of an issuer before sign-in existed: every new one takes its default.
    let read: OidcIssuer = serde_json::from_value(json!({
        "id": "surrey", "issuer": "https://login.surrey.example.org/", "audience": "guildhall",
        "jwks_url": "https://login.surrey.example.org/keys",
    }))
    .expect("deserialise");
    assert_eq!(read.client_id, None);
    assert_eq!(read.sign_in, None);
    assert!(!read.require_mfa && read.mfa_acr_values.is_empty());
    let oidc = Oidc::new(&[read]).expect("valid");
    assert_eq!(oidc.sign_in_issuers().len(), 1);
    // Unknown keys are still refused.
    let unknown = serde_json::from_value::<OidcIssuer>(json!({
        "id": "surrey", "issuer": "https://login.surrey.example.org/", "audience": "guildhall",
        "jwks_url": "https://login.surrey.example.org/keys", "require_2fa": true,
    }));
    assert!(unknown.is_err());
}
