//! Issuers' signing keys (JWKS): where they come from (a URL or a file), the cache of each
//! issuer's current set, refreshes when a token names an unknown key (at most once every ten
//! seconds per issuer), and parsing a JWKS document into keys that verify RS256 or ES256.

use super::*;

pub(super) enum KeySource {
    Url(reqwest::Url),
    File(PathBuf),
}

/// A snapshot of an issuer's usable keys.
pub(super) struct KeySet {
    /// Bumped on every successful load, so waiters can tell someone else refreshed.
    pub(super) generation: u64,
    /// When the keys were loaded; `None` until the first successful load.
    pub(super) loaded_at: Option<Instant>,
    pub(super) keys: Vec<VerifyingKey>,
}

impl KeySet {
    pub(super) fn empty() -> Self {
        Self {
            generation: 0,
            loaded_at: None,
            keys: Vec::new(),
        }
    }

    pub(super) fn loaded(generation: u64, keys: Vec<VerifyingKey>) -> Self {
        Self {
            generation,
            loaded_at: Some(Instant::now()),
            keys,
        }
    }

    /// The key for a token with this `alg` and `kid`, if there is exactly one candidate.
    pub(super) fn select(&self, alg: Algorithm, kid: Option<&str>) -> Selected<'_> {
        match kid {
            Some(kid) => {
                let mut named = self
                    .keys
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .peekable();
                if named.peek().is_none() {
                    return Selected::None;
                }
                match named.find(|k| k.alg == alg) {
                    Some(key) => Selected::Key(&key.key),
                    None => Selected::WrongType,
                }
            }
            None => {
                let mut matching = self.keys.iter().filter(|k| k.alg == alg);
                match (matching.next(), matching.next()) {
                    (Some(key), None) => Selected::Key(&key.key),
                    _ => Selected::None,
                }
            }
        }
    }
}

pub(super) enum Selected<'a> {
    Key(&'a DecodingKey),
    /// The `kid` names a key, but not one for the token's algorithm.
    WrongType,
    None,
}

/// A usable signing key from a JWKS.
pub(super) struct VerifyingKey {
    pub(super) kid: Option<String>,
    pub(super) alg: Algorithm,
    pub(super) key: DecodingKey,
}

#[derive(Default)]
pub(super) struct RefreshState {
    /// Last refresh caused by an unknown key.
    pub(super) last_miss_refresh: Option<Instant>,
    /// Last failed load, and what went wrong.
    pub(super) last_failure: Option<(Instant, String)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Reason {
    /// Keys were never loaded, or are older than [`MAX_KEY_AGE`].
    Load,
    /// A token named a key we do not have.
    UnknownKey,
}

impl IssuerState {
    pub(super) fn current_keys(&self) -> Arc<KeySet> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(super) fn needs_load(&self, keys: &KeySet) -> bool {
        match self.source {
            KeySource::Url(_) => keys.loaded_at.is_none_or(|at| at.elapsed() >= MAX_KEY_AGE),
            KeySource::File(_) => false,
        }
    }

    pub(super) async fn key_for(
        &self,
        alg: Algorithm,
        kid: Option<&str>,
        http: Option<&reqwest::Client>,
    ) -> Result<DecodingKey, OidcError> {
        let mut keys = self.current_keys();
        if self.needs_load(&keys) {
            keys = self.refresh(keys.generation, Reason::Load, http).await?;
        }
        match keys.select(alg, kid) {
            Selected::Key(key) => return Ok(key.clone()),
            Selected::WrongType => return Err(wrong_key_type(alg)),
            Selected::None => {}
        }
        let keys = self
            .refresh(keys.generation, Reason::UnknownKey, http)
            .await?;
        match keys.select(alg, kid) {
            Selected::Key(key) => Ok(key.clone()),
            Selected::WrongType => Err(wrong_key_type(alg)),
            Selected::None => Err(OidcError::UnknownKey),
        }
    }

