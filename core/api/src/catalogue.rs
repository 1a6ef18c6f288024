//! Publishing to the shared catalogue, shared by `POST /api/v1/plugins/{plugin}/versions`
//! and `guildhall plugins publish`, and the owner rules both edges share.
//!
//! **Architecture Invariant:** an upload is checked cheapest first and compiled last: size,
//! manifest, ownership, version, signature, then the compile. A refused upload leaves
//! nothing behind: no rows, no blob, no compiled artefact in memory or on disk (the
//! runtime keeps a compile only when [`guildhall_runtime::Runtime::admit`] is called after
//! the store has committed the version).
//!
//! **Architecture Invariant:** a signature counts only when a key registered to an owner of
//! the plugin verifies it over the canonical statement
//! ([`guildhall_domain::signing::statement`]) of this plugin's name, version, manifest and
//! component. The operator's `catalogue.trusted_keys` are the keys of the pseudo-subject
//! `cli:operator`, so they sign only for plugins `cli:operator` owns.

use std::collections::BTreeMap;
use std::sync::Arc;

use guildhall_authz::{Domain, Principal};
use guildhall_domain::manifest::Manifest;
use guildhall_domain::signing::{self, PublicKey};
use guildhall_domain::{Digest, PluginName};
use guildhall_runtime::PrepareError;
use guildhall_store::{
    Actor, CLI_OPERATOR, NewVersion, OwnerError, PublishError, Published, Signed,
};

use crate::AppState;
use crate::error::{ApiError, FieldError};

/// `[catalogue]` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogueConfig {
    /// Refuse versions not signed by a key registered to one of the plugin's owners.
    pub require_signatures: bool,
    /// The operator's own signing keys (a name for each and its ed25519 public key,
    /// base64). They are the keys of `cli:operator` and sign only for plugins it owns.
    pub trusted_keys: BTreeMap<String, String>,
}

/// The parsed `[catalogue]` settings.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    require: bool,
    operator_keys: Vec<(String, PublicKey)>,
}

/// A key that may verify a signature, and whose it is.
struct Candidate {
    subject: String,
    key: PublicKey,
}

impl TrustedKeys {
    /// Parses the configured keys; an invalid key is a configuration error naming it.
    pub fn from_config(config: &CatalogueConfig) -> Result<Self, String> {
        let mut operator_keys = Vec::new();
        for (name, encoded) in &config.trusted_keys {
            let key = PublicKey::parse(encoded)
                .map_err(|e| format!("catalogue.trusted_keys.{name}: {e}"))?;
            operator_keys.push((name.clone(), key));
        }
        Ok(Self {
            require: config.require_signatures,
            operator_keys,
        })
    }

    /// Whether every version must be signed.
    pub fn required(&self) -> bool {
        self.require
    }
}

fn signature_problem(detail: String, reason: &str) -> ApiError {
    ApiError::validation(
        detail,
        vec![FieldError {
            field: "signature".into(),
            reason: reason.into(),
        }],
    )
}

/// Who is acting on the catalogue through the API: the principal's subject, and whether
/// it may manage every plugin (the platform permission `catalogue:owners`, which operators
/// hold).
pub(crate) fn actor_of<'a>(state: &AppState, principal: &'a Principal) -> Actor<'a> {
    Actor {
        subject: principal.subject(),
        operator: state
            .authz
            .allowed(principal, Domain::Platform, "catalogue", "owners"),
    }
}

/// Maps an ownership refusal to the problem the caller sees.
pub(crate) fn owner_error(e: OwnerError) -> ApiError {
    use axum::http::StatusCode;
    match e {
        e @ OwnerError::NoPlugin(_) => ApiError::not_found(e.to_string()),
        e @ OwnerError::NotOwner { .. } => {
            ApiError::from_status(StatusCode::FORBIDDEN, e.to_string())
        }
        e @ OwnerError::LastOwner { .. } => ApiError::conflict(e.to_string()),
        OwnerError::Store(e) => ApiError::from(e),
    }
}

