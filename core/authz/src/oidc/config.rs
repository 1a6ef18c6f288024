//! `[[auth.oidc]]`: one trusted issuer's settings, and the checks made on them at start-up.

use super::*;

/// One trusted OpenID Connect issuer (`[[auth.oidc]]`).
///
/// Everything after `leeway_secs` is about signing staff in to the console (the
/// authorization code flow with PKCE) and about multi-factor authentication; all of it is
/// optional, so a configuration written for bearer tokens only keeps working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcIssuer {
    /// A short name for the issuer (`[a-z0-9-]{2,32}`), used in its subjects'
    /// names: `oidc:<id>:<sub>`. Changing it orphans the issuer's member bindings.
    pub id: String,
    /// The `iss` claim tokens must carry, e.g. `https://login.example.gov.uk/`.
    pub issuer: String,
    /// The `aud` claim bearer tokens on the API must carry (Guildhall's API at that provider).
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
    /// Guildhall's client id at the provider for browser sign-in; the ID tokens of a sign-in
    /// must carry it in `aud`. Left out: `audience`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// A file holding the client secret (read at start-up; surrounding white space, such as
    /// a final newline, is ignored). Without a secret the client is public: PKCE only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
    /// The client secret written in the configuration itself; prefer `client_secret_file`.
    /// Never shown: `Debug` and serialisation (`guildhall config show`) print `***`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<ClientSecret>,
    /// The provider's name on the console's sign-in button. Left out: the issuer's `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Whether the console offers this issuer for sign-in. Left out: yes, when `issuer` is
    /// a URL its configuration can be discovered at (https, or http on loopback); `true`
    /// makes that a requirement, `false` offers the issuer for bearer tokens only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in: Option<bool>,
    /// Refuse this issuer's tokens (API bearer tokens and sign-in ID tokens alike) unless
    /// they show a second factor: see [`shows_second_factor`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_mfa: bool,
    /// `acr` values that count as multi-factor authentication at this provider (for example
    /// `http://schemas.openid.net/pape/policies/2007/06/multi-factor`). Only with
    /// `require_mfa`; a sign-in then asks for them (`acr_values`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mfa_acr_values: Vec<String>,
}

fn default_leeway() -> u64 {
    60
}

/// An OAuth client secret. `Debug`, `Display` and serialisation show `***`, never the value.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the token request only.
    pub(super) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(***)")
    }
}

impl std::fmt::Display for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for ClientSecret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

/// Largest accepted `leeway_secs`; more is a misconfiguration, not clock skew.
const MAX_LEEWAY_SECS: u64 = 3600;
/// Largest client secret file read.
const MAX_SECRET_FILE_BYTES: u64 = 8 * 1024;
/// Longest `display_name`, in characters.
const MAX_DISPLAY_NAME_CHARS: usize = 100;

/// `amr` values (RFC 8176) that are a second factor on their own, or say several were used.
pub const MFA_AMR_VALUES: &[&str] = &[
    "mfa", "mca", "otp", "hwk", "swk", "sms", "tel", "sc", "fpt", "face", "iris", "retina", "vbm",
];

/// Whether a token's `amr` and `acr` show a second factor: `amr` holds `mfa` or `mca`, or a
/// factor other than a password (one of [`MFA_AMR_VALUES`]), or `acr` is one of the issuer's
/// `mfa_acr_values`.
pub fn shows_second_factor(amr: &[String], acr: Option<&str>, mfa_acr_values: &[String]) -> bool {
    amr.iter().any(|m| MFA_AMR_VALUES.contains(&m.as_str()))
        || acr.is_some_and(|acr| mfa_acr_values.iter().any(|v| v == acr))
}

/// One issuer's settings, checked, with its secret read.
pub(super) struct Checked {
    pub(super) id: IssuerId,
    pub(super) source: KeySource,
    pub(super) keys: KeySet,
    pub(super) client_id: String,
    pub(super) secret: Option<ClientSecret>,
    pub(super) display_name: String,
    /// Where the provider's configuration is discovered, when the issuer is offered for
    /// sign-in.
    pub(super) discovery: Option<reqwest::Url>,
}

