//! Signing staff in with their council's identity provider: the authorization code flow of
//! OpenID Connect Core 1.0 §3.1 with PKCE (RFC 7636, S256).
//!
//! [`Oidc::begin_sign_in`] discovers the provider's endpoints (once an hour at most, at
//! `<issuer>/.well-known/openid-configuration`, whose `issuer` must be the configured one) and
//! returns the authorization URL to send the browser to, with fresh `state`, `nonce` and PKCE
//! verifier. The caller keeps those three server-side and checks `state` on the way back.
//! [`Oidc::finish_sign_in`] redeems the code at the token endpoint (authenticating with the
//! client secret, when there is one) and checks the ID token like a bearer token, but with
//! the client id as audience and the sign-in's nonce.
//!
//! Every URL used (discovery, authorization and token endpoints, the redirect URI) is https,
//! or plain http on loopback; redirects are never followed; responses are read within bounds.

use super::*;

use sha2::Digest as _;

/// Largest discovery document read.
const MAX_DISCOVERY_BYTES: usize = 256 * 1024;
/// Largest token endpoint response read (an ID token is at most [`MAX_TOKEN_LEN`]).
const MAX_TOKEN_RESPONSE_BYTES: usize = 256 * 1024;
/// Longest authorization code accepted from the browser.
const MAX_CODE_LEN: usize = 4096;
/// Random bytes in each `state`, `nonce` and PKCE verifier.
const RANDOM_BYTES: usize = 32;
/// Longest provider error text quoted in a message.
const MAX_QUOTED: usize = 300;

/// An issuer the console offers for sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInIssuer {
    /// The issuer's configured id, which the console passes back to begin a sign-in.
    pub id: IssuerId,
    /// The name on its sign-in button: `display_name`, or the id.
    pub display_name: String,
}

/// A sign-in begun: where to send the browser, and what to keep until it comes back.
///
/// `state`, `nonce` and `verifier` are each 32 random bytes, base64url. Keep them
/// server-side (never in a cookie the browser can read or change): compare the `state` of
/// the redirect with `state`, then pass `verifier` and `nonce` to [`Oidc::finish_sign_in`].
#[derive(Clone, PartialEq, Eq)]
pub struct SignInRequest {
    /// The authorization URL: the provider's `authorization_endpoint` with `response_type=code`,
    /// `client_id`, `redirect_uri`, `scope=openid`, `state`, `nonce`, `code_challenge` and
    /// `code_challenge_method=S256` (and `acr_values` when the issuer requires MFA and names
    /// the `acr` values that show it).
    pub url: String,
    /// The OAuth `state`, to compare with the one the browser brings back.
    pub state: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier; only its S256 challenge is in `url`.
    pub verifier: String,
}

impl std::fmt::Debug for SignInRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInRequest")
            .field("url", &self.url)
            .field("state", &self.state)
            .field("nonce", &self.nonce)
            .field("verifier", &"***")
            .finish()
    }
}

/// A provider's endpoints, from its discovery document.
pub(super) struct Endpoints {
    authorization: reqwest::Url,
    token: reqwest::Url,
}

/// What discovery found, and when it last failed.
#[derive(Default)]
pub(super) struct DiscoveryState {
    endpoints: Option<(Instant, Arc<Endpoints>)>,
    last_failure: Option<(Instant, String)>,
}

impl IssuerState {
    /// The provider's endpoints: discovered on first use and again when an hour old; a
    /// failure is not retried for ten seconds, and older endpoints are used meanwhile.
    async fn endpoints(&self, http: Option<&reqwest::Client>) -> Result<Arc<Endpoints>, OidcError> {
        let Some(url) = &self.discovery_url else {
            return Err(OidcError::NotForSignIn(self.id.as_str().to_owned()));
        };
        let mut state = self.discovery.lock().await;
        let now = Instant::now();
        if let Some((at, endpoints)) = &state.endpoints
            && now.saturating_duration_since(*at) < MAX_KEY_AGE
        {
            return Ok(endpoints.clone());
        }
        let stale = state.endpoints.as_ref().map(|(_, e)| e.clone());
        if let Some((at, error)) = &state.last_failure
            && now.saturating_duration_since(*at) < MIN_REFRESH_INTERVAL
        {
            return stale.ok_or_else(|| OidcError::Discovery(error.clone()));
        }
        let result = match http {
            Some(client) => fetch(
                client,
                url,
                "discovery document",
                "application/json",
                MAX_DISCOVERY_BYTES,
            )
            .await
            .and_then(|bytes| parse_discovery(&bytes, &self.config.issuer)),
            None => Err("no HTTP client".to_owned()),
        };
        match result {
            Ok(endpoints) => {
                let endpoints = Arc::new(endpoints);
                state.endpoints = Some((now, endpoints.clone()));
                state.last_failure = None;
                tracing::debug!(issuer = %self.config.issuer, "discovered the OIDC provider's endpoints");
                Ok(endpoints)
            }
            Err(error) => {
                tracing::warn!(issuer = %self.config.issuer, %error, "could not discover the OIDC provider's endpoints");
                state.last_failure = Some((now, error.clone()));
                stale.ok_or(OidcError::Discovery(error))
            }
        }
    }
}