/// Checks an optional signature against the keys of `owners`; the verified signature, or
/// `None` when there is none and none is required.
async fn verify_signature(
    state: &AppState,
    manifest: &Manifest,
    manifest_sha256: &Digest,
    digest: &Digest,
    owners: &[String],
    signature: Option<&str>,
) -> Result<Option<Signed>, ApiError> {
    let Some(signature) = signature.map(str::trim).filter(|s| !s.is_empty()) else {
        if state.trusted_keys.require {
            return Err(signature_problem(
                format!(
                    "this catalogue requires every version to be signed by a key registered to an owner of plugin {}",
                    manifest.name
                ),
                "required",
            ));
        }
        return Ok(None);
    };
    signing::parse_signature(signature)
        .map_err(|e| signature_problem(format!("bad signature: {e}"), &e.to_string()))?;
    let mut candidates: Vec<Candidate> = Vec::new();
    for record in state.store.publisher_keys().of_subjects(owners).await? {
        // A stored key was checked when registered; one that no longer parses is skipped.
        if let Ok(key) = PublicKey::parse(&record.public_key) {
            candidates.push(Candidate {
                subject: record.subject,
                key,
            });
        }
    }
    if owners.iter().any(|o| o == CLI_OPERATOR) {
        candidates.extend(
            state
                .trusted_keys
                .operator_keys
                .iter()
                .map(|(_, key)| Candidate {
                    subject: CLI_OPERATOR.to_string(),
                    key: *key,
                }),
        );
    }
    let statement = signing::statement(&manifest.name, &manifest.version, manifest_sha256, digest);
    for candidate in candidates {
        if candidate.key.verify(&statement, signature).is_ok() {
            return Ok(Some(Signed {
                signature: signature.to_string(),
                fingerprint: candidate.key.fingerprint(),
                signer: candidate.subject,
            }));
        }
    }
    Err(signature_problem(
        format!(
            "bad signature: no key registered to an owner of plugin {} verifies it over this name, version ({}), manifest and component",
            manifest.name, manifest.version
        ),
        "no owner's key verifies it",
    ))
}

/// Publishes one version as `actor`: checks size, manifest, ownership, version and
/// signature, then compiles, then stores it atomically. `expected` is the plugin name from
/// the URL, when there is one.
pub async fn publish(
    state: &AppState,
    actor: Actor<'_>,
    expected: Option<&PluginName>,
    manifest_text: &str,
    bytes: Vec<u8>,
    signature: Option<&str>,
) -> Result<Published, ApiError> {
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
    manifest
        .validate(&state.runtime.config().caps())
        .map_err(|errors| prepare_error(PrepareError::Manifest(errors)))?;
    let digest = Digest::of(&bytes);
    let manifest_sha256 = Digest::of(manifest_text.as_bytes());
    let catalogue = state.store.catalogue();
    // Ownership: an existing name only for its owners (and operators); a new name will be
    // the actor's. The store checks again inside the transaction that publishes.
    let mut owners = state.store.owners().subjects(&manifest.name).await?;
    if owners.is_empty() {
        owners.push(actor.subject.to_string());
    } else if !actor.operator && !owners.iter().any(|o| o == actor.subject) {
        return Err(store_error(PublishError::NotOwner {
            plugin: manifest.name.clone(),
            subject: actor.subject.to_string(),
        }));
    }
    let version = manifest.version.to_string();
    if let Some(existing) = catalogue.version_digest(&manifest.name, &version).await? {
        if existing != digest {
            return Err(store_error(PublishError::VersionConflict {
                plugin: manifest.name.clone(),
                version,
                existing,
            }));
        }
        if let Some(record) = catalogue.version(&manifest.name, &version).await? {
            return Ok(Published::Existing(record));
        }
    }
    let signature = verify_signature(
        state,
        &manifest,
        &manifest_sha256,
        &digest,
        &owners,
        signature,
    )
    .await?;
    // Only now, with everything cheap checked, compile.
    let checked = state
        .runtime
        .check_component(&manifest, Arc::new(bytes.clone()))
        .await
        .map_err(prepare_error)?;
    let published = catalogue
        .publish(NewVersion {
            manifest: &manifest,
            digest,
            bytes: &bytes,
            manifest_sha256,
            signature,
            actor,
        })
        .await
        .map_err(store_error)?;
    state.runtime.admit(checked);
    Ok(published)
}

fn store_error(e: PublishError) -> ApiError {
    use axum::http::StatusCode;
    match e {
        e @ PublishError::VersionConflict { .. } => ApiError::conflict(e.to_string()),
        e @ PublishError::NotOwner { .. } => {
            ApiError::from_status(StatusCode::FORBIDDEN, e.to_string())
        }
        e @ PublishError::SignerNotOwner { .. } => {
            signature_problem(format!("bad signature: {e}"), "not an owner's key")
        }
        PublishError::Store(e) => ApiError::from(e),
    }
}

/// Maps a runtime refusal to the problem the publisher sees.
pub(crate) fn prepare_error(e: PrepareError) -> ApiError {
    use axum::http::{HeaderValue, StatusCode, header};
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
        PrepareError::Busy(wait) => {
            ApiError::from_status(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).with_header(
                header::RETRY_AFTER,
                HeaderValue::from(wait.as_secs().max(1)),
            )
        }
        PrepareError::NotAComponent(_)
        | PrepareError::Compile(_)
        | PrepareError::CompileTimeout(_)
        | PrepareError::NotAService(_)
        | PrepareError::Link(_) => ApiError::validation(e.to_string(), Vec::new()),
        PrepareError::Load(_) | PrepareError::Engine(_) => ApiError::internal(e),
    }
}
