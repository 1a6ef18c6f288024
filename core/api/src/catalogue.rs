//! Publishing to the shared catalogue, shared by `POST /api/v1/plugins/{plugin}/versions`
//! and `guildhall plugins publish`.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use guildhall_domain::manifest::Manifest;
use guildhall_domain::{Digest, PluginName};
use guildhall_runtime::PrepareError;
use guildhall_store::{NewVersion, PublishError, Published};

use crate::AppState;
use crate::error::{ApiError, FieldError};

/// `[catalogue]` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogueConfig {
    /// Refuse uploads without a valid signature from a trusted key.
    pub require_signatures: bool,
    /// Trusted publisher keys: a name for each key and its ed25519 public key, base64.
    pub trusted_keys: BTreeMap<String, String>,
}

/// Parsed trusted keys.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    require: bool,
    keys: Vec<(String, ed25519_dalek::VerifyingKey)>,
}

impl TrustedKeys {
    /// Parses the configured keys; an invalid key is a configuration error naming it.
    pub fn from_config(config: &CatalogueConfig) -> Result<Self, String> {
        let mut keys = Vec::new();
        for (name, encoded) in &config.trusted_keys {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|e| format!("catalogue.trusted_keys.{name}: not base64: {e}"))?;
            let bytes: [u8; 32] = bytes.try_into().map_err(|_| {
                format!("catalogue.trusted_keys.{name}: an ed25519 public key is 32 bytes")
            })?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .map_err(|e| format!("catalogue.trusted_keys.{name}: {e}"))?;
            keys.push((name.clone(), key));
        }
        Ok(Self {
            require: config.require_signatures,
            keys,
        })
    }

    /// Checks a base64 signature over the digest text (`sha256:…`); returns the name of
    /// the key that verified it.
    fn verify(
        &self,
        digest: &Digest,
        signature: Option<&str>,
    ) -> Result<Option<(String, String)>, ApiError> {
        let Some(signature) = signature.map(str::trim).filter(|s| !s.is_empty()) else {
            if self.require {
                return Err(ApiError::validation(
                    "this catalogue requires a signature from a trusted publisher key",
                    vec![FieldError {
                        field: "signature".into(),
                        reason: "required".into(),
                    }],
                ));
            }
            return Ok(None);
        };
        let bad = |reason: &str| {
            ApiError::validation(
                format!("bad signature: {reason}"),
                vec![FieldError {
                    field: "signature".into(),
                    reason: reason.into(),
                }],
            )
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(signature)
            .map_err(|_| bad("not base64"))?;
        let sig = ed25519_dalek::Signature::from_slice(&bytes)
            .map_err(|_| bad("not a 64-byte ed25519 signature"))?;
        let message = digest.to_string();
        for (name, key) in &self.keys {
            if key.verify_strict(message.as_bytes(), &sig).is_ok() {
                return Ok(Some((signature.to_string(), name.clone())));
            }
        }
        Err(bad("no trusted publisher key verifies it"))
    }
}

/// Publishes one version: checks the manifest, the component and the signature, then
/// stores it atomically. `expected` is the plugin name from the URL, when there is one.
pub async fn publish(
    state: &AppState,
    expected: Option<&PluginName>,
    manifest_text: &str,
    bytes: Vec<u8>,
    signature: Option<&str>,
) -> Result<Published, ApiError> {
    let manifest = Manifest::from_toml(manifest_text).map_err(|e| {
        ApiError::validation(
            format!("invalid manifest: {e}"),
            vec![FieldError {
                field: format!("manifest.{}", e.field),
                reason: e.reason,
            }],
        )
    })?;
    if let Some(expected) = expected
        && *expected != manifest.name
    {
        return Err(ApiError::validation(
            format!(
                "the URL names plugin {expected} but the manifest names {}",
                manifest.name
            ),
            vec![FieldError {
                field: "manifest.name".into(),
                reason: format!("must be {expected}"),
            }],
        ));
    }
    let limit = state.runtime.config().max_component_bytes;
    if bytes.len() > limit {
        return Err(ApiError::from_status(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the component is {} bytes; the limit is {limit} bytes",
                bytes.len()
            ),
        ));
    }
    let bytes = Arc::new(bytes);
    let digest = state
        .runtime
        .check_component(&manifest, Arc::clone(&bytes))
        .await
        .map_err(prepare_error)?;
    let signature = state.trusted_keys.verify(&digest, signature)?;
    let published = state
        .store
        .catalogue()
        .publish(NewVersion {
            manifest: &manifest,
            digest,
            bytes: &bytes,
            signature,
        })
        .await
        .map_err(|e| match e {
            e @ PublishError::VersionConflict { .. } => ApiError::conflict(e.to_string()),
            e @ PublishError::PublisherMismatch { .. } => ApiError::conflict(e.to_string()),
            PublishError::Store(e) => ApiError::from(e),
        })?;
    Ok(published)
}

/// Maps a runtime refusal to the problem the publisher sees.
pub(crate) fn prepare_error(e: PrepareError) -> ApiError {
    use axum::http::StatusCode;
    match e {
        PrepareError::Manifest(errors) => ApiError::validation(
            "invalid manifest",
            errors
                .into_iter()
                .map(|e| FieldError {
                    field: format!("manifest.{}", e.field),
                    reason: e.reason,
                })
                .collect(),
        ),
        PrepareError::TooLarge { .. } => {
            ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
        }
        PrepareError::UndeclaredImports(ref imports) => {
            let imports = imports.clone();
            ApiError::validation(e.to_string(), Vec::new()).with_extension("imports", imports)
        }
        PrepareError::NotAComponent(_)
        | PrepareError::Compile(_)
        | PrepareError::CompileTimeout(_)
        | PrepareError::NotAService(_)
        | PrepareError::Link(_) => ApiError::validation(e.to_string(), Vec::new()),
        PrepareError::Load(_) | PrepareError::Engine(_) => ApiError::internal(e),
    }
}
