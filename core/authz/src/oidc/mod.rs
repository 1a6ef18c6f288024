//! OpenID Connect: verifying councils' identity providers' JWTs.
//!
//! [`Oidc`] holds the configured issuers and a cache of each issuer's signing keys (JWKS).
//! [`Oidc::verify`] accepts a bearer token signed with RS256 or ES256 by one of those issuers
//! and returns the caller's [`Identity`] (issuer and subject).
//!
//! Keys published at a URL are fetched lazily on first use and again when they are more than an
//! hour old; keys in a file are read at start-up. A token naming a key we do not know triggers one
//! refresh (a fetch, or a re-read of the file), at most once every ten seconds per issuer, so a
//! stream of forged tokens cannot make us hammer the identity provider.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use guildhall_domain::{IssuerId, Subject};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

mod jwks;
use jwks::*;

/// One trusted OpenID Connect issuer (`[[auth.oidc]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcIssuer {
    /// A short name for the issuer (`[a-z0-9-]{2,32}`), used in its subjects'
    /// names: `oidc:<id>:<sub>`. Changing it orphans the issuer's member bindings.
    pub id: String,
    /// The `iss` claim tokens must carry, e.g. `https://login.example.gov.uk/`.
    pub issuer: String,
    /// The `aud` claim tokens must carry (Guildhall's client id at that provider).
    pub audience: String,
    /// Where the provider publishes its signing keys (JWKS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// A JWKS file instead of a URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
    /// Tenants whose member bindings this issuer's subjects may match; empty means all.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
}

fn default_leeway() -> u64 {
    60
}

/// Largest accepted `leeway_secs`; more is a misconfiguration, not clock skew.
const MAX_LEEWAY_SECS: u64 = 3600;
/// A token longer than this is rejected as malformed without further parsing.
const MAX_TOKEN_LEN: usize = 64 * 1024;
/// Largest JWKS document we read, from a URL or a file.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Timeout of a whole JWKS fetch (connect, headers and body).
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// URL keys older than this are fetched again before use.
const MAX_KEY_AGE: Duration = Duration::from_secs(3600);
/// Least time between two refreshes caused by an unknown `kid`, and between a failed fetch and
/// the next attempt, per issuer.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// Longest `sub` accepted (OpenID Connect Core 1.0 §2: at most 255 ASCII characters).
const MAX_SUBJECT_LEN: usize = 255;

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The configured id of the issuer that signed it.
    pub issuer: IssuerId,
    /// The token's `sub` claim: the user's stable identifier at that issuer.
    pub sub: String,
    /// The namespaced subject, `oidc:<issuer id>:<sub>`.
    pub subject: Subject,
}

/// Why configuration was refused or a token was rejected.
///
/// Messages never contain the token, nor any of its claims.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The `auth.oidc` configuration is unusable.
    #[error("invalid OIDC configuration: {0}")]
    Config(String),
    /// The bearer token is not a JWT at all.
    #[error("the bearer token is not a well-formed JWT")]
    Malformed,
    /// The token is signed with an algorithm other than RS256 and ES256 (or not signed).
    #[error("unsupported JWT algorithm {0:?}: only RS256 and ES256 are accepted")]
    UnsupportedAlgorithm(String),
    /// The token's `iss` is not a configured issuer.
    #[error("the token's issuer is not a configured OIDC issuer")]
    UnknownIssuer,
    /// The issuer does not publish the key the token names, even after a refresh.
    #[error("the token's signing key is not among the issuer's published keys")]
    UnknownKey,
    /// The token's `exp` has passed (beyond the allowed leeway).
    #[error("the token has expired")]
    Expired,
    /// The token's `nbf` has not arrived yet (beyond the allowed leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The token's `aud` does not name this service.
    #[error("the token is not meant for this service (audience mismatch)")]
    WrongAudience,
    /// The signature does not match the issuer's key.
    #[error("the token's signature does not verify")]
    BadSignature,
    /// A claim or header is missing or unacceptable.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The issuer's keys could not be fetched or parsed.
    #[error("could not load the issuer's signing keys: {0}")]
    Jwks(String),
}

/// Verifies identity providers' tokens. Cheap to clone; clones share the key caches.
#[derive(Clone)]
pub struct Oidc {
    inner: Arc<Inner>,
}

