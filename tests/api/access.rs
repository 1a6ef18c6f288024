//! What the access tests (the `access_*` modules, and `identity` and `concurrency`) share:
//! two example alliances with `hello` installed, every API operation as the OpenAPI document
//! declares it, a request to any of them, and an OIDC provider of the test's own.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, status_and_text};

pub(crate) const A: &str = "north-downs";
pub(crate) const B: &str = "the-marches";

pub(crate) async fn two_alliances(app: &TestApp) {
    app.create_example_tenants().await;
    app.publish_built("hello").await;
    for tenant in [A, B] {
        let r = app.install_for(tenant, "hello", "all").await;
        assert_eq!(r.status(), 201);
    }
}

/// Every `/api/v1` operation of the OpenAPI document with its declared access.
pub(crate) async fn operations(app: &TestApp) -> Vec<(String, String, String)> {
    let doc = app.get_json("/api/openapi.json").await;
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/api/v1/") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            let access = op["x-guildhall-access"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} declares no access"));
            assert_eq!(op["security"][0]["bearer"], json!([]), "{method} {path}");
            ops.push((method.to_uppercase(), path.clone(), access.to_string()));
        }
    }
    assert!(ops.len() >= 18, "only {} operations", ops.len());
    ops
}

pub(crate) fn concrete(path: &str, tenant: &str) -> String {
    let council = if tenant == A {
        "tandridge"
    } else {
        "shropshire"
    };
    path.replace("{tenant}", tenant)
        .replace("{council}", council)
        .replace("{plugin}", "hello")
        .replace("{version}", "9.9.9")
        .replace("{subject}", "someone")
        .replace("{token}", "0000000000000000")
}

/// Sends `method` to `path` as `client` with a body the operation cannot accept (an empty
/// JSON object, or a form without a component for an upload); returns the status and text.
pub(crate) async fn send(
    client: &reqwest::Client,
    app: &TestApp,
    method: &Method,
    path: &str,
) -> (u16, String) {
    let mut request = client.request(method.clone(), app.url(path));
    if path.ends_with("/versions") && method == Method::POST {
        request = request.multipart(reqwest::multipart::Form::new().text("manifest", "not toml"));
    } else if [Method::PUT, Method::POST, Method::PATCH].contains(method) {
        request = request.json(&json!({}));
    }
    status_and_text(request.send().await.unwrap()).await
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub(crate) struct Idp {
    key: p256::ecdsa::SigningKey,
    _dir: tempfile::TempDir,
    jwks: std::path::PathBuf,
}

impl Idp {
    pub(crate) fn new() -> Self {
        let key = p256::ecdsa::SigningKey::random(&mut rsa::rand_core::OsRng);
        let point = key.verifying_key().to_encoded_point(false);
        let jwks = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
        }]});
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, jwks.to_string()).unwrap();
        Self {
            key,
            _dir: dir,
            jwks: path,
        }
    }

    pub(crate) fn sign(&self, claims: Value) -> String {
        use p256::pkcs8::EncodePrivateKey as _;
        let der = self.key.to_pkcs8_der().unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes()),
        )
        .unwrap()
    }

    pub(crate) fn issuer(&self) -> guildhall_authz::OidcIssuer {
        guildhall_authz::OidcIssuer {
            id: "north-downs-idp".into(),
            issuer: "https://login.north-downs.example/".into(),
            audience: "guildhall".into(),
            jwks_url: None,
            jwks_file: Some(self.jwks.clone()),
            tenants: vec![],
            leeway_secs: 30,
            client_id: None,
            client_secret_file: None,
            client_secret: None,
            display_name: None,
            sign_in: None,
            require_mfa: false,
            mfa_acr_values: vec![],
        }
    }
}