/// Reads a discovery document (OpenID Connect Discovery 1.0 §3): it must name the configured
/// issuer exactly (§4.3), and its endpoints must pass the same URL rule as configured ones.
fn parse_discovery(bytes: &[u8], issuer: &str) -> Result<Endpoints, String> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(default)]
        issuer: Option<serde_json::Value>,
        #[serde(default)]
        authorization_endpoint: Option<serde_json::Value>,
        #[serde(default)]
        token_endpoint: Option<serde_json::Value>,
        #[serde(default)]
        code_challenge_methods_supported: Option<serde_json::Value>,
    }
    let raw: Raw = serde_json::from_slice(bytes)
        .map_err(|e| format!("not an OpenID Provider configuration document: {e}"))?;
    let string = |value: Option<serde_json::Value>, name: &str| match value {
        Some(serde_json::Value::String(s)) => Ok(s),
        Some(_) => Err(format!("`{name}` is not a string")),
        None => Err(format!("the document has no `{name}`")),
    };
    let named = string(raw.issuer, "issuer")?;
    if named != issuer {
        return Err(format!(
            "the document names the issuer {:?}, not the configured {issuer:?}",
            clip(&named)
        ));
    }
    let authorization = checked_url(
        &string(raw.authorization_endpoint, "authorization_endpoint")?,
        "`authorization_endpoint`",
    )?;
    if authorization.fragment().is_some() {
        return Err("`authorization_endpoint` has a fragment".into());
    }
    let token = checked_url(
        &string(raw.token_endpoint, "token_endpoint")?,
        "`token_endpoint`",
    )?;
    if let Some(methods) = raw.code_challenge_methods_supported {
        let s256 = methods
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m.as_str() == Some("S256")));
        if !s256 {
            return Err(
                "the provider does not offer PKCE with S256 (`code_challenge_methods_supported`)"
                    .into(),
            );
        }
    }
    Ok(Endpoints {
        authorization,
        token,
    })
}

impl Oidc {
    /// The issuers offered for sign-in, in configuration order.
    pub fn sign_in_issuers(&self) -> Vec<SignInIssuer> {
        self.inner
            .issuers
            .iter()
            .filter(|i| i.discovery_url.is_some())
            .map(|i| SignInIssuer {
                id: i.id.clone(),
                display_name: i.display_name.clone(),
            })
            .collect()
    }

    fn sign_in_issuer(&self, id: &str) -> Result<&IssuerState, OidcError> {
        self.issuer(id)
            .filter(|i| i.discovery_url.is_some())
            .ok_or_else(|| OidcError::NotForSignIn(printable(id)))
    }

    /// Begins a sign-in at the issuer `issuer_id`: the URL to redirect the browser to, and
    /// the `state`, `nonce` and PKCE verifier to keep until it returns to `redirect_uri`
    /// (https, or http on loopback; registered with the provider).
    ///
    /// Fetches the provider's discovery document the first time (and hourly).
    pub async fn begin_sign_in(
        &self,
        issuer_id: &str,
        redirect_uri: &str,
    ) -> Result<SignInRequest, OidcError> {
        let issuer = self.sign_in_issuer(issuer_id)?;
        check_redirect_uri(redirect_uri)?;
        let endpoints = issuer.endpoints(self.inner.http.as_ref()).await?;
        let state = random_value();
        let nonce = random_value();
        let verifier = random_value();
        let mut url = endpoints.authorization.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &issuer.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("scope", "openid")
                .append_pair("state", &state)
                .append_pair("nonce", &nonce)
                .append_pair("code_challenge", &code_challenge(&verifier))
                .append_pair("code_challenge_method", "S256");
            if issuer.config.require_mfa && !issuer.config.mfa_acr_values.is_empty() {
                // Ask for what will be required (OpenID Connect Core 1.0 §3.1.2.1).
                query.append_pair("acr_values", &issuer.config.mfa_acr_values.join(" "));
            }
        }
        Ok(SignInRequest {
            url: url.into(),
            state,
            nonce,
            verifier,
        })
    }

    /// Finishes a sign-in: redeems `code` at the issuer's token endpoint with the PKCE
    /// `verifier` and the same `redirect_uri`, then checks the ID token exactly as
    /// [`Oidc::verify`] checks a bearer token (signature, issuer, `exp` and `nbf`, the MFA
    /// rule), but with the client id as audience and `nonce` required to be the one sent.
    ///
    /// The caller has already checked the redirect's `state` against the one it kept.
    pub async fn finish_sign_in(
        &self,
        issuer_id: &str,
        code: &str,
        verifier: &str,
        nonce: &str,
        redirect_uri: &str,
    ) -> Result<Identity, OidcError> {
        let issuer = self.sign_in_issuer(issuer_id)?;
        check_redirect_uri(redirect_uri)?;
        // Never quote the code or the verifier.
        if code.is_empty() || code.len() > MAX_CODE_LEN || code.chars().any(char::is_control) {
            return Err(OidcError::InvalidRequest(format!(
                "the authorization code must be 1 to {MAX_CODE_LEN} bytes of text"
            )));
        }
        if !(43..=128).contains(&verifier.len())
            || !verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        {
            return Err(OidcError::InvalidRequest(
                "the PKCE code verifier must be 43 to 128 characters of A-Z, a-z, 0-9, -, ., _ and ~"
                    .into(),
            ));
        }
        if nonce.is_empty() {
            return Err(OidcError::InvalidRequest(
                "the expected nonce is empty".into(),
            ));
        }
        let endpoints = issuer.endpoints(self.inner.http.as_ref()).await?;
        let client = self
            .inner
            .http
            .as_ref()
            .ok_or_else(|| OidcError::TokenEndpoint("no HTTP client".into()))?;
        let id_token = redeem(
            client,
            issuer,
            &endpoints.token,
            code,
            verifier,
            redirect_uri,
        )
        .await?;
        self.check(&id_token, Purpose::IdToken { issuer, nonce })
            .await
    }
}

