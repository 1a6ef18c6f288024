//! Plugin owners (crates.io model) and the signing keys registered to each identity.
//!
//! Owners of a plugin list, add and remove co-owners; operators manage any plugin's owners.
//! Any authenticated identity registers ed25519 public keys to itself; a version's signature
//! counts only when a key of one of the plugin's owners verifies it. The rules are
//! `guildhall_operations::owners`, shared with the console.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use guildhall_authz::Principal;
use guildhall_domain::PluginName;
use guildhall_store::{KeyRecord, OwnerRecord};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Path};

fn rfc(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// One owner of a plugin.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct OwnerView {
    /// The owner's subject, e.g. `token:<id>` or `oidc:<issuer id>:<sub>`.
    subject: String,
    /// Who added them; the first publisher added themself.
    added_by: String,
    /// RFC 3339.
    added_at: String,
}

impl From<OwnerRecord> for OwnerView {
    fn from(o: OwnerRecord) -> Self {
        Self {
            subject: o.subject,
            added_by: o.added_by,
            added_at: rfc(o.added_at),
        }
    }
}

/// A plugin's owners.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct OwnerList {
    plugin: String,
    /// In the order they were added.
    owners: Vec<OwnerView>,
}

async fn owner_list(state: &AppState, plugin: &PluginName) -> Result<OwnerList, ApiError> {
    let owners = guildhall_operations::owners::owners(&state.store, plugin).await?;
    Ok(OwnerList {
        plugin: plugin.to_string(),
        owners: owners.into_iter().map(OwnerView::from).collect(),
    })
}

/// Lists a plugin's owners.
#[utoipa::path(get, path = "/api/v1/plugins/{plugin}/owners", tag = "catalogue",
    params(("plugin" = String, Path, description = "Plugin name")),
    responses(
        (status = 200, description = "The owners", body = OwnerList),
        (status = 404, description = "No such plugin", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_owners(
    State(state): State<AppState>,
    Path(plugin): Path<PluginName>,
) -> Result<axum::Json<OwnerList>, ApiError> {
    Ok(axum::Json(owner_list(&state, &plugin).await?))
}

/// Adds a co-owner. Only an owner of the plugin (or an operator) may.
#[utoipa::path(put, path = "/api/v1/plugins/{plugin}/owners/{subject}", tag = "catalogue",
    params(
        ("plugin" = String, Path, description = "Plugin name"),
        ("subject" = String, Path, description = "The new owner's subject: `token:<id>`, `oidc:<issuer id>:<sub>` of an issuer that serves every tenant, or `cli:operator` (percent-encode `/`)"),
    ),
    responses(
        (status = 201, description = "Added", body = OwnerList),
        (status = 200, description = "Already an owner", body = OwnerList),
        (status = 403, description = "The caller is not an owner", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such plugin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a subject that can own a plugin: a role name or other string that names nobody, or a user of an identity provider that is not configured or is limited to some tenants", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn add_owner(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path((plugin, raw)): Path<(PluginName, String)>,
) -> Result<Response, ApiError> {
    let actor = guildhall_operations::owners::actor(&state.authz, &principal);
    let added =
        guildhall_operations::owners::add_owner(&state.authz, &state.store, actor, &plugin, &raw)
            .await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(owner_list(&state, &plugin).await?)).into_response())
}

/// Removes an owner. Only an owner (or an operator) may, and never the last owner.
#[utoipa::path(delete, path = "/api/v1/plugins/{plugin}/owners/{subject}", tag = "catalogue",
    params(
        ("plugin" = String, Path, description = "Plugin name"),
        ("subject" = String, Path, description = "The owner's subject"),
    ),
    responses(
        (status = 200, description = "Removed; the remaining owners", body = OwnerList),
        (status = 403, description = "The caller is not an owner", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such plugin, or the subject is not an owner", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The last owner cannot be removed", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn remove_owner(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path((plugin, raw)): Path<(PluginName, String)>,
) -> Result<axum::Json<OwnerList>, ApiError> {
    let actor = guildhall_operations::owners::actor(&state.authz, &principal);
    guildhall_operations::owners::remove_owner(&state.store, actor, &plugin, &raw).await?;
    Ok(axum::Json(owner_list(&state, &plugin).await?))
}

/// A signing key registered to the caller.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct KeyView {
    /// The caller's name for the key.
    name: String,
    /// `SHA256:` and the unpadded base64 sha256 of the key; versions it signed show it.
    fingerprint: String,
    /// The ed25519 public key, base64.
    public_key: String,
    /// RFC 3339.
    created_at: String,
}

impl From<KeyRecord> for KeyView {
    fn from(k: KeyRecord) -> Self {
        Self {
            name: k.name,
            fingerprint: k.fingerprint,
            public_key: k.public_key,
            created_at: rfc(k.created_at),
        }
    }
}

/// The caller's signing keys.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct KeyList {
    /// The caller's subject, which the keys are registered to.
    subject: String,
    keys: Vec<KeyView>,
}

/// The body of `PUT /api/v1/publisher-keys/{name}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyBody {
    /// The ed25519 public key, base64 (32 bytes), as `guildhall keys generate` prints it.
    public_key: String,
}

async fn key_list(state: &AppState, subject: &str) -> Result<KeyList, ApiError> {
    Ok(KeyList {
        subject: subject.to_string(),
        keys: state
            .store
            .publisher_keys()
            .list(subject)
            .await?
            .into_iter()
            .map(KeyView::from)
            .collect(),
    })
}

/// Lists the signing keys registered to the caller.
#[utoipa::path(get, path = "/api/v1/publisher-keys", tag = "catalogue",
    responses((status = 200, description = "The caller's keys", body = KeyList)))]
pub(crate) async fn list_keys(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Result<axum::Json<KeyList>, ApiError> {
    Ok(axum::Json(key_list(&state, principal.subject()).await?))
}

/// Registers (or replaces) the caller's signing key `name`.
#[utoipa::path(put, path = "/api/v1/publisher-keys/{name}", tag = "catalogue",
    params(("name" = String, Path, description = "The caller's name for the key")),
    request_body = KeyBody,
    responses(
        (status = 201, description = "Registered", body = KeyList),
        (status = 200, description = "Already registered, or replaced", body = KeyList),
        (status = 409, description = "The public key is registered already (to someone else or under another name)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not an ed25519 public key, or a bad name", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn put_key(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(name): Path<String>,
    Json(body): Json<KeyBody>,
) -> Result<Response, ApiError> {
    let created = guildhall_operations::owners::put_key(
        &state.store,
        principal.subject(),
        &name,
        &body.public_key,
    )
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        axum::Json(key_list(&state, principal.subject()).await?),
    )
        .into_response())
}

/// Removes the caller's signing key `name`. Versions it signed keep their record.
#[utoipa::path(delete, path = "/api/v1/publisher-keys/{name}", tag = "catalogue",
    params(("name" = String, Path, description = "The caller's name for the key")),
    responses(
        (status = 200, description = "Removed; the remaining keys", body = KeyList),
        (status = 404, description = "The caller has no key of that name", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn delete_key(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(name): Path<String>,
) -> Result<axum::Json<KeyList>, ApiError> {
    guildhall_operations::owners::remove_key(&state.store, principal.subject(), &name).await?;
    Ok(axum::Json(key_list(&state, principal.subject()).await?))
}
