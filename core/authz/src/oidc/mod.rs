//! OpenID Connect: verifying councils' identity providers' JWTs, and signing staff in.
//!
//! [`Oidc`] holds the configured issuers and a cache of each issuer's signing keys (JWKS).
//! [`Oidc::verify`] accepts a bearer token signed with RS256 or ES256 by one of those issuers
//! and returns the caller's [`Identity`] (issuer and subject).
//!
//! [`Oidc::begin_sign_in`] and [`Oidc::finish_sign_in`] are the two halves of a browser
//! sign-in (OpenID Connect Core 1.0 §3.1, the authorization code flow, with PKCE S256 from
//! RFC 7636); the ID token it ends with is checked by the same code as a bearer token, with
//! the client id as its audience and the sign-in's nonce (`sign_in.rs`).
//!
//! An issuer with `require_mfa` has both kinds of token refused unless they show a second
//! factor ([`shows_second_factor`]).
//!
//! Keys published at a URL are fetched lazily on first use and again when they are more than an
//! hour old; keys in a file are read at start-up. A token naming a key we do not know triggers one
//! refresh (a fetch, or a re-read of the file), at most once every ten seconds per issuer, so a
//! stream of forged tokens cannot make us hammer the identity provider. A provider's
//! configuration (its discovery document) is fetched on the first sign-in and kept an hour.

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

mod config;
mod http;
mod jwks;
mod sign_in;
use http::*;
use jwks::*;
use sign_in::*;

pub use config::{ClientSecret, MFA_AMR_VALUES, OidcIssuer, shows_second_factor};
pub use sign_in::{SignInIssuer, SignInRequest};

/// A token longer than this is rejected as malformed without further parsing.
const MAX_TOKEN_LEN: usize = 64 * 1024;
/// Largest JWKS document we read, from a URL or a file.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// URL keys (and discovered endpoints) older than this are fetched again before use.
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
    /// How the user authenticated (`amr`, RFC 8176), as the provider says; empty when the
    /// token does not say.
    pub amr: Vec<String>,
    /// The authentication context class the provider says it met (`acr`), if any.
    pub acr: Option<String>,
}

/// Why configuration was refused, a token was rejected or a sign-in failed.
///
/// Messages never contain a token, any of its claims, an authorization code, a PKCE verifier
/// or a client secret.
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
    /// The token's `iss` is not a configured issuer (or, for a sign-in, not the issuer the
    /// sign-in went to).
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
    /// The issuer requires multi-factor authentication and the token shows none.
    #[error(
        "the identity provider did not confirm a second factor; this issuer requires multi-factor authentication"
    )]
    MfaRequired,
    /// The ID token's `nonce` is not the one this sign-in sent: it belongs to another
    /// sign-in, or was replayed.
    #[error("the ID token does not belong to this sign-in (nonce mismatch)")]
    NonceMismatch,
    /// No issuer with this id is offered for sign-in.
    #[error("the issuer {0:?} is not offered for sign-in")]
    NotForSignIn(String),
    /// What the caller passed to begin or finish a sign-in is unusable.
    #[error("invalid sign-in request: {0}")]
    InvalidRequest(String),
    /// The provider's configuration (discovery document) could not be fetched or is unusable.
    #[error("could not load the identity provider's configuration: {0}")]
    Discovery(String),
    /// The token endpoint could not be reached or answered something unusable.
    #[error("the identity provider's token endpoint failed: {0}")]
    TokenEndpoint(String),
    /// The token endpoint refused the code (an OAuth error response, RFC 6749 §5.2).
    #[error("the identity provider refused the sign-in: {0}")]
    SignInRefused(String),
}

/// Verifies identity providers' tokens and signs users in. Cheap to clone; clones share the
/// caches.
#[derive(Clone)]
pub struct Oidc {
    inner: Arc<Inner>,
}