/// POSTs the code to the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.5) and returns the
/// ID token of the answer.
async fn redeem(
    client: &reqwest::Client,
    issuer: &IssuerState,
    endpoint: &reqwest::Url,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
) -> Result<String, OidcError> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ];
    let mut request = client
        .post(endpoint.clone())
        .header(reqwest::header::ACCEPT, "application/json");
    match &issuer.secret {
        // client_secret_basic (RFC 6749 §2.3.1): both parts form-urlencoded first.
        Some(secret) => {
            let credentials = format!(
                "{}:{}",
                form_urlencode(&issuer.client_id),
                form_urlencode(secret.expose())
            );
            let mut value = reqwest::header::HeaderValue::try_from(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(credentials)
            ))
            .map_err(|_| OidcError::TokenEndpoint("cannot build the client credentials".into()))?;
            value.set_sensitive(true);
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        // A public client names itself and proves the sign-in with PKCE alone.
        None => form.push(("client_id", &issuer.client_id)),
    }
    let failed = |e: String| OidcError::TokenEndpoint(format!("POST {endpoint}: {e}"));
    let response = request
        .form(&form)
        .send()
        .await
        .map_err(|e| failed(chain(&e.without_url())))?;
    let status = response.status();
    if status.is_redirection() {
        return Err(failed(format!("HTTP {status}; redirects are not followed")));
    }
    let body = read_bounded(response, MAX_TOKEN_RESPONSE_BYTES, "token response")
        .await
        .map_err(failed)?;
    let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    if !status.is_success() {
        // An OAuth error response (RFC 6749 §5.2): `error`, perhaps `error_description`.
        let error = json
            .as_ref()
            .and_then(|j| j.get("error"))
            .and_then(|e| e.as_str());
        let Some(error) = error else {
            return Err(failed(format!("HTTP {status}")));
        };
        let hide = [
            code,
            verifier,
            issuer.secret.as_ref().map_or("", |s| s.expose()),
        ];
        let mut message = quoted(error, &hide);
        if let Some(description) = json
            .as_ref()
            .and_then(|j| j.get("error_description"))
            .and_then(|d| d.as_str())
        {
            message.push_str(": ");
            message.push_str(&quoted(description, &hide));
        }
        return Err(OidcError::SignInRefused(format!(
            "{message} (HTTP {status})"
        )));
    }
    match json.as_ref().map(|j| j.get("id_token")) {
        None => Err(failed("the token response is not a JSON object".into())),
        Some(None) => Err(failed(
            "the token response has no `id_token`; the client must be allowed the `openid` scope"
                .into(),
        )),
        Some(Some(serde_json::Value::String(token))) => Ok(token.clone()),
        Some(Some(_)) => Err(failed("`id_token` is not a string".into())),
    }
}

/// The redirect URI rule: https, or plain http on loopback, and no fragment (RFC 6749 §3.1.2).
fn check_redirect_uri(redirect_uri: &str) -> Result<(), OidcError> {
    let url = checked_url(redirect_uri, "`redirect_uri`").map_err(OidcError::InvalidRequest)?;
    if url.fragment().is_some() {
        return Err(OidcError::InvalidRequest(
            "`redirect_uri` may not have a fragment".into(),
        ));
    }
    Ok(())
}

/// 32 fresh random bytes, base64url without padding (43 characters, a valid PKCE verifier).
fn random_value() -> String {
    let mut bytes = [0u8; RANDOM_BYTES];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The S256 code challenge of a verifier: base64url(SHA-256(verifier)) (RFC 7636 §4.2).
fn code_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(byte as char);
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// A provider's text made safe for a message: what must stay hidden cut out first, then
/// printable ASCII only, clipped.
fn quoted(text: &str, hide: &[&str]) -> String {
    let mut text = text.to_owned();
    for secret in hide.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret, "[redacted]");
    }
    clip(&text)
}

/// Printable ASCII (and spaces), at most [`MAX_QUOTED`] characters.
fn clip(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_QUOTED)
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect();
    if text.chars().count() > MAX_QUOTED {
        out.push('…');
    }
    out
}
