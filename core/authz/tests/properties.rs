//! Property tests of OpenID Connect token parsing: whatever a caller sends as a bearer
//! token, `Oidc::looks_like_jwt` and `Oidc::verify` never panic; a token that is not signed
//! by the issuer's key is refused; a signed one is accepted only with a usable subject.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use guildhall_authz::oidc::{Oidc, OidcIssuer};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::ecdsa::SigningKey;
use p256::pkcs8::EncodePrivateKey as _;
use proptest::prelude::*;
use rsa::rand_core::OsRng;
use serde_json::{Value, json};

const ISS: &str = "https://idp.example.test/";
const ISSUER_ID: &str = "prop-idp";
const AUD: &str = "guildhall";
const KID: &str = "ec-1";

/// The issuer's key, a verifier configured with a JWKS file holding it, and a runtime.
struct Setup {
    key: SigningKey,
    oidc: Oidc,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let key = SigningKey::random(&mut OsRng);
        let point = key.verifying_key().to_encoded_point(false);
        let jwks = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": KID,
            "x": URL_SAFE_NO_PAD.encode(point.x().expect("x")),
            "y": URL_SAFE_NO_PAD.encode(point.y().expect("y")),
        }]});
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, jwks.to_string()).expect("write the JWKS file");
        let oidc = Oidc::new(&[OidcIssuer {
            id: ISSUER_ID.into(),
            issuer: ISS.into(),
            audience: AUD.into(),
            jwks_url: None,
            jwks_file: Some(path),
            tenants: Vec::new(),
            leeway_secs: 60,
            client_id: None,
            client_secret_file: None,
            client_secret: None,
            display_name: None,
            sign_in: None,
            require_mfa: false,
            mfa_acr_values: Vec::new(),
        }])
        .expect("a valid configuration");
        // Proptest runs the tests on several threads, each blocking on this runtime.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        Setup {
            key,
            oidc,
            runtime,
            _dir: dir,
        }
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .try_into()
        .expect("a 64-bit time")
}

/// Text an attacker would put in a claim, a header field or a segment.
fn adversarial() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("*".to_string()),
        Just("operator".to_string()),
        Just("role:operator".to_string()),
        Just("tenant-admin".to_string()),
        Just("publisher".to_string()),
        Just("token:0123456789abcdef".to_string()),
        Just("oidc:other:alice".to_string()),
        Just("../../etc/passwd".to_string()),
        Just("a\0b".to_string()),
        Just("\u{202e}nimda".to_string()),
        Just("ünïcödé-😀".to_string()),
        Just("x".repeat(300)),
        Just("x".repeat(70_000)),
        Just(ISS.to_string()),
        "\\PC{0,40}",
        any::<String>(),
    ]
}

/// JSON values of every type, for claims and header fields that expect one type.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        adversarial().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(adversarial(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A header: a known or hostile `alg`, maybe a `kid`, maybe `crit`, maybe anything else.
fn header() -> impl Strategy<Value = Value> {
    let alg = prop_oneof![
        Just(json!("ES256")),
        Just(json!("RS256")),
        Just(json!("none")),
        Just(json!("HS256")),
        Just(json!("es256")),
        json_value(),
    ];
    (
        alg,
        prop::option::of(prop_oneof![Just(json!(KID)), json_value()]),
        prop::option::of(json_value()),
        prop::option::of(json_value()),
    )
        .prop_map(|(alg, kid, crit, other)| {
            let mut header = json!({ "alg": alg });
            if let Some(kid) = kid {
                header["kid"] = kid;
            }
            if let Some(crit) = crit {
                header["crit"] = crit;
            }
            if let Some(other) = other {
                header["jku"] = other;
            }
            header
        })
}

/// Claims: each of the checked ones right, missing or hostile.
fn claims() -> impl Strategy<Value = Value> {
    let claim = |good: Value| {
        prop_oneof![
            2 => Just(Some(good)),
            1 => Just(None),
            1 => json_value().prop_map(Some),
        ]
    };
    (
        claim(json!(ISS)),
        claim(json!(AUD)),
        prop_oneof![
            adversarial().prop_map(|s| Some(json!(s))),
            json_value().prop_map(Some),
            Just(None),
        ],
        claim(json!(now() + 600)),
        claim(json!(now() - 10)),
    )
        .prop_map(|(iss, aud, sub, exp, nbf)| {
            let mut claims = serde_json::Map::new();
            for (name, value) in [
                ("iss", iss),
                ("aud", aud),
                ("sub", sub),
                ("exp", exp),
                ("nbf", nbf),
            ] {
                if let Some(value) = value {
                    claims.insert(name.to_string(), value);
                }
            }
            Value::Object(claims)
        })
}

/// A signature segment: empty, base64url of anything, or not base64url at all.
fn signature() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        prop::collection::vec(any::<u8>(), 0..96).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        adversarial(),
    ]
}

fn segment(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn any_text_is_refused(token in adversarial()) {
        let setup = setup();
        let _ = Oidc::looks_like_jwt(&token);
        prop_assert!(setup.runtime.block_on(setup.oidc.verify(&token)).is_err());
    }

    #[test]
    fn any_dotted_text_is_refused(parts in prop::collection::vec(adversarial(), 0..5)) {
        let setup = setup();
        let token = parts.join(".");
        let _ = Oidc::looks_like_jwt(&token);
        prop_assert!(setup.runtime.block_on(setup.oidc.verify(&token)).is_err());
    }

    #[test]
    fn unsigned_or_forged_tokens_are_refused(
        header in header(),
        claims in claims(),
        signature in signature(),
        raw_payload in prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
    ) {
        let setup = setup();
        let payload = match raw_payload {
            // Base64url of bytes that are not JSON, or not UTF-8.
            Some(bytes) => URL_SAFE_NO_PAD.encode(bytes),
            None => segment(&claims),
        };
        let token = format!("{}.{payload}.{signature}", segment(&header));
        let _ = Oidc::looks_like_jwt(&token);
        let result = setup.runtime.block_on(setup.oidc.verify(&token));
        prop_assert!(result.is_err(), "{result:?}");
        // Errors never repeat the token's claims.
        let message = result.unwrap_err().to_string();
        prop_assert!(payload.len() < 8 || !message.contains(&payload), "{message}");
    }
}

proptest! {
    // Each case signs and verifies an ES256 token; fewer cases keep the run to seconds.
    #![proptest_config(config(96))]

    #[test]
    fn signed_tokens_are_accepted_only_with_a_usable_subject(claims in claims()) {
        let setup = setup();
        let der = setup.key.to_pkcs8_der().expect("PKCS#8");
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(KID.to_string());
        let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(der.as_bytes()))
            .expect("sign ES256");
        prop_assert!(Oidc::looks_like_jwt(&token));
        if let Ok(identity) = setup.runtime.block_on(setup.oidc.verify(&token)) {
            // Accepted: the claims were right, and the subject is the claim's text, whatever
            // it looks like (`operator`, `*`, `token:…`), under the issuer's namespace.
            prop_assert_eq!(identity.issuer.as_str(), ISSUER_ID);
            prop_assert_eq!(&claims["iss"], &json!(ISS));
            prop_assert_eq!(&claims["aud"], &json!(AUD));
            prop_assert_eq!(&claims["sub"], &json!(identity.sub));
            prop_assert!(!identity.sub.is_empty() && identity.sub.len() <= 255);
            prop_assert_eq!(identity.subject.as_str(), format!("oidc:{ISSUER_ID}:{}", identity.sub));
        }
    }
}