struct Inner {
    issuers: Vec<IssuerState>,
    /// Present when some issuer publishes its keys at a URL or is offered for sign-in.
    http: Option<reqwest::Client>,
}

/// One configured issuer with its caches.
struct IssuerState {
    id: IssuerId,
    config: OidcIssuer,
    source: KeySource,
    /// How bearer tokens are checked: `aud` is `audience`.
    bearer: Validations,
    /// How sign-in ID tokens are checked: `aud` is the client id.
    id_token: Validations,
    /// `client_id`, or `audience` when that is not set.
    client_id: String,
    secret: Option<ClientSecret>,
    display_name: String,
    /// Where the provider's configuration is; `None` when not offered for sign-in.
    discovery_url: Option<reqwest::Url>,
    /// The endpoints discovered there.
    discovery: tokio::sync::Mutex<DiscoveryState>,
    /// The current keys; replaced wholesale on refresh. Never held across an `.await`.
    keys: RwLock<Arc<KeySet>>,
    /// Serialises refreshes and remembers when they happened.
    refresh: tokio::sync::Mutex<RefreshState>,
}

/// The checks of the JWT library for one kind of token, per algorithm.
struct Validations {
    rs256: Validation,
    es256: Validation,
}

impl Validations {
    fn new(config: &OidcIssuer, audience: &str) -> Self {
        Self {
            rs256: validation(config, audience, Algorithm::RS256),
            es256: validation(config, audience, Algorithm::ES256),
        }
    }

    fn for_alg(&self, alg: Algorithm) -> &Validation {
        match alg {
            Algorithm::ES256 => &self.es256,
            _ => &self.rs256,
        }
    }
}

