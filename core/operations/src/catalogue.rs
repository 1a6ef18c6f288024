//! Publishing to the shared catalogue, shared by `POST /api/v1/plugins/{plugin}/versions`
//! and `guildhall plugins publish`.
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
//!
//! **Architecture Invariant:** whether a version exists is told only to the plugin's owners
//! and operators: a non-owner gets 403 whether or not the version is there, even when it
//! raced the first publish of the name.

use std::collections::BTreeMap;
use std::sync::Arc;

use guildhall_domain::manifest::Manifest;
use guildhall_domain::signing::{self, PublicKey};
use guildhall_domain::{Digest, PluginName};
use guildhall_runtime::{PrepareError, Runtime};
use guildhall_store::{
    Actor, CLI_OPERATOR, NewVersion, PublishError, Published, Signed, Store, VersionRecord,
};

use crate::Error;

/// What publishing needs: the store, the runtime that checks and compiles components, and
/// the `[catalogue]` settings.
#[derive(Debug, Clone, Copy)]
pub struct Catalogue<'a> {
    /// The database.
    pub store: &'a Store,
    /// Checks and compiles uploads.
    pub runtime: &'a Runtime,
    /// The signature settings.
    pub keys: &'a TrustedKeys,
}

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

fn signature_problem(detail: String, reason: &str) -> Error {
    Error::field("signature", reason, detail)
}

/// Checks an optional signature against the keys of `owners`; the verified signature, or
/// `None` when there is none and none is required.
async fn verify_signature(
    catalogue: Catalogue<'_>,
    manifest: &Manifest,
    manifest_sha256: &Digest,
    digest: &Digest,
    owners: &[String],
    signature: Option<&str>,
) -> Result<Option<Signed>, Error> {
    let Some(signature) = signature.map(str::trim).filter(|s| !s.is_empty()) else {
        if catalogue.keys.require {
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
    for record in catalogue.store.publisher_keys().of_subjects(owners).await? {
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
            catalogue
                .keys
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
    catalogue: Catalogue<'_>,
    actor: Actor<'_>,
    expected: Option<&PluginName>,
    manifest_text: &str,
    bytes: Vec<u8>,
    signature: Option<&str>,
) -> Result<Published, Error> {
    let limit = catalogue.runtime.config().max_component_bytes;
    if bytes.len() > limit {
        return Err(Error::TooLarge(format!(
            "the component is {} bytes; the limit is {limit} bytes",
            bytes.len()
        )));
    }
    let manifest = Manifest::from_toml(manifest_text).map_err(|e| {
        Error::field(
            format!("manifest.{}", e.field),
            e.reason.clone(),
            format!("invalid manifest: {e}"),
        )
    })?;
    if let Some(expected) = expected
        && *expected != manifest.name
    {
        return Err(Error::field(
            "manifest.name",
            format!("must be {expected}"),
            format!(
                "the URL names plugin {expected} but the manifest names {}",
                manifest.name
            ),
        ));
    }
    let manifest_sha256 = Digest::of(manifest_text.as_bytes());
    let checked = check(
        catalogue,
        actor,
        manifest,
        manifest_sha256,
        bytes,
        signature,
    )
    .await?;
    store(catalogue, actor, checked).await
}

/// A version that passed every check of publishing, compiled, and not yet stored; or one
/// already published with the same bytes.
#[derive(Debug)]
pub enum Checked {
    /// The version is published already, with these bytes.
    Existing(Box<VersionRecord>),
    /// A new version, ready for [`store`].
    New(Box<NewChecked>),
}

/// A new version that passed the checks (see [`Checked`]).
#[derive(Debug)]
pub struct NewChecked {
    manifest: Manifest,
    digest: Digest,
    bytes: Vec<u8>,
    manifest_sha256: Digest,
    signature: Option<Signed>,
    compiled: guildhall_runtime::Checked,
}

/// Every check of publishing, cheapest first, and the compile, for a manifest already
/// parsed (`manifest_sha256` is the digest of its `plugin.toml` as published): size,
/// manifest against this platform's limits, ownership, version, signature. Nothing is
/// stored; [`store`] does that.
pub async fn check(
    catalogue: Catalogue<'_>,
    actor: Actor<'_>,
    manifest: Manifest,
    manifest_sha256: Digest,
    bytes: Vec<u8>,
    signature: Option<&str>,
) -> Result<Checked, Error> {
    let limit = catalogue.runtime.config().max_component_bytes;
    if bytes.len() > limit {
        return Err(Error::TooLarge(format!(
            "the component is {} bytes; the limit is {limit} bytes",
            bytes.len()
        )));
    }
    manifest
        .validate(&catalogue.runtime.config().caps())
        .map_err(PrepareError::Manifest)?;
    let digest = Digest::of(&bytes);
    let store = catalogue.store;
    // Ownership: an existing name only for its owners (and operators); a new name will be
    // the actor's. The store checks again inside the transaction that publishes.
    let mut owners = store.owners().subjects(&manifest.name).await?;
    let version = manifest.version.to_string();
    if let Some(existing) = store
        .catalogue()
        .version_digest(&manifest.name, &version)
        .await?
    {
        // The version exists, so the name has owners now even if it had none a moment
        // ago (a concurrent first publish): only they learn anything about it.
        if owners.is_empty() {
            owners = store.owners().subjects(&manifest.name).await?;
        }
        if !actor.operator && !owners.iter().any(|o| o == actor.subject) {
            return Err(not_owner(&manifest.name, actor));
        }
        if existing != digest {
            return Err(PublishError::VersionConflict {
                plugin: manifest.name.clone(),
                version,
                existing,
            }
            .into());
        }
        if let Some(record) = store.catalogue().version(&manifest.name, &version).await? {
            return Ok(Checked::Existing(Box::new(record)));
        }
    }
    if owners.is_empty() {
        owners.push(actor.subject.to_string());
    } else if !actor.operator && !owners.iter().any(|o| o == actor.subject) {
        return Err(not_owner(&manifest.name, actor));
    }
    let signature = verify_signature(
        catalogue,
        &manifest,
        &manifest_sha256,
        &digest,
        &owners,
        signature,
    )
    .await?;
    // Only now, with everything cheap checked, compile.
    let compiled = catalogue
        .runtime
        .check_component(&manifest, Arc::new(bytes.clone()))
        .await?;
    Ok(Checked::New(Box::new(NewChecked {
        manifest,
        digest,
        bytes,
        manifest_sha256,
        signature,
        compiled,
    })))
}

/// Stores a checked version atomically and keeps its compile.
pub async fn store(
    catalogue: Catalogue<'_>,
    actor: Actor<'_>,
    checked: Checked,
) -> Result<Published, Error> {
    let new = match checked {
        Checked::Existing(record) => return Ok(Published::Existing(*record)),
        Checked::New(new) => *new,
    };
    let published = catalogue
        .store
        .catalogue()
        .publish(NewVersion {
            manifest: &new.manifest,
            digest: new.digest,
            bytes: &new.bytes,
            manifest_sha256: new.manifest_sha256,
            signature: new.signature,
            actor,
        })
        .await?;
    catalogue.runtime.admit(new.compiled);
    Ok(published)
}

fn not_owner(plugin: &PluginName, actor: Actor<'_>) -> Error {
    PublishError::NotOwner {
        plugin: plugin.clone(),
        subject: actor.subject.to_string(),
    }
    .into()
}