struct Inner {
    issuers: Vec<IssuerState>,
    /// Present when some issuer publishes its keys at a URL.
    http: Option<reqwest::Client>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field(
                "issuers",
                &self
                    .inner
                    .issuers
                    .iter()
                    .map(|i| i.config.issuer.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Oidc {
    /// Checks the configuration and reads the JWKS files. Keys at URLs are fetched on first use.
    pub fn new(issuers: &[OidcIssuer]) -> Result<Self, OidcError> {
        let mut states = Vec::with_capacity(issuers.len());
        for (index, config) in issuers.iter().enumerate() {
            let context = format!("auth.oidc[{index}] (issuer {:?})", config.issuer);
            let id = IssuerId::parse(&config.id).map_err(|e| {
                OidcError::Config(format!(
                    "{context}: `id` {e}; it names the issuer in subjects (`oidc:<id>:<sub>`)"
                ))
            })?;
            if states.iter().any(|s: &IssuerState| s.id == id) {
                return Err(OidcError::Config(format!(
                    "{context}: the id {id:?} is used by another issuer"
                )));
            }
            if config.issuer.trim().is_empty() {
                return Err(OidcError::Config(format!("{context}: `issuer` is empty")));
            }
            if config.audience.trim().is_empty() {
                return Err(OidcError::Config(format!("{context}: `audience` is empty")));
            }
            if config.leeway_secs > MAX_LEEWAY_SECS {
                return Err(OidcError::Config(format!(
                    "{context}: `leeway_secs` is {}, at most {MAX_LEEWAY_SECS} is allowed",
                    config.leeway_secs
                )));
            }
            if states
                .iter()
                .any(|s: &IssuerState| s.config.issuer == config.issuer)
            {
                return Err(OidcError::Config(format!(
                    "{context}: the issuer is configured twice"
                )));
            }
            let (source, keys) = match (&config.jwks_url, &config.jwks_file) {
                (Some(_), Some(_)) => {
                    return Err(OidcError::Config(format!(
                        "{context}: set either `jwks_url` or `jwks_file`, not both"
                    )));
                }
                (None, None) => {
                    return Err(OidcError::Config(format!(
                        "{context}: set one of `jwks_url` or `jwks_file`"
                    )));
                }
                (Some(url), None) => (
                    KeySource::Url(parse_jwks_url(url, &context)?),
                    KeySet::empty(),
                ),
                (None, Some(path)) => {
                    let keys = read_jwks_file_sync(path)
                        .and_then(|bytes| parse_jwks(&bytes))
                        .map_err(|e| OidcError::Config(format!("{context}: `jwks_file`: {e}")))?;
                    (KeySource::File(path.clone()), KeySet::loaded(1, keys))
                }
            };
            states.push(IssuerState {
                id,
                rs256: validation(config, Algorithm::RS256),
                es256: validation(config, Algorithm::ES256),
                config: config.clone(),
                source,
                keys: RwLock::new(Arc::new(keys)),
                refresh: tokio::sync::Mutex::new(RefreshState::default()),
            });
        }
        let http = if states.iter().any(|s| matches!(s.source, KeySource::Url(_))) {
            Some(
                reqwest::Client::builder()
                    .timeout(FETCH_TIMEOUT)
                    .connect_timeout(FETCH_TIMEOUT)
                    // A redirect could send the fetch anywhere the provider's host points it,
                    // including inside the cluster: the configured URL is the only one used.
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(concat!("guildhall/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| {
                        OidcError::Config(format!(
                            "cannot build the JWKS HTTP client: {}",
                            chain(&e)
                        ))
                    })?,
            )
        } else {
            None
        };
        Ok(Self {
            inner: Arc::new(Inner {
                issuers: states,
                http,
            }),
        })
    }

    /// Whether any issuer is configured.
    pub fn is_enabled(&self) -> bool {
        !self.inner.issuers.is_empty()
    }

    /// A cheap syntactic check: three dot-separated base64url segments, the first two non-empty.
    ///
    /// The signature segment may be empty so that unsigned (`alg: none`) tokens reach
    /// [`Oidc::verify`] and are refused with a precise error.
    pub fn looks_like_jwt(token: &str) -> bool {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let base64url = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        !header.is_empty()
            && !payload.is_empty()
            && base64url(header)
            && base64url(payload)
            && base64url(signature)
    }

    /// Verifies `token` and returns whom it identifies.
    pub async fn verify(&self, token: &str) -> Result<Identity, OidcError> {
        if token.len() > MAX_TOKEN_LEN || !Self::looks_like_jwt(token) {
            return Err(OidcError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload)) = (parts.next(), parts.next()) else {
            return Err(OidcError::Malformed);
        };

        let header: RawHeader = decode_segment(header)?;
        let alg = match header.alg.as_str() {
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            other => return Err(OidcError::UnsupportedAlgorithm(printable(other))),
        };
        if header.crit.is_some() {
            return Err(OidcError::Invalid(
                "critical header parameters (`crit`) are not supported".into(),
            ));
        }

        let claims: UnverifiedClaims = decode_segment(payload)?;
        let iss = match claims.iss {
            Some(serde_json::Value::String(iss)) => iss,
            Some(_) => return Err(OidcError::Invalid("claim `iss` is not a string".into())),
            None => return Err(OidcError::Invalid("missing required claim `iss`".into())),
        };
        let issuer = self
            .inner
            .issuers
            .iter()
            .find(|i| i.config.issuer == iss)
            .ok_or(OidcError::UnknownIssuer)?;

        let key = issuer
            .key_for(alg, header.kid.as_deref(), self.inner.http.as_ref())
            .await?;
        let validation = match alg {
            Algorithm::ES256 => &issuer.es256,
            _ => &issuer.rs256,
        };
        let verified = jsonwebtoken::decode::<VerifiedClaims>(token, &key, validation)
            .map_err(|e| map_jwt_error(&e, alg))?;

        let subject = match verified.claims.sub {
            Some(serde_json::Value::String(sub)) => sub,
            Some(_) => return Err(OidcError::Invalid("claim `sub` is not a string".into())),
            None => return Err(OidcError::Invalid("missing required claim `sub`".into())),
        };
        if subject.is_empty() {
            return Err(OidcError::Invalid("claim `sub` is empty".into()));
        }
        if subject.len() > MAX_SUBJECT_LEN {
            return Err(OidcError::Invalid(format!(
                "claim `sub` is longer than {MAX_SUBJECT_LEN} bytes"
            )));
        }
        let namespaced = Subject::oidc(&issuer.id, &subject)
            .map_err(|_| OidcError::Invalid("claim `sub` holds control characters".into()))?;
        Ok(Identity {
            issuer: issuer.id.clone(),
            sub: subject,
            subject: namespaced,
        })
    }

    fn issuer(&self, id: &str) -> Option<&IssuerState> {
        self.inner.issuers.iter().find(|i| i.id.as_str() == id)
    }

    /// Whether an issuer with this id is configured.
    pub fn knows_issuer(&self, id: &str) -> bool {
        self.issuer(id).is_some()
    }

    /// Whether subjects of the issuer `id` may be bound to members of `tenant`.
    ///
    /// An issuer with an empty `tenants` list serves every tenant; an unknown issuer serves none.
    pub fn issuer_allows_tenant(&self, id: &str, tenant: &str) -> bool {
        self.issuer(id).is_some_and(|i| {
            i.config.tenants.is_empty() || i.config.tenants.iter().any(|t| t == tenant)
        })
    }

    /// Whether the issuer `id` is limited to some tenants. Such an issuer's subjects never
    /// hold a platform-wide role; an unknown issuer counts as restricted.
    pub fn issuer_is_restricted(&self, id: &str) -> bool {
        self.issuer(id).is_none_or(|i| !i.config.tenants.is_empty())
    }

    /// The ids of the issuers whose subjects may be bound in `tenant`.
    pub fn issuers_for_tenant(&self, tenant: &str) -> Vec<IssuerId> {
        self.inner
            .issuers
            .iter()
            .filter(|i| self.issuer_allows_tenant(i.id.as_str(), tenant))
            .map(|i| i.id.clone())
            .collect()
    }
}

fn wrong_key_type(alg: Algorithm) -> OidcError {
    OidcError::Invalid(format!(
        "the key named by `kid` cannot verify {alg:?} signatures"
    ))
}

fn validation(config: &OidcIssuer, alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = config.leeway_secs;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = true;
    validation.set_issuer(&[&config.issuer]);
    validation.set_audience(&[&config.audience]);
    validation
}

fn map_jwt_error(error: &jsonwebtoken::errors::Error, alg: Algorithm) -> OidcError {
    match error.kind() {
        ErrorKind::InvalidSignature => OidcError::BadSignature,
        ErrorKind::ExpiredSignature => OidcError::Expired,
        ErrorKind::ImmatureSignature => OidcError::NotYetValid,
        ErrorKind::InvalidAudience => OidcError::WrongAudience,
        ErrorKind::InvalidIssuer => OidcError::UnknownIssuer,
        ErrorKind::MissingRequiredClaim(claim) => {
            OidcError::Invalid(format!("missing required claim `{claim}`"))
        }
        ErrorKind::InvalidClaimFormat(claim) => {
            OidcError::Invalid(format!("claim `{claim}` is malformed"))
        }
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::UnsupportedAlgorithm => OidcError::UnsupportedAlgorithm(format!("{alg:?}")),
        ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidKeyFormat => {
            OidcError::Jwks(format!("the issuer's {alg:?} key is invalid"))
        }
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => OidcError::Malformed,
        // Deliberately not `error.to_string()`: it may quote parts of the token.
        _ => OidcError::Invalid("the token was rejected by the JWT verifier".into()),
    }
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct UnverifiedClaims {
    #[serde(default)]
    iss: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct VerifiedClaims {
    #[serde(default)]
    sub: Option<serde_json::Value>,
}

/// Decodes one base64url JSON segment of a token. Anything amiss means "not a JWT".
fn decode_segment<T: DeserializeOwned>(segment: &str) -> Result<T, OidcError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| OidcError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| OidcError::Malformed)
}

/// A token-supplied string made safe and short for an error message.
fn printable(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(32)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect();
    if s.chars().count() > 32 {
        out.push('…');
    }
    out
}

/// The error and its sources, joined, without the request URL reqwest likes to include.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}