/// What a token is checked as.
#[derive(Clone, Copy)]
enum Purpose<'a> {
    /// A bearer token on the API, from any configured issuer: `aud` names `audience`.
    Bearer,
    /// The ID token of a sign-in at `issuer`: `aud` names the client id, `nonce` is the
    /// sign-in's.
    IdToken {
        issuer: &'a IssuerState,
        nonce: &'a str,
    },
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
    /// Checks the configuration and reads the JWKS files and client secret files. Keys at
    /// URLs are fetched on first use, providers' configurations on the first sign-in.
    pub fn new(issuers: &[OidcIssuer]) -> Result<Self, OidcError> {
        let mut states: Vec<IssuerState> = Vec::with_capacity(issuers.len());
        for (index, config) in issuers.iter().enumerate() {
            let checked = config::check(index, config, &states)?;
            states.push(IssuerState {
                id: checked.id,
                bearer: Validations::new(config, &config.audience),
                id_token: Validations::new(config, &checked.client_id),
                client_id: checked.client_id,
                secret: checked.secret,
                display_name: checked.display_name,
                discovery_url: checked.discovery,
                discovery: tokio::sync::Mutex::new(DiscoveryState::default()),
                config: config.clone(),
                source: checked.source,
                keys: RwLock::new(Arc::new(checked.keys)),
                refresh: tokio::sync::Mutex::new(RefreshState::default()),
            });
        }
        let needs_http = states
            .iter()
            .any(|s| matches!(s.source, KeySource::Url(_)) || s.discovery_url.is_some());
        let http = if needs_http {
            Some(http::client()?)
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

    /// Verifies a bearer token and returns whom it identifies.
    pub async fn verify(&self, token: &str) -> Result<Identity, OidcError> {
        self.check(token, Purpose::Bearer).await
    }

    /// The one verification of a token, bearer or ID token: syntax, algorithm, issuer,
    /// signature against the issuer's keys, `exp` and `nbf` with leeway, audience, subject,
    /// the nonce of an ID token, and the issuer's MFA rule.
    async fn check(&self, token: &str, purpose: Purpose<'_>) -> Result<Identity, OidcError> {
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
        let issuer = match purpose {
            Purpose::Bearer => self
                .inner
                .issuers
                .iter()
                .find(|i| i.config.issuer == iss)
                .ok_or(OidcError::UnknownIssuer)?,
            // An ID token must come from the provider the user was sent to.
            Purpose::IdToken { issuer, .. } if issuer.config.issuer == iss => issuer,
            Purpose::IdToken { .. } => return Err(OidcError::UnknownIssuer),
        };

        let key = issuer
            .key_for(alg, header.kid.as_deref(), self.inner.http.as_ref())
            .await?;
        let validation = match purpose {
            Purpose::Bearer => issuer.bearer.for_alg(alg),
            Purpose::IdToken { .. } => issuer.id_token.for_alg(alg),
        };
        let verified = jsonwebtoken::decode::<VerifiedClaims>(token, &key, validation)
            .map_err(|e| map_jwt_error(&e, alg))?
            .claims;

        if let Purpose::IdToken { nonce, .. } = purpose {
            check_id_token(&verified, &issuer.client_id, nonce)?;
        }
        let subject = match verified.sub {
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

        let require_mfa = issuer.config.require_mfa;
        let amr = match verified.amr {
            None => Vec::new(),
            Some(serde_json::Value::Array(values)) if values.iter().all(|v| v.is_string()) => {
                values
                    .into_iter()
                    .filter_map(|v| match v {
                        serde_json::Value::String(s) => Some(s),
                        _ => None,
                    })
                    .collect()
            }
            Some(_) if require_mfa => {
                return Err(OidcError::Invalid(
                    "claim `amr` is not an array of strings".into(),
                ));
            }
            // Not asked for: a provider's odd `amr` does not refuse its tokens.
            Some(_) => Vec::new(),
        };
        let acr = match verified.acr {
            Some(serde_json::Value::String(acr)) => Some(acr),
            _ => None,
        };
        if require_mfa && !shows_second_factor(&amr, acr.as_deref(), &issuer.config.mfa_acr_values)
        {
            return Err(OidcError::MfaRequired);
        }

        let namespaced = Subject::oidc(&issuer.id, &subject)
            .map_err(|_| OidcError::Invalid("claim `sub` holds control characters".into()))?;
        Ok(Identity {
            issuer: issuer.id.clone(),
            sub: subject,
            subject: namespaced,
            amr,
            acr,
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

/// What only an ID token must satisfy (OpenID Connect Core 1.0 §3.1.3.7): the nonce of this
/// sign-in, and an authorized party, when named, that is us.
fn check_id_token(claims: &VerifiedClaims, client_id: &str, nonce: &str) -> Result<(), OidcError> {
    use subtle::ConstantTimeEq as _;
    match &claims.nonce {
        Some(serde_json::Value::String(got)) => {
            if !bool::from(got.as_bytes().ct_eq(nonce.as_bytes())) {
                return Err(OidcError::NonceMismatch);
            }
        }
        Some(_) => return Err(OidcError::Invalid("claim `nonce` is not a string".into())),
        None => return Err(OidcError::Invalid("missing required claim `nonce`".into())),
    }
    match &claims.azp {
        None => Ok(()),
        Some(serde_json::Value::String(azp)) if azp == client_id => Ok(()),
        Some(_) => Err(OidcError::Invalid(
            "claim `azp` names another client".into(),
        )),
    }
}

fn wrong_key_type(alg: Algorithm) -> OidcError {
    OidcError::Invalid(format!(
        "the key named by `kid` cannot verify {alg:?} signatures"
    ))
}

fn validation(config: &OidcIssuer, audience: &str, alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = config.leeway_secs;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = true;
    validation.set_issuer(&[&config.issuer]);
    validation.set_audience(&[audience]);
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
    #[serde(default)]
    nonce: Option<serde_json::Value>,
    #[serde(default)]
    azp: Option<serde_json::Value>,
    #[serde(default)]
    amr: Option<serde_json::Value>,
    #[serde(default)]
    acr: Option<serde_json::Value>,
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
