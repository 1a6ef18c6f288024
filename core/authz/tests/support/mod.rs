//! What the OpenID Connect tests share: test keys, JWKS entries, token builders and issuer
//! settings. Each test binary uses a part of it.
#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use guildhall_authz::oidc::{Identity, OidcIssuer};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::ecdsa::SigningKey as EcKey;
use p256::pkcs8::EncodePrivateKey as _;
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use rsa::{RsaPrivateKey, rand_core::OsRng};
use serde_json::{Value, json};

pub const ISS: &str = "https://idp.example.test/";
pub const AUD: &str = "guildhall";
pub const ISSUER_ID: &str = "test-idp";

fn rsa_key(cell: &'static OnceLock<RsaPrivateKey>) -> &'static RsaPrivateKey {
    cell.get_or_init(|| RsaPrivateKey::new(&mut OsRng, 2048).expect("RSA key generation"))
}

fn ec_key(cell: &'static OnceLock<EcKey>) -> &'static EcKey {
    cell.get_or_init(|| EcKey::random(&mut OsRng))
}

/// Test keys, each generated once per test binary when first used.
pub fn rsa_a() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    rsa_key(&KEY)
}

pub fn rsa_b() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    rsa_key(&KEY)
}

pub fn rsa_c() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    rsa_key(&KEY)
}

pub fn ec_a() -> &'static EcKey {
    static KEY: OnceLock<EcKey> = OnceLock::new();
    ec_key(&KEY)
}

pub fn ec_b() -> &'static EcKey {
    static KEY: OnceLock<EcKey> = OnceLock::new();
    ec_key(&KEY)
}

pub fn rsa_jwk(key: &RsaPrivateKey, kid: &str) -> Value {
    let public = key.to_public_key();
    json!({
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
    })
}

pub fn ec_jwk(key: &EcKey, kid: &str) -> Value {
    let point = key.verifying_key().to_encoded_point(false);
    json!({
        "kty": "EC",
        "crv": "P-256",
        "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(point.x().expect("x")),
        "y": URL_SAFE_NO_PAD.encode(point.y().expect("y")),
    })
}

pub fn jwks(keys: &[Value]) -> Value {
    json!({ "keys": keys })
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

pub fn claims(sub: &str) -> Value {
    json!({ "iss": ISS, "aud": AUD, "sub": sub, "iat": now(), "exp": now() + 600 })
}

pub fn header(alg: Algorithm, kid: Option<&str>) -> Header {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    header
}

pub fn sign_rsa(key: &RsaPrivateKey, kid: Option<&str>, claims: &Value) -> String {
    let der = key.to_pkcs1_der().expect("PKCS#1");
    let key = EncodingKey::from_rsa_der(der.as_bytes());
    jsonwebtoken::encode(&header(Algorithm::RS256, kid), claims, &key).expect("sign RS256")
}

pub fn sign_ec(key: &EcKey, kid: Option<&str>, claims: &Value) -> String {
    let der = key.to_pkcs8_der().expect("PKCS#8");
    let key = EncodingKey::from_ec_der(der.as_bytes());
    jsonwebtoken::encode(&header(Algorithm::ES256, kid), claims, &key).expect("sign ES256")
}

/// A token with an arbitrary header and claims and the given signature segment.
pub fn raw_token(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// An issuer with its keys at `url` and nothing about sign-in or MFA set.
pub fn url_issuer(url: &str) -> OidcIssuer {
    OidcIssuer {
        id: ISSUER_ID.into(),
        issuer: ISS.into(),
        audience: AUD.into(),
        jwks_url: Some(url.into()),
        jwks_file: None,
        tenants: Vec::new(),
        leeway_secs: 60,
        client_id: None,
        client_secret_file: None,
        client_secret: None,
        display_name: None,
        sign_in: None,
        require_mfa: false,
        mfa_acr_values: Vec::new(),
    }
}

pub fn file_issuer(path: &Path) -> OidcIssuer {
    OidcIssuer {
        jwks_url: None,
        jwks_file: Some(path.to_owned()),
        ..url_issuer("unused")
    }
}

/// The identity of `sub` at [`ISSUER_ID`], from a token saying nothing of how it signed in.
pub fn identity(sub: &str) -> Identity {
    let issuer = guildhall_domain::IssuerId::parse(ISSUER_ID).unwrap();
    Identity {
        subject: guildhall_domain::Subject::oidc(&issuer, sub).unwrap(),
        issuer,
        sub: sub.into(),
        amr: Vec::new(),
        acr: None,
    }
}