/// Checks one issuer's settings against those already checked (`earlier`).
pub(super) fn check(
    index: usize,
    config: &OidcIssuer,
    earlier: &[IssuerState],
) -> Result<Checked, OidcError> {
    let context = format!("auth.oidc[{index}] (issuer {:?})", config.issuer);
    let fail = |message: String| OidcError::Config(format!("{context}: {message}"));
    let id = IssuerId::parse(&config.id).map_err(|e| {
        fail(format!(
            "`id` {e}; it names the issuer in subjects (`oidc:<id>:<sub>`)"
        ))
    })?;
    if earlier.iter().any(|s| s.id == id) {
        return Err(fail(format!("the id {id:?} is used by another issuer")));
    }
    if config.issuer.trim().is_empty() {
        return Err(fail("`issuer` is empty".into()));
    }
    if config.audience.trim().is_empty() {
        return Err(fail("`audience` is empty".into()));
    }
    if config.leeway_secs > MAX_LEEWAY_SECS {
        return Err(fail(format!(
            "`leeway_secs` is {}, at most {MAX_LEEWAY_SECS} is allowed",
            config.leeway_secs
        )));
    }
    if earlier.iter().any(|s| s.config.issuer == config.issuer) {
        return Err(fail("the issuer is configured twice".into()));
    }
    let (source, keys) = match (&config.jwks_url, &config.jwks_file) {
        (Some(_), Some(_)) => {
            return Err(fail(
                "set either `jwks_url` or `jwks_file`, not both".into(),
            ));
        }
        (None, None) => return Err(fail("set one of `jwks_url` or `jwks_file`".into())),
        (Some(url), None) => (
            KeySource::Url(checked_url(url, "`jwks_url`").map_err(fail)?),
            KeySet::empty(),
        ),
        (None, Some(path)) => {
            let keys = read_jwks_file_sync(path)
                .and_then(|bytes| parse_jwks(&bytes))
                .map_err(|e| fail(format!("`jwks_file`: {e}")))?;
            (KeySource::File(path.clone()), KeySet::loaded(1, keys))
        }
    };

    let client_id = match &config.client_id {
        Some(client_id) if client_id.trim().is_empty() => {
            return Err(fail("`client_id` is empty".into()));
        }
        Some(client_id) if client_id.chars().any(char::is_control) => {
            return Err(fail("`client_id` holds control characters".into()));
        }
        Some(client_id) => client_id.clone(),
        None => config.audience.clone(),
    };
    let secret = match (&config.client_secret, &config.client_secret_file) {
        (Some(_), Some(_)) => {
            return Err(fail(
                "set either `client_secret` or `client_secret_file`, not both".into(),
            ));
        }
        (Some(secret), None) => {
            if secret.expose().trim().is_empty() {
                return Err(fail("`client_secret` is empty".into()));
            }
            Some(secret.clone())
        }
        (None, Some(path)) => Some(read_secret_file(path).map_err(fail)?),
        (None, None) => None,
    };
    let display_name = match &config.display_name {
        None => id.as_str().to_owned(),
        Some(name) => {
            let name = name.trim();
            if name.is_empty() {
                return Err(fail("`display_name` is empty".into()));
            }
            if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
                return Err(fail(format!(
                    "`display_name` is longer than {MAX_DISPLAY_NAME_CHARS} characters"
                )));
            }
            if name.chars().any(char::is_control) {
                return Err(fail("`display_name` holds control characters".into()));
            }
            name.to_owned()
        }
    };
    if !config.mfa_acr_values.is_empty() && !config.require_mfa {
        return Err(fail(
            "`mfa_acr_values` has no effect without `require_mfa = true`; set both, or neither"
                .into(),
        ));
    }
    for value in &config.mfa_acr_values {
        if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(fail(format!(
                "`mfa_acr_values` holds {:?}: each value must be non-empty, without spaces or control characters",
                printable(value)
            )));
        }
    }
    let discovery = match config.sign_in {
        Some(false) => None,
        Some(true) => Some(discovery_url(&config.issuer).map_err(|e| {
            fail(format!(
                "`sign_in = true` needs the configuration discovered at the issuer's URL, but {e}"
            ))
        })?),
        None => match discovery_url(&config.issuer) {
            Ok(url) => Some(url),
            Err(why) => {
                tracing::warn!(
                    issuer = %config.issuer,
                    %why,
                    "this OIDC issuer is not offered for console sign-in; set `sign_in = false` to say so"
                );
                None
            }
        },
    };
    Ok(Checked {
        id,
        source,
        keys,
        client_id,
        secret,
        display_name,
        discovery,
    })
}

/// Where an issuer publishes its configuration (OpenID Connect Discovery 1.0 §4): the issuer
/// without a final `/`, then `/.well-known/openid-configuration`.
fn discovery_url(issuer: &str) -> Result<reqwest::Url, String> {
    let parsed = checked_url(issuer, "`issuer`")?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!(
            "`issuer` {issuer:?} has a query or a fragment, which an issuer URL may not have"
        ));
    }
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    checked_url(&url, "the discovery URL")
}

fn read_secret_file(path: &Path) -> Result<ClientSecret, String> {
    let shown = path.display();
    let len = std::fs::metadata(path)
        .map_err(|e| format!("`client_secret_file` {shown}: {e}"))?
        .len();
    if len > MAX_SECRET_FILE_BYTES {
        return Err(format!(
            "`client_secret_file` {shown}: larger than {MAX_SECRET_FILE_BYTES} bytes"
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("`client_secret_file` {shown}: {e}"))?;
    // Never quote the content, not even part of it.
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("`client_secret_file` {shown}: not UTF-8 text"))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!("`client_secret_file` {shown}: the file is empty"));
    }
    if secret.chars().any(char::is_control) {
        return Err(format!(
            "`client_secret_file` {shown}: the secret holds control characters (one line expected)"
        ));
    }
    Ok(ClientSecret::new(secret))
}