    /// Loads the keys again unless someone just did, or the rate limit forbids it; returns the
    /// keys to use. `seen` is the generation the caller found wanting.
    pub(super) async fn refresh(
        &self,
        seen: u64,
        reason: Reason,
        http: Option<&reqwest::Client>,
    ) -> Result<Arc<KeySet>, OidcError> {
        let mut state = self.refresh.lock().await;
        let current = self.current_keys();
        if current.generation != seen {
            // Another request refreshed while we waited for the lock.
            return Ok(current);
        }
        let now = Instant::now();
        let recent = |at: Instant| now.saturating_duration_since(at) < MIN_REFRESH_INTERVAL;
        if let Some((at, error)) = &state.last_failure
            && recent(*at)
        {
            // Do not retry a failing provider more than once per interval.
            return if current.loaded_at.is_some() {
                Ok(current)
            } else {
                Err(OidcError::Jwks(error.clone()))
            };
        }
        if reason == Reason::UnknownKey {
            if state.last_miss_refresh.is_some_and(recent) {
                return Ok(current);
            }
            state.last_miss_refresh = Some(now);
        }

        match self.load(http).await {
            Ok(keys) => {
                let fresh = Arc::new(KeySet::loaded(current.generation + 1, keys));
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = fresh.clone();
                state.last_failure = None;
                tracing::debug!(issuer = %self.config.issuer, keys = fresh.keys.len(), "loaded OIDC signing keys");
                Ok(fresh)
            }
            Err(error) => {
                tracing::warn!(issuer = %self.config.issuer, %error, "could not load OIDC signing keys");
                state.last_failure = Some((now, error.clone()));
                if reason == Reason::Load && current.loaded_at.is_some() {
                    // Stale keys are better than none.
                    Ok(current)
                } else {
                    Err(OidcError::Jwks(error))
                }
            }
        }
    }

    pub(super) async fn load(
        &self,
        http: Option<&reqwest::Client>,
    ) -> Result<Vec<VerifyingKey>, String> {
        let bytes = match &self.source {
            KeySource::Url(url) => {
                let client = http.ok_or_else(|| "no HTTP client".to_owned())?;
                fetch(
                    client,
                    url,
                    "JWKS",
                    "application/json, application/jwk-set+json",
                    MAX_JWKS_BYTES,
                )
                .await?
            }
            KeySource::File(path) => read_jwks_file(path).await?,
        };
        parse_jwks(&bytes)
    }
}

pub(super) fn read_jwks_file_sync(path: &Path) -> Result<Vec<u8>, String> {
    let len = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if len > MAX_JWKS_BYTES as u64 {
        return Err(format!(
            "{}: larger than {MAX_JWKS_BYTES} bytes",
            path.display()
        ));
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

pub(super) async fn read_jwks_file(path: &Path) -> Result<Vec<u8>, String> {
    let len = tokio::fs::metadata(path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if len > MAX_JWKS_BYTES as u64 {
        return Err(format!(
            "{}: larger than {MAX_JWKS_BYTES} bytes",
            path.display()
        ));
    }
    tokio::fs::read(path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// One JWKS entry, loosely: unknown members are ignored, odd ones make the entry unusable.
#[derive(Deserialize)]
pub(super) struct RawJwk {
    pub(super) kty: String,
    #[serde(default, rename = "use")]
    pub(super) use_: Option<String>,
    #[serde(default)]
    pub(super) key_ops: Option<Vec<String>>,
    #[serde(default)]
    pub(super) alg: Option<String>,
    #[serde(default)]
    pub(super) kid: Option<String>,
    #[serde(default)]
    pub(super) crv: Option<String>,
    #[serde(default)]
    pub(super) n: Option<String>,
    #[serde(default)]
    pub(super) e: Option<String>,
    #[serde(default)]
    pub(super) x: Option<String>,
    #[serde(default)]
    pub(super) y: Option<String>,
}

/// Parses a JWKS, keeping the RS256 and ES256 signature keys and skipping every other entry.
pub(super) fn parse_jwks(bytes: &[u8]) -> Result<Vec<VerifyingKey>, String> {
    #[derive(Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let set: RawSet =
        serde_json::from_slice(bytes).map_err(|e| format!("not a JWKS document: {e}"))?;
    let total = set.keys.len();
    let mut keys = Vec::new();
    for (index, entry) in set.keys.into_iter().enumerate() {
        match usable_key(entry) {
            Ok(key) => keys.push(key),
            Err(why) => tracing::debug!(index, why, "ignoring JWKS entry"),
        }
    }
    if keys.is_empty() {
        return Err(format!(
            "none of its {total} keys is a usable RS256 or ES256 signing key"
        ));
    }
    Ok(keys)
}

pub(super) fn usable_key(entry: serde_json::Value) -> Result<VerifyingKey, String> {
    let jwk: RawJwk = serde_json::from_value(entry).map_err(|e| e.to_string())?;
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        return Err("not a signature key (`use`)".into());
    }
    if let Some(ops) = &jwk.key_ops
        && !ops.iter().any(|op| op == "verify")
    {
        return Err("not a verification key (`key_ops`)".into());
    }
    let b64 = GeneralPurpose::new(
        &alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let component = |value: &Option<String>, name: &str| -> Result<(String, Vec<u8>), String> {
        let text = value
            .as_deref()
            .ok_or_else(|| format!("missing `{name}`"))?;
        let bytes = b64
            .decode(text)
            .map_err(|_| format!("`{name}` is not base64url"))?;
        Ok((text.trim_end_matches('=').to_owned(), bytes))
    };
    let (alg, key) = match jwk.kty.as_str() {
        "RSA" => {
            if jwk.alg.as_deref().is_some_and(|a| a != "RS256") {
                return Err("RSA key for an algorithm other than RS256".into());
            }
            let (n, n_bytes) = component(&jwk.n, "n")?;
            let (e, e_bytes) = component(&jwk.e, "e")?;
            let bits = significant_bits(&n_bytes);
            if !(2048..=4096).contains(&bits) {
                return Err(format!(
                    "RSA modulus of {bits} bits (2048 to 4096 accepted)"
                ));
            }
            if significant_bits(&e_bytes) < 2 || significant_bits(&e_bytes) > 64 {
                return Err("unacceptable RSA exponent".into());
            }
            let key = DecodingKey::from_rsa_components(&n, &e).map_err(|e| e.to_string())?;
            (Algorithm::RS256, key)
        }
        "EC" => {
            if jwk.crv.as_deref() != Some("P-256") {
                return Err("EC key on a curve other than P-256".into());
            }
            if jwk.alg.as_deref().is_some_and(|a| a != "ES256") {
                return Err("EC key for an algorithm other than ES256".into());
            }
            let (x, x_bytes) = component(&jwk.x, "x")?;
            let (y, y_bytes) = component(&jwk.y, "y")?;
            if x_bytes.len() != 32 || y_bytes.len() != 32 {
                return Err("P-256 coordinates must be 32 bytes".into());
            }
            let key = DecodingKey::from_ec_components(&x, &y).map_err(|e| e.to_string())?;
            // Building a verifier checks that the point is on the curve; an empty signature
            // then simply fails to verify.
            jsonwebtoken::crypto::verify("", b"", &key, Algorithm::ES256)
                .map_err(|_| "not a point on P-256".to_owned())?;
            (Algorithm::ES256, key)
        }
        other => return Err(format!("unsupported key type {:?}", printable(other))),
    };
    Ok(VerifyingKey {
        kid: jwk.kid,
        alg,
        key,
    })
}

/// Bit length of a big-endian unsigned integer.
pub(super) fn significant_bits(bytes: &[u8]) -> usize {
    match bytes.iter().position(|&b| b != 0) {
        Some(first) => (bytes.len() - first - 1) * 8 + (8 - bytes[first].leading_zeros() as usize),
        None => 0,
    }
}
